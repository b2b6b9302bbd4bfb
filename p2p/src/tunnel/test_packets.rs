//! Inner packets as smoltcp writes them, for the unit tests of the code that rewrites them.

use smoltcp::phy::{Checksum, ChecksumCapabilities};
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

/// The packets' source address.
pub(super) const SOURCE: Ipv4Address = Ipv4Address::new(10, 1, 2, 3);
/// The packets' destination address.
pub(super) const DESTINATION: Ipv4Address = Ipv4Address::new(10, 4, 5, 6);

/// An IPv4 packet carrying a TCP segment with `control`, MSS `mss`, the window-scale and SACK
/// options a SYN carries, and `payload`; its TCP checksum written by smoltcp when `tcp` says so
/// (zero otherwise, as the tunnel's device has it).
pub(super) fn tcp_packet(control: TcpControl, mss: Option<u16>, payload: &[u8], tcp: Checksum) -> Vec<u8> {
    let segment = TcpRepr {
        src_port: 49_200,
        dst_port: 7_000,
        control,
        seq_number: TcpSeqNumber(7),
        ack_number: None,
        window_len: 4_096,
        window_scale: Some(5),
        max_seg_size: mss,
        sack_permitted: true,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    };
    let ip = Ipv4Repr {
        src_addr: SOURCE,
        dst_addr: DESTINATION,
        next_header: IpProtocol::Tcp,
        payload_len: segment.buffer_len(),
        hop_limit: 64,
    };
    let mut caps = ChecksumCapabilities::default();
    caps.tcp = tcp;
    let mut bytes = vec![0u8; ip.buffer_len() + segment.buffer_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut bytes), &caps);
    let (source, destination) = (IpAddress::Ipv4(SOURCE), IpAddress::Ipv4(DESTINATION));
    segment.emit(&mut TcpPacket::new_unchecked(&mut bytes[20..]), &source, &destination, &caps);
    bytes
}
