//! The chain light client (`pyralog light sync` and `verify-record --finality`) against a
//! malicious server: a JSON-RPC proxy in front of a real 3-validator testnet alters answers one
//! way at a time. Where a lie needs signatures (a foreign validator set, a contradicting anchor
//! signed by the real validators, as a fork by more than 2/3 would), the test signs with fresh keys or
//! with the testnet's own node keys. Every lie is rejected with its reason and leaves the light
//! client's state file as it was.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use pyralog_chain::block::{Header, validators_hash};
use pyralog_chain::state::StateStore;
use pyralog_chain::values::{Anchor, anchor_key, cluster_key};
use pyralog_consensus::{Engine, FinalityProof, Validator, Vote, VoteKind};
use pyralog_crypto::keys::load_key_file;
use pyralog_crypto::merkle::{Blake3Merkle, MemoryNodeStore, MerkleTree};
use pyralog_crypto::quorum::SignatureShare;
use pyralog_crypto::{Checkpoint, Digest, Keypair, QuorumCertificate};
use pyralog_light::chain::{FinalityEvidence, ProvenValue};
use serde_json::{Value, json};

use crate::chain_testnet::{sync, sync_with, verify_final};
use crate::support::{ProxyHook, call, eventually, hex, proxy, start, unhex};

/// How the proxy lies.
#[derive(Clone)]
enum Lie {
    /// Forwards faithfully.
    None,
    /// Every commit certificate keeps one signature of three (< 2/3).
    CommitBelowTwoThirds,
    /// Every commit keeps one real signature and gains two of keys outside the validator set.
    NonValidatorSignatures,
    /// The head is re-signed by another validator set, which the real one never committed to.
    ForeignValidatorSet,
    /// The anchored checkpoint's state value altered (its state proof no longer matches).
    AnchorValue,
    /// Another partition's anchor (a real value and proof, for another key).
    OtherAnchor(Value),
    /// A checkpoint of the same size with another root, certified by the cluster's keys, in a
    /// state root signed by the real validators: what a fork by more than 2/3 of them would serve.
    ContradictingAnchor,
}

fn attackers() -> Vec<Keypair> {
    (0..3).map(|_| Keypair::generate()).collect()
}

/// The proxy's state: the lie, and the keys lies are signed with.
struct Liar {
    lie: Mutex<Lie>,
    validators: Vec<Keypair>,
    cluster: Vec<Keypair>,
    outsiders: Vec<Keypair>,
    /// Forged headers by height (a commit is forged for the header served before it).
    forged: Mutex<BTreeMap<u64, Header>>,
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value) -> T {
    postcard::from_bytes(&unhex(value)).unwrap()
}

fn encode<T: serde::Serialize>(value: &T) -> Value {
    json!(hex(&postcard::to_allocvec(value).unwrap()))
}

fn precommit(header: &Header, keys: &[Keypair]) -> FinalityProof {
    let vote = Vote {
        chain_id: header.chain_id.clone(),
        height: header.height,
        round: 0,
        kind: VoteKind::Precommit,
        block: Some(header.block_id()),
    };
    let signatures = keys.iter().map(|k| SignatureShare::sign(k, &vote)).collect();
    FinalityProof::quorum(Engine::Tendermint, QuorumCertificate { message: vote, signatures })
}

impl Liar {
    fn tamper_commit(&self, lie: &Lie, proof: &mut FinalityProof) {
        let mut commit = proof.commit_certificate().expect("a quorum engine's proof").clone();
        match lie {
            Lie::CommitBelowTwoThirds => commit.signatures.truncate(1),
            Lie::NonValidatorSignatures => {
                commit.signatures.truncate(1);
                let vote = commit.message.clone();
                commit
                    .signatures
                    .extend(self.outsiders.iter().take(2).map(|k| SignatureShare::sign(k, &vote)));
            }
            _ => {}
        }
        *proof = FinalityProof::quorum(proof.engine(), commit);
    }

    /// The header at `real`'s height re-signed by the attackers' set.
    fn foreign(&self, real: &Header) -> (Header, FinalityProof) {
        let set: Vec<Validator> =
            self.outsiders.iter().map(|k| Validator { key: k.public(), power: 1 }).collect();
        let forged = self
            .forged
            .lock()
            .unwrap()
            .entry(real.height)
            .or_insert_with(|| {
                let mut header = real.clone();
                header.validators_hash = validators_hash(&set);
                header.next_validators_hash = header.validators_hash;
                header
            })
            .clone();
        let commit = precommit(&forged, &self.outsiders);
        (forged, commit)
    }

    fn tamper_evidence(&self, lie: &Lie, evidence: &mut FinalityEvidence) {
        match lie {
            Lie::CommitBelowTwoThirds | Lie::NonValidatorSignatures => {
                self.tamper_commit(lie, &mut evidence.finality)
            }
            Lie::AnchorValue => {
                let value = evidence.anchor.value.as_mut().unwrap();
                let last = value.len() - 1;
                value[last] ^= 1;
            }
            Lie::OtherAnchor(other) => {
                let other: FinalityEvidence = decode(&other["finality"]["evidence"]);
                evidence.anchor = other.anchor;
            }
            Lie::ContradictingAnchor => self.contradict(evidence),
            _ => {}
        }
    }

    /// Replaces the anchor with one of the same size and another root, properly certified and
    /// committed by the real keys.
    fn contradict(&self, evidence: &mut FinalityEvidence) {
        let anchor: Anchor = postcard::from_bytes(evidence.anchor.value.as_ref().unwrap()).unwrap();
        let real = anchor.certificate.message.clone();
        let offset = evidence.inclusion.index;
        let mut tree = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
        for i in 0..real.size {
            let leaf = if i == offset { evidence.record.clone() } else { format!("forged {i}").into_bytes() };
            tree.append(&leaf).unwrap();
        }
        let checkpoint = Checkpoint { root: tree.root(), ..real.clone() };
        let signatures = self.cluster.iter().map(|k| SignatureShare::sign(k, &checkpoint)).collect();
        let forged = Anchor {
            certificate: QuorumCertificate { message: checkpoint, signatures },
            height: anchor.height,
        };
        let dir = tempfile::tempdir().unwrap();
        let state = StateStore::open(dir.path()).unwrap();
        let cluster = cluster_key(&real.cluster);
        let anchored = anchor_key(&real.cluster, &real.log, real.partition);
        let writes = vec![
            (cluster.clone(), evidence.cluster.value.clone()),
            (anchored.clone(), Some(postcard::to_allocvec(&forged).unwrap())),
        ];
        let root = state.commit(0, writes).unwrap();
        let prove = |key: &[u8]| {
            let (value, proof) = state.get_with_proof(key, 0).unwrap();
            ProvenValue { value, proof }
        };
        evidence.cluster = prove(&cluster);
        evidence.anchor = prove(&anchored);
        evidence.inclusion = tree.inclusion_proof(offset, real.size).unwrap();
        evidence.header.state_root = Digest(root);
        evidence.finality = precommit(&evidence.header, &self.validators);
    }
}

impl ProxyHook for Liar {
    fn answer(&self, method: &str, answer: &mut Value) {
        let lie = self.lie.lock().unwrap().clone();
        match (method, &lie) {
            ("chain_getFinality", Lie::CommitBelowTwoThirds | Lie::NonValidatorSignatures) => {
                let mut proof: FinalityProof = decode(&answer["encoded"]);
                self.tamper_commit(&lie, &mut proof);
                answer["encoded"] = encode(&proof);
            }
            ("chain_getFinalizedHead", Lie::ForeignValidatorSet) => {
                let real = Header::decode(&unhex(&answer["header"]["encoded"])).unwrap();
                let (header, proof) = self.foreign(&real);
                answer["header"]["encoded"] = json!(hex(&header.encode()));
                answer["finality"]["encoded"] = encode(&proof);
            }
            ("chain_getHeader" | "chain_getFinality" | "chain_getValidators", Lie::ForeignValidatorSet) => {
                let height = answer["height"].as_u64().unwrap();
                let Some(forged) = self.forged.lock().unwrap().get(&height).cloned() else { return };
                let (header, proof) = self.foreign(&forged);
                match method {
                    "chain_getHeader" => answer["encoded"] = json!(hex(&header.encode())),
                    "chain_getFinality" => answer["encoded"] = encode(&proof),
                    _ => {
                        answer["validators"] = json!(
                            self.outsiders
                                .iter()
                                .map(|k| json!({
                                    "publicKey": k.public().to_string(), "power": 1,
                                }))
                                .collect::<Vec<_>>()
                        )
                    }
                }
            }
            ("log_getProof", _) if answer["finality"].is_object() => {
                let mut evidence: FinalityEvidence = decode(&answer["finality"]["evidence"]);
                self.tamper_evidence(&lie, &mut evidence);
                answer["finality"]["evidence"] = encode(&evidence);
            }
            _ => {}
        }
    }
}

/// Runs the light client and checks it refused with `reason` in its message, leaving `state`
/// as it was.
async fn refused(run: impl AsyncFnOnce() -> (Value, bool), state: &Path, reason: &str) {
    let before = std::fs::read(state).unwrap();
    let (report, ok) = run().await;
    assert!(!ok, "accepted a lie: {report}");
    let why = report["reason"].as_str().unwrap();
    assert!(why.contains(reason), "rejected for {why:?}, expected {reason:?}");
    assert_eq!(std::fs::read(state).unwrap(), before, "a rejected answer changed the state file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_light_client_rejects_every_lie_of_a_malicious_server() {
    let dir = tempfile::tempdir().unwrap();
    let net = start(dir.path()).await;
    let node = net.rpc[0].clone();
    let keys: Vec<Keypair> =
        (0..3).map(|i| load_key_file(&dir.path().join(format!("node{i}/node.key"))).unwrap()).collect();
    let liar = Arc::new(Liar {
        lie: Mutex::new(Lie::None),
        validators: keys.clone(),
        cluster: keys,
        outsiders: attackers(),
        forged: Mutex::new(BTreeMap::new()),
    });
    let rpc = proxy(node.clone(), liar.clone()).await;
    let set = |lie: Lie| *liar.lock_lie() = lie;
    let cluster =
        call(&node, "system_status", json!({})).await.unwrap()["cluster"].as_str().unwrap().to_owned();

    call(&node, "log_create", json!({"name": "audit", "partitions": 2, "replicationFactor": 3}))
        .await
        .unwrap();
    for partition in 0..2 {
        let records = json!([{ "value": hex(b"anchored") }, { "value": hex(b"and final") }]);
        eventually("an acknowledged append", async || {
            call(&node, "log_append", json!({"log": "audit", "partition": partition, "records": records}))
                .await
                .ok()
        })
        .await;
    }
    let proof_of = |partition: u32| json!({"log": "audit", "partition": partition, "offset": 1, "cluster": cluster, "finality": true});
    let other =
        eventually("partition 1 anchored", async || call(&node, "log_getProof", proof_of(1)).await.ok())
            .await;
    eventually("partition 0 anchored", async || call(&node, "log_getProof", proof_of(0)).await.ok()).await;

    // Honest: sync from genesis and verify, through the proxy.
    let state = dir.path().join("light.json");
    let (synced, ok) = sync(&rpc, dir.path(), &state).await;
    assert!(ok, "{synced}");
    let (report, ok) = verify_final(&rpc, &cluster, "audit", 1, &state).await;
    assert!(ok, "{report}");
    assert_eq!(report["value"], hex(b"and final"));

    // Header lies, on sync (skipping, then sequential) and on the finality path.
    let reasons = [
        (Lie::CommitBelowTwoThirds, "commit certificate: signatures carry weight 1 of 3"),
        (Lie::NonValidatorSignatures, "is not a member"),
    ];
    for (lie, reason) in reasons {
        wait_for_new_head(&node, &state).await;
        set(lie.clone());
        refused(async || sync(&rpc, dir.path(), &state).await, &state, reason).await;
        refused(async || sync_with(&rpc, dir.path(), &state, &["--sequential"]).await, &state, reason).await;
        refused(async || verify_final(&rpc, &cluster, "audit", 1, &state).await, &state, reason).await;
        set(Lie::None);
    }
    wait_for_new_head(&node, &state).await;
    set(Lie::ForeignValidatorSet);
    let not_committed = "without the previous set committing it";
    refused(async || sync(&rpc, dir.path(), &state).await, &state, not_committed).await;
    refused(async || sync_with(&rpc, dir.path(), &state, &["--sequential"]).await, &state, not_committed)
        .await;

    // State and anchor lies on the finality path.
    set(Lie::AnchorValue);
    refused(
        async || verify_final(&rpc, &cluster, "audit", 1, &state).await,
        &state,
        "anchored checkpoint: state proof rejected",
    )
    .await;
    set(Lie::OtherAnchor(other));
    refused(
        async || verify_final(&rpc, &cluster, "audit", 1, &state).await,
        &state,
        "anchored checkpoint: state proof rejected",
    )
    .await;
    set(Lie::ContradictingAnchor);
    refused(async || verify_final(&rpc, &cluster, "audit", 1, &state).await, &state, "(fork)").await;

    // Honest again: everything verifies.
    set(Lie::None);
    let (synced, ok) = sync(&rpc, dir.path(), &state).await;
    assert!(ok, "{synced}");
    let (report, ok) = verify_final(&rpc, &cluster, "audit", 1, &state).await;
    assert!(ok, "{report}");
}

impl Liar {
    fn lock_lie(&self) -> std::sync::MutexGuard<'_, Lie> {
        self.lie.lock().unwrap()
    }
}

/// Waits until the chain is past the light client's trusted height (so a sync has work to do).
async fn wait_for_new_head(node: &str, state: &Path) {
    let trusted: Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let trusted = trusted["head"]["height"].as_u64().unwrap();
    eventually("a head above the trusted height", async || {
        let head = call(node, "chain_getFinalizedHead", json!({})).await.ok()?;
        (head["height"].as_u64()? > trusted + 2).then_some(())
    })
    .await;
}
