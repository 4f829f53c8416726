//! Bounded, deadline-driven reassembly of fragment batches.
//!
//! Decisions (see `spec/protocol.md` §3):
//! * A batch is keyed by (crdt, room, batch id) per connection and carries exactly one update.
//! * Memory is reserved from the header's claims (total size + one slot per fragment) and only when the claims
//!   fit every budget: the update size limit, the fragment count limit, the per-connection bytes in flight and
//!   the caller's global [`Budget`]. A header that does not fit is rejected (`payload_too_large`) before any
//!   allocation; one over the concurrent-batch limit gets `rate_limited`.
//! * Fragments may arrive in any order, and every fragment is copied exactly once, straight to its final place
//!   in one output buffer of `total_size` bytes (allocated at the first fragment, within the reservation); the
//!   reassembler never holds on to the caller's frames. A fragment's place is known when all lower indices have
//!   arrived (any sizes are accepted in order), or, for a fragment that arrives ahead of a gap, from the layout
//!   every known sender uses: all fragments of one size, the last one holding the rest. An early fragment that
//!   does not fit that layout fails the batch. A single-fragment batch is returned without any copy.
//! * A duplicate with identical bytes is ignored; a conflicting one, an index out of range, an empty fragment,
//!   or sizes that overrun or fall short of `total_size` fail the batch (`invalid_update`).
//! * Deadline: `timeout` after the header; by default each fragment that makes progress pushes it to
//!   `timeout` after that fragment, but never past `max_lifetime` after the header (nor is the first deadline
//!   later than that). A stalled sender is dropped `timeout` after its last progress; a slow but progressing
//!   one can finish.
//! * A finished batch (completed, failed or expired) leaves a tombstone: late fragments for it are ignored
//!   silently instead of each drawing another Ack. A fragment for a batch never announced gets
//!   `fragment_timeout` once.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::Bytes;

use super::budget::Budget;
use crate::time::Instant;
use crate::wire::{AckStatus, BatchId, CrdtType, Utf8Bytes, MAX_FRAME_SIZE};

/// Default reassembly deadline: 10 s (the official implementations' value).
pub const DEFAULT_REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a batch's whole life, however steadily it progresses: 5 minutes.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(300);
/// Default limit on concurrent batches per connection.
pub const DEFAULT_MAX_BATCHES: usize = 16;
/// Default limit on bytes reserved by one connection's batches: 64 MiB.
pub const DEFAULT_MAX_BYTES_IN_FLIGHT: usize = 64 * 1024 * 1024;
/// Default limit on one reassembled update: 64 MiB.
pub const DEFAULT_MAX_UPDATE_SIZE: usize = 64 * 1024 * 1024;
/// Default limit on fragments per batch (as the official Rust server).
pub const DEFAULT_MAX_FRAGMENTS: u32 = 4096;
/// Default number of finished batch keys remembered to silence late fragments.
pub const DEFAULT_TOMBSTONES: usize = 64;
/// Bytes accounted per announced fragment for its bookkeeping slot.
pub const FRAGMENT_ENTRY_OVERHEAD: usize = core::mem::size_of::<Slot>();
/// Bytes accounted per batch for its key and state.
const BATCH_OVERHEAD: usize = 256;

/// Limits and deadlines for a [`Reassembler`]. Every field has a documented default (see [`Default`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Time allowed after the header (and, with `extend_on_progress`, after each progressing fragment).
    /// Default 10 s.
    pub timeout: Duration,
    /// Whether a fragment that makes progress pushes the deadline to `now + timeout`. Default true.
    pub extend_on_progress: bool,
    /// Hard cap on a batch's life measured from its header. Default 300 s.
    pub max_lifetime: Duration,
    /// Concurrent batches per connection. Default 16.
    pub max_batches: usize,
    /// Bytes all of a connection's batches may reserve together. Default 64 MiB.
    pub max_bytes_in_flight: usize,
    /// Largest update a batch may announce. Default 64 MiB.
    pub max_update_size: usize,
    /// Most fragments a batch may announce. Default 4096.
    pub max_fragments: u32,
    /// Finished batch keys remembered so late fragments are ignored quietly. Default 64.
    pub tombstones: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            timeout: DEFAULT_REASSEMBLY_TIMEOUT,
            extend_on_progress: true,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            max_batches: DEFAULT_MAX_BATCHES,
            max_bytes_in_flight: DEFAULT_MAX_BYTES_IN_FLIGHT,
            max_update_size: DEFAULT_MAX_UPDATE_SIZE,
            max_fragments: DEFAULT_MAX_FRAGMENTS,
            tombstones: DEFAULT_TOMBSTONES,
        }
    }
}

/// Heap a remembered tombstone may hold beyond its table entry: a room id of up to 128 bytes and the shared
/// buffer header a cloned `Bytes` allocates.
const TOMBSTONE_HEAP: usize = crate::wire::MAX_ROOM_ID_LEN + 64;

impl ReassemblyConfig {
    /// An upper bound, in bytes, on the heap a [`Reassembler`] with this configuration uses *outside* its
    /// reservations: the table of live batches and the remembered tombstones. Everything else it allocates (a
    /// batch's key, fragment table and output buffer) is reserved against the budgets first, so a connection's
    /// reassembly memory stays within `max_bytes_in_flight + fixed_overhead()`.
    pub fn fixed_overhead(&self) -> usize {
        // Vec and VecDeque grow by doubling from 4 entries, and neither table exceeds its configured length.
        let table = self.max_batches.max(4).saturating_mul(2).saturating_mul(core::mem::size_of::<Batch>());
        let keys = self.tombstones.max(4).saturating_mul(2).saturating_mul(core::mem::size_of::<BatchKey>());
        table.saturating_add(keys).saturating_add(self.tombstones.saturating_mul(TOMBSTONE_HEAP))
    }
}

/// Identifies a batch on one connection.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchKey {
    /// The room's CRDT type.
    pub crdt: CrdtType,
    /// The room id.
    pub room: Utf8Bytes,
    /// The batch id (the Ack's reference).
    pub batch_id: BatchId,
}

impl BatchKey {
    fn is(&self, crdt: CrdtType, room: &str, batch_id: BatchId) -> bool {
        self.batch_id == batch_id && self.crdt == crdt && self.room == room
    }
}

/// Why a header or fragment was refused. Each maps to the Ack status the receiver sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The header announces zero fragments.
    #[error("header announces zero fragments")]
    ZeroFragments,
    /// The header announces more fragments than allowed.
    #[error("header announces {count} fragments, over the limit of {max}")]
    TooManyFragments {
        /// Announced.
        count: u32,
        /// Limit.
        max: u32,
    },
    /// The fragment count cannot describe the total size (more fragments than bytes, or fragments too few to
    /// carry the total within the frame limit).
    #[error("{count} fragments cannot carry {total} bytes")]
    ImpossibleLayout {
        /// Announced count.
        count: u32,
        /// Announced total.
        total: u32,
    },
    /// The announced update is larger than allowed.
    #[error("announced update of {total} bytes exceeds the limit of {max}")]
    UpdateTooLarge {
        /// Announced.
        total: u32,
        /// Limit.
        max: usize,
    },
    /// The connection's bytes in flight would exceed its budget.
    #[error("batch needs {needed} bytes but the connection has {available} left")]
    OverConnectionBudget {
        /// Bytes the batch would reserve.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The shared budget across connections would be exceeded.
    #[error("batch needs {needed} bytes but the shared budget has {available} left")]
    OverGlobalBudget {
        /// Bytes the batch would reserve.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Too many batches are being reassembled on this connection.
    #[error("{max} batches are already being reassembled")]
    TooManyBatches {
        /// Limit.
        max: usize,
    },
    /// A fragment index is not below the announced count.
    #[error("fragment index {index} is out of range for {count} fragments")]
    IndexOutOfRange {
        /// Received index.
        index: u32,
        /// Announced count.
        count: u32,
    },
    /// A fragment arrived twice with different bytes.
    #[error("fragment {index} arrived twice with different bytes")]
    ConflictingFragment {
        /// Index.
        index: u32,
    },
    /// A fragment carries no bytes.
    #[error("fragment {index} is empty")]
    EmptyFragment {
        /// Index.
        index: u32,
    },
    /// The fragments' sizes do not add up to the announced total.
    #[error("fragments carry {received} bytes, announced {total}")]
    SizeMismatch {
        /// Bytes received (so far, when it overran).
        received: usize,
        /// Announced total.
        total: u32,
    },
    /// A fragment arrived ahead of a gap, and its size does not fit the equal-size layout its place would be
    /// computed from (all fragments but the last of one size, the last holding the rest; the size is that of
    /// the fragments already received).
    #[error("fragment {index} of {len} bytes does not fit the equal-size fragment layout")]
    IrregularFragment {
        /// Index.
        index: u32,
        /// Its size in bytes.
        len: usize,
    },
    /// A fragment for a batch that was never announced.
    #[error("fragment for a batch without a header")]
    NoHeader,
}

impl RejectReason {
    /// The Ack status a receiver answers with.
    pub const fn ack_status(&self) -> AckStatus {
        match self {
            RejectReason::TooManyFragments { .. }
            | RejectReason::UpdateTooLarge { .. }
            | RejectReason::OverConnectionBudget { .. }
            | RejectReason::OverGlobalBudget { .. } => AckStatus::PAYLOAD_TOO_LARGE,
            RejectReason::TooManyBatches { .. } => AckStatus::RATE_LIMITED,
            RejectReason::NoHeader => AckStatus::FRAGMENT_TIMEOUT,
            RejectReason::ZeroFragments
            | RejectReason::ImpossibleLayout { .. }
            | RejectReason::IndexOutOfRange { .. }
            | RejectReason::ConflictingFragment { .. }
            | RejectReason::EmptyFragment { .. }
            | RejectReason::SizeMismatch { .. }
            | RejectReason::IrregularFragment { .. } => AckStatus::INVALID_UPDATE,
        }
    }
}

/// What a header did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderOutcome {
    /// A new batch started.
    Started,
    /// The same header for a live batch: nothing changed.
    Unchanged,
    /// A different header for a live batch: the old batch was discarded and this one started. One Ack will
    /// follow for the batch id, as for any batch.
    Restarted,
    /// Refused; answer with `reason.ack_status()`. Later fragments of this batch are ignored quietly.
    Rejected(RejectReason),
}

/// What a fragment did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FragmentOutcome {
    /// Stored; the batch is not complete yet.
    Stored,
    /// An identical copy of a fragment already held: ignored.
    Duplicate,
    /// The batch is complete: the one update it carries (yielded exactly once).
    Complete(Bytes),
    /// The batch failed (answer with `reason.ack_status()`), or a stray fragment (`NoHeader`, answered once).
    Rejected(RejectReason),
    /// A late fragment of a batch already finished and answered: ignored.
    Ignored,
}

/// Counters for observability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Batches completed.
    pub completed: u64,
    /// Batches expired.
    pub expired: u64,
    /// Headers or batches rejected.
    pub rejected: u64,
    /// Duplicate fragments ignored.
    pub duplicates: u64,
    /// Late or stray fragments ignored or answered.
    pub stray: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Empty,
    /// Copied into the output at `start..start + len`.
    Written {
        start: u32,
        len: u32,
    },
}

#[derive(Debug)]
struct Batch {
    key: BatchKey,
    count: u32,
    total: u32,
    slots: Vec<Slot>,
    /// Fragments `0..next` have all arrived; they fill `out[..prefix_len]`.
    next: u32,
    prefix_len: usize,
    /// The common fragment size, fixed when a fragment first arrives ahead of a gap; from then on every
    /// fragment `i` must sit at `i * stride`.
    stride: Option<u32>,
    /// The update, `total` bytes of capacity; bytes not yet received are zero.
    out: Vec<u8>,
    /// Single-fragment batches keep the fragment itself (no copy).
    whole: Option<Bytes>,
    received: u32,
    received_bytes: usize,
    reserved: usize,
    started: Instant,
    deadline: Instant,
}

/// Reassembles fragment batches for one connection. See the module docs for every rule.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    batches: Vec<Batch>,
    budget: Budget,
    tombstones: VecDeque<BatchKey>,
    stats: ReassemblyStats,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(ReassemblyConfig::default())
    }
}

impl Reassembler {
    /// A reassembler with `config`.
    pub fn new(config: ReassemblyConfig) -> Self {
        let budget = Budget::new(config.max_bytes_in_flight);
        Reassembler {
            config,
            batches: Vec::new(),
            budget,
            tombstones: VecDeque::new(),
            stats: ReassemblyStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// Bytes reserved by live batches on this connection.
    pub fn bytes_reserved(&self) -> usize {
        self.budget.used()
    }

    /// Live batches.
    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// Counters.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// True when (crdt, room, batch id) is being reassembled.
    pub fn contains(&self, crdt: CrdtType, room: &str, batch_id: BatchId) -> bool {
        self.find(crdt, room, batch_id).is_some()
    }

    fn find(&self, crdt: CrdtType, room: &str, batch_id: BatchId) -> Option<usize> {
        self.batches.iter().position(|b| b.key.is(crdt, room, batch_id))
    }

    fn is_tombstoned(&self, crdt: CrdtType, room: &str, batch_id: BatchId) -> bool {
        self.tombstones.iter().any(|k| k.is(crdt, room, batch_id))
    }

    fn tombstone(&mut self, key: BatchKey) {
        if self.config.tombstones == 0 {
            return;
        }
        if self.tombstones.len() >= self.config.tombstones {
            self.tombstones.pop_front();
        }
        self.tombstones.push_back(key);
    }

    fn untombstone(&mut self, crdt: CrdtType, room: &str, batch_id: BatchId) {
        self.tombstones.retain(|k| !k.is(crdt, room, batch_id));
    }

    fn remove(&mut self, i: usize, global: &mut Budget) -> Batch {
        let batch = self.batches.swap_remove(i);
        self.budget.release(batch.reserved);
        global.release(batch.reserved);
        batch
    }

    /// Handles a DocUpdateFragmentHeader. `global` is the budget shared across connections (a client keeps
    /// one [`Budget::unlimited`]); pass the same one to every call of this reassembler.
    // The batch key's three parts stay separate arguments so callers can pass borrowed fields of a decoded frame
    // without building a key.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_header(
        &mut self,
        now: Instant,
        crdt: CrdtType,
        room: &str,
        batch_id: BatchId,
        fragment_count: u32,
        total_size: u32,
        global: &mut Budget,
    ) -> HeaderOutcome {
        let mut restarted = false;
        if let Some(i) = self.find(crdt, room, batch_id) {
            let live = &self.batches[i];
            if live.count == fragment_count && live.total == total_size {
                return HeaderOutcome::Unchanged;
            }
            self.remove(i, global);
            restarted = true;
        }
        self.untombstone(crdt, room, batch_id);
        if let Err(reason) = self.check_header(fragment_count, total_size, room.len(), global) {
            self.stats.rejected += 1;
            self.tombstone(BatchKey { crdt, room: Utf8Bytes::from(room), batch_id });
            return HeaderOutcome::Rejected(reason);
        }
        let reserved = Self::reservation(fragment_count, total_size, room.len());
        // check_header verified both budgets have room.
        let ok = self.budget.try_reserve(reserved) && global.try_reserve(reserved);
        debug_assert!(ok);
        let mut slots = Vec::new();
        slots.resize(fragment_count as usize, Slot::Empty);
        self.batches.push(Batch {
            key: BatchKey { crdt, room: Utf8Bytes::from(room), batch_id },
            count: fragment_count,
            total: total_size,
            slots,
            next: 0,
            prefix_len: 0,
            stride: None,
            out: Vec::new(),
            whole: None,
            received: 0,
            received_bytes: 0,
            reserved,
            started: now,
            deadline: now + self.config.timeout.min(self.config.max_lifetime),
        });
        if restarted {
            HeaderOutcome::Restarted
        } else {
            HeaderOutcome::Started
        }
    }

    fn reservation(count: u32, total: u32, room_len: usize) -> usize {
        (total as usize)
            .saturating_add((count as usize).saturating_mul(FRAGMENT_ENTRY_OVERHEAD))
            .saturating_add(BATCH_OVERHEAD + room_len)
    }

    fn check_header(&self, count: u32, total: u32, room_len: usize, global: &Budget) -> Result<(), RejectReason> {
        if count == 0 {
            return Err(RejectReason::ZeroFragments);
        }
        if count > self.config.max_fragments {
            return Err(RejectReason::TooManyFragments { count, max: self.config.max_fragments });
        }
        if total as usize > self.config.max_update_size {
            return Err(RejectReason::UpdateTooLarge { total, max: self.config.max_update_size });
        }
        // Every fragment carries at least one byte and at most one frame's worth.
        if count > total || u64::from(total) > u64::from(count) * MAX_FRAME_SIZE as u64 {
            return Err(RejectReason::ImpossibleLayout { count, total });
        }
        if self.batches.len() >= self.config.max_batches {
            return Err(RejectReason::TooManyBatches { max: self.config.max_batches });
        }
        let needed = Self::reservation(count, total, room_len);
        if needed > self.budget.available() {
            return Err(RejectReason::OverConnectionBudget { needed, available: self.budget.available() });
        }
        if needed > global.available() {
            return Err(RejectReason::OverGlobalBudget { needed, available: global.available() });
        }
        Ok(())
    }

    /// Marks a batch as already answered (e.g. its header was refused for lack of permission) so its fragments
    /// are ignored quietly instead of each being reported as stray. No effect on a live batch.
    pub fn ignore_batch(&mut self, crdt: CrdtType, room: &str, batch_id: BatchId) {
        if self.find(crdt, room, batch_id).is_none() && !self.is_tombstoned(crdt, room, batch_id) {
            self.tombstone(BatchKey { crdt, room: Utf8Bytes::from(room), batch_id });
        }
    }

    /// Handles a DocUpdateFragment whose bytes are `data` (a zero-copy slice of the received frame is ideal).
    #[allow(clippy::too_many_arguments)]
    pub fn handle_fragment(
        &mut self,
        now: Instant,
        crdt: CrdtType,
        room: &str,
        batch_id: BatchId,
        index: u32,
        data: Bytes,
        global: &mut Budget,
    ) -> FragmentOutcome {
        let Some(i) = self.find(crdt, room, batch_id) else {
            self.stats.stray += 1;
            if self.is_tombstoned(crdt, room, batch_id) {
                return FragmentOutcome::Ignored;
            }
            self.tombstone(BatchKey { crdt, room: Utf8Bytes::from(room), batch_id });
            return FragmentOutcome::Rejected(RejectReason::NoHeader);
        };
        match self.batches[i].accept(index, data) {
            Ok(Progress::Duplicate) => {
                self.stats.duplicates += 1;
                FragmentOutcome::Duplicate
            }
            Ok(Progress::Stored) => {
                let cfg = &self.config;
                let b = &mut self.batches[i];
                if cfg.extend_on_progress {
                    b.deadline = (now + cfg.timeout).min(b.started + cfg.max_lifetime).max(b.deadline);
                }
                FragmentOutcome::Stored
            }
            Ok(Progress::Complete) => {
                let mut batch = self.remove(i, global);
                let update = match batch.whole.take() {
                    Some(whole) => whole,
                    None => Bytes::from(core::mem::take(&mut batch.out)),
                };
                self.stats.completed += 1;
                self.tombstone(batch.key);
                FragmentOutcome::Complete(update)
            }
            Err(reason) => {
                let batch = self.remove(i, global);
                self.stats.rejected += 1;
                self.tombstone(batch.key);
                FragmentOutcome::Rejected(reason)
            }
        }
    }

    /// The earliest deadline of a live batch.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.batches.iter().map(|b| b.deadline).min()
    }

    /// Expires one batch whose deadline is at or before `now` (earliest first) and returns its key, so the
    /// caller can answer `Ack(fragment_timeout)`. Call until it returns `None`.
    pub fn poll_expired(&mut self, now: Instant, global: &mut Budget) -> Option<BatchKey> {
        let (i, _) =
            self.batches.iter().enumerate().filter(|(_, b)| b.deadline <= now).min_by_key(|(_, b)| b.deadline)?;
        let batch = self.remove(i, global);
        self.stats.expired += 1;
        self.tombstone(batch.key.clone());
        Some(batch.key)
    }

    /// Drops every batch of one room (e.g. the peer left it), releasing their memory. Returns how many.
    pub fn drop_room(&mut self, crdt: CrdtType, room: &str, global: &mut Budget) -> usize {
        let mut n = 0;
        while let Some(i) = self.batches.iter().position(|b| b.key.crdt == crdt && b.key.room == room) {
            let b = self.remove(i, global);
            self.tombstone(b.key);
            n += 1;
        }
        n
    }

    /// Drops every batch (e.g. the connection closed), releasing their memory.
    pub fn clear(&mut self, global: &mut Budget) {
        while !self.batches.is_empty() {
            self.remove(self.batches.len() - 1, global);
        }
        self.tombstones.clear();
    }
}

enum Progress {
    Stored,
    Duplicate,
    Complete,
}

impl Batch {
    fn accept(&mut self, index: u32, data: Bytes) -> Result<Progress, RejectReason> {
        let slot = *self.slots.get(index as usize).ok_or(RejectReason::IndexOutOfRange { index, count: self.count })?;
        if let Slot::Written { start, len } = slot {
            let held = self.whole.as_deref().unwrap_or(&self.out).get(start as usize..(start as usize + len as usize));
            return if held == Some(&data[..]) {
                Ok(Progress::Duplicate)
            } else {
                Err(RejectReason::ConflictingFragment { index })
            };
        }
        if data.is_empty() {
            return Err(RejectReason::EmptyFragment { index });
        }
        self.received_bytes += data.len();
        if self.received_bytes > self.total as usize {
            return Err(RejectReason::SizeMismatch { received: self.received_bytes, total: self.total });
        }
        self.received += 1;
        if self.count == 1 {
            // The whole update in one fragment: keep it as it is.
            if data.len() != self.total as usize {
                return Err(RejectReason::SizeMismatch { received: data.len(), total: self.total });
            }
            self.slots[0] = Slot::Written { start: 0, len: data.len() as u32 };
            self.whole = Some(data);
            self.next = 1;
            return Ok(Progress::Complete);
        }
        let start = match self.stride {
            // Nothing has arrived ahead of a gap: the next fragment in order goes right after the prefix,
            // whatever its size.
            None if index == self.next => self.prefix_len,
            _ => self.place(index, data.len())?,
        };
        self.write(start, &data);
        self.slots[index as usize] = Slot::Written { start: start as u32, len: data.len() as u32 };
        // Extend the prefix over this fragment and any that arrived early and are now contiguous.
        while let Some(Slot::Written { len, .. }) = self.slots.get(self.next as usize) {
            self.prefix_len += *len as usize;
            self.next += 1;
        }
        if self.received == self.count {
            if self.prefix_len != self.total as usize {
                return Err(RejectReason::SizeMismatch { received: self.prefix_len, total: self.total });
            }
            return Ok(Progress::Complete);
        }
        Ok(Progress::Stored)
    }

    /// Where fragment `index` of `len` bytes goes under the equal-size layout (fixing the common size on the
    /// first call), or why it cannot go anywhere. Only for batches of two or more fragments.
    fn place(&mut self, index: u32, len: usize) -> Result<usize, RejectReason> {
        let irregular = RejectReason::IrregularFragment { index, len };
        let last = self.count - 1;
        let total = u64::from(self.total);
        let stride = match self.stride {
            Some(stride) => u64::from(stride),
            None => {
                let stride = if self.next > 0 {
                    // The prefix fixes the size, provided its fragments share one.
                    let mut lens = self.slots[..self.next as usize].iter().map(|s| match s {
                        Slot::Written { len, .. } => *len,
                        Slot::Empty => 0,
                    });
                    let first = lens.next().unwrap_or(0);
                    if !lens.all(|l| l == first) {
                        return Err(irregular);
                    }
                    u64::from(first)
                } else if index < last {
                    len as u64
                } else {
                    // The last fragment first: the others share what it leaves.
                    let rest = total.saturating_sub(len as u64);
                    if rest % u64::from(last) != 0 {
                        return Err(irregular);
                    }
                    rest / u64::from(last)
                };
                // The last fragment must hold between 1 and `stride` bytes.
                let before_last = stride * u64::from(last);
                if stride == 0 || before_last >= total || total - before_last > stride {
                    return Err(irregular);
                }
                self.stride = Some(stride as u32);
                stride
            }
        };
        let start = stride * u64::from(index);
        let expected = if index == last { total - start } else { stride };
        if len as u64 != expected {
            return Err(irregular);
        }
        Ok(start as usize)
    }

    /// Copies `data` to `out[start..]`, zero-filling any gap before it. The first write reserves the announced
    /// total once (already within budget); the layout keeps every write inside it.
    fn write(&mut self, start: usize, data: &[u8]) {
        if self.out.capacity() == 0 {
            self.out.reserve_exact(self.total as usize);
        }
        let end = start + data.len();
        if start >= self.out.len() {
            self.out.resize(start, 0);
            self.out.extend_from_slice(data);
        } else if end <= self.out.len() {
            self.out[start..end].copy_from_slice(data);
        } else {
            let (inside, beyond) = data.split_at(self.out.len() - start);
            self.out[start..].copy_from_slice(inside);
            self.out.extend_from_slice(beyond);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(r: &mut Reassembler, g: &mut Budget, t: u64, i: u32, d: &'static [u8]) -> FragmentOutcome {
        r.handle_fragment(Instant::from_millis(t), CrdtType::Loro, "r", BatchId([1; 8]), i, Bytes::from_static(d), g)
    }

    #[test]
    fn out_of_order_with_duplicates_completes_once() {
        let mut r = Reassembler::default();
        let mut g = Budget::unlimited();
        let t0 = Instant::ZERO;
        assert_eq!(r.handle_header(t0, CrdtType::Loro, "r", BatchId([1; 8]), 3, 10, &mut g), HeaderOutcome::Started);
        assert_eq!(frag(&mut r, &mut g, 1, 2, b"ij"), FragmentOutcome::Stored);
        assert_eq!(frag(&mut r, &mut g, 2, 0, b"abcd"), FragmentOutcome::Stored);
        assert_eq!(frag(&mut r, &mut g, 3, 0, b"abcd"), FragmentOutcome::Duplicate);
        assert_eq!(frag(&mut r, &mut g, 4, 2, b"ij"), FragmentOutcome::Duplicate);
        assert_eq!(frag(&mut r, &mut g, 5, 1, b"efgh"), FragmentOutcome::Complete(Bytes::from_static(b"abcdefghij")));
        assert_eq!(frag(&mut r, &mut g, 6, 1, b"efgh"), FragmentOutcome::Ignored);
        assert_eq!(r.bytes_reserved(), 0);
        assert_eq!(g.used(), 0);
    }
}
