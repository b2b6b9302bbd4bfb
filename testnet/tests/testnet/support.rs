//! What the tests share: child processes that die with the test, free ports, waiting on
//! observable state, and a local cluster of `pyralog` processes started from `pyralog testnet`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use serde_json::Value;

/// The longest any wait lasts.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// A child process killed when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `N` ports the kernel has free now (for processes that are never restarted).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<_> = (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// The `pyralog` binary: `PYRALOG_BIN`, or next to this crate's binary in the shared target
/// directory (the main workspace's tests build it first).
pub fn pyralog_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("PYRALOG_BIN") {
        return bin.into();
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_pyralog-loadgen")).with_file_name("pyralog");
    assert!(bin.exists(), "{} missing: build the main workspace first (make test does)", bin.display());
    bin
}

/// Polls `check` until it yields, failing the test after [`DEADLINE`].
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls `method` on a node's JSON-RPC endpoint.
pub async fn call(url: &str, method: &str, params: Value) -> Option<Value> {
    let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(30)).build(url).ok()?;
    let params = match params {
        Value::Object(map) => {
            let mut object = jsonrpsee::core::params::ObjectParams::new();
            for (key, value) in map {
                object.insert(&key, value).ok()?;
            }
            object
        }
        _ => jsonrpsee::core::params::ObjectParams::new(),
    };
    client.request(method, params).await.ok()
}

/// `n` consecutive ports outside the kernel's ephemeral range, held for this process by a
/// listener on the port after them. A node killed and restarted binds its ports again: in the
/// ephemeral range an outgoing connection could have taken one meanwhile.
fn port_block(n: u16) -> u16 {
    static HELD: std::sync::Mutex<Vec<std::net::TcpListener>> = std::sync::Mutex::new(Vec::new());
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range.split_whitespace().next().and_then(|w| w.parse().ok()).unwrap_or(32768);
    assert!(low > 12_000, "the ephemeral range starts at {low}: no room below it");
    let seed = (std::process::id() as u64 * 7919) % u64::from(low - 10_000 - n - 1);
    for step in 0..500u64 {
        let base = 10_000 + ((seed + step * u64::from(n + 1)) % u64::from(low - 10_000 - n - 1)) as u16;
        let Ok(hold) = std::net::TcpListener::bind(("127.0.0.1", base + n)) else { continue };
        if (base..base + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            HELD.lock().unwrap().push(hold);
            return base;
        }
    }
    panic!("no {n} free ports below {low}");
}

/// A local cluster of `pyralog` nodes (plain TCP between members, no chain), killed when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    nodes: Vec<Option<Running>>,
    /// Each node's JSON-RPC URL.
    pub rpc: Vec<String>,
    /// Each node's Kafka listener, `host:port`.
    pub kafka: Vec<String>,
}

impl Cluster {
    /// Starts `n` nodes and waits until each is ready and knows every member.
    pub async fn start(n: u16) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let base = port_block(5 * n);
        let port = |k: u16| (base + k * n).to_string();
        let out = Command::new(pyralog_bin())
            .args(["testnet", "--dev", "--no-chain", "--nodes", &n.to_string(), "--out"])
            .arg(dir.path())
            .args(["--raft-port", &port(0), "--rpc-port", &port(1), "--metrics-port", &port(2)])
            .args(["--p2p-port", &port(3), "--kafka-port", &port(4)])
            .output()
            .unwrap();
        assert!(out.status.success(), "pyralog testnet: {}", String::from_utf8_lossy(&out.stderr));
        let mut cluster = Cluster {
            rpc: (0..n).map(|i| format!("http://127.0.0.1:{}", base + n + i)).collect(),
            kafka: (0..n).map(|i| format!("127.0.0.1:{}", base + 4 * n + i)).collect(),
            nodes: Vec::new(),
            dir,
        };
        for i in 0..n as usize {
            let node = cluster.spawn(i);
            cluster.nodes.push(Some(node));
        }
        for i in 0..n as usize {
            cluster.wait_ready(i).await;
        }
        cluster
    }

    fn spawn(&self, i: usize) -> Running {
        let log = std::fs::File::create(self.dir.path().join(format!("node{i}.log"))).unwrap();
        Running(
            Command::new(pyralog_bin())
                .args(["start", "--base-path"])
                .arg(self.dir.path().join(format!("node{i}")))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    /// Waits until node `i` answers, is healthy and knows every member.
    pub async fn wait_ready(&self, i: usize) {
        let members = self.nodes.len();
        eventually("a ready node that knows every member", async || {
            let health = call(&self.rpc[i], "system_health", Value::Null).await?;
            (health["ok"] == true && health["members"] == members).then_some(())
        })
        .await;
    }

    /// The node leading the cluster's global group (the Kafka group coordinator).
    pub async fn global_leader(&self) -> usize {
        eventually("a global leader", async || {
            for (i, url) in self.rpc.iter().enumerate() {
                if self.nodes[i].is_none() {
                    continue;
                }
                if let Some(health) = call(url, "system_health", Value::Null).await {
                    return health["globalLeader"].as_u64().map(|id| id as usize);
                }
            }
            None
        })
        .await
    }

    /// Node `i`'s process id.
    pub fn pid(&self, i: usize) -> u32 {
        self.nodes[i].as_ref().expect("node running").0.id()
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        let mut node = self.nodes[i].take().expect("node running");
        node.0.kill().unwrap();
        node.0.wait().unwrap();
    }

    /// Starts node `i` again from its base path and waits until it is ready.
    pub async fn restart(&mut self, i: usize) {
        let node = self.spawn(i);
        self.nodes[i] = Some(node);
        self.wait_ready(i).await;
    }

    /// The Kafka bootstrap list: every node.
    pub fn bootstrap(&self) -> String {
        self.kafka.join(",")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        if std::thread::panicking() {
            for i in 0..self.rpc.len() {
                let text =
                    std::fs::read_to_string(self.dir.path().join(format!("node{i}.log"))).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!(
                    "---- node{i}.log (last 40 lines) ----\n{}",
                    lines[lines.len().saturating_sub(40)..].join("\n")
                );
            }
        }
    }
}
