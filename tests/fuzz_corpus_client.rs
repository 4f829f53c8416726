//! Replays the `client_session` fuzz corpus (`fuzz/corpus/client_session/*`) through the fuzz target's own
//! driver (`tests/client_support/driver.rs`), so every input the campaign kept is checked on each `cargo test`,
//! plus hand-written inputs for scenarios the driver must reach.

#[path = "client_support/driver.rs"]
mod driver;

use std::path::Path;

#[test]
fn committed_corpus_replays_without_a_broken_invariant() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/client_session");
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let data = std::fs::read(&p).unwrap();
            let _ = driver::run(&data);
            n += 1;
        }
    }
    eprintln!("replayed {n} corpus inputs from {}", dir.display());
}

#[test]
fn empty_and_tiny_inputs_run() {
    let _ = driver::run(&[]);
    let _ = driver::run(&[0]);
    let _ = driver::run(&[0xff; 9]);
}

#[test]
fn a_full_session_script_runs() {
    // config 0 (keepalive on, reconnect on), seed 0, then: connect, opened, join room 0, provide, join ok,
    // send, ack ok, advance, server closes 1011, advance to the retry, opened, provide, join ok.
    let mut input = vec![0u8; 9];
    input
        .extend([0, 9, 4, 0, 5, 0, 1, 13, 0, 1, 7, 0, 3, 40, 0, 17, 0, 0, 11, 100, 0, 10, 3, 12, 9, 5, 0, 1, 13, 0, 1]);
    let seen = driver::run(&input);
    for kind in ["Joined", "Acked", "TransportClosed"] {
        assert!(seen.contains_key(kind), "{kind} not reached: {seen:?}");
    }
}
