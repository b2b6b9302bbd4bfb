//! How big the tunnel's inner packets are, per peer.
//!
//! smoltcp has one interface MTU ([`MAX_INNER_MTU`], as large as an outer UDP datagram allows);
//! what bounds the TCP segments to and from each peer is the MSS option of the connection's
//! SYNs, which the tunnel clamps in both directions to that peer's inner MTU, as a router does
//! with `iptables -j TCPMSS --clamp-mss-to-pmtu`. A peer's inner MTU is the kernel's MTU for
//! the route to its endpoint (`IP_MTU`, as `wg-quick` sizes an interface from its endpoints'
//! routes) minus the outer headers, or the operator's setting ([`super::TunnelConfig::mtu`]).
//! On 1,500-byte Ethernet that is 1,440 (`wg-quick`'s 1,420 also leaves room for an IPv6
//! outer header); over loopback (a local testnet) or jumbo frames it is much larger, and the per-packet costs (a datagram, an AEAD
//! call and a system call each way) shrink with it. The MSS of a connection is fixed by its
//! SYNs: when a peer roams to a path with a smaller MTU, its open connections keep their
//! segment size (the outer datagrams are fragmented by the kernel) until they reconnect.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use super::checksum::{tcp_segment, write_tcp_checksum};

/// smoltcp's interface MTU: what `wg-quick` gives a loopback route (65,536 minus 80); its
/// WireGuard datagram (32 bytes more) fits an IPv4 UDP payload (65,507 bytes).
pub(crate) const MAX_INNER_MTU: usize = 65_456;
/// WireGuard's usual inner MTU (1,500 minus 80): for peers whose route is unknown (no endpoint
/// yet, IPv6).
pub(crate) const DEFAULT_INNER_MTU: usize = 1_420;
/// The smallest inner MTU used (IPv6's minimum link MTU, as in `wg`).
pub(crate) const MIN_INNER_MTU: usize = 1_280;
/// Outer IPv4 (20) and UDP (8) headers, and WireGuard's data header (16) and tag (16).
const OUTER_OVERHEAD: usize = 20 + 8 + 32;
/// Inner IPv4 and TCP headers without options: an MSS is the inner MTU minus these.
const INNER_HEADERS: usize = 40;

/// The inner MTU for a peer at `endpoint`, or for every peer when the operator set `mtu`.
pub(crate) fn inner_mtu(endpoint: Option<SocketAddr>, configured: Option<u16>) -> usize {
    let mtu = match (configured, endpoint) {
        (Some(mtu), _) => usize::from(mtu),
        (None, Some(endpoint)) => {
            route_mtu(endpoint).map_or(DEFAULT_INNER_MTU, |mtu| mtu.saturating_sub(OUTER_OVERHEAD))
        }
        (None, None) => DEFAULT_INNER_MTU,
    };
    mtu.clamp(MIN_INNER_MTU, MAX_INNER_MTU)
}

/// The largest TCP payload in an inner packet of `inner_mtu` bytes.
pub(crate) fn mss(inner_mtu: usize) -> u16 {
    u16::try_from(inner_mtu - INNER_HEADERS).unwrap_or(u16::MAX)
}

/// The kernel's MTU for the route to an IPv4 `endpoint` (learned path MTU included), read off a
/// UDP socket connected to it (no datagram is sent); `None` where that is not available.
fn route_mtu(endpoint: SocketAddr) -> Option<usize> {
    if !endpoint.is_ipv4() {
        return None;
    }
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    probe.connect(endpoint).ok()?;
    read_mtu(&probe)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_mtu(socket: &UdpSocket) -> Option<usize> {
    let mtu = nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::IpMtu).ok()?;
    usize::try_from(mtu).ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn read_mtu(_socket: &UdpSocket) -> Option<usize> {
    None
}

/// Lowers the MSS option of a TCP SYN in the IPv4 `packet` to `mss` when it is larger, and
/// recomputes the TCP checksum; any other packet (or one too short or malformed to hold the
/// option) is left as it is. Returns whether the packet changed.
pub(crate) fn clamp_mss(packet: &mut [u8], mss: u16) -> bool {
    const SYN: u8 = 0x02;
    const MSS_OPTION: u8 = 2;
    let Some((header, segment)) = tcp_segment(packet) else {
        return false;
    };
    let options_end = usize::from(segment[12] >> 4) * 4;
    if segment[13] & SYN == 0 || options_end < 20 || options_end > segment.len() {
        return false;
    }
    let mut at = 20;
    while at < options_end {
        match segment[at] {
            0 => return false,
            1 => at += 1,
            kind => {
                let Some(&len) = segment.get(at + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || at + len > options_end {
                    return false;
                }
                if kind == MSS_OPTION && len == 4 {
                    let advertised = u16::from_be_bytes([segment[at + 2], segment[at + 3]]);
                    if advertised <= mss {
                        return false;
                    }
                    segment[at + 2..at + 4].copy_from_slice(&mss.to_be_bytes());
                    write_tcp_checksum(header, segment);
                    return true;
                }
                at += len;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use smoltcp::phy::{Checksum, ChecksumCapabilities};
    use smoltcp::wire::{IpAddress, Ipv4Packet, TcpControl, TcpPacket, TcpRepr};

    use super::super::test_packets::{DESTINATION, SOURCE, tcp_packet};
    use super::*;

    /// An inner packet as smoltcp builds it, checksums filled in.
    fn packet(control: TcpControl, mss: Option<u16>, payload: &[u8]) -> Vec<u8> {
        tcp_packet(control, mss, payload, Checksum::Both)
    }

    /// The MSS smoltcp reads from `bytes`, after checking the checksums.
    fn parsed_mss(bytes: &[u8]) -> Option<u16> {
        let ip = Ipv4Packet::new_checked(bytes).unwrap();
        assert!(ip.verify_checksum());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(&IpAddress::Ipv4(SOURCE), &IpAddress::Ipv4(DESTINATION)));
        let repr = TcpRepr::parse(
            &tcp,
            &IpAddress::Ipv4(SOURCE),
            &IpAddress::Ipv4(DESTINATION),
            &ChecksumCapabilities::default(),
        )
        .unwrap();
        repr.max_seg_size
    }

    #[test]
    fn a_syn_is_clamped_and_its_checksum_still_verifies() {
        let mut syn = packet(TcpControl::Syn, Some(65_416), &[]);
        assert!(clamp_mss(&mut syn, 1_380));
        assert_eq!(parsed_mss(&syn), Some(1_380));
        // A smaller MSS than the clamp stays.
        let mut small = packet(TcpControl::Syn, Some(536), &[]);
        let before = small.clone();
        assert!(!clamp_mss(&mut small, 1_380));
        assert_eq!(small, before);
    }

    #[test]
    fn segments_without_syn_or_option_are_untouched() {
        for mut bytes in [packet(TcpControl::None, None, b"data"), packet(TcpControl::Syn, None, &[])] {
            let before = bytes.clone();
            assert!(!clamp_mss(&mut bytes, 1_000));
            assert_eq!(bytes, before);
        }
    }

    #[test]
    fn inner_mtus_follow_the_route() {
        assert_eq!(inner_mtu(None, None), DEFAULT_INNER_MTU);
        assert_eq!(inner_mtu(Some("[::1]:9".parse().unwrap()), None), DEFAULT_INNER_MTU);
        // The operator's setting wins, within bounds.
        assert_eq!(inner_mtu(Some("127.0.0.1:9".parse().unwrap()), Some(1_420)), 1_420);
        assert_eq!(inner_mtu(None, Some(9_000)), 9_000);
        assert_eq!(inner_mtu(None, Some(100)), MIN_INNER_MTU);
        assert_eq!(inner_mtu(None, Some(u16::MAX)), MAX_INNER_MTU);
        assert_eq!(mss(1_420), 1_380);
        // Loopback's route MTU (65,536 on Linux) gives the largest inner packets.
        if cfg!(target_os = "linux") {
            assert_eq!(inner_mtu(Some("127.0.0.1:9".parse().unwrap()), None), MAX_INNER_MTU);
        }
    }

    proptest! {
        #[test]
        fn clamping_any_syn_keeps_it_valid(
            advertised in 536u16.., clamp in 536u16.., payload in proptest::collection::vec(any::<u8>(), 0..64)
        ) {
            let mut syn = packet(TcpControl::Syn, Some(advertised), &payload);
            prop_assert_eq!(clamp_mss(&mut syn, clamp), advertised > clamp);
            prop_assert_eq!(parsed_mss(&syn), Some(advertised.min(clamp)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..128), clamp: u16) {
            let before = bytes.clone();
            if !clamp_mss(&mut bytes, clamp) {
                prop_assert_eq!(bytes, before);
            }
        }
    }
}
