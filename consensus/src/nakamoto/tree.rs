//! The blocks a Proof-of-Work node knows above (and a little below) its last final block, with
//! the cumulative work of each, so fork choice is a comparison and a reorg a walk.
//!
//! The root is the last final block (the genesis, hash zero, before the first). Blocks below it
//! are kept for [`RETAIN`] heights: their times feed the median-time rule of the blocks above,
//! and a fork from below the root can be weighed (and refused, with an alarm) rather than
//! ignored.

use std::collections::HashMap;

use pyralog_crypto::Digest;

use crate::pow::{MEDIAN_TIME_SPAN, Seal, U256};

/// How many heights below the root stay in the tree.
pub(super) const RETAIN: u64 = 2 * MEDIAN_TIME_SPAN as u64;

/// The seal hash of the genesis (what the first block's seal names as parent).
pub(super) const GENESIS: Digest = Digest([0; 32]);

/// A block in the tree.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// Its seal (the genesis's is made up: height 0, the genesis time).
    pub(super) seal: Seal,
    /// Its payload (empty for the genesis and for final seals restored without one).
    pub(super) txs: Vec<Vec<u8>>,
    /// Work from the tree's base to it, inclusive.
    pub(super) work: U256,
    /// When it arrived, in order (ties in work go to the first seen).
    pub(super) seen: u64,
}

/// The tree.
#[derive(Debug)]
pub(super) struct BlockTree {
    nodes: HashMap<Digest, Node>,
    /// The last final block.
    pub(super) root: Digest,
    /// The heaviest block descending from the root (the root itself when none does).
    pub(super) best: Digest,
    seen: u64,
}

impl BlockTree {
    /// A tree holding only the genesis, at `genesis_time_ms`.
    pub(super) fn genesis(genesis_time_ms: u64, initial_bits: u32) -> BlockTree {
        let seal = Seal {
            parent: GENESIS,
            height: 0,
            block: Digest([0; 32]),
            time_ms: genesis_time_ms,
            bits: initial_bits,
            nonce: 0,
        };
        let node = Node { seal, txs: Vec::new(), work: U256::zero(), seen: 0 };
        BlockTree { nodes: HashMap::from([(GENESIS, node)]), root: GENESIS, best: GENESIS, seen: 0 }
    }

    /// A tree rooted at `seal`, a final block known without its ancestors.
    pub(super) fn rooted(seal: Seal) -> BlockTree {
        let hash = seal.hash();
        let node = Node { seal, txs: Vec::new(), work: U256::zero(), seen: 0 };
        BlockTree { nodes: HashMap::from([(hash, node)]), root: hash, best: hash, seen: 0 }
    }

    pub(super) fn get(&self, hash: &Digest) -> Option<&Node> {
        self.nodes.get(hash)
    }

    pub(super) fn contains(&self, hash: &Digest) -> bool {
        self.nodes.contains_key(hash)
    }

    pub(super) fn root_height(&self) -> u64 {
        self.nodes.get(&self.root).map_or(0, |n| n.seal.height)
    }

    pub(super) fn best_node(&self) -> &Node {
        self.nodes.get(&self.best).expect("the best block is in the tree")
    }

    /// The parent's seal as the rules take it: `None` for the genesis.
    pub(super) fn parent_seal(&self, hash: &Digest) -> Option<Option<&Seal>> {
        if *hash == GENESIS {
            return self.nodes.contains_key(hash).then_some(None);
        }
        self.nodes.get(hash).map(|n| Some(&n.seal))
    }

    /// Adds a block whose parent is in the tree and whose seal proves `work`.
    pub(super) fn insert(&mut self, seal: Seal, txs: Vec<Vec<u8>>, work: U256) -> Digest {
        let hash = seal.hash();
        let base = self.nodes.get(&seal.parent).map_or(U256::zero(), |p| p.work);
        self.seen += 1;
        let node = Node { seal, txs, work: base.saturating_add(work), seen: self.seen };
        self.nodes.insert(hash, node);
        hash
    }

    /// Adds a block read back from the WAL (checked before it was logged) if its parent is here,
    /// in height order so parents come first.
    pub(super) fn restore(&mut self, seal: Seal, txs: Vec<Vec<u8>>, limit: U256) {
        if self.contains(&seal.parent)
            && let Ok(work) = seal.check(limit)
        {
            self.insert(seal, txs, work);
        }
    }

    /// The times of `hash` and its ancestors, newest first, at most [`MEDIAN_TIME_SPAN`].
    pub(super) fn times_back_from(&self, hash: &Digest) -> Vec<u64> {
        let mut times = Vec::with_capacity(MEDIAN_TIME_SPAN);
        let mut at = self.nodes.get(hash);
        while let Some(node) = at {
            times.push(node.seal.time_ms);
            if times.len() == MEDIAN_TIME_SPAN || node.seal.height == 0 {
                break;
            }
            at = self.nodes.get(&node.seal.parent);
        }
        times
    }

    /// The ancestor of `hash` at `height` (itself at its own height), if the tree holds it.
    pub(super) fn ancestor_at(&self, hash: &Digest, height: u64) -> Option<Digest> {
        let mut at = *hash;
        loop {
            let node = self.nodes.get(&at)?;
            if node.seal.height == height {
                return Some(at);
            }
            if node.seal.height < height || node.seal.height == 0 {
                return None;
            }
            at = node.seal.parent;
        }
    }

    /// Whether `hash` is the root or a block above it on its branch.
    pub(super) fn descends_from_root(&self, hash: &Digest) -> bool {
        self.ancestor_at(hash, self.root_height()) == Some(self.root)
    }

    /// The blocks from just above the root up to `hash`, oldest first.
    pub(super) fn path_from_root(&self, hash: &Digest) -> Vec<Digest> {
        let root_height = self.root_height();
        let mut path = Vec::new();
        let mut at = *hash;
        while let Some(node) = self.nodes.get(&at) {
            if node.seal.height <= root_height {
                break;
            }
            path.push(at);
            at = node.seal.parent;
        }
        path.reverse();
        path
    }

    /// Whether `candidate` should replace the best block: more work (ties: the first seen stays).
    pub(super) fn heavier(&self, candidate: &Digest) -> bool {
        let (Some(candidate), Some(best)) = (self.nodes.get(candidate), self.nodes.get(&self.best)) else {
            return false;
        };
        candidate.work > best.work
    }

    /// The heaviest block descending from the root (first seen among equals).
    pub(super) fn heaviest_from_root(&self) -> Digest {
        let mut best = self.root;
        for (hash, node) in &self.nodes {
            if node.seal.height <= self.root_height() || !self.descends_from_root(hash) {
                continue;
            }
            let current = &self.nodes[&best];
            if node.work > current.work || (node.work == current.work && node.seen < current.seen) {
                best = *hash;
            }
        }
        best
    }

    /// Makes `hash` (a child of the root on the best branch) the root, and forgets blocks more
    /// than [`RETAIN`] heights below it.
    pub(super) fn advance_root(&mut self, hash: Digest) {
        self.root = hash;
        let floor = self.root_height().saturating_sub(RETAIN);
        self.nodes.retain(|_, node| node.seal.height >= floor);
    }
}
