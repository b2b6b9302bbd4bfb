//! The nemesis: a seeded schedule of faults (4 to 6 per run, 1 to 10 s each, healed before the
//! next), applied to the real processes and the network between them, and the log of what it
//! did (`nemesis.jsonl`). The schedule depends only on the seed, the kinds and the run's length;
//! which node a fault hits may depend on who leads at that moment (leaders first).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// When the first fault may start, ms into the workload.
const WARMUP_MS: u64 = 3_000;
/// How long the workload runs on after the last heal, at least.
const COOLDOWN_MS: u64 = 6_000;
/// The shortest and longest fault.
const FAULT_MS: (u64, u64) = (1_000, 10_000);

/// A kind of fault.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL one node (a partition leader), restarted at heal.
    KillOne,
    /// SIGKILL every node at once, restarted at heal.
    KillAll,
    /// SIGSTOP a partition leader, SIGCONT at heal.
    PauseLeader,
    /// One node cut off from the others, both ways (majority / minority).
    PartitionMinority,
    /// A partition leader cut off from the others, both ways.
    PartitionLeader,
    /// A partition leader hears nothing from the others, while they still hear it.
    PartitionOneWay,
    /// The nodes split in two halves (3 | 3 of six validators: no quorum anywhere).
    PartitionHalves,
    /// Two nodes cannot reach each other; the third reaches both (a bridge).
    PartitionBridge,
    /// 20 to 40 % of packets between nodes dropped at random.
    Loss,
    /// Every byte and datagram on one node's cluster links (or, one time in three, on every
    /// link) held 20 to 250 ms each way by the userspace delay relay.
    Latency,
    /// One node's wall clock 5 to 60 s ahead or behind (libfaketime), set back at heal.
    ClockSkew,
    /// A storage failpoint on a partition leader (`debug_setFailpoint`): failed fsyncs, stalled
    /// fsyncs, failed Raft log appends or failed snapshot installs. A failure is fatal to what it
    /// hits (fail-stop), so at heal the node is restarted, as an operator would.
    DiskFault,
    /// A spare node joins the cluster (`admin_addMember` on the global leader) and leaves at
    /// heal (`admin_removeMember`): the global group changes membership under the workload.
    /// Over the tunnels every member first makes it a tunnel peer (`admin_addTunnelPeer`).
    MemberChurn,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 13] = [
        FaultKind::KillOne,
        FaultKind::KillAll,
        FaultKind::PauseLeader,
        FaultKind::PartitionMinority,
        FaultKind::PartitionLeader,
        FaultKind::PartitionOneWay,
        FaultKind::PartitionHalves,
        FaultKind::PartitionBridge,
        FaultKind::Loss,
        FaultKind::Latency,
        FaultKind::ClockSkew,
        FaultKind::DiskFault,
        FaultKind::MemberChurn,
    ];

    /// Its name in schedules and reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillOne => "kill-one",
            FaultKind::KillAll => "kill-all",
            FaultKind::PauseLeader => "pause-leader",
            FaultKind::PartitionMinority => "partition-minority",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::PartitionOneWay => "partition-one-way",
            FaultKind::PartitionHalves => "partition-halves",
            FaultKind::PartitionBridge => "partition-bridge",
            FaultKind::Loss => "loss",
            FaultKind::Latency => "latency",
            FaultKind::ClockSkew => "clock-skew",
            FaultKind::DiskFault => "disk-fault",
            FaultKind::MemberChurn => "member-churn",
        }
    }
}

/// A fault the schedule plans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    /// What.
    pub kind: FaultKind,
    /// When it starts, ms into the workload.
    pub at_ms: u64,
    /// How long until it heals.
    pub duration_ms: u64,
    /// A random number for the fault's own choices (which node, how much).
    pub pick: u64,
}

/// One line of `nemesis.jsonl`: a fault as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// What.
    pub kind: FaultKind,
    /// When it started, ms since the run started (the history's clock).
    pub start_ms: u64,
    /// When it healed.
    pub end_ms: u64,
    /// The nodes it hit.
    pub nodes: Vec<usize>,
    /// The partition whose leader it went for (leader-taking faults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
    /// The rest: rules, the loss rate, the clock offset.
    pub detail: String,
}

/// The faults of a `seconds`-long workload under `seed`, drawn from `kinds`: 4 to 6, each in its
/// own slot of the time between the warmup and the cooldown, 1 to 10 s long (shorter when the
/// slots are), healed at least a second before the next starts.
pub fn schedule(seed: u64, kinds: &[FaultKind], seconds: u64) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if kinds.is_empty() {
        return Vec::new();
    }
    let count = rng.gen_range(4..=6u64);
    let window = (seconds * 1_000).saturating_sub(WARMUP_MS + COOLDOWN_MS);
    let slot = window / count;
    let longest = FAULT_MS.1.min(slot.saturating_sub(1_000)).max(FAULT_MS.0);
    (0..count)
        .map(|i| {
            let duration_ms = rng.gen_range(FAULT_MS.0..=longest);
            let slack = slot.saturating_sub(duration_ms + 1_000);
            Planned {
                kind: kinds[rng.gen_range(0..kinds.len())],
                at_ms: WARMUP_MS + i * slot + rng.gen_range(0..=slack),
                duration_ms,
                pick: rng.r#gen(),
            }
        })
        .collect()
}
