//! The node's `config.toml` and its base-path layout:
//!
//! ```text
//! BASE/config.toml   settings (below)
//! BASE/node.key      the node's ed25519 key (0600): Raft, checkpoints, overlay, validator
//! BASE/wireguard.key the node's WireGuard key (base64, 0600): cluster tunnels
//! BASE/rosenpass.secret, BASE/rosenpass.pub  the node's Rosenpass keys (raw, as the
//!                    `rosenpass` binary writes them; the public key is 524,160 bytes)
//! BASE/peers/        copies of the other members' `rosenpass.pub` (config names them)
//! BASE/peers/added.toml  tunnel peers added while the node ran (`admin_addTunnelPeer`)
//! BASE/genesis.json  the chain's genesis (see `pyralog_chain::genesis`)
//! BASE/data/db       RocksDB
//! BASE/data/scarab.hwm  Scarab id high-water mark
//! BASE/data/chain    the chain's blocks (and consensus WAL) and its state
//! ```
//!
//! Precedence, as in Substrate and CometBFT: command-line flags, then `PYRALOG_*` environment
//! variables (clap reads both), then the file, then defaults.

mod tunnel_peers;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use pyralog_crypto::PublicKey;
use serde::{Deserialize, Serialize};
pub use tunnel_peers::AddedTunnelPeer;

/// Everything in `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node.
    pub node: NodeSection,
    /// The cluster's founding members.
    pub cluster: ClusterSection,
    /// JSON-RPC server settings and limits.
    #[serde(default)]
    pub rpc: RpcSection,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// The Pyralog Network chain; without it the node runs its cluster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainSection>,
    /// zk proving on this node (`zk_proveMembership` needs Groth16 keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zk: Option<ZkSection>,
    /// Kafka's wire protocol; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaSection>,
}

/// `[kafka]` in config.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSection {
    /// Where Kafka clients connect (`host:port`).
    pub listen: String,
    /// The address this node gives clients in Metadata (`host:port`; absent: `listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised: Option<String>,
    /// The other members' Kafka addresses by member id (`"1" = "host:port"`), which Metadata
    /// lists as brokers so clients send each partition's records to its leader (Kafka's
    /// advertised listeners, known from the config as the Raft addresses are).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub peers: std::collections::BTreeMap<String, String>,
}

/// `[zk]`: where `pyralog zk setup` wrote the Groth16 membership keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkSection {
    /// The key directory (`membership.pk`, `membership.vk`), relative to the base path unless
    /// absolute.
    pub keys: PathBuf,
}

/// `[chain]`: this node's part in the Pyralog Network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// The genesis file, relative to the base path unless absolute.
    #[serde(default = "default_genesis")]
    pub genesis: PathBuf,
    /// Overlay listen addresses (multiaddrs: TCP and/or QUIC).
    pub p2p_listen: Vec<String>,
    /// Peers to dial at start (multiaddrs ending in `/p2p/<peer id>`).
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// How often partition leaders anchor their certified checkpoints, ms (0: only on demand,
    /// through `log_anchor`).
    #[serde(default = "default_anchor_interval")]
    pub anchor_interval_ms: u64,
    /// Pause after each block (CometBFT's `timeout_commit`), ms.
    #[serde(default = "default_block_interval")]
    pub block_interval_ms: u64,
    /// Tendermint's propose timeout, ms (prevote and precommit wait half of it).
    #[serde(default = "default_propose_timeout")]
    pub propose_timeout_ms: u64,
    /// On a Proof-of-Work chain, how many threads search seals (0: this node validates and
    /// relays blocks but does not mine, as bitcoind without `-gen`).
    #[serde(default)]
    pub mine_threads: usize,
    /// On a chain run behind CometBFT (`"engine": "cometbft"`), where the ABCI server listens
    /// for CometBFT's `proxy_app` (loopback: ABCI has no authentication).
    #[serde(default = "default_abci_listen", skip_serializing_if = "is_default_abci_listen")]
    pub abci_listen: String,
    /// Behind CometBFT, its RPC (`rpc.laddr`): where this node sends transactions, and where the
    /// `chain_getCometLightBlock` method fetches signed headers from.
    #[serde(default = "default_cometbft_rpc", skip_serializing_if = "is_default_cometbft_rpc")]
    pub cometbft_rpc: String,
}

/// CometBFT's default `proxy_app` address.
pub fn default_abci_listen() -> String {
    "127.0.0.1:26658".into()
}

fn is_default_abci_listen(addr: &str) -> bool {
    addr == default_abci_listen()
}

fn is_default_cometbft_rpc(url: &str) -> bool {
    url == default_cometbft_rpc()
}

/// CometBFT's default RPC address.
pub fn default_cometbft_rpc() -> String {
    "http://127.0.0.1:26657".into()
}

fn default_genesis() -> PathBuf {
    "genesis.json".into()
}

fn default_anchor_interval() -> u64 {
    1000
}

fn default_block_interval() -> u64 {
    200
}

fn default_propose_timeout() -> u64 {
    1000
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSection {
    /// `GET /metrics` (Prometheus text format); empty to turn it off.
    pub addr: String,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection { addr: "127.0.0.1:9615".into() }
    }
}

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Node id, unique in the cluster.
    pub id: u64,
    /// Cluster name (like a CometBFT chain id).
    pub cluster_id: String,
    /// Address peers reach this node's Raft transport at.
    pub raft_addr: String,
    /// `disk` (default) or `memory` (nothing survives a restart).
    #[serde(default = "default_storage")]
    pub storage: String,
    /// How cluster members link: `wireguard` (WireGuard + Rosenpass tunnels; the default with
    /// several members) or `tcp` (plain; the default for a single member, and `--dev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<LinkTransport>,
    /// With `wireguard`: the tunnel's inner MTU for every peer (as `wg`'s `MTU`); unset, each
    /// peer's comes from the kernel's route to it (1,440 on 1,500-byte Ethernet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_mtu: Option<u16>,
}

/// `node.transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkTransport {
    /// Plain TCP between `raft_addr`s.
    Tcp,
    /// WireGuard tunnels (UDP at `raft_addr`) keyed by Rosenpass.
    Wireguard,
}

/// `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The members that bootstrap the cluster; the lowest id bootstraps it on first start.
    pub members: Vec<MemberEntry>,
}

/// One founding member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    /// Its node id.
    pub id: u64,
    /// Its Raft transport address.
    pub raft_addr: String,
    /// Its public key (`pyrpub1...`).
    pub public_key: PublicKey,
    /// Its WireGuard public key (base64, as `wg pubkey` prints it); needed with the
    /// `wireguard` transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard_public_key: Option<String>,
    /// A copy of its `rosenpass.pub`, relative to the base path unless absolute; needed with
    /// the `wireguard` transport.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rosenpass_public_key: Option<PathBuf>,
}

/// `[rpc]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcSection {
    /// JSON-RPC over HTTP and WebSocket.
    pub addr: String,
    /// Largest request body, bytes.
    pub max_request_bytes: u32,
    /// Largest response body, bytes.
    pub max_response_bytes: u32,
    /// Most concurrent connections.
    pub max_connections: u32,
    /// Most subscriptions per WebSocket connection.
    pub max_subscriptions_per_connection: u32,
    /// Calls per second allowed from one client IP address; 0 turns the limit off.
    pub rate_limit_per_ip: u32,
    /// Calls one client IP may make at once before the rate applies; 0 means the same as
    /// `rate_limit_per_ip`.
    pub rate_limit_burst: u32,
}

impl Default for RpcSection {
    fn default() -> Self {
        RpcSection {
            addr: "127.0.0.1:9944".into(),
            max_request_bytes: 10 << 20,
            max_response_bytes: 10 << 20,
            max_connections: 100,
            max_subscriptions_per_connection: 1024,
            rate_limit_per_ip: 0,
            rate_limit_burst: 0,
        }
    }
}

fn default_storage() -> String {
    "disk".into()
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config {}", path.display()))
    }

    /// Parses and checks the text of a `config.toml`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Config = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    /// The text of a `config.toml` that [`Config::parse`] reads back to this config.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }

    /// Writes `path`, refusing to replace an existing file.
    pub fn write_new(&self, path: &Path) -> anyhow::Result<()> {
        let text = self.to_toml()?;
        let mut file = std::fs::File::create_new(path)
            .with_context(|| format!("cannot create {} (it may exist already)", path.display()))?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.sync_all()?;
        Ok(())
    }

    /// The link transport: as set, else WireGuard for several members and TCP for one.
    pub fn transport(&self) -> LinkTransport {
        self.node.transport.unwrap_or(if self.cluster.members.len() > 1 {
            LinkTransport::Wireguard
        } else {
            LinkTransport::Tcp
        })
    }

    /// Consistency checks a TOML schema cannot express.
    pub fn check(&self) -> anyhow::Result<()> {
        pyralog_crypto::ClusterId::new(self.node.cluster_id.clone()).context("node.cluster_id")?;
        if !["disk", "memory"].contains(&self.node.storage.as_str()) {
            bail!("node.storage must be \"disk\" or \"memory\", not {:?}", self.node.storage);
        }
        if self.cluster.members.is_empty() {
            bail!("cluster.members is empty");
        }
        let mut ids: Vec<u64> = self.cluster.members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.cluster.members.len() {
            bail!("cluster.members lists an id twice");
        }
        if self.transport() == LinkTransport::Wireguard {
            self.node.raft_addr.parse::<std::net::SocketAddr>().with_context(|| {
                format!("node.raft_addr {:?} must be ip:port (the tunnel's UDP address)", self.node.raft_addr)
            })?;
            for member in self.cluster.members.iter().filter(|m| m.id != self.node.id) {
                let id = member.id;
                let key = member.wireguard_public_key.as_deref().with_context(|| {
                    format!("transport is wireguard but cluster member {id} has no wireguard_public_key")
                })?;
                key.parse::<pyralog_p2p::tunnel::WireGuardPublic>()
                    .with_context(|| format!("cluster member {id}: wireguard_public_key"))?;
                if member.rosenpass_public_key.is_none() {
                    bail!("transport is wireguard but cluster member {id} has no rosenpass_public_key");
                }
                member.raft_addr.parse::<std::net::SocketAddr>().with_context(|| {
                    format!("cluster member {id}: raft_addr {:?} must be ip:port", member.raft_addr)
                })?;
            }
        }
        if let Some(chain) = &self.chain {
            if chain.p2p_listen.is_empty() {
                bail!("chain.p2p_listen is empty");
            }
            for addr in chain.p2p_listen.iter().chain(&chain.bootstrap) {
                addr.parse::<pyralog_p2p::libp2p::Multiaddr>()
                    .with_context(|| format!("chain: {addr:?} is not a multiaddr"))?;
            }
        }
        Ok(())
    }
}

/// Where things live under a base path.
#[derive(Debug, Clone)]
pub struct BasePath(pub PathBuf);

impl BasePath {
    /// `BASE/config.toml`.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.toml")
    }

    /// `BASE/node.key`.
    pub fn key(&self) -> PathBuf {
        self.0.join("node.key")
    }

    /// The genesis file `chain` names.
    pub fn genesis(&self, chain: &ChainSection) -> PathBuf {
        self.0.join(&chain.genesis)
    }

    /// The zk key directory `zk` names.
    pub fn zk_keys(&self, zk: &ZkSection) -> PathBuf {
        self.0.join(&zk.keys)
    }

    /// `BASE/wireguard.key`.
    pub fn wireguard_key(&self) -> PathBuf {
        self.0.join("wireguard.key")
    }

    /// `BASE/rosenpass.secret`.
    pub fn rosenpass_secret(&self) -> PathBuf {
        self.0.join("rosenpass.secret")
    }

    /// `BASE/rosenpass.pub`.
    pub fn rosenpass_public(&self) -> PathBuf {
        self.0.join("rosenpass.pub")
    }

    /// `BASE/data`.
    pub fn data(&self) -> PathBuf {
        self.0.join("data")
    }
}
