//! The execution trace of an append batch, and the Winterfell prover over it.

use winter_crypto::hashers::{Blake3_256, Rp64_256};
use winter_crypto::{DefaultRandomCoin, MerkleTree};
use winterfell::math::FieldElement;
use winterfell::math::fields::f64::BaseElement;
use winterfell::matrix::ColMatrix;
use winterfell::{
    AuxRandElements, CompositionPoly, CompositionPolyTrace, ConstraintCompositionCoefficients,
    DefaultConstraintCommitment, DefaultConstraintEvaluator, DefaultTraceLde, EvaluationFrame,
    PartitionOptions, ProofOptions, Prover, StarkDomain, Trace, TraceInfo, TracePolyTable,
};

use super::air::{
    AppendAir, AppendStatement, B, C, CAPACITY, CLIMB, CYCLE, D, DEPTH, G, H, LEFT, LH, LL, LS, M, OLD, RC,
    RIGHT, STATE, WIDTH, merge_capacity, trace_rows,
};
use super::memory::{self, Access, Direction};
use crate::rescue::{RescueDigest, RescueHasher};
use crate::tree::empty_subtrees;

/// The hash of the proof's commitments.
pub(super) type CommitmentHash = Blake3_256<BaseElement>;

type State = [BaseElement; STATE];

/// The trace of appending `leaves` at `old_size`, whose next slot has `siblings` (from
/// `AppendTree::append_path`), with the roots its two climbs reached.
pub(super) struct BatchTrace {
    pub columns: Vec<Vec<BaseElement>>,
    /// The frontier's accesses, for the auxiliary segment.
    pub accesses: Vec<Access>,
    pub old_root: RescueDigest,
    pub new_root: RescueDigest,
}

/// The registers a cycle starts with; see `air.rs` for their meaning.
struct Registers {
    frontier: [RescueDigest; DEPTH],
    size: u64,
    digest: RescueDigest,
}

/// Writes cycles into the trace's columns.
struct Writer {
    columns: Vec<Vec<BaseElement>>,
    accesses: Vec<Access>,
    cycle: usize,
    zeros: Vec<RescueDigest>,
}

/// What one cycle does besides hashing.
struct Cycle {
    node: RescueDigest,
    level: usize,
    root_climb: bool,
    leaf_start: bool,
}

impl Writer {
    /// Writes one cycle and returns the node hasher's output.
    fn cycle(&mut self, registers: &mut Registers, cycle: Cycle) -> RescueDigest {
        let Cycle { node, level, root_climb, leaf_start } = cycle;
        let merges = (registers.size >> level) & 1 == 1;
        let next_bit = level + 1 < DEPTH && (registers.size >> (level + 1)) & 1 == 1;
        let mut hasher = if merges {
            merge_input(&registers.frontier[level], &node)
        } else {
            merge_input(&node, &self.zeros[level])
        };
        let mut batch = merge_input(&registers.digest, &node);
        let row0 = self.cycle * CYCLE;
        // The old root's climb is the first CLIMB cycles.
        let old = self.cycle < CLIMB;
        if merges {
            self.accesses.push(Access {
                row: row0,
                direction: if old { Direction::In } else { Direction::Out },
                tag: registers.size >> level << level,
                digest: registers.frontier[level],
            });
        }
        for step in 0..CYCLE {
            let row = row0 + step;
            put(&mut self.columns, H, row, &hasher);
            put(&mut self.columns, G, row, &batch);
            put(&mut self.columns, D, row, registers.digest.as_elements());
            self.columns[M][row] = BaseElement::from(merges);
            self.columns[C][row] = BaseElement::from(merges && next_bit);
            self.columns[RC][row] = BaseElement::from(root_climb);
            self.columns[LS][row] = BaseElement::from(leaf_start);
            self.columns[OLD][row] = BaseElement::from(old);
            self.columns[LH + level / 4][row] = BaseElement::ONE;
            self.columns[LL + level % 4][row] = BaseElement::ONE;
            for l in 0..DEPTH {
                self.columns[B + l][row] = BaseElement::from((registers.size >> l) & 1 == 1);
            }
            if step + 1 < CYCLE {
                Rp64_256::apply_round(&mut hasher, step);
                Rp64_256::apply_round(&mut batch, step);
            }
        }
        if leaf_start {
            registers.digest = digest_of(&batch);
        }
        self.cycle += 1;
        digest_of(&hasher)
    }

    /// A climb from the empty slot at the tree's size to the root, which it returns; it stops
    /// early at the trace's end (the last padding climb is cut short, unconstrained past it).
    fn root_climb(&mut self, registers: &mut Registers) -> RescueDigest {
        let mut node = self.zeros[0];
        for level in 0..CLIMB {
            if self.cycle * CYCLE == self.columns[0].len() {
                break;
            }
            node = self.cycle(registers, Cycle { node, level, root_climb: true, leaf_start: false });
        }
        node
    }

    /// Appends one leaf: merges while the size's bit at the node's level is set, then stores
    /// the node in the frontier.
    fn append(&mut self, registers: &mut Registers, leaf: RescueDigest) {
        let mut node = leaf;
        let mut level = 0;
        loop {
            let leaf_start = level == 0;
            let merges = (registers.size >> level) & 1 == 1;
            let output = self.cycle(registers, Cycle { node, level, root_climb: false, leaf_start });
            if !merges {
                // Stored from the hasher's left input, at the cycle's start.
                self.store(registers, level, node, (self.cycle - 1) * CYCLE);
                break;
            }
            // The merged subtree leaves the frontier: its bit clears.
            registers.size -= 1 << level;
            level += 1;
            if (registers.size >> level) & 1 == 0 {
                // Stored from the hasher's output, at the cycle's end.
                self.store(registers, level, output, self.cycle * CYCLE - 1);
                break;
            }
            node = output;
        }
    }

    /// Puts `node` into the frontier at `level`, accounted at `row`.
    fn store(&mut self, registers: &mut Registers, level: usize, node: RescueDigest, row: usize) {
        registers.frontier[level] = node;
        registers.size += 1 << level;
        self.accesses.push(Access { row, direction: Direction::In, tag: registers.size, digest: node });
    }
}

/// Builds the trace: the old root's climb, the leaves, the new root's climb, and more new-root
/// climbs as padding. The caller makes sure the batch fits the tree. `forged` (tests) replaces
/// the frontier entry at that level after the old root's climb, as a dishonest prover would.
pub(super) fn build(
    old_size: u64,
    siblings: &[RescueDigest],
    leaves: &[RescueDigest],
    forged: Option<usize>,
) -> Result<BatchTrace, String> {
    if siblings.len() != DEPTH {
        return Err(format!("{} siblings for a depth-{DEPTH} tree", siblings.len()));
    }
    let rows = trace_rows(old_size, leaves.len() as u64).ok_or("the batch overflows the size")? as usize;
    let mut writer = Writer {
        columns: vec![vec![BaseElement::ZERO; rows]; WIDTH],
        accesses: Vec::new(),
        cycle: 0,
        zeros: empty_subtrees::<RescueHasher>(DEPTH),
    };
    // The append path's left siblings are the frontier; the right ones are empty subtrees,
    // which the climb takes from its constants (the other entries are never read before a
    // store writes them).
    let mut registers = Registers {
        frontier: siblings.try_into().expect("DEPTH siblings"),
        size: old_size,
        digest: crate::rescue::batch_start(),
    };
    let old_root = writer.root_climb(&mut registers);
    if let Some(level) = forged {
        registers.frontier[level] = writer.zeros[level];
    }
    for leaf in leaves {
        writer.append(&mut registers, *leaf);
    }
    let new_root = writer.root_climb(&mut registers);
    while writer.cycle * CYCLE < rows {
        writer.root_climb(&mut registers);
    }
    debug_assert_eq!(writer.cycle * CYCLE, rows);
    debug_assert_eq!(registers.digest, crate::rescue::batch_digest(leaves));
    Ok(BatchTrace { columns: writer.columns, accesses: writer.accesses, old_root, new_root })
}

fn merge_input(left: &RescueDigest, right: &RescueDigest) -> State {
    let mut state = [BaseElement::ZERO; STATE];
    state[CAPACITY].copy_from_slice(&merge_capacity());
    state[LEFT].copy_from_slice(left.as_elements());
    state[RIGHT].copy_from_slice(right.as_elements());
    state
}

fn digest_of(state: &State) -> RescueDigest {
    RescueDigest::new(state[LEFT].try_into().expect("4 elements"))
}

fn put(columns: &mut [Vec<BaseElement>], first: usize, row: usize, values: &[BaseElement]) {
    for (j, value) in values.iter().enumerate() {
        columns[first + j][row] = *value;
    }
}

/// A batch's main trace with the frontier's accesses the auxiliary segment is built from.
pub(super) struct AppendTrace {
    info: TraceInfo,
    main: ColMatrix<BaseElement>,
    accesses: Vec<Access>,
}

impl AppendTrace {
    pub(super) fn new(columns: Vec<Vec<BaseElement>>, accesses: Vec<Access>) -> Self {
        let rows = columns[0].len();
        let info = TraceInfo::new_multi_segment(WIDTH, memory::AUX_WIDTH, memory::RANDS, rows, Vec::new());
        AppendTrace { info, main: ColMatrix::new(columns), accesses }
    }
}

impl Trace for AppendTrace {
    type BaseField = BaseElement;

    fn info(&self) -> &TraceInfo {
        &self.info
    }

    fn main_segment(&self) -> &ColMatrix<BaseElement> {
        &self.main
    }

    fn read_main_frame(&self, row: usize, frame: &mut EvaluationFrame<BaseElement>) {
        let next = (row + 1) % self.info.length();
        self.main.read_row_into(row, frame.current_mut());
        self.main.read_row_into(next, frame.next_mut());
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
    type Trace = AppendTrace;
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

    fn build_aux_trace<E: FieldElement<BaseField = BaseElement>>(
        &self,
        main_trace: &AppendTrace,
        aux_rand_elements: &AuxRandElements<E>,
    ) -> ColMatrix<E> {
        let rows = main_trace.info.length();
        let product = memory::running_product(rows, &main_trace.accesses, aux_rand_elements.rand_elements());
        ColMatrix::new(vec![product])
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
