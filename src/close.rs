//! Close codes both sessions use (WebSocket close codes; other transports carry them as plain numbers).
//!
//! | code | meaning | client reconnects? |
//! |------|---------|--------------------|
//! | 1000 | normal closure | no (the app closed) / yes when the server closed normally |
//! | 1002 | protocol error (undecodable frame) | yes, with backoff |
//! | 1008 | policy violation, authentication | **no** (fatal until `retry_now`) |
//! | 1009 | message too big | yes, with backoff |
//! | 1011 | server internal error | yes, with backoff (the official client gives up; a crashed server should be retried) |
//! | 1013 | try again later (overloaded, slow reader) | yes, with backoff |
//! | 4000 | client: ping timeout | yes |
//! | 4001 | client: going offline | yes, when back online |
//! | 4002 | client: protocol error from the server | yes, with backoff |
//! | 4400–4499 | application-fatal | **no** (fatal until `retry_now`) |
//!
//! A client may only *send* 1000 or 3000–4999: browsers throw on anything else, which is why the official
//! client's `close(1001)` silently does nothing in a browser.

use core::fmt;

/// A transport close code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: going away (servers only; browsers refuse to send it).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1008: policy violation / authentication failure. Fatal for reconnects.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: message too big.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: internal error.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 4000: the client detected a ping timeout.
    pub const PING_TIMEOUT: CloseCode = CloseCode(4000);
    /// 4001: the client went offline.
    pub const OFFLINE: CloseCode = CloseCode(4001);
    /// 4002: the client received frames it could not decode and chose to close.
    pub const CLIENT_PROTOCOL_ERROR: CloseCode = CloseCode(4002);
    /// First application-fatal code.
    pub const APP_FATAL_MIN: CloseCode = CloseCode(4400);
    /// Last application-fatal code.
    pub const APP_FATAL_MAX: CloseCode = CloseCode(4499);

    /// True when a client must not reconnect automatically (1008, 4400–4499).
    pub const fn is_fatal(self) -> bool {
        self.0 == 1008 || (self.0 >= 4400 && self.0 <= 4499)
    }

    /// True when a browser client may send this code (1000, 3000–4999).
    pub const fn is_client_sendable(self) -> bool {
        self.0 == 1000 || (self.0 >= 3000 && self.0 <= 4999)
    }
}

/// Close reasons that make a client stop reconnecting, whatever the code (as the official client).
pub const FATAL_REASONS: [&str; 3] = ["permission_changed", "room_closed", "auth_failed"];

/// True when a close with `code` and `reason` must stop automatic reconnects.
pub fn is_fatal_close(code: Option<CloseCode>, reason: &str) -> bool {
    code.is_some_and(CloseCode::is_fatal) || FATAL_REASONS.contains(&reason)
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_and_sendable() {
        assert!(CloseCode::POLICY.is_fatal());
        assert!(CloseCode(4400).is_fatal() && CloseCode(4499).is_fatal());
        assert!(!CloseCode(4500).is_fatal() && !CloseCode::INTERNAL_ERROR.is_fatal());
        assert!(!CloseCode::TRY_AGAIN_LATER.is_fatal());
        assert!(CloseCode::NORMAL.is_client_sendable() && CloseCode::PING_TIMEOUT.is_client_sendable());
        assert!(!CloseCode::GOING_AWAY.is_client_sendable());
        assert!(is_fatal_close(Some(CloseCode::NORMAL), "room_closed"));
        assert!(!is_fatal_close(None, "bye"));
    }
}
