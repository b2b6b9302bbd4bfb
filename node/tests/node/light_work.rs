//! The SPV light client of a Proof-of-Work chain against servers that lie: a seal with a target
//! ASERT does not give, a hash above its target, a broken link, a time before the median of the
//! last blocks or too far ahead, a lighter chain served first, a header not yet `k` deep, a fork
//! deeper than `k`. Each is refused (or loses to the heavier chain) with its own error.

use pyralog_consensus::pow::{PowRules, Seal, SealError, U256, target_from_bits};
use pyralog_consensus::testkit::{easy_pow_rules, mine_chain, mine_seal, miss_target};
use pyralog_crypto::Digest;
use pyralog_light::work::{SealChain, WorkLightError};

const GENESIS_MS: u64 = 1_767_225_600_000;
/// The client's clock: well after every test chain.
const NOW: u64 = GENESIS_MS + 1_000_000;

fn rules() -> PowRules {
    easy_pow_rules(GENESIS_MS, 3)
}

fn seals(parent: Option<Seal>, length: u64, start_ms: u64, tag: &str) -> Vec<Seal> {
    mine_chain(&rules(), parent, length, start_ms, tag).into_iter().map(|b| b.seal).collect()
}

/// `seal` with a new nonce that meets its (possibly changed) target.
fn remined(mut seal: Seal) -> Seal {
    let target = target_from_bits(seal.bits).unwrap();
    seal.nonce = 0;
    while U256::from_big_endian(&seal.hash().0) > target {
        seal.nonce += 1;
    }
    seal
}

#[test]
fn an_honest_chain_is_followed_and_final_k_deep() {
    let mut client = SealChain::genesis(rules());
    let honest = seals(None, 8, GENESIS_MS + 1000, "honest");
    assert_eq!(client.offer(&honest, NOW), Ok(true));
    assert_eq!(client.height(), 8);
    // Nothing is final before the client settles (after asking every server).
    assert!(client.check_final(1, &honest[0].block).is_err());
    client.settle();
    // Final up to 8 - k = 5; the header at 6 is not yet.
    assert!(client.check_final(5, &honest[4].block).is_ok());
    assert_eq!(
        client.check_final(6, &honest[5].block),
        Err(WorkLightError::NotFinal { height: 6, tip: 8, confirmations: 3 })
    );
    // A final height whose header is another block.
    assert_eq!(client.check_final(5, &Digest([9; 32])), Err(WorkLightError::NotOnChain { height: 5 }));
    // More of the same chain extends it.
    let more = seals(Some(honest[7]), 2, GENESIS_MS + 9000, "honest more");
    assert_eq!(client.offer(&more, NOW), Ok(true));
    assert_eq!(client.height(), 10);
}

#[test]
fn seals_that_break_the_rules_are_refused_with_their_reason() {
    let honest = seals(None, 5, GENESIS_MS + 1000, "honest");
    let refused = |bad: Vec<Seal>| {
        let mut client = SealChain::genesis(rules());
        let result = client.offer(&bad, NOW);
        assert_eq!(client.height(), 0, "nothing of a refused chain is kept");
        result
    };
    // An easier target than ASERT gives, mined to it.
    let mut easy = honest.clone();
    easy[2].bits = rules().limit_bits;
    easy[2] = remined(easy[2]);
    assert!(matches!(refused(easy), Err(WorkLightError::Seal(SealError::WrongTarget { height: 3, .. }))));
    // A hash above its target.
    let mut unmined = honest.clone();
    unmined[1] = miss_target(unmined[1]);
    assert!(matches!(refused(unmined), Err(WorkLightError::Seal(SealError::Work { height: 2, .. }))));
    // A seal that names another parent.
    let mut unlinked = honest.clone();
    unlinked[3].parent = Digest([5; 32]);
    unlinked[3] = remined(unlinked[3]);
    assert_eq!(refused(unlinked), Err(WorkLightError::Seal(SealError::BrokenLink { height: 4 })));
    // A time not after the median of the last blocks (the genesis time counts among them).
    let early = vec![mine_seal(&rules(), None, Digest([1; 32]), GENESIS_MS)];
    assert!(matches!(refused(early), Err(WorkLightError::Seal(SealError::TooEarly { height: 1, .. }))));
    // More than a minute ahead of the client's clock.
    let ahead = vec![mine_seal(&rules(), None, Digest([1; 32]), NOW + 61_000)];
    assert!(matches!(refused(ahead), Err(WorkLightError::Seal(SealError::FromFuture { height: 1, .. }))));
    // Seals that do not start where the client can take them.
    let mut client = SealChain::genesis(rules());
    assert_eq!(client.offer(&honest[2..], NOW), Err(WorkLightError::Detached { from: 1, tip: 0, got: 3 }));
}

#[test]
fn a_lighter_chain_served_first_loses_to_a_heavier_one() {
    let mut client = SealChain::genesis(rules());
    // A lying server shows 4 blocks first; an honest one then shows 6 from the same genesis.
    let lighter = seals(None, 4, GENESIS_MS + 1000, "liar");
    let heavier = seals(None, 6, GENESIS_MS + 1000, "honest");
    assert_eq!(client.offer(&lighter, NOW), Ok(true));
    assert_eq!(client.offer(&heavier, NOW), Ok(true));
    assert_eq!(client.seal_at(6), Some(&heavier[5]));
    // Shown again, the lighter chain changes nothing.
    assert_eq!(client.offer(&lighter, NOW), Ok(false));
    assert_eq!(client.height(), 6);
    client.settle();
    assert!(client.check_final(3, &heavier[2].block).is_ok());
    assert_eq!(client.check_final(1, &lighter[0].block), Err(WorkLightError::NotOnChain { height: 1 }));
    // A fork deeper than k from the client's tip is refused outright, however heavy.
    let deep = seals(Some(heavier[0]), 9, GENESIS_MS + 2000, "deep");
    assert_eq!(client.offer(&deep, NOW), Err(WorkLightError::Detached { from: 4, tip: 6, got: 2 }));
}
