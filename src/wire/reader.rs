//! Bounds-checked primitive reader and writer helpers shared by the wire codec and the %ELO codec.
//!
//! Every read checks the bytes that remain before touching them; lengths are compared with what is left before a
//! slice is taken, so no wire-supplied number ever sizes an allocation. Varints are LEB128, accepted only in their
//! shortest form.

use bytes::BufMut;

/// What went wrong at the primitive level; the caller's field type says where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawKind {
    /// The input ended; `needed` more bytes were required.
    Truncated { needed: usize },
    /// A varint exceeds the maximum for its width.
    Overflow,
    /// A varint is not minimally encoded.
    NotCanonical,
    /// A length prefix exceeds the remaining bytes.
    LengthOutOfBounds { len: u64, remaining: usize },
    /// A string is not UTF-8.
    InvalidUtf8,
}

/// A primitive read error with its offset and the field being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawError<F> {
    pub offset: usize,
    pub field: F,
    pub kind: RawKind,
}

/// A cursor over a borrowed byte slice.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Current offset from the start of the input.
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes consumed between `start` and the current position.
    #[inline]
    pub(crate) fn consumed_since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or(&[])
    }

    fn err<F>(&self, offset: usize, field: F, kind: RawKind) -> RawError<F> {
        RawError { offset, field, kind }
    }

    #[inline(always)]
    pub(crate) fn u8<F: Copy>(&mut self, field: F) -> Result<u8, RawError<F>> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.err(self.pos, field, RawKind::Truncated { needed: 1 })),
        }
    }

    #[inline(always)]
    pub(crate) fn bytes<F: Copy>(&mut self, n: usize, field: F) -> Result<&'a [u8], RawError<F>> {
        let rem = self.remaining();
        if n > rem {
            return Err(self.err(self.pos, field, RawKind::Truncated { needed: n - rem }));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline(always)]
    pub(crate) fn array<const N: usize, F: Copy>(&mut self, field: F) -> Result<[u8; N], RawError<F>> {
        let s = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// A canonical LEB128 value of at most `max_bytes` bytes whose value is ≤ `max`.
    #[inline(always)]
    fn varint<F: Copy>(&mut self, field: F, max_bytes: usize, max: u64) -> Result<u64, RawError<F>> {
        // Fast path: a single byte (every count and length below 128). It is canonical by construction.
        if let Some(&b) = self.buf.get(self.pos) {
            if b < 0x80 && u64::from(b) <= max {
                self.pos += 1;
                return Ok(u64::from(b));
            }
        }
        self.varint_multi(field, max_bytes, max)
    }

    /// The general case of [`varint`](Self::varint), kept out of line so the one-byte path stays small.
    #[inline(never)]
    fn varint_multi<F: Copy>(&mut self, field: F, max_bytes: usize, max: u64) -> Result<u64, RawError<F>> {
        let start = self.pos;
        let mut result: u64 = 0;
        for i in 0..max_bytes {
            let byte = match self.buf.get(self.pos) {
                Some(&b) => b,
                None => return Err(self.err(self.pos, field, RawKind::Truncated { needed: 1 })),
            };
            self.pos += 1;
            let shift = 7 * i as u32;
            let part = u64::from(byte & 0x7f);
            // At shift 63 only one bit still fits in a u64; more would be silently dropped.
            if shift == 63 && part > 1 {
                return Err(self.err(start, field, RawKind::Overflow));
            }
            result |= part << shift;
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(self.err(start, field, RawKind::NotCanonical));
                }
                if result > max {
                    return Err(self.err(start, field, RawKind::Overflow));
                }
                return Ok(result);
            }
        }
        Err(self.err(start, field, RawKind::Overflow))
    }

    /// A canonical LEB128 value ≤ `u32::MAX` (at most 5 bytes).
    #[inline(always)]
    pub(crate) fn varint_u32<F: Copy>(&mut self, field: F) -> Result<u32, RawError<F>> {
        self.varint(field, 5, u64::from(u32::MAX)).map(|v| v as u32)
    }

    /// A canonical LEB128 value ≤ `u64::MAX` (at most 10 bytes).
    pub(crate) fn varint_u64<F: Copy>(&mut self, field: F) -> Result<u64, RawError<F>> {
        self.varint(field, 10, u64::MAX)
    }

    /// A varint length followed by that many bytes; the length is checked against what remains first.
    #[inline(always)]
    pub(crate) fn var_bytes<F: Copy>(&mut self, field: F) -> Result<&'a [u8], RawError<F>> {
        let at = self.pos;
        let len = self.varint_u32(field)?;
        let rem = self.remaining();
        if len as usize > rem {
            return Err(self.err(at, field, RawKind::LengthOutOfBounds { len: u64::from(len), remaining: rem }));
        }
        self.bytes(len as usize, field)
    }

    /// A `var_bytes` that must be UTF-8.
    pub(crate) fn var_str<F: Copy>(&mut self, field: F) -> Result<&'a str, RawError<F>> {
        let bytes = self.var_bytes(field)?;
        core::str::from_utf8(bytes).map_err(|_| self.err(self.pos - bytes.len(), field, RawKind::InvalidUtf8))
    }
}

/// Fast-path primitives over a shrinking slice: each returns what it read and the bytes after it, or `None` for
/// anything it does not accept (the input ended, a varint is not canonical or exceeds `u32::MAX`). They accept
/// exactly what the [`Reader`] methods of the same name accept, so a caller that gets `None` can re-read with a
/// [`Reader`] for the precise error. No error is built here, which keeps the accepting path short.
///
/// A canonical LEB128 value ≤ `u32::MAX`.
#[inline(always)]
pub(crate) fn take_varint_u32(buf: &[u8]) -> Option<(u32, &[u8])> {
    let (&b0, rest) = buf.split_first()?;
    if b0 < 0x80 {
        return Some((u32::from(b0), rest));
    }
    // Two bytes (lengths 128..16383: a 128-byte room id, a 1 KiB update) stay inline too.
    let (&b1, rest) = rest.split_first()?;
    if b1 < 0x80 {
        // A final zero byte after a continuation byte is the non-canonical form of a shorter varint.
        return if b1 == 0 { None } else { Some((u32::from(b0 & 0x7f) | (u32::from(b1) << 7), rest)) };
    }
    take_varint_u32_long(buf)
}

/// The 3- to 5-byte case of [`take_varint_u32`], out of line.
#[inline(never)]
fn take_varint_u32_long(buf: &[u8]) -> Option<(u32, &[u8])> {
    let mut result: u64 = 0;
    for i in 0..5 {
        let byte = *buf.get(i)?;
        result |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return None;
            }
            let v = u32::try_from(result).ok()?;
            return Some((v, buf.get(i + 1..)?));
        }
    }
    None
}

/// A varint length followed by that many bytes: `(bytes, rest)`.
#[inline(always)]
pub(crate) fn take_var_bytes(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take_varint_u32(buf)?;
    rest.split_at_checked(len as usize)
}

/// Bytes a canonical LEB128 encoding of `v` takes.
#[inline]
pub(crate) const fn varint_len(v: u64) -> usize {
    // Most lengths and counts take one byte; the rest is ceil(bits / 7), computed as (bits * 9 + 64) / 64, which
    // equals it for every bit count from 1 to 64 (the unit test checks each).
    if v < 0x80 {
        return 1;
    }
    let bits = 64 - v.leading_zeros() as usize;
    (bits * 9 + 64) >> 6
}

/// Writes `v` as canonical LEB128.
#[inline]
pub(crate) fn put_varint<B: BufMut + ?Sized>(out: &mut B, mut v: u64) {
    if v < 0x80 {
        out.put_u8(v as u8);
        return;
    }
    let mut tmp = [0u8; 10];
    let mut n = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            tmp[n] = byte;
            n += 1;
            break;
        }
        tmp[n] = byte | 0x80;
        n += 1;
    }
    out.put_slice(&tmp[..n]);
}

/// Writes a varint length followed by the bytes.
#[inline]
pub(crate) fn put_var_bytes<B: BufMut + ?Sized>(out: &mut B, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.put_slice(bytes);
}

/// Encoded length of `var_bytes` holding `len` bytes.
#[inline]
pub(crate) const fn var_bytes_len(len: usize) -> usize {
    varint_len(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varint_len_matches_ceil_bits_over_seven() {
        for bits in 1..=64u32 {
            let low = if bits == 1 { 0 } else { 1u64 << (bits - 1) };
            let high = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
            for v in [low, high] {
                assert_eq!(varint_len(v), bits.div_ceil(7) as usize, "{v}");
                assert_eq!(enc(v).len(), varint_len(v), "{v}");
            }
        }
    }

    #[test]
    fn varint_lengths_match_encoding() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u32::MAX as u64, u64::MAX] {
            assert_eq!(enc(v).len(), varint_len(v), "{v}");
            let e = enc(v);
            assert_eq!(Reader::new(&e).varint_u64(()).unwrap(), v);
        }
    }

    #[test]
    fn varint_rejects_non_canonical_and_overflow() {
        assert_eq!(Reader::new(&[0x81, 0x00]).varint_u32(()).unwrap_err().kind, RawKind::NotCanonical);
        assert_eq!(Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x10]).varint_u32(()).unwrap_err().kind, RawKind::Overflow);
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).varint_u32(()).unwrap(), u32::MAX);
        assert_eq!(Reader::new(&[0xff; 6]).varint_u32(()).unwrap_err().kind, RawKind::Overflow);
        // ff×9 7f would be u64::MAX with silently dropped bits in the official decoder.
        let mut v = [0xffu8; 10];
        v[9] = 0x7f;
        assert_eq!(Reader::new(&v).varint_u64(()).unwrap_err().kind, RawKind::Overflow);
        v[9] = 0x01;
        assert_eq!(Reader::new(&v).varint_u64(()).unwrap(), u64::MAX);
        assert_eq!(Reader::new(&[0x80]).varint_u32(()).unwrap_err().kind, RawKind::Truncated { needed: 1 });
    }
}
