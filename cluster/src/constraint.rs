//! Log constraint contracts: WASM code (by hash in the global state, named by the log's
//! configuration) that the partition leader runs on every record before proposing it.
//!
//! The leader's batcher runs the constraint's `check` entry on each record of a caller's batch,
//! in order, after everything earlier in the partition has been applied on the leader (one
//! entry in flight; a new leader first catches up with what its term committed). A refusal
//! fails that caller's whole batch, with the contract's reason; other callers' batches in the
//! same entry go ahead.
//!
//! A constraint sees the record (environment fields `log`, `partition`, `record_key`,
//! `record_value`, `record_headers`, `record_producer`, `record_timestamp_ms`), the key of the
//! record before it in the partition (`previous_key`) and the operation (`append`). Log
//! contracts keep no storage of their own in this version: a call that writes storage is
//! refused. Triggers ([`crate::trigger`]) share the runtime and the record's environment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use pyralog_contracts::{Call, Contract, ContractError, Env, Field, Limits, Runtime, Storage};
use pyralog_crypto::{Digest, Domain, LogName};

use crate::model::Record;

/// The entry point a constraint exports.
pub const ENTRY: &str = "check";
/// The fuel a constraint may burn per record.
pub const FUEL_PER_RECORD: u64 = 1_000_000;
/// The largest constraint module.
pub const MAX_CODE_BYTES: usize = 256 << 10;

/// The runtime of log contracts (constraints, triggers, access control).
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    Runtime::new(Limits { fuel: FUEL_PER_RECORD, code_bytes: MAX_CODE_BYTES, ..Limits::default() })
});

/// The hash that names contract code (the `contract_code` domain, as on the chain).
pub fn code_hash(wasm: &[u8]) -> Digest {
    Domain::ContractCode.hash(wasm)
}

/// Checks that `wasm` compiles as a constraint (under the constraint limits).
pub fn check_code(wasm: &[u8]) -> Result<(), ContractError> {
    RUNTIME.compile(wasm).map(drop)
}

/// What a log contract does for its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Checks records before they are proposed.
    Constraint,
    /// Derives records from committed ones.
    Trigger,
    /// Decides who may append and read.
    Acl,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Constraint, Kind::Trigger, Kind::Acl];

    /// Its name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Constraint => "constraint",
            Kind::Trigger => "trigger",
            Kind::Acl => "acl",
        }
    }
}

/// This process's log contract calls since start, per kind: calls, refusals (`refuse`), other
/// failures (traps, limits), and the fuel completed calls burnt.
static STATS: [[AtomicU64; 4]; 3] = [const { [const { AtomicU64::new(0) }; 4] }; 3];

/// The log contract counters as (name, value): `<kind>_calls`, `<kind>_refused`, `<kind>_failed`,
/// `<kind>_fuel` for each kind (the node's metrics export them).
pub fn stats() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for (i, counter) in ["calls", "refused", "failed", "fuel"].into_iter().enumerate() {
            out.push((format!("{}_{counter}", kind.name()), STATS[kind as usize][i].load(Ordering::Relaxed)));
        }
    }
    out
}

/// A log contract compiled for its log: what constraints, triggers and access control share.
#[derive(Debug)]
pub struct LogContract {
    kind: Kind,
    log: LogName,
    hash: Digest,
    contract: Contract,
}

impl LogContract {
    /// Compiles `wasm`, a `kind` contract of `log`, under the log contracts' limits.
    pub fn compile(kind: Kind, log: LogName, wasm: &[u8]) -> Result<Self, ContractError> {
        Ok(LogContract { kind, log, hash: code_hash(wasm), contract: RUNTIME.compile(wasm)? })
    }

    /// Its code hash.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// The log it serves.
    pub fn log(&self) -> &LogName {
        &self.log
    }

    /// Runs `entry` in `env` with no input and no storage (a call that writes is refused), and
    /// counts it.
    pub(crate) fn run(
        &self,
        entry: &str,
        env: &Env,
        fuel: u64,
    ) -> Result<pyralog_contracts::Outcome, ContractError> {
        let call = Call { entry, input: &[], env, fuel };
        let result = RUNTIME.run(&self.contract, call, Arc::new(NoStorage)).and_then(|outcome| match outcome
            .writes
            .is_empty()
        {
            true => Ok(outcome),
            false => Err(ContractError::Refused("log contracts keep no storage".into())),
        });
        let counters = &STATS[self.kind as usize];
        counters[0].fetch_add(1, Ordering::Relaxed);
        match &result {
            Ok(outcome) => counters[3].fetch_add(outcome.fuel_used, Ordering::Relaxed),
            Err(ContractError::Refused(_)) => counters[1].fetch_add(1, Ordering::Relaxed),
            Err(_) => counters[2].fetch_add(1, Ordering::Relaxed),
        };
        result
    }
}

/// A log's compiled constraint.
#[derive(Debug)]
pub struct Constraint(LogContract);

/// Why a constraint refused a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The record's position in its batch.
    pub index: usize,
    /// The contract's reason (or the limit it broke).
    pub reason: String,
}

/// Storage of a contract that keeps none.
struct NoStorage;

impl Storage for NoStorage {
    fn get(&self, _key: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

impl Constraint {
    /// Compiles `wasm`, the constraint of `log`.
    pub fn new(log: LogName, wasm: &[u8]) -> Result<Arc<Self>, ContractError> {
        Ok(Arc::new(Constraint(LogContract::compile(Kind::Constraint, log, wasm)?)))
    }

    /// Its code hash.
    pub fn hash(&self) -> Digest {
        self.0.hash()
    }

    /// Runs the constraint on one record; the fuel it burnt, or why it refused.
    pub fn check(&self, partition: u32, previous: Option<&[u8]>, record: &Record) -> Result<u64, String> {
        let mut env = record_env(self.0.log(), partition, record).with(Field::Operation, &b"append"[..]);
        if let Some(previous) = previous {
            env = env.with(Field::PreviousKey, previous);
        }
        match self.0.run(ENTRY, &env, FUEL_PER_RECORD) {
            Ok(outcome) => Ok(outcome.fuel_used),
            Err(ContractError::Refused(reason)) => Err(reason),
            Err(err) => Err(err.to_string()),
        }
    }
}

/// The environment a log contract sees for `record` of `partition` of `log`.
pub(crate) fn record_env(log: &LogName, partition: u32, record: &Record) -> Env {
    let mut env = Env::default()
        .with(Field::Log, log.as_str().as_bytes())
        .with(Field::Partition, partition.to_le_bytes())
        .with(Field::RecordValue, record.value.clone())
        .with(Field::RecordHeaders, encode_headers(record))
        .with_u64(Field::RecordTimestampMs, record.timestamp_ms);
    if let Some(key) = &record.key {
        env = env.with(Field::RecordKey, key.clone());
    }
    if let Some(producer) = record.producer {
        let bytes = [producer.producer.to_le_bytes(), producer.sequence.to_le_bytes()].concat();
        env = env.with(Field::RecordProducer, bytes);
    }
    env
}

/// A record's headers as the `record_headers` field carries them: for each, the name's length
/// (u32 LE), the name, the value's length (u32 LE) and the value.
fn encode_headers(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    for header in &record.headers {
        out.extend_from_slice(&(header.name.len() as u32).to_le_bytes());
        out.extend_from_slice(header.name.as_bytes());
        out.extend_from_slice(&(header.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&header.value);
    }
    out
}
