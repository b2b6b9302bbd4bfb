//! Conversions between CometBFT's types and ours: validator addresses (the first 20 bytes of
//! SHA-256 of the ed25519 key), validator updates, voting power and timestamps.

use pyralog_consensus_types::Validator;
use pyralog_consensus_types::validators::MAX_TOTAL_POWER;
use pyralog_crypto::PublicKey;
use sha2::{Digest as _, Sha256};
use tendermint_proto::google::protobuf::Timestamp;
use tendermint_proto::v0_38::abci::ValidatorUpdate;
use tendermint_proto::v0_38::crypto::PublicKey as ProtoKey;
use tendermint_proto::v0_38::crypto::public_key::Sum;

/// A CometBFT validator address.
pub type Address = [u8; 20];

/// The CometBFT address of `key`: SHA-256 of the 32 key bytes, first 20 bytes.
pub fn address(key: &PublicKey) -> Address {
    let digest = Sha256::digest(key.as_bytes());
    let mut out = [0; 20];
    out.copy_from_slice(&digest[..20]);
    out
}

/// Why a CometBFT value cannot be one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A validator key of another type than ed25519, or none.
    #[error("validator key: only ed25519 keys are supported")]
    KeyType,
    /// 32 bytes that are not a valid ed25519 point.
    #[error("validator key: {0}")]
    Key(String),
    /// A voting power below zero or above CometBFT's bound.
    #[error("voting power {0} is outside 0..={MAX_TOTAL_POWER}")]
    Power(i64),
    /// A timestamp before the Unix epoch or with out-of-range nanoseconds.
    #[error("timestamp {seconds}s {nanos}ns is not a time after 1970")]
    Time {
        /// Its seconds.
        seconds: i64,
        /// Its nanoseconds.
        nanos: i32,
    },
}

/// Our validator from CometBFT's update (power 0 removes, as in our updates).
pub fn validator_from_update(update: &ValidatorUpdate) -> Result<Validator, ConvertError> {
    let key = match update.pub_key.as_ref().and_then(|k| k.sum.as_ref()) {
        Some(Sum::Ed25519(bytes)) => {
            let bytes: &[u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| ConvertError::Key(format!("{} bytes", bytes.len())))?;
            PublicKey::from_bytes(bytes).map_err(|e| ConvertError::Key(e.to_string()))?
        }
        _ => return Err(ConvertError::KeyType),
    };
    let power = u64::try_from(update.power)
        .ok()
        .filter(|p| *p <= MAX_TOTAL_POWER)
        .ok_or(ConvertError::Power(update.power))?;
    Ok(Validator { key, power })
}

/// CometBFT's update from our validator (our powers are within its bound).
pub fn update_from_validator(validator: &Validator) -> ValidatorUpdate {
    ValidatorUpdate {
        pub_key: Some(ProtoKey { sum: Some(Sum::Ed25519(validator.key.as_bytes().to_vec())) }),
        power: i64::try_from(validator.power).unwrap_or(i64::MAX),
    }
}

/// Milliseconds since the Unix epoch of a CometBFT timestamp (none: the request carries no time).
pub fn millis(time: Option<&Timestamp>) -> Result<u64, ConvertError> {
    let Some(time) = time else { return Ok(0) };
    let bad = ConvertError::Time { seconds: time.seconds, nanos: time.nanos };
    let seconds = u64::try_from(time.seconds).map_err(|_| bad.clone())?;
    let nanos = u32::try_from(time.nanos).ok().filter(|n| *n < 1_000_000_000).ok_or(bad.clone())?;
    seconds.checked_mul(1000).and_then(|ms| ms.checked_add(u64::from(nanos / 1_000_000))).ok_or(bad)
}
