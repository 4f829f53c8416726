//! The reconnect schedule: exponential backoff, cap, then jitter; attempt counting.

use core::time::Duration;

use super::config::{at_least_1ms, ReconnectConfig};
use super::event::StopReason;
use crate::time::{duration_ms, Instant};

impl ReconnectConfig {
    /// The delay before automatic attempt `attempt` (1-based), given a uniformly random `random`.
    ///
    /// `min(initial_delay × 2^(attempt−1), max_delay)`, then scaled by `1 − j + 2j·random/2^32` where
    /// `j = jitter_permille / 1000`: the cap comes first, so capped delays keep their spread.
    pub fn delay(&self, attempt: u32, random: u32) -> Duration {
        let initial = duration_ms(at_least_1ms(self.initial_delay));
        let cap = duration_ms(at_least_1ms(self.max_delay));
        let doublings = attempt.saturating_sub(1).min(63);
        let raw = initial.saturating_mul(1u64 << doublings);
        let capped = u128::from(raw.min(cap));
        let j = u128::from(self.jitter_permille.min(1000));
        // A factor in thousandths, uniform over [1000 − j, 1000 + j].
        let factor = 1000 - j + ((u128::from(random) * (2 * j + 1)) >> 32);
        let ms = capped * factor / 1000;
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// Attempts since the last healthy connection and the armed retry timer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Retry {
    /// Automatic attempts made since the last healthy connection (or `retry_now`).
    pub(crate) attempts: u32,
    /// When the next automatic attempt is due.
    pub(crate) at: Option<Instant>,
}

impl Retry {
    /// Arms the next attempt, or says why there is none.
    pub(crate) fn schedule(&mut self, cfg: &ReconnectConfig, now: Instant, random: u32) -> Result<Instant, StopReason> {
        if !cfg.enabled {
            return Err(StopReason::Disabled);
        }
        if cfg.max_attempts.is_some_and(|max| self.attempts >= max) {
            return Err(StopReason::MaxAttempts);
        }
        self.attempts = self.attempts.saturating_add(1);
        // At least 1 ms, so a retry armed inside handle_timeout(now) is never already due.
        let at = now + cfg.delay(self.attempts, random).max(Duration::from_millis(1));
        self.at = Some(at);
        Ok(at)
    }

    /// Counts an attempt made at once (back online): the backoff is kept, not reset.
    pub(crate) fn count_immediate(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
        self.at = None;
    }

    /// The connection proved healthy: the backoff starts over.
    pub(crate) fn reset(&mut self) {
        self.attempts = 0;
    }

    /// Disarms the timer.
    pub(crate) fn cancel(&mut self) {
        self.at = None;
    }

    /// Takes the timer when it is due.
    pub(crate) fn take_due(&mut self, now: Instant) -> bool {
        if self.at.is_some_and(|at| at <= now) {
            self.at = None;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_then_jitters() {
        let cfg = ReconnectConfig { jitter_permille: 0, ..ReconnectConfig::default() };
        let ms: alloc::vec::Vec<u128> = (1..=8).map(|a| cfg.delay(a, 12345).as_millis()).collect();
        assert_eq!(ms, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
        let j = ReconnectConfig::default();
        assert_eq!(j.delay(10, 0), Duration::from_millis(11_250));
        assert_eq!(j.delay(10, u32::MAX), Duration::from_millis(18_750));
        assert_eq!(j.delay(1, 0), Duration::from_millis(375));
        assert_eq!(j.delay(u32::MAX, u32::MAX), Duration::from_millis(18_750));
    }
}
