//! The genesis file (`genesis.json`): what every node of a chain, and every light client, starts
//! from. Like CometBFT's genesis: the chain id, the first validator set, and the app's initial
//! state (accounts with balances, clusters registered from the start).
//!
//! ```json
//! {
//!   "chainId": "pyralog-testnet",
//!   "validators": [{ "publicKey": "pyrpub1...", "power": 1 }],
//!   "accounts": [{ "publicKey": "pyrpub1...", "balance": 1000000 }],
//!   "clusters": [{ "id": "alpha", "owner": "pyrpub1...", "members": ["pyrpub1..."],
//!                  "peers": ["/ip4/127.0.0.1/tcp/30433"] }],
//!   "consensus": { "engine": "tendermint" }
//! }
//! ```
//!
//! `"consensus": { "engine": "pbft", "viewTimeoutMs": 2000 }` runs PBFT instead (the view timer's
//! base is a protocol parameter there: every validator must use the same).
//!
//! `"consensus": { "engine": "pos", "baseEngine": "tendermint" }` with a `"staking": {...}`
//! section ([`StakingParams`]) runs Proof-of-Stake: the genesis validators start bonded with
//! `power * powerReduction` tokens each, and the set follows stake from then on.
//!
//! `"consensus": { "engine": "pow", "pow": { "initialBits": 520097791, "limitBits": 545259519,
//! "idealBlockTimeS": 2, "halfLifeS": 600, "confirmations": 6 } }` runs Proof-of-Work
//! ([`PowGenesis`]; `genesisTimeMs` is then required: ASERT's schedule starts there). Anyone may
//! mine; the `validators` list only seeds the chain's validator hashes and plays no part in
//! consensus.
//!
//! `"consensus": { "engine": "cometbft" }` runs the chain app behind CometBFT v0.38: the node
//! serves ABCI and CometBFT (configured from the same validators, `pyralog cometbft-config`)
//! decides and signs the blocks.

use std::path::Path;

use anyhow::Context;
use pyralog_consensus_types::pow::PowRules;
use pyralog_consensus_types::vote::check_chain_id;
use pyralog_consensus_types::{Engine, Validator, ValidatorSet};
use pyralog_crypto::{ClusterId, PublicKey};
use serde::{Deserialize, Serialize};

use crate::staking::StakingParams;
use crate::values::{ClusterRecord, Genesis};

/// The genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GenesisFile {
    /// The chain's name; every vote, header and transaction names it.
    pub chain_id: String,
    /// The first validator set.
    pub validators: Vec<GenesisValidator>,
    /// Initial balances.
    #[serde(default)]
    pub accounts: Vec<GenesisAccount>,
    /// Clusters registered at genesis.
    #[serde(default)]
    pub clusters: Vec<GenesisCluster>,
    /// How the chain agrees (absent: Tendermint).
    #[serde(default)]
    pub consensus: ConsensusGenesis,
    /// When the chain starts, in ms since the Unix epoch (CometBFT's `genesis_time`): a light
    /// client trusting the genesis counts its trusting period from here; blocks come after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genesis_time_ms: Option<u64>,
    /// Proof-of-Stake's parameters, with `"engine": "pos"` only (absent there: Cosmos SDK's
    /// defaults, [`StakingParams::default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staking: Option<StakingParams>,
}

/// What a genesis's `consensus.engine` names: a BFT engine with a fixed validator set, or
/// Proof-of-Stake (a staking chain app over a BFT base engine, `consensus.baseEngine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// Tendermint, validators fixed at genesis.
    #[default]
    Tendermint,
    /// PBFT, validators fixed at genesis.
    Pbft,
    /// Proof-of-Stake: validators and powers from bonded stake, decided by the base engine.
    Pos,
    /// Proof-of-Work: anyone mines; a block is final `confirmations` seals deep.
    Pow,
    /// CometBFT v0.38, outside the node: `pyralog start` serves the chain app over ABCI and
    /// CometBFT decides and signs the blocks.
    #[serde(rename = "cometbft")]
    CometBft,
}

impl std::str::FromStr for EngineChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "tendermint" => Ok(EngineChoice::Tendermint),
            "pbft" => Ok(EngineChoice::Pbft),
            "pos" => Ok(EngineChoice::Pos),
            "pow" => Ok(EngineChoice::Pow),
            "cometbft" => Ok(EngineChoice::CometBft),
            other => Err(format!(
                "unknown consensus engine {other:?} (known: tendermint, pbft, pos, pow, cometbft)"
            )),
        }
    }
}

impl std::fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineChoice::Tendermint => "tendermint",
            EngineChoice::Pbft => "pbft",
            EngineChoice::Pos => "pos",
            EngineChoice::Pow => "pow",
            EngineChoice::CometBft => "cometbft",
        })
    }
}

/// The genesis file's `consensus` section: the engine every validator runs and every header
/// names. Protocol parameters of an engine go here too as engines gain them; a node's own
/// tuning (its propose timeout, block interval) stays in its config.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsensusGenesis {
    /// The engine: `tendermint`, `pbft`, `pos`, `pow` or `cometbft`.
    #[serde(default)]
    pub engine: EngineChoice,
    /// With `pos`, the BFT engine that decides blocks (absent: Tendermint). Headers and finality
    /// proofs name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_engine: Option<Engine>,
    /// PBFT's view timer base, in milliseconds (absent: [`DEFAULT_VIEW_TIMEOUT_MS`]); the timer
    /// doubles with each consecutive failed view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_timeout_ms: Option<u64>,
    /// Proof-of-Work's rules, with `pow` only (absent there: [`PowGenesis::default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pow: Option<PowGenesis>,
}

/// Proof-of-Work's protocol parameters in the genesis file (with its `genesisTimeMs` they make
/// the [`PowRules`] every node and light client checks seals by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PowGenesis {
    /// The first block's compact target (Bitcoin's `nBits`).
    pub initial_bits: u32,
    /// The easiest compact target allowed.
    pub limit_bits: u32,
    /// ASERT's target block interval, seconds.
    pub ideal_block_time_s: u64,
    /// ASERT's half-life, seconds.
    pub half_life_s: u64,
    /// `k`: how many seals on top make a block final.
    pub confirmations: u64,
}

impl PowGenesis {
    /// The local testnet's: CPU miners on one machine, one-second blocks, the first target about
    /// 2^22 hashes, a one-minute half-life (ASERT finds the machine's hashrate quickly), final
    /// three seals deep.
    pub fn testnet() -> Self {
        PowGenesis {
            initial_bits: 0x1e04_0000,
            limit_bits: 0x207f_ffff,
            ideal_block_time_s: 1,
            half_life_s: 60,
            confirmations: 3,
        }
    }
}

impl Default for PowGenesis {
    /// A small network of CPU miners: the first target takes about 2^20 hashes (a fraction of
    /// a second on one core), two-second blocks, a ten-minute half-life, six confirmations.
    fn default() -> Self {
        PowGenesis {
            initial_bits: 0x1f00_0fff,
            limit_bits: 0x207f_ffff,
            ideal_block_time_s: 2,
            half_life_s: 600,
            confirmations: 6,
        }
    }
}

/// PBFT's view timer base when the genesis names none.
pub const DEFAULT_VIEW_TIMEOUT_MS: u64 = 2000;

/// The view timer bases a genesis may name, in milliseconds.
pub const VIEW_TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=600_000;

/// Why a genesis file's `consensus` section is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusGenesisError {
    /// `viewTimeoutMs` outside [`VIEW_TIMEOUT_RANGE_MS`].
    #[error("consensus.viewTimeoutMs is {0}; it must be 100 to 600000")]
    ViewTimeoutOutOfRange(u64),
    /// `baseEngine` on a chain that does not run `pos`.
    #[error("consensus.baseEngine is only for \"engine\": \"pos\"")]
    BaseEngineWithoutPos,
    /// A `staking` section on a chain that does not run `pos`, or `pos` without validators
    /// that can be bonded.
    #[error("staking: {0}")]
    Staking(String),
    /// Proof-of-Work's rules do not hold together, or a `pow` chain without its start time.
    #[error("consensus.pow: {0}")]
    Pow(String),
    /// A setting of another engine than the chain's.
    #[error("consensus.{setting} is a setting of another engine; the chain runs {engine}")]
    NotThisEngine {
        /// The setting.
        setting: &'static str,
        /// The chain's engine.
        engine: Engine,
    },
}

impl ConsensusGenesis {
    /// The section of a chain running `engine` with its defaults.
    pub fn new(engine: EngineChoice) -> Self {
        ConsensusGenesis { engine, base_engine: None, view_timeout_ms: None, pow: None }
    }

    /// The engine that decides blocks (headers and finality proofs name it).
    pub fn engine(&self) -> Engine {
        match self.engine {
            EngineChoice::Tendermint => Engine::Tendermint,
            EngineChoice::Pbft => Engine::Pbft,
            EngineChoice::Pos => self.base_engine.unwrap_or_default(),
            EngineChoice::Pow => Engine::Pow,
            EngineChoice::CometBft => Engine::CometBft,
        }
    }

    /// The work rules of a `pow` chain starting at `genesis_time_ms` (none for the others).
    pub fn pow_rules(&self, genesis_time_ms: Option<u64>) -> Result<Option<PowRules>, ConsensusGenesisError> {
        if self.engine != EngineChoice::Pow {
            return Ok(None);
        }
        let Some(genesis_time_ms) = genesis_time_ms else {
            return Err(ConsensusGenesisError::Pow(
                "a pow chain needs genesisTimeMs (ASERT's schedule starts there)".into(),
            ));
        };
        let pow = self.pow.unwrap_or_default();
        let rules = PowRules {
            genesis_time_ms,
            initial_bits: pow.initial_bits,
            limit_bits: pow.limit_bits,
            ideal_block_time_s: pow.ideal_block_time_s,
            half_life_s: pow.half_life_s,
            confirmations: pow.confirmations,
        };
        rules.check().map_err(ConsensusGenesisError::Pow)?;
        Ok(Some(rules))
    }

    /// Whether validators come from stake.
    pub fn proof_of_stake(&self) -> bool {
        self.engine == EngineChoice::Pos
    }

    /// Checks the engine's parameters.
    pub fn check(&self) -> Result<(), ConsensusGenesisError> {
        if self.base_engine.is_some() && !self.proof_of_stake() {
            return Err(ConsensusGenesisError::BaseEngineWithoutPos);
        }
        if self.pow.is_some() && self.engine != EngineChoice::Pow {
            return Err(ConsensusGenesisError::NotThisEngine { setting: "pow", engine: self.engine() });
        }
        match (self.engine(), self.view_timeout_ms) {
            (Engine::Pbft, Some(ms)) if !VIEW_TIMEOUT_RANGE_MS.contains(&ms) => {
                Err(ConsensusGenesisError::ViewTimeoutOutOfRange(ms))
            }
            (Engine::Pbft, _) | (_, None) => Ok(()),
            (engine, Some(_)) => {
                Err(ConsensusGenesisError::NotThisEngine { setting: "viewTimeoutMs", engine })
            }
        }
    }

    /// PBFT's view timer base.
    pub fn view_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.view_timeout_ms.unwrap_or(DEFAULT_VIEW_TIMEOUT_MS))
    }
}

/// A genesis validator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GenesisValidator {
    /// Its node key.
    pub public_key: PublicKey,
    /// Its voting power.
    pub power: u64,
}

/// A genesis account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GenesisAccount {
    /// The account key.
    pub public_key: PublicKey,
    /// Its balance.
    pub balance: u64,
}

/// A cluster registered at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GenesisCluster {
    /// The cluster id.
    pub id: ClusterId,
    /// Who may re-register it.
    pub owner: PublicKey,
    /// Its replicas' node keys.
    pub members: Vec<PublicKey>,
    /// Their overlay addresses (multiaddrs).
    #[serde(default)]
    pub peers: Vec<String>,
}

impl GenesisFile {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid genesis {}", path.display()))
    }

    /// Parses and checks a genesis file's text (CometBFT's genesis carries it as its
    /// `app_state`).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let genesis: GenesisFile = serde_json::from_str(text)?;
        check_chain_id(&genesis.chain_id)?;
        genesis.validator_set()?;
        genesis.consensus.check()?;
        genesis.pow_rules()?;
        genesis.check_staking()?;
        genesis.genesis_state().check().map_err(anyhow::Error::msg)?;
        Ok(genesis)
    }

    /// Writes `path` (pretty JSON).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
    }

    /// The first validator set.
    pub fn validator_set(&self) -> anyhow::Result<ValidatorSet> {
        ValidatorSet::new(self.validators.iter().map(|v| Validator { key: v.public_key, power: v.power }))
            .context("validators")
    }

    /// The work rules of a `pow` chain (none for the others).
    pub fn pow_rules(&self) -> Result<Option<PowRules>, ConsensusGenesisError> {
        self.consensus.pow_rules(self.genesis_time_ms)
    }

    /// The staking parameters of a `pos` chain (none for the others).
    pub fn staking_params(&self) -> Option<StakingParams> {
        self.consensus.proof_of_stake().then(|| self.staking.clone().unwrap_or_default())
    }

    /// How long a light client trusts a header by default: two thirds of the unbonding period
    /// on a staking chain (CometBFT's advice), forever on a chain whose validators never change.
    pub fn default_trusting_period_ms(&self) -> Option<u64> {
        self.staking_params().map(|params| params.unbonding_time_ms / 3 * 2)
    }

    fn check_staking(&self) -> Result<(), ConsensusGenesisError> {
        let Some(params) = self.staking_params() else {
            return match self.staking {
                Some(_) => {
                    Err(ConsensusGenesisError::Staking("a staking section needs \"engine\": \"pos\"".into()))
                }
                None => Ok(()),
            };
        };
        params.check().map_err(ConsensusGenesisError::Staking)?;
        for v in &self.validators {
            if params.tokens_for_power(v.power).is_none() {
                return Err(ConsensusGenesisError::Staking(format!(
                    "validator {} cannot bond power {} (at most {} per validator)",
                    v.public_key,
                    v.power,
                    params.power(u64::MAX)
                )));
            }
        }
        if self.validators.len() > params.max_validators as usize {
            return Err(ConsensusGenesisError::Staking("more genesis validators than maxValidators".into()));
        }
        Ok(())
    }

    /// The app state the chain app's `init_chain` reads.
    pub fn app_state(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.genesis_state()).expect("genesis serializes")
    }

    /// The genesis app state.
    fn genesis_state(&self) -> Genesis {
        Genesis {
            accounts: self.accounts.iter().map(|a| (a.public_key, a.balance)).collect(),
            clusters: self
                .clusters
                .iter()
                .map(|c| {
                    let record =
                        ClusterRecord { owner: c.owner, members: c.members.clone(), peers: c.peers.clone() };
                    (c.id.clone(), record)
                })
                .collect(),
            staking: self.staking_params(),
            genesis_time_ms: self.genesis_time_ms,
        }
    }
}
