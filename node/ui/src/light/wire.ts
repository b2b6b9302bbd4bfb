/**
 * The JSON shapes of the node's RPC answers (node/light/src/wire.rs), read into the verifier's
 * types. What is verified always travels as its canonical encoding (`encoded`, `evidence`,
 * 0x-hex); the readable fields beside it are ignored.
 */

import { fixedHex0x, fromHex0x } from './bytes.ts';
import { fail, guard } from './errors.ts';
import { decodeCometEvidence, decodeFinalityEvidence, type CometEvidence, type FinalityEvidence } from './chain.ts';
import { decodeCheckpoint, type Checkpoint } from './checkpoint.ts';
import { decodeFinalityProof, type FinalityProof } from './consensus.ts';
import { decodeHeader, type Header } from './header.ts';
import { parseKeyText } from './keys.ts';
import type { RecordEvidence } from './light.ts';
import type { ConsistencyProof } from './merkle.ts';
import type { Validator } from './validators.ts';

function field(value: unknown, name: string, what: string): unknown {
  if (value === null || typeof value !== 'object') fail('encoding', `${what}: not an object`);
  return (value as Record<string, unknown>)[name];
}

/** A JSON number that must be a u64 (numbers past 2^53 are not exact in JSON.parse: refused). */
export function u64Field(value: unknown, what: string): bigint {
  if (typeof value === 'bigint' && value >= 0n && value < 1n << 64n) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  return fail('encoding', `${what}: not a number`);
}

function digests(value: unknown, what: string): Uint8Array[] {
  if (!Array.isArray(value)) fail('encoding', what);
  return value.map((d: unknown) => fixedHex0x(d, 32, what));
}

/** A `chain_getHeader` answer: the header decoded from `encoded` (canonical only). */
export function parseHeader(json: unknown): Header {
  return guard('header', () => decodeHeader(fromHex0x(field(json, 'encoded', 'header'), 'header.encoded', 'header')));
}

/** A `chain_getFinality` answer: the finality proof decoded from `encoded`. */
export function parseFinality(json: unknown): FinalityProof {
  return guard('finality', () => decodeFinalityProof(fromHex0x(field(json, 'encoded', 'finality'), 'finality.encoded')));
}

/** A `chain_getValidators` answer (`{validators: [{publicKey, power}]}`), in the order served. */
export function parseValidators(json: unknown): Validator[] {
  return guard('validators', () => {
    const list = field(json, 'validators', 'validators answer');
    if (!Array.isArray(list)) fail('validators', 'validators: not an array');
    return list.map((v: unknown) => ({
      key: parseKeyText(field(v, 'publicKey', 'validator'), 'publicKey', 'validators'),
      power: u64Field(field(v, 'power', 'validator'), 'power'),
    }));
  });
}

/** The finality evidence of a `log_getProof {finality: true}` answer (`finality.evidence`). */
export function parseFinalityEvidence(answer: unknown): FinalityEvidence {
  return guard('encoding', () => {
    const evidence = field(field(answer, 'finality', 'log_getProof answer'), 'evidence', 'finality');
    return decodeFinalityEvidence(fromHex0x(evidence, 'finality.evidence'));
  });
}

/** The CometBFT evidence of a `log_getProof {finality: true}` answer on a chain behind CometBFT. */
export function parseCometEvidence(answer: unknown): CometEvidence {
  return guard('encoding', () => {
    const evidence = field(field(answer, 'finality', 'log_getProof answer'), 'evidence', 'finality');
    return decodeCometEvidence(fromHex0x(evidence, 'finality.evidence'));
  });
}

/** A consistency proof's JSON (`{oldSize, newSize, path}`). */
export function parseConsistency(json: unknown): ConsistencyProof {
  return guard('consistency', () => ({
    oldSize: u64Field(field(json, 'oldSize', 'consistency'), 'consistency.oldSize'),
    newSize: u64Field(field(json, 'newSize', 'consistency'), 'consistency.newSize'),
    path: digests(field(json, 'path', 'consistency'), 'consistency path'),
  }));
}

/** A checkpoint certificate's JSON (`{encoded, signatures: [{signer, signature}]}`); readable fields ignored. */
export function parseCertificate(json: unknown): { message: Checkpoint; signatures: { signer: Uint8Array; signature: Uint8Array }[] } {
  return guard('certificate', () => {
    const message = decodeCheckpoint(fromHex0x(field(json, 'encoded', 'certificate'), 'certificate.encoded'));
    const shares = field(json, 'signatures', 'certificate');
    if (!Array.isArray(shares)) fail('certificate', 'certificate.signatures: not an array');
    const signatures = shares.map((s: unknown) => ({
      signer: parseKeyText(field(s, 'signer', 'signature share'), 'signer', 'certificate'),
      signature: fixedHex0x(field(s, 'signature', 'signature share'), 64, 'signature'),
    }));
    return { message, signatures };
  });
}

/** The evidence of a `log_getProof` answer without finality: `encoded`, `proof` and `certificate`. */
export function parseRecordEvidence(answer: unknown): RecordEvidence {
  return guard('encoding', () => {
    const proof = field(answer, 'proof', 'log_getProof answer');
    return {
      record: fromHex0x(field(answer, 'encoded', 'log_getProof answer'), 'encoded'),
      proof: {
        index: u64Field(field(proof, 'index', 'proof'), 'proof.index'),
        size: u64Field(field(proof, 'treeSize', 'proof'), 'proof.treeSize'),
        path: digests(field(proof, 'path', 'proof'), 'proof.path'),
      },
      certificate: parseCertificate(field(answer, 'certificate', 'log_getProof answer')),
    };
  });
}
