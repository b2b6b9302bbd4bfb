//! TCP checksums of the inner packets smoltcp sends (it leaves the field zero; kernel peers
//! check it), and the IPv4 reading they share with the MSS clamp. smoltcp's own sums 16-bit
//! words one at a time, which cost about as much as a fifth of the encryption on 64 KiB
//! segments; this sums 64-bit words.

/// IPv4's protocol number for TCP.
const TCP: u8 = 6;

/// Writes the TCP checksum of an IPv4 `packet` that carries an unfragmented TCP segment;
/// anything else is left as it is.
pub(crate) fn fill_tcp_checksum(packet: &mut [u8]) {
    if let Some((header, segment)) = tcp_segment(packet) {
        write_tcp_checksum(header, segment);
    }
}

/// Whether the IPv4 `packet` is a fragment (more fragments, or an offset).
pub(crate) fn is_fragment(packet: &[u8]) -> bool {
    packet.get(6..8).is_some_and(|field| u16::from_be_bytes([field[0], field[1]]) & 0x3fff != 0)
}

/// The IPv4 header and the TCP segment of `packet`, when it is IPv4 with a header of at least
/// 20 bytes and carries a whole (unfragmented) TCP segment of at least 20 bytes that its total
/// length puts within the bytes there are.
pub(crate) fn tcp_segment(packet: &mut [u8]) -> Option<(&mut [u8], &mut [u8])> {
    let &version_ihl = packet.first()?;
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || ihl < 20 || packet.len() < ihl + 20 || packet[9] != TCP || is_fragment(packet)
    {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total < ihl + 20 || total > packet.len() {
        return None;
    }
    let (header, rest) = packet.split_at_mut(ihl);
    Some((header, &mut rest[..total - ihl]))
}

/// Writes the checksum of the TCP `segment` carried under the IPv4 `header`.
pub(crate) fn write_tcp_checksum(header: &[u8], segment: &mut [u8]) {
    segment[16..18].copy_from_slice(&[0, 0]);
    let checksum = tcp_checksum(&header[12..16], &header[16..20], segment);
    segment[16..18].copy_from_slice(&checksum.to_be_bytes());
}

/// The TCP checksum of `segment` (whose checksum field must be zero) between IPv4 addresses
/// `source` and `destination`: the one's complement of the one's complement sum of the
/// pseudo-header and the segment in big-endian 16-bit words (RFC 793, RFC 1071).
fn tcp_checksum(source: &[u8], destination: &[u8], segment: &[u8]) -> u16 {
    let length = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    let mut sum = u64::from(TCP) + u64::from(length);
    for pair in source.chunks_exact(2).chain(destination.chunks_exact(2)) {
        sum += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    sum += u64::from(sum_be_words(segment));
    !fold(sum)
}

/// The one's complement sum of `bytes` as big-endian 16-bit words (an odd last byte padded
/// with zero), folded to 16 bits. The sum of the same bytes read as little-endian words is
/// this one with its bytes swapped (RFC 1071, 2.B), so 64-bit little-endian words are summed
/// with their carries and the result swapped.
fn sum_be_words(bytes: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut carries: u64 = 0;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let (next, carry) = sum.overflowing_add(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        sum = next;
        carries += u64::from(carry);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    let (next, carry) = sum.overflowing_add(u64::from_le_bytes(tail));
    // Each carry out of bit 63 is worth 1 again (2^64 = 1 modulo 2^16 - 1).
    let little_endian = fold(u64::from(fold(next)) + u64::from(fold(carries + u64::from(carry))));
    little_endian.swap_bytes()
}

/// Folds a sum of 16-bit words to 16 bits with end-around carries.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use smoltcp::phy::Checksum;
    use smoltcp::wire::{IpAddress, Ipv4Packet, TcpControl, TcpPacket};

    use super::super::test_packets::tcp_packet;
    use super::*;

    /// RFC 1071's definition, one big-endian word at a time.
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        for pair in bytes.chunks(2) {
            sum += u64::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
        fold(sum)
    }

    #[test]
    fn sums_that_carry_out_of_64_bits_fold_back() {
        for len in [0, 1, 2, 7, 8, 9, 64, 65_536, 65_537] {
            assert_eq!(sum_be_words(&vec![0xff; len]), reference(&vec![0xff; len]), "{len} bytes of 0xff");
        }
        // RFC 1071's example: 00 01 f2 03 f4 f5 f6 f7 sums to dd f2.
        assert_eq!(sum_be_words(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0xddf2);
    }

    /// A TCP segment as smoltcp writes it when told not to fill the checksum (the device's
    /// setting), in an IPv4 packet.
    fn unchecked_segment(payload: &[u8]) -> Vec<u8> {
        tcp_packet(TcpControl::Psh, None, payload, Checksum::None)
    }

    /// Whether smoltcp accepts the packet's TCP checksum.
    fn verifies(bytes: &[u8]) -> bool {
        let ip = Ipv4Packet::new_checked(bytes).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        tcp.verify_checksum(&IpAddress::Ipv4(ip.src_addr()), &IpAddress::Ipv4(ip.dst_addr()))
    }

    #[test]
    fn non_tcp_and_malformed_packets_are_left_alone() {
        let mut udp = unchecked_segment(b"x");
        udp[9] = 17;
        let before = udp.clone();
        fill_tcp_checksum(&mut udp);
        assert_eq!(udp, before);
        let mut short = unchecked_segment(b"")[..30].to_vec();
        let before = short.clone();
        fill_tcp_checksum(&mut short);
        assert_eq!(short, before);
    }

    proptest! {
        #[test]
        fn filled_checksums_verify_in_smoltcp(payload in proptest::collection::vec(any::<u8>(), 0..3_000)) {
            let mut packet = unchecked_segment(&payload);
            prop_assert_eq!(&packet[36..38], &[0, 0], "smoltcp left the field to the device");
            fill_tcp_checksum(&mut packet);
            prop_assert!(verifies(&packet));
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            fill_tcp_checksum(&mut bytes);
        }

        #[test]
        fn the_word_sum_matches_rfc_1071(bytes in proptest::collection::vec(any::<u8>(), 0..2_000)) {
            prop_assert_eq!(sum_be_words(&bytes), reference(&bytes));
        }
    }
}
