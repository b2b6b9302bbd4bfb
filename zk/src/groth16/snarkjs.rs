//! The membership proofs in snarkjs's JSON (`snarkjs groth16 verify verification_key.json
//! public.json proof.json`), so anyone with snarkjs, an Ethereum verifier contract it exports, or
//! a browser can check them: the same standard Groth16 over BN254 (snarkjs calls the curve
//! `bn128`), written as snarkjs writes it.
//!
//! Points are affine coordinates as decimal strings with a projective `z` of one (`["x", "y",
//! "1"]`); a G2 coordinate is its two Fq components `[c0, c1]` (`c0 + c1·u`, snarkjs's order);
//! public signals are the public inputs in the circuit's order, decimal.

use ark_bn254::{Bn254, Fq, Fq2, Fr, G1Affine, G2Affine};
use ark_ec::AffineRepr;
use ark_groth16::{Proof, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::MembershipStatement;

/// A G1 point: `[x, y, "1"]`.
pub type G1Json = [String; 3];
/// A G2 point: `[[x.c0, x.c1], [y.c0, y.c1], ["1", "0"]]`.
pub type G2Json = [[String; 2]; 3];

/// A verifying key as snarkjs's `verification_key.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnarkjsVerifyingKey {
    /// `"groth16"`.
    pub protocol: String,
    /// `"bn128"` (BN254).
    pub curve: String,
    /// How many public inputs.
    #[serde(rename = "nPublic")]
    pub n_public: usize,
    /// α in G1.
    pub vk_alpha_1: G1Json,
    /// β in G2.
    pub vk_beta_2: G2Json,
    /// γ in G2.
    pub vk_gamma_2: G2Json,
    /// δ in G2.
    pub vk_delta_2: G2Json,
    /// The public inputs' bases, the constant's first (snarkjs's `IC`, arkworks's `gamma_abc_g1`).
    #[serde(rename = "IC")]
    pub ic: Vec<G1Json>,
}

/// A proof as snarkjs's `proof.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnarkjsProof {
    /// A in G1.
    pub pi_a: G1Json,
    /// B in G2.
    pub pi_b: G2Json,
    /// C in G1.
    pub pi_c: G1Json,
    /// `"groth16"`.
    pub protocol: String,
    /// `"bn128"`.
    pub curve: String,
}

fn fq(x: Fq) -> String {
    x.to_string()
}

fn g1(point: &G1Affine) -> G1Json {
    // Every point of a key or proof from the prover is finite; the identity would be [0, 1, 0].
    match point.xy() {
        Some((x, y)) => [fq(x), fq(y), "1".into()],
        None => ["0".into(), "1".into(), "0".into()],
    }
}

fn fq2(x: Fq2) -> [String; 2] {
    [fq(x.c0), fq(x.c1)]
}

fn g2(point: &G2Affine) -> G2Json {
    match point.xy() {
        Some((x, y)) => [fq2(x), fq2(y), ["1".into(), "0".into()]],
        None => [["0".into(), "0".into()], ["1".into(), "0".into()], ["0".into(), "0".into()]],
    }
}

impl From<&VerifyingKey<Bn254>> for SnarkjsVerifyingKey {
    fn from(key: &VerifyingKey<Bn254>) -> Self {
        SnarkjsVerifyingKey {
            protocol: "groth16".into(),
            curve: "bn128".into(),
            n_public: key.gamma_abc_g1.len().saturating_sub(1),
            vk_alpha_1: g1(&key.alpha_g1),
            vk_beta_2: g2(&key.beta_g2),
            vk_gamma_2: g2(&key.gamma_g2),
            vk_delta_2: g2(&key.delta_g2),
            ic: key.gamma_abc_g1.iter().map(g1).collect(),
        }
    }
}

impl From<&Proof<Bn254>> for SnarkjsProof {
    fn from(proof: &Proof<Bn254>) -> Self {
        SnarkjsProof {
            pi_a: g1(&proof.a),
            pi_b: g2(&proof.b),
            pi_c: g1(&proof.c),
            protocol: "groth16".into(),
            curve: "bn128".into(),
        }
    }
}

/// A statement's public inputs as snarkjs's `public.json`: decimal strings, in the circuit's order
/// (root, epoch, size, whether the key is disclosed, the key or 0, the nonce).
pub fn public_signals(statement: &MembershipStatement) -> Vec<String> {
    statement.public_inputs().iter().map(Fr::to_string).collect()
}
