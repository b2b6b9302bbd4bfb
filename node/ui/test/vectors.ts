/**
 * The verifier spec's test vectors (docs/verifier-vectors.json, written by the Rust code) and
 * the inputs the tests build from them: the trusted head, query and clock of the `finality`
 * section, as node/tests/node/spec_vectors/build.rs verifies them.
 */

import { readFileSync } from 'node:fs';

import { fromHex, type TrustedHead, type Validator } from '../src/light/index.ts';

/** The parsed vector file (a loose JSON shape: tests read what they check). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** The vector file. */
export const V: Json = JSON.parse(readFileSync(new URL('../../../docs/verifier-vectors.json', import.meta.url), 'utf8'));

/** Bytes of the vector file's plain hex. */
export function hex(text: string): Uint8Array {
  return fromHex(text, 'vector');
}

/** 2026-01-01T00:00:00Z in Unix ms (the vectors' base time). */
export const BASE_MS = 1_767_225_600_000;

/** The client's clock when the Rust test verifies the vectors (after every header's time). */
export const NOW = BASE_MS + 100_000;

/** The validator set of the vectors, in canonical order. */
export function validators(): Validator[] {
  return V.validators.set.map((v: Json) => ({ key: hex(v.public), power: BigInt(v.power) }));
}

/** The `finality.trusted_head` vector, with the vectors' validator set as its next set. */
export function trustedHead(): TrustedHead {
  const t = V.finality.trusted_head;
  return {
    chainId: t.chain_id,
    height: BigInt(t.height),
    blockId: hex(t.block_id),
    timeMs: BigInt(t.time_ms),
    nextValidators: validators(),
    engine: t.engine,
    trustingPeriodMs: null,
  };
}

/** Trust in the vectors' chain at its genesis (`TrustedHead::genesis`). */
export function genesisHead(): TrustedHead {
  return { ...trustedHead(), height: 0n, blockId: new Uint8Array(32), timeMs: 0n };
}

/** The `finality.query` vector. */
export function query() {
  const q = V.finality.query;
  return { cluster: q.cluster as string, log: q.log as string, partition: q.partition as number, offset: BigInt(q.offset) };
}
