//! The chain under faults: the 2 x 3 validator testnet (two clusters of three nodes, every node
//! a validator of power 1) in network namespaces, with partitions, pauses and restarts from the
//! seeded nemesis, while an observer polls every node's finalized head. Checked: no two nodes
//! finalize different blocks at a height (every height, compared block by block after the run),
//! no node's finalized height ever goes down, and finality resumes on every node after the
//! last heal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::nemesis::{Applied, FaultKind, Planned, schedule};
use super::net::Topology;
use super::nodes::Nodes;
use super::run::{Targets, play, restart_crashed, wait_ready};
use super::workload::Clients;

/// Nodes per cluster and clusters.
const PER_CLUSTER: usize = 3;
const CLUSTERS: usize = 2;
/// How long finality gets to resume after the last heal.
const RESUME: Duration = Duration::from_secs(60);
/// The faults the chain runs draw from by default: cuts and pauses (restarts too).
pub const CHAIN_FAULTS: [FaultKind; 6] = [
    FaultKind::PartitionMinority,
    FaultKind::PartitionHalves,
    FaultKind::PartitionBridge,
    FaultKind::PauseLeader,
    FaultKind::KillOne,
    FaultKind::Loss,
];

/// What to run.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// The `pyralog` binary.
    pub bin: PathBuf,
    /// The run's directory.
    pub out: PathBuf,
    /// The seed of the schedule.
    pub seed: u64,
    /// How long the faults go on.
    pub seconds: u64,
    /// The faults the schedule draws from.
    pub kinds: Vec<FaultKind>,
}

/// Counters that must be 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainViolations {
    /// Heights at which two nodes finalized different blocks.
    pub conflicting_blocks: u64,
    /// Times a node's finalized height was lower than it had been.
    pub height_regressions: u64,
    /// Nodes whose finality did not advance within a minute of the last heal.
    pub no_resume: u64,
}

/// What a chain run found (`report.json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainReport {
    /// The seed.
    pub seed: u64,
    /// The faults as applied.
    pub faults: Vec<Applied>,
    /// Nodes that exited by themselves.
    pub crashes: u64,
    /// The violations.
    pub violations: ChainViolations,
    /// The finalized height every node reached (each height up to it compared block by block
    /// on every node).
    pub final_height: u64,
    /// From the last heal to every node finalizing a new block, ms.
    pub resume_ms: Option<u64>,
}

impl ChainReport {
    /// Whether the run found nothing wrong.
    pub fn passed(&self) -> bool {
        self.violations == ChainViolations::default() && self.crashes == 0
    }
}

/// Runs one chain schedule (root only).
pub fn run(config: &ChainConfig) -> anyhow::Result<ChainReport> {
    std::fs::create_dir_all(&config.out)?;
    let count = PER_CLUSTER * CLUSTERS;
    let topology = Topology::create(count)?;
    let mut nodes =
        Nodes::generate_chain(&config.bin, &config.out.join("nodes"), &topology, PER_CLUSTER, CLUSTERS)?;
    let runtime = topology.client_runtime()?;
    let planned = schedule(config.seed, &config.kinds, config.seconds);
    let report = runtime.block_on(drive(config, &planned, &topology, &mut nodes));
    drop(runtime);
    let report = report?;
    std::fs::write(config.out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}

/// A node's finalized head: (height, block id).
async fn head(clients: &Clients, node: usize) -> Option<(u64, String)> {
    let head = clients.call(node, "chain_getFinalizedHead", json!({})).await.ok()?;
    Some((head["height"].as_u64()?, head["header"]["blockId"].as_str()?.to_owned()))
}

async fn drive(
    config: &ChainConfig,
    planned: &[Planned],
    topology: &Topology,
    nodes: &mut Nodes,
) -> anyhow::Result<ChainReport> {
    let count = nodes.len();
    for i in 0..count {
        nodes.start(i)?;
    }
    let clients = Arc::new(Clients::new(count)?);
    wait_ready(&clients, nodes, PER_CLUSTER).await?;
    let start = Instant::now();
    // Every node finalizes something before the faults begin.
    for i in 0..count {
        while head(&clients, i).await.is_none_or(|(height, _)| height < 2) {
            anyhow::ensure!(start.elapsed() < RESUME, "node {i} finalized nothing in {RESUME:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let observer = {
        let (clients, stop) = (clients.clone(), stop.clone());
        tokio::spawn(async move {
            let mut regressions = 0;
            let mut highest = vec![0u64; clients.len()];
            let mut seen: BTreeMap<u64, String> = BTreeMap::new();
            let mut conflicts = 0;
            while !stop.load(Ordering::Relaxed) {
                for (node, highest) in highest.iter_mut().enumerate() {
                    let Some((height, block)) = head(&clients, node).await else { continue };
                    regressions += u64::from(height < *highest);
                    *highest = (*highest).max(height);
                    let known = seen.entry(height).or_insert_with(|| block.clone());
                    conflicts += u64::from(*known != block);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (regressions, conflicts)
        })
    };
    let clock = || start.elapsed().as_millis() as u64;
    let targets = Targets { topology, nodes: &mut *nodes, clients: &clients, spare: None };
    let (faults, mut crashes) =
        play(planned, start, &clock, &config.out.join("nemesis.jsonl"), targets).await?;

    // Finality resumes: every node finalizes a block above the highest any had at the heal.
    let healed = Instant::now();
    let mut at_heal = 0;
    for i in 0..count {
        at_heal = at_heal.max(head(&clients, i).await.map_or(0, |(h, _)| h));
    }
    let mut resumed = vec![false; count];
    while !resumed.iter().all(|r| *r) && healed.elapsed() < RESUME {
        for (i, done) in resumed.iter_mut().enumerate() {
            *done = *done || head(&clients, i).await.is_some_and(|(h, _)| h > at_heal);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resume_ms = resumed.iter().all(|r| *r).then(|| healed.elapsed().as_millis() as u64);
    stop.store(true, Ordering::Relaxed);
    let (height_regressions, observed_conflicts) = observer.await?;
    crashes += restart_crashed(nodes)?;

    // Every height up to the lowest head, block by block on every node (each node gets up to a
    // minute to answer: one may just have been restarted).
    let mut heads = Vec::new();
    for i in 0..count {
        let deadline = Instant::now() + RESUME;
        loop {
            match head(&clients, i).await {
                Some((height, _)) => break heads.push(height),
                None if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                None => anyhow::bail!("node {i} does not answer chain_getFinalizedHead after the run"),
            }
        }
    }
    let final_height = heads.iter().copied().min().unwrap_or(0);
    let mut conflicting = 0;
    for height in 1..=final_height {
        let mut ids = Vec::new();
        for i in 0..count {
            let header = clients.call(i, "chain_getHeader", json!({ "height": height })).await;
            match header.ok().and_then(|h| h["blockId"].as_str().map(str::to_owned)) {
                Some(id) => ids.push(id),
                None => anyhow::bail!("node {i} does not serve the finalized header at {height}"),
            }
        }
        ids.sort();
        ids.dedup();
        conflicting += u64::from(ids.len() > 1);
    }
    Ok(ChainReport {
        seed: config.seed,
        faults,
        crashes,
        violations: ChainViolations {
            conflicting_blocks: conflicting.max(observed_conflicts),
            height_regressions,
            no_resume: resumed.iter().filter(|r| !**r).count() as u64,
        },
        final_height,
        resume_ms,
    })
}
