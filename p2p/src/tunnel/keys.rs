//! Tunnel keys: WireGuard's x25519 static keys (base64, as `wg` prints them), the overlay
//! address each key owns, and Rosenpass static keys (Classic McEliece 460896 from liboqs; raw
//! files, the format the `rosenpass` binary reads and writes).

use std::net::Ipv4Addr;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use boringtun::x25519;
use rand_core::{OsRng, RngCore};
use rosenpass::pqkem::{KEM, StaticKEM};

use super::TunnelError;

/// A WireGuard static private key.
#[derive(Clone)]
pub struct WireGuardSecret(x25519::StaticSecret);

impl std::fmt::Debug for WireGuardSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WireGuardSecret({})", self.public())
    }
}

impl WireGuardSecret {
    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        WireGuardSecret(x25519::StaticSecret::from(bytes))
    }

    /// The key as 32 bytes (clamping happens on use, as in WireGuard).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        WireGuardSecret(x25519::StaticSecret::from(bytes))
    }

    /// Reads a key file holding the base64 form (`wg genkey > file`), refusing one that group
    /// or others may read, as the node key is.
    pub fn load(path: &Path) -> Result<Self, TunnelError> {
        let bytes = pyralog_crypto::keys::read_private_file(path, MAX_WIREGUARD_KEY_FILE_LEN)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            TunnelError::BadKey(format!("WireGuard private key {}: not text", path.display()))
        })?;
        Self::from_base64(text).map_err(|err| match err {
            TunnelError::BadKey(reason) => TunnelError::BadKey(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// Parses the base64 form `wg genkey` prints.
    pub fn from_base64(text: &str) -> Result<Self, TunnelError> {
        Ok(Self::from_bytes(decode_key(text, "WireGuard private key")?))
    }

    /// The base64 form, as `wg` reads it.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public(&self) -> WireGuardPublic {
        WireGuardPublic(x25519::PublicKey::from(&self.0).to_bytes())
    }

    pub(crate) fn x25519(&self) -> &x25519::StaticSecret {
        &self.0
    }
}

/// A WireGuard static public key: the peer's identity on a tunnel.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WireGuardPublic(pub [u8; 32]);

impl std::fmt::Debug for WireGuardPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WireGuardPublic({self})")
    }
}

impl std::fmt::Display for WireGuardPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&BASE64.encode(self.0))
    }
}

impl std::str::FromStr for WireGuardPublic {
    type Err = TunnelError;

    fn from_str(text: &str) -> Result<Self, TunnelError> {
        Ok(WireGuardPublic(decode_key(text, "WireGuard public key")?))
    }
}

impl WireGuardPublic {
    /// The overlay address this key owns: `10.x.y.z` from a BLAKE3 hash of the key. Inner
    /// packets from a peer must carry its address as their source (WireGuard's allowed-ips).
    pub fn overlay_ipv4(&self) -> Ipv4Addr {
        let digest =
            blake3::Hasher::new_derive_key("pyralog tunnel overlay address v1").update(&self.0).finalize();
        let [a, b, c, ..] = *digest.as_bytes();
        // 10.0.0.0 and 10.255.255.255 are the /8's network and broadcast addresses.
        let host = (u32::from_be_bytes([0, a, b, c]) % 0x00ff_fffe) + 1;
        let [_, a, b, c] = host.to_be_bytes();
        Ipv4Addr::new(10, a, b, c)
    }

    pub(crate) fn x25519(&self) -> x25519::PublicKey {
        x25519::PublicKey::from(self.0)
    }
}

fn decode_key(text: &str, what: &str) -> Result<[u8; 32], TunnelError> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|err| TunnelError::BadKey(format!("{what}: not base64: {err}")))?;
    bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| TunnelError::BadKey(format!("{what}: {} bytes, expected 32", bytes.len())))
}

/// A WireGuard key file is 44 base64 characters and a newline; anything far larger is not one.
const MAX_WIREGUARD_KEY_FILE_LEN: u64 = 1024;

/// Length of a Rosenpass static public key (Classic McEliece 460896): 524,160 bytes.
pub const ROSENPASS_PUBLIC_KEY_LEN: usize = StaticKEM::PK_LEN;
/// Length of a Rosenpass static secret key: 13,568 bytes.
pub const ROSENPASS_SECRET_KEY_LEN: usize = StaticKEM::SK_LEN;

/// A Rosenpass static keypair.
#[derive(Clone)]
pub struct RosenpassKeys {
    /// The secret key, [`ROSENPASS_SECRET_KEY_LEN`] bytes.
    pub secret: Vec<u8>,
    /// The public key, [`ROSENPASS_PUBLIC_KEY_LEN`] bytes.
    pub public: Vec<u8>,
}

impl std::fmt::Debug for RosenpassKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RosenpassKeys(public {})", blake3::hash(&self.public).to_hex())
    }
}

impl RosenpassKeys {
    /// A new keypair (McEliece key generation: tens of milliseconds).
    pub fn generate() -> Result<Self, TunnelError> {
        super::rosenpass::on_big_stack(|| {
            rosenpass::sodium::sodium_init().map_err(|err| TunnelError::Rosenpass(err.to_string()))?;
            let mut secret = vec![0u8; ROSENPASS_SECRET_KEY_LEN];
            let mut public = vec![0u8; ROSENPASS_PUBLIC_KEY_LEN];
            StaticKEM::keygen(&mut secret, &mut public)
                .map_err(|err| TunnelError::Rosenpass(err.to_string()))?;
            Ok(RosenpassKeys { secret, public })
        })
    }

    /// Writes the secret key to a new file at `secret_path` (mode 0600, as the node key is
    /// written; an existing secret is never replaced) and the public key to `public_path`, as
    /// raw bytes (`rosenpass gen-keys` writes the same).
    pub fn save(&self, secret_path: &Path, public_path: &Path) -> Result<(), TunnelError> {
        let io = |path: &Path, err: std::io::Error| TunnelError::Io(format!("{}: {err}", path.display()));
        pyralog_crypto::keys::write_private_file(secret_path, &self.secret)
            .map_err(|err| io(secret_path, err))?;
        std::fs::write(public_path, &self.public).map_err(|err| io(public_path, err))
    }

    /// Reads a keypair written by [`RosenpassKeys::save`] or `rosenpass gen-keys`, refusing a
    /// secret key file that group or others may read.
    pub fn load(secret_path: &Path, public_path: &Path) -> Result<Self, TunnelError> {
        let secret = pyralog_crypto::keys::read_private_file(secret_path, ROSENPASS_SECRET_KEY_LEN as u64)?;
        check_len(secret_path, secret.len(), ROSENPASS_SECRET_KEY_LEN, "Rosenpass secret key")?;
        let secret = secret.to_vec();
        let public = read_rosenpass_public(public_path)?;
        Ok(RosenpassKeys { secret, public })
    }
}

/// Reads a Rosenpass public key file, checking its length.
pub fn read_rosenpass_public(path: &Path) -> Result<Vec<u8>, TunnelError> {
    let bytes = std::fs::read(path).map_err(|err| TunnelError::Io(format!("{}: {err}", path.display())))?;
    check_len(path, bytes.len(), ROSENPASS_PUBLIC_KEY_LEN, "Rosenpass public key")?;
    Ok(bytes)
}

fn check_len(path: &Path, actual: usize, expected: usize, what: &str) -> Result<(), TunnelError> {
    if actual != expected {
        return Err(TunnelError::BadKey(format!(
            "{what} {}: {actual} bytes, expected {expected}",
            path.display()
        )));
    }
    Ok(())
}
