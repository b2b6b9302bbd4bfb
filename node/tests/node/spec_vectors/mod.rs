//! The verifier specification's test vectors (`docs/verifier-spec.md`, `docs/verifier-vectors.json`).
//!
//! Builds deterministic objects (keys from fixed seeds, fixed times) along the whole verification
//! path, computes every encoding, hash and signature the specification describes with the code,
//! and compares them with the committed vector file (`PYRALOG_WRITE_VECTORS=1` rewrites it). Then
//! it checks the vectors a second time from the specification's rules alone: BLAKE3 keyed with keys
//! derived from the context strings the document gives, postcard and the fixed encodings built byte
//! by byte, RFC 9162's own inclusion and consistency algorithms, a JMT proof checker written from the
//! document, and Ed25519 verification of the hex bytes.

mod build;
mod by_hand;
mod common;
mod contracts;
mod independent;
mod work;

use build::build;
use common::*;
use independent::check_independently;

#[test]
fn spec_vectors_match_the_code_and_the_document() {
    let vectors = build();
    let path = vectors_path();
    if std::env::var("PYRALOG_WRITE_VECTORS").as_deref() == Ok("1") {
        std::fs::write(&path, serde_json::to_string_pretty(&vectors).unwrap() + "\n").unwrap();
    } else {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (PYRALOG_WRITE_VECTORS=1 writes it)", path.display()));
        let committed: Value = serde_json::from_str(&text).expect("the vector file is JSON");
        let (have, want) = (committed.as_object().unwrap(), vectors.as_object().unwrap());
        assert_eq!(have.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "vector sections");
        for (section, value) in want {
            assert_eq!(
                &have[section], value,
                "vectors `{section}` differ from the code: a wire-format change? \
                 (PYRALOG_WRITE_VECTORS=1 rewrites docs/verifier-vectors.json)"
            );
        }
    }
    check_independently(&vectors);
    contracts::check_contracts(&vectors["contracts"]);
    work::check_pow(&vectors["pow"]);
    check_document(&vectors);
}

/// The document states what the vectors hold: its contexts, derived keys and regeneration command.
fn check_document(v: &Value) {
    let doc = std::fs::read_to_string(spec_path()).expect("docs/verifier-spec.md");
    assert!(!doc.contains("@@"), "placeholders left in the specification");
    for d in v["domains"].as_array().unwrap() {
        for field in ["context", "key"] {
            let text = d[field].as_str().unwrap();
            assert!(doc.contains(&format!("`{text}`")), "the specification lacks {field} {text}");
        }
    }
    for context in ["pyralog checkpoint signature v1\\0", "pyralog/consensus/vote/v1\\0"] {
        assert!(doc.contains(context), "the specification lacks {context}");
    }
    // The worked examples: every hex string of 8 bytes or more in the document is a piece of a
    // vector, so an example cannot go stale when the vectors change.
    let vectors_text = v.to_string();
    for run in doc.split(|c: char| !matches!(c, '0'..='9' | 'a'..='f')).filter(|run| run.len() >= 16) {
        assert!(vectors_text.contains(run), "the specification shows {run}, which no vector holds");
    }
    let shown = [
        &v["records"][3]["leaf_hash"],
        &v["checkpoints"]["anchored"]["id"],
        &v["checkpoints"]["with_zk_roots"]["id"],
        &v["validators"]["hash"],
        &v["block"]["block_id"],
        &v["state"]["root"],
        &v["state"]["proofs"][4]["key_hash"],
    ];
    for value in shown {
        assert!(doc.contains(value.as_str().unwrap()), "the specification's examples lack {value}");
    }
    for needle in [
        "docs/verifier-vectors.json",
        "PYRALOG_WRITE_VECTORS=1 cargo nextest run --locked --workspace -E 'test(/spec_vectors/)'",
        "JMT::LeafNode",
        "JMT::IntrnalNode",
        "SPARSE_MERKLE_PLACEHOLDER_HASH__",
        "validators\\0",
    ] {
        assert!(doc.contains(needle), "the specification lacks {needle}");
    }
}
