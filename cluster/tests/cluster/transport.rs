//! The peer pool tells a request that never reached the peer (nothing happened there) from one
//! whose connection broke before the answer (the peer may have acted on it): a forwarded write
//! of the second kind has an unknown outcome, never a definite failure. Frames are bounded and
//! read as their bytes arrive.

use std::time::Duration;

use pyralog_cluster::raft::GroupId;
use pyralog_cluster::transport::{CallError, PeerPool, RaftRequest, RequestFrame, TcpTransport, read_frame};

#[tokio::test]
async fn a_request_never_sent_is_unreachable_and_one_left_unanswered_is_broken() {
    let pool = PeerPool::new(TcpTransport);
    let call = |addr: String| {
        let pool = &pool;
        async move {
            pool.call(&addr, GroupId::GLOBAL, RaftRequest::AppendRecords(Vec::new()), Duration::from_secs(30))
                .await
        }
    };

    // Nobody listens: the request was never written.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let err = call(closed.to_string()).await.unwrap_err();
    assert!(matches!(err, CallError::Unreachable(ref addr) if *addr == closed.to_string()), "{err:?}");

    // A peer that reads the whole request, then hangs up without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let request: Option<RequestFrame> = read_frame(&mut stream).await.unwrap();
        assert!(request.is_some(), "the request arrived");
    });
    let err = call(addr.clone()).await.unwrap_err();
    assert!(matches!(err, CallError::Broken(ref broken) if *broken == addr), "{err:?}");
    peer.await.unwrap();
}

/// A frame's length is bounded, a stream ending inside a frame is an error of its own, and the
/// buffer follows the bytes that arrive rather than the length announced (a peer announcing
/// 64 MiB and sending 10 bytes is answered without 64 MiB being held).
#[tokio::test]
async fn frames_are_bounded_and_a_stream_cut_inside_one_is_an_error() {
    use pyralog_cluster::transport::MAX_FRAME_BYTES;
    let clean: &[u8] = &[];
    assert!(read_frame::<_, RequestFrame>(&mut &clean[..]).await.unwrap().is_none());

    let too_long = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes();
    let err = read_frame::<_, RequestFrame>(&mut &too_long[..]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");

    let cut = [&(MAX_FRAME_BYTES as u32).to_be_bytes()[..], &[7u8; 10]].concat();
    let err = read_frame::<_, RequestFrame>(&mut &cut[..]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert!(err.to_string().contains("10 bytes into a 67108864-byte frame"), "{err}");
}
