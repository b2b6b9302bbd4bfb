//! The driver's view of who decides: the validator set of each height (genesis, then the changes
//! blocks made, two heights on), the proposer priorities it hands the engine with each height,
//! who the network should hear consensus messages from, and whether this node may send any.

use pyralog_crypto::PublicKey;

use super::store::ChainStore;
use super::{ConsensusNet, Driver};
use crate::app::ReplicatedApp;
use crate::core::ConsensusCore;
use crate::evidence::MAX_EVIDENCE_AGE;
use crate::proposer::ProposerPriorities;
use crate::validators::ValidatorSet;

impl<E, A, N, S> Driver<E, A, N, S>
where
    E: ConsensusCore,
    A: ReplicatedApp,
    N: ConsensusNet,
    S: ChainStore,
{
    /// The proposer priorities of `height`: carried one height at a time from genesis (from the
    /// last height computed, or from genesis after a restart, as CometBFT replays increments
    /// from its last stored checkpoint).
    pub(super) fn proposers_at(&mut self, height: u64) -> ProposerPriorities {
        let (mut at, mut priorities) = match self.proposers.take() {
            Some((at, priorities)) if at <= height => (at, priorities),
            _ => (1, ProposerPriorities::genesis(self.validators_at(1))),
        };
        while at < height {
            at += 1;
            priorities = priorities.next_height(self.validators_at(at));
        }
        self.proposers = Some((at, priorities.clone()));
        priorities
    }

    /// The validator set deciding `height`.
    pub(super) fn validators_at(&self, height: u64) -> &ValidatorSet {
        self.sets.range(..=height).next_back().map(|(_, set)| set).unwrap_or(&self.config.validators)
    }

    /// The sets deciding `height` and every later height announced so far.
    fn sets_from(&self, height: u64) -> impl Iterator<Item = &ValidatorSet> {
        std::iter::once(self.validators_at(height)).chain(self.sets.range(height + 1..).map(|(_, set)| set))
    }

    /// Whether this node may send consensus messages: its engine's key is in the set of the
    /// current height or of one announced after it (a follower, or a validator that left the
    /// set, stays silent; its peers would count its relayed votes as a non-validator's).
    pub(super) fn may_send(&self) -> bool {
        let Some(key) = self.engine.validator_key() else { return true };
        self.sets_from(self.height).any(|set| set.power_of(&key).is_some())
    }

    /// Tells the network who may send consensus messages: the validators of every height from
    /// [`MAX_EVIDENCE_AGE`] heights back on (messages about those heights still matter, as
    /// evidence), so a validator that left the set and restarts behind is not taken for a
    /// stranger while it speaks about heights where it was a validator.
    pub(super) fn announce_validators(&mut self) {
        let horizon = self.height.saturating_sub(MAX_EVIDENCE_AGE).max(1);
        let mut keys: Vec<PublicKey> =
            self.sets_from(horizon).flat_map(|set| set.validators().iter().map(|v| v.key)).collect();
        keys.sort();
        keys.dedup();
        if keys != self.announced {
            self.net.set_validators(keys.clone());
            self.announced = keys;
        }
    }
}
