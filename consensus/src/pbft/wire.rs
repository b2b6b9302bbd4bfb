//! PBFT's messages: what each one signs, how it is checked on its own, and its bytes on the wire
//! (postcard). PREPARE and COMMIT are the shared [`Vote`]s (prevote and precommit, the round
//! being the view), and the PRE-PREPARE signs the shared [`ProposalHeader`] (the round being the
//! view, the proof-of-lock round the view of the prepared certificate it re-proposes): so a
//! commit certificate is the quorum certificate every light client checks, and equivocation is
//! proven by the same evidence kinds as Tendermint's.

use pyralog_crypto::quorum::{Signable, SignatureShare};
use pyralog_crypto::{PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::core::Signer;
use crate::validators::{QUORUM, ValidatorSet};
use crate::vote::{BlockId, CommitCertificate, ProposalHeader, Vote, VoteKind, payload_id};

/// The largest message the engine decodes (a proposal carries its whole payload; a VIEW-CHANGE
/// may carry one too).
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;

/// The most VIEW-CHANGEs a NEW-VIEW may carry (one per validator of the largest set we accept).
const MAX_VIEW_CHANGES: usize = 1024;

/// A primary's signed proposal of `block` at `(height, view)` (without the payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrePrepare {
    /// The height (PBFT's sequence number).
    pub height: u64,
    /// The view.
    pub view: u32,
    /// The view of the prepared certificate a NEW-VIEW re-proposes it from, or -1.
    pub prepared_view: i64,
    /// The block: the id of its payload.
    pub block: BlockId,
    /// Who signed it.
    pub proposer: PublicKey,
    /// Its signature over [`PrePrepare::header`].
    pub signature: Signature,
}

impl PrePrepare {
    /// What the primary signs.
    pub fn header(&self, chain_id: &str) -> ProposalHeader {
        ProposalHeader {
            chain_id: chain_id.into(),
            height: self.height,
            round: i64::from(self.view),
            pol_round: self.prepared_view,
            block: self.block,
        }
    }

    /// The signing bytes (checked by the engine, through its cache).
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        self.header(chain_id).signing_bytes()
    }
}

/// A PRE-PREPARE with its payload, and, for a replica that starts the height in another view,
/// the commit certificate of the previous height in the proposal's view (why this view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The signed PRE-PREPARE.
    pub pre_prepare: PrePrepare,
    /// The payload: it must hash to `pre_prepare.block`.
    pub txs: Vec<Vec<u8>>,
    /// The previous height's commit certificate of view `pre_prepare.view`, if the primary has one.
    pub view_proof: Option<CommitCertificate>,
}

impl Proposal {
    /// `txs` proposed by `signer` at `(height, view)`, re-proposed from `prepared_view` (-1: a
    /// fresh payload); no view proof.
    pub fn sign(
        signer: &dyn Signer,
        chain_id: &str,
        height: u64,
        view: u32,
        prepared_view: i64,
        txs: Vec<Vec<u8>>,
    ) -> Proposal {
        let block = payload_id(&txs);
        let header = ProposalHeader {
            chain_id: chain_id.into(),
            height,
            round: i64::from(view),
            pol_round: prepared_view,
            block,
        };
        let signature = signer.sign(&header.signing_bytes());
        let pre_prepare =
            PrePrepare { height, view, prepared_view, block, proposer: signer.public_key(), signature };
        Proposal { pre_prepare, txs, view_proof: None }
    }
}

/// A PREPARE or COMMIT as it travels: the vote's fields and one signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedVote {
    /// The height.
    pub height: u64,
    /// The view.
    pub view: u32,
    /// The block.
    pub block: BlockId,
    /// Who signed it.
    pub signer: PublicKey,
    /// The signature over the shared [`Vote`] (prevote for PREPARE, precommit for COMMIT).
    pub signature: Signature,
}

impl SignedVote {
    /// The vote it signs.
    pub fn vote(&self, chain_id: &str, kind: VoteKind) -> Vote {
        Vote {
            chain_id: chain_id.into(),
            height: self.height,
            round: self.view,
            kind,
            block: Some(self.block),
        }
    }

    /// `signer`'s vote of `kind` (prevote: PREPARE, precommit: COMMIT) for `block` at
    /// `(height, view)`.
    pub fn sign(
        signer: &dyn Signer,
        chain_id: &str,
        kind: VoteKind,
        height: u64,
        view: u32,
        block: BlockId,
    ) -> Self {
        let vote = Vote { chain_id: chain_id.into(), height, round: view, kind, block: Some(block) };
        SignedVote {
            height,
            view,
            block,
            signer: signer.public_key(),
            signature: signer.sign(&vote.signing_bytes()),
        }
    }

    /// Its share of a certificate.
    pub fn share(&self) -> SignatureShare {
        SignatureShare { signer: self.signer, signature: self.signature }
    }
}

/// Proof that a block was prepared at `(height, view)`: its signed PRE-PREPARE and PREPAREs of
/// more than 2/3 of the voting power.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedCertificate {
    /// The PRE-PREPARE.
    pub pre_prepare: PrePrepare,
    /// The PREPAREs (prevotes for the block in the PRE-PREPARE's view).
    pub prepares: Vec<SignatureShare>,
}

impl PreparedCertificate {
    /// The view it was prepared in.
    pub fn view(&self) -> u32 {
        self.pre_prepare.view
    }

    /// The prepared block.
    pub fn block(&self) -> BlockId {
        self.pre_prepare.block
    }

    /// The PREPARE quorum as a certificate over the shared vote.
    pub fn prepare_certificate(&self, chain_id: &str) -> crate::vote::CommitCertificate {
        let p = &self.pre_prepare;
        let message = Vote {
            chain_id: chain_id.into(),
            height: p.height,
            round: p.view,
            kind: VoteKind::Prevote,
            block: Some(p.block),
        };
        CommitCertificate { message, signatures: self.prepares.clone() }
    }

    /// Whether it proves what it says at `height` under `validators`: the PRE-PREPARE is signed
    /// by the primary of its view, and the PREPAREs of distinct validators with more than 2/3 of
    /// the power sign the same block in the same view.
    pub fn verify(&self, chain_id: &str, height: u64, validators: &ValidatorSet) -> Result<(), String> {
        let p = &self.pre_prepare;
        if p.height != height {
            return Err(format!("a prepared certificate of height {}, not {height}", p.height));
        }
        if p.proposer != super::primary(validators, p.view) {
            return Err(format!("the PRE-PREPARE of view {} is not signed by its primary", p.view));
        }
        p.proposer
            .verify(&p.signing_bytes(chain_id), &p.signature)
            .map_err(|_| format!("the PRE-PREPARE of view {} has a bad signature", p.view))?;
        self.prepare_certificate(chain_id)
            .verify(validators.members(), QUORUM)
            .map(drop)
            .map_err(|e| format!("the PREPAREs of view {}: {e}", p.view))
    }
}

/// What a VIEW-CHANGE signs: the chain, the height, the view it moves to, and the highest
/// prepared certificate's view and block (none: nothing prepared at this height).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewChangeVote {
    /// The chain.
    pub chain_id: String,
    /// The height.
    pub height: u64,
    /// The view it asks for.
    pub view: u32,
    /// The view and block of the sender's highest prepared certificate.
    pub prepared: Option<(u32, BlockId)>,
}

impl Signable for ViewChangeVote {
    const SIGNING_CONTEXT: &'static [u8] = b"pyralog/consensus/pbft/view-change/v1\0";

    /// Chain id length (u16 BE) and bytes, height (u64 BE), view (u32 BE), then 0 (nothing
    /// prepared) or 1, the prepared view (u32 BE) and the 32-byte block id.
    fn encode(&self) -> Vec<u8> {
        let chain = self.chain_id.as_bytes();
        let mut bytes = Vec::with_capacity(2 + chain.len() + 8 + 4 + 1 + 4 + 32);
        bytes.extend_from_slice(&u16::try_from(chain.len()).unwrap_or(u16::MAX).to_be_bytes());
        bytes.extend_from_slice(chain);
        bytes.extend_from_slice(&self.height.to_be_bytes());
        bytes.extend_from_slice(&self.view.to_be_bytes());
        match &self.prepared {
            None => bytes.push(0),
            Some((view, block)) => {
                bytes.push(1);
                bytes.extend_from_slice(&view.to_be_bytes());
                bytes.extend_from_slice(&block.0);
            }
        }
        bytes
    }
}

/// A replica's request to move to `view` at `height`, with what the new primary needs to keep
/// whatever may have committed: its highest prepared certificate (and that block's payload, so
/// the primary can re-propose it), and its commit certificate of the previous height (which a
/// replica still there commits from, and which shows the view the sender started the height in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewChange {
    /// The height.
    pub height: u64,
    /// The view it asks for.
    pub view: u32,
    /// Who asks.
    pub signer: PublicKey,
    /// Its highest prepared certificate at this height.
    pub prepared: Option<PreparedCertificate>,
    /// The prepared block's payload (left out of the copies a NEW-VIEW carries).
    pub payload: Option<Vec<Vec<u8>>>,
    /// The previous height's commit certificate (not signed: it proves itself).
    pub last_commit: Option<CommitCertificate>,
    /// The signature over [`ViewChange::vote`].
    pub signature: Signature,
}

impl ViewChange {
    /// What it signs.
    pub fn vote(&self, chain_id: &str) -> ViewChangeVote {
        ViewChangeVote {
            chain_id: chain_id.into(),
            height: self.height,
            view: self.view,
            prepared: self.prepared.as_ref().map(|p| (p.view(), p.block())),
        }
    }

    /// `signer`'s request for `view` at `height` with its highest prepared certificate (and that
    /// block's payload) and its last commit certificate.
    pub fn sign(
        signer: &dyn Signer,
        chain_id: &str,
        height: u64,
        view: u32,
        prepared: Option<PreparedCertificate>,
        payload: Option<Vec<Vec<u8>>>,
        last_commit: Option<CommitCertificate>,
    ) -> ViewChange {
        let claim = ViewChangeVote {
            chain_id: chain_id.into(),
            height,
            view,
            prepared: prepared.as_ref().map(|p| (p.view(), p.block())),
        };
        let signature = signer.sign(&claim.signing_bytes());
        ViewChange { height, view, signer: signer.public_key(), prepared, payload, last_commit, signature }
    }

    /// The copy a NEW-VIEW carries: the signed part only.
    pub fn stripped(&self) -> ViewChange {
        ViewChange { payload: None, last_commit: None, ..self.clone() }
    }

    /// Whether it is what its signer asked for at `height` under `validators`: a validator
    /// signed it, and its prepared certificate (from an earlier view) holds, with a payload that
    /// hashes to the prepared block if it carries one.
    pub fn verify(&self, chain_id: &str, height: u64, validators: &ValidatorSet) -> Result<(), String> {
        if self.height != height {
            return Err(format!("a VIEW-CHANGE of height {}, not {height}", self.height));
        }
        if validators.power_of(&self.signer).is_none() {
            return Err(format!("VIEW-CHANGE signer {} is not a validator", self.signer));
        }
        self.signer
            .verify(&self.vote(chain_id).signing_bytes(), &self.signature)
            .map_err(|_| format!("the VIEW-CHANGE of {} has a bad signature", self.signer))?;
        if let Some(prepared) = &self.prepared {
            if prepared.view() >= self.view {
                return Err(format!(
                    "a VIEW-CHANGE to view {} prepared in view {}",
                    self.view,
                    prepared.view()
                ));
            }
            prepared.verify(chain_id, height, validators)?;
        }
        if let (Some(txs), Some(prepared)) = (&self.payload, &self.prepared)
            && payload_id(txs) != prepared.block()
        {
            return Err("the VIEW-CHANGE's payload is not the prepared block's".into());
        }
        Ok(())
    }
}

/// The new primary's announcement of `view`: VIEW-CHANGEs for it from validators with more than
/// 2/3 of the power, and the PRE-PREPARE they determine (the block of the highest prepared
/// certificate among them, or a fresh payload when none prepared anything). Every replica checks
/// it the same way ([`super::new_view::check`]); it needs no signature of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewView {
    /// The VIEW-CHANGEs (stripped).
    pub view_changes: Vec<ViewChange>,
    /// The PRE-PREPARE of the new view with its payload.
    pub proposal: Proposal,
}

/// Everything the engine sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// PRE-PREPARE with its payload.
    PrePrepare(Proposal),
    /// PREPARE (a prevote for the block in the view).
    Prepare(SignedVote),
    /// COMMIT (a precommit for the block in the view).
    Commit(SignedVote),
    /// VIEW-CHANGE.
    ViewChange(ViewChange),
    /// NEW-VIEW.
    NewView(NewView),
    /// A commit certificate, sent to a replica still deciding its height.
    Committed(CommitCertificate),
}

impl Message {
    /// The height it belongs to.
    pub fn height(&self) -> u64 {
        match self {
            Message::PrePrepare(p) => p.pre_prepare.height,
            Message::Prepare(v) | Message::Commit(v) => v.height,
            Message::ViewChange(vc) => vc.height,
            Message::NewView(nv) => nv.proposal.pre_prepare.height,
            Message::Committed(certificate) => certificate.message.height,
        }
    }
}

/// Why bytes are not a PBFT message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("a {0}-byte consensus message exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    /// Not postcard of a [`Message`].
    #[error("not a PBFT message: {0}")]
    Malformed(String),
    /// A NEW-VIEW with more VIEW-CHANGEs than any validator set has members.
    #[error("a NEW-VIEW with {0} VIEW-CHANGEs")]
    TooManyViewChanges(usize),
}

/// The bytes of `message`.
pub fn encode(message: &Message) -> Vec<u8> {
    postcard::to_allocvec(message).expect("messages serialize")
}

/// Decodes a message (sizes only; the engine checks signatures and meaning).
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    let message: Message = postcard::from_bytes(bytes).map_err(|e| WireError::Malformed(e.to_string()))?;
    if let Message::NewView(nv) = &message
        && nv.view_changes.len() > MAX_VIEW_CHANGES
    {
        return Err(WireError::TooManyViewChanges(nv.view_changes.len()));
    }
    Ok(message)
}
