//! One test per reassembly rule (see the module docs of `fragment::reassembly` and `spec/protocol.md` §3).

use std::time::Duration;

use bytes::Bytes;
use loro_sansio::fragment::{
    BatchKey, Budget, FragmentOutcome, Fragmenter, HeaderOutcome, PlannedBatch, Reassembler, ReassemblyConfig,
    ReassemblyStats, RejectReason, DEFAULT_MAX_BATCHES, DEFAULT_MAX_BYTES_IN_FLIGHT, DEFAULT_MAX_FRAGMENTS,
    DEFAULT_MAX_LIFETIME, DEFAULT_MAX_UPDATE_SIZE, DEFAULT_REASSEMBLY_TIMEOUT, DEFAULT_TOMBSTONES,
};
use loro_sansio::wire::{AckStatus, BatchId, CrdtType, Utf8Bytes, MAX_FRAME_SIZE};
use loro_sansio::Instant;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

const ROOM: &str = "room";
const CRDT: CrdtType = CrdtType::Loro;

fn id(n: u64) -> BatchId {
    BatchId::from_u64(n)
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn key(batch: u64) -> BatchKey {
    BatchKey { crdt: CRDT, room: Utf8Bytes::from(ROOM), batch_id: id(batch) }
}

/// A reassembler with its own global budget, driven in room [`ROOM`].
struct Rx {
    r: Reassembler,
    g: Budget,
}

impl Rx {
    fn new(config: ReassemblyConfig) -> Self {
        Rx { r: Reassembler::new(config), g: Budget::unlimited() }
    }

    fn default() -> Self {
        Self::new(ReassemblyConfig::default())
    }

    fn header(&mut self, t: u64, batch: u64, count: u32, total: u32) -> HeaderOutcome {
        self.r.handle_header(at(t), CRDT, ROOM, id(batch), count, total, &mut self.g)
    }

    fn frag(&mut self, t: u64, batch: u64, index: u32, data: &[u8]) -> FragmentOutcome {
        self.r.handle_fragment(at(t), CRDT, ROOM, id(batch), index, Bytes::copy_from_slice(data), &mut self.g)
    }

    fn expire(&mut self, t: u64) -> Option<BatchKey> {
        self.r.poll_expired(at(t), &mut self.g)
    }

    /// Nothing live and nothing reserved, locally or globally.
    fn assert_empty(&self) {
        assert_eq!(self.r.batch_count(), 0);
        assert_eq!(self.r.bytes_reserved(), 0);
        assert_eq!(self.g.used(), 0);
        assert_eq!(self.r.poll_timeout(), None);
    }
}

fn rejected(reason: RejectReason) -> FragmentOutcome {
    FragmentOutcome::Rejected(reason)
}

fn complete(bytes: &[u8]) -> FragmentOutcome {
    FragmentOutcome::Complete(Bytes::copy_from_slice(bytes))
}

#[test]
fn defaults_are_documented_values() {
    let c = ReassemblyConfig::default();
    assert_eq!(c.timeout, Duration::from_secs(10));
    assert_eq!(c.timeout, DEFAULT_REASSEMBLY_TIMEOUT);
    assert!(c.extend_on_progress);
    assert_eq!(c.max_lifetime, DEFAULT_MAX_LIFETIME);
    assert_eq!(c.max_batches, DEFAULT_MAX_BATCHES);
    assert_eq!(c.max_bytes_in_flight, DEFAULT_MAX_BYTES_IN_FLIGHT);
    assert_eq!(c.max_update_size, DEFAULT_MAX_UPDATE_SIZE);
    assert_eq!(c.max_fragments, DEFAULT_MAX_FRAGMENTS);
    assert_eq!(c.max_fragments, 4096);
    assert_eq!(c.tombstones, DEFAULT_TOMBSTONES);
    assert!(c.fixed_overhead() > 0);
}

#[test]
fn fragments_complete_in_any_order() {
    let mut rx = Rx::default();
    assert_eq!(rx.header(0, 1, 3, 10), HeaderOutcome::Started);
    assert!(rx.r.contains(CRDT, ROOM, id(1)));
    assert_eq!(rx.frag(1, 1, 2, b"ij"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(2, 1, 0, b"abcd"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(3, 1, 1, b"efgh"), complete(b"abcdefghij"));
    rx.assert_empty();
}

#[test]
fn index_out_of_range_fails_batch() {
    let mut rx = Rx::default();
    rx.header(0, 1, 2, 4);
    assert_eq!(rx.frag(0, 1, 0, b"ab"), FragmentOutcome::Stored);
    let reason = RejectReason::IndexOutOfRange { index: 2, count: 2 };
    assert_eq!(rx.frag(0, 1, 2, b"cd"), rejected(reason));
    assert_eq!(reason.ack_status(), AckStatus::INVALID_UPDATE);
    rx.assert_empty();
    // The batch is answered: its remaining fragments are ignored.
    assert_eq!(rx.frag(0, 1, 1, b"cd"), FragmentOutcome::Ignored);
}

#[test]
fn conflicting_duplicate_fails_batch() {
    let mut rx = Rx::default();
    rx.header(0, 1, 3, 6);
    // Held early (index 2) and in place (index 0): both are checked byte for byte.
    assert_eq!(rx.frag(0, 1, 2, b"ef"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 2, b"eX"), rejected(RejectReason::ConflictingFragment { index: 2 }));
    rx.assert_empty();
    rx.header(0, 2, 3, 6);
    assert_eq!(rx.frag(0, 2, 0, b"ab"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 2, 0, b"abc"), rejected(RejectReason::ConflictingFragment { index: 0 }));
    assert_eq!(RejectReason::ConflictingFragment { index: 0 }.ack_status(), AckStatus::INVALID_UPDATE);
    rx.assert_empty();
}

#[test]
fn identical_duplicate_ignored() {
    let mut rx = Rx::default();
    rx.header(0, 1, 3, 6);
    assert_eq!(rx.frag(0, 1, 1, b"cd"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 1, b"cd"), FragmentOutcome::Duplicate);
    assert_eq!(rx.frag(0, 1, 0, b"ab"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 0, b"ab"), FragmentOutcome::Duplicate);
    assert_eq!(rx.frag(0, 1, 1, b"cd"), FragmentOutcome::Duplicate);
    // Duplicates do not count toward completion.
    assert!(rx.r.contains(CRDT, ROOM, id(1)));
    assert_eq!(rx.frag(0, 1, 2, b"ef"), complete(b"abcdef"));
    assert_eq!(rx.r.stats().duplicates, 3);
}

#[test]
fn empty_fragment_fails_batch() {
    let mut rx = Rx::default();
    rx.header(0, 1, 2, 3);
    assert_eq!(rx.frag(0, 1, 1, b""), rejected(RejectReason::EmptyFragment { index: 1 }));
    assert_eq!(RejectReason::EmptyFragment { index: 1 }.ack_status(), AckStatus::INVALID_UPDATE);
    rx.assert_empty();
}

#[test]
fn sum_over_total_detected_early() {
    // In order: the second fragment already overruns a 5-byte total although a third is announced.
    let mut rx = Rx::default();
    rx.header(0, 1, 3, 5);
    assert_eq!(rx.frag(0, 1, 0, b"abc"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 1, b"def"), rejected(RejectReason::SizeMismatch { received: 6, total: 5 }));
    rx.assert_empty();
    // A single fragment longer than the total.
    rx.header(0, 2, 1, 2);
    assert_eq!(rx.frag(0, 2, 0, b"abc"), rejected(RejectReason::SizeMismatch { received: 3, total: 2 }));
    assert_eq!(RejectReason::SizeMismatch { received: 3, total: 2 }.ack_status(), AckStatus::INVALID_UPDATE);
    rx.assert_empty();
}

#[test]
fn sum_under_total_fails_at_last_fragment() {
    let mut rx = Rx::default();
    rx.header(0, 1, 2, 10);
    assert_eq!(rx.frag(0, 1, 0, b"abcd"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 1, b"ef"), rejected(RejectReason::SizeMismatch { received: 6, total: 10 }));
    rx.assert_empty();
    rx.header(0, 2, 1, 10);
    assert_eq!(rx.frag(0, 2, 0, b"abcd"), rejected(RejectReason::SizeMismatch { received: 4, total: 10 }));
    rx.assert_empty();
}

#[test]
fn zero_fragment_header_rejected() {
    let mut rx = Rx::default();
    assert_eq!(rx.header(0, 1, 0, 0), HeaderOutcome::Rejected(RejectReason::ZeroFragments));
    assert_eq!(rx.header(0, 2, 0, 100), HeaderOutcome::Rejected(RejectReason::ZeroFragments));
    assert_eq!(RejectReason::ZeroFragments.ack_status(), AckStatus::INVALID_UPDATE);
    rx.assert_empty();
    // Its fragments are ignored, not reported as stray.
    assert_eq!(rx.frag(0, 2, 0, b"x"), FragmentOutcome::Ignored);
}

#[test]
fn count_over_total_rejected() {
    let mut rx = Rx::default();
    let reason = RejectReason::ImpossibleLayout { count: 5, total: 4 };
    assert_eq!(rx.header(0, 1, 5, 4), HeaderOutcome::Rejected(reason));
    assert_eq!(reason.ack_status(), AckStatus::INVALID_UPDATE);
    // An empty update cannot be fragmented at all.
    assert_eq!(rx.header(0, 2, 1, 0), HeaderOutcome::Rejected(RejectReason::ImpossibleLayout { count: 1, total: 0 }));
    assert_eq!(rx.header(0, 3, 4, 4), HeaderOutcome::Started);
}

#[test]
fn count_too_small_for_frame_limit_rejected() {
    let mut rx = Rx::default();
    let total = 2 * MAX_FRAME_SIZE as u32 + 1;
    assert_eq!(rx.header(0, 1, 2, total), HeaderOutcome::Rejected(RejectReason::ImpossibleLayout { count: 2, total }));
    assert_eq!(rx.header(0, 2, 3, total), HeaderOutcome::Started);
    assert_eq!(rx.header(0, 3, 1, MAX_FRAME_SIZE as u32), HeaderOutcome::Started);
}

#[test]
fn stray_fragment_reported_once_then_ignored() {
    let mut rx = Rx::default();
    assert_eq!(rx.frag(0, 9, 0, b"a"), rejected(RejectReason::NoHeader));
    assert_eq!(RejectReason::NoHeader.ack_status(), AckStatus::FRAGMENT_TIMEOUT);
    assert_eq!(rx.frag(0, 9, 1, b"b"), FragmentOutcome::Ignored);
    assert_eq!(rx.frag(0, 9, 0, b"a"), FragmentOutcome::Ignored);
    assert_eq!(rx.r.stats().stray, 3);
    rx.assert_empty();
    // A header arriving after its fragments starts a fresh batch; the early fragments are gone.
    assert_eq!(rx.header(1, 9, 2, 2), HeaderOutcome::Started);
    assert_eq!(rx.frag(1, 9, 1, b"b"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(1, 9, 0, b"a"), complete(b"ab"));
}

#[test]
fn late_fragment_after_completion_ignored() {
    let mut rx = Rx::default();
    rx.header(0, 1, 2, 2);
    rx.frag(0, 1, 0, b"a");
    assert_eq!(rx.frag(0, 1, 1, b"b"), complete(b"ab"));
    assert_eq!(rx.frag(0, 1, 1, b"b"), FragmentOutcome::Ignored);
    assert_eq!(rx.frag(0, 1, 0, b"zz"), FragmentOutcome::Ignored);
    // Also after expiry and after a failure.
    rx.header(0, 2, 2, 2);
    assert_eq!(rx.expire(10_000), Some(key(2)));
    assert_eq!(rx.frag(10_001, 2, 0, b"a"), FragmentOutcome::Ignored);
    rx.assert_empty();
}

#[test]
fn header_resent_identical_unchanged() {
    let mut rx = Rx::default();
    rx.header(0, 1, 3, 9);
    rx.frag(1, 1, 0, b"abc");
    let reserved = rx.r.bytes_reserved();
    let deadline = rx.r.poll_timeout();
    assert_eq!(rx.header(2_000, 1, 3, 9), HeaderOutcome::Unchanged);
    // Nothing changed: progress, reservation and deadline are kept.
    assert_eq!((rx.r.bytes_reserved(), rx.r.poll_timeout()), (reserved, deadline));
    rx.frag(3, 1, 1, b"def");
    assert_eq!(rx.frag(4, 1, 2, b"ghi"), complete(b"abcdefghi"));
}

#[test]
fn header_resent_different_restarts_and_releases() {
    let mut rx = Rx::default();
    rx.header(0, 1, 4, 4000);
    rx.frag(0, 1, 0, &[1; 1000]);
    let mut fresh = Rx::default();
    fresh.header(0, 1, 2, 6);
    assert_eq!(rx.header(5, 1, 2, 6), HeaderOutcome::Restarted);
    // The old batch's memory is released: only the new one is reserved.
    assert_eq!(rx.r.bytes_reserved(), fresh.r.bytes_reserved());
    assert_eq!(rx.g.used(), fresh.r.bytes_reserved());
    assert_eq!(rx.r.batch_count(), 1);
    // Its earlier fragments are gone, and the deadline counts from the new header.
    assert_eq!(rx.r.poll_timeout(), Some(at(10_005)));
    assert_eq!(rx.frag(6, 1, 1, b"def"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(7, 1, 0, b"abc"), complete(b"abcdef"));
    rx.assert_empty();
    // A restart the new claims do not fit fails the batch and still releases the old one.
    rx.header(8, 2, 2, 6);
    assert_eq!(rx.header(9, 2, 0, 6), HeaderOutcome::Rejected(RejectReason::ZeroFragments));
    rx.assert_empty();
}

#[test]
fn header_after_completion_starts_new_batch() {
    let mut rx = Rx::default();
    rx.header(0, 1, 1, 1);
    assert_eq!(rx.frag(0, 1, 0, b"a"), complete(b"a"));
    // A sender resending the batch under the same id is served again.
    assert_eq!(rx.header(1, 1, 1, 1), HeaderOutcome::Started);
    assert_eq!(rx.frag(1, 1, 0, b"a"), complete(b"a"));
}

#[test]
fn over_connection_budget_payload_too_large_before_allocation() {
    let mut rx = Rx::new(ReassemblyConfig { max_bytes_in_flight: 100_000, ..ReassemblyConfig::default() });
    assert_eq!(rx.header(0, 1, 2, 60_000), HeaderOutcome::Started);
    let used = rx.r.bytes_reserved();
    assert!(used >= 60_000);
    let outcome = rx.header(0, 2, 2, 60_000);
    let HeaderOutcome::Rejected(reason @ RejectReason::OverConnectionBudget { needed, available }) = outcome else {
        panic!("expected OverConnectionBudget, got {outcome:?}")
    };
    assert!(needed > available && available == 100_000 - used);
    assert_eq!(reason.ack_status(), AckStatus::PAYLOAD_TOO_LARGE);
    // Nothing was reserved for it (the allocation test checks the heap too), and its fragments are ignored.
    assert_eq!((rx.r.bytes_reserved(), rx.r.batch_count()), (used, 1));
    assert!(!rx.r.contains(CRDT, ROOM, id(2)));
    assert_eq!(rx.frag(0, 2, 0, &[0; 30_000]), FragmentOutcome::Ignored);
    // A huge claim within the update size limit is refused the same way.
    let outcome = rx.header(0, 3, 256, 64 << 20);
    assert!(matches!(outcome, HeaderOutcome::Rejected(RejectReason::OverConnectionBudget { .. })));
    assert_eq!(rx.r.bytes_reserved(), used);
}

#[test]
fn over_global_budget_payload_too_large() {
    let mut global = Budget::new(150_000);
    let mut a = Reassembler::default();
    let mut b = Reassembler::default();
    let t = Instant::ZERO;
    assert_eq!(a.handle_header(t, CRDT, ROOM, id(1), 1, 100_000, &mut global), HeaderOutcome::Started);
    let outcome = b.handle_header(t, CRDT, ROOM, id(1), 1, 100_000, &mut global);
    let HeaderOutcome::Rejected(reason @ RejectReason::OverGlobalBudget { .. }) = outcome else {
        panic!("expected OverGlobalBudget, got {outcome:?}")
    };
    assert_eq!(reason.ack_status(), AckStatus::PAYLOAD_TOO_LARGE);
    assert_eq!(global.used(), a.bytes_reserved());
    assert_eq!(b.bytes_reserved(), 0);
    // Completing a's batch returns its share; b's next header fits.
    let done = a.handle_fragment(t, CRDT, ROOM, id(1), 0, Bytes::from(vec![7; 100_000]), &mut global);
    assert!(matches!(done, FragmentOutcome::Complete(ref u) if u.len() == 100_000));
    assert_eq!(global.used(), 0);
    assert_eq!(b.handle_header(t, CRDT, ROOM, id(2), 1, 100_000, &mut global), HeaderOutcome::Started);
    assert_eq!(global.used(), b.bytes_reserved());
}

#[test]
fn too_many_batches_rate_limited() {
    let mut rx = Rx::new(ReassemblyConfig { max_batches: 2, ..ReassemblyConfig::default() });
    assert_eq!(rx.header(0, 1, 1, 1), HeaderOutcome::Started);
    assert_eq!(rx.header(0, 2, 1, 1), HeaderOutcome::Started);
    let reason = RejectReason::TooManyBatches { max: 2 };
    assert_eq!(rx.header(0, 3, 1, 1), HeaderOutcome::Rejected(reason));
    assert_eq!(reason.ack_status(), AckStatus::RATE_LIMITED);
    assert_eq!(rx.frag(0, 1, 0, b"a"), complete(b"a"));
    assert_eq!(rx.header(0, 4, 1, 1), HeaderOutcome::Started);
}

#[test]
fn max_update_size_enforced() {
    let mut rx = Rx::new(ReassemblyConfig { max_update_size: 1000, ..ReassemblyConfig::default() });
    let reason = RejectReason::UpdateTooLarge { total: 1001, max: 1000 };
    assert_eq!(rx.header(0, 1, 1, 1001), HeaderOutcome::Rejected(reason));
    assert_eq!(reason.ack_status(), AckStatus::PAYLOAD_TOO_LARGE);
    assert_eq!(rx.header(0, 2, 1, 1000), HeaderOutcome::Started);
    // The default refuses anything above 64 MiB whatever the budgets.
    let mut rx = Rx::new(ReassemblyConfig { max_bytes_in_flight: usize::MAX, ..ReassemblyConfig::default() });
    let over = DEFAULT_MAX_UPDATE_SIZE as u32 + 1;
    assert!(matches!(rx.header(0, 1, 4096, over), HeaderOutcome::Rejected(RejectReason::UpdateTooLarge { .. })));
}

#[test]
fn max_fragments_enforced() {
    let mut rx = Rx::new(ReassemblyConfig { max_fragments: 8, ..ReassemblyConfig::default() });
    let reason = RejectReason::TooManyFragments { count: 9, max: 8 };
    assert_eq!(rx.header(0, 1, 9, 100), HeaderOutcome::Rejected(reason));
    assert_eq!(reason.ack_status(), AckStatus::PAYLOAD_TOO_LARGE);
    assert_eq!(rx.header(0, 2, 8, 100), HeaderOutcome::Started);
    let mut rx = Rx::default();
    assert_eq!(
        rx.header(0, 1, DEFAULT_MAX_FRAGMENTS + 1, 1 << 20),
        HeaderOutcome::Rejected(RejectReason::TooManyFragments { count: 4097, max: 4096 })
    );
}

#[test]
fn irregular_early_fragment_fails_batch() {
    // Ahead of a gap, fragment 2 of 3 must hold what an equal-size layout leaves it.
    let mut rx = Rx::default();
    rx.header(0, 1, 3, 10);
    assert_eq!(rx.frag(0, 1, 1, b"efgh"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 2, b"ijk"), rejected(RejectReason::IrregularFragment { index: 2, len: 3 }));
    assert_eq!(RejectReason::IrregularFragment { index: 2, len: 3 }.ack_status(), AckStatus::INVALID_UPDATE);
    rx.assert_empty();
    // The last fragment first must leave a whole number of equal fragments.
    rx.header(0, 2, 3, 10);
    assert_eq!(rx.frag(0, 2, 2, b"ijk"), rejected(RejectReason::IrregularFragment { index: 2, len: 3 }));
    // An early fragment so large that no layout of this count carries the total.
    rx.header(0, 3, 3, 10);
    assert_eq!(rx.frag(0, 3, 1, b"abcdef"), rejected(RejectReason::IrregularFragment { index: 1, len: 6 }));
    // An unequal prefix cannot place an early fragment.
    rx.header(0, 4, 4, 10);
    rx.frag(0, 4, 0, b"ab");
    rx.frag(0, 4, 1, b"cde");
    assert_eq!(rx.frag(0, 4, 3, b"ij"), rejected(RejectReason::IrregularFragment { index: 3, len: 2 }));
    rx.assert_empty();
}

#[test]
fn irregular_sizes_in_order_accepted() {
    let mut rx = Rx::default();
    rx.header(0, 1, 4, 10);
    assert_eq!(rx.frag(0, 1, 0, b"a"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 1, b"bcdef"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 2, b"gh"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 3, b"ij"), complete(b"abcdefghij"));
}

#[test]
fn equal_layout_out_of_order_accepted() {
    // The last fragment first fixes the size of the others.
    let mut rx = Rx::default();
    rx.header(0, 1, 4, 11);
    assert_eq!(rx.frag(0, 1, 3, b"jk"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 1, b"def"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 0, b"abc"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 1, 2, b"ghi"), complete(b"abcdefghijk"));
    // An equal prefix fixes it too.
    rx.header(0, 2, 3, 7);
    rx.frag(0, 2, 0, b"abc");
    assert_eq!(rx.frag(0, 2, 2, b"g"), FragmentOutcome::Stored);
    assert_eq!(rx.frag(0, 2, 1, b"def"), complete(b"abcdefg"));
}

#[test]
fn batches_keyed_by_crdt_room_and_id() {
    let mut r = Reassembler::default();
    let mut g = Budget::unlimited();
    let t = Instant::ZERO;
    let b = id(1);
    for (crdt, room) in [(CrdtType::Loro, "a"), (CrdtType::Loro, "b"), (CrdtType::Yjs, "a")] {
        assert_eq!(r.handle_header(t, crdt, room, b, 2, 2, &mut g), HeaderOutcome::Started);
    }
    assert_eq!(r.batch_count(), 3);
    let frag = |r: &mut Reassembler, g: &mut Budget, crdt, room, i, d: &'static [u8]| {
        r.handle_fragment(t, crdt, room, b, i, Bytes::from_static(d), g)
    };
    assert_eq!(frag(&mut r, &mut g, CrdtType::Yjs, "a", 0, b"y"), FragmentOutcome::Stored);
    assert_eq!(frag(&mut r, &mut g, CrdtType::Loro, "a", 0, b"l"), FragmentOutcome::Stored);
    assert_eq!(frag(&mut r, &mut g, CrdtType::Loro, "a", 1, b"L"), complete(b"lL"));
    assert_eq!(frag(&mut r, &mut g, CrdtType::Yjs, "a", 1, b"Y"), complete(b"yY"));
    assert_eq!(r.batch_count(), 1);
    assert!(r.contains(CrdtType::Loro, "b", b));
}

#[test]
fn single_fragment_zero_copy() {
    let mut rx = Rx::default();
    rx.header(0, 1, 1, 5);
    let data = Bytes::from(b"hello".to_vec());
    let ptr = data.as_ptr();
    let outcome = rx.r.handle_fragment(at(0), CRDT, ROOM, id(1), 0, data, &mut rx.g);
    let FragmentOutcome::Complete(update) = outcome else { panic!("expected Complete, got {outcome:?}") };
    assert_eq!(update.as_ptr(), ptr, "the input buffer itself is returned");
    assert_eq!(&update[..], b"hello");
    rx.assert_empty();
}

#[test]
fn poll_timeout_is_earliest_deadline() {
    let mut rx = Rx::default();
    assert_eq!(rx.r.poll_timeout(), None);
    rx.header(500, 1, 2, 2);
    rx.header(100, 2, 2, 2);
    rx.header(300, 3, 2, 2);
    assert_eq!(rx.r.poll_timeout(), Some(at(10_100)));
    // Progress on batch 2 moves its deadline; batch 3 becomes the earliest.
    rx.frag(5_000, 2, 0, b"a");
    assert_eq!(rx.r.poll_timeout(), Some(at(10_300)));
    // Expiry goes earliest first, one batch per call.
    assert_eq!(rx.expire(20_000), Some(key(3)));
    assert_eq!(rx.r.poll_timeout(), Some(at(10_500)));
    assert_eq!(rx.expire(20_000), Some(key(1)));
    assert_eq!(rx.expire(20_000), Some(key(2)));
    assert_eq!(rx.expire(20_000), None);
    rx.assert_empty();
}

/// The deadline the rules give a batch whose header came at `t0` and whose progressing fragments came at
/// `arrivals`.
fn model_deadline(t0: u64, arrivals: &[u64], timeout: u64, lifetime: u64, extend: bool) -> u64 {
    let cap = t0.saturating_add(lifetime);
    let mut d = t0.saturating_add(timeout.min(lifetime));
    if extend {
        for &t in arrivals {
            d = d.max(t.saturating_add(timeout).min(cap));
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        rng_seed: RngSeed::Fixed(0x4652_4147_5255),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// A batch missing any fragment expires exactly at its deadline in virtual time, and not one millisecond
    /// earlier, whatever the timings, the timeout, the lifetime cap and the extension policy.
    #[test]
    fn incomplete_batch_expires_exactly_at_deadline(
        t0 in 0..1_000_000u64,
        timeout in 1..20_000u64,
        lifetime in prop_oneof![1..20_000u64, 20_000..400_000u64],
        extend in any::<bool>(),
        count in 2..12u32,
        missing in any::<prop::sample::Index>(),
        gaps in prop::collection::vec(any::<prop::sample::Index>(), 12),
        dups in any::<bool>(),
    ) {
        let config = ReassemblyConfig {
            timeout: Duration::from_millis(timeout),
            max_lifetime: Duration::from_millis(lifetime),
            extend_on_progress: extend,
            ..ReassemblyConfig::default()
        };
        let mut rx = Rx::new(config);
        prop_assert_eq!(rx.header(t0, 1, count, count), HeaderOutcome::Started);
        let missing = missing.index(count as usize) as u32;
        let mut now = t0;
        let mut arrivals = Vec::new();
        for (i, gap) in (0..count).filter(|&i| i != missing).zip(&gaps) {
            // Each fragment comes while the batch is still live: before the current deadline.
            let d = model_deadline(t0, &arrivals, timeout, lifetime, extend);
            prop_assert_eq!(rx.r.poll_timeout(), Some(at(d)));
            now += gap.index((d - now) as usize) as u64;
            prop_assert_eq!(rx.expire(now), None);
            prop_assert_eq!(rx.frag(now, 1, i, b"x"), FragmentOutcome::Stored);
            arrivals.push(now);
            if dups {
                // A duplicate is not progress: it moves nothing.
                let before = rx.r.poll_timeout();
                prop_assert_eq!(rx.frag(now + 1, 1, i, b"x"), FragmentOutcome::Duplicate);
                prop_assert_eq!(rx.r.poll_timeout(), before);
            }
        }
        let d = model_deadline(t0, &arrivals, timeout, lifetime, extend);
        prop_assert!(d <= t0 + lifetime.max(1), "never past the lifetime cap");
        prop_assert_eq!(rx.r.poll_timeout(), Some(at(d)));
        prop_assert_eq!(rx.expire(d - 1), None);
        prop_assert!(rx.r.contains(CRDT, ROOM, id(1)));
        prop_assert_eq!(rx.expire(d), Some(key(1)));
        rx.assert_empty();
        prop_assert_eq!(rx.r.stats().expired, 1);
    }
}

#[test]
fn progress_extends_deadline_capped_by_max_lifetime() {
    let config = ReassemblyConfig { max_lifetime: Duration::from_secs(25), ..ReassemblyConfig::default() };
    let mut rx = Rx::new(config);
    rx.header(0, 1, 5, 5);
    assert_eq!(rx.r.poll_timeout(), Some(at(10_000)));
    rx.frag(9_000, 1, 0, b"a");
    assert_eq!(rx.r.poll_timeout(), Some(at(19_000)));
    rx.frag(18_000, 1, 1, b"b");
    assert_eq!(rx.r.poll_timeout(), Some(at(25_000)), "capped at header + max_lifetime");
    rx.frag(24_000, 1, 2, b"c");
    assert_eq!(rx.r.poll_timeout(), Some(at(25_000)));
    assert_eq!(rx.expire(24_999), None);
    assert_eq!(rx.expire(25_000), Some(key(1)));
    // A lifetime shorter than the timeout caps the first deadline too.
    let config = ReassemblyConfig { max_lifetime: Duration::from_secs(3), ..ReassemblyConfig::default() };
    let mut rx = Rx::new(config);
    rx.header(1_000, 1, 2, 2);
    assert_eq!(rx.r.poll_timeout(), Some(at(4_000)));
}

#[test]
fn extend_on_progress_false_keeps_header_deadline() {
    let config = ReassemblyConfig { extend_on_progress: false, ..ReassemblyConfig::default() };
    let mut rx = Rx::new(config);
    rx.header(1_000, 1, 3, 3);
    rx.frag(5_000, 1, 0, b"a");
    rx.frag(10_999, 1, 1, b"b");
    assert_eq!(rx.r.poll_timeout(), Some(at(11_000)));
    assert_eq!(rx.expire(10_999), None);
    assert_eq!(rx.expire(11_000), Some(key(1)));
}

#[test]
fn drop_room_releases_its_batches() {
    let mut rx = Rx::default();
    rx.header(0, 1, 2, 2000);
    rx.header(0, 2, 2, 2000);
    rx.frag(0, 2, 0, &[1; 1000]);
    let before = rx.r.bytes_reserved();
    let other = rx.r.handle_header(at(0), CRDT, "other", id(1), 2, 2000, &mut rx.g);
    assert_eq!(other, HeaderOutcome::Started);
    let other_reserved = rx.r.bytes_reserved() - before;
    assert_eq!(rx.r.drop_room(CRDT, ROOM, &mut rx.g), 2);
    assert_eq!(rx.r.batch_count(), 1);
    assert_eq!((rx.r.bytes_reserved(), rx.g.used()), (other_reserved, other_reserved));
    // Late fragments of the dropped batches are ignored; the other room is untouched.
    assert_eq!(rx.frag(0, 2, 1, &[1; 1000]), FragmentOutcome::Ignored);
    assert!(rx.r.contains(CRDT, "other", id(1)));
    assert_eq!(rx.r.drop_room(CrdtType::Yjs, "other", &mut rx.g), 0);
    assert_eq!(rx.r.drop_room(CRDT, "other", &mut rx.g), 1);
    rx.assert_empty();
}

#[test]
fn clear_releases_everything() {
    let mut global = Budget::new(1 << 20);
    let mut r = Reassembler::default();
    for n in 0..4 {
        r.handle_header(at(0), CRDT, ROOM, id(n), 2, 1000, &mut global);
    }
    r.handle_fragment(at(0), CRDT, ROOM, id(9), 0, Bytes::from_static(b"x"), &mut global);
    assert!(global.used() > 4000);
    r.clear(&mut global);
    assert_eq!((r.batch_count(), r.bytes_reserved(), global.used(), r.poll_timeout()), (0, 0, 0, None));
    // A fresh start: nothing is remembered, so a stray fragment is reported again.
    assert_eq!(
        r.handle_fragment(at(0), CRDT, ROOM, id(9), 0, Bytes::from_static(b"x"), &mut global),
        rejected(RejectReason::NoHeader)
    );
}

#[test]
fn stats_count_every_outcome() {
    let mut rx = Rx::new(ReassemblyConfig { max_batches: 3, ..ReassemblyConfig::default() });
    rx.header(0, 1, 2, 2);
    rx.frag(0, 1, 0, b"a");
    rx.frag(0, 1, 0, b"a"); // duplicate
    rx.frag(0, 1, 1, b"b"); // completed
    rx.frag(0, 1, 1, b"b"); // late: stray
    rx.header(0, 2, 0, 0); // rejected header
    rx.header(0, 3, 2, 2);
    rx.frag(0, 3, 5, b"a"); // rejected batch
    rx.frag(0, 4, 0, b"a"); // stray
    rx.header(0, 5, 2, 2);
    rx.expire(10_000); // expired
    assert_eq!(rx.r.stats(), ReassemblyStats { completed: 1, expired: 1, rejected: 2, duplicates: 1, stray: 2 });
}

#[test]
fn fixed_overhead_grows_with_limits() {
    let small = ReassemblyConfig { max_batches: 1, tombstones: 0, ..ReassemblyConfig::default() };
    let large = ReassemblyConfig { max_batches: 1000, tombstones: 1000, ..ReassemblyConfig::default() };
    assert!(small.fixed_overhead() < ReassemblyConfig::default().fixed_overhead());
    assert!(ReassemblyConfig::default().fixed_overhead() < large.fixed_overhead());
    assert!(large.fixed_overhead() >= 1000 * 128, "a tombstone may keep a 128-byte room id");
}

#[test]
fn frames_refuse_inconsistent_batch() {
    let f = Fragmenter::with_limits(1000, 1024).unwrap();
    let updates = [Bytes::from(vec![1u8; 5000])];
    let good: Vec<PlannedBatch> = f.plan(1, &updates).collect();
    let PlannedBatch::Fragmented { fragments, fragment_size, .. } = good[0] else { panic!("expected fragmented") };
    assert!(f.frames(CRDT, "r", id(1), good[0], &updates).is_ok());
    // Too few fragments to cover the update, fragments too large for the frame limit, a packed batch over it.
    let short = PlannedBatch::Fragmented { index: 0, fragments: fragments - 1, fragment_size };
    assert!(f.frames(CRDT, "r", id(1), short, &updates).is_err());
    let big = PlannedBatch::Fragmented { index: 0, fragments: 2, fragment_size: 2500 };
    assert!(f.frames(CRDT, "r", id(1), big, &updates).is_err());
    let zero = PlannedBatch::Fragmented { index: 0, fragments: 0, fragment_size: 0 };
    assert!(f.frames(CRDT, "r", id(1), zero, &updates).is_err());
    let packed = PlannedBatch::Packed { start: 0, end: 1 };
    assert!(f.frames(CRDT, "r", id(1), packed, &updates).is_err());
    // Out of range: no frames.
    let away = PlannedBatch::Packed { start: 3, end: 4 };
    assert_eq!(f.frames(CRDT, "r", id(1), away, &updates).map(|fr| fr.count()), Ok(0));
}
