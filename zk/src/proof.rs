//! One interface over both proof systems: a [`ZkProof`] is a statement and the proof bytes of
//! the system that proves it, with one JSON shape (hex strings, field elements as their 32-byte
//! canonical encodings) for files, RPC answers and the light client.
//!
//! Verifying a proof checks it against its own statement. Whether that statement is about the
//! log the verifier cares about is a second check: its roots must be the ones a certified
//! checkpoint carries ([`ZkProof::claimed_roots`]).

use ark_bn254::Bn254;
use ark_groth16::VerifyingKey;
use pyralog_crypto::{Checkpoint, ZkTree};
use serde::{Deserialize, Serialize};

use crate::groth16::{self, Groth16Error, MembershipKeys, MembershipStatement, MembershipWitness};
use crate::poseidon::{Fr, PoseidonHasher};
use crate::rescue::{RescueDigest, RescueHasher};
use crate::stark::{self, AppendProof, AppendStatement, StarkError};
use crate::tree::DigestCodec;

/// What a proof claims, by system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// Groth16: a hidden record is in the Poseidon tree with this root.
    Membership(MembershipStatement),
    /// STARK: a batch of appends moved the Rescue tree from one root to another.
    Appends(AppendStatement),
}

/// A proof with its statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkProof {
    /// What is claimed.
    pub statement: Statement,
    /// The proof's bytes (compressed Groth16 proof, or Winterfell's proof encoding).
    pub proof: Vec<u8>,
}

/// A root a statement names, to compare with a checkpoint's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedRoot {
    /// Which tree: Poseidon (membership) or Rescue (appends).
    pub tree: ClaimedTree,
    /// The tree size the root is claimed for.
    pub size: u64,
    /// The root's canonical 32 bytes.
    pub root: [u8; 32],
}

/// The tree a claimed root belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimedTree {
    /// The Poseidon tree.
    Poseidon,
    /// The Rescue tree.
    Rescue,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZkError {
    /// The Groth16 system refused (or failed).
    #[error(transparent)]
    Groth16(#[from] Groth16Error),
    /// The STARK system refused (or failed).
    #[error(transparent)]
    Stark(#[from] StarkError),
    /// A membership proof needs the circuit's verifying key.
    #[error("verifying a membership proof needs the circuit's verifying key")]
    NoVerifyingKey,
    /// A root the statement names is not the one the checkpoint for that size carries.
    #[error("the statement's {what} is not the certified one: {reason}")]
    NotCertified {
        /// Which claim.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl ZkProof {
    /// Proves membership (Groth16) of `witness`'s record.
    pub fn prove_membership(
        keys: &MembershipKeys,
        statement: MembershipStatement,
        witness: &MembershipWitness,
    ) -> Result<Self, ZkError> {
        let proof = groth16::prove(keys, &statement, witness)?;
        Ok(ZkProof { statement: Statement::Membership(statement), proof: groth16::proof_to_bytes(&proof) })
    }

    /// Proves (STARK) that appending `leaves` at `old_size`, to the tree whose next slot has
    /// `siblings`, moves its root as the statement says.
    pub fn prove_appends(
        old_size: u64,
        siblings: &[RescueDigest],
        leaves: &[RescueDigest],
    ) -> Result<Self, ZkError> {
        let (statement, proof) = stark::prove_batch(old_size, siblings, leaves)?;
        Ok(ZkProof { statement: Statement::Appends(statement), proof: proof.to_bytes() })
    }

    /// Checks the proof against its statement (membership proofs under `membership_key`). Untrusted
    /// bytes are decoded with checks; STARKs must reach [`stark::MIN_SECURITY_BITS`].
    pub fn verify(&self, membership_key: Option<&VerifyingKey<Bn254>>) -> Result<(), ZkError> {
        match &self.statement {
            Statement::Membership(statement) => {
                let key = membership_key.ok_or(ZkError::NoVerifyingKey)?;
                let proof = groth16::proof_from_bytes(&self.proof)?;
                Ok(groth16::verify(&groth16::prepare(key), statement, &proof)?)
            }
            Statement::Appends(statement) => {
                let proof = AppendProof::from_bytes(&self.proof)?;
                Ok(stark::verify_appends(statement, &proof)?)
            }
        }
    }

    /// The roots the statement names, with the sizes they are claimed for: what a verifier
    /// compares with certified checkpoints (for appends: the old root, then the new one).
    pub fn claimed_roots(&self) -> Vec<ClaimedRoot> {
        match &self.statement {
            Statement::Membership(s) => vec![ClaimedRoot {
                tree: ClaimedTree::Poseidon,
                size: s.size,
                root: PoseidonHasher::to_bytes(&s.root),
            }],
            Statement::Appends(s) => vec![
                ClaimedRoot {
                    tree: ClaimedTree::Rescue,
                    size: s.old_size,
                    root: RescueHasher::to_bytes(&s.old_root),
                },
                ClaimedRoot {
                    tree: ClaimedTree::Rescue,
                    size: s.old_size.saturating_add(s.count),
                    root: RescueHasher::to_bytes(&s.new_root),
                },
            ],
        }
    }
}

/// The membership statement about `checkpoint`'s Poseidon tree (its root, epoch and size) for
/// the verifier's `nonce`, disclosing `disclosed_key` if given; `None` when the checkpoint
/// carries no Poseidon root (or a non-canonical one).
pub fn membership_statement(
    checkpoint: &Checkpoint,
    disclosed_key: Option<Fr>,
    nonce: Fr,
) -> Option<MembershipStatement> {
    let root =
        checkpoint.zk_roots.get(&ZkTree::Poseidon).and_then(|root| PoseidonHasher::from_bytes(&root.0))?;
    Some(MembershipStatement { root, epoch: checkpoint.epoch, size: checkpoint.size, disclosed_key, nonce })
}

impl ZkProof {
    /// Checks that the statement is about certified state: a membership statement's root, epoch
    /// and size are `certified`'s; an append batch ends at `certified` and starts at the empty
    /// tree or at `trusted` (a checkpoint of the same partition the verifier already holds).
    /// The caller has checked both certificates and that they name the partition it asks about.
    pub fn check_certified(
        &self,
        certified: &Checkpoint,
        trusted: Option<&Checkpoint>,
    ) -> Result<(), ZkError> {
        let not = |what, reason: String| Err(ZkError::NotCertified { what, reason });
        let root_of = |checkpoint: &Checkpoint, tree: ZkTree| checkpoint.zk_roots.get(&tree).map(|d| d.0);
        match &self.statement {
            Statement::Membership(s) => {
                if (s.size, s.epoch) != (certified.size, certified.epoch) {
                    return not(
                        "size and epoch",
                        format!(
                            "{}/{} claimed, {}/{} certified",
                            s.size, s.epoch, certified.size, certified.epoch
                        ),
                    );
                }
                if root_of(certified, ZkTree::Poseidon) != Some(PoseidonHasher::to_bytes(&s.root)) {
                    return not("Poseidon root", format!("differs from the checkpoint's at size {}", s.size));
                }
            }
            Statement::Appends(s) => {
                let new_size = s.old_size.saturating_add(s.count);
                if new_size != certified.size {
                    return not("new size", format!("{new_size} claimed, {} certified", certified.size));
                }
                if root_of(certified, ZkTree::Rescue) != Some(RescueHasher::to_bytes(&s.new_root)) {
                    return not(
                        "new Rescue root",
                        format!("differs from the checkpoint's at size {new_size}"),
                    );
                }
                let old = match trusted {
                    _ if s.old_size == 0 => {
                        let empty = crate::tree::empty_subtrees::<RescueHasher>(crate::tree::MAX_DEPTH);
                        Some(RescueHasher::to_bytes(&empty[crate::tree::MAX_DEPTH]))
                    }
                    Some(trusted) if trusted.size == s.old_size => root_of(trusted, ZkTree::Rescue),
                    _ => return not("old root", format!("no trusted checkpoint at size {}", s.old_size)),
                };
                if old != Some(RescueHasher::to_bytes(&s.old_root)) {
                    return not(
                        "old Rescue root",
                        format!("differs from the trusted one at size {}", s.old_size),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Bytes as 0x-prefixed hex (the RPC's convention).
fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn from_hex(text: &str, what: &str) -> Result<Vec<u8>, String> {
    let digits = text.strip_prefix("0x").ok_or_else(|| format!("{what}: bytes are 0x-prefixed hex"))?;
    hex::decode(digits).map_err(|e| format!("{what}: {e}"))
}

/// The JSON shape: `{"system": "groth16" | "stark", ...statement fields, "proof": hex}`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "system", rename_all = "lowercase", deny_unknown_fields)]
enum Wire {
    #[serde(rename_all = "camelCase")]
    Groth16 {
        root: String,
        epoch: u64,
        size: u64,
        disclosed_key: Option<String>,
        nonce: String,
        proof: String,
    },
    #[serde(rename_all = "camelCase")]
    Stark {
        old_root: String,
        old_size: u64,
        count: u64,
        batch_digest: String,
        new_root: String,
        proof: String,
    },
}

impl Serialize for ZkProof {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fr = |x: &Fr| to_hex(&PoseidonHasher::to_bytes(x));
        let rd = |x: &RescueDigest| to_hex(&RescueHasher::to_bytes(x));
        let proof = to_hex(&self.proof);
        match &self.statement {
            Statement::Membership(s) => Wire::Groth16 {
                root: fr(&s.root),
                epoch: s.epoch,
                size: s.size,
                disclosed_key: s.disclosed_key.as_ref().map(fr),
                nonce: fr(&s.nonce),
                proof,
            },
            Statement::Appends(s) => Wire::Stark {
                old_root: rd(&s.old_root),
                old_size: s.old_size,
                count: s.count,
                batch_digest: rd(&s.batch_digest),
                new_root: rd(&s.new_root),
                proof,
            },
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ZkProof {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        fn bytes32<E: Error>(text: &str, what: &str) -> Result<[u8; 32], E> {
            let bytes = from_hex(text, what).map_err(E::custom)?;
            bytes.try_into().map_err(|_| E::custom(format!("{what}: not 32 bytes")))
        }
        fn fr<E: Error>(text: &str, what: &str) -> Result<Fr, E> {
            PoseidonHasher::from_bytes(&bytes32(text, what)?)
                .ok_or_else(|| E::custom(format!("{what}: not a canonical field element")))
        }
        fn rd<E: Error>(text: &str, what: &str) -> Result<RescueDigest, E> {
            RescueHasher::from_bytes(&bytes32(text, what)?)
                .ok_or_else(|| E::custom(format!("{what}: not a canonical digest")))
        }
        let proof_bytes = |text: &str| from_hex(text, "proof").map_err(D::Error::custom);
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Groth16 { root, epoch, size, disclosed_key, nonce, proof } => ZkProof {
                statement: Statement::Membership(MembershipStatement {
                    root: fr(&root, "root")?,
                    epoch,
                    size,
                    disclosed_key: disclosed_key.as_deref().map(|k| fr(k, "disclosedKey")).transpose()?,
                    nonce: fr(&nonce, "nonce")?,
                }),
                proof: proof_bytes(&proof)?,
            },
            Wire::Stark { old_root, old_size, count, batch_digest, new_root, proof } => ZkProof {
                statement: Statement::Appends(AppendStatement {
                    old_root: rd(&old_root, "oldRoot")?,
                    old_size,
                    count,
                    batch_digest: rd(&batch_digest, "batchDigest")?,
                    new_root: rd(&new_root, "newRoot")?,
                }),
                proof: proof_bytes(&proof)?,
            },
        })
    }
}
