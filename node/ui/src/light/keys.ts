/**
 * Ed25519 public keys and signatures as the Rust code checks them (spec §3.2):
 *
 * - Keys: 32 compressed bytes that decompress to a curve point of large order. Decompression
 *   follows curve25519-dalek (`CompressedEdwardsY::decompress`), which accepts a y coordinate
 *   at or above p and a "negative zero" x: noble's ZIP-215 decoding is exactly that rule, so a
 *   key the Rust side accepts is accepted here and vice versa.
 * - Signatures: ed25519-dalek 2.x `verify_strict`, re-implemented over noble's point arithmetic
 *   because noble's own `verify` uses the cofactored equation and allows small-order `R`: `S`
 *   canonical (`S < L`), `R` decompressing and not of small order, the key not of small order,
 *   `k = SHA-512(R || A || M) mod L` over the bytes as received, and `[S]B - [k]A` compressed
 *   equal to the 32 bytes `R` (so a non-canonical `R` never verifies). The Rust code may accept
 *   a certificate by batch verification, which skips the `R` encoding checks; the spec (§3.2)
 *   makes one-by-one strict checks conforming, and only a signer's deliberately malformed `R`
 *   could tell the two apart.
 * - Text form: Bech32m with prefix `pyrpub` (BIP 350), lowercase, decoded as the `bech32` crate
 *   does (leftover padding bits ignored).
 */

import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { bech32m } from '@scure/base';

import { concat, equal, readUintLe, toHex } from './bytes.ts';
import { fail, type Step } from './errors.ts';

const Point = ed25519.Point;
type EdPoint = InstanceType<typeof Point>;

/** The order of the base point, L. */
const L = Point.Fn.ORDER;

/** Keys decompressed and checked lately, by their hex (as the Rust code's cache, bounded). */
const decompressed = new Map<string, EdPoint>();
const MAX_CACHED_KEYS = 256;

/** The point `bytes` encode (dalek's rule), or undefined when they encode none. */
function decompress(bytes: Uint8Array): EdPoint | undefined {
  try {
    return Point.fromBytes(bytes, true);
  } catch {
    return undefined;
  }
}

/** The decompressed key of `bytes`, or why it is not a usable key (not a point, small order). */
function keyPoint(bytes: Uint8Array): EdPoint | string {
  if (bytes.length !== 32) return `a public key is 32 bytes, this one is ${bytes.length}`;
  const id = toHex(bytes);
  const cached = decompressed.get(id);
  if (cached !== undefined) return cached;
  const point = decompress(bytes);
  if (point === undefined) return 'the bytes are not a point on the ed25519 curve';
  if (point.isSmallOrder()) return 'small-order (weak) ed25519 public key';
  // Only valid keys are kept, and the bytes determine the point, so a hit answers exactly what
  // the checks would. Precomputed multiples make `[k]A` of a key's next signatures faster.
  point.precompute(4, true);
  if (decompressed.size >= MAX_CACHED_KEYS) decompressed.clear();
  decompressed.set(id, point);
  return point;
}

/** Why 32 bytes are not a usable public key, or undefined when they are one. */
export function keyProblem(bytes: Uint8Array): string | undefined {
  const point = keyPoint(bytes);
  return typeof point === 'string' ? point : undefined;
}

/** `bytes` as a public key, or a refusal of `step` naming `what`. */
export function checkKey(bytes: Uint8Array, what: string, step: Step = 'encoding'): Uint8Array {
  const problem = keyProblem(bytes);
  if (problem !== undefined) fail(step, `${what}: ${problem}`);
  return bytes;
}

/** Whether `signature` (64 bytes) by `key` verifies over `message` under `verify_strict`'s rules. */
export function verifySignature(key: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  const A = keyPoint(key);
  if (typeof A === 'string') return false;
  const rBytes = signature.subarray(0, 32);
  const s = readUintLe(signature.subarray(32, 64));
  if (s >= L) return false;
  const R = decompress(rBytes);
  if (R === undefined || R.isSmallOrder()) return false;
  const k = readUintLe(sha512(concat(rBytes, key, message))) % L;
  const expected = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k));
  return equal(expected.toBytes(), rBytes);
}

// --- Bech32m (BIP 350), by @scure/base ----------------------------------------------------

/** The human-readable prefix of public key text. */
export const PUBLIC_KEY_HRP = 'pyrpub';

/** The Bech32m text (`pyrpub1…`) of a 32-byte key: how the node prints keys. */
export function keyText(key: Uint8Array): string {
  return bech32m.encode(PUBLIC_KEY_HRP, bech32m.toWords(key));
}

/**
 * The key of Bech32m text (genesis files, `chain_getValidators`), refusing another checksum
 * variant, prefix or length, non-zero padding bits, and invalid or weak keys.
 */
export function parseKeyText(text: unknown, what: string, step: Step = 'encoding'): Uint8Array {
  if (typeof text !== 'string') fail(step, `${what}: not a string`);
  let decoded: { prefix: string; words: number[] };
  let bytes: Uint8Array;
  try {
    decoded = bech32m.decode(text as `${string}1${string}`);
    bytes = bech32m.fromWords(decoded.words);
  } catch {
    fail(step, `${what}: not a Bech32m public key`);
  }
  if (decoded.prefix !== PUBLIC_KEY_HRP) fail(step, `${what}: expected a \`pyrpub1...\` public key, found prefix \`${decoded.prefix}\``);
  if (bytes.length !== 32) fail(step, `${what}: a public key is 32 bytes, this one is ${bytes.length}`);
  return checkKey(Uint8Array.from(bytes), what, step);
}
