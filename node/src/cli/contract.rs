//! `pyralog contract ...`: chain contracts over a node's JSON-RPC. `deploy`, `instantiate` and
//! `call` sign transactions as `pyralog tx` does (the fee covers the fuel given, and the unburnt
//! part comes back); `query` runs an entry point read-only; `code`, `get` and `storage` read the
//! state (`storage` with its proof; `pyralog light verify-contract` checks one against a
//! synced light client's trusted head).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use pyralog_chain::tx::Action;
use pyralog_chain::values::{code_hash, contract_id};
use pyralog_contracts::examples::wasm_of;
use pyralog_crypto::{Digest, PublicKey};
use pyralog_light::wire::{decode_hex, to_hex};
use serde_json::{Value, json};

use crate::cli::client::call;
use crate::cli::tx::{SendArgs, send};

/// `pyralog contract ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ContractCommand {
    /// Compile a `.wat` text module (or check a `.wasm` one) and print its code hash and its
    /// bytes as 0x hex (what `log_create {constraint}` takes).
    Compile {
        /// The module.
        file: PathBuf,
    },
    /// Store WASM code on the chain (a `.wasm` file, or a `.wat` text module compiled here).
    Deploy {
        #[command(flatten)]
        send: SendArgs,
        /// The module.
        file: PathBuf,
    },
    /// Create a contract from stored code, running its `init` entry (when exported).
    Instantiate {
        #[command(flatten)]
        send: SendArgs,
        #[command(flatten)]
        call: CallArgs,
        /// The code hash (0x hex).
        #[arg(long)]
        code: String,
    },
    /// Call a contract's entry point in a transaction.
    Call {
        #[command(flatten)]
        send: SendArgs,
        #[command(flatten)]
        call: CallArgs,
        /// The contract id (0x hex).
        #[arg(long)]
        contract: String,
        /// The entry point.
        #[arg(long)]
        entry: String,
    },
    /// Run an entry point read-only on the latest state (or `--height`); nothing is written.
    Query {
        #[command(flatten)]
        read: ReadArgs,
        /// The contract id (0x hex).
        #[arg(long)]
        contract: String,
        /// The entry point.
        #[arg(long)]
        entry: String,
        /// The input (0x hex).
        #[arg(long, default_value = "0x")]
        input: String,
        /// The caller the contract sees.
        #[arg(long)]
        caller: Option<PublicKey>,
    },
    /// Stored code by hash.
    Code {
        #[command(flatten)]
        read: ReadArgs,
        /// The code hash (0x hex).
        code: String,
    },
    /// A contract's record (code, creator, balance).
    Get {
        #[command(flatten)]
        read: ReadArgs,
        /// The contract id (0x hex).
        contract: String,
    },
    /// A contract's storage value with its state proof.
    Storage {
        #[command(flatten)]
        read: ReadArgs,
        /// The contract id (0x hex).
        #[arg(long)]
        contract: String,
        /// The storage key (0x hex).
        #[arg(long)]
        key: String,
    },
}

/// A transaction call's input, attached tokens and fuel.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The input (0x hex).
    #[arg(long, default_value = "0x")]
    input: String,
    /// Tokens moved to the contract with the call.
    #[arg(long, default_value_t = 0)]
    value: u64,
    /// The most fuel it may burn (paid by the fee; the unburnt part is refunded).
    #[arg(long, default_value_t = 1_000_000)]
    fuel: u64,
}

/// Where a read goes.
#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    /// A node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    rpc: String,
    /// The state after this block (default: the latest).
    #[arg(long)]
    height: Option<u64>,
}

fn digest(field: &str, text: &str) -> anyhow::Result<Digest> {
    let bytes = decode_hex(field, text).map_err(anyhow::Error::msg)?;
    Ok(Digest(bytes.try_into().map_err(|_| anyhow::anyhow!("{field}: 32 bytes expected"))?))
}

fn hex_arg(field: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    decode_hex(field, text).map_err(anyhow::Error::msg)
}

/// Runs `pyralog contract ...`.
pub(crate) fn run(command: ContractCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answer = runtime.block_on(execute(command))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// The WASM of the module in `file` (text modules are compiled).
fn read_module(file: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let source = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    wasm_of(&source).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

async fn execute(command: ContractCommand) -> anyhow::Result<Value> {
    match command {
        ContractCommand::Compile { file } => {
            let wasm = read_module(&file)?;
            Ok(json!({ "code": to_hex(&code_hash(&wasm).0), "size": wasm.len(), "wasm": to_hex(&wasm) }))
        }
        ContractCommand::Deploy { send: args, file } => {
            let wasm = read_module(&file)?;
            let code = code_hash(&wasm);
            let signer = args.signer()?;
            let mut outcome = send(&args, &signer, Action::DeployCode { wasm }).await?;
            outcome["code"] = json!(to_hex(&code.0));
            Ok(outcome)
        }
        ContractCommand::Instantiate { send: args, call, code } => {
            let action = Action::Instantiate {
                code: digest("code", &code)?,
                input: hex_arg("input", &call.input)?,
                value: call.value,
                fuel: call.fuel,
            };
            let signer = args.signer()?;
            let mut outcome = send(&args, &signer, action).await?;
            // The id follows from the sender and the nonce the transaction took.
            let nonce = outcome["nonce"].as_u64().context("the transaction's nonce")?;
            outcome["contract"] = json!(to_hex(&contract_id(&signer.public(), nonce).0));
            Ok(outcome)
        }
        ContractCommand::Call { send: args, call, contract, entry } => {
            let action = Action::CallContract {
                contract: digest("contract", &contract)?,
                entry,
                input: hex_arg("input", &call.input)?,
                value: call.value,
                fuel: call.fuel,
            };
            let signer = args.signer()?;
            send(&args, &signer, action).await
        }
        ContractCommand::Query { read, contract, entry, input, caller } => {
            let mut params = json!({ "contract": contract, "entry": entry, "input": input });
            if let Some(caller) = caller {
                params["caller"] = json!(caller.to_string());
            }
            read_call(&read, "contract_query", params).await
        }
        ContractCommand::Code { read, code } => {
            read_call(&read, "contract_getCode", json!({ "code": code })).await
        }
        ContractCommand::Get { read, contract } => {
            read_call(&read, "contract_get", json!({ "contract": contract })).await
        }
        ContractCommand::Storage { read, contract, key } => {
            read_call(&read, "contract_getStorage", json!({ "contract": contract, "key": key })).await
        }
    }
}

async fn read_call(read: &ReadArgs, method: &str, mut params: Value) -> anyhow::Result<Value> {
    if let Some(height) = read.height {
        params["height"] = json!(height);
    }
    call(&read.rpc, method, params).await
}
