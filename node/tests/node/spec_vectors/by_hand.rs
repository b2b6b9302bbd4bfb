//! The specification's rules, written again from the document (no Pyralog encoder or hasher).

use super::common::*;

/// `H_d(parts...)`: BLAKE3 keyed with the key derived from the context string (§3.1).
pub(super) fn h(context: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(&blake3::derive_key(context, &[]));
    for part in parts {
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

pub(super) fn leaf_hash(data: &[u8]) -> [u8; 32] {
    h(MERKLE, &[&[0x00], data])
}

pub(super) fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    h(MERKLE, &[&[0x01], left, right])
}

/// RFC 9162 MTH over leaf hashes.
pub(super) fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => h(MERKLE, &[]),
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.2, as the RFC writes it.
pub(super) fn rfc9162_inclusion(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    path: &[[u8; 32]],
    root: [u8; 32],
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnn, mut sn, mut r) = (index, size - 1, leaf);
    for p in path {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            r = node_hash(p, &r);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == root
}

/// RFC 9162 §2.1.4.2, as the RFC writes it (for 0 < first < second).
pub(super) fn rfc9162_consistency(
    first: u64,
    second: u64,
    first_hash: [u8; 32],
    second_hash: [u8; 32],
    path: &[[u8; 32]],
) -> bool {
    let mut path = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_hash);
    }
    let (mut fnn, mut sn) = (first - 1, second - 1);
    while fnn & 1 == 1 {
        fnn >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if sn == 0 {
            return false;
        }
        if fnn & 1 == 1 || fnn == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnn & 1 == 0 {
                while fnn & 1 == 0 && fnn != 0 {
                    fnn >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnn >>= 1;
        sn >>= 1;
    }
    fr == first_hash && sr == second_hash && sn == 0
}

/// Postcard's varint (§3.3).
pub(super) fn varint(out: &mut Vec<u8>, mut x: u64) {
    loop {
        let low = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Postcard's length-prefixed bytes or string.
pub(super) fn pbytes(out: &mut Vec<u8>, bytes: &[u8]) {
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// §4.1, from the vector's fields.
pub(super) fn record_by_hand(r: &Value) -> Vec<u8> {
    let mut out = vec![1];
    out.extend_from_slice(&num(&r["epoch"]).to_be_bytes());
    out.extend_from_slice(&num(&r["timestamp_ms"]).to_be_bytes());
    out.extend_from_slice(&num(&r["scarab_id"]).to_be_bytes());
    out.push(u8::from(!r["key"].is_null()) | (u8::from(!r["producer"].is_null()) << 1));
    if !r["key"].is_null() {
        let key = unhex(&r["key"]);
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(&key);
    }
    if !r["producer"].is_null() {
        out.extend_from_slice(&num(&r["producer"]["id"]).to_be_bytes());
        out.extend_from_slice(&num(&r["producer"]["sequence"]).to_be_bytes());
    }
    let value = unhex(&r["value"]);
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(&value);
    let headers = r["headers"].as_array().unwrap();
    out.extend_from_slice(&(headers.len() as u16).to_be_bytes());
    for header in headers {
        let (name, value) = (header["name"].as_str().unwrap().as_bytes(), unhex(&header["value"]));
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(&value);
    }
    out
}

/// §6.1 and §6.4, from the vector's fields: (canonical encoding, postcard form).
pub(super) fn checkpoint_by_hand(c: &Value) -> (Vec<u8>, Vec<u8>) {
    let zk = c["zk_roots"].as_object().unwrap();
    let (cluster, log) = (c["cluster"].as_str().unwrap().as_bytes(), c["log"].as_str().unwrap().as_bytes());
    let trees = [("poseidon", 1u8, 0u64), ("rescue", 2, 1)];
    let mut canonical = vec![if zk.is_empty() { 1 } else { 2 }, cluster.len() as u8];
    canonical.extend_from_slice(cluster);
    canonical.push(log.len() as u8);
    canonical.extend_from_slice(log);
    canonical.extend_from_slice(&(num(&c["partition"]) as u32).to_be_bytes());
    for field in ["epoch", "size"] {
        canonical.extend_from_slice(&num(&c[field]).to_be_bytes());
    }
    canonical.extend_from_slice(&unhex(&c["root"]));
    canonical.extend_from_slice(&num(&c["time_ms"]).to_be_bytes());
    let mut post = Vec::new();
    pbytes(&mut post, cluster);
    pbytes(&mut post, log);
    for field in ["partition", "epoch", "size"] {
        varint(&mut post, num(&c[field]));
    }
    post.extend_from_slice(&unhex(&c["root"]));
    varint(&mut post, num(&c["time_ms"]));
    varint(&mut post, zk.len() as u64);
    if !zk.is_empty() {
        canonical.push(zk.len() as u8);
    }
    for (name, id, variant) in trees {
        if let Some(root) = zk.get(name) {
            canonical.push(id);
            canonical.extend_from_slice(&unhex(root));
            varint(&mut post, variant);
            post.extend_from_slice(&unhex(root));
        }
    }
    (canonical, post)
}

/// §8.1 and §8.2, from the vector's fields: (signing bytes, postcard form).
pub(super) fn vote_by_hand(v: &Value) -> (Vec<u8>, Vec<u8>) {
    let chain = v["chain_id"].as_str().unwrap().as_bytes();
    let (signing_kind, postcard_kind) = match v["kind"].as_str().unwrap() {
        "prevote" => (1, 0),
        "precommit" => (2, 1),
        other => panic!("kind {other}"),
    };
    let mut signing = VOTE_CONTEXT.to_vec();
    signing.extend_from_slice(&(chain.len() as u16).to_be_bytes());
    signing.extend_from_slice(chain);
    signing.extend_from_slice(&num(&v["height"]).to_be_bytes());
    signing.extend_from_slice(&(num(&v["round"]) as u32).to_be_bytes());
    signing.push(signing_kind);
    let mut post = Vec::new();
    pbytes(&mut post, chain);
    varint(&mut post, num(&v["height"]));
    varint(&mut post, num(&v["round"]));
    varint(&mut post, postcard_kind);
    match &v["block"] {
        Value::Null => {
            signing.push(0);
            post.push(0);
        }
        block => {
            for out in [&mut signing, &mut post] {
                out.push(1);
                out.extend_from_slice(&unhex(block));
            }
        }
    }
    (signing, post)
}

/// §7: a certificate's postcard form from its message's postcard form and its shares.
pub(super) fn certificate_by_hand(message: &[u8], shares: &Value) -> Vec<u8> {
    let shares = shares.as_array().unwrap();
    let mut out = message.to_vec();
    varint(&mut out, shares.len() as u64);
    for share in shares {
        out.extend_from_slice(&unhex(&share["signer"]));
        out.extend_from_slice(&unhex(&share["signature"]));
    }
    out
}

/// Ed25519 verification of hex bytes (§3.2).
pub(super) fn signature_verifies(signer: &Value, message: &[u8], signature: &Value) -> bool {
    let key = PublicKey::from_bytes(&arr::<32>(signer)).expect("a valid public key");
    key.verify(message, &Signature::from_bytes(&arr::<64>(signature))).is_ok()
}

/// §11.1, from the vector's fields.
pub(super) fn header_by_hand(f: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    pbytes(&mut out, f["chain_id"].as_str().unwrap().as_bytes());
    varint(&mut out, num(&f["height"]));
    varint(&mut out, num(&f["time_ms"]));
    out.extend_from_slice(&unhex(&f["parent"]));
    varint(&mut out, num(&f["tx_count"]));
    for field in ["tx_root", "state_root", "validators_hash", "next_validators_hash", "proposer"] {
        out.extend_from_slice(&unhex(&f[field]));
    }
    pbytes(&mut out, f["engine"].as_str().unwrap().as_bytes());
    out
}

/// A JMT sibling (§10.2).
pub(super) enum SmtNode {
    Null,
    Internal([u8; 32], [u8; 32]),
    Leaf([u8; 32], [u8; 32]),
}

pub(super) const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";

pub(super) fn smt_leaf(key_hash: &[u8; 32], value_hash: &[u8; 32]) -> [u8; 32] {
    h(CHAIN_STATE, &[b"JMT::LeafNode", key_hash, value_hash])
}

pub(super) fn smt_internal(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    h(CHAIN_STATE, &[b"JMT::IntrnalNode", left, right])
}

pub(super) fn take<const N: usize>(input: &mut &[u8]) -> [u8; N] {
    let (head, rest) = input.split_first_chunk::<N>().expect("truncated proof");
    *input = rest;
    *head
}

pub(super) fn take_varint(input: &mut &[u8]) -> u64 {
    let mut out = 0;
    for i in 0..10 {
        let [byte] = take::<1>(input);
        out |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return out;
        }
    }
    panic!("varint too long")
}

/// Parses §10.2's postcard form.
#[allow(clippy::type_complexity)]
pub(super) fn parse_state_proof(mut input: &[u8]) -> (Option<([u8; 32], [u8; 32])>, Vec<SmtNode>) {
    let leaf = match take::<1>(&mut input) {
        [0] => None,
        [1] => Some((take(&mut input), take(&mut input))),
        other => panic!("leaf tag {other:?}"),
    };
    let count = take_varint(&mut input);
    let siblings = (0..count)
        .map(|_| match take_varint(&mut input) {
            0 => SmtNode::Null,
            1 => SmtNode::Internal(take(&mut input), take(&mut input)),
            2 => SmtNode::Leaf(take(&mut input), take(&mut input)),
            other => panic!("node tag {other}"),
        })
        .collect();
    assert!(input.is_empty(), "bytes after the proof");
    (leaf, siblings)
}

/// §10.3, as the document writes it.
pub(super) fn state_proof_verifies(root: &[u8; 32], key: &[u8], value: Option<&[u8]>, proof: &[u8]) -> bool {
    let (leaf, siblings) = parse_state_proof(proof);
    let kh = h(CHAIN_STATE, &[key]);
    let n = siblings.len();
    let bit = |hash: &[u8; 32], i: usize| (hash[i / 8] >> (7 - i % 8)) & 1 == 1;
    if n > 256 {
        return false;
    }
    match (value, leaf) {
        (Some(v), Some((k, vh))) if k != kh || vh != h(CHAIN_STATE, &[v]) => return false,
        (Some(_), None) => return false,
        (None, Some((k, _)))
            if k == kh || (0..256).take_while(|&i| bit(&k, i) == bit(&kh, i)).count() < n =>
        {
            return false;
        }
        _ => {}
    }
    let mut current = leaf.map_or(PLACEHOLDER, |(k, vh)| smt_leaf(&k, &vh));
    for (i, sibling) in siblings.iter().enumerate() {
        let s = match sibling {
            SmtNode::Null => PLACEHOLDER,
            SmtNode::Internal(l, r) => smt_internal(l, r),
            SmtNode::Leaf(k, vh) => smt_leaf(k, vh),
        };
        current = if bit(&kh, n - 1 - i) { smt_internal(&s, &current) } else { smt_internal(&current, &s) };
    }
    current == *root
}
