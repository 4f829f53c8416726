//! Fuzz target `client_session`: arbitrary operations against the client state machine, read from the input by
//! the driver in `tests/client_support/driver.rs` (shared with `tests/fuzz_corpus_client.rs`, which replays the
//! committed corpus, and with `tests/client_proptest.rs`).
//!
//! Byte 0 picks a configuration with small limits (keepalive on/off, reconnect limits, jitter, replay of
//! ephemeral rooms, close on protocol error, a constant RNG that forces batch-id collisions), bytes 1–8 seed
//! the RNG, and the rest is a sequence of application commands, transport events, time steps and server frames
//! (valid ones built with the codec, and garbage). The driver panics on any broken invariant: an invalid or
//! oversized frame sent, a close code browsers refuse, an update lost or reported twice, a join resolved twice
//! or never, a ping resolved twice or never, the outbox over budget, a deadline left due after
//! `handle_timeout`, or anything left pending after `destroy`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/client_support/driver.rs"]
#[allow(dead_code)]
mod driver;

fuzz_target!(|data: &[u8]| {
    driver::run(data);
});
