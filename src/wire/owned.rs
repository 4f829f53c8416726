//! [`OwnedMessage`]: a decoded message that owns its fields as zero-copy [`Bytes`] slices of the received frame.
//!
//! Use it when a message must outlive the borrow of the frame (queued for the application, moved into a task).
//! Payloads are not copied: every field is a reference-counted slice of the one received buffer.

use bytes::Bytes;

use super::error::{DecodeError, EncodeError};
use super::message::{Body, Message};
use super::text::{bytes_of, Utf8Bytes};
use super::update_list::UpdateList;
use super::{AckStatus, BatchId, CrdtType, JoinErrorCode, Permission, RoomErrorCode};

/// An owned Loro Protocol message whose byte fields share the received frame's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedMessage {
    /// The CRDT magic.
    pub crdt: CrdtType,
    /// The room id.
    pub room: Utf8Bytes,
    /// The payload.
    pub body: OwnedBody,
}

/// The owned counterpart of [`Body`]; see it for field meanings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum OwnedBody {
    /// 0x00
    JoinRequest { auth: Bytes, version: Bytes },
    /// 0x01
    JoinResponseOk { permission: Permission, version: Bytes, extra: Bytes },
    /// 0x02
    JoinError { code: JoinErrorCode, message: Utf8Bytes, receiver_version: Option<Bytes>, app_code: Option<Utf8Bytes> },
    /// 0x03 (the frame's update region, shared: no allocation, no payload copy)
    DocUpdate { updates: UpdateList, batch_id: BatchId },
    /// 0x04
    FragmentHeader { batch_id: BatchId, fragment_count: u32, total_size: u32 },
    /// 0x05
    Fragment { batch_id: BatchId, index: u32, data: Bytes },
    /// 0x06
    RoomError { code: RoomErrorCode, message: Utf8Bytes },
    /// 0x07
    Leave,
    /// 0x08
    Ack { ref_id: BatchId, status: AckStatus },
}

impl OwnedMessage {
    /// Decodes `frame` with the same strict rules as [`Message::decode`]; fields become slices of `frame`.
    pub fn decode(frame: &Bytes) -> Result<Self, DecodeError> {
        Ok(Self::from_message(frame, &Message::decode(frame)?))
    }

    /// Converts a view decoded from `frame` into an owned message sharing `frame`'s buffer. Fields of `msg`
    /// that do not point into `frame` are copied.
    pub fn from_message(frame: &Bytes, msg: &Message<'_>) -> Self {
        let b = |s: &[u8]| bytes_of(frame, s);
        let t = |s: &str| Utf8Bytes::slice_of(frame, s);
        let body = match msg.body {
            Body::JoinRequest { auth, version } => OwnedBody::JoinRequest { auth: b(auth), version: b(version) },
            Body::JoinResponseOk { permission, version, extra } => {
                OwnedBody::JoinResponseOk { permission, version: b(version), extra: b(extra) }
            }
            Body::JoinError { code, message, receiver_version, app_code } => OwnedBody::JoinError {
                code,
                message: t(message),
                receiver_version: receiver_version.map(b),
                app_code: app_code.map(t),
            },
            Body::DocUpdate { updates, batch_id } => {
                OwnedBody::DocUpdate { updates: UpdateList::from_decoded(frame, &updates), batch_id }
            }
            Body::FragmentHeader { batch_id, fragment_count, total_size } => {
                OwnedBody::FragmentHeader { batch_id, fragment_count, total_size }
            }
            Body::Fragment { batch_id, index, data } => OwnedBody::Fragment { batch_id, index, data: b(data) },
            Body::RoomError { code, message } => OwnedBody::RoomError { code, message: t(message) },
            Body::Leave => OwnedBody::Leave,
            Body::Ack { ref_id, status } => OwnedBody::Ack { ref_id, status },
        };
        OwnedMessage { crdt: msg.crdt, room: t(msg.room), body }
    }

    /// A borrowed view, for encoding or inspection.
    pub fn as_message(&self) -> Message<'_> {
        let body = match &self.body {
            OwnedBody::JoinRequest { auth, version } => Body::JoinRequest { auth, version },
            OwnedBody::JoinResponseOk { permission, version, extra } => {
                Body::JoinResponseOk { permission: *permission, version, extra }
            }
            OwnedBody::JoinError { code, message, receiver_version, app_code } => Body::JoinError {
                code: *code,
                message: message.as_str(),
                receiver_version: receiver_version.as_deref(),
                app_code: app_code.as_ref().map(Utf8Bytes::as_str),
            },
            OwnedBody::DocUpdate { updates, batch_id } => {
                Body::DocUpdate { updates: updates.as_updates(), batch_id: *batch_id }
            }
            OwnedBody::FragmentHeader { batch_id, fragment_count, total_size } => {
                Body::FragmentHeader { batch_id: *batch_id, fragment_count: *fragment_count, total_size: *total_size }
            }
            OwnedBody::Fragment { batch_id, index, data } => {
                Body::Fragment { batch_id: *batch_id, index: *index, data }
            }
            OwnedBody::RoomError { code, message } => Body::RoomError { code: *code, message: message.as_str() },
            OwnedBody::Leave => Body::Leave,
            OwnedBody::Ack { ref_id, status } => Body::Ack { ref_id: *ref_id, status: *status },
        };
        Message { crdt: self.crdt, room: self.room.as_str(), body }
    }

    /// Encodes into a new, exactly sized buffer.
    pub fn encode_to_bytes(&self) -> Result<Bytes, EncodeError> {
        self.as_message().encode_to_bytes()
    }
}
