//! The frontier as a memory outside the main trace, checked by a multiset argument in
//! Winterfell's auxiliary segment.
//!
//! An entry is a pair (tag, digest). The *tag* is the tree's size at the moment the entry was
//! completed: for the entry at level `l`, a size whose bits below `l` are clear and whose bit
//! `l` is set. It names the subtree the entry is the root of (the leaves `tag - 2^l .. tag`), so
//! no two entries share a tag, and the level is implied by it (its trailing zeros).
//!
//! * The old root's climb **puts in** the old frontier: at each merge, (the old size with the
//!   bits below the level cleared, the hasher's left input).
//! * A leaf's store **puts in** (the size after the store, the stored node).
//! * Every later merge (a leaf's, or a new-root climb's) **takes out** (the current size with
//!   the bits below the level cleared, the hasher's left input).
//!
//! The tags of every access follow from `B` and the level, which the AIR fixes; only the digests are
//! the prover's. With random `alpha` and `r_0..r_4` drawn after the main trace is committed,
//! the column `P` is the running product of `alpha - (r_0 tag + r_1 d_0 + .. + r_4 d_3)` over
//! entries put in, divided by it over entries taken out; `P` is 1 at the first row and again
//! after the new root's climb. The entries put in have distinct tags, so equal multisets mean
//! each take-out reads the digest put in under its tag, which the honest order puts in
//! before. A false digest survives only if the two products agree at the random point: at most
//! (accesses) / |E| by Schwartz-Zippel, about 2^-110 for the quadratic extension of the 64-bit
//! field and a million accesses.

use winterfell::math::FieldElement;
use winterfell::math::fields::f64::BaseElement;

use crate::rescue::RescueDigest;

/// Auxiliary columns: the running product.
pub(super) const AUX_WIDTH: usize = 1;
/// Random elements the auxiliary segment draws: `alpha`, then the tag's and the four digest
/// elements' coefficients.
pub(super) const RANDS: usize = 6;

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
    pub tag: u64,
    pub digest: RescueDigest,
}

/// `alpha - (r_0 tag + r_1 d_0 + r_2 d_1 + r_3 d_2 + r_4 d_3)`: the factor an entry adds to
/// the running product (the AIR evaluates it over trace values, the prover over accesses).
pub(super) fn factor<F, E>(rand: &[E], tag: F, digest: [F; 4]) -> E
where
    F: FieldElement,
    E: FieldElement + From<F>,
{
    let mut fingerprint = rand[1] * E::from(tag);
    for (coefficient, element) in rand[2..RANDS].iter().zip(digest) {
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
        let value = factor(rand, BaseElement::new(access.tag), digest);
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
