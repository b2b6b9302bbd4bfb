//! `pyralog cometbft-home`: what a CometBFT v0.38 node needs to run a Pyralog chain whose
//! genesis names `"engine": "cometbft"`, written into its home (made by `cometbft init`):
//!
//! - `config/genesis.json`: the chain id, the genesis time, the genesis validators with their
//!   CometBFT addresses, and the Pyralog genesis file itself as `app_state` (the app's
//!   `InitChain` checks that the two agree);
//! - `config/priv_validator_key.json`: this node's ed25519 key, so CometBFT signs with the key
//!   the chain knows as this validator (the file holds the secret: mode 0600);
//! - `data/priv_validator_state.json`, when absent: nothing signed yet.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use pyralog_chain::genesis::GenesisFile;
use pyralog_config::{BasePath, Config};
use pyralog_crypto::PublicKey;
use pyralog_crypto::keys::load_key_file;
use serde_json::{Value, json};

/// `pyralog cometbft-home`.
#[derive(Debug, clap::Args)]
pub(crate) struct CometbftHomeArgs {
    /// The node's base path (its config.toml, node.key and genesis).
    #[arg(long)]
    base_path: PathBuf,
    /// CometBFT's home directory (`cometbft init --home <dir>` first).
    #[arg(long)]
    home: PathBuf,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn comet_key(key: &PublicKey) -> Value {
    json!({ "type": "tendermint/PubKeyEd25519", "value": b64(key.as_bytes()) })
}

fn comet_address(key: &PublicKey) -> String {
    hex::encode_upper(pyralog_abci::address::address(key))
}

/// CometBFT's genesis document for `genesis`.
pub(crate) fn comet_genesis(genesis: &GenesisFile) -> anyhow::Result<Value> {
    let time_ms =
        genesis.genesis_time_ms.context("the genesis file needs genesisTimeMs (CometBFT's genesis_time)")?;
    let validators: Vec<Value> = genesis
        .validators
        .iter()
        .map(|v| {
            json!({
                "address": comet_address(&v.public_key),
                "pub_key": comet_key(&v.public_key),
                "power": v.power.to_string(),
                "name": v.public_key.to_string(),
            })
        })
        .collect();
    Ok(json!({
        "genesis_time": rfc3339(time_ms),
        "chain_id": genesis.chain_id,
        "initial_height": "1",
        "validators": validators,
        "app_hash": "",
        "app_state": serde_json::to_value(genesis)?,
    }))
}

/// Writes CometBFT's genesis and validator key for the node at `args.base_path`.
pub(crate) fn home(args: CometbftHomeArgs) -> anyhow::Result<()> {
    let base = BasePath(args.base_path);
    let config = Config::load(&base.config())?;
    let section = config.chain.as_ref().context("the node's config.toml has no [chain] section")?;
    let genesis = GenesisFile::load(&base.genesis(section))?;
    if genesis.consensus.engine() != pyralog_consensus::Engine::CometBft {
        anyhow::bail!("the genesis runs {}, not cometbft", genesis.consensus.engine());
    }
    let key = load_key_file(&base.key())?;
    let write = |path: &Path, value: &Value| -> anyhow::Result<()> {
        std::fs::create_dir_all(path.parent().context("a path in the home")?)?;
        std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write(&args.home.join("config/genesis.json"), &comet_genesis(&genesis)?)?;
    let secret = key.secret();
    let private = [secret.as_slice(), key.public().as_bytes()].concat();
    let key_path = args.home.join("config/priv_validator_key.json");
    write(
        &key_path,
        &json!({
            "address": comet_address(&key.public()),
            "pub_key": comet_key(&key.public()),
            "priv_key": { "type": "tendermint/PrivKeyEd25519", "value": b64(&private) },
        }),
    )?;
    restrict(&key_path)?;
    let state = args.home.join("data/priv_validator_state.json");
    if !state.exists() {
        write(&state, &json!({ "height": "0", "round": 0, "step": 0 }))?;
    }
    println!("{}", json!({ "address": comet_address(&key.public()), "home": args.home }));
    Ok(())
}

fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))
}

/// `ms` since the Unix epoch as RFC 3339 in UTC (CometBFT's genesis time format).
fn rfc3339(ms: u64) -> String {
    let (days, rest) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Howard Hinnant's days-to-civil, from 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}000000Z")
}
