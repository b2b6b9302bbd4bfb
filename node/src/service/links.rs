//! The cluster's node-to-node links: WireGuard + Rosenpass tunnels (the default when a cluster
//! has several members) or plain TCP (one member, or `transport = "tcp"`, which `pyralog
//! testnet --dev` writes).
//!
//! With tunnels, a member's `raft_addr` is its UDP endpoint; Raft streams run over smoltcp TCP
//! to overlay port [`RAFT_TUNNEL_PORT`] inside the tunnel, authenticated by the members'
//! WireGuard keys from the config.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::Context as _;
use pyralog_cluster::transport::{Listener, TcpTransport, Transport};
use pyralog_crypto::keys::write_private_file;
use pyralog_p2p::tunnel::{
    PeerConfig, RosenpassKeys, Tunnel, TunnelConfig, TunnelListener, TunnelStream, WireGuardSecret,
    read_rosenpass_public,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use pyralog_config::{BasePath, Config, LinkTransport};

/// The overlay TCP port Raft listens on inside the tunnel.
pub(crate) const RAFT_TUNNEL_PORT: u16 = 7000;

/// The cluster engine as this node runs it.
pub(crate) type ClusterNode = pyralog_cluster::engine::ClusterNode<Links>;

/// How this node dials its peers.
#[derive(Clone, Debug)]
pub(crate) enum Links {
    /// Plain TCP to each member's `raft_addr`.
    Tcp,
    /// Through the tunnel to the member configured at `raft_addr`.
    Tunnel(Tunnel),
}

/// A stream to or from a peer.
pub(crate) enum LinkStream {
    Tcp(TcpStream),
    Tunnel(TunnelStream),
}

/// Where peers connect.
pub(crate) enum LinkListener {
    Tcp(TcpListener),
    Tunnel(TunnelListener),
}

/// The links, the listener and (with tunnels) the tunnel, from the config.
pub(crate) async fn open(base: &BasePath, config: &Config) -> anyhow::Result<(Links, LinkListener)> {
    let raft_addr = &config.node.raft_addr;
    match config.transport() {
        LinkTransport::Tcp => {
            let listener = TcpListener::bind(raft_addr)
                .await
                .with_context(|| format!("cannot listen on {raft_addr} (raft)"))?;
            Ok((Links::Tcp, LinkListener::Tcp(listener)))
        }
        LinkTransport::Wireguard => {
            let tunnel = Tunnel::bind(tunnel_config(base, config)?)
                .await
                .with_context(|| format!("cannot start the tunnel on {raft_addr} (raft)"))?;
            let listener = tunnel.listen(RAFT_TUNNEL_PORT)?;
            Ok((Links::Tunnel(tunnel), LinkListener::Tunnel(listener)))
        }
    }
}

fn tunnel_config(base: &BasePath, config: &Config) -> anyhow::Result<TunnelConfig> {
    let listen: SocketAddr = config.node.raft_addr.parse().context("node.raft_addr")?;
    if !base.wireguard_key().exists() {
        anyhow::bail!(
            "{} is missing: transport \"wireguard\" needs this node's WireGuard key (pyralog init and \
             pyralog testnet write it), or set node.transport = \"tcp\"",
            base.wireguard_key().display()
        );
    }
    let secret = WireGuardSecret::load(&base.wireguard_key())?;
    let rosenpass = RosenpassKeys::load(&base.rosenpass_secret(), &base.rosenpass_public())?;
    let mut peers = Vec::new();
    for member in config.cluster.members.iter().filter(|m| m.id != config.node.id) {
        let what = || format!("cluster member {}", member.id);
        let public_key = member
            .wireguard_public_key
            .as_deref()
            .with_context(|| format!("{} has no wireguard_public_key", what()))?
            .parse()
            .with_context(what)?;
        let rosenpass_path = member
            .rosenpass_public_key
            .as_ref()
            .with_context(|| format!("{} has no rosenpass_public_key", what()))?;
        let rosenpass_public_key = read_rosenpass_public(&base.0.join(rosenpass_path)).with_context(what)?;
        peers.push(PeerConfig {
            public_key,
            endpoint: Some(member.raft_addr.parse().with_context(|| format!("{}: raft_addr", what()))?),
            rosenpass_public_key: Some(rosenpass_public_key),
            rosenpass_endpoint: None,
        });
    }
    for added in base.load_added_tunnel_peers()? {
        let what = || format!("{}: peer {}", base.added_tunnel_peers().display(), added.wireguard_public_key);
        let public_key = added.wireguard_public_key.parse().with_context(what)?;
        let endpoint: SocketAddr = added.endpoint.parse().with_context(what)?;
        // A founder now, or an address a founder has: config.toml wins.
        if peers.iter().any(|peer| peer.public_key == public_key || peer.endpoint == Some(endpoint)) {
            tracing::warn!(peer = %public_key, %endpoint, "added tunnel peer skipped: config.toml names it or its endpoint");
            continue;
        }
        let rosenpass_public_key = match &added.rosenpass_public_key {
            Some(path) => Some(read_rosenpass_public(&base.0.join(path)).with_context(what)?),
            None => None,
        };
        peers.push(PeerConfig {
            public_key,
            endpoint: Some(endpoint),
            rosenpass_public_key,
            rosenpass_endpoint: None,
        });
    }
    Ok(TunnelConfig { listen, secret, rosenpass: Some(rosenpass), peers, mtu: config.node.tunnel_mtu })
}

impl Links {
    /// The tunnel, when links run through one.
    pub(crate) fn tunnel(&self) -> Option<&Tunnel> {
        match self {
            Links::Tcp => None,
            Links::Tunnel(tunnel) => Some(tunnel),
        }
    }
}

impl Transport for Links {
    type Stream = LinkStream;

    async fn connect(&self, addr: &str) -> io::Result<LinkStream> {
        match self {
            Links::Tcp => TcpTransport.connect(addr).await.map(LinkStream::Tcp),
            Links::Tunnel(tunnel) => {
                let endpoint: SocketAddr = addr.parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("{addr:?} is not an ip:port"))
                })?;
                let peer = tunnel.peer_at(endpoint).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("no tunnel peer is configured at {addr}"))
                })?;
                tunnel.connect(peer, RAFT_TUNNEL_PORT).await.map(LinkStream::Tunnel)
            }
        }
    }
}

impl Listener for LinkListener {
    type Stream = LinkStream;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            LinkListener::Tcp(listener) => listener.local_addr(),
            LinkListener::Tunnel(listener) => Ok(listener.local_addr()),
        }
    }

    async fn accept(&mut self) -> io::Result<LinkStream> {
        match self {
            LinkListener::Tcp(listener) => Listener::accept(listener).await.map(LinkStream::Tcp),
            LinkListener::Tunnel(listener) => listener.accept().await.map(LinkStream::Tunnel),
        }
    }
}

impl AsyncRead for LinkStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LinkStream::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            LinkStream::Tunnel(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for LinkStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            LinkStream::Tcp(stream) => Pin::new(stream).poll_write(cx, data),
            LinkStream::Tunnel(stream) => Pin::new(stream).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LinkStream::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            LinkStream::Tunnel(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            LinkStream::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            LinkStream::Tunnel(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

/// Writes this node's tunnel keys under `base` unless they exist: `wireguard.key` (base64,
/// 0600) and the Rosenpass pair (`rosenpass.secret`, 0600, and `rosenpass.pub`, 524,160 bytes,
/// which every peer needs a copy of). Returns the WireGuard public key.
pub(crate) fn ensure_tunnel_keys(base: &BasePath) -> anyhow::Result<pyralog_p2p::tunnel::WireGuardPublic> {
    let path = base.wireguard_key();
    if !path.exists() {
        let text = format!("{}\n", WireGuardSecret::generate().to_base64());
        write_private_file(&path, text.as_bytes())
            .with_context(|| format!("cannot create {}", path.display()))?;
    }
    let secret = WireGuardSecret::load(&path)?;
    match (base.rosenpass_secret().exists(), base.rosenpass_public().exists()) {
        (false, false) => {
            RosenpassKeys::generate()?.save(&base.rosenpass_secret(), &base.rosenpass_public())?
        }
        (true, true) => {}
        // Regenerating would silently change the node's Rosenpass identity.
        _ => anyhow::bail!(
            "only one of {} and {} exists: restore the other, or remove both to make a new key pair",
            base.rosenpass_secret().display(),
            base.rosenpass_public().display()
        ),
    }
    Ok(secret.public())
}
