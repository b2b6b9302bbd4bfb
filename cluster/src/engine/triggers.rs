//! Running log triggers (see [`crate::trigger`]): one task per node looks at the partitions it
//! leads whose log has a trigger, runs the trigger on records committed past the partition's
//! cursor (in the global state), appends what they derive to the target log, then advances the
//! cursor through the global group.
//!
//! At least once, written once: derived records carry the source partition's reserved producer
//! id and consecutive sequences that follow the cursor. A leader that dies after appending but
//! before advancing leaves the cursor behind; its successor runs the same records again, gets
//! the same records with the same sequences, and the target partition stores them as
//! duplicates (nothing twice). Two leaders at once (an old one not yet aware) do the same.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{ProducerSeq, trigger_producer};
use crate::raft::{GlobalCommand, LogInfo, TriggerCursor};
use crate::storage::AppendOutcome;
use crate::transport::Transport;
use crate::trigger::Trigger;

use super::{ClusterError, Shared};

/// How often the task looks for committed records.
const POLL: Duration = Duration::from_millis(20);
/// Most source records one step runs the trigger on.
const STEP_RECORDS: usize = 256;

/// Runs the triggers of the partitions this node leads, until aborted.
pub(super) async fn run_triggers<T: Transport>(shared: Arc<Shared<T>>) {
    // By log and code: a trigger knows the log it serves.
    let mut compiled: std::collections::HashMap<(u32, pyralog_crypto::Digest), Arc<Trigger>> =
        Default::default();
    loop {
        tokio::time::sleep(POLL).await;
        let logs: Vec<LogInfo> = shared
            .global
            .state()
            .borrow()
            .logs
            .values()
            .filter(|l| l.config.trigger.is_some())
            .cloned()
            .collect();
        for log in logs {
            let Some(config) = &log.config.trigger else { continue };
            let trigger = match compiled.get(&(log.id, config.code)) {
                Some(trigger) => trigger.clone(),
                None => {
                    let wasm = shared.global.state().borrow().contract_code.get(&config.code).cloned();
                    let Some(Ok(trigger)) = wasm.map(|wasm| Trigger::new(log.config.name.clone(), &wasm))
                    else {
                        tracing::warn!(log = %log.config.name, code = %config.code, "trigger code missing or invalid");
                        continue;
                    };
                    compiled.insert((log.id, config.code), trigger.clone());
                    trigger
                }
            };
            // One step per partition a round, so a busy partition does not starve the others.
            for partition in 0..log.config.partitions {
                if let Err(err) = step(&shared, &log, partition, &trigger).await {
                    tracing::debug!(log = %log.config.name, partition, %err, "trigger step failed; retried");
                }
            }
        }
    }
}

/// One step on `partition` of `log` if this node leads it: true when it advanced the cursor.
async fn step<T: Transport>(
    shared: &Arc<Shared<T>>,
    log: &LogInfo,
    partition: u32,
    trigger: &Trigger,
) -> Result<bool, ClusterError> {
    let Some(config) = &log.config.trigger else { return Ok(false) };
    let id = log.partition_id(partition);
    let Some(replica) = shared.replicas.read().expect("replica map lock").get(&id).cloned() else {
        return Ok(false);
    };
    if replica.raft().metrics().borrow().state != openraft::ServerState::Leader {
        return Ok(false);
    }
    let (cursor, target) = {
        let global = shared.global.state();
        let global = global.borrow();
        let cursor = global.triggers.get(&id).copied().unwrap_or_default();
        (cursor, global.logs.get(&config.target).cloned())
    };
    let Some(target) = target else { return Ok(false) };
    let committed = replica.reader().read(cursor.next_offset, STEP_RECORDS)?;
    let Some(last) = committed.last() else { return Ok(false) };
    let next_offset = last.offset + 1;

    let mut derived = Vec::new();
    for stored in &committed {
        match trigger.derive(partition, stored) {
            Ok(records) => derived.extend(records),
            Err(err) => {
                tracing::warn!(log = %log.config.name, partition, offset = stored.offset, %err, "trigger failed: nothing derived");
            }
        }
    }
    let target_id = target.partition_id(partition % target.config.partitions);
    let sequence =
        write_derived(shared, target_id, trigger_producer(log.id, partition), cursor, derived).await?;
    fail::fail_point!("trigger-advance", |_| Err(ClusterError::Io(
        crate::failpoints::injected("trigger-advance").to_string()
    )));
    let cursor = TriggerCursor { next_offset, next_sequence: sequence };
    shared.global.propose(GlobalCommand::AdvanceTrigger { partition: id, cursor }).await?;
    Ok(true)
}

/// Writes `derived` to `target` as `producer`'s records numbered from the cursor's sequence;
/// returns the sequence after the last one written. A record the target's constraint refuses is
/// dropped (it would be refused every time) and the others are numbered again and written.
async fn write_derived<T: Transport>(
    shared: &Arc<Shared<T>>,
    target: crate::storage::PartitionId,
    producer: u64,
    cursor: TriggerCursor,
    mut derived: Vec<crate::model::Record>,
) -> Result<u64, ClusterError> {
    loop {
        if derived.is_empty() {
            return Ok(cursor.next_sequence);
        }
        for (i, record) in derived.iter_mut().enumerate() {
            record.producer = Some(ProducerSeq { producer, sequence: cursor.next_sequence + i as u64 });
        }
        match super::api::write_partition(shared.clone(), target, derived.clone()).await {
            Ok(receipts) => {
                if let Some(gap) =
                    receipts.iter().find(|r| matches!(r.outcome, AppendOutcome::OutOfOrderSequence { .. }))
                {
                    // The target holds a later sequence than the cursor says was written: it
                    // cannot happen while the cursor only follows written outputs.
                    return Err(ClusterError::Io(format!(
                        "trigger outputs out of sequence: {:?}",
                        gap.outcome
                    )));
                }
                return Ok(cursor.next_sequence + derived.len() as u64);
            }
            Err(ClusterError::Refused { index, reason, .. }) => {
                tracing::warn!(%target, index, %reason, "a derived record refused by the target's constraint: dropped");
                if index < derived.len() {
                    derived.remove(index);
                } else {
                    derived.clear();
                }
            }
            Err(err) => return Err(err),
        }
    }
}
