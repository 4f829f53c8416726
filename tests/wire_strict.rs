//! The codec's strictness rules and its decisions on the points the official protocol leaves open, one named test
//! each (see `spec/protocol.md` §1 and the W rows of `spec/conformance.md`).
//!
//! Frames are built by hand with the helpers below so each test shows the exact bytes it feeds the decoder, and
//! every rejection is checked against the specific typed error, field and byte offset.

#[path = "common/leb.rs"]
mod leb;
use bytes::Bytes;
use leb::leb;
use loro_sansio::wire::{
    fragment_overhead, AckStatus, BatchId, Body, CrdtType, DecodeError, EncodeError, Field, Frame, Inbound,
    JoinErrorCode, Keepalive, Message, MessageType, OwnedMessage, Permission, RoomErrorCode, Updates, MAX_FRAME_SIZE,
    MAX_ROOM_ID_LEN, MAX_VARINT, PING, PONG,
};

#[path = "common/golden.rs"]
mod golden;
use golden::hex;

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

/// A length prefix and the bytes.
fn var(b: &[u8]) -> Vec<u8> {
    let mut out = leb(b.len() as u64);
    out.extend_from_slice(b);
    out
}

/// A frame: magic, room id (as raw bytes, so invalid ones can be written), type byte, body bytes.
fn frame(magic: &[u8; 4], room: &[u8], ty: u8, body: &[u8]) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend(var(room));
    out.push(ty);
    out.extend_from_slice(body);
    out
}

/// Offset of the first body byte of a frame built by [`frame`] with a one-byte room id.
const BODY_R: usize = 7;

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn msg(body: Body<'_>) -> Message<'_> {
    Message { crdt: CrdtType::Loro, room: "r", body }
}

/// Decodes and checks that the frame re-encodes to the same bytes (the codec's lossless property).
fn accept(bytes: &[u8]) -> Message<'_> {
    let m = Message::decode(bytes).unwrap_or_else(|e| panic!("rejected {bytes:02x?}: {e}"));
    assert_eq!(m.encoded_len(), bytes.len());
    assert_eq!(m.encode_to_bytes().expect("re-encode"), bytes);
    m
}

fn reject(bytes: &[u8]) -> DecodeError {
    let e = Message::decode(bytes).expect_err("frame was accepted");
    // The owned decoder applies exactly the same rules.
    assert_eq!(OwnedMessage::decode(&Bytes::copy_from_slice(bytes)), Err(e.clone()));
    e
}

/// Checks every encoder refuses `m` with `err` and leaves its output untouched.
fn refuse_encode(m: &Message<'_>, err: EncodeError) {
    assert_eq!(m.encoded_len_checked(), Err(err.clone()));
    let mut buf = vec![0x5Au8; m.encoded_len().min(MAX_FRAME_SIZE + 64)];
    assert_eq!(m.encode_into_slice(&mut buf), Err(err.clone()));
    assert!(buf.iter().all(|&b| b == 0x5A), "slice touched on error");
    let mut v = vec![1u8, 2, 3];
    assert_eq!(m.encode_into_vec(&mut v), Err(err.clone()));
    assert_eq!(v, [1, 2, 3], "vec touched on error");
    assert_eq!(m.encode_to_bytes(), Err(err));
}

const GOLDEN_JOIN_ERROR_VERSION: &str = "254c4f5209726f6f6d2d3132333402011056657273696f6e206d69736d61746368026364";
const GOLDEN: [&str; 13] = golden::GOLDEN_HEX;

/// A fragment with room "r" and index 0 whose encoded frame is exactly `total` bytes.
fn fragment_data_for(total: usize) -> Vec<u8> {
    let d = (0..=total).rev().find(|&d| fragment_overhead(1, 0, d) + d == total).expect("a fitting data length");
    vec![0xAB; d]
}

// ---------------------------------------------------------------------------------------------------------------
// Frame size (262,144 bytes, per frame, on decode and encode)
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn frame_over_max_rejected_on_decode() {
    // A well-formed fragment one byte over the limit.
    let data = fragment_data_for(MAX_FRAME_SIZE + 1);
    let m = msg(Body::Fragment { batch_id: BatchId([7; 8]), index: 0, data: &data });
    let mut bytes = Vec::new();
    // Build the bytes by hand: the encoder refuses this frame.
    bytes.extend(frame(b"%LOR", b"r", 0x05, &cat(&[&[7; 8], &leb(0), &var(&data)])));
    assert_eq!(bytes.len(), MAX_FRAME_SIZE + 1);
    assert_eq!(m.encoded_len(), bytes.len());
    assert_eq!(reject(&bytes), DecodeError::FrameTooLarge { len: MAX_FRAME_SIZE + 1, max: MAX_FRAME_SIZE });
    // The size check comes first: even garbage of that size reports the size.
    let garbage = vec![0u8; MAX_FRAME_SIZE + 1000];
    assert_eq!(reject(&garbage), DecodeError::FrameTooLarge { len: MAX_FRAME_SIZE + 1000, max: MAX_FRAME_SIZE });
}

#[test]
fn frame_over_max_rejected_on_encode() {
    let data = fragment_data_for(MAX_FRAME_SIZE + 1);
    let m = msg(Body::Fragment { batch_id: BatchId([7; 8]), index: 0, data: &data });
    refuse_encode(&m, EncodeError::FrameTooLarge { len: MAX_FRAME_SIZE + 1, max: MAX_FRAME_SIZE });
    // Many small updates that add up to more than a frame are refused the same way.
    let big = vec![1u8; 1000];
    let parts: Vec<&[u8]> = (0..263).map(|_| &big[..]).collect();
    let m = msg(Body::DocUpdate { updates: Updates::from_slices(&parts), batch_id: BatchId::default() });
    let len = m.encoded_len();
    assert!(len > MAX_FRAME_SIZE);
    refuse_encode(&m, EncodeError::FrameTooLarge { len, max: MAX_FRAME_SIZE });
}

#[test]
fn frame_of_exactly_max_accepted_both_ways() {
    let data = fragment_data_for(MAX_FRAME_SIZE);
    let m = msg(Body::Fragment { batch_id: BatchId([7; 8]), index: 0, data: &data });
    assert_eq!(m.encoded_len_checked(), Ok(MAX_FRAME_SIZE));
    let bytes = m.encode_to_bytes().expect("a frame of exactly the limit encodes");
    assert_eq!(bytes.len(), MAX_FRAME_SIZE);
    assert_eq!(accept(&bytes), m);
    // A single update may take almost the whole frame: the 256 KiB limit is per frame, per-update limits are a
    // session matter.
    let update = vec![3u8; MAX_FRAME_SIZE - 4 - 2 - 1 - 1 - 3 - 8];
    let m = msg(Body::DocUpdate { updates: Updates::one(&update), batch_id: BatchId::default() });
    assert_eq!(m.encoded_len(), MAX_FRAME_SIZE);
    let bytes = m.encode_to_bytes().expect("encodes");
    assert_eq!(accept(&bytes), m);
}

// ---------------------------------------------------------------------------------------------------------------
// Room id: ≤ 128 bytes of UTF-8, empty allowed, not normalised
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn room_id_of_128_bytes_accepted_both_ways() {
    for room in ["a".repeat(128), "é".repeat(64), "😀".repeat(32)] {
        assert_eq!(room.len(), MAX_ROOM_ID_LEN);
        let m = Message { crdt: CrdtType::Loro, room: &room, body: Body::Leave };
        let bytes = m.encode_to_bytes().expect("128-byte room id encodes");
        assert_eq!(bytes, frame(b"%LOR", room.as_bytes(), 0x07, &[]));
        assert_eq!(accept(&bytes), m);
    }
}

#[test]
fn room_id_of_129_bytes_rejected_both_ways() {
    let room = "a".repeat(129);
    let m = Message { crdt: CrdtType::Loro, room: &room, body: Body::Leave };
    refuse_encode(&m, EncodeError::RoomIdTooLong { len: 129, max: MAX_ROOM_ID_LEN });
    let bytes = frame(b"%LOR", room.as_bytes(), 0x07, &[]);
    assert_eq!(reject(&bytes), DecodeError::RoomIdTooLong { offset: 4, len: 129, max: MAX_ROOM_ID_LEN });
    // Checked on the byte length, not the character count: 65 two-byte characters are 130 bytes.
    let wide = "é".repeat(65);
    let bytes = frame(b"%LOR", wide.as_bytes(), 0x07, &[]);
    assert_eq!(reject(&bytes), DecodeError::RoomIdTooLong { offset: 4, len: 130, max: MAX_ROOM_ID_LEN });
}

#[test]
fn room_id_invalid_utf8_rejected() {
    // A lone continuation byte, an overlong '/', a UTF-16 surrogate, a truncated sequence, 0xFF.
    for bad in [&[0x80u8][..], &[0xc0, 0xaf], &[0xed, 0xa0, 0x80], &[b'a', 0xe2, 0x82], &[0xff]] {
        let bytes = frame(b"%LOR", bad, 0x07, &[]);
        assert_eq!(reject(&bytes), DecodeError::InvalidUtf8 { offset: 5, field: Field::RoomId }, "{bad:02x?}");
    }
}

#[test]
fn empty_room_id_accepted() {
    let m = Message { crdt: CrdtType::Loro, room: "", body: Body::Leave };
    let bytes = m.encode_to_bytes().expect("empty room id encodes");
    assert_eq!(bytes, hex("254c4f520007"));
    let back = accept(&bytes);
    assert_eq!(back.room, "");
}

#[test]
fn room_id_not_normalised() {
    // "é" precomposed (U+00E9) and decomposed (e + U+0301) are different rooms: bytes are kept as they are.
    let composed = frame(b"%LOR", "\u{e9}".as_bytes(), 0x07, &[]);
    let decomposed = frame(b"%LOR", "e\u{301}".as_bytes(), 0x07, &[]);
    assert_eq!(accept(&composed).room, "\u{e9}");
    assert_eq!(accept(&decomposed).room, "e\u{301}");
    assert_ne!(accept(&composed).room, accept(&decomposed).room);
    // Case and surrounding spaces are kept too.
    assert_eq!(accept(&frame(b"%LOR", b" Room ", 0x07, &[])).room, " Room ");
}

// ---------------------------------------------------------------------------------------------------------------
// Strings are strict UTF-8
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn message_invalid_utf8_rejected() {
    // JoinError message.
    let bytes = frame(b"%LOR", b"r", 0x02, &cat(&[&[0x02], &var(&[b'o', b'k', 0xff])]));
    assert_eq!(reject(&bytes), DecodeError::InvalidUtf8 { offset: BODY_R + 2, field: Field::Message });
    // RoomError message.
    let bytes = frame(b"%LOR", b"r", 0x06, &cat(&[&[0x02], &var(&[0xc3])]));
    assert_eq!(reject(&bytes), DecodeError::InvalidUtf8 { offset: BODY_R + 2, field: Field::Message });
}

#[test]
fn app_code_invalid_utf8_rejected() {
    let bytes = frame(b"%LOR", b"r", 0x02, &cat(&[&[0x7f], &var(b"no"), &var(&[b'q', 0xfe])]));
    assert_eq!(reject(&bytes), DecodeError::InvalidUtf8 { offset: BODY_R + 1 + 3 + 1, field: Field::AppCode });
}

#[test]
fn binary_fields_are_not_utf8_checked() {
    // auth, version, extra, receiver_version, updates and fragment data are opaque bytes.
    let junk = [0xff, 0xfe, 0x80];
    accept(&frame(b"%LOR", b"r", 0x00, &cat(&[&var(&junk), &var(&junk)])));
    accept(&frame(b"%LOR", b"r", 0x01, &cat(&[&var(b"read"), &var(&junk), &var(&junk)])));
    accept(&frame(b"%LOR", b"r", 0x02, &cat(&[&[0x01], &var(b"v"), &var(&junk)])));
    accept(&frame(b"%LOR", b"r", 0x03, &cat(&[&leb(1), &var(&junk), &[0; 8]])));
    accept(&frame(b"%LOR", b"r", 0x05, &cat(&[&[0; 8], &leb(0), &var(&junk)])));
}

// ---------------------------------------------------------------------------------------------------------------
// LEB128: canonical, ≤ u32::MAX, at most 5 bytes
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn non_canonical_varint_rejected() {
    // `81 00` is 1 written in two bytes.
    let bytes = cat(&[b"%LOR", &[0x81, 0x00], b"r", &[0x07]]);
    assert_eq!(reject(&bytes), DecodeError::VarintNotCanonical { offset: 4, field: Field::RoomId });
    // `80 00` is 0 written in two bytes: an empty auth.
    let bytes = frame(b"%LOR", b"r", 0x00, &[0x80, 0x00, 0x00]);
    assert_eq!(reject(&bytes), DecodeError::VarintNotCanonical { offset: BODY_R, field: Field::Auth });
    // Padded counts and indices.
    let bytes = frame(b"%LOR", b"r", 0x03, &cat(&[&[0x80, 0x80, 0x00], &[0; 8]]));
    assert_eq!(reject(&bytes), DecodeError::VarintNotCanonical { offset: BODY_R, field: Field::UpdateCount });
    let bytes = frame(b"%LOR", b"r", 0x05, &cat(&[&[0; 8], &[0x83, 0x00], &var(b"x")]));
    assert_eq!(reject(&bytes), DecodeError::VarintNotCanonical { offset: BODY_R + 8, field: Field::FragmentIndex });
    let bytes = frame(b"%LOR", b"r", 0x04, &cat(&[&[0; 8], &[0x0a], &[0xff, 0xff, 0xff, 0xff, 0x00]]));
    assert_eq!(reject(&bytes), DecodeError::VarintNotCanonical { offset: BODY_R + 9, field: Field::TotalSize });
}

#[test]
fn varint_over_u32_max_rejected() {
    // 2^32 in five bytes.
    let two_pow_32 = [0x80, 0x80, 0x80, 0x80, 0x10];
    assert_eq!(leb(1 << 32), two_pow_32);
    let bytes = frame(b"%LOR", b"r", 0x04, &cat(&[&[0; 8], &two_pow_32, &[0x00]]));
    assert_eq!(reject(&bytes), DecodeError::VarintOverflow { offset: BODY_R + 8, field: Field::FragmentCount });
    // u64::MAX (ten bytes) as a fragment index.
    let bytes = frame(b"%LOR", b"r", 0x05, &cat(&[&[0; 8], &leb(u64::MAX), &var(b"x")]));
    assert_eq!(reject(&bytes), DecodeError::VarintOverflow { offset: BODY_R + 8, field: Field::FragmentIndex });
    // A sixth byte is never read, even when the value would be small: 5 bytes is the maximum width.
    let bytes = frame(b"%LOR", b"r", 0x04, &cat(&[&[0; 8], &[0x00], &[0x80; 5], &[0x00]]));
    assert_eq!(reject(&bytes), DecodeError::VarintOverflow { offset: BODY_R + 9, field: Field::TotalSize });
    // As a length prefix.
    let bytes = frame(b"%LOR", b"r", 0x00, &cat(&[&leb(u64::from(u32::MAX) + 1), &[0x00]]));
    assert_eq!(reject(&bytes), DecodeError::VarintOverflow { offset: BODY_R, field: Field::Auth });
}

#[test]
fn varint_of_u32_max_accepted() {
    assert_eq!(MAX_VARINT, u32::MAX);
    let max = leb(u64::from(u32::MAX));
    assert_eq!(max, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    let bytes = frame(b"%LOR", b"r", 0x04, &cat(&[&[9; 8], &max, &max]));
    let m = accept(&bytes);
    assert_eq!(
        m.body,
        Body::FragmentHeader { batch_id: BatchId([9; 8]), fragment_count: u32::MAX, total_size: u32::MAX }
    );
    let bytes = frame(b"%LOR", b"r", 0x05, &cat(&[&[9; 8], &max, &var(b"z")]));
    assert_eq!(accept(&bytes).body, Body::Fragment { batch_id: BatchId([9; 8]), index: u32::MAX, data: b"z" });
}

// ---------------------------------------------------------------------------------------------------------------
// Trailing bytes: one policy for every message type
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn trailing_bytes_rejected_after_every_type() {
    let parts: [&[u8]; 2] = [b"u1", b""];
    let all: [Body<'_>; 9] = [
        Body::JoinRequest { auth: b"a", version: b"v" },
        Body::JoinResponseOk { permission: Permission::Write, version: b"v", extra: b"" },
        // With its tail present (a tail-less 0x01/0x7F JoinError reads what follows as the tail; see below).
        Body::JoinError {
            code: JoinErrorCode::VERSION_UNKNOWN,
            message: "m",
            receiver_version: Some(b"rv"),
            app_code: None,
        },
        Body::DocUpdate { updates: Updates::from_slices(&parts), batch_id: BatchId([4; 8]) },
        Body::FragmentHeader { batch_id: BatchId([5; 8]), fragment_count: 2, total_size: 300 },
        Body::Fragment { batch_id: BatchId([5; 8]), index: 1, data: b"frag" },
        Body::RoomError { code: RoomErrorCode::REJOIN_SUGGESTED, message: "again" },
        Body::Leave,
        Body::Ack { ref_id: BatchId([4; 8]), status: AckStatus::OK },
    ];
    let mut seen = Vec::new();
    for body in all {
        let m = msg(body);
        seen.push(m.message_type() as u8);
        let good = m.encode_to_bytes().expect("valid message");
        assert_eq!(accept(&good), m);
        for extra in [&[0x00u8][..], &[0xde, 0xad], &[0x01, 0x00, 0x00], b"%LOR"] {
            let bad = cat(&[&good, extra]);
            assert_eq!(
                reject(&bad),
                DecodeError::TrailingBytes { offset: good.len(), count: extra.len() },
                "{:?} + {extra:02x?}",
                m.message_type()
            );
        }
    }
    assert_eq!(seen, (0u8..=8).collect::<Vec<_>>(), "all nine types covered");
    // JoinError codes without a tail: anything after the message is trailing.
    for code in [0x00u8, 0x02, 0x03, 0x80] {
        let bad = frame(b"%LOR", b"r", 0x02, &cat(&[&[code], &var(b"m"), &[0x00]]));
        assert_eq!(reject(&bad), DecodeError::TrailingBytes { offset: BODY_R + 3, count: 1 }, "code {code:#x}");
    }
    // app_error with its tail present, then trailing bytes.
    let bad = frame(b"%LOR", b"r", 0x02, &cat(&[&[0x7f], &var(b"m"), &var(b"q"), &[0x00]]));
    assert_eq!(reject(&bad), DecodeError::TrailingBytes { offset: BODY_R + 5, count: 1 });
}

// ---------------------------------------------------------------------------------------------------------------
// Magics and message types
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn unknown_magic_rejected() {
    for magic in [*b"%XYZ", *b"%lor", *b"LRSP", *b"ping", [0; 4], *b"%LO\0"] {
        let bytes = frame(&magic, b"r", 0x07, &[]);
        assert_eq!(reject(&bytes), DecodeError::UnknownCrdt { magic });
        assert_eq!(reject(&bytes).offset(), 0);
    }
    // Fewer than four bytes is a truncated magic.
    assert_eq!(reject(b"%LO"), DecodeError::Truncated { offset: 0, field: Field::Magic, needed: 1 });
    assert_eq!(reject(b""), DecodeError::Truncated { offset: 0, field: Field::Magic, needed: 4 });
}

#[test]
fn flo_magic_accepted() {
    // %FLO (Flock) is in the official spec and TypeScript code but not in the official Rust repo HEAD.
    let bytes = frame(b"%FLO", b"r", 0x00, &cat(&[&var(b""), &var(&[1, 2])]));
    let m = accept(&bytes);
    assert_eq!(m.crdt, CrdtType::Flock);
    assert_eq!(m.body, Body::JoinRequest { auth: b"", version: &[1, 2] });
}

#[test]
fn all_seven_magics_round_trip() {
    let magics = [b"%LOR", b"%EPH", b"%EPS", b"%YJS", b"%YAW", b"%ELO", b"%FLO"];
    for (crdt, magic) in CrdtType::ALL.into_iter().zip(magics) {
        assert_eq!(&crdt.magic(), magic);
        let m = Message { crdt, room: "room", body: Body::Leave };
        let bytes = m.encode_to_bytes().unwrap();
        assert_eq!(bytes, frame(magic, b"room", 0x07, &[]));
        assert_eq!(accept(&bytes).crdt, crdt);
    }
}

#[test]
fn unknown_message_type_rejected() {
    for ty in [0x09u8, 0x0a, 0x7f, 0x80, 0xff] {
        let bytes = frame(b"%LOR", b"r", ty, &[]);
        assert_eq!(reject(&bytes), DecodeError::UnknownMessageType { offset: 6, byte: ty });
        assert_eq!(MessageType::from_u8(ty), None);
    }
    // The type byte sits after the room id, whatever its length.
    let bytes = frame(b"%EPS", b"longer-room", 0x09, &[]);
    assert_eq!(reject(&bytes), DecodeError::UnknownMessageType { offset: 4 + 1 + 11, byte: 0x09 });
    // A frame that ends before the type byte is truncated.
    assert_eq!(
        reject(&hex("254c4f520172")),
        DecodeError::Truncated { offset: 6, field: Field::MessageType, needed: 1 }
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Code tables: unknown bytes survive decode → encode
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn unknown_join_error_code_preserved() {
    for code in [0x03u8, 0x10, 0x7e, 0x80, 0xff] {
        let bytes = frame(b"%LOR", b"r", 0x02, &cat(&[&[code], &var(b"why")]));
        let m = accept(&bytes);
        assert_eq!(
            m.body,
            Body::JoinError { code: JoinErrorCode(code), message: "why", receiver_version: None, app_code: None }
        );
        assert!(!JoinErrorCode(code).is_known());
        assert_eq!(JoinErrorCode(code).name(), None);
    }
}

#[test]
fn unknown_room_error_code_preserved() {
    // 0x00 is unassigned for RoomError: the official decoders turn it into 0x7F; we keep 0x00.
    for code in [0x00u8, 0x03, 0x7e, 0xff] {
        let bytes = frame(b"%LOR", b"r", 0x06, &cat(&[&[code], &var(b"gone")]));
        let m = accept(&bytes);
        assert_eq!(m.body, Body::RoomError { code: RoomErrorCode(code), message: "gone" });
        assert_eq!(m.encode_to_bytes().unwrap()[BODY_R], code);
    }
}

#[test]
fn unknown_ack_status_preserved() {
    // 0x02 is unassigned for Ack: the official decoders turn it into 0x01; we keep 0x02.
    for status in [0x02u8, 0x08, 0x7e, 0x80, 0xff] {
        let bytes = frame(b"%LOR", b"r", 0x08, &cat(&[&[1; 8], &[status]]));
        let m = accept(&bytes);
        assert_eq!(m.body, Body::Ack { ref_id: BatchId([1; 8]), status: AckStatus(status) });
        assert!(!AckStatus(status).is_ok());
        assert_eq!(m.encode_to_bytes().unwrap()[BODY_R + 8], status);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// JoinError tails and JoinResponseOk fields
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn join_error_tail_after_other_code_is_trailing_bytes() {
    // The golden version_unknown frame with its code byte changed: the receiver_version tail is now trailing.
    let mut bytes = hex(GOLDEN_JOIN_ERROR_VERSION);
    let code_at = 4 + 1 + 9 + 1;
    for code in [0x00u8, 0x02, 0x7f, 0x42] {
        bytes[code_at] = code;
        if code == 0x7f {
            // app_error reads the same bytes as an app_code string ("cd"), which is valid.
            assert_eq!(
                accept(&bytes).body,
                Body::JoinError {
                    code: JoinErrorCode::APP_ERROR,
                    message: "Version mismatch",
                    receiver_version: None,
                    app_code: Some("cd"),
                }
            );
            continue;
        }
        let tail_at = code_at + 1 + 17;
        assert_eq!(reject(&bytes), DecodeError::TrailingBytes { offset: tail_at, count: 3 }, "code {code:#x}");
    }
}

#[test]
fn join_error_tail_only_with_its_code_on_encode() {
    let cases = [
        (JoinErrorCode::AUTH_FAILED, Some(&b"v"[..]), None, Field::ReceiverVersion, JoinErrorCode::VERSION_UNKNOWN),
        (JoinErrorCode::UNKNOWN, None, Some("q"), Field::AppCode, JoinErrorCode::APP_ERROR),
        (JoinErrorCode::VERSION_UNKNOWN, None, Some("q"), Field::AppCode, JoinErrorCode::APP_ERROR),
        (JoinErrorCode::APP_ERROR, Some(&b"v"[..]), None, Field::ReceiverVersion, JoinErrorCode::VERSION_UNKNOWN),
        // Both tails at once never fit one code.
        (JoinErrorCode::VERSION_UNKNOWN, Some(&b"v"[..]), Some("q"), Field::AppCode, JoinErrorCode::APP_ERROR),
        (JoinErrorCode(0x33), Some(&b"v"[..]), None, Field::ReceiverVersion, JoinErrorCode::VERSION_UNKNOWN),
    ];
    for (code, receiver_version, app_code, field, required) in cases {
        let m = msg(Body::JoinError { code, message: "m", receiver_version, app_code });
        refuse_encode(&m, EncodeError::TailNotAllowed { field, code, required });
    }
}

#[test]
fn join_error_malformed_tail_rejected() {
    // The official Rust decoder silently drops a malformed tail; we reject it.
    let bytes = frame(b"%LOR", b"r", 0x02, &cat(&[&[0x01], &var(b"m"), &[0x05, 0x63, 0x64]]));
    assert_eq!(
        reject(&bytes),
        DecodeError::LengthOutOfBounds { offset: BODY_R + 3, field: Field::ReceiverVersion, len: 5, remaining: 2 }
    );
    let bytes = frame(b"%LOR", b"r", 0x02, &cat(&[&[0x7f], &var(b"m"), &[0x81, 0x00, 0x71]]));
    assert_eq!(reject(&bytes), DecodeError::VarintNotCanonical { offset: BODY_R + 3, field: Field::AppCode });
}

#[test]
fn join_error_empty_tail_differs_from_absent() {
    let absent = frame(b"%LOR", b"r", 0x02, &cat(&[&[0x01], &var(b"m")]));
    let empty = cat(&[&absent, &[0x00]]);
    let rv = |b: &[u8]| match Message::decode(b).unwrap().body {
        Body::JoinError { receiver_version, .. } => receiver_version.map(<[u8]>::to_vec),
        other => panic!("{other:?}"),
    };
    assert_eq!(rv(&absent), None);
    assert_eq!(rv(&empty), Some(vec![]));
    accept(&absent);
    accept(&empty);
    let absent = frame(b"%LOR", b"r", 0x02, &cat(&[&[0x7f], &var(b"m")]));
    let empty = cat(&[&absent, &[0x00]]);
    assert!(matches!(accept(&absent).body, Body::JoinError { app_code: None, .. }));
    assert!(matches!(accept(&empty).body, Body::JoinError { app_code: Some(""), .. }));
}

#[test]
fn join_response_ok_without_extra_rejected() {
    // The golden read frame without its final empty `extra`.
    let full = hex("25594a5309726f6f6d2d31323334010472656164030b162100");
    let short = &full[..full.len() - 1];
    assert_eq!(reject(short), DecodeError::Truncated { offset: short.len(), field: Field::Extra, needed: 1 });
    // With it, an empty extra decodes as an empty slice (there is no "absent").
    assert!(matches!(accept(&full).body, Body::JoinResponseOk { extra: b"", .. }));
}

#[test]
fn permission_other_than_read_or_write_rejected() {
    for p in [&b"admin"[..], b"READ", b"Write", b"", b"rea", b"read ", b"writer", &[0xff, 0xfe]] {
        let bytes = frame(b"%LOR", b"r", 0x01, &cat(&[&var(p), &var(b""), &var(b"")]));
        assert_eq!(reject(&bytes), DecodeError::InvalidPermission { offset: BODY_R }, "{p:02x?}");
    }
    for (p, want) in [(&b"read"[..], Permission::Read), (b"write", Permission::Write)] {
        let bytes = frame(b"%LOR", b"r", 0x01, &cat(&[&var(p), &var(b""), &var(b"")]));
        assert!(matches!(accept(&bytes).body, Body::JoinResponseOk { permission, .. } if permission == want));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// DocUpdate counts, and the frames that crash the official decoder
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn doc_update_count_larger_than_remaining_rejected() {
    // 1000 updates announced, 2 bytes of updates + 8 of batch id present.
    let bytes = frame(b"%LOR", b"r", 0x03, &cat(&[&leb(1000), &var(b"x"), &[0; 8]]));
    assert_eq!(
        reject(&bytes),
        DecodeError::CountOutOfBounds { offset: BODY_R, field: Field::UpdateCount, count: 1000, remaining: 10 }
    );
    // u32::MAX updates in a 20-byte frame.
    let bytes = frame(b"%LOR", b"r", 0x03, &cat(&[&leb(u64::from(u32::MAX)), &[0; 8]]));
    assert_eq!(
        reject(&bytes),
        DecodeError::CountOutOfBounds { offset: BODY_R, field: Field::UpdateCount, count: u32::MAX, remaining: 8 }
    );
    // A count that fits the bytes but whose updates do not.
    let bytes = frame(b"%LOR", b"r", 0x03, &cat(&[&leb(2), &var(b"ab"), &[0x09], &[0; 8]]));
    assert_eq!(
        reject(&bytes),
        DecodeError::LengthOutOfBounds { offset: BODY_R + 4, field: Field::Update, len: 9, remaining: 8 }
    );
    // One update per byte is the most a frame can hold; the batch id must still follow.
    let bytes = frame(b"%LOR", b"r", 0x03, &cat(&[&leb(3), &[0, 0, 0], &[0; 7]]));
    assert_eq!(
        reject(&bytes),
        DecodeError::CountOutOfBounds { offset: BODY_R, field: Field::UpdateCount, count: 3, remaining: 10 }
    );
    let bytes = frame(b"%LOR", b"r", 0x03, &cat(&[&leb(3), &[0, 0, 0], &[0; 8]]));
    let m = accept(&bytes);
    assert!(matches!(m.body, Body::DocUpdate { updates, .. } if updates.len() == 3 && updates.payload_len() == 0));
}

#[test]
fn doc_update_with_zero_updates_accepted() {
    let bytes = frame(b"%LOR", b"r", 0x03, &cat(&[&leb(0), &[1, 2, 3, 4, 5, 6, 7, 8]]));
    let m = accept(&bytes);
    assert_eq!(m.body, Body::DocUpdate { updates: Updates::EMPTY, batch_id: BatchId([1, 2, 3, 4, 5, 6, 7, 8]) });
    let missing_id = frame(b"%LOR", b"r", 0x03, &cat(&[&leb(0), &[1, 2, 3]]));
    assert_eq!(reject(&missing_id), DecodeError::Truncated { offset: BODY_R + 1, field: Field::BatchId, needed: 5 });
}

#[test]
fn crash_frames_give_typed_errors() {
    // loro-behaviour.md §5.1: a 13-byte DocUpdate whose count (2^40) makes the official Rust decoder try to reserve
    // 26 TB and abort.
    let abort = hex("254c4f52017203808080808020");
    assert_eq!(reject(&abort), DecodeError::VarintOverflow { offset: BODY_R, field: Field::UpdateCount });
    // The same with count = u64::MAX ("capacity overflow" panic in the official decoder).
    let panic = hex("254c4f52017203ffffffffffffffffff01");
    assert_eq!(reject(&panic), DecodeError::VarintOverflow { offset: BODY_R, field: Field::UpdateCount });
    // The largest count we can read at all, with nothing behind it.
    let max = hex("254c4f52017203ffffffff0f");
    assert_eq!(
        reject(&max),
        DecodeError::CountOutOfBounds { offset: BODY_R, field: Field::UpdateCount, count: u32::MAX, remaining: 0 }
    );
    // Fragment header counts and sizes that the official client would allocate from.
    let header = frame(b"%LOR", b"r", 0x04, &cat(&[&[0; 8], &leb(u64::MAX), &leb(u64::MAX)]));
    assert_eq!(reject(&header), DecodeError::VarintOverflow { offset: BODY_R + 8, field: Field::FragmentCount });
    // A huge length prefix is compared with what remains before anything is read.
    let auth = frame(b"%LOR", b"r", 0x00, &leb(u64::from(u32::MAX)));
    assert_eq!(
        reject(&auth),
        DecodeError::LengthOutOfBounds { offset: BODY_R, field: Field::Auth, len: u32::MAX, remaining: 0 }
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Errors: offsets and messages
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn decode_error_offsets_are_exact() {
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (b"%L".to_vec(), DecodeError::Truncated { offset: 0, field: Field::Magic, needed: 2 }),
        (b"%LOR".to_vec(), DecodeError::Truncated { offset: 4, field: Field::RoomId, needed: 1 }),
        (
            hex("254c4f5205726f6f"),
            DecodeError::LengthOutOfBounds { offset: 4, field: Field::RoomId, len: 5, remaining: 3 },
        ),
        (
            frame(b"%LOR", b"r", 0x00, &var(b"a")),
            DecodeError::Truncated { offset: 9, field: Field::Version, needed: 1 },
        ),
        (
            frame(b"%LOR", b"r", 0x00, &cat(&[&var(b"a"), &[0x04, 0x01]])),
            DecodeError::LengthOutOfBounds { offset: 9, field: Field::Version, len: 4, remaining: 1 },
        ),
        (
            frame(b"%LOR", b"room", 0x01, &cat(&[&var(b"read"), &var(b"v"), &[0x81]])),
            DecodeError::Truncated { offset: 4 + 1 + 4 + 1 + 5 + 2 + 1, field: Field::Extra, needed: 1 },
        ),
        (frame(b"%LOR", b"r", 0x02, &[]), DecodeError::Truncated { offset: BODY_R, field: Field::Code, needed: 1 }),
        (
            frame(b"%LOR", b"r", 0x04, &cat(&[&[0; 8], &[0x01]])),
            DecodeError::Truncated { offset: BODY_R + 9, field: Field::TotalSize, needed: 1 },
        ),
        (
            frame(b"%LOR", b"r", 0x05, &cat(&[&[0; 8], &[0x00], &[0x03, 0x61]])),
            DecodeError::LengthOutOfBounds { offset: BODY_R + 9, field: Field::FragmentData, len: 3, remaining: 1 },
        ),
        (
            frame(b"%LOR", b"r", 0x06, &[0x01]),
            DecodeError::Truncated { offset: BODY_R + 1, field: Field::Message, needed: 1 },
        ),
        (
            frame(b"%LOR", b"r", 0x08, &[0; 8]),
            DecodeError::Truncated { offset: BODY_R + 8, field: Field::Status, needed: 1 },
        ),
        (
            frame(b"%LOR", b"r", 0x08, &[0; 5]),
            DecodeError::Truncated { offset: BODY_R, field: Field::BatchId, needed: 3 },
        ),
        (frame(b"%LOR", b"r", 0x07, b"xyz"), DecodeError::TrailingBytes { offset: BODY_R, count: 3 }),
    ];
    for (bytes, want) in cases {
        let got = reject(&bytes);
        assert_eq!(got, want, "{bytes:02x?}");
        assert!(got.offset() <= bytes.len());
    }
}

#[test]
fn decode_error_display_names_field_and_offset() {
    let shown = |e: DecodeError| e.to_string();
    let s = shown(DecodeError::Truncated { offset: 4, field: Field::RoomId, needed: 1 });
    assert!(s.contains("room id") && s.contains("byte 4") && s.contains('1'), "{s}");
    let s = shown(DecodeError::VarintOverflow { offset: 7, field: Field::UpdateCount });
    assert!(s.contains("update count") && s.contains("byte 7") && s.contains("u32::MAX"), "{s}");
    let s = shown(DecodeError::VarintNotCanonical { offset: 9, field: Field::FragmentIndex });
    assert!(s.contains("fragment index") && s.contains("byte 9") && s.contains("minimal"), "{s}");
    let s = shown(DecodeError::LengthOutOfBounds { offset: 11, field: Field::Auth, len: 500, remaining: 3 });
    assert!(s.contains("auth") && s.contains("byte 11") && s.contains("500") && s.contains('3'), "{s}");
    let s = shown(DecodeError::CountOutOfBounds { offset: 7, field: Field::UpdateCount, count: 1000, remaining: 10 });
    assert!(s.contains("update count") && s.contains("byte 7") && s.contains("1000"), "{s}");
    let s = shown(DecodeError::InvalidUtf8 { offset: 12, field: Field::AppCode });
    assert!(s.contains("app code") && s.contains("byte 12") && s.contains("UTF-8"), "{s}");
    let s = shown(DecodeError::InvalidPermission { offset: 7 });
    assert!(s.contains("permission") && s.contains("byte 7"), "{s}");
    let s = shown(DecodeError::RoomIdTooLong { offset: 4, len: 129, max: 128 });
    assert!(s.contains("room id") && s.contains("byte 4") && s.contains("129") && s.contains("128"), "{s}");
    let s = shown(DecodeError::UnknownMessageType { offset: 6, byte: 0x09 });
    assert!(s.contains("message type") && s.contains("byte 6") && s.contains("0x09"), "{s}");
    let s = shown(DecodeError::UnknownCrdt { magic: *b"%XYZ" });
    assert!(s.contains("magic") && s.contains("byte 0"), "{s}");
    let s = shown(DecodeError::TrailingBytes { offset: 15, count: 2 });
    assert!(s.contains("trailing") && s.contains("byte 15") && s.contains('2'), "{s}");
    let s = shown(DecodeError::FrameTooLarge { len: MAX_FRAME_SIZE + 1, max: MAX_FRAME_SIZE });
    assert!(s.contains("262145") && s.contains("262144"), "{s}");
    // And errors that come out of the decoder say where.
    let e = reject(&frame(b"%LOR", b"r", 0x06, &cat(&[&[0x02], &var(&[0xff])])));
    assert!(e.to_string().contains("message") && e.to_string().contains(&format!("byte {}", e.offset())), "{e}");
    // Encode errors name what is wrong.
    let s = EncodeError::TailNotAllowed {
        field: Field::AppCode,
        code: JoinErrorCode::UNKNOWN,
        required: JoinErrorCode::APP_ERROR,
    }
    .to_string();
    assert!(s.contains("app code") && s.contains("app_error") && s.contains("unknown"), "{s}");
    let s = EncodeError::RoomIdTooLong { len: 129, max: 128 }.to_string();
    assert!(s.contains("room id") && s.contains("129"), "{s}");
}

// ---------------------------------------------------------------------------------------------------------------
// Truncation and encode-side guarantees
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn truncated_golden_frames_rejected() {
    for h in GOLDEN {
        let full = hex(h);
        for cut in 0..full.len() {
            let prefix = &full[..cut];
            match Message::decode(prefix) {
                Err(e) => assert!(e.offset() <= cut, "{h} cut at {cut}: {e}"),
                // The only prefixes that are frames themselves: the version_unknown and app_error JoinErrors
                // without their optional tails.
                Ok(m) => {
                    assert!(h == GOLDEN[4] || h == GOLDEN[5], "prefix of {h} at {cut} accepted");
                    assert_eq!(cut, if h == GOLDEN[4] { full.len() - 3 } else { full.len() - 15 });
                    assert!(matches!(m.body, Body::JoinError { receiver_version: None, app_code: None, .. }));
                }
            }
        }
    }
}

#[test]
fn encode_errors_leave_output_untouched() {
    let m = msg(Body::JoinRequest { auth: b"abc", version: b"" });
    let n = m.encoded_len();
    let mut small = vec![0xEEu8; n - 1];
    assert_eq!(m.encode_into_slice(&mut small), Err(EncodeError::BufferTooSmall { required: n, available: n - 1 }));
    assert!(small.iter().all(|&b| b == 0xEE));
    let mut empty: [u8; 0] = [];
    assert_eq!(m.encode_into_slice(&mut empty), Err(EncodeError::BufferTooSmall { required: n, available: 0 }));
    let mut fixed = [0u8; 4];
    let mut window = &mut fixed[..];
    assert_eq!(m.encode_into_buf(&mut window), Err(EncodeError::BufferTooSmall { required: n, available: 4 }));
    assert_eq!(fixed, [0; 4]);
}

// ---------------------------------------------------------------------------------------------------------------
// Keepalive: text `ping`/`pong` only
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn text_ping_and_pong_are_keepalive() {
    assert_eq!(Frame::Text(Bytes::from_static(b"ping")).decode(), Ok(Inbound::Keepalive(Keepalive::Ping)));
    assert_eq!(Frame::Text(Bytes::from_static(b"pong")).decode(), Ok(Inbound::Keepalive(Keepalive::Pong)));
    assert_eq!(Frame::ping(), Frame::Text(Bytes::from_static(PING)));
    assert_eq!(Frame::pong(), Frame::Text(Bytes::from_static(PONG)));
    assert_eq!(Keepalive::Ping.frame(), Frame::ping());
    assert_eq!(Keepalive::Pong.frame(), Frame::pong());
    assert!(Frame::ping().is_text() && Frame::ping().len() == 4 && !Frame::ping().is_empty());
}

#[test]
fn other_text_frames_have_no_meaning() {
    let golden = hex(GOLDEN[12]);
    for t in [&b"PING"[..], b"ping\n", b" pong", b"pin", b"", b"hello", &golden] {
        let f = Frame::Text(Bytes::copy_from_slice(t));
        assert_eq!(f.decode(), Ok(Inbound::OtherText(t)), "{t:02x?}");
        assert_eq!(Keepalive::from_text(t), None);
    }
}

#[test]
fn binary_ping_is_not_keepalive() {
    // A binary frame is always a protocol message: "ping" as binary is a frame with an unknown magic.
    let f = Frame::Binary(Bytes::from_static(b"ping"));
    assert!(!f.is_text());
    assert_eq!(f.decode(), Err(DecodeError::UnknownCrdt { magic: *b"ping" }));
    let f = Frame::Binary(Bytes::from_static(b"pong"));
    assert_eq!(f.decode(), Err(DecodeError::UnknownCrdt { magic: *b"pong" }));
    // And a valid binary frame is a message.
    let golden = Bytes::from(hex(GOLDEN[12]));
    assert!(matches!(Frame::Binary(golden).decode(), Ok(Inbound::Message(m)) if m.body == Body::Leave));
}
