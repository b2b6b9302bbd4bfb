//! The swarm's event loop: it owns the swarm and serves the handles' commands.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, allow_block_list, identify, kad};
use pyralog_consensus::driver::{NetError, NetEvent};
use pyralog_consensus::vote::Evidence;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::behaviour::{Behaviour, BehaviourEvent, Topic, protocol_version};
use crate::codec::{Request, Response, fit_blocks};
use crate::config::P2pConfig;
use crate::identity::public_key;
use crate::{Gossip, QueryRequest, Status, Traffic};

/// What the handles ask of the loop.
pub(crate) enum Command {
    Publish(Topic, Vec<u8>),
    Request {
        /// `None`: any connected peer, in turn.
        peer: Option<PeerId>,
        request: Request,
        reply: AnswerTo,
    },
    /// Fire and forget (a direct consensus message).
    Send(PeerId, Request),
    Report(PeerId, String),
    /// Who may publish consensus messages from now on.
    SetValidators(HashSet<PeerId>),
    Status(oneshot::Sender<Status>),
}

/// Where the answer to a request goes, with the peer that gave it.
pub(crate) type AnswerTo = oneshot::Sender<Result<(PeerId, Response), NetError>>;

/// How long a transaction may wait for others to share its gossip message.
const TX_BATCH_INTERVAL: Duration = Duration::from_millis(20);

type PendingAnswer = Pin<Box<dyn Future<Output = (ResponseChannel<Response>, Response)> + Send>>;

/// Where the loop delivers what it receives.
pub(crate) struct Outputs {
    pub(crate) events: mpsc::Sender<NetEvent>,
    pub(crate) queries: mpsc::Sender<QueryRequest>,
    pub(crate) checkpoints: mpsc::Sender<Gossip>,
}

pub(crate) struct Service {
    swarm: Swarm<Behaviour>,
    config: P2pConfig,
    outputs: Outputs,
    /// Who may publish consensus messages.
    validators: HashSet<PeerId>,
    /// Bootstrap peers and their addresses.
    bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Addresses peers announced (identify) or the DHT found.
    book: HashMap<PeerId, Vec<Multiaddr>>,
    connected: HashMap<PeerId, usize>,
    faults: HashMap<PeerId, u32>,
    bans: HashMap<PeerId, Instant>,
    /// Connections refused because their peer is banned.
    refused_banned: u64,
    /// Gossip published and received, per topic in [`Topic::ALL`]'s order.
    traffic: [Traffic; Topic::ALL.len()],
    /// Bans imposed since start.
    bans_imposed: u64,
    requests: HashMap<OutboundRequestId, AnswerTo>,
    answers: FuturesUnordered<PendingAnswer>,
    /// Transactions waiting to be gossiped as one message.
    tx_batch: Vec<Vec<u8>>,
    tx_batch_bytes: usize,
    /// The next peer to ask when any will do.
    turn: usize,
    ticks: u64,
}

impl Service {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        config: P2pConfig,
        outputs: Outputs,
        bootstrap: Vec<(PeerId, Multiaddr)>,
    ) -> Self {
        Service {
            swarm,
            config,
            outputs,
            validators: HashSet::new(),
            bootstrap,
            book: HashMap::new(),
            connected: HashMap::new(),
            faults: HashMap::new(),
            bans: HashMap::new(),
            refused_banned: 0,
            traffic: Default::default(),
            bans_imposed: 0,
            requests: HashMap::new(),
            answers: FuturesUnordered::new(),
            tx_batch: Vec::new(),
            tx_batch_bytes: 0,
            turn: 0,
            ticks: 0,
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut maintenance = tokio::time::interval(self.config.maintenance_interval);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tx_flush = tokio::time::interval(TX_BATCH_INTERVAL);
        tx_flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                event = self.swarm.select_next_some() => self.on_swarm(event),
                Some((channel, response)) = self.answers.next(), if !self.answers.is_empty() => {
                    let _ = self.swarm.behaviour_mut().rpc.send_response(channel, response);
                }
                _ = maintenance.tick() => self.maintain(),
                _ = tx_flush.tick(), if !self.tx_batch.is_empty() => self.flush_txs(),
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish(Topic::Txs, tx) => {
                // Transactions travel in batches: every gossip message costs a signature and a
                // verification per copy, which at 1,000 tx/s would starve consensus.
                if self.tx_batch_bytes + tx.len() + 8 > self.config.max_message_bytes / 2 {
                    self.flush_txs();
                }
                self.tx_batch_bytes += tx.len() + 8;
                self.tx_batch.push(tx);
            }
            Command::Publish(topic, bytes) => self.publish(topic, bytes),
            Command::Request { peer, request, reply } => {
                let Some(peer) = peer.or_else(|| self.next_peer()) else {
                    let _ = reply.send(Err(NetError("no connected peer".into())));
                    return;
                };
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, request);
                self.requests.insert(id, reply);
            }
            Command::Send(peer, request) => {
                self.swarm.behaviour_mut().rpc.send_request(&peer, request);
            }
            Command::Report(peer, reason) => self.fault(peer, &reason),
            Command::SetValidators(validators) => self.set_validators(validators),
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn publish(&mut self, topic: Topic, bytes: Vec<u8>) {
        let len = bytes.len() as u64;
        let ident = topic.ident(&self.config.chain_id);
        match self.swarm.behaviour_mut().gossip.publish(ident, bytes) {
            Ok(_) => {
                let traffic = &mut self.traffic[topic as usize];
                traffic.messages_out += 1;
                traffic.bytes_out += len;
            }
            // No peer yet (at start) or a full send queue: consensus re-sends on its own.
            Err(err) => tracing::debug!(%err, "gossip publish failed"),
        }
    }

    fn flush_txs(&mut self) {
        let batch = std::mem::take(&mut self.tx_batch);
        self.tx_batch_bytes = 0;
        let bytes = postcard::to_stdvec(&batch).expect("a batch of byte strings serializes");
        self.publish(Topic::Txs, bytes);
    }

    fn status(&self) -> Status {
        let consensus = Topic::Consensus.ident(&self.config.chain_id).hash();
        let mut connected: Vec<PeerId> = self.connected.keys().copied().collect();
        connected.sort();
        let mut banned: Vec<PeerId> = self.bans.keys().copied().collect();
        banned.sort();
        Status {
            peer_id: *self.swarm.local_peer_id(),
            listen_addrs: self.swarm.listeners().cloned().collect(),
            connected,
            banned,
            refused_banned: self.refused_banned,
            gossip: Topic::ALL.into_iter().map(|t| (t, self.traffic[t as usize])).collect(),
            bans: self.bans_imposed,
            consensus_peers: self
                .swarm
                .behaviour()
                .gossip
                .all_peers()
                .filter(|(_, topics)| topics.contains(&&consensus))
                .count(),
        }
    }

    /// Connected peers in turn, validators first (they have the blocks).
    fn next_peer(&mut self) -> Option<PeerId> {
        let mut peers: Vec<PeerId> = self.connected.keys().copied().collect();
        if peers.is_empty() {
            return None;
        }
        peers.sort_by_key(|p| (!self.validators.contains(p), *p));
        self.turn = self.turn.wrapping_add(1);
        Some(peers[self.turn % peers.len()])
    }

    fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(event)) => self.on_rpc(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info.protocol_version != protocol_version(&self.config.chain_id) {
                    tracing::info!(peer = %peer_id, version = %info.protocol_version, "peer of another chain; disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                for addr in &info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr.clone());
                }
                self.book.insert(peer_id, info.listen_addrs);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                ..
            })) => {
                let known = self.book.entry(peer).or_default();
                for addr in addresses.iter() {
                    if !known.contains(addr) {
                        known.push(addr.clone());
                    }
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                *self.connected.entry(peer_id).or_default() += 1;
                tracing::debug!(peer = %peer_id, "connected");
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, .. } => {
                if num_established == 0 {
                    self.connected.remove(&peer_id);
                    tracing::debug!(peer = %peer_id, "disconnected");
                } else {
                    self.connected.insert(peer_id, num_established as usize);
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, "listening"),
            SwarmEvent::IncomingConnectionError { error: ListenError::Denied { cause }, peer_id, .. }
                if cause.downcast_ref::<allow_block_list::Blocked>().is_some() =>
            {
                self.refused_banned += 1;
                tracing::debug!(peer = ?peer_id, "connection of a banned peer refused");
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message { propagation_source, message_id, message } = event else {
            return;
        };
        let chain = &self.config.chain_id;
        // The topic is identified once: it is counted, then decides how the message is checked.
        let topic = Topic::ALL.into_iter().find(|t| t.ident(chain).hash() == message.topic);
        if let Some(topic) = topic {
            let traffic = &mut self.traffic[topic as usize];
            traffic.messages_in += 1;
            traffic.bytes_in += message.data.len() as u64;
        }
        let author = message.source.as_ref().and_then(public_key);
        let verdict = match topic {
            Some(Topic::Consensus) => match author {
                Some(from)
                    if self.config.open_consensus
                        || message.source.as_ref().is_some_and(|s| self.validators.contains(s)) =>
                {
                    deliver(&self.outputs.events, NetEvent::Message { from, bytes: message.data });
                    MessageAcceptance::Accept
                }
                _ => MessageAcceptance::Reject,
            },
            // A batch; the app checks each transaction (check_tx) as it queues it.
            Some(Topic::Txs) => match postcard::from_bytes::<Vec<Vec<u8>>>(&message.data) {
                Ok(batch) => {
                    for tx in batch {
                        deliver(&self.outputs.events, NetEvent::Transaction(tx));
                    }
                    MessageAcceptance::Accept
                }
                Err(_) => MessageAcceptance::Reject,
            },
            Some(Topic::Evidence) => {
                // Only evidence that proves an equivocation on this chain is accepted, and so
                // forwarded: a relay that passes on anything else is itself at fault, and honest
                // relays never do. The driver checks the rest (heights, who was a validator).
                let decoded = postcard::from_bytes::<Evidence>(&message.data)
                    .ok()
                    .filter(|evidence| evidence.chain_id() == chain.as_str() && evidence.verify());
                match (public_key(&propagation_source), decoded) {
                    (Some(from), Some(evidence)) => {
                        deliver(
                            &self.outputs.events,
                            NetEvent::Evidence { from, evidence: Box::new(evidence) },
                        );
                        MessageAcceptance::Accept
                    }
                    _ => MessageAcceptance::Reject,
                }
            }
            Some(Topic::Checkpoints) => match author {
                Some(from) => {
                    let _ = self.outputs.checkpoints.try_send(Gossip { from, bytes: message.data });
                    MessageAcceptance::Accept
                }
                None => MessageAcceptance::Reject,
            },
            None => MessageAcceptance::Ignore,
        };
        if matches!(verdict, MessageAcceptance::Reject) {
            self.fault(
                propagation_source,
                "invalid gossip (consensus from a non-validator, a garbled batch, or evidence that proves nothing)",
            );
        }
        self.swarm.behaviour_mut().gossip.report_message_validation_result(
            &message_id,
            &propagation_source,
            verdict,
        );
    }

    fn on_rpc(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.on_request(peer, request, channel)
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.requests.remove(&request_id) {
                        let _ = reply.send(Ok((peer, response)));
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                if let request_response::OutboundFailure::Io(err) = &error
                    && err.kind() == std::io::ErrorKind::InvalidData
                {
                    self.fault(peer, &format!("invalid response: {err}"));
                }
                if let Some(reply) = self.requests.remove(&request_id) {
                    let _ = reply.send(Err(NetError(format!("{peer}: {error}"))));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                if let request_response::InboundFailure::Io(err) = &error
                    && err.kind() == std::io::ErrorKind::InvalidData
                {
                    self.fault(peer, &format!("invalid request: {err}"));
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request(&mut self, peer: PeerId, request: Request, channel: ResponseChannel<Response>) {
        let rpc = &mut self.swarm.behaviour_mut().rpc;
        match request {
            Request::Consensus(bytes) => {
                let response = match public_key(&peer) {
                    Some(from) if self.config.open_consensus || self.validators.contains(&peer) => {
                        deliver(&self.outputs.events, NetEvent::Message { from, bytes });
                        Response::Ack
                    }
                    _ => Response::Refused("not a validator".into()),
                };
                let _ = rpc.send_response(channel, response);
            }
            Request::Blocks { from_height, max } => {
                let (reply, answer) = oneshot::channel();
                if self
                    .outputs
                    .events
                    .try_send(NetEvent::BlocksRequested { from_height, max, reply })
                    .is_err()
                {
                    let _ = rpc.send_response(channel, Response::Refused("busy".into()));
                    return;
                }
                let cap = self.config.max_response_bytes;
                self.answers.push(Box::pin(async move {
                    let response = match tokio::time::timeout(Duration::from_secs(5), answer).await {
                        Ok(Ok(blocks)) => Response::Blocks(fit_blocks(blocks, cap)),
                        _ => Response::Refused("no answer".into()),
                    };
                    (channel, response)
                }));
            }
            Request::Query { path, data } => {
                let Some(from) = public_key(&peer) else {
                    let _ = rpc.send_response(channel, Response::Refused("unknown key type".into()));
                    return;
                };
                let (reply, answer) = oneshot::channel();
                let query = QueryRequest { from, path, data, reply };
                if self.outputs.queries.try_send(query).is_err() {
                    let _ = rpc.send_response(channel, Response::Refused("no query handler".into()));
                    return;
                }
                self.answers.push(Box::pin(async move {
                    let response = match tokio::time::timeout(Duration::from_secs(10), answer).await {
                        Ok(Ok(Ok(answer))) => Response::Answer(answer),
                        Ok(Ok(Err(reason))) => Response::Refused(reason),
                        _ => Response::Refused("no answer".into()),
                    };
                    (channel, response)
                }));
            }
        }
    }

    /// Replaces the validators; they are each other's explicit gossip peers.
    pub(crate) fn set_validators(&mut self, validators: HashSet<PeerId>) {
        let local = *self.swarm.local_peer_id();
        let gossip = &mut self.swarm.behaviour_mut().gossip;
        for gone in self.validators.difference(&validators) {
            gossip.remove_explicit_peer(gone);
        }
        for new in validators.difference(&self.validators).filter(|p| **p != local) {
            gossip.add_explicit_peer(new);
        }
        self.validators = validators;
    }

    /// Counts an invalid message against `peer`; past the limit it is banned for a while.
    fn fault(&mut self, peer: PeerId, reason: &str) {
        let count = self.faults.entry(peer).or_default();
        *count += 1;
        tracing::warn!(%peer, faults = *count, reason, "peer sent invalid data");
        if *count >= self.config.faults_before_ban && !self.bans.contains_key(&peer) {
            tracing::warn!(%peer, for_secs = self.config.ban_duration.as_secs(), "peer banned");
            self.bans.insert(peer, Instant::now() + self.config.ban_duration);
            self.bans_imposed += 1;
            self.swarm.behaviour_mut().banned.block_peer(peer);
        }
    }

    /// Lifts expired bans and redials bootstrap peers and validators that are not connected.
    fn maintain(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> =
            self.bans.iter().filter(|(_, until)| **until <= now).map(|(p, _)| *p).collect();
        for peer in expired {
            self.bans.remove(&peer);
            self.faults.remove(&peer);
            self.swarm.behaviour_mut().banned.unblock_peer(peer);
            tracing::info!(%peer, "ban lifted");
        }
        let mut wanted: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
        for (peer, addr) in &self.bootstrap {
            wanted.entry(*peer).or_default().push(addr.clone());
        }
        for peer in &self.validators {
            if let Some(addrs) = self.book.get(peer) {
                wanted.entry(*peer).or_default().extend(addrs.iter().cloned());
            }
        }
        let local = *self.swarm.local_peer_id();
        for (peer, addrs) in wanted {
            if peer == local || self.connected.contains_key(&peer) || self.bans.contains_key(&peer) {
                continue;
            }
            let dial = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(err) = self.swarm.dial(dial) {
                tracing::debug!(%peer, %err, "dial");
            }
        }
        self.ticks += 1;
        // Walk the DHT to find peers the bootstrap list does not name (a restarted validator
        // on new ports, say): often while a validator is missing, rarely otherwise.
        let missing = self.validators.iter().any(|p| *p != local && !self.connected.contains_key(p));
        let every = if missing { 3 } else { 60 };
        if self.ticks % every == 1 {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        }
    }
}

/// Hands an event to the driver; when it is behind, the event is dropped (consensus re-sends).
fn deliver(events: &mpsc::Sender<NetEvent>, event: NetEvent) {
    if let Err(mpsc::error::TrySendError::Full(_)) = events.try_send(event) {
        tracing::warn!("consensus inbox full; message dropped");
    }
}
