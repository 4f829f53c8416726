//! [`UpdateList`]: the owned updates of one received batch, held without copying and without allocating.
//!
//! A received DocUpdate's updates are a validated region of the frame. Keeping that region (one `Bytes` handle)
//! and its count is enough to hand out every update later, so receiving a batch needs no `Vec` at all; each
//! update becomes its own `Bytes` only when the application asks for it.

use alloc::vec::{self, Vec};
use core::fmt;

use bytes::Bytes;

use super::message::{Updates, UpdatesIter};
use super::reader::take_var_bytes;
use super::text::bytes_of;

/// Where a decoded DocUpdate's update region sits in its frame: found while the view borrows the frame, used
/// once the frame's handle can be taken over.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WirePlace {
    count: usize,
    start: usize,
    end: usize,
}

impl WirePlace {
    /// The place of `updates` in `frame`, when they are a region decoded from it.
    pub(crate) fn locate(frame: &[u8], updates: &Updates<'_>) -> Option<Self> {
        let (count, region) = updates.wire_region()?;
        let (start, end) = super::text::sub_range(frame, region)?;
        Some(WirePlace { count, start, end })
    }
}

/// The updates of one batch, in order, sharing the received frame's buffer.
///
/// Built by the sessions from a decoded DocUpdate (no allocation: the frame's update region is kept as it is) or
/// from a reassembled fragment batch (one update), and by applications from a `Vec<Bytes>` or a single `Bytes`.
/// Read it as borrowed slices ([`iter`](Self::iter), [`get`](Self::get)), as shared `Bytes` handles
/// ([`bytes`](Self::bytes), `into_iter`), or as a borrowed [`Updates`] to re-encode ([`as_updates`](Self::as_updates)).
/// Equality compares the updates, not how they are held.
#[derive(Clone, Default)]
pub struct UpdateList(ListRepr);

#[derive(Clone, Default)]
enum ListRepr {
    /// No updates.
    #[default]
    Empty,
    /// `count` var_bytes back to back, already validated by the decoder: `region[start..start + len]`. (The
    /// handle is the whole frame: shortening a `Bytes` made from a `Vec` would convert it to a shared buffer,
    /// which costs an allocation or two atomic operations, for nothing.)
    Wire { count: usize, start: usize, len: usize, region: Bytes },
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

    /// Keeps a decoded DocUpdate's update region: `updates` must be a view decoded from `frame`. Allocates
    /// nothing and copies nothing when it is (the view's region is a slice of `frame`); otherwise the updates are
    /// copied one by one.
    pub fn from_decoded(frame: &Bytes, updates: &Updates<'_>) -> Self {
        match WirePlace::locate(frame, updates) {
            Some(place) => Self::from_place(frame.clone(), place),
            None => Self::copied(updates),
        }
    }

    /// The updates at `place` in `frame`, taking over `frame`'s handle (no reference-count update).
    #[inline]
    pub(crate) fn from_place(frame: Bytes, place: WirePlace) -> Self {
        let WirePlace { count, start, end } = place;
        UpdateList(ListRepr::Wire { count, start, len: end - start, region: frame })
    }

    /// As [`from_decoded`](Self::from_decoded) for a view that may not come from a frame: it is copied.
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
            ListRepr::Wire { count, .. } => *count,
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
            ListRepr::Wire { count, start, len, region } => {
                Updates::wire(*count as u32, region.get(*start..*start + *len).unwrap_or_default())
            }
            ListRepr::One(u) => Updates::one(u),
            ListRepr::Many(v) => Updates::from_bytes(v),
        }
    }

    /// Iterates the updates as borrowed slices (no reference-count updates).
    #[inline]
    pub fn iter(&self) -> UpdatesIter<'_> {
        self.as_updates().iter()
    }

    /// The update at `index`, as a shared handle (zero-copy).
    #[inline]
    pub fn get(&self, index: usize) -> Option<Bytes> {
        match &self.0 {
            ListRepr::One(u) if index == 0 => Some(u.clone()),
            ListRepr::Many(v) => v.get(index).cloned(),
            _ => self.bytes().nth(index),
        }
    }

    /// Iterates the updates as shared `Bytes` handles (zero-copy; one reference-count increment each).
    #[inline]
    pub fn bytes(&self) -> impl Iterator<Item = Bytes> + '_ {
        let buf = match &self.0 {
            ListRepr::Wire { region, .. } => Some(region),
            _ => None,
        };
        let mut many = match &self.0 {
            ListRepr::One(u) => core::slice::from_ref(u).iter(),
            ListRepr::Many(v) => v.iter(),
            _ => [].iter(),
        };
        let mut wire = buf.map(|_| self.iter());
        core::iter::from_fn(move || match (&mut wire, buf) {
            (Some(it), Some(buf)) => it.next().map(|u| bytes_of(buf, u)),
            _ => many.next().cloned(),
        })
    }

    /// Sum of the update lengths.
    pub fn payload_len(&self) -> usize {
        self.as_updates().payload_len()
    }

    /// The updates as a vector of shared handles (one allocation; the payloads are not copied).
    pub fn to_vec(&self) -> Vec<Bytes> {
        self.bytes().collect()
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
            ListRepr::Wire { count, start, region, .. } => IntoIterRepr::Wire { left: count, pos: start, region },
            ListRepr::One(u) => IntoIterRepr::One(Some(u)),
            ListRepr::Many(v) => IntoIterRepr::Many(v.into_iter()),
        })
    }
}

/// The owning iterator of an [`UpdateList`]: each update as a shared `Bytes` handle.
pub struct IntoIter(IntoIterRepr);

enum IntoIterRepr {
    Wire { left: usize, pos: usize, region: Bytes },
    One(Option<Bytes>),
    Many(vec::IntoIter<Bytes>),
}

impl Iterator for IntoIter {
    type Item = Bytes;

    #[inline]
    fn next(&mut self) -> Option<Bytes> {
        match &mut self.0 {
            IntoIterRepr::Wire { left, pos, region } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                let rest = region.get(*pos..).unwrap_or_default();
                // The region was validated by the decoder; a failure here cannot happen and ends the iteration.
                let Some((u, after)) = take_var_bytes(rest) else {
                    *left = 0;
                    return None;
                };
                let end = region.len() - after.len();
                let start = end - u.len();
                *pos = end;
                Some(region.slice(start..end))
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
