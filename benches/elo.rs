//! %ELO seal and open against bare AES-GCM on the same bytes, in the same run.
//!
//! * `seal/elo/N`: [`elo::seal_into`] a record (header + AAD + IV from the RNG + encryption + tag) into a
//!   caller buffer.
//! * `seal/aes-gcm/N`: the bare `aes-gcm` work it wraps: draw a 12-byte nonce from the same kind of RNG, encrypt
//!   the same plaintext into a buffer without AAD, append the tag.
//! * `open/elo/N`: parse the record, resolve its key id, authenticate the AAD and decrypt into a caller buffer.
//! * `open/aes-gcm/N`: decrypt the same plaintext's ciphertext with its nonce and tag, no AAD.
//!
//! The ratio elo / aes-gcm is the framing + AAD overhead (target ≤ 1.05 at 16 KiB and above). Criterion measures
//! the two sides seconds apart, so on a shared machine its two figures can differ by more than the overhead itself;
//! the last target, `paired_ratios`, therefore also prints the ratio measured in alternating pairs (one elo
//! operation, then one bare operation, thousands of times), which cancels load changes. Report that ratio.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use chacha20::ChaCha20Rng;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use loro_sansio::elo::{self, EloKey, Record, RecordHeader};
use rand_core::{Rng, SeedableRng};

const SIZES: [(usize, &str); 3] = [(64, "64B"), (16 * 1024, "16KiB"), (250 * 1024, "250KiB")];
const KEY: [u8; 32] = [0x42; 32];
const KEY_ID: &str = "workspace-key-2026";

fn plaintext(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Times `iters` runs of `op` in batches and returns `iters` × the median per-operation time of the batches. The
/// median keeps a batch that the scheduler preempted (this machine is shared with other jobs) from dominating the
/// sample.
fn median_of_batches(iters: u64, batch: u64, op: &mut dyn FnMut()) -> Duration {
    let mut per_op: Vec<f64> = Vec::new();
    let mut done = 0;
    while done < iters {
        let k = batch.min(iters - done);
        let start = Instant::now();
        for _ in 0..k {
            op();
        }
        per_op.push(start.elapsed().as_secs_f64() / k as f64);
        done += k;
    }
    per_op.sort_by(f64::total_cmp);
    Duration::from_secs_f64(per_op[per_op.len() / 2] * iters as f64)
}

/// Batches of about 16 KiB of work (at least one operation), short enough to fit between preemptions.
fn batch(n: usize) -> u64 {
    (16 * 1024 / n).clamp(1, 128) as u64
}

fn seal(c: &mut Criterion) {
    let key = EloKey::aes256(&KEY);
    let bare = Aes256Gcm::new(&KEY.into());
    let peer = elo::PeerIdBuf::new(1_234_567_890_123);
    let header = RecordHeader::delta(peer.as_bytes(), 1000, 1042, KEY_ID);
    let mut g = c.benchmark_group("seal");
    for (n, label) in SIZES {
        let pt = plaintext(n);
        let mut out = vec![0u8; elo::sealed_len(&header, n).unwrap()];
        let mut ct = vec![0u8; n + 16];
        let mut rng_a = ChaCha20Rng::from_seed([1; 32]);
        let mut rng_b = ChaCha20Rng::from_seed([2; 32]);
        let mut ours = || {
            elo::seal_into(&header, &key, black_box(&pt), &mut rng_a, &mut out).unwrap();
        };
        let mut theirs = || {
            let mut nonce = [0u8; 12];
            rng_b.fill_bytes(&mut nonce);
            let (body, tag_dst) = ct.split_at_mut(n);
            let buf = InOutBuf::new(black_box(&pt), body).unwrap();
            let tag = bare.encrypt_inout_detached(&Nonce::from(nonce), b"", buf).unwrap();
            tag_dst.copy_from_slice(&tag);
        };
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::new("elo", label), |b| {
            b.iter_custom(|iters| median_of_batches(iters, batch(n), &mut ours))
        });
        g.bench_function(BenchmarkId::new("aes-gcm", label), |b| {
            b.iter_custom(|iters| median_of_batches(iters, batch(n), &mut theirs))
        });
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let key = EloKey::aes256(&KEY);
    let keys = BTreeMap::from([(KEY_ID.to_string(), key.clone())]);
    let bare = Aes256Gcm::new(&KEY.into());
    let peer = elo::PeerIdBuf::new(1_234_567_890_123);
    let header = RecordHeader::delta(peer.as_bytes(), 1000, 1042, KEY_ID);
    let mut g = c.benchmark_group("open");
    for (n, label) in SIZES {
        let pt = plaintext(n);
        let record = elo::seal(&header, &key, &pt, &mut ChaCha20Rng::from_seed([3; 32])).unwrap();
        // The same plaintext under bare AES-GCM: a nonce, the ciphertext and its tag, no AAD.
        let nonce = Nonce::from([7u8; 12]);
        let mut ct = vec![0u8; n];
        let tag: Tag = bare.encrypt_inout_detached(&nonce, b"", InOutBuf::new(&pt, &mut ct).unwrap()).unwrap();
        let mut out_a = vec![0u8; n];
        let mut out_b = vec![0u8; n];
        let mut ours = || {
            Record::parse(black_box(&record)).unwrap().open_into(&keys, &mut out_a).unwrap();
        };
        let mut theirs = || {
            let buf = InOutBuf::new(black_box(&ct), &mut out_b).unwrap();
            bare.decrypt_inout_detached(&nonce, b"", buf, black_box(&tag)).unwrap();
        };
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::new("elo", label), |b| {
            b.iter_custom(|iters| median_of_batches(iters, batch(n), &mut ours))
        });
        g.bench_function(BenchmarkId::new("aes-gcm", label), |b| {
            b.iter_custom(|iters| median_of_batches(iters, batch(n), &mut theirs))
        });
        assert_eq!(out_a, pt);
        assert_eq!(out_b, pt);
    }
    g.finish();
}

/// Paired measurement: alternates one elo operation and one bare AES-GCM operation `PAIRS` times, timing each, and
/// prints the median of the per-pair ratios (elo / aes-gcm). Pairs run microseconds apart, so a load change on the
/// shared machine hits both sides of a pair alike; the median discards preempted pairs.
fn paired_ratios(_: &mut Criterion) {
    const PAIRS: usize = 3000;
    let key = EloKey::aes256(&KEY);
    let keys = BTreeMap::from([(KEY_ID.to_string(), key.clone())]);
    let bare = Aes256Gcm::new(&KEY.into());
    let peer = elo::PeerIdBuf::new(1_234_567_890_123);
    let header = RecordHeader::delta(peer.as_bytes(), 1000, 1042, KEY_ID);
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("paired ratios (median of {PAIRS} alternating pairs, elo / aes-gcm):");
    for (n, label) in SIZES {
        let pt = plaintext(n);
        let mut rng_a = ChaCha20Rng::from_seed([4; 32]);
        let mut rng_b = ChaCha20Rng::from_seed([5; 32]);
        let mut out = vec![0u8; elo::sealed_len(&header, n).unwrap()];
        let mut ct = vec![0u8; n + 16];
        let record = elo::seal(&header, &key, &pt, &mut rng_a).unwrap();
        let nonce = Nonce::from([7u8; 12]);
        let (body, tag_dst) = ct.split_at_mut(n);
        let tag: Tag = bare.encrypt_inout_detached(&nonce, b"", InOutBuf::new(&pt, body).unwrap()).unwrap();
        tag_dst.copy_from_slice(&tag);
        let bare_ct = ct[..n].to_vec();
        let mut plain = vec![0u8; n];
        let (mut seal_r, mut open_r) = (Vec::with_capacity(PAIRS), Vec::with_capacity(PAIRS));
        let (mut seal_e, mut seal_b, mut open_e, mut open_b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..PAIRS {
            let e = time(&mut || {
                elo::seal_into(&header, &key, black_box(&pt), &mut rng_a, &mut out).unwrap();
            });
            let b = time(&mut || {
                let mut nonce = [0u8; 12];
                rng_b.fill_bytes(&mut nonce);
                let (body, tag_dst) = ct.split_at_mut(n);
                let t =
                    bare.encrypt_inout_detached(&Nonce::from(nonce), b"", InOutBuf::new(black_box(&pt), body).unwrap());
                tag_dst.copy_from_slice(&t.unwrap());
            });
            seal_r.push(e / b);
            seal_e.push(e);
            seal_b.push(b);
            let e = time(&mut || {
                Record::parse(black_box(&record)).unwrap().open_into(&keys, &mut plain).unwrap();
            });
            let b = time(&mut || {
                let buf = InOutBuf::new(black_box(&bare_ct), &mut plain).unwrap();
                bare.decrypt_inout_detached(&nonce, b"", buf, black_box(&tag)).unwrap();
            });
            open_r.push(e / b);
            open_e.push(e);
            open_b.push(b);
        }
        println!(
            "  seal {label:>6}: elo {:>9.0} ns, aes-gcm {:>9.0} ns, ratio {:.3}",
            median(seal_e) * 1e9,
            median(seal_b) * 1e9,
            median(seal_r)
        );
        println!(
            "  open {label:>6}: elo {:>9.0} ns, aes-gcm {:>9.0} ns, ratio {:.3}",
            median(open_e) * 1e9,
            median(open_b) * 1e9,
            median(open_r)
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(40)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = seal, open, paired_ratios
}
criterion_main!(benches);
