/**
 * A small, strict postcard 1.x reader and writer (spec §3.3) for the subset the verifier needs:
 * varints, byte strings, strings, options, sequences, enum variant indices and fixed arrays.
 *
 * Strictness: postcard's Rust decoder accepts overlong varints and ignores trailing bytes. This
 * reader refuses both, so every accepted value has exactly one encoding (what the node's
 * `postcard::to_allocvec` writes). An honest node never sends anything else, so nothing genuine
 * is refused, and re-encoding a decoded value always gives back the bytes received.
 */

import { U64_MAX, decodeUtf8, utf8 } from './bytes.ts';
import { fail, type Step } from './errors.ts';
import { keyProblem } from './keys.ts';

/** A cursor over untrusted postcard bytes; errors name `what` is being decoded. */
export class PostcardReader {
  private pos = 0;

  /** Reads `bytes`, the encoding of `what` (a name for errors); refusals are of `step`. */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
    private readonly step: Step = 'encoding',
  ) {}

  /** Throws a refusal naming what is decoded. */
  fail(reason: string): never {
    return fail(this.step, `undecodable ${this.what}: ${reason}`);
  }

  /** Bytes not read yet. */
  remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** One raw byte (`u8`). */
  byte(): number {
    if (this.pos >= this.bytes.length) this.fail('unexpected end of input');
    return this.bytes[this.pos++]!;
  }

  /** `n` raw bytes (a fixed array: digest, key, signature), copied. */
  fixed(n: number): Uint8Array {
    if (this.remaining() < n) this.fail('unexpected end of input');
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /**
   * A public key: 32 raw bytes that must be a valid, large-order point (the Rust `PublicKey`
   * refuses others when deserializing).
   */
  publicKey(what: string): Uint8Array {
    const key = this.fixed(32);
    const problem = keyProblem(key);
    if (problem !== undefined) this.fail(`${what}: ${problem}`);
    return key;
  }

  /** A 32-byte digest. */
  digest(): Uint8Array {
    return this.fixed(32);
  }

  /**
   * An unsigned LEB128 varint of at most `maxBytes` bytes and value `max`; overlong forms (a
   * last byte of 0 after the first) are refused.
   */
  varint(maxBytes: number, max: bigint): bigint {
    let value = 0n;
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      value |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) this.fail('overlong varint');
        if (value > max) this.fail('varint out of range');
        return value;
      }
    }
    return this.fail('varint too long');
  }

  /** A `u16`. */
  u16(): number {
    return Number(this.varint(3, 0xffffn));
  }

  /** A `u32`. */
  u32(): number {
    return Number(this.varint(5, 0xffffffffn));
  }

  /** A `u64`. */
  u64(): bigint {
    return this.varint(10, U64_MAX);
  }

  /**
   * A length prefix (a `usize`) for `count` elements of at least `minSize` bytes each: refused
   * when the rest of the input cannot hold them (no allocation on a lying length).
   */
  length(minSize = 1): number {
    const count = this.u64();
    if (count * BigInt(minSize) > BigInt(this.remaining())) this.fail('length beyond the input');
    return Number(count);
  }

  /** A `bool`: `00` or `01`. */
  bool(): boolean {
    const b = this.byte();
    if (b > 1) this.fail(`invalid bool ${b}`);
    return b === 1;
  }

  /** An enum's variant index, which must be below `count`. */
  variant(count: number, name: string): number {
    const index = this.u32();
    if (index >= count) this.fail(`unknown ${name} variant ${index}`);
    return index;
  }

  /** An `Option<T>`: `00` for none, `01` then the value. */
  option<T>(read: (r: PostcardReader) => T): T | null {
    const tag = this.byte();
    if (tag > 1) this.fail(`invalid option tag ${tag}`);
    return tag === 1 ? read(this) : null;
  }

  /** A `Vec<u8>`. */
  byteVec(): Uint8Array {
    return this.fixed(this.length(1));
  }

  /** A `String`: length-prefixed strict UTF-8. */
  string(): string {
    const text = decodeUtf8(this.byteVec());
    return text ?? this.fail('a string is not UTF-8');
  }

  /** A `Vec<T>` of elements of at least `minSize` bytes. */
  seq<T>(read: (r: PostcardReader) => T, minSize = 1): T[] {
    const count = this.length(minSize);
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(read(this));
    return out;
  }

  /** Ends the value: refuses bytes after it. */
  done(): void {
    if (this.remaining() !== 0) this.fail(`${this.remaining()} bytes after the value`);
  }
}

/** Decodes the whole of `bytes` as `what` with `read`, refusing trailing bytes. */
export function decodeAll<T>(bytes: Uint8Array, what: string, read: (r: PostcardReader) => T, step: Step = 'encoding'): T {
  const reader = new PostcardReader(bytes, what, step);
  const value = read(reader);
  reader.done();
  return value;
}

/** Builds postcard encodings (to re-encode what was decoded before hashing it). */
export class PostcardWriter {
  private readonly out: number[] = [];

  /** One raw byte. */
  byte(b: number): this {
    this.out.push(b & 0xff);
    return this;
  }

  /** Raw bytes (a fixed array). */
  fixed(bytes: Uint8Array): this {
    for (const b of bytes) this.out.push(b);
    return this;
  }

  /** An unsigned varint. */
  varint(value: bigint | number): this {
    let v = BigInt(value);
    while (v >= 0x80n) {
      this.out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.out.push(Number(v));
    return this;
  }

  /** A `Vec<u8>`. */
  byteVec(bytes: Uint8Array): this {
    return this.varint(bytes.length).fixed(bytes);
  }

  /** A `String`. */
  string(text: string): this {
    return this.byteVec(utf8(text));
  }

  /** The bytes written. */
  finish(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

/** The postcard varint of `value` (spec §3.3's examples). */
export function varint(value: bigint | number): Uint8Array {
  return new PostcardWriter().varint(value).finish();
}
