//! The tunnel's TCP/IP stack: smoltcp's interface and sockets over a packet queue device,
//! and the listeners. Streams lock it to move bytes in and out of their sockets; the driver
//! locks it to run smoltcp, never while it encrypts or decrypts.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::task::Waker;
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration as NetDuration, Instant as NetInstant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use super::device::{MAX_INBOUND, QueueDevice};

/// Per-stream socket buffers: the TCP window through the tunnel, 16 segments of the largest
/// inner packets (over loopback); the pages are touched only as data fills them.
const STREAM_BUFFER: usize = 1024 * 1024;
/// Pending connections a listener holds.
const BACKLOG: usize = 8;
/// A connection whose peer acknowledges nothing for this long is reset.
pub(crate) const STREAM_TIMEOUT: Duration = Duration::from_secs(20);
/// Keep-alive probes on idle streams, so a dead peer is noticed within [`STREAM_TIMEOUT`].
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// A listening port: sockets in `Listen` state, and connections established but not taken.
#[derive(Default)]
pub(crate) struct Listening {
    backlog: Vec<SocketHandle>,
    pub ready: VecDeque<SocketHandle>,
    pub waker: Option<Waker>,
}

/// smoltcp and the listeners.
pub(crate) struct Stack {
    iface: Interface,
    pub sockets: SocketSet<'static>,
    pub(super) device: QueueDevice,
    pub listeners: HashMap<u16, Listening>,
    /// Sockets whose stream was dropped: closed once what they hold is acknowledged (see
    /// [`closes_cleanly`]), removed once closed.
    closing: Vec<SocketHandle>,
    /// Streams shut down for writing while bytes were queued: closed once they are
    /// acknowledged (see [`closes_cleanly`]).
    shutting: Vec<SocketHandle>,
    next_port: u16,
}

/// Whether closing `socket` now cannot strand its stream: nothing it holds is unacknowledged,
/// or it is not in a state a close sends a FIN from. smoltcp 0.14 handles a close with bytes
/// still queued badly when the peer's window is shut: in LAST-ACK it ignores window updates
/// (it answers them as duplicate acknowledgements), and streams closed from ESTABLISHED stalled
/// the same way under load; either probed the window until the stream timed out. So the FIN
/// waits until every byte before it is acknowledged (a round trip later than a kernel's).
fn closes_cleanly(socket: &tcp::Socket) -> bool {
    socket.send_queue() == 0 || !matches!(socket.state(), tcp::State::Established | tcp::State::CloseWait)
}

/// Closes `socket` if that cannot strand its stream (see [`closes_cleanly`]); returns whether
/// it did.
fn close_if_clean(socket: &mut tcp::Socket) -> bool {
    let clean = closes_cleanly(socket);
    if clean {
        socket.close();
    }
    clean
}

fn now() -> NetInstant {
    NetInstant::now()
}

impl Stack {
    pub(super) fn new(overlay: Ipv4Addr) -> Self {
        let mut device = QueueDevice::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
        let port_seed = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
        let mut iface = Interface::new(config, &mut device, now());
        iface.update_ip_addrs(|addrs| {
            addrs.push(IpCidr::new(IpAddress::Ipv4(overlay), 8)).expect("one address");
        });
        Stack {
            iface,
            sockets: SocketSet::new(Vec::new()),
            device,
            listeners: HashMap::new(),
            closing: Vec::new(),
            shutting: Vec::new(),
            // A random start, as kernels do: a restarted peer reusing the port of a connection
            // the other side still holds would have its SYN taken by that old socket.
            next_port: 49_152 + (port_seed % 16_384) as u16,
        }
    }

    fn new_socket() -> tcp::Socket<'static> {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; STREAM_BUFFER]),
            tcp::SocketBuffer::new(vec![0u8; STREAM_BUFFER]),
        );
        socket.set_nagle_enabled(false);
        socket.set_congestion_control(tcp::CongestionControl::Reno);
        socket.set_timeout(Some(NetDuration::from_millis(STREAM_TIMEOUT.as_millis() as u64)));
        socket.set_keep_alive(Some(NetDuration::from_millis(KEEP_ALIVE.as_millis() as u64)));
        socket
    }

    fn port_in_use(&self, port: u16) -> bool {
        self.listeners.contains_key(&port)
            || self.sockets.iter().any(|(_, socket)| match socket {
                smoltcp::socket::Socket::Tcp(tcp) => {
                    tcp.local_endpoint().is_some_and(|e| e.port == port) || tcp.listen_endpoint().port == port
                }
                #[allow(unreachable_patterns)]
                _ => false,
            })
    }

    /// Opens a connection to a peer's overlay address; returns the socket.
    pub(super) fn connect(&mut self, overlay: Ipv4Addr, port: u16) -> std::io::Result<SocketHandle> {
        let remote = (IpAddress::Ipv4(overlay), port);
        let mut local_port = None;
        for _ in 0..16_384 {
            let candidate = self.next_port;
            self.next_port = if self.next_port == u16::MAX { 49_152 } else { self.next_port + 1 };
            if !self.port_in_use(candidate) {
                local_port = Some(candidate);
                break;
            }
        }
        let local_port = local_port.ok_or_else(|| std::io::Error::other("no free tunnel port"))?;
        let mut socket = Self::new_socket();
        socket
            .connect(self.iface.context(), remote, local_port)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidInput, err.to_string()))?;
        Ok(self.sockets.add(socket))
    }

    /// Starts listening on `port`.
    pub(super) fn listen(&mut self, port: u16) -> Result<(), super::TunnelError> {
        if port == 0 || self.port_in_use(port) {
            return Err(super::TunnelError::PortInUse(port));
        }
        let mut listening = Listening::default();
        for _ in 0..BACKLOG {
            listening.backlog.push(self.listening_socket(port));
        }
        self.listeners.insert(port, listening);
        Ok(())
    }

    fn listening_socket(&mut self, port: u16) -> SocketHandle {
        let mut socket = Self::new_socket();
        socket.listen(port).expect("port is free and non-zero");
        self.sockets.add(socket)
    }

    /// Stops listening; connections not yet accepted are reset.
    pub(super) fn unlisten(&mut self, port: u16) {
        if let Some(listening) = self.listeners.remove(&port) {
            for handle in listening.backlog.into_iter().chain(listening.ready) {
                self.sockets.get_mut::<tcp::Socket>(handle).abort();
                self.closing.push(handle);
            }
        }
    }

    /// A stream shuts down its writing: the FIN goes now, or once the queued bytes are
    /// acknowledged when sending it now could strand them (see [`closes_cleanly`]).
    pub(super) fn shut_down(&mut self, handle: SocketHandle) {
        if !close_if_clean(self.sockets.get_mut::<tcp::Socket>(handle)) && !self.shutting.contains(&handle) {
            self.shutting.push(handle);
        }
    }

    /// Whether the stream was shut down for writing (its FIN may still wait for its bytes).
    pub(super) fn is_shut_down(&self, handle: SocketHandle) -> bool {
        self.shutting.contains(&handle)
    }

    /// A stream was dropped: close its socket gracefully (once its bytes are acknowledged)
    /// and forget it once closed.
    pub(super) fn release(&mut self, handle: SocketHandle) {
        self.shutting.retain(|&shutting| shutting != handle);
        close_if_clean(self.sockets.get_mut::<tcp::Socket>(handle));
        self.closing.push(handle);
    }

    /// Feeds smoltcp the decrypted packets in `inbound` (as many as it queues) and runs it
    /// once; returns whether it did anything. What it sent is in `device.outbound`.
    pub(super) fn poll(&mut self, inbound: &mut VecDeque<Vec<u8>>) -> bool {
        let room = MAX_INBOUND.saturating_sub(self.device.inbound.len());
        self.device.inbound.extend(inbound.drain(..inbound.len().min(room)));
        // The rest is dropped, as a full queue would: TCP sends it again.
        inbound.clear();
        self.iface.poll(now(), &mut self.device, &mut self.sockets) != smoltcp::iface::PollResult::None
            || !self.device.inbound.is_empty()
    }

    /// Hands established connections to their listeners and forgets closed sockets.
    pub(super) fn hand_over(&mut self) {
        let ports: Vec<u16> = self.listeners.keys().copied().collect();
        for port in ports {
            let mut accepted = Vec::new();
            let listening = self.listeners.get_mut(&port).expect("listed");
            let mut failed = Vec::new();
            listening.backlog.retain(|&handle| match self.sockets.get::<tcp::Socket>(handle).state() {
                tcp::State::Listen | tcp::State::SynReceived => true,
                tcp::State::Established | tcp::State::CloseWait => {
                    accepted.push(handle);
                    false
                }
                // A handshake that never completed (the dialer vanished after its SYN): the
                // socket timed out and must not keep a backlog slot.
                _ => {
                    failed.push(handle);
                    false
                }
            });
            if accepted.is_empty() && failed.is_empty() {
                continue;
            }
            let replacements: Vec<SocketHandle> =
                accepted.iter().chain(&failed).map(|_| self.listening_socket(port)).collect();
            self.closing.extend(failed);
            let listening = self.listeners.get_mut(&port).expect("listed");
            listening.backlog.extend(replacements);
            if !accepted.is_empty() {
                listening.ready.extend(accepted);
                if let Some(waker) = listening.waker.take() {
                    waker.wake();
                }
            }
        }
        let sockets = &mut self.sockets;
        self.shutting.retain(|&handle| !close_if_clean(sockets.get_mut::<tcp::Socket>(handle)));
        self.closing.retain(|&handle| {
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            // Still open: its close waited for its bytes.
            if matches!(socket.state(), tcp::State::Established | tcp::State::CloseWait) {
                close_if_clean(socket);
            }
            let closed = socket.state() == tcp::State::Closed;
            if closed {
                sockets.remove(handle);
            }
            !closed
        });
    }

    pub(super) fn poll_delay(&mut self) -> Option<Duration> {
        self.iface.poll_delay(now(), &self.sockets).map(|delay| Duration::from_micros(delay.total_micros()))
    }
}
