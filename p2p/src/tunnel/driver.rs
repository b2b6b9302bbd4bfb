//! The tunnel's event loop: one task owns the UDP socket. The WireGuard side ([`Wire`]: the
//! peers, Rosenpass's inbox, datagrams waiting to be sent) and the TCP/IP stack ([`Stack`])
//! sit behind two locks, never held together: a stream reaches its socket while the driver
//! encrypts or decrypts.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant as StdInstant};

use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};

use super::keys::WireGuardPublic;
use super::peers::{MAX_DATAGRAM, Outgoing, PeerTable};
use super::rosenpass::{self, Destination, Inbound, RosenpassEvent};
use super::stack::Stack;
use super::stats::{Counters, add, bump};

/// WireGuard's timer period.
const TICK: Duration = Duration::from_millis(250);
/// Datagrams read per wake-up.
const RECEIVE_BATCH: usize = 64;
/// smoltcp runs after this many bytes of a batch, so its acknowledgements and window updates
/// leave while the rest is decrypted: the peer keeps sending instead of waiting for the batch.
const PUMP_EVERY: usize = 64 * 1024;
/// Datagrams waiting for room in the UDP socket, at most (about 1,024 full-sized segments of
/// the streams' windows): beyond, the newest are dropped and counted.
const MAX_PENDING: usize = 1024;
/// A pump polls smoltcp until a poll does nothing (each poll sends all it can), at most this
/// many times.
const POLLS_PER_PUMP: usize = 64;
/// While a pump encrypts, datagrams leave in bursts of at least this many bytes, so the peer
/// decrypts the first while this side encrypts the next; a send may wake the peer's side, so
/// small datagrams go together (a large one alone). The rest leaves when the pump is done.
pub(super) const SEND_BURST: usize = 32 * 1024;

/// What streams, listeners and the driver share.
pub(crate) struct Shared {
    pub stack: Mutex<Stack>,
    pub wire: Mutex<Wire>,
    /// Wakes the driver after a stream changed its socket (bytes to send, window to open).
    pub wake: Notify,
    pub stats: Counters,
    pub public: WireGuardPublic,
    pub overlay: Ipv4Addr,
    pub local: SocketAddr,
}

impl Shared {
    pub(super) fn stack(&self) -> MutexGuard<'_, Stack> {
        self.stack.lock().expect("tunnel stack lock")
    }

    pub(super) fn wire(&self) -> MutexGuard<'_, Wire> {
        self.wire.lock().expect("tunnel wire lock")
    }
}

/// The WireGuard side of a tunnel.
pub(crate) struct Wire {
    pub peers: PeerTable,
    /// Configured UDP endpoints, for dialing a peer by the address the cluster knows it by.
    pub endpoints: HashMap<SocketAddr, usize>,
    /// The Rosenpass thread's inbox, when this node runs Rosenpass.
    pub(super) rosenpass: Option<std::sync::mpsc::SyncSender<Inbound>>,
    /// The digests of the peers' Rosenpass keys, and whose they are.
    pub(super) rosenpass_keys: HashMap<[u8; 32], usize>,
    /// Datagrams made but not sent yet, in order.
    pub(super) out: Vec<Outgoing>,
}

impl Wire {
    pub(super) fn new(peers: PeerTable, endpoints: HashMap<SocketAddr, usize>) -> Self {
        Wire { peers, endpoints, rosenpass: None, rosenpass_keys: HashMap::new(), out: Vec::new() }
    }

    /// Handles one datagram from the UDP socket; decrypted inner packets go to `inner`.
    pub(super) fn on_datagram(
        &mut self,
        datagram: &[u8],
        from: SocketAddr,
        inner: &mut VecDeque<Vec<u8>>,
        stats: &Counters,
    ) {
        add(&stats.rx_bytes, datagram.len());
        match datagram.first() {
            Some(1..=4) => {
                self.peers.receive(from, datagram, inner, &mut self.out, stats);
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
}

/// Runs smoltcp until it has nothing more to do now, feeding it the decrypted packets in
/// `inbound`, and offers the datagrams to `send` (see [`TrySend`]) as they are sealed: one of
/// [`SEND_BURST`] or more at once, smaller ones once they add up to that, the rest (with the
/// acknowledgements) after each smoltcp poll; then hands established connections to listeners
/// and forgets closed sockets.
pub(super) fn pump(
    stack: &Mutex<Stack>,
    wire: &Mutex<Wire>,
    inbound: &mut VecDeque<Vec<u8>>,
    stats: &Counters,
    send: &mut TrySend<'_>,
) {
    // Swapped with the device's queue, so both keep their allocation.
    let mut packets = VecDeque::new();
    for _ in 0..POLLS_PER_PUMP {
        let progress = {
            let mut stack = stack.lock().expect("tunnel stack lock");
            let progress = stack.poll(inbound);
            std::mem::swap(&mut packets, &mut stack.device.outbound);
            progress
        };
        if !progress && packets.is_empty() {
            break;
        }
        let mut wire = wire.lock().expect("tunnel wire lock");
        let Wire { peers, out, .. } = &mut *wire;
        // Bytes sealed since the last offer (what the socket refused before is not counted:
        // the next burst offers it again).
        let mut unsent = 0;
        for mut packet in packets.drain(..) {
            unsent += packet.len();
            peers.send(&mut packet, out, send, stats);
            if unsent >= SEND_BURST {
                flush(out, send);
                unsent = 0;
            }
        }
        // Acknowledgements and window updates must not wait for the next pump.
        flush(out, send);
    }
    stack.lock().expect("tunnel stack lock").hand_over();
}

/// Sends a datagram now if the socket has room: `false` when it has none (the datagram is
/// kept and sent when it has); `true` when it left or cannot leave at all (unreachable and the
/// like: dropped, as the network would).
pub(super) type TrySend<'a> = dyn FnMut(SocketAddr, &[u8]) -> bool + 'a;

/// Offers `out`'s datagrams to `send` in order, keeping those from the first it refuses on.
fn flush(out: &mut Vec<Outgoing>, send: &mut TrySend<'_>) {
    let sent = out.iter().take_while(|(to, datagram)| send(*to, datagram)).count();
    out.drain(..sent);
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
    // Datagrams leave as soon as they are encrypted, so the peer decrypts one while this side
    // encrypts the next.
    let mut send = |to: SocketAddr, datagram: &[u8]| match udp.try_send_to(datagram, to) {
        Ok(_) => {
            add(&stats.tx_bytes, datagram.len());
            true
        }
        Err(err) => err.kind() != std::io::ErrorKind::WouldBlock,
    };
    // Decrypted packets on their way to smoltcp.
    let mut inbound = VecDeque::new();
    // Datagrams wait in `Wire::out` for room in the socket.
    let mut pending = false;
    loop {
        let until_tick = next_tick.saturating_duration_since(StdInstant::now());
        let delay = shared.stack().poll_delay().map_or(until_tick, |delay| delay.min(until_tick));
        tokio::select! {
            received = udp.recv_from(&mut buf) => {
                let mut unpumped = 0;
                if let Ok((len, from)) = received {
                    shared.wire().on_datagram(&buf[..len], from, &mut inbound, stats);
                    unpumped += len;
                }
                for _ in 0..RECEIVE_BATCH {
                    if unpumped >= PUMP_EVERY {
                        pump(&shared.stack, &shared.wire, &mut inbound, stats, &mut send);
                        unpumped = 0;
                    }
                    match udp.try_recv_from(&mut buf) {
                        Ok((len, from)) => {
                            shared.wire().on_datagram(&buf[..len], from, &mut inbound, stats);
                            unpumped += len;
                        }
                        Err(_) => break,
                    }
                }
            }
            Some(event) = next_event(&mut rosenpass_events) => {
                shared.wire().on_rosenpass(event, stats);
            }
            () = shared.wake.notified() => {}
            Ok(()) = udp.writable(), if pending => {}
            () = tokio::time::sleep(delay) => {}
        }
        let now = StdInstant::now();
        if now >= next_tick {
            let mut wire = shared.wire();
            let Wire { peers, out, rosenpass, .. } = &mut *wire;
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
        pump(&shared.stack, &shared.wire, &mut inbound, stats, &mut send);
        // What the socket cannot take now waits for room (the `writable` branch) without holding
        // up receiving: two endpoints sending to each other must never both wait on a full
        // socket. Beyond `MAX_PENDING` the newest are dropped, as a full queue would.
        let mut wire = shared.wire();
        flush(&mut wire.out, &mut send);
        if wire.out.len() > MAX_PENDING {
            add(&stats.dropped_send_full, wire.out.len() - MAX_PENDING);
            wire.out.truncate(MAX_PENDING);
        }
        pending = !wire.out.is_empty();
    }
}

async fn next_event(events: &mut Option<mpsc::UnboundedReceiver<RosenpassEvent>>) -> Option<RosenpassEvent> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}
