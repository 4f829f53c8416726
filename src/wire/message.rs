//! The borrowed message view: [`Message`] = envelope (CRDT type, room id) + [`Body`].
//!
//! Decoding validates the whole frame once and then borrows every field from the input; nothing is copied and
//! nothing is allocated. The updates of a DocUpdate are kept as the validated wire region and iterated lazily.
//! The same type is what you build to encode: [`Updates`] can also wrap your own slices.

use core::fmt;

use bytes::Bytes;

use super::reader::take_var_bytes;
use super::{AckStatus, BatchId, CrdtType, JoinErrorCode, Permission, RoomErrorCode};

/// The nine message types of Loro Protocol v1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// 0x00
    JoinRequest = 0x00,
    /// 0x01
    JoinResponseOk = 0x01,
    /// 0x02
    JoinError = 0x02,
    /// 0x03
    DocUpdate = 0x03,
    /// 0x04
    DocUpdateFragmentHeader = 0x04,
    /// 0x05
    DocUpdateFragment = 0x05,
    /// 0x06
    RoomError = 0x06,
    /// 0x07
    Leave = 0x07,
    /// 0x08
    Ack = 0x08,
}

impl MessageType {
    /// The type for a wire byte, or `None` outside 0x00..=0x08.
    pub const fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0x00 => MessageType::JoinRequest,
            0x01 => MessageType::JoinResponseOk,
            0x02 => MessageType::JoinError,
            0x03 => MessageType::DocUpdate,
            0x04 => MessageType::DocUpdateFragmentHeader,
            0x05 => MessageType::DocUpdateFragment,
            0x06 => MessageType::RoomError,
            0x07 => MessageType::Leave,
            0x08 => MessageType::Ack,
            _ => return None,
        })
    }

    /// True for the types only a server sends (JoinResponseOk, JoinError, RoomError).
    pub const fn is_server_only(self) -> bool {
        matches!(self, MessageType::JoinResponseOk | MessageType::JoinError | MessageType::RoomError)
    }
}

/// A decoded (or to-be-encoded) Loro Protocol message borrowing its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The CRDT magic.
    pub crdt: CrdtType,
    /// The room id (≤ 128 bytes of UTF-8; may be empty).
    pub room: &'a str,
    /// The type-specific payload.
    pub body: Body<'a>,
}

/// The type-specific payload of a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// 0x00: ask to join a room.
    JoinRequest {
        /// Application-defined join payload (often an auth token).
        auth: &'a [u8],
        /// The requester's CRDT-specific version.
        version: &'a [u8],
    },
    /// 0x01: the join succeeded.
    JoinResponseOk {
        /// What the member may do.
        permission: Permission,
        /// The receiver's CRDT-specific version.
        version: &'a [u8],
        /// Extra metadata; always present on the wire, empty when unused.
        extra: &'a [u8],
    },
    /// 0x02: the join failed.
    JoinError {
        /// Why (unassigned bytes preserved).
        code: JoinErrorCode,
        /// Human-readable text.
        message: &'a str,
        /// Only with `version_unknown`: the receiver's version, when sent.
        receiver_version: Option<&'a [u8]>,
        /// Only with `app_error`: an application code, when sent.
        app_code: Option<&'a str>,
    },
    /// 0x03: N updates and the batch id their Ack refers to.
    DocUpdate {
        /// The updates (possibly none).
        updates: Updates<'a>,
        /// Correlates the Ack.
        batch_id: BatchId,
    },
    /// 0x04: announces a batch of fragments that together form one update.
    FragmentHeader {
        /// The batch id (also the Ack's reference).
        batch_id: BatchId,
        /// How many fragments follow.
        fragment_count: u32,
        /// Sum of the fragment sizes in bytes.
        total_size: u32,
    },
    /// 0x05: one fragment of a batch.
    Fragment {
        /// The batch id.
        batch_id: BatchId,
        /// 0-based position in the batch.
        index: u32,
        /// The fragment bytes.
        data: &'a [u8],
    },
    /// 0x06: the peer has been removed from the room.
    RoomError {
        /// Why (unassigned bytes preserved).
        code: RoomErrorCode,
        /// Human-readable text.
        message: &'a str,
    },
    /// 0x07: unsubscribe from the room.
    Leave,
    /// 0x08: the result of a DocUpdate or fragment batch.
    Ack {
        /// The batch id acknowledged.
        ref_id: BatchId,
        /// 0x00 ok, anything else an error.
        status: AckStatus,
    },
}

impl Body<'_> {
    /// The message type of this body.
    pub const fn message_type(&self) -> MessageType {
        match self {
            Body::JoinRequest { .. } => MessageType::JoinRequest,
            Body::JoinResponseOk { .. } => MessageType::JoinResponseOk,
            Body::JoinError { .. } => MessageType::JoinError,
            Body::DocUpdate { .. } => MessageType::DocUpdate,
            Body::FragmentHeader { .. } => MessageType::DocUpdateFragmentHeader,
            Body::Fragment { .. } => MessageType::DocUpdateFragment,
            Body::RoomError { .. } => MessageType::RoomError,
            Body::Leave => MessageType::Leave,
            Body::Ack { .. } => MessageType::Ack,
        }
    }
}

impl<'a> Message<'a> {
    /// The message type.
    pub const fn message_type(&self) -> MessageType {
        self.body.message_type()
    }
}

/// The updates of a DocUpdate: either the validated wire region of a decoded frame (iterated lazily, no
/// allocation) or caller-supplied slices to encode.
#[derive(Clone, Copy)]
pub struct Updates<'a>(Repr<'a>);

#[derive(Clone, Copy)]
pub(crate) enum Repr<'a> {
    /// `count` var_bytes, already validated, back to back. (`count` is a full word, not the `u32` it fits in:
    /// next to the tag it would share a word that a reader loads at once, and a CPU cannot forward one load from
    /// two narrower stores just made by the decoder, which stalls every read of a freshly decoded message.)
    Wire {
        count: usize,
        region: &'a [u8],
    },
    One(&'a [u8]),
    Slices(&'a [&'a [u8]]),
    Shared(&'a [Bytes]),
}

impl<'a> Updates<'a> {
    /// No updates.
    pub const EMPTY: Updates<'static> = Updates(Repr::Slices(&[]));

    /// Exactly one update.
    pub const fn one(update: &'a [u8]) -> Self {
        Updates(Repr::One(update))
    }

    /// Updates held as borrowed slices.
    pub const fn from_slices(updates: &'a [&'a [u8]]) -> Self {
        Updates(Repr::Slices(updates))
    }

    /// Updates held as shared buffers.
    pub const fn from_bytes(updates: &'a [Bytes]) -> Self {
        Updates(Repr::Shared(updates))
    }

    /// Wraps a region already validated to hold exactly `count` var_bytes.
    pub(crate) const fn wire(count: u32, region: &'a [u8]) -> Self {
        Updates(Repr::Wire { count: count as usize, region })
    }

    /// How many updates there are.
    #[inline]
    pub fn len(&self) -> usize {
        match self.0 {
            Repr::Wire { count, .. } => count,
            Repr::One(_) => 1,
            Repr::Slices(s) => s.len(),
            Repr::Shared(s) => s.len(),
        }
    }

    /// True when there are no updates.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates the updates in order, borrowing each.
    #[inline]
    pub fn iter(&self) -> UpdatesIter<'a> {
        UpdatesIter(match self.0 {
            Repr::Wire { count, region } => IterRepr::Wire { left: count, rest: region },
            Repr::One(u) => IterRepr::One(Some(u)),
            Repr::Slices(s) => IterRepr::Slices(s.iter()),
            Repr::Shared(s) => IterRepr::Shared(s.iter()),
        })
    }

    /// Sum of the update lengths (not counting their length prefixes).
    pub fn payload_len(&self) -> usize {
        self.iter().map(<[u8]>::len).sum()
    }

    /// Bytes the updates take on the wire (each length prefix plus its bytes), saturating at `usize::MAX`.
    #[inline]
    pub(crate) fn entries_len(&self) -> usize {
        fn entry(len: usize) -> usize {
            super::reader::var_bytes_len(len)
        }
        match self.0 {
            Repr::Wire { region, .. } => region.len(),
            Repr::One(u) => entry(u.len()),
            Repr::Slices(s) => s.iter().fold(0usize, |acc, u| acc.saturating_add(entry(u.len()))),
            Repr::Shared(s) => s.iter().fold(0usize, |acc, u| acc.saturating_add(entry(u.len()))),
        }
    }

    /// The validated wire region and its count, when these updates were decoded from a frame.
    #[inline]
    pub(crate) fn wire_region(&self) -> Option<(usize, &'a [u8])> {
        match self.0 {
            Repr::Wire { count, region } => Some((count, region)),
            _ => None,
        }
    }

    /// How the updates are held (the encoder writes each form with its own loop).
    #[inline(always)]
    pub(crate) fn repr(&self) -> Repr<'a> {
        self.0
    }
}

impl<'a> IntoIterator for Updates<'a> {
    type Item = &'a [u8];
    type IntoIter = UpdatesIter<'a>;
    #[inline]
    fn into_iter(self) -> UpdatesIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Updates<'a> {
    type Item = &'a [u8];
    type IntoIter = UpdatesIter<'a>;
    #[inline]
    fn into_iter(self) -> UpdatesIter<'a> {
        self.iter()
    }
}

impl PartialEq for Updates<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Updates<'_> {}

impl fmt::Debug for Updates<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|u| u.len())).finish()?;
        f.write_str(" bytes")
    }
}

/// Iterator over [`Updates`].
#[derive(Clone)]
pub struct UpdatesIter<'a>(IterRepr<'a>);

#[derive(Clone)]
enum IterRepr<'a> {
    /// `left` var_bytes remain at the start of `rest` (a validated region).
    Wire {
        left: usize,
        rest: &'a [u8],
    },
    One(Option<&'a [u8]>),
    Slices(core::slice::Iter<'a, &'a [u8]>),
    Shared(core::slice::Iter<'a, Bytes>),
}

impl<'a> Iterator for UpdatesIter<'a> {
    type Item = &'a [u8];

    #[inline(always)]
    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.0 {
            IterRepr::Wire { left, rest } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                // The region was validated by the decoder; a failure here cannot happen and ends the iteration.
                match take_var_bytes(rest) {
                    Some((u, after)) => {
                        *rest = after;
                        Some(u)
                    }
                    None => {
                        *left = 0;
                        None
                    }
                }
            }
            IterRepr::One(u) => u.take(),
            IterRepr::Slices(it) => it.next().copied(),
            IterRepr::Shared(it) => it.next().map(|b| &b[..]),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            IterRepr::Wire { left, .. } => *left,
            IterRepr::One(u) => usize::from(u.is_some()),
            IterRepr::Slices(it) => it.len(),
            IterRepr::Shared(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for UpdatesIter<'_> {}

impl<'a> UpdatesIter<'a> {
    /// The next update, with its shared handle when the updates are held as `Bytes`.
    #[inline]
    pub(crate) fn next_handle(&mut self) -> Option<(&'a [u8], Option<&'a Bytes>)> {
        match &mut self.0 {
            IterRepr::Shared(it) => it.next().map(|b| (&b[..], Some(b))),
            _ => self.next().map(|u| (u, None)),
        }
    }
}
