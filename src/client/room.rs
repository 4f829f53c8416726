//! The per-room state machine.
//!
//! ```text
//!            join()                 transport open             provide_join_params          JoinResponseOk
//!  (none) ──────────▶ Idle ─────────────────────▶ AwaitingParams ─────────────────▶ Requested ──────────────▶ Joined
//!                      ▲                            ▲      ▲                          │   │                    │
//!                      │ transport lost             │      └── version_unknown (once) ┘   └ JoinError ▶ ended  │
//!                      └────────────────────────────┴──── rejoin_suggested (once) ◀───────────────────────────┘
//! ```
//!
//! The *status* the application sees is derived separately (see [`RoomStatus`]): `Connecting` until the first
//! join succeeds, `Joined`, `Reconnecting` while a joined room is rejoining, `Disconnected` when no reconnect
//! will happen, `Error` when it ended.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::event::{ClientEvent, JoinReason, JoinTicket, RoomStatus};
use crate::room::RoomKey;
use crate::wire::{CrdtType, Permission};

/// Where a room's join stands on the current transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for an open transport.
    Idle,
    /// [`ClientEvent::JoinParamsNeeded`] was emitted; waiting for the application.
    AwaitingParams {
        /// The ticket that answers it.
        ticket: JoinTicket,
        /// Why (for `version_unknown`, the server's version).
        reason: JoinReason,
    },
    /// JoinRequest sent; waiting for JoinResponseOk or JoinError.
    Requested,
    /// Joined on the current transport.
    Joined,
}

/// One registered room.
#[derive(Clone, Debug)]
pub(crate) struct Room {
    pub(crate) key: RoomKey,
    /// The room id as a `str`, validated once: frames are encoded from it without revalidating `key.room`.
    pub(crate) name: Box<str>,
    pub(crate) phase: Phase,
    /// The last status emitted.
    pub(crate) status: RoomStatus,
    /// True once a join succeeded (later joins are rejoins).
    pub(crate) joined_once: bool,
    /// The permission of the latest successful join.
    pub(crate) permission: Option<Permission>,
    /// The current join already used its `version_unknown` retry.
    pub(crate) version_retry_used: bool,
    /// A `rejoin_suggested` was acted on and its rejoin has not succeeded yet.
    pub(crate) rejoin_suggested: bool,
}

impl Room {
    /// A newly registered room; emits its first status (`Connecting`).
    pub(crate) fn new(key: RoomKey, name: &str, events: &mut VecDeque<ClientEvent>) -> Self {
        debug_assert!(key.room == name);
        events.push_back(ClientEvent::RoomStatus { room: key.clone(), status: RoomStatus::Connecting });
        Room {
            key,
            name: Box::from(name),
            phase: Phase::Idle,
            status: RoomStatus::Connecting,
            joined_once: false,
            permission: None,
            version_retry_used: false,
            rejoin_suggested: false,
        }
    }

    /// Emits a status event when `status` differs from the last one.
    pub(crate) fn set_status(&mut self, status: RoomStatus, events: &mut VecDeque<ClientEvent>) {
        if self.status != status {
            self.status = status;
            events.push_back(ClientEvent::RoomStatus { room: self.key.clone(), status });
        }
    }

    /// The status of a room whose join is under way: `Connecting` before its first join, else `Reconnecting`.
    pub(crate) fn joining_status(&self) -> RoomStatus {
        if self.joined_once {
            RoomStatus::Reconnecting
        } else {
            RoomStatus::Connecting
        }
    }

    /// True when the server considers us a member (or about to be): a Leave is owed if we go.
    pub(crate) fn server_knows(&self) -> bool {
        matches!(self.phase, Phase::Requested | Phase::Joined)
    }

    /// True when updates may be sent now.
    pub(crate) fn writable_now(&self) -> bool {
        self.phase == Phase::Joined && self.permission.is_none_or(Permission::can_write)
    }

    /// The ticket this room waits on, if any.
    pub(crate) fn ticket(&self) -> Option<JoinTicket> {
        match &self.phase {
            Phase::AwaitingParams { ticket, .. } => Some(*ticket),
            _ => None,
        }
    }
}

/// The registered rooms, sorted by key (the order of [`RoomKey`]'s `Ord`: CRDT type, then room id bytes), so
/// iteration is deterministic and a frame's room is found by binary search on its borrowed `(crdt, &str)`
/// without building a key.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rooms {
    list: Vec<Room>,
}

/// `room`'s key against `(crdt, id)` in [`RoomKey`]'s order. A key handed out by the session (a clone of the stored
/// one) shares its bytes: recognised as equal without comparing them.
fn cmp_key(room: &Room, crdt: CrdtType, id: &[u8]) -> Ordering {
    match room.key.crdt.cmp(&crdt) {
        Ordering::Equal => {
            let stored: &[u8] = room.key.room.as_bytes();
            if core::ptr::eq(stored, id) {
                Ordering::Equal
            } else {
                stored.cmp(id)
            }
        }
        other => other,
    }
}

/// `a == b`, inline for ids up to 16 bytes (two overlapping word compares; no `memcmp` call): every received
/// frame's room id is compared with the registered ones.
#[inline]
fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    fn word(s: &[u8], at: usize) -> u64 {
        s.get(at..at + 8).and_then(|w| w.try_into().ok()).map_or(0, u64::from_ne_bytes)
    }
    fn half(s: &[u8], at: usize) -> u32 {
        s.get(at..at + 4).and_then(|w| w.try_into().ok()).map_or(0, u32::from_ne_bytes)
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

impl Rooms {
    fn position(&self, crdt: CrdtType, room: &[u8]) -> Result<usize, usize> {
        self.list.binary_search_by(|r| cmp_key(r, crdt, room))
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The room `(crdt, room)`. A session holds few rooms at a time: up to [`Self::SCAN`] they are scanned for
    /// equality (a length compare rejects most at once), which is cheaper than ordered compares.
    #[inline]
    pub(crate) fn find(&self, crdt: CrdtType, room: &str) -> Option<&Room> {
        self.find_bytes(crdt, room.as_bytes())
    }

    #[inline]
    pub(crate) fn get(&self, key: &RoomKey) -> Option<&Room> {
        self.find_bytes(key.crdt, key.room.as_bytes())
    }

    const SCAN: usize = 4;

    #[inline]
    fn find_bytes(&self, crdt: CrdtType, id: &[u8]) -> Option<&Room> {
        if self.list.len() <= Self::SCAN {
            return self.list.iter().find(|r| {
                let stored: &[u8] = r.key.room.as_bytes();
                r.key.crdt == crdt && (core::ptr::eq(stored, id) || eq_bytes(stored, id))
            });
        }
        self.position(crdt, id).ok().and_then(|i| self.list.get(i))
    }

    pub(crate) fn get_mut(&mut self, key: &RoomKey) -> Option<&mut Room> {
        self.position(key.crdt, key.room.as_bytes()).ok().and_then(|i| self.list.get_mut(i))
    }

    pub(crate) fn contains(&self, key: &RoomKey) -> bool {
        self.get(key).is_some()
    }

    /// Adds a room (a room with the same key is replaced).
    pub(crate) fn insert(&mut self, room: Room) {
        match self.position(room.key.crdt, room.key.room.as_bytes()) {
            // `position` found index `i`.
            Ok(i) => self.list[i] = room,
            Err(i) => self.list.insert(i, room),
        }
    }

    pub(crate) fn remove(&mut self, key: &RoomKey) -> Option<Room> {
        let i = self.position(key.crdt, key.room.as_bytes()).ok()?;
        Some(self.list.remove(i))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &RoomKey> + '_ {
        self.list.iter().map(|r| &r.key)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Room> + '_ {
        self.list.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Room> + '_ {
        self.list.iter_mut()
    }

    /// Removes every room, in key order.
    pub(crate) fn take(&mut self) -> Vec<Room> {
        core::mem::take(&mut self.list)
    }
}

#[cfg(test)]
mod tests {
    use super::eq_bytes;
    use alloc::vec::Vec;

    #[test]
    fn eq_bytes_is_slice_equality() {
        let base: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(eq_bytes(a, a));
            // Equal contents at another address.
            let copy: Vec<u8> = a.to_vec();
            assert!(eq_bytes(a, &copy));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert!(!eq_bytes(a, &b), "{n} {i}");
            }
            if n > 0 {
                assert!(!eq_bytes(a, &base[..n - 1]));
            }
            if n < base.len() {
                assert_eq!(eq_bytes(&base[1..=n], a), base[1..=n] == *a);
            }
        }
    }
}
