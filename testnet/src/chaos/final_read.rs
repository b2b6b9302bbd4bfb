//! After healing: wait until the replicas agree on their sizes, then read every replica of every
//! partition in full, with its certified checkpoint, and compute the Merkle root of the final
//! log's prefix each certificate claims to cover.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pyralog_crypto::merkle::{Blake3Merkle, Frontier};
use pyralog_record::StoredRecord;
use serde_json::json;

use super::workload::Clients;
use super::{Certified, FinalState, ObservedCertificate, ReplicaLog};

/// How long the replicas get to converge after healing.
const CONVERGE: Duration = Duration::from_secs(60);
/// Records per `log_read` page (the server's maximum).
const PAGE: u64 = 10_000;

/// Per partition, every node's (size, certified size) as its `system_status` says.
async fn sizes(clients: &Clients, log: &str) -> BTreeMap<u32, Vec<Option<(u64, u64)>>> {
    let mut sizes: BTreeMap<u32, Vec<Option<(u64, u64)>>> = BTreeMap::new();
    for node in 0..clients.len() {
        for p in clients.partitions(node, log).await {
            let (Some(partition), Some(size)) = (p["partition"].as_u64(), p["size"].as_u64()) else {
                continue;
            };
            let certified = p["certifiedSize"].as_u64().unwrap_or(0);
            let entry = sizes.entry(partition as u32).or_insert_with(|| vec![None; clients.len()]);
            entry[node] = Some((size, certified));
        }
    }
    sizes
}

/// Waits (up to a minute) until every node reports every partition at one size, certified in
/// full; returns whether they did.
pub async fn converge(clients: &Clients, log: &str, partitions: u32) -> bool {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let sizes = sizes(clients, log).await;
        let agreed = sizes.len() == partitions as usize
            && sizes.values().all(|nodes| {
                let first = nodes[0];
                nodes.iter().all(|n| matches!(n, Some((size, certified)) if Some(*size) == first.map(|f| f.0) && certified == size))
            });
        if agreed || Instant::now() > deadline {
            return agreed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every record of one replica of a partition.
async fn read_all(
    clients: &Clients,
    node: usize,
    log: &str,
    partition: u32,
) -> anyhow::Result<Vec<StoredRecord>> {
    let mut records = Vec::new();
    loop {
        let params = json!({ "log": log, "partition": partition, "from": records.len(), "max": PAGE });
        let page = clients
            .call(node, "log_read", params)
            .await
            .map_err(|err| anyhow::anyhow!("log_read at node {node}: {err:?}"))?;
        let page = page.as_array().ok_or_else(|| anyhow::anyhow!("log_read: not an array"))?;
        for record in page {
            records.push(pyralog_light::wire::record(record)?);
        }
        if (page.len() as u64) < PAGE {
            return Ok(records);
        }
    }
}

/// The roots of `records`' prefixes at each of `sizes` (hex).
fn prefix_roots(records: &[StoredRecord], sizes: &[u64]) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut roots = BTreeMap::new();
    let mut frontier = Frontier::<Blake3Merkle>::new();
    let mut scratch = Vec::new();
    for size in 0..=records.len() as u64 {
        if sizes.contains(&size) {
            roots.insert(size, pyralog_light::wire::to_hex(&frontier.root().0));
        }
        if let Some(record) = records.get(size as usize) {
            frontier.push(record.leaf_hash()?, &mut scratch);
            scratch.clear();
        }
    }
    Ok(roots)
}

/// Every node's certified checkpoint of every partition now: (partition, node, checkpoint).
pub async fn certificates(clients: &Clients, log: &str, partitions: u32) -> Vec<(u32, String, Certified)> {
    let mut found = Vec::new();
    for partition in 0..partitions {
        for node in 0..clients.len() {
            if let Some(certified) = clients.checkpoint(node, log, partition).await {
                found.push((partition, format!("n{node}"), certified));
            }
        }
    }
    found
}

/// Reads every replica of every partition (a replica that cannot be read counts as empty, so the
/// checker finds it divergent) and its certified checkpoint, and computes the final log's prefix
/// roots for those and for the certificates `observed` during the run.
pub async fn read(
    clients: &Clients,
    log: &str,
    partitions: u32,
    healed_at_ms: u64,
    observed: &[(u32, String, Certified)],
) -> anyhow::Result<FinalState> {
    let mut state = FinalState { healed_at_ms, ..FinalState::default() };
    for partition in 0..partitions {
        let mut replicas = BTreeMap::new();
        let mut longest: Vec<StoredRecord> = Vec::new();
        let mut certified = BTreeMap::new();
        for node in 0..clients.len() {
            let records = read_all(clients, node, log, partition).await.unwrap_or_default();
            certified.insert(node, clients.checkpoint(node, log, partition).await);
            let values =
                records.iter().map(|r| String::from_utf8_lossy(&r.record.value).into_owned()).collect();
            replicas.insert(node, ReplicaLog { values, certified: None, prefix_root: None });
            if records.len() > longest.len() {
                longest = records;
            }
        }
        let seen: Vec<&(u32, String, Certified)> =
            observed.iter().filter(|(p, ..)| *p == partition).collect();
        let sizes: Vec<u64> =
            certified.values().flatten().map(|c| c.size).chain(seen.iter().map(|(_, _, c)| c.size)).collect();
        let roots = prefix_roots(&longest, &sizes)?;
        state.certificates.insert(
            partition,
            seen.into_iter()
                .map(|(_, node, certified)| ObservedCertificate {
                    node: node.clone(),
                    certified: certified.clone(),
                    prefix_root: roots.get(&certified.size).cloned(),
                })
                .collect(),
        );
        state.partitions.insert(
            partition,
            replicas
                .into_iter()
                .map(|(node, mut replica)| {
                    let certificate = certified.remove(&node).flatten();
                    replica.prefix_root = certificate.as_ref().and_then(|c| roots.get(&c.size).cloned());
                    replica.certified = certificate;
                    (format!("n{node}"), replica)
                })
                .collect(),
        );
    }
    Ok(state)
}

/// How many of the log's partitions have a leader, as node 0 sees them.
pub async fn leaders(clients: &Clients, log: &str) -> usize {
    clients.partitions(0, log).await.iter().filter(|p| p["leader"].is_u64()).count()
}
