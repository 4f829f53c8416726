//! Room documents: the one small trait the server drives, and the factory that picks one per room.
//!
//! The server never interprets update bytes itself; a [`RoomDoc`] decides whether updates are valid, what a
//! joining client lacks, and what is saved. Built-ins (module [`docs`](super::docs)): an update log for any CRDT,
//! the %ELO span index, and in-memory or persisted ephemeral state. A Loro-aware document (the `loro` crate,
//! `std` only) plugs in through the same trait.

use alloc::boxed::Box;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::room::RoomKey;
use crate::wire::CrdtType;

/// What applying updates did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// False when every update was already known (exact duplicates): nothing to relay or persist.
    pub changed: bool,
}

/// Why a document refused updates (the sender gets `Ack(invalid_update)`); nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// The bytes are not a valid update for this document.
    #[error("invalid update")]
    Invalid,
    /// The document's stored size would exceed its limit.
    #[error("document size limit exceeded")]
    TooLarge,
}

/// Why a backfill could not be computed for a client's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    /// The client's version cannot be interpreted: the join gets `JoinError(version_unknown)` carrying the
    /// document's version.
    #[error("client version not understood")]
    VersionUnknown,
}

/// Why stored state could not be imported when a room loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stored room state is invalid")]
pub struct ImportError;

/// A room's document as the server sees it. Implementations must be deterministic and must not panic.
pub trait RoomDoc: Send {
    /// The document's version, sent in JoinResponseOk (may be empty).
    fn version(&self) -> Bytes;

    /// Validates and applies updates from one batch, all or nothing: on `Err` the document is unchanged.
    /// `limit` is the most bytes the document may hold afterwards ([`DocError::TooLarge`] past it).
    fn apply(&mut self, updates: &[Bytes], limit: usize) -> Result<Applied, DocError>;

    /// The updates a client at `client_version` lacks, in order. Each element is one update (the server packs or
    /// fragments them into frames).
    fn backfill(&self, client_version: &[u8]) -> Result<Vec<Bytes>, BackfillError>;

    /// Whether this document's state is saved and its accepted updates persisted (durable acks).
    fn is_persistent(&self) -> bool;

    /// The state to save (a snapshot), or `None` for a document that is never saved.
    fn export(&self) -> Option<Bytes>;

    /// Restores saved state (a snapshot from [`export`](Self::export)) into an empty document.
    fn import(&mut self, snapshot: &[u8]) -> Result<(), ImportError>;

    /// Bytes the document holds (for the per-room limit and metrics).
    fn stored_bytes(&self) -> usize;

    /// Called when the room's last member leaves. Ephemeral documents drop their state here.
    fn on_empty(&mut self) {}

    /// A compaction hook, called before each snapshot save.
    fn compact(&mut self) {}
}

/// Creates the document for a room, or refuses the CRDT type (the join gets `JoinError(unknown)`).
pub trait DocFactory: Send {
    /// A new, empty document for `room`, or `None` when the server does not serve that CRDT type.
    fn create(&self, room: &RoomKey) -> Option<Box<dyn RoomDoc>>;
}

/// The built-in choice per CRDT type: `%LOR %YJS %FLO` → [`UpdateLog`](super::docs::UpdateLog) (persistent);
/// `%EPH %YAW` → [`Ephemeral`](super::docs::Ephemeral) in memory; `%EPS` → persisted
/// [`Ephemeral`](super::docs::Ephemeral); `%ELO` → [`EloDoc`](super::docs::EloDoc).
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinDocs;

impl DocFactory for BuiltinDocs {
    fn create(&self, room: &RoomKey) -> Option<Box<dyn RoomDoc>> {
        use super::docs::{EloDoc, Ephemeral, UpdateLog};
        Some(match room.crdt {
            CrdtType::Loro | CrdtType::Yjs | CrdtType::Flock => Box::new(UpdateLog::new()),
            CrdtType::LoroEphemeral | CrdtType::YjsAwareness => Box::new(Ephemeral::in_memory()),
            CrdtType::LoroEphemeralPersisted => Box::new(Ephemeral::persisted()),
            CrdtType::Elo => Box::new(EloDoc::new()),
        })
    }
}

impl<F> DocFactory for F
where
    F: Fn(&RoomKey) -> Option<Box<dyn RoomDoc>> + Send,
{
    fn create(&self, room: &RoomKey) -> Option<Box<dyn RoomDoc>> {
        self(room)
    }
}
