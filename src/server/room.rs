//! Per-room state in the hub: the document, members, and the persistence pipeline.

use alloc::boxed::Box;
use alloc::vec::Vec;

use bytes::Bytes;

use super::doc::RoomDoc;
use super::event::{ConnId, LoadTicket, PersistTicket, SaveReason, SaveTicket};
use crate::room::RoomKey;
use crate::wire::BatchId;

/// Whom to send `Ack(ok)` once a persist group is confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AckTarget {
    pub conn: ConnId,
    pub batch_id: BatchId,
}

/// Updates accepted together, persisted with one ticket (group commit).
#[derive(Debug, Default)]
pub(crate) struct PersistGroup {
    pub ticket: Option<PersistTicket>,
    pub first_seq: u64,
    pub updates: Vec<Bytes>,
    pub acks: Vec<AckTarget>,
}

impl PersistGroup {
    pub(crate) fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.acks.is_empty()
    }
}

#[derive(Debug)]
pub(crate) enum RoomState {
    /// Waiting for `room_loaded`; joins wait on it.
    Loading {
        ticket: LoadTicket,
        waiters: Vec<u64>,
    },
    Ready,
}

pub(crate) struct Room {
    pub key: RoomKey,
    pub doc: Box<dyn RoomDoc>,
    pub state: RoomState,
    pub members: Vec<ConnId>,
    pub persistent: bool,
    /// Incremented by every applied change.
    pub gen: u64,
    /// `gen` covered by the last successful save.
    pub saved_gen: u64,
    /// Sequence number of the last accepted update.
    pub last_seq: u64,
    /// A save in flight: (ticket, gen it covers, seq it covers, reason).
    pub save_inflight: Option<(SaveTicket, u64, u64, SaveReason)>,
    /// The reason for the next save attempt when a save is pending a retry.
    pub retry_reason: Option<SaveReason>,
    /// Unload as soon as the room is saved and idle.
    pub unload_when_saved: bool,
    pub persist_inflight: Option<PersistGroup>,
    pub persist_next: PersistGroup,
}

impl Room {
    pub(crate) fn new(key: RoomKey, doc: Box<dyn RoomDoc>, state: RoomState) -> Self {
        let persistent = doc.is_persistent();
        Room {
            key,
            doc,
            state,
            members: Vec::new(),
            persistent,
            gen: 0,
            saved_gen: 0,
            last_seq: 0,
            save_inflight: None,
            retry_reason: None,
            unload_when_saved: false,
            persist_inflight: None,
            persist_next: PersistGroup::default(),
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.state, RoomState::Ready)
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.persistent && self.gen != self.saved_gen
    }

    pub(crate) fn remove_member(&mut self, conn: ConnId) -> bool {
        match self.members.iter().position(|&c| c == conn) {
            Some(i) => {
                self.members.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Nothing in flight that an unload would lose.
    pub(crate) fn is_quiet(&self) -> bool {
        self.members.is_empty()
            && self.is_ready()
            && self.save_inflight.is_none()
            && self.persist_inflight.is_none()
            && self.persist_next.is_empty()
    }
}
