//! Keepalive: a text `ping` after receive silence, `pong` deadlines, missed-pong counting.
//!
//! One probe (an unanswered `ping`) at a time. The idle timer runs from the last received frame; the pong timer
//! from the probe. A late pong counts a miss and sends the next ping at once, so a dead transport is detected
//! `ping_interval + max_missed_pongs × pong_timeout` after the last frame received (40 s by default), never
//! rounded up to a multiple of the interval. Any received frame resets the miss count: a server that is
//! sending data is alive even when it is slow to answer pings.

use core::time::Duration;

use super::config::{at_least_1ms, KeepaliveConfig};
use crate::time::Instant;

/// What a due keepalive timer asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepaliveAction {
    /// Nothing is due.
    None,
    /// Send a `ping` (the probe is recorded).
    Ping,
    /// Too many pongs were missed: close the transport with 4000.
    Close,
}

/// Keepalive state of one open transport.
#[derive(Clone, Debug)]
pub(crate) struct Keepalive {
    interval: Option<Duration>,
    pong_timeout: Duration,
    max_missed: u32,
    last_rx: Instant,
    /// When the outstanding ping was sent.
    probe: Option<Instant>,
    missed: u32,
}

impl Keepalive {
    /// Keepalive for a transport opened at `now`.
    pub(crate) fn new(cfg: &KeepaliveConfig, now: Instant) -> Self {
        Keepalive {
            interval: cfg.ping_interval.map(at_least_1ms),
            pong_timeout: at_least_1ms(cfg.pong_timeout),
            max_missed: cfg.max_missed_pongs.max(1),
            last_rx: now,
            probe: None,
            missed: 0,
        }
    }

    /// A frame arrived.
    pub(crate) fn on_receive(&mut self, now: Instant) {
        self.last_rx = now;
        self.missed = 0;
    }

    /// A `pong` arrived: the round-trip time of the outstanding probe, if there was one.
    pub(crate) fn on_pong(&mut self, now: Instant) -> Option<Duration> {
        self.missed = 0;
        self.probe.take().map(|sent| now - sent)
    }

    /// Starts a probe unless one is outstanding; true when a `ping` must be sent.
    pub(crate) fn start_probe(&mut self, now: Instant) -> bool {
        if self.probe.is_some() {
            return false;
        }
        self.probe = Some(now);
        true
    }

    /// True while a `ping` is unanswered.
    pub(crate) fn probing(&self) -> bool {
        self.probe.is_some()
    }

    /// The next keepalive deadline.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self.probe {
            Some(sent) => Some(sent + self.pong_timeout),
            None => self.interval.map(|i| self.last_rx + i),
        }
    }

    /// Runs a due timer. Afterwards no keepalive deadline is at or before `now`.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> KeepaliveAction {
        match self.probe {
            Some(sent) if sent + self.pong_timeout <= now => {
                if self.interval.is_none() {
                    // Keepalive is off: a probe from a manual ping just lapses (the ping has its own deadline).
                    self.probe = None;
                    return KeepaliveAction::None;
                }
                self.missed += 1;
                if self.missed >= self.max_missed {
                    self.probe = None;
                    return KeepaliveAction::Close;
                }
                self.probe = Some(now);
                KeepaliveAction::Ping
            }
            Some(_) => KeepaliveAction::None,
            None => match self.interval {
                Some(i) if self.last_rx + i <= now => {
                    self.probe = Some(now);
                    KeepaliveAction::Ping
                }
                _ => KeepaliveAction::None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_misses_close_forty_seconds_after_silence() {
        let mut k = Keepalive::new(&KeepaliveConfig::default(), Instant::ZERO);
        assert_eq!(k.poll_timeout(), Some(Instant::from_millis(20_000)));
        assert_eq!(k.handle_timeout(Instant::from_millis(19_999)), KeepaliveAction::None);
        assert_eq!(k.handle_timeout(Instant::from_millis(20_000)), KeepaliveAction::Ping);
        assert_eq!(k.poll_timeout(), Some(Instant::from_millis(30_000)));
        assert_eq!(k.handle_timeout(Instant::from_millis(30_000)), KeepaliveAction::Ping);
        assert_eq!(k.handle_timeout(Instant::from_millis(40_000)), KeepaliveAction::Close);
    }
}
