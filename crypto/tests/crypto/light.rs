//! The light client's verdicts: honest evidence passes; every kind of lie a server could tell is
//! refused with its own reason.

use pyralog_crypto::light::{LightError, RecordEvidence, RecordQuery, verify_record};
use pyralog_crypto::merkle::{Blake3Merkle, MemoryNodeStore, MerkleTree};
use pyralog_crypto::quorum::{MemberSet, QuorumCertificate, SignatureShare};
use pyralog_crypto::{Checkpoint, ClusterId, Digest, Keypair, LogName};

use crate::{checkpoint, keypairs};

/// A partition of `size` records with three replicas' keys.
struct Partition {
    tree: MerkleTree<Blake3Merkle, MemoryNodeStore>,
    keys: Vec<Keypair>,
}

fn record(i: u64) -> Vec<u8> {
    format!("record {i}").into_bytes()
}

impl Partition {
    fn new(size: u64) -> Self {
        let mut tree = MerkleTree::new(MemoryNodeStore::default());
        for i in 0..size {
            tree.append(&record(i)).unwrap();
        }
        Partition { tree, keys: keypairs(3) }
    }

    fn grow(&mut self, to: u64) {
        for i in self.tree.size()..to {
            self.tree.append(&record(i)).unwrap();
        }
    }

    fn signers(&self) -> MemberSet {
        MemberSet::equal(self.keys.iter().map(|k| k.public())).unwrap()
    }

    fn certify(&self, size: u64, by: &[usize]) -> QuorumCertificate<Checkpoint> {
        let message = checkpoint(size, self.tree.root_at(size).unwrap());
        let signatures = by.iter().map(|i| SignatureShare::sign(&self.keys[*i], &message)).collect();
        QuorumCertificate { message, signatures }
    }

    fn evidence(&self, offset: u64, size: u64) -> RecordEvidence {
        RecordEvidence {
            record: record(offset),
            proof: self.tree.inclusion_proof(offset, size).unwrap(),
            certificate: self.certify(size, &[0, 1]),
        }
    }
}

fn query(offset: u64) -> RecordQuery {
    let c = checkpoint(0, Digest([0; 32]));
    RecordQuery { cluster: c.cluster, log: c.log, partition: c.partition, offset }
}

#[test]
fn honest_evidence_verifies_and_extends_the_trusted_checkpoint() {
    let mut p = Partition::new(10);
    let first = verify_record(&query(3), &p.signers(), &p.evidence(3, 10), None, None).unwrap();
    assert_eq!(first.size, 10);
    p.grow(25);
    let consistency = p.tree.consistency_proof(10, 25).unwrap();
    let second =
        verify_record(&query(20), &p.signers(), &p.evidence(20, 25), Some(&first), Some(&consistency));
    assert_eq!(second.unwrap().size, 25);
    // The same checkpoint again needs no proof.
    assert!(verify_record(&query(4), &p.signers(), &p.evidence(4, 10), Some(&first), None).is_ok());
}

#[test]
fn every_lie_is_refused_with_its_reason() {
    let mut p = Partition::new(10);
    let signers = p.signers();

    let mut changed_value = p.evidence(3, 10);
    changed_value.record = b"record 3!".to_vec();
    assert!(matches!(
        verify_record(&query(3), &signers, &changed_value, None, None),
        Err(LightError::Inclusion(_))
    ));

    // The proof of offset 4 offered for offset 3, with offset 4's bytes.
    let other_offset = p.evidence(4, 10);
    assert!(matches!(
        verify_record(&query(3), &signers, &other_offset, None, None),
        Err(LightError::WrongOffset { asked: 3, got: 4 })
    ));

    // A proof for another tree size than the certified one.
    let mut wrong_size = p.evidence(3, 10);
    wrong_size.proof = p.tree.inclusion_proof(3, 8).unwrap();
    assert!(matches!(
        verify_record(&query(3), &signers, &wrong_size, None, None),
        Err(LightError::Inclusion(_))
    ));

    // A wrong sibling hash.
    let mut wrong_path = p.evidence(3, 10);
    wrong_path.proof.path[0].0[0] ^= 1;
    assert!(matches!(
        verify_record(&query(3), &signers, &wrong_path, None, None),
        Err(LightError::Inclusion(_))
    ));

    // One signature of three, a forged one, or one by an outsider.
    let mut short = p.evidence(3, 10);
    short.certificate = p.certify(10, &[2]);
    assert!(matches!(
        verify_record(&query(3), &signers, &short, None, None),
        Err(LightError::Certificate(_))
    ));
    let mut forged = p.evidence(3, 10);
    forged.certificate.signatures[1].signature = forged.certificate.signatures[0].signature;
    assert!(matches!(
        verify_record(&query(3), &signers, &forged, None, None),
        Err(LightError::Certificate(_))
    ));
    let mut outsider = p.evidence(3, 10);
    outsider.certificate.signatures[1] =
        SignatureShare::sign(&Keypair::generate(), &outsider.certificate.message);
    assert!(matches!(
        verify_record(&query(3), &signers, &outsider, None, None),
        Err(LightError::Certificate(_))
    ));
    let mut missing = p.evidence(3, 10);
    missing.certificate.signatures.clear();
    assert!(matches!(
        verify_record(&query(3), &signers, &missing, None, None),
        Err(LightError::Certificate(_))
    ));

    // Evidence about another partition or cluster.
    let mut elsewhere = query(3);
    elsewhere.cluster = ClusterId::new("other").unwrap();
    assert!(matches!(
        verify_record(&elsewhere, &signers, &p.evidence(3, 10), None, None),
        Err(LightError::WrongPartition { .. })
    ));
    let mut other_log = query(3);
    other_log.log = LogName::new("other").unwrap();
    assert!(matches!(
        verify_record(&other_log, &signers, &p.evidence(3, 10), None, None),
        Err(LightError::WrongPartition { .. })
    ));

    // Rollback: a checkpoint older than the trusted one.
    p.grow(20);
    let trusted = p.certify(20, &[0, 1]).message;
    assert!(matches!(
        verify_record(&query(3), &signers, &p.evidence(3, 10), Some(&trusted), None),
        Err(LightError::Rollback { trusted: 20, got: 10 })
    ));

    // Fork: a certified history that does not extend the trusted one.
    let mut fork = Partition::new(0);
    fork.keys = p.keys.clone();
    for i in 0..30 {
        fork.tree.append(format!("forked {i}").as_bytes()).unwrap();
    }
    let forked = RecordEvidence {
        record: b"forked 25".to_vec(),
        proof: fork.tree.inclusion_proof(25, 30).unwrap(),
        certificate: fork.certify(30, &[0, 1]),
    };
    let bogus_consistency = fork.tree.consistency_proof(20, 30).unwrap();
    assert!(matches!(
        verify_record(&query(25), &signers, &forked, Some(&trusted), Some(&bogus_consistency)),
        Err(LightError::Fork(_))
    ));
    assert!(matches!(
        verify_record(&query(25), &signers, &forked, Some(&trusted), None),
        Err(LightError::MissingConsistencyProof { trusted: 20 })
    ));
    // Same size, different root.
    let mut same_size = Partition::new(0);
    same_size.keys = p.keys.clone();
    for i in 0..20 {
        same_size.tree.append(format!("other {i}").as_bytes()).unwrap();
    }
    let conflicting = RecordEvidence {
        record: b"other 5".to_vec(),
        proof: same_size.tree.inclusion_proof(5, 20).unwrap(),
        certificate: same_size.certify(20, &[0, 2]),
    };
    assert!(matches!(
        verify_record(&query(5), &signers, &conflicting, Some(&trusted), None),
        Err(LightError::Fork(_))
    ));
}
