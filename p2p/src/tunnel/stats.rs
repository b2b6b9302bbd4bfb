//! Tunnel counters, read by the node's metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters one tunnel endpoint keeps; cheap to bump from the driver.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub handshakes: AtomicU64,
    pub psk_rotations: AtomicU64,
    pub rosenpass_exchanges: AtomicU64,
    pub rosenpass_stale: AtomicU64,
    pub rosenpass_rescues: AtomicU64,
    pub endpoint_fallbacks: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub dropped_unknown_peer: AtomicU64,
    pub dropped_invalid: AtomicU64,
    pub dropped_no_route: AtomicU64,
    pub dropped_no_endpoint: AtomicU64,
    pub dropped_busy: AtomicU64,
    pub dropped_send_full: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

/// A snapshot of a tunnel endpoint's counters since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TunnelStats {
    /// WireGuard sessions established (either side initiating).
    pub handshakes: u64,
    /// Preshared keys installed (Rosenpass output keys, stale-key fallbacks and keys set by
    /// the operator); each starts a new WireGuard session.
    pub psk_rotations: u64,
    /// Rosenpass key exchanges completed.
    pub rosenpass_exchanges: u64,
    /// Rosenpass keys that went stale (no exchange for 180 s) and were replaced by a random key.
    pub rosenpass_stale: u64,
    /// Rosenpass exchanges this side started because a peer's newest key carried no session
    /// for seconds while there was traffic for it (the peer restarted, or two exchanges
    /// crossed): the slow path a link should rarely need.
    pub rosenpass_rescues: u64,
    /// Peers whose roamed-to address went silent and who were sent to their configured
    /// address again.
    pub endpoint_fallbacks: u64,
    /// UDP payload bytes sent (WireGuard and Rosenpass).
    pub tx_bytes: u64,
    /// UDP payload bytes received.
    pub rx_bytes: u64,
    /// Datagrams from keys or session indices this endpoint does not know.
    pub dropped_unknown_peer: u64,
    /// Datagrams that failed to parse, authenticate or decrypt, and inner packets with a
    /// source address the peer does not own.
    pub dropped_invalid: u64,
    /// Inner packets to an overlay address no peer owns.
    pub dropped_no_route: u64,
    /// Packets to a peer whose UDP endpoint is not known yet.
    pub dropped_no_endpoint: u64,
    /// Rosenpass messages dropped because its thread was behind (a flood).
    pub dropped_busy: u64,
    /// Datagrams dropped because the UDP socket had no room for longer than the 1,024 waiting
    /// for it took to pile up.
    pub dropped_send_full: u64,
}

impl TunnelStats {
    /// Every counter with its name (the `kind` label the node's metrics export it under).
    pub fn by_kind(&self) -> [(&'static str, u64); 14] {
        [
            ("handshakes", self.handshakes),
            ("psk_rotations", self.psk_rotations),
            ("rosenpass_exchanges", self.rosenpass_exchanges),
            ("rosenpass_stale", self.rosenpass_stale),
            ("rosenpass_rescues", self.rosenpass_rescues),
            ("endpoint_fallbacks", self.endpoint_fallbacks),
            ("tx_bytes", self.tx_bytes),
            ("rx_bytes", self.rx_bytes),
            ("dropped_unknown_peer", self.dropped_unknown_peer),
            ("dropped_invalid", self.dropped_invalid),
            ("dropped_no_route", self.dropped_no_route),
            ("dropped_no_endpoint", self.dropped_no_endpoint),
            ("dropped_busy", self.dropped_busy),
            ("dropped_send_full", self.dropped_send_full),
        ]
    }
}

impl Counters {
    pub(super) fn snapshot(&self) -> TunnelStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TunnelStats {
            handshakes: get(&self.handshakes),
            psk_rotations: get(&self.psk_rotations),
            rosenpass_exchanges: get(&self.rosenpass_exchanges),
            rosenpass_stale: get(&self.rosenpass_stale),
            rosenpass_rescues: get(&self.rosenpass_rescues),
            endpoint_fallbacks: get(&self.endpoint_fallbacks),
            tx_bytes: get(&self.tx_bytes),
            rx_bytes: get(&self.rx_bytes),
            dropped_unknown_peer: get(&self.dropped_unknown_peer),
            dropped_invalid: get(&self.dropped_invalid),
            dropped_no_route: get(&self.dropped_no_route),
            dropped_no_endpoint: get(&self.dropped_no_endpoint),
            dropped_busy: get(&self.dropped_busy),
            dropped_send_full: get(&self.dropped_send_full),
        }
    }
}
