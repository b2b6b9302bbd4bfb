/**
 * Validator sets (spec §9): keys with voting power, their canonical order (power down, then key
 * bytes up), their postcard form and the hash headers carry.
 */

import { compare, toHex } from './bytes.ts';
import { fail, type Step } from './errors.ts';
import { hashIn } from './hash.ts';
import { keyText } from './keys.ts';
import { PostcardWriter, decodeAll, type PostcardReader } from './postcard.ts';
import type { MemberSet } from './quorum.ts';

/** One validator. */
export interface Validator {
  /** Its 32-byte signing key. */
  readonly key: Uint8Array;
  /** Its voting power (> 0 in a valid set). */
  readonly power: bigint;
}

/**
 * The largest total power of a set: CometBFT's `MaxTotalVotingPower`, `(2^63 - 1) / 8`, as the
 * Rust code enforces it (`consensus/types/src/validators.rs`).
 */
export const MAX_TOTAL_POWER = ((1n << 63n) - 1n) / 8n;

/** A valid set: canonical order, its total and its member set (weights = powers). */
export interface ValidatorSet {
  /** The validators in canonical order. */
  readonly validators: readonly Validator[];
  /** The total power. */
  readonly total: bigint;
  /** The set as the certificate check sees it. */
  readonly members: MemberSet;
}

/** `list` sorted canonically: decreasing power, then increasing key bytes (a copy). */
export function sortCanonical(list: readonly Validator[]): Validator[] {
  return [...list].sort((a, b) => (a.power > b.power ? -1 : a.power < b.power ? 1 : compare(a.key, b.key)));
}

/**
 * Checks and orders `list` as `ValidatorSet::new` does: not empty, no zero power, total at most
 * {@link MAX_TOTAL_POWER}, no key twice. Refusals read `invalid validator set: ...` (`step`).
 */
export function validatorSet(list: readonly Validator[], step: Step = 'validators'): ValidatorSet {
  const bad = (reason: string): never => fail(step, `invalid validator set: ${reason}`);
  if (list.length === 0) bad('a validator set needs at least one validator');
  let total = 0n;
  for (const v of list) {
    if (v.power === 0n) bad(`validator ${keyText(v.key)} has zero voting power`);
    total += v.power;
    if (total > MAX_TOTAL_POWER) bad(`total voting power exceeds ${MAX_TOTAL_POWER}`);
  }
  const validators = sortCanonical(list);
  const weights = new Map<string, bigint>();
  for (const v of validators) {
    const id = toHex(v.key);
    if (weights.has(id)) bad(`validator ${keyText(v.key)} appears more than once`);
    weights.set(id, v.power);
  }
  return { validators, total, members: { weights, total } };
}

/** A validator in postcard: `key[32] || varint(power)`. */
export function readValidator(r: PostcardReader): Validator {
  return { key: r.publicKey('validator key'), power: r.u64() };
}

/** The postcard `Vec<Validator>` of `list`, in the order given. */
export function encodeValidators(list: readonly Validator[]): Uint8Array {
  const w = new PostcardWriter().varint(list.length);
  for (const v of list) w.fixed(v.key).varint(v.power);
  return w.finish();
}

/** The validators of a postcard `Vec<Validator>` (the `meta/validators` state value). */
export function decodeValidators(bytes: Uint8Array): Validator[] {
  return decodeAll(bytes, 'validators', (r) => r.seq(readValidator, 33));
}

const VALIDATORS_PREFIX = new TextEncoder().encode('validators\0');

/**
 * `H_chain_state("validators\0" || postcard(list))` over `list` in the order given: headers
 * carry it for the canonical order, so a list served out of order does not match.
 */
export function validatorsHash(list: readonly Validator[]): Uint8Array {
  return hashIn('chain_state', VALIDATORS_PREFIX, encodeValidators(list));
}

/** The power of `key` in `set`, if it is a member. */
export function powerOf(set: ValidatorSet, key: Uint8Array): bigint | undefined {
  return set.members.weights.get(toHex(key));
}
