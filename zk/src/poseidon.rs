//! Poseidon on BN254's scalar field: the hash of the Groth16 tree.
//!
//! **Parameters** (pinned by tests): width 3 (rate 2, capacity 1), S-box x^5, 8 full and 57
//! partial rounds, round constants and MDS matrix from arkworks' `find_poseidon_ark_and_mds`
//! (the Grain LFSR of the Poseidon paper's reference script, 254-bit prime, no skipped matrices).
//! These are the permutation constants circomlib uses for 3 inputs (a test checks the first
//! round constant against circomlib's); the *sponge* is arkworks' (capacity element first, the
//! output is the first rate element), so digests differ from circomlib's `Poseidon(2)`, which
//! puts the inputs after a zero capacity element and outputs element 0 of the state.
//!
//! **Domain separation**: every hash absorbs a tag first (a small field element), so leaves,
//! inner nodes, empty slots and value commitments never collide across roles:
//! - value commitment `Poseidon(TAG_VALUE, value, blinding)`;
//! - leaf `Poseidon(TAG_LEAF, key, commitment)`;
//! - inner node `Poseidon(TAG_NODE, left, right)`;
//! - empty slot `Poseidon(TAG_EMPTY)`.

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

/// Poseidon over `tag` followed by `inputs`, one output element: arkworks' duplex sponge
/// (absorb into the rate, permute when it is full and more comes; squeeze permutes once and
/// returns the first rate element), computed with [`permute`] on a fixed-size state.
pub fn hash_tagged(tag: u64, inputs: &[Fr]) -> Fr {
    let mut state = [Fr::from(0u64); WIDTH];
    let mut next = 0;
    for element in std::iter::once(Fr::from(tag)).chain(inputs.iter().copied()) {
        if next == RATE {
            permute(&mut state);
            next = 0;
        }
        state[CAPACITY + next] += element;
        next += 1;
    }
    permute(&mut state);
    state[CAPACITY]
}

/// State elements: capacity first, then the rate.
const WIDTH: usize = RATE + CAPACITY;
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

fn apply(m: &Matrix, x: &[Fr; WIDTH]) -> [Fr; WIDTH] {
    std::array::from_fn(|i| (0..WIDTH).map(|k| m[i][k] * x[k]).sum())
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
            carry = apply(&mds, &rest);
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
/// multiply by the MDS matrix; here with the partial rounds rearranged ([`Constants`]) and
/// without the sponge's per-hash configuration copy and per-round allocations.
pub fn permute(state: &mut [Fr; WIDTH]) {
    let constants = constants();
    let half = FULL_ROUNDS / 2;
    let full_round = |state: &mut [Fr; WIDTH], ark: &[Fr; WIDTH], mds: &Matrix| {
        for (x, c) in state.iter_mut().zip(ark) {
            *x = pow5(*x + c);
        }
        *state = apply(mds, state);
    };
    for (round, ark) in constants.full[..half].iter().enumerate() {
        let mds = if round + 1 == half { &constants.mds_into_partial } else { &constants.mds };
        full_round(state, ark, mds);
    }
    for (c, sparse) in constants.partial.iter().zip(&constants.sparse) {
        let x0 = pow5(state[0] + c);
        let first = sparse.row[0] * x0 + sparse.row[1] * state[1] + sparse.row[2] * state[2];
        state[1] += sparse.column[0] * x0;
        state[2] += sparse.column[1] * x0;
        state[0] = first;
    }
    for ark in &constants.full[half..] {
        full_round(state, ark, &constants.mds);
    }
}

fn pow5(x: Fr) -> Fr {
    let x4 = x.square().square();
    x4 * x
}

/// The commitment to a value with a blinding factor.
pub fn value_commitment(value: Fr, blinding: Fr) -> Fr {
    hash_tagged(TAG_VALUE, &[value, blinding])
}

/// A leaf: a key and a value commitment.
pub fn leaf(key: Fr, commitment: Fr) -> Fr {
    hash_tagged(TAG_LEAF, &[key, commitment])
}

/// An inner node.
pub fn node(left: Fr, right: Fr) -> Fr {
    hash_tagged(TAG_NODE, &[left, right])
}

/// The digest of an empty slot.
pub fn empty() -> Fr {
    hash_tagged(TAG_EMPTY, &[])
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
