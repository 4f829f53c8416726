//! Heap accounting of the reassembler under adversarial input, measured with a counting global allocator.
//!
//! Two checks after every operation: the reassembler's own accounting (`bytes_reserved()` per connection and the
//! shared [`Budget`]) never exceeds its limits, and the live heap the reassemblers hold never exceeds what they
//! reserved plus [`ReassemblyConfig::fixed_overhead`] (their batch tables and tombstones). During an operation the
//! peak may also include the one fragment being handed in. Fragment data is passed as a freshly allocated copy,
//! so whatever a reassembler keeps of it counts.
//!
//! This binary holds a single `#[test]`, so that no other test allocates while it measures; the operations are
//! generated up front so that the measured loop allocates nothing of its own besides each fragment's copy.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use chacha20::ChaCha8Rng;
use loro_sansio::fragment::{
    BatchKey, Budget, FragmentOutcome, HeaderOutcome, Reassembler, ReassemblyConfig, RejectReason,
};
use loro_sansio::wire::{BatchId, CrdtType};
use loro_sansio::Instant;
use rand_core::{Rng, SeedableRng};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grow(n: usize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

fn shrink(n: usize) {
    LIVE.fetch_sub(n, Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrink(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            // Counted as if old and new blocks coexisted for a moment (a moving realloc does that).
            grow(new_size);
            shrink(layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Relaxed)
}

fn reset_peak() {
    PEAK.store(live(), Relaxed);
}

fn peak() -> usize {
    PEAK.load(Relaxed)
}

const LONG_ROOM: &str = concat!(
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
);
const ROOMS: [&str; 3] = ["a", "room-1", LONG_ROOM];
const CRDTS: [CrdtType; 2] = [CrdtType::Loro, CrdtType::Elo];
const CONNS: usize = 3;
const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn config() -> ReassemblyConfig {
    ReassemblyConfig {
        timeout: Duration::from_millis(1_000),
        extend_on_progress: true,
        max_lifetime: Duration::from_millis(4_000),
        max_batches: 4,
        max_bytes_in_flight: MIB,
        max_update_size: 512 * KIB,
        max_fragments: 64,
        tombstones: 8,
    }
}

/// A generated operation; executing one allocates nothing but a fragment's data.
#[derive(Clone, Copy, Debug)]
enum Op {
    Header { conn: usize, crdt: usize, room: usize, batch: u64, count: u32, total: u32 },
    Fragment { conn: usize, crdt: usize, room: usize, batch: u64, index: u32, offset: usize, len: usize },
    Tick { ms: u64 },
    DropRoom { conn: usize, crdt: usize, room: usize },
    Clear { conn: usize },
}

/// A batch the generator has announced, to aim well-formed fragments at it.
#[derive(Clone, Copy)]
struct Announced {
    conn: usize,
    crdt: usize,
    room: usize,
    batch: u64,
    count: u32,
    total: u32,
    stride: usize,
    base: usize,
}

struct Gen {
    rng: ChaCha8Rng,
    announced: Vec<Announced>,
    source_len: usize,
}

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.next_u64() % n
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn any_announced(&mut self) -> Announced {
        let i = self.below(self.announced.len() as u64) as usize;
        self.announced[i]
    }

    fn header(&mut self) -> Op {
        let conn = self.below(CONNS as u64) as usize;
        let crdt = self.below(CRDTS.len() as u64) as usize;
        let room = self.below(ROOMS.len() as u64) as usize;
        let batch = self.below(24);
        let roll = self.below(100);
        let (count, total, stride) = if roll < 60 {
            // Plausible: up to a little over the update limit, up to a little over the fragment limit.
            let total = 1 + self.below(600 * KIB as u64) as usize;
            let min_stride = total.div_ceil(70).max(1);
            let stride = (min_stride + self.below(total as u64) as usize).min(total).min(256 * KIB);
            (total.div_ceil(stride) as u32, total as u32, stride)
        } else if roll < 85 {
            // Hostile claims.
            let count = self.pick(&[0, 1, 2, 64, 65, 4096, u32::MAX]);
            let total = self.pick(&[0, 1, 512 * KIB as u32, 512 * KIB as u32 + 1, MIB as u32, u32::MAX]);
            (count, total, 1)
        } else if !self.announced.is_empty() {
            // Re-send one of the last few headers, identical or with different claims.
            let n = self.announced.len() as u64;
            let back = self.below(n.min(4));
            let a = self.announced[(n - 1 - back) as usize];
            if self.chance(50) {
                return Op::Header {
                    conn: a.conn,
                    crdt: a.crdt,
                    room: a.room,
                    batch: a.batch,
                    count: a.count,
                    total: a.total,
                };
            }
            let total = a.total.saturating_add(self.below(3) as u32);
            let stride = a.stride.max(1);
            ((total as usize).div_ceil(stride) as u32, total, stride)
        } else {
            (1, 1, 1)
        };
        let base =
            if (total as usize) < self.source_len { self.below((self.source_len - total as usize) as u64) } else { 0 };
        self.announced.push(Announced { conn, crdt, room, batch, count, total, stride, base: base as usize });
        if self.announced.len() > 32 {
            self.announced.remove(0);
        }
        Op::Header { conn, crdt, room, batch, count, total }
    }

    /// A well-formed fragment of `a`: its index, and where its bytes come from.
    fn good_fragment(&self, a: &Announced, index: u32) -> Op {
        let start = index as usize * a.stride;
        let len = if index + 1 == a.count { (a.total as usize).saturating_sub(start) } else { a.stride };
        let len = len.min(self.source_len);
        let offset = (a.base + start).min(self.source_len - len);
        Op::Fragment { conn: a.conn, crdt: a.crdt, room: a.room, batch: a.batch, index, offset, len }
    }

    fn fragment(&mut self) -> Op {
        if !self.announced.is_empty() && self.chance(70) {
            let a = self.any_announced();
            let index = self.below(u64::from(a.count.min(80))) as u32;
            return self.good_fragment(&a, index);
        }
        // Hostile: stray ids, wild indices, sizes that inflate or undercut.
        let (conn, crdt, room, batch) = match self.announced.is_empty() || self.chance(30) {
            true => (
                self.below(CONNS as u64) as usize,
                self.below(2) as usize,
                self.below(3) as usize,
                100 + self.below(1_000),
            ),
            false => {
                let a = self.any_announced();
                (a.conn, a.crdt, a.room, a.batch)
            }
        };
        let any_index = self.below(100) as u32;
        let index = self.pick(&[0, 1, 2, 63, 64, 65, u32::MAX, any_index]);
        let any_len = self.below(300 * KIB as u64) as usize;
        let len = self.pick(&[0, 1, 2, 1000, 64 * KIB, 200 * KIB, 256 * KIB, any_len]);
        let len = len.min(self.source_len);
        let offset = self.below((self.source_len - len + 1) as u64) as usize;
        Op::Fragment { conn, crdt, room, batch, index, offset, len }
    }

    fn ops(&mut self, n: usize) -> Vec<Op> {
        let mut ops = Vec::with_capacity(n + 128);
        while ops.len() < n {
            let roll = self.below(1000);
            if roll < 150 {
                ops.push(self.header());
            } else if roll < 900 {
                ops.push(self.fragment());
            } else if roll < 960 && !self.announced.is_empty() {
                // A burst: every fragment of one batch, shuffled, with a few repeats.
                let a = self.any_announced();
                let mut order: Vec<u32> = (0..a.count.min(80)).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, self.below(i as u64 + 1) as usize);
                }
                for _ in 0..self.below(4) {
                    order.push(self.below(u64::from(a.count.min(80))) as u32);
                }
                ops.extend(order.into_iter().map(|i| self.good_fragment(&a, i)));
            } else if roll < 985 {
                ops.push(Op::Tick { ms: self.below(2_500) });
            } else if roll < 997 {
                let conn = self.below(CONNS as u64) as usize;
                ops.push(Op::DropRoom { conn, crdt: self.below(2) as usize, room: self.below(3) as usize });
            } else {
                ops.push(Op::Clear { conn: self.below(CONNS as u64) as usize });
            }
        }
        ops
    }
}

/// A started batch: who announced it, the total it claimed, and whether it completed.
#[derive(Clone, Copy)]
struct Claim {
    key: (usize, usize, usize, u64),
    total: u32,
    completed: bool,
}

/// The claims of the batches started so far, to check each Complete; a fixed table so the loop never allocates.
struct Claims {
    slots: [Option<Claim>; 64],
    next: usize,
}

impl Claims {
    fn find(&mut self, key: (usize, usize, usize, u64)) -> Option<&mut Claim> {
        self.slots.iter_mut().flatten().find(|c| c.key == key)
    }

    fn started(&mut self, key: (usize, usize, usize, u64), total: u32) {
        let claim = Claim { key, total, completed: false };
        if let Some(c) = self.find(key) {
            *c = claim;
            return;
        }
        self.slots[self.next] = Some(claim);
        self.next = (self.next + 1) % self.slots.len();
    }
}

#[derive(Default)]
struct Tally {
    ops: usize,
    completed: usize,
    rejected_headers: usize,
    rejected_fragments: usize,
    expired: usize,
    max_live: usize,
    max_peak: usize,
}

/// Runs `ops` against `CONNS` reassemblers sharing a budget of `global_limit` bytes, checking the heap after
/// each one.
fn run(ops: &[Op], source: &[u8], global_limit: usize, tally: &mut Tally) {
    let cfg = config();
    let fixed = CONNS * cfg.fixed_overhead();
    let mut global = Budget::new(global_limit);
    let mut rx: [Reassembler; CONNS] = std::array::from_fn(|_| Reassembler::new(cfg.clone()));
    let mut claims = Claims { slots: [None; 64], next: 0 };
    let mut now = Instant::ZERO;
    let baseline = live();

    for op in ops {
        let used_before = global.used();
        let mut input = 0;
        match *op {
            Op::Header { conn, crdt, room, batch, count, total } => {
                reset_peak();
                let outcome = rx[conn].handle_header(
                    now,
                    CRDTS[crdt],
                    ROOMS[room],
                    BatchId::from_u64(batch),
                    count,
                    total,
                    &mut global,
                );
                match outcome {
                    HeaderOutcome::Started | HeaderOutcome::Restarted => {
                        claims.started((conn, crdt, room, batch), total)
                    }
                    HeaderOutcome::Unchanged => {}
                    HeaderOutcome::Rejected(reason) => {
                        tally.rejected_headers += 1;
                        // A refused header reserves nothing.
                        assert!(!rx[conn].contains(CRDTS[crdt], ROOMS[room], BatchId::from_u64(batch)), "{reason}");
                        assert!(global.used() <= used_before);
                    }
                }
            }
            Op::Fragment { conn, crdt, room, batch, index, offset, len } => {
                input = len;
                let data = Bytes::copy_from_slice(&source[offset..offset + len]);
                reset_peak();
                let outcome = rx[conn].handle_fragment(
                    now,
                    CRDTS[crdt],
                    ROOMS[room],
                    BatchId::from_u64(batch),
                    index,
                    data,
                    &mut global,
                );
                match outcome {
                    FragmentOutcome::Complete(update) => {
                        tally.completed += 1;
                        let claim = claims.find((conn, crdt, room, batch)).expect("a Complete for a started batch");
                        assert_eq!(update.len(), claim.total as usize, "the announced total");
                        assert!(!claim.completed, "never two Completes for one batch");
                        claim.completed = true;
                    }
                    FragmentOutcome::Rejected(RejectReason::NoHeader) => {}
                    FragmentOutcome::Rejected(_) => tally.rejected_fragments += 1,
                    FragmentOutcome::Stored | FragmentOutcome::Duplicate | FragmentOutcome::Ignored => {}
                }
            }
            Op::Tick { ms } => {
                now = Instant::from_millis(now.as_millis() + ms);
                reset_peak();
                for r in &mut rx {
                    while let Some(BatchKey { .. }) = r.poll_expired(now, &mut global) {
                        tally.expired += 1;
                    }
                    assert!(r.poll_timeout().is_none_or(|t| t > now));
                }
            }
            Op::DropRoom { conn, crdt, room } => {
                reset_peak();
                rx[conn].drop_room(CRDTS[crdt], ROOMS[room], &mut global);
            }
            Op::Clear { conn } => {
                reset_peak();
                rx[conn].clear(&mut global);
            }
        }
        tally.ops += 1;

        // The reassemblers' own accounting.
        let mut sum = 0;
        for r in &rx {
            assert!(r.bytes_reserved() <= cfg.max_bytes_in_flight);
            assert!(r.batch_count() <= cfg.max_batches);
            sum += r.bytes_reserved();
        }
        assert_eq!(global.used(), sum, "the shared budget is the sum of the connections' reservations");
        assert!(global.used() <= global_limit);

        // The heap: after the operation, within the reservations plus the fixed overhead; during it, also the
        // fragment handed in.
        let held = live().saturating_sub(baseline);
        let peak_growth = peak().saturating_sub(baseline);
        assert!(
            held <= global.used() + fixed,
            "{op:?}: {held} live bytes for {} reserved + {fixed} fixed",
            global.used()
        );
        let bound = used_before.max(global.used()) + fixed + input;
        assert!(peak_growth <= bound, "{op:?}: peak {peak_growth} over {bound}");
        tally.max_live = tally.max_live.max(held);
        tally.max_peak = tally.max_peak.max(peak_growth);
    }

    for r in &mut rx {
        r.clear(&mut global);
    }
    assert_eq!(global.used(), 0);
    assert!(live().saturating_sub(baseline) <= fixed);
}

/// The worst case for memory: one batch as large as the budget allows, its fragments arriving last first (and
/// then in a random order), each as a fresh allocation.
fn worst_order(source: &[u8]) {
    let cfg =
        ReassemblyConfig { max_update_size: 8 * MIB, max_bytes_in_flight: 8 * MIB, ..ReassemblyConfig::default() };
    let fixed = cfg.fixed_overhead();
    let stride = 240 * KIB;
    let total = 8 * MIB - 64 * KIB;
    let count = total.div_ceil(stride) as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for pass in 0..2 {
        let mut order: Vec<u32> = (0..count).rev().collect();
        if pass == 1 {
            for i in (1..order.len()).rev() {
                order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
        }
        let mut global = Budget::new(8 * MIB);
        let mut r = Reassembler::new(cfg.clone());
        let id = BatchId::from_u64(pass);
        let baseline = live();
        reset_peak();
        assert_eq!(
            r.handle_header(Instant::ZERO, CrdtType::Loro, "r", id, count, total as u32, &mut global),
            HeaderOutcome::Started
        );
        let reserved = r.bytes_reserved();
        let mut done = None;
        for &i in &order {
            let start = i as usize * stride;
            let end = (start + stride).min(total);
            let from = start % (source.len() - stride);
            let data = Bytes::copy_from_slice(&source[from..from + end - start]);
            match r.handle_fragment(Instant::ZERO, CrdtType::Loro, "r", id, i, data, &mut global) {
                FragmentOutcome::Stored => {}
                FragmentOutcome::Complete(u) => done = Some(u.len()),
                other => panic!("unexpected {other:?}"),
            }
            assert!(live() - baseline <= reserved + fixed);
        }
        assert_eq!(done, Some(total));
        let peak_growth = peak() - baseline;
        assert!(peak_growth <= reserved + fixed + stride, "peak {peak_growth} for {reserved} reserved");
    }
}

#[test]
fn adversarial_sequences_stay_within_budget() {
    // 1 MiB of random bytes that fragments are copied from.
    let mut source = vec![0u8; MIB];
    ChaCha8Rng::seed_from_u64(7).fill_bytes(&mut source);

    worst_order(&source);

    let mut tally = Tally::default();
    for seed in 0..6u64 {
        let mut generator =
            Gen { rng: ChaCha8Rng::seed_from_u64(seed), announced: Vec::new(), source_len: source.len() };
        let ops = generator.ops(6_000);
        drop(generator);
        // A shared budget below what the three connections could reserve together, so that it binds.
        run(&ops, &source, 2 * MIB, &mut tally);
    }
    // The sequences exercised every path.
    assert!(tally.completed > 50, "{} completed", tally.completed);
    assert!(tally.rejected_headers > 100 && tally.rejected_fragments > 100 && tally.expired > 20);
    assert!(tally.max_live > MIB, "budgets were approached: {} bytes live at most", tally.max_live);
    eprintln!(
        "{} ops: {} completed, {} headers and {} batches refused, {} expired; at most {} bytes held, {} at peak",
        tally.ops,
        tally.completed,
        tally.rejected_headers,
        tally.rejected_fragments,
        tally.expired,
        tally.max_live,
        tally.max_peak
    );
}
