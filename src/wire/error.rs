//! Typed codec errors. Every decode error names the field and the byte offset where decoding stopped.

use core::fmt;

/// A field of the wire format, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The 4-byte CRDT magic.
    Magic,
    /// The room id.
    RoomId,
    /// The message type byte.
    MessageType,
    /// JoinRequest auth (join payload).
    Auth,
    /// A version (JoinRequest or JoinResponseOk).
    Version,
    /// JoinResponseOk permission string.
    Permission,
    /// JoinResponseOk extra metadata.
    Extra,
    /// A JoinError or RoomError code byte.
    Code,
    /// A human-readable message string.
    Message,
    /// JoinError receiver version (version_unknown only).
    ReceiverVersion,
    /// JoinError application code (app_error only).
    AppCode,
    /// DocUpdate update count.
    UpdateCount,
    /// One DocUpdate update.
    Update,
    /// A batch or reference id.
    BatchId,
    /// Fragment header fragment count.
    FragmentCount,
    /// Fragment header total size.
    TotalSize,
    /// Fragment index.
    FragmentIndex,
    /// Fragment payload.
    FragmentData,
    /// Ack status byte.
    Status,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Magic => "CRDT magic",
            Field::RoomId => "room id",
            Field::MessageType => "message type",
            Field::Auth => "auth",
            Field::Version => "version",
            Field::Permission => "permission",
            Field::Extra => "extra",
            Field::Code => "code",
            Field::Message => "message",
            Field::ReceiverVersion => "receiver version",
            Field::AppCode => "app code",
            Field::UpdateCount => "update count",
            Field::Update => "update",
            Field::BatchId => "batch id",
            Field::FragmentCount => "fragment count",
            Field::TotalSize => "total size",
            Field::FragmentIndex => "fragment index",
            Field::FragmentData => "fragment data",
            Field::Status => "status",
        })
    }
}

/// Why a binary frame is not a valid Loro Protocol v1 message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is longer than the protocol's 262,144-byte limit.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// Frame length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame ended inside a field.
    #[error("frame ends at byte {offset} inside the {field} ({needed} more bytes needed)")]
    Truncated {
        /// Offset where the field (or its missing part) starts.
        offset: usize,
        /// The field being read.
        field: Field,
        /// How many more bytes the field needs.
        needed: usize,
    },
    /// The magic is not one of the seven CRDT types.
    #[error("unknown CRDT magic {magic:02x?} at byte 0")]
    UnknownCrdt {
        /// The four bytes found.
        magic: [u8; 4],
    },
    /// The message type byte is outside 0x00..=0x08.
    #[error("unknown message type 0x{byte:02x} at byte {offset}")]
    UnknownMessageType {
        /// Offset of the type byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// A LEB128 value does not fit in 32 bits (the official TypeScript decoder reads only 32).
    #[error("varint for the {field} at byte {offset} exceeds u32::MAX")]
    VarintOverflow {
        /// Offset of the varint's first byte.
        offset: usize,
        /// The field.
        field: Field,
    },
    /// A LEB128 value is not in its shortest form (e.g. `81 00` for 1).
    #[error("varint for the {field} at byte {offset} is not minimally encoded")]
    VarintNotCanonical {
        /// Offset of the varint's first byte.
        offset: usize,
        /// The field.
        field: Field,
    },
    /// A length prefix claims more bytes than the frame has left.
    #[error("{field} at byte {offset} claims {len} bytes but only {remaining} remain")]
    LengthOutOfBounds {
        /// Offset of the length prefix.
        offset: usize,
        /// The field.
        field: Field,
        /// The claimed length.
        len: u32,
        /// Bytes left after the prefix.
        remaining: usize,
    },
    /// A count claims more elements than the remaining bytes could hold.
    #[error("{field} at byte {offset} claims {count} elements but only {remaining} bytes remain")]
    CountOutOfBounds {
        /// Offset of the count.
        offset: usize,
        /// The field.
        field: Field,
        /// The claimed count.
        count: u32,
        /// Bytes left after the count.
        remaining: usize,
    },
    /// The room id is longer than 128 bytes.
    #[error("room id at byte {offset} is {len} bytes, over the {max}-byte limit")]
    RoomIdTooLong {
        /// Offset of the room id's length prefix.
        offset: usize,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string field is not valid UTF-8.
    #[error("{field} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the string's first byte.
        offset: usize,
        /// The field.
        field: Field,
    },
    /// The permission is neither `"read"` nor `"write"`.
    #[error("permission at byte {offset} is neither \"read\" nor \"write\"")]
    InvalidPermission {
        /// Offset of the permission's length prefix.
        offset: usize,
    },
    /// Bytes follow the last field of the message.
    #[error("{count} trailing bytes at byte {offset}")]
    TrailingBytes {
        /// Offset of the first trailing byte.
        offset: usize,
        /// How many there are.
        count: usize,
    },
}

impl DecodeError {
    /// The byte offset the error refers to (0 for frame-level errors).
    pub fn offset(&self) -> usize {
        match *self {
            DecodeError::FrameTooLarge { .. } | DecodeError::UnknownCrdt { .. } => 0,
            DecodeError::Truncated { offset, .. }
            | DecodeError::UnknownMessageType { offset, .. }
            | DecodeError::VarintOverflow { offset, .. }
            | DecodeError::VarintNotCanonical { offset, .. }
            | DecodeError::LengthOutOfBounds { offset, .. }
            | DecodeError::CountOutOfBounds { offset, .. }
            | DecodeError::RoomIdTooLong { offset, .. }
            | DecodeError::InvalidUtf8 { offset, .. }
            | DecodeError::InvalidPermission { offset }
            | DecodeError::TrailingBytes { offset, .. } => offset,
        }
    }
}

/// Why a message cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded frame would exceed the 262,144-byte limit.
    #[error("encoded frame of {len} bytes exceeds the {max}-byte limit")]
    FrameTooLarge {
        /// The exact encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The room id is longer than 128 bytes.
    #[error("room id of {len} bytes exceeds the {max}-byte limit")]
    RoomIdTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field's length or a count does not fit the protocol's 32-bit varints.
    #[error("{field} of {len} does not fit in a 32-bit varint")]
    TooLong {
        /// The field.
        field: Field,
        /// The value that does not fit.
        len: usize,
    },
    /// An optional JoinError tail was given for a code that does not carry it
    /// (`receiver_version` needs version_unknown, `app_code` needs app_error).
    #[error("{field} is only allowed with JoinError code {required}, not {code}")]
    TailNotAllowed {
        /// The tail field.
        field: Field,
        /// The code given.
        code: super::JoinErrorCode,
        /// The code that carries this tail.
        required: super::JoinErrorCode,
    },
    /// The output slice is too small; it was left untouched.
    #[error("output buffer of {available} bytes is smaller than the {required} bytes needed")]
    BufferTooSmall {
        /// Bytes needed.
        required: usize,
        /// Bytes available.
        available: usize,
    },
}
