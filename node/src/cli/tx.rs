//! `pyralog tx ...` and `pyralog query staking ...`: signed chain transactions and staking
//! queries over a node's JSON-RPC, as `gaiad tx staking` and `gaiad query staking` do for a
//! Cosmos chain. A transaction is signed with the node's key (`--base-path`) or an account key
//! file (`--key`), takes the sender's next nonce from the node's state, and, with `--wait`,
//! waits until a block includes it and prints its result code and log.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use pyralog_chain::tx::{Action, SignedTx, Tx};
use pyralog_chain::values::{Account, account_key};
use pyralog_crypto::keys::load_key_file;
use pyralog_crypto::{Keypair, PublicKey};
use pyralog_light::wire::{decode_hex, to_hex};
use serde_json::{Value, json};

use crate::cli::client::call;
use pyralog_config::BasePath;

/// How a transaction is sent.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// A node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    rpc: String,
    /// Sign with this node's key (its `node.key`).
    #[arg(long, conflicts_with = "key")]
    base_path: Option<PathBuf>,
    /// Sign with this key file (as `pyralog keys generate` writes).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The fee; raised to the action's minimum (1, plus the fuel a contract call may burn or
    /// the bytes a deployment stores) when lower.
    #[arg(long, default_value_t = 1)]
    fee: u64,
    /// Wait until a block includes the transaction and print its outcome.
    #[arg(long)]
    wait: bool,
}

/// `pyralog tx ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TxCommand {
    /// Create a validator operated by the signer, signing blocks with `--consensus-key`
    /// (default: the signer's key) and bonding `--self-bond` tokens.
    CreateValidator {
        #[command(flatten)]
        send: SendArgs,
        /// The key that signs votes (a node key, `pyrpub1...`).
        #[arg(long)]
        consensus_key: Option<PublicKey>,
        /// Tokens to bond (at least one unit of power).
        #[arg(long)]
        self_bond: u64,
        /// Commission on rewards, basis points.
        #[arg(long, default_value_t = 1_000)]
        commission_bps: u16,
        /// The highest commission ever allowed, basis points.
        #[arg(long, default_value_t = 2_000)]
        max_commission_bps: u16,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Bond tokens to a validator (by its operator key).
    Delegate {
        #[command(flatten)]
        send: SendArgs,
        #[command(flatten)]
        stake: Stake,
    },
    /// Start unbonding tokens from a validator.
    Unbond {
        #[command(flatten)]
        send: SendArgs,
        #[command(flatten)]
        stake: Stake,
    },
    /// Return the signer's jailed validator to the candidates (after its jail time).
    Unjail {
        #[command(flatten)]
        send: SendArgs,
    },
    /// Change the signer's validator's commission or description.
    EditValidator {
        #[command(flatten)]
        send: SendArgs,
        /// New commission, basis points.
        #[arg(long)]
        commission_bps: Option<u16>,
        /// New description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Move tokens to another account.
    Transfer {
        #[command(flatten)]
        send: SendArgs,
        /// The receiver.
        #[arg(long)]
        to: PublicKey,
        /// Tokens.
        #[arg(long)]
        amount: u64,
    },
}

/// Tokens and the validator they bond to or unbond from.
#[derive(Debug, Args)]
pub(crate) struct Stake {
    /// The validator's operator.
    #[arg(long)]
    validator: PublicKey,
    /// Tokens.
    #[arg(long)]
    amount: u64,
}

/// `pyralog query ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum QueryCommand {
    /// Proof-of-Stake state (each answer carries state proofs).
    #[command(subcommand)]
    Staking(StakingQuery),
}

/// `pyralog query staking ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StakingQuery {
    /// The parameters.
    Params(QueryArgs),
    /// Every validator with power and status.
    Validators(QueryArgs),
    /// One validator by operator key.
    Validator {
        #[command(flatten)]
        query: QueryArgs,
        /// The operator.
        operator: PublicKey,
    },
    /// A delegator's delegations.
    Delegations {
        #[command(flatten)]
        query: QueryArgs,
        /// The delegator.
        delegator: PublicKey,
    },
    /// A delegator's unbonding entries with one validator.
    Unbonding {
        #[command(flatten)]
        query: QueryArgs,
        /// The delegator.
        delegator: PublicKey,
        /// The validator's operator.
        validator: PublicKey,
    },
    /// A validator's missed blocks by consensus key.
    SigningInfo {
        #[command(flatten)]
        query: QueryArgs,
        /// The consensus key.
        consensus_key: PublicKey,
    },
}

/// Where and at which height a query reads.
#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// A node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:9944")]
    rpc: String,
    /// The state after this block (default: the latest).
    #[arg(long)]
    height: Option<u64>,
}

impl SendArgs {
    pub(super) fn signer(&self) -> anyhow::Result<Keypair> {
        match (&self.key, &self.base_path) {
            (Some(file), _) => load_key_file(file).with_context(|| format!("key file {}", file.display())),
            (None, Some(base)) => load_key_file(&BasePath(base.clone()).key()).context("the node's key"),
            (None, None) => bail!("sign with --base-path <node> or --key <file>"),
        }
    }
}

/// Signs `action` with `signer` as its next transaction, submits it and (with `--wait`) waits
/// for its outcome.
pub(super) async fn send(args: &SendArgs, signer: &Keypair, action: Action) -> anyhow::Result<Value> {
    let head = call(&args.rpc, "chain_getFinalizedHead", json!({})).await?;
    let chain_id = head["header"]["chainId"].as_str().context("chain_getFinalizedHead: no chain id")?;
    let state =
        call(&args.rpc, "state_get", json!({ "key": to_hex(&account_key(&signer.public())) })).await?;
    let account: Account = match state["value"].as_str() {
        Some(hex) => postcard::from_bytes(&decode_hex("value", hex).map_err(anyhow::Error::msg)?)
            .context("the account's state value")?,
        None => Account::default(),
    };
    let tx = Tx {
        chain_id: chain_id.into(),
        sender: signer.public(),
        nonce: account.nonce,
        fee: args.fee.max(action.min_fee()),
        action,
    };
    let signed = SignedTx::sign(tx, signer);
    let submitted = call(&args.rpc, "tx_submit", json!({ "tx": to_hex(&signed.encode()) })).await?;
    let id = submitted["id"].as_str().context("tx_submit.id")?.to_owned();
    if !args.wait {
        return Ok(
            json!({ "submitted": true, "id": id, "sender": signer.public().to_string(), "nonce": account.nonce }),
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = call(&args.rpc, "tx_status", json!({ "id": id })).await?;
        if status["status"] == "committed" {
            let ok = status["code"] == 0;
            let outcome = json!({
                "committed": true, "ok": ok, "id": id, "nonce": account.nonce, "height": status["height"],
                "code": status["code"], "log": status["log"],
            });
            if !ok {
                bail!("transaction {id} failed at height {}: {}", status["height"], status["log"]);
            }
            return Ok(outcome);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("transaction {id} not committed within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The action `command` asks for, signed by `signer` (a new validator signs blocks with the
/// signer's key unless told otherwise).
fn action(command: &TxCommand, signer: &PublicKey) -> Action {
    match command {
        TxCommand::CreateValidator {
            consensus_key,
            self_bond,
            commission_bps,
            max_commission_bps,
            description,
            ..
        } => Action::CreateValidator {
            consensus_key: consensus_key.unwrap_or(*signer),
            self_bond: *self_bond,
            commission_bps: *commission_bps,
            max_commission_bps: *max_commission_bps,
            description: description.clone(),
        },
        TxCommand::Delegate { stake, .. } => {
            Action::Delegate { validator: stake.validator, amount: stake.amount }
        }
        TxCommand::Unbond { stake, .. } => {
            Action::Unbond { validator: stake.validator, amount: stake.amount }
        }
        TxCommand::Unjail { .. } => Action::Unjail,
        TxCommand::EditValidator { commission_bps, description, .. } => {
            Action::EditValidator { commission_bps: *commission_bps, description: description.clone() }
        }
        TxCommand::Transfer { to, amount, .. } => Action::Transfer { to: *to, amount: *amount },
    }
}

fn send_args(command: &TxCommand) -> &SendArgs {
    match command {
        TxCommand::CreateValidator { send, .. }
        | TxCommand::Delegate { send, .. }
        | TxCommand::Unbond { send, .. }
        | TxCommand::Unjail { send }
        | TxCommand::EditValidator { send, .. }
        | TxCommand::Transfer { send, .. } => send,
    }
}

/// Runs `pyralog tx ...`.
pub(crate) fn run_tx(command: TxCommand) -> anyhow::Result<()> {
    let args = send_args(&command);
    let signer = args.signer()?;
    let action = action(&command, &signer.public());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcome = runtime.block_on(send(args, &signer, action))?;
    println!("{outcome}");
    Ok(())
}

/// Runs `pyralog query ...`.
pub(crate) fn run_query(command: QueryCommand) -> anyhow::Result<()> {
    let QueryCommand::Staking(query) = command;
    let (method, args, mut params) = match &query {
        StakingQuery::Params(q) => ("staking_params", q, json!({})),
        StakingQuery::Validators(q) => ("staking_validators", q, json!({})),
        StakingQuery::Validator { query, operator } => {
            ("staking_validator", query, json!({ "operator": operator.to_string() }))
        }
        StakingQuery::Delegations { query, delegator } => {
            ("staking_delegations", query, json!({ "delegator": delegator.to_string() }))
        }
        StakingQuery::Unbonding { query, delegator, validator } => (
            "staking_unbonding",
            query,
            json!({ "delegator": delegator.to_string(), "validator": validator.to_string() }),
        ),
        StakingQuery::SigningInfo { query, consensus_key } => {
            ("staking_signingInfo", query, json!({ "consensusKey": consensus_key.to_string() }))
        }
    };
    if let Some(height) = args.height {
        params["height"] = json!(height);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let answer = runtime.block_on(call(&args.rpc, method, params))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}
