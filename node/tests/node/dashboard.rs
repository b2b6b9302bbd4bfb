//! The Grafana dashboard (`docs/grafana/pyralog-node.json`) loaded against a running node: its
//! model is well formed, every metric a panel queries is one the node exports, and a real
//! Prometheus server scraping the node evaluates every panel's query (non-empty where the node
//! has samples of every metric the query names).

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support::{eventually, free_base};

/// The dashboard's file.
fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/pyralog-node.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Every query of every panel, with the panel's title.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                panel["title"].as_str().unwrap().to_owned(),
                target["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

/// The metric families a query names (`_bucket`, `_sum`, `_count` and `_total` series under their
/// family's TYPE line name as the classic text format writes it).
fn families(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("pyralog_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let name = &expr[start..end];
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        names.insert(family.to_owned());
        i = end;
    }
    names
}

/// The dashboard's model: what Grafana needs to import it.
fn check_model(dashboard: &Value) {
    assert_eq!(dashboard["uid"], "pyralog-node");
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "instance"]);
    let mut ids = HashSet::new();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() > 20, "{} panels", panels.len());
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "panel id of {title} repeated");
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24 && grid["h"].as_u64().unwrap() > 0, "{title} off the grid");
        if panel["type"] == "row" {
            continue;
        }
        assert!(["timeseries", "stat"].contains(&panel["type"].as_str().unwrap()), "{title}");
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        assert!(panel["description"].as_str().is_some_and(|d| !d.is_empty()), "{title} has no description");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        let refs: HashSet<&str> = targets.iter().map(|t| t["refId"].as_str().unwrap()).collect();
        assert_eq!(refs.len(), targets.len(), "{title}: refIds repeat");
    }
}

/// A Prometheus server scraping `metrics` every second, killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(metrics: &str) -> Option<Prometheus> {
        let dir = tempfile::tempdir().unwrap();
        let target = metrics.strip_prefix("http://").unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: pyralog\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = free_base(1);
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir })
    }

    /// The `data` of an instant query's answer; panics on an error status.
    fn query(&self, expr: &str) -> Option<Value> {
        let encoded: String = expr
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        // HTTP/1.0: the answer is the body whole, not chunked; None until the server listens.
        let mut stream = std::net::TcpStream::connect(self.url.strip_prefix("http://")?).ok()?;
        let request = format!("GET /api/v1/query?query={encoded} HTTP/1.0\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let json = answer.split_once("\r\n\r\n")?.1;
        let value: Value = serde_json::from_str(json).ok()?;
        assert_eq!(value["status"], "success", "{expr}: {value}");
        Some(value["data"].clone())
    }
}

/// The metric families `scraped` declares (a family without samples is not written at all).
fn typed(scraped: &str) -> HashSet<&str> {
    scraped.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split_whitespace().next()).collect()
}

/// Every family the dashboard queries whose name starts with `prefix` is in `scraped` (for the
/// families only some chains have: the staking ones on a Proof-of-Stake chain).
pub(crate) fn assert_exported(scraped: &str, prefix: &str) {
    let typed = typed(scraped);
    for (title, expr) in queries(&dashboard()) {
        for family in families(&expr).into_iter().filter(|f| f.starts_with(prefix)) {
            assert!(
                typed.contains(family.as_str()),
                "panel {title:?} queries {family}, which the node does not export"
            );
        }
    }
}

/// Loads the dashboard against the node whose metrics are at `metrics` (`scraped`: one of its
/// scrapes). Families named by a prefix in `elsewhere` may be absent (another kind of chain,
/// no tunnel, nothing anchored yet); every other one the dashboard queries must be exported.
pub(crate) async fn check_dashboard(metrics: &str, scraped: &str, elsewhere: &[&str]) {
    let dashboard = dashboard();
    check_model(&dashboard);
    let typed = typed(scraped);
    let sampled = |family: &str| scraped.lines().any(|l| !l.starts_with('#') && l.starts_with(family));
    let queries = queries(&dashboard);
    for (title, expr) in &queries {
        for family in families(expr) {
            assert!(
                typed.contains(family.as_str()) || elsewhere.iter().any(|p| family.starts_with(p)),
                "panel {title:?} queries {family}, which the node does not export"
            );
        }
    }
    let Some(prometheus) = Prometheus::start(metrics) else {
        eprintln!(
            "skipped: the dashboard's queries in Prometheus (no prometheus binary; make deps installs Debian's prometheus package)"
        );
        return;
    };
    // Three scrapes at least, so rates and derivatives have points to work with.
    eventually("three scrapes in Prometheus", async || {
        let data = prometheus.query("count_over_time(pyralog_chain_finalized_height[1m])")?;
        let count: u64 = data["result"][0]["value"][1].as_str()?.parse().ok()?;
        (count >= 3).then_some(())
    })
    .await;
    for (title, expr) in &queries {
        let expr = expr.replace("$__rate_interval", "1m").replace("$instance", ".*");
        let data = prometheus.query(&expr).unwrap_or_else(|| panic!("panel {title:?}: no answer to {expr}"));
        if families(&expr).iter().all(|family| sampled(family)) {
            let result = data["result"].as_array().unwrap();
            assert!(
                !result.is_empty(),
                "panel {title:?}: {expr} has no result although the node has samples"
            );
        }
    }
}
