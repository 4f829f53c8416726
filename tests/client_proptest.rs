//! Property tests of `ClientSession` over random sequences of application commands, transport events, time
//! steps and server frames (valid and garbage), run through the same driver as the fuzz target
//! (`tests/client_support/driver.rs`), which checks after every step that nothing panics and that the
//! invariants hold: batch ids unique among live batches, the outbox within its budget, every update and every
//! join ending in exactly one terminal event, every ping resolved once, and advancing to `poll_timeout()`
//! always making progress. Seeded, so every run checks the same cases.

#[path = "client_support/driver.rs"]
mod driver;

use std::collections::BTreeMap;
use std::sync::Mutex;

use driver::{Op, Sim};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};

fn config(cases: u32, seed: u64) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..Config::default() }
}

/// Ops weighted so that scenarios get far: connections mostly open, joins mostly answered.
/// (`Destroy` is left to the end, where `Sim::finish` checks that it ends everything; the byte-driven test and
/// the fuzz target destroy at any point.)
fn op() -> impl Strategy<Value = Op> {
    let b = any::<u8>;
    prop_oneof![
        4 => Just(Op::Connect),
        1 => Just(Op::RetryNow),
        1 => Just(Op::Close),
        // Transport drops are frequent enough to exercise resends, rarer than the steps that rebuild a session.
        1 => any::<bool>().prop_map(Op::Online),
        5 => b().prop_map(|room| Op::Join { room }),
        6 => (b(), b()).prop_map(|(which, mode)| Op::Provide { which, mode }),
        1 => b().prop_map(|room| Op::Leave { room }),
        8 => (b(), b(), any::<u16>()).prop_map(|(room, count, size)| Op::Send { room, count, size }),
        2 => Just(Op::Ping),
        6 => Just(Op::Opened),
        2 => b().prop_map(|code| Op::Closed { code }),
        4 => (0u32..5_000).prop_map(|ms| Op::Advance { ms }),
        4 => Just(Op::ToDeadline),
        10 => (b(), any::<bool>()).prop_map(|(which, read)| Op::JoinOk { which, read: read && which % 4 == 0 }),
        2 => (b(), b()).prop_map(|(which, code)| Op::JoinErr { which, code }),
        1 => (b(), b()).prop_map(|(room, code)| Op::RoomErr { room, code }),
        2 => (b(), b()).prop_map(|(room, count)| Op::Update { room, count }),
        12 => (b(), b()).prop_map(|(which, status)| Op::Ack { which, status }),
        2 => (b(), b(), b(), any::<u16>()).prop_map(|(room, batch, count, total)| Op::FragHeader { room, batch, count, total }),
        3 => (b(), b(), b(), any::<u16>()).prop_map(|(room, batch, index, len)| Op::Fragment { room, batch, index, len }),
        1 => Just(Op::ServerPing),
        1 => Just(Op::ServerPong),
        1 => Just(Op::OtherText),
        1 => (b(), any::<bool>()).prop_map(|(room, leave)| Op::ClientOnly { room, leave }),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Garbage),
    ]
}

#[test]
fn random_operation_sequences_keep_every_invariant() {
    let mut runner = TestRunner::new(config(512, 0xC11E_5E55));
    let strategy = (any::<u8>(), any::<u64>(), proptest::collection::vec(op(), 1..250));
    let seen: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
    runner
        .run(&strategy, |(cfg, seed, ops)| {
            let mut sim = Sim::new(cfg & !64, seed);
            for op in &ops {
                sim.apply(op);
            }
            for (k, v) in sim.finish() {
                *seen.lock().unwrap().entry(k).or_default() += v;
            }
            Ok(())
        })
        .unwrap();
    // The scenarios must get deep: every outcome the invariants are about actually happens.
    let seen = seen.into_inner().unwrap();
    eprintln!("event kinds seen: {seen:?}");
    for kind in [
        "Joined",
        "JoinFailed",
        "RoomError",
        "Acked",
        "UpdateRejected",
        "UpdatesDropped",
        "BatchResent",
        "Updates",
        "IncomingBatchFailed",
        "PingResult",
        "Latency",
        "ProtocolError",
        "UnexpectedMessage",
        "TransportClosed",
    ] {
        assert!(seen.get(kind).copied().unwrap_or(0) > 0, "no {kind} event in any case: {seen:?}");
    }
}

#[test]
fn random_sequences_with_a_constant_rng_never_reuse_a_live_batch_id() {
    let mut runner = TestRunner::new(config(128, 0xBA7C_4000));
    let strategy = (any::<u8>(), proptest::collection::vec(op(), 1..250));
    runner
        .run(&strategy, |(cfg, ops)| {
            let mut sim = Sim::new(cfg | 64, 42);
            for op in &ops {
                sim.apply(op);
            }
            sim.finish();
            Ok(())
        })
        .unwrap();
}

#[test]
fn fuzz_style_byte_inputs_keep_every_invariant() {
    let mut runner = TestRunner::new(config(256, 0xF022_0001));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..600), |data| {
            let _ = driver::run(&data);
            Ok(())
        })
        .unwrap();
}
