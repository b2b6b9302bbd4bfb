//! The AssemblyScript example (contracts/examples/assemblyscript): compiled with `asc` (which
//! `make deps` installs into the cache when npm is present; `PYRALOG_ASC` names another) and run
//! as a log constraint runs, with a record's environment. Without `asc` the test says so and
//! passes.

use std::path::PathBuf;
use std::sync::Arc;

use pyralog_contracts::{Call, ContractError, Env, Field, Limits, Runtime, Storage};

struct Empty;

impl Storage for Empty {
    fn get(&self, _key: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

fn asc() -> Option<PathBuf> {
    let path = match std::env::var_os("PYRALOG_ASC") {
        Some(path) => PathBuf::from(path),
        None => {
            PathBuf::from(std::env::var_os("HOME")?).join(".cache/pyralog/tools/npm/node_modules/.bin/asc")
        }
    };
    path.exists().then_some(path)
}

#[test]
fn the_assemblyscript_constraint_compiles_and_refuses_what_it_should() {
    let Some(asc) = asc() else {
        eprintln!(
            "SKIPPED: no AssemblyScript compiler (make deps installs it where npm is present, or set PYRALOG_ASC)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/assemblyscript/keyed_values.ts");
    let out = dir.path().join("keyed_values.wasm");
    // The flags of package.json's build script.
    // asc resolves its input against its working directory, which may be reached by another
    // path than the source (a symlinked checkout): run it beside the source.
    let built = std::process::Command::new(&asc)
        .current_dir(source.parent().unwrap())
        .arg(source.file_name().unwrap())
        .arg("--outFile")
        .arg(&out)
        .args([
            "--runtime",
            "stub",
            "--use",
            "abort=",
            "--optimizeLevel",
            "3",
            "--shrinkLevel",
            "0",
            "--noAssert",
        ])
        .output()
        .unwrap();
    assert!(built.status.success(), "asc: {}", String::from_utf8_lossy(&built.stderr));
    let runtime = Runtime::new(Limits::default());
    let contract =
        runtime.compile(&std::fs::read(&out).unwrap()).expect("no floats, only pyralog_v1 imports");
    let check = |env: Env| {
        let call = Call { entry: "check", input: &[], env: &env, fuel: 100_000 };
        runtime.run(&contract, call, Arc::new(Empty)).map(drop)
    };
    let record = |key: Option<&[u8]>, value: &[u8]| {
        let env = Env::default().with(Field::RecordValue, value);
        match key {
            Some(key) => env.with(Field::RecordKey, key),
            None => env,
        }
    };
    assert_eq!(check(record(Some(b"k"), b"v")), Ok(()));
    assert_eq!(check(record(None, b"v")), Err(ContractError::Refused("records need a key".into())));
    assert_eq!(
        check(record(Some(b"k"), b"")),
        Err(ContractError::Refused("values must not be empty".into()))
    );
}
