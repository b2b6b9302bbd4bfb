//! Log trigger contracts on a three-node cluster on loopback: the source partition's leader
//! runs the trigger on every committed record and appends what it derives to the target log;
//! when the leader is killed while outputs are being written, its successor finishes the work
//! and the target holds exactly one derived record per source record (none lost, none twice).

use std::collections::BTreeSet;

use pyralog_cluster::engine::ClusterNode;
use pyralog_cluster::local::start_cluster;
use pyralog_cluster::model::{LogConfig, Record, TriggerConfig};
use pyralog_cluster::raft::Rejection;
use pyralog_cluster::trigger::SOURCE_HEADER;
use pyralog_contracts::examples::{AUDIT_TRIGGER, wasm_of};
use pyralog_crypto::{ClusterId, LogName};

use crate::support::{DEADLINE, eventually, leader_of, log_config, running};

fn config(name: &str, trigger: Option<TriggerConfig>) -> LogConfig {
    LogConfig { trigger, ..log_config(name, 1, 3) }
}

fn values(from: usize, to: usize) -> Vec<Record> {
    (from..to)
        .map(|i| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: format!("order {i}").into_bytes(),
            ..Record::default()
        })
        .collect()
}

/// The audit log's records as a running node reads them: (source header, value).
fn audited(node: &ClusterNode) -> Vec<(String, String)> {
    node.read("audit", 0, 0, 10_000)
        .unwrap_or_default()
        .into_iter()
        .map(|stored| {
            let source =
                stored.record.headers.iter().find(|h| h.name == SOURCE_HEADER).expect("a source header");
            (
                String::from_utf8(source.value.clone()).unwrap(),
                String::from_utf8(stored.record.value).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trigger_derives_one_record_per_source_record_across_a_leader_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(3, &ClusterId::new("triggers").unwrap(), dir.path(), |_| {}).await.unwrap();
    let first = nodes[0].node();
    let code = first.store_contract_code(wasm_of(AUDIT_TRIGGER.as_bytes()).unwrap()).await.unwrap();
    // The target must exist first, and may not be the log itself.
    let early = first
        .create_log(config("orders", Some(TriggerConfig { code, target: LogName::new("audit").unwrap() })))
        .await;
    assert!(
        matches!(early, Err(pyralog_cluster::engine::ClusterError::Rejected(Rejection::InvalidLog(_)))),
        "{early:?}"
    );
    first.create_log(config("audit", None)).await.unwrap();
    let trigger = TriggerConfig { code, target: LogName::new("audit").unwrap() };
    let info = first.create_log(config("orders", Some(trigger))).await.unwrap();
    for log in ["audit", "orders"] {
        assert!(first.wait_until_writable(log, DEADLINE).await.unwrap());
    }
    let source = info.partition_id(0);

    let lead = leader_of(&nodes, source).await;
    for batch in 0..4 {
        lead.append_to("orders", 0, values(batch * 10, batch * 10 + 10)).await.unwrap();
    }
    let reader = running(&nodes).find(|n| n.id() != lead.id()).unwrap();
    eventually("40 derived records", || audited(reader).len() >= 40).await;
    let derived = audited(reader);
    assert_eq!(derived[7], ("orders/0/7".to_owned(), "audit:order 7".to_owned()));

    // More records, and the source leader dies between writing their outputs and advancing
    // the cursor (a failpoint holds it there, so it runs them again and again: the target
    // stores each once).
    let held = pyralog_cluster::failpoints::configure("trigger-advance", "return");
    if held.is_err() {
        eprintln!(
            "SKIPPED the leader kill between output and cursor: {held:?} (build with the `failpoints` feature)"
        );
        return;
    }
    lead.append_to("orders", 0, values(40, 70)).await.unwrap();
    eventually("70 derived records, cursor held", || audited(reader).len() >= 70).await;
    let at = |node: &ClusterNode| node.global_state().borrow().triggers.get(&source).map(|c| c.next_offset);
    assert_eq!(at(reader), Some(40), "the cursor did not move past the held step");
    let old = lead.id();
    nodes[old as usize].stop().await.unwrap();
    pyralog_cluster::failpoints::configure("trigger-advance", "off").unwrap();
    let successor = leader_of(&nodes, source).await;
    assert_ne!(successor.id(), old);
    let cursor_done = || {
        running(&nodes)
            .all(|n| n.global_state().borrow().triggers.get(&source).is_some_and(|c| c.next_offset == 70))
    };
    eventually("the trigger's cursor at 70 on the running nodes", cursor_done).await;
    let reader = running(&nodes).next().unwrap();
    eventually("70 derived records", || audited(reader).len() >= 70).await;
    let derived = audited(reader);
    let sources: BTreeSet<&String> = derived.iter().map(|(source, _)| source).collect();
    assert_eq!(derived.len(), 70, "one derived record per source record: {derived:?}");
    assert_eq!(sources.len(), 70);
    let cursor = reader.global_state().borrow().triggers[&source];
    assert_eq!(cursor.next_sequence, 70);
}
