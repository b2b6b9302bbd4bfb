//! Quorum certificates: signatures of distinct members over the same message, enough of them by
//! weight to pass a [`Threshold`] of a [`MemberSet`].
//!
//! Verification is strict: a certificate that carries any duplicate, unknown or invalid signature
//! is rejected as a whole, even if the valid rest would reach the threshold. Certificates are built
//! by leaders that check every share on arrival ([`CertificateBuilder`]), so an honest leader
//! never produces such a certificate.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use ed25519_dalek::VerifyingKey;

use crate::keys::{Keypair, PublicKey, Signature, verify_all, verify_with};

/// A message type that members sign.
pub trait Signable {
    /// Prefixed to the encoding before signing; distinct for every signed type, so a signature
    /// over one kind of message can never be replayed as another.
    const SIGNING_CONTEXT: &'static [u8];

    /// The canonical encoding.
    fn encode(&self) -> Vec<u8>;

    /// The exact bytes that are signed: context then encoding.
    fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = Self::SIGNING_CONTEXT.to_vec();
        bytes.extend_from_slice(&self.encode());
        bytes
    }
}

/// The voting members and their weights (1 each for cluster replicas, stake for validators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSet {
    /// Weight and decompressed key (decompressed once here, not per signature).
    members: BTreeMap<PublicKey, (u64, VerifyingKey)>,
    total: u64,
}

/// Why a member set is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemberSetError {
    /// No members.
    #[error("a member set needs at least one member")]
    Empty,
    /// A key listed twice.
    #[error("member {0} is listed twice")]
    DuplicateMember(PublicKey),
    /// A member with no weight.
    #[error("member {0} has weight 0")]
    ZeroWeight(PublicKey),
    /// The weights do not fit in 64 bits.
    #[error("total weight overflows u64")]
    TotalWeightOverflow,
}

impl MemberSet {
    /// A member set from `(key, weight)` pairs.
    pub fn new(members: impl IntoIterator<Item = (PublicKey, u64)>) -> Result<Self, MemberSetError> {
        let mut set = BTreeMap::new();
        let mut total: u64 = 0;
        for (key, weight) in members {
            if weight == 0 {
                return Err(MemberSetError::ZeroWeight(key));
            }
            if set.insert(key, (weight, key.verifying_key())).is_some() {
                return Err(MemberSetError::DuplicateMember(key));
            }
            total = total.checked_add(weight).ok_or(MemberSetError::TotalWeightOverflow)?;
        }
        if set.is_empty() {
            return Err(MemberSetError::Empty);
        }
        Ok(MemberSet { members: set, total })
    }

    /// Members of weight 1 each.
    pub fn equal(keys: impl IntoIterator<Item = PublicKey>) -> Result<Self, MemberSetError> {
        MemberSet::new(keys.into_iter().map(|key| (key, 1)))
    }

    /// The weight of `key`, if it is a member.
    pub fn weight(&self, key: &PublicKey) -> Option<u64> {
        self.members.get(key).map(|(weight, _)| *weight)
    }

    /// Sum of all weights.
    pub fn total_weight(&self) -> u64 {
        self.total
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a member set has at least one member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members, in key order.
    pub fn members(&self) -> impl Iterator<Item = (&PublicKey, u64)> {
        self.members.iter().map(|(key, (weight, _))| (key, *weight))
    }
}

/// The fraction of total weight a certificate needs: `> n/d` or `>= n/d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    numerator: u64,
    denominator: u64,
    inclusive: bool,
}

impl Threshold {
    /// More than half: a Raft-style cluster majority. (The validator quorum, more than 2/3, is
    /// `pyralog_consensus::validators::QUORUM`.)
    pub const MAJORITY: Threshold = Threshold::more_than(1, 2);

    /// Strictly more than `numerator / denominator` of the total weight.
    pub const fn more_than(numerator: u64, denominator: u64) -> Self {
        Threshold::fraction(numerator, denominator, false)
    }

    /// At least `numerator / denominator` of the total weight.
    pub const fn at_least(numerator: u64, denominator: u64) -> Self {
        Threshold::fraction(numerator, denominator, true)
    }

    const fn fraction(numerator: u64, denominator: u64, inclusive: bool) -> Self {
        assert!(denominator > 0 && numerator <= denominator, "a threshold is a fraction in [0, 1]");
        Threshold { numerator, denominator, inclusive }
    }

    /// Whether `signed` out of `total` weight passes.
    pub fn is_met(&self, signed: u64, total: u64) -> bool {
        let lhs = u128::from(signed) * u128::from(self.denominator);
        let rhs = u128::from(total) * u128::from(self.numerator);
        if self.inclusive { lhs >= rhs } else { lhs > rhs }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.inclusive { ">=" } else { ">" };
        write!(f, "{op} {}/{}", self.numerator, self.denominator)
    }
}

/// One member's signature over a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureShare {
    /// Who signed.
    pub signer: PublicKey,
    /// The signature over the message's [`Signable::signing_bytes`].
    pub signature: Signature,
}

impl SignatureShare {
    /// Signs `message` with `keypair`.
    pub fn sign<M: Signable>(keypair: &Keypair, message: &M) -> Self {
        SignatureShare { signer: keypair.public(), signature: keypair.sign(&message.signing_bytes()) }
    }
}

/// Why a certificate or share was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuorumError {
    /// The same key signed twice.
    #[error("signer {0} appears more than once")]
    DuplicateSigner(PublicKey),
    /// A signer outside the member set.
    #[error("signer {0} is not a member")]
    UnknownSigner(PublicKey),
    /// A signature that does not verify over this message (forged, or for another message).
    #[error("signature of {0} does not verify over this message")]
    InvalidSignature(PublicKey),
    /// Valid signatures, but not enough weight.
    #[error("signatures carry weight {signed} of {total}, the threshold is {threshold}")]
    InsufficientWeight {
        /// Weight of the valid signers.
        signed: u64,
        /// Total weight of the member set.
        total: u64,
        /// The threshold that was not met.
        threshold: Threshold,
    },
}

/// Signatures of distinct members over one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumCertificate<M> {
    /// The signed message.
    pub message: M,
    /// One share per signer.
    pub signatures: Vec<SignatureShare>,
}

impl<M: Signable> QuorumCertificate<M> {
    /// Checks every signature and the total weight; returns the signed weight.
    ///
    /// Signers are checked first (members, no repeats), then all signatures in one batch
    /// (batch verification; a failing batch falls back to strict checks that name the bad share).
    pub fn verify(&self, members: &MemberSet, threshold: Threshold) -> Result<u64, QuorumError> {
        self.check(members, threshold, false, |_| false)
    }

    /// A light client's check, as CometBFT's `VerifyCommitLight`: every signer must be a distinct
    /// member, but only the signatures of the first shares whose weight meets the threshold are
    /// verified; the rest cannot add to what the certificate proves. Returns the verified weight.
    /// Full nodes, which store and forward certificates, use [`QuorumCertificate::verify`].
    pub fn verify_quorum(&self, members: &MemberSet, threshold: Threshold) -> Result<u64, QuorumError> {
        self.check(members, threshold, true, |_| false)
    }

    /// [`QuorumCertificate::verify`], skipping the signatures `verified` already holds: a share
    /// with the same signer and signature over the same message is the same valid signature.
    /// `verified` must be a certificate this node has itself verified (a validator checking the
    /// parent's proof a proposer carries holds its own proof of the parent: mostly the same
    /// precommits). Signers and weights are checked as always.
    pub fn verify_given(
        &self,
        members: &MemberSet,
        threshold: Threshold,
        verified: &QuorumCertificate<M>,
    ) -> Result<u64, QuorumError>
    where
        M: PartialEq,
    {
        if self.message != verified.message {
            return self.verify(members, threshold);
        }
        self.check(members, threshold, false, |share| verified.signatures.contains(share))
    }

    fn check(
        &self,
        members: &MemberSet,
        threshold: Threshold,
        stop_at_quorum: bool,
        known_valid: impl Fn(&SignatureShare) -> bool,
    ) -> Result<u64, QuorumError> {
        let total = members.total_weight();
        let mut seen = BTreeSet::new();
        let mut signed = 0;
        // The shares whose signatures need checking: their positions and keys.
        let mut unchecked = Vec::with_capacity(self.signatures.len());
        let mut keys = Vec::with_capacity(self.signatures.len());
        for (index, share) in self.signatures.iter().enumerate() {
            let (weight, key) = admit(members, &seen, share)?;
            seen.insert(share.signer);
            if !(stop_at_quorum && threshold.is_met(signed, total)) {
                signed += weight;
                if !known_valid(share) {
                    unchecked.push(index);
                    keys.push(*key);
                }
            }
        }
        let signatures: Vec<Signature> = unchecked.iter().map(|&i| self.signatures[i].signature).collect();
        verify_all(&keys, &self.message.signing_bytes(), &signatures)
            .map_err(|bad| QuorumError::InvalidSignature(self.signatures[unchecked[bad]].signer))?;
        if !threshold.is_met(signed, total) {
            return Err(QuorumError::InsufficientWeight { signed, total, threshold });
        }
        Ok(signed)
    }
}

/// A share's signer must be a member not seen yet; returns its weight and decompressed key.
fn admit<'m>(
    members: &'m MemberSet,
    seen: &BTreeSet<PublicKey>,
    share: &SignatureShare,
) -> Result<(u64, &'m VerifyingKey), QuorumError> {
    let (weight, key) = members.members.get(&share.signer).ok_or(QuorumError::UnknownSigner(share.signer))?;
    if seen.contains(&share.signer) {
        return Err(QuorumError::DuplicateSigner(share.signer));
    }
    Ok((*weight, key))
}

/// Checks one share; returns its weight and records its signer.
fn check_share(
    members: &MemberSet,
    signing_bytes: &[u8],
    seen: &mut BTreeSet<PublicKey>,
    share: &SignatureShare,
) -> Result<u64, QuorumError> {
    let (weight, key) = admit(members, seen, share)?;
    verify_with(key, signing_bytes, &share.signature)
        .map_err(|_| QuorumError::InvalidSignature(share.signer))?;
    seen.insert(share.signer);
    Ok(weight)
}

/// Gathers shares for one message, checking each on arrival, until the threshold is met.
#[derive(Debug)]
pub struct CertificateBuilder<'a, M> {
    message: M,
    signing_bytes: Vec<u8>,
    members: &'a MemberSet,
    threshold: Threshold,
    seen: BTreeSet<PublicKey>,
    shares: Vec<SignatureShare>,
    signed: u64,
}

impl<'a, M: Signable> CertificateBuilder<'a, M> {
    /// Starts gathering signatures over `message`.
    pub fn new(message: M, members: &'a MemberSet, threshold: Threshold) -> Self {
        let signing_bytes = message.signing_bytes();
        CertificateBuilder {
            message,
            signing_bytes,
            members,
            threshold,
            seen: BTreeSet::new(),
            shares: Vec::new(),
            signed: 0,
        }
    }

    /// Adds a share after checking it; a rejected share changes nothing. Returns whether the
    /// threshold is now met.
    pub fn add(&mut self, share: SignatureShare) -> Result<bool, QuorumError> {
        self.signed += check_share(self.members, &self.signing_bytes, &mut self.seen, &share)?;
        self.shares.push(share);
        Ok(self.is_complete())
    }

    /// Whether the gathered weight meets the threshold.
    pub fn is_complete(&self) -> bool {
        self.threshold.is_met(self.signed, self.members.total_weight())
    }

    /// The certificate, once complete; otherwise gives the builder back.
    pub fn finish(self) -> Result<QuorumCertificate<M>, Self> {
        match self.is_complete() {
            true => Ok(QuorumCertificate { message: self.message, signatures: self.shares }),
            false => Err(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_compare_exactly() {
        assert!(!Threshold::MAJORITY.is_met(1, 2));
        assert!(Threshold::MAJORITY.is_met(2, 3));
        let at_least_two_thirds = Threshold::at_least(2, 3);
        assert!(at_least_two_thirds.is_met(2, 3));
        assert!(!at_least_two_thirds.is_met(66, 100));
        assert!(at_least_two_thirds.is_met(u64::MAX / 3 * 2 + 1, u64::MAX));
        assert_eq!(at_least_two_thirds.to_string(), ">= 2/3");
        let more_than_two_thirds = Threshold::more_than(2, 3);
        assert!(!more_than_two_thirds.is_met(2, 3));
        assert!(more_than_two_thirds.is_met(3, 4));
        assert_eq!(more_than_two_thirds.to_string(), "> 2/3");
    }

    #[test]
    fn member_sets_reject_bad_input() {
        let key = Keypair::generate().public();
        assert_eq!(MemberSet::new([]), Err(MemberSetError::Empty));
        assert_eq!(MemberSet::new([(key, 0)]), Err(MemberSetError::ZeroWeight(key)));
        assert_eq!(MemberSet::new([(key, 1), (key, 2)]), Err(MemberSetError::DuplicateMember(key)));
        let other = Keypair::generate().public();
        assert_eq!(MemberSet::new([(key, u64::MAX), (other, 1)]), Err(MemberSetError::TotalWeightOverflow));
    }
}
