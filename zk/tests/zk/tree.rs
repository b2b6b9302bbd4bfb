//! The append-only trees against a naive model: roots at every size, paths, limits; and the
//! Poseidon tree's root recomputed in the circuit.

use ark_bn254::Fr;
use ark_crypto_primitives::crh::poseidon::constraints::CRHParametersVar;
use ark_crypto_primitives::merkle_tree::constraints::PathVar;
use ark_r1cs_std::R1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::ConstraintSystem;
use proptest::prelude::*;
use pyralog_zk::PoseidonTree;
use pyralog_zk::groth16::{PoseidonTreeConfig, PoseidonTreeConfigVar, ark_path};
use pyralog_zk::poseidon::{self, PoseidonHasher, RecordFields};
use std::collections::HashMap;

use pyralog_zk::rescue::{self, RescueHasher};
use pyralog_zk::tree::{self as ztree, AppendTree, DigestCodec, Frontier, NodeSource, TreeError, TreeHasher};

/// A cheap, order-sensitive test hasher.
struct Blake;

impl TreeHasher for Blake {
    type Digest = [u8; 32];
    fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
        *blake3::hash(&[&left[..], &right[..]].concat()).as_bytes()
    }
    fn empty() -> [u8; 32] {
        [0; 32]
    }
}

/// The root of `leaves` padded with empty slots to 2^depth, level by level.
fn naive_root<H: TreeHasher>(depth: usize, leaves: &[H::Digest]) -> H::Digest {
    let mut level: Vec<H::Digest> = leaves.to_vec();
    level.resize(1 << depth, H::empty());
    while level.len() > 1 {
        level = level.chunks(2).map(|pair| H::node(&pair[0], &pair[1])).collect();
    }
    level[0]
}

/// Complete nodes kept by (level, index), the way a database keeps them.
#[derive(Default)]
struct MapNodes(HashMap<(usize, u64), [u8; 32]>);

impl NodeSource<[u8; 32]> for MapNodes {
    type Error = TreeError;
    fn complete_node(&self, level: usize, index: u64) -> Result<[u8; 32], TreeError> {
        // A missing node stands for a read error; the frontier must never ask for one.
        self.0.get(&(level, index)).copied().ok_or(TreeError::IndexBeyondSize { index, size: level as u64 })
    }
}

fn leaf(i: u64) -> [u8; 32] {
    *blake3::hash(&i.to_le_bytes()).as_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Every past size has the naive root, and every leaf's path leads to it.
    #[test]
    fn roots_and_paths_at_every_size(depth in 1usize..7, fill in 0.0f64..1.0) {
        let n = ((1u64 << depth) as f64 * fill) as u64;
        let leaves: Vec<[u8; 32]> = (0..n).map(leaf).collect();
        let mut tree = AppendTree::<Blake>::new(depth).unwrap();
        for (i, l) in leaves.iter().enumerate() {
            prop_assert_eq!(tree.append(*l).unwrap(), i as u64);
        }
        prop_assert_eq!(tree.root(), naive_root::<Blake>(depth, &leaves));
        for size in 0..=n {
            let root = tree.root_at(size).unwrap();
            prop_assert_eq!(root, naive_root::<Blake>(depth, &leaves[..size as usize]));
            for index in 0..size {
                let path = tree.path(index, size).unwrap();
                prop_assert_eq!(path.siblings.len(), depth);
                prop_assert_eq!(path.root::<Blake>(&leaves[index as usize]), root);
                // Another leaf, or the right leaf at another position, does not lead there.
                prop_assert_ne!(path.root::<Blake>(&leaf(n + 1)), root);
            }
            // The next slot's path leads to this root from the empty slot, and to the next
            // size's root from the leaf appended there.
            if size < 1 << depth {
                let next = tree.append_path(size).unwrap();
                prop_assert_eq!(&next, &ztree::siblings::<Blake, _>(&tree, &ztree::empty_subtrees::<Blake>(depth), size, size).unwrap());
                prop_assert_eq!(next.root::<Blake>(&Blake::empty()), root);
                if size < n {
                    prop_assert_eq!(next.root::<Blake>(&leaves[size as usize]), tree.root_at(size + 1).unwrap());
                    prop_assert_eq!(tree.leaf(size), Some(leaves[size as usize]));
                }
            }
        }
    }
}

#[test]
fn limits_are_typed_errors() {
    assert_eq!(AppendTree::<Blake>::new(0).unwrap_err(), TreeError::BadDepth(0));
    assert_eq!(AppendTree::<Blake>::new(33).unwrap_err(), TreeError::BadDepth(33));
    let mut tree = AppendTree::<Blake>::new(2).unwrap();
    for i in 0..4 {
        tree.append(leaf(i)).unwrap();
    }
    assert_eq!(tree.append(leaf(4)), Err(TreeError::Full(4)));
    assert_eq!(tree.root_at(5), Err(TreeError::SizeBeyondTree { size: 5, len: 4 }));
    assert_eq!(tree.path(3, 3), Err(TreeError::IndexBeyondSize { index: 3, size: 3 }));
    assert_eq!(tree.append_path(4), Err(TreeError::Full(4)));
    assert_eq!(tree.append_path(5), Err(TreeError::SizeBeyondTree { size: 5, len: 4 }));
    assert_eq!(tree.leaf(4), None);
}

/// A depth-32 tree (the product's) agrees with the empty-subtree ladder, and its root at a past
/// size is recomputed by the circuit from a leaf and its path.
#[test]
fn poseidon_tree_roots_match_the_circuit() {
    let mut tree = PoseidonTree::new(32).unwrap();
    let mut zero = poseidon::empty();
    for _ in 0..32 {
        zero = poseidon::node(zero, zero);
    }
    assert_eq!(tree.root(), zero);

    let records: Vec<RecordFields> = (0..13u32)
        .map(|i| RecordFields::of_record(Some(format!("k{i}").as_bytes()), b"value", Some(&[i as u8; 32])))
        .collect();
    for record in &records {
        tree.append(record.leaf()).unwrap();
    }
    let params = CRHParametersVar { parameters: poseidon::config().clone() };
    for (index, size) in [(0u64, 1u64), (4, 9), (12, 13)] {
        let record = records[index as usize];
        let path = tree.path(index, size).unwrap();
        let root = tree.root_at(size).unwrap();
        assert_eq!(path.root::<PoseidonHasher>(&record.leaf()), root);

        let cs = ConstraintSystem::<Fr>::new_ref();
        let path_var =
            PathVar::<PoseidonTreeConfig, Fr, PoseidonTreeConfigVar>::new_witness(cs.clone(), || {
                Ok(ark_path(&path))
            })
            .unwrap();
        let key = FpVar::new_witness(cs.clone(), || Ok(record.key)).unwrap();
        let commitment =
            FpVar::new_witness(cs.clone(), || Ok(poseidon::value_commitment(record.value, record.blinding)))
                .unwrap();
        let computed = path_var.calculate_root(&params, &params, &[key, commitment][..]).unwrap();
        assert_eq!(computed.value().unwrap(), root, "leaf {index} at size {size}");
        assert!(cs.is_satisfied().unwrap());
    }
}

/// The Rescue tree: leaves, nodes and the empty slot are separated, and roots match the naive
/// model over winter-crypto's merge.
#[test]
fn rescue_tree_roots_and_domains() {
    use pyralog_zk::RescueTree;
    use pyralog_zk::rescue::{RescueHasher, record_leaf};
    use winter_crypto::ElementHasher;
    use winter_crypto::hashers::Rp64_256;

    let leaves: Vec<_> = (0..11u32).map(|i| record_leaf(Some(&i.to_le_bytes()), b"value")).collect();
    let mut tree = RescueTree::new(5).unwrap();
    for leaf in &leaves {
        tree.append(*leaf).unwrap();
    }
    for size in 0..=11u64 {
        assert_eq!(tree.root_at(size).unwrap(), naive_root::<RescueHasher>(5, &leaves[..size as usize]));
    }
    let path = tree.path(7, 11).unwrap();
    assert_eq!(path.root::<RescueHasher>(&leaves[7]), tree.root());

    // A node is merge(left, right), which equals hashing their 8 elements; a leaf hashes 9 and
    // the empty slot 1, so neither is a node's preimage shape.
    let (a, b) = (leaves[0], leaves[1]);
    let elements: Vec<_> = a.as_elements().iter().chain(b.as_elements()).copied().collect();
    assert_eq!(RescueHasher::node(&a, &b), Rp64_256::hash_elements(&elements));
    assert_ne!(record_leaf(None, b"v"), record_leaf(Some(b""), b"v"));
    assert_ne!(record_leaf(Some(b"k"), b"v"), record_leaf(Some(b"k"), b"w"));
    assert_ne!(RescueHasher::empty(), RescueHasher::node(&RescueHasher::empty(), &RescueHasher::empty()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The frontier keeps the naive root at every size; the nodes its appends complete are the
    /// tree's, and are all a reloaded frontier and the paths need.
    #[test]
    fn frontier_matches_the_tree_and_reloads_from_its_nodes(depth in 1usize..7, fill in 0.0f64..1.0, full: bool) {
        let n = if full { 1u64 << depth } else { ((1u64 << depth) as f64 * fill) as u64 };
        let leaves: Vec<[u8; 32]> = (0..n).map(leaf).collect();
        let mut frontier = Frontier::<Blake>::new(depth).unwrap();
        let mut tree = AppendTree::<Blake>::new(depth).unwrap();
        let mut nodes = MapNodes::default();
        prop_assert_eq!(frontier.root(), naive_root::<Blake>(depth, &[]));
        for (i, l) in leaves.iter().enumerate() {
            let completed = frontier.push(*l).unwrap();
            tree.append(*l).unwrap();
            prop_assert_eq!(completed[0], (0, i as u64, *l));
            for (level, index, digest) in completed {
                let size = i as u64 + 1;
                prop_assert_eq!(digest, ztree::node_at::<Blake, _>(&tree, frontier.zeros(), level, index, size).unwrap());
                prop_assert!(nodes.0.insert((level, index), digest).is_none(), "a node is completed once");
            }
            prop_assert_eq!(frontier.len(), i as u64 + 1);
            prop_assert_eq!(frontier.root(), naive_root::<Blake>(depth, &leaves[..=i]));
        }
        // n leaves make 2n - popcount(n) complete nodes (one perfect subtree per set bit).
        prop_assert_eq!(nodes.0.len() as u64, 2 * n - u64::from(n.count_ones()));
        for size in 0..=n {
            let reloaded = Frontier::<Blake>::load(depth, &nodes, size).unwrap();
            prop_assert_eq!(reloaded.root(), tree.root_at(size).unwrap());
            prop_assert_eq!(reloaded.len(), size);
            for index in 0..size {
                let path = ztree::siblings::<Blake, _>(&nodes, frontier.zeros(), index, size).unwrap();
                prop_assert_eq!(path, tree.path(index, size).unwrap());
            }
        }
        if n == 1 << depth {
            prop_assert_eq!(frontier.push(leaf(0)), Err(TreeError::Full(n)));
        }
    }
}

/// Stored digests round-trip through 32 bytes, and non-canonical bytes (a field element at or
/// past the modulus) are refused.
#[test]
fn digest_codecs_round_trip_and_refuse_non_canonical_bytes() {
    let p = RecordFields::of_record(Some(b"k"), b"v", None).leaf();
    assert_eq!(PoseidonHasher::from_bytes(&PoseidonHasher::to_bytes(&p)), Some(p));
    assert_eq!(PoseidonHasher::from_bytes(&[0xff; 32]), None);
    let r = rescue::record_leaf(Some(b"k"), b"v");
    assert_eq!(RescueHasher::from_bytes(&RescueHasher::to_bytes(&r)), Some(r));
    let mut bytes = RescueHasher::to_bytes(&r);
    bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(RescueHasher::from_bytes(&bytes), None);
}
