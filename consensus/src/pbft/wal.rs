//! The engine's write-ahead log: every message it signs, persisted before it is sent, with what it
//! needs to resume without contradicting itself (the payload it prepared, the PREPAREs behind a
//! COMMIT, which make its prepared certificate for the next VIEW-CHANGE).

use pyralog_crypto::quorum::SignatureShare;
use serde::{Deserialize, Serialize};

use super::wire::{NewView, Proposal, SignedVote, ViewChange};

/// One entry: something this validator signed at a height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Record {
    /// Its PRE-PREPARE (as the primary of a view it started the height in).
    Proposal(Proposal),
    /// Its NEW-VIEW (its PRE-PREPARE of the new view inside).
    NewView(NewView),
    /// Its PREPARE, with the proposal it prepares (the payload).
    Prepare {
        /// The PREPARE.
        vote: SignedVote,
        /// The accepted proposal.
        proposal: Proposal,
    },
    /// Its COMMIT, with the PREPAREs that prepared the block.
    Commit {
        /// The COMMIT.
        vote: SignedVote,
        /// The prepare quorum.
        prepares: Vec<SignatureShare>,
    },
    /// Its VIEW-CHANGE.
    ViewChange(ViewChange),
}

/// The entry's bytes.
pub(crate) fn encode(height: u64, record: &Record) -> Vec<u8> {
    postcard::to_allocvec(&(height, record)).expect("records serialize")
}

/// Decodes an entry written by [`encode`]; says why bytes this code did not write do not decode.
pub(crate) fn decode(bytes: &[u8]) -> Result<(u64, Record), String> {
    postcard::from_bytes(bytes).map_err(|e| format!("not a PBFT WAL entry: {e}"))
}
