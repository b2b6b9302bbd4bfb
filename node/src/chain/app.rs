//! The chain application: the [`ReplicatedApp`] the Pyralog Network's validators replicate.
//!
//! State (in the authenticated [`StateStore`], one version per height, version 0 the genesis):
//! - `account/<key>`: balance and next nonce;
//! - `cluster/<id>`: a registered cluster's owner, replica keys and peer addresses;
//! - `anchor/<cluster>/<log>/<partition>`: the partition's latest anchored checkpoint with its
//!   certificate and the height that anchored it.
//!
//! A transaction with a valid signature, the sender's next nonce and a fee the sender can pay
//! always charges the fee and takes the nonce, even when its action fails (so a failing
//! transaction still costs its sender, as in Ethereum); anything else changes nothing.

use std::collections::BTreeMap;

use pyralog_consensus::Validator;
use pyralog_consensus::app::{AppInfo, DecidedBlock, Finalized, PayloadVerdict, ReplicatedApp, TxResult};
use pyralog_crypto::light::check_extends;
use pyralog_crypto::{Checkpoint, ClusterId, MemberSet, PublicKey, QuorumCertificate};
use serde::{Deserialize, Serialize};

use super::state::{StateError, StateStore};
use super::tx::{ANCHOR_THRESHOLD, Action, MAX_CLUSTER_MEMBERS, SignedTx, Tx};

/// An account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance.
    pub balance: u64,
    /// The nonce its next transaction must carry.
    pub nonce: u64,
}

/// A registered cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// Who may re-register it.
    pub owner: PublicKey,
    /// Its replicas' checkpoint-signing keys.
    pub members: Vec<PublicKey>,
    /// Their overlay addresses.
    pub peers: Vec<String>,
}

/// A partition's latest anchored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The certified checkpoint.
    pub certificate: QuorumCertificate<Checkpoint>,
    /// The height of the block that anchored it.
    pub height: u64,
}

/// The genesis app state: initial balances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Accounts and their balances.
    pub accounts: Vec<(PublicKey, u64)>,
}

/// The lowest fee a transaction may carry (spam costs at least this).
pub const MIN_FEE: u64 = 1;

/// The state key of an account.
pub fn account_key(key: &PublicKey) -> Vec<u8> {
    [b"account/".as_slice(), key.as_bytes()].concat()
}

/// The state key of a cluster.
pub fn cluster_key(cluster: &ClusterId) -> Vec<u8> {
    format!("cluster/{cluster}").into_bytes()
}

/// The state key of a partition's anchor.
pub fn anchor_key(checkpoint: &Checkpoint) -> Vec<u8> {
    format!("anchor/{}/{}/{}", checkpoint.cluster, checkpoint.log, checkpoint.partition).into_bytes()
}

/// Result codes of transactions in a block.
pub mod codes {
    /// Applied.
    pub const OK: u32 = 0;
    /// Undecodable, another chain, or a bad signature.
    pub const INVALID: u32 = 1;
    /// Not the sender's next nonce.
    pub const BAD_NONCE: u32 = 2;
    /// The sender cannot pay the fee (or the fee is under the minimum).
    pub const FEE: u32 = 3;
    /// The action failed (its fee was charged).
    pub const ACTION_FAILED: u32 = 4;
}

/// A transaction that may apply (decoded, with its sender's account), or why not (a result code
/// and a log).
type Screened = Result<(SignedTx, Account), (u32, String)>;

/// The chain application over its state store.
pub struct ChainApp {
    chain_id: String,
    state: StateStore,
    /// The height `finalize` last wrote (what `commit` reports).
    last_height: u64,
}

/// A storage failure of the app (fatal to the node, as the driver treats app errors).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct AppError(#[from] StateError);

/// Reads through the block's pending writes to the committed state.
struct Overlay<'a> {
    state: &'a StateStore,
    version: Option<u64>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Overlay<'_> {
    fn get<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, StateError> {
        let bytes = match self.writes.get(key) {
            Some(value) => value.clone(),
            None => match self.version {
                Some(version) => self.state.get(key, version)?,
                None => None,
            },
        };
        bytes
            .map(|b| postcard::from_bytes(&b))
            .transpose()
            .map_err(|e| StateError::Corrupt { what: "chain state value", reason: e.to_string() })
    }

    fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        self.writes.insert(key, Some(postcard::to_allocvec(value).expect("state values serialize")));
    }

    fn account(&self, key: &PublicKey) -> Result<Account, StateError> {
        Ok(self.get(&account_key(key))?.unwrap_or_default())
    }
}

impl ChainApp {
    /// The app of `chain_id` over `state`.
    pub fn new(chain_id: impl Into<String>, state: StateStore) -> Self {
        let last_height = state.latest_version().ok().flatten().unwrap_or(0);
        ChainApp { chain_id: chain_id.into(), state, last_height }
    }

    /// The state store (for RPC reads and proofs).
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    fn overlay(&self) -> Result<Overlay<'_>, StateError> {
        Ok(Overlay { state: &self.state, version: self.state.latest_version()?, writes: BTreeMap::new() })
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
        if signed.tx.fee < MIN_FEE || signed.tx.fee > account.balance {
            let why =
                format!("fee {} (minimum {MIN_FEE}) with a balance of {}", signed.tx.fee, account.balance);
            return Ok(Err((codes::FEE, why)));
        }
        Ok(Ok((signed, account)))
    }

    /// Runs one transaction on `view`.
    fn deliver(&self, view: &mut Overlay<'_>, bytes: &[u8], height: u64) -> Result<TxResult, StateError> {
        let (signed, mut account) = match self.screen(view, bytes)? {
            Ok(screened) => screened,
            Err((code, log)) => return Ok(TxResult { code, log }),
        };
        let Tx { sender, fee, action, .. } = signed.tx;
        account.balance -= fee;
        account.nonce += 1;
        view.put(account_key(&sender), &account);
        Ok(match apply(view, &sender, action, height)? {
            Ok(log) => TxResult { code: codes::OK, log },
            Err(log) => TxResult { code: codes::ACTION_FAILED, log },
        })
    }
}

/// Applies one action for `sender` (fee and nonce already taken); `Err` is why it failed.
fn apply(
    view: &mut Overlay<'_>,
    sender: &PublicKey,
    action: Action,
    height: u64,
) -> Result<Result<String, String>, StateError> {
    match action {
        Action::Transfer { to, amount } => {
            let mut from = view.account(sender)?;
            if amount > from.balance {
                return Ok(Err(format!("balance {} under the amount {amount}", from.balance)));
            }
            from.balance -= amount;
            view.put(account_key(sender), &from);
            let mut receiver = view.account(&to)?;
            receiver.balance = match receiver.balance.checked_add(amount) {
                Some(balance) => balance,
                None => return Ok(Err("the receiver's balance would overflow".into())),
            };
            view.put(account_key(&to), &receiver);
            Ok(Ok(format!("moved {amount}")))
        }
        Action::RegisterCluster { cluster, members, peers } => {
            if members.is_empty() || members.len() > MAX_CLUSTER_MEMBERS {
                return Ok(Err(format!(
                    "a cluster has 1 to {MAX_CLUSTER_MEMBERS} members, not {}",
                    members.len()
                )));
            }
            if MemberSet::equal(members.iter().copied()).is_err() {
                return Ok(Err("members must be distinct".into()));
            }
            if let Some(existing) = view.get::<ClusterRecord>(&cluster_key(&cluster))? {
                if existing.owner != *sender {
                    return Ok(Err(format!("cluster {cluster} is registered by {}", existing.owner)));
                }
            }
            view.put(cluster_key(&cluster), &ClusterRecord { owner: *sender, members, peers });
            Ok(Ok(format!("registered {cluster}")))
        }
        Action::AnchorCheckpoint { certificate, consistency } => {
            let checkpoint = &certificate.message;
            let Some(cluster) = view.get::<ClusterRecord>(&cluster_key(&checkpoint.cluster))? else {
                return Ok(Err(format!("cluster {} is not registered", checkpoint.cluster)));
            };
            let members = MemberSet::equal(cluster.members.iter().copied()).expect("checked at registration");
            if let Err(err) = certificate.verify(&members, ANCHOR_THRESHOLD) {
                return Ok(Err(format!("checkpoint certificate: {err}")));
            }
            let key = anchor_key(checkpoint);
            if let Some(previous) = view.get::<Anchor>(&key)? {
                if let Err(err) =
                    check_extends(&previous.certificate.message, checkpoint, consistency.as_ref())
                {
                    return Ok(Err(format!("inconsistent with the anchored checkpoint: {err}")));
                }
            }
            let summary = format!("anchored {key:?} at size {}", checkpoint.size);
            view.put(key, &Anchor { certificate, height });
            Ok(Ok(summary.replace('"', "")))
        }
    }
}

impl ReplicatedApp for ChainApp {
    type Error = AppError;

    fn info(&self) -> Result<AppInfo, AppError> {
        let last_height = self.state.latest_version()?.unwrap_or(0);
        let last_app_hash = match self.state.latest_version()? {
            Some(version) => self.state.root(version)?.to_vec(),
            None => Vec::new(),
        };
        Ok(AppInfo { last_height, last_app_hash })
    }

    fn init_chain(&mut self, chain_id: &str, _: &[Validator], app_state: &[u8]) -> Result<Vec<u8>, AppError> {
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
        let writes = genesis.accounts.iter().map(|(key, balance)| {
            (
                account_key(key),
                Some(postcard::to_allocvec(&Account { balance: *balance, nonce: 0 }).expect("serializes")),
            )
        });
        Ok(self.state.commit(0, writes.collect::<Vec<_>>())?.to_vec())
    }

    fn check_tx(&self, tx: &[u8]) -> Result<Result<(), String>, AppError> {
        let view = self.overlay()?;
        Ok(self.screen(&view, tx)?.map(|_| ()).map_err(|(_, log)| log))
    }

    fn prepare_payload(
        &mut self,
        _: u64,
        candidates: Vec<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, AppError> {
        // Candidates in mempool order, screened in sequence (a sender's consecutive nonces).
        let mut view = self.overlay()?;
        let mut picked = Vec::new();
        let mut room = max_bytes;
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
        Ok(picked)
    }

    fn process_payload(&mut self, _: u64, txs: &[Vec<u8>]) -> Result<PayloadVerdict, AppError> {
        // A block may carry failing transactions (they get a result code), but not ones that
        // could never have been valid: undecodable, unsigned, or over the size limit.
        let valid = txs.iter().all(|tx| SignedTx::decode_and_verify(tx, &self.chain_id).is_ok());
        Ok(if valid { PayloadVerdict::Accept } else { PayloadVerdict::Reject })
    }

    fn finalize(&mut self, block: &DecidedBlock) -> Result<Finalized, AppError> {
        let mut view = self.overlay()?;
        let mut tx_results = Vec::with_capacity(block.txs.len());
        for tx in &block.txs {
            tx_results.push(self.deliver(&mut view, tx, block.height)?);
        }
        let writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = view.writes.into_iter().collect();
        let root = self.state.commit(block.height, writes)?;
        self.last_height = block.height;
        Ok(Finalized { tx_results, validator_updates: Vec::new(), app_hash: root.to_vec() })
    }

    fn commit(&mut self) -> Result<u64, AppError> {
        // `finalize` already wrote the block's state durably (one RocksDB batch).
        Ok(self.last_height)
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
