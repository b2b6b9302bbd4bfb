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

use super::Tamper;
use super::air::{
    AppendAir, AppendStatement, C, CAPACITY, CLIMB, CYCLE, D, DEPTH, G, H, LEFT, LH, LL, LS, M, N, OLD, R,
    RC, RIGHT, STATE, WIDTH, merge_capacity, trace_rows,
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
    /// The batch hasher's chained digest of the leaves (`rescue::batch_digest`).
    pub batch_digest: RescueDigest,
    pub old_root: RescueDigest,
    pub new_root: RescueDigest,
}

/// The registers a cycle starts with; see `air.rs` for their meaning.
struct Registers {
    frontier: [RescueDigest; DEPTH],
    /// The size before the current leaf (in a root climb, the size it climbs from).
    size: u64,
    digest: RescueDigest,
}

/// Writes cycles into the trace's columns.
struct Writer {
    columns: Vec<Vec<BaseElement>>,
    /// The batch hasher's states in a cycle that is not a leaf's start.
    idle_batch: [State; CYCLE],
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
    /// Whether it merges with the frontier entry at its level.
    merges: bool,
    /// Whether a leaf's climb goes on after this merge.
    continues: bool,
    /// The size shifted by the level (a field element: a dishonest climb's may not be an
    /// integer).
    shifted: BaseElement,
}

impl Writer {
    /// Writes one cycle and returns the node hasher's output.
    fn cycle(&mut self, registers: &mut Registers, cycle: Cycle) -> RescueDigest {
        let Cycle { node, level, root_climb, leaf_start, merges, continues, shifted } = cycle;
        let mut hasher = if merges {
            merge_input(&registers.frontier[level], &node)
        } else {
            merge_input(&node, &self.zeros[level])
        };
        let row0 = self.cycle * CYCLE;
        // The old root's climb is the first CLIMB cycles.
        let old = self.cycle < CLIMB;
        if merges {
            self.accesses.push(Access {
                row: row0,
                direction: if old { Direction::In } else { Direction::Out },
                level,
                tag: shifted * BaseElement::new(1 << level),
                digest: registers.frontier[level],
            });
        }
        // Registers hold through the cycle.
        let rows = row0..row0 + CYCLE;
        for (j, element) in registers.digest.as_elements().iter().enumerate() {
            self.columns[D + j][rows.clone()].fill(*element);
        }
        let flags = [
            (M, merges),
            (C, continues),
            (RC, root_climb),
            (LS, leaf_start),
            (OLD, old),
            (LH + level / 4, true),
            (LL + level % 4, true),
        ];
        for (column, set) in flags {
            self.columns[column][rows.clone()].fill(BaseElement::from(set));
        }
        self.columns[N][rows.clone()].fill(BaseElement::new(registers.size));
        self.columns[R][rows.clone()].fill(shifted);
        for step in 0..CYCLE {
            put(&mut self.columns, H, row0 + step, &hasher);
            if step + 1 < CYCLE {
                Rp64_256::apply_round(&mut hasher, step);
            }
        }
        // The batch hasher absorbs (D, node) at a leaf's start; in other cycles only its
        // capacity and rounds are constrained, so it runs one permutation computed once.
        if leaf_start {
            let mut batch = merge_input(&registers.digest, &node);
            for step in 0..CYCLE {
                put(&mut self.columns, G, row0 + step, &batch);
                if step + 1 < CYCLE {
                    Rp64_256::apply_round(&mut batch, step);
                }
            }
            registers.digest = digest_of(&batch);
        } else {
            for (step, state) in self.idle_batch.iter().enumerate() {
                put(&mut self.columns, G, row0 + step, state);
            }
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
            let cycle = Cycle {
                node,
                level,
                root_climb: true,
                leaf_start: false,
                merges: (registers.size >> level) & 1 == 1,
                continues: false,
                shifted: BaseElement::new(registers.size >> level),
            };
            node = self.cycle(registers, cycle);
        }
        node
    }

    /// Appends one leaf: merges while the size's bit at the node's level is set, then stores
    /// the node in the frontier. `merges` (tests) makes a dishonest climb merge that many
    /// times instead, whatever the bits.
    fn append(&mut self, registers: &mut Registers, leaf: RescueDigest, merges: Option<usize>) {
        let merges = merges.unwrap_or(registers.size.trailing_ones() as usize);
        let half = BaseElement::new(2).inv();
        let mut shifted = BaseElement::new(registers.size);
        let mut node = leaf;
        for level in 0..=merges {
            let merge = level < merges;
            let continues = level + 1 < merges;
            let leaf_start = level == 0;
            let cycle =
                Cycle { node, level, root_climb: false, leaf_start, merges: merge, continues, shifted };
            let output = self.cycle(registers, cycle);
            if !merge {
                // Stored from the hasher's left input, at the cycle's start.
                self.store(registers, level, node, (self.cycle - 1) * CYCLE);
                break;
            }
            shifted = (shifted - BaseElement::ONE) * half;
            if !continues {
                // Stored from the hasher's output, at the cycle's end.
                self.store(registers, level + 1, output, self.cycle * CYCLE - 1);
                break;
            }
            node = output;
        }
    }

    /// Puts `node` into the frontier at `level`, accounted at `row`: the leaf is appended.
    fn store(&mut self, registers: &mut Registers, level: usize, node: RescueDigest, row: usize) {
        registers.frontier[level] = node;
        registers.size += 1;
        self.accesses.push(Access {
            row,
            direction: Direction::In,
            level,
            tag: BaseElement::new(registers.size),
            digest: node,
        });
    }
}

/// Builds the trace: the old root's climb, the leaves, the new root's climb, and more new-root
/// climbs as padding. The caller makes sure the batch fits the tree. `dishonest` (tests) makes
/// the changes a dishonest prover would: a frontier entry replaced after the old root's climb,
/// or leaves at given positions merging a given number of times.
pub(super) fn build(
    old_size: u64,
    siblings: &[RescueDigest],
    leaves: &[RescueDigest],
    dishonest: Option<Tamper>,
) -> Result<BatchTrace, String> {
    if siblings.len() != DEPTH {
        return Err(format!("{} siblings for a depth-{DEPTH} tree", siblings.len()));
    }
    let rows = trace_rows(old_size, leaves.len() as u64).ok_or("the batch overflows the size")? as usize;
    let mut writer = Writer {
        columns: vec![vec![BaseElement::ZERO; rows]; WIDTH],
        idle_batch: idle_batch(),
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
    if let Some(Tamper::Frontier(level)) = dishonest {
        registers.frontier[level] = writer.zeros[level];
    }
    for leaf in leaves {
        let merges = match dishonest {
            Some(Tamper::Merges(choices)) => {
                choices.iter().find(|(position, _)| *position == registers.size).map(|(_, merges)| *merges)
            }
            _ => None,
        };
        if let Some(merges) = merges
            && (writer.cycle + merges + 1 + CLIMB) * CYCLE > rows
        {
            return Err("the dishonest merges do not fit the trace".into());
        }
        writer.append(&mut registers, *leaf, merges);
    }
    let new_root = writer.root_climb(&mut registers);
    while writer.cycle * CYCLE < rows {
        writer.root_climb(&mut registers);
    }
    debug_assert_eq!(writer.cycle * CYCLE, rows);
    Ok(BatchTrace {
        columns: writer.columns,
        accesses: writer.accesses,
        batch_digest: registers.digest,
        old_root,
        new_root,
    })
}

/// A permutation of `merge`'s capacity and a zero rate, state by state.
fn idle_batch() -> [State; CYCLE] {
    let mut state =
        merge_input(&RescueDigest::new([BaseElement::ZERO; 4]), &RescueDigest::new([BaseElement::ZERO; 4]));
    std::array::from_fn(|step| {
        let current = state;
        if step + 1 < CYCLE {
            Rp64_256::apply_round(&mut state, step);
        }
        current
    })
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
