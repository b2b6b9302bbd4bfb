//! Inner packet sizes: each peer's from the kernel's route to it, or the operator's `mtu`,
//! bounding the TCP segments both ways (the SYNs' MSS is clamped on both sides).

use super::*;

/// WireGuard's data header and tag around an inner packet.
const WIREGUARD_OVERHEAD: usize = 32;

/// `b` dials `a` through a relay (each with its `mtu`), 2 MiB go each way at once; returns
/// the largest datagrams b to a and back.
async fn largest_datagrams(mtu_a: Option<u16>, mtu_b: Option<u16>) -> (usize, usize) {
    let keys = Keys::new(false);
    let a = Tunnel::bind(TunnelConfig { mtu: mtu_a, ..keys.config(0, loopback(), None) }).await.unwrap();
    let mut relay = Relay::bind();
    relay.forward_to(a.local_addr());
    let b = Tunnel::bind(TunnelConfig { mtu: mtu_b, ..keys.config(1, loopback(), Some(relay.addr)) })
        .await
        .unwrap();
    let listener = a.listen(PORT).unwrap();
    let (dialed, accepted) =
        within("connect", async { tokio::join!(b.connect(a.public_key(), PORT), listener.accept()) }).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    let (mut a_read, mut a_write) = tokio::io::split(&mut accepted);
    let (mut b_read, mut b_write) = tokio::io::split(&mut dialed);
    let ((sent_b, got_a), (sent_a, got_b)) = within("transfer", async {
        tokio::join!(
            async { tokio::join!(send_all(&mut b_write, 2 * MIB, 1), receive_all(&mut a_read)) },
            async { tokio::join!(send_all(&mut a_write, 2 * MIB, 2), receive_all(&mut b_read)) },
        )
    })
    .await;
    assert_eq!(got_a, (2 * MIB, sent_b), "b to a intact");
    assert_eq!(got_b, (2 * MIB, sent_a), "a to b intact");
    relay.largest()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_mtu_on_either_side_bounds_the_packets_both_ways() {
    for (mtu_a, mtu_b) in [(Some(1_420), None), (None, Some(1_420)), (Some(1_280), Some(9_000))] {
        let bound = usize::from(mtu_a.into_iter().chain(mtu_b).min().unwrap()) + WIREGUARD_OVERHEAD;
        let (to_a, to_b) = largest_datagrams(mtu_a, mtu_b).await;
        // Full-sized segments, and none larger.
        for largest in [to_a, to_b] {
            assert!(
                largest <= bound && largest > bound - 100,
                "a {mtu_a:?}, b {mtu_b:?}: {largest} of {bound}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_setting_packets_follow_the_route() {
    if !cfg!(target_os = "linux") {
        eprintln!("skipped: the route MTU is read with Linux's IP_MTU; elsewhere every peer gets 1,420");
        return;
    }
    // Loopback's route MTU (65,536) less the outer headers: each 64 KiB write is one packet.
    let (to_a, to_b) = largest_datagrams(None, None).await;
    assert!(to_a > 60_000 && to_b > 60_000, "{to_a} {to_b}");
    assert!(to_a <= 65_456 + WIREGUARD_OVERHEAD && to_b <= 65_456 + WIREGUARD_OVERHEAD, "{to_a} {to_b}");
}
