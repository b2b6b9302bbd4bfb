//! The chain app behind CometBFT's ABCI 2.0, over a real socket: tendermint-abci's own client
//! plays CometBFT (echo, info, init_chain, check_tx, finalize_block, commit, query), and
//! prepare/process proposal, bad frames and refused requests go as raw protobuf on the same
//! framing. A crash between finalize_block and commit replays to the same app hash, and the
//! blocks of a native Tendermint run replayed through the adapter give the same app hash at
//! every height.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use prost::Message;
use pyralog_abci::address::address;
use pyralog_abci::{AbciAdapter, AbciServer, ServerHandle};
use pyralog_chain::app::ChainApp;
use pyralog_chain::block::Header;
use pyralog_chain::state::StateStore;
use pyralog_chain::values::{Account, account_key};
use pyralog_consensus::Engine;
use pyralog_consensus::driver::{BlockStore, ChainStore};
use pyralog_crypto::{Keypair, PublicKey};
use tendermint_abci::ClientBuilder;
use tendermint_proto::google::protobuf::Timestamp;
use tendermint_proto::v0_38::abci::{
    CommitInfo, Request, RequestCheckTx, RequestEcho, RequestFinalizeBlock, RequestInfo, RequestInitChain,
    RequestPrepareProposal, RequestProcessProposal, RequestQuery, Response, ValidatorUpdate, VoteInfo,
    request, response, response_process_proposal::ProposalStatus,
};
use tendermint_proto::v0_38::crypto::{PublicKey as ProtoKey, public_key::Sum};
use tendermint_proto::v0_38::types::BlockIdFlag;

const CHAIN: &str = "pyralog-abci-test";
/// A block time after the genesis (2026-12-01).
const T0_MS: u64 = 1_796_000_000_000;

struct Served {
    _dir: tempfile::TempDir,
    handle: ServerHandle,
}

fn serve(
    dir: &std::path::Path,
    chain: &str,
    key: &Keypair,
    engine: Engine,
    cap: Option<usize>,
) -> ServerHandle {
    let state = StateStore::open(&dir.join("state")).unwrap();
    let app = ChainApp::new(chain, state, key.public()).with_engine(engine);
    let mut server = AbciServer::bind("127.0.0.1:0").unwrap();
    if let Some(cap) = cap {
        server = server.max_request_bytes(cap);
    }
    server.serve(AbciAdapter::new(app)).unwrap()
}

fn start(key: &Keypair, cap: Option<usize>) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let handle = serve(dir.path(), CHAIN, key, Engine::CometBft, cap);
    Served { _dir: dir, handle }
}

fn update(key: &PublicKey, power: i64) -> ValidatorUpdate {
    ValidatorUpdate { pub_key: Some(ProtoKey { sum: Some(Sum::Ed25519(key.as_bytes().to_vec())) }), power }
}

fn time(ms: u64) -> Option<Timestamp> {
    Some(Timestamp { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 })
}

/// The Pyralog genesis file CometBFT's genesis carries as `app_state`.
fn genesis_json(
    chain: &str,
    validators: &[&Keypair],
    accounts: &[(PublicKey, u64)],
    engine: &str,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "chainId": chain,
        "validators": validators.iter().map(|k| serde_json::json!({"publicKey": k.public(), "power": 1})).collect::<Vec<_>>(),
        "accounts": accounts.iter().map(|(k, b)| serde_json::json!({"publicKey": k, "balance": b})).collect::<Vec<_>>(),
        "consensus": {"engine": engine},
    }))
    .unwrap()
}

fn init_request(validator: &Keypair, alice: &Keypair) -> RequestInitChain {
    RequestInitChain {
        chain_id: CHAIN.into(),
        initial_height: 1,
        validators: vec![update(&validator.public(), 1)],
        app_state_bytes: genesis_json(CHAIN, &[validator], &[(alice.public(), 1_000)], "cometbft").into(),
        ..Default::default()
    }
}

fn transfer(chain: &str, from: &Keypair, nonce: u64, to: &PublicKey, amount: u64) -> Vec<u8> {
    use pyralog_chain::tx::{Action, SignedTx, Tx};
    let tx = Tx {
        chain_id: chain.into(),
        sender: from.public(),
        nonce,
        fee: 1,
        action: Action::Transfer { to: *to, amount },
    };
    SignedTx::sign(tx, from).encode()
}

/// Raw bytes on their own connection, in CometBFT's framing, then the end of the stream; the
/// first response, or `None` when the server closed the connection without answering.
fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<Response> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(bytes).unwrap();
    // Everything is sent: a server waiting for more sees the end of the stream.
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut first = [0u8];
    match stream.read(&mut first) {
        Ok(1) => Some(read_response_after(&mut stream, first[0])),
        _ => None,
    }
}

fn call(addr: SocketAddr, value: request::Value) -> response::Value {
    let mut stream = TcpStream::connect(addr).unwrap();
    let bytes = Request { value: Some(value) }.encode_length_delimited_to_vec();
    stream.write_all(&bytes).unwrap();
    read_response(&mut stream).value.expect("a response value")
}

fn read_response(stream: &mut TcpStream) -> Response {
    let mut first = [0u8];
    stream.read_exact(&mut first).unwrap();
    read_response_after(stream, first[0])
}

/// The response whose length prefix starts with `first`.
fn read_response_after(stream: &mut TcpStream, first: u8) -> Response {
    let (mut byte, mut length, mut shift) = (first, 0u64, 0);
    loop {
        length |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        let mut next = [0u8];
        stream.read_exact(&mut next).unwrap();
        byte = next[0];
    }
    let mut body = vec![0; length as usize];
    stream.read_exact(&mut body).unwrap();
    Response::decode(body.as_slice()).unwrap()
}

fn exception(value: response::Value) -> String {
    match value {
        response::Value::Exception(e) => e.error,
        other => panic!("expected an exception, got {other:?}"),
    }
}

fn prepare(addr: SocketAddr, height: i64, ms: u64, proposer: &PublicKey, txs: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let req = RequestPrepareProposal {
        max_tx_bytes: 1 << 20,
        txs: txs.into_iter().map(Into::into).collect(),
        height,
        time: time(ms),
        proposer_address: address(proposer).to_vec().into(),
        ..Default::default()
    };
    match call(addr, request::Value::PrepareProposal(req)) {
        response::Value::PrepareProposal(r) => r.txs.into_iter().map(|t| t.to_vec()).collect(),
        other => panic!("{other:?}"),
    }
}

fn process(addr: SocketAddr, height: i64, ms: u64, proposer: &PublicKey, txs: &[Vec<u8>]) -> ProposalStatus {
    let req = RequestProcessProposal {
        txs: txs.iter().cloned().map(Into::into).collect(),
        height,
        time: time(ms),
        proposer_address: address(proposer).to_vec().into(),
        ..Default::default()
    };
    match call(addr, request::Value::ProcessProposal(req)) {
        response::Value::ProcessProposal(r) => ProposalStatus::try_from(r.status).unwrap(),
        other => panic!("{other:?}"),
    }
}

fn finalize_request(
    height: i64,
    ms: u64,
    proposer: &PublicKey,
    txs: &[Vec<u8>],
    signers: &[PublicKey],
) -> RequestFinalizeBlock {
    let votes = signers
        .iter()
        .map(|k| VoteInfo {
            validator: Some(tendermint_proto::v0_38::abci::Validator {
                address: address(k).to_vec().into(),
                power: 1,
            }),
            block_id_flag: BlockIdFlag::Commit as i32,
        })
        .collect();
    RequestFinalizeBlock {
        txs: txs.iter().cloned().map(Into::into).collect(),
        decided_last_commit: Some(CommitInfo { round: 0, votes }),
        height,
        time: time(ms),
        proposer_address: address(proposer).to_vec().into(),
        hash: vec![0xAB; 32].into(), // CometBFT's hash: never taken as the block id
        ..Default::default()
    }
}

fn info_request() -> RequestInfo {
    RequestInfo { abci_version: "2.0.0".into(), ..Default::default() }
}

#[test]
fn a_client_playing_cometbft_drives_the_chain_app_over_a_socket() {
    let (validator, alice, bob) = (Keypair::generate(), Keypair::generate(), Keypair::generate());
    let served = start(&validator, None);
    let addr = served.handle.local_addr();
    let mut client = ClientBuilder::default().connect(addr).unwrap();

    assert_eq!(client.echo(RequestEcho { message: "ping".into() }).unwrap().message, "ping");
    let info = client.info(info_request()).unwrap();
    assert_eq!((info.last_block_height, info.last_block_app_hash.len()), (0, 0));
    // Another ABCI major version is refused with an exception.
    let old = RequestInfo { abci_version: "1.0.0".into(), ..Default::default() };
    assert!(exception(call(addr, request::Value::Info(old))).contains("ABCI version \"1.0.0\""));

    // Genesis: CometBFT's validators and the Pyralog genesis file as app_state.
    let genesis_hash = client.init_chain(init_request(&validator, &alice)).unwrap().app_hash;
    assert_eq!(genesis_hash.len(), 32);
    // Validators CometBFT's genesis has but the genesis file has not: refused.
    let mut wrong = init_request(&validator, &alice);
    wrong.validators.push(update(&bob.public(), 1));
    assert!(exception(call(addr, request::Value::InitChain(wrong))).contains("not the genesis file's"));

    let good = transfer(CHAIN, &alice, 0, &bob.public(), 25);
    assert_eq!(client.check_tx(RequestCheckTx { tx: good.clone().into(), r#type: 0 }).unwrap().code, 0);
    let bad = client.check_tx(RequestCheckTx { tx: vec![1, 2, 3].into(), r#type: 0 }).unwrap();
    assert_eq!(bad.code, 1);
    assert!(!bad.log.is_empty());
    let other_chain = transfer("another-chain", &alice, 0, &bob.public(), 25);
    assert_eq!(client.check_tx(RequestCheckTx { tx: other_chain.into(), r#type: 0 }).unwrap().code, 1);

    // Prepare: the header and consensus info open the payload, then the transaction.
    let me = validator.public();
    let payload = prepare(addr, 1, T0_MS, &me, vec![good.clone(), vec![9; 10]]);
    assert_eq!(payload.len(), 3, "header, consensus info, the one valid transaction");
    let header = Header::decode(&payload[0]).unwrap();
    assert_eq!(
        (header.height, header.time_ms, header.proposer, header.engine.as_str()),
        (1, T0_MS, me, "cometbft")
    );
    assert_eq!(header.state_root.0.to_vec(), genesis_hash.to_vec());
    assert_eq!(process(addr, 1, T0_MS, &me, &payload), ProposalStatus::Accept);
    // Another time, another proposer, an unknown proposer, a dropped transaction: rejected.
    assert_eq!(process(addr, 1, T0_MS + 1, &me, &payload), ProposalStatus::Reject);
    assert_eq!(process(addr, 1, T0_MS, &bob.public(), &payload), ProposalStatus::Reject);
    assert_eq!(process(addr, 1, T0_MS, &me, &payload[..2]), ProposalStatus::Reject);
    // A request for a height that is not the next one is refused outright.
    let ahead = RequestProcessProposal { height: 5, ..Default::default() };
    assert!(exception(call(addr, request::Value::ProcessProposal(ahead))).contains("height 5"));

    let done = client.finalize_block(finalize_request(1, T0_MS, &me, &payload, &[])).unwrap();
    let codes: Vec<u32> = done.tx_results.iter().map(|r| r.code).collect();
    assert_eq!(codes, [0, 0, 0]);
    assert_eq!(done.app_hash.len(), 32);
    // Not durable before commit.
    assert_eq!(client.info(info_request()).unwrap().last_block_height, 0);
    client.commit().unwrap();
    let info = client.info(info_request()).unwrap();
    assert_eq!((info.last_block_height, info.last_block_app_hash.clone()), (1, done.app_hash.clone()));

    let query = client
        .query(RequestQuery {
            path: "state".into(),
            data: account_key(&bob.public()).into(),
            height: 0,
            prove: false,
        })
        .unwrap();
    assert_eq!((query.code, query.height), (0, 1));
    let account: Account = postcard::from_bytes(&query.value).unwrap();
    assert_eq!(account.balance, 25);
    let old = client
        .query(RequestQuery { path: "state".into(), data: vec![].into(), height: 7, prove: false })
        .unwrap();
    assert_eq!(old.code, 1);

    // Block 2 builds on block 1: its header's parent is block 1's id, computed from its
    // transactions (not CometBFT's hash).
    let payload2 = prepare(addr, 2, T0_MS + 1000, &me, vec![]);
    let header2 = Header::decode(&payload2[0]).unwrap();
    assert_eq!(header2.parent, header.block_id());
    assert_eq!(header2.state_root.0.to_vec(), done.app_hash.to_vec());
    // A payload carrying a last commit of our own form is refused under CometBFT.
    let mut with_commit = payload2.clone();
    with_commit[1] = pyralog_chain::block::ConsensusInfo {
        last_commit: Some(pyralog_consensus::FinalityProof::Work { engine: Engine::Pow, seals: vec![] }),
        evidence: vec![],
    }
    .encode();
    assert_eq!(process(addr, 2, T0_MS + 1000, &me, &with_commit), ProposalStatus::Reject);
}

#[test]
fn bad_frames_get_an_exception_and_change_nothing() {
    let (validator, alice) = (Keypair::generate(), Keypair::generate());
    let served = start(&validator, Some(4096));
    let addr = served.handle.local_addr();
    let mut client = ClientBuilder::default().connect(addr).unwrap();
    client.init_chain(init_request(&validator, &alice)).unwrap();
    let before = client.info(info_request()).unwrap();

    // An empty request.
    let empty = Request { value: None }.encode_length_delimited_to_vec();
    let answer = raw(addr, &empty).expect("an answer");
    assert!(exception(answer.value.unwrap()).contains("empty request"));
    // A length over the cap: refused before reading the body, and the connection ends.
    let mut oversized = Vec::new();
    prost::encoding::encode_varint(1 << 30, &mut oversized);
    oversized.extend_from_slice(&[0; 16]);
    let answer = raw(addr, &oversized).expect("an answer");
    assert!(exception(answer.value.unwrap()).contains("over the 4096-byte cap"));
    // A body that is not a request.
    let answer = raw(addr, &[3, 0xFF, 0xFF, 0xFF]).expect("an answer");
    assert!(exception(answer.value.unwrap()).contains("undecodable request"));
    // A length prefix that never ends.
    let answer = raw(addr, &[0xFF; 12]).expect("an answer");
    assert!(exception(answer.value.unwrap()).contains("longer than 10 bytes"));
    // A truncated frame: said, and the connection ends.
    let answer = raw(addr, &[0x80]).expect("an answer");
    assert!(exception(answer.value.unwrap()).contains("connection"));

    // The server still serves, and nothing changed.
    let mut client = ClientBuilder::default().connect(addr).unwrap();
    assert_eq!(client.info(info_request()).unwrap(), before);
}

#[test]
fn a_crash_between_finalize_and_commit_replays_to_the_same_app_hash() {
    let (validator, alice, bob) = (Keypair::generate(), Keypair::generate(), Keypair::generate());
    let me = validator.public();
    let dir = tempfile::tempdir().unwrap();
    let handle = serve(dir.path(), CHAIN, &validator, Engine::CometBft, None);
    let addr = handle.local_addr();
    let mut client = ClientBuilder::default().connect(addr).unwrap();
    client.init_chain(init_request(&validator, &alice)).unwrap();
    let payload1 = prepare(addr, 1, T0_MS, &me, vec![transfer(CHAIN, &alice, 0, &bob.public(), 5)]);
    let first = client.finalize_block(finalize_request(1, T0_MS, &me, &payload1, &[])).unwrap();
    client.commit().unwrap();
    let payload2 = prepare(addr, 2, T0_MS + 900, &me, vec![transfer(CHAIN, &alice, 1, &bob.public(), 6)]);
    let block2 = finalize_request(2, T0_MS + 900, &me, &payload2, &[me]);
    let second = client.finalize_block(block2.clone()).unwrap();
    assert_ne!(first.app_hash, second.app_hash);
    // The process dies here: no commit.
    drop(client);
    handle.shutdown();

    let handle = serve(dir.path(), CHAIN, &validator, Engine::CometBft, None);
    let mut client = ClientBuilder::default().connect(handle.local_addr()).unwrap();
    let info = client.info(info_request()).unwrap();
    assert_eq!((info.last_block_height, info.last_block_app_hash), (1, first.app_hash));
    // CometBFT replays block 2: the same app hash, and now it commits.
    let again = client.finalize_block(block2).unwrap();
    assert_eq!(again.app_hash, second.app_hash);
    client.commit().unwrap();
    assert_eq!(client.info(info_request()).unwrap().last_block_height, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_tendermint_blocks_replayed_through_abci_give_the_same_app_hashes() {
    use crate::chain_net::{
        CHAIN as NET_CHAIN, start_network, stop_network, transfer as net_transfer, wait_for_height,
    };
    let keys: Vec<Keypair> = (0..4).map(|_| Keypair::generate()).collect();
    let (alice, bob) = (Keypair::generate(), Keypair::generate());
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let accounts = vec![(alice.public(), 1_000)];
    let (mut nodes, _set) = start_network(Engine::Tendermint, None, &keys, accounts.clone(), &dirs).await;
    wait_for_height(&mut nodes[0].progress, 2).await;
    for nonce in 0..6 {
        nodes[1].txs.send(net_transfer(&alice, nonce, &bob, 3)).await.unwrap();
    }
    let target = nodes[1].progress.borrow().height + 5;
    for node in &mut nodes {
        wait_for_height(&mut node.progress, target).await;
    }
    let (states, common) = stop_network(nodes).await;
    let blocks = BlockStore::open(&dirs[0].path().join("blocks")).unwrap();

    // The same blocks through the adapter, on a fresh app (Tendermint's headers).
    let replay = tempfile::tempdir().unwrap();
    let handle = serve(replay.path(), NET_CHAIN, &keys[0], Engine::Tendermint, None);
    let mut client = ClientBuilder::default().connect(handle.local_addr()).unwrap();
    let validators: Vec<&Keypair> = keys.iter().collect();
    let init = RequestInitChain {
        chain_id: NET_CHAIN.into(),
        initial_height: 1,
        validators: keys.iter().map(|k| update(&k.public(), 1)).collect(),
        app_state_bytes: genesis_json(NET_CHAIN, &validators, &accounts, "tendermint").into(),
        ..Default::default()
    };
    let genesis = client.init_chain(init).unwrap();
    assert_eq!(genesis.app_hash.to_vec(), states[0].root(0).unwrap().to_vec(), "genesis");
    let mut transfers = 0;
    for height in 1..=common {
        let block = blocks.block(height).unwrap().unwrap();
        let header = Header::decode(&block.txs[0]).unwrap();
        let info = pyralog_chain::block::ConsensusInfo::decode(&block.txs[1]).unwrap();
        let signers = info.last_commit.as_ref().map(|p| p.signers()).unwrap_or_default();
        transfers += block.txs.len() - 2;
        // CometBFT's own block time and proposer would differ; the header's are what count.
        let request =
            finalize_request(height as i64, header.time_ms + 3, &header.proposer, &block.txs, &signers);
        let done = client.finalize_block(request).unwrap();
        client.commit().unwrap();
        assert_eq!(done.app_hash.to_vec(), states[0].root(height).unwrap().to_vec(), "height {height}");
    }
    assert_eq!(transfers, 6, "the run carried the transfers");
}
