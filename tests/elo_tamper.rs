//! Tampering with a sealed record in any single bit makes `open` fail; wrong and unknown keys are typed errors
//! naming the key id.

use std::collections::BTreeMap;

use chacha20::ChaCha20Rng;
use loro_sansio::elo::{self, EloError, EloKey, Record, RecordHeader, SnapshotEntry};
use rand_core::SeedableRng;

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_seed([0x42; 32])
}

fn assert_every_bit_flip_fails(record: &[u8], keys: &BTreeMap<String, EloKey>) {
    assert!(elo::open(record, keys).is_ok());
    let mut copy = record.to_vec();
    for byte in 0..record.len() {
        for bit in 0..8 {
            copy[byte] ^= 1 << bit;
            assert!(elo::open(&copy, keys).is_err(), "flip of bit {bit} in byte {byte} still opens");
            copy[byte] ^= 1 << bit;
        }
    }
}

fn keys() -> BTreeMap<String, EloKey> {
    BTreeMap::from([
        ("k1".to_string(), EloKey::aes256(&[7; 32])),
        ("k2".to_string(), EloKey::aes128(&[9; 16])),
        // The ids a flip of "k1"/"k2" can turn into, so header flips reach AES-GCM rather than stopping at
        // an unknown key id.
        ("k0".to_string(), EloKey::aes256(&[7; 32])),
        ("k3".to_string(), EloKey::aes256(&[7; 32])),
        ("j1".to_string(), EloKey::aes256(&[7; 32])),
    ])
}

#[test]
fn every_bit_flip_of_a_delta_record_fails_to_open() {
    let keys = keys();
    let rec =
        elo::seal(&RecordHeader::delta(b"1234", 10, 20, "k1"), &keys["k1"], b"some loro update", &mut rng()).unwrap();
    assert_every_bit_flip_fails(&rec, &keys);
}

#[test]
fn every_bit_flip_of_a_snapshot_record_fails_to_open() {
    let keys = keys();
    let vv = [SnapshotEntry { peer: b"1", counter: 4 }, SnapshotEntry { peer: b"22", counter: 130 }];
    let rec = elo::seal(&RecordHeader::snapshot(&vv, "k2"), &keys["k2"], &[0x5a; 40], &mut rng()).unwrap();
    assert_every_bit_flip_fails(&rec, &keys);
}

#[test]
fn every_bit_flip_with_an_aes128_key_and_empty_plaintext_fails_to_open() {
    let keys = keys();
    let rec = elo::seal(&RecordHeader::delta(&[0xff], 0, 1, "k2"), &keys["k2"], b"", &mut rng()).unwrap();
    assert_every_bit_flip_fails(&rec, &keys);
}

#[test]
fn ciphertext_flip_is_an_authentication_error_naming_the_key_id() {
    let keys = keys();
    let mut rec = elo::seal(&RecordHeader::delta(b"1", 0, 1, "k1"), &keys["k1"], b"x", &mut rng()).unwrap();
    let n = rec.len();
    rec[n - 1] ^= 1;
    let e = elo::open(&rec, &keys).unwrap_err();
    assert!(matches!(&e, EloError::Authentication { key_id } if key_id == "k1"), "{e:?}");
}

#[test]
fn header_swap_between_records_fails_authentication() {
    let keys = keys();
    let key = &keys["k1"];
    let a = elo::seal(&RecordHeader::delta(b"1", 0, 1, "k1"), key, b"aaaa", &mut rng()).unwrap();
    let b = elo::seal(&RecordHeader::delta(b"1", 5, 9, "k1"), key, b"bbbb", &mut rng()).unwrap();
    let (ra, rb) = (Record::parse(&a).unwrap(), Record::parse(&b).unwrap());
    // b's header with a's ciphertext.
    let mut spliced = rb.aad().to_vec();
    spliced.push(ra.ciphertext().len() as u8);
    spliced.extend_from_slice(ra.ciphertext());
    assert!(matches!(elo::open(&spliced, &keys), Err(EloError::Authentication { .. })));
}

#[test]
fn wrong_key_is_a_typed_error_naming_the_key_id() {
    let rec =
        elo::seal(&RecordHeader::delta(b"1", 0, 1, "team-2024"), &EloKey::aes256(&[1; 32]), b"x", &mut rng()).unwrap();
    let wrong = EloKey::aes256(&[2; 32]);
    let e = elo::open(&rec, &("team-2024", &wrong)).unwrap_err();
    assert_eq!(e.key_id(), Some("team-2024"));
    assert!(matches!(&e, EloError::Authentication { key_id } if key_id.as_str() == "team-2024"));
    assert!(e.to_string().contains("team-2024"), "{e}");
    // A key of the other size under the same id fails the same way.
    let e = elo::open(&rec, &("team-2024", &EloKey::aes128(&[1; 16]))).unwrap_err();
    assert!(matches!(e, EloError::Authentication { .. }));
}

#[test]
fn unknown_key_is_a_typed_error_naming_the_key_id() {
    let rec =
        elo::seal(&RecordHeader::delta(b"1", 0, 1, "ключ-🔑"), &EloKey::aes256(&[1; 32]), b"x", &mut rng()).unwrap();
    let e = elo::open(&rec, &keys()).unwrap_err();
    assert!(matches!(&e, EloError::UnknownKey { key_id } if key_id == "ключ-🔑"), "{e:?}");
    assert!(e.to_string().contains("ключ-🔑"), "{e}");
}

#[test]
fn failed_open_leaves_no_data_in_the_output() {
    let key = EloKey::aes256(&[1; 32]);
    let mut rec = elo::seal(&RecordHeader::delta(b"1", 0, 1, "k"), &key, &[0x77; 64], &mut rng()).unwrap();
    rec[30] ^= 0x80;
    let mut out = [0xeeu8; 64];
    assert!(Record::parse(&rec).unwrap().open_into(&("k", &key), &mut out).is_err());
    assert_eq!(out, [0; 64]);
}

/// An RNG that returns zeros: sealing must refuse rather than use an all-zero IV.
struct Zeros;
impl rand_core::TryRng for Zeros {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Zeros {}

/// An RNG that fails.
struct Broken;
#[derive(Debug)]
struct NoEntropy;
impl std::fmt::Display for NoEntropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no entropy")
    }
}
impl std::error::Error for NoEntropy {}
impl rand_core::TryRng for Broken {
    type Error = NoEntropy;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Err(NoEntropy)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Err(NoEntropy)
    }
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
        Err(NoEntropy)
    }
}
impl rand_core::TryCryptoRng for Broken {}

#[test]
fn seal_never_uses_a_zero_or_repeated_iv() {
    let key = EloKey::aes256(&[1; 32]);
    let h = RecordHeader::delta(b"1", 0, 1, "k");
    assert_eq!(elo::seal(&h, &key, b"x", &mut Zeros).unwrap_err(), EloError::Rng);
    let mut out = [0x11u8; 64];
    assert_eq!(elo::seal_into(&h, &key, b"x", &mut Broken, &mut out).unwrap_err(), EloError::Rng);
    assert_eq!(out, [0x11; 64]);
    let mut r = rng();
    let ivs: std::collections::BTreeSet<[u8; 12]> =
        (0..1000).map(|_| *Record::parse(&elo::seal(&h, &key, b"x", &mut r).unwrap()).unwrap().iv()).collect();
    assert_eq!(ivs.len(), 1000);
}

#[test]
fn key_sizes_are_128_or_256_bits() {
    assert_eq!(EloKey::new(&[0; 16]).unwrap().bits(), 128);
    assert_eq!(EloKey::new(&[0; 32]).unwrap().bits(), 256);
    for n in [0usize, 15, 24, 33] {
        assert_eq!(EloKey::new(&vec![0; n]).unwrap_err(), EloError::KeyLength { len: n });
    }
    assert_eq!(format!("{:?}", EloKey::aes128(&[5; 16])), "EloKey(AES-128-GCM, ..)");
}

#[test]
fn seal_into_checks_the_buffer_and_writes_exactly_sealed_len() {
    let key = EloKey::aes128(&[1; 16]);
    let h = RecordHeader::delta(b"77", 3, 300, "k");
    let n = elo::sealed_len(&h, 100).unwrap();
    let mut small = vec![0x33; n - 1];
    assert!(matches!(
        elo::seal_into(&h, &key, &[1; 100], &mut rng(), &mut small),
        Err(EloError::BufferTooSmall { required, .. }) if required == n
    ));
    assert!(small.iter().all(|&b| b == 0x33));
    let mut buf = vec![0; n + 10];
    assert_eq!(elo::seal_into(&h, &key, &[1; 100], &mut rng(), &mut buf).unwrap(), n);
    assert_eq!(elo::open(&buf[..n], &("k", &key)).unwrap(), [1; 100]);
    // Invalid headers are refused before anything is drawn or written.
    assert!(matches!(
        elo::seal(&RecordHeader::delta(b"", 0, 1, "k"), &key, b"", &mut Broken),
        Err(EloError::PeerIdLength { .. })
    ));
}
