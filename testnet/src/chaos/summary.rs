//! Many runs added up: the figures the README's reliability section reports.

use std::collections::BTreeMap;

use serde::Serialize;

use super::checker::{Outcomes, Violations};
use super::run::RunReport;
use super::stats::{Availability, quantile};

/// The sum of several runs.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Schedules run.
    pub runs: u64,
    /// Of them, over WireGuard tunnels.
    pub wireguard_runs: u64,
    /// Runs with a violation or a crash (their seeds).
    pub failed_seeds: Vec<u64>,
    /// Faults applied, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Operations by outcome.
    pub outcomes: Outcomes,
    /// Every violation counter, summed.
    pub violations: Violations,
    /// Nodes that exited by themselves.
    pub crashes: u64,
    /// Runs whose replicas did not converge within a minute of healing.
    pub not_converged: u64,
    /// Appends before, during and after faults.
    pub availability: [Availability; 3],
    /// The longest time without an acknowledged append in any run, ms.
    pub longest_unavailable_ms: u64,
    /// Failover time, ms: p50 and p99.
    pub failover_ms: [u64; 2],
    /// Time to the first acknowledged append after a heal, ms: p50 and p99.
    pub recovery_ms: [u64; 2],
}

/// Adds up `reports`.
pub fn summarize(reports: &[RunReport]) -> Summary {
    let mut summary = Summary::default();
    let (mut failover, mut recovery) = (Vec::new(), Vec::new());
    for report in reports {
        summary.runs += 1;
        summary.wireguard_runs += u64::from(report.transport == "wireguard");
        if !report.passed() {
            summary.failed_seeds.push(report.seed);
        }
        for (kind, count) in &report.stats.faults {
            *summary.faults.entry(kind.clone()).or_default() += count;
        }
        let (o, r) = (&mut summary.outcomes, &report.check.outcomes);
        (o.ok, o.fail, o.unknown, o.acknowledged) =
            (o.ok + r.ok, o.fail + r.fail, o.unknown + r.unknown, o.acknowledged + r.acknowledged);
        add_violations(&mut summary.violations, &report.check.violations);
        summary.crashes += report.crashes;
        summary.not_converged += u64::from(!report.converged);
        let phases = [report.stats.before, report.stats.during, report.stats.after];
        for (sum, phase) in summary.availability.iter_mut().zip(phases) {
            sum.invoked += phase.invoked;
            sum.ok += phase.ok;
        }
        summary.longest_unavailable_ms =
            summary.longest_unavailable_ms.max(report.stats.longest_unavailable_ms);
        failover.extend(&report.stats.failover_ms);
        recovery.extend(&report.stats.recovery_ms);
    }
    summary.failover_ms = [quantile(&failover, 0.5), quantile(&failover, 0.99)];
    summary.recovery_ms = [quantile(&recovery, 0.5), quantile(&recovery, 0.99)];
    summary
}

fn add_violations(sum: &mut Violations, run: &Violations) {
    sum.lost += run.lost;
    sum.wrong_offset += run.wrong_offset;
    sum.duplicates += run.duplicates;
    sum.phantom += run.phantom;
    sum.failed_appeared += run.failed_appeared;
    sum.divergent_replicas += run.divergent_replicas;
    sum.certified_mismatch += run.certified_mismatch;
    sum.order_violations += run.order_violations;
    sum.stale_reads += run.stale_reads;
    sum.hwm_regressions += run.hwm_regressions;
    sum.stream_gaps += run.stream_gaps;
    sum.no_recovery += run.no_recovery;
}

impl Summary {
    /// A human-readable table of the figures.
    pub fn table(&self) -> String {
        let pct = |a: &Availability| format!("{:.1}% of {}", 100.0 * a.ratio(), a.invoked);
        let faults: Vec<String> = self.faults.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        let violations = serde_json::to_value(&self.violations).unwrap_or_default();
        let counters: Vec<String> = violations
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        [
            format!("schedules run        {} ({} over WireGuard)", self.runs, self.wireguard_runs),
            format!("faults               {}", faults.join(", ")),
            format!(
                "operations           ok {}, failed {}, unknown {}; acknowledged appends {}",
                self.outcomes.ok, self.outcomes.fail, self.outcomes.unknown, self.outcomes.acknowledged
            ),
            format!("violations           {}", counters.join(", ")),
            format!("crashes              {}; runs not converged {}", self.crashes, self.not_converged),
            format!(
                "appends acknowledged before faults {}, during {}, after {}",
                pct(&self.availability[0]),
                pct(&self.availability[1]),
                pct(&self.availability[2])
            ),
            format!("longest unavailable  {} ms", self.longest_unavailable_ms),
            format!("failover             p50 {} ms, p99 {} ms", self.failover_ms[0], self.failover_ms[1]),
            format!("recovery after heal  p50 {} ms, p99 {} ms", self.recovery_ms[0], self.recovery_ms[1]),
            format!("failed seeds         {:?}", self.failed_seeds),
        ]
        .join("\n")
    }
}
