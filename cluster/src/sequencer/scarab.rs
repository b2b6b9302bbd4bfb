//! Scarab ids: 64-bit, time-ordered, unique per coordinator across crashes and clock steps back.
//!
//! Layout (most significant first): 41 bits of milliseconds since [`SCARAB_EPOCH_MS`]
//! (2026-01-01T00:00:00Z; lasts until 2095), 10 bits of coordinator id, 13 bits of sequence within
//! the millisecond. Ids from one coordinator strictly increase, so they sort like their creation.
//!
//! Crash and clock safety: the generator's time only moves forward (when the wall clock steps
//! back it keeps counting from its last millisecond, borrowing the next millisecond when the 8192
//! sequence numbers of one are used up), and before it uses a millisecond at or above the durable
//! *high-water mark* it persists a new mark `lease_ms` ahead. Every id issued before a crash is
//! therefore below the mark found at restart, where the generator resumes.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{DurableCell, SequencerError};

/// The Scarab epoch: 2026-01-01T00:00:00Z in ms since the Unix epoch.
pub const SCARAB_EPOCH_MS: u64 = 1_767_225_600_000;
const TIME_BITS: u32 = 41;
const COORDINATOR_BITS: u32 = 10;
const SEQUENCE_BITS: u32 = 13;
const MAX_TIME: u64 = (1 << TIME_BITS) - 1;
const SEQUENCES_PER_MS: u32 = 1 << SEQUENCE_BITS;

/// A Scarab id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScarabId(pub u64);

impl ScarabId {
    fn new(time: u64, coordinator: u16, sequence: u32) -> Self {
        ScarabId(
            (time << (COORDINATOR_BITS + SEQUENCE_BITS))
                | (u64::from(coordinator) << SEQUENCE_BITS)
                | u64::from(sequence),
        )
    }

    /// Milliseconds since the Unix epoch encoded in the id.
    pub fn unix_ms(&self) -> u64 {
        (self.0 >> (COORDINATOR_BITS + SEQUENCE_BITS)) + SCARAB_EPOCH_MS
    }

    /// The coordinator that issued the id.
    pub fn coordinator(&self) -> u16 {
        ((self.0 >> SEQUENCE_BITS) & ((1 << COORDINATOR_BITS) - 1)) as u16
    }

    /// The sequence number within the millisecond.
    pub fn sequence(&self) -> u32 {
        (self.0 & ((1 << SEQUENCE_BITS) - 1)) as u32
    }
}

/// A wall clock in ms since the Unix epoch (a trait so tests can step it back).
pub trait Clock: Send {
    /// Now, in ms since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}

/// Issues Scarab ids for one coordinator. See the module docs.
#[derive(Debug)]
pub struct ScarabGenerator<C> {
    coordinator: u16,
    clock: C,
    /// Time (ms since the Scarab epoch) of the next id.
    time: u64,
    /// Sequence of the next id within `time`.
    sequence: u32,
    high_water: DurableCell,
    /// Durable bound: every issued id's time is below it.
    high_water_ms: u64,
    lease_ms: u64,
    poisoned: bool,
}

impl<C: Clock> ScarabGenerator<C> {
    /// Opens the generator of `coordinator` (0-1023) with its high-water mark at `path`,
    /// persisting the mark `lease_ms` ahead of the clock (one fsync per lease).
    pub fn open(
        path: impl Into<PathBuf>,
        coordinator: u16,
        clock: C,
        lease_ms: u64,
    ) -> Result<Self, SequencerError> {
        let path = path.into();
        if coordinator >= 1 << COORDINATOR_BITS {
            return Err(SequencerError::Corrupt {
                path,
                reason: format!("coordinator id {coordinator} does not fit in {COORDINATOR_BITS} bits"),
            });
        }
        let high_water = DurableCell::new(path);
        let high_water_ms = high_water.load()?.unwrap_or(0);
        Ok(ScarabGenerator {
            coordinator,
            clock,
            time: high_water_ms,
            sequence: 0,
            high_water,
            high_water_ms,
            lease_ms: lease_ms.max(1),
            poisoned: false,
        })
    }

    /// The next id.
    pub fn next_id(&mut self) -> Result<ScarabId, SequencerError> {
        if self.poisoned {
            return Err(SequencerError::Poisoned { path: self.high_water.path().to_owned() });
        }
        let now = self.clock.now_ms().saturating_sub(SCARAB_EPOCH_MS);
        if now > self.time {
            self.time = now;
            self.sequence = 0;
        } else if self.sequence == SEQUENCES_PER_MS {
            // This millisecond is used up (or the clock went back): borrow the next one.
            self.time += 1;
            self.sequence = 0;
        }
        if self.time > MAX_TIME {
            return Err(SequencerError::Exhausted {
                path: self.high_water.path().to_owned(),
                limit: MAX_TIME,
            });
        }
        if self.time >= self.high_water_ms {
            let mark = self.time + self.lease_ms;
            if let Err(err) = self.high_water.store(mark) {
                self.poisoned = true;
                return Err(err);
            }
            self.high_water_ms = mark;
        }
        let id = ScarabId::new(self.time, self.coordinator, self.sequence);
        self.sequence += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let id = ScarabId::new(123_456, 1023, 8191);
        assert_eq!((id.unix_ms(), id.coordinator(), id.sequence()), (SCARAB_EPOCH_MS + 123_456, 1023, 8191));
        assert!(ScarabId::new(2, 0, 0) > ScarabId::new(1, 1023, 8191));
    }
}
