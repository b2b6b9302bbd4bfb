//! Integration tests of pyralog-contracts (one test binary for the crate).

mod assemblyscript;
mod runtime;
