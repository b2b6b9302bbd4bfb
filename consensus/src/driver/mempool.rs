//! Transactions waiting for a block, and a cache of recently seen ones (as CometBFT's mempool
//! cache): a transaction gossiped back, or arriving after a block already carried it, is not
//! queued again, so it is not committed twice. Clients learn what became of their transaction
//! ([`Admission`]) through a [`Submitter`].

use std::collections::{HashSet, VecDeque};

use pyralog_crypto::{Digest, Domain};
use tokio::sync::{mpsc, oneshot};

/// What became of a submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Checked by the app and queued for a block (and gossiped).
    Queued,
    /// Already queued, or seen recently (gossiped back, or carried by a block): not queued again.
    AlreadyKnown,
    /// The mempool holds `capacity` transactions already: dropped; the client may retry later.
    MempoolFull {
        /// The mempool's capacity.
        capacity: usize,
    },
    /// The app's `check_tx` refused it, for this reason.
    Rejected(String),
}

/// Where clients submit transactions and learn whether the mempool took them (from
/// [`super::Driver::submitter`]; for a driver running on tokio).
#[derive(Debug, Clone)]
pub struct Submitter(pub(super) mpsc::Sender<(Vec<u8>, oneshot::Sender<Admission>)>);

/// The driver is not running any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the consensus driver stopped")]
pub struct DriverStopped;

/// What a [`Submitter`] hands to whoever keeps the mempool: each transaction and where its
/// answer goes.
pub type Submissions = mpsc::Receiver<(Vec<u8>, oneshot::Sender<Admission>)>;

impl Submitter {
    /// A submitter whose transactions go to a mempool kept outside the driver (CometBFT's, for
    /// a chain run behind it), at most `capacity` waiting.
    pub fn channel(capacity: usize) -> (Submitter, Submissions) {
        let (send, receive) = mpsc::channel(capacity);
        (Submitter(send), receive)
    }

    /// Submits `tx`; answers once the driver has checked and queued (or refused) it.
    pub async fn submit(&self, tx: Vec<u8>) -> Result<Admission, DriverStopped> {
        let (reply, answer) = oneshot::channel();
        self.0.send((tx, reply)).await.map_err(|_| DriverStopped)?;
        answer.await.map_err(|_| DriverStopped)
    }
}

/// The mempool.
pub(crate) struct Mempool {
    /// Queued transactions with their cache keys (computed once, at admission).
    queue: VecDeque<(Digest, Vec<u8>)>,
    max_txs: usize,
    seen: HashSet<Digest>,
    /// `seen` in insertion order, to forget the oldest first.
    seen_order: VecDeque<Digest>,
    seen_capacity: usize,
}

/// Why a transaction was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Full,
    Seen,
}

fn key(tx: &[u8]) -> Digest {
    Domain::ConsensusValue.hash(tx)
}

impl Mempool {
    pub(crate) fn new(max_txs: usize) -> Self {
        Mempool {
            queue: VecDeque::new(),
            max_txs,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            seen_capacity: max_txs.saturating_mul(4).max(10_000),
        }
    }

    /// Whether `tx` may be queued (checked before the app's `check_tx`, which costs more).
    pub(crate) fn admissible(&self, tx: &[u8]) -> Result<(), Refusal> {
        if self.seen.contains(&key(tx)) {
            return Err(Refusal::Seen);
        }
        if self.queue.len() >= self.max_txs {
            return Err(Refusal::Full);
        }
        Ok(())
    }

    /// Queues `tx` (after [`Mempool::admissible`] and the app's check).
    pub(crate) fn push(&mut self, tx: Vec<u8>) {
        let digest = key(&tx);
        self.remember(digest);
        self.queue.push_back((digest, tx));
    }

    /// How many transactions are queued.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The queued transactions, oldest first.
    pub(crate) fn candidates(&self) -> Vec<Vec<u8>> {
        self.queue.iter().map(|(_, tx)| tx.clone()).collect()
    }

    /// Drops what a committed block carried, and remembers it.
    pub(crate) fn committed(&mut self, txs: &[Vec<u8>]) {
        let included: HashSet<Digest> = txs.iter().map(|tx| key(tx)).collect();
        self.queue.retain(|(digest, _)| !included.contains(digest));
        for digest in included {
            self.remember(digest);
        }
    }

    fn remember(&mut self, digest: Digest) {
        if self.seen.insert(digest) {
            self.seen_order.push_back(digest);
            while self.seen_order.len() > self.seen_capacity {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }
}
