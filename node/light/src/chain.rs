//! The chain light client's checks, pure (no I/O): following finalized headers from a trusted
//! one, and verifying a record's whole path to finality:
//!
//! record -> partition root (inclusion proof) -> the anchored checkpoint, certified by the
//! cluster's registered members -> the chain state (two state proofs: the anchor and the
//! cluster's registration) -> the state root in a header -> the header's commit certificate,
//! signed by more than 2/3 of a validator set the client trusts.
//!
//! Headers are followed the way CometBFT's light client does: *sequentially* (each header's
//! validators must be the set its parent announced in `next_validators_hash`) or by *skipping*
//! (a later header is trusted when validators holding more than 1/3 of the trusted set's power signed
//! it, so at least one honest validator vouches for the change, and more than 2/3 of its own set did).
//!
//! On a Proof-of-Stake chain, trust in a header lasts a *trusting period* shorter than the
//! unbonding period: within it, validators that signed a conflicting header could still be
//! slashed; after it, they may have unbonded and could sign anything (a long-range attack), so
//! an expired trusted head is refused and the client must start again from a header it trusts
//! out of band.

use pyralog_consensus_types::vote::{FinalityError, FinalityProof};
use pyralog_consensus_types::{Engine, Validator, ValidatorSet};
use pyralog_crypto::light::{LightError, RecordEvidence, RecordQuery, verify_record};
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof, InclusionProof};
use pyralog_crypto::{Checkpoint, Digest, MemberSet};
use serde::{Deserialize, Serialize};

use pyralog_chain::block::{Header, MAX_CLOCK_DRIFT_MS, validators_hash};
use pyralog_chain::proof::{StateProof, StateProofError, verify_state_proof};
use pyralog_chain::values::{Anchor, ClusterRecord, anchor_key, cluster_key};

/// What the client trusts: the latest header it verified (or the genesis, at height 0) and the
/// validators that sign the next height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedHead {
    /// The chain.
    pub chain_id: String,
    /// The trusted height (0: genesis).
    pub height: u64,
    /// The trusted block's id (zero at genesis).
    pub block_id: Digest,
    /// Its time (0 at genesis).
    pub time_ms: u64,
    /// The validators of height `height + 1`.
    pub next_validators: Vec<Validator>,
    /// The engine the chain runs (its genesis names it); headers and finality proofs of another
    /// are refused.
    #[serde(default)]
    pub engine: Engine,
    /// How long after its time (ms) this head may be trusted (none: forever, for chains whose
    /// validators never change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusting_period_ms: Option<u64>,
}

impl TrustedHead {
    /// Trust in the genesis of a chain that runs `engine`.
    pub fn genesis(chain_id: &str, engine: Engine, validators: &ValidatorSet) -> Self {
        TrustedHead {
            chain_id: chain_id.into(),
            height: 0,
            block_id: Digest([0; 32]),
            time_ms: 0,
            next_validators: validators.validators().to_vec(),
            engine,
            trusting_period_ms: None,
        }
    }

    /// The same trust, lasting `period_ms` after `time_ms` (a genesis head's time is the chain's
    /// start, `genesisTimeMs`).
    pub fn with_trusting_period(mut self, time_ms: u64, period_ms: Option<u64>) -> Self {
        if self.height == 0 {
            self.time_ms = time_ms;
        }
        self.trusting_period_ms = period_ms;
        self
    }

    /// Refuses a head whose trusting period is over at `now_ms`.
    pub fn check_fresh(&self, now_ms: u64) -> Result<(), ChainLightError> {
        match self.trusting_period_ms {
            Some(period) if now_ms >= self.time_ms.saturating_add(period) => {
                Err(ChainLightError::TrustExpired {
                    height: self.height,
                    expired_at: self.time_ms.saturating_add(period),
                    now: now_ms,
                })
            }
            _ => Ok(()),
        }
    }

    fn next_set(&self) -> Result<ValidatorSet, ChainLightError> {
        ValidatorSet::new(self.next_validators.iter().copied())
            .map_err(|e| ChainLightError::BadValidators(e.to_string()))
    }
}

/// Why the client refused what a server said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainLightError {
    /// CometBFT's header for the state root does not verify (a chain run behind CometBFT).
    #[error("CometBFT header: {0}")]
    Comet(#[from] crate::comet::CometLightError),
    /// A header of another chain.
    #[error("header is for chain {got:?}, the client follows {expected:?}")]
    WrongChain {
        /// The trusted chain.
        expected: String,
        /// The header's.
        got: String,
    },
    /// A header of a block decided by another engine than the chain's.
    #[error("header names the {got:?} engine, the chain runs {expected}")]
    WrongEngine {
        /// The chain's engine.
        expected: Engine,
        /// The header's.
        got: String,
    },
    /// Not the height asked for, or not after the trusted one.
    #[error("header at height {got} where height {expected} was expected")]
    WrongHeight {
        /// Expected.
        expected: u64,
        /// Served.
        got: u64,
    },
    /// A header that should be the trusted head's block is another.
    #[error("header {got} is not the trusted block {expected}")]
    NotTrustedBlock {
        /// The trusted block.
        expected: Digest,
        /// The header's block id.
        got: Digest,
    },
    /// The header does not link to the trusted block.
    #[error("header's parent {got} is not the trusted block {expected}")]
    WrongParent {
        /// The trusted block.
        expected: Digest,
        /// The header's parent.
        got: Digest,
    },
    /// The header's validators are not the set the trusted chain committed to.
    #[error(
        "validator set changed to {got} without the previous set committing it (trusted next set {expected})"
    )]
    ValidatorSetNotCommitted {
        /// The hash the trusted header announced.
        expected: Digest,
        /// The header's.
        got: Digest,
    },
    /// The validators served do not hash to what the header says.
    #[error("the validators served hash to {got}, the header says {expected}")]
    ValidatorsMismatch {
        /// The header's hash.
        expected: Digest,
        /// The served set's.
        got: Digest,
    },
    /// A validator set that cannot be (empty, zero power, repeated keys).
    #[error("invalid validator set: {0}")]
    BadValidators(String),
    /// The finality proof does not finalize the header (another engine's; a certificate of at
    /// most 2/3, of non-validators, forged).
    #[error(transparent)]
    Finality(#[from] FinalityError),
    /// Skipping: too little of the trusted set signed the new header.
    #[error(
        "validator set change not committed by the previous set: trusted validators with power {signed} of {total} signed (skipping needs 1/3)"
    )]
    NotEnoughTrust {
        /// Trusted power that signed.
        signed: u64,
        /// The trusted set's total.
        total: u64,
    },
    /// A header whose time does not move forward.
    #[error("header time {got} is not after the trusted time {trusted}")]
    TimeNotMonotonic {
        /// Trusted time.
        trusted: u64,
        /// Header time.
        got: u64,
    },
    /// The trusted head is older than the trusting period: its validators may have unbonded.
    #[error(
        "trust in height {height} expired at {expired_at} (now {now}): its validators may have unbonded; start from a recent header trusted out of band"
    )]
    TrustExpired {
        /// The trusted height.
        height: u64,
        /// When its trust ended (ms).
        expired_at: u64,
        /// The client's clock (ms).
        now: u64,
    },
    /// A header from the future: its time is ahead of the client's clock by more than the drift
    /// validators allow.
    #[error("header time {got} is ahead of this clock ({now}) by more than {MAX_CLOCK_DRIFT_MS} ms")]
    HeaderFromFuture {
        /// Header time.
        got: u64,
        /// The client's clock.
        now: u64,
    },
    /// A state proof that does not match the header's state root.
    #[error("{what}: {source}")]
    StateProof {
        /// Which value.
        what: &'static str,
        /// Why.
        source: StateProofError,
    },
    /// A state value the client cannot decode, or absent.
    #[error("{0}")]
    State(String),
    /// The record, its anchored checkpoint or the checkpoint's history.
    #[error(transparent)]
    Record(#[from] LightError),
    /// A Proof-of-Work header the client's chain of seals does not hold `k` deep.
    #[error(transparent)]
    Work(#[from] crate::work::WorkLightError),
}

/// Checks that `proof`, a proof of `engine`, finalizes `header` under `validators` (which must be
/// the header's set), verifying every signature (skipping then counts the trusted validators among
/// the signers).
pub fn verify_commit(
    engine: Engine,
    header: &Header,
    proof: &FinalityProof,
    validators: &ValidatorSet,
) -> Result<u64, ChainLightError> {
    let hash = validators_hash(validators.validators());
    if hash != header.validators_hash {
        return Err(ChainLightError::ValidatorsMismatch { expected: header.validators_hash, got: hash });
    }
    Ok(proof.verify(engine, &header.chain_id, header.height, &header.block_id(), validators)?)
}

/// The trusted head after `header`, given the set it announces for its next height.
fn advance(
    trusted: &TrustedHead,
    header: &Header,
    signing: &ValidatorSet,
    next: Option<&[Validator]>,
) -> Result<TrustedHead, ChainLightError> {
    let next_validators = match next {
        Some(next) => next.to_vec(),
        None => signing.validators().to_vec(),
    };
    let hash = validators_hash(&next_validators);
    if hash != header.next_validators_hash {
        return Err(ChainLightError::ValidatorsMismatch { expected: header.next_validators_hash, got: hash });
    }
    Ok(TrustedHead {
        chain_id: trusted.chain_id.clone(),
        height: header.height,
        block_id: header.block_id(),
        time_ms: header.time_ms,
        next_validators,
        engine: trusted.engine,
        trusting_period_ms: trusted.trusting_period_ms,
    })
}

fn check_chain(trusted: &TrustedHead, header: &Header) -> Result<(), ChainLightError> {
    if header.chain_id != trusted.chain_id {
        return Err(ChainLightError::WrongChain {
            expected: trusted.chain_id.clone(),
            got: header.chain_id.clone(),
        });
    }
    if header.engine != trusted.engine.name() {
        return Err(ChainLightError::WrongEngine { expected: trusted.engine, got: header.engine.clone() });
    }
    Ok(())
}

fn check_chain_and_time(trusted: &TrustedHead, header: &Header, now_ms: u64) -> Result<(), ChainLightError> {
    check_chain(trusted, header)?;
    trusted.check_fresh(now_ms)?;
    if header.time_ms <= trusted.time_ms {
        return Err(ChainLightError::TimeNotMonotonic { trusted: trusted.time_ms, got: header.time_ms });
    }
    if header.time_ms > now_ms.saturating_add(MAX_CLOCK_DRIFT_MS) {
        return Err(ChainLightError::HeaderFromFuture { got: header.time_ms, now: now_ms });
    }
    Ok(())
}

/// Sequential step: `header` is the trusted height plus one, links to the trusted block, is
/// signed by the set the trusted header announced, and `next` (required when the header
/// announces a different set) is the set it announces. `now_ms` is the client's clock (the
/// trusted head must be within its trusting period, the header not from the future). Returns
/// the new trusted head.
pub fn verify_adjacent(
    trusted: &TrustedHead,
    header: &Header,
    proof: &FinalityProof,
    next: Option<&[Validator]>,
    now_ms: u64,
) -> Result<TrustedHead, ChainLightError> {
    check_chain_and_time(trusted, header, now_ms)?;
    if header.height != trusted.height + 1 {
        return Err(ChainLightError::WrongHeight { expected: trusted.height + 1, got: header.height });
    }
    if header.parent != trusted.block_id {
        return Err(ChainLightError::WrongParent { expected: trusted.block_id, got: header.parent });
    }
    let set = committed_by_trusted_set(trusted, header, proof)?;
    advance(trusted, header, &set, next)
}

/// Checks that `header` is decided by the set the trusted head announced (its next
/// validators) and that `proof` (of the chain's engine) shows it final under that set; returns
/// the set.
fn committed_by_trusted_set(
    trusted: &TrustedHead,
    header: &Header,
    proof: &FinalityProof,
) -> Result<ValidatorSet, ChainLightError> {
    let set = trusted.next_set()?;
    let announced = validators_hash(set.validators());
    if header.validators_hash != announced {
        return Err(ChainLightError::ValidatorSetNotCommitted {
            expected: announced,
            got: header.validators_hash,
        });
    }
    // Signatures are checked until they make a quorum, as CometBFT's light client does.
    proof.verify_light(trusted.engine, &header.chain_id, header.height, &header.block_id(), &set)?;
    Ok(set)
}

/// Skipping step: `header` (above the trusted height) is signed by more than 2/3 of `validators` (its
/// own set, which must hash to its `validators_hash`) and by trusted validators holding more than 1/3
/// of the trusted set's power. `next` and `now_ms` as in [`verify_adjacent`].
pub fn verify_skipping(
    trusted: &TrustedHead,
    header: &Header,
    proof: &FinalityProof,
    validators: &[Validator],
    next: Option<&[Validator]>,
    now_ms: u64,
) -> Result<TrustedHead, ChainLightError> {
    check_chain_and_time(trusted, header, now_ms)?;
    if header.height <= trusted.height {
        return Err(ChainLightError::WrongHeight { expected: trusted.height + 1, got: header.height });
    }
    let trusted_set = trusted.next_set()?;
    let (signed, total) = trusted_power(proof, &trusted_set);
    if !trusted_set.is_one_third(signed) {
        return Err(ChainLightError::NotEnoughTrust { signed, total });
    }
    let set = ValidatorSet::new(validators.iter().copied())
        .map_err(|e| ChainLightError::BadValidators(e.to_string()))?;
    verify_commit(trusted.engine, header, proof, &set)?;
    advance(trusted, header, &set, next)
}

/// The power of the distinct trusted validators among the proof's signers, and the set's total.
/// Counts signers without checking signatures: [`verify_skipping`] verifies every signature of the
/// proof right after, so a header passes only if all of them verify.
fn trusted_power(proof: &FinalityProof, trusted: &ValidatorSet) -> (u64, u64) {
    let signed = proof.signers().iter().filter_map(|signer| trusted.power_of(signer)).sum();
    (signed, trusted.total_power())
}

/// A state value with its proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvenValue {
    /// The value (postcard), absent when the key has none.
    pub value: Option<Vec<u8>>,
    /// Its proof against the state root.
    pub proof: StateProof,
}

/// Everything that proves a record final, as `log_getProof` with `finality` serves it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinalityEvidence {
    /// The header whose state root holds the anchor (state version `height - 1`).
    pub header: Header,
    /// Its finality proof.
    pub finality: FinalityProof,
    /// The cluster's registration (its members certify checkpoints).
    pub cluster: ProvenValue,
    /// The partition's anchor.
    pub anchor: ProvenValue,
    /// The record's canonical encoding.
    pub record: Vec<u8>,
    /// Its inclusion proof against the anchored checkpoint.
    pub inclusion: InclusionProof<Blake3Merkle>,
}

fn proven<T: for<'de> Deserialize<'de>>(
    state_root: &[u8; 32],
    key: &[u8],
    proven: &ProvenValue,
    what: &'static str,
) -> Result<T, ChainLightError> {
    verify_state_proof(state_root, key, proven.value.as_deref(), &proven.proof)
        .map_err(|source| ChainLightError::StateProof { what, source })?;
    let bytes =
        proven.value.as_ref().ok_or_else(|| ChainLightError::State(format!("no {what} in the state")))?;
    postcard::from_bytes(bytes).map_err(|e| ChainLightError::State(format!("{what}: undecodable: {e}")))
}

/// Verifies `evidence` for `query` against the trusted head: the header must be signed by more than 2/3
/// of the trusted validators (a header under another set needs a `light sync` first); the
/// anchored checkpoint must extend `trusted_anchor`, the partition's last anchored checkpoint the
/// client saw (`consistency` proves it when it grew); the trusted head must be within its trusting
/// period at `now_ms`. Returns the anchored checkpoint.
pub fn verify_finality(
    trusted: &TrustedHead,
    query: &RecordQuery,
    evidence: &FinalityEvidence,
    trusted_anchor: Option<&Checkpoint>,
    consistency: Option<&ConsistencyProof<Blake3Merkle>>,
    now_ms: u64,
) -> Result<Checkpoint, ChainLightError> {
    let header = &evidence.header;
    check_chain(trusted, header)?;
    trusted.check_fresh(now_ms)?;
    committed_by_trusted_set(trusted, header, &evidence.finality)?;
    verify_anchored_record(query, evidence, trusted_anchor, consistency)
}

/// [`verify_finality`] on a Proof-of-Work chain: the header must be of the chain `seals`
/// follows and `k` seals deep in it (the SPV client's chain, [`crate::work`]); the record path
/// after it is the same.
pub fn verify_finality_work(
    seals: &crate::work::SealChain,
    chain_id: &str,
    query: &RecordQuery,
    evidence: &FinalityEvidence,
    trusted_anchor: Option<&Checkpoint>,
    consistency: Option<&ConsistencyProof<Blake3Merkle>>,
) -> Result<Checkpoint, ChainLightError> {
    let header = &evidence.header;
    if header.chain_id != chain_id {
        return Err(ChainLightError::WrongChain { expected: chain_id.into(), got: header.chain_id.clone() });
    }
    if header.engine != Engine::Pow.name() {
        return Err(ChainLightError::WrongEngine { expected: Engine::Pow, got: header.engine.clone() });
    }
    seals.check_final(header.height, &header.block_id())?;
    verify_anchored_record(query, evidence, trusted_anchor, consistency)
}

/// The record path under a header already trusted.
fn verify_anchored_record(
    query: &RecordQuery,
    evidence: &FinalityEvidence,
    trusted_anchor: Option<&Checkpoint>,
    consistency: Option<&ConsistencyProof<Blake3Merkle>>,
) -> Result<Checkpoint, ChainLightError> {
    let state = AnchoredState {
        cluster: &evidence.cluster,
        anchor: &evidence.anchor,
        record: &evidence.record,
        inclusion: &evidence.inclusion,
    };
    verify_under_state_root(&evidence.header.state_root.0, query, &state, trusted_anchor, consistency)
}

/// What proves a record under a trusted state root: the cluster's registration and the
/// partition's anchor in the state, and the record in the anchored checkpoint.
pub struct AnchoredState<'a> {
    /// The cluster's registration.
    pub cluster: &'a ProvenValue,
    /// The partition's anchor.
    pub anchor: &'a ProvenValue,
    /// The record's canonical encoding.
    pub record: &'a [u8],
    /// Its inclusion proof against the anchored checkpoint.
    pub inclusion: &'a InclusionProof<Blake3Merkle>,
}

/// The record path under a trusted state root: the cluster's registration and the partition's
/// anchor proven against it, then the record against the anchored checkpoint (which must
/// extend `trusted_anchor`). Returns the anchored checkpoint.
pub fn verify_under_state_root(
    state_root: &[u8; 32],
    query: &RecordQuery,
    state: &AnchoredState<'_>,
    trusted_anchor: Option<&Checkpoint>,
    consistency: Option<&ConsistencyProof<Blake3Merkle>>,
) -> Result<Checkpoint, ChainLightError> {
    let cluster: ClusterRecord =
        proven(state_root, &cluster_key(&query.cluster), state.cluster, "cluster registration")?;
    let anchor: Anchor = proven(
        state_root,
        &anchor_key(&query.cluster, &query.log, query.partition),
        state.anchor,
        "anchored checkpoint",
    )?;
    let members = MemberSet::equal(cluster.members.iter().copied())
        .map_err(|e| ChainLightError::State(format!("cluster members: {e}")))?;
    let record = RecordEvidence {
        record: state.record.to_vec(),
        proof: state.inclusion.clone(),
        certificate: anchor.certificate,
    };
    Ok(verify_record(query, &members, &record, trusted_anchor, consistency)?)
}
