//! Fragmentation of outgoing sends and bounded, deadline-driven reassembly of incoming fragment batches.
//!
//! A frame is capped at 256 KiB. An update that does not fit one DocUpdate travels as a *fragment batch*: a
//! DocUpdateFragmentHeader followed by DocUpdateFragments. A batch carries **exactly one update**; a DocUpdate
//! carries any number. So a send of several updates becomes several batches, each with its own batch id:
//! consecutive small updates packed into DocUpdates, each oversized update fragmented on its own.
//!
//! * [`Fragmenter`] plans a send into [`PlannedBatch`]es (which updates, packed or fragmented) and encodes each
//!   into frames, sized from exact encoded lengths.
//! * [`Reassembler`] collects fragments per (crdt, room, batch id) within memory budgets and deadlines.

mod budget;
mod plan;
mod reassembly;

pub use budget::Budget;
pub use plan::{BatchFrames, FragmentConfigError, Fragmenter, Plan, PlannedBatch, DEFAULT_CHUNK_SIZE};
pub use reassembly::{
    BatchKey, FragmentOutcome, HeaderOutcome, Reassembler, ReassemblyConfig, ReassemblyStats, RejectReason,
    DEFAULT_MAX_BATCHES, DEFAULT_MAX_BYTES_IN_FLIGHT, DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_LIFETIME,
    DEFAULT_MAX_UPDATE_SIZE, DEFAULT_REASSEMBLY_TIMEOUT, DEFAULT_TOMBSTONES, FRAGMENT_ENTRY_OVERHEAD,
};
