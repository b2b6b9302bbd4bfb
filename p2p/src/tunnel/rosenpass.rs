//! Rosenpass in-process: a `CryptoServer` on its own thread (its secrets live in libsodium
//! memory that is not `Send`, and a McEliece operation takes milliseconds we keep off the async
//! driver). The driver feeds it the datagrams whose first byte marks a Rosenpass message and
//! sends what it returns from the tunnel's UDP socket; every exchanged key comes back as a
//! [`RosenpassEvent::Key`] and becomes the peer's WireGuard preshared key.

use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rosenpass::coloring::Secret;
use rosenpass::msgs::MAX_MESSAGE_LEN;
use rosenpass::protocol::{CryptoServer, PeerPtr, PollResult, SPk, SSk, SymKey};
use tokio::sync::mpsc;

use super::TunnelError;
use super::keys::RosenpassKeys;

/// Stack for threads that touch Rosenpass: a McEliece public key is built on the stack (a
/// 512 KiB array, more than once in unoptimised builds) and liboqs' key generation uses more.
pub(crate) const ROSENPASS_STACK: usize = 64 << 20;

/// Runs `work` on a thread with [`ROSENPASS_STACK`] and waits for it.
pub(crate) fn on_big_stack<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("rosenpass-keys".into())
            .stack_size(ROSENPASS_STACK)
            .spawn_scoped(scope, work)
            .expect("spawning a thread")
            .join()
            .expect("rosenpass work panicked")
    })
}

/// First bytes of Rosenpass messages (InitHello .. CookieReply).
pub(crate) const MESSAGE_TYPES: std::ops::RangeInclusive<u8> = 0x81..=0x86;

/// Work for the Rosenpass thread.
pub(crate) enum Inbound {
    /// A datagram that arrived.
    Message { data: Vec<u8>, from: SocketAddr },
    /// Start an exchange with the peer of this tunnel number now.
    Initiate(usize),
    /// A peer added while the tunnel runs ([`super::Tunnel::add_peer`]), and where to say
    /// whether Rosenpass took it.
    AddPeer { peer: RosenpassPeer, reply: tokio::sync::oneshot::Sender<Result<(), String>> },
}

/// Where a Rosenpass message goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Destination {
    /// A configured peer (by the tunnel's peer number): an initiation or retransmission.
    Peer(usize),
    /// The sender of the message being answered.
    Addr(SocketAddr),
}

/// What the Rosenpass thread asks the driver to do.
pub(crate) enum RosenpassEvent {
    /// Send a message.
    Send { to: Destination, data: Vec<u8> },
    /// Use `key` as the peer's WireGuard preshared key: `exchanged` for a key both sides
    /// derived, otherwise a random key replacing one that went stale.
    Key { peer: usize, key: [u8; 32], exchanged: bool },
}

/// A peer for the Rosenpass thread.
pub(crate) struct RosenpassPeer {
    /// The tunnel's number for the peer.
    pub number: usize,
    /// Its Rosenpass public key.
    pub public: Vec<u8>,
    /// Whether this side starts exchanges. Rosenpass has no tie-break for two handshakes
    /// started at once: each side may end up with the key of a different one (see the comment
    /// in its `handle_init_conf`), which WireGuard would only notice as failing handshakes until
    /// the next rekey. So only one side of each pair initiates; the other answers.
    pub initiate: bool,
}

/// Messages waiting for the Rosenpass thread; more are dropped (and counted).
const INBOX: usize = 256;

/// Starts the Rosenpass thread for `peers`. It stops when the returned sender is dropped.
pub(crate) fn spawn(
    keys: &RosenpassKeys,
    peers: Vec<RosenpassPeer>,
    events: mpsc::UnboundedSender<RosenpassEvent>,
) -> Result<std_mpsc::SyncSender<Inbound>, TunnelError> {
    let (inbound, inbox) = std_mpsc::sync_channel::<Inbound>(INBOX);
    let (started, start_result) = std_mpsc::channel::<Result<(), TunnelError>>();
    let (secret, public) = (keys.secret.clone(), keys.public.clone());
    std::thread::Builder::new()
        .name("rosenpass".into())
        .stack_size(ROSENPASS_STACK)
        .spawn(move || {
            let server = match new_server(&secret, &public, &peers) {
                Ok(server) => {
                    let _ = started.send(Ok(()));
                    server
                }
                Err(err) => {
                    let _ = started.send(Err(err));
                    return;
                }
            };
            run(server, peers, inbox, events);
        })
        .map_err(|err| TunnelError::Io(format!("rosenpass thread: {err}")))?;
    start_result.recv().map_err(|_| TunnelError::Rosenpass("thread exited at start".into()))??;
    Ok(inbound)
}

fn new_server(secret: &[u8], public: &[u8], peers: &[RosenpassPeer]) -> Result<CryptoServer, TunnelError> {
    let error = |err: anyhow::Error| TunnelError::Rosenpass(format!("{err:#}"));
    rosenpass::sodium::sodium_init().map_err(error)?;
    let mut server = CryptoServer::new(SSk::from_slice(secret), SPk::from_slice(public));
    for peer in peers {
        server.add_peer(None, SPk::from_slice(&peer.public)).map_err(error)?;
    }
    Ok(server)
}

fn run(
    mut server: CryptoServer,
    mut peers: Vec<RosenpassPeer>,
    inbox: std_mpsc::Receiver<Inbound>,
    events: mpsc::UnboundedSender<RosenpassEvent>,
) {
    // Rosenpass numbers its peers in the order they were added; `numbers` maps them to ours.
    let mut numbers: Vec<usize> = peers.iter().map(|peer| peer.number).collect();
    let mut tx = vec![0u8; MAX_MESSAGE_LEN];
    let send = |to: Destination, data: &[u8]| events.send(RosenpassEvent::Send { to, data: data.to_vec() });
    loop {
        let polled = match server.poll() {
            Ok(polled) => polled,
            Err(err) => {
                tracing::warn!(error = %err, "rosenpass poll failed");
                PollResult::Sleep(1.0)
            }
        };
        let sent = match polled {
            // Rosenpass asks once and then waits for the peer to start the exchange.
            PollResult::SendInitiation(peer) if !peers[peer.0].initiate => Ok(Ok(())),
            PollResult::SendInitiation(peer) => server
                .initiate_handshake(peer, &mut tx)
                .map(|len| send(Destination::Peer(numbers[peer.0]), &tx[..len])),
            PollResult::SendRetransmission(peer) => server
                .retransmit_handshake(peer, &mut tx)
                .map(|len| send(Destination::Peer(numbers[peer.0]), &tx[..len])),
            PollResult::DeleteKey(PeerPtr(peer)) => {
                let key = *SymKey::random().secret();
                Ok(events.send(RosenpassEvent::Key { peer: numbers[peer], key, exchanged: false }))
            }
            PollResult::Sleep(seconds) => {
                let wait = Duration::from_secs_f64(seconds.clamp(0.0, 3600.0));
                match inbox.recv_timeout(wait) {
                    Ok(Inbound::Message { data, from }) => {
                        handle(&mut server, &numbers, &data, from, &mut tx, &events)
                    }
                    Ok(Inbound::Initiate(number)) => match numbers.iter().position(|&n| n == number) {
                        Some(index) => server
                            .initiate_handshake(PeerPtr(index), &mut tx)
                            .map(|len| send(Destination::Peer(number), &tx[..len])),
                        None => Ok(Ok(())),
                    },
                    Ok(Inbound::AddPeer { peer, reply }) => {
                        let added = server.add_peer(None, SPk::from_slice(&peer.public)).map(|_| {
                            numbers.push(peer.number);
                            peers.push(peer);
                        });
                        let _ = reply.send(added.map_err(|err| format!("{err:#}")));
                        Ok(Ok(()))
                    }
                    Err(std_mpsc::RecvTimeoutError::Timeout) => Ok(Ok(())),
                    Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        };
        match sent {
            Ok(Ok(())) => {}
            // The driver is gone.
            Ok(Err(_)) => return,
            Err(err) => tracing::debug!(error = %err, "rosenpass message not sent"),
        }
    }
}

type Sent = Result<(), mpsc::error::SendError<RosenpassEvent>>;

fn handle(
    server: &mut CryptoServer,
    numbers: &[usize],
    data: &[u8],
    from: SocketAddr,
    tx: &mut [u8],
    events: &mpsc::UnboundedSender<RosenpassEvent>,
) -> anyhow::Result<Sent> {
    let result = match server.handle_msg(data, tx) {
        Ok(result) => result,
        Err(err) => {
            // Forged, replayed or misdirected: answered with nothing.
            tracing::debug!(%from, error = %err, "rosenpass message refused");
            return Ok(Ok(()));
        }
    };
    if let Some(len) = result.resp {
        let to = Destination::Addr(from);
        if let Err(err) = events.send(RosenpassEvent::Send { to, data: tx[..len].to_vec() }) {
            return Ok(Err(err));
        }
    }
    if let Some(peer) = result.exchanged_with {
        let key: Secret<32> = server.osk(peer)?;
        return Ok(events.send(RosenpassEvent::Key {
            peer: numbers[peer.0],
            key: *key.secret(),
            exchanged: true,
        }));
    }
    Ok(Ok(()))
}
