//! The closed loop: `clients` tasks, each with its own connection, each writing one record at a
//! time as fast as acknowledgements come back. Writes completed during the warm-up are dropped;
//! the rest, up to the end of the measured window, are counted and their latencies kept.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::System;
use crate::target::Target;

/// One measurement.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Concurrent clients.
    pub(crate) clients: usize,
    /// The first client's number; runs in one process number their clients apart, so every
    /// write of every run has a fresh key.
    pub(crate) first_client: usize,
    /// Load before measuring.
    pub(crate) warmup: Duration,
    /// Measured window.
    pub(crate) duration: Duration,
    /// Key size.
    pub(crate) key_bytes: usize,
    /// Value size.
    pub(crate) value_bytes: usize,
    /// The results' name.
    pub(crate) label: String,
    /// The nodes' process ids (their CPU time is measured over the window).
    pub(crate) pids: Vec<u32>,
}

/// What one measurement found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Measured {
    /// The system under load.
    pub(crate) system: System,
    /// The results' name (the system's by default).
    #[serde(default)]
    pub(crate) label: String,
    /// Concurrent clients.
    pub(crate) clients: usize,
    /// Acknowledged writes in the measured window.
    pub(crate) ops: u64,
    /// Failed writes in the measured window.
    pub(crate) errors: u64,
    /// The window, seconds.
    pub(crate) seconds: f64,
    /// Acknowledged writes per second.
    pub(crate) throughput: f64,
    /// Median latency, milliseconds.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub(crate) p99_ms: f64,
    /// CPU time the nodes spent per acknowledged write, microseconds (when their pids were
    /// given).
    #[serde(default)]
    pub(crate) node_cpu_us_per_write: Option<f64>,
}

/// Runs `plan` against `target`.
pub(crate) async fn run(target: &Target, plan: &Plan) -> anyhow::Result<Measured> {
    // Connect everyone first, so connection setup is not measured.
    let mut connections = Vec::with_capacity(plan.clients);
    for i in 0..plan.clients {
        connections.push(target.connect(i).await?);
    }
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.duration;
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(i, mut connection)| {
            let plan = plan.clone();
            tokio::spawn(async move {
                let i = plan.first_client + i;
                let value = value_for(i, plan.value_bytes);
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut first_error = None;
                for n in 0u64.. {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let outcome = connection.put(&key_for(i, n, plan.key_bytes), &value).await;
                    let done = Instant::now();
                    if done < measure_from || done > end {
                        continue;
                    }
                    match outcome {
                        Ok(()) => latencies.push(done - sent),
                        Err(err) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| format!("{err:#}"));
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    // The nodes' CPU time over the measured window.
    let pids = plan.pids.clone();
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        let before = crate::cpu::seconds(&pids)?;
        tokio::time::sleep_until(end.into()).await;
        Some(crate::cpu::seconds(&pids)? - before)
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mine, failed, first_error) = task.await?;
        latencies.extend(mine);
        errors += failed;
        if let Some(err) = first_error {
            eprintln!("loadgen: a write failed: {err}");
        }
    }
    latencies.sort_unstable();
    let seconds = plan.duration.as_secs_f64();
    let node_cpu = if plan.pids.is_empty() { None } else { cpu.await? };
    Ok(Measured {
        system: target.system,
        label: plan.label.clone(),
        clients: plan.clients,
        ops: latencies.len() as u64,
        errors,
        seconds,
        throughput: latencies.len() as f64 / seconds,
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        node_cpu_us_per_write: node_cpu
            .filter(|_| !latencies.is_empty())
            .map(|cpu| cpu * 1e6 / latencies.len() as f64),
    })
}

/// The `q` quantile of sorted `latencies` (nearest rank), in milliseconds; 0 when empty.
pub(crate) fn percentile_ms(latencies: &[Duration], q: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
    latencies[rank - 1].as_secs_f64() * 1e3
}

/// Key `n` of client `i`: `key_bytes` bytes, spread evenly (a mixed counter) so keyed writes
/// land on every partition.
fn key_for(i: usize, n: u64, key_bytes: usize) -> Vec<u8> {
    let mixed = splitmix64(((i as u64) << 40) ^ n).to_be_bytes();
    (0..key_bytes).map(|b| mixed[b % 8]).collect()
}

/// Client `i`'s value: `value_bytes` bytes of a fixed pseudo-random pattern (not all zeros, so
/// compression does not flatter either system).
fn value_for(i: usize, value_bytes: usize) -> Vec<u8> {
    let mut state = i as u64;
    (0..value_bytes)
        .map(|_| {
            state = splitmix64(state);
            state as u8
        })
        .collect()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile_ms(&sorted, 0.50), 50.0);
        assert_eq!(percentile_ms(&sorted, 0.99), 99.0);
        assert_eq!(percentile_ms(&[ms(7)], 0.99), 7.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn keys_have_the_asked_size_and_differ() {
        let keys: std::collections::HashSet<Vec<u8>> = (0..1000).map(|n| key_for(3, n, 8)).collect();
        assert_eq!(keys.len(), 1000);
        assert!(keys.iter().all(|k| k.len() == 8));
        assert_ne!(key_for(1, 0, 8), key_for(2, 0, 8));
        assert_eq!(value_for(5, 256).len(), 256);
    }
}
