//! The Sans-IO server: many connections and many rooms in one deterministic state machine.
//!
//! [`Server`] is the hub (quinn's `Endpoint`): it owns every connection's [`ServerSession`] and every room. The
//! driver feeds it frames tagged with a [`ConnId`] and drains, per connection, the frames and close instructions
//! to write. The application answers the decisions that are its own — authenticate a join, load and save a
//! room, persist accepted updates, optionally approve each update — through [`ServerEvent`]s carrying tickets,
//! now or later.
//!
//! # Run loop
//!
//! ```text
//! let conn = server.open_connection(now)?;             // a transport was accepted
//! server.handle_frame(now, conn, frame);               // a frame arrived
//! server.handle_timeout(clock.now());                  // the clock reached poll_timeout()
//! server.connection_closed(now, conn);                 // the transport is gone
//! // after any of these, drain:
//! while let Some(ev) = server.poll_event() { app.handle(ev) }           // decisions → accept_join, persist_done, …
//! while let Some(conn) = server.poll_ready() { wake(conn) }            // connections with output
//! while let Some(t) = server.poll_transmit(conn) { socket(conn).send(t) } // when conn's socket can take more
//! sleep_until(server.poll_timeout());
//! ```
//!
//! Method classes, as in quinn: getters (`counters`, `session`, `room_members`, …) read state; `handle_*`,
//! `open_connection` and `connection_closed` take input; the app's answers and commands (`accept_join`,
//! `push_update`, `close_room`, …) mutate; `poll_*` produce output. After any input or command, drain
//! `poll_event`, then transmits, then read `poll_timeout`. Time passed in must not go backwards (it is clamped).
//!
//! # Guarantees
//!
//! * No panic and no unbounded growth from peer input: every queue and table is bounded by a [`Limits`] value
//!   with a protocol-visible outcome (a JoinError, an Ack status, or a close code) and a counter.
//! * A broadcast is encoded once; every recipient's queue holds a clone of the same [`bytes::Bytes`].
//! * Updates are validated by the room document before they are relayed or acknowledged; in the default
//!   [`AckMode::Durable`], `Ack(ok)` waits for the application to confirm persistence.
//! * Authentication is decided before anything is loaded; a failed load fails its joins and never starts an
//!   empty room over stored data.

mod config;
mod conn;
mod counters;
mod doc;
pub mod docs;
mod event;
mod room;
mod timers;

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::convert::Infallible;

use bytes::Bytes;
use rand_core::{Rng, TryRng};

pub use config::{AckMode, Limits, RateLimit, ServerConfig};
pub use conn::ServerSession;
pub use counters::Counters;
pub use doc::{Applied, BackfillError, BuiltinDocs, DocError, DocFactory, ImportError, RoomDoc};
pub use event::{
    CloseCause, ConnId, JoinTicket, LoadTicket, LoadedRoom, PersistTicket, SaveReason, SaveTicket, ServerEvent,
    UpdateTicket,
};

use conn::{AwaitingUpdate, Member, OutboundJob, SentBatch};
use room::{AckTarget, Room, RoomState};
use timers::{TimerKey, Timers};

use crate::fragment::{Budget, FragmentOutcome, HeaderOutcome, PlannedBatch};
use crate::room::RoomKey;
use crate::time::Instant;
use crate::wire::{
    AckStatus, BatchId, Body, CrdtType, DecodeError, Frame, Inbound, JoinErrorCode, Keepalive, Message, Permission,
    RoomErrorCode, Updates, Utf8Bytes, MAX_FRAME_SIZE,
};
use crate::{CloseCode, Transmit};

/// Errors from the application's calls into the server (never caused by a peer).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// `max_connections` is reached; refuse the transport (or close it with 1013).
    #[error("connection limit of {0} reached")]
    TooManyConnections(usize),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The connection id is not (or no longer) open.
    #[error("unknown connection {0}")]
    UnknownConnection(ConnId),
    /// The ticket was already answered, or its connection or room is gone.
    #[error("unknown or stale ticket {0}")]
    UnknownTicket(u64),
    /// The room is not loaded.
    #[error("room {0} is not loaded")]
    RoomNotLoaded(RoomKey),
    /// The connection is not a member of the room.
    #[error("{0} is not a member of {1}")]
    NotAMember(ConnId, RoomKey),
    /// The room's document refused the updates.
    #[error("the document refused the updates: {0}")]
    Rejected(DocError),
}

/// Why a load failed (the waiting joins get `JoinError(unknown, "room_load_failed")`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("room load failed")]
pub struct LoadError;

/// Why persisting or saving failed (it is asked again after `retry_delay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("storage write failed")]
pub struct StorageError;

/// A pending join decision.
#[derive(Debug)]
struct PendingJoin {
    conn: ConnId,
    room: RoomKey,
    version: Bytes,
    /// Set by `accept_join` while the room loads.
    decision: Option<(Permission, Bytes)>,
}

/// The server state machine. See the [module docs](self).
pub struct Server {
    config: ServerConfig,
    docs: Box<dyn DocFactory>,
    rng: Box<dyn TryRng<Error = Infallible> + Send>,
    now: Instant,
    conns: Vec<Option<ServerSession>>,
    conn_gens: Vec<u32>,
    free_conns: Vec<usize>,
    open_conns: usize,
    rooms: Vec<Option<Room>>,
    free_rooms: Vec<u32>,
    room_index: BTreeMap<RoomKey, u32>,
    joins: BTreeMap<u64, PendingJoin>,
    loads: BTreeMap<u64, u32>,
    update_tickets: BTreeMap<u64, ConnId>,
    persist_tickets: BTreeMap<u64, u32>,
    save_tickets: BTreeMap<u64, u32>,
    next_ticket: u64,
    ready: VecDeque<ConnId>,
    events: VecDeque<ServerEvent>,
    timers: Timers,
    reassembly_budget: Budget,
    counters: Counters,
    shutting_down: bool,
    shutdown_reported: bool,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.open_conns)
            .field("rooms", &self.room_index.len())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

const JOIN_ERROR_UNSUPPORTED: &str = "unsupported_crdt";

impl Server {
    /// A server with `config`, room documents from `docs` (e.g. [`BuiltinDocs`]), and `rng` for the batch ids
    /// of server-originated batches (backfill, app pushes).
    pub fn new(
        config: ServerConfig,
        docs: impl DocFactory + 'static,
        rng: impl TryRng<Error = Infallible> + Send + 'static,
    ) -> Self {
        let reassembly_budget = Budget::new(config.limits.max_reassembly_bytes_total);
        Server {
            config,
            docs: Box::new(docs),
            rng: Box::new(rng),
            now: Instant::ZERO,
            conns: Vec::new(),
            conn_gens: Vec::new(),
            free_conns: Vec::new(),
            open_conns: 0,
            rooms: Vec::new(),
            free_rooms: Vec::new(),
            room_index: BTreeMap::new(),
            joins: BTreeMap::new(),
            loads: BTreeMap::new(),
            update_tickets: BTreeMap::new(),
            persist_tickets: BTreeMap::new(),
            save_tickets: BTreeMap::new(),
            next_ticket: 1,
            ready: VecDeque::new(),
            events: VecDeque::new(),
            timers: Timers::default(),
            reassembly_budget,
            counters: Counters::default(),
            shutting_down: false,
            shutdown_reported: false,
        }
    }

    // ---------------------------------------------------------------- getters

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A connection's state, if open.
    pub fn session(&self, conn: ConnId) -> Option<&ServerSession> {
        self.conns.get(conn.slot())?.as_ref().filter(|s| s.id == conn)
    }

    /// Open connections.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.iter().flatten().map(|s| s.id)
    }

    /// Loaded (or loading) rooms.
    pub fn rooms(&self) -> impl Iterator<Item = &RoomKey> + '_ {
        self.room_index.keys()
    }

    /// Members of a loaded room.
    pub fn room_members(&self, room: &RoomKey) -> Option<&[ConnId]> {
        self.room(room).map(|r| &r.members[..])
    }

    /// A loaded room's document (read-only).
    pub fn room_doc(&self, room: &RoomKey) -> Option<&dyn RoomDoc> {
        self.room(room).map(|r| &*r.doc)
    }

    /// True when a loaded room has changes not yet covered by a successful save.
    pub fn room_is_dirty(&self, room: &RoomKey) -> Option<bool> {
        self.room(room).map(Room::is_dirty)
    }

    /// Bytes reserved by fragment reassembly across all connections.
    pub fn reassembly_bytes(&self) -> usize {
        self.reassembly_budget.used()
    }

    fn room(&self, key: &RoomKey) -> Option<&Room> {
        let &i = self.room_index.get(key)?;
        self.rooms.get(i as usize)?.as_ref()
    }

    // ---------------------------------------------------------------- outputs

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// A connection whose queue went from empty to non-empty since it was last drained. Each connection is
    /// reported once per such transition; keep calling `poll_transmit` for it while its socket can take more.
    pub fn poll_ready(&mut self) -> Option<ConnId> {
        self.ready.pop_front()
    }

    /// The next frame or close instruction for `conn`. Backfill is produced as the queue drains, so a large
    /// document never sits in memory as frames.
    pub fn poll_transmit(&mut self, conn: ConnId) -> Option<Transmit> {
        let watermark = self.config.limits.backfill_watermark;
        let s = self.session_mut(conn)?;
        let t = s.queue.pop_front();
        if let Some(Transmit::Frame(f)) = &t {
            s.queued_bytes -= f.len();
        }
        if (s.queued_bytes < watermark || s.queue.is_empty()) && !s.jobs.is_empty() && !s.closing {
            self.pump(conn);
        }
        let s = self.session_mut(conn)?;
        if t.is_none() || s.queue.is_empty() {
            s.notified = false;
        }
        // Reports the connection again if it still has output (only when the pump filled an empty queue).
        self.notify(conn);
        t
    }

    /// Bytes queued for `conn`.
    pub fn backlog(&self, conn: ConnId) -> usize {
        self.session(conn).map_or(0, |s| s.queued_bytes)
    }

    /// The earliest deadline, if any timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    // ---------------------------------------------------------------- connections

    /// A transport was accepted. Fails at `max_connections` or during shutdown.
    pub fn open_connection(&mut self, now: Instant) -> Result<ConnId, ServerError> {
        let now = self.clamp(now);
        if self.shutting_down {
            return Err(ServerError::ShuttingDown);
        }
        if self.open_conns >= self.config.limits.max_connections {
            self.counters.connections_refused += 1;
            return Err(ServerError::TooManyConnections(self.config.limits.max_connections));
        }
        let slot = match self.free_conns.pop() {
            Some(slot) => slot,
            None => {
                self.conns.push(None);
                self.conn_gens.push(0);
                self.conns.len() - 1
            }
        };
        let gen = self.conn_gens[slot];
        let id = ConnId((u64::from(gen) << 32) | slot as u64);
        let mut reassembly = self.config.reassembly.clone();
        reassembly.max_update_size = reassembly.max_update_size.min(self.config.limits.max_update_size);
        self.conns[slot] = Some(ServerSession::new(id, now, reassembly, self.config.limits.update_rate));
        self.open_conns += 1;
        self.counters.connections += 1;
        self.counters.connections_opened += 1;
        if let Some(idle) = self.config.idle_timeout {
            self.timers.set(TimerKey::Idle(id.0), Some(now + idle));
        }
        Ok(id)
    }

    /// The transport of `conn` is gone (closed by either side). Cleans up every membership, reassembly and
    /// pending ticket of the connection.
    pub fn connection_closed(&mut self, now: Instant, conn: ConnId) {
        let now = self.clamp(now);
        if self.session(conn).is_none() {
            return;
        }
        self.detach(now, conn);
        let slot = conn.slot();
        self.conns[slot] = None;
        self.conn_gens[slot] = self.conn_gens[slot].wrapping_add(1);
        self.free_conns.push(slot);
        self.open_conns -= 1;
        self.counters.connections = self.counters.connections.saturating_sub(1);
        self.timers.set(TimerKey::Idle(conn.0), None);
        self.timers.set(TimerKey::Reassembly(conn.0), None);
        self.ready.retain(|&c| c != conn);
        self.check_shutdown();
    }

    /// Closes `conn` with `code` and `reason` after the frames already queued.
    pub fn close_connection(&mut self, now: Instant, conn: ConnId, code: CloseCode, reason: &str) {
        let now = self.clamp(now);
        self.close(now, conn, code, reason, CloseCause::App, false);
    }

    /// Removes every membership and pending state of `conn` (for a close or a disconnect).
    fn detach(&mut self, now: Instant, conn: ConnId) {
        let Some(s) = self.session_mut(conn) else { return };
        let rooms: Vec<RoomKey> = s.rooms.keys().cloned().collect();
        let awaiting: Vec<u64> = s.awaiting.drain(..).map(|a| a.ticket.0).collect();
        s.jobs.clear();
        s.sent_batches.clear();
        s.pending_joins = 0;
        let mut reassembler = core::mem::take(&mut s.reassembler);
        reassembler.clear(&mut self.reassembly_budget);
        if let Some(s) = self.session_mut(conn) {
            s.reassembler = reassembler;
        }
        self.timers.set(TimerKey::Reassembly(conn.0), None);
        for t in awaiting {
            self.update_tickets.remove(&t);
        }
        // Pending joins of this connection: drop them (answers to their tickets become no-ops).
        let stale: Vec<u64> = self.joins.iter().filter(|(_, j)| j.conn == conn).map(|(&t, _)| t).collect();
        for t in stale {
            if let Some(j) = self.joins.remove(&t) {
                self.forget_waiter(now, &j.room, t);
            }
        }
        for room in rooms {
            self.leave_room(now, conn, &room);
        }
    }

    /// Removes a join ticket from a loading room's waiters; a room whose only reason to load is gone is
    /// unloaded once loaded (via the normal idle path). A loaded room without members that an undecided join
    /// kept from unloading gets its idle-unload timer again.
    fn forget_waiter(&mut self, now: Instant, room: &RoomKey, ticket: u64) {
        let Some(&i) = self.room_index.get(room) else { return };
        if let Some(Some(r)) = self.rooms.get_mut(i as usize) {
            if let RoomState::Loading { waiters, .. } = &mut r.state {
                waiters.retain(|&w| w != ticket);
            }
        }
        self.maybe_arm_unload(now, i);
    }

    /// Drops `conn`'s undecided or loading joins of `room` (the client left it first); their tickets go stale.
    fn cancel_joins(&mut self, now: Instant, conn: ConnId, room: &RoomKey) {
        let stale: Vec<u64> =
            self.joins.iter().filter(|(_, j)| j.conn == conn && &j.room == room).map(|(&t, _)| t).collect();
        for t in stale {
            if let Some(j) = self.joins.remove(&t) {
                self.unpend(conn);
                self.forget_waiter(now, &j.room, t);
            }
        }
    }

    fn close(&mut self, now: Instant, conn: ConnId, code: CloseCode, reason: &str, cause: CloseCause, drop: bool) {
        let Some(s) = self.session_mut(conn) else { return };
        if s.closing {
            return;
        }
        s.closing = true;
        if drop {
            s.queue.clear();
            s.queued_bytes = 0;
        }
        let reason = Utf8Bytes::from(truncate_reason(reason));
        s.queue.push_back(Transmit::Close { code, reason: reason.clone() });
        self.notify(conn);
        match cause {
            CloseCause::ProtocolError => self.counters.closed_protocol_error += 1,
            CloseCause::TooBig => self.counters.closed_too_big += 1,
            CloseCause::SlowReader => self.counters.closed_slow_reader += 1,
            CloseCause::Idle => self.counters.closed_idle += 1,
            CloseCause::App | CloseCause::Shutdown => self.counters.closed_by_app += 1,
        }
        self.events.push_back(ServerEvent::ClosingConnection { conn, cause, code, reason });
        self.detach(now, conn);
        self.timers.set(TimerKey::Idle(conn.0), None);
    }

    // ---------------------------------------------------------------- input

    /// A frame arrived on `conn`.
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        let now = self.clamp(now);
        let Some(s) = self.session_mut(conn) else { return };
        if s.closing {
            return;
        }
        s.last_rx = now;
        s.frames_in += 1;
        s.bytes_in += frame.len() as u64;
        self.counters.frames_in += 1;
        self.counters.bytes_in += frame.len() as u64;
        if frame.len() > MAX_FRAME_SIZE {
            self.close(now, conn, CloseCode::TOO_BIG, "frame_too_large", CloseCause::TooBig, false);
            return;
        }
        match frame.decode() {
            Ok(Inbound::Keepalive(Keepalive::Ping)) => {
                self.counters.pings += 1;
                self.send(conn, Frame::pong());
            }
            Ok(Inbound::Keepalive(Keepalive::Pong)) => {}
            Ok(Inbound::OtherText(_)) => self.counters.unknown_text_frames += 1,
            Ok(Inbound::Message(msg)) => {
                let buf = frame.payload();
                self.dispatch(now, conn, buf, msg);
            }
            Err(e) => self.protocol_error(now, conn, &e),
        }
    }

    fn protocol_error(&mut self, now: Instant, conn: ConnId, e: &DecodeError) {
        self.counters.decode_errors += 1;
        let mut reason = alloc::string::String::new();
        let _ = core::fmt::write(&mut reason, format_args!("protocol error: {e}"));
        self.close(now, conn, CloseCode::PROTOCOL_ERROR, &reason, CloseCause::ProtocolError, false);
    }

    fn dispatch(&mut self, now: Instant, conn: ConnId, buf: &Bytes, msg: Message<'_>) {
        // A zero-copy key for lookups; stored keys are detached copies.
        let key = RoomKey { crdt: msg.crdt, room: Utf8Bytes::slice_of(buf, msg.room) };
        match msg.body {
            Body::JoinRequest { auth, version } => {
                self.on_join_request(now, conn, key, slice(buf, auth), slice(buf, version))
            }
            Body::DocUpdate { updates, batch_id } => {
                let list: Vec<Bytes> = updates.iter().map(|u| slice(buf, u)).collect();
                self.on_updates(now, conn, key, batch_id, list, Some(buf.clone()));
            }
            Body::FragmentHeader { batch_id, fragment_count, total_size } => {
                self.on_fragment_header(now, conn, key, batch_id, fragment_count, total_size)
            }
            Body::Fragment { batch_id, index, data } => {
                self.on_fragment(now, conn, key, batch_id, index, slice(buf, data))
            }
            Body::Leave => {
                self.cancel_joins(now, conn, &key);
                self.leave_room(now, conn, &key);
            }
            Body::Ack { ref_id, status } => self.on_client_ack(now, conn, key, ref_id, status),
            Body::JoinError { .. } => {
                // The official client sends JoinError(app_error) when its adaptor fails to apply a join: it is
                // leaving the room, not attacking.
                self.counters.client_join_errors += 1;
                self.cancel_joins(now, conn, &key);
                self.leave_room(now, conn, &key);
            }
            Body::JoinResponseOk { .. } | Body::RoomError { .. } => self.counters.unexpected_messages += 1,
        }
    }

    /// The clock reached `poll_timeout()` (pass the current time, not the deadline).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clamp(now);
        while let Some(key) = self.timers.pop_due(now) {
            match key {
                TimerKey::Reassembly(c) => self.expire_fragments(now, ConnId(c)),
                TimerKey::Idle(c) => self.check_idle(now, ConnId(c)),
                TimerKey::Save(r) => self.on_save_timer(now, r),
                TimerKey::Unload(r) => self.try_unload(now, r),
                TimerKey::PersistRetry(r) => self.retry_persist(r),
            }
        }
    }

    fn check_idle(&mut self, now: Instant, conn: ConnId) {
        let Some(idle) = self.config.idle_timeout else { return };
        let Some(s) = self.session(conn) else { return };
        let due = s.last_rx + idle;
        if due <= now {
            self.close(now, conn, CloseCode::GOING_AWAY, "idle_timeout", CloseCause::Idle, false);
        } else {
            self.timers.set(TimerKey::Idle(conn.0), Some(due));
        }
    }

    // ---------------------------------------------------------------- joins

    fn on_join_request(&mut self, now: Instant, conn: ConnId, key: RoomKey, auth: Bytes, version: Bytes) {
        let limits = &self.config.limits;
        let (max_rooms, max_pending) = (limits.max_rooms_per_connection, limits.max_pending_tickets_per_connection);
        let Some(s) = self.session(conn) else { return };
        let rejoin = s.rooms.contains_key(&key);
        if self.shutting_down {
            return self.join_error(now, conn, &key, JoinErrorCode::UNKNOWN, "server_shutting_down", None);
        }
        let over_rooms = !rejoin && s.rooms.len() + s.pending_joins >= max_rooms;
        let over_pending = s.pending_tickets() >= max_pending;
        if over_rooms || over_pending {
            // Every join a limit refuses is counted, like the refusals decided later.
            self.counters.joins_rejected += 1;
        }
        if over_rooms {
            return self.join_error(
                now,
                conn,
                &key,
                JoinErrorCode::APP_ERROR,
                "too many rooms",
                Some("rooms_per_connection"),
            );
        }
        if over_pending {
            return self.join_error(
                now,
                conn,
                &key,
                JoinErrorCode::APP_ERROR,
                "too many pending requests",
                Some("too_many_pending"),
            );
        }
        let room = key.room.detached();
        let room = RoomKey { crdt: key.crdt, room };
        let ticket = self.ticket();
        if let Some(s) = self.session_mut(conn) {
            s.pending_joins += 1;
        }
        self.joins.insert(
            ticket,
            PendingJoin { conn, room: room.clone(), version: Bytes::copy_from_slice(&version), decision: None },
        );
        self.events.push_back(ServerEvent::JoinRequested {
            ticket: JoinTicket(ticket),
            conn,
            room,
            auth,
            version,
            rejoin,
        });
    }

    /// Accepts a join with `permission` and `extra` metadata (sent in JoinResponseOk). Loads the room first
    /// when needed (one [`ServerEvent::LoadRoom`] however many joins wait).
    pub fn accept_join(
        &mut self,
        now: Instant,
        ticket: JoinTicket,
        permission: Permission,
        extra: Bytes,
    ) -> Result<(), ServerError> {
        let now = self.clamp(now);
        let join = self.joins.get_mut(&ticket.0).ok_or(ServerError::UnknownTicket(ticket.0))?;
        if join.decision.is_some() {
            return Err(ServerError::UnknownTicket(ticket.0));
        }
        join.decision = Some((permission, extra));
        let room = join.room.clone();
        let conn = join.conn;
        if let Some(&i) = self.room_index.get(&room) {
            let r = self.rooms[i as usize].as_mut().expect("indexed room exists");
            match &mut r.state {
                RoomState::Loading { waiters, .. } => waiters.push(ticket.0),
                RoomState::Ready => self.finish_join(now, ticket.0),
            }
            return Ok(());
        }
        if self.room_index.len() >= self.config.limits.max_rooms {
            self.joins.remove(&ticket.0);
            self.unpend(conn);
            self.counters.joins_rejected += 1;
            self.join_error(
                now,
                conn,
                &room,
                JoinErrorCode::APP_ERROR,
                "too many rooms on this server",
                Some("room_limit"),
            );
            return Ok(());
        }
        let Some(doc) = self.docs.create(&room) else {
            self.joins.remove(&ticket.0);
            self.unpend(conn);
            self.counters.joins_rejected += 1;
            self.join_error(now, conn, &room, JoinErrorCode::UNKNOWN, JOIN_ERROR_UNSUPPORTED, None);
            return Ok(());
        };
        let persistent = doc.is_persistent();
        let state = if persistent {
            let load = self.ticket();
            RoomState::Loading { ticket: LoadTicket(load), waiters: alloc::vec![ticket.0] }
        } else {
            RoomState::Ready
        };
        let load_ticket = match &state {
            RoomState::Loading { ticket, .. } => Some(*ticket),
            RoomState::Ready => None,
        };
        let idx = self.insert_room(Room::new(room.clone(), doc, state));
        match load_ticket {
            Some(t) => {
                self.loads.insert(t.0, idx);
                self.events.push_back(ServerEvent::LoadRoom { ticket: t, room });
            }
            None => self.finish_join(now, ticket.0),
        }
        Ok(())
    }

    /// Rejects a join with a JoinError `code`, `message` and, for `app_error`, an `app_code`. A rejected rejoin
    /// also ends the existing membership.
    pub fn reject_join(
        &mut self,
        now: Instant,
        ticket: JoinTicket,
        code: JoinErrorCode,
        message: &str,
        app_code: Option<&str>,
    ) -> Result<(), ServerError> {
        let now = self.clamp(now);
        let join = match self.joins.get(&ticket.0) {
            Some(j) if j.decision.is_none() => self.joins.remove(&ticket.0).expect("present"),
            _ => return Err(ServerError::UnknownTicket(ticket.0)),
        };
        self.unpend(join.conn);
        self.counters.joins_rejected += 1;
        let app_code = if code == JoinErrorCode::APP_ERROR { app_code } else { None };
        self.join_error(now, join.conn, &join.room, code, message, app_code);
        self.leave_room(now, join.conn, &join.room);
        self.forget_waiter(now, &join.room, ticket.0);
        Ok(())
    }

    /// Answers a [`ServerEvent::LoadRoom`]. On error every waiting join fails and the room is not created.
    pub fn room_loaded(
        &mut self,
        now: Instant,
        ticket: LoadTicket,
        result: Result<LoadedRoom, LoadError>,
    ) -> Result<(), ServerError> {
        let now = self.clamp(now);
        let idx = self.loads.remove(&ticket.0).ok_or(ServerError::UnknownTicket(ticket.0))?;
        let r = self.rooms[idx as usize].as_mut().expect("loading room exists");
        let restored = result.map_err(|_| ()).and_then(|loaded| {
            if let Some(snapshot) = &loaded.snapshot {
                r.doc.import(snapshot).map_err(|_| ())?;
            }
            for u in &loaded.updates {
                r.doc.apply(core::slice::from_ref(u), usize::MAX).map_err(|_| ())?;
            }
            r.last_seq = loaded.last_seq;
            Ok(())
        });
        let waiters = match core::mem::replace(&mut r.state, RoomState::Ready) {
            RoomState::Loading { waiters, .. } => waiters,
            RoomState::Ready => Vec::new(),
        };
        if restored.is_err() {
            self.counters.loads_failed += 1;
            let key = self.remove_room(idx);
            for t in waiters {
                if let Some(j) = self.joins.remove(&t) {
                    self.unpend(j.conn);
                    self.counters.joins_rejected += 1;
                    self.join_error(now, j.conn, &key, JoinErrorCode::UNKNOWN, "room_load_failed", None);
                }
            }
            return Ok(());
        }
        for t in waiters {
            self.finish_join(now, t);
        }
        self.maybe_arm_unload(now, idx);
        Ok(())
    }

    fn finish_join(&mut self, now: Instant, ticket: u64) {
        let Some(join) = self.joins.remove(&ticket) else { return };
        let Some((permission, extra)) = join.decision else { return };
        self.unpend(join.conn);
        let Some(&idx) = self.room_index.get(&join.room) else { return };
        if self.session(join.conn).is_none_or(|s| s.closing) {
            self.maybe_arm_unload(now, idx);
            return;
        }
        let max_members = self.config.limits.max_members_per_room;
        let r = self.rooms[idx as usize].as_mut().expect("indexed room exists");
        let already = r.members.contains(&join.conn);
        if !already && r.members.len() >= max_members {
            self.counters.joins_rejected += 1;
            self.join_error(now, join.conn, &join.room, JoinErrorCode::APP_ERROR, "room is full", Some("room_full"));
            self.maybe_arm_unload(now, idx);
            return;
        }
        let version = r.doc.version();
        let backfill = match r.doc.backfill(&join.version) {
            Ok(b) => b,
            Err(BackfillError::VersionUnknown) => {
                self.counters.joins_rejected += 1;
                let key = join.room.clone();
                self.join_error_with_version(now, join.conn, &key, version);
                self.leave_room(now, join.conn, &key);
                self.maybe_arm_unload(now, idx);
                return;
            }
        };
        if !already {
            r.members.push(join.conn);
        }
        self.timers.set(TimerKey::Unload(idx), None);
        r.unload_when_saved = false;
        let key = r.key.clone();
        if let Some(s) = self.session_mut(join.conn) {
            s.rooms.insert(key.clone(), Member { room: idx, permission });
        }
        self.counters.joins_accepted += 1;
        self.send_message(
            join.conn,
            &Message {
                crdt: key.crdt,
                room: &key.room,
                body: Body::JoinResponseOk { permission, version: &version, extra: &extra },
            },
        );
        let Some(s) = self.session_mut(join.conn).filter(|s| !s.closing) else {
            // The reply itself overflowed the connection's queue: it is closed and has left the room.
            return;
        };
        // A rejoin's backfill supersedes whatever of an earlier one is still to be produced.
        s.jobs.retain(|j| j.room != key);
        if !backfill.is_empty() {
            self.start_job(join.conn, key.clone(), backfill, None);
        }
        self.events.push_back(ServerEvent::Joined { conn: join.conn, room: key });
    }

    fn unpend(&mut self, conn: ConnId) {
        if let Some(s) = self.session_mut(conn) {
            s.pending_joins = s.pending_joins.saturating_sub(1);
        }
    }

    fn join_error(
        &mut self,
        _now: Instant,
        conn: ConnId,
        room: &RoomKey,
        code: JoinErrorCode,
        message: &str,
        app_code: Option<&str>,
    ) {
        self.send_message(
            conn,
            &Message {
                crdt: room.crdt,
                room: &room.room,
                body: Body::JoinError { code, message, receiver_version: None, app_code },
            },
        );
    }

    fn join_error_with_version(&mut self, _now: Instant, conn: ConnId, room: &RoomKey, version: Bytes) {
        self.send_message(
            conn,
            &Message {
                crdt: room.crdt,
                room: &room.room,
                body: Body::JoinError {
                    code: JoinErrorCode::VERSION_UNKNOWN,
                    message: "version not understood",
                    receiver_version: Some(&version),
                    app_code: None,
                },
            },
        );
    }

    /// Ends `conn`'s membership in `room` (no frame is sent; callers send Leave replies or RoomErrors).
    fn leave_room(&mut self, now: Instant, conn: ConnId, room: &RoomKey) {
        let Some((s, budget)) = self.with_budget(conn) else { return };
        let Some(member) = s.rooms.remove(room) else { return };
        s.reassembler.drop_room(room.crdt, &room.room, budget);
        let dropped: Vec<u64> = s.awaiting.iter().filter(|a| &a.room == room).map(|a| a.ticket.0).collect();
        s.awaiting.retain(|a| &a.room != room);
        s.jobs.retain(|j| &j.room != room);
        s.sent_batches.retain(|b| &b.room != room);
        for t in dropped {
            self.update_tickets.remove(&t);
        }
        self.rearm_reassembly(conn);
        // Later approvals of this connection may be unblocked now.
        self.drain_awaiting(now, conn);
        let idx = member.room;
        if let Some(Some(r)) = self.rooms.get_mut(idx as usize) {
            r.remove_member(conn);
            let key = r.key.clone();
            if r.members.is_empty() {
                r.doc.on_empty();
            }
            self.events.push_back(ServerEvent::Left { conn, room: key });
            self.maybe_arm_unload(now, idx);
        }
    }

    // ---------------------------------------------------------------- updates

    fn on_updates(
        &mut self,
        now: Instant,
        conn: ConnId,
        key: RoomKey,
        batch_id: BatchId,
        updates: Vec<Bytes>,
        frame: Option<Bytes>,
    ) {
        let limits = &self.config.limits;
        let (max_update, max_pending, approve) =
            (limits.max_update_size, limits.max_pending_tickets_per_connection, self.config.approve_updates);
        let Some(s) = self.session_mut(conn) else { return };
        let member = s.rooms.get(&key).copied();
        let status = match member {
            None => Some(AckStatus::PERMISSION_DENIED),
            Some(m) if !m.permission.can_write() => Some(AckStatus::PERMISSION_DENIED),
            Some(_) if updates.iter().any(|u| u.len() > max_update) => Some(AckStatus::PAYLOAD_TOO_LARGE),
            Some(_) if !s.rate.take(now) => Some(AckStatus::RATE_LIMITED),
            Some(_) if approve && s.pending_tickets() >= max_pending => Some(AckStatus::RATE_LIMITED),
            Some(_) => None,
        };
        if let Some(status) = status {
            if status == AckStatus::RATE_LIMITED {
                self.counters.rate_limited += 1;
            }
            return self.send_ack(conn, &key, batch_id, status);
        }
        if approve {
            let ticket = UpdateTicket(self.ticket());
            let room = RoomKey { crdt: key.crdt, room: key.room.detached() };
            let s = self.session_mut(conn).expect("checked above");
            s.awaiting.push_back(AwaitingUpdate {
                ticket,
                room: room.clone(),
                batch_id,
                updates: updates.clone(),
                frame,
                decision: None,
            });
            self.update_tickets.insert(ticket.0, conn);
            self.events.push_back(ServerEvent::ApproveUpdate { ticket, conn, room, batch_id, updates });
            return;
        }
        let idx = member.expect("checked above").room;
        if let Err(status) = self.apply(now, Some(conn), idx, batch_id, updates, frame) {
            self.send_ack(conn, &key, batch_id, status);
        }
    }

    /// Answers a [`ServerEvent::ApproveUpdate`]: `Ok(())` applies it (subject to the usual checks, in arrival
    /// order per connection), `Err(status)` answers the sender with that Ack status.
    pub fn approve_update(
        &mut self,
        now: Instant,
        ticket: UpdateTicket,
        decision: Result<(), AckStatus>,
    ) -> Result<(), ServerError> {
        let now = self.clamp(now);
        let conn = self.update_tickets.remove(&ticket.0).ok_or(ServerError::UnknownTicket(ticket.0))?;
        let s = self.session_mut(conn).ok_or(ServerError::UnknownTicket(ticket.0))?;
        let entry = s.awaiting.iter_mut().find(|a| a.ticket == ticket).ok_or(ServerError::UnknownTicket(ticket.0))?;
        // A rejection with status OK would ack a batch that was never applied: treat it as unknown.
        entry.decision = Some(decision.map_err(|st| if st.is_ok() { AckStatus::UNKNOWN } else { st }));
        self.drain_awaiting(now, conn);
        Ok(())
    }

    fn drain_awaiting(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some(s) = self.session_mut(conn) else { return };
            if s.awaiting.front().is_none_or(|a| a.decision.is_none()) {
                return;
            }
            let a = s.awaiting.pop_front().expect("front exists");
            match a.decision {
                Some(Err(status)) => self.send_ack(conn, &a.room, a.batch_id, status),
                _ => {
                    // Membership may have changed while the app decided.
                    let member = self.session(conn).and_then(|s| s.rooms.get(&a.room).copied());
                    match member {
                        Some(m) if m.permission.can_write() => {
                            if let Err(status) = self.apply(now, Some(conn), m.room, a.batch_id, a.updates, a.frame) {
                                self.send_ack(conn, &a.room, a.batch_id, status);
                            }
                        }
                        _ => self.send_ack(conn, &a.room, a.batch_id, AckStatus::PERMISSION_DENIED),
                    }
                }
            }
        }
    }

    /// Applies a batch to room `idx`, relays it, reports it, and arranges its ack. On `Err` nothing changed and
    /// the caller acks the sender with the status.
    fn apply(
        &mut self,
        now: Instant,
        sender: Option<ConnId>,
        idx: u32,
        batch_id: BatchId,
        updates: Vec<Bytes>,
        frame: Option<Bytes>,
    ) -> Result<(), AckStatus> {
        let limit = self.config.limits.max_stored_bytes_per_room;
        let durable = self.config.ack_mode == AckMode::Durable;
        let r = self.rooms[idx as usize].as_mut().ok_or(AckStatus::PERMISSION_DENIED)?;
        let applied = r.doc.apply(&updates, limit).map_err(|e| match e {
            DocError::TooLarge => AckStatus::PAYLOAD_TOO_LARGE,
            _ => AckStatus::INVALID_UPDATE,
        })?;
        let key = r.key.clone();
        let persistent = r.persistent;
        let mut first_seq = r.last_seq + 1;
        if applied.changed {
            r.gen += 1;
            first_seq = r.last_seq + 1;
            r.last_seq += updates.len() as u64;
            if persistent && self.timers.get(TimerKey::Save(idx)).is_none() && r.save_inflight.is_none() {
                self.timers.set(TimerKey::Save(idx), Some(now + self.config.save_interval));
            }
            self.counters.updates_accepted += 1;
            self.relay(idx, sender, &key, batch_id, &updates, frame);
            self.events.push_back(ServerEvent::UpdateAccepted {
                room: key.clone(),
                conn: sender,
                batch_id,
                first_seq,
                updates: updates.clone(),
            });
        }
        let target = sender.map(|conn| AckTarget { conn, batch_id });
        if durable && persistent {
            let r = self.rooms[idx as usize].as_mut().expect("room exists");
            let next = &mut r.persist_next;
            if applied.changed {
                if next.updates.is_empty() {
                    next.first_seq = first_seq;
                }
                next.updates.extend(updates);
            }
            next.acks.extend(target);
            self.flush_persist(idx);
        } else if let Some(t) = target {
            self.send_ack(t.conn, &key, t.batch_id, AckStatus::OK);
        }
        Ok(())
    }

    /// Sends a batch to every member but `sender`, encoded once.
    #[allow(clippy::too_many_arguments)]
    fn relay(
        &mut self,
        idx: u32,
        sender: Option<ConnId>,
        key: &RoomKey,
        batch_id: BatchId,
        updates: &[Bytes],
        frame: Option<Bytes>,
    ) {
        let members: Vec<ConnId> = match self.rooms[idx as usize].as_ref() {
            Some(r) => {
                // Sized up front: one allocation per broadcast whatever the room's size.
                let mut members = Vec::with_capacity(r.members.len());
                members.extend(r.members.iter().copied().filter(|&m| Some(m) != sender));
                members
            }
            None => return,
        };
        if members.is_empty() {
            return;
        }
        let fragmenter = self.config.fragmenter;
        let frames: Vec<Bytes> = match frame {
            Some(f) => alloc::vec![f],
            None => {
                let mut frames = Vec::new();
                for (i, batch) in fragmenter.plan(key.room.len(), updates).enumerate() {
                    // The first batch carries the sender's id; an app push that needs several batches gets a fresh
                    // id for each further one (a client reassembles per batch id).
                    let id = if i == 0 { batch_id } else { self.fresh_batch_id() };
                    if let Ok(it) = fragmenter.frames(key.crdt, &key.room, id, batch, updates) {
                        frames.extend(it);
                    }
                }
                frames
            }
        };
        let fragmented = frames.len() > 1 && updates.len() == 1;
        for m in members {
            for f in &frames {
                self.send(m, Frame::Binary(f.clone()));
            }
            if fragmented {
                let cap = self.config.limits.resend_memory_per_connection;
                if let Some(s) = self.session_mut(m) {
                    let update = updates[0].clone();
                    s.remember_sent(SentBatch { room: key.clone(), batch_id, update, resent: false }, cap);
                }
            }
        }
    }

    /// Starts persisting the next group when none is in flight (group commit).
    fn flush_persist(&mut self, idx: u32) {
        let Some(Some(r)) = self.rooms.get_mut(idx as usize) else { return };
        if r.persist_inflight.is_some() || r.persist_next.is_empty() {
            return;
        }
        let mut group = core::mem::take(&mut r.persist_next);
        if group.updates.is_empty() {
            // Only duplicates of updates already persisted: nothing to wait for.
            let key = r.key.clone();
            for t in group.acks {
                self.send_ack(t.conn, &key, t.batch_id, AckStatus::OK);
            }
            return;
        }
        let ticket = PersistTicket(self.ticket());
        group.ticket = Some(ticket);
        let r = self.rooms[idx as usize].as_mut().expect("room checked above");
        let event = ServerEvent::PersistUpdates {
            ticket,
            room: r.key.clone(),
            first_seq: group.first_seq,
            updates: group.updates.clone(),
        };
        r.persist_inflight = Some(group);
        self.persist_tickets.insert(ticket.0, idx);
        self.counters.persists_requested += 1;
        self.events.push_back(event);
    }

    /// Asks again for a group whose persistence failed.
    fn retry_persist(&mut self, idx: u32) {
        let ticket = PersistTicket(self.ticket());
        let Some(Some(r)) = self.rooms.get_mut(idx as usize) else { return };
        let Some(group) = r.persist_inflight.as_mut().filter(|g| g.ticket.is_none()) else { return };
        group.ticket = Some(ticket);
        let event = ServerEvent::PersistUpdates {
            ticket,
            room: r.key.clone(),
            first_seq: group.first_seq,
            updates: group.updates.clone(),
        };
        self.persist_tickets.insert(ticket.0, idx);
        self.counters.persists_requested += 1;
        self.events.push_back(event);
    }

    /// Answers a [`ServerEvent::PersistUpdates`]. On success the senders get `Ack(ok)`; on failure the group is
    /// asked again after `retry_delay` (no ack is sent until it is persisted).
    pub fn persist_done(
        &mut self,
        now: Instant,
        ticket: PersistTicket,
        result: Result<(), StorageError>,
    ) -> Result<(), ServerError> {
        let now = self.clamp(now);
        let idx = self.persist_tickets.remove(&ticket.0).ok_or(ServerError::UnknownTicket(ticket.0))?;
        let r = self.rooms[idx as usize].as_mut().ok_or(ServerError::UnknownTicket(ticket.0))?;
        match result {
            Ok(()) => {
                let group = r.persist_inflight.take().unwrap_or_default();
                let key = r.key.clone();
                for t in group.acks {
                    self.send_ack(t.conn, &key, t.batch_id, AckStatus::OK);
                }
                self.flush_persist(idx);
                self.maybe_arm_unload(now, idx);
            }
            Err(_) => {
                self.counters.persists_failed += 1;
                if let Some(g) = r.persist_inflight.as_mut() {
                    g.ticket = None;
                }
                self.timers.set(TimerKey::PersistRetry(idx), Some(now + self.config.retry_delay));
            }
        }
        self.check_shutdown();
        Ok(())
    }

    // ---------------------------------------------------------------- fragments

    fn on_fragment_header(
        &mut self,
        now: Instant,
        conn: ConnId,
        key: RoomKey,
        batch_id: BatchId,
        count: u32,
        total: u32,
    ) {
        let Some((s, budget)) = self.with_budget(conn) else { return };
        let allowed = s.rooms.get(&key).is_some_and(|m| m.permission.can_write());
        if !allowed {
            // Fragments of a refused batch are then ignored quietly instead of each drawing an Ack.
            s.reassembler.ignore_batch(key.crdt, &key.room, batch_id);
            return self.send_ack(conn, &key, batch_id, AckStatus::PERMISSION_DENIED);
        }
        let outcome = s.reassembler.handle_header(now, key.crdt, &key.room, batch_id, count, total, budget);
        if let HeaderOutcome::Rejected(reason) = outcome {
            self.send_ack(conn, &key, batch_id, reason.ack_status());
        }
        self.rearm_reassembly(conn);
    }

    fn on_fragment(&mut self, now: Instant, conn: ConnId, key: RoomKey, batch_id: BatchId, index: u32, data: Bytes) {
        let Some((s, budget)) = self.with_budget(conn) else { return };
        let outcome = s.reassembler.handle_fragment(now, key.crdt, &key.room, batch_id, index, data, budget);
        self.rearm_reassembly(conn);
        match outcome {
            FragmentOutcome::Complete(update) => self.on_updates(now, conn, key, batch_id, alloc::vec![update], None),
            FragmentOutcome::Rejected(reason) => self.send_ack(conn, &key, batch_id, reason.ack_status()),
            FragmentOutcome::Stored | FragmentOutcome::Duplicate | FragmentOutcome::Ignored => {}
        }
    }

    fn expire_fragments(&mut self, now: Instant, conn: ConnId) {
        loop {
            let Some((s, budget)) = self.with_budget(conn) else { return };
            let Some(key) = s.reassembler.poll_expired(now, budget) else { break };
            let room = RoomKey { crdt: key.crdt, room: key.room };
            self.send_ack(conn, &room, key.batch_id, AckStatus::FRAGMENT_TIMEOUT);
        }
        self.rearm_reassembly(conn);
    }

    fn rearm_reassembly(&mut self, conn: ConnId) {
        let at = self.session(conn).and_then(|s| s.reassembler.poll_timeout());
        self.timers.set(TimerKey::Reassembly(conn.0), at);
    }

    fn on_client_ack(&mut self, now: Instant, conn: ConnId, key: RoomKey, ref_id: BatchId, status: AckStatus) {
        if status.is_ok() {
            self.counters.client_ok_acks += 1;
            return;
        }
        self.counters.client_error_acks += 1;
        let mut resent = false;
        if status == AckStatus::FRAGMENT_TIMEOUT {
            let Some(s) = self.session_mut(conn) else { return };
            if let Some(b) = s.sent_batches.iter_mut().find(|b| b.batch_id == ref_id && b.room == key) {
                if !b.resent && s.rooms.contains_key(&key) {
                    b.resent = true;
                    resent = true;
                    let (room, update) = (b.room.clone(), b.update.clone());
                    self.counters.fragment_resends += 1;
                    self.start_job(conn, room, alloc::vec![update], Some(ref_id));
                    self.check_backlog(now, conn);
                }
            }
        }
        let room = RoomKey { crdt: key.crdt, room: key.room.detached() };
        self.events.push_back(ServerEvent::ClientAck { conn, room, batch_id: ref_id, status, resent });
    }

    // ---------------------------------------------------------------- outbound

    fn send_ack(&mut self, conn: ConnId, room: &RoomKey, batch_id: BatchId, status: AckStatus) {
        self.counters.count_ack(status);
        self.send_message(
            conn,
            &Message { crdt: room.crdt, room: &room.room, body: Body::Ack { ref_id: batch_id, status } },
        );
    }

    fn send_message(&mut self, conn: ConnId, msg: &Message<'_>) {
        // Every message built here has a room id that came from a decoded frame or a validated key, and small
        // fields; a failure would be a bug, and is dropped rather than panicking.
        if let Ok(bytes) = msg.encode_to_bytes() {
            self.send(conn, Frame::Binary(bytes));
        }
    }

    /// Queues a frame for `conn` and reports the connection ready. Every frame counts against
    /// `max_queued_bytes_per_connection`, not only relays: a client that never reads must not make the server
    /// queue pongs, acks or replies without bound. Past the limit the connection is closed (slow reader).
    fn send(&mut self, conn: ConnId, frame: Frame) {
        let max = self.config.limits.max_queued_bytes_per_connection;
        // One lookup per frame (this is the broadcast's inner loop); the fields borrowed are disjoint.
        let Some(s) = self.conns.get_mut(conn.slot()).and_then(Option::as_mut).filter(|s| s.id == conn) else {
            return;
        };
        if s.closing {
            return;
        }
        let n = s.push_frame(frame);
        let over = s.queued_bytes > max;
        if !s.notified {
            s.notified = true;
            self.ready.push_back(conn);
        }
        self.counters.frames_out += 1;
        self.counters.bytes_out += n as u64;
        if over {
            let now = self.now;
            self.close(now, conn, CloseCode::TRY_AGAIN_LATER, "slow_reader", CloseCause::SlowReader, true);
        }
    }

    fn notify(&mut self, conn: ConnId) {
        if let Some(s) = self.session_mut(conn) {
            if !s.notified && !s.queue.is_empty() {
                s.notified = true;
                self.ready.push_back(conn);
            }
        }
    }

    /// Closes a connection whose socket does not keep up.
    fn check_backlog(&mut self, now: Instant, conn: ConnId) {
        let max = self.config.limits.max_queued_bytes_per_connection;
        if self.session(conn).is_some_and(|s| s.queued_bytes > max) {
            self.close(now, conn, CloseCode::TRY_AGAIN_LATER, "slow_reader", CloseCause::SlowReader, true);
        }
    }

    /// Queues `updates` for `conn` as batches produced lazily (backfill, resends). With `batch_id`, a single
    /// update is sent under that id (a resend); otherwise each batch gets a fresh random id.
    fn start_job(&mut self, conn: ConnId, room: RoomKey, updates: Vec<Bytes>, batch_id: Option<BatchId>) {
        let fragmenter = self.config.fragmenter;
        let mut batches = VecDeque::new();
        for b in fragmenter.plan(room.room.len(), &updates) {
            let id = match batch_id {
                Some(id) => id,
                None => self.fresh_batch_id(),
            };
            batches.push_back((b, id));
        }
        let Some(s) = self.session_mut(conn) else { return };
        s.jobs.push_back(OutboundJob { room, updates, batches, next_frame: 0 });
        self.pump(conn);
    }

    fn fresh_batch_id(&mut self) -> BatchId {
        BatchId::from_u64(self.rng.next_u64())
    }

    /// Produces job frames into `conn`'s queue up to the backfill watermark.
    fn pump(&mut self, conn: ConnId) {
        let watermark = self.config.limits.backfill_watermark;
        let cap = self.config.limits.resend_memory_per_connection;
        let fragmenter = self.config.fragmenter;
        loop {
            let Some(s) = self.session_mut(conn) else { return };
            if (s.queued_bytes >= watermark && !s.queue.is_empty()) || s.closing {
                break;
            }
            let Some(job) = s.jobs.front_mut() else { break };
            let Some(&(batch, id)) = job.batches.front() else {
                s.jobs.pop_front();
                continue;
            };
            let room = job.room.clone();
            let k = job.next_frame;
            let frame = job_frame(&fragmenter, &room, id, batch, &job.updates, k);
            let done = k + 1 >= batch.frame_count();
            job.next_frame = if done { 0 } else { k + 1 };
            let mut remember = None;
            if done {
                job.batches.pop_front();
                if let PlannedBatch::Fragmented { index, .. } = batch {
                    remember = Some(job.updates[index].clone());
                }
            }
            if let Some(update) = remember {
                s.remember_sent(SentBatch { room, batch_id: id, update, resent: false }, cap);
            }
            match frame {
                Some(f) => self.send(conn, Frame::Binary(f)),
                None => continue,
            }
        }
    }

    // ---------------------------------------------------------------- persistence

    fn on_save_timer(&mut self, now: Instant, idx: u32) {
        let reason = match self.rooms.get_mut(idx as usize) {
            Some(Some(r)) => r.retry_reason.take().unwrap_or(SaveReason::Interval),
            _ => return,
        };
        self.request_save(now, idx, reason);
    }

    fn request_save(&mut self, now: Instant, idx: u32, reason: SaveReason) {
        let Some(Some(r)) = self.rooms.get_mut(idx as usize) else { return };
        if r.save_inflight.is_some() || !r.is_ready() {
            return;
        }
        if !r.is_dirty() {
            if r.unload_when_saved {
                self.try_unload(now, idx);
            }
            return;
        }
        r.doc.compact();
        let Some(snapshot) = r.doc.export() else {
            r.saved_gen = r.gen;
            return;
        };
        let ticket = SaveTicket(self.next_ticket);
        self.next_ticket += 1;
        r.save_inflight = Some((ticket, r.gen, r.last_seq, reason));
        let (room, seq) = (r.key.clone(), r.last_seq);
        self.timers.set(TimerKey::Save(idx), None);
        self.save_tickets.insert(ticket.0, idx);
        self.counters.saves_requested += 1;
        self.events.push_back(ServerEvent::SaveRoom { ticket, room, snapshot, seq, reason });
    }

    /// Answers a [`ServerEvent::SaveRoom`]. A failed save is asked again after `retry_delay`; the room is not
    /// unloaded until a save succeeds.
    pub fn save_done(
        &mut self,
        now: Instant,
        ticket: SaveTicket,
        result: Result<(), StorageError>,
    ) -> Result<(), ServerError> {
        let now = self.clamp(now);
        let idx = self.save_tickets.remove(&ticket.0).ok_or(ServerError::UnknownTicket(ticket.0))?;
        let r = self.rooms[idx as usize].as_mut().ok_or(ServerError::UnknownTicket(ticket.0))?;
        let Some((_, gen, _, reason)) = r.save_inflight.take() else {
            return Err(ServerError::UnknownTicket(ticket.0));
        };
        match result {
            Ok(()) => {
                r.saved_gen = r.saved_gen.max(gen);
                if r.is_dirty() {
                    let at = if self.shutting_down { now } else { now + self.config.save_interval };
                    let reason = if self.shutting_down { Some(SaveReason::Shutdown) } else { None };
                    r.retry_reason = reason;
                    self.timers.set(TimerKey::Save(idx), Some(at));
                }
                if r.unload_when_saved || self.shutting_down {
                    self.try_unload(now, idx);
                }
            }
            Err(_) => {
                self.counters.saves_failed += 1;
                r.retry_reason = Some(reason);
                self.timers.set(TimerKey::Save(idx), Some(now + self.config.retry_delay));
            }
        }
        self.check_shutdown();
        Ok(())
    }

    fn maybe_arm_unload(&mut self, now: Instant, idx: u32) {
        let after = if self.shutting_down { core::time::Duration::ZERO } else { self.config.idle_unload_after };
        if let Some(Some(r)) = self.rooms.get(idx as usize) {
            if r.members.is_empty() && r.is_ready() && self.timers.get(TimerKey::Unload(idx)).is_none() {
                self.timers.set(TimerKey::Unload(idx), Some(now + after));
            }
        }
    }

    fn try_unload(&mut self, now: Instant, idx: u32) {
        let waiting = self.joins.values().any(|j| self.room_index.get(&j.room) == Some(&idx));
        let Some(Some(r)) = self.rooms.get_mut(idx as usize) else { return };
        if !r.members.is_empty() || waiting {
            r.unload_when_saved = false;
            return;
        }
        if r.is_dirty() {
            r.unload_when_saved = true;
            let reason = if self.shutting_down { SaveReason::Shutdown } else { SaveReason::Unload };
            return self.request_save(now, idx, reason);
        }
        if !r.is_quiet() {
            // A persist or save in flight: its answer re-checks.
            r.unload_when_saved = true;
            return;
        }
        let key = self.remove_room(idx);
        self.counters.rooms_unloaded += 1;
        self.events.push_back(ServerEvent::RoomUnloaded { room: key });
        self.check_shutdown();
    }

    fn insert_room(&mut self, room: Room) -> u32 {
        let key = room.key.clone();
        let idx = match self.free_rooms.pop() {
            Some(i) => {
                self.rooms[i as usize] = Some(room);
                i
            }
            None => {
                self.rooms.push(Some(room));
                (self.rooms.len() - 1) as u32
            }
        };
        self.room_index.insert(key, idx);
        self.counters.rooms = self.room_index.len() as u64;
        idx
    }

    fn remove_room(&mut self, idx: u32) -> RoomKey {
        let r = self.rooms[idx as usize].take().expect("room exists");
        self.room_index.remove(&r.key);
        self.free_rooms.push(idx);
        for key in [TimerKey::Save(idx), TimerKey::Unload(idx), TimerKey::PersistRetry(idx)] {
            self.timers.set(key, None);
        }
        self.persist_tickets.retain(|_, &mut i| i != idx);
        self.save_tickets.retain(|_, &mut i| i != idx);
        self.loads.retain(|_, &mut i| i != idx);
        self.counters.rooms = self.room_index.len() as u64;
        r.key
    }

    // ---------------------------------------------------------------- app control

    /// Loads `room` without a client (e.g. to push updates into it): creates its document and, when persistent,
    /// emits [`ServerEvent::LoadRoom`]. A no-op for a loaded room. The room unloads after `idle_unload_after`
    /// without members, like any other.
    pub fn load_room(&mut self, now: Instant, room: &RoomKey) -> Result<(), ServerError> {
        let now = self.clamp(now);
        if self.shutting_down {
            return Err(ServerError::ShuttingDown);
        }
        if self.room_index.contains_key(room) {
            return Ok(());
        }
        if self.room_index.len() >= self.config.limits.max_rooms {
            return Err(ServerError::RoomNotLoaded(room.clone()));
        }
        let doc = self.docs.create(room).ok_or_else(|| ServerError::RoomNotLoaded(room.clone()))?;
        let key = RoomKey { crdt: room.crdt, room: room.room.detached() };
        if doc.is_persistent() {
            let ticket = LoadTicket(self.ticket());
            let idx = self.insert_room(Room::new(key.clone(), doc, RoomState::Loading { ticket, waiters: Vec::new() }));
            self.loads.insert(ticket.0, idx);
            self.events.push_back(ServerEvent::LoadRoom { ticket, room: key });
        } else {
            let idx = self.insert_room(Room::new(key, doc, RoomState::Ready));
            self.maybe_arm_unload(now, idx);
        }
        Ok(())
    }

    /// Applies `updates` to a loaded room as the server itself (no permission checks), relays them to every
    /// member under a fresh batch id, and persists them like any accepted update. Returns the batch id.
    pub fn push_update(&mut self, now: Instant, room: &RoomKey, updates: Vec<Bytes>) -> Result<BatchId, ServerError> {
        let now = self.clamp(now);
        let idx = *self.room_index.get(room).ok_or_else(|| ServerError::RoomNotLoaded(room.clone()))?;
        if !self.rooms[idx as usize].as_ref().is_some_and(Room::is_ready) {
            return Err(ServerError::RoomNotLoaded(room.clone()));
        }
        let batch_id = self.fresh_batch_id();
        self.apply(now, None, idx, batch_id, updates, None).map_err(|status| {
            ServerError::Rejected(if status == AckStatus::PAYLOAD_TOO_LARGE {
                DocError::TooLarge
            } else {
                DocError::Invalid
            })
        })?;
        Ok(batch_id)
    }

    /// Removes `conn` from `room` with `RoomError(evicted, message)`.
    pub fn evict(&mut self, now: Instant, conn: ConnId, room: &RoomKey, message: &str) -> Result<(), ServerError> {
        let now = self.clamp(now);
        let s = self.session(conn).ok_or(ServerError::UnknownConnection(conn))?;
        if !s.rooms.contains_key(room) {
            return Err(ServerError::NotAMember(conn, room.clone()));
        }
        self.room_error(conn, room, RoomErrorCode::EVICTED, message);
        self.leave_room(now, conn, room);
        Ok(())
    }

    /// Closes a room: every member gets `RoomError(evicted, "room_closed")`, joins waiting for it fail, and the
    /// room is saved (when dirty) and unloaded.
    pub fn close_room(&mut self, now: Instant, room: &RoomKey) -> Result<(), ServerError> {
        let now = self.clamp(now);
        let idx = *self.room_index.get(room).ok_or_else(|| ServerError::RoomNotLoaded(room.clone()))?;
        let members = self.rooms[idx as usize].as_ref().map(|r| r.members.clone()).unwrap_or_default();
        for m in members {
            self.room_error(m, room, RoomErrorCode::EVICTED, "room_closed");
            self.leave_room(now, m, room);
        }
        let waiting: Vec<u64> = self.joins.iter().filter(|(_, j)| &j.room == room).map(|(&t, _)| t).collect();
        for t in waiting {
            if let Some(j) = self.joins.remove(&t) {
                self.unpend(j.conn);
                self.join_error(now, j.conn, room, JoinErrorCode::UNKNOWN, "room_closed", None);
            }
        }
        if let Some(Some(r)) = self.rooms.get_mut(idx as usize) {
            if let RoomState::Loading { ticket, .. } = r.state {
                // Closed while loading: the load answer will find no room.
                self.loads.remove(&ticket.0);
                let key = self.remove_room(idx);
                self.events.push_back(ServerEvent::RoomUnloaded { room: key });
                return Ok(());
            }
        }
        self.timers.set(TimerKey::Unload(idx), None);
        self.try_unload(now, idx);
        Ok(())
    }

    fn room_error(&mut self, conn: ConnId, room: &RoomKey, code: RoomErrorCode, message: &str) {
        self.send_message(
            conn,
            &Message { crdt: room.crdt, room: &room.room, body: Body::RoomError { code, message } },
        );
    }

    /// Starts a graceful shutdown: new connections and joins are refused, every connection is closed with 1001
    /// ("server_shutdown", a transient code so clients come back), and every dirty room is saved.
    /// [`ServerEvent::ShutdownComplete`] follows once all saves are confirmed.
    pub fn shutdown(&mut self, now: Instant) {
        let now = self.clamp(now);
        self.shutting_down = true;
        let conns: Vec<ConnId> = self.connections().collect();
        for c in conns {
            self.close(now, c, CloseCode::GOING_AWAY, "server_shutdown", CloseCause::Shutdown, false);
        }
        let rooms: Vec<u32> = self.room_index.values().copied().collect();
        for idx in rooms {
            self.timers.set(TimerKey::Unload(idx), None);
            self.try_unload(now, idx);
        }
        self.check_shutdown();
    }

    fn check_shutdown(&mut self) {
        if !self.shutting_down || self.shutdown_reported {
            return;
        }
        let saving = self.rooms.iter().flatten().any(|r| r.is_dirty() || r.save_inflight.is_some());
        if !saving {
            self.shutdown_reported = true;
            self.events.push_back(ServerEvent::ShutdownComplete);
        }
    }

    // ---------------------------------------------------------------- helpers

    fn clamp(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn ticket(&mut self) -> u64 {
        let t = self.next_ticket;
        self.next_ticket += 1;
        t
    }

    /// A connection and the shared reassembly budget, borrowed together.
    fn with_budget(&mut self, conn: ConnId) -> Option<(&mut ServerSession, &mut Budget)> {
        let s = self.conns.get_mut(conn.slot())?.as_mut().filter(|s| s.id == conn)?;
        Some((s, &mut self.reassembly_budget))
    }

    fn session_mut(&mut self, conn: ConnId) -> Option<&mut ServerSession> {
        self.conns.get_mut(conn.slot())?.as_mut().filter(|s| s.id == conn)
    }
}

/// Frame `k` of a planned batch (header first for fragmented batches).
fn job_frame(
    fragmenter: &crate::fragment::Fragmenter,
    room: &RoomKey,
    batch_id: BatchId,
    batch: PlannedBatch,
    updates: &[Bytes],
    k: usize,
) -> Option<Bytes> {
    let (crdt, room) = (room.crdt, room.room.as_str());
    let body = match batch {
        PlannedBatch::Packed { start, end } => {
            Body::DocUpdate { updates: Updates::from_bytes(updates.get(start..end)?), batch_id }
        }
        PlannedBatch::Fragmented { index, fragments, fragment_size } => {
            let update = updates.get(index)?;
            if k == 0 {
                Body::FragmentHeader {
                    batch_id,
                    fragment_count: fragments,
                    total_size: u32::try_from(update.len()).ok()?,
                }
            } else {
                let i = k - 1;
                let from = i.checked_mul(fragment_size)?.min(update.len());
                let to = from.saturating_add(fragment_size).min(update.len());
                Body::Fragment { batch_id, index: u32::try_from(i).ok()?, data: &update[from..to] }
            }
        }
        PlannedBatch::TooLarge { .. } => return None,
    };
    let _ = fragmenter;
    Message { crdt, room, body }.encode_to_bytes().ok()
}

fn slice(buf: &Bytes, sub: &[u8]) -> Bytes {
    crate::wire::bytes_of(buf, sub)
}

/// WebSocket close reasons are limited to 123 bytes; cut at a character boundary.
fn truncate_reason(reason: &str) -> &str {
    if reason.len() <= 123 {
        return reason;
    }
    let mut end = 123;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[allow(dead_code)]
fn _assert_send() {
    fn is_send<T: Send>() {}
    is_send::<Server>();
    is_send::<ServerEvent>();
    is_send::<Transmit>();
    is_send::<ConnId>();
    let _ = CrdtType::Loro;
}
