//! [`ClientCounters`]: what the session saw and did, for observability.

/// Monotonic counters of one session (never reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCounters {
    /// `Transmit::Open` issued.
    pub opens: u64,
    /// Frames handed to `handle_frame` while connected.
    pub frames_received: u64,
    /// Frames queued for the transport (`Transmit::Frame`).
    pub frames_sent: u64,
    /// Binary frames that did not decode.
    pub decode_errors: u64,
    /// Text frames other than `ping`/`pong` (ignored).
    pub ignored_text_frames: u64,
    /// Frames handed in while no transport was open, or after `destroy` (ignored).
    pub ignored_frames: u64,
    /// `transport_opened`/`transport_closed` calls that matched no transport the session knows (ignored).
    pub stale_transport_events: u64,
    /// Messages naming a room that is not registered (ignored).
    pub unknown_room_messages: u64,
    /// JoinResponseOk/JoinError for a room with no JoinRequest outstanding (ignored).
    pub unsolicited_join_responses: u64,
    /// JoinRequest/Leave received from the server (reported, ignored).
    pub unexpected_messages: u64,
    /// Acks naming no batch in flight for their room (ignored).
    pub unknown_acks: u64,
    /// Error Acks for batches already queued for a resend (the resend's Ack decides).
    pub superseded_acks: u64,
    /// Batches put on a transport for the first time.
    pub batches_sent: u64,
    /// Batches put on a transport again (after a reconnect, a rejoin, or `fragment_timeout`).
    pub batches_resent: u64,
    /// Batches acknowledged ok.
    pub batches_acked: u64,
    /// Batches rejected by the server.
    pub batches_rejected: u64,
    /// Batches dropped (left, closed, ended, read-only, ephemeral).
    pub batches_dropped: u64,
    /// Server batches delivered as [`ClientEvent::Updates`](super::ClientEvent::Updates).
    pub batches_received: u64,
    /// Server fragment batches that failed (expired or rejected).
    pub incoming_batches_failed: u64,
    /// `ping` frames sent (keepalive and manual).
    pub pings_sent: u64,
    /// `pong` frames received.
    pub pongs_received: u64,
    /// Keepalive pongs that did not arrive in time.
    pub missed_pongs: u64,
}
