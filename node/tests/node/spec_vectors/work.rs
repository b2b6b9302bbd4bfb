//! §8.7: Proof-of-Work — the seal encoding and its hash, compact targets, work, ASERT's target
//! after a parent, and a work finality proof of a three-block chain with k = 2.

use pyralog_consensus::finality::Trust;
use pyralog_consensus::pow::{PowRules, Seal, target_from_bits, work};
use pyralog_consensus::testkit::{easy_pow_rules, mine_chain};

use super::by_hand::*;
use super::common::*;

fn rules() -> PowRules {
    easy_pow_rules(BASE_MS, 2)
}

fn seal_json(seal: &Seal) -> Value {
    json!({
        "parent": hx(&seal.parent.0), "height": seal.height, "block": hx(&seal.block.0),
        "time_ms": seal.time_ms, "bits": seal.bits, "nonce": seal.nonce,
        "encoding": hx(&seal.encode()), "hash": hx(&seal.hash().0),
    })
}

/// The `pow` section, computed with the code.
pub(super) fn pow_vectors() -> Value {
    let rules = rules();
    let blocks = mine_chain(&rules, None, 3, BASE_MS + 1000, "spec");
    let seals: Vec<Seal> = blocks.iter().map(|b| b.seal).collect();
    let proof = FinalityProof::Work { engine: Engine::Pow, seals: seals.clone() };
    let trust = Trust::Work { rules: &rules, parent: None };
    let proven = proof.verify(Engine::Pow, CHAIN, 1, &seals[0].block, trust).unwrap();
    let target = target_from_bits(rules.initial_bits).unwrap();
    // ASERT after a parent at height 10, 4 s behind schedule.
    let late = Seal { height: 10, time_ms: BASE_MS + 14_000, ..seals[0] };
    json!({
        "rules": {
            "genesis_time_ms": rules.genesis_time_ms, "initial_bits": rules.initial_bits,
            "limit_bits": rules.limit_bits, "ideal_block_time_s": rules.ideal_block_time_s,
            "half_life_s": rules.half_life_s, "confirmations": rules.confirmations,
        },
        "initial_target": hx(&target.to_big_endian()),
        "initial_work": work(target).low_u64(),
        "asert_after": { "parent_height": 10, "parent_time_ms": late.time_ms, "bits": rules.next_bits(Some(&late)) },
        "seals": seals.iter().map(seal_json).collect::<Vec<_>>(),
        "finality_proof": hx(&postcard::to_allocvec(&proof).unwrap()),
        "proven_work": proven,
    })
}

/// The section re-derived from the specification's rules.
pub(super) fn check_pow(p: &Value) {
    let seals = p["seals"].as_array().unwrap();
    let initial_bits = num(&p["rules"]["initial_bits"]) as u32;
    // Compact target: mantissa * 256^(exponent - 3).
    let (exponent, mantissa) = (initial_bits >> 24, u128::from(initial_bits & 0x007f_ffff));
    let mut target = [0u8; 32];
    let at = 32 - exponent as usize;
    target[at..at + 3].copy_from_slice(&mantissa.to_be_bytes()[13..16]);
    assert_eq!(hx(&target), p["initial_target"].as_str().unwrap());
    let mut parent = [0u8; 32];
    let mut proof = vec![0x01, 0x02, seals.len() as u8]; // FinalityProof::Work, Engine::Pow, 3 seals
    for (i, s) in seals.iter().enumerate() {
        // parent[32] || u64be(height) || block[32] || u64be(time_ms) || u32be(bits) || u64be(nonce)
        let mut encoding = parent.to_vec();
        encoding.extend_from_slice(&num(&s["height"]).to_be_bytes());
        encoding.extend_from_slice(&unhex(&s["block"]));
        encoding.extend_from_slice(&num(&s["time_ms"]).to_be_bytes());
        encoding.extend_from_slice(&(num(&s["bits"]) as u32).to_be_bytes());
        encoding.extend_from_slice(&num(&s["nonce"]).to_be_bytes());
        assert_eq!(hx(&encoding), s["encoding"].as_str().unwrap());
        let hash = h(POW_SEAL, &[&encoding]);
        assert_eq!(hx(&hash), s["hash"].as_str().unwrap());
        assert_eq!(num(&s["height"]), i as u64 + 1);
        // On schedule (one block a second from genesis), each target is the initial one, and
        // the hash, read big-endian, is at most it.
        assert_eq!(num(&s["bits"]) as u32, initial_bits);
        assert!(hash <= target, "seal {i} above its target");
        // In the proof each seal is postcard: the digests raw, the integers as varints.
        proof.extend_from_slice(&parent);
        varint(&mut proof, num(&s["height"]));
        proof.extend_from_slice(&unhex(&s["block"]));
        varint(&mut proof, num(&s["time_ms"]));
        varint(&mut proof, num(&s["bits"]));
        varint(&mut proof, num(&s["nonce"]));
        parent = hash;
    }
    assert_eq!(hx(&proof), p["finality_proof"].as_str().unwrap());
    // Work per seal: 2^256 / (target + 1) = 16 for a target of 2^252 - 2^236 or so: floor.
    assert_eq!(num(&p["initial_work"]), 16);
    assert_eq!(num(&p["proven_work"]), 3 * 16);
}
