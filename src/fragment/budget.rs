//! A byte budget: reservations that must fit a limit, released when the memory is freed.

/// Bytes reserved against a limit. A server shares one `Budget` across every connection's reassembler (passing it
/// by `&mut` to each call) so that the sum over all connections stays bounded; a client keeps one
/// [`Budget::unlimited`]. Always pass the same `Budget` to a reassembler: it releases into that budget what it
/// reserved from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub const fn new(limit: usize) -> Self {
        Budget { limit, used: 0 }
    }

    /// A budget that never refuses (its accounting still works).
    pub const fn unlimited() -> Self {
        Budget { limit: usize::MAX, used: 0 }
    }

    /// Reserves `n` bytes if they fit; returns whether they did. Nothing changes on refusal.
    pub fn try_reserve(&mut self, n: usize) -> bool {
        match self.used.checked_add(n) {
            Some(total) if total <= self.limit => {
                self.used = total;
                true
            }
            _ => false,
        }
    }

    /// Returns `n` previously reserved bytes.
    pub fn release(&mut self, n: usize) {
        debug_assert!(n <= self.used, "released more than reserved");
        self.used = self.used.saturating_sub(n);
    }

    /// Bytes currently reserved.
    pub const fn used(&self) -> usize {
        self.used
    }

    /// The limit.
    pub const fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes still available.
    pub const fn available(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }
}
