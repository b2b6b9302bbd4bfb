//! Integration tests of pyralog-cluster (one test binary for the crate).

mod crash;
mod engine;
mod raft_storage;
mod record_codec;
mod replication;
mod sequencer;
mod storage;
