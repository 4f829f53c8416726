//! Property tests of the wire codec (seeded, so every run checks the same cases).
//!
//! - Any valid message — all nine bodies, all seven magics, code bytes nobody assigned — survives
//!   encode → decode unchanged, through the borrowed and the owned decoder.
//! - Any frame the decoder accepts re-encodes to exactly the same bytes (inputs built from frame-shaped noise so a
//!   good share is accepted).
//! - Structure-aware hostile inputs: valid frames truncated at every length, extended, with their counts and lengths
//!   rewritten (inflated, shrunk, padded to non-canonical form, pushed past `u32::MAX`), bytes flipped, inserted and
//!   removed, and frames spliced together. Decoding never panics; whatever it accepts re-encodes identically.

#[path = "common/leb.rs"]
mod leb;
use leb::leb;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use loro_sansio::wire::{
    AckStatus, BatchId, Body, CrdtType, JoinErrorCode, Message, OwnedBody, OwnedMessage, Permission, RoomErrorCode,
    Utf8Bytes, MAX_FRAME_SIZE,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

// ---------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------

fn config(cases: u32, seed: u64) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..Config::default() }
}

// ---------------------------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------------------------

fn crdt() -> impl Strategy<Value = CrdtType> {
    prop::sample::select(CrdtType::ALL.to_vec())
}

/// Room ids up to the 128-byte limit: empty, ASCII up to exactly 128, or any Unicode (≤ 32 chars = ≤ 128 bytes).
fn room() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9:/_-]{1,24}",
        (0usize..=128).prop_map(|n| "r".repeat(n)),
        prop::collection::vec(any::<char>(), 0..=32).prop_map(|c| c.into_iter().collect()),
    ]
}

fn bytes_up_to(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// Mostly small payloads, sometimes a few KiB.
fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![8 => bytes_up_to(40), 1 => bytes_up_to(300), 1 => bytes_up_to(5000)]
}

fn text() -> impl Strategy<Value = Utf8Bytes> {
    prop_oneof![
        "[ -~]{0,40}".prop_map(Utf8Bytes::from),
        prop::collection::vec(any::<char>(), 0..40).prop_map(|c| Utf8Bytes::from(c.into_iter().collect::<String>())),
    ]
}

/// u32 values with the LEB128 width boundaries over-represented.
fn wide_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        0u32..300,
        prop::sample::select(vec![
            0,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            268_435_455,
            268_435_456,
            u32::MAX
        ]),
    ]
}

fn batch() -> impl Strategy<Value = BatchId> {
    any::<[u8; 8]>().prop_map(BatchId)
}

/// A code byte: usually an assigned one, otherwise any byte at all.
fn code_byte(assigned: &'static [u8]) -> impl Strategy<Value = u8> {
    prop_oneof![prop::sample::select(assigned), any::<u8>()]
}

fn body() -> impl Strategy<Value = OwnedBody> {
    prop_oneof![
        (payload(), payload()).prop_map(|(auth, version)| OwnedBody::JoinRequest { auth, version }),
        (prop::sample::select(vec![Permission::Read, Permission::Write]), payload(), payload())
            .prop_map(|(permission, version, extra)| OwnedBody::JoinResponseOk { permission, version, extra }),
        (code_byte(&[0x00, 0x01, 0x02, 0x7f]), text(), proptest::option::of(payload()), proptest::option::of(text()))
            .prop_map(|(code, message, rv, app)| {
                // A tail only with the code that carries it.
                let code = JoinErrorCode(code);
                OwnedBody::JoinError {
                    code,
                    message,
                    receiver_version: rv.filter(|_| code == JoinErrorCode::VERSION_UNKNOWN),
                    app_code: app.filter(|_| code == JoinErrorCode::APP_ERROR),
                }
            }),
        (prop::collection::vec(payload(), 0..24), batch())
            .prop_map(|(updates, batch_id)| OwnedBody::DocUpdate { updates: updates.into(), batch_id }),
        (batch(), wide_u32(), wide_u32()).prop_map(|(batch_id, fragment_count, total_size)| {
            OwnedBody::FragmentHeader { batch_id, fragment_count, total_size }
        }),
        (batch(), wide_u32(), payload()).prop_map(|(batch_id, index, data)| OwnedBody::Fragment {
            batch_id,
            index,
            data
        }),
        (code_byte(&[0x01, 0x02, 0x7f]), text())
            .prop_map(|(code, message)| OwnedBody::RoomError { code: RoomErrorCode(code), message }),
        Just(OwnedBody::Leave),
        (batch(), code_byte(&[0x00, 0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x7f]))
            .prop_map(|(ref_id, status)| OwnedBody::Ack { ref_id, status: AckStatus(status) }),
    ]
}

/// Any message the codec must accept: every magic, body and code byte, within the frame limit.
fn message() -> impl Strategy<Value = OwnedMessage> {
    (crdt(), room(), body())
        .prop_map(|(crdt, room, body)| OwnedMessage { crdt, room: Utf8Bytes::from(room), body })
        .prop_filter("frame within the 256 KiB limit", |m| m.as_message().encoded_len() <= MAX_FRAME_SIZE)
}

// ---------------------------------------------------------------------------------------------------------------
// Local wire helpers (independent of the crate's own)
// ---------------------------------------------------------------------------------------------------------------

/// Reads any LEB128 (canonical or not, up to 10 bytes) at `pos`: `(value, width)`.
fn read_leb(b: &[u8], pos: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(pos + i)?;
        v |= u64::from(byte & 0x7f).checked_shl(7 * i as u32).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn var_len(n: usize) -> usize {
    leb(n as u64).len() + n
}

/// Offsets of every varint (counts, lengths, indices) in the encoding of `m`.
fn varint_positions(m: &Message<'_>) -> Vec<usize> {
    /// Records a length-prefixed field of `len` bytes at `pos` and moves past it.
    fn field(at: &mut Vec<usize>, pos: &mut usize, len: usize) {
        at.push(*pos);
        *pos += var_len(len);
    }
    /// Records a bare varint `v` at `pos` and moves past it.
    fn scalar(at: &mut Vec<usize>, pos: &mut usize, v: u64) {
        at.push(*pos);
        *pos += leb(v).len();
    }
    let mut at = Vec::new();
    let mut pos = 4;
    field(&mut at, &mut pos, m.room.len());
    pos += 1;
    match m.body {
        Body::JoinRequest { auth, version } => {
            field(&mut at, &mut pos, auth.len());
            field(&mut at, &mut pos, version.len());
        }
        Body::JoinResponseOk { permission, version, extra } => {
            field(&mut at, &mut pos, permission.as_str().len());
            field(&mut at, &mut pos, version.len());
            field(&mut at, &mut pos, extra.len());
        }
        Body::JoinError { message, receiver_version, app_code, .. } => {
            pos += 1;
            field(&mut at, &mut pos, message.len());
            if let Some(v) = receiver_version {
                field(&mut at, &mut pos, v.len());
            }
            if let Some(a) = app_code {
                field(&mut at, &mut pos, a.len());
            }
        }
        Body::DocUpdate { updates, .. } => {
            scalar(&mut at, &mut pos, updates.len() as u64);
            for u in updates {
                field(&mut at, &mut pos, u.len());
            }
            pos += 8;
        }
        Body::FragmentHeader { fragment_count, total_size, .. } => {
            pos += 8;
            scalar(&mut at, &mut pos, u64::from(fragment_count));
            scalar(&mut at, &mut pos, u64::from(total_size));
        }
        Body::Fragment { index, data, .. } => {
            pos += 8;
            scalar(&mut at, &mut pos, u64::from(index));
            field(&mut at, &mut pos, data.len());
        }
        Body::RoomError { message, .. } => {
            pos += 1;
            field(&mut at, &mut pos, message.len());
        }
        Body::Leave => {}
        Body::Ack { .. } => pos += 9,
    }
    assert_eq!(pos, m.encoded_len(), "layout walk ends at the frame end");
    at
}

/// Replaces the varint at `pos` with `new` (raw bytes, canonical or not).
fn rewrite_varint(frame: &[u8], pos: usize, new: &[u8]) -> Vec<u8> {
    let (_, width) = read_leb(frame, pos).expect("a varint at a varint position");
    [&frame[..pos], new, &frame[pos + width..]].concat()
}

/// Values and forms a hostile peer would write instead of the varint `v`.
fn hostile_varints(v: u64) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [
        v + 1,
        v + 2,
        v.saturating_sub(1),
        v * 2 + 7,
        v + 1000,
        0,
        127,
        128,
        u64::from(u32::MAX),
        u64::from(u32::MAX) + 1,
        1 << 40,
        u64::MAX,
    ]
    .iter()
    .map(|&x| leb(x))
    .collect();
    // The same value, padded to a non-canonical form.
    let mut padded = leb(v);
    if let Some(last) = padded.last_mut() {
        *last |= 0x80;
    }
    padded.push(0x00);
    out.push(padded);
    // A varint that never ends within the frame.
    out.push(vec![0xff; 6]);
    out
}

// ---------------------------------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------------------------------

/// Decodes `b`; if accepted, checks every encoder reproduces `b` and the owned decoder agrees. Returns whether `b`
/// was accepted. Any panic inside the codec fails the property.
fn check_frame(b: &[u8]) -> Result<bool, TestCaseError> {
    let shared = Bytes::copy_from_slice(b);
    let owned = OwnedMessage::decode(&shared);
    match Message::decode(b) {
        Ok(m) => {
            prop_assert_eq!(m.encoded_len(), b.len());
            prop_assert_eq!(m.encoded_len_checked(), Ok(b.len()));
            let mut buf = vec![0u8; b.len()];
            prop_assert_eq!(m.encode_into_slice(&mut buf), Ok(b.len()));
            prop_assert_eq!(&buf[..], b);
            let mut v = Vec::new();
            prop_assert_eq!(m.encode_into_vec(&mut v), Ok(b.len()));
            prop_assert_eq!(&v[..], b);
            let owned = owned.map_err(|e| TestCaseError::fail(format!("owned decoder rejected: {e}")))?;
            prop_assert_eq!(owned.as_message(), m);
            prop_assert_eq!(&owned.encode_to_bytes().expect("owned re-encode")[..], b);
            Ok(true)
        }
        Err(e) => {
            prop_assert_eq!(owned, Err(e.clone()));
            prop_assert!(e.offset() <= b.len(), "offset {} past the end of {} bytes", e.offset(), b.len());
            Ok(false)
        }
    }
}

proptest! {
    #![proptest_config(config(512, 0x10c0_5a45))]

    /// decode(encode(m)) == m for every valid message, borrowed and owned.
    #[test]
    fn arbitrary_messages_round_trip(owned in message()) {
        let m = owned.as_message();
        let len = m.encoded_len();
        prop_assert_eq!(m.encoded_len_checked(), Ok(len));
        let bytes = m.encode_to_bytes().expect("valid message encodes");
        prop_assert_eq!(bytes.len(), len);
        let back = Message::decode(&bytes).expect("encoded frame decodes");
        prop_assert_eq!(back, m);
        prop_assert_eq!(back.message_type(), m.message_type());
        prop_assert_eq!(&OwnedMessage::decode(&bytes).expect("owned decode"), &owned);
        let mut slice = vec![0u8; len];
        prop_assert_eq!(m.encode_into_slice(&mut slice), Ok(len));
        prop_assert_eq!(&slice[..], &bytes[..]);
        prop_assert!(check_frame(&bytes)?);
        // The varint layout used by the hostile test is the real one.
        for pos in varint_positions(&m) {
            let (_, width) = read_leb(&bytes, pos).expect("varint at a varint position");
            prop_assert_eq!(leb(read_leb(&bytes, pos).unwrap().0).len(), width);
        }
    }
}

/// A length-prefixed field: mostly ASCII (so string fields are usually valid), sometimes any bytes.
fn var_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => "[ -~]{0,10}".prop_map(|s| [leb(s.len() as u64), s.into_bytes()].concat()),
        1 => prop::collection::vec(any::<u8>(), 0..10).prop_map(|b| [leb(b.len() as u64), b].concat()),
        1 => prop::sample::select(vec![&b"read"[..], b"write", b"rw"]).prop_map(|s| [leb(s.len() as u64), s.to_vec()].concat()),
    ]
}

fn varint_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (0u64..300).prop_map(leb),
        1 => prop::sample::select(vec![0u64, 1, 127, 128, u64::from(u32::MAX), 1 << 32, u64::MAX]).prop_map(leb),
        1 => prop::collection::vec(any::<u8>(), 1..6),
    ]
}

fn id_piece() -> impl Strategy<Value = Vec<u8>> {
    any::<[u8; 8]>().prop_map(|b| b.to_vec())
}

fn code_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::sample::select(vec![0u8, 1, 2, 3, 0x7f]), any::<u8>()].prop_map(|b| vec![b])
}

/// A body that follows the grammar of message type `ty` (its values are random, so some are still invalid).
fn grammar_body(ty: u8) -> BoxedStrategy<Vec<u8>> {
    match ty {
        0 => (var_piece(), var_piece()).prop_map(|(a, b)| [a, b].concat()).boxed(),
        1 => (var_piece(), var_piece(), var_piece()).prop_map(|(a, b, c)| [a, b, c].concat()).boxed(),
        2 => (code_piece(), var_piece(), proptest::option::of(var_piece()))
            .prop_map(|(a, b, c)| [a, b, c.unwrap_or_default()].concat())
            .boxed(),
        3 => (prop::collection::vec(var_piece(), 0..5), id_piece())
            .prop_map(|(u, id)| [leb(u.len() as u64), u.concat(), id].concat())
            .boxed(),
        4 => (id_piece(), varint_piece(), varint_piece()).prop_map(|(a, b, c)| [a, b, c].concat()).boxed(),
        5 => (id_piece(), varint_piece(), var_piece()).prop_map(|(a, b, c)| [a, b, c].concat()).boxed(),
        6 => (code_piece(), var_piece()).prop_map(|(a, b)| [a, b].concat()).boxed(),
        8 => (id_piece(), code_piece()).prop_map(|(a, b)| [a, b].concat()).boxed(),
        _ => Just(Vec::new()).boxed(),
    }
}

/// Frame-shaped inputs: a (usually) valid magic and room id, a type byte, then either a body that follows that
/// type's grammar or one assembled from random wire-like pieces; sometimes with a byte or two of tail noise.
fn frame_like() -> impl Strategy<Value = Vec<u8>> {
    let magic = prop_oneof![
        9 => prop::sample::select(CrdtType::ALL.to_vec()).prop_map(|c| c.magic()),
        1 => any::<[u8; 4]>(),
    ];
    let room = prop_oneof![
        4 => "[a-z0-9-]{0,8}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..6),
    ];
    let noise_piece = prop_oneof![var_piece(), varint_piece(), id_piece(), code_piece()];
    let body = (0u8..=9).prop_flat_map(move |ty| {
        let noise = prop::collection::vec(noise_piece.clone(), 0..7).prop_map(|p| p.concat());
        (Just(ty), prop_oneof![3 => grammar_body(ty), 1 => noise])
    });
    let tail = prop_oneof![6 => Just(Vec::new()), 1 => prop::collection::vec(any::<u8>(), 1..3)];
    (magic, room, body, tail).prop_map(|(magic, room, (ty, body), tail)| {
        [magic.to_vec(), leb(room.len() as u64), room, vec![ty], body, tail].concat()
    })
}

/// encode(decode(b)) == b for every accepted frame b.
#[test]
fn every_accepted_frame_re_encodes_identically() {
    let accepted = AtomicUsize::new(0);
    let total = AtomicUsize::new(0);
    let mut runner = TestRunner::new(config(8192, 0xacce_97ed));
    let input = prop_oneof![6 => frame_like(), 1 => prop::collection::vec(any::<u8>(), 0..48)];
    runner
        .run(&input, |b| {
            total.fetch_add(1, Ordering::Relaxed);
            if check_frame(&b)? {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    let (a, t) = (accepted.into_inner(), total.into_inner());
    eprintln!("accepted {a} of {t} frame-shaped inputs");
    assert!(a * 4 >= t, "too few accepted inputs ({a}/{t}) for the property to mean much");
}

/// What the hostile test does to a valid frame, beyond the exhaustive truncations and varint rewrites.
#[derive(Clone, Debug)]
enum Mutation {
    Truncate(prop::sample::Index),
    Extend(Vec<u8>),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index, usize),
    Varint(prop::sample::Index, Vec<u8>),
    Splice(prop::sample::Index, prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    use prop::sample::Index;
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 1..10).prop_map(Mutation::Extend),
        (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1usize..6).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..6)).prop_map(|(i, v)| Mutation::Varint(i, v)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Splice(a, b)),
    ]
}

fn apply(frame: &[u8], other: &[u8], varints: &[usize], m: &Mutation) -> Vec<u8> {
    let n = frame.len().max(1);
    match m {
        Mutation::Truncate(i) => frame[..i.index(n)].to_vec(),
        Mutation::Extend(extra) => [frame, extra].concat(),
        Mutation::Flip(i, mask) => {
            let mut f = frame.to_vec();
            if !f.is_empty() {
                f[i.index(n)] ^= mask;
            }
            f
        }
        Mutation::Insert(i, b) => {
            let mut f = frame.to_vec();
            f.insert(i.index(n + 1).min(f.len()), *b);
            f
        }
        Mutation::Remove(i, k) => {
            let mut f = frame.to_vec();
            let at = i.index(n).min(f.len());
            f.drain(at..(at + k).min(f.len()));
            f
        }
        Mutation::Varint(i, raw) => {
            // Positions recorded for the original frame; after earlier mutations they may point anywhere.
            let pos = varints[i.index(varints.len())];
            match read_leb(frame, pos) {
                Some(_) => rewrite_varint(frame, pos, raw),
                None => frame.to_vec(),
            }
        }
        Mutation::Splice(a, b) => {
            let cut_a = a.index(frame.len() + 1);
            let cut_b = b.index(other.len() + 1);
            [&frame[..cut_a], &other[cut_b..]].concat()
        }
    }
}

/// Valid frames made hostile never make the decoder panic, and whatever it accepts re-encodes identically.
#[test]
fn hostile_mutations_never_panic() {
    let mut runner = TestRunner::new(config(2048, 0x4057_11e5));
    let strategy = (message(), message(), prop::collection::vec(mutation(), 1..5));
    let outcomes = [AtomicUsize::new(0), AtomicUsize::new(0)];
    runner
        .run(&strategy, |(a, b, mutations)| {
            let ma = a.as_message();
            let fa = ma.encode_to_bytes().expect("valid");
            let fb = b.as_message().encode_to_bytes().expect("valid");
            let varints = varint_positions(&ma);
            let count = |ok: bool| outcomes[usize::from(ok)].fetch_add(1, Ordering::Relaxed);

            // Truncated at every length (sampled evenly for long frames).
            let step = (fa.len() / 256).max(1);
            for cut in (0..fa.len()).step_by(step) {
                count(check_frame(&fa[..cut])?);
            }
            // Every count and length rewritten to every hostile value.
            for &pos in &varints {
                let (v, _) = read_leb(&fa, pos).expect("varint");
                for raw in hostile_varints(v) {
                    count(check_frame(&rewrite_varint(&fa, pos, &raw))?);
                }
            }
            // Random chains of mutations, checked after each step.
            let mut cur = fa.to_vec();
            for m in &mutations {
                cur = apply(&cur, &fb, &varints, m);
                count(check_frame(&cur)?);
            }
            Ok(())
        })
        .unwrap();
    let [rejected, accepted] = outcomes.map(AtomicUsize::into_inner);
    eprintln!("hostile inputs: {rejected} rejected, {accepted} accepted (and re-encoded identically)");
    assert!(rejected > 50_000, "the hostile test ran fewer inputs than expected: {rejected}");
}

/// A varint rewritten to the same value in a longer form is always rejected, wherever it sits.
#[test]
fn padded_varints_always_rejected() {
    let mut runner = TestRunner::new(config(512, 0x9add_ed00));
    runner
        .run(&message(), |owned| {
            let m = owned.as_message();
            let f = m.encode_to_bytes().expect("valid");
            for pos in varint_positions(&m) {
                let (v, _) = read_leb(&f, pos).expect("varint");
                let mut padded = leb(v);
                *padded.last_mut().expect("non-empty") |= 0x80;
                padded.push(0);
                let bad = rewrite_varint(&f, pos, &padded);
                prop_assert!(Message::decode(&bad).is_err(), "padded varint at {} accepted", pos);
            }
            Ok(())
        })
        .unwrap();
}
