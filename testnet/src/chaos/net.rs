//! The chaos run's network: one namespace per node and one for the clients, joined by a bridge
//! in the clients' namespace, with addresses that exist only inside them (`10.77.0.0/24`: node
//! `i` is `10.77.0.(i+1)`, the clients `10.77.0.254`). Faults between nodes are nftables rules
//! in each node's own input chain, and latency DNAT rules in its output chain that steer its
//! cluster traffic through the delay relay ([`super::delay`]); the clients are never cut off
//! (as Jepsen's control node).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// The first three octets of every address.
const SUBNET: [u8; 3] = [10, 77, 0];
/// The clients' address (on the bridge).
const CLIENT_HOST: u8 = 254;
/// The nftables table every fault rule lives in.
const TABLE: &str = "chaos";
/// Namespaces are named `PREFIX<pid>-...` after the harness process that made them.
const PREFIX: &str = "pyc";

/// The NAT chain latency's redirects live in, made when first needed (`add` is idempotent), so
/// a kernel without NAT fails only the latency fault.
fn nat_chain() -> String {
    format!(
        "add table ip {TABLE}\nadd chain ip {TABLE} output {{ type nat hook output priority -100; policy accept; }}\n"
    )
}

/// The clients' address, where the delay relay listens.
pub fn client_ip() -> Ipv4Addr {
    Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], CLIENT_HOST)
}

/// Node `i`'s address.
pub fn node_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], i as u8 + 1)
}

/// Runs a command to completion; its stderr is the error.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Runs `ip ARGS`.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args, None)
}

/// The namespaces and the bridge; deleted on drop (which also deletes their links, rules and
/// whatever sockets were left in them).
#[derive(Debug)]
pub struct Topology {
    prefix: String,
    nodes: usize,
}

impl Topology {
    /// Creates this process's namespaces, `pycPID-c` (clients, with the bridge) and `pycPID-nI`
    /// (nodes), removing any left by an earlier run of this process or by a killed one.
    pub fn create(nodes: usize) -> anyhow::Result<Self> {
        let topology = Topology { prefix: format!("{PREFIX}{}", std::process::id()), nodes };
        Topology::delete_abandoned();
        topology.delete();
        let client = topology.client_ns();
        ip(&["netns", "add", &client])?;
        ip(&["-n", &client, "link", "set", "lo", "up"])?;
        ip(&["-n", &client, "link", "add", "br0", "type", "bridge"])?;
        let client_addr = format!("{}.{}.{}.{CLIENT_HOST}/24", SUBNET[0], SUBNET[1], SUBNET[2]);
        ip(&["-n", &client, "addr", "add", &client_addr, "dev", "br0"])?;
        ip(&["-n", &client, "link", "set", "br0", "up"])?;
        for i in 0..nodes {
            let ns = topology.node_ns(i);
            let port = format!("v{i}");
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &client, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            ip(&["-n", &client, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &ns, "addr", "add", &format!("{}/24", node_ip(i)), "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            topology.nft(i, &format!("add table inet {TABLE}\nadd chain inet {TABLE} input {{ type filter hook input priority 0; policy accept; }}\n"))?;
        }
        Ok(topology)
    }

    /// The clients' namespace.
    pub fn client_ns(&self) -> String {
        format!("{}-c", self.prefix)
    }

    /// Node `i`'s namespace.
    pub fn node_ns(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }

    /// Moves the calling thread into the clients' namespace and starts the async runtime the
    /// harness drives everything from (its threads inherit the namespace).
    pub fn client_runtime(&self) -> anyhow::Result<tokio::runtime::Runtime> {
        let path = format!("/run/netns/{}", self.client_ns());
        let file = std::fs::File::open(&path).with_context(|| format!("cannot open {path}"))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("setns into the clients' namespace")?;
        Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
    }

    /// Applies an nftables script inside node `i`'s namespace.
    fn nft(&self, i: usize, script: &str) -> anyhow::Result<()> {
        run("ip", &["netns", "exec", &self.node_ns(i), "nft", "-f", "-"], Some(script))
    }

    /// Drops every packet from node `from` arriving at node `to` (one direction).
    pub fn block(&self, from: usize, to: usize) -> anyhow::Result<()> {
        self.nft(to, &format!("add rule inet {TABLE} input ip saddr {} drop\n", node_ip(from)))
    }

    /// Drops `percent` % of the packets between nodes, at random, in both directions.
    pub fn lose(&self, percent: u32) -> anyhow::Result<()> {
        for i in 0..self.nodes {
            let peers =
                (0..self.nodes).filter(|&j| j != i).map(|j| node_ip(j).to_string()).collect::<Vec<_>>();
            self.nft(
                i,
                &format!(
                    "add rule inet {TABLE} input ip saddr {{ {} }} numgen random mod 100 < {percent} drop\n",
                    peers.join(", ")
                ),
            )?;
        }
        Ok(())
    }

    /// Sends what node `from` addresses to node `to`'s `port` (TCP and UDP) to the delay relay
    /// of `to` instead. Takes effect for new flows: see [`Topology::reset_flows`].
    pub fn redirect(&self, from: usize, to: usize, port: u16) -> anyhow::Result<()> {
        let (relay, relay_port) = (client_ip(), super::delay::relay_port(to));
        let mut rules = nat_chain();
        for proto in ["tcp", "udp"] {
            rules += &format!(
                "add rule ip {TABLE} output ip daddr {} {proto} dport {port} dnat to {relay}:{relay_port}\n",
                node_ip(to)
            );
        }
        self.nft(from, &rules)
    }

    /// Forgets every node's tracked connections, so the next packet of each flow meets the
    /// rules as they are now: a TCP connection the rules now steer elsewhere (or no longer
    /// steer) is reset and dialled again, a UDP flow follows at once.
    pub fn reset_flows(&self) -> anyhow::Result<()> {
        for i in 0..self.nodes {
            run("ip", &["netns", "exec", &self.node_ns(i), "conntrack", "-F"], None)?;
        }
        Ok(())
    }

    /// Removes every drop rule.
    pub fn heal(&self) -> anyhow::Result<()> {
        for i in 0..self.nodes {
            self.nft(i, &format!("flush chain inet {TABLE} input\n"))?;
        }
        Ok(())
    }

    /// Removes every latency redirect (only latency makes the NAT chain).
    pub fn remove_redirects(&self) -> anyhow::Result<()> {
        for i in 0..self.nodes {
            self.nft(i, &format!("{}flush chain ip {TABLE} output\n", nat_chain()))?;
        }
        Ok(())
    }

    /// Deletes namespaces a run that was killed left behind (`pycPID-...` whose process is
    /// gone).
    pub fn delete_abandoned() {
        let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
        for name in String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_whitespace().next()) {
            let pid = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
                let _ = Command::new("ip").args(["netns", "delete", name]).stderr(Stdio::null()).status();
            }
        }
    }

    fn delete(&self) {
        for ns in (0..self.nodes).map(|i| self.node_ns(i)).chain([self.client_ns()]) {
            let _ = Command::new("ip").args(["netns", "delete", &ns]).stderr(Stdio::null()).status();
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.delete();
    }
}

/// Why latency cannot be injected here (no NAT in nftables to steer flows to the relay, no
/// `conntrack` to move existing flows onto it), or `None`.
pub fn latency_unavailable() -> Option<String> {
    probe("nat", |ns| {
        run("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(&nat_chain()))?;
        run("ip", &["netns", "exec", ns, "conntrack", "-F"], None)
    })
    .err()
    .map(|err| format!("no NAT or conntrack for the delay relay: {err:#}"))
}

/// Runs `check` in a throwaway namespace `PREFIX-probe-<what>-<pid>`, deleted afterwards.
fn probe(what: &str, check: impl FnOnce(&str) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let ns = format!("{PREFIX}-probe-{what}-{}", std::process::id());
    let result = ip(&["netns", "add", &ns]).and_then(|()| check(&ns));
    let _ = Command::new("ip").args(["netns", "delete", &ns]).stderr(Stdio::null()).status();
    result
}

/// Why the chaos run cannot run here at all (not root, no namespaces or nftables), or `None`.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("the chaos run needs root (network namespaces, nftables)".into());
    }
    probe("nft", |ns| {
        run(
            "ip",
            &["netns", "exec", ns, "nft", "-f", "-"],
            Some(
                "add table inet probe\nadd chain inet probe input { type filter hook input priority 0; policy accept; }\nadd rule inet probe input numgen random mod 100 < 5 drop\n",
            ),
        )
    })
    .err()
    .map(|err| format!("network namespaces with nftables are not available: {err:#}"))
}
