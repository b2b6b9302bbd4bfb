//! Latency without netem (this kernel has none): a userspace relay in the clients' namespace
//! that holds every chunk of a TCP stream, and every UDP datagram, for a fixed delay before
//! passing it on. Nodes' cluster traffic is steered through it by nftables DNAT rules in their
//! namespaces ([`Topology::redirect`](super::net::Topology::redirect)); the relay for node `j`
//! listens on [`relay_port`]`(j)` of the clients' address and forwards to node `j`. Plain TCP
//! links and the WireGuard tunnels' UDP both pass through (a tunnel peer roams to the relay's
//! address while the fault lasts and back afterwards, as WireGuard does).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::net::client_ip;

/// The first relay port: node `j`'s relay listens on this + `j` (TCP and UDP); below Linux's
/// ephemeral range (32768-60999), so no client connection of the harness can hold it.
const RELAY_PORT_BASE: u16 = 20_000;
/// Chunks in flight per direction of a TCP connection before reading pauses.
const QUEUE_CHUNKS: usize = 256;

/// The port of node `j`'s relay.
pub fn relay_port(j: usize) -> u16 {
    RELAY_PORT_BASE + j as u16
}

/// The running relays; dropping it stops them and closes every relayed connection.
#[derive(Debug)]
pub struct DelayRelay {
    tasks: JoinSet<()>,
}

impl DelayRelay {
    /// Relays to each of `targets` (node `j` at `targets[j]`), `delay` each way.
    pub async fn start(targets: &[SocketAddr], delay: Duration) -> anyhow::Result<Self> {
        let mut tasks = JoinSet::new();
        for (j, &target) in targets.iter().enumerate() {
            let front = SocketAddr::from((client_ip(), relay_port(j)));
            let listener = TcpListener::bind(front).await?;
            tasks.spawn(relay_tcp(listener, target, delay));
            let socket = UdpSocket::bind(front).await?;
            tasks.spawn(relay_udp(socket, target, delay));
        }
        Ok(DelayRelay { tasks })
    }
}

impl Drop for DelayRelay {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

async fn relay_tcp(listener: TcpListener, target: SocketAddr, delay: Duration) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((inbound, _)) = accepted else {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                connections.spawn(async move {
                    let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(target));
                    let Ok(Ok(outbound)) = connect.await else { return };
                    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    // Either direction ending closes both (dropping the other half).
                    tokio::select! {
                        _ = pipe(in_read, out_write, delay) => {}
                        _ = pipe(out_read, in_write, delay) => {}
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read, in order.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (queue, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if queue.send((Instant::now() + delay, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    // The writer drains what was read before the reader ended.
    tokio::join!(reader, writer);
}

/// One socket faces the nodes that send to `target`; each sender gets its own socket towards
/// `target`, whose datagrams go back to that sender from the facing socket. Each datagram is
/// its own timer, so two sent within a millisecond may swap (as on a real network; WireGuard's
/// replay window takes them in either order).
async fn relay_udp(front: UdpSocket, target: SocketAddr, delay: Duration) {
    let front = Arc::new(front);
    let mut flows: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, sender)) = front.recv_from(&mut buf).await else { continue };
        let flow = match flows.get(&sender) {
            Some(flow) => flow.clone(),
            None => {
                let Ok(socket) = UdpSocket::bind(SocketAddr::from((client_ip(), 0))).await else { continue };
                if socket.connect(target).await.is_err() {
                    continue;
                }
                let socket = Arc::new(socket);
                tasks.spawn(udp_back(socket.clone(), front.clone(), sender, delay));
                flows.insert(sender, socket.clone());
                socket
            }
        };
        let datagram = buf[..n].to_vec();
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = flow.send(&datagram).await;
        });
        while tasks.try_join_next().is_some() {}
    }
}

/// Datagrams `target` sends to a flow's socket, back to the flow's sender, `delay` later.
async fn udp_back(flow: Arc<UdpSocket>, front: Arc<UdpSocket>, sender: SocketAddr, delay: Duration) {
    let mut buf = vec![0u8; 65_536];
    let mut pending = JoinSet::new();
    loop {
        // An error is an ICMP report of an earlier datagram (the node was restarting): go on.
        let Ok(n) = flow.recv(&mut buf).await else { continue };
        let (front, datagram) = (front.clone(), buf[..n].to_vec());
        pending.spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = front.send_to(&datagram, sender).await;
        });
        while pending.try_join_next().is_some() {}
    }
}
