//! The nodes under test: real `pyralog` processes, one per namespace, each under libfaketime
//! when it is installed (its wall clock follows a per-node offset file the nemesis rewrites;
//! monotonic time is left alone, as an NTP step would).

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};
use base64::Engine as _;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::kafka::KAFKA_PORT;
use super::net::{Topology, node_ip};

/// Where Debian's libfaketime (multi-threaded flavour) lives.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
/// The RPC port every node listens on (each has its own address).
pub const RPC_PORT: u16 = 9944;
/// The cluster links' port on every node (`pyralog testnet`'s default): TCP, or the tunnel's UDP.
pub const RAFT_PORT: u16 = 30333;

/// The cluster's processes.
#[derive(Debug)]
pub struct Nodes {
    bin: PathBuf,
    dir: PathBuf,
    namespaces: Vec<String>,
    children: Vec<Option<Child>>,
    faketime: bool,
}

/// The spare node `member-churn` adds: what `admin_addMember` needs, and with tunnels what
/// `admin_addTunnelPeer` needs.
#[derive(Debug, Clone)]
pub struct Spare {
    /// Its Raft address (its tunnel's UDP endpoint with tunnels).
    pub raft_addr: String,
    /// Its node key (`pyrpub1...`).
    pub public_key: String,
    /// With tunnels: its WireGuard public key and its Rosenpass public key, both base64.
    pub tunnel: Option<(String, String)>,
}

/// libfaketime's path when it is installed, else why clock skew is skipped.
pub fn faketime() -> Result<&'static str, String> {
    match Path::new(LIBFAKETIME).exists() {
        true => Ok(LIBFAKETIME),
        false => Err(format!("{LIBFAKETIME} is missing (Debian package libfaketime)")),
    }
}

impl Nodes {
    /// Writes `count` base paths under `dir` with `pyralog testnet` (cluster only, with Kafka
    /// listeners; plain TCP links or WireGuard tunnels), addressed inside `topology`'s
    /// namespaces.
    pub fn generate(
        bin: &Path,
        dir: &Path,
        topology: &Topology,
        count: usize,
        wireguard: bool,
    ) -> anyhow::Result<Self> {
        let mut args = vec!["--no-chain".to_owned(), "--nodes".into(), count.to_string()];
        args.extend(["--kafka-port".to_owned(), KAFKA_PORT.to_string()]);
        if !wireguard {
            args.push("--dev".into());
        }
        Nodes::testnet(bin, dir, topology, count, &args)
    }

    /// Makes node `spare` a node that is not a founding member: it starts, knows the founders,
    /// and waits to be added (`admin_addMember`, after `admin_addTunnelPeer` on every member
    /// when links run through tunnels).
    pub fn make_spare(&self, spare: usize) -> anyhow::Result<Spare> {
        let mut joiner = None;
        for i in 0..self.len() {
            let path = self.dir.join(format!("node{i}/config.toml"));
            let text = std::fs::read_to_string(&path)?;
            let mut config: toml::Table = text.parse().context("config.toml")?;
            let members = config
                .get_mut("cluster")
                .and_then(|c| c.get_mut("members"))
                .and_then(toml::Value::as_array_mut)
                .context("config.toml: no cluster.members")?;
            let Some(at) = members
                .iter()
                .position(|m| m.get("id").and_then(toml::Value::as_integer) == Some(spare as i64))
            else {
                bail!("config.toml: no member {spare}");
            };
            let member = members.remove(at);
            let field = |name: &str| member.get(name).and_then(toml::Value::as_str).map(str::to_owned);
            let tunnel = match field("wireguard_public_key") {
                Some(wireguard) => {
                    let rosenpass = std::fs::read(self.dir.join(format!("node{spare}/rosenpass.pub")))
                        .context("the spare's rosenpass.pub")?;
                    Some((wireguard, base64::engine::general_purpose::STANDARD.encode(rosenpass)))
                }
                None => None,
            };
            joiner = Some(Spare {
                raft_addr: field("raft_addr").unwrap_or_default(),
                public_key: field("public_key").unwrap_or_default(),
                tunnel,
            });
            std::fs::write(&path, toml::to_string(&config)?)?;
        }
        joiner.context("no nodes")
    }

    /// Writes the base paths of `clusters` clusters of `per_cluster` nodes each, every node a
    /// validator of the chain that links them (plain TCP links inside the clusters).
    pub fn generate_chain(
        bin: &Path,
        dir: &Path,
        topology: &Topology,
        per_cluster: usize,
        clusters: usize,
    ) -> anyhow::Result<Self> {
        let (nodes, clusters_arg) = (per_cluster.to_string(), clusters.to_string());
        let args =
            ["--dev", "--kafka-port", "0", "--nodes", &nodes, "--clusters", &clusters_arg].map(String::from);
        Nodes::testnet(bin, dir, topology, per_cluster * clusters, &args)
    }

    fn testnet(
        bin: &Path,
        dir: &Path,
        topology: &Topology,
        count: usize,
        args: &[String],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(bin);
        command.arg("testnet").args(args);
        command.arg("--starting-ip-address").arg(node_ip(0).to_string()).arg("--out").arg(dir);
        let out = command.output().with_context(|| format!("cannot run {}", bin.display()))?;
        if !out.status.success() {
            bail!("pyralog testnet: {}", String::from_utf8_lossy(&out.stderr));
        }
        let nodes = Nodes {
            bin: bin.to_owned(),
            dir: dir.to_owned(),
            namespaces: (0..count).map(|i| topology.node_ns(i)).collect(),
            children: (0..count).map(|_| None).collect(),
            faketime: faketime().is_ok(),
        };
        for i in 0..count {
            nodes.skew(i, 0)?;
        }
        Ok(nodes)
    }

    /// The `pyralog` binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Node `i`'s RPC URL.
    pub fn url(i: usize) -> String {
        format!("http://{}:{RPC_PORT}", node_ip(i))
    }

    fn offset_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}.faketime"))
    }

    /// Starts node `i` (its log appended to `DIR/nodeI.log`).
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let log = OpenOptions::new().create(true).append(true).open(self.dir.join(format!("node{i}.log")))?;
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.namespaces[i], "env"]);
        if self.faketime {
            command.arg(format!("LD_PRELOAD={LIBFAKETIME}"));
            command.arg(format!("FAKETIME_TIMESTAMP_FILE={}", self.offset_file(i).display()));
            command.args(["FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_CACHE_DURATION=1"]);
        }
        command.arg(&self.bin).args(["start", "--base-path"]).arg(self.dir.join(format!("node{i}")));
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        // The node dies with the harness, however the harness ends (the signal survives the
        // exec of `ip` and `env`).
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command
                .pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from));
        }
        // `ip netns exec` and `env` exec the node: the child's pid is the node's.
        self.children[i] = Some(command.spawn().context("cannot start a node")?);
        Ok(())
    }

    /// Whether node `i` runs (started and not killed).
    pub fn running(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    fn pid(&self, i: usize) -> Option<Pid> {
        self.children[i].as_ref().map(|child| Pid::from_raw(child.id() as i32))
    }

    /// Kills node `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) node `i`.
    pub fn pause(&self, i: usize, paused: bool) {
        if let Some(pid) = self.pid(i) {
            let _ = kill(pid, if paused { Signal::SIGSTOP } else { Signal::SIGCONT });
        }
    }

    /// Sets node `i`'s wall clock `offset_ms` from the real one, in whole seconds (libfaketime
    /// re-reads the file every second).
    pub fn skew(&self, i: usize, offset_ms: i64) -> anyhow::Result<()> {
        let seconds = offset_ms / 1000;
        std::fs::write(self.offset_file(i), format!("{seconds:+}\n")).context("cannot write the clock offset")
    }

    /// Whether node `i` has exited by itself (a crash), with its status.
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        self.children[i].as_mut().and_then(|child| child.try_wait().ok().flatten())
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.pause(i, false);
            self.kill(i);
        }
    }
}
