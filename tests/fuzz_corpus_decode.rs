//! Replays the committed fuzz corpus (`fuzz/corpus/decode/`) and any saved crash inputs (`fuzz/artifacts/decode/`)
//! through the same check as the `decode` fuzz target, so `cargo test` keeps every input the fuzzer ever found
//! interesting (and every crash it found) passing.

use std::path::{Path, PathBuf};

#[path = "common/golden.rs"]
mod golden;

use bytes::Bytes;
use loro_sansio::wire::{Body, Frame, Inbound, Keepalive, Message, OwnedMessage};

/// The fuzz target's check: decoding never panics; an accepted frame re-encodes to the same bytes through every
/// encoder and the owned decoder agrees; text frames are classified, never parsed. Returns whether it was accepted.
fn check(data: &[u8], origin: &Path) -> bool {
    let borrowed = Message::decode(data);
    let shared = Bytes::copy_from_slice(data);
    let owned = OwnedMessage::decode(&shared);
    let accepted = match (&borrowed, &owned) {
        (Ok(msg), Ok(own)) => {
            assert_eq!(msg.encoded_len(), data.len(), "{}", origin.display());
            let mut buf = vec![0u8; data.len()];
            assert_eq!(msg.encode_into_slice(&mut buf), Ok(data.len()), "{}", origin.display());
            assert_eq!(&buf[..], data, "{}", origin.display());
            let mut v = Vec::new();
            assert_eq!(msg.encode_into_vec(&mut v), Ok(data.len()));
            assert_eq!(&v[..], data, "{}", origin.display());
            assert_eq!(own.as_message(), *msg, "{}", origin.display());
            assert_eq!(own.encode_to_bytes().as_deref(), Ok(data), "{}", origin.display());
            if let Body::DocUpdate { updates, .. } = msg.body {
                assert_eq!(updates.iter().count(), updates.len());
            }
            true
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{}", origin.display());
            assert!(a.offset() <= data.len(), "{}", origin.display());
            false
        }
        _ => panic!("{}: borrowed and owned decoders disagree: {borrowed:?} vs {owned:?}", origin.display()),
    };
    match Frame::Binary(shared.clone()).decode() {
        Ok(Inbound::Message(m)) => assert_eq!(Ok(m), borrowed),
        Ok(other) => panic!("{}: binary frame classified as {other:?}", origin.display()),
        Err(e) => assert_eq!(Err(e), borrowed),
    }
    match Frame::Text(shared).decode() {
        Ok(Inbound::Keepalive(Keepalive::Ping)) => assert_eq!(data, b"ping"),
        Ok(Inbound::Keepalive(Keepalive::Pong)) => assert_eq!(data, b"pong"),
        Ok(Inbound::OtherText(t)) => assert_eq!(t, data),
        other => panic!("{}: text frame classified as {other:?}", origin.display()),
    }
    accepted
}

fn files_in(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    Some(files)
}

fn fuzz_dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(rel)
}

#[test]
fn fuzz_corpus_replays_cleanly() {
    let Some(files) = files_in(&fuzz_dir("corpus/decode")) else {
        // A packaged crate excludes fuzz/corpus; in the repository it is committed and checked below.
        eprintln!("fuzz/corpus/decode not present; nothing to replay");
        return;
    };
    assert!(!files.is_empty(), "fuzz/corpus/decode is committed and must not be empty");
    let mut accepted = 0;
    let mut contents = Vec::new();
    for f in &files {
        let data = std::fs::read(f).expect("readable corpus file");
        if check(&data, f) {
            accepted += 1;
        }
        contents.push(data);
    }
    eprintln!("replayed {} corpus inputs, {accepted} accepted", files.len());
    assert!(accepted > 0, "no corpus input is a valid frame");
    // The seed corpus keeps the 13 golden frames (by content, whatever the file names).
    let golden = golden::GOLDEN_HEX;
    for h in golden {
        let bytes = golden::hex(h);
        assert!(contents.contains(&bytes), "golden frame {h} missing from the seed corpus");
    }
}

#[test]
fn fuzz_artifacts_replay_cleanly() {
    // Crash inputs the fuzzer saved; each has also become a named regression test in wire_strict.rs.
    let Some(files) = files_in(&fuzz_dir("artifacts/decode")) else {
        return;
    };
    for f in &files {
        let data = std::fs::read(f).expect("readable artifact");
        check(&data, f);
    }
    eprintln!("replayed {} fuzz artifacts", files.len());
}
