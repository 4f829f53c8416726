//! The outbox: every batch handed to the session until its terminal event (acked, rejected or dropped).
//!
//! A send is planned into batches by the [`Fragmenter`] at once (one random batch id per batch), so every
//! update has a batch id and a terminal event from the start. A batch is *queued* until its room is joined with
//! write permission on an open transport, then *in flight* until its Ack. A lost transport or a rejoin puts in-flight batches back
//! to queued; they are sent again, in their original order, after the rejoin.
//!
//! Memory is bounded by a byte budget charged at `send` and released at the terminal event.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use bytes::Bytes;
use rand_core::Rng;

use super::error::SendError;
use super::event::SendId;
use crate::fragment::{Fragmenter, PlannedBatch};
use crate::room::RoomKey;
use crate::wire::BatchId;

/// Bytes charged per update on top of its length (its handle and bookkeeping), so that even empty updates
/// count against [`ClientConfig::max_outbox_bytes`](super::ClientConfig::max_outbox_bytes).
pub const UPDATE_OVERHEAD: usize = 32;

/// Where a batch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BatchState {
    /// Waiting for its room to be joined on an open transport.
    Queued,
    /// Sent on the current transport; waiting for the Ack.
    InFlight,
}

/// One batch: the updates it carries and how they are framed.
///
/// Kept to 128 bytes (checked by a test on 64-bit targets) so that storing one is a few inline moves: its update
/// range, plan and cost are derived from `first` and `updates` rather than stored.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) id: BatchId,
    /// Order of creation (sends are replayed in this order).
    pub(crate) seq: u64,
    pub(crate) room: RoomKey,
    pub(crate) send: SendId,
    /// Index in the send of the first update (see [`range`](Self::range)).
    first: usize,
    pub(crate) updates: Vec<Bytes>,
    /// How `updates` are framed (see [`plan`](Self::plan)).
    framing: Framing,
    pub(crate) state: BatchState,
    /// How many times it was put on a transport.
    pub(crate) transmissions: u32,
    /// Resends after `fragment_timeout`.
    pub(crate) resends: u32,
}

/// A batch's [`PlannedBatch`], relative to its own updates, without the indices that are always 0 or
/// `updates.len()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// All the updates in one DocUpdate.
    Packed,
    /// The single update as a header and fragments.
    Fragmented { fragments: u32, fragment_size: usize },
    /// The single update cannot be described (never stored: `add` refuses it).
    TooLarge,
}

impl Framing {
    fn of(plan: PlannedBatch) -> Self {
        match plan {
            PlannedBatch::Packed { .. } => Framing::Packed,
            PlannedBatch::Fragmented { fragments, fragment_size, .. } => {
                Framing::Fragmented { fragments, fragment_size }
            }
            PlannedBatch::TooLarge { .. } => Framing::TooLarge,
        }
    }
}

impl Batch {
    /// Indices of the updates in the send.
    pub(crate) fn range(&self) -> Range<usize> {
        self.first..self.first + self.updates.len()
    }

    /// Bytes the batch is charged.
    pub(crate) fn cost(&self) -> usize {
        cost(&self.updates)
    }

    /// The plan, relative to `updates`.
    pub(crate) fn plan(&self) -> PlannedBatch {
        match self.framing {
            Framing::Packed => PlannedBatch::Packed { start: 0, end: self.updates.len() },
            Framing::Fragmented { fragments, fragment_size } => {
                PlannedBatch::Fragmented { index: 0, fragments, fragment_size }
            }
            Framing::TooLarge => PlannedBatch::TooLarge { index: 0 },
        }
    }
}

/// A read-only view of one batch in the outbox ([`ClientSession::outbox_batches`](super::ClientSession::outbox_batches)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingBatch<'a> {
    /// The room.
    pub room: &'a RoomKey,
    /// The send it belongs to.
    pub send: SendId,
    /// Its batch id (unique among the batches in the outbox).
    pub batch_id: BatchId,
    /// Which updates of the send.
    pub range: Range<usize>,
    /// Bytes it is charged against the budget.
    pub bytes: usize,
    /// True once sent on the current transport and not yet acknowledged.
    pub in_flight: bool,
}

/// The batches held by a session: a slab of batches (slots are reused, so a batch never moves while it lives)
/// and an index from batch id to slot. In steady state (batches added and acknowledged) nothing allocates: the
/// slab, its free list and the index keep their capacity.
#[derive(Debug)]
pub(crate) struct Outbox {
    slots: Vec<Option<Batch>>,
    free: Vec<u32>,
    index: IdIndex,
    next_seq: u64,
    bytes: usize,
    limit: usize,
}

/// Batch id → slot: an open-addressing hash table with linear probing and backward-shift deletion (no
/// tombstones), at most half full. Batch ids come from the caller's RNG, which may be anything from a CSPRNG to a
/// counter; the Fibonacci multiplier spreads sequential ids as well as random ones. It grows by doubling and never
/// shrinks (its size is the outbox's high-water mark).
#[derive(Debug, Default)]
struct IdIndex {
    table: Vec<Option<(u64, u32)>>,
    len: usize,
}

impl IdIndex {
    const MIN_CAPACITY: usize = 16;

    fn home(&self, key: u64) -> usize {
        // `table.len()` is a power of two ≥ 16 whenever this is called; the top bits of the product are the best mixed.
        let bits = self.table.len().trailing_zeros();
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// The table index holding `key`, if any.
    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.table.len() - 1;
        let mut i = self.home(key);
        loop {
            match self.table.get(i)? {
                None => return None,
                Some((k, _)) if *k == key => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    fn get(&self, key: u64) -> Option<u32> {
        let i = self.find(key)?;
        self.table.get(i).copied().flatten().map(|(_, slot)| slot)
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts `key → slot` unless `key` is present; true when inserted.
    #[inline]
    fn insert_vacant(&mut self, key: u64, slot: u32) -> bool {
        if (self.len + 1) * 2 > self.table.len() {
            self.grow();
        }
        let mask = self.table.len() - 1;
        let mut i = self.home(key);
        loop {
            match self.table.get_mut(i) {
                Some(e @ None) => {
                    *e = Some((key, slot));
                    self.len += 1;
                    return true;
                }
                Some(Some((k, _))) if *k == key => return false,
                Some(Some(_)) => i = (i + 1) & mask,
                // Unreachable: `i` is masked to the table.
                None => return false,
            }
        }
    }

    #[cold]
    fn grow(&mut self) {
        let capacity = (self.table.len() * 2).max(Self::MIN_CAPACITY);
        let old = core::mem::replace(&mut self.table, vec![None; capacity]);
        self.len = 0;
        for (key, slot) in old.into_iter().flatten() {
            self.insert_vacant(key, slot);
        }
    }

    /// Removes `key`, returning its slot; the entries after it in its probe run shift back into the hole.
    fn remove(&mut self, key: u64) -> Option<u32> {
        let mut hole = self.find(key)?;
        let slot = self.table.get_mut(hole)?.take()?.1;
        self.len -= 1;
        let mask = self.table.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let Some(Some((k, _))) = self.table.get(j).copied() else { break };
            // The entry at `j` may fill the hole when the hole lies on its probe path (between its home and `j`).
            let home = self.home(k);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                let moved = self.table.get_mut(j).and_then(Option::take);
                if let Some(h) = self.table.get_mut(hole) {
                    *h = moved;
                }
                hole = j;
            }
        }
        Some(slot)
    }
}

/// Bytes a set of updates is charged.
fn cost(updates: &[Bytes]) -> usize {
    updates.iter().fold(0usize, |acc, u| acc.saturating_add(u.len()).saturating_add(UPDATE_OVERHEAD))
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Self {
        Outbox { slots: Vec::new(), free: Vec::new(), index: IdIndex::default(), next_seq: 0, bytes: 0, limit }
    }

    /// Bytes charged by the batches held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn get(&self, id: &BatchId) -> Option<&Batch> {
        let slot = self.index.get(id.to_u64())?;
        self.slots.get(slot as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: &BatchId) -> Option<&mut Batch> {
        let slot = self.index.get(id.to_u64())?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// The batch in `slot` (as returned by [`add`](Self::add)) when it is still batch `id`: no index lookup.
    pub(crate) fn slot_mut(&mut self, slot: u32, id: BatchId) -> Option<&mut Batch> {
        self.slots.get_mut(slot as usize)?.as_mut().filter(|b| b.id == id)
    }

    /// Removes a batch, releasing its bytes.
    pub(crate) fn remove(&mut self, id: &BatchId) -> Option<Batch> {
        let slot = self.index.remove(id.to_u64())?;
        let b = self.slots.get_mut(slot as usize)?.take()?;
        if self.index.is_empty() {
            // Nothing lives: forget the free list rather than let it grow (capacity is kept).
            self.slots.clear();
            self.free.clear();
        } else {
            self.free.push(slot);
        }
        self.bytes = self.bytes.saturating_sub(b.cost());
        Some(b)
    }

    /// Batch ids in creation order, of the batches `keep` selects.
    pub(crate) fn ids_where(&self, mut keep: impl FnMut(&Batch) -> bool) -> Vec<BatchId> {
        let mut v: Vec<(u64, BatchId)> =
            self.slots.iter().flatten().filter(|b| keep(b)).map(|b| (b.seq, b.id)).collect();
        v.sort_unstable();
        v.into_iter().map(|(_, id)| id).collect()
    }

    /// Views of the batches, in batch-id order.
    pub(crate) fn views(&self) -> impl Iterator<Item = PendingBatch<'_>> {
        let mut held: Vec<&Batch> = self.slots.iter().flatten().collect();
        held.sort_unstable_by_key(|b| b.id);
        held.into_iter().map(|b| PendingBatch {
            room: &b.room,
            send: b.send,
            batch_id: b.id,
            range: b.range(),
            bytes: b.cost(),
            in_flight: b.state == BatchState::InFlight,
        })
    }

    /// Indexes `slot` under a random batch id not held by any batch, and returns the id. A degenerate RNG
    /// (constant output) cannot stall it: after a few collisions the id is searched upwards from the last draw,
    /// which ends because the outbox is finite.
    fn index_fresh(&mut self, slot: u32, rng: &mut impl Rng) -> BatchId {
        let mut v = rng.next_u64();
        for attempt in 0usize.. {
            if self.index.insert_vacant(v, slot) {
                return BatchId::from_u64(v);
            }
            v = if attempt < 8 { rng.next_u64() } else { v.wrapping_add(1) };
        }
        // `0usize..` does not end before the outbox (far smaller than usize::MAX entries) has a free id.
        BatchId::from_u64(v)
    }

    /// Plans `updates` into batches, checks them against the budget, and adds them queued. Appends the id and
    /// slot of each new batch, in order, to `new_ids`. Nothing is added on error.
    pub(crate) fn add(
        &mut self,
        fragmenter: &Fragmenter,
        room: &RoomKey,
        send: SendId,
        mut updates: Vec<Bytes>,
        rng: &mut impl Rng,
        new_ids: &mut Vec<(BatchId, u32)>,
    ) -> Result<(), SendError> {
        if updates.is_empty() {
            return Err(SendError::NoUpdates);
        }
        let needed = cost(&updates);
        let available = self.limit.saturating_sub(self.bytes);
        if needed > available {
            return Err(SendError::OutboxFull { needed, available });
        }
        // The most common send: one update that fits a frame alone. The planner would yield exactly
        // `Packed { 0, 1 }` for it; skip running it.
        if let [only] = updates.as_slice() {
            if fragmenter.fits_one_frame(room.room.len(), only.len()) {
                let plan = PlannedBatch::Packed { start: 0, end: 1 };
                self.push(room, send, 0..1, updates, plan, needed, rng, new_ids);
                return Ok(());
            }
        }
        let mut plan = fragmenter.plan(room.room.len(), &updates);
        let first = plan.next();
        let single = match first {
            Some(p) if p.updates() == (0..updates.len()) => Some(p),
            _ => None,
        };
        if let Some(p) = single {
            // One batch carries the whole send; the caller's Vec becomes the batch's.
            if let PlannedBatch::TooLarge { index } = p {
                return Err(SendError::UpdateTooLarge { index, len: updates[index].len() });
            }
            let range = 0..updates.len();
            self.push(room, send, range, updates, p, needed, rng, new_ids);
            return Ok(());
        }
        let plans: Vec<PlannedBatch> = first.into_iter().chain(plan).collect();
        if let Some(PlannedBatch::TooLarge { index }) =
            plans.iter().find(|p| matches!(p, PlannedBatch::TooLarge { .. }))
        {
            return Err(SendError::UpdateTooLarge { index: *index, len: updates[*index].len() });
        }
        // Split the Vec front to back: each batch takes its updates without cloning a handle.
        let mut offset = 0;
        for p in plans {
            let range = p.updates();
            let taken: Vec<Bytes> = updates.drain(..range.len()).collect();
            let shifted = range.start..range.end;
            debug_assert_eq!(shifted.start, offset);
            offset = range.end;
            let c = cost(&taken);
            self.push(room, send, shifted, taken, p, c, rng, new_ids);
        }
        Ok(())
    }

    /// Adds one batch charged `cost` bytes (the [`cost`] of `updates`).
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        room: &RoomKey,
        send: SendId,
        range: Range<usize>,
        updates: Vec<Bytes>,
        plan: PlannedBatch,
        cost: usize,
        rng: &mut impl Rng,
        new_ids: &mut Vec<(BatchId, u32)>,
    ) {
        debug_assert_eq!(cost, self::cost(&updates));
        debug_assert_eq!(range.len(), updates.len());
        let reuse = self.free.pop().filter(|s| self.slots.get(*s as usize).is_some_and(Option::is_none));
        // The budget charges at least UPDATE_OVERHEAD per batch, so slots stay far below u32::MAX.
        let slot = reuse.unwrap_or_else(|| u32::try_from(self.slots.len()).unwrap_or(u32::MAX));
        let id = self.index_fresh(slot, rng);
        self.bytes = self.bytes.saturating_add(cost);
        let seq = self.next_seq;
        self.next_seq += 1;
        let batch = Batch {
            id,
            seq,
            room: room.clone(),
            send,
            first: range.start,
            updates,
            framing: Framing::of(plan),
            state: BatchState::Queued,
            transmissions: 0,
            resends: 0,
        };
        match self.slots.get_mut(slot as usize) {
            // A reused slot, checked empty above.
            Some(s) => *s = Some(batch),
            None => self.slots.push(Some(batch)),
        }
        new_ids.push((id, slot));
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, IdIndex};

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_batch_is_at_most_128_bytes() {
        assert!(core::mem::size_of::<Option<Batch>>() <= 128, "{}", core::mem::size_of::<Option<Batch>>());
    }

    use alloc::collections::BTreeMap;

    /// The index against a map, over inserts and removes in small key domains (long probe runs, wrap-around,
    /// growth) and over the whole range.
    #[test]
    fn id_index_matches_a_map() {
        let mut index = IdIndex::default();
        let mut model: BTreeMap<u64, u32> = BTreeMap::new();
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = match step % 4 {
                0 => x % 64,
                1 => (x % 64) << 58,
                2 => x % 5000,
                _ => x,
            };
            // Grow for the first half, then hover.
            let insert = if step < 100_000 { x % 3 != 0 } else { x % 2 == 0 };
            if insert {
                let inserted = index.insert_vacant(key, step);
                assert_eq!(inserted, !model.contains_key(&key));
                if inserted {
                    model.insert(key, step);
                }
            } else {
                assert_eq!(index.remove(key), model.remove(&key));
            }
            if step % 997 == 0 {
                assert_eq!(index.len, model.len());
                for (k, v) in &model {
                    assert_eq!(index.get(*k), Some(*v));
                }
            }
        }
        for (k, v) in core::mem::take(&mut model) {
            assert_eq!(index.remove(k), Some(v));
        }
        assert!(index.is_empty());
        assert!(index.table.iter().all(Option::is_none));
    }
}
