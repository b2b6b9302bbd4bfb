//! The append-batch STARK: honest batches verify with the native tree's roots; every public
//! input, the proof bytes, the trace's cells and the security level are bound.

use proptest::prelude::*;
use pyralog_zk::RescueTree;
use pyralog_zk::rescue::{RescueDigest, batch_digest, record_leaf};
use pyralog_zk::stark::{
    AppendProof, AppendStatement, MIN_SECURITY_BITS, StarkError, TRACE_WIDTH, prove_appends,
    prove_appends_with, prove_tampered, verify_appends,
};
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

/// A batch that needs padding (6 leaves in 8 slots) after an odd-sized tree.
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
        ("count within the padding", AppendStatement { count: 5, ..statement }),
        ("count within the padding", AppendStatement { count: 7, ..statement }),
        ("count of another trace length", AppendStatement { count: 9, ..statement }),
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

/// The first append of a tree, and a power-of-two batch (no padding) after a full subtree.
#[test]
fn edge_batches_verify() {
    let tree = tree_of(12);
    for (from, to) in [(0, 1), (8, 12), (11, 12)] {
        let (statement, proof) = prove_appends(&tree, from, to).unwrap();
        verify_appends(&statement, &proof).unwrap();
        assert_eq!(statement.new_root, tree.root_at(to).unwrap());
        // A proof proves its own batch only.
        let (shifted_from, shifted_to) = if to < 12 { (from + 1, to + 1) } else { (from - 1, to - 1) };
        let (other, _) = prove_appends(&tree, shifted_from, shifted_to).unwrap();
        assert!(verify_appends(&other, &proof).is_err(), "{from}..{to} proves {other:?}");
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
        assert!(outcome.is_err(), "flipping byte {position} of {} passed", bytes.len());
    }
}

/// One changed cell in each part of the trace (a hasher's round, the shared sibling, the leaf,
/// the position's bit and shift, the index, the root register, the carried digest) makes the
/// proof fail: the AIR constrains them all.
#[test]
fn a_changed_trace_cell_fails_verification() {
    let tree = tree_of(9);
    let slot = 256;
    let (old, new, batch, bit, pos, index, root) = (0, 12, 24, 36, 37, 38, 39);
    assert_eq!(TRACE_WIDTH, root + 4);
    let cells = [
        (old + 5, 3),               // old path, mid-permutation
        (new + 9, slot + 8),        // new path's input at level 1 of the second slot
        (old + 9, 0),               // the first slot's sibling, old side only
        (new + 4, slot),            // the second slot's leaf (or sibling), new side only
        (batch + 10, slot),         // the leaf the batch hasher absorbs
        (bit, slot + 40),           // a bit
        (pos, 2 * slot + 16),       // a shifted position
        (index, slot + 100),        // the index
        (root + 2, slot + 30),      // the root register
        (batch + 6, 2 * slot + 77), // the carried digest
        (old, 8),                   // a permutation's capacity
    ];
    for (column, row) in cells {
        let (statement, proof) = prove_tampered(&tree, 6, 9, column, row).unwrap();
        assert!(rejected(verify_appends(&statement, &proof)), "cell ({column}, {row}) is unconstrained");
    }
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
}
