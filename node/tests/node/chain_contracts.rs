//! Chain contracts on the chain app: code stored under its hash, contracts instantiated from it,
//! calls that pay for their fuel and get the unburnt part back, the escrow and vote examples,
//! a failing call that changes nothing but its fee, and contract state proven under the state
//! root.

use pyralog_chain::contracts::query;
use pyralog_chain::proof::verify_state_proof;
use pyralog_chain::tx::Action;
use pyralog_chain::values::{
    ContractCode, ContractRecord, MIN_FEE, code_fee, code_hash, code_key, codes, contract_id, contract_key,
    contract_storage_key, fuel_fee,
};
use pyralog_contracts::examples::{ESCROW, VOTE, wasm_of};
use pyralog_crypto::{Digest, Keypair};

use crate::chain_app::{Chain, tx};

const FUEL: u64 = 200_000;
/// What a call carrying [`FUEL`] must pay.
const CALL_FEE: u64 = MIN_FEE + FUEL / pyralog_chain::values::FUEL_PER_TOKEN;

fn deploy(sender: &Keypair, nonce: u64, wasm: &[u8]) -> Vec<u8> {
    tx(sender, nonce, MIN_FEE + code_fee(wasm.len()), Action::DeployCode { wasm: wasm.to_vec() })
}

fn instantiate(sender: &Keypair, nonce: u64, code: Digest, input: Vec<u8>, value: u64) -> Vec<u8> {
    tx(sender, nonce, CALL_FEE, Action::Instantiate { code, input, value, fuel: FUEL })
}

fn call(sender: &Keypair, nonce: u64, contract: Digest, entry: &str, input: Vec<u8>) -> Vec<u8> {
    let action = Action::CallContract { contract, entry: entry.into(), input, value: 0, fuel: FUEL };
    tx(sender, nonce, CALL_FEE, action)
}

impl Chain {
    fn version(&self) -> u64 {
        self.app.state().latest_version().unwrap().unwrap()
    }

    /// The state value at `key`, checked against the state root with its proof.
    fn proven(&self, key: &[u8]) -> Option<Vec<u8>> {
        let version = self.version();
        let (value, proof) = self.app.state().get_with_proof(key, version).unwrap();
        let root = self.app.state().root(version).unwrap();
        verify_state_proof(&root, key, value.as_deref(), &proof).unwrap();
        value
    }

    fn contract(&self, id: &Digest) -> ContractRecord {
        postcard::from_bytes(&self.proven(&contract_key(id)).expect("the contract exists")).unwrap()
    }

    /// A contract's storage value, proven.
    fn stored(&self, id: &Digest, key: &[u8]) -> Option<Vec<u8>> {
        self.proven(&contract_storage_key(id, key)).map(|v| postcard::from_bytes(&v).unwrap())
    }
}

/// The fuel a completed call's log reports.
fn fuel_of(log: &str) -> u64 {
    let after = log.split("fuel ").nth(1).unwrap_or_else(|| panic!("no fuel in {log:?}"));
    after.split(',').next().unwrap().parse().unwrap()
}

#[test]
fn escrow_releases_to_the_beneficiary_on_the_arbiters_word_and_refunds_after_its_height() {
    let (alice, bob, carol) = (Keypair::generate(), Keypair::generate(), Keypair::generate());
    let mut chain = Chain::new(&[(&alice, 10_000), (&bob, 100), (&carol, 100)]);
    let wasm = wasm_of(ESCROW.as_bytes()).unwrap();
    let code = code_hash(&wasm);
    assert_eq!(chain.block(vec![deploy(&alice, 0, &wasm)]), [codes::OK]);
    let stored: ContractCode = postcard::from_bytes(&chain.proven(&code_key(&code)).unwrap()).unwrap();
    assert_eq!((stored.wasm, stored.deployer), (wasm.clone(), alice.public()));
    // The same code again costs its fee and changes nothing else.
    let again = chain.block_results(vec![deploy(&alice, 1, &wasm)]);
    assert_eq!((again[0].code, again[0].log.contains("already stored")), (codes::OK, true));

    let terms = |refund_at: u64| {
        [bob.public().as_bytes().as_slice(), carol.public().as_bytes(), &refund_at.to_le_bytes()].concat()
    };
    let released = contract_id(&alice.public(), 2);
    let refunded = contract_id(&alice.public(), 3);
    let results = chain.block_results(vec![
        instantiate(&alice, 2, code, terms(1_000), 500),
        instantiate(&alice, 3, code, terms(8), 300),
    ]);
    assert!(results.iter().all(|r| r.code == codes::OK), "{results:?}");
    assert_eq!(chain.contract(&released).balance, 500);
    assert_eq!(chain.contract(&refunded).creator, alice.public());
    assert_eq!(chain.stored(&released, b"beneficiary"), Some(bob.public().as_bytes().to_vec()));

    // Only the arbiter releases; a refusal keeps the fee and nothing else.
    let bob_before = chain.account(&bob);
    let refused = chain.block_results(vec![call(&bob, 0, released, "release", Vec::new())]);
    assert_eq!(refused[0].code, codes::ACTION_FAILED);
    assert!(refused[0].log.contains("refused by the contract: only the arbiter releases"), "{refused:?}");
    assert_eq!(
        chain.account(&bob).balance,
        bob_before.balance - CALL_FEE,
        "a failed call pays its whole fee"
    );
    assert_eq!(chain.contract(&released).balance, 500);

    let done = chain.block_results(vec![call(&carol, 0, released, "release", Vec::new())]);
    assert_eq!(done[0].code, codes::OK, "{done:?}");
    assert!(done[0].log.contains(&format!("events [0x{}]", hex::encode("released"))), "{done:?}");
    assert_eq!(chain.account(&bob).balance, bob_before.balance - CALL_FEE + 500);
    assert_eq!(chain.contract(&released).balance, 0);

    // The refund opens at height 8: refused before, anyone may trigger it after.
    assert!(chain.version() < 7);
    let early = chain.block_results(vec![call(&bob, 1, refunded, "refund", Vec::new())]);
    assert!(early[0].log.contains("no refund before the refund height"), "{early:?}");
    while chain.version() < 7 {
        chain.block(Vec::new());
    }
    let alice_before = chain.account(&alice).balance;
    let late = chain.block_results(vec![call(&bob, 2, refunded, "refund", Vec::new())]);
    assert_eq!(late[0].code, codes::OK, "{late:?}");
    assert_eq!(chain.account(&alice).balance, alice_before + 300);
}

#[test]
fn a_vote_weighs_each_voter_by_balance_once_and_closes_at_its_height() {
    let (alice, bob, carol) = (Keypair::generate(), Keypair::generate(), Keypair::generate());
    let mut chain = Chain::new(&[(&alice, 10_000), (&bob, 3_000), (&carol, 1_000)]);
    let wasm = wasm_of(VOTE.as_bytes()).unwrap();
    let ballot = contract_id(&alice.public(), 1);
    let close = 5u64;
    let results = chain.block_results(vec![
        deploy(&alice, 0, &wasm),
        instantiate(&alice, 1, code_hash(&wasm), close.to_le_bytes().to_vec(), 0),
    ]);
    assert!(results.iter().all(|r| r.code == codes::OK), "{results:?}");
    let results = chain.block_results(vec![
        call(&bob, 0, ballot, "vote", vec![1]),
        call(&carol, 0, ballot, "vote", vec![1]),
        call(&alice, 2, ballot, "vote", vec![2]),
        call(&carol, 1, ballot, "vote", vec![2]),
        call(&bob, 1, ballot, "vote", vec![1, 2]),
    ]);
    let codes_of: Vec<u32> = results.iter().map(|r| r.code).collect();
    assert_eq!(codes_of, [codes::OK, codes::OK, codes::OK, codes::ACTION_FAILED, codes::ACTION_FAILED]);
    assert!(results[3].log.contains("already voted"), "{results:?}");
    assert!(results[4].log.contains("the input is one byte, the choice"), "{results:?}");

    // Each weighs its balance after the call's fee, when it voted.
    let tally = |chain: &Chain, choice: u8| -> u64 {
        let outcome =
            query(chain.app.state(), chain.version(), &ballot, "tally", &[choice], None).unwrap().unwrap();
        u64::from_le_bytes(outcome.output.try_into().unwrap())
    };
    assert_eq!(tally(&chain, 1), (3_000 - CALL_FEE) + (1_000 - CALL_FEE));
    // Alice's balance now holds her vote's refund too.
    let refund = fuel_fee(FUEL) - fuel_fee(fuel_of(&results[2].log));
    assert_eq!(tally(&chain, 2), chain.account(&alice).balance - refund);
    assert_eq!(tally(&chain, 3), 0);
    let proven = chain.stored(&ballot, &[b"tally/".as_slice(), &[1]].concat()).unwrap();
    assert_eq!(proven, tally(&chain, 1).to_le_bytes());

    while chain.version() < close - 1 {
        chain.block(Vec::new());
    }
    let dave = Keypair::generate();
    chain.block(vec![tx(&alice, 3, 1, Action::Transfer { to: dave.public(), amount: 500 })]);
    let late = chain.block_results(vec![call(&dave, 0, ballot, "vote", vec![3])]);
    assert!(late[0].log.contains("voting is closed"), "{late:?}");
    assert_eq!(tally(&chain, 3), 0);
}

#[test]
fn a_call_pays_for_its_fuel_gets_the_unburnt_part_back_and_a_trap_changes_nothing() {
    let alice = Keypair::generate();
    let mut chain = Chain::new(&[(&alice, 10_000)]);
    let wasm = wat::parse_str(
        r#"(module
          (import "pyralog_v1" "storage_set" (func $set (param i32 i32 i32 i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "k")
          (func (export "write") (call $set (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))
          (func (export "write_then_trap")
            (call $set (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1))
            unreachable)
          (func (export "spin") (loop $again (br $again))))"#,
    )
    .unwrap();
    let id = contract_id(&alice.public(), 1);
    let setup =
        chain.block(vec![deploy(&alice, 0, &wasm), instantiate(&alice, 1, code_hash(&wasm), Vec::new(), 0)]);
    assert_eq!(setup, [codes::OK, codes::OK]);

    // Under the fuel's price: refused before it runs, nothing charged.
    let before = chain.account(&alice);
    let cheap = tx(
        &alice,
        2,
        MIN_FEE,
        Action::CallContract { contract: id, entry: "write".into(), input: Vec::new(), value: 0, fuel: FUEL },
    );
    assert_eq!(chain.block(vec![cheap]), [codes::FEE]);
    assert_eq!(chain.account(&alice), before);

    let trapped = chain.block_results(vec![call(&alice, 2, id, "write_then_trap", Vec::new())]);
    assert_eq!(trapped[0].code, codes::ACTION_FAILED);
    assert!(trapped[0].log.contains("trap"), "{trapped:?}");
    assert_eq!(chain.stored(&id, b"k"), None, "the trapped call's write is gone");
    let spun = chain.block_results(vec![call(&alice, 3, id, "spin", Vec::new())]);
    assert!(spun[0].log.contains(&format!("out of fuel ({FUEL} given)")), "{spun:?}");
    assert_eq!(chain.account(&alice).balance, before.balance - 2 * CALL_FEE);

    let before = chain.account(&alice).balance;
    let wrote = chain.block_results(vec![call(&alice, 4, id, "write", Vec::new())]);
    assert_eq!(wrote[0].code, codes::OK, "{wrote:?}");
    let used = fuel_of(&wrote[0].log);
    assert!(used > 0 && used < FUEL, "{wrote:?}");
    assert_eq!(chain.account(&alice).balance, before - MIN_FEE - fuel_fee(used));
    assert_eq!(chain.stored(&id, b"k"), Some(b"k".to_vec()));

    // More fuel than a call may burn, code that does not compile, a contract that does not exist.
    let greedy = tx(
        &alice,
        5,
        MIN_FEE + fuel_fee(20_000_000),
        Action::CallContract {
            contract: id,
            entry: "write".into(),
            input: Vec::new(),
            value: 0,
            fuel: 20_000_000,
        },
    );
    let floats =
        wat::parse_str(r#"(module (func (export "f") (drop (f32.add (f32.const 1) (f32.const 2)))))"#)
            .unwrap();
    let results = chain.block_results(vec![
        greedy,
        deploy(&alice, 6, &floats),
        call(&alice, 7, Digest([9; 32]), "write", Vec::new()),
    ]);
    assert!(results[0].log.contains("over the 10000000 a call may burn"), "{results:?}");
    assert!(results[1].log.starts_with("code refused: invalid contract"), "{results:?}");
    assert!(results[2].log.starts_with("no contract 0909"), "{results:?}");
    assert!(results.iter().all(|r| r.code == codes::ACTION_FAILED));
    assert_eq!(chain.proven(&code_key(&code_hash(&floats))), None);

    // A module without `init` is instantiated without running anything (its start function
    // included): the fee for the fuel comes back whole.
    let spinning_start =
        wat::parse_str(r#"(module (func $s (loop $l (br $l))) (start $s) (memory (export "memory") 1))"#)
            .unwrap();
    chain.block(vec![deploy(&alice, 8, &spinning_start)]);
    let before = chain.account(&alice).balance;
    let created =
        chain.block_results(vec![instantiate(&alice, 9, code_hash(&spinning_start), Vec::new(), 0)]);
    assert_eq!(created[0].code, codes::OK, "{created:?}");
    assert!(created[0].log.contains("fuel 0,"), "{created:?}");
    assert_eq!(chain.account(&alice).balance, before - MIN_FEE);
}
