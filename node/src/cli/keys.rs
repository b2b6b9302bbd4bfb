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
    }
    Ok(())
}
