//! `pyralog keys`: generate and inspect key files.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use pyralog_crypto::Keypair;
use pyralog_crypto::keys::{load_key_file, write_key_file};

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a new ed25519 key file (mode 0600); prints its public key.
    Generate {
        /// Where to write the key file. An existing file is never overwritten.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Print the public key of a key file.
    Show {
        /// The key file.
        file: PathBuf,
        /// Print JSON (`{"public_key": ..., "type": ...}`) instead of the bare key.
        #[arg(long)]
        json: bool,
    },
    /// Print a signed Kafka session claim as librdkafka's `sasl.oauthbearer.config` (use with
    /// `security.protocol=SASL_PLAINTEXT`, `sasl.mechanisms=OAUTHBEARER` and
    /// `enable.sasl.oauthbearer.unsecure.jwt=true`): a log's access control then sees this key.
    /// Valid for 5 minutes, on any number of connections.
    KafkaAuth {
        /// The key file.
        file: PathBuf,
    },
}

/// Runs a key subcommand.
pub(crate) fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { out } => {
            let keypair = Keypair::generate();
            write_key_file(&out, &keypair).context("cannot write key file")?;
            println!("{}", keypair.public());
            eprintln!("wrote {} (mode 0600); keep it secret and backed up", out.display());
        }
        KeysCommand::Show { file, json } => {
            let keypair = load_key_file(&file).context("cannot load key file")?;
            if json {
                let shown = serde_json::json!({
                    "type": pyralog_crypto::keys::KEY_FILE_TYPE,
                    "public_key": keypair.public().to_string(),
                });
                println!("{shown}");
            } else {
                println!("{}", keypair.public());
            }
        }
        KeysCommand::KafkaAuth { file } => {
            let keypair = load_key_file(&file).context("cannot load key file")?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            let (timestamp_ms, nonce) = (now.as_millis() as u64, now.as_nanos() as u64);
            println!("{}", pyralog_rpc_params::auth::kafka_sasl_config(&keypair, timestamp_ms, nonce));
        }
    }
    Ok(())
}
