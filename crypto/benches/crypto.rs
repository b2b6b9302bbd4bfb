//! Crypto benchmarks: hash functions side by side, Merkle appends, and proof generation and
//! verification at 2^20 leaves (a real in-memory tree) and 2^30 leaves (a synthetic store).
//!
//! Run: `make bench` (= `cargo bench -p pyralog-crypto --bench crypto`).

use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pyralog_crypto::Digest;
use pyralog_crypto::merkle::{
    Blake3Merkle, MemoryNodeStore, MerkleHasher, MerkleTree, NodeId, NodeReader, Sha256Rfc6962,
    consistency_path, inclusion_path, root_at, verify_consistency, verify_inclusion,
};
use sha2::Digest as _;

/// A tree of `size` identical leaves: every perfect subtree of a level has the same root, so the
/// store is one hash per level, yet every proof is a real proof that verifies against a real
/// root. Lets us measure proof costs at 2^30 leaves without 64 GiB of nodes.
struct UniformStore {
    size: u64,
    level_roots: Vec<Digest>,
}

impl UniformStore {
    fn new<H: MerkleHasher>(size: u64, leaf: &[u8]) -> Self {
        let mut level_roots = vec![H::hash_leaf(leaf)];
        for _ in 1..64 {
            let below = *level_roots.last().unwrap();
            level_roots.push(H::hash_children(&below, &below));
        }
        UniformStore { size, level_roots }
    }
}

impl NodeReader for UniformStore {
    type Error = Infallible;
    fn node(&self, id: NodeId) -> Result<Option<Digest>, Infallible> {
        let complete = (id.index + 1).checked_shl(u32::from(id.level)).is_some_and(|end| end <= self.size);
        Ok(complete.then(|| self.level_roots[usize::from(id.level)]))
    }
}

/// Deterministic pseudo-random sequence (splitmix64) so runs are comparable.
fn indices(count: usize, bound: u64) -> Vec<u64> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % bound
        })
        .collect()
}

fn hashes(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash");
    for len in [64usize, 256, 4096] {
        let data = vec![0xa5u8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("blake3", len), &data, |b, data| {
            b.iter(|| blake3::hash(black_box(data)))
        });
        group.bench_with_input(BenchmarkId::new("sha256", len), &data, |b, data| {
            b.iter(|| sha2::Sha256::digest(black_box(data)))
        });
    }
    let (left, right) = (Digest([1; 32]), Digest([2; 32]));
    group.throughput(Throughput::Elements(1));
    group.bench_function("merkle_node/blake3", |b| {
        b.iter(|| Blake3Merkle::hash_children(black_box(&left), black_box(&right)))
    });
    group.bench_function("merkle_node/sha256", |b| {
        b.iter(|| Sha256Rfc6962::hash_children(black_box(&left), black_box(&right)))
    });
    group.finish();
}

fn append<H: MerkleHasher>(c: &mut Criterion, name: &str) {
    const BATCH: usize = 4096;
    let records: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; 256]).collect();
    let mut group = c.benchmark_group("merkle_append_256B");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            || MerkleTree::<H, _>::new(MemoryNodeStore::new()),
            |mut tree| {
                tree.append_batch(records.iter().map(Vec::as_slice)).unwrap();
                tree
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn appends(c: &mut Criterion) {
    append::<Blake3Merkle>(c, "blake3");
    append::<Sha256Rfc6962>(c, "sha256");
}

fn proofs_over<R: NodeReader>(
    c: &mut Criterion,
    label: &str,
    store: &R,
    size: u64,
    leaf_of: impl Fn(u64) -> Vec<u8>,
) {
    let root = root_at::<Blake3Merkle, _>(store, size).unwrap();
    let picks = indices(1024, size);
    let mut group = c.benchmark_group(format!("proof_{label}"));
    group.throughput(Throughput::Elements(1));

    let mut next = picks.iter().cycle();
    group.bench_function("inclusion_prove", |b| {
        b.iter(|| inclusion_path::<Blake3Merkle, _>(store, *next.next().unwrap(), size).unwrap())
    });
    let proofs: Vec<_> = picks
        .iter()
        .map(|&i| {
            (
                i,
                Blake3Merkle::hash_leaf(&leaf_of(i)),
                inclusion_path::<Blake3Merkle, _>(store, i, size).unwrap(),
            )
        })
        .collect();
    let mut next = proofs.iter().cycle();
    group.bench_function("inclusion_verify", |b| {
        b.iter(|| {
            let (index, leaf, path) = next.next().unwrap();
            verify_inclusion::<Blake3Merkle>(*index, size, leaf, path, &root).unwrap()
        })
    });

    let olds: Vec<u64> = picks.iter().map(|&i| i.max(1)).collect();
    let mut next = olds.iter().cycle();
    group.bench_function("consistency_prove", |b| {
        b.iter(|| consistency_path::<Blake3Merkle, _>(store, *next.next().unwrap(), size).unwrap())
    });
    let proofs: Vec<_> = olds
        .iter()
        .map(|&old| {
            let old_root = root_at::<Blake3Merkle, _>(store, old).unwrap();
            (old, old_root, consistency_path::<Blake3Merkle, _>(store, old, size).unwrap())
        })
        .collect();
    let mut next = proofs.iter().cycle();
    group.bench_function("consistency_verify", |b| {
        b.iter(|| {
            let (old, old_root, path) = next.next().unwrap();
            verify_consistency::<Blake3Merkle>(*old, size, old_root, &root, path).unwrap()
        })
    });
    group.finish();
}

fn proofs(c: &mut Criterion) {
    const SIZE_2_20: u64 = 1 << 20;
    let mut tree = MerkleTree::<Blake3Merkle, _>::new(MemoryNodeStore::new());
    let leaves: Vec<[u8; 8]> = (0..SIZE_2_20).map(u64::to_be_bytes).collect();
    tree.append_batch(leaves.iter().map(|l| &l[..])).unwrap();
    proofs_over(c, "2^20", tree.store(), SIZE_2_20, |i| i.to_be_bytes().to_vec());
    drop(tree);

    const SIZE_2_30: u64 = 1 << 30;
    let store = UniformStore::new::<Blake3Merkle>(SIZE_2_30, b"uniform leaf");
    proofs_over(c, "2^30", &store, SIZE_2_30, |_| b"uniform leaf".to_vec());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = hashes, appends, proofs
}
criterion_main!(benches);
