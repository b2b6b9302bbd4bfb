//! WireGuard state per peer: boringtun `Tunn`s, routing of datagrams to them, and preshared-key
//! rotation.
//!
//! boringtun cannot change the preshared key of a live `Tunn`, so each new key gets a new
//! `Tunn` with its own session-index prefix. The newest one takes handshake initiations; data
//! and responses find their `Tunn` by the receiver index in the packet. Outgoing packets use
//! the newest `Tunn` once it has a session, and the previous one until then, so a rotation
//! never stalls the stream; the previous `Tunn` is dropped at the next rotation.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519;
use rand_core::{OsRng, RngCore};

use super::checksum::is_fragment;
use super::keys::{WireGuardPublic, WireGuardSecret};
use super::mtu::{clamp_mss, inner_mtu, mss};
use super::stats::{Counters, bump};

/// Handshake initiations a peer may send per second before cookies are demanded.
const HANDSHAKE_RATE_LIMIT: u64 = 100;
/// Largest datagram or inner packet handled, with room for what WireGuard puts around the
/// largest inner packet (`send` wants 148 bytes beyond it).
pub(crate) const MAX_DATAGRAM: usize = 65_536 + 256;
/// After a new key, wait this long before initiating, so the peer (which derives the key a
/// round trip later) has it too; a handshake that still fails is retried by boringtun in 5 s.
const INITIATE_AFTER_NEW_KEY: Duration = Duration::from_millis(500);
/// A Rosenpass peer whose newest key has carried no session this long while there was traffic
/// for it gets a new Rosenpass exchange started from this side, whichever side usually starts
/// them: the peer restarted (its key is new and random), or two exchanges crossed and each side
/// kept a different key. Without this the link would wait for the next scheduled rekey (130 s).
/// Longer than boringtun's 5 s handshake retry, so one lost handshake is not taken for a bad
/// key; the side that does not start exchanges waits longer, so the two rarely cross.
const STALLED_KEY_INITIATOR: Duration = Duration::from_secs(6);
const STALLED_KEY_RESPONDER: Duration = Duration::from_secs(9);
/// At most one such exchange per peer in this long.
const RESCUE_INTERVAL: Duration = Duration::from_secs(15);
/// A peer that roamed away from its configured address and has left what we sent it unanswered
/// (nothing from it authenticates) for this long is sent to its configured address again: the
/// address it roamed to may have been a relay or NAT that is gone, and if both sides roamed to
/// such addresses neither would ever hear the other again. Longer than boringtun's 5 s
/// handshake retry, so one lost handshake does not undo a real move.
const ROAM_BACK_AFTER: Duration = Duration::from_secs(8);

/// A datagram to send.
pub(crate) type Outgoing = (SocketAddr, Vec<u8>);

struct Session {
    tunn: Tunn,
    /// The `Tunn`'s 24-bit index prefix (session indices are `prefix << 8 | n`).
    prefix: u32,
    established: bool,
    initiate_at: Option<Instant>,
    created: Instant,
}

/// One configured peer.
pub(crate) struct Peer {
    pub public: WireGuardPublic,
    pub overlay: Ipv4Addr,
    /// Where its WireGuard datagrams go: configured, then the source of its last authenticated
    /// datagram (WireGuard's roaming).
    pub endpoint: Option<SocketAddr>,
    /// Where its Rosenpass messages go, if not to `endpoint`.
    pub rosenpass_endpoint: Option<SocketAddr>,
    /// While `endpoint` is unknown: where its last WireGuard initiation came from, so this
    /// side's Rosenpass messages can reach it (when this side starts the exchanges, the link
    /// would otherwise wait for the peer's stalled-key rescue). An initiation can be replayed
    /// from anywhere, so this never becomes `endpoint`; a wrong one only misdirects Rosenpass
    /// messages, which are sent in the clear anyway.
    pub initiation_from: Option<SocketAddr>,
    /// The endpoint it was configured with, which `endpoint` falls back to.
    pub configured: Option<SocketAddr>,
    /// The largest inner packet to and from it (the route to `endpoint`, or the operator's
    /// setting): the MSS its connections' SYNs are clamped to.
    pub inner_mtu: usize,
    /// The first packet sent to it since it last sent something that authenticated: how
    /// long it has left us unanswered.
    unanswered_since: Option<Instant>,
    /// Oldest first; at most two.
    sessions: VecDeque<Session>,
    /// Its preshared keys come from Rosenpass.
    rosenpass: bool,
    /// Last packet for it or handshake from it: someone wants the link up.
    wanted_at: Option<Instant>,
    /// Last Rosenpass exchange this side started because the link stalled.
    rescued_at: Option<Instant>,
    /// This side starts the pair's Rosenpass exchanges (it has the lower WireGuard key).
    initiator: bool,
}

/// A peer's datagrams go to `to` from now on (it roamed there, or back to its configured
/// address), and its packets are sized for the route there (`inner_mtu`; or `mtu`, the
/// operator's). The route is read only when the endpoint changes.
fn move_endpoint(
    endpoint: &mut Option<SocketAddr>,
    inner_mtu_to: &mut usize,
    to: Option<SocketAddr>,
    mtu: Option<u16>,
) {
    if *endpoint != to {
        *endpoint = to;
        *inner_mtu_to = inner_mtu(to, mtu);
    }
}

/// Every peer of one tunnel endpoint.
pub(crate) struct PeerTable {
    secret: x25519::StaticSecret,
    public: x25519::PublicKey,
    rate_limiter: Arc<RateLimiter>,
    /// What each `Tunn` checks again inside `decapsulate`: MAC1 only, never "under load", so
    /// a handshake is counted once, by `rate_limiter`.
    unlimited: Arc<RateLimiter>,
    pub peers: Vec<Peer>,
    by_key: HashMap<[u8; 32], usize>,
    by_overlay: HashMap<Ipv4Addr, usize>,
    by_prefix: HashMap<u32, usize>,
    /// The operator's inner MTU for every peer, instead of each route's.
    mtu: Option<u16>,
    scratch: Vec<u8>,
}

impl PeerTable {
    pub(super) fn new(secret: &WireGuardSecret, mtu: Option<u16>) -> Self {
        let public = x25519::PublicKey::from(secret.x25519());
        PeerTable {
            secret: secret.x25519().clone(),
            public,
            rate_limiter: Arc::new(RateLimiter::new(&public, HANDSHAKE_RATE_LIMIT)),
            unlimited: Arc::new(RateLimiter::new(&public, u64::MAX)),
            peers: Vec::new(),
            by_key: HashMap::new(),
            by_overlay: HashMap::new(),
            by_prefix: HashMap::new(),
            mtu,
            scratch: vec![0u8; MAX_DATAGRAM],
        }
    }

    /// Adds a peer with its first preshared key (`rosenpass`: later ones come from Rosenpass);
    /// returns its number.
    pub(super) fn add(
        &mut self,
        public: WireGuardPublic,
        endpoint: Option<SocketAddr>,
        rosenpass_endpoint: Option<SocketAddr>,
        psk: Option<[u8; 32]>,
        rosenpass: bool,
    ) -> usize {
        let number = self.peers.len();
        let overlay = public.overlay_ipv4();
        self.by_key.insert(public.0, number);
        self.by_overlay.insert(overlay, number);
        self.peers.push(Peer {
            public,
            overlay,
            endpoint,
            rosenpass_endpoint,
            initiation_from: None,
            configured: endpoint,
            inner_mtu: inner_mtu(endpoint, self.mtu),
            unanswered_since: None,
            sessions: VecDeque::new(),
            rosenpass,
            wanted_at: None,
            rescued_at: None,
            initiator: self.public.as_bytes() < &public.0,
        });
        self.new_session(number, psk, None);
        number
    }

    pub(super) fn by_key(&self, public: &WireGuardPublic) -> Option<usize> {
        self.by_key.get(&public.0).copied()
    }

    pub(super) fn by_overlay(&self, addr: Ipv4Addr) -> Option<usize> {
        self.by_overlay.get(&addr).copied()
    }

    /// Switches `peer` to a new preshared key (a new `Tunn`).
    pub(super) fn rotate(&mut self, peer: usize, psk: [u8; 32], stats: &Counters) {
        bump(&stats.psk_rotations);
        self.new_session(peer, Some(psk), Some(Instant::now() + INITIATE_AFTER_NEW_KEY));
    }

    fn new_session(&mut self, peer: usize, psk: Option<[u8; 32]>, initiate_at: Option<Instant>) {
        let prefix = loop {
            let prefix = OsRng.next_u32() & 0x00ff_ffff;
            if !self.by_prefix.contains_key(&prefix) {
                break prefix;
            }
        };
        let public = self.peers[peer].public.x25519();
        let tunn = Tunn::new(self.secret.clone(), public, psk, None, prefix, Some(self.unlimited.clone()));
        self.by_prefix.insert(prefix, peer);
        let sessions = &mut self.peers[peer].sessions;
        sessions.push_back(Session {
            tunn,
            prefix,
            established: false,
            initiate_at,
            created: Instant::now(),
        });
        // Keep the newest and, of the older ones, the one carrying traffic: if the previous key
        // never got a session, the one before it is what the stream still runs on.
        while sessions.len() > 2 {
            let drop = if sessions[0].established && !sessions[1].established { 1 } else { 0 };
            let old = sessions.remove(drop).expect("more than two");
            self.by_prefix.remove(&old.prefix);
        }
    }

    /// Handles one WireGuard datagram from `from`. Decrypted inner packets go to `inner`,
    /// datagrams to send (handshake answers, queued packets) to `out`.
    pub(super) fn receive(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        inner: &mut VecDeque<Vec<u8>>,
        out: &mut Vec<Outgoing>,
        stats: &Counters,
    ) {
        let mut cookie = [0u8; 64];
        let packet = match self.rate_limiter.verify_packet(Some(from.ip()), datagram, &mut cookie) {
            Ok(packet) => packet,
            Err(TunnResult::WriteToNetwork(reply)) => {
                // Under load: the initiator must prove its address with a cookie first.
                out.push((from, reply.to_vec()));
                return;
            }
            Err(_) => return bump(&stats.dropped_invalid),
        };
        let target = match packet {
            Packet::HandshakeInit(ref init) => match parse_handshake_anon(&self.secret, &self.public, init) {
                Ok(half) => self.by_key.get(&half.peer_static_public).map(|&peer| (peer, None)),
                Err(_) => return bump(&stats.dropped_invalid),
            },
            Packet::HandshakeResponse(ref p) => self.by_index(p.receiver_idx),
            Packet::PacketCookieReply(ref p) => self.by_index(p.receiver_idx),
            Packet::PacketData(ref p) => self.by_index(p.receiver_idx),
        };
        let Some((peer_number, prefix)) = target else {
            return bump(&stats.dropped_unknown_peer);
        };
        let peer = &mut self.peers[peer_number];
        if prefix.is_none() {
            peer.wanted_at = Some(Instant::now());
            if peer.endpoint.is_none() {
                peer.initiation_from = Some(from);
            }
        }
        // Initiations go to the newest key; everything else to the `Tunn` its index names.
        let session = match prefix {
            None => peer.sessions.back_mut(),
            Some(prefix) => peer.sessions.iter_mut().find(|s| s.prefix == prefix),
        };
        let Some(session) = session else {
            return bump(&stats.dropped_unknown_peer);
        };
        let was_established = session.established;
        // Only a handshake response or a data packet that decrypts proves the sender holds the
        // session: an initiation can be replayed from anywhere, a cookie reply forged.
        let proves_session = matches!(datagram.first(), Some(2 | 4));
        let mut authenticated = false;
        let mut datagram = datagram;
        loop {
            match session.tunn.decapsulate(Some(from.ip()), datagram, &mut self.scratch) {
                TunnResult::Done => {
                    authenticated |= proves_session && !datagram.is_empty();
                    break;
                }
                TunnResult::Err(WireGuardError::DuplicateCounter) => break,
                TunnResult::Err(_) => {
                    bump(&stats.dropped_invalid);
                    break;
                }
                TunnResult::WriteToNetwork(packet) => {
                    authenticated |= proves_session;
                    out.push((from, packet.to_vec()));
                }
                TunnResult::WriteToTunnelV4(packet, source) => {
                    authenticated |= proves_session;
                    if proves_session {
                        // Before the clamp below: a SYN from a new address is sized for it.
                        move_endpoint(&mut peer.endpoint, &mut peer.inner_mtu, Some(from), self.mtu);
                    }
                    // Cryptokey routing: a peer may only speak for its own overlay address.
                    // Fragments are dropped: smoltcp would read one as a whole segment.
                    if source == peer.overlay
                        && !is_fragment(packet)
                        && inner.len() < super::device::MAX_INBOUND
                    {
                        let mut packet = packet.to_vec();
                        // What this side sends it is bounded by the route too.
                        clamp_mss(&mut packet, mss(peer.inner_mtu));
                        inner.push_back(packet);
                    } else {
                        bump(&stats.dropped_invalid);
                    }
                    break;
                }
                TunnResult::WriteToTunnelV6(..) => {
                    bump(&stats.dropped_invalid);
                    break;
                }
            }
            // Repeat with an empty datagram to flush packets queued during the handshake.
            datagram = &[];
        }
        if authenticated {
            move_endpoint(&mut peer.endpoint, &mut peer.inner_mtu, Some(from), self.mtu);
            peer.unanswered_since = None;
        }
        session.established = session.tunn.stats().0.is_some();
        if session.established && !was_established {
            bump(&stats.handshakes);
        }
    }

    fn by_index(&self, receiver_index: u32) -> Option<(usize, Option<u32>)> {
        let prefix = receiver_index >> 8;
        self.by_prefix.get(&prefix).map(|&peer| (peer, Some(prefix)))
    }

    /// Encrypts one inner IPv4 packet to the peer owning its destination (clamping a SYN's MSS
    /// to the route's) and offers the datagram to `send` straight from the encryption buffer
    /// when it is a burst on its own and `out` is empty (order kept); otherwise, or when
    /// `send` refuses it, it joins `out`.
    pub(super) fn send(
        &mut self,
        packet: &mut [u8],
        out: &mut Vec<Outgoing>,
        send: &mut super::driver::TrySend<'_>,
        stats: &Counters,
    ) {
        let Some(IpAddr::V4(destination)) = Tunn::dst_address(packet) else {
            return bump(&stats.dropped_no_route);
        };
        let Some(&number) = self.by_overlay.get(&destination) else {
            return bump(&stats.dropped_no_route);
        };
        let peer = &mut self.peers[number];
        let now = Instant::now();
        peer.wanted_at = Some(now);
        peer.unanswered_since.get_or_insert(now);
        let Some(endpoint) = peer.endpoint else {
            return bump(&stats.dropped_no_endpoint);
        };
        clamp_mss(packet, mss(peer.inner_mtu));
        let newest = peer.sessions.len() - 1;
        let index = if peer.sessions[newest].established {
            newest
        } else {
            peer.sessions.iter().rposition(|s| s.established).unwrap_or(newest)
        };
        if self.scratch.len() < packet.len() + 148 {
            return bump(&stats.dropped_invalid);
        }
        match peer.sessions[index].tunn.encapsulate(packet, &mut self.scratch) {
            TunnResult::WriteToNetwork(datagram) => {
                if !(out.is_empty()
                    && datagram.len() >= super::driver::SEND_BURST
                    && send(endpoint, datagram))
                {
                    out.push((endpoint, datagram.to_vec()));
                }
            }
            TunnResult::Done => {}
            _ => bump(&stats.dropped_invalid),
        }
    }

    /// WireGuard's timers (keepalives, rekeys, handshake retries), every 250 ms; also starts
    /// the handshakes of new keys that are due, resets the handshake rate limit each second,
    /// and lists in `stalled` the Rosenpass peers that need a new key exchange now.
    pub(super) fn tick(
        &mut self,
        now: Instant,
        reset_rate_limit: bool,
        out: &mut Vec<Outgoing>,
        stalled: &mut Vec<usize>,
        stats: &Counters,
    ) {
        if reset_rate_limit {
            self.rate_limiter.reset_count();
        }
        for (number, peer) in self.peers.iter_mut().enumerate() {
            let newest = peer.sessions.back().expect("a peer has a session");
            let patience = if peer.initiator { STALLED_KEY_INITIATOR } else { STALLED_KEY_RESPONDER };
            let stalled_key = !newest.established && now.duration_since(newest.created) >= patience;
            let wanted = peer.wanted_at.is_some_and(|at| now.duration_since(at) < patience);
            let rescued_lately = peer.rescued_at.is_some_and(|at| now.duration_since(at) < RESCUE_INTERVAL);
            if peer.rosenpass && stalled_key && wanted && !rescued_lately {
                peer.rescued_at = Some(now);
                stalled.push(number);
            }
            let unanswered =
                peer.unanswered_since.is_some_and(|at| now.duration_since(at) >= ROAM_BACK_AFTER);
            if peer.configured.is_some() && peer.endpoint != peer.configured && unanswered {
                tracing::debug!(peer = %peer.public, from = ?peer.endpoint, to = ?peer.configured, "roamed-to endpoint silent: back to the configured one");
                move_endpoint(&mut peer.endpoint, &mut peer.inner_mtu, peer.configured, self.mtu);
                bump(&stats.endpoint_fallbacks);
            }
            let newest_established = peer.sessions.back().is_some_and(|s| s.established);
            let count = peer.sessions.len();
            for (position, session) in peer.sessions.iter_mut().enumerate() {
                // Once the newest key has a session, older `Tunn`s only decrypt stragglers.
                if newest_established && position + 1 < count {
                    continue;
                }
                if session.initiate_at.is_some_and(|at| at <= now) {
                    session.initiate_at = None;
                    if let TunnResult::WriteToNetwork(datagram) =
                        session.tunn.format_handshake_initiation(&mut self.scratch, false)
                    {
                        match peer.endpoint {
                            Some(endpoint) => out.push((endpoint, datagram.to_vec())),
                            None => bump(&stats.dropped_no_endpoint),
                        }
                    }
                }
                if let TunnResult::WriteToNetwork(datagram) = session.tunn.update_timers(&mut self.scratch) {
                    match peer.endpoint {
                        Some(endpoint) => out.push((endpoint, datagram.to_vec())),
                        None => bump(&stats.dropped_no_endpoint),
                    }
                }
                // A session may have expired (no traffic for 3 minutes): the next packet
                // handshakes again.
                session.established = session.tunn.stats().0.is_some();
            }
        }
    }
}
