//! The chain's authenticated state on RocksDB: values and proofs against a model, tampering,
//! old versions, reopening, pruning.

use std::collections::BTreeMap;

use proptest::prelude::*;
use pyralog_chain::proof::verify_state_proof;
use pyralog_chain::state::{StateError, StateStore};

fn key(i: u8) -> Vec<u8> {
    format!("account/{i}").into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random blocks of writes and deletes over 16 keys: at every version, every key's value
    /// matches a plain map, and its proof (inclusion or non-inclusion) verifies against that
    /// version's root and fails for any other answer.
    #[test]
    fn values_and_proofs_match_a_model(
        blocks in proptest::collection::vec(
            proptest::collection::vec((0u8..16, proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24))), 1..8),
            1..6,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut history = Vec::new();
        for (i, writes) in blocks.iter().enumerate() {
            let version = i as u64;
            let writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = writes.iter().map(|(k, v)| (key(*k), v.clone())).collect();
            // The last write to a key in a block wins, as in the tree.
            for (k, v) in &writes {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
            let root = store.commit(version, dedup_last(writes)).unwrap();
            history.push((version, root, model.clone()));
        }
        for (version, root, model) in &history {
            prop_assert_eq!(store.root(*version).unwrap(), *root);
            for k in 0..16 {
                let k = key(k);
                let (value, proof) = store.get_with_proof(&k, *version).unwrap();
                prop_assert_eq!(value.as_ref(), model.get(&k));
                prop_assert!(verify_state_proof(root, &k, value.as_deref(), &proof).is_ok());
                // Any other answer is refused: another value, or the opposite presence.
                let lie = match &value {
                    Some(v) => verify_state_proof(root, &k, None, &proof).is_err()
                        && verify_state_proof(root, &k, Some(&[v.as_slice(), b"!"].concat()), &proof).is_err(),
                    None => verify_state_proof(root, &k, Some(b"forged"), &proof).is_err(),
                };
                prop_assert!(lie, "a proof accepted a false answer for {:?}", String::from_utf8_lossy(&k));
            }
        }
    }
}

/// Keeps the last write of each key, in first-seen order (the tree takes one write per key).
fn dedup_last(writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for (k, v) in writes {
        last.insert(k, v);
    }
    last.into_iter().collect()
}

#[test]
fn a_proof_for_another_root_or_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    let first = store.commit(0, [(key(1), Some(b"one".to_vec())), (key(2), Some(b"two".to_vec()))]).unwrap();
    let second = store.commit(1, [(key(1), Some(b"uno".to_vec()))]).unwrap();
    assert_ne!(first, second);
    let (value, proof) = store.get_with_proof(&key(1), 0).unwrap();
    assert_eq!(value.as_deref(), Some(&b"one"[..]));
    verify_state_proof(&first, &key(1), Some(b"one"), &proof).unwrap();
    // The old value against the new root, or the proof reused for another key: refused.
    assert!(verify_state_proof(&second, &key(1), Some(b"one"), &proof).is_err());
    assert!(verify_state_proof(&first, &key(2), Some(b"one"), &proof).is_err());
}

#[test]
fn the_state_survives_a_reopen_and_versions_follow_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let store = StateStore::open(dir.path()).unwrap();
        assert!(matches!(store.commit(1, []), Err(StateError::OutOfOrder { version: 1, expected: 0 })));
        store.commit(0, [(key(1), Some(b"one".to_vec()))]).unwrap();
        // A block that writes nothing keeps the root.
        let unchanged = store.commit(1, []).unwrap();
        assert_eq!(unchanged, store.root(0).unwrap());
        store.commit(2, [(key(2), Some(b"two".to_vec()))]).unwrap()
    };
    let store = StateStore::open(dir.path()).unwrap();
    assert_eq!(store.latest_version().unwrap(), Some(2));
    assert_eq!(store.root(2).unwrap(), root);
    assert_eq!(store.get(&key(1), 2).unwrap().as_deref(), Some(&b"one"[..]));
    for wrong in [2, 4] {
        let refused = store.commit(wrong, [(key(3), Some(b"x".to_vec()))]);
        assert!(matches!(refused, Err(StateError::OutOfOrder { expected: 3, .. })), "{refused:?}");
    }
    assert!(matches!(store.get(&key(1), 3), Err(StateError::Unavailable { .. })));
    // The refused commits changed nothing.
    assert_eq!(store.get(&key(3), 2).unwrap(), None);
    assert_eq!(store.root(2).unwrap(), root);
}

#[test]
fn deleting_everything_leaves_an_empty_tree_that_proves_absence() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    let empty = store.commit(0, [(key(1), None)]).unwrap();
    store.commit(1, [(key(1), Some(b"one".to_vec()))]).unwrap();
    let emptied = store.commit(2, [(key(1), None)]).unwrap();
    assert_eq!(emptied, empty, "an empty tree has one root");
    let (value, proof) = store.get_with_proof(&key(1), 2).unwrap();
    assert_eq!(value, None);
    verify_state_proof(&emptied, &key(1), None, &proof).unwrap();
    assert!(verify_state_proof(&emptied, &key(1), Some(b"one"), &proof).is_err());
}

#[test]
fn pruning_keeps_recent_versions_provable_and_drops_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    let mut roots = Vec::new();
    for version in 0..20u64 {
        let writes = (0..8u8).map(|k| (key(k), Some(format!("{k} at {version}").into_bytes())));
        roots.push(store.commit(version, writes).unwrap());
    }
    let pruned = store.prune_below(15).unwrap();
    assert!(pruned > 0, "overwriting every key 20 times leaves stale nodes");
    for version in 15..20u64 {
        let root = roots[version as usize];
        assert_eq!(store.root(version).unwrap(), root);
        let (value, proof) = store.get_with_proof(&key(3), version).unwrap();
        assert_eq!(value, Some(format!("3 at {version}").into_bytes()));
        verify_state_proof(&root, &key(3), value.as_deref(), &proof).unwrap();
    }
    assert!(matches!(store.get_with_proof(&key(3), 14), Err(StateError::Unavailable { version: 14, .. })));
}

#[test]
fn pruning_drops_superseded_values_and_keeps_untouched_ones_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    // Key 0 is written once at version 0 and never again; keys arriving later reshape the tree
    // around it. Key 1 is rewritten at every version.
    store.commit(0, [(key(0), Some(b"kept".to_vec())), (key(1), Some(b"v0".to_vec()))]).unwrap();
    for version in 1..40u64 {
        let writes = [
            (key(1), Some(format!("v{version}").into_bytes())),
            (key((version % 200) as u8 + 2), Some(vec![1])),
        ];
        store.commit(version, writes).unwrap();
    }
    let size_before = value_entries(dir.path());
    store.prune_below(39).unwrap();
    drop(store);
    let store = StateStore::open(dir.path()).unwrap();
    let root = store.root(39).unwrap();
    for (k, expected) in [(key(0), b"kept".to_vec()), (key(1), b"v39".to_vec())] {
        let (value, proof) = store.get_with_proof(&k, 39).unwrap();
        assert_eq!(value.as_ref(), Some(&expected));
        verify_state_proof(&root, &k, value.as_deref(), &proof).unwrap();
    }
    drop(store);
    assert!(value_entries(dir.path()) < size_before - 30, "the 39 superseded values of key 1 are gone");
}

/// How many value entries the store holds (opened read-only beside the test's own handle).
fn value_entries(path: &std::path::Path) -> usize {
    let families = ["state_nodes", "state_values", "state_stale", "state_meta"];
    let db = rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), path, families, false).unwrap();
    db.iterator_cf(db.cf_handle("state_values").unwrap(), rocksdb::IteratorMode::Start).count()
}
