//! Property tests: every proof verifies, and flipping any bit of a proof, root, leaf, index or
//! size makes verification fail.
//!
//! A Merkle root does not commit to the tree size, so a size is only ever trusted as part of a
//! signed checkpoint: size flips are checked through [`Checkpoint::verify_inclusion`] and
//! [`Checkpoint::verify_extends`] and through the quorum certificate over the checkpoint.

use std::sync::LazyLock;

use proptest::prelude::*;
use pyralog_crypto::merkle::{
    Blake3Merkle, ConsistencyProof, InclusionProof, MemoryNodeStore, MerkleHasher, MerkleTree, VerifyError,
};
use pyralog_crypto::quorum::{QuorumCertificate, QuorumError, SignatureShare};
use pyralog_crypto::{MemberSet, Threshold};

use super::{checkpoint, keypairs};

const MAX_SIZE: u64 = 4096;

fn leaf(i: u64) -> Vec<u8> {
    format!("record {i}").into_bytes()
}

/// One tree of `MAX_SIZE` leaves; proofs for every smaller size come from its history.
static TREE: LazyLock<MerkleTree<Blake3Merkle, MemoryNodeStore>> = LazyLock::new(|| {
    let mut tree = MerkleTree::new(MemoryNodeStore::new());
    let leaves: Vec<Vec<u8>> = (0..MAX_SIZE).map(leaf).collect();
    tree.append_batch(leaves.iter().map(Vec::as_slice)).unwrap();
    tree
});

fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    (1..=MAX_SIZE).prop_flat_map(|size| (Just(size), 0..size))
}

fn old_and_new() -> impl Strategy<Value = (u64, u64)> {
    (1..=MAX_SIZE).prop_flat_map(|new| (0..=new, Just(new)))
}

fn flip(bytes: &mut [u8], bit: usize) {
    bytes[bit / 8 % bytes.len()] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn inclusion_proofs_verify_and_resist_tampering((size, index) in size_and_index(), bit in 0usize..256, pick in any::<usize>()) {
        let tree = &*TREE;
        let root = tree.root_at(size).unwrap();
        let proof = tree.inclusion_proof(index, size).unwrap();
        let data = leaf(index);
        prop_assert_eq!(proof.verify(&data, &root), Ok(()));

        // A bit of one proof element.
        if !proof.path.is_empty() {
            let mut bad = proof.clone();
            let at = pick % bad.path.len();
            flip(&mut bad.path[at].0, bit);
            prop_assert!(matches!(bad.verify(&data, &root), Err(VerifyError::RootMismatch { .. })), "unexpected verification result");
        }
        // A bit of the root.
        let mut bad_root = root;
        flip(&mut bad_root.0, bit);
        prop_assert!(matches!(proof.verify(&data, &bad_root), Err(VerifyError::RootMismatch { .. })), "unexpected verification result");
        // A bit of the leaf.
        let mut bad_data = data.clone();
        flip(&mut bad_data, bit);
        prop_assert!(matches!(proof.verify(&bad_data, &root), Err(VerifyError::RootMismatch { .. })), "unexpected verification result");
        // A bit of the index (any of its 64).
        let bad_index = InclusionProof::<Blake3Merkle>::new(index ^ (1 << (bit % 64)), size, proof.path.clone());
        let refused = bad_index.verify(&data, &root);
        if bad_index.index >= size {
            prop_assert_eq!(refused, Err(VerifyError::IndexOutOfRange { index: bad_index.index, size }));
        } else {
            prop_assert!(
                matches!(refused, Err(VerifyError::RootMismatch { .. } | VerifyError::WrongProofLength { .. })),
                "{:?}", refused
            );
        }
    }

    #[test]
    fn size_is_bound_by_the_signed_checkpoint((size, index) in size_and_index(), bit in 0u32..64) {
        let tree = &*TREE;
        let signed = checkpoint(size, tree.root_at(size).unwrap());
        let proof = tree.inclusion_proof(index, size).unwrap();
        prop_assert_eq!(signed.verify_inclusion(&leaf(index), &proof), Ok(()));

        // The proof claims another size: refused against the checkpoint.
        let flipped = size ^ (1 << bit);
        let bad = InclusionProof::<Blake3Merkle>::new(index, flipped, proof.path.clone());
        prop_assert_eq!(
            signed.verify_inclusion(&leaf(index), &bad),
            Err(VerifyError::WrongTreeSize { claimed: flipped, signed: size })
        );
        // The checkpoint claims another size: its certificate no longer verifies.
        let keys = keypairs(3);
        let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
        let mut cert = QuorumCertificate {
            message: signed.clone(),
            signatures: keys.iter().map(|k| SignatureShare::sign(k, &signed)).collect(),
        };
        prop_assert_eq!(cert.verify(&members, Threshold::MAJORITY), Ok(3));
        cert.message.size = flipped;
        prop_assert_eq!(cert.verify(&members, Threshold::MAJORITY), Err(QuorumError::InvalidSignature(keys[0].public())));
    }

    #[test]
    fn consistency_proofs_verify_and_resist_tampering((old, new) in old_and_new(), bit in 0usize..256, pick in any::<usize>()) {
        let tree = &*TREE;
        let (old_root, new_root) = (tree.root_at(old).unwrap(), tree.root_at(new).unwrap());
        let proof = tree.consistency_proof(old, new).unwrap();
        prop_assert_eq!(proof.verify(&old_root, &new_root), Ok(()));

        if !proof.path.is_empty() {
            let mut bad = proof.clone();
            let at = pick % bad.path.len();
            flip(&mut bad.path[at].0, bit);
            let refused = bad.verify(&old_root, &new_root);
            prop_assert!(
                matches!(refused, Err(VerifyError::OldRootMismatch { .. } | VerifyError::NewRootMismatch { .. })),
                "{:?}", refused
            );
        }
        let mut bad_old = old_root;
        flip(&mut bad_old.0, bit);
        let refused = proof.verify(&bad_old, &new_root);
        // When the old tree is a complete subtree (or the sizes are equal), RFC 9162 seeds the
        // walk with the old root itself, so the mismatch shows on the new root.
        prop_assert!(
            matches!(refused, Err(VerifyError::OldRootMismatch { .. } | VerifyError::NewRootMismatch { .. })),
            "{:?}", refused
        );
        // With equal sizes or an empty old tree there is nothing to prove about the new root.
        if old != new && old != 0 {
            let mut bad_new = new_root;
            flip(&mut bad_new.0, bit);
            let refused = proof.verify(&old_root, &bad_new);
            prop_assert!(matches!(refused, Err(VerifyError::NewRootMismatch { .. })), "{:?}", refused);
        }
    }

    #[test]
    fn consistency_sizes_are_bound_by_the_checkpoints((old, new) in old_and_new(), bit in 0u32..64) {
        let tree = &*TREE;
        let (older, newer) = (checkpoint(old, tree.root_at(old).unwrap()), checkpoint(new, tree.root_at(new).unwrap()));
        let proof = tree.consistency_proof(old, new).unwrap();
        prop_assert_eq!(newer.verify_extends(&older, &proof), Ok(()));

        let bad_old = ConsistencyProof::<Blake3Merkle>::new(old ^ (1 << bit), new, proof.path.clone());
        prop_assert!(matches!(newer.verify_extends(&older, &bad_old), Err(VerifyError::WrongTreeSize { .. })), "unexpected verification result");
        let bad_new = ConsistencyProof::<Blake3Merkle>::new(old, new ^ (1 << bit), proof.path.clone());
        prop_assert!(matches!(newer.verify_extends(&older, &bad_new), Err(VerifyError::WrongTreeSize { .. })), "unexpected verification result");
    }

    /// A fork: two trees that share a prefix and then differ are never consistent.
    #[test]
    fn forks_are_detected((old, new) in old_and_new(), fork_at in any::<u64>()) {
        prop_assume!(old > 0 && old < new);
        let fork_at = fork_at % old;
        let mut forked = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
        let leaves: Vec<Vec<u8>> = (0..new).map(|i| if i == fork_at { b"forged".to_vec() } else { leaf(i) }).collect();
        forked.append_batch(leaves.iter().map(Vec::as_slice)).unwrap();
        let honest_old = TREE.root_at(old).unwrap();
        // The forked server proves its own history; the client holds the honest old root.
        let proof = forked.consistency_proof(old, new).unwrap();
        let refused = proof.verify(&honest_old, &forked.root());
        prop_assert!(
            matches!(refused, Err(VerifyError::OldRootMismatch { .. } | VerifyError::NewRootMismatch { .. })),
            "{:?}", refused
        );
    }

    /// Freshly built trees of any size agree with the shared tree's history and with a naive
    /// recomputation of the root.
    #[test]
    fn fresh_trees_match_history(size in 0u64..600) {
        let mut fresh = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
        for i in 0..size {
            fresh.append(&leaf(i)).unwrap();
        }
        prop_assert_eq!(fresh.root(), TREE.root_at(size).unwrap());
        let mut level: Vec<_> = (0..size).map(|i| Blake3Merkle::hash_leaf(&leaf(i))).collect();
        if level.is_empty() {
            prop_assert_eq!(fresh.root(), Blake3Merkle::empty_root());
        } else {
            // Bottom-up pairing with odd nodes promoted: the RFC 6962 root, computed another way.
            while level.len() > 1 {
                level = level.chunks(2).map(|pair| match pair {
                    [l, r] => Blake3Merkle::hash_children(l, r),
                    [single] => *single,
                    _ => unreachable!(),
                }).collect();
            }
            prop_assert_eq!(fresh.root(), level[0]);
        }
    }
}
