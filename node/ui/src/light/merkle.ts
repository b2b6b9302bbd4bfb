/**
 * Partition Merkle trees (spec §5): RFC 6962 / RFC 9162 trees under `H_merkle`, their roots,
 * and the inclusion and consistency proof checks. The checks walk the tree's shape from the
 * sizes to learn each proof element's side, so a proof with a missing, extra or reordered element
 * is refused by length or by root.
 */

import { equal, toHex } from './bytes.ts';
import { hashIn } from './hash.ts';
import type { PostcardReader } from './postcard.ts';

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

/** `H_merkle(0x00 || data)`. */
export function leafHash(data: Uint8Array): Uint8Array {
  return hashIn('merkle', LEAF, data);
}

/** `H_merkle(0x01 || left || right)`. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return hashIn('merkle', NODE, left, right);
}

/** `H_merkle("")`: the root of the tree with no leaves. */
export function emptyRoot(): Uint8Array {
  return hashIn('merkle');
}

/** The largest power of two strictly below `n` (n >= 2): where a tree of n leaves splits. */
function split(n: bigint): bigint {
  let k = 1n;
  while (k * 2n < n) k *= 2n;
  return k;
}

/** RFC 9162 `MTH` of the leaf hashes `leaves`. */
export function rootOf(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return emptyRoot();
  if (leaves.length === 1) return leaves[0]!;
  const k = Number(split(BigInt(leaves.length)));
  return nodeHash(rootOf(leaves.slice(0, k)), rootOf(leaves.slice(k)));
}

/** Leaf `index` is in the tree of `size` leaves: the sibling hashes, leaf level first. */
export interface InclusionProof {
  /** The leaf's position. */
  readonly index: bigint;
  /** The tree size the proof is for. */
  readonly size: bigint;
  /** Sibling hashes, leaf level first. */
  readonly path: readonly Uint8Array[];
}

/** The tree of `oldSize` leaves is a prefix of the tree of `newSize`: RFC 9162 `SUBPROOF` order. */
export interface ConsistencyProof {
  /** The older size. */
  readonly oldSize: bigint;
  /** The newer size. */
  readonly newSize: bigint;
  /** Proof hashes. */
  readonly path: readonly Uint8Array[];
}

/** An inclusion proof in postcard: `varint(index) || varint(size) || varint(n) || n × 32`. */
export function readInclusionProof(r: PostcardReader): InclusionProof {
  return { index: r.u64(), size: r.u64(), path: r.seq((x) => x.digest(), 32) };
}

/** A consistency proof in postcard: `varint(old) || varint(new) || varint(n) || n × 32`. */
export function readConsistencyProof(r: PostcardReader): ConsistencyProof {
  return { oldSize: r.u64(), newSize: r.u64(), path: r.seq((x) => x.digest(), 32) };
}

/**
 * Why `leaf` (a leaf hash) is not leaf `index` of the tree of `size` leaves with root `root` by
 * `path`, in the Rust code's words; undefined when it is.
 */
export function inclusionProblem(
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  path: readonly Uint8Array[],
  root: Uint8Array,
): string | undefined {
  if (index >= size) return `leaf index ${index} is not in a tree of ${size} leaves`;
  // The siblings' sides, root first: true when the sibling is the left child.
  const leftSiblings: boolean[] = [];
  let start = 0n;
  let end = size;
  while (end - start > 1n) {
    const mid = start + split(end - start);
    if (index < mid) {
      leftSiblings.push(false);
      end = mid;
    } else {
      leftSiblings.push(true);
      start = mid;
    }
  }
  if (path.length !== leftSiblings.length) {
    return `proof has ${path.length} hashes, the claimed sizes need ${leftSiblings.length}`;
  }
  let running = leaf;
  leftSiblings.reverse().forEach((left, i) => {
    const sibling = path[i]!;
    running = left ? nodeHash(sibling, running) : nodeHash(running, sibling);
  });
  if (!equal(running, root)) return `inclusion proof leads to root ${toHex(running)}, expected ${toHex(root)}`;
  return undefined;
}

/**
 * Why the tree `(oldSize, oldRoot)` is not shown a prefix of `(newSize, newRoot)` by `path`, in
 * the Rust code's words; undefined when it is. Both roots are checked.
 */
export function consistencyProblem(
  oldSize: bigint,
  newSize: bigint,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  path: readonly Uint8Array[],
): string | undefined {
  const mustBeEmpty = (): string | undefined =>
    path.length === 0 ? undefined : `proof has ${path.length} hashes, the claimed sizes need 0`;
  if (oldSize > newSize) return `old tree size ${oldSize} is larger than new tree size ${newSize}`;
  if (oldSize === newSize) {
    const problem = mustBeEmpty();
    if (problem !== undefined) return problem;
    if (!equal(oldRoot, newRoot)) {
      return `consistency proof does not reproduce the new root ${toHex(newRoot)} (got ${toHex(oldRoot)})`;
    }
    return undefined;
  }
  if (oldSize === 0n) {
    const problem = mustBeEmpty();
    if (problem !== undefined) return problem;
    const empty = emptyRoot();
    if (!equal(oldRoot, empty)) {
      return `consistency proof does not reproduce the old root ${toHex(oldRoot)} (got ${toHex(empty)})`;
    }
    return undefined;
  }
  // The descent of SUBPROOF(old, D[0..new), true): the siblings' sides, root first.
  const leftSiblings: boolean[] = [];
  let start = 0n;
  let end = newSize;
  let within = oldSize;
  let wholeOldTree = true;
  while (within !== end - start) {
    const k = split(end - start);
    if (within <= k) {
      leftSiblings.push(false);
      end = start + k;
    } else {
      leftSiblings.push(true);
      start += k;
      within -= k;
      wholeOldTree = false;
    }
  }
  // With the whole old tree as the stopping subtree (old is a power of two), its root is known.
  const hasSeed = !wholeOldTree;
  const expected = leftSiblings.length + (hasSeed ? 1 : 0);
  if (path.length !== expected) return `proof has ${path.length} hashes, the claimed sizes need ${expected}`;
  const seed = hasSeed ? path[0]! : oldRoot;
  const siblings = hasSeed ? path.slice(1) : path;
  let fo = seed;
  let fn = seed;
  leftSiblings.reverse().forEach((left, i) => {
    const c = siblings[i]!;
    if (left) {
      fo = nodeHash(c, fo);
      fn = nodeHash(c, fn);
    } else {
      fn = nodeHash(fn, c);
    }
  });
  if (!equal(fo, oldRoot)) {
    return `consistency proof does not reproduce the old root ${toHex(oldRoot)} (got ${toHex(fo)})`;
  }
  if (!equal(fn, newRoot)) {
    return `consistency proof does not reproduce the new root ${toHex(newRoot)} (got ${toHex(fn)})`;
  }
  return undefined;
}
