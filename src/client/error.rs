//! Typed errors of the application's commands. Faults of the server never come out here: they are events.

use crate::room::RoomKey;

use super::event::JoinTicket;

/// Why a connection or room command was refused. Nothing changed in the session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The room id is longer than the protocol's 128 bytes.
    #[error("room id of {len} bytes exceeds the {max}-byte limit")]
    RoomIdTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// [`ClientConfig::max_rooms`](super::ClientConfig::max_rooms) rooms are already registered.
    #[error("{max} rooms are already registered")]
    TooManyRooms {
        /// The limit.
        max: usize,
    },
    /// The room is not registered (never joined, left, or ended).
    #[error("room {0} is not registered")]
    UnknownRoom(RoomKey),
    /// The ticket was answered already, or its room left, or the transport it was issued for was lost (a new
    /// ticket is issued when the join can go ahead again).
    #[error("{0} is stale or unknown")]
    StaleTicket(JoinTicket),
    /// The JoinRequest built from these parameters would exceed the frame limit; the ticket is still valid.
    #[error("join request of {len} bytes exceeds the {max}-byte frame limit")]
    JoinRequestTooLarge {
        /// The encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The session was destroyed.
    #[error("the session was destroyed")]
    Destroyed,
}

/// Why [`send`](super::ClientSession::send) refused updates. Nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The room is not registered (never joined, left, or ended).
    #[error("room {0} is not registered")]
    UnknownRoom(RoomKey),
    /// The server granted read permission only: updates would be rejected with `permission_denied`.
    #[error("room {0} is read-only")]
    ReadOnly(RoomKey),
    /// The send carries no updates.
    #[error("no updates to send")]
    NoUpdates,
    /// An update is longer than the protocol can describe (4 GiB − 1 bytes).
    #[error("update {index} of {len} bytes is too large to send")]
    UpdateTooLarge {
        /// Its index in the send.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// The outbox budget ([`ClientConfig::max_outbox_bytes`](super::ClientConfig::max_outbox_bytes)) would be
    /// exceeded; retry after Acks free some, or raise the budget.
    #[error("the send needs {needed} outbox bytes but only {available} are free")]
    OutboxFull {
        /// Bytes the send would hold.
        needed: usize,
        /// Bytes free.
        available: usize,
    },
    /// The session was destroyed.
    #[error("the session was destroyed")]
    Destroyed,
}
