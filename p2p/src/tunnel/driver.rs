//! The tunnel's event loop: one task owns the UDP socket; smoltcp, the WireGuard peers and the
//! listeners live in [`Core`] behind a mutex that streams lock to move bytes in and out of
//! their socket buffers.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant as StdInstant};

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration as NetDuration, Instant as NetInstant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};

use super::device::QueueDevice;
use super::keys::WireGuardPublic;
use super::peers::{MAX_DATAGRAM, Outgoing, PeerTable};
use super::rosenpass::{self, Destination, Inbound, RosenpassEvent};
use super::stats::{Counters, add, bump};

/// WireGuard's timer period.
const TICK: Duration = Duration::from_millis(250);
/// Per-stream socket buffers: the TCP window through the tunnel.
const STREAM_BUFFER: usize = 256 * 1024;
/// Pending connections a listener holds.
const BACKLOG: usize = 8;
/// A connection whose peer acknowledges nothing for this long is reset.
pub(crate) const STREAM_TIMEOUT: Duration = Duration::from_secs(20);
/// Keep-alive probes on idle streams, so a dead peer is noticed within [`STREAM_TIMEOUT`].
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Datagrams read per wake-up before smoltcp runs.
const RECEIVE_BATCH: usize = 64;

/// What streams, listeners and the driver share.
pub(crate) struct Shared {
    pub core: Mutex<Core>,
    /// Wakes the driver after a stream changed its socket (bytes to send, window to open).
    pub wake: Notify,
    pub stats: Counters,
    pub public: WireGuardPublic,
    pub overlay: Ipv4Addr,
    pub local: SocketAddr,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().expect("tunnel core lock")
    }
}

/// A listening port: sockets in `Listen` state, and connections established but not taken.
#[derive(Default)]
pub(crate) struct Listening {
    backlog: Vec<SocketHandle>,
    pub ready: VecDeque<SocketHandle>,
    pub waker: Option<Waker>,
}

/// smoltcp and the WireGuard peers.
pub(crate) struct Core {
    iface: Interface,
    pub sockets: SocketSet<'static>,
    device: QueueDevice,
    pub peers: PeerTable,
    /// Configured UDP endpoints, for dialing a peer by the address the cluster knows it by.
    pub endpoints: HashMap<SocketAddr, usize>,
    pub listeners: HashMap<u16, Listening>,
    /// Sockets whose stream was dropped, removed once closed.
    closing: Vec<SocketHandle>,
    next_port: u16,
    /// The Rosenpass thread's inbox, when this node runs Rosenpass.
    pub(super) rosenpass: Option<std::sync::mpsc::SyncSender<Inbound>>,
    /// The digests of the peers' Rosenpass keys, and whose they are.
    pub(super) rosenpass_keys: HashMap<[u8; 32], usize>,
    pub(super) out: Vec<Outgoing>,
}

fn now() -> NetInstant {
    NetInstant::now()
}

impl Core {
    pub(super) fn new(overlay: Ipv4Addr, peers: PeerTable, endpoints: HashMap<SocketAddr, usize>) -> Self {
        let mut device = QueueDevice::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
        let port_seed = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
        let mut iface = Interface::new(config, &mut device, now());
        iface.update_ip_addrs(|addrs| {
            addrs.push(IpCidr::new(IpAddress::Ipv4(overlay), 8)).expect("one address");
        });
        Core {
            iface,
            sockets: SocketSet::new(Vec::new()),
            device,
            peers,
            endpoints,
            listeners: HashMap::new(),
            closing: Vec::new(),
            // A random start, as kernels do: a restarted peer reusing the port of a connection
            // the other side still holds would have its SYN taken by that old socket.
            next_port: 49_152 + (port_seed % 16_384) as u16,
            rosenpass: None,
            rosenpass_keys: HashMap::new(),
            out: Vec::new(),
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

    /// Opens a connection to `peer`'s overlay address; returns the socket.
    pub(super) fn connect(&mut self, peer: usize, port: u16) -> std::io::Result<SocketHandle> {
        let remote = (IpAddress::Ipv4(self.peers.peers[peer].overlay), port);
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

    /// A stream was dropped: close its socket gracefully and forget it once closed.
    pub(super) fn release(&mut self, handle: SocketHandle) {
        self.sockets.get_mut::<tcp::Socket>(handle).close();
        self.closing.push(handle);
    }

    /// Handles one datagram from the UDP socket.
    pub(super) fn on_datagram(&mut self, datagram: &[u8], from: SocketAddr, stats: &Counters) {
        add(&stats.rx_bytes, datagram.len());
        match datagram.first() {
            Some(1..=4) => {
                self.peers.receive(from, datagram, &mut self.device.inbound, &mut self.out, stats);
            }
            Some(kind) if rosenpass::MESSAGE_TYPES.contains(kind) => match &self.rosenpass {
                Some(rosenpass) => {
                    // Each message may cost a McEliece operation: when the thread is behind,
                    // drop rather than queue without bound.
                    if rosenpass.try_send(Inbound::Message { data: datagram.to_vec(), from }).is_err() {
                        bump(&stats.dropped_busy);
                    }
                }
                None => bump(&stats.dropped_invalid),
            },
            _ => bump(&stats.dropped_invalid),
        }
    }

    fn on_rosenpass(&mut self, event: RosenpassEvent, stats: &Counters) {
        match event {
            RosenpassEvent::Send { to, data } => {
                let to = match to {
                    Destination::Addr(addr) => Some(addr),
                    Destination::Peer(number) => {
                        let peer = &self.peers.peers[number];
                        peer.rosenpass_endpoint.or(peer.endpoint).or(peer.initiation_from)
                    }
                };
                match to {
                    Some(to) => self.out.push((to, data)),
                    None => bump(&stats.dropped_no_endpoint),
                }
            }
            RosenpassEvent::Key { peer, key, exchanged } => {
                bump(if exchanged { &stats.rosenpass_exchanges } else { &stats.rosenpass_stale });
                tracing::debug!(peer = %self.peers.peers[peer].public, exchanged, "new preshared key");
                self.peers.rotate(peer, key, stats);
            }
        }
    }

    /// Runs smoltcp, encrypts what it sent, hands established connections to listeners and
    /// forgets closed sockets.
    pub(super) fn pump(&mut self, stats: &Counters) {
        // smoltcp sends at most a burst per poll; loop until it has nothing more to do now.
        for _ in 0..64 {
            let progress = self.iface.poll(now(), &mut self.device, &mut self.sockets);
            let sent = !self.device.outbound.is_empty();
            while let Some(packet) = self.device.outbound.pop_front() {
                self.peers.send(&packet, &mut self.out, stats);
            }
            if progress == smoltcp::iface::PollResult::None && !sent && self.device.inbound.is_empty() {
                break;
            }
        }
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
        self.closing.retain(|&handle| {
            let closed = sockets.get::<tcp::Socket>(handle).state() == tcp::State::Closed;
            if closed {
                sockets.remove(handle);
            }
            !closed
        });
    }

    fn poll_delay(&mut self) -> Option<Duration> {
        self.iface.poll_delay(now(), &self.sockets).map(|delay| Duration::from_micros(delay.total_micros()))
    }
}

/// Runs the tunnel until aborted.
pub(crate) async fn drive(
    shared: Arc<Shared>,
    udp: UdpSocket,
    mut rosenpass_events: Option<mpsc::UnboundedReceiver<RosenpassEvent>>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut next_tick = StdInstant::now();
    let mut ticks: u64 = 0;
    let stats = &shared.stats;
    loop {
        let until_tick = next_tick.saturating_duration_since(StdInstant::now());
        let delay = shared.lock().poll_delay().map_or(until_tick, |delay| delay.min(until_tick));
        tokio::select! {
            received = udp.recv_from(&mut buf) => {
                let mut core = shared.lock();
                if let Ok((len, from)) = received {
                    core.on_datagram(&buf[..len], from, stats);
                }
                for _ in 0..RECEIVE_BATCH {
                    match udp.try_recv_from(&mut buf) {
                        Ok((len, from)) => core.on_datagram(&buf[..len], from, stats),
                        Err(_) => break,
                    }
                }
            }
            Some(event) = next_event(&mut rosenpass_events) => {
                shared.lock().on_rosenpass(event, stats);
            }
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(delay) => {}
        }
        let out = {
            let mut core = shared.lock();
            let now = StdInstant::now();
            if now >= next_tick {
                let Core { peers, out, rosenpass, .. } = &mut *core;
                let mut stalled = Vec::new();
                peers.tick(now, ticks.is_multiple_of(4), out, &mut stalled, stats);
                if let Some(rosenpass) = rosenpass {
                    for number in stalled {
                        bump(&stats.rosenpass_rescues);
                        tracing::debug!(peer = %peers.peers[number].public, "no session under the current key: new Rosenpass exchange");
                        let _ = rosenpass.try_send(Inbound::Initiate(number));
                    }
                }
                ticks += 1;
                next_tick = now + TICK;
            }
            core.pump(stats);
            std::mem::take(&mut core.out)
        };
        for (to, datagram) in out {
            if udp.send_to(&datagram, to).await.is_ok() {
                add(&stats.tx_bytes, datagram.len());
            }
        }
    }
}

async fn next_event(events: &mut Option<mpsc::UnboundedReceiver<RosenpassEvent>>) -> Option<RosenpassEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}
