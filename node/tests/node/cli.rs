//! The `pyralog` binary as an operator runs it: keys.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pyralog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pyralog")).args(args).output().expect("run pyralog")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A temporary directory holding a freshly generated `node.key`.
fn generated_key() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    let out = pyralog(&["keys", "generate", "--out", path(&key)]);
    assert!(out.status.success(), "{}", stderr(&out));
    (dir, key)
}

#[test]
fn version_is_printed() {
    let out = pyralog(&["--version"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), format!("pyralog {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn generated_keys_show_the_same_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    let generated = pyralog(&["keys", "generate", "--out", path(&key)]);
    assert!(generated.status.success(), "{}", stderr(&generated));
    let public = stdout(&generated).trim().to_owned();
    assert!(public.starts_with("pyrpub1"), "{public}");
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);

    let shown = pyralog(&["keys", "show", path(&key)]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert_eq!(stdout(&shown).trim(), public);

    let json = pyralog(&["keys", "show", "--json", path(&key)]);
    let value: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(value["public_key"], public.as_str());
    assert_eq!(value["type"], "pyralog/ed25519");
    assert!(value.get("secret_key").is_none());
}

#[test]
fn a_world_readable_key_file_is_refused() {
    let (_dir, key) = generated_key();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();

    let shown = pyralog(&["keys", "show", path(&key)]);
    assert_eq!(shown.status.code(), Some(1));
    assert!(stdout(&shown).is_empty());
    let message = stderr(&shown);
    assert!(message.contains("readable by others (mode 0644)"), "{message}");
    assert!(message.contains("chmod 600"), "{message}");
}

#[test]
fn an_existing_key_is_never_overwritten() {
    let (_dir, key) = generated_key();
    let before = fs::read(&key).unwrap();
    let again = pyralog(&["keys", "generate", "--out", path(&key)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    assert_eq!(fs::read(&key).unwrap(), before);
}

#[test]
fn missing_and_malformed_files_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = pyralog(&["keys", "show", path(&dir.path().join("absent"))]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("No such file"), "{}", stderr(&missing));

    let junk = dir.path().join("junk.key");
    fs::write(&junk, "{}").unwrap();
    fs::set_permissions(&junk, fs::Permissions::from_mode(0o600)).unwrap();
    let out = pyralog(&["keys", "show", path(&junk)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not a Pyralog key file"), "{}", stderr(&out));
}

/// `pyralog testnet` (tunnels by default) writes every key a member needs; a config missing one,
/// holding a malformed one, pointing at a truncated Rosenpass key, or with a tunnel secret
/// readable by others is refused at start with the member, field or file named, before anything
/// is opened.
#[test]
fn tunnel_keys_are_written_and_bad_ones_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = pyralog(&["testnet", "--nodes", "2", "--no-chain", "--out", path(dir.path())]);
    assert!(out.status.success(), "{}", stderr(&out));
    let base = dir.path().join("node0");
    let config = fs::read_to_string(base.join("config.toml")).unwrap();
    assert!(config.contains("transport = \"wireguard\""), "{config}");
    assert_eq!(fs::metadata(base.join("wireguard.key")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(base.join("rosenpass.secret")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(base.join("rosenpass.pub")).unwrap().len(), 524_160);
    assert_eq!(
        fs::read(base.join("peers/member1.rosenpass.pub")).unwrap(),
        fs::read(dir.path().join("node1/rosenpass.pub")).unwrap(),
        "node0 holds a copy of node1's Rosenpass key"
    );

    let start = |config: &str| {
        fs::write(base.join("config.toml"), config).unwrap();
        let out = pyralog(&["start", "--base-path", path(&base)]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        stderr(&out)
    };
    let member1_key = config.lines().filter(|l| l.starts_with("wireguard_public_key")).nth(1).unwrap();
    let missing = start(&config.replace(&format!("{member1_key}\n"), ""));
    assert!(missing.contains("cluster member 1 has no wireguard_public_key"), "{missing}");
    let malformed = start(&config.replace(member1_key, "wireguard_public_key = \"not a key\""));
    assert!(malformed.contains("cluster member 1: wireguard_public_key"), "{malformed}");
    for secret in ["wireguard.key", "rosenpass.secret"] {
        fs::set_permissions(base.join(secret), fs::Permissions::from_mode(0o644)).unwrap();
        let exposed = start(&config);
        assert!(exposed.contains("readable by others") && exposed.contains(secret), "{exposed}");
        fs::set_permissions(base.join(secret), fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::write(base.join("peers/member1.rosenpass.pub"), [0u8; 100]).unwrap();
    let truncated = start(&config);
    assert!(truncated.contains("100 bytes, expected 524160"), "{truncated}");
}

/// `pyralog testnet --starting-ip-address` gives node i the address IP + i with the same ports on
/// every node (for network namespaces or separate hosts), in its own and its peers' settings.
#[test]
fn testnet_starting_ip_address_gives_each_node_its_own_host() {
    let dir = tempfile::tempdir().unwrap();
    let out = pyralog(&[
        "testnet",
        "--nodes",
        "3",
        "--dev",
        "--starting-ip-address",
        "10.77.0.1",
        "--out",
        path(dir.path()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = fs::read_to_string(dir.path().join("node2/config.toml")).unwrap();
    for expected in [
        "raft_addr = \"10.77.0.3:30333\"",
        "addr = \"10.77.0.3:9944\"",
        "addr = \"10.77.0.3:9615\"",
        "listen = \"10.77.0.3:9092\"",
        "raft_addr = \"10.77.0.1:30333\"",
        "\"/ip4/10.77.0.3/tcp/30433\"",
        "/ip4/10.77.0.1/tcp/30433/p2p/",
        "0 = \"10.77.0.1:9092\"",
    ] {
        assert!(config.contains(expected), "{expected} missing from {config}");
    }
    assert!(!config.contains("127.0.0.1"), "{config}");
}
