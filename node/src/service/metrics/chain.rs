//! The chain's, the consensus engine's and the overlay's metrics: gauges and counters read at
//! scrape time from the driver's [`Progress`], the committed state and the overlay's status;
//! histograms (block interval, commit latency, rounds per height) observed as heights commit
//! ([`observe_commits`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use pyralog_chain::app::read_state;
use pyralog_chain::staking::StakingParams;
use pyralog_chain::staking::records::{
    CANDIDATES_KEY, PARAMS_KEY, SigningInfo, ValidatorRecord, signing_info_key, validator_key,
};
use pyralog_chain::values::{Anchor, VALIDATORS_KEY, anchor_key};
use pyralog_consensus::Validator;
use pyralog_consensus::driver::Progress;
use pyralog_crypto::PublicKey;

use super::labels::{KindLabels, PartitionLabels, catch_up};
use crate::clock::unix_ms;
use crate::service::chain::ChainService;
use crate::service::links::ClusterNode;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ValidatorLabels {
    validator: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GossipLabels {
    topic: &'static str,
    direction: &'static str,
}

/// The chain's metrics.
pub(super) struct ChainMetrics {
    height: Gauge,
    alarms: Counter,
    mined_seals: Counter,
    evidence: Counter,
    synced: Counter,
    block_interval: Histogram,
    commit_latency: Histogram,
    rounds: Histogram,
    round: Gauge,
    mempool_txs: Gauge,
    mempool_refused: Family<ReasonLabels, Counter>,
    validator_power: Family<ValidatorLabels, Gauge>,
    bonded_power: Gauge,
    validators: Family<StatusLabels, Gauge>,
    missed_blocks: Family<ValidatorLabels, Gauge>,
    peers: Family<KindLabels, Gauge>,
    gossip_messages: Family<GossipLabels, Counter>,
    gossip_bytes: Family<GossipLabels, Counter>,
    bans: Counter,
    refused_banned: Counter,
    anchor_lag: Family<PartitionLabels, Gauge>,
    anchor_age: Family<PartitionLabels, Gauge>,
}

/// Registers `T` under `name` and returns it.
fn add<T: prometheus_client::registry::Metric + Clone>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    metric: T,
) -> T {
    registry.register(name, help, metric.clone());
    metric
}

impl ChainMetrics {
    /// Registers the chain's metrics in `r`.
    pub(super) fn register(r: &mut Registry) -> Self {
        // From 50 ms to about 100 s: sub-second blocks on a LAN to rounds lost to timeouts.
        let seconds = || Histogram::new(exponential_buckets(0.05, 2.0, 12));
        ChainMetrics {
            height: add(r, "chain_finalized_height", "The chain's highest finalized block", Gauge::default()),
            alarms: add(
                r,
                "chain_consensus_alarms",
                "Alarms the consensus engine raised since start (Proof-of-Work: a heavier chain forking below a final block, refused)",
                Counter::default(),
            ),
            mined_seals: add(
                r,
                "chain_mined_seals",
                "Seals this node's miner found since start (Proof-of-Work)",
                Counter::default(),
            ),
            evidence: add(
                r,
                "chain_evidence",
                "Equivocations (double signs) this node's driver proved since start",
                Counter::default(),
            ),
            synced: add(
                r,
                "chain_synced_blocks",
                "Blocks this node applied through block sync (not decided with its peers) since start",
                Counter::default(),
            ),
            block_interval: add(
                r,
                "chain_block_interval_seconds",
                "Time between two consecutive heights this node committed with its peers",
                seconds(),
            ),
            commit_latency: add(
                r,
                "consensus_commit_latency_seconds",
                "Time from the start of a height to its commit on this node",
                seconds(),
            ),
            rounds: add(
                r,
                "consensus_rounds_per_height",
                "Rounds (PBFT: views) a height took to decide, 1 when its first round decided it",
                Histogram::new([1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0]),
            ),
            round: add(
                r,
                "consensus_decided_round",
                "The round (PBFT: view) the last committed height was decided in",
                Gauge::default(),
            ),
            mempool_txs: add(r, "mempool_txs", "Transactions waiting in the mempool", Gauge::default()),
            mempool_refused: add(
                r,
                "mempool_refused",
                "Transactions the mempool refused since start: full (dropped at capacity), rejected (check_tx)",
                Family::default(),
            ),
            validator_power: add(
                r,
                "chain_validator_power",
                "Voting power of each validator of the set deciding the next block",
                Family::default(),
            ),
            bonded_power: add(
                r,
                "staking_bonded_power",
                "Voting power of the validator set deciding the next block (Proof-of-Stake)",
                Gauge::default(),
            ),
            validators: add(
                r,
                "staking_validators",
                "Validator candidates by status: bonded, unbonded, jailed, tombstoned (Proof-of-Stake)",
                Family::default(),
            ),
            missed_blocks: add(
                r,
                "staking_missed_blocks",
                "Blocks each active validator missed in the signed-blocks window (Proof-of-Stake)",
                Family::default(),
            ),
            peers: add(
                r,
                "p2p_peers",
                "Overlay peers by kind: connected, consensus (subscribed to the consensus topic), banned",
                Family::default(),
            ),
            gossip_messages: add(
                r,
                "p2p_gossip_messages",
                "Gossip messages this node published (out) and received (in), by topic",
                Family::default(),
            ),
            gossip_bytes: add(
                r,
                "p2p_gossip_bytes",
                "Payload bytes of the gossip messages this node published (out) and received (in), by topic",
                Family::default(),
            ),
            bans: add(r, "p2p_bans", "Peers banned for invalid data since start", Counter::default()),
            refused_banned: add(
                r,
                "p2p_refused_banned",
                "Connections refused since start because their peer was banned",
                Counter::default(),
            ),
            anchor_lag: add(
                r,
                "anchor_lag_records",
                "Records of this cluster's partitions certified but not yet anchored on the chain",
                Family::default(),
            ),
            anchor_age: add(
                r,
                "anchor_age_seconds",
                "Age of each partition's newest anchored checkpoint (its certification time to now)",
                Family::default(),
            ),
        }
    }

    /// Reads the chain's figures into the gauges and counters.
    pub(super) fn read(
        &self,
        chain: &ChainService,
        node: &ClusterNode,
        overlay: Option<&pyralog_p2p::Status>,
    ) {
        let progress = *chain.progress.borrow();
        self.height.set(progress.height as i64);
        catch_up(&self.alarms, progress.alarms);
        catch_up(&self.mined_seals, progress.mined);
        catch_up(&self.evidence, progress.evidence);
        catch_up(&self.synced, progress.synced);
        self.round.set(i64::from(progress.round));
        self.mempool_txs.set(progress.mempool_txs as i64);
        for (reason, total) in [("full", progress.mempool_full), ("rejected", progress.mempool_rejected)] {
            catch_up(&self.mempool_refused.get_or_create(&ReasonLabels { reason }), total);
        }
        if let Some(overlay) = overlay {
            self.read_overlay(overlay);
        }
        if let Err(err) = self.state_gauges(chain, node) {
            tracing::debug!(%err, "chain state metrics unavailable");
        }
    }

    /// The gauges read from the latest committed state: one version, and its validator set read
    /// once for the validator and the staking gauges.
    fn state_gauges(&self, chain: &ChainService, node: &ClusterNode) -> anyhow::Result<()> {
        let Some(version) = chain.state.latest_version()? else { return Ok(()) };
        let set: Vec<Validator> = read_state(&chain.state, VALIDATORS_KEY, version)?.unwrap_or_default();
        self.validator_gauges(&set);
        self.staking_gauges(chain, version, &set)?;
        self.anchor_gauges(chain, node, version)
    }

    fn read_overlay(&self, overlay: &pyralog_p2p::Status) {
        for (kind, count) in [
            ("connected", overlay.connected.len()),
            ("consensus", overlay.consensus_peers),
            ("banned", overlay.banned.len()),
        ] {
            self.peers.get_or_create(&KindLabels { kind }).set(count as i64);
        }
        for (topic, traffic) in &overlay.gossip {
            let topic = topic.name();
            for (direction, messages, bytes) in [
                ("in", traffic.messages_in, traffic.bytes_in),
                ("out", traffic.messages_out, traffic.bytes_out),
            ] {
                let labels = GossipLabels { topic, direction };
                catch_up(&self.gossip_messages.get_or_create(&labels), messages);
                catch_up(&self.gossip_bytes.get_or_create(&labels), bytes);
            }
        }
        catch_up(&self.bans, overlay.bans);
        catch_up(&self.refused_banned, overlay.refused_banned);
    }

    /// Each validator's power in the set deciding the next block.
    fn validator_gauges(&self, set: &[Validator]) {
        self.validator_power.clear();
        for member in set {
            self.validator_power
                .get_or_create(&ValidatorLabels { validator: member.key.to_string() })
                .set(member.power as i64);
        }
    }

    /// The staking gauges at state `version`, whose validator set is `set` (a chain without
    /// staking has none).
    fn staking_gauges(&self, chain: &ChainService, version: u64, set: &[Validator]) -> anyhow::Result<()> {
        let state = &chain.state;
        if read_state::<StakingParams>(state, PARAMS_KEY, version)?.is_none() {
            return Ok(());
        }
        self.bonded_power.set(set.iter().map(|v| v.power).sum::<u64>() as i64);
        let operators: Vec<PublicKey> = read_state(state, CANDIDATES_KEY, version)?.unwrap_or_default();
        let mut counts = [("bonded", 0i64), ("unbonded", 0), ("jailed", 0), ("tombstoned", 0)];
        for operator in operators {
            let Some(record): Option<ValidatorRecord> =
                read_state(state, &validator_key(&operator), version)?
            else {
                continue;
            };
            let status = record.status(set);
            if let Some(count) = counts.iter_mut().find(|(name, _)| *name == status) {
                count.1 += 1;
            }
        }
        for (status, count) in counts {
            self.validators.get_or_create(&StatusLabels { status }).set(count);
        }
        self.missed_blocks.clear();
        for member in set {
            let info: Option<SigningInfo> = read_state(state, &signing_info_key(&member.key), version)?;
            let missed = info.map_or(0, |i| i.missed);
            self.missed_blocks
                .get_or_create(&ValidatorLabels { validator: member.key.to_string() })
                .set(missed as i64);
        }
        Ok(())
    }

    /// Per partition of this node's cluster: records certified but not anchored, and the age of
    /// the anchored checkpoint.
    fn anchor_gauges(&self, chain: &ChainService, node: &ClusterNode, version: u64) -> anyhow::Result<()> {
        let cluster = node.status().cluster;
        let global = node.global_state().borrow().clone();
        let now_ms = unix_ms();
        for log in global.logs.values() {
            for p in 0..log.config.partitions {
                let labels = PartitionLabels { log: log.config.name.to_string(), partition: p };
                let key = anchor_key(&cluster, &log.config.name, p);
                let anchored: Option<Anchor> = read_state(&chain.state, &key, version)?;
                let certified = global.certified_size(log.partition_id(p));
                let anchored_size = anchored.as_ref().map_or(0, |a| a.certificate.message.size);
                self.anchor_lag.get_or_create(&labels).set(certified.saturating_sub(anchored_size) as i64);
                if let Some(anchor) = anchored {
                    let age_ms = now_ms.saturating_sub(anchor.certificate.message.time_ms);
                    self.anchor_age.get_or_create(&labels).set((age_ms / 1000) as i64);
                }
            }
        }
        Ok(())
    }

    /// Observes what a commit tells: `now` follows `last`. Only a height this node decided with
    /// its peers right after the previous one counts (a synced block has no round or latency;
    /// a skipped update hides an interval).
    pub(super) fn observe(&self, last: &Progress, now: &Progress) {
        if now.height != last.height + 1 || now.committed_ms == 0 {
            return;
        }
        if now.rounds > 0 {
            self.rounds.observe(f64::from(now.rounds));
        }
        self.commit_latency.observe(now.committed_ms.saturating_sub(now.started_ms) as f64 / 1000.0);
        if last.committed_ms > 0 {
            self.block_interval.observe(now.committed_ms.saturating_sub(last.committed_ms) as f64 / 1000.0);
        }
    }
}
