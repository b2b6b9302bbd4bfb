//! The Pyralog light client's checks, without an async runtime, storage or network (`make lint`
//! checks): the `pyralog light` commands fetch over JSON-RPC and call these.
//!
//! - [`chain`]: following finalized headers (adjacent and skipping, for every engine's finality
//!   proof) and verifying a record up to a finalized header.
//! - [`comet`]: a chain run behind CometBFT: its signed headers checked with CometBFT's rules.
//! - [`contract`]: chain contract state proven under the trusted head.
//! - [`record`]: a served record checked against its proven bytes.
//! - [`zk`]: zk proof files checked against certified checkpoints.
//! - [`trust`]: the trust file and the chain light client's state file.
//! - [`wire`]: the JSON shapes nodes serve what the client verifies in.
//! - [`work`]: the SPV client of Proof-of-Work chains (seals, work, `k`-deep finality).

pub mod chain;
pub mod comet;
pub mod contract;
pub mod record;
pub mod trust;
pub mod wire;
pub mod work;
pub mod zk;
