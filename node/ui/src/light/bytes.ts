/**
 * Byte helpers shared by the verifier: hex (RPC answers write `0x`-prefixed hex), comparison,
 * big-endian integers and strict UTF-8. Browser-safe: only Uint8Array, TextEncoder/TextDecoder
 * and BigInt.
 */

import { fail, type Step } from './errors.ts';

/** The largest u64. */
export const U64_MAX = (1n << 64n) - 1n;

const HEX = '0123456789abcdef';

/** Lowercase hex, without prefix (the spec's and the vector file's form). */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += HEX[b >> 4]! + HEX[b & 15]!;
  return out;
}

/** `0x`-prefixed lowercase hex (the RPC form). */
export function toHex0x(bytes: Uint8Array): string {
  return '0x' + toHex(bytes);
}

/** The bytes of hex digits (either case, no prefix); throws a VerifyError of `step` naming `what`. */
export function fromHex(text: string, what: string, step: Step = 'encoding'): Uint8Array {
  if (text.length % 2 !== 0) fail(step, `${what}: odd number of hex digits`);
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = digit(text.charCodeAt(2 * i));
    const lo = digit(text.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) fail(step, `${what}: invalid hex digit`);
    out[i] = (hi << 4) | lo;
  }
  return out;
}

function digit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * The bytes of an RPC hex string: must be a string starting with `0x` (as the node's
 * `decode_hex` requires).
 */
export function fromHex0x(value: unknown, what: string, step: Step = 'encoding'): Uint8Array {
  if (typeof value !== 'string') fail(step, `${what}: not a string`);
  if (!value.startsWith('0x')) fail(step, `${what}: bytes are 0x-prefixed hex`);
  return fromHex(value.slice(2), what, step);
}

/** An RPC hex string that must be exactly `length` bytes (a digest, a signature). */
export function fixedHex0x(value: unknown, length: number, what: string, step: Step = 'encoding'): Uint8Array {
  const bytes = fromHex0x(value, what, step);
  if (bytes.length !== length) fail(step, `${what}: not ${length} bytes`);
  return bytes;
}

/** The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Whether `a` and `b` hold the same bytes. */
export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic byte order (Rust's `Ord` for byte arrays): negative, zero or positive. */
export function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** `n` (at most 2^16 - 1) as 2 big-endian bytes. */
export function u16be(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
}

/** `n` (at most 2^32 - 1) as 4 big-endian bytes. */
export function u32be(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

/** `n` (a u64) as 8 big-endian bytes. */
export function u64be(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  let v = n;
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The u64 of 8 big-endian bytes. */
export function readU64be(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** The unsigned integer of little-endian bytes (Ed25519 scalars). */
export function readUintLe(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

const encoder = new TextEncoder();
// fatal: invalid UTF-8 is an error, as Rust's `str::from_utf8`; ignoreBOM: a leading U+FEFF is
// kept as a character (the default would silently drop it, changing the text).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** The text of strict UTF-8 `bytes`, or undefined when they are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * A u64 for a JSON report: a number when it is exact as one, else its decimal text (a JSON
 * number past 2^53 would silently change).
 */
export function u64Json(value: bigint): number | string {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}
