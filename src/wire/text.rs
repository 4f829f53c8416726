//! [`Utf8Bytes`]: a shared, immutable, UTF-8-validated byte buffer (a `Bytes` that is known to be a string).

use alloc::string::String;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;

use bytes::Bytes;

/// A cheaply clonable string backed by [`Bytes`], so it can be a zero-copy slice of a received frame.
///
/// Ordering, equality and hashing are those of the string (byte-wise), so a `BTreeMap<Utf8Bytes, _>` can be
/// queried with a `&str`.
#[derive(Clone, Default)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// A string from a `'static` literal (no allocation).
    pub const fn from_static(s: &'static str) -> Self {
        Utf8Bytes(Bytes::from_static(s.as_bytes()))
    }

    /// Validates `bytes` as UTF-8.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, core::str::Utf8Error> {
        core::str::from_utf8(&bytes)?;
        Ok(Utf8Bytes(bytes))
    }

    /// The zero-copy slice of `buf` that `s` points into. `s` must be a sub-slice of `buf` (as every string of a
    /// message decoded from `buf` is); otherwise the bytes of `s` are copied.
    pub fn slice_of(buf: &Bytes, s: &str) -> Self {
        let range = sub_range(buf, s.as_bytes());
        match range {
            Some((start, end)) => Utf8Bytes(buf.slice(start..end)),
            None => Utf8Bytes(Bytes::copy_from_slice(s.as_bytes())),
        }
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // Validated on construction; the fallback is unreachable.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// A copy that does not keep a larger received frame alive (for long-lived map keys).
    pub fn detached(&self) -> Self {
        Utf8Bytes(Bytes::copy_from_slice(&self.0))
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The byte range of `sub` inside `buf`, when `sub` points into it.
pub(crate) fn sub_range(buf: &[u8], sub: &[u8]) -> Option<(usize, usize)> {
    let base = buf.as_ptr() as usize;
    let p = sub.as_ptr() as usize;
    if sub.is_empty() {
        return Some((0, 0));
    }
    if p >= base && p + sub.len() <= base + buf.len() {
        Some((p - base, p - base + sub.len()))
    } else {
        None
    }
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
        Utf8Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Utf8Bytes {
    fn from(s: String) -> Self {
        Utf8Bytes(Bytes::from(s.into_bytes()))
    }
}

impl PartialEq for Utf8Bytes {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Utf8Bytes {}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        &self.0[..] == other.as_bytes()
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        &self.0[..] == other.as_bytes()
    }
}

impl PartialOrd for Utf8Bytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Utf8Bytes {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0[..].cmp(&other.0[..])
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
