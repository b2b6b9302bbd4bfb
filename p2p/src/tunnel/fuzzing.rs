//! The tunnel's handling of datagrams from the network, without its socket, task or timers,
//! for the fuzz harness (`tunnel_datagram`): the real `Wire` and `Stack` (WireGuard peers and
//! smoltcp, pumped as the driver pumps them) with
//! one peer that has completed a handshake, fed either raw datagrams from the peer's address or
//! inner IPv4 packets the peer encrypts (so the fuzzer reaches what runs after decryption: the
//! source-address check, smoltcp, the listener). Hidden from the docs: not part of the API.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;

use boringtun::noise::{Tunn, TunnResult};

use super::driver::{Wire, pump};
use super::keys::WireGuardSecret;
use super::peers::{MAX_DATAGRAM, PeerTable};
use super::stack::Stack;
use super::stats::Counters;

/// The overlay port the target listens on.
const PORT: u16 = 7000;
/// The endpoint's WireGuard secret and its peer's (fixed: every input meets the same keys).
const LOCAL_SECRET: [u8; 32] = [1; 32];
const PEER_SECRET: [u8; 32] = [2; 32];

/// A tunnel endpoint and the one peer that talks to it.
pub struct DatagramTarget {
    stack: Mutex<Stack>,
    wire: Mutex<Wire>,
    inbound: VecDeque<Vec<u8>>,
    stats: Counters,
    peer: Tunn,
    peer_addr: SocketAddr,
    scratch: Vec<u8>,
}

impl Default for DatagramTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl DatagramTarget {
    /// An endpoint with fixed keys, listening on an overlay port, whose peer has completed a
    /// handshake with it.
    pub fn new() -> Self {
        let local = WireGuardSecret::from_bytes(LOCAL_SECRET);
        let remote = WireGuardSecret::from_bytes(PEER_SECRET);
        let peer_addr: SocketAddr = ([10, 0, 0, 2], 51_820).into();
        let mut table = PeerTable::new(&local, Some(1_420));
        let number = table.add(remote.public(), Some(peer_addr), None, None, false);
        let wire = Wire::new(table, HashMap::from([(peer_addr, number)]));
        let mut stack = Stack::new(local.public().overlay_ipv4());
        stack.listen(PORT).expect("a free port");
        let peer = Tunn::new(remote.x25519().clone(), local.public().x25519(), None, None, 1, None);
        let mut target = DatagramTarget {
            stack: Mutex::new(stack),
            wire: Mutex::new(wire),
            inbound: VecDeque::new(),
            stats: Counters::default(),
            peer,
            peer_addr,
            scratch: vec![0; MAX_DATAGRAM],
        };
        if let TunnResult::WriteToNetwork(initiation) =
            target.peer.format_handshake_initiation(&mut target.scratch, false)
        {
            let initiation = initiation.to_vec();
            target.datagram(&initiation);
        }
        target
    }

    /// One datagram from the peer's address, as the UDP socket hands it over; what the
    /// endpoint answers goes back to the peer.
    pub fn datagram(&mut self, datagram: &[u8]) {
        self.receive(datagram);
        self.pump();
        let answers = std::mem::take(&mut self.wire().out);
        let mut scratch = vec![0u8; MAX_DATAGRAM];
        for (_, answer) in answers {
            let mut answer = answer.as_slice();
            // The peer's replies (the keepalive after a handshake response, queued packets).
            while let TunnResult::WriteToNetwork(reply) = self.peer.decapsulate(None, answer, &mut scratch) {
                let reply = reply.to_vec();
                self.receive(&reply);
                answer = &[];
            }
        }
        self.pump();
        self.wire().out.clear();
    }

    fn wire(&self) -> std::sync::MutexGuard<'_, Wire> {
        self.wire.lock().expect("not poisoned")
    }

    fn receive(&mut self, datagram: &[u8]) {
        let mut wire = self.wire.lock().expect("not poisoned");
        wire.on_datagram(datagram, self.peer_addr, &mut self.inbound, &self.stats);
    }

    /// Runs smoltcp as the driver does; what it sends stays in `out` (no socket here).
    fn pump(&mut self) {
        pump(&self.stack, &self.wire, &mut self.inbound, &self.stats, &mut |_, _| false);
    }

    /// An inner IPv4 packet the peer encrypts and sends.
    pub fn inner_packet(&mut self, packet: &[u8]) {
        if packet.len() + 148 > MAX_DATAGRAM {
            return;
        }
        if let TunnResult::WriteToNetwork(datagram) = self.peer.encapsulate(packet, &mut self.scratch) {
            let datagram = datagram.to_vec();
            self.datagram(&datagram);
        }
    }

    /// Datagrams that failed to parse, authenticate or decrypt, or carried an inner packet
    /// from an address the peer does not own.
    pub fn dropped_invalid(&self) -> u64 {
        self.stats.snapshot().dropped_invalid
    }

    /// The endpoint's overlay address, the peer's, and the port the endpoint listens on (for
    /// seed packets).
    pub fn addresses(&self) -> (std::net::Ipv4Addr, std::net::Ipv4Addr, u16) {
        let local = WireGuardSecret::from_bytes(LOCAL_SECRET).public().overlay_ipv4();
        let remote = WireGuardSecret::from_bytes(PEER_SECRET).public().overlay_ipv4();
        (local, remote, PORT)
    }

    /// WireGuard sessions established.
    pub fn handshakes(&self) -> u64 {
        self.stats.snapshot().handshakes
    }
}
