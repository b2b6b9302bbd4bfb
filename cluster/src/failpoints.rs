//! Disk faults on demand, for the chaos harness and tests (TiKV's `fail` crate). With the
//! `failpoints` feature (the node's test builds) each named point below can be told to fail,
//! stall or panic at run time; without it the points compile to nothing and [`configure`]
//! refuses.
//!
//! | name | where | `return` means |
//! |---|---|---|
//! | `wal-fsync` | the shared WAL syncer, before each fsync | the fsync failed (fatal for every Raft group of the node: nothing after it is acknowledged) |
//! | `raft-log-append` | a Raft group's log append, before the write | the write failed (fatal for that group) |
//! | `snapshot-install` | a partition replica installing a snapshot from its leader | the install failed |
//! | `trigger-advance` | a trigger's step, after its derived records are written, before the cursor advances | the step failed (the records are run again) |
//!
//! Actions are the `fail` crate's: `off`, `return`, `sleep(MS)` (a stall), `panic`, with
//! optional `P%` and `N*` prefixes, `->` chained.

/// The failpoints this crate has.
pub const NAMES: [&str; 4] = ["wal-fsync", "raft-log-append", "snapshot-install", "trigger-advance"];

/// Why a failpoint was not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailpointError {
    /// The build has no failpoints.
    #[error("this build has no failpoints (built without pyralog-cluster's `failpoints` feature)")]
    NotBuilt,
    /// No failpoint of that name.
    #[error(
        "no failpoint {0:?}; the failpoints are wal-fsync, raft-log-append, snapshot-install and trigger-advance"
    )]
    Unknown(String),
    /// The actions do not parse.
    #[error("failpoint {name}: {reason}")]
    BadActions {
        /// The failpoint.
        name: String,
        /// What the parser said.
        reason: String,
    },
}

/// Sets failpoint `name` to `actions` (`off` removes it).
pub fn configure(name: &str, actions: &str) -> Result<(), FailpointError> {
    if !cfg!(feature = "failpoints") {
        return Err(FailpointError::NotBuilt);
    }
    if !NAMES.contains(&name) {
        return Err(FailpointError::Unknown(name.to_owned()));
    }
    if actions == "off" {
        fail::remove(name);
        return Ok(());
    }
    fail::cfg(name, actions).map_err(|reason| FailpointError::BadActions { name: name.to_owned(), reason })
}

/// An injected failure as an I/O error (what the storage layer would have seen).
pub(crate) fn injected(name: &str) -> std::io::Error {
    std::io::Error::other(format!("injected by failpoint {name}"))
}
