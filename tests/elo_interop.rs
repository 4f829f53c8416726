//! Cross-implementation tests against the official TypeScript packages, run by node from `interop/`:
//! `loro-protocol` 0.3.0 (records and containers), `loro-adaptors` 0.6.1 (the %ELO adaptor) over real
//! `loro-crdt` 1.17.1 documents. Versions are pinned by `interop/package-lock.json`.
//!
//! Records sealed by TypeScript open here (DeltaSpan and Snapshot, AES-128 and AES-256, multi-record containers)
//! and re-seal byte for byte with the same IV; records sealed here open in TypeScript; containers made by the
//! adaptor from a Loro document open here and index correctly, and what this crate seals or relays imports into
//! a fresh adaptor's document.
//!
//! Needs `node` and `npm` on PATH; runs `npm ci --prefix interop` when `interop/node_modules` is missing. Without
//! node or npm the tests fail (they are never skipped).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use chacha20::ChaCha20Rng;
use loro_sansio::elo::{
    self, encode_container, parse_peer_id, Container, EloIndex, EloKey, Record, RecordHeader, RecordKind,
    RecordVersion, SnapshotEntry, VersionVector,
};
use rand_core::SeedableRng;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s:?}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Checks node and npm, and installs the pinned packages once when they are missing.
fn setup() {
    static READY: Mutex<bool> = Mutex::new(false);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    if *ready {
        return;
    }
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "the %ELO interop tests need `node` (20 or later) on PATH: {node:?}"
    );
    if !interop_dir().join("node_modules").join("loro-adaptors").exists() {
        let npm = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(interop_dir())
            .output()
            .unwrap_or_else(|e| panic!("the %ELO interop tests need `npm` on PATH to install interop/: {e}"));
        assert!(
            npm.status.success(),
            "`npm ci --prefix interop` failed:\n{}\n{}",
            String::from_utf8_lossy(&npm.stdout),
            String::from_utf8_lossy(&npm.stderr)
        );
    }
    *ready = true;
}

/// Runs `node interop/<script> <args>` with `stdin`, returning its stdout lines.
fn node(script: &str, args: &[&str], stdin: &str) -> Vec<String> {
    setup();
    let mut child = Command::new("node")
        .arg(interop_dir().join(script))
        .args(args)
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_string();
    let writer = std::thread::spawn(move || pipe.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "node {script} {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

/// `idhex=keyhex,...`
fn parse_keys(field: &str) -> BTreeMap<String, EloKey> {
    field
        .split(',')
        .map(|kv| {
            let (id, key) = kv.split_once('=').unwrap();
            (String::from_utf8(unhex(id)).unwrap(), EloKey::new(&unhex(key)).unwrap())
        })
        .collect()
}

fn format_keys(keys: &[(&str, &[u8])]) -> String {
    keys.iter().map(|(id, k)| format!("{}={}", hex(id.as_bytes()), hex(k))).collect::<Vec<_>>().join(",")
}

#[path = "common/fixed_iv.rs"]
mod fixed_iv;
use fixed_iv::FixedIv;

struct TsCase {
    name: String,
    keys: BTreeMap<String, EloKey>,
    container: Vec<u8>,
    plaintexts: Vec<Vec<u8>>,
}

/// The cases `ts-seal.mjs` prints (run once).
fn ts_cases() -> &'static Vec<TsCase> {
    static CASES: OnceLock<Vec<TsCase>> = OnceLock::new();
    CASES.get_or_init(|| {
        node("ts-seal.mjs", &[], "")
            .iter()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                assert_eq!(f.len(), 4, "bad line {line}");
                TsCase {
                    name: f[0].to_string(),
                    keys: parse_keys(f[1]),
                    container: unhex(f[2]),
                    plaintexts: f[3].split(',').map(|p| unhex(p.strip_prefix('x').unwrap())).collect(),
                }
            })
            .collect()
    })
}

fn ts_case(name: &str) -> &'static TsCase {
    ts_cases().iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no case {name}"))
}

#[test]
fn ts_records_open_in_ours() {
    let cases = ts_cases();
    assert!(cases.len() >= 7);
    for case in cases {
        let c = Container::decode(&case.container).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(c.len(), case.plaintexts.len(), "{}", case.name);
        for (rec, pt) in c.records().zip(&case.plaintexts) {
            assert_eq!(&rec.open(&case.keys).unwrap_or_else(|e| panic!("{}: {e}", case.name)), pt, "{}", case.name);
        }
    }
}

#[test]
fn ts_snapshot_records_and_aes128_keys_open_in_ours() {
    let snap = ts_case("snapshot-aes256");
    let rec = Container::decode(&snap.container).unwrap().records().next().unwrap();
    assert_eq!(rec.kind(), RecordKind::Snapshot);
    // TypeScript sorted the entries it was given unsorted.
    let vv: Vec<(Vec<u8>, u32)> = rec.snapshot_vv().unwrap().iter().map(|e| (e.peer.to_vec(), e.counter)).collect();
    let expected: Vec<(Vec<u8>, u32)> =
        vec![(b"1234567890123".to_vec(), 77), (b"3".to_vec(), 2), (b"300".to_vec(), 1), (vec![0xff, 0], 0)];
    assert_eq!(vv, expected);
    for name in ["delta-aes128", "snapshot-aes128-empty-vv"] {
        let case = ts_case(name);
        let rec = Container::decode(&case.container).unwrap().records().next().unwrap();
        assert_eq!(case.keys[rec.key_id()].bits(), 128);
        assert_eq!(rec.open(&case.keys).unwrap(), case.plaintexts[0]);
    }
    let multi = ts_case("multi-record");
    let kinds: Vec<RecordKind> = Container::decode(&multi.container).unwrap().records().map(|r| r.kind()).collect();
    assert_eq!(kinds.len(), 5);
    assert!(kinds.contains(&RecordKind::Snapshot) && kinds.contains(&RecordKind::DeltaSpan));
}

#[test]
fn ts_records_reseal_byte_identical_with_the_same_iv() {
    for case in ts_cases() {
        for (rec, pt) in Container::decode(&case.container).unwrap().records().zip(&case.plaintexts) {
            let key = &case.keys[rec.key_id()];
            let ours = elo::seal(&rec.header(), key, pt, &mut FixedIv(rec.iv().to_vec())).unwrap();
            assert_eq!(hex(&ours), hex(rec.as_bytes()), "{}", case.name);
        }
        let records: Vec<&[u8]> = Container::decode(&case.container).unwrap().raw_records().collect();
        assert_eq!(encode_container(&records).unwrap(), case.container, "{}", case.name);
    }
}

#[test]
fn ts_normative_record_matches_the_spec_vector() {
    let case = ts_case("normative");
    assert_eq!(
        hex(&case.container),
        "012d0004010203040103026b310c86bcad09d5e7e3d70503a57e146930a8fbe96cc5f30b67f4bc7f53262e01b62852"
    );
}

#[test]
fn our_records_open_in_ts() {
    let mut rng = ChaCha20Rng::from_seed([0x5e; 32]);
    let k256: [u8; 32] = core::array::from_fn(|i| i as u8 * 7);
    let k128: [u8; 16] = core::array::from_fn(|i| 200 - i as u8);
    let (key256, key128) = (EloKey::aes256(&k256), EloKey::aes128(&k128));
    let keys = format_keys(&[("k256", &k256), ("k128", &k128), ("", &k128), ("ключ-🔑", &k256)]);
    let big: Vec<u8> = (0..200 * 1024).map(|i| (i * 13 % 251) as u8).collect();
    let vv = [
        SnapshotEntry { peer: b"1", counter: 4 },
        SnapshotEntry { peer: b"18446744073709551615", counter: 2_000_000_000 },
        SnapshotEntry { peer: b"7", counter: 0 },
    ];
    let mut seal = |h: RecordHeader<'_>, key: &EloKey, pt: &[u8]| elo::seal(&h, key, pt, &mut rng).unwrap();
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("delta256", vec![seal(RecordHeader::delta(b"12345", 0, 9, "k256"), &key256, b"from rust")]),
        ("delta128-opaque", vec![seal(RecordHeader::delta(&[0, 1, 2, 0xff], 7, u32::MAX, "k128"), &key128, b"x")]),
        ("snapshot", vec![seal(RecordHeader::snapshot(&vv, "k256"), &key256, &big[..1000])]),
        ("snapshot-empty", vec![seal(RecordHeader::snapshot(&[], "k128"), &key128, b"")]),
        (
            "multi",
            vec![
                seal(RecordHeader::delta(b"7", 0, 3, "k256"), &key256, b"one"),
                seal(RecordHeader::delta(b"7", 3, 4, ""), &key128, b""),
                seal(RecordHeader::snapshot(&vv, "ключ-🔑"), &key256, b"snap"),
                seal(RecordHeader::delta(&[9; 64], 1, 2, "k128"), &key128, b"four"),
            ],
        ),
        ("large", vec![seal(RecordHeader::delta(b"42", 0, 1000, "k256"), &key256, &big)]),
    ];
    let mut tampered = cases[0].1[0].clone();
    let n = tampered.len();
    tampered[n - 3] ^= 0x10;
    let mut input = String::new();
    for (name, recs) in cases.iter().map(|(n, r)| (*n, r)).chain([("tampered", &vec![tampered])]) {
        input += &format!("{name} {keys} {}\n", hex(&encode_container(recs).unwrap()));
    }
    let out: BTreeMap<String, String> = node("ts-open.mjs", &[], &input)
        .into_iter()
        .map(|l| {
            let (name, rest) = l.split_once(' ').unwrap();
            (name.to_string(), rest.to_string())
        })
        .collect();
    assert_eq!(out.len(), cases.len() + 1);
    let all_keys: BTreeMap<String, EloKey> = parse_keys(&keys);
    for (name, recs) in &cases {
        let got = &out[*name];
        let fields: Vec<&str> = got.strip_prefix("ok ").unwrap_or_else(|| panic!("{name}: {got}")).split(';').collect();
        assert_eq!(fields.len(), recs.len(), "{name}");
        for (f, rec) in fields.iter().zip(recs) {
            let r = Record::parse(rec).unwrap();
            let pt = r.open(&all_keys).unwrap();
            let expected = match r.version() {
                RecordVersion::DeltaSpan(s) => {
                    format!("d|{}|{}|{}|{}|{}", hex(s.peer), s.start, s.end, hex(r.key_id().as_bytes()), hex(&pt))
                }
                RecordVersion::Snapshot(vv) => {
                    let vv: Vec<String> = vv.iter().map(|e| format!("{}:{}", hex(e.peer), e.counter)).collect();
                    format!("s|{}|{}|{}", vv.join("/"), hex(r.key_id().as_bytes()), hex(&pt))
                }
            };
            assert_eq!(*f, expected, "{name}");
        }
    }
    assert!(out["tampered"].starts_with("err "), "TypeScript opened a tampered record: {}", out["tampered"]);
}

/// What `adaptor.mjs produce` printed (run once).
struct Produced {
    key_id: String,
    key: Vec<u8>,
    containers: BTreeMap<String, Vec<u8>>,
    text: String,
    vv: Vec<u8>,
    vv_json: String,
}

fn produced() -> &'static Produced {
    static P: OnceLock<Produced> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = Produced {
            key_id: String::new(),
            key: Vec::new(),
            containers: BTreeMap::new(),
            text: String::new(),
            vv: Vec::new(),
            vv_json: String::new(),
        };
        for line in node("adaptor.mjs", &["produce"], "") {
            let f: Vec<&str> = line.split(' ').collect();
            match f[0] {
                "key" => {
                    p.key_id = String::from_utf8(unhex(f[1])).unwrap();
                    p.key = unhex(f[2]);
                }
                "container" => {
                    p.containers.insert(f[1].to_string(), unhex(f[2]));
                }
                "text" => p.text = String::from_utf8(unhex(f[1])).unwrap(),
                "vv" => p.vv = unhex(f[1]),
                "vvjson" => p.vv_json = f.get(1).unwrap_or(&"").to_string(),
                _ => panic!("bad line {line}"),
            }
        }
        p
    })
}

fn vv_json(vv: &VersionVector) -> String {
    vv.iter().map(|(p, c)| format!("{p}={c}")).collect::<Vec<_>>().join(",")
}

/// Runs `adaptor.mjs consume` on containers and returns (text, vv json, decrypt errors, vvjson-of lines).
fn consume(keys: &[(&str, &[u8])], containers: &[Vec<u8>], decode: &[(&str, Vec<u8>)]) -> BTreeMap<String, String> {
    let mut input = String::new();
    for (id, k) in keys {
        input += &format!("key {} {}\n", hex(id.as_bytes()), hex(k));
    }
    for (i, c) in containers.iter().enumerate() {
        input += &format!("container c{i} {}\n", hex(c));
    }
    for (name, bytes) in decode {
        input += &format!("vvdecode {name} {}\n", hex(bytes));
    }
    node("adaptor.mjs", &["consume"], &input)
        .into_iter()
        .map(|l| match l.split_once(' ') {
            Some(("vvjson-of", rest)) => {
                let (name, v) = rest.split_once(' ').unwrap_or((rest, ""));
                (format!("vvjson-of {name}"), v.to_string())
            }
            Some((tag, rest)) => (tag.to_string(), rest.to_string()),
            None => (l, String::new()),
        })
        .collect()
}

#[test]
fn adaptor_containers_from_a_loro_document_open_in_ours() {
    let p = produced();
    let keys = BTreeMap::from([(p.key_id.clone(), EloKey::new(&p.key).unwrap())]);
    assert_eq!(p.text, "hello world!");
    // Join: one DeltaSpan per peer of the document, in one container.
    let join = Container::decode(&p.containers["join"]).unwrap();
    assert_eq!(join.len(), 2);
    let mut peers = Vec::new();
    for rec in join.records().chain(Container::decode(&p.containers["live"]).unwrap().records()) {
        let s = rec.span().expect("adaptor deltas are DeltaSpan records");
        peers.push(parse_peer_id(s.peer).expect("adaptor peers are decimal u64"));
        assert!(!rec.open(&keys).unwrap().is_empty());
    }
    peers.sort_unstable();
    assert_eq!(peers, [1234, 1234, 98765432109876]);
    // Snapshot: a Snapshot record whose version vector is the document's.
    let snap = Container::decode(&p.containers["snapshot"]).unwrap().records().next().unwrap();
    assert_eq!(snap.kind(), RecordKind::Snapshot);
    let mut vv = VersionVector::new();
    for e in snap.snapshot_vv().unwrap() {
        vv.set(parse_peer_id(e.peer).unwrap(), e.counter).unwrap();
    }
    assert_eq!(vv_json(&vv), p.vv_json);
    assert!(!snap.open(&keys).unwrap().is_empty());
}

#[test]
fn loro_version_vector_bytes_decode_in_ours() {
    let p = produced();
    let vv = VersionVector::decode(&p.vv).unwrap();
    assert_eq!(vv_json(&vv), p.vv_json);
    assert_eq!(vv.len(), 2);
}

#[test]
fn index_of_adaptor_containers_reports_the_document_version() {
    let p = produced();
    let mut index = EloIndex::new();
    for name in ["join", "live"] {
        index.insert(&Bytes::from(p.containers[name].clone())).unwrap();
    }
    assert_eq!(index.version(), VersionVector::decode(&p.vv).unwrap());
    index.insert(&Bytes::from(p.containers["snapshot"].clone())).unwrap();
    assert_eq!(index.version(), VersionVector::decode(&p.vv).unwrap());
    // The snapshot covers everything: it becomes the base and prunes every delta.
    assert_eq!(index.len(), 1);
}

#[test]
fn our_backfill_and_version_import_into_the_ts_adaptor() {
    let p = produced();
    let mut index = EloIndex::new();
    for name in ["join", "live"] {
        index.insert(&Bytes::from(p.containers[name].clone())).unwrap();
    }
    let backfill = index.backfill(&VersionVector::new(), 256 * 1024);
    let version = index.version().encode();
    let out = consume(
        &[(&p.key_id, &p.key)],
        &backfill.iter().map(|b| b.to_vec()).collect::<Vec<_>>(),
        &[("index", version)],
    );
    assert_eq!(String::from_utf8(unhex(&out["text"])).unwrap(), p.text);
    assert_eq!(out["vvjson"], p.vv_json);
    assert_eq!(out["decrypt-errors"], "0");
    assert_eq!(out["vvjson-of index"], p.vv_json);
}

#[test]
fn records_we_seal_import_into_the_ts_adaptor() {
    let p = produced();
    let theirs = BTreeMap::from([(p.key_id.clone(), EloKey::new(&p.key).unwrap())]);
    let k128: [u8; 16] = [0x3c; 16];
    let ours = EloKey::aes128(&k128);
    let mut rng = ChaCha20Rng::from_seed([0x77; 32]);
    // Every delta re-sealed here under a 128-bit key, all in one multi-record container.
    let mut records = Vec::new();
    for name in ["join", "live"] {
        for rec in Container::decode(&p.containers[name]).unwrap().records() {
            let s = rec.span().unwrap();
            let pt = rec.open(&theirs).unwrap();
            records.push(
                elo::seal(&RecordHeader::delta(s.peer, s.start, s.end, "rust-128"), &ours, &pt, &mut rng).unwrap(),
            );
        }
    }
    let keys: [(&str, &[u8]); 1] = [("rust-128", &k128)];
    let out = consume(&keys, &[encode_container(&records).unwrap()], &[]);
    assert_eq!(String::from_utf8(unhex(&out["text"])).unwrap(), p.text);
    assert_eq!(out["vvjson"], p.vv_json);
    assert_eq!(out["decrypt-errors"], "0");
    // The snapshot re-sealed here as a Snapshot record.
    let snap = Container::decode(&p.containers["snapshot"]).unwrap().records().next().unwrap();
    let pt = snap.open(&theirs).unwrap();
    let entries: Vec<SnapshotEntry<'_>> = snap.snapshot_vv().unwrap().iter().collect();
    let rec = elo::seal(&RecordHeader::snapshot(&entries, "rust-128"), &ours, &pt, &mut rng).unwrap();
    let out = consume(&keys, &[encode_container(&[rec]).unwrap()], &[]);
    assert_eq!(String::from_utf8(unhex(&out["text"])).unwrap(), p.text);
    assert_eq!(out["decrypt-errors"], "0");
}

#[test]
fn our_version_vector_encoding_decodes_in_loro() {
    let vv = VersionVector::from_entries([(3, 2), (300, 1), (u64::MAX, i32::MAX as u32), (0, 5), (98765432109876, 7)])
        .unwrap();
    let out = consume(&[("k", &[0; 16])], &[], &[("ours", vv.encode()), ("vector", unhex("020304ac0202"))]);
    assert_eq!(out["vvjson-of ours"], vv_json(&vv));
    assert_eq!(out["vvjson-of vector"], "3=2,300=1");
}
