//! The JSON-RPC params decoder (`pyralog-rpc-params`): it covers every method `openrpc.json`
//! documents with params, and refuses bad params with the variant and text a client sees.

use std::collections::BTreeSet;

use pyralog_rpc_params::{METHODS, MethodParams, ParamsError};
use serde_json::Value;

fn decode(method: &str, params: &str) -> Result<MethodParams, ParamsError> {
    MethodParams::decode(method, Some(params)).expect("a method with params")
}

#[test]
fn every_documented_method_with_params_is_decoded() {
    let spec: Value = serde_json::from_str(include_str!("../../src/rpc/openrpc.json")).unwrap();
    let documented: BTreeSet<&str> = spec["methods"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["params"].as_array().is_some_and(|p| !p.is_empty()))
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(documented, METHODS.iter().copied().collect::<BTreeSet<_>>());
    assert!(MethodParams::decode("system_health", None).is_none());
    assert!(MethodParams::decode("no_such_method", Some("{}")).is_none());
}

#[test]
fn params_that_are_not_the_methods_are_a_shape_refusal() {
    let shape = |method: &str, params: &str, says: &str| match decode(method, params) {
        Err(ParamsError::Shape(message)) => assert!(message.contains(says), "{method} {params}: {message}"),
        other => panic!("{method} {params}: {other:?}"),
    };
    shape("log_read", r#"{"log":"a","partition":0,"form":1}"#, "unknown field `form`");
    shape("log_read", r#"{"log":"a"}"#, "missing field `partition`");
    shape("log_append", r#"{"log":"a","records":[{"value":5}]}"#, "invalid type: integer `5`");
    shape("log_read", r#"{"log":"a","partition":-1}"#, "invalid value");
    shape("log_getCheckpoint", "{not json", "key must be a string");
    shape("chain_getHeader", r#"{"height":"3"}"#, "invalid type");
    assert!(matches!(MethodParams::decode("log_read", None), Some(Err(ParamsError::Shape(_)))));
}

#[test]
fn values_out_of_their_domain_are_a_value_refusal_naming_the_field() {
    let hex32 = format!("0x{}", "11".repeat(32));
    let refused = [
        ("log_append", r#"{"log":"a","records":[]}"#.to_owned(), "records: at least one record"),
        (
            "log_append",
            r#"{"log":"a","records":[{"value":"0x00"},{"value":"zz"}]}"#.to_owned(),
            "records[1].value: bytes are 0x-prefixed hex",
        ),
        (
            "log_append",
            r#"{"log":"a","records":[{"value":"0x","headers":[{"name":"h","value":"0x1"}]}]}"#.to_owned(),
            "records[0].headers.value: Odd number of digits",
        ),
        (
            "log_create",
            r#"{"name":"a","partitions":1,"replicationFactor":1,"zk":["plonk"]}"#.to_owned(),
            "zk: unknown proof system \"plonk\" (groth16, stark)",
        ),
        (
            "log_read",
            r#"{"log":"a","partition":0,"format":"csv"}"#.to_owned(),
            "format: \"json\" or \"arrow\", not \"csv\"",
        ),
        (
            "log_getProof",
            r#"{"log":"a","partition":0,"offset":0,"cluster":"no way"}"#.to_owned(),
            "cluster: ",
        ),
        ("admin_addMember", r#"{"id":4,"raftAddr":"here","publicKey":"x"}"#.to_owned(), "publicKey: "),
        ("contract_get", r#"{"contract":"0x11"}"#.to_owned(), "contract: a contract id is 32 bytes"),
        (
            "contract_query",
            format!(r#"{{"contract":"{hex32}","entry":"","input":"0x"}}"#),
            "entry: 1 to 64 bytes",
        ),
        (
            "contract_query",
            format!(r#"{{"contract":"{hex32}","entry":"tally","caller":"nobody"}}"#),
            "caller: ",
        ),
        (
            "contract_getStorage",
            format!(r#"{{"contract":"{hex32}","key":"6b"}}"#),
            "key: bytes are 0x-prefixed hex",
        ),
        (
            "admin_addTunnelPeer",
            r#"{"wireguardPublicKey":"k","endpoint":"10.0.0.4:7400","rosenpassPublicKey":"not base64!"}"#
                .to_owned(),
            "rosenpassPublicKey: ",
        ),
        (
            "admin_addTunnelPeer",
            r#"{"wireguardPublicKey":"k","endpoint":"here"}"#.to_owned(),
            "endpoint: \"here\" is not ip:port",
        ),
        (
            "state_get",
            r#"{"key":"0x00","keyText":"k"}"#.to_owned(),
            "give exactly one of key (0x hex) and keyText",
        ),
        ("state_getProof", "{}".to_owned(), "give exactly one of key (0x hex) and keyText"),
        ("tx_status", r#"{"id":"0x0102"}"#.to_owned(), "id: a transaction id is 32 bytes"),
        ("staking_unbonding", r#"{"delegator":"x","validator":"y"}"#.to_owned(), "delegator: "),
        (
            "zk_proveAppends",
            r#"{"log":"a","partition":0,"fromSize":5,"toSize":5}"#.to_owned(),
            "toSize - fromSize must be 1..=4096",
        ),
        (
            "zk_proveMembership",
            r#"{"log":"a","partition":0,"offset":0,"nonce":"0x01"}"#.to_owned(),
            "nonce: a field element is 32 bytes",
        ),
        (
            "zk_verify",
            r#"{"proof":{},"verifyingKey":"00"}"#.to_owned(),
            "verifyingKey: bytes are 0x-prefixed hex",
        ),
    ];
    for (method, params, says) in refused {
        // `log_append`'s records and a tunnel peer's Rosenpass key are decoded by the handler.
        let decoded = decode(method, &params).and_then(|decoded| decoded.check_deferred());
        match decoded {
            Err(ParamsError::Value(message)) => {
                assert!(message.starts_with(says), "{method} {params}: {message}")
            }
            other => panic!("{method} {params}: {other:?}"),
        }
    }
    let key = pyralog_crypto::Keypair::from_secret(&[7; 32]).public().to_string();
    let add = format!(r#"{{"id":4,"raftAddr":"here","publicKey":"{key}"}}"#);
    assert_eq!(
        decode("admin_addMember", &add),
        Err(ParamsError::Value("raftAddr: \"here\" is not ip:port".into()))
    );
    assert!(decode("tx_status", &format!(r#"{{"id":"{hex32}"}}"#)).is_ok());
}

#[test]
fn height_params_may_be_left_out() {
    for params in [None, Some(""), Some("[]"), Some(" [] "), Some("{}"), Some(r#"{"height":null}"#)] {
        let decoded = MethodParams::decode("chain_getHeader", params).unwrap().unwrap();
        assert_eq!(decoded.to_json(), r#"{"height":null}"#, "{params:?}");
    }
    // Positional params are taken in the documented order, as serde reads a struct from an array.
    assert_eq!(decode("chain_getHeader", "[3]").unwrap().to_json(), r#"{"height":3}"#);
    assert!(matches!(decode("chain_getHeader", r#"["3"]"#), Err(ParamsError::Shape(_))));
}

#[test]
fn appended_records_are_the_hex_they_were_sent_as() {
    let params = r#"{"log":"a","records":[
        {"key":"0x6b","value":"0x7631","headers":[{"name":"h","value":"0x"}],"producer":{"id":7,"seq":2}},
        {"value":"0x","timestampMs":5}]}"#;
    let Ok(MethodParams::Append(append)) = decode("log_append", params) else { panic!("decodes") };
    let records = append.records(99).unwrap();
    assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(records[0].value, b"v1");
    assert_eq!(records[0].headers[0].value, b"");
    assert_eq!(records[0].timestamp_ms, 99, "the node's clock when none is given");
    assert_eq!(records[0].producer.map(|p| (p.producer, p.sequence)), Some((7, 2)));
    assert_eq!((records[1].key.as_ref(), records[1].timestamp_ms), (None, 5));
    assert_eq!(
        decode("log_append", &MethodParams::Append(append.clone()).to_json()),
        Ok(MethodParams::Append(append))
    );
}
