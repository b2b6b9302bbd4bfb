//! The request-response frames: round trips, and refusals of oversized or garbled frames.

use futures::io::Cursor;
use proptest::prelude::*;
use pyralog_p2p::libp2p::StreamProtocol;
use pyralog_p2p::libp2p::request_response::Codec;
use pyralog_p2p::{FrameCodec, Request, Response};

fn protocol() -> StreamProtocol {
    StreamProtocol::new("/pyralog/test/req/1")
}

fn block_on<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

fn encode_request(codec: &mut FrameCodec, request: Request) -> std::io::Result<Vec<u8>> {
    let mut io = Cursor::new(Vec::new());
    block_on(codec.write_request(&protocol(), &mut io, request))?;
    Ok(io.into_inner())
}

fn request_strategy() -> impl Strategy<Value = Request> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512).prop_map(Request::Consensus),
        (any::<u64>(), any::<u32>()).prop_map(|(from_height, max)| Request::Blocks { from_height, max }),
        ("[a-z_]{0,16}", proptest::collection::vec(any::<u8>(), 0..256))
            .prop_map(|(path, data)| Request::Query { path, data }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(request in request_strategy()) {
        let mut codec = FrameCodec::new(1 << 20, 1 << 20);
        let bytes = encode_request(&mut codec, request.clone()).unwrap();
        let decoded = block_on(codec.read_request(&protocol(), &mut Cursor::new(bytes))).unwrap();
        prop_assert_eq!(decoded, request);
    }

    #[test]
    fn garbled_frames_are_refused_or_decode_to_some_request(
        request in request_strategy(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut codec = FrameCodec::new(1 << 20, 1 << 20);
        let mut bytes = encode_request(&mut codec, request).unwrap();
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask | 1;
        }
        // Never a panic; an error is InvalidData (undecodable, over the cap) or UnexpectedEof
        // (a length pointing past the end).
        if let Err(err) = block_on(codec.read_request(&protocol(), &mut Cursor::new(bytes))) {
            prop_assert!(
                matches!(err.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof),
                "{err}"
            );
        }
    }
}

#[test]
fn a_length_over_the_cap_is_refused_before_reading_the_body() {
    let mut codec = FrameCodec::new(1024, 1024);
    // Claims 4 GiB and sends nothing more: refused on the length alone.
    let frame = u32::MAX.to_be_bytes().to_vec();
    let err = block_on(codec.read_request(&protocol(), &mut Cursor::new(frame))).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("cap"), "{err}");
}

#[test]
fn an_oversized_message_is_not_sent() {
    let mut codec = FrameCodec::new(1024, 1024);
    let err = encode_request(&mut codec, Request::Consensus(vec![7; 2000])).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let mut io = Cursor::new(Vec::new());
    let err =
        block_on(codec.write_response(&protocol(), &mut io, Response::Answer(vec![7; 2000]))).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(io.into_inner().is_empty(), "nothing was written");
}

#[test]
fn a_response_within_the_request_cap_but_over_the_response_cap_is_refused() {
    let mut sender = FrameCodec::new(1 << 20, 1 << 20);
    let mut io = Cursor::new(Vec::new());
    block_on(sender.write_response(&protocol(), &mut io, Response::Answer(vec![1; 4096]))).unwrap();
    let mut receiver = FrameCodec::new(1 << 20, 1024);
    let err = block_on(receiver.read_response(&protocol(), &mut Cursor::new(io.into_inner()))).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}
