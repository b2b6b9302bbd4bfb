//! [`AbciAdapter`]: tendermint-abci's `Application` over a [`ReplicatedApp`].
//!
//! What CometBFT's requests become (ABCI 2.0, CometBFT v0.38):
//! - `Info` refuses an ABCI major version other than 2 and reports the app's last committed
//!   height and hash (so CometBFT replays what the app has not committed).
//! - `InitChain` takes ed25519 validator updates and, as `app_state`, the Pyralog genesis file.
//! - `PrepareProposal`/`ProcessProposal` build and check a payload with the request's time,
//!   never the local clock, so every validator decides the same; the proposer comes from
//!   CometBFT's 20-byte address.
//! - `FinalizeBlock` computes the block id from the transactions (never trusting the request's
//!   hash), maps the last commit's votes and misbehaviour to our validators, and executes;
//!   nothing is durable until `Commit`.
//! - Vote extensions are off: `ExtendVote` adds none and only empty ones verify.
//!
//! One lock serializes CometBFT's four connections (consensus, mempool, query, snapshot).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pyralog_consensus_types::app::{
    CheckContext, DecidedBlock, Misbehaviour, MisbehaviourKind, PayloadVerdict, ProposalContext,
    ReplicatedApp,
};
use pyralog_consensus_types::vote::{BlockId, payload_id};
use pyralog_consensus_types::{Validator, ValidatorSet};
use pyralog_crypto::PublicKey;
use tendermint_abci::Application;
use tendermint_proto::v0_38::abci::{
    CommitInfo, ExecTxResult, MisbehaviorType, Request, RequestCheckTx, RequestEcho, RequestExtendVote,
    RequestFinalizeBlock, RequestInfo, RequestInitChain, RequestOfferSnapshot, RequestPrepareProposal,
    RequestProcessProposal, RequestQuery, RequestVerifyVoteExtension, Response, ResponseCheckTx,
    ResponseCommit, ResponseEcho, ResponseException, ResponseExtendVote, ResponseFinalizeBlock,
    ResponseFlush, ResponseInfo, ResponseInitChain, ResponseOfferSnapshot, ResponsePrepareProposal,
    ResponseProcessProposal, ResponseQuery, ResponseVerifyVoteExtension, request, response,
    response_offer_snapshot, response_process_proposal, response_verify_vote_extension,
};
use tendermint_proto::v0_38::types::BlockIdFlag;

use crate::ABCI_MAJOR_VERSION;
use crate::address::{Address, ConvertError, address, millis, update_from_validator, validator_from_update};

/// What the adapter needs from an app besides [`ReplicatedApp`].
pub trait AbciApp: ReplicatedApp {
    /// The validators whose addresses the next block's requests may name (its set and the next).
    fn known_validators(&self) -> Result<Vec<Validator>, Self::Error>;

    /// The last committed block's id (all zero before the first): the next block's parent.
    fn last_block_id(&self) -> Result<BlockId, Self::Error>;

    /// The app state `init_chain` takes, from CometBFT genesis's `app_state` (JSON) for
    /// `chain_id` and its `validators`; `Err` says why they do not agree.
    fn genesis_app_state(
        &self,
        chain_id: &str,
        validators: &[Validator],
        json: &[u8],
    ) -> Result<Vec<u8>, String>;
}

/// Why a request was refused or could not be served: answered with ABCI's `Exception`, which
/// stops CometBFT (it cannot go on with an app that failed or disagrees with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AbciError {
    /// A request without a value.
    #[error("empty request")]
    Empty,
    /// CometBFT speaks another ABCI major version.
    #[error("ABCI version {0:?}: this app speaks ABCI {ABCI_MAJOR_VERSION}")]
    Version(String),
    /// `InitChain` with an initial height other than 1.
    #[error("initial height {0}: this app starts at height 1")]
    InitialHeight(i64),
    /// The genesis `app_state` or validators are not this chain's.
    #[error("genesis app state: {0}")]
    AppState(String),
    /// A block request for a height other than the app's next.
    #[error("a request for height {got}, where the app's next height is {expected}")]
    Height {
        /// The app's next height.
        expected: u64,
        /// The request's.
        got: i64,
    },
    /// A value CometBFT sent that is not one of ours (a key, a power, a time).
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// A proposer address that is not a validator of the block.
    #[error("proposer address {0} is not a validator")]
    UnknownProposer(String),
    /// The payload the app built does not fit CometBFT's `max_tx_bytes`.
    #[error("the payload takes {size} bytes, over the {max} CometBFT allows")]
    Oversized {
        /// Its protobuf size.
        size: usize,
        /// The request's `max_tx_bytes`.
        max: usize,
    },
    /// The app failed (storage): fatal, as the native driver treats it.
    #[error("the app failed: {0}")]
    App(String),
    /// An earlier call panicked while holding the app.
    #[error("the app's lock is poisoned by an earlier panic")]
    Poisoned,
}

/// The ABCI application: the app behind one lock, with the address book that maps CometBFT's
/// validator addresses to keys.
pub struct AbciAdapter<A> {
    shared: Arc<Mutex<Shared<A>>>,
}

impl<A> Clone for AbciAdapter<A> {
    fn clone(&self) -> Self {
        AbciAdapter { shared: self.shared.clone() }
    }
}

struct Shared<A> {
    app: A,
    /// Told each height the app commits (the node's progress).
    on_commit: Option<Box<dyn Fn(u64) + Send>>,
    /// Every validator address seen (never forgotten: a removed validator's vote may still be
    /// in the last commit of the block after).
    book: HashMap<Address, PublicKey>,
}

/// Each transaction's protobuf overhead in CometBFT's `max_tx_bytes` accounting (a field tag and
/// a length, at most 1 + 5 bytes).
const TX_OVERHEAD: usize = 6;

fn app_error<E: std::fmt::Display>(err: E) -> AbciError {
    AbciError::App(err.to_string())
}

impl<A: AbciApp> Shared<A> {
    fn learn(&mut self) -> Result<(), AbciError> {
        for v in self.app.known_validators().map_err(app_error)? {
            self.book.insert(address(&v.key), v.key);
        }
        Ok(())
    }

    fn key(&self, addr: &[u8]) -> Option<PublicKey> {
        let addr: Address = addr.try_into().ok()?;
        self.book.get(&addr).copied()
    }

    fn next_height(&self, got: i64) -> Result<u64, AbciError> {
        let expected = self.app.info().map_err(app_error)?.last_height + 1;
        if u64::try_from(got).ok() != Some(expected) {
            return Err(AbciError::Height { expected, got });
        }
        Ok(expected)
    }

    /// The signers of the last commit, sorted (votes for the block only, as CometBFT's
    /// `BlockIDFlagCommit`).
    fn signers(&self, commit: Option<&CommitInfo>) -> Vec<PublicKey> {
        let mut signers: Vec<PublicKey> = commit
            .into_iter()
            .flat_map(|c| &c.votes)
            .filter(|vote| vote.block_id_flag == BlockIdFlag::Commit as i32)
            .filter_map(|vote| {
                let addr = vote.validator.as_ref().map(|v| v.address.as_ref()).unwrap_or_default();
                let key = self.key(addr);
                if key.is_none() {
                    tracing::warn!(address = %hex::encode(addr), "a last-commit vote of an unknown validator");
                }
                key
            })
            .collect();
        signers.sort();
        signers.dedup();
        signers
    }
}

impl<A: AbciApp + Send + 'static> AbciAdapter<A> {
    /// The adapter over `app`.
    pub fn new(app: A) -> Self {
        AbciAdapter { shared: Arc::new(Mutex::new(Shared { app, on_commit: None, book: HashMap::new() })) }
    }

    /// The same adapter, calling `hook` with each height the app commits.
    pub fn on_commit(self, hook: impl Fn(u64) + Send + 'static) -> Self {
        if let Ok(mut shared) = self.shared.lock() {
            shared.on_commit = Some(Box::new(hook));
        }
        self
    }

    fn lock(&self) -> Result<MutexGuard<'_, Shared<A>>, AbciError> {
        self.shared.lock().map_err(|_| AbciError::Poisoned)
    }

    /// Answers one request; a refused or failed one gets ABCI's `Exception`.
    pub fn dispatch(&self, request: Request) -> Response {
        use request::Value as Q;
        use response::Value as R;
        let answer = match request.value {
            None => Err(AbciError::Empty),
            Some(Q::Echo(req)) => Ok(R::Echo(self.echo(req))),
            Some(Q::Flush(_)) => Ok(R::Flush(ResponseFlush {})),
            Some(Q::Info(req)) => self.try_info(req).map(R::Info),
            Some(Q::InitChain(req)) => self.try_init_chain(req).map(R::InitChain),
            Some(Q::Query(req)) => self.try_query(req).map(R::Query),
            Some(Q::CheckTx(req)) => self.try_check_tx(req).map(R::CheckTx),
            Some(Q::Commit(_)) => self.try_commit().map(R::Commit),
            Some(Q::ListSnapshots(_)) => Ok(R::ListSnapshots(self.list_snapshots())),
            Some(Q::OfferSnapshot(req)) => Ok(R::OfferSnapshot(self.offer_snapshot(req))),
            Some(Q::LoadSnapshotChunk(req)) => Ok(R::LoadSnapshotChunk(self.load_snapshot_chunk(req))),
            Some(Q::ApplySnapshotChunk(req)) => Ok(R::ApplySnapshotChunk(self.apply_snapshot_chunk(req))),
            Some(Q::PrepareProposal(req)) => self.try_prepare_proposal(req).map(R::PrepareProposal),
            Some(Q::ProcessProposal(req)) => self.try_process_proposal(req).map(R::ProcessProposal),
            Some(Q::ExtendVote(req)) => Ok(R::ExtendVote(self.extend_vote(req))),
            Some(Q::VerifyVoteExtension(req)) => Ok(R::VerifyVoteExtension(self.verify_vote_extension(req))),
            Some(Q::FinalizeBlock(req)) => self.try_finalize_block(req).map(R::FinalizeBlock),
        };
        Response {
            value: Some(answer.unwrap_or_else(|err| {
                tracing::error!(%err, "ABCI request refused");
                R::Exception(ResponseException { error: err.to_string() })
            })),
        }
    }

    /// `Info`.
    pub fn try_info(&self, request: RequestInfo) -> Result<ResponseInfo, AbciError> {
        if request.abci_version.split('.').next() != Some(ABCI_MAJOR_VERSION) {
            return Err(AbciError::Version(request.abci_version));
        }
        let info = self.lock()?.app.info().map_err(app_error)?;
        Ok(ResponseInfo {
            data: "pyralog".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version: 1,
            last_block_height: i64::try_from(info.last_height).unwrap_or(i64::MAX),
            last_block_app_hash: info.last_app_hash.into(),
        })
    }

    /// `InitChain`.
    pub fn try_init_chain(&self, request: RequestInitChain) -> Result<ResponseInitChain, AbciError> {
        if !matches!(request.initial_height, 0 | 1) {
            return Err(AbciError::InitialHeight(request.initial_height));
        }
        let validators =
            request.validators.iter().map(validator_from_update).collect::<Result<Vec<_>, _>>()?;
        // In the set's canonical order, as the native driver hands it to the app.
        let validators = ValidatorSet::new(validators)
            .map_err(|e| AbciError::AppState(format!("validators: {e}")))?
            .validators()
            .to_vec();
        let mut shared = self.lock()?;
        let state = shared
            .app
            .genesis_app_state(&request.chain_id, &validators, &request.app_state_bytes)
            .map_err(AbciError::AppState)?;
        let app_hash = shared.app.init_chain(&request.chain_id, &validators, &state).map_err(app_error)?;
        shared.learn()?;
        // No validators in the answer: CometBFT keeps the genesis set it sent.
        Ok(ResponseInitChain { consensus_params: None, validators: Vec::new(), app_hash: app_hash.into() })
    }

    /// `CheckTx` (a refused transaction gets code 1 and the reason).
    pub fn try_check_tx(&self, request: RequestCheckTx) -> Result<ResponseCheckTx, AbciError> {
        let verdict = self.lock()?.app.check_tx(&request.tx).map_err(app_error)?;
        Ok(match verdict {
            Ok(()) => ResponseCheckTx::default(),
            Err(log) => ResponseCheckTx { code: 1, log, ..Default::default() },
        })
    }

    /// `PrepareProposal`: the app builds the payload (its header and consensus info first) from
    /// CometBFT's mempool transactions, within `max_tx_bytes`.
    pub fn try_prepare_proposal(
        &self,
        request: RequestPrepareProposal,
    ) -> Result<ResponsePrepareProposal, AbciError> {
        let mut shared = self.lock()?;
        let height = shared.next_height(request.height)?;
        shared.learn()?;
        let proposer = shared
            .key(&request.proposer_address)
            .ok_or_else(|| AbciError::UnknownProposer(hex::encode(&request.proposer_address)))?;
        let context = ProposalContext {
            height,
            proposer,
            parent: shared.app.last_block_id().map_err(app_error)?,
            time_ms: millis(request.time.as_ref())?,
            last_commit: None,
            evidence: Vec::new(),
            unfinalised: Vec::new(),
        };
        let max = usize::try_from(request.max_tx_bytes).unwrap_or(0);
        let candidates: Vec<Vec<u8>> = request.txs.iter().map(|tx| tx.to_vec()).collect();
        let budget = max.saturating_sub(TX_OVERHEAD * (candidates.len() + 2));
        let txs = shared.app.prepare_payload(&context, candidates, budget).map_err(app_error)?;
        let size = txs.iter().map(|tx| TX_OVERHEAD + tx.len()).sum::<usize>();
        if size > max {
            return Err(AbciError::Oversized { size, max });
        }
        Ok(ResponsePrepareProposal { txs: txs.into_iter().map(Into::into).collect() })
    }

    /// `ProcessProposal`: the app's checks, plus the payload's own time and proposer against
    /// CometBFT's for the block.
    pub fn try_process_proposal(
        &self,
        request: RequestProcessProposal,
    ) -> Result<ResponseProcessProposal, AbciError> {
        let mut shared = self.lock()?;
        let height = shared.next_height(request.height)?;
        shared.learn()?;
        let time_ms = millis(request.time.as_ref())?;
        let txs: Vec<Vec<u8>> = request.txs.iter().map(|tx| tx.to_vec()).collect();
        let carried = shared.app.block_context(&txs);
        let proposer = shared.key(&request.proposer_address);
        let refusal = if proposer.is_none() {
            Some(format!("proposer address {} is not a validator", hex::encode(&request.proposer_address)))
        } else if carried.time_ms != 0 && carried.time_ms != time_ms {
            Some(format!("the payload's time {} is not the block's {time_ms}", carried.time_ms))
        } else if carried.proposer.is_some() && carried.proposer != proposer {
            Some("the payload names another proposer than the block's".into())
        } else {
            None
        };
        let verdict = match refusal {
            Some(why) => {
                tracing::info!(height, %why, "proposal rejected");
                PayloadVerdict::Reject
            }
            None => {
                let parent = shared.app.last_block_id().map_err(app_error)?;
                let context = CheckContext { height, parent, now_ms: time_ms, on_unfinalised: false };
                shared.app.process_payload(&context, &txs).map_err(app_error)?
            }
        };
        let status = match verdict {
            PayloadVerdict::Accept => response_process_proposal::ProposalStatus::Accept,
            PayloadVerdict::Reject => response_process_proposal::ProposalStatus::Reject,
        };
        Ok(ResponseProcessProposal { status: status as i32 })
    }

    /// `FinalizeBlock`: executes the decided block (durable only at `Commit`).
    pub fn try_finalize_block(
        &self,
        request: RequestFinalizeBlock,
    ) -> Result<ResponseFinalizeBlock, AbciError> {
        let mut shared = self.lock()?;
        let height = shared.next_height(request.height)?;
        shared.learn()?;
        let txs: Vec<Vec<u8>> = request.txs.iter().map(|tx| tx.to_vec()).collect();
        let carried = shared.app.block_context(&txs);
        let time_ms = match carried.time_ms {
            0 => millis(request.time.as_ref())?,
            carried => carried,
        };
        let evidence = request
            .misbehavior
            .iter()
            .filter_map(|m| {
                let addr = m.validator.as_ref().map(|v| v.address.as_ref()).unwrap_or_default();
                let kind = match MisbehaviorType::try_from(m.r#type) {
                    Ok(MisbehaviorType::DuplicateVote) => MisbehaviourKind::DuplicateVote,
                    other => {
                        tracing::warn!(?other, "misbehaviour of a kind this app does not punish");
                        return None;
                    }
                };
                let Some(validator) = shared.key(addr) else {
                    tracing::warn!(address = %hex::encode(addr), "misbehaviour of an unknown validator");
                    return None;
                };
                Some(Misbehaviour { validator, height: u64::try_from(m.height).ok()?, kind })
            })
            .collect();
        let block = DecidedBlock {
            height,
            // Ours, from the transactions: the header the light client checks hashes to it.
            id: payload_id(&txs),
            time_ms,
            proposer: carried.proposer.or_else(|| shared.key(&request.proposer_address)),
            last_commit_signers: shared.signers(request.decided_last_commit.as_ref()),
            evidence,
            txs,
        };
        let finalized = shared.app.finalize(&block).map_err(app_error)?;
        Ok(ResponseFinalizeBlock {
            events: Vec::new(),
            tx_results: finalized
                .tx_results
                .into_iter()
                .map(|r| ExecTxResult { code: r.code, log: r.log, ..Default::default() })
                .collect(),
            validator_updates: finalized.validator_updates.iter().map(update_from_validator).collect(),
            consensus_param_updates: None,
            app_hash: finalized.app_hash.into(),
        })
    }

    /// `Commit`: the finalized block's state becomes durable.
    pub fn try_commit(&self) -> Result<ResponseCommit, AbciError> {
        let mut shared = self.lock()?;
        let height = shared.app.commit().map_err(app_error)?;
        if let Some(hook) = &shared.on_commit {
            hook(height);
        }
        Ok(ResponseCommit { retain_height: 0 })
    }

    /// `Query`: the app's committed state (the latest height only; code 1 for another).
    pub fn try_query(&self, request: RequestQuery) -> Result<ResponseQuery, AbciError> {
        let shared = self.lock()?;
        let last = shared.app.info().map_err(app_error)?.last_height;
        let height = i64::try_from(last).unwrap_or(i64::MAX);
        if request.height != 0 && request.height != height {
            return Ok(ResponseQuery {
                code: 1,
                log: format!("only the latest state ({last}) is served here"),
                height,
                ..Default::default()
            });
        }
        let value = shared.app.query(&request.path, &request.data).map_err(app_error)?;
        Ok(ResponseQuery { value: value.into(), key: request.data, height, ..Default::default() })
    }
}

/// The trait CometBFT-facing code (and tendermint-abci's own server) calls. Refusals and app
/// failures cannot be an `Exception` here: they are logged and answered with a code where the
/// response has one; [`AbciAdapter::dispatch`] (what [`crate::AbciServer`] calls) answers them
/// with `Exception`.
impl<A: AbciApp + Send + 'static> Application for AbciAdapter<A> {
    fn echo(&self, request: RequestEcho) -> ResponseEcho {
        ResponseEcho { message: request.message }
    }

    fn info(&self, request: RequestInfo) -> ResponseInfo {
        self.try_info(request).unwrap_or_else(logged)
    }

    fn init_chain(&self, request: RequestInitChain) -> ResponseInitChain {
        self.try_init_chain(request).unwrap_or_else(logged)
    }

    fn query(&self, request: RequestQuery) -> ResponseQuery {
        self.try_query(request).unwrap_or_else(|err| ResponseQuery {
            code: 1,
            log: err.to_string(),
            ..Default::default()
        })
    }

    fn check_tx(&self, request: RequestCheckTx) -> ResponseCheckTx {
        self.try_check_tx(request).unwrap_or_else(|err| ResponseCheckTx {
            code: 1,
            log: err.to_string(),
            ..Default::default()
        })
    }

    fn commit(&self) -> ResponseCommit {
        self.try_commit().unwrap_or_else(logged)
    }

    fn offer_snapshot(&self, _request: RequestOfferSnapshot) -> ResponseOfferSnapshot {
        // No state sync: this app serves no snapshots and takes none.
        ResponseOfferSnapshot { result: response_offer_snapshot::Result::Reject as i32 }
    }

    fn prepare_proposal(&self, request: RequestPrepareProposal) -> ResponsePrepareProposal {
        self.try_prepare_proposal(request).unwrap_or_else(logged)
    }

    fn process_proposal(&self, request: RequestProcessProposal) -> ResponseProcessProposal {
        self.try_process_proposal(request).unwrap_or_else(|err| {
            tracing::error!(%err, "ABCI request refused");
            ResponseProcessProposal { status: response_process_proposal::ProposalStatus::Reject as i32 }
        })
    }

    fn extend_vote(&self, _request: RequestExtendVote) -> ResponseExtendVote {
        ResponseExtendVote { vote_extension: Default::default() }
    }

    fn verify_vote_extension(&self, request: RequestVerifyVoteExtension) -> ResponseVerifyVoteExtension {
        use response_verify_vote_extension::VerifyStatus;
        let status =
            if request.vote_extension.is_empty() { VerifyStatus::Accept } else { VerifyStatus::Reject };
        ResponseVerifyVoteExtension { status: status as i32 }
    }

    fn finalize_block(&self, request: RequestFinalizeBlock) -> ResponseFinalizeBlock {
        self.try_finalize_block(request).unwrap_or_else(logged)
    }
}

fn logged<T: Default>(err: AbciError) -> T {
    tracing::error!(%err, "ABCI request refused");
    T::default()
}
