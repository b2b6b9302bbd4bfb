//! `pyralog-chaos`: the chaos harness's command line. `check DIR` re-checks a saved run (its
//! `history.jsonl` and `final.json`), prints the report as JSON and exits 1 on any violation.
//! (Running schedules against real processes comes next; see issue 25.)

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pyralog_testnet::chaos::{FinalState, checker, read_history};

/// The chaos harness.
#[derive(Debug, Parser)]
#[command(name = "pyralog-chaos", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Re-checks a saved run: DIR/history.jsonl and DIR/final.json.
    Check {
        /// The run's directory.
        dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
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
