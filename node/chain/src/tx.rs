//! Chain transactions: what an account signs, and how it travels.
//!
//! A transaction names its chain, its sender (an ed25519 account key), the sender's next nonce
//! and a fee, and carries one action. The sender signs the postcard encoding of all of that
//! under its own signing context; the wire form is the postcard encoding of the signed
//! transaction, at most [`MAX_TX_BYTES`]. A transaction's id hashes its *re-encoded* form, so
//! two byte strings that decode to the same transaction have one id.

use pyralog_crypto::light::CHECKPOINT_THRESHOLD;
use pyralog_crypto::merkle::{Blake3Merkle, ConsistencyProof};
use pyralog_crypto::quorum::Signable;
use pyralog_crypto::{
    Checkpoint, ClusterId, Digest, Domain, Keypair, PublicKey, QuorumCertificate, Signature,
};
use serde::{Deserialize, Serialize};

use crate::values::{MIN_FEE, code_fee, fuel_fee};

/// The largest transaction on the wire.
pub const MAX_TX_BYTES: usize = 64 * 1024;

/// Most members a cluster may register.
pub const MAX_CLUSTER_MEMBERS: usize = 16;

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Registers a cluster with its replicas' keys and peer addresses (multiaddrs); the sender
    /// owns it and may register it again to change its members.
    RegisterCluster {
        /// The cluster.
        cluster: ClusterId,
        /// Its replicas' checkpoint-signing keys.
        members: Vec<PublicKey>,
        /// Where to reach them on the overlay.
        peers: Vec<String>,
    },
    /// Anchors a partition's certified checkpoint. Refused unless a majority of the cluster's
    /// registered members signed it and it extends the partition's previous anchor (the proof
    /// travels with it).
    AnchorCheckpoint {
        /// The checkpoint and its signatures.
        certificate: QuorumCertificate<Checkpoint>,
        /// Consistency from the previous anchor, when the partition grew since.
        consistency: Option<ConsistencyProof<Blake3Merkle>>,
    },
    /// Moves `amount` to `to`.
    Transfer {
        /// The receiver.
        to: PublicKey,
        /// How much.
        amount: u64,
    },
    /// Proof-of-Stake: makes the sender the operator of a new validator that signs with
    /// `consensus_key`, bonding `self_bond` of its balance (at least one unit of power).
    CreateValidator {
        /// The key that will sign votes (a node key).
        consensus_key: PublicKey,
        /// Tokens the operator bonds to it.
        self_bond: u64,
        /// Commission on rewards, in basis points.
        commission_bps: u16,
        /// The highest commission it may ever set, in basis points.
        max_commission_bps: u16,
        /// Free text (at most 256 bytes).
        description: String,
    },
    /// Proof-of-Stake: bonds `amount` of the sender's balance to the validator of `validator`
    /// (its operator key).
    Delegate {
        /// The validator's operator.
        validator: PublicKey,
        /// Tokens to bond.
        amount: u64,
    },
    /// Proof-of-Stake: starts unbonding `amount` of the sender's tokens from `validator`; they
    /// return to the balance when the unbonding period has passed (in blocks and in time).
    Unbond {
        /// The validator's operator.
        validator: PublicKey,
        /// Tokens to unbond.
        amount: u64,
    },
    /// Proof-of-Stake: the operator asks for its jailed validator to return to the candidates
    /// once its jail time is over.
    Unjail,
    /// Proof-of-Stake: the operator changes its validator's commission or description.
    EditValidator {
        /// The new commission, in basis points (at most the maximum set at creation).
        commission_bps: Option<u16>,
        /// The new description.
        description: Option<String>,
    },
    /// Stores WASM contract code under its hash (storing the same code again changes nothing).
    /// The fee pays [`code_fee`] of its size on top of the minimum.
    DeployCode {
        /// The module.
        wasm: Vec<u8>,
    },
    /// Creates a contract running stored code, with id [`crate::values::contract_id`] of the
    /// sender and this transaction's nonce; runs its `init` entry (when it exports one) with
    /// `input`. `value` moves from the sender to the contract; `fuel` bounds `init`, paid by
    /// the fee.
    Instantiate {
        /// The [`crate::values::code_hash`] of stored code.
        code: Digest,
        /// `init`'s input.
        input: Vec<u8>,
        /// Tokens the contract starts with.
        value: u64,
        /// The most fuel `init` may burn.
        fuel: u64,
    },
    /// Calls `entry` of a contract with `input`, attaching `value` tokens; `fuel` bounds it,
    /// paid by the fee (what it did not burn is refunded when it completes).
    CallContract {
        /// The contract's id.
        contract: Digest,
        /// The exported entry point.
        entry: String,
        /// Its input.
        input: Vec<u8>,
        /// Tokens moved to the contract with the call.
        value: u64,
        /// The most fuel it may burn.
        fuel: u64,
    },
}

impl Action {
    /// The lowest fee a transaction carrying this action may pay: [`MIN_FEE`], plus the
    /// fuel a contract call may burn or the bytes a deployment stores.
    pub fn min_fee(&self) -> u64 {
        let extra = match self {
            Action::DeployCode { wasm } => code_fee(wasm.len()),
            Action::Instantiate { fuel, .. } | Action::CallContract { fuel, .. } => fuel_fee(*fuel),
            _ => 0,
        };
        MIN_FEE.saturating_add(extra)
    }
}

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tx {
    /// The chain it is for (replay protection across chains).
    pub chain_id: String,
    /// The account that signs and pays.
    pub sender: PublicKey,
    /// The sender's next nonce (replay protection within the chain).
    pub nonce: u64,
    /// Paid to the chain whether or not the action succeeds (spam costs).
    pub fee: u64,
    /// What it does.
    pub action: Action,
}

impl Signable for Tx {
    const SIGNING_CONTEXT: &'static [u8] = b"pyralog/chain/tx/v1\0";

    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("transactions serialize")
    }
}

/// A transaction with its sender's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// The transaction.
    pub tx: Tx,
    /// The sender's signature over [`Tx::signing_bytes`].
    pub signature: Signature,
}

/// Why bytes are not a valid transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// Over [`MAX_TX_BYTES`].
    #[error("transaction of {0} bytes over the {MAX_TX_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not a transaction encoding.
    #[error("undecodable transaction: {0}")]
    Undecodable(String),
    /// For another chain.
    #[error("transaction for chain {got:?}, this is {expected:?}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The transaction's.
        got: String,
    },
    /// The signature is not the sender's.
    #[error("signature does not verify for sender {0}")]
    BadSignature(PublicKey),
}

impl SignedTx {
    /// Signs `tx` with `key` (which must be the sender's).
    pub fn sign(tx: Tx, key: &Keypair) -> Self {
        let signature = key.sign(&tx.signing_bytes());
        SignedTx { tx, signature }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("transactions serialize")
    }

    /// The id: the hash of the re-encoded transaction.
    pub fn id(&self) -> Digest {
        Domain::ChainTx.hash(&self.encode())
    }

    /// Decodes `bytes` and checks size, chain and signature (not the nonce or the balance:
    /// those depend on the state).
    pub fn decode_and_verify(bytes: &[u8], chain_id: &str) -> Result<SignedTx, TxError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge(bytes.len()));
        }
        let signed: SignedTx =
            postcard::from_bytes(bytes).map_err(|e| TxError::Undecodable(e.to_string()))?;
        if signed.tx.chain_id != chain_id {
            return Err(TxError::WrongChain { expected: chain_id.into(), got: signed.tx.chain_id });
        }
        signed
            .tx
            .sender
            .verify(&signed.tx.signing_bytes(), &signed.signature)
            .map_err(|_| TxError::BadSignature(signed.tx.sender))?;
        Ok(signed)
    }
}

/// The signatures a checkpoint needs to be anchored (the light client's rule).
pub const ANCHOR_THRESHOLD: pyralog_crypto::Threshold = CHECKPOINT_THRESHOLD;
