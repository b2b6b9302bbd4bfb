//! The simulator's oracle: what every node stored and committed is checked against what the
//! scenario says, never against the driver's own state (see the module docs of [`super`]).

use pyralog_crypto::Keypair;

use super::{Behaviour, DecidedBlockInfo, SIM_CHAIN, Sim, SimFailure, SimulatedApp, net};
use crate::core::ConsensusCore;
use crate::driver::ChainStore;
use crate::finality::{Engine, Trust};
use crate::validators::ValidatorSet;
use crate::vote::{Evidence, payload_id};

impl<E, F, A> Sim<'_, E, F, A>
where
    E: ConsensusCore,
    F: FnMut(Keypair) -> E,
    A: SimulatedApp,
{
    pub(super) fn check_evidence(&mut self, node: usize, evidence: &Evidence) -> Result<(), SimFailure> {
        let accused = self.index_of(&evidence.validator());
        if !evidence.verify() || !self.is_byzantine(accused) {
            return Err(SimFailure::FalseEvidence { seed: self.scenario.seed, node, accused });
        }
        self.evidence += 1;
        if matches!(evidence, Evidence::DuplicateProposal(_)) {
            self.proposal_evidence += 1;
        }
        Ok(())
    }

    /// Checks the blocks and app hashes `node` stored since the last check against the oracle.
    pub(super) fn check_store(&mut self, node: usize) -> Result<(), SimFailure> {
        let seed = self.scenario.seed;
        let bad = |height, reason: String| SimFailure::BadCertificate { seed, node, height, reason };
        let n = &self.nodes[node];
        let last = n.store.last_height().map_err(|e| bad(0, e.to_string()))?;
        let honest = n.behaviour == Behaviour::Honest;
        for height in n.checked + 1..=last {
            let block = n.store.block(height).map_err(|e| bad(height, e.to_string()))?;
            let block = block.ok_or_else(|| bad(height, "missing below the last height".into()))?;
            if payload_id(&block.txs) != block.block {
                return Err(bad(height, "the transactions do not hash to the certified block id".into()));
            }
            let set = &self.set_at(node, height);
            let engine = self.engine.unwrap_or(Engine::Tendermint);
            // Work proofs extend the seal of the block below, as the store holds it.
            let parent = match (&self.rules, height) {
                (Some(_), 2..) => n.store.block(height - 1).map_err(|e| bad(height, e.to_string()))?,
                _ => None,
            };
            let parent_seal = parent.as_ref().and_then(|p| p.proof.seals()).and_then(<[_]>::first);
            let trust = match &self.rules {
                Some(rules) => Trust::Work { rules, parent: parent_seal },
                None => Trust::Validators(set),
            };
            block
                .proof
                .verify(engine, SIM_CHAIN, height, &block.block, trust)
                .map_err(|e| bad(height, e.to_string()))?;
            // A block built by a validator of its height carries it as proposer, and a time on
            // the shared virtual clock (an equivocator's twin payload carries no context).
            let context = n.app.block_context(&block.txs);
            if let Some(proposer) = context.proposer
                && (!set.validators().iter().any(|v| v.key == proposer)
                    || context.time_ms < net::SIM_EPOCH_MS)
            {
                return Err(bad(
                    height,
                    format!("block context {context:?} names no validator of its height"),
                ));
            }
            // What it carries for consensus: the parent's proof under the parent's set, and
            // evidence that holds and accuses a Byzantine validator.
            if let Some(proof) = &context.last_commit {
                let parent = n.store.block(height - 1).map_err(|e| bad(height, e.to_string()))?;
                let parent = parent.ok_or_else(|| bad(height, "a last commit without a parent".into()))?;
                let parent_set = &self.set_at(node, height - 1);
                proof
                    .verify(engine, SIM_CHAIN, height - 1, &parent.block, parent_set)
                    .map_err(|e| bad(height, format!("last commit: {e}")))?;
            }
            for evidence in &context.evidence {
                let accused = self.index_of(&evidence.validator());
                if !evidence.verify() || !self.is_byzantine(accused) || evidence.height() >= height {
                    return Err(SimFailure::FalseEvidence { seed, node, accused });
                }
                self.punished.insert((evidence.height(), evidence.validator()));
            }
            match self.decided.get(&height) {
                Some(first) if *first != block.block => {
                    return Err(SimFailure::Safety { seed, height, first: *first, second: block.block });
                }
                None if honest => {
                    self.decided.insert(height, block.block);
                    let round = block.proof.commit_certificate().map_or(0, |c| c.message.round);
                    self.blocks.insert(height, DecidedBlockInfo { round, proposer: context.proposer });
                }
                _ => {}
            }
        }
        self.nodes[node].checked = last;
        let app = &self.nodes[node].app;
        if let Some(height) = app.wrong_context() {
            return Err(bad(height, "finalize was handed another block context than the payload's".into()));
        }
        for height in 1..=app.height() {
            let Some(hash) = app.hash_at(height) else { break };
            let first = *self.app_hashes.entry(height).or_insert(hash);
            if first != hash {
                return Err(SimFailure::AppHash { seed, node, height });
            }
        }
        Ok(())
    }

    /// The validator set deciding `height`: the app's, when it keeps them, else the scenario's.
    fn set_at(&self, node: usize, height: u64) -> ValidatorSet {
        self.nodes[node]
            .app
            .validators_at(height)
            .unwrap_or_else(|| self.sets.get(height as usize).unwrap_or(&self.genesis).clone())
    }
}
