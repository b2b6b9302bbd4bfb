//! Proof-of-Stake in the chain app: bonding and the H+2 rule, unbonding locks and their limit,
//! the top-N cut-off, double-sign slashing and tombstoning, downtime jailing and unjailing.
//! Blocks are run through the app as the driver runs them (finalize, commit), with the block
//! time, the last commit's signers and the evidence under the test's control.

use pyralog_chain::app::{ChainApp, read_state};
use pyralog_chain::block::{ConsensusInfo, validators_hash};
use pyralog_chain::proof::verify_state_proof;
use pyralog_chain::staking::records::{
    Delegation, SigningInfo, UnbondingEntry, ValidatorRecord, delegation_key, delegations_of_key,
    signing_info_key, unbonding_key, validator_key,
};
use pyralog_chain::staking::{Fraction, StakingParams};
use pyralog_chain::state::StateStore;
use pyralog_chain::tx::{Action, SignedTx, Tx};
use pyralog_chain::values::{Account, Genesis, account_key, codes};
use pyralog_consensus::app::{DecidedBlock, Misbehaviour, MisbehaviourKind, ReplicatedApp};
use pyralog_consensus::{Validator, ValidatorSet};
use pyralog_crypto::{Keypair, PublicKey};

const CHAIN: &str = "pyralog-staking-test";
const REDUCTION: u64 = 1_000;

fn params() -> StakingParams {
    StakingParams {
        unbonding_time_ms: 10_000,
        unbonding_blocks: 5,
        max_validators: 4,
        max_entries: 2,
        power_reduction: REDUCTION,
        signed_blocks_window: 10,
        min_signed_per_window: Fraction::per_million(500_000),
        ..StakingParams::testnet()
    }
}

/// A staking chain whose genesis validators are `validators` (power 10 each).
struct Chain {
    app: ChainApp,
    height: u64,
    /// The block time of the last block, in ms.
    time_ms: u64,
    /// The sets the driver would use, by height (what the updates built).
    sets: Vec<ValidatorSet>,
    genesis: Vec<Keypair>,
    nonces: std::collections::HashMap<PublicKey, u64>,
    _dir: tempfile::TempDir,
}

struct Outcome {
    codes: Vec<u32>,
    logs: Vec<String>,
    updates: Vec<Validator>,
}

impl Chain {
    fn new(validators: usize, params: StakingParams, accounts: &[(&Keypair, u64)]) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let genesis: Vec<Keypair> = (0..validators).map(|_| Keypair::generate()).collect();
        let set =
            ValidatorSet::new(genesis.iter().map(|k| Validator { key: k.public(), power: 10 })).unwrap();
        let mut app = ChainApp::new(CHAIN, StateStore::open(dir.path()).unwrap(), genesis[0].public());
        // The genesis validators' operators (their own keys) have fees to pay.
        let funded = genesis.iter().map(|k| (k.public(), 10_000));
        let state = Genesis {
            accounts: accounts.iter().map(|(k, b)| (k.public(), *b)).chain(funded).collect(),
            staking: Some(params),
            ..Genesis::default()
        };
        app.init_chain(CHAIN, set.validators(), &postcard::to_allocvec(&state).unwrap()).unwrap();
        // Heights 1 and 2 run the genesis set (index = height).
        let sets = vec![set.clone(), set.clone(), set];
        Chain { app, height: 0, time_ms: 1_000_000, sets, genesis, nonces: Default::default(), _dir: dir }
    }

    fn set_at(&self, height: u64) -> &ValidatorSet {
        &self.sets[height as usize]
    }

    fn tx(&mut self, sender: &Keypair, action: Action) -> Vec<u8> {
        let nonce = self.nonces.entry(sender.public()).or_default();
        let tx = Tx { chain_id: CHAIN.into(), sender: sender.public(), nonce: *nonce, fee: 1, action };
        *nonce += 1;
        SignedTx::sign(tx, sender).encode()
    }

    /// Runs a block `step_ms` after the last one, signed (its parent) by every validator of the
    /// parent's set but `absent`, proving `evidence`.
    fn block_with(
        &mut self,
        txs: Vec<Vec<u8>>,
        step_ms: u64,
        absent: &[PublicKey],
        evidence: Vec<Misbehaviour>,
    ) -> Outcome {
        self.height += 1;
        self.time_ms += step_ms;
        let height = self.height;
        let rest: Vec<Vec<u8>> = std::iter::once(ConsensusInfo::default().encode()).chain(txs).collect();
        let header = self.app.build_header(height, &rest, self.time_ms).unwrap();
        // The header names the set the driver runs at this height and announces the next one.
        assert_eq!(
            header.validators_hash,
            validators_hash(self.set_at(height).validators()),
            "height {height}"
        );
        assert_eq!(header.next_validators_hash, validators_hash(self.set_at(height + 1).validators()));
        let mut signers: Vec<PublicKey> = match height {
            1 => Vec::new(),
            _ => self
                .set_at(height - 1)
                .validators()
                .iter()
                .map(|v| v.key)
                .filter(|k| !absent.contains(k))
                .collect(),
        };
        signers.sort();
        let block = DecidedBlock {
            height,
            id: header.block_id(),
            time_ms: self.time_ms,
            proposer: Some(header.proposer),
            txs: std::iter::once(header.encode()).chain(rest).collect(),
            last_commit_signers: signers,
            evidence,
        };
        let finalized = self.app.finalize(&block).unwrap();
        assert_eq!(self.app.commit().unwrap(), height);
        // The driver's rule: updates from block H take effect at H + 2.
        let next = self.set_at(height + 1).with_updates(&finalized.validator_updates).unwrap();
        self.sets.push(next);
        let results = &finalized.tx_results[2..];
        Outcome {
            codes: results.iter().map(|r| r.code).collect(),
            logs: results.iter().map(|r| r.log.clone()).collect(),
            updates: finalized.validator_updates,
        }
    }

    fn block(&mut self, txs: Vec<Vec<u8>>) -> Outcome {
        self.block_with(txs, 1_000, &[], Vec::new())
    }

    /// A committed state value, checked against the state root with its proof.
    fn proven<T: for<'de> serde::Deserialize<'de>>(&self, key: &[u8]) -> Option<T> {
        let version = self.app.state().latest_version().unwrap().unwrap();
        let (value, proof) = self.app.state().get_with_proof(key, version).unwrap();
        verify_state_proof(&self.app.state().root(version).unwrap(), key, value.as_deref(), &proof).unwrap();
        value.map(|v| postcard::from_bytes(&v).unwrap())
    }

    fn validator(&self, operator: &PublicKey) -> ValidatorRecord {
        self.proven(&validator_key(operator)).unwrap()
    }

    fn balance(&self, key: &PublicKey) -> u64 {
        self.proven::<Account>(&account_key(key)).unwrap_or_default().balance
    }

    fn power_in(&self, height: u64, key: &PublicKey) -> Option<u64> {
        self.set_at(height).power_of(key)
    }
}

fn create(consensus_key: PublicKey, self_bond: u64) -> Action {
    Action::CreateValidator {
        consensus_key,
        self_bond,
        commission_bps: 500,
        max_commission_bps: 2_000,
        description: "test".into(),
    }
}

#[test]
fn a_bond_enters_the_set_two_heights_later_and_signs_from_there() {
    let alice = Keypair::generate();
    let node = Keypair::generate();
    let mut chain = Chain::new(3, params(), &[(&alice, 100_000)]);
    let tx = chain.tx(&alice, create(node.public(), 20_000));
    let out = chain.block(vec![tx]);
    assert_eq!(out.codes, vec![codes::OK], "{:?}", out.logs);
    assert_eq!(out.updates, vec![Validator { key: node.public(), power: 20 }]);
    assert_eq!(chain.balance(&alice.public()), 100_000 - 20_000 - 1);
    // Block 1's update: not at height 2, in the set from height 3; header 2 announces it.
    assert_eq!(chain.power_in(2, &node.public()), None);
    assert_eq!(chain.power_in(3, &node.public()), Some(20));
    chain.block(Vec::new()); // height 2 (its header checks next_validators_hash = set 3)
    chain.block(Vec::new()); // height 3, decided by the new set
    let d: Delegation = chain.proven(&delegation_key(&alice.public(), &alice.public())).unwrap();
    assert_eq!(d.shares, 20_000);
    // From height 4 on, its signature on height 3 counts: a block without it marks a miss.
    let out = chain.block_with(Vec::new(), 1_000, &[node.public()], Vec::new());
    assert!(out.updates.is_empty());
    let info: SigningInfo = chain.proven(&signing_info_key(&node.public())).unwrap();
    assert_eq!((info.missed, info.start_height), (1, 3), "counted from the first height it decides");

    // The same consensus key twice, a second validator for one operator, a bond under one unit
    // of power, a commission over its maximum: refused, fee charged, nothing else.
    let other = Keypair::generate();
    let tx = chain.tx(&alice, Action::Transfer { to: other.public(), amount: 20_000 });
    chain.block(vec![tx]);
    let txs = vec![
        chain.tx(&alice, create(Keypair::generate().public(), 5_000)),
        chain.tx(&other, create(node.public(), 5_000)),
        chain.tx(&other, create(Keypair::generate().public(), REDUCTION - 1)),
        chain.tx(
            &other,
            Action::CreateValidator {
                consensus_key: Keypair::generate().public(),
                self_bond: 5_000,
                commission_bps: 3_000,
                max_commission_bps: 2_000,
                description: String::new(),
            },
        ),
    ];
    let out = chain.block(txs);
    assert!(
        out.codes[0] == codes::ACTION_FAILED && out.logs[0].contains("already operates"),
        "{:?}",
        out.logs
    );
    assert!(out.logs[1].contains("already used"), "{:?}", out.logs);
    assert!(out.logs[2].contains("under one unit of power"), "{:?}", out.logs);
    assert!(out.logs[3].contains("commission"), "{:?}", out.logs);
    assert!(out.updates.is_empty());
}

#[test]
fn staking_actions_are_refused_on_a_chain_that_does_not_stake() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Keypair::generate();
    let mut app = ChainApp::new(CHAIN, StateStore::open(dir.path()).unwrap(), alice.public());
    let state = Genesis { accounts: vec![(alice.public(), 1_000)], ..Genesis::default() };
    app.init_chain(
        CHAIN,
        &[Validator { key: alice.public(), power: 1 }],
        &postcard::to_allocvec(&state).unwrap(),
    )
    .unwrap();
    let rest = vec![
        ConsensusInfo::default().encode(),
        SignedTx::sign(
            Tx {
                chain_id: CHAIN.into(),
                sender: alice.public(),
                nonce: 0,
                fee: 1,
                action: create(alice.public(), 500),
            },
            &alice,
        )
        .encode(),
    ];
    let header = app.build_header(1, &rest, 1_000).unwrap();
    let block = DecidedBlock {
        height: 1,
        id: header.block_id(),
        time_ms: 1_000,
        proposer: None,
        txs: std::iter::once(header.encode()).chain(rest).collect(),
        last_commit_signers: Vec::new(),
        evidence: Vec::new(),
    };
    let finalized = app.finalize(&block).unwrap();
    assert_eq!(finalized.tx_results[2].code, codes::ACTION_FAILED);
    assert!(finalized.tx_results[2].log.contains("does not stake"));
    assert!(finalized.validator_updates.is_empty());
}

#[test]
fn unbonding_locks_tokens_until_both_height_and_time_have_passed() {
    let alice = Keypair::generate();
    let mut chain = Chain::new(3, params(), &[(&alice, 100_000)]);
    let operator = chain.genesis[0].public();
    let tx = chain.tx(&alice, Action::Delegate { validator: operator, amount: 10_000 });
    let out = chain.block(vec![tx]);
    assert_eq!(out.codes, vec![codes::OK]);
    assert_eq!(out.updates, vec![Validator { key: operator, power: 20 }]);
    let after_delegation = chain.balance(&alice.public());

    // Two entries (the limit), a third refused.
    let txs = vec![
        chain.tx(&alice, Action::Unbond { validator: operator, amount: 3_000 }),
        chain.tx(&alice, Action::Unbond { validator: operator, amount: 2_000 }),
        chain.tx(&alice, Action::Unbond { validator: operator, amount: 1_000 }),
    ];
    let out = chain.block(txs); // height 2, time t0 + 2 s
    assert_eq!(out.codes, vec![codes::OK, codes::OK, codes::ACTION_FAILED], "{:?}", out.logs);
    assert!(out.logs[2].contains("unbonding entries"), "{:?}", out.logs);
    assert_eq!(out.updates, vec![Validator { key: operator, power: 15 }]);
    let entries: Vec<UnbondingEntry> = chain.proven(&unbonding_key(&operator, &alice.public())).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[0].completion_height, entries[0].balance), (7, 3_000));
    // Unbonding more than the delegation holds is refused.
    let tx = chain.tx(&alice, Action::Unbond { validator: operator, amount: 6_000 });
    assert!(chain.block(vec![tx]).logs[0].contains("worth 5000"));
    let fees = 4;

    // Height 7 passes with only 5 s of the 10 s: still locked. Blocks 4..=6 are 1 s apart.
    for _ in 4..=7 {
        chain.block(Vec::new());
    }
    assert_eq!(chain.height, 7);
    assert_eq!(chain.balance(&alice.public()), after_delegation - fees);
    // Time passes too (a slow block): both entries mature together.
    chain.block_with(Vec::new(), 10_000, &[], Vec::new());
    assert_eq!(chain.balance(&alice.public()), after_delegation - fees + 5_000);
    assert_eq!(chain.proven::<Vec<UnbondingEntry>>(&unbonding_key(&operator, &alice.public())), None);
    // A full unbond leaves no delegation behind, and new entries may start again.
    let tx = chain.tx(&alice, Action::Unbond { validator: operator, amount: 5_000 });
    assert_eq!(chain.block(vec![tx]).codes, vec![codes::OK]);
    assert_eq!(chain.proven::<Delegation>(&delegation_key(&alice.public(), &operator)), None);
}

#[test]
fn the_set_is_the_top_validators_by_power_with_ties_broken_by_key() {
    let params = StakingParams { max_validators: 3, ..params() };
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let mut chain = Chain::new(2, params, &[(&a, 100_000), (&b, 100_000)]);
    // Two newcomers tie at 10 with the genesis validators: the smaller key of them enters.
    let (ka, kb) = (Keypair::generate().public(), Keypair::generate().public());
    let txs = vec![chain.tx(&a, create(ka, 10_000)), chain.tx(&b, create(kb, 10_000))];
    let out = chain.block(txs);
    assert_eq!(out.codes, vec![codes::OK, codes::OK]);
    let mut tied: Vec<PublicKey> = chain.genesis.iter().map(|k| k.public()).chain([ka, kb]).collect();
    tied.sort();
    let expected: Vec<PublicKey> = tied[..3].to_vec();
    let in_set = |chain: &Chain, h: u64| -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = chain.set_at(h).validators().iter().map(|v| v.key).collect();
        keys.sort();
        keys
    };
    assert_eq!(in_set(&chain, 3), expected);
    // The one left out gains power: it enters, the smallest-power-largest-key leaves.
    let (left_out, left_operator) = match tied[3] {
        k if k == ka => (ka, a.public()),
        k if k == kb => (kb, b.public()),
        k => (k, k), // a genesis validator (operator = its key)
    };
    let funder =
        if left_operator == a.public() || left_operator == b.public() { left_operator } else { a.public() };
    let signer = if funder == a.public() { &a } else { &b };
    let tx = chain.tx(signer, Action::Delegate { validator: left_operator, amount: 1_000 });
    let out = chain.block(vec![tx]);
    assert_eq!(out.codes, vec![codes::OK], "{:?}", out.logs);
    assert_eq!(chain.power_in(4, &left_out), Some(11));
    assert_eq!(chain.power_in(4, &tied[2]), None, "the largest key of the tie leaves");
    assert_eq!(chain.set_at(4).validators().len(), 3);
    // It enters with a fresh liveness window, from the first height it decides.
    let info: SigningInfo = chain.proven(&signing_info_key(&left_out)).unwrap();
    assert_eq!((info.start_height, info.missed), (4, 0));
}

#[test]
fn a_double_sign_slashes_the_stake_it_had_then_tombstones_and_removes_it() {
    let alice = Keypair::generate();
    let mut chain = Chain::new(4, params(), &[(&alice, 100_000)]);
    let culprit = chain.genesis[1].public();
    // Alice delegates, then the validator double-signs at height 2 and she unbonds at height 3:
    // her unbonding entry was bonded at the infraction and is slashed too.
    let tx = chain.tx(&alice, Action::Delegate { validator: culprit, amount: 10_000 });
    chain.block(vec![tx]);
    chain.block(Vec::new()); // height 2: the infraction
    let tx = chain.tx(&alice, Action::Unbond { validator: culprit, amount: 4_000 });
    chain.block(vec![tx]);
    let before = chain.validator(&culprit);
    assert_eq!(before.tokens, 16_000);
    let proof = Misbehaviour { validator: culprit, height: 2, kind: MisbehaviourKind::DuplicateVote };
    let out = chain.block_with(Vec::new(), 1_000, &[], vec![proof.clone()]);
    // Power 10 at height 2 (the delegation counted from height 3): 5% of 10,000 tokens = 500,
    // 5% of the 4,000-token entry (200) first, the remaining 300 from its tokens.
    assert_eq!(out.updates, vec![Validator { key: culprit, power: 0 }]);
    let after = chain.validator(&culprit);
    assert!(after.tombstoned && after.jailed_until_ms == Some(u64::MAX));
    assert_eq!(after.tokens, 16_000 - 300);
    let entries: Vec<UnbondingEntry> = chain.proven(&unbonding_key(&culprit, &alice.public())).unwrap();
    assert_eq!((entries[0].initial_balance, entries[0].balance), (4_000, 3_800));
    assert_eq!(chain.power_in(chain.height + 1, &culprit), Some(16), "still signs the next height");
    assert_eq!(chain.power_in(chain.height + 2, &culprit), None, "out at H + 2");

    // The same evidence again, evidence against a key that is no validator: no-ops. Unjailing
    // a tombstoned validator is refused.
    let stranger =
        Misbehaviour { validator: alice.public(), height: 3, kind: MisbehaviourKind::DuplicateProposal };
    let out = chain.block_with(Vec::new(), 1_000, &[], vec![proof, stranger]);
    assert!(out.updates.is_empty());
    assert_eq!(chain.validator(&culprit), after);
    let unjail = chain.tx(&chain.genesis[1].clone(), Action::Unjail);
    let out = chain.block(vec![unjail]);
    assert!(out.logs[0].contains("tombstoned"), "{:?}", out.logs);
    // Delegating to it is refused.
    let tx = chain.tx(&alice, Action::Delegate { validator: culprit, amount: 1_000 });
    assert!(chain.block(vec![tx]).logs[0].contains("tombstoned"));
}

#[test]
fn evidence_older_than_the_unbonding_period_or_of_an_unbonded_height_changes_nothing() {
    let mut chain = Chain::new(4, params(), &[]);
    let late = chain.genesis[2].public();
    for _ in 0..8 {
        chain.block(Vec::new());
    }
    // Height 1 was 8 blocks and 8 s ago: older in blocks (5) but not in time (10 s) — still
    // punishable; run past the time too and it is not.
    for _ in 0..3 {
        chain.block_with(Vec::new(), 5_000, &[], Vec::new());
    }
    let old = Misbehaviour { validator: late, height: 1, kind: MisbehaviourKind::DuplicateVote };
    let out = chain.block_with(Vec::new(), 1_000, &[], vec![old]);
    assert!(out.updates.is_empty());
    assert!(!chain.validator(&late).tombstoned);
    // A validator that joined after the infraction height was not bonded then.
    let newcomer = Keypair::generate();
    let mut chain = Chain::new(3, params(), &[(&newcomer, 50_000)]);
    chain.block(Vec::new());
    let tx = chain.tx(&newcomer, create(newcomer.public(), 10_000));
    chain.block(vec![tx]);
    chain.block(Vec::new());
    let before_it_joined =
        Misbehaviour { validator: newcomer.public(), height: 1, kind: MisbehaviourKind::DuplicateVote };
    let out = chain.block_with(Vec::new(), 1_000, &[], vec![before_it_joined]);
    assert!(out.updates.is_empty());
    assert_eq!(chain.validator(&newcomer.public()).tokens, 10_000);
}

#[test]
fn a_silent_validator_is_jailed_after_the_window_and_may_unjail_after_its_jail_time() {
    let mut chain = Chain::new(4, params(), &[]);
    let silent = chain.genesis[3].clone();
    // Window 10, at least half signed: the 6th miss past the first window jails it.
    let mut jailed_at = None;
    for _ in 0..20 {
        let out = chain.block_with(Vec::new(), 1_000, &[silent.public()], Vec::new());
        if !out.updates.is_empty() {
            assert_eq!(out.updates, vec![Validator { key: silent.public(), power: 0 }]);
            jailed_at = Some(chain.height);
            break;
        }
    }
    let jailed_at = jailed_at.expect("jailed within 20 blocks");
    assert_eq!(jailed_at, 12, "counted from height 2 over a window of 10: first judged at height 12");
    let record = chain.validator(&silent.public());
    assert_eq!(record.tokens, 10_000 - 100, "1% of its stake");
    let until = record.jailed_until_ms.unwrap();
    assert_eq!(chain.power_in(jailed_at + 2, &silent.public()), None);

    // Unjail before the jail time (10 s): refused; after: back in the set two heights later.
    let tx = chain.tx(&silent, Action::Unjail);
    let out = chain.block(vec![tx]);
    assert!(out.logs[0].contains("jailed until"), "{:?}", out.logs);
    chain.block_with(Vec::new(), 10_000, &[], Vec::new());
    assert!(chain.time_ms >= until);
    let tx = chain.tx(&silent, Action::Unjail);
    let out = chain.block(vec![tx]);
    assert_eq!(out.codes, vec![codes::OK], "{:?}", out.logs);
    assert_eq!(out.updates, vec![Validator { key: silent.public(), power: 9 }]);
    assert_eq!(chain.power_in(chain.height + 2, &silent.public()), Some(9));
    let info: SigningInfo = chain.proven(&signing_info_key(&silent.public())).unwrap();
    assert_eq!(info.missed, 0);
}

/// Stake unbonded in the block just before an infraction still counted in the power that
/// decided it (that set was made two blocks before): its entry is slashed too.
#[test]
fn a_double_sign_reaches_an_entry_unbonded_the_block_before() {
    let alice = Keypair::generate();
    let mut chain = Chain::new(4, params(), &[(&alice, 100_000)]);
    let culprit = chain.genesis[1].public();
    let tx = chain.tx(&alice, Action::Delegate { validator: culprit, amount: 10_000 });
    chain.block(vec![tx]); // height 1: power 20 from height 3
    let tx = chain.tx(&alice, Action::Unbond { validator: culprit, amount: 4_000 });
    chain.block(vec![tx]); // height 2: power 16 from height 4
    chain.block(Vec::new()); // height 3: the infraction, decided with power 20
    let proof = Misbehaviour { validator: culprit, height: 3, kind: MisbehaviourKind::DuplicateVote };
    chain.block_with(Vec::new(), 1_000, &[], vec![proof]);
    // 5% of 20,000 = 1,000: 200 from the entry, 800 from its 16,000 tokens.
    let entries: Vec<UnbondingEntry> = chain.proven(&unbonding_key(&culprit, &alice.public())).unwrap();
    assert_eq!(entries[0].balance, 3_800);
    assert_eq!(chain.validator(&culprit).tokens, 16_000 - 800);
}

/// A refused action changes nothing but the fee and nonce, whatever it wrote before refusing;
/// after a slash, unbonding all a delegation is worth closes it (no dust shares left behind).
#[test]
fn refused_actions_leave_no_trace_and_full_unbonds_leave_no_dust() {
    let (alice, poor) = (Keypair::generate(), Keypair::generate());
    let mut chain = Chain::new(4, params(), &[(&alice, 100_000), (&poor, 10)]);
    let culprit = chain.genesis[2].public();
    let tx = chain.tx(&poor, Action::Delegate { validator: culprit, amount: 5_000 });
    let out = chain.block(vec![tx]);
    assert!(out.logs[0].contains("balance 9"), "{:?}", out.logs);
    assert_eq!(chain.proven::<Vec<PublicKey>>(&delegations_of_key(&poor.public())), None);
    assert_eq!(chain.balance(&poor.public()), 9);

    let tx = chain.tx(&alice, Action::Delegate { validator: culprit, amount: 10_000 });
    chain.block(vec![tx]);
    chain.block(Vec::new());
    let proof = Misbehaviour { validator: culprit, height: 2, kind: MisbehaviourKind::DuplicateVote };
    chain.block_with(Vec::new(), 1_000, &[], vec![proof]);
    let record = chain.validator(&culprit);
    let d: Delegation = chain.proven(&delegation_key(&alice.public(), &culprit)).unwrap();
    let held = record.tokens_of(d.shares);
    assert!(held < 10_000, "slashed: {held}");
    let tx = chain.tx(&alice, Action::Unbond { validator: culprit, amount: held });
    assert_eq!(chain.block(vec![tx]).codes, vec![codes::OK]);
    assert_eq!(chain.proven::<Delegation>(&delegation_key(&alice.public(), &culprit)), None);
    assert_eq!(chain.proven::<Vec<PublicKey>>(&delegations_of_key(&alice.public())), None);
}

/// With a genesis time, the first block must come after it (a light client trusting the genesis
/// relies on it): a proposer's header takes a later time, and an earlier one is refused.
#[test]
fn the_first_block_comes_after_the_genesis_time() {
    let dir = tempfile::tempdir().unwrap();
    let key = Keypair::generate();
    let mut app = ChainApp::new(CHAIN, StateStore::open(dir.path()).unwrap(), key.public());
    let state = Genesis { genesis_time_ms: Some(5_000_000), ..Genesis::default() };
    app.init_chain(
        CHAIN,
        &[Validator { key: key.public(), power: 1 }],
        &postcard::to_allocvec(&state).unwrap(),
    )
    .unwrap();
    let rest = vec![ConsensusInfo::default().encode()];
    let header = app.build_header(1, &rest, 4_000_000).unwrap();
    assert_eq!(header.time_ms, 5_000_001);
    let mut early = header.clone();
    early.time_ms = 4_999_000;
    let payload: Vec<Vec<u8>> = std::iter::once(early.encode()).chain(rest.clone()).collect();
    let verdict = app.check_payload(1, &payload, 6_000_000).unwrap();
    assert!(verdict.unwrap_err().contains("not after the parent"));
    let payload: Vec<Vec<u8>> = std::iter::once(header.encode()).chain(rest).collect();
    assert_eq!(app.check_payload(1, &payload, 6_000_000).unwrap(), Ok(()));
}

#[test]
fn staking_state_is_readable_at_past_heights() {
    let alice = Keypair::generate();
    let mut chain = Chain::new(3, params(), &[(&alice, 100_000)]);
    let tx = chain.tx(&alice, Action::Delegate { validator: chain.genesis[0].public(), amount: 5_000 });
    chain.block(vec![tx]);
    let at_genesis: ValidatorRecord =
        read_state(chain.app.state(), &validator_key(&chain.genesis[0].public()), 0).unwrap().unwrap();
    assert_eq!(at_genesis.tokens, 10_000);
    assert_eq!(chain.validator(&chain.genesis[0].public()).tokens, 15_000);
}
