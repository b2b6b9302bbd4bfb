//! Sans-I/O consensus engines: state machines that never touch a socket, a clock or a disk.
//!
//! The driver feeds an engine [`Input`]s stamped with the current time and performs the
//! [`Effect`]s it returns, in order. Because an engine is a pure function of its inputs, the
//! simulator replays any run from its seed, and the driver can restart an engine from its WAL
//! ([`Effect::PersistWal`] is performed, durably, before the effects that follow it: a
//! validator never sends a vote it could forget and contradict after a crash).

use std::time::Duration;

use pyralog_crypto::{Keypair, PublicKey, Signature};

use crate::finality::Engine;
use crate::pow::{PowRules, Seal};
use crate::proposer::ProposerPriorities;
use crate::validators::ValidatorSet;
use crate::vote::{BlockId, Evidence, FinalityProof};

/// Milliseconds: an engine's `now` is the node's wall clock, since the Unix epoch (virtual time
/// in the simulator); the driver's timers run on its monotonic clock.
pub type Millis = u64;

/// Where an engine that builds on blocks not yet committed (Proof-of-Work) puts a payload: its
/// parent, its time, and the payloads between the last committed block and it. Engines that
/// decide on the last committed block give none; the driver then uses that block and its clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The parent block's id.
    pub parent: BlockId,
    /// The block's time, ms since the Unix epoch.
    pub time_ms: u64,
    /// The payloads of the blocks after the last committed one, up to the parent, oldest first
    /// (an app that screens transactions against its state applies them first).
    pub unfinalised: Vec<Vec<Vec<u8>>>,
}

/// A nonce search the driver's miner runs: find a nonce (and a time not before `min_time_ms`)
/// that brings `seal`'s hash under its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiningJob {
    /// The seal to complete (its nonce and time are the miner's to choose).
    pub seal: Seal,
    /// The earliest time the seal may carry (after the median of the last blocks).
    pub min_time_ms: u64,
}

/// An engine's timers, named so that the driver can cancel and replace them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId {
    /// The height it belongs to.
    pub height: u64,
    /// The round it belongs to.
    pub round: u32,
    /// Which step it times out.
    pub step: u8,
}

/// What happens to an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Start deciding `height` with `validators`.
    StartHeight {
        /// The height.
        height: u64,
        /// Who votes at it.
        validators: ValidatorSet,
        /// The proposer priorities of the height (CometBFT's rotation, carried from genesis
        /// by the driver): round-based engines pick each round's proposer from them.
        proposers: ProposerPriorities,
        /// The finality proof of `height - 1` as this node stored it (`None` at the first
        /// height): engines with global views (PBFT) start the height in its view.
        last_commit: Option<FinalityProof>,
    },
    /// A peer's message, as opaque engine bytes (the engine decodes and checks it).
    Message {
        /// The peer that sent it (its transport identity, not yet the signer).
        from: PublicKey,
        /// The message.
        bytes: Vec<u8>,
    },
    /// A timer set by [`Effect::SetTimer`] fired.
    TimeoutFired(TimerId),
    /// The app built the payload the engine asked for.
    PayloadBuilt {
        /// The height it is for.
        height: u64,
        /// The payload.
        txs: Vec<Vec<u8>>,
    },
    /// The app checked a proposed payload.
    PayloadChecked {
        /// The block.
        block: BlockId,
        /// Whether to vote for it.
        valid: bool,
    },
    /// The driver's miner found a seal for the job the engine gave it ([`Effect::Mine`]).
    Mined(Seal),
    /// The app applied a committed block.
    BlockApplied {
        /// The height.
        height: u64,
        /// The app hash after it.
        app_hash: Vec<u8>,
        /// The validator set from `height + 2` on, after the block's validator updates (the
        /// same set when it made none).
        validator_updates: ValidatorSet,
    },
}

/// What an engine asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send to every validator.
    Broadcast(Vec<u8>),
    /// Send to one peer.
    SendTo {
        /// The peer.
        to: PublicKey,
        /// The message.
        bytes: Vec<u8>,
    },
    /// Fire [`Input::TimeoutFired`] after `after` unless cancelled or replaced.
    SetTimer {
        /// Which timer.
        id: TimerId,
        /// When, from now.
        after: Duration,
    },
    /// Drop a pending timer.
    CancelTimer(TimerId),
    /// Ask the app for a payload ([`Input::PayloadBuilt`] answers).
    BuildPayload {
        /// The height.
        height: u64,
        /// Who proposes it (this validator): the block context's proposer.
        proposer: PublicKey,
        /// Where it goes, for engines that build on blocks not yet committed.
        on: Option<Placement>,
    },
    /// Ask the app to check a payload ([`Input::PayloadChecked`] answers).
    CheckPayload {
        /// The height it is proposed at.
        height: u64,
        /// The block.
        block: BlockId,
        /// Its payload.
        txs: Vec<Vec<u8>>,
        /// The parent it is placed on, for engines that build on blocks not yet committed (the
        /// app checks it there; the driver's last committed block otherwise).
        on: Option<BlockId>,
    },
    /// The block at `height` is decided: store it with its proof, then apply it.
    CommitBlock {
        /// The height.
        height: u64,
        /// The block.
        block: BlockId,
        /// Its payload.
        txs: Vec<Vec<u8>>,
        /// Why it is final.
        proof: FinalityProof,
    },
    /// Two conflicting signed votes or proposals of one validator: proof of equivocation, for
    /// the app to punish (and the chain to record).
    Evidence(Box<Evidence>),
    /// Durably append an entry to the engine's write-ahead log before anything that follows (its
    /// own votes and proposals, the messages and timeouts that moved it): after a crash the
    /// engine replays them and resumes with its lock and its signatures intact.
    PersistWal {
        /// The height the entry belongs to (entries below the committed height can go).
        height: u64,
        /// The engine's encoding of the entry.
        entry: Vec<u8>,
    },
    /// Search for a seal ([`Input::Mined`] answers); replaces any search running.
    Mine(MiningJob),
    /// Something an operator must see: the engine refused what its rules forbid but a peer
    /// pressed (a heavier chain that would revert a final block). Logged at error level and
    /// counted.
    Alarm(String),
    /// A peer sent something no honest node sends (bytes that do not decode): the network
    /// scores it down and, past a limit, bans it for a while.
    PeerMisbehaved {
        /// The peer (the authenticated sender).
        peer: PublicKey,
        /// What it sent.
        reason: String,
    },
}

/// Signs for one validator. Engines sign only through it: the node key in memory implements
/// it, and a remote signer or an HSM (CometBFT's privval, tmkms) can, without the engine
/// changing. Messages arrive already domain-separated (their signing context included).
pub trait Signer: Send + Sync + 'static {
    /// The key the signatures verify under (the validator's identity).
    fn public_key(&self) -> PublicKey;
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> Signature;
}

impl Signer for Keypair {
    fn public_key(&self) -> PublicKey {
        self.public()
    }
    fn sign(&self, message: &[u8]) -> Signature {
        Keypair::sign(self, message)
    }
}

/// A sans-I/O consensus engine.
pub trait ConsensusCore {
    /// Handles one input at time `now`; returns the effects to perform, in order.
    fn handle(&mut self, now: Millis, input: Input) -> Vec<Effect>;

    /// Which engine it is: recorded in block headers, and the only engine whose finality proofs
    /// the driver accepts.
    fn engine(&self) -> Engine;

    /// The key this engine signs with, if it has one: the driver sends its consensus messages
    /// only while that key is in a validator set (a follower relaying votes would be taken for a
    /// non-validator spamming the overlay).
    fn validator_key(&self) -> Option<PublicKey> {
        None
    }

    /// The work rules, for work engines: the driver checks their finality proofs with them.
    fn work_rules(&self) -> Option<&PowRules> {
        None
    }

    /// Gives back the WAL entries of the heights not yet committed, in the order they were
    /// persisted, before the first [`Input::StartHeight`] after a restart. An entry the engine
    /// cannot read is an error, never skipped: it may hold a vote the engine must not contradict.
    fn restore_wal(&mut self, entries: Vec<Vec<u8>>) -> Result<(), WalError> {
        let _ = entries;
        Ok(())
    }
}

/// A boxed engine is an engine: the node picks one at run time from the genesis file.
impl<E: ConsensusCore + ?Sized> ConsensusCore for Box<E> {
    fn handle(&mut self, now: Millis, input: Input) -> Vec<Effect> {
        (**self).handle(now, input)
    }

    fn engine(&self) -> Engine {
        (**self).engine()
    }

    fn validator_key(&self) -> Option<PublicKey> {
        (**self).validator_key()
    }

    fn work_rules(&self) -> Option<&PowRules> {
        (**self).work_rules()
    }

    fn restore_wal(&mut self, entries: Vec<Vec<u8>>) -> Result<(), WalError> {
        (**self).restore_wal(entries)
    }
}

/// A write-ahead-log entry the engine cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WAL entry {index}: {reason}")]
pub struct WalError {
    /// The entry's position among those given back.
    pub index: usize,
    /// Why it does not decode.
    pub reason: String,
}
