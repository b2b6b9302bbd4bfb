//! The end of every block on a staking chain, in Cosmos's order: punish double signs the block
//! proved, count the last commit's signatures and jail the validators that missed too many,
//! release matured unbonding entries, and (when any validator changed) recompute the top
//! validators by power, returning the changes as validator updates (effective two heights on).

use pyralog_consensus_types::Validator;
use pyralog_consensus_types::app::Misbehaviour;
use pyralog_consensus_types::validators::sort_canonical;
use pyralog_crypto::PublicKey;

use super::ledger::{BlockAt, list_remove, queue_maturity};
use super::params::{Fraction, StakingParams};
use super::records::{
    CANDIDATES_KEY, SigningInfo, UnbondingEntry, ValidatorRecord, consensus_key_index, matures_key,
    signing_info_key, unbonding_from_key, unbonding_key, validator_key,
};
use crate::overlay::Overlay;
use crate::state::StateError;
use crate::values::{LAST_BLOCK_KEY, LastBlock, VALIDATORS_KEY, account_key};

/// What the block brings to the end of block.
pub(crate) struct BlockEnd<'a> {
    /// Its height and time.
    pub(crate) at: BlockAt,
    /// Who signed its parent (sorted).
    pub(crate) last_commit_signers: &'a [PublicKey],
    /// Double signs it proved that were not recorded before.
    pub(crate) new_misbehaviour: &'a [Misbehaviour],
    /// The set of the block after next, before this block's changes (what updates diff against).
    pub(crate) next_set: &'a [Validator],
}

/// Runs the end of block; returns the validator updates.
pub(crate) fn end_block(
    view: &mut Overlay<'_>,
    params: &StakingParams,
    block: &BlockEnd<'_>,
) -> Result<Vec<Validator>, StateError> {
    for done in block.new_misbehaviour {
        double_sign(view, params, done, block.at)?;
    }
    if block.at.height >= 2 {
        count_signatures(view, params, block)?;
    }
    mature_unbonding(view, block.at)?;
    // Powers change only with a validator record (a bond, an unbond, a slash, a jailing).
    if !view.writes.keys().any(|key| key.starts_with(b"staking/validator/")) {
        return Ok(Vec::new());
    }
    let updates = top_validators(view, params, block.next_set)?;
    // A validator entering the set gets a fresh liveness window from the first height it
    // decides (misses from an earlier time in the set do not follow it back).
    for joined in updates.iter().filter(|u| u.power > 0 && !block.next_set.iter().any(|v| v.key == u.key)) {
        let first = block.at.height + 2;
        view.put(signing_info_key(&joined.key), &SigningInfo::new(first, params.signed_blocks_window));
    }
    Ok(updates)
}

/// The operator and record of the validator signing with `key`.
fn by_consensus_key(
    view: &Overlay<'_>,
    key: &PublicKey,
) -> Result<Option<(PublicKey, ValidatorRecord)>, StateError> {
    let Some(operator) = view.get::<PublicKey>(&consensus_key_index(key))? else { return Ok(None) };
    Ok(view.get::<ValidatorRecord>(&validator_key(&operator))?.map(|record| (operator, record)))
}

/// The set that decided `height` (state version `height - 1`). A version pruned away is an
/// error, never "no set": a node that pruned more than its peers must stop rather than punish
/// differently (state must be kept for the evidence window, `MAX_EVIDENCE_AGE` heights).
fn set_at(view: &Overlay<'_>, height: u64) -> Result<Option<Vec<Validator>>, StateError> {
    view.get_at::<Vec<Validator>>(VALIDATORS_KEY, height.saturating_sub(1))
}

/// Punishes a double sign at `done.height`: a validator bonded then, evidence not older than the
/// unbonding period (in blocks and in time), not tombstoned before. Anything else is a logged
/// no-op.
fn double_sign(
    view: &mut Overlay<'_>,
    params: &StakingParams,
    done: &Misbehaviour,
    at: BlockAt,
) -> Result<(), StateError> {
    let ignore = |why: &str| {
        tracing::info!(validator = %done.validator, height = done.height, why, "double-sign evidence ignored");
        Ok(())
    };
    let Some((operator, mut validator)) = by_consensus_key(view, &done.validator)? else {
        return ignore("not a validator");
    };
    if validator.tombstoned {
        return ignore("already tombstoned");
    }
    let then: Option<LastBlock> = view.get_at(LAST_BLOCK_KEY, done.height)?;
    let Some(then) = then else { return ignore("its height is not in the state") };
    let blocks_ago = at.height.saturating_sub(done.height);
    let ms_ago = at.time_ms.saturating_sub(then.time_ms);
    if blocks_ago > params.unbonding_blocks && ms_ago > params.unbonding_time_ms {
        return ignore("older than the unbonding period");
    }
    let power = set_at(view, done.height)?
        .and_then(|set| set.iter().find(|v| v.key == done.validator).map(|v| v.power));
    let Some(power) = power else { return ignore("not bonded at the infraction height") };
    // The set deciding the infraction's height was made at the end of the block two before it,
    // so stake unbonded in the block just before it still counted: entries created from that
    // block on are slashed.
    let bonded_since = done.height.saturating_sub(1);
    let burned = slash(
        view,
        params,
        &operator,
        &mut validator,
        bonded_since,
        power,
        params.slash_fraction_double_sign,
        at,
    )?;
    validator.tombstoned = true;
    validator.jailed_until_ms = Some(u64::MAX);
    view.put(validator_key(&operator), &validator);
    tracing::warn!(validator = %done.validator, height = done.height, burned, "double sign: slashed and tombstoned");
    Ok(())
}

/// Burns `fraction` of the stake the validator had at an infraction (its `power` then): first
/// from unbonding entries created at or after `bonded_since` (their tokens still counted in that
/// power), then from its tokens. Returns the tokens burned.
#[allow(clippy::too_many_arguments)]
fn slash(
    view: &mut Overlay<'_>,
    params: &StakingParams,
    operator: &PublicKey,
    validator: &mut ValidatorRecord,
    bonded_since: u64,
    power: u64,
    fraction: Fraction,
    at: BlockAt,
) -> Result<u64, StateError> {
    let due = fraction.of(u128::from(power) * u128::from(params.power_reduction));
    let mut remaining = due;
    let mut burned: u64 = 0;
    let delegators: Vec<PublicKey> = view.get(&unbonding_from_key(operator))?.unwrap_or_default();
    for delegator in delegators {
        let key = unbonding_key(operator, &delegator);
        let mut entries: Vec<UnbondingEntry> = view.get(&key)?.unwrap_or_default();
        let mut touched = false;
        for entry in &mut entries {
            if entry.creation_height < bonded_since || entry.is_mature(at.height, at.time_ms) {
                continue;
            }
            let cut = (fraction.of(u128::from(entry.initial_balance)) as u64).min(entry.balance);
            entry.balance -= cut;
            burned += cut;
            remaining = remaining.saturating_sub(u128::from(cut));
            touched |= cut > 0;
        }
        if touched {
            view.put(key, &entries);
        }
    }
    let from_tokens = remaining.min(u128::from(validator.tokens)) as u64;
    validator.tokens -= from_tokens;
    Ok(burned + from_tokens)
}

/// Counts the parent's signers against the set that decided it; jails (and slashes) a
/// validator that missed more than the window allows.
fn count_signatures(
    view: &mut Overlay<'_>,
    params: &StakingParams,
    block: &BlockEnd<'_>,
) -> Result<(), StateError> {
    let height = block.at.height;
    let Some(set) = set_at(view, height - 1)? else { return Ok(()) };
    let window = params.signed_blocks_window;
    for member in set {
        let key = signing_info_key(&member.key);
        let mut info = match view.get::<SigningInfo>(&key)? {
            Some(info) if info.missed_bits.len() as u64 == window.div_ceil(8) => info,
            _ => SigningInfo::new(height, window),
        };
        let slot = (info.index_offset % window) as usize;
        info.index_offset += 1;
        let (byte, bit) = (slot / 8, 1u8 << (slot % 8));
        let was_missed = info.missed_bits[byte] & bit != 0;
        let missed = block.last_commit_signers.binary_search(&member.key).is_err();
        match (was_missed, missed) {
            (false, true) => {
                info.missed_bits[byte] |= bit;
                info.missed += 1;
            }
            (true, false) => {
                info.missed_bits[byte] &= !bit;
                info.missed = info.missed.saturating_sub(1);
            }
            _ => {}
        }
        let counted = height > info.start_height.saturating_add(window);
        if counted
            && info.missed > params.max_missed()
            && let Some((operator, mut validator)) = by_consensus_key(view, &member.key)?
            && validator.eligible()
        {
            // The block missed is the parent; its set was made two blocks before it.
            let infraction = height.saturating_sub(2).max(1);
            let burned = slash(
                view,
                params,
                &operator,
                &mut validator,
                infraction,
                member.power,
                params.slash_fraction_downtime,
                block.at,
            )?;
            let until = block.at.time_ms.saturating_add(params.downtime_jail_ms);
            validator.jailed_until_ms = Some(until);
            view.put(validator_key(&operator), &validator);
            tracing::warn!(validator = %member.key, missed = info.missed, burned, until, "downtime: slashed and jailed");
            info = SigningInfo::new(height, window);
        }
        view.put(key, &info);
    }
    Ok(())
}

/// Releases the unbonding entries due at this height whose time has come too; the pairs whose
/// time has not come yet wait for the next height.
fn mature_unbonding(view: &mut Overlay<'_>, at: BlockAt) -> Result<(), StateError> {
    let bucket = matures_key(at.height);
    let Some(due) = view.get::<Vec<(PublicKey, PublicKey)>>(&bucket)? else { return Ok(()) };
    view.delete(bucket);
    for (operator, delegator) in due {
        let key = unbonding_key(&operator, &delegator);
        let entries: Vec<UnbondingEntry> = view.get(&key)?.unwrap_or_default();
        let (mature, waiting): (Vec<_>, Vec<_>) =
            entries.into_iter().partition(|entry| entry.is_mature(at.height, at.time_ms));
        let released: u64 = mature.iter().map(|entry| entry.balance).sum();
        if released > 0 {
            let mut account = view.account(&delegator)?;
            account.balance = account.balance.saturating_add(released);
            view.put(account_key(&delegator), &account);
        }
        if waiting.iter().any(|entry| entry.completion_height <= at.height) {
            queue_maturity(view, at.height + 1, &operator, &delegator)?;
        }
        if waiting.is_empty() {
            view.delete(key);
            list_remove(view, unbonding_from_key(&operator), &delegator)?;
        } else if !mature.is_empty() {
            view.put(key, &waiting);
        }
    }
    Ok(())
}

/// The top validators by power (ties: the smaller consensus key first; jailed, tombstoned and
/// powerless candidates left out), as updates against `next_set`. An empty result keeps the set
/// (a chain with no eligible validator could not go on).
fn top_validators(
    view: &Overlay<'_>,
    params: &StakingParams,
    next_set: &[Validator],
) -> Result<Vec<Validator>, StateError> {
    let candidates: Vec<PublicKey> = view.get(CANDIDATES_KEY)?.unwrap_or_default();
    let mut ranked = Vec::with_capacity(candidates.len());
    for operator in candidates {
        if let Some(validator) = view.get::<ValidatorRecord>(&validator_key(&operator))?
            && validator.eligible()
        {
            let power = params.power(validator.tokens);
            if power > 0 {
                ranked.push(Validator { key: validator.consensus_key, power });
            }
        }
    }
    sort_canonical(&mut ranked);
    ranked.truncate(params.max_validators as usize);
    if ranked.is_empty() {
        tracing::error!("no eligible validator: the validator set stays as it is");
        return Ok(Vec::new());
    }
    let mut updates: Vec<Validator> = next_set
        .iter()
        .filter(|old| !ranked.iter().any(|new| new.key == old.key))
        .map(|old| Validator { key: old.key, power: 0 })
        .collect();
    updates.extend(ranked.into_iter().filter(|new| !next_set.contains(new)));
    Ok(updates)
}
