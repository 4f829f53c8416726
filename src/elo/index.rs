//! [`EloIndex`]: the server's keyless index of a %ELO room.
//!
//! The server cannot decrypt. It reads record headers to decide what a joining client lacks, and relays and
//! stores ciphertext unchanged.
//!
//! * **All-or-nothing.** [`insert`](EloIndex::insert) parses and validates every record of a container (and the
//!   index rule below) before changing anything; any error leaves the index untouched and maps to `Ack` status
//!   `invalid_update`.
//! * **Counters.** Record counters are u32 on the wire, but a Loro counter is an `i32`; the index rejects spans
//!   and snapshot counters above `i32::MAX` ([`MAX_VV_COUNTER`]) so that its version vector is always encodable.
//! * **Span override** (protocol-e2ee.md). A DeltaSpan `[S, E)` of peer P removes every held span `[s, e)` of P
//!   with `S <= s` and `e <= E`, whatever its key id, and is always added itself (even inside a wider held span).
//!   Partial overlaps coexist.
//! * **Snapshots: retention rule.** The index keeps at most one snapshot, the *base*. A snapshot becomes the base
//!   when there is none or when its version vector includes the base's (every base counter ≤ the new one, peers
//!   compared by bytes); it then prunes every held span `[s, e)` of a peer P with `e <= vv[P]`. A snapshot that
//!   does not include the base (stale or concurrent) is validated and relayed but not kept; the held spans still
//!   carry its history. Whether a client may replace history this way is the application's call (the spec says
//!   so); it is gated by the room's write permission like any update.
//! * **Peers.** A record peer id that is the canonical decimal of a u64 ([`parse_peer_id`]) is that Loro peer.
//!   Any other peer id (the spec calls peer ids opaque bytes, and its own test vector uses `01020304`) is accepted,
//!   stored and relayed, but cannot appear in a Loro version vector: it is left out of
//!   [`version`](EloIndex::version) and its records are always part of the backfill. Rejecting such records would
//!   break writers that follow the spec's opaque-bytes wording, while always sending them costs only bandwidth
//!   (importing an update twice is a no-op for a CRDT).
//! * **Backfill.** A client at version V lacks: the base, when some base entry `(P, c)` has `c > V[P]`; then each
//!   held span with `end > V[P]`, peers ascending by bytes, spans ascending by `(end, start)`. `V[P]` is 0 for an
//!   opaque peer. Per peer, spans are kept in an ordered map keyed by end, so the query is a range scan per peer
//!   (`O(peers · log V + output)`), not a scan of every record.
//! * **Memory.** Records are stored as [`Bytes`] sliced from the received container without copying (refcount
//!   only), so a held record keeps its container's buffer alive; [`compact`](EloIndex::compact) copies every held
//!   record into its own buffer. Peer keys are small copies. Apart from that, memory is proportional to the
//!   records held ([`held_bytes`](EloIndex::held_bytes)).
//! * **Persistence.** [`export`](EloIndex::export) writes a versioned snapshot of the state;
//!   [`import`](EloIndex::import) parses it strictly and restores the identical state:
//!
//! ```text
//! export := "ELOI" 0x01                             magic and format version
//!           u8 has_base (0 or 1) [varBytes base]    the base Snapshot record, when present
//!           varUint n, n × varBytes record          held DeltaSpan records, strictly ascending by
//!                                                   (peer bytes, start, end)
//! ```

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::ops::Bound;

use bytes::{BufMut, Bytes};

use super::error::{EloError, EloField};
use super::record::{pack_containers, Container, Record, RecordVersion};
use super::vv::{parse_peer_id, VersionVector, MAX_VV_COUNTER};
use crate::wire::bytes_of;
use crate::wire::reader::{put_var_bytes, put_varint, var_bytes_len, varint_len, Reader};

const EXPORT_MAGIC: &[u8; 4] = b"ELOI";
const EXPORT_VERSION: u8 = 1;

/// Held spans of one peer.
#[derive(Clone, Debug, Default)]
struct PeerSpans {
    /// The Loro peer, for a canonical decimal peer id.
    numeric: Option<u64>,
    /// `(end, start)` → record: answers "spans ending after k" with one range scan.
    by_end: BTreeMap<(u32, u32), Bytes>,
    /// `(start, end)`: finds the spans a new span covers (they start inside it).
    by_start: BTreeSet<(u32, u32)>,
}

impl PeerSpans {
    fn remove(&mut self, start: u32, end: u32) -> Option<Bytes> {
        self.by_start.remove(&(start, end));
        self.by_end.remove(&(end, start))
    }
}

/// The retained snapshot.
#[derive(Clone, Debug)]
struct Base {
    record: Bytes,
    /// `(peer, counter)` ascending by peer bytes; peers are slices of `record`.
    vv: Vec<(Bytes, u32)>,
}

/// What one [`EloIndex::insert`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertSummary {
    /// DeltaSpan records added.
    pub spans_added: usize,
    /// Held spans removed because a new span covers them.
    pub spans_overridden: usize,
    /// Snapshot records that became the base.
    pub snapshots_retained: usize,
    /// Snapshot records validated but not kept (they do not include the base).
    pub snapshots_ignored: usize,
    /// Held spans pruned by a new base.
    pub spans_pruned: usize,
}

/// The server-side index of a %ELO room (see the [module docs](self) for the rules).
#[derive(Clone, Debug, Default)]
pub struct EloIndex {
    peers: BTreeMap<Bytes, PeerSpans>,
    base: Option<Base>,
    spans: usize,
    held_bytes: usize,
}

/// Index rule: every counter fits a Loro `i32` counter.
fn check_index_counters(rec: &Record<'_>, at: usize) -> Result<(), EloError> {
    let too_large = |offset: usize, field: EloField, value: u32| EloError::CounterTooLarge {
        offset,
        field,
        value: u64::from(value),
        max: u64::from(MAX_VV_COUNTER),
    };
    match rec.version() {
        RecordVersion::DeltaSpan(s) => {
            if s.end > MAX_VV_COUNTER {
                let end_at = at + 1 + var_bytes_len(s.peer.len()) + varint_len(u64::from(s.start));
                return Err(too_large(end_at, EloField::End, s.end));
            }
        }
        RecordVersion::Snapshot(vv) => {
            let mut pos = at + 1 + varint_len(vv.len() as u64);
            for e in vv.iter() {
                pos += var_bytes_len(e.peer.len());
                if e.counter > MAX_VV_COUNTER {
                    return Err(too_large(pos, EloField::SnapshotCounter, e.counter));
                }
                pos += varint_len(u64::from(e.counter));
            }
        }
    }
    Ok(())
}

impl EloIndex {
    /// An empty index.
    pub fn new() -> Self {
        EloIndex::default()
    }

    /// Validates a received container and indexes its records, zero-copy: stored records are slices of
    /// `container`. Nothing changes on error (the server answers `invalid_update`).
    pub fn insert(&mut self, container: &Bytes) -> Result<InsertSummary, EloError> {
        Self::validate(container)?;
        let c = Container::decode(container)?;
        // Validated: applying cannot fail.
        let mut summary = InsertSummary::default();
        for rec in c.records() {
            let stored = bytes_of(container, rec.as_bytes());
            self.apply(&rec, stored, &mut summary);
        }
        Ok(summary)
    }

    /// Checks everything [`insert`](Self::insert) checks without changing the index, so a caller can validate
    /// several containers before inserting any of them (all-or-nothing across a batch).
    pub fn validate(container: &[u8]) -> Result<(), EloError> {
        let c = Container::decode(container)?;
        let mut raw = c.raw_records();
        while let Some((at, bytes)) = raw.next_with_offset() {
            let rec = Record::parse(bytes).map_err(|e| e.shifted(at))?;
            check_index_counters(&rec, at)?;
        }
        Ok(())
    }

    /// [`insert`](Self::insert) for a borrowed container: copies it into one new buffer first.
    pub fn insert_slice(&mut self, container: &[u8]) -> Result<InsertSummary, EloError> {
        // Validate before copying so hostile input costs no allocation.
        Container::decode(container)?;
        self.insert(&Bytes::copy_from_slice(container))
    }

    fn apply(&mut self, rec: &Record<'_>, stored: Bytes, summary: &mut InsertSummary) {
        match rec.version() {
            RecordVersion::DeltaSpan(s) => {
                summary.spans_overridden += self.add_span(s.peer, s.start, s.end, stored);
                summary.spans_added += 1;
            }
            RecordVersion::Snapshot(vv) => {
                let includes_base = self.base.as_ref().is_none_or(|b| {
                    // Both sides ascend by peer bytes: one merge walk.
                    let mut new = vv.iter().peekable();
                    b.vv.iter().all(|(peer, counter)| {
                        while new.next_if(|e| e.peer < &peer[..]).is_some() {}
                        let have = new.peek().filter(|e| e.peer == &peer[..]).map_or(0, |e| e.counter);
                        have >= *counter
                    })
                });
                if !includes_base {
                    summary.snapshots_ignored += 1;
                    return;
                }
                let vv: Vec<(Bytes, u32)> = vv.iter().map(|e| (bytes_of(&stored, e.peer), e.counter)).collect();
                for (peer, counter) in &vv {
                    summary.spans_pruned += self.prune(peer, *counter);
                }
                if let Some(old) = self.base.take() {
                    self.held_bytes -= old.record.len();
                }
                self.held_bytes += stored.len();
                self.base = Some(Base { record: stored, vv });
                summary.snapshots_retained += 1;
            }
        }
    }

    /// Adds a span after removing the held spans it covers; returns how many were removed.
    fn add_span(&mut self, peer: &[u8], start: u32, end: u32, record: Bytes) -> usize {
        if !self.peers.contains_key(peer) {
            let spans = PeerSpans { numeric: parse_peer_id(peer), ..PeerSpans::default() };
            self.peers.insert(Bytes::copy_from_slice(peer), spans);
        }
        let Some(spans) = self.peers.get_mut(peer) else { return 0 };
        // Covered spans start in [start, end) and end at or before `end`.
        let covered: Vec<(u32, u32)> =
            spans.by_start.range((start, 0)..(end, 0)).filter(|&&(_, e)| e <= end).copied().collect();
        for &(s, e) in &covered {
            if let Some(old) = spans.remove(s, e) {
                self.held_bytes -= old.len();
                self.spans -= 1;
            }
        }
        self.held_bytes += record.len();
        self.spans += 1;
        spans.by_start.insert((start, end));
        spans.by_end.insert((end, start), record);
        covered.len()
    }

    /// Removes `peer`'s spans that end at or before `counter`; returns how many.
    fn prune(&mut self, peer: &[u8], counter: u32) -> usize {
        let Some(spans) = self.peers.get_mut(peer) else { return 0 };
        let gone: Vec<(u32, u32)> = spans.by_end.range(..=(counter, u32::MAX)).map(|(&k, _)| k).collect();
        for &(e, s) in &gone {
            if let Some(old) = spans.remove(s, e) {
                self.held_bytes -= old.len();
                self.spans -= 1;
            }
        }
        if spans.by_end.is_empty() {
            self.peers.remove(peer);
        }
        gone.len()
    }

    /// The index's Loro version vector: for each numeric peer, the largest held span end or base counter. This is
    /// what a server sends as JoinResponseOk.version (encoded with [`VersionVector::encode`]).
    pub fn version(&self) -> VersionVector {
        let mut entries: Vec<(u64, u32)> = Vec::new();
        for spans in self.peers.values() {
            if let (Some(peer), Some((&(end, _), _))) = (spans.numeric, spans.by_end.last_key_value()) {
                entries.push((peer, end));
            }
        }
        if let Some(base) = &self.base {
            for (peer, counter) in &base.vv {
                if let Some(p) = parse_peer_id(peer) {
                    entries.push((p, *counter));
                }
            }
        }
        // Keep the maximum per peer, then build (counters were checked against MAX_VV_COUNTER on insert).
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        entries.dedup_by_key(|e| e.0);
        VersionVector::from_entries(entries).unwrap_or_default()
    }

    /// The records a client at version `client` lacks, in backfill order: the base first (when the client lacks
    /// part of it), then spans per peer ascending by bytes, each peer's spans ascending by `(end, start)`.
    pub fn missing<'s>(&'s self, client: &'s VersionVector) -> impl Iterator<Item = &'s Bytes> + 's {
        let base = self
            .base
            .as_ref()
            .filter(|b| b.vv.iter().any(|(peer, counter)| *counter > parse_peer_id(peer).map_or(0, |p| client.get(p))));
        let spans = self.peers.values().flat_map(move |spans| {
            let known = spans.numeric.map_or(0, |p| client.get(p));
            spans.by_end.range((Bound::Excluded((known, u32::MAX)), Bound::Unbounded)).map(|(_, rec)| rec)
        });
        base.map(|b| &b.record).into_iter().chain(spans)
    }

    /// The backfill for `client` packed into containers of at most `max_container_len` bytes each (a record too
    /// large for that gets a container of its own, for the session to fragment). Empty when nothing is lacking.
    pub fn backfill(&self, client: &VersionVector, max_container_len: usize) -> Vec<Bytes> {
        let records: Vec<&Bytes> = self.missing(client).collect();
        // Records are non-empty and held records are under 4 GiB, so packing cannot fail.
        pack_containers(&records, max_container_len).unwrap_or_default()
    }

    /// Number of records held (spans, plus the base when present).
    pub fn len(&self) -> usize {
        self.spans + usize::from(self.base.is_some())
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total bytes of the records held.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// The retained snapshot record, if any.
    pub fn base_snapshot(&self) -> Option<&Bytes> {
        self.base.as_ref().map(|b| &b.record)
    }

    /// Every held record: the base first, then spans per peer ascending by `(start, end)`.
    pub fn records(&self) -> impl Iterator<Item = &Bytes> + '_ {
        let spans = self.peers.values().flat_map(|p| p.by_start.iter().filter_map(|&(s, e)| p.by_end.get(&(e, s))));
        self.base.as_ref().map(|b| &b.record).into_iter().chain(spans)
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        *self = EloIndex::default();
    }

    /// Copies every held record into a buffer of its own, so that no larger received container stays alive for
    /// a small record.
    pub fn compact(&mut self) {
        for spans in self.peers.values_mut() {
            for rec in spans.by_end.values_mut() {
                *rec = Bytes::copy_from_slice(rec);
            }
        }
        if let Some(base) = &mut self.base {
            let record = Bytes::copy_from_slice(&base.record);
            // Re-slice the peers from the copy (same layout; the record was validated when it was stored).
            if let Some(vv) = Record::parse(&record).ok().and_then(|r| r.snapshot_vv()) {
                base.vv = vv.iter().map(|e| (bytes_of(&record, e.peer), e.counter)).collect();
            }
            base.record = record;
        }
    }

    /// Exact length of [`export`](Self::export)'s output.
    pub fn export_len(&self) -> usize {
        let base = self.base.as_ref().map_or(0, |b| var_bytes_len(b.record.len()));
        let spans: usize = self.records().skip(usize::from(self.base.is_some())).map(|r| var_bytes_len(r.len())).sum();
        EXPORT_MAGIC.len() + 1 + 1 + base + varint_len(self.spans as u64) + spans
    }

    /// The index state in the versioned persistence format (module docs).
    pub fn export(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.export_len());
        out.put_slice(EXPORT_MAGIC);
        out.put_u8(EXPORT_VERSION);
        match &self.base {
            Some(b) => {
                out.put_u8(1);
                put_var_bytes(&mut out, &b.record);
            }
            None => out.put_u8(0),
        }
        put_varint(&mut out, self.spans as u64);
        for rec in self.records().skip(usize::from(self.base.is_some())) {
            put_var_bytes(&mut out, rec);
        }
        out
    }

    /// Restores an index from [`export`](Self::export) output, zero-copy (records are slices of `data`). Strict:
    /// magic and version, every record valid under the insert rules, the right kind in each slot, spans strictly
    /// ascending by (peer, start, end), no trailing bytes. Never panics.
    pub fn import(data: &Bytes) -> Result<Self, EloError> {
        let mut r = Reader::new(data);
        let magic: [u8; 4] = r.array(EloField::ExportHeader)?;
        if &magic != EXPORT_MAGIC {
            return Err(EloError::BadExportHeader { offset: 0 });
        }
        let version = r.u8(EloField::ExportHeader)?;
        if version != EXPORT_VERSION {
            return Err(EloError::BadExportHeader { offset: 4 });
        }
        let mut index = EloIndex::new();
        let flag_at = r.pos();
        match r.u8(EloField::ExportSnapshot)? {
            0 => {}
            1 => {
                let bytes = r.var_bytes(EloField::ExportSnapshot)?;
                let at = r.pos() - bytes.len();
                let rec = Record::parse(bytes).map_err(|e| e.shifted(at))?;
                check_index_counters(&rec, at)?;
                let Some(vv) = rec.snapshot_vv() else { return Err(EloError::ExportNotCanonical { offset: at }) };
                let stored = bytes_of(data, bytes);
                let vv = vv.iter().map(|e| (bytes_of(&stored, e.peer), e.counter)).collect();
                index.held_bytes += stored.len();
                index.base = Some(Base { record: stored, vv });
            }
            _ => return Err(EloError::BadExportHeader { offset: flag_at }),
        }
        let count_at = r.pos();
        let count = r.varint_u32(EloField::ExportCount)?;
        if count as usize > r.remaining() {
            return Err(EloError::CountOutOfBounds {
                offset: count_at,
                field: EloField::ExportCount,
                count,
                remaining: r.remaining(),
            });
        }
        let mut prev: Option<(&[u8], u32, u32)> = None;
        for _ in 0..count {
            let bytes = r.var_bytes(EloField::ExportRecord)?;
            let at = r.pos() - bytes.len();
            let rec = Record::parse(bytes).map_err(|e| e.shifted(at))?;
            check_index_counters(&rec, at)?;
            let Some(s) = rec.span() else { return Err(EloError::ExportNotCanonical { offset: at }) };
            let key = (s.peer, s.start, s.end);
            if prev.is_some_and(|p| key <= p) {
                return Err(EloError::ExportNotCanonical { offset: at });
            }
            prev = Some(key);
            if !index.peers.contains_key(s.peer) {
                let spans = PeerSpans { numeric: parse_peer_id(s.peer), ..PeerSpans::default() };
                index.peers.insert(Bytes::copy_from_slice(s.peer), spans);
            }
            if let Some(spans) = index.peers.get_mut(s.peer) {
                spans.by_start.insert((s.start, s.end));
                spans.by_end.insert((s.end, s.start), bytes_of(data, bytes));
            }
            index.spans += 1;
            index.held_bytes += bytes.len();
        }
        if r.remaining() != 0 {
            return Err(EloError::TrailingBytes { offset: r.pos(), count: r.remaining() });
        }
        Ok(index)
    }

    /// [`import`](Self::import) from a borrowed buffer: copies it once into a new buffer that the restored
    /// records then share.
    pub fn import_slice(data: &[u8]) -> Result<Self, EloError> {
        EloIndex::import(&Bytes::copy_from_slice(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elo::{encode_container, seal, EloKey, RecordHeader, SnapshotEntry};

    /// A deterministic, non-zero "RNG" for building records (the index never decrypts).
    struct Counter(u64);
    impl rand_core::TryRng for Counter {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 += 1;
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for chunk in dst.chunks_mut(8) {
                let v = self.try_next_u64()?.to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Counter {}

    struct Fx {
        rng: Counter,
        key: EloKey,
    }

    impl Fx {
        fn new() -> Self {
            Fx { rng: Counter(0), key: EloKey::aes128(&[3; 16]) }
        }
        fn delta(&mut self, peer: &str, start: u32, end: u32) -> Vec<u8> {
            self.delta_key(peer, start, end, "k")
        }
        fn delta_key(&mut self, peer: &str, start: u32, end: u32, key_id: &str) -> Vec<u8> {
            seal(&RecordHeader::delta(peer.as_bytes(), start, end, key_id), &self.key, b"u", &mut self.rng).unwrap()
        }
        fn snap(&mut self, vv: &[(&str, u32)]) -> Vec<u8> {
            let mut e: Vec<SnapshotEntry<'_>> =
                vv.iter().map(|(p, c)| SnapshotEntry { peer: p.as_bytes(), counter: *c }).collect();
            e.sort_unstable();
            seal(&RecordHeader::snapshot(&e, "k"), &self.key, b"s", &mut self.rng).unwrap()
        }
    }

    fn c(records: &[&Vec<u8>]) -> Bytes {
        Bytes::from(encode_container(records).unwrap())
    }

    fn vv(entries: &[(u64, u32)]) -> VersionVector {
        VersionVector::from_entries(entries.iter().copied()).unwrap()
    }

    fn missing(index: &EloIndex, v: &VersionVector) -> Vec<Vec<u8>> {
        index.missing(v).map(|b| b.to_vec()).collect()
    }

    #[test]
    fn insert_is_all_or_nothing() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let good = fx.delta("1", 0, 5);
        index.insert(&c(&[&good])).unwrap();
        let before = index.export();
        let other = fx.delta("2", 0, 5);
        let covering = fx.delta("1", 0, 9);
        // The last record claims an 11-byte IV (its length byte follows kind, peer, start, end and key id).
        let mut bad = fx.delta("3", 0, 5);
        bad[1 + 2 + 1 + 1 + 2] = 11;
        assert!(index.insert(&c(&[&other, &covering, &bad])).is_err());
        assert_eq!(index.export(), before);
        assert_eq!(index.len(), 1);
        // Same with the index-only rule (counter over i32::MAX) on the last record.
        let huge = fx.delta("4", 0, MAX_VV_COUNTER + 1);
        let e = index.insert(&c(&[&other, &huge])).unwrap_err();
        assert!(matches!(e, EloError::CounterTooLarge { field: EloField::End, .. }), "{e:?}");
        assert_eq!(index.export(), before);
    }

    #[test]
    fn index_rejects_counters_over_i32_max() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let ok = fx.delta("1", 0, MAX_VV_COUNTER);
        index.insert(&c(&[&ok])).unwrap();
        let rec = fx.delta("1", 0, MAX_VV_COUNTER + 1);
        let bytes = c(&[&rec]);
        let e = index.insert(&bytes).unwrap_err();
        // count + prefix + kind + peer(2) + start(1)
        let at = 1 + 1 + 1 + 2 + 1;
        assert_eq!(
            e,
            EloError::CounterTooLarge {
                offset: at,
                field: EloField::End,
                value: u64::from(MAX_VV_COUNTER) + 1,
                max: u64::from(MAX_VV_COUNTER)
            }
        );
        let snap = fx.snap(&[("1", 1), ("2", MAX_VV_COUNTER + 1)]);
        let e = index.insert(&c(&[&snap])).unwrap_err();
        assert!(matches!(e, EloError::CounterTooLarge { field: EloField::SnapshotCounter, .. }), "{e:?}");
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn span_override_removes_covered_spans_of_the_same_peer() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let (a, b, other) = (fx.delta("1", 0, 3), fx.delta("1", 3, 6), fx.delta("2", 0, 6));
        index.insert(&c(&[&a, &b, &other])).unwrap();
        let wide = fx.delta("1", 0, 6);
        let s = index.insert(&c(&[&wide])).unwrap();
        assert_eq!(s.spans_overridden, 2);
        assert_eq!(missing(&index, &VersionVector::new()), [wide.clone(), other.clone()]);
    }

    #[test]
    fn span_override_ignores_key_id() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let old = fx.delta_key("1", 2, 4, "old-key");
        index.insert(&c(&[&old])).unwrap();
        let new = fx.delta_key("1", 2, 4, "new-key");
        index.insert(&c(&[&new])).unwrap();
        assert_eq!(missing(&index, &VersionVector::new()), [new]);
    }

    #[test]
    fn partial_overlaps_and_inner_spans_coexist() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let a = fx.delta("1", 0, 5);
        let b = fx.delta("1", 3, 8); // partial overlap: both kept
        let inner = fx.delta("1", 1, 2); // inside a: added, a kept
        index.insert(&c(&[&a, &b, &inner])).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(missing(&index, &VersionVector::new()), [inner, a, b]);
    }

    #[test]
    fn missing_returns_spans_ending_after_the_client_counter() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let (a, b, x) = (fx.delta("1", 0, 3), fx.delta("1", 3, 6), fx.delta("2", 0, 2));
        index.insert(&c(&[&a, &b, &x])).unwrap();
        assert_eq!(missing(&index, &vv(&[(1, 3)])), [b.clone(), x.clone()]);
        assert_eq!(missing(&index, &vv(&[(1, 4), (2, 2)])), core::slice::from_ref(&b));
        assert!(missing(&index, &vv(&[(1, 6), (2, 9)])).is_empty());
        assert_eq!(missing(&index, &VersionVector::new()).len(), 3);
    }

    #[test]
    fn opaque_peer_is_relayed_always_backfilled_and_not_in_version() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let raw = seal(&RecordHeader::delta(&[1, 2, 3, 4], 1, 3, "k"), &fx.key, b"x", &mut fx.rng).unwrap();
        let leading_zero = fx.delta("007", 0, 9);
        let numeric = fx.delta("7", 0, 2);
        index.insert(&c(&[&raw, &leading_zero, &numeric])).unwrap();
        assert_eq!(index.version(), vv(&[(7, 2)]));
        let full = vv(&[(7, 100), (0, 100), (u64::MAX, 100)]);
        // Peers ascend by bytes: 01020304 < "007".
        assert_eq!(missing(&index, &full), [raw, leading_zero]);
    }

    #[test]
    fn version_is_max_end_per_numeric_peer_including_the_base() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        assert_eq!(index.version().encode(), [0]);
        let (a, b, c2) = (fx.delta("3", 0, 2), fx.delta("3", 5, 9), fx.delta("300", 0, 1));
        index.insert(&c(&[&a, &b, &c2])).unwrap();
        assert_eq!(index.version(), vv(&[(3, 9), (300, 1)]));
        let snap = fx.snap(&[("3", 4), ("300", 7), ("x", 5)]);
        index.insert(&c(&[&snap])).unwrap();
        assert_eq!(index.version(), vv(&[(3, 9), (300, 7)]));
    }

    #[test]
    fn snapshot_becomes_base_and_prunes_covered_spans() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let (a, b, straddle, other) =
            (fx.delta("1", 0, 3), fx.delta("1", 3, 6), fx.delta("1", 5, 8), fx.delta("2", 0, 4));
        index.insert(&c(&[&a, &b, &straddle, &other])).unwrap();
        let snap = fx.snap(&[("1", 6), ("2", 3)]);
        let s = index.insert(&c(&[&snap])).unwrap();
        assert_eq!((s.snapshots_retained, s.spans_pruned), (1, 2));
        assert_eq!(index.base_snapshot().map(|b| b.to_vec()), Some(snap.clone()));
        assert_eq!(index.len(), 3);
        assert_eq!(missing(&index, &VersionVector::new()), [snap.clone(), straddle.clone(), other.clone()]);
        // A dominating snapshot replaces the base and prunes further.
        let snap2 = fx.snap(&[("1", 8), ("2", 4)]);
        index.insert(&c(&[&snap2])).unwrap();
        assert_eq!(missing(&index, &VersionVector::new()), [snap2]);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn stale_or_concurrent_snapshot_is_not_retained() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let base = fx.snap(&[("1", 5), ("2", 5)]);
        index.insert(&c(&[&base])).unwrap();
        let stale = fx.snap(&[("1", 6), ("2", 4)]);
        let s = index.insert(&c(&[&stale])).unwrap();
        assert_eq!((s.snapshots_retained, s.snapshots_ignored), (0, 1));
        assert_eq!(index.base_snapshot().map(|b| b.to_vec()), Some(base.clone()));
        // Equal version vectors replace (e.g. a re-snapshot under a new key).
        let same = fx.snap(&[("1", 5), ("2", 5)]);
        assert_eq!(index.insert(&c(&[&same])).unwrap().snapshots_retained, 1);
        // Zero entries in the base do not block a successor that omits them.
        let zero = fx.snap(&[("1", 5), ("2", 5), ("3", 0)]);
        index.insert(&c(&[&zero])).unwrap();
        let next = fx.snap(&[("1", 5), ("2", 6)]);
        assert_eq!(index.insert(&c(&[&next])).unwrap().snapshots_retained, 1);
    }

    #[test]
    fn base_is_sent_only_to_clients_lacking_part_of_it() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let snap = fx.snap(&[("1", 5), ("2", 3)]);
        index.insert(&c(&[&snap])).unwrap();
        assert!(missing(&index, &vv(&[(1, 5), (2, 3)])).is_empty());
        assert_eq!(missing(&index, &vv(&[(1, 5), (2, 2)])), core::slice::from_ref(&snap));
        // A snapshot naming an opaque peer is always lacking.
        let opaque = fx.snap(&[("1", 6), ("2", 3), ("p", 1)]);
        index.insert(&c(&[&opaque])).unwrap();
        assert_eq!(missing(&index, &vv(&[(1, 9), (2, 9)])), [opaque]);
        // An empty snapshot (an empty document) is never lacking.
        let mut fresh = EloIndex::new();
        let empty = fx.snap(&[]);
        fresh.insert(&c(&[&empty])).unwrap();
        assert!(missing(&fresh, &VersionVector::new()).is_empty());
        assert_eq!(fresh.len(), 1);
    }

    #[test]
    fn insert_is_zero_copy() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let a = fx.delta("1", 0, 3);
        let bytes = c(&[&a]);
        index.insert(&bytes).unwrap();
        let held = index.records().next().unwrap().clone();
        let base = bytes.as_ptr() as usize;
        assert!((held.as_ptr() as usize) > base && (held.as_ptr() as usize) < base + bytes.len());
        index.compact();
        let held = index.records().next().unwrap().clone();
        assert!(!((held.as_ptr() as usize) >= base && (held.as_ptr() as usize) < base + bytes.len()));
        assert_eq!(held.to_vec(), a);
        assert_eq!(index.held_bytes(), a.len());
    }

    #[test]
    fn export_import_round_trip() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let recs = [fx.delta("1", 0, 5), fx.delta("1", 1, 2), fx.delta("zz", 3, 4), fx.snap(&[("1", 0), ("2", 1)])];
        index.insert(&c(&recs.iter().collect::<Vec<_>>())).unwrap();
        let late = fx.delta("2", 0, 1); // below the base: kept, not pruned after the fact
        index.insert(&c(&[&late])).unwrap();
        let out = index.export();
        assert_eq!(out.len(), index.export_len());
        let back = EloIndex::import(&Bytes::from(out.clone())).unwrap();
        assert_eq!(back.export(), out);
        assert_eq!(back.len(), index.len());
        assert_eq!(back.held_bytes(), index.held_bytes());
        assert_eq!(back.version(), index.version());
        for v in [VersionVector::new(), vv(&[(1, 1)]), vv(&[(1, 5), (2, 1)])] {
            assert_eq!(missing(&back, &v), missing(&index, &v));
        }
        let empty = EloIndex::new().export();
        assert_eq!(empty, b"ELOI\x01\x00\x00");
        assert!(EloIndex::import_slice(&empty).unwrap().is_empty());
    }

    #[test]
    fn import_is_strict() {
        let mut fx = Fx::new();
        let (a, b, s) = (fx.delta("1", 0, 2), fx.delta("1", 2, 4), fx.snap(&[("1", 1)]));
        let mut good = Vec::from(&b"ELOI\x01\x00"[..]);
        put_varint(&mut good, 2);
        put_var_bytes(&mut good, &a);
        put_var_bytes(&mut good, &b);
        assert_eq!(EloIndex::import_slice(&good).unwrap().len(), 2);
        // Bad magic, bad version, bad base flag.
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(EloIndex::import_slice(&bad).unwrap_err(), EloError::BadExportHeader { offset: 0 });
        let mut bad = good.clone();
        bad[4] = 2;
        assert_eq!(EloIndex::import_slice(&bad).unwrap_err(), EloError::BadExportHeader { offset: 4 });
        let mut bad = good.clone();
        bad[5] = 2;
        assert_eq!(EloIndex::import_slice(&bad).unwrap_err(), EloError::BadExportHeader { offset: 5 });
        // Out of order, and duplicated.
        for pair in [[&b, &a], [&a, &a]] {
            let mut bad = Vec::from(&b"ELOI\x01\x00"[..]);
            put_varint(&mut bad, 2);
            put_var_bytes(&mut bad, pair[0]);
            put_var_bytes(&mut bad, pair[1]);
            assert!(matches!(EloIndex::import_slice(&bad).unwrap_err(), EloError::ExportNotCanonical { .. }));
        }
        // A snapshot in a span slot, a span in the base slot.
        let mut bad = Vec::from(&b"ELOI\x01\x00"[..]);
        put_varint(&mut bad, 1);
        put_var_bytes(&mut bad, &s);
        assert!(matches!(EloIndex::import_slice(&bad).unwrap_err(), EloError::ExportNotCanonical { .. }));
        let mut bad = Vec::from(&b"ELOI\x01\x01"[..]);
        put_var_bytes(&mut bad, &a);
        put_varint(&mut bad, 0);
        assert!(matches!(EloIndex::import_slice(&bad).unwrap_err(), EloError::ExportNotCanonical { .. }));
        // Trailing bytes, and a count beyond the input.
        let mut bad = good.clone();
        bad.push(0);
        assert!(matches!(EloIndex::import_slice(&bad).unwrap_err(), EloError::TrailingBytes { .. }));
        let mut bad = Vec::from(&b"ELOI\x01\x00"[..]);
        put_varint(&mut bad, 1_000_000);
        assert!(matches!(EloIndex::import_slice(&bad).unwrap_err(), EloError::CountOutOfBounds { .. }));
        assert!(EloIndex::import_slice(&[]).is_err());
    }

    #[test]
    fn backfill_packs_containers_under_the_limit() {
        let mut fx = Fx::new();
        let mut index = EloIndex::new();
        let recs: Vec<Vec<u8>> = (0..20).map(|i| fx.delta("1", i, i + 1)).collect();
        index.insert(&c(&recs.iter().collect::<Vec<_>>())).unwrap();
        let out = index.backfill(&VersionVector::new(), 200);
        assert!(out.len() > 1);
        let mut all = Vec::new();
        for b in &out {
            assert!(b.len() <= 200);
            all.extend(Container::decode(b).unwrap().raw_records().map(|r| r.to_vec()));
        }
        assert_eq!(all, recs);
        assert!(index.backfill(&vv(&[(1, 20)]), 200).is_empty());
    }
}
