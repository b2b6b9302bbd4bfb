//! The AIR of an append batch over the depth-32 Rescue tree.
//!
//! The trace is a sequence of 8-row *cycles*, each one Rescue permutation of the node hasher
//! (`H`; rows 0..7 are its state after 0..7 rounds). It runs the tree's incremental append: the
//! frontier `F` (the completed left subtree at each level, 32 digests) and the size's bits `B`
//! are registers, and `LVL` (one-hot) is the level of the node `X` a cycle works on.
//!
//! * **Old root** (32 cycles): from the empty slot at position `n`, climb to the root, hashing
//!   with `F[l]` where bit `l` of the size is set and with the empty subtree elsewhere. The
//!   result must be the public old root, which pins the frontier entries the batch builds on.
//! * **Leaves** (one or more cycles per leaf): the leaf enters at level 0; while the size's bit
//!   at the node's level is set, the cycle merges `H(F[l], X)` (a *merge*, `M`), clears the
//!   bit and, if the next level's bit is set too, *continues* (`C`) one level up. Otherwise the
//!   node is stored in `F` at the first clear level and that bit set: the size's counter went up
//!   by one. A leaf costs max(1, trailing ones of its position) cycles, about 1.5 on average.
//!   The batch hasher `G` absorbs each leaf in its first cycle (`LS`), chaining the digest `D`.
//! * **New root** (32 cycles): the same climb as the old root, over the new frontier.
//! * **Padding** to a power of two: more new-root climbs.
//!
//! Everything a cycle does follows from `LVL`, `B` and `F`, so the prover chooses only the old
//! frontier (pinned by the old root) and the leaves (pinned by the batch digest). The phase
//! boundaries are at rows the verifier computes from the old size and the count
//! ([`leaf_cycles`]); the public values are asserted there.

use std::ops::Range;

use winter_crypto::hashers::Rp64_256;
use winterfell::math::fields::f64::BaseElement;
use winterfell::math::{FieldElement, ToElements};
use winterfell::{
    Air, AirContext, Assertion, EvaluationFrame, ProofOptions, TraceInfo, TransitionConstraintDegree,
};

use crate::rescue::{RescueDigest, RescueHasher};
use crate::tree::{TreeHasher, empty_subtrees};

/// Elements of a Rescue state.
pub(super) const STATE: usize = 12;
/// Rounds of the permutation.
const ROUNDS: usize = 7;
/// Rows per permutation: the input and the state after each round.
pub(super) const CYCLE: usize = 8;
/// Levels of the tree.
pub(super) const DEPTH: usize = crate::tree::MAX_DEPTH;
/// Cycles of a climb from a leaf slot to the root.
pub(super) const CLIMB: usize = DEPTH;

/// The node hasher.
pub(super) const H: usize = 0;
/// The batch hasher.
pub(super) const G: usize = H + STATE;
/// The batch digest so far.
pub(super) const D: usize = G + STATE;
/// The node this cycle works on.
pub(super) const X: usize = D + 4;
/// Whether the size's bit at this level is set (the cycle merges with `F[l]`).
pub(super) const M: usize = X + 4;
/// Whether a leaf's climb continues one level up after this cycle.
pub(super) const C: usize = M + 1;
/// Whether this cycle is part of a root climb (not a leaf's).
pub(super) const RC: usize = C + 1;
/// Whether this cycle is a leaf's first (the batch hasher absorbs it).
pub(super) const LS: usize = RC + 1;
/// The level of `X`, one-hot.
pub(super) const LVL: usize = LS + 1;
/// The tree size's bits.
pub(super) const B: usize = LVL + DEPTH;
/// The frontier: level `l`'s digest at `F + 4 l`.
pub(super) const F: usize = B + DEPTH;
/// Columns of the trace.
pub(super) const WIDTH: usize = F + 4 * DEPTH;

/// A state's capacity, its first rate half (also the digest) and its second rate half.
pub(super) const CAPACITY: Range<usize> = 0..4;
pub(super) const LEFT: Range<usize> = 4..8;
pub(super) const RIGHT: Range<usize> = 8..12;

/// `merge`'s capacity: the first element is the input length, 8.
pub(super) fn merge_capacity() -> [BaseElement; 4] {
    [BaseElement::new(8), BaseElement::ZERO, BaseElement::ZERO, BaseElement::ZERO]
}

/// The public statement: appending `count` leaves whose chained digest is `batch_digest` to
/// the tree of `old_size` leaves and root `old_root` gives root `new_root`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendStatement {
    /// The root before the batch.
    pub old_root: RescueDigest,
    /// Leaves before the batch.
    pub old_size: u64,
    /// Leaves in the batch.
    pub count: u64,
    /// [`crate::rescue::batch_digest`] of the batch's leaves.
    pub batch_digest: RescueDigest,
    /// The root after the batch.
    pub new_root: RescueDigest,
}

impl ToElements<BaseElement> for AppendStatement {
    fn to_elements(&self) -> Vec<BaseElement> {
        let mut elements = self.old_root.as_elements().to_vec();
        elements.push(BaseElement::new(self.old_size));
        elements.push(BaseElement::new(self.count));
        elements.extend_from_slice(self.batch_digest.as_elements());
        elements.extend_from_slice(self.new_root.as_elements());
        elements
    }
}

/// Cycles the leaves of a batch of `count` at `old_size` take: max(1, trailing ones) per
/// position. The trailing ones sum to `count` plus the change in the size's popcount (each
/// append clears them and sets one bit); the positions without any are the even ones. `None`
/// when `old_size + count` overflows.
pub fn leaf_cycles(old_size: u64, count: u64) -> Option<u64> {
    let end = old_size.checked_add(count)?;
    let ones = count + u64::from(old_size.count_ones()) - u64::from(end.count_ones());
    let evens = end.div_ceil(2) - old_size.div_ceil(2);
    ones.checked_add(evens)
}

/// Rows of the trace of a batch (a power of two); `None` past what a `u64` counts.
pub fn trace_rows(old_size: u64, count: u64) -> Option<u64> {
    let cycles = leaf_cycles(old_size, count)?.checked_add(2 * CLIMB as u64)?;
    cycles.checked_mul(CYCLE as u64)?.checked_next_power_of_two()
}

/// The smallest blowup factor the constraints can be evaluated at (Winterfell asserts it, so a
/// verifier checks it before building the AIR from an untrusted proof's options).
pub(super) fn min_blowup() -> usize {
    constraint_degrees().iter().map(|degree| degree.min_blowup_factor()).max().unwrap_or(1)
}

/// Periodic columns (period 8), in the order [`AppendAir::evaluate_transition`] reads them.
mod periodic {
    /// `ARK1[r][j]` at row `r` of a cycle, for `j` in 0..12.
    pub(super) const ARK1: usize = 0;
    /// `ARK2[r][j]`.
    pub(super) const ARK2: usize = 12;
    /// 1 on the rows a permutation round leaves from (0..7 of a cycle).
    pub(super) const ROUND: usize = 24;
    /// 1 on a cycle's first row.
    pub(super) const START: usize = 25;
    /// 1 on a cycle's last row (its next row starts the next cycle).
    pub(super) const END: usize = 26;
}

/// Assertions: level and bits at the start (2 x 32), the mode at three boundaries, no leaf
/// start on the first row (the transitions rule it out everywhere else in a root climb), the
/// digest at the start and the end (2 x 4), the bits at the end (32), the two roots (2 x 4).
const ASSERTIONS: usize = 2 * DEPTH + 3 + 1 + 2 * 4 + DEPTH + 2 * 4;

/// The AIR; see the module documentation.
pub(super) struct AppendAir {
    context: AirContext<BaseElement>,
    statement: AppendStatement,
    empty_leaf: [BaseElement; 4],
    /// The empty subtree's root at each level.
    zeros: Vec<[BaseElement; 4]>,
}

/// The constraint degrees, in evaluation order (each periodic factor has period 8).
fn constraint_degrees() -> Vec<TransitionConstraintDegree> {
    let mut degrees = Vec::new();
    let mut push = |count: usize, base: usize, periodic: bool| {
        let degree = if periodic {
            TransitionConstraintDegree::with_cycles(base, vec![CYCLE])
        } else {
            TransitionConstraintDegree::new(base)
        };
        degrees.extend((0..count).map(|_| degree.clone()));
    };
    push(2 * STATE, 7, true); // both hashers' rounds
    push(8, 1, true); // both capacities
    push(4, 1, true); // X holds through a cycle
    push(4, 3, true); // X carries a climb's node
    push(4, 3, true); // root climbs start at the empty slot
    push(4, 3, true); // a merge's left input is the frontier
    push(4, 2, true); // a merge's right input is X
    push(8, 3, true); // a root climb's step over an empty subtree
    push(8, 2, true); // the batch hasher absorbs (D, X) at a leaf's start
    push(4, 2, true); // D takes the batch hasher's output
    push(1, 2, false); // M is the size's bit at the level
    push(1, 3, false); // C: merged, and the next bit is set
    push(DEPTH, 3, true); // LVL
    push(DEPTH, 4, true); // B
    push(4 * DEPTH, 6, true); // F
    push(1, 2, false); // RC is binary
    push(1, 1, true); // RC holds through a cycle
    push(2, 3, true); // RC changes only at a climb's end or after a store
    push(1, 1, true); // LS holds through a cycle
    push(1, 3, true); // LS follows a store
    degrees
}

impl Air for AppendAir {
    type BaseField = BaseElement;
    type PublicInputs = AppendStatement;

    fn new(trace_info: TraceInfo, statement: AppendStatement, options: ProofOptions) -> Self {
        let to_elements = |digest: &RescueDigest| -> [BaseElement; 4] {
            digest.as_elements().try_into().expect("4 elements")
        };
        let zeros = empty_subtrees::<RescueHasher>(DEPTH).iter().take(DEPTH).map(to_elements).collect();
        AppendAir {
            context: AirContext::new(trace_info, constraint_degrees(), ASSERTIONS, options),
            statement,
            empty_leaf: to_elements(&RescueHasher::empty()),
            zeros,
        }
    }

    fn context(&self) -> &AirContext<BaseElement> {
        &self.context
    }

    fn evaluate_transition<E: FieldElement + From<BaseElement>>(
        &self,
        frame: &EvaluationFrame<E>,
        periodic_values: &[E],
        result: &mut [E],
    ) {
        let (cur, next) = (frame.current(), frame.next());
        let p = periodic_values;
        let ark1 = &p[periodic::ARK1..periodic::ARK1 + STATE];
        let ark2 = &p[periodic::ARK2..periodic::ARK2 + STATE];
        let (round, start, end) = (p[periodic::ROUND], p[periodic::START], p[periodic::END]);
        let one = E::ONE;
        let capacity = merge_capacity().map(E::from);
        let (m, c, rc, ls) = (cur[M], cur[C], cur[RC], cur[LS]);
        let level = &cur[LVL..LVL + DEPTH];
        let bits = &cur[B..B + DEPTH];
        // Selections by the one-hot level: the bit, the next level's bit, the frontier entry
        // and the empty subtree at this level.
        let bit: E = (0..DEPTH).fold(E::ZERO, |sum, l| sum + level[l] * bits[l]);
        let next_bit: E = (0..DEPTH - 1).fold(E::ZERO, |sum, l| sum + level[l] * bits[l + 1]);
        let frontier = |l: usize, e: usize| cur[F + 4 * l + e];
        let sibling: [E; 4] =
            std::array::from_fn(|e| (0..DEPTH).fold(E::ZERO, |sum, l| sum + level[l] * frontier(l, e)));
        let zero: [E; 4] = std::array::from_fn(|e| {
            (0..DEPTH).fold(E::ZERO, |sum, l| sum + level[l] * E::from(self.zeros[l][e]))
        });
        let output: [E; 4] = std::array::from_fn(|e| cur[H + LEFT.start + e]);
        let leaf_mode = one - rc;
        let stores = leaf_mode * (one - c);

        let mut out = result.iter_mut();
        let mut put = |value: E| *out.next().expect("as many results as degrees") = value;

        // Both hashers apply a round between consecutive rows of a cycle; every permutation
        // is a `merge`.
        for hasher in [H, G] {
            let range = hasher..hasher + STATE;
            for gap in round_gap(&cur[range.clone()], &next[range], ark1, ark2) {
                put(round * gap);
            }
        }
        for hasher in [H, G] {
            for j in CAPACITY {
                put(start * (cur[hasher + j] - capacity[j]));
            }
        }
        // X: constant in a cycle; the climb's node after a merge that continues (a leaf's or a
        // root climb's below the top); the empty slot where a root climb starts.
        for e in 0..4 {
            put(round * (next[X + e] - cur[X + e]));
        }
        let carries = c * leaf_mode + rc * (one - level[DEPTH - 1]);
        for e in 0..4 {
            put(end * carries * (next[X + e] - output[e]));
        }
        for e in 0..4 {
            put(start * rc * level[0] * (cur[X + e] - E::from(self.empty_leaf[e])));
        }
        // The node hasher's input: (F[l], X) where the bit is set; (X, empty subtree) in a root
        // climb where it is not. A leaf's cycle without a merge leaves the hasher free.
        for e in 0..4 {
            put(start * m * (cur[H + LEFT.start + e] - sibling[e]));
        }
        for e in 0..4 {
            put(start * m * (cur[H + RIGHT.start + e] - cur[X + e]));
        }
        for e in 0..4 {
            put(start * rc * (one - m) * (cur[H + LEFT.start + e] - cur[X + e]));
        }
        for e in 0..4 {
            put(start * rc * (one - m) * (cur[H + RIGHT.start + e] - zero[e]));
        }
        // A leaf's first cycle absorbs (D, leaf) into the batch hasher, whose output is the
        // next D; D holds otherwise.
        for e in 0..4 {
            put(start * ls * (cur[G + LEFT.start + e] - cur[D + e]));
        }
        for e in 0..4 {
            put(start * ls * (cur[G + RIGHT.start + e] - cur[X + e]));
        }
        for e in 0..4 {
            put(next[D + e] - cur[D + e] - end * ls * (cur[G + LEFT.start + e] - cur[D + e]));
        }
        // M and C follow from the level and the bits.
        put(m - bit);
        put(c - m * next_bit);
        // LVL: a climb goes one level up (a root climb wraps from the top to level 0); a store
        // starts the next leaf at level 0.
        let climbs = rc + leaf_mode * c;
        for l in 0..DEPTH {
            let below = level[(l + DEPTH - 1) % DEPTH];
            let restart = if l == 0 { stores } else { E::ZERO };
            put(next[LVL + l] - level[l] - end * (climbs * below + restart - level[l]));
        }
        // B and F change only in leaf cycles: a merge clears the level's bit; a store puts its
        // node (the merge's output, or X without a merge) at the level above a merge or at X's
        // level, and sets that bit. A merge at level 31 would store at no level (the tree would
        // be full); it cannot happen, as the verifier refuses batches that reach 2^32 leaves.
        let stored: [E; 4] = std::array::from_fn(|e| (one - m) * cur[X + e] + m * output[e]);
        let store_level = |l: usize| {
            let below = if l == 0 { E::ZERO } else { level[l - 1] };
            (one - m) * level[l] + m * below
        };
        for l in 0..DEPTH {
            let change = leaf_mode * ((one - c) * store_level(l) - m * level[l]);
            put(next[B + l] - bits[l] - end * change);
        }
        for l in 0..DEPTH {
            let stores_here = stores * store_level(l);
            for e in 0..4 {
                let entry = frontier(l, e);
                put(next[F + 4 * l + e] - entry - end * stores_here * (stored[e] - entry));
            }
        }
        // RC: binary, constant in a cycle, left only at the top of a climb, entered only after
        // a leaf's store.
        put(rc * (rc - one));
        put(round * (next[RC] - rc));
        put(end * rc * (one - next[RC]) * (one - level[DEPTH - 1]));
        put(end * leaf_mode * next[RC] * c);
        // LS: constant in a cycle; set exactly when a leaf cycle follows a root climb or a store.
        put(round * (next[LS] - ls));
        put(end * (next[LS] - (one - next[RC]) * (one - leaf_mode * c)));
    }

    fn get_periodic_column_values(&self) -> Vec<Vec<BaseElement>> {
        let mut columns = Vec::new();
        for constants in [&Rp64_256::ARK1, &Rp64_256::ARK2] {
            for j in 0..STATE {
                let mut column: Vec<BaseElement> = constants.iter().map(|round| round[j]).collect();
                column.push(BaseElement::ZERO);
                columns.push(column);
            }
        }
        let flag = |on: &dyn Fn(usize) -> bool| -> Vec<BaseElement> {
            (0..CYCLE).map(|row| if on(row) { BaseElement::ONE } else { BaseElement::ZERO }).collect()
        };
        columns.push(flag(&|row| row < ROUNDS));
        columns.push(flag(&|row| row == 0));
        columns.push(flag(&|row| row == CYCLE - 1));
        columns
    }

    fn get_assertions(&self) -> Vec<Assertion<BaseElement>> {
        let statement = &self.statement;
        // Prover and verifier build the AIR only for batches that fit the tree.
        let end_size = statement.old_size + statement.count;
        let cycles = leaf_cycles(statement.old_size, statement.count).expect("a batch that fits");
        let leaves_end = CLIMB + cycles as usize;
        let cycle_row = |cycle: usize| cycle * CYCLE;
        let mut assertions = Vec::with_capacity(ASSERTIONS);
        let mut digest = |column: usize, row: usize, digest: &RescueDigest| {
            for (j, value) in digest.as_elements().iter().enumerate() {
                assertions.push(Assertion::single(column + j, row, *value));
            }
        };
        digest(D, 0, &crate::rescue::batch_start());
        digest(H + LEFT.start, cycle_row(CLIMB) - 1, &statement.old_root);
        digest(D, cycle_row(leaves_end), &statement.batch_digest);
        digest(H + LEFT.start, cycle_row(leaves_end + CLIMB) - 1, &statement.new_root);
        let bit = |size: u64, l: usize| BaseElement::from((size >> l) & 1 == 1);
        for l in 0..DEPTH {
            assertions.push(Assertion::single(LVL + l, 0, BaseElement::from(l == 0)));
            assertions.push(Assertion::single(B + l, 0, bit(statement.old_size, l)));
            assertions.push(Assertion::single(B + l, cycle_row(leaves_end), bit(end_size, l)));
        }
        assertions.push(Assertion::single(RC, 0, BaseElement::ONE));
        assertions.push(Assertion::single(LS, 0, BaseElement::ZERO));
        assertions.push(Assertion::single(RC, cycle_row(CLIMB), BaseElement::ZERO));
        assertions.push(Assertion::single(RC, cycle_row(leaves_end), BaseElement::ONE));
        assertions
    }
}

/// `MDS(x^7) + ARK1 - (MDS^-1(y - ARK2))^7`: zero when `y` is one round after `x` (the
/// round's second half is checked backwards, so the inverse S-box costs degree 7 too).
fn round_gap<E: FieldElement + From<BaseElement>>(x: &[E], y: &[E], ark1: &[E], ark2: &[E]) -> [E; STATE] {
    let forward: [E; STATE] = std::array::from_fn(|j| pow7(x[j]));
    let backward: [E; STATE] = std::array::from_fn(|j| y[j] - ark2[j]);
    let forward = multiply(&Rp64_256::MDS, &forward);
    let backward = multiply(&Rp64_256::INV_MDS, &backward);
    std::array::from_fn(|j| forward[j] + ark1[j] - pow7(backward[j]))
}

fn multiply<E: FieldElement + From<BaseElement>>(
    matrix: &[[BaseElement; STATE]; STATE],
    v: &[E],
) -> [E; STATE] {
    std::array::from_fn(|row| matrix[row].iter().zip(v).fold(E::ZERO, |sum, (&m, &x)| sum + E::from(m) * x))
}

fn pow7<E: FieldElement>(x: E) -> E {
    let square = x.square();
    square.square() * square * x
}
