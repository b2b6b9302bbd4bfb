//! `pyralog light sync` and `pyralog light verify-record --finality`: the chain light client.
//!
//! Its state file (JSON) holds the trusted head (height, block id, time, the validators of the
//! next height) and, per partition, the latest anchored checkpoint it verified. `sync` starts
//! from the genesis file the first time. The checks themselves are `pyralog_light::chain`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use pyralog_chain::block::{Header, validators_hash};
use pyralog_chain::genesis::GenesisFile;
use pyralog_consensus_types::Engine;
use pyralog_consensus_types::pow::PowRules;
use pyralog_consensus_types::{FinalityProof, Validator};
use pyralog_crypto::light::RecordQuery;
use pyralog_crypto::{ClusterId, LogName};
use pyralog_light::chain::{
    ChainLightError, FinalityEvidence, TrustedHead, verify_adjacent, verify_finality, verify_finality_work,
    verify_skipping,
};
use pyralog_light::comet::{
    CometEvidence, CometTrust, parse_light_block, verify_finality_comet, verify_header,
};
use pyralog_light::record::{proven_fields, proven_record};
use pyralog_light::trust::LightState;
use pyralog_light::wire::{self, to_hex, u64_field};
use pyralog_light::work::SealChain;
use pyralog_rpc_params::MAX_SEALS;
use serde_json::{Value, json};

use crate::cli::client::call;
use crate::cli::light::record::merge;
use crate::clock::unix_ms;

/// `pyralog light sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// A node's JSON-RPC URL. On a Proof-of-Work chain, give several (`--rpc A --rpc B`): the
    /// client keeps the heaviest chain any of them shows.
    #[arg(long, required = true)]
    rpc: Vec<String>,
    /// The chain's genesis file (trusted; used when the state file does not exist yet).
    #[arg(long)]
    genesis: PathBuf,
    /// The light client's state file.
    #[arg(long, default_value = "pyralog-light.json")]
    state: PathBuf,
    /// Verify every header in turn instead of skipping (bisecting when a skip lacks trust).
    #[arg(long)]
    sequential: bool,
    /// How long a verified header stays trusted, in ms (default: two thirds of the unbonding
    /// period on a Proof-of-Stake chain, forever otherwise). Given, it replaces the state file's;
    /// absent, a state file without a period gets the default.
    #[arg(long)]
    trusting_period_ms: Option<u64>,
    /// Start from this height, trusted out of band (with `--trusted-hash`), instead of the
    /// genesis: what a client needs once the genesis is older than the trusting period.
    #[arg(long, requires = "trusted_hash")]
    trusted_height: Option<u64>,
    /// The block id (0x hex) of `--trusted-height`.
    #[arg(long, requires = "trusted_height")]
    trusted_hash: Option<String>,
}

/// A head trusted out of band: the header at `height` must hash to `hash`, and the set it
/// announces for the next height must match its `next_validators_hash`.
async fn trusted_header(
    rpc: &str,
    genesis: &TrustedHead,
    height: u64,
    hash: &str,
) -> anyhow::Result<TrustedHead> {
    let (header, _) = header_at(rpc, height).await?;
    let id = to_hex(&header.block_id().0);
    if !id.eq_ignore_ascii_case(hash.trim()) {
        bail!("header {height} hashes to {id}, not the trusted {hash}");
    }
    let next = validators_at(rpc, height + 1).await?;
    if validators_hash(&next) != header.next_validators_hash {
        bail!("the validators served for height {} do not match header {height}", height + 1);
    }
    if header.chain_id != genesis.chain_id || header.engine != genesis.engine.name() {
        bail!("header {height} is of chain {} ({}), not the genesis's", header.chain_id, header.engine);
    }
    Ok(TrustedHead {
        height,
        block_id: header.block_id(),
        time_ms: header.time_ms,
        next_validators: next,
        ..genesis.clone()
    })
}

/// A header and its finality proof at `height`, as the server says.
async fn header_at(rpc: &str, height: u64) -> anyhow::Result<(Header, FinalityProof)> {
    let header = call(rpc, "chain_getHeader", json!({ "height": height })).await?;
    let header = wire::header(&header)?;
    if header.height != height {
        bail!("asked for header {height}, got header {}", header.height);
    }
    let finality = call(rpc, "chain_getFinality", json!({ "height": height })).await?;
    Ok((header, wire::finality(&finality)?))
}

/// The validators of `height`, as the server says (checked against header hashes by the caller).
async fn validators_at(rpc: &str, height: u64) -> anyhow::Result<Vec<Validator>> {
    wire::validators(&call(rpc, "chain_getValidators", json!({ "height": height })).await?)
}

/// The set `header` announces for its next height, when it differs from its own.
async fn announced_next(rpc: &str, header: &Header) -> anyhow::Result<Option<Vec<Validator>>> {
    Ok(match header.next_validators_hash == header.validators_hash {
        true => None,
        false => Some(validators_at(rpc, header.height + 1).await?),
    })
}

/// One step from the trusted head to `height`: adjacent when it is next, else skipping.
async fn step(
    rpc: &str,
    trusted: &TrustedHead,
    height: u64,
) -> anyhow::Result<Result<TrustedHead, ChainLightError>> {
    let (header, proof) = header_at(rpc, height).await?;
    let next = announced_next(rpc, &header).await?;
    if height == trusted.height + 1 {
        return Ok(verify_adjacent(trusted, &header, &proof, next.as_deref(), unix_ms()));
    }
    let validators = match header.validators_hash == validators_hash(&trusted.next_validators) {
        true => trusted.next_validators.clone(),
        false => validators_at(rpc, height).await?,
    };
    Ok(verify_skipping(trusted, &header, &proof, &validators, next.as_deref(), unix_ms()))
}

/// Runs `pyralog light sync`.
pub(super) async fn sync(args: &SyncArgs) -> anyhow::Result<Value> {
    let genesis = GenesisFile::load(&args.genesis)?;
    if let Some(rules) = genesis.pow_rules()? {
        return sync_work(args, &genesis, rules).await;
    }
    let rpc = &args.rpc[0];
    // On a staking chain trust must end before stake can unbond: a period is required (the
    // default when none is given, also for a state file written before periods existed).
    let period = args.trusting_period_ms.or(genesis.default_trusting_period_ms());
    if let (Some(period), Some(params)) = (period, genesis.staking_params())
        && period >= params.unbonding_time_ms
    {
        bail!(
            "a trusting period of {period} ms is not shorter than the unbonding period ({} ms): validators could unbond and sign anything while still trusted",
            params.unbonding_time_ms
        );
    }
    if genesis.consensus.proof_of_stake()
        && genesis.genesis_time_ms.is_none()
        && args.trusted_height.is_none()
    {
        bail!(
            "the genesis has no genesisTimeMs, so trust in it cannot be timed: start from a header trusted out of band (--trusted-height, --trusted-hash)"
        );
    }
    let mut state = match LightState::load(&args.state)? {
        Some(mut state) => {
            if period.is_some()
                && (args.trusting_period_ms.is_some() || state.head.trusting_period_ms.is_none())
            {
                state.head.trusting_period_ms = period;
            }
            state
        }
        None => {
            let from_genesis = TrustedHead::genesis(
                &genesis.chain_id,
                genesis.consensus.engine(),
                &genesis.validator_set()?,
            )
            .with_trusting_period(genesis.genesis_time_ms.unwrap_or(0), period);
            let head = match (args.trusted_height, &args.trusted_hash) {
                (Some(height), Some(hash)) => trusted_header(rpc, &from_genesis, height, hash).await?,
                _ => from_genesis,
            };
            LightState { head, anchors: BTreeMap::new(), seals: None }
        }
    };
    if state.head.chain_id != genesis.chain_id {
        bail!(
            "the state file follows chain {:?}, the genesis is {:?}",
            state.head.chain_id,
            genesis.chain_id
        );
    }
    if state.head.engine != genesis.consensus.engine() {
        bail!(
            "the state file follows a {} chain, the genesis names {}",
            state.head.engine,
            genesis.consensus.engine()
        );
    }
    if state.head.engine == Engine::CometBft {
        return sync_comet(rpc, state, &args.state).await;
    }
    let from = state.head.height;
    let head = call(rpc, "chain_getFinalizedHead", json!({})).await?;
    let target = u64_field(&head["height"], "height")?;
    let mut steps = 0;
    if args.sequential {
        for height in from + 1..=target {
            state.head = step(rpc, &state.head, height).await?.with_context(|| format!("header {height}"))?;
            steps += 1;
        }
    } else {
        // Skip to the target; where the trusted set's overlap is too small, bisect (CometBFT's
        // light client does the same).
        let mut goal = target;
        while state.head.height < target {
            steps += 1;
            match step(rpc, &state.head, goal).await? {
                Ok(next) => {
                    state.head = next;
                    goal = target;
                }
                Err(ChainLightError::NotEnoughTrust { .. }) if goal > state.head.height + 1 => {
                    goal = state.head.height + (goal - state.head.height) / 2;
                }
                Err(err) => return Err(anyhow::Error::new(err).context(format!("header {goal}"))),
            }
        }
    }
    state.save(&args.state)?;
    Ok(json!({
        "synced": true,
        "chainId": state.head.chain_id,
        "from": from,
        "height": state.head.height,
        "blockId": to_hex(&state.head.block_id.0),
        "mode": if args.sequential { "sequential" } else { "skipping" },
        "steps": steps,
        "validators": state.head.next_validators.len(),
    }))
}

/// `pyralog light sync` on a Proof-of-Work chain: each server's seals are offered to the
/// client's chain of seals ([`SealChain::offer`]: every seal checked, the heaviest chain kept).
async fn sync_work(args: &SyncArgs, genesis: &GenesisFile, rules: PowRules) -> anyhow::Result<Value> {
    let mut state = match LightState::load(&args.state)? {
        Some(state) => state,
        None => LightState {
            head: TrustedHead::genesis(&genesis.chain_id, Engine::Pow, &genesis.validator_set()?),
            anchors: BTreeMap::new(),
            seals: None,
        },
    };
    if state.head.chain_id != genesis.chain_id || state.head.engine != Engine::Pow {
        bail!(
            "the state file follows a {} chain {:?}, not this genesis",
            state.head.engine,
            state.head.chain_id
        );
    }
    let chain = state.seals.get_or_insert_with(|| SealChain::genesis(rules));
    if chain.rules != rules {
        bail!("the state file follows other work rules than the genesis names");
    }
    let from = chain.height();
    let mut servers = Vec::new();
    for rpc in &args.rpc {
        match offer_server(rpc, chain).await {
            Ok(adopted) => servers.push(json!({ "rpc": rpc, "adopted": adopted })),
            Err(err) => servers.push(json!({ "rpc": rpc, "refused": format!("{err:#}") })),
        }
    }
    if servers.iter().all(|s| s["refused"].is_string()) {
        bail!("no server's seals verified: {}", Value::Array(servers));
    }
    // Every server had its say: what is k deep in the heaviest chain is final from now on.
    chain.settle();
    let (height, confirmations) = (chain.height(), chain.rules.confirmations);
    state.save(&args.state)?;
    Ok(json!({
        "synced": true,
        "chainId": genesis.chain_id,
        "engine": "pow",
        "from": from,
        "height": height,
        "finalHeight": height.saturating_sub(confirmations),
        "confirmations": confirmations,
        "servers": servers,
    }))
}

/// Offers `rpc`'s seals from `k` below the client's tip (a server on another branch forks
/// there at the deepest); whether its chain was heavier and is now the client's.
async fn offer_server(rpc: &str, chain: &mut SealChain) -> anyhow::Result<bool> {
    let mut from = chain.height().saturating_sub(chain.rules.confirmations) + 1;
    let mut seals = Vec::new();
    loop {
        let page = wire::seals(&call(rpc, "chain_getSeals", json!({ "from": from })).await?)?;
        let full = page.len() == MAX_SEALS as usize;
        from += page.len() as u64;
        seals.extend(page);
        if !full {
            break;
        }
    }
    // What the client already holds is not checked again.
    let Some(fork) = seals.iter().position(|s| chain.seal_at(s.height) != Some(s)) else { return Ok(false) };
    Ok(chain.offer(&seals[fork..], unix_ms())?)
}

/// `verify-record --finality`'s inputs.
pub(super) struct FinalityArgs<'a> {
    /// The server.
    pub(super) rpc: &'a str,
    /// The state file.
    pub(super) state: &'a Path,
    /// The cluster holding the log (default: the server's own).
    pub(super) cluster: Option<&'a str>,
    /// The log.
    pub(super) log: &'a str,
    /// The partition.
    pub(super) partition: u32,
    /// The offset.
    pub(super) offset: u64,
}

/// Runs `pyralog light verify-record --finality`.
pub(super) async fn verify_record_finality(args: FinalityArgs<'_>) -> anyhow::Result<Value> {
    let mut state = LightState::load(args.state)?.with_context(|| {
        format!("no light state at {} (run `pyralog light sync` first)", args.state.display())
    })?;
    let cluster = match args.cluster {
        Some(cluster) => cluster.to_owned(),
        None => {
            let status = call(args.rpc, "system_status", json!({})).await?;
            status["cluster"].as_str().context("system_status.cluster")?.to_owned()
        }
    };
    let query = RecordQuery {
        cluster: ClusterId::new(cluster.clone())?,
        log: LogName::new(args.log.to_owned())?,
        partition: args.partition,
        offset: args.offset,
    };
    let slot = format!("{cluster}/{}/{}", args.log, args.partition);
    let trusted = state.anchored(&slot)?;
    let mut params = json!({
        "log": args.log, "partition": args.partition, "offset": args.offset,
        "cluster": cluster, "finality": true,
    });
    if let Some(old) = &trusted {
        params["trustedSize"] = json!(old.size);
    }
    let answer = call(args.rpc, "log_getProof", params).await?;
    let consistency = match &answer["consistency"] {
        Value::Null => None,
        c => Some(wire::consistency(c)?),
    };
    if state.head.engine == Engine::CometBft {
        let comet = CometRecord { query, slot, trusted, consistency, answer };
        return verify_record_comet(&args, state, comet).await;
    }
    let evidence: FinalityEvidence = wire::finality_evidence(&answer)?;
    let anchored = match &state.seals {
        Some(seals) => verify_finality_work(
            seals,
            &state.head.chain_id,
            &query,
            &evidence,
            trusted.as_ref(),
            consistency.as_ref(),
        )?,
        None => verify_finality(
            &state.head,
            &query,
            &evidence,
            trusted.as_ref(),
            consistency.as_ref(),
            unix_ms(),
        )?,
    };
    let proven = proven_record(args.offset, &evidence.record, &answer["record"])?;
    if state.keep_newer_anchor(slot, &anchored)? {
        state.save(args.state)?;
    }
    let header = &evidence.header;
    let finality = json!({
        "height": header.height,
        "blockId": to_hex(&header.block_id().0),
        "stateRoot": to_hex(&header.state_root.0),
        "engine": evidence.finality.engine().name(),
        "signatures": evidence.finality.signers().len(),
        "anchoredSize": anchored.size,
        "anchoredRoot": to_hex(&anchored.root.0),
        "trustedHeight": state.seals.as_ref().map_or(state.head.height, SealChain::height),
    });
    Ok(record_report(&args, &cluster, finality, trusted.map(|old| old.size), &proven))
}

/// What `verify-record --finality` prints once everything holds: the record's place, the
/// finality path (`finality`), the anchored size it extended, and the fields proven.
fn record_report(
    args: &FinalityArgs<'_>,
    cluster: &str,
    finality: Value,
    extends: Option<u64>,
    proven: &pyralog_cluster::model::StoredRecord,
) -> Value {
    let mut report = json!({
        "verified": true,
        "finality": finality,
        "cluster": cluster,
        "log": args.log,
        "partition": args.partition,
        "offset": args.offset,
        "extendsTrusted": extends,
    });
    merge(&mut report, proven_fields(proven));
    report
}

/// CometBFT's light block at the server's finalized head, verified from the genesis
/// validators; returns its height, app hash and validator count.
async fn comet_head(rpc: &str, head: &TrustedHead) -> anyhow::Result<(u64, [u8; 32], usize)> {
    let trust = CometTrust::from_head(head)?;
    let answer = call(rpc, "chain_getCometLightBlock", json!({})).await?;
    let height = u64_field(&answer["height"], "height")?;
    let (signed, validators) = parse_light_block(&answer)?;
    let app_hash = verify_header(&trust, height, &signed, &validators, unix_ms())?;
    Ok((height, app_hash, validators.validators().len()))
}

/// `pyralog light sync` on a chain run behind CometBFT: the server's latest CometBFT header is
/// verified from the genesis validators (each `verify-record --finality` verifies its own header
/// the same way; the state file keeps the genesis trust and the anchors seen).
async fn sync_comet(rpc: &str, state: LightState, path: &Path) -> anyhow::Result<Value> {
    let (height, app_hash, validators) = comet_head(rpc, &state.head).await?;
    state.save(path)?;
    Ok(json!({
        "synced": true,
        "engine": "cometbft",
        "chainId": state.head.chain_id,
        "height": height,
        "appHash": to_hex(&app_hash),
        "validators": validators,
    }))
}

/// What `verify-record --finality` fetched, for a chain run behind CometBFT.
struct CometRecord {
    query: RecordQuery,
    slot: String,
    trusted: Option<pyralog_crypto::Checkpoint>,
    consistency: Option<pyralog_crypto::merkle::ConsistencyProof<pyralog_crypto::merkle::Blake3Merkle>>,
    answer: Value,
}

/// `verify-record --finality` on a chain run behind CometBFT: the record under the `app_hash` of
/// CometBFT's header at the served height, that header verified from the genesis validators.
async fn verify_record_comet(
    args: &FinalityArgs<'_>,
    mut state: LightState,
    comet: CometRecord,
) -> anyhow::Result<Value> {
    let CometRecord { query, slot, trusted, consistency, answer } = comet;
    let evidence: CometEvidence =
        postcard::from_bytes(&wire::unhex(&answer["finality"]["evidence"], "finality.evidence")?)
            .context("undecodable CometBFT finality evidence")?;
    let trust = CometTrust::from_head(&state.head)?;
    let light = call(args.rpc, "chain_getCometLightBlock", json!({ "height": evidence.height })).await?;
    let (signed, validators) = parse_light_block(&light)?;
    let anchored = verify_finality_comet(
        &trust,
        &signed,
        &validators,
        &query,
        &evidence,
        trusted.as_ref(),
        consistency.as_ref(),
        unix_ms(),
    )?;
    let proven = proven_record(args.offset, &evidence.record, &answer["record"])?;
    if state.keep_newer_anchor(slot, &anchored)? {
        state.save(args.state)?;
    }
    let finality = json!({
        "height": evidence.height,
        "engine": "cometbft",
        "appHash": to_hex(signed.header.app_hash.as_bytes()),
        "cometBlockHash": signed.header.hash().to_string(),
        "signatures": signed.commit.signatures.iter().filter(|s| s.is_commit()).count(),
        "anchoredSize": anchored.size,
        "anchoredRoot": to_hex(&anchored.root.0),
    });
    let cluster = query.cluster.to_string();
    Ok(record_report(args, &cluster, finality, trusted.map(|old| old.size), &proven))
}
