//! The outbox: every batch handed to the session until its terminal event (acked, rejected or dropped).
//!
//! A send is planned into batches by the [`Fragmenter`] at once (one random batch id per batch), so every
//! update has a batch id and a terminal event from the start. A batch is *queued* until its room is joined with
//! write permission on an open transport, then *in flight* until its Ack. A lost transport or a rejoin puts in-flight batches back
//! to queued; they are sent again, in their original order, after the rejoin.
//!
//! Memory is bounded by a byte budget charged at `send` and released at the terminal event.

use alloc::collections::btree_map::Entry;
use alloc::collections::BTreeMap;
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
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) id: BatchId,
    /// Order of creation (sends are replayed in this order).
    pub(crate) seq: u64,
    pub(crate) room: RoomKey,
    pub(crate) send: SendId,
    /// Indices of the updates in the send.
    pub(crate) range: Range<usize>,
    pub(crate) updates: Vec<Bytes>,
    /// The plan, relative to `updates`.
    pub(crate) plan: PlannedBatch,
    pub(crate) cost: usize,
    pub(crate) state: BatchState,
    /// How many times it was put on a transport.
    pub(crate) transmissions: u32,
    /// Resends after `fragment_timeout`.
    pub(crate) resends: u32,
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
/// and a small ordered index from batch id to slot.
#[derive(Debug)]
pub(crate) struct Outbox {
    slots: Vec<Option<Batch>>,
    free: Vec<u32>,
    index: BTreeMap<BatchId, u32>,
    next_seq: u64,
    bytes: usize,
    limit: usize,
}

/// Bytes a set of updates is charged.
fn cost(updates: &[Bytes]) -> usize {
    updates.iter().fold(0usize, |acc, u| acc.saturating_add(u.len()).saturating_add(UPDATE_OVERHEAD))
}

/// The plan of one batch, re-based to its own update list.
fn rebase(plan: PlannedBatch) -> PlannedBatch {
    match plan {
        PlannedBatch::Packed { start, end } => PlannedBatch::Packed { start: 0, end: end - start },
        PlannedBatch::Fragmented { fragments, fragment_size, .. } => {
            PlannedBatch::Fragmented { index: 0, fragments, fragment_size }
        }
        PlannedBatch::TooLarge { .. } => PlannedBatch::TooLarge { index: 0 },
    }
}

impl Outbox {
    pub(crate) fn new(limit: usize) -> Self {
        Outbox { slots: Vec::new(), free: Vec::new(), index: BTreeMap::new(), next_seq: 0, bytes: 0, limit }
    }

    /// Bytes charged by the batches held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn get(&self, id: &BatchId) -> Option<&Batch> {
        let slot = *self.index.get(id)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: &BatchId) -> Option<&mut Batch> {
        let slot = *self.index.get(id)?;
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Removes a batch, releasing its bytes.
    pub(crate) fn remove(&mut self, id: &BatchId) -> Option<Batch> {
        let slot = self.index.remove(id)?;
        let b = self.slots.get_mut(slot as usize)?.take()?;
        if self.index.is_empty() {
            // Nothing lives: forget the free list rather than let it grow (capacity is kept).
            self.slots.clear();
            self.free.clear();
        } else {
            self.free.push(slot);
        }
        self.bytes = self.bytes.saturating_sub(b.cost);
        Some(b)
    }

    /// Batch ids in creation order, of the batches `keep` selects.
    pub(crate) fn ids_where(&self, mut keep: impl FnMut(&Batch) -> bool) -> Vec<BatchId> {
        let mut v: Vec<(u64, BatchId)> =
            self.slots.iter().flatten().filter(|b| keep(b)).map(|b| (b.seq, b.id)).collect();
        v.sort_unstable();
        v.into_iter().map(|(_, id)| id).collect()
    }

    pub(crate) fn views(&self) -> impl Iterator<Item = PendingBatch<'_>> {
        self.index.values().filter_map(|slot| self.slots.get(*slot as usize)?.as_ref()).map(|b| PendingBatch {
            room: &b.room,
            send: b.send,
            batch_id: b.id,
            range: b.range.clone(),
            bytes: b.cost,
            in_flight: b.state == BatchState::InFlight,
        })
    }

    /// Indexes `slot` under a random batch id not held by any batch, and returns the id. A degenerate RNG
    /// (constant output) cannot stall it: after a few collisions the id is searched upwards from the last draw,
    /// which ends because the outbox is finite.
    fn index_fresh(&mut self, slot: u32, rng: &mut impl Rng) -> BatchId {
        let mut v = rng.next_u64();
        for attempt in 0usize.. {
            if let Entry::Vacant(e) = self.index.entry(BatchId::from_u64(v)) {
                e.insert(slot);
                return BatchId::from_u64(v);
            }
            v = if attempt < 8 { rng.next_u64() } else { v.wrapping_add(1) };
        }
        // `0usize..` does not end before the outbox (far smaller than usize::MAX entries) has a free id.
        BatchId::from_u64(v)
    }

    /// Plans `updates` into batches, checks them against the budget, and adds them queued. Returns the ids of
    /// the new batches in order. Nothing is added on error.
    pub(crate) fn add(
        &mut self,
        fragmenter: &Fragmenter,
        room: &RoomKey,
        send: SendId,
        mut updates: Vec<Bytes>,
        rng: &mut impl Rng,
        new_ids: &mut Vec<BatchId>,
    ) -> Result<(), SendError> {
        if updates.is_empty() {
            return Err(SendError::NoUpdates);
        }
        let needed = cost(&updates);
        let available = self.limit.saturating_sub(self.bytes);
        if needed > available {
            return Err(SendError::OutboxFull { needed, available });
        }
        let mut plan = fragmenter.plan(room.room.len(), &updates);
        let first = plan.next();
        let single = match first {
            Some(p) if p.updates() == (0..updates.len()) => Some(p),
            _ => None,
        };
        if let Some(p) = single {
            // The common case: one batch carries the whole send; the caller's Vec becomes the batch's.
            if let PlannedBatch::TooLarge { index } = p {
                return Err(SendError::UpdateTooLarge { index, len: updates[index].len() });
            }
            let range = 0..updates.len();
            self.push(room, send, range, updates, p, rng, new_ids);
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
            self.push(room, send, shifted, taken, p, rng, new_ids);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        room: &RoomKey,
        send: SendId,
        range: Range<usize>,
        updates: Vec<Bytes>,
        plan: PlannedBatch,
        rng: &mut impl Rng,
        new_ids: &mut Vec<BatchId>,
    ) {
        let reuse = self.free.pop().filter(|s| self.slots.get(*s as usize).is_some_and(Option::is_none));
        // The budget charges at least UPDATE_OVERHEAD per batch, so slots stay far below u32::MAX.
        let slot = reuse.unwrap_or_else(|| u32::try_from(self.slots.len()).unwrap_or(u32::MAX));
        let id = self.index_fresh(slot, rng);
        let c = cost(&updates);
        self.bytes = self.bytes.saturating_add(c);
        let seq = self.next_seq;
        self.next_seq += 1;
        let batch = Batch {
            id,
            seq,
            room: room.clone(),
            send,
            range,
            updates,
            plan: rebase(plan),
            cost: c,
            state: BatchState::Queued,
            transmissions: 0,
            resends: 0,
        };
        match self.slots.get_mut(slot as usize) {
            // A reused slot, checked empty above.
            Some(s) => *s = Some(batch),
            None => self.slots.push(Some(batch)),
        }
        new_ids.push(id);
    }
}
