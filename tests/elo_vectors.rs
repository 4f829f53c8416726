//! The normative %ELO vector (protocol-e2ee.md, `../shared/vectors/elo-normative.txt`) and the Loro
//! version-vector vector, plus the version-vector decoding rules.

use loro_sansio::elo::{self, EloError, EloField, EloKey, Record, RecordHeader, RecordKind, Span, VersionVector};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The vector, read from the shared file when it is beside the repository, else from the copy below (identical).
fn vector(name: &str) -> Vec<u8> {
    const BUILTIN: &str = "key 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
peer_id 01020304
iv 86bcad09d5e7e3d70503a57e
aad 0004010203040103026b310c86bcad09d5e7e3d70503a57e
plaintext 01026869
ciphertext 6930a8fbe96cc5f30b67f4bc7f53262e01b62852";
    let shared = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/elo-normative.txt"));
    let text = shared.unwrap_or_else(|_| BUILTIN.to_string());
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} missing from the vector"));
    unhex(line.split_whitespace().nth(1).unwrap())
}

#[path = "common/fixed_iv.rs"]
mod fixed_iv;
use fixed_iv::FixedIv;

fn key() -> EloKey {
    EloKey::new(&vector("key")).unwrap()
}

fn sealed_vector() -> Vec<u8> {
    let peer = vector("peer_id");
    let header = RecordHeader::delta(&peer, 1, 3, "k1");
    elo::seal(&header, &key(), &vector("plaintext"), &mut FixedIv(vector("iv"))).unwrap()
}

#[test]
fn normative_vector_aad_bytes() {
    let rec = sealed_vector();
    assert_eq!(Record::parse(&rec).unwrap().aad(), &vector("aad")[..]);
}

#[test]
fn normative_vector_header_fields() {
    let mut rec = vector("aad");
    let ct = vector("ciphertext");
    rec.push(ct.len() as u8);
    rec.extend_from_slice(&ct);
    let r = Record::parse(&rec).unwrap();
    assert_eq!(r.kind(), RecordKind::DeltaSpan);
    assert_eq!(r.span(), Some(Span { peer: &[1, 2, 3, 4], start: 1, end: 3 }));
    assert_eq!(r.key_id(), "k1");
    assert_eq!(&r.iv()[..], &vector("iv")[..]);
    assert_eq!(r.aad(), &vector("aad")[..]);
    assert_eq!(r.ciphertext(), &ct[..]);
}

#[test]
fn normative_vector_ciphertext() {
    let rec = sealed_vector();
    let r = Record::parse(&rec).unwrap();
    assert_eq!(r.ciphertext(), &vector("ciphertext")[..]);
    // The whole record is the AAD, the ciphertext's length and the ciphertext.
    let mut expected = vector("aad");
    expected.push(0x14);
    expected.extend_from_slice(&vector("ciphertext"));
    assert_eq!(rec, expected);
    assert_eq!(elo::sealed_len(&RecordHeader::delta(&[1, 2, 3, 4], 1, 3, "k1"), 4).unwrap(), expected.len());
}

#[test]
fn normative_vector_decrypts() {
    let mut rec = vector("aad");
    let ct = vector("ciphertext");
    rec.push(ct.len() as u8);
    rec.extend_from_slice(&ct);
    let k = key();
    assert_eq!(elo::open(&rec, &("k1", &k)).unwrap(), vector("plaintext"));
    let mut out = [0u8; 4];
    assert_eq!(Record::parse(&rec).unwrap().open_into(&("k1", &k), &mut out).unwrap(), 4);
    assert_eq!(&out[..], &vector("plaintext")[..]);
}

#[test]
fn vv_vector_encodes() {
    let vv = VersionVector::from_entries([(300, 1), (3, 2)]).unwrap();
    assert_eq!(vv.encode(), unhex("020304ac0202"));
    assert_eq!(vv.encoded_len(), 6);
    let mut buf = [0u8; 6];
    assert_eq!(vv.encode_into(&mut buf).unwrap(), 6);
    assert_eq!(&buf[..], &unhex("020304ac0202")[..]);
}

#[test]
fn vv_vector_decodes() {
    let vv = VersionVector::decode(&unhex("020304ac0202")).unwrap();
    assert_eq!(vv.iter().collect::<Vec<_>>(), [(3, 2), (300, 1)]);
    assert_eq!(vv.get(3), 2);
    assert_eq!(vv.get(300), 1);
    assert_eq!(vv.get(4), 0);
}

#[test]
fn vv_decode_accepts_any_entry_order() {
    // Loro writes entries in hash-map order.
    let vv = VersionVector::decode(&unhex("02ac02020304")).unwrap();
    assert_eq!(vv, VersionVector::decode(&unhex("020304ac0202")).unwrap());
}

#[test]
fn vv_decode_rejects_duplicate_peers() {
    let e = VersionVector::decode(&unhex("0203040306")).unwrap_err();
    assert_eq!(e, EloError::DuplicatePeer { offset: 3, peer: 3 });
}

#[test]
fn vv_decode_rejects_non_canonical_varints() {
    let e = VersionVector::decode(&unhex("01038400")).unwrap_err();
    assert_eq!(e, EloError::VarintNotCanonical { offset: 2, field: EloField::VersionCounter });
    let e = VersionVector::decode(&unhex("01830004")).unwrap_err();
    assert_eq!(e, EloError::VarintNotCanonical { offset: 1, field: EloField::VersionPeer });
}

#[test]
fn vv_decode_rejects_negative_counters() {
    // zigzag 01 = -1
    assert_eq!(VersionVector::decode(&unhex("010301")).unwrap_err(), EloError::NegativeCounter { offset: 2 });
}

#[test]
fn vv_decode_accepts_u64_peers_and_i32_max_counters() {
    let bytes = unhex("01ffffffffffffffffff01feffffff0f");
    let vv = VersionVector::decode(&bytes).unwrap();
    assert_eq!(vv.get(u64::MAX), i32::MAX as u32);
    assert_eq!(vv.encode(), bytes);
}

#[test]
fn vv_decode_rejects_count_beyond_remaining_bytes() {
    let e = VersionVector::decode(&unhex("ffffffff0f0102")).unwrap_err();
    assert!(matches!(e, EloError::CountOutOfBounds { field: EloField::VersionCount, count: u32::MAX, .. }));
}

#[test]
fn vv_decode_rejects_trailing_bytes() {
    assert_eq!(VersionVector::decode(&unhex("00ff")).unwrap_err(), EloError::TrailingBytes { offset: 1, count: 1 });
}

#[test]
fn vv_empty_bytes_mean_no_version_and_empty_vv_encodes_as_00() {
    assert!(VersionVector::decode(&[]).unwrap().is_empty());
    assert!(VersionVector::decode(&[0]).unwrap().is_empty());
    assert_eq!(VersionVector::new().encode(), [0]);
    // Zero counters mean "no operations": dropped on decode.
    assert!(VersionVector::decode(&unhex("010500")).unwrap().is_empty());
}
