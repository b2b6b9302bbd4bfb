//! Prometheus metrics on their own port (`GET /metrics`, text exposition format).
//!
//! RPC request counts and latencies are recorded as requests run; Raft, partition and WAL
//! figures are read from the engine at scrape time, so they are never stale; so are the chain's
//! height and, on a Proof-of-Stake chain, bonded power, validators by status and missed blocks
//! (once the chain has started, [`watch_chain`]).

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Instant;

use crate::service::chain::ChainService;
use crate::service::links::ClusterNode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
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
use pyralog_chain::values::VALIDATORS_KEY;
use pyralog_consensus::Validator;
use pyralog_crypto::PublicKey;
use pyralog_p2p::tunnel::Tunnel;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    log: String,
    partition: u32,
}

/// Every metric the node exports.
struct Metrics {
    registry: Registry,
    requests: Family<MethodLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    raft_term: Family<GroupLabels, Gauge>,
    raft_last_log_index: Family<GroupLabels, Gauge>,
    raft_commit_index: Family<GroupLabels, Gauge>,
    raft_applied_index: Family<GroupLabels, Gauge>,
    raft_apply_lag: Family<GroupLabels, Gauge>,
    partition_records: Family<PartitionLabels, Gauge>,
    partition_certified: Family<PartitionLabels, Gauge>,
    wal_fsyncs: Gauge,
    wal_synced_appends: Gauge,
    written_bytes: Family<KindLabels, Gauge>,
    tunnel: Family<KindLabels, Gauge>,
    log_contracts: Family<LogContractLabels, Gauge>,
    chain_height: Gauge,
    chain_alarms: Gauge,
    mined_seals: Gauge,
    chain_evidence: Gauge,
    chain_synced: Gauge,
    p2p_peers: Family<KindLabels, Gauge>,
    validator_power: Family<ValidatorLabels, Gauge>,
    bonded_power: Gauge,
    validators: Family<StatusLabels, Gauge>,
    missed_blocks: Family<ValidatorLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogContractLabels {
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ValidatorLabels {
    validator: String,
}

/// The chain the metrics read from, once it has started.
static CHAIN: OnceLock<Arc<ChainService>> = OnceLock::new();

/// Lets the metrics read the chain's height and staking state at scrape time.
pub(crate) fn watch_chain(chain: Arc<ChainService>) {
    let _ = CHAIN.set(chain);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("pyralog");
    let requests = Family::<MethodLabels, Counter>::default();
    registry.register("rpc_requests", "JSON-RPC requests by method and outcome", requests.clone());
    let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
        Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
    });
    registry.register("rpc_request_seconds", "JSON-RPC request latency", latency.clone());
    let gauge = |registry: &mut Registry, name: &str, help: &str| {
        let family = Family::<GroupLabels, Gauge>::default();
        registry.register(name, help, family.clone());
        family
    };
    let raft_term = gauge(&mut registry, "raft_term", "Raft term per group");
    let raft_last_log_index = gauge(&mut registry, "raft_last_log_index", "Last Raft log index per group");
    let raft_commit_index = gauge(
        &mut registry,
        "raft_commit_index",
        "Last committed Raft index per group (0 until a commit since start)",
    );
    let raft_applied_index = gauge(&mut registry, "raft_applied_index", "Last applied Raft index per group");
    let raft_apply_lag = gauge(&mut registry, "raft_apply_lag", "Log entries not yet applied per group");
    let partition_records = Family::<PartitionLabels, Gauge>::default();
    registry.register(
        "partition_records",
        "Records applied per partition replica",
        partition_records.clone(),
    );
    let partition_certified = Family::<PartitionLabels, Gauge>::default();
    registry.register(
        "partition_certified_records",
        "Size of the latest certified checkpoint",
        partition_certified.clone(),
    );
    let wal_fsyncs = Gauge::default();
    registry.register("wal_fsyncs", "WAL fsyncs by the shared syncer since start", wal_fsyncs.clone());
    let wal_synced_appends = Gauge::default();
    registry.register(
        "wal_synced_appends",
        "Raft appends those fsyncs covered since start",
        wal_synced_appends.clone(),
    );
    let written_bytes = Family::<KindLabels, Gauge>::default();
    registry.register(
        "storage_written_bytes",
        "Bytes written by RocksDB since start: user (keys and values), wal, flush, compaction",
        written_bytes.clone(),
    );
    let tunnel = Family::<KindLabels, Gauge>::default();
    registry.register(
        "tunnel_events",
        "Cluster tunnel counters since start: handshakes, psk_rotations, rosenpass_exchanges, \
         rosenpass_stale, tx_bytes, rx_bytes, and dropped_* datagrams by reason",
        tunnel.clone(),
    );
    let log_contracts = Family::<LogContractLabels, Gauge>::default();
    registry.register(
        "log_contract_events",
        "Log contract calls since start, by kind (constraint, trigger, acl): calls, refused, failed \
         (traps and limits), and the fuel completed calls burnt",
        log_contracts.clone(),
    );
    let chain_height = Gauge::default();
    registry.register("chain_finalized_height", "The chain's highest finalized block", chain_height.clone());
    let chain_alarms = Gauge::default();
    registry.register(
        "chain_consensus_alarms",
        "Alarms the consensus engine raised since start (Proof-of-Work: a heavier chain forking below a final block, refused)",
        chain_alarms.clone(),
    );
    let mined_seals = Gauge::default();
    registry.register(
        "chain_mined_seals",
        "Seals this node's miner found since start (Proof-of-Work)",
        mined_seals.clone(),
    );
    let chain_evidence = Gauge::default();
    registry.register(
        "chain_evidence",
        "Equivocations (double signs) this node's driver proved since start",
        chain_evidence.clone(),
    );
    let chain_synced = Gauge::default();
    registry.register(
        "chain_synced_blocks",
        "Blocks this node applied through block sync (not decided with its peers) since start",
        chain_synced.clone(),
    );
    let p2p_peers = Family::<KindLabels, Gauge>::default();
    registry.register(
        "p2p_peers",
        "Overlay peers by kind: connected, consensus (subscribed to the consensus topic), banned",
        p2p_peers.clone(),
    );
    let validator_power = Family::<ValidatorLabels, Gauge>::default();
    registry.register(
        "chain_validator_power",
        "Voting power of each validator of the set deciding the next block",
        validator_power.clone(),
    );
    let bonded_power = Gauge::default();
    registry.register(
        "staking_bonded_power",
        "Voting power of the validator set deciding the next block (Proof-of-Stake)",
        bonded_power.clone(),
    );
    let validators = Family::<StatusLabels, Gauge>::default();
    registry.register(
        "staking_validators",
        "Validator candidates by status: bonded, unbonded, jailed, tombstoned (Proof-of-Stake)",
        validators.clone(),
    );
    let missed_blocks = Family::<ValidatorLabels, Gauge>::default();
    registry.register(
        "staking_missed_blocks",
        "Blocks each active validator missed in the signed-blocks window (Proof-of-Stake)",
        missed_blocks.clone(),
    );
    Metrics {
        registry,
        chain_height,
        chain_alarms,
        mined_seals,
        chain_evidence,
        chain_synced,
        p2p_peers,
        validator_power,
        bonded_power,
        validators,
        missed_blocks,
        written_bytes,
        tunnel,
        log_contracts,
        requests,
        latency,
        raft_term,
        raft_last_log_index,
        raft_commit_index,
        raft_applied_index,
        raft_apply_lag,
        partition_records,
        partition_certified,
        wal_fsyncs,
        wal_synced_appends,
    }
});

/// Times one RPC request; call [`RequestTimer::done`] with its outcome.
pub(crate) struct RequestTimer {
    method: &'static str,
    started: Instant,
}

impl RequestTimer {
    /// Starts timing `method`.
    pub(crate) fn start(method: &'static str) -> Self {
        RequestTimer { method, started: Instant::now() }
    }

    /// Records the request.
    pub(crate) fn done(self, ok: bool) {
        let labels =
            MethodLabels { method: self.method.to_owned(), outcome: if ok { "ok" } else { "error" } };
        METRICS.requests.get_or_create(&labels).inc();
        METRICS.latency.get_or_create(&labels).observe(self.started.elapsed().as_secs_f64());
    }
}

fn set(family: &Family<GroupLabels, Gauge>, group: &str, value: u64) {
    family.get_or_create(&GroupLabels { group: group.to_owned() }).set(value as i64);
}

/// Reads the engine's figures into the gauges and renders everything.
fn render(node: &ClusterNode, tunnel: Option<&Tunnel>, overlay: Option<&pyralog_p2p::Status>) -> String {
    let m = &*METRICS;
    if let Some(overlay) = overlay {
        for (kind, count) in [
            ("connected", overlay.connected.len()),
            ("consensus", overlay.consensus_peers),
            ("banned", overlay.banned.len()),
        ] {
            m.p2p_peers.get_or_create(&KindLabels { kind }).set(count as i64);
        }
    }
    if let Some(tunnel) = tunnel {
        for (kind, value) in tunnel.stats().by_kind() {
            m.tunnel.get_or_create(&KindLabels { kind }).set(value as i64);
        }
    }
    let mut groups = vec![("global".to_owned(), node.global_raft_metrics(), node.global_commit_index())];
    let global = node.global_state().borrow().clone();
    for log in global.logs.values() {
        for p in 0..log.config.partitions {
            let id = log.partition_id(p);
            let Some(replica) = node.replica(id) else { continue };
            let labels = PartitionLabels { log: log.config.name.to_string(), partition: p };
            m.partition_records.get_or_create(&labels).set(replica.state().size as i64);
            m.partition_certified.get_or_create(&labels).set(global.certified_size(id) as i64);
            let metrics = replica.raft().metrics().borrow().clone();
            groups.push((format!("{}/{p}", log.config.name), metrics, replica.commit_index()));
        }
    }
    for (group, metrics, committed) in groups {
        let last = metrics.last_log_index.unwrap_or(0);
        let applied = metrics.last_applied.map_or(0, |id| id.index);
        set(&m.raft_term, &group, metrics.current_term);
        set(&m.raft_last_log_index, &group, last);
        set(&m.raft_commit_index, &group, committed.unwrap_or(0));
        set(&m.raft_applied_index, &group, applied);
        set(&m.raft_apply_lag, &group, last.saturating_sub(applied));
    }
    let stats = node.storage().syncer().stats();
    m.wal_fsyncs.set(stats.fsyncs as i64);
    m.wal_synced_appends.set(stats.callbacks as i64);
    let written = node.storage().write_stats();
    for (kind, bytes) in [
        ("user", written.user),
        ("wal", written.wal),
        ("flush", written.flush),
        ("compaction", written.compaction),
    ] {
        m.written_bytes.get_or_create(&KindLabels { kind }).set(bytes as i64);
    }
    for (event, value) in pyralog_cluster::constraint::stats() {
        m.log_contracts.get_or_create(&LogContractLabels { event }).set(value as i64);
    }
    if let Some(chain) = CHAIN.get() {
        let progress = *chain.progress.borrow();
        m.chain_height.set(progress.height as i64);
        m.chain_alarms.set(progress.alarms as i64);
        m.mined_seals.set(progress.mined as i64);
        m.chain_evidence.set(progress.evidence as i64);
        m.chain_synced.set(progress.synced as i64);
        if let Err(err) = validator_gauges(m, chain) {
            tracing::debug!(%err, "validator metrics unavailable");
        }
        if let Err(err) = staking_gauges(m, chain) {
            tracing::debug!(%err, "staking metrics unavailable");
        }
    }
    let mut text = String::new();
    encode(&mut text, &m.registry).expect("writing to a String cannot fail");
    text
}

/// Each validator's power in the set deciding the next block, from the latest committed state.
fn validator_gauges(m: &Metrics, chain: &ChainService) -> anyhow::Result<()> {
    let Some(version) = chain.state.latest_version()? else { return Ok(()) };
    let set: Vec<Validator> = read_state(&chain.state, VALIDATORS_KEY, version)?.unwrap_or_default();
    m.validator_power.clear();
    for member in set {
        m.validator_power
            .get_or_create(&ValidatorLabels { validator: member.key.to_string() })
            .set(member.power as i64);
    }
    Ok(())
}

/// Reads the staking gauges from the latest committed state (a chain without staking has none).
fn staking_gauges(m: &Metrics, chain: &ChainService) -> anyhow::Result<()> {
    let Some(version) = chain.state.latest_version()? else { return Ok(()) };
    let state = &chain.state;
    if read_state::<StakingParams>(state, PARAMS_KEY, version)?.is_none() {
        return Ok(());
    }
    let set: Vec<Validator> = read_state(state, VALIDATORS_KEY, version)?.unwrap_or_default();
    m.bonded_power.set(set.iter().map(|v| v.power).sum::<u64>() as i64);
    let operators: Vec<PublicKey> = read_state(state, CANDIDATES_KEY, version)?.unwrap_or_default();
    let mut counts = [("bonded", 0i64), ("unbonded", 0), ("jailed", 0), ("tombstoned", 0)];
    for operator in operators {
        let Some(record): Option<ValidatorRecord> = read_state(state, &validator_key(&operator), version)?
        else {
            continue;
        };
        let status = record.status(&set);
        if let Some(count) = counts.iter_mut().find(|(name, _)| *name == status) {
            count.1 += 1;
        }
    }
    for (status, count) in counts {
        m.validators.get_or_create(&StatusLabels { status }).set(count);
    }
    m.missed_blocks.clear();
    for member in &set {
        let info: Option<SigningInfo> = read_state(state, &signing_info_key(&member.key), version)?;
        let missed = info.map_or(0, |i| i.missed);
        m.missed_blocks
            .get_or_create(&ValidatorLabels { validator: member.key.to_string() })
            .set(missed as i64);
    }
    Ok(())
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, node: Arc<ClusterNode>, tunnel: Option<Tunnel>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let (node, tunnel) = (node.clone(), tunnel.clone());
        tokio::spawn(async move {
            // Read the request head (a scrape request is small) before answering, so the client
            // is not cut off mid-request; only the request line matters.
            let mut head = Vec::with_capacity(1024);
            let read_head = async {
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                true
            };
            if !matches!(tokio::time::timeout(std::time::Duration::from_secs(5), read_head).await, Ok(true)) {
                return;
            }
            let request = String::from_utf8_lossy(&head);
            // The overlay answers over its command channel; a busy one is skipped, not waited on.
            let overlay = match CHAIN.get() {
                Some(chain) => {
                    let status = tokio::time::timeout(std::time::Duration::from_secs(1), chain.p2p.status());
                    status.await.ok().and_then(Result::ok)
                }
                None => None,
            };
            // OpenMetrics for scrapers that ask for it (Prometheus does), the classic text format
            // (0.0.4) for the others.
            let openmetrics = request.lines().any(|line| {
                let line = line.to_ascii_lowercase();
                line.starts_with("accept:") && line.contains("application/openmetrics-text")
            });
            let (status, body, kind) = match request.split_whitespace().take(2).collect::<Vec<_>>()[..] {
                ["GET", "/metrics"] if openmetrics => {
                    ("200 OK", render(&node, tunnel.as_ref(), overlay.as_ref()), OPENMETRICS)
                }
                ["GET", "/metrics"] => {
                    ("200 OK", classic_text(&render(&node, tunnel.as_ref(), overlay.as_ref())), CLASSIC_TEXT)
                }
                _ => (
                    "404 Not Found",
                    "only GET /metrics is served here\n".to_owned(),
                    "text/plain; charset=utf-8",
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CLASSIC_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text as Prometheus's classic text format: no `# EOF` or `# UNIT` lines, and a
/// counter's `HELP`/`TYPE` name its `_total` series (OpenMetrics names the family without it).
fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            (counters.contains(name) && !name.ends_with("_total"))
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}
