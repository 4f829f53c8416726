//! [`ClientEvent`] and the small types it carries: ids, statuses and reasons.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;
use core::time::Duration;

use bytes::Bytes;

use crate::close::CloseCode;
use crate::fragment::RejectReason;
use crate::room::RoomKey;
use crate::time::Instant;
use crate::wire::{
    AckStatus, BatchId, DecodeError, JoinErrorCode, MessageType, Permission, RoomErrorCode, UpdateList, Utf8Bytes,
};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub(crate) u64);

        impl $name {
            /// The raw number (unique within one session, increasing).
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }
    };
}

id_type!(
    /// Identifies one request for join parameters ([`ClientEvent::JoinParamsNeeded`]); answer it with
    /// [`provide_join_params`](super::ClientSession::provide_join_params). A ticket is valid until it is answered,
    /// its room leaves the session, or the transport it was issued for is lost.
    JoinTicket,
    "ticket#"
);
id_type!(
    /// Identifies one [`send`](super::ClientSession::send); every event about its updates carries it.
    SendId,
    "send#"
);
id_type!(
    /// Identifies one manual [`ping`](super::ClientSession::ping); resolved by exactly one
    /// [`ClientEvent::PingResult`].
    PingId,
    "ping#"
);

/// The state of the transport, as the session sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// No transport. A reconnect may be scheduled ([`ClientSession::next_retry`](super::ClientSession::next_retry)).
    Disconnected,
    /// [`Transmit::Open`](crate::Transmit::Open) was issued; waiting for `transport_opened`.
    Connecting,
    /// The transport is open.
    Connected,
}

/// The state of one room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoomStatus {
    /// The first join is under way (or waits for a transport).
    Connecting,
    /// Joined: updates flow.
    Joined,
    /// Joined before; a rejoin is under way or waits for the reconnect.
    Reconnecting,
    /// No transport and none will be opened automatically (the app closed, a fatal close, attempts used up).
    /// The room stays registered and rejoins on the next `connect`/`retry_now` (unless it had never joined).
    Disconnected,
    /// The room ended with an error (JoinError, RoomError); it is no longer registered.
    Error,
}

/// Why the session asks for join parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinReason {
    /// The first join of the room.
    Initial,
    /// A rejoin: after a reconnect, or after the server's `rejoin_suggested`.
    Rejoin,
    /// The server answered `version_unknown`: supply an alternative version (for Loro, another encoding), or an
    /// empty version to ask for everything. This happens at most once per join.
    VersionUnknown {
        /// The server's version, when it sent one. Handing it back as the version is replaced by an empty
        /// version: claiming the server's version as ours would skip the backfill we are missing.
        receiver_version: Option<Bytes>,
    },
}

/// The application's answer to [`ClientEvent::JoinParamsNeeded`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JoinParams {
    /// Join metadata, typically a fresh auth token (opaque to the protocol).
    pub auth: Bytes,
    /// The local CRDT version (empty for ephemeral stores, or to ask for everything).
    pub version: Bytes,
}

/// Why a join did not lead to (or out of) a joined room. The room is no longer registered.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinFailure {
    /// The server answered JoinError (`auth_failed`, a second `version_unknown`, `app_error`, …).
    Rejected {
        /// The code (unassigned bytes preserved).
        code: JoinErrorCode,
        /// The server's message.
        message: Utf8Bytes,
        /// The application code, with `app_error`.
        app_code: Option<Utf8Bytes>,
    },
    /// The server ended the room with a RoomError before the join completed.
    RoomError {
        /// The code.
        code: RoomErrorCode,
        /// The server's message.
        message: Utf8Bytes,
    },
    /// The application left the room.
    Left,
    /// The application closed the session ([`close`](super::ClientSession::close)).
    Closed,
    /// The application destroyed the session.
    Destroyed,
    /// The transport was lost and no reconnect will follow (fatal close, attempts used up, reconnect disabled).
    Stopped(StopReason),
}

/// What the session does about a RoomError.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RoomErrorAction {
    /// `rejoin_suggested`: the room rejoins once (fresh parameters are asked for).
    Rejoining,
    /// The room ended (`evicted`, any other code, or a second `rejoin_suggested` before the rejoin succeeded).
    Ended,
}

/// Why updates were dropped without being sent or acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// The application left the room.
    Left,
    /// The application closed the session.
    Closed,
    /// The application destroyed the session.
    Destroyed,
    /// The room ended (JoinError, RoomError, or its join failed).
    RoomEnded,
    /// The room's (re)join granted read permission only.
    ReadOnly,
    /// An ephemeral room's updates are not replayed after the transport was lost
    /// ([`ClientConfig::replay_ephemeral`](super::ClientConfig::replay_ephemeral)).
    EphemeralNotReplayed,
    /// The batch could not be encoded (cannot happen for batches the session planned; kept so nothing panics).
    Unencodable,
}

/// Why an incoming fragment batch from the server produced no update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncomingFailure {
    /// Its fragments did not all arrive before the reassembly deadline; `Ack(fragment_timeout)` was sent.
    Expired,
    /// The header or a fragment was refused; an Ack with `reason.ack_status()` was sent.
    Rejected(RejectReason),
}

/// How a manual ping ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PingOutcome {
    /// A `pong` arrived; `rtt` is measured from the `ping` it answered.
    Pong {
        /// Round-trip time.
        rtt: Duration,
    },
    /// No `pong` within [`KeepaliveConfig::manual_ping_timeout`](super::KeepaliveConfig::manual_ping_timeout).
    TimedOut,
    /// There was no open transport when the ping was asked for.
    NotConnected,
    /// The transport was lost before the `pong`.
    Disconnected,
    /// The application closed or destroyed the session.
    Closed,
}

/// Who ended a transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClosedBy {
    /// The server or the network (reported through `transport_closed`, including a failed open).
    Remote,
    /// This session (a [`Transmit::Close`](crate::Transmit::Close) it issued).
    Local,
}

/// Why automatic reconnects stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// A fatal close: code 1008 or 4400–4499, or reason `permission_changed`, `room_closed`, `auth_failed`.
    Fatal,
    /// [`ReconnectConfig::max_attempts`](super::ReconnectConfig::max_attempts) was used up.
    MaxAttempts,
    /// [`ReconnectConfig::enabled`](super::ReconnectConfig::enabled) is false.
    Disabled,
    /// The application closed the session.
    Closed,
    /// The application destroyed the session.
    Destroyed,
}

/// What happens after a transport ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NextAttempt {
    /// A reconnect is scheduled at this instant.
    At(Instant),
    /// The network is offline; a reconnect starts when it is back online.
    WhenOnline,
    /// No automatic reconnect; `connect`/`retry_now` starts one.
    Never(StopReason),
}

/// Everything the application must know, drained with [`poll_event`](super::ClientSession::poll_event).
///
/// # Ordering
///
/// Events come out in the order their causes happened. Within one input:
/// * an outcome event ([`Joined`](Self::Joined), [`JoinFailed`](Self::JoinFailed),
///   [`RoomError`](Self::RoomError)) comes before the [`RoomStatus`](Self::RoomStatus) it causes, and the
///   [`UpdatesDropped`](Self::UpdatesDropped) of a room that ended come after both;
/// * a transport loss emits [`TransportClosed`](Self::TransportClosed), then
///   [`ConnectionStatus`](Self::ConnectionStatus) `Disconnected`, then the drops of ephemeral batches that are not
///   replayed, then per room in room-key order its outcome and status, then the
///   [`PingResult`](Self::PingResult)s; `close`/`destroy` emit the same, with every batch dropped after the
///   rooms;
/// * a transport open emits `ConnectionStatus` `Connected`, then per room in room-key order its status and its
///   [`JoinParamsNeeded`](Self::JoinParamsNeeded);
/// * the terminal events of batches ([`Acked`](Self::Acked), [`UpdateRejected`](Self::UpdateRejected),
///   `UpdatesDropped`) follow the order of the Acks (or drops) that caused them; several batches dropped at
///   once come in the order they were sent;
/// * every status event is a real transition: the same status is never emitted twice in a row.
///
/// Each input produces a bounded number of events per frame, timer or command (one per room or batch
/// affected), so the queue only grows while the application does not drain it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The connection status changed.
    ConnectionStatus {
        /// The new status.
        status: ConnectionStatus,
    },
    /// A transport ended (or failed to open).
    TransportClosed {
        /// The close code, when there was one.
        code: Option<CloseCode>,
        /// The close reason (at most 123 bytes).
        reason: Utf8Bytes,
        /// Who closed it.
        by: ClosedBy,
        /// What happens next.
        next: NextAttempt,
    },
    /// A room's status changed.
    RoomStatus {
        /// The room.
        room: RoomKey,
        /// The new status.
        status: RoomStatus,
    },
    /// The session needs fresh join parameters for a room (every join, rejoin and version retry asks again).
    /// Answer with [`provide_join_params`](super::ClientSession::provide_join_params), now or later; other
    /// rooms are not held up meanwhile.
    JoinParamsNeeded {
        /// The ticket to answer with.
        ticket: JoinTicket,
        /// The room.
        room: RoomKey,
        /// Why.
        reason: JoinReason,
    },
    /// The server accepted a (re)join.
    Joined {
        /// The room.
        room: RoomKey,
        /// What the server granted; with `Read`, `send` refuses updates for this room.
        permission: Permission,
        /// The server's CRDT version.
        version: Bytes,
        /// The server's extra metadata (empty when unused).
        extra: Bytes,
        /// False for the room's first join, true for every rejoin.
        rejoin: bool,
    },
    /// A join or rejoin failed; the room ended and is no longer registered.
    JoinFailed {
        /// The room.
        room: RoomKey,
        /// True when the room had been joined before (a rejoin failed).
        rejoin: bool,
        /// Why.
        failure: JoinFailure,
    },
    /// The server sent a RoomError for a room.
    RoomError {
        /// The room.
        room: RoomKey,
        /// The code (unassigned bytes preserved).
        code: RoomErrorCode,
        /// The server's message.
        message: Utf8Bytes,
        /// What the session does about it.
        action: RoomErrorAction,
    },
    /// The updates of one server batch (a DocUpdate, or a reassembled fragment batch), sharing the received
    /// frame's buffer: receiving a batch allocates nothing and copies nothing.
    Updates {
        /// The room.
        room: RoomKey,
        /// The server's batch id.
        batch_id: BatchId,
        /// The updates, in order.
        updates: UpdateList,
    },
    /// A fragment batch from the server failed; the server was told with an Ack.
    IncomingBatchFailed {
        /// The room.
        room: RoomKey,
        /// The server's batch id.
        batch_id: BatchId,
        /// Why.
        failure: IncomingFailure,
    },
    /// The server acknowledged a batch: terminal for updates `range` of send `send`.
    Acked {
        /// The room.
        room: RoomKey,
        /// The send the batch belongs to.
        send: SendId,
        /// The batch id.
        batch_id: BatchId,
        /// Which updates of the send (indices into the `Vec` given to `send`).
        range: Range<usize>,
    },
    /// The server rejected a batch: terminal for its updates, handed back unchanged.
    UpdateRejected {
        /// The room.
        room: RoomKey,
        /// The send the batch belongs to.
        send: SendId,
        /// The batch id.
        batch_id: BatchId,
        /// The server's status (for `fragment_timeout`, after the configured resends).
        status: AckStatus,
        /// Which updates of the send.
        range: Range<usize>,
        /// The original update bytes.
        updates: Vec<Bytes>,
    },
    /// A batch was dropped without an Ack: terminal for its updates, handed back unchanged.
    UpdatesDropped {
        /// The room.
        room: RoomKey,
        /// The send the batch belongs to.
        send: SendId,
        /// The batch id.
        batch_id: BatchId,
        /// Why.
        reason: DropReason,
        /// Which updates of the send.
        range: Range<usize>,
        /// The original update bytes.
        updates: Vec<Bytes>,
    },
    /// The server answered `fragment_timeout`; the batch was sent again (not terminal).
    BatchResent {
        /// The room.
        room: RoomKey,
        /// The send.
        send: SendId,
        /// The batch id (unchanged).
        batch_id: BatchId,
        /// Resends of this batch so far, this one included.
        resends: u32,
    },
    /// A keepalive or manual ping was answered.
    Latency {
        /// Round-trip time.
        rtt: Duration,
    },
    /// A manual ping ended.
    PingResult {
        /// The ping.
        id: PingId,
        /// How.
        outcome: PingOutcome,
    },
    /// A binary frame from the server could not be decoded (it was dropped; see
    /// [`ClientConfig::close_on_protocol_error`](super::ClientConfig::close_on_protocol_error)).
    ProtocolError {
        /// Why.
        error: DecodeError,
    },
    /// The server sent a message only clients send (JoinRequest, Leave); it was ignored.
    UnexpectedMessage {
        /// The room it names.
        room: RoomKey,
        /// Its type.
        message_type: MessageType,
    },
}
