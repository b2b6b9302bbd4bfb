//! Crash-safe sequence numbers and ids.
//!
//! - [`Obelisk`]: a counter that never hands out a value twice, even across `kill -9` and power
//!   loss, at the cost of one `fdatasync` per reserved range.
//! - [`ScarabGenerator`]: 64-bit ids (41-bit ms time, 10-bit coordinator, 13-bit sequence) that are
//!   unique and strictly increasing per coordinator across crashes and clock steps back.

mod durable_cell;
mod obelisk;
mod scarab;

pub use durable_cell::DurableCell;
pub use obelisk::Obelisk;
pub use scarab::{Clock, SCARAB_EPOCH_MS, ScarabGenerator, ScarabId, SystemClock};

use std::path::PathBuf;

/// A sequencer failure. Every variant is fatal for the sequencer that returned it: after a failed
/// `fsync` the kernel may have dropped the dirty pages, so retrying could report durability that
/// does not exist (the PostgreSQL "fsyncgate" lesson). The sequencer refuses all further calls.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SequencerError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier error poisoned the sequencer.
    #[error("sequencer {path} failed earlier and refuses further use; restart the process")]
    Poisoned {
        /// The sequencer's file.
        path: PathBuf,
    },
    /// The counter would pass its maximum.
    #[error("sequencer {path} is exhausted (limit {limit})")]
    Exhausted {
        /// The sequencer's file.
        path: PathBuf,
        /// The largest representable value.
        limit: u64,
    },
    /// A persisted file is not what this code wrote.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// `fsync`s the directory holding `path`, so a newly created or renamed entry survives power loss.
fn sync_parent_dir(path: &std::path::Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => std::path::Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}
