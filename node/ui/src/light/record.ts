/**
 * Records (spec §4): the strict canonical encoding a record is stored and hashed in, and the
 * fields a client may show, decoded from the proven bytes only (§4.2). The server's JSON copy of
 * the record is checked against them field by field and otherwise ignored.
 */

import { concat, decodeUtf8, readU64be, toHex0x, u16be, u32be, u64be, u64Json, utf8 } from './bytes.ts';
import { fail, guard } from './errors.ts';

/** One record header (names may repeat; order is kept). */
export interface RecordHeader {
  /** The header name (UTF-8). */
  readonly name: string;
  /** The header value. */
  readonly value: Uint8Array;
}

/** An idempotent producer's id and the record's sequence number. */
export interface ProducerSeq {
  /** The producer id. */
  readonly id: bigint;
  /** Its sequence number for this record. */
  readonly sequence: bigint;
}

/** A record decoded from its proven bytes, at the offset the proof proves. */
export interface ProvenRecord {
  /** The offset (the inclusion proof's leaf index). */
  readonly offset: bigint;
  /** The partition epoch it was written in. */
  readonly epoch: bigint;
  /** The producer's timestamp, ms since the Unix epoch. */
  readonly timestampMs: bigint;
  /** The Scarab id. */
  readonly scarabId: bigint;
  /** The key, or null when absent (an empty key is not an absent one). */
  readonly key: Uint8Array | null;
  /** The producer, when the record has one. */
  readonly producer: ProducerSeq | null;
  /** The value. */
  readonly value: Uint8Array;
  /** The headers, in order. */
  readonly headers: readonly RecordHeader[];
}

const FLAG_KEY = 1;
const FLAG_PRODUCER = 2;

/**
 * The record at `offset` of the canonical encoding `bytes` (§4.1). Strict: an unknown version
 * or flag, truncation, a non-UTF-8 header name and trailing bytes are refused (step `record`).
 */
export function decodeRecord(offset: bigint, bytes: Uint8Array): ProvenRecord {
  let at = 0;
  const take = (n: number, field: string): Uint8Array => {
    if (bytes.length - at < n) fail('record', `record truncated in field \`${field}\``);
    const out = bytes.slice(at, at + n);
    at += n;
    return out;
  };
  const u64 = (field: string) => readU64be(take(8, field));
  const sized = (prefix: number, field: string) => take(Number(readU64be(take(prefix, field))), field);
  const version = take(1, 'version')[0]!;
  if (version !== 1) fail('record', `unknown record encoding version ${version}`);
  const epoch = u64('epoch');
  const timestampMs = u64('timestamp');
  const scarabId = u64('scarab id');
  const flags = take(1, 'flags')[0]!;
  if ((flags & ~(FLAG_KEY | FLAG_PRODUCER)) !== 0) {
    fail('record', `unknown record flags 0x${flags.toString(16).padStart(2, '0')}`);
  }
  const key = flags & FLAG_KEY ? sized(4, 'key') : null;
  const producer = flags & FLAG_PRODUCER ? { id: u64('producer'), sequence: u64('producer sequence') } : null;
  const value = sized(4, 'value');
  const count = Number(readU64be(take(2, 'header count')));
  const headers: RecordHeader[] = [];
  for (let i = 0; i < count; i++) {
    const name = decodeUtf8(sized(2, 'header name'));
    if (name === undefined) fail('record', 'header name is not UTF-8');
    headers.push({ name, value: sized(4, 'header value') });
  }
  if (at !== bytes.length) fail('record', `${bytes.length - at} unexpected bytes after the record`);
  return { offset, epoch, timestampMs, scarabId, key, producer, value, headers };
}

/** The canonical encoding of `r` (§4.1). */
export function encodeRecord(r: ProvenRecord): Uint8Array {
  const flags = (r.key !== null ? FLAG_KEY : 0) | (r.producer !== null ? FLAG_PRODUCER : 0);
  const parts: Uint8Array[] = [new Uint8Array([1]), u64be(r.epoch), u64be(r.timestampMs), u64be(r.scarabId)];
  parts.push(new Uint8Array([flags]));
  if (r.key !== null) parts.push(u32be(r.key.length), r.key);
  if (r.producer !== null) parts.push(u64be(r.producer.id), u64be(r.producer.sequence));
  parts.push(u32be(r.value.length), r.value, u16be(r.headers.length));
  for (const h of r.headers) {
    const name = utf8(h.name);
    parts.push(u16be(name.length), name, u32be(h.value.length), h.value);
  }
  return concat(...parts);
}

/** A record's JSON (`record_json`): `0x`-hex bytes, `scarabId` as decimal text. */
export interface RecordJson {
  /** The offset. */
  readonly offset: number | string;
  /** The epoch. */
  readonly epoch: number | string;
  /** The key, `0x`-hex, or null. */
  readonly key: string | null;
  /** The value, `0x`-hex. */
  readonly value: string;
  /** The headers, values `0x`-hex. */
  readonly headers: readonly { readonly name: string; readonly value: string }[];
  /** The timestamp, ms. */
  readonly timestampMs: number | string;
  /** The Scarab id, decimal. */
  readonly scarabId: string;
  /** The producer, or null. */
  readonly producer: { readonly id: number | string; readonly seq: number | string } | null;
}

/**
 * The JSON the node serves for `r` (wire.rs `record_json`), with u64 numbers as JS numbers when
 * exact and as decimal text past 2^53 (where a JSON number cannot hold them).
 */
export function recordJson(r: ProvenRecord): RecordJson {
  return {
    offset: u64Json(r.offset),
    epoch: u64Json(r.epoch),
    key: r.key === null ? null : toHex0x(r.key),
    value: toHex0x(r.value),
    headers: r.headers.map((h) => ({ name: h.name, value: toHex0x(h.value) })),
    timestampMs: u64Json(r.timestampMs),
    scarabId: r.scarabId.toString(),
    producer: r.producer === null ? null : { id: u64Json(r.producer.id), seq: u64Json(r.producer.sequence) },
  };
}

/**
 * Whether a served JSON number is the u64 `expected`. JSON.parse rounds numbers past 2^53, so
 * there the most it can show is that it rounds from the same value (a caller parsing JSON with
 * BigInt support passes bigints, compared exactly).
 */
function sameU64(served: unknown, expected: bigint): boolean {
  if (typeof served === 'bigint') return served === expected;
  if (typeof served !== 'number' || !Number.isInteger(served) || served < 0) return false;
  if (Number.isSafeInteger(served)) return BigInt(served) === expected;
  return expected > BigInt(Number.MAX_SAFE_INTEGER) && Number(expected) === served;
}

/** Whether `value` is a plain object with exactly the keys `keys`. */
function objectWith(value: unknown, keys: string[]): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((k) => own.includes(k));
}

/** The fields of a served record JSON that differ from the proven record, sorted. */
function differingFields(served: Record<string, unknown>, r: ProvenRecord): string[] {
  const hexOrNull = (v: unknown, bytes: Uint8Array | null) => (bytes === null ? v === null : v === toHex0x(bytes));
  const same: Record<string, (v: unknown) => boolean> = {
    offset: (v) => sameU64(v, r.offset),
    epoch: (v) => sameU64(v, r.epoch),
    key: (v) => hexOrNull(v, r.key),
    value: (v) => v === toHex0x(r.value),
    headers: (v) =>
      Array.isArray(v) &&
      v.length === r.headers.length &&
      v.every((h, i) => objectWith(h, ['name', 'value']) && h.name === r.headers[i]!.name && h.value === toHex0x(r.headers[i]!.value)),
    timestampMs: (v) => sameU64(v, r.timestampMs),
    scarabId: (v) => v === r.scarabId.toString(),
    producer: (v) =>
      r.producer === null
        ? v === null
        : objectWith(v, ['id', 'seq']) && sameU64(v.id, r.producer.id) && sameU64(v.seq, r.producer.sequence),
  };
  const fields = [...new Set([...Object.keys(same), ...Object.keys(served)])].sort();
  // Own properties only: a served `constructor` or `toString` is an extra field, not a method.
  return fields.filter((f) => !Object.hasOwn(served, f) || !Object.hasOwn(same, f) || !same[f]!(served[f]));
}

/**
 * The served JSON record must say what the proven bytes say, every field and no extra one
 * (record.rs `check_json_matches`): a server rewriting any of them is caught.
 */
export function checkServedRecord(served: unknown, proven: ProvenRecord): void {
  guard('record', () => checkServedFields(served, proven));
}

function checkServedFields(served: unknown, proven: ProvenRecord): void {
  if (served === null || typeof served !== 'object' || Array.isArray(served)) {
    fail('record', "the record's JSON fields differ from its proven bytes: not an object");
  }
  const differing = differingFields(served as Record<string, unknown>, proven);
  if (differing.length > 0) {
    fail('record', `the record's JSON fields differ from its proven bytes: ${differing.join(', ')}`);
  }
}

/**
 * The record at `offset` decoded from its proven `bytes`, checked against the server's JSON copy
 * `served` when given (record.rs `proven_record`).
 */
export function provenRecord(offset: number | bigint, bytes: Uint8Array, served?: unknown): ProvenRecord {
  return guard('record', () => {
    const proven = decodeRecord(BigInt(offset), bytes);
    if (served !== undefined) checkServedFields(served, proven);
    return proven;
  });
}

/** What the client prints about a verified record (record.rs `proven_fields`), all from the proven bytes. */
export interface ProvenFields {
  /** The epoch. */
  readonly epoch: number | string;
  /** The key, `0x`-hex, or null. */
  readonly key: string | null;
  /** The value, `0x`-hex. */
  readonly value: string;
  /** The whole record as the node's JSON. */
  readonly record: RecordJson;
}

/** {@link ProvenFields} of a proven record. */
export function provenFields(r: ProvenRecord): ProvenFields {
  const record = recordJson(r);
  return { epoch: record.epoch, key: record.key, value: record.value, record };
}
