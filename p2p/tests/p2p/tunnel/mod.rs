//! WireGuard + smoltcp + Rosenpass tunnels between endpoints in this process, over loopback UDP.

use std::time::Duration;

use pyralog_crypto::keys::KeyFileError;
use pyralog_p2p::tunnel::{
    PeerConfig, RosenpassKeys, Tunnel, TunnelConfig, TunnelError, TunnelListener, TunnelStats,
    WireGuardPublic, WireGuardSecret,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use relay::Relay;

mod mtu;
mod relay;

const PORT: u16 = 7000;
const MIB: usize = 1 << 20;

fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn peer(public_key: WireGuardPublic, endpoint: Option<std::net::SocketAddr>) -> PeerConfig {
    PeerConfig { public_key, endpoint, rosenpass_public_key: None, rosenpass_endpoint: None }
}

/// A listening endpoint `a` and a dialing endpoint `b` that knows `a`'s address (`a` learns
/// `b`'s from its first authenticated datagram). With `rosenpass`, both run it.
async fn pair(rosenpass: bool) -> (Tunnel, Tunnel) {
    let keys = Keys::new(rosenpass);
    let a = keys.bind_a().await;
    let b = keys.bind_b(a.local_addr(), loopback()).await;
    (a, b)
}

/// Both sides' keys, so a test can restart an endpoint with the same identity.
struct Keys {
    wireguard: [WireGuardSecret; 2],
    rosenpass: [Option<RosenpassKeys>; 2],
}

impl Keys {
    fn new(rosenpass: bool) -> Keys {
        let pq = || rosenpass.then(|| RosenpassKeys::generate().unwrap());
        Keys {
            wireguard: [WireGuardSecret::generate(), WireGuardSecret::generate()],
            rosenpass: [pq(), pq()],
        }
    }

    fn config(
        &self,
        me: usize,
        listen: std::net::SocketAddr,
        endpoint: Option<std::net::SocketAddr>,
    ) -> TunnelConfig {
        let other = 1 - me;
        TunnelConfig {
            mtu: None,
            listen,
            secret: self.wireguard[me].clone(),
            rosenpass: self.rosenpass[me].clone(),
            peers: vec![PeerConfig {
                rosenpass_public_key: self.rosenpass[other].as_ref().map(|k| k.public.clone()),
                ..peer(self.wireguard[other].public(), endpoint)
            }],
        }
    }

    async fn bind_a(&self) -> Tunnel {
        Tunnel::bind(self.config(0, loopback(), None)).await.unwrap()
    }

    async fn bind_b(&self, a: std::net::SocketAddr, listen: std::net::SocketAddr) -> Tunnel {
        Tunnel::bind(self.config(1, listen, Some(a))).await.unwrap()
    }
}

/// Deterministic bytes: a counter hashed in blocks.
fn chunk(index: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(&index.to_le_bytes()).finalize_xof().fill(&mut out);
    out
}

/// Sends `total` bytes (blocks `seed << 32`, `seed << 32 + 1`, ...), closes the write half,
/// and returns their hash.
async fn send_all(writer: &mut (impl AsyncWriteExt + Unpin), total: usize, seed: u64) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    let mut sent = 0;
    let mut index = seed << 32;
    while sent < total {
        let block = chunk(index, (64 * 1024).min(total - sent));
        hasher.update(&block);
        writer.write_all(&block).await.unwrap();
        sent += block.len();
        index += 1;
    }
    writer.shutdown().await.unwrap();
    hasher.finalize()
}

/// Reads to the end; returns the byte count and hash.
async fn receive_all(reader: &mut (impl AsyncReadExt + Unpin)) -> (usize, blake3::Hash) {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let read = reader.read(&mut buf).await.unwrap();
        if read == 0 {
            return (total, hasher.finalize());
        }
        hasher.update(&buf[..read]);
        total += read;
    }
}

/// Polls `tunnel`'s counters until `check` holds (30 s at most).
async fn until(what: &str, tunnel: &Tunnel, check: impl Fn(&TunnelStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check(&tunnel.stats()) {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {:?}", tunnel.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish in 120 s"))
}

/// `b` dials `a`'s `listener` and sends `bytes` (blocks of `seed`); they must arrive intact.
async fn stream_intact(a: &Tunnel, b: &Tunnel, listener: &TunnelListener, bytes: usize, seed: u64) {
    let (dialed, accepted) =
        within("connect", async { tokio::join!(b.connect(a.public_key(), PORT), listener.accept()) }).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    let (sent, received) = within("transfer", async {
        tokio::join!(send_all(&mut dialed, bytes, seed), receive_all(&mut accepted))
    })
    .await;
    assert_eq!(received, (bytes, sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_stream_arrives_intact_both_ways() {
    let (a, b) = pair(false).await;
    let listener = a.listen(PORT).unwrap();
    let (dialed, accepted) =
        within("connect", async { tokio::join!(b.connect(a.public_key(), PORT), listener.accept()) }).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    assert_eq!(accepted.peer(), b.public_key(), "the listener knows who dialed, by key");
    assert_eq!(dialed.peer(), a.public_key());

    let (mut a_read, mut a_write) = tokio::io::split(&mut accepted);
    let (mut b_read, mut b_write) = tokio::io::split(&mut dialed);
    let total = 100 * MIB;
    let ((sent_b, got_a), (sent_a, got_b)) = within("transfer", async {
        tokio::join!(
            async { tokio::join!(send_all(&mut b_write, total, 1), receive_all(&mut a_read)) },
            async { tokio::join!(send_all(&mut a_write, 10 * MIB, 2), receive_all(&mut b_read)) },
        )
    })
    .await;
    assert_eq!(got_a, (total, sent_b), "100 MiB from b arrive at a intact");
    assert_eq!(got_b, (10 * MIB, sent_a), "10 MiB from a arrive at b at the same time");
    let (stats_a, stats_b) = (a.stats(), b.stats());
    assert!(stats_a.rx_bytes > total as u64 && stats_b.tx_bytes > total as u64, "{stats_a:?} {stats_b:?}");
    assert_eq!(stats_a.dropped_invalid + stats_a.dropped_unknown_peer, 0, "{stats_a:?}");
    assert!(stats_a.handshakes >= 1 && stats_b.handshakes >= 1);
}

/// Both ends write more than the windows hold, shut down, and only then read: `shutdown`
/// returns while bytes are queued (the FIN follows them), so neither waits on the other, and
/// every byte and both FINs arrive. Writing after `shutdown` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ends_that_shut_down_with_bytes_queued_still_deliver_them() {
    let (a, b) = pair(false).await;
    let listener = a.listen(PORT).unwrap();
    let (dialed, accepted) =
        within("connect", async { tokio::join!(b.connect(a.public_key(), PORT), listener.accept()) }).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    let bytes = 3 * MIB / 2;
    let ((sent_b, got_b), (sent_a, got_a)) = within("write, shut down, read", async {
        tokio::join!(write_shut_read(&mut dialed, bytes, 1), write_shut_read(&mut accepted, bytes, 2))
    })
    .await;
    assert_eq!(got_b, (bytes, sent_a), "a's bytes reach b");
    assert_eq!(got_a, (bytes, sent_b), "b's bytes reach a");
}

/// Writes `bytes` (blocks of `seed`) and shuts down before reading anything, checks that a
/// later write is refused, then reads to the end.
async fn write_shut_read(
    stream: &mut pyralog_p2p::tunnel::TunnelStream,
    bytes: usize,
    seed: u64,
) -> (blake3::Hash, (usize, blake3::Hash)) {
    let (mut read, mut write) = tokio::io::split(stream);
    // `send_all` shuts down after its last write.
    let sent = send_all(&mut write, bytes, seed).await;
    let error = write.write_all(b"late").await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    (sent, receive_all(&mut read).await)
}

/// A peer that roamed to an address which then went away (a relay, a NAT) is looked for at its
/// configured address again: b reaches a only through a relay, so a knows b at the relay's
/// address; when the relay is gone, a's next connection to b goes to b's configured address
/// after a few silent seconds, and b learns a's real address from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_whose_roamed_to_address_vanishes_is_found_at_its_configured_one() {
    let keys = Keys::new(false);
    let mut relay = Relay::bind();
    let b = Tunnel::bind(keys.config(1, loopback(), Some(relay.addr))).await.unwrap();
    let a = Tunnel::bind(keys.config(0, loopback(), Some(b.local_addr()))).await.unwrap();
    relay.forward_to(a.local_addr());

    let listener = a.listen(PORT).unwrap();
    let (dialed, accepted) = within("connect through the relay", async {
        tokio::join!(b.connect(a.public_key(), PORT), listener.accept())
    })
    .await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    dialed.write_all(b"via relay").await.unwrap();
    let mut got = [0u8; 9];
    accepted.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"via relay");

    drop(relay);
    let listener = b.listen(PORT).unwrap();
    let (dialed, accepted) = within("connect after the relay is gone", async {
        tokio::join!(a.connect(b.public_key(), PORT), listener.accept())
    })
    .await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    dialed.write_all(b"direct").await.unwrap();
    let mut got = [0u8; 6];
    accepted.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"direct");
    assert!(a.stats().endpoint_fallbacks >= 1, "{:?}", a.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_preshared_key_under_load_loses_no_bytes() {
    let (a, b) = pair(false).await;
    let listener = a.listen(PORT).unwrap();
    let (dialed, accepted) = tokio::join!(b.connect(a.public_key(), PORT), listener.accept());
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    let rotated = std::sync::atomic::AtomicBool::new(false);
    let rotations = async {
        for round in 0..3u8 {
            // Wait until some of the stream has moved under the current key.
            let before = a.stats().rx_bytes;
            while a.stats().rx_bytes < before + 2 * MIB as u64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let key = [round + 1; 32];
            a.set_preshared_key(b.public_key(), key).unwrap();
            b.set_preshared_key(a.public_key(), key).unwrap();
            // The new session must come up before the next rotation drops the old one.
            let handshakes = a.stats().handshakes;
            while a.stats().handshakes == handshakes {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        rotated.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    // The sender keeps the stream busy until the third new session is up.
    let sending = async {
        let mut hasher = blake3::Hasher::new();
        let mut sent = 0;
        let mut index = 0;
        while sent < 8 * MIB || !rotated.load(std::sync::atomic::Ordering::Relaxed) {
            let block = chunk(index, 64 * 1024);
            hasher.update(&block);
            dialed.write_all(&block).await.unwrap();
            sent += block.len();
            index += 1;
        }
        dialed.shutdown().await.unwrap();
        (sent, hasher.finalize())
    };
    let (sent, received, ()) =
        within("transfer", async { tokio::join!(sending, receive_all(&mut accepted), rotations) }).await;
    assert_eq!(received, sent, "every byte arrives, in order, across three key changes");
    let stats = a.stats();
    assert_eq!(stats.psk_rotations, 3);
    assert!(stats.handshakes >= 4, "a new session per key: {stats:?}");
    assert_eq!(stats.dropped_invalid, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_the_peer_does_not_share_leaves_the_working_session_in_use() {
    let (a, b) = pair(false).await;
    let listener = a.listen(PORT).unwrap();
    let (dialed, accepted) = tokio::join!(b.connect(a.public_key(), PORT), listener.accept());
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    // Two different keys, twice: no new session can come up, and the second rotation must
    // drop the failed key, not the one the stream runs on.
    for round in 0..2u8 {
        let failed = a.stats().dropped_invalid + b.stats().dropped_invalid;
        a.set_preshared_key(b.public_key(), [round; 32]).unwrap();
        b.set_preshared_key(a.public_key(), [round + 100; 32]).unwrap();
        // Past the delayed initiation of the new key, which fails: its handshake response does
        // not decrypt under the other key (observed in the counters, not waited out).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while a.stats().dropped_invalid + b.stats().dropped_invalid == failed {
            assert!(tokio::time::Instant::now() < deadline, "no failed handshake: {:?}", a.stats());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        dialed.write_all(&chunk(u64::from(round), 256 * 1024)).await.unwrap();
        let mut got = vec![0u8; 256 * 1024];
        within("the stream under the old session", accepted.read_exact(&mut got)).await.unwrap();
        assert!(got == chunk(u64::from(round), 256 * 1024));
    }
    // A key both share brings a new session up, and the stream goes on.
    let handshakes = a.stats().handshakes;
    a.set_preshared_key(b.public_key(), [7; 32]).unwrap();
    b.set_preshared_key(a.public_key(), [7; 32]).unwrap();
    let (sent, received) = within("transfer", async {
        tokio::join!(send_all(&mut dialed, 4 * MIB, 0), receive_all(&mut accepted))
    })
    .await;
    assert_eq!(received, (4 * MIB, sent));
    until("a session under the shared key", &a, |stats| stats.handshakes > handshakes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rosenpass_keys_the_tunnel_on_both_sides() {
    let (a, b) = pair(true).await;
    let listener = a.listen(PORT).unwrap();
    // The preshared keys start random on each side: a stream can only get through once both
    // sides hold the same Rosenpass key.
    stream_intact(&a, &b, &listener, 4 * MIB, 0).await;
    for stats in [a.stats(), b.stats()] {
        assert!(stats.rosenpass_exchanges >= 1, "{stats:?}");
        assert!(stats.psk_rotations >= 1, "{stats:?}");
        assert_eq!(stats.rosenpass_stale, 0);
    }
}

/// The side that starts the pair's Rosenpass exchanges (the lower WireGuard key) here is `a`,
/// which does not know `b`'s address: its first messages have nowhere to go. `b`'s WireGuard
/// initiation (under a preshared key `a` does not share yet) shows where `b` is, and the
/// exchange goes there: the link comes up without the stalled-key rescue, which took about
/// 15 s before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exchange_starter_without_the_peers_address_reaches_it_through_its_initiation() {
    let mut keys = Keys::new(true);
    if keys.wireguard[0].public() > keys.wireguard[1].public() {
        keys.wireguard.swap(0, 1);
    }
    let a = keys.bind_a().await;
    let b = keys.bind_b(a.local_addr(), loopback()).await;
    let listener = a.listen(PORT).unwrap();
    stream_intact(&a, &b, &listener, MIB, 1).await;
    for stats in [a.stats(), b.stats()] {
        assert!(stats.rosenpass_exchanges >= 1, "{stats:?}");
        assert_eq!(stats.rosenpass_rescues, 0, "the link needed the stalled-key rescue: {stats:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_that_never_starts_exchanges_gets_a_new_key_and_reconnects() {
    // Of a pair, the lower WireGuard key starts Rosenpass exchanges. Make `b` the other one, so
    // that after its restart only its own "this key carries no session" rescue can bring the
    // link back before `a`'s scheduled rekey (130 s, past this test's deadline).
    let mut keys = Keys::new(true);
    if keys.wireguard[1].public() < keys.wireguard[0].public() {
        keys.wireguard.swap(0, 1);
    }
    let a = keys.bind_a().await;
    let listener = a.listen(PORT).unwrap();
    let b = keys.bind_b(a.local_addr(), loopback()).await;
    let (dialed, accepted) =
        within("connect", async { tokio::join!(b.connect(a.public_key(), PORT), listener.accept()) }).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    let (sent, received) =
        within("transfer", async { tokio::join!(send_all(&mut dialed, MIB, 0), receive_all(&mut accepted)) })
            .await;
    assert_eq!(received, (MIB, sent));
    let exchanges_before = a.stats().rosenpass_exchanges;

    // b restarts on the same address: new Rosenpass state, new random preshared key, while a
    // still holds the old key and a live WireGuard session.
    let b_addr = b.local_addr();
    drop((dialed, accepted, b));
    // The old socket closes once b's driver task and Rosenpass thread have seen the drop.
    let b = within("b's old socket released", async {
        loop {
            match Tunnel::bind(keys.config(1, b_addr, Some(a.local_addr()))).await {
                Ok(tunnel) => break tunnel,
                Err(TunnelError::Io(reason)) if reason.contains("in use") => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(err) => panic!("{err}"),
            }
        }
    })
    .await;
    let (dialed, accepted) = within("reconnect after the restart", async {
        loop {
            // A connect nobody answers fails after the stream timeout (20 s); then retry.
            match b.connect(a.public_key(), PORT).await {
                Ok(stream) => return (stream, listener.accept().await.unwrap()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    let (mut dialed, mut accepted) = (dialed, accepted);
    let (sent, received) =
        within("transfer", async { tokio::join!(send_all(&mut dialed, MIB, 0), receive_all(&mut accepted)) })
            .await;
    assert_eq!(received, (MIB, sent));
    assert!(b.stats().rosenpass_exchanges >= 1, "{:?}", b.stats());
    assert!(a.stats().rosenpass_exchanges > exchanges_before, "{:?}", a.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_an_unknown_key_or_forged_datagrams_get_nothing() {
    let (a, _b) = pair(false).await;
    let _listener = a.listen(PORT).unwrap();
    // A stranger who knows a's public key and address but is not in a's peer list.
    let stranger = Tunnel::bind(TunnelConfig {
        mtu: None,
        listen: loopback(),
        secret: WireGuardSecret::generate(),
        rosenpass: None,
        peers: vec![peer(a.public_key(), Some(a.local_addr()))],
    })
    .await
    .unwrap();
    let attempt = tokio::time::timeout(Duration::from_secs(3), stranger.connect(a.public_key(), PORT)).await;
    assert!(attempt.is_err(), "the stranger's connect must hang unanswered, got {attempt:?}");
    // Polled, not slept: the stranger's initiations are counted as they arrive.
    until("the stranger's initiation to reach a", &a, |stats| stats.dropped_unknown_peer > 0).await;
    assert_eq!(stranger.stats().rx_bytes, 0, "a answered the stranger: {:?}", stranger.stats());

    // Forged datagrams of every kind: WireGuard messages with made-up indices or a bad MAC,
    // Rosenpass messages (a runs no Rosenpass here), and unknown types.
    let forger = std::net::UdpSocket::bind(loopback()).unwrap();
    forger.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut forged: Vec<Vec<u8>> = Vec::new();
    for (kind, len) in [(1u8, 148usize), (2, 92), (3, 64), (4, 32), (4, 1200), (0x81, 200), (0x42, 64)] {
        let mut datagram = chunk(u64::from(kind) << 16 | len as u64, len);
        datagram[0] = kind;
        if kind <= 4 {
            datagram[1..4].fill(0);
        }
        forged.push(datagram);
    }
    forged.push(Vec::new());
    let invalid_before = a.stats().dropped_invalid + a.stats().dropped_unknown_peer;
    for datagram in &forged {
        forger.send_to(datagram, a.local_addr()).unwrap();
    }
    // The empty datagram is never delivered as one: count the others.
    let refused = invalid_before + forged.len() as u64 - 1;
    until("every forged datagram refused", &a, |stats| {
        stats.dropped_invalid + stats.dropped_unknown_peer >= refused
    })
    .await;
    let mut answer = [0u8; 2048];
    let silence = forger.recv_from(&mut answer).expect_err("a answered a forged datagram");
    assert!(
        matches!(silence.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        "{silence}"
    );
    assert_eq!(a.stats().tx_bytes, 0, "a sent something: {:?}", a.stats());
}

#[tokio::test]
async fn bad_keys_and_configs_are_typed_errors() {
    assert!(matches!("not base64!".parse::<WireGuardPublic>(), Err(TunnelError::BadKey(_))));
    assert!(matches!("AAAA".parse::<WireGuardPublic>(), Err(TunnelError::BadKey(_))));
    let secret = WireGuardSecret::generate();
    assert_eq!(
        WireGuardSecret::from_base64(&secret.to_base64()).unwrap().public(),
        secret.public(),
        "keys round-trip through wg's base64"
    );
    let other = WireGuardSecret::generate().public();
    let twice = Tunnel::bind(TunnelConfig {
        mtu: None,
        listen: loopback(),
        secret: secret.clone(),
        rosenpass: None,
        peers: vec![peer(other, None), peer(other, None)],
    })
    .await;
    assert!(matches!(twice, Err(TunnelError::Config(_))), "{twice:?}");
    let myself = Tunnel::bind(TunnelConfig {
        mtu: None,
        listen: loopback(),
        secret: secret.clone(),
        rosenpass: None,
        peers: vec![peer(secret.public(), None)],
    })
    .await;
    assert!(matches!(myself, Err(TunnelError::Config(_))), "{myself:?}");
    let short_pq = Tunnel::bind(TunnelConfig {
        mtu: None,
        listen: loopback(),
        secret: secret.clone(),
        rosenpass: Some(RosenpassKeys::generate().unwrap()),
        peers: vec![PeerConfig { rosenpass_public_key: Some(vec![0; 32]), ..peer(other, None) }],
    })
    .await;
    assert!(matches!(short_pq, Err(TunnelError::BadKey(_))), "{short_pq:?}");

    let tunnel =
        Tunnel::bind(TunnelConfig { mtu: None, listen: loopback(), secret, rosenpass: None, peers: vec![] })
            .await
            .unwrap();
    let unknown = tunnel.connect(other, PORT).await.unwrap_err();
    assert_eq!(unknown.kind(), std::io::ErrorKind::NotFound, "{unknown}");
    assert!(matches!(tunnel.set_preshared_key(other, [0; 32]), Err(TunnelError::UnknownPeer(_))));
    let _listening = tunnel.listen(PORT).unwrap();
    assert!(matches!(tunnel.listen(PORT), Err(TunnelError::PortInUse(PORT))));
}

/// A member added to a running cluster: its peers learn it while their tunnels run, and the
/// link it gets is keyed by Rosenpass like the others. Adding it again is a no-op; a clash is
/// refused and adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_added_while_the_tunnel_runs_links_with_rosenpass() {
    let keys = Keys::new(true);
    let a = Tunnel::bind(TunnelConfig {
        mtu: None,
        listen: loopback(),
        secret: keys.wireguard[0].clone(),
        rosenpass: keys.rosenpass[0].clone(),
        peers: vec![],
    })
    .await
    .unwrap();
    let b = keys.bind_b(a.local_addr(), loopback()).await;
    let b_as_peer = PeerConfig {
        rosenpass_public_key: keys.rosenpass[1].as_ref().map(|k| k.public.clone()),
        ..peer(b.public_key(), Some(b.local_addr()))
    };
    let refused = [
        (PeerConfig { rosenpass_public_key: Some(vec![0; 32]), ..b_as_peer.clone() }, "BadKey"),
        (peer(a.public_key(), None), "Config"),
    ];
    for (config, variant) in refused {
        let outcome = a.add_peer(config).await;
        assert!(format!("{outcome:?}").starts_with(&format!("Err({variant}(")), "{outcome:?}");
    }
    let unknown = a.connect(b.public_key(), PORT).await.unwrap_err();
    assert_eq!(unknown.kind(), std::io::ErrorKind::NotFound, "nothing was added: {unknown}");

    assert!(a.add_peer(b_as_peer.clone()).await.unwrap());
    assert!(!a.add_peer(b_as_peer.clone()).await.unwrap(), "the same peer again changes nothing");
    let other_rosenpass = RosenpassKeys::generate().unwrap().public;
    let clashes = [
        ("b at another endpoint", peer(b.public_key(), Some(loopback()))),
        (
            "b with another Rosenpass key",
            PeerConfig { rosenpass_public_key: Some(other_rosenpass), ..b_as_peer.clone() },
        ),
        ("another key at b's endpoint", peer(WireGuardSecret::generate().public(), Some(b.local_addr()))),
        (
            "another key with b's Rosenpass key",
            PeerConfig {
                rosenpass_public_key: b_as_peer.rosenpass_public_key.clone(),
                ..peer(WireGuardSecret::generate().public(), None)
            },
        ),
    ];
    for (what, config) in clashes {
        let outcome = a.add_peer(config).await;
        assert!(matches!(outcome, Err(TunnelError::Config(_))), "{what}: {outcome:?}");
    }

    // Both directions carry streams once Rosenpass has keyed the link.
    let at_a = a.listen(PORT).unwrap();
    let at_b = b.listen(PORT + 1).unwrap();
    let (dialed, accepted) =
        within("b to a", async { tokio::join!(b.connect(a.public_key(), PORT), at_a.accept()) }).await;
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    let (sent, received) =
        within("transfer", async { tokio::join!(send_all(&mut dialed, MIB, 1), receive_all(&mut accepted)) })
            .await;
    assert_eq!(received, (MIB, sent));
    let (dialed, accepted) =
        within("a to b", async { tokio::join!(a.connect(b.public_key(), PORT + 1), at_b.accept()) }).await;
    assert_eq!(dialed.unwrap().peer(), b.public_key());
    assert_eq!(accepted.unwrap().peer(), a.public_key());
    for stats in [a.stats(), b.stats()] {
        assert!(stats.rosenpass_exchanges >= 1, "{stats:?}");
    }
}

/// Secret key files load only when private; the WireGuard one is `wg genkey`'s text.
#[test]
fn secret_key_files_load_only_when_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (wg, rp_secret, rp_public) =
        (dir.path().join("wg.key"), dir.path().join("rp.secret"), dir.path().join("rp.pub"));
    let secret = WireGuardSecret::generate();
    pyralog_crypto::keys::write_private_file(&wg, format!("{}\n", secret.to_base64()).as_bytes()).unwrap();
    assert_eq!(WireGuardSecret::load(&wg).unwrap().public(), secret.public());
    let pair = RosenpassKeys::generate().unwrap();
    pair.save(&rp_secret, &rp_public).unwrap();
    assert_eq!(RosenpassKeys::load(&rp_secret, &rp_public).unwrap().secret, pair.secret);

    for file in [&wg, &rp_secret] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let exposed = WireGuardSecret::load(&wg).unwrap_err();
    assert!(matches!(exposed, TunnelError::KeyFile(KeyFileError::InsecurePermissions { .. })), "{exposed}");
    let exposed = RosenpassKeys::load(&rp_secret, &rp_public).unwrap_err();
    assert!(matches!(exposed, TunnelError::KeyFile(KeyFileError::InsecurePermissions { .. })), "{exposed}");

    std::fs::remove_file(&wg).unwrap();
    pyralog_crypto::keys::write_private_file(&wg, b"not a key\n").unwrap();
    assert!(matches!(WireGuardSecret::load(&wg), Err(TunnelError::BadKey(_))));
    std::fs::remove_file(&rp_secret).unwrap();
    pyralog_crypto::keys::write_private_file(&rp_secret, &pair.secret[..100]).unwrap();
    let short = RosenpassKeys::load(&rp_secret, &rp_public).unwrap_err();
    assert!(matches!(short, TunnelError::BadKey(_)), "{short}");
}

#[test]
fn overlay_addresses_are_private_and_stable() {
    for _ in 0..1000 {
        let key = WireGuardSecret::generate().public();
        let address = key.overlay_ipv4();
        assert_eq!(address, key.overlay_ipv4());
        let [a, b, c, d] = address.octets();
        assert_eq!(a, 10);
        assert_ne!([b, c, d], [0, 0, 0]);
        assert_ne!([b, c, d], [255, 255, 255]);
    }
}
