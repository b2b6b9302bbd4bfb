//! Checks for the decoders of bytes other nodes send or the node reads back from its own disk:
//! consensus messages (Tendermint and PBFT), the engines' write-ahead-log entries, the cluster
//! transport's frames (Raft and snapshot payloads, forwarded writes), the overlay's
//! request-response frames, the tunnel's datagrams (raw, and inner packets a peer with a
//! session encrypts), zk proof files, and the JSON answers a light client or another
//! cluster gets from a (possibly malicious) server.

use futures::executor::block_on;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use pyralog_cluster::transport::{RequestFrame, ResponseFrame, read_frame};
use pyralog_consensus::{pbft, tendermint};
use pyralog_p2p::tunnel::fuzzing::DatagramTarget;
use pyralog_p2p::{FrameCodec, Request, Response};
use serde_json::Value;

/// A Tendermint engine message from a validator: what decodes re-encodes to bytes that decode
/// and re-encode to the same bytes.
pub fn tendermint_wire(data: &[u8]) {
    use tendermint::wire::{decode_message, encode_message};
    if let Ok(message) = decode_message(data) {
        let bytes = encode_message(&message);
        let again = decode_message(&bytes).expect("a re-encoded Tendermint message decodes");
        assert_eq!(encode_message(&again), bytes, "Tendermint messages re-encode to themselves");
    }
}

/// A PBFT message from a validator, with the same round trip.
pub fn pbft_wire(data: &[u8]) {
    use pbft::wire::{decode, encode};
    if let Ok(message) = decode(data) {
        let bytes = encode(&message);
        let again = decode(&bytes).expect("a re-encoded PBFT message decodes");
        assert_eq!(encode(&again), bytes, "PBFT messages re-encode to themselves");
    }
}

/// A write-ahead-log entry read back at restart (the first byte picks the engine).
pub fn consensus_wal(data: &[u8]) {
    let Some((engine, entry)) = data.split_first() else { return };
    let _ = match engine % 2 {
        0 => tendermint::decode_wal_entry(entry),
        _ => pbft::decode_wal_entry(entry),
    };
}

/// A stream of cluster transport frames from a peer (the first byte picks requests or
/// responses): length-prefixed postcard, every frame until the stream ends or one is refused;
/// what decodes re-encodes to bytes that decode and re-encode to the same bytes.
pub fn cluster_frame(data: &[u8]) {
    let Some((side, mut stream)) = data.split_first() else { return };
    block_on(async {
        for _ in 0..16 {
            let more = match side % 2 {
                0 => round_trip_frame::<RequestFrame>(read_frame(&mut stream).await),
                _ => round_trip_frame::<ResponseFrame>(read_frame(&mut stream).await),
            };
            if !more {
                break;
            }
        }
    });
}

fn round_trip_frame<T: serde::Serialize + serde::de::DeserializeOwned>(
    frame: std::io::Result<Option<T>>,
) -> bool {
    let Ok(Some(frame)) = frame else { return false };
    let bytes = postcard::to_allocvec(&frame).expect("frames encode");
    let again: T = postcard::from_bytes(&bytes).expect("a re-encoded frame decodes");
    assert_eq!(
        postcard::to_allocvec(&again).expect("frames encode"),
        bytes,
        "frames re-encode to themselves"
    );
    true
}

/// One request or response on the overlay's request-response protocol (the first byte picks
/// which), through the codec the node runs, with small caps; what decodes is written back
/// through the codec and read again to the same value.
pub fn p2p_frame(data: &[u8]) {
    let Some((side, bytes)) = data.split_first() else { return };
    let protocol = StreamProtocol::new("/pyralog/fuzz/1");
    let mut codec = FrameCodec::new(64 * 1024, 64 * 1024);
    block_on(async {
        let mut input = futures::io::Cursor::new(bytes);
        if side % 2 == 0 {
            if let Ok(request) = codec.read_request(&protocol, &mut input).await {
                let mut out = futures::io::Cursor::new(Vec::new());
                codec.write_request(&protocol, &mut out, request.clone()).await.expect("requests encode");
                let mut back = futures::io::Cursor::new(out.into_inner());
                let again: Request = codec.read_request(&protocol, &mut back).await.expect("re-read");
                assert_eq!(again, request);
            }
        } else if let Ok(response) = codec.read_response(&protocol, &mut input).await {
            let mut out = futures::io::Cursor::new(Vec::new());
            codec.write_response(&protocol, &mut out, response.clone()).await.expect("responses encode");
            let mut back = futures::io::Cursor::new(out.into_inner());
            let again: Response = codec.read_response(&protocol, &mut back).await.expect("re-read");
            assert_eq!(again, response);
        }
    });
}

/// A zk proof file (JSON) a client verifies: parsing, the claimed roots, and verification
/// without a key (a membership proof then needs one; an append STARK verifies alone).
pub fn zk_proof(data: &[u8]) {
    if let Ok(proof) = serde_json::from_slice::<pyralog_zk::proof::ZkProof>(data) {
        let _ = proof.claimed_roots();
        let _ = proof.verify(None);
        let text = serde_json::to_vec(&proof).expect("proofs serialize");
        serde_json::from_slice::<pyralog_zk::proof::ZkProof>(&text).expect("a re-serialized proof parses");
    }
}

/// A JSON answer from a server a light client or another cluster asked (`log_getProof`, headers,
/// commits, finality evidence, validator sets, records): every decoder of the wire shapes.
pub fn light_answer(data: &[u8]) {
    use pyralog_light::wire;
    let Ok(answer) = serde_json::from_slice::<Value>(data) else { return };
    let _ = wire::record_evidence(&answer);
    let _ = wire::finality_evidence(&answer);
    let _ = wire::certificate(&answer);
    let _ = wire::header(&answer);
    let _ = wire::finality(&answer);
    let _ = wire::consistency(&answer);
    let _ = wire::validators(&answer);
    if let Ok(record) = wire::record(&answer) {
        assert_eq!(wire::record(&wire::record_json(&record)).expect("re-read"), record);
    }
}

/// Datagrams at the cluster tunnel's UDP port from a peer's address, in sequence (so a
/// handshake can be followed by data, a SYN by its ACK): each is a mode byte, a 2-byte length
/// and its bytes; an even mode sends the bytes as they are (anything a network can deliver), an
/// odd one has the peer, which has a session, encrypt them first as an inner IPv4 packet (what
/// the tunnel checks and smoltcp reads after decryption).
pub fn tunnel_datagram(data: &[u8]) {
    let mut target = DatagramTarget::new();
    assert_eq!(target.handshakes(), 1, "the peer's handshake completes");
    let mut rest = data;
    while let [mode, high, low, tail @ ..] = rest {
        let length = usize::from(u16::from_be_bytes([*high, *low])).min(tail.len());
        let (bytes, after) = tail.split_at(length);
        if mode % 2 == 0 {
            target.datagram(bytes);
        } else {
            target.inner_packet(bytes);
        }
        rest = after;
    }
}

/// What CometBFT sends the ABCI server (a peer on loopback, or anything that reaches the port):
/// frames read within a 1 MiB cap until the bytes run out or one is refused; a decoded request
/// re-encodes to bytes that decode to the same request.
pub fn abci_frame(data: &[u8]) {
    use prost::Message;
    let mut rest = data;
    while let Ok(Some(request)) = pyralog_abci::read_request(&mut rest, 1 << 20) {
        let bytes = request.encode_length_delimited_to_vec();
        let again = pyralog_abci::read_request(&mut bytes.as_slice(), usize::MAX)
            .expect("a re-encoded request reads")
            .expect("a re-encoded request is there");
        assert_eq!(again, request, "ABCI requests survive a round trip");
    }
    let _ = tendermint_proto::v0_38::abci::Request::decode(data);
}
