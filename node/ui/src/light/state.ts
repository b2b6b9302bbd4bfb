/**
 * The chain state (spec §10): its Jellyfish Merkle tree proofs under `H_chain_state`, the state
 * keys a verifier builds, and the state values it decodes (postcard).
 */

import { concat, equal, toHex, utf8 } from './bytes.ts';
import type { Step } from './errors.ts';
import { hashIn } from './hash.ts';
import { decodeAll, type PostcardReader } from './postcard.ts';
import { readCheckpointCertificate, type Checkpoint } from './checkpoint.ts';
import type { QuorumCertificate } from './quorum.ts';

/** The JMT's placeholder for an empty subtree: these 32 ASCII bytes, not a hash. */
export const PLACEHOLDER = utf8('SPARSE_MERKLE_PLACEHOLDER_HASH__');
const LEAF_PREFIX = utf8('JMT::LeafNode');
const INTERNAL_PREFIX = utf8('JMT::IntrnalNode');

/** A proof sibling: its contents, not its hash (the JMT checks node types this way). */
export type SparseMerkleNode =
  | { readonly kind: 'null' }
  | { readonly kind: 'internal'; readonly left: Uint8Array; readonly right: Uint8Array }
  | { readonly kind: 'leaf'; readonly keyHash: Uint8Array; readonly valueHash: Uint8Array };

/** A JMT proof: the leaf where the key would be (if any) and the siblings, lowest first. */
export interface StateProof {
  /** `(key_hash, value_hash)` of the leaf on the key's path, if one. */
  readonly leaf: { readonly keyHash: Uint8Array; readonly valueHash: Uint8Array } | null;
  /** Siblings from the bottom to the root. */
  readonly siblings: readonly SparseMerkleNode[];
}

/** A state value (or its absence) with its proof (§12.6 `ProvenValue`). */
export interface ProvenValue {
  /** The value's bytes, or null when the key has none. */
  readonly value: Uint8Array | null;
  /** Its proof against a state root. */
  readonly proof: StateProof;
}

/** `leaf(k, v) = H("JMT::LeafNode" || k || v)`. */
export function jmtLeaf(keyHash: Uint8Array, valueHash: Uint8Array): Uint8Array {
  return hashIn('chain_state', LEAF_PREFIX, keyHash, valueHash);
}

/** `internal(l, r) = H("JMT::IntrnalNode" || l || r)`. */
export function jmtInternal(left: Uint8Array, right: Uint8Array): Uint8Array {
  return hashIn('chain_state', INTERNAL_PREFIX, left, right);
}

function nodeHash(node: SparseMerkleNode): Uint8Array {
  switch (node.kind) {
    case 'null':
      return PLACEHOLDER;
    case 'internal':
      return jmtInternal(node.left, node.right);
    case 'leaf':
      return jmtLeaf(node.keyHash, node.valueHash);
  }
}

/** A state proof in postcard (§10.2). */
export function readStateProof(r: PostcardReader): StateProof {
  const leaf = r.option((x) => ({ keyHash: x.digest(), valueHash: x.digest() }));
  const siblings = r.seq((x): SparseMerkleNode => {
    switch (x.variant(3, 'sparse Merkle node')) {
      case 0:
        return { kind: 'null' };
      case 1:
        return { kind: 'internal', left: x.digest(), right: x.digest() };
      default:
        return { kind: 'leaf', keyHash: x.digest(), valueHash: x.digest() };
    }
  });
  return { leaf, siblings };
}

/** The state proof of postcard `bytes` (`state_getProof`'s `proof`). */
export function decodeStateProof(bytes: Uint8Array): StateProof {
  return decodeAll(bytes, 'state proof', readStateProof);
}

/** A `ProvenValue` in postcard: `option(Vec<u8>) || proof`. */
export function readProvenValue(r: PostcardReader): ProvenValue {
  return { value: r.option((x) => x.byteVec()), proof: readStateProof(r) };
}

/** The bit `i` of `bytes`, 0 being the most significant bit of byte 0. */
function bit(bytes: Uint8Array, i: number): number {
  return (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
}

function commonPrefixBits(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  while (n < 256 && bit(a, n) === bit(b, n)) n++;
  return n;
}

/**
 * Why `proof` does not show that in the state with root `root`, `key` has `value` (null: has
 * none), in the JMT crate's words (§10.3); undefined when it does.
 */
export function stateProofProblem(
  root: Uint8Array,
  key: Uint8Array,
  value: Uint8Array | null,
  proof: StateProof,
): string | undefined {
  const n = proof.siblings.length;
  if (n > 256) return `Sparse Merkle Tree proof has more than 256 (${n}) siblings.`;
  const keyHash = hashIn('chain_state', key);
  const leaf = proof.leaf;
  if (value !== null) {
    if (leaf === null) return 'Expected inclusion proof. Found non-inclusion proof.';
    if (!equal(leaf.keyHash, keyHash)) {
      return `Keys do not match. Key in proof: ${toHex(leaf.keyHash)}. Expected key: ${toHex(keyHash)}.`;
    }
    const valueHash = hashIn('chain_state', value);
    if (!equal(leaf.valueHash, valueHash)) {
      return `Value hashes do not match. Value hash in proof: ${toHex(leaf.valueHash)}. Expected value hash: ${toHex(valueHash)}`;
    }
  } else if (leaf !== null) {
    if (equal(leaf.keyHash, keyHash)) return 'Expected non-inclusion proof, but key exists in proof.';
    if (commonPrefixBits(keyHash, leaf.keyHash) < n) {
      return 'Key would not have ended up in the subtree where the provided key in proof is the only existing key, if it existed. So this is not a valid non-inclusion proof.';
    }
  }
  let hash = leaf === null ? PLACEHOLDER : jmtLeaf(leaf.keyHash, leaf.valueHash);
  proof.siblings.forEach((sibling, i) => {
    const s = nodeHash(sibling);
    hash = bit(keyHash, n - 1 - i) === 1 ? jmtInternal(s, hash) : jmtInternal(hash, s);
  });
  if (!equal(hash, root)) {
    return `Root hashes do not match. Actual root hash: ${toHex(hash)}. Expected root hash: ${toHex(root)}.`;
  }
  return undefined;
}

// --- Keys (§10.4, §10.6) -------------------------------------------------------------------

/** `"cluster/" || cluster`. */
export function clusterKey(cluster: string): Uint8Array {
  return utf8(`cluster/${cluster}`);
}

/** `"anchor/" || cluster || "/" || log || "/" || decimal(partition)`. */
export function anchorKey(cluster: string, log: string, partition: number): Uint8Array {
  return utf8(`anchor/${cluster}/${log}/${partition}`);
}

/** `"account/" || key[32]`. */
export function accountKey(key: Uint8Array): Uint8Array {
  return concat(utf8('account/'), key);
}

/** `"code/" || code_hash[32]`. */
export function codeKey(codeHash: Uint8Array): Uint8Array {
  return concat(utf8('code/'), codeHash);
}

/** `"contract/" || id[32]`. */
export function contractKey(id: Uint8Array): Uint8Array {
  return concat(utf8('contract/'), id);
}

/** `"cstore/" || id[32] || key`. */
export function contractStorageKey(id: Uint8Array, key: Uint8Array): Uint8Array {
  return concat(utf8('cstore/'), id, key);
}

// --- Values (§10.5, §10.6) -----------------------------------------------------------------

/** A registered cluster: its owner, the member keys that certify checkpoints, their peers. */
export interface ClusterRecord {
  /** Who may re-register it. */
  readonly owner: Uint8Array;
  /** The members' checkpoint-signing keys. */
  readonly members: readonly Uint8Array[];
  /** Their overlay addresses. */
  readonly peers: readonly string[];
}

/** A partition's latest anchored checkpoint and the block that anchored it. */
export interface Anchor {
  /** The certified checkpoint. */
  readonly certificate: QuorumCertificate<Checkpoint>;
  /** The anchoring height (informative). */
  readonly height: bigint;
}

/** An account. */
export interface Account {
  /** Balance. */
  readonly balance: bigint;
  /** Next nonce. */
  readonly nonce: bigint;
}

/** A chain contract (§10.6). */
export interface ContractRecord {
  /** Its code hash. */
  readonly code: Uint8Array;
  /** Who instantiated it. */
  readonly creator: Uint8Array;
  /** The instantiating height. */
  readonly createdAt: bigint;
  /** Tokens it holds. */
  readonly balance: bigint;
}

/** The `ClusterRecord` of postcard state value `bytes`. */
export function decodeClusterRecord(bytes: Uint8Array, step: Step = 'encoding'): ClusterRecord {
  return decodeAll(bytes, 'cluster registration', (r) => ({
    owner: r.publicKey('owner'),
    members: r.seq((x) => x.publicKey('member'), 32),
    peers: r.seq((x) => x.string()),
  }), step);
}

/** The `Anchor` of postcard state value `bytes`. */
export function decodeAnchor(bytes: Uint8Array, step: Step = 'encoding'): Anchor {
  return decodeAll(bytes, 'anchored checkpoint', (r) => ({ certificate: readCheckpointCertificate(r), height: r.u64() }), step);
}

/** The `Account` of postcard state value `bytes`. */
export function decodeAccount(bytes: Uint8Array): Account {
  return decodeAll(bytes, 'account', (r) => ({ balance: r.u64(), nonce: r.u64() }));
}

/** The `ContractRecord` of postcard state value `bytes`. */
export function decodeContractRecord(bytes: Uint8Array): ContractRecord {
  return decodeAll(bytes, 'contract record', (r) => ({
    code: r.digest(),
    creator: r.publicKey('creator'),
    createdAt: r.u64(),
    balance: r.u64(),
  }));
}

/** A contract storage value: a postcard byte string. */
export function decodeStorageValue(bytes: Uint8Array): Uint8Array {
  return decodeAll(bytes, 'contract storage value', (r) => r.byteVec());
}
