//! The smoltcp side of the tunnel: a packet queue device. smoltcp writes whole IPv4 packets
//! to `outbound` (the TCP checksum filled in by `TxToken`); the driver encrypts them with WireGuard.
//! Decrypted inner packets are pushed to `inbound` for smoltcp to read.

use std::collections::VecDeque;

use smoltcp::phy::{self, Checksum, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::checksum::fill_tcp_checksum;
use super::mtu::MAX_INNER_MTU;

/// Inner packets waiting either way; bounded so a stalled peer cannot grow memory.
#[derive(Debug, Default)]
pub(crate) struct QueueDevice {
    pub inbound: VecDeque<Vec<u8>>,
    pub outbound: VecDeque<Vec<u8>>,
}

/// At most this many decrypted packets wait for smoltcp; more are dropped (TCP resends them).
pub(crate) const MAX_INBOUND: usize = 4096;

impl Device for QueueDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let packet = self.inbound.pop_front()?;
        Some((RxToken(packet), TxToken(&mut self.outbound)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.outbound))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        // Each peer's segments are bounded by its SYNs' MSS, clamped to its route (`mtu`).
        caps.max_transmission_unit = MAX_INNER_MTU;
        // An inner packet reaches smoltcp only after WireGuard's AEAD authenticated it, which
        // a TCP checksum cannot add to (the Linux module marks them CHECKSUM_UNNECESSARY too);
        // checksums are still written, for kernel peers, by `TxToken` (faster than smoltcp).
        caps.checksum.tcp = Checksum::None;
        caps
    }
}

pub(crate) struct RxToken(Vec<u8>);

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub(crate) struct TxToken<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0u8; len];
        let result = f(&mut packet);
        fill_tcp_checksum(&mut packet);
        self.0.push_back(packet);
        result
    }
}
