//! What each transaction action does to the state (the fee and nonce are the app's, taken
//! before): transfers, cluster registration, checkpoint anchors, and staking's actions on a chain
//! that stakes.

use pyralog_crypto::PublicKey;
use pyralog_crypto::light::check_extends;

use crate::contracts;
use crate::overlay::Overlay;
use crate::staking::StakingParams;
use crate::staking::ledger::{self, BlockAt, Outcome};
use crate::staking::records::PARAMS_KEY;
use crate::tx::{ANCHOR_THRESHOLD, Action};
use crate::values::{Anchor, ClusterRecord, anchor_key, cluster_key, cluster_members};

/// Who sent the transaction, with the nonce it carried (already taken).
pub(crate) struct Sender {
    /// The account.
    pub(crate) key: PublicKey,
    /// The transaction's nonce (names the contracts it instantiates).
    pub(crate) nonce: u64,
}

/// Applies one action for `from` (fee and nonce already taken); `Err` is why it failed.
pub(crate) fn apply(view: &mut Overlay<'_>, from: &Sender, action: Action, at: BlockAt) -> Outcome {
    let height = at.height;
    let sender = &from.key;
    match action {
        Action::DeployCode { wasm } => contracts::deploy(view, sender, wasm, at),
        Action::Instantiate { code, input, value, fuel } => {
            contracts::instantiate(view, from, code, &input, value, fuel, at)
        }
        Action::CallContract { contract, entry, input, value, fuel } => {
            let call = contracts::ChainCall { contract, entry: &entry, input: &input, value, fuel };
            contracts::call(view, from, call, at)
        }
        Action::Transfer { to, amount } => {
            if let Err(why) = view.debit(sender, amount)? {
                return Ok(Err(why));
            }
            if view.credit(&to, amount)?.is_err() {
                return Ok(Err("the receiver's balance would overflow".into()));
            }
            Ok(Ok(format!("moved {amount}")))
        }
        Action::RegisterCluster { cluster, members, peers } => {
            if let Err(reason) = cluster_members(&members) {
                return Ok(Err(reason));
            }
            if let Some(existing) = view.get::<ClusterRecord>(&cluster_key(&cluster))?
                && existing.owner != *sender
            {
                return Ok(Err(format!("cluster {cluster} is registered by {}", existing.owner)));
            }
            view.put(cluster_key(&cluster), &ClusterRecord { owner: *sender, members, peers });
            Ok(Ok(format!("registered {cluster}")))
        }
        Action::AnchorCheckpoint { certificate, consistency } => {
            let checkpoint = &certificate.message;
            let Some(cluster) = view.get::<ClusterRecord>(&cluster_key(&checkpoint.cluster))? else {
                return Ok(Err(format!("cluster {} is not registered", checkpoint.cluster)));
            };
            // Checked at registration and at genesis; a state that holds a bad list anyway
            // fails the transaction, never the validator.
            let members = match cluster_members(&cluster.members) {
                Ok(members) => members,
                Err(reason) => return Ok(Err(format!("cluster {}: {reason}", checkpoint.cluster))),
            };
            if let Err(err) = certificate.verify(&members, ANCHOR_THRESHOLD) {
                return Ok(Err(format!("checkpoint certificate: {err}")));
            }
            let key = anchor_key(&checkpoint.cluster, &checkpoint.log, checkpoint.partition);
            if let Some(previous) = view.get::<Anchor>(&key)?
                && let Err(err) =
                    check_extends(&previous.certificate.message, checkpoint, consistency.as_ref())
            {
                return Ok(Err(format!("inconsistent with the anchored checkpoint: {err}")));
            }
            let summary = format!("anchored {key:?} at size {}", checkpoint.size);
            view.put(key, &Anchor { certificate, height });
            Ok(Ok(summary.replace('"', "")))
        }
        staking_action @ (Action::CreateValidator { .. }
        | Action::Delegate { .. }
        | Action::Unbond { .. }
        | Action::Unjail
        | Action::EditValidator { .. }) => match view.get::<StakingParams>(PARAMS_KEY)? {
            Some(params) => apply_staking(view, &params, sender, staking_action, at),
            None => Ok(Err("this chain does not stake (its genesis has no staking section)".into())),
        },
    }
}

/// Applies one staking action.
fn apply_staking(
    view: &mut Overlay<'_>,
    params: &StakingParams,
    sender: &PublicKey,
    action: Action,
    at: BlockAt,
) -> Outcome {
    match action {
        Action::CreateValidator {
            consensus_key,
            self_bond,
            commission_bps,
            max_commission_bps,
            description,
        } => ledger::create_validator(
            view,
            params,
            sender,
            consensus_key,
            self_bond,
            commission_bps,
            max_commission_bps,
            description,
            at,
        ),
        Action::Delegate { validator, amount } => ledger::delegate(view, sender, &validator, amount),
        Action::Unbond { validator, amount } => ledger::unbond(view, params, sender, &validator, amount, at),
        Action::Unjail => ledger::unjail(view, params, sender, at),
        Action::EditValidator { commission_bps, description } => {
            ledger::edit_validator(view, sender, commission_bps, description)
        }
        other => Ok(Err(format!("{other:?} is not a staking action"))),
    }
}
