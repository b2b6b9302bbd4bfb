//! `pyralog init` and `pyralog testnet`: base paths with a key and a config.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use pyralog_crypto::Keypair;
use pyralog_crypto::keys::{load_key_file, write_key_file};

use crate::config::{BasePath, ClusterSection, Config, MemberEntry, MetricsSection, NodeSection, RpcSection};

/// `pyralog init`: a single-node cluster's base path (edit `[cluster] members` to join others).
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Directory for the config, key and data.
    #[arg(long)]
    pub(crate) base_path: PathBuf,
    /// Cluster name.
    #[arg(long, default_value = "local")]
    pub(crate) cluster_id: String,
    /// This node's id.
    #[arg(long, default_value_t = 0)]
    pub(crate) node_id: u64,
    /// Raft transport address.
    #[arg(long, default_value = "127.0.0.1:30333")]
    pub(crate) raft_addr: String,
    /// JSON-RPC address.
    #[arg(long, default_value = "127.0.0.1:9944")]
    pub(crate) rpc_addr: String,
    /// Prometheus metrics address (empty: off).
    #[arg(long, default_value = "127.0.0.1:9615")]
    pub(crate) metrics_addr: String,
}

/// `pyralog testnet`: configs and keys for a local cluster, ports offset per node.
#[derive(Debug, Args)]
pub(crate) struct TestnetArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub(crate) nodes: u64,
    /// Output directory (one `nodeN` base path per node).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Cluster name.
    #[arg(long, default_value = "testnet")]
    pub(crate) cluster_id: String,
    /// Raft port of node 0 (node i uses this + i).
    #[arg(long, default_value_t = 30333)]
    pub(crate) raft_port: u16,
    /// RPC port of node 0 (node i uses this + i).
    #[arg(long, default_value_t = 9944)]
    pub(crate) rpc_port: u16,
    /// Metrics port of node 0 (node i uses this + i).
    #[arg(long, default_value_t = 9615)]
    pub(crate) metrics_port: u16,
}

/// The key at `path`, generated if missing.
fn key_at(path: &Path) -> anyhow::Result<Keypair> {
    if !path.exists() {
        write_key_file(path, &Keypair::generate())?;
    }
    Ok(load_key_file(path)?)
}

fn write_base_path(base: &BasePath, config: &Config) -> anyhow::Result<()> {
    config.check()?;
    std::fs::create_dir_all(base.data())
        .with_context(|| format!("cannot create {}", base.data().display()))?;
    config.write_new(&base.config())
}

/// Runs `pyralog init`.
pub(crate) fn init(args: InitArgs) -> anyhow::Result<()> {
    let base = BasePath(args.base_path);
    std::fs::create_dir_all(&base.0).with_context(|| format!("cannot create {}", base.0.display()))?;
    let key = key_at(&base.key())?;
    let config = Config {
        node: NodeSection {
            id: args.node_id,
            cluster_id: args.cluster_id,
            raft_addr: args.raft_addr.clone(),
            storage: "disk".into(),
        },
        cluster: ClusterSection {
            members: vec![MemberEntry {
                id: args.node_id,
                raft_addr: args.raft_addr,
                public_key: key.public(),
            }],
        },
        rpc: RpcSection { addr: args.rpc_addr, ..RpcSection::default() },
        metrics: MetricsSection { addr: args.metrics_addr },
    };
    write_base_path(&base, &config)?;
    println!("initialized {} (node {}, key {})", base.0.display(), config.node.id, key.public());
    println!("start it with: pyralog start --base-path {}", base.0.display());
    Ok(())
}

/// Runs `pyralog testnet`.
pub(crate) fn testnet(args: TestnetArgs) -> anyhow::Result<()> {
    let bases: Vec<BasePath> = (0..args.nodes).map(|i| BasePath(args.out.join(format!("node{i}")))).collect();
    let mut members = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        std::fs::create_dir_all(&base.0).with_context(|| format!("cannot create {}", base.0.display()))?;
        let key = key_at(&base.key())?;
        let raft_addr = format!("127.0.0.1:{}", u64::from(args.raft_port) + i as u64);
        members.push(MemberEntry { id: i as u64, raft_addr, public_key: key.public() });
    }
    for (i, base) in bases.iter().enumerate() {
        let config = Config {
            node: NodeSection {
                id: i as u64,
                cluster_id: args.cluster_id.clone(),
                raft_addr: members[i].raft_addr.clone(),
                storage: "disk".into(),
            },
            cluster: ClusterSection { members: members.clone() },
            rpc: RpcSection {
                addr: format!("127.0.0.1:{}", u64::from(args.rpc_port) + i as u64),
                ..RpcSection::default()
            },
            metrics: MetricsSection {
                addr: format!("127.0.0.1:{}", u64::from(args.metrics_port) + i as u64),
            },
        };
        write_base_path(base, &config)?;
        println!(
            "node{i}  raft {}  rpc http://{}  {}",
            config.node.raft_addr,
            config.rpc.addr,
            base.0.display()
        );
    }
    Ok(())
}
