//! Strict decoding into [`Message`] and exact-length encoding from it.
//!
//! One policy on both sides: frame ≤ [`MAX_FRAME_SIZE`], room id ≤ [`MAX_ROOM_ID_LEN`] bytes of UTF-8, every
//! varint canonical and ≤ `u32::MAX`, every string UTF-8, no trailing bytes, JoinError tails only with the code
//! that carries them. Anything [`Message::encode_into_slice`] writes, [`Message::decode`] accepts and turns back
//! into the same message; anything `decode` accepts re-encodes to the same bytes.

use alloc::vec::Vec;

use bytes::{BufMut, Bytes};

use super::error::{DecodeError, EncodeError, Field};
use super::message::{Body, Message, MessageType, Updates};
use super::reader::{put_var_bytes, put_varint, var_bytes_len, varint_len, RawError, RawKind, Reader};
use super::{AckStatus, BatchId, CrdtType, JoinErrorCode, Permission, RoomErrorCode};

/// Largest frame the protocol allows, in bytes (256 KiB). A frame of exactly this size is valid.
pub const MAX_FRAME_SIZE: usize = 256 * 1024;
/// Largest room id, in UTF-8 bytes.
pub const MAX_ROOM_ID_LEN: usize = 128;
/// Largest value a varint may carry (the official TypeScript decoder reads only 32 bits).
pub const MAX_VARINT: u32 = u32::MAX;

impl From<RawError<Field>> for DecodeError {
    fn from(e: RawError<Field>) -> Self {
        let RawError { offset, field, kind } = e;
        match kind {
            RawKind::Truncated { needed } => DecodeError::Truncated { offset, field, needed },
            RawKind::Overflow => DecodeError::VarintOverflow { offset, field },
            RawKind::NotCanonical => DecodeError::VarintNotCanonical { offset, field },
            RawKind::LengthOutOfBounds { len, remaining } => {
                DecodeError::LengthOutOfBounds { offset, field, len: u32::try_from(len).unwrap_or(u32::MAX), remaining }
            }
            RawKind::InvalidUtf8 => DecodeError::InvalidUtf8 { offset, field },
        }
    }
}

/// Decodes one binary frame. Shorthand for [`Message::decode`].
pub fn decode(frame: &[u8]) -> Result<Message<'_>, DecodeError> {
    Message::decode(frame)
}

impl<'a> Message<'a> {
    /// Decodes one binary frame, borrowing every field from `frame`. Never allocates, never panics.
    pub fn decode(frame: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        if frame.len() > MAX_FRAME_SIZE {
            return Err(DecodeError::FrameTooLarge { len: frame.len(), max: MAX_FRAME_SIZE });
        }
        let mut r = Reader::new(frame);
        let magic: [u8; 4] = r.array(Field::Magic)?;
        let crdt = CrdtType::from_magic(magic).ok_or(DecodeError::UnknownCrdt { magic })?;
        let room_at = r.pos();
        let room_bytes = r.var_bytes(Field::RoomId)?;
        if room_bytes.len() > MAX_ROOM_ID_LEN {
            return Err(DecodeError::RoomIdTooLong { offset: room_at, len: room_bytes.len(), max: MAX_ROOM_ID_LEN });
        }
        let room = core::str::from_utf8(room_bytes)
            .map_err(|_| DecodeError::InvalidUtf8 { offset: r.pos() - room_bytes.len(), field: Field::RoomId })?;
        let type_at = r.pos();
        let type_byte = r.u8(Field::MessageType)?;
        let ty = MessageType::from_u8(type_byte)
            .ok_or(DecodeError::UnknownMessageType { offset: type_at, byte: type_byte })?;
        let body = decode_body(ty, &mut r)?;
        if r.remaining() != 0 {
            return Err(DecodeError::TrailingBytes { offset: r.pos(), count: r.remaining() });
        }
        Ok(Message { crdt, room, body })
    }
}

// Inlined into its only caller so the body is built in place rather than copied out of a returned `Result`.
#[inline(always)]
fn decode_body<'a>(ty: MessageType, r: &mut Reader<'a>) -> Result<Body<'a>, DecodeError> {
    Ok(match ty {
        MessageType::JoinRequest => {
            Body::JoinRequest { auth: r.var_bytes(Field::Auth)?, version: r.var_bytes(Field::Version)? }
        }
        MessageType::JoinResponseOk => {
            let at = r.pos();
            let permission = Permission::from_wire(r.var_bytes(Field::Permission)?)
                .ok_or(DecodeError::InvalidPermission { offset: at })?;
            Body::JoinResponseOk {
                permission,
                version: r.var_bytes(Field::Version)?,
                extra: r.var_bytes(Field::Extra)?,
            }
        }
        MessageType::JoinError => {
            let code = JoinErrorCode(r.u8(Field::Code)?);
            let message = r.var_str(Field::Message)?;
            let mut receiver_version = None;
            let mut app_code = None;
            if r.remaining() > 0 {
                if code == JoinErrorCode::VERSION_UNKNOWN {
                    receiver_version = Some(r.var_bytes(Field::ReceiverVersion)?);
                } else if code == JoinErrorCode::APP_ERROR {
                    app_code = Some(r.var_str(Field::AppCode)?);
                }
                // Any other code carries no tail: what remains is reported as trailing bytes.
            }
            Body::JoinError { code, message, receiver_version, app_code }
        }
        MessageType::DocUpdate => {
            let count_at = r.pos();
            let count = r.varint_u32(Field::UpdateCount)?;
            // Each update takes at least its 1-byte length prefix, and the batch id follows: bound the count by
            // what remains before walking it.
            let room_for = r.remaining().saturating_sub(BatchId::LEN);
            if count as usize > room_for {
                return Err(DecodeError::CountOutOfBounds {
                    offset: count_at,
                    field: Field::UpdateCount,
                    count,
                    remaining: r.remaining(),
                });
            }
            let start = r.pos();
            for _ in 0..count {
                r.var_bytes(Field::Update)?;
            }
            let region = r.consumed_since(start);
            let batch_id = BatchId(r.array(Field::BatchId)?);
            Body::DocUpdate { updates: Updates::wire(count, region), batch_id }
        }
        MessageType::DocUpdateFragmentHeader => Body::FragmentHeader {
            batch_id: BatchId(r.array(Field::BatchId)?),
            fragment_count: r.varint_u32(Field::FragmentCount)?,
            total_size: r.varint_u32(Field::TotalSize)?,
        },
        MessageType::DocUpdateFragment => Body::Fragment {
            batch_id: BatchId(r.array(Field::BatchId)?),
            index: r.varint_u32(Field::FragmentIndex)?,
            data: r.var_bytes(Field::FragmentData)?,
        },
        MessageType::RoomError => {
            Body::RoomError { code: RoomErrorCode(r.u8(Field::Code)?), message: r.var_str(Field::Message)? }
        }
        MessageType::Leave => Body::Leave,
        MessageType::Ack => {
            Body::Ack { ref_id: BatchId(r.array(Field::BatchId)?), status: AckStatus(r.u8(Field::Status)?) }
        }
    })
}

/// A JoinError tail is only allowed with the code that carries it.
#[inline]
fn check_tails(code: JoinErrorCode, receiver_version: bool, app_code: bool) -> Result<(), EncodeError> {
    if receiver_version && code != JoinErrorCode::VERSION_UNKNOWN {
        return Err(EncodeError::TailNotAllowed {
            field: Field::ReceiverVersion,
            code,
            required: JoinErrorCode::VERSION_UNKNOWN,
        });
    }
    if app_code && code != JoinErrorCode::APP_ERROR {
        return Err(EncodeError::TailNotAllowed { field: Field::AppCode, code, required: JoinErrorCode::APP_ERROR });
    }
    Ok(())
}

fn check_len(field: Field, len: usize) -> Result<(), EncodeError> {
    if len > MAX_VARINT as usize {
        return Err(EncodeError::TooLong { field, len });
    }
    Ok(())
}

impl Message<'_> {
    /// The exact number of bytes [`encode_into_slice`](Self::encode_into_slice) writes (saturating at
    /// `usize::MAX`). Does not validate; see [`encoded_len_checked`](Self::encoded_len_checked).
    #[inline]
    pub fn encoded_len(&self) -> usize {
        (4 + var_bytes_len(self.room.len()) + 1).saturating_add(body_len(&self.body))
    }

    /// Validates the message against the codec policy and returns its exact encoded length.
    #[inline]
    pub fn encoded_len_checked(&self) -> Result<usize, EncodeError> {
        if self.room.len() > MAX_ROOM_ID_LEN {
            return Err(EncodeError::RoomIdTooLong { len: self.room.len(), max: MAX_ROOM_ID_LEN });
        }
        let len = self.encoded_len();
        if len <= MAX_FRAME_SIZE {
            // Within the frame limit every length and count fits a 32-bit varint, so only the JoinError tails are
            // left to check.
            if let Body::JoinError { code, receiver_version, app_code, .. } = &self.body {
                check_tails(*code, receiver_version.is_some(), app_code.is_some())?;
            }
            return Ok(len);
        }
        self.check_fields()?;
        Err(EncodeError::FrameTooLarge { len, max: MAX_FRAME_SIZE })
    }

    /// The per-field checks of an over-size message, in field order: a length or count no 32-bit varint can carry,
    /// or a JoinError tail without its code.
    #[cold]
    fn check_fields(&self) -> Result<(), EncodeError> {
        match &self.body {
            Body::JoinRequest { auth, version } => {
                check_len(Field::Auth, auth.len())?;
                check_len(Field::Version, version.len())?;
            }
            Body::JoinResponseOk { version, extra, .. } => {
                check_len(Field::Version, version.len())?;
                check_len(Field::Extra, extra.len())?;
            }
            Body::JoinError { code, message, receiver_version, app_code } => {
                check_len(Field::Message, message.len())?;
                if let Some(v) = receiver_version {
                    if *code != JoinErrorCode::VERSION_UNKNOWN {
                        return Err(EncodeError::TailNotAllowed {
                            field: Field::ReceiverVersion,
                            code: *code,
                            required: JoinErrorCode::VERSION_UNKNOWN,
                        });
                    }
                    check_len(Field::ReceiverVersion, v.len())?;
                }
                if let Some(a) = app_code {
                    if *code != JoinErrorCode::APP_ERROR {
                        return Err(EncodeError::TailNotAllowed {
                            field: Field::AppCode,
                            code: *code,
                            required: JoinErrorCode::APP_ERROR,
                        });
                    }
                    check_len(Field::AppCode, a.len())?;
                }
            }
            Body::DocUpdate { updates, .. } => {
                check_len(Field::UpdateCount, updates.len())?;
                for u in updates {
                    check_len(Field::Update, u.len())?;
                }
            }
            Body::Fragment { data, .. } => check_len(Field::FragmentData, data.len())?,
            Body::RoomError { message, .. } => check_len(Field::Message, message.len())?,
            Body::FragmentHeader { .. } | Body::Leave | Body::Ack { .. } => {}
        }
        Ok(())
    }

    /// Encodes into the start of `out` and returns the number of bytes written. On any error `out` is left
    /// untouched. Never allocates.
    pub fn encode_into_slice(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.encoded_len_checked()?;
        let available = out.len();
        let mut dst = out.get_mut(..len).ok_or(EncodeError::BufferTooSmall { required: len, available })?;
        self.write_unchecked(&mut dst);
        debug_assert!(dst.is_empty());
        Ok(len)
    }

    /// Appends the frame to `out`, reserving exactly what it needs (no allocation when `out` already has the
    /// capacity). Returns the number of bytes appended; on error `out` is unchanged.
    pub fn encode_into_vec(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let len = self.encoded_len_checked()?;
        out.reserve(len);
        let before = out.len();
        self.write_unchecked(out);
        debug_assert_eq!(out.len() - before, len);
        Ok(len)
    }

    /// Encodes into a new, exactly sized buffer: one allocation.
    pub fn encode_to_bytes(&self) -> Result<Bytes, EncodeError> {
        let len = self.encoded_len_checked()?;
        let mut out = Vec::with_capacity(len);
        self.write_unchecked(&mut out);
        Ok(Bytes::from(out))
    }

    /// Writes the frame to any [`BufMut`] after validation. Returns the number of bytes written.
    pub fn encode_into_buf<B: BufMut>(&self, out: &mut B) -> Result<usize, EncodeError> {
        let len = self.encoded_len_checked()?;
        if out.remaining_mut() < len {
            return Err(EncodeError::BufferTooSmall { required: len, available: out.remaining_mut() });
        }
        self.write_unchecked(out);
        Ok(len)
    }

    /// Encodes a message the caller has already validated (e.g. a fragment sized by the planner) into a new,
    /// exactly sized buffer. Validity is re-checked only in debug builds.
    pub(crate) fn encode_to_bytes_prevalidated(&self) -> Bytes {
        debug_assert!(self.encoded_len_checked().is_ok(), "message was not prevalidated");
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_unchecked(&mut out);
        Bytes::from(out)
    }

    fn write_unchecked<B: BufMut + ?Sized>(&self, out: &mut B) {
        out.put_slice(&self.crdt.magic());
        put_var_bytes(out, self.room.as_bytes());
        out.put_u8(self.body.message_type() as u8);
        match &self.body {
            Body::JoinRequest { auth, version } => {
                put_var_bytes(out, auth);
                put_var_bytes(out, version);
            }
            Body::JoinResponseOk { permission, version, extra } => {
                put_var_bytes(out, permission.as_str().as_bytes());
                put_var_bytes(out, version);
                put_var_bytes(out, extra);
            }
            Body::JoinError { code, message, receiver_version, app_code } => {
                out.put_u8(code.0);
                put_var_bytes(out, message.as_bytes());
                if let Some(v) = receiver_version {
                    put_var_bytes(out, v);
                }
                if let Some(a) = app_code {
                    put_var_bytes(out, a.as_bytes());
                }
            }
            Body::DocUpdate { updates, batch_id } => {
                put_varint(out, updates.len() as u64);
                match updates.wire_region() {
                    // A decoded region is already canonical: copy it in one go.
                    Some(region) => out.put_slice(region),
                    None => {
                        for u in updates {
                            put_var_bytes(out, u);
                        }
                    }
                }
                out.put_slice(&batch_id.0);
            }
            Body::FragmentHeader { batch_id, fragment_count, total_size } => {
                out.put_slice(&batch_id.0);
                put_varint(out, u64::from(*fragment_count));
                put_varint(out, u64::from(*total_size));
            }
            Body::Fragment { batch_id, index, data } => {
                out.put_slice(&batch_id.0);
                put_varint(out, u64::from(*index));
                put_var_bytes(out, data);
            }
            Body::RoomError { code, message } => {
                out.put_u8(code.0);
                put_var_bytes(out, message.as_bytes());
            }
            Body::Leave => {}
            Body::Ack { ref_id, status } => {
                out.put_slice(&ref_id.0);
                out.put_u8(status.0);
            }
        }
    }
}

/// Encoded body length, saturating (so a sum of huge slices can never wrap into a small length).
#[inline]
fn body_len(body: &Body<'_>) -> usize {
    match body {
        Body::JoinRequest { auth, version } => var_bytes_len(auth.len()).saturating_add(var_bytes_len(version.len())),
        Body::JoinResponseOk { permission, version, extra } => (var_bytes_len(permission.as_str().len()))
            .saturating_add(var_bytes_len(version.len()))
            .saturating_add(var_bytes_len(extra.len())),
        Body::JoinError { message, receiver_version, app_code, .. } => (1 + var_bytes_len(message.len()))
            .saturating_add(receiver_version.map_or(0, |v| var_bytes_len(v.len())))
            .saturating_add(app_code.map_or(0, |a| var_bytes_len(a.len()))),
        Body::DocUpdate { updates, .. } => {
            (varint_len(updates.len() as u64) + BatchId::LEN).saturating_add(updates.entries_len())
        }
        Body::FragmentHeader { fragment_count, total_size, .. } => {
            BatchId::LEN + varint_len(u64::from(*fragment_count)) + varint_len(u64::from(*total_size))
        }
        Body::Fragment { index, data, .. } => BatchId::LEN + varint_len(u64::from(*index)) + var_bytes_len(data.len()),
        Body::RoomError { message, .. } => 1 + var_bytes_len(message.len()),
        Body::Leave => 0,
        Body::Ack { .. } => BatchId::LEN + 1,
    }
}

/// Fixed bytes a DocUpdateFragment adds around its data for a room id of `room_len` bytes, a fragment index of
/// `index`, and `data_len` bytes of data: the exact frame length is `fragment_overhead(..) + data_len`.
pub const fn fragment_overhead(room_len: usize, index: u32, data_len: usize) -> usize {
    4 + var_bytes_len(room_len) + 1 + BatchId::LEN + varint_len(index as u64) + varint_len(data_len as u64)
}

/// Fixed bytes a DocUpdate adds around its updates: magic, room, type, count, batch id.
pub const fn doc_update_overhead(room_len: usize, count: usize) -> usize {
    4 + var_bytes_len(room_len) + 1 + varint_len(count as u64) + BatchId::LEN
}

/// Bytes one update takes inside a DocUpdate (its length prefix plus the bytes).
pub const fn update_entry_len(update_len: usize) -> usize {
    var_bytes_len(update_len)
}
