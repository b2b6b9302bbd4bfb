//! Integration tests of pyralog-cluster (one test binary for the crate).

mod constraints;
mod crash;
mod engine;
mod global_state;
mod node_crash;
mod raft_storage;
mod record_codec;
mod replication;
mod sequencer;
mod storage;
mod support;
mod transport;
mod triggers;
