//! Fuzzes the `Reassembler`: arbitrary sequences of headers, fragments, ticks of virtual time, `drop_room`,
//! `clear` and header re-sends on two connections sharing a small global budget, checked against a model after
//! every operation. The harness (input format, model and invariants) lives in
//! `tests/common/reassembler_harness.rs`, which the corpus replay test `tests/fuzz_corpus_reassembler.rs`
//! shares.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/common/reassembler_harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::run(data);
});
