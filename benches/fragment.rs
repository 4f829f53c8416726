//! Fragmentation and reassembly throughput against a plain memcpy of the same bytes.
//!
//! For a 1 MiB and a 16 MiB update, in one run:
//! * `memcpy`: the update copied into a preallocated buffer (the baseline);
//! * `fragment`: `Fragmenter::plan` + `frames`, every frame encoded (one copy of the update in all);
//! * `reassemble`: every frame decoded with `Message::decode` and fed to a `Reassembler`, fragments passed as
//!   zero-copy `Bytes` slices of their frame (one copy of the update into the output);
//! * `roundtrip`: both, streamed as a sender and a receiver would: each frame is decoded and reassembled as soon
//!   as it is encoded, then dropped;
//! * `roundtrip_collected`: both, but every frame is encoded before the first is decoded, so that all of them are
//!   alive at once next to the output (twice the update's size). This one mostly measures the allocator: glibc
//!   hands the freed memory back to the kernel at the end of each iteration and page-faults it in again at the
//!   next.
//!
//! Targets: `reassemble` ≤ 1.2 × `memcpy`; `roundtrip` ≤ 2.5 × `memcpy`.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use loro_sansio::fragment::{Budget, FragmentOutcome, Fragmenter, Reassembler};
use loro_sansio::wire::{BatchId, Body, CrdtType, Message};
use loro_sansio::Instant;

const ROOM: &str = "bench-room";
const MIB: usize = 1024 * 1024;

/// A pseudo-random update of `len` bytes (xorshift; the content does not matter, only that it is not constant).
fn update(len: usize) -> Bytes {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        v.extend_from_slice(&state.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

/// The frames of a send of `update` alone, encoded as they are pulled.
fn encode_frames<'a>(f: &'a Fragmenter, update: &'a Bytes) -> impl Iterator<Item = Bytes> + 'a {
    let sends = std::slice::from_ref(update);
    f.plan(ROOM.len(), sends).enumerate().flat_map(move |(n, batch)| {
        f.frames(CrdtType::Loro, ROOM, BatchId::from_u64(n as u64), batch, sends).expect("plannable")
    })
}

/// Every frame of a send of `update` alone.
fn fragment(f: &Fragmenter, update: &Bytes) -> Vec<Bytes> {
    encode_frames(f, update).collect()
}

/// Decodes `frames` and reassembles the one update they carry.
fn reassemble(frames: impl IntoIterator<Item = Bytes>) -> Bytes {
    let mut r = Reassembler::default();
    let mut global = Budget::unlimited();
    let now = Instant::ZERO;
    for frame in frames {
        let msg = Message::decode(&frame).expect("valid frame");
        match msg.body {
            Body::FragmentHeader { batch_id, fragment_count, total_size } => {
                r.handle_header(now, msg.crdt, msg.room, batch_id, fragment_count, total_size, &mut global);
            }
            Body::Fragment { batch_id, index, data } => {
                let data = frame.slice_ref(data);
                if let FragmentOutcome::Complete(update) =
                    r.handle_fragment(now, msg.crdt, msg.room, batch_id, index, data, &mut global)
                {
                    return update;
                }
            }
            Body::DocUpdate { updates, .. } => {
                return updates.iter().next().map(|u| frame.slice_ref(u)).unwrap_or_default();
            }
            _ => unreachable!("only update frames"),
        }
    }
    unreachable!("the batch completes")
}

fn bench(c: &mut Criterion) {
    let f = Fragmenter::new();
    let mut group = c.benchmark_group("fragment");
    for (label, len) in [("1MiB", MIB), ("16MiB", 16 * MIB)] {
        let u = update(len);
        let frames = fragment(&f, &u);
        assert_eq!(reassemble(frames.iter().cloned()), u, "the round trip is exact");
        assert_eq!(reassemble(encode_frames(&f, &u)), u, "the streamed round trip is exact");
        group.throughput(Throughput::Bytes(len as u64));
        if len > 4 * MIB {
            group.sample_size(20);
        } else {
            group.sample_size(60);
        }

        let mut dst = vec![0u8; len];
        group.bench_function(BenchmarkId::new("memcpy", label), |b| {
            b.iter(|| {
                dst.copy_from_slice(black_box(&u));
                black_box(dst.as_ptr());
            })
        });
        group.bench_function(BenchmarkId::new("fragment", label), |b| b.iter(|| fragment(&f, black_box(&u))));
        group.bench_function(BenchmarkId::new("reassemble", label), |b| {
            b.iter(|| reassemble(black_box(&frames).iter().cloned()))
        });
        group.bench_function(BenchmarkId::new("roundtrip", label), |b| {
            b.iter(|| reassemble(encode_frames(&f, black_box(&u))))
        });
        group.bench_function(BenchmarkId::new("roundtrip_collected", label), |b| {
            b.iter(|| reassemble(fragment(&f, black_box(&u))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
