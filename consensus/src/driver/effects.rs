//! How the driver performs an engine's effects: messages out (after the WAL they follow is
//! durable), timers, payloads built and checked by the app (on the last committed block, or
//! placed on an unfinalised one for work engines), blocks committed, evidence pooled, the
//! miner's jobs, alarms and peer reports.

use super::{ChainStore, ConsensusNet, Driver, DriverError, app_err};
use crate::app::{CheckContext, ProposalContext, ReplicatedApp};
use crate::core::{ConsensusCore, Effect, Input, Placement};
use crate::driver::store::StoredBlock;
use crate::evidence::{ContextRules, check_evidence};

impl<E, A, N, S> Driver<E, A, N, S>
where
    E: ConsensusCore,
    A: ReplicatedApp,
    N: ConsensusNet,
    S: ChainStore,
{
    /// Performs `effect`; returns the input it leads to, if any (the app's answers).
    pub(super) fn perform(&mut self, effect: Effect) -> Result<Option<Input>, DriverError> {
        Ok(match effect {
            Effect::Broadcast(bytes) => {
                self.flush()?;
                if self.may_send() {
                    self.net.broadcast(bytes);
                }
                None
            }
            Effect::SendTo { to, bytes } => {
                self.flush()?;
                if self.may_send() {
                    self.net.send_to(to, bytes);
                }
                None
            }
            Effect::SetTimer { id, after } => {
                self.timers.insert(id, self.clock.now().saturating_add(after.as_millis() as u64));
                None
            }
            Effect::CancelTimer(id) => {
                self.timers.remove(&id);
                None
            }
            Effect::BuildPayload { height, proposer, on } => {
                // The app picks; the mempool keeps everything until a block carries it.
                let candidates = self.mempool.candidates();
                let context = match on {
                    // On a block not yet committed there is no proof of the parent to carry, and
                    // work engines have no validators to accuse.
                    Some(Placement { parent, time_ms, unfinalised }) => ProposalContext {
                        height,
                        proposer,
                        parent,
                        time_ms,
                        last_commit: None,
                        evidence: Vec::new(),
                        unfinalised,
                    },
                    None => ProposalContext {
                        height,
                        proposer,
                        parent: self.parent,
                        time_ms: self.clock.unix_ms(),
                        last_commit: self.parent_proof.clone(),
                        evidence: self.evidence.candidates(height),
                        unfinalised: Vec::new(),
                    },
                };
                let txs = self
                    .app
                    .prepare_payload(&context, candidates, self.config.max_payload_bytes)
                    .map_err(app_err)?;
                Some(Input::PayloadBuilt { height, txs })
            }
            Effect::CheckPayload { height, block, txs, on } => {
                // What the payload carries for consensus (last commit, evidence) is checked here,
                // where the validator sets of past heights are known; the rest is the app's. A
                // block placed on one not yet committed carries neither.
                let carried = self.app.block_context(&txs);
                let (parent, refusal) = match on {
                    Some(parent) => {
                        let carries = carried.last_commit.is_some() || !carried.evidence.is_empty();
                        (
                            parent,
                            carries.then(|| {
                                "a block on an unfinalised one carries a last commit or evidence".to_owned()
                            }),
                        )
                    }
                    None => {
                        let validators_at = |h| self.validators_at(h);
                        let rules = ContextRules {
                            chain_id: &self.config.chain_id,
                            engine: self.engine.engine(),
                            height,
                            parent: &self.parent,
                            parent_proof: self.parent_proof.as_ref(),
                            validators_at: &validators_at,
                        };
                        (self.parent, rules.check(&carried).err().map(|e| e.to_string()))
                    }
                };
                let valid = match refusal {
                    None => {
                        let now_ms = self.clock.unix_ms();
                        let context = CheckContext { height, parent, now_ms, on_unfinalised: on.is_some() };
                        let verdict = self.app.process_payload(&context, &txs).map_err(app_err)?;
                        // Decoding a context costs a point decompression per key it names:
                        // `execute` reuses this one if the block is decided.
                        self.checked = Some((block, carried));
                        verdict == crate::app::PayloadVerdict::Accept
                    }
                    Some(reason) => {
                        tracing::info!(height, %reason, "payload rejected");
                        false
                    }
                };
                Some(Input::PayloadChecked { block, valid })
            }
            Effect::CommitBlock { height, block, txs, proof } => {
                self.commit(StoredBlock { height, block, txs, proof }, false)?;
                None
            }
            Effect::PersistWal { height, entry } => {
                self.wal_pending.push((height, entry));
                None
            }
            Effect::Mine(job) => {
                if let Some(miner) = self.miner.as_mut() {
                    miner.mine(job);
                }
                None
            }
            Effect::Alarm(reason) => {
                tracing::error!(%reason, "consensus alarm");
                self.progress.send_modify(|p| p.alarms += 1);
                None
            }
            Effect::PeerMisbehaved { peer, reason } => {
                self.net.report(peer, reason);
                None
            }
            Effect::Evidence(evidence) => {
                // Pooled and gossiped: it reaches the app only inside an agreed block (a proposer
                // carries it, every validator checks it), since each node's own sightings
                // differ and handing them to `finalize` would make the replicas diverge.
                let validators = self.validators_at(evidence.height());
                let at = self.height.max(evidence.height()) + 1;
                match check_evidence(&evidence, &self.config.chain_id, at, validators) {
                    Ok(()) => {
                        tracing::warn!(validator = %evidence.validator(), height = evidence.height(), "equivocation");
                        if self.evidence.add((*evidence).clone()) {
                            self.progress.send_modify(|p| p.evidence += 1);
                            self.net.gossip_evidence(&evidence);
                        }
                    }
                    Err(reason) => tracing::warn!(%reason, "the engine reported evidence that does not hold"),
                }
                None
            }
        })
    }
}
