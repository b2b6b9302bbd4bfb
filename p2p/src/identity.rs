//! Node keys as libp2p identities: a node's libp2p key *is* its ed25519 node key, so the
//! authenticated peer of a Noise/TLS session is the validator key consensus knows, with no
//! separate mapping to keep in sync.

use libp2p::PeerId;
use libp2p::identity;
use pyralog_crypto::{Keypair, PublicKey};

/// The libp2p keypair of a node key.
pub fn libp2p_keypair(key: &Keypair) -> identity::Keypair {
    let mut secret = key.secret();
    let secret = identity::ed25519::SecretKey::try_from_bytes(secret.as_mut_slice())
        .expect("an ed25519 secret is 32 bytes");
    identity::Keypair::from(identity::ed25519::Keypair::from(secret))
}

/// The peer id of a node key.
pub fn peer_id(key: &PublicKey) -> PeerId {
    let key = identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .expect("a PublicKey is a valid ed25519 point");
    identity::PublicKey::from(key).to_peer_id()
}

/// The node key inside a peer id, if the peer id holds an ed25519 key (ours always do: ed25519
/// keys are short enough to be inlined in the id).
pub fn public_key(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    // 0x00 is the identity multihash: the digest is the protobuf-encoded public key.
    if multihash.code() != 0 {
        return None;
    }
    let key = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let bytes = key.try_into_ed25519().ok()?.to_bytes();
    PublicKey::from_bytes(&bytes).ok()
}
