//! Caller-supplied monotonic time.
//!
//! The core never reads a clock. Every method that needs the current time takes an [`Instant`]: a count of
//! milliseconds since an epoch the caller chooses (process start, boot, or 0 in tests). Spans are
//! [`core::time::Duration`]. Drivers convert from their runtime's clock at the boundary (see `Clock` under the
//! `std` feature).

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in monotonic time: milliseconds since an epoch chosen by the caller.
///
/// Millisecond resolution is enough for every timer in the protocol (the shortest default is 500 ms) and keeps
/// the type a plain `u64` that is cheap to copy and store, and trivially deterministic in tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself (0 ms).
    pub const ZERO: Instant = Instant(0);
    /// The largest representable instant; adding to it saturates here.
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at [`Instant::MAX`]. Durations are truncated to whole milliseconds.
    pub fn saturating_add(self, d: Duration) -> Self {
        Instant(self.0.saturating_add(duration_ms(d)))
    }

    /// `self + d`, or `None` on overflow.
    pub fn checked_add(self, d: Duration) -> Option<Self> {
        self.0.checked_add(duration_ms(d)).map(Instant)
    }

    /// The time elapsed from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// Whole milliseconds in `d`, saturating at `u64::MAX`.
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating addition (see [`Instant::saturating_add`]).
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating difference (see [`Instant::saturating_duration_since`]).
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Converts between `std::time::Instant` and the crate's [`Instant`] with an explicit epoch.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: std::time::Instant,
}

#[cfg(feature = "std")]
impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock { base: std::time::Instant::now() }
    }

    /// A clock whose epoch is `base`.
    pub fn with_base(base: std::time::Instant) -> Self {
        Clock { base }
    }

    /// The current time. Pass this (not a deadline you armed) to `handle_timeout`.
    pub fn now(&self) -> Instant {
        self.from_std(std::time::Instant::now())
    }

    /// The crate instant for a `std` instant (instants before the epoch map to the epoch).
    pub fn from_std(&self, t: std::time::Instant) -> Instant {
        Instant(duration_ms(t.saturating_duration_since(self.base)))
    }

    /// The `std` instant for a crate instant, for `sleep_until`.
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        self.base + Duration::from_millis(t.0)
    }
}

#[cfg(feature = "std")]
impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(10);
        assert_eq!(t + Duration::from_millis(5), Instant::from_millis(15));
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(t - Instant::from_millis(20), Duration::ZERO);
        assert_eq!(Instant::from_millis(20) - t, Duration::from_millis(10));
        assert_eq!(Instant::MAX.checked_add(Duration::from_millis(1)), None);
    }
}
