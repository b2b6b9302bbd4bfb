//! The `pyralog` commands. Each is a thin shell: node commands wire [`crate::service`] and
//! [`crate::rpc`] (`start`), light-client commands fetch over JSON-RPC ([`client`]) and call the
//! `pyralog-light` crate's checks.

mod client;
mod cometbft;
mod contract;
mod keys;
mod light;
mod setup;
mod start;
mod tx;
mod zk;

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
    Start(start::StartArgs),
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
    Zk(zk::ZkCommand),
    /// Sign and submit a chain transaction (staking, transfers).
    #[command(subcommand)]
    Tx(tx::TxCommand),
    /// Query chain state over a node's RPC (staking).
    #[command(subcommand)]
    Query(tx::QueryCommand),
    /// Chain contracts: deploy code, instantiate, call, query, read their state.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Write a CometBFT v0.38 home's genesis and validator key for this node (a chain whose
    /// genesis runs `"engine": "cometbft"`).
    CometbftHome(cometbft::CometbftHomeArgs),
}

/// Parses the command line and runs the command.
pub(crate) fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Init(args) => setup::init(args),
        Command::Start(args) => start::start(args),
        Command::Testnet(args) => setup::testnet(args),
        Command::Keys(command) => keys::run(command),
        Command::Light(command) => light::run(command),
        Command::Zk(command) => zk::run(command),
        Command::Tx(command) => tx::run_tx(command),
        Command::Query(command) => tx::run_query(command),
        Command::Contract(command) => contract::run(command),
        Command::CometbftHome(args) => cometbft::home(args),
    }
}
