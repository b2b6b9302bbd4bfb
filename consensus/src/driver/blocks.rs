//! The block path of the driver: a decided or synced block is checked, stored with its proof,
//! executed by the app (`finalize`, then `commit`), and the engine moves on; at start, stored
//! blocks the app has not committed are replayed into it (the ABCI handshake).

use super::store::{ChainStore, StoreError, StoredBlock};
use super::{ConsensusNet, Driver, DriverError, app_err};
use crate::app::{DecidedBlock, Misbehaviour, ReplicatedApp};
use crate::core::{ConsensusCore, Input};
use crate::finality::{FinalityProof, Trust};
use crate::vote::payload_id;

impl<E, A, N, S> Driver<E, A, N, S>
where
    E: ConsensusCore,
    A: ReplicatedApp,
    N: ConsensusNet,
    S: ChainStore,
{
    /// Initializes the app at genesis, then replays stored blocks it has not committed (it may lag
    /// after a crash).
    pub(super) fn handshake(&mut self) -> Result<(), DriverError> {
        let app_height = self.app.info().map_err(app_err)?.last_height;
        if app_height == 0 {
            // ABCI InitChain: the app sets up its genesis state (apps that already did answer
            // with what they have).
            let validators = self.config.validators.validators().to_vec();
            self.app
                .init_chain(&self.config.chain_id, &validators, &self.config.app_state)
                .map_err(app_err)?;
        }
        let last = self.store.last_height()?;
        for height in app_height + 1..=last {
            let block = self.store.block(height)?.ok_or(StoreError::Corrupt {
                what: "block",
                key: height,
                reason: "missing below the last height".into(),
            })?;
            self.execute(&block)?;
        }
        Ok(())
    }

    /// Stores and executes `block`, then moves the engine to the next height.
    pub(super) fn commit(&mut self, block: StoredBlock, synced: bool) -> Result<(), DriverError> {
        if block.height != self.height {
            return Ok(()); // decided here and synced, or the other way round
        }
        // What the engine logged before deciding is durable before the block is.
        self.flush()?;
        self.check_block(&block).map_err(|reason| DriverError::BadProof { height: block.height, reason })?;
        self.store.put_block(&block)?;
        let parent_round = self.parent_proof.as_ref().and_then(FinalityProof::round);
        let app_hash = self.execute(&block)?;
        let validators = self.validators_at(block.height + 2).clone();
        self.input(Input::BlockApplied { height: block.height, app_hash, validator_updates: validators })?;
        self.store.prune_wal_below(block.height + 1)?;
        let (started, now, round, rounds) = match synced {
            true => (0, 0, 0, 0),
            false => (
                self.height_started,
                self.clock.now(),
                block.proof.round().unwrap_or(0),
                block.proof.rounds_taken(parent_round).unwrap_or(0),
            ),
        };
        let queued = self.mempool.len() as u64;
        self.progress.send_modify(|p| {
            p.height = block.height;
            p.synced += u64::from(synced);
            (p.round, p.rounds) = (round, rounds);
            (p.started_ms, p.committed_ms) = (started, now);
            p.mempool_txs = queued;
        });
        if synced {
            self.next_height_at = None;
            return self.start_height(block.height + 1);
        }
        // Wait out the block interval (a zero one too: the next height starts at the runner's
        // next wake-up, not inside this call, or a validator that decides alone would recurse
        // through heights until the stack overflows). `self.height` already names the next
        // height, so a block synced meanwhile is still accepted for it.
        self.height = block.height + 1;
        self.timers.clear();
        self.next_height_at =
            Some(self.clock.now().saturating_add(self.config.block_interval.as_millis() as u64));
        Ok(())
    }

    /// Runs `block` through the app; returns the app hash after it.
    fn execute(&mut self, block: &StoredBlock) -> Result<Vec<u8>, DriverError> {
        // The context comes from the decided bytes, so every replica reads the same.
        let context = match self.checked.take() {
            Some((id, context)) if id == block.block => context,
            _ => self.app.block_context(&block.txs),
        };
        let decided = DecidedBlock {
            height: block.height,
            id: block.block,
            time_ms: context.time_ms,
            proposer: context.proposer,
            txs: block.txs.clone(),
            last_commit_signers: context.last_commit.as_ref().map(FinalityProof::signers).unwrap_or_default(),
            evidence: context.evidence.iter().map(Misbehaviour::from).collect(),
        };
        self.evidence.committed(block.height, &context.evidence);
        // Whatever the block carried leaves the mempool.
        self.mempool.committed(&block.txs);
        let finalized = self.app.finalize(&decided).map_err(app_err)?;
        if !finalized.validator_updates.is_empty() {
            // Applying the same updates twice gives the same set, so replaying this block after
            // a crash rewrites the same record.
            let effective = block.height + 2;
            let next =
                self.validators_at(block.height + 1).with_updates(&finalized.validator_updates).map_err(
                    |e| DriverError::App(format!("height {}: invalid validator updates: {e}", block.height)),
                )?;
            tracing::info!(
                height = block.height,
                effective,
                validators = next.validators().len(),
                "validator set changes"
            );
            self.store.put_validator_set(effective, &next)?;
            self.sets.insert(effective, next);
            self.announce_validators();
        }
        self.app.commit().map_err(app_err)?;
        self.parent = block.block;
        self.parent_proof = Some(block.proof.clone());
        Ok(finalized.app_hash)
    }
}

impl<E, A, N, S> Driver<E, A, N, S>
where
    E: ConsensusCore,
    A: ReplicatedApp,
    N: ConsensusNet,
    S: ChainStore,
{
    /// A block is what its proof finalizes only if its transactions hash to the finalized id and
    /// the proof holds: under the validator set of its height, or (work engines) under the
    /// chain's work rules on top of the last committed block's seal.
    pub(super) fn check_block(&self, block: &StoredBlock) -> Result<(), String> {
        if payload_id(&block.txs) != block.block {
            return Err("the transactions do not hash to the certified block id".into());
        }
        let trust = match self.engine.work_rules() {
            Some(rules) => {
                let parent = self.parent_proof.as_ref().and_then(FinalityProof::seals).and_then(<[_]>::first);
                Trust::Work { rules, parent }
            }
            None => Trust::Validators(self.validators_at(block.height)),
        };
        block
            .proof
            .verify(self.engine.engine(), &self.config.chain_id, block.height, &block.block, trust)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
