//! Ed25519 identities: key pairs, public keys with a checksummed text encoding, signatures, and
//! key files.
//!
//! **Public key text encoding** (stable; part of config files, RPC and trust files): the 32-byte
//! ed25519 public key encoded as [Bech32m](https://github.com/bitcoin/bips/blob/master/bip-0350.mediawiki)
//! with human-readable part `pyrpub`, lowercase, e.g. `pyrpub1…` (65 characters). The checksum
//! catches typos; the prefix says what the string is. Parsing also refuses points that are not on
//! the curve and small-order ("weak") keys.

mod file;

pub use file::{
    KEY_FILE_TYPE, KeyFileError, load_key_file, read_private_file, write_key_file, write_private_file,
};

use std::fmt;
use std::str::FromStr;

use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Hrp};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// Human-readable part of the public key text encoding.
pub const PUBLIC_KEY_HRP: &str = "pyrpub";

/// An ed25519 signing key with its public key. The secret is wiped from memory on drop.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        Keypair { signing: SigningKey::generate(&mut rand_core::OsRng) }
    }

    /// The key pair of a 32-byte secret seed.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        Keypair { signing: SigningKey::from_bytes(secret) }
    }

    /// The 32-byte secret seed (wiped when dropped).
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs `message` (callers prepend their own context, see [`crate::quorum::Signable`]).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message))
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair").field("public", &self.public()).finish_non_exhaustive()
    }
}

/// An ed25519 public key: a node, replica or validator identity.
///
/// Holds the 32 compressed bytes, checked at construction to be a valid point of large order.
/// Verifying decompresses the point; hot paths keep a decompressed key (see [`crate::MemberSet`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses 32 raw bytes, refusing invalid and small-order points.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyParseError> {
        decompress(bytes)?;
        Ok(PublicKey(*bytes))
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks `signature` over `message` (strict: rejects malleable and non-canonical signatures).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), InvalidSignature> {
        verify_with(&self.verifying_key(), message, signature)
    }

    /// The decompressed key.
    pub(crate) fn verifying_key(&self) -> VerifyingKey {
        decompress(&self.0).expect("checked to be a valid point when constructed")
    }
}

/// Most decompressed keys [`decompress`] remembers; past it, it starts over.
const DECOMPRESSED_KEYS: usize = 4096;

/// Keys decompressed and checked lately, by their bytes. The same few validator and replica
/// keys arrive in every vote, certificate and proof a node decodes and verifies, and each
/// decompression is a field exponentiation (about a third of a signature check). Only keys that
/// passed the checks are kept, and the bytes determine the point, so a hit answers exactly what
/// the checks would.
static DECOMPRESSED: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<[u8; 32], VerifyingKey>>,
> = std::sync::LazyLock::new(Default::default);

/// The point `bytes` encode, if it is on the curve and not of small order.
fn decompress(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyParseError> {
    let cache = || DECOMPRESSED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(key) = cache().get(bytes) {
        return Ok(*key);
    }
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyParseError::NotOnCurve)?;
    if key.is_weak() {
        return Err(KeyParseError::WeakKey);
    }
    let mut cache = cache();
    if cache.len() >= DECOMPRESSED_KEYS {
        cache.clear();
    }
    cache.insert(*bytes, key);
    Ok(key)
}

/// Strict verification with an already decompressed key.
pub(crate) fn verify_with(
    key: &VerifyingKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), InvalidSignature> {
    key.verify_strict(message, &signature.0).map_err(|_| InvalidSignature)
}

/// Checks that `signatures[i]` by `keys[i]` verifies over `message`, for every `i`; on failure,
/// the index of the first signature that does not.
///
/// Several signatures are checked together with ed25519-dalek's batch verification (one
/// multiscalar multiplication instead of one double-scalar multiplication per signature, with
/// random weights drawn from a transcript of all inputs, so the outcome is deterministic). Only
/// when the batch fails is each signature checked strictly, to name the bad one, and that strict
/// check decides. What a passing batch proves: every signature satisfies the verification
/// equation, up to a chance of 2^-128 for a signature that does not. The batch does not apply
/// `verify_strict`'s encoding rules (canonical `R`, `R` not of small order) and can miss a
/// discrepancy of small order; only the signing key's holder can make such signatures, so a
/// passing batch still proves that every key signed the message.
pub(crate) fn verify_all(
    keys: &[VerifyingKey],
    message: &[u8],
    signatures: &[Signature],
) -> Result<(), usize> {
    if signatures.len() >= 2 {
        let messages = vec![message; signatures.len()];
        let raw: Vec<ed25519_dalek::Signature> = signatures.iter().map(|s| s.0).collect();
        if ed25519_dalek::verify_batch(&messages, &raw, keys).is_ok() {
            return Ok(());
        }
    }
    match keys.iter().zip(signatures).position(|(key, sig)| verify_with(key, message, sig).is_err()) {
        Some(bad) => Err(bad),
        None => Ok(()),
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(PUBLIC_KEY_HRP);
        let text = bech32::encode::<Bech32m>(hrp, self.as_bytes()).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let checked = CheckedHrpstring::new::<Bech32m>(text)
            .map_err(|err| KeyParseError::NotBech32m(err.to_string()))?;
        if checked.hrp().as_str() != PUBLIC_KEY_HRP {
            return Err(KeyParseError::WrongPrefix(checked.hrp().to_string()));
        }
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let bytes: [u8; 32] =
            bytes.as_slice().try_into().map_err(|_| KeyParseError::WrongLength(bytes.len()))?;
        PublicKey::from_bytes(&bytes)
    }
}

/// Bech32m (`pyrpub1...`) in human-readable formats; the 32-byte ed25519 key in binary ones
/// (postcard), refused unless it is a valid curve point.
impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            crate::fixed_bytes::serialize(self.as_bytes(), serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
        } else {
            let bytes: [u8; 32] = crate::fixed_bytes::deserialize(deserializer)?;
            PublicKey::from_bytes(&bytes).map_err(serde::de::Error::custom)
        }
    }
}

/// Why a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyParseError {
    /// Not valid Bech32m (bad characters, mixed case, bad checksum, ...).
    #[error("not a Bech32m public key: {0}")]
    NotBech32m(String),
    /// Valid Bech32m, but for something other than a Pyralog public key.
    #[error("expected a `{PUBLIC_KEY_HRP}1...` public key, found prefix `{0}`")]
    WrongPrefix(String),
    /// The payload is not 32 bytes.
    #[error("a public key is 32 bytes, this one is {0}")]
    WrongLength(usize),
    /// The bytes are not an ed25519 point.
    #[error("the bytes are not a point on the ed25519 curve")]
    NotOnCurve,
    /// A small-order point: anyone could sign for it.
    #[error("small-order (weak) ed25519 public key")]
    WeakKey,
}

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid signature")]
pub struct InvalidSignature;

/// An ed25519 signature. Serialized as `0x`-prefixed hex in human-readable formats, as its 64
/// raw bytes in binary ones (postcard).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub(crate) ed25519_dalek::Signature);

impl Signature {
    /// From its 64 bytes (any bytes parse; validity is checked by [`PublicKey::verify`]).
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        Signature(ed25519_dalek::Signature::from_bytes(bytes))
    }

    /// The 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

/// `0x`-hex in human-readable formats; the 64 signature bytes in binary ones (postcard).
impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&format!("0x{self}"))
        } else {
            crate::fixed_bytes::serialize(&self.to_bytes(), serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            let mut bytes = [0u8; 64];
            hex::decode_to_slice(text.strip_prefix("0x").unwrap_or(&text), &mut bytes)
                .map_err(|_| serde::de::Error::custom("expected 128 hex digits for a signature"))?;
            Ok(Signature::from_bytes(&bytes))
        } else {
            crate::fixed_bytes::deserialize(deserializer).map(|bytes: [u8; 64]| Signature::from_bytes(&bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_encoding_round_trips_and_rejects_typos() {
        let key = Keypair::generate().public();
        let text = key.to_string();
        assert!(text.starts_with("pyrpub1"), "{text}");
        assert_eq!(text.len(), 65);
        assert_eq!(text.parse::<PublicKey>(), Ok(key));

        // One changed character breaks the checksum.
        let mut typo = text.into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'q' { b'p' } else { b'q' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(matches!(typo.parse::<PublicKey>(), Err(KeyParseError::NotBech32m(_))), "{typo}");
    }

    #[test]
    fn other_prefixes_and_lengths_are_refused() {
        let key = Keypair::generate().public();
        let other = bech32::encode::<Bech32m>(Hrp::parse("cosmos").unwrap(), key.as_bytes()).unwrap();
        assert_eq!(other.parse::<PublicKey>(), Err(KeyParseError::WrongPrefix("cosmos".into())));
        let short = bech32::encode::<Bech32m>(Hrp::parse(PUBLIC_KEY_HRP).unwrap(), &[1; 31]).unwrap();
        assert_eq!(short.parse::<PublicKey>(), Err(KeyParseError::WrongLength(31)));
        // Bech32 (not m) with the right prefix is refused: the checksum variant is part of the format.
        let v0 =
            bech32::encode::<bech32::Bech32>(Hrp::parse(PUBLIC_KEY_HRP).unwrap(), key.as_bytes()).unwrap();
        assert!(matches!(v0.parse::<PublicKey>(), Err(KeyParseError::NotBech32m(_))));
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (compressed y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyParseError::WeakKey));
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let (a, b) = (Keypair::generate(), Keypair::generate());
        let sig = a.sign(b"message");
        assert_eq!(a.public().verify(b"message", &sig), Ok(()));
        assert_eq!(a.public().verify(b"messagE", &sig), Err(InvalidSignature));
        assert_eq!(b.public().verify(b"message", &sig), Err(InvalidSignature));
        let json = serde_json::to_string(&sig).unwrap();
        assert_eq!(serde_json::from_str::<Signature>(&json).unwrap(), sig);
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let pair = Keypair::from_secret(&[0xab; 32]);
        let shown = format!("{pair:?}");
        assert!(!shown.contains("abab") && !shown.contains("171, 171"), "{shown}");
    }
}
