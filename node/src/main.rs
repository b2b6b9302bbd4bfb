//! `pyralog`: the Pyralog node binary.

mod anchor;
mod chain_node;
mod chain_rpc;
mod config;
mod keys;
mod light;
mod light_chain;
mod light_zk;
mod links;
mod log_proof;
mod metrics;
mod rpc;
mod rpc_server;
mod run;
mod setup;
mod subscriptions;
mod xcluster;
mod zk_cli;
mod zk_rpc;

use clap::{Parser, Subcommand};

/// Pyralog: a decentralized, verifiable log network node.
#[derive(Debug, Parser)]
#[command(name = "pyralog", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node's base path: config.toml, node key, data directory.
    Init(setup::InitArgs),
    /// Run the node.
    Start(run::StartArgs),
    /// Generate base paths for a local multi-node cluster.
    Testnet(setup::TestnetArgs),
    /// Manage node identity keys (ed25519).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Light client: verify what a node serves without trusting it.
    #[command(subcommand)]
    Light(light::LightCommand),
    /// zk proofs: Groth16 key setup, client-side membership proofs.
    #[command(subcommand)]
    Zk(zk_cli::ZkCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(args) => setup::init(args),
        Command::Start(args) => run::start(args),
        Command::Testnet(args) => setup::testnet(args),
        Command::Keys(command) => keys::run(command),
        Command::Light(command) => light::run(command),
        Command::Zk(command) => zk_cli::run(command),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
