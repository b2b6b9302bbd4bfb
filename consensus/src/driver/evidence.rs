//! The driver's evidence pool: verified equivocations waiting for a block (CometBFT's evidence
//! pool, in memory). The engine's own sightings and the ones peers gossip enter it; the proposer
//! hands the pending ones to the app with the block context; a committed block's evidence leaves
//! it, and so does evidence too old to enter any block ([`MAX_EVIDENCE_AGE`]).

use pyralog_crypto::PublicKey;

use crate::evidence::{MAX_EVIDENCE_AGE, MAX_EVIDENCE_PER_BLOCK};
use crate::vote::Evidence;

/// Most pieces the pool keeps, pending and proven each; more are counted, not kept.
const MAX_EVIDENCE: usize = 1024;

/// Most pending pieces against one validator: a former validator can sign old conflicting votes
/// at will, and must not crowd out the evidence against others.
const MAX_PENDING_PER_VALIDATOR: usize = 4;

/// Verified evidence, pending and proven.
#[derive(Debug, Default)]
pub(super) struct EvidencePool {
    /// Every distinct piece proven since the driver started, oldest first (append-only, so a
    /// watcher can read what is new).
    proven: Vec<Evidence>,
    /// Pieces not yet in a block, at most one per validator and height, oldest first.
    pending: Vec<Evidence>,
    /// `(height, validator)` of misbehaviour committed in blocks since the driver started.
    included: std::collections::BTreeSet<(u64, PublicKey)>,
}

impl EvidencePool {
    /// Adds verified `evidence`; whether it is news (not pending, not included, not proven).
    pub(super) fn add(&mut self, evidence: Evidence) -> bool {
        let who = (evidence.height(), evidence.validator());
        if self.proven.contains(&evidence) {
            return false;
        }
        if self.proven.len() < MAX_EVIDENCE {
            self.proven.push(evidence.clone());
        }
        let known =
            self.included.contains(&who) || self.pending.iter().any(|e| (e.height(), e.validator()) == who);
        let against = self.pending.iter().filter(|e| e.validator() == who.1).count();
        if !known && against < MAX_PENDING_PER_VALIDATOR && self.pending.len() < MAX_EVIDENCE {
            self.pending.push(evidence);
        }
        true
    }

    /// Every distinct piece proven since the driver started, oldest first.
    pub(super) fn proven(&self) -> &[Evidence] {
        &self.proven
    }

    /// The pending pieces that may enter a block at `height` (older than it), in arrival order,
    /// at most as many as a block carries.
    pub(super) fn candidates(&self, height: u64) -> Vec<Evidence> {
        self.pending.iter().filter(|e| e.height() < height).take(MAX_EVIDENCE_PER_BLOCK).cloned().collect()
    }

    /// A block at `height` committed `evidence`: it leaves the pool, and so does what is now too
    /// old to enter the next block.
    pub(super) fn committed(&mut self, height: u64, evidence: &[Evidence]) {
        for piece in evidence {
            self.included.insert((piece.height(), piece.validator()));
        }
        let oldest = (height + 1).saturating_sub(MAX_EVIDENCE_AGE);
        self.included.retain(|(h, _)| *h >= oldest);
        let included = &self.included;
        self.pending.retain(|e| e.height() >= oldest && !included.contains(&(e.height(), e.validator())));
    }
}
