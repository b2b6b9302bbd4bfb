//! The frontier as a memory outside the main trace, checked by a multiset argument in
//! Winterfell's auxiliary segment.
//!
//! An entry is (width, tag, digest): the width is 2^level, and the *tag* is the tree's size at
//! the moment the entry was completed: for the entry at level `l`, a size whose bits below `l`
//! are clear and whose bit `l` is set. It names the subtree the entry is the root of (the
//! leaves `tag - 2^l .. tag`), so no two entries share a tag.
//!
//! * The old root's climb **puts in** the old frontier: at each merge, (2^l, the old size with
//!   the bits below the level cleared, the hasher's left input).
//! * A leaf's store **puts in** (2^l at the stored level, the size after the leaf, the node).
//! * Every later merge (a leaf's, or a new-root climb's) **takes out** (2^l, `R 2^l`, the
//!   hasher's left input); `R 2^l` is the current size with the bits below the level cleared.
//!
//! In a root climb the merges follow from the size's bits, which the shifted size `R` fixes
//! (`air.rs`; the merge flag `M` is constant through a cycle, as it is read at the cycle's
//! start and at its end). In a leaf's climb the prover chooses where to merge, and the memory
//! makes the choice the size's. A leaf `N`'s climb merges at levels `0..j` and stores at level
//! `j` (a continue forces the next cycle to merge); its take-out tags are `N + 1 - 2^i`, below
//! 2^32, whatever `R` became in the field, so a put-in `(2^i, T)` has at most one leaf that can
//! take it out, `T - 1 + 2^i`. Take the first leaf `N` whose `j` differs from its trailing ones
//! `t`. If `j > t`, its take-out at level `t`, `(2^t, N + 1 - 2^t)`, an even multiple of 2^t,
//! matches nothing: the old frontier's entries of that width are odd multiples, the only leaf
//! that could have put it in (`N - 2^t`, honest) stored at a higher level, and later leaves put
//! in tags above `N + 1`. If `j < t`, the honest entry `(2^j, N + 1 - 2^j)` stays in: its only
//! leaf taker is `N`, which skipped it, and the new root's climb takes out the final size's
//! entries, whose tags at that width are above `N`. Later deviations do not matter: these
//! hold whatever the later leaves do. The widths close the remaining shapes: equal multisets
//! have equal sums of widths (integers, 2^level each); the old climb puts in `n`, each leaf
//! adds a net 1 (2^j in, 2^j - 1 out) and the new root's climb takes out the final size: so no
//! extra root climb in the leaf phase (it would take out its size more) and no leaf climb past
//! level 31 (it would add 2 - 2^32).
//!
//! The tags and widths of every access follow from `N`, `R` and the level, which the AIR fixes;
//! the digests are the prover's. With random `alpha` and `r_0..r_5` drawn after the main trace
//! is committed, the column `P` is the running product of `alpha - (r_0 width + r_1 tag + r_2
//! d_0 + .. + r_5 d_3)` over entries put in, divided by it over entries taken out; `P` is 1 at
//! the first row and again after the new root's climb. The entries put in have distinct tags,
//! so equal multisets mean each take-out reads the digest put in under its width and tag. The
//! product does not order accesses; the honest order puts each entry in before its take-out,
//! and a take-out's only possible put-in (above) comes from an earlier leaf or the old climb.
//! A false multiset survives only if the two products agree at the random point: at most
//! (accesses) / |E| by Schwartz-Zippel, about 2^-108 for the quadratic extension of the 64-bit
//! field and a million accesses.

use winterfell::math::FieldElement;
use winterfell::math::fields::f64::BaseElement;

use crate::rescue::RescueDigest;

/// Auxiliary columns: the running product.
pub(super) const AUX_WIDTH: usize = 1;
/// Random elements the auxiliary segment draws: `alpha`, then the width's, the tag's and the
/// four digest elements' coefficients.
pub(super) const RANDS: usize = 7;

/// Whether an access puts an entry into the memory or takes one out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// The entry enters the frontier.
    In,
    /// The entry leaves the frontier (a merge consumed it, or the new root's climb read it).
    Out,
}

/// One access of the frontier, at the trace row whose transition accounts for it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Access {
    pub row: usize,
    pub direction: Direction,
    /// The entry's level (its width is 2^level).
    pub level: usize,
    /// The size its subtree ends at (an integer, except in a dishonest prover's climb).
    pub tag: BaseElement,
    pub digest: RescueDigest,
}

/// `alpha - (r_0 width + r_1 tag + r_2 d_0 + .. + r_5 d_3)`: the factor an entry adds to the
/// running product (the AIR evaluates it over trace values, the prover over accesses).
pub(super) fn factor<F, E>(rand: &[E], width: F, tag: F, digest: [F; 4]) -> E
where
    F: FieldElement,
    E: FieldElement + From<F>,
{
    let mut fingerprint = rand[1] * E::from(width) + rand[2] * E::from(tag);
    for (coefficient, element) in rand[3..RANDS].iter().zip(digest) {
        fingerprint += *coefficient * E::from(element);
    }
    rand[0] - fingerprint
}

/// The running product over `rows` rows: 1 at row 0, and row `r + 1` is row `r` times the
/// factors of the entries accessed at row `r` put in, divided by those taken out.
pub(super) fn running_product<E>(rows: usize, accesses: &[Access], rand: &[E]) -> Vec<E>
where
    E: FieldElement<BaseField = BaseElement> + From<BaseElement>,
{
    let mut numerators = vec![E::ONE; rows];
    let mut denominators = vec![E::ONE; rows];
    for access in accesses {
        let digest: [BaseElement; 4] = *access.digest.as_elements().first_chunk().expect("4 elements");
        let width = BaseElement::new(1 << access.level);
        let value = factor(rand, width, access.tag, digest);
        match access.direction {
            Direction::In => numerators[access.row] *= value,
            Direction::Out => denominators[access.row] *= value,
        }
    }
    let inverses = winterfell::math::batch_inversion(&denominators);
    let mut column = Vec::with_capacity(rows);
    let mut product = E::ONE;
    for row in 0..rows {
        column.push(product);
        product = product * numerators[row] * inverses[row];
    }
    column
}
