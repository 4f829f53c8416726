//! `ClientSession` against a scripted fake server, in virtual time with a seeded RNG. Every test asserts the
//! exact frames the client sends (decoded with the codec) and the exact events it emits. Each test is a clause
//! of `spec/conformance.md` §C; the scenarios of the official client's test suite that apply to a session are
//! named after them in the comments (`e2e.test.ts:NNN`).

mod client_support;

use std::time::Duration;

use bytes::Bytes;
use client_support::*;
use loro_sansio::client::{
    ClientConfig, ClientError, ClientEvent, ClientSession, ClosedBy, ConnectionStatus, DropReason, IncomingFailure,
    JoinFailure, JoinParams, JoinReason, KeepaliveConfig, NextAttempt, PingOutcome, ReconnectConfig, RoomErrorAction,
    RoomStatus, SendError, StopReason, UPDATE_OVERHEAD,
};
use loro_sansio::fragment::{Fragmenter, RejectReason};
use loro_sansio::wire::{
    AckStatus, BatchId, CrdtType, DecodeError, Frame, JoinErrorCode, MessageType, OwnedBody, OwnedMessage, Permission,
    RoomErrorCode, Utf8Bytes,
};
use loro_sansio::{CloseCode, Instant, RoomKey};

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

fn loro(room: &str) -> RoomKey {
    RoomKey::new(CrdtType::Loro, room)
}

fn conn(status: ConnectionStatus) -> ClientEvent {
    ClientEvent::ConnectionStatus { status }
}

fn rs(room: &RoomKey, status: RoomStatus) -> ClientEvent {
    ClientEvent::RoomStatus { room: room.clone(), status }
}

fn u8s(s: &str) -> Utf8Bytes {
    Utf8Bytes::from(s)
}

/// The `next` of the only `TransportClosed` in `events`.
fn next_of(events: &[ClientEvent]) -> NextAttempt {
    let v: Vec<NextAttempt> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::TransportClosed { next, .. } => Some(*next),
            _ => None,
        })
        .collect();
    assert_eq!(v.len(), 1, "one TransportClosed expected in {events:#?}");
    v[0]
}

fn retry_at(events: &[ClientEvent]) -> Instant {
    match next_of(events) {
        NextAttempt::At(t) => t,
        other => panic!("expected a scheduled retry, got {other:?}"),
    }
}

/// The room statuses emitted for `room`, in order.
fn room_statuses(events: &[ClientEvent], room: &RoomKey) -> Vec<RoomStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::RoomStatus { room: r, status } if r == room => Some(*status),
            _ => None,
        })
        .collect()
}

fn conn_statuses(events: &[ClientEvent]) -> Vec<ConnectionStatus> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::ConnectionStatus { status } => Some(*status),
            _ => None,
        })
        .collect()
}

fn join_requests(out: &[Out]) -> Vec<(RoomKey, Bytes, Bytes)> {
    out.iter()
        .filter(|o| matches!(o, Out::Msg(m) if matches!(m.body, OwnedBody::JoinRequest { .. })))
        .map(join_request)
        .collect()
}

fn no_retry_config() -> ClientConfig {
    ClientConfig {
        reconnect: ReconnectConfig { jitter_permille: 0, ..ReconnectConfig::default() },
        ..ClientConfig::default()
    }
}

fn ack_frame(room: &RoomKey, id: BatchId, status: AckStatus) -> Out {
    Out::Msg(OwnedMessage { crdt: room.crdt, room: room.room.clone(), body: OwnedBody::Ack { ref_id: id, status } })
}

fn leave_frame(room: &RoomKey) -> Out {
    Out::Msg(OwnedMessage { crdt: room.crdt, room: room.room.clone(), body: OwnedBody::Leave })
}

/// Server drops the transport, the retry fires, the transport opens: returns the events of the whole cycle.
fn server_restart(c: &mut Client) -> Vec<ClientEvent> {
    c.closed(Some(1001), "server stopping");
    let mut ev = c.events();
    let t = retry_at(&ev);
    c.at(t.as_millis());
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    ev.extend(c.events());
    ev
}

// ---------------------------------------------------------------------------------------------------------------
// Connection lifecycle and status
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn connect_emits_open_then_connected() {
    let mut c = Client::default_config();
    assert_eq!(c.s.status(), ConnectionStatus::Disconnected);
    c.s.connect(c.now).unwrap();
    assert_eq!(c.out(), vec![Out::Open]);
    assert_eq!(c.events(), vec![conn(ConnectionStatus::Connecting)]);
    c.s.transport_opened(c.now);
    assert_eq!(c.events(), vec![conn(ConnectionStatus::Connected)]);
    assert_eq!(c.out(), vec![]);
    // Connecting again while connected does nothing.
    c.s.connect(c.now).unwrap();
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.events(), vec![]);
    assert_eq!(c.s.counters().opens, 1);
}

/// e2e.test.ts:207 — Connecting → Connected; server stop → Disconnected; restart → auto Connected; `close()` →
/// stays Disconnected; `connect()` → Connecting → Connected.
#[test]
fn status_sequence_across_server_restart_close_and_connect() {
    let mut c = Client::default_config();
    c.connect_open();
    assert_eq!(conn_statuses(&c.events()), [ConnectionStatus::Connecting, ConnectionStatus::Connected]);

    c.closed(Some(1001), "server stopping");
    let ev = c.events();
    let t = retry_at(&ev);
    assert_eq!(
        ev,
        vec![
            ClientEvent::TransportClosed {
                code: Some(CloseCode::GOING_AWAY),
                reason: u8s("server stopping"),
                by: ClosedBy::Remote,
                next: NextAttempt::At(t),
            },
            conn(ConnectionStatus::Disconnected),
        ]
    );
    assert!((375..=625).contains(&t.as_millis()), "first retry at {t:?}");
    assert_eq!(c.s.poll_timeout(), Some(t));
    c.at(t.as_millis() - 1);
    assert_eq!(c.out(), vec![]);
    c.at(t.as_millis());
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    assert_eq!(conn_statuses(&c.events()), [ConnectionStatus::Connecting, ConnectionStatus::Connected]);

    c.s.close(c.now);
    assert_eq!(c.out(), vec![Out::Close(CloseCode::NORMAL, "client closed".into())]);
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::TransportClosed {
                code: Some(CloseCode::NORMAL),
                reason: u8s("client closed"),
                by: ClosedBy::Local,
                next: NextAttempt::Never(StopReason::Closed),
            },
            conn(ConnectionStatus::Disconnected),
        ]
    );
    assert_eq!(c.s.poll_timeout(), None);
    c.advance(60_000);
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.events(), vec![]);

    c.s.connect(c.now).unwrap();
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    assert_eq!(conn_statuses(&c.events()), [ConnectionStatus::Connecting, ConnectionStatus::Connected]);
}

#[test]
fn connection_status_is_emitted_once_per_transition() {
    let mut c = Client::default_config();
    c.s.connect(c.now).unwrap();
    c.s.connect(c.now).unwrap();
    c.s.retry_now(c.now).unwrap();
    assert_eq!(c.out(), vec![Out::Open]);
    assert_eq!(c.events(), vec![conn(ConnectionStatus::Connecting)]);
    c.s.transport_opened(c.now);
    c.s.transport_opened(c.now);
    assert_eq!(c.events(), vec![conn(ConnectionStatus::Connected)]);
    assert_eq!(c.s.counters().stale_transport_events, 1);
    c.closed(None, "");
    c.closed(None, "");
    let ev = c.events();
    assert_eq!(conn_statuses(&ev), [ConnectionStatus::Disconnected]);
    assert_eq!(c.s.counters().stale_transport_events, 2);
}

#[test]
fn failed_open_is_a_transient_close() {
    let mut c = Client::default_config();
    c.s.connect(c.now).unwrap();
    c.flush();
    c.closed(None, "");
    let ev = c.events();
    let t = retry_at(&ev);
    assert_eq!(
        ev,
        vec![
            ClientEvent::TransportClosed {
                code: None,
                reason: u8s(""),
                by: ClosedBy::Remote,
                next: NextAttempt::At(t)
            },
            conn(ConnectionStatus::Disconnected),
        ]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Joins
// ---------------------------------------------------------------------------------------------------------------

/// e2e.test.ts:805 — a join issued before any server exists is queued and sent once the transport opens.
#[test]
fn join_before_connect_is_queued_and_sent_on_open() {
    let mut c = Client::default_config();
    let key = c.s.join(c.now, CrdtType::Loro, "queued-join").unwrap();
    assert_eq!(key, loro("queued-join"));
    assert_eq!(c.events(), vec![rs(&key, RoomStatus::Connecting)]);
    assert_eq!(c.out(), vec![]);
    c.advance(200);
    assert_eq!(c.out(), vec![]);

    c.s.connect(c.now).unwrap();
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    let ev = c.events();
    let ticket = ticket_in(&ev);
    assert_eq!(
        ev,
        vec![
            conn(ConnectionStatus::Connecting),
            conn(ConnectionStatus::Connected),
            ClientEvent::JoinParamsNeeded { ticket, room: key.clone(), reason: JoinReason::Initial },
        ]
    );
    c.s.provide_join_params(c.now, ticket, params(b"token", b"v0")).unwrap();
    let out = c.out();
    assert_eq!(join_requests(&out), vec![(key.clone(), b(b"token"), b(b"v0"))]);
    assert_eq!(out.len(), 1);
    c.frame(join_ok(&key, Permission::Write, b"sv", b""));
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::Joined {
                room: key.clone(),
                permission: Permission::Write,
                version: b(b"sv"),
                extra: Bytes::new(),
                rejoin: false,
            },
            rs(&key, RoomStatus::Joined),
        ]
    );
    assert_eq!(c.s.room_status(&key), Some(RoomStatus::Joined));
}

/// e2e.test.ts:839 — `joined` exactly once for an initial join, `connecting` first.
#[test]
fn joined_is_emitted_exactly_once_for_an_initial_join() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    let key = c.s.join(c.now, CrdtType::Loro, "single-join").unwrap();
    let mut ev = c.events();
    c.provide(&ev, b"", b"");
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    // A duplicate answer from the server changes nothing.
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    c.advance(50);
    ev.extend(c.events());
    assert_eq!(room_statuses(&ev, &key), [RoomStatus::Connecting, RoomStatus::Joined]);
    assert_eq!(ev.iter().filter(|e| matches!(e, ClientEvent::Joined { .. })).count(), 1);
    assert_eq!(c.s.counters().unsolicited_join_responses, 1);
}

/// e2e.test.ts:868 and :313 — after a server restart the room rejoins; `joined` once per cycle (two in total),
/// `reconnecting` in between.
#[test]
fn joined_is_emitted_once_per_reconnect_cycle() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "rejoin-once", Permission::Write);
    let mut ev = server_restart(&mut c);
    let ticket = ticket_in(&ev);
    assert!(ev.contains(&ClientEvent::JoinParamsNeeded { ticket, room: key.clone(), reason: JoinReason::Rejoin }));
    c.s.provide_join_params(c.now, ticket, params(b"auth", b"v1")).unwrap();
    assert_eq!(join_requests(&c.out()), vec![(key.clone(), b(b"auth"), b(b"v1"))]);
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    ev.extend(c.events());
    assert_eq!(room_statuses(&ev, &key), [RoomStatus::Reconnecting, RoomStatus::Joined]);
    assert!(ev.contains(&ClientEvent::Joined {
        room: key.clone(),
        permission: Permission::Write,
        version: Bytes::new(),
        extra: Bytes::new(),
        rejoin: true,
    }));
    assert_eq!(ev.iter().filter(|e| matches!(e, ClientEvent::Joined { .. })).count(), 1);
}

/// e2e.test.ts:313 — a server restart: every active room rejoins (each asks for fresh params), then traffic
/// continues.
#[test]
fn server_restart_rejoins_every_room() {
    let (mut c, a) = Client::joined(ClientConfig::default(), CrdtType::Loro, "a", Permission::Write);
    let e = c.join_now(CrdtType::LoroEphemeralPersisted, "b", Permission::Write);
    let ev = server_restart(&mut c);
    let tickets: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            ClientEvent::JoinParamsNeeded { ticket, room, reason: JoinReason::Rejoin } => Some((*ticket, room.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(tickets.iter().map(|t| t.1.clone()).collect::<Vec<_>>(), vec![a.clone(), e.clone()]);
    for (t, _) in &tickets {
        c.s.provide_join_params(c.now, *t, params(b"x", b"")).unwrap();
    }
    assert_eq!(join_requests(&c.out()).len(), 2);
    c.frame(join_ok(&a, Permission::Write, b"", b""));
    c.frame(join_ok(&e, Permission::Write, b"", b""));
    c.flush();
    assert_eq!(c.s.room_status(&a), Some(RoomStatus::Joined));
    assert_eq!(c.s.room_status(&e), Some(RoomStatus::Joined));
    c.s.send(c.now, &a, vec![b(b"after restart")]).unwrap();
    assert_eq!(sent_update(&c.out()[0]).1, vec![b(b"after restart")]);
}

/// e2e.test.ts:574 — the app is asked for auth again on every rejoin (token-1, then token-2).
#[test]
fn every_rejoin_asks_for_fresh_auth_and_version() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "auth-refresh").unwrap();
    let ev = c.events();
    let first = c.provide(&ev, b"token-1", b"v1");
    assert_eq!(join_request(&first), (key.clone(), b(b"token-1"), b(b"v1")));
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    c.flush();
    let ev = server_restart(&mut c);
    let second = c.provide(&ev, b"token-2", b"v2");
    assert_eq!(join_request(&second), (key.clone(), b(b"token-2"), b(b"v2")));
}

/// e2e.test.ts:621 — concurrent joins of one room are one join: same key, one params request, one JoinRequest.
#[test]
fn concurrent_joins_of_one_room_are_one_join() {
    let mut c = Client::default_config();
    let k1 = c.s.join(c.now, CrdtType::Loro, "dup").unwrap();
    let k2 = c.s.join(c.now, CrdtType::Loro, "dup").unwrap();
    c.connect_open();
    let k3 = c.s.join(c.now, CrdtType::Loro, "dup").unwrap();
    assert_eq!(k1, k2);
    assert_eq!(k1, k3);
    let ev = c.events();
    assert_eq!(room_statuses(&ev, &k1), [RoomStatus::Connecting]);
    let t = ticket_in(&ev);
    c.s.provide_join_params(c.now, t, params(b"", b"")).unwrap();
    assert_eq!(join_requests(&c.out()).len(), 1);
    // The same id under another CRDT is another room.
    let other = c.s.join(c.now, CrdtType::Yjs, "dup").unwrap();
    assert_ne!(other, k1);
    assert_eq!(c.s.rooms().count(), 2);
}

#[test]
fn join_ok_surfaces_permission_version_and_extra() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Flock, "meta").unwrap();
    let ev = c.events();
    c.provide(&ev, b"", b"");
    c.frame(join_ok(&key, Permission::Read, &[1, 2, 3], &[9, 8]));
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::Joined {
                room: key.clone(),
                permission: Permission::Read,
                version: Bytes::from_static(&[1, 2, 3]),
                extra: Bytes::from_static(&[9, 8]),
                rejoin: false,
            },
            rs(&key, RoomStatus::Joined),
        ]
    );
    assert_eq!(c.s.room_permission(&key), Some(Permission::Read));
}

/// permission.test.ts:37 — a read-only member receives updates, and its own edits are refused locally instead
/// of being sent to collect `permission_denied`.
#[test]
fn read_only_room_refuses_sends_and_still_receives() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "ro").unwrap();
    let ev = c.events();
    c.provide(&ev, b"", b"");
    // Sent before the join completes: queued, then dropped when the join grants read only.
    let queued = c.s.send(c.now, &key, vec![b(b"early")]).unwrap();
    assert_eq!(c.out(), vec![]);
    c.frame(join_ok(&key, Permission::Read, b"", b""));
    let ev = c.events();
    let id = match &ev[2] {
        ClientEvent::UpdatesDropped { batch_id, .. } => *batch_id,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        ev[2],
        ClientEvent::UpdatesDropped {
            room: key.clone(),
            send: queued,
            batch_id: id,
            reason: DropReason::ReadOnly,
            range: 0..1,
            updates: vec![b(b"early")],
        }
    );
    assert_eq!(c.s.send(c.now, &key, vec![b(b"edit")]), Err(SendError::ReadOnly(key.clone())));
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.s.outbox_bytes(), 0);
    c.frame(doc_update(&key, &[b"from writer"], BatchId::from_u64(5)));
    assert_eq!(
        c.events(),
        vec![ClientEvent::Updates {
            room: key,
            batch_id: BatchId::from_u64(5),
            updates: vec![b(b"from writer")].into()
        }]
    );
}

#[test]
fn join_error_surfaces_code_message_and_app_code() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Yjs, "quota").unwrap();
    let ev = c.events();
    c.provide(&ev, b"", b"");
    let pending = c.s.send(c.now, &key, vec![b(b"u")]).unwrap();
    c.frame(join_error_full(
        &key,
        JoinErrorCode::APP_ERROR,
        "Application specific error",
        None,
        Some("quota_exceeded"),
    ));
    let ev = c.events();
    assert_eq!(ev.len(), 3, "{ev:#?}");
    assert_eq!(
        ev[0],
        ClientEvent::JoinFailed {
            room: key.clone(),
            rejoin: false,
            failure: JoinFailure::Rejected {
                code: JoinErrorCode::APP_ERROR,
                message: u8s("Application specific error"),
                app_code: Some(u8s("quota_exceeded")),
            },
        }
    );
    assert_eq!(ev[1], rs(&key, RoomStatus::Error));
    assert!(
        matches!(&ev[2], ClientEvent::UpdatesDropped { send, reason: DropReason::RoomEnded, .. } if *send == pending)
    );
    assert_eq!(c.s.room_status(&key), None);
    assert_eq!(c.s.send(c.now, &key, vec![b(b"u")]), Err(SendError::UnknownRoom(key)));
}

#[test]
fn auth_failed_fails_the_room() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::LoroEphemeral, "room-1234").unwrap();
    let ev = c.events();
    c.provide(&ev, b"bad", b"");
    c.frame(join_error(&key, JoinErrorCode::AUTH_FAILED, "Invalid credentials"));
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::JoinFailed {
                room: key.clone(),
                rejoin: false,
                failure: JoinFailure::Rejected {
                    code: JoinErrorCode::AUTH_FAILED,
                    message: u8s("Invalid credentials"),
                    app_code: None,
                },
            },
            rs(&key, RoomStatus::Error),
        ]
    );
    assert_eq!(c.out(), vec![]);
    // It is not retried after a reconnect either.
    let ev = server_restart(&mut c);
    assert!(!ev.iter().any(|e| matches!(e, ClientEvent::JoinParamsNeeded { .. })));
}

/// e2e.test.ts:538 — after a restart the server refuses the rejoin: the room ends with `error`.
#[test]
fn rejoin_refused_after_restart_ends_the_room_with_error() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "denied-later", Permission::Write);
    let ev = server_restart(&mut c);
    c.provide(&ev, b"expired", b"");
    c.frame(join_error(&key, JoinErrorCode::AUTH_FAILED, "Authentication failed"));
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::JoinFailed {
                room: key.clone(),
                rejoin: true,
                failure: JoinFailure::Rejected {
                    code: JoinErrorCode::AUTH_FAILED,
                    message: u8s("Authentication failed"),
                    app_code: None,
                },
            },
            rs(&key, RoomStatus::Error),
        ]
    );
    assert_eq!(c.s.room_status(&key), None);
}

#[test]
fn version_unknown_retries_once_with_the_apps_alternative_version() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "vu").unwrap();
    let ev = c.events();
    c.provide(&ev, b"a", b"local-v");
    c.frame(join_error_full(&key, JoinErrorCode::VERSION_UNKNOWN, "Version mismatch", Some(&[99, 100]), None));
    let ev = c.events();
    let t = ticket_in(&ev);
    assert_eq!(
        ev,
        vec![ClientEvent::JoinParamsNeeded {
            ticket: t,
            room: key.clone(),
            reason: JoinReason::VersionUnknown { receiver_version: Some(Bytes::from_static(&[99, 100])) },
        }]
    );
    assert_eq!(c.s.room_status(&key), Some(RoomStatus::Connecting));
    c.s.provide_join_params(c.now, t, params(b"a2", b"alt-encoding")).unwrap();
    assert_eq!(join_requests(&c.out()), vec![(key.clone(), b(b"a2"), b(b"alt-encoding"))]);
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    assert!(matches!(c.events()[0], ClientEvent::Joined { rejoin: false, .. }));
}

/// Handing the server's own `receiver_version` back as ours would skip the backfill: it becomes empty.
#[test]
fn version_unknown_never_claims_the_servers_version() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "vu").unwrap();
    let ev = c.events();
    c.provide(&ev, b"a", b"local-v");
    c.frame(join_error_full(&key, JoinErrorCode::VERSION_UNKNOWN, "?", Some(b"server-v"), None));
    let ev = c.events();
    c.s.provide_join_params(c.now, ticket_in(&ev), params(b"a", b"server-v")).unwrap();
    assert_eq!(join_requests(&c.out()), vec![(key, b(b"a"), Bytes::new())]);
}

/// The official client retries `version_unknown` forever; here a second one fails the join.
#[test]
fn second_version_unknown_fails_the_join() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "vu").unwrap();
    let ev = c.events();
    c.provide(&ev, b"", b"v");
    c.frame(join_error(&key, JoinErrorCode::VERSION_UNKNOWN, "?"));
    let ev = c.events();
    assert!(matches!(
        &ev[0],
        ClientEvent::JoinParamsNeeded { reason: JoinReason::VersionUnknown { receiver_version: None }, .. }
    ));
    c.provide(&ev, b"", b"");
    c.frame(join_error(&key, JoinErrorCode::VERSION_UNKNOWN, "still"));
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::JoinFailed {
                room: key.clone(),
                rejoin: false,
                failure: JoinFailure::Rejected {
                    code: JoinErrorCode::VERSION_UNKNOWN,
                    message: u8s("still"),
                    app_code: None,
                },
            },
            rs(&key, RoomStatus::Error),
        ]
    );
    assert_eq!(c.out(), vec![]);
}

/// client/index.test.ts:70 — a `version_unknown` retry that cannot be sent (the transport dropped) is not
/// lost: the join is asked for again on the next transport.
#[test]
fn version_unknown_retry_pending_across_a_drop_restarts_the_join() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "vu").unwrap();
    let ev = c.events();
    c.provide(&ev, b"", b"v");
    c.frame(join_error(&key, JoinErrorCode::VERSION_UNKNOWN, "?"));
    let stale = ticket_in(&c.events());
    let ev = server_restart(&mut c);
    assert_eq!(c.s.provide_join_params(c.now, stale, JoinParams::default()), Err(ClientError::StaleTicket(stale)));
    let t = ticket_in(&ev);
    assert!(ev.contains(&ClientEvent::JoinParamsNeeded { ticket: t, room: key, reason: JoinReason::Initial }));
}

#[test]
fn stale_tickets_are_refused() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "t").unwrap();
    let t = ticket_in(&c.events());
    c.s.provide_join_params(c.now, t, JoinParams::default()).unwrap();
    assert_eq!(c.s.provide_join_params(c.now, t, JoinParams::default()), Err(ClientError::StaleTicket(t)));
    assert_eq!(join_requests(&c.out()).len(), 1);
    c.s.leave(c.now, &key).unwrap();
    assert_eq!(c.out(), vec![leave_frame(&key)], "the JoinRequest went out: the server is told");
    c.flush();
    // A ticket of a room that left.
    let key = c.s.join(c.now, CrdtType::Loro, "t2").unwrap();
    let t2 = ticket_in(&c.events());
    c.s.leave(c.now, &key).unwrap();
    assert_eq!(c.s.provide_join_params(c.now, t2, JoinParams::default()), Err(ClientError::StaleTicket(t2)));
    assert_eq!(c.out(), vec![], "no JoinRequest went out: no Leave either");
}

#[test]
fn join_params_answered_late_do_not_hold_up_other_rooms() {
    let mut c = Client::default_config();
    c.connect_open();
    let slow = c.s.join(c.now, CrdtType::Loro, "slow").unwrap();
    let t_slow = ticket_in(&c.events());
    let fast = c.s.join(c.now, CrdtType::Loro, "fast").unwrap();
    let t_fast = ticket_in(&c.events());
    c.s.provide_join_params(c.now, t_fast, params(b"f", b"")).unwrap();
    c.frame(join_ok(&fast, Permission::Write, b"", b""));
    c.s.send(c.now, &fast, vec![b(b"x")]).unwrap();
    let out = c.out();
    assert_eq!(join_requests(&out), vec![(fast.clone(), b(b"f"), Bytes::new())]);
    assert_eq!(sent_update(&out[1]).0, fast);
    assert_eq!(c.s.room_status(&slow), Some(RoomStatus::Connecting));
    // Answered much later (a token refresh), the slow room joins too.
    c.advance(30_000);
    c.flush();
    c.s.provide_join_params(c.now, t_slow, params(b"s", b"")).unwrap();
    assert_eq!(join_requests(&c.out()), vec![(slow, b(b"s"), Bytes::new())]);
}

#[test]
fn oversized_join_request_is_refused_and_the_ticket_kept() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "big").unwrap();
    let t = ticket_in(&c.events());
    let huge = JoinParams { auth: Bytes::from(vec![0u8; 300_000]), version: Bytes::new() };
    assert!(matches!(c.s.provide_join_params(c.now, t, huge), Err(ClientError::JoinRequestTooLarge { .. })));
    assert_eq!(c.out(), vec![]);
    c.s.provide_join_params(c.now, t, params(b"ok", b"")).unwrap();
    assert_eq!(join_requests(&c.out()), vec![(key, b(b"ok"), Bytes::new())]);
}

#[test]
fn room_limits_are_enforced() {
    let mut c = Client::new(ClientConfig { max_rooms: 2, ..ClientConfig::default() });
    let long = "x".repeat(129);
    assert_eq!(c.s.join(c.now, CrdtType::Loro, &long), Err(ClientError::RoomIdTooLong { len: 129, max: 128 }));
    c.s.join(c.now, CrdtType::Loro, &"y".repeat(128)).unwrap();
    c.s.join(c.now, CrdtType::Loro, "").unwrap();
    assert_eq!(c.s.join(c.now, CrdtType::Loro, "third"), Err(ClientError::TooManyRooms { max: 2 }));
    // Joining a registered room is still fine.
    c.s.join(c.now, CrdtType::Loro, "").unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Outgoing updates
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn send_packs_updates_into_one_doc_update_with_a_random_batch_id() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "doc", Permission::Write);
    let s1 = c.s.send(c.now, &key, vec![b(b"one"), b(b"two")]).unwrap();
    let out = c.out();
    assert_eq!(out.len(), 1);
    let (room, updates, id1) = sent_update(&out[0]);
    assert_eq!((room, updates), (key.clone(), vec![b(b"one"), b(b"two")]));
    let held: Vec<_> = c.s.outbox_batches().map(|p| (p.batch_id, p.send, p.range, p.in_flight)).collect();
    assert_eq!(held, vec![(id1, s1, 0..2, true)]);
    c.s.send(c.now, &key, vec![b(b"three")]).unwrap();
    let (_, _, id2) = sent_update(&c.out()[0]);
    assert_ne!(id1, id2);
    assert_ne!(id1, BatchId::from_u64(1), "batch ids are random, not sequential");
}

#[test]
fn large_update_is_fragmented_as_one_tracked_batch() {
    let config = ClientConfig { fragmenter: Fragmenter::with_limits(1000, 1024).unwrap(), ..ClientConfig::default() };
    let (mut c, key) = Client::joined(config, CrdtType::Loro, "frag", Permission::Write);
    let big: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
    let send = c.s.send(c.now, &key, vec![Bytes::from(big.clone()), b(b"small")]).unwrap();
    let out = c.out();
    assert_eq!(out.len(), 5, "header, three fragments, then a DocUpdate: {out:?}");
    let OwnedBody::FragmentHeader { batch_id: frag_id, fragment_count: 3, total_size: 2500 } = out[0].msg().body else {
        panic!("expected a header, got {:?}", out[0]);
    };
    let mut joined = Vec::new();
    for (i, o) in out[1..4].iter().enumerate() {
        let OwnedBody::Fragment { batch_id, index, data } = &o.msg().body else { panic!("expected a fragment") };
        assert_eq!((*batch_id, *index as usize), (frag_id, i));
        joined.extend_from_slice(data);
    }
    assert_eq!(joined, big);
    let (_, small, small_id) = sent_update(&out[4]);
    assert_eq!(small, vec![b(b"small")]);
    assert_ne!(small_id, frag_id);
    c.frame(ack(&key, frag_id, AckStatus::OK));
    c.frame(ack(&key, small_id, AckStatus::OK));
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::Acked { room: key.clone(), send, batch_id: frag_id, range: 0..1 },
            ClientEvent::Acked { room: key.clone(), send, batch_id: small_id, range: 1..2 },
        ]
    );
    assert_eq!(c.s.outbox_bytes(), 0);
}

#[test]
fn ack_ok_emits_acked_and_frees_the_outbox() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "doc", Permission::Write);
    let send = c.s.send(c.now, &key, vec![b(b"abc")]).unwrap();
    assert_eq!(c.s.outbox_bytes(), 3 + UPDATE_OVERHEAD);
    let (_, _, id) = sent_update(&c.out()[0]);
    c.frame(ack(&key, id, AckStatus::OK));
    assert_eq!(c.events(), vec![ClientEvent::Acked { room: key.clone(), send, batch_id: id, range: 0..1 }]);
    assert_eq!(c.s.outbox_bytes(), 0);
    // A second Ack for it, or one for another room, is ignored and counted.
    c.frame(ack(&key, id, AckStatus::OK));
    c.frame(ack(&loro("elsewhere"), id, AckStatus::OK));
    assert_eq!(c.events(), vec![]);
    assert_eq!(c.s.counters().unknown_acks, 1);
    assert_eq!(c.s.counters().unknown_room_messages, 1);
}

/// e2e-update-error.test.ts:58 — an error Ack hands the original update bytes back with the status.
#[test]
fn ack_error_hands_back_the_original_updates() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "doc", Permission::Write);
    let send = c.s.send(c.now, &key, vec![b(b"\x01\x02\x03"), b(b"\x04")]).unwrap();
    let (_, _, id) = sent_update(&c.out()[0]);
    c.frame(ack(&key, id, AckStatus::INVALID_UPDATE));
    assert_eq!(
        c.events(),
        vec![ClientEvent::UpdateRejected {
            room: key,
            send,
            batch_id: id,
            status: AckStatus::INVALID_UPDATE,
            range: 0..2,
            updates: vec![b(b"\x01\x02\x03"), b(b"\x04")],
        }]
    );
    assert_eq!(AckStatus::INVALID_UPDATE.0, 4);
    assert_eq!(c.s.outbox_bytes(), 0);
}

/// protocol.md: on `fragment_timeout` the sender SHOULD resend the batch (the official clients never do). Bounded
/// by `max_resends` (3), then reported.
#[test]
fn fragment_timeout_resends_the_batch_then_reports_it_rejected() {
    let config = ClientConfig { fragmenter: Fragmenter::with_limits(600, 600).unwrap(), ..ClientConfig::default() };
    let (mut c, key) = Client::joined(config, CrdtType::Loro, "frag", Permission::Write);
    let send = c.s.send(c.now, &key, vec![Bytes::from(vec![7u8; 1000])]).unwrap();
    let first = c.out();
    assert_eq!(first.len(), 3);
    let OwnedBody::FragmentHeader { batch_id: id, .. } = first[0].msg().body else { panic!() };
    for n in 1..=3 {
        c.frame(ack(&key, id, AckStatus::FRAGMENT_TIMEOUT));
        assert_eq!(c.events(), vec![ClientEvent::BatchResent { room: key.clone(), send, batch_id: id, resends: n }]);
        assert_eq!(c.out(), first, "resend {n} is the same batch, same id");
    }
    c.frame(ack(&key, id, AckStatus::FRAGMENT_TIMEOUT));
    assert_eq!(
        c.events(),
        vec![ClientEvent::UpdateRejected {
            room: key,
            send,
            batch_id: id,
            status: AckStatus::FRAGMENT_TIMEOUT,
            range: 0..1,
            updates: vec![Bytes::from(vec![7u8; 1000])],
        }]
    );
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.s.counters().batches_resent, 3);
}

#[test]
fn updates_sent_before_the_join_completes_go_out_after_it() {
    let mut c = Client::default_config();
    let key = c.s.join(c.now, CrdtType::Loro, "early").unwrap();
    let s1 = c.s.send(c.now, &key, vec![b(b"first")]).unwrap();
    c.connect_open();
    let ev = c.events();
    c.provide(&ev, b"", b"");
    let s2 = c.s.send(c.now, &key, vec![b(b"second")]).unwrap();
    assert_eq!(c.out(), vec![], "nothing is sent before JoinResponseOk");
    assert!(c.s.outbox_batches().all(|p| !p.in_flight));
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    let out = c.out();
    assert_eq!(out.len(), 2);
    assert_eq!(sent_update(&out[0]).1, vec![b(b"first")]);
    assert_eq!(sent_update(&out[1]).1, vec![b(b"second")]);
    let ids: Vec<_> = out.iter().map(|o| sent_update(o).2).collect();
    c.frame(ack(&key, ids[1], AckStatus::OK));
    c.frame(ack(&key, ids[0], AckStatus::OK));
    let ev = c.events();
    assert!(ev.contains(&ClientEvent::Acked { room: key.clone(), send: s2, batch_id: ids[1], range: 0..1 }));
    assert!(ev.contains(&ClientEvent::Acked { room: key, send: s1, batch_id: ids[0], range: 0..1 }));
}

/// e2e.test.ts:367 — an edit made while offline is synced after coming back online (the official client drops
/// it and relies on the adaptor's resync).
#[test]
fn updates_sent_while_disconnected_go_out_after_the_rejoin() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "offline-edit", Permission::Write);
    c.s.set_network_online(c.now, false);
    c.flush();
    let send = c.s.send(c.now, &key, vec![b(b"offline edit")]).unwrap();
    assert_eq!(c.out(), vec![]);
    c.advance(5_000);
    c.s.set_network_online(c.now, true);
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    let ev = c.events();
    c.provide(&ev, b"", b"");
    assert_eq!(c.out(), vec![], "held until the rejoin succeeds");
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    let out = c.out();
    let (_, updates, id) = sent_update(&out[0]);
    assert_eq!(updates, vec![b(b"offline edit")]);
    c.frame(ack(&key, id, AckStatus::OK));
    let ev = c.events();
    assert!(matches!(ev[0], ClientEvent::Joined { rejoin: true, .. }));
    assert_eq!(ev.last(), Some(&ClientEvent::Acked { room: key, send, batch_id: id, range: 0..1 }));
}

/// Unacknowledged batches are resent (same id, same bytes) after the reconnect and the rejoin, and end with one
/// Ack each; edits made in the rejoin window wait for the rejoin instead of collecting `permission_denied`.
#[test]
fn unacked_batches_are_resent_after_reconnect_and_rejoin() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "resend", Permission::Write);
    let send = c.s.send(c.now, &key, vec![b(b"u1")]).unwrap();
    let first = c.out();
    let (_, _, id) = sent_update(&first[0]);
    let ev = server_restart(&mut c);
    assert!(c.s.outbox_batches().all(|p| !p.in_flight));
    c.provide(&ev, b"", b"");
    let window = c.s.send(c.now, &key, vec![b(b"u2")]).unwrap();
    assert_eq!(c.out(), vec![]);
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    let out = c.out();
    assert_eq!(out[0], first[0]);
    let (_, u2, id2) = sent_update(&out[1]);
    assert_eq!(u2, vec![b(b"u2")]);
    c.frame(ack(&key, id, AckStatus::OK));
    c.frame(ack(&key, id2, AckStatus::OK));
    let ev = c.events();
    assert_eq!(
        ev[ev.len() - 2..],
        [
            ClientEvent::Acked { room: key.clone(), send, batch_id: id, range: 0..1 },
            ClientEvent::Acked { room: key, send: window, batch_id: id2, range: 0..1 },
        ]
    );
    assert_eq!(c.s.counters().batches_resent, 1);
}

#[test]
fn outbox_budget_refuses_sends_past_it() {
    let config = ClientConfig { max_outbox_bytes: 200, ..ClientConfig::default() };
    let (mut c, key) = Client::joined(config, CrdtType::Loro, "budget", Permission::Write);
    let u = Bytes::from(vec![1u8; 100]);
    c.s.send(c.now, &key, vec![u.clone()]).unwrap();
    let (_, _, id) = sent_update(&c.out()[0]);
    assert_eq!(c.s.outbox_bytes(), 100 + UPDATE_OVERHEAD);
    assert_eq!(
        c.s.send(c.now, &key, vec![u.clone()]),
        Err(SendError::OutboxFull { needed: 100 + UPDATE_OVERHEAD, available: 200 - 100 - UPDATE_OVERHEAD })
    );
    assert_eq!(c.out(), vec![]);
    c.frame(ack(&key, id, AckStatus::OK));
    c.s.send(c.now, &key, vec![u]).unwrap();
    // Disconnected, the budget still holds.
    c.s.close(c.now);
    c.flush();
    assert_eq!(c.s.outbox_bytes(), 0);
}

/// Ephemeral state (%EPH, %YAW) is stale after a reconnect: its batches are dropped with a reason, not replayed.
#[test]
fn ephemeral_rooms_are_not_replayed_after_a_reconnect() {
    let (mut c, eph) = Client::joined(ClientConfig::default(), CrdtType::LoroEphemeral, "presence", Permission::Write);
    let doc = c.join_now(CrdtType::Loro, "doc", Permission::Write);
    let s_eph = c.s.send(c.now, &eph, vec![b(b"cursor")]).unwrap();
    c.s.send(c.now, &doc, vec![b(b"edit")]).unwrap();
    let out = c.out();
    let (_, _, eph_id) = sent_update(&out[0]);
    let ev = server_restart(&mut c);
    assert!(ev.contains(&ClientEvent::UpdatesDropped {
        room: eph.clone(),
        send: s_eph,
        batch_id: eph_id,
        reason: DropReason::EphemeralNotReplayed,
        range: 0..1,
        updates: vec![b(b"cursor")],
    }));
    for e in &ev {
        if let ClientEvent::JoinParamsNeeded { ticket, .. } = e {
            c.s.provide_join_params(c.now, *ticket, JoinParams::default()).unwrap();
        }
    }
    c.flush();
    c.frame(join_ok(&eph, Permission::Write, b"", b""));
    assert_eq!(c.out(), vec![], "nothing replayed for the ephemeral room");
    c.frame(join_ok(&doc, Permission::Write, b"", b""));
    assert_eq!(sent_update(&c.out()[0]).1, vec![b(b"edit")]);
}

#[test]
fn ephemeral_replay_can_be_enabled() {
    let config = ClientConfig { replay_ephemeral: true, ..ClientConfig::default() };
    let (mut c, eph) = Client::joined(config, CrdtType::YjsAwareness, "aw", Permission::Write);
    c.s.send(c.now, &eph, vec![b(b"state")]).unwrap();
    let first = c.out();
    let ev = server_restart(&mut c);
    c.provide(&ev, b"", b"");
    c.frame(join_ok(&eph, Permission::Write, b"", b""));
    assert_eq!(c.out(), first);
}

#[test]
fn batch_ids_stay_unique_with_a_colliding_rng() {
    struct Constant;
    impl loro_sansio::rand_core::TryRng for Constant {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(7)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(7)
        }
        fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> {
            d.fill(7);
            Ok(())
        }
    }
    let mut c = Client { s: ClientSession::new(ClientConfig::default(), Constant), now: Instant::ZERO };
    c.connect_open();
    let key = c.join_now(CrdtType::Loro, "r", Permission::Write);
    for i in 0..5u8 {
        c.s.send(c.now, &key, vec![Bytes::from(vec![i])]).unwrap();
    }
    let ids: std::collections::BTreeSet<BatchId> = c.out().iter().map(|o| sent_update(o).2).collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(c.s.outbox_batches().count(), 5);
}

#[test]
fn sends_to_unknown_rooms_and_empty_sends_are_refused() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    assert_eq!(c.s.send(c.now, &loro("nope"), vec![b(b"x")]), Err(SendError::UnknownRoom(loro("nope"))));
    assert_eq!(c.s.send(c.now, &key, vec![]), Err(SendError::NoUpdates));
    // An empty update is a valid update.
    c.s.send(c.now, &key, vec![Bytes::new()]).unwrap();
    assert_eq!(sent_update(&c.out()[0]).1, vec![Bytes::new()]);
}

// ---------------------------------------------------------------------------------------------------------------
// Incoming updates and reassembly
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn incoming_doc_update_is_one_event_of_zero_copy_slices() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Yjs, "room-1234", Permission::Write);
    let Frame::Binary(buf) = doc_update(&key, &[&[1, 2, 3], &[4, 5, 6, 7], &[8]], BatchId([1, 2, 3, 4, 5, 6, 7, 8]))
    else {
        unreachable!()
    };
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    c.frame(Frame::Binary(buf.clone()));
    let ev = c.events();
    assert_eq!(
        ev,
        vec![ClientEvent::Updates {
            room: key,
            batch_id: BatchId([1, 2, 3, 4, 5, 6, 7, 8]),
            updates: vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4, 5, 6, 7]), Bytes::from_static(&[8])]
                .into(),
        }]
    );
    let ClientEvent::Updates { updates, .. } = &ev[0] else { unreachable!() };
    for u in updates {
        assert!(range.contains(&(u.as_ptr() as usize)), "update was copied out of the frame");
    }
    for u in updates.clone() {
        assert!(range.contains(&(u.as_ptr() as usize)), "an update handle was copied out of the frame");
    }
    assert_eq!(c.out(), vec![], "the client never acks a server batch that applied");
}

#[test]
fn incoming_fragments_are_reassembled_into_one_event() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Elo, "enc", Permission::Write);
    let id = BatchId::from_u64(0xff11_2233_4455_6677);
    c.frame(frag_header(&key, id, 3, 10));
    c.frame(fragment(&key, id, 2, b"ij"));
    c.frame(fragment(&key, id, 0, b"abcd"));
    assert_eq!(c.events(), vec![]);
    c.frame(fragment(&key, id, 1, b"efgh"));
    assert_eq!(
        c.events(),
        vec![ClientEvent::Updates { room: key, batch_id: id, updates: vec![b(b"abcdefghij")].into() }]
    );
    assert_eq!(c.out(), vec![]);
}

/// The official clients send `Ack(fragment_timeout)` when a server batch does not complete in time (10 s).
#[test]
fn reassembly_expiry_acks_fragment_timeout_to_the_server() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "slow", Permission::Write);
    let id = BatchId::from_u64(42);
    c.frame(frag_header(&key, id, 2, 8));
    c.frame(fragment(&key, id, 0, b"abcd"));
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(10_000)));
    c.at(9_999);
    assert_eq!(c.out(), vec![]);
    c.at(10_000);
    assert_eq!(c.out(), vec![ack_frame(&key, id, AckStatus::FRAGMENT_TIMEOUT)]);
    assert_eq!(
        c.events(),
        vec![ClientEvent::IncomingBatchFailed { room: key.clone(), batch_id: id, failure: IncomingFailure::Expired }]
    );
    // A late fragment is ignored quietly.
    c.frame(fragment(&key, id, 1, b"efgh"));
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.events(), vec![]);
}

#[test]
fn refused_incoming_batches_are_answered_with_an_ack() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "bad", Permission::Write);
    let id = BatchId::from_u64(1);
    c.frame(frag_header(&key, id, 0, 0));
    assert_eq!(c.out(), vec![ack_frame(&key, id, AckStatus::INVALID_UPDATE)]);
    assert_eq!(
        c.events(),
        vec![ClientEvent::IncomingBatchFailed {
            room: key.clone(),
            batch_id: id,
            failure: IncomingFailure::Rejected(RejectReason::ZeroFragments),
        }]
    );
    let stray = BatchId::from_u64(2);
    c.frame(fragment(&key, stray, 0, b"x"));
    assert_eq!(c.out(), vec![ack_frame(&key, stray, AckStatus::FRAGMENT_TIMEOUT)]);
    assert_eq!(
        c.events(),
        vec![ClientEvent::IncomingBatchFailed {
            room: key,
            batch_id: stray,
            failure: IncomingFailure::Rejected(RejectReason::NoHeader),
        }]
    );
}

#[test]
fn messages_for_unregistered_rooms_are_dropped_and_counted() {
    let (mut c, _key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "mine", Permission::Write);
    let other = loro("not-mine");
    c.frame(doc_update(&other, &[b"x"], BatchId::from_u64(1)));
    c.frame(frag_header(&other, BatchId::from_u64(2), 2, 10));
    c.frame(room_error(&other, RoomErrorCode::EVICTED, "x"));
    c.frame(join_ok(&other, Permission::Write, b"", b""));
    assert_eq!(c.events(), vec![]);
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.s.counters().unknown_room_messages, 4);
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(20_000)), "no reassembly state was created");
}

// ---------------------------------------------------------------------------------------------------------------
// Keepalive
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn server_ping_is_answered_with_pong() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    c.text("ping");
    assert_eq!(c.out(), vec![Out::Text("pong".into())]);
    assert_eq!(c.events(), vec![]);
}

#[test]
fn ping_after_twenty_seconds_of_receive_silence() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(20_000)));
    c.at(15_000);
    c.text("ping"); // receiving anything restarts the silence timer
    c.flush();
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(35_000)));
    c.at(34_999);
    assert_eq!(c.out(), vec![]);
    c.at(35_000);
    assert_eq!(c.out(), vec![Out::Text("ping".into())]);
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(45_000)), "pong deadline 10 s after the ping");
}

/// e2e.test.ts:913 — unanswered pings force a close (4000, browser-legal) and a reconnect; once pongs come
/// back the client stays connected. Detection is 20 s + 2 × 10 s after the last frame, not quantised to the
/// interval.
#[test]
fn two_missed_pongs_close_with_4000_and_reconnect() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    c.at(20_000);
    assert_eq!(c.out(), vec![Out::Text("ping".into())]);
    c.at(30_000);
    assert_eq!(c.out(), vec![Out::Text("ping".into())], "a miss sends the next ping at once");
    assert_eq!(c.events(), vec![]);
    c.at(39_999);
    assert_eq!(c.out(), vec![]);
    c.at(40_000);
    assert_eq!(c.out(), vec![Out::Close(CloseCode::PING_TIMEOUT, "ping_timeout".into())]);
    let ev = c.events();
    let t = retry_at(&ev);
    assert_eq!(
        ev,
        vec![
            ClientEvent::TransportClosed {
                code: Some(CloseCode::PING_TIMEOUT),
                reason: u8s("ping_timeout"),
                by: ClosedBy::Local,
                next: NextAttempt::At(t),
            },
            conn(ConnectionStatus::Disconnected),
        ]
    );
    assert_eq!(c.s.counters().missed_pongs, 2);
    c.at(t.as_millis());
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    c.flush();
    for _ in 0..3 {
        c.advance(20_000);
        assert_eq!(c.out(), vec![Out::Text("ping".into())]);
        c.advance(30);
        c.text("pong");
        assert!(matches!(c.events()[..], [ClientEvent::Latency { .. }]));
    }
    assert_eq!(c.s.status(), ConnectionStatus::Connected);
}

#[test]
fn frames_received_while_waiting_for_a_pong_keep_the_transport() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    c.at(20_000);
    c.at(30_000); // first miss, second ping
    c.flush();
    c.at(35_000);
    c.text("ping"); // the server is alive, just slow to answer pings
    c.at(40_000);
    assert_eq!(c.out(), vec![Out::Text("pong".into()), Out::Text("ping".into())]);
    assert_eq!(c.s.status(), ConnectionStatus::Connected);
}

#[test]
fn pong_reports_latency() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    c.at(20_000);
    c.flush();
    c.at(20_150);
    c.text("pong");
    assert_eq!(c.events(), vec![ClientEvent::Latency { rtt: Duration::from_millis(150) }]);
    assert_eq!(c.s.latency(), Some(Duration::from_millis(150)));
    // An unsolicited pong measures nothing.
    c.text("pong");
    assert_eq!(c.events(), vec![]);
}

/// e2e.test.ts:199 and :282 — `ping()` resolves with a pong; latency is reported and readable.
#[test]
fn manual_ping_resolves_with_a_pong() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    c.at(1_000);
    let p1 = c.s.ping(c.now);
    assert_eq!(c.out(), vec![Out::Text("ping".into())]);
    c.at(1_010);
    let p2 = c.s.ping(c.now); // joins the outstanding probe
    assert_eq!(c.out(), vec![]);
    c.at(1_040);
    c.text("pong");
    let rtt = Duration::from_millis(40);
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::Latency { rtt },
            ClientEvent::PingResult { id: p1, outcome: PingOutcome::Pong { rtt } },
            ClientEvent::PingResult { id: p2, outcome: PingOutcome::Pong { rtt } },
        ]
    );
    assert_eq!(c.s.latency(), Some(rtt));
}

#[test]
fn manual_ping_times_out_after_five_seconds() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    let p = c.s.ping(c.now);
    c.flush();
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(5_000)));
    c.at(4_999);
    assert_eq!(c.events(), vec![]);
    c.at(5_000);
    assert_eq!(c.events(), vec![ClientEvent::PingResult { id: p, outcome: PingOutcome::TimedOut }]);
}

#[test]
fn manual_ping_without_a_transport_resolves_at_once() {
    let mut c = Client::default_config();
    let p = c.s.ping(c.now);
    assert_eq!(c.events(), vec![ClientEvent::PingResult { id: p, outcome: PingOutcome::NotConnected }]);
    assert_eq!(c.out(), vec![]);
    c.connect_open();
    c.flush();
    let p = c.s.ping(c.now);
    c.closed(Some(1006), "");
    let ev = c.events();
    assert_eq!(ev.last(), Some(&ClientEvent::PingResult { id: p, outcome: PingOutcome::Disconnected }));
}

/// e2e.test.ts:656 — `destroy()` rejects a pending ping.
#[test]
fn destroy_rejects_a_pending_ping() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    let p = c.s.ping(c.now);
    c.flush();
    c.s.destroy(c.now);
    let ev = c.events();
    assert!(ev.contains(&ClientEvent::PingResult { id: p, outcome: PingOutcome::Closed }));
    let p2 = c.s.ping(c.now);
    assert_eq!(c.events(), vec![ClientEvent::PingResult { id: p2, outcome: PingOutcome::Closed }]);
}

#[test]
fn keepalive_can_be_disabled() {
    let config = ClientConfig {
        keepalive: KeepaliveConfig { ping_interval: None, ..KeepaliveConfig::default() },
        ..ClientConfig::default()
    };
    let mut c = Client::new(config);
    c.connect_open();
    c.flush();
    assert_eq!(c.s.poll_timeout(), None);
    c.advance(120_000);
    assert_eq!(c.out(), vec![]);
    // Manual pings still work and time out on their own.
    let p = c.s.ping(c.now);
    assert_eq!(c.out(), vec![Out::Text("ping".into())]);
    c.advance(10_000);
    assert_eq!(c.events(), vec![ClientEvent::PingResult { id: p, outcome: PingOutcome::TimedOut }]);
    assert_eq!(c.s.status(), ConnectionStatus::Connected);
    assert_eq!(c.out(), vec![]);
}

#[test]
fn other_text_frames_are_counted_and_ignored() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    c.text("PING");
    c.text("hello");
    c.text("ping ");
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.events(), vec![]);
    assert_eq!(c.s.counters().ignored_text_frames, 3);
}

// ---------------------------------------------------------------------------------------------------------------
// Reconnect schedule and fatal closes
// ---------------------------------------------------------------------------------------------------------------

/// Backoff from 500 ms doubling to a 15 s cap; the ±25 % jitter applies after the cap, so capped retries keep
/// their spread (the official client caps after jittering, which lines clients up at exactly 15 s).
#[test]
fn backoff_doubles_to_a_cap_with_jitter_after_the_cap() {
    let mut c = Client::new(no_retry_config());
    c.connect_open();
    let mut delays = Vec::new();
    for _ in 0..8 {
        let closed_at = c.now;
        c.closed(Some(1006), "");
        let t = retry_at(&c.events());
        delays.push((t - closed_at).as_millis());
        c.at(t.as_millis());
        assert_eq!(c.out(), vec![Out::Open]);
        c.s.transport_opened(c.now);
        c.flush();
    }
    assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);

    let mut c = Client::default_config();
    c.connect_open();
    let mut capped = Vec::new();
    for attempt in 1..=12 {
        let closed_at = c.now;
        c.closed(Some(1006), "");
        let t = retry_at(&c.events());
        let d = (t - closed_at).as_millis() as u64;
        if attempt >= 6 {
            assert!((11_250..=18_750).contains(&d), "capped delay {d} outside 15 s ± 25 %");
            capped.push(d);
        }
        c.at(t.as_millis());
        c.out();
        c.s.transport_opened(c.now);
        c.flush();
    }
    capped.sort();
    capped.dedup();
    assert!(capped.len() >= 5, "capped delays are not spread: {capped:?}");
}

#[test]
fn a_frame_received_resets_the_backoff() {
    let mut c = Client::new(no_retry_config());
    c.connect_open();
    for _ in 0..3 {
        c.closed(Some(1006), "");
        let t = retry_at(&c.events());
        c.at(t.as_millis());
        c.out();
        c.s.transport_opened(c.now);
    }
    c.text("ping"); // the server talks: the connection is healthy
    c.flush();
    let closed_at = c.now;
    c.closed(Some(1006), "");
    assert_eq!(retry_at(&c.events()) - closed_at, Duration::from_millis(500));
}

/// e2e.test.ts:705 — a fatal close (1008) stops automatic retries; `retry_now()` reconnects.
#[test]
fn fatal_close_1008_stops_retries_until_retry_now() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    c.closed(Some(1008), "policy");
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::TransportClosed {
                code: Some(CloseCode::POLICY),
                reason: u8s("policy"),
                by: ClosedBy::Remote,
                next: NextAttempt::Never(StopReason::Fatal),
            },
            conn(ConnectionStatus::Disconnected),
            rs(&key, RoomStatus::Disconnected),
        ]
    );
    assert_eq!(c.s.poll_timeout(), None);
    assert_eq!(c.s.stopped(), Some(StopReason::Fatal));
    c.advance(60_000);
    assert_eq!(c.out(), vec![]);
    c.s.retry_now(c.now).unwrap();
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    let ev = c.events();
    assert_eq!(room_statuses(&ev, &key), [RoomStatus::Reconnecting]);
    assert!(matches!(ev.last(), Some(ClientEvent::JoinParamsNeeded { reason: JoinReason::Rejoin, .. })));
}

#[test]
fn fatal_close_reasons_stop_retries_whatever_the_code() {
    for reason in ["permission_changed", "room_closed", "auth_failed"] {
        let mut c = Client::default_config();
        c.connect_open();
        c.flush();
        c.closed(Some(1000), reason);
        assert_eq!(next_of(&c.events()), NextAttempt::Never(StopReason::Fatal), "{reason}");
    }
}

#[test]
fn close_codes_4400_to_4499_are_fatal() {
    for (code, fatal) in [(4399, false), (4400, true), (4450, true), (4499, true), (4500, false)] {
        let mut c = Client::default_config();
        c.connect_open();
        c.flush();
        c.closed(Some(code), "");
        let next = next_of(&c.events());
        assert_eq!(next == NextAttempt::Never(StopReason::Fatal), fatal, "code {code}: {next:?}");
    }
}

/// 1011 (a crashed server) is retried, unlike the official client; 1013 and other codes too.
#[test]
fn close_1011_1013_and_others_are_retried() {
    for code in [Some(1000), Some(1001), Some(1002), Some(1006), Some(1009), Some(1011), Some(1013), None] {
        let mut c = Client::default_config();
        c.connect_open();
        c.flush();
        c.closed(code, "");
        assert!(matches!(next_of(&c.events()), NextAttempt::At(_)), "{code:?}");
    }
}

/// e2e.test.ts:769 — `maxAttempts: 1` against a server that always closes 1011: the pending join fails, the
/// client ends Disconnected and the room `disconnected`.
#[test]
fn max_attempts_with_a_server_that_always_closes_1011() {
    let config = ClientConfig {
        reconnect: ReconnectConfig { max_attempts: Some(1), ..ReconnectConfig::default() },
        ..ClientConfig::default()
    };
    let mut c = Client::new(config);
    let key = c.s.join(c.now, CrdtType::Loro, "limited-room").unwrap();
    c.connect_open();
    c.closed(Some(1011), "boom");
    let t = retry_at(&c.events());
    c.at(t.as_millis());
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    c.flush();
    c.closed(Some(1011), "boom");
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::TransportClosed {
                code: Some(CloseCode::INTERNAL_ERROR),
                reason: u8s("boom"),
                by: ClosedBy::Remote,
                next: NextAttempt::Never(StopReason::MaxAttempts),
            },
            conn(ConnectionStatus::Disconnected),
            ClientEvent::JoinFailed {
                room: key.clone(),
                rejoin: false,
                failure: JoinFailure::Stopped(StopReason::MaxAttempts),
            },
            rs(&key, RoomStatus::Disconnected),
        ]
    );
    assert_eq!(c.s.status(), ConnectionStatus::Disconnected);
    assert_eq!(c.s.poll_timeout(), None);
}

#[test]
fn reconnect_can_be_disabled() {
    let config = ClientConfig {
        reconnect: ReconnectConfig { enabled: false, ..ReconnectConfig::default() },
        ..ClientConfig::default()
    };
    let (mut c, key) = Client::joined(config, CrdtType::Loro, "r", Permission::Write);
    c.closed(Some(1006), "");
    let ev = c.events();
    assert_eq!(next_of(&ev), NextAttempt::Never(StopReason::Disabled));
    assert_eq!(room_statuses(&ev, &key), [RoomStatus::Disconnected]);
    assert_eq!(c.s.room_status(&key), Some(RoomStatus::Disconnected));
}

/// e2e.test.ts:367 — offline closes the transport (4001; the official client's 1001 is refused by browsers)
/// and pauses retries; online reconnects at once and every room rejoins.
#[test]
fn offline_closes_with_4001_and_online_reconnects_at_once() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    c.s.set_network_online(c.now, false);
    assert_eq!(c.out(), vec![Out::Close(CloseCode::OFFLINE, "offline".into())]);
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::TransportClosed {
                code: Some(CloseCode::OFFLINE),
                reason: u8s("offline"),
                by: ClosedBy::Local,
                next: NextAttempt::WhenOnline,
            },
            conn(ConnectionStatus::Disconnected),
            rs(&key, RoomStatus::Reconnecting),
        ]
    );
    assert_eq!(c.s.poll_timeout(), None);
    c.advance(120_000);
    assert_eq!(c.out(), vec![]);
    c.s.set_network_online(c.now, true);
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    let ev = c.events();
    c.provide(&ev, b"", b"");
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    assert_eq!(c.s.room_status(&key), Some(RoomStatus::Joined));
}

/// e2e.test.ts:452 — offline with no online signal: retries stay paused even while waiting for a retry;
/// `retry_now()` reconnects anyway.
#[test]
fn offline_without_online_stays_paused_until_retry_now() {
    let mut c = Client::default_config();
    c.connect_open();
    c.closed(Some(1006), "");
    c.flush();
    assert!(c.s.next_retry().is_some());
    c.s.set_network_online(c.now, false);
    assert_eq!(c.out(), vec![], "no transport to close");
    assert_eq!(c.s.next_retry(), None);
    assert_eq!(c.s.poll_timeout(), None);
    c.advance(60_000);
    assert_eq!(c.out(), vec![]);
    c.s.retry_now(c.now).unwrap();
    assert_eq!(c.out(), vec![Out::Open]);
    c.s.transport_opened(c.now);
    assert_eq!(c.s.status(), ConnectionStatus::Connected);
    // A drop while still flagged offline waits for the online signal.
    c.flush();
    c.closed(Some(1006), "");
    assert_eq!(next_of(&c.events()), NextAttempt::WhenOnline);
}

/// e2e.test.ts:689 — `close()` then an immediate `connect()` reconnects without hanging.
#[test]
fn close_then_immediate_connect_reconnects() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    c.s.close(c.now);
    c.s.connect(c.now).unwrap();
    assert_eq!(c.out(), vec![Out::Close(CloseCode::NORMAL, "client closed".into()), Out::Open]);
    c.s.transport_opened(c.now);
    let ev = c.events();
    assert_eq!(
        conn_statuses(&ev),
        [ConnectionStatus::Disconnected, ConnectionStatus::Connecting, ConnectionStatus::Connected]
    );
    assert_eq!(room_statuses(&ev, &key), [RoomStatus::Disconnected, RoomStatus::Reconnecting]);
    c.provide(&ev, b"", b"");
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    assert_eq!(c.s.room_status(&key), Some(RoomStatus::Joined));
}

/// Nothing hangs after `close()` (the official client's join promises do): a pending join fails, the outbox is
/// dropped with a reason, pings resolve, no timer stays armed; joined rooms stay registered.
#[test]
fn close_ends_every_pending_operation() {
    let (mut c, joined) = Client::joined(ClientConfig::default(), CrdtType::Loro, "joined", Permission::Write);
    let pending = c.s.join(c.now, CrdtType::Loro, "pending").unwrap();
    c.flush();
    let s1 = c.s.send(c.now, &joined, vec![b(b"in flight")]).unwrap();
    let s2 = c.s.send(c.now, &pending, vec![b(b"queued")]).unwrap();
    let out = c.out();
    let (_, _, id1) = sent_update(&out[0]);
    let ping = c.s.ping(c.now);
    c.flush();
    c.s.close(c.now);
    assert_eq!(c.out(), vec![Out::Close(CloseCode::NORMAL, "client closed".into())]);
    let ev = c.events();
    let id2 = c_batch_id(&ev, s2);
    assert_eq!(
        ev,
        vec![
            ClientEvent::TransportClosed {
                code: Some(CloseCode::NORMAL),
                reason: u8s("client closed"),
                by: ClosedBy::Local,
                next: NextAttempt::Never(StopReason::Closed),
            },
            conn(ConnectionStatus::Disconnected),
            rs(&joined, RoomStatus::Disconnected),
            ClientEvent::JoinFailed { room: pending.clone(), rejoin: false, failure: JoinFailure::Closed },
            rs(&pending, RoomStatus::Disconnected),
            ClientEvent::UpdatesDropped {
                room: joined.clone(),
                send: s1,
                batch_id: id1,
                reason: DropReason::Closed,
                range: 0..1,
                updates: vec![b(b"in flight")],
            },
            ClientEvent::UpdatesDropped {
                room: pending.clone(),
                send: s2,
                batch_id: id2,
                reason: DropReason::Closed,
                range: 0..1,
                updates: vec![b(b"queued")],
            },
            ClientEvent::PingResult { id: ping, outcome: PingOutcome::Closed },
        ]
    );
    assert_eq!(c.s.poll_timeout(), None);
    assert_eq!(c.s.outbox_bytes(), 0);
    assert_eq!(c.s.rooms().map(|(k, s)| (k.clone(), s)).collect::<Vec<_>>(), vec![(joined, RoomStatus::Disconnected)]);
}

fn c_batch_id(events: &[ClientEvent], send: loro_sansio::client::SendId) -> BatchId {
    events
        .iter()
        .find_map(|e| match e {
            ClientEvent::UpdatesDropped { send: s, batch_id, .. } if *s == send => Some(*batch_id),
            _ => None,
        })
        .expect("a drop for the send")
}

#[test]
fn destroy_forgets_rooms_and_refuses_commands() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    c.s.destroy(c.now);
    assert_eq!(c.out(), vec![Out::Close(CloseCode::NORMAL, "client destroyed".into())]);
    let ev = c.events();
    assert_eq!(next_of(&ev), NextAttempt::Never(StopReason::Destroyed));
    assert_eq!(room_statuses(&ev, &key), [RoomStatus::Disconnected]);
    assert_eq!(c.s.rooms().count(), 0);
    assert!(c.s.is_destroyed());
    assert_eq!(c.s.connect(c.now), Err(ClientError::Destroyed));
    assert_eq!(c.s.retry_now(c.now), Err(ClientError::Destroyed));
    assert_eq!(c.s.join(c.now, CrdtType::Loro, "r"), Err(ClientError::Destroyed));
    assert_eq!(c.s.leave(c.now, &key), Err(ClientError::Destroyed));
    assert_eq!(c.s.send(c.now, &key, vec![b(b"x")]), Err(SendError::Destroyed));
    c.s.transport_opened(c.now);
    c.frame(Frame::ping());
    c.s.set_network_online(c.now, false);
    c.advance(100_000);
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.events(), vec![]);
    assert_eq!(c.s.poll_timeout(), None);
}

/// Every close code the client sends is one a browser accepts (1000, 3000–4999); the harness asserts it on
/// every transmit, this test visits each path.
#[test]
fn client_close_codes_are_browser_legal() {
    let mut sent = Vec::new();
    // 4000 ping timeout
    let mut c = Client::default_config();
    c.connect_open();
    for ms in [20_000, 30_000, 40_000] {
        c.at(ms);
    }
    sent.extend(c.out());
    // 4001 offline
    let mut c = Client::default_config();
    c.connect_open();
    c.s.set_network_online(c.now, false);
    sent.extend(c.out());
    // 4002 protocol error
    let mut c = Client::new(ClientConfig { close_on_protocol_error: true, ..ClientConfig::default() });
    c.connect_open();
    c.frame(Frame::Binary(Bytes::from_static(b"junk")));
    sent.extend(c.out());
    // 1000 close and destroy
    let mut c = Client::default_config();
    c.connect_open();
    c.s.close(c.now);
    c.s.connect(c.now).unwrap();
    c.s.transport_opened(c.now);
    c.s.destroy(c.now);
    sent.extend(c.out());
    let codes: Vec<u16> = sent
        .iter()
        .filter_map(|o| match o {
            Out::Close(code, _) => Some(code.0),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [4000, 4001, 4002, 1000, 1000]);
    assert!(codes.iter().all(|c| CloseCode(*c).is_client_sendable()));
}

// ---------------------------------------------------------------------------------------------------------------
// RoomError and leave
// ---------------------------------------------------------------------------------------------------------------

/// e2e.test.ts:966 — RoomError `evicted`: the room ends, no rejoin (one JoinRequest in total), not even after a
/// reconnect.
#[test]
fn evicted_ends_the_room_without_rejoin() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "room-evict").unwrap();
    let ev = c.events();
    let mut join_count = join_requests(&[c.provide(&ev, b"", b"")]).len();
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    let send = c.s.send(c.now, &key, vec![b(b"x")]).unwrap();
    c.flush();
    c.frame(room_error(&key, RoomErrorCode::EVICTED, "evicted"));
    let ev = c.events();
    assert_eq!(ev.len(), 3, "{ev:#?}");
    assert_eq!(
        ev[..2],
        [
            ClientEvent::RoomError {
                room: key.clone(),
                code: RoomErrorCode::EVICTED,
                message: u8s("evicted"),
                action: RoomErrorAction::Ended,
            },
            rs(&key, RoomStatus::Error),
        ]
    );
    assert!(matches!(&ev[2], ClientEvent::UpdatesDropped { send: s, reason: DropReason::RoomEnded, .. } if *s == send));
    c.advance(400);
    join_count += join_requests(&c.out()).len();
    let ev = server_restart(&mut c);
    assert!(!ev.iter().any(|e| matches!(e, ClientEvent::JoinParamsNeeded { .. })));
    join_count += join_requests(&c.out()).len();
    assert_eq!(join_count, 1);
}

/// e2e.test.ts:1017 — RoomError `rejoin_suggested`: exactly one rejoin (two JoinRequests in total).
#[test]
fn rejoin_suggested_rejoins_exactly_once() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "room-rejoin", Permission::Write);
    c.frame(room_error(&key, RoomErrorCode::REJOIN_SUGGESTED, "please rejoin"));
    let ev = c.events();
    let t = ticket_in(&ev);
    assert_eq!(
        ev,
        vec![
            ClientEvent::RoomError {
                room: key.clone(),
                code: RoomErrorCode::REJOIN_SUGGESTED,
                message: u8s("please rejoin"),
                action: RoomErrorAction::Rejoining,
            },
            rs(&key, RoomStatus::Reconnecting),
            ClientEvent::JoinParamsNeeded { ticket: t, room: key.clone(), reason: JoinReason::Rejoin },
        ]
    );
    c.s.provide_join_params(c.now, t, params(b"fresh", b"v")).unwrap();
    assert_eq!(join_requests(&c.out()), vec![(key.clone(), b(b"fresh"), b(b"v"))]);
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    let ev = c.events();
    assert!(matches!(ev[0], ClientEvent::Joined { rejoin: true, .. }));
    assert_eq!(ev[1], rs(&key, RoomStatus::Joined));
    c.advance(200);
    assert_eq!(join_requests(&c.out()).len(), 0);
}

/// A second `rejoin_suggested` before the suggested rejoin succeeded ends the room (no loops).
#[test]
fn second_rejoin_suggested_before_the_rejoin_succeeds_ends_the_room() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "loop", Permission::Write);
    c.frame(room_error(&key, RoomErrorCode::REJOIN_SUGGESTED, "1"));
    let ev = c.events();
    c.provide(&ev, b"", b"");
    c.frame(room_error(&key, RoomErrorCode::REJOIN_SUGGESTED, "2"));
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::RoomError {
                room: key.clone(),
                code: RoomErrorCode::REJOIN_SUGGESTED,
                message: u8s("2"),
                action: RoomErrorAction::Ended,
            },
            rs(&key, RoomStatus::Error),
        ]
    );
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.s.room_status(&key), None);
}

#[test]
fn rejoin_suggested_again_after_a_successful_rejoin_rejoins_again() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "twice", Permission::Write);
    for _ in 0..2 {
        c.frame(room_error(&key, RoomErrorCode::REJOIN_SUGGESTED, "again"));
        let ev = c.events();
        c.provide(&ev, b"", b"");
        c.frame(join_ok(&key, Permission::Write, b"", b""));
        c.flush();
        assert_eq!(c.s.room_status(&key), Some(RoomStatus::Joined));
    }
}

/// Batches in flight when the server suggests a rejoin are sent again after it.
#[test]
fn rejoin_suggested_resends_batches_in_flight_after_the_rejoin() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    c.s.send(c.now, &key, vec![b(b"x")]).unwrap();
    let first = c.out();
    c.frame(room_error(&key, RoomErrorCode::REJOIN_SUGGESTED, ""));
    let ev = c.events();
    c.provide(&ev, b"", b"");
    // The server's late answer to the old transmission does not end the batch.
    c.frame(ack(&key, sent_update(&first[0]).2, AckStatus::PERMISSION_DENIED));
    assert_eq!(c.events(), vec![]);
    c.frame(join_ok(&key, Permission::Write, b"", b""));
    assert_eq!(c.out(), first);
    assert_eq!(c.s.counters().superseded_acks, 1);
}

#[test]
fn other_room_error_codes_end_the_room() {
    for code in [RoomErrorCode::UNKNOWN, RoomErrorCode(0), RoomErrorCode(0x33)] {
        let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
        c.frame(room_error(&key, code, "gone"));
        assert_eq!(
            c.events(),
            vec![
                ClientEvent::RoomError {
                    room: key.clone(),
                    code,
                    message: u8s("gone"),
                    action: RoomErrorAction::Ended
                },
                rs(&key, RoomStatus::Error),
            ]
        );
    }
}

/// A RoomError before the join completed also resolves the join (the official client's promise hangs).
#[test]
fn room_error_for_a_pending_join_fails_the_join() {
    let mut c = Client::default_config();
    c.connect_open();
    let key = c.s.join(c.now, CrdtType::Loro, "p").unwrap();
    let ev = c.events();
    c.provide(&ev, b"", b"");
    c.frame(room_error(&key, RoomErrorCode::EVICTED, "no"));
    let ev = c.events();
    assert!(ev.contains(&ClientEvent::JoinFailed {
        room: key.clone(),
        rejoin: false,
        failure: JoinFailure::RoomError { code: RoomErrorCode::EVICTED, message: u8s("no") },
    }));
    assert_eq!(ev.last(), Some(&rs(&key, RoomStatus::Error)));
}

/// `leave` sends Leave, forgets the room (it does not come back on reconnect, unlike the official client), and
/// drops its pending updates with a reason.
#[test]
fn leave_sends_leave_forgets_the_room_and_drops_its_updates() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "bye", Permission::Write);
    let send = c.s.send(c.now, &key, vec![b(b"unacked")]).unwrap();
    let (_, _, id) = sent_update(&c.out()[0]);
    c.s.leave(c.now, &key).unwrap();
    assert_eq!(c.out(), vec![leave_frame(&key)]);
    assert_eq!(
        c.events(),
        vec![ClientEvent::UpdatesDropped {
            room: key.clone(),
            send,
            batch_id: id,
            reason: DropReason::Left,
            range: 0..1,
            updates: vec![b(b"unacked")],
        }]
    );
    assert_eq!(c.s.room_status(&key), None);
    assert_eq!(c.s.leave(c.now, &key), Err(ClientError::UnknownRoom(key.clone())));
    // The Ack that was on its way is ignored; updates for the room are dropped.
    c.frame(ack(&key, id, AckStatus::OK));
    c.frame(doc_update(&key, &[b"late"], BatchId::from_u64(3)));
    assert_eq!(c.events(), vec![]);
    let ev = server_restart(&mut c);
    assert!(!ev.iter().any(|e| matches!(e, ClientEvent::JoinParamsNeeded { .. })));
}

#[test]
fn leave_of_a_pending_join_resolves_it() {
    let mut c = Client::default_config();
    let key = c.s.join(c.now, CrdtType::Loro, "p").unwrap();
    c.flush();
    c.s.leave(c.now, &key).unwrap();
    assert_eq!(c.out(), vec![], "the server never heard of the room");
    assert_eq!(c.events(), vec![ClientEvent::JoinFailed { room: key, rejoin: false, failure: JoinFailure::Left }]);
}

// ---------------------------------------------------------------------------------------------------------------
// Protocol errors
// ---------------------------------------------------------------------------------------------------------------

/// client/index.test.ts:120 — a frame that does not decode is reported (the official client drops it
/// silently) and, by default, the connection is kept.
#[test]
fn undecodable_frame_is_reported_and_the_connection_kept() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    c.frame(Frame::Binary(Bytes::from_static(b"ABCD\x00\x03")));
    assert_eq!(c.events(), vec![ClientEvent::ProtocolError { error: DecodeError::UnknownCrdt { magic: *b"ABCD" } }]);
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.s.status(), ConnectionStatus::Connected);
    assert_eq!(c.s.counters().decode_errors, 1);
    // The next frame is handled normally.
    c.frame(doc_update(&key, &[b"ok"], BatchId::from_u64(1)));
    assert!(matches!(c.events()[..], [ClientEvent::Updates { .. }]));
}

#[test]
fn undecodable_frame_closes_with_4002_when_configured() {
    let config = ClientConfig { close_on_protocol_error: true, ..ClientConfig::default() };
    let (mut c, key) = Client::joined(config, CrdtType::Loro, "r", Permission::Write);
    c.frame(Frame::Binary(Bytes::from_static(b"%LOR\x01r\x09")));
    assert_eq!(c.out(), vec![Out::Close(CloseCode::CLIENT_PROTOCOL_ERROR, "protocol_error".into())]);
    let ev = c.events();
    let t = retry_at(&ev);
    assert_eq!(
        ev,
        vec![
            ClientEvent::ProtocolError { error: DecodeError::UnknownMessageType { offset: 6, byte: 9 } },
            ClientEvent::TransportClosed {
                code: Some(CloseCode::CLIENT_PROTOCOL_ERROR),
                reason: u8s("protocol_error"),
                by: ClosedBy::Local,
                next: NextAttempt::At(t),
            },
            conn(ConnectionStatus::Disconnected),
            rs(&key, RoomStatus::Reconnecting),
        ]
    );
}

#[test]
fn client_only_messages_from_the_server_are_reported() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    c.frame(encode(loro_sansio::wire::Message {
        crdt: key.crdt,
        room: &key.room,
        body: loro_sansio::wire::Body::JoinRequest { auth: b"", version: b"" },
    }));
    c.frame(encode(loro_sansio::wire::Message {
        crdt: key.crdt,
        room: &key.room,
        body: loro_sansio::wire::Body::Leave,
    }));
    assert_eq!(
        c.events(),
        vec![
            ClientEvent::UnexpectedMessage { room: key.clone(), message_type: MessageType::JoinRequest },
            ClientEvent::UnexpectedMessage { room: key.clone(), message_type: MessageType::Leave },
        ]
    );
    assert_eq!(c.s.room_status(&key), Some(RoomStatus::Joined));
    assert_eq!(c.out(), vec![]);
}

// ---------------------------------------------------------------------------------------------------------------
// Time and shape
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn spurious_timeout_is_a_no_op() {
    let (mut c, _) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    let before = c.s.poll_timeout();
    for ms in [0, 1, 500, 19_999] {
        c.at(ms);
    }
    assert_eq!(c.out(), vec![]);
    assert_eq!(c.events(), vec![]);
    assert_eq!(c.s.poll_timeout(), before);
}

#[test]
fn time_never_goes_backwards() {
    let mut c = Client::default_config();
    c.connect_open();
    c.flush();
    c.at(10_000);
    c.s.handle_timeout(Instant::from_millis(3));
    assert_eq!(c.s.now(), Instant::from_millis(10_000));
    // A ping sent "at 5 ms" is stamped 10 s: its timeout is 5 s after that.
    let _ = c.s.ping(Instant::from_millis(5));
    assert!(c.s.poll_timeout().unwrap() >= Instant::from_millis(15_000));
    c.flush();
    c.s.handle_frame(Instant::from_millis(7), Frame::pong());
    assert!(c.events().contains(&ClientEvent::Latency { rtt: Duration::ZERO }));
}

#[test]
fn poll_timeout_is_the_exact_minimum_of_armed_timers() {
    let (mut c, key) = Client::joined(ClientConfig::default(), CrdtType::Loro, "r", Permission::Write);
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(20_000)), "idle ping");
    c.at(1_000);
    c.frame(frag_header(&key, BatchId::from_u64(1), 2, 4));
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(11_000)), "reassembly deadline");
    c.at(2_000);
    c.s.ping(c.now);
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(7_000)), "manual ping deadline");
    c.at(7_000);
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(11_000)));
    c.at(11_000);
    assert_eq!(c.s.poll_timeout(), Some(Instant::from_millis(12_000)), "pong deadline of the ping sent at 2 s");
    c.flush();
    c.closed(Some(1006), "");
    let t = retry_at(&c.events());
    assert_eq!(c.s.poll_timeout(), Some(t), "reconnect");
}

#[test]
fn session_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<ClientSession>();
    assert_send::<ClientEvent>();
}
