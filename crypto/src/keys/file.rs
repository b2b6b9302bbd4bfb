//! Key files: JSON like CometBFT's `priv_validator_key.json`, readable by the owner only.
//!
//! ```json
//! {"type": "pyralog/ed25519", "public_key": "pyrpub1...", "secret_key": "0x<64 hex digits>"}
//! ```
//!
//! Files are created with mode 0600 atomically (written to a temporary file, synced, then linked
//! into place), and a file that group or others can read is refused on load, as `ssh` does.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Keypair, PublicKey};

/// The `type` field of a key file.
pub const KEY_FILE_TYPE: &str = "pyralog/ed25519";

/// Key files are a few hundred bytes; anything larger is not one.
const MAX_KEY_FILE_LEN: u64 = 4096;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileContents {
    #[serde(rename = "type")]
    kind: String,
    public_key: String,
    secret_key: Zeroizing<String>,
}

/// Why a key file could not be written or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing would replace an existing key.
    #[error("{path} already exists; refusing to overwrite a key (move it away first)")]
    AlreadyExists {
        /// The key file.
        path: PathBuf,
    },
    /// Group or others may read the file, so the secret may have leaked.
    #[error(
        "{path} is readable by others (mode {mode:04o}); a key file must be private: run `chmod 600 {path}`"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a Pyralog key file.
    #[error("{path} is not a Pyralog key file: {reason}")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The stated public key does not belong to the secret key: the file was edited or damaged.
    #[error("{path}: the public key does not match the secret key (file edited or damaged)")]
    PublicKeyMismatch {
        /// The key file.
        path: PathBuf,
    },
}

/// Writes `keypair` to a new file at `path` with mode 0600. Refuses to replace an existing file.
pub fn write_key_file(path: &Path, keypair: &Keypair) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_owned(), source };
    if path.exists() {
        return Err(KeyFileError::AlreadyExists { path: path.to_owned() });
    }
    let contents = KeyFileContents {
        kind: KEY_FILE_TYPE.to_owned(),
        public_key: keypair.public().to_string(),
        secret_key: Zeroizing::new(format!("0x{}", hex::encode(*keypair.secret()))),
    };
    let mut text = Zeroizing::new(serde_json::to_string_pretty(&contents).expect("plain strings serialize"));
    text.push('\n');
    if path.file_name().is_none() {
        return Err(KeyFileError::Malformed {
            path: path.to_owned(),
            reason: "the path has no file name".into(),
        });
    }
    write_private_file(path, text.as_bytes()).map_err(|err| match err.kind() {
        std::io::ErrorKind::AlreadyExists => KeyFileError::AlreadyExists { path: path.to_owned() },
        _ => io(err),
    })
}

/// Writes `bytes` to a new file at `path`, readable by the owner only (mode 0600) from the
/// start: written to a temporary file, synced, then linked into place, and the directory entry
/// synced. Refuses to replace an existing file (`ErrorKind::AlreadyExists`). For any secret a
/// node keeps on disk.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let mut temp_name = file_name.to_owned();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = dir.join(temp_name);

    let written = (|| {
        let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    // A hard link fails if `path` appeared meanwhile, so an existing file is never replaced.
    let linked = written.and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    linked?;
    // Make the new directory entry durable too.
    fs::File::open(dir).and_then(|d| d.sync_all())
}

/// Reads a secret file of at most `max_len` bytes, refusing one that group or others may read
/// (as `ssh` does): a secret that has been readable may have leaked, and the operator should
/// know. For any secret a node keeps on disk (the node key, tunnel keys).
pub fn read_private_file(path: &Path, max_len: u64) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_owned(), source };
    let mut file = fs::File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::InsecurePermissions { path: path.to_owned(), mode });
    }
    if !metadata.is_file() || metadata.len() > max_len {
        return Err(KeyFileError::Malformed {
            path: path.to_owned(),
            reason: format!("not a regular file of at most {max_len} bytes"),
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(metadata.len() as usize));
    file.read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Loads a key file written by [`write_key_file`], refusing files readable by group or others.
pub fn load_key_file(path: &Path) -> Result<Keypair, KeyFileError> {
    let malformed =
        |reason: &str| KeyFileError::Malformed { path: path.to_owned(), reason: reason.to_owned() };

    let bytes = read_private_file(path, MAX_KEY_FILE_LEN)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| malformed("not UTF-8 text"))?;
    let contents: KeyFileContents =
        serde_json::from_str(text).map_err(|err| malformed(&format!("invalid JSON: {err}")))?;
    if contents.kind != KEY_FILE_TYPE {
        return Err(malformed(&format!("type is {:?}, expected {KEY_FILE_TYPE:?}", contents.kind)));
    }
    let hex_digits = contents.secret_key.strip_prefix("0x").unwrap_or(&contents.secret_key);
    let mut secret = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_digits, &mut *secret)
        .map_err(|_| malformed("secret_key is not 64 hex digits"))?;
    let keypair = Keypair::from_secret(&secret);
    let stated: PublicKey =
        contents.public_key.parse().map_err(|err| malformed(&format!("public_key: {err}")))?;
    if stated != keypair.public() {
        return Err(KeyFileError::PublicKeyMismatch { path: path.to_owned() });
    }
    Ok(keypair)
}
