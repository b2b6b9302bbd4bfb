//! External check: with SHA-256 the tree reproduces the published RFC 6962 reference vectors
//! (see `tests/data/rfc6962_sha256.json` for their source).

use pyralog_crypto::Digest;
use pyralog_crypto::merkle::{
    ConsistencyProof, InclusionProof, MemoryNodeStore, MerkleHasher, MerkleTree, NodeId, NodeReader,
    Sha256Rfc6962, VerifyError, verify_consistency, verify_inclusion,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    leaves: Vec<String>,
    roots_by_size: Vec<Digest>,
    node_hashes_by_level: Vec<Vec<Digest>>,
    inclusion_proofs: Vec<InclusionVector>,
    consistency_proofs: Vec<ConsistencyVector>,
}

#[derive(Deserialize)]
struct InclusionVector {
    index: u64,
    size: u64,
    path: Vec<Digest>,
}

#[derive(Deserialize)]
struct ConsistencyVector {
    old_size: u64,
    new_size: u64,
    path: Vec<Digest>,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("../data/rfc6962_sha256.json")).unwrap()
}

fn leaves(v: &Vectors) -> Vec<Vec<u8>> {
    v.leaves.iter().map(|l| hex::decode(l).unwrap()).collect()
}

fn tree(v: &Vectors) -> MerkleTree<Sha256Rfc6962, MemoryNodeStore> {
    let mut tree = MerkleTree::new(MemoryNodeStore::new());
    tree.append_batch(leaves(v).iter().map(Vec::as_slice)).unwrap();
    tree
}

#[test]
fn roots_at_every_size() {
    let v = vectors();
    let mut tree = MerkleTree::<Sha256Rfc6962, _>::new(MemoryNodeStore::new());
    assert_eq!(tree.root(), v.roots_by_size[0]);
    assert_eq!(Sha256Rfc6962::empty_root(), v.roots_by_size[0]);
    for (i, leaf) in leaves(&v).iter().enumerate() {
        tree.append(leaf).unwrap();
        assert_eq!(tree.root(), v.roots_by_size[i + 1], "root at size {}", i + 1);
    }
    for (size, root) in v.roots_by_size.iter().enumerate() {
        assert_eq!(tree.root_at(size as u64).unwrap(), *root, "historical root at size {size}");
    }
}

#[test]
fn stored_nodes_are_the_reference_subtree_hashes() {
    let v = vectors();
    let tree = tree(&v);
    for (level, hashes) in v.node_hashes_by_level.iter().enumerate() {
        for (index, hash) in hashes.iter().enumerate() {
            let stored = tree.store().node(NodeId::new(level as u8, index as u64)).unwrap();
            assert_eq!(stored, Some(*hash), "node level {level} index {index}");
        }
    }
    assert_eq!(tree.store().len(), 15);
}

#[test]
fn inclusion_proofs_match_and_verify() {
    let v = vectors();
    let tree = tree(&v);
    let leaves = leaves(&v);
    for vector in &v.inclusion_proofs {
        let proof = tree.inclusion_proof(vector.index, vector.size).unwrap();
        assert_eq!(proof.path, vector.path, "proof for leaf {} at size {}", vector.index, vector.size);
        let root = v.roots_by_size[vector.size as usize];
        let leaf = &leaves[vector.index as usize];
        assert_eq!(
            InclusionProof::<Sha256Rfc6962>::new(vector.index, vector.size, vector.path.clone())
                .verify(leaf, &root),
            Ok(())
        );
    }
}

/// The corruptions of the transparency-dev suite: each must be rejected.
#[test]
fn corrupted_inclusion_proofs_are_rejected() {
    let v = vectors();
    let leaves = leaves(&v);
    let some_hash = Digest([0xab; 32]);
    for vector in v.inclusion_proofs.iter().filter(|p| !p.path.is_empty()) {
        let (index, size) = (vector.index, vector.size);
        let root = v.roots_by_size[size as usize];
        let leaf = Sha256Rfc6962::hash_leaf(&leaves[index as usize]);
        let path = &vector.path;
        let check = |index: u64, size: u64, leaf: &Digest, path: &[Digest], root: &Digest| {
            verify_inclusion::<Sha256Rfc6962>(index, size, leaf, path, root)
        };
        let mut probes: Vec<(&str, Result<(), VerifyError>)> = vec![
            ("index + 1", check(index + 1, size, &leaf, path, &root)),
            ("index ^ 2", check(index ^ 2, size, &leaf, path, &root)),
            ("size * 2", check(index, size * 2, &leaf, path, &root)),
            ("size / 2", check(index, size / 2, &leaf, path, &root)),
            ("wrong leaf", check(index, size, &Sha256Rfc6962::hash_leaf(b"WrongLeaf"), path, &root)),
            ("empty root", check(index, size, &leaf, path, &v.roots_by_size[0])),
            ("random root", check(index, size, &leaf, path, &some_hash)),
            ("trailing root", check(index, size, &leaf, &[path.clone(), vec![root]].concat(), &root)),
            ("preceding root", check(index, size, &leaf, &[vec![root], path.clone()].concat(), &root)),
            ("removed component", check(index, size, &leaf, &path[..path.len() - 1], &root)),
        ];
        if index > 0 {
            probes.push(("index - 1", check(index - 1, size, &leaf, path, &root)));
        }
        for i in 0..path.len() {
            let mut wrong = path.clone();
            wrong[i].0[0] ^= 8;
            probes.push(("flipped bit", check(index, size, &leaf, &wrong, &root)));
        }
        if path.len() > 1 {
            let inserted = [&path[..1], &[some_hash], &path[1..]].concat();
            probes.push(("inserted component", check(index, size, &leaf, &inserted, &root)));
        }
        for (name, result) in probes {
            assert!(result.is_err(), "{name} accepted for leaf {index} at size {size}");
        }
    }
}

#[test]
fn inclusion_edge_cases_are_rejected() {
    let leaf = Sha256Rfc6962::hash_leaf(b"data");
    // A one-leaf tree: the root is the leaf hash and the proof is empty.
    assert_eq!(verify_inclusion::<Sha256Rfc6962>(0, 1, &leaf, &[], &leaf), Ok(()));
    assert_eq!(
        verify_inclusion::<Sha256Rfc6962>(0, 0, &leaf, &[], &leaf),
        Err(VerifyError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        verify_inclusion::<Sha256Rfc6962>(2, 1, &leaf, &[], &leaf),
        Err(VerifyError::IndexOutOfRange { index: 2, size: 1 })
    );
    assert_eq!(
        verify_inclusion::<Sha256Rfc6962>(0, 1, &leaf, &[leaf], &leaf),
        Err(VerifyError::WrongProofLength { expected: 0, actual: 1 })
    );
}

#[test]
fn consistency_proofs_match_and_verify() {
    let v = vectors();
    let tree = tree(&v);
    for vector in &v.consistency_proofs {
        let (old, new) = (vector.old_size, vector.new_size);
        let proof = tree.consistency_proof(old, new).unwrap();
        assert_eq!(proof.path, vector.path, "proof {old} -> {new}");
        let (old_root, new_root) = (v.roots_by_size[old as usize], v.roots_by_size[new as usize]);
        let proof = ConsistencyProof::<Sha256Rfc6962>::new(old, new, vector.path.clone());
        assert_eq!(proof.verify(&old_root, &new_root), Ok(()));
    }
    // Every pair of sizes, not only the published ones.
    for new in 0..=8u64 {
        for old in 0..=new {
            let proof = tree.consistency_proof(old, new).unwrap();
            let (old_root, new_root) = (v.roots_by_size[old as usize], v.roots_by_size[new as usize]);
            assert_eq!(proof.verify(&old_root, &new_root), Ok(()), "{old} -> {new}");
        }
    }
}

#[test]
fn corrupted_consistency_proofs_are_rejected() {
    let v = vectors();
    let some_hash = Digest([0xab; 32]);
    for vector in v.consistency_proofs.iter().filter(|p| !p.path.is_empty()) {
        let (old, new) = (vector.old_size, vector.new_size);
        let (r1, r2) = (v.roots_by_size[old as usize], v.roots_by_size[new as usize]);
        let path = &vector.path;
        let check = |old: u64, new: u64, r1: &Digest, r2: &Digest, path: &[Digest]| {
            verify_consistency::<Sha256Rfc6962>(old, new, r1, r2, path)
        };
        let mut probes: Vec<(&str, Result<(), VerifyError>)> = vec![
            ("old - 1", check(old - 1, new, &r1, &r2, path)),
            ("old + 1", check(old + 1, new, &r1, &r2, path)),
            ("old ^ 2", check(old ^ 2, new, &r1, &r2, path)),
            ("new * 2", check(old, new * 2, &r1, &r2, path)),
            ("new / 2", check(old, new / 2, &r1, &r2, path)),
            ("wrong old root", check(old, new, &some_hash, &r2, path)),
            ("wrong new root", check(old, new, &r1, &some_hash, path)),
            ("swapped roots", check(old, new, &r2, &r1, path)),
            ("empty proof", check(old, new, &r1, &r2, &[])),
            ("trailing old root", check(old, new, &r1, &r2, &[path.clone(), vec![r1]].concat())),
            ("trailing new root", check(old, new, &r1, &r2, &[path.clone(), vec![r2]].concat())),
            ("preceding old root", check(old, new, &r1, &r2, &[vec![r1], path.clone()].concat())),
            ("preceding new root", check(old, new, &r1, &r2, &[vec![r2], path.clone()].concat())),
            ("preceding proof[0]", check(old, new, &r1, &r2, &[vec![path[0]], path.clone()].concat())),
            ("truncated", check(old, new, &r1, &r2, &path[..path.len() - 1])),
        ];
        for i in 0..path.len() {
            let mut wrong = path.clone();
            wrong[i].0[0] ^= 16;
            probes.push(("flipped bit", check(old, new, &r1, &r2, &wrong)));
        }
        for (name, result) in probes {
            assert!(result.is_err(), "{name} accepted for {old} -> {new}");
        }
    }
}

#[test]
fn trivial_consistency_cases() {
    let v = vectors();
    let empty = v.roots_by_size[0];
    let (a, b) = (Digest([1; 32]), Digest([2; 32]));
    let check = |old, new, r1: &Digest, r2: &Digest, path: &[Digest]| {
        verify_consistency::<Sha256Rfc6962>(old, new, r1, r2, path)
    };
    assert_eq!(check(0, 0, &empty, &empty, &[]), Ok(()));
    assert_eq!(check(0, 5, &empty, &b, &[]), Ok(()));
    assert_eq!(check(3, 3, &a, &a, &[]), Ok(()));
    assert!(matches!(check(0, 5, &a, &b, &[]), Err(VerifyError::OldRootMismatch { .. })));
    assert!(matches!(check(3, 3, &a, &b, &[]), Err(VerifyError::NewRootMismatch { .. })));
    assert_eq!(check(1, 0, &a, &b, &[]), Err(VerifyError::SizeDecreased { old_size: 1, new_size: 0 }));
    assert_eq!(check(1, 2, &a, &b, &[]), Err(VerifyError::WrongProofLength { expected: 1, actual: 0 }));
    assert_eq!(check(3, 3, &a, &a, &[a]), Err(VerifyError::WrongProofLength { expected: 0, actual: 1 }));
    assert_eq!(check(0, 5, &empty, &b, &[a]), Err(VerifyError::WrongProofLength { expected: 0, actual: 1 }));
}
