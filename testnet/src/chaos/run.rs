//! One chaos run end to end: namespaces, three real nodes, a log of 3 partitions with
//! replication factor 3, the clients and the nemesis side by side, heal, final appends, final
//! reads of every replica, and the check. Its directory keeps `history.jsonl`, `nemesis.jsonl`,
//! `final.json`, `report.json` and the nodes' logs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use super::checker::{self, Report};
use super::delay::DelayRelay;
use super::final_read;
use super::kafka;
use super::nemesis::{Applied, FaultKind, Planned, schedule};
use super::net::{self, Topology, node_ip};
use super::nodes::{self, Nodes, RAFT_PORT, Spare};
use super::stats::{self, Stats};
use super::workload::{self, Clients, Recorder, Workload};
use super::{Op, OpFn, OpKind};

/// Nodes in the cluster (the log's replicas).
const NODES: usize = 3;
/// The spare node `member-churn` adds and removes, in the namespace after theirs.
const SPARE: usize = NODES;
/// The log's partitions (each replicated on all three nodes).
const PARTITIONS: u32 = 3;
/// The log the clients write.
const LOG: &str = "chaos";
/// Clients appending over Kafka's protocol (librdkafka idempotent producers), beside the
/// JSON-RPC ones; one more reads over it (a librdkafka consumer).
const KAFKA_CLIENTS: u32 = 2;
/// How long the nodes get to start, elect and agree on the members.
const STARTUP: Duration = Duration::from_secs(120);

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The `pyralog` binary.
    pub bin: PathBuf,
    /// The run's directory.
    pub out: PathBuf,
    /// The seed of the schedule and of the clients' choices.
    pub seed: u64,
    /// How long the workload runs.
    pub seconds: u64,
    /// The faults the schedule draws from.
    pub kinds: Vec<FaultKind>,
    /// Client processes.
    pub clients: u32,
    /// WireGuard tunnels between the nodes (else plain TCP).
    pub wireguard: bool,
}

/// What a run found and measured (`report.json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// `tcp` or `wireguard`.
    pub transport: &'static str,
    /// The planned faults.
    pub schedule: Vec<Planned>,
    /// Fault kinds left out here, with the reason.
    pub skipped: Vec<String>,
    /// Nodes that exited by themselves (a crash is a finding).
    pub crashes: u64,
    /// Whether the replicas converged after healing.
    pub converged: bool,
    /// The checker's counts.
    pub check: Report,
    /// Availability, failover and recovery.
    pub stats: Stats,
}

impl RunReport {
    /// Whether the run found nothing wrong (replicas that never converged count as wrong).
    pub fn passed(&self) -> bool {
        self.check.violations.none() && self.crashes == 0 && self.converged
    }
}

/// Runs one schedule (root only: the caller checks [`super::net::unavailable`] first).
pub fn run(config: &RunConfig) -> anyhow::Result<RunReport> {
    std::fs::create_dir_all(&config.out)?;
    let mut skipped = Vec::new();
    let kinds: Vec<FaultKind> = config
        .kinds
        .iter()
        .copied()
        .filter(|kind| match (kind, nodes::faketime()) {
            (FaultKind::ClockSkew, Err(reason)) => {
                skipped.push(format!("clock-skew: {reason}"));
                false
            }
            (FaultKind::Latency, _) => match net::latency_unavailable() {
                Some(reason) => {
                    skipped.push(format!("latency: {reason}"));
                    false
                }
                None => true,
            },
            _ => true,
        })
        .collect();
    for reason in &skipped {
        eprintln!("pyralog-chaos: skipping {reason}");
    }
    // A spare node for `member-churn`.
    let count = NODES + 1;
    let topology = Topology::create(count)?;
    let mut nodes =
        Nodes::generate(&config.bin, &config.out.join("nodes"), &topology, count, config.wireguard)?;
    let spare = Some(nodes.make_spare(SPARE)?);
    let runtime = topology.client_runtime()?;
    let schedule = schedule(config.seed, &kinds, config.seconds);
    let outcome = runtime.block_on(drive(config, &schedule, &topology, &mut nodes, spare));
    drop(runtime);
    let (crashes, converged, check, stats) = outcome?;
    let report = RunReport {
        seed: config.seed,
        transport: if config.wireguard { "wireguard" } else { "tcp" },
        schedule,
        skipped,
        crashes,
        converged,
        check,
        stats,
    };
    std::fs::write(config.out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}

/// How a fault is undone.
enum Heal {
    Restart(Vec<usize>),
    /// The spare leaves the cluster again.
    Leave(usize),
    /// Turn the failpoint off, and restart the node when it failed storage (fail-stop).
    Failpoint {
        node: usize,
        name: &'static str,
        restart: bool,
    },
    Resume(usize),
    Network,
    /// Remove the redirects, move the flows back, stop the relay.
    Delay(DelayRelay),
    Clock(usize),
}

async fn drive(
    config: &RunConfig,
    planned: &[Planned],
    topology: &Topology,
    nodes: &mut Nodes,
    spare: Option<Spare>,
) -> anyhow::Result<(u64, bool, Report, Stats)> {
    for i in 0..NODES {
        nodes.start(i)?;
    }
    if spare.is_some() {
        nodes.start(SPARE)?;
    }
    let clients = Arc::new(Clients::new(NODES)?);
    wait_ready(&clients, nodes, NODES).await?;
    create_log(&clients).await?;

    let recorder = Arc::new(Recorder::create(&config.out.join("history.jsonl"))?);
    let start = Instant::now();
    let workload = Arc::new(Workload {
        log: LOG.into(),
        partitions: PARTITIONS,
        deadline: start + Duration::from_secs(config.seconds),
        seed: config.seed,
    });
    let tasks: Vec<_> = (0..config.clients)
        .map(|process| {
            let (clients, recorder, workload) = (clients.clone(), recorder.clone(), workload.clone());
            tokio::spawn(async move { workload::client(process, &clients, &recorder, &workload).await })
        })
        .collect();
    // Kafka clients after the JSON-RPC ones and the final appends' process (`config.clients`).
    let kafka_tasks: Vec<_> = (0..KAFKA_CLIENTS)
        .map(|k| {
            let (recorder, workload) = (recorder.clone(), workload.clone());
            let process = config.clients + 1 + k;
            tokio::spawn(async move { kafka::client(process, NODES, &recorder, &workload).await })
        })
        .chain(std::iter::once({
            let (recorder, workload) = (recorder.clone(), workload.clone());
            let process = config.clients + 1 + KAFKA_CLIENTS;
            tokio::spawn(async move { kafka::consumer(process, NODES, &recorder, &workload).await })
        }))
        .collect();

    // Every distinct certified checkpoint any node serves while the faults go on: each must be
    // a prefix of the final log (a certified prefix that was later rewritten would show here).
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (clients, watching) = (clients.clone(), watching.clone());
        tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            let mut observed = Vec::new();
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                for (partition, node, certified) in final_read::certificates(&clients, LOG, PARTITIONS).await
                {
                    if seen.insert((partition, certified.size, certified.root.clone())) {
                        observed.push((partition, node, certified));
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            observed
        })
    };
    let clock = || recorder.now_ms();
    let targets = Targets { topology, nodes: &mut *nodes, clients: &clients, spare: spare.as_ref() };
    let (applied, mut crashes) =
        play(planned, start, &clock, &config.out.join("nemesis.jsonl"), targets).await?;
    let healed_at_ms = applied.last().map_or(0, |fault| fault.end_ms);
    let workload_end_ms = recorder.now_ms().max(config.seconds * 1_000);
    for task in tasks {
        task.await.context("a client task failed")?;
    }
    for task in kafka_tasks {
        task.await.context("a Kafka client task failed")?.context("a Kafka client")?;
    }
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let observed = watcher.await.context("the checkpoint watcher failed")?;
    crashes += restart_crashed(nodes)?;
    final_appends(&clients, &recorder, config.clients).await;
    let converged = final_read::converge(&clients, LOG, PARTITIONS).await;
    let final_state = final_read::read(&clients, LOG, PARTITIONS, healed_at_ms, &observed).await?;
    std::fs::write(config.out.join("final.json"), serde_json::to_vec(&final_state)?)?;
    let history = recorder.ops();
    Ok((
        crashes,
        converged,
        checker::check(&history, &final_state),
        stats::measure(&history, &applied, workload_end_ms),
    ))
}

/// What the nemesis acts on: the namespaces, the processes, the clients of the nodes faults go to
/// (the first `clients.len()` nodes), and the spare node `member-churn` adds (its raft address
/// and key), if any.
pub(super) struct Targets<'a> {
    pub(super) topology: &'a Topology,
    pub(super) nodes: &'a mut Nodes,
    pub(super) clients: &'a Clients,
    pub(super) spare: Option<&'a Spare>,
}

/// Applies each of `planned` at its time after `start` (`clock`: ms on the history's clock),
/// heals it after its duration, logs it to `log_path` and restarts nodes that crashed; returns
/// the faults as applied and how many nodes crashed.
pub(super) async fn play(
    planned: &[Planned],
    start: Instant,
    clock: &dyn Fn() -> u64,
    log_path: &std::path::Path,
    targets: Targets<'_>,
) -> anyhow::Result<(Vec<Applied>, u64)> {
    let Targets { topology, nodes, clients, spare } = targets;
    let mut log = std::fs::File::create(log_path)?;
    let mut applied = Vec::new();
    let mut crashes = 0;
    for fault in planned {
        tokio::time::sleep_until((start + Duration::from_millis(fault.at_ms)).into()).await;
        let start_ms = clock();
        let targets = Targets { topology, nodes: &mut *nodes, clients, spare };
        let (hit, partition, detail, heal) = apply(fault, targets).await?;
        tokio::time::sleep(Duration::from_millis(fault.duration_ms)).await;
        match heal {
            Heal::Restart(which) => which.into_iter().try_for_each(|i| nodes.start(i))?,
            Heal::Resume(i) => nodes.pause(i, false),
            Heal::Network => topology.heal()?,
            Heal::Delay(relay) => {
                topology.remove_redirects()?;
                topology.reset_flows()?;
                drop(relay);
            }
            Heal::Clock(i) => nodes.skew(i, 0)?,
            Heal::Leave(id) => leave(clients, id).await,
            Heal::Failpoint { node, name, restart } => {
                let off = json!({ "name": name, "actions": "off" });
                // A node that did not take the "off" is restarted too (failpoints live in the
                // process).
                if restart || clients.call(node, "debug_setFailpoint", off).await.is_err() {
                    nodes.kill(node);
                    nodes.start(node)?;
                }
            }
        }
        let done = Applied { kind: fault.kind, start_ms, end_ms: clock(), nodes: hit, partition, detail };
        writeln!(log, "{}", serde_json::to_string(&done)?)?;
        applied.push(done);
        crashes += restart_crashed(nodes)?;
    }
    Ok((applied, crashes))
}

/// Removes member `id` (the spare) through whichever node leads the global group, until it is
/// gone (its earlier removal may have been done without the answer arriving), for up to 30 s.
async fn leave(clients: &Clients, id: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(leader) = global_leader(clients).await {
            let removed = clients.call(leader, "admin_removeMember", json!({ "id": id })).await;
            let status = clients.call(leader, "system_status", json!({})).await.unwrap_or(Value::Null);
            let member = status["members"].as_array().into_iter().flatten().any(|m| m["id"] == id);
            if removed.is_ok() || (status.is_object() && !member) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("pyralog-chaos: member {id} could not be removed within 30 s");
}

/// Calls `method` on `node` until it succeeds, for up to 10 s (a node may still be starting
/// after the previous fault's heal).
async fn call_soon(
    clients: &Clients,
    node: usize,
    method: &str,
    params: Value,
) -> Result<Value, workload::CallError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match clients.call(node, method, params.clone()).await {
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(300)).await,
            answer => return answer,
        }
    }
}

/// Restarts nodes that exited by themselves; how many did.
pub(super) fn restart_crashed(nodes: &mut Nodes) -> anyhow::Result<u64> {
    let mut crashed = 0;
    for i in 0..nodes.len() {
        if let Some(status) = nodes.exited(i) {
            eprintln!("pyralog-chaos: node {i} exited by itself ({status}); restarting it");
            crashed += 1;
            nodes.kill(i);
            nodes.start(i)?;
        }
    }
    Ok(crashed)
}

/// Applies `fault`: what it hit, the partition whose leader it went for, what it did, and how to
/// undo it.
async fn apply(
    fault: &Planned,
    targets: Targets<'_>,
) -> anyhow::Result<(Vec<usize>, Option<u32>, String, Heal)> {
    let Targets { topology, nodes, clients, spare } = targets;
    // Faults go to the nodes the clients talk to (not the spare).
    let n = clients.len();
    let partition = (fault.pick % u64::from(PARTITIONS)) as u32;
    let pick = (fault.pick >> 8) as usize;
    // Leaders first; when no node knows one, any node (and no failover time is measured).
    let known = leader_of(clients, nodes, partition).await;
    let leader = known.unwrap_or(pick % n);
    let partition = known.map(|_| partition);
    let others = |node: usize| (0..n).filter(move |&j| j != node);
    let all: Vec<usize> = (0..n).collect();
    Ok(match fault.kind {
        FaultKind::KillOne => {
            nodes.kill(leader);
            (vec![leader], partition, format!("SIGKILL node {leader}"), Heal::Restart(vec![leader]))
        }
        FaultKind::KillAll => {
            all.iter().for_each(|&i| nodes.kill(i));
            (all.clone(), None, "SIGKILL every node".into(), Heal::Restart(all))
        }
        FaultKind::PauseLeader => {
            nodes.pause(leader, true);
            (vec![leader], partition, format!("SIGSTOP node {leader}"), Heal::Resume(leader))
        }
        FaultKind::PartitionMinority | FaultKind::PartitionLeader => {
            let cut = if fault.kind == FaultKind::PartitionLeader { leader } else { pick % n };
            for j in others(cut) {
                topology.block(cut, j)?;
                topology.block(j, cut)?;
            }
            let target = partition.filter(|_| fault.kind == FaultKind::PartitionLeader);
            (vec![cut], target, format!("node {cut} cut off both ways"), Heal::Network)
        }
        FaultKind::PartitionHalves => {
            let half: Vec<usize> = (0..n).filter(|&i| (i + pick) % n < n / 2).collect();
            for &a in &half {
                for b in (0..n).filter(|b| !half.contains(b)) {
                    topology.block(a, b)?;
                    topology.block(b, a)?;
                }
            }
            (half.clone(), None, format!("nodes {half:?} apart from the rest"), Heal::Network)
        }
        FaultKind::PartitionOneWay => {
            for j in others(leader) {
                topology.block(j, leader)?;
            }
            (vec![leader], partition, format!("node {leader} hears no one"), Heal::Network)
        }
        FaultKind::PartitionBridge => {
            // The others in two halves that cannot reach each other; the bridge reaches all.
            let bridge = pick % n;
            let rest: Vec<usize> = others(bridge).collect();
            let (left, right) = rest.split_at(rest.len() / 2);
            for &a in left {
                for &b in right {
                    topology.block(a, b)?;
                    topology.block(b, a)?;
                }
            }
            let detail = format!("nodes {left:?} and {right:?} apart, {bridge} reaches both");
            (rest.clone(), None, detail, Heal::Network)
        }
        FaultKind::Loss => {
            let percent = 20 + (pick % 21) as u32;
            topology.lose(percent)?;
            (all, None, format!("{percent}% of packets between nodes dropped"), Heal::Network)
        }
        FaultKind::Latency => {
            let delay_ms = 20 + (pick % 231) as u64;
            let slowed: Vec<usize> = if pick % 3 == 0 { all.clone() } else { vec![pick % n] };
            let targets: Vec<SocketAddr> =
                (0..n).map(|j| SocketAddr::from((node_ip(j), RAFT_PORT))).collect();
            let relay = DelayRelay::start(&targets, Duration::from_millis(delay_ms)).await?;
            for a in 0..n {
                for b in others(a).filter(|b| slowed.contains(&a) || slowed.contains(b)) {
                    topology.redirect(a, b, RAFT_PORT)?;
                }
            }
            topology.reset_flows()?;
            let detail = format!("{delay_ms} ms each way on the links of nodes {slowed:?}");
            (slowed, None, detail, Heal::Delay(relay))
        }
        FaultKind::MemberChurn => {
            let Some(spare) = spare else {
                return Ok((Vec::new(), None, "skipped: no spare node".into(), Heal::Network));
            };
            let Some(leader) = global_leader(clients).await else {
                return Ok((Vec::new(), None, "skipped: no global leader".into(), Heal::Network));
            };
            // With tunnels, every member makes the spare a tunnel peer first (as `wg set` on
            // each host); it stays one after it leaves, and adding it again changes nothing.
            if let Some((wireguard, rosenpass)) = &spare.tunnel {
                let peer = json!({
                    "wireguardPublicKey": wireguard, "endpoint": spare.raft_addr,
                    "rosenpassPublicKey": rosenpass,
                });
                for node in 0..n {
                    if let Err(err) = call_soon(clients, node, "admin_addTunnelPeer", peer.clone()).await {
                        let detail = format!("skipped: admin_addTunnelPeer at node {node}: {err}");
                        return Ok((Vec::new(), None, detail, Heal::Network));
                    }
                }
            }
            let joiner = json!({ "id": SPARE, "raftAddr": spare.raft_addr, "publicKey": spare.public_key });
            if let Err(err) = call_soon(clients, leader, "admin_addMember", joiner).await {
                // It may have joined without the answer arriving: it leaves at heal either way.
                return Ok((
                    Vec::new(),
                    None,
                    format!("skipped: admin_addMember: {err}"),
                    Heal::Leave(SPARE),
                ));
            }
            (vec![SPARE], None, format!("node {SPARE} added by node {leader}"), Heal::Leave(SPARE))
        }
        FaultKind::DiskFault => {
            let (name, actions, restart) = match pick % 4 {
                0 => ("wal-fsync", "return", true),
                1 => ("wal-fsync", "sleep(1500)", false),
                2 => ("raft-log-append", "return", true),
                _ => ("snapshot-install", "return", true),
            };
            let set = json!({ "name": name, "actions": actions });
            match call_soon(clients, leader, "debug_setFailpoint", set).await {
                Ok(_) => {}
                Err(workload::CallError::Refused { code: 1033, .. }) => {
                    bail!(
                        "{} has no failpoints: build it with `make build` (test builds)",
                        nodes.bin().display()
                    )
                }
                Err(err) => {
                    let detail = format!("skipped: debug_setFailpoint at node {leader}: {err}");
                    return Ok((Vec::new(), None, detail, Heal::Network));
                }
            }
            let detail = format!("failpoint {name}={actions} at node {leader}");
            (vec![leader], partition, detail, Heal::Failpoint { node: leader, name, restart })
        }
        FaultKind::ClockSkew => {
            let node = pick % n;
            let seconds = 5 + ((pick / n) % 56) as i64;
            let offset = if (pick / 64) % 2 == 0 { seconds } else { -seconds };
            nodes.skew(node, offset * 1_000)?;
            (vec![node], None, format!("node {node}'s wall clock {offset:+} s"), Heal::Clock(node))
        }
    })
}

/// The global group's leader, as the first node that answers knows it.
async fn global_leader(clients: &Clients) -> Option<usize> {
    for i in 0..clients.len() {
        let Ok(health) = clients.call(i, "system_health", json!({})).await else { continue };
        if let Some(leader) = health["globalLeader"].as_u64().filter(|&l| (l as usize) < clients.len()) {
            return Some(leader as usize);
        }
    }
    None
}

/// The node leading `partition`, as the first running node that knows says.
async fn leader_of(clients: &Clients, nodes: &Nodes, partition: u32) -> Option<usize> {
    let n = clients.len();
    for i in (0..n).filter(|&i| nodes.running(i)) {
        let partitions = clients.partitions(i, LOG).await;
        let leader =
            partitions.iter().find(|p| p["partition"] == partition).and_then(|p| p["leader"].as_u64());
        if let Some(leader) = leader.filter(|&l| (l as usize) < n) {
            return Some(leader as usize);
        }
    }
    None
}

/// Waits until every node answers, knows a global leader and its cluster's `members`.
pub(super) async fn wait_ready(clients: &Clients, nodes: &mut Nodes, members: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + STARTUP;
    for i in 0..clients.len() {
        loop {
            let health = clients.call(i, "system_health", json!({})).await.unwrap_or(Value::Null);
            if health["ok"] == true && health["members"] == members {
                break;
            }
            if let Some(status) = nodes.exited(i) {
                bail!("node {i} exited at start ({status}); see its log");
            }
            if Instant::now() > deadline {
                bail!("node {i} not ready after {STARTUP:?}: {health}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Creates the log and waits until each partition has a leader.
async fn create_log(clients: &Clients) -> anyhow::Result<()> {
    let deadline = Instant::now() + STARTUP;
    let settings = json!({ "name": LOG, "partitions": PARTITIONS, "replicationFactor": NODES });
    while let Err(err) = clients.call(0, "log_create", settings.clone()).await {
        if Instant::now() > deadline {
            bail!("log_create: {err:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    while final_read::leaders(clients, LOG).await < PARTITIONS as usize {
        if Instant::now() > deadline {
            bail!("the log's partitions have no leaders after {STARTUP:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// After healing, one append per partition that must succeed (the checker's recovery deadline
/// counts from the last heal): each attempt is an operation of its own, by the process after the
/// clients'.
async fn final_appends(clients: &Clients, recorder: &Recorder, process: u32) {
    let give_up = Instant::now() + Duration::from_secs(60);
    for partition in 0..PARTITIONS {
        let mut node = 0;
        for attempt in 0.. {
            let value = format!("final-{partition}-{attempt}");
            let op = |kind| Op {
                value: Some(value.clone()),
                ..Op::new(process, kind, OpFn::Append, node, partition)
            };
            recorder.record(op(OpKind::Invoke));
            let params = json!({ "log": LOG, "partition": partition,
                "records": [{ "value": pyralog_light::wire::to_hex(value.as_bytes()) }] });
            match clients.call(node, "log_append", params).await {
                Ok(receipts) => {
                    recorder.record(Op { offset: receipts[0]["offset"].as_u64(), ..op(OpKind::Ok) });
                    break;
                }
                Err(err) => recorder.record(Op {
                    error: Some(err.to_string()),
                    ..op(if err.definite() { OpKind::Fail } else { OpKind::Info })
                }),
            }
            if Instant::now() > give_up {
                break;
            }
            node = (node + 1) % NODES;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
