//! `pyralog`: the Pyralog node binary.
//!
//! - [`cli`]: the commands (init, testnet, keys, start, zk, light).
//! - [`service`]: what `pyralog start` runs: the cluster engine's links, the chain, anchoring,
//!   cross-cluster reads, metrics.
//! - [`rpc`]: the JSON-RPC server and its namespaces.
//! - [`kafka`]: Kafka's wire protocol (its frames are decoded by `pyralog-kafka-wire`).
//! - [`client_auth`]: client identities from signed claims (JSON-RPC requests, Kafka SASL).
//!
//! The base path and `config.toml` are the `pyralog-config` crate.
//!
//! The chain is the `pyralog-chain` crate and every light-client check the `pyralog-light`
//! crate; modules point down only (cli -> rpc -> service), which
//! `node/tests/node/layout.rs` checks.

mod cli;
mod client_auth;
mod clock;
mod kafka;
mod rpc;
mod service;
mod ui;

fn main() -> std::process::ExitCode {
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
