//! Property tests for %ELO: record and container round trips, version-vector round trips, the server index
//! against a brute-force model on random histories, export/import, and hostile bytes that must never panic.

#[path = "common/leb.rs"]
mod leb;
use bytes::Bytes;
use chacha20::ChaCha20Rng;
use leb::push_leb as leb;
use loro_sansio::elo::{
    self, container_len, encode_container, Container, EloError, EloIndex, EloKey, Record, RecordHeader, RecordVersion,
    SnapshotEntry, VersionVector, MAX_KEY_ID_LEN,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rand_core::SeedableRng;

fn config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..ProptestConfig::default() }
}

fn key() -> EloKey {
    EloKey::aes256(&[0x11; 32])
}

/// What a record should carry: a span or a snapshot version vector, a key id and a plaintext.
#[derive(Clone, Debug)]
enum Spec {
    Delta { peer: Vec<u8>, start: u32, end: u32 },
    Snapshot { vv: Vec<(Vec<u8>, u32)> },
}

fn seal_spec(spec: &Spec, key_id: &str, plaintext: &[u8], rng: &mut ChaCha20Rng) -> Vec<u8> {
    let key = key();
    match spec {
        Spec::Delta { peer, start, end } => {
            elo::seal(&RecordHeader::delta(peer, *start, *end, key_id), &key, plaintext, rng).unwrap()
        }
        Spec::Snapshot { vv } => {
            let entries: Vec<SnapshotEntry<'_>> =
                vv.iter().map(|(p, c)| SnapshotEntry { peer: p, counter: *c }).collect();
            elo::seal(&RecordHeader::snapshot(&entries, key_id), &key, plaintext, rng).unwrap()
        }
    }
}

fn any_peer() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..=64)
}

fn any_key_id() -> impl Strategy<Value = String> {
    "\\PC{0,20}".prop_map(|s: String| {
        let mut s = s;
        while s.len() > MAX_KEY_ID_LEN {
            s.pop();
        }
        s
    })
}

fn any_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        (any_peer(), any::<u32>(), 1u32..=u32::MAX).prop_map(|(peer, a, b)| {
            let (start, end) = if a < b { (a, b) } else { (b - 1, b) };
            Spec::Delta { peer, start, end }
        }),
        prop::collection::btree_map(any_peer(), any::<u32>(), 0..12)
            .prop_map(|m| Spec::Snapshot { vv: m.into_iter().collect() }),
    ]
}

fn any_record() -> impl Strategy<Value = (Spec, String, Vec<u8>)> {
    (any_spec(), any_key_id(), prop::collection::vec(any::<u8>(), 0..300))
}

proptest! {
    #![proptest_config(config(256, 0x454c_4f00_0001))]

    /// Anything sealed parses back to the same header and opens to the same plaintext.
    #[test]
    fn record_round_trip((spec, key_id, pt) in any_record(), seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let rec = seal_spec(&spec, &key_id, &pt, &mut rng);
        let r = Record::parse(&rec).unwrap();
        prop_assert_eq!(r.key_id(), key_id.as_str());
        match (&spec, r.version()) {
            (Spec::Delta { peer, start, end }, RecordVersion::DeltaSpan(s)) => {
                prop_assert_eq!((s.peer, s.start, s.end), (&peer[..], *start, *end));
            }
            (Spec::Snapshot { vv }, RecordVersion::Snapshot(got)) => {
                let got: Vec<(Vec<u8>, u32)> = got.iter().map(|e| (e.peer.to_vec(), e.counter)).collect();
                prop_assert_eq!(&got, vv);
            }
            _ => prop_assert!(false, "kind changed"),
        }
        prop_assert_eq!(rec.len(), elo::sealed_len(&r.header(), pt.len()).unwrap());
        prop_assert_eq!(r.open(&(key_id.as_str(), &key())).unwrap(), pt);
    }

    /// Containers of sealed records decode to the same records, each of which opens.
    #[test]
    fn container_round_trip(recs in prop::collection::vec(any_record(), 1..6), seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sealed: Vec<Vec<u8>> = recs.iter().map(|(s, k, p)| seal_spec(s, k, p, &mut rng)).collect();
        let bytes = encode_container(&sealed).unwrap();
        prop_assert_eq!(bytes.len(), container_len(&sealed).unwrap());
        let c = Container::decode(&bytes).unwrap();
        prop_assert_eq!(c.len(), sealed.len());
        let raw: Vec<Vec<u8>> = c.raw_records().map(|r| r.to_vec()).collect();
        prop_assert_eq!(&raw, &sealed);
        for (rec, (_, key_id, pt)) in c.records().zip(&recs) {
            prop_assert_eq!(rec.open(&(key_id.as_str(), &key())).unwrap(), pt.clone());
        }
    }

    /// A version vector survives encode/decode, and Loro's arbitrary entry order decodes to the same vector.
    #[test]
    fn vv_round_trip(m in prop::collection::btree_map(any::<u64>(), 0u32..=i32::MAX as u32, 0..40), seed in any::<u64>()) {
        let vv = VersionVector::from_entries(m.iter().map(|(&p, &c)| (p, c))).unwrap();
        let bytes = vv.encode();
        prop_assert_eq!(bytes.len(), vv.encoded_len());
        prop_assert_eq!(VersionVector::decode(&bytes).unwrap(), vv.clone());
        // Same entries, shuffled, written by hand (zigzag counters).
        let mut entries: Vec<(u64, u32)> = m.into_iter().collect();
        let mut s = seed;
        for i in (1..entries.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            entries.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut shuffled = Vec::new();
        leb(&mut shuffled, entries.len() as u64);
        for (p, c) in &entries {
            leb(&mut shuffled, *p);
            leb(&mut shuffled, u64::from(*c) << 1);
        }
        prop_assert_eq!(VersionVector::decode(&shuffled).unwrap(), vv);
    }
}

// ---- the index against a brute-force model -------------------------------------------------------------------

/// Peers of the random histories: numeric ones, a non-canonical decimal and two opaque ones.
const PEERS: [&[u8]; 7] = [b"1", b"2", b"300", b"18446744073709551615", b"007", b"p", &[1, 2, 3, 4]];
/// Loro peers a random client version can name.
const NUMERIC: [u64; 5] = [1, 2, 300, u64::MAX, 7];

fn numeric(peer: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(peer).ok()?;
    let n: u64 = s.parse().ok()?;
    (n.to_string() == s).then_some(n)
}

/// A snapshot version vector: (peer, counter) ascending by peer.
type Vv = Vec<(Vec<u8>, u32)>;

#[derive(Default, Clone)]
struct Model {
    /// (peer, start, end, record)
    spans: Vec<(Vec<u8>, u32, u32, Vec<u8>)>,
    /// (version vector, record)
    base: Option<(Vv, Vec<u8>)>,
}

fn vv_get(vv: &[(Vec<u8>, u32)], peer: &[u8]) -> u32 {
    vv.iter().find(|(p, _)| p == peer).map_or(0, |e| e.1)
}

impl Model {
    fn apply(&mut self, spec: &Spec, rec: Vec<u8>) {
        match spec {
            Spec::Delta { peer, start, end } => {
                self.spans.retain(|(p, s, e, _)| !(p == peer && start <= s && e <= end));
                self.spans.push((peer.clone(), *start, *end, rec));
            }
            Spec::Snapshot { vv } => {
                let includes = self.base.as_ref().is_none_or(|(b, _)| b.iter().all(|(p, c)| vv_get(vv, p) >= *c));
                if includes {
                    self.spans.retain(|(p, _, e, _)| *e > vv_get(vv, p));
                    self.base = Some((vv.clone(), rec));
                }
            }
        }
    }

    fn known(client: &VersionVector, peer: &[u8]) -> u32 {
        numeric(peer).map_or(0, |n| client.get(n))
    }

    fn missing(&self, client: &VersionVector) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Some((vv, rec)) = &self.base {
            if vv.iter().any(|(p, c)| *c > Self::known(client, p)) {
                out.push(rec.clone());
            }
        }
        let mut spans: Vec<_> = self.spans.iter().filter(|(p, _, e, _)| *e > Self::known(client, p)).collect();
        spans.sort_by(|a, b| (&a.0, a.2, a.1).cmp(&(&b.0, b.2, b.1)));
        out.extend(spans.into_iter().map(|s| s.3.clone()));
        out
    }

    fn version(&self) -> VersionVector {
        let mut vv = VersionVector::new();
        for (p, _, e, _) in &self.spans {
            if let Some(n) = numeric(p) {
                vv.raise(n, *e).unwrap();
            }
        }
        if let Some((b, _)) = &self.base {
            for (p, c) in b {
                if let Some(n) = numeric(p) {
                    vv.raise(n, *c).unwrap();
                }
            }
        }
        vv
    }

    fn len(&self) -> usize {
        self.spans.len() + usize::from(self.base.is_some())
    }
}

fn history_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        4 => (0..PEERS.len(), 0u32..24, 1u32..8)
            .prop_map(|(i, start, len)| Spec::Delta { peer: PEERS[i].to_vec(), start, end: start + len }),
        1 => prop::collection::btree_map(0..PEERS.len(), 0u32..32, 0..5).prop_map(|m| Spec::Snapshot {
            vv: {
                let mut v: Vec<(Vec<u8>, u32)> = m.into_iter().map(|(i, c)| (PEERS[i].to_vec(), c)).collect();
                v.sort();
                v
            }
        }),
    ]
}

/// One step: a container of 1..4 records; `corrupt` breaks the last record so that the whole insert must fail.
fn step() -> impl Strategy<Value = (Vec<Spec>, bool)> {
    (prop::collection::vec(history_spec(), 1..4), prop::bool::weighted(0.15))
}

fn client_vv() -> impl Strategy<Value = VersionVector> {
    prop::collection::btree_map(0..NUMERIC.len(), 0u32..34, 0..NUMERIC.len())
        .prop_map(|m| VersionVector::from_entries(m.into_iter().map(|(i, c)| (NUMERIC[i], c))).unwrap())
}

proptest! {
    #![proptest_config(config(200, 0x454c_4f00_0002))]

    /// After every step of a random history, the index answers exactly as the brute-force model: backfill for
    /// random client versions, its version vector, and what it holds. A corrupted container changes nothing.
    #[test]
    fn index_matches_brute_force_model(
        steps in prop::collection::vec(step(), 1..25),
        clients in prop::collection::vec(client_vv(), 4),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut index = EloIndex::new();
        let mut model = Model::default();
        for (specs, corrupt) in &steps {
            let mut recs: Vec<Vec<u8>> = specs.iter().map(|s| seal_spec(s, "k", b"p", &mut rng)).collect();
            if *corrupt {
                // Cut the ciphertext below the tag.
                let last = recs.last_mut().unwrap();
                let n = last.len();
                last[n - 17] = 15;
                last.truncate(n - 1);
            }
            let container = Bytes::from(encode_container(&recs).unwrap());
            let before = index.export();
            match index.insert(&container) {
                Ok(_) => {
                    prop_assert!(!corrupt);
                    for (s, r) in specs.iter().zip(recs) {
                        model.apply(s, r);
                    }
                }
                Err(_) => {
                    prop_assert!(*corrupt);
                    prop_assert_eq!(index.export(), before);
                }
            }
            prop_assert_eq!(index.len(), model.len());
            prop_assert_eq!(index.version(), model.version());
            for client in clients.iter().chain([&VersionVector::new(), &model.version()]) {
                let got: Vec<Vec<u8>> = index.missing(client).map(|b| b.to_vec()).collect();
                prop_assert_eq!(got, model.missing(client));
            }
        }
        // A client at the index's own version lacks only records naming opaque peers.
        let only_opaque = index.missing(&index.version()).all(|r| {
            let rec = Record::parse(r).unwrap();
            match rec.version() {
                RecordVersion::DeltaSpan(s) => numeric(s.peer).is_none(),
                RecordVersion::Snapshot(vv) => vv.iter().any(|e| e.counter > 0 && numeric(e.peer).is_none()),
            }
        });
        prop_assert!(only_opaque);
    }

    /// Export → import restores an index that exports the same bytes and answers the same queries.
    #[test]
    fn index_export_import_round_trip(
        steps in prop::collection::vec(prop::collection::vec(history_spec(), 1..4), 0..15),
        clients in prop::collection::vec(client_vv(), 3),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut index = EloIndex::new();
        for specs in &steps {
            let recs: Vec<Vec<u8>> = specs.iter().map(|s| seal_spec(s, "k", b"p", &mut rng)).collect();
            index.insert(&Bytes::from(encode_container(&recs).unwrap())).unwrap();
        }
        let exported = index.export();
        prop_assert_eq!(exported.len(), index.export_len());
        let back = EloIndex::import(&Bytes::from(exported.clone())).unwrap();
        prop_assert_eq!(back.export(), exported);
        prop_assert_eq!(back.len(), index.len());
        prop_assert_eq!(back.held_bytes(), index.held_bytes());
        prop_assert_eq!(back.version(), index.version());
        for client in &clients {
            let a: Vec<&Bytes> = index.missing(client).collect();
            let b: Vec<&Bytes> = back.missing(client).collect();
            prop_assert_eq!(a, b);
        }
        let mut compacted = index.clone();
        compacted.compact();
        prop_assert_eq!(compacted.export(), index.export());
    }
}

// ---- hostile input ---------------------------------------------------------------------------------------------

/// Every parser on the same bytes; none may panic, and an accepted container must index all-or-nothing.
fn feed(bytes: &[u8]) {
    let _ = Record::parse(bytes);
    let _ = VersionVector::decode(bytes);
    let _ = EloIndex::import_slice(bytes);
    let mut exported = b"ELOI\x01".to_vec();
    exported.extend_from_slice(bytes);
    let _ = EloIndex::import_slice(&exported);
    if let Ok(c) = Container::decode(bytes) {
        for r in c.records() {
            let _ = r.open(&("k", &key()));
        }
    }
    let mut index = EloIndex::new();
    match index.insert_slice(bytes) {
        Ok(_) => {
            let back = EloIndex::import_slice(&index.export()).unwrap();
            assert_eq!(back.export(), index.export());
            let _ = index.backfill(&VersionVector::new(), 1024);
            let _ = index.version().encode();
        }
        Err(e) => {
            assert!(index.is_empty());
            let _: &EloError = &e;
            let _ = e.to_string();
        }
    }
}

proptest! {
    #![proptest_config(config(2000, 0x454c_4f00_0003))]

    /// Random bytes never panic any parser.
    #[test]
    fn hostile_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        feed(&bytes);
    }

    /// Mutations of valid containers (byte overwrites, truncations, insertions) never panic any parser.
    #[test]
    fn mutated_containers_never_panic(
        recs in prop::collection::vec(any_record(), 1..4),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sealed: Vec<Vec<u8>> = recs.iter().map(|(s, k, p)| seal_spec(s, k, p, &mut rng)).collect();
        let mut bytes = encode_container(&sealed).unwrap();
        for (at, byte, op) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                _ => bytes.insert(i, byte),
            }
        }
        feed(&bytes);
    }
}
