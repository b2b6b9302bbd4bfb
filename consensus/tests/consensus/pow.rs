//! Proof-of-Work arithmetic: compact targets round-trip and refuse what Bitcoin refuses, work is
//! `2^256 / (target + 1)`, seals are checked against their target and the chain's limit, and
//! ASERT gives the specification's published test vectors and keeps a steady miner's mean block
//! time on schedule and answers a 10x hashrate step within about one half-life (seeded
//! simulations: solve times drawn from the expected work).

use proptest::prelude::*;
use pyralog_consensus::pow::{Asert, PowError, Seal, U256, bits_from_target, target_from_bits, work};
use pyralog_crypto::Digest;

/// Bitcoin's genesis target (`0x1d00ffff`).
fn bitcoin_limit() -> U256 {
    U256::from(0xffffu64) << 208
}

#[test]
fn compact_targets_decode_as_bitcoin_reads_them_and_refuse_the_rest() {
    assert_eq!(target_from_bits(0x1d00_ffff), Ok(bitcoin_limit()));
    assert_eq!(target_from_bits(0x0312_3456), Ok(U256::from(0x12_3456u64)));
    assert_eq!(target_from_bits(0x0200_8000), Ok(U256::from(0x80u64)));
    for bad in [0x0000_0000, 0x0480_0001, 0x1d00_0000, 0x2200_ffff, 0xff12_3456] {
        assert_eq!(target_from_bits(bad), Err(PowError::BadBits(bad)), "{bad:#x}");
    }
    assert_eq!(bits_from_target(bitcoin_limit()), 0x1d00_ffff);
    assert_eq!(bits_from_target(U256::from(0x80u64)), 0x0200_8000);
}

proptest! {
    #[test]
    fn a_target_rounded_to_its_compact_form_decodes_to_itself(mantissa in 1u32..0x80_0000, exponent in 3u32..33) {
        let bits = (exponent << 24) | mantissa;
        prop_assume!(target_from_bits(bits).is_ok());
        let target = target_from_bits(bits).unwrap();
        prop_assert_eq!(target_from_bits(bits_from_target(target)), Ok(target));
    }
}

#[test]
fn work_is_the_expected_number_of_hashes() {
    assert_eq!(work(U256::MAX), U256::one());
    assert_eq!(work(U256::MAX >> 1), U256::from(2u64));
    // Bitcoin's genesis difficulty-1 target: 2^256 / (0xffff * 2^208 + 1) = 0x100010001.
    assert_eq!(work(bitcoin_limit()), U256::from(0x1_0001_0001u64));
}

#[test]
fn a_seal_proves_work_only_under_its_target_and_the_limit() {
    let easy = 0x2100_7fff; // 0x7fff * 2^240: about one hash in two meets it
    let limit = target_from_bits(easy).unwrap();
    let mut seal = Seal {
        parent: Digest([1; 32]),
        height: 7,
        block: Digest([2; 32]),
        time_ms: 1_000,
        bits: easy,
        nonce: 0,
    };
    while seal.check(limit).is_err() {
        seal.nonce += 1;
    }
    assert_eq!(seal.check(limit), Ok(work(limit)));
    assert!(U256::from_big_endian(&seal.hash().0) <= limit);
    // The same seal under a stricter limit, and a hash above a hard target.
    assert_eq!(seal.check(limit >> 1), Err(PowError::AboveLimit));
    let hard = Seal { bits: 0x0300_0001, ..seal };
    assert_eq!(hard.check(limit), Err(PowError::HashAboveTarget));
    // Every field is covered by the hash.
    assert_ne!(Seal { nonce: seal.nonce + 1, ..seal }.hash(), seal.hash());
    assert_ne!(Seal { parent: Digest([3; 32]), ..seal }.hash(), seal.hash());
}

/// A seeded xorshift in (0, 1).
struct Uniform(u64);

impl Uniform {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// `x` as a float (the simulation's only use of floats).
fn to_f64(x: U256) -> f64 {
    let bits = x.bits();
    match bits <= 64 {
        true => x.low_u64() as f64,
        false => (x >> (bits - 64)).low_u64() as f64 * 2f64.powi(bits as i32 - 64),
    }
}

/// `blocks` blocks mined at `hashrate(height)` hashes/s under ASERT anchored at block 0;
/// returns each block's solve time (s).
fn mine(asert: &Asert, blocks: usize, seed: u64, hashrate: impl Fn(usize) -> f64) -> Vec<f64> {
    let anchor_target = asert.limit >> 4;
    let mut rng = Uniform(seed);
    let (mut time, mut solve_times) = (0f64, Vec::with_capacity(blocks));
    let mut target = anchor_target;
    for height in 1..=blocks {
        // Expected hashes are the target's work; solve times are exponential around it.
        let expected = to_f64(work(target)) / hashrate(height);
        let solve = -rng.next().ln() * expected;
        time += solve;
        solve_times.push(solve);
        // The next target: the parent (this block) is `height` above the anchor, `time` after it.
        target = asert.next_target(anchor_target, time as i64, height as i64);
    }
    solve_times
}

#[test]
fn asert_keeps_a_steady_miner_on_schedule() {
    let asert = Asert { ideal_block_time_s: 600, half_life_s: 2 * 24 * 3600, limit: U256::one() << 100 };
    // A miner whose rate finds the anchor target in 4 minutes: ASERT raises the target until
    // blocks come every 10.
    let anchor_work = to_f64(work(asert.limit >> 4));
    let solve_times = mine(&asert, 10_000, 27, |_| anchor_work / 240.0);
    let settled = &solve_times[2_000..];
    let mean = settled.iter().sum::<f64>() / settled.len() as f64;
    assert!((mean - 600.0).abs() < 600.0 * 0.05, "mean block time {mean:.1} s");
}

#[test]
fn asert_answers_a_tenfold_hashrate_step_within_about_a_half_life() {
    // Short half-life and interval, so the simulation stays small.
    let asert = Asert { ideal_block_time_s: 60, half_life_s: 3_600, limit: U256::one() << 100 };
    let anchor_work = to_f64(work(asert.limit >> 4));
    let steady = anchor_work / 60.0;
    let step_at = 3_000;
    let solve_times = mine(&asert, 6_000, 99, |h| if h < step_at { steady } else { steady * 10.0 });
    // ASERT moves the target by half (or double) per half-life of schedule gained (or lost).
    let window = |from: usize, to: usize| solve_times[from..to].iter().sum::<f64>() / (to - from) as f64;
    assert!(window(step_at, step_at + 30) < 30.0, "right after the step blocks come fast");
    // One half-life of time after the step, blocks come within 30% of the interval again.
    let mut elapsed = 0.0;
    let one_half_life = step_at
        + solve_times[step_at..]
            .iter()
            .position(|t| {
                elapsed += t;
                elapsed >= 3_600.0
            })
            .unwrap();
    let settling = window(one_half_life, one_half_life + 100);
    assert!((settling - 60.0).abs() < 60.0 * 0.3, "mean one half-life after the step {settling:.1} s");
    // And it stays there.
    let after = window(step_at + 600, 6_000);
    assert!((after - 60.0).abs() < 60.0 * 0.08, "mean after the step {after:.1} s");
}

/// (anchor height, anchor parent time, anchor bits, [(height, time, the next block's bits)]).
type VectorRun = (i64, i64, u32, &'static [(i64, i64, u32)]);

/// Lines of the aserti3-2d specification's published test vectors (Bitcoin Cash Node's
/// `qa-assets/test_vectors/aserti3-2d`, runs 1, 3, 5 and 6; mirrored in public repositories),
/// under Bitcoin Cash's parameters: 600 s blocks, a two-day half-life, the limit `0x1d00ffff`.
/// Each run starts from an anchor (its height, its parent's time, its bits); a line gives a
/// block's height and time and the bits of the block after it.
#[test]
fn asert_matches_the_specifications_published_vectors() {
    let asert = Asert { ideal_block_time_s: 600, half_life_s: 172_800, limit: bitcoin_limit() };
    let runs: [VectorRun; 4] = [
        // run 1: steady 600 s blocks at the limit.
        (1, 0, 0x1d00ffff, &[(2, 1200, 0x1d00ffff), (11, 6600, 0x1d00ffff)]),
        // run 3: steady blocks at the smallest target.
        (1, 0, 0x01010000, &[(2, 1200, 0x01010000), (11, 6600, 0x01010000)]),
        // run 5: half-lives of height without time: the target halves each time, down to 1.
        (
            1,
            0,
            0x1d00ffff,
            &[
                (2, 0, 0x1d00fec5),
                (290, 0, 0x1c7f62c0),
                (578, 0, 0x1c3fb160),
                (30242, 0, 0x0f7f62c0),
                (60194, 0, 0x027f6200),
                (62498, 0, 0x017f0000),
                (64226, 0, 0x01010000),
                (64514, 0, 0x01010000),
            ],
        ),
        // run 6: random solve times around a real nBits.
        (
            1,
            0,
            0x1802aee8,
            &[
                (2, 1200, 0x1802aee8),
                (3, 1310, 0x1802ad91),
                (4, 1327, 0x1802abf8),
                (9, 7099, 0x1802b39c),
                (10, 7099, 0x1802b1f2),
                (22, 18902, 0x1802bed6),
                (551, 333860, 0x1802b7f8),
                (552, 338121, 0x1802c249),
            ],
        ),
    ];
    for (anchor_height, anchor_parent_time, anchor_bits, lines) in runs {
        let anchor = target_from_bits(anchor_bits).unwrap();
        for &(height, time, expected) in lines {
            let next = asert.next_target(anchor, time - anchor_parent_time, height - anchor_height);
            assert_eq!(
                bits_from_target(next),
                expected,
                "anchor {anchor_bits:#010x}: after height {height} at {time} s"
            );
        }
    }
}
