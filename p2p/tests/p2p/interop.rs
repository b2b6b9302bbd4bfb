//! Our userspace tunnel against the reference implementations: wireguard-go on a TUN device in
//! a network namespace (root only), and the `rosenpass` binary (0.2.3, installed by `make
//! deps`) deriving the same preshared keys as our in-process Rosenpass.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use pyralog_p2p::tunnel::{
    PeerConfig, RosenpassKeys, Tunnel, TunnelConfig, TunnelStream, WireGuardPublic, WireGuardSecret,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(60);

/// Why this machine cannot run a test, if it cannot: the test then prints it and passes.
fn missing(tools: &[&str], root: bool) -> Option<String> {
    if root && !is_root() {
        return Some("needs root (network namespaces, TUN devices); CI runs as root".into());
    }
    let absent: Vec<&str> = tools.iter().copied().filter(|tool| which(tool).is_none()).collect();
    (!absent.is_empty()).then(|| format!("missing {} (make deps installs them)", absent.join(", ")))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(tool))
        .find(|path| path.is_file())
}

/// The `rosenpass` binary: `PYRALOG_ROSENPASS`, then where `make deps` installs it, then PATH.
fn rosenpass_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PYRALOG_ROSENPASS") {
        return Some(path.into());
    }
    let home = std::env::var_os("HOME")?;
    let cached = Path::new(&home).join(".cache/pyralog/tools/bin/rosenpass");
    if cached.is_file() { Some(cached) } else { which("rosenpass") }
}

fn skip(test: &str, reason: &str) {
    // CI installs everything: a missing tool there is a broken setup, not a reason to skip.
    assert!(std::env::var_os("CI").is_none() || reason.starts_with("needs root"), "{test}: {reason}");
    println!("SKIPPED {test}: {reason}");
}

fn run(command: &mut Command) {
    let out = command.output().unwrap_or_else(|err| panic!("{command:?}: {err}"));
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).args(args);
    command
}

/// A network namespace linked to the host by a veth pair; deleted (with everything in it) on
/// drop, and its processes killed.
struct Namespace {
    name: String,
    host_veth: String,
    host: Ipv4Addr,
    inside: Ipv4Addr,
    children: Vec<Child>,
}

impl Namespace {
    fn new() -> Namespace {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let subnet = (std::process::id() % 200) as u8 + n as u8;
        let ns = Namespace {
            name: format!("pyr{tag}"),
            host_veth: format!("pyrh{tag}"),
            host: Ipv4Addr::new(172, 30, subnet, 1),
            inside: Ipv4Addr::new(172, 30, subnet, 2),
            children: Vec::new(),
        };
        let inner_veth = format!("pyrn{tag}");
        run(Command::new("ip").args(["netns", "add", &ns.name]));
        run(Command::new("ip").args([
            "link",
            "add",
            &ns.host_veth,
            "type",
            "veth",
            "peer",
            "name",
            &inner_veth,
        ]));
        run(Command::new("ip").args(["link", "set", &inner_veth, "netns", &ns.name]));
        run(Command::new("ip").args(["addr", "add", &format!("{}/30", ns.host), "dev", &ns.host_veth]));
        run(Command::new("ip").args(["link", "set", &ns.host_veth, "up"]));
        run(&mut in_ns(&ns.name, &["ip", "addr", "add", &format!("{}/30", ns.inside), "dev", &inner_veth]));
        run(&mut in_ns(&ns.name, &["ip", "link", "set", &inner_veth, "up"]));
        run(&mut in_ns(&ns.name, &["ip", "link", "set", "lo", "up"]));
        ns
    }

    fn spawn(&mut self, args: &[&str]) {
        let child = in_ns(&self.name, args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{args:?}: {err}"));
        self.children.push(child);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["link", "del", &self.host_veth]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// Retries `connect` (the far side may not listen yet) until the deadline.
async fn connect_until(
    tunnel: &Tunnel,
    peer: pyralog_p2p::tunnel::WireGuardPublic,
    port: u16,
) -> TunnelStream {
    let started = Instant::now();
    loop {
        match tunnel.connect(peer, port).await {
            Ok(stream) => return stream,
            Err(err) => {
                assert!(
                    started.elapsed() < DEADLINE,
                    "connect through the tunnel: {err}; {:?}",
                    tunnel.stats()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Writes `len` bytes and reads the echo back concurrently.
async fn echo(stream: &mut TunnelStream, len: usize, seed: u8) {
    let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let sent = data.clone();
    let (written, echoed) = tokio::time::timeout(DEADLINE, async {
        tokio::join!(writer.write_all(&sent), async {
            let mut back = vec![0u8; len];
            reader.read_exact(&mut back).await.map(|_| back)
        })
    })
    .await
    .expect("the echo did not come back in time");
    written.unwrap();
    assert!(echoed.unwrap() == data, "the echo differs from what was sent");
}

/// wireguard-go on a TUN device in `ns` with key `theirs`, listening on UDP 51820, its one peer
/// `ours` (allowed: its overlay address; endpoint learned from its first handshake), and a
/// socat echo server on its overlay address, port 7777, behind it. Returns the device name.
fn wireguard_go(ns: &mut Namespace, theirs: &WireGuardSecret, ours: WireGuardPublic, dir: &Path) -> String {
    let device = format!("{}w", ns.name);
    let (their_overlay, our_overlay) = (theirs.public().overlay_ipv4(), ours.overlay_ipv4());
    let key_file = dir.join("wg.key");
    std::fs::write(&key_file, theirs.to_base64()).unwrap();
    ns.spawn(&["wireguard-go", "-f", &device]);
    let started = Instant::now();
    while !in_ns(&ns.name, &["wg", "show", &device]).output().is_ok_and(|out| out.status.success()) {
        assert!(started.elapsed() < DEADLINE, "wireguard-go did not create {device}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let allowed = format!("{our_overlay}/32");
    run(in_ns(&ns.name, &["wg", "set", &device, "listen-port", "51820", "private-key"])
        .arg(&key_file)
        .args(["peer", &ours.to_string(), "allowed-ips", &allowed]));
    run(&mut in_ns(&ns.name, &["ip", "addr", "add", &format!("{their_overlay}/32"), "dev", &device]));
    run(&mut in_ns(&ns.name, &["ip", "link", "set", &device, "up"]));
    run(&mut in_ns(&ns.name, &["ip", "route", "add", &allowed, "dev", &device]));
    // The kernel's TCP behind wireguard-go: an echo server.
    ns.spawn(&["socat", &format!("TCP-LISTEN:7777,bind={their_overlay},reuseaddr,fork"), "EXEC:cat"]);
    device
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wireguard_go_peer_echoes_through_our_tunnel_before_and_after_a_preshared_key() {
    if let Some(reason) = missing(&["ip", "wireguard-go", "wg", "socat"], true) {
        return skip("wireguard-go interop", &reason);
    }
    let mut ns = Namespace::new();
    let theirs = WireGuardSecret::generate();
    let ours = WireGuardSecret::generate();
    let dir = tempfile::tempdir().unwrap();
    let device = wireguard_go(&mut ns, &theirs, ours.public(), dir.path());
    let tunnel = Tunnel::bind(TunnelConfig {
        mtu: None,
        listen: SocketAddr::new(ns.host.into(), 0),
        secret: ours.clone(),
        rosenpass: None,
        peers: vec![PeerConfig {
            public_key: theirs.public(),
            endpoint: Some(SocketAddr::new(ns.inside.into(), 51820)),
            rosenpass_public_key: None,
            rosenpass_endpoint: None,
        }],
    })
    .await
    .unwrap();

    let mut stream = connect_until(&tunnel, theirs.public(), 7777).await;
    echo(&mut stream, 1 << 20, 1).await;
    let before = tunnel.stats();
    assert!(before.handshakes >= 1, "{before:?}");

    // Both sides switch to the same preshared key, as Rosenpass's WireGuard output does.
    let key: [u8; 32] = std::array::from_fn(|i| i as u8 ^ 0xa5);
    let psk_file = dir.path().join("psk");
    std::fs::write(&psk_file, base64::engine::general_purpose::STANDARD.encode(key)).unwrap();
    run(in_ns(&ns.name, &["wg", "set", &device, "peer", &ours.public().to_string(), "preshared-key"])
        .arg(&psk_file));
    tunnel.set_preshared_key(theirs.public(), key).unwrap();
    let started = Instant::now();
    while tunnel.stats().handshakes == before.handshakes {
        assert!(started.elapsed() < DEADLINE, "no handshake under the new key: {:?}", tunnel.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The open stream keeps flowing on the new session, and a new one opens.
    echo(&mut stream, 1 << 20, 2).await;
    let mut second = connect_until(&tunnel, theirs.public(), 7777).await;
    echo(&mut second, 64 << 10, 3).await;
    let shown = in_ns(&ns.name, &["wg", "show", &device, "preshared-keys"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout)
            .contains(&base64::engine::general_purpose::STANDARD.encode(key)),
        "wireguard-go holds the key"
    );
    assert_eq!(tunnel.stats().dropped_invalid, 0, "{:?}", tunnel.stats());
}

/// Keys for a Rosenpass exchange between the binary and our node, as files under `dir`.
struct RosenpassFiles {
    binary_secret: PathBuf,
    binary_public: PathBuf,
    node_rosenpass: RosenpassKeys,
    node_public_file: PathBuf,
}

fn rosenpass_files(binary: &Path, dir: &Path) -> RosenpassFiles {
    let (binary_secret, binary_public) = (dir.join("rp.sk"), dir.join("rp.pk"));
    run(Command::new(binary)
        .args(["gen-keys", "--secret-key"])
        .arg(&binary_secret)
        .arg("--public-key")
        .arg(&binary_public));
    let node_rosenpass = RosenpassKeys::generate().unwrap();
    let node_public_file = dir.join("node.pk");
    std::fs::write(&node_public_file, &node_rosenpass.public).unwrap();
    RosenpassFiles { binary_secret, binary_public, node_rosenpass, node_public_file }
}

/// The `rosenpass` binary beside an endpoint of ours that has no Rosenpass of its own (as it
/// runs beside a kernel WireGuard): it writes each key to its outfile, the test hands it to
/// that endpoint, and the stream between that endpoint and a node running Rosenpass in-process
/// only gets through when both keys are the same.
async fn rosenpass_binary_exchange(binary: &Path, binary_initiates: bool) {
    let dir = tempfile::tempdir().unwrap();
    let RosenpassFiles { binary_secret, binary_public, node_rosenpass, node_public_file } =
        rosenpass_files(binary, dir.path());
    let binary_addr = free_udp();

    // Of a pair, the lower WireGuard key starts Rosenpass exchanges: make it the node's.
    let (mut node_key, mut companion_key) = (WireGuardSecret::generate(), WireGuardSecret::generate());
    if node_key.public() > companion_key.public() {
        std::mem::swap(&mut node_key, &mut companion_key);
    }
    let companion = Tunnel::bind(TunnelConfig {
        mtu: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        secret: companion_key.clone(),
        rosenpass: None,
        peers: vec![PeerConfig {
            public_key: node_key.public(),
            endpoint: None,
            rosenpass_public_key: None,
            rosenpass_endpoint: None,
        }],
    })
    .await
    .unwrap();
    let node = Tunnel::bind(TunnelConfig {
        mtu: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        secret: node_key.clone(),
        rosenpass: Some(node_rosenpass),
        peers: vec![PeerConfig {
            public_key: companion_key.public(),
            endpoint: Some(companion.local_addr()),
            rosenpass_public_key: Some(std::fs::read(&binary_public).unwrap()),
            // Only the initiator needs to know where the other side is.
            rosenpass_endpoint: (!binary_initiates).then_some(binary_addr),
        }],
    })
    .await
    .unwrap();

    let outfile = dir.path().join("osk");
    let mut command = Command::new(binary);
    command
        .args(["exchange", "secret-key"])
        .arg(&binary_secret)
        .arg("public-key")
        .arg(&binary_public)
        .args(["listen", &binary_addr.to_string(), "peer", "public-key"])
        .arg(&node_public_file);
    if binary_initiates {
        command.args(["endpoint", &node.local_addr().to_string()]);
    }
    let mut child =
        command.arg("outfile").arg(&outfile).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    // "output-key peer <id> key-file <path> exchanged" on every new key.
    let exchanged = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout).lines().map_while(Result::ok).any(|line| line.contains("exchanged"))
    });
    let exchanged = tokio::time::timeout(DEADLINE, exchanged).await;
    let key_text = std::fs::read_to_string(&outfile).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(matches!(exchanged, Ok(Ok(true))), "the rosenpass binary never exchanged a key");
    let key: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(key_text.trim())
        .unwrap()
        .try_into()
        .expect("a 32-byte key");
    companion.set_preshared_key(node_key.public(), key).unwrap();

    let listener = companion.listen(7000).unwrap();
    let (dialed, accepted) = tokio::time::timeout(DEADLINE, async {
        tokio::join!(node.connect(companion_key.public(), 7000), listener.accept())
    })
    .await
    .expect("no stream: the node's key and the binary's differ");
    let (mut dialed, mut accepted) = (dialed.unwrap(), accepted.unwrap());
    dialed.write_all(b"same key").await.unwrap();
    let mut got = [0u8; 8];
    accepted.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"same key");
    assert!(node.stats().rosenpass_exchanges >= 1, "{:?}", node.stats());
}

fn free_udp() -> SocketAddr {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rosenpass_binary_and_our_node_derive_the_same_key_either_side_initiating() {
    let Some(binary) = rosenpass_binary() else {
        return skip("rosenpass interop", "missing the rosenpass binary (make deps installs it)");
    };
    rosenpass_binary_exchange(&binary, true).await;
    rosenpass_binary_exchange(&binary, false).await;
}

/// A real deployment's post-quantum path: wireguard-go with the `rosenpass` binary beside it in
/// WireGuard output mode (it runs `wg set <dev> peer <key> preshared-key` with each key), and
/// our node with Rosenpass in-process. Streams get through only once wireguard-go holds the
/// key our node derived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wireguard_go_takes_the_preshared_key_our_node_derived_with_the_rosenpass_binary() {
    if let Some(reason) = missing(&["ip", "wireguard-go", "wg", "socat"], true) {
        return skip("wireguard-go + rosenpass interop", &reason);
    }
    let Some(binary) = rosenpass_binary() else {
        return skip(
            "wireguard-go + rosenpass interop",
            "missing the rosenpass binary (make deps installs it)",
        );
    };
    let mut ns = Namespace::new();
    let (theirs, ours) = (WireGuardSecret::generate(), WireGuardSecret::generate());
    let dir = tempfile::tempdir().unwrap();
    let device = wireguard_go(&mut ns, &theirs, ours.public(), dir.path());
    let RosenpassFiles { binary_secret, binary_public, node_rosenpass, node_public_file } =
        rosenpass_files(&binary, dir.path());
    let binary_addr = SocketAddr::new(ns.inside.into(), 9999);

    let tunnel = Tunnel::bind(TunnelConfig {
        mtu: None,
        listen: SocketAddr::new(ns.host.into(), 0),
        secret: ours.clone(),
        rosenpass: Some(node_rosenpass),
        peers: vec![PeerConfig {
            public_key: theirs.public(),
            endpoint: Some(SocketAddr::new(ns.inside.into(), 51820)),
            rosenpass_public_key: Some(std::fs::read(&binary_public).unwrap()),
            rosenpass_endpoint: Some(binary_addr),
        }],
    })
    .await
    .unwrap();
    let binary_path = binary.to_str().unwrap().to_owned();
    let (secret_arg, public_arg, node_arg) = (
        binary_secret.to_str().unwrap().to_owned(),
        binary_public.to_str().unwrap().to_owned(),
        node_public_file.to_str().unwrap().to_owned(),
    );
    let (listen, endpoint, our_key) =
        (binary_addr.to_string(), tunnel.local_addr().to_string(), ours.public().to_string());
    ns.spawn(&[
        &binary_path,
        "exchange",
        "secret-key",
        &secret_arg,
        "public-key",
        &public_arg,
        "listen",
        &listen,
        "peer",
        "public-key",
        &node_arg,
        "endpoint",
        &endpoint,
        "wireguard",
        &device,
        &our_key,
    ]);

    let mut stream = connect_until(&tunnel, theirs.public(), 7777).await;
    echo(&mut stream, 1 << 20, 4).await;
    let stats = tunnel.stats();
    assert!(stats.rosenpass_exchanges >= 1 && stats.handshakes >= 1, "{stats:?}");
    let shown = in_ns(&ns.name, &["wg", "show", &device, "preshared-keys"]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(!shown.contains("(none)"), "wireguard-go has a preshared key from rosenpass: {shown}");
}
