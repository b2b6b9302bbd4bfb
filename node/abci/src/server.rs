//! The ABCI socket server: CometBFT's framing (a protobuf `Request` behind its varint length,
//! answered by a `Response` the same way) on TCP, one thread per connection (CometBFT opens
//! four). Unlike tendermint-abci's server, a request over [`AbciServer::max_request_bytes`] is
//! refused before its bytes are read, and an empty or undecodable one gets an `Exception`
//! rather than a panic; either ends the connection.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message;
use tendermint_proto::v0_38::abci::{Request, Response, ResponseException, response};

use crate::adapter::{AbciAdapter, AbciApp};

/// The default cap on one request: CometBFT's largest block (100 MiB `max_bytes`) is far above
/// what a Pyralog block carries (4 MiB of transactions), so 32 MiB leaves room and bounds memory.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 32 << 20;

/// A bound, not yet serving, ABCI server.
pub struct AbciServer {
    listener: TcpListener,
    max_request_bytes: usize,
}

/// A running server: its address, and how to stop it.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<Connection>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// An open connection: its stream (to close it) and its thread (to wait for, so the app is
/// released when [`ServerHandle::shutdown`] returns).
struct Connection {
    stream: TcpStream,
    thread: std::thread::JoinHandle<()>,
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The connection failed or ended inside a frame.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The length prefix runs past 10 bytes.
    #[error("a length prefix longer than 10 bytes")]
    Varint,
    /// A length over the cap (the body is not read).
    #[error("a request of {0} bytes, over the {1}-byte cap")]
    TooLarge(u64, usize),
    /// The body is not a `Request`.
    #[error("undecodable request: {0}")]
    Decode(#[from] prost::DecodeError),
}

impl AbciServer {
    /// Binds `addr` (CometBFT's `proxy_app`, loopback by default: `127.0.0.1:26658`).
    pub fn bind(addr: impl ToSocketAddrs) -> std::io::Result<AbciServer> {
        Ok(AbciServer { listener: TcpListener::bind(addr)?, max_request_bytes: DEFAULT_MAX_REQUEST_BYTES })
    }

    /// The same server with another request cap.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `adapter` on threads until the handle stops it.
    pub fn serve<A: AbciApp + Send + 'static>(
        self,
        adapter: AbciAdapter<A>,
    ) -> std::io::Result<ServerHandle> {
        let addr = self.listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<Connection>>> = Arc::default();
        let (cap, flag, streams) = (self.max_request_bytes, stop.clone(), open.clone());
        let accept = std::thread::Builder::new().name("abci-accept".into()).spawn(move || {
            for stream in self.listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                let Ok(clone) = stream.try_clone() else { continue };
                let adapter = adapter.clone();
                let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
                let spawned =
                    std::thread::Builder::new().name("abci-conn".into()).spawn(
                        move || match serve_connection(stream, &adapter, cap) {
                            Ok(()) => tracing::debug!(%peer, "ABCI connection closed"),
                            Err(err) => tracing::warn!(%peer, %err, "ABCI connection ended"),
                        },
                    );
                match (spawned, streams.lock()) {
                    (Ok(thread), Ok(mut list)) => {
                        list.retain(|c| !c.thread.is_finished());
                        list.push(Connection { stream: clone, thread });
                    }
                    (Err(err), _) => tracing::error!(%err, "cannot start an ABCI connection thread"),
                    (Ok(_), Err(_)) => tracing::error!("ABCI connection list poisoned"),
                }
            }
        })?;
        tracing::info!(%addr, "ABCI server listening");
        Ok(ServerHandle { addr, stop, open, accept: Some(accept) })
    }
}

impl ServerHandle {
    /// The address CometBFT connects to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection and waits for their threads (the app they
    /// share is released when this returns).
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let open = self.open.lock().map(|mut list| std::mem::take(&mut *list)).unwrap_or_default();
        for connection in &open {
            let _ = connection.stream.shutdown(std::net::Shutdown::Both);
        }
        for connection in open {
            let _ = connection.thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.stop_now();
        }
    }
}

fn serve_connection<A: AbciApp + Send + 'static>(
    stream: TcpStream,
    adapter: &AbciAdapter<A>,
    cap: usize,
) -> Result<(), FrameError> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut out = Vec::new();
    loop {
        let request = match read_request(&mut reader, cap) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(err) => {
                // Said once, then the connection ends: the stream may be out of frame.
                let exception = ResponseException { error: err.to_string() };
                let _ = write_response(
                    &mut writer,
                    &mut out,
                    Response { value: Some(response::Value::Exception(exception)) },
                );
                return Err(err);
            }
        };
        let response = adapter.dispatch(request);
        write_response(&mut writer, &mut out, response)?;
    }
}

/// The next request from `reader` (CometBFT's framing), at most `cap` bytes; `None` at a clean
/// end of stream.
pub fn read_request(reader: &mut impl Read, cap: usize) -> Result<Option<Request>, FrameError> {
    let mut length: u64 = 0;
    let mut byte = [0u8; 1];
    for i in 0..=10 {
        if i == 10 {
            return Err(FrameError::Varint);
        }
        if reader.read(&mut byte)? == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        length |= u64::from(byte[0] & 0x7f).checked_shl(7 * i).unwrap_or(0);
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    if length > cap as u64 {
        return Err(FrameError::TooLarge(length, cap));
    }
    let mut body = vec![0; length as usize];
    reader.read_exact(&mut body)?;
    Ok(Some(Request::decode(body.as_slice())?))
}

fn write_response(writer: &mut impl Write, out: &mut Vec<u8>, response: Response) -> std::io::Result<()> {
    out.clear();
    response.encode_length_delimited(out).map_err(std::io::Error::other)?;
    writer.write_all(out)?;
    writer.flush()
}
