//! §10.6: chain contracts — the code hash, the contract id, the record and a storage value
//! proven under a state root (their own small state, so the finality path's vectors stay).

use pyralog_chain::values::{
    ContractRecord, code_hash, code_key, contract_id, contract_key, contract_storage_key,
};

use super::build::key_json;
use super::by_hand::*;
use super::common::*;

/// The smallest WASM module: the magic and version 1.
const WASM: &[u8] = b"\0asm\x01\0\0\0";
/// The creator's key seed and the nonce of its instantiating transaction.
const CREATOR_SEED: u8 = 0x31;
const NONCE: u64 = 7;

/// The `contracts` section, computed with the code.
pub(super) fn contract_vectors() -> Value {
    let creator = Keypair::from_secret(&[CREATOR_SEED; 32]);
    let code = code_hash(WASM);
    let id = contract_id(&creator.public(), NONCE);
    let record = ContractRecord { code, creator: creator.public(), created_at: 12, balance: 500 };
    let stored = b"tally value".to_vec();
    let entries = [
        ("record", contract_key(&id), Some(postcard::to_allocvec(&record).unwrap())),
        ("storage", contract_storage_key(&id, b"tally/\x01"), Some(postcard::to_allocvec(&stored).unwrap())),
    ];
    let dir = tempfile::tempdir().unwrap();
    let state = StateStore::open(dir.path()).unwrap();
    let root = state.commit(0, entries.iter().map(|(_, k, v)| (k.clone(), v.clone()))).unwrap();
    let absent = ("absent", contract_storage_key(&id, b"tally/\x02"), None);
    let proofs: Vec<Value> = entries
        .iter()
        .chain([&absent])
        .map(|(name, key, _)| {
            let (value, proof) = state.get_with_proof(key, 0).unwrap();
            verify_state_proof(&root, key, value.as_deref(), &proof).unwrap();
            json!({
                "name": name, "key": hx(key), "value": value.as_deref().map(hx),
                "proof": hx(&postcard::to_allocvec(&proof).unwrap()),
            })
        })
        .collect();
    json!({
        "wasm": hx(WASM),
        "code_hash": hx(&code.0),
        "code_key": hx(&code_key(&code)),
        "creator": key_json("creator", CREATOR_SEED),
        "nonce": NONCE,
        "contract_id": hx(&id.0),
        "record": { "code": hx(&code.0), "created_at": 12, "balance": 500 },
        "storage": { "key": hx(b"tally/\x01"), "value": hx(&stored) },
        "root": hx(&root),
        "proofs": proofs,
    })
}

/// The section re-derived from the specification's rules.
pub(super) fn check_contracts(c: &Value) {
    let wasm = unhex(&c["wasm"]);
    let code = h(CONTRACT_CODE, &[&wasm]);
    assert_eq!(hx(&code), c["code_hash"].as_str().unwrap());
    assert_eq!(unhex(&c["code_key"]), [b"code/".as_slice(), &code].concat());
    let creator = unhex(&c["creator"]["public"]);
    let id = h(CONTRACT_ID, &[&creator, &num(&c["nonce"]).to_be_bytes()]);
    assert_eq!(hx(&id), c["contract_id"].as_str().unwrap());
    // ContractRecord = code[32] || creator[32] || varint(created_at) || varint(balance).
    let mut record = code.to_vec();
    record.extend_from_slice(&creator);
    varint(&mut record, num(&c["record"]["created_at"]));
    varint(&mut record, num(&c["record"]["balance"]));
    // A storage value is a postcard byte string: varint(len) || bytes.
    let mut stored = Vec::new();
    pbytes(&mut stored, &unhex(&c["storage"]["value"]));
    let expected = [
        ([b"contract/".as_slice(), &id].concat(), Some(record)),
        ([b"cstore/".as_slice(), &id, &unhex(&c["storage"]["key"])].concat(), Some(stored)),
        ([b"cstore/".as_slice(), &id, b"tally/\x02"].concat(), None),
    ];
    let root: [u8; 32] = arr(&c["root"]);
    for (proof, (key, value)) in c["proofs"].as_array().unwrap().iter().zip(expected) {
        assert_eq!(unhex(&proof["key"]), key, "{}", proof["name"]);
        let served = (!proof["value"].is_null()).then(|| unhex(&proof["value"]));
        assert_eq!(served, value, "{}", proof["name"]);
        assert!(
            state_proof_verifies(&root, &key, value.as_deref(), &unhex(&proof["proof"])),
            "{}",
            proof["name"]
        );
        assert!(
            !state_proof_verifies(&root, &key, Some(b"forged"), &unhex(&proof["proof"])),
            "{}",
            proof["name"]
        );
    }
}
