//! Proof-of-Stake under the consensus simulator: the node's chain app (staking included) run by
//! real drivers and Tendermint engines on virtual time, with an equivocating and a silent
//! validator. The equivocator's double sign reaches the app as evidence in a block and it is
//! slashed, tombstoned and out of the set two heights later; the silent one is jailed after the
//! signed-blocks window. The simulator checks every block's certificate against the sets the
//! app announced, so the engines followed those changes.

use pyralog_chain::app::{ChainApp, read_state};
use pyralog_chain::staking::records::{ValidatorRecord, validator_key};
use pyralog_chain::staking::{Fraction, StakingParams};
use pyralog_chain::state::StateStore;
use pyralog_chain::values::{Genesis, MisbehaviourRecord, VALIDATORS_KEY, misbehaviour_key};
use pyralog_consensus::app::{
    AppInfo, BlockContext, CheckContext, DecidedBlock, Finalized, PayloadVerdict, ProposalContext,
    ReplicatedApp,
};
use pyralog_consensus::sim::{
    Behaviour, SIM_CHAIN, Scenario, SimulatedApp, run_with_app, tendermint_timeouts, validator_keys,
};
use pyralog_consensus::tendermint::{TendermintAdversary, TendermintEngine};
use pyralog_consensus::{Validator, ValidatorSet};
use pyralog_crypto::{Digest, Keypair};

/// The chain app over a state store that outlives the simulated validator's crashes.
struct SimChain {
    app: ChainApp,
    state: StateStore,
    key: pyralog_crypto::PublicKey,
    _dir: std::sync::Arc<tempfile::TempDir>,
}

impl SimChain {
    fn new(key: &Keypair) -> SimChain {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let state = StateStore::open(dir.path()).unwrap();
        SimChain {
            app: ChainApp::new(SIM_CHAIN, state.clone(), key.public()),
            state,
            key: key.public(),
            _dir: dir,
        }
    }
}

impl ReplicatedApp for SimChain {
    type Error = pyralog_chain::app::AppError;

    fn info(&self) -> Result<AppInfo, Self::Error> {
        self.app.info()
    }
    fn init_chain(
        &mut self,
        chain_id: &str,
        validators: &[Validator],
        app_state: &[u8],
    ) -> Result<Vec<u8>, Self::Error> {
        self.app.init_chain(chain_id, validators, app_state)
    }
    fn check_tx(&self, tx: &[u8]) -> Result<Result<(), String>, Self::Error> {
        self.app.check_tx(tx)
    }
    fn prepare_payload(
        &mut self,
        context: &ProposalContext,
        txs: Vec<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, Self::Error> {
        self.app.prepare_payload(context, txs, max_bytes)
    }
    fn process_payload(
        &mut self,
        context: &CheckContext,
        txs: &[Vec<u8>],
    ) -> Result<PayloadVerdict, Self::Error> {
        self.app.process_payload(context, txs)
    }
    fn block_context(&self, txs: &[Vec<u8>]) -> BlockContext {
        self.app.block_context(txs)
    }
    fn finalize(&mut self, block: &DecidedBlock) -> Result<Finalized, Self::Error> {
        self.app.finalize(block)
    }
    fn commit(&mut self) -> Result<u64, Self::Error> {
        self.app.commit()
    }
    fn query(&self, path: &str, data: &[u8]) -> Result<Vec<u8>, Self::Error> {
        self.app.query(path, data)
    }
}

impl SimulatedApp for SimChain {
    /// What is committed survives (the state store's batches are atomic); nothing is lost.
    fn restarted(&self, _lost: u64) -> Self {
        let app = ChainApp::new(SIM_CHAIN, self.state.clone(), self.key);
        SimChain { app, state: self.state.clone(), key: self.key, _dir: self._dir.clone() }
    }
    fn hash_at(&self, height: u64) -> Option<Digest> {
        (self.height() >= height).then(|| Digest(self.state.root(height).unwrap()))
    }
    fn height(&self) -> u64 {
        self.state.latest_version().unwrap().unwrap_or(0)
    }
    fn validators_at(&self, height: u64) -> Option<ValidatorSet> {
        let set: Vec<Validator> = read_state(&self.state, VALIDATORS_KEY, height.checked_sub(1)?).ok()??;
        ValidatorSet::new(set).ok()
    }
}

#[test]
fn an_equivocator_is_slashed_and_tombstoned_and_a_silent_validator_jailed_under_real_drivers() {
    let seed = 24;
    let mut scenario = Scenario::calm(seed, 7);
    scenario.powers = vec![10; 7];
    scenario.byzantine = vec![(5, Behaviour::Equivocate), (6, Behaviour::Silent)];
    scenario.target_height = 20;
    scenario.deadline_ms = 120_000;
    let params = StakingParams {
        signed_blocks_window: 10,
        // Certificates hold the first quorum of precommits, so an honest validator is missing
        // from some: a low bar tells silence from latency.
        min_signed_per_window: Fraction::per_million(200_000),
        ..StakingParams::testnet()
    };
    let genesis = Genesis { staking: Some(params.clone()), ..Genesis::default() };
    let keys = validator_keys(seed, 7);
    let apps = std::cell::RefCell::new(Vec::new());
    let adversary = TendermintAdversary::new(SIM_CHAIN);
    let outcome = run_with_app(
        &scenario,
        |key| TendermintEngine::new(SIM_CHAIN, key, tendermint_timeouts()),
        &adversary,
        |_, key| {
            let app = SimChain::new(key);
            apps.borrow_mut().push(app.restarted(0));
            app
        },
        postcard::to_allocvec(&genesis).unwrap(),
    )
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(outcome.evidence_committed > 0, "{outcome:?}");

    // An honest validator's committed state.
    let apps = apps.into_inner();
    let state = &apps[0].state;
    let latest = state.latest_version().unwrap().unwrap();
    let record = |i: usize| -> ValidatorRecord {
        read_state(state, &validator_key(&keys[i].public()), latest).unwrap().unwrap()
    };
    let in_set = |key: &pyralog_crypto::PublicKey, height: u64| {
        apps[0].validators_at(height).unwrap().power_of(key).is_some()
    };

    let equivocator = record(5);
    assert!(equivocator.tombstoned, "{equivocator:?}");
    assert_eq!(
        equivocator.tokens,
        10 * params.power_reduction
            - params.slash_fraction_double_sign.of(10 * u128::from(params.power_reduction)) as u64
    );
    // The block that carried the evidence: the equivocator decides the next height, not the one
    // after.
    let included = (1..=latest)
        .filter_map(|h| {
            read_state::<MisbehaviourRecord>(state, &misbehaviour_key(&keys[5].public(), h), latest).unwrap()
        })
        .map(|r| r.included_at)
        .min()
        .expect("a misbehaviour record");
    assert!(in_set(&keys[5].public(), included + 1));
    assert!(!in_set(&keys[5].public(), included + 2));

    let silent = record(6);
    assert!(silent.jailed_until_ms.is_some() && !silent.tombstoned, "{silent:?}");
    assert!(!in_set(&keys[6].public(), latest));
    for (i, key) in keys.iter().enumerate().take(5) {
        assert!(record(i).eligible(), "validator {i} was punished: {:?}", record(i));
        assert!(in_set(&key.public(), latest));
    }
}
