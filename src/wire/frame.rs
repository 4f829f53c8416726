//! Transport frames: text vs binary, and the out-of-band `ping`/`pong` keepalive.

use bytes::Bytes;

use super::error::DecodeError;
use super::message::Message;

/// The exact payload of a keepalive ping text frame.
pub const PING: &[u8] = b"ping";
/// The exact payload of a keepalive pong text frame.
pub const PONG: &[u8] = b"pong";

/// One transport message as a WebSocket (or any message-oriented transport) delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A binary frame: a protocol message.
    Binary(Bytes),
    /// A text frame: only `ping` and `pong` have a meaning.
    Text(Bytes),
}

impl Frame {
    /// The text frame `ping` (no allocation).
    pub const fn ping() -> Frame {
        Frame::Text(Bytes::from_static(PING))
    }

    /// The text frame `pong` (no allocation).
    pub const fn pong() -> Frame {
        Frame::Text(Bytes::from_static(PONG))
    }

    /// The payload bytes.
    pub fn payload(&self) -> &Bytes {
        match self {
            Frame::Binary(b) | Frame::Text(b) => b,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.payload().is_empty()
    }

    /// True for a text frame.
    pub fn is_text(&self) -> bool {
        matches!(self, Frame::Text(_))
    }

    /// Classifies and decodes the frame: keepalive, protocol message, or other text.
    pub fn decode(&self) -> Result<Inbound<'_>, DecodeError> {
        match self {
            Frame::Text(t) => Ok(match Keepalive::from_text(t) {
                Some(k) => Inbound::Keepalive(k),
                None => Inbound::OtherText(t),
            }),
            Frame::Binary(b) => Message::decode(b).map(Inbound::Message),
        }
    }
}

/// A keepalive frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Keepalive {
    /// `ping`: the receiver must answer `pong`.
    Ping,
    /// `pong`: the answer to a `ping`.
    Pong,
}

impl Keepalive {
    /// Recognises a text payload that is exactly `ping` or `pong` (case-sensitive, no whitespace).
    pub fn from_text(t: &[u8]) -> Option<Self> {
        match t {
            PING => Some(Keepalive::Ping),
            PONG => Some(Keepalive::Pong),
            _ => None,
        }
    }

    /// The frame carrying this keepalive.
    pub const fn frame(self) -> Frame {
        match self {
            Keepalive::Ping => Frame::ping(),
            Keepalive::Pong => Frame::pong(),
        }
    }
}

/// What a received frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A `ping` or `pong` text frame.
    Keepalive(Keepalive),
    /// A binary protocol message.
    Message(Message<'a>),
    /// A text frame that is neither `ping` nor `pong`; the protocol gives it no meaning.
    OtherText(&'a [u8]),
}
