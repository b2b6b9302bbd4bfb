//! Cluster-link costs, printed as figures: stream throughput and request/response latency
//! through the userspace tunnel (boringtun + smoltcp) against plain loopback TCP in the same
//! run (the tunnel's throughput twice: with the inner MTU it takes from loopback's route, as a
//! local testnet runs, and at WireGuard's 1,420 of 1,500-byte Ethernet), and the Rosenpass
//! handshake (two in-process `CryptoServer`s, no network) plus the time a fresh Rosenpass-keyed
//! tunnel takes to carry its first stream.
//!
//! `cargo bench -p pyralog-p2p --bench tunnel` (`make bench-tunnel`); `PYRALOG_BENCH_MIB` sets
//! the stream size (default 256).

use std::time::{Duration, Instant};

use pyralog_p2p::tunnel::{PeerConfig, RosenpassKeys, Tunnel, TunnelConfig, WireGuardSecret};
use rosenpass::protocol::{CryptoServer, SPk, SSk};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PORT: u16 = 7000;
const ROUND_TRIPS: usize = 2000;
const MESSAGE: usize = 64;
const THROUGHPUT_ROUNDS: usize = 5;
/// The inner MTU WireGuard uses on 1,500-byte Ethernet, for the tunnel's second figure.
const ETHERNET_MTU: u16 = 1_420;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mib: usize = std::env::var("PYRALOG_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    runtime.block_on(async {
        // One stream's rate depends on where tokio schedules the four tasks (and varied 3x from
        // run to run here): `THROUGHPUT_ROUNDS` of each, alternating, the median reported.
        let (mut tcp_rates, mut tunnel_rates, mut ethernet_rates) = (Vec::new(), Vec::new(), Vec::new());
        let mut udp = String::new();
        for _ in 0..THROUGHPUT_ROUNDS {
            let (tcp_a, tcp_b) = tcp_pair().await;
            tcp_rates.push(throughput(tcp_a, tcp_b, mib).await);
            let (tunnel_a, tunnel_b, _tunnels) = tunnel_pair(false, Some(ETHERNET_MTU)).await;
            ethernet_rates.push(throughput(tunnel_a, tunnel_b, mib).await);
            let (tunnel_a, tunnel_b, tunnels) = tunnel_pair(false, None).await;
            tunnel_rates.push(throughput(tunnel_a, tunnel_b, mib).await);
            let (sender, receiver) = (tunnels.1.stats(), tunnels.0.stats());
            udp = format!(
                "UDP bytes of the last round: sent {} and {} back; lost {}; dropped (busy or invalid) {}",
                sender.tx_bytes,
                receiver.tx_bytes,
                sender.tx_bytes.saturating_sub(receiver.rx_bytes),
                receiver.dropped_busy
                    + sender.dropped_busy
                    + receiver.dropped_invalid
                    + sender.dropped_invalid,
            );
        }
        let rounds = |rates: &[f64]| rates.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(" ");
        println!("tunnel/throughput  {mib} MiB one way, 64 KiB writes, median of {THROUGHPUT_ROUNDS} rounds");
        println!(
            "  each round, MiB/s: TCP {}; tunnel {}; tunnel at MTU {ETHERNET_MTU} {}",
            rounds(&tcp_rates),
            rounds(&tunnel_rates),
            rounds(&ethernet_rates)
        );
        let (tcp_rate, tunnel_rate) = (median(tcp_rates), median(tunnel_rates));
        let ethernet_rate = median(ethernet_rates);
        println!("  loopback TCP      {tcp_rate:8.1} MiB/s");
        println!(
            "  WireGuard+smoltcp {tunnel_rate:8.1} MiB/s  ({:.1}% of TCP; inner MTU from the route: 65,456)",
            100.0 * tunnel_rate / tcp_rate
        );
        println!(
            "  WireGuard+smoltcp {ethernet_rate:8.1} MiB/s  ({:.1}% of TCP; inner MTU {ETHERNET_MTU}, as on Ethernet)",
            100.0 * ethernet_rate / tcp_rate
        );
        println!("  {udp}");

        // Round trips depend on where tokio schedules the two ends; alternate five rounds of
        // each and report the median round.
        let (mut tcp, mut tunnel) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let (tcp_a, tcp_b) = tcp_pair().await;
            tcp.push(latency(tcp_a, tcp_b).await);
            let (tunnel_a, tunnel_b, _tunnels) = tunnel_pair(false, None).await;
            tunnel.push(latency(tunnel_a, tunnel_b).await);
        }
        let p50s = |rounds: &[(f64, f64)]| {
            rounds.iter().map(|r| format!("{:.0}", r.0)).collect::<Vec<_>>().join(" ")
        };
        println!("tunnel/latency  {ROUND_TRIPS} round trips of {MESSAGE} B, median of 5 rounds");
        println!("  p50 of each round, us: TCP {}; tunnel {}", p50s(&tcp), p50s(&tunnel));
        let (tcp, tunnel) = (median_round(tcp), median_round(tunnel));
        println!("  loopback TCP      p50 {:6.1} us  p99 {:6.1} us", tcp.0, tcp.1);
        println!(
            "  WireGuard+smoltcp p50 {:6.1} us  p99 {:6.1} us  ({:+.1} us at p50)",
            tunnel.0,
            tunnel.1,
            tunnel.0 - tcp.0
        );

        let started = Instant::now();
        let (first_a, first_b, _tunnels) = tunnel_pair(true, None).await;
        let first_stream = started.elapsed();
        drop((first_a, first_b));
        // Rosenpass builds McEliece keys on the stack: a thread with a big one.
        let (keygen, handshake) = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(rosenpass_handshakes)
            .unwrap()
            .join()
            .unwrap();
        println!("tunnel/rosenpass");
        println!("  McEliece-460896 keygen          {:8.1} ms", ms(keygen));
        println!("  handshake (4 messages, in-process) {:5.2} ms", ms(handshake));
        println!(
            "  fresh tunnel to first stream    {:8.1} ms  (keygen x2, key exchange, WireGuard)",
            ms(first_stream)
        );
    });
}

/// The median of a few rates.
fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The round with the median p50.
fn median_round(mut rounds: Vec<(f64, f64)>) -> (f64, f64) {
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    rounds[rounds.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (dialed, accepted) =
        tokio::join!(TcpStream::connect(listener.local_addr().unwrap()), listener.accept());
    let (dialed, (accepted, _)) = (dialed.unwrap(), accepted.unwrap());
    dialed.set_nodelay(true).unwrap();
    accepted.set_nodelay(true).unwrap();
    (dialed, accepted)
}

/// Two endpoints and a stream between them (the tunnels are returned to keep them alive); `mtu`
/// as [`TunnelConfig::mtu`].
async fn tunnel_pair(
    rosenpass: bool,
    mtu: Option<u16>,
) -> (pyralog_p2p::tunnel::TunnelStream, pyralog_p2p::tunnel::TunnelStream, (Tunnel, Tunnel)) {
    let (key_a, key_b) = (WireGuardSecret::generate(), WireGuardSecret::generate());
    let keys = |on: bool| on.then(|| RosenpassKeys::generate().unwrap());
    let (pq_a, pq_b) = (keys(rosenpass), keys(rosenpass));
    let a = Tunnel::bind(TunnelConfig {
        mtu,
        listen: "127.0.0.1:0".parse().unwrap(),
        secret: key_a.clone(),
        rosenpass: pq_a.clone(),
        peers: vec![PeerConfig {
            public_key: key_b.public(),
            endpoint: None,
            rosenpass_public_key: pq_b.as_ref().map(|k| k.public.clone()),
            rosenpass_endpoint: None,
        }],
    })
    .await
    .unwrap();
    let b = Tunnel::bind(TunnelConfig {
        mtu,
        listen: "127.0.0.1:0".parse().unwrap(),
        secret: key_b,
        rosenpass: pq_b,
        peers: vec![PeerConfig {
            public_key: key_a.public(),
            endpoint: Some(a.local_addr()),
            rosenpass_public_key: pq_a.map(|k| k.public),
            rosenpass_endpoint: None,
        }],
    })
    .await
    .unwrap();
    let listener = a.listen(PORT).unwrap();
    let (dialed, accepted) = tokio::join!(b.connect(a.public_key(), PORT), listener.accept());
    (dialed.unwrap(), accepted.unwrap(), (a, b))
}

/// MiB/s of `mib` MiB written on `from` and read to the end on `to`.
async fn throughput<W, R>(mut from: W, mut to: R, mib: usize) -> f64
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    let block = vec![0x5au8; 64 * 1024];
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for _ in 0..mib * 16 {
            from.write_all(&block).await.unwrap();
        }
        from.shutdown().await.unwrap();
        from
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let read = to.read(&mut buf).await.unwrap();
        if read == 0 {
            break;
        }
        total += read;
    }
    let _from = writer.await.unwrap();
    assert_eq!(total, mib << 20);
    mib as f64 / started.elapsed().as_secs_f64()
}

/// p50 and p99 microseconds of a `MESSAGE`-byte request answered by an echo.
async fn latency<S>(mut client: S, mut server: S) -> (f64, f64)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; MESSAGE];
        while server.read_exact(&mut buf).await.is_ok() {
            if server.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    let mut buf = [7u8; MESSAGE];
    for round in 0..ROUND_TRIPS + 100 {
        let started = Instant::now();
        client.write_all(&buf).await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        // The first hundred warm up.
        if round >= 100 {
            samples.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(client);
    let _ = echo.await;
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

/// Mean McEliece key generation and mean full Rosenpass handshake between two servers.
fn rosenpass_handshakes() -> (Duration, Duration) {
    const HANDSHAKES: u32 = 20;
    let started = Instant::now();
    let (a, b) = (RosenpassKeys::generate().unwrap(), RosenpassKeys::generate().unwrap());
    let keygen = started.elapsed() / 2;
    let mut initiator = CryptoServer::new(SSk::from_slice(&a.secret), SPk::from_slice(&a.public));
    let mut responder = CryptoServer::new(SSk::from_slice(&b.secret), SPk::from_slice(&b.public));
    let to_b = initiator.add_peer(None, SPk::from_slice(&b.public)).unwrap();
    let to_a = responder.add_peer(None, SPk::from_slice(&a.public)).unwrap();
    let (mut one, mut two) = (vec![0u8; 4096], vec![0u8; 4096]);
    let started = Instant::now();
    for _ in 0..HANDSHAKES {
        let len = initiator.initiate_handshake(to_b, &mut one).unwrap();
        let len = responder.handle_msg(&one[..len], &mut two).unwrap().resp.unwrap();
        let len = initiator.handle_msg(&two[..len], &mut one).unwrap().resp.unwrap();
        let confirmed = responder.handle_msg(&one[..len], &mut two).unwrap();
        let len = confirmed.resp.unwrap();
        initiator.handle_msg(&two[..len], &mut one).unwrap();
        assert_eq!(
            initiator.osk(to_b).unwrap().secret(),
            responder.osk(to_a).unwrap().secret(),
            "both sides derive the same key"
        );
    }
    (keygen, started.elapsed() / HANDSHAKES)
}
