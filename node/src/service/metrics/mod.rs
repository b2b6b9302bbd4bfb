//! Prometheus metrics on their own port (`GET /metrics`, text exposition format).
//!
//! RPC request counts and latencies are recorded as requests run; Raft, partition and WAL
//! figures are read from the engine at scrape time, so they are never stale; so are the chain's,
//! the consensus engine's and the overlay's ([`chain`], once the chain has started:
//! [`watch_chain`]). `docs/grafana/pyralog.json` is a dashboard of them.

use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Instant;

use crate::service::chain::ChainService;
use crate::service::links::ClusterNode;
use chain::ChainMetrics;
use labels::{KindLabels, PartitionLabels, catch_up};

mod chain;
mod labels;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
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
    wal_fsyncs: Counter,
    wal_synced_appends: Counter,
    written_bytes: Family<KindLabels, Counter>,
    tunnel: Family<KindLabels, Counter>,
    log_contracts: Family<LogContractLabels, Counter>,
    chain: ChainMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogContractLabels {
    event: String,
}

/// The chain the metrics read from, once it has started.
static CHAIN: OnceLock<Arc<ChainService>> = OnceLock::new();

/// Lets the metrics read the chain's height and staking state at scrape time.
pub(crate) fn watch_chain(chain: Arc<ChainService>) {
    let mut progress = chain.progress.clone();
    let _ = CHAIN.set(chain);
    // The histograms (block interval, commit latency, rounds) see every commit as it happens.
    tokio::spawn(async move {
        let mut last = *progress.borrow_and_update();
        while progress.changed().await.is_ok() {
            let now = *progress.borrow_and_update();
            METRICS.chain.observe(&last, &now);
            last = now;
        }
    });
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
    let wal_fsyncs = Counter::default();
    registry.register("wal_fsyncs", "WAL fsyncs by the shared syncer since start", wal_fsyncs.clone());
    let wal_synced_appends = Counter::default();
    registry.register(
        "wal_synced_appends",
        "Raft appends those fsyncs covered since start",
        wal_synced_appends.clone(),
    );
    let written_bytes = Family::<KindLabels, Counter>::default();
    registry.register(
        "storage_written_bytes",
        "Bytes written by RocksDB since start: user (keys and values), wal, flush, compaction",
        written_bytes.clone(),
    );
    let tunnel = Family::<KindLabels, Counter>::default();
    registry.register(
        "tunnel_events",
        "Cluster tunnel counters since start: handshakes, psk_rotations, rosenpass_exchanges, \
         rosenpass_stale, tx_bytes, rx_bytes, and dropped_* datagrams by reason",
        tunnel.clone(),
    );
    let log_contracts = Family::<LogContractLabels, Counter>::default();
    registry.register(
        "log_contract_events",
        "Log contract calls since start, by kind (constraint, trigger, acl): calls, refused, failed \
         (traps and limits), and the fuel completed calls burnt",
        log_contracts.clone(),
    );
    let chain = ChainMetrics::register(&mut registry);
    Metrics {
        registry,
        chain,
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

/// Reads the engine's figures into the gauges and counters and renders everything.
fn render(node: &ClusterNode, tunnel: Option<&Tunnel>, overlay: Option<&pyralog_p2p::Status>) -> String {
    let m = &*METRICS;
    if let Some(tunnel) = tunnel {
        for (kind, value) in tunnel.stats().by_kind() {
            catch_up(&m.tunnel.get_or_create(&KindLabels { kind }), value);
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
    catch_up(&m.wal_fsyncs, stats.fsyncs);
    catch_up(&m.wal_synced_appends, stats.callbacks);
    let written = node.storage().write_stats();
    for (kind, bytes) in [
        ("user", written.user),
        ("wal", written.wal),
        ("flush", written.flush),
        ("compaction", written.compaction),
    ] {
        catch_up(&m.written_bytes.get_or_create(&KindLabels { kind }), bytes);
    }
    for (event, value) in pyralog_cluster::constraint::stats() {
        catch_up(&m.log_contracts.get_or_create(&LogContractLabels { event }), value);
    }
    if let Some(chain) = CHAIN.get() {
        m.chain.read(chain, node, overlay);
    }
    let mut text = String::new();
    encode(&mut text, &m.registry).expect("writing to a String cannot fail");
    text
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
