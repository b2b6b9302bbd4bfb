//! The Pyralog chain app as an [`AbciApp`]: its validator sets, its last block, and the genesis
//! file CometBFT's genesis carries as `app_state`.

use pyralog_chain::app::{AppError, ChainApp};
use pyralog_chain::genesis::GenesisFile;
use pyralog_consensus_types::vote::BlockId;
use pyralog_consensus_types::{Validator, ValidatorSet};

use crate::adapter::AbciApp;

impl AbciApp for ChainApp {
    fn known_validators(&self) -> Result<Vec<Validator>, AppError> {
        let (current, next) = self.validator_sets()?;
        Ok(current.into_iter().chain(next).collect())
    }

    fn last_block_id(&self) -> Result<BlockId, AppError> {
        Ok(ChainApp::last_block_id(self)?)
    }

    /// CometBFT's `app_state` is the Pyralog genesis file (JSON); its chain id and validators
    /// must be CometBFT's. Empty: an empty app state.
    fn genesis_app_state(
        &self,
        chain_id: &str,
        validators: &[Validator],
        json: &[u8],
    ) -> Result<Vec<u8>, String> {
        if json.is_empty() {
            return Ok(Vec::new());
        }
        let text = std::str::from_utf8(json).map_err(|e| format!("not UTF-8: {e}"))?;
        let genesis = GenesisFile::parse(text).map_err(|e| format!("{e:#}"))?;
        if genesis.chain_id != chain_id {
            return Err(format!("the genesis file is {:?}'s, CometBFT runs {chain_id:?}", genesis.chain_id));
        }
        let ours = genesis.validator_set().map_err(|e| format!("{e:#}"))?;
        let theirs = ValidatorSet::new(validators.iter().copied()).map_err(|e| e.to_string())?;
        if ours != theirs {
            return Err("CometBFT's genesis validators are not the genesis file's".into());
        }
        Ok(genesis.app_state())
    }
}
