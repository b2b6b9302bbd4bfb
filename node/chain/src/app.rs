//! The chain application: the [`ReplicatedApp`] the Pyralog Network's validators replicate.
//!
//! State (in the authenticated [`StateStore`], one version per height, version 0 the genesis):
//! - `account/<key>`: balance and next nonce;
//! - `cluster/<id>`: a registered cluster's owner, replica keys and peer addresses;
//! - `anchor/<cluster>/<log>/<partition>`: the partition's latest anchored checkpoint with its
//!   certificate and the height that anchored it.
//!
//! - `misbehaviour/<validator><height>`: a double sign a block proved (one per validator and
//!   height);
//! - `meta/validators` and `meta/next_validators`: the sets of the next block and of the one
//!   after (from genesis; on a staking chain they follow stake, see [`crate::staking`]);
//!   `meta/last_block`: the last block's id and time (the next header's parent);
//!   `meta/last_commit`: who signed the last block's parent;
//! - `staking/...`, `slashing/...`: Proof-of-Stake's state, on a chain that stakes.
//!
//! What each action does is in `actions`; the end of every block in `end_block` below and
//! staking's own.
//!
//! Every payload starts with the block [`Header`] the proposer built (`prepare_payload`) and
//! every validator checked (`process_payload`): height, parent, state root, transaction count
//! and root, validator hashes, engine, and a time after the parent's and not ahead of the
//! validator's clock by more than [`MAX_CLOCK_DRIFT_MS`]. Then comes the [`ConsensusInfo`]: the
//! parent's finality proof (required after height 1) and evidence not yet punished (the driver
//! checks both against the validator sets before the app sees the payload).
//!
//! A transaction with a valid signature, the sender's next nonce and a fee the sender can pay
//! always charges the fee and takes the nonce, even when its action fails (so a failing
//! transaction still costs its sender, as in Ethereum); anything else changes nothing.

use pyralog_consensus_types::app::{
    AppInfo, BlockContext, CheckContext, DecidedBlock, Finalized, Misbehaviour, PayloadVerdict,
    ProposalContext, ReplicatedApp, TxResult,
};
use pyralog_consensus_types::evidence::MAX_EVIDENCE_PER_BLOCK;
use pyralog_consensus_types::pow::PowRules;
use pyralog_consensus_types::vote::{BlockId, Evidence};
use pyralog_consensus_types::{Engine, Validator};
use pyralog_crypto::{Digest, PublicKey};
use serde::Deserialize;

mod ending;
mod work;

use ending::{end_block, record_consensus};

use crate::actions::{Sender, apply};
use crate::block::{
    ConsensusInfo, Header, MAX_CLOCK_DRIFT_MS, committed_state_version, transactions_root, validators_hash,
};
use crate::overlay::Overlay;
use crate::staking;
use crate::staking::ledger::BlockAt;
use crate::state::{PreparedVersion, StateError, StateStore};
use crate::tx::{SignedTx, Tx};
use crate::values::{
    Account, Genesis, LAST_BLOCK_KEY, LastBlock, MEMPOOL_NONCE_WINDOW, MisbehaviourRecord,
    NEXT_VALIDATORS_KEY, TxLocation, VALIDATORS_KEY, account_key, cluster_key, codes, misbehaviour_key,
};
use pyralog_consensus_types::pow::MAX_FUTURE_MS;

/// The committed location of transaction `id`, if any.
pub fn tx_location(
    state: &StateStore,
    id: &pyralog_crypto::Digest,
) -> Result<Option<TxLocation>, StateError> {
    state
        .index(&tx_index_key(id))?
        .map(|bytes| postcard::from_bytes(&bytes))
        .transpose()
        .map_err(|e| StateError::Corrupt { what: "transaction index", reason: e.to_string() })
}

fn tx_index_key(id: &pyralog_crypto::Digest) -> Vec<u8> {
    [b"tx/".as_slice(), &id.0].concat()
}

/// The value of `key` at `version`, decoded (state values are postcard).
pub fn read_state<T: for<'de> Deserialize<'de>>(
    state: &StateStore,
    key: &[u8],
    version: u64,
) -> Result<Option<T>, StateError> {
    Overlay::new(state, Some(version)).get(key)
}

/// A transaction that may apply (decoded, with its sender's account), or why not (a result code
/// and a log).
type Screened = Result<(SignedTx, Account), (u32, String)>;

/// The chain application over its state store.
pub struct ChainApp {
    chain_id: String,
    state: StateStore,
    /// This validator (the proposer of the payloads it builds).
    proposer: PublicKey,
    /// The engine the chain runs (named in every header).
    engine: Engine,
    /// Under Proof-of-Work, `k`: blocks are built on blocks not yet final, so a header commits
    /// to the state `k` blocks below its parent (the last final one when it was mined).
    confirmations: Option<u64>,
    /// The state `finalize` computed, written by `commit` (ABCI's rule: nothing is durable
    /// before commit, so a crash in between replays the block to the same app hash).
    pending: Option<PreparedVersion>,
}

/// A failure of the app (fatal to the node, as the driver treats app errors).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The driver's block context contradicts the app's state (a bug, not bad input).
    #[error("block context: {0}")]
    Context(String),
}

impl ChainApp {
    /// The app of `chain_id` over `state`, run by validator `proposer`.
    pub fn new(chain_id: impl Into<String>, state: StateStore, proposer: PublicKey) -> Self {
        ChainApp {
            chain_id: chain_id.into(),
            state,
            proposer,
            engine: Engine::Tendermint,
            confirmations: None,
            pending: None,
        }
    }

    /// The same app on a Proof-of-Work chain under `rules` (nothing changes without them).
    pub fn with_work_rules(mut self, rules: Option<&PowRules>) -> Self {
        if let Some(rules) = rules {
            self.engine = Engine::Pow;
            self.confirmations = Some(rules.confirmations);
        }
        self
    }

    /// The same app on a chain that runs `engine` (the genesis file's `consensus.engine`).
    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// The header the block at `height` must have when `txs` (the consensus info, then the
    /// transactions) follow it, proposed at `now_ms` by this node. Under Proof-of-Work the
    /// caller sets the parent (the block it is placed on).
    pub fn build_header(&self, height: u64, txs: &[Vec<u8>], now_ms: u64) -> Result<Header, AppError> {
        let view = self.overlay()?;
        let validators: Vec<Validator> = view.get(VALIDATORS_KEY)?.unwrap_or_default();
        let next_validators: Option<Vec<Validator>> = view.get(NEXT_VALIDATORS_KEY)?;
        let last: Option<LastBlock> = view.get(LAST_BLOCK_KEY)?;
        let latest = self.state.latest_version()?;
        let state_root = match (self.confirmations, latest) {
            // Nothing here may depend on how far this node has finalized: the version is fixed
            // by the height, and final on every node that checks the block.
            (Some(k), Some(latest)) => {
                let version = committed_state_version(height, Some(k));
                if version > latest {
                    return Err(AppError::Context(format!(
                        "a block at height {height} commits to state {version}, final here only up to {latest}"
                    )));
                }
                self.state.root(version)?
            }
            (None, Some(version)) => self.state.root(version)?,
            (_, None) => [0; 32],
        };
        let parent_time = last.map_or(0, |l| l.time_ms);
        // CometBFT's block time is the header's as given: its own rules keep it after the
        // parent's (block 1 takes the genesis time itself).
        let exact = self.confirmations.is_some() || self.engine == Engine::CometBft;
        let time_ms = if exact { now_ms } else { now_ms.max(parent_time + 1) };
        Ok(Header {
            chain_id: self.chain_id.clone(),
            height,
            time_ms,
            parent: last.map_or(pyralog_crypto::Digest([0; 32]), |l| l.id),
            tx_count: txs.len() as u64,
            tx_root: transactions_root(txs),
            state_root: pyralog_crypto::Digest(state_root),
            validators_hash: validators_hash(&validators),
            next_validators_hash: validators_hash(next_validators.as_deref().unwrap_or(&validators)),
            proposer: self.proposer,
            engine: self.engine.name().into(),
        })
    }

    /// Why `payload` (header, consensus info, transactions) cannot be the block at `height` on
    /// the last committed block, checked at `now_ms`.
    pub fn check_payload(
        &self,
        height: u64,
        payload: &[Vec<u8>],
        now_ms: u64,
    ) -> Result<Result<(), String>, AppError> {
        let placed = match self.confirmations {
            Some(_) => Some(self.last_block()?.map_or(Digest([0; 32]), |l| l.id)),
            None => None,
        };
        self.check_payload_on(height, payload, now_ms, placed)
    }

    /// [`ChainApp::check_payload`], with `placed` the block a Proof-of-Work block is placed on
    /// (`app/work.rs` says what differs there).
    fn check_payload_on(
        &self,
        height: u64,
        payload: &[Vec<u8>],
        now_ms: u64,
        placed: Option<Digest>,
    ) -> Result<Result<(), String>, AppError> {
        let Some((first, rest)) = payload.split_first() else { return Ok(Err("no header".into())) };
        let header = match Header::decode(first) {
            Ok(header) => header,
            Err(why) => return Ok(Err(why)),
        };
        let Some((info, txs)) = rest.split_first() else { return Ok(Err("no consensus info".into())) };
        let info = match ConsensusInfo::decode(info) {
            Ok(info) => info,
            Err(why) => return Ok(Err(why)),
        };
        if placed.is_some() {
            if info.last_commit.is_some() || !info.evidence.is_empty() {
                return Ok(Err("a Proof-of-Work block carries no last commit or evidence".into()));
            }
        } else if self.engine == Engine::CometBft {
            // CometBFT carries its own last commit and evidence beside the transactions.
            if info.last_commit.is_some() || !info.evidence.is_empty() {
                return Ok(Err("a block decided by CometBFT carries no last commit or evidence".into()));
            }
        } else if info.last_commit.is_some() != (height > 1) {
            return Ok(Err(format!("a block at height {height} carries a last commit only after height 1")));
        }
        if let Some(done) = self.punished(&info.evidence)? {
            return Ok(Err(format!(
                "evidence against {} at height {} was already punished",
                done.validator, done.height
            )));
        }
        if header.engine != self.engine.name() {
            return Ok(Err(format!("a {} block, but the chain runs {}", header.engine, self.engine)));
        }
        // Under Proof-of-Work the seal's time is held to the median rule (the engine's); the
        // header's only to the clock, and anyone may have mined it.
        let drift = if placed.is_some() { MAX_FUTURE_MS } else { MAX_CLOCK_DRIFT_MS };
        let after_parent = placed.is_none() && self.engine != Engine::CometBft;
        if after_parent && header.time_ms <= self.last_block()?.map_or(0, |l| l.time_ms) {
            return Ok(Err(format!("block time {} is not after the parent's", header.time_ms)));
        }
        if header.time_ms > now_ms.saturating_add(drift) {
            return Ok(Err(format!("block time {} is ahead of this clock ({now_ms})", header.time_ms)));
        }
        // The proposer must be a validator of the height (as CometBFT checks a block's
        // proposer address): a proposal naming anyone else is refused.
        if placed.is_none() {
            let validators: Vec<Validator> = self.overlay()?.get(VALIDATORS_KEY)?.unwrap_or_default();
            if !validators.iter().any(|v| v.key == header.proposer) {
                return Ok(Err(format!("proposer {} is not a validator", header.proposer)));
            }
        }
        let mut expected = self.build_header(height, rest, header.time_ms)?;
        expected.proposer = header.proposer;
        if let Some(parent) = placed {
            expected.parent = parent;
        }
        if header != expected {
            return Ok(Err(format!("header {header:?} differs from the expected {expected:?}")));
        }
        if let Some(bad) = txs.iter().find_map(|tx| SignedTx::decode_and_verify(tx, &self.chain_id).err()) {
            return Ok(Err(format!("invalid transaction: {bad}")));
        }
        Ok(Ok(()))
    }

    /// The state store (for RPC reads and proofs).
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    fn overlay(&self) -> Result<Overlay<'_>, StateError> {
        Ok(Overlay::new(&self.state, self.state.latest_version()?))
    }

    /// The last committed block's id (zero before the first): the next header's parent.
    pub fn last_block_id(&self) -> Result<BlockId, StateError> {
        Ok(self.last_block()?.map_or(Digest([0; 32]), |l| l.id))
    }

    /// The validators of the next block and of the one after (equal unless the set changes).
    pub fn validator_sets(&self) -> Result<(Vec<Validator>, Vec<Validator>), StateError> {
        let view = self.overlay()?;
        let current: Vec<Validator> = view.get(VALIDATORS_KEY)?.unwrap_or_default();
        let next: Option<Vec<Validator>> = view.get(NEXT_VALIDATORS_KEY)?;
        Ok((current.clone(), next.unwrap_or(current)))
    }

    /// The last committed block, as the next header refers to it (none before the first).
    fn last_block(&self) -> Result<Option<LastBlock>, StateError> {
        self.overlay()?.get(LAST_BLOCK_KEY)
    }

    /// The first of `evidence` whose misbehaviour the state already records.
    fn punished(&self, evidence: &[Evidence]) -> Result<Option<Misbehaviour>, StateError> {
        let view = self.overlay()?;
        for piece in evidence {
            let done = Misbehaviour::from(piece);
            if view.get::<MisbehaviourRecord>(&misbehaviour_key(&done.validator, done.height))?.is_some() {
                return Ok(Some(done));
            }
        }
        Ok(None)
    }

    /// Screens `tx` against `view`; on success returns it decoded and the sender's account.
    fn screen(&self, view: &Overlay<'_>, bytes: &[u8]) -> Result<Screened, StateError> {
        let signed = match SignedTx::decode_and_verify(bytes, &self.chain_id) {
            Ok(signed) => signed,
            Err(err) => return Ok(Err((codes::INVALID, err.to_string()))),
        };
        let account = view.account(&signed.tx.sender)?;
        if signed.tx.nonce != account.nonce {
            return Ok(Err((
                codes::BAD_NONCE,
                format!("nonce {} given, {} expected", signed.tx.nonce, account.nonce),
            )));
        }
        if let Err(why) = fee_check(&signed.tx, &account) {
            return Ok(Err((codes::FEE, why)));
        }
        Ok(Ok((signed, account)))
    }

    /// Runs one transaction on `view`.
    fn deliver(&self, view: &mut Overlay<'_>, bytes: &[u8], at: BlockAt) -> Result<TxResult, StateError> {
        let (signed, mut account) = match self.screen(view, bytes)? {
            Ok(screened) => screened,
            Err((code, log)) => return Ok(TxResult { code, log }),
        };
        let Tx { sender, fee, action, nonce, .. } = signed.tx;
        account.balance -= fee;
        account.nonce += 1;
        view.put(account_key(&sender), &account);
        // A refused action keeps the fee and the nonce and nothing else it may have written.
        let savepoint = view.savepoint();
        Ok(match apply(view, &Sender { key: sender, nonce }, action, at)? {
            Ok(log) => TxResult { code: codes::OK, log },
            Err(log) => {
                view.rollback(savepoint);
                TxResult { code: codes::ACTION_FAILED, log }
            }
        })
    }
}

/// Why `tx`'s sender cannot pay its fee: under the action's minimum (contract calls pay for
/// their fuel) or over the balance.
fn fee_check(tx: &Tx, account: &Account) -> Result<(), String> {
    let minimum = tx.action.min_fee();
    if tx.fee < minimum || tx.fee > account.balance {
        return Err(format!("fee {} (minimum {minimum}) with a balance of {}", tx.fee, account.balance));
    }
    Ok(())
}

impl ReplicatedApp for ChainApp {
    type Error = AppError;

    fn info(&self) -> Result<AppInfo, AppError> {
        Ok(match self.state.latest_version()? {
            Some(version) => {
                AppInfo { last_height: version, last_app_hash: self.state.root(version)?.to_vec() }
            }
            None => AppInfo { last_height: 0, last_app_hash: Vec::new() },
        })
    }

    fn init_chain(
        &mut self,
        chain_id: &str,
        validators: &[Validator],
        app_state: &[u8],
    ) -> Result<Vec<u8>, AppError> {
        if let Some(version) = self.state.latest_version()? {
            return Ok(self.state.root(version)?.to_vec()); // already initialized
        }
        self.chain_id = chain_id.to_string();
        let genesis: Genesis = if app_state.is_empty() {
            Genesis::default()
        } else {
            postcard::from_bytes(app_state)
                .map_err(|e| StateError::Corrupt { what: "genesis app state", reason: e.to_string() })?
        };
        let mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = genesis
            .accounts
            .iter()
            .map(|(key, balance)| {
                let account = Account { balance: *balance, nonce: 0 };
                (account_key(key), Some(postcard::to_allocvec(&account).expect("serializes")))
            })
            .collect();
        genesis.check().map_err(|reason| StateError::Corrupt { what: "genesis app state", reason })?;
        for (cluster, record) in &genesis.clusters {
            writes.push((cluster_key(cluster), Some(postcard::to_allocvec(record).expect("serializes"))));
        }
        writes.push((VALIDATORS_KEY.to_vec(), Some(postcard::to_allocvec(validators).expect("serializes"))));
        if let Some(time_ms) = genesis.genesis_time_ms {
            // Block 1's parent is the genesis: its time must be after the chain's start (as
            // CometBFT requires), which a light client trusting the genesis relies on.
            let start = LastBlock { height: 0, id: Digest([0; 32]), time_ms };
            writes.push((LAST_BLOCK_KEY.to_vec(), Some(postcard::to_allocvec(&start).expect("serializes"))));
        }
        if let Some(params) = &genesis.staking {
            let mut view = Overlay::new(&self.state, None);
            staking::genesis::bond_genesis_validators(&mut view, params, validators)
                .map_err(|reason| StateError::Corrupt { what: "genesis staking", reason })?;
            writes.extend(view.writes);
        }
        Ok(self.state.commit(0, writes)?.to_vec())
    }

    fn check_tx(&self, tx: &[u8]) -> Result<Result<(), String>, AppError> {
        // The mempool holds a sender's next few nonces (they apply in order, block by block);
        // the block checks the exact nonce.
        let signed = match SignedTx::decode_and_verify(tx, &self.chain_id) {
            Ok(signed) => signed,
            Err(err) => return Ok(Err(err.to_string())),
        };
        let account = self.overlay()?.account(&signed.tx.sender)?;
        let window = account.nonce..account.nonce.saturating_add(MEMPOOL_NONCE_WINDOW);
        if !window.contains(&signed.tx.nonce) {
            return Ok(Err(format!("nonce {} outside {window:?}", signed.tx.nonce)));
        }
        if let Err(why) = fee_check(&signed.tx, &account) {
            return Ok(Err(why));
        }
        Ok(Ok(()))
    }

    fn prepare_payload(
        &mut self,
        context: &ProposalContext,
        candidates: Vec<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, AppError> {
        // The driver's last commit, and the evidence the state has not punished yet.
        let mut evidence = Vec::new();
        for piece in &context.evidence {
            if evidence.len() < MAX_EVIDENCE_PER_BLOCK
                && self.punished(std::slice::from_ref(piece))?.is_none()
            {
                evidence.push(piece.clone());
            }
        }
        let info = ConsensusInfo { last_commit: context.last_commit.clone(), evidence }.encode();
        // Candidates in mempool order, screened in sequence (a sender's consecutive nonces),
        // after the blocks not yet final below this one.
        let mut view = self.overlay()?;
        self.apply_unfinalised(&mut view, &context.unfinalised)?;
        let mut picked = vec![info];
        let mut room = max_bytes.saturating_sub(1024 + picked[0].len()); // the header and the info
        for tx in candidates {
            if tx.len() > room {
                continue;
            }
            if let Ok((signed, mut account)) = self.screen(&view, &tx)? {
                account.nonce += 1;
                account.balance -= signed.tx.fee;
                view.put(account_key(&signed.tx.sender), &account);
                room -= tx.len();
                picked.push(tx);
            }
        }
        // The header carries the block context the engine and driver supplied: the proposer,
        // its clock, the parent.
        let mut header = self.build_header(context.height, &picked, context.time_ms)?;
        header.proposer = context.proposer;
        if self.confirmations.is_some() {
            header.parent = context.parent;
        } else if header.parent != context.parent {
            return Err(AppError::Context(format!(
                "the driver's parent {} is not the app's last block {}",
                context.parent, header.parent
            )));
        }
        picked.insert(0, header.encode());
        Ok(picked)
    }

    fn process_payload(
        &mut self,
        context: &CheckContext,
        txs: &[Vec<u8>],
    ) -> Result<PayloadVerdict, AppError> {
        // A block may carry failing transactions (they get a result code), but not ones that
        // could never have been valid (undecodable, unsigned, too large), nor a wrong header.
        let height = context.height;
        let placed = self.confirmations.map(|_| context.parent);
        let checked = self.check_payload_on(height, txs, context.now_ms, placed)?;
        let verdict = match checked {
            Ok(()) if self.confirmations.is_some() => Ok(()),
            // `check_payload` holds the header's parent to this app's last block; the validator's
            // driver must be building on that same block.
            Ok(()) => match self.last_block()?.map_or(Digest([0; 32]), |l| l.id) {
                last if last == context.parent => Ok(()),
                last => {
                    Err(format!("the driver's parent {} is not this app's last block {last}", context.parent))
                }
            },
            Err(why) => Err(why),
        };
        Ok(match verdict {
            Ok(()) => PayloadVerdict::Accept,
            Err(why) => {
                tracing::info!(height, %why, "payload rejected");
                PayloadVerdict::Reject
            }
        })
    }

    /// The header's time and proposer and the consensus info's last commit and evidence (every
    /// validator checked them before voting).
    fn block_context(&self, txs: &[Vec<u8>]) -> BlockContext {
        let Some(Ok(header)) = txs.first().map(|first| Header::decode(first)) else {
            return BlockContext::default();
        };
        let info = txs.get(1).and_then(|info| ConsensusInfo::decode(info).ok()).unwrap_or_default();
        BlockContext {
            time_ms: header.time_ms,
            proposer: Some(header.proposer),
            last_commit: info.last_commit,
            evidence: info.evidence,
        }
    }

    fn finalize(&mut self, block: &DecidedBlock) -> Result<Finalized, AppError> {
        let mut view = self.overlay()?;
        let mut tx_results = Vec::with_capacity(block.txs.len());
        let mut index = Vec::new();
        // The header and the consensus info (checked by more than 2/3 of the validators before
        // they voted) open it.
        let header = block.txs.first().and_then(|first| Header::decode(first).ok());
        let info = block.txs.get(1).filter(|_| header.is_some()).and_then(|i| ConsensusInfo::decode(i).ok());
        let time_ms = header.as_ref().map_or(block.time_ms, |h| h.time_ms);
        let at = BlockAt { height: block.height, time_ms };
        for (i, tx) in block.txs.iter().enumerate() {
            if i == 0 && header.is_some() {
                tx_results.push(TxResult { code: codes::OK, log: "header".into() });
                continue;
            }
            if i == 1 && info.is_some() {
                tx_results.push(TxResult { code: codes::OK, log: "consensus info".into() });
                continue;
            }
            let result = self.deliver(&mut view, tx, at)?;
            if let Ok(signed) = postcard::from_bytes::<SignedTx>(tx) {
                let location = TxLocation {
                    height: block.height,
                    index: i as u32,
                    code: result.code,
                    log: result.log.clone(),
                };
                index.push((
                    tx_index_key(&signed.id()),
                    postcard::to_allocvec(&location).expect("serializes"),
                ));
            }
            tx_results.push(result);
        }
        view.put(LAST_BLOCK_KEY.to_vec(), &LastBlock { height: block.height, id: block.id, time_ms });
        let new_misbehaviour = record_consensus(&mut view, block)?;
        let validator_updates = end_block(&mut view, block, at, &new_misbehaviour)?;
        let writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = view.writes.into_iter().collect();
        let prepared = self.state.prepare(block.height, writes, index)?;
        let app_hash = prepared.root().to_vec();
        self.pending = Some(prepared);
        Ok(Finalized { tx_results, validator_updates, app_hash })
    }

    fn commit(&mut self) -> Result<u64, AppError> {
        // The block's state becomes durable here, in one RocksDB batch.
        if let Some(prepared) = self.pending.take() {
            self.state.write_prepared(prepared)?;
        }
        Ok(self.state.latest_version()?.unwrap_or(0))
    }

    fn query(&self, path: &str, data: &[u8]) -> Result<Vec<u8>, AppError> {
        // `state/<key>`: the committed value of a raw state key (empty when absent).
        let Some(version) = self.state.latest_version()? else { return Ok(Vec::new()) };
        match path {
            "state" => Ok(self.state.get(data, version)?.unwrap_or_default()),
            _ => Ok(Vec::new()),
        }
    }
}
