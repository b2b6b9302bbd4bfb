//! Chain contract state checked against a trusted header: a contract's storage value (or its
//! absence) proven under the state root the trusted head's block carries.
//!
//! The trusted head is the block `pyralog light sync` verified last; its header's state root is
//! the state after the block before it, so the server answers at height `head - 1`.

use pyralog_chain::block::Header;
use pyralog_chain::proof::verify_state_proof;
use pyralog_chain::values::contract_storage_key;
use pyralog_crypto::Digest;

use crate::chain::{ChainLightError, ProvenValue, TrustedHead};

/// Verifies that `proven` is the value of state key `key` under `header`'s state root, where
/// `header` must be the trusted head's block. Returns the proven bytes (none: the key is absent).
pub fn verify_trusted_state(
    trusted: &TrustedHead,
    header: &Header,
    key: &[u8],
    proven: &ProvenValue,
    what: &'static str,
) -> Result<Option<Vec<u8>>, ChainLightError> {
    if header.height != trusted.height {
        return Err(ChainLightError::WrongHeight { expected: trusted.height, got: header.height });
    }
    if header.block_id() != trusted.block_id {
        return Err(ChainLightError::NotTrustedBlock { expected: trusted.block_id, got: header.block_id() });
    }
    verify_state_proof(&header.state_root.0, key, proven.value.as_deref(), &proven.proof)
        .map_err(|source| ChainLightError::StateProof { what, source })?;
    Ok(proven.value.clone())
}

/// Verifies a contract's storage value under the trusted head: the state key is
/// `cstore/` + the contract id + `key`, and the proven bytes a postcard byte string. Returns the
/// value (none: the contract stores nothing under `key`).
pub fn verify_contract_storage(
    trusted: &TrustedHead,
    header: &Header,
    contract: &Digest,
    key: &[u8],
    proven: &ProvenValue,
) -> Result<Option<Vec<u8>>, ChainLightError> {
    let state_key = contract_storage_key(contract, key);
    let bytes = verify_trusted_state(trusted, header, &state_key, proven, "contract storage")?;
    bytes
        .map(|bytes| {
            postcard::from_bytes::<Vec<u8>>(&bytes)
                .map_err(|e| ChainLightError::State(format!("contract storage value: undecodable: {e}")))
        })
        .transpose()
}
