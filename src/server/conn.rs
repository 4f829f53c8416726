//! Per-connection state: memberships, reassembly, rate limit, outbound queue, pending decisions.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use bytes::Bytes;

use super::config::RateLimit;
use super::event::{ConnId, UpdateTicket};
use crate::fragment::{PlannedBatch, Reassembler, ReassemblyConfig};
use crate::room::RoomKey;
use crate::time::Instant;
use crate::wire::{BatchId, Frame, Permission};
use crate::Transmit;

/// A membership of one connection in one room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    pub room: u32,
    pub permission: Permission,
}

/// An update batch waiting for the application's approval (kept in arrival order per connection).
#[derive(Debug)]
pub(crate) struct AwaitingUpdate {
    pub ticket: UpdateTicket,
    pub room: RoomKey,
    pub batch_id: BatchId,
    pub updates: Vec<Bytes>,
    /// The received DocUpdate frame, relayed as is when the batch is accepted.
    pub frame: Option<Bytes>,
    pub decision: Option<Result<(), crate::wire::AckStatus>>,
}

/// A fragmented batch this server sent, remembered so a client's `Ack(fragment_timeout)` can be answered once.
#[derive(Debug)]
pub(crate) struct SentBatch {
    pub room: RoomKey,
    pub batch_id: BatchId,
    pub update: Bytes,
    pub resent: bool,
}

/// Frames still to be produced for one room's backfill or a large relay, generated as the queue drains.
#[derive(Debug)]
pub(crate) struct OutboundJob {
    pub room: RoomKey,
    pub updates: Vec<Bytes>,
    /// Planned batches not yet fully emitted, with their batch ids.
    pub batches: VecDeque<(PlannedBatch, BatchId)>,
    /// Next frame of the front batch.
    pub next_frame: usize,
}

/// A token bucket in milli-tokens, refilled lazily.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    limit: Option<RateLimit>,
    milli: u64,
    at: Instant,
}

impl TokenBucket {
    pub(crate) fn new(limit: Option<RateLimit>, now: Instant) -> Self {
        let milli = limit.map_or(0, |l| u64::from(l.burst) * 1000);
        TokenBucket { limit, milli, at: now }
    }

    /// Takes one token; false when the bucket is empty.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let Some(limit) = self.limit else { return true };
        let elapsed = now.saturating_duration_since(self.at).as_millis() as u64;
        self.at = self.at.max(now);
        // per_second tokens per 1000 ms = per_second milli-tokens per ms.
        // Saturating: a clock that jumps far ahead must refill the bucket, not overflow it.
        self.milli = self
            .milli
            .saturating_add(elapsed.saturating_mul(u64::from(limit.per_second)))
            .min(u64::from(limit.burst) * 1000);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// The state of one connection (what quinn calls a `Connection` behind its `Endpoint`).
#[derive(Debug)]
pub struct ServerSession {
    pub(crate) id: ConnId,
    pub(crate) opened_at: Instant,
    pub(crate) last_rx: Instant,
    pub(crate) rooms: BTreeMap<RoomKey, Member>,
    /// Joins awaiting a decision or a load.
    pub(crate) pending_joins: usize,
    pub(crate) awaiting: VecDeque<AwaitingUpdate>,
    pub(crate) reassembler: Reassembler,
    pub(crate) rate: TokenBucket,
    pub(crate) queue: VecDeque<Transmit>,
    pub(crate) queued_bytes: usize,
    pub(crate) notified: bool,
    pub(crate) jobs: VecDeque<OutboundJob>,
    pub(crate) sent_batches: VecDeque<SentBatch>,
    /// Closing: a Close is queued; input is ignored until `connection_closed`.
    pub(crate) closing: bool,
    pub(crate) frames_in: u64,
    pub(crate) bytes_in: u64,
}

impl ServerSession {
    pub(crate) fn new(id: ConnId, now: Instant, reassembly: ReassemblyConfig, rate: Option<RateLimit>) -> Self {
        ServerSession {
            id,
            opened_at: now,
            last_rx: now,
            rooms: BTreeMap::new(),
            pending_joins: 0,
            awaiting: VecDeque::new(),
            reassembler: Reassembler::new(reassembly),
            rate: TokenBucket::new(rate, now),
            queue: VecDeque::new(),
            queued_bytes: 0,
            notified: false,
            jobs: VecDeque::new(),
            sent_batches: VecDeque::new(),
            closing: false,
            frames_in: 0,
            bytes_in: 0,
        }
    }

    /// The connection id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// When the connection was opened.
    pub fn opened_at(&self) -> Instant {
        self.opened_at
    }

    /// When a frame last arrived.
    pub fn last_received(&self) -> Instant {
        self.last_rx
    }

    /// Rooms joined, with the permission granted.
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomKey, Permission)> {
        self.rooms.iter().map(|(k, m)| (k, m.permission))
    }

    /// Bytes queued and not yet taken by the driver.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Bytes reserved by fragment reassembly.
    pub fn reassembly_bytes(&self) -> usize {
        self.reassembler.bytes_reserved()
    }

    /// Frames and bytes received.
    pub fn received(&self) -> (u64, u64) {
        (self.frames_in, self.bytes_in)
    }

    /// True once the server queued a close for this connection.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Outstanding application decisions (joins and update approvals).
    pub fn pending_tickets(&self) -> usize {
        self.pending_joins + self.awaiting.len()
    }

    /// Queues a frame; returns its size.
    pub(crate) fn push_frame(&mut self, frame: Frame) -> usize {
        let n = frame.len();
        self.queued_bytes += n;
        self.queue.push_back(Transmit::Frame(frame));
        n
    }

    pub(crate) fn remember_sent(&mut self, batch: SentBatch, cap: usize) {
        if cap == 0 {
            return;
        }
        while self.sent_batches.len() >= cap {
            self.sent_batches.pop_front();
        }
        self.sent_batches.push_back(batch);
    }
}
