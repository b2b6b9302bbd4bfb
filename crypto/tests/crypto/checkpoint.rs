//! The checkpoint codec: canonical, round-tripping, and total on arbitrary input.

use proptest::prelude::*;
use pyralog_crypto::checkpoint::DecodeError;
use pyralog_crypto::{Checkpoint, ClusterId, Digest, LogName, ZkTree};

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
}

fn any_checkpoint() -> impl Strategy<Value = Checkpoint> {
    let zk_root = proptest::option::of(any::<[u8; 32]>());
    (
        name(),
        name(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        (zk_root.clone(), zk_root),
    )
        .prop_map(|(cluster, log, partition, epoch, size, root, time_ms, (poseidon, rescue))| {
            Checkpoint {
                cluster: ClusterId::new(cluster).unwrap(),
                log: LogName::new(log).unwrap(),
                partition,
                epoch,
                size,
                root: Digest(root),
                time_ms,
                zk_roots: [(ZkTree::Poseidon, poseidon), (ZkTree::Rescue, rescue)]
                    .into_iter()
                    .filter_map(|(tree, root)| Some((tree, Digest(root?))))
                    .collect(),
            }
        })
}

proptest! {
    #[test]
    fn encoding_round_trips(checkpoint in any_checkpoint()) {
        let bytes = checkpoint.encode();
        prop_assert_eq!(Checkpoint::decode(&bytes), Ok(checkpoint.clone()));
        let json = serde_json::to_string(&checkpoint).unwrap();
        prop_assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), checkpoint);
    }

    #[test]
    fn every_truncation_is_an_error(checkpoint in any_checkpoint(), cut in any::<prop::sample::Index>()) {
        let bytes = checkpoint.encode();
        let cut = cut.index(bytes.len());
        prop_assert!(matches!(Checkpoint::decode(&bytes[..cut]), Err(DecodeError::Truncated(_))));
    }

    /// Arbitrary bytes never panic, and whatever decodes re-encodes to the same bytes
    /// (one encoding per checkpoint).
    #[test]
    fn decoding_is_total_and_canonical(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(checkpoint) = Checkpoint::decode(&bytes) {
            prop_assert_eq!(checkpoint.encode(), bytes);
        }
    }

    #[test]
    fn decoding_mutated_valid_encodings_is_canonical(checkpoint in any_checkpoint(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = checkpoint.encode();
        let at = at.index(bytes.len());
        bytes[at] = byte;
        if let Ok(decoded) = Checkpoint::decode(&bytes) {
            prop_assert_eq!(decoded.encode(), bytes);
        }
    }
}
