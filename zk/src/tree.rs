//! Fixed-depth, append-only Merkle trees over a ZK-friendly hash (Poseidon for Groth16,
//! Rescue-Prime for STARKs).
//!
//! Slots past the last leaf hold the empty digest, so the root at any size is defined and a
//! proof for it is `depth` siblings. The tree keeps every complete node (two digests per leaf)
//! and the empty subtrees' digests per level; the right edge of a past size is recomputed from
//! them in `depth` hashes. Roots and paths are available for *any past size*, like the BLAKE3
//! tree's, so a proof can target the root a checkpoint certified.

use std::fmt::Debug;

/// The hash a tree is built with.
pub trait TreeHasher {
    /// A node digest.
    type Digest: Copy + Eq + Debug;
    /// An inner node over two children.
    fn node(left: &Self::Digest, right: &Self::Digest) -> Self::Digest;
    /// The digest of an empty slot.
    fn empty() -> Self::Digest;
}

/// The deepest tree supported (2^32 leaves per partition).
pub const MAX_DEPTH: usize = 32;

/// Why a tree operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// A depth of 0 or more than [`MAX_DEPTH`].
    #[error("tree depth {0} is not in 1..={MAX_DEPTH}")]
    BadDepth(usize),
    /// Every slot is taken.
    #[error("the tree is full ({0} leaves)")]
    Full(u64),
    /// A size the tree has not reached.
    #[error("size {size} is beyond the tree's {len} leaves")]
    SizeBeyondTree {
        /// Asked.
        size: u64,
        /// Leaves appended.
        len: u64,
    },
    /// A leaf at or past the size.
    #[error("leaf {index} is not below size {size}")]
    IndexBeyondSize {
        /// Asked.
        index: u64,
        /// The size.
        size: u64,
    },
}

/// `zeros[l]` for `l` in `0..=depth`: the digest of an empty subtree of height `l`.
pub fn empty_subtrees<H: TreeHasher>(depth: usize) -> Vec<H::Digest> {
    let mut zeros = vec![H::empty()];
    for level in 0..depth {
        zeros.push(H::node(&zeros[level], &zeros[level]));
    }
    zeros
}

/// An authentication path: the leaf's position and its siblings from the leaf level up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPath<D> {
    /// The leaf's position.
    pub index: u64,
    /// Sibling digests, `siblings[0]` at the leaf level, `depth` in all.
    pub siblings: Vec<D>,
}

impl<D: Copy> AuthPath<D> {
    /// The root this path leads to from `leaf`.
    pub fn root<H: TreeHasher<Digest = D>>(&self, leaf: &D) -> D {
        self.siblings.iter().enumerate().fold(*leaf, |current, (level, sibling)| {
            if (self.index >> level) & 1 == 0 {
                H::node(&current, sibling)
            } else {
                H::node(sibling, &current)
            }
        })
    }
}

/// How a tree's digests are stored: 32 canonical bytes.
pub trait DigestCodec: TreeHasher {
    /// The digest's 32 bytes.
    fn to_bytes(digest: &Self::Digest) -> [u8; 32];
    /// The digest of 32 bytes, if they are a canonical encoding.
    fn from_bytes(bytes: &[u8; 32]) -> Option<Self::Digest>;
}

/// Where a tree's complete nodes are kept: in memory ([`AppendTree`]) or in a database.
pub trait NodeSource<D> {
    /// Why a node could not be read.
    type Error;
    /// Complete node `index` of `level` (level 0: the leaves). Only nodes whose whole subtree
    /// lies below a size the source has reached are asked for.
    fn complete_node(&self, level: usize, index: u64) -> Result<D, Self::Error>;
}

/// Node `index` of `level` in the tree of `size` leaves: stored when complete, empty when past
/// the size, recomputed on the right edge (at most `level` hashes).
pub fn node_at<H: TreeHasher, S: NodeSource<H::Digest>>(
    source: &S,
    zeros: &[H::Digest],
    level: usize,
    index: u64,
    size: u64,
) -> Result<H::Digest, S::Error> {
    let start = index << level;
    if start >= size {
        return Ok(zeros[level]);
    }
    if start + (1u64 << level) <= size {
        return source.complete_node(level, index);
    }
    let left = node_at::<H, S>(source, zeros, level - 1, index * 2, size)?;
    let right = node_at::<H, S>(source, zeros, level - 1, index * 2 + 1, size)?;
    Ok(H::node(&left, &right))
}

/// The siblings of slot `index` in the tree of `size` leaves (`zeros` has `depth + 1` levels).
/// The caller checks that the slot exists.
pub fn siblings<H: TreeHasher, S: NodeSource<H::Digest>>(
    source: &S,
    zeros: &[H::Digest],
    index: u64,
    size: u64,
) -> Result<AuthPath<H::Digest>, S::Error> {
    let depth = zeros.len() - 1;
    let siblings = (0..depth)
        .map(|level| node_at::<H, S>(source, zeros, level, (index >> level) ^ 1, size))
        .collect::<Result<_, _>>()?;
    Ok(AuthPath { index, siblings })
}

/// The append-only tree's right edge: what appending and the current root need, without the
/// rest of the tree. Each append returns the nodes it completed, for the caller to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier<H: TreeHasher> {
    len: u64,
    /// `edge[l]`: the complete node of level `l` left of the next slot's path, where bit `l` of
    /// `len` is set (level `depth`: the root of a full tree).
    edge: Vec<Option<H::Digest>>,
    zeros: Vec<H::Digest>,
}

/// A node an append completed: level, index, digest.
pub type CompletedNode<D> = (usize, u64, D);

impl<H: TreeHasher> Frontier<H> {
    /// The frontier of an empty tree of `depth` levels above the leaves.
    pub fn new(depth: usize) -> Result<Self, TreeError> {
        if depth == 0 || depth > MAX_DEPTH {
            return Err(TreeError::BadDepth(depth));
        }
        Ok(Frontier { len: 0, edge: vec![None; depth + 1], zeros: empty_subtrees::<H>(depth) })
    }

    /// The frontier of the tree of `size` leaves whose complete nodes `source` holds (one read
    /// per set bit of `size`).
    pub fn load<S>(depth: usize, source: &S, size: u64) -> Result<Self, S::Error>
    where
        S: NodeSource<H::Digest>,
        S::Error: From<TreeError>,
    {
        let mut frontier = Frontier::new(depth)?;
        if size > 1u64 << depth {
            return Err(TreeError::Full(1u64 << depth).into());
        }
        for level in 0..=depth {
            if (size >> level) & 1 == 1 {
                frontier.edge[level] = Some(source.complete_node(level, (size >> level) - 1)?);
            }
        }
        frontier.len = size;
        Ok(frontier)
    }

    /// Leaves appended.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no leaf was appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Levels above the leaves.
    pub fn depth(&self) -> usize {
        self.zeros.len() - 1
    }

    /// The empty subtrees' digests, level by level.
    pub fn zeros(&self) -> &[H::Digest] {
        &self.zeros
    }

    /// Appends `leaf`; returns the nodes it completed, the leaf first (one hash per completed
    /// inner node, amortized under one per append).
    pub fn push(&mut self, leaf: H::Digest) -> Result<Vec<CompletedNode<H::Digest>>, TreeError> {
        let depth = self.depth();
        if self.len == 1u64 << depth {
            return Err(TreeError::Full(self.len));
        }
        let mut completed = vec![(0, self.len, leaf)];
        let mut node = leaf;
        let mut level = 0;
        // Climb while the new node is a right child: its left sibling is on the edge.
        while (self.len >> level) & 1 == 1 {
            let left = self.edge[level].take().expect("the edge holds a node where len's bit is set");
            node = H::node(&left, &node);
            level += 1;
            completed.push((level, self.len >> level, node));
        }
        self.edge[level] = Some(node);
        self.len += 1;
        Ok(completed)
    }

    /// The root now (`depth` hashes).
    pub fn root(&self) -> H::Digest {
        let depth = self.depth();
        if let Some(root) = self.edge[depth] {
            return root;
        }
        // Climb from the next (empty) slot: left siblings from the edge, right ones empty.
        (0..depth).fold(self.zeros[0], |node, level| match self.edge[level] {
            Some(left) if (self.len >> level) & 1 == 1 => H::node(&left, &node),
            _ => H::node(&node, &self.zeros[level]),
        })
    }
}

/// An append-only tree of fixed depth.
pub struct AppendTree<H: TreeHasher> {
    depth: usize,
    /// `levels[l][i]`: the complete node `i` of level `l` (level 0: leaves).
    levels: Vec<Vec<H::Digest>>,
    /// `zeros[l]`: the digest of an empty subtree of height `l`.
    zeros: Vec<H::Digest>,
}

impl<H: TreeHasher> Clone for AppendTree<H> {
    fn clone(&self) -> Self {
        AppendTree { depth: self.depth, levels: self.levels.clone(), zeros: self.zeros.clone() }
    }
}

impl<H: TreeHasher> std::fmt::Debug for AppendTree<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendTree").field("depth", &self.depth).field("len", &self.len()).finish()
    }
}

impl<H: TreeHasher> AppendTree<H> {
    /// An empty tree of `depth` levels above the leaves.
    pub fn new(depth: usize) -> Result<Self, TreeError> {
        if depth == 0 || depth > MAX_DEPTH {
            return Err(TreeError::BadDepth(depth));
        }
        Ok(AppendTree { depth, levels: vec![Vec::new(); depth + 1], zeros: empty_subtrees::<H>(depth) })
    }

    /// Levels above the leaves.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Leaves appended.
    pub fn len(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Whether no leaf was appended.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// Appends a leaf digest; returns its position. Costs one hash per completed subtree
    /// (amortized under one).
    pub fn append(&mut self, leaf: H::Digest) -> Result<u64, TreeError> {
        let position = self.len();
        if position == 1u64 << self.depth {
            return Err(TreeError::Full(position));
        }
        self.levels[0].push(leaf);
        let mut index = position;
        for level in 0..self.depth {
            if index & 1 == 0 {
                break;
            }
            let row = &self.levels[level];
            let parent = H::node(&row[row.len() - 2], &row[row.len() - 1]);
            self.levels[level + 1].push(parent);
            index >>= 1;
        }
        Ok(position)
    }

    /// The root now.
    pub fn root(&self) -> H::Digest {
        self.node_at(self.depth, 0, self.len())
    }

    /// The root when the tree had `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<H::Digest, TreeError> {
        self.check_size(size)?;
        Ok(self.node_at(self.depth, 0, size))
    }

    /// The path of leaf `index` in the tree of `size` leaves.
    pub fn path(&self, index: u64, size: u64) -> Result<AuthPath<H::Digest>, TreeError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexBeyondSize { index, size });
        }
        Ok(self.siblings(index, size))
    }

    /// The path of the next slot in the tree of `size` leaves: the siblings an append at
    /// `size` hashes with (with the empty digest as leaf it leads to the root at `size`).
    pub fn append_path(&self, size: u64) -> Result<AuthPath<H::Digest>, TreeError> {
        self.check_size(size)?;
        if size == 1u64 << self.depth {
            return Err(TreeError::Full(size));
        }
        Ok(self.siblings(size, size))
    }

    /// Leaf `index`, if appended.
    pub fn leaf(&self, index: u64) -> Option<H::Digest> {
        usize::try_from(index).ok().and_then(|index| self.levels[0].get(index)).copied()
    }

    fn siblings(&self, index: u64, size: u64) -> AuthPath<H::Digest> {
        let Ok(path) = siblings::<H, Self>(self, &self.zeros, index, size);
        path
    }

    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        if size > self.len() {
            return Err(TreeError::SizeBeyondTree { size, len: self.len() });
        }
        Ok(())
    }

    fn node_at(&self, level: usize, index: u64, size: u64) -> H::Digest {
        let Ok(node) = node_at::<H, Self>(self, &self.zeros, level, index, size);
        node
    }
}

impl<H: TreeHasher> NodeSource<H::Digest> for AppendTree<H> {
    type Error = std::convert::Infallible;

    fn complete_node(&self, level: usize, index: u64) -> Result<H::Digest, Self::Error> {
        Ok(self.levels[level][index as usize])
    }
}
