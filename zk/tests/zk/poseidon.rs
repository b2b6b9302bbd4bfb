//! The Poseidon parameters and hashes: against circomlib's published permutation and hash,
//! pinned vectors, domain separation, and the in-circuit hashes against the native ones.

use ark_bn254::Fr;
use ark_crypto_primitives::crh::poseidon::constraints::CRHParametersVar;
use ark_crypto_primitives::crh::{CRHSchemeGadget, TwoToOneCRHSchemeGadget};
use ark_crypto_primitives::sponge::poseidon::PoseidonSponge;
use ark_crypto_primitives::sponge::{CryptographicSponge, FieldBasedCryptographicSponge};
use ark_ff::{BigInteger, PrimeField};
use ark_r1cs_std::R1CSVar;
use ark_r1cs_std::alloc::AllocVar;
use ark_r1cs_std::fields::fp::FpVar;
use ark_relations::r1cs::ConstraintSystem;
use proptest::prelude::*;
use pyralog_zk::groth16::{LeafHashVar, NodeHashVar, hash_tagged_var};
use pyralog_zk::poseidon::{self, RecordFields};

fn hex(x: Fr) -> String {
    hex::encode(x.into_bigint().to_bytes_be())
}

fn fr(hex_be: &str) -> Fr {
    Fr::from_be_bytes_mod_order(&hex::decode(hex_be).unwrap())
}

/// The permutation is circomlib's for 3 state elements: same first round constant and MDS entry
/// (circomlib's `poseidon_constants` for t = 3), and the same output for circomlib's own test
/// vector `poseidon([1, 2])`, read from the permuted state's element 0 as circom does.
#[test]
fn permutation_matches_circomlib() {
    let config = poseidon::config();
    assert_eq!(hex(config.ark[0][0]), "0ee9a592ba9a9518d05986d656f40c2114c4993c11bb29938d21d47304cd8e6e");
    assert_eq!(hex(config.mds[0][0]), "109b7f411ba0e4c9b2b70caf5c36a7b194be7c11ad24378bfedb68592ba8118b");
    assert_eq!((config.full_rounds, config.partial_rounds, config.alpha), (8, 57, 5));

    // arkworks' sponge puts the capacity element first: absorbing [1, 2] into the zero state
    // gives circom's initial state [0, 1, 2]; squeezing permutes it.
    let mut sponge = PoseidonSponge::new(config);
    sponge.absorb(&vec![Fr::from(1u64), Fr::from(2u64)]);
    let ours = sponge.squeeze_native_field_elements(1)[0];
    assert_eq!(hex(sponge.state[0]), "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a");
    assert_eq!(ours, sponge.state[1]);

    // Our hash is `[tag, a, b]` permuted, element 0 out: with tag 0, circomlib's Poseidon(2).
    assert_eq!(
        hex(poseidon::hash_tagged(0, [Fr::from(1u64), Fr::from(2u64)])),
        "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a"
    );
}

/// Our tagged hashes (tree format 2), pinned: a change of parameters, tags or layout shows here.
#[test]
fn pinned_vectors() {
    let (one, two) = (Fr::from(1u64), Fr::from(2u64));
    assert_eq!(hex(poseidon::empty()), "1c30b6c56efafe516ff19771badba06b069bcd03702e0976265601900f1c2fb0");
    assert_eq!(
        hex(poseidon::node(one, two)),
        "29f818774a5a86068f0e4998780d6b1003ab6b45ab1b661145e71897c923a648"
    );
    assert_eq!(
        hex(poseidon::leaf(one, two)),
        "07eea566bfbab6b55dca2df00eabd58df23d727d6b54a5fb130e494bc16db248"
    );
    assert_eq!(
        hex(poseidon::value_commitment(one, two)),
        "21bffa9000094d0b87ccb635c177c1192c172403fe363e9b6216df9f6363fe6b"
    );
    let record = RecordFields::of_record(Some(b"user-1"), b"event 1", None);
    assert_eq!(hex(record.key), "0540f07444962772cee1c95fd737b931d6e7b3d5ddc381e0e19420591107412d");
    assert_eq!(hex(record.value), "012d6e5e198e24504ca3faae7a2159a03055d4f5de54d024b0d06be292e3f70b");
    assert_eq!(hex(record.leaf()), "029b3aa28658c5ae21c0f074cd9a21638d699eec2e5885b0469263927cc8318c");
}

#[test]
fn roles_are_domain_separated() {
    let (a, b) = (fr("05"), fr("07"));
    let digests = [poseidon::leaf(a, b), poseidon::node(a, b), poseidon::value_commitment(a, b)];
    assert_ne!(digests[0], digests[1]);
    assert_ne!(digests[1], digests[2]);
    assert_ne!(digests[0], digests[2]);
    // Absent and empty keys differ; a blinding changes the leaf.
    let absent = RecordFields::of_record(None, b"v", None);
    let empty = RecordFields::of_record(Some(b""), b"v", None);
    assert_ne!(absent.key, empty.key);
    let blinded = RecordFields::of_record(None, b"v", Some(&[9; 32]));
    assert_ne!(absent.leaf(), blinded.leaf());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The circuit's leaf and node hashes compute the native digests.
    #[test]
    fn gadgets_match_native_hashes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        let (a, b) = (Fr::from_le_bytes_mod_order(&a), Fr::from_le_bytes_mod_order(&b));
        let cs = ConstraintSystem::<Fr>::new_ref();
        let params = CRHParametersVar { parameters: poseidon::config().clone() };
        let av = FpVar::new_witness(cs.clone(), || Ok(a)).unwrap();
        let bv = FpVar::new_witness(cs.clone(), || Ok(b)).unwrap();
        let leaf = <LeafHashVar as CRHSchemeGadget<_, Fr>>::evaluate(&params, &[av.clone(), bv.clone()]).unwrap();
        let node = <NodeHashVar as TwoToOneCRHSchemeGadget<_, Fr>>::compress(&params, &av, &bv).unwrap();
        prop_assert_eq!(leaf.value().unwrap(), poseidon::leaf(a, b));
        prop_assert_eq!(node.value().unwrap(), poseidon::node(a, b));
        prop_assert!(cs.is_satisfied().unwrap());
    }
}

/// arkworks' permutation of `[tag, a, b]` (its sponge with the tag in the capacity element,
/// squeezed once), element 0: the reference our optimized permutation must equal.
fn permutation_reference(tag: u64, [a, b]: [Fr; 2]) -> Fr {
    let mut sponge = PoseidonSponge::new(poseidon::config());
    sponge.state[0] = Fr::from(tag);
    sponge.absorb(&vec![a, b]);
    let _ = sponge.squeeze_native_field_elements(1);
    sponge.state[0]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// With tag 0 our hash is circom's Poseidon(2), as light-poseidon (another implementation,
    /// on arkworks' field) computes it.
    #[test]
    fn tag_zero_is_circoms_poseidon_as_light_poseidon_computes_it(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        use light_poseidon::PoseidonHasher;
        let (a, b) = (Fr::from_le_bytes_mod_order(&a), Fr::from_le_bytes_mod_order(&b));
        let mut circom = light_poseidon::Poseidon::<Fr>::new_circom(2).unwrap();
        prop_assert_eq!(poseidon::hash_tagged(0, [a, b]), circom.hash(&[a, b]).unwrap());
    }

    /// The fast hash is arkworks' permutation.
    #[test]
    fn fast_hash_equals_arkworks_permutation(tag in 0u64..8, a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        let (a, b) = (Fr::from_le_bytes_mod_order(&a), Fr::from_le_bytes_mod_order(&b));
        prop_assert_eq!(poseidon::hash_tagged(tag, [a, b]), permutation_reference(tag, [a, b]));
    }
}

/// A hash in the circuit costs circomlib's Poseidon(2): 240 constraints (3 per S-box; the
/// constant tag's first S-box costs none).
#[test]
fn a_hash_costs_240_constraints() {
    for hash in [poseidon::TAG_LEAF, poseidon::TAG_NODE] {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let a = FpVar::new_witness(cs.clone(), || Ok(Fr::from(5u64))).unwrap();
        let b = FpVar::new_witness(cs.clone(), || Ok(Fr::from(7u64))).unwrap();
        let digest = hash_tagged_var(hash, [&a, &b]).unwrap();
        assert_eq!(cs.num_constraints(), 240);
        assert_eq!(digest.value().unwrap(), poseidon::hash_tagged(hash, [Fr::from(5u64), Fr::from(7u64)]));
        assert!(cs.is_satisfied().unwrap());
    }
}
