/**
 * Thresholds (spec §3.4) and quorum certificates (spec §7): signatures of distinct members over
 * one message, enough of them by weight. The same check serves checkpoint certificates (cluster
 * members, weight 1, more than 1/2) and commit certificates (validators, voting power, more
 * than 2/3).
 */

import { toHex } from './bytes.ts';
import { fail, type Step } from './errors.ts';
import { keyText, verifySignature } from './keys.ts';
import type { PostcardReader } from './postcard.ts';

/** A fraction `n/d` of the total weight, strict ("more than") or inclusive ("at least"). */
export interface Threshold {
  /** n. */
  readonly numerator: bigint;
  /** d. */
  readonly denominator: bigint;
  /** Whether reaching the fraction exactly is enough. */
  readonly inclusive: boolean;
}

/** More than `n/d`. */
export function moreThan(n: number, d: number): Threshold {
  return { numerator: BigInt(n), denominator: BigInt(d), inclusive: false };
}

/** At least `n/d`. */
export function atLeast(n: number, d: number): Threshold {
  return { numerator: BigInt(n), denominator: BigInt(d), inclusive: true };
}

/** More than 1/2: checkpoint certificates. */
export const MAJORITY = moreThan(1, 2);
/** More than 2/3: commit certificates. */
export const QUORUM = moreThan(2, 3);
/** More than 1/3: the trusted power a skipping step needs. */
export const ONE_THIRD = moreThan(1, 3);

/** Whether `signed` of `total` meets `t`, in exact integers (BigInt never overflows). */
export function isMet(t: Threshold, signed: bigint, total: bigint): boolean {
  const lhs = signed * t.denominator;
  const rhs = total * t.numerator;
  return t.inclusive ? lhs >= rhs : lhs > rhs;
}

/** `> 2/3`, `>= 1/2`: how the Rust code prints a threshold. */
export function thresholdText(t: Threshold): string {
  return `${t.inclusive ? '>=' : '>'} ${t.numerator}/${t.denominator}`;
}

/** Distinct public keys with non-zero weights (total at most u64::MAX). */
export interface MemberSet {
  /** Weight by key hex. */
  readonly weights: ReadonlyMap<string, bigint>;
  /** The sum of the weights. */
  readonly total: bigint;
}

/**
 * A member set of `(key, weight)` pairs; refused (`step`, `prefix: reason`) when empty, with a
 * zero weight, a repeated key or a total past u64.
 */
export function memberSet(members: Iterable<readonly [Uint8Array, bigint]>, step: Step, prefix: string): MemberSet {
  const weights = new Map<string, bigint>();
  let total = 0n;
  for (const [key, weight] of members) {
    const id = toHex(key);
    if (weight === 0n) fail(step, `${prefix}member ${keyText(key)} has weight 0`);
    if (weights.has(id)) fail(step, `${prefix}member ${keyText(key)} is listed twice`);
    weights.set(id, weight);
    total += weight;
    if (total > (1n << 64n) - 1n) fail(step, `${prefix}total weight overflows u64`);
  }
  if (weights.size === 0) fail(step, `${prefix}a member set needs at least one member`);
  return { weights, total };
}

/** One member's signature. */
export interface SignatureShare {
  /** Who signed (32 bytes). */
  readonly signer: Uint8Array;
  /** The 64-byte signature over the message's signing bytes. */
  readonly signature: Uint8Array;
}

/** A message and the shares over its signing bytes. */
export interface QuorumCertificate<M> {
  /** The signed message. */
  readonly message: M;
  /** One share per signer. */
  readonly signatures: readonly SignatureShare[];
}

/** A share in postcard: `signer[32] || signature[64]` (the signer must be a valid key). */
export function readShare(r: PostcardReader): SignatureShare {
  return { signer: r.publicKey('signer'), signature: r.fixed(64) };
}

/** The shares of a certificate in postcard: `varint(count) || count × share`. */
export function readShares(r: PostcardReader): SignatureShare[] {
  return r.seq(readShare, 96);
}

/**
 * Verifies `shares` over `signingBytes` against `members` with `threshold` (spec §7); returns the
 * weight of the checked shares. Refusals are of `step`, prefixed `prefix` ("commit certificate: ").
 *
 * As the Rust code: every share's signer must be a distinct member (checked for all shares before
 * any signature); `light` checks signatures only of the shortest prefix of shares meeting the
 * threshold (CometBFT's `VerifyCommitLight`), otherwise all; then the weight must pass.
 */
export function verifyShares(
  shares: readonly SignatureShare[],
  signingBytes: Uint8Array,
  members: MemberSet,
  threshold: Threshold,
  light: boolean,
  step: Step,
  prefix: string,
): bigint {
  const seen = new Set<string>();
  const unchecked: SignatureShare[] = [];
  let signed = 0n;
  for (const share of shares) {
    const id = toHex(share.signer);
    const weight = members.weights.get(id);
    if (weight === undefined) fail(step, `${prefix}signer ${keyText(share.signer)} is not a member`);
    if (seen.has(id)) fail(step, `${prefix}signer ${keyText(share.signer)} appears more than once`);
    seen.add(id);
    if (!(light && isMet(threshold, signed, members.total))) {
      signed += weight;
      unchecked.push(share);
    }
  }
  for (const share of unchecked) {
    if (!verifySignature(share.signer, signingBytes, share.signature)) {
      fail(step, `${prefix}signature of ${keyText(share.signer)} does not verify over this message`);
    }
  }
  if (!isMet(threshold, signed, members.total)) {
    fail(
      step,
      `${prefix}signatures carry weight ${signed} of ${members.total}, the threshold is ${thresholdText(threshold)}`,
    );
  }
  return signed;
}
