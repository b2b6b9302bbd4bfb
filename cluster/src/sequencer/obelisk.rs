//! The Obelisk sequencer: a counter whose durable value is a file's size.
//!
//! Growing a file with `ftruncate` and making it durable with `fdatasync` is one small metadata
//! write, with no torn-write case to handle: after a crash the size is either the old or the new
//! one. The counter reserves ranges (`reserve` values per sync) and hands out only values below
//! the durable size, so a value handed out before a crash is always below the size seen at
//! restart, where counting resumes. Values reserved but not handed out are skipped: gaps are
//! possible, repeats are not.
//!
//! The file is sparse (it holds no data blocks); its apparent size is bounded by the file
//! system's maximum file size (ext4: 16 TiB, so about 1.7e13 values).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::{SequencerError, sync_parent_dir};

/// A crash-safe, strictly increasing counter. See the module docs.
#[derive(Debug)]
pub struct Obelisk {
    path: PathBuf,
    file: File,
    next: u64,
    durable: u64,
    reserve: u64,
    poisoned: bool,
}

impl Obelisk {
    /// Opens (or creates) the counter at `path`; each sync reserves `reserve` values (at least 1).
    pub fn open(path: impl Into<PathBuf>, reserve: u64) -> Result<Self, SequencerError> {
        let path = path.into();
        let io = |op, source| SequencerError::Io { op, path: path.clone(), source };
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("open", e))?;
        if !existed {
            // The file's existence must be durable before any value counts on it.
            file.sync_all().map_err(|e| io("fsync", e))?;
            sync_parent_dir(&path).map_err(|e| io("fsync directory of", e))?;
        }
        let durable = file.metadata().map_err(|e| io("stat", e))?.len();
        Ok(Obelisk { path, file, next: durable, durable, reserve: reserve.max(1), poisoned: false })
    }

    /// The file behind the counter.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next value [`Obelisk::next_value`] would return.
    pub fn peek(&self) -> u64 {
        self.next
    }

    /// Every value below this is durably reserved.
    pub fn durable_limit(&self) -> u64 {
        self.durable
    }

    /// Hands out the next value.
    pub fn next_value(&mut self) -> Result<u64, SequencerError> {
        self.next_range(1).map(|range| range.start)
    }

    /// Hands out `count` consecutive values.
    pub fn next_range(&mut self, count: u64) -> Result<std::ops::Range<u64>, SequencerError> {
        let start = self.next;
        let end = start.checked_add(count).ok_or_else(|| self.exhausted())?;
        self.ensure_durable(end)?;
        self.next = end;
        Ok(start..end)
    }

    /// Makes every value below `limit` durable, reserving ahead.
    pub(crate) fn ensure_durable(&mut self, limit: u64) -> Result<(), SequencerError> {
        if self.poisoned {
            return Err(SequencerError::Poisoned { path: self.path.clone() });
        }
        if limit <= self.durable {
            return Ok(());
        }
        let target = limit.checked_add(self.reserve - 1).ok_or_else(|| self.exhausted())?;
        // Sizes above i64::MAX are refused by the kernel.
        if target > i64::MAX as u64 {
            return Err(self.exhausted());
        }
        let synced = self.file.set_len(target).and_then(|()| self.file.sync_data());
        if let Err(source) = synced {
            // Never retried: after a failed fsync the page cache state is unknown.
            self.poisoned = true;
            return Err(SequencerError::Io { op: "grow and fdatasync", path: self.path.clone(), source });
        }
        self.durable = target;
        Ok(())
    }

    fn exhausted(&self) -> SequencerError {
        SequencerError::Exhausted { path: self.path.clone(), limit: i64::MAX as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resumes_above_everything_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seq");
        let mut obelisk = Obelisk::open(&path, 100).unwrap();
        assert_eq!((obelisk.next_value().unwrap(), obelisk.next_value().unwrap()), (0, 1));
        assert_eq!(obelisk.durable_limit(), 100);
        assert_eq!(obelisk.next_range(150).unwrap(), 2..152);
        assert_eq!(obelisk.durable_limit(), 251);
        drop(obelisk);
        // A restart skips the unused reservation rather than risk a repeat.
        let mut reopened = Obelisk::open(&path, 100).unwrap();
        assert_eq!(reopened.next_value().unwrap(), 251);
    }

    #[test]
    fn exhaustion_is_an_error_not_a_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let mut obelisk = Obelisk::open(dir.path().join("seq"), 1).unwrap();
        obelisk.next = u64::MAX - 1;
        assert!(matches!(obelisk.next_range(2), Err(SequencerError::Exhausted { .. })));
        assert!(matches!(obelisk.next_value(), Err(SequencerError::Exhausted { .. })));
    }
}
