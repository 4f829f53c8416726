//! [`ServerEvent`]: what the application must know or decide, and the tickets it answers with.

use alloc::vec::Vec;

use bytes::Bytes;

use crate::room::RoomKey;
use crate::wire::{AckStatus, BatchId, Utf8Bytes};
use crate::CloseCode;

/// A connection, as numbered by the server (`open_connection`). Never reused within one [`Server`](super::Server).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub(crate) u64);

impl ConnId {
    /// The raw number (for logs and driver maps).
    pub const fn get(self) -> u64 {
        self.0
    }

    pub(crate) const fn slot(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
}

impl core::fmt::Display for ConnId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "conn#{}/{}", self.0 & 0xffff_ffff, self.0 >> 32)
    }
}

macro_rules! ticket {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub(crate) u64);

        impl $name {
            /// The raw number.
            pub const fn get(self) -> u64 {
                self.0
            }
        }
    };
}

ticket!(
    /// Answers a [`ServerEvent::JoinRequested`] with [`Server::accept_join`](super::Server::accept_join) or
    /// [`Server::reject_join`](super::Server::reject_join).
    JoinTicket
);
ticket!(
    /// Answers a [`ServerEvent::LoadRoom`] with [`Server::room_loaded`](super::Server::room_loaded).
    LoadTicket
);
ticket!(
    /// Answers a [`ServerEvent::ApproveUpdate`] with [`Server::approve_update`](super::Server::approve_update).
    UpdateTicket
);
ticket!(
    /// Answers a [`ServerEvent::PersistUpdates`] with [`Server::persist_done`](super::Server::persist_done).
    PersistTicket
);
ticket!(
    /// Answers a [`ServerEvent::SaveRoom`] with [`Server::save_done`](super::Server::save_done).
    SaveTicket
);

/// Why a snapshot save was requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveReason {
    /// The periodic save of a dirty room.
    Interval,
    /// The room is about to be unloaded (idle with no members, or closed by the app).
    Unload,
    /// `shutdown` flushes every dirty room.
    Shutdown,
}

/// Stored state handed back when a room loads: a snapshot (from a previous [`ServerEvent::SaveRoom`]) and the
/// persisted updates accepted after it (from [`ServerEvent::PersistUpdates`]), in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadedRoom {
    /// The latest snapshot, if any.
    pub snapshot: Option<Bytes>,
    /// Updates persisted after that snapshot.
    pub updates: Vec<Bytes>,
    /// The sequence number of the last update included (0 for a new room); numbering continues after it.
    pub last_seq: u64,
}

/// Why the server closed a connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// An undecodable frame (1002).
    ProtocolError,
    /// A frame over the size limit (1009).
    TooBig,
    /// Its queue passed `max_queued_bytes_per_connection` (1013).
    SlowReader,
    /// Nothing received for `idle_timeout`.
    Idle,
    /// The application asked.
    App,
    /// `shutdown`.
    Shutdown,
}

/// What the application must know or decide. Drain with [`Server::poll_event`](super::Server::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A client asks to join `room`. Decide (now or later) with `accept_join` / `reject_join`. Nothing is loaded
    /// before the decision.
    JoinRequested {
        /// The ticket to answer with.
        ticket: JoinTicket,
        /// Who asks.
        conn: ConnId,
        /// The room.
        room: RoomKey,
        /// The join payload (auth).
        auth: Bytes,
        /// The client's version.
        version: Bytes,
        /// True when the connection is already a member (a rejoin; it stays a member until the decision).
        rejoin: bool,
    },
    /// Load `room` from storage and answer with `room_loaded` (one load per room, however many joins wait).
    LoadRoom {
        /// The ticket to answer with.
        ticket: LoadTicket,
        /// The room.
        room: RoomKey,
    },
    /// With `approve_updates` on: approve or block this batch (now or later, in any order; batches of one
    /// connection are still applied in arrival order).
    ApproveUpdate {
        /// The ticket to answer with.
        ticket: UpdateTicket,
        /// The sender.
        conn: ConnId,
        /// The room.
        room: RoomKey,
        /// The sender's batch id.
        batch_id: BatchId,
        /// The updates.
        updates: Vec<Bytes>,
    },
    /// An update batch was accepted and applied (for audit logs and replication). `conn` is `None` for updates
    /// the application pushed itself.
    UpdateAccepted {
        /// The room.
        room: RoomKey,
        /// The sender, if a client.
        conn: Option<ConnId>,
        /// The batch id relayed with it.
        batch_id: BatchId,
        /// Sequence number of the first update (numbering is per room).
        first_seq: u64,
        /// The updates.
        updates: Vec<Bytes>,
    },
    /// Durable acks: persist these accepted updates (append them to the room's log), then call `persist_done`.
    /// Their senders get `Ack(ok)` only after that. Updates accepted meanwhile are grouped into the next one.
    PersistUpdates {
        /// The ticket to answer with.
        ticket: PersistTicket,
        /// The room.
        room: RoomKey,
        /// Sequence number of the first update.
        first_seq: u64,
        /// The updates, in order.
        updates: Vec<Bytes>,
    },
    /// Save this snapshot of `room`, then call `save_done`. It includes every update up to `seq`, so the log
    /// may be truncated there once saved.
    SaveRoom {
        /// The ticket to answer with.
        ticket: SaveTicket,
        /// The room.
        room: RoomKey,
        /// The snapshot.
        snapshot: Bytes,
        /// Last update sequence number included.
        seq: u64,
        /// Why.
        reason: SaveReason,
    },
    /// A room was unloaded (saved first when dirty).
    RoomUnloaded {
        /// The room.
        room: RoomKey,
    },
    /// A connection joined a room (after `accept_join` and any load).
    Joined {
        /// Who.
        conn: ConnId,
        /// The room.
        room: RoomKey,
    },
    /// A connection left a room (Leave, a client JoinError, eviction, room close or disconnect).
    Left {
        /// Who.
        conn: ConnId,
        /// The room.
        room: RoomKey,
    },
    /// A client sent a non-zero Ack for a batch the server sent (it failed to apply or reassemble it).
    ClientAck {
        /// Who.
        conn: ConnId,
        /// The room.
        room: RoomKey,
        /// The server's batch id.
        batch_id: BatchId,
        /// The status.
        status: AckStatus,
        /// True when the server resent the batch in response (first `fragment_timeout` for a remembered batch).
        resent: bool,
    },
    /// The server is closing a connection on its own (the close is queued in its transmits).
    ClosingConnection {
        /// Who.
        conn: ConnId,
        /// Why.
        cause: CloseCause,
        /// The code sent.
        code: CloseCode,
        /// The reason sent.
        reason: Utf8Bytes,
    },
    /// After `shutdown`: every dirty room is saved and every connection closed.
    ShutdownComplete,
}
