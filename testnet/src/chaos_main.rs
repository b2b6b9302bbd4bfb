//! `pyralog-chaos`: the chaos harness's command line. `run` runs seeded fault schedules against
//! three real nodes in network namespaces (root only; otherwise it says why and skips) and
//! checks each; `chain` does the same to the 2 x 3 validator chain; `check DIR` re-checks a
//! saved run (its `history.jsonl` and `final.json`).
//! Both print their figures and exit 1 on any violation.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use pyralog_testnet::chaos::nemesis::FaultKind;
use pyralog_testnet::chaos::run::{RunConfig, run};
use pyralog_testnet::chaos::stats::quantile;
use pyralog_testnet::chaos::summary::summarize;
use pyralog_testnet::chaos::{FinalState, chain, checker, net, read_history};

/// The chaos harness.
#[derive(Debug, Parser)]
#[command(name = "pyralog-chaos", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How the nodes link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    /// Plain TCP.
    Tcp,
    /// WireGuard + Rosenpass tunnels.
    Wireguard,
    /// Even seeds over WireGuard, odd ones over TCP.
    Alternate,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs schedules SEED, SEED+1, ... (COUNT of them) and checks each.
    Run {
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many seeds.
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// How long each workload runs (at least 20 s).
        #[arg(long, default_value_t = 45, value_parser = clap::value_parser!(u64).range(20..))]
        seconds: u64,
        /// The fault kinds to draw from (comma-separated; default: all).
        #[arg(long, value_delimiter = ',')]
        nemeses: Vec<FaultKind>,
        /// Client processes (odd ones are idempotent producers).
        #[arg(long, default_value_t = 6)]
        clients: u32,
        /// The nodes' links.
        #[arg(long, value_enum, default_value_t = Transport::Alternate)]
        transport: Transport,
        /// Where each run's directory (`seed-N`) goes.
        #[arg(long, default_value = "testnet/out/chaos")]
        out: PathBuf,
        /// The `pyralog` binary (default: $PYRALOG_BIN).
        #[arg(long, env = "PYRALOG_BIN")]
        bin: PathBuf,
    },
    /// Runs the 2 x 3 validator chain through schedules SEED, SEED+1, ... (COUNT of them):
    /// no conflicting finalized blocks, no finalized height going down, finality resuming.
    Chain {
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many seeds.
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// How long the faults go on (at least 20 s).
        #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(20..))]
        seconds: u64,
        /// The fault kinds to draw from (default: partitions, pauses, kills and loss).
        #[arg(long, value_delimiter = ',')]
        nemeses: Vec<FaultKind>,
        /// Where each run's directory (`chain-seed-N`) goes.
        #[arg(long, default_value = "testnet/out/chaos")]
        out: PathBuf,
        /// The `pyralog` binary (default: $PYRALOG_BIN).
        #[arg(long, env = "PYRALOG_BIN")]
        bin: PathBuf,
    },
    /// Re-checks a saved run: DIR/history.jsonl and DIR/final.json.
    Check {
        /// The run's directory.
        dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run { seed, count, seconds, nemeses, clients, transport, out, bin } => {
            if let Some(reason) = net::unavailable() {
                println!("pyralog-chaos: skipped: {reason}");
                return Ok(());
            }
            let kinds = if nemeses.is_empty() { FaultKind::ALL.to_vec() } else { nemeses };
            let mut reports = Vec::new();
            for seed in seed..seed + count {
                let wireguard = match transport {
                    Transport::Tcp => false,
                    Transport::Wireguard => true,
                    Transport::Alternate => seed % 2 == 0,
                };
                let config = RunConfig {
                    bin: bin.clone(),
                    out: out.join(format!("seed-{seed}")),
                    seed,
                    seconds,
                    kinds: kinds.clone(),
                    clients,
                    wireguard,
                };
                let report = run(&config)?;
                println!(
                    "seed {seed} ({}): {} faults, ops ok {} failed {} unknown {}, violations {}, crashes {}{}",
                    report.transport,
                    report.schedule.len(),
                    report.check.outcomes.ok,
                    report.check.outcomes.fail,
                    report.check.outcomes.unknown,
                    serde_json::to_string(&report.check.violations)?,
                    report.crashes,
                    if report.passed() { "" } else { "  FAILED: history kept in the run's directory" },
                );
                if report.passed() {
                    // The nodes' databases are only worth their space when something failed; their
                    // logs stay.
                    for i in 0..3 {
                        let _ = std::fs::remove_dir_all(config.out.join("nodes").join(format!("node{i}")));
                    }
                }
                reports.push(report);
            }
            let summary = summarize(&reports);
            std::fs::write(out.join("summary.json"), serde_json::to_vec_pretty(&summary)?)?;
            println!("{}", summary.table());
            if !summary.failed_seeds.is_empty() {
                anyhow::bail!("seeds {:?} found violations or crashes", summary.failed_seeds);
            }
            Ok(())
        }
        Command::Chain { seed, count, seconds, nemeses, out, bin } => {
            if let Some(reason) = net::unavailable() {
                println!("pyralog-chaos: skipped: {reason}");
                return Ok(());
            }
            let kinds = if nemeses.is_empty() { chain::CHAIN_FAULTS.to_vec() } else { nemeses };
            let mut failed = Vec::new();
            let mut resumes = Vec::new();
            for seed in seed..seed + count {
                let config = chain::ChainConfig {
                    bin: bin.clone(),
                    out: out.join(format!("chain-seed-{seed}")),
                    seed,
                    seconds,
                    kinds: kinds.clone(),
                };
                let report = chain::run(&config)?;
                let faults: Vec<&str> = report.faults.iter().map(|f| f.kind.name()).collect();
                println!(
                    "chain seed {seed}: faults {}, finalized height {}, resumed after {} ms, violations {}, crashes {}{}",
                    faults.join(" "),
                    report.final_height,
                    report.resume_ms.map_or("-".to_owned(), |ms| ms.to_string()),
                    serde_json::to_string(&report.violations)?,
                    report.crashes,
                    if report.passed() { "" } else { "  FAILED" },
                );
                resumes.extend(report.resume_ms);
                if !report.passed() {
                    failed.push(seed);
                }
            }
            println!(
                "chain schedules run {count}; finality resumed after heal p50 {} ms, p99 {} ms; failed seeds {failed:?}",
                quantile(&resumes, 0.5),
                quantile(&resumes, 0.99)
            );
            if !failed.is_empty() {
                anyhow::bail!("chain seeds {failed:?} found violations or crashes");
            }
            Ok(())
        }
        Command::Check { dir } => {
            let history = read_history(&dir.join("history.jsonl"))?;
            let path = dir.join("final.json");
            let text =
                std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let final_state: FinalState =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let report = checker::check(&history, &final_state);
            println!("{}", serde_json::to_string(&report)?);
            if !report.violations.none() {
                anyhow::bail!("violations found");
            }
            Ok(())
        }
    }
}
