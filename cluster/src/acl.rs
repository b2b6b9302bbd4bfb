//! Access-control contracts: WASM code (by hash in the global state, named by the log's
//! configuration) that decides who may append to and read a log. The node that takes a
//! request runs the contract's `allow` entry with the client's verified identity (`caller`,
//! absent for an anonymous client), the `operation` (`append` or `read`), the `log` and the
//! `partition` when the request names one; a refusal denies the request with the contract's
//! reason, and nothing is written or read.

use std::sync::Arc;

use pyralog_contracts::{ContractError, Env, Field};
use pyralog_crypto::{Digest, LogName, PublicKey};

use crate::constraint::{Kind, LogContract};

/// The entry point an access-control contract exports.
pub const ENTRY: &str = "allow";
/// The fuel one decision may burn.
pub const FUEL_PER_DECISION: u64 = 1_000_000;

/// What a request does to a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Appends records.
    Append,
    /// Reads records.
    Read,
}

impl Operation {
    /// Its name, as the contract sees it.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Append => "append",
            Operation::Read => "read",
        }
    }
}

/// A log's compiled access-control contract.
#[derive(Debug)]
pub struct Acl(LogContract);

impl Acl {
    /// Compiles `wasm`, the access-control contract of `log`.
    pub fn new(log: LogName, wasm: &[u8]) -> Result<Arc<Self>, ContractError> {
        Ok(Arc::new(Acl(LogContract::compile(Kind::Acl, log, wasm)?)))
    }

    /// Its code hash.
    pub fn hash(&self) -> Digest {
        self.0.hash()
    }

    /// Whether `caller` may do `operation` (on `partition`, when named); the contract's reason
    /// when not.
    pub fn decide(
        &self,
        caller: Option<&PublicKey>,
        operation: Operation,
        partition: Option<u32>,
    ) -> Result<(), String> {
        let mut env = Env::default()
            .with(Field::Log, self.0.log().as_str().as_bytes())
            .with(Field::Operation, operation.name().as_bytes());
        if let Some(caller) = caller {
            env = env.with(Field::Caller, *caller.as_bytes());
        }
        if let Some(partition) = partition {
            env = env.with(Field::Partition, partition.to_le_bytes());
        }
        match self.0.run(ENTRY, &env, FUEL_PER_DECISION) {
            Ok(_) => Ok(()),
            Err(ContractError::Refused(reason)) => Err(reason),
            Err(err) => Err(err.to_string()),
        }
    }
}
