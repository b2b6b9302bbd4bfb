//! zk costs: Poseidon and Rescue-Prime tree appends; Groth16 membership proofs at depths 16, 20 and 32
//! (setup, prove, verify; proof, key sizes and constraint counts printed); append-batch STARKs for
//! k = 64, 1024 and 16384 leaves (prove, verify, proof size; `PYRALOG_BENCH_STARK_K=64,4096` picks
//! others). `make bench-zk`.

use std::hint::black_box;
use std::time::Instant;

use ark_bn254::Fr;
use ark_relations::r1cs::{ConstraintSynthesizer, ConstraintSystem};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pyralog_zk::PoseidonTree;
use pyralog_zk::groth16::{
    self, MembershipCircuit, MembershipStatement, MembershipWitness, prepare, proof_to_bytes,
    proving_key_from_bytes, proving_key_to_bytes, verifying_key_to_bytes,
};
use pyralog_zk::poseidon::RecordFields;

fn record(i: u64) -> RecordFields {
    RecordFields::of_record(Some(&i.to_le_bytes()), b"a credential of some realistic length", Some(&[7; 32]))
}

fn rescue_leaf(i: u64) -> pyralog_zk::rescue::RescueDigest {
    pyralog_zk::rescue::record_leaf(Some(&i.to_le_bytes()), b"a value of some length")
}

fn bench_tree(c: &mut Criterion) {
    // A depth-32 tree already holding 100,000 leaves: one append (the record's leaf, then the
    // subtrees it completes), and the root a checkpoint needs (the right edge, 32 hashes).
    let mut tree = PoseidonTree::new(32).unwrap();
    for i in 0..100_000 {
        tree.append(record(i).leaf()).unwrap();
    }
    let mut next = 100_000;
    c.bench_function("zk/poseidon_tree_append_record_depth_32", |b| {
        b.iter(|| {
            next += 1;
            tree.append(record(next).leaf()).unwrap()
        })
    });
    c.bench_function("zk/poseidon_tree_root_depth_32", |b| b.iter(|| black_box(tree.root())));
    let mut rescue = pyralog_zk::RescueTree::new(32).unwrap();
    for i in 0..100_000 {
        rescue.append(rescue_leaf(i)).unwrap();
    }
    let mut next = 100_000;
    c.bench_function("zk/rescue_tree_append_record_depth_32", |b| {
        b.iter(|| {
            next += 1;
            rescue.append(rescue_leaf(next)).unwrap()
        })
    });
    c.bench_function("zk/rescue_tree_root_depth_32", |b| b.iter(|| black_box(rescue.root())));
    c.bench_function("zk/poseidon_hash_two_elements", |b| {
        b.iter(|| black_box(pyralog_zk::poseidon::node(black_box(Fr::from(1u64)), Fr::from(2u64))))
    });
    let mut state = [Fr::from(0u64), Fr::from(1u64), Fr::from(2u64)];
    c.bench_function("zk/poseidon_permutation", |b| {
        b.iter(|| {
            pyralog_zk::poseidon::permute(black_box(&mut state));
            black_box(state[1])
        })
    });
    // The yardstick, same machine and run: light-poseidon's circom Poseidon of two inputs (one
    // width-3 permutation, as ours: the same hash with our tag in the capacity element).
    let mut circom = light_poseidon::Poseidon::<Fr>::new_circom(2).unwrap();
    c.bench_function("zk/light_poseidon_hash_two_elements", |b| {
        use light_poseidon::PoseidonHasher;
        b.iter(|| black_box(circom.hash(&[black_box(Fr::from(1u64)), Fr::from(2u64)]).unwrap()))
    });
}

fn bench_groth16(c: &mut Criterion) {
    let mut group = c.benchmark_group("zk/groth16");
    group.sample_size(10);
    for depth in [16usize, 20, 32] {
        let started = Instant::now();
        let keys = groth16::setup(depth).unwrap();
        let setup = started.elapsed();
        let cs = ConstraintSystem::<Fr>::new_ref();
        MembershipCircuit::blank(depth).generate_constraints(cs.clone()).unwrap();
        println!(
            "groth16 depth {depth}: {} constraints, setup {:.2} s, proving key {} bytes, verifying key {} bytes",
            cs.num_constraints(),
            setup.as_secs_f64(),
            proving_key_to_bytes(&keys.proving).len(),
            verifying_key_to_bytes(&keys.verifying).len(),
        );

        let mut tree = PoseidonTree::new(depth).unwrap();
        for i in 0..1_000 {
            tree.append(record(i).leaf()).unwrap();
        }
        let statement = MembershipStatement {
            root: tree.root(),
            epoch: 1,
            size: tree.len(),
            disclosed_key: None,
            nonce: Fr::from(42u64),
        };
        let witness = MembershipWitness::of_record(&record(500), tree.path(500, tree.len()).unwrap());
        let proof = groth16::prove(&keys, &statement, &witness).unwrap();
        println!("groth16 depth {depth}: proof {} bytes", proof_to_bytes(&proof).len());
        group.bench_function(format!("prove_depth_{depth}"), |b| {
            b.iter_batched(
                || witness.clone(),
                |w| groth16::prove(&keys, &statement, &w).unwrap(),
                BatchSize::SmallInput,
            )
        });
        let pk_bytes = proving_key_to_bytes(&keys.proving);
        group.bench_function(format!("load_proving_key_depth_{depth}"), |b| {
            b.iter(|| proving_key_from_bytes(black_box(&pk_bytes)).unwrap())
        });
        let vk = prepare(&keys.verifying);
        group.bench_function(format!("verify_depth_{depth}"), |b| {
            b.iter(|| groth16::verify(&vk, black_box(&statement), black_box(&proof)).unwrap())
        });
    }
    group.finish();
}

fn bench_stark(c: &mut Criterion) {
    use pyralog_zk::stark::{prove_appends, trace_rows, verify_appends};
    let mut group = c.benchmark_group("zk/stark");
    group.sample_size(10);
    // Batches appended to a tree of 100,000 leaves.
    let base = 100_000u64;
    let mut sizes: Vec<u64> = std::env::var("PYRALOG_BENCH_STARK_K")
        .map(|list| list.split(',').map(|k| k.trim().parse().expect("a batch size")).collect())
        .unwrap_or_else(|_| vec![64, 1024, 16_384]);
    // Increasing, so the peak memory printed after each size is that size's.
    sizes.sort_unstable();
    let mut tree = pyralog_zk::RescueTree::new(32).unwrap();
    for i in 0..base + sizes.iter().max().copied().unwrap_or(0) {
        tree.append(rescue_leaf(i)).unwrap();
    }
    for k in sizes {
        let started = Instant::now();
        let (statement, proof) = prove_appends(&tree, base, base + k).unwrap();
        let prove = started.elapsed();
        let started = Instant::now();
        verify_appends(&statement, &proof).unwrap();
        let verify = started.elapsed();
        println!(
            "stark k={k}: trace {} rows, prove {:.2} s, verify {:.2} ms, proof {} bytes, {} bits conjectured, peak memory so far {}",
            trace_rows(base, k).expect("fits"),
            prove.as_secs_f64(),
            verify.as_secs_f64() * 1e3,
            proof.to_bytes().len(),
            proof.security_bits(),
            peak_memory(),
        );
        // Proving the larger batches takes minutes: they are timed once, above.
        if k <= 1024 {
            group.bench_function(format!("prove_k_{k}"), |b| {
                b.iter(|| prove_appends(&tree, base, base + k).unwrap())
            });
        }
        group.bench_function(format!("verify_k_{k}"), |b| {
            b.iter(|| verify_appends(black_box(&statement), black_box(&proof)).unwrap())
        });
    }
    group.finish();
}

/// The process's peak resident memory (Linux's `VmHWM`), which only grows: the batch sizes
/// run in increasing order, so after the largest it is that batch's peak.
fn peak_memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    match kib {
        Some(kib) => format!("{:.2} GB", kib as f64 * 1024.0 / 1e9),
        None => "unknown (no /proc/self/status)".into(),
    }
}

criterion_group!(benches, bench_tree, bench_groth16, bench_stark);
criterion_main!(benches);
