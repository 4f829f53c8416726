//! Loro version vectors in the byte format of Loro's `VersionVector.encode()`, and the decimal peer ids that
//! %ELO records carry.
//!
//! JoinRequest.version and JoinResponseOk.version of a %ELO room carry this format: it is what the official
//! TypeScript %ELO adaptor sends and decodes.
//!
//! ```text
//! vv := varUint n, n × (varUint peer (u64), zigzag-varint counter (i32))
//! {3: 2, 300: 1}  →  02 03 04 ac02 02
//! ```
//!
//! Loro writes the entries in hash-map order; [`VersionVector::decode`] accepts any order and
//! [`VersionVector::encode`] writes ascending peers. Decoding is stricter than Loro's: varints must be minimal,
//! counters non-negative, peers unique, and the count must fit the bytes that remain.

use alloc::vec::Vec;
use core::fmt;

use bytes::{BufMut, Bytes};

use super::error::{EloError, EloField};
use crate::wire::reader::{put_varint, varint_len, Reader};

/// Largest counter a Loro version vector can carry (Loro counters are `i32`).
pub const MAX_VV_COUNTER: u32 = i32::MAX as u32;

/// A Loro version vector: for each peer, the number of its operations seen (the counter one past the last).
///
/// Entries are kept sorted by peer, unique, and non-zero (a zero counter means the same as no entry, so it is
/// dropped on decode and by [`set`](Self::set)).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct VersionVector {
    entries: Vec<(u64, u32)>,
}

impl VersionVector {
    /// The empty vector.
    pub const fn new() -> Self {
        VersionVector { entries: Vec::new() }
    }

    /// A vector from `(peer, counter)` pairs in any order; fails on a repeated peer or a counter over
    /// [`MAX_VV_COUNTER`].
    pub fn from_entries<I: IntoIterator<Item = (u64, u32)>>(entries: I) -> Result<Self, EloError> {
        let mut v: Vec<(u64, u32)> = Vec::new();
        for (peer, counter) in entries {
            check_counter(counter, 0)?;
            v.push((peer, counter));
        }
        v.sort_unstable_by_key(|e| e.0);
        if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(EloError::DuplicatePeer { offset: 0, peer: w[0].0 });
        }
        v.retain(|e| e.1 != 0);
        Ok(VersionVector { entries: v })
    }

    /// Decodes Loro's `VersionVector.encode()` bytes. An empty input is the empty vector (a client with no
    /// version sends no bytes). Never panics; allocates at most one entry per two input bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, EloError> {
        if bytes.is_empty() {
            return Ok(VersionVector::new());
        }
        let mut r = Reader::new(bytes);
        let count = r.varint_u32(EloField::VersionCount)?;
        // An entry takes at least two bytes.
        if count as usize > r.remaining() / 2 {
            return Err(EloError::CountOutOfBounds {
                offset: 0,
                field: EloField::VersionCount,
                count,
                remaining: r.remaining(),
            });
        }
        // (peer, counter, offset of the entry)
        let mut v: Vec<(u64, u32, usize)> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let at = r.pos();
            let peer = r.varint_u64(EloField::VersionPeer)?;
            let counter_at = r.pos();
            let zigzag = r.varint_u32(EloField::VersionCounter)?;
            if zigzag & 1 == 1 {
                return Err(EloError::NegativeCounter { offset: counter_at });
            }
            v.push((peer, zigzag >> 1, at));
        }
        if r.remaining() != 0 {
            return Err(EloError::TrailingBytes { offset: r.pos(), count: r.remaining() });
        }
        v.sort_unstable_by_key(|e| (e.0, e.2));
        if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(EloError::DuplicatePeer { offset: w[1].2, peer: w[1].0 });
        }
        Ok(VersionVector { entries: v.into_iter().filter(|e| e.1 != 0).map(|e| (e.0, e.1)).collect() })
    }

    /// The counter of `peer` (0 when absent).
    pub fn get(&self, peer: u64) -> u32 {
        self.entries.binary_search_by_key(&peer, |e| e.0).map_or(0, |i| self.entries[i].1)
    }

    /// Sets the counter of `peer` (0 removes it). Fails for a counter over [`MAX_VV_COUNTER`].
    pub fn set(&mut self, peer: u64, counter: u32) -> Result<(), EloError> {
        check_counter(counter, 0)?;
        match self.entries.binary_search_by_key(&peer, |e| e.0) {
            Ok(i) if counter == 0 => {
                self.entries.remove(i);
            }
            Ok(i) => self.entries[i].1 = counter,
            Err(_) if counter == 0 => {}
            Err(i) => self.entries.insert(i, (peer, counter)),
        }
        Ok(())
    }

    /// Raises the counter of `peer` to at least `counter`.
    pub fn raise(&mut self, peer: u64, counter: u32) -> Result<(), EloError> {
        if counter > self.get(peer) {
            self.set(peer, counter)?;
        }
        Ok(())
    }

    /// Number of (non-zero) entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no peer has a non-zero counter.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(peer, counter)` entries, ascending by peer.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u64, u32)> + '_ {
        self.entries.iter().copied()
    }

    /// True when every counter of `other` is at most the one here.
    pub fn includes(&self, other: &VersionVector) -> bool {
        other.iter().all(|(p, c)| self.get(p) >= c)
    }

    /// Exact length of [`encode`](Self::encode)'s output.
    pub fn encoded_len(&self) -> usize {
        varint_len(self.entries.len() as u64)
            + self.entries.iter().map(|&(p, c)| varint_len(p) + varint_len(u64::from(c) << 1)).sum::<usize>()
    }

    fn write<B: BufMut + ?Sized>(&self, out: &mut B) {
        put_varint(out, self.entries.len() as u64);
        for &(peer, counter) in &self.entries {
            put_varint(out, peer);
            put_varint(out, u64::from(counter) << 1);
        }
    }

    /// Writes the vector into the start of `out`; returns the bytes written. On error `out` is untouched.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, EloError> {
        let len = self.encoded_len();
        let available = out.len();
        let mut dst = out.get_mut(..len).ok_or(EloError::BufferTooSmall { required: len, available })?;
        self.write(&mut dst);
        Ok(len)
    }

    /// The vector in Loro's byte format, ascending by peer (the empty vector is `00`, as Loro writes it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write(&mut out);
        out
    }

    /// [`encode`](Self::encode) into a [`Bytes`].
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.encode())
    }
}

fn check_counter(counter: u32, offset: usize) -> Result<(), EloError> {
    if counter > MAX_VV_COUNTER {
        return Err(EloError::CounterTooLarge {
            offset,
            field: EloField::VersionCounter,
            value: u64::from(counter),
            max: u64::from(MAX_VV_COUNTER),
        });
    }
    Ok(())
}

impl fmt::Debug for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(p, c)| (p, c))).finish()
    }
}

/// The Loro peer a record peer id names, when it is the canonical decimal ASCII of a `u64` (digits only, no sign,
/// no leading zero except `"0"` itself, at most `u64::MAX`): the form the official adaptor writes with
/// `String(peer)`. Anything else is an opaque peer id.
pub fn parse_peer_id(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 || (bytes.len() > 1 && bytes[0] == b'0') {
        return None;
    }
    let mut v: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// The record peer id of a Loro peer: its decimal ASCII, on the stack.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerIdBuf {
    len: u8,
    buf: [u8; 20],
}

impl PeerIdBuf {
    /// The decimal ASCII of `peer`.
    pub fn new(peer: u64) -> Self {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        let mut v = peer;
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let len = tmp.len() - i;
        let mut buf = [0u8; 20];
        buf[..len].copy_from_slice(&tmp[i..]);
        PeerIdBuf { len: len as u8, buf }
    }

    /// The ASCII bytes, as a record's peer id.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for PeerIdBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for PeerIdBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ASCII digits only.
        f.write_str(core::str::from_utf8(self.as_bytes()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_decimal_round_trip() {
        for p in [0u64, 1, 9, 10, 300, 12345678901, u64::MAX] {
            let b = PeerIdBuf::new(p);
            assert_eq!(b.as_bytes(), alloc::format!("{p}").as_bytes());
            assert_eq!(parse_peer_id(b.as_bytes()), Some(p));
        }
    }

    #[test]
    fn non_canonical_peer_ids_are_opaque() {
        for s in ["", "007", "00", "-1", "+1", "1a", " 1", "18446744073709551616", "123456789012345678901"] {
            assert_eq!(parse_peer_id(s.as_bytes()), None, "{s:?}");
        }
        assert_eq!(parse_peer_id(&[1, 2, 3, 4]), None);
    }

    #[test]
    fn set_and_raise_keep_entries_sorted_and_non_zero() {
        let mut v = VersionVector::new();
        v.set(300, 1).unwrap();
        v.set(3, 2).unwrap();
        v.raise(3, 1).unwrap();
        v.raise(7, 5).unwrap();
        assert_eq!(v.iter().collect::<Vec<_>>(), [(3, 2), (7, 5), (300, 1)]);
        v.set(7, 0).unwrap();
        assert_eq!(v.len(), 2);
        assert!(v.set(1, MAX_VV_COUNTER + 1).is_err());
    }
}
