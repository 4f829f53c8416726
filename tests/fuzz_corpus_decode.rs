//! Replays the committed fuzz corpus (`fuzz/corpus/decode/`) and any saved crash inputs (`fuzz/artifacts/decode/`)
//! through the same check as the `decode` fuzz target, so `cargo test` keeps every input the fuzzer ever found
//! interesting (and every crash it found) passing.

use std::path::{Path, PathBuf};

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
    let golden = [
        "254c4f5209726f6f6d2d3132333400030a141e0328323c",
        "25594a5309726f6f6d2d31323334010472656164030b162100",
        "254c4f5209726f6f6d2d3132333401057772697465022c3703424d58",
        "2545504809726f6f6d2d31323334020213496e76616c69642063726564656e7469616c73",
        "254c4f5209726f6f6d2d3132333402011056657273696f6e206d69736d61746368026364",
        "25594a5309726f6f6d2d31323334027f1a4170706c69636174696f6e207370656369666963206572726f720e71756f74615f6578636565646564",
        "25594a5309726f6f6d2d31323334030303010203040405060701080102030405060708",
        "254c4f5209726f6f6d2d3132333404ff112233445566770a80c03e",
        "254c4f5209726f6f6d2d313233340500000000000000000320000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "254c4f5209726f6f6d2d3132333406020765766963746564",
        "254c4f5209726f6f6d2d3132333408010203040506070800",
        "2559415709726f6f6d2d3132333408010000000000000007",
        "254c4f5209726f6f6d2d3132333407",
    ];
    for h in golden {
        let bytes: Vec<u8> = (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect();
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
