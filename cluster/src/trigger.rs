//! Log trigger contracts: WASM code (by hash in the global state, named with its target log by
//! the log's configuration) that the partition leader runs on every committed record; each
//! event the call emits becomes one derived record of the target log.
//!
//! A trigger's entry point is `on_record`; it sees the record's environment (as a constraint
//! does) and `record_offset`. Derived records keep the source record's key and timestamp, carry
//! a `pyralog-source` header (`<log>/<partition>/<offset>`) and the trigger's reserved producer
//! id with consecutive sequences, so a leader change that runs a record's trigger again writes
//! nothing twice (see `engine::triggers`). A call that fails (trap, refusal, a limit) derives
//! nothing from its record, which is logged and counted.

use std::sync::Arc;

use pyralog_contracts::{ContractError, Field};
use pyralog_crypto::{Digest, LogName};

use crate::constraint::{Kind, LogContract, record_env};
use crate::model::{Header, Record, StoredRecord};

/// The entry point a trigger exports.
pub const ENTRY: &str = "on_record";
/// The fuel a trigger may burn per record.
pub const FUEL_PER_RECORD: u64 = 1_000_000;
/// The header naming a derived record's source.
pub const SOURCE_HEADER: &str = "pyralog-source";

/// A log's compiled trigger.
#[derive(Debug)]
pub struct Trigger(LogContract);

impl Trigger {
    /// Compiles `wasm`, the trigger of `log`.
    pub fn new(log: LogName, wasm: &[u8]) -> Result<Arc<Self>, ContractError> {
        Ok(Arc::new(Trigger(LogContract::compile(Kind::Trigger, log, wasm)?)))
    }

    /// Its code hash.
    pub fn hash(&self) -> Digest {
        self.0.hash()
    }

    /// The records `stored` (of `partition`) derives: one per event its call emitted, without
    /// producer sequences yet; or why the call failed.
    pub fn derive(&self, partition: u32, stored: &StoredRecord) -> Result<Vec<Record>, ContractError> {
        let record = &stored.record;
        let env = record_env(self.0.log(), partition, record).with_u64(Field::RecordOffset, stored.offset);
        let outcome = self.0.run(ENTRY, &env, FUEL_PER_RECORD)?;
        let source = format!("{}/{partition}/{}", self.0.log(), stored.offset);
        Ok(outcome
            .events
            .into_iter()
            .map(|value| Record {
                key: record.key.clone(),
                value,
                headers: vec![Header { name: SOURCE_HEADER.into(), value: source.clone().into_bytes() }],
                timestamp_ms: record.timestamp_ms,
                ..Record::default()
            })
            .collect())
    }
}
