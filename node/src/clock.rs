//! The wall clock, in milliseconds since the Unix epoch (0 if the clock is before it): record
//! timestamps, genesis times, a light client's "now".

/// Now, in ms since the Unix epoch.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
