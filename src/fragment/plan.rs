//! Planning an outgoing send into batches, and encoding each batch into frames.

use bytes::Bytes;

use crate::wire::{
    doc_update_overhead, fragment_overhead, update_entry_len, BatchId, Body, CrdtType, EncodeError, Message, Updates,
    MAX_FRAME_SIZE, MAX_ROOM_ID_LEN,
};

/// Default fragment payload size: 240 KiB, the official clients' chunk (`min(240 KiB, 256 KiB − 4 KiB)`).
pub const DEFAULT_CHUNK_SIZE: usize = 245_760;

/// The smallest frame limit a [`Fragmenter`] accepts: room for a 128-byte room id, every header field at its
/// widest, and a useful payload.
const MIN_FRAME_SIZE: usize = 512;

/// Why a [`Fragmenter`] configuration is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FragmentConfigError {
    /// The chunk size is zero.
    #[error("chunk size must be at least 1 byte")]
    ZeroChunk,
    /// The frame limit is outside `512..=262144`.
    #[error("frame limit {0} is outside 512..=262144 bytes")]
    FrameLimit(usize),
}

/// Splits sends into batches and batches into frames, every frame at most `max_frame_size` bytes.
///
/// Sizes come from exact encoded lengths ([`fragment_overhead`], [`doc_update_overhead`]), never from a guessed
/// headroom: a fragment carries `chunk_size` bytes unless that would push its frame over the limit, in which
/// case it carries exactly as many as fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragmenter {
    chunk_size: usize,
    max_frame_size: usize,
}

impl Default for Fragmenter {
    fn default() -> Self {
        Self::new()
    }
}

/// One batch of a planned send: which updates it carries and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlannedBatch {
    /// Updates `start..end` of the send, packed into one DocUpdate.
    Packed {
        /// First update (index into the send).
        start: usize,
        /// One past the last update.
        end: usize,
    },
    /// Update `index` of the send, alone, as a header and `fragments` fragments of `fragment_size` bytes (the
    /// last one possibly shorter).
    Fragmented {
        /// The update (index into the send).
        index: usize,
        /// Number of fragments.
        fragments: u32,
        /// Payload bytes per fragment.
        fragment_size: usize,
    },
    /// Update `index` is longer than the protocol can describe (`total_size` is a u32): it cannot be sent.
    TooLarge {
        /// The update (index into the send).
        index: usize,
    },
}

impl PlannedBatch {
    /// The range of update indices the batch carries.
    pub fn updates(&self) -> core::ops::Range<usize> {
        match *self {
            PlannedBatch::Packed { start, end } => start..end,
            PlannedBatch::Fragmented { index, .. } | PlannedBatch::TooLarge { index } => index..index + 1,
        }
    }

    /// How many frames the batch encodes to (0 for `TooLarge`).
    pub fn frame_count(&self) -> usize {
        match *self {
            PlannedBatch::Packed { .. } => 1,
            PlannedBatch::Fragmented { fragments, .. } => 1 + fragments as usize,
            PlannedBatch::TooLarge { .. } => 0,
        }
    }
}

impl Fragmenter {
    /// The defaults: 245,760-byte chunks, 262,144-byte frames.
    pub const fn new() -> Self {
        Fragmenter { chunk_size: DEFAULT_CHUNK_SIZE, max_frame_size: MAX_FRAME_SIZE }
    }

    /// Custom chunk size and frame limit (for transports with a smaller message cap).
    pub fn with_limits(chunk_size: usize, max_frame_size: usize) -> Result<Self, FragmentConfigError> {
        if chunk_size == 0 {
            return Err(FragmentConfigError::ZeroChunk);
        }
        if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&max_frame_size) {
            return Err(FragmentConfigError::FrameLimit(max_frame_size));
        }
        Ok(Fragmenter { chunk_size, max_frame_size })
    }

    /// The configured chunk size.
    pub const fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The configured frame limit.
    pub const fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// True when `len` bytes of update fit one DocUpdate alone in this room.
    pub fn fits_one_frame(&self, room_len: usize, len: usize) -> bool {
        doc_update_overhead(room_len, 1).saturating_add(update_entry_len(len)) <= self.max_frame_size
    }

    /// The fragment payload size and count for an update of `len` bytes in a room id of `room_len` bytes.
    pub fn fragment_layout(&self, room_len: usize, len: usize) -> (usize, u32) {
        let mut size = self.chunk_size.min(len.max(1));
        loop {
            let count = len.div_ceil(size).max(1);
            let last_index = u32::try_from(count - 1).unwrap_or(u32::MAX);
            let frame = fragment_overhead(room_len, last_index, size) + size;
            // (A frame limit of at least 512 bytes always fits a 1-byte fragment; `size == 1` is a backstop.)
            if frame <= self.max_frame_size || size == 1 {
                return (size, u32::try_from(count).unwrap_or(u32::MAX));
            }
            // Shrink by exactly the excess; the overhead can only shrink with it, so this converges in a step or two.
            size -= (frame - self.max_frame_size).min(size - 1);
        }
    }

    /// Plans a send of `updates` to a room whose id is `room_len` bytes: consecutive updates that fit share a
    /// DocUpdate; an update that does not fit a frame alone is fragmented on its own. Allocation-free.
    pub fn plan<'a>(&self, room_len: usize, updates: &'a [Bytes]) -> Plan<'a> {
        Plan { fragmenter: *self, room_len, updates, next: 0 }
    }

    /// The frames of `batch` (a batch planned from `updates`), encoded one at a time as they are pulled: each
    /// frame is one allocation and one copy of its payload. A batch whose frames would not fit this fragmenter's
    /// frame limit, or whose fragment count does not cover its update exactly, is refused.
    pub fn frames<'a>(
        &self,
        crdt: CrdtType,
        room: &'a str,
        batch_id: BatchId,
        batch: PlannedBatch,
        updates: &'a [Bytes],
    ) -> Result<BatchFrames<'a>, EncodeError> {
        if room.len() > MAX_ROOM_ID_LEN {
            return Err(EncodeError::RoomIdTooLong { len: room.len(), max: MAX_ROOM_ID_LEN });
        }
        let in_range = batch.updates().end <= updates.len();
        let state = match batch {
            _ if !in_range => FramesState::Done,
            PlannedBatch::Packed { start, end } => {
                let msg = Message {
                    crdt,
                    room,
                    body: Body::DocUpdate { updates: Updates::from_bytes(&updates[start..end]), batch_id },
                };
                // Checked here so that pulling frames cannot fail.
                let len = msg.encoded_len_checked()?;
                if len > self.max_frame_size {
                    return Err(EncodeError::FrameTooLarge { len, max: self.max_frame_size });
                }
                FramesState::Packed { start, end }
            }
            PlannedBatch::Fragmented { index, fragments, fragment_size } => {
                let len = updates[index].len();
                let total = u32::try_from(len)
                    .map_err(|_| EncodeError::TooLong { field: crate::wire::Field::TotalSize, len })?;
                // Guards against a hand-made batch: every fragment non-empty, the last one ending the update.
                if fragments == 0 || fragment_size == 0 || len.div_ceil(fragment_size) != fragments as usize {
                    return Err(EncodeError::TooLong {
                        field: crate::wire::Field::FragmentCount,
                        len: fragments as usize,
                    });
                }
                let frame = fragment_overhead(room.len(), fragments - 1, fragment_size).saturating_add(fragment_size);
                if frame > self.max_frame_size {
                    return Err(EncodeError::FrameTooLarge { len: frame, max: self.max_frame_size });
                }
                FramesState::Header { index, fragments, fragment_size, total }
            }
            PlannedBatch::TooLarge { index } => {
                return Err(EncodeError::TooLong { field: crate::wire::Field::TotalSize, len: updates[index].len() })
            }
        };
        Ok(BatchFrames { crdt, room, batch_id, updates, state })
    }
}

/// Iterator over the batches of a send (see [`Fragmenter::plan`]).
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    fragmenter: Fragmenter,
    room_len: usize,
    updates: &'a [Bytes],
    next: usize,
}

impl Iterator for Plan<'_> {
    type Item = PlannedBatch;

    fn next(&mut self) -> Option<PlannedBatch> {
        let start = self.next;
        let first = self.updates.get(start)?;
        let f = &self.fragmenter;
        if !f.fits_one_frame(self.room_len, first.len()) {
            self.next += 1;
            if u32::try_from(first.len()).is_err() {
                return Some(PlannedBatch::TooLarge { index: start });
            }
            let (fragment_size, fragments) = f.fragment_layout(self.room_len, first.len());
            return Some(PlannedBatch::Fragmented { index: start, fragments, fragment_size });
        }
        // Greedily pack the following updates while the exact DocUpdate length stays within the limit.
        let mut entries = update_entry_len(first.len());
        let mut end = start + 1;
        while let Some(u) = self.updates.get(end) {
            let with = entries + update_entry_len(u.len());
            if doc_update_overhead(self.room_len, end + 1 - start) + with > f.max_frame_size {
                break;
            }
            entries = with;
            end += 1;
        }
        self.next = end;
        Some(PlannedBatch::Packed { start, end })
    }
}

/// The frames of one batch, encoded lazily (see [`Fragmenter::frames`]).
#[derive(Clone, Debug)]
pub struct BatchFrames<'a> {
    crdt: CrdtType,
    room: &'a str,
    batch_id: BatchId,
    updates: &'a [Bytes],
    state: FramesState,
}

#[derive(Clone, Copy, Debug)]
enum FramesState {
    Packed { start: usize, end: usize },
    Header { index: usize, fragments: u32, fragment_size: usize, total: u32 },
    Fragment { index: usize, fragments: u32, fragment_size: usize, next: u32 },
    Done,
}

impl Iterator for BatchFrames<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let (crdt, room, batch_id) = (self.crdt, self.room, self.batch_id);
        let (body, next_state) = match self.state {
            FramesState::Done => return None,
            FramesState::Packed { start, end } => (
                Body::DocUpdate { updates: Updates::from_bytes(self.updates.get(start..end)?), batch_id },
                FramesState::Done,
            ),
            FramesState::Header { index, fragments, fragment_size, total } => (
                Body::FragmentHeader { batch_id, fragment_count: fragments, total_size: total },
                FramesState::Fragment { index, fragments, fragment_size, next: 0 },
            ),
            FramesState::Fragment { index, fragments, fragment_size, next } => {
                let update = self.updates.get(index)?;
                let from = (next as usize).saturating_mul(fragment_size).min(update.len());
                let to = from.saturating_add(fragment_size).min(update.len());
                let following = if next + 1 >= fragments {
                    FramesState::Done
                } else {
                    FramesState::Fragment { index, fragments, fragment_size, next: next + 1 }
                };
                (Body::Fragment { batch_id, index: next, data: &update[from..to] }, following)
            }
        };
        self.state = next_state;
        Some(Message { crdt, room, body }.encode_to_bytes_prevalidated())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self.state {
            FramesState::Done => 0,
            FramesState::Packed { .. } => 1,
            FramesState::Header { fragments, .. } => 1 + fragments as usize,
            FramesState::Fragment { fragments, next, .. } => (fragments - next) as usize,
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for BatchFrames<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn layout_respects_frame_limit_exactly() {
        let f = Fragmenter::with_limits(10_000, 1024).unwrap();
        for room_len in [0, 1, 127, 128] {
            for len in [1usize, 900, 1024, 5000, 1 << 20] {
                let (size, count) = f.fragment_layout(room_len, len);
                assert!(size >= 1);
                assert_eq!(count as usize, len.div_ceil(size));
                assert!(fragment_overhead(room_len, count - 1, size) + size <= 1024);
                // One more byte per fragment would not fit.
                assert!(size == len || fragment_overhead(room_len, count - 1, size + 1) + size + 1 > 1024);
            }
        }
    }

    #[test]
    fn packs_small_and_fragments_large() {
        let f = Fragmenter::new();
        let updates = vec![
            Bytes::from(vec![1u8; 10]),
            Bytes::from(vec![2u8; 10]),
            Bytes::from(vec![3u8; 300_000]),
            Bytes::from(vec![4u8; 10]),
        ];
        let plan: Vec<_> = f.plan(4, &updates).collect();
        assert_eq!(plan[0], PlannedBatch::Packed { start: 0, end: 2 });
        assert!(matches!(
            plan[1],
            PlannedBatch::Fragmented { index: 2, fragments: 2, fragment_size: DEFAULT_CHUNK_SIZE }
        ));
        assert_eq!(plan[2], PlannedBatch::Packed { start: 3, end: 4 });
        assert_eq!(plan.len(), 3);
    }
}
