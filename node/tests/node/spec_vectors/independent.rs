//! The vectors re-derived from the specification's rules alone.

use super::by_hand::*;
use super::common::*;

/// Re-derives the vectors from the specification's rules.
pub(super) fn check_independently(v: &Value) {
    // §3.1: the domain keys are BLAKE3 derive_key of the context strings, empty key material.
    for d in v["domains"].as_array().unwrap() {
        assert_eq!(unhex(&d["key"]), blake3::derive_key(d["context"].as_str().unwrap(), &[]), "{d}");
    }
    let contexts = v["signing_contexts"].as_array().unwrap();
    assert_eq!(unhex(&contexts[0]["bytes"]), CHECKPOINT_CONTEXT);
    assert_eq!(unhex(&contexts[1]["bytes"]), VOTE_CONTEXT);
    for k in v["keys"].as_array().unwrap() {
        let parsed: PublicKey = k["text"].as_str().unwrap().parse().unwrap();
        assert_eq!(parsed.as_bytes().as_slice(), unhex(&k["public"]), "Bech32m text of {k}");
    }

    // §3.3: varint examples; §3.4: thresholds in integers.
    let examples: Vec<(u64, &str)> =
        vec![(0, "00"), (127, "7f"), (128, "8001"), (300, "ac02"), (u64::MAX, "ffffffffffffffffff01")];
    for (i, (x, bytes)) in examples.iter().enumerate() {
        let mut out = Vec::new();
        varint(&mut out, *x);
        assert_eq!((hx(&out).as_str(), v["postcard"][i]["bytes"].as_str().unwrap()), (*bytes, *bytes));
    }
    assert_eq!(v["postcard"][9]["bytes"].as_str().unwrap(), "ab".repeat(32), "a digest has no length prefix");
    for t in v["thresholds"].as_array().unwrap() {
        let (signed, total) = (u128::from(num(&t["signed"])), u128::from(num(&t["total"])));
        let met = match t["rule"].as_str().unwrap() {
            "> 2/3" => signed * 3 > total * 2,
            "> 1/2" => signed * 2 > total,
            "> 1/3" => signed * 3 > total,
            other => panic!("rule {other}"),
        };
        assert_eq!(t["met"].as_bool().unwrap(), met, "{t}");
    }

    // §4.1 and §5.1: records, leaves, roots.
    let records = v["records"].as_array().unwrap();
    let mut leaves = Vec::new();
    for r in records {
        let encoded = record_by_hand(r);
        assert_eq!(hx(&encoded), r["encoded"].as_str().unwrap(), "record {}", r["offset"]);
        assert_eq!(hx(&leaf_hash(&encoded)), r["leaf_hash"].as_str().unwrap());
        leaves.push(leaf_hash(&encoded));
    }
    let m = &v["merkle"];
    assert_eq!(unhex(&m["empty_root"]), mth(&[]));
    for root in m["roots"].as_array().unwrap() {
        assert_eq!(unhex(&root["root"]), mth(&leaves[..num(&root["size"]) as usize]));
    }

    // §5.2 and §5.3 with RFC 9162's own algorithms.
    let digests = |list: &Value| list.as_array().unwrap().iter().map(arr::<32>).collect::<Vec<_>>();
    let inc = &m["inclusion"];
    let path = digests(&inc["path"]);
    let (index, size) = (num(&inc["index"]), num(&inc["size"]));
    assert!(rfc9162_inclusion(index, size, arr(&inc["leaf_hash"]), &path, arr(&inc["root"])));
    assert!(!rfc9162_inclusion(index, size, leaves[2], &path, arr(&inc["root"])), "another leaf");
    assert!(!rfc9162_inclusion(index, size, arr(&inc["leaf_hash"]), &path[..2], arr(&inc["root"])), "short");
    for c in m["consistency"].as_array().unwrap() {
        let (old, new) = (num(&c["old_size"]), num(&c["new_size"]));
        let (old_root, new_root, path) = (arr(&c["old_root"]), arr(&c["new_root"]), digests(&c["path"]));
        assert!(rfc9162_consistency(old, new, old_root, new_root, &path), "{old} -> {new}");
        assert!(!rfc9162_consistency(old, new, new_root, new_root, &path), "a forged old root");
        assert_eq!(path.len(), if old == 3 { 4 } else { 1 }, "RFC 9162 section 2.1.5's proof lengths");
    }

    // §6: checkpoints: encodings, ids, signing bytes.
    for (name, c) in v["checkpoints"].as_object().unwrap() {
        let (canonical, post) = checkpoint_by_hand(c);
        assert_eq!(hx(&canonical), c["encoded"].as_str().unwrap(), "checkpoint {name}");
        assert_eq!(hx(&post), c["postcard"].as_str().unwrap(), "checkpoint {name} postcard");
        assert_eq!(unhex(&c["id"]), h(CHECKPOINT, &[&canonical]));
        assert_eq!(unhex(&c["signing_bytes"]), [CHECKPOINT_CONTEXT, canonical.as_slice()].concat());
    }
    let anchored = &v["checkpoints"]["anchored"];
    assert_eq!(unhex(&anchored["root"]), mth(&leaves));

    // §7: the checkpoint certificate: distinct members, valid signatures, a majority.
    let cert = &v["checkpoint_certificate"];
    let members: Vec<String> =
        cert["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect();
    let signing = unhex(&anchored["signing_bytes"]);
    let mut signers = std::collections::BTreeSet::new();
    for share in cert["signatures"].as_array().unwrap() {
        assert!(members.contains(&share["signer"].as_str().unwrap().to_owned()));
        assert!(signers.insert(share["signer"].as_str().unwrap()));
        assert!(signature_verifies(&share["signer"], &signing, &share["signature"]));
        assert!(!signature_verifies(&share["signer"], &unhex(&anchored["encoded"]), &share["signature"]));
    }
    assert!(signers.len() * 2 > members.len(), "a majority of the members");
    let (_, checkpoint_postcard) = checkpoint_by_hand(anchored);
    assert_eq!(
        hx(&certificate_by_hand(&checkpoint_postcard, &cert["signatures"])),
        cert["postcard"].as_str().unwrap()
    );

    // §9: the validator set: canonical order, postcard, hash.
    let vs = &v["validators"];
    let set = vs["set"].as_array().unwrap();
    let order: Vec<(u64, Vec<u8>)> = set.iter().map(|x| (num(&x["power"]), unhex(&x["public"]))).collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    assert_eq!(order, sorted, "canonical order: power down, then key bytes up");
    let mut validators_postcard = Vec::new();
    varint(&mut validators_postcard, set.len() as u64);
    for (power, key) in &order {
        validators_postcard.extend_from_slice(key);
        varint(&mut validators_postcard, *power);
    }
    assert_eq!(hx(&validators_postcard), vs["postcard"].as_str().unwrap());
    let vhash = h(CHAIN_STATE, &[b"validators\0", &validators_postcard]);
    assert_eq!(hx(&vhash), vs["hash"].as_str().unwrap());
    let total: u64 = order.iter().map(|(p, _)| p).sum();
    assert_eq!(total, num(&vs["total_power"]));

    // §11: the header, its transactions root and its block id.
    let block = &v["block"];
    let fields = &block["header"];
    let header_bytes = header_by_hand(fields);
    assert_eq!(hx(&header_bytes), block["encoded"].as_str().unwrap());
    let tx_leaves: Vec<[u8; 32]> =
        block["transactions"].as_array().unwrap().iter().map(|t| leaf_hash(&unhex(t))).collect();
    assert_eq!(unhex(&fields["tx_root"]), mth(&tx_leaves));
    assert_eq!(num(&fields["tx_count"]), tx_leaves.len() as u64);
    let count = (num(&fields["tx_count"]) + 1).to_be_bytes();
    let block_id = h(CONSENSUS_VALUE, &[&count, &leaf_hash(&header_bytes), &unhex(&fields["tx_root"])]);
    assert_eq!(hx(&block_id), block["block_id"].as_str().unwrap());
    assert_eq!(unhex(&fields["validators_hash"]), vhash);
    assert_eq!(unhex(&fields["state_root"]), unhex(&v["state"]["root"]));

    // §8: votes, the commit certificate (more than 2/3 of the power), the finality proof.
    for name in ["vote", "nil_prevote"] {
        let (signing, post) = vote_by_hand(&v[name]);
        assert_eq!(hx(&signing), v[name]["signing_bytes"].as_str().unwrap(), "{name}");
        assert_eq!(hx(&post), v[name]["postcard"].as_str().unwrap(), "{name}");
    }
    let vote = &v["vote"];
    assert_eq!(vote["block"], block["block_id"]);
    assert_eq!(
        (num(&vote["height"]), vote["chain_id"].clone()),
        (num(&fields["height"]), fields["chain_id"].clone())
    );
    let commit = &v["commit_certificate"];
    let (vote_signing, vote_postcard) = vote_by_hand(vote);
    let mut power = 0u64;
    let mut seen = std::collections::BTreeSet::new();
    for share in commit["signatures"].as_array().unwrap() {
        let signer = unhex(&share["signer"]);
        assert!(seen.insert(signer.clone()), "distinct signers");
        power += order.iter().find(|(_, k)| *k == signer).expect("a validator").0;
        assert!(signature_verifies(&share["signer"], &vote_signing, &share["signature"]));
    }
    assert_eq!(power, num(&commit["signed_power"]));
    assert!(u128::from(power) * 3 > u128::from(total) * 2, "more than 2/3 of the power");
    let commit_postcard = certificate_by_hand(&vote_postcard, &commit["signatures"]);
    assert_eq!(hx(&commit_postcard), commit["postcard"].as_str().unwrap());
    let finality_postcard = [[0u8, 0].as_slice(), commit_postcard.as_slice()].concat();
    assert_eq!(hx(&finality_postcard), v["finality_proof"]["postcard"].as_str().unwrap());
    let pbft_postcard = [[0u8, 1].as_slice(), commit_postcard.as_slice()].concat();
    assert_eq!(hx(&pbft_postcard), v["finality_proof_pbft"]["postcard"].as_str().unwrap());
    assert_eq!(v["finality_proof_pbft"]["engine"], "pbft");

    // §11.3: the consensus info: Some(finality proof), then one DuplicateVote whose two votes
    // the accused signed.
    let info = &v["consensus_info"];
    let (first_signing, first_postcard) = vote_by_hand(&info["first"]);
    let (second_signing, second_postcard) = vote_by_hand(&v["nil_prevote"]);
    assert!(signature_verifies(&info["accused"], &first_signing, &info["first_signature"]));
    assert!(signature_verifies(&info["accused"], &second_signing, &info["second_signature"]));
    let mut info_postcard = vec![1];
    info_postcard.extend_from_slice(&finality_postcard);
    info_postcard.extend_from_slice(&[1, 0]); // one piece; variant 0, DuplicateVote
    for part in [unhex(&info["accused"]), first_postcard, unhex(&info["first_signature"])] {
        info_postcard.extend_from_slice(&part);
    }
    for part in [second_postcard, unhex(&info["second_signature"])] {
        info_postcard.extend_from_slice(&part);
    }
    assert_eq!(hx(&info_postcard), info["postcard"].as_str().unwrap());

    // §10: state proofs, keys and values.
    let root: [u8; 32] = arr(&v["state"]["root"]);
    let mut values = BTreeMap::new();
    for p in v["state"]["proofs"].as_array().unwrap() {
        let (key, proof) = (unhex(&p["key"]), unhex(&p["proof"]));
        let value = (!p["value"].is_null()).then(|| unhex(&p["value"]));
        assert_eq!(unhex(&p["key_hash"]), h(CHAIN_STATE, &[&key]));
        if let Some(value) = &value {
            assert_eq!(unhex(&p["value_hash"]), h(CHAIN_STATE, &[value]));
        }
        assert!(state_proof_verifies(&root, &key, value.as_deref(), &proof), "proof of {}", p["name"]);
        // Any other answer is refused: another value, or the opposite presence.
        assert!(!state_proof_verifies(&root, &key, Some(b"forged"), &proof), "forged {}", p["name"]);
        if value.is_some() {
            assert!(!state_proof_verifies(&root, &key, None, &proof), "absence of {}", p["name"]);
        }
        values.insert(p["name"].as_str().unwrap().to_owned(), (key, value, proof));
    }
    let text_key = |name: &str| String::from_utf8(values[name].0.clone()).unwrap();
    assert_eq!(text_key("cluster"), "cluster/alpha");
    assert_eq!(text_key("anchor"), "anchor/alpha/orders/0");
    assert_eq!(text_key("validators"), "meta/validators");
    assert_eq!(text_key("absent"), "cluster/beta");
    assert_eq!(values["account"].0, [b"account/".as_slice(), unhex(&set[3]["public"]).as_slice()].concat());
    assert_eq!(values["account"].1.as_deref(), Some([0xe8, 0x07, 0x03].as_slice()), "balance 1000, nonce 3");
    assert_eq!(values["validators"].1.as_deref(), Some(validators_postcard.as_slice()));
    let mut registration = unhex(&v["keys"][4]["public"]);
    varint(&mut registration, 3);
    for member in &members {
        registration.extend_from_slice(&hex::decode(member).unwrap());
    }
    varint(&mut registration, 1);
    pbytes(&mut registration, b"/ip4/127.0.0.1/tcp/40333");
    assert_eq!(values["cluster"].1.as_deref(), Some(registration.as_slice()));
    let mut anchor_value = unhex(&cert["postcard"]);
    varint(&mut anchor_value, 41);
    assert_eq!(values["anchor"].1.as_deref(), Some(anchor_value.as_slice()));

    // §12.6: the evidence container, assembled from the parts.
    let f = &v["finality"];
    let mut evidence = header_bytes.clone();
    evidence.extend_from_slice(&finality_postcard);
    for name in ["cluster", "anchor"] {
        let (_, value, proof) = &values[name];
        evidence.push(1);
        pbytes(&mut evidence, value.as_ref().unwrap());
        evidence.extend_from_slice(proof);
    }
    pbytes(&mut evidence, &unhex(&records[3]["encoded"]));
    varint(&mut evidence, index);
    varint(&mut evidence, size);
    varint(&mut evidence, path.len() as u64);
    path.iter().for_each(|d| evidence.extend_from_slice(d));
    assert_eq!(hx(&evidence), f["evidence"].as_str().unwrap());
    assert_eq!(f["trusted_anchor"], v["checkpoints"]["trusted"]["encoded"]);
    assert_eq!(f["trusted_head"]["block_id"], fields["parent"]);
    assert_eq!(f["consistency"]["path"], m["consistency"][0]["path"]);

    // §3.3: postcard's decoder is not canonical, so verifiers re-encode.
    assert_eq!(postcard::from_bytes::<u64>(&[0x80, 0x00]).unwrap(), 0, "an overlong varint decodes");
    assert_eq!(postcard::from_bytes::<u8>(&[1, 2]).unwrap(), 1, "trailing bytes are ignored");
    assert!(
        Header::decode(&[header_bytes.as_slice(), [0u8].as_slice()].concat()).is_err(),
        "headers are canonical"
    );
}
