//! A durably stored `u64`: replaced atomically by write-to-temp, `fsync`, rename, `fsync` the
//! directory. After a crash the cell holds the old or the new value, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{SequencerError, sync_parent_dir};

const MAGIC: &[u8; 8] = b"PYRCELL1";

/// A `u64` on disk (16 bytes: magic, big-endian value).
#[derive(Debug)]
pub struct DurableCell {
    path: PathBuf,
}

impl DurableCell {
    /// A cell at `path`; nothing is read or written yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DurableCell { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored value, or `None` if the cell was never written.
    pub fn load(&self) -> Result<Option<u64>, SequencerError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SequencerError::Io { op: "read", path: self.path.clone(), source });
            }
        };
        match bytes.split_first_chunk::<8>() {
            Some((magic, value)) if magic == MAGIC && value.len() == 8 => {
                Ok(Some(u64::from_be_bytes(value.try_into().expect("length checked"))))
            }
            _ => Err(SequencerError::Corrupt {
                path: self.path.clone(),
                reason: format!("expected 16 bytes starting with {MAGIC:?}, found {} bytes", bytes.len()),
            }),
        }
    }

    /// Durably replaces the value.
    pub fn store(&self, value: u64) -> Result<(), SequencerError> {
        let io = |op, source| SequencerError::Io { op, path: self.path.clone(), source };
        let mut temp = self.path.clone().into_os_string();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let mut file = fs::File::create(&temp).map_err(|e| io("create", e))?;
        file.write_all(MAGIC).map_err(|e| io("write", e))?;
        file.write_all(&value.to_be_bytes()).map_err(|e| io("write", e))?;
        file.sync_all().map_err(|e| io("fsync", e))?;
        fs::rename(&temp, &self.path).map_err(|e| io("rename", e))?;
        sync_parent_dir(&self.path).map_err(|e| io("fsync directory of", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_loads_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cell = DurableCell::new(dir.path().join("cell"));
        assert_eq!(cell.load().unwrap(), None);
        cell.store(42).unwrap();
        cell.store(u64::MAX).unwrap();
        assert_eq!(cell.load().unwrap(), Some(u64::MAX));
        fs::write(cell.path(), b"PYRCELL1\x00\x01").unwrap();
        assert!(matches!(cell.load(), Err(SequencerError::Corrupt { .. })));
    }
}
