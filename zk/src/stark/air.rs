//! The AIR of an append batch over the depth-32 Rescue tree.
//!
//! The trace has one *slot* of 256 rows per appended leaf: 32 levels of 8 rows, each level one
//! Rescue permutation (rows 0..7 are the states after 0..7 rounds). In every slot two hashers
//! walk the leaf's position up to the root with the same siblings:
//!
//! * the **old** path starts from the empty slot and must reach the root before the append
//!   (kept in the `ROOT` register), which proves the siblings are that tree's;
//! * the **new** path starts from the appended leaf; its root becomes the next slot's `ROOT`.
//!
//! A third hasher chains the batch digest, `d' = merge(d, leaf)`, in the first 7 rows of a slot
//! and keeps `d'` in its first rate half for the rest of the slot. The leaf's position is bound
//! to its bits by `POS` (the position shifted right by the level), and `INDEX` counts up from
//! the old size. Slots past the batch (padding to a power of two) append dummy leaves; the
//! public results are asserted at the last real slot, so padding cannot touch them.

use std::ops::Range;

use winter_crypto::hashers::Rp64_256;
use winterfell::math::fields::f64::BaseElement;
use winterfell::math::{FieldElement, ToElements};
use winterfell::{
    Air, AirContext, Assertion, EvaluationFrame, ProofOptions, TraceInfo, TransitionConstraintDegree,
};

use crate::rescue::{RescueDigest, RescueHasher};
use crate::tree::TreeHasher;

/// Elements of a Rescue state.
pub(super) const STATE: usize = 12;
/// Rounds of the permutation.
const ROUNDS: usize = 7;
/// Rows per permutation: the input and the state after each round.
pub(super) const CYCLE: usize = 8;
/// Levels of the tree.
pub(super) const DEPTH: usize = crate::tree::MAX_DEPTH;
/// Rows per appended leaf.
pub(super) const SLOT: usize = CYCLE * DEPTH;

/// The old path's hasher.
pub(super) const OLD: usize = 0;
/// The new path's hasher.
pub(super) const NEW: usize = OLD + STATE;
/// The batch digest's hasher.
pub(super) const BATCH: usize = NEW + STATE;
/// The position's bit at this level.
pub(super) const BIT: usize = BATCH + STATE;
/// The position shifted right by the level.
pub(super) const POS: usize = BIT + 1;
/// The position of this slot's leaf.
pub(super) const INDEX: usize = POS + 1;
/// The tree's root before this slot's leaf.
pub(super) const ROOT: usize = INDEX + 1;
/// Columns of the trace.
pub(super) const WIDTH: usize = ROOT + 4;

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

/// Slots in the trace of a batch of `count` leaves (a power of two).
pub(super) fn slots(count: u64) -> usize {
    (count.max(1) as usize).next_power_of_two()
}

/// Periodic columns, in the order [`AppendAir::evaluate_transition`] reads them.
mod periodic {
    /// `ARK1[r][j]` at row `r` of a cycle, for `j` in 0..12.
    pub(super) const ARK1: usize = 0;
    /// `ARK2[r][j]`.
    pub(super) const ARK2: usize = 12;
    /// 1 on the rows a permutation round leaves from (0..7 of a cycle).
    pub(super) const ROUND: usize = 24;
    /// 1 on a cycle's first row.
    pub(super) const CYCLE_START: usize = 25;
    /// 1 on a slot's first row.
    pub(super) const SLOT_START: usize = 26;
    /// 1 on a slot's last row.
    pub(super) const SLOT_END: usize = 27;
    /// 1 on the rows the batch hasher's rounds leave from (0..7 of a slot).
    pub(super) const BATCH_ROUND: usize = 28;
    /// 1 on a slot's next-to-last row, whose next row holds the old path's root.
    pub(super) const ROOT_CHECK: usize = 29;
}

/// Assertions: four digests (the old root, the digest's start and end, the new root) and the
/// old size.
const ASSERTIONS: usize = 4 * 4 + 1;

/// The AIR; see the module documentation.
pub(super) struct AppendAir {
    context: AirContext<BaseElement>,
    statement: AppendStatement,
    empty_leaf: [BaseElement; 4],
}

fn degree(base: usize, cycle: Option<usize>) -> TransitionConstraintDegree {
    match cycle {
        Some(cycle) => TransitionConstraintDegree::with_cycles(base, vec![cycle]),
        None => TransitionConstraintDegree::new(base),
    }
}

/// The constraint degrees, in evaluation order.
fn constraint_degrees() -> Vec<TransitionConstraintDegree> {
    let (cycle, slot) = (Some(CYCLE), Some(SLOT));
    let mut degrees = Vec::new();
    let mut push = |count: usize, base: usize, period: Option<usize>| {
        degrees.extend((0..count).map(|_| degree(base, period)));
    };
    push(2 * STATE, 7, cycle); // old and new rounds
    push(STATE, 7, slot); // batch rounds
    push(8, 1, cycle); // capacities at cycle starts
    push(4, 2, cycle); // shared siblings
    push(8, 2, slot); // level chaining
    push(8, 2, slot); // the slot's leaves
    push(4, 1, slot); // the batch hasher's capacity
    push(4, 1, slot); // the batch digest carried
    push(4, 1, slot); // root register
    push(4, 1, slot); // old root check
    push(1, 1, None); // index
    push(1, 1, slot); // position starts at the index
    push(1, 1, cycle); // position constant in a cycle
    push(1, 1, slot); // position shifts by the bit
    push(1, 1, slot); // position fits 32 bits
    push(1, 2, None); // bit is binary
    push(1, 1, cycle); // bit constant in a cycle
    degrees
}

impl Air for AppendAir {
    type BaseField = BaseElement;
    type PublicInputs = AppendStatement;

    fn new(trace_info: TraceInfo, statement: AppendStatement, options: ProofOptions) -> Self {
        let empty_leaf = RescueHasher::empty().as_elements().try_into().expect("4 elements");
        AppendAir {
            context: AirContext::new(trace_info, constraint_degrees(), ASSERTIONS, options),
            statement,
            empty_leaf,
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
        let round = p[periodic::ROUND];
        let cycle_start = p[periodic::CYCLE_START];
        let slot_start = p[periodic::SLOT_START];
        let slot_end = p[periodic::SLOT_END];
        let batch_round = p[periodic::BATCH_ROUND];
        let root_check = p[periodic::ROOT_CHECK];
        let level_end = E::ONE - round - slot_end;
        let capacity = merge_capacity().map(E::from);
        let empty_leaf = self.empty_leaf.map(E::from);
        let (bit, next_bit) = (cur[BIT], next[BIT]);
        let two = E::from(2u32);

        let mut out = result.iter_mut();
        let mut put = |value: E| *out.next().expect("as many results as degrees") = value;

        // Each hasher applies a round between consecutive rows of a permutation.
        for (hasher, flag) in [(OLD, round), (NEW, round), (BATCH, batch_round)] {
            let range = hasher..hasher + STATE;
            for gap in round_gap(&cur[range.clone()], &next[range], ark1, ark2) {
                put(flag * gap);
            }
        }
        // Every path permutation is a `merge`.
        for hasher in [OLD, NEW] {
            for j in CAPACITY {
                put(cycle_start * (cur[hasher + j] - capacity[j]));
            }
        }
        // Both paths hash with the same sibling: the half the bit does not select.
        for j in 0..4 {
            let left = cur[NEW + LEFT.start + j] - cur[OLD + LEFT.start + j];
            let right = cur[NEW + RIGHT.start + j] - cur[OLD + RIGHT.start + j];
            put(cycle_start * (bit * left + (E::ONE - bit) * right));
        }
        // A level's node goes into the half of the next level's input that the next bit selects.
        for hasher in [OLD, NEW] {
            for j in 0..4 {
                let node = cur[hasher + LEFT.start + j];
                let as_left = next[hasher + LEFT.start + j] - node;
                let as_right = next[hasher + RIGHT.start + j] - node;
                put(level_end * ((E::ONE - next_bit) * as_left + next_bit * as_right));
            }
        }
        // A slot starts the old path from the empty slot and the new one from the leaf the
        // batch hasher absorbs.
        for j in 0..4 {
            let left = cur[OLD + LEFT.start + j] - empty_leaf[j];
            let right = cur[OLD + RIGHT.start + j] - empty_leaf[j];
            put(slot_start * ((E::ONE - bit) * left + bit * right));
        }
        for j in 0..4 {
            let leaf = cur[BATCH + RIGHT.start + j];
            let left = cur[NEW + LEFT.start + j] - leaf;
            let right = cur[NEW + RIGHT.start + j] - leaf;
            put(slot_start * ((E::ONE - bit) * left + bit * right));
        }
        for j in CAPACITY {
            put(slot_start * (cur[BATCH + j] - capacity[j]));
        }
        // Outside its rounds, the batch hasher keeps the digest in its first rate half; the
        // next slot absorbs it from there.
        for j in LEFT {
            put((E::ONE - batch_round) * (next[BATCH + j] - cur[BATCH + j]));
        }
        // The root register holds through a slot and takes the new path's root at its end;
        // the old path's root must equal it.
        for j in 0..4 {
            let stay = next[ROOT + j] - cur[ROOT + j];
            put(stay - slot_end * (cur[NEW + LEFT.start + j] - cur[ROOT + j]));
        }
        for j in 0..4 {
            put(root_check * (next[OLD + LEFT.start + j] - next[ROOT + j]));
        }
        // Positions: the index counts slots; the position starts at it, holds through a
        // cycle, drops its bit and halves between levels, and is its own bit at the top.
        put(next[INDEX] - cur[INDEX] - slot_end);
        put(slot_start * (cur[POS] - cur[INDEX]));
        put(round * (next[POS] - cur[POS]));
        put(level_end * (cur[POS] - bit - two * next[POS]));
        put(root_check * (cur[POS] - bit));
        put(bit * (bit - E::ONE));
        put(round * (next_bit - bit));
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
        let flag = |len: usize, on: &dyn Fn(usize) -> bool| -> Vec<BaseElement> {
            (0..len).map(|row| if on(row) { BaseElement::ONE } else { BaseElement::ZERO }).collect()
        };
        columns.push(flag(CYCLE, &|row| row < ROUNDS));
        columns.push(flag(CYCLE, &|row| row == 0));
        columns.push(flag(SLOT, &|row| row == 0));
        columns.push(flag(SLOT, &|row| row == SLOT - 1));
        columns.push(flag(SLOT, &|row| row < ROUNDS));
        columns.push(flag(SLOT, &|row| row == SLOT - 2));
        columns
    }

    fn get_assertions(&self) -> Vec<Assertion<BaseElement>> {
        let statement = &self.statement;
        let last_slot = (statement.count.max(1) as usize - 1) * SLOT;
        let mut assertions = Vec::new();
        let mut digest = |column: usize, row: usize, digest: &RescueDigest| {
            for (j, value) in digest.as_elements().iter().enumerate() {
                assertions.push(Assertion::single(column + j, row, *value));
            }
        };
        digest(ROOT, 0, &statement.old_root);
        digest(BATCH + LEFT.start, 0, &crate::rescue::batch_start());
        digest(BATCH + LEFT.start, last_slot + ROUNDS, &statement.batch_digest);
        digest(NEW + LEFT.start, last_slot + SLOT - 1, &statement.new_root);
        assertions.push(Assertion::single(INDEX, 0, BaseElement::new(statement.old_size)));
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
