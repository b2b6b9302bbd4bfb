//! The libp2p protocols one node runs, and the topics and protocol names of a chain.

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, identity, kad, ping};
use libp2p::{request_response, request_response::ProtocolSupport};

use crate::P2pError;
use crate::codec::FrameCodec;
use crate::config::P2pConfig;

/// Everything a node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Banned peers: their connections are closed and refused.
    pub(crate) banned: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossip: gossipsub::Behaviour,
    pub(crate) rpc: request_response::Behaviour<FrameCodec>,
}

/// A gossip topic of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Votes, proposals and certificates (validators publish; everyone may listen).
    Consensus,
    /// Transactions for the validators' mempools.
    Txs,
    /// Certified cluster checkpoints to anchor (the chain, issue 6).
    Checkpoints,
    /// Evidence of equivocation, for the next proposer to put in a block.
    Evidence,
}

impl Topic {
    /// Every topic a node subscribes to.
    pub const ALL: [Topic; 4] = [Topic::Consensus, Topic::Txs, Topic::Checkpoints, Topic::Evidence];

    /// The topic's short name (in its gossipsub name and in metrics labels).
    pub fn name(self) -> &'static str {
        match self {
            Topic::Consensus => "consensus",
            Topic::Txs => "txs",
            Topic::Checkpoints => "checkpoints",
            Topic::Evidence => "evidence",
        }
    }

    /// The topic on `chain_id`.
    pub(crate) fn ident(self, chain_id: &str) -> gossipsub::IdentTopic {
        gossipsub::IdentTopic::new(format!("/pyralog/{chain_id}/{}/1", self.name()))
    }
}

/// The identify protocol version: peers announcing another one belong to another chain.
pub(crate) fn protocol_version(chain_id: &str) -> String {
    format!("/pyralog/{chain_id}/1")
}

fn protocol(chain_id: &str, name: &str) -> Result<StreamProtocol, P2pError> {
    StreamProtocol::try_from_owned(format!("/pyralog/{chain_id}/{name}/1"))
        .map_err(|e| P2pError::Config(format!("chain id {chain_id:?}: {e}")))
}

impl Behaviour {
    pub(crate) fn new(key: &identity::Keypair, config: &P2pConfig) -> Result<Self, P2pError> {
        let local = key.public().to_peer_id();
        let chain = &config.chain_id;

        let mut kad_config = kad::Config::new(protocol(chain, "kad")?);
        kad_config.set_query_timeout(Duration::from_secs(30));
        let mut kad = kad::Behaviour::with_config(local, kad::store::MemoryStore::new(local), kad_config);
        // Every node serves the DHT: a small validator network has no client-only members.
        kad.set_mode(Some(kad::Mode::Server));

        let gossip_config = gossipsub::ConfigBuilder::default()
            .max_transmit_size(config.max_message_bytes)
            .validation_mode(gossipsub::ValidationMode::Strict)
            // Messages are forwarded only once this node found them valid.
            .validate_messages()
            .heartbeat_interval(Duration::from_millis(500))
            .build()
            .map_err(|e| P2pError::Config(format!("gossipsub: {e}")))?;
        let gossip =
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), gossip_config)
                .map_err(|e| P2pError::Config(format!("gossipsub: {e}")))?;

        let rpc = request_response::Behaviour::with_codec(
            FrameCodec::new(config.max_message_bytes, config.max_response_bytes),
            [(protocol(chain, "req")?, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(config.request_timeout),
        );

        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(2))
            .with_max_established_incoming(Some(256))
            .with_max_pending_incoming(Some(64));

        Ok(Behaviour {
            banned: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(limits),
            identify: identify::Behaviour::new(
                identify::Config::new(protocol_version(chain), key.public())
                    .with_agent_version(format!("pyralog/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            gossip,
            rpc,
        })
    }
}
