//! The `[rpc]` limits of a real `pyralog` process: request and response size, connections,
//! subscriptions per connection, and the per-IP rate limit. Each refused request gets its
//! documented error and changes nothing.

use jsonrpsee::core::client::{Error as ClientError, Subscription, SubscriptionClientT};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde_json::{Value, json};

use crate::support::{call, code, eventually, hex, params, raw_post, raw_post_from, start_with};

const MAX_REQUEST: usize = 64 << 10;
const MAX_RESPONSE: usize = 64 << 10;
const MAX_CONNECTIONS: usize = 6;
const MAX_SUBSCRIPTIONS: usize = 2;
const RATE: usize = 40;

/// Sets `key = value` in the `[rpc]` table of a generated config.
fn set(config: &str, key: &str, value: usize) -> String {
    let prefix = format!("{key} = ");
    assert!(config.lines().any(|l| l.starts_with(&prefix)), "{key} missing from\n{config}");
    config
        .lines()
        .map(|l| if l.starts_with(&prefix) { format!("{prefix}{value}") } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Records in partition 0 of `log` (from the status: a full read may exceed the response limit).
async fn records(url: &str, log: &str) -> u64 {
    let status = call(url, "system_status", json!({})).await.unwrap();
    let partition = status["partitions"].as_array().unwrap().iter().find(|p| p["log"] == log).unwrap();
    partition["size"].as_u64().unwrap()
}

async fn ws(url: &str) -> Result<WsClient, ClientError> {
    WsClientBuilder::default().build(url.replace("http://", "ws://")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_limits_are_enforced_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 1, |config| {
        let config = set(config, "max_request_bytes", MAX_REQUEST);
        let config = set(&config, "max_response_bytes", MAX_RESPONSE);
        let config = set(&config, "max_connections", MAX_CONNECTIONS);
        let config = set(&config, "max_subscriptions_per_connection", MAX_SUBSCRIPTIONS);
        set(&config, "rate_limit_per_ip", RATE)
    })
    .await;
    let url = net.rpc[0].clone();
    call(&url, "log_create", json!({"name": "limits", "partitions": 1, "replicationFactor": 1}))
        .await
        .unwrap();

    // Request size: an oversized body is refused with HTTP 413 and -32007, and nothing lands.
    let big = hex(&vec![7u8; MAX_REQUEST]);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "log_append",
        "params": {"log": "limits", "partition": 0, "records": [{"value": big}]}});
    let answer = raw_post(&url, &body.to_string());
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("-32007"), "{answer}");
    assert_eq!(records(&url, "limits").await, 0);

    // Response size: a read whose answer would exceed the limit gets -32008; smaller reads work.
    for _ in 0..8 {
        let batch: Vec<Value> = (0..4).map(|_| json!({"value": hex(&[1u8; 2048])})).collect();
        call(&url, "log_append", json!({"log": "limits", "partition": 0, "records": batch})).await.unwrap();
    }
    assert_eq!(code(call(&url, "log_read", json!({"log": "limits", "partition": 0})).await), -32008);
    let few = call(&url, "log_read", json!({"log": "limits", "partition": 0, "max": 2})).await.unwrap();
    assert_eq!(few.as_array().unwrap().len(), 2);

    // Subscriptions per connection: the one over the limit gets -32006; the others keep working.
    let client = ws(&url).await.unwrap();
    let mut subscriptions: Vec<Subscription<Value>> = Vec::new();
    for _ in 0..MAX_SUBSCRIPTIONS {
        let sub = client
            .subscribe(
                "log_subscribeRecords",
                params(json!({"log": "limits", "partition": 0, "from": 0})),
                "log_unsubscribeRecords",
            )
            .await
            .unwrap();
        subscriptions.push(sub);
    }
    let over = client
        .subscribe::<Value, _>(
            "log_subscribeRecords",
            params(json!({"log": "limits", "partition": 0, "from": 0})),
            "log_unsubscribeRecords",
        )
        .await;
    assert!(matches!(&over, Err(ClientError::Call(e)) if e.code() == -32006), "{over:?}");
    for sub in &mut subscriptions {
        let first = sub.next().await.unwrap().unwrap();
        assert_eq!(first["offset"], 0);
    }

    // Connections: with the limit taken by WebSocket clients, another one is refused; once one
    // closes, a new one gets in.
    let mut clients = vec![client];
    for _ in 1..MAX_CONNECTIONS {
        clients.push(ws(&url).await.unwrap());
    }
    assert!(ws(&url).await.is_err(), "a connection over the limit was accepted");
    drop(subscriptions);
    drop(clients.pop());
    eventually("a free connection slot", async || ws(&url).await.ok()).await;
    drop(clients);

    // Rate limit per IP: a batch of appends from 127.0.0.2 is admitted up to the burst; the rest
    // get 1032 with a retry hint and store nothing. Another address is unaffected.
    let before = records(&url, "limits").await;
    let calls: Vec<Value> = (0..3 * RATE)
        .map(|i| {
            json!({"jsonrpc": "2.0", "id": i, "method": "log_append",
                "params": {"log": "limits", "partition": 0, "records": [{"value": hex(b"r")}]}})
        })
        .collect();
    let answer = raw_post_from([127, 0, 0, 2], &url, &Value::Array(calls).to_string()).await;
    let answers: Vec<Value> = serde_json::from_str(&answer[answer.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    let admitted = answers.iter().filter(|a| a["result"].is_array()).count();
    let limited: Vec<&Value> = answers.iter().filter(|a| a["error"]["code"] == 1032).collect();
    assert_eq!(admitted + limited.len(), 3 * RATE, "{answers:?}");
    assert!((RATE..RATE + 5).contains(&admitted), "admitted {admitted} of {}", 3 * RATE);
    assert!(limited[0]["error"]["data"]["retryAfterMs"].as_u64() > Some(0), "{:?}", limited[0]);
    assert!(limited[0]["error"]["message"].as_str().unwrap().contains("127.0.0.2"));
    assert_eq!(records(&url, "limits").await, before + admitted as u64);
    let version = json!({"jsonrpc": "2.0", "id": 1, "method": "system_version"}).to_string();
    let other = raw_post_from([127, 0, 0, 3], &url, &version).await;
    assert!(other.contains("\"result\""), "{other}");
    // The bucket refills: 127.0.0.2 is served again.
    eventually("127.0.0.2 served again", async || {
        raw_post_from([127, 0, 0, 2], &url, &version).await.contains("\"result\"").then_some(())
    })
    .await;
}
