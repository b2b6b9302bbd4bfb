//! `pyralog-loadgen report`: two result files, one table.

use std::path::PathBuf;

use anyhow::Context;

use crate::load::Measured;

/// `pyralog-loadgen report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// Results of `run --system pyralog --out FILE`.
    #[arg(long)]
    pyralog: PathBuf,
    /// Results of `run --system etcd --out FILE`.
    #[arg(long)]
    etcd: PathBuf,
    /// Also write the table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Prints (and writes) the table.
pub(crate) fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let table = table(&read(&args.pyralog)?, &read(&args.etcd)?);
    print!("{table}");
    if let Some(out) = &args.out {
        std::fs::write(out, &table).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<Measured>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("not a result file: {}", path.display()))
}

/// A Markdown table, one row per client count both files measured; the ratio is Pyralog's
/// throughput over etcd's.
pub(crate) fn table(pyralog: &[Measured], etcd: &[Measured]) -> String {
    let mut text = String::from(
        "| clients | Pyralog writes/s | p50 ms | p99 ms | etcd writes/s | p50 ms | p99 ms | Pyralog / etcd |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for ours in pyralog {
        let Some(theirs) = etcd.iter().find(|e| e.clients == ours.clients) else { continue };
        let ratio = if theirs.throughput > 0.0 { ours.throughput / theirs.throughput } else { f64::NAN };
        text.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2}x |\n",
            ours.clients,
            ours.throughput,
            ours.p50_ms,
            ours.p99_ms,
            theirs.throughput,
            theirs.p50_ms,
            theirs.p99_ms,
            ratio
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::System;

    fn measured(system: System, clients: usize, throughput: f64) -> Measured {
        Measured { system, clients, ops: 1, errors: 0, seconds: 1.0, throughput, p50_ms: 1.5, p99_ms: 9.25 }
    }

    #[test]
    fn rows_pair_equal_client_counts_and_give_the_ratio() {
        let ours = [measured(System::Pyralog, 1, 300.0), measured(System::Pyralog, 16, 5000.0)];
        let theirs = [measured(System::Etcd, 16, 2000.0), measured(System::Etcd, 64, 1.0)];
        let table = table(&ours, &theirs);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(rows, ["| 16 | 5000 | 1.50 | 9.25 | 2000 | 1.50 | 9.25 | 2.50x |"]);
    }
}
