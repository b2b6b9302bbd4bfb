/**
 * Checkpoints (spec §6): "partition P of log L in cluster C had `size` records with Merkle root R
 * at epoch E". Their canonical encoding (versions 1 and 2: what is signed and hashed), id,
 * signing bytes, and the postcard form certificates travel in.
 */

import { concat, readU64be, u32be, u64be, utf8 } from './bytes.ts';
import { fail, type Step } from './errors.ts';
import { hashIn } from './hash.ts';
import { PostcardWriter, type PostcardReader } from './postcard.ts';
import { readShares, type QuorumCertificate } from './quorum.ts';

/** A zk tree whose root a checkpoint may carry. */
export type ZkTree = 'poseidon' | 'rescue';

/** Trees in id order: canonical ids 1 and 2, postcard variant indices 0 and 1. */
export const ZK_TREES: readonly ZkTree[] = ['poseidon', 'rescue'];

/** A partition's signed state. */
export interface Checkpoint {
  /** The cluster id (a name). */
  readonly cluster: string;
  /** The log name. */
  readonly log: string;
  /** The partition (u32). */
  readonly partition: number;
  /** The partition epoch it was taken in. */
  readonly epoch: bigint;
  /** Records (Merkle leaves). */
  readonly size: bigint;
  /** Their Merkle root (§5.1). */
  readonly root: Uint8Array;
  /** When it was taken, ms since the Unix epoch. */
  readonly timeMs: bigint;
  /** The zk trees' roots, by tree. */
  readonly zkRoots: Readonly<Partial<Record<ZkTree, Uint8Array>>>;
}

/** The longest cluster id or log name, in bytes. */
export const MAX_NAME_LEN = 64;

/** Why `name` breaks the name rule (1-64 bytes of `[A-Za-z0-9._-]`, first a letter or digit). */
export function nameProblem(name: string): string | undefined {
  return nameBytesProblem(utf8(name));
}

/** {@link nameProblem} of a name's raw bytes (a non-ASCII byte is a character outside the set). */
export function nameBytesProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0 || bytes.length > MAX_NAME_LEN) {
    return `names are 1 to ${MAX_NAME_LEN} bytes, this one is ${bytes.length}`;
  }
  const alnum = (b: number) => (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122);
  if (!alnum(bytes[0]!)) return 'names start with a letter or digit';
  for (const b of bytes) {
    if (!(alnum(b) || b === 0x2e || b === 0x5f || b === 0x2d)) {
      return `names use only A-Z a-z 0-9 . _ -, found byte 0x${b.toString(16).padStart(2, '0')}`;
    }
  }
  return undefined;
}

/** `name` checked against the name rule, or a refusal of `step` naming `field`. */
export function checkName(name: string, field: string, step: Step = 'encoding'): string {
  const problem = nameProblem(name);
  if (problem !== undefined) fail(step, `invalid ${field}: ${problem}`);
  return name;
}

function zkEntries(c: Checkpoint): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  ZK_TREES.forEach((tree, i) => {
    const root = c.zkRoots[tree];
    if (root !== undefined) out.push([i, root]);
  });
  return out;
}

/** The canonical encoding (§6.1): version 1, or 2 with zk roots. */
export function encodeCheckpoint(c: Checkpoint): Uint8Array {
  const zk = zkEntries(c);
  const parts: Uint8Array[] = [new Uint8Array([zk.length === 0 ? 1 : 2])];
  for (const name of [c.cluster, c.log]) {
    const bytes = utf8(name);
    parts.push(new Uint8Array([bytes.length]), bytes);
  }
  parts.push(u32be(c.partition), u64be(c.epoch), u64be(c.size), c.root, u64be(c.timeMs));
  if (zk.length > 0) {
    parts.push(new Uint8Array([zk.length]));
    for (const [index, root] of zk) parts.push(new Uint8Array([index + 1]), root);
  }
  return concat(...parts);
}

/**
 * The checkpoint of a canonical encoding; strict (§6.1): unknown version or zk tree, version 2
 * without roots or with unordered ones, invalid names, truncation and trailing bytes are refused.
 */
export function decodeCheckpoint(bytes: Uint8Array, step: Step = 'checkpoint'): Checkpoint {
  let at = 0;
  const take = (n: number, field: string): Uint8Array => {
    if (bytes.length - at < n) fail(step, `checkpoint truncated in field \`${field}\``);
    const out = bytes.slice(at, at + n);
    at += n;
    return out;
  };
  const version = take(1, 'version')[0]!;
  if (version !== 1 && version !== 2) fail(step, `unknown checkpoint encoding version ${version}`);
  const name = (field: string): string => {
    const length = take(1, field)[0]!;
    const raw = take(length, field);
    // Checked as bytes: valid names are ASCII, so invalid UTF-8 fails the character rule too.
    const problem = nameBytesProblem(raw);
    if (problem !== undefined) fail(step, `invalid ${field}: ${problem}`);
    return String.fromCharCode(...raw);
  };
  const cluster = name('cluster');
  const log = name('log');
  const partition = Number(readU64be(take(4, 'partition')));
  const epoch = readU64be(take(8, 'epoch'));
  const size = readU64be(take(8, 'size'));
  const root = take(32, 'root');
  const timeMs = readU64be(take(8, 'time_ms'));
  const zkRoots: Partial<Record<ZkTree, Uint8Array>> = {};
  if (version === 2) {
    const count = take(1, 'zk root count')[0]!;
    let last = 0;
    for (let i = 0; i < count; i++) {
      const id = take(1, 'zk tree')[0]!;
      const tree = ZK_TREES[id - 1];
      if (tree === undefined) fail(step, `unknown zk tree id ${id}`);
      if (id <= last) fail(step, 'zk roots not in canonical form');
      last = id;
      zkRoots[tree] = take(32, 'zk root');
    }
    if (count === 0) fail(step, 'zk roots not in canonical form');
  }
  if (at !== bytes.length) fail(step, `${bytes.length - at} unexpected bytes after the checkpoint`);
  return { cluster, log, partition, epoch, size, root, timeMs, zkRoots };
}

/** `H_checkpoint(encoding)`: the checkpoint's id (§6.2). */
export function checkpointId(c: Checkpoint): Uint8Array {
  return hashIn('checkpoint', encodeCheckpoint(c));
}

/** What replicas sign (§6.3): the context, then the canonical encoding. */
export const CHECKPOINT_CONTEXT = utf8('pyralog checkpoint signature v1\0');

/** `"pyralog checkpoint signature v1\0" || encoding`. */
export function checkpointSigningBytes(c: Checkpoint): Uint8Array {
  return concat(CHECKPOINT_CONTEXT, encodeCheckpoint(c));
}

/**
 * A checkpoint in its postcard form (§6.4): names as strings (checked), integers as varints, the
 * zk map with serde variant indices 0/1 (refused unless strictly increasing, as written).
 */
export function readCheckpoint(r: PostcardReader): Checkpoint {
  const nameField = (field: string) => {
    const text = r.string();
    const problem = nameProblem(text);
    if (problem !== undefined) r.fail(`invalid ${field}: ${problem}`);
    return text;
  };
  const cluster = nameField('cluster');
  const log = nameField('log');
  const partition = r.u32();
  const epoch = r.u64();
  const size = r.u64();
  const root = r.digest();
  const timeMs = r.u64();
  const zkRoots: Partial<Record<ZkTree, Uint8Array>> = {};
  const count = r.length(33);
  let last = -1;
  for (let i = 0; i < count; i++) {
    const index = r.variant(ZK_TREES.length, 'zk tree');
    if (index <= last) r.fail('zk roots not in canonical order');
    last = index;
    zkRoots[ZK_TREES[index]!] = r.digest();
  }
  return { cluster, log, partition, epoch, size, root, timeMs, zkRoots };
}

/** The postcard form of `c` (§6.4). */
export function encodeCheckpointPostcard(c: Checkpoint): Uint8Array {
  const w = new PostcardWriter().string(c.cluster).string(c.log).varint(c.partition);
  w.varint(c.epoch).varint(c.size).fixed(c.root).varint(c.timeMs);
  const zk = zkEntries(c);
  w.varint(zk.length);
  for (const [index, root] of zk) w.varint(index).fixed(root);
  return w.finish();
}

/** A checkpoint certificate in postcard: the checkpoint's postcard form, then the shares. */
export function readCheckpointCertificate(r: PostcardReader): QuorumCertificate<Checkpoint> {
  return { message: readCheckpoint(r), signatures: readShares(r) };
}

/** `cluster/log/partition`, as errors name a partition. */
export function partitionName(cluster: string, log: string, partition: number): string {
  return `${cluster}/${log}/${partition}`;
}
