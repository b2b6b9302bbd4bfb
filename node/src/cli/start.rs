//! `pyralog start`: the node process. Opens the engine, bootstraps the cluster if this is its
//! lowest-id founding member, serves JSON-RPC, and shuts down cleanly on SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use pyralog_cluster::engine::{NodeConfig, default_raft_config};
use pyralog_cluster::raft::Member;
use pyralog_cluster::storage::StorageMode;
use pyralog_crypto::ClusterId;
use pyralog_crypto::keys::load_key_file;

use crate::cli::setup::{InitArgs, init};
use crate::cli::zk::load_keys;
use crate::rpc::Backends;
use crate::service::anchor::Anchorer;
use crate::service::chain::ChainRuntime;
use crate::service::links::{self, ClusterNode};
use crate::service::metrics;
use pyralog_config::{BasePath, Config};

/// `pyralog start`.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// Directory made by `pyralog init` or `pyralog testnet`.
    #[arg(long, env = "PYRALOG_BASE_PATH", required_unless_present = "dev")]
    pub(crate) base_path: Option<PathBuf>,
    /// Config file (default: BASE/config.toml).
    #[arg(long, env = "PYRALOG_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Overrides `[rpc] addr`.
    #[arg(long, env = "PYRALOG_RPC_ADDR")]
    pub(crate) rpc_addr: Option<String>,
    /// Overrides `[node] raft_addr` (where this node listens).
    #[arg(long, env = "PYRALOG_RAFT_ADDR")]
    pub(crate) raft_addr: Option<String>,
    /// Overrides `[metrics] addr` ("" turns the metrics server off).
    #[arg(long, env = "PYRALOG_METRICS_ADDR")]
    pub(crate) metrics_addr: Option<String>,
    /// A throwaway single-node cluster in a temporary directory.
    #[arg(long, conflicts_with = "base_path")]
    pub(crate) dev: bool,
}

/// Runs `pyralog start` until a shutdown signal.
pub(crate) fn start(args: StartArgs) -> anyhow::Result<()> {
    init_tracing();
    let (base, _dev_dir) = match (&args.base_path, args.dev) {
        (Some(base), _) => (BasePath(base.clone()), None),
        (None, _) => {
            let dir = std::env::temp_dir().join(format!("pyralog-dev-{}", std::process::id()));
            let args_init = InitArgs {
                base_path: dir.clone(),
                cluster_id: "dev".into(),
                node_id: 0,
                raft_addr: args.raft_addr.clone().unwrap_or_else(|| "127.0.0.1:30333".into()),
                rpc_addr: args.rpc_addr.clone().unwrap_or_else(|| "127.0.0.1:9944".into()),
                metrics_addr: args.metrics_addr.clone().unwrap_or_else(|| "127.0.0.1:9615".into()),
                // A chain of one validator needs no fixed overlay port.
                p2p_addr: "/ip4/127.0.0.1/tcp/0".into(),
            };
            init(args_init)?;
            (BasePath(dir.clone()), Some(DevDir(dir)))
        }
    };
    let mut config = Config::load(&args.config.clone().unwrap_or_else(|| base.config()))?;
    if let Some(addr) = args.rpc_addr {
        config.rpc.addr = addr;
    }
    if let Some(addr) = args.raft_addr {
        config.node.raft_addr = addr;
    }
    if let Some(addr) = args.metrics_addr {
        config.metrics.addr = addr;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(base, config))
}

/// Removes the `--dev` directory on exit.
struct DevDir(PathBuf);

impl Drop for DevDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn init_tracing() {
    // arkworks' constraint gadgets open `r1cs` spans whose fields Debug-print the constraint
    // system: with them enabled, one depth-32 membership proof takes minutes and gigabytes.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"))
        .add_directive("r1cs=off".parse().expect("a valid directive"));
    // Colours only on a terminal: logs redirected to a file or a journal stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

async fn serve(base: BasePath, config: Config) -> anyhow::Result<()> {
    let keypair = load_key_file(&base.key())?;
    let cluster = ClusterId::new(config.node.cluster_id.clone())?;
    let storage = match config.node.storage.as_str() {
        "memory" => StorageMode::Memory,
        _ => StorageMode::Disk(base.data().join("db")),
    };
    let node_config = NodeConfig {
        id: config.node.id,
        cluster,
        storage,
        scarab_path: base.data().join("scarab.hwm"),
        raft: Arc::new(default_raft_config().validate()?),
        checkpoint_interval: Duration::from_millis(100),
    };
    let (links, listener) = links::open(&base, &config).await?;
    let tunnel = links.tunnel().cloned();
    let node = Arc::new(ClusterNode::start(node_config, keypair, listener, links).await?);
    tracing::info!(
        node = config.node.id,
        raft = %node.addr(),
        transport = ?config.transport(),
        "cluster engine started"
    );

    let metrics = match config.metrics.addr.as_str() {
        "" => None,
        addr => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (metrics)"))?;
            tracing::info!(metrics = %addr, "Prometheus metrics at /metrics");
            Some(tokio::spawn(metrics::serve(listener, node.clone(), tunnel.clone())))
        }
    };

    let founders: BTreeMap<u64, Member> = config
        .cluster
        .members
        .iter()
        .map(|m| (m.id, Member { addr: m.raft_addr.clone(), key: m.public_key }))
        .collect();
    if founders.keys().next() == Some(&config.node.id) {
        tokio::spawn(bootstrap(node.clone(), founders));
    }

    let chain = match &config.chain {
        Some(section) => {
            let key = load_key_file(&base.key())?;
            let mut runtime = ChainRuntime::start(&base, section, &key, node.clone()).await?;
            metrics::watch_chain(runtime.service.clone());
            let anchorer = Anchorer::new(runtime.service.clone(), node.clone());
            runtime.spawn(anchorer.clone().run(Duration::from_millis(section.anchor_interval_ms)));
            Some((runtime, anchorer))
        }
        None => None,
    };
    let zk_keys = match &config.zk {
        Some(zk) => {
            let dir = base.zk_keys(zk);
            let keys = tokio::task::spawn_blocking(move || load_keys(&dir)).await??;
            Some(Arc::new(keys))
        }
        None => None,
    };
    let backends = Backends {
        tunnel: crate::rpc::TunnelCtx::new(tunnel.clone(), base.clone()),
        node: node.clone(),
        chain: chain.as_ref().map(|(runtime, anchorer)| (runtime.service.clone(), anchorer.clone())),
        zk_keys,
    };
    let kafka = match &config.kafka {
        Some(section) => Some(crate::kafka::serve(section, node.clone()).await?),
        None => None,
    };
    let (rpc_addr, handle) = crate::rpc::serve(&config.rpc, crate::rpc::methods(backends)).await?;
    tracing::info!(rpc = %rpc_addr, "JSON-RPC (HTTP and WebSocket) listening");

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = handle.stop();
    handle.stopped().await;
    for task in [metrics, kafka].into_iter().flatten() {
        task.abort();
        let _ = task.await;
    }
    if let Some((runtime, _)) = chain {
        runtime.shutdown().await;
    }
    match Arc::try_unwrap(node) {
        Ok(node) => node.shutdown().await,
        Err(_) => tracing::warn!("requests still running at shutdown; the database closes with the process"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Bootstraps the cluster once the founders answer (idempotent; retried until it holds).
async fn bootstrap(node: Arc<ClusterNode>, founders: BTreeMap<u64, Member>) {
    loop {
        match node.bootstrap(founders.clone()).await {
            Ok(()) => {
                tracing::info!(members = founders.len(), "cluster bootstrapped");
                return;
            }
            Err(err) => {
                tracing::warn!(%err, "bootstrap not done yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
