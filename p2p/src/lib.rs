//! The Pyralog Network overlay on libp2p.
//!
//! One [`Overlay`] per node: TCP and QUIC transports, Noise (TCP) and TLS (QUIC) sessions
//! authenticated by the node's ed25519 key, Yamux streams, identify (peers of another chain are
//! dropped), ping, Kademlia discovery from bootstrap peers, gossipsub topics (consensus,
//! transactions, checkpoints) and one request-response protocol (direct consensus messages,
//! block sync, app queries). Frames and gossip messages are capped in size; a peer that sends
//! invalid data (undecodable or oversized frames, consensus gossip from a non-validator, blocks
//! that do not verify) is scored down and banned for a while.
//!
//! [`P2pHandle`] implements the consensus driver's [`ConsensusNet`]; the driver's inbox is
//! [`Inbox::events`].
//!
//! [`tunnel`] is the other link layer: WireGuard + Rosenpass tunnels between the members of
//! one cluster, which carry its Raft traffic.

mod behaviour;
mod codec;
mod config;
mod identity;
mod service;
pub mod tunnel;

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, noise, tcp, yamux};
use pyralog_consensus::driver::{ConsensusNet, FetchedBlocks, NetError, NetEvent};
use pyralog_consensus::vote::Evidence;
use pyralog_crypto::{Keypair, PublicKey};
use tokio::sync::{mpsc, oneshot};

pub use behaviour::Topic;
pub use codec::{FrameCodec, Request, Response};
pub use config::P2pConfig;
pub use identity::{libp2p_keypair, peer_id, public_key};
pub use libp2p;

use behaviour::Behaviour;
use service::{Command, Outputs, Service};

/// Why the overlay could not start.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// A setting is unusable.
    #[error("p2p config: {0}")]
    Config(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The transport could not be built.
    #[error("p2p transport: {0}")]
    Transport(String),
}

/// A message gossiped on a topic other than consensus and transactions.
#[derive(Debug, Clone)]
pub struct Gossip {
    /// Its author (gossipsub checks the author's signature).
    pub from: PublicKey,
    /// The payload.
    pub bytes: Vec<u8>,
}

/// An app query from a peer; answer on `reply` (an `Err` is sent back as a refusal).
#[derive(Debug)]
pub struct QueryRequest {
    /// The asking peer.
    pub from: PublicKey,
    /// Which query.
    pub path: String,
    /// Its argument.
    pub data: Vec<u8>,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Vec<u8>, String>>,
}

/// What the overlay looks like from inside.
#[derive(Debug, Clone)]
pub struct Status {
    /// This node.
    pub peer_id: PeerId,
    /// Where it listens.
    pub listen_addrs: Vec<Multiaddr>,
    /// Connected peers.
    pub connected: Vec<PeerId>,
    /// Banned peers.
    pub banned: Vec<PeerId>,
    /// Incoming connections refused because their peer was banned (since start).
    pub refused_banned: u64,
    /// Peers subscribed to the consensus topic.
    pub consensus_peers: usize,
    /// Gossip this node published and received, per topic (since start).
    pub gossip: Vec<(Topic, Traffic)>,
    /// Bans imposed (since start; `banned` lists those in force).
    pub bans: u64,
}

/// Gossip messages and their payload bytes, one way and the other (messages this node
/// published; messages delivered to it, each once however many peers relayed it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages received.
    pub messages_in: u64,
    /// Their payload bytes.
    pub bytes_in: u64,
    /// Messages published.
    pub messages_out: u64,
    /// Their payload bytes.
    pub bytes_out: u64,
}

/// A running overlay. Dropping it stops the node's networking (its connections close).
pub struct Overlay {
    /// Commands into the overlay; clone freely.
    pub handle: P2pHandle,
    task: tokio::task::JoinHandle<()>,
}

/// What the overlay receives, for whoever consumes it.
pub struct Inbox {
    /// Consensus messages, block requests and transactions: the driver's inbox.
    pub events: mpsc::Receiver<NetEvent>,
    /// App queries from peers (refused once this receiver is dropped or full).
    pub queries: mpsc::Receiver<QueryRequest>,
    /// Checkpoint gossip.
    pub checkpoints: mpsc::Receiver<Gossip>,
}

impl Drop for Overlay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Overlay {
    /// Starts the overlay of `key` with `config`; returns once every listen address is bound.
    pub async fn start(key: &Keypair, config: P2pConfig) -> Result<(Overlay, Inbox), P2pError> {
        let identity = libp2p_keypair(key);
        let bootstrap = config
            .bootstrap
            .iter()
            .map(|addr| match addr.iter().last() {
                Some(Protocol::P2p(peer)) => Ok((peer, addr.clone())),
                _ => {
                    Err(P2pError::Config(format!("bootstrap address {addr} does not end in /p2p/<peer id>")))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let behaviour = Behaviour::new(&identity, &config)?;
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .map_err(|e| P2pError::Transport(e.to_string()))?
            .with_quic()
            .with_behaviour(|_| behaviour)
            .map_err(|e| P2pError::Transport(e.to_string()))?
            // Validators stay connected however quiet a moment is.
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
            .build();

        for topic in Topic::ALL {
            swarm
                .behaviour_mut()
                .gossip
                .subscribe(&topic.ident(&config.chain_id))
                .map_err(|e| P2pError::Config(format!("subscribe: {e}")))?;
        }
        let local = *swarm.local_peer_id();
        let mut listeners = HashSet::new();
        for addr in &config.listen {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|e| P2pError::Listen { addr: addr.clone(), reason: e.to_string() })?;
            listeners.insert(id);
        }
        wait_for_listeners(&mut swarm, listeners).await?;
        for (peer, addr) in &bootstrap {
            swarm.behaviour_mut().kad.add_address(peer, addr.clone());
        }

        let (events_tx, events) = mpsc::channel(8192);
        let (queries_tx, queries) = mpsc::channel(256);
        let (checkpoints_tx, checkpoints) = mpsc::channel(1024);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let outputs = Outputs { events: events_tx, queries: queries_tx, checkpoints: checkpoints_tx };
        let validators: HashSet<PeerId> = config.validators.iter().map(peer_id).collect();
        let mut service = Service::new(swarm, config, outputs, bootstrap);
        // Validators exchange every consensus message directly, not through the mesh.
        service.set_validators(validators);
        let task = tokio::spawn(service.run(commands_rx));
        let overlay = Overlay { handle: P2pHandle { commands, local }, task };
        Ok((overlay, Inbox { events, queries, checkpoints }))
    }
}

/// Waits until each listener reports an address (so `status()` can tell the ports picked).
async fn wait_for_listeners(
    swarm: &mut libp2p::Swarm<Behaviour>,
    mut pending: HashSet<libp2p::core::transport::ListenerId>,
) -> Result<(), P2pError> {
    use futures::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !pending.is_empty() {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .map_err(|_| P2pError::Transport("listeners did not come up within 10 s".into()))?;
        match event {
            libp2p::swarm::SwarmEvent::NewListenAddr { listener_id, .. } => {
                pending.remove(&listener_id);
            }
            libp2p::swarm::SwarmEvent::ListenerClosed { addresses, reason, .. } => {
                let addr = addresses.first().cloned().unwrap_or_else(Multiaddr::empty);
                let reason = match reason {
                    Ok(()) => "closed".to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(P2pError::Listen { addr, reason });
            }
            _ => {}
        }
    }
    Ok(())
}

/// A handle on a running [`Overlay`].
#[derive(Debug, Clone)]
pub struct P2pHandle {
    commands: mpsc::UnboundedSender<Command>,
    local: PeerId,
}

impl P2pHandle {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.local
    }

    /// Connected peers, listen addresses, bans.
    pub async fn status(&self) -> Result<Status, NetError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Status(reply));
        answer.await.map_err(|_| stopped())
    }

    /// Gossips `bytes` on `topic`. On [`Topic::Txs`], `bytes` is one transaction: they are
    /// gossiped in batches (every 20 ms, or sooner when a batch reaches half the message cap).
    pub fn publish(&self, topic: Topic, bytes: Vec<u8>) {
        self.send(Command::Publish(topic, bytes));
    }

    /// Sends `request` to `peer` (any connected peer, in turn, if `None`) and waits for the
    /// answer and who gave it.
    pub async fn request(
        &self,
        peer: Option<PeerId>,
        request: Request,
    ) -> Result<(PeerId, Response), NetError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request { peer, request, reply });
        answer.await.map_err(|_| stopped())?
    }

    /// Asks `peer` the app query `path` with `data`.
    pub async fn query(&self, peer: &PublicKey, path: &str, data: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let request = Request::Query { path: path.to_string(), data };
        match self.request(Some(peer_id(peer)), request).await? {
            (_, Response::Answer(answer)) => Ok(answer),
            (_, Response::Refused(reason)) => Err(NetError(format!("refused: {reason}"))),
            (_, other) => Err(NetError(format!("unexpected answer {other:?}"))),
        }
    }

    fn send(&self, command: Command) {
        // The loop only ends when the overlay is dropped; commands after that go nowhere.
        let _ = self.commands.send(command);
    }
}

fn stopped() -> NetError {
    NetError("the overlay has stopped".into())
}

impl ConsensusNet for P2pHandle {
    fn broadcast(&self, bytes: Vec<u8>) {
        self.publish(Topic::Consensus, bytes);
    }

    fn send_to(&self, to: PublicKey, bytes: Vec<u8>) {
        self.send(Command::Send(peer_id(&to), Request::Consensus(bytes)));
    }

    fn fetch_blocks(
        &self,
        from_height: u64,
        max: u32,
    ) -> impl Future<Output = Result<FetchedBlocks, NetError>> + Send + 'static {
        let handle = self.clone();
        async move {
            match handle.request(None, Request::Blocks { from_height, max }).await? {
                (peer, Response::Blocks(blocks)) => {
                    let from =
                        public_key(&peer).ok_or_else(|| NetError(format!("{peer}: not an ed25519 peer")))?;
                    Ok(FetchedBlocks { from, blocks })
                }
                (peer, Response::Refused(reason)) => Err(NetError(format!("{peer} refused: {reason}"))),
                (peer, other) => Err(NetError(format!("{peer}: unexpected answer {other:?}"))),
            }
        }
    }

    fn gossip_tx(&self, tx: Vec<u8>) {
        self.publish(Topic::Txs, tx);
    }

    fn gossip_evidence(&self, evidence: &Evidence) {
        self.publish(Topic::Evidence, postcard::to_allocvec(evidence).expect("evidence serializes"));
    }

    fn report(&self, peer: PublicKey, reason: String) {
        self.send(Command::Report(peer_id(&peer), reason));
    }

    fn set_validators(&self, keys: Vec<PublicKey>) {
        self.send(Command::SetValidators(keys.iter().map(peer_id).collect()));
    }
}
