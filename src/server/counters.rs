//! [`Counters`]: what the server has done, for metrics.

use crate::wire::AckStatus;

/// Monotonic counters (except the gauges, marked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    /// Gauge: open connections.
    pub connections: u64,
    /// Gauge: loaded rooms.
    pub rooms: u64,
    /// Connections opened.
    pub connections_opened: u64,
    /// Connections refused by `max_connections`.
    pub connections_refused: u64,
    /// Frames received.
    pub frames_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Frames queued for sending.
    pub frames_out: u64,
    /// Bytes queued for sending.
    pub bytes_out: u64,
    /// Acks sent, by status byte (index = status; unassigned statuses in their slot).
    pub acks_sent: [u64; 128],
    /// Non-zero Acks received from clients.
    pub client_error_acks: u64,
    /// `Ack(ok)` received from clients (the protocol says clients should not send them).
    pub client_ok_acks: u64,
    /// Joins accepted.
    pub joins_accepted: u64,
    /// Joins rejected (by the app or by a limit).
    pub joins_rejected: u64,
    /// Updates accepted and applied.
    pub updates_accepted: u64,
    /// Undecodable frames (each closes its connection with 1002).
    pub decode_errors: u64,
    /// Text frames other than ping/pong (ignored).
    pub unknown_text_frames: u64,
    /// Server-only messages received from a client (JoinResponseOk, RoomError; ignored).
    pub unexpected_messages: u64,
    /// JoinErrors received from clients (treated as leaving the room).
    pub client_join_errors: u64,
    /// Keepalive pings answered.
    pub pings: u64,
    /// Closes by reason: protocol error (1002).
    pub closed_protocol_error: u64,
    /// Closes by reason: frame too big (1009).
    pub closed_too_big: u64,
    /// Closes by reason: slow reader (1013).
    pub closed_slow_reader: u64,
    /// Closes by reason: idle timeout.
    pub closed_idle: u64,
    /// Closes requested by the application.
    pub closed_by_app: u64,
    /// Fragment batches resent after a client's `Ack(fragment_timeout)`.
    pub fragment_resends: u64,
    /// Snapshot saves requested.
    pub saves_requested: u64,
    /// Snapshot saves that failed (and were retried).
    pub saves_failed: u64,
    /// Persist groups requested (durable acks).
    pub persists_requested: u64,
    /// Persist groups that failed (and were retried).
    pub persists_failed: u64,
    /// Room loads that failed.
    pub loads_failed: u64,
    /// Rooms unloaded.
    pub rooms_unloaded: u64,
    /// Rate-limit hits.
    pub rate_limited: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            connections: 0,
            rooms: 0,
            connections_opened: 0,
            connections_refused: 0,
            frames_in: 0,
            bytes_in: 0,
            frames_out: 0,
            bytes_out: 0,
            acks_sent: [0; 128],
            client_error_acks: 0,
            client_ok_acks: 0,
            joins_accepted: 0,
            joins_rejected: 0,
            updates_accepted: 0,
            decode_errors: 0,
            unknown_text_frames: 0,
            unexpected_messages: 0,
            client_join_errors: 0,
            pings: 0,
            closed_protocol_error: 0,
            closed_too_big: 0,
            closed_slow_reader: 0,
            closed_idle: 0,
            closed_by_app: 0,
            fragment_resends: 0,
            saves_requested: 0,
            saves_failed: 0,
            persists_requested: 0,
            persists_failed: 0,
            loads_failed: 0,
            rooms_unloaded: 0,
            rate_limited: 0,
        }
    }
}

impl Counters {
    /// Acks sent with `status`.
    pub fn acks(&self, status: AckStatus) -> u64 {
        self.acks_sent.get(status.0 as usize).copied().unwrap_or(0)
    }

    pub(crate) fn count_ack(&mut self, status: AckStatus) {
        if let Some(slot) = self.acks_sent.get_mut(status.0 as usize) {
            *slot += 1;
        }
    }
}
