//! The Pyralog Cluster engine: append-only logs split into partitions, replicated with Raft on
//! RocksDB, each partition a Merkle tree whose root the replicas sign in checkpoints.
//!
//! - [`acl`]: log access-control contracts, run by the node that takes a request.
//! - [`engine`]: a cluster node and the library API the node binary wraps.
//! - [`sequencer`]: the Obelisk crash-safe counter and Scarab ids.
//! - [`model`]: logs, partitions, records and the canonical record encoding.
//! - [`columnar`]: records as Arrow record batches and IPC streams.
//! - [`constraint`]: log constraint contracts, run by partition leaders before proposing.
//! - [`trigger`]: log trigger contracts, run by partition leaders on committed records.
//! - [`storage`]: one RocksDB per node (or in memory), partition stores with Merkle trees, the
//!   shared WAL syncer.
//! - [`raft`]: openraft log storage, the global and partition state machines and replicas,
//!   checkpoint certification, the network.
//! - [`local`]: replica sets on one machine for tests, benchmarks and development.
//! - [`transport`]: multiplexed, length-delimited RPC frames over one stream per peer pair.

pub mod acl;
pub mod columnar;
pub mod constraint;
pub mod engine;
pub mod failpoints;
pub mod local;
/// The data model (its own crate, so a light client decodes records without the engine).
pub use pyralog_record as model;
pub mod raft;
pub mod sequencer;
pub mod storage;
pub mod transport;
pub mod trigger;
