//! pyralog-zk's integration tests (one binary).

mod groth16;
mod poseidon;
mod stark;
mod tree;
