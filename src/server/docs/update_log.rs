//! [`UpdateLog`]: stores every accepted update for any CRDT type and backfills all of them.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use bytes::Bytes;

use super::log_format;
use crate::server::doc::{Applied, BackfillError, DocError, ImportError, RoomDoc};

/// Merges a log into one equivalent update (e.g. a CRDT snapshot), or `None` to keep the log as it is.
pub type Compactor = fn(&[Bytes]) -> Option<Bytes>;

/// An append-only log of updates: version always empty, backfill = the whole log, exact duplicate updates
/// dropped, optional compaction before each save. Works for any CRDT because it never parses updates; a
/// CRDT-aware document can replace it through [`DocFactory`](crate::server::DocFactory).
#[derive(Debug, Default)]
pub struct UpdateLog {
    updates: Vec<Bytes>,
    seen: BTreeSet<Bytes>,
    bytes: usize,
    compactor: Option<Compactor>,
}

impl UpdateLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty log that compacts itself with `compactor` before each save.
    pub fn with_compactor(compactor: Compactor) -> Self {
        UpdateLog { compactor: Some(compactor), ..Self::default() }
    }

    /// The updates, in the order accepted.
    pub fn updates(&self) -> &[Bytes] {
        &self.updates
    }

    fn push(&mut self, u: Bytes) {
        self.bytes += u.len();
        self.seen.insert(u.clone());
        self.updates.push(u);
    }
}

impl RoomDoc for UpdateLog {
    fn version(&self) -> Bytes {
        Bytes::new()
    }

    fn apply(&mut self, updates: &[Bytes], limit: usize) -> Result<Applied, DocError> {
        // Decide everything before changing anything.
        let mut fresh: Vec<&Bytes> = Vec::new();
        for u in updates {
            if !u.is_empty() && !self.seen.contains(u) && !fresh.contains(&u) {
                fresh.push(u);
            }
        }
        let added: usize = fresh.iter().map(|u| u.len()).sum();
        if self.bytes.saturating_add(added) > limit {
            return Err(DocError::TooLarge);
        }
        let changed = !fresh.is_empty();
        for u in fresh {
            self.push(u.clone());
        }
        Ok(Applied { changed })
    }

    fn backfill(&self, _client_version: &[u8]) -> Result<Vec<Bytes>, BackfillError> {
        Ok(self.updates.clone())
    }

    fn is_persistent(&self) -> bool {
        true
    }

    fn export(&self) -> Option<Bytes> {
        Some(log_format::encode(self.updates.iter()))
    }

    fn import(&mut self, snapshot: &[u8]) -> Result<(), ImportError> {
        let snapshot = Bytes::copy_from_slice(snapshot);
        for u in log_format::decode(&snapshot)? {
            if !u.is_empty() && !self.seen.contains(&u) {
                self.push(u);
            }
        }
        Ok(())
    }

    fn stored_bytes(&self) -> usize {
        self.bytes
    }

    fn compact(&mut self) {
        let Some(compactor) = self.compactor else { return };
        if self.updates.len() < 2 {
            return;
        }
        if let Some(merged) = compactor(&self.updates) {
            self.updates.clear();
            self.seen.clear();
            self.bytes = 0;
            self.push(merged);
        }
    }
}
