//! The AIR of an append batch over the depth-32 Rescue tree.
//!
//! The trace is a sequence of 8-row *cycles*, each one Rescue permutation of the node hasher
//! (`H`; rows 0..7 are its state after 0..7 rounds). It runs the tree's incremental append: the
//! size `N` and the size shifted by the level `R = N >> l` are registers, the level of the node
//! `X` a cycle works on (the hasher's right input where it merges, its left input otherwise) is
//! `LH[l / 4] * LL[l % 4]` (two one-hot registers of 8 and 4 columns, so a level's flag costs
//! degree 2), and the frontier (the completed left subtree at each level) is a *memory*
//! outside the main trace, checked by a multiset argument in the auxiliary segment
//! (`memory.rs`).
//!
//! * **Old root** (32 cycles, `OLD`): from the empty slot at position `n`, climb to the root,
//!   hashing with the frontier entry where bit `l` of the size is set and with the empty subtree
//!   elsewhere. The bits are read off `R`: it halves after dropping the cycle's bit `M`, and at
//!   the top what is left must be that bit, so the climb read `N`'s binary digits. The result
//!   must be the public old root, which pins the entries the climb puts into the memory.
//! * **Leaves** (one or more cycles per leaf): the leaf enters at level 0; while the size's bit
//!   at the node's level is set, the cycle merges `H(F[l], X)` (a *merge*, `M`), taking `F[l]`
//!   out of the memory and, if the next level's bit is set too, *continues* (`C`) one level up.
//!   Otherwise the node is put into the memory at the first clear level, and `N` goes up by
//!   one. Here the prover sets `M` and `C`; the memory makes them the size's bits (a merge
//!   where the bit is clear takes out an entry no one put in, a store where it is set leaves
//!   one no one takes out; `memory.rs`). A leaf costs max(1, trailing ones of its position)
//!   cycles, about 1.5 on average. The batch hasher `G` absorbs each leaf in its first cycle
//!   (`LS`), chaining the digest `D`.
//! * **New root** (32 cycles): the same climb as the old root, taking the final entries out.
//! * **Padding** to a power of two: more new-root climbs (the memory is checked before them).
//!
//! So the prover chooses only the old frontier (pinned by the old root), the leaves (pinned by
//! the batch digest) and what the merges read (pinned by the memory). The phase boundaries are
//! at rows the verifier computes from the old size and the count ([`leaf_cycles`]); the public
//! values are asserted there, `N` among them (a leaf phase with other merges than the honest
//! ones would end at another size or cycle).

use std::ops::Range;

use winter_crypto::hashers::Rp64_256;
use winterfell::math::fields::f64::BaseElement;
use winterfell::math::{ExtensionOf, FieldElement, ToElements};
use winterfell::{
    Air, AirContext, Assertion, AuxRandElements, EvaluationFrame, ProofOptions, TraceInfo,
    TransitionConstraintDegree,
};

use super::{memory, round};

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
/// Whether the cycle merges with `F[l]` (the size's bit at this level is set).
pub(super) const M: usize = D + 4;
/// Whether a leaf's climb continues one level up after this cycle (it merged, and the size's
/// next bit is set).
pub(super) const C: usize = M + 1;
/// Whether this cycle is part of a root climb (not a leaf's).
pub(super) const RC: usize = C + 1;
/// Whether this cycle is a leaf's first (the batch hasher absorbs it).
pub(super) const LS: usize = RC + 1;
/// Whether this cycle is part of the old root's climb (its merges put the old frontier into
/// the memory; every later merge takes an entry out).
pub(super) const OLD: usize = LS + 1;
/// The level of the cycle's node divided by 4, one-hot.
pub(super) const LH: usize = OLD + 1;
/// The level of the cycle's node modulo 4, one-hot.
pub(super) const LL: usize = LH + DEPTH / 4;
/// The tree's size before the current leaf (in a root climb, the size it climbs from).
pub(super) const N: usize = LL + 4;
/// The size shifted right by the cycle's level: `N >> l` (its parity is `M`).
pub(super) const R: usize = N + 1;
/// Columns of the main trace.
pub(super) const WIDTH: usize = R + 1;

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
    let degrees = constraint_degrees().into_iter().chain(aux_constraint_degrees());
    degrees.map(|degree| degree.min_blowup_factor()).max().unwrap_or(1)
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

/// Assertions: level (8 + 4), size and shifted size at the start, the mode at three
/// boundaries, no leaf start on the first row (the transitions rule it out everywhere else in
/// a root climb), the old climb's flag at the start, the digest at the start and the end
/// (2 x 4), the size at the end, the two roots (2 x 4).
const ASSERTIONS: usize = DEPTH / 4 + 4 + 2 + 3 + 1 + 1 + 2 * 4 + 1 + 2 * 4;

/// Assertions on the memory's running product: 1 at the start and after the new root's climb.
const AUX_ASSERTIONS: usize = 2;

/// The AIR; see the module documentation.
pub(super) struct AppendAir {
    context: AirContext<BaseElement>,
    statement: AppendStatement,
    /// The first cycle after the leaves (the new root's climb starts there).
    leaves_end: usize,
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
    push(4, 5, true); // a climb's node is carried
    push(4, 5, true); // root climbs start at the empty slot
    push(4, 4, true); // a root climb's step over an empty subtree
    push(4, 2, true); // the batch hasher absorbs D
    push(4, 3, true); // and the node at a leaf's start
    push(4, 2, true); // D takes the batch hasher's output
    push(1, 2, false); // M is binary
    push(1, 1, true); // M holds through a cycle
    push(1, 2, false); // C is binary
    push(1, 1, true); // C holds through a cycle
    push(1, 2, false); // C only after a merge
    push(1, 2, false); // C only in a leaf's climb
    push(1, 2, true); // C: the next cycle merges
    push(DEPTH / 4, 4, true); // LH
    push(4, 3, true); // LL
    push(1, 2, true); // N: one more after each store
    push(1, 1, true); // R holds through a cycle
    push(1, 4, true); // R halves up a climb, restarts at N
    push(1, 4, true); // a root climb's top: R is its last bit
    push(1, 2, false); // RC is binary
    push(1, 1, true); // RC holds through a cycle
    push(1, 4, true); // RC is left only at a climb's top
    push(1, 3, true); // and entered only after a store
    push(1, 1, true); // LS holds through a cycle
    push(1, 3, true); // LS follows a store
    push(1, 3, true); // OLD ends with the first climb
    degrees
}

/// The memory's constraint: the running product's step (`P' den = P num`; a merge's factor
/// has degree 3 through its tag `R 2^level`, times selectors of degree 2, times P).
fn aux_constraint_degrees() -> Vec<TransitionConstraintDegree> {
    vec![TransitionConstraintDegree::with_cycles(6, vec![CYCLE])]
}

/// 2^l for each level, an entry's width (built once: the memory's constraint is evaluated at
/// every point of the constraint domain).
const WIDTHS: [BaseElement; DEPTH] = {
    let mut widths = [BaseElement::ZERO; DEPTH];
    let mut level = 0;
    while level < DEPTH {
        widths[level] = BaseElement::new(1 << level);
        level += 1;
    }
    widths
};

/// The one-hot level of a row: `LH[l / 4] * LL[l % 4]`.
fn levels<T: FieldElement>(row: &[T]) -> [T; DEPTH] {
    std::array::from_fn(|l| row[LH + l / 4] * row[LL + l % 4])
}

impl Air for AppendAir {
    type BaseField = BaseElement;
    type PublicInputs = AppendStatement;

    fn new(trace_info: TraceInfo, statement: AppendStatement, options: ProofOptions) -> Self {
        let to_elements = |digest: &RescueDigest| -> [BaseElement; 4] {
            digest.as_elements().try_into().expect("4 elements")
        };
        let zeros = empty_subtrees::<RescueHasher>(DEPTH).iter().take(DEPTH).map(to_elements).collect();
        // Prover and verifier build the AIR only for batches that fit the tree.
        let cycles = leaf_cycles(statement.old_size, statement.count).expect("a batch that fits");
        let context = AirContext::new_multi_segment(
            trace_info,
            constraint_degrees(),
            aux_constraint_degrees(),
            ASSERTIONS,
            AUX_ASSERTIONS,
            options,
        );
        AppendAir {
            context,
            leaves_end: CLIMB + cycles as usize,
            statement,
            empty_leaf: to_elements(&RescueHasher::empty()),
            zeros,
        }
    }

    fn context(&self) -> &AirContext<BaseElement> {
        &self.context
    }

    fn evaluate_transition<E: FieldElement<BaseField = BaseElement> + From<BaseElement>>(
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
        let level = levels(cur);
        // The empty subtree at this level.
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
            for gap in round::gap(&cur[range.clone()], &next[range], ark1, ark2) {
                put(round * gap);
            }
        }
        for hasher in [H, G] {
            for j in CAPACITY {
                put(start * (cur[hasher + j] - capacity[j]));
            }
        }
        // The node a cycle works on is the node hasher's right input where it merges (with
        // F[l], the left input, which the memory checks) and its left input where it does not
        // (with the empty subtree on the right in a root climb; free in a leaf's cycle). It is
        // the climb's node after a merge that continues (a leaf's, or a root climb's below the
        // top), and the empty slot where a root climb starts.
        let node = |row: &[E], e: usize| {
            row[M] * row[H + RIGHT.start + e] + (one - row[M]) * row[H + LEFT.start + e]
        };
        let carries = c * leaf_mode + rc * (one - level[DEPTH - 1]);
        for (e, output) in output.iter().enumerate() {
            put(end * carries * (node(next, e) - *output));
        }
        for e in 0..4 {
            put(start * rc * level[0] * (node(cur, e) - E::from(self.empty_leaf[e])));
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
            put(start * ls * (cur[G + RIGHT.start + e] - node(cur, e)));
        }
        for e in 0..4 {
            put(next[D + e] - cur[D + e] - end * ls * (cur[G + LEFT.start + e] - cur[D + e]));
        }
        // M and C: flags; the shifted size R fixes M in a root climb (below), the memory in a
        // leaf's climb (a merge where the bit is clear reads an entry no one stored; a store
        // where it is set leaves an entry no one reads). C continues a leaf's climb only after
        // a merge, and the next cycle merges.
        // Both are read at a cycle's start and at its end: they must be the same there.
        put(m * (m - one));
        put(round * (next[M] - m));
        put(c * (c - one));
        put(round * (next[C] - c));
        put(c * (one - m));
        put(c * rc);
        put(end * c * (one - next[M]));
        // The level: a climb goes one level up (LL rotates, LH moves when LL wraps; a root
        // climb wraps from the top to level 0); a store starts the next leaf at level 0.
        let climbs = rc + leaf_mode * c;
        let (high, low) = (&cur[LH..LH + DEPTH / 4], &cur[LL..LL + 4]);
        let wraps = low[3];
        for j in 0..DEPTH / 4 {
            let up = high[j] * (one - wraps) + high[(j + DEPTH / 4 - 1) % (DEPTH / 4)] * wraps;
            let restart = if j == 0 { stores } else { E::ZERO };
            put(next[LH + j] - high[j] - end * (climbs * up + restart - high[j]));
        }
        for k in 0..4 {
            let restart = if k == 0 { stores } else { E::ZERO };
            put(next[LL + k] - low[k] - end * (climbs * low[(k + 3) % 4] + restart - low[k]));
        }
        // N: the size, one more after each leaf's store. R = N >> level: constant in a cycle;
        // up a climb (a leaf's that continues, or a root climb's below the top) it drops the
        // bit M and halves, otherwise the next cycle starts at level 0 with R = N. At a root
        // climb's top R is its last bit, so the climb read N's 32 bits: N = sum(M_l 2^l) in
        // the field, both sides below 2^32, so as integers.
        put(next[N] - cur[N] - end * stores);
        put(round * (next[R] - cur[R]));
        let shift = (one + one) * next[R] - cur[R] + m;
        put(end * (carries * shift + (one - carries) * (next[R] - next[N])));
        put(start * rc * level[DEPTH - 1] * (cur[R] - m));
        // RC: binary, constant in a cycle, left only at the top of a climb, entered only after
        // a leaf's store.
        put(rc * (rc - one));
        put(round * (next[RC] - rc));
        put(end * rc * (one - next[RC]) * (one - level[DEPTH - 1]));
        put(end * leaf_mode * next[RC] * c);
        // LS: constant in a cycle; set exactly when a leaf cycle follows a root climb or a store.
        put(round * (next[LS] - ls));
        put(end * (next[LS] - (one - next[RC]) * (one - leaf_mode * c)));
        // OLD: set at the start (asserted), cleared when the first climb leaves the top.
        put(next[OLD] - cur[OLD] + end * cur[OLD] * level[DEPTH - 1]);
    }

    fn evaluate_aux_transition<F, E>(
        &self,
        main_frame: &EvaluationFrame<F>,
        aux_frame: &EvaluationFrame<E>,
        periodic_values: &[F],
        aux_rand_elements: &AuxRandElements<E>,
        result: &mut [E],
    ) where
        F: FieldElement<BaseField = BaseElement>,
        E: FieldElement<BaseField = BaseElement> + ExtensionOf<F>,
    {
        let cur = main_frame.current();
        let rand = aux_rand_elements.rand_elements();
        let (start, end) = (periodic_values[periodic::START], periodic_values[periodic::END]);
        let one = F::ONE;
        let (m, c, rc, old) = (cur[M], cur[C], cur[RC], cur[OLD]);
        let leaf_mode = one - rc;
        // An entry's width is 2^level; a merge's tag is the size with the bits below the level
        // cleared, R 2^level; a store's is the size after the leaf, N + 1, at the node's level
        // (without a merge, at the cycle's start) or the level above (the merge's output, at
        // the cycle's end).
        let level = levels(cur);
        let width = (0..DEPTH).fold(F::ZERO, |sum, l| sum + F::from(WIDTHS[l]) * level[l]);
        let stored_tag = cur[N] + one;
        // The node hasher's left input at a cycle's start is what a merge reads, or the node a
        // cycle without a merge stores; at the end it is the merge's output.
        let left: [F; 4] = std::array::from_fn(|e| cur[H + LEFT.start + e]);
        let read = memory::factor(rand, width, cur[R] * width, left) - E::ONE;
        let plain_store = memory::factor(rand, width, stored_tag, left) - E::ONE;
        let merged_store = memory::factor(rand, width + width, stored_tag, left) - E::ONE;
        // The old climb's merges put entries in, later merges take them out, and every leaf's
        // store puts one in.
        let puts_read = E::from(start * m * old);
        let takes_read = E::from(start * m * (one - old));
        let puts_plain = E::from(start * leaf_mode * (one - m));
        let puts_merged = E::from(end * leaf_mode * m * (one - c));
        let numerator = E::ONE + puts_read * read + puts_plain * plain_store + puts_merged * merged_store;
        let denominator = E::ONE + takes_read * read;
        result[0] = aux_frame.next()[0] * denominator - aux_frame.current()[0] * numerator;
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

    fn get_aux_assertions<E: FieldElement<BaseField = BaseElement>>(
        &self,
        _aux_rand_elements: &AuxRandElements<E>,
    ) -> Vec<Assertion<E>> {
        // After the new root's climb (its last row), every entry put in was taken out.
        let climbed = (self.leaves_end + CLIMB) * CYCLE - 1;
        vec![Assertion::single(0, 0, E::ONE), Assertion::single(0, climbed, E::ONE)]
    }

    fn get_assertions(&self) -> Vec<Assertion<BaseElement>> {
        let statement = &self.statement;
        let end_size = statement.old_size + statement.count;
        let leaves_end = self.leaves_end;
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
        for j in 0..DEPTH / 4 {
            assertions.push(Assertion::single(LH + j, 0, BaseElement::from(j == 0)));
        }
        for k in 0..4 {
            assertions.push(Assertion::single(LL + k, 0, BaseElement::from(k == 0)));
        }
        assertions.push(Assertion::single(N, 0, BaseElement::new(statement.old_size)));
        assertions.push(Assertion::single(R, 0, BaseElement::new(statement.old_size)));
        assertions.push(Assertion::single(N, cycle_row(leaves_end), BaseElement::new(end_size)));
        assertions.push(Assertion::single(RC, 0, BaseElement::ONE));
        assertions.push(Assertion::single(LS, 0, BaseElement::ZERO));
        assertions.push(Assertion::single(OLD, 0, BaseElement::ONE));
        assertions.push(Assertion::single(RC, cycle_row(CLIMB), BaseElement::ZERO));
        assertions.push(Assertion::single(RC, cycle_row(leaves_end), BaseElement::ONE));
        assertions
    }
}
