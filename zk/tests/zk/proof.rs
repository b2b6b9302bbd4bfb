//! The one interface over both systems: proofs made through it verify, survive their JSON shape,
//! name the roots a verifier compares with checkpoints, and are refused once any field changes.

use ark_bn254::Fr;
use pyralog_zk::groth16::{self, MembershipStatement, MembershipWitness};
use pyralog_zk::poseidon::RecordFields;
use pyralog_zk::proof::{ClaimedRoot, ClaimedTree, ZkError, ZkProof};
use pyralog_zk::rescue::{self, RescueHasher};
use pyralog_zk::stark::StarkError;
use pyralog_zk::tree::DigestCodec;
use pyralog_zk::{PoseidonTree, RescueTree};
use serde_json::Value;

/// A JSON field replaced by `value`; the proof either no longer decodes or no longer verifies.
fn refused_after(
    proof: &ZkProof,
    field: &str,
    value: Value,
    key: Option<&ark_groth16::VerifyingKey<ark_bn254::Bn254>>,
) {
    let mut json = serde_json::to_value(proof).unwrap();
    json[field] = value;
    if let Ok(changed) = serde_json::from_value::<ZkProof>(json) {
        let refused = changed.verify(key);
        assert!(
            matches!(
                refused,
                Err(ZkError::Groth16(_) | ZkError::Stark(StarkError::Rejected(_) | StarkError::Malformed(_)))
            ),
            "a proof with another {field}: {refused:?}"
        );
    }
}

#[test]
fn an_append_batch_proof_round_trips_and_names_both_roots() {
    let mut tree = RescueTree::new(32).unwrap();
    let leaves: Vec<_> = (0..10u8).map(|i| rescue::record_leaf(None, &[i])).collect();
    for leaf in &leaves {
        tree.append(*leaf).unwrap();
    }
    let siblings = tree.append_path(3).unwrap().siblings;
    let proof = ZkProof::prove_appends(3, &siblings, &leaves[3..7]).unwrap();
    assert_eq!(proof.verify(None), Ok(()));
    let json = serde_json::to_value(&proof).unwrap();
    assert_eq!(json["system"], "stark");
    let back: ZkProof = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, proof);
    assert_eq!(
        proof.claimed_roots(),
        vec![
            ClaimedRoot {
                tree: ClaimedTree::Rescue,
                size: 3,
                root: RescueHasher::to_bytes(&tree.root_at(3).unwrap())
            },
            ClaimedRoot {
                tree: ClaimedTree::Rescue,
                size: 7,
                root: RescueHasher::to_bytes(&tree.root_at(7).unwrap())
            },
        ]
    );
    let other_root = hex0x(RescueHasher::to_bytes(&tree.root_at(8).unwrap()));
    refused_after(&proof, "newRoot", Value::from(other_root.clone()), None);
    refused_after(&proof, "oldRoot", Value::from(other_root), None);
    refused_after(&proof, "count", Value::from(5), None);
    refused_after(&proof, "oldSize", Value::from(4), None);
    // Not canonical (an element at the modulus and above), not hex, unknown fields: refused.
    let mut bad = json.clone();
    bad["newRoot"] = Value::from(format!("0x{}", "ff".repeat(32)));
    assert!(serde_json::from_value::<ZkProof>(bad).unwrap_err().to_string().contains("canonical"));
    let mut bad = json.clone();
    bad["proof"] = Value::from("zz");
    assert!(serde_json::from_value::<ZkProof>(bad).is_err());
    let mut bad = json;
    bad["extra"] = Value::from(1);
    assert!(serde_json::from_value::<ZkProof>(bad).is_err());
}

#[test]
fn a_membership_proof_round_trips_and_needs_the_key() {
    const DEPTH: usize = 6;
    let keys = groth16::setup(DEPTH).unwrap();
    let records: Vec<_> =
        (0..5u8).map(|i| RecordFields::of_record(Some(&[i]), b"v", Some(&[i; 32]))).collect();
    let mut tree = PoseidonTree::new(DEPTH).unwrap();
    for record in &records {
        tree.append(record.leaf()).unwrap();
    }
    let statement = MembershipStatement {
        root: tree.root(),
        epoch: 2,
        size: 5,
        disclosed_key: None,
        nonce: Fr::from(77u64),
    };
    let witness = MembershipWitness::of_record(&records[2], tree.path(2, 5).unwrap());
    let proof = ZkProof::prove_membership(&keys, statement, &witness).unwrap();
    assert_eq!(proof.verify(Some(&keys.verifying)), Ok(()));
    assert_eq!(proof.verify(None), Err(ZkError::NoVerifyingKey));
    let back: ZkProof = serde_json::from_value(serde_json::to_value(&proof).unwrap()).unwrap();
    assert_eq!(back, proof);
    assert_eq!(back.claimed_roots()[0].size, 5);
    let key = Some(&keys.verifying);
    refused_after(&proof, "nonce", Value::from(hex0x([1u8; 32])), key);
    refused_after(&proof, "epoch", Value::from(3), key);
    refused_after(&proof, "size", Value::from(4), key);
    refused_after(&proof, "root", Value::from(hex0x(earlier_root(&tree))), key);
}

/// Another valid Poseidon root (the tree at size 4).
fn earlier_root(tree: &PoseidonTree) -> [u8; 32] {
    pyralog_zk::poseidon::PoseidonHasher::to_bytes(&tree.root_at(4).unwrap())
}

fn hex0x(bytes: impl AsRef<[u8]>) -> String {
    format!("0x{}", hex::encode(bytes))
}
