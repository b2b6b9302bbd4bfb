//! The node's page in a real browser: a 3-node testnet serves it on its RPC port, Debian's
//! Chromium (headless, driven by playwright-core: node/ui/test/browser.mjs) loads it, sees the
//! finalized height advance over the node's WebSocket, and verifies a record end to end with the
//! TypeScript light client, trusting only the genesis file it is given; the same page behind a
//! lying proxy (the light-client tests' proxy) says which step failed and why. Skips, saying why,
//! without Chromium, Node.js or the page's npm packages (`make test` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::support::{ProxyHook, call, eventually, hex, proxy, raw_get, start};

/// The page's npm package (node/ui).
fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")
}

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("no /usr/bin/chromium (make deps installs Debian's chromium package)".into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("no Node.js".into());
    }
    if !ui_dir().join("node_modules/playwright-core").exists() {
        return Some("node/ui's npm packages are not installed (make npm-deps)".into());
    }
    None
}

/// Serves the record's JSON with another value (its proven bytes left alone): what a page that
/// printed the served fields would have shown as verified.
struct ForgedValue;

impl ProxyHook for ForgedValue {
    fn answer(&self, method: &str, answer: &mut Value) {
        if method == "log_getProof" {
            answer["record"]["value"] = json!(hex(b"forged value"));
        }
    }
}

/// Serves headers with one byte changed (their block ids no longer what the validators signed).
struct ForgedHeader;

impl ProxyHook for ForgedHeader {
    fn answer(&self, method: &str, answer: &mut Value) {
        if method != "chain_getHeader" {
            return;
        }
        let mut encoded = answer["encoded"].as_str().unwrap_or_default().to_owned();
        // A byte of the state root (after the chain id, height, time and parent): past the
        // middle of the encoding.
        let at = encoded.len() / 2 + 1;
        if at + 1 < encoded.len() {
            let flipped = if &encoded[at..at + 1] == "0" { "1" } else { "0" };
            encoded.replace_range(at..at + 1, flipped);
            answer["encoded"] = json!(encoded);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_verifies_a_record_in_chromium_and_names_the_lie_of_a_lying_node() {
    if let Some(reason) = missing() {
        eprintln!("skipped: the browser test ({reason})");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = start(dir.path()).await;
    let node = net.rpc[0].clone();

    // The page and its files, with a policy that lets it load nothing from elsewhere; a POST to
    // `/` is still JSON-RPC.
    let page = raw_get(&node, "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<script type=\"module\" src=\"/ui/app.js\"></script>"), "{page}");
    assert!(page.to_lowercase().contains("content-security-policy: default-src 'none'; script-src 'self'"));
    assert_eq!(
        raw_get(&node, "/ui").split_once("\r\n\r\n").unwrap().1,
        page.split_once("\r\n\r\n").unwrap().1
    );
    let script = raw_get(&node, "/ui/app.js");
    let bundle = std::fs::read_to_string(ui_dir().join("dist/app.js")).unwrap();
    assert!(script.contains("text/javascript") && script.ends_with(&bundle));
    assert!(raw_get(&node, "/ui/style.css").contains("text/css"));
    assert!(raw_get(&node, "/ui/other").starts_with("HTTP/1.1 405"), "{}", raw_get(&node, "/ui/other"));

    call(&node, "log_create", json!({"name": "audit", "partitions": 1, "replicationFactor": 3}))
        .await
        .unwrap();
    let records =
        json!([{ "key": hex(b"sensor-7"), "value": hex(b"21.5 C") }, { "value": hex(b"and final") }]);
    eventually("an acknowledged append", async || {
        call(&node, "log_append", json!({"log": "audit", "partition": 0, "records": records})).await.ok()
    })
    .await;
    let cluster =
        call(&node, "system_status", json!({})).await.unwrap()["cluster"].as_str().unwrap().to_owned();
    let proof = json!({"log": "audit", "partition": 0, "offset": 0, "cluster": cluster, "finality": true});
    eventually("the record anchored and final", async || {
        call(&node, "log_getProof", proof.clone()).await.ok()
    })
    .await;

    let forged_value = proxy(node.clone(), Arc::new(ForgedValue)).await;
    let forged_header = proxy(node.clone(), Arc::new(ForgedHeader)).await;
    let genesis = dir.path().join("genesis.json");
    let mut command = Command::new("node");
    command
        .current_dir(ui_dir())
        .arg("test/browser.mjs")
        .args(["--page", &format!("{node}/")])
        .args(["--genesis", genesis.to_str().unwrap()])
        .args(["--log", "audit", "--partition", "0", "--offset", "0"])
        .args(["--liar", &format!("{forged_value}/"), "--liar", &format!("{forged_header}/")]);
    // `PYRALOG_SCREENSHOT=docs/page.png` keeps a picture of the verified record (the README's).
    if let Ok(path) = std::env::var("PYRALOG_SCREENSHOT") {
        command.args(["--screenshot", &path]);
    }
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(said.lines().last().unwrap()).unwrap();
    eprintln!("browser: {report}");

    let honest = &report["honest"];
    assert_eq!(honest["outcome"], "verified", "{report}");
    let verified = format!("Verified: {cluster} audit/0 offset 0, final at height");
    assert!(honest["title"].as_str().unwrap().starts_with(&verified), "{report}");
    assert!(honest["detail"].as_str().unwrap().contains("value \"21.5 C\""), "{report}");
    assert!(honest["height"].as_u64().unwrap() > honest["firstHeight"].as_u64().unwrap(), "{report}");
    // A lie in the served record: refused by the record step, the forged value never shown.
    let liars = report["liars"].as_array().unwrap();
    assert_eq!(liars[0]["title"], "Failed at step “record”", "{report}");
    assert!(!liars[0]["reason"].as_str().unwrap().contains("forged"), "{report}");
    // A forged header: its block id is not what the validators signed.
    assert_eq!(liars[1]["title"], "Failed at step “commit”", "{report}");
    assert!(
        liars[1]["reason"].as_str().unwrap().contains("not a precommit for the claimed block"),
        "{report}"
    );
    // Behind the proxy (no WebSocket upgrades) the page polls.
    assert_eq!(liars[0]["mode"], "polling", "{report}");
}
