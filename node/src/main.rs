//! `pyralog`: the Pyralog node binary.
//!
//! - [`cli`]: the commands (init, testnet, keys, start, zk, light).
//! - [`service`]: what `pyralog start` runs: the cluster engine's links, the chain, anchoring,
//!   cross-cluster reads, metrics.
//! - [`rpc`]: the JSON-RPC server and its namespaces.
//! - [`config`]: the base path and `config.toml`.
//!
//! The chain is the `pyralog-chain` crate and every light-client check the `pyralog-light`
//! crate; modules point down only (cli -> rpc -> service -> config), which
//! `node/tests/node/layout.rs` checks.

mod cli;
mod clock;
mod config;
mod kafka;
mod rpc;
mod service;

fn main() -> std::process::ExitCode {
    match cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
