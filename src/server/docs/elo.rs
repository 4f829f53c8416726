//! TEMPORARY: replaced by the %ELO span-index document once `elo::EloIndex` lands.
use super::UpdateLog;
/// %ELO room document (temporary stand-in).
pub type EloDoc = UpdateLog;
