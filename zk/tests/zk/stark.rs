//! The append-batch STARK: honest batches verify with the native tree's roots; every public
//! input, the proof bytes, the trace's cells and the security level are bound.

use proptest::prelude::*;
use pyralog_zk::RescueTree;
use pyralog_zk::rescue::{RescueDigest, batch_digest, record_leaf};
use pyralog_zk::stark::{
    AppendProof, AppendStatement, MIN_SECURITY_BITS, StarkError, TRACE_WIDTH, Tamper, leaf_cycles,
    proof_options, prove_appends, prove_appends_with, prove_tampered, trace_rows, verify_appends,
};
use winter_utils::Serializable;
use winterfell::{BatchingMethod, FieldExtension, ProofOptions};

fn leaf(i: u64) -> RescueDigest {
    record_leaf(Some(&i.to_le_bytes()), format!("value {i}").as_bytes())
}

fn tree_of(size: u64) -> RescueTree {
    let mut tree = RescueTree::new(32).unwrap();
    for i in 0..size {
        tree.append(leaf(i)).unwrap();
    }
    tree
}

fn rejected(result: Result<(), StarkError>) -> bool {
    matches!(result, Err(StarkError::Rejected(_)))
}

/// A batch after an odd-sized tree (its trace is padded with more climbs).
#[test]
fn honest_batch_verifies_and_every_public_input_is_bound() {
    let tree = tree_of(11);
    let (statement, proof) = prove_appends(&tree, 5, 11).unwrap();
    let leaves: Vec<RescueDigest> = (5..11).map(leaf).collect();
    assert_eq!(statement.old_root, tree.root_at(5).unwrap());
    assert_eq!(statement.new_root, tree.root_at(11).unwrap());
    assert_eq!((statement.old_size, statement.count), (5, 6));
    assert_eq!(statement.batch_digest, batch_digest(&leaves));
    assert!(proof.security_bits() >= MIN_SECURITY_BITS, "{} bits", proof.security_bits());
    verify_appends(&statement, &proof).unwrap();

    let bytes = proof.to_bytes();
    let decoded = AppendProof::from_bytes(&bytes).unwrap();
    verify_appends(&statement, &decoded).unwrap();
    assert!(matches!(
        AppendProof::from_bytes(&[bytes.clone(), vec![0]].concat()),
        Err(StarkError::Malformed(_))
    ));

    let mut reordered = leaves.clone();
    reordered.swap(0, 1);
    let wrong: Vec<(&str, AppendStatement)> = vec![
        ("new root of another size", AppendStatement { new_root: tree.root_at(10).unwrap(), ..statement }),
        ("old root of another size", AppendStatement { old_root: tree.root_at(4).unwrap(), ..statement }),
        ("old size", AppendStatement { old_size: 4, ..statement }),
        ("old size", AppendStatement { old_size: 6, ..statement }),
        ("count one less", AppendStatement { count: 5, ..statement }),
        ("count one more", AppendStatement { count: 7, ..statement }),
        ("count of another trace length", AppendStatement { count: 60, ..statement }),
        ("digest of other leaves", AppendStatement { batch_digest: batch_digest(&leaves[1..]), ..statement }),
        (
            "digest of reordered leaves",
            AppendStatement { batch_digest: batch_digest(&reordered), ..statement },
        ),
    ];
    for (what, statement) in wrong {
        assert!(rejected(verify_appends(&statement, &proof)), "{what}: {statement:?}");
    }
}

/// The first append of a tree, a batch after a full subtree, and one leaf that merges up three
/// levels (position 11); and a batch whose climbs end on the trace's last row (no padding, so
/// the memory is checked there).
#[test]
fn edge_batches_verify() {
    let tree = tree_of(45);
    assert_eq!(trace_rows(0, 45), Some((leaf_cycles(0, 45).unwrap() + 64) * 8));
    let (statement, proof) = prove_appends(&tree, 0, 45).unwrap();
    verify_appends(&statement, &proof).unwrap();
    assert_eq!(statement.new_root, tree.root_at(45).unwrap());

    let tree = tree_of(12);
    for (from, to) in [(0, 1), (8, 12), (11, 12)] {
        let (statement, proof) = prove_appends(&tree, from, to).unwrap();
        verify_appends(&statement, &proof).unwrap();
        assert_eq!(statement.new_root, tree.root_at(to).unwrap());
        // A proof proves its own batch only.
        let (shifted_from, shifted_to) = if to < 12 { (from + 1, to + 1) } else { (from - 1, to - 1) };
        let (other, _) = prove_appends(&tree, shifted_from, shifted_to).unwrap();
        let refused = verify_appends(&other, &proof);
        assert!(
            matches!(refused, Err(StarkError::Rejected(_))),
            "{from}..{to} proves {other:?}: {refused:?}"
        );
    }
}

#[test]
fn tampered_proof_bytes_are_refused() {
    let tree = tree_of(6);
    let (statement, proof) = prove_appends(&tree, 2, 6).unwrap();
    let bytes = proof.to_bytes();
    for position in [0, 7, 40, bytes.len() / 3, bytes.len() / 2, bytes.len() - 9, bytes.len() - 1] {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x10;
        let outcome = AppendProof::from_bytes(&tampered).and_then(|proof| verify_appends(&statement, &proof));
        assert!(
            matches!(outcome, Err(StarkError::Rejected(_) | StarkError::Malformed(_))),
            "flipping byte {position} of {} gave {outcome:?}",
            bytes.len()
        );
    }
}

/// One changed cell in each part of the trace makes the proof fail: the AIR constrains them
/// all. The batch appends leaves 6, 7 and 8 to a tree of 6 (bits 110): the old root's climb is
/// cycles 0..32 (rows 0..256), leaf 6 stores at level 0 (cycle 32), leaf 7 merges with it, F[1]
/// and F[2] and stores at level 3 (cycles 33..36), leaf 8 stores at level 0 (cycle 36), and the
/// new root's climb starts at cycle 37.
#[test]
fn a_changed_trace_cell_fails_verification() {
    let tree = tree_of(9);
    let (h, g, d, m, c, rc, ls, old, lh, ll, n, r) = (0, 12, 24, 28, 29, 30, 31, 32, 33, 41, 45, 46);
    assert_eq!(TRACE_WIDTH, r + 1);
    let cycle = |n: usize| n * 8;
    let cells = [
        (h + 5, 3),              // the node hasher, mid-permutation
        (h + 4, cycle(1)),       // the old climb's left input at level 1 (F[1])
        (h + 9, cycle(2)),       // its right input at level 2 (the node)
        (h + 8, cycle(0)),       // an empty subtree beside the old climb
        (h, cycle(3)),           // a permutation's capacity
        (h + 6, cycle(34)),      // the frontier entry a merge reads (F[1])
        (h + 5, cycle(40)),      // F[3] in the new root's climb
        (g + 9, cycle(33)),      // the leaf the batch hasher absorbs
        (g + 5, cycle(36)),      // the digest it absorbs it into
        (d + 1, cycle(34) + 3),  // the carried digest
        (h + 10, cycle(34)),     // the node a continued climb carries (merged: right)
        (h + 4, cycle(32)),      // a leaf stored without a merge (left)
        (m, cycle(33)),          // a merge flag
        (m, cycle(32) + 3),      // a merge flag inside a cycle (read at its start and end)
        (c, cycle(33) + 2),      // a continue flag inside a cycle
        (c, cycle(33) + 7),      // a continue flag
        (rc, cycle(35)),         // the mode
        (ls, cycle(34)),         // a leaf's start
        (old, cycle(32)),        // the old climb's flag after it
        (old, cycle(31) + 5),    // and inside it
        (ll + 1, cycle(34) + 2), // the level (1 at cycle 34)
        (lh, cycle(38) + 7),     // its high part at a cycle's end
        (n, cycle(38) + 1),      // the size in the new root's climb
        (n, cycle(33) + 4),      // the size during a leaf's climb
        (r, cycle(34)),          // the shifted size in a leaf's climb (7 >> 1)
        (r, cycle(5) + 2),       // and in the old root's climb (6 >> 5)
    ];
    for (column, row) in cells {
        let (statement, proof) = prove_tampered(&tree, 6, 9, Tamper::Cell(column, row)).unwrap();
        assert!(rejected(verify_appends(&statement, &proof)), "cell ({column}, {row}) is unconstrained");
    }
}

/// A prover that merges where the size says not to and stops where it says to merge, with
/// the cycles adding up and every hash consistent, is caught by the memory: the batch appends
/// leaves 6, 7 and 8 to a tree of 6; leaf 7 (bits 111) merges twice instead of three times
/// (storing at level 2, leaving F[2] in the memory) and leaf 8 (1000) merges twice instead of
/// never (taking out entries no one put in), 1 + 2 + 2 cycles as the honest 1 + 3 + 1. With
/// the honest counts the same machinery proves a verifying batch.
#[test]
fn merges_against_the_size_fail_verification() {
    let tree = tree_of(9);
    let (statement, proof) = prove_tampered(&tree, 6, 9, Tamper::Merges([(7, 2), (8, 2)])).unwrap();
    assert_eq!(statement.old_root, tree.root_at(6).unwrap());
    assert!(rejected(verify_appends(&statement, &proof)), "a dishonest climb verified");
    // Leaf 4 (100) merging once and leaf 5 (101) not at all, where the sizes say the
    // opposite: one cycle each either way.
    let tree = tree_of(8);
    let (statement, proof) = prove_tampered(&tree, 4, 6, Tamper::Merges([(4, 1), (5, 0)])).unwrap();
    assert!(rejected(verify_appends(&statement, &proof)), "a dishonest climb verified");
    // The control: the honest counts through the same path.
    let tree = tree_of(9);
    let (statement, proof) = prove_tampered(&tree, 6, 9, Tamper::Merges([(7, 3), (8, 0)])).unwrap();
    assert_eq!(statement.new_root, tree.root_at(9).unwrap());
    verify_appends(&statement, &proof).unwrap();
}

/// A prover that replaces a frontier entry after the old root's climb and builds the rest of
/// the trace on it, every hash consistent (its statement names the new root it reached), is
/// caught by the memory alone: what the merges and the new root's climb read is not what the
/// old climb and the stores put in. Levels 1 and 2 of the tree of 6 are read by leaf 7's merges.
#[test]
fn a_forged_frontier_fails_verification() {
    let tree = tree_of(9);
    for level in [1, 2] {
        let (statement, proof) = prove_tampered(&tree, 6, 9, Tamper::Frontier(level)).unwrap();
        assert_ne!(
            statement.new_root,
            tree.root_at(9).unwrap(),
            "level {level}: the forgery changed the root"
        );
        assert_eq!(statement.old_root, tree.root_at(6).unwrap());
        assert!(rejected(verify_appends(&statement, &proof)), "a forged F[{level}] verified");
    }
    // A large batch: an entry the old climb put in at level 5 and the batch merges much later.
    let tree = tree_of(100);
    let (statement, proof) = prove_tampered(&tree, 37, 100, Tamper::Frontier(5)).unwrap();
    assert_ne!(statement.new_root, tree.root_at(100).unwrap());
    assert!(rejected(verify_appends(&statement, &proof)));
    // The control: forging a level the batch never reads (old size 6 has no entry at level 0,
    // and leaf 6 stores there before anything reads it) leaves an honest, verifying proof.
    let tree = tree_of(9);
    let (statement, proof) = prove_tampered(&tree, 6, 9, Tamper::Frontier(0)).unwrap();
    assert_eq!(statement.new_root, tree.root_at(9).unwrap());
    verify_appends(&statement, &proof).unwrap();
}

#[test]
fn weak_options_are_refused() {
    let tree = tree_of(4);
    let weak = ProofOptions::new(
        12,
        8,
        0,
        FieldExtension::Quadratic,
        8,
        255,
        BatchingMethod::Linear,
        BatchingMethod::Linear,
    );
    let (statement, proof) = prove_appends_with(&tree, 1, 4, weak).unwrap();
    assert!(proof.security_bits() < MIN_SECURITY_BITS);
    let error = verify_appends(&statement, &proof).unwrap_err();
    assert!(matches!(&error, StarkError::Rejected(why) if why.contains("security")), "{error}");
    // Without the extension field the security is capped by the 64-bit field.
    let base = ProofOptions::new(
        40,
        8,
        16,
        FieldExtension::None,
        8,
        255,
        BatchingMethod::Linear,
        BatchingMethod::Linear,
    );
    let (statement, proof) = prove_appends_with(&tree, 1, 4, base).unwrap();
    assert!(rejected(verify_appends(&statement, &proof)));
}

/// The offset of the proof options inside a proof's encoding (they follow the trace shape).
fn options_offset(bytes: &[u8]) -> usize {
    let options = proof_options().to_bytes();
    let found: Vec<usize> =
        bytes.windows(options.len()).enumerate().filter(|(_, w)| *w == options).map(|(i, _)| i).collect();
    assert_eq!(found.len(), 1, "the options appear once near the start");
    found[0]
}

/// Option values Winterfell asserts on (instead of returning an error) are a typed error for
/// untrusted bytes, not a panic: a blowup that is not a power of two, no queries, and a blowup
/// below what the constraints need with enough queries to still claim 96 bits.
#[test]
fn invalid_options_in_proof_bytes_are_typed_errors() {
    let tree = tree_of(4);
    let (statement, proof) = prove_appends(&tree, 1, 4).unwrap();
    let bytes = proof.to_bytes();
    let at = options_offset(&bytes);
    let (queries, blowup) = (at, at + 1);
    for (index, value) in [(blowup, 3u8), (blowup, 0), (queries, 0)] {
        let mut crafted = bytes.clone();
        crafted[index] = value;
        assert!(
            matches!(AppendProof::from_bytes(&crafted), Err(StarkError::Malformed(_))),
            "byte {index} = {value}"
        );
    }
    // 42 queries at blowup 4 with 16 bits of grinding claim over 96 bits, but the AIR's
    // degree-8 constraints need a blowup of 8.
    let mut crafted = bytes.clone();
    crafted[queries] = 42;
    crafted[blowup] = 4;
    let low_blowup = AppendProof::from_bytes(&crafted).unwrap();
    assert!(low_blowup.security_bits() >= MIN_SECURITY_BITS);
    let error = verify_appends(&statement, &low_blowup).unwrap_err();
    assert!(matches!(&error, StarkError::Rejected(why) if why.contains("blowup")), "{error}");
}

#[test]
fn bad_requests_are_typed_errors() {
    let tree = tree_of(4);
    assert_eq!(prove_appends(&tree, 2, 2).unwrap_err(), StarkError::EmptyBatch);
    assert_eq!(prove_appends(&tree, 3, 2).unwrap_err(), StarkError::EmptyBatch);
    assert!(matches!(prove_appends(&tree, 2, 5), Err(StarkError::Tree(_))));
    let shallow = RescueTree::new(16).unwrap();
    assert_eq!(prove_appends(&shallow, 0, 0).unwrap_err(), StarkError::WrongDepth(16));

    let (statement, proof) = prove_appends(&tree, 0, 4).unwrap();
    assert_eq!(
        verify_appends(&AppendStatement { count: 0, ..statement }, &proof),
        Err(StarkError::EmptyBatch)
    );
    let full = AppendStatement { old_size: (1 << 32) - 4, ..statement };
    assert!(matches!(verify_appends(&full, &proof), Err(StarkError::TooLarge { .. })));
    let near_full = AppendStatement { old_size: (1 << 32) - 2, ..statement };
    assert!(matches!(verify_appends(&near_full, &proof), Err(StarkError::TooLarge { .. })));
    let huge = AppendStatement { count: u64::MAX, ..statement };
    assert!(matches!(verify_appends(&huge, &proof), Err(StarkError::TooLarge { .. })));
    assert!(matches!(AppendProof::from_bytes(b"not a proof"), Err(StarkError::Malformed(_))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// The roots the AIR computes are the native tree's, for random positions and batches.
    #[test]
    fn air_roots_are_the_native_roots(from in 0u64..300, count in 1u64..10) {
        let tree = tree_of(from + count);
        let (statement, proof) = prove_appends(&tree, from, from + count).unwrap();
        prop_assert_eq!(statement.old_root, tree.root_at(from).unwrap());
        prop_assert_eq!(statement.new_root, tree.root_at(from + count).unwrap());
        prop_assert!(verify_appends(&statement, &proof).is_ok());
    }

    /// Any two leaves of a batch merging other counts than their positions' trailing ones,
    /// with the cycles adding up (so only the memory can tell), are refused.
    #[test]
    fn dishonest_merge_counts_are_refused(
        from in 0u64..200,
        count in 2u64..12,
        picks in (0u64..12, 0u64..12),
        shift in 1usize..4,
    ) {
        let (first, second) = (from + picks.0 % count, from + picks.1 % count);
        prop_assume!(first < second);
        let honest = |position: u64| position.trailing_ones() as usize;
        let cycles = |merges: usize| merges.max(1);
        // Move `shift` cycles from one leaf to the other (a leaf of one cycle can instead
        // merge once: the same cost).
        let (a, b) = (honest(first), honest(second));
        let budget = cycles(a) + cycles(b);
        let mut choices = Vec::new();
        for merges_a in 0..=8usize {
            for merges_b in 0..=8usize {
                if cycles(merges_a) + cycles(merges_b) == budget && (merges_a, merges_b) != (a, b) {
                    choices.push((merges_a, merges_b));
                }
            }
        }
        prop_assume!(!choices.is_empty());
        let (merges_a, merges_b) = choices[shift % choices.len()];
        let tree = tree_of(from + count);
        let tamper = Tamper::Merges([(first, merges_a), (second, merges_b)]);
        let proved = prove_tampered(&tree, from, from + count, tamper);
        prop_assume!(proved.is_ok());
        let (statement, proof) = proved.unwrap();
        prop_assert!(
            rejected(verify_appends(&statement, &proof)),
            "leaves {first} and {second} merging {merges_a} and {merges_b} times (honest {a} and {b}) verified"
        );
    }
}

/// The closed form the verifier uses counts the cycles the incremental append takes, position
/// by position (max(1, trailing ones) each).
#[test]
fn leaf_cycles_match_the_append_loop() {
    let walk = |from: u64, count: u64| -> u64 {
        (from..from + count).map(|p| u64::from(p.trailing_ones().max(1))).sum()
    };
    for old_size in 0..70u64 {
        for count in 1..40u64 {
            assert_eq!(leaf_cycles(old_size, count), Some(walk(old_size, count)), "{old_size} + {count}");
        }
    }
    let near_top = (1u64 << 32) - 40;
    assert_eq!(leaf_cycles(near_top, 39), Some(walk(near_top, 39)));
    // Two climbs of 32 cycles, 8 rows each, padded to a power of two.
    assert_eq!(trace_rows(0, 1), Some(1024));
    assert_eq!(trace_rows(0, 16_384), Some(262_144));
    // Unchecked sizes give no count rather than a wrapped one.
    assert_eq!(leaf_cycles(u64::MAX, 1), None);
    assert_eq!(trace_rows(2, u64::MAX - 1), None);
    assert_eq!(trace_rows(0, u64::MAX), None);
}
