//! The staking transactions: create a validator, delegate, unbond, unjail, edit. Each returns
//! `Ok(Err(reason))` for a refused action (the fee is charged, nothing else changes) and
//! `Err` only for a failing state store.

use pyralog_crypto::PublicKey;

use super::params::{MAX_CANDIDATES, StakingParams};
use super::records::{
    CANDIDATES_KEY, Delegation, MAX_DELEGATIONS_PER_DELEGATOR, MAX_DESCRIPTION_BYTES, SigningInfo,
    UnbondingEntry, ValidatorRecord, consensus_key_index, delegation_key, delegations_of_key, matures_key,
    mul_div, signing_info_key, unbonding_from_key, unbonding_key, validator_key,
};
use crate::overlay::Overlay;
use crate::state::StateError;

/// Where in the chain an action runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockAt {
    /// The block's height.
    pub(crate) height: u64,
    /// The block's time, milliseconds since the Unix epoch.
    pub(crate) time_ms: u64,
}

/// An action's outcome: a log line, or why it was refused.
pub(crate) type Outcome = Result<Result<String, String>, StateError>;

/// Basis points in a whole.
const BPS: u16 = 10_000;

/// Adds `item` to the list under `key` unless present; false when the list is at `cap`.
pub(crate) fn list_insert(
    view: &mut Overlay<'_>,
    key: Vec<u8>,
    item: PublicKey,
    cap: usize,
) -> Result<bool, StateError> {
    let mut list: Vec<PublicKey> = view.get(&key)?.unwrap_or_default();
    if list.contains(&item) {
        return Ok(true);
    }
    if list.len() >= cap {
        return Ok(false);
    }
    list.push(item);
    view.put(key, &list);
    Ok(true)
}

/// Removes `item` from the list under `key` (deleting an emptied list).
pub(crate) fn list_remove(view: &mut Overlay<'_>, key: Vec<u8>, item: &PublicKey) -> Result<(), StateError> {
    let mut list: Vec<PublicKey> = view.get(&key)?.unwrap_or_default();
    list.retain(|k| k != item);
    match list.is_empty() {
        true => view.delete(key),
        false => view.put(key, &list),
    }
    Ok(())
}

/// `CreateValidator`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create_validator(
    view: &mut Overlay<'_>,
    params: &StakingParams,
    sender: &PublicKey,
    consensus_key: PublicKey,
    self_bond: u64,
    commission_bps: u16,
    max_commission_bps: u16,
    description: String,
    at: BlockAt,
) -> Outcome {
    if view.get::<ValidatorRecord>(&validator_key(sender))?.is_some() {
        return Ok(Err(format!("{sender} already operates a validator")));
    }
    if let Some(owner) = view.get::<PublicKey>(&consensus_key_index(&consensus_key))? {
        return Ok(Err(format!("consensus key {consensus_key} is already used by the validator of {owner}")));
    }
    if max_commission_bps > BPS || commission_bps > max_commission_bps {
        return Ok(Err(format!(
            "commission {commission_bps} bps must be at most the maximum {max_commission_bps} bps, itself at most {BPS}"
        )));
    }
    if description.len() > MAX_DESCRIPTION_BYTES {
        return Ok(Err(format!("description of {} bytes over {MAX_DESCRIPTION_BYTES}", description.len())));
    }
    if params.power(self_bond) == 0 {
        return Ok(Err(format!(
            "self-bond {self_bond} is under one unit of power ({} tokens)",
            params.power_reduction
        )));
    }
    let candidates: Vec<PublicKey> = view.get(CANDIDATES_KEY)?.unwrap_or_default();
    if candidates.len() >= MAX_CANDIDATES {
        return Ok(Err(format!("the chain already has {MAX_CANDIDATES} validator candidates")));
    }
    if let Err(why) = view.debit(sender, self_bond)? {
        return Ok(Err(why));
    }
    let record = ValidatorRecord {
        operator: *sender,
        consensus_key,
        tokens: self_bond,
        shares: u128::from(self_bond),
        commission_bps,
        max_commission_bps,
        description,
        jailed_until_ms: None,
        tombstoned: false,
        created_at: at.height,
    };
    view.put(validator_key(sender), &record);
    view.put(consensus_key_index(&consensus_key), sender);
    view.put(delegation_key(sender, sender), &Delegation { shares: u128::from(self_bond) });
    // A refusal here is rolled back with everything above (the app undoes a refused action).
    if !list_insert(view, delegations_of_key(sender), *sender, MAX_DELEGATIONS_PER_DELEGATOR)? {
        return Ok(Err(format!("{sender} already delegates to {MAX_DELEGATIONS_PER_DELEGATOR} validators")));
    }
    list_insert(view, CANDIDATES_KEY.to_vec(), *sender, MAX_CANDIDATES)?;
    Ok(Ok(format!("created validator {sender} signing with {consensus_key}, bonded {self_bond}")))
}

/// `Delegate`.
pub(crate) fn delegate(
    view: &mut Overlay<'_>,
    sender: &PublicKey,
    operator: &PublicKey,
    amount: u64,
) -> Outcome {
    let Some(mut validator) = view.get::<ValidatorRecord>(&validator_key(operator))? else {
        return Ok(Err(format!("{operator} operates no validator")));
    };
    if amount == 0 {
        return Ok(Err("delegating nothing".into()));
    }
    if validator.tombstoned {
        return Ok(Err(format!("the validator of {operator} is tombstoned")));
    }
    if validator.tokens == 0 && validator.shares > 0 {
        return Ok(Err(format!("the validator of {operator} was slashed to nothing")));
    }
    let shares = match validator.shares {
        0 => u128::from(amount),
        issued => mul_div(u128::from(amount), issued, u128::from(validator.tokens)),
    };
    let (Some(tokens), Some(total_shares)) = (
        validator.tokens.checked_add(amount),
        validator.shares.checked_add(shares).filter(|s| *s < u128::MAX / 2),
    ) else {
        return Ok(Err("the validator's stake would overflow".into()));
    };
    let mut delegation =
        view.get::<Delegation>(&delegation_key(sender, operator))?.unwrap_or(Delegation { shares: 0 });
    if !list_insert(view, delegations_of_key(sender), *operator, MAX_DELEGATIONS_PER_DELEGATOR)? {
        return Ok(Err(format!("{sender} already delegates to {MAX_DELEGATIONS_PER_DELEGATOR} validators")));
    }
    if let Err(why) = view.debit(sender, amount)? {
        return Ok(Err(why));
    }
    delegation.shares += shares;
    validator.tokens = tokens;
    validator.shares = total_shares;
    view.put(delegation_key(sender, operator), &delegation);
    view.put(validator_key(operator), &validator);
    Ok(Ok(format!("delegated {amount} to {operator}")))
}

/// `Unbond`.
pub(crate) fn unbond(
    view: &mut Overlay<'_>,
    params: &StakingParams,
    sender: &PublicKey,
    operator: &PublicKey,
    amount: u64,
    at: BlockAt,
) -> Outcome {
    let (Some(mut validator), Some(mut delegation)) = (
        view.get::<ValidatorRecord>(&validator_key(operator))?,
        view.get::<Delegation>(&delegation_key(sender, operator))?,
    ) else {
        return Ok(Err(format!("{sender} has no delegation to {operator}")));
    };
    if validator.tokens == 0 {
        return Ok(Err(format!("the validator of {operator} holds no tokens")));
    }
    let held = validator.tokens_of(delegation.shares);
    if amount > held {
        return Ok(Err(format!("unbonding {amount} of a delegation worth {held}")));
    }
    // Unbonding all it is worth takes every share (after a slash, the shares a token amount
    // converts to fall short of the delegation's, and the rest would be dust forever).
    let shares = match amount == held {
        true => delegation.shares,
        false => mul_div(u128::from(amount), validator.shares, u128::from(validator.tokens)),
    };
    let tokens = validator.tokens_of(shares);
    if tokens == 0 {
        return Ok(Err(format!("{amount} is too little to unbond")));
    }
    let key = unbonding_key(operator, sender);
    let mut entries: Vec<UnbondingEntry> = view.get(&key)?.unwrap_or_default();
    if entries.len() >= params.max_entries as usize {
        return Ok(Err(format!(
            "{sender} already has {} unbonding entries with {operator} (the most)",
            entries.len()
        )));
    }
    let entry = UnbondingEntry {
        creation_height: at.height,
        completion_height: at.height.saturating_add(params.unbonding_blocks),
        completion_time_ms: at.time_ms.saturating_add(params.unbonding_time_ms),
        initial_balance: tokens,
        balance: tokens,
    };
    entries.push(entry);
    view.put(key, &entries);
    list_insert(view, unbonding_from_key(operator), *sender, usize::MAX)?;
    queue_maturity(view, entry.completion_height, operator, sender)?;
    validator.tokens -= tokens;
    validator.shares -= shares;
    delegation.shares -= shares;
    view.put(validator_key(operator), &validator);
    if delegation.shares == 0 {
        view.delete(delegation_key(sender, operator));
        list_remove(view, delegations_of_key(sender), operator)?;
    } else {
        view.put(delegation_key(sender, operator), &delegation);
    }
    Ok(Ok(format!(
        "unbonding {tokens} from {operator} until height {} and time {}",
        entry.completion_height, entry.completion_time_ms
    )))
}

/// Puts the pair in the bucket of entries due at `height`.
pub(crate) fn queue_maturity(
    view: &mut Overlay<'_>,
    height: u64,
    operator: &PublicKey,
    delegator: &PublicKey,
) -> Result<(), StateError> {
    let key = matures_key(height);
    let mut due: Vec<(PublicKey, PublicKey)> = view.get(&key)?.unwrap_or_default();
    if !due.contains(&(*operator, *delegator)) {
        due.push((*operator, *delegator));
        view.put(key, &due);
    }
    Ok(())
}

/// `Unjail`.
pub(crate) fn unjail(
    view: &mut Overlay<'_>,
    params: &StakingParams,
    sender: &PublicKey,
    at: BlockAt,
) -> Outcome {
    let Some(mut validator) = view.get::<ValidatorRecord>(&validator_key(sender))? else {
        return Ok(Err(format!("{sender} operates no validator")));
    };
    if validator.tombstoned {
        return Ok(Err("the validator is tombstoned (it double-signed) and never returns".into()));
    }
    let Some(until) = validator.jailed_until_ms else {
        return Ok(Err("the validator is not jailed".into()));
    };
    if at.time_ms < until {
        return Ok(Err(format!("the validator is jailed until {until} (block time {})", at.time_ms)));
    }
    if params.power(validator.tokens) == 0 {
        return Ok(Err(format!("the validator's {} tokens are under one unit of power", validator.tokens)));
    }
    validator.jailed_until_ms = None;
    view.put(validator_key(sender), &validator);
    // Its liveness counts afresh from here.
    view.put(
        signing_info_key(&validator.consensus_key),
        &SigningInfo::new(at.height, params.signed_blocks_window),
    );
    Ok(Ok(format!("unjailed {sender}")))
}

/// `EditValidator`.
pub(crate) fn edit_validator(
    view: &mut Overlay<'_>,
    sender: &PublicKey,
    commission_bps: Option<u16>,
    description: Option<String>,
) -> Outcome {
    let Some(mut validator) = view.get::<ValidatorRecord>(&validator_key(sender))? else {
        return Ok(Err(format!("{sender} operates no validator")));
    };
    if let Some(rate) = commission_bps {
        if rate > validator.max_commission_bps {
            return Ok(Err(format!(
                "commission {rate} bps over the validator's maximum {} bps",
                validator.max_commission_bps
            )));
        }
        validator.commission_bps = rate;
    }
    if let Some(text) = description {
        if text.len() > MAX_DESCRIPTION_BYTES {
            return Ok(Err(format!("description of {} bytes over {MAX_DESCRIPTION_BYTES}", text.len())));
        }
        validator.description = text;
    }
    view.put(validator_key(sender), &validator);
    Ok(Ok(format!("edited {sender}")))
}
