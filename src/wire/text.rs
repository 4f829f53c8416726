//! [`Utf8Bytes`]: a shared, immutable, UTF-8-validated byte buffer (a `Bytes` that is known to be a string).

use alloc::string::String;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;

use bytes::Bytes;

/// A cheaply clonable, immutable UTF-8 string: short strings (up to [`Utf8Bytes::INLINE_CAPACITY`] bytes, which
/// covers typical room ids) are held inline, so cloning and dropping them touches no shared counter and no heap;
/// longer ones are a [`Bytes`] handle, so they can be a zero-copy slice of a received frame.
///
/// Ordering, equality and hashing are those of the string (byte-wise), so a `BTreeMap<Utf8Bytes, _>` can be
/// queried with a `&str`.
#[derive(Clone)]
pub struct Utf8Bytes(Repr);

#[derive(Clone)]
enum Repr {
    /// `len` bytes at the start of `buf`, valid UTF-8.
    Inline { len: u8, buf: [u8; Utf8Bytes::INLINE_CAPACITY] },
    /// Valid UTF-8.
    Shared(Bytes),
}

impl Default for Utf8Bytes {
    fn default() -> Self {
        Utf8Bytes(Repr::Inline { len: 0, buf: [0; Utf8Bytes::INLINE_CAPACITY] })
    }
}

impl Utf8Bytes {
    /// Strings up to this many bytes are stored inline (copying them is cheaper than counting a shared reference).
    pub const INLINE_CAPACITY: usize = 23;

    /// A string from a `'static` literal (no allocation, no copy).
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Repr::Shared(Bytes::from_static(s.as_bytes())))
    }

    /// Validates `bytes` as UTF-8. A short string is copied inline; a longer one keeps `bytes`' buffer.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, core::str::Utf8Error> {
        core::str::from_utf8(&bytes)?;
        Ok(Self::inline(&bytes).unwrap_or(Utf8Bytes(Repr::Shared(bytes))))
    }

    /// The string `s` points to, as a zero-copy slice of `buf` when `s` is a sub-slice of it (as every string of a
    /// message decoded from `buf` is) and too long to be held inline; otherwise a copy.
    pub fn slice_of(buf: &Bytes, s: &str) -> Self {
        if let Some(inline) = Self::inline(s.as_bytes()) {
            return inline;
        }
        match sub_range(buf, s.as_bytes()) {
            Some((start, end)) => Utf8Bytes(Repr::Shared(buf.slice(start..end))),
            None => Utf8Bytes(Repr::Shared(Bytes::copy_from_slice(s.as_bytes()))),
        }
    }

    /// `s` held inline, when it fits. `s` must be valid UTF-8.
    #[inline]
    fn inline(s: &[u8]) -> Option<Self> {
        let mut buf = [0; Self::INLINE_CAPACITY];
        buf.get_mut(..s.len())?.copy_from_slice(s);
        Some(Utf8Bytes(Repr::Inline { len: s.len() as u8, buf }))
    }

    /// The string.
    #[inline]
    pub fn as_str(&self) -> &str {
        // Validated on construction; the fallback is unreachable.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The string's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Shared(b) => b,
        }
    }

    /// The string's bytes as a `Bytes` handle (shared when the string is, copied when it is inline).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            Repr::Inline { .. } => Bytes::copy_from_slice(self.as_bytes()),
            Repr::Shared(b) => b.clone(),
        }
    }

    /// A copy that does not keep a larger received frame alive (for long-lived map keys).
    pub fn detached(&self) -> Self {
        match &self.0 {
            Repr::Inline { .. } => self.clone(),
            Repr::Shared(b) => Utf8Bytes(Repr::Shared(Bytes::copy_from_slice(b))),
        }
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True when empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The byte range of `sub` inside `buf` when `sub` points into it (as every slice of a message decoded from `buf`
/// does); `(0, 0)` for an empty `sub`.
pub(crate) fn sub_range(buf: &[u8], sub: &[u8]) -> Option<(usize, usize)> {
    if sub.is_empty() {
        return Some((0, 0));
    }
    let start = (sub.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    let end = start.checked_add(sub.len())?;
    (end <= buf.len()).then_some((start, end))
}

/// The zero-copy slice of `buf` that `sub` points into, or a copy when it does not.
pub(crate) fn bytes_of(buf: &Bytes, sub: &[u8]) -> Bytes {
    match sub_range(buf, sub) {
        Some((s, e)) if s != e => buf.slice(s..e),
        Some(_) => Bytes::new(),
        None => Bytes::copy_from_slice(sub),
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Utf8Bytes {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Utf8Bytes {
    fn from(s: &str) -> Self {
        Self::inline(s.as_bytes()).unwrap_or_else(|| Utf8Bytes(Repr::Shared(Bytes::copy_from_slice(s.as_bytes()))))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Self::inline(s.as_bytes()).unwrap_or_else(|| Utf8Bytes(Repr::Shared(Bytes::from(s.into_bytes()))))
    }
}

impl PartialEq for Utf8Bytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Utf8Bytes {}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialOrd for Utf8Bytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Utf8Bytes {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Utf8Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn short_strings_are_inline_and_long_ones_share_the_frame() {
        let frame = Bytes::from("xx-a-short-room-id--and-a-room-id-longer-than-the-inline-capacity".to_string());
        let short = &frame[3..18];
        let long = &frame[19..];
        let short = Utf8Bytes::slice_of(&frame, core::str::from_utf8(short).unwrap());
        let long = Utf8Bytes::slice_of(&frame, core::str::from_utf8(long).unwrap());
        assert_eq!(short, "a-short-room-id");
        assert!(matches!(short.0, Repr::Inline { .. }));
        assert_eq!(long.as_str(), &core::str::from_utf8(&frame).unwrap()[19..]);
        // Zero-copy: the long string points into the frame.
        assert!(frame.as_ptr_range().contains(&long.as_bytes().as_ptr()));
        assert!(!frame.as_ptr_range().contains(&long.detached().as_bytes().as_ptr()));
        assert_eq!(long.detached(), long);
    }

    #[test]
    fn every_constructor_agrees_on_the_string() {
        for s in ["", "r", "exactly-23-bytes-long!!", "exactly-24-bytes-long!!!", "ünïcödé room ✓ with more text"]
        {
            let all = [
                Utf8Bytes::from(s),
                Utf8Bytes::from(s.to_string()),
                Utf8Bytes::try_from_bytes(Bytes::copy_from_slice(s.as_bytes())).unwrap(),
                Utf8Bytes::slice_of(&Bytes::new(), s),
            ];
            for u in &all {
                assert_eq!(u.as_str(), s);
                assert_eq!(u.len(), s.len());
                assert_eq!(u.is_empty(), s.is_empty());
                assert_eq!(&u.to_bytes()[..], s.as_bytes());
                assert_eq!(u, &all[0]);
                assert_eq!(u.cmp(&all[0]), Ordering::Equal);
            }
        }
        assert_eq!(Utf8Bytes::default(), "");
        assert!(Utf8Bytes::try_from_bytes(Bytes::from_static(b"\xff")).is_err());
    }

    #[test]
    fn hashing_matches_str_so_maps_can_be_queried_by_str() {
        use std::collections::HashMap;
        let mut m = HashMap::new();
        m.insert(Utf8Bytes::from("room-1"), 1);
        m.insert(Utf8Bytes::from("a-room-id-well-past-the-inline-capacity"), 2);
        assert_eq!(m.get("room-1"), Some(&1));
        assert_eq!(m.get("a-room-id-well-past-the-inline-capacity"), Some(&2));
    }

    #[test]
    fn it_is_no_bigger_than_a_bytes_handle() {
        assert!(core::mem::size_of::<Utf8Bytes>() <= core::mem::size_of::<Bytes>());
    }
}
