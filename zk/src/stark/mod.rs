//! STARKs (Winterfell 0.13) that appending a batch of leaves moved the Rescue tree from one
//! root to another: public old root, old size, leaf count, batch digest and new root; anyone
//! checks the transition without replaying the batch or trusting the prover.
//!
//! These proofs are **not zero-knowledge**: Winterfell adds no masking, so a proof can leak the
//! leaves, which the digest names anyway. Treat the batch as public. The proof is transparent
//! (no trusted setup) and rests on hashes only (BLAKE3 for commitments), so it is plausibly
//! post-quantum. The arithmetization is described in `air.rs`.

mod air;
mod memory;
mod round;
mod trace;

pub use air::{AppendStatement, leaf_cycles, trace_rows};

use winterfell::{AcceptableOptions, BatchingMethod, FieldExtension, Proof, ProofOptions, Prover};

use crate::RescueTree;
use crate::rescue::RescueDigest;
use crate::tree::{MAX_DEPTH, TreeError};
use trace::{BatchProver, CommitmentHash};

/// Columns of an append trace.
#[doc(hidden)]
pub const TRACE_WIDTH: usize = air::WIDTH;

/// The conjectured security, in bits, below which a verifier refuses a proof.
pub const MIN_SECURITY_BITS: u32 = 96;

/// The options proofs are made with: 28 queries at blowup 8 and 16 bits of grinding over the
/// quadratic extension of the 64-bit field, 99 bits of conjectured security.
pub fn proof_options() -> ProofOptions {
    ProofOptions::new(
        28,
        8,
        16,
        FieldExtension::Quadratic,
        8,
        255,
        BatchingMethod::Linear,
        BatchingMethod::Linear,
    )
}

/// Why a proof was not made or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StarkError {
    /// A batch of no leaves.
    #[error("an append batch needs at least one leaf")]
    EmptyBatch,
    /// The STARK covers depth-32 trees only.
    #[error("append proofs cover depth-{MAX_DEPTH} trees, not depth {0}")]
    WrongDepth(usize),
    /// The batch would fill the tree's 2^32 slots or run past them.
    #[error("{count} leaves at size {old_size} do not leave the tree short of 2^32 leaves")]
    TooLarge {
        /// Leaves before the batch.
        old_size: u64,
        /// Leaves in the batch.
        count: u64,
    },
    /// Sizes the tree does not have.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The proof does not prove the statement.
    #[error("append proof rejected: {0}")]
    Rejected(String),
    /// Bytes that are not a proof.
    #[error("malformed append proof: {0}")]
    Malformed(String),
    /// The prover failed on valid input (a bug).
    #[error("append prover failed: {0}")]
    Internal(String),
}

/// A proof for an [`AppendStatement`].
#[derive(Debug, Clone)]
pub struct AppendProof(Proof);

impl AppendProof {
    /// The proof's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes()
    }

    /// Reads a proof; the bytes must be exactly one proof's encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StarkError> {
        // Winterfell's decoder asserts on some invalid option values (a blowup of 3, no
        // queries) instead of returning an error; untrusted bytes must not panic the caller.
        let decoded = std::panic::catch_unwind(|| Proof::from_bytes(bytes))
            .map_err(|_| StarkError::Malformed("invalid proof options or trace shape".into()))?;
        let proof = decoded.map_err(|e| StarkError::Malformed(e.to_string()))?;
        if proof.to_bytes() != bytes {
            return Err(StarkError::Malformed("not a canonical encoding (trailing bytes?)".into()));
        }
        Ok(AppendProof(proof))
    }

    /// Columns of an append trace.
    #[doc(hidden)]
    pub const TRACE_WIDTH: usize = air::WIDTH;

    /// The conjectured security of the options the proof was made with, in bits.
    pub fn security_bits(&self) -> u32 {
        self.0.conjectured_security::<CommitmentHash>().bits()
    }
}

/// Proves that appending leaves `from_size..to_size` of `tree` moved its root from the one at
/// `from_size` to the one at `to_size`.
pub fn prove_appends(
    tree: &RescueTree,
    from_size: u64,
    to_size: u64,
) -> Result<(AppendStatement, AppendProof), StarkError> {
    prove_appends_with(tree, from_size, to_size, proof_options())
}

/// A dishonest prover's change to the honest trace (tests see that the AIR catches it: the
/// proof must not verify).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Tamper {
    /// One main-trace cell (column, row) changed after the trace is built.
    Cell(usize, usize),
    /// The frontier entry at this level replaced after the old root's climb, the trace built
    /// consistently on it (every hash recomputed): only the memory can tell.
    Frontier(usize),
    /// The leaves at these positions merge this many times instead of their positions'
    /// trailing ones (the rest of the trace built consistently, the shifted size a field
    /// element): only the memory can tell when the cycles add up.
    Merges([(u64, usize); 2]),
}

/// [`prove_appends`] by a dishonest prover; the statement carries the roots its trace reached.
#[doc(hidden)]
pub fn prove_tampered(
    tree: &RescueTree,
    from_size: u64,
    to_size: u64,
    tamper: Tamper,
) -> Result<(AppendStatement, AppendProof), StarkError> {
    prove_inner(tree, from_size, to_size, proof_options(), Some(tamper))
}

/// [`prove_appends`] with other options (tests prove with weak ones to see them refused).
#[doc(hidden)]
pub fn prove_appends_with(
    tree: &RescueTree,
    from_size: u64,
    to_size: u64,
    options: ProofOptions,
) -> Result<(AppendStatement, AppendProof), StarkError> {
    prove_inner(tree, from_size, to_size, options, None)
}

fn prove_inner(
    tree: &RescueTree,
    from_size: u64,
    to_size: u64,
    options: ProofOptions,
    tamper: Option<Tamper>,
) -> Result<(AppendStatement, AppendProof), StarkError> {
    if tree.depth() != MAX_DEPTH {
        return Err(StarkError::WrongDepth(tree.depth()));
    }
    let old_root = tree.root_at(from_size)?;
    let new_root = tree.root_at(to_size)?;
    if to_size <= from_size {
        return Err(StarkError::EmptyBatch);
    }
    let leaves: Vec<RescueDigest> =
        (from_size..to_size).map(|index| tree.leaf(index).expect("below the tree's size")).collect();
    let siblings = tree.append_path(from_size)?.siblings;
    let proved = prove_parts(from_size, &siblings, &leaves, options, tamper)?;
    let honest = tamper.is_none();
    if honest && (proved.0.old_root != old_root || proved.0.new_root != new_root) {
        return Err(StarkError::Internal("the trace's roots differ from the tree's".into()));
    }
    Ok(proved)
}

/// Proves appending `leaves` at `old_size` to the depth-32 tree whose next slot has `siblings`
/// (its append path at `old_size`, e.g. read from a database). The statement's roots are the
/// ones the siblings lead to; the verifier compares them with certified ones.
pub fn prove_batch(
    old_size: u64,
    siblings: &[RescueDigest],
    leaves: &[RescueDigest],
) -> Result<(AppendStatement, AppendProof), StarkError> {
    prove_parts(old_size, siblings, leaves, proof_options(), None)
}

fn prove_parts(
    old_size: u64,
    siblings: &[RescueDigest],
    leaves: &[RescueDigest],
    options: ProofOptions,
    tamper: Option<Tamper>,
) -> Result<(AppendStatement, AppendProof), StarkError> {
    if siblings.len() != MAX_DEPTH {
        return Err(StarkError::WrongDepth(siblings.len()));
    }
    let count = leaves.len() as u64;
    if count == 0 {
        return Err(StarkError::EmptyBatch);
    }
    check_fits(old_size, count)?;
    let mut built = trace::build(old_size, siblings, leaves, tamper).map_err(StarkError::Internal)?;
    if let Some(Tamper::Cell(column, row)) = tamper {
        built.columns[column][row] += winterfell::math::fields::f64::BaseElement::new(1);
    }
    let statement = AppendStatement {
        old_root: built.old_root,
        old_size,
        count,
        batch_digest: built.batch_digest,
        new_root: built.new_root,
    };
    let proof = BatchProver { options, statement }
        .prove(trace::AppendTrace::new(built.columns, built.accesses))
        .map_err(|e| StarkError::Internal(e.to_string()))?;
    Ok((statement, AppendProof(proof)))
}

/// Checks `proof` against `statement`, demanding [`MIN_SECURITY_BITS`] of conjectured security.
pub fn verify_appends(statement: &AppendStatement, proof: &AppendProof) -> Result<(), StarkError> {
    if statement.count == 0 {
        return Err(StarkError::EmptyBatch);
    }
    check_fits(statement.old_size, statement.count)?;
    // The AIR places its assertions by the count; a trace of another shape is refused before
    // Winterfell sees it.
    let shape = proof.0.trace_info();
    let rows = air::trace_rows(statement.old_size, statement.count).expect("a batch that fits");
    let expected = (rows, air::WIDTH, memory::AUX_WIDTH, memory::RANDS);
    let found = (
        shape.length() as u64,
        shape.main_trace_width(),
        shape.aux_segment_width(),
        shape.get_num_aux_segment_rand_elements(),
    );
    if found != expected {
        return Err(StarkError::Rejected(format!(
            "trace of (rows, columns, auxiliary columns, random elements) {found:?}, expected {expected:?}"
        )));
    }
    // Winterfell asserts the blowup covers the constraint degrees when it builds the AIR.
    let blowup = proof.0.options().blowup_factor();
    if blowup < air::min_blowup() {
        return Err(StarkError::Rejected(format!(
            "blowup factor {blowup} is below the constraints' {}",
            air::min_blowup()
        )));
    }
    let acceptable = AcceptableOptions::MinConjecturedSecurity(MIN_SECURITY_BITS);
    // The checks above cover the assertions known to be reachable from a decoded proof; a
    // panic from one not known is still a rejection of that proof, not the caller's crash.
    std::panic::catch_unwind(|| {
        winterfell::verify::<
            air::AppendAir,
            CommitmentHash,
            winter_crypto::DefaultRandomCoin<CommitmentHash>,
            winter_crypto::MerkleTree<CommitmentHash>,
        >(proof.0.clone(), *statement, &acceptable)
    })
    .map_err(|_| StarkError::Rejected("the verifier refused the proof's parameters".into()))?
    .map_err(|e| StarkError::Rejected(e.to_string()))
}

/// The batch must leave the tree short of full (2^32 leaves), so that every append stores its
/// node in the frontier.
fn check_fits(old_size: u64, count: u64) -> Result<(), StarkError> {
    let fits = old_size.checked_add(count).is_some_and(|end| end < 1u64 << MAX_DEPTH);
    if fits { Ok(()) } else { Err(StarkError::TooLarge { old_size, count }) }
}
