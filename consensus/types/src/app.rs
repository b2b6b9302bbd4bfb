//! The replicated application, shaped 1:1 like ABCI 2.0 so that our engines and an external
//! CometBFT (through an ABCI adapter) drive the same state machine.
//!
//! Call order per height: `prepare_payload` (proposer only) or `process_payload` (everyone
//! else), then `finalize` with the decided block, then `commit`. `check_tx` screens mempool
//! transactions at any time; `query` reads committed state.

use crate::validators::Validator;
use crate::vote::BlockId;

/// What the app reports about itself at start (ABCI `Info`), so the driver can replay blocks the
/// app has not yet committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// The last height the app committed (0: none).
    pub last_height: u64,
    /// Its app hash after that height.
    pub last_app_hash: Vec<u8>,
}

/// A block as the app sees it in `finalize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedBlock {
    /// Its height.
    pub height: u64,
    /// Its id (header hash).
    pub id: BlockId,
    /// Block time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The proposer's key, when the engine knows it.
    pub proposer: Option<pyralog_crypto::PublicKey>,
    /// The transactions, in order.
    pub txs: Vec<Vec<u8>>,
    /// Misbehaviour the engine proved (double signs), for the app to punish.
    pub evidence: Vec<Misbehaviour>,
}

/// Proven misbehaviour of a validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misbehaviour {
    /// Who.
    pub validator: pyralog_crypto::PublicKey,
    /// At which height.
    pub height: u64,
    /// What kind.
    pub kind: MisbehaviourKind,
}

/// Kinds of misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MisbehaviourKind {
    /// Two different votes of the same kind at the same height and round.
    DuplicateVote,
    /// Two different proposals at the same height and round.
    DuplicateProposal,
}

/// The outcome of one transaction in `finalize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxResult {
    /// 0 for success; otherwise an app-defined error code.
    pub code: u32,
    /// What happened, for clients.
    pub log: String,
}

/// What `finalize` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalized {
    /// One result per transaction, in order.
    pub tx_results: Vec<TxResult>,
    /// Validator power changes taking effect at height + 2 (power 0 removes).
    pub validator_updates: Vec<Validator>,
    /// The app hash after the block; the next block's header commits to it.
    pub app_hash: Vec<u8>,
}

/// The app's verdict on a proposed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadVerdict {
    /// Vote for it.
    Accept,
    /// Vote nil.
    Reject,
}

/// The state machine the chain replicates.
pub trait ReplicatedApp {
    /// The app's error (storage failures; never a verdict on input, which has its own answer).
    type Error: std::error::Error + Send + Sync + 'static;

    /// What the app last committed.
    fn info(&self) -> Result<AppInfo, Self::Error>;

    /// Sets up the genesis state; returns the app hash of height 0.
    fn init_chain(
        &mut self,
        chain_id: &str,
        validators: &[Validator],
        app_state: &[u8],
    ) -> Result<Vec<u8>, Self::Error>;

    /// Screens a transaction for the mempool: `Ok(Err(reason))` rejects it.
    fn check_tx(&self, tx: &[u8]) -> Result<Result<(), String>, Self::Error>;

    /// The proposer builds a payload from mempool transactions, at most `max_bytes` in total.
    fn prepare_payload(
        &mut self,
        height: u64,
        txs: Vec<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, Self::Error>;

    /// A validator checks a proposed payload before voting for it.
    fn process_payload(&mut self, height: u64, txs: &[Vec<u8>]) -> Result<PayloadVerdict, Self::Error>;

    /// Executes a decided block (not yet durable).
    fn finalize(&mut self, block: &DecidedBlock) -> Result<Finalized, Self::Error>;

    /// Makes the last finalized block's state durable; returns the height that is now
    /// committed.
    fn commit(&mut self) -> Result<u64, Self::Error>;

    /// Reads committed state at `path`.
    fn query(&self, path: &str, data: &[u8]) -> Result<Vec<u8>, Self::Error>;
}
