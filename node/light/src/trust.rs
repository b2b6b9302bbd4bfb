//! What a light client keeps between runs: the trust file of `verify-record` and `verify-zk`
//! (a cluster's member keys, each log's placement, the latest checkpoint verified per partition)
//! and the chain light client's state file (the trusted head and the latest anchored checkpoint
//! verified per partition). Both are JSON.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use pyralog_crypto::quorum::MemberSet;
use pyralog_crypto::{Checkpoint, PublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chain::TrustedHead;
use crate::wire::{to_hex, u64_field, unhex};

/// What the client trusts about one cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Trust {
    /// The cluster's id.
    pub cluster: String,
    /// Node id -> key.
    members: BTreeMap<u64, PublicKey>,
    /// Log -> per partition, its replicas.
    placement: BTreeMap<String, Vec<Vec<u64>>>,
    /// `log/partition` -> the latest verified checkpoint's canonical encoding (hex).
    checkpoints: BTreeMap<String, String>,
    /// Log -> the contracts it runs under, pinned with its placement.
    #[serde(default)]
    rules: BTreeMap<String, LogRules>,
}

/// The contracts a log runs under, by code hash (0x hex), as its configuration names them: its
/// constraint, access control and trigger (code and target log). A log's configuration never
/// changes, so the rules pinned with its placement are the rules of every record it holds;
/// checkpoints do not commit to them, so they are trusted as the placement is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRules {
    /// The constraint's code hash.
    pub constraint: Option<String>,
    /// The access-control contract's code hash.
    pub acl: Option<String>,
    /// The trigger's code hash and target log.
    pub trigger: Option<(String, String)>,
}

impl Trust {
    /// Pins the cluster and member keys a `system_status` answer reports (trust on first use).
    pub fn from_status(status: &Value) -> anyhow::Result<Trust> {
        let mut trust =
            Trust { cluster: status["cluster"].as_str().unwrap_or_default().to_owned(), ..Trust::default() };
        for member in status["members"].as_array().context("members")? {
            let key: PublicKey = member["publicKey"].as_str().context("publicKey")?.parse()?;
            trust.members.insert(u64_field(&member["id"], "member id")?, key);
        }
        Ok(trust)
    }

    /// How many member keys are pinned.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Whether `log`'s placement is pinned.
    pub fn knows_log(&self, log: &str) -> bool {
        self.placement.contains_key(log)
    }

    /// Pins `log`'s placement as a `log_list` answer reports it (trust on first use).
    pub fn pin_placement(&mut self, log: &str, log_list: &Value) -> anyhow::Result<()> {
        let info = log_list.as_array().into_iter().flatten().find(|l| l["name"] == log);
        let info = info.context("no such log")?;
        let placement: Vec<Vec<u64>> = serde_json::from_value(info["placement"].clone())?;
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let trigger = text(&info["trigger"]["code"]).zip(text(&info["trigger"]["target"]));
        let rules = LogRules { constraint: text(&info["constraint"]), acl: text(&info["acl"]), trigger };
        self.placement.insert(log.to_owned(), placement);
        self.rules.insert(log.to_owned(), rules);
        Ok(())
    }

    /// The contracts `log` runs under, as pinned (a trust file from before contracts has none).
    pub fn rules(&self, log: &str) -> Option<&LogRules> {
        self.rules.get(log)
    }

    /// The keys whose majority certifies the partition's checkpoints.
    pub fn signers(&self, log: &str, partition: u32) -> anyhow::Result<MemberSet> {
        let placement = self.placement.get(log).context("log not in the trust file")?;
        let replicas = placement.get(partition as usize).context("no such partition")?;
        let keys = replicas
            .iter()
            .map(|id| {
                self.members.get(id).copied().with_context(|| format!("replica {id} has no trusted key"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(MemberSet::equal(keys)?)
    }

    /// Keeps `checkpoint` for `log/partition` if it is newer than the one trusted before.
    pub fn keep_newer(&mut self, log: &str, partition: u32, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        keep_newer(&mut self.checkpoints, format!("{log}/{partition}"), checkpoint).map(drop)
    }

    /// The checkpoint of `log/partition` verified last, if any.
    pub fn trusted(&self, log: &str, partition: u32) -> anyhow::Result<Option<Checkpoint>> {
        trusted_checkpoint(&self.checkpoints, &format!("{log}/{partition}"))
    }

    /// Writes the trust file.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// What the chain light client keeps between runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LightState {
    /// The trusted head.
    pub head: TrustedHead,
    /// `cluster/log/partition` -> the latest anchored checkpoint verified (hex of its encoding).
    #[serde(default)]
    pub anchors: BTreeMap<String, String>,
    /// On a Proof-of-Work chain, the seals followed (the heaviest chain servers showed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seals: Option<crate::work::SealChain>,
}

impl LightState {
    /// The state at `path`; `None` when there is no file yet.
    pub fn load(path: &Path) -> anyhow::Result<Option<LightState>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).with_context(|| format!("light state {}", path.display()))?,
            )),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the state atomically (a crash leaves the old or the new file).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// The anchored checkpoint verified last for `cluster/log/partition`, if any.
    pub fn anchored(&self, slot: &str) -> anyhow::Result<Option<Checkpoint>> {
        trusted_checkpoint(&self.anchors, slot)
    }

    /// Keeps `anchored` for `slot` if it is newer than the one verified before; whether it was.
    pub fn keep_newer_anchor(&mut self, slot: String, anchored: &Checkpoint) -> anyhow::Result<bool> {
        keep_newer(&mut self.anchors, slot, anchored)
    }
}

/// Keeps `checkpoint` in a trust map for `slot` if it is larger than the one kept before;
/// whether it was.
fn keep_newer(
    map: &mut BTreeMap<String, String>,
    slot: String,
    checkpoint: &Checkpoint,
) -> anyhow::Result<bool> {
    let newer = trusted_checkpoint(map, &slot)?.is_none_or(|old| checkpoint.size > old.size);
    if newer {
        map.insert(slot, to_hex(&checkpoint.encode()));
    }
    Ok(newer)
}

/// The checkpoint a trust map keeps for `slot` (hex of its canonical encoding), if any.
fn trusted_checkpoint(map: &BTreeMap<String, String>, slot: &str) -> anyhow::Result<Option<Checkpoint>> {
    match map.get(slot) {
        Some(encoded) => Ok(Some(Checkpoint::decode(&unhex(&json!(encoded), "trusted checkpoint")?)?)),
        None => Ok(None),
    }
}
