//! Quorum certificates over checkpoints: thresholds, weights, and every way a certificate can
//! be wrong.

use proptest::prelude::*;
use pyralog_crypto::quorum::{CertificateBuilder, QuorumError, Signable, SignatureShare};
use pyralog_crypto::{Digest, MemberSet, QuorumCertificate, Signature, Threshold};

use super::{checkpoint, keypairs};

fn certificate(signers: &[pyralog_crypto::Keypair]) -> QuorumCertificate<pyralog_crypto::Checkpoint> {
    let message = checkpoint(10, Digest([3; 32]));
    let signatures = signers.iter().map(|k| SignatureShare::sign(k, &message)).collect();
    QuorumCertificate { message, signatures }
}

#[test]
fn majority_of_a_cluster() {
    let keys = keypairs(4);
    let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
    assert_eq!(certificate(&keys[..3]).verify(&members, Threshold::MAJORITY), Ok(3));
    assert_eq!(
        certificate(&keys[..2]).verify(&members, Threshold::MAJORITY),
        Err(QuorumError::InsufficientWeight { signed: 2, total: 4, threshold: Threshold::MAJORITY })
    );
}

#[test]
fn weighted_two_thirds() {
    let keys = keypairs(4);
    let members = MemberSet::new(keys.iter().map(|k| k.public()).zip([5, 3, 1, 1])).unwrap();
    // 5 + 1 = 6 of 10 < 2/3; 5 + 3 = 8 passes; 3 + 1 + 1 = 5 fails.
    assert!(matches!(
        certificate(&[keys[0].clone(), keys[2].clone()]).verify(&members, Threshold::at_least(2, 3)),
        Err(QuorumError::InsufficientWeight { signed: 6, total: 10, .. })
    ));
    assert_eq!(certificate(&keys[..2]).verify(&members, Threshold::at_least(2, 3)), Ok(8));
    assert!(matches!(
        certificate(&keys[1..]).verify(&members, Threshold::at_least(2, 3)),
        Err(QuorumError::InsufficientWeight { signed: 5, total: 10, .. })
    ));
    // Exactly two thirds is enough for ">= 2/3".
    let exact = MemberSet::new(keys[..2].iter().map(|k| k.public()).zip([2, 1])).unwrap();
    assert_eq!(certificate(&keys[..1]).verify(&exact, Threshold::at_least(2, 3)), Ok(2));
}

#[test]
fn duplicate_signers_are_rejected() {
    let keys = keypairs(3);
    let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
    let mut cert = certificate(&keys[..1]);
    cert.signatures.push(cert.signatures[0]);
    assert_eq!(
        cert.verify(&members, Threshold::MAJORITY),
        Err(QuorumError::DuplicateSigner(keys[0].public()))
    );
}

#[test]
fn unknown_signers_are_rejected_even_with_a_quorum() {
    let keys = keypairs(4);
    let members = MemberSet::equal(keys[..3].iter().map(|k| k.public())).unwrap();
    let cert = certificate(&keys);
    assert_eq!(cert.verify(&members, Threshold::MAJORITY), Err(QuorumError::UnknownSigner(keys[3].public())));
}

#[test]
fn signatures_over_another_message_are_rejected() {
    let keys = keypairs(3);
    let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
    let mut cert = certificate(&keys);
    let other = checkpoint(11, Digest([3; 32]));
    cert.signatures[1] = SignatureShare::sign(&keys[1], &other);
    assert_eq!(
        cert.verify(&members, Threshold::MAJORITY),
        Err(QuorumError::InvalidSignature(keys[1].public()))
    );

    // Changing the message after signing invalidates every signature.
    let mut cert = certificate(&keys);
    cert.message.root.0[0] ^= 1;
    assert_eq!(
        cert.verify(&members, Threshold::MAJORITY),
        Err(QuorumError::InvalidSignature(cert.signatures[0].signer))
    );
}

#[test]
fn forged_signatures_are_rejected() {
    let keys = keypairs(3);
    let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
    let mut cert = certificate(&keys);
    cert.signatures[2].signature = Signature::from_bytes(&[7; 64]);
    assert_eq!(
        cert.verify(&members, Threshold::MAJORITY),
        Err(QuorumError::InvalidSignature(keys[2].public()))
    );
    // A signature by one member presented as another's.
    let mut cert = certificate(&keys);
    cert.signatures[0].signature = cert.signatures[1].signature;
    assert_eq!(
        cert.verify(&members, Threshold::MAJORITY),
        Err(QuorumError::InvalidSignature(keys[0].public()))
    );
}

/// Same bytes, other signing context: a signature cannot cross message types.
#[test]
fn signing_contexts_separate_message_types() {
    struct Impostor(Vec<u8>);
    impl Signable for Impostor {
        const SIGNING_CONTEXT: &'static [u8] = b"pyralog other message v1\0";
        fn encode(&self) -> Vec<u8> {
            self.0.clone()
        }
    }
    let keys = keypairs(1);
    let members = MemberSet::equal([keys[0].public()]).unwrap();
    let message = checkpoint(10, Digest([3; 32]));
    let share = SignatureShare::sign(&keys[0], &Impostor(message.encode()));
    let cert = QuorumCertificate { message, signatures: vec![share] };
    assert_eq!(
        cert.verify(&members, Threshold::MAJORITY),
        Err(QuorumError::InvalidSignature(keys[0].public()))
    );
}

#[test]
fn certificates_survive_json_and_tampering_in_json_is_caught() {
    let keys = keypairs(3);
    let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
    let json = serde_json::to_string(&certificate(&keys)).unwrap();
    let cert: QuorumCertificate<pyralog_crypto::Checkpoint> = serde_json::from_str(&json).unwrap();
    assert_eq!(cert.verify(&members, Threshold::MAJORITY), Ok(3));
    let tampered: QuorumCertificate<pyralog_crypto::Checkpoint> =
        serde_json::from_str(&json.replace("\"size\":10", "\"size\":11")).unwrap();
    assert!(matches!(tampered.verify(&members, Threshold::MAJORITY), Err(QuorumError::InvalidSignature(_))));
}

#[test]
fn builder_checks_each_share_and_completes_at_the_threshold() {
    let keys = keypairs(4);
    let outsider = keypairs(1).remove(0);
    let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
    let message = checkpoint(10, Digest([3; 32]));
    let mut builder = CertificateBuilder::new(message.clone(), &members, Threshold::MAJORITY);

    assert_eq!(builder.add(SignatureShare::sign(&keys[0], &message)), Ok(false));
    let dup = SignatureShare::sign(&keys[0], &message);
    assert_eq!(builder.add(dup), Err(QuorumError::DuplicateSigner(keys[0].public())));
    let stranger = SignatureShare::sign(&outsider, &message);
    assert_eq!(builder.add(stranger), Err(QuorumError::UnknownSigner(outsider.public())));
    let wrong = SignatureShare::sign(&keys[1], &checkpoint(9, Digest([3; 32])));
    assert_eq!(builder.add(wrong), Err(QuorumError::InvalidSignature(keys[1].public())));
    assert_eq!(builder.add(SignatureShare::sign(&keys[1], &message)), Ok(false));
    let builder = builder.finish().expect_err("2 of 4 is not a majority");
    let mut builder = builder;
    assert_eq!(builder.add(SignatureShare::sign(&keys[2], &message)), Ok(true));
    let cert = builder.finish().expect("3 of 4 is a majority");
    assert_eq!(cert.signatures.len(), 3);
    assert_eq!(cert.verify(&members, Threshold::MAJORITY), Ok(3));
}

/// The light check verifies signatures only until they make a quorum, but every signer must
/// still be a distinct member.
#[test]
fn light_check_stops_at_the_quorum_but_checks_every_signer() {
    let keys = keypairs(4);
    let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
    // 3 of 4 is a majority: the fourth share is not needed.
    let mut late = certificate(&keys);
    late.signatures[3].signature = Signature::from_bytes(&[7; 64]);
    assert_eq!(late.verify_quorum(&members, Threshold::MAJORITY), Ok(3));
    assert_eq!(
        late.verify(&members, Threshold::MAJORITY),
        Err(QuorumError::InvalidSignature(keys[3].public()))
    );
    // A bad share inside the quorum is caught.
    let mut early = certificate(&keys);
    early.signatures[1].signature = Signature::from_bytes(&[7; 64]);
    assert_eq!(
        early.verify_quorum(&members, Threshold::MAJORITY),
        Err(QuorumError::InvalidSignature(keys[1].public()))
    );
    // Outsiders and repeats are refused wherever they sit.
    let outsider = keypairs(1).remove(0);
    let mut stranger = certificate(&keys[..3]);
    stranger.signatures.push(SignatureShare::sign(&outsider, &stranger.message));
    assert_eq!(
        stranger.verify_quorum(&members, Threshold::MAJORITY),
        Err(QuorumError::UnknownSigner(outsider.public()))
    );
    let mut repeated = certificate(&keys[..3]);
    repeated.signatures.push(repeated.signatures[0]);
    assert_eq!(
        repeated.verify_quorum(&members, Threshold::MAJORITY),
        Err(QuorumError::DuplicateSigner(keys[0].public()))
    );
    // Too little weight is still too little.
    assert_eq!(
        certificate(&keys[..2]).verify_quorum(&members, Threshold::MAJORITY),
        Err(QuorumError::InsufficientWeight { signed: 2, total: 4, threshold: Threshold::MAJORITY })
    );
}

/// The group order l, little-endian: adding it to `s` gives the same point equation with a
/// non-canonical scalar, the classic ed25519 malleation.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn malleated(signature: &Signature) -> Signature {
    let mut bytes = signature.to_bytes();
    let mut carry = 0u16;
    for (byte, add) in bytes[32..].iter_mut().zip(GROUP_ORDER) {
        let sum = u16::from(*byte) + u16::from(add) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    Signature::from_bytes(&bytes)
}

/// Certificates with several shares are verified in one batch; a malleated signature (s + l)
/// must not slip through it, wherever it sits.
#[test]
fn malleated_signatures_are_rejected_in_a_batch() {
    let keys = keypairs(4);
    let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
    for position in 0..keys.len() {
        let mut cert = certificate(&keys);
        cert.signatures[position].signature = malleated(&cert.signatures[position].signature);
        assert_eq!(
            cert.verify(&members, Threshold::MAJORITY),
            Err(QuorumError::InvalidSignature(keys[position].public()))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Batch verification and strict per-signature verification agree: a certificate passes
    /// exactly when every share verifies on its own, and a failing one names the first share that
    /// does not.
    #[test]
    fn batch_agrees_with_strict_verification(
        signers in 1usize..8,
        tampered in any::<u8>(),
        mode in 0u8..4,
        bit in 0usize..512,
    ) {
        let keys = keypairs(signers);
        let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
        let mut cert = certificate(&keys);
        let other = checkpoint(11, Digest([3; 32]));
        for (i, share) in cert.signatures.iter_mut().enumerate().filter(|(i, _)| tampered & (1 << i) != 0) {
            share.signature = match mode {
                0 => {
                    let mut bytes = share.signature.to_bytes();
                    bytes[bit / 8] ^= 1 << (bit % 8);
                    Signature::from_bytes(&bytes)
                }
                1 => malleated(&share.signature),
                2 => SignatureShare::sign(&keys[i], &other).signature,
                _ => SignatureShare::sign(&keys[(i + 1) % keys.len()], &cert.message).signature,
            };
        }
        let bytes = cert.message.signing_bytes();
        let first_bad = cert.signatures.iter().find(|s| s.signer.verify(&bytes, &s.signature).is_err());
        match first_bad {
            Some(bad) => prop_assert_eq!(
                cert.verify(&members, Threshold::MAJORITY),
                Err(QuorumError::InvalidSignature(bad.signer))
            ),
            None => prop_assert_eq!(cert.verify(&members, Threshold::MAJORITY), Ok(signers as u64)),
        }
    }

    /// Any subset of signers passes exactly when its weight reaches the threshold.
    #[test]
    fn subset_passes_iff_weight_meets_threshold(
        weights in prop::collection::vec(1u64..100, 1..8),
        mask in any::<u8>(),
    ) {
        let keys = keypairs(weights.len());
        let members = MemberSet::new(keys.iter().map(|k| k.public()).zip(weights.iter().copied())).unwrap();
        let chosen: Vec<_> = (0..keys.len()).filter(|i| mask & (1 << i) != 0).collect();
        let signers: Vec<_> = chosen.iter().map(|&i| keys[i].clone()).collect();
        let signed: u64 = chosen.iter().map(|&i| weights[i]).sum();
        let total: u64 = weights.iter().sum();
        let cert = certificate(&signers);

        // Oracles written independently of `Threshold::is_met`.
        let majority = signed > total / 2; // > 1/2 of an integer total
        let two_thirds = 3 * signed >= 2 * total;
        prop_assert_eq!(cert.verify(&members, Threshold::MAJORITY).is_ok(), majority);
        prop_assert_eq!(cert.verify(&members, Threshold::at_least(2, 3)).is_ok(), two_thirds);
    }
}

proptest! {
    /// `verify_given` skips only the shares the verified certificate holds: for any verified
    /// certificate and any candidate with one share's signature replaced, it answers exactly as
    /// `verify` does.
    #[test]
    fn verify_given_answers_as_verify(
        known_signers in proptest::sample::subsequence((0..5usize).collect::<Vec<_>>(), 3..=5),
        candidate_signers in proptest::sample::subsequence((0..5usize).collect::<Vec<_>>(), 0..=5),
        tamper in proptest::option::of((0..5usize, 0..3u8)),
    ) {
        let keys = keypairs(5);
        let members = MemberSet::equal(keys.iter().map(|k| k.public())).unwrap();
        let pick = |indices: &[usize]| indices.iter().map(|&i| keys[i].clone()).collect::<Vec<_>>();
        let known = certificate(&pick(&known_signers));
        prop_assert!(known.verify(&members, Threshold::MAJORITY).is_ok());
        let mut candidate = certificate(&pick(&candidate_signers));
        if let Some((at, how)) = tamper && !candidate.signatures.is_empty() {
            let at = at % candidate.signatures.len();
            candidate.signatures[at].signature = match how {
                0 => Signature::from_bytes(&[7; 64]),
                1 => malleated(&candidate.signatures[at].signature),
                // Another member's valid signature over the same message.
                _ => known.signatures[0].signature,
            };
        }
        prop_assert_eq!(
            candidate.verify_given(&members, Threshold::MAJORITY, &known),
            candidate.verify(&members, Threshold::MAJORITY)
        );
    }
}
