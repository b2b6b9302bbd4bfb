//! `pyralog-loadgen report`: result files, one table.

use std::path::PathBuf;

use anyhow::Context;

use crate::load::Measured;

/// `pyralog-loadgen report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// Result files of `run --out FILE`, in the order their rows are shown.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// The label every row's throughput is compared with (the same client count's row).
    #[arg(long, default_value = "etcd")]
    baseline: String,
    /// Also write the table to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Prints (and writes) the table.
pub(crate) fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let mut all = Vec::new();
    for path in &args.results {
        all.extend(read(path)?);
    }
    let table = table(&all, &args.baseline);
    print!("{table}");
    if let Some(out) = &args.out {
        std::fs::write(out, &table).with_context(|| format!("cannot write {}", out.display()))?;
    }
    Ok(())
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<Measured>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut results: Vec<Measured> =
        serde_json::from_slice(&bytes).with_context(|| format!("not a result file: {}", path.display()))?;
    for result in &mut results {
        if result.label.is_empty() {
            result.label = format!("{:?}", result.system).to_lowercase();
        }
    }
    Ok(results)
}

/// A Markdown table: for each client count (ascending), one row per result in the order given,
/// with its throughput over the baseline's at that client count.
pub(crate) fn table(results: &[Measured], baseline: &str) -> String {
    let mut text = format!(
        "| clients | system | writes/s | p50 ms | p99 ms | node CPU µs/write | vs {baseline} |\n\
         |---:|:---|---:|---:|---:|---:|---:|\n"
    );
    let mut counts: Vec<usize> = results.iter().map(|r| r.clients).collect();
    counts.sort_unstable();
    counts.dedup();
    for clients in counts {
        let base = results.iter().find(|r| r.clients == clients && r.label == baseline);
        for result in results.iter().filter(|r| r.clients == clients) {
            let ratio = match base {
                Some(base) if base.throughput > 0.0 => format!("{:.2}x", result.throughput / base.throughput),
                _ => "-".to_owned(),
            };
            let cpu = result.node_cpu_us_per_write.map_or_else(|| "-".to_owned(), |us| format!("{us:.0}"));
            text.push_str(&format!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} |\n",
                clients, result.label, result.throughput, result.p50_ms, result.p99_ms, cpu, ratio
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::System;

    fn measured(system: System, label: &str, clients: usize, throughput: f64) -> Measured {
        Measured {
            system,
            label: label.to_owned(),
            clients,
            ops: 1,
            errors: 0,
            seconds: 1.0,
            throughput,
            p50_ms: 1.5,
            p99_ms: 9.25,
            node_cpu_us_per_write: Some(120.4),
        }
    }

    #[test]
    fn rows_are_grouped_by_client_count_and_compared_with_the_baseline() {
        let results = [
            measured(System::Pyralog, "pyralog", 16, 5000.0),
            measured(System::Kafka, "pyralog-kafka", 1, 300.0),
            measured(System::Etcd, "etcd", 16, 2000.0),
        ];
        let table = table(&results, "etcd");
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| 1 | pyralog-kafka | 300 | 1.50 | 9.25 | 120 | - |",
                "| 16 | pyralog | 5000 | 1.50 | 9.25 | 120 | 2.50x |",
                "| 16 | etcd | 2000 | 1.50 | 9.25 | 120 | 1.00x |",
            ]
        );
    }
}
