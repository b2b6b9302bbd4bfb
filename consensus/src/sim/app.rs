//! The simulated validators' app: small, but ABCI-shaped in the ways the driver relies on. It
//! persists only in `commit` (its "disk" outlives a crash; what `finalize` computed does not),
//! its app hash chains every block, it changes the validator set when the scenario says, and a
//! crash can make it lose its last commits, which the driver's handshake must replay.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use pyralog_crypto::{Digest, Domain};

use crate::app::{
    AppInfo, BlockContext, CheckContext, DecidedBlock, Finalized, Misbehaviour, PayloadVerdict,
    ProposalContext, ReplicatedApp,
};
use crate::validators::{Validator, ValidatorSet};

/// An app the simulator can run: a [`ReplicatedApp`] whose committed state it can inspect and
/// that it can restart after a crash (the app of the simulated validators, or the chain app of
/// the node, wrapped by its tests).
pub trait SimulatedApp: ReplicatedApp {
    /// The app as it restarts after a crash: its committed state, nothing pending, and (where
    /// the app can model it) its last `lost` commits gone.
    fn restarted(&self, lost: u64) -> Self
    where
        Self: Sized;
    /// The app hash committed at `height`, if any.
    fn hash_at(&self, height: u64) -> Option<Digest>;
    /// The last committed height.
    fn height(&self) -> u64;
    /// The first height `finalize` was handed another block context than its payload's.
    fn wrong_context(&self) -> Option<u64> {
        None
    }
    /// The validator set deciding `height`, when the app keeps it (a staking app); the
    /// simulator's checks then use it instead of the scenario's.
    fn validators_at(&self, height: u64) -> Option<ValidatorSet> {
        let _ = height;
        None
    }
}

/// What survives a crash: the app hash after each committed height (index `height - 1`).
#[derive(Debug, Default)]
struct Disk {
    hashes: Vec<Digest>,
    /// The first height whose `DecidedBlock` context differed from what its payload carries.
    wrong_context: Option<u64>,
}

/// One validator's app. Clones share the disk.
#[derive(Debug, Clone)]
pub(super) struct SimApp {
    disk: Arc<Mutex<Disk>>,
    /// `(height, app hash)` finalized and not yet committed.
    pending: Option<(u64, Digest)>,
    /// Validator updates by the height whose block makes them.
    updates: Arc<Vec<(u64, Vec<Validator>)>>,
}

impl SimApp {
    pub(super) fn new(updates: Vec<(u64, Vec<Validator>)>) -> Self {
        SimApp { disk: Arc::default(), pending: None, updates: Arc::new(updates) }
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SimulatedApp for SimApp {
    /// The same disk, nothing pending, and the last `lost` commits gone.
    fn restarted(&self, lost: u64) -> Self {
        let mut disk = self.disk();
        let keep = disk.hashes.len().saturating_sub(lost as usize);
        disk.hashes.truncate(keep);
        drop(disk);
        SimApp { disk: self.disk.clone(), pending: None, updates: self.updates.clone() }
    }

    fn hash_at(&self, height: u64) -> Option<Digest> {
        let index = usize::try_from(height.checked_sub(1)?).ok()?;
        self.disk().hashes.get(index).copied()
    }

    fn height(&self) -> u64 {
        self.disk().hashes.len() as u64
    }

    fn wrong_context(&self) -> Option<u64> {
        self.disk().wrong_context
    }
}

impl ReplicatedApp for SimApp {
    type Error = Infallible;

    fn info(&self) -> Result<AppInfo, Infallible> {
        let disk = self.disk();
        let last_app_hash = disk.hashes.last().map_or_else(Vec::new, |h| h.0.to_vec());
        Ok(AppInfo { last_height: disk.hashes.len() as u64, last_app_hash })
    }

    fn init_chain(&mut self, _: &str, _: &[Validator], _: &[u8]) -> Result<Vec<u8>, Infallible> {
        Ok(Vec::new())
    }

    fn check_tx(&self, tx: &[u8]) -> Result<Result<(), String>, Infallible> {
        Ok(if tx.starts_with(b"bad") { Err("refused".into()) } else { Ok(()) })
    }

    /// Mempool transactions that fit, then a marker carrying the block context, so no payload is
    /// empty.
    fn prepare_payload(
        &mut self,
        context: &ProposalContext,
        candidates: Vec<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, Infallible> {
        Ok(crate::testkit::marked_payload(context, candidates, max_bytes))
    }

    /// Any non-empty payload, except an honest one built on another block than this validator's
    /// last: an equivocator's unmarked twin proposal is as valid as the real one, which is what
    /// makes more than f equivocators dangerous, while a driver that restarted with the wrong
    /// parent stalls the run.
    fn process_payload(
        &mut self,
        context: &CheckContext,
        txs: &[Vec<u8>],
    ) -> Result<PayloadVerdict, Infallible> {
        let marked = txs.last().is_some_and(|tx| tx.starts_with(b"block "));
        let refused = txs.is_empty() || (marked && !crate::testkit::marked_for(txs, context));
        Ok(if refused { PayloadVerdict::Reject } else { PayloadVerdict::Accept })
    }

    fn block_context(&self, txs: &[Vec<u8>]) -> BlockContext {
        crate::testkit::marked_context(txs)
    }

    fn finalize(&mut self, block: &DecidedBlock) -> Result<Finalized, Infallible> {
        let carried = crate::testkit::marked_context(&block.txs);
        let signers = carried.last_commit.as_ref().map(|p| p.signers()).unwrap_or_default();
        let evidence: Vec<Misbehaviour> = carried.evidence.iter().map(Misbehaviour::from).collect();
        if (block.time_ms, block.proposer, &block.last_commit_signers, &block.evidence)
            != (carried.time_ms, carried.proposer, &signers, &evidence)
        {
            self.disk().wrong_context.get_or_insert(block.height);
        }
        let previous = self.disk().hashes.last().copied().unwrap_or(Digest([0; 32]));
        let mut bytes = previous.0.to_vec();
        bytes.extend_from_slice(&block.height.to_be_bytes());
        bytes.extend_from_slice(&block.id.0);
        // The context is part of the app hash: the oracle's app-hash check then shows every
        // replica was handed the same one.
        bytes.extend_from_slice(&block.time_ms.to_be_bytes());
        bytes.extend_from_slice(block.proposer.as_ref().map_or(&[0; 32], |p| p.as_bytes()));
        for signer in &block.last_commit_signers {
            bytes.extend_from_slice(signer.as_bytes());
        }
        for misbehaviour in &block.evidence {
            bytes.extend_from_slice(misbehaviour.validator.as_bytes());
            bytes.extend_from_slice(&misbehaviour.height.to_be_bytes());
        }
        let hash = Domain::ConsensusValue.hash(&bytes);
        self.pending = Some((block.height, hash));
        let validator_updates =
            self.updates.iter().filter(|(h, _)| *h == block.height).flat_map(|(_, u)| u.clone()).collect();
        Ok(Finalized { tx_results: Vec::new(), validator_updates, app_hash: hash.0.to_vec() })
    }

    fn commit(&mut self) -> Result<u64, Infallible> {
        let pending = self.pending.take();
        let mut disk = self.disk();
        if let Some((height, hash)) = pending {
            // The driver finalizes each height once, in order (a replay comes after a loss).
            if height == disk.hashes.len() as u64 + 1 {
                disk.hashes.push(hash);
            }
        }
        Ok(disk.hashes.len() as u64)
    }

    fn query(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, Infallible> {
        Ok(Vec::new())
    }
}
