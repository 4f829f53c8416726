//! [`ClientConfig`]: every limit and timer of a [`ClientSession`](super::ClientSession), with its default.

use core::time::Duration;

use crate::fragment::{Fragmenter, ReassemblyConfig};

/// Default idle time before a keepalive `ping`: 20 s (the official repository's current default; npm
/// `loro-websocket` 0.6.2 used 30 s).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);
/// Default time to wait for a `pong` before counting a miss: 10 s.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of consecutive missed pongs that make the client close the transport: 2.
pub const DEFAULT_MAX_MISSED_PONGS: u32 = 2;
/// Default timeout of a manual [`ping`](super::ClientSession::ping): 5 s.
pub const DEFAULT_MANUAL_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Default first reconnect delay: 500 ms.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(500);
/// Default cap on the reconnect delay before jitter: 15 s.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(15);
/// Default jitter, in thousandths of the delay: 250 (±25 %).
pub const DEFAULT_JITTER_PERMILLE: u32 = 250;
/// Default budget for updates held by the session (queued or awaiting their Ack): 16 MiB.
pub const DEFAULT_MAX_OUTBOX_BYTES: usize = 16 * 1024 * 1024;
/// Default limit on rooms registered at once: 256.
pub const DEFAULT_MAX_ROOMS: usize = 256;
/// Default number of times a batch is resent after a `fragment_timeout` Ack before it is reported rejected: 3.
pub const DEFAULT_MAX_RESENDS: u32 = 3;

/// Keepalive: text `ping` after receive silence, `pong` deadlines, manual pings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// Receive silence after which the client sends `ping`; `None` disables automatic pings (and with them the
    /// missed-pong close). Default [`DEFAULT_PING_INTERVAL`] (20 s).
    pub ping_interval: Option<Duration>,
    /// Time allowed for a `pong` after a `ping`; a late one counts as a miss and another `ping` goes out at
    /// once. Default [`DEFAULT_PONG_TIMEOUT`] (10 s).
    pub pong_timeout: Duration,
    /// Consecutive misses that close the transport with 4000 `ping_timeout` and reconnect (at least 1).
    /// Default [`DEFAULT_MAX_MISSED_PONGS`] (2).
    pub max_missed_pongs: u32,
    /// Time after which a manual ping resolves as timed out. Default [`DEFAULT_MANUAL_PING_TIMEOUT`] (5 s).
    pub manual_ping_timeout: Duration,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            pong_timeout: DEFAULT_PONG_TIMEOUT,
            max_missed_pongs: DEFAULT_MAX_MISSED_PONGS,
            manual_ping_timeout: DEFAULT_MANUAL_PING_TIMEOUT,
        }
    }
}

/// Automatic reconnects: exponential backoff with jitter.
///
/// Attempt `n` (1-based) waits `min(initial_delay × 2^(n−1), max_delay)`, then multiplied by a uniform factor in
/// `1 ± jitter_permille/1000`. The cap is applied *before* the jitter, so clients that all reached the cap
/// still retry at spread-out times (the official client caps after jittering, which synchronises them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectConfig {
    /// Whether a lost transport is reopened automatically. Default true.
    pub enabled: bool,
    /// Delay before the first attempt. Default [`DEFAULT_INITIAL_DELAY`] (500 ms).
    pub initial_delay: Duration,
    /// Cap on the delay before jitter. Default [`DEFAULT_MAX_DELAY`] (15 s).
    pub max_delay: Duration,
    /// Jitter in thousandths (clamped to 1000). Default [`DEFAULT_JITTER_PERMILLE`] (250 = ±25 %).
    pub jitter_permille: u32,
    /// Automatic attempts allowed since the last healthy connection (one on which a frame was received);
    /// `None` is unlimited. When they are used up the client stops, as after a fatal close. Default `None`.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            enabled: true,
            initial_delay: DEFAULT_INITIAL_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            jitter_permille: DEFAULT_JITTER_PERMILLE,
            max_attempts: None,
        }
    }
}

/// Configuration of a [`ClientSession`](super::ClientSession). Every field has a documented default.
///
/// Durations below 1 ms are treated as 1 ms, so no timer can fire in a loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Keepalive timers. Default [`KeepaliveConfig::default`].
    pub keepalive: KeepaliveConfig,
    /// Reconnect schedule. Default [`ReconnectConfig::default`].
    pub reconnect: ReconnectConfig,
    /// Bytes of updates the session may hold at once, queued or awaiting their Ack (each update counts its
    /// length plus [`UPDATE_OVERHEAD`](super::UPDATE_OVERHEAD)). A send past it fails with
    /// [`SendError::OutboxFull`](super::SendError::OutboxFull). Default [`DEFAULT_MAX_OUTBOX_BYTES`] (16 MiB).
    pub max_outbox_bytes: usize,
    /// Rooms registered at once. Default [`DEFAULT_MAX_ROOMS`] (256).
    pub max_rooms: usize,
    /// Resends of a batch the server answered with `fragment_timeout`, before the batch is reported rejected.
    /// Default [`DEFAULT_MAX_RESENDS`] (3).
    pub max_resends: u32,
    /// Whether updates of ephemeral rooms (`%EPH`, `%YAW`) still in the outbox when the transport is lost are
    /// sent after the reconnect. Default false: stale presence is wrong, and the ephemeral adaptors resend
    /// their whole state after every join anyway.
    pub replay_ephemeral: bool,
    /// Whether an undecodable frame from the server also closes the transport (4002, then reconnect). Default
    /// false: frames are self-delimiting, so one bad frame (often a newer server's message type or CRDT)
    /// cannot corrupt the next, and dropping every room of the connection over it would turn one odd frame
    /// into a reconnect storm. The frame is always reported as
    /// [`ClientEvent::ProtocolError`](super::ClientEvent::ProtocolError).
    pub close_on_protocol_error: bool,
    /// How sends are split into frames. Default [`Fragmenter::new`] (240 KiB chunks, 256 KiB frames).
    pub fragmenter: Fragmenter,
    /// Limits on reassembling the server's fragment batches. Default [`ReassemblyConfig::default`] (10 s
    /// deadline, 16 batches, 64 MiB).
    pub reassembly: ReassemblyConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            keepalive: KeepaliveConfig::default(),
            reconnect: ReconnectConfig::default(),
            max_outbox_bytes: DEFAULT_MAX_OUTBOX_BYTES,
            max_rooms: DEFAULT_MAX_ROOMS,
            max_resends: DEFAULT_MAX_RESENDS,
            replay_ephemeral: false,
            close_on_protocol_error: false,
            fragmenter: Fragmenter::new(),
            reassembly: ReassemblyConfig::default(),
        }
    }
}

/// `d`, but at least 1 ms.
pub(crate) fn at_least_1ms(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}
