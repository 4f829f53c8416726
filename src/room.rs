//! [`RoomKey`]: a room is a (CRDT type, room id) pair.

use core::fmt;

use crate::wire::{CrdtType, Utf8Bytes};

/// Identifies a room: the same id under two CRDT magics names two rooms.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoomKey {
    /// The CRDT type.
    pub crdt: CrdtType,
    /// The room id (≤ 128 bytes of UTF-8).
    pub room: Utf8Bytes,
}

impl RoomKey {
    /// A room key copying `room`.
    pub fn new(crdt: CrdtType, room: &str) -> Self {
        RoomKey { crdt, room: Utf8Bytes::from(room) }
    }

    /// True when this key names (`crdt`, `room`).
    pub fn is(&self, crdt: CrdtType, room: &str) -> bool {
        self.crdt == crdt && self.room == room
    }
}

impl fmt::Debug for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", self.crdt, self.room.as_str())
    }
}

impl fmt::Display for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.crdt, self.room.as_str())
    }
}
