//! Field types shared by every message: CRDT magics, batch ids, permissions and the three code tables.
//!
//! The code tables are newtypes over the raw byte with associated constants for the assigned values, so a byte
//! nobody assigned survives decode → encode unchanged (the official decoders map such bytes to "unknown").

use core::fmt;

/// The CRDT a room holds, carried as the 4-byte ASCII magic that opens every binary frame.
///
/// The same room id under two magics names two different rooms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrdtType {
    /// `%LOR`: a Loro document.
    Loro,
    /// `%EPH`: a Loro ephemeral store (presence, cursors); never persisted.
    LoroEphemeral,
    /// `%EPS`: a Loro ephemeral store whose latest state the server persists.
    LoroEphemeralPersisted,
    /// `%YJS`: a Yjs document.
    Yjs,
    /// `%YAW`: Yjs awareness (presence).
    YjsAwareness,
    /// `%ELO`: an end-to-end encrypted Loro document (see the `elo` module).
    Elo,
    /// `%FLO`: a Flock document.
    Flock,
}

impl CrdtType {
    /// Every CRDT type, in wire-table order.
    pub const ALL: [CrdtType; 7] = [
        CrdtType::Loro,
        CrdtType::LoroEphemeral,
        CrdtType::LoroEphemeralPersisted,
        CrdtType::Yjs,
        CrdtType::YjsAwareness,
        CrdtType::Elo,
        CrdtType::Flock,
    ];

    /// The 4-byte magic written at the start of a frame.
    pub const fn magic(self) -> [u8; 4] {
        match self {
            CrdtType::Loro => *b"%LOR",
            CrdtType::LoroEphemeral => *b"%EPH",
            CrdtType::LoroEphemeralPersisted => *b"%EPS",
            CrdtType::Yjs => *b"%YJS",
            CrdtType::YjsAwareness => *b"%YAW",
            CrdtType::Elo => *b"%ELO",
            CrdtType::Flock => *b"%FLO",
        }
    }

    /// The CRDT type for a magic, or `None` for a magic this protocol version does not define.
    #[inline]
    pub const fn from_magic(magic: [u8; 4]) -> Option<Self> {
        // A perfect hash of the seven magics into eight slots, then one compare of the whole word: this runs on
        // every decoded frame. The empty slot holds 0, which hashes to a taken slot, so nothing can match it.
        let m = u32::from_le_bytes(magic);
        let slot = (m.wrapping_mul(MAGIC_HASH_MUL) >> 29) as usize;
        if MAGIC_SLOTS[slot].0 == m {
            Some(MAGIC_SLOTS[slot].1)
        } else {
            None
        }
    }

    /// The magic as text, e.g. `"%LOR"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CrdtType::Loro => "%LOR",
            CrdtType::LoroEphemeral => "%EPH",
            CrdtType::LoroEphemeralPersisted => "%EPS",
            CrdtType::Yjs => "%YJS",
            CrdtType::YjsAwareness => "%YAW",
            CrdtType::Elo => "%ELO",
            CrdtType::Flock => "%FLO",
        }
    }

    /// True for presence-style state that is stale after a reconnect (`%EPH`, `%YAW`).
    pub const fn is_ephemeral(self) -> bool {
        matches!(self, CrdtType::LoroEphemeral | CrdtType::YjsAwareness)
    }
}

/// Multiplier of the magic hash: `(magic as little-endian u32 × this) >> 29` sends the seven magics to seven
/// distinct slots of eight.
const MAGIC_HASH_MUL: u32 = 4125;

/// `MAGIC_SLOTS[hash(magic)]` = (magic as little-endian u32, type); the one empty slot holds `(0, Loro)`.
const MAGIC_SLOTS: [(u32, CrdtType); 8] = {
    let mut slots = [(0u32, CrdtType::Loro); 8];
    let mut i = 0;
    while i < CrdtType::ALL.len() {
        let c = CrdtType::ALL[i];
        let m = u32::from_le_bytes(c.magic());
        let slot = (m.wrapping_mul(MAGIC_HASH_MUL) >> 29) as usize;
        // A collision would fail the build.
        assert!(slots[slot].0 == 0, "magic hash collision");
        slots[slot] = (m, c);
        i += 1;
    }
    // The empty slot holds 0; 0 hashes to slot 0, which must hold a magic, so no input can match an empty slot.
    assert!(slots[0].0 != 0, "slot 0 must be taken");
    slots
};

impl fmt::Display for CrdtType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 8 raw bytes that correlate a DocUpdate or fragment batch with its Ack.
///
/// Aligned to 8 bytes (its size is still 8) so the compiler never places it at an odd offset inside a decoded
/// [`Body`](super::Body), where reading it back as one word right after decoding would stall on the stores.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(align(8))]
pub struct BatchId(pub [u8; 8]);

impl BatchId {
    /// Length on the wire.
    pub const LEN: usize = 8;

    /// The id as a big-endian integer (for logs and compact keys).
    pub const fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// The id whose big-endian bytes are `v`.
    pub const fn from_u64(v: u64) -> Self {
        BatchId(v.to_be_bytes())
    }
}

impl fmt::Debug for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchId({self})")
    }
}

impl fmt::Display for BatchId {
    /// `0x` followed by 16 lowercase hex digits, as the official TypeScript client prints batch ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// What a JoinResponseOk grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// `"read"`: the member receives updates but may not send them.
    Read,
    /// `"write"`: the member may send updates.
    Write,
}

impl Permission {
    /// The wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
        }
    }

    /// Parses the wire string; only `"read"` and `"write"` exist.
    pub fn from_wire(s: &[u8]) -> Option<Self> {
        match s {
            b"read" => Some(Permission::Read),
            b"write" => Some(Permission::Write),
            _ => None,
        }
    }

    /// True when the member may send updates.
    pub const fn can_write(self) -> bool {
        matches!(self, Permission::Write)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! code_table {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$cmeta:meta])* $konst:ident = $val:literal => $label:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u8);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($val); )*

            /// True when the byte is one the protocol assigns.
            pub const fn is_known(self) -> bool {
                matches!(self.0, $( $val )|*)
            }

            /// The protocol's name for the code (`snake_case`), or `None` for an unassigned byte.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($label), )*
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({})", stringify!($name), n),
                    None => write!(f, "{}(0x{:02x})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "unassigned(0x{:02x})", self.0),
                }
            }
        }
    };
}

code_table! {
    /// JoinError code byte. Unassigned bytes are kept as they are.
    JoinErrorCode {
        /// 0x00: unspecified failure.
        UNKNOWN = 0x00 => "unknown",
        /// 0x01: the receiver cannot interpret the requester's version; may carry `receiver_version`.
        VERSION_UNKNOWN = 0x01 => "version_unknown",
        /// 0x02: authentication or authorization failed.
        AUTH_FAILED = 0x02 => "auth_failed",
        /// 0x7F: application-defined; may carry `app_code`.
        APP_ERROR = 0x7f => "app_error",
    }
}

code_table! {
    /// RoomError code byte. Unassigned bytes (including 0x00) are kept as they are.
    RoomErrorCode {
        /// 0x01: the peer should rejoin once to reconcile state.
        REJOIN_SUGGESTED = 0x01 => "rejoin_suggested",
        /// 0x02: explicit eviction; no automatic rejoin.
        EVICTED = 0x02 => "evicted",
        /// 0x7F: unspecified room-level failure; fatal unless the application decides otherwise.
        UNKNOWN = 0x7f => "unknown",
    }
}

code_table! {
    /// Ack status byte. 0x00 accepts the batch; every other value rejects it. 0x02 is unassigned.
    AckStatus {
        /// 0x00: accepted.
        OK = 0x00 => "ok",
        /// 0x01: unspecified failure.
        UNKNOWN = 0x01 => "unknown",
        /// 0x03: the sender may not write to the room (or has not joined it).
        PERMISSION_DENIED = 0x03 => "permission_denied",
        /// 0x04: the update is malformed or the document rejected it.
        INVALID_UPDATE = 0x04 => "invalid_update",
        /// 0x05: the update or its fragment batch exceeds a limit.
        PAYLOAD_TOO_LARGE = 0x05 => "payload_too_large",
        /// 0x06: the sender is over its update rate.
        RATE_LIMITED = 0x06 => "rate_limited",
        /// 0x07: the fragments of the batch did not all arrive in time; resend the batch.
        FRAGMENT_TIMEOUT = 0x07 => "fragment_timeout",
        /// 0x7F: application-defined failure.
        APP_ERROR = 0x7f => "app_error",
    }
}

impl AckStatus {
    /// True for 0x00.
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_round_trip() {
        for c in CrdtType::ALL {
            assert_eq!(CrdtType::from_magic(c.magic()), Some(c));
            assert_eq!(c.as_str().as_bytes(), &c.magic());
        }
        assert_eq!(CrdtType::from_magic(*b"ABCD"), None);
        assert_eq!(CrdtType::from_magic([0; 4]), None);
        for c in CrdtType::ALL {
            // A one-byte change of a magic is recognised exactly when it is another magic (%EPH and %EPS).
            for i in 0..4 {
                for b in 0..=255u8 {
                    let mut m = c.magic();
                    if m[i] != b {
                        m[i] = b;
                        assert_eq!(CrdtType::from_magic(m), CrdtType::ALL.into_iter().find(|x| x.magic() == m));
                    }
                }
            }
        }
    }

    #[test]
    fn code_names() {
        assert_eq!(AckStatus(0x02).name(), None);
        assert_eq!(AckStatus::FRAGMENT_TIMEOUT.name(), Some("fragment_timeout"));
        assert_eq!(alloc::format!("{}", RoomErrorCode(0)), "unassigned(0x00)");
        assert_eq!(alloc::format!("{}", BatchId([1, 2, 3, 4, 5, 6, 7, 8])), "0x0102030405060708");
        assert!(JoinErrorCode::APP_ERROR.is_known());
        assert!(!JoinErrorCode(3).is_known());
    }
}
