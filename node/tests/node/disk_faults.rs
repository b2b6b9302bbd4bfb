//! Storage failpoints (`debug_setFailpoint`, test builds): while no node can fsync its WAL no
//! write is acknowledged, and after the failpoints are off and the nodes restarted (a failed
//! fsync is fatal: fail-stop) every write acknowledged before is still at its offset and new
//! writes are taken. Unknown failpoints and bad actions are refused with -32602.

use std::time::Duration;

use serde_json::json;

use crate::support::{call, code, eventually, hex, spawn_node, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsyncs_acknowledge_nothing_and_a_restart_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = start(dir.path()).await;
    let rpc = net.rpc.clone();
    call(&rpc[0], "log_create", json!({"name": "disk", "partitions": 1, "replicationFactor": 3}))
        .await
        .unwrap();
    let append = |url: String, value: String| async move {
        let records = json!({"log": "disk", "partition": 0, "records": [{"value": hex(value.as_bytes())}]});
        tokio::time::timeout(Duration::from_secs(40), call(&url, "log_append", records)).await
    };
    let mut acked = Vec::new();
    for n in 0..5 {
        let receipts = eventually("a write before the fault", async || {
            append(rpc[0].clone(), format!("before-{n}")).await.ok()?.ok()
        })
        .await;
        acked.push((receipts[0]["offset"].as_u64().unwrap(), hex(format!("before-{n}").as_bytes())));
    }

    // Refusals change nothing.
    async fn set(
        url: &str,
        name: &str,
        actions: &str,
    ) -> Result<serde_json::Value, jsonrpsee::core::client::Error> {
        call(url, "debug_setFailpoint", json!({"name": name, "actions": actions})).await
    }
    assert_eq!(code(set(&rpc[0], "disk-on-fire", "return").await), -32602);
    assert_eq!(code(set(&rpc[0], "wal-fsync", "explode(").await), -32602);

    for url in &rpc {
        let answer = set(url, "wal-fsync", "return").await.unwrap();
        assert_eq!(answer, json!({"name": "wal-fsync", "actions": "return"}));
    }
    for (n, url) in rpc.iter().enumerate() {
        let outcome = append(url.clone(), format!("during-{n}")).await;
        assert!(!matches!(outcome, Ok(Ok(_))), "a write was acknowledged with no fsync working: {outcome:?}");
    }

    for url in &rpc {
        set(url, "wal-fsync", "off").await.unwrap();
    }
    for (i, child) in net.children.iter_mut().enumerate() {
        child.kill().unwrap();
        child.wait().unwrap();
        *child = spawn_node(dir.path(), i as u16);
    }
    let receipts = eventually("a write after the restart", async || {
        append(rpc[1].clone(), "after".to_owned()).await.ok()?.ok()
    })
    .await;
    let size = receipts[0]["offset"].as_u64().unwrap() + 1;
    for url in &rpc {
        let records = eventually("every node caught up", async || {
            let read =
                call(url, "log_read", json!({"log": "disk", "partition": 0, "max": 100})).await.ok()?;
            (read.as_array()?.len() as u64 >= size).then_some(read)
        })
        .await;
        for (offset, value) in &acked {
            assert_eq!(&records[*offset as usize]["value"], value, "offset {offset} at {url}");
        }
    }
}
