//! [`Transmit`]: what a session asks its driver to do with the transport, in order.

use crate::close::CloseCode;
use crate::wire::{Frame, Utf8Bytes};

/// One instruction for the driver, drained from a session's `poll_transmit`.
///
/// Frames and transport instructions share one queue so their order is kept: frames queued before a `Close`
/// must be written (flushed) before the transport is closed with that code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Open a new transport (client only); report the result with `transport_opened` / `transport_closed`.
    Open,
    /// Write this frame.
    Frame(Frame),
    /// Flush what was written, then close the transport with this code and reason.
    Close {
        /// The close code.
        code: CloseCode,
        /// A short reason (≤ 123 bytes, the WebSocket limit).
        reason: Utf8Bytes,
    },
}
