//! `ClientSession` hot paths against the bare codec, in one run.
//!
//! What each side includes. The rule: the *inputs* a caller hands in (an owned update list, an owned received
//! frame) are built outside the timed region on both sides; every *output* is produced and dropped inside it.
//!
//! - `client/send_64b/session`: `send` of one 64-byte update to a joined room, `poll_transmit` of its DocUpdate
//!   frame (an owned `Bytes`), and the drop of that frame. The `Vec<Bytes>` that `send` takes is the
//!   application's input: each timed chunk's Vecs are built before the chunk is timed (the summary reports that
//!   cost separately, as "app input"). Inside the timing the session draws a batch id from its RNG, records the
//!   batch in its outbox (it is kept until its Ack: this is the session's bookkeeping), encodes the frame and
//!   queues it. Acks are fed between timed chunks of 64 sends, outside the timing, so at most 64 batches are in
//!   flight (releasing a batch is the Ack path's cost, not the send path's).
//! - `client/send_64b/codec_encode_to_bytes`: `Message::encode_to_bytes` of the same DocUpdate into a fresh,
//!   exact-size buffer, and its drop. This is the like-for-like baseline: the session must hand out an owned
//!   `Bytes` per frame, which is exactly this (one allocation).
//! - `client/send_64b/codec_encode_into_vec`: `Message::encode_into_vec` into one reused, cleared Vec: the
//!   codec's floor with no allocation at all, which no owned-frame API can reach; reported for reference.
//! - `client/receive_doc_update/session`: `handle_frame` of a DocUpdate carrying one 64-byte update, `poll_event`
//!   of its `ClientEvent::Updates` (an `UpdateList` that keeps the frame's update region: no allocation), the
//!   iteration of its updates (as the codec baseline iterates them) and the drop of that event. The owned frame handed to `handle_frame` is the input: each timed
//!   chunk's frames (handles sharing one buffer) are cloned before the chunk is timed.
//! - `client/receive_doc_update/codec_decode`: `Message::decode` of the same frame (borrowed) and iteration of its
//!   updates. Nothing is owned or allocated.
//!
//! After the criterion runs, a summary prints ns/op of each path measured by one timing loop per path (median
//! of 15 runs), the session/codec ratios (target ≤ 3×, issue 6), and heap allocations per op counted by a global
//! allocator wrapper in this binary. Two informational rows put numbers on what the comparison leaves out: the
//! application's input Vec for `send`, and "decode → event contents": the same owned data an `Updates` event
//! carries (an `UpdateList` sharing the frame and a clone of the room's `RoomKey`) built with the bare codec,
//! i.e. the floor the event API sets before any session logic: no allocation and four atomic reference-count
//! updates (an increment and a decrement each on the frame's and on the key's shared buffer). The session needs
//! two fewer (the event takes over the frame's own handle instead of cloning it).
//!
//! Run: `cargo bench --bench client` (add `-- --warm-up-time 1 --measurement-time 3` for a shorter run).

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use criterion::Criterion;
use loro_sansio::client::{ClientConfig, ClientEvent, ClientSession, JoinParams};
use loro_sansio::rand_core::TryRng;
use loro_sansio::wire::{AckStatus, BatchId, Body, CrdtType, Frame, Message, Permission, UpdateList, Updates};
use loro_sansio::{Instant, RoomKey};

// -------------------------------------------------------------------------------------------------------------
// Allocation counting
// -------------------------------------------------------------------------------------------------------------

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above; `ptr` was allocated by this allocator, i.e. by `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

// -------------------------------------------------------------------------------------------------------------
// Fixtures
// -------------------------------------------------------------------------------------------------------------

const ROOM: &str = "room-1234";
/// Sends between two rounds of Acks: the bench keeps up to this many batches in flight.
const CHUNK: u64 = 64;

/// A counting RNG: batch ids are 1, 2, 3… so the bench can acknowledge them without decoding (a real
/// application passes a seeded or OS-backed RNG; the cost of drawing a number is not what is measured).
struct CounterRng(u64);

impl TryRng for CounterRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 += 1;
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.fill(1);
        Ok(())
    }
}

fn update() -> Bytes {
    Bytes::from((0..64u8).map(|i| i.wrapping_mul(31)).collect::<Vec<u8>>())
}

/// A session with `ROOM` joined (write), everything drained.
fn joined_session() -> (ClientSession, RoomKey) {
    let config = ClientConfig { max_outbox_bytes: usize::MAX, ..ClientConfig::default() };
    let mut s = ClientSession::new(config, CounterRng(0));
    let now = Instant::ZERO;
    let room = s.join(now, CrdtType::Loro, ROOM).unwrap();
    s.connect(now).unwrap();
    s.transport_opened(now);
    let mut ticket = None;
    while let Some(e) = s.poll_event() {
        if let ClientEvent::JoinParamsNeeded { ticket: t, .. } = e {
            ticket = Some(t);
        }
    }
    s.provide_join_params(now, ticket.unwrap(), JoinParams::default()).unwrap();
    let ok = Message {
        crdt: CrdtType::Loro,
        room: ROOM,
        body: Body::JoinResponseOk { permission: Permission::Write, version: &[], extra: &[] },
    };
    s.handle_frame(now, Frame::Binary(ok.encode_to_bytes().unwrap()));
    while s.poll_transmit().is_some() {}
    while s.poll_event().is_some() {}
    (s, room)
}

/// The send path in steady state: timed chunks of `send` + `poll_transmit` (+ drop of the frame), acknowledged
/// between chunks.
struct SendBench {
    s: ClientSession,
    room: RoomKey,
    update: Bytes,
    next_id: u64,
    acked_to: u64,
    /// The application's inputs for one chunk, built before the chunk is timed.
    inputs: Vec<Vec<Bytes>>,
}

impl SendBench {
    fn new() -> Self {
        let (s, room) = joined_session();
        SendBench { s, room, update: update(), next_id: 1, acked_to: 1, inputs: Vec::with_capacity(CHUNK as usize) }
    }

    /// Runs `n` sends (in chunks); returns the time and the allocations spent inside the timed parts.
    fn run(&mut self, n: u64) -> (Duration, u64) {
        let mut spent = Duration::ZERO;
        let mut allocated = 0;
        let mut left = n;
        while left > 0 {
            let k = left.min(CHUNK);
            let update = &self.update;
            self.inputs.extend((0..k).map(|_| vec![update.clone()]));
            let a0 = allocs();
            let t0 = StdInstant::now();
            for v in self.inputs.drain(..) {
                let id = self.s.send(Instant::ZERO, &self.room, v).unwrap();
                black_box(id);
                let t = self.s.poll_transmit().unwrap();
                drop(black_box(t));
            }
            spent += t0.elapsed();
            allocated += allocs() - a0;
            self.next_id += k;
            self.ack_all();
            left -= k;
        }
        (spent, allocated)
    }

    /// Untimed: acknowledges every batch sent so far and drains the events.
    fn ack_all(&mut self) {
        for id in self.acked_to..self.next_id {
            let ack = Message {
                crdt: CrdtType::Loro,
                room: ROOM,
                body: Body::Ack { ref_id: BatchId::from_u64(id), status: AckStatus::OK },
            };
            self.s.handle_frame(Instant::ZERO, Frame::Binary(ack.encode_to_bytes().unwrap()));
        }
        self.acked_to = self.next_id;
        while self.s.poll_event().is_some() {}
        assert_eq!(self.s.outbox_bytes(), 0, "every batch was acknowledged");
    }
}

/// The receive path: timed chunks of `handle_frame` + `poll_event` (+ drop of the event).
struct ReceiveBench {
    s: ClientSession,
    frame: Bytes,
    /// The transport's frames for one chunk (handles of one shared buffer), built before the chunk is timed.
    inputs: Vec<Frame>,
}

impl ReceiveBench {
    fn new() -> Self {
        let (s, _) = joined_session();
        ReceiveBench { s, frame: doc_update_frame(&update()), inputs: Vec::with_capacity(CHUNK as usize) }
    }

    fn run(&mut self, n: u64) -> (Duration, u64) {
        let mut spent = Duration::ZERO;
        let mut allocated = 0;
        let mut left = n;
        while left > 0 {
            let k = left.min(CHUNK);
            let frame = &self.frame;
            self.inputs.extend((0..k).map(|_| Frame::Binary(frame.clone())));
            let a0 = allocs();
            let t0 = StdInstant::now();
            for f in self.inputs.drain(..) {
                self.s.handle_frame(Instant::ZERO, black_box(f));
                match self.s.poll_event() {
                    Some(ClientEvent::Updates { updates, batch_id, room }) => {
                        // Read every update, as the codec baseline does: a lazy list must not win by skipping work.
                        for u in &updates {
                            black_box(u);
                        }
                        drop(black_box((updates, batch_id, room)))
                    }
                    other => panic!("expected Updates, got {other:?}"),
                }
            }
            spent += t0.elapsed();
            allocated += allocs() - a0;
            left -= k;
        }
        (spent, allocated)
    }
}

fn doc_update_frame(update: &Bytes) -> Bytes {
    let msg = Message {
        crdt: CrdtType::Loro,
        room: ROOM,
        body: Body::DocUpdate { updates: Updates::one(update), batch_id: BatchId::from_u64(77) },
    };
    msg.encode_to_bytes().unwrap()
}

fn encode_into_vec(update: &Bytes, buf: &mut Vec<u8>) {
    buf.clear();
    let msg = Message {
        crdt: CrdtType::Loro,
        room: ROOM,
        body: Body::DocUpdate { updates: Updates::one(black_box(update)), batch_id: BatchId::from_u64(77) },
    };
    msg.encode_into_vec(buf).unwrap();
    black_box(&buf);
}

fn encode_to_bytes(update: &Bytes) -> Bytes {
    let msg = Message {
        crdt: CrdtType::Loro,
        room: ROOM,
        body: Body::DocUpdate { updates: Updates::one(black_box(update)), batch_id: BatchId::from_u64(77) },
    };
    black_box(msg.encode_to_bytes().unwrap())
}

fn decode(frame: &Bytes) {
    let msg = Message::decode(black_box(frame)).unwrap();
    black_box(msg.room);
    if let Body::DocUpdate { updates, batch_id } = msg.body {
        black_box(batch_id);
        for u in updates {
            black_box(u);
        }
    }
}

/// Informational: the contents of an `Updates` event built with the bare codec from a borrowed frame — decode,
/// an `UpdateList` sharing the frame, a clone of the room's key — read and then dropped. What the event API costs
/// before any session logic: reference-count traffic on the frame and on the key, no allocation.
fn decode_to_event_contents(frame: &Bytes, key: &RoomKey) {
    let msg = Message::decode(black_box(frame)).unwrap();
    black_box(msg.room);
    if let Body::DocUpdate { updates, batch_id } = msg.body {
        let owned = UpdateList::from_decoded(frame, &updates);
        for u in &owned {
            black_box(u);
        }
        drop(black_box((owned, batch_id, key.clone())));
    }
}

// -------------------------------------------------------------------------------------------------------------
// Criterion
// -------------------------------------------------------------------------------------------------------------

fn benches(c: &mut Criterion) {
    let u = update();
    let mut g = c.benchmark_group("client/send_64b");
    let mut sb = SendBench::new();
    g.bench_function("session", |b| b.iter_custom(|iters| sb.run(iters).0));
    g.bench_function("codec_encode_to_bytes", |b| b.iter(|| encode_to_bytes(&u)));
    let mut buf = Vec::with_capacity(256);
    g.bench_function("codec_encode_into_vec", |b| b.iter(|| encode_into_vec(&u, &mut buf)));
    g.finish();

    let frame = doc_update_frame(&u);
    let mut g = c.benchmark_group("client/receive_doc_update");
    let mut rb = ReceiveBench::new();
    g.bench_function("session", |b| b.iter_custom(|iters| rb.run(iters).0));
    g.bench_function("codec_decode", |b| b.iter(|| decode(&frame)));
    g.finish();
}

// -------------------------------------------------------------------------------------------------------------
// Summary: ns/op, ratios, allocations/op
// -------------------------------------------------------------------------------------------------------------

/// Median ns/op over 15 runs of `n` ops, and allocations per op.
fn measure(n: u64, mut run: impl FnMut(u64) -> (Duration, u64)) -> (f64, f64) {
    run(n); // warm-up
    let mut ns = Vec::new();
    let mut allocated = 0;
    for _ in 0..15 {
        let (d, a) = run(n);
        ns.push(d.as_nanos() as f64 / n as f64);
        allocated = a;
    }
    ns.sort_by(f64::total_cmp);
    (ns[ns.len() / 2], allocated as f64 / n as f64)
}

fn timed(n: u64, mut op: impl FnMut()) -> (Duration, u64) {
    let a0 = allocs();
    let t0 = StdInstant::now();
    for _ in 0..n {
        op();
    }
    (t0.elapsed(), allocs() - a0)
}

fn summary() {
    const N: u64 = 100_000;
    let u = update();
    let mut sb = SendBench::new();
    let send = measure(N, |n| sb.run(n));
    let enc_bytes = measure(N, |n| timed(n, || drop(encode_to_bytes(&u))));
    let mut buf = Vec::with_capacity(256);
    let enc_vec = measure(N, |n| timed(n, || encode_into_vec(&u, &mut buf)));
    let app_input = measure(N, |n| timed(n, || drop(black_box(vec![black_box(&u).clone()]))));
    let mut rb = ReceiveBench::new();
    let recv = measure(N, |n| rb.run(n));
    let frame = doc_update_frame(&u);
    let dec = measure(N, |n| timed(n, || decode(&frame)));
    let key = joined_session().1;
    let dec_event = measure(N, |n| timed(n, || decode_to_event_contents(&frame, &key)));

    println!();
    println!("client summary (median of 15 runs of {N} ops)");
    println!("{:<58} {:>9} {:>11}", "path", "ns/op", "allocs/op");
    for (name, (ns, a)) in [
        ("send 64 B → poll_transmit → drop frame (session)", send),
        ("encode_to_bytes → drop (codec, like-for-like)", enc_bytes),
        ("encode_into_vec, reused Vec (codec floor)", enc_vec),
        ("  info: app input vec![update.clone()] (not timed above)", app_input),
        ("DocUpdate → poll_event → drop event (session)", recv),
        ("decode + iterate (codec)", dec),
        ("  info: decode → event contents, owned (codec)", dec_event),
    ] {
        println!("{name:<58} {ns:>9.1} {a:>11.2}");
    }
    println!("ratio send / encode_to_bytes:   {:.2}x (target <= 3x; like-for-like)", send.0 / enc_bytes.0);
    println!("ratio send / encode_into_vec:   {:.2}x", send.0 / enc_vec.0);
    println!("ratio receive / decode:         {:.2}x (target <= 3x)", recv.0 / dec.0);
    println!("  info: receive / event contents: {:.2}x (the session's own share)", recv.0 / dec_event.0);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    // `cargo bench -- <filter>` runs only the matching criterion benches; the summary runs when unfiltered.
    if !filtered() {
        summary();
    }
}

/// True when a positional (filter) argument was given.
fn filtered() -> bool {
    const TAKES_VALUE: [&str; 12] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--output-format",
        "--color",
        "--plotting-backend",
        "--noise-threshold",
        "--confidence-level",
        "--profile-time",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if TAKES_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return true;
        }
    }
    false
}
