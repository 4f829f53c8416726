//! ServerSession and room hub: every behaviour through the public API, virtual time only.
//! Each test is a clause in spec/conformance.md (section S).

mod server_support;

use bytes::Bytes;
use loro_sansio::fragment::Fragmenter;
use loro_sansio::server::docs::UpdateLog;
use loro_sansio::server::{
    AckMode, Applied, BackfillError, CloseCause, DocError, ImportError, LoadError, LoadedRoom, RateLimit, RoomDoc,
    SaveReason, ServerConfig, ServerError, ServerEvent, StorageError,
};
use loro_sansio::wire::{
    AckStatus, BatchId, Body, CrdtType, Frame, JoinErrorCode, Message, OwnedBody, Permission, RoomErrorCode,
};
use loro_sansio::{CloseCode, RoomKey, Transmit};
use server_support::{acks, doc_updates, key, Harness, Out};

const LOR: CrdtType = CrdtType::Loro;

fn after_apply() -> ServerConfig {
    ServerConfig { ack_mode: AckMode::AfterApply, ..ServerConfig::default() }
}

/// A document that rejects updates starting with 0xFF and answers version `v?` with VersionUnknown.
struct Picky(UpdateLog);

impl RoomDoc for Picky {
    fn version(&self) -> Bytes {
        Bytes::from_static(b"server-v")
    }
    fn apply(&mut self, updates: &[Bytes], limit: usize) -> Result<Applied, DocError> {
        if updates.iter().any(|u| u.first() == Some(&0xff)) {
            return Err(DocError::Invalid);
        }
        self.0.apply(updates, limit)
    }
    fn backfill(&self, v: &[u8]) -> Result<Vec<Bytes>, BackfillError> {
        if v == b"v?" {
            return Err(BackfillError::VersionUnknown);
        }
        self.0.backfill(v)
    }
    fn is_persistent(&self) -> bool {
        false
    }
    fn export(&self) -> Option<Bytes> {
        None
    }
    fn import(&mut self, s: &[u8]) -> Result<(), ImportError> {
        self.0.import(s)
    }
    fn stored_bytes(&self) -> usize {
        self.0.stored_bytes()
    }
}

fn picky(config: ServerConfig) -> Harness {
    Harness::with_docs(config, |_: &RoomKey| Some(Box::new(Picky(UpdateLog::new())) as Box<dyn RoomDoc>))
}

// ------------------------------------------------------------------------------------------------ keepalive

#[test]
fn ping_text_frame_gets_pong() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.send_text(c, "ping");
    assert_eq!(h.recv(c), vec![Out::Text("pong".into())]);
    h.send_text(c, "pong");
    assert!(h.recv(c).is_empty(), "a pong needs no answer");
    assert_eq!(h.server.counters().pings, 1);
}

#[test]
fn other_text_frames_are_ignored_and_counted() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.send_text(c, "hello");
    h.send_text(c, "PING");
    assert!(h.recv(c).is_empty());
    assert_eq!(h.server.counters().unknown_text_frames, 2);
    assert!(h.server.session(c).is_some_and(|s| !s.is_closing()));
}

#[test]
fn idle_connection_is_closed_exactly_at_the_timeout() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.advance(60_000);
    h.send_text(c, "ping");
    h.recv(c);
    h.advance(119_999);
    assert!(h.recv(c).is_empty(), "not one millisecond early");
    h.advance(1);
    assert_eq!(h.recv(c), vec![Out::Close(CloseCode::GOING_AWAY, "idle_timeout".into())]);
    assert_eq!(h.server.counters().closed_idle, 1);
}

// ------------------------------------------------------------------------------------------------ connections

#[test]
fn connection_limit_refuses_extra_connections() {
    let mut config = ServerConfig::default();
    config.limits.max_connections = 2;
    let mut h = Harness::new(config);
    let a = h.connect();
    h.connect();
    assert_eq!(h.server.open_connection(h.now), Err(ServerError::TooManyConnections(2)));
    h.server.connection_closed(h.now, a);
    assert!(h.server.open_connection(h.now).is_ok());
    assert_eq!(h.server.counters().connections_refused, 1);
}

#[test]
fn undecodable_frame_closes_that_connection_with_1002_and_others_keep_working() {
    let mut h = Harness::new(after_apply());
    let bad = h.connect();
    let good = h.connect();
    h.join(good, LOR, "r", Permission::Write);
    // The 13-byte frame that aborts the official Rust decoder (count of 2^40 updates).
    h.frame(
        bad,
        Frame::Binary(Bytes::from_static(&[
            0x25, 0x4c, 0x4f, 0x52, 0x01, 0x72, 0x03, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20,
        ])),
    );
    let out = h.recv(bad);
    assert!(
        matches!(&out[..], [Out::Close(CloseCode::PROTOCOL_ERROR, reason)] if reason.starts_with("protocol error"))
    );
    assert_eq!(h.server.counters().decode_errors, 1);
    // Input after the close is ignored.
    h.send_text(bad, "ping");
    assert!(h.recv(bad).is_empty());
    h.send_update(good, LOR, "r", 1, &[b"x"]);
    assert_eq!(acks(&h.recv_msgs(good)), vec![(1, AckStatus::OK)]);
}

#[test]
fn oversized_frame_closes_with_1009() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.frame(c, Frame::Binary(Bytes::from(vec![0u8; 262_145])));
    assert_eq!(h.recv(c), vec![Out::Close(CloseCode::TOO_BIG, "frame_too_large".into())]);
    assert_eq!(h.server.counters().closed_too_big, 1);
}

#[test]
fn server_only_messages_from_a_client_are_ignored_and_counted() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.send(
        c,
        &Message {
            crdt: LOR,
            room: "r",
            body: Body::JoinResponseOk { permission: Permission::Write, version: b"", extra: b"" },
        },
    );
    h.send(c, &Message { crdt: LOR, room: "r", body: Body::RoomError { code: RoomErrorCode::EVICTED, message: "x" } });
    assert!(h.recv(c).is_empty());
    assert_eq!(h.server.counters().unexpected_messages, 2);
    assert!(!h.server.session(c).unwrap().is_closing(), "the official TS server crashes here; we keep serving");
}

#[test]
fn client_join_error_is_treated_as_leaving_the_room() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "r", Permission::Write);
    h.join(b, LOR, "r", Permission::Write);
    h.send(
        a,
        &Message {
            crdt: LOR,
            room: "r",
            body: Body::JoinError {
                code: JoinErrorCode::APP_ERROR,
                message: "adaptor failed",
                receiver_version: None,
                app_code: None,
            },
        },
    );
    assert_eq!(h.server.room_members(&key(LOR, "r")).unwrap(), &[b]);
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::Left { conn, .. } if *conn == a)));
    assert_eq!(h.server.counters().client_join_errors, 1);
}

// ------------------------------------------------------------------------------------------------ joins

#[test]
fn join_request_becomes_an_event_with_ticket_auth_and_version() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.send_join(c, LOR, "doc", b"secret", b"v1");
    let events = h.events();
    match &events[..] {
        [ServerEvent::JoinRequested { conn, room, auth, version, rejoin, .. }] => {
            assert_eq!(*conn, c);
            assert_eq!(room, &key(LOR, "doc"));
            assert_eq!(&auth[..], b"secret");
            assert_eq!(&version[..], b"v1");
            assert!(!rejoin);
        }
        other => panic!("unexpected events {other:?}"),
    }
    assert!(h.recv(c).is_empty(), "nothing is answered before the app decides");
}

#[test]
fn authentication_is_decided_before_anything_is_loaded() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.send_join(c, LOR, "doc", b"bad", b"");
    let ticket = h.join_ticket();
    assert!(h.server.rooms().next().is_none(), "no room before the decision");
    h.server.reject_join(h.now, ticket, JoinErrorCode::AUTH_FAILED, "Authentication failed", None).unwrap();
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::LoadRoom { .. })));
    let msgs = h.recv_msgs(c);
    assert!(matches!(&msgs[0].body, OwnedBody::JoinError { code: JoinErrorCode::AUTH_FAILED, .. }));
    assert!(h.server.rooms().next().is_none());
}

#[test]
fn accepted_join_sends_ok_with_permission_version_extra_then_backfill() {
    let mut h = Harness::new(after_apply());
    let writer = h.connect();
    h.join(writer, LOR, "doc", Permission::Write);
    h.send_update(writer, LOR, "doc", 1, &[b"one", b"two"]);
    h.recv(writer);
    let reader = h.connect();
    h.send_join(reader, LOR, "doc", b"", b"");
    let ticket = h.join_ticket();
    h.server.accept_join(h.now, ticket, Permission::Read, Bytes::from_static(b"meta")).unwrap();
    let msgs = h.recv_msgs(reader);
    match &msgs[0].body {
        OwnedBody::JoinResponseOk { permission, version, extra } => {
            assert_eq!(*permission, Permission::Read);
            assert!(version.is_empty(), "an update log has no version");
            assert_eq!(&extra[..], b"meta");
        }
        other => panic!("expected JoinResponseOk, got {other:?}"),
    }
    assert_eq!(doc_updates(&msgs[1..]), vec![b"one".to_vec(), b"two".to_vec()]);
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::Joined { conn, .. } if *conn == reader)));
}

#[test]
fn reject_join_carries_code_message_and_app_code() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.send_join(c, CrdtType::Yjs, "room-1234", b"", b"");
    let t = h.join_ticket();
    h.server
        .reject_join(h.now, t, JoinErrorCode::APP_ERROR, "Application specific error", Some("quota_exceeded"))
        .unwrap();
    let msgs = h.recv_msgs(c);
    match &msgs[0].body {
        OwnedBody::JoinError { code, message, app_code, receiver_version } => {
            assert_eq!(*code, JoinErrorCode::APP_ERROR);
            assert_eq!(message.as_str(), "Application specific error");
            assert_eq!(app_code.as_ref().map(|a| a.as_str()), Some("quota_exceeded"));
            assert!(receiver_version.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.server.reject_join(h.now, t, JoinErrorCode::UNKNOWN, "again", None),
        Err(ServerError::UnknownTicket(t.get()))
    );
}

#[test]
fn decisions_can_come_later_and_in_any_order_without_blocking_others() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    let b = h.connect();
    h.send_join(a, LOR, "one", b"", b"");
    let ta = h.join_ticket();
    h.send_join(b, LOR, "two", b"", b"");
    let tb = h.join_ticket();
    h.advance(5_000);
    h.server.accept_join(h.now, tb, Permission::Write, Bytes::new()).unwrap();
    for e in h.events() {
        if let ServerEvent::LoadRoom { ticket, .. } = e {
            h.server.room_loaded(h.now, ticket, Ok(LoadedRoom::default())).unwrap();
        }
    }
    assert!(matches!(h.recv_msgs(b)[0].body, OwnedBody::JoinResponseOk { .. }));
    assert!(h.recv_msgs(a).is_empty(), "a is still waiting");
    h.server.accept_join(h.now, ta, Permission::Write, Bytes::new()).unwrap();
    for e in h.events() {
        if let ServerEvent::LoadRoom { ticket, .. } = e {
            h.server.room_loaded(h.now, ticket, Ok(LoadedRoom::default())).unwrap();
        }
    }
    assert!(matches!(h.recv_msgs(a)[0].body, OwnedBody::JoinResponseOk { .. }));
}

#[test]
fn racing_first_joins_trigger_one_load() {
    let mut h = Harness::default_config();
    let conns: Vec<_> = (0..5).map(|_| h.connect()).collect();
    let mut tickets = Vec::new();
    for &c in &conns {
        h.send_join(c, LOR, "doc", b"", b"");
        tickets.push(h.join_ticket());
    }
    for t in tickets {
        h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
    }
    let loads: Vec<_> = h.events().into_iter().filter(|e| matches!(e, ServerEvent::LoadRoom { .. })).collect();
    assert_eq!(loads.len(), 1, "the official TS server loads once per racing join");
    for &c in &conns {
        assert!(h.recv_msgs(c).is_empty(), "joins wait for the load");
    }
    let ServerEvent::LoadRoom { ticket, .. } = loads[0] else { unreachable!() };
    h.server
        .room_loaded(
            h.now,
            ticket,
            Ok(LoadedRoom { snapshot: None, updates: vec![Bytes::from_static(b"stored")], last_seq: 1 }),
        )
        .unwrap();
    for &c in &conns {
        let msgs = h.recv_msgs(c);
        assert!(matches!(msgs[0].body, OwnedBody::JoinResponseOk { .. }));
        assert_eq!(doc_updates(&msgs), vec![b"stored".to_vec()]);
    }
}

#[test]
fn failed_load_fails_the_joins_and_never_starts_an_empty_room() {
    let mut h = Harness::default_config();
    let a = h.connect();
    let b = h.connect();
    let mut tickets = Vec::new();
    for c in [a, b] {
        h.send_join(c, LOR, "doc", b"", b"");
        tickets.push(h.join_ticket());
    }
    for t in tickets {
        h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
    }
    let load = h
        .events()
        .into_iter()
        .find_map(|e| if let ServerEvent::LoadRoom { ticket, .. } = e { Some(ticket) } else { None })
        .unwrap();
    h.server.room_loaded(h.now, load, Err(LoadError)).unwrap();
    for c in [a, b] {
        let msgs = h.recv_msgs(c);
        assert!(
            matches!(&msgs[..], [m] if matches!(&m.body, OwnedBody::JoinError { code: JoinErrorCode::UNKNOWN, message, .. } if message == "room_load_failed"))
        );
        // An update now is refused: there is no room a later save could write over stored data with.
        h.send_update(c, LOR, "doc", 9, &[b"x"]);
        assert_eq!(acks(&h.recv_msgs(c)), vec![(9, AckStatus::PERMISSION_DENIED)]);
    }
    assert!(h.server.rooms().next().is_none());
    assert_eq!(h.server.counters().loads_failed, 1);
    h.advance(600_000);
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::SaveRoom { .. })));
}

#[test]
fn loaded_snapshot_and_log_are_restored_and_sequence_numbers_continue() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.send_join(c, LOR, "doc", b"", b"");
    let t = h.join_ticket();
    h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
    let load = h
        .events()
        .into_iter()
        .find_map(|e| if let ServerEvent::LoadRoom { ticket, .. } = e { Some(ticket) } else { None })
        .unwrap();
    let mut log = UpdateLog::new();
    log.apply(&[Bytes::from_static(b"a"), Bytes::from_static(b"b")], usize::MAX).unwrap();
    let snapshot = log.export();
    h.server
        .room_loaded(h.now, load, Ok(LoadedRoom { snapshot, updates: vec![Bytes::from_static(b"c")], last_seq: 3 }))
        .unwrap();
    let msgs = h.recv_msgs(c);
    assert_eq!(doc_updates(&msgs), vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    h.send_update(c, LOR, "doc", 1, &[b"d"]);
    let persisted = h.events().into_iter().find_map(|e| {
        if let ServerEvent::PersistUpdates { first_seq, .. } = e {
            Some(first_seq)
        } else {
            None
        }
    });
    assert_eq!(persisted, Some(4));
}

#[test]
fn second_join_request_for_a_joined_room_is_idempotent() {
    let mut h = Harness::new(after_apply());
    let c = h.connect();
    h.join(c, LOR, "doc", Permission::Write);
    h.send_update(c, LOR, "doc", 1, &[b"u"]);
    h.recv(c);
    h.send_join(c, LOR, "doc", b"", b"");
    let events = h.events();
    let ticket = events
        .iter()
        .find_map(
            |e| if let ServerEvent::JoinRequested { ticket, rejoin: true, .. } = e { Some(*ticket) } else { None },
        )
        .expect("a rejoin event");
    assert_eq!(h.server.room_members(&key(LOR, "doc")).unwrap(), &[c], "still a member while the app decides");
    h.server.accept_join(h.now, ticket, Permission::Read, Bytes::new()).unwrap();
    let msgs = h.recv_msgs(c);
    assert!(matches!(msgs[0].body, OwnedBody::JoinResponseOk { permission: Permission::Read, .. }));
    assert_eq!(doc_updates(&msgs), vec![b"u".to_vec()]);
    assert_eq!(h.server.room_members(&key(LOR, "doc")).unwrap(), &[c], "one membership, not two");
    h.send_update(c, LOR, "doc", 2, &[b"v"]);
    assert_eq!(acks(&h.recv_msgs(c)), vec![(2, AckStatus::PERMISSION_DENIED)], "the new permission applies");
}

#[test]
fn backfill_larger_than_a_frame_is_fragmented() {
    let mut h = Harness::new(after_apply());
    let w = h.connect();
    h.join(w, LOR, "big", Permission::Write);
    let big = vec![7u8; 700_000];
    let frames: Vec<Bytes> = {
        let f = Fragmenter::new();
        let updates = [Bytes::from(big.clone())];
        let plan: Vec<_> = f.plan(3, &updates).collect();
        f.frames(LOR, "big", BatchId::from_u64(5), plan[0], &updates).unwrap().collect()
    };
    for fr in frames {
        h.frame(w, Frame::Binary(fr));
    }
    assert_eq!(acks(&h.recv_msgs(w)), vec![(5, AckStatus::OK)]);
    let r = h.connect();
    let msgs = h.join(r, LOR, "big", Permission::Read);
    assert!(msgs.iter().all(|m| m.as_message().encoded_len() <= 262_144));
    let header = msgs.iter().find_map(|m| match &m.body {
        OwnedBody::FragmentHeader { fragment_count, total_size, .. } => Some((*fragment_count, *total_size)),
        _ => None,
    });
    assert_eq!(header, Some((3, 700_000)), "neither official server can serve a document over 256 KiB");
    let mut data = Vec::new();
    for m in &msgs {
        if let OwnedBody::Fragment { data: d, .. } = &m.body {
            data.extend_from_slice(d);
        }
    }
    assert_eq!(data, big);
}

#[test]
fn backfill_is_streamed_as_the_queue_drains() {
    let mut config = after_apply();
    config.limits.backfill_watermark = 300_000;
    let mut h = Harness::new(config);
    let w = h.connect();
    h.join(w, LOR, "doc", Permission::Write);
    for i in 0..20u64 {
        let update = vec![i as u8; 200_000];
        h.send_update(w, LOR, "doc", i, &[&update]);
    }
    h.recv(w);
    let r = h.connect();
    h.send_join(r, LOR, "doc", b"", b"");
    let t = h.join_ticket();
    h.server.accept_join(h.now, t, Permission::Read, Bytes::new()).unwrap();
    assert!(h.server.backlog(r) < 300_000 + 262_144, "4 MB of history is not queued at once: {}", h.server.backlog(r));
    let mut total = 0;
    let mut peak = 0;
    while let Some(t) = h.server.poll_transmit(r) {
        if let Transmit::Frame(f) = t {
            total += f.len();
        }
        peak = peak.max(h.server.backlog(r));
    }
    assert!(total > 4_000_000);
    assert!(peak < 300_000 + 262_144);
}

#[test]
fn client_fragment_timeout_for_a_backfill_batch_is_resent_once() {
    let mut h = Harness::new(after_apply());
    let w = h.connect();
    h.join(w, LOR, "big", Permission::Write);
    let updates = [Bytes::from(vec![1u8; 300_000])];
    let f = Fragmenter::new();
    let plan: Vec<_> = f.plan(3, &updates).collect();
    for fr in f.frames(LOR, "big", BatchId::from_u64(1), plan[0], &updates).unwrap() {
        h.frame(w, Frame::Binary(fr));
    }
    h.recv(w);
    let r = h.connect();
    let msgs = h.join(r, LOR, "big", Permission::Read);
    let batch = msgs
        .iter()
        .find_map(|m| if let OwnedBody::FragmentHeader { batch_id, .. } = m.body { Some(batch_id) } else { None })
        .unwrap();
    let nack =
        Message { crdt: LOR, room: "big", body: Body::Ack { ref_id: batch, status: AckStatus::FRAGMENT_TIMEOUT } };
    h.send(r, &nack);
    let resent = h.recv_msgs(r);
    assert_eq!(resent.len(), 3, "header and both fragments again");
    assert!(matches!(resent[0].body, OwnedBody::FragmentHeader { batch_id, .. } if batch_id == batch));
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::ClientAck { resent: true, .. })));
    h.send(r, &nack);
    assert!(h.recv_msgs(r).is_empty(), "only once");
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, ServerEvent::ClientAck { resent: false, status: AckStatus::FRAGMENT_TIMEOUT, .. })));
    assert_eq!(h.server.counters().fragment_resends, 1);
}

#[test]
fn version_the_document_cannot_read_gets_version_unknown_with_the_server_version() {
    let mut h = picky(ServerConfig::default());
    let c = h.connect();
    h.send_join(c, LOR, "doc", b"", b"v?");
    let t = h.join_ticket();
    h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
    let msgs = h.recv_msgs(c);
    match &msgs[..] {
        [m] => match &m.body {
            OwnedBody::JoinError { code, receiver_version, .. } => {
                assert_eq!(*code, JoinErrorCode::VERSION_UNKNOWN);
                assert_eq!(receiver_version.as_deref(), Some(&b"server-v"[..]));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert!(h.server.room_members(&key(LOR, "doc")).unwrap().is_empty());
}

#[test]
fn unsupported_crdt_type_is_refused_at_join() {
    let mut h = Harness::with_docs(ServerConfig::default(), |k: &RoomKey| {
        (k.crdt == LOR).then(|| Box::new(UpdateLog::new()) as Box<dyn RoomDoc>)
    });
    let c = h.connect();
    h.send_join(c, CrdtType::Yjs, "doc", b"", b"");
    let t = h.join_ticket();
    h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
    assert!(
        matches!(&h.recv_msgs(c)[0].body, OwnedBody::JoinError { code: JoinErrorCode::UNKNOWN, message, .. } if message == "unsupported_crdt")
    );
}

#[test]
fn join_limits_answer_with_app_error_codes() {
    let mut config = after_apply();
    config.limits.max_rooms_per_connection = 1;
    config.limits.max_members_per_room = 1;
    config.limits.max_rooms = 2;
    let mut h = Harness::new(config);
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "one", Permission::Write);
    let app_code = |msgs: Vec<loro_sansio::wire::OwnedMessage>| match &msgs[0].body {
        OwnedBody::JoinError { code: JoinErrorCode::APP_ERROR, app_code, .. } => app_code.as_ref().unwrap().to_string(),
        other => panic!("{other:?}"),
    };
    h.send_join(a, LOR, "two", b"", b"");
    assert_eq!(app_code(h.recv_msgs(a)), "rooms_per_connection");
    h.send_join(b, LOR, "one", b"", b"");
    let t = h.join_ticket();
    h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
    assert_eq!(app_code(h.recv_msgs(b)), "room_full");
    h.join(b, LOR, "two", Permission::Write);
    let c = h.connect();
    h.send_join(c, LOR, "three", b"", b"");
    let t = h.join_ticket();
    h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
    assert_eq!(app_code(h.recv_msgs(c)), "room_limit");
}

#[test]
fn pending_ticket_limit_bounds_undecided_joins() {
    let mut config = ServerConfig::default();
    config.limits.max_pending_tickets_per_connection = 2;
    let mut h = Harness::new(config);
    let c = h.connect();
    for room in ["a", "b", "c"] {
        h.send_join(c, LOR, room, b"", b"");
    }
    let events = h.events();
    assert_eq!(events.iter().filter(|e| matches!(e, ServerEvent::JoinRequested { .. })).count(), 2);
    let msgs = h.recv_msgs(c);
    assert!(
        matches!(&msgs[..], [m] if matches!(&m.body, OwnedBody::JoinError { app_code: Some(a), .. } if a == "too_many_pending"))
    );
}

// ------------------------------------------------------------------------------------------------ updates

#[test]
fn update_from_a_non_member_gets_permission_denied() {
    let mut h = Harness::default_config();
    let c = h.connect();
    h.send_update(c, LOR, "doc", 3, &[b"x"]);
    assert_eq!(acks(&h.recv_msgs(c)), vec![(3, AckStatus::PERMISSION_DENIED)]);
}

#[test]
fn read_only_member_receives_updates_but_cannot_send() {
    let mut h = Harness::new(after_apply());
    let w = h.connect();
    let r = h.connect();
    h.join(w, LOR, "doc", Permission::Write);
    h.join(r, LOR, "doc", Permission::Read);
    h.send_update(w, LOR, "doc", 1, &[b"hello"]);
    assert_eq!(doc_updates(&h.recv_msgs(r)), vec![b"hello".to_vec()]);
    h.send_update(r, LOR, "doc", 2, &[b"nope"]);
    assert_eq!(acks(&h.recv_msgs(r)), vec![(2, AckStatus::PERMISSION_DENIED)]);
    assert!(h.recv_msgs(w).iter().all(|m| !matches!(m.body, OwnedBody::DocUpdate { .. })));
}

#[test]
fn update_rejected_by_the_document_is_neither_stored_nor_relayed() {
    let mut h = picky(after_apply());
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.join(b, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"ok", b"\xffbad"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::INVALID_UPDATE)]);
    assert!(h.recv_msgs(b).is_empty());
    assert_eq!(h.server.room_doc(&key(LOR, "doc")).unwrap().stored_bytes(), 0, "all or nothing");
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::UpdateAccepted { .. })));
}

#[test]
fn accepted_update_is_relayed_once_encoded_with_the_senders_batch_id_excluding_the_sender() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    let b = h.connect();
    let c = h.connect();
    for x in [a, b, c] {
        h.join(x, LOR, "doc", Permission::Write);
    }
    h.send_update(a, LOR, "doc", 0xabcd, &[b"u1", b"u2"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(0xabcd, AckStatus::OK)]);
    let tb = h.server.poll_transmit(b).unwrap();
    let tc = h.server.poll_transmit(c).unwrap();
    let (Transmit::Frame(Frame::Binary(fb)), Transmit::Frame(Frame::Binary(fc))) = (tb, tc) else { panic!() };
    assert_eq!(fb.as_ptr(), fc.as_ptr(), "one buffer shared by every recipient");
    let m = Message::decode(&fb).unwrap();
    assert!(matches!(m.body, Body::DocUpdate { batch_id, .. } if batch_id == BatchId::from_u64(0xabcd)));
    let events = h.events();
    assert!(events.iter().any(|e| matches!(e, ServerEvent::UpdateAccepted { conn: Some(x), batch_id, updates, first_seq: 1, .. } if *x == a && batch_id.to_u64() == 0xabcd && updates.len() == 2)));
}

#[test]
fn durable_ack_waits_for_the_app_to_confirm_persistence() {
    let mut h = Harness::default_config();
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.join(b, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    assert!(acks(&h.recv_msgs(a)).is_empty(), "no Ack(ok) before persistence");
    assert_eq!(doc_updates(&h.recv_msgs(b)), vec![b"x".to_vec()], "relay does not wait");
    let ticket = h
        .events()
        .into_iter()
        .find_map(|e| match e {
            ServerEvent::PersistUpdates { ticket, updates, first_seq, .. } => {
                assert_eq!(updates, vec![Bytes::from_static(b"x")]);
                assert_eq!(first_seq, 1);
                Some(ticket)
            }
            _ => None,
        })
        .unwrap();
    h.server.persist_done(h.now, ticket, Ok(())).unwrap();
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
}

#[test]
fn updates_accepted_while_persisting_are_grouped_into_one_commit() {
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"1"]);
    let first = h
        .events()
        .into_iter()
        .find_map(|e| if let ServerEvent::PersistUpdates { ticket, .. } = e { Some(ticket) } else { None })
        .unwrap();
    for i in 2..=5u64 {
        h.send_update(a, LOR, "doc", i, &[&[b'0' + i as u8]]);
    }
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::PersistUpdates { .. })), "one commit in flight");
    h.server.persist_done(h.now, first, Ok(())).unwrap();
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
    let second: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| {
            if let ServerEvent::PersistUpdates { ticket, updates, first_seq, .. } = e {
                Some((ticket, updates.len(), first_seq))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].1, second[0].2), (4, 2));
    h.server.persist_done(h.now, second[0].0, Ok(())).unwrap();
    assert_eq!(
        acks(&h.recv_msgs(a)),
        vec![(2, AckStatus::OK), (3, AckStatus::OK), (4, AckStatus::OK), (5, AckStatus::OK)]
    );
}

#[test]
fn failed_persistence_is_retried_and_nothing_is_acked_until_it_succeeds() {
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    let t1 = h
        .events()
        .into_iter()
        .find_map(|e| if let ServerEvent::PersistUpdates { ticket, .. } = e { Some(ticket) } else { None })
        .unwrap();
    h.server.persist_done(h.now, t1, Err(StorageError)).unwrap();
    assert!(acks(&h.recv_msgs(a)).is_empty());
    h.advance(999);
    assert!(h.events().is_empty());
    h.advance(1);
    let t2 = h
        .events()
        .into_iter()
        .find_map(|e| {
            if let ServerEvent::PersistUpdates { ticket, updates, .. } = e {
                assert_eq!(updates.len(), 1);
                Some(ticket)
            } else {
                None
            }
        })
        .expect("asked again after retry_delay");
    h.server.persist_done(h.now, t2, Ok(())).unwrap();
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
    assert_eq!(h.server.counters().persists_failed, 1);
}

#[test]
fn simulated_crash_in_durable_mode_loses_no_acked_update() {
    // Storage: what the app persisted. A "crash" drops the server and restarts from storage.
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    let mut storage: Vec<Bytes> = Vec::new();
    let mut acked = Vec::new();
    for i in 1..=6u64 {
        h.send_update(a, LOR, "doc", i, &[format!("u{i}").as_bytes()]);
        // Persist only every other round (the rest are in flight at the crash).
        if i % 2 == 0 {
            for e in h.events() {
                if let ServerEvent::PersistUpdates { ticket, updates, .. } = e {
                    storage.extend(updates);
                    h.server.persist_done(h.now, ticket, Ok(())).unwrap();
                }
            }
        }
        acked.extend(acks(&h.recv_msgs(a)).into_iter().filter(|(_, s)| s.is_ok()).map(|(b, _)| b));
    }
    assert!(!acked.is_empty());
    // Crash and restart.
    let mut h2 = Harness::default_config();
    let c = h2.connect();
    h2.send_join(c, LOR, "doc", b"", b"");
    let t = h2.join_ticket();
    h2.server.accept_join(h2.now, t, Permission::Read, Bytes::new()).unwrap();
    let load = h2
        .events()
        .into_iter()
        .find_map(|e| if let ServerEvent::LoadRoom { ticket, .. } = e { Some(ticket) } else { None })
        .unwrap();
    h2.server.room_loaded(h2.now, load, Ok(LoadedRoom { snapshot: None, updates: storage, last_seq: 0 })).unwrap();
    let restored = doc_updates(&h2.recv_msgs(c));
    for b in acked {
        assert!(restored.contains(&format!("u{b}").into_bytes()), "acked update u{b} survived the crash");
    }
}

#[test]
fn after_apply_mode_acks_immediately() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::PersistUpdates { .. })));
}

#[test]
fn ephemeral_rooms_are_acked_without_persistence_and_backfilled_to_joiners() {
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, CrdtType::LoroEphemeral, "doc", Permission::Write);
    h.send_update(a, CrdtType::LoroEphemeral, "doc", 1, &[b"cursor"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::PersistUpdates { .. } | ServerEvent::LoadRoom { .. })));
    let b = h.connect();
    assert_eq!(doc_updates(&h.join(b, CrdtType::LoroEphemeral, "doc", Permission::Write)), vec![b"cursor".to_vec()]);
    h.advance(600_000);
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::SaveRoom { .. })), "%EPH is never saved");
}

#[test]
fn ephemeral_state_is_forgotten_when_the_room_empties() {
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, CrdtType::LoroEphemeral, "doc", Permission::Write);
    h.send_update(a, CrdtType::LoroEphemeral, "doc", 1, &[b"stale cursor"]);
    h.send(a, &Message { crdt: CrdtType::LoroEphemeral, room: "doc", body: Body::Leave });
    let b = h.connect();
    assert!(doc_updates(&h.join(b, CrdtType::LoroEphemeral, "doc", Permission::Write)).is_empty());
}

#[test]
fn persisted_ephemeral_rooms_are_saved() {
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, CrdtType::LoroEphemeralPersisted, "doc", Permission::Write);
    h.send_update(a, CrdtType::LoroEphemeralPersisted, "doc", 1, &[b"presence"]);
    h.persist_all();
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
    h.advance(60_000);
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::SaveRoom { reason: SaveReason::Interval, .. })));
}

#[test]
fn approval_hook_blocks_or_approves_each_update_in_arrival_order() {
    let mut config = after_apply();
    config.approve_updates = true;
    let mut h = Harness::new(config);
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.join(b, LOR, "doc", Permission::Write);
    for i in 1..=3u64 {
        h.send_update(a, LOR, "doc", i, &[&[i as u8]]);
    }
    let tickets: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| {
            if let ServerEvent::ApproveUpdate { ticket, batch_id, .. } = e {
                Some((batch_id.to_u64(), ticket))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(tickets.len(), 3);
    // Decide out of order: 3 first, then 2 (blocked), then 1.
    h.server.approve_update(h.now, tickets[2].1, Ok(())).unwrap();
    h.server.approve_update(h.now, tickets[1].1, Err(AckStatus::APP_ERROR)).unwrap();
    assert!(h.recv_msgs(a).is_empty(), "batch 1 is undecided, so nothing after it is applied yet");
    h.server.approve_update(h.now, tickets[0].1, Ok(())).unwrap();
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK), (2, AckStatus::APP_ERROR), (3, AckStatus::OK)]);
    assert_eq!(doc_updates(&h.recv_msgs(b)), vec![vec![1], vec![3]]);
}

#[test]
fn update_rate_limit_answers_rate_limited() {
    let mut config = after_apply();
    config.limits.update_rate = Some(RateLimit { per_second: 2, burst: 2 });
    let mut h = Harness::new(config);
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    for i in 1..=3u64 {
        h.send_update(a, LOR, "doc", i, &[&[i as u8]]);
    }
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK), (2, AckStatus::OK), (3, AckStatus::RATE_LIMITED)]);
    h.advance(500);
    h.send_update(a, LOR, "doc", 4, &[b"4"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(4, AckStatus::OK)], "one token refilled in 500 ms");
    assert_eq!(h.server.counters().rate_limited, 1);
    assert_eq!(h.server.counters().acks(AckStatus::RATE_LIMITED), 1);
}

#[test]
fn stored_bytes_and_update_size_limits_answer_payload_too_large() {
    let mut config = after_apply();
    config.limits.max_stored_bytes_per_room = 10;
    config.limits.max_update_size = 8;
    let mut h = Harness::new(config);
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"123456789"]);
    h.send_update(a, LOR, "doc", 2, &[b"12345678"]);
    h.send_update(a, LOR, "doc", 3, &[b"abc"]);
    assert_eq!(
        acks(&h.recv_msgs(a)),
        vec![(1, AckStatus::PAYLOAD_TOO_LARGE), (2, AckStatus::OK), (3, AckStatus::PAYLOAD_TOO_LARGE)]
    );
}

#[test]
fn exact_duplicate_updates_are_acked_but_not_relayed_or_stored_twice() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.join(b, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"same"]);
    h.send_update(a, LOR, "doc", 2, &[b"same"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK), (2, AckStatus::OK)]);
    assert_eq!(doc_updates(&h.recv_msgs(b)), vec![b"same".to_vec()]);
    assert_eq!(h.server.room_doc(&key(LOR, "doc")).unwrap().stored_bytes(), 4);
}

// ------------------------------------------------------------------------------------------------ fragments

fn fragment_frames(room: &str, batch: u64, update: &[u8]) -> Vec<Bytes> {
    let f = Fragmenter::with_limits(400, 512).unwrap();
    let updates = [Bytes::copy_from_slice(update)];
    let plan: Vec<_> = f.plan(room.len(), &updates).collect();
    assert_eq!(plan.len(), 1);
    f.frames(LOR, room, BatchId::from_u64(batch), plan[0], &updates).unwrap().collect()
}

fn big_frames(room: &str, batch: u64, len: usize) -> Vec<Bytes> {
    let f = Fragmenter::new();
    let updates = [Bytes::from(vec![0xabu8; len])];
    let plan: Vec<_> = f.plan(room.len(), &updates).collect();
    f.frames(LOR, room, BatchId::from_u64(batch), plan[0], &updates).unwrap().collect()
}

#[test]
fn reassembled_update_is_validated_before_it_is_relayed() {
    let mut h = picky(after_apply());
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.join(b, LOR, "doc", Permission::Write);
    let mut bad = vec![0xffu8];
    bad.extend(vec![1u8; 300_000]);
    let frames = {
        let f = Fragmenter::new();
        let updates = [Bytes::from(bad)];
        let plan: Vec<_> = f.plan(3, &updates).collect();
        f.frames(LOR, "doc", BatchId::from_u64(7), plan[0], &updates).unwrap().collect::<Vec<_>>()
    };
    for fr in frames {
        h.frame(a, Frame::Binary(fr));
        assert!(h.recv_msgs(b).is_empty(), "the official Rust server relays each fragment before validating");
    }
    assert_eq!(acks(&h.recv_msgs(a)), vec![(7, AckStatus::INVALID_UPDATE)]);
    for fr in big_frames("doc", 8, 300_000) {
        h.frame(a, Frame::Binary(fr));
    }
    assert_eq!(acks(&h.recv_msgs(a)), vec![(8, AckStatus::OK)]);
    let relayed = h.recv_msgs(b);
    assert!(
        matches!(relayed[0].body, OwnedBody::FragmentHeader { batch_id, total_size: 300_000, .. } if batch_id.to_u64() == 8)
    );
    assert_eq!(relayed.len(), 3);
}

#[test]
fn fragment_header_over_the_update_limit_gets_payload_too_large() {
    let mut config = after_apply();
    config.limits.max_update_size = 1_000_000;
    let mut h = Harness::new(config);
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send(
        a,
        &Message {
            crdt: LOR,
            room: "doc",
            body: Body::FragmentHeader { batch_id: BatchId::from_u64(1), fragment_count: 5, total_size: 1_000_001 },
        },
    );
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::PAYLOAD_TOO_LARGE)]);
    assert_eq!(h.server.reassembly_bytes(), 0, "nothing reserved");
    h.send(
        a,
        &Message {
            crdt: LOR,
            room: "doc",
            body: Body::Fragment { batch_id: BatchId::from_u64(1), index: 0, data: b"xx" },
        },
    );
    assert!(h.recv_msgs(a).is_empty(), "later fragments of a refused batch are ignored quietly");
}

#[test]
fn incomplete_batch_gets_fragment_timeout_at_its_deadline() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    let frames = fragment_frames("doc", 4, &[9u8; 2500]);
    h.frame(a, Frame::Binary(frames[0].clone()));
    h.frame(a, Frame::Binary(frames[1].clone()));
    assert!(h.server.reassembly_bytes() > 0);
    h.advance(9_999);
    assert!(h.recv_msgs(a).is_empty());
    h.advance(1);
    assert_eq!(
        acks(&h.recv_msgs(a)),
        vec![(4, AckStatus::FRAGMENT_TIMEOUT)],
        "the official Rust server never times out"
    );
    assert_eq!(h.server.reassembly_bytes(), 0);
    for fr in &frames[2..] {
        h.frame(a, Frame::Binary(fr.clone()));
    }
    assert!(h.recv_msgs(a).is_empty(), "stray fragments of an expired batch do not each draw an Ack");
}

#[test]
fn fragment_header_from_a_read_only_member_is_denied_and_its_fragments_are_silent() {
    let mut h = Harness::new(after_apply());
    let r = h.connect();
    h.join(r, LOR, "doc", Permission::Read);
    let frames = fragment_frames("doc", 2, &[1u8; 2500]);
    for fr in &frames {
        h.frame(r, Frame::Binary(fr.clone()));
    }
    assert_eq!(acks(&h.recv_msgs(r)), vec![(2, AckStatus::PERMISSION_DENIED)]);
}

#[test]
fn resent_header_for_a_live_batch_does_not_kill_it() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    let frames = fragment_frames("doc", 3, &[5u8; 2500]);
    h.frame(a, Frame::Binary(frames[0].clone()));
    h.frame(a, Frame::Binary(frames[1].clone()));
    h.advance(5_000);
    h.frame(a, Frame::Binary(frames[0].clone()));
    for fr in &frames[2..] {
        h.frame(a, Frame::Binary(fr.clone()));
    }
    assert_eq!(acks(&h.recv_msgs(a)), vec![(3, AckStatus::OK)]);
    h.advance(20_000);
    assert!(h.recv_msgs(a).is_empty(), "no stale timer fires for the batch (official TS server bug)");
}

#[test]
fn reassembly_budget_is_shared_across_connections() {
    let mut config = after_apply();
    config.limits.max_reassembly_bytes_total = 40_000;
    let mut h = Harness::new(config);
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.join(b, LOR, "doc", Permission::Write);
    let header = |batch: u64| Message {
        crdt: LOR,
        room: "doc",
        body: Body::FragmentHeader { batch_id: BatchId::from_u64(batch), fragment_count: 3, total_size: 30_000 },
    };
    h.send(a, &header(1));
    assert!(acks(&h.recv_msgs(a)).is_empty());
    h.send(b, &header(2));
    assert_eq!(acks(&h.recv_msgs(b)), vec![(2, AckStatus::PAYLOAD_TOO_LARGE)]);
    h.server.connection_closed(h.now, a);
    assert_eq!(h.server.reassembly_bytes(), 0, "a closed connection returns its reservation");
    h.send(b, &header(3));
    assert!(acks(&h.recv_msgs(b)).is_empty());
}

// ------------------------------------------------------------------------------------------------ leave / disconnect

#[test]
fn leave_unsubscribes_from_the_room() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.join(b, LOR, "doc", Permission::Write);
    h.send(b, &Message { crdt: LOR, room: "doc", body: Body::Leave });
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    assert!(h.recv_msgs(b).is_empty(), "the official Rust server ignores Leave and keeps broadcasting");
    h.send_update(b, LOR, "doc", 2, &[b"y"]);
    assert_eq!(acks(&h.recv_msgs(b)), vec![(2, AckStatus::PERMISSION_DENIED)]);
}

#[test]
fn disconnect_cleans_memberships_reassembly_and_pending_tickets() {
    let mut config = after_apply();
    config.approve_updates = true;
    let mut h = Harness::new(config);
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_join(a, LOR, "other", b"", b"");
    let join_ticket = h.join_ticket();
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    let update_ticket = h
        .events()
        .into_iter()
        .find_map(|e| if let ServerEvent::ApproveUpdate { ticket, .. } = e { Some(ticket) } else { None })
        .unwrap();
    h.send(
        a,
        &Message {
            crdt: LOR,
            room: "doc",
            body: Body::FragmentHeader { batch_id: BatchId::from_u64(9), fragment_count: 2, total_size: 2000 },
        },
    );
    assert!(h.server.reassembly_bytes() > 0);
    h.server.connection_closed(h.now, a);
    assert_eq!(h.server.reassembly_bytes(), 0);
    assert!(h.server.room_members(&key(LOR, "doc")).unwrap().is_empty());
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::Left { .. })));
    assert_eq!(
        h.server.accept_join(h.now, join_ticket, Permission::Write, Bytes::new()),
        Err(ServerError::UnknownTicket(join_ticket.get()))
    );
    assert_eq!(
        h.server.approve_update(h.now, update_ticket, Ok(())),
        Err(ServerError::UnknownTicket(update_ticket.get()))
    );
    assert!(h.server.poll_timeout().is_none_or(|t| t > h.now), "no timer left armed for the gone connection");
    assert_eq!(h.server.counters().connections, 0);
}

// ------------------------------------------------------------------------------------------------ persistence

#[test]
fn dirty_rooms_are_saved_every_interval() {
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    h.persist_all();
    h.advance(59_999);
    assert!(h.events().is_empty());
    h.advance(1);
    let save = h
        .events()
        .into_iter()
        .find_map(|e| {
            if let ServerEvent::SaveRoom { ticket, snapshot, seq, reason, .. } = e {
                Some((ticket, snapshot, seq, reason))
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!((save.2, save.3), (1, SaveReason::Interval));
    let mut restored = UpdateLog::new();
    restored.import(&save.1).unwrap();
    assert_eq!(restored.updates(), &[Bytes::from_static(b"x")]);
    assert_eq!(h.server.room_is_dirty(&key(LOR, "doc")), Some(true));
    h.server.save_done(h.now, save.0, Ok(())).unwrap();
    assert_eq!(h.server.room_is_dirty(&key(LOR, "doc")), Some(false));
    h.advance(120_000);
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::SaveRoom { .. })), "a clean room is not saved again");
}

#[test]
fn idle_room_is_saved_then_unloaded() {
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    h.persist_all();
    h.send(a, &Message { crdt: LOR, room: "doc", body: Body::Leave });
    h.events();
    h.advance(60_000);
    let events = h.events();
    let save = events
        .iter()
        .find_map(
            |e| if let ServerEvent::SaveRoom { ticket, reason, .. } = e { Some((*ticket, *reason)) } else { None },
        )
        .unwrap();
    assert_eq!(save.1, SaveReason::Interval);
    assert!(h.server.rooms().next().is_some(), "not unloaded before the save is confirmed");
    h.server.save_done(h.now, save.0, Ok(())).unwrap();
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::RoomUnloaded { .. })));
    assert!(h.server.rooms().next().is_none());
}

#[test]
fn failed_save_is_retried_and_the_room_stays_loaded() {
    let config = ServerConfig { idle_unload_after: core::time::Duration::from_secs(10), ..ServerConfig::default() };
    let mut h = Harness::new(config);
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    h.persist_all();
    h.server.connection_closed(h.now, a);
    h.events();
    h.advance(10_000);
    let t = h
        .events()
        .into_iter()
        .find_map(|e| {
            if let ServerEvent::SaveRoom { ticket, reason: SaveReason::Unload, .. } = e {
                Some(ticket)
            } else {
                None
            }
        })
        .unwrap();
    h.server.save_done(h.now, t, Err(StorageError)).unwrap();
    assert!(h.server.rooms().next().is_some());
    h.advance(1_000);
    let t2 = h
        .events()
        .into_iter()
        .find_map(|e| {
            if let ServerEvent::SaveRoom { ticket, reason: SaveReason::Unload, .. } = e {
                Some(ticket)
            } else {
                None
            }
        })
        .expect("retried");
    h.server.save_done(h.now, t2, Ok(())).unwrap();
    assert!(h.server.rooms().next().is_none());
    assert_eq!(h.server.counters().saves_failed, 1);
}

#[test]
fn shutdown_closes_connections_saves_everything_and_reports_completion() {
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, LOR, "one", Permission::Write);
    h.join(a, LOR, "two", Permission::Write);
    h.send_update(a, LOR, "one", 1, &[b"x"]);
    h.send_update(a, LOR, "two", 2, &[b"y"]);
    h.persist_all();
    h.server.shutdown(h.now);
    assert!(h.recv(a).iter().any(|o| *o == Out::Close(CloseCode::GOING_AWAY, "server_shutdown".into())));
    let saves: Vec<_> = h
        .events()
        .into_iter()
        .filter_map(|e| {
            if let ServerEvent::SaveRoom { ticket, reason: SaveReason::Shutdown, .. } = e {
                Some(ticket)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(saves.len(), 2);
    assert_eq!(h.server.open_connection(h.now), Err(ServerError::ShuttingDown));
    h.server.save_done(h.now, saves[0], Ok(())).unwrap();
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::ShutdownComplete)));
    h.server.save_done(h.now, saves[1], Ok(())).unwrap();
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::ShutdownComplete)));
}

// ------------------------------------------------------------------------------------------------ app control

#[test]
fn app_pushed_updates_are_relayed_to_members_and_persisted() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Read);
    let batch = h.server.push_update(h.now, &key(LOR, "doc"), vec![Bytes::from_static(b"server edit")]).unwrap();
    let msgs = h.recv_msgs(a);
    assert!(matches!(&msgs[0].body, OwnedBody::DocUpdate { batch_id, .. } if *batch_id == batch));
    assert_eq!(doc_updates(&msgs), vec![b"server edit".to_vec()]);
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::UpdateAccepted { conn: None, .. })));
    assert_eq!(
        h.server.push_update(h.now, &key(LOR, "nope"), vec![]),
        Err(ServerError::RoomNotLoaded(key(LOR, "nope")))
    );
}

#[test]
fn app_can_load_a_room_without_a_client_and_push_into_it() {
    let mut h = Harness::default_config();
    h.server.load_room(h.now, &key(LOR, "doc")).unwrap();
    let t = h
        .events()
        .into_iter()
        .find_map(|e| if let ServerEvent::LoadRoom { ticket, .. } = e { Some(ticket) } else { None })
        .unwrap();
    assert!(matches!(
        h.server.push_update(h.now, &key(LOR, "doc"), vec![Bytes::from_static(b"x")]),
        Err(ServerError::RoomNotLoaded(_))
    ));
    h.server.room_loaded(h.now, t, Ok(LoadedRoom::default())).unwrap();
    h.server.push_update(h.now, &key(LOR, "doc"), vec![Bytes::from_static(b"x")]).unwrap();
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::PersistUpdates { .. })));
}

#[test]
fn close_room_sends_room_error_to_members_then_saves_and_unloads() {
    let mut h = Harness::default_config();
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    h.persist_all();
    h.recv(a);
    h.server.close_room(h.now, &key(LOR, "doc")).unwrap();
    let msgs = h.recv_msgs(a);
    assert!(
        matches!(&msgs[0].body, OwnedBody::RoomError { code: RoomErrorCode::EVICTED, message } if message == "room_closed")
    );
    let save = h
        .events()
        .into_iter()
        .find_map(|e| {
            if let ServerEvent::SaveRoom { ticket, reason: SaveReason::Unload, .. } = e {
                Some(ticket)
            } else {
                None
            }
        })
        .unwrap();
    h.server.save_done(h.now, save, Ok(())).unwrap();
    assert!(h.server.rooms().next().is_none());
}

#[test]
fn evict_sends_room_error_evicted_and_ends_the_membership() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.server.evict(h.now, a, &key(LOR, "doc"), "bye").unwrap();
    assert!(
        matches!(&h.recv_msgs(a)[0].body, OwnedBody::RoomError { code: RoomErrorCode::EVICTED, message } if message == "bye")
    );
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::PERMISSION_DENIED)]);
    assert_eq!(h.server.evict(h.now, a, &key(LOR, "doc"), "again"), Err(ServerError::NotAMember(a, key(LOR, "doc"))));
}

// ------------------------------------------------------------------------------------------------ backpressure

#[test]
fn slow_reader_is_closed_with_1013_and_other_members_are_unaffected() {
    let mut config = after_apply();
    config.limits.max_queued_bytes_per_connection = 50_000;
    let mut h = Harness::new(config);
    let w = h.connect();
    let slow = h.connect();
    let fast = h.connect();
    for c in [w, slow, fast] {
        h.join(c, LOR, "doc", Permission::Write);
    }
    for i in 0..10u64 {
        h.send_update(w, LOR, "doc", i, &[&[i as u8; 10_000]]);
        h.recv(fast);
    }
    let out = h.recv(slow);
    assert_eq!(out.last(), Some(&Out::Close(CloseCode::TRY_AGAIN_LATER, "slow_reader".into())));
    assert!(out.len() < 10, "the queue was dropped, not flushed");
    assert!(h
        .events()
        .iter()
        .any(|e| matches!(e, ServerEvent::ClosingConnection { cause: CloseCause::SlowReader, .. })));
    assert_eq!(h.server.room_members(&key(LOR, "doc")).unwrap().len(), 2);
    h.send_update(w, LOR, "doc", 99, &[b"after"]);
    assert_eq!(doc_updates(&h.recv_msgs(fast)), vec![b"after".to_vec()]);
}

#[test]
fn poll_ready_reports_each_connection_once_per_fill() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.send_text(a, "ping");
    h.send_text(a, "ping");
    assert_eq!(h.server.poll_ready(), Some(a));
    assert_eq!(h.server.poll_ready(), None);
    h.recv(a);
    h.send_text(a, "ping");
    assert_eq!(h.server.poll_ready(), Some(a));
}

#[test]
fn counters_track_traffic_acks_and_closes() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    h.send_update(a, LOR, "nope", 2, &[b"x"]);
    let c = h.server.counters().clone();
    assert_eq!(c.connections, 1);
    assert_eq!(c.rooms, 1);
    assert_eq!(c.frames_in, 3);
    assert!(c.bytes_in > 0 && c.bytes_out > 0);
    assert_eq!(c.acks(AckStatus::OK), 1);
    assert_eq!(c.acks(AckStatus::PERMISSION_DENIED), 1);
    assert_eq!(c.joins_accepted, 1);
    assert_eq!(c.updates_accepted, 1);
}

#[test]
fn client_error_acks_are_surfaced_to_the_app() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send(
        a,
        &Message {
            crdt: LOR,
            room: "doc",
            body: Body::Ack { ref_id: BatchId::from_u64(77), status: AckStatus::INVALID_UPDATE },
        },
    );
    assert!(h.events().iter().any(|e| matches!(e, ServerEvent::ClientAck { batch_id, status: AckStatus::INVALID_UPDATE, resent: false, .. } if batch_id.to_u64() == 77)));
    h.send(
        a,
        &Message { crdt: LOR, room: "doc", body: Body::Ack { ref_id: BatchId::from_u64(78), status: AckStatus::OK } },
    );
    assert_eq!(h.server.counters().client_ok_acks, 1);
}

#[test]
fn time_never_goes_backwards() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    let frames = fragment_frames("doc", 1, &[1u8; 2500]);
    h.frame(a, Frame::Binary(frames[0].clone()));
    let deadline = h.server.poll_timeout().unwrap();
    h.server.handle_timeout(loro_sansio::Instant::ZERO);
    assert_eq!(h.server.poll_timeout(), Some(deadline), "an earlier time is clamped, nothing fires");
}

#[test]
fn server_types_are_send() {
    fn is_send<T: Send>() {}
    is_send::<loro_sansio::server::Server>();
    is_send::<ServerEvent>();
    is_send::<Transmit>();
    is_send::<loro_sansio::server::ConnId>();
}

// ------------------------------------------------------------------------------------------------ review regressions

#[test]
fn queued_byte_limit_covers_every_frame_not_only_relays() {
    // A client that never reads, and keeps the server answering (pongs, acks, join errors), must hit the same
    // bound as a slow member of a busy room.
    let mut config = after_apply();
    config.limits.max_queued_bytes_per_connection = 1_000;
    let mut h = Harness::new(config);
    let c = h.connect();
    let other = h.connect();
    for _ in 0..300 {
        h.send_text(c, "ping");
        assert!(h.server.backlog(c) <= 1_000, "backlog {} over the limit", h.server.backlog(c));
    }
    let out = h.recv(c);
    assert_eq!(out.last(), Some(&Out::Close(CloseCode::TRY_AGAIN_LATER, "slow_reader".into())));
    assert_eq!(h.server.counters().closed_slow_reader, 1);
    h.send_text(other, "ping");
    assert_eq!(h.recv(other), vec![Out::Text("pong".into())], "other connections are unaffected");
}

#[test]
fn room_unloads_after_a_join_that_held_it_is_rejected_or_dropped() {
    let mut h = Harness::default_config();
    let room = key(LOR, "doc");
    for outcome in ["reject", "disconnect", "leave"] {
        let a = h.connect();
        h.join(a, LOR, "doc", Permission::Write);
        h.send(a, &Message { crdt: LOR, room: "doc", body: Body::Leave });
        // A second join arrives and stays undecided past the idle-unload deadline, so the room must stay.
        let b = h.connect();
        h.send_join(b, LOR, "doc", b"", b"");
        let t = h.join_ticket();
        h.advance(60_000);
        assert!(h.server.rooms().any(|r| *r == room), "{outcome}: kept while a join for it is undecided");
        match outcome {
            "reject" => h.server.reject_join(h.now, t, JoinErrorCode::AUTH_FAILED, "no", None).unwrap(),
            "disconnect" => h.server.connection_closed(h.now, b),
            _ => h.send(b, &Message { crdt: LOR, room: "doc", body: Body::Leave }),
        }
        h.events();
        h.advance(60_000);
        assert!(
            h.events().iter().any(|e| matches!(e, ServerEvent::RoomUnloaded { .. })),
            "{outcome}: the idle room is unloaded once nothing holds it"
        );
        assert!(h.server.rooms().next().is_none());
    }
}

#[test]
fn rate_limiter_survives_huge_time_jumps() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.now = loro_sansio::Instant::from_millis(u64::MAX / 2);
    h.send_update(a, LOR, "doc", 1, &[b"x"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
    h.now = loro_sansio::Instant::MAX;
    h.send_update(a, LOR, "doc", 2, &[b"y"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(2, AckStatus::OK)]);
}

#[test]
fn zero_backfill_watermark_streams_one_frame_at_a_time() {
    let mut config = after_apply();
    config.limits.backfill_watermark = 0;
    let mut h = Harness::new(config);
    let w = h.connect();
    h.join(w, LOR, "doc", Permission::Write);
    h.send_update(w, LOR, "doc", 1, &[b"one"]);
    h.send_update(w, LOR, "doc", 2, &[b"two"]);
    h.recv(w);
    let r = h.connect();
    let msgs = h.join(r, LOR, "doc", Permission::Read);
    assert_eq!(doc_updates(&msgs), vec![b"one".to_vec(), b"two".to_vec()], "the backfill is not stalled");
}

#[test]
fn leave_or_join_error_while_a_join_is_pending_cancels_it() {
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    let leave = Message { crdt: LOR, room: "doc", body: Body::Leave };
    let join_error = Message {
        crdt: LOR,
        room: "doc",
        body: Body::JoinError {
            code: JoinErrorCode::APP_ERROR,
            message: "gave up",
            receiver_version: None,
            app_code: None,
        },
    };
    for bye in [leave, join_error] {
        h.send_join(a, LOR, "doc", b"", b"");
        let t = h.join_ticket();
        h.send(a, &bye);
        assert_eq!(h.server.session(a).unwrap().pending_tickets(), 0);
        assert_eq!(
            h.server.accept_join(h.now, t, Permission::Write, Bytes::new()),
            Err(ServerError::UnknownTicket(t.get()))
        );
        assert!(h.recv_msgs(a).is_empty(), "no JoinResponseOk for a room the client left");
        assert!(h.server.room_members(&key(LOR, "doc")).is_none_or(|m| m.is_empty()));
    }
}

#[test]
fn repeated_rejoins_by_a_client_that_does_not_read_do_not_stack_backfills() {
    let mut config = after_apply();
    config.limits.backfill_watermark = 150_000;
    let mut h = Harness::new(config);
    let w = h.connect();
    h.join(w, LOR, "doc", Permission::Write);
    for i in 0..4u64 {
        h.send_update(w, LOR, "doc", i, &[&vec![i as u8; 100_000]]);
    }
    h.recv(w);
    let r = h.connect();
    for _ in 0..10 {
        h.send_join(r, LOR, "doc", b"", b"");
        let t = h.join_ticket();
        h.server.accept_join(h.now, t, Permission::Read, Bytes::new()).unwrap();
    }
    let updates = doc_updates(&h.recv_msgs(r));
    assert!(
        updates.len() <= 8,
        "each rejoin replaces the backfill still to be produced: got {} updates",
        updates.len()
    );
    let mut distinct = updates.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "the latest backfill is complete");
}

// ------------------------------------------------------------------------------------------------ official bugs (§5)

#[test]
fn room_id_over_128_bytes_closes_only_that_connection_with_1002() {
    // The official TS server accepts the id, then crashes encoding its reply.
    let mut h = Harness::new(after_apply());
    let bad = h.connect();
    let good = h.connect();
    h.join(good, LOR, "r", Permission::Write);
    let mut frame = b"%LOR".to_vec();
    frame.extend([0x81, 0x01]);
    frame.extend([b'a'; 129]);
    frame.extend([0x00, 0x00, 0x00]);
    h.frame(bad, Frame::Binary(Bytes::from(frame)));
    assert!(matches!(&h.recv(bad)[..], [Out::Close(CloseCode::PROTOCOL_ERROR, _)]));
    assert!(h.events().iter().all(|e| !matches!(e, ServerEvent::JoinRequested { .. })));
    h.send_update(good, LOR, "r", 1, &[b"x"]);
    assert_eq!(acks(&h.recv_msgs(good)), vec![(1, AckStatus::OK)]);
}

#[test]
fn fragment_header_with_a_huge_count_or_size_is_refused_before_anything_is_reserved() {
    // The official TS server allocates an array of `fragmentCount` slots; the Rust one accepts up to 64 MiB.
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    let cases = [
        (1, u32::MAX, 1_000, AckStatus::PAYLOAD_TOO_LARGE),
        (2, 3, u32::MAX, AckStatus::PAYLOAD_TOO_LARGE),
        (3, 0, 10, AckStatus::INVALID_UPDATE),
    ];
    for (batch, fragment_count, total_size, status) in cases {
        let body = Body::FragmentHeader { batch_id: BatchId::from_u64(batch), fragment_count, total_size };
        h.send(a, &Message { crdt: LOR, room: "doc", body });
        assert_eq!(acks(&h.recv_msgs(a)), vec![(batch, status)]);
        assert_eq!(h.server.reassembly_bytes(), 0);
    }
}

fn fragment(room: &'static str, batch: u64, index: u32, data: &'static [u8]) -> Message<'static> {
    Message { crdt: LOR, room, body: Body::Fragment { batch_id: BatchId::from_u64(batch), index, data } }
}

fn header(room: &'static str, batch: u64, fragment_count: u32, total_size: u32) -> Message<'static> {
    Message {
        crdt: LOR,
        room,
        body: Body::FragmentHeader { batch_id: BatchId::from_u64(batch), fragment_count, total_size },
    }
}

#[test]
fn fragments_overrunning_the_announced_total_fail_the_batch() {
    // The official TS server throws a RangeError copying them (an unhandled rejection).
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.join(b, LOR, "doc", Permission::Write);
    h.send(a, &header("doc", 1, 2, 10));
    h.send(a, &fragment("doc", 1, 0, b"01234567"));
    h.send(a, &fragment("doc", 1, 1, b"89abcdef"));
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::INVALID_UPDATE)]);
    assert_eq!(h.server.reassembly_bytes(), 0);
    assert!(h.recv_msgs(b).is_empty());
}

#[test]
fn duplicate_fragments_do_not_complete_a_batch_early() {
    // The official TS server counts every arrival, so two copies of fragment 0 "complete" a 2-of-3 batch.
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    let b = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.join(b, LOR, "doc", Permission::Write);
    h.send(a, &header("doc", 1, 3, 9));
    for _ in 0..2 {
        h.send(a, &fragment("doc", 1, 0, b"abc"));
        h.send(a, &fragment("doc", 1, 1, b"def"));
    }
    assert!(h.recv_msgs(a).is_empty() && h.recv_msgs(b).is_empty(), "two fragments of three are not a batch");
    h.send(a, &fragment("doc", 1, 2, b"ghi"));
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
    assert_eq!(doc_updates(&h.recv_msgs(b)), vec![b"abcdefghi".to_vec()]);
}

#[test]
fn stray_fragments_without_a_header_draw_one_ack_per_batch() {
    // The official TS server answers every stray fragment with its own Ack(fragment_timeout).
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    for i in 0..3 {
        h.send(a, &fragment("doc", 9, i, b"zz"));
    }
    assert_eq!(acks(&h.recv_msgs(a)), vec![(9, AckStatus::FRAGMENT_TIMEOUT)]);
}

#[test]
fn two_connections_may_fragment_the_same_batch_id_in_one_room_at_once() {
    // The official Rust server keys batches hub-wide by (room, batch id), so the second sender gets
    // invalid_update; its clients number batches from 1, so this happens on their first large edits.
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    let b = h.connect();
    let c = h.connect();
    for x in [a, b, c] {
        h.join(x, LOR, "doc", Permission::Write);
    }
    let fa = fragment_frames("doc", 1, &[b'a'; 1_500]);
    let fb = fragment_frames("doc", 1, &[b'b'; 1_500]);
    for (x, y) in fa.iter().zip(&fb) {
        h.frame(a, Frame::Binary(x.clone()));
        h.frame(b, Frame::Binary(y.clone()));
    }
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
    assert_eq!(acks(&h.recv_msgs(b)), vec![(1, AckStatus::OK)]);
    let mut received = doc_updates(&h.recv_msgs(c));
    received.sort();
    assert_eq!(received, vec![vec![b'a'; 1_500], vec![b'b'; 1_500]], "both batches reach the third member");
}

#[test]
fn load_and_save_events_name_the_room_with_its_crdt_type() {
    // The official TS server passes `NaN` as the CRDT type to its save hook.
    let mut h = Harness::default_config();
    let a = h.connect();
    h.send_join(a, CrdtType::Yjs, "doc", b"", b"");
    let t = h.join_ticket();
    h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
    let load = h.events().into_iter().find_map(|e| match e {
        ServerEvent::LoadRoom { ticket, room } => Some((ticket, room)),
        _ => None,
    });
    let (ticket, room) = load.expect("a load");
    assert_eq!(room, key(CrdtType::Yjs, "doc"));
    h.server.room_loaded(h.now, ticket, Ok(LoadedRoom::default())).unwrap();
    h.send_update(a, CrdtType::Yjs, "doc", 1, &[b"y"]);
    h.persist_all();
    h.advance(60_000);
    let saved = h.events().into_iter().find_map(|e| match e {
        ServerEvent::SaveRoom { room, .. } => Some(room),
        _ => None,
    });
    assert_eq!(saved, Some(key(CrdtType::Yjs, "doc")));
}

#[test]
fn flock_room_is_backfilled_to_a_lone_joiner() {
    // The official TS server persists %FLO rooms but sends nothing to a client that joins alone.
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, CrdtType::Flock, "f", Permission::Write);
    h.send_update(a, CrdtType::Flock, "f", 1, &[b"flock state"]);
    h.server.connection_closed(h.now, a);
    let b = h.connect();
    assert_eq!(doc_updates(&h.join(b, CrdtType::Flock, "f", Permission::Read)), vec![b"flock state".to_vec()]);
}

/// A log whose version is its length in ASCII and whose backfill starts at the client's version.
struct Counted(UpdateLog);

impl RoomDoc for Counted {
    fn version(&self) -> Bytes {
        Bytes::from(self.0.updates().len().to_string())
    }
    fn apply(&mut self, updates: &[Bytes], limit: usize) -> Result<Applied, DocError> {
        self.0.apply(updates, limit)
    }
    fn backfill(&self, v: &[u8]) -> Result<Vec<Bytes>, BackfillError> {
        let known: usize = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(self.0.updates().get(known..).unwrap_or_default().to_vec())
    }
    fn is_persistent(&self) -> bool {
        false
    }
    fn export(&self) -> Option<Bytes> {
        None
    }
    fn import(&mut self, s: &[u8]) -> Result<(), ImportError> {
        self.0.import(s)
    }
    fn stored_bytes(&self) -> usize {
        self.0.stored_bytes()
    }
}

#[test]
fn backfill_is_what_the_document_computes_for_the_clients_version() {
    // The official Rust server sends an empty version and the whole snapshot whatever the client has.
    let mut h =
        Harness::with_docs(after_apply(), |_: &RoomKey| Some(Box::new(Counted(UpdateLog::new())) as Box<dyn RoomDoc>));
    let w = h.connect();
    h.join(w, LOR, "doc", Permission::Write);
    h.send_update(w, LOR, "doc", 1, &[b"one", b"two", b"three"]);
    let r = h.connect();
    h.send_join(r, LOR, "doc", b"", b"2");
    let t = h.join_ticket();
    h.server.accept_join(h.now, t, Permission::Read, Bytes::new()).unwrap();
    let msgs = h.recv_msgs(r);
    assert!(matches!(&msgs[0].body, OwnedBody::JoinResponseOk { version, .. } if &version[..] == b"3"));
    assert_eq!(doc_updates(&msgs), vec![b"three".to_vec()]);
}

#[test]
fn updates_sent_while_a_rejoin_is_decided_are_accepted() {
    // The official TS server drops the membership first, so edits in the rejoin window get permission_denied.
    let mut h = Harness::new(after_apply());
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_join(a, LOR, "doc", b"", b"");
    let t = h.join_ticket();
    h.send_update(a, LOR, "doc", 1, &[b"during"]);
    assert_eq!(acks(&h.recv_msgs(a)), vec![(1, AckStatus::OK)]);
    h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
    assert!(matches!(h.recv_msgs(a)[0].body, OwnedBody::JoinResponseOk { .. }));
}

#[test]
fn limit_defaults_are_the_documented_values() {
    let c = ServerConfig::default();
    let l = &c.limits;
    assert_eq!(
        (l.max_connections, l.max_rooms, l.max_rooms_per_connection, l.max_members_per_room),
        (10_000, 10_000, 64, 10_000)
    );
    assert_eq!(l.max_pending_tickets_per_connection, 32);
    assert_eq!((l.max_stored_bytes_per_room, l.max_update_size), (256 << 20, 64 << 20));
    assert_eq!(l.update_rate, Some(RateLimit { per_second: 200, burst: 400 }));
    assert_eq!((l.max_queued_bytes_per_connection, l.max_reassembly_bytes_total), (16 << 20, 512 << 20));
    assert_eq!((l.backfill_watermark, l.resend_memory_per_connection), (1 << 20, 16));
    assert_eq!(c.ack_mode, AckMode::Durable);
    assert!(!c.approve_updates);
    let s = core::time::Duration::from_secs;
    assert_eq!((c.save_interval, c.retry_delay, c.idle_unload_after), (s(60), s(1), s(60)));
    assert_eq!(c.idle_timeout, Some(s(120)), "well above twice the official clients' 20–30 s ping interval");
    assert_eq!(c.reassembly.timeout, s(10));
}

#[test]
fn every_join_refused_by_a_limit_is_counted() {
    let mut config = after_apply();
    config.limits.max_rooms_per_connection = 1;
    config.limits.max_pending_tickets_per_connection = 1;
    let mut h = Harness::new(config);
    let a = h.connect();
    h.join(a, LOR, "one", Permission::Write);
    h.send_join(a, LOR, "two", b"", b"");
    assert_eq!(h.server.counters().joins_rejected, 1, "rooms_per_connection");
    let b = h.connect();
    h.send_join(b, LOR, "one", b"", b"");
    h.send_join(b, LOR, "one", b"", b"");
    assert_eq!(h.server.counters().joins_rejected, 2, "too_many_pending");
}

#[test]
fn update_log_compaction_hook_runs_before_each_save() {
    fn merge(updates: &[Bytes]) -> Option<Bytes> {
        Some(Bytes::from(updates.iter().flat_map(|u| u.iter().copied()).collect::<Vec<u8>>()))
    }
    let mut h = Harness::with_docs(ServerConfig::default(), |_: &RoomKey| {
        Some(Box::new(UpdateLog::with_compactor(merge)) as Box<dyn RoomDoc>)
    });
    let a = h.connect();
    h.join(a, LOR, "doc", Permission::Write);
    h.send_update(a, LOR, "doc", 1, &[b"ab", b"cd"]);
    h.send_update(a, LOR, "doc", 2, &[b"ef"]);
    h.persist_all();
    h.persist_all();
    h.advance(60_000);
    let snapshot = h
        .events()
        .into_iter()
        .find_map(|e| if let ServerEvent::SaveRoom { snapshot, seq: 3, .. } = e { Some(snapshot) } else { None })
        .expect("a save covering all three updates");
    let mut restored = UpdateLog::new();
    restored.import(&snapshot).unwrap();
    assert_eq!(restored.updates(), &[Bytes::from_static(b"abcdef")], "the log was compacted before the save");
    let b = h.connect();
    assert_eq!(doc_updates(&h.join(b, LOR, "doc", Permission::Read)), vec![b"abcdef".to_vec()]);
}

// ------------------------------------------------------------------------------------------------ %ELO rooms

mod elo_rooms {
    use super::*;
    use chacha20::rand_core::SeedableRng;
    use chacha20::ChaCha20Rng;
    use loro_sansio::elo::{encode_container, seal, EloKey, RecordHeader, VersionVector};

    const ELO: CrdtType = CrdtType::Elo;

    /// A one-record container for `peer`'s span `start..end`, sealed with a throwaway key.
    fn container(peer: u64, start: u32, end: u32) -> Vec<u8> {
        let key = EloKey::aes256(&[7u8; 32]);
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(start) ^ peer);
        let peer = peer.to_string();
        let record =
            seal(&RecordHeader::delta(peer.as_bytes(), start, end, "k1"), &key, b"secret ops", &mut rng).unwrap();
        encode_container(&[record]).unwrap()
    }

    #[test]
    fn elo_room_relays_ciphertext_unchanged_and_backfills_by_version_vector() {
        let mut h = Harness::new(after_apply());
        let a = h.connect();
        h.join(a, ELO, "secret", Permission::Write);
        let (c1, c2, c3) = (container(3, 0, 2), container(3, 2, 5), container(300, 0, 1));
        for (i, c) in [&c1, &c2, &c3].into_iter().enumerate() {
            h.send_update(a, ELO, "secret", i as u64 + 1, &[c]);
        }
        assert_eq!(acks(&h.recv_msgs(a)).len(), 3);
        // A joiner that already has peer 3 up to counter 2 gets only what it lacks.
        let b = h.connect();
        let known = VersionVector::from_entries([(3, 2)]).unwrap().encode();
        h.send_join(b, ELO, "secret", b"", &known);
        let t = h.join_ticket();
        h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
        h.persist_all();
        let msgs = h.recv_msgs(b);
        match &msgs[0].body {
            OwnedBody::JoinResponseOk { version, .. } => {
                let v = VersionVector::decode(version).unwrap();
                assert_eq!((v.get(3), v.get(300)), (5, 1), "the index's version, in Loro's encoding");
            }
            other => panic!("{other:?}"),
        }
        let backfill = doc_updates(&msgs[1..]);
        let records: Vec<Vec<u8>> = backfill
            .iter()
            .flat_map(|c| {
                loro_sansio::elo::Container::decode(c)
                    .unwrap()
                    .records()
                    .map(|r| r.as_bytes().to_vec())
                    .collect::<Vec<_>>()
            })
            .collect();
        let expected: Vec<Vec<u8>> = [&c2, &c3]
            .iter()
            .map(|c| loro_sansio::elo::Container::decode(c).unwrap().records().next().unwrap().as_bytes().to_vec())
            .collect();
        assert_eq!(records.len(), 2);
        for e in expected {
            assert!(records.contains(&e), "record bytes relayed unchanged");
        }
        // Live relay is byte-identical.
        h.send_update(a, ELO, "secret", 9, &[&container(3, 5, 6)]);
        assert_eq!(doc_updates(&h.recv_msgs(b)), vec![container(3, 5, 6)]);
    }

    #[test]
    fn elo_record_with_an_11_byte_iv_gets_invalid_update_and_changes_nothing() {
        let mut h = Harness::new(after_apply());
        let a = h.connect();
        let b = h.connect();
        h.join(a, ELO, "secret", Permission::Write);
        h.join(b, ELO, "secret", Permission::Write);
        let good = container(1, 0, 1);
        // Rewrite the IV's length prefix from 12 to 11 (and drop one IV byte) in a copy of a valid record.
        let record = loro_sansio::elo::Container::decode(&good).unwrap().records().next().unwrap().as_bytes().to_vec();
        let iv_at = record.windows(1).position(|w| w[0] == 12).unwrap();
        let mut bad = record.clone();
        bad[iv_at] = 11;
        bad.remove(iv_at + 1);
        let bad_container = encode_container(&[bad]).unwrap();
        h.send_update(a, ELO, "secret", 5, &[&good, &bad_container]);
        assert_eq!(acks(&h.recv_msgs(a)), vec![(5, AckStatus::INVALID_UPDATE)]);
        assert!(h.recv_msgs(b).is_empty());
        assert_eq!(
            h.server.room_doc(&key(ELO, "secret")).unwrap().stored_bytes(),
            0,
            "the good container was not kept either"
        );
    }

    #[test]
    fn elo_join_with_an_unreadable_version_gets_version_unknown() {
        let mut h = Harness::new(after_apply());
        let a = h.connect();
        h.send_join(a, ELO, "secret", b"", &[0x05, 0x01]);
        let t = h.join_ticket();
        h.server.accept_join(h.now, t, Permission::Write, Bytes::new()).unwrap();
        let load = h
            .events()
            .into_iter()
            .find_map(|e| if let ServerEvent::LoadRoom { ticket, .. } = e { Some(ticket) } else { None })
            .unwrap();
        h.server.room_loaded(h.now, load, Ok(LoadedRoom::default())).unwrap();
        let msgs = h.recv_msgs(a);
        assert!(matches!(
            &msgs[0].body,
            OwnedBody::JoinError { code: JoinErrorCode::VERSION_UNKNOWN, receiver_version: Some(_), .. }
        ));
    }

    #[test]
    fn elo_index_survives_a_restart_through_save_and_load() {
        let mut h = Harness::default_config();
        let a = h.connect();
        h.join(a, ELO, "secret", Permission::Write);
        h.send_update(a, ELO, "secret", 1, &[&container(3, 0, 4)]);
        h.persist_all();
        h.advance(60_000);
        let snapshot = h
            .events()
            .into_iter()
            .find_map(|e| if let ServerEvent::SaveRoom { snapshot, .. } = e { Some(snapshot) } else { None })
            .unwrap();
        let mut h2 = Harness::default_config();
        let b = h2.connect();
        h2.send_join(b, ELO, "secret", b"", b"");
        let t = h2.join_ticket();
        h2.server.accept_join(h2.now, t, Permission::Read, Bytes::new()).unwrap();
        let load = h2
            .events()
            .into_iter()
            .find_map(|e| if let ServerEvent::LoadRoom { ticket, .. } = e { Some(ticket) } else { None })
            .unwrap();
        h2.server
            .room_loaded(h2.now, load, Ok(LoadedRoom { snapshot: Some(snapshot), updates: vec![], last_seq: 1 }))
            .unwrap();
        let msgs = h2.recv_msgs(b);
        assert!(
            matches!(&msgs[0].body, OwnedBody::JoinResponseOk { version, .. } if VersionVector::decode(version).unwrap().get(3) == 4)
        );
        assert_eq!(doc_updates(&msgs[1..]).len(), 1);
    }
}

#[test]
fn stored_state_is_imported_strictly_and_round_trips() {
    let mut log = UpdateLog::new();
    log.apply(&[Bytes::from_static(b"a"), Bytes::from_static(b"bb")], usize::MAX).unwrap();
    let snapshot = log.export().unwrap();
    for cut in 0..snapshot.len() {
        assert_eq!(UpdateLog::new().import(&snapshot[..cut]), Err(ImportError), "truncated at {cut}");
    }
    let mut trailing = snapshot.to_vec();
    trailing.push(0);
    assert_eq!(UpdateLog::new().import(&trailing), Err(ImportError));
    let mut inflated = snapshot.to_vec();
    inflated[4] = 0x7f; // count far beyond the bytes that follow
    assert_eq!(UpdateLog::new().import(&inflated), Err(ImportError));
    assert_eq!(UpdateLog::new().import(b"XXXX\x00"), Err(ImportError));
    let mut restored = UpdateLog::new();
    restored.import(&snapshot).unwrap();
    assert_eq!(restored.export().unwrap(), snapshot);
    // The fuzz driver's check over every built-in document, on a few inputs.
    for input in [&snapshot[..], &trailing[..], b"LSL1\x00", b""] {
        server_support::driver::check_imports(input);
    }
}
