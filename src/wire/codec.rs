//! Strict decoding into [`Message`] and exact-length encoding from it.
//!
//! One policy on both sides: frame ≤ [`MAX_FRAME_SIZE`], room id ≤ [`MAX_ROOM_ID_LEN`] bytes of UTF-8, every
//! varint canonical and ≤ `u32::MAX`, every string UTF-8, no trailing bytes, JoinError tails only with the code
//! that carries them. Anything [`Message::encode_into_slice`] writes, [`Message::decode`] accepts and turns back
//! into the same message; anything `decode` accepts re-encodes to the same bytes.

use alloc::vec::Vec;

use bytes::{BufMut, Bytes};

use super::error::{DecodeError, EncodeError, Field};
use super::message::{Body, Message, MessageType, Repr, Updates};
use super::reader::{take_var_bytes, take_varint_u32, var_bytes_len, varint_len, RawError, RawKind, Reader};
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
    #[inline]
    pub fn decode(frame: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let r = decode_fast(frame);
        // Debug builds (tests, fuzzing) decode every frame twice and check that both paths agree.
        debug_assert_eq!(r, decode_strict(frame), "fast and strict decoders disagree");
        r
    }
}

/// Two passes over one policy. The fast path checks a frame and builds its message without preparing any error;
/// a frame it declines (only an invalid one: debug builds check that) [`decode_strict`] reads again, to stop at
/// the first violation with its typed error and offset. The data-path types are accepted and returned in their own
/// arms, so the message is written straight into the result.
#[inline(always)]
fn decode_fast(frame: &[u8]) -> Result<Message<'_>, DecodeError> {
    let Some((crdt, room, ty, rest)) = fast_envelope(frame) else {
        return declined(frame);
    };
    match ty {
        MessageType::DocUpdate => {
            if let Some((updates, batch_id)) = fast_doc_update(rest) {
                return Ok(Message { crdt, room, body: Body::DocUpdate { updates, batch_id } });
            }
        }
        MessageType::JoinRequest => {
            if let Some((auth, rest)) = take_var_bytes(rest) {
                if let Some((version, [])) = take_var_bytes(rest) {
                    return Ok(Message { crdt, room, body: Body::JoinRequest { auth, version } });
                }
            }
        }
        _ => {
            if let Some(body) = fast_other_body(ty, rest) {
                return Ok(Message { crdt, room, body });
            }
        }
    }
    declined(frame)
}

/// What the fast path declined, decoded again for the precise error.
#[cold]
#[inline(never)]
fn declined(frame: &[u8]) -> Result<Message<'_>, DecodeError> {
    let r = decode_strict(frame);
    debug_assert!(r.is_err(), "the fast decoder declined a valid frame");
    r
}

/// Magic, room id and type byte: `(crdt, room, type, body bytes)`.
#[inline(always)]
fn fast_envelope(frame: &[u8]) -> Option<(CrdtType, &str, MessageType, &[u8])> {
    if frame.len() > MAX_FRAME_SIZE {
        return None;
    }
    let (magic, rest) = frame.split_first_chunk::<4>()?;
    let crdt = CrdtType::from_magic(*magic)?;
    let (room, rest) = take_var_bytes(rest)?;
    if room.len() > MAX_ROOM_ID_LEN {
        return None;
    }
    let room = room_str(frame, room)?;
    let (&ty, rest) = rest.split_first()?;
    Some((crdt, room, MessageType::from_u8(ty)?, rest))
}

/// The room id (`frame[5..5 + room.len()]` when it is under 128 bytes) as a `&str`, or `None` when it is not UTF-8.
///
/// `core::str::from_utf8` checks 16 bytes at an 8-byte boundary in a few instructions but walks a short or
/// misaligned input a byte at a time: about 100 instructions for a 9-byte room id at offset 5, a third of a small
/// frame's decode. A room id of up to 11 bytes lies within the frame's first 16 bytes (an allocation's start is
/// aligned); when those are all ASCII they are validated as one block and the room id is sliced out of them (a
/// `str` sliced at character boundaries is valid UTF-8). Otherwise the room id is validated alone.
#[inline(always)]
fn room_str<'a>(frame: &'a [u8], room: &'a [u8]) -> Option<&'a str> {
    const AT: usize = 5;
    const HIGH_BITS: u128 = u128::from_ne_bytes([0x80; 16]);
    if room.len() <= 16 - AT {
        if let Some(head) = frame.first_chunk::<16>() {
            if u128::from_ne_bytes(*head) & HIGH_BITS == 0 {
                let s = core::str::from_utf8(head).ok()?.get(AT..AT + room.len())?;
                debug_assert!(core::ptr::eq(s.as_bytes(), room), "the room id is not at offset {AT}");
                return Some(s);
            }
        }
    }
    core::str::from_utf8(room).ok()
}

/// A DocUpdate body through its end.
#[inline(always)]
fn fast_doc_update(body: &[u8]) -> Option<(Updates<'_>, BatchId)> {
    let (count, after_count) = take_varint_u32(body)?;
    // Every update takes at least its length byte; this bounds the walk on hostile counts.
    if count as usize > after_count.len().saturating_sub(BatchId::LEN) {
        return None;
    }
    let mut rest = after_count;
    for _ in 0..count {
        rest = take_var_bytes(rest)?.1;
    }
    let region = after_count.get(..after_count.len() - rest.len())?;
    // The batch id ends the frame.
    let batch_id: &[u8; BatchId::LEN] = rest.try_into().ok()?;
    Some((Updates::wire(count, region), BatchId(*batch_id)))
}

/// The bodies of the control messages through their end (kept out of line: they are not on the data path).
#[inline(never)]
fn fast_other_body(ty: MessageType, rest: &[u8]) -> Option<Body<'_>> {
    let (body, rest) = match ty {
        MessageType::JoinRequest | MessageType::DocUpdate => return None,
        MessageType::DocUpdateFragment => {
            let (batch_id, rest) = rest.split_first_chunk::<8>()?;
            let (index, rest) = take_varint_u32(rest)?;
            let (data, rest) = take_var_bytes(rest)?;
            (Body::Fragment { batch_id: BatchId(*batch_id), index, data }, rest)
        }
        MessageType::JoinResponseOk => {
            let (permission, rest) = take_var_bytes(rest)?;
            let permission = Permission::from_wire(permission)?;
            let (version, rest) = take_var_bytes(rest)?;
            let (extra, rest) = take_var_bytes(rest)?;
            (Body::JoinResponseOk { permission, version, extra }, rest)
        }
        MessageType::JoinError => {
            let (&code, rest) = rest.split_first()?;
            let code = JoinErrorCode(code);
            let (message, mut rest) = take_var_str(rest)?;
            let mut receiver_version = None;
            let mut app_code = None;
            if !rest.is_empty() {
                if code == JoinErrorCode::VERSION_UNKNOWN {
                    let (v, r) = take_var_bytes(rest)?;
                    receiver_version = Some(v);
                    rest = r;
                } else if code == JoinErrorCode::APP_ERROR {
                    let (a, r) = take_var_str(rest)?;
                    app_code = Some(a);
                    rest = r;
                }
            }
            (Body::JoinError { code, message, receiver_version, app_code }, rest)
        }
        MessageType::DocUpdateFragmentHeader => {
            let (batch_id, rest) = rest.split_first_chunk::<8>()?;
            let (fragment_count, rest) = take_varint_u32(rest)?;
            let (total_size, rest) = take_varint_u32(rest)?;
            (Body::FragmentHeader { batch_id: BatchId(*batch_id), fragment_count, total_size }, rest)
        }
        MessageType::RoomError => {
            let (&code, rest) = rest.split_first()?;
            let (message, rest) = take_var_str(rest)?;
            (Body::RoomError { code: RoomErrorCode(code), message }, rest)
        }
        MessageType::Leave => (Body::Leave, rest),
        MessageType::Ack => {
            let (ref_id, rest) = rest.split_first_chunk::<8>()?;
            let (&status, rest) = rest.split_first()?;
            (Body::Ack { ref_id: BatchId(*ref_id), status: AckStatus(status) }, rest)
        }
    };
    if rest.is_empty() {
        Some(body)
    } else {
        None
    }
}

/// A `var_bytes` that must be UTF-8, for the fast path.
#[inline(always)]
fn take_var_str(buf: &[u8]) -> Option<(&str, &[u8])> {
    let (bytes, rest) = take_var_bytes(buf)?;
    Some((core::str::from_utf8(bytes).ok()?, rest))
}

/// The error-reporting path of [`Message::decode`]: reads field by field and stops at the first violation with
/// its typed error and offset. Also the reference the fast path is checked against in debug builds.
#[cold]
#[inline(never)]
fn decode_strict(frame: &[u8]) -> Result<Message<'_>, DecodeError> {
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
    let ty =
        MessageType::from_u8(type_byte).ok_or(DecodeError::UnknownMessageType { offset: type_at, byte: type_byte })?;
    let body = decode_body(ty, &mut r)?;
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes { offset: r.pos(), count: r.remaining() });
    }
    Ok(Message { crdt, room, body })
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
        self.len_unchecked()
    }

    /// [`encoded_len`](Self::encoded_len), always inlined into the encoders.
    #[inline(always)]
    fn len_unchecked(&self) -> usize {
        (4 + var_bytes_len(self.room.len()) + 1).saturating_add(body_len(&self.body))
    }

    /// Validates the message against the codec policy and returns its exact encoded length.
    #[inline]
    pub fn encoded_len_checked(&self) -> Result<usize, EncodeError> {
        self.checked_len()
    }

    /// [`encoded_len_checked`](Self::encoded_len_checked), always inlined into the encoders.
    #[inline(always)]
    fn checked_len(&self) -> Result<usize, EncodeError> {
        if self.room.len() > MAX_ROOM_ID_LEN {
            return Err(EncodeError::RoomIdTooLong { len: self.room.len(), max: MAX_ROOM_ID_LEN });
        }
        let len = self.len_unchecked();
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
        let len = self.checked_len()?;
        let available = out.len();
        let dst = out.get_mut(..len).ok_or(EncodeError::BufferTooSmall { required: len, available })?;
        self.write_slice(dst);
        Ok(len)
    }

    /// Appends the frame to `out`, reserving exactly what it needs (no allocation when `out` already has the
    /// capacity). Returns the number of bytes appended; on error `out` is unchanged.
    pub fn encode_into_vec(&self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        let len = self.checked_len()?;
        self.append_to(out, len);
        Ok(len)
    }

    /// Encodes into a new, exactly sized buffer: one allocation.
    pub fn encode_to_bytes(&self) -> Result<Bytes, EncodeError> {
        let len = self.checked_len()?;
        let mut out = Vec::with_capacity(len);
        self.append_to(&mut out, len);
        Ok(Bytes::from(out))
    }

    /// Writes the frame to any [`BufMut`] after validation. Returns the number of bytes written.
    pub fn encode_into_buf<B: BufMut>(&self, out: &mut B) -> Result<usize, EncodeError> {
        let len = self.checked_len()?;
        if out.remaining_mut() < len {
            return Err(EncodeError::BufferTooSmall { required: len, available: out.remaining_mut() });
        }
        self.write(&mut BufSink(out));
        Ok(len)
    }

    /// Encodes a message the caller has already validated (e.g. a fragment sized by the planner) into a new,
    /// exactly sized buffer. Validity is re-checked only in debug builds.
    pub(crate) fn encode_to_bytes_prevalidated(&self) -> Bytes {
        debug_assert!(self.encoded_len_checked().is_ok(), "message was not prevalidated");
        let len = self.len_unchecked();
        let mut out = Vec::with_capacity(len);
        self.append_to(&mut out, len);
        Bytes::from(out)
    }

    /// Appends the validated frame of `len` bytes to `out`.
    #[inline(always)]
    fn append_to(&self, out: &mut Vec<u8>, len: usize) {
        let before = out.len();
        if len <= SMALL_FRAME {
            // Zero the frame's bytes (one short memset) and fill them through a slice: the cursor stays in
            // registers and short fields are copied inline, where appending would check the Vec's capacity and
            // call memcpy at every field.
            out.extend_from_slice(ZEROS.get(..len).unwrap_or_default());
            if let Some(dst) = out.get_mut(before..) {
                self.write_slice(dst);
            }
        } else {
            // A large payload is copied once, not zeroed first.
            out.reserve(len);
            self.write(out);
        }
        debug_assert_eq!(out.len() - before, len);
    }

    /// Writes the validated frame into `dst`, which has exactly its length.
    #[inline(always)]
    fn write_slice(&self, dst: &mut [u8]) {
        let mut sink = SliceSink(dst);
        self.write(&mut sink);
        debug_assert!(sink.0.is_empty(), "encoded_len disagrees with what was written");
    }

    /// Writes the validated frame, field by field.
    #[inline(always)]
    fn write<S: Sink>(&self, out: &mut S) {
        out.put(&self.crdt.magic());
        put_var_bytes(out, self.room.as_bytes());
        out.put_u8(self.body.message_type() as u8);
        match &self.body {
            Body::JoinRequest { auth, version } => {
                put_var_bytes(out, auth);
                put_var_bytes(out, version);
            }
            Body::DocUpdate { updates, batch_id } => {
                put_varint(out, updates.len() as u64);
                match updates.repr() {
                    // A decoded region is already canonical: copy it in one go.
                    Repr::Wire { region, .. } => out.put(region),
                    Repr::One(u) => put_var_bytes(out, u),
                    Repr::Slices(s) => {
                        for u in s {
                            put_var_bytes(out, u);
                        }
                    }
                    Repr::Shared(s) => {
                        for u in s {
                            put_var_bytes(out, u);
                        }
                    }
                }
                out.put(&batch_id.0);
            }
            Body::Fragment { batch_id, index, data } => {
                out.put(&batch_id.0);
                put_varint(out, u64::from(*index));
                put_var_bytes(out, data);
            }
            other => out.put_other_body(other),
        }
    }
}

/// The bodies of the control messages (each sink calls this out of line: they are not on the data path).
#[inline(always)]
fn write_other_body<S: Sink>(body: &Body<'_>, out: &mut S) {
    match body {
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
        Body::FragmentHeader { batch_id, fragment_count, total_size } => {
            out.put(&batch_id.0);
            put_varint(out, u64::from(*fragment_count));
            put_varint(out, u64::from(*total_size));
        }
        Body::RoomError { code, message } => {
            out.put_u8(code.0);
            put_var_bytes(out, message.as_bytes());
        }
        Body::Leave => {}
        Body::Ack { ref_id, status } => {
            out.put(&ref_id.0);
            out.put_u8(status.0);
        }
        // Written inline by `Message::write`.
        Body::JoinRequest { .. } | Body::DocUpdate { .. } | Body::Fragment { .. } => {}
    }
}

/// Where the encoder writes: a [`SliceSink`] (an exactly sized slice: `encode_into_slice`, and small frames
/// appended to a `Vec`), the `Vec` itself (large frames: `extend_from_slice` on a buffer reserved up front), or a
/// [`BufSink`] (any other [`BufMut`]).
trait Sink {
    fn put(&mut self, bytes: &[u8]);
    fn put_u8(&mut self, b: u8);
    /// Writes a control message's body (out of line).
    fn put_other_body(&mut self, body: &Body<'_>);
}

impl Sink for Vec<u8> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    #[inline(always)]
    fn put_u8(&mut self, b: u8) {
        self.push(b);
    }

    #[inline(never)]
    fn put_other_body(&mut self, body: &Body<'_>) {
        write_other_body(body, self);
    }
}

/// Frames up to this size are appended to a `Vec` by zeroing their bytes and filling them through a [`SliceSink`];
/// larger ones are copied in with `extend_from_slice`, so a large payload is written once.
const SMALL_FRAME: usize = 256;

/// Zeros a small frame's bytes are first set to (a copy from a static is cheaper than `Vec::resize`).
static ZEROS: [u8; SMALL_FRAME] = [0; SMALL_FRAME];

/// A [`Sink`] filling a slice sized exactly for the frame, front to back.
struct SliceSink<'o>(&'o mut [u8]);

impl Sink for SliceSink<'_> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        let (head, tail) = core::mem::take(&mut self.0).split_at_mut(bytes.len());
        copy_small(head, bytes);
        self.0 = tail;
    }

    #[inline(always)]
    fn put_u8(&mut self, b: u8) {
        let (head, tail) = core::mem::take(&mut self.0).split_at_mut(1);
        head[0] = b;
        self.0 = tail;
    }

    #[inline(always)]
    fn put_other_body(&mut self, body: &Body<'_>) {
        // The slice goes to the call and comes back by value, so this sink never has its address taken and its
        // cursor stays in registers.
        self.0 = write_other_body_to_slice(body, core::mem::take(&mut self.0));
    }
}

/// [`write_other_body`] into the front of `dst`; returns the rest of `dst`.
#[inline(never)]
fn write_other_body_to_slice<'o>(body: &Body<'_>, dst: &'o mut [u8]) -> &'o mut [u8] {
    let mut sink = SliceSink(dst);
    write_other_body(body, &mut sink);
    sink.0
}

/// Copies `src` into `dst` (of the same length). Up to 128 bytes it takes two overlapping moves of a fixed size
/// (the way `memcpy` itself copies short inputs) instead of a call to `memcpy`.
#[inline(always)]
fn copy_small(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    let n = src.len();
    macro_rules! two {
        ($k:expr) => {{
            dst[..$k].copy_from_slice(&src[..$k]);
            dst[n - $k..].copy_from_slice(&src[n - $k..]);
        }};
    }
    if n >= 16 {
        if n >= 32 {
            if n <= 64 {
                two!(32)
            } else if n <= 128 {
                two!(64)
            } else {
                dst.copy_from_slice(src)
            }
        } else {
            two!(16)
        }
    } else if n >= 8 {
        two!(8)
    } else if n >= 4 {
        two!(4)
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// A [`Sink`] over any [`BufMut`].
struct BufSink<'b, B: ?Sized>(&'b mut B);

impl<B: BufMut + ?Sized> Sink for BufSink<'_, B> {
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        self.0.put_slice(bytes);
    }

    #[inline(always)]
    fn put_u8(&mut self, b: u8) {
        self.0.put_u8(b);
    }

    #[inline(never)]
    fn put_other_body(&mut self, body: &Body<'_>) {
        write_other_body(body, self);
    }
}

/// Writes `v` as canonical LEB128 (one or two bytes inline, longer values encoded out of line).
#[inline(always)]
fn put_varint<S: Sink>(out: &mut S, v: u64) {
    if v < 0x80 {
        out.put_u8(v as u8);
    } else if v < 0x4000 {
        out.put(&[(v as u8) | 0x80, (v >> 7) as u8]);
    } else {
        // The sink stays out of the call, so it can live in registers.
        let (bytes, n) = varint_bytes(v);
        out.put(&bytes[..n]);
    }
}

/// The canonical LEB128 bytes of `v` and how many there are.
#[inline(never)]
fn varint_bytes(mut v: u64) -> ([u8; 10], usize) {
    let mut bytes = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 && n < 9 {
        bytes[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    bytes[n] = v as u8;
    (bytes, n + 1)
}

/// Writes a varint length followed by the bytes.
#[inline(always)]
fn put_var_bytes<S: Sink>(out: &mut S, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.put(bytes);
}

/// Encoded body length, saturating (so a sum of huge slices can never wrap into a small length).
#[inline(always)]
fn body_len(body: &Body<'_>) -> usize {
    match body {
        Body::JoinRequest { auth, version } => var_bytes_len(auth.len()).saturating_add(var_bytes_len(version.len())),
        Body::DocUpdate { updates, .. } => {
            (varint_len(updates.len() as u64) + BatchId::LEN).saturating_add(updates.entries_len())
        }
        Body::Fragment { index, data, .. } => BatchId::LEN + varint_len(u64::from(*index)) + var_bytes_len(data.len()),
        other => other_body_len(other),
    }
}

/// [`body_len`] of the control messages, out of line.
#[inline(never)]
fn other_body_len(body: &Body<'_>) -> usize {
    match body {
        Body::JoinResponseOk { permission, version, extra } => (var_bytes_len(permission.as_str().len()))
            .saturating_add(var_bytes_len(version.len()))
            .saturating_add(var_bytes_len(extra.len())),
        Body::JoinError { message, receiver_version, app_code, .. } => (1 + var_bytes_len(message.len()))
            .saturating_add(receiver_version.map_or(0, |v| var_bytes_len(v.len())))
            .saturating_add(app_code.map_or(0, |a| var_bytes_len(a.len()))),
        Body::FragmentHeader { fragment_count, total_size, .. } => {
            BatchId::LEN + varint_len(u64::from(*fragment_count)) + varint_len(u64::from(*total_size))
        }
        Body::RoomError { message, .. } => 1 + var_bytes_len(message.len()),
        Body::Leave => 0,
        Body::Ack { .. } => BatchId::LEN + 1,
        Body::JoinRequest { .. } | Body::DocUpdate { .. } | Body::Fragment { .. } => body_len(body),
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
