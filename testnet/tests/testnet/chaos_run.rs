//! The chaos harness against real nodes: two fixed seeds (one over plain TCP, one over the
//! WireGuard tunnels), every fault kind in their draw, every violation counter at 0. Root only
//! (network namespaces, nftables): otherwise the test says why and passes. `make chaos` runs
//! the long version (24 seeds).

use std::process::Command;

use pyralog_testnet::chaos::net;

use crate::support::pyralog_bin;

#[test]
fn two_fixed_seeds_run_clean() {
    if let Some(reason) = net::unavailable() {
        println!("skipped: {reason}");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_pyralog-chaos"))
        .args(["run", "--seed", "1", "--count", "2", "--seconds", "30", "--out"])
        .arg(out.path())
        .arg("--bin")
        .arg(pyralog_bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["runs"], 2, "{stdout}");
    assert_eq!(summary["wireguardRuns"], 1, "{stdout}");
    for (name, count) in summary["violations"].as_object().unwrap() {
        assert_eq!(count, 0, "{name}: {stdout}");
    }
    assert!(summary["outcomes"]["acknowledged"].as_u64().unwrap() > 1_000, "{stdout}");
    let faults: u64 = summary["faults"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert!(faults >= 8, "4 to 6 faults per schedule: {stdout}");
    // Each run's directory keeps what `pyralog-chaos check` re-checks.
    for seed in ["seed-1", "seed-2"] {
        let check = Command::new(env!("CARGO_BIN_EXE_pyralog-chaos"))
            .arg("check")
            .arg(out.path().join(seed))
            .output()
            .unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        assert!(out.path().join(seed).join("nemesis.jsonl").exists());
    }
}
