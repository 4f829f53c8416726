//! Replays the committed corpus of the `server_session` fuzz target (`fuzz/corpus/server_session/`) through the
//! same driver the fuzz target uses, so every input the campaign kept (and every crash turned into a seed) runs in
//! `cargo test` without cargo-fuzz or a nightly toolchain.

#[path = "server_support/driver.rs"]
#[allow(dead_code)]
mod driver;

use std::path::Path;

#[test]
fn committed_server_session_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/server_session");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus is committed");
    let mut total = driver::Stats::default();
    for path in &files {
        let data = std::fs::read(path).expect("readable corpus file");
        let stats = driver::Driver::run(&data);
        total.ops += stats.ops;
        total.frames_out += stats.frames_out;
        total.acks_ok += stats.acks_ok;
        total.joins_ok += stats.joins_ok;
    }
    assert!(total.joins_ok > 0 && total.acks_ok > 0, "the corpus reaches joined rooms and accepted updates: {total:?}");
}
