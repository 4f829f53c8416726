//! Fuzz target `elo`: arbitrary bytes through every %ELO parser and into the server index.
//!
//! Whatever the input, parsing must return (never panic, never abort on allocation). The same bytes are read as a
//! container (then indexed whole, and record by record into a second index), a single record, a Loro version
//! vector and an exported index. Invariants: a container that decodes indexes unless a counter breaks the index's
//! i32 rule, and a failed insert changes nothing; export → import → export is the identity; version vectors
//! re-encode to themselves; a client at the index's own version lacks only records naming opaque peers.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use loro_sansio::elo::{
    encode_container, parse_peer_id, Container, EloError, EloIndex, Record, RecordVersion, VersionVector,
};

fn check_index(index: &EloIndex) {
    let exported = index.export();
    assert_eq!(exported.len(), index.export_len());
    let back = EloIndex::import(&Bytes::from(exported.clone())).expect("own export imports");
    assert_eq!(back.export(), exported);
    assert_eq!(back.len(), index.len());
    let version = index.version();
    assert_eq!(VersionVector::decode(&version.encode()).as_ref(), Ok(&version));
    for rec in index.missing(&version) {
        let rec = Record::parse(rec).expect("held records are valid");
        let opaque = match rec.version() {
            RecordVersion::DeltaSpan(s) => parse_peer_id(s.peer).is_none(),
            RecordVersion::Snapshot(vv) => vv.iter().any(|e| e.counter > 0 && parse_peer_id(e.peer).is_none()),
        };
        assert!(opaque, "a client at the index version lacks a numeric record");
    }
    for c in index.backfill(&VersionVector::new(), 4096) {
        Container::decode(&c).expect("backfill containers are valid");
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = Record::parse(data);
    if let Ok(vv) = VersionVector::decode(data) {
        assert_eq!(VersionVector::decode(&vv.encode()).as_ref(), Ok(&vv));
    }
    if let Ok(index) = EloIndex::import_slice(data) {
        check_index(&index);
    }

    let decoded = Container::decode(data);
    let mut whole = EloIndex::new();
    match whole.insert_slice(data) {
        Ok(summary) => {
            assert!(decoded.is_ok());
            assert!(summary.spans_added + summary.snapshots_retained + summary.snapshots_ignored > 0);
            check_index(&whole);
        }
        Err(e) => {
            assert!(whole.is_empty());
            assert!(decoded.is_err() || matches!(e, EloError::CounterTooLarge { .. }), "{e:?}");
        }
    }
    if let Ok(c) = decoded {
        assert_eq!(c.records().count(), c.len());
        // Record by record, in reverse: another order through the override and pruning rules.
        let mut split = EloIndex::new();
        let records: Vec<&[u8]> = c.raw_records().collect();
        assert_eq!(encode_container(&records).as_deref(), Ok(data));
        for rec in records.iter().rev() {
            let one = encode_container(&[rec]).expect("one record");
            let _ = split.insert(&Bytes::from(one));
        }
        check_index(&split);
    }
});
