//! The nonce search of work engines, behind the [`Miner`] seam: the node searches on threads of
//! its own ([`ThreadMiner`], off the async runtime, which keeps serving peers meanwhile); the
//! simulator draws solve times from its seed and searches at its easy targets.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::mpsc;

use crate::core::MiningJob;
use crate::pow::{Seal, U256, target_from_bits};

/// Searches seals for the jobs a work engine gives ([`crate::core::Effect::Mine`]).
pub trait Miner: Send + 'static {
    /// Searches for `job`, replacing any search running; the seal found reaches the driver
    /// ([`super::Driver::handle_mined`]).
    fn mine(&mut self, job: MiningJob);
}

/// How many nonces a thread tries between looks at whether its job is still current (and at the
/// clock, for the seal's time).
const BATCH: u64 = 16_384;

/// The job threads share, and its generation (bumped on every change, so a thread drops a stale
/// search at its next look).
#[derive(Default)]
struct Shared {
    job: Mutex<Option<(u64, MiningJob)>>,
    changed: Condvar,
    generation: AtomicU64,
    shutdown: AtomicBool,
    hashes: AtomicU64,
}

impl Shared {
    fn job(&self) -> MutexGuard<'_, Option<(u64, MiningJob)>> {
        self.job.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Searches nonces on `threads` OS threads: thread `i` of `n` tries nonces `i, i + n, ...`,
/// rolling the seal's time forward with the wall clock (never below the job's earliest time) as
/// Bitcoin miners roll `nTime`. Found seals go to the driver's [`super::Driver::mined_sender`].
pub struct ThreadMiner {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl ThreadMiner {
    /// Starts `threads` idle search threads (at least one) that hand seals to `found`.
    pub fn new(threads: usize, found: mpsc::Sender<Seal>) -> ThreadMiner {
        let shared = Arc::new(Shared::default());
        let count = threads.max(1) as u64;
        let threads = (0..count)
            .map(|index| {
                let shared = shared.clone();
                let found = found.clone();
                std::thread::Builder::new()
                    .name(format!("pyralog-miner-{index}"))
                    .spawn(move || search(&shared, index, count, &found))
                    .expect("spawning a miner thread")
            })
            .collect();
        ThreadMiner { shared, threads }
    }

    /// Hashes tried so far, over all threads (the node's hashrate metric).
    pub fn hashes(&self) -> u64 {
        self.shared.hashes.load(Ordering::Relaxed)
    }

    fn set(&self, job: Option<MiningJob>) {
        let mut slot = self.shared.job();
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *slot = job.map(|job| (generation, job));
        self.shared.changed.notify_all();
    }
}

impl Miner for ThreadMiner {
    fn mine(&mut self, job: MiningJob) {
        self.set(Some(job));
    }
}

impl Drop for ThreadMiner {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.set(None);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One thread's loop: wait for a job, search its share of the nonces until the job changes or a
/// seal is found.
fn search(shared: &Shared, index: u64, count: u64, found: &mpsc::Sender<Seal>) {
    loop {
        let (generation, job) = {
            let mut slot = shared.job();
            loop {
                if shared.shutdown.load(Ordering::SeqCst) {
                    return;
                }
                if let Some((generation, job)) = slot.as_ref() {
                    break (*generation, job.clone());
                }
                slot = shared.changed.wait(slot).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        };
        // An undecodable target cannot be met: wait for the next job.
        let Ok(target) = target_from_bits(job.seal.bits) else {
            let mut slot = shared.job();
            while shared.generation.load(Ordering::SeqCst) == generation
                && !shared.shutdown.load(Ordering::SeqCst)
            {
                slot = shared.changed.wait(slot).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            continue;
        };
        let mut seal = job.seal;
        let mut nonce = index;
        'job: while shared.generation.load(Ordering::SeqCst) == generation {
            seal.time_ms = unix_ms().max(job.min_time_ms);
            for _ in 0..BATCH {
                seal.nonce = nonce;
                if U256::from_big_endian(&seal.hash().0) <= target {
                    // Only the first thread to find one for this generation hands it over.
                    let mut slot = shared.job();
                    if shared.generation.load(Ordering::SeqCst) == generation {
                        *slot = None;
                        shared.generation.fetch_add(1, Ordering::SeqCst);
                        drop(slot);
                        let _ = found.blocking_send(seal);
                    }
                    break 'job;
                }
                nonce = nonce.wrapping_add(count);
            }
            shared.hashes.fetch_add(BATCH, Ordering::Relaxed);
        }
    }
}
