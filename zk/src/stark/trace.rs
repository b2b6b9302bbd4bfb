//! The execution trace of an append batch, and the Winterfell prover over it.

use winter_crypto::hashers::{Blake3_256, Rp64_256};
use winter_crypto::{DefaultRandomCoin, MerkleTree};
use winterfell::math::FieldElement;
use winterfell::math::fields::f64::BaseElement;
use winterfell::matrix::ColMatrix;
use winterfell::{
    AuxRandElements, CompositionPoly, CompositionPolyTrace, ConstraintCompositionCoefficients,
    DefaultConstraintCommitment, DefaultConstraintEvaluator, DefaultTraceLde, PartitionOptions, ProofOptions,
    Prover, StarkDomain, TraceInfo, TracePolyTable, TraceTable,
};

use super::air::{
    AppendAir, AppendStatement, BATCH, BIT, CAPACITY, CYCLE, DEPTH, INDEX, LEFT, NEW, OLD, POS, RIGHT, ROOT,
    SLOT, STATE, WIDTH, merge_capacity, slots,
};
use crate::rescue::{RescueDigest, RescueHasher};
use crate::tree::empty_subtrees;

/// The hash of the proof's commitments.
pub(super) type CommitmentHash = Blake3_256<BaseElement>;

type State = [BaseElement; STATE];

/// The trace of appending `leaves` at `old_size`, whose next slot has `siblings` (from
/// `AppendTree::append_path`), with the roots the old and new paths reached.
pub(super) struct BatchTrace {
    pub columns: Vec<Vec<BaseElement>>,
    pub old_root: RescueDigest,
    pub new_root: RescueDigest,
}

/// Builds the trace. Slots past the batch append dummy leaves, so the caller makes sure their
/// positions fit the tree. Fails if consecutive slots' roots do not chain (siblings that are
/// not the tree's).
pub(super) fn build(
    old_size: u64,
    siblings: &[RescueDigest],
    leaves: &[RescueDigest],
) -> Result<BatchTrace, String> {
    let slot_count = slots(leaves.len() as u64);
    let mut columns = vec![vec![BaseElement::ZERO; slot_count * SLOT]; WIDTH];
    let zeros = empty_subtrees::<RescueHasher>(DEPTH);
    let mut siblings = siblings.to_vec();
    let mut digest = crate::rescue::batch_start();
    // The root before the slot: the old path's at the first slot, the new path's after that.
    let mut root = RescueDigest::default();
    let mut old_root = root;
    let mut new_root = root;

    for slot in 0..slot_count {
        let index = old_size + slot as u64;
        let leaf = leaves.get(slot).copied().unwrap_or_default();
        let base = slot * SLOT;
        let mut new_path = Vec::with_capacity(DEPTH);
        let (mut old_node, mut new_node) = (zeros[0], leaf);
        for (level, sibling) in siblings.iter().enumerate() {
            new_path.push(new_node);
            let bit = (index >> level) & 1 == 1;
            let mut old_state = merge_input(&old_node, sibling, bit);
            let mut new_state = merge_input(&new_node, sibling, bit);
            for step in 0..CYCLE {
                let row = base + level * CYCLE + step;
                put_state(&mut columns, OLD, row, &old_state);
                put_state(&mut columns, NEW, row, &new_state);
                columns[BIT][row] = BaseElement::from(bit as u8);
                columns[POS][row] = BaseElement::new(index >> level);
                columns[INDEX][row] = BaseElement::new(index);
                if step + 1 < CYCLE {
                    Rp64_256::apply_round(&mut old_state, step);
                    Rp64_256::apply_round(&mut new_state, step);
                }
            }
            old_node = digest_of(&old_state);
            new_node = digest_of(&new_state);
        }
        if slot == 0 {
            old_root = old_node;
        } else if old_node != root {
            return Err(format!("slot {slot}'s siblings do not lead to the root"));
        }
        for (j, value) in old_node.as_elements().iter().enumerate() {
            columns[ROOT + j][base..base + SLOT].fill(*value);
        }

        // The batch hasher absorbs (digest, leaf) and then holds its state for the slot.
        let mut batch_state = merge_input(&digest, &leaf, false);
        for step in 0..SLOT {
            put_state(&mut columns, BATCH, base + step, &batch_state);
            if step + 1 < CYCLE {
                Rp64_256::apply_round(&mut batch_state, step);
            }
        }
        digest = digest_of(&batch_state);

        // The next position's siblings: its lowest set bit's level takes this path's node,
        // the levels below it are empty, the ones above do not change.
        let carry = (!index).trailing_zeros() as usize;
        if carry < DEPTH {
            siblings[carry] = new_path[carry];
            siblings[..carry].copy_from_slice(&zeros[..carry]);
        }
        root = new_node;
        if slot + 1 == leaves.len() {
            new_root = root;
        }
    }
    Ok(BatchTrace { columns, old_root, new_root })
}

fn merge_input(node: &RescueDigest, sibling: &RescueDigest, node_is_right: bool) -> State {
    let (left, right) = if node_is_right { (sibling, node) } else { (node, sibling) };
    let mut state = [BaseElement::ZERO; STATE];
    state[CAPACITY].copy_from_slice(&merge_capacity());
    state[LEFT].copy_from_slice(left.as_elements());
    state[RIGHT].copy_from_slice(right.as_elements());
    state
}

fn digest_of(state: &State) -> RescueDigest {
    RescueDigest::new(state[LEFT].try_into().expect("4 elements"))
}

fn put_state(columns: &mut [Vec<BaseElement>], hasher: usize, row: usize, state: &State) {
    for (j, value) in state.iter().enumerate() {
        columns[hasher + j][row] = *value;
    }
}

/// The Winterfell prover of one batch.
pub(super) struct BatchProver {
    pub options: ProofOptions,
    pub statement: AppendStatement,
}

impl Prover for BatchProver {
    type BaseField = BaseElement;
    type Air = AppendAir;
    type Trace = TraceTable<BaseElement>;
    type HashFn = CommitmentHash;
    type VC = MerkleTree<CommitmentHash>;
    type RandomCoin = DefaultRandomCoin<CommitmentHash>;
    type TraceLde<E: FieldElement<BaseField = BaseElement>> = DefaultTraceLde<E, CommitmentHash, Self::VC>;
    type ConstraintCommitment<E: FieldElement<BaseField = BaseElement>> =
        DefaultConstraintCommitment<E, CommitmentHash, Self::VC>;
    type ConstraintEvaluator<'a, E: FieldElement<BaseField = BaseElement>> =
        DefaultConstraintEvaluator<'a, AppendAir, E>;

    fn get_pub_inputs(&self, _trace: &Self::Trace) -> AppendStatement {
        self.statement
    }

    fn options(&self) -> &ProofOptions {
        &self.options
    }

    fn new_trace_lde<E: FieldElement<BaseField = BaseElement>>(
        &self,
        trace_info: &TraceInfo,
        main_trace: &ColMatrix<BaseElement>,
        domain: &StarkDomain<BaseElement>,
        partition_option: PartitionOptions,
    ) -> (Self::TraceLde<E>, TracePolyTable<E>) {
        DefaultTraceLde::new(trace_info, main_trace, domain, partition_option)
    }

    fn build_constraint_commitment<E: FieldElement<BaseField = BaseElement>>(
        &self,
        composition_poly_trace: CompositionPolyTrace<E>,
        num_constraint_composition_columns: usize,
        domain: &StarkDomain<BaseElement>,
        partition_options: PartitionOptions,
    ) -> (Self::ConstraintCommitment<E>, CompositionPoly<E>) {
        DefaultConstraintCommitment::new(
            composition_poly_trace,
            num_constraint_composition_columns,
            domain,
            partition_options,
        )
    }

    fn new_evaluator<'a, E: FieldElement<BaseField = BaseElement>>(
        &self,
        air: &'a AppendAir,
        aux_rand_elements: Option<AuxRandElements<E>>,
        composition_coefficients: ConstraintCompositionCoefficients<E>,
    ) -> Self::ConstraintEvaluator<'a, E> {
        DefaultConstraintEvaluator::new(air, aux_rand_elements, composition_coefficients)
    }
}
