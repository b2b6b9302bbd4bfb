//! Replays every kept input (`fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`) through
//! its target's check on the stable toolchain: what the fuzzer once found stays fixed, and the
//! seeds stay valid inputs.

use std::path::Path;

use pyralog_fuzz_harness::TARGETS;

#[test]
fn every_kept_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut replayed = 0;
    for (name, check) in TARGETS {
        for folder in ["corpus", "regressions"] {
            let dir = root.join(folder).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| check(&bytes));
                assert!(outcome.is_ok(), "{} fails {name}", path.display());
                replayed += 1;
            }
        }
    }
    println!("replayed {replayed} kept inputs over {} targets", TARGETS.len());
    assert!(replayed >= TARGETS.len(), "every target has a seed");
}

/// Random bytes, and seeds with bytes flipped, never panic (a short, fixed-seed run of what
/// `make fuzz` does for minutes).
#[test]
fn random_and_mutated_bytes_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (name, check) in TARGETS {
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(root.join(name))
            .map(|entries| entries.map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect())
            .unwrap_or_default();
        for round in 0..2_000 {
            let mut bytes = match seeds.get(round % seeds.len().max(1)) {
                Some(seed) if round % 2 == 0 => seed.clone(),
                _ => (0..(next() % 200)).map(|_| next() as u8).collect(),
            };
            if !bytes.is_empty() {
                for _ in 0..(next() % 4) {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] ^= next() as u8;
                }
            }
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{name} panicked on {bytes:02x?}");
        }
    }
}

/// Writes the transaction seeds (`cargo test --manifest-path fuzz/harness/Cargo.toml -- --ignored`):
/// a transfer and a create-validator signed by a fixed key on the chain the target checks.
#[test]
#[ignore = "writes seeds into fuzz/corpus; run by hand"]
fn write_transaction_seeds() {
    use pyralog_chain::tx::{Action, SignedTx, Tx};
    use pyralog_crypto::Keypair;
    let key = Keypair::from_secret(&[7; 32]);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/chain_tx");
    let actions = [
        ("transfer", Action::Transfer { to: Keypair::from_secret(&[8; 32]).public(), amount: 5 }),
        (
            "create-validator",
            Action::CreateValidator {
                consensus_key: key.public(),
                self_bond: 1_000,
                commission_bps: 100,
                max_commission_bps: 2_000,
                description: "seed".into(),
            },
        ),
    ];
    for (name, action) in actions {
        let tx = Tx { chain_id: "fuzz-chain".into(), sender: key.public(), nonce: 0, fee: 1, action };
        std::fs::write(dir.join(name), SignedTx::sign(tx, &key).encode()).unwrap();
    }
}
