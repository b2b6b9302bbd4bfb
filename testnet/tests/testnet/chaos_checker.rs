//! The chaos checker on hand-made histories: a valid run counts nothing, and each violation
//! (lost, wrong offset, duplicate, phantom, a failed append that appeared, divergent replicas, a
//! certified root that is not the final log's, real-time order, stale reads, a session's
//! high-water mark going back, a consumer skipping or repeating records, no recovery after
//! healing) is counted by its own counter.
//! `pyralog-chaos check DIR` re-checks a saved run and exits 1 on a violation.

use std::collections::BTreeMap;

use pyralog_testnet::chaos::checker::{RECOVERY_MS, Violations, check};
use pyralog_testnet::chaos::{Certified, FinalState, ObservedCertificate, Op, OpFn, OpKind, ReplicaLog};

fn op(process: u32, kind: OpKind, f: OpFn, time_ms: u64) -> Op {
    Op {
        process,
        kind,
        f,
        node: "n1".into(),
        partition: 0,
        value: None,
        offset: None,
        from: None,
        values: None,
        after: None,
        time_ms,
        error: None,
        session: 0,
    }
}

/// An append of `value` by `process` from `start` to `end`, completed with `kind` (and `offset`).
fn append(process: u32, value: &str, start: u64, end: u64, kind: OpKind, offset: Option<u64>) -> Vec<Op> {
    let invoke = Op { value: Some(value.into()), ..op(process, OpKind::Invoke, OpFn::Append, start) };
    let done = Op { value: Some(value.into()), offset, ..op(process, kind, OpFn::Append, end) };
    vec![invoke, done]
}

fn read(process: u32, from: u64, values: &[&str], start: u64, end: u64) -> Vec<Op> {
    let invoke = Op { from: Some(from), ..op(process, OpKind::Invoke, OpFn::Read, start) };
    let values = Some(values.iter().map(|v| v.to_string()).collect());
    let done = Op { from: Some(from), values, ..op(process, OpKind::Ok, OpFn::Read, end) };
    vec![invoke, done]
}

/// Three replicas of partition 0 holding `values`, certified over all of them.
fn replicated(values: &[&str]) -> FinalState {
    let log = ReplicaLog {
        values: values.iter().map(|v| v.to_string()).collect(),
        certified: Some(Certified { size: values.len() as u64, root: "0xroot".into() }),
        prefix_root: Some("0xroot".into()),
    };
    let replicas: BTreeMap<String, ReplicaLog> =
        ["n1", "n2", "n3"].iter().map(|n| (n.to_string(), log.clone())).collect();
    FinalState { partitions: BTreeMap::from([(0, replicas)]), healed_at_ms: 1_000, ..FinalState::default() }
}

/// A valid run: two acknowledged appends in order, an unknown one that landed once, a failed one
/// that did not, reads that agree, and an append right after healing.
fn valid() -> (Vec<Op>, FinalState) {
    let history = [
        append(1, "a", 0, 10, OpKind::Ok, Some(0)),
        append(2, "b", 20, 30, OpKind::Ok, Some(1)),
        append(3, "c", 40, 900, OpKind::Info, None),
        append(4, "d", 50, 60, OpKind::Fail, None),
        read(5, 0, &["a"], 15, 16),
        read(5, 0, &["a", "b"], 35, 36),
        append(1, "e", 1_000, 1_200, OpKind::Ok, Some(3)),
    ]
    .concat();
    (history, replicated(&["a", "b", "c", "e"]))
}

fn violations(history: &[Op], final_state: &FinalState) -> Violations {
    check(history, final_state).violations
}

#[test]
fn a_valid_run_counts_nothing() {
    let (history, final_state) = valid();
    let report = check(&history, &final_state);
    assert!(report.violations.none(), "{report:?}");
    assert_eq!((report.outcomes.ok, report.outcomes.fail, report.outcomes.unknown), (5, 1, 1));
    assert_eq!(report.outcomes.acknowledged, 3);
}

#[test]
fn each_violation_has_its_counter() {
    let (history, good) = valid();

    // Lost: "b" acknowledged but gone.
    let v = violations(&history, &replicated(&["a", "c", "e"]));
    assert_eq!(v.lost, 1);
    // Wrong offset: "b" at 2, acknowledged at 1.
    let v = violations(&history, &replicated(&["a", "c", "b", "e"]));
    assert_eq!((v.wrong_offset, v.lost), (1, 0), "{v:?}");
    // Duplicate: the unknown append landed twice.
    let v = violations(&history, &replicated(&["a", "b", "c", "e", "c"]));
    assert_eq!(v.duplicates, 1);
    // Phantom: a value nobody sent.
    let v = violations(&history, &replicated(&["a", "b", "c", "e", "zzz"]));
    assert_eq!(v.phantom, 1);
    // A definite failure that appeared.
    let v = violations(&history, &replicated(&["a", "b", "c", "e", "d"]));
    assert_eq!(v.failed_appeared, 1);
    // Divergent replicas.
    let mut divergent = good.clone();
    divergent.partitions.get_mut(&0).unwrap().get_mut("n3").unwrap().values.pop();
    assert_eq!(violations(&history, &divergent).divergent_replicas, 1);
    // A certified root that is not the final log's prefix root.
    let mut forged = good.clone();
    forged.partitions.get_mut(&0).unwrap().get_mut("n2").unwrap().prefix_root = Some("0xother".into());
    assert_eq!(violations(&history, &forged).certified_mismatch, 1);
    // A certificate seen during the run whose prefix the final log no longer has (or lacks).
    let observed = |prefix_root: Option<&str>| {
        let certified = Certified { size: 2, root: "0xearlier".into() };
        let seen =
            ObservedCertificate { node: "n1".into(), certified, prefix_root: prefix_root.map(String::from) };
        FinalState { certificates: BTreeMap::from([(0, vec![seen])]), ..good.clone() }
    };
    assert!(violations(&history, &observed(Some("0xearlier"))).none());
    assert_eq!(violations(&history, &observed(Some("0xrewritten"))).certified_mismatch, 1);
    assert_eq!(violations(&history, &observed(None)).certified_mismatch, 1);
    // Real-time order: "b" was invoked after "a" was acknowledged, yet got the lower offset.
    let reordered = [
        append(1, "a", 0, 10, OpKind::Ok, Some(1)),
        append(2, "b", 20, 30, OpKind::Ok, Some(0)),
        append(1, "e", 1_000, 1_200, OpKind::Ok, Some(2)),
    ]
    .concat();
    let v = violations(&reordered, &replicated(&["b", "a", "e"]));
    assert_eq!(v.order_violations, 1);
    assert_eq!((v.lost, v.wrong_offset), (0, 0));
    // A stale read (a value the final log does not hold there), and a session that saw less later.
    let mut stale = history.clone();
    stale.extend(read(6, 1, &["x"], 40, 41));
    assert_eq!(violations(&stale, &good).stale_reads, 1);
    let mut shrinking = history.clone();
    shrinking.extend(read(5, 0, &[], 50, 51));
    let v = violations(&shrinking, &good);
    assert_eq!((v.hwm_regressions, v.stale_reads), (1, 0));
    // The same read from another node, or after a lost connection, is another session: that
    // replica may be behind, or restarting.
    let mut other_node = history.clone();
    other_node.extend(read(5, 0, &[], 50, 51).into_iter().map(|op| Op { node: "n2".into(), ..op }));
    assert!(violations(&other_node, &good).none());
    let mut new_session = history.clone();
    new_session.extend(read(5, 0, &[], 50, 51).into_iter().map(|op| Op { session: 1, ..op }));
    assert!(violations(&new_session, &good).none());
    // A consumer's reads continue where its previous one stopped: skipping a record, or
    // delivering one again, is a gap.
    let consumed = |from: u64, values: &[&str], after: u64| {
        read(7, from, values, 60, 61).into_iter().map(move |op| Op { after: Some(after), ..op })
    };
    let mut stream = history.clone();
    stream.extend(consumed(0, &["a"], 0).chain(consumed(1, &["b"], 1)));
    assert!(violations(&stream, &good).none());
    let mut skipped = history.clone();
    skipped.extend(consumed(1, &["b"], 0));
    assert_eq!(violations(&skipped, &good).stream_gaps, 1);
    let mut repeated = history.clone();
    repeated.extend(consumed(0, &["a"], 0).chain(consumed(0, &["a", "b"], 1)));
    assert_eq!((violations(&repeated, &good).stream_gaps, violations(&repeated, &good).stale_reads), (1, 0));
    // No append succeeded within the recovery window after healing.
    let mut late = history.clone();
    late.truncate(history.len() - 2);
    late.extend(append(1, "e", 1_000, 1_000 + RECOVERY_MS + 1, OpKind::Ok, Some(3)));
    assert_eq!(violations(&late, &good).no_recovery, 1);
    // Recovery is per partition: one that took no append after healing counts, even when
    // another did.
    let mut two = good.clone();
    two.partitions.insert(1, BTreeMap::from([("n1".to_string(), ReplicaLog::default())]));
    assert_eq!(violations(&history, &two).no_recovery, 1);
}

#[test]
fn pyralog_chaos_check_rechecks_a_saved_run() {
    let dir = tempfile::tempdir().unwrap();
    let (history, final_state) = valid();
    let lines: Vec<String> = history.iter().map(|op| serde_json::to_string(op).unwrap()).collect();
    std::fs::write(dir.path().join("history.jsonl"), lines.join("\n") + "\n").unwrap();
    std::fs::write(dir.path().join("final.json"), serde_json::to_string(&final_state).unwrap()).unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pyralog-chaos"))
            .arg("check")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["violations"]["lost"], 0);
    // The same run with an acknowledged write lost: exit 1 and the counter says so.
    std::fs::write(
        dir.path().join("final.json"),
        serde_json::to_string(&replicated(&["a", "c", "e"])).unwrap(),
    )
    .unwrap();
    let out = run();
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["violations"]["lost"], 1);
}

/// Every kept failing history (`testnet/chaos-regressions/*/`) still shows the violations it was
/// kept for, and no others.
#[test]
fn kept_regressions_are_still_found() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("chaos-regressions");
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let history = pyralog_testnet::chaos::read_history(&dir.join("history.jsonl")).unwrap();
        let final_state: FinalState =
            serde_json::from_slice(&std::fs::read(dir.join("final.json")).unwrap()).unwrap();
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        let found = serde_json::to_value(check(&history, &final_state).violations).unwrap();
        for (name, count) in found.as_object().unwrap() {
            let want = expected.get(name).cloned().unwrap_or(serde_json::json!(0));
            assert_eq!(*count, want, "{}: {name}", dir.display());
        }
    }
}
