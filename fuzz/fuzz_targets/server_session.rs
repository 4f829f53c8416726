//! Fuzz target `server_session`: arbitrary operations against the server state machine, read from the input by
//! the driver in `tests/server_support/driver.rs` (shared with `tests/fuzz_corpus_server.rs`, which replays the
//! committed corpus, and with a proptest over random inputs).
//!
//! Several connections send raw frames and structured messages (joins, updates, fragment batches in any order,
//! acks, client-only and server-only messages), time advances, and the application answers tickets in any order
//! and drives rooms without a socket, all against small limits. The driver panics on any broken invariant:
//! budgets, queued bytes, membership consistency, undecodable or oversized output, output after a close, a stale
//! ticket accepted, a deadline left due after `handle_timeout`, or a shutdown that never completes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/server_support/driver.rs"]
#[allow(dead_code)]
mod driver;

fuzz_target!(|data: &[u8]| {
    driver::Driver::run(data);
});
