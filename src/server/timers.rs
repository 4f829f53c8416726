//! An ordered set of deadlines keyed by what they are for, so `poll_timeout` is O(log n) however many
//! connections and rooms there are.

use alloc::collections::{BTreeMap, BTreeSet};

use crate::time::Instant;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKey {
    /// A connection's earliest reassembly deadline.
    Reassembly(u64),
    /// A connection's idle timeout.
    Idle(u64),
    /// A room's snapshot save.
    Save(u32),
    /// A room's idle unload.
    Unload(u32),
    /// A room's persist retry.
    PersistRetry(u32),
}

#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_key: BTreeMap<TimerKey, Instant>,
    ordered: BTreeSet<(Instant, TimerKey)>,
}

impl Timers {
    /// Arms (or re-arms, or with `None` disarms) `key`.
    pub(crate) fn set(&mut self, key: TimerKey, at: Option<Instant>) {
        match at {
            Some(at) => {
                if let Some(old) = self.by_key.insert(key, at) {
                    if old == at {
                        return;
                    }
                    self.ordered.remove(&(old, key));
                }
                self.ordered.insert((at, key));
            }
            None => {
                if let Some(old) = self.by_key.remove(&key) {
                    self.ordered.remove(&(old, key));
                }
            }
        }
    }

    pub(crate) fn get(&self, key: TimerKey) -> Option<Instant> {
        self.by_key.get(&key).copied()
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.ordered.first().map(|(at, _)| *at)
    }

    /// Removes and returns one key due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let &(at, key) = self.ordered.first()?;
        if at > now {
            return None;
        }
        self.ordered.remove(&(at, key));
        self.by_key.remove(&key);
        Some(key)
    }
}
