//! Kill -9 of whole nodes: three child processes (this test binary re-run) each run a
//! `ClusterNode` on disk; whichever leads the partition writes as fast as it can and prints each
//! acknowledged (offset, value). The parent SIGKILLs the writing leader (sometimes another
//! node) at random moments and restarts it, many times; at the end every node must hold every acknowledged value at its
//! acknowledged offset, with identical Merkle roots.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pyralog_cluster::engine::{ClusterNode, NodeConfig};
use pyralog_cluster::model::{LogConfig, Record};
use pyralog_cluster::raft::{Member, Rejection};
use pyralog_cluster::storage::{PartitionId, PartitionStore, Storage, StorageMode};
use pyralog_cluster::transport::TcpTransport;
use pyralog_crypto::keys::{load_key_file, write_key_file};
use pyralog_crypto::{ClusterId, Keypair, LogName, PublicKey};

const CHILD_ENV: &str = "PYRALOG_NODE_CHILD";
const DIR_ENV: &str = "PYRALOG_NODE_DIR";
const MEMBERS_ENV: &str = "PYRALOG_NODE_MEMBERS";
const KILLS: usize = 16;
const DEADLINE: Duration = Duration::from_secs(90);
const LOG: &str = "crash";

fn cluster() -> ClusterId {
    ClusterId::new("kill-9").unwrap()
}

/// `id=addr=key,...` as passed to the children.
fn parse_members(text: &str) -> BTreeMap<u64, Member> {
    text.split(',')
        .map(|entry| {
            let mut parts = entry.split('=');
            let id = parts.next().unwrap().parse().unwrap();
            let addr = parts.next().unwrap().to_owned();
            let key: PublicKey = parts.next().unwrap().parse().unwrap();
            (id, Member { addr, key })
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The child side; does nothing unless started by the parent below.
#[test]
#[ignore = "child process of the node kill -9 test; started by it"]
fn node_child() {
    let Ok(id) = std::env::var(CHILD_ENV) else {
        return;
    };
    let id: u64 = id.parse().unwrap();
    let dir = PathBuf::from(std::env::var(DIR_ENV).unwrap());
    let members = parse_members(&std::env::var(MEMBERS_ENV).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run_child(id, &dir, members));
}

async fn run_child(id: u64, dir: &Path, members: BTreeMap<u64, Member>) {
    let keypair = load_key_file(&dir.join(format!("node{id}.key"))).unwrap();
    let addr = members[&id].addr.clone();
    let started = Instant::now();
    // The killed process's port frees at once, but retry in case the kernel lags.
    let listener = loop {
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => break listener,
            Err(err) if started.elapsed() > Duration::from_secs(30) => panic!("bind {addr}: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let config = NodeConfig::on_disk(id, cluster(), &dir.join(format!("node{id}")));
    let node = ClusterNode::start(config, keypair, listener, TcpTransport).await.unwrap();
    if id == 0 {
        node.bootstrap(members).await.unwrap();
        let log = LogConfig {
            name: LogName::new(LOG).unwrap(),
            partitions: 1,
            replication_factor: 3,
            max_record_bytes: 1024,
            zk: Default::default(),
            constraint: None,
            trigger: None,
            acl: None,
        };
        match node.create_log(log).await {
            Ok(_) | Err(pyralog_cluster::engine::ClusterError::Rejected(Rejection::LogExists(_))) => {}
            Err(err) => panic!("create log: {err}"),
        }
    }
    let boot = std::process::id();
    let mut counter = 0u64;
    let mut last_status = Instant::now();
    loop {
        if last_status.elapsed() > Duration::from_millis(100) {
            last_status = Instant::now();
            if let Ok(info) = node.log(LOG)
                && let Some(replica) = node.replica(info.partition_id(0))
            {
                let reader = replica.reader();
                let root = reader.root_at(reader.size()).unwrap();
                println!("S {} {}", reader.size(), hex(&root.0));
            }
        }
        if dir.join("stop").exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        // Several records per call, so kills land between and inside batches.
        let values: Vec<String> = (0..4).map(|i| format!("n{id}-b{boot}-{}", counter + i)).collect();
        let records =
            values.iter().map(|v| Record { value: v.clone().into_bytes(), ..Record::default() }).collect();
        match node.append_to(LOG, 0, records).await {
            Ok(receipts) => {
                for (receipt, value) in receipts.iter().zip(&values) {
                    let pyralog_cluster::storage::AppendOutcome::Appended { offset } = receipt.outcome else {
                        panic!("not appended: {receipt:?}");
                    };
                    println!("A {offset} {value}");
                }
                counter += 4;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// What the children print, tagged with who printed it.
enum Event {
    Acked { node: u64, offset: u64, value: String },
    Status { node: u64, size: u64, root: String },
}

fn spawn_child(id: u64, dir: &Path, members: &str, events: mpsc::Sender<Event>) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["node_crash::node_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, id.to_string())
        .env(DIR_ENV, dir)
        .env(MEMBERS_ENV, members)
        .stdout(Stdio::piped())
        .stderr(child_log(dir, id))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let fields: Vec<&str> = line.split(' ').collect();
            let event = match fields[..] {
                ["A", offset, value] => {
                    Event::Acked { node: id, offset: offset.parse().unwrap(), value: value.to_owned() }
                }
                ["S", size, root] => {
                    Event::Status { node: id, size: size.parse().unwrap(), root: root.to_owned() }
                }
                _ => continue,
            };
            if events.send(event).is_err() {
                break;
            }
        }
    });
    child
}

/// Where a child's stderr goes (appended across restarts), so a failing run can show it.
fn child_log(dir: &Path, id: u64) -> Stdio {
    let path = dir.join(format!("node{id}.stderr"));
    Stdio::from(std::fs::File::options().create(true).append(true).open(path).unwrap())
}

/// The tail of every child's stderr, for failure messages.
fn child_logs(dir: &Path) -> String {
    (0..3)
        .map(|id| {
            let text = std::fs::read_to_string(dir.join(format!("node{id}.stderr"))).unwrap_or_default();
            let tail: String = text.chars().rev().take(1500).collect::<Vec<_>>().into_iter().rev().collect();
            format!("--- node {id} stderr (tail) ---\n{tail}\n")
        })
        .collect()
}

/// Notes an acknowledgement; returns who wrote it.
fn record(event: Event, acked: &mut BTreeMap<u64, String>) -> Option<u64> {
    let Event::Acked { node, offset, value } = event else { return None };
    if let Some(previous) = acked.insert(offset, value.clone()) {
        assert_eq!(previous, value, "offset {offset} acknowledged for two values");
    }
    Some(node)
}

fn kill(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn acknowledged_writes_survive_kill_9_of_node_processes() {
    let dir = tempfile::tempdir().unwrap();
    // Free ports: bind, note, release (the children bind them again).
    let ports: Vec<u16> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
        .collect();
    let mut members = Vec::new();
    for (id, port) in ports.iter().enumerate() {
        let keypair = Keypair::generate();
        write_key_file(&dir.path().join(format!("node{id}.key")), &keypair).unwrap();
        members.push(format!("{id}=127.0.0.1:{port}={}", keypair.public()));
    }
    let members = members.join(",");
    let (events_tx, events) = mpsc::channel();
    let mut children: Vec<Child> =
        (0..3).map(|id| spawn_child(id, dir.path(), &members, events_tx.clone())).collect();
    let mut rng =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("node kill -9 seed: {rng}");

    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    let started = Instant::now();
    for round in 0..KILLS {
        // Wait for fresh acknowledgements (a leader is writing), then kill it a moment later.
        let before = acked.len();
        let mut writer = None;
        while acked.len() < before + 20 {
            assert!(
                started.elapsed() < DEADLINE * 2,
                "no progress in round {round}\n{}",
                child_logs(dir.path())
            );
            if let Ok(event) = events.recv_timeout(Duration::from_millis(100)) {
                writer = record(event, &mut acked).or(writer);
            }
        }
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let linger = Instant::now() + Duration::from_millis((rng >> 33) % 300);
        while Instant::now() < linger {
            if let Ok(event) = events.recv_timeout(Duration::from_millis(10)) {
                writer = record(event, &mut acked).or(writer);
            }
        }
        // Mostly the writing leader; every fourth round a node picked at random.
        let victim = match round % 4 {
            3 => ((rng >> 20) % 3) as usize,
            _ => writer.expect("someone wrote") as usize,
        };
        kill(&mut children[victim]);
        children[victim] = spawn_child(victim as u64, dir.path(), &members, events_tx.clone());
    }

    // Stop the writers, let in-flight writes finish, then wait until all three report the same
    // size (covering every acknowledgement) and root.
    std::fs::write(dir.path().join("stop"), b"").unwrap();
    let quiet = Instant::now() + Duration::from_secs(1);
    while Instant::now() < quiet {
        if let Ok(event) = events.recv_timeout(Duration::from_millis(10)) {
            record(event, &mut acked);
        }
    }
    let mut status: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let settle = Instant::now();
    loop {
        assert!(
            settle.elapsed() < DEADLINE,
            "nodes did not converge: {status:?}\n{}",
            child_logs(dir.path())
        );
        let Ok(event) = events.recv_timeout(Duration::from_millis(100)) else { continue };
        if let Event::Status { node, size, root } = event {
            status.insert(node, (size, root));
        } else {
            record(event, &mut acked);
        }
        let highest = acked.keys().next_back().copied().unwrap_or(0);
        let sizes: Vec<&(u64, String)> = status.values().collect();
        if sizes.len() == 3 && sizes.iter().all(|s| *s == sizes[0]) && sizes[0].0 > highest {
            break;
        }
    }
    for child in &mut children {
        kill(child);
    }
    while let Ok(event) = events.try_recv() {
        record(event, &mut acked);
    }

    // Every acknowledged value is at its offset on every node's disk.
    let partition = PartitionId { log: 0, partition: 0 };
    let mut roots = Vec::new();
    for id in 0..3 {
        let storage =
            Storage::open(StorageMode::Disk(dir.path().join(format!("node{id}")).join("db"))).unwrap();
        let store = PartitionStore::open(&storage, partition).unwrap();
        let reader = store.reader();
        for (offset, value) in &acked {
            let stored =
                reader.get(*offset).unwrap().unwrap_or_else(|| panic!("node {id} lost offset {offset}"));
            assert_eq!(stored.record.value, value.as_bytes(), "node {id} offset {offset}");
        }
        let size = *acked.keys().next_back().unwrap() + 1;
        roots.push(reader.root_at(size).unwrap());
    }
    assert!(roots.windows(2).all(|w| w[0] == w[1]), "Merkle roots differ");
    eprintln!("{} acknowledged records over {KILLS} kills", acked.len());
}
