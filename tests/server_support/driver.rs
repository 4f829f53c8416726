//! A deterministic run of the server driven by arbitrary bytes, shared by the `server_session` fuzz target
//! (`fuzz/fuzz_targets/server_session.rs` includes this file), the replay of its committed corpus
//! (`tests/fuzz_corpus_server.rs`) and a proptest over random inputs (`tests/server_proptest.rs`).
//!
//! The input is read as a sequence of operations: connections opening and closing, raw frames (binary and
//! text), structured messages built from the input (so the fuzzer reaches deep states without guessing a valid
//! encoding), whole fragment batches that are reordered, duplicated or cut short, ticks of virtual time, the
//! application's answers to every kind of ticket (in any order, including stale tickets), app-side control, and
//! partial draining of each connection's queue. Limits are small so that every bound is reached.
//!
//! After every operation the run checks what the public API lets it see: budgets (reassembly bytes per
//! connection and in total, queued bytes, rooms, members, pending tickets), that memberships agree between rooms
//! and sessions, that every frame the server queues decodes and fits the frame limit, that nothing follows a
//! close, that a stale ticket is refused, and that after `handle_timeout(now)` no deadline is left at or before
//! `now`. At the end it shuts the server down, answers everything, and requires `ShutdownComplete`.
//!
//! Only `loro_sansio` (and its re-exports) is used, so the fuzz crate can compile this file as it is.

#[path = "../common/splitmix.rs"]
mod splitmix;

use loro_sansio::bytes::Bytes;
use loro_sansio::fragment::{Fragmenter, ReassemblyConfig};
use loro_sansio::rand_core::TryRng;
use loro_sansio::server::docs::UpdateLog;
use loro_sansio::server::{
    AckMode, Applied, BackfillError, BuiltinDocs, ConnId, DocError, DocFactory, ImportError, JoinTicket, LoadError,
    LoadTicket, LoadedRoom, PersistTicket, RateLimit, RoomDoc, SaveTicket, Server, ServerConfig, ServerEvent,
    StorageError, UpdateTicket,
};
use loro_sansio::wire::{
    AckStatus, BatchId, Body, CrdtType, Frame, JoinErrorCode, Message, OwnedBody, OwnedMessage, Permission,
    RoomErrorCode, Updates, MAX_FRAME_SIZE,
};
use loro_sansio::{CloseCode, Instant, RoomKey, Transmit};

use core::convert::Infallible;
use core::time::Duration;

/// Reads the input front to back; past its end every read yields zero (or an empty slice).
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// Reads `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data, pos: 0 }
    }

    /// True once every byte was read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// One byte.
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        &self.data[start..end]
    }

    /// A length byte taken modulo `modulo` (at most 256), then that many bytes.
    pub fn chunk(&mut self, modulo: usize) -> &'a [u8] {
        let n = usize::from(self.u8()) % modulo.max(1);
        self.bytes(n)
    }

    /// An index below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::from(self.u8()) % n
        }
    }
}

/// SplitMix64: a tiny deterministic RNG for the server's batch ids.
pub struct SplitMix(pub u64);

impl TryRng for SplitMix {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(splitmix::next_u64(&mut self.0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        splitmix::fill(dst, || self.try_next_u64().unwrap_or_else(|e| match e {}));
        Ok(())
    }
}

/// A persistent update log that refuses any update whose first byte is 0xFF (the "invalid update" of these
/// tests) and answers a client version of `?` with `VersionUnknown`.
#[derive(Debug, Default)]
pub struct PickyLog(pub UpdateLog);

impl RoomDoc for PickyLog {
    fn version(&self) -> Bytes {
        Bytes::new()
    }
    fn apply(&mut self, updates: &[Bytes], limit: usize) -> Result<Applied, DocError> {
        if updates.iter().any(|u| u.first() == Some(&0xff)) {
            return Err(DocError::Invalid);
        }
        self.0.apply(updates, limit)
    }
    fn backfill(&self, client_version: &[u8]) -> Result<Vec<Bytes>, BackfillError> {
        if client_version == b"?" {
            return Err(BackfillError::VersionUnknown);
        }
        self.0.backfill(client_version)
    }
    fn is_persistent(&self) -> bool {
        true
    }
    fn export(&self) -> Option<Bytes> {
        self.0.export()
    }
    fn import(&mut self, snapshot: &[u8]) -> Result<(), ImportError> {
        self.0.import(snapshot)
    }
    fn stored_bytes(&self) -> usize {
        self.0.stored_bytes()
    }
}

/// `%LOR` rooms get a [`PickyLog`], `%YJS` is not served (joins get `unsupported_crdt`), every other CRDT gets
/// its built-in document.
pub fn picky_docs() -> impl DocFactory + 'static {
    |room: &RoomKey| -> Option<Box<dyn RoomDoc>> {
        match room.crdt {
            CrdtType::Loro => Some(Box::new(PickyLog::default())),
            CrdtType::Yjs => None,
            _ => BuiltinDocs.create(room),
        }
    }
}

/// Small limits, so that every bound is reached by short inputs. `flags` picks the ack mode, the approval hook,
/// the rate limit, a tiny queue limit, a zero backfill watermark and the idle timeout.
pub fn small_config(flags: u8) -> ServerConfig {
    let mut c = ServerConfig {
        ack_mode: if flags & 1 == 0 { AckMode::Durable } else { AckMode::AfterApply },
        approve_updates: flags & 2 != 0,
        ..ServerConfig::default()
    };
    let l = &mut c.limits;
    l.max_connections = 5;
    l.max_rooms = 4;
    l.max_rooms_per_connection = 3;
    l.max_members_per_room = 4;
    l.max_pending_tickets_per_connection = 4;
    l.max_stored_bytes_per_room = 8_192;
    l.max_update_size = 3_000;
    l.update_rate = if flags & 4 == 0 { Some(RateLimit { per_second: 20, burst: 8 }) } else { None };
    l.max_queued_bytes_per_connection = if flags & 8 == 0 { 16_384 } else { 600 };
    l.max_reassembly_bytes_total = 10_000;
    l.backfill_watermark = if flags & 16 == 0 { 1_024 } else { 0 };
    l.resend_memory_per_connection = 2;
    c.save_interval = Duration::from_secs(5);
    c.retry_delay = Duration::from_secs(1);
    c.idle_unload_after = Duration::from_secs(10);
    c.idle_timeout = if flags & 32 == 0 { Some(Duration::from_secs(30)) } else { None };
    c.reassembly = ReassemblyConfig {
        timeout: Duration::from_secs(2),
        max_lifetime: Duration::from_secs(10),
        max_batches: 2,
        max_bytes_in_flight: 6_000,
        max_update_size: 3_000,
        max_fragments: 32,
        tombstones: 4,
        ..ReassemblyConfig::default()
    };
    if let Ok(f) = Fragmenter::with_limits(200, 512) {
        c.fragmenter = f;
    }
    c
}

const LONG_ROOM: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                         0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

const ROOMS: [&str; 4] = ["a", "b", "", LONG_ROOM];

/// A text frame one byte over the frame limit.
static OVERSIZED_TEXT: [u8; MAX_FRAME_SIZE + 1] = [b'x'; MAX_FRAME_SIZE + 1];

/// A ticket the driver answered, kept to answer it again (which must fail).
#[derive(Clone, Copy, Debug)]
enum Answered {
    Join(JoinTicket),
    Load(LoadTicket),
    Approval(UpdateTicket),
    Persist(PersistTicket),
    Save(SaveTicket),
}

/// What a run did (for the campaign report and to see that tests go deep).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations executed.
    pub ops: u64,
    /// Frames the server queued and the driver took.
    pub frames_out: u64,
    /// `Ack(ok)` frames received by clients.
    pub acks_ok: u64,
    /// JoinResponseOk frames received by clients.
    pub joins_ok: u64,
    /// Close instructions received.
    pub closes: u64,
}

/// The driver: a server with small limits, the open connections, and every ticket not yet answered.
pub struct Driver {
    /// The server under test.
    pub server: Server,
    config: ServerConfig,
    now: Instant,
    conns: Vec<ConnId>,
    closed: Vec<ConnId>,
    joins: Vec<JoinTicket>,
    loads: Vec<(LoadTicket, RoomKey)>,
    approvals: Vec<UpdateTicket>,
    persists: Vec<PersistTicket>,
    saves: Vec<(SaveTicket, RoomKey, Bytes)>,
    answered: Vec<Answered>,
    snapshots: Vec<(RoomKey, Bytes)>,
    server_batches: Vec<(ConnId, RoomKey, BatchId)>,
    shutdown_complete: bool,
    /// What the run did.
    pub stats: Stats,
}

impl Driver {
    /// A driver whose configuration comes from `flags` (see [`small_config`]).
    pub fn new(flags: u8) -> Self {
        let config = small_config(flags);
        Driver {
            server: Server::new(config.clone(), picky_docs(), SplitMix(u64::from(flags))),
            config,
            now: Instant::from_millis(1_000),
            conns: Vec::new(),
            closed: Vec::new(),
            joins: Vec::new(),
            loads: Vec::new(),
            approvals: Vec::new(),
            persists: Vec::new(),
            saves: Vec::new(),
            answered: Vec::new(),
            snapshots: Vec::new(),
            server_batches: Vec::new(),
            shutdown_complete: false,
            stats: Stats::default(),
        }
    }

    fn conn(&mut self, input: &mut Input<'_>) -> Option<ConnId> {
        if self.conns.is_empty() {
            return None;
        }
        let i = input.below(self.conns.len());
        Some(self.conns[i])
    }

    fn room(input: &mut Input<'_>) -> RoomKey {
        let crdt = CrdtType::ALL[input.below(CrdtType::ALL.len())];
        RoomKey::new(crdt, ROOMS[input.below(ROOMS.len())])
    }

    fn batch_id(input: &mut Input<'_>) -> BatchId {
        BatchId::from_u64(u64::from(input.u8() % 8))
    }

    fn send(&mut self, conn: ConnId, msg: &Message<'_>) {
        if let Ok(bytes) = msg.encode_to_bytes() {
            self.server.handle_frame(self.now, conn, Frame::Binary(bytes));
        }
    }

    /// Runs every operation in `data`, then shuts down and settles.
    pub fn run(data: &[u8]) -> Stats {
        check_imports(data);
        let mut input = Input::new(data);
        let mut d = Driver::new(input.u8());
        // Start with two connections so short inputs already reach rooms and relays.
        d.open();
        d.open();
        let mut ops = 0;
        while !input.is_empty() && ops < 4_096 {
            d.step(&mut input);
            d.collect_events();
            d.check();
            ops += 1;
        }
        d.stats.ops = ops;
        d.finish();
        d.stats
    }

    fn open(&mut self) {
        if let Ok(c) = self.server.open_connection(self.now) {
            self.conns.push(c);
        }
    }

    /// One operation.
    pub fn step(&mut self, input: &mut Input<'_>) {
        match input.u8() % 16 {
            0 => self.open(),
            1 => {
                if let Some(c) = self.conn(input) {
                    self.server.connection_closed(self.now, c);
                    self.conns.retain(|&x| x != c);
                    self.closed.retain(|&x| x != c);
                }
            }
            2 => {
                if let Some(c) = self.conn(input) {
                    let n = if input.u8() & 1 == 0 { usize::from(input.u8()) } else { usize::from(input.u16()) };
                    let raw = Bytes::copy_from_slice(input.bytes(n));
                    self.server.handle_frame(self.now, c, Frame::Binary(raw));
                }
            }
            3 => {
                if let Some(c) = self.conn(input) {
                    let text = match input.u8() % 4 {
                        0 => Bytes::from_static(b"ping"),
                        1 => Bytes::from_static(b"pong"),
                        2 => Bytes::from_static(&OVERSIZED_TEXT),
                        _ => {
                            let n = usize::from(input.u8() % 16);
                            Bytes::copy_from_slice(input.bytes(n))
                        }
                    };
                    self.server.handle_frame(self.now, c, Frame::Text(text));
                }
            }
            4..=7 => self.message(input),
            8 => self.fragment_batch(input),
            9 => {
                let ms = u64::from(input.u16()) * if input.u8() & 1 == 0 { 1 } else { 100 };
                self.now = Instant::from_millis(self.now.as_millis().saturating_add(ms));
                self.tick();
            }
            10 => {
                if let Some(at) = self.server.poll_timeout() {
                    self.now = self.now.max(at);
                    self.tick();
                }
            }
            11 => self.decide(input),
            12 => {
                if let Some(c) = self.conn(input) {
                    let n = usize::from(input.u8());
                    self.drain(c, if n == 0 { usize::MAX } else { n });
                }
            }
            13 => self.control(input),
            14 => {
                for c in self.conns.clone() {
                    self.drain(c, usize::MAX);
                }
                while self.server.poll_ready().is_some() {}
            }
            _ => match input.u8() % 3 {
                // Time that goes backwards is clamped.
                0 => self.server.handle_timeout(Instant::ZERO),
                1 => {
                    self.now = Instant::from_millis(self.now.as_millis().saturating_add(1 << 40));
                    self.tick();
                }
                _ => {
                    if let Some(c) = self.conn(input) {
                        self.server.handle_frame(Instant::ZERO, c, Frame::ping());
                    }
                }
            },
        }
    }

    fn tick(&mut self) {
        self.server.handle_timeout(self.now);
        if let Some(at) = self.server.poll_timeout() {
            assert!(at > self.now, "a deadline at {at:?} is left armed after handle_timeout({:?})", self.now);
        }
    }

    /// A structured message: valid framing, contents from the input.
    fn message(&mut self, input: &mut Input<'_>) {
        let Some(c) = self.conn(input) else { return };
        let key = Self::room(input);
        let (crdt, room) = (key.crdt, key.room.as_str());
        match input.u8() % 10 {
            0 => {
                let auth = input.chunk(8);
                let version: &[u8] = if input.u8() % 4 == 0 { b"?" } else { input.chunk(4) };
                self.send(c, &Message { crdt, room, body: Body::JoinRequest { auth, version } });
            }
            1 | 2 => {
                let n = input.below(4);
                let mut updates: Vec<&[u8]> = Vec::with_capacity(n);
                for _ in 0..n {
                    let len = usize::from(input.u8() % 24);
                    updates.push(input.bytes(len));
                }
                let batch_id = Self::batch_id(input);
                self.send(
                    c,
                    &Message {
                        crdt,
                        room,
                        body: Body::DocUpdate { updates: Updates::from_slices(&updates), batch_id },
                    },
                );
            }
            3 => {
                let batch_id = Self::batch_id(input);
                fn pick(input: &mut Input<'_>) -> u32 {
                    match input.u8() % 5 {
                        0 => 0,
                        1 => u32::from(input.u8() % 8),
                        2 => u32::from(input.u16()),
                        3 => u32::MAX,
                        _ => input.u32(),
                    }
                }
                let fragment_count = pick(input);
                let total_size = pick(input);
                self.send(
                    c,
                    &Message { crdt, room, body: Body::FragmentHeader { batch_id, fragment_count, total_size } },
                );
            }
            4 => {
                let batch_id = Self::batch_id(input);
                let index = if input.u8() == 0xff { u32::MAX } else { u32::from(input.u8() % 8) };
                let data = input.chunk(256);
                self.send(c, &Message { crdt, room, body: Body::Fragment { batch_id, index, data } });
            }
            5 => self.send(c, &Message { crdt, room, body: Body::Leave }),
            6 => {
                // Nack a batch this connection received, so resends are exercised; or any id.
                let mine: Vec<_> = self.server_batches.iter().filter(|(x, ..)| *x == c).cloned().collect();
                let (key, ref_id) = match mine.get(input.below(mine.len().max(1))) {
                    Some((_, k, b)) if input.u8() % 4 != 0 => (k.clone(), *b),
                    _ => (key.clone(), Self::batch_id(input)),
                };
                let status = AckStatus(input.u8());
                let msg = Message { crdt: key.crdt, room: key.room.as_str(), body: Body::Ack { ref_id, status } };
                self.send(c, &msg);
            }
            7 => {
                let code = JoinErrorCode(input.u8());
                let body = Body::JoinError { code, message: "client gave up", receiver_version: None, app_code: None };
                self.send(c, &Message { crdt, room, body });
            }
            8 => {
                let permission = if input.u8() & 1 == 0 { Permission::Read } else { Permission::Write };
                let body = Body::JoinResponseOk { permission, version: b"", extra: b"" };
                self.send(c, &Message { crdt, room, body });
            }
            _ => {
                let body = Body::RoomError { code: RoomErrorCode(input.u8()), message: "?" };
                self.send(c, &Message { crdt, room, body });
            }
        }
    }

    /// A whole batch from a client's fragmenter, then delivered with its frames reordered, repeated or cut.
    fn fragment_batch(&mut self, input: &mut Input<'_>) {
        let Some(c) = self.conn(input) else { return };
        let key = Self::room(input);
        let len = usize::from(input.u16() % 4_000).max(1);
        let fill = input.u8();
        let mut update = vec![fill; len];
        if let Some(first) = update.first_mut() {
            *first = input.u8();
        }
        let chunk = usize::from(input.u16() % 700).max(1);
        let Ok(f) = Fragmenter::with_limits(chunk, 512) else { return };
        let updates = [Bytes::from(update)];
        let Some(batch) = f.plan(key.room.len(), &updates).next() else { return };
        let batch_id = Self::batch_id(input);
        let Ok(frames) = f.frames(key.crdt, key.room.as_str(), batch_id, batch, &updates) else { return };
        let mut frames: Vec<Bytes> = frames.collect();
        let how = input.u8();
        if frames.len() > 1 {
            let header = frames.remove(0);
            if how & 2 != 0 {
                frames.reverse();
            }
            if how & 4 != 0 {
                let dup = frames[0].clone();
                frames.push(dup);
            }
            if how & 8 != 0 {
                frames.pop();
            }
            if how & 1 == 0 {
                if how & 16 != 0 {
                    frames.push(header.clone());
                } else {
                    frames.insert(0, header.clone());
                }
            }
            if how & 32 != 0 {
                frames.insert(0, header);
            }
        }
        for fr in frames {
            self.server.handle_frame(self.now, c, Frame::Binary(fr));
        }
    }

    /// The application answers one ticket (or re-answers an old one, which must fail).
    fn decide(&mut self, input: &mut Input<'_>) {
        let now = self.now;
        let choice = input.u8();
        match input.u8() % 6 {
            0 if !self.joins.is_empty() => {
                let t = self.joins.remove(input.below(self.joins.len()));
                let _ = match choice % 4 {
                    0 => self.server.accept_join(now, t, Permission::Read, Bytes::new()),
                    1 => self.server.accept_join(now, t, Permission::Write, Bytes::from_static(b"extra")),
                    2 => self.server.reject_join(now, t, JoinErrorCode(input.u8()), "denied", Some("code")),
                    _ => self.server.reject_join(now, t, JoinErrorCode::APP_ERROR, "quota", Some("quota_exceeded")),
                };
                self.answered.push(Answered::Join(t));
            }
            1 if !self.loads.is_empty() => {
                let (t, room) = self.loads.remove(input.below(self.loads.len()));
                let result = match choice % 4 {
                    0 => Ok(LoadedRoom::default()),
                    1 => {
                        let snapshot = self.snapshots.iter().rev().find(|(k, _)| *k == room).map(|(_, s)| s.clone());
                        Ok(LoadedRoom { snapshot, updates: vec![Bytes::from_static(b"stored")], last_seq: 1 })
                    }
                    2 => {
                        let garbage = Bytes::copy_from_slice(input.chunk(16));
                        Ok(LoadedRoom { snapshot: Some(garbage), updates: Vec::new(), last_seq: u64::MAX })
                    }
                    _ => Err(LoadError),
                };
                let _ = self.server.room_loaded(now, t, result);
                self.answered.push(Answered::Load(t));
            }
            2 if !self.approvals.is_empty() => {
                let t = self.approvals.remove(input.below(self.approvals.len()));
                let decision = if choice % 3 == 0 { Err(AckStatus(input.u8())) } else { Ok(()) };
                let _ = self.server.approve_update(now, t, decision);
                self.answered.push(Answered::Approval(t));
            }
            3 if !self.persists.is_empty() => {
                let t = self.persists.remove(input.below(self.persists.len()));
                let result = if choice % 4 == 0 { Err(StorageError) } else { Ok(()) };
                let _ = self.server.persist_done(now, t, result);
                self.answered.push(Answered::Persist(t));
            }
            4 if !self.saves.is_empty() => {
                let (t, room, snapshot) = self.saves.remove(input.below(self.saves.len()));
                let ok = choice % 4 != 0;
                if ok {
                    self.snapshots.push((room, snapshot));
                    if self.snapshots.len() > 8 {
                        self.snapshots.remove(0);
                    }
                }
                let _ = self.server.save_done(now, t, if ok { Ok(()) } else { Err(StorageError) });
                self.answered.push(Answered::Save(t));
            }
            5 if !self.answered.is_empty() => {
                let stale = self.answered[input.below(self.answered.len())];
                let refused = match stale {
                    Answered::Join(t) => {
                        self.server.reject_join(now, t, JoinErrorCode::UNKNOWN, "again", None).is_err()
                    }
                    Answered::Load(t) => self.server.room_loaded(now, t, Ok(LoadedRoom::default())).is_err(),
                    Answered::Approval(t) => self.server.approve_update(now, t, Ok(())).is_err(),
                    Answered::Persist(t) => self.server.persist_done(now, t, Ok(())).is_err(),
                    Answered::Save(t) => self.server.save_done(now, t, Ok(())).is_err(),
                };
                assert!(refused, "a ticket answered before is accepted again: {stale:?}");
            }
            _ => {}
        }
        if self.answered.len() > 32 {
            self.answered.remove(0);
        }
    }

    /// Calls the application makes without a socket.
    fn control(&mut self, input: &mut Input<'_>) {
        let now = self.now;
        let room = Self::room(input);
        match input.u8() % 8 {
            0 => {
                let _ = self.server.load_room(now, &room);
            }
            1 | 2 => {
                let n = input.below(3);
                let updates: Vec<Bytes> = (0..n)
                    .map(|_| {
                        let len = if input.u8() % 8 == 0 { 700 } else { usize::from(input.u8() % 24) };
                        Bytes::from(vec![input.u8(); len])
                    })
                    .collect();
                let _ = self.server.push_update(now, &room, updates);
            }
            3 => {
                let _ = self.server.close_room(now, &room);
            }
            4 => {
                if let Some(c) = self.conn(input) {
                    let _ = self.server.evict(now, c, &room, "evicted by the app");
                }
            }
            5 => {
                if let Some(c) = self.conn(input) {
                    self.server.close_connection(now, c, CloseCode(input.u16()), "bye");
                }
            }
            6 => {
                // A connection the driver has already reported closed, or one that never existed.
                if let Some(c) = self.conn(input) {
                    self.server.connection_closed(now, c);
                    self.server.connection_closed(now, c);
                    self.server.handle_frame(now, c, Frame::ping());
                    self.conns.retain(|&x| x != c);
                    self.closed.retain(|&x| x != c);
                }
            }
            _ => {
                if input.u8() == 0xff {
                    self.server.shutdown(now);
                }
            }
        }
    }

    /// Takes up to `n` transmits of `conn` and checks each.
    fn drain(&mut self, conn: ConnId, n: usize) {
        for _ in 0..n {
            let Some(t) = self.server.poll_transmit(conn) else { break };
            assert!(!self.closed.contains(&conn), "{conn} got {t:?} after its close");
            self.stats.frames_out += 1;
            match t {
                Transmit::Frame(Frame::Binary(b)) => {
                    assert!(b.len() <= MAX_FRAME_SIZE, "a {}-byte frame", b.len());
                    let msg = OwnedMessage::decode(&b).expect("every frame the server queues decodes");
                    let key = RoomKey { crdt: msg.crdt, room: msg.room.clone() };
                    match msg.body {
                        OwnedBody::Ack { status, .. } if status.is_ok() => self.stats.acks_ok += 1,
                        OwnedBody::JoinResponseOk { .. } => self.stats.joins_ok += 1,
                        OwnedBody::DocUpdate { batch_id, .. } | OwnedBody::FragmentHeader { batch_id, .. } => {
                            self.server_batches.push((conn, key, batch_id));
                            if self.server_batches.len() > 16 {
                                self.server_batches.remove(0);
                            }
                        }
                        _ => {}
                    }
                }
                Transmit::Frame(Frame::Text(t)) => assert_eq!(&t[..], b"pong"),
                Transmit::Close { reason, .. } => {
                    assert!(reason.len() <= 123);
                    self.stats.closes += 1;
                    self.closed.push(conn);
                }
                Transmit::Open => panic!("a server never asks to open a transport"),
            }
        }
    }

    fn collect_events(&mut self) {
        while let Some(e) = self.server.poll_event() {
            match e {
                ServerEvent::JoinRequested { ticket, .. } => self.joins.push(ticket),
                ServerEvent::LoadRoom { ticket, room } => self.loads.push((ticket, room)),
                ServerEvent::ApproveUpdate { ticket, .. } => self.approvals.push(ticket),
                ServerEvent::PersistUpdates { ticket, .. } => self.persists.push(ticket),
                ServerEvent::SaveRoom { ticket, room, snapshot, .. } => self.saves.push((ticket, room, snapshot)),
                ServerEvent::ShutdownComplete => self.shutdown_complete = true,
                _ => {}
            }
        }
    }

    /// Every bound and consistency rule visible through the public API.
    pub fn check(&self) {
        let limits = &self.config.limits;
        assert!(self.server.reassembly_bytes() <= limits.max_reassembly_bytes_total);
        let open: Vec<ConnId> = self.server.connections().collect();
        assert_eq!(self.server.counters().connections as usize, open.len());
        assert!(open.len() <= limits.max_connections);
        for &c in &open {
            let s = self.server.session(c).expect("listed connections have a session");
            assert!(s.reassembly_bytes() <= self.config.reassembly.max_bytes_in_flight);
            assert!(s.queued_bytes() <= limits.max_queued_bytes_per_connection, "{c}: {} queued", s.queued_bytes());
            assert!(s.rooms().count() <= limits.max_rooms_per_connection);
            assert!(s.pending_tickets() <= limits.max_pending_tickets_per_connection);
            for (room, _) in s.rooms() {
                let members = self.server.room_members(room).expect("a joined room is loaded");
                assert!(members.contains(&c), "{c} lists {room} but the room does not list it");
            }
        }
        assert!(self.server.rooms().count() <= limits.max_rooms);
        for room in self.server.rooms() {
            let members = self.server.room_members(room).unwrap_or(&[]);
            assert!(members.len() <= limits.max_members_per_room);
            for m in members {
                let s = self.server.session(*m).expect("members are open connections");
                assert!(s.rooms().any(|(k, _)| k == room), "{room} lists {m} but its session does not");
            }
        }
    }

    /// Shuts down, answers everything, and requires `ShutdownComplete`.
    pub fn finish(&mut self) {
        self.server.shutdown(self.now);
        for _ in 0..64 {
            self.collect_events();
            let now = self.now;
            for t in core::mem::take(&mut self.joins) {
                let _ = self.server.reject_join(now, t, JoinErrorCode::UNKNOWN, "shutting down", None);
            }
            for (t, _) in core::mem::take(&mut self.loads) {
                let _ = self.server.room_loaded(now, t, Ok(LoadedRoom::default()));
            }
            for t in core::mem::take(&mut self.approvals) {
                let _ = self.server.approve_update(now, t, Err(AckStatus::APP_ERROR));
            }
            for t in core::mem::take(&mut self.persists) {
                let _ = self.server.persist_done(now, t, Ok(()));
            }
            for (t, ..) in core::mem::take(&mut self.saves) {
                let _ = self.server.save_done(now, t, Ok(()));
            }
            self.collect_events();
            for c in self.conns.clone() {
                self.drain(c, usize::MAX);
            }
            self.check();
            let idle = self.joins.is_empty()
                && self.loads.is_empty()
                && self.approvals.is_empty()
                && self.persists.is_empty()
                && self.saves.is_empty();
            if self.shutdown_complete && idle {
                break;
            }
            if let Some(at) = self.server.poll_timeout() {
                self.now = self.now.max(at);
                self.tick();
            }
        }
        assert!(self.shutdown_complete, "shutdown never completed: {:?}", self.server);
        assert!(self.server.open_connection(self.now).is_err(), "no connection is accepted after shutdown");
    }
}

/// Stored room state is parsed as strictly as the wire: the input's bytes go into every built-in document's
/// `import`. Whatever it accepts must export, import into a fresh document and export again to the same bytes.
pub fn check_imports(data: &[u8]) {
    use loro_sansio::server::docs::{EloDoc, Ephemeral};
    use loro_sansio::server::RoomDoc;
    let fresh: [fn() -> Box<dyn RoomDoc>; 3] =
        [|| Box::new(UpdateLog::new()), || Box::new(Ephemeral::persisted()), || Box::new(EloDoc::new())];
    for make in fresh {
        let mut doc = make();
        if doc.import(data).is_err() {
            assert_eq!(doc.stored_bytes(), 0, "a refused import leaves the document empty");
            continue;
        }
        let exported = doc.export().expect("persistent documents export");
        let mut again = make();
        again.import(&exported).expect("a document's own export imports");
        assert_eq!(again.export().as_ref(), Some(&exported), "export -> import -> export is the identity");
        assert_eq!(again.stored_bytes(), doc.stored_bytes());
    }
}
