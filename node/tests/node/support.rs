//! Shared helpers: real `pyralog` processes on free ports, JSON-RPC calls, polling.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonrpsee::core::client::{ClientT, Error as ClientError};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// The node processes; killed when the test ends, however it ends.
pub(crate) struct Testnet {
    pub(crate) children: Vec<Child>,
    pub(crate) rpc: Vec<String>,
    pub(crate) metrics: Vec<String>,
    /// Each node's Kafka listener (`host:port`).
    pub(crate) kafka: Vec<String>,
    /// Where the nodes' `node{i}.log` files are.
    pub(crate) dir: PathBuf,
}

/// Lines of each node's log a failing test prints.
const LOG_TAIL_LINES: usize = 60;

impl Drop for Testnet {
    fn drop(&mut self) {
        for (i, child) in self.children.iter_mut().enumerate() {
            if let (true, Ok(Some(status))) = (std::thread::panicking(), child.try_wait()) {
                eprintln!("node{i} had exited before the test ended: {status}");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // The test directory goes away with the test: a failure shows what the nodes said.
        if std::thread::panicking() {
            for i in 0..self.rpc.len() {
                let path = self.dir.join(format!("node{i}.log"));
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
                eprintln!("---- last {} lines of {} ----\n{}", tail.len(), path.display(), tail.join("\n"));
            }
        }
    }
}

/// Ports a test's nodes own come in blocks of this many.
const PORT_BLOCK: u16 = 64;

/// Held for the test process's life: a listener on the last port of each block it took, which
/// tells other test processes the block is in use (the kernel drops it when the process dies).
static RESERVED_BLOCKS: std::sync::Mutex<Vec<std::net::TcpListener>> = std::sync::Mutex::new(Vec::new());

/// The kernel's ephemeral port range (`bind(0)` and outgoing connections take their local ports
/// from it).
fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = text.split_whitespace().filter_map(|word| word.parse().ok());
    match (bounds.next(), bounds.next()) {
        (Some(low), Some(high)) => (low, high),
        _ => (32768, 60999),
    }
}

/// The first of `n` consecutive ports, free for TCP and UDP, that this test process keeps to
/// itself. They lie outside the ephemeral range: a killed node's port there can be taken as
/// the local port of any outgoing connection on the machine and, once that connection closes,
/// stay in TIME_WAIT for a minute, so the restarted node cannot listen again. Outside it only
/// explicit binds take ports, and tests running at once (separate processes under nextest)
/// keep apart by each holding its blocks' last ports.
pub(crate) fn free_base(n: u16) -> u16 {
    assert!(n < PORT_BLOCK, "{n} ports and a lock port do not fit a block of {PORT_BLOCK}");
    let (low, high) = ephemeral_range();
    let (first, end) =
        if low >= 12_000 { (10_000u32, u32::from(low)) } else { (u32::from(high) + 1, 65_536) };
    let blocks = (end - first) / u32::from(PORT_BLOCK);
    assert!(blocks > 0, "no room for test ports outside the ephemeral range {low}-{high}");
    let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        ^ std::process::id();
    for k in 0..blocks {
        let base = (first + (start.wrapping_add(k) % blocks) * u32::from(PORT_BLOCK)) as u16;
        let Ok(lock) = std::net::TcpListener::bind(("127.0.0.1", base + PORT_BLOCK - 1)) else {
            continue; // another test process has it
        };
        let free = (base..base + n).all(|port| {
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
                && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        });
        if free {
            RESERVED_BLOCKS.lock().unwrap().push(lock);
            return base;
        }
    }
    panic!("no free block of {n} ports between {first} and {end}");
}

/// Generates a 3-node testnet under `dir`, starts it, and waits until every node is ready and
/// knows the three members.
pub(crate) async fn start(dir: &Path) -> Testnet {
    start_with(dir, 3, |config| config.to_owned()).await
}

/// Generates an `nodes`-node testnet under `dir`, passes each node's `config.toml` text through
/// `edit`, starts the nodes, and waits until every node is ready and knows every member.
pub(crate) async fn start_with(dir: &Path, nodes: u16, edit: impl Fn(&str) -> String) -> Testnet {
    start_clusters(dir, 1, nodes, edit).await
}

/// Generates `clusters` clusters of `per_cluster` nodes (all validators of one chain) under
/// `dir`, passes each `config.toml` through `edit`, starts them, and waits until every node is
/// ready and knows its cluster's members. Node `i` of the result is `dir/node{i}`.
pub(crate) async fn start_clusters(
    dir: &Path,
    clusters: u16,
    per_cluster: u16,
    edit: impl Fn(&str) -> String,
) -> Testnet {
    start_clusters_on("tendermint", dir, clusters, per_cluster, edit).await
}

/// [`start_clusters`] with the chain on `engine`.
pub(crate) async fn start_clusters_on(
    engine: &str,
    dir: &Path,
    clusters: u16,
    per_cluster: u16,
    edit: impl Fn(&str) -> String,
) -> Testnet {
    start_nodes_on(engine, dir, clusters, per_cluster, |_, config| edit(config)).await
}

/// [`start_clusters_on`], passing each node's index and `config.toml` text through `edit`.
pub(crate) async fn start_nodes_on(
    engine: &str,
    dir: &Path,
    clusters: u16,
    per_cluster: u16,
    edit: impl Fn(u16, &str) -> String,
) -> Testnet {
    let nodes = clusters * per_cluster;
    // Consecutive free ports: raft, rpc, metrics, overlay and Kafka for each node, no overlaps.
    let base = free_base(5 * nodes);
    let (raft, rpc, metrics, p2p) = (base, base + nodes, base + 2 * nodes, base + 3 * nodes);
    let kafka = base + 4 * nodes;
    let out = Command::new(env!("CARGO_BIN_EXE_pyralog"))
        .args(["testnet", "--nodes", &per_cluster.to_string(), "--clusters", &clusters.to_string(), "--out"])
        .arg(dir)
        .args(["--raft-port", &raft.to_string(), "--rpc-port", &rpc.to_string()])
        .args(["--metrics-port", &metrics.to_string(), "--p2p-port", &p2p.to_string()])
        .args(["--engine", engine, "--kafka-port", &kafka.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for i in 0..nodes {
        let path = dir.join(format!("node{i}/config.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(i, &text)).unwrap();
    }
    let children = (0..nodes).map(|i| spawn_node(dir, i)).collect();
    let rpc = (0..nodes).map(|i| format!("http://127.0.0.1:{}", rpc + i)).collect();
    let metrics = (0..nodes).map(|i| format!("http://127.0.0.1:{}", metrics + i)).collect();
    let kafka = (0..nodes).map(|i| format!("127.0.0.1:{}", kafka + i)).collect();
    let net = Testnet { children, rpc, metrics, kafka, dir: dir.to_owned() };
    for url in &net.rpc {
        eventually("a ready node that knows every member", async || {
            let health = call(url, "system_health", json!({})).await.ok()?;
            (health["ok"] == true && health["globalLeader"].is_u64() && health["members"] == per_cluster)
                .then_some(())
        })
        .await;
    }
    net
}

pub(crate) fn spawn_node(dir: &Path, i: u16) -> Child {
    let log = std::fs::File::create(dir.join(format!("node{i}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_pyralog"))
        .args(["start", "--base-path"])
        .arg(dir.join(format!("node{i}")))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub(crate) fn client(url: &str) -> HttpClient {
    HttpClientBuilder::default().request_timeout(Duration::from_secs(40)).build(url).unwrap()
}

pub(crate) fn params(value: Value) -> ObjectParams {
    let mut params = ObjectParams::new();
    for (name, value) in value.as_object().unwrap() {
        params.insert(name, value).unwrap();
    }
    params
}

pub(crate) async fn call(url: &str, method: &str, args: Value) -> Result<Value, ClientError> {
    client(url).request(method, params(args)).await
}

pub(crate) fn code(result: Result<Value, ClientError>) -> i32 {
    match result {
        Err(ClientError::Call(err)) => err.code(),
        other => panic!("expected an error object, got {other:?}"),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    format!("0x{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub(crate) fn unhex(value: &Value) -> Vec<u8> {
    let text = value.as_str().unwrap().strip_prefix("0x").unwrap();
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// Polls `check` until it returns `Some`.
pub(crate) async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A raw HTTP GET (the probes).
pub(crate) fn raw_get(url: &str, path: &str) -> String {
    raw_get_with(url, path, "")
}

/// [`raw_get`] with more header lines (`headers`: each ending in `\r\n`).
pub(crate) fn raw_get_with(url: &str, path: &str, headers: &str) -> String {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// A raw HTTP POST, for bodies a JSON-RPC client would never send.
pub(crate) fn raw_post(url: &str, body: &str) -> String {
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// A raw HTTP POST from the local address `from` (any of 127.0.0.0/8 on Linux), so a test can
/// act as several clients with different IP addresses.
pub(crate) async fn raw_post_from(from: [u8; 4], url: &str, body: &str) -> String {
    let addr: std::net::SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((std::net::Ipv4Addr::from(from), 0).into()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

/// What a malicious server does to what it forwards.
pub(crate) trait ProxyHook: Send + Sync + 'static {
    /// Rewrites a request's params before forwarding.
    fn request(&self, _method: &str, _params: &mut Value) {}
    /// Rewrites the upstream node's answer.
    fn answer(&self, method: &str, answer: &mut Value);
}

/// An HTTP JSON-RPC proxy to `upstream` (one request per connection), lying as `hook` says;
/// plain GETs (the node's page) are passed through.
pub(crate) async fn proxy(upstream: String, hook: Arc<dyn ProxyHook>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (upstream, hook) = (upstream.clone(), hook.clone());
            tokio::spawn(async move {
                let (head, body) = read_http(&mut socket).await;
                // GETs (the node's page) pass through as they are; a WebSocket upgrade is
                // refused, so a page behind the proxy polls over HTTP, through the hook.
                if let Some(path) = head.strip_prefix("GET ").and_then(|rest| rest.split_whitespace().next())
                {
                    let answer = match head.to_lowercase().contains("\r\nupgrade:") {
                        true => {
                            b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                .to_vec()
                        }
                        false => {
                            let (upstream, path) = (upstream.clone(), path.to_owned());
                            let answer = tokio::task::spawn_blocking(move || raw_get(&upstream, &path));
                            answer.await.unwrap().into_bytes()
                        }
                    };
                    let _ = socket.write_all(&answer).await;
                    return;
                }
                let request: Value = serde_json::from_slice(&body).unwrap();
                let method = request["method"].as_str().unwrap().to_owned();
                // A call without params has none in the request; forward an empty object.
                let mut args = match &request["params"] {
                    Value::Null => json!({}),
                    given => given.clone(),
                };
                hook.request(&method, &mut args);
                let reply = match client(&upstream).request::<Value, _>(&method, params(args)).await {
                    Ok(mut answer) => {
                        hook.answer(&method, &mut answer);
                        json!({"jsonrpc": "2.0", "id": request["id"], "result": answer})
                    }
                    Err(ClientError::Call(err)) => {
                        json!({"jsonrpc": "2.0", "id": request["id"], "error": err})
                    }
                    Err(err) => panic!("upstream failed: {err}"),
                };
                let body = reply.to_string();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                socket.write_all(head.as_bytes()).await.unwrap();
                socket.write_all(body.as_bytes()).await.unwrap();
            });
        }
    });
    url
}

/// Reads one HTTP request: its head (request line and headers, as sent) and its body.
async fn read_http(socket: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed mid-request");
        bytes.extend_from_slice(&chunk[..n]);
        let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0);
        if bytes.len() >= end + 4 + length {
            return (head, bytes[end + 4..end + 4 + length].to_vec());
        }
    }
}

/// Runs the `pyralog` binary with `args`.
pub(crate) fn pyralog(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pyralog")).args(args).output().expect("run pyralog")
}

/// Runs `pyralog` and parses the JSON it prints; asserts it succeeded.
pub(crate) fn pyralog_json(args: &[&str]) -> Value {
    let out = pyralog(args);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pyralog {args:?}: {}{}", text, String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("pyralog {args:?} printed {text:?}: {e}"))
}
