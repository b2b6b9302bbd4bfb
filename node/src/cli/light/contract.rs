//! `pyralog light verify-contract`: a chain contract's storage value checked against the light
//! client's trusted head (after `pyralog light sync`), without trusting the server.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use pyralog_chain::block::committed_state_version;
use pyralog_crypto::Digest;
use pyralog_light::contract::verify_contract_storage;
use pyralog_light::trust::LightState;
use pyralog_light::wire::{self, decode_hex, to_hex};
use serde_json::{Value, json};

use crate::cli::client::call;

/// `pyralog light verify-contract`.
#[derive(Debug, Args)]
pub(crate) struct VerifyContractArgs {
    /// A node's JSON-RPC URL.
    #[arg(long)]
    rpc: String,
    /// The light client's state file (`pyralog light sync` writes it).
    #[arg(long, default_value = "pyralog-light.json")]
    state: PathBuf,
    /// The contract id (0x hex).
    #[arg(long)]
    contract: String,
    /// The storage key (0x hex).
    #[arg(long)]
    key: String,
}

/// Runs `pyralog light verify-contract`: the value under the trusted head's state root (the
/// state after the block before it).
pub(super) async fn verify_contract(args: &VerifyContractArgs) -> anyhow::Result<Value> {
    let state = LightState::load(&args.state)?.with_context(|| {
        format!("no light state at {} (run `pyralog light sync` first)", args.state.display())
    })?;
    // On a Proof-of-Work chain: the last settled block, whose header commits to the state k + 1
    // blocks below it.
    let (head, version) = match &state.seals {
        Some(seals) => {
            let head =
                seals.settled_head(&state.head).context("no block is final yet: run `pyralog light sync`")?;
            let version = seals.state_version_at(head.height);
            (head, version)
        }
        None => (state.head.clone(), committed_state_version(state.head.height, None)),
    };
    let head = &head;
    if head.height == 0 {
        bail!("the trusted head is the genesis: run `pyralog light sync` once a block is final");
    }
    let contract = decode_hex("contract", &args.contract).map_err(anyhow::Error::msg)?;
    let contract = Digest(contract.try_into().map_err(|_| anyhow::anyhow!("contract: 32 bytes expected"))?);
    let key = decode_hex("key", &args.key).map_err(anyhow::Error::msg)?;
    let header = wire::header(&call(&args.rpc, "chain_getHeader", json!({ "height": head.height })).await?)?;
    let answer = call(
        &args.rpc,
        "contract_getStorage",
        json!({ "contract": to_hex(&contract.0), "key": to_hex(&key), "height": version }),
    )
    .await?;
    let proven = wire::proven_state(&answer)?;
    let value = verify_contract_storage(head, &header, &contract, &key, &proven)?;
    // The server's readable `value` must be what the proof proves.
    if answer["value"] != json!(value.as_deref().map(to_hex)) {
        bail!("the server's value {} is not the proven {:?}", answer["value"], value.as_deref().map(to_hex));
    }
    Ok(json!({
        "verified": true,
        "contract": to_hex(&contract.0),
        "key": to_hex(&key),
        "value": value.as_deref().map(to_hex),
        "trustedHeight": head.height,
        "blockId": to_hex(&header.block_id().0),
        "stateRoot": to_hex(&header.state_root.0),
    }))
}
