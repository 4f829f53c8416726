//! An operation-sequence driver for `ClientSession`, shared by the proptest (`tests/client_proptest.rs`), the
//! fuzz target (`fuzz/fuzz_targets/client_session.rs`) and the corpus replay (`tests/fuzz_corpus_client.rs`).
//!
//! It plays a scripted server and an application against one session, decodes everything the session
//! transmits, keeps a model of what must eventually happen, and panics when an invariant breaks:
//!
//! * every frame the client sends decodes, fits the frame limit, and every close code it sends is
//!   browser-legal;
//! * every update handed to `send` is, at every step, either in exactly one batch of the outbox or covered by
//!   exactly one terminal event (acked, rejected, dropped) — so batch ids are unique among live batches and no
//!   update is silently lost;
//! * every registered room resolves its first join exactly once (`Joined{rejoin: false}` or `JoinFailed`),
//!   the model's registered rooms equal the session's, and every manual ping resolves exactly once;
//! * the outbox stays within its budget;
//! * after `handle_timeout(now)` no deadline at or before `now` is armed (advancing to `poll_timeout()` always
//!   makes progress);
//! * after `destroy` nothing is pending and no timer is armed.
//!
//! Only `loro_sansio` (with its re-exported `bytes` and `rand_core`) is used, so the fuzz crate can include
//! this file as it is.
#![allow(dead_code)]

#[path = "../common/splitmix.rs"]
mod splitmix;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::time::Duration;

use loro_sansio::bytes::Bytes;
use loro_sansio::client::{
    ClientConfig, ClientEvent, ClientSession, ConnectionStatus, JoinFailure, JoinParams, JoinReason, JoinTicket,
    KeepaliveConfig, ReconnectConfig, SendError,
};
use loro_sansio::fragment::{Fragmenter, ReassemblyConfig};
use loro_sansio::rand_core::TryRng;
use loro_sansio::wire::{
    AckStatus, BatchId, Body, CrdtType, Frame, JoinErrorCode, Message, OwnedBody, OwnedMessage, Permission,
    RoomErrorCode, Updates, MAX_FRAME_SIZE,
};
use loro_sansio::{CloseCode, Instant, RoomKey, Transmit};

/// A small deterministic RNG (SplitMix64); `constant` makes it return the same value forever, which forces
/// batch-id collisions.
pub struct TestRng {
    state: u64,
    constant: bool,
}

impl TestRng {
    pub fn new(seed: u64, constant: bool) -> Self {
        TestRng { state: seed, constant }
    }
}

impl TryRng for TestRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        if self.constant {
            return Ok(self.state);
        }
        Ok(splitmix::next_u64(&mut self.state))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        splitmix::fill(dst, || self.try_next_u64().unwrap_or_else(|e| match e {}));
        Ok(())
    }
}

/// One step of a scenario.
#[derive(Clone, Debug)]
pub enum Op {
    // Application commands.
    Connect,
    RetryNow,
    Close,
    Destroy,
    Online(bool),
    Join { room: u8 },
    Provide { which: u8, mode: u8 },
    Leave { room: u8 },
    Send { room: u8, count: u8, size: u16 },
    Ping,
    // Transport.
    Opened,
    Closed { code: u8 },
    // Time.
    Advance { ms: u32 },
    ToDeadline,
    // Server frames.
    JoinOk { which: u8, read: bool },
    JoinErr { which: u8, code: u8 },
    RoomErr { room: u8, code: u8 },
    Update { room: u8, count: u8 },
    Ack { which: u8, status: u8 },
    FragHeader { room: u8, batch: u8, count: u8, total: u16 },
    Fragment { room: u8, batch: u8, index: u8, len: u16 },
    ServerPing,
    ServerPong,
    OtherText,
    ClientOnly { room: u8, leave: bool },
    Garbage(Vec<u8>),
}

const ROOMS: [(CrdtType, &str); 5] = [
    (CrdtType::Loro, "doc"),
    (CrdtType::Loro, "other"),
    (CrdtType::LoroEphemeral, "doc"),
    (CrdtType::Elo, "enc"),
    (CrdtType::YjsAwareness, "aw"),
];

fn room_of(i: u8) -> RoomKey {
    let (crdt, name) = ROOMS[i as usize % ROOMS.len()];
    RoomKey::new(crdt, name)
}

/// Session configuration derived from one byte: small limits so that edges are reached quickly.
pub fn config_from(byte: u8) -> ClientConfig {
    ClientConfig {
        keepalive: KeepaliveConfig {
            ping_interval: if byte & 1 == 0 { Some(Duration::from_millis(1_000)) } else { None },
            pong_timeout: Duration::from_millis(400),
            max_missed_pongs: 2,
            manual_ping_timeout: Duration::from_millis(300),
        },
        reconnect: ReconnectConfig {
            enabled: byte & 2 == 0,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1_000),
            jitter_permille: if byte & 4 == 0 { 250 } else { 1000 },
            max_attempts: if byte & 8 == 0 { None } else { Some(3) },
        },
        max_outbox_bytes: 6_000,
        max_rooms: 3,
        max_resends: 2,
        replay_ephemeral: byte & 16 != 0,
        close_on_protocol_error: byte & 32 != 0,
        fragmenter: Fragmenter::with_limits(200, 512).expect("valid fragmenter limits"),
        reassembly: ReassemblyConfig {
            timeout: Duration::from_millis(500),
            max_batches: 2,
            max_bytes_in_flight: 8_192,
            max_update_size: 4_096,
            ..ReassemblyConfig::default()
        },
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Transport {
    None,
    Opening,
    Open,
}

#[derive(Clone, Debug)]
struct Reg {
    resolved: bool,
}

#[derive(Clone, Debug)]
struct SendModel {
    room: RoomKey,
    covered: Vec<bool>,
}

/// The session, the scripted peer and the model.
pub struct Sim {
    pub session: ClientSession,
    now: Instant,
    max_outbox: usize,
    transport: Transport,
    tickets: Vec<(JoinTicket, JoinReason)>,
    requested: Vec<RoomKey>,
    sent: Vec<(RoomKey, BatchId)>,
    regs: BTreeMap<RoomKey, Reg>,
    /// Sends with updates still waiting for a terminal event.
    sends: BTreeMap<u64, SendModel>,
    /// Sends whose every update has had its terminal event.
    completed: BTreeSet<u64>,
    pings: BTreeSet<u64>,
    destroyed: bool,
    pub steps: u64,
    /// How many events of each kind were seen (to check that scenarios get deep).
    pub seen: BTreeMap<String, u64>,
}

impl Sim {
    pub fn new(config_byte: u8, seed: u64) -> Self {
        let config = config_from(config_byte);
        let max_outbox = config.max_outbox_bytes;
        let rng = TestRng::new(seed, config_byte & 64 != 0);
        Sim {
            session: ClientSession::new(config, rng),
            now: Instant::ZERO,
            max_outbox,
            transport: Transport::None,
            tickets: Vec::new(),
            requested: Vec::new(),
            sent: Vec::new(),
            regs: BTreeMap::new(),
            sends: BTreeMap::new(),
            completed: BTreeSet::new(),
            pings: BTreeSet::new(),
            destroyed: false,
            steps: 0,
            seen: BTreeMap::new(),
        }
    }

    fn frame(&mut self, msg: Message<'_>) {
        if let Ok(b) = msg.encode_to_bytes() {
            self.session.handle_frame(self.now, Frame::Binary(b));
        }
    }

    fn pick<T: Clone>(v: &[T], which: u8) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[which as usize % v.len()].clone())
        }
    }

    /// Applies one op and checks every invariant.
    pub fn apply(&mut self, op: &Op) {
        self.steps += 1;
        let now = self.now;
        let mut timed = false;
        let mut left: Option<RoomKey> = None;
        match op {
            Op::Connect => {
                let _ = self.session.connect(now);
            }
            Op::RetryNow => {
                let _ = self.session.retry_now(now);
            }
            Op::Close => self.session.close(now),
            Op::Destroy => self.session.destroy(now),
            Op::Online(b) => self.session.set_network_online(now, *b),
            Op::Join { room } => {
                let key = room_of(*room);
                let before = self.session.room_status(&key).is_some();
                match self.session.join(now, key.crdt, &key.room) {
                    Ok(k) => {
                        assert_eq!(k, key);
                        if !before {
                            assert!(self.regs.insert(key, Reg { resolved: false }).is_none(), "registered twice");
                        }
                    }
                    Err(_) => assert!(!before || self.destroyed),
                }
            }
            Op::Provide { which, mode } => {
                if let Some((ticket, reason)) = Self::pick(&self.tickets, *which) {
                    let version = match (mode % 3, &reason) {
                        (0, JoinReason::VersionUnknown { receiver_version: Some(v) }) => v.clone(),
                        (1, _) => Bytes::from_static(b"v1"),
                        _ => Bytes::new(),
                    };
                    let auth =
                        if mode % 7 == 6 { Bytes::from(vec![7u8; MAX_FRAME_SIZE]) } else { Bytes::from_static(b"tok") };
                    let ok = self.session.provide_join_params(now, ticket, JoinParams { auth, version }).is_ok();
                    if ok {
                        self.tickets.retain(|(t, _)| *t != ticket);
                    }
                }
            }
            Op::Leave { room } => {
                let key = room_of(*room);
                if self.session.leave(now, &key).is_ok() {
                    left = Some(key);
                }
            }
            Op::Send { room, count, size } => {
                let key = room_of(*room);
                let count = (*count % 6) as usize;
                let updates: Vec<Bytes> =
                    (0..count).map(|i| Bytes::from(vec![i as u8; (*size as usize % 1500) * (i % 3)])).collect();
                match self.session.send(now, &key, updates) {
                    Ok(id) => {
                        assert!(!self.completed.contains(&id.get()), "send id reused");
                        let prev = self.sends.insert(id.get(), SendModel { room: key, covered: vec![false; count] });
                        assert!(prev.is_none(), "send id reused");
                    }
                    Err(SendError::OutboxFull { needed, available }) => {
                        assert!(needed > available);
                        assert_eq!(available, self.max_outbox - self.session.outbox_bytes());
                    }
                    Err(_) => {}
                }
            }
            Op::Ping => {
                let id = self.session.ping(now);
                assert!(self.pings.insert(id.get()), "ping id reused");
            }
            Op::Opened => self.session.transport_opened(now),
            Op::Closed { code } => {
                let (code, reason) = match code % 8 {
                    0 => (None, ""),
                    1 => (Some(CloseCode(1000)), "bye"),
                    2 => (Some(CloseCode(1008)), "policy"),
                    3 => (Some(CloseCode(1011)), "crash"),
                    4 => (Some(CloseCode(1013)), "later"),
                    5 => (Some(CloseCode(4401)), "denied"),
                    6 => (Some(CloseCode(1000)), "room_closed"),
                    _ => (Some(CloseCode(1006)), ""),
                };
                self.session.transport_closed(now, code, reason);
            }
            Op::Advance { ms } => {
                self.now = Instant::from_millis(now.as_millis() + u64::from(*ms % 30_000));
                self.session.handle_timeout(self.now);
                timed = true;
            }
            Op::ToDeadline => {
                if let Some(t) = self.session.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.session.handle_timeout(self.now);
                timed = true;
            }
            Op::JoinOk { which, read } => {
                if let Some(key) = Self::pick(&self.requested, *which) {
                    let permission = if *read { Permission::Read } else { Permission::Write };
                    self.frame(Message {
                        crdt: key.crdt,
                        room: &key.room,
                        body: Body::JoinResponseOk { permission, version: b"sv", extra: b"" },
                    });
                }
            }
            Op::JoinErr { which, code } => {
                if let Some(key) = Self::pick(&self.requested, *which) {
                    let (code, rv, app) = match code % 5 {
                        0 => (JoinErrorCode::VERSION_UNKNOWN, Some(&b"sv"[..]), None),
                        1 => (JoinErrorCode::VERSION_UNKNOWN, None, None),
                        2 => (JoinErrorCode::AUTH_FAILED, None, None),
                        3 => (JoinErrorCode::APP_ERROR, None, Some("quota")),
                        _ => (JoinErrorCode(*code), None, None),
                    };
                    let (rv, app) = if code == JoinErrorCode::VERSION_UNKNOWN {
                        (rv, None)
                    } else if code == JoinErrorCode::APP_ERROR {
                        (None, app)
                    } else {
                        (None, None)
                    };
                    self.frame(Message {
                        crdt: key.crdt,
                        room: &key.room,
                        body: Body::JoinError { code, message: "no", receiver_version: rv, app_code: app },
                    });
                }
            }
            Op::RoomErr { room, code } => {
                let key = room_of(*room);
                let code = match code % 4 {
                    0 | 1 => RoomErrorCode::REJOIN_SUGGESTED,
                    2 => RoomErrorCode::EVICTED,
                    _ => RoomErrorCode(*code),
                };
                self.frame(Message { crdt: key.crdt, room: &key.room, body: Body::RoomError { code, message: "x" } });
            }
            Op::Update { room, count } => {
                let key = room_of(*room);
                let owned: Vec<Vec<u8>> = (0..(*count % 4)).map(|i| vec![i; i as usize * 3]).collect();
                let slices: Vec<&[u8]> = owned.iter().map(|v| &v[..]).collect();
                self.frame(Message {
                    crdt: key.crdt,
                    room: &key.room,
                    body: Body::DocUpdate { updates: Updates::from_slices(&slices), batch_id: BatchId::from_u64(99) },
                });
            }
            Op::Ack { which, status } => {
                if let Some((key, id)) = Self::pick(&self.sent, *which) {
                    let status = match status % 6 {
                        0 | 1 => AckStatus::OK,
                        2 => AckStatus::FRAGMENT_TIMEOUT,
                        3 => AckStatus::INVALID_UPDATE,
                        4 => AckStatus::PERMISSION_DENIED,
                        _ => AckStatus(*status),
                    };
                    self.frame(Message { crdt: key.crdt, room: &key.room, body: Body::Ack { ref_id: id, status } });
                }
            }
            Op::FragHeader { room, batch, count, total } => {
                let key = room_of(*room);
                self.frame(Message {
                    crdt: key.crdt,
                    room: &key.room,
                    body: Body::FragmentHeader {
                        batch_id: BatchId::from_u64(u64::from(*batch % 4)),
                        fragment_count: u32::from(*count % 5),
                        total_size: u32::from(*total % 5_000),
                    },
                });
            }
            Op::Fragment { room, batch, index, len } => {
                let key = room_of(*room);
                let data = vec![*index; *len as usize % 3_000];
                self.frame(Message {
                    crdt: key.crdt,
                    room: &key.room,
                    body: Body::Fragment {
                        batch_id: BatchId::from_u64(u64::from(*batch % 4)),
                        index: u32::from(*index % 5),
                        data: &data,
                    },
                });
            }
            Op::ServerPing => self.session.handle_frame(now, Frame::ping()),
            Op::ServerPong => self.session.handle_frame(now, Frame::pong()),
            Op::OtherText => self.session.handle_frame(now, Frame::Text(Bytes::from_static(b"hello"))),
            Op::ClientOnly { room, leave } => {
                let key = room_of(*room);
                let body = if *leave { Body::Leave } else { Body::JoinRequest { auth: b"", version: b"" } };
                self.frame(Message { crdt: key.crdt, room: &key.room, body });
            }
            Op::Garbage(bytes) => self.session.handle_frame(now, Frame::Binary(Bytes::from(bytes.clone()))),
        }
        self.drain();
        if let Some(key) = left {
            let reg = self.regs.remove(&key).expect("left a room the model did not know");
            assert!(reg.resolved, "leave did not resolve a pending join of {key}");
        }
        if matches!(op, Op::Destroy) {
            assert!(self.regs.values().all(|r| r.resolved), "destroy left a join unresolved");
            self.regs.clear();
            self.destroyed = true;
        }
        if timed {
            if let Some(t) = self.session.poll_timeout() {
                assert!(t > self.now, "deadline {t:?} still armed after handle_timeout({:?})", self.now);
            }
        }
        self.check();
    }

    fn drain(&mut self) {
        while let Some(t) = self.session.poll_transmit() {
            self.on_transmit(t);
        }
        while let Some(e) = self.session.poll_event() {
            self.on_event(e);
        }
    }

    fn on_transmit(&mut self, t: Transmit) {
        match t {
            Transmit::Open => self.transport = Transport::Opening,
            Transmit::Close { code, reason } => {
                assert!(code.is_client_sendable(), "client sent close code {code}");
                assert!(reason.len() <= 123);
                self.transport = Transport::None;
                self.requested.clear();
                self.sent.clear();
            }
            Transmit::Frame(Frame::Text(t)) => assert!(&t[..] == b"ping" || &t[..] == b"pong", "odd text {t:?}"),
            Transmit::Frame(Frame::Binary(b)) => {
                assert!(b.len() <= MAX_FRAME_SIZE);
                let m = OwnedMessage::decode(&b).unwrap_or_else(|e| panic!("client sent an invalid frame: {e}"));
                let key = RoomKey { crdt: m.crdt, room: m.room.clone() };
                match m.body {
                    OwnedBody::JoinRequest { .. } => self.requested.push(key),
                    OwnedBody::DocUpdate { batch_id, .. } | OwnedBody::FragmentHeader { batch_id, .. } => {
                        self.sent.push((key, batch_id));
                        if self.sent.len() > 64 {
                            self.sent.remove(0);
                        }
                    }
                    OwnedBody::Fragment { .. } | OwnedBody::Leave | OwnedBody::Ack { .. } => {}
                    other => panic!("client sent a server-only message {other:?}"),
                }
            }
        }
    }

    fn cover(&mut self, send: u64, range: std::ops::Range<usize>, n: Option<usize>) {
        assert!(!self.completed.contains(&send), "terminal event for send {send}, whose updates all ended before");
        let s = self.sends.get_mut(&send).expect("terminal event for an unknown send");
        if let Some(n) = n {
            assert_eq!(n, range.len(), "terminal event hands back a different number of updates");
        }
        for i in range {
            assert!(!s.covered[i], "update {i} of send {send} got two terminal events");
            s.covered[i] = true;
        }
        if s.covered.iter().all(|c| *c) {
            self.sends.remove(&send);
            self.completed.insert(send);
        }
    }

    fn on_event(&mut self, e: ClientEvent) {
        *self.seen.entry(kind(&e).to_string()).or_default() += 1;
        match e {
            ClientEvent::JoinParamsNeeded { ticket, reason, room } => {
                assert!(self.regs.contains_key(&room), "params asked for unregistered {room}");
                self.tickets.push((ticket, reason));
                if self.tickets.len() > 16 {
                    self.tickets.remove(0);
                }
            }
            ClientEvent::Joined { room, rejoin, .. } => {
                let reg = self.regs.get_mut(&room).expect("Joined for an unregistered room");
                assert_eq!(reg.resolved, rejoin, "Joined{{rejoin: {rejoin}}} out of place for {room}");
                reg.resolved = true;
            }
            ClientEvent::JoinFailed { room, rejoin, failure } => {
                let reg = self.regs.remove(&room).expect("JoinFailed for an unregistered room");
                assert_eq!(reg.resolved, rejoin, "JoinFailed{{rejoin: {rejoin}}} out of place for {room}");
                if matches!(failure, JoinFailure::Left) {
                    // leave() resolves the join; the model drops the room after the op.
                    self.regs.insert(room, Reg { resolved: true });
                }
            }
            ClientEvent::RoomStatus { room, status: loro_sansio::client::RoomStatus::Error } => {
                if let Some(reg) = self.regs.remove(&room) {
                    assert!(reg.resolved, "room {room} ended without resolving its join");
                }
            }
            ClientEvent::Acked { send, range, room, .. } => {
                if let Some(m) = self.sends.get(&send.get()) {
                    assert_eq!(m.room, room);
                }
                self.cover(send.get(), range, None);
            }
            ClientEvent::UpdateRejected { send, range, updates, .. } => {
                self.cover(send.get(), range, Some(updates.len()))
            }
            ClientEvent::UpdatesDropped { send, range, updates, .. } => {
                self.cover(send.get(), range, Some(updates.len()))
            }
            ClientEvent::PingResult { id, .. } => assert!(self.pings.remove(&id.get()), "ping resolved twice"),
            _ => {}
        }
    }

    /// Invariants that hold after every step.
    fn check(&self) {
        let s = &self.session;
        assert!(s.outbox_bytes() <= self.max_outbox, "outbox over budget");
        // Every update is in exactly one live batch or covered by exactly one terminal event.
        let mut live: BTreeMap<u64, Vec<bool>> = BTreeMap::new();
        let mut bytes = 0;
        let mut ids = BTreeSet::new();
        for b in s.outbox_batches() {
            assert!(ids.insert(b.batch_id), "batch id {} held twice", b.batch_id);
            bytes += b.bytes;
            let model = self.sends.get(&b.send.get()).expect("outbox holds a batch of an unknown send");
            assert_eq!(&model.room, b.room);
            let v = live.entry(b.send.get()).or_insert_with(|| vec![false; model.covered.len()]);
            for i in b.range {
                assert!(!v[i] && !model.covered[i], "update {i} of {} is in two places", b.send);
                v[i] = true;
            }
        }
        assert_eq!(bytes, s.outbox_bytes());
        for (id, m) in &self.sends {
            let l = live.get(id);
            for (i, c) in m.covered.iter().enumerate() {
                let in_live = l.is_some_and(|v| v[i]);
                assert!(*c || in_live, "update {i} of send {id} was lost without an event");
            }
        }
        // The model's registrations are the session's rooms.
        let rooms: BTreeSet<&RoomKey> = s.rooms().map(|(k, _)| k).collect();
        let model: BTreeSet<&RoomKey> = self.regs.keys().collect();
        assert_eq!(rooms, model, "registered rooms differ from the model");
        if self.destroyed {
            assert_eq!(s.poll_timeout(), None);
            assert_eq!(s.status(), ConnectionStatus::Disconnected);
        }
    }

    /// Destroys the session and checks that nothing is left pending; returns the event kinds seen.
    pub fn finish(mut self) -> BTreeMap<String, u64> {
        self.apply(&Op::Destroy);
        assert!(self.pings.is_empty(), "pings never resolved: {:?}", self.pings);
        assert!(self.sends.is_empty(), "sends with updates that never had a terminal event: {:?}", self.sends.keys());
        assert_eq!(self.session.outbox_bytes(), 0);
        assert_eq!(self.session.poll_timeout(), None);
        self.seen
    }
}

/// The name of an event's variant (without formatting its payload, which would only add noise to the fuzzer's
/// coverage).
fn kind(e: &ClientEvent) -> &'static str {
    match e {
        ClientEvent::ConnectionStatus { .. } => "ConnectionStatus",
        ClientEvent::TransportClosed { .. } => "TransportClosed",
        ClientEvent::RoomStatus { .. } => "RoomStatus",
        ClientEvent::JoinParamsNeeded { .. } => "JoinParamsNeeded",
        ClientEvent::Joined { .. } => "Joined",
        ClientEvent::JoinFailed { .. } => "JoinFailed",
        ClientEvent::RoomError { .. } => "RoomError",
        ClientEvent::Updates { .. } => "Updates",
        ClientEvent::IncomingBatchFailed { .. } => "IncomingBatchFailed",
        ClientEvent::Acked { .. } => "Acked",
        ClientEvent::UpdateRejected { .. } => "UpdateRejected",
        ClientEvent::UpdatesDropped { .. } => "UpdatesDropped",
        ClientEvent::BatchResent { .. } => "BatchResent",
        ClientEvent::Latency { .. } => "Latency",
        ClientEvent::PingResult { .. } => "PingResult",
        ClientEvent::ProtocolError { .. } => "ProtocolError",
        ClientEvent::UnexpectedMessage { .. } => "UnexpectedMessage",
        _ => "Other",
    }
}

/// Reads ops from fuzz bytes.
pub struct ByteOps<'a> {
    data: &'a [u8],
}

impl<'a> ByteOps<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        ByteOps { data }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
}

impl Iterator for ByteOps<'_> {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        if self.data.is_empty() {
            return None;
        }
        let kind = self.byte();
        Some(match kind % 27 {
            0 => Op::Connect,
            1 => Op::RetryNow,
            2 => Op::Close,
            3 => Op::Online(self.byte() & 1 == 1),
            4 => Op::Join { room: self.byte() },
            5 => Op::Provide { which: self.byte(), mode: self.byte() },
            6 => Op::Leave { room: self.byte() },
            7 => Op::Send { room: self.byte(), count: self.byte(), size: self.u16() },
            8 => Op::Ping,
            9 => Op::Opened,
            10 => Op::Closed { code: self.byte() },
            11 => Op::Advance { ms: u32::from(self.u16()) },
            12 => Op::ToDeadline,
            13 => Op::JoinOk { which: self.byte(), read: self.byte() % 5 == 0 },
            14 => Op::JoinErr { which: self.byte(), code: self.byte() },
            15 => Op::RoomErr { room: self.byte(), code: self.byte() },
            16 => Op::Update { room: self.byte(), count: self.byte() },
            17 => Op::Ack { which: self.byte(), status: self.byte() },
            18 => Op::FragHeader { room: self.byte(), batch: self.byte(), count: self.byte(), total: self.u16() },
            19 => Op::Fragment { room: self.byte(), batch: self.byte(), index: self.byte(), len: self.u16() },
            20 => Op::ServerPing,
            21 => Op::ServerPong,
            22 => Op::OtherText,
            23 => Op::ClientOnly { room: self.byte(), leave: self.byte() & 1 == 1 },
            24 => {
                let n = (self.byte() as usize).min(self.data.len());
                let (g, rest) = self.data.split_at(n);
                self.data = rest;
                Op::Garbage(g.to_vec())
            }
            25 => Op::Destroy,
            _ => Op::Advance { ms: u32::from(self.byte()) * 10 },
        })
    }
}

/// Runs fuzz bytes: byte 0 picks the configuration, bytes 1..9 seed the RNG, the rest are ops (at most 2000).
/// Returns the event kinds seen.
pub fn run(data: &[u8]) -> BTreeMap<String, u64> {
    let config = data.first().copied().unwrap_or(0);
    let mut seed = [0u8; 8];
    for (i, b) in data.iter().skip(1).take(8).enumerate() {
        seed[i] = *b;
    }
    let ops = data.get(9..).unwrap_or(&[]);
    let mut sim = Sim::new(config, u64::from_le_bytes(seed));
    for op in ByteOps::new(ops).take(2_000) {
        sim.apply(&op);
    }
    sim.finish()
}
