//! Test harness for the server: a seeded `Server`, frames built with the codec, and decoded transmits.
#![allow(dead_code)]

pub mod driver;

use bytes::Bytes;
use chacha20::rand_core::SeedableRng;
use chacha20::ChaCha8Rng;
use loro_sansio::server::{BuiltinDocs, ConnId, DocFactory, JoinTicket, LoadedRoom, Server, ServerConfig, ServerEvent};
use loro_sansio::wire::{
    AckStatus, BatchId, Body, CrdtType, Frame, Message, OwnedBody, OwnedMessage, Permission, Updates,
};
use loro_sansio::{CloseCode, Instant, RoomKey, Transmit};

/// What a connection received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
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
}

pub struct Harness {
    pub server: Server,
    pub now: Instant,
}

pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

impl Harness {
    pub fn new(config: ServerConfig) -> Self {
        Self::with_docs(config, BuiltinDocs)
    }

    pub fn default_config() -> Self {
        Self::new(ServerConfig::default())
    }

    pub fn with_docs(config: ServerConfig, docs: impl DocFactory + 'static) -> Self {
        Harness { server: Server::new(config, docs, seeded_rng(7)), now: Instant::from_millis(1_000) }
    }

    pub fn connect(&mut self) -> ConnId {
        self.server.open_connection(self.now).expect("connection accepted")
    }

    pub fn frame(&mut self, conn: ConnId, frame: Frame) {
        self.server.handle_frame(self.now, conn, frame);
    }

    pub fn send(&mut self, conn: ConnId, msg: &Message<'_>) {
        let bytes = msg.encode_to_bytes().expect("valid test message");
        self.frame(conn, Frame::Binary(bytes));
    }

    pub fn send_join(&mut self, conn: ConnId, crdt: CrdtType, room: &str, auth: &[u8], version: &[u8]) {
        self.send(conn, &Message { crdt, room, body: Body::JoinRequest { auth, version } });
    }

    pub fn send_update(&mut self, conn: ConnId, crdt: CrdtType, room: &str, batch: u64, updates: &[&[u8]]) {
        self.send(
            conn,
            &Message {
                crdt,
                room,
                body: Body::DocUpdate { updates: Updates::from_slices(updates), batch_id: BatchId::from_u64(batch) },
            },
        );
    }

    pub fn send_text(&mut self, conn: ConnId, text: &'static str) {
        self.frame(conn, Frame::Text(Bytes::from_static(text.as_bytes())));
    }

    /// Every transmit queued for `conn`, decoded.
    pub fn recv(&mut self, conn: ConnId) -> Vec<Out> {
        let mut out = Vec::new();
        while let Some(t) = self.server.poll_transmit(conn) {
            out.push(match t {
                Transmit::Frame(Frame::Binary(b)) => Out::Msg(OwnedMessage::decode(&b).expect("server frames decode")),
                Transmit::Frame(Frame::Text(t)) => Out::Text(String::from_utf8(t.to_vec()).unwrap()),
                Transmit::Close { code, reason } => Out::Close(code, reason.to_string()),
                Transmit::Open => panic!("a server never asks to open"),
            });
        }
        out
    }

    /// Only the messages received by `conn`.
    pub fn recv_msgs(&mut self, conn: ConnId) -> Vec<OwnedMessage> {
        self.recv(conn).into_iter().filter_map(|o| if let Out::Msg(m) = o { Some(m) } else { None }).collect()
    }

    pub fn events(&mut self) -> Vec<ServerEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.server.poll_event() {
            out.push(e);
        }
        out
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = Instant::from_millis(self.now.as_millis() + ms);
        self.server.handle_timeout(self.now);
    }

    /// Advances to the next deadline (if any) and fires it.
    pub fn advance_to_deadline(&mut self) -> bool {
        match self.server.poll_timeout() {
            Some(at) => {
                self.now = self.now.max(at);
                self.server.handle_timeout(self.now);
                true
            }
            None => false,
        }
    }

    /// The ticket of the next JoinRequested event (other events are returned too).
    pub fn join_ticket(&mut self) -> JoinTicket {
        for e in self.events() {
            if let ServerEvent::JoinRequested { ticket, .. } = e {
                return ticket;
            }
        }
        panic!("no JoinRequested event")
    }

    /// Joins `conn` to a room with `permission`, answering a load (empty room) if asked. Drains `conn`'s frames
    /// and the events.
    pub fn join(&mut self, conn: ConnId, crdt: CrdtType, room: &str, permission: Permission) -> Vec<OwnedMessage> {
        self.send_join(conn, crdt, room, b"token", b"");
        let ticket = self.join_ticket();
        self.server.accept_join(self.now, ticket, permission, Bytes::new()).unwrap();
        for e in self.events() {
            if let ServerEvent::LoadRoom { ticket, .. } = e {
                self.server.room_loaded(self.now, ticket, Ok(LoadedRoom::default())).unwrap();
            }
        }
        self.events();
        self.recv_msgs(conn)
    }

    /// Answers every pending persist event with success.
    pub fn persist_all(&mut self) -> Vec<ServerEvent> {
        let events = self.events();
        for e in &events {
            if let ServerEvent::PersistUpdates { ticket, .. } = e {
                self.server.persist_done(self.now, *ticket, Ok(())).unwrap();
            }
        }
        events
    }
}

pub fn key(crdt: CrdtType, room: &str) -> RoomKey {
    RoomKey::new(crdt, room)
}

/// The acks in `msgs` as (batch, status).
pub fn acks(msgs: &[OwnedMessage]) -> Vec<(u64, AckStatus)> {
    msgs.iter()
        .filter_map(|m| match &m.body {
            OwnedBody::Ack { ref_id, status } => Some((ref_id.to_u64(), *status)),
            _ => None,
        })
        .collect()
}

/// The updates of every DocUpdate in `msgs`, flattened.
pub fn doc_updates(msgs: &[OwnedMessage]) -> Vec<Vec<u8>> {
    msgs.iter()
        .flat_map(|m| match &m.body {
            OwnedBody::DocUpdate { updates, .. } => updates.iter().map(|u| u.to_vec()).collect(),
            _ => Vec::new(),
        })
        .collect()
}
