//! The Pyralog Cluster engine: append-only logs split into partitions, replicated with Raft on
//! RocksDB, each partition a Merkle tree whose root the replicas sign in checkpoints.
//!
//! Built so far:
//! - [`sequencer`]: the Obelisk crash-safe counter and Scarab ids.

pub mod sequencer;
