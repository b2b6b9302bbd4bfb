//! Kafka clients with an identity: SASL/OAUTHBEARER whose extensions carry a claim signed by
//! the client's key (`pyralog keys kafka-auth` prints librdkafka's config for it). kcat signed
//! as a log's writer produces to a log whose access-control contract admits only that key;
//! anonymous kcat is refused. On the wire: a forged claim is SASL_AUTHENTICATION_FAILED (58), a
//! stale one too (a claim holds for 5 minutes, on any number of connections), authenticating
//! without a handshake ILLEGAL_SASL_STATE (34), and another mechanism UNSUPPORTED_SASL_MECHANISM
//! (33).

use std::io::{Read, Write};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use pyralog_contracts::examples::{wasm_of, writer_allowlist};
use pyralog_crypto::Keypair;
use pyralog_crypto::keys::write_key_file;
use serde_json::json;

use crate::kafka::kcat_missing;
use crate::support::{call, eventually, hex, start_with};

/// One connection to a broker, requests in turn.
struct Connection(std::net::TcpStream);

impl Connection {
    fn open(broker: &str) -> Connection {
        let stream = std::net::TcpStream::connect(broker).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
        Connection(stream)
    }

    fn request<Req: Encodable, Resp: Decodable>(&mut self, api: ApiKey, version: i16, body: &Req) -> Resp {
        let mut buf = BytesMut::new();
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(3);
        header.encode(&mut buf, api.request_header_version(version)).unwrap();
        body.encode(&mut buf, version).unwrap();
        self.0.write_all(&(buf.len() as u32).to_be_bytes()).unwrap();
        self.0.write_all(&buf).unwrap();
        let mut length = [0u8; 4];
        self.0.read_exact(&mut length).unwrap();
        let mut frame = vec![0u8; u32::from_be_bytes(length) as usize];
        self.0.read_exact(&mut frame).unwrap();
        let mut frame = Bytes::from(frame);
        ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
        Resp::decode(&mut frame, version).unwrap()
    }

    fn handshake(&mut self, mechanism: &'static str) -> i16 {
        let body = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
        self.request::<_, SaslHandshakeResponse>(ApiKey::SaslHandshake, 1, &body).error_code
    }

    fn authenticate(&mut self, message: String) -> (i16, Option<String>) {
        let body = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
        let answer: SaslAuthenticateResponse = self.request(ApiKey::SaslAuthenticate, 0, &body);
        (answer.error_code, answer.error_message.map(|m| m.to_string()))
    }
}

/// librdkafka's client first message for `config` (`principal=... extension_k=v ...`).
fn first_message(config: &str) -> String {
    let extensions: String = config
        .split(' ')
        .filter_map(|pair| pair.strip_prefix("extension_"))
        .map(|pair| format!("{pair}\u{1}"))
        .collect();
    format!("n,,\u{1}auth=Bearer eyJhbGciOiJub25lIn0.e30.\u{1}{extensions}\u{1}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_kafka_session_is_the_identity_a_logs_access_control_sees() {
    if kcat_missing() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = start_with(dir.path(), 1, |config| config.to_owned()).await;
    let (broker, rpc) = (net.kafka[0].clone(), net.rpc[0].clone());
    let writer = Keypair::generate();
    let acl = wasm_of(writer_allowlist(writer.public().as_bytes()).as_bytes()).unwrap();
    let params = json!({"name": "guarded", "partitions": 1, "replicationFactor": 1, "acl": hex(&acl)});
    call(&rpc, "log_create", params).await.unwrap();
    let key_file = dir.path().join("writer.key");
    write_key_file(&key_file, &writer).unwrap();

    // kcat signed as the writer: `pyralog keys kafka-auth` prints its SASL config.
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_pyralog"))
        .args(["keys", "kafka-auth"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(printed.status.success());
    let config = String::from_utf8(printed.stdout).unwrap().trim().to_owned();
    let signed = [
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanisms=OAUTHBEARER",
        "-X",
        "enable.sasl.oauthbearer.unsecure.jwt=true",
    ];
    let b = broker.clone();
    let produced = eventually("kcat's signed produce", async move || {
        let (b, config) = (b.clone(), format!("sasl.oauthbearer.config={config}"));
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["-P", "-b", &b, "-t", "guarded", "-p", "0", "-X", &config];
            args.extend(signed);
            crate::kafka::kcat(&args, "from the writer\n")
        })
        .await
        .unwrap()
    })
    .await;
    assert!(produced.is_empty());
    let read = call(&rpc, "log_read", json!({"log": "guarded", "partition": 0})).await.unwrap();
    assert_eq!(read.as_array().unwrap().len(), 1, "{read}");
    assert_eq!(read[0]["value"], hex(b"from the writer"));
    // Anonymous kcat: its batch is refused by the contract.
    let b = broker.clone();
    let anonymous = tokio::task::spawn_blocking(move || {
        crate::kafka::kcat(
            &["-P", "-b", &b, "-t", "guarded", "-p", "0", "-X", "message.timeout.ms=5000"],
            "anonymous\n",
        )
    })
    .await
    .unwrap();
    assert!(anonymous.is_none(), "an anonymous produce succeeded");

    // On the wire: forged, replayed, out of order, another mechanism.
    let b = broker.clone();
    tokio::task::spawn_blocking(move || {
        let config = pyralog_rpc_params::auth::kafka_sasl_config(&writer, now_ms(), 42);
        let mut conn = Connection::open(&b);
        assert_eq!(conn.authenticate(first_message(&config)).0, 34, "ILLEGAL_SASL_STATE before a handshake");
        let mut conn = Connection::open(&b);
        assert_eq!(conn.handshake("PLAIN"), 33, "UNSUPPORTED_SASL_MECHANISM");
        assert_eq!(conn.handshake("OAUTHBEARER"), 0);
        let forged = config.replace("extension_pyralognonce=42", "extension_pyralognonce=43");
        let (code, message) = conn.authenticate(first_message(&forged));
        assert_eq!(
            (code, message.as_deref()),
            (58, Some("auth.signature: does not verify for this request"))
        );
        let mut conn = Connection::open(&b);
        assert_eq!(conn.handshake("OAUTHBEARER"), 0);
        assert_eq!(conn.authenticate(first_message(&config)).0, 0, "the signed claim");
        // The same claim on another connection (librdkafka's next connection, a reconnect)
        // holds for its window; a claim older than the window does not.
        let mut again = Connection::open(&b);
        assert_eq!(again.handshake("OAUTHBEARER"), 0);
        assert_eq!(again.authenticate(first_message(&config)).0, 0, "a reconnect with the same claim");
        let stale = pyralog_rpc_params::auth::kafka_sasl_config(&writer, now_ms() - 10 * 60 * 1000, 43);
        let mut late = Connection::open(&b);
        assert_eq!(late.handshake("OAUTHBEARER"), 0);
        let (code, message) = late.authenticate(first_message(&stale));
        assert_eq!(code, 58);
        assert!(message.unwrap().contains("more than 300000 ms from this node's clock"));
    })
    .await
    .unwrap();
}
