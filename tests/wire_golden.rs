//! The 13 golden frames of Loro Protocol v1 (byte-exact; the official TypeScript and Rust suites share them).
//!
//! Each frame is decoded and every field compared with what the vector describes, then the expected message is
//! encoded through every encoder this crate has and compared with the frame byte for byte. The data is copied here
//! from `../shared/vectors/loro-v1-golden.tsv` so the test stands alone; `table_matches_shared_vectors` checks the
//! copy against that file whenever it is present.

use bytes::{Bytes, BytesMut};
use loro_sansio::wire::{
    AckStatus, BatchId, Body, CrdtType, EncodeError, Frame, Inbound, JoinErrorCode, Message, MessageType, OwnedBody,
    OwnedMessage, Permission, RoomErrorCode, Updates,
};

#[path = "common/golden.rs"]
mod golden;
use golden::{hex, GOLDEN};

const ROOM: &str = "room-1234";
const BATCH: BatchId = BatchId([1, 2, 3, 4, 5, 6, 7, 8]);

fn golden(name: &str) -> Vec<u8> {
    let (_, h) = GOLDEN.iter().find(|(n, _)| *n == name).expect("golden frame name");
    hex(h)
}

/// Decodes the golden frame `name`, checks it equals `expected`, then re-encodes `expected` (and the decoded view)
/// through every encoder and checks the bytes. Returns the decoded view for field-by-field assertions.
fn check(name: &str, expected: Message<'_>) -> Message<'static> {
    let frame: &'static [u8] = Box::leak(golden(name).into_boxed_slice());
    let n = frame.len();

    // Decode: the free function, the method, the transport frame and the owned decoder agree.
    let decoded = Message::decode(frame).unwrap_or_else(|e| panic!("{name}: decode failed: {e}"));
    assert_eq!(decoded, expected, "{name}: decoded fields");
    assert_eq!(loro_sansio::wire::decode(frame), Ok(decoded), "{name}: wire::decode");
    let shared = Bytes::from_static(frame);
    assert_eq!(Frame::Binary(shared.clone()).decode(), Ok(Inbound::Message(decoded)), "{name}: Frame::decode");
    let owned = OwnedMessage::decode(&shared).unwrap_or_else(|e| panic!("{name}: owned decode failed: {e}"));
    assert_eq!(owned.as_message(), expected, "{name}: owned fields");
    assert_eq!(owned.crdt, expected.crdt);
    assert_eq!(owned.room, expected.room);
    assert_eq!(owned.body.clone(), OwnedMessage::from_message(&shared, &expected).body);

    // Exact length, for the message built by hand and for the decoded view.
    for (which, m) in [("expected", expected), ("decoded", decoded)] {
        assert_eq!(m.encoded_len(), n, "{name}/{which}: encoded_len");
        assert_eq!(m.encoded_len_checked(), Ok(n), "{name}/{which}: encoded_len_checked");
        assert_eq!(m.message_type(), decoded.message_type());

        // encode_into_slice: exact buffer, larger buffer (only the prefix is written), too small (untouched).
        let mut exact = vec![0u8; n];
        assert_eq!(m.encode_into_slice(&mut exact), Ok(n), "{name}/{which}: encode_into_slice");
        assert_eq!(exact, frame, "{name}/{which}: encode_into_slice bytes");
        let mut larger = vec![0xAAu8; n + 7];
        assert_eq!(m.encode_into_slice(&mut larger), Ok(n));
        assert_eq!(&larger[..n], frame);
        assert!(larger[n..].iter().all(|&b| b == 0xAA), "{name}: wrote past the frame");
        let mut small = vec![0x55u8; n - 1];
        assert_eq!(m.encode_into_slice(&mut small), Err(EncodeError::BufferTooSmall { required: n, available: n - 1 }));
        assert!(small.iter().all(|&b| b == 0x55), "{name}: a failed encode touched the buffer");

        // encode_into_vec appends after what the Vec already holds.
        let mut v = vec![9u8, 9, 9];
        assert_eq!(m.encode_into_vec(&mut v), Ok(n), "{name}/{which}: encode_into_vec");
        assert_eq!(&v[..3], &[9, 9, 9]);
        assert_eq!(&v[3..], frame, "{name}/{which}: encode_into_vec bytes");

        // encode_to_bytes: one exact buffer.
        let b = m.encode_to_bytes().expect("encode_to_bytes");
        assert_eq!(&b[..], frame, "{name}/{which}: encode_to_bytes bytes");

        // encode_into_buf over a BufMut.
        let mut bm = BytesMut::with_capacity(n);
        assert_eq!(m.encode_into_buf(&mut bm), Ok(n));
        assert_eq!(&bm[..], frame, "{name}/{which}: encode_into_buf bytes");
    }

    // The owned message re-encodes identically, both as decoded and when built from the expected view.
    assert_eq!(&owned.encode_to_bytes().expect("owned encode")[..], frame, "{name}: OwnedMessage::encode_to_bytes");
    let rebuilt = OwnedMessage::from_message(&Bytes::new(), &expected);
    assert_eq!(&rebuilt.encode_to_bytes().expect("owned encode")[..], frame, "{name}: rebuilt OwnedMessage");
    decoded
}

/// True when `sub` lies inside `frame` (a zero-copy borrow, not a copy).
fn points_into(frame: &[u8], sub: &[u8]) -> bool {
    let base = frame.as_ptr() as usize;
    let p = sub.as_ptr() as usize;
    sub.is_empty() || (p >= base && p + sub.len() <= base + frame.len())
}

#[test]
fn golden_join_request() {
    let m = check(
        "join_request",
        Message {
            crdt: CrdtType::Loro,
            room: ROOM,
            body: Body::JoinRequest { auth: &[10, 20, 30], version: &[40, 50, 60] },
        },
    );
    assert_eq!(m.crdt, CrdtType::Loro);
    assert_eq!(m.room, "room-1234");
    assert_eq!(m.message_type(), MessageType::JoinRequest);
    match m.body {
        Body::JoinRequest { auth, version } => {
            assert_eq!(auth, &[10, 20, 30]);
            assert_eq!(version, &[40, 50, 60]);
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_join_ok_read() {
    let m = check(
        "join_ok_read",
        Message {
            crdt: CrdtType::Yjs,
            room: ROOM,
            body: Body::JoinResponseOk { permission: Permission::Read, version: &[11, 22, 33], extra: &[] },
        },
    );
    assert_eq!(m.crdt, CrdtType::Yjs);
    assert_eq!(m.room, "room-1234");
    assert_eq!(m.message_type(), MessageType::JoinResponseOk);
    match m.body {
        Body::JoinResponseOk { permission, version, extra } => {
            assert_eq!(permission, Permission::Read);
            assert!(!permission.can_write());
            assert_eq!(version, &[11, 22, 33]);
            assert!(extra.is_empty(), "extra is on the wire, empty");
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_join_ok_write() {
    let m = check(
        "join_ok_write",
        Message {
            crdt: CrdtType::Loro,
            room: ROOM,
            body: Body::JoinResponseOk { permission: Permission::Write, version: &[44, 55], extra: &[66, 77, 88] },
        },
    );
    assert_eq!(m.crdt, CrdtType::Loro);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::JoinResponseOk { permission, version, extra } => {
            assert_eq!(permission, Permission::Write);
            assert!(permission.can_write());
            assert_eq!(version, &[44, 55]);
            assert_eq!(extra, &[66, 77, 88]);
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_join_error_auth() {
    let m = check(
        "join_error_auth",
        Message {
            crdt: CrdtType::LoroEphemeral,
            room: ROOM,
            body: Body::JoinError {
                code: JoinErrorCode::AUTH_FAILED,
                message: "Invalid credentials",
                receiver_version: None,
                app_code: None,
            },
        },
    );
    assert_eq!(m.crdt, CrdtType::LoroEphemeral);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::JoinError { code, message, receiver_version, app_code } => {
            assert_eq!(code, JoinErrorCode(0x02));
            assert_eq!(code.name(), Some("auth_failed"));
            assert_eq!(message, "Invalid credentials");
            assert_eq!(receiver_version, None);
            assert_eq!(app_code, None);
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_join_error_version() {
    let m = check(
        "join_error_version",
        Message {
            crdt: CrdtType::Loro,
            room: ROOM,
            body: Body::JoinError {
                code: JoinErrorCode::VERSION_UNKNOWN,
                message: "Version mismatch",
                receiver_version: Some(&[99, 100]),
                app_code: None,
            },
        },
    );
    assert_eq!(m.crdt, CrdtType::Loro);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::JoinError { code, message, receiver_version, app_code } => {
            assert_eq!(code, JoinErrorCode(0x01));
            assert_eq!(message, "Version mismatch");
            assert_eq!(receiver_version, Some(&[99u8, 100][..]));
            assert_eq!(app_code, None);
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_join_error_app() {
    let m = check(
        "join_error_app",
        Message {
            crdt: CrdtType::Yjs,
            room: ROOM,
            body: Body::JoinError {
                code: JoinErrorCode::APP_ERROR,
                message: "Application specific error",
                receiver_version: None,
                app_code: Some("quota_exceeded"),
            },
        },
    );
    assert_eq!(m.crdt, CrdtType::Yjs);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::JoinError { code, message, receiver_version, app_code } => {
            assert_eq!(code, JoinErrorCode(0x7f));
            assert_eq!(message, "Application specific error");
            assert_eq!(receiver_version, None);
            assert_eq!(app_code, Some("quota_exceeded"));
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_doc_update() {
    let parts: [&[u8]; 3] = [&[1, 2, 3], &[4, 5, 6, 7], &[8]];
    let m = check(
        "doc_update",
        Message {
            crdt: CrdtType::Yjs,
            room: ROOM,
            body: Body::DocUpdate { updates: Updates::from_slices(&parts), batch_id: BATCH },
        },
    );
    assert_eq!(m.crdt, CrdtType::Yjs);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::DocUpdate { updates, batch_id } => {
            assert_eq!(updates.len(), 3);
            assert!(!updates.is_empty());
            assert_eq!(updates.payload_len(), 8);
            let got: Vec<&[u8]> = updates.iter().collect();
            assert_eq!(got, parts.to_vec());
            assert_eq!(updates.iter().len(), 3, "ExactSizeIterator");
            assert_eq!(batch_id, BATCH);
            assert_eq!(batch_id.to_u64(), 0x0102_0304_0506_0708);
        }
        other => panic!("wrong body {other:?}"),
    }
    // The same updates as shared buffers encode identically.
    let shared: Vec<Bytes> = parts.iter().map(|p| Bytes::copy_from_slice(p)).collect();
    let m2 = Message {
        crdt: CrdtType::Yjs,
        room: ROOM,
        body: Body::DocUpdate { updates: Updates::from_bytes(&shared), batch_id: BATCH },
    };
    assert_eq!(m2.encode_to_bytes().unwrap(), golden("doc_update"));
    // The owned message holds one handle per update, each a slice of the received frame.
    let frame = Bytes::from(golden("doc_update"));
    match OwnedMessage::decode(&frame).unwrap().body {
        OwnedBody::DocUpdate { updates, batch_id } => {
            assert_eq!(updates, shared);
            assert_eq!(batch_id, BATCH);
            assert!(updates.iter().all(|u| points_into(&frame, u)), "owned updates are zero-copy slices");
        }
        other => panic!("wrong owned body {other:?}"),
    }
}

#[test]
fn golden_fragment_header() {
    let m = check(
        "fragment_header",
        Message {
            crdt: CrdtType::Loro,
            room: ROOM,
            body: Body::FragmentHeader {
                batch_id: BatchId([0xff, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]),
                fragment_count: 10,
                total_size: 1_024_000,
            },
        },
    );
    assert_eq!(m.crdt, CrdtType::Loro);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::FragmentHeader { batch_id, fragment_count, total_size } => {
            assert_eq!(batch_id, BatchId::from_u64(0xff11_2233_4455_6677));
            assert_eq!(fragment_count, 10);
            assert_eq!(total_size, 1_024_000);
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_fragment() {
    let data: Vec<u8> = (0u8..32).collect();
    let m = check(
        "fragment",
        Message {
            crdt: CrdtType::Loro,
            room: ROOM,
            body: Body::Fragment { batch_id: BatchId([0; 8]), index: 3, data: &data },
        },
    );
    assert_eq!(m.crdt, CrdtType::Loro);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::Fragment { batch_id, index, data: d } => {
            assert_eq!(batch_id, BatchId::from_u64(0));
            assert_eq!(index, 3);
            assert_eq!(d, &data[..]);
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_room_error() {
    let m = check(
        "room_error",
        Message {
            crdt: CrdtType::Loro,
            room: ROOM,
            body: Body::RoomError { code: RoomErrorCode::EVICTED, message: "evicted" },
        },
    );
    assert_eq!(m.crdt, CrdtType::Loro);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::RoomError { code, message } => {
            assert_eq!(code, RoomErrorCode(0x02));
            assert_eq!(code.name(), Some("evicted"));
            assert_eq!(message, "evicted");
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_ack_ok() {
    let m = check(
        "ack_ok",
        Message { crdt: CrdtType::Loro, room: ROOM, body: Body::Ack { ref_id: BATCH, status: AckStatus::OK } },
    );
    assert_eq!(m.crdt, CrdtType::Loro);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::Ack { ref_id, status } => {
            assert_eq!(ref_id, BATCH);
            assert_eq!(status, AckStatus(0x00));
            assert!(status.is_ok());
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_ack_fragment_timeout() {
    let m = check(
        "ack_fragment_timeout",
        Message {
            crdt: CrdtType::YjsAwareness,
            room: ROOM,
            body: Body::Ack { ref_id: BatchId([1, 0, 0, 0, 0, 0, 0, 0]), status: AckStatus::FRAGMENT_TIMEOUT },
        },
    );
    assert_eq!(m.crdt, CrdtType::YjsAwareness);
    assert_eq!(m.room, "room-1234");
    match m.body {
        Body::Ack { ref_id, status } => {
            assert_eq!(ref_id, BatchId::from_u64(0x0100_0000_0000_0000));
            assert_eq!(status, AckStatus(0x07));
            assert!(!status.is_ok());
        }
        other => panic!("wrong body {other:?}"),
    }
}

#[test]
fn golden_leave() {
    let m = check("leave", Message { crdt: CrdtType::Loro, room: ROOM, body: Body::Leave });
    assert_eq!(m.crdt, CrdtType::Loro);
    assert_eq!(m.room, "room-1234");
    assert_eq!(m.body, Body::Leave);
    assert_eq!(m.message_type(), MessageType::Leave);
}

/// Every golden frame decodes to a view that borrows from the frame instead of copying it.
#[test]
fn golden_decode_borrows_every_field() {
    for (name, h) in GOLDEN {
        let frame = hex(h);
        let m = Message::decode(&frame).unwrap();
        assert!(points_into(&frame, m.room.as_bytes()), "{name}: room");
        let fields: Vec<&[u8]> = match m.body {
            Body::JoinRequest { auth, version } => vec![auth, version],
            Body::JoinResponseOk { version, extra, .. } => vec![version, extra],
            Body::JoinError { message, receiver_version, app_code, .. } => {
                let mut v = vec![message.as_bytes()];
                v.extend(receiver_version);
                v.extend(app_code.map(str::as_bytes));
                v
            }
            Body::DocUpdate { updates, .. } => updates.iter().collect(),
            Body::Fragment { data, .. } => vec![data],
            Body::RoomError { message, .. } => vec![message.as_bytes()],
            Body::FragmentHeader { .. } | Body::Leave | Body::Ack { .. } => vec![],
        };
        for f in fields {
            assert!(points_into(&frame, f), "{name}: a field was copied");
        }
    }
}

/// The table above is a faithful copy of the shared vectors file (checked only when that file is beside the clone).
#[test]
fn table_matches_shared_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/loro-v1-golden.tsv");
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("{path} not present; the embedded copy is used alone");
        return;
    };
    let rows: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].to_string(), cols[cols.len() - 1].trim().to_string())
        })
        .collect();
    let ours: Vec<(String, String)> = GOLDEN.iter().map(|(n, h)| (n.to_string(), h.to_string())).collect();
    assert_eq!(rows, ours);
}
