//! The membership circuit and the Poseidon tree as arkworks' Merkle-tree configuration (native
//! hashes and their gadgets: one permutation of `[tag, a, b]`, as [`crate::poseidon`]).

use std::borrow::Borrow;

use ark_bn254::Fr;
use ark_crypto_primitives::crh::poseidon::constraints::CRHParametersVar;
use ark_crypto_primitives::crh::{CRHScheme, CRHSchemeGadget, TwoToOneCRHScheme, TwoToOneCRHSchemeGadget};
use ark_crypto_primitives::merkle_tree::constraints::{ConfigGadget, PathVar};
use ark_crypto_primitives::merkle_tree::{Config, IdentityDigestConverter, Path};
use ark_crypto_primitives::sponge::poseidon::PoseidonConfig;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::boolean::Boolean;
use ark_r1cs_std::eq::EqGadget;
use ark_r1cs_std::fields::FieldVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_r1cs_std::select::CondSelectGadget;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};
use ark_std::rand::Rng;

use crate::poseidon::{
    Element, RATE, TAG_LEAF, TAG_NODE, TAG_VALUE, config, hash_tagged, hash_tagged_elements,
};
use crate::tree::AuthPath;

impl Element for FpVar<Fr> {
    type Error = SynthesisError;

    fn plus(&self, other: &Self) -> Self {
        self + other
    }

    fn plus_constant(&self, c: Fr) -> Self {
        self + c
    }

    fn times_constant(&self, c: Fr) -> Self {
        self * c
    }

    fn pow5(&self) -> Result<Self, SynthesisError> {
        // x², x⁴, x⁵: three constraints (none for a constant).
        let x4 = self.square()?.square()?;
        Ok(x4 * self)
    }
}

/// [`hash_tagged`] in the circuit: the same permutation code over variables (linear layers
/// are linear combinations; only the S-boxes cost constraints, 3 each).
pub fn hash_tagged_var(tag: u64, [a, b]: [&FpVar<Fr>; RATE]) -> Result<FpVar<Fr>, SynthesisError> {
    hash_tagged_elements(FpVar::Constant(Fr::from(tag)), [a.clone(), b.clone()])
}

/// Exactly two elements, as the leaf hash takes (a key and a value commitment).
fn pair<T>(input: &[T]) -> Option<[&T; 2]> {
    match input {
        [a, b] => Some([a, b]),
        _ => None,
    }
}

/// Leaf hash: `Poseidon(TAG_LEAF, key, commitment)`.
pub struct LeafHash;

impl CRHScheme for LeafHash {
    type Input = [Fr];
    type Output = Fr;
    type Parameters = PoseidonConfig<Fr>;

    fn setup<R: Rng>(_: &mut R) -> Result<Self::Parameters, ark_crypto_primitives::Error> {
        Ok(config().clone())
    }

    fn evaluate<T: Borrow<Self::Input>>(
        _: &Self::Parameters,
        input: T,
    ) -> Result<Self::Output, ark_crypto_primitives::Error> {
        let input = input.borrow();
        let [key, commitment] =
            pair(input).ok_or(ark_crypto_primitives::Error::IncorrectInputLength(input.len()))?;
        Ok(hash_tagged(TAG_LEAF, [*key, *commitment]))
    }
}

/// Inner-node hash: `Poseidon(TAG_NODE, left, right)`.
pub struct NodeHash;

impl TwoToOneCRHScheme for NodeHash {
    type Input = Fr;
    type Output = Fr;
    type Parameters = PoseidonConfig<Fr>;

    fn setup<R: Rng>(_: &mut R) -> Result<Self::Parameters, ark_crypto_primitives::Error> {
        Ok(config().clone())
    }

    fn evaluate<T: Borrow<Self::Input>>(
        parameters: &Self::Parameters,
        left: T,
        right: T,
    ) -> Result<Self::Output, ark_crypto_primitives::Error> {
        Self::compress(parameters, left, right)
    }

    fn compress<T: Borrow<Self::Output>>(
        _: &Self::Parameters,
        left: T,
        right: T,
    ) -> Result<Self::Output, ark_crypto_primitives::Error> {
        Ok(hash_tagged(TAG_NODE, [*left.borrow(), *right.borrow()]))
    }
}

/// [`LeafHash`] in the circuit.
pub struct LeafHashVar;

impl CRHSchemeGadget<LeafHash, Fr> for LeafHashVar {
    type InputVar = [FpVar<Fr>];
    type OutputVar = FpVar<Fr>;
    type ParametersVar = CRHParametersVar<Fr>;

    fn evaluate(_: &Self::ParametersVar, input: &Self::InputVar) -> Result<FpVar<Fr>, SynthesisError> {
        let pair = pair(input).ok_or(SynthesisError::Unsatisfiable)?;
        hash_tagged_var(TAG_LEAF, pair)
    }
}

/// [`NodeHash`] in the circuit.
pub struct NodeHashVar;

impl TwoToOneCRHSchemeGadget<NodeHash, Fr> for NodeHashVar {
    type InputVar = FpVar<Fr>;
    type OutputVar = FpVar<Fr>;
    type ParametersVar = CRHParametersVar<Fr>;

    fn evaluate(
        parameters: &Self::ParametersVar,
        left: &FpVar<Fr>,
        right: &FpVar<Fr>,
    ) -> Result<FpVar<Fr>, SynthesisError> {
        Self::compress(parameters, left, right)
    }

    fn compress(
        _: &Self::ParametersVar,
        left: &FpVar<Fr>,
        right: &FpVar<Fr>,
    ) -> Result<FpVar<Fr>, SynthesisError> {
        hash_tagged_var(TAG_NODE, [left, right])
    }
}

/// The Poseidon tree as an arkworks Merkle-tree configuration.
pub struct PoseidonTreeConfig;

impl Config for PoseidonTreeConfig {
    type Leaf = [Fr];
    type LeafDigest = Fr;
    type LeafInnerDigestConverter = IdentityDigestConverter<Fr>;
    type InnerDigest = Fr;
    type LeafHash = LeafHash;
    type TwoToOneHash = NodeHash;
}

/// Its gadget counterpart.
pub struct PoseidonTreeConfigVar;

impl ConfigGadget<PoseidonTreeConfig, Fr> for PoseidonTreeConfigVar {
    type Leaf = [FpVar<Fr>];
    type LeafDigest = FpVar<Fr>;
    type LeafInnerConverter = IdentityDigestConverter<FpVar<Fr>>;
    type InnerDigest = FpVar<Fr>;
    type LeafHash = LeafHashVar;
    type TwoToOneHash = NodeHashVar;
}

/// Our path in arkworks' layout: the leaf's sibling apart, the others from the top down.
pub fn ark_path(path: &AuthPath<Fr>) -> Path<PoseidonTreeConfig> {
    Path {
        leaf_sibling_hash: path.siblings[0],
        auth_path: path.siblings[1..].iter().rev().copied().collect(),
        leaf_index: path.index as usize,
    }
}

/// The statement "I know a record `(key, value, blinding)` whose leaf is in the tree with root
/// `root`", with the public inputs, in this order: root, epoch, size, whether the key is
/// disclosed (0 or 1), the disclosed key (0 when not), the verifier's nonce.
#[derive(Clone)]
pub struct MembershipCircuit {
    /// The tree's depth (fixes the circuit's shape, so the keys).
    pub depth: usize,
    /// Public: the tree root.
    pub root: Fr,
    /// Public: the checkpoint's epoch.
    pub epoch: Fr,
    /// Public: the checkpoint's size.
    pub size: Fr,
    /// Public: the disclosed key, if the prover discloses it.
    pub disclosed_key: Option<Fr>,
    /// Public: the verifier's nonce.
    pub nonce: Fr,
    /// Witness: the record's key.
    pub key: Fr,
    /// Witness: the record's value.
    pub value: Fr,
    /// Witness: the blinding of the value commitment.
    pub blinding: Fr,
    /// Witness: the leaf's path.
    pub path: AuthPath<Fr>,
    /// Whether the membership result is enforced; only a regression test turns it off.
    pub(crate) enforce_membership: bool,
}

impl MembershipCircuit {
    /// A circuit of `depth` with placeholder values, for key generation.
    pub fn blank(depth: usize) -> Self {
        MembershipCircuit {
            depth,
            root: Fr::from(0u64),
            epoch: Fr::from(0u64),
            size: Fr::from(0u64),
            disclosed_key: None,
            nonce: Fr::from(0u64),
            key: Fr::from(0u64),
            value: Fr::from(0u64),
            blinding: Fr::from(0u64),
            path: AuthPath { index: 0, siblings: vec![Fr::from(0u64); depth] },
            enforce_membership: true,
        }
    }

    /// The public inputs in the circuit's order (as [`super::MembershipStatement::public_inputs`]).
    pub fn public_inputs(&self) -> Vec<Fr> {
        vec![
            self.root,
            self.epoch,
            self.size,
            Fr::from(u64::from(self.disclosed_key.is_some())),
            self.disclosed_key.unwrap_or_default(),
            self.nonce,
        ]
    }

    /// The same circuit without enforcing that the computed root is the public one: the bug
    /// the regression test shows to be caught (proofs of non-members would verify).
    #[doc(hidden)]
    pub fn without_membership_check(mut self) -> Self {
        self.enforce_membership = false;
        self
    }
}

impl ConstraintSynthesizer<Fr> for MembershipCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        if self.path.siblings.len() != self.depth {
            return Err(SynthesisError::Unsatisfiable);
        }
        let root = FpVar::new_input(cs.clone(), || Ok(self.root))?;
        let epoch = FpVar::new_input(cs.clone(), || Ok(self.epoch))?;
        let size = FpVar::new_input(cs.clone(), || Ok(self.size))?;
        let discloses = Boolean::new_input(cs.clone(), || Ok(self.disclosed_key.is_some()))?;
        let disclosed = FpVar::new_input(cs.clone(), || Ok(self.disclosed_key.unwrap_or_default()))?;
        let nonce = FpVar::new_input(cs.clone(), || Ok(self.nonce))?;

        let key = FpVar::new_witness(cs.clone(), || Ok(self.key))?;
        let value = FpVar::new_witness(cs.clone(), || Ok(self.value))?;
        let blinding = FpVar::new_witness(cs.clone(), || Ok(self.blinding))?;
        let path = PathVar::<PoseidonTreeConfig, Fr, PoseidonTreeConfigVar>::new_witness(cs.clone(), || {
            Ok(ark_path(&self.path))
        })?;

        let parameters = CRHParametersVar { parameters: config().clone() };
        let commitment = hash_tagged_var(TAG_VALUE, [&value, &blinding])?;
        let leaf = [key.clone(), commitment];
        // verify_membership only *computes* whether the root matches; it must be enforced.
        let member = path.verify_membership(&parameters, &parameters, &root, &leaf[..])?;
        if self.enforce_membership {
            member.enforce_equal(&Boolean::TRUE)?;
        }

        // Disclosure: the disclosed key is the record's; undisclosed, the input must be 0.
        FpVar::conditionally_select(&discloses, &key, &disclosed)?.enforce_equal(&disclosed)?;
        FpVar::conditionally_select(&discloses, &disclosed, &FpVar::zero())?.enforce_equal(&disclosed)?;

        // Epoch, size and nonce are bound as public inputs; these constraints keep them in the
        // constraint system itself, whatever the reduction to QAP does with unused inputs.
        for input in [&epoch, &size, &nonce] {
            let _ = input.square()?;
        }
        Ok(())
    }
}
