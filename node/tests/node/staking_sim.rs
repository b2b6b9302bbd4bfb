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
use pyralog_consensus::core::ConsensusCore;
use pyralog_consensus::pbft::{PbftAdversary, PbftEngine, primary};
use pyralog_consensus::sim::{
    Adversary, Behaviour, SIM_CHAIN, Scenario, SimulatedApp, pbft_timeouts, run_with_app,
    tendermint_timeouts, validator_keys,
};
use pyralog_consensus::tendermint::{TendermintAdversary, TendermintEngine};
use pyralog_consensus::{Engine, Validator, ValidatorSet};
use pyralog_crypto::{Digest, Keypair};

/// The chain app over a state store that outlives the simulated validator's crashes.
struct SimChain {
    app: ChainApp,
    state: StateStore,
    key: pyralog_crypto::PublicKey,
    engine: Engine,
    _dir: std::sync::Arc<tempfile::TempDir>,
}

impl SimChain {
    fn new(key: &Keypair, engine: Engine) -> SimChain {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let state = StateStore::open(dir.path()).unwrap();
        let app = ChainApp::new(SIM_CHAIN, state.clone(), key.public()).with_engine(engine);
        SimChain { app, state, key: key.public(), engine, _dir: dir }
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
        let app = ChainApp::new(SIM_CHAIN, self.state.clone(), self.key).with_engine(self.engine);
        SimChain {
            app,
            state: self.state.clone(),
            key: self.key,
            engine: self.engine,
            _dir: self._dir.clone(),
        }
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
fn an_equivocator_is_slashed_and_tombstoned_and_a_silent_validator_jailed_under_tendermint() {
    let adversary = TendermintAdversary::new(SIM_CHAIN);
    let engine = |key| TendermintEngine::new(SIM_CHAIN, key, tendermint_timeouts());
    punishes_an_equivocator_and_a_silent_validator(Engine::Tendermint, engine, &adversary);
}

/// PBFT works the same under staking: the set follows stake, and the primary rotation follows
/// the set.
#[test]
fn an_equivocator_is_slashed_and_tombstoned_and_a_silent_validator_jailed_under_pbft() {
    let adversary = PbftAdversary::new(SIM_CHAIN);
    let engine = |key| PbftEngine::new(SIM_CHAIN, key, pbft_timeouts());
    punishes_an_equivocator_and_a_silent_validator(Engine::Pbft, engine, &adversary);
}

fn punishes_an_equivocator_and_a_silent_validator<E: ConsensusCore>(
    engine_kind: Engine,
    engine: impl FnMut(Keypair) -> E,
    adversary: &dyn Adversary,
) {
    let seed = 24;
    let keys = validator_keys(seed, 7);
    // PBFT's primary leads view after view while it works, and only a primary can equivocate
    // there: make the equivocator the first one.
    let set = ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 10 })).unwrap();
    let first_primary = keys.iter().position(|k| k.public() == primary(&set, 0)).unwrap();
    let (liar, mute) = match engine_kind {
        Engine::Pbft => (first_primary, (first_primary + 1) % 7),
        _ => (5, 6),
    };
    let mut scenario = Scenario::calm(seed, 7);
    scenario.powers = vec![10; 7];
    scenario.byzantine = vec![(liar, Behaviour::Equivocate), (mute, Behaviour::Silent)];
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
    let apps = std::cell::RefCell::new(Vec::new());
    let outcome = run_with_app(
        &scenario,
        engine,
        adversary,
        |_, key| {
            let app = SimChain::new(key, engine_kind);
            apps.borrow_mut().push(app.restarted(0));
            app
        },
        postcard::to_allocvec(&genesis).unwrap(),
    )
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(outcome.evidence_committed > 0, "{outcome:?}");

    // An honest validator's committed state.
    let apps = apps.into_inner();
    let honest = (0..7).find(|i| ![liar, mute].contains(i)).unwrap();
    let state = &apps[honest].state;
    let latest = state.latest_version().unwrap().unwrap();
    let record = |i: usize| -> ValidatorRecord {
        read_state(state, &validator_key(&keys[i].public()), latest).unwrap().unwrap()
    };
    let in_set = |key: &pyralog_crypto::PublicKey, height: u64| {
        apps[honest].validators_at(height).unwrap().power_of(key).is_some()
    };

    let equivocator = record(liar);
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
            read_state::<MisbehaviourRecord>(state, &misbehaviour_key(&keys[liar].public(), h), latest)
                .unwrap()
        })
        .map(|r| r.included_at)
        .min()
        .expect("a misbehaviour record");
    assert!(in_set(&keys[liar].public(), included + 1));
    assert!(!in_set(&keys[liar].public(), included + 2));

    let silent = record(mute);
    assert!(silent.jailed_until_ms.is_some() && !silent.tombstoned, "{silent:?}");
    assert!(!in_set(&keys[mute].public(), latest));
    for (i, key) in keys.iter().enumerate().filter(|(i, _)| ![liar, mute].contains(i)) {
        assert!(record(i).eligible(), "validator {i} was punished: {:?}", record(i));
        assert!(in_set(&key.public(), latest));
    }
}
