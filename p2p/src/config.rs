//! Overlay settings.

use std::time::Duration;

use libp2p::Multiaddr;
use pyralog_crypto::PublicKey;

/// How a node joins the overlay.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// The chain: it names the gossip topics and protocols, so nodes of different chains never
    /// mix (and identify tells them apart).
    pub chain_id: String,
    /// Where to listen: `/ip4/0.0.0.0/tcp/30333` and `/ip4/0.0.0.0/udp/30333/quic-v1`, say
    /// (port 0 picks a free port; [`crate::P2pHandle::listen_addrs`] tells which).
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and whenever they are not connected, each with its `/p2p/<id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// The validators: only they may publish on the consensus topic (unless it is open).
    pub validators: Vec<PublicKey>,
    /// Whether anyone may publish consensus messages (Proof-of-Work: whoever mines may publish a
    /// block; the seal is the spam filter, and a bad one is reported by the engine like any
    /// invalid message). Otherwise only the validators may.
    pub open_consensus: bool,
    /// Largest gossip message and request (a proposal carries its block's transactions).
    pub max_message_bytes: usize,
    /// Largest response (block sync answers are trimmed to fit).
    pub max_response_bytes: usize,
    /// How long a request may wait for its answer.
    pub request_timeout: Duration,
    /// Invalid messages a peer may send before it is banned.
    pub faults_before_ban: u32,
    /// How long a ban lasts.
    pub ban_duration: Duration,
    /// How often to redial bootstrap peers and known validators that are not connected, and to
    /// lift expired bans.
    pub maintenance_interval: Duration,
}

impl P2pConfig {
    /// Defaults for `chain_id` listening on `listen`.
    pub fn new(chain_id: impl Into<String>, listen: Vec<Multiaddr>) -> Self {
        P2pConfig {
            chain_id: chain_id.into(),
            listen,
            bootstrap: Vec::new(),
            validators: Vec::new(),
            open_consensus: false,
            max_message_bytes: 8 << 20,
            max_response_bytes: 32 << 20,
            request_timeout: Duration::from_secs(10),
            faults_before_ban: 3,
            ban_duration: Duration::from_secs(600),
            maintenance_interval: Duration::from_secs(1),
        }
    }
}
