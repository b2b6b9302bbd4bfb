//! The shared WAL syncer: one thread that makes one `flush_wal(true)` cover every write queued
//! while the previous fsync ran (group commit across all Raft groups of the node).
//!
//! Writers put their data with an unsynced write, then queue a callback; the callback runs only
//! after an fsync that started after the write. An fsync error is fatal: it is reported to every
//! waiting and every later callback, never retried (after a failed fsync the kernel may have
//! dropped the dirty pages).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rocksdb::DB;

/// Called with the outcome of the fsync that covered the caller's write.
pub type SyncCallback = Box<dyn FnOnce(std::io::Result<()>) + Send>;

/// The syncer thread, owned by the node's [`Storage`](super::Storage). Dropping it drains the
/// queue and joins the thread, so the database is closed before the drop returns (a RocksDB
/// still open in a detached thread at process exit aborts the process).
pub struct WalSyncer {
    queue: Option<mpsc::Sender<SyncCallback>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Mutex<SyncStats>>,
}

/// How much batching happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// WAL fsyncs performed.
    pub fsyncs: u64,
    /// Callbacks those fsyncs covered.
    pub callbacks: u64,
}

impl std::fmt::Debug for WalSyncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalSyncer").field("stats", &self.stats()).finish()
    }
}

impl WalSyncer {
    /// Starts the syncer thread for `db`. With `durable` false (memory-only storage, whose
    /// environment has no WAL to sync) callbacks are batched the same way but no fsync is made.
    pub(crate) fn start(db: Arc<DB>, durable: bool) -> Self {
        let (queue, pending) = mpsc::channel::<SyncCallback>();
        let stats = Arc::new(Mutex::new(SyncStats::default()));
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("pyralog-wal-sync".into())
            .spawn(move || run(&db, durable, &pending, &thread_stats))
            .expect("spawn the WAL syncer thread");
        WalSyncer { queue: Some(queue), thread: Some(thread), stats }
    }

    /// Runs `callback` after the next fsync of the WAL.
    pub fn after_sync(&self, callback: SyncCallback) {
        let sent = match &self.queue {
            Some(queue) => queue.send(callback).map_err(|mpsc::SendError(callback)| callback),
            None => Err(callback),
        };
        if let Err(callback) = sent {
            callback(Err(std::io::Error::other("the WAL syncer has stopped")));
        }
    }

    /// Fsyncs performed and callbacks covered so far.
    pub fn stats(&self) -> SyncStats {
        *self.stats.lock().expect("stats lock")
    }
}

impl Drop for WalSyncer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One WAL fsync (or the failure the `wal-fsync` failpoint injects).
fn fsync(db: &DB) -> Result<(), String> {
    fail::fail_point!("wal-fsync", |_| Err(crate::failpoints::injected("wal-fsync").to_string()));
    db.flush_wal(true).map_err(|err| err.to_string())
}

fn run(db: &DB, durable: bool, pending: &mpsc::Receiver<SyncCallback>, stats: &Mutex<SyncStats>) {
    let mut failure: Option<String> = None;
    while let Ok(first) = pending.recv() {
        let mut batch = vec![first];
        batch.extend(pending.try_iter());
        if durable
            && failure.is_none()
            && let Err(err) = fsync(db)
        {
            failure = Some(err);
        }
        {
            let mut stats = stats.lock().expect("stats lock");
            stats.fsyncs += 1;
            stats.callbacks += batch.len() as u64;
        }
        for callback in batch {
            callback(match &failure {
                None => Ok(()),
                Some(reason) => Err(std::io::Error::other(format!("WAL fsync failed earlier: {reason}"))),
            });
        }
    }
}
