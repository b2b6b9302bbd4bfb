//! The chaos harness's records and their checker (issue 25), after Jepsen and etcd's robustness
//! tests: clients record every operation they invoke and how it completed (`history.jsonl`, one
//! [`Op`] per line), the harness reads every replica after healing ([`FinalState`]), and the
//! [`checker`] counts each kind of violation an append-only, replicated, verifiable log must never
//! show.
//!
//! [`run`] makes such a run against real nodes: one network namespace per node ([`net`]), the
//! `pyralog` processes ([`nodes`]), latency through a userspace relay ([`delay`]), clients ([`workload`], and over Kafka's protocol [`kafka`]) beside a seeded [`nemesis`], then the
//! replicas' final reads ([`final_read`]), the checker and the run's figures ([`stats`]);
//! [`summary`] adds up many runs. [`chain`] runs the chain's validators through the same faults.
//!
//! A client process has at most one operation outstanding: an `invoke` is completed by the same
//! process's next `ok` (it happened), `fail` (it definitely did not) or `info` (unknown: it may or
//! may not have happened), as in Jepsen's histories.

pub mod chain;
pub mod checker;
pub mod delay;
pub mod final_read;
pub mod kafka;
pub mod nemesis;
pub mod net;
pub mod nodes;
pub mod run;
pub mod stats;
pub mod summary;
pub mod workload;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Op {
    /// The client process (one operation outstanding at a time).
    pub process: u32,
    /// Invocation or completion.
    #[serde(rename = "type")]
    pub kind: OpKind,
    /// What it does.
    pub f: OpFn,
    /// The node it went to.
    #[serde(default)]
    pub node: String,
    /// The log partition.
    pub partition: u32,
    /// An append's value (unique per append, the same on every retry of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// An acknowledged append's offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// A read's first offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// A completed read's values, from `from` on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// A stream read's (a Kafka consumer's) expected first offset: where the same session's
    /// previous read of the partition stopped, or where the session started. A consumer must
    /// continue exactly there, neither skipping nor repeating a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// When, in ms since the run started.
    pub time_ms: u64,
    /// A completion's error (code and message, or why there was no answer), for whoever reads
    /// the history; the checker goes by `type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A read's session with its node (the client starts a new one after losing the
    /// connection); high-water marks are per process, node and session.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub session: u64,
}

impl Op {
    /// An operation of `process` on `partition` through node `node` (`nI`), with nothing else
    /// set yet (its time is set when it is recorded).
    pub fn new(process: u32, kind: OpKind, f: OpFn, node: usize, partition: u32) -> Op {
        Op {
            process,
            kind,
            f,
            node: format!("n{node}"),
            partition,
            value: None,
            offset: None,
            from: None,
            values: None,
            after: None,
            time_ms: 0,
            error: None,
            session: 0,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Invocation or one of the three completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// The client sent it.
    Invoke,
    /// It happened.
    Ok,
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may or may not have happened (a timeout, a lost connection).
    Info,
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpFn {
    /// Appends `value`.
    Append,
    /// Reads from `from`.
    Read,
}

/// One partition of one replica as read after healing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaLog {
    /// Its values in offset order (offset 0 first).
    pub values: Vec<String>,
    /// Its certified checkpoint, if any: size and root (hex).
    #[serde(default)]
    pub certified: Option<Certified>,
    /// The root (hex) of the first `certified.size` records of the final log, as the harness
    /// computed it from the records it read.
    #[serde(default)]
    pub prefix_root: Option<String>,
}

/// A certified checkpoint's size and root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certified {
    /// Records covered.
    pub size: u64,
    /// Merkle root (hex).
    pub root: String,
}

/// Every replica's final reads, and when the faults healed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalState {
    /// Partition -> node -> its log.
    pub partitions: BTreeMap<u32, BTreeMap<String, ReplicaLog>>,
    /// When the last fault healed, ms since the run started (the recovery deadline counts from
    /// here).
    pub healed_at_ms: u64,
    /// Partition -> every distinct certified checkpoint seen while the run went on (polled from
    /// every node), with the root of the final log's prefix of its size.
    #[serde(default)]
    pub certificates: BTreeMap<u32, Vec<ObservedCertificate>>,
}

/// A certified checkpoint seen during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedCertificate {
    /// The node that served it.
    pub node: String,
    /// Its size and root.
    pub certified: Certified,
    /// The root (hex) of the final log's first `size` records (none: the final log is shorter).
    pub prefix_root: Option<String>,
}

/// Reads `history.jsonl` (one [`Op`] per line; blank lines skipped).
pub fn read_history(path: &Path) -> anyhow::Result<Vec<Op>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}
