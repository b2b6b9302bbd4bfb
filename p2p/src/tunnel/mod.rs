//! Cluster links over WireGuard with Rosenpass preshared keys, in userspace: no root, no TUN.
//!
//! A [`Tunnel`] is one UDP socket per node. WireGuard (boringtun's `Tunn`, one per peer and
//! preshared key) encrypts inner IPv4 packets between overlay addresses derived from the
//! peers' keys ([`WireGuardPublic::overlay_ipv4`]); smoltcp runs TCP over them, so a
//! [`TunnelStream`] is an ordinary async byte stream whose other end is authenticated by key.
//! Because the inner packets are real IPv4/TCP with valid checksums, a kernel WireGuard peer
//! (wireguard-go, the Linux module) can be the other end.
//!
//! Rosenpass (post-quantum key exchange, Classic McEliece + Kyber) runs in-process on the
//! same socket: datagrams starting with 1-4 are WireGuard, 0x81-0x86 Rosenpass. Each key it
//! derives becomes the peer's WireGuard preshared key (responder rekeys every 120 s,
//! initiator every 130 s); a key with no successor for 180 s is replaced by a random one, so
//! the link fails closed. Until the first exchange the preshared key is random. Of each pair,
//! the side with the lower WireGuard public key starts the exchanges (Rosenpass cannot settle
//! two started at once).

mod checksum;
mod device;
mod driver;
#[doc(hidden)]
pub mod fuzzing;
mod keys;
mod mtu;
mod peers;
mod rosenpass;
mod stack;
mod stats;
mod stream;
#[cfg(test)]
mod test_packets;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

pub use keys::{
    ROSENPASS_PUBLIC_KEY_LEN, ROSENPASS_SECRET_KEY_LEN, RosenpassKeys, WireGuardPublic, WireGuardSecret,
    read_rosenpass_public,
};
pub use stats::TunnelStats;
pub use stream::{TunnelListener, TunnelStream};

use driver::{Shared, Wire};
use peers::PeerTable;
use stack::Stack;

/// UDP socket buffers requested (the kernel caps them at `net.core.rmem_max`/`wmem_max`).
const UDP_BUFFER: usize = 4 << 20;

/// Why a tunnel could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// The UDP socket or a key file failed.
    #[error("tunnel i/o: {0}")]
    Io(String),
    /// A key is malformed.
    #[error("bad key: {0}")]
    BadKey(String),
    /// A secret key file cannot be read, is not private, or is not a key file.
    #[error(transparent)]
    KeyFile(#[from] pyralog_crypto::keys::KeyFileError),
    /// The configuration is inconsistent (duplicate peers, colliding overlay addresses).
    #[error("tunnel config: {0}")]
    Config(String),
    /// No peer has this key or address.
    #[error("unknown tunnel peer: {0}")]
    UnknownPeer(String),
    /// The overlay port is taken (or zero).
    #[error("tunnel port {0} is in use")]
    PortInUse(u16),
    /// Rosenpass refused a key or failed to start.
    #[error("rosenpass: {0}")]
    Rosenpass(String),
}

/// One peer of a tunnel.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Its WireGuard public key.
    pub public_key: WireGuardPublic,
    /// Its UDP address; `None` for a peer that only dials in (learned from its first
    /// authenticated datagram).
    pub endpoint: Option<SocketAddr>,
    /// Its Rosenpass public key; with ours set, the WireGuard preshared key comes from
    /// Rosenpass. Without it the link is plain WireGuard (no preshared key).
    pub rosenpass_public_key: Option<Vec<u8>>,
    /// Where its Rosenpass runs, if not on `endpoint` (e.g. the `rosenpass` binary beside a
    /// kernel WireGuard).
    pub rosenpass_endpoint: Option<SocketAddr>,
}

/// A tunnel endpoint's settings.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// The UDP address to bind.
    pub listen: SocketAddr,
    /// This node's WireGuard key.
    pub secret: WireGuardSecret,
    /// This node's Rosenpass keys; `None` runs plain WireGuard.
    pub rosenpass: Option<RosenpassKeys>,
    /// The peers.
    pub peers: Vec<PeerConfig>,
    /// The inner MTU for every peer (as `wg`'s `MTU`), for paths whose route MTU misleads
    /// (a PPPoE or tunnelled uplink); `None` takes each peer's from the kernel's route to its
    /// endpoint (1,420 for a peer whose endpoint is unknown or IPv6). Bounded to 1,280-65,456.
    pub mtu: Option<u16>,
}

/// Owns the driver task: it stops when the last [`Tunnel`], stream or listener is dropped.
pub(crate) struct TunnelHandle {
    shared: Arc<Shared>,
    driver: JoinHandle<()>,
}

impl Drop for TunnelHandle {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A running tunnel endpoint. Cloning shares it.
#[derive(Clone)]
pub struct Tunnel {
    handle: Arc<TunnelHandle>,
}

impl std::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = &self.handle.shared;
        f.debug_struct("Tunnel")
            .field("local", &shared.local)
            .field("public", &shared.public)
            .field("overlay", &shared.overlay)
            .finish()
    }
}

impl Tunnel {
    /// Binds the UDP socket, starts Rosenpass (when configured) and the driver task.
    pub async fn bind(config: TunnelConfig) -> Result<Tunnel, TunnelError> {
        let public = config.secret.public();
        let overlay = public.overlay_ipv4();
        let mut table = PeerTable::new(&config.secret, config.mtu);
        let (mut endpoints, mut rosenpass_keys) = (HashMap::new(), HashMap::new());
        let mut rosenpass_peers = Vec::new();
        for peer in &config.peers {
            let keys = (&mut endpoints, &mut rosenpass_keys);
            let (_, rosenpass_peer) = admit(&mut table, keys, public, config.rosenpass.is_some(), peer)?;
            rosenpass_peers.extend(rosenpass_peer);
        }
        let udp = bind_udp(config.listen)?;
        let local = udp.local_addr().map_err(|err| TunnelError::Io(err.to_string()))?;
        let mut wire = Wire::new(table, endpoints);
        wire.rosenpass_keys = rosenpass_keys;
        // With Rosenpass keys the thread runs even before it has a peer: peers may be added.
        let events = match &config.rosenpass {
            Some(keys) => {
                let (events, receiver) = mpsc::unbounded_channel();
                wire.rosenpass = Some(rosenpass::spawn(keys, rosenpass_peers, events)?);
                Some(receiver)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            stack: Mutex::new(Stack::new(overlay)),
            wire: Mutex::new(wire),
            wake: Notify::new(),
            stats: Default::default(),
            public,
            overlay,
            local,
        });
        let driver = tokio::spawn(driver::drive(shared.clone(), udp, events));
        tracing::info!(%local, %public, %overlay, peers = config.peers.len(), "tunnel up");
        Ok(Tunnel { handle: Arc::new(TunnelHandle { shared, driver }) })
    }

    /// Adds `peer` while the tunnel runs, as `wg set <dev> peer <key> endpoint <addr>` does (with
    /// its Rosenpass key when both sides run Rosenpass). A peer that is already there with the
    /// same endpoint and Rosenpass key changes nothing (`Ok(false)`); the same key with another
    /// endpoint or Rosenpass key, an endpoint, overlay address or Rosenpass key another peer
    /// has, or this node's own key is a [`TunnelError::Config`], and a malformed Rosenpass key
    /// a [`TunnelError::BadKey`]; nothing is added then.
    pub async fn add_peer(&self, peer: PeerConfig) -> Result<bool, TunnelError> {
        let shared = &self.handle.shared;
        let (number, inbox, rosenpass_peer) = {
            let mut wire = shared.wire();
            let uses_rosenpass = wire.rosenpass.is_some();
            if let Some(number) = wire.peers.by_key(&peer.public_key) {
                let key = peer.rosenpass_public_key.as_deref().filter(|_| uses_rosenpass).map(key_digest);
                let known =
                    wire.rosenpass_keys.iter().find(|(_, n)| **n == number).map(|(digest, _)| *digest);
                let configured = wire.peers.peers[number].configured;
                return match configured == peer.endpoint && key == known {
                    true => Ok(false),
                    false => Err(TunnelError::Config(format!(
                        "peer {} is already configured (at {configured:?}) with other settings",
                        peer.public_key
                    ))),
                };
            }
            let Wire { peers, endpoints, rosenpass_keys, rosenpass, .. } = &mut *wire;
            let (number, rosenpass_peer) =
                admit(peers, (endpoints, rosenpass_keys), shared.public, uses_rosenpass, &peer)?;
            (number, rosenpass.clone(), rosenpass_peer)
        };
        if let (Some(inbox), Some(rosenpass_peer)) = (inbox, rosenpass_peer) {
            // Its exchanges start once the Rosenpass thread knows it; until then its datagrams
            // are refused there and retransmitted.
            let stopped = || TunnelError::Rosenpass("the Rosenpass thread has stopped".into());
            let (reply, answer) = tokio::sync::oneshot::channel();
            let add = rosenpass::Inbound::AddPeer { peer: rosenpass_peer, reply };
            // The inbox is bounded (handshakes queue there): wait for room off the async threads.
            tokio::task::spawn_blocking(move || inbox.send(add))
                .await
                .map_err(|err| TunnelError::Rosenpass(err.to_string()))?
                .map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?.map_err(TunnelError::Rosenpass)?;
        }
        tracing::info!(peer = %peer.public_key, number, endpoint = ?peer.endpoint, "tunnel peer added");
        shared.wake.notify_one();
        Ok(true)
    }

    /// The UDP address the tunnel is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.shared.local
    }

    /// This node's WireGuard public key.
    pub fn public_key(&self) -> WireGuardPublic {
        self.handle.shared.public
    }

    /// This node's overlay address.
    pub fn overlay_ipv4(&self) -> Ipv4Addr {
        self.handle.shared.overlay
    }

    /// Whether this node keys its links with Rosenpass (it was given Rosenpass keys).
    pub fn runs_rosenpass(&self) -> bool {
        self.handle.shared.wire().rosenpass.is_some()
    }

    /// The peer configured at UDP address `endpoint`.
    pub fn peer_at(&self, endpoint: SocketAddr) -> Option<WireGuardPublic> {
        let wire = self.handle.shared.wire();
        wire.endpoints.get(&endpoint).map(|&number| wire.peers.peers[number].public)
    }

    /// Opens a stream to `peer`'s overlay `port`.
    pub async fn connect(&self, peer: WireGuardPublic, port: u16) -> std::io::Result<TunnelStream> {
        TunnelStream::connect(self.handle.clone(), peer, port).await
    }

    /// Accepts streams on overlay `port`.
    pub fn listen(&self, port: u16) -> Result<TunnelListener, TunnelError> {
        TunnelListener::new(self.handle.clone(), port)
    }

    /// Sets `peer`'s preshared key, as `wg set <dev> peer <key> preshared-key <file>` does: for
    /// keys from an external Rosenpass (outfile mode). Streams keep flowing: the current
    /// session carries them until one under the new key is up.
    pub fn set_preshared_key(&self, peer: WireGuardPublic, key: [u8; 32]) -> Result<(), TunnelError> {
        let shared = &self.handle.shared;
        let mut wire = shared.wire();
        let number = wire.peers.by_key(&peer).ok_or_else(|| TunnelError::UnknownPeer(peer.to_string()))?;
        wire.peers.rotate(number, key, &shared.stats);
        drop(wire);
        shared.wake.notify_one();
        Ok(())
    }

    /// Counters since the tunnel started.
    pub fn stats(&self) -> TunnelStats {
        self.handle.shared.stats.snapshot()
    }
}

/// A Rosenpass public key's digest (the keys are 524,160 bytes).
fn key_digest(key: &[u8]) -> [u8; 32] {
    *blake3::hash(key).as_bytes()
}

/// Checks `peer` against the peers in `table`, their endpoints and Rosenpass keys (`keys`) and
/// this node (`own`), then adds it; returns its number and, when both sides run Rosenpass
/// (`rosenpass`: this side has keys), what the Rosenpass thread needs. Nothing is added when a
/// check fails.
fn admit(
    table: &mut PeerTable,
    keys: (&mut HashMap<SocketAddr, usize>, &mut HashMap<[u8; 32], usize>),
    own: WireGuardPublic,
    rosenpass: bool,
    peer: &PeerConfig,
) -> Result<(usize, Option<rosenpass::RosenpassPeer>), TunnelError> {
    let (endpoints, rosenpass_keys) = keys;
    let address = peer.public_key.overlay_ipv4();
    let owner = match table.by_overlay(address) {
        Some(number) => Some(table.peers[number].public),
        None => (address == own.overlay_ipv4()).then_some(own),
    };
    if let Some(owner) = owner {
        return Err(TunnelError::Config(if owner == peer.public_key {
            format!("peer {owner} is listed twice (or is this node)")
        } else {
            format!("keys {owner} and {} map to the same overlay address {address}", peer.public_key)
        }));
    }
    if let Some(endpoint) = peer.endpoint
        && endpoints.contains_key(&endpoint)
    {
        return Err(TunnelError::Config(format!("two peers at {endpoint}")));
    }
    // Without Rosenpass on both sides: plain WireGuard. With it: a random key until the first
    // exchange.
    let rosenpass_key = peer.rosenpass_public_key.as_ref().filter(|_| rosenpass);
    let digest = match rosenpass_key {
        Some(key) if key.len() != ROSENPASS_PUBLIC_KEY_LEN => {
            return Err(TunnelError::BadKey(format!(
                "Rosenpass public key of {}: {} bytes, expected {ROSENPASS_PUBLIC_KEY_LEN}",
                peer.public_key,
                key.len()
            )));
        }
        // Rosenpass tells peers apart by their keys: one key, one peer.
        Some(key) => match key_digest(key) {
            digest if rosenpass_keys.contains_key(&digest) => {
                let other = table.peers[rosenpass_keys[&digest]].public;
                let message = format!("peers {other} and {} have the same Rosenpass key", peer.public_key);
                return Err(TunnelError::Config(message));
            }
            digest => Some(digest),
        },
        None => None,
    };
    let psk = rosenpass_key.map(|_| random_key());
    let number = table.add(peer.public_key, peer.endpoint, peer.rosenpass_endpoint, psk, psk.is_some());
    if let Some(endpoint) = peer.endpoint {
        endpoints.insert(endpoint, number);
    }
    if let Some(digest) = digest {
        rosenpass_keys.insert(digest, number);
    }
    let thread_peer = rosenpass_key.map(|key| rosenpass::RosenpassPeer {
        number,
        public: key.clone(),
        initiate: own < peer.public_key,
    });
    Ok((number, thread_peer))
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
    key
}

fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, TunnelError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let io = |err: std::io::Error| TunnelError::Io(format!("udp {addr}: {err}"));
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(io)?;
    // Best effort: a larger buffer absorbs bursts of a TCP window's worth of packets.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER);
    let _ = socket.set_send_buffer_size(UDP_BUFFER);
    socket.set_nonblocking(true).map_err(io)?;
    socket.bind(&addr.into()).map_err(io)?;
    UdpSocket::from_std(socket.into()).map_err(io)
}
