//! Test doubles and checks for the layers above consensus (driver tests, the p2p tests and the
//! consensus benchmark): an app simple enough that any disagreement between replicas shows, and
//! a check that replicas stored the same certified blocks.

use crate::app::{
    AppInfo, BlockContext, CheckContext, DecidedBlock, Finalized, PayloadVerdict, ProposalContext,
    ReplicatedApp,
};
use crate::driver::{BlockStore, ChainStore};
use crate::finality::Engine;
use crate::validators::{Validator, ValidatorSet};
use crate::vote::{DuplicateVote, Evidence, Vote, VoteKind};

/// An app that counts blocks and transactions; its app hash is the transaction count. Every
/// payload it builds ends with a `block <height>` marker so that no payload is empty; payloads
/// without one are rejected, and so are transactions starting with `bad`.
#[derive(Default)]
pub struct CountingApp {
    height: u64,
    txs: u64,
    /// Validator updates to return when finalizing a height.
    updates: Vec<(u64, Vec<Validator>)>,
    /// Shown every block `finalize` is handed (tests record them, benchmarks time them).
    observer: Option<BlockObserver>,
}

/// What [`CountingApp::observed`] calls with each finalized block.
type BlockObserver = Box<dyn FnMut(&DecidedBlock) + Send>;

impl std::fmt::Debug for CountingApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingApp")
            .field("height", &self.height)
            .field("txs", &self.txs)
            .finish_non_exhaustive()
    }
}

impl CountingApp {
    /// The app, showing `observer` every block it finalizes.
    pub fn observed(mut self, observer: impl FnMut(&DecidedBlock) + Send + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The app, returning `updates` from `finalize` at `height`.
    pub fn with_validator_updates(mut self, height: u64, updates: Vec<Validator>) -> Self {
        self.updates.push((height, updates));
        self
    }

    /// Transactions committed so far (the markers included).
    pub fn txs(&self) -> u64 {
        self.txs
    }
}

impl ReplicatedApp for CountingApp {
    type Error = std::convert::Infallible;

    fn info(&self) -> Result<AppInfo, Self::Error> {
        Ok(AppInfo { last_height: self.height, last_app_hash: self.txs.to_be_bytes().to_vec() })
    }
    fn init_chain(&mut self, _: &str, _: &[Validator], _: &[u8]) -> Result<Vec<u8>, Self::Error> {
        Ok(Vec::new())
    }
    fn check_tx(&self, tx: &[u8]) -> Result<Result<(), String>, Self::Error> {
        Ok(if tx.starts_with(b"bad") { Err("refused".into()) } else { Ok(()) })
    }
    fn prepare_payload(
        &mut self,
        context: &ProposalContext,
        candidates: Vec<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, Self::Error> {
        Ok(marked_payload(context, candidates, max_bytes))
    }
    fn process_payload(
        &mut self,
        context: &CheckContext,
        txs: &[Vec<u8>],
    ) -> Result<PayloadVerdict, Self::Error> {
        Ok(if marked_for(txs, context) { PayloadVerdict::Accept } else { PayloadVerdict::Reject })
    }
    fn block_context(&self, txs: &[Vec<u8>]) -> BlockContext {
        marked_context(txs)
    }
    fn finalize(&mut self, block: &DecidedBlock) -> Result<Finalized, Self::Error> {
        assert_eq!(block.height, self.height + 1, "blocks are executed in order, once");
        if let Some(observer) = &mut self.observer {
            observer(block);
        }
        self.height = block.height;
        self.txs += block.txs.len() as u64;
        let validator_updates =
            self.updates.iter().filter(|(h, _)| *h == block.height).flat_map(|(_, u)| u.clone()).collect();
        Ok(Finalized { tx_results: Vec::new(), validator_updates, app_hash: self.txs.to_be_bytes().to_vec() })
    }
    fn commit(&mut self) -> Result<u64, Self::Error> {
        Ok(self.height)
    }
    fn query(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, Self::Error> {
        Ok(Vec::new())
    }
}

/// The test apps' payload: the candidates that fit in `max_bytes`, in order, then a marker
/// carrying the block context, so no payload is empty: the line `block <height> <time ms>
/// <proposer> <parent>`, a newline, and the postcard encoding of the last commit and evidence.
pub fn marked_payload(context: &ProposalContext, candidates: Vec<Vec<u8>>, max_bytes: usize) -> Vec<Vec<u8>> {
    let line =
        format!("block {} {} {} {}\n", context.height, context.time_ms, context.proposer, context.parent);
    let carried = (&context.last_commit, &context.evidence);
    let marker = [line.into_bytes(), postcard::to_allocvec(&carried).expect("context serializes")].concat();
    let mut room = max_bytes.saturating_sub(marker.len());
    let mut txs: Vec<Vec<u8>> = candidates
        .into_iter()
        .take_while(|tx| {
            let fits = tx.len() <= room;
            room = room.saturating_sub(tx.len());
            fits
        })
        .collect();
    txs.push(marker);
    txs
}

/// The marker's line and the bytes after it (none for a payload without the marker).
fn marker(txs: &[Vec<u8>]) -> (&str, &[u8]) {
    let Some(last) = txs.last().filter(|tx| tx.starts_with(b"block ")) else { return ("", &[]) };
    let end = last.iter().position(|b| *b == b'\n').unwrap_or(last.len());
    (std::str::from_utf8(&last[..end]).unwrap_or_default(), last.get(end + 1..).unwrap_or_default())
}

/// The context a [`marked_payload`] carries (none for a payload without the marker).
pub fn marked_context(txs: &[Vec<u8>]) -> BlockContext {
    let (line, tail) = marker(txs);
    let mut fields = line.strip_prefix("block ").unwrap_or_default().split(' ').skip(1);
    let time_ms = fields.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let proposer = fields.next().and_then(|p| p.parse().ok());
    let (last_commit, evidence) = postcard::from_bytes(tail).unwrap_or_default();
    BlockContext { time_ms, proposer, last_commit, evidence }
}

/// Whether a [`marked_payload`] was built at `context`'s height on its parent, with a last
/// commit from height 2 on unless it is placed on an unfinalised block (a payload without the
/// marker is not one).
pub fn marked_for(txs: &[Vec<u8>], context: &CheckContext) -> bool {
    let (line, tail) = marker(txs);
    let fields: Vec<&str> = line.split(' ').collect();
    let parent = context.parent.to_string();
    // Postcard's `Some` tag, without decoding the proof (the driver checks that).
    let carries_commit = tail.first() == Some(&1);
    matches!(fields.as_slice(), ["block", height, _, _, p] if *height == context.height.to_string() && *p == parent)
        && carries_commit == (context.height > 1 && !context.on_unfinalised)
}

/// Asserts that `stores` hold the same blocks up to the lowest last height among them, which is
/// at least `at_least`, each with a finality proof that verifies against `validators`; returns
/// that height. Panics otherwise (it is a test helper).
pub fn assert_same_certified_blocks(
    stores: &[BlockStore],
    engine: Engine,
    chain_id: &str,
    validators: &ValidatorSet,
    at_least: u64,
) -> u64 {
    let common = stores.iter().map(|s| s.last_height().expect("readable store")).min().expect("some stores");
    assert!(common >= at_least, "{common} < {at_least}");
    for height in 1..=common {
        let first = stores[0].block(height).expect("readable store").expect("a block below the last height");
        first
            .proof
            .verify(engine, chain_id, height, &first.block, validators)
            .expect("the finality proof verifies");
        for store in &stores[1..] {
            let block = store.block(height).expect("readable store").expect("a block below the last height");
            assert_eq!(block.block, first.block, "height {height}");
        }
    }
    common
}

/// Evidence that `key` precommitted a block and nil at `height`, round 0, of `chain`.
pub fn double_vote(key: &pyralog_crypto::Keypair, chain: &str, height: u64) -> Evidence {
    use pyralog_crypto::quorum::SignatureShare;
    let vote = |block| Vote { chain_id: chain.into(), height, round: 0, kind: VoteKind::Precommit, block };
    let (first, second) = (vote(Some(pyralog_crypto::Digest([1; 32]))), vote(None));
    Evidence::DuplicateVote(DuplicateVote {
        validator: key.public(),
        first_signature: SignatureShare::sign(key, &first).signature,
        second_signature: SignatureShare::sign(key, &second).signature,
        first,
        second,
    })
}

/// Seals `block` on `parent` (`None`: the genesis) at `time_ms` with the target `rules` give,
/// searching nonces from zero (tests use easy targets).
pub fn mine_seal(
    rules: &crate::pow::PowRules,
    parent: Option<&crate::pow::Seal>,
    block: pyralog_crypto::Digest,
    time_ms: u64,
) -> crate::pow::Seal {
    let mut seal = crate::pow::Seal {
        parent: parent.map_or(pyralog_crypto::Digest([0; 32]), crate::pow::Seal::hash),
        height: parent.map_or(0, |p| p.height) + 1,
        block,
        time_ms,
        bits: rules.next_bits(parent),
        nonce: 0,
    };
    let target = crate::pow::target_from_bits(seal.bits).expect("the rules' targets decode");
    while crate::pow::U256::from_big_endian(&seal.hash().0) > target {
        seal.nonce += 1;
    }
    seal
}

/// `length` sealed blocks on `parent`, one a second from `start_ms`, each with a one-transaction
/// payload naming `tag` (so branches differ).
pub fn mine_chain(
    rules: &crate::pow::PowRules,
    parent: Option<crate::pow::Seal>,
    length: u64,
    start_ms: u64,
    tag: &str,
) -> Vec<crate::nakamoto::SealedBlock> {
    let mut blocks: Vec<crate::nakamoto::SealedBlock> = Vec::new();
    let mut parent = parent;
    for i in 0..length {
        let txs = vec![format!("{tag} {i}").into_bytes()];
        let seal = mine_seal(rules, parent.as_ref(), crate::vote::payload_id(&txs), start_ms + i * 1000);
        parent = Some(seal);
        blocks.push(crate::nakamoto::SealedBlock { seal, txs });
    }
    blocks
}

/// Seal hashes one thread of this machine tries per second (measured for 100 ms): tests and
/// benchmarks set a first target this machine's miners meet in about the block time they want.
pub fn seal_hashes_per_second() -> u64 {
    let mut seal = crate::pow::Seal {
        parent: pyralog_crypto::Digest([0; 32]),
        height: 1,
        block: pyralog_crypto::Digest([0; 32]),
        time_ms: 0,
        bits: 0,
        nonce: 0,
    };
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(100) {
        for _ in 0..1000 {
            seal.nonce += 1;
            std::hint::black_box(seal.hash());
        }
    }
    seal.nonce * 10
}

/// Work rules for tests and benchmarks on this machine: `miners` one-thread miners sharing
/// `cores` cores find a block about every second from genesis `now_ms` (ASERT, a 30 s half-life,
/// corrects the estimate), final `confirmations` seals deep.
pub fn machine_pow_rules(now_ms: u64, miners: u64, cores: u64, confirmations: u64) -> crate::pow::PowRules {
    let per_second = seal_hashes_per_second().max(1) * miners.min(cores).max(1);
    crate::pow::PowRules {
        genesis_time_ms: now_ms,
        initial_bits: crate::pow::bits_from_target(
            crate::pow::U256::MAX / crate::pow::U256::from(per_second),
        ),
        limit_bits: crate::pow::bits_from_target(crate::pow::U256::MAX >> 1),
        ideal_block_time_s: 1,
        half_life_s: 30,
        confirmations,
    }
}

/// `seal` with the first nonce after its own whose hash misses its target (a seal that no longer
/// proves work, for tamper tests).
pub fn miss_target(mut seal: crate::pow::Seal) -> crate::pow::Seal {
    let target = crate::pow::target_from_bits(seal.bits).unwrap_or_default();
    loop {
        seal.nonce = seal.nonce.wrapping_add(1);
        if crate::pow::U256::from_big_endian(&seal.hash().0) > target {
            return seal;
        }
    }
}

/// Work rules whose seals take about 16 hashes (tests search nonces for real): one-second
/// blocks from `genesis_time_ms`, a one-minute half-life, the limit `0x207fffff`, final
/// `confirmations` seals deep.
pub fn easy_pow_rules(genesis_time_ms: u64, confirmations: u64) -> crate::pow::PowRules {
    crate::pow::PowRules {
        genesis_time_ms,
        initial_bits: crate::pow::bits_from_target(crate::pow::U256::MAX >> 4),
        limit_bits: crate::pow::bits_from_target(crate::pow::U256::MAX >> 1),
        ideal_block_time_s: 1,
        half_life_s: 60,
        confirmations,
    }
}
