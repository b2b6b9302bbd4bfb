//! openraft's own storage conformance suite, run against our log store and partition state
//! machine, once on disk and once in memory.

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use pyralog_cluster::raft::{GroupId, GroupRaft, PartitionStateMachine, RocksLogStore};
use pyralog_cluster::storage::{PartitionId, Storage, StorageMode};
use tempfile::TempDir;

const PARTITION: PartitionId = PartitionId { log: 3, partition: 1 };

struct Builder {
    on_disk: bool,
}

type Parts = (Option<TempDir>, RocksLogStore<GroupRaft>, PartitionStateMachine);

impl StoreBuilder<GroupRaft, RocksLogStore<GroupRaft>, PartitionStateMachine, Option<TempDir>> for Builder {
    async fn build(&self) -> Result<Parts, StorageError<u64>> {
        // Every call gets a fresh, empty database, as the suite requires.
        let (dir, mode) = match self.on_disk {
            true => {
                let dir = tempfile::tempdir().unwrap();
                let mode = StorageMode::Disk(dir.path().join("db"));
                (Some(dir), mode)
            }
            false => (None, StorageMode::Memory),
        };
        let storage = Storage::open(mode).unwrap();
        let log = RocksLogStore::new(storage.clone(), GroupId::partition(PARTITION));
        let machine = PartitionStateMachine::open(&storage, PARTITION, &Default::default()).unwrap();
        Ok((dir, log, machine))
    }
}

// Plain #[test]: the suite starts its own tokio runtime per case.
#[test]
fn openraft_suite_on_disk() {
    Suite::test_all(Builder { on_disk: true }).unwrap();
}

#[test]
fn openraft_suite_in_memory() {
    Suite::test_all(Builder { on_disk: false }).unwrap();
}
