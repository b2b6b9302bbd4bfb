//! Byte streams through the tunnel: smoltcp TCP sockets behind tokio's `AsyncRead` and
//! `AsyncWrite`, and listeners that accept them.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::TunnelHandle;
use super::keys::WireGuardPublic;

/// A TCP stream through the tunnel to one peer. Dropping it closes the connection gracefully.
pub struct TunnelStream {
    tunnel: Arc<TunnelHandle>,
    handle: SocketHandle,
    peer: WireGuardPublic,
}

impl std::fmt::Debug for TunnelStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelStream").field("peer", &self.peer).finish()
    }
}

impl TunnelStream {
    /// Opens a stream to `peer` on overlay `port`, waiting until it is established.
    pub(crate) async fn connect(
        tunnel: Arc<TunnelHandle>,
        peer: WireGuardPublic,
        port: u16,
    ) -> io::Result<Self> {
        let overlay = {
            let wire = tunnel.shared.wire();
            let number = wire.peers.by_key(&peer).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("unknown tunnel peer {peer}"))
            })?;
            wire.peers.peers[number].overlay
        };
        let handle = tunnel.shared.stack().connect(overlay, port)?;
        tunnel.shared.wake.notify_one();
        let stream = TunnelStream { tunnel, handle, peer };
        let started = Instant::now();
        poll_fn(|cx| {
            let mut stack = stream.tunnel.shared.stack();
            let socket = stack.sockets.get_mut::<tcp::Socket>(stream.handle);
            match socket.state() {
                tcp::State::Established | tcp::State::CloseWait => Poll::Ready(Ok(())),
                tcp::State::SynSent | tcp::State::SynReceived => {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                _ => Poll::Ready(Err(if started.elapsed() >= super::stack::STREAM_TIMEOUT {
                    io::Error::new(io::ErrorKind::TimedOut, format!("tunnel connect to {peer} timed out"))
                } else {
                    io::Error::new(io::ErrorKind::ConnectionRefused, format!("{peer} refused port {port}"))
                })),
            }
        })
        .await?;
        Ok(stream)
    }

    /// The authenticated WireGuard key of the other end.
    pub fn peer(&self) -> WireGuardPublic {
        self.peer
    }
}

fn waiting_to_connect(state: tcp::State) -> bool {
    matches!(state, tcp::State::SynSent | tcp::State::SynReceived)
}

impl AsyncRead for TunnelStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let this = self.get_mut();
        let shared = &this.tunnel.shared;
        let mut stack = shared.stack();
        let socket = stack.sockets.get_mut::<tcp::Socket>(this.handle);
        match socket.recv_slice(buf.initialize_unfilled()) {
            Ok(0) => {
                socket.register_recv_waker(cx.waker());
                Poll::Pending
            }
            Ok(read) => {
                buf.advance(read);
                drop(stack);
                // The window opened: let the driver tell the peer.
                shared.wake.notify_one();
                Poll::Ready(Ok(()))
            }
            Err(tcp::RecvError::Finished) => Poll::Ready(Ok(())),
            Err(tcp::RecvError::InvalidState) if waiting_to_connect(socket.state()) => {
                socket.register_recv_waker(cx.waker());
                Poll::Pending
            }
            Err(tcp::RecvError::InvalidState) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::ConnectionReset, "tunnel stream reset")))
            }
        }
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = self.get_mut();
        let shared = &this.tunnel.shared;
        let mut stack = shared.stack();
        if stack.is_shut_down(this.handle) {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "tunnel stream shut down")));
        }
        let socket = stack.sockets.get_mut::<tcp::Socket>(this.handle);
        match socket.send_slice(data) {
            Ok(0) => {
                socket.register_send_waker(cx.waker());
                Poll::Pending
            }
            Ok(written) => {
                drop(stack);
                shared.wake.notify_one();
                Poll::Ready(Ok(written))
            }
            Err(tcp::SendError::InvalidState) if waiting_to_connect(socket.state()) => {
                socket.register_send_waker(cx.waker());
                Poll::Pending
            }
            Err(tcp::SendError::InvalidState) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "tunnel stream closed")))
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Bytes in the socket buffer are the stack's to deliver, as with a kernel socket.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tunnel.shared.stack().shut_down(this.handle);
        this.tunnel.shared.wake.notify_one();
        Poll::Ready(Ok(()))
    }
}

impl Drop for TunnelStream {
    fn drop(&mut self) {
        if let Ok(mut stack) = self.tunnel.shared.stack.lock() {
            stack.release(self.handle);
        }
        self.tunnel.shared.wake.notify_one();
    }
}

/// Accepts streams on one overlay port. Dropping it stops listening.
pub struct TunnelListener {
    tunnel: Arc<TunnelHandle>,
    port: u16,
}

impl std::fmt::Debug for TunnelListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelListener").field("port", &self.port).finish()
    }
}

impl TunnelListener {
    pub(crate) fn new(tunnel: Arc<TunnelHandle>, port: u16) -> Result<Self, super::TunnelError> {
        tunnel.shared.stack().listen(port)?;
        Ok(TunnelListener { tunnel, port })
    }

    /// The overlay port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The tunnel's UDP address: where peers reach this listener.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.tunnel.shared.local
    }

    /// Waits for the next established connection; the stream knows the peer's key.
    pub async fn accept(&self) -> io::Result<TunnelStream> {
        let handle = poll_fn(|cx| {
            let mut stack = self.tunnel.shared.stack();
            let listening = stack.listeners.get_mut(&self.port).expect("listening while the listener lives");
            match listening.ready.pop_front() {
                Some(handle) => Poll::Ready(handle),
                None => {
                    listening.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        let remote = self.tunnel.shared.stack().sockets.get::<tcp::Socket>(handle).remote_endpoint();
        let peer = remote.and_then(|endpoint| match endpoint.addr {
            smoltcp::wire::IpAddress::Ipv4(addr) => {
                let wire = self.tunnel.shared.wire();
                wire.peers.by_overlay(addr).map(|number| wire.peers.peers[number].public)
            }
        });
        let Some(peer) = peer else {
            // Reset before it was taken: no remote endpoint left to name a peer by.
            self.tunnel.shared.stack().release(handle);
            return Err(io::Error::other("accepted a connection from no known peer"));
        };
        Ok(TunnelStream { tunnel: self.tunnel.clone(), handle, peer })
    }
}

impl Drop for TunnelListener {
    fn drop(&mut self) {
        if let Ok(mut stack) = self.tunnel.shared.stack.lock() {
            stack.unlisten(self.port);
        }
        self.tunnel.shared.wake.notify_one();
    }
}
