//! Signed client requests: `log_append` and `log_read` may carry `auth`, an ed25519 signature
//! by the client's key over what the request does, so a log's access-control contract sees a
//! real identity. Unsigned requests are anonymous.
//!
//! The signature covers [`REQUEST_CONTEXT`] followed by the postcard encoding of a
//! [`RequestClaim`]: the method, the log, the partition (if named), the client's clock
//! (`timestampMs`), a nonce, and the BLAKE3 digest (`client_request` domain) of the request's
//! body ([`append_body`], [`read_body`]). The node refuses a signature that does not verify, a
//! timestamp more than [`MAX_SKEW_MS`] from its clock, and a (key, nonce) it has already seen
//! in that window.

use pyralog_crypto::{Digest, Domain, Keypair, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::log::AppendedRecord;
use crate::{ParamsError, hex_field};

/// What every request signature starts with.
pub const REQUEST_CONTEXT: &[u8] = b"pyralog/rpc/request/v1\0";

/// How far a signed request's timestamp may be from the node's clock.
pub const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// A request's `auth` param.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Auth {
    /// The client's key (`pyrpub1...`).
    pub public_key: String,
    /// The client's clock, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Unique per key within the timestamp window.
    pub nonce: u64,
    /// The signature (0x hex, 64 bytes).
    pub signature: String,
}

/// What a request signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestClaim<'a> {
    /// The method (`log_append`, `log_read`).
    pub method: &'a str,
    /// The log.
    pub log: &'a str,
    /// The partition, when the request names one.
    pub partition: Option<u32>,
    /// The client's clock.
    pub timestamp_ms: u64,
    /// The nonce.
    pub nonce: u64,
    /// The body's digest.
    pub body: Digest,
}

impl RequestClaim<'_> {
    /// The bytes the client signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        [REQUEST_CONTEXT, &postcard::to_allocvec(self).expect("claims serialize")].concat()
    }
}

/// One appended record as the body digest sees it: the bytes the client sent, before the node
/// fills in defaults.
#[derive(Serialize)]
struct BodyRecord<'a> {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(&'a str, Vec<u8>)>,
    timestamp_ms: Option<u64>,
    producer: Option<(u64, u64)>,
}

/// The body digest of `log_append`'s records: `client_request`-domain BLAKE3 of `append` and
/// the postcard encoding of each record's key, value, headers (name, value), timestamp and
/// producer (id, sequence), as sent.
pub fn append_body(records: &[AppendedRecord]) -> Result<Digest, ParamsError> {
    let mut hasher = Domain::ClientRequest.hasher();
    hasher.update(b"append");
    for record in records {
        let body = BodyRecord {
            key: record.key.as_deref().map(|k| hex_field("key", k)).transpose()?,
            value: hex_field("value", &record.value)?,
            headers: record
                .headers
                .iter()
                .map(|h| Ok((h.name.as_str(), hex_field("headers.value", &h.value)?)))
                .collect::<Result<_, ParamsError>>()?,
            timestamp_ms: record.timestamp_ms,
            producer: record.producer.map(|p| (p.id, p.seq)),
        };
        hasher.update(&postcard::to_allocvec(&body).expect("records serialize"));
    }
    Ok(Digest(*hasher.finalize().as_bytes()))
}

/// The body digest of `log_read`: `client_request`-domain BLAKE3 of `read` and the postcard
/// encoding of (from, max).
pub fn read_body(from: u64, max: u64) -> Digest {
    let mut hasher = Domain::ClientRequest.hasher();
    hasher.update(b"read").update(&postcard::to_allocvec(&(from, max)).expect("serializes"));
    Digest(*hasher.finalize().as_bytes())
}

impl Auth {
    /// Signs `claim` with `key`.
    pub fn sign(key: &Keypair, claim: &RequestClaim<'_>) -> Auth {
        Auth {
            public_key: key.public().to_string(),
            timestamp_ms: claim.timestamp_ms,
            nonce: claim.nonce,
            signature: format!("0x{}", hex::encode(key.sign(&claim.signing_bytes()).to_bytes())),
        }
    }

    /// The key whose signature over `claim` this is (the claim's timestamp and nonce must be
    /// this auth's); refused when it does not verify.
    pub fn verify(&self, claim: &RequestClaim<'_>) -> Result<PublicKey, ParamsError> {
        let key: PublicKey =
            self.public_key.parse().map_err(|err| ParamsError::Value(format!("auth.publicKey: {err}")))?;
        let bytes: [u8; 64] = hex_field("auth.signature", &self.signature)?
            .try_into()
            .map_err(|_| ParamsError::Value("auth.signature: a signature is 64 bytes".into()))?;
        key.verify(&claim.signing_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| ParamsError::Value("auth.signature: does not verify for this request".into()))?;
        Ok(key)
    }
}

/// The claim a Kafka client signs for a SASL/OAUTHBEARER session: method `kafka_sasl`, no log
/// or partition, body [`kafka_sasl_body`].
pub fn kafka_sasl_claim(timestamp_ms: u64, nonce: u64) -> RequestClaim<'static> {
    RequestClaim {
        method: "kafka_sasl",
        log: "",
        partition: None,
        timestamp_ms,
        nonce,
        body: kafka_sasl_body(),
    }
}

/// The body digest of a Kafka session: `client_request`-domain BLAKE3 of `kafka-sasl`.
pub fn kafka_sasl_body() -> Digest {
    Domain::ClientRequest.hash(b"kafka-sasl")
}

/// The OAUTHBEARER extensions that carry a session's signed claim (names are letters only, as
/// RFC 7628 and librdkafka require).
pub mod kafka_extensions {
    /// The client's key (`pyrpub1...`).
    pub const KEY: &str = "pyralogkey";
    /// Its clock, ms.
    pub const TIMESTAMP: &str = "pyralogts";
    /// The nonce.
    pub const NONCE: &str = "pyralognonce";
    /// The signature (hex, 64 bytes).
    pub const SIGNATURE: &str = "pyralogsig";
}

/// librdkafka's `sasl.oauthbearer.config` for a session signed by `key` (with
/// `enable.sasl.oauthbearer.unsecure.jwt=true`, `sasl.mechanisms=OAUTHBEARER`).
pub fn kafka_sasl_config(key: &Keypair, timestamp_ms: u64, nonce: u64) -> String {
    let auth = Auth::sign(key, &kafka_sasl_claim(timestamp_ms, nonce));
    use kafka_extensions::*;
    format!(
        "principal={public} extension_{KEY}={public} extension_{TIMESTAMP}={timestamp_ms} extension_{NONCE}={nonce} extension_{SIGNATURE}={}",
        auth.signature.trim_start_matches("0x"),
        public = auth.public_key,
    )
}
