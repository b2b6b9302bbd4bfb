//! A staking chain's genesis: each genesis validator becomes a candidate operated by its own
//! key, with a self-bond of `power * powerReduction` tokens created bonded.

use pyralog_consensus_types::Validator;

use super::ledger::list_insert;
use super::params::{MAX_CANDIDATES, StakingParams};
use super::records::{
    CANDIDATES_KEY, Delegation, MAX_DELEGATIONS_PER_DELEGATOR, PARAMS_KEY, SigningInfo, ValidatorRecord,
    consensus_key_index, delegation_key, delegations_of_key, signing_info_key, validator_key,
};
use crate::overlay::Overlay;

/// Writes the parameters and the genesis validators' records; why not when a power cannot be
/// bonded (more tokens than a balance holds, or over the per-validator power cap).
pub(crate) fn bond_genesis_validators(
    view: &mut Overlay<'_>,
    params: &StakingParams,
    validators: &[Validator],
) -> Result<(), String> {
    params.check()?;
    if validators.len() > MAX_CANDIDATES.min(params.max_validators as usize) {
        return Err(format!("{} genesis validators, more than staking.maxValidators", validators.len()));
    }
    view.put(PARAMS_KEY.to_vec(), params);
    for validator in validators {
        let tokens = params
            .tokens_for_power(validator.power)
            .ok_or_else(|| format!("validator {} cannot bond power {}", validator.key, validator.power))?;
        let record = ValidatorRecord {
            operator: validator.key,
            consensus_key: validator.key,
            tokens,
            shares: u128::from(tokens),
            commission_bps: 0,
            max_commission_bps: 10_000,
            description: String::new(),
            jailed_until_ms: None,
            tombstoned: false,
            created_at: 0,
        };
        view.put(validator_key(&validator.key), &record);
        view.put(consensus_key_index(&validator.key), &validator.key);
        view.put(delegation_key(&validator.key, &validator.key), &Delegation { shares: u128::from(tokens) });
        view.put(signing_info_key(&validator.key), &SigningInfo::new(1, params.signed_blocks_window));
        let listed = list_insert(
            view,
            delegations_of_key(&validator.key),
            validator.key,
            MAX_DELEGATIONS_PER_DELEGATOR,
        )
        .and_then(|_| list_insert(view, CANDIDATES_KEY.to_vec(), validator.key, MAX_CANDIDATES))
        .map_err(|e| e.to_string())?;
        if !listed {
            return Err("too many genesis validators".into());
        }
    }
    Ok(())
}
