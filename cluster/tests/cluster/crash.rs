//! Kill -9 loops: this test binary re-runs itself as a child that hands out sequencer values as
//! fast as it can, printing each one only after the sequencer returned it. The parent kills the
//! child with SIGKILL at a random moment, many times, and checks that no value was ever handed out
//! twice and that values keep increasing across restarts.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pyralog_cluster::sequencer::{Clock, Obelisk, ScarabGenerator, SystemClock};

const CHILD_ENV: &str = "PYRALOG_CRASH_CHILD";
const PATH_ENV: &str = "PYRALOG_CRASH_PATH";
const CLOCK_BACK_ENV: &str = "PYRALOG_CRASH_CLOCK_BACK_MS";
const ROUNDS: u64 = 100;

/// The child side; does nothing unless started by a parent below.
#[test]
#[ignore = "child process of the kill -9 tests; started by them"]
fn crash_child() {
    let Ok(kind) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = std::env::var(PATH_ENV).unwrap();
    let emit = |value: u64| println!("V {value}");
    match kind.as_str() {
        "obelisk" => {
            let mut obelisk = Obelisk::open(&path, 7).unwrap();
            loop {
                emit(obelisk.next_value().unwrap());
            }
        }
        "scarab" => {
            let back: u64 = std::env::var(CLOCK_BACK_ENV).unwrap().parse().unwrap();
            let clock = SteppedBack(back);
            let mut generator = ScarabGenerator::open(&path, 7, clock, 3).unwrap();
            loop {
                emit(generator.next_id().unwrap().0);
            }
        }
        other => panic!("unknown child kind {other}"),
    }
}

/// The system clock set back by a fixed amount.
struct SteppedBack(u64);

impl Clock for SteppedBack {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms() - self.0
    }
}

/// splitmix64: the kill moments derive from one printed seed.
fn random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn seed() -> u64 {
    let seed = std::env::var("PYRALOG_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("kill -9 loop seed: {seed} (rerun with PYRALOG_CRASH_SEED={seed})");
    seed
}

/// Runs the child once, kills it after it has handed out at least one value plus a random delay,
/// and returns every value it printed.
fn run_and_kill(kind: &str, path: &Path, extra_env: &[(&str, String)], rng: &mut u64) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash::crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, kind)
        .env(PATH_ENV, path)
        .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut values = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(value) = line.strip_prefix("V ") {
                if values.is_empty() {
                    let _ = tx.send(());
                }
                values.push(value.parse::<u64>().unwrap());
            }
        }
        values
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("child handed out no value within 60 s");
    std::thread::sleep(Duration::from_micros(random(rng) % 20_000));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

fn assert_strictly_increasing(all: &[u64]) {
    for pair in all.windows(2) {
        assert!(pair[0] < pair[1], "value {} handed out after {}", pair[1], pair[0]);
    }
}

#[test]
fn obelisk_never_repeats_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("obelisk");
    let mut rng = seed();
    let mut all = Vec::new();
    for _ in 0..ROUNDS {
        let values = run_and_kill("obelisk", &path, &[], &mut rng);
        assert!(!values.is_empty());
        all.extend(values);
        // What the next process will start from is above everything handed out so far.
        assert!(Obelisk::open(&path, 7).unwrap().peek() > *all.last().unwrap());
    }
    assert_strictly_increasing(&all);
    eprintln!("{} values over {ROUNDS} kills", all.len());
}

#[test]
fn scarab_ids_stay_unique_and_increasing_across_kill_9_and_clock_steps_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scarab-hwm");
    let mut rng = seed();
    let mut all = Vec::new();
    for round in 0..ROUNDS {
        // Every restart sees a clock 250 ms further in the past.
        let back = (CLOCK_BACK_ENV, (round * 250).to_string());
        all.extend(run_and_kill("scarab", &path, &[back], &mut rng));
    }
    assert_strictly_increasing(&all);
    eprintln!("{} ids over {ROUNDS} kills", all.len());
}
