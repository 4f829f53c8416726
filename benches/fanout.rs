//! `fanout`: the server's broadcast path and join backfill.
//!
//! * `fanout/broadcast/N`: one 100-byte DocUpdate from a writer into a `%LOR` room where N other members receive
//!   it (`AckMode::AfterApply`, limits raised out of the way). Timed: `handle_frame` of the update, which
//!   validates it, applies it to the room's update log, queues the one encoded frame for every recipient and
//!   acks the sender. Untimed between iterations: draining every queue and the events. Criterion's throughput is
//!   in recipients, so its element rate gives the time per recipient (target ≤ 50 ns).
//! * Allocations per broadcast are counted by a global allocator wrapper and printed as a summary table before
//!   the criterion runs (target: a constant, independent of N).
//! * `fanout/join_backfill_10k`: a client joins a room holding 10,000 stored 100-byte updates. Timed: the
//!   JoinRequest, the application's accept, JoinResponseOk and draining every backfill frame.

#[path = "../tests/common/splitmix.rs"]
mod splitmix;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant as StdInstant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use loro_sansio::rand_core::TryRng;
use loro_sansio::server::{AckMode, BuiltinDocs, ConnId, LoadedRoom, Server, ServerConfig, ServerEvent};
use loro_sansio::wire::{BatchId, Body, CrdtType, Frame, Message, Permission, Updates};
use loro_sansio::{Instant, Transmit};

/// Counts every allocation (and reallocation) the process makes.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

/// SplitMix64 for the server's batch ids.
struct Rng(u64);

impl TryRng for Rng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(splitmix::next_u64(&mut self.0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        splitmix::fill(dst, || splitmix::next_u64(&mut self.0));
        Ok(())
    }
}

const ROOM: &str = "bench-room";
const SIZES: [usize; 4] = [1, 100, 1_000, 10_000];

fn config() -> ServerConfig {
    let mut c = ServerConfig { ack_mode: AckMode::AfterApply, idle_timeout: None, ..ServerConfig::default() };
    c.limits.max_connections = 20_000;
    c.limits.max_members_per_room = 20_000;
    c.limits.update_rate = None;
    c.limits.max_queued_bytes_per_connection = usize::MAX;
    c.limits.max_stored_bytes_per_room = usize::MAX;
    c
}

fn now() -> Instant {
    Instant::from_millis(1_000)
}

/// Answers joins (write) and loads (empty, or `stored`) until no event is left.
fn answer(server: &mut Server, stored: &[Bytes]) {
    while let Some(e) = server.poll_event() {
        match e {
            ServerEvent::JoinRequested { ticket, .. } => {
                server.accept_join(now(), ticket, Permission::Write, Bytes::new()).expect("fresh ticket")
            }
            ServerEvent::LoadRoom { ticket, .. } => {
                let loaded = LoadedRoom { snapshot: None, updates: stored.to_vec(), last_seq: stored.len() as u64 };
                server.room_loaded(now(), ticket, Ok(loaded)).expect("fresh ticket")
            }
            _ => {}
        }
    }
}

fn join_frame() -> Frame {
    let msg = Message { crdt: CrdtType::Loro, room: ROOM, body: Body::JoinRequest { auth: b"", version: b"" } };
    Frame::Binary(msg.encode_to_bytes().expect("valid"))
}

/// Every queued transmit of `conn`, dropped; returns the bytes.
fn drain(server: &mut Server, conn: ConnId) -> usize {
    let mut bytes = 0;
    while let Some(t) = server.poll_transmit(conn) {
        if let Transmit::Frame(f) = t {
            bytes += f.len();
        }
    }
    bytes
}

/// A server with one writer and `n` other members in the room.
fn room_of(n: usize) -> (Server, ConnId, Vec<ConnId>) {
    let mut server = Server::new(config(), BuiltinDocs, Rng(1));
    let writer = server.open_connection(now()).expect("room for the writer");
    server.handle_frame(now(), writer, join_frame());
    answer(&mut server, &[]);
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let c = server.open_connection(now()).expect("room for members");
        server.handle_frame(now(), c, join_frame());
        answer(&mut server, &[]);
        members.push(c);
    }
    settle(&mut server, writer, &members);
    (server, writer, members)
}

/// Drains every queue, the ready list and the events (untimed work between broadcasts).
fn settle(server: &mut Server, writer: ConnId, members: &[ConnId]) {
    drain(server, writer);
    for &m in members {
        drain(server, m);
    }
    while server.poll_ready().is_some() {}
    while server.poll_event().is_some() {}
}

/// The i-th distinct 100-byte update in a DocUpdate frame (distinct, so the update log never drops it).
fn update_frame(i: u64) -> Frame {
    let mut update = [0u8; 100];
    update[..8].copy_from_slice(&i.to_le_bytes());
    let msg = Message {
        crdt: CrdtType::Loro,
        room: ROOM,
        body: Body::DocUpdate { updates: Updates::one(&update), batch_id: BatchId::from_u64(i) },
    };
    Frame::Binary(msg.encode_to_bytes().expect("valid"))
}

/// Allocations per broadcast (mean) and the median time of one broadcast over `rounds` broadcasts, each measured
/// alone with the queues drained in between. The median keeps the table steady on a busy machine.
fn measure(n: usize, rounds: u64) -> (f64, f64) {
    let (mut server, writer, members) = room_of(n);
    // Warm-up: queues reach their steady capacity.
    for i in 0..8 {
        server.handle_frame(now(), writer, update_frame(u64::MAX - i));
        settle(&mut server, writer, &members);
    }
    let mut allocs = 0u64;
    let mut times = Vec::with_capacity(rounds as usize);
    for i in 0..rounds {
        let frame = update_frame(i);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let start = StdInstant::now();
        server.handle_frame(now(), writer, frame);
        let elapsed = start.elapsed();
        allocs += ALLOCATIONS.load(Ordering::Relaxed) - before;
        times.push(elapsed);
        settle(&mut server, writer, &members);
    }
    times.sort();
    (allocs as f64 / rounds as f64, times[times.len() / 2].as_nanos() as f64)
}

/// The join + backfill of a 10,000-update room: (time, frames, bytes).
fn join_backfill_once(server: &mut Server, stored: &[Bytes]) -> (Duration, usize) {
    let start = StdInstant::now();
    let c = server.open_connection(now()).expect("room for the joiner");
    server.handle_frame(now(), c, join_frame());
    answer(server, stored);
    let bytes = drain(server, c);
    let elapsed = start.elapsed();
    server.connection_closed(now(), c);
    while server.poll_event().is_some() {}
    while server.poll_ready().is_some() {}
    (elapsed, bytes)
}

fn stored_updates() -> Vec<Bytes> {
    (0..10_000u64)
        .map(|i| {
            let mut u = vec![0u8; 100];
            u[..8].copy_from_slice(&i.to_le_bytes());
            Bytes::from(u)
        })
        .collect()
}

/// A loaded room holding `stored`, kept loaded by one idle member.
fn backfill_room(stored: &[Bytes]) -> Server {
    let mut server = Server::new(config(), BuiltinDocs, Rng(2));
    let keeper = server.open_connection(now()).expect("room");
    server.handle_frame(now(), keeper, join_frame());
    answer(&mut server, stored);
    drain(&mut server, keeper);
    while server.poll_event().is_some() {}
    server
}

fn summary() {
    println!("fanout summary (one 100-byte update, AckMode::AfterApply; queues drained between broadcasts)");
    println!("| recipients | median ns per broadcast | ns per recipient | allocations per broadcast |");
    println!("|-----------:|------------------------:|-----------------:|--------------------------:|");
    for n in SIZES {
        let rounds = (200_000 / n as u64).clamp(50, 20_000);
        let (allocs, ns) = measure(n, rounds);
        println!("| {n:>10} | {ns:>23.0} | {:>16.1} | {allocs:>25.2} |", ns / n as f64);
    }
    let stored = stored_updates();
    let mut server = backfill_room(&stored);
    let mut best = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..10 {
        let (t, b) = join_backfill_once(&mut server, &stored);
        best = best.min(t);
        bytes = b;
    }
    println!("join + backfill of 10,000 stored updates: best of 10 {best:?} ({bytes} bytes of frames drained)");
}

fn bench(c: &mut Criterion) {
    summary();
    let mut group = c.benchmark_group("fanout");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let (mut server, writer, members) = room_of(n);
        let mut next = 0u64;
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("broadcast", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let frame = update_frame(next);
                    next += 1;
                    let start = StdInstant::now();
                    server.handle_frame(now(), writer, black_box(frame));
                    total += start.elapsed();
                    settle(&mut server, writer, &members);
                }
                total
            })
        });
    }
    let stored = stored_updates();
    let mut server = backfill_room(&stored);
    group.throughput(Throughput::Elements(stored.len() as u64));
    group.sample_size(10);
    group.bench_function("join_backfill_10k", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| join_backfill_once(&mut server, &stored).0).sum())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
