//! A UDP relay for the tunnel tests: a path between two endpoints that can go away, and that
//! shows how large the datagrams on it are.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::loopback;

/// A UDP relay in front of a tunnel endpoint: what a dialer sends to `addr` goes to the
/// endpoint and back to the dialer, recording the largest datagram each way.
pub(super) struct Relay {
    pub(super) addr: SocketAddr,
    sockets: Option<(tokio::net::UdpSocket, tokio::net::UdpSocket)>,
    /// Dialer to endpoint, and back.
    largest: Arc<[AtomicUsize; 2]>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    /// Binds the relay's sockets; [`Relay::forward_to`] starts it.
    pub(super) fn bind() -> Relay {
        let (front, flow) = (relay_socket(), relay_socket());
        let addr = front.local_addr().unwrap();
        Relay { addr, sockets: Some((front, flow)), largest: Arc::default(), task: None }
    }

    /// Relays between the dialer and the endpoint at `to` until dropped.
    pub(super) fn forward_to(&mut self, to: SocketAddr) {
        let (front, flow) = self.sockets.take().expect("started once");
        let seen = self.largest.clone();
        self.task = Some(tokio::spawn(async move {
            let (mut up, mut down, mut dialer) = (vec![0u8; 65_536], vec![0u8; 65_536], None);
            loop {
                tokio::select! {
                    Ok((n, from)) = front.recv_from(&mut up) => {
                        dialer = Some(from);
                        seen[0].fetch_max(n, Ordering::Relaxed);
                        let _ = flow.send_to(&up[..n], to).await;
                    }
                    Ok((n, _)) = flow.recv_from(&mut down) => {
                        seen[1].fetch_max(n, Ordering::Relaxed);
                        if let Some(dialer) = dialer {
                            let _ = front.send_to(&down[..n], dialer).await;
                        }
                    }
                }
            }
        }));
    }

    /// The largest datagrams so far: dialer to endpoint, and back.
    pub(super) fn largest(&self) -> (usize, usize) {
        (self.largest[0].load(Ordering::Relaxed), self.largest[1].load(Ordering::Relaxed))
    }
}

/// A loopback UDP socket with the tunnel's buffers (the default 208 KiB holds three of the
/// largest datagrams: a burst would be dropped there, which is no path a tunnel runs on).
fn relay_socket() -> tokio::net::UdpSocket {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket.set_recv_buffer_size(4 << 20).unwrap();
    socket.set_send_buffer_size(4 << 20).unwrap();
    socket.set_nonblocking(true).unwrap();
    socket.bind(&loopback().into()).unwrap();
    tokio::net::UdpSocket::from_std(socket.into()).unwrap()
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
