//! [`EloError`]: every way a %ELO container, record, version vector, index snapshot or crypto operation can fail.

use core::fmt;

use crate::wire::reader::{RawError, RawKind};

/// A field of the %ELO formats, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EloField {
    /// The record count that opens a container.
    ContainerCount,
    /// One length-prefixed record of a container.
    Record,
    /// The kind byte that opens a record.
    RecordKind,
    /// A DeltaSpan peer id.
    PeerId,
    /// A DeltaSpan start counter.
    Start,
    /// A DeltaSpan end counter.
    End,
    /// A snapshot's version-vector entry count.
    SnapshotVvCount,
    /// A peer id inside a snapshot's version vector.
    SnapshotPeerId,
    /// A counter inside a snapshot's version vector.
    SnapshotCounter,
    /// The key id.
    KeyId,
    /// The IV.
    Iv,
    /// The ciphertext (ciphertext ‖ 16-byte tag).
    Ciphertext,
    /// The entry count of a Loro version vector.
    VersionCount,
    /// A peer id of a Loro version vector.
    VersionPeer,
    /// A counter of a Loro version vector.
    VersionCounter,
    /// The magic and format version of an exported [`EloIndex`](super::EloIndex).
    ExportHeader,
    /// The base-snapshot slot of an exported index.
    ExportSnapshot,
    /// The delta count of an exported index.
    ExportCount,
    /// One delta record of an exported index.
    ExportRecord,
}

impl fmt::Display for EloField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EloField::ContainerCount => "container record count",
            EloField::Record => "record",
            EloField::RecordKind => "record kind",
            EloField::PeerId => "peer id",
            EloField::Start => "span start",
            EloField::End => "span end",
            EloField::SnapshotVvCount => "snapshot version-vector count",
            EloField::SnapshotPeerId => "snapshot peer id",
            EloField::SnapshotCounter => "snapshot counter",
            EloField::KeyId => "key id",
            EloField::Iv => "IV",
            EloField::Ciphertext => "ciphertext",
            EloField::VersionCount => "version-vector count",
            EloField::VersionPeer => "version-vector peer",
            EloField::VersionCounter => "version-vector counter",
            EloField::ExportHeader => "index export header",
            EloField::ExportSnapshot => "index export snapshot",
            EloField::ExportCount => "index export record count",
            EloField::ExportRecord => "index export record",
        })
    }
}

/// A key id carried inside an error: at most [`MAX_KEY_ID_LEN`](super::MAX_KEY_ID_LEN) bytes of UTF-8, stored
/// inline so that errors never allocate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyIdBuf {
    len: u8,
    bytes: [u8; super::MAX_KEY_ID_LEN],
}

impl KeyIdBuf {
    /// Copies `key_id`, cut at the last character boundary within [`MAX_KEY_ID_LEN`](super::MAX_KEY_ID_LEN)
    /// bytes (every key id a valid record carries fits whole).
    pub fn new(key_id: &str) -> Self {
        let mut n = key_id.len().min(super::MAX_KEY_ID_LEN);
        while !key_id.is_char_boundary(n) {
            n -= 1;
        }
        let mut bytes = [0u8; super::MAX_KEY_ID_LEN];
        bytes[..n].copy_from_slice(&key_id.as_bytes()[..n]);
        KeyIdBuf { len: n as u8, bytes }
    }

    /// The key id.
    pub fn as_str(&self) -> &str {
        // Built from a `&str` cut at a character boundary; the fallback is unreachable.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for KeyIdBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for KeyIdBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for KeyIdBuf {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for KeyIdBuf {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why a %ELO operation failed.
///
/// Decode errors carry the byte offset where the problem starts, counted from the start of the buffer handed to
/// the decoder (for a record inside a container: from the start of the container). Validation errors raised while
/// *building* a record carry the offset the field would have had in the record. A server maps every decode or
/// validation error of a received container to `Ack` status `invalid_update`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EloError {
    /// The input ended inside a field.
    #[error("input ends at byte {offset} inside the {field} ({needed} more bytes needed)")]
    Truncated {
        /// Offset where the missing bytes start.
        offset: usize,
        /// The field being read.
        field: EloField,
        /// How many more bytes were needed.
        needed: usize,
    },
    /// A varint exceeds the width of its field (32 bits, or 64 for a version-vector peer).
    #[error("varint for the {field} at byte {offset} is too large")]
    VarintOverflow {
        /// Offset of the varint's first byte.
        offset: usize,
        /// The field.
        field: EloField,
    },
    /// A varint is not in its shortest form.
    #[error("varint for the {field} at byte {offset} is not minimally encoded")]
    VarintNotCanonical {
        /// Offset of the varint's first byte.
        offset: usize,
        /// The field.
        field: EloField,
    },
    /// A length prefix claims more bytes than remain.
    #[error("{field} at byte {offset} claims {len} bytes but only {remaining} remain")]
    LengthOutOfBounds {
        /// Offset of the length prefix.
        offset: usize,
        /// The field.
        field: EloField,
        /// The claimed length.
        len: u64,
        /// Bytes left after the prefix.
        remaining: usize,
    },
    /// A count claims more elements than the remaining bytes could hold.
    #[error("{field} at byte {offset} claims {count} elements but only {remaining} bytes remain")]
    CountOutOfBounds {
        /// Offset of the count.
        offset: usize,
        /// The field.
        field: EloField,
        /// The claimed count.
        count: u32,
        /// Bytes left after the count.
        remaining: usize,
    },
    /// A string is not valid UTF-8.
    #[error("{field} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the string's first byte.
        offset: usize,
        /// The field.
        field: EloField,
    },
    /// Bytes follow the last field.
    #[error("{count} trailing bytes at byte {offset}")]
    TrailingBytes {
        /// Offset of the first trailing byte.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// A container holds no record (the spec requires one or more).
    #[error("container at byte {offset} holds no record")]
    EmptyContainer {
        /// Offset of the count.
        offset: usize,
    },
    /// The record kind is neither DeltaSpan (0) nor Snapshot (1).
    #[error("unknown record kind 0x{kind:02x} at byte {offset}")]
    UnknownKind {
        /// Offset of the kind byte.
        offset: usize,
        /// The byte found.
        kind: u8,
    },
    /// A peer id is empty or longer than [`MAX_PEER_ID_LEN`](super::MAX_PEER_ID_LEN) bytes.
    #[error("{field} at byte {offset} is {len} bytes; it must be 1..={max}")]
    PeerIdLength {
        /// Offset of the length prefix.
        offset: usize,
        /// `PeerId` or `SnapshotPeerId`.
        field: EloField,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The key id is longer than [`MAX_KEY_ID_LEN`](super::MAX_KEY_ID_LEN) bytes.
    #[error("key id at byte {offset} is {len} bytes, over the {max}-byte limit")]
    KeyIdTooLong {
        /// Offset of the length prefix.
        offset: usize,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The IV is not exactly [`IV_LEN`](super::IV_LEN) bytes.
    #[error("IV at byte {offset} is {len} bytes; it must be exactly 12")]
    IvLength {
        /// Offset of the length prefix.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// A DeltaSpan with `end <= start`.
    #[error("span at byte {offset} is empty or reversed: [{start}, {end})")]
    EmptySpan {
        /// Offset of the start counter.
        offset: usize,
        /// Start (inclusive).
        start: u32,
        /// End (exclusive).
        end: u32,
    },
    /// A snapshot version vector has more entries than [`MAX_SNAPSHOT_VV_LEN`](super::MAX_SNAPSHOT_VV_LEN).
    #[error("snapshot version vector at byte {offset} has {count} entries, over the {max}-entry limit")]
    SnapshotVvTooLarge {
        /// Offset of the count.
        offset: usize,
        /// The count.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Snapshot version-vector peers are not in strictly ascending byte order (out of order or repeated).
    #[error("snapshot peer id at byte {offset} is not strictly greater than the one before it")]
    SnapshotVvNotSorted {
        /// Offset of the offending entry.
        offset: usize,
    },
    /// The ciphertext is shorter than the 16-byte tag.
    #[error("ciphertext at byte {offset} is {len} bytes, shorter than the 16-byte tag")]
    CiphertextTooShort {
        /// Offset of the length prefix.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// A version-vector counter is negative (zigzag-odd); Loro counters never are.
    #[error("version-vector counter at byte {offset} is negative")]
    NegativeCounter {
        /// Offset of the counter.
        offset: usize,
    },
    /// A version vector names the same peer twice.
    #[error("version vector names peer {peer} twice (second time at byte {offset})")]
    DuplicatePeer {
        /// Offset of the repeated entry.
        offset: usize,
        /// The peer.
        peer: u64,
    },
    /// A counter exceeds what its consumer accepts (`i32::MAX` for Loro version vectors and the index).
    #[error("{field} {value} at byte {offset} exceeds {max}")]
    CounterTooLarge {
        /// Offset of the counter (0 when building a version vector in memory).
        offset: usize,
        /// The field.
        field: EloField,
        /// The value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// An exported index does not start with the `ELOI` magic and a supported format version.
    #[error("not a supported EloIndex export (bad magic or format version at byte {offset})")]
    BadExportHeader {
        /// Offset of the mismatch.
        offset: usize,
    },
    /// An exported index is well-formed but not in canonical form: a record of the wrong kind in a slot, or
    /// delta records not in strictly ascending (peer, start, end) order.
    #[error("index export is not canonical at byte {offset}")]
    ExportNotCanonical {
        /// Offset of the offending record.
        offset: usize,
    },
    /// A field is too long to encode (lengths are 32-bit varints on the wire).
    #[error("{field} of {len} bytes is too long to encode")]
    TooLong {
        /// The field.
        field: EloField,
        /// Its length.
        len: usize,
    },
    /// The output buffer is too small; nothing was written.
    #[error("output buffer of {available} bytes is smaller than the {required} bytes needed")]
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
        /// Bytes available.
        available: usize,
    },
    /// An AES-GCM key is neither 16 nor 32 bytes.
    #[error("AES-GCM key of {len} bytes; it must be 16 (AES-128) or 32 (AES-256)")]
    KeyLength {
        /// The length given.
        len: usize,
    },
    /// The key resolver has no key for this key id. Fetch the key and retry.
    #[error("no key for key id {key_id:?}")]
    UnknownKey {
        /// The record's key id.
        key_id: KeyIdBuf,
    },
    /// AES-GCM authentication failed: the key for this key id is not the one the record was sealed with, or the
    /// record (header or ciphertext) was altered.
    #[error("record under key id {key_id:?} failed authentication (wrong key or altered record)")]
    Authentication {
        /// The record's key id.
        key_id: KeyIdBuf,
    },
    /// The random number generator failed, or returned an all-zero IV (a broken generator); nothing was sealed.
    #[error("the random number generator failed to produce an IV")]
    Rng,
}

impl EloError {
    /// The byte offset the error refers to, when it has one.
    pub fn offset(&self) -> Option<usize> {
        // Errors are small and this is a cold path: reuse the one list of offset-carrying variants.
        self.clone().offset_slot().map(|o| *o)
    }

    /// The key id named by a key or authentication error.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            EloError::UnknownKey { key_id } | EloError::Authentication { key_id } => Some(key_id.as_str()),
            _ => None,
        }
    }

    /// The same error with its offset moved `by` bytes further (a record parsed inside a container).
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        if let Some(offset) = self.offset_slot() {
            *offset = offset.saturating_add(by);
        }
        self
    }

    /// The offset field of the variants that carry one (the single list of them).
    fn offset_slot(&mut self) -> Option<&mut usize> {
        match self {
            EloError::Truncated { offset, .. }
            | EloError::VarintOverflow { offset, .. }
            | EloError::VarintNotCanonical { offset, .. }
            | EloError::LengthOutOfBounds { offset, .. }
            | EloError::CountOutOfBounds { offset, .. }
            | EloError::InvalidUtf8 { offset, .. }
            | EloError::TrailingBytes { offset, .. }
            | EloError::EmptyContainer { offset }
            | EloError::UnknownKind { offset, .. }
            | EloError::PeerIdLength { offset, .. }
            | EloError::KeyIdTooLong { offset, .. }
            | EloError::IvLength { offset, .. }
            | EloError::EmptySpan { offset, .. }
            | EloError::SnapshotVvTooLarge { offset, .. }
            | EloError::SnapshotVvNotSorted { offset }
            | EloError::CiphertextTooShort { offset, .. }
            | EloError::NegativeCounter { offset }
            | EloError::DuplicatePeer { offset, .. }
            | EloError::CounterTooLarge { offset, .. }
            | EloError::BadExportHeader { offset }
            | EloError::ExportNotCanonical { offset } => Some(offset),
            EloError::TooLong { .. }
            | EloError::BufferTooSmall { .. }
            | EloError::KeyLength { .. }
            | EloError::UnknownKey { .. }
            | EloError::Authentication { .. }
            | EloError::Rng => None,
        }
    }
}

impl From<RawError<EloField>> for EloError {
    fn from(e: RawError<EloField>) -> Self {
        let RawError { offset, field, kind } = e;
        match kind {
            RawKind::Truncated { needed } => EloError::Truncated { offset, field, needed },
            RawKind::Overflow => EloError::VarintOverflow { offset, field },
            RawKind::NotCanonical => EloError::VarintNotCanonical { offset, field },
            RawKind::LengthOutOfBounds { len, remaining } => {
                EloError::LengthOutOfBounds { offset, field, len, remaining }
            }
            RawKind::InvalidUtf8 => EloError::InvalidUtf8 { offset, field },
        }
    }
}
