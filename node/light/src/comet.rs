//! The light client of a chain run behind CometBFT (`"engine": "cometbft"`, verifier spec
//! §12.9). CometBFT signs its own headers, so the client checks them with CometBFT's
//! light-client rules (the `tendermint-light-client-verifier` crate, skipping verification with
//! a 1/3 trust threshold) from the genesis validators it trusts; header `L`'s `app_hash` is the
//! app's state root after block `L - 1`, and the record path under that root is the native
//! engines' ([`crate::chain::verify_under_state_root`]).

use std::time::Duration;

use pyralog_consensus_types::Validator;
use pyralog_crypto::Checkpoint;
use pyralog_crypto::light::RecordQuery;
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof, InclusionProof};
use serde::{Deserialize, Serialize};
use tendermint::block::Height;
use tendermint::block::signed_header::SignedHeader;
use tendermint::chain::Id as ChainId;
use tendermint::validator::{Info, Set};
use tendermint::{PublicKey, Time, vote};
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::{TrustThreshold, TrustedBlockState, UntrustedBlockState};
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};

use crate::chain::{AnchoredState, ChainLightError, ProvenValue, TrustedHead, verify_under_state_root};

/// How far a header's time may be ahead of the client's clock (CometBFT's default drift).
pub const CLOCK_DRIFT: Duration = Duration::from_secs(10);

/// How long trust in a genesis whose validators never change lasts (no unbonding period bounds
/// it): a century.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// What proves a record final on a chain run behind CometBFT, as `log_getProof` with `finality`
/// serves it: the state proofs and the record under the state root CometBFT's header `height`
/// carries as its `app_hash` (the state after block `height - 1`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CometEvidence {
    /// The CometBFT header whose `app_hash` is the state root the proofs are against.
    pub height: u64,
    /// The cluster's registration.
    pub cluster: ProvenValue,
    /// The partition's anchor.
    pub anchor: ProvenValue,
    /// The record's canonical encoding.
    pub record: Vec<u8>,
    /// Its inclusion proof against the anchored checkpoint.
    pub inclusion: InclusionProof<Blake3Merkle>,
}

/// Why a CometBFT light block is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CometLightError {
    /// The genesis cannot be a CometBFT trust root.
    #[error("genesis: {0}")]
    Genesis(String),
    /// The served header or validators do not parse.
    #[error("light block: {0}")]
    Malformed(String),
    /// Another height than asked for.
    #[error("header at height {got}, {expected} asked for")]
    WrongHeight {
        /// Asked for.
        expected: u64,
        /// Served.
        got: u64,
    },
    /// Too little of the trusted validators' power signed it.
    #[error("not enough trust: {0}")]
    NotEnoughTrust(String),
    /// CometBFT's rules refuse it (signatures, validator hashes, chain, time, ...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// An `app_hash` that is not a 32-byte state root.
    #[error("app hash of {0} bytes, where a state root has 32")]
    AppHash(usize),
}

/// The client's trust root: the genesis file's chain, time and validators, as CometBFT's
/// genesis has them (`pyralog cometbft-home` writes it from the genesis file).
#[derive(Debug, Clone)]
pub struct CometTrust {
    chain_id: ChainId,
    /// The genesis time less 1 ms: block 1 carries the genesis time itself, and CometBFT's rules
    /// want a trusted time strictly before it.
    time: Time,
    validators: Set,
    trusting_period: Duration,
}

impl CometTrust {
    /// Trust in the genesis of `chain_id`: its time (`genesisTimeMs`, CometBFT's
    /// `genesis_time`), its validators, and how long that trust lasts (none: a set that never
    /// changes, trusted for a century).
    pub fn genesis(
        chain_id: &str,
        genesis_time_ms: u64,
        validators: &[Validator],
        trusting_period_ms: Option<u64>,
    ) -> Result<CometTrust, CometLightError> {
        let bad = |e: String| CometLightError::Genesis(e);
        let before = genesis_time_ms.checked_sub(1).ok_or_else(|| bad("no genesis time".into()))?;
        let time = Time::from_unix_timestamp((before / 1000) as i64, (before % 1000) as u32 * 1_000_000)
            .map_err(|e| bad(e.to_string()))?;
        let validators = validators
            .iter()
            .map(|v| {
                let key = PublicKey::from_raw_ed25519(v.key.as_bytes())
                    .ok_or_else(|| bad(format!("validator {} is not an ed25519 key", v.key)))?;
                let power = vote::Power::try_from(v.power).map_err(|e| bad(e.to_string()))?;
                Ok(Info::new(key, power))
            })
            .collect::<Result<Vec<_>, CometLightError>>()?;
        Ok(CometTrust {
            chain_id: ChainId::try_from(chain_id.to_owned()).map_err(|e| bad(e.to_string()))?,
            time,
            validators: Set::without_proposer(validators),
            trusting_period: trusting_period_ms.map_or(FOREVER, Duration::from_millis),
        })
    }

    /// Trust in the genesis a light client's state file holds (`light sync` wrote it from the
    /// genesis file: chain id, genesis time, validators, trusting period).
    pub fn from_head(head: &TrustedHead) -> Result<CometTrust, CometLightError> {
        CometTrust::genesis(&head.chain_id, head.time_ms, &head.next_validators, head.trusting_period_ms)
    }
}

/// A CometBFT light block as `chain_getCometLightBlock` serves it: CometBFT's own JSON of the
/// signed header (`/commit`) and of the header's validators (`/validators`).
pub fn parse_light_block(answer: &serde_json::Value) -> Result<(SignedHeader, Set), CometLightError> {
    let malformed = |what: &str, e: serde_json::Error| CometLightError::Malformed(format!("{what}: {e}"));
    let signed: SignedHeader =
        serde_json::from_value(answer["signedHeader"].clone()).map_err(|e| malformed("signedHeader", e))?;
    let validators: Vec<Info> =
        serde_json::from_value(answer["validators"].clone()).map_err(|e| malformed("validators", e))?;
    Ok((signed, Set::without_proposer(validators)))
}

/// Verifies CometBFT's header at `height` (signed by more than 1/3 of the trusted genesis
/// validators' power and more than 2/3 of its own set's, which hashes to the header's
/// `validators_hash`) at the client's clock `now_ms`; returns its `app_hash`.
pub fn verify_header(
    trust: &CometTrust,
    height: u64,
    signed: &SignedHeader,
    validators: &Set,
    now_ms: u64,
) -> Result<[u8; 32], CometLightError> {
    let got = signed.header.height.value();
    if got != height {
        return Err(CometLightError::WrongHeight { expected: height, got });
    }
    let trusted = TrustedBlockState {
        chain_id: &trust.chain_id,
        header_time: trust.time,
        height: Height::try_from(0u64).map_err(|e| CometLightError::Genesis(e.to_string()))?,
        next_validators: &trust.validators,
        next_validators_hash: trust.validators.hash(),
    };
    let untrusted = UntrustedBlockState { signed_header: signed, validators, next_validators: None };
    let options = Options {
        trust_threshold: TrustThreshold::ONE_THIRD,
        trusting_period: trust.trusting_period,
        clock_drift: CLOCK_DRIFT,
    };
    let now = Time::from_unix_timestamp((now_ms / 1000) as i64, (now_ms % 1000) as u32 * 1_000_000)
        .map_err(|e| CometLightError::Invalid(format!("clock: {e}")))?;
    match ProdVerifier::default().verify_update_header(untrusted, trusted, &options, now) {
        Verdict::Success => {}
        Verdict::NotEnoughTrust(tally) => return Err(CometLightError::NotEnoughTrust(tally.to_string())),
        Verdict::Invalid(detail) => return Err(CometLightError::Invalid(detail.to_string())),
    }
    let app_hash = signed.header.app_hash.as_bytes();
    app_hash.try_into().map_err(|_| CometLightError::AppHash(app_hash.len()))
}

/// Verifies `evidence` for `query` with CometBFT's header `evidence.height` and its validators:
/// the header under the trusted genesis, then the record path under its `app_hash`. Returns the
/// anchored checkpoint.
#[allow(clippy::too_many_arguments)]
pub fn verify_finality_comet(
    trust: &CometTrust,
    signed: &SignedHeader,
    validators: &Set,
    query: &RecordQuery,
    evidence: &CometEvidence,
    trusted_anchor: Option<&Checkpoint>,
    consistency: Option<&ConsistencyProof<Blake3Merkle>>,
    now_ms: u64,
) -> Result<Checkpoint, ChainLightError> {
    let root = verify_header(trust, evidence.height, signed, validators, now_ms)?;
    let state = AnchoredState {
        cluster: &evidence.cluster,
        anchor: &evidence.anchor,
        record: &evidence.record,
        inclusion: &evidence.inclusion,
    };
    verify_under_state_root(&root, query, &state, trusted_anchor, consistency)
}
