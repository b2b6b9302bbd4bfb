//! The replicated application, shaped 1:1 like ABCI 2.0 so that our engines and an external
//! CometBFT (through an ABCI adapter) drive the same state machine.
//!
//! Call order per height: `prepare_payload` (proposer only) or `process_payload` (everyone
//! else), then `finalize` with the decided block, then `commit`. `check_tx` screens mempool
//! transactions at any time; `query` reads committed state.

use crate::finality::FinalityProof;
use crate::validators::Validator;
use crate::vote::{BlockId, Evidence};

/// What the app reports about itself at start (ABCI `Info`), so the driver can replay blocks the
/// app has not yet committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// The last height the app committed (0: none).
    pub last_height: u64,
    /// Its app hash after that height.
    pub last_app_hash: Vec<u8>,
}

/// What the proposer's engine and driver give the app to build a block with (ABCI's
/// `PrepareProposal` request): the app puts this context in its payload (the chain's header
/// does), so every validator checks it and it is agreed with the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalContext {
    /// The height being built.
    pub height: u64,
    /// The proposer, as the engine says (this validator).
    pub proposer: pyralog_crypto::PublicKey,
    /// The last committed block's id (all zero before the first block).
    pub parent: BlockId,
    /// The proposer's clock, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The parent's finality proof as this validator stored it (none at height 1): the payload
    /// carries it, so the next block's app learns who signed the parent (CometBFT's
    /// `LastCommit`).
    pub last_commit: Option<FinalityProof>,
    /// Verified evidence of equivocation not yet in a block, in arrival order, at most as many as
    /// a block carries, each allowed at this height ([`crate::evidence`]): the app carries what fits and what its state has not
    /// punished yet.
    pub evidence: Vec<Evidence>,
    /// The payloads of the blocks between the last committed one and the parent, oldest first
    /// (Proof-of-Work builds on blocks not yet final; empty for engines that do not): an app
    /// screening transactions against its state applies them first.
    pub unfinalised: Vec<Vec<Vec<u8>>>,
}

/// What a validator checks a proposed payload against (ABCI's `ProcessProposal` request, in
/// part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckContext {
    /// The height proposed at.
    pub height: u64,
    /// The last committed block's id (all zero before the first block).
    pub parent: BlockId,
    /// This validator's clock, milliseconds since the Unix epoch (a block time too far ahead of
    /// it is refused).
    pub now_ms: u64,
    /// Whether the block is placed on one not yet final (Proof-of-Work): it then carries no
    /// last commit, and the app's state is the last final block's, not the parent's.
    pub on_unfinalised: bool,
}

/// The context a payload carries, as the app reads it back ([`ReplicatedApp::block_context`]):
/// agreed once decided, since it is part of the decided bytes. Validators check the carried
/// last commit and evidence ([`crate::evidence::ContextRules`]) before voting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockContext {
    /// The block's time, milliseconds since the Unix epoch (0: the payload carries none).
    pub time_ms: u64,
    /// Who proposed it.
    pub proposer: Option<pyralog_crypto::PublicKey>,
    /// The parent's finality proof it carries.
    pub last_commit: Option<FinalityProof>,
    /// The evidence it carries.
    pub evidence: Vec<Evidence>,
}

/// A block as the app sees it in `finalize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedBlock {
    /// Its height.
    pub height: u64,
    /// Its id (header hash).
    pub id: BlockId,
    /// The block's time, milliseconds since the Unix epoch, as the payload carries it
    /// ([`ReplicatedApp::block_context`]; 0 when it carries none).
    pub time_ms: u64,
    /// Its proposer, as the payload carries it.
    pub proposer: Option<pyralog_crypto::PublicKey>,
    /// The transactions, in order.
    pub txs: Vec<Vec<u8>>,
    /// Who signed the parent block's finality proof the payload carries (sorted; empty at
    /// height 1 and for payloads that carry none): for the app's liveness accounting.
    pub last_commit_signers: Vec<pyralog_crypto::PublicKey>,
    /// Misbehaviour the payload proves (double signs), checked by every validator that voted for
    /// the block, for the app to punish.
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

impl From<&Evidence> for Misbehaviour {
    fn from(evidence: &Evidence) -> Self {
        Misbehaviour {
            validator: evidence.validator(),
            height: evidence.height(),
            kind: match evidence {
                Evidence::DuplicateVote(_) => MisbehaviourKind::DuplicateVote,
                Evidence::DuplicateProposal(_) => MisbehaviourKind::DuplicateProposal,
            },
        }
    }
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

    /// The proposer builds a payload from mempool transactions, at most `max_bytes` in total,
    /// carrying `context` (time, proposer, parent) so that validators check it and it is agreed.
    fn prepare_payload(
        &mut self,
        context: &ProposalContext,
        txs: Vec<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, Self::Error>;

    /// A validator checks a proposed payload before voting for it.
    fn process_payload(
        &mut self,
        context: &CheckContext,
        txs: &[Vec<u8>],
    ) -> Result<PayloadVerdict, Self::Error>;

    /// The context a payload carries (what [`ReplicatedApp::prepare_payload`] put in it): the
    /// driver checks its last commit and evidence before `process_payload`, and hands it to
    /// `finalize` in [`DecidedBlock`]. Apps whose payloads carry none keep the default.
    fn block_context(&self, txs: &[Vec<u8>]) -> BlockContext {
        let _ = txs;
        BlockContext::default()
    }

    /// Executes a decided block (not yet durable).
    fn finalize(&mut self, block: &DecidedBlock) -> Result<Finalized, Self::Error>;

    /// Makes the last finalized block's state durable; returns the height that is now
    /// committed.
    fn commit(&mut self) -> Result<u64, Self::Error>;

    /// Reads committed state at `path`.
    fn query(&self, path: &str, data: &[u8]) -> Result<Vec<u8>, Self::Error>;
}
