//! The Rescue round as a constraint, and the base field's fast matrix product the prover
//! evaluates it with.

use winter_crypto::hashers::Rp64_256;
use winterfell::math::FieldElement;
use winterfell::math::fields::f64::BaseElement;

use super::air::STATE;

/// `MDS(x^7) + ARK1 - (MDS^-1(y - ARK2))^7`: zero when `y` is one round after `x` (the
/// round's second half is checked backwards, so the inverse S-box costs degree 7 too).
pub(super) fn gap<E: FieldElement<BaseField = BaseElement> + From<BaseElement>>(
    x: &[E],
    y: &[E],
    ark1: &[E],
    ark2: &[E],
) -> [E; STATE] {
    let forward: [E; STATE] = std::array::from_fn(|j| pow7(x[j]));
    let backward: [E; STATE] = std::array::from_fn(|j| y[j] - ark2[j]);
    let forward = multiply(&Rp64_256::MDS, &MDS_CANONICAL, &forward);
    let backward = multiply(&Rp64_256::INV_MDS, &INV_MDS_CANONICAL, &backward);
    std::array::from_fn(|j| forward[j] + ark1[j] - pow7(backward[j]))
}

/// A matrix's entries as integers below p.
type Canonical = [[u64; STATE]; STATE];

const MDS_CANONICAL: Canonical = canonical(&Rp64_256::MDS);
const INV_MDS_CANONICAL: Canonical = canonical(&Rp64_256::INV_MDS);

const fn canonical(matrix: &[[BaseElement; STATE]; STATE]) -> Canonical {
    let mut out = [[0; STATE]; STATE];
    let mut row = 0;
    while row < STATE {
        let mut column = 0;
        while column < STATE {
            out[row][column] = matrix[row][column].as_int();
            column += 1;
        }
        row += 1;
    }
    out
}

/// `matrix v`; `canonical` is the same matrix as integers.
fn multiply<E: FieldElement<BaseField = BaseElement> + From<BaseElement>>(
    matrix: &[[BaseElement; STATE]; STATE],
    canonical: &Canonical,
    v: &[E; STATE],
) -> [E; STATE] {
    // The prover evaluates the main constraints over the base field, millions of rows: there
    // one reduction per output instead of one per product (the verifier's extension-field
    // point takes the generic path).
    if E::EXTENSION_DEGREE == 1 {
        let base = E::slice_as_base_elements(v);
        // A canonical integer times a Montgomery form (x 2^64) is the product's Montgomery
        // form: the inner values go in and come out as they are.
        let v: [u64; STATE] = std::array::from_fn(|j| base[j].inner());
        return std::array::from_fn(|row| E::from(BaseElement::from_mont(dot(&canonical[row], &v))));
    }
    std::array::from_fn(|row| matrix[row].iter().zip(v).fold(E::ZERO, |sum, (&m, &x)| sum + E::from(m) * x))
}

/// `sum(row[j] v[j])` modulo p, below p, the 128-bit products summed before one reduction:
/// with p = 2^64 - 2^32 + 1, 2^64 = 2^32 - 1, 2^96 = -1 and 2^128 = -2^32 modulo p.
fn dot(row: &[u64; STATE], v: &[u64; STATE]) -> u64 {
    let mut low: u128 = 0;
    let mut carries: u64 = 0;
    for (&m, &x) in row.iter().zip(v) {
        let (sum, carried) = low.overflowing_add(u128::from(m) * u128::from(x));
        low = sum;
        carries += u64::from(carried);
    }
    reduce(low, carries)
}

/// `low + carries 2^128` modulo p, below p (`carries` < 16).
fn reduce(low: u128, carries: u64) -> u64 {
    const P: u64 = 0xffff_ffff_0000_0001;
    /// 2^64 modulo p: a wrapped subtraction is corrected by subtracting it, a wrapped addition
    /// by adding it.
    const EPSILON: u64 = 0xffff_ffff;
    let (l0, l1) = (low as u64, (low >> 64) as u64);
    let (l1_low, l1_high) = (l1 & EPSILON, l1 >> 32);
    // l0 - l1_high 2^96 - carries 2^128 + l1_low 2^64 = l0 - l1_high - carries 2^32
    // + l1_low (2^32 - 1); each wrapped step stays congruent (the corrections cannot wrap
    // again: a subtraction of under 2^36 wraps to at least 2^64 - 2^36, and l1_low EPSILON <
    // 2^64 - 2^33 leaves room for EPSILON after a wrapped addition).
    let (value, borrowed) = l0.overflowing_sub(l1_high);
    let value = value.wrapping_sub(EPSILON * u64::from(borrowed));
    let (value, borrowed) = value.overflowing_sub(carries << 32);
    let value = value.wrapping_sub(EPSILON * u64::from(borrowed));
    let (value, carried) = value.overflowing_add(l1_low * EPSILON);
    let value = value.wrapping_add(EPSILON * u64::from(carried));
    if value >= P { value - P } else { value }
}

fn pow7<E: FieldElement>(x: E) -> E {
    let square = x.square();
    square.square() * square * x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed-seed xorshift generator (reproducible cases without a dependency).
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// The reduction agrees with the field's arithmetic on extreme and random sums.
    #[test]
    fn the_reduction_is_the_fields() {
        let two_32 = BaseElement::new(1 << 32);
        let two_64 = two_32 * two_32;
        let expected = |low: u128, carries: u64| -> u64 {
            let (l0, l1) = (low as u64, (low >> 64) as u64);
            (BaseElement::new(l0)
                + BaseElement::new(l1) * two_64
                + BaseElement::new(carries) * two_64 * two_64)
                .as_int()
        };
        let mut random = xorshift(0x2545_f491_4f6c_dd1d);
        let mut cases =
            vec![(u128::MAX, 15), (0, 15), (u128::MAX, 0), (0, 0), (1u128 << 96, 1), ((1u128 << 96) - 1, 0)];
        for _ in 0..10_000 {
            let low = (u128::from(random()) << 64) | u128::from(random());
            cases.push((low, random() % 16));
        }
        for (low, carries) in cases {
            assert_eq!(reduce(low, carries), expected(low, carries), "{low:#x} + {carries} 2^128");
        }
    }

    /// The base field's fast product is the field's own, on random vectors and on the largest
    /// values (which overflow the 128-bit sum).
    #[test]
    fn the_fast_matrix_product_is_the_fields() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut random = || BaseElement::new(next());
        let largest = BaseElement::ZERO - BaseElement::ONE;
        let mut vectors: Vec<[BaseElement; STATE]> =
            (0..200).map(|_| std::array::from_fn(|_| random())).collect();
        vectors.push([largest; STATE]);
        vectors.push([BaseElement::ZERO; STATE]);
        for v in vectors {
            for (matrix, canonical) in
                [(&Rp64_256::MDS, &MDS_CANONICAL), (&Rp64_256::INV_MDS, &INV_MDS_CANONICAL)]
            {
                let expected: [BaseElement; STATE] = std::array::from_fn(|row| {
                    matrix[row].iter().zip(&v).fold(BaseElement::ZERO, |sum, (&m, &x)| sum + m * x)
                });
                assert_eq!(multiply(matrix, canonical, &v), expected);
            }
        }
    }
}
