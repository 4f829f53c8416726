//! [`Ephemeral`]: presence-style state (`%EPH`, `%YAW`, `%EPS`) kept as a bounded ring of recent updates.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::Bytes;

use super::log_format;
use crate::server::doc::{Applied, BackfillError, DocError, ImportError, RoomDoc};

/// Default number of recent updates an ephemeral room keeps.
pub const DEFAULT_EPHEMERAL_MAX_ENTRIES: usize = 256;
/// Default bytes an ephemeral room keeps.
pub const DEFAULT_EPHEMERAL_MAX_BYTES: usize = 1024 * 1024;

/// The most recent updates of an ephemeral store, oldest dropped first, backfilled to joiners in order (a
/// replay yields the latest state of every key). The in-memory flavour (`%EPH`, `%YAW`) is never saved and
/// forgets everything when the last member leaves, so nobody is shown stale presence; the persisted flavour
/// (`%EPS`) is saved and kept so future peers hydrate at once.
#[derive(Debug)]
pub struct Ephemeral {
    ring: VecDeque<Bytes>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    persisted: bool,
}

impl Ephemeral {
    /// Never saved; cleared when the room empties.
    pub fn in_memory() -> Self {
        Self::with_limits(false, DEFAULT_EPHEMERAL_MAX_ENTRIES, DEFAULT_EPHEMERAL_MAX_BYTES)
    }

    /// Saved and kept across empty periods.
    pub fn persisted() -> Self {
        Self::with_limits(true, DEFAULT_EPHEMERAL_MAX_ENTRIES, DEFAULT_EPHEMERAL_MAX_BYTES)
    }

    /// Custom bounds.
    pub fn with_limits(persisted: bool, max_entries: usize, max_bytes: usize) -> Self {
        Ephemeral { ring: VecDeque::new(), bytes: 0, max_entries: max_entries.max(1), max_bytes, persisted }
    }

    fn push(&mut self, u: Bytes) {
        self.bytes += u.len();
        self.ring.push_back(u);
        while self.ring.len() > self.max_entries || self.bytes > self.max_bytes {
            match self.ring.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
    }
}

impl RoomDoc for Ephemeral {
    fn version(&self) -> Bytes {
        Bytes::new()
    }

    fn apply(&mut self, updates: &[Bytes], limit: usize) -> Result<Applied, DocError> {
        if updates.iter().any(|u| u.len() > self.max_bytes.min(limit)) {
            return Err(DocError::TooLarge);
        }
        let mut changed = false;
        for u in updates.iter().filter(|u| !u.is_empty()) {
            self.push(u.clone());
            changed = true;
        }
        Ok(Applied { changed })
    }

    fn backfill(&self, _client_version: &[u8]) -> Result<Vec<Bytes>, BackfillError> {
        Ok(self.ring.iter().cloned().collect())
    }

    fn is_persistent(&self) -> bool {
        self.persisted
    }

    fn export(&self) -> Option<Bytes> {
        self.persisted.then(|| log_format::encode(self.ring.iter()))
    }

    fn import(&mut self, snapshot: &[u8]) -> Result<(), ImportError> {
        for u in log_format::decode(&Bytes::copy_from_slice(snapshot))? {
            self.push(u);
        }
        Ok(())
    }

    fn stored_bytes(&self) -> usize {
        self.bytes
    }

    fn on_empty(&mut self) {
        if !self.persisted {
            self.ring.clear();
            self.bytes = 0;
        }
    }
}
