//! [`EloDoc`]: a `%ELO` room — the server indexes record headers and relays ciphertext it cannot read.

use alloc::vec::Vec;

use bytes::Bytes;

use crate::elo::{EloIndex, VersionVector};
use crate::server::doc::{Applied, BackfillError, DocError, ImportError, RoomDoc};
use crate::wire::{doc_update_overhead, MAX_FRAME_SIZE, MAX_ROOM_ID_LEN};

/// The largest container built for backfill: one that fits a DocUpdate frame of any room id. A single record
/// larger than this travels in its own container, which the server fragments.
const BACKFILL_CONTAINER_LEN: usize = MAX_FRAME_SIZE - doc_update_overhead(MAX_ROOM_ID_LEN, 1) - 5;

/// An end-to-end-encrypted Loro room: an [`EloIndex`] of the records' plaintext headers.
///
/// * **apply**: every update of the batch must be a valid %ELO container (all headers checked) before any is
///   indexed; otherwise the batch is refused (`Ack(invalid_update)`) and nothing changes.
/// * **version**: the index's version vector in Loro's `VersionVector.encode()` format.
/// * **backfill**: the records a client at the given Loro version vector lacks, packed into containers that fit
///   a frame. A version that is not a valid Loro version vector gets `JoinError(version_unknown)`, so the
///   client retries with an empty version (the official TS server silently treats it as empty).
/// * **persistence**: saved and loaded through the index's strict export format; updates are persisted as
///   received containers (durable acks), so a restart restores the same index.
/// * **memory**: received containers are copied once into their own buffers, so a held record never keeps a
///   larger received frame alive; `compact` (called before each save) drops containers no record uses.
#[derive(Debug, Default)]
pub struct EloDoc {
    index: EloIndex,
}

impl EloDoc {
    /// An empty room.
    pub fn new() -> Self {
        Self::default()
    }

    /// The index.
    pub fn index(&self) -> &EloIndex {
        &self.index
    }
}

impl RoomDoc for EloDoc {
    fn version(&self) -> Bytes {
        self.index.version().to_bytes()
    }

    fn apply(&mut self, updates: &[Bytes], limit: usize) -> Result<Applied, DocError> {
        let mut added = 0usize;
        for u in updates {
            EloIndex::validate(u).map_err(|_| DocError::Invalid)?;
            added = added.saturating_add(u.len());
        }
        if self.index.held_bytes().saturating_add(added) > limit {
            return Err(DocError::TooLarge);
        }
        for u in updates {
            // Validated above, so this cannot fail; the copy keeps only the container alive, not the frame.
            self.index.insert(&Bytes::copy_from_slice(u)).map_err(|_| DocError::Invalid)?;
        }
        Ok(Applied { changed: !updates.is_empty() })
    }

    fn backfill(&self, client_version: &[u8]) -> Result<Vec<Bytes>, BackfillError> {
        let vv = VersionVector::decode(client_version).map_err(|_| BackfillError::VersionUnknown)?;
        Ok(self.index.backfill(&vv, BACKFILL_CONTAINER_LEN))
    }

    fn is_persistent(&self) -> bool {
        true
    }

    fn export(&self) -> Option<Bytes> {
        Some(Bytes::from(self.index.export()))
    }

    fn import(&mut self, snapshot: &[u8]) -> Result<(), ImportError> {
        self.index = EloIndex::import_slice(snapshot).map_err(|_| ImportError)?;
        Ok(())
    }

    fn stored_bytes(&self) -> usize {
        self.index.held_bytes()
    }

    fn compact(&mut self) {
        self.index.compact();
    }
}
