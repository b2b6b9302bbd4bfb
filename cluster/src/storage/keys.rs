//! Big-endian key layouts: keys of one partition are contiguous and sort by offset.

use std::fmt;

/// Tag byte after the partition prefix of the Raft layer's applied marker (`partition_state`).
pub(crate) const MARKER_TAG: u8 = 0x03;

/// A partition in the node's storage: the log's numeric id (assigned by the global group) and
/// the partition number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct PartitionId {
    /// Numeric id of the log.
    pub log: u32,
    /// Partition within the log.
    pub partition: u32,
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.log, self.partition)
    }
}

impl PartitionId {
    /// The 8-byte prefix of every key of this partition.
    pub(crate) fn prefix(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&self.log.to_be_bytes());
        out[4..].copy_from_slice(&self.partition.to_be_bytes());
        out
    }

    pub(crate) fn state_key(&self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[..8].copy_from_slice(&self.prefix());
        out[8] = 0x01;
        out
    }

    pub(crate) fn marker_key(&self) -> [u8; 9] {
        let mut out = [0u8; 9];
        out[..8].copy_from_slice(&self.prefix());
        out[8] = MARKER_TAG;
        out
    }

    pub(crate) fn producer_key(&self, producer: u64) -> [u8; 17] {
        let mut out = [0u8; 17];
        out[..8].copy_from_slice(&self.prefix());
        out[8] = 0x02;
        out[9..].copy_from_slice(&producer.to_be_bytes());
        out
    }

    pub(crate) fn record_key(&self, offset: u64) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.prefix());
        out[8..].copy_from_slice(&offset.to_be_bytes());
        out
    }

    pub(crate) fn key_index_key(&self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + key.len());
        out.extend_from_slice(&self.prefix());
        out.extend_from_slice(key);
        out
    }

    pub(crate) fn zk_node_key(&self, tree: u8, level: u8, index: u64) -> [u8; 18] {
        let mut out = [0u8; 18];
        out[..8].copy_from_slice(&self.prefix());
        out[8] = tree;
        out[9] = level;
        out[10..].copy_from_slice(&index.to_be_bytes());
        out
    }

    pub(crate) fn merkle_key(&self, level: u8, index: u64) -> [u8; 17] {
        let mut out = [0u8; 17];
        out[..8].copy_from_slice(&self.prefix());
        out[8] = level;
        out[9..].copy_from_slice(&index.to_be_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_sort_by_partition_then_offset() {
        let a = PartitionId { log: 1, partition: 2 };
        let b = PartitionId { log: 1, partition: 3 };
        assert!(a.record_key(u64::MAX) < b.record_key(0));
        assert!(a.record_key(255) < a.record_key(256));
    }
}
