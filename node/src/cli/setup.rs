//! `pyralog init` and `pyralog testnet`: base paths with a key and a config.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use pyralog_crypto::Keypair;
use pyralog_crypto::keys::{load_key_file, write_key_file};

use pyralog_chain::genesis::{
    ConsensusGenesis, EngineChoice, GenesisAccount, GenesisCluster, GenesisFile, GenesisValidator, PowGenesis,
};
use pyralog_chain::staking::StakingParams;
use pyralog_consensus_types::vote::check_chain_id;
use pyralog_crypto::ClusterId;

use crate::clock::unix_ms;
use crate::service::links::ensure_tunnel_keys;
use pyralog_config::{
    BasePath, ChainSection, ClusterSection, Config, KafkaSection, LinkTransport, MemberEntry, MetricsSection,
    NodeSection, RpcSection,
};

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
    /// Overlay (libp2p) listen address of the chain this node validates alone.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/30433")]
    pub(crate) p2p_addr: String,
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
    /// Overlay (libp2p TCP) port of node 0 (node i uses this + i).
    #[arg(long, default_value_t = 30433)]
    pub(crate) p2p_port: u16,
    /// Number of clusters of `--nodes` nodes each, named `<cluster-id>-a`, `-b`, ... when more
    /// than one. Every node is a validator of the chain that links them.
    #[arg(long, default_value_t = 1)]
    pub(crate) clusters: u64,
    /// The chain's id.
    #[arg(long, default_value = "pyralog-testnet")]
    pub(crate) chain_id: String,
    /// Kafka listener port of node 0 (node i uses this + i; 0: no Kafka listener).
    #[arg(long, default_value_t = 9092)]
    pub(crate) kafka_port: u16,
    /// The chain's consensus engine (`tendermint`, `pbft`, `pos`: Proof-of-Stake over
    /// Tendermint with the testnet's small staking parameters, or `pow`: Proof-of-Work with
    /// one miner thread per node and one-second blocks), written to the genesis file.
    #[arg(long, default_value = "tendermint")]
    pub(crate) engine: EngineChoice,
    /// How many of the nodes are genesis validators (the first ones; default: all). The others
    /// follow the chain and may join the set by staking (`pos`).
    #[arg(long)]
    pub(crate) validators: Option<u64>,
    /// Without the chain (cluster only).
    #[arg(long)]
    pub(crate) no_chain: bool,
    /// Plain TCP between cluster members instead of WireGuard + Rosenpass tunnels (no tunnel
    /// keys are generated).
    #[arg(long)]
    pub(crate) dev: bool,
    /// Gives node i the address `IP + i` with the same ports on every node (CometBFT's flag of
    /// the same name; for nodes on separate hosts or network namespaces). Default: every node on
    /// 127.0.0.1, ports offset by the node's index.
    #[arg(long, value_name = "IP")]
    pub(crate) starting_ip_address: Option<std::net::Ipv4Addr>,
}

impl TestnetArgs {
    /// Node `i`'s IP address.
    fn host(&self, i: u64) -> std::net::Ipv4Addr {
        match self.starting_ip_address {
            Some(ip) => std::net::Ipv4Addr::from(u32::from(ip).wrapping_add(i as u32)),
            None => std::net::Ipv4Addr::LOCALHOST,
        }
    }

    /// Node `i`'s port for a service whose node 0 listens on `port`.
    fn port(&self, port: u16, i: u64) -> u64 {
        match self.starting_ip_address {
            Some(_) => u64::from(port),
            None => u64::from(port) + i,
        }
    }

    /// Node `i`'s `host:port` for a service whose node 0 listens on `port`.
    fn addr(&self, port: u16, i: u64) -> String {
        format!("{}:{}", self.host(i), self.port(port, i))
    }
}

/// Each genesis account's balance (fees for anchoring).
const GENESIS_BALANCE: u64 = 1_000_000_000_000;

/// The chain section of a node listening on `p2p`, dialing `bootstrap`, mining on
/// `mine_threads` threads (Proof-of-Work chains).
fn chain_section(p2p: &str, bootstrap: Vec<String>, mine_threads: usize) -> ChainSection {
    ChainSection {
        genesis: "genesis.json".into(),
        p2p_listen: vec![p2p.to_owned()],
        bootstrap,
        anchor_interval_ms: 1000,
        block_interval_ms: 200,
        propose_timeout_ms: 1000,
        mine_threads,
        abci_listen: pyralog_config::default_abci_listen(),
        cometbft_rpc: pyralog_config::default_cometbft_rpc(),
    }
}

/// A node's overlay address with its peer id.
fn dialable(p2p: &str, key: &pyralog_crypto::PublicKey) -> String {
    format!("{p2p}/p2p/{}", pyralog_p2p::peer_id(key))
}

/// The key at `path`, generated if missing.
fn key_at(path: &Path) -> anyhow::Result<Keypair> {
    if !path.exists() {
        write_key_file(path, &Keypair::generate())?;
    }
    Ok(load_key_file(path)?)
}

fn write_genesis_new(base: &BasePath, genesis: &GenesisFile) -> anyhow::Result<()> {
    let path = base.0.join("genesis.json");
    if path.exists() {
        anyhow::bail!("{} exists already", path.display());
    }
    genesis.write(&path)
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
    // Tunnel keys now, so joining a multi-member cluster later needs only the config.
    let wireguard = ensure_tunnel_keys(&base)?;
    let config = Config {
        node: NodeSection {
            id: args.node_id,
            cluster_id: args.cluster_id,
            raft_addr: args.raft_addr.clone(),
            storage: "disk".into(),
            transport: None,
            tunnel_mtu: None,
        },
        cluster: ClusterSection {
            members: vec![MemberEntry {
                id: args.node_id,
                raft_addr: args.raft_addr,
                public_key: key.public(),
                wireguard_public_key: Some(wireguard.to_string()),
                rosenpass_public_key: Some("rosenpass.pub".into()),
            }],
        },
        zk: None,
        rpc: RpcSection { addr: args.rpc_addr, ..RpcSection::default() },
        metrics: MetricsSection { addr: args.metrics_addr },
        chain: Some(chain_section(&args.p2p_addr, Vec::new(), 0)),
        kafka: None,
    };
    let genesis = GenesisFile {
        chain_id: format!("pyralog-{}", config.node.cluster_id),
        validators: vec![GenesisValidator { public_key: key.public(), power: 1 }],
        accounts: vec![GenesisAccount { public_key: key.public(), balance: GENESIS_BALANCE }],
        clusters: vec![GenesisCluster {
            id: ClusterId::new(config.node.cluster_id.clone())?,
            owner: key.public(),
            members: vec![key.public()],
            peers: vec![dialable(&args.p2p_addr, &key.public())],
        }],
        consensus: ConsensusGenesis::default(),
        genesis_time_ms: Some(unix_ms()),
        staking: None,
    };
    write_base_path(&base, &config)?;
    write_genesis_new(&base, &genesis)?;
    println!("initialized {} (node {}, key {})", base.0.display(), config.node.id, key.public());
    println!("wireguard public key {wireguard}; rosenpass public key {}", base.rosenpass_public().display());
    println!("start it with: pyralog start --base-path {}", base.0.display());
    Ok(())
}

/// Where a base path keeps its copy of cluster member `id`'s Rosenpass public key.
fn peer_rosenpass_key(id: u64) -> PathBuf {
    PathBuf::from(format!("peers/member{id}.rosenpass.pub"))
}

/// Runs `pyralog testnet`.
pub(crate) fn testnet(args: TestnetArgs) -> anyhow::Result<()> {
    check_chain_id(&args.chain_id).context("--chain-id")?;
    let total = args.nodes * args.clusters;
    let bases: Vec<BasePath> = (0..total).map(|i| BasePath(args.out.join(format!("node{i}")))).collect();
    let mut keys = Vec::new();
    let mut tunnel_keys = Vec::new();
    for base in &bases {
        std::fs::create_dir_all(&base.0).with_context(|| format!("cannot create {}", base.0.display()))?;
        keys.push(key_at(&base.key())?.public());
        if !args.dev {
            tunnel_keys.push(ensure_tunnel_keys(base)?.to_string());
        }
    }
    let p2p: Vec<String> =
        (0..total).map(|i| format!("/ip4/{}/tcp/{}", args.host(i), args.port(args.p2p_port, i))).collect();
    let cluster_name = |c: u64| match args.clusters {
        1 => args.cluster_id.clone(),
        _ => format!("{}-{}", args.cluster_id, char::from(b'a' + (c % 26) as u8)),
    };
    let mut clusters = Vec::new();
    for c in 0..args.clusters {
        let range = (c * args.nodes) as usize..((c + 1) * args.nodes) as usize;
        clusters.push(GenesisCluster {
            id: ClusterId::new(cluster_name(c))?,
            owner: keys[range.start],
            members: keys[range.clone()].to_vec(),
            peers: range.map(|i| dialable(&p2p[i], &keys[i])).collect(),
        });
    }
    let genesis = GenesisFile {
        chain_id: args.chain_id.clone(),
        validators: keys
            .iter()
            .take(args.validators.unwrap_or(total).clamp(1, total) as usize)
            .map(|k| GenesisValidator { public_key: *k, power: 1 })
            .collect(),
        accounts: keys.iter().map(|k| GenesisAccount { public_key: *k, balance: GENESIS_BALANCE }).collect(),
        clusters,
        consensus: ConsensusGenesis {
            pow: (args.engine == EngineChoice::Pow).then(PowGenesis::testnet),
            ..ConsensusGenesis::new(args.engine)
        },
        genesis_time_ms: Some(unix_ms()),
        staking: (args.engine == EngineChoice::Pos).then(StakingParams::testnet),
    };
    for c in 0..args.clusters {
        let first = c * args.nodes;
        let members: Vec<MemberEntry> = (0..args.nodes)
            .map(|id| MemberEntry {
                id,
                raft_addr: args.addr(args.raft_port, first + id),
                public_key: keys[(first + id) as usize],
                wireguard_public_key: tunnel_keys.get((first + id) as usize).cloned(),
                rosenpass_public_key: (!args.dev).then(|| peer_rosenpass_key(id)),
            })
            .collect();
        if !args.dev {
            // Each member keeps copies of the others' Rosenpass public keys (512 KiB each).
            for id in 0..args.nodes {
                for peer in (0..args.nodes).filter(|&peer| peer != id) {
                    let to = bases[(first + id) as usize].0.join(peer_rosenpass_key(peer));
                    std::fs::create_dir_all(to.parent().expect("peers/"))?;
                    std::fs::copy(bases[(first + peer) as usize].rosenpass_public(), &to)
                        .with_context(|| format!("cannot write {}", to.display()))?;
                }
            }
        }
        // Every node of a Proof-of-Work testnet mines, on one thread.
        let mine_threads = usize::from(args.engine == EngineChoice::Pow);
        for id in 0..args.nodes {
            let i = first + id;
            let base = &bases[i as usize];
            let bootstrap = (0..total)
                .filter(|&j| j != i)
                .map(|j| dialable(&p2p[j as usize], &keys[j as usize]))
                .collect();
            let config = Config {
                node: NodeSection {
                    id,
                    cluster_id: cluster_name(c),
                    raft_addr: members[id as usize].raft_addr.clone(),
                    storage: "disk".into(),
                    transport: Some(if args.dev { LinkTransport::Tcp } else { LinkTransport::Wireguard }),
                    tunnel_mtu: None,
                },
                cluster: ClusterSection { members: members.clone() },
                rpc: RpcSection { addr: args.addr(args.rpc_port, i), ..RpcSection::default() },
                metrics: MetricsSection { addr: args.addr(args.metrics_port, i) },
                chain: (!args.no_chain).then(|| chain_section(&p2p[i as usize], bootstrap, mine_threads)),
                zk: None,
                // Every member's Kafka address, so clients reach each partition's leader.
                kafka: (args.kafka_port != 0).then(|| KafkaSection {
                    listen: args.addr(args.kafka_port, i),
                    advertised: None,
                    peers: (0..args.nodes)
                        .filter(|&peer| peer != id)
                        .map(|peer| (peer.to_string(), args.addr(args.kafka_port, first + peer)))
                        .collect(),
                }),
            };
            write_base_path(base, &config)?;
            if !args.no_chain {
                write_genesis_new(base, &genesis)?;
            }
            println!(
                "node{i}  cluster {}  raft {}  rpc http://{}  {}",
                config.node.cluster_id,
                config.node.raft_addr,
                config.rpc.addr,
                base.0.display()
            );
        }
    }
    if !args.no_chain {
        genesis.write(&args.out.join("genesis.json"))?;
    }
    Ok(())
}
