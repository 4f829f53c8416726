//! The Loro Protocol v1 wire codec: strict, zero-copy decoding and exact-length encoding.
//!
//! ```
//! use loro_sansio::wire::{Body, BatchId, CrdtType, Message, Updates};
//!
//! let msg = Message {
//!     crdt: CrdtType::Loro,
//!     room: "doc-1",
//!     body: Body::DocUpdate { updates: Updates::one(b"\x01\x02"), batch_id: BatchId::from_u64(7) },
//! };
//! let mut buf = [0u8; 64];
//! let n = msg.encode_into_slice(&mut buf).unwrap();
//! assert_eq!(n, msg.encoded_len());
//! let back = Message::decode(&buf[..n]).unwrap();
//! assert_eq!(back, msg);
//! ```

mod codec;
mod error;
mod frame;
mod message;
mod owned;
pub(crate) mod reader;
mod text;
mod types;
mod update_list;

pub use codec::{
    decode, doc_update_overhead, fragment_overhead, update_entry_len, MAX_FRAME_SIZE, MAX_ROOM_ID_LEN, MAX_VARINT,
};
pub use error::{DecodeError, EncodeError, Field};
pub use frame::{Frame, Inbound, Keepalive, PING, PONG};
pub use message::{Body, Message, MessageType, Updates, UpdatesIter};
pub use owned::{OwnedBody, OwnedMessage};
pub(crate) use text::bytes_of;
pub use text::Utf8Bytes;
pub use types::{AckStatus, BatchId, CrdtType, JoinErrorCode, Permission, RoomErrorCode};
pub(crate) use update_list::WirePlace;
pub use update_list::{Handles as UpdateHandles, IntoIter as UpdateListIntoIter, UpdateList};
