//! Sequencer behaviour without crashes: clock steps back, sequence exhaustion, restarts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use pyralog_cluster::sequencer::{Clock, SCARAB_EPOCH_MS, ScarabGenerator, ScarabId, SequencerError};

/// A clock the test moves by hand.
#[derive(Clone)]
struct ManualClock(Arc<AtomicU64>);

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn generator(dir: &std::path::Path, clock: &ManualClock) -> ScarabGenerator<ManualClock> {
    ScarabGenerator::open(dir.join("hwm"), 5, clock.clone(), 1000).unwrap()
}

#[test]
fn ids_increase_when_the_clock_steps_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock(Arc::new(AtomicU64::new(SCARAB_EPOCH_MS + 1_000_000)));
    let mut generator = generator(dir.path(), &clock);
    let mut ids: Vec<ScarabId> = (0..100).map(|_| generator.next_id().unwrap()).collect();
    clock.0.store(SCARAB_EPOCH_MS + 900_000, Ordering::SeqCst); // 100 s back
    ids.extend((0..20_000).map(|_| generator.next_id().unwrap()));
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(ids.iter().all(|id| id.coordinator() == 5));
    // 20,100 ids in "one" millisecond borrow the next ones: at most 8192 per ms.
    assert_eq!(ids.last().unwrap().unix_ms(), SCARAB_EPOCH_MS + 1_000_000 + 2);
}

#[test]
fn a_restart_with_the_clock_set_back_continues_above_the_high_water_mark() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock(Arc::new(AtomicU64::new(SCARAB_EPOCH_MS + 5_000_000)));
    let mut first = generator(dir.path(), &clock);
    let before: Vec<_> = (0..10).map(|_| first.next_id().unwrap()).collect();
    drop(first); // a crash: nothing else is persisted
    clock.0.store(SCARAB_EPOCH_MS + 1_000, Ordering::SeqCst);
    let mut second = generator(dir.path(), &clock);
    let after = second.next_id().unwrap();
    assert!(after > *before.last().unwrap());
    // It resumed at the high-water mark (lease 1000 ms ahead of the last used millisecond).
    assert_eq!(after.unix_ms(), SCARAB_EPOCH_MS + 5_001_000);
}

#[test]
fn coordinator_ids_must_fit_ten_bits() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock(Arc::new(AtomicU64::new(SCARAB_EPOCH_MS)));
    let path = dir.path().join("hwm");
    match ScarabGenerator::open(path.clone(), 1024, clock, 1000) {
        Err(SequencerError::Corrupt { path: named, reason }) => {
            assert_eq!(named, path);
            assert_eq!(reason, "coordinator id 1024 does not fit in 10 bits");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("coordinator 1024 was accepted"),
    }
}
