//! The Sans-IO client: [`ClientSession`], everything the official `LoroWebsocketClient` does minus the socket and
//! the timers.
//!
//! One session lives across many transports (reconnects). It multiplexes rooms keyed by [`RoomKey`], asks the
//! application for fresh join parameters on every (re)join, tracks every outgoing batch until its Ack, keeps an
//! outbox across disconnects, keeps the transport alive with text `ping`/`pong`, and schedules reconnects.
//! Nothing in it reads a clock, a socket or a random source: time comes in as [`Instant`], randomness from the
//! RNG given to [`ClientSession::new`], and everything it wants done comes out of three `poll_*` methods.
//!
//! # Run loop
//!
//! A driver owns the transport (a WebSocket, or any message transport that keeps text and binary apart) and a
//! clock. After **every** input or command it drains the outputs in this order: transmits, events, then the
//! timeout.
//!
//! ```text
//! session.connect(clock.now())?;
//! loop {
//!     while let Some(t) = session.poll_transmit() {
//!         match t {
//!             Transmit::Open => transport.open(url),      // later: transport_opened / transport_closed
//!             Transmit::Frame(f) => transport.send(f),    // binary or text, as given
//!             Transmit::Close { code, reason } => {       // flush what was sent, then close; do NOT report
//!                 transport.close(code, &reason);         // transport_closed for this one
//!             }
//!         }
//!     }
//!     while let Some(e) = session.poll_event() {
//!         app.handle(&mut session, e);                    // may call join / send / provide_join_params …
//!     }
//!     if session.poll_transmit_pending() { continue }     // commands issued by the app queued more output
//!     match wait_for(transport, app, session.poll_timeout()) {
//!         Opened => session.transport_opened(clock.now()),
//!         Received(frame) => session.handle_frame(clock.now(), frame),
//!         Closed(code, reason) => session.transport_closed(clock.now(), code, &reason),
//!         Deadline => session.handle_timeout(clock.now()),   // pass the clock, not the deadline
//!         Online(b) => session.set_network_online(clock.now(), b),
//!     }
//! }
//! ```
//!
//! Transport reports must concern the transport opened by the latest [`Transmit::Open`] that the session has
//! not itself closed; reports about an older transport are counted and ignored
//! ([`ClientCounters::stale_transport_events`]), and a failed open is a `transport_closed(now, None, "")`.
//!
//! ```
//! use bytes::Bytes;
//! use chacha20::ChaCha8Rng;
//! use loro_sansio::client::{ClientConfig, ClientEvent, ClientSession, JoinParams};
//! use loro_sansio::wire::{Body, CrdtType, Frame, Message, Permission};
//! use loro_sansio::{Instant, Transmit};
//! use rand_core::SeedableRng;
//!
//! let mut s = ClientSession::new(ClientConfig::default(), ChaCha8Rng::seed_from_u64(1));
//! let t0 = Instant::ZERO;
//! let room = s.join(t0, CrdtType::Loro, "doc-1").unwrap();   // queued until a transport is open
//! s.connect(t0).unwrap();
//! assert_eq!(s.poll_transmit(), Some(Transmit::Open));
//! s.transport_opened(t0);
//! let ticket = loop {
//!     match s.poll_event() {
//!         Some(ClientEvent::JoinParamsNeeded { ticket, .. }) => break ticket,
//!         Some(_) => continue,
//!         None => unreachable!(),
//!     }
//! };
//! s.provide_join_params(t0, ticket, JoinParams { auth: Bytes::from_static(b"token"), version: Bytes::new() })
//!     .unwrap();
//! assert!(matches!(s.poll_transmit(), Some(Transmit::Frame(Frame::Binary(_)))));    // the JoinRequest
//! let ok = Message {
//!     crdt: CrdtType::Loro,
//!     room: "doc-1",
//!     body: Body::JoinResponseOk { permission: Permission::Write, version: &[], extra: &[] },
//! };
//! s.handle_frame(t0, Frame::Binary(ok.encode_to_bytes().unwrap()));
//! assert!(s.poll_event().is_some_and(|e| matches!(e, ClientEvent::Joined { .. })));
//! let send = s.send(t0, &room, vec![Bytes::from_static(b"update")]).unwrap();
//! assert!(matches!(s.poll_transmit(), Some(Transmit::Frame(Frame::Binary(_)))));    // the DocUpdate
//! # let _ = send;
//! ```
//!
//! # Method classes (as quinn-proto's `Connection`)
//!
//! * **Getters** read state and change nothing: [`status`](ClientSession::status),
//!   [`room_status`](ClientSession::room_status), [`latency`](ClientSession::latency),
//!   [`outbox_bytes`](ClientSession::outbox_bytes), [`counters`](ClientSession::counters), …
//! * **Inputs** report what happened: [`connect`](ClientSession::connect) aside, the `transport_*` methods,
//!   [`handle_frame`](ClientSession::handle_frame), [`handle_timeout`](ClientSession::handle_timeout),
//!   [`set_network_online`](ClientSession::set_network_online).
//! * **Commands** are the application's requests: [`connect`](ClientSession::connect),
//!   [`join`](ClientSession::join), [`provide_join_params`](ClientSession::provide_join_params),
//!   [`leave`](ClientSession::leave), [`send`](ClientSession::send), [`ping`](ClientSession::ping),
//!   [`close`](ClientSession::close), [`destroy`](ClientSession::destroy), [`retry_now`](ClientSession::retry_now).
//!   A refused command returns a typed error and changes nothing.
//! * **Outputs**: [`poll_transmit`](ClientSession::poll_transmit), [`poll_event`](ClientSession::poll_event),
//!   [`poll_timeout`](ClientSession::poll_timeout). Drain them after every input or command, in that order.
//!
//! Every method taking `now` clamps it to the latest `now` seen, so time never goes backwards inside the
//! session. Nothing panics on any input, and nothing the server sends grows memory past a configured bound:
//! reassembly is bounded by [`ClientConfig::reassembly`], the outbox by [`ClientConfig::max_outbox_bytes`], and
//! every frame produces at most a bounded number of events and transmits.

mod config;
mod connection;
mod counters;
mod error;
mod event;
mod inbound;
mod keepalive;
mod outbox;
mod reconnect;
mod room;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::time::Duration;

use bytes::Bytes;
use rand_core::TryRng;

pub use config::{
    ClientConfig, KeepaliveConfig, ReconnectConfig, DEFAULT_INITIAL_DELAY, DEFAULT_JITTER_PERMILLE,
    DEFAULT_MANUAL_PING_TIMEOUT, DEFAULT_MAX_DELAY, DEFAULT_MAX_MISSED_PONGS, DEFAULT_MAX_OUTBOX_BYTES,
    DEFAULT_MAX_RESENDS, DEFAULT_MAX_ROOMS, DEFAULT_PING_INTERVAL, DEFAULT_PONG_TIMEOUT,
};
pub use counters::ClientCounters;
pub use error::{ClientError, SendError};
pub use event::{
    ClientEvent, ClosedBy, ConnectionStatus, DropReason, IncomingFailure, JoinFailure, JoinParams, JoinReason,
    JoinTicket, NextAttempt, PingId, PingOutcome, RoomErrorAction, RoomStatus, SendId, StopReason,
};
pub use outbox::{PendingBatch, UPDATE_OVERHEAD};

use keepalive::Keepalive;
use outbox::{BatchState, Outbox};
use reconnect::Retry;
use room::{Phase, Room, Rooms};

use crate::fragment::{Budget, PlannedBatch, Reassembler};
use crate::room::RoomKey;
use crate::time::Instant;
use crate::wire::{Body, CrdtType, EncodeError, Frame, Message, Permission, MAX_FRAME_SIZE, MAX_ROOM_ID_LEN};
use crate::Transmit;

/// The client state machine. See the [module docs](self) for the run loop and the method classes.
pub struct ClientSession {
    config: ClientConfig,
    rng: Box<dyn TryRng<Error = Infallible> + Send>,
    now: Instant,
    status: ConnectionStatus,
    /// Present while the transport is open.
    keepalive: Option<Keepalive>,
    /// The application wants a transport (`connect` called, `close` not called since).
    want_connection: bool,
    online: bool,
    destroyed: bool,
    /// Why automatic reconnects are off, when they are.
    stopped: Option<StopReason>,
    retry: Retry,
    rooms: Rooms,
    outbox: Outbox,
    reassembler: Reassembler,
    budget: Budget,
    /// Manual pings awaiting a pong, oldest (earliest deadline) first.
    pings: VecDeque<(PingId, Instant)>,
    latency: Option<Duration>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
    next_ticket: u64,
    next_send: u64,
    next_ping: u64,
    /// Reused buffer for the batch ids (and outbox slots) of one send.
    scratch_ids: Vec<(crate::wire::BatchId, u32)>,
    counters: ClientCounters,
}

// A session moves between threads with its driver: keep it `Send` (checked at compile time).
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<ClientSession>();
};

impl core::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientSession")
            .field("now", &self.now)
            .field("status", &self.status)
            .field("rooms", &self.rooms.len())
            .field("outbox_bytes", &self.outbox.bytes())
            .field("pending_transmits", &self.transmits.len())
            .field("pending_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A disconnected session. `rng` supplies batch ids and reconnect jitter (seed it in tests).
    pub fn new(config: ClientConfig, rng: impl TryRng<Error = Infallible> + Send + 'static) -> Self {
        let reassembler = Reassembler::new(config.reassembly.clone());
        let outbox = Outbox::new(config.max_outbox_bytes);
        ClientSession {
            config,
            rng: Box::new(rng),
            now: Instant::ZERO,
            status: ConnectionStatus::Disconnected,
            keepalive: None,
            want_connection: false,
            online: true,
            destroyed: false,
            stopped: None,
            retry: Retry::default(),
            rooms: Rooms::default(),
            outbox,
            reassembler,
            budget: Budget::unlimited(),
            pings: VecDeque::new(),
            latency: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_ticket: 1,
            next_send: 1,
            next_ping: 1,
            scratch_ids: Vec::new(),
            counters: ClientCounters::default(),
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Getters
    // ---------------------------------------------------------------------------------------------------------

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The connection status.
    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    /// The latest `now` the session has seen.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The status of a registered room, or `None`.
    pub fn room_status(&self, room: &RoomKey) -> Option<RoomStatus> {
        self.rooms.get(room).map(|r| r.status)
    }

    /// The permission granted by a registered room's latest join.
    pub fn room_permission(&self, room: &RoomKey) -> Option<Permission> {
        self.rooms.get(room).and_then(|r| r.permission)
    }

    /// Every registered room and its status, in room-key order.
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomKey, RoomStatus)> + '_ {
        self.rooms.iter().map(|r| (&r.key, r.status))
    }

    /// The latest round-trip time measured by a `ping`/`pong`.
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// Bytes held by the outbox (queued and unacknowledged updates, each with [`UPDATE_OVERHEAD`]).
    pub fn outbox_bytes(&self) -> usize {
        self.outbox.bytes()
    }

    /// Batches in the outbox (in batch-id order).
    pub fn outbox_batches(&self) -> impl Iterator<Item = PendingBatch<'_>> + '_ {
        self.outbox.views()
    }

    /// When the next automatic reconnect is due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.retry.at
    }

    /// Why automatic reconnects are stopped, when they are.
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Whether the network is considered online ([`set_network_online`](Self::set_network_online)).
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// True after [`destroy`](Self::destroy).
    pub fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    /// Counters.
    pub fn counters(&self) -> ClientCounters {
        self.counters
    }

    // ---------------------------------------------------------------------------------------------------------
    // Outputs
    // ---------------------------------------------------------------------------------------------------------

    /// The next instruction for the driver: open a transport, write a frame, or close the transport. Frames and
    /// instructions share one queue, so their order is the order to act in.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// True when [`poll_transmit`](Self::poll_transmit) has something.
    pub fn poll_transmit_pending(&self) -> bool {
        !self.transmits.is_empty()
    }

    /// The next event for the application (see [`ClientEvent`] for the ordering guarantees).
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The earliest armed deadline: reconnect, keepalive, manual pings, reassembly. Call
    /// [`handle_timeout`](Self::handle_timeout) when the clock reaches it; a call before it is harmless. After
    /// `handle_timeout(now)` no deadline at or before `now` stays armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retry = if self.status == ConnectionStatus::Disconnected { self.retry.at } else { None };
        [
            retry,
            self.keepalive.as_ref().and_then(Keepalive::poll_timeout),
            self.pings.front().map(|p| p.1),
            self.reassembler.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---------------------------------------------------------------------------------------------------------
    // Inputs
    // ---------------------------------------------------------------------------------------------------------

    /// The clock reached [`poll_timeout`](Self::poll_timeout) (pass the clock's `now`, not the deadline).
    /// Runs every due timer; a call with nothing due does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        if self.destroyed {
            return;
        }
        if self.status == ConnectionStatus::Disconnected && self.retry.take_due(now) {
            self.open_transport();
        }
        self.keepalive_timeout(now);
        while self.pings.front().is_some_and(|p| p.1 <= now) {
            if let Some((id, _)) = self.pings.pop_front() {
                self.events.push_back(ClientEvent::PingResult { id, outcome: PingOutcome::TimedOut });
            }
        }
        self.reassembly_timeout(now);
    }

    /// A frame arrived on the open transport.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        let now = self.tick(now);
        if self.destroyed || self.status != ConnectionStatus::Connected {
            self.counters.ignored_frames += 1;
            return;
        }
        self.receive(now, frame);
    }

    /// The transport asked for by the latest [`Transmit::Open`] is open. Every registered room starts its
    /// (re)join: [`ClientEvent::JoinParamsNeeded`] for each.
    pub fn transport_opened(&mut self, now: Instant) {
        let now = self.tick(now);
        if self.destroyed || self.status != ConnectionStatus::Connecting {
            self.counters.stale_transport_events += 1;
            return;
        }
        self.keepalive = Some(Keepalive::new(&self.config.keepalive, now));
        self.set_status(ConnectionStatus::Connected);
        let keys: Vec<RoomKey> = self.rooms.keys().cloned().collect();
        for key in keys {
            self.start_join(&key);
        }
    }

    /// The transport closed, or failed to open (`code` is `None` when there was no close frame). Not to be
    /// called for a close the session asked for with [`Transmit::Close`].
    pub fn transport_closed(&mut self, now: Instant, code: Option<crate::CloseCode>, reason: &str) {
        self.tick(now);
        if self.destroyed || self.status == ConnectionStatus::Disconnected {
            self.counters.stale_transport_events += 1;
            return;
        }
        self.lose_transport(code, close_reason(reason), ClosedBy::Remote);
    }

    /// Whether the network is reachable (from the platform's online/offline signal). Going offline closes the
    /// transport with 4001 and pauses reconnects; coming back online reconnects at once (the backoff is kept).
    pub fn set_network_online(&mut self, now: Instant, online: bool) {
        self.tick(now);
        if self.destroyed || self.online == online {
            return;
        }
        self.online = online;
        if !online {
            self.retry.cancel();
            if self.status != ConnectionStatus::Disconnected {
                self.local_close(crate::CloseCode::OFFLINE, "offline");
            }
        } else if self.want_connection && self.stopped.is_none() && self.status == ConnectionStatus::Disconnected {
            self.retry.count_immediate();
            self.open_transport();
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Commands
    // ---------------------------------------------------------------------------------------------------------

    /// Opens a transport ([`Transmit::Open`]) unless one is open or opening, and re-enables automatic
    /// reconnects. Registered rooms (re)join once it is open. The backoff is kept (see
    /// [`retry_now`](Self::retry_now)). Works offline too: the application asked explicitly.
    pub fn connect(&mut self, now: Instant) -> Result<(), ClientError> {
        self.tick(now);
        if self.destroyed {
            return Err(ClientError::Destroyed);
        }
        self.want_connection = true;
        self.stopped = None;
        if self.status == ConnectionStatus::Disconnected {
            self.retry.cancel();
            self.open_transport();
        }
        Ok(())
    }

    /// [`connect`](Self::connect) at once, with the backoff reset (also after a fatal close or used-up attempts).
    pub fn retry_now(&mut self, now: Instant) -> Result<(), ClientError> {
        self.tick(now);
        if self.destroyed {
            return Err(ClientError::Destroyed);
        }
        self.retry.reset();
        self.connect(now)
    }

    /// Registers a room and starts joining it (at once when a transport is open, else when one opens). Joining
    /// a room that is already registered returns the same key and starts nothing: concurrent joins are one.
    pub fn join(&mut self, now: Instant, crdt: CrdtType, room: &str) -> Result<RoomKey, ClientError> {
        self.tick(now);
        if self.destroyed {
            return Err(ClientError::Destroyed);
        }
        if room.len() > MAX_ROOM_ID_LEN {
            return Err(ClientError::RoomIdTooLong { len: room.len(), max: MAX_ROOM_ID_LEN });
        }
        let key = RoomKey::new(crdt, room);
        if self.rooms.contains(&key) {
            return Ok(key);
        }
        if self.rooms.len() >= self.config.max_rooms {
            return Err(ClientError::TooManyRooms { max: self.config.max_rooms });
        }
        self.rooms.insert(Room::new(key.clone(), room, &mut self.events));
        if self.status == ConnectionStatus::Connected {
            self.start_join(&key);
        }
        Ok(key)
    }

    /// Answers [`ClientEvent::JoinParamsNeeded`]: sends the JoinRequest. After a `version_unknown`, a version
    /// equal to the server's `receiver_version` is replaced by an empty one.
    pub fn provide_join_params(
        &mut self,
        now: Instant,
        ticket: JoinTicket,
        params: JoinParams,
    ) -> Result<(), ClientError> {
        self.tick(now);
        if self.destroyed {
            return Err(ClientError::Destroyed);
        }
        let Some(room) = self.rooms.iter_mut().find(|r| r.ticket() == Some(ticket)) else {
            return Err(ClientError::StaleTicket(ticket));
        };
        let mut version = params.version;
        if let Phase::AwaitingParams { reason: JoinReason::VersionUnknown { receiver_version: Some(rv) }, .. } =
            &room.phase
        {
            if *rv == version {
                version = Bytes::new();
            }
        }
        let msg = Message {
            crdt: room.key.crdt,
            room: room.key.room.as_str(),
            body: Body::JoinRequest { auth: &params.auth, version: &version },
        };
        let frame = match msg.encode_to_bytes() {
            Ok(f) => f,
            Err(EncodeError::FrameTooLarge { len, max }) => return Err(ClientError::JoinRequestTooLarge { len, max }),
            Err(_) => return Err(ClientError::JoinRequestTooLarge { len: usize::MAX, max: MAX_FRAME_SIZE }),
        };
        room.phase = Phase::Requested;
        self.push_frame(Frame::Binary(frame));
        Ok(())
    }

    /// Leaves a room: sends Leave when the server knows of the room, forgets it (it is not rejoined after a
    /// reconnect), and drops its outbox with [`DropReason::Left`]. A join still under way ends with
    /// [`JoinFailure::Left`]. No status event follows: the room is simply gone.
    pub fn leave(&mut self, now: Instant, room: &RoomKey) -> Result<(), ClientError> {
        self.tick(now);
        if self.destroyed {
            return Err(ClientError::Destroyed);
        }
        let Some(r) = self.rooms.remove(room) else {
            return Err(ClientError::UnknownRoom(room.clone()));
        };
        if self.status == ConnectionStatus::Connected && r.server_knows() {
            let msg = Message { crdt: r.key.crdt, room: r.key.room.as_str(), body: Body::Leave };
            if let Ok(frame) = msg.encode_to_bytes() {
                self.push_frame(Frame::Binary(frame));
            }
        }
        if !r.joined_once {
            self.events.push_back(ClientEvent::JoinFailed {
                room: r.key.clone(),
                rejoin: false,
                failure: JoinFailure::Left,
            });
        }
        self.forget_room_state(&r.key, DropReason::Left);
        Ok(())
    }

    /// Sends updates to a room. They are planned into batches at once (consecutive small updates share a
    /// DocUpdate; an update too large for a frame is fragmented on its own), each with a random batch id, and
    /// sent when the room is joined with write permission on an open transport — at once if it is. Every
    /// update then ends with exactly one of [`ClientEvent::Acked`], [`ClientEvent::UpdateRejected`] or
    /// [`ClientEvent::UpdatesDropped`].
    pub fn send(&mut self, now: Instant, room: &RoomKey, updates: Vec<Bytes>) -> Result<SendId, SendError> {
        self.tick(now);
        if self.destroyed {
            return Err(SendError::Destroyed);
        }
        let Some(r) = self.rooms.get(room) else {
            return Err(SendError::UnknownRoom(room.clone()));
        };
        if r.permission == Some(Permission::Read) {
            return Err(SendError::ReadOnly(room.clone()));
        }
        let send = SendId(self.next_send);
        // The fields are borrowed separately: `r` (a room) stays borrowed while the outbox and queues change.
        let ids = &mut self.scratch_ids;
        ids.clear();
        self.outbox.add(&self.config.fragmenter, &r.key, send, updates, &mut self.rng, ids)?;
        self.next_send += 1;
        if self.status == ConnectionStatus::Connected && r.writable_now() {
            for &(id, slot) in ids.iter() {
                let Some(b) = self.outbox.slot_mut(slot, id) else { continue };
                let sent = put_batch(b, &r.name, &self.config.fragmenter, &mut self.counters, &mut self.transmits);
                if !sent {
                    drop_batch_in(&mut self.outbox, &mut self.counters, &mut self.events, id, DropReason::Unencodable);
                }
            }
        }
        Ok(send)
    }

    /// Measures the round trip with a text `ping` (or joins the one outstanding). Resolved by exactly one
    /// [`ClientEvent::PingResult`]: a pong, a timeout after
    /// [`KeepaliveConfig::manual_ping_timeout`], or the transport going away.
    pub fn ping(&mut self, now: Instant) -> PingId {
        let now = self.tick(now);
        let id = PingId(self.next_ping);
        self.next_ping += 1;
        let outcome = if self.destroyed {
            Some(PingOutcome::Closed)
        } else if self.status != ConnectionStatus::Connected {
            Some(PingOutcome::NotConnected)
        } else {
            None
        };
        if let Some(outcome) = outcome {
            self.events.push_back(ClientEvent::PingResult { id, outcome });
            return id;
        }
        if self.keepalive.as_mut().is_some_and(|k| k.start_probe(now)) {
            self.push_ping();
        }
        let timeout = config::at_least_1ms(self.config.keepalive.manual_ping_timeout);
        self.pings.push_back((id, now + timeout));
        id
    }

    /// Closes the transport with 1000 and stops reconnecting. Everything pending ends with an event: joins
    /// still under way fail with [`JoinFailure::Closed`] (and are forgotten), every batch in the outbox is
    /// dropped with [`DropReason::Closed`], manual pings resolve [`PingOutcome::Closed`]. Rooms that had joined
    /// stay registered (status `Disconnected`) and rejoin on the next [`connect`](Self::connect).
    pub fn close(&mut self, now: Instant) {
        self.tick(now);
        if self.destroyed {
            return;
        }
        self.shut_down(StopReason::Closed);
    }

    /// [`close`](Self::close), then forgets every room. The session is finished: commands return
    /// [`ClientError::Destroyed`] (or resolve at once), inputs are ignored, and no timer stays armed.
    pub fn destroy(&mut self, now: Instant) {
        self.tick(now);
        if self.destroyed {
            return;
        }
        self.shut_down(StopReason::Destroyed);
        for mut r in self.rooms.take() {
            r.set_status(RoomStatus::Disconnected, &mut self.events);
        }
        self.destroyed = true;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Internals shared by the submodules
    // ---------------------------------------------------------------------------------------------------------

    /// Clamps `now` so time never goes backwards.
    fn tick(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn set_status(&mut self, status: ConnectionStatus) {
        if self.status != status {
            self.status = status;
            self.events.push_back(ClientEvent::ConnectionStatus { status });
        }
    }

    fn push_frame(&mut self, frame: Frame) {
        self.counters.frames_sent += 1;
        self.transmits.push_back(Transmit::Frame(frame));
    }

    fn push_ping(&mut self) {
        self.counters.pings_sent += 1;
        self.push_frame(Frame::ping());
    }

    fn random_u32(&mut self) -> u32 {
        use rand_core::Rng;
        self.rng.next_u32()
    }

    /// The current transport is open and this room is joined with write permission.
    fn room_writable(&self, room: &RoomKey) -> bool {
        self.status == ConnectionStatus::Connected && self.rooms.get(room).is_some_and(Room::writable_now)
    }

    /// Puts one batch on the transport (first send or resend).
    fn transmit_batch(&mut self, id: crate::wire::BatchId) {
        let Some(b) = self.outbox.get_mut(&id) else { return };
        // A batch is only transmitted for a registered room; the key's own string is the (revalidated) fallback.
        let fallback;
        let name = match self.rooms.get(&b.room) {
            Some(r) => &*r.name,
            None => {
                fallback = b.room.room.clone();
                fallback.as_str()
            }
        };
        if !put_batch(b, name, &self.config.fragmenter, &mut self.counters, &mut self.transmits) {
            self.drop_batch(id, DropReason::Unencodable);
        }
    }

    /// Drops one batch with a reason event.
    fn drop_batch(&mut self, id: crate::wire::BatchId, reason: DropReason) {
        drop_batch_in(&mut self.outbox, &mut self.counters, &mut self.events, id, reason);
    }

    /// Drops every batch of a room.
    fn drop_room_batches(&mut self, room: &RoomKey, reason: DropReason) {
        for id in self.outbox.ids_where(|b| &b.room == room) {
            self.drop_batch(id, reason.clone());
        }
    }

    /// Drops a removed room's batches and its reassembly state.
    fn forget_room_state(&mut self, room: &RoomKey, reason: DropReason) {
        self.drop_room_batches(room, reason);
        self.reassembler.drop_room(room.crdt, room.room.as_str(), &mut self.budget);
    }
}

/// [`ClientSession::drop_batch`] on the fields it touches (callable while a room is borrowed).
fn drop_batch_in(
    outbox: &mut Outbox,
    counters: &mut ClientCounters,
    events: &mut VecDeque<ClientEvent>,
    id: crate::wire::BatchId,
    reason: DropReason,
) {
    if let Some(b) = outbox.remove(&id) {
        counters.batches_dropped += 1;
        let range = b.range();
        events.push_back(ClientEvent::UpdatesDropped {
            room: b.room,
            send: b.send,
            batch_id: id,
            reason,
            range,
            updates: b.updates,
        });
    }
}

/// Encodes batch `b` of room `room` and queues its frames (first send or resend); false, with nothing queued or
/// counted, when the batch cannot be encoded within the fragmenter's frame limit (the caller drops it).
fn put_batch(
    b: &mut outbox::Batch,
    room: &str,
    fragmenter: &crate::fragment::Fragmenter,
    counters: &mut ClientCounters,
    transmits: &mut VecDeque<Transmit>,
) -> bool {
    let id = b.id;
    let mark_sent = |transmissions: &mut u32, state: &mut BatchState, counters: &mut ClientCounters| {
        if *transmissions == 0 {
            counters.batches_sent += 1;
        } else {
            counters.batches_resent += 1;
        }
        *transmissions = transmissions.saturating_add(1);
        *state = BatchState::InFlight;
    };
    let plan = b.plan();
    if let PlannedBatch::Packed { start, end } = plan {
        // One DocUpdate: encoded here in one pass (the bytes `Fragmenter::frames` would produce, without its
        // iterator and its second length computation).
        if let Some(updates) = b.updates.get(start..end) {
            let msg = Message {
                crdt: b.room.crdt,
                room,
                body: Body::DocUpdate { updates: crate::wire::Updates::from_bytes(updates), batch_id: id },
            };
            let Ok(frame) = msg.encode_to_bytes() else { return false };
            if frame.len() > fragmenter.max_frame_size() {
                return false;
            }
            mark_sent(&mut b.transmissions, &mut b.state, counters);
            counters.frames_sent += 1;
            transmits.push_back(Transmit::Frame(Frame::Binary(frame)));
            return true;
        }
    }
    let Ok(frames) = fragmenter.frames(b.room.crdt, room, id, plan, &b.updates) else { return false };
    mark_sent(&mut b.transmissions, &mut b.state, counters);
    for f in frames {
        counters.frames_sent += 1;
        transmits.push_back(Transmit::Frame(Frame::Binary(f)));
    }
    true
}

/// A close reason as an owned string of at most 123 bytes (the WebSocket limit), cut at a character boundary.
fn close_reason(reason: &str) -> crate::wire::Utf8Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    crate::wire::Utf8Bytes::from(&reason[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reason_is_cut_at_a_char_boundary() {
        let long = "é".repeat(100);
        let r = close_reason(&long);
        assert!(r.len() <= 123);
        assert_eq!(r.len() % 2, 0);
    }
}
