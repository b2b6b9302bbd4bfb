//! Groth16 membership proofs: a valid proof verifies; every way of lying is refused.

use ark_bn254::Fr;
use ark_serialize::CanonicalSerialize;
use pyralog_zk::PoseidonTree;
use pyralog_zk::groth16::snarkjs::{SnarkjsProof, SnarkjsVerifyingKey, public_signals};
use pyralog_zk::groth16::{
    self, Groth16Error, MembershipKeys, MembershipStatement, MembershipWitness, PROVING_KEY_MAGIC, prepare,
    proof_from_bytes, proof_to_bytes, proving_key_from_bytes, proving_key_to_bytes, verifying_key_from_bytes,
    verifying_key_to_bytes,
};
use pyralog_zk::poseidon::RecordFields;

const DEPTH: usize = 8;

/// A change to a statement.
type Lie<'a> = Box<dyn Fn(&mut MembershipStatement) + 'a>;

struct Fixture {
    keys: MembershipKeys,
    tree: PoseidonTree,
    records: Vec<RecordFields>,
}

fn fixture(depth: usize) -> Fixture {
    let keys = groth16::setup(depth).unwrap();
    let mut tree = PoseidonTree::new(depth).unwrap();
    let records: Vec<RecordFields> = (0..10u8)
        .map(|i| RecordFields::of_record(Some(format!("user-{i}").as_bytes()), b"credential", Some(&[i; 32])))
        .collect();
    for record in &records {
        tree.append(record.leaf()).unwrap();
    }
    Fixture { keys, tree, records }
}

impl Fixture {
    fn statement(&self, size: u64, disclose: Option<usize>) -> MembershipStatement {
        MembershipStatement {
            root: self.tree.root_at(size).unwrap(),
            epoch: 3,
            size,
            disclosed_key: disclose.map(|i| self.records[i].key),
            nonce: Fr::from(0xfeed_u64),
        }
    }

    fn witness(&self, index: usize, size: u64) -> MembershipWitness {
        MembershipWitness::of_record(&self.records[index], self.tree.path(index as u64, size).unwrap())
    }
}

#[test]
fn valid_proofs_verify_and_every_public_input_is_bound() {
    let f = fixture(DEPTH);
    let vk = prepare(&f.keys.verifying);
    let statement = f.statement(8, None);
    let proof = groth16::prove(&f.keys, &statement, &f.witness(5, 8)).unwrap();
    groth16::verify(&vk, &statement, &proof).unwrap();

    let lies: [(&str, Lie); 6] = [
        ("root", Box::new(|s| s.root = f.tree.root_at(9).unwrap())),
        ("epoch", Box::new(|s| s.epoch += 1)),
        ("size", Box::new(|s| s.size += 1)),
        ("nonce", Box::new(|s| s.nonce += Fr::from(1u64))),
        ("disclosed key", Box::new(|s| s.disclosed_key = Some(f.records[5].key))),
        ("another key", Box::new(|s| s.disclosed_key = Some(f.records[4].key))),
    ];
    for (what, lie) in lies {
        let mut wrong = statement.clone();
        lie(&mut wrong);
        assert_eq!(groth16::verify(&vk, &wrong, &proof), Err(Groth16Error::Rejected), "wrong {what}");
    }
}

#[test]
fn a_disclosed_key_is_proven_and_cannot_be_swapped() {
    let f = fixture(DEPTH);
    let vk = prepare(&f.keys.verifying);
    let statement = f.statement(10, Some(2));
    let proof = groth16::prove(&f.keys, &statement, &f.witness(2, 10)).unwrap();
    groth16::verify(&vk, &statement, &proof).unwrap();
    let mut hidden = statement.clone();
    hidden.disclosed_key = None;
    assert_eq!(groth16::verify(&vk, &hidden, &proof), Err(Groth16Error::Rejected));

    // Another record's key cannot be claimed with this record.
    let lie = f.statement(10, Some(3));
    assert!(matches!(groth16::prove(&f.keys, &lie, &f.witness(2, 10)), Err(Groth16Error::Unsatisfied(_))));
}

#[test]
fn a_record_not_in_the_tree_cannot_be_proven() {
    let f = fixture(DEPTH);
    let vk = prepare(&f.keys.verifying);
    let statement = f.statement(10, None);
    let mut outsider = f.witness(1, 10);
    outsider.value = RecordFields::of_record(None, b"forged credential", None).value;
    assert!(matches!(groth16::prove(&f.keys, &statement, &outsider), Err(Groth16Error::Unsatisfied(_))));
    // A record appended after the checkpoint is not in the checkpoint's tree.
    let mut tree = f.tree.clone();
    let late = RecordFields::of_record(Some(b"late"), b"credential", None);
    tree.append(late.leaf()).unwrap();
    let witness = MembershipWitness::of_record(&late, tree.path(10, 11).unwrap());
    assert!(matches!(groth16::prove(&f.keys, &statement, &witness), Err(Groth16Error::Unsatisfied(_))));
    // Its proof against the tree it is in verifies, but not against the checkpoint's root.
    let grown = MembershipStatement { root: tree.root_at(11).unwrap(), size: 11, ..statement.clone() };
    let proof = groth16::prove(&f.keys, &grown, &witness).unwrap();
    groth16::verify(&vk, &grown, &proof).unwrap();
    assert_eq!(groth16::verify(&vk, &statement, &proof), Err(Groth16Error::Rejected));
}

/// `verify_membership` returns a Boolean; a circuit that forgets to enforce it accepts any
/// record. The unenforced variant proves the outsider, and the proof verifies; ours has no
/// satisfying assignment for it.
#[test]
fn regression_an_unenforced_membership_check_would_accept_outsiders() {
    let f = fixture(DEPTH);
    let statement = f.statement(10, None);
    let mut outsider = f.witness(1, 10);
    outsider.value = RecordFields::of_record(None, b"forged credential", None).value;
    let broken_keys = MembershipKeys {
        depth: DEPTH,
        ..groth16::setup_circuit(groth16::MembershipCircuit::blank(DEPTH).without_membership_check()).unwrap()
    };
    let broken = groth16::circuit(DEPTH, &statement, &outsider).unwrap().without_membership_check();
    let proof = groth16::prove_circuit(&broken_keys, broken).unwrap();
    groth16::verify(&prepare(&broken_keys.verifying), &statement, &proof)
        .expect("without enforcement, a non-member verifies");

    assert!(matches!(groth16::prove(&f.keys, &statement, &outsider), Err(Groth16Error::Unsatisfied(_))));
}

#[test]
fn tampered_and_malformed_bytes_are_refused() {
    let f = fixture(DEPTH);
    let vk = prepare(&f.keys.verifying);
    let statement = f.statement(10, None);
    let proof = groth16::prove(&f.keys, &statement, &f.witness(7, 10)).unwrap();
    let bytes = proof_to_bytes(&proof);
    assert_eq!(bytes.len(), 128);
    assert_eq!(proof_from_bytes(&bytes).unwrap(), proof);

    // Every single-bit flip either fails to decode (off the curve, outside the subgroup, a
    // non-canonical coordinate) or decodes to a proof that does not verify.
    for bit in (0..bytes.len() * 8).step_by(7) {
        let mut tampered = bytes.clone();
        tampered[bit / 8] ^= 1 << (bit % 8);
        match proof_from_bytes(&tampered) {
            Err(Groth16Error::Malformed { .. }) => {}
            Ok(p) => {
                assert_eq!(groth16::verify(&vk, &statement, &p), Err(Groth16Error::Rejected), "bit {bit}")
            }
            Err(other) => panic!("bit {bit}: {other}"),
        }
    }
    assert!(matches!(proof_from_bytes(&bytes[..127]), Err(Groth16Error::Malformed { .. })));
    assert!(matches!(
        proof_from_bytes(&[bytes.clone(), vec![0]].concat()),
        Err(Groth16Error::Malformed { .. })
    ));
    assert!(matches!(proof_from_bytes(&[0xff; 128]), Err(Groth16Error::Malformed { .. })));

    // The verifying key survives its encoding; a tampered one is refused or does not verify.
    let vk_bytes = verifying_key_to_bytes(&f.keys.verifying);
    assert_eq!(verifying_key_from_bytes(&vk_bytes).unwrap(), f.keys.verifying);
    let mut tampered = vk_bytes.clone();
    tampered[40] ^= 0x10;
    if let Ok(key) = verifying_key_from_bytes(&tampered) {
        assert_eq!(groth16::verify(&prepare(&key), &statement, &proof), Err(Groth16Error::Rejected));
    }
}

/// The proving key is read without point checks; damage is caught by the file's digest, and a
/// key that still decodes but is wrong (altered behind the digest, from another setup) makes no
/// proof at all instead of a proof that fails later.
#[test]
fn a_damaged_or_foreign_proving_key_makes_no_proof() {
    let f = fixture(DEPTH);
    let statement = f.statement(8, None);
    let witness = f.witness(5, 8);
    let bytes = proving_key_to_bytes(&f.keys.proving);
    assert!(bytes.starts_with(PROVING_KEY_MAGIC));
    let read = proving_key_from_bytes(&bytes).unwrap();
    let keys = MembershipKeys::from_parts(DEPTH, read, f.keys.verifying.clone()).unwrap();
    groth16::verify(
        &prepare(&keys.verifying),
        &statement,
        &groth16::prove(&keys, &statement, &witness).unwrap(),
    )
    .unwrap();

    let malformed =
        |bytes: &[u8]| matches!(proving_key_from_bytes(bytes), Err(Groth16Error::Malformed { .. }));
    for at in [0, 8, 40, bytes.len() / 2, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        assert!(malformed(&damaged), "a flipped byte at {at} is refused");
    }
    assert!(malformed(&bytes[..bytes.len() - 1]), "truncated");
    assert!(malformed(&bytes[..20]), "shorter than the header");
    assert!(malformed(&[bytes.clone(), vec![0]].concat()), "trailing bytes");
    // A key of the format-1 circuit (the two-permutation Poseidon) is named as such.
    let mut old = bytes.clone();
    old[..8].copy_from_slice(b"PYRZKPK1");
    assert!(
        matches!(proving_key_from_bytes(&old), Err(Groth16Error::Malformed { reason, .. }) if reason.contains("format 1")),
        "a version-1 key is refused"
    );

    // An altered point behind a recomputed digest (delta in G1, used by every proof): it decodes,
    // and proving refuses it.
    let body_at = PROVING_KEY_MAGIC.len() + 32;
    let delta_g1_at =
        body_at + f.keys.verifying.uncompressed_size() + f.keys.proving.beta_g1.uncompressed_size();
    let mut body = bytes[body_at..].to_vec();
    body[delta_g1_at - body_at] ^= 0x01;
    let forged = [&PROVING_KEY_MAGIC[..], blake3::hash(&body).as_bytes(), &body].concat();
    let altered = MembershipKeys {
        depth: DEPTH,
        proving: proving_key_from_bytes(&forged).unwrap(),
        verifying: f.keys.verifying.clone(),
    };
    assert_eq!(groth16::prove(&altered, &statement, &witness).unwrap_err(), Groth16Error::BadProvingKey);

    // Keys of another setup for the same circuit: refused when paired, and refused when proving.
    let other = groth16::setup(DEPTH).unwrap();
    assert_eq!(
        MembershipKeys::from_parts(DEPTH, other.proving.clone(), f.keys.verifying.clone()).err(),
        Some(Groth16Error::KeyMismatch)
    );
    let foreign =
        MembershipKeys { depth: DEPTH, proving: other.proving, verifying: f.keys.verifying.clone() };
    assert_eq!(groth16::prove(&foreign, &statement, &witness).unwrap_err(), Groth16Error::BadProvingKey);
}

#[test]
fn a_witness_of_another_depth_is_refused() {
    let f = fixture(DEPTH);
    let statement = f.statement(10, None);
    let mut witness = f.witness(0, 10);
    witness.path.siblings.pop();
    assert_eq!(
        groth16::prove(&f.keys, &statement, &witness).unwrap_err(),
        Groth16Error::WrongDepth { expected: DEPTH, got: DEPTH - 1 }
    );
}

/// The product's depth: 2^32 leaves per partition.
#[test]
fn depth_32_proof_verifies() {
    let f = fixture(32);
    let statement = f.statement(10, Some(9));
    let proof = groth16::prove(&f.keys, &statement, &f.witness(9, 10)).unwrap();
    groth16::verify(&prepare(&f.keys.verifying), &statement, &proof).unwrap();
}

/// Runs `snarkjs groth16 verify` (zk/interop's npm package) on JSON files; whether it accepted.
fn snarkjs_accepts(
    snarkjs: &std::path::Path,
    key: &serde_json::Value,
    public: &serde_json::Value,
    proof: &serde_json::Value,
) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let files = [("verification_key.json", key), ("public.json", public), ("proof.json", proof)];
    for (name, value) in files {
        std::fs::write(dir.path().join(name), value.to_string()).unwrap();
    }
    let out = std::process::Command::new(snarkjs)
        .args(["groth16", "verify"])
        .args(files.map(|(name, _)| dir.path().join(name)))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    // snarkjs prints "OK!" and exits 0, or "Invalid proof" and exits non-zero.
    assert_eq!(out.status.success(), said.contains("OK!"), "{said}{}", String::from_utf8_lossy(&out.stderr));
    out.status.success()
}

#[test]
fn snarkjs_verifies_our_membership_proofs_in_its_own_json() {
    let snarkjs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/node_modules/.bin/snarkjs");
    if !snarkjs.exists() {
        eprintln!(
            "skipped: snarkjs interop (no zk/interop/node_modules: make npm-deps installs snarkjs where npm is present)"
        );
        return;
    }
    let f = fixture(DEPTH);
    let statement = f.statement(8, Some(5));
    let proof = groth16::prove(&f.keys, &statement, &f.witness(5, 8)).unwrap();
    let key = serde_json::to_value(SnarkjsVerifyingKey::from(&f.keys.verifying)).unwrap();
    let public = serde_json::to_value(public_signals(&statement)).unwrap();
    let json = serde_json::to_value(SnarkjsProof::from(&proof)).unwrap();
    assert_eq!(key["nPublic"], 6);
    assert_eq!(public[2], "8", "the size, decimal");
    assert!(snarkjs_accepts(&snarkjs, &key, &public, &json));
    // Another size, another nonce, a swapped proof element, another key: refused.
    let mut other_size = public.clone();
    other_size[2] = "9".into();
    assert!(!snarkjs_accepts(&snarkjs, &key, &other_size, &json));
    let mut other_nonce = public.clone();
    other_nonce[5] = "1".into();
    assert!(!snarkjs_accepts(&snarkjs, &key, &other_nonce, &json));
    let mut swapped = json.clone();
    swapped["pi_a"] = json["pi_c"].clone();
    swapped["pi_c"] = json["pi_a"].clone();
    assert!(!snarkjs_accepts(&snarkjs, &key, &public, &swapped));
    let foreign =
        serde_json::to_value(SnarkjsVerifyingKey::from(&groth16::setup(DEPTH).unwrap().verifying)).unwrap();
    assert!(!snarkjs_accepts(&snarkjs, &foreign, &public, &json));
}
