//! Integration tests of pyralog-cluster (one test binary for the crate).

mod crash;
mod sequencer;
