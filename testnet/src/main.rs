//! `pyralog-loadgen`: closed-loop write load against a Pyralog cluster (JSON-RPC over WebSocket),
//! a Kafka-protocol cluster (Pyralog's Kafka listener or Apache Kafka, through librdkafka) or an
//! etcd cluster (gRPC), with the same keys, values, client counts and timing for all, so
//! `testnet/bench-etcd.sh` can put them side by side. Given the nodes' process ids, it also
//! reports the CPU time the nodes spent per acknowledged write.

mod cpu;
mod load;
mod report;
mod target;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Write load for Pyralog and etcd, measured the same way.
#[derive(Debug, Parser)]
#[command(name = "pyralog-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the load at each client count and print one JSON line per count.
    Run(RunArgs),
    /// Put a Pyralog result file and an etcd result file side by side as a Markdown table.
    Report(report::ReportArgs),
}

/// What to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum System {
    /// A Pyralog cluster: `log_append` of one keyed record per call.
    Pyralog,
    /// An etcd cluster: one `Put` per call.
    Etcd,
    /// A Kafka-protocol cluster (Pyralog's listener or Apache Kafka): one keyed record per
    /// produce, acks=all, linger 0, through librdkafka.
    Kafka,
}

/// `pyralog-loadgen run`.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The system under load.
    #[arg(long)]
    system: System,
    /// Comma-separated endpoints: Pyralog RPC URLs (http:// or ws://) or etcd client URLs.
    /// Client i uses endpoint i modulo their number.
    #[arg(long, value_delimiter = ',', required = true)]
    endpoints: Vec<String>,
    /// Comma-separated concurrent client counts, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    clients: Vec<usize>,
    /// Seconds of load before measuring (dropped).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Key size in bytes.
    #[arg(long, default_value_t = 8)]
    key_bytes: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
    /// Pyralog and Kafka: the log (topic) written to (created if missing).
    #[arg(long, default_value = "loadgen")]
    log: String,
    /// Pyralog and Kafka: partitions of the log when it is created.
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    /// Pyralog and Kafka: replication factor of the log when it is created.
    #[arg(long, default_value_t = 3)]
    replication_factor: u32,
    /// Pyralog: each client writes to one partition (client i to partition i mod partitions)
    /// at that partition's leader, learnt from the nodes' `system_status`, as Kafka clients do;
    /// without it a client writes keyed records to its endpoint, which forwards them.
    #[arg(long)]
    direct: bool,
    /// A name for the results (the report's row label); the system's name by default.
    #[arg(long)]
    label: Option<String>,
    /// Comma-separated process ids of the nodes: their CPU time per acknowledged write is
    /// reported (from /proc).
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Also write the results as a JSON array to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Report(args) => report::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.key_bytes > 0 && args.value_bytes > 0, "keys and values need at least one byte");
    anyhow::ensure!(args.duration > 0.0 && args.warmup >= 0.0, "bad timing");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let target = target::Target::prepare(&args).await?;
        let mut results = Vec::new();
        let mut first_client = 0;
        for &clients in &args.clients {
            let plan = load::Plan {
                clients,
                first_client,
                warmup: Duration::from_secs_f64(args.warmup),
                duration: Duration::from_secs_f64(args.duration),
                key_bytes: args.key_bytes,
                value_bytes: args.value_bytes,
                label: args.label.clone().unwrap_or_else(|| format!("{:?}", args.system).to_lowercase()),
                pids: args.pids.clone(),
            };
            let result = load::run(&target, &plan).await?;
            println!("{}", serde_json::to_string(&result)?);
            results.push(result);
            first_client += clients;
        }
        if let Some(out) = &args.out {
            std::fs::write(out, serde_json::to_vec_pretty(&results)?)?;
        }
        anyhow::Ok(())
    })
}
