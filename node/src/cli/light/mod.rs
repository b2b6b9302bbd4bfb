//! `pyralog light ...`: a light client that verifies what a node serves without trusting it.
//! Each command fetches over JSON-RPC and runs the `pyralog-light` crate's checks; the outcome is
//! printed as JSON, and only a verified outcome exits 0.

mod chain;
mod contract;
mod record;
mod zk;

use clap::Subcommand;
use serde_json::json;

/// `pyralog light ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum LightCommand {
    /// Verify one record end to end: inclusion proof, certified checkpoint, consistency with
    /// the last trusted checkpoint; with --finality, up to a finalized chain header.
    VerifyRecord(record::VerifyArgs),
    /// Follow the chain's finalized headers from the genesis (or the last trusted header).
    Sync(chain::SyncArgs),
    /// Verify a zk proof file (a Groth16 membership proof or an append-batch STARK) against the
    /// roots of a certified checkpoint.
    VerifyZk(zk::VerifyZkArgs),
    /// Verify a chain contract's storage value against the trusted head (after `sync`).
    VerifyContract(contract::VerifyContractArgs),
}

/// Runs `pyralog light ...`.
pub(crate) fn run(command: LightCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (outcome, failed) = match &command {
        LightCommand::Sync(args) => (runtime.block_on(chain::sync(args)), "synced"),
        LightCommand::VerifyRecord(args) if args.finality => {
            let finality = chain::FinalityArgs {
                rpc: &args.rpc,
                state: &args.state,
                cluster: args.cluster.as_deref(),
                log: &args.log,
                partition: args.partition,
                offset: args.offset,
            };
            (runtime.block_on(chain::verify_record_finality(finality)), "verified")
        }
        LightCommand::VerifyRecord(args) => (runtime.block_on(record::verify(args)), "verified"),
        LightCommand::VerifyZk(args) => (runtime.block_on(zk::verify_zk(args)), "verified"),
        LightCommand::VerifyContract(args) => (runtime.block_on(contract::verify_contract(args)), "verified"),
    };
    match outcome {
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(err) => {
            println!("{}", json!({ failed: false, "reason": format!("{err:#}") }));
            Err(err)
        }
    }
}
