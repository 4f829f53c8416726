//! Built-in room documents.

mod elo;
mod ephemeral;
mod log_format;
mod update_log;

pub use elo::EloDoc;
pub use ephemeral::{Ephemeral, DEFAULT_EPHEMERAL_MAX_BYTES, DEFAULT_EPHEMERAL_MAX_ENTRIES};
pub use update_log::{Compactor, UpdateLog};
