//! %ELO: the Loro Protocol's end-to-end-encrypted document type (`protocol-e2ee.md`).
//!
//! A %ELO room carries the same messages as any other room; only the DocUpdate payload (and the reassembled
//! payload of a fragment batch) is special: a [`Container`] of encrypted records. Each record has a small
//! plaintext header (peer and counter span for a DeltaSpan, a version vector for a Snapshot, the key id and a
//! 12-byte IV) that the server indexes, and an AES-GCM ciphertext only clients with the key can open.
//!
//! * [`record`](Record::parse), [`Container`]: strict, zero-copy codec with exact-length encoding.
//! * [`seal`], [`seal_into`], [`Record::open`]: AES-GCM with 128- or 256-bit [`EloKey`]s found through a
//!   [`KeyResolver`]; IVs from the caller's `rand_core` RNG; the AAD is the exact header bytes.
//! * [`VersionVector`]: Loro's `VersionVector.encode()` format, used by JoinRequest.version and
//!   JoinResponseOk.version in %ELO rooms.
//! * [`EloIndex`]: the server's keyless index: validation, span override, snapshot retention, backfill queries,
//!   its version vector, and persistence.
//!
//! The bounds ([`IV_LEN`], [`MAX_PEER_ID_LEN`], [`MAX_KEY_ID_LEN`], [`MAX_SNAPSHOT_VV_LEN`], `end > start`,
//! snapshot peers strictly ascending, ciphertext ≥ [`TAG_LEN`], no trailing bytes) apply alike to what is parsed and
//! what is sealed: anything [`seal`] writes, [`Record::parse`] accepts.
//!
//! ```
//! use chacha20::ChaCha20Rng;
//! use loro_sansio::elo::{self, Container, EloIndex, EloKey, PeerIdBuf, RecordHeader, VersionVector};
//! use rand_core::SeedableRng;
//!
//! let mut rng = ChaCha20Rng::from_seed([7; 32]); // use an OS-seeded CSPRNG in real code
//! let key = EloKey::aes256(&[1; 32]);
//! let peer = PeerIdBuf::new(42); // Loro peer 42 → b"42"
//!
//! // Client: seal a Loro update covering counters [0, 3) of peer 42 and wrap it in a container.
//! let record = elo::seal(&RecordHeader::delta(peer.as_bytes(), 0, 3, "k1"), &key, b"loro update", &mut rng)?;
//! let container = bytes::Bytes::from(elo::encode_container(&[&record])?);
//!
//! // Server: index it without the key, then answer a joining client that has nothing yet.
//! let mut index = EloIndex::new();
//! index.insert(&container)?;
//! assert_eq!(index.version().get(42), 3);
//! let backfill = index.backfill(&VersionVector::new(), 256 * 1024);
//!
//! // Other client: open what the server sent.
//! for rec in Container::decode(&backfill[0])?.records() {
//!     assert_eq!(rec.open(&("k1", &key))?, b"loro update");
//! }
//! # Ok::<(), elo::EloError>(())
//! ```

mod crypto;
mod error;
mod index;
mod record;
mod vv;

pub use crypto::{open, seal, seal_into, seal_to_bytes, sealed_len, EloKey, KeyResolver};
pub use error::{EloError, EloField, KeyIdBuf};
pub use index::{EloIndex, InsertSummary};
pub use record::{
    container_len, encode_container, encode_container_into, pack_containers, Container, RawRecords, Record,
    RecordHeader, RecordKind, RecordVersion, Records, SnapshotEntry, SnapshotVv, SnapshotVvIter, Span,
};
pub use vv::{parse_peer_id, PeerIdBuf, VersionVector, MAX_VV_COUNTER};

/// IV length: exactly 12 bytes (96 bits).
pub const IV_LEN: usize = 12;
/// AES-GCM tag length appended to every ciphertext: 16 bytes.
pub const TAG_LEN: usize = 16;
/// Largest peer id, in bytes (peer ids are 1..=64 bytes; empty ones are rejected).
pub const MAX_PEER_ID_LEN: usize = 64;
/// Largest key id, in UTF-8 bytes (an empty key id is allowed).
pub const MAX_KEY_ID_LEN: usize = 64;
/// Largest number of entries in a snapshot's version vector. The spec recommends ≤ 1024; long-lived Loro
/// documents gain a peer per session, so this crate allows 4096 and still bounds the work one snapshot costs.
pub const MAX_SNAPSHOT_VV_LEN: usize = 4096;
/// Records one key may seal with random 96-bit IVs (NIST SP 800-38D §8.3: at most 2^32 invocations). Rotate to a
/// new key id before reaching it.
pub const MAX_RECORDS_PER_KEY: u64 = 1 << 32;
