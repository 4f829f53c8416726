//! [`UpdateList`]: the owned updates of one received batch, held without copying and without allocating.
//!
//! A received DocUpdate's updates are a validated region of the frame. Keeping the frame's handle, the region's
//! place and its count is enough to hand out every update later, so receiving a batch needs no `Vec` at all; each
//! update becomes its own `Bytes` only when the application asks for it.

use alloc::vec::{self, Vec};
use core::fmt;
use core::hash::{Hash, Hasher};
use core::iter::FusedIterator;

use bytes::Bytes;

use super::message::{Updates, UpdatesIter};
use super::reader::take_var_bytes;
use super::text::{bytes_of, sub_range};

/// Where a decoded DocUpdate's update region sits in its frame: found while the view borrows the frame, used
/// once the frame's handle can be taken over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WirePlace {
    count: u32,
    start: u32,
    len: u32,
}

impl WirePlace {
    /// The place of `updates` in `frame`, when they are a region decoded from it (a decoded frame is at most
    /// `MAX_FRAME_SIZE` bytes, so every offset fits a `u32`).
    pub(crate) fn locate(frame: &[u8], updates: &Updates<'_>) -> Option<Self> {
        let (count, region) = updates.wire_region()?;
        let (start, end) = sub_range(frame, region)?;
        Some(WirePlace {
            count: u32::try_from(count).ok()?,
            start: u32::try_from(start).ok()?,
            len: u32::try_from(end - start).ok()?,
        })
    }
}

/// The updates of one batch, in order, sharing the received frame's buffer.
///
/// Built by the sessions from a decoded DocUpdate (the frame's update region is kept as it is: no allocation of
/// its own, no copy) or from a reassembled fragment batch (one update), and by applications from a `Vec<Bytes>` or
/// a single `Bytes`. Read it as borrowed slices ([`iter`](Self::iter)), as shared `Bytes` handles
/// ([`bytes`](Self::bytes), [`get`](Self::get), `into_iter`), or as a borrowed [`Updates`] to re-encode
/// ([`as_updates`](Self::as_updates)). Equality and hashing compare the updates, not how they are held.
///
/// Like any `Bytes` slice of a frame, the list and every handle taken from it keep the whole received frame alive;
/// copy an update (`Bytes::copy_from_slice`) to keep it longer than the frame should live. A `Bytes` built from a
/// `Vec` that was never shared allocates its shared header once, at its first extra handle (that is the `bytes`
/// crate's representation, not this type's).
#[derive(Clone, Default)]
pub struct UpdateList(ListRepr);

#[derive(Clone, Default)]
enum ListRepr {
    /// No updates.
    #[default]
    Empty,
    /// `count` var_bytes back to back, already validated by the decoder: `frame[start..start + len]`. (The handle
    /// is the whole frame: shortening a `Bytes` made from a `Vec` would convert it to a shared buffer, which costs
    /// an allocation or two atomic operations, for nothing.)
    Wire { count: u32, start: u32, len: u32, frame: Bytes },
    /// Exactly one update.
    One(Bytes),
    /// Updates held one by one.
    Many(Vec<Bytes>),
}

impl UpdateList {
    /// No updates.
    pub const fn new() -> Self {
        UpdateList(ListRepr::Empty)
    }

    /// Exactly one update.
    pub fn one(update: Bytes) -> Self {
        UpdateList(ListRepr::One(update))
    }

    /// Keeps a decoded DocUpdate's updates: `updates` should be a view decoded from `frame`. Then nothing is
    /// copied and the list makes no allocation of its own (it takes one more handle of `frame`); otherwise the
    /// updates are copied one by one.
    pub fn from_decoded(frame: &Bytes, updates: &Updates<'_>) -> Self {
        match WirePlace::locate(frame, updates) {
            Some(place) => Self::from_place(frame.clone(), place),
            None => Self::copied(updates),
        }
    }

    /// The updates at `place` in `frame`, taking over `frame`'s handle (no reference-count update).
    #[inline]
    pub(crate) fn from_place(frame: Bytes, place: WirePlace) -> Self {
        let WirePlace { count, start, len } = place;
        UpdateList(ListRepr::Wire { count, start, len, frame })
    }

    /// A list holding copies of `updates` (for a view that is not a region of a frame).
    pub(crate) fn copied(updates: &Updates<'_>) -> Self {
        match updates.len() {
            0 => Self::new(),
            1 => updates.iter().next().map(|u| Self::one(Bytes::copy_from_slice(u))).unwrap_or_default(),
            _ => UpdateList(ListRepr::Many(updates.iter().map(Bytes::copy_from_slice).collect())),
        }
    }

    /// How many updates there are.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.0 {
            ListRepr::Empty => 0,
            ListRepr::Wire { count, .. } => *count as usize,
            ListRepr::One(_) => 1,
            ListRepr::Many(v) => v.len(),
        }
    }

    /// True when there are no updates.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A borrowed view of the updates (to iterate, compare or encode them).
    #[inline]
    pub fn as_updates(&self) -> Updates<'_> {
        match &self.0 {
            ListRepr::Empty => Updates::EMPTY,
            ListRepr::Wire { count, start, len, frame } => {
                let (start, len) = (*start as usize, *len as usize);
                Updates::wire(*count, frame.get(start..start + len).unwrap_or_default())
            }
            ListRepr::One(u) => Updates::from_bytes(core::slice::from_ref(u)),
            ListRepr::Many(v) => Updates::from_bytes(v),
        }
    }

    /// Iterates the updates as borrowed slices (no reference-count updates).
    #[inline]
    pub fn iter(&self) -> UpdatesIter<'_> {
        self.as_updates().iter()
    }

    /// The update at `index`, as a shared handle (zero-copy). Finding it in a list read from a frame walks the
    /// length prefixes before it (O(`index`), no handle made for the updates skipped); use [`iter`](Self::iter) or
    /// [`bytes`](Self::bytes) to visit every update.
    pub fn get(&self, index: usize) -> Option<Bytes> {
        match &self.0 {
            ListRepr::Empty => None,
            ListRepr::Wire { frame, .. } => self.iter().nth(index).map(|u| bytes_of(frame, u)),
            ListRepr::One(u) => (index == 0).then(|| u.clone()),
            ListRepr::Many(v) => v.get(index).cloned(),
        }
    }

    /// Iterates the updates as shared `Bytes` handles (zero-copy; one reference-count increment each).
    #[inline]
    pub fn bytes(&self) -> Handles<'_> {
        let frame = match &self.0 {
            ListRepr::Wire { frame, .. } => frame,
            _ => &EMPTY_FRAME,
        };
        Handles { frame, inner: self.iter() }
    }

    /// Sum of the update lengths.
    pub fn payload_len(&self) -> usize {
        self.as_updates().payload_len()
    }

    /// The updates as a vector of shared handles (one allocation, exactly sized; the payloads are not copied).
    pub fn to_vec(&self) -> Vec<Bytes> {
        let mut v = Vec::with_capacity(self.len());
        v.extend(self.bytes());
        v
    }

    /// As [`to_vec`](Self::to_vec), reusing the vector this list already holds, if any.
    pub fn into_vec(self) -> Vec<Bytes> {
        match self.0 {
            ListRepr::Many(v) => v,
            ListRepr::One(u) => alloc::vec![u],
            other => UpdateList(other).to_vec(),
        }
    }
}

/// The frame of a list that holds its updates one by one (`Handles` then slices nothing out of it).
static EMPTY_FRAME: Bytes = Bytes::from_static(&[]);

/// Iterator over the updates of an [`UpdateList`] as shared `Bytes` handles; see [`UpdateList::bytes`].
#[derive(Clone)]
pub struct Handles<'a> {
    /// The frame the updates of a list read from a frame are sliced from.
    frame: &'a Bytes,
    inner: UpdatesIter<'a>,
}

impl Iterator for Handles<'_> {
    type Item = Bytes;

    #[inline]
    fn next(&mut self) -> Option<Bytes> {
        // Updates held one by one are `Bytes` already: `bytes_of` finds each is no slice of the (empty) frame and
        // would copy it, so they are cloned from the view's handles instead.
        self.inner.next_handle().map(|(u, handle)| handle.cloned().unwrap_or_else(|| bytes_of(self.frame, u)))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Handles<'_> {}

impl FusedIterator for Handles<'_> {}

impl fmt::Debug for Handles<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handles").field("left", &self.inner.len()).finish()
    }
}

impl From<Vec<Bytes>> for UpdateList {
    fn from(updates: Vec<Bytes>) -> Self {
        UpdateList(ListRepr::Many(updates))
    }
}

impl From<Bytes> for UpdateList {
    fn from(update: Bytes) -> Self {
        Self::one(update)
    }
}

impl From<UpdateList> for Vec<Bytes> {
    fn from(list: UpdateList) -> Self {
        list.into_vec()
    }
}

impl FromIterator<Bytes> for UpdateList {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Self {
        UpdateList(ListRepr::Many(iter.into_iter().collect()))
    }
}

impl PartialEq for UpdateList {
    fn eq(&self, other: &Self) -> bool {
        self.as_updates() == other.as_updates()
    }
}

impl Eq for UpdateList {}

impl PartialEq<[Bytes]> for UpdateList {
    fn eq(&self, other: &[Bytes]) -> bool {
        self.as_updates() == Updates::from_bytes(other)
    }
}

impl PartialEq<Vec<Bytes>> for UpdateList {
    fn eq(&self, other: &Vec<Bytes>) -> bool {
        *self == other[..]
    }
}

impl PartialEq<UpdateList> for Vec<Bytes> {
    fn eq(&self, other: &UpdateList) -> bool {
        *other == self[..]
    }
}

impl Hash for UpdateList {
    /// Hashes the updates (as a `[&[u8]]` of the same updates would), whatever the representation.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for u in self.iter() {
            u.hash(state);
        }
    }
}

impl fmt::Debug for UpdateList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.as_updates(), f)
    }
}

impl<'a> IntoIterator for &'a UpdateList {
    type Item = &'a [u8];
    type IntoIter = UpdatesIter<'a>;
    #[inline]
    fn into_iter(self) -> UpdatesIter<'a> {
        self.iter()
    }
}

impl IntoIterator for UpdateList {
    type Item = Bytes;
    type IntoIter = IntoIter;
    #[inline]
    fn into_iter(self) -> IntoIter {
        IntoIter(match self.0 {
            ListRepr::Empty => IntoIterRepr::Many(Vec::new().into_iter()),
            ListRepr::Wire { count, start, frame, .. } => {
                IntoIterRepr::Wire { left: count as usize, pos: start as usize, frame }
            }
            ListRepr::One(u) => IntoIterRepr::One(Some(u)),
            ListRepr::Many(v) => IntoIterRepr::Many(v.into_iter()),
        })
    }
}

/// The owning iterator of an [`UpdateList`]: each update as a shared `Bytes` handle.
pub struct IntoIter(IntoIterRepr);

enum IntoIterRepr {
    /// `left` validated var_bytes remain at `frame[pos..]`.
    Wire {
        left: usize,
        pos: usize,
        frame: Bytes,
    },
    One(Option<Bytes>),
    Many(vec::IntoIter<Bytes>),
}

impl Iterator for IntoIter {
    type Item = Bytes;

    #[inline]
    fn next(&mut self) -> Option<Bytes> {
        match &mut self.0 {
            IntoIterRepr::Wire { left, pos, frame } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                let rest = frame.get(*pos..).unwrap_or_default();
                // The region was validated by the decoder; a failure here cannot happen and ends the iteration.
                let Some((u, after)) = take_var_bytes(rest) else {
                    *left = 0;
                    return None;
                };
                let end = frame.len() - after.len();
                let start = end - u.len();
                *pos = end;
                Some(frame.slice(start..end))
            }
            IntoIterRepr::One(u) => u.take(),
            IntoIterRepr::Many(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            IntoIterRepr::Wire { left, .. } => *left,
            IntoIterRepr::One(u) => usize::from(u.is_some()),
            IntoIterRepr::Many(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for IntoIter {}

impl FusedIterator for IntoIter {}

impl fmt::Debug for IntoIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").field("left", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{BatchId, Body, CrdtType, Message};
    use alloc::{format, vec};

    fn frame(updates: &[&[u8]]) -> Bytes {
        let msg = Message {
            crdt: CrdtType::Loro,
            room: "r",
            body: Body::DocUpdate { updates: Updates::from_slices(updates), batch_id: BatchId([1; 8]) },
        };
        msg.encode_to_bytes().expect("valid")
    }

    fn decoded(frame: &Bytes) -> UpdateList {
        let msg = Message::decode(frame).expect("decodes");
        let Body::DocUpdate { updates, .. } = msg.body else { panic!("a DocUpdate") };
        UpdateList::from_decoded(frame, &updates)
    }

    #[test]
    fn decoded_list_reads_the_same_every_way() {
        let parts: [&[u8]; 4] = [b"alpha", b"", b"gamma-gamma", &[7u8; 300]];
        let f = frame(&parts);
        let list = decoded(&f);
        assert_eq!(list.len(), 4);
        assert!(list.iter().eq(parts.iter().copied()));
        assert!(list.bytes().map(|b| b.to_vec()).eq(parts.iter().map(|p| p.to_vec())));
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(list.get(i).as_deref(), Some(*p));
        }
        assert_eq!(list.get(4), None);
        let owned: Vec<Bytes> = list.clone().into_iter().collect();
        assert_eq!(list, owned);
        assert_eq!(list.clone().into_vec(), owned);
        assert_eq!(list.payload_len(), 5 + 11 + 300);
        // Zero-copy: every handle points into the frame's buffer.
        let range = f.as_ptr_range();
        for b in list.clone().into_iter().filter(|b| !b.is_empty()) {
            assert!(range.contains(&b.as_ptr()));
        }
    }

    #[test]
    fn taking_over_the_frame_keeps_the_updates() {
        let f = frame(&[b"one", b"two"]);
        let msg = Message::decode(&f).expect("decodes");
        let Body::DocUpdate { updates, .. } = msg.body else { panic!("a DocUpdate") };
        let place = WirePlace::locate(&f, &updates).expect("a region of the frame");
        let list = UpdateList::from_place(f.clone(), place);
        assert_eq!(list, vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]);
    }

    #[test]
    fn a_view_not_from_the_frame_is_copied() {
        let parts: [&[u8]; 2] = [b"x", b"yz"];
        let list = UpdateList::from_decoded(&Bytes::from_static(b"unrelated"), &Updates::from_slices(&parts));
        assert_eq!(list, vec![Bytes::from_static(b"x"), Bytes::from_static(b"yz")]);
        let one = UpdateList::from_decoded(&Bytes::new(), &Updates::one(b"solo"));
        assert_eq!(one, vec![Bytes::from_static(b"solo")]);
        assert!(UpdateList::from_decoded(&Bytes::new(), &Updates::EMPTY).is_empty());
    }

    #[test]
    fn handles_of_updates_held_one_by_one_are_shared_not_copied() {
        let a = Bytes::from(alloc::vec![1u8; 40]);
        let b = Bytes::from(alloc::vec![2u8; 50]);
        let many = UpdateList::from(vec![a.clone(), b.clone()]);
        let got: Vec<Bytes> = many.bytes().collect();
        assert_eq!(got[0].as_ptr(), a.as_ptr());
        assert_eq!(got[1].as_ptr(), b.as_ptr());
        assert_eq!(many.get(1).map(|h| h.as_ptr()), Some(b.as_ptr()));
        let one = UpdateList::one(a.clone());
        assert_eq!(one.bytes().next().map(|h| h.as_ptr()), Some(a.as_ptr()));
        assert_eq!(one.get(1), None);
        assert_eq!(UpdateList::new().get(0), None);
    }

    #[test]
    fn iterators_report_their_exact_length() {
        let f = frame(&[b"a", b"", b"ccc"]);
        let list = decoded(&f);
        let mut h = list.bytes();
        assert_eq!(h.len(), 3);
        h.next();
        assert_eq!(h.len(), 2);
        let mut it = list.clone().into_iter();
        assert_eq!(it.len(), 3);
        assert_eq!(it.nth(2).as_deref(), Some(&b"ccc"[..]));
        assert_eq!((it.next(), it.next()), (None, None));
        assert_eq!(list.to_vec().capacity(), 3);
    }

    #[test]
    fn equal_lists_hash_alike_whatever_holds_them() {
        use core::hash::BuildHasher;
        let hasher = std::collections::hash_map::RandomState::new();
        let f = frame(&[b"a", b"bc"]);
        let wire = decoded(&f);
        let many = UpdateList::from(vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")]);
        assert_eq!(hasher.hash_one(&wire), hasher.hash_one(&many));
        let f1 = frame(&[b"solo"]);
        assert_eq!(hasher.hash_one(decoded(&f1)), hasher.hash_one(UpdateList::one(Bytes::from_static(b"solo"))));
    }

    #[test]
    fn a_list_is_small() {
        assert!(core::mem::size_of::<UpdateList>() <= 48, "{}", core::mem::size_of::<UpdateList>());
    }

    #[test]
    fn equality_ignores_how_updates_are_held() {
        let f = frame(&[b"a", b"bc"]);
        let wire = decoded(&f);
        let many = UpdateList::from(vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")]);
        assert_eq!(wire, many);
        assert_ne!(wire, UpdateList::one(Bytes::from_static(b"a")));
        assert_eq!(UpdateList::new(), UpdateList::from(Vec::new()));
        assert_eq!(format!("{:?}", wire), "[1, 2] bytes");
    }
}
