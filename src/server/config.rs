//! [`ServerConfig`]: every limit and policy of the server, each with a documented default.

use core::time::Duration;

use crate::fragment::{Fragmenter, ReassemblyConfig};

/// When `Ack(ok)` is sent for an accepted update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckMode {
    /// Default. `Ack(ok)` only after the application confirmed the update is persisted
    /// ([`ServerEvent::PersistUpdates`](super::ServerEvent::PersistUpdates) answered by
    /// [`Server::persist_done`](super::Server::persist_done)). A crash loses no acknowledged update. Rooms whose
    /// document is not persistent (`%EPH`, `%YAW`) are acked right after apply.
    Durable,
    /// `Ack(ok)` right after the update is applied in memory. Persistence relies on periodic snapshot saves,
    /// so a crash can lose acknowledged updates made since the last save.
    AfterApply,
}

/// A token bucket: `per_second` tokens refill each second up to `burst`; each update batch takes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained batches per second.
    pub per_second: u32,
    /// Bucket size (batches that may arrive at once).
    pub burst: u32,
}

/// Limits. Each has a protocol-visible outcome (documented on the field) and a counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections. Past it `open_connection` fails; the driver should refuse or close with 1013.
    /// Default 10,000.
    pub max_connections: usize,
    /// Loaded rooms. Past it a join gets `JoinError(app_error, "room_limit")`. Default 10,000.
    pub max_rooms: usize,
    /// Rooms one connection may join. Past it `JoinError(app_error, "rooms_per_connection")`. Default 64.
    pub max_rooms_per_connection: usize,
    /// Members of one room. Past it `JoinError(app_error, "room_full")`. Default 10,000.
    pub max_members_per_room: usize,
    /// Outstanding application decisions (joins, update approvals) per connection. Past it a join gets
    /// `JoinError(app_error, "too_many_pending")` and an update `Ack(rate_limited)`. Default 32.
    pub max_pending_tickets_per_connection: usize,
    /// Bytes a room's document may hold. An update that would pass it gets `Ack(payload_too_large)`.
    /// Default 256 MiB.
    pub max_stored_bytes_per_room: usize,
    /// Largest single update (in a DocUpdate or reassembled). Larger gets `Ack(payload_too_large)`.
    /// Default 64 MiB.
    pub max_update_size: usize,
    /// Update rate per connection; over it `Ack(rate_limited)`. Default 200/s, burst 400. `None` disables.
    pub update_rate: Option<RateLimit>,
    /// Bytes queued for one connection that its socket has not taken yet, counting every frame (relays,
    /// backfill, acks, replies, pongs). Past it the connection is closed with 1013 (try again later) and its
    /// queue dropped; other members are unaffected. Default 16 MiB.
    pub max_queued_bytes_per_connection: usize,
    /// Bytes all connections' fragment reassembly may reserve together. Default 512 MiB.
    pub max_reassembly_bytes_total: usize,
    /// Backfill and resends are turned into frames only while a connection's queue holds less than this many
    /// bytes (or is empty: 0 streams one frame at a time), so a large document is streamed as the socket drains
    /// instead of being queued whole. Keep it well below `max_queued_bytes_per_connection`. Default 1 MiB.
    pub backfill_watermark: usize,
    /// Fragmented batches sent to one connection that are remembered so a client's `Ack(fragment_timeout)` can
    /// be answered by resending once. Default 16.
    pub resend_memory_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_rooms: 10_000,
            max_rooms_per_connection: 64,
            max_members_per_room: 10_000,
            max_pending_tickets_per_connection: 32,
            max_stored_bytes_per_room: 256 * 1024 * 1024,
            max_update_size: 64 * 1024 * 1024,
            update_rate: Some(RateLimit { per_second: 200, burst: 400 }),
            max_queued_bytes_per_connection: 16 * 1024 * 1024,
            max_reassembly_bytes_total: 512 * 1024 * 1024,
            backfill_watermark: 1024 * 1024,
            resend_memory_per_connection: 16,
        }
    }
}

/// Server configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Limits.
    pub limits: Limits,
    /// When acks are sent. Default [`AckMode::Durable`].
    pub ack_mode: AckMode,
    /// Whether every update needs the application's approval
    /// ([`ServerEvent::ApproveUpdate`](super::ServerEvent::ApproveUpdate)) before it is applied. Default false.
    pub approve_updates: bool,
    /// Snapshot save interval for dirty persistent rooms. Default 60 s.
    pub save_interval: Duration,
    /// Delay before a failed save or persist is asked again. Default 1 s.
    pub retry_delay: Duration,
    /// How long a room stays loaded with no members before it is saved (if dirty) and unloaded. Default 60 s.
    pub idle_unload_after: Duration,
    /// Close connections that sent nothing for this long (1001, "idle_timeout"). Default 120 s, well above
    /// twice the official clients' ping interval (20–30 s). `None` disables.
    pub idle_timeout: Option<Duration>,
    /// Reassembly limits per connection (the total across connections is `limits.max_reassembly_bytes_total`).
    pub reassembly: ReassemblyConfig,
    /// How backfill and relayed oversized updates are split into frames.
    pub fragmenter: Fragmenter,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            ack_mode: AckMode::Durable,
            approve_updates: false,
            save_interval: Duration::from_secs(60),
            retry_delay: Duration::from_secs(1),
            idle_unload_after: Duration::from_secs(60),
            idle_timeout: Some(Duration::from_secs(120)),
            reassembly: ReassemblyConfig::default(),
            fragmenter: Fragmenter::new(),
        }
    }
}
