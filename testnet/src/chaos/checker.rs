//! The checker: what an append-only, replicated, verifiable log must never show, counted per
//! kind over a history and the replicas' final state (Jepsen's Kafka checker finds lost,
//! duplicated and inconsistent-offset writes; these are the log's versions of them).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::{FinalState, Op, OpFn, OpKind};

/// How long after healing a final append must succeed.
pub const RECOVERY_MS: u64 = 30_000;

/// Violation counters: every one must be 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violations {
    /// Acknowledged appends whose value is not in the final log.
    pub lost: u64,
    /// Acknowledged appends whose value is in the final log at another offset.
    pub wrong_offset: u64,
    /// Values the final log holds more than once.
    pub duplicates: u64,
    /// Values in the final log no client ever appended.
    pub phantom: u64,
    /// Values of appends that definitely failed, found in the final log.
    pub failed_appeared: u64,
    /// Partitions whose replicas hold different logs after healing.
    pub divergent_replicas: u64,
    /// Certified roots that are not the root of the final log's prefix of that size (or cover
    /// more records than the replica holds), after the run or seen during it.
    pub certified_mismatch: u64,
    /// Pairs of acknowledged appends to one partition where the one that completed first got the
    /// higher offset (real-time order).
    pub order_violations: u64,
    /// Reads whose values disagree with the final log.
    pub stale_reads: u64,
    /// Reads that saw a shorter log than the same client had seen before on the same node.
    pub hwm_regressions: u64,
    /// Stream reads (Kafka consumers) that did not start where the session's previous read of
    /// the partition stopped: a record skipped or delivered twice.
    pub stream_gaps: u64,
    /// Partitions where no append succeeded within [`RECOVERY_MS`] of healing.
    pub no_recovery: u64,
}

impl Violations {
    /// Whether every counter is 0.
    pub fn none(&self) -> bool {
        *self == Violations::default()
    }
}

/// Operations by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcomes {
    /// Completed `ok`.
    pub ok: u64,
    /// Completed `fail`.
    pub fail: u64,
    /// Completed `info` (unknown), or never completed.
    pub unknown: u64,
    /// Acknowledged appends.
    pub acknowledged: u64,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The violations (all 0 for a valid history).
    pub violations: Violations,
    /// Operations by outcome.
    pub outcomes: Outcomes,
}

/// An operation with its completion.
#[derive(Debug, Clone)]
struct Completed {
    invoke: Op,
    /// The completion (none: never completed, as unknown).
    done: Option<Op>,
}

/// Pairs each invoke with its process's next completion.
fn pair(history: &[Op]) -> Vec<Completed> {
    let mut open: HashMap<u32, usize> = HashMap::new();
    let mut ops: Vec<Completed> = Vec::new();
    for op in history {
        match op.kind {
            OpKind::Invoke => {
                open.insert(op.process, ops.len());
                ops.push(Completed { invoke: op.clone(), done: None });
            }
            _ => {
                if let Some(index) = open.remove(&op.process) {
                    ops[index].done = Some(op.clone());
                }
            }
        }
    }
    ops
}

/// Checks `history` against the replicas' `final_state`.
pub fn check(history: &[Op], final_state: &FinalState) -> Report {
    let mut report = Report::default();
    let ops = pair(history);
    let v = &mut report.violations;

    // The final log of each partition: the replicas must agree; the first is the reference.
    let mut logs: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (partition, replicas) in &final_state.partitions {
        let mut distinct = replicas.values().map(|r| &r.values).collect::<Vec<_>>();
        distinct.dedup();
        if distinct.len() > 1 {
            v.divergent_replicas += 1;
        }
        for replica in replicas.values() {
            if let Some(certified) = &replica.certified
                && (replica.prefix_root.as_ref() != Some(&certified.root)
                    || certified.size > replica.values.len() as u64)
            {
                v.certified_mismatch += 1;
            }
        }
        let longest = replicas.values().map(|r| &r.values).max_by_key(|values| values.len());
        logs.insert(*partition, longest.cloned().unwrap_or_default());
    }
    for observed in final_state.certificates.values().flatten() {
        if observed.prefix_root.as_ref() != Some(&observed.certified.root) {
            v.certified_mismatch += 1;
        }
    }
    let position: BTreeMap<(u32, &str), Vec<u64>> =
        logs.iter().fold(BTreeMap::new(), |mut map, (p, values)| {
            for (offset, value) in values.iter().enumerate() {
                map.entry((*p, value.as_str())).or_insert_with(Vec::new).push(offset as u64);
            }
            map
        });
    v.duplicates = position.values().map(|offsets| offsets.len().saturating_sub(1) as u64).sum();
    let sent: BTreeSet<(u32, &str)> = ops
        .iter()
        .filter(|op| op.invoke.f == OpFn::Append)
        .filter_map(|op| op.invoke.value.as_deref().map(|value| (op.invoke.partition, value)))
        .collect();
    v.phantom = position.keys().filter(|key| !sent.contains(key)).count() as u64;

    let mut acknowledged: BTreeMap<u32, Vec<(u64, u64, u64)>> = BTreeMap::new(); // (invoked, completed, offset)
    let mut seen_by_session: HashMap<(u32, String, u64, u32), u64> = HashMap::new();
    let mut recovered: BTreeSet<u32> = BTreeSet::new();
    for op in &ops {
        let partition = op.invoke.partition;
        let kind = op.done.as_ref().map_or(OpKind::Info, |d| d.kind);
        match kind {
            OpKind::Ok => report.outcomes.ok += 1,
            OpKind::Fail => report.outcomes.fail += 1,
            _ => report.outcomes.unknown += 1,
        }
        let (Some(done), OpFn::Append) = (&op.done, op.invoke.f) else {
            if let (Some(done), OpFn::Read, OpKind::Ok) = (&op.done, op.invoke.f, kind) {
                check_read(v, &logs, partition, done, &mut seen_by_session);
            }
            continue;
        };
        let value = op.invoke.value.as_deref().unwrap_or_default();
        let found = position.get(&(partition, value));
        match done.kind {
            OpKind::Ok => {
                report.outcomes.acknowledged += 1;
                match (found, done.offset) {
                    (None, _) => v.lost += 1,
                    (Some(offsets), Some(offset)) if !offsets.contains(&offset) => v.wrong_offset += 1,
                    _ => {}
                }
                if let Some(offset) = done.offset {
                    acknowledged.entry(partition).or_default().push((
                        op.invoke.time_ms,
                        done.time_ms,
                        offset,
                    ));
                }
                if op.invoke.time_ms >= final_state.healed_at_ms
                    && done.time_ms <= final_state.healed_at_ms + RECOVERY_MS
                {
                    recovered.insert(partition);
                }
            }
            OpKind::Fail if found.is_some() => v.failed_appeared += 1,
            _ => {}
        }
    }
    // Real-time order: an append acknowledged before another was invoked has the lower offset.
    for appends in acknowledged.values_mut() {
        appends.sort_by_key(|(_, completed, _)| *completed);
        for (i, (_, completed, offset)) in appends.iter().enumerate() {
            v.order_violations += appends[i + 1..]
                .iter()
                .filter(|(invoked, _, later)| invoked > completed && later < offset)
                .count() as u64;
        }
    }
    v.no_recovery = final_state.partitions.keys().filter(|p| !recovered.contains(p)).count() as u64;
    report
}

/// A read agrees with the final log and never sees less of the partition than its process saw
/// before in the same session with the same node (replicas apply at their own pace, so another
/// node may be behind; a lost connection starts a new session).
fn check_read(
    v: &mut Violations,
    logs: &BTreeMap<u32, Vec<String>>,
    partition: u32,
    done: &Op,
    seen_by_session: &mut HashMap<(u32, String, u64, u32), u64>,
) {
    let from = done.from.unwrap_or(0) as usize;
    let values = done.values.clone().unwrap_or_default();
    let log = logs.get(&partition).map(Vec::as_slice).unwrap_or_default();
    if log.get(from..from + values.len()) != Some(values.as_slice()) {
        v.stale_reads += 1;
    }
    if done.after.is_some_and(|after| after != from as u64) {
        v.stream_gaps += 1;
    }
    let seen = (from + values.len()) as u64;
    let high = seen_by_session.entry((done.process, done.node.clone(), done.session, partition)).or_default();
    if seen < *high {
        v.hwm_regressions += 1;
    }
    *high = (*high).max(seen);
}
