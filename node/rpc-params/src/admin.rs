//! `admin_*` and `debug_*`.

use std::net::SocketAddr;

use pyralog_crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::{Params, ParamsError};

/// `admin_addMember {id, raftAddr, publicKey}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddMember {
    /// The joining node's id.
    pub id: u64,
    /// Its Raft transport address (`ip:port`).
    pub raft_addr: String,
    /// Its public key (`pyrpub1...`).
    pub public_key: String,
}

impl AddMember {
    /// The joining node's public key.
    pub fn key(&self) -> Result<PublicKey, ParamsError> {
        self.public_key.parse().map_err(|err| ParamsError::value(format!("publicKey: {err}")))
    }

    /// The joining node's Raft address.
    pub fn addr(&self) -> Result<SocketAddr, ParamsError> {
        self.raft_addr
            .parse()
            .map_err(|_| ParamsError::value(format!("raftAddr: {:?} is not ip:port", self.raft_addr)))
    }
}

impl Params for AddMember {
    fn check(&self) -> Result<(), ParamsError> {
        self.key()?;
        self.addr()?;
        Ok(())
    }
}

/// `admin_removeMember {id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveMember {
    /// The leaving node's id.
    pub id: u64,
}

impl Params for RemoveMember {}

/// `debug_setFailpoint {name, actions}` (the failpoint's own parser checks `actions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetFailpoint {
    /// The failpoint.
    pub name: String,
    /// What it does (`fail` crate syntax: `return`, `sleep(1500)`, `off`, ...).
    pub actions: String,
}

impl Params for SetFailpoint {}

/// `admin_addTunnelPeer {wireguardPublicKey, endpoint, rosenpassPublicKey?}`: a peer for this
/// node's WireGuard tunnel, as `wg set <dev> peer <key> endpoint <addr>` (keys in base64, as
/// `wg` and `rosenpass` write them; the node checks the WireGuard key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddTunnelPeer {
    /// Its WireGuard public key (base64).
    pub wireguard_public_key: String,
    /// Its tunnel's UDP address (`ip:port`, its `raft_addr`).
    pub endpoint: String,
    /// Its Rosenpass public key (base64 of the 524,160-byte key file), when it runs Rosenpass.
    #[serde(default)]
    pub rosenpass_public_key: Option<String>,
}

impl AddTunnelPeer {
    /// The peer's UDP endpoint.
    pub fn endpoint_addr(&self) -> Result<SocketAddr, ParamsError> {
        self.endpoint
            .parse()
            .map_err(|_| ParamsError::value(format!("endpoint: {:?} is not ip:port", self.endpoint)))
    }

    /// The Rosenpass public key's bytes, when one is given.
    pub fn rosenpass_key_bytes(&self) -> Result<Option<Vec<u8>>, ParamsError> {
        use base64::Engine as _;
        let decode = |text: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|err| ParamsError::value(format!("rosenpassPublicKey: {err}")))
        };
        self.rosenpass_public_key.as_deref().map(decode).transpose()
    }
}

/// The Rosenpass key (about 700 KB of base64) is decoded once, by
/// [`AddTunnelPeer::rosenpass_key_bytes`], which the node calls anyway.
impl Params for AddTunnelPeer {
    fn check(&self) -> Result<(), ParamsError> {
        self.endpoint_addr().map(drop)
    }
}
