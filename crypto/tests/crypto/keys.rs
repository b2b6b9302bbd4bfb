//! Key files on disk: permissions, round trips, and every malformed file.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use pyralog_crypto::Keypair;
use pyralog_crypto::keys::{KeyFileError, load_key_file, write_key_file};

fn set_mode(path: &std::path::Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn written_keys_load_back_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let keypair = Keypair::generate();
    write_key_file(&path, &keypair).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let loaded = load_key_file(&path).unwrap();
    assert_eq!(loaded.public(), keypair.public());
    assert_eq!(*loaded.secret(), *keypair.secret());
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn existing_files_are_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let first = Keypair::generate();
    write_key_file(&path, &first).unwrap();
    let err = write_key_file(&path, &Keypair::generate()).unwrap_err();
    assert!(matches!(err, KeyFileError::AlreadyExists { .. }), "{err}");
    assert_eq!(load_key_file(&path).unwrap().public(), first.public());
}

#[test]
fn files_readable_by_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    write_key_file(&path, &Keypair::generate()).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
        set_mode(&path, mode);
        match load_key_file(&path) {
            Err(KeyFileError::InsecurePermissions { mode: seen, .. }) => assert_eq!(seen, mode),
            other => panic!("mode {mode:o} gave {other:?}"),
        }
        let message = load_key_file(&path).unwrap_err().to_string();
        assert!(message.contains("readable by others") && message.contains("chmod 600"), "{message}");
    }
    set_mode(&path, 0o400);
    assert!(load_key_file(&path).is_ok());
}

#[test]
fn malformed_files_get_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, contents: &str| {
        let path = dir.path().join(name);
        fs::write(&path, contents).unwrap();
        set_mode(&path, 0o600);
        path
    };
    let good = Keypair::generate();
    let other = Keypair::generate();
    let secret = hex::encode(*good.secret());

    let cases = [
        ("garbage", "not json".to_owned()),
        (
            "wrong-type",
            format!(r#"{{"type":"rsa","public_key":"{}","secret_key":"0x{secret}"}}"#, good.public()),
        ),
        (
            "bad-hex",
            format!(r#"{{"type":"pyralog/ed25519","public_key":"{}","secret_key":"0xzz"}}"#, good.public()),
        ),
        (
            "bad-public",
            format!(r#"{{"type":"pyralog/ed25519","public_key":"pyrpub1xyz","secret_key":"0x{secret}"}}"#),
        ),
        (
            "extra-field",
            format!(
                r#"{{"type":"pyralog/ed25519","public_key":"{}","secret_key":"0x{secret}","x":1}}"#,
                good.public()
            ),
        ),
        ("too-large", " ".repeat(5000)),
    ];
    for (name, contents) in cases {
        let err = load_key_file(&write(name, &contents)).unwrap_err();
        assert!(matches!(err, KeyFileError::Malformed { .. }), "{name}: {err}");
    }
    let mismatch = format!(
        r#"{{"type":"pyralog/ed25519","public_key":"{}","secret_key":"0x{secret}"}}"#,
        other.public()
    );
    let err = load_key_file(&write("mismatch", &mismatch)).unwrap_err();
    assert!(matches!(err, KeyFileError::PublicKeyMismatch { .. }), "{err}");

    let missing = load_key_file(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(missing, KeyFileError::Io { .. }), "{missing}");
}

/// Raw key bytes that are not a curve point, or a point of small order, are refused every time
/// they are asked about (the decompression cache keeps only keys that passed), and a valid key's
/// bytes keep parsing to the same key.
#[test]
fn invalid_and_weak_key_bytes_are_refused_every_time() {
    use pyralog_crypto::PublicKey;
    use pyralog_crypto::keys::KeyParseError;

    let identity = {
        let mut bytes = [0u8; 32];
        bytes[0] = 1; // y = 1: the neutral point, of order 1
        bytes
    };
    let off_curve = (2u8..=255)
        .map(|y| {
            let mut bytes = [0u8; 32];
            bytes[0] = y;
            bytes
        })
        .find(|bytes| PublicKey::from_bytes(bytes) == Err(KeyParseError::NotOnCurve))
        .expect("some small y has no point");
    let valid = *pyralog_crypto::Keypair::from_secret(&[3; 32]).public().as_bytes();
    for _ in 0..3 {
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyParseError::WeakKey));
        assert_eq!(PublicKey::from_bytes(&off_curve), Err(KeyParseError::NotOnCurve));
        assert_eq!(PublicKey::from_bytes(&valid).map(|k| *k.as_bytes()), Ok(valid));
    }
}
