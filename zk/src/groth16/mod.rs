//! Groth16 (BN254) membership proofs: "I know a record in the tree with this root", with the
//! checkpoint's epoch and size, an optionally disclosed key and the verifier's nonce as public
//! inputs.
//!
//! Keys are circuit-specific and made by one party ([`setup`]): whoever ran it could forge proofs,
//! so the keys are only as trustworthy as that party. A multi-party ceremony (Powers of Tau plus
//! a circuit-specific phase 2, as Zcash and Semaphore ran) would replace it: its output has the
//! same `ProvingKey`/`VerifyingKey` shape. Untrusted proofs and verifying keys are read with
//! checked deserialization (points on the curve and in the prime-order subgroup).

mod circuit;
pub mod snarkjs;

pub use circuit::{
    LeafHash, LeafHashVar, MembershipCircuit, NodeHash, NodeHashVar, PoseidonTreeConfig,
    PoseidonTreeConfigVar, ark_path, hash_tagged_var,
};

use ark_bn254::{Bn254, Fr};
use ark_groth16::{Groth16, PreparedVerifyingKey, Proof, ProvingKey, VerifyingKey};
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystem};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize, Compress, Validate};
use ark_snark::SNARK;
use rand_core::OsRng;

use crate::poseidon::RecordFields;
use crate::tree::AuthPath;

/// What the verifier sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipStatement {
    /// The Poseidon root of the certified checkpoint.
    pub root: Fr,
    /// The checkpoint's epoch.
    pub epoch: u64,
    /// The checkpoint's size.
    pub size: u64,
    /// The record's key (field element), when the prover discloses it.
    pub disclosed_key: Option<Fr>,
    /// The verifier's fresh nonce: a proof made for one nonce does not verify for another.
    pub nonce: Fr,
}

impl MembershipStatement {
    /// The public inputs in the circuit's order.
    pub fn public_inputs(&self) -> Vec<Fr> {
        vec![
            self.root,
            Fr::from(self.epoch),
            Fr::from(self.size),
            Fr::from(u64::from(self.disclosed_key.is_some())),
            self.disclosed_key.unwrap_or_default(),
            self.nonce,
        ]
    }
}

/// What only the prover knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipWitness {
    /// The record's key.
    pub key: Fr,
    /// The record's value.
    pub value: Fr,
    /// The blinding of the value commitment.
    pub blinding: Fr,
    /// The leaf's path in the tree of the checkpoint's size.
    pub path: AuthPath<Fr>,
}

impl MembershipWitness {
    /// The witness for a record at the end of `path`.
    pub fn of_record(record: &RecordFields, path: AuthPath<Fr>) -> Self {
        MembershipWitness { key: record.key, value: record.value, blinding: record.blinding, path }
    }
}

/// Why proving or verifying failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Groth16Error {
    /// The proof does not verify for this statement and key.
    #[error("the proof does not verify for this statement")]
    Rejected,
    /// Bytes that are not a valid proof or key (wrong length, a point off the curve or outside
    /// the subgroup).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Proof or key.
        what: &'static str,
        /// The decoder's reason.
        reason: String,
    },
    /// The witness does not fit the key's circuit (another depth).
    #[error("the witness path has {got} levels, the circuit {expected}")]
    WrongDepth {
        /// The key's depth.
        expected: usize,
        /// The path's.
        got: usize,
    },
    /// The witness does not satisfy the statement: nothing to prove.
    #[error(
        "the witness does not satisfy the statement (constraint {0}): the record is not in the tree at this root, or the disclosed key is not its key"
    )]
    Unsatisfied(String),
    /// A proof made with this proving key does not verify under the verifying key: the proving
    /// key is damaged or from another setup.
    #[error(
        "a proof made with this proving key does not verify under the verifying key: the proving key is damaged or from another setup"
    )]
    BadProvingKey,
    /// The proving key and the verifying key come from different setups.
    #[error("the proving key and the verifying key come from different setups")]
    KeyMismatch,
    /// The prover or the verifier failed internally.
    #[error("groth16: {0}")]
    Internal(String),
}

/// A proving key with the depth it was made for.
#[derive(Clone)]
pub struct MembershipKeys {
    /// The tree depth.
    pub depth: usize,
    /// The proving key.
    pub proving: ProvingKey<Bn254>,
    /// The verifying key.
    pub verifying: VerifyingKey<Bn254>,
}

/// Makes the keys for trees of `depth` (single party, with the system's randomness).
pub fn setup(depth: usize) -> Result<MembershipKeys, Groth16Error> {
    setup_circuit(MembershipCircuit::blank(depth))
}

/// Makes keys for a given circuit shape (the regression test's unchecked variant goes through here).
#[doc(hidden)]
pub fn setup_circuit(circuit: MembershipCircuit) -> Result<MembershipKeys, Groth16Error> {
    let depth = circuit.depth;
    let (proving, verifying) = Groth16::<Bn254>::circuit_specific_setup(circuit, &mut OsRng)
        .map_err(|e| Groth16Error::Internal(e.to_string()))?;
    Ok(MembershipKeys { depth, proving, verifying })
}

/// Proves `statement` with `witness`; refuses a witness that does not satisfy it (a record not
/// in the tree at that root, a disclosed key that is not the record's).
pub fn prove(
    keys: &MembershipKeys,
    statement: &MembershipStatement,
    witness: &MembershipWitness,
) -> Result<Proof<Bn254>, Groth16Error> {
    prove_circuit(keys, circuit(keys.depth, statement, witness)?)
}

/// Proves with a given circuit (the regression test's unchecked variant goes through here).
#[doc(hidden)]
pub fn prove_circuit(
    keys: &MembershipKeys,
    circuit: MembershipCircuit,
) -> Result<Proof<Bn254>, Groth16Error> {
    // One synthesis: the prover's. A witness that does not satisfy the circuit gives a proof
    // that does not verify (ark-groth16's own check is a debug assertion, off in every profile
    // here: see Cargo.toml), and only then is the circuit synthesized again, to say which
    // constraint fails.
    let public_inputs = circuit.public_inputs();
    let proof = Groth16::<Bn254>::prove(&keys.proving, circuit.clone(), &mut OsRng)
        .map_err(|e| Groth16Error::Internal(e.to_string()))?;
    // The proving key is read unchecked (see `proving_key_to_bytes`): a proof is only handed out
    // once it verifies under the checked verifying key.
    match Groth16::<Bn254>::verify(&keys.verifying, &public_inputs, &proof) {
        Ok(true) => Ok(proof),
        Ok(false) => Err(match unsatisfied(circuit)? {
            Some(constraint) => Groth16Error::Unsatisfied(constraint),
            None => Groth16Error::BadProvingKey,
        }),
        Err(e) => Err(Groth16Error::Internal(e.to_string())),
    }
}

/// The first constraint `circuit` does not satisfy, if any.
fn unsatisfied(circuit: MembershipCircuit) -> Result<Option<String>, Groth16Error> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    circuit.generate_constraints(cs.clone()).map_err(|e| Groth16Error::Internal(e.to_string()))?;
    cs.which_is_unsatisfied().map_err(|e| Groth16Error::Internal(e.to_string()))
}

/// The circuit for a statement and witness.
pub fn circuit(
    depth: usize,
    statement: &MembershipStatement,
    witness: &MembershipWitness,
) -> Result<MembershipCircuit, Groth16Error> {
    if witness.path.siblings.len() != depth {
        return Err(Groth16Error::WrongDepth { expected: depth, got: witness.path.siblings.len() });
    }
    let mut circuit = MembershipCircuit::blank(depth);
    circuit.root = statement.root;
    circuit.epoch = Fr::from(statement.epoch);
    circuit.size = Fr::from(statement.size);
    circuit.disclosed_key = statement.disclosed_key;
    circuit.nonce = statement.nonce;
    circuit.key = witness.key;
    circuit.value = witness.value;
    circuit.blinding = witness.blinding;
    circuit.path = witness.path.clone();
    Ok(circuit)
}

/// Checks `proof` for `statement` under `key`.
pub fn verify(
    key: &PreparedVerifyingKey<Bn254>,
    statement: &MembershipStatement,
    proof: &Proof<Bn254>,
) -> Result<(), Groth16Error> {
    match Groth16::<Bn254>::verify_with_processed_vk(key, &statement.public_inputs(), proof) {
        Ok(true) => Ok(()),
        Ok(false) => Err(Groth16Error::Rejected),
        Err(e) => Err(Groth16Error::Internal(e.to_string())),
    }
}

/// Prepares a verifying key for repeated verification.
pub fn prepare(key: &VerifyingKey<Bn254>) -> PreparedVerifyingKey<Bn254> {
    Groth16::<Bn254>::process_vk(key).expect("processing a verifying key cannot fail")
}

/// A proof's compressed bytes (128).
pub fn proof_to_bytes(proof: &Proof<Bn254>) -> Vec<u8> {
    to_bytes(proof)
}

/// Reads an untrusted proof: compressed, every point checked on the curve and in the subgroup.
pub fn proof_from_bytes(bytes: &[u8]) -> Result<Proof<Bn254>, Groth16Error> {
    from_bytes(bytes, "proof")
}

/// A verifying key's compressed bytes.
pub fn verifying_key_to_bytes(key: &VerifyingKey<Bn254>) -> Vec<u8> {
    to_bytes(key)
}

/// Reads an untrusted verifying key (checked like [`proof_from_bytes`]).
pub fn verifying_key_from_bytes(bytes: &[u8]) -> Result<VerifyingKey<Bn254>, Groth16Error> {
    from_bytes(bytes, "verifying key")
}

/// The first bytes of a proving-key file: version 2, the circuit over the one-permutation
/// Poseidon hash (tree format 2, `crate::poseidon`).
pub const PROVING_KEY_MAGIC: &[u8; 8] = b"PYRZKPK2";

/// The first bytes of a version-1 key file (the circuit of tree format 1, which no longer
/// proves anything this version's trees hold).
const PROVING_KEY_MAGIC_V1: &[u8; 8] = b"PYRZKPK1";

/// A proving key's file bytes: [`PROVING_KEY_MAGIC`], the BLAKE3 digest of the body, and the
/// body (the key's uncompressed points).
///
/// The proving key is the prover's own file, not something received: a damaged or substituted
/// one can only make proofs that fail verification, never make a false statement verify. So its
/// points are stored uncompressed and read without the curve and subgroup checks (about 20 ms
/// instead of about 5 s at depth 32); the digest catches a damaged file, and [`prove`] verifies
/// every proof under the separately checked verifying key before handing it out.
pub fn proving_key_to_bytes(key: &ProvingKey<Bn254>) -> Vec<u8> {
    let mut body = Vec::with_capacity(key.serialized_size(Compress::No));
    key.serialize_uncompressed(&mut body).expect("serializing into a Vec cannot fail");
    let mut bytes = Vec::with_capacity(PROVING_KEY_MAGIC.len() + 32 + body.len());
    bytes.extend_from_slice(PROVING_KEY_MAGIC);
    bytes.extend_from_slice(blake3::hash(&body).as_bytes());
    bytes.extend_from_slice(&body);
    bytes
}

/// Reads a proving key written by [`proving_key_to_bytes`]: refuses another format and a body
/// whose digest does not match.
pub fn proving_key_from_bytes(bytes: &[u8]) -> Result<ProvingKey<Bn254>, Groth16Error> {
    let what = "proving key";
    let malformed = |reason: &str| Groth16Error::Malformed { what, reason: reason.to_owned() };
    if bytes.starts_with(PROVING_KEY_MAGIC_V1) {
        return Err(malformed(
            "a key for the circuit of Poseidon tree format 1, before the one-permutation hash \
             (run `pyralog zk setup` again)",
        ));
    }
    let rest = bytes
        .strip_prefix(PROVING_KEY_MAGIC)
        .ok_or_else(|| malformed("not a pyralog proving key file (run `pyralog zk setup` again)"))?;
    if rest.len() < 32 {
        return Err(malformed("truncated"));
    }
    let (digest, mut body) = rest.split_at(32);
    if blake3::hash(body).as_bytes() != digest {
        return Err(malformed("the digest does not match the contents: the file is damaged"));
    }
    let key = ProvingKey::deserialize_with_mode(&mut body, Compress::No, Validate::No)
        .map_err(|e| malformed(&e.to_string()))?;
    if !body.is_empty() {
        return Err(malformed(&format!("{} trailing bytes", body.len())));
    }
    Ok(key)
}

impl MembershipKeys {
    /// Pairs a proving key with the (checked) verifying key of the same setup; refuses keys from
    /// different setups.
    pub fn from_parts(
        depth: usize,
        proving: ProvingKey<Bn254>,
        verifying: VerifyingKey<Bn254>,
    ) -> Result<Self, Groth16Error> {
        if proving.vk != verifying {
            return Err(Groth16Error::KeyMismatch);
        }
        Ok(MembershipKeys { depth, proving, verifying })
    }
}

fn to_bytes<T: CanonicalSerialize>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(value.serialized_size(Compress::Yes));
    value.serialize_compressed(&mut bytes).expect("serializing into a Vec cannot fail");
    bytes
}

fn from_bytes<T: CanonicalDeserialize>(mut bytes: &[u8], what: &'static str) -> Result<T, Groth16Error> {
    let value = T::deserialize_with_mode(&mut bytes, Compress::Yes, Validate::Yes)
        .map_err(|e| Groth16Error::Malformed { what, reason: e.to_string() })?;
    if !bytes.is_empty() {
        return Err(Groth16Error::Malformed { what, reason: format!("{} trailing bytes", bytes.len()) });
    }
    Ok(value)
}
