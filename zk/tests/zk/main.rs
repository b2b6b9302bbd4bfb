//! pyralog-zk's integration tests (one binary).

mod groth16;
mod poseidon;
mod proof;
mod stark;
mod tree;
