//! The reassembler fuzz harness, shared by the `reassembler` fuzz target (`fuzz/fuzz_targets/reassembler.rs`)
//! and the corpus replay test (`tests/fuzz_corpus_reassembler.rs`), both of which include this file by path.
//!
//! An input is read as a configuration byte followed by operations: headers (arbitrary or well-formed claims),
//! fragments (well-formed pieces of a live batch, or arbitrary bytes), ticks of virtual time, `drop_room`,
//! `clear` and header re-sends, against two connections sharing one small global [`Budget`]. A model tracks
//! which batches are live, what they announced, their deadlines and whether every byte they received was
//! well-formed; after every operation the reassemblers must agree with it:
//!
//! * `bytes_reserved()` ≤ the connection limit, the global `used()` ≤ its limit and equal to the sum over the
//!   connections, `batch_count()` ≤ `max_batches` and equal to the model's live batches;
//! * a `Complete` comes only for a live batch (so never twice for one batch), carries exactly the announced
//!   total, and, when every fragment was well-formed, exactly the bytes sent;
//! * every header and fragment outcome is the one the model expects (started, unchanged, restarted, refused,
//!   stored, duplicate, stray), and a refused header leaves nothing reserved;
//! * `poll_timeout()` is exactly the earliest modelled deadline, which is never past a batch's lifetime cap,
//!   and after expiring at `now` no deadline is at or before `now`.
//!
//! Any mismatch panics. Nothing here reads a clock or a random source.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use loro_sansio::fragment::{Budget, FragmentOutcome, HeaderOutcome, Reassembler, ReassemblyConfig, RejectReason};
use loro_sansio::wire::{BatchId, CrdtType};
use loro_sansio::Instant;

/// Connections sharing the global budget.
pub const CONNS: usize = 2;
/// The shared budget: less than the connections could reserve together, so that it binds.
pub const GLOBAL_LIMIT: usize = 40 * 1024;
const LONG_ROOM: &str = concat!(
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
);
const ROOMS: [&str; 4] = ["", "a", "b", LONG_ROOM];

/// The per-connection configuration an input's first byte selects.
pub fn config(flags: u8) -> ReassemblyConfig {
    ReassemblyConfig {
        timeout: Duration::from_millis(if flags & 0x08 == 0 { 1_000 } else { 7 }),
        extend_on_progress: flags & 0x01 == 0,
        max_lifetime: Duration::from_millis([2_500, 400, 5, 60_000][usize::from(flags >> 4 & 3)]),
        max_batches: 3,
        max_bytes_in_flight: 24 * 1024,
        max_update_size: 16 * 1024,
        max_fragments: 40,
        tombstones: [0, 1, 4, 16][usize::from(flags >> 1 & 3)],
    }
}

/// A batch on one connection: CRDT, room and id packed in one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    conn: usize,
    crdt: CrdtType,
    room: usize,
    batch: u8,
}

impl Key {
    fn from_bytes(conn: u8, key: u8) -> Key {
        Key {
            conn: usize::from(conn) % CONNS,
            crdt: if key & 1 == 0 { CrdtType::Loro } else { CrdtType::Yjs },
            room: usize::from(key >> 1 & 3),
            batch: key >> 3 & 7,
        }
    }

    fn id(&self) -> BatchId {
        BatchId::from_u64(0x0100_0000_0000_0000 | u64::from(self.batch))
    }

    fn room(&self) -> &'static str {
        ROOMS[self.room]
    }
}

/// What the model knows of a live batch.
#[derive(Clone, Copy, Debug)]
struct Claim {
    count: u32,
    total: u32,
    /// The size a well-formed sender gives every fragment but the last.
    stride: usize,
    /// Distinguishes the bytes of successive batches under one key.
    epoch: u8,
    /// A fragment not produced by the well-formed sender was stored: the content is no longer predictable.
    tainted: bool,
    started: u64,
    deadline: u64,
}

/// The byte a well-formed sender puts at `offset` of the update of epoch `epoch`.
fn pattern(epoch: u8, offset: usize) -> u8 {
    (offset.wrapping_mul(0x9e37_79b1) >> 11) as u8 ^ epoch
}

/// Reads an input front to back; running out of bytes ends it.
struct Cursor<'a> {
    data: &'a [u8],
}

impl Cursor<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }

    /// A count or size: small values most of the time, anything at all some of the time.
    fn size(&mut self) -> Option<u32> {
        let b = self.u8()?;
        Some(match b >> 6 {
            0 => u32::from(b & 63),
            1 => u32::from(b & 63) << 8 | u32::from(self.u8()?),
            2 => u32::from(self.u16()?) ^ u32::from(b & 63) << 16,
            _ => [0, 1, 2, 39, 40, 41, 16 * 1024, 16 * 1024 + 1, 24 * 1024, 256 * 1024, u32::MAX, u32::MAX - 1]
                [usize::from(b & 63) % 12],
        })
    }
}

/// What a run did, for reporting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Operations executed.
    pub ops: u64,
    /// Batches completed.
    pub completed: u64,
    /// Of which with content checked byte for byte.
    pub verified: u64,
    /// Batches expired.
    pub expired: u64,
    /// Headers refused.
    pub refused: u64,
}

struct Harness {
    config: ReassemblyConfig,
    rx: Vec<Reassembler>,
    global: Budget,
    claims: BTreeMap<Key, Claim>,
    epoch: u8,
    now: u64,
    summary: Summary,
}

/// Runs one input. Panics when a reassembler disagrees with the model or breaks an invariant.
pub fn run(data: &[u8]) -> Summary {
    let mut input = Cursor { data };
    let Some(flags) = input.u8() else { return Summary::default() };
    let config = config(flags);
    let mut h = Harness {
        rx: (0..CONNS).map(|_| Reassembler::new(config.clone())).collect(),
        config,
        global: Budget::new(GLOBAL_LIMIT),
        claims: BTreeMap::new(),
        epoch: 0,
        now: 0,
        summary: Summary::default(),
    };
    while h.step(&mut input).is_some() {
        h.summary.ops += 1;
        h.check();
    }
    for r in &mut h.rx {
        r.clear(&mut h.global);
    }
    assert_eq!(h.global.used(), 0, "clear releases everything");
    h.summary
}

impl Harness {
    fn step(&mut self, input: &mut Cursor<'_>) -> Option<()> {
        let op = input.u8()?;
        match op % 8 {
            0 => {
                let key = Key::from_bytes(op >> 3, input.u8()?);
                let (count, total) = (input.size()?, input.size()?);
                self.header(key, count, total, None);
            }
            1 => {
                // A well-formed header: `total` bytes in fragments of `stride`.
                let key = Key::from_bytes(op >> 3, input.u8()?);
                let total = input.size()?;
                let stride = usize::from(input.u8()?).max(1) * usize::from(input.u8()? % 64 + 1);
                let count = u32::try_from((total as usize).div_ceil(stride)).unwrap_or(u32::MAX);
                self.header(key, count, total, Some(stride));
            }
            2 | 3 => {
                // A well-formed fragment of a live batch (or a one-byte stray when there is none).
                let key = Key::from_bytes(op >> 3, input.u8()?);
                let index = input.u8()?;
                let data = match self.claims.get(&key) {
                    Some(c) => {
                        let index = u32::from(index) % c.count.max(1);
                        let start = (index as usize).saturating_mul(c.stride);
                        let end = start.saturating_add(c.stride).min(c.total as usize);
                        let bytes: Vec<u8> = (start..end.max(start)).map(|o| pattern(c.epoch, o)).collect();
                        (index, bytes, true)
                    }
                    None => (u32::from(index), vec![index], false),
                };
                self.fragment(key, data.0, Bytes::from(data.1), data.2);
            }
            4 => {
                // Arbitrary: any index, any length, any bytes.
                let key = Key::from_bytes(op >> 3, input.u8()?);
                let index = input.size()?;
                let len = usize::from(input.u16()? % 6_000);
                let fill = input.u8()?;
                let bytes: Vec<u8> = (0..len).map(|i| fill.wrapping_add((i % 3) as u8)).collect();
                self.fragment(key, index, Bytes::from(bytes), false);
            }
            5 => {
                let ms = u64::from(input.u16()?);
                self.tick(ms);
            }
            6 => {
                let key = Key::from_bytes(op >> 3, input.u8()?);
                let dropped = self.rx[key.conn].drop_room(key.crdt, key.room(), &mut self.global);
                let before = self.claims.len();
                self.claims.retain(|k, _| !(k.conn == key.conn && k.crdt == key.crdt && k.room == key.room));
                assert_eq!(dropped, before - self.claims.len(), "drop_room drops exactly the room's batches");
            }
            _ => {
                let sub = input.u8()?;
                if sub < 24 {
                    let conn = usize::from(sub) % CONNS;
                    self.rx[conn].clear(&mut self.global);
                    self.claims.retain(|k, _| k.conn != conn);
                } else if let Some((&key, c)) = self.claims.iter().nth(usize::from(sub) % self.claims.len().max(1)) {
                    // Re-send a live header unchanged.
                    let (count, total, stride) = (c.count, c.total, c.stride);
                    self.header(key, count, total, Some(stride));
                }
            }
        }
        Some(())
    }

    fn header(&mut self, key: Key, count: u32, total: u32, stride: Option<usize>) {
        let used_before = self.global.used();
        let outcome = self.rx[key.conn].handle_header(
            Instant::from_millis(self.now),
            key.crdt,
            key.room(),
            key.id(),
            count,
            total,
            &mut self.global,
        );
        let old = self.claims.get(&key).copied();
        match outcome {
            HeaderOutcome::Unchanged => {
                let old = old.expect("Unchanged for a live batch");
                assert_eq!((old.count, old.total), (count, total), "Unchanged only for identical claims");
            }
            HeaderOutcome::Started | HeaderOutcome::Restarted => {
                match old {
                    None => assert_eq!(outcome, HeaderOutcome::Started),
                    Some(o) => {
                        assert_eq!(outcome, HeaderOutcome::Restarted);
                        assert_ne!((o.count, o.total), (count, total), "identical claims are Unchanged");
                    }
                }
                assert!(
                    count >= 1 && count <= self.config.max_fragments && total as usize <= self.config.max_update_size
                );
                assert!(count <= total, "every fragment carries a byte");
                self.epoch = self.epoch.wrapping_add(1);
                let t = self.config.timeout.min(self.config.max_lifetime).as_millis() as u64;
                let claim = Claim {
                    count,
                    total,
                    stride: stride.unwrap_or_else(|| (total as usize).div_ceil(count as usize)),
                    epoch: self.epoch,
                    tainted: false,
                    started: self.now,
                    deadline: self.now + t,
                };
                self.claims.insert(key, claim);
            }
            HeaderOutcome::Rejected(reason) => {
                self.summary.refused += 1;
                self.claims.remove(&key);
                if old.is_none() {
                    assert_eq!(self.global.used(), used_before, "a refused header reserves nothing: {reason}");
                } else {
                    assert!(self.global.used() < used_before, "a refused restart releases the old batch: {reason}");
                }
            }
        }
        assert_eq!(self.rx[key.conn].contains(key.crdt, key.room(), key.id()), self.claims.contains_key(&key));
    }

    fn fragment(&mut self, key: Key, index: u32, data: Bytes, well_formed: bool) {
        let len = data.len();
        let outcome = self.rx[key.conn].handle_fragment(
            Instant::from_millis(self.now),
            key.crdt,
            key.room(),
            key.id(),
            index,
            data,
            &mut self.global,
        );
        let claim = self.claims.get_mut(&key);
        match (outcome, claim) {
            (FragmentOutcome::Stored, Some(c)) => {
                c.tainted |= !well_formed;
                if self.config.extend_on_progress {
                    let cap = c.started + self.config.max_lifetime.as_millis() as u64;
                    c.deadline = c.deadline.max((self.now + self.config.timeout.as_millis() as u64).min(cap));
                }
            }
            (FragmentOutcome::Duplicate, Some(_)) => {}
            (FragmentOutcome::Complete(update), Some(c)) => {
                assert_eq!(update.len(), c.total as usize, "the announced total");
                if !c.tainted && well_formed {
                    assert!(
                        update.iter().enumerate().all(|(o, &b)| b == pattern(c.epoch, o)),
                        "well-formed fragments reassemble to the bytes sent"
                    );
                    self.summary.verified += 1;
                }
                self.summary.completed += 1;
                self.claims.remove(&key);
            }
            (FragmentOutcome::Rejected(RejectReason::NoHeader), None) | (FragmentOutcome::Ignored, None) => {}
            (FragmentOutcome::Rejected(reason), Some(c)) => {
                assert!(
                    !well_formed || c.tainted || reason_from_size(reason),
                    "a well-formed fragment failed: {reason}"
                );
                self.claims.remove(&key);
            }
            (outcome, claim) => panic!("{outcome:?} for a fragment of {len} bytes, model {claim:?}"),
        }
        assert_eq!(self.rx[key.conn].contains(key.crdt, key.room(), key.id()), self.claims.contains_key(&key));
    }

    fn tick(&mut self, ms: u64) {
        self.now += ms;
        let now = Instant::from_millis(self.now);
        for conn in 0..CONNS {
            while let Some(k) = self.rx[conn].poll_expired(now, &mut self.global) {
                let key = self
                    .claims
                    .keys()
                    .copied()
                    .find(|m| m.conn == conn && m.crdt == k.crdt && ROOMS[m.room] == &*k.room && m.id() == k.batch_id)
                    .expect("an expired batch was live");
                let c = self.claims.remove(&key).unwrap_or_else(|| unreachable!());
                assert!(c.deadline <= self.now, "expired at {} before its deadline {}", self.now, c.deadline);
                self.summary.expired += 1;
            }
            assert!(self.rx[conn].poll_timeout().is_none_or(|t| t > now), "nothing due is left");
        }
    }

    fn check(&self) {
        let mut sum = 0;
        for (conn, r) in self.rx.iter().enumerate() {
            assert!(r.bytes_reserved() <= self.config.max_bytes_in_flight);
            assert!(r.batch_count() <= self.config.max_batches);
            let live = self.claims.iter().filter(|(k, _)| k.conn == conn);
            assert_eq!(r.batch_count(), live.clone().count(), "live batches");
            let earliest = live.clone().map(|(_, c)| c.deadline).min();
            assert_eq!(r.poll_timeout().map(Instant::as_millis), earliest, "poll_timeout is the earliest deadline");
            for (_, c) in live {
                assert!(c.deadline <= c.started + self.config.max_lifetime.as_millis() as u64);
            }
            sum += r.bytes_reserved();
        }
        assert!(self.global.used() <= self.global.limit());
        assert_eq!(self.global.used(), sum, "the global budget is the sum of the reservations");
    }
}

/// Failures a well-formed fragment can still cause: a raw header whose claims no equal-size layout fits (its
/// last fragment would be empty, or hold more than the others).
fn reason_from_size(reason: RejectReason) -> bool {
    matches!(
        reason,
        RejectReason::SizeMismatch { .. } | RejectReason::IrregularFragment { .. } | RejectReason::EmptyFragment { .. }
    )
}
