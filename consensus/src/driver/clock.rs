//! The driver's clock: milliseconds since some start, monotonic. The node reads the machine's
//! monotonic clock; the simulator sets virtual time.

use std::time::Instant;

use crate::core::Millis;

/// Where the driver reads the time (engine inputs are stamped with it; timers and the block
/// interval are deadlines on it).
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the clock's start; never decreases.
    fn now(&self) -> Millis;

    /// Wall-clock time, milliseconds since the Unix epoch: block times (the proposer's) and
    /// the bound they are checked against (each validator's).
    fn unix_ms(&self) -> u64;
}

/// The machine's monotonic clock, from the moment it was made.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    started: Instant,
}

impl MonotonicClock {
    /// A clock starting at zero now.
    pub fn new() -> Self {
        MonotonicClock { started: Instant::now() }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Millis {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn unix_ms(&self) -> u64 {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        since.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
