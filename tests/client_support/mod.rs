//! Test harness for the client: a seeded `ClientSession` in virtual time, a scripted fake server that decodes
//! what the client transmits, and frames built with the codec.
#![allow(dead_code)]

pub mod driver;

use bytes::Bytes;
use chacha20::rand_core::SeedableRng;
use chacha20::ChaCha8Rng;
use loro_sansio::client::{ClientConfig, ClientEvent, ClientSession, JoinParams, JoinTicket};
use loro_sansio::wire::{
    AckStatus, BatchId, Body, CrdtType, Frame, JoinErrorCode, Message, OwnedBody, OwnedMessage, Permission,
    RoomErrorCode, Updates,
};
use loro_sansio::{CloseCode, Instant, RoomKey, Transmit};

/// What the client asked the driver to do, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Open,
    Msg(OwnedMessage),
    Text(String),
    Close(CloseCode, String),
}

impl Out {
    pub fn msg(&self) -> &OwnedMessage {
        match self {
            Out::Msg(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    pub fn is_ping(&self) -> bool {
        matches!(self, Out::Text(t) if t == "ping")
    }
}

/// Decodes one transmit; a frame the client sends must always decode (and respect the frame limit).
pub fn decode_transmit(t: Transmit) -> Out {
    match t {
        Transmit::Open => Out::Open,
        Transmit::Frame(Frame::Binary(b)) => {
            Out::Msg(OwnedMessage::decode(&b).unwrap_or_else(|e| panic!("client sent an invalid frame: {e}")))
        }
        Transmit::Frame(Frame::Text(t)) => Out::Text(String::from_utf8(t.to_vec()).expect("text frame is UTF-8")),
        Transmit::Close { code, reason } => {
            assert!(code.is_client_sendable(), "client sent close code {code}, which browsers refuse");
            Out::Close(code, reason.to_string())
        }
    }
}

pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn params(auth: &'static [u8], version: &'static [u8]) -> JoinParams {
    JoinParams { auth: Bytes::from_static(auth), version: Bytes::from_static(version) }
}

pub fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

pub fn encode(msg: Message<'_>) -> Frame {
    Frame::Binary(msg.encode_to_bytes().expect("test message encodes"))
}

pub fn join_ok(room: &RoomKey, permission: Permission, version: &[u8], extra: &[u8]) -> Frame {
    encode(Message { crdt: room.crdt, room: &room.room, body: Body::JoinResponseOk { permission, version, extra } })
}

pub fn join_error(room: &RoomKey, code: JoinErrorCode, message: &str) -> Frame {
    join_error_full(room, code, message, None, None)
}

pub fn join_error_full(
    room: &RoomKey,
    code: JoinErrorCode,
    message: &str,
    receiver_version: Option<&[u8]>,
    app_code: Option<&str>,
) -> Frame {
    encode(Message {
        crdt: room.crdt,
        room: &room.room,
        body: Body::JoinError { code, message, receiver_version, app_code },
    })
}

pub fn room_error(room: &RoomKey, code: RoomErrorCode, message: &str) -> Frame {
    encode(Message { crdt: room.crdt, room: &room.room, body: Body::RoomError { code, message } })
}

pub fn ack(room: &RoomKey, ref_id: BatchId, status: AckStatus) -> Frame {
    encode(Message { crdt: room.crdt, room: &room.room, body: Body::Ack { ref_id, status } })
}

pub fn doc_update(room: &RoomKey, updates: &[&[u8]], batch_id: BatchId) -> Frame {
    encode(Message {
        crdt: room.crdt,
        room: &room.room,
        body: Body::DocUpdate { updates: Updates::from_slices(updates), batch_id },
    })
}

pub fn frag_header(room: &RoomKey, batch_id: BatchId, fragment_count: u32, total_size: u32) -> Frame {
    encode(Message {
        crdt: room.crdt,
        room: &room.room,
        body: Body::FragmentHeader { batch_id, fragment_count, total_size },
    })
}

pub fn fragment(room: &RoomKey, batch_id: BatchId, index: u32, data: &[u8]) -> Frame {
    encode(Message { crdt: room.crdt, room: &room.room, body: Body::Fragment { batch_id, index, data } })
}

/// The JoinRequest the client sent, as (room, auth, version).
pub fn join_request(out: &Out) -> (RoomKey, Bytes, Bytes) {
    let m = out.msg();
    match &m.body {
        OwnedBody::JoinRequest { auth, version } => {
            (RoomKey { crdt: m.crdt, room: m.room.clone() }, auth.clone(), version.clone())
        }
        other => panic!("expected a JoinRequest, got {other:?}"),
    }
}

/// The DocUpdate the client sent, as (room, updates, batch id).
pub fn sent_update(out: &Out) -> (RoomKey, Vec<Bytes>, BatchId) {
    let m = out.msg();
    match &m.body {
        OwnedBody::DocUpdate { updates, batch_id } => {
            (RoomKey { crdt: m.crdt, room: m.room.clone() }, updates.to_vec(), *batch_id)
        }
        other => panic!("expected a DocUpdate, got {other:?}"),
    }
}

/// The ticket of the only `JoinParamsNeeded` in `events`.
pub fn ticket_in(events: &[ClientEvent]) -> JoinTicket {
    let tickets: Vec<JoinTicket> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::JoinParamsNeeded { ticket, .. } => Some(*ticket),
            _ => None,
        })
        .collect();
    assert_eq!(tickets.len(), 1, "expected exactly one JoinParamsNeeded in {events:#?}");
    tickets[0]
}

/// A client session in virtual time.
pub struct Client {
    pub s: ClientSession,
    pub now: Instant,
}

impl Client {
    pub fn new(config: ClientConfig) -> Self {
        Client { s: ClientSession::new(config, seeded_rng(7)), now: Instant::ZERO }
    }

    pub fn default_config() -> Self {
        Self::new(ClientConfig::default())
    }

    /// Drains and decodes every transmit.
    pub fn out(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        while let Some(t) = self.s.poll_transmit() {
            v.push(decode_transmit(t));
        }
        v
    }

    /// Drains every event.
    pub fn events(&mut self) -> Vec<ClientEvent> {
        let mut v = Vec::new();
        while let Some(e) = self.s.poll_event() {
            v.push(e);
        }
        v
    }

    /// Drains both, discarding them.
    pub fn flush(&mut self) {
        self.out();
        self.events();
    }

    /// Moves the clock to `ms` and runs the timers.
    pub fn at(&mut self, ms: u64) {
        self.now = Instant::from_millis(ms);
        self.s.handle_timeout(self.now);
    }

    /// Moves the clock forward by `ms` and runs the timers.
    pub fn advance(&mut self, ms: u64) {
        let t = self.now.as_millis() + ms;
        self.at(t);
    }

    /// Moves the clock to the next deadline and runs the timers; returns the deadline.
    pub fn advance_to_deadline(&mut self) -> Instant {
        let t = self.s.poll_timeout().expect("a deadline is armed");
        self.now = self.now.max(t);
        self.s.handle_timeout(self.now);
        t
    }

    /// `connect` + `transport_opened`, outputs discarded.
    pub fn connect_open(&mut self) {
        self.s.connect(self.now).unwrap();
        assert_eq!(self.out(), vec![Out::Open]);
        self.s.transport_opened(self.now);
    }

    pub fn frame(&mut self, f: Frame) {
        self.s.handle_frame(self.now, f);
    }

    pub fn text(&mut self, t: &'static str) {
        self.frame(Frame::Text(Bytes::from_static(t.as_bytes())));
    }

    pub fn closed(&mut self, code: Option<u16>, reason: &str) {
        self.s.transport_closed(self.now, code.map(CloseCode), reason);
    }

    /// Answers the only pending `JoinParamsNeeded` in `events`; returns the JoinRequest sent.
    pub fn provide(&mut self, events: &[ClientEvent], auth: &'static [u8], version: &'static [u8]) -> Out {
        let t = ticket_in(events);
        self.s.provide_join_params(self.now, t, params(auth, version)).unwrap();
        let out = self.out();
        assert_eq!(out.len(), 1, "one JoinRequest expected, got {out:?}");
        out.into_iter().next().unwrap()
    }

    /// A connected client with `room` joined with `permission`; outputs discarded.
    pub fn joined(config: ClientConfig, crdt: CrdtType, room: &str, permission: Permission) -> (Self, RoomKey) {
        let mut c = Self::new(config);
        c.connect_open();
        let key = c.join_now(crdt, room, permission);
        (c, key)
    }

    /// Joins one more room on the open transport; outputs discarded.
    pub fn join_now(&mut self, crdt: CrdtType, room: &str, permission: Permission) -> RoomKey {
        let key = self.s.join(self.now, crdt, room).unwrap();
        let ev = self.events();
        self.provide(&ev, b"auth", b"");
        self.frame(join_ok(&key, permission, b"", b""));
        self.flush();
        key
    }
}
