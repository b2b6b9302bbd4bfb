/**
 * The chain light client's checks (spec §12.1-12.6, node/light/src/chain.rs), pure: following
 * finalized headers from a trusted one (sequentially or by skipping), and a record's whole path
 * to a finalized header:
 *
 * record -> partition root (inclusion) -> anchored checkpoint, certified by the cluster's
 * registered members -> chain state (two state proofs) -> the header's state root -> the
 * header's commit certificate, by more than 2/3 of a validator set the client trusts.
 */

import { equal, toHex } from './bytes.ts';
import { fail, guard, type Step } from './errors.ts';
import type { Checkpoint } from './checkpoint.ts';
import { proofSigners, readFinalityProof, verifyFinalityProof, type Engine, type FinalityProof } from './consensus.ts';
import { blockId, readHeader, type Header } from './header.ts';
import { verifyRecord, type Progress, type RecordQuery } from './light.ts';
import { readInclusionProof, type ConsistencyProof, type InclusionProof } from './merkle.ts';
import { decodeAll } from './postcard.ts';
import { ONE_THIRD, isMet, memberSet } from './quorum.ts';
import {
  anchorKey,
  clusterKey,
  decodeAnchor,
  decodeClusterRecord,
  readProvenValue,
  stateProofProblem,
  type ProvenValue,
} from './state.ts';
import { powerOf, validatorSet, validatorsHash, type Validator, type ValidatorSet } from './validators.ts';

/** How far ahead of the client's clock a header's time may be, ms. */
export const MAX_CLOCK_DRIFT_MS = 10_000n;

/** What the client trusts: a verified header (or the genesis, height 0) and the next validators. */
export interface TrustedHead {
  /** The chain. */
  readonly chainId: string;
  /** The trusted height (0: genesis). */
  readonly height: bigint;
  /** The trusted block's id (zeros at genesis). */
  readonly blockId: Uint8Array;
  /** Its time (the genesis time at height 0). */
  readonly timeMs: bigint;
  /** The validators of height `height + 1`. */
  readonly nextValidators: readonly Validator[];
  /** The engine deciding blocks. */
  readonly engine: Engine;
  /** How long after `timeMs` the head may be trusted (null: forever). */
  readonly trustingPeriodMs: bigint | null;
}

/** Everything `log_getProof {finality: true}` proves a record final with (§12.6). */
export interface FinalityEvidence {
  /** The header whose state root holds the anchor. */
  readonly header: Header;
  /** Its finality proof. */
  readonly finality: FinalityProof;
  /** `cluster/<cluster>`. */
  readonly cluster: ProvenValue;
  /** `anchor/<cluster>/<log>/<partition>`. */
  readonly anchor: ProvenValue;
  /** The record's canonical encoding. */
  readonly record: Uint8Array;
  /** Its inclusion proof against the anchored checkpoint. */
  readonly inclusion: InclusionProof;
}

/** The `FinalityEvidence` of postcard `bytes` (strict: no trailing bytes). */
export function decodeFinalityEvidence(bytes: Uint8Array): FinalityEvidence {
  return decodeAll(bytes, 'finality evidence', (r) => ({
    header: readHeader(r),
    finality: readFinalityProof(r),
    cluster: readProvenValue(r),
    anchor: readProvenValue(r),
    record: r.byteVec(),
    inclusion: readInclusionProof(r),
  }));
}

/** The record path of a chain behind CometBFT (§12.9): the same proofs, under CometBFT's header `height`. */
export interface CometEvidence {
  /** CometBFT's header whose `app_hash` is the state root. */
  readonly height: bigint;
  /** `cluster/<cluster>`. */
  readonly cluster: ProvenValue;
  /** `anchor/<cluster>/<log>/<partition>`. */
  readonly anchor: ProvenValue;
  /** The record's canonical encoding. */
  readonly record: Uint8Array;
  /** Its inclusion proof. */
  readonly inclusion: InclusionProof;
}

/** The `CometEvidence` of postcard `bytes` (decoded only: CometBFT headers are the CLI's). */
export function decodeCometEvidence(bytes: Uint8Array): CometEvidence {
  return decodeAll(bytes, 'CometBFT finality evidence', (r) => ({
    height: r.u64(),
    cluster: readProvenValue(r),
    anchor: readProvenValue(r),
    record: r.byteVec(),
    inclusion: readInclusionProof(r),
  }));
}

/** Refuses a head whose trusting period is over at `nowMs`. */
export function checkFresh(trusted: TrustedHead, nowMs: bigint): void {
  if (trusted.trustingPeriodMs === null) return;
  const end = trusted.timeMs + trusted.trustingPeriodMs;
  if (nowMs >= end) {
    fail(
      'header',
      `trust in height ${trusted.height} expired at ${end} (now ${nowMs}): its validators may have unbonded; start from a recent header trusted out of band`,
    );
  }
}

function nextSet(trusted: TrustedHead): ValidatorSet {
  return validatorSet(trusted.nextValidators, 'validators');
}

function checkChain(trusted: TrustedHead, header: Header): void {
  if (header.chainId !== trusted.chainId) {
    fail('header', `header is for chain ${JSON.stringify(header.chainId)}, the client follows ${JSON.stringify(trusted.chainId)}`);
  }
  if (header.engine !== trusted.engine) {
    fail('header', `header names the ${JSON.stringify(header.engine)} engine, the chain runs ${trusted.engine}`);
  }
}

function checkChainAndTime(trusted: TrustedHead, header: Header, nowMs: bigint): void {
  checkChain(trusted, header);
  checkFresh(trusted, nowMs);
  if (header.timeMs <= trusted.timeMs) {
    fail('header', `header time ${header.timeMs} is not after the trusted time ${trusted.timeMs}`);
  }
  if (header.timeMs > nowMs + MAX_CLOCK_DRIFT_MS) {
    fail('header', `header time ${header.timeMs} is ahead of this clock (${nowMs}) by more than ${MAX_CLOCK_DRIFT_MS} ms`);
  }
}

/**
 * Checks that `proof` finalizes `header` under `set` (which must hash to the header's
 * `validators_hash`), verifying every signature; returns the power that signed.
 */
export function verifyCommit(engine: Engine, header: Header, proof: FinalityProof, set: ValidatorSet): bigint {
  const hash = validatorsHash(set.validators);
  if (!equal(hash, header.validatorsHash)) {
    fail('validators', `the validators served hash to ${toHex(hash)}, the header says ${toHex(header.validatorsHash)}`);
  }
  return verifyFinalityProof(proof, engine, header.chainId, header.height, blockId(header), set, false);
}

/** The header is decided by the trusted next set and `proof` shows it final (light check). */
function committedByTrustedSet(
  trusted: TrustedHead,
  header: Header,
  proof: FinalityProof,
): { set: ValidatorSet; signed: bigint } {
  const set = nextSet(trusted);
  const announced = validatorsHash(set.validators);
  if (!equal(header.validatorsHash, announced)) {
    fail(
      'validators',
      `validator set changed to ${toHex(header.validatorsHash)} without the previous set committing it (trusted next set ${toHex(announced)})`,
    );
  }
  // Signatures are checked until they make a quorum, as CometBFT's light client does.
  const signed = verifyFinalityProof(proof, trusted.engine, header.chainId, header.height, blockId(header), set, true);
  return { set, signed };
}

/** The trusted head after `header`, given the set it announces for its next height. */
function advance(trusted: TrustedHead, header: Header, signing: ValidatorSet, next: readonly Validator[] | null): TrustedHead {
  const nextValidators = next ?? signing.validators;
  const hash = validatorsHash(nextValidators);
  if (!equal(hash, header.nextValidatorsHash)) {
    fail('validators', `the validators served hash to ${toHex(hash)}, the header says ${toHex(header.nextValidatorsHash)}`);
  }
  return {
    chainId: trusted.chainId,
    height: header.height,
    blockId: blockId(header),
    timeMs: header.timeMs,
    nextValidators: [...nextValidators],
    engine: trusted.engine,
    trustingPeriodMs: trusted.trustingPeriodMs,
  };
}

function clock(nowMs: number | bigint): bigint {
  if (typeof nowMs === 'bigint' ? nowMs < 0n : !(Number.isSafeInteger(nowMs) && nowMs >= 0)) {
    fail('header', 'the clock is not a time in ms');
  }
  return BigInt(nowMs);
}

/**
 * Sequential step (§12.2): `header` is the trusted height plus one, links to the trusted block,
 * is decided by the trusted next set, and `next` (needed when it announces another set) is the
 * set it announces. `nowMs` is the client's clock. Returns the new trusted head.
 */
export function verifyAdjacent(
  trusted: TrustedHead,
  header: Header,
  proof: FinalityProof,
  next: readonly Validator[] | null | undefined,
  nowMs: number | bigint,
): TrustedHead {
  return guard('header', () => {
    checkChainAndTime(trusted, header, clock(nowMs));
    if (header.height !== trusted.height + 1n) {
      fail('header', `header at height ${header.height} where height ${trusted.height + 1n} was expected`);
    }
    if (!equal(header.parent, trusted.blockId)) {
      fail('header', `header's parent ${toHex(header.parent)} is not the trusted block ${toHex(trusted.blockId)}`);
    }
    const { set } = committedByTrustedSet(trusted, header, proof);
    return advance(trusted, header, set, next ?? null);
  });
}

/**
 * Skipping step (§12.3): `header` (above the trusted height) is signed by trusted validators
 * holding more than 1/3 of the trusted power (else a `not-enough-trust` refusal: bisect) and by
 * more than 2/3 of `validators`, its own set, every signature checked.
 */
export function verifySkipping(
  trusted: TrustedHead,
  header: Header,
  proof: FinalityProof,
  validators: readonly Validator[],
  next: readonly Validator[] | null | undefined,
  nowMs: number | bigint,
): TrustedHead {
  return guard('header', () => {
    checkChainAndTime(trusted, header, clock(nowMs));
    if (header.height <= trusted.height) {
      fail('header', `header at height ${header.height} where height ${trusted.height + 1n} was expected`);
    }
    const trustedSet = nextSet(trusted);
    // Signers are counted before their signatures are checked: verifyCommit below checks all.
    let signed = 0n;
    for (const signer of proofSigners(proof)) signed += powerOf(trustedSet, signer) ?? 0n;
    if (!isMet(ONE_THIRD, signed, trustedSet.total)) {
      fail(
        'validators',
        `validator set change not committed by the previous set: trusted validators with power ${signed} of ${trustedSet.total} signed (skipping needs 1/3)`,
        'not-enough-trust',
      );
    }
    const set = validatorSet(validators, 'validators');
    verifyCommit(trusted.engine, header, proof, set);
    return advance(trusted, header, set, next ?? null);
  });
}

function proven<T>(
  stateRoot: Uint8Array,
  key: Uint8Array,
  value: ProvenValue,
  what: string,
  step: Step,
  decode: (bytes: Uint8Array, step: Step) => T,
): T {
  const problem = stateProofProblem(stateRoot, key, value.value, value.proof);
  if (problem !== undefined) fail(step, `${what}: state proof rejected: ${problem}`);
  if (value.value === null) fail(step, `no ${what} in the state`);
  return decode(value.value, step);
}

/** What proves a record under a trusted state root. */
export interface AnchoredState {
  /** The cluster's registration. */
  readonly cluster: ProvenValue;
  /** The partition's anchor. */
  readonly anchor: ProvenValue;
  /** The record's canonical encoding. */
  readonly record: Uint8Array;
  /** Its inclusion proof. */
  readonly inclusion: InclusionProof;
}

/**
 * The record path under a trusted state root (§12.5 steps 3-6): the cluster's registration and
 * the partition's anchor proven against it, then the record against the anchored checkpoint,
 * certified by the registered members and extending `trustedAnchor`. Returns the checkpoint;
 * `progress` hears of each step passed.
 */
export function verifyUnderStateRoot(
  stateRoot: Uint8Array,
  query: RecordQuery,
  state: AnchoredState,
  trustedAnchor?: Checkpoint | null,
  consistency?: ConsistencyProof | null,
  progress?: Progress,
): Checkpoint {
  return guard('encoding', () => {
    const cluster = proven(
      stateRoot,
      clusterKey(query.cluster),
      state.cluster,
      'cluster registration',
      'cluster state',
      decodeClusterRecord,
    );
    progress?.('cluster state', `cluster ${query.cluster} is registered with ${cluster.members.length} members`);
    const anchor = proven(
      stateRoot,
      anchorKey(query.cluster, query.log, query.partition),
      state.anchor,
      'anchored checkpoint',
      'anchor state',
      decodeAnchor,
    );
    const anchored = anchor.certificate.message;
    progress?.('anchor state', `${query.cluster}/${query.log}/${query.partition} is anchored at size ${anchored.size}`);
    const members = memberSet(
      cluster.members.map((k) => [k, 1n] as const),
      'cluster state',
      'cluster members: ',
    );
    const evidence = { record: state.record, proof: state.inclusion, certificate: anchor.certificate };
    return verifyRecord(query, members, evidence, trustedAnchor, consistency, progress);
  });
}

/**
 * A record's finality (§12.5): the evidence's header must be decided by the trusted next set
 * (more than 2/3 of it signed; a header under another set needs a sync step first), then the
 * record path under its state root. Returns the anchored checkpoint; `progress` hears of each
 * step passed.
 */
export function verifyFinality(
  trusted: TrustedHead,
  query: RecordQuery,
  evidence: FinalityEvidence,
  trustedAnchor: Checkpoint | null | undefined,
  consistency: ConsistencyProof | null | undefined,
  nowMs: number | bigint,
  progress?: Progress,
): Checkpoint {
  return guard('finality', () => {
    const header = evidence.header;
    checkChain(trusted, header);
    checkFresh(trusted, clock(nowMs));
    const { set, signed } = committedByTrustedSet(trusted, header, evidence.finality);
    progress?.('commit', `header ${header.height} is final: validators with power ${signed} of ${set.total} signed it`);
    return verifyUnderStateRoot(header.stateRoot, query, evidence, trustedAnchor, consistency, progress);
  });
}
