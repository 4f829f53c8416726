//! The %ELO container and its two record kinds: strict, zero-copy parsing and exact-length encoding.
//!
//! ```text
//! container := varUint N (N ≥ 1), N × varBytes record          (no trailing bytes)
//! record    := u8 kind, header fields, varBytes iv (12 bytes), varBytes ct (ciphertext ‖ 16-byte tag)
//!   kind 0x00 DeltaSpan: varBytes peer (1..=64), varUint start, varUint end (end > start), varString keyId (≤ 64)
//!   kind 0x01 Snapshot : varUint n (≤ 4096), n × (varBytes peer (1..=64), varUint counter) with peers strictly
//!                        ascending by bytes, varString keyId (≤ 64)
//! ```
//!
//! The header of a record (everything before the ciphertext's length prefix) is the AES-GCM additional
//! authenticated data.

use alloc::vec::Vec;
use core::fmt;

use bytes::{BufMut, Bytes};

use super::error::{EloError, EloField};
use super::{IV_LEN, MAX_KEY_ID_LEN, MAX_PEER_ID_LEN, MAX_SNAPSHOT_VV_LEN, TAG_LEN};
use crate::wire::reader::{put_var_bytes, put_varint, var_bytes_len, varint_len, Reader};

/// The kind byte that opens a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// `0x00`: the updates of one peer over a counter span `[start, end)`.
    DeltaSpan = 0x00,
    /// `0x01`: a whole-document snapshot at a version vector.
    Snapshot = 0x01,
}

/// A DeltaSpan's version metadata: the peer and the half-open counter span `[start, end)` its updates cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span<'a> {
    /// The peer id bytes (for Loro documents: the decimal ASCII of the u64 peer, see
    /// [`PeerIdBuf`](super::PeerIdBuf)).
    pub peer: &'a [u8],
    /// First counter (inclusive).
    pub start: u32,
    /// Counter after the last (exclusive); greater than `start`.
    pub end: u32,
}

/// One entry of a snapshot's version vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotEntry<'a> {
    /// The peer id bytes.
    pub peer: &'a [u8],
    /// The peer's counter in the snapshot (the number of its operations included).
    pub counter: u32,
}

#[derive(Clone, Copy)]
enum VvRepr<'a> {
    /// Validated entries still in wire form.
    Wire { count: u32, region: &'a [u8] },
    /// Entries supplied by the caller (validated when sealing).
    Entries(&'a [SnapshotEntry<'a>]),
}

/// A snapshot record's version vector: either borrowed from a parsed record (iterated lazily, no allocation) or
/// the caller's entries for sealing. Entries must be sorted by peer bytes, strictly ascending (sort them with
/// `entries.sort_unstable()`); sealing rejects anything else.
#[derive(Clone, Copy)]
pub struct SnapshotVv<'a>(VvRepr<'a>);

impl<'a> SnapshotVv<'a> {
    /// Wraps the caller's entries.
    pub const fn new(entries: &'a [SnapshotEntry<'a>]) -> Self {
        SnapshotVv(VvRepr::Entries(entries))
    }

    pub(crate) const fn wire(count: u32, region: &'a [u8]) -> Self {
        SnapshotVv(VvRepr::Wire { count, region })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        match self.0 {
            VvRepr::Wire { count, .. } => count as usize,
            VvRepr::Entries(e) => e.len(),
        }
    }

    /// True when the vector has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, in order.
    pub fn iter(&self) -> SnapshotVvIter<'a> {
        SnapshotVvIter(match self.0 {
            VvRepr::Wire { count, region } => IterRepr::Wire { left: count, reader: Reader::new(region) },
            VvRepr::Entries(e) => IterRepr::Entries(e.iter()),
        })
    }

    /// The counter of `peer`, 0 when absent.
    pub fn get(&self, peer: &[u8]) -> u32 {
        self.iter().find(|e| e.peer == peer).map_or(0, |e| e.counter)
    }

    /// The validated wire bytes of the entries, when parsed from a record.
    pub(crate) fn wire_region(&self) -> Option<&'a [u8]> {
        match self.0 {
            VvRepr::Wire { region, .. } => Some(region),
            VvRepr::Entries(_) => None,
        }
    }
}

impl PartialEq for SnapshotVv<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for SnapshotVv<'_> {}

impl fmt::Debug for SnapshotVv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for SnapshotVv<'a> {
    type Item = SnapshotEntry<'a>;
    type IntoIter = SnapshotVvIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[derive(Clone, Debug)]
enum IterRepr<'a> {
    Wire { left: u32, reader: Reader<'a> },
    Entries(core::slice::Iter<'a, SnapshotEntry<'a>>),
}

/// Iterator over a [`SnapshotVv`].
#[derive(Clone, Debug)]
pub struct SnapshotVvIter<'a>(IterRepr<'a>);

impl<'a> Iterator for SnapshotVvIter<'a> {
    type Item = SnapshotEntry<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            IterRepr::Wire { left, reader } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // The region was validated when the record was parsed; a failure here is unreachable and ends
                // the iteration rather than panicking.
                let peer = reader.var_bytes(()).ok()?;
                let counter = reader.varint_u32(()).ok()?;
                Some(SnapshotEntry { peer, counter })
            }
            IterRepr::Entries(it) => it.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            IterRepr::Wire { left, .. } => *left as usize,
            IterRepr::Entries(it) => it.len(),
        };
        (n, Some(n))
    }
}

/// The version metadata of a record: a span (DeltaSpan) or a version vector (Snapshot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordVersion<'a> {
    /// A DeltaSpan record.
    DeltaSpan(Span<'a>),
    /// A Snapshot record.
    Snapshot(SnapshotVv<'a>),
}

impl RecordVersion<'_> {
    /// The kind byte this metadata is written with.
    pub const fn kind(&self) -> RecordKind {
        match self {
            RecordVersion::DeltaSpan(_) => RecordKind::DeltaSpan,
            RecordVersion::Snapshot(_) => RecordKind::Snapshot,
        }
    }
}

/// A record's plaintext header without its IV: what the application supplies to
/// [`seal`](super::seal) (the IV is drawn from the caller's RNG while sealing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// Span or snapshot version vector.
    pub version: RecordVersion<'a>,
    /// The application's key id (≤ 64 bytes of UTF-8; may be empty).
    pub key_id: &'a str,
}

impl<'a> RecordHeader<'a> {
    /// A DeltaSpan header for `peer`'s updates `[start, end)`.
    pub const fn delta(peer: &'a [u8], start: u32, end: u32, key_id: &'a str) -> Self {
        RecordHeader { version: RecordVersion::DeltaSpan(Span { peer, start, end }), key_id }
    }

    /// A Snapshot header at the version vector `vv` (sorted by peer bytes, strictly ascending).
    pub const fn snapshot(vv: &'a [SnapshotEntry<'a>], key_id: &'a str) -> Self {
        RecordHeader { version: RecordVersion::Snapshot(SnapshotVv::new(vv)), key_id }
    }

    /// Validates the header against the record rules and returns its exact encoded length, IV included (the
    /// length of the AAD). Error offsets are those the fields would have in the record.
    pub fn encoded_len(&self) -> Result<usize, EloError> {
        let mut at = 1usize;
        match &self.version {
            RecordVersion::DeltaSpan(s) => {
                check_peer(s.peer.len(), at, EloField::PeerId)?;
                at += var_bytes_len(s.peer.len());
                if s.end <= s.start {
                    return Err(EloError::EmptySpan { offset: at, start: s.start, end: s.end });
                }
                at += varint_len(u64::from(s.start)) + varint_len(u64::from(s.end));
            }
            RecordVersion::Snapshot(vv) => {
                let count = vv.len();
                if count > MAX_SNAPSHOT_VV_LEN {
                    return Err(EloError::SnapshotVvTooLarge { offset: at, count, max: MAX_SNAPSHOT_VV_LEN });
                }
                at += varint_len(count as u64);
                let mut prev: Option<&[u8]> = None;
                for e in vv.iter() {
                    check_peer(e.peer.len(), at, EloField::SnapshotPeerId)?;
                    if prev.is_some_and(|p| e.peer <= p) {
                        return Err(EloError::SnapshotVvNotSorted { offset: at });
                    }
                    prev = Some(e.peer);
                    at += var_bytes_len(e.peer.len()) + varint_len(u64::from(e.counter));
                }
            }
        }
        if self.key_id.len() > MAX_KEY_ID_LEN {
            return Err(EloError::KeyIdTooLong { offset: at, len: self.key_id.len(), max: MAX_KEY_ID_LEN });
        }
        at += var_bytes_len(self.key_id.len());
        Ok(at + var_bytes_len(IV_LEN))
    }

    /// Writes the header (already validated by [`encoded_len`](Self::encoded_len)) with `iv`.
    pub(crate) fn write<B: BufMut + ?Sized>(&self, iv: &[u8; IV_LEN], out: &mut B) {
        out.put_u8(self.version.kind() as u8);
        match &self.version {
            RecordVersion::DeltaSpan(s) => {
                put_var_bytes(out, s.peer);
                put_varint(out, u64::from(s.start));
                put_varint(out, u64::from(s.end));
            }
            RecordVersion::Snapshot(vv) => {
                put_varint(out, vv.len() as u64);
                match vv.wire_region() {
                    Some(region) => out.put_slice(region),
                    None => {
                        for e in vv.iter() {
                            put_var_bytes(out, e.peer);
                            put_varint(out, u64::from(e.counter));
                        }
                    }
                }
            }
        }
        put_var_bytes(out, self.key_id.as_bytes());
        put_var_bytes(out, iv);
    }
}

fn check_peer(len: usize, offset: usize, field: EloField) -> Result<(), EloError> {
    if len == 0 || len > MAX_PEER_ID_LEN {
        return Err(EloError::PeerIdLength { offset, field, len, max: MAX_PEER_ID_LEN });
    }
    Ok(())
}

/// A parsed, validated record borrowing every field from its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    bytes: &'a [u8],
    header_len: usize,
    ciphertext: &'a [u8],
    version: RecordVersion<'a>,
    key_id: &'a str,
    iv: [u8; IV_LEN],
}

impl<'a> Record<'a> {
    /// Parses and validates one record (the bytes inside a container's length prefix). Never allocates, never
    /// panics; offsets in errors count from the start of `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EloError> {
        let mut r = Reader::new(bytes);
        let kind_at = r.pos();
        let kind = r.u8(EloField::RecordKind)?;
        let version = match kind {
            0x00 => {
                let at = r.pos();
                let peer = r.var_bytes(EloField::PeerId)?;
                check_peer(peer.len(), at, EloField::PeerId)?;
                let start_at = r.pos();
                let start = r.varint_u32(EloField::Start)?;
                let end = r.varint_u32(EloField::End)?;
                if end <= start {
                    return Err(EloError::EmptySpan { offset: start_at, start, end });
                }
                RecordVersion::DeltaSpan(Span { peer, start, end })
            }
            0x01 => {
                let at = r.pos();
                let count = r.varint_u32(EloField::SnapshotVvCount)?;
                if count as usize > MAX_SNAPSHOT_VV_LEN {
                    return Err(EloError::SnapshotVvTooLarge {
                        offset: at,
                        count: count as usize,
                        max: MAX_SNAPSHOT_VV_LEN,
                    });
                }
                // An entry takes at least 3 bytes: a length prefix, one peer byte and a counter.
                if count as usize > r.remaining() / 3 {
                    return Err(EloError::CountOutOfBounds {
                        offset: at,
                        field: EloField::SnapshotVvCount,
                        count,
                        remaining: r.remaining(),
                    });
                }
                let region_start = r.pos();
                let mut prev: Option<&[u8]> = None;
                for _ in 0..count {
                    let entry_at = r.pos();
                    let peer = r.var_bytes(EloField::SnapshotPeerId)?;
                    check_peer(peer.len(), entry_at, EloField::SnapshotPeerId)?;
                    if prev.is_some_and(|p| peer <= p) {
                        return Err(EloError::SnapshotVvNotSorted { offset: entry_at });
                    }
                    prev = Some(peer);
                    r.varint_u32(EloField::SnapshotCounter)?;
                }
                RecordVersion::Snapshot(SnapshotVv::wire(count, r.consumed_since(region_start)))
            }
            kind => return Err(EloError::UnknownKind { offset: kind_at, kind }),
        };
        let key_at = r.pos();
        let key_id = r.var_str(EloField::KeyId)?;
        if key_id.len() > MAX_KEY_ID_LEN {
            return Err(EloError::KeyIdTooLong { offset: key_at, len: key_id.len(), max: MAX_KEY_ID_LEN });
        }
        let iv_at = r.pos();
        let iv_bytes = r.var_bytes(EloField::Iv)?;
        let iv: [u8; IV_LEN] =
            iv_bytes.try_into().map_err(|_| EloError::IvLength { offset: iv_at, len: iv_bytes.len() })?;
        let header_len = r.pos();
        let ct_at = r.pos();
        let ciphertext = r.var_bytes(EloField::Ciphertext)?;
        if ciphertext.len() < TAG_LEN {
            return Err(EloError::CiphertextTooShort { offset: ct_at, len: ciphertext.len() });
        }
        if r.remaining() != 0 {
            return Err(EloError::TrailingBytes { offset: r.pos(), count: r.remaining() });
        }
        Ok(Record { bytes, header_len, ciphertext, version, key_id, iv })
    }

    /// The record kind.
    pub const fn kind(&self) -> RecordKind {
        self.version.kind()
    }

    /// Span or snapshot version vector.
    pub const fn version(&self) -> RecordVersion<'a> {
        self.version
    }

    /// The span, for a DeltaSpan record.
    pub const fn span(&self) -> Option<Span<'a>> {
        match self.version {
            RecordVersion::DeltaSpan(s) => Some(s),
            RecordVersion::Snapshot(_) => None,
        }
    }

    /// The version vector, for a Snapshot record.
    pub const fn snapshot_vv(&self) -> Option<SnapshotVv<'a>> {
        match self.version {
            RecordVersion::Snapshot(vv) => Some(vv),
            RecordVersion::DeltaSpan(_) => None,
        }
    }

    /// The key id the record was sealed under.
    pub const fn key_id(&self) -> &'a str {
        self.key_id
    }

    /// The 12-byte IV.
    pub const fn iv(&self) -> &[u8; IV_LEN] {
        &self.iv
    }

    /// The header fields without the IV, as [`seal`](super::seal) takes them.
    pub const fn header(&self) -> RecordHeader<'a> {
        RecordHeader { version: self.version, key_id: self.key_id }
    }

    /// The exact header bytes from the kind byte through the IV (its length byte included): the AES-GCM AAD.
    pub fn aad(&self) -> &'a [u8] {
        self.bytes.get(..self.header_len).unwrap_or_default()
    }

    /// Ciphertext followed by the 16-byte tag, as stored on the wire.
    pub const fn ciphertext(&self) -> &'a [u8] {
        self.ciphertext
    }

    /// Length of the plaintext this record decrypts to.
    pub const fn plaintext_len(&self) -> usize {
        self.ciphertext.len() - TAG_LEN
    }

    /// The whole record.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// A parsed container: a non-empty list of records, each of which has been validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Container<'a> {
    bytes: &'a [u8],
    count: u32,
    region_start: usize,
}

impl<'a> Container<'a> {
    /// Parses a container and validates every record in it (all-or-nothing). Never allocates, never panics;
    /// offsets in errors count from the start of `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, EloError> {
        let mut r = Reader::new(bytes);
        let count = r.varint_u32(EloField::ContainerCount)?;
        if count == 0 {
            return Err(EloError::EmptyContainer { offset: 0 });
        }
        // A record takes at least its one-byte length prefix (and a real one dozens more).
        if count as usize > r.remaining() {
            return Err(EloError::CountOutOfBounds {
                offset: 0,
                field: EloField::ContainerCount,
                count,
                remaining: r.remaining(),
            });
        }
        let region_start = r.pos();
        for _ in 0..count {
            let rec = r.var_bytes(EloField::Record)?;
            let at = r.pos() - rec.len();
            Record::parse(rec).map_err(|e| e.shifted(at))?;
        }
        if r.remaining() != 0 {
            return Err(EloError::TrailingBytes { offset: r.pos(), count: r.remaining() });
        }
        Ok(Container { bytes, count, region_start })
    }

    /// Number of records (at least one).
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// Always false: a valid container holds at least one record.
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The parsed records, in order.
    pub fn records(&self) -> Records<'a> {
        Records(self.raw_records())
    }

    /// The records' bytes (without their length prefixes), in order.
    pub fn raw_records(&self) -> RawRecords<'a> {
        RawRecords {
            left: self.count,
            reader: Reader::new(self.bytes.get(self.region_start..).unwrap_or_default()),
            base: self.region_start,
        }
    }

    /// The whole container.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<'a> IntoIterator for Container<'a> {
    type Item = Record<'a>;
    type IntoIter = Records<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.records()
    }
}

/// Iterator over the raw record bytes of a [`Container`].
#[derive(Clone, Debug)]
pub struct RawRecords<'a> {
    left: u32,
    reader: Reader<'a>,
    base: usize,
}

impl<'a> RawRecords<'a> {
    /// The next record together with its offset in the container.
    pub(crate) fn next_with_offset(&mut self) -> Option<(usize, &'a [u8])> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Validated by `Container::decode`; a failure is unreachable and ends the iteration.
        let rec = self.reader.var_bytes(()).ok()?;
        Some((self.base + self.reader.pos() - rec.len(), rec))
    }
}

impl<'a> Iterator for RawRecords<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with_offset().map(|(_, r)| r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

/// Iterator over the parsed records of a [`Container`].
#[derive(Clone, Debug)]
pub struct Records<'a>(RawRecords<'a>);

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // Every record was validated by `Container::decode`.
        self.0.next().and_then(|r| Record::parse(r).ok())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// The exact length of the container holding `records` (written as given; they are not re-validated). Fails
/// for an empty list or a record longer than `u32::MAX` bytes.
pub fn container_len<R: AsRef<[u8]>>(records: &[R]) -> Result<usize, EloError> {
    if records.is_empty() {
        return Err(EloError::EmptyContainer { offset: 0 });
    }
    if records.len() > u32::MAX as usize {
        return Err(EloError::TooLong { field: EloField::ContainerCount, len: records.len() });
    }
    let mut len = varint_len(records.len() as u64);
    for r in records {
        let n = r.as_ref().len();
        if n > u32::MAX as usize {
            return Err(EloError::TooLong { field: EloField::Record, len: n });
        }
        len = len.saturating_add(var_bytes_len(n));
    }
    Ok(len)
}

fn write_container<R: AsRef<[u8]>, B: BufMut + ?Sized>(records: &[R], out: &mut B) {
    put_varint(out, records.len() as u64);
    for r in records {
        put_var_bytes(out, r.as_ref());
    }
}

/// Writes the container holding `records` into the start of `out`; returns the bytes written. On error `out`
/// is untouched. Never allocates.
pub fn encode_container_into<R: AsRef<[u8]>>(records: &[R], out: &mut [u8]) -> Result<usize, EloError> {
    let len = container_len(records)?;
    let available = out.len();
    let mut dst = out.get_mut(..len).ok_or(EloError::BufferTooSmall { required: len, available })?;
    write_container(records, &mut dst);
    Ok(len)
}

/// The container holding `records`, in a new exactly sized buffer.
pub fn encode_container<R: AsRef<[u8]>>(records: &[R]) -> Result<Vec<u8>, EloError> {
    let len = container_len(records)?;
    let mut out = Vec::with_capacity(len);
    write_container(records, &mut out);
    Ok(out)
}

/// Packs `records`, in order, into as few containers as possible that are each at most `max_len` bytes; a
/// record too large for `max_len` on its own gets a container of its own (to be fragmented by the session).
/// Returns no container for no record.
pub fn pack_containers<R: AsRef<[u8]>>(records: &[R], max_len: usize) -> Result<Vec<Bytes>, EloError> {
    let mut out = Vec::new();
    let mut first = 0;
    while first < records.len() {
        // Grow the group while the container still fits.
        let mut last = first + 1;
        let mut body = var_bytes_len(records[first].as_ref().len());
        while last < records.len() {
            let next = body + var_bytes_len(records[last].as_ref().len());
            if varint_len((last + 1 - first) as u64) + next > max_len {
                break;
            }
            body = next;
            last += 1;
        }
        out.push(Bytes::from(encode_container(&records[first..last])?));
        first = last;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const IV: [u8; 12] = [0x86, 0xbc, 0xad, 0x09, 0xd5, 0xe7, 0xe3, 0xd7, 0x05, 0x03, 0xa5, 0x7e];

    /// A DeltaSpan record written field by field, with raw lengths so that invalid ones can be built.
    fn delta(peer: &[u8], start: u64, end: u64, key_id: &[u8], iv: &[u8], ct_len: usize) -> Vec<u8> {
        let mut out = vec![0x00];
        put_var_bytes(&mut out, peer);
        put_varint(&mut out, start);
        put_varint(&mut out, end);
        put_var_bytes(&mut out, key_id);
        put_var_bytes(&mut out, iv);
        put_var_bytes(&mut out, &vec![0xab; ct_len]);
        out
    }

    fn snapshot(vv: &[(&[u8], u64)], key_id: &[u8], iv: &[u8], ct_len: usize) -> Vec<u8> {
        let mut out = vec![0x01];
        put_varint(&mut out, vv.len() as u64);
        for (p, c) in vv {
            put_var_bytes(&mut out, p);
            put_varint(&mut out, *c);
        }
        put_var_bytes(&mut out, key_id);
        put_var_bytes(&mut out, iv);
        put_var_bytes(&mut out, &vec![0xcd; ct_len]);
        out
    }

    fn container(records: &[&[u8]]) -> Vec<u8> {
        encode_container(records).unwrap()
    }

    #[test]
    fn delta_record_fields_and_aad() {
        let rec = delta(&[1, 2, 3, 4], 1, 3, b"k1", &IV, 20);
        let r = Record::parse(&rec).unwrap();
        assert_eq!(r.kind(), RecordKind::DeltaSpan);
        assert_eq!(r.span(), Some(Span { peer: &[1, 2, 3, 4], start: 1, end: 3 }));
        assert_eq!(r.key_id(), "k1");
        assert_eq!(r.iv(), &IV);
        // AAD = kind through the IV including the IV's length byte.
        assert_eq!(r.aad(), &rec[..rec.len() - 21]);
        assert_eq!(r.aad().last(), Some(&0x7e));
        assert_eq!(r.ciphertext().len(), 20);
        assert_eq!(r.plaintext_len(), 4);
    }

    #[test]
    fn snapshot_record_fields() {
        let rec = snapshot(&[(b"1", 5), (b"12", 0), (b"2", 9)], b"", &IV, 16);
        let r = Record::parse(&rec).unwrap();
        assert_eq!(r.kind(), RecordKind::Snapshot);
        let vv = r.snapshot_vv().unwrap();
        assert_eq!(vv.len(), 3);
        assert_eq!(vv.get(b"2"), 9);
        assert_eq!(vv.get(b"3"), 0);
        assert_eq!(r.key_id(), "");
        assert_eq!(r.plaintext_len(), 0);
        let entries: Vec<_> = vv.iter().collect();
        assert_eq!(SnapshotVv::new(&entries), vv);
    }

    #[test]
    fn iv_must_be_exactly_12_bytes() {
        for n in [0usize, 11, 13, 16] {
            let iv = vec![7u8; n];
            let e = Record::parse(&delta(b"1", 0, 1, b"k", &iv, 16)).unwrap_err();
            assert!(matches!(e, EloError::IvLength { len, .. } if len == n), "{e:?}");
            let e = Record::parse(&snapshot(&[], b"k", &iv, 16)).unwrap_err();
            assert!(matches!(e, EloError::IvLength { len, .. } if len == n), "{e:?}");
        }
    }

    #[test]
    fn peer_id_must_be_1_to_64_bytes() {
        assert!(Record::parse(&delta(&[9; 64], 0, 1, b"k", &IV, 16)).is_ok());
        for n in [0usize, 65] {
            let e = Record::parse(&delta(&vec![9; n], 0, 1, b"k", &IV, 16)).unwrap_err();
            assert_eq!(e, EloError::PeerIdLength { offset: 1, field: EloField::PeerId, len: n, max: 64 });
        }
        assert!(Record::parse(&snapshot(&[(&[9; 64], 1)], b"k", &IV, 16)).is_ok());
        for n in [0usize, 65] {
            let peer = vec![9; n];
            let e = Record::parse(&snapshot(&[(&peer, 1)], b"k", &IV, 16)).unwrap_err();
            assert_eq!(e, EloError::PeerIdLength { offset: 2, field: EloField::SnapshotPeerId, len: n, max: 64 });
        }
    }

    #[test]
    fn key_id_at_most_64_utf8_bytes() {
        assert!(Record::parse(&delta(b"1", 0, 1, &[b'k'; 64], &IV, 16)).is_ok());
        assert!(Record::parse(&delta(b"1", 0, 1, b"", &IV, 16)).is_ok());
        let e = Record::parse(&delta(b"1", 0, 1, &[b'k'; 65], &IV, 16)).unwrap_err();
        assert_eq!(e, EloError::KeyIdTooLong { offset: 5, len: 65, max: 64 });
        let e = Record::parse(&snapshot(&[], &[b'k'; 65], &IV, 16)).unwrap_err();
        assert!(matches!(e, EloError::KeyIdTooLong { len: 65, .. }));
        let e = Record::parse(&delta(b"1", 0, 1, &[0xff, 0xfe], &IV, 16)).unwrap_err();
        assert!(matches!(e, EloError::InvalidUtf8 { field: EloField::KeyId, .. }), "{e:?}");
    }

    #[test]
    fn span_end_must_exceed_start() {
        assert!(Record::parse(&delta(b"1", 0, 1, b"k", &IV, 16)).is_ok());
        for (s, e) in [(0u64, 0u64), (5, 5), (6, 5)] {
            let err = Record::parse(&delta(b"1", s, e, b"k", &IV, 16)).unwrap_err();
            assert_eq!(err, EloError::EmptySpan { offset: 3, start: s as u32, end: e as u32 });
        }
    }

    #[test]
    fn counters_are_canonical_u32_varints() {
        assert!(Record::parse(&delta(b"1", 0, u64::from(u32::MAX), b"k", &IV, 16)).is_ok());
        let e = Record::parse(&delta(b"1", 0, u64::from(u32::MAX) + 1, b"k", &IV, 16)).unwrap_err();
        assert!(matches!(e, EloError::VarintOverflow { field: EloField::End, .. }), "{e:?}");
        // start = 1 written as 81 00.
        let mut rec = delta(b"1", 1, 3, b"k", &IV, 16);
        rec.splice(3..4, [0x81, 0x00]);
        let e = Record::parse(&rec).unwrap_err();
        assert_eq!(e, EloError::VarintNotCanonical { offset: 3, field: EloField::Start });
    }

    #[test]
    fn snapshot_vv_must_be_strictly_ascending() {
        assert!(Record::parse(&snapshot(&[(b"1", 1), (b"10", 1), (b"2", 1)], b"k", &IV, 16)).is_ok());
        let e = Record::parse(&snapshot(&[(b"2", 1), (b"10", 1)], b"k", &IV, 16)).unwrap_err();
        assert_eq!(e, EloError::SnapshotVvNotSorted { offset: 5 });
        let e = Record::parse(&snapshot(&[(b"2", 1), (b"2", 3)], b"k", &IV, 16)).unwrap_err();
        assert_eq!(e, EloError::SnapshotVvNotSorted { offset: 5 });
    }

    #[test]
    fn snapshot_vv_count_is_capped_and_bounded_by_remaining_bytes() {
        let mut rec = vec![0x01];
        put_varint(&mut rec, (MAX_SNAPSHOT_VV_LEN + 1) as u64);
        rec.extend_from_slice(&[0; 64]);
        let e = Record::parse(&rec).unwrap_err();
        assert_eq!(e, EloError::SnapshotVvTooLarge { offset: 1, count: MAX_SNAPSHOT_VV_LEN + 1, max: 4096 });
        let mut rec = vec![0x01];
        put_varint(&mut rec, 1000);
        rec.extend_from_slice(&[0; 64]);
        let e = Record::parse(&rec).unwrap_err();
        assert!(matches!(e, EloError::CountOutOfBounds { count: 1000, .. }), "{e:?}");
        // A cap-sized vector is fine.
        let peers: Vec<Vec<u8>> = (0..MAX_SNAPSHOT_VV_LEN as u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let vv: Vec<(&[u8], u64)> = peers.iter().map(|p| (&p[..], 1)).collect();
        assert_eq!(Record::parse(&snapshot(&vv, b"k", &IV, 16)).unwrap().snapshot_vv().unwrap().len(), 4096);
    }

    #[test]
    fn ciphertext_holds_at_least_the_tag() {
        assert!(Record::parse(&delta(b"1", 0, 1, b"k", &IV, 16)).is_ok());
        let e = Record::parse(&delta(b"1", 0, 1, b"k", &IV, 15)).unwrap_err();
        assert_eq!(e, EloError::CiphertextTooShort { offset: 20, len: 15 });
    }

    #[test]
    fn record_rejects_trailing_bytes() {
        let mut rec = delta(b"1", 0, 1, b"k", &IV, 16);
        let n = rec.len();
        rec.push(0);
        assert_eq!(Record::parse(&rec).unwrap_err(), EloError::TrailingBytes { offset: n, count: 1 });
    }

    #[test]
    fn record_rejects_unknown_kind_and_truncation() {
        let mut rec = delta(b"1", 0, 1, b"k", &IV, 16);
        rec[0] = 2;
        assert_eq!(Record::parse(&rec).unwrap_err(), EloError::UnknownKind { offset: 0, kind: 2 });
        assert!(matches!(Record::parse(&[]).unwrap_err(), EloError::Truncated { field: EloField::RecordKind, .. }));
        let rec = delta(b"1", 0, 1, b"k", &IV, 16);
        for n in 1..rec.len() {
            assert!(Record::parse(&rec[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn container_round_trip_and_zero_copy() {
        let a = delta(b"1", 0, 1, b"k", &IV, 16);
        let b = snapshot(&[(b"1", 1)], b"k", &IV, 17);
        let bytes = container(&[&a, &b]);
        assert_eq!(container_len(&[&a, &b]).unwrap(), bytes.len());
        let c = Container::decode(&bytes).unwrap();
        assert_eq!(c.len(), 2);
        let raw: Vec<&[u8]> = c.raw_records().collect();
        assert_eq!(raw, [&a[..], &b[..]]);
        // Borrowed from the container, not copied.
        let base = bytes.as_ptr() as usize;
        assert!(raw.iter().all(|r| (r.as_ptr() as usize) >= base && (r.as_ptr() as usize) < base + bytes.len()));
        let kinds: Vec<_> = c.records().map(|r| r.kind()).collect();
        assert_eq!(kinds, [RecordKind::DeltaSpan, RecordKind::Snapshot]);
    }

    #[test]
    fn container_must_hold_a_record() {
        assert_eq!(Container::decode(&[0]).unwrap_err(), EloError::EmptyContainer { offset: 0 });
        assert_eq!(encode_container::<&[u8]>(&[]).unwrap_err(), EloError::EmptyContainer { offset: 0 });
    }

    #[test]
    fn container_rejects_trailing_bytes() {
        let a = delta(b"1", 0, 1, b"k", &IV, 16);
        let mut bytes = container(&[&a]);
        let n = bytes.len();
        bytes.push(7);
        assert_eq!(Container::decode(&bytes).unwrap_err(), EloError::TrailingBytes { offset: n, count: 1 });
    }

    #[test]
    fn container_count_bounded_by_remaining_bytes() {
        let e = Container::decode(&[0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2]).unwrap_err();
        assert_eq!(
            e,
            EloError::CountOutOfBounds { offset: 0, field: EloField::ContainerCount, count: u32::MAX, remaining: 2 }
        );
        let e = Container::decode(&[2, 5, 0]).unwrap_err();
        assert!(matches!(e, EloError::LengthOutOfBounds { field: EloField::Record, len: 5, .. }), "{e:?}");
    }

    #[test]
    fn container_errors_point_into_the_container() {
        let a = delta(b"1", 0, 1, b"k", &IV, 16);
        let bad = delta(b"1", 0, 1, b"k", &IV[..11], 16);
        let bytes = container(&[&a, &bad]);
        // count (1) + a's prefix (1) + a + bad's prefix (1) + kind/peer/start/end/key (7)
        let iv_at = 1 + 1 + a.len() + 1 + 7;
        assert_eq!(Container::decode(&bytes).unwrap_err(), EloError::IvLength { offset: iv_at, len: 11 });
        assert_eq!(bytes[iv_at], 11);
    }

    #[test]
    fn encode_container_into_checks_buffer() {
        let a = delta(b"1", 0, 1, b"k", &IV, 16);
        let mut buf = [0x55u8; 8];
        let e = encode_container_into(&[&a], &mut buf).unwrap_err();
        assert!(matches!(e, EloError::BufferTooSmall { .. }));
        assert_eq!(buf, [0x55; 8]);
        let mut buf = vec![0u8; 100];
        let n = encode_container_into(&[&a], &mut buf).unwrap();
        assert_eq!(&buf[..n], &container(&[&a])[..]);
    }

    #[test]
    fn pack_containers_respects_the_limit_and_order() {
        let recs: Vec<Vec<u8>> = (0..10).map(|i| delta(b"1", i, i + 1, b"k", &IV, 16 + i as usize * 10)).collect();
        let max = 150;
        let packed = pack_containers(&recs, max).unwrap();
        let mut seen = Vec::new();
        for c in &packed {
            let c = Container::decode(c).unwrap();
            assert!(c.as_bytes().len() <= max || c.len() == 1);
            seen.extend(c.raw_records().map(|r| r.to_vec()));
        }
        assert_eq!(seen, recs);
        assert!(packed.len() > 1);
        // A record over the limit travels alone.
        let one = pack_containers(&recs[9..], 10).unwrap();
        assert_eq!(one.len(), 1);
        assert!(pack_containers::<Vec<u8>>(&[], 10).unwrap().is_empty());
    }

    #[test]
    fn header_encoding_enforces_the_same_bounds() {
        let ok = RecordHeader::delta(b"1", 0, 1, "k");
        assert_eq!(ok.encoded_len().unwrap(), 1 + 2 + 1 + 1 + 2 + 13);
        assert!(matches!(RecordHeader::delta(b"", 0, 1, "k").encoded_len(), Err(EloError::PeerIdLength { .. })));
        assert!(matches!(RecordHeader::delta(&[1; 65], 0, 1, "k").encoded_len(), Err(EloError::PeerIdLength { .. })));
        assert!(matches!(RecordHeader::delta(b"1", 3, 3, "k").encoded_len(), Err(EloError::EmptySpan { .. })));
        let long = "k".repeat(65);
        assert!(matches!(RecordHeader::delta(b"1", 0, 1, &long).encoded_len(), Err(EloError::KeyIdTooLong { .. })));
        let unsorted = [SnapshotEntry { peer: b"2", counter: 1 }, SnapshotEntry { peer: b"1", counter: 1 }];
        assert_eq!(
            RecordHeader::snapshot(&unsorted, "k").encoded_len(),
            Err(EloError::SnapshotVvNotSorted { offset: 5 })
        );
        let dup = [SnapshotEntry { peer: b"1", counter: 1 }, SnapshotEntry { peer: b"1", counter: 2 }];
        assert!(RecordHeader::snapshot(&dup, "k").encoded_len().is_err());
    }

    #[test]
    fn header_write_matches_parse() {
        let entries = [SnapshotEntry { peer: b"1", counter: 300 }, SnapshotEntry { peer: b"2", counter: 0 }];
        for h in [RecordHeader::delta(b"77", 5, 70000, "key"), RecordHeader::snapshot(&entries, "")] {
            let mut out = Vec::new();
            h.write(&IV, &mut out);
            assert_eq!(out.len(), h.encoded_len().unwrap());
            put_var_bytes(&mut out, &[0; 16]);
            let r = Record::parse(&out).unwrap();
            assert_eq!(r.header(), h);
            // A parsed header re-encodes to the same bytes.
            let mut again = Vec::new();
            r.header().write(&IV, &mut again);
            assert_eq!(&again[..], r.aad());
        }
    }
}
