//! Proof-of-Work (Nakamoto consensus), as a sans-I/O [`ConsensusCore`] under the same driver and
//! app as the BFT engines.
//!
//! - **Blocks** are payloads the app built, each with a [`Seal`](crate::pow::Seal): parent seal,
//!   height, block id, time, compact target, nonce. A node accepts a block when its seal extends a
//!   known block under the chain's [`PowRules`] (link, height, the ASERT target, hash under
//!   target), its time beats the median of the last 11 blocks and is at most a minute ahead of
//!   the node's clock, and the app accepts the payload placed on its parent
//!   ([`Effect::CheckPayload`] with the parent's id). Anyone may publish one: the seal is the
//!   spam filter, and a bad seal is misbehaviour ([`Effect::PeerMisbehaved`]).
//! - **Fork choice**: the most cumulative work from the last final block; ties go to the block
//!   seen first.
//! - **Finality**: the app sees a block only once `k` blocks are sealed on top of it
//!   ([`Effect::CommitBlock`], with a [`FinalityProof::Work`] of the `k + 1` seals), so it
//!   never reverts: a reorg shallower than `k` changes nothing it saw (the orphaned blocks'
//!   transactions stay in the mempool, which only committed blocks empty). A heavier chain that
//!   forks below the last final block is refused and raised as an [`Effect::Alarm`].
//! - **WAL**: every accepted block not yet final, and the seals of the last final blocks (the
//!   next blocks' median-time rule needs their times), so a restarted node resumes with its
//!   tree.
//! - **Mining**: on every new best block the engine asks the app for a payload on it (a
//!   [`Placement`]), seals a template with the target ASERT gives, and hands the search to the
//!   driver's miner ([`Effect::Mine`]); a found seal ([`Input::Mined`]) is checked like
//!   anyone's, kept and broadcast.
//! - **Catching up**: a block whose parent is unknown waits (a bounded pool) while the engine
//!   asks its sender for the parent; final blocks come through the driver's block sync.

mod tree;
mod wire;

pub use wire::{PowMessage, SealedBlock};

use std::collections::{HashMap, HashSet, VecDeque};

use pyralog_crypto::{Digest, PublicKey};

use crate::core::{ConsensusCore, Effect, Input, Millis, MiningJob, Placement, WalError};
use crate::finality::{Engine, FinalityProof};
use crate::pow::{MEDIAN_TIME_SPAN, PowRules, Seal, SealError, U256, check_time, median_time};
use crate::vote::{BlockId, payload_id};
use tree::{BlockTree, RETAIN};
use wire::WalEntry;

/// Most blocks waiting for their parent.
const MAX_ORPHANS: usize = 256;
/// How many refused seal hashes are remembered (so a block relayed again is not checked again).
const MAX_REFUSED: usize = 1024;

/// The payload the engine asked for and the seal it is searching for.
#[derive(Debug)]
struct Job {
    /// The best block when it was asked for (the parent's seal hash).
    parent: Digest,
    height: u64,
    time_ms: u64,
    min_time_ms: u64,
    /// The payload, once built.
    txs: Option<Vec<Vec<u8>>>,
}

/// A block waiting for its parent.
#[derive(Debug)]
struct Orphan {
    from: PublicKey,
    hash: Digest,
    block: SealedBlock,
}

/// A block waiting for the app's verdict.
#[derive(Debug)]
struct Checking {
    seal: Seal,
    txs: Vec<Vec<u8>>,
    from: PublicKey,
    work: U256,
}

/// The Proof-of-Work engine.
#[derive(Debug)]
pub struct PowEngine {
    rules: PowRules,
    /// The key this node's blocks name as proposer, when it mines.
    miner: Option<PublicKey>,
    /// `None` until the first [`Input::StartHeight`] names the last final block.
    tree: Option<BlockTree>,
    /// WAL entries given back at restart, placed once the last final block is known.
    restored: Vec<WalEntry>,
    job: Option<Job>,
    /// Blocks with the app, by block id.
    checking: HashMap<BlockId, Checking>,
    /// Blocks whose parent is unknown, oldest first, with their senders and seal hashes.
    orphans: VecDeque<Orphan>,
    refused: HashSet<Digest>,
    refused_order: VecDeque<Digest>,
    now: Millis,
    out: Vec<Effect>,
}

impl PowEngine {
    /// An engine under `rules` that does not mine (a full node).
    pub fn new(rules: PowRules) -> PowEngine {
        PowEngine {
            rules,
            miner: None,
            tree: None,
            restored: Vec::new(),
            job: None,
            checking: HashMap::new(),
            orphans: VecDeque::new(),
            refused: HashSet::new(),
            refused_order: VecDeque::new(),
            now: 0,
            out: Vec::new(),
        }
    }

    /// The same engine mining blocks that name `key` as their proposer.
    pub fn mining(mut self, key: PublicKey) -> PowEngine {
        self.miner = Some(key);
        self
    }

    /// The best block's height and seal hash (none before the engine started).
    pub fn best(&self) -> Option<(u64, Digest)> {
        self.tree.as_ref().map(|t| (t.best_node().seal.height, t.best))
    }

    fn misbehaved(&mut self, peer: PublicKey, reason: String) {
        self.out.push(Effect::PeerMisbehaved { peer, reason });
    }

    fn refuse(&mut self, hash: Digest) {
        if self.refused.insert(hash) {
            self.refused_order.push_back(hash);
            if self.refused_order.len() > MAX_REFUSED
                && let Some(old) = self.refused_order.pop_front()
            {
                self.refused.remove(&old);
            }
        }
    }

    /// The last final block is `height - 1`: at the first start, the tree is built from it and
    /// the WAL; later, a height beyond the tree's root means block sync committed blocks, and the
    /// tree moves to the last of them.
    fn start_height(&mut self, height: u64, last_commit: Option<FinalityProof>) {
        let committed = height.saturating_sub(1);
        if self.tree.as_ref().is_some_and(|tree| tree.root_height() >= committed) {
            return;
        }
        // The last committed block's seal (none at genesis).
        let root = match last_commit.as_ref().and_then(FinalityProof::seals).and_then(|s| s.first()) {
            Some(seal) => Some(*seal),
            None if committed == 0 => None,
            None => {
                self.out.push(Effect::Alarm(format!("block {committed} was committed without a seal")));
                return;
            }
        };
        if let Some(tree) = self.tree.as_mut() {
            // Above the tree's root, so above genesis: it has a seal.
            let Some(seal) = root else { return };
            let hash = seal.hash();
            if tree.contains(&hash) {
                tree.advance_root(hash);
            } else {
                *tree = BlockTree::rooted(seal);
            }
            tree.best = tree.heaviest_from_root();
            self.commit_deep();
            return;
        }
        let mut tree = match root {
            None => BlockTree::genesis(self.rules.genesis_time_ms, self.rules.initial_bits),
            Some(seal) => self.restored_final(seal),
        };
        let mut blocks: Vec<SealedBlock> = std::mem::take(&mut self.restored)
            .into_iter()
            .filter_map(|entry| match entry {
                WalEntry::Block(block) if block.seal.height > committed => Some(block),
                _ => None,
            })
            .collect();
        blocks.sort_by_key(|b| b.seal.height);
        for block in blocks {
            tree.restore(block.seal, block.txs, self.rules.limit());
        }
        tree.best = tree.heaviest_from_root();
        self.tree = Some(tree);
        self.commit_deep();
    }

    /// The tree at restart: the final seals the WAL kept (for the median-time rule), rooted at
    /// `root`, the last committed block's.
    fn restored_final(&mut self, root: Seal) -> BlockTree {
        let mut finals: Vec<Seal> = self
            .restored
            .iter()
            .filter_map(|e| match e {
                WalEntry::Final(seal) if seal.height < root.height => Some(*seal),
                _ => None,
            })
            .collect();
        finals.sort_by_key(|s| s.height);
        finals.dedup();
        let Some(lowest) = finals.first().copied() else { return BlockTree::rooted(root) };
        let mut tree = BlockTree::rooted(lowest);
        for seal in finals.into_iter().skip(1).chain([root]) {
            tree.restore(seal, Vec::new(), self.rules.limit());
        }
        let hash = root.hash();
        if tree.contains(&hash) {
            tree.advance_root(hash);
            tree.best = hash;
            tree
        } else {
            BlockTree::rooted(root)
        }
    }

    /// A block from a peer (gossiped, or the answer to a request).
    fn receive(&mut self, from: PublicKey, block: SealedBlock) {
        let Some(tree) = self.tree.as_ref() else { return };
        let hash = block.seal.hash();
        if tree.contains(&hash)
            || self.refused.contains(&hash)
            || self.checking.contains_key(&block.seal.block)
        {
            return;
        }
        if payload_id(&block.txs) != block.seal.block {
            // Not remembered as refused: the seal may be good, and its real payload may follow.
            return self.misbehaved(from, "a sealed block whose payload is another".into());
        }
        // What the seal proves on its own: its hash under its own target, within the limit.
        if let Err(e) = block.seal.check(self.rules.limit()) {
            self.refuse(hash);
            return self.misbehaved(from, format!("seal at height {}: {e}", block.seal.height));
        }
        let root_height = tree.root_height();
        if block.seal.height + RETAIN <= root_height {
            return; // older than anything a fork could still matter for
        }
        let Some(parent) = tree.parent_seal(&block.seal.parent) else {
            return self.orphan(Orphan { from, hash, block });
        };
        let work = match self.rules.check_seal(&block.seal, parent) {
            Ok(work) => work,
            Err(e) => {
                self.refuse(hash);
                return self.misbehaved(from, e.to_string());
            }
        };
        match check_time(&block.seal, &tree.times_back_from(&block.seal.parent), self.now) {
            Ok(()) => {}
            Err(e @ SealError::TooEarly { .. }) => {
                self.refuse(hash);
                return self.misbehaved(from, e.to_string());
            }
            // Maybe only this clock is behind: not misbehaviour, and a later child asks again.
            Err(e) => return tracing::debug!(%e, "block from the future dropped"),
        }
        if !tree.descends_from_root(&block.seal.parent) {
            // A fork from below the last final block: weighed, never applied.
            return self.weigh_fork(block, work);
        }
        let parent_id = tree.get(&block.seal.parent).map_or(Digest([0; 32]), |p| p.seal.block);
        self.out.push(Effect::CheckPayload {
            height: block.seal.height,
            block: block.seal.block,
            txs: block.txs.clone(),
            on: Some(parent_id),
        });
        self.checking.insert(block.seal.block, Checking { seal: block.seal, txs: block.txs, from, work });
    }

    /// The payloads from just above the last final block up to `hash`, oldest first.
    fn payloads_to(&self, hash: &Digest) -> Vec<Vec<Vec<u8>>> {
        let Some(tree) = self.tree.as_ref() else { return Vec::new() };
        tree.path_from_root(hash).iter().filter_map(|h| tree.get(h)).map(|n| n.txs.clone()).collect()
    }

    /// A block whose parent is unknown: kept (a bounded pool, oldest out) while its sender is asked
    /// for the parent.
    fn orphan(&mut self, orphan: Orphan) {
        if self.orphans.iter().any(|o| o.hash == orphan.hash) {
            return;
        }
        let (from, parent) = (orphan.from, orphan.block.seal.parent);
        let asked = self.orphans.iter().any(|o| o.hash == parent);
        self.orphans.push_back(orphan);
        if self.orphans.len() > MAX_ORPHANS {
            self.orphans.pop_front();
        }
        if !asked {
            let bytes = PowMessage::GetBlock { seal: parent }.encode();
            self.out.push(Effect::SendTo { to: from, bytes });
        }
    }

    /// A valid block on a fork from below the last final block: kept to weigh its branch; if the
    /// branch becomes heavier than the best chain, that is a reorg deeper than `k`, refused and
    /// raised.
    fn weigh_fork(&mut self, block: SealedBlock, work: U256) {
        let Some(tree) = self.tree.as_mut() else { return };
        let parent_heavier = tree.heavier(&block.seal.parent);
        let height = block.seal.height;
        let hash = tree.insert(block.seal, block.txs, work);
        if tree.heavier(&hash) && !parent_heavier {
            let best = tree.best_node().seal.height;
            let root = tree.root_height();
            self.out.push(Effect::Alarm(format!(
                "refused a heavier chain (tip at height {height}) that forks below the final block at height {root} (best tip {best}): a reorg deeper than k = {}",
                self.rules.confirmations
            )));
        }
        self.adopt_orphans(hash);
    }

    /// The app's verdict on a peer's block.
    fn checked(&mut self, block: BlockId, valid: bool) {
        let Some(checking) = self.checking.remove(&block) else { return };
        if !valid {
            self.refuse(checking.seal.hash());
            return self.misbehaved(
                checking.from,
                format!("a block at height {} its app refuses", checking.seal.height),
            );
        }
        self.accept(checking.seal, checking.txs, checking.work);
    }

    /// Keeps a checked block on the root's branch: logged, weighed, maybe the new best; then the
    /// blocks that waited for it.
    fn accept(&mut self, seal: Seal, txs: Vec<Vec<u8>>, work: U256) {
        let Some(tree) = self.tree.as_mut() else { return };
        if !tree.contains(&seal.parent) || !tree.descends_from_root(&seal.parent) {
            return; // the last final block moved past its parent meanwhile
        }
        let entry = wire::encode(&WalEntry::Block(SealedBlock { seal, txs: txs.clone() }));
        self.out.push(Effect::PersistWal { height: seal.height, entry });
        let hash = tree.insert(seal, txs, work);
        if tree.heavier(&hash) {
            tree.best = hash;
        }
        self.commit_deep();
        self.adopt_orphans(hash);
    }

    /// Feeds back the orphans whose parent `hash` is.
    fn adopt_orphans(&mut self, hash: Digest) {
        let (children, rest): (VecDeque<_>, VecDeque<_>) =
            std::mem::take(&mut self.orphans).into_iter().partition(|o| o.block.seal.parent == hash);
        self.orphans = rest;
        for Orphan { from, block, .. } in children {
            self.receive(from, block);
        }
    }

    /// Commits the blocks the best chain buries `k` deep.
    fn commit_deep(&mut self) {
        let Some(tree) = self.tree.as_mut() else { return };
        let k = self.rules.confirmations;
        loop {
            let best = tree.best_node().seal.height;
            if best < tree.root_height() + 1 + k {
                break;
            }
            let path = tree.path_from_root(&tree.best);
            let seals: Vec<Seal> =
                path.iter().take(k as usize + 1).filter_map(|h| tree.get(h)).map(|n| n.seal).collect();
            let Some(first) = tree.get(&path[0]) else { break };
            let (seal, txs) = (first.seal, first.txs.clone());
            let entry = wire::encode(&WalEntry::Final(seal));
            // Kept until the last block whose median-time rule counts it is final.
            let until = seal.height + MEDIAN_TIME_SPAN as u64;
            self.out.push(Effect::PersistWal { height: until, entry });
            self.out.push(Effect::CommitBlock {
                height: seal.height,
                block: seal.block,
                txs,
                proof: FinalityProof::Work { engine: Engine::Pow, seals },
            });
            tree.advance_root(path[0]);
        }
    }

    /// Asks the app for a payload on the best block (when this node mines).
    fn new_job(&mut self) {
        let (Some(miner), Some(tree)) = (self.miner, self.tree.as_ref()) else { return };
        let best = tree.best_node();
        let min_time_ms = median_time(&tree.times_back_from(&tree.best)).saturating_add(1);
        let time_ms = self.now.max(min_time_ms);
        let height = best.seal.height + 1;
        let placement =
            Placement { parent: best.seal.block, time_ms, unfinalised: self.payloads_to(&tree.best) };
        self.job = Some(Job { parent: tree.best, height, time_ms, min_time_ms, txs: None });
        self.out.push(Effect::BuildPayload { height, proposer: miner, on: Some(placement) });
    }

    /// The app built the job's payload: seal template to the miner.
    fn built(&mut self, height: u64, txs: Vec<Vec<u8>>) {
        let Some(tree) = self.tree.as_ref() else { return };
        let Some(job) = self.job.as_mut().filter(|j| j.height == height && j.txs.is_none()) else { return };
        let Some(parent) = tree.parent_seal(&job.parent) else { return };
        let seal = Seal {
            parent: job.parent,
            height,
            block: payload_id(&txs),
            time_ms: job.time_ms,
            bits: self.rules.next_bits(parent),
            nonce: 0,
        };
        job.txs = Some(txs);
        self.out.push(Effect::Mine(MiningJob { seal, min_time_ms: job.min_time_ms }));
    }

    /// The miner found a seal: if it is for the current job and holds, the block is this node's
    /// new best, logged and broadcast.
    fn mined(&mut self, seal: Seal) {
        let Some(tree) = self.tree.as_ref() else { return };
        let current = self.job.as_ref().is_some_and(|j| {
            j.parent == seal.parent
                && j.height == seal.height
                && j.txs.as_ref().is_some_and(|t| payload_id(t) == seal.block)
        });
        if !current {
            return;
        }
        let Some(parent) = tree.parent_seal(&seal.parent) else { return };
        let checked = self
            .rules
            .check_seal(&seal, parent)
            .and_then(|work| check_time(&seal, &tree.times_back_from(&seal.parent), self.now).map(|()| work));
        let work = match checked {
            Ok(work) => work,
            Err(e) => return tracing::warn!(%e, "the miner found a seal that does not hold"),
        };
        let Some(txs) = self.job.take().and_then(|j| j.txs) else { return };
        let bytes = PowMessage::Block(SealedBlock { seal, txs: txs.clone() }).encode();
        self.accept(seal, txs, work);
        self.out.push(Effect::Broadcast(bytes));
    }

    /// A peer asks for a block.
    fn serve(&mut self, from: PublicKey, hash: Digest) {
        let Some(node) = self.tree.as_ref().and_then(|t| t.get(&hash)) else { return };
        if node.seal.height == 0 || node.txs.is_empty() {
            return;
        }
        let bytes = PowMessage::Block(SealedBlock { seal: node.seal, txs: node.txs.clone() }).encode();
        self.out.push(Effect::SendTo { to: from, bytes });
    }
}

impl ConsensusCore for PowEngine {
    fn handle(&mut self, now: Millis, input: Input) -> Vec<Effect> {
        self.now = now;
        let best_before = self.tree.as_ref().map(|t| t.best);
        match input {
            Input::StartHeight { height, last_commit, .. } => self.start_height(height, last_commit),
            Input::Message { from, bytes } => match PowMessage::decode(&bytes) {
                Ok(PowMessage::Block(block)) => self.receive(from, block),
                Ok(PowMessage::GetBlock { seal }) => self.serve(from, seal),
                Err(why) => self.misbehaved(from, format!("undecodable pow message: {why}")),
            },
            Input::PayloadBuilt { height, txs } => self.built(height, txs),
            Input::PayloadChecked { block, valid } => self.checked(block, valid),
            Input::Mined(seal) => self.mined(seal),
            Input::TimeoutFired(_) | Input::BlockApplied { .. } => {}
        }
        let best_after = self.tree.as_ref().map(|t| t.best);
        if best_after.is_some() && (best_after != best_before || self.job.is_none()) {
            self.new_job();
        }
        std::mem::take(&mut self.out)
    }

    fn engine(&self) -> Engine {
        Engine::Pow
    }

    fn work_rules(&self) -> Option<&PowRules> {
        Some(&self.rules)
    }

    fn restore_wal(&mut self, entries: Vec<Vec<u8>>) -> Result<(), WalError> {
        for (index, entry) in entries.iter().enumerate() {
            let entry: WalEntry = wire::decode(entry).map_err(|reason| WalError { index, reason })?;
            self.restored.push(entry);
        }
        Ok(())
    }
}
