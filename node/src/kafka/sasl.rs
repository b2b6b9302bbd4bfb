//! SASL/OAUTHBEARER sessions (RFC 7628, as librdkafka speaks it): the client's first message
//! carries its identity in extensions — its key, clock, nonce and signature over the Kafka
//! session claim (`pyralog_rpc_params::auth::kafka_sasl_claim`) — which `crate::client_auth`
//! checks. The bearer token itself is not read (librdkafka's unsecured JWT): the signature is
//! the credential. A connection without SASL is anonymous.

use pyralog_crypto::PublicKey;
use pyralog_rpc_params::auth::{Auth, kafka_extensions, kafka_sasl_claim};

/// The mechanism this broker offers.
pub(crate) const MECHANISM: &str = "OAUTHBEARER";

/// A connection's authentication state.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The mechanism agreed by SaslHandshake (authentication may follow, once).
    handshaken: bool,
    /// The verified client, after SaslAuthenticate.
    principal: Option<PublicKey>,
}

impl Session {
    /// The verified client (none: anonymous).
    pub(crate) fn principal(&self) -> Option<&PublicKey> {
        self.principal.as_ref()
    }

    /// SaslHandshake chose `mechanism`: whether it is the one offered.
    pub(crate) fn handshake(&mut self, mechanism: &str) -> bool {
        self.handshaken = mechanism == MECHANISM;
        self.handshaken
    }

    /// SaslAuthenticate with `message`: the verified key, or why not (the session stays as it
    /// was; a connection authenticates once).
    pub(crate) fn authenticate(&mut self, message: &[u8]) -> Result<PublicKey, SaslRefusal> {
        if !self.handshaken || self.principal.is_some() {
            return Err(SaslRefusal::State);
        }
        let auth = claim_of(message).map_err(SaslRefusal::Failed)?;
        let claim = kafka_sasl_claim(auth.timestamp_ms, auth.nonce);
        let key = crate::client_auth::verify(&auth, &claim, crate::client_auth::Replay::Window)
            .map_err(SaslRefusal::Failed)?;
        self.principal = Some(key);
        Ok(key)
    }
}

/// Why a SaslAuthenticate was refused.
#[derive(Debug)]
pub(crate) enum SaslRefusal {
    /// Out of order (no handshake, or already authenticated).
    State,
    /// Not a signed claim that verifies.
    Failed(String),
}

/// The signed claim in an OAUTHBEARER client first message:
/// `n,,` 0x01 `auth=Bearer <token>` 0x01 (`key=value` 0x01)* 0x01.
fn claim_of(message: &[u8]) -> Result<Auth, String> {
    let text = std::str::from_utf8(message).map_err(|_| "the SASL message is not UTF-8".to_owned())?;
    let rest =
        text.strip_prefix("n,,\u{1}").ok_or("not an OAUTHBEARER client first message (GS2 header n,,)")?;
    let mut fields = std::collections::BTreeMap::new();
    for pair in rest.split('\u{1}').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("malformed SASL field {pair:?}"))?;
        fields.insert(key, value);
    }
    use kafka_extensions::{KEY, NONCE, SIGNATURE, TIMESTAMP};
    let field = |name: &str| fields.get(name).copied().ok_or_else(|| format!("missing extension {name}"));
    let number = |name: &str| -> Result<u64, String> {
        field(name)?.parse().map_err(|_| format!("extension {name} is not a number"))
    };
    Ok(Auth {
        public_key: field(KEY)?.to_owned(),
        timestamp_ms: number(TIMESTAMP)?,
        nonce: number(NONCE)?,
        signature: format!("0x{}", field(SIGNATURE)?),
    })
}
