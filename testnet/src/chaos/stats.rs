//! What a run measured besides its violations: faults by kind, availability of appends before,
//! during and after faults, the longest time without an acknowledged append, failover time
//! (a fault that takes a partition's leader away, to that partition's next acknowledged append)
//! and recovery time (a heal to the next acknowledged append).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::nemesis::Applied;
use super::{Op, OpFn, OpKind};

/// Appends invoked and acknowledged in one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    /// Appends invoked.
    pub invoked: u64,
    /// Of them, acknowledged.
    pub ok: u64,
}

impl Availability {
    /// The acknowledged fraction (1 when nothing was invoked).
    pub fn ratio(&self) -> f64 {
        if self.invoked == 0 { 1.0 } else { self.ok as f64 / self.invoked as f64 }
    }
}

/// One run's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Faults applied, by kind (not those skipped: no global leader to add a member, a failpoint
    /// that could not be set).
    pub faults: BTreeMap<String, u64>,
    /// Appends invoked before the first fault.
    pub before: Availability,
    /// Appends invoked while a fault was on.
    pub during: Availability,
    /// Appends invoked after a fault healed and before the next.
    pub after: Availability,
    /// The longest time without an acknowledged append, ms.
    pub longest_unavailable_ms: u64,
    /// Per leader-taking fault: ms from its start to the first append to that partition invoked
    /// after it and acknowledged (completion time).
    pub failover_ms: Vec<u64>,
    /// Per heal: ms to the first append invoked after it and acknowledged.
    pub recovery_ms: Vec<u64>,
}

/// Acknowledged appends: (partition, invoked, completed).
fn acknowledged(history: &[Op]) -> (Vec<(u32, u64, u64)>, Vec<u64>) {
    let mut open: BTreeMap<u32, &Op> = BTreeMap::new();
    let mut acked = Vec::new();
    let mut invoked = Vec::new();
    for op in history.iter().filter(|op| op.f == OpFn::Append) {
        match op.kind {
            OpKind::Invoke => {
                open.insert(op.process, op);
                invoked.push(op.time_ms);
            }
            OpKind::Ok => {
                if let Some(invoke) = open.remove(&op.process) {
                    acked.push((op.partition, invoke.time_ms, op.time_ms));
                }
            }
            _ => {
                open.remove(&op.process);
            }
        }
    }
    (acked, invoked)
}

/// The figures of `history` (whose workload ended at `end_ms`) under the faults `nemesis`
/// applied.
pub fn measure(history: &[Op], nemesis: &[Applied], end_ms: u64) -> Stats {
    let mut stats = Stats::default();
    // A fault that hit no node was skipped (no global leader to add a member, a failpoint that
    // could not be set): it counts for nothing.
    let nemesis: Vec<&Applied> = nemesis.iter().filter(|fault| !fault.nodes.is_empty()).collect();
    for fault in &nemesis {
        *stats.faults.entry(fault.kind.name().to_owned()).or_default() += 1;
    }
    let (acked, invoked) = acknowledged(history);
    let first_fault = nemesis.iter().map(|f| f.start_ms).min().unwrap_or(u64::MAX);
    let phase = |t: u64| {
        if t < first_fault {
            0
        } else if nemesis.iter().any(|f| (f.start_ms..f.end_ms).contains(&t)) {
            1
        } else {
            2
        }
    };
    for t in invoked {
        [&mut stats.before, &mut stats.during, &mut stats.after][phase(t)].invoked += 1;
    }
    for &(_, t, _) in &acked {
        [&mut stats.before, &mut stats.during, &mut stats.after][phase(t)].ok += 1;
    }
    // From the start, through every acknowledgement, to the workload's end.
    let mut completions: Vec<u64> = acked.iter().map(|&(_, _, done)| done).collect();
    completions.extend([0, end_ms]);
    completions.sort_unstable();
    stats.longest_unavailable_ms = completions.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let first_after = |start: u64, partition: Option<u32>| {
        acked
            .iter()
            .filter(|&&(p, invoked, _)| invoked >= start && partition.is_none_or(|hit| hit == p))
            .map(|&(_, _, done)| done - start)
            .min()
    };
    for fault in nemesis {
        if fault.partition.is_some()
            && let Some(ms) = first_after(fault.start_ms, fault.partition)
        {
            stats.failover_ms.push(ms);
        }
        if let Some(ms) = first_after(fault.end_ms, None) {
            stats.recovery_ms.push(ms);
        }
    }
    stats
}

/// The `q` quantile (0 to 1) of `values`, nearest rank; 0 when empty.
pub fn quantile(values: &[u64], q: f64) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    match sorted.len() {
        0 => 0,
        n => sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
    }
}
