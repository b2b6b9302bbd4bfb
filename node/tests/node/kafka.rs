//! Kafka's wire protocol, spoken by a client nobody here wrote: `kcat` (librdkafka) lists the
//! topics, produces keyed records with headers, and consumes them back from a one-node cluster
//! with `[kafka] listen`; the records are the same ones JSON-RPC reads. Frames the broker cannot
//! read close the connection and change nothing. Skips, saying why, where `kcat` is missing.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::support::{call, eventually, hex, start_with};

fn kcat_missing() -> bool {
    if Command::new("kcat").arg("-V").output().is_ok_and(|o| o.status.success()) {
        return false;
    }
    println!("SKIPPED: kcat is not installed (the Makefile installs it: make deps)");
    true
}

/// Runs `kcat` with `args` and `stdin`; its stdout, if it exited 0.
fn kcat(args: &[&str], stdin: &str) -> Option<String> {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(stdin.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    if !output.status.success() {
        println!("kcat {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produces_and_consumes_through_the_kafka_listener() {
    if kcat_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 1, |config| config.to_owned()).await;
    let broker = net.kafka[0].clone();
    let rpc = &net.rpc[0];
    call(rpc, "log_create", json!({"name": "events", "partitions": 1, "replicationFactor": 1}))
        .await
        .unwrap();

    // Metadata: the topic, with this node as the leader of its partition.
    let listing = {
        let broker = broker.clone();
        eventually("kcat sees the topic with a leader", async move || {
            let out = kcat(&["-L", "-J", "-b", &broker, "-t", "events"], "")?;
            let metadata: serde_json::Value = serde_json::from_str(&out).ok()?;
            let partition = &metadata["topics"][0]["partitions"][0];
            (partition["leader"].as_i64()? >= 0).then_some(metadata)
        })
        .await
    };
    assert_eq!(listing["topics"][0]["topic"], "events");

    // Produce five keyed records with a header, acks=all.
    let input: String = (1..=5).map(|i| format!("user-{}:event {i}\n", i % 2)).collect();
    let produced = kcat(
        &["-P", "-b", &broker, "-t", "events", "-p", "0", "-K", ":", "-H", "source=kcat", "-X", "acks=all"],
        &input,
    );
    assert!(produced.is_some(), "kcat could not produce");

    // The same records through JSON-RPC: keys, values, the header.
    let records = call(rpc, "log_read", json!({"log": "events", "partition": 0})).await.unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 5, "{records:?}");
    for (i, record) in records.iter().enumerate() {
        let n = i + 1;
        assert_eq!(record["offset"], i as u64);
        assert_eq!(record["key"], hex(format!("user-{}", n % 2).as_bytes()));
        assert_eq!(record["value"], hex(format!("event {n}").as_bytes()));
        assert_eq!(record["headers"][0]["name"], "source");
        assert_eq!(record["headers"][0]["value"], hex(b"kcat"));
    }

    // Consumed back from the beginning: offsets, keys, values and the header.
    let consumed = kcat(
        &[
            "-C",
            "-b",
            &broker,
            "-t",
            "events",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o %k %s %h\n",
        ],
        "",
    )
    .expect("kcat consumes");
    let expected: String =
        (1..=5).map(|n| format!("{} user-{} event {n} source=kcat\n", n - 1, n % 2)).collect();
    assert_eq!(consumed, expected);

    // ListOffsets: kcat's query for the end of the partition.
    let end = kcat(&["-Q", "-b", &broker, "-t", "events:0:-1"], "").expect("kcat queries offsets");
    assert!(end.contains("offset 5"), "{end}");

    // Frames the broker cannot read close the connection and write nothing.
    for frame in [
        0x7fff_ffffu32.to_be_bytes().to_vec(), // a length past the cap: closed before allocating
        [&8u32.to_be_bytes()[..], &[0x7f, 0x7f, 0, 0, 0, 0, 0, 1]].concat(), // an unknown API key
        [&6u32.to_be_bytes()[..], &[0, 0, 0, 9, 0xff, 0xff]].concat(), // a truncated Produce
    ] {
        let mut stream = std::net::TcpStream::connect(&broker).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        stream.write_all(&frame).unwrap();
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        assert!(read.is_ok() && answer.is_empty(), "closed without an answer: {read:?} {answer:?}");
    }
    let records = call(rpc, "log_read", json!({"log": "events", "partition": 0})).await.unwrap();
    assert_eq!(records.as_array().unwrap().len(), 5, "nothing written by refused frames");
}
