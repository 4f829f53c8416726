//! Client and server sessions talking in memory, in virtual time, with an in-memory store.
//!
//! `cargo run --example in_memory`
//!
//! Three clients connect to one server through an in-memory "network" that moves frames between the sessions'
//! `poll_transmit` and `handle_frame`. The application around the server authenticates joins by token, keeps an
//! in-memory store (snapshot + update log per room) that answers load, persist and save events, and the one
//! around each client answers join-parameter requests. The script: joins (one read-only, one refused), updates
//! with durable acks, a 600 KB update that is fragmented, presence in an ephemeral room, a server crash and
//! restart from the store while clients keep editing offline, automatic reconnects and rejoins, and
//! convergence. Every line printed is something a session emitted. Same seed, same output.

use std::collections::BTreeMap;

use bytes::Bytes;
use chacha20::rand_core::SeedableRng;
use chacha20::ChaCha8Rng;
use loro_sansio::client::{ClientConfig, ClientEvent, ClientSession, JoinParams};
use loro_sansio::server::{AckMode, BuiltinDocs, ConnId, LoadedRoom, Server, ServerConfig, ServerEvent};
use loro_sansio::wire::{CrdtType, JoinErrorCode, Permission};
use loro_sansio::{Instant, RoomKey, Transmit};

/// What the server's application persisted for one room: the last snapshot and the updates after it.
#[derive(Clone, Default)]
struct StoredRoom {
    snapshot: Option<Bytes>,
    /// (sequence number, update)
    log: Vec<(u64, Bytes)>,
}

/// The server application's storage.
#[derive(Default)]
struct Store {
    rooms: BTreeMap<RoomKey, StoredRoom>,
}

struct Client {
    name: &'static str,
    token: &'static str,
    session: ClientSession,
    conn: Option<ConnId>,
    /// Every update this client has seen for the notes room (its own acked ones and the ones received).
    notes: Vec<Bytes>,
}

struct World {
    now: Instant,
    server: Option<Server>,
    store: Store,
    clients: Vec<Client>,
    log_lines: usize,
}

fn notes() -> RoomKey {
    RoomKey::new(CrdtType::Loro, "notes")
}

fn new_server(seed: u64) -> Server {
    // Durable acks: a client's update is acked only once the store has it.
    let config = ServerConfig { ack_mode: AckMode::Durable, ..ServerConfig::default() };
    Server::new(config, BuiltinDocs, ChaCha8Rng::seed_from_u64(seed))
}

impl World {
    fn log(&mut self, who: &str, what: impl AsRef<str>) {
        self.log_lines += 1;
        println!("[{:>7.3}s] {who:<7} {}", self.now.as_millis() as f64 / 1000.0, what.as_ref());
    }

    /// Moves frames and answers events until nothing is left to do at the current instant.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            progressed |= self.pump_clients();
            progressed |= self.pump_server();
            if !progressed {
                return;
            }
        }
        panic!("the simulation did not settle");
    }

    fn pump_clients(&mut self) -> bool {
        let mut progressed = false;
        for i in 0..self.clients.len() {
            while let Some(t) = self.clients[i].session.poll_transmit() {
                progressed = true;
                let now = self.now;
                match t {
                    Transmit::Open => match self.server.as_mut().map(|s| s.open_connection(now)) {
                        Some(Ok(conn)) => {
                            self.clients[i].conn = Some(conn);
                            self.clients[i].session.transport_opened(now);
                        }
                        _ => self.clients[i].session.transport_closed(now, None, "connection refused"),
                    },
                    Transmit::Frame(frame) => {
                        if let (Some(server), Some(conn)) = (self.server.as_mut(), self.clients[i].conn) {
                            server.handle_frame(now, conn, frame);
                        }
                    }
                    Transmit::Close { code, reason } => {
                        if let (Some(server), Some(conn)) = (self.server.as_mut(), self.clients[i].conn.take()) {
                            server.connection_closed(now, conn);
                        }
                        let name = self.clients[i].name;
                        self.log(name, format!("closed the transport ({code}, {reason})"));
                    }
                }
            }
            while let Some(event) = self.clients[i].session.poll_event() {
                progressed = true;
                self.client_event(i, event);
            }
        }
        progressed
    }

    fn client_event(&mut self, i: usize, event: ClientEvent) {
        let now = self.now;
        let name = self.clients[i].name;
        match event {
            ClientEvent::JoinParamsNeeded { ticket, room, reason } => {
                // A real app would fetch a fresh token here (possibly later); this one answers at once.
                let auth = Bytes::from_static(self.clients[i].token.as_bytes());
                self.log(name, format!("joins {room} ({reason:?})"));
                self.clients[i]
                    .session
                    .provide_join_params(now, ticket, JoinParams { auth, version: Bytes::new() })
                    .unwrap();
            }
            ClientEvent::Joined { room, permission, rejoin, .. } => {
                self.log(
                    name,
                    format!("{} {room} with {permission} permission", if rejoin { "rejoined" } else { "joined" }),
                );
            }
            ClientEvent::JoinFailed { room, failure, .. } => {
                self.log(name, format!("could not join {room}: {failure:?}"))
            }
            ClientEvent::Updates { room, updates, .. } => {
                let sizes: Vec<usize> = updates.iter().map(|u| u.len()).collect();
                self.log(name, format!("received {} update(s) in {room}, sizes {sizes:?}", updates.len()));
                if room == notes() {
                    for u in updates {
                        if !self.clients[i].notes.contains(&u) {
                            self.clients[i].notes.push(u);
                        }
                    }
                }
            }
            ClientEvent::Acked { room, send, range, .. } => {
                self.log(name, format!("{send} acked by the server ({} update(s) in {room})", range.len()))
            }
            ClientEvent::UpdateRejected { room, status, .. } => {
                self.log(name, format!("update rejected in {room}: {status}"))
            }
            ClientEvent::UpdatesDropped { room, reason, .. } => {
                self.log(name, format!("updates dropped in {room}: {reason:?}"))
            }
            ClientEvent::ConnectionStatus { status } => self.log(name, format!("connection {status:?}")),
            ClientEvent::TransportClosed { code, reason, next, .. } => {
                self.log(name, format!("transport closed ({code:?}, {reason:?}); next attempt {next:?}"))
            }
            ClientEvent::BatchResent { batch_id, .. } => self.log(name, format!("resent batch {batch_id}")),
            _ => {}
        }
    }

    fn pump_server(&mut self) -> bool {
        let Some(server) = self.server.as_mut() else { return false };
        let now = self.now;
        let mut progressed = false;
        let mut lines = Vec::new();
        while let Some(event) = server.poll_event() {
            progressed = true;
            match event {
                ServerEvent::JoinRequested { ticket, room, auth, .. } => {
                    // Authentication: the token decides the permission.
                    match &auth[..] {
                        b"alice-token" => server.accept_join(now, ticket, Permission::Write, Bytes::new()).unwrap(),
                        b"bob-token" => server.accept_join(now, ticket, Permission::Read, Bytes::new()).unwrap(),
                        _ => {
                            lines.push(format!("refuses a join of {room}: bad token"));
                            server
                                .reject_join(now, ticket, JoinErrorCode::AUTH_FAILED, "Authentication failed", None)
                                .unwrap();
                        }
                    }
                }
                ServerEvent::LoadRoom { ticket, room } => {
                    let StoredRoom { snapshot, log } = self.store.rooms.get(&room).cloned().unwrap_or_default();
                    let last_seq = log.last().map_or(0, |(s, _)| *s);
                    lines.push(format!(
                        "loads {room}: snapshot {}, {} logged update(s)",
                        snapshot.is_some(),
                        log.len()
                    ));
                    let updates = log.into_iter().map(|(_, u)| u).collect();
                    server.room_loaded(now, ticket, Ok(LoadedRoom { snapshot, updates, last_seq })).unwrap();
                }
                ServerEvent::PersistUpdates { ticket, room, first_seq, updates } => {
                    lines.push(format!("persists {} update(s) of {room} from seq {first_seq}", updates.len()));
                    let entry = self.store.rooms.entry(room).or_default();
                    entry.log.extend(updates.into_iter().enumerate().map(|(k, u)| (first_seq + k as u64, u)));
                    server.persist_done(now, ticket, Ok(())).unwrap();
                }
                ServerEvent::SaveRoom { ticket, room, snapshot, seq, reason } => {
                    lines.push(format!("saves a {} B snapshot of {room} up to seq {seq} ({reason:?})", snapshot.len()));
                    let entry = self.store.rooms.entry(room).or_default();
                    entry.snapshot = Some(snapshot);
                    entry.log.retain(|(s, _)| *s > seq);
                    server.save_done(now, ticket, Ok(())).unwrap();
                }
                ServerEvent::RoomUnloaded { room } => lines.push(format!("unloaded {room}")),
                _ => {}
            }
        }
        // Deliver every queued transmit to its client.
        while let Some(conn) = server.poll_ready() {
            while let Some(t) = server.poll_transmit(conn) {
                progressed = true;
                let Some(client) = self.clients.iter_mut().find(|c| c.conn == Some(conn)) else { continue };
                match t {
                    Transmit::Frame(frame) => client.session.handle_frame(now, frame),
                    Transmit::Close { code, reason } => {
                        client.conn = None;
                        client.session.transport_closed(now, Some(code), &reason);
                        server.connection_closed(now, conn);
                    }
                    Transmit::Open => {}
                }
            }
        }
        for line in lines {
            self.log("server", line);
        }
        progressed
    }

    /// Advances virtual time to the next deadline of any session (at most `max_ms` ahead) and fires it.
    fn advance(&mut self, max_ms: u64) {
        let limit = Instant::from_millis(self.now.as_millis() + max_ms);
        let next = self
            .clients
            .iter()
            .filter_map(|c| c.session.poll_timeout())
            .chain(self.server.as_ref().and_then(|s| s.poll_timeout()))
            .min()
            .unwrap_or(limit)
            .min(limit)
            .max(self.now);
        self.now = next;
        for c in &mut self.clients {
            c.session.handle_timeout(next);
        }
        if let Some(s) = self.server.as_mut() {
            s.handle_timeout(next);
        }
        self.settle();
    }

    fn run_for(&mut self, ms: u64) {
        let end = self.now.as_millis() + ms;
        while self.now.as_millis() < end {
            self.advance(end - self.now.as_millis());
        }
    }

    fn edit(&mut self, i: usize, room: &RoomKey, update: Bytes) {
        let now = self.now;
        let name = self.clients[i].name;
        match self.clients[i].session.send(now, room, vec![update.clone()]) {
            Ok(id) => {
                self.log(name, format!("edits {room} ({} B, {id})", update.len()));
                if *room == notes() {
                    self.clients[i].notes.push(update);
                }
            }
            Err(e) => self.log(name, format!("cannot edit {room}: {e}")),
        }
        self.settle();
    }
}

fn main() {
    let mut world = World {
        now: Instant::ZERO,
        server: Some(new_server(1)),
        store: Store::default(),
        clients: Vec::new(),
        log_lines: 0,
    };
    for (k, (name, token)) in
        [("alice", "alice-token"), ("bob", "bob-token"), ("mallory", "wrong")].into_iter().enumerate()
    {
        let session = ClientSession::new(ClientConfig::default(), ChaCha8Rng::seed_from_u64(100 + k as u64));
        world.clients.push(Client { name, token, session, conn: None, notes: Vec::new() });
    }
    let presence = RoomKey::new(CrdtType::LoroEphemeral, "notes");

    println!("== joins: alice writes, bob reads, mallory is refused");
    for i in 0..3 {
        let now = world.now;
        world.clients[i].session.connect(now).unwrap();
        world.clients[i].session.join(now, CrdtType::Loro, "notes").unwrap();
    }
    world.clients[0].session.join(world.now, CrdtType::LoroEphemeral, "notes").unwrap();
    world.clients[1].session.join(world.now, CrdtType::LoroEphemeral, "notes").unwrap();
    world.settle();

    println!("\n== updates: durable acks, relay, a refused read-only edit");
    world.edit(0, &notes(), Bytes::from_static(b"hello"));
    world.edit(0, &notes(), Bytes::from_static(b"world"));
    world.edit(1, &notes(), Bytes::from_static(b"bob was here"));

    println!("\n== a 600 KB update travels as fragments both ways");
    world.edit(0, &notes(), Bytes::from(vec![42u8; 600_000]));
    world.run_for(100);

    println!("\n== presence in an ephemeral room (relayed, never persisted)");
    world.edit(0, &presence, Bytes::from_static(b"alice: cursor at 5"));

    println!("\n== the server crashes; alice keeps editing offline");
    world.server = None;
    for c in &mut world.clients {
        if c.conn.take().is_some() {
            c.session.transport_closed(world.now, None, "connection lost");
        }
    }
    world.settle();
    world.edit(0, &notes(), Bytes::from_static(b"written while the server was down"));
    world.run_for(2_000);

    println!("\n== a new server process starts from the store; clients reconnect and rejoin on their own");
    world.server = Some(new_server(2));
    world.run_for(20_000);

    println!("\n== a late joiner gets everything from the store");
    world.clients[2].token = "bob-token";
    let now = world.now;
    world.clients[2].session.join(now, CrdtType::Loro, "notes").unwrap();
    world.settle();
    world.run_for(65_000);

    let alice: Vec<usize> = world.clients[0].notes.iter().map(|u| u.len()).collect();
    let bob: Vec<usize> = world.clients[1].notes.iter().map(|u| u.len()).collect();
    let late: Vec<usize> = world.clients[2].notes.iter().map(|u| u.len()).collect();
    println!("\n== result");
    println!("alice has {} updates {alice:?}", alice.len());
    println!("bob   has {} updates {bob:?}", bob.len());
    println!("late  has {} updates {late:?}", late.len());
    let mut a = world.clients[0].notes.clone();
    let mut b = world.clients[1].notes.clone();
    let mut c = world.clients[2].notes.clone();
    a.sort();
    b.sort();
    c.sort();
    assert_eq!(a, b, "alice and bob converged");
    assert_eq!(a, c, "the late joiner converged");
    let counters = world.server.as_ref().unwrap().counters();
    println!(
        "server (after restart): {} frames in, {} frames out, {} updates accepted, {} saves",
        counters.frames_in, counters.frames_out, counters.updates_accepted, counters.saves_requested
    );
    println!("converged: every client holds the same {} updates ({} lines of events above)", a.len(), world.log_lines);
}
