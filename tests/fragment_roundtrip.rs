//! Round trips through [`Fragmenter`] and [`Reassembler`]: every frame within the limit and decodable, fragments
//! delivered in any order with any duplicates, the update rebuilt byte for byte exactly once; and sends of mixed
//! small and oversized updates planned into batches whose Acks map back to the updates they carry.

use std::collections::HashMap;

use bytes::Bytes;
use chacha20::ChaCha8Rng;
use loro_sansio::fragment::{
    Budget, FragmentOutcome, Fragmenter, HeaderOutcome, PlannedBatch, Reassembler, ReassemblyConfig, DEFAULT_CHUNK_SIZE,
};
use loro_sansio::wire::{
    doc_update_overhead, fragment_overhead, update_entry_len, AckStatus, BatchId, Body, CrdtType, Message,
    MAX_FRAME_SIZE,
};
use loro_sansio::Instant;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rand_core::{Rng, SeedableRng};

const MIB: usize = 1024 * 1024;

/// `len` bytes from a ChaCha8 stream seeded with `seed`.
fn update(len: usize, seed: u64) -> Bytes {
    let mut v = vec![0u8; len];
    ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
    Bytes::from(v)
}

/// A room id of `len` ASCII bytes.
fn room_of(len: usize) -> String {
    (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

fn config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..ProptestConfig::default() }
}

/// A uniform index below `n` (n > 0).
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// The order in which fragments `0..n` are delivered: a random permutation with `dups` random repeats mixed in.
fn delivery(n: usize, dups: usize, seed: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, below(&mut rng, i + 1));
    }
    for _ in 0..dups {
        let at = below(&mut rng, order.len() + 1);
        let which = below(&mut rng, n) as u32;
        order.insert(at, which);
    }
    order
}

/// Encodes `update` as one send through `fragmenter`, checks every frame, then delivers the header followed by
/// the fragments in `order` to a fresh reassembler. Returns the reassembled update.
fn fragment_and_reassemble(fragmenter: &Fragmenter, room: &str, update: &Bytes, order_seed: u64, dups: usize) -> Bytes {
    let limit = fragmenter.max_frame_size();
    let sends = std::slice::from_ref(update);
    let plan: Vec<PlannedBatch> = fragmenter.plan(room.len(), sends).collect();
    assert_eq!(plan.len(), 1, "one update is one batch");
    let batch = plan[0];
    let batch_id = BatchId::from_u64(order_seed);
    let frames: Vec<Bytes> = fragmenter.frames(CrdtType::Loro, room, batch_id, batch, sends).unwrap().collect();
    assert_eq!(frames.len(), batch.frame_count());
    for f in &frames {
        assert!(f.len() <= limit, "frame of {} bytes over the {limit}-byte limit", f.len());
        let msg = Message::decode(f).expect("every frame decodes");
        assert_eq!((msg.crdt, msg.room), (CrdtType::Loro, room));
    }
    match batch {
        PlannedBatch::Packed { start: 0, end: 1 } => {
            assert!(fragmenter.fits_one_frame(room.len(), update.len()));
            let msg = Message::decode(&frames[0]).unwrap();
            let Body::DocUpdate { updates, batch_id: id } = msg.body else { panic!("expected a DocUpdate") };
            assert_eq!(id, batch_id);
            assert_eq!(updates.len(), 1);
            Bytes::copy_from_slice(updates.iter().next().unwrap())
        }
        PlannedBatch::Fragmented { fragments, fragment_size, .. } => {
            assert!(!fragmenter.fits_one_frame(room.len(), update.len()));
            assert_eq!(fragments as usize, update.len().div_ceil(fragment_size));
            // Sized exactly: one more byte per fragment would overflow the frame (unless the chunk size binds).
            let grown = fragment_overhead(room.len(), fragments - 1, fragment_size + 1) + fragment_size + 1;
            assert!(fragment_size == fragmenter.chunk_size() || grown > limit);
            let header = Message::decode(&frames[0]).unwrap();
            let Body::FragmentHeader { batch_id: id, fragment_count, total_size } = header.body else {
                panic!("expected a header first")
            };
            assert_eq!((id, fragment_count, total_size as usize), (batch_id, fragments, update.len()));
            let mut r = Reassembler::new(ReassemblyConfig { max_fragments: u32::MAX, ..ReassemblyConfig::default() });
            let mut global = Budget::unlimited();
            let now = Instant::ZERO;
            assert_eq!(
                r.handle_header(now, CrdtType::Loro, room, id, fragment_count, total_size, &mut global),
                HeaderOutcome::Started
            );
            let mut seen = vec![false; fragments as usize];
            let mut left = fragments as usize;
            let mut result = None;
            for i in delivery(fragments as usize, dups, order_seed) {
                let frame = &frames[1 + i as usize];
                let msg = Message::decode(frame).unwrap();
                let Body::Fragment { batch_id: fid, index, data } = msg.body else { panic!("expected a fragment") };
                assert_eq!((fid, index), (batch_id, i));
                let chunk = &update[i as usize * fragment_size..];
                assert_eq!(data, &chunk[..chunk.len().min(fragment_size)]);
                let outcome =
                    r.handle_fragment(now, CrdtType::Loro, room, fid, index, frame.slice_ref(data), &mut global);
                match outcome {
                    FragmentOutcome::Complete(bytes) => {
                        assert!(!seen[i as usize] && left == 1 && result.is_none(), "exactly one Complete");
                        seen[i as usize] = true;
                        left = 0;
                        result = Some(bytes);
                    }
                    FragmentOutcome::Stored => {
                        assert!(!seen[i as usize] && left > 1);
                        seen[i as usize] = true;
                        left -= 1;
                    }
                    FragmentOutcome::Duplicate => assert!(seen[i as usize] && left > 0),
                    FragmentOutcome::Ignored => assert_eq!(left, 0),
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(r.batch_count(), 0);
            assert_eq!((r.bytes_reserved(), global.used()), (0, 0));
            let stats = r.stats();
            assert_eq!((stats.completed, stats.rejected, stats.expired), (1, 0, 0));
            result.expect("the batch completes")
        }
        other => panic!("unexpected plan {other:?}"),
    }
}

proptest! {
    #![proptest_config(config(24, 0x4652_4147_0001))]

    /// Updates from 0 bytes to 6 MiB with the default limits (245,760-byte chunks, 256 KiB frames).
    #[test]
    fn large_updates_round_trip(
        len in prop_oneof![
            0..=4096usize,
            (MAX_FRAME_SIZE - 64)..=(MAX_FRAME_SIZE + 64),
            (DEFAULT_CHUNK_SIZE - 8)..=(2 * DEFAULT_CHUNK_SIZE + 8),
            0..=6 * MIB,
        ],
        seed in any::<u64>(),
        room_len in prop_oneof![Just(0usize), Just(128), 0..=128usize],
        dups in 0..8usize,
    ) {
        let u = update(len, seed);
        let back = fragment_and_reassemble(&Fragmenter::new(), &room_of(room_len), &u, seed ^ 0x5a5a, dups);
        prop_assert_eq!(back, u);
    }
}

proptest! {
    #![proptest_config(config(160, 0x4652_4147_0002))]

    /// Small custom limits, so that one update makes hundreds of fragments cheaply.
    #[test]
    fn small_limits_round_trip(
        len in 0..=40_000usize,
        chunk in prop_oneof![1..=64usize, 1..=4096usize],
        frame in 512..=4096usize,
        seed in any::<u64>(),
        room_len in 0..=128usize,
        dups in 0..64usize,
    ) {
        let f = Fragmenter::with_limits(chunk, frame).unwrap();
        let u = update(len, seed);
        let back = fragment_and_reassemble(&f, &room_of(room_len), &u, seed.rotate_left(17), dups);
        prop_assert_eq!(back, u);
    }
}

/// The exact DocUpdate frame length for updates `range` of `updates`.
fn packed_len(room_len: usize, updates: &[Bytes], range: std::ops::Range<usize>) -> usize {
    doc_update_overhead(room_len, range.len()) + updates[range].iter().map(|u| update_entry_len(u.len())).sum::<usize>()
}

/// Checks the plan of `updates` and simulates the whole exchange: the sender encodes every batch under its own
/// batch id, frames of different batches interleave on the wire (each batch's own frames in order), a receiver
/// answers one Ack per batch, and the sender maps each Ack back to the updates it covers.
fn check_send(f: &Fragmenter, room: &str, updates: &[Bytes], seed: u64) {
    let limit = f.max_frame_size();
    let room_len = room.len();
    let plan: Vec<PlannedBatch> = f.plan(room_len, updates).collect();

    // The batches partition 0..n in order.
    let mut next = 0;
    for (k, batch) in plan.iter().enumerate() {
        let r = batch.updates();
        assert_eq!(r.start, next, "batch {k} starts where the previous one ended");
        assert!(r.end > r.start, "batch {k} is not empty");
        next = r.end;
        match *batch {
            PlannedBatch::Packed { start, end } => {
                let len = packed_len(room_len, updates, start..end);
                assert!(len <= limit, "packed batch {k} of {len} bytes over {limit}");
                for u in &updates[start..end] {
                    assert!(f.fits_one_frame(room_len, u.len()));
                }
                // Greedy: the next update would not have fitted this frame.
                if end < updates.len() {
                    assert!(packed_len(room_len, updates, start..end + 1) > limit, "batch {k} could have packed more");
                }
            }
            PlannedBatch::Fragmented { index, .. } => {
                assert_eq!(r.len(), 1, "an oversized update travels alone");
                assert!(!f.fits_one_frame(room_len, updates[index].len()));
            }
            PlannedBatch::TooLarge { .. } => panic!("no update here exceeds 4 GiB"),
        }
    }
    assert_eq!(next, updates.len(), "the batches cover every update");

    // Sender: one batch id per batch, remembered until its Ack.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut in_flight: HashMap<BatchId, std::ops::Range<usize>> = HashMap::new();
    let mut queues: Vec<std::collections::VecDeque<Bytes>> = Vec::new();
    for batch in &plan {
        let id = loop {
            let id = BatchId::from_u64(rng.next_u64());
            if !in_flight.contains_key(&id) {
                break id;
            }
        };
        in_flight.insert(id, batch.updates());
        let frames: Vec<Bytes> = f.frames(CrdtType::Loro, room, id, *batch, updates).unwrap().collect();
        assert_eq!(frames.len(), batch.frame_count());
        for fr in &frames {
            assert!(fr.len() <= limit);
        }
        if let PlannedBatch::Packed { start, end } = *batch {
            assert_eq!(frames[0].len(), packed_len(room_len, updates, start..end), "exact frame length");
        }
        queues.push(frames.into());
    }

    // Receiver: handles the interleaved frames and acks each batch once, keeping what it accepted.
    let mut reassembler = Reassembler::new(ReassemblyConfig { max_batches: plan.len(), ..ReassemblyConfig::default() });
    let mut global = Budget::unlimited();
    let mut acks: Vec<(BatchId, AckStatus)> = Vec::new();
    let mut received: HashMap<BatchId, Vec<Bytes>> = HashMap::new();
    let now = Instant::ZERO;
    loop {
        let live: Vec<usize> = (0..queues.len()).filter(|&q| !queues[q].is_empty()).collect();
        if live.is_empty() {
            break;
        }
        let q = live[below(&mut rng, live.len())];
        let frame = queues[q].pop_front().unwrap();
        let msg = Message::decode(&frame).unwrap();
        match msg.body {
            Body::DocUpdate { updates, batch_id } => {
                received.insert(batch_id, updates.iter().map(|u| frame.slice_ref(u)).collect());
                acks.push((batch_id, AckStatus::OK));
            }
            Body::FragmentHeader { batch_id, fragment_count, total_size } => {
                let outcome = reassembler.handle_header(
                    now,
                    msg.crdt,
                    msg.room,
                    batch_id,
                    fragment_count,
                    total_size,
                    &mut global,
                );
                assert_eq!(outcome, HeaderOutcome::Started);
            }
            Body::Fragment { batch_id, index, data } => {
                match reassembler.handle_fragment(
                    now,
                    msg.crdt,
                    msg.room,
                    batch_id,
                    index,
                    frame.slice_ref(data),
                    &mut global,
                ) {
                    FragmentOutcome::Stored => {}
                    FragmentOutcome::Complete(update) => {
                        received.insert(batch_id, vec![update]);
                        acks.push((batch_id, AckStatus::OK));
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    // Every Ack maps back to its updates; every update is acked exactly once and arrived intact.
    assert_eq!(acks.len(), plan.len(), "exactly one Ack per batch");
    let mut acked = vec![0u32; updates.len()];
    for (id, status) in acks {
        assert!(status.is_ok());
        let range = in_flight.remove(&id).expect("an Ack for a batch this send made");
        let got = &received[&id];
        assert_eq!(got.len(), range.len());
        for (u, i) in got.iter().zip(range) {
            assert_eq!(u, &updates[i]);
            acked[i] += 1;
        }
    }
    assert!(in_flight.is_empty());
    assert!(acked.iter().all(|&n| n == 1), "every update acked exactly once");
}

/// An update length drawn from a mix of tiny, frame-boundary and oversized sizes for a frame limit of `limit`.
fn mixed_len(limit: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => 0..=32usize,
        2 => 0..=limit / 3,
        2 => (limit - 40)..=(limit + 40),
        2 => limit..=4 * limit,
    ]
}

proptest! {
    #![proptest_config(config(128, 0x4652_4147_0003))]

    /// Mixed sends under small frame limits.
    #[test]
    fn mixed_send_small_limits(
        frame in 512..=2048usize,
        chunk in prop_oneof![Just(usize::MAX), 1..=3000usize],
        room_len in 0..=128usize,
        lens_seeds in prop::collection::vec((0..=9000usize, any::<u64>()), 0..24),
        shape in prop::collection::vec(0..4u8, 24),
        seed in any::<u64>(),
    ) {
        let f = Fragmenter::with_limits(chunk, frame).unwrap();
        // Reshape each raw length into one of the classes relative to this frame limit.
        let updates: Vec<Bytes> = lens_seeds
            .iter()
            .zip(&shape)
            .map(|(&(raw, s), &class)| {
                let len = match class {
                    0 => raw % 33,
                    1 => raw % (frame / 3 + 1),
                    2 => frame - 40 + raw % 81,
                    _ => frame + raw % (3 * frame + 1),
                };
                update(len, s)
            })
            .collect();
        check_send(&f, &room_of(room_len), &updates, seed);
    }
}

proptest! {
    #![proptest_config(config(8, 0x4652_4147_0004))]

    /// Mixed sends with the default limits and real sizes (up to 1 MiB per update).
    #[test]
    fn mixed_send_default_limits(
        lens in prop::collection::vec(mixed_len(MAX_FRAME_SIZE), 1..10),
        seed in any::<u64>(),
    ) {
        let updates: Vec<Bytes> = lens.iter().enumerate().map(|(i, &l)| update(l, seed ^ i as u64)).collect();
        check_send(&Fragmenter::new(), "room-1234", &updates, seed);
    }
}

/// A hand-picked send: small updates around an oversized one become three batches, and the frame of each
/// packed batch is exactly the computed length.
#[test]
fn mixed_send_example() {
    let f = Fragmenter::new();
    let updates = vec![update(10, 1), update(20, 2), update(600_000, 3), update(0, 4), update(MAX_FRAME_SIZE / 2, 5)];
    let plan: Vec<PlannedBatch> = f.plan(4, &updates).collect();
    assert_eq!(plan.len(), 3);
    assert_eq!(plan[0], PlannedBatch::Packed { start: 0, end: 2 });
    assert!(matches!(plan[1], PlannedBatch::Fragmented { index: 2, fragments: 3, .. }));
    assert_eq!(plan[2], PlannedBatch::Packed { start: 3, end: 5 });
    check_send(&f, "room", &updates, 7);
}

/// A DocUpdate exactly at the frame limit is packed; one byte more and the update is fragmented.
#[test]
fn frame_limit_is_inclusive() {
    for limit in [512, 1000, MAX_FRAME_SIZE] {
        let f = Fragmenter::with_limits(DEFAULT_CHUNK_SIZE, limit).unwrap();
        let room = "r";
        let mut len = limit - doc_update_overhead(room.len(), 1);
        while doc_update_overhead(room.len(), 1) + update_entry_len(len) > limit {
            len -= 1;
        }
        let fits = [update(len, 1)];
        let plan: Vec<PlannedBatch> = f.plan(room.len(), &fits).collect();
        assert_eq!(plan, [PlannedBatch::Packed { start: 0, end: 1 }]);
        let frame = f.frames(CrdtType::Loro, room, BatchId([0; 8]), plan[0], &fits).unwrap().next().unwrap();
        assert_eq!(frame.len(), limit, "exactly at the limit");
        let over = [update(len + 1, 1)];
        let plan: Vec<PlannedBatch> = f.plan(room.len(), &over).collect();
        assert!(matches!(plan[..], [PlannedBatch::Fragmented { .. }]));
        assert_eq!(fragment_and_reassemble(&f, room, &over[0], 3, 2), over[0]);
    }
}
