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

// --- Bech32m (BIP 350) ---------------------------------------------------------------------

/** The human-readable part of public key text. */
export const PUBLIC_KEY_HRP = 'pyrpub';

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const BECH32M_CONST = 0x2bc830a3;
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = (((chk & 0x1ffffff) << 5) ^ v) >>> 0;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk = (chk ^ GENERATOR[i]!) >>> 0;
  }
  return chk;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

/** The Bech32m text (`pyrpub1…`) of a 32-byte key: how the node prints keys. */
export function keyText(key: Uint8Array): string {
  const data: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of key) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      data.push((acc >> bits) & 31);
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) data.push((acc << (5 - bits)) & 31);
  const mod = polymod([...hrpExpand(PUBLIC_KEY_HRP), ...data, 0, 0, 0, 0, 0, 0]) ^ BECH32M_CONST;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (mod >>> (5 * (5 - i))) & 31);
  return PUBLIC_KEY_HRP + '1' + [...data, ...checksum].map((v) => CHARSET[v]).join('');
}

/**
 * The key of Bech32m text (genesis files, `chain_getValidators`), refusing another checksum
 * variant, prefix or length, and invalid or weak keys.
 */
export function parseKeyText(text: unknown, what: string, step: Step = 'encoding'): Uint8Array {
  if (typeof text !== 'string') fail(step, `${what}: not a string`);
  const sep = text.lastIndexOf('1');
  if (sep < 1 || text.length - sep - 1 < 6) fail(step, `${what}: not a Bech32m public key`);
  const hrp = text.slice(0, sep);
  const data: number[] = [];
  for (const c of text.slice(sep + 1)) {
    const v = CHARSET.indexOf(c);
    // Lowercase only: an uppercase prefix is not `pyrpub`, and mixed case is invalid Bech32.
    if (v < 0) fail(step, `${what}: not a Bech32m public key`);
    data.push(v);
  }
  for (let i = 0; i < hrp.length; i++) {
    const c = hrp.charCodeAt(i);
    if (c < 33 || c > 126 || (c >= 65 && c <= 90)) fail(step, `${what}: not a Bech32m public key`);
  }
  if (polymod([...hrpExpand(hrp), ...data]) !== BECH32M_CONST) fail(step, `${what}: not a Bech32m public key`);
  if (hrp !== PUBLIC_KEY_HRP) fail(step, `${what}: expected a \`pyrpub1...\` public key, found prefix \`${hrp}\``);
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const v of data.slice(0, -6)) {
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  if (bytes.length !== 32) fail(step, `${what}: a public key is 32 bytes, this one is ${bytes.length}`);
  return checkKey(Uint8Array.from(bytes), what, step);
}
