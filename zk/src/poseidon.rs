//! Poseidon on BN254's scalar field: the hash of the Groth16 tree.
//!
//! **Parameters** (pinned by tests): width 3 (rate 2, capacity 1), S-box x^5, 8 full and 57
//! partial rounds, round constants and MDS matrix from arkworks' `find_poseidon_ark_and_mds`
//! (the Grain LFSR of the Poseidon paper's reference script, 254-bit prime, no skipped matrices).
//! These are the permutation constants circomlib uses for 3 inputs (a test checks the first
//! round constant and circomlib's own vector).
//!
//! **The hash** (tree format 2) is one permutation, a compression function: the state
//! `[tag, a, b]` (the domain tag in the capacity element, the two inputs in the rate) is
//! permuted and element 0 is the digest. That is circomlib's `PoseidonEx(2, 1)` with
//! `initialState = tag` (with tag 0, circomlib's `Poseidon(2)`), so a circom circuit can
//! recompute our trees. (Format 1 absorbed the tag as a third input, which took two
//! permutations per hash; the README's zk section has the history.)
//!
//! **Domain separation**: the tags keep leaves, inner nodes, empty slots and value commitments
//! apart, so no digest of one role is a digest of another:
//! - value commitment `Poseidon(TAG_VALUE; value, blinding)`;
//! - leaf `Poseidon(TAG_LEAF; key, commitment)`;
//! - inner node `Poseidon(TAG_NODE; left, right)`;
//! - empty slot `Poseidon(TAG_EMPTY; 0, 0)`.

use std::sync::OnceLock;

pub use ark_bn254::Fr;
use ark_crypto_primitives::sponge::poseidon::{PoseidonConfig, find_poseidon_ark_and_mds};
use ark_ff::{BigInteger, Field, PrimeField};
use ark_serialize::CanonicalDeserialize;

/// Full rounds.
pub const FULL_ROUNDS: usize = 8;
/// Partial rounds (57 for width 3 at 128-bit security, as in the Poseidon paper's table).
pub const PARTIAL_ROUNDS: usize = 57;
/// S-box exponent.
pub const ALPHA: u64 = 5;
/// Field elements absorbed per permutation.
pub const RATE: usize = 2;

/// Tag of value commitments.
pub const TAG_VALUE: u64 = 1;
/// Tag of leaves.
pub const TAG_LEAF: u64 = 2;
/// Tag of inner nodes.
pub const TAG_NODE: u64 = 3;
/// Tag of the empty slot.
pub const TAG_EMPTY: u64 = 4;

/// The pinned parameters.
pub fn config() -> &'static PoseidonConfig<Fr> {
    static CONFIG: OnceLock<PoseidonConfig<Fr>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let (ark, mds) = find_poseidon_ark_and_mds::<Fr>(
            u64::from(Fr::MODULUS_BIT_SIZE),
            RATE,
            FULL_ROUNDS as u64,
            PARTIAL_ROUNDS as u64,
            0,
        );
        PoseidonConfig::new(FULL_ROUNDS, PARTIAL_ROUNDS, ALPHA, mds, ark, RATE, 1)
    })
}

/// The tagged hash: `[tag, a, b]` permuted, element 0 out (see the module docs).
pub fn hash_tagged(tag: u64, inputs: [Fr; RATE]) -> Fr {
    let Ok(digest) = hash_tagged_elements(Fr::from(tag), inputs);
    digest
}

/// [`hash_tagged`] on any [`Element`] (the circuit's gadget passes the tag as a constant).
pub(crate) fn hash_tagged_elements<E: Element>(tag: E, [a, b]: [E; RATE]) -> Result<E, E::Error> {
    let [digest, _, _] = permute_elements([tag, a, b])?;
    Ok(digest)
}

/// What the permutation needs of a state element: a native field element, or a variable of the
/// circuit (`groth16::circuit`), so the circuit runs this same permutation code.
pub(crate) trait Element: Clone {
    /// Why an S-box could not be computed (a circuit's synthesis error; never, natively).
    type Error;
    /// `self + other`.
    fn plus(&self, other: &Self) -> Self;
    /// `self + c`.
    fn plus_constant(&self, c: Fr) -> Self;
    /// `c · self`.
    fn times_constant(&self, c: Fr) -> Self;
    /// `self^5` (three multiplications; constraints in a circuit).
    fn pow5(&self) -> Result<Self, Self::Error>;
}

impl Element for Fr {
    type Error = std::convert::Infallible;

    fn plus(&self, other: &Self) -> Self {
        *self + other
    }

    fn plus_constant(&self, c: Fr) -> Self {
        *self + c
    }

    fn times_constant(&self, c: Fr) -> Self {
        *self * c
    }

    fn pow5(&self) -> Result<Self, Self::Error> {
        let x4 = self.square().square();
        Ok(x4 * self)
    }
}

/// State elements: capacity first, then the rate.
pub(crate) const WIDTH: usize = RATE + CAPACITY;
/// Capacity elements.
const CAPACITY: usize = 1;

/// A state-sized matrix.
type Matrix = [[Fr; WIDTH]; WIDTH];

/// One partial round's linear layer after the factorization below: a dense first row, a first
/// column, and the identity elsewhere (5 multiplications instead of 9).
struct SparseRound {
    /// The first row: the new element 0 from every element.
    row: [Fr; WIDTH],
    /// The first column below the corner: what element 0 adds to each other element.
    column: [Fr; WIDTH - 1],
}

/// The pinned constants, rearranged for the partial-round optimization of the Poseidon paper
/// (appendix B), which computes the same permutation:
///
/// - *Constants*: in a partial round the S-box only touches element 0, so the constants of the
///   other elements are carried through the linear layer into the next round's (`M·(0, b)`);
///   each partial round keeps one scalar, and the carry lands in the first full round after them.
/// - *Matrices*: every partial round's matrix `L = [[l, wᵀ], [v, L̂]]` factors as `M''·M'` with
///   `M' = diag(1, L̂)` applied first and `M'' = [[l, wᵀL̂⁻¹], [v, I]]`. `M'` fixes element 0, so it
///   commutes with that round's S-box and scalar constant and moves into the round before
///   (`L ← M'·L`, factored in turn, back to front); the first partial round's `M'` lands in the
///   last full round before them.
struct Constants {
    /// The full rounds' constants, before and after the partial rounds (with the carry).
    full: Vec<[Fr; WIDTH]>,
    /// The MDS matrix.
    mds: Matrix,
    /// The last full round before the partial rounds multiplies by this instead (`M'₀·M`).
    mds_into_partial: Matrix,
    /// Each partial round's scalar constant.
    partial: Vec<Fr>,
    /// Each partial round's sparse linear layer.
    sparse: Vec<SparseRound>,
}

fn multiply(a: &Matrix, b: &Matrix) -> Matrix {
    std::array::from_fn(|i| std::array::from_fn(|j| (0..WIDTH).map(|k| a[i][k] * b[k][j]).sum()))
}

/// `m · x` for any [`Element`].
fn apply_to<E: Element>(m: &Matrix, x: &[E; WIDTH]) -> [E; WIDTH] {
    std::array::from_fn(|i| {
        let mut sum = x[0].times_constant(m[i][0]);
        for k in 1..WIDTH {
            sum = sum.plus(&x[k].times_constant(m[i][k]));
        }
        sum
    })
}

/// `L = M''·M'` (see [`Constants`]): the sparse `M''` and `M' = diag(1, L̂)`.
fn factor(l: &Matrix) -> (SparseRound, Matrix) {
    // L̂ is the lower-right 2x2 block; MDS submatrices (and their products with the diag(1, ·)
    // factors here) are invertible.
    let (a, b, c, d) = (l[1][1], l[1][2], l[2][1], l[2][2]);
    let det_inverse = (a * d - b * c).inverse().expect("an MDS submatrix is invertible");
    let inverse = [[d * det_inverse, -b * det_inverse], [-c * det_inverse, a * det_inverse]];
    let w = [l[0][1], l[0][2]];
    let row =
        [l[0][0], w[0] * inverse[0][0] + w[1] * inverse[1][0], w[0] * inverse[0][1] + w[1] * inverse[1][1]];
    let mut prime = [[Fr::from(0u64); WIDTH]; WIDTH];
    prime[0][0] = Fr::from(1u64);
    for i in 1..WIDTH {
        for j in 1..WIDTH {
            prime[i][j] = l[i][j];
        }
    }
    (SparseRound { row, column: [l[1][0], l[2][0]] }, prime)
}

fn constants() -> &'static Constants {
    static CONSTANTS: OnceLock<Constants> = OnceLock::new();
    CONSTANTS.get_or_init(|| {
        let config = config();
        let row = |r: &Vec<Fr>| -> [Fr; WIDTH] { std::array::from_fn(|i| r[i]) };
        let ark: Vec<[Fr; WIDTH]> = config.ark.iter().map(row).collect();
        let mds: Matrix = std::array::from_fn(|i| row(&config.mds[i]));
        let half = FULL_ROUNDS / 2;
        // Constants: carried forward through the partial rounds.
        let mut carry = [Fr::from(0u64); WIDTH];
        let mut partial = Vec::with_capacity(PARTIAL_ROUNDS);
        for k in &ark[half..half + PARTIAL_ROUNDS] {
            let k: [Fr; WIDTH] = std::array::from_fn(|i| k[i] + carry[i]);
            partial.push(k[0]);
            let mut rest = k;
            rest[0] = Fr::from(0u64);
            carry = apply_to(&mds, &rest);
        }
        let mut full: Vec<[Fr; WIDTH]> = ark[..half].to_vec();
        let after = ark[half + PARTIAL_ROUNDS];
        full.push(std::array::from_fn(|i| after[i] + carry[i]));
        full.extend_from_slice(&ark[half + PARTIAL_ROUNDS + 1..]);
        // Matrices: factored back to front.
        let mut sparse = Vec::with_capacity(PARTIAL_ROUNDS);
        let mut next_prime: Option<Matrix> = None;
        for _ in 0..PARTIAL_ROUNDS {
            let l = match &next_prime {
                Some(prime) => multiply(prime, &mds),
                None => mds,
            };
            let (round, prime) = factor(&l);
            sparse.push(round);
            next_prime = Some(prime);
        }
        sparse.reverse();
        let mds_into_partial = multiply(&next_prime.expect("partial rounds"), &mds);
        Constants { full, mds, mds_into_partial, partial, sparse }
    })
}

/// The Poseidon permutation (what arkworks' sponge applies): per round add the round
/// constants, apply x^5 to every element in full rounds and to the first in partial ones, then
/// multiply by the MDS matrix; here with the partial rounds rearranged ([`Constants`]).
pub fn permute(state: &mut [Fr; WIDTH]) {
    let Ok(permuted) = permute_elements(*state);
    *state = permuted;
}

/// [`permute`] on any [`Element`]: the one implementation, natively and in the circuit.
pub(crate) fn permute_elements<E: Element>(mut state: [E; WIDTH]) -> Result<[E; WIDTH], E::Error> {
    let constants = constants();
    let half = FULL_ROUNDS / 2;
    let full_round =
        |mut state: [E; WIDTH], ark: &[Fr; WIDTH], mds: &Matrix| -> Result<[E; WIDTH], E::Error> {
            for (x, c) in state.iter_mut().zip(ark) {
                *x = x.plus_constant(*c).pow5()?;
            }
            Ok(apply_to(mds, &state))
        };
    for (round, ark) in constants.full[..half].iter().enumerate() {
        let mds = if round + 1 == half { &constants.mds_into_partial } else { &constants.mds };
        state = full_round(state, ark, mds)?;
    }
    for (c, sparse) in constants.partial.iter().zip(&constants.sparse) {
        let [s0, s1, s2] = state;
        let x0 = s0.plus_constant(*c).pow5()?;
        let first = x0
            .times_constant(sparse.row[0])
            .plus(&s1.times_constant(sparse.row[1]))
            .plus(&s2.times_constant(sparse.row[2]));
        let s1 = s1.plus(&x0.times_constant(sparse.column[0]));
        let s2 = s2.plus(&x0.times_constant(sparse.column[1]));
        state = [first, s1, s2];
    }
    for ark in &constants.full[half..] {
        state = full_round(state, ark, &constants.mds)?;
    }
    Ok(state)
}

/// The commitment to a value with a blinding factor.
pub fn value_commitment(value: Fr, blinding: Fr) -> Fr {
    hash_tagged(TAG_VALUE, [value, blinding])
}

/// A leaf: a key and a value commitment.
pub fn leaf(key: Fr, commitment: Fr) -> Fr {
    hash_tagged(TAG_LEAF, [key, commitment])
}

/// An inner node.
pub fn node(left: Fr, right: Fr) -> Fr {
    hash_tagged(TAG_NODE, [left, right])
}

/// The digest of an empty slot.
pub fn empty() -> Fr {
    hash_tagged(TAG_EMPTY, [Fr::from(0u64); RATE])
}

/// The Poseidon tree's hasher.
#[derive(Debug, Clone, Copy)]
pub struct PoseidonHasher;

impl crate::tree::TreeHasher for PoseidonHasher {
    type Digest = Fr;

    fn node(left: &Fr, right: &Fr) -> Fr {
        node(*left, *right)
    }

    fn empty() -> Fr {
        empty()
    }
}

impl crate::tree::DigestCodec for PoseidonHasher {
    fn to_bytes(digest: &Fr) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&digest.into_bigint().to_bytes_le());
        out
    }

    fn from_bytes(bytes: &[u8; 32]) -> Option<Fr> {
        // Checked: a value at or above the modulus is not a canonical encoding.
        Fr::deserialize_compressed(&bytes[..]).ok()
    }
}

/// A byte string as a field element: BLAKE3 in key-derivation mode under `context`, 64 output
/// bytes reduced modulo the field order (the bias is below 2^-250).
pub fn field_from_bytes(context: &str, bytes: &[u8]) -> Fr {
    let mut wide = [0u8; 64];
    crate::derive_bytes(context, bytes, &mut wide);
    Fr::from_le_bytes_mod_order(&wide)
}

/// A record's fields as the Groth16 tree commits to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFields {
    /// The key (absent and empty keys differ).
    pub key: Fr,
    /// The value.
    pub value: Fr,
    /// The blinding (zero when the record carries none).
    pub blinding: Fr,
}

impl RecordFields {
    /// The fields of a record with `key`, `value` and an optional 32-byte `blinding` (the
    /// writer's random secret; records without one commit with blinding 0).
    pub fn of_record(key: Option<&[u8]>, value: &[u8], blinding: Option<&[u8; 32]>) -> Self {
        RecordFields {
            key: field_from_bytes("pyralog zk record key v1", &crate::key_encoding(key)),
            value: field_from_bytes("pyralog zk record value v1", value),
            blinding: blinding.map_or(Fr::from(0u64), |b| Fr::from_le_bytes_mod_order(b)),
        }
    }

    /// The record's leaf.
    pub fn leaf(&self) -> Fr {
        leaf(self.key, value_commitment(self.value, self.blinding))
    }
}
