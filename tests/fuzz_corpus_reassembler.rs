//! Replays the `reassembler` fuzz corpus (`fuzz/corpus/reassembler/*`) through the fuzz target's own harness,
//! so that every input the campaign kept is checked on each `cargo test`, plus hand-written inputs for the
//! scenarios the harness must reach.

#[path = "common/reassembler_harness.rs"]
mod harness;

use std::path::Path;

use harness::{run, Summary};

/// An input builder speaking the harness's format (see `tests/common/reassembler_harness.rs`).
struct Input(Vec<u8>);

impl Input {
    fn new(flags: u8) -> Self {
        Input(vec![flags])
    }

    /// A well-formed header on connection 0: `total` bytes (under 64) in fragments of `stride` bytes.
    fn good_header(mut self, key: u8, total: u8, stride: u8) -> Self {
        assert!(total < 64);
        self.0.extend([1, key, total, stride, 0]);
        self
    }

    /// A well-formed fragment `index` on connection 0.
    fn good_fragment(mut self, key: u8, index: u8) -> Self {
        self.0.extend([2, key, index]);
        self
    }

    /// An arbitrary fragment: `len` bytes of `fill` at a small `index`.
    fn raw_fragment(mut self, key: u8, index: u8, len: u16, fill: u8) -> Self {
        assert!(index < 64);
        self.0.extend([4, key, index]);
        self.0.extend(len.to_le_bytes());
        self.0.push(fill);
        self
    }

    /// A header with arbitrary small claims.
    fn raw_header(mut self, key: u8, count: u8, total: u8) -> Self {
        assert!(count < 64 && total < 64);
        self.0.extend([0, key, count, total]);
        self
    }

    fn tick(mut self, ms: u16) -> Self {
        self.0.push(5);
        self.0.extend(ms.to_le_bytes());
        self
    }

    fn drop_room(mut self, key: u8) -> Self {
        self.0.extend([6, key]);
        self
    }

    fn clear(mut self) -> Self {
        self.0.extend([7, 0]);
        self
    }
}

fn add(total: &mut Summary, s: Summary) {
    total.ops += s.ops;
    total.completed += s.completed;
    total.verified += s.verified;
    total.expired += s.expired;
    total.refused += s.refused;
}

#[test]
fn corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/reassembler");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a readable corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "the corpus holds the seeds at least");
    let mut total = Summary::default();
    for file in &files {
        let data = std::fs::read(file).expect("a readable corpus file");
        add(&mut total, run(&data));
    }
    // The corpus reaches every kind of ending.
    assert!(total.completed > 0 && total.verified > 0, "{total:?}");
    assert!(total.expired > 0 && total.refused > 0, "{total:?}");
}

#[test]
fn empty_and_truncated_inputs() {
    assert_eq!(run(&[]), Summary::default());
    assert_eq!(run(&[0]).ops, 0);
    // Every prefix of an input runs (the cursor simply stops).
    let input = Input::new(0).good_header(0, 40, 16).good_fragment(0, 1).good_fragment(0, 0).good_fragment(0, 2).0;
    for n in 0..=input.len() {
        run(&input[..n]);
    }
    assert_eq!(run(&input).completed, 1);
}

#[test]
fn in_and_out_of_order_batches_complete_verified() {
    let s = run(&Input::new(0)
        .good_header(0, 50, 7)
        .good_header(8, 20, 20)
        .good_fragment(0, 6)
        .good_fragment(0, 3)
        .good_fragment(8, 0)
        .good_fragment(0, 3)
        .good_fragment(0, 0)
        .good_fragment(0, 1)
        .good_fragment(0, 2)
        .good_fragment(0, 4)
        .good_fragment(0, 5)
        .good_fragment(0, 7)
        .0);
    assert_eq!((s.completed, s.verified), (2, 2));
}

#[test]
fn tainted_and_conflicting_fragments() {
    let s = run(&Input::new(0)
        .good_header(0, 30, 10)
        .raw_fragment(0, 1, 10, 0xee)
        .good_fragment(0, 0)
        .good_fragment(0, 2)
        .good_header(8, 30, 10)
        .good_fragment(8, 0)
        .raw_fragment(8, 0, 10, 0xee)
        .0);
    // The first completes with foreign bytes (not verifiable); the second fails on the conflict.
    assert_eq!((s.completed, s.verified), (1, 0));
}

#[test]
fn deadlines_and_refusals() {
    let s = run(&Input::new(0)
        .good_header(0, 30, 10)
        .good_fragment(0, 0)
        .tick(999)
        .good_fragment(0, 1)
        .tick(999)
        .tick(1)
        .raw_header(8, 0, 5)
        .raw_header(16, 9, 5)
        .good_header(24, 30, 10)
        .drop_room(24)
        .good_header(0, 30, 10)
        .clear()
        .0);
    assert_eq!((s.expired, s.refused, s.completed), (1, 2, 0));
}
