//! Proof-of-Work's adversaries in the simulator: what a miner that breaks seals sends
//! ([`PowAdversary`], for [`Behaviour::BadSignatures`](super::Behaviour)), and a selfish miner
//! (Eyal and Sirer): a real engine whose own blocks are withheld and released when the public
//! chain comes within one block of its private one.

use pyralog_crypto::Keypair;

use super::Adversary;
use crate::core::{ConsensusCore, Effect, Input, Millis, WalError};
use crate::finality::Engine;
use crate::nakamoto::{PowEngine, PowMessage};
use crate::pow::PowRules;

/// Proof-of-Work's message tampering: nothing to equivocate on (a second block is just a fork),
/// and a "broken signature" is a block whose nonce no longer meets its target.
#[derive(Debug, Clone, Copy, Default)]
pub struct PowAdversary;

impl Adversary for PowAdversary {
    fn conflicting(&self, _key: &Keypair, _bytes: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn is_proposal(&self, bytes: &[u8]) -> bool {
        matches!(PowMessage::decode(bytes), Ok(PowMessage::Block(_)))
    }

    fn break_signature(&self, bytes: &[u8]) -> Vec<u8> {
        match PowMessage::decode(bytes) {
            Ok(PowMessage::Block(mut block)) => {
                block.seal = crate::testkit::miss_target(block.seal);
                PowMessage::Block(block).encode()
            }
            _ => bytes.to_vec(),
        }
    }
}

/// A selfish miner: the engine, with its own blocks kept back while it leads; when the others
/// find a block it shows as many of its own, and everything once its lead is one or less (a lead
/// of two orphans the honest blocks it overtakes).
#[derive(Debug)]
pub struct SelfishMiner {
    inner: PowEngine,
    /// Its own blocks not yet shown, with their heights, oldest first.
    withheld: Vec<(u64, Vec<u8>)>,
    /// The highest block seen from others.
    public_height: u64,
}

impl SelfishMiner {
    /// A selfish miner under `rules`, naming `key` in its blocks.
    pub fn new(rules: PowRules, key: &Keypair) -> SelfishMiner {
        SelfishMiner {
            inner: PowEngine::new(rules).mining(key.public()),
            withheld: Vec::new(),
            public_height: 0,
        }
    }
}

impl ConsensusCore for SelfishMiner {
    fn handle(&mut self, now: Millis, input: Input) -> Vec<Effect> {
        let public_before = self.public_height;
        if let Input::Message { bytes, .. } = &input
            && let Ok(PowMessage::Block(block)) = PowMessage::decode(bytes)
        {
            self.public_height = self.public_height.max(block.seal.height);
        }
        let mut out = Vec::new();
        for effect in self.inner.handle(now, input) {
            match effect {
                Effect::Broadcast(bytes) => match PowMessage::decode(&bytes) {
                    Ok(PowMessage::Block(block)) => self.withheld.push((block.seal.height, bytes)),
                    _ => out.push(Effect::Broadcast(bytes)),
                },
                other => out.push(other),
            }
        }
        // The others found a block: with a lead of one or less, show everything (a race, or a
        // win by one); with more, show as many as they have, staying ahead.
        if self.public_height > public_before && !self.withheld.is_empty() {
            let private = self.withheld.last().map_or(0, |(height, _)| *height);
            let shown = if private <= self.public_height + 1 {
                self.withheld.len()
            } else {
                self.withheld.iter().take_while(|(height, _)| *height <= self.public_height).count()
            };
            out.extend(self.withheld.drain(..shown).map(|(_, bytes)| Effect::Broadcast(bytes)));
        }
        out
    }

    fn engine(&self) -> Engine {
        Engine::Pow
    }

    fn work_rules(&self) -> Option<&PowRules> {
        self.inner.work_rules()
    }

    fn restore_wal(&mut self, entries: Vec<Vec<u8>>) -> Result<(), WalError> {
        self.inner.restore_wal(entries)
    }
}
