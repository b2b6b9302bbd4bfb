//! Tunnel peers added while the node ran (`admin_addTunnelPeer`, as `wg set <dev> peer ...`),
//! kept in `BASE/peers/added.toml` with their Rosenpass keys beside it, so the node links with
//! them again after a restart. The founding members' peers stay in `config.toml`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::BasePath;

/// One added tunnel peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddedTunnelPeer {
    /// Its WireGuard public key (base64, as `wg` writes it).
    pub wireguard_public_key: String,
    /// Its UDP endpoint (`ip:port`).
    pub endpoint: String,
    /// Its Rosenpass public key file, relative to the base path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rosenpass_public_key: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddedFile {
    #[serde(default)]
    peer: Vec<AddedTunnelPeer>,
}

impl BasePath {
    /// `BASE/peers/added.toml`.
    pub fn added_tunnel_peers(&self) -> PathBuf {
        self.0.join("peers/added.toml")
    }

    /// The added tunnel peers (none when the file does not exist).
    pub fn load_added_tunnel_peers(&self) -> anyhow::Result<Vec<AddedTunnelPeer>> {
        let path = self.added_tunnel_peers();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err).with_context(|| path.display().to_string()),
        };
        let file: AddedFile = toml::from_str(&text).with_context(|| path.display().to_string())?;
        Ok(file.peer)
    }

    /// Keeps `peer` (replacing one with the same WireGuard key), with its Rosenpass public key
    /// written to `peers/added-<name>.rosenpass.pub`. Each file is written whole and renamed
    /// into place, so a crash leaves the old list or the new one. One call at a time.
    pub fn save_added_tunnel_peer(
        &self,
        name: &str,
        mut peer: AddedTunnelPeer,
        rosenpass_public_key: Option<&[u8]>,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.0.join("peers"))?;
        peer.rosenpass_public_key = match rosenpass_public_key {
            Some(key) => {
                let relative = PathBuf::from(format!("peers/added-{name}.rosenpass.pub"));
                write_whole(&self.0.join(&relative), key)?;
                Some(relative)
            }
            None => None,
        };
        let mut peers = self.load_added_tunnel_peers()?;
        peers.retain(|kept| kept.wireguard_public_key != peer.wireguard_public_key);
        peers.push(peer);
        let text = toml::to_string(&AddedFile { peer: peers })?;
        write_whole(&self.added_tunnel_peers(), text.as_bytes())
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it into place and syncs
/// the directory, so `path` holds the old bytes or the new ones. Callers write one at a time.
fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&partial)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, path)?;
        match path.parent() {
            Some(dir) => std::fs::File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    };
    write().with_context(|| path.display().to_string())
}
