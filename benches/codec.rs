//! Codec benchmarks, side by side in one run: this crate (`ours`), the official `loro-protocol` 0.3.0 crate
//! (`official`) and a plain copy of the same frame bytes into a preallocated buffer (`memcpy`, the floor).
//!
//! Cases: (a) a DocUpdate with one 64-byte update, (b) a DocUpdate with 16 updates of 1 KiB, (c) one ~250 KiB
//! DocUpdateFragment, (d) a JoinRequest.
//!
//! - `decode/<case>`: every field is read and every update iterated, each through `black_box`, so a lazy view does
//!   not win by skipping work; the official decoder materialises the message as it always does.
//! - `encode/<case>`: ours encodes from the caller's own slices with `encode_into_vec` into one reused, cleared Vec
//!   (capacity kept); the official `encode` returns a new Vec each time; `memcpy` copies the finished frame.
//!
//! Run: `cargo bench --bench codec` (add `-- --warm-up-time 1 --measurement-time 3` for a shorter run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use loro_protocol as official;
use loro_protocol::ProtocolMessage as PM;
use loro_sansio::wire::{BatchId, Body, CrdtType, Message, Updates};

const ROOM: &str = "room-1234";
const BATCH: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// One benchmark case: the owned payloads, from which both crates' messages are built.
struct Case {
    name: &'static str,
    kind: Kind,
}

enum Kind {
    DocUpdate(Vec<Vec<u8>>),
    Fragment(Vec<u8>),
    JoinRequest { auth: Vec<u8>, version: Vec<u8> },
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case { name: "doc_update_1x64", kind: Kind::DocUpdate(vec![pattern(64, 1)]) },
        Case { name: "doc_update_16x1k", kind: Kind::DocUpdate((0..16).map(|i| pattern(1024, i)).collect()) },
        Case { name: "fragment_250k", kind: Kind::Fragment(pattern(250 * 1024, 7)) },
        Case { name: "join_request", kind: Kind::JoinRequest { auth: pattern(48, 3), version: pattern(24, 5) } },
    ]
}

/// Our message for a case; `parts` holds the update slices it borrows.
fn ours<'a>(case: &'a Case, parts: &'a [&'a [u8]]) -> Message<'a> {
    let body = match &case.kind {
        Kind::DocUpdate(_) => Body::DocUpdate { updates: Updates::from_slices(parts), batch_id: BatchId(BATCH) },
        Kind::Fragment(data) => Body::Fragment { batch_id: BatchId(BATCH), index: 3, data },
        Kind::JoinRequest { auth, version } => Body::JoinRequest { auth, version },
    };
    Message { crdt: CrdtType::Loro, room: ROOM, body }
}

fn official_msg(case: &Case) -> PM {
    let crdt = official::CrdtType::Loro;
    let room_id = ROOM.to_string();
    match &case.kind {
        Kind::DocUpdate(u) => PM::DocUpdate { crdt, room_id, updates: u.clone(), batch_id: official::BatchId(BATCH) },
        Kind::Fragment(data) => PM::DocUpdateFragment {
            crdt,
            room_id,
            batch_id: official::BatchId(BATCH),
            index: 3,
            fragment: data.clone(),
        },
        Kind::JoinRequest { auth, version } => {
            PM::JoinRequest { crdt, room_id, auth: auth.clone(), version: version.clone() }
        }
    }
}

/// Reads every field of our decoded view, iterating every update.
#[inline]
fn consume_ours(m: &Message<'_>) {
    black_box(m.crdt);
    black_box(m.room);
    match m.body {
        Body::DocUpdate { updates, batch_id } => {
            for u in updates {
                black_box(u);
            }
            black_box(batch_id);
        }
        Body::Fragment { batch_id, index, data } => {
            black_box(batch_id);
            black_box(index);
            black_box(data);
        }
        Body::JoinRequest { auth, version } => {
            black_box(auth);
            black_box(version);
        }
        // By value, like every arm above (`Body` is `Copy`). A `ref` binding here, in an arm no case reaches,
        // takes the message's address: the decoded view is then stored and copied before it is read, which costs
        // about as much as decoding a small frame and measures this function rather than the decoder.
        other => {
            black_box(other);
        }
    }
}

/// Reads every field of the official decoded message, iterating every update.
#[inline]
fn consume_official(m: &PM) {
    match m {
        PM::DocUpdate { crdt, room_id, updates, batch_id } => {
            black_box(crdt);
            black_box(room_id);
            for u in updates {
                black_box(u);
            }
            black_box(batch_id);
        }
        PM::DocUpdateFragment { crdt, room_id, batch_id, index, fragment } => {
            black_box(crdt);
            black_box(room_id);
            black_box(batch_id);
            black_box(index);
            black_box(fragment);
        }
        PM::JoinRequest { crdt, room_id, auth, version } => {
            black_box(crdt);
            black_box(room_id);
            black_box(auth);
            black_box(version);
        }
        other => {
            black_box(other);
        }
    }
}

fn bench_codec(c: &mut Criterion) {
    for case in cases() {
        let parts: Vec<&[u8]> = match &case.kind {
            Kind::DocUpdate(u) => u.iter().map(Vec::as_slice).collect(),
            _ => Vec::new(),
        };
        let msg = ours(&case, &parts);
        let pm = official_msg(&case);
        let frame = msg.encode_to_bytes().expect("valid").to_vec();
        assert_eq!(official::encode(&pm).expect("valid"), frame, "{}: both crates write the same frame", case.name);
        assert_eq!(official::decode(&frame).expect("decodes"), pm);

        let mut g = c.benchmark_group(format!("decode/{}", case.name));
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function("ours", |b| {
            b.iter(|| {
                let m = Message::decode(black_box(&frame)).expect("decodes");
                consume_ours(&m);
            })
        });
        g.bench_function("official", |b| {
            b.iter(|| {
                let m = official::decode(black_box(&frame)).expect("decodes");
                consume_official(&m);
            })
        });
        let mut dst = vec![0u8; frame.len()];
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&frame));
                black_box(&dst);
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("encode/{}", case.name));
        g.throughput(Throughput::Bytes(frame.len() as u64));
        let mut out: Vec<u8> = Vec::with_capacity(frame.len());
        g.bench_function("ours", |b| {
            b.iter(|| {
                out.clear();
                black_box(&msg).encode_into_vec(&mut out).expect("valid");
                black_box(&out);
            })
        });
        let mut slot = vec![0u8; frame.len()];
        g.bench_function("ours_slice", |b| {
            b.iter(|| {
                let n = black_box(&msg).encode_into_slice(&mut slot).expect("valid");
                black_box(&slot[..n]);
            })
        });
        g.bench_function("official", |b| {
            b.iter(|| {
                let v = official::encode(black_box(&pm)).expect("valid");
                black_box(v);
            })
        });
        let mut dst = vec![0u8; frame.len()];
        g.bench_function("memcpy", |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&frame));
                black_box(&dst);
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
