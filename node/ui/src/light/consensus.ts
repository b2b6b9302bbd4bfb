/**
 * Votes, commit certificates and engine-tagged finality proofs (spec §8). The quorum family
 * (Tendermint, PBFT, and Proof-of-Stake over either) is verified here; Proof-of-Work proofs
 * decode but are left to the pyralog CLI's SPV client, and chains behind CometBFT have no
 * proof of this form.
 */

import { concat, equal, toHex, u16be, u32be, u64be, utf8 } from './bytes.ts';
import { fail } from './errors.ts';
import { hashIn } from './hash.ts';
import { PostcardWriter, decodeAll, type PostcardReader } from './postcard.ts';
import { QUORUM, readShares, verifyShares, type QuorumCertificate } from './quorum.ts';
import type { ValidatorSet } from './validators.ts';

/** A consensus engine; the array order is the postcard variant index. */
export type Engine = 'tendermint' | 'pbft' | 'pow' | 'cometbft';

/** Engines by postcard variant index (`Engine` in consensus/types/src/finality.rs). */
export const ENGINES: readonly Engine[] = ['tendermint', 'pbft', 'pow', 'cometbft'];

/** Whether `name` names an engine. */
export function isEngine(name: unknown): name is Engine {
  return typeof name === 'string' && (ENGINES as readonly string[]).includes(name);
}

/** Prevote or precommit (postcard variant 0 or 1; signing bytes 1 or 2). */
export type VoteKind = 'prevote' | 'precommit';

/** A validator's vote; `block: null` is a vote for nil. */
export interface Vote {
  /** The chain. */
  readonly chainId: string;
  /** The height. */
  readonly height: bigint;
  /** The round (PBFT: the view). */
  readonly round: number;
  /** Prevote or precommit. */
  readonly kind: VoteKind;
  /** The block id, or null for nil. */
  readonly block: Uint8Array | null;
}

/** The vote signing context. */
export const VOTE_CONTEXT = utf8('pyralog/consensus/vote/v1\0');

/**
 * What a validator signs (§8.1): the context, then the fixed layout. A chain id longer than a
 * u16 gets the largest length, as the Rust code does (no honest signature verifies over it).
 */
export function voteSigningBytes(v: Vote): Uint8Array {
  const chain = utf8(v.chainId);
  const block = v.block === null ? new Uint8Array([0]) : concat(new Uint8Array([1]), v.block);
  return concat(
    VOTE_CONTEXT,
    u16be(Math.min(chain.length, 0xffff)),
    chain,
    u64be(v.height),
    u32be(v.round),
    new Uint8Array([v.kind === 'prevote' ? 1 : 2]),
    block,
  );
}

/** A vote in postcard (§8.2). */
export function readVote(r: PostcardReader): Vote {
  return {
    chainId: r.string(),
    height: r.u64(),
    round: r.u32(),
    kind: r.variant(2, 'vote kind') === 0 ? 'prevote' : 'precommit',
    block: r.option((x) => x.digest()),
  };
}

/** The postcard form of `v` (§8.2). */
export function encodeVote(v: Vote): Uint8Array {
  const w = new PostcardWriter().string(v.chainId).varint(v.height).varint(v.round);
  w.varint(v.kind === 'prevote' ? 0 : 1);
  if (v.block === null) w.byte(0);
  else w.byte(1).fixed(v.block);
  return w.finish();
}

/** Precommits for one block at one height and round. */
export type CommitCertificate = QuorumCertificate<Vote>;

/** A commit certificate in postcard (§8.3). */
export function readCommitCertificate(r: PostcardReader): CommitCertificate {
  return { message: readVote(r), signatures: readShares(r) };
}

/** A Proof-of-Work seal (§8.7). */
export interface Seal {
  /** The parent's seal hash (zeros at height 1). */
  readonly parent: Uint8Array;
  /** The block's height. */
  readonly height: bigint;
  /** The sealed block's id. */
  readonly block: Uint8Array;
  /** Its time, ms. */
  readonly timeMs: bigint;
  /** Compact target. */
  readonly bits: number;
  /** The miner's nonce. */
  readonly nonce: bigint;
}

/** A seal's fixed 92-byte encoding. */
export function encodeSeal(s: Seal): Uint8Array {
  return concat(s.parent, u64be(s.height), s.block, u64be(s.timeMs), u32be(s.bits), u64be(s.nonce));
}

/** `H_pow_seal(encoding)`. */
export function sealHash(s: Seal): Uint8Array {
  return hashIn('pow_seal', encodeSeal(s));
}

function readSeal(r: PostcardReader): Seal {
  return { parent: r.digest(), height: r.u64(), block: r.digest(), timeMs: r.u64(), bits: r.u32(), nonce: r.u64() };
}

/** Why a block is final, tagged with the engine that decided it (§8.4). */
export type FinalityProof =
  | { readonly family: 'quorum'; readonly engine: Engine; readonly certificate: CommitCertificate }
  | { readonly family: 'work'; readonly engine: Engine; readonly seals: readonly Seal[] };

/** A finality proof in postcard: `varint(variant) || varint(engine) || ...`. */
export function readFinalityProof(r: PostcardReader): FinalityProof {
  const family = r.variant(2, 'finality proof');
  const engine = ENGINES[r.variant(ENGINES.length, 'engine')]!;
  if (family === 0) return { family: 'quorum', engine, certificate: readCommitCertificate(r) };
  return { family: 'work', engine, seals: r.seq(readSeal, 68) };
}

/** The finality proof of postcard `bytes`. */
export function decodeFinalityProof(bytes: Uint8Array): FinalityProof {
  return decodeAll(bytes, 'finality proof', readFinalityProof);
}

/** The distinct signers of a quorum proof, sorted by key bytes (none for work proofs). */
export function proofSigners(proof: FinalityProof): Uint8Array[] {
  if (proof.family !== 'quorum') return [];
  const byHex = new Map<string, Uint8Array>();
  for (const s of proof.certificate.signatures) byHex.set(toHex(s.signer), s.signer);
  return [...byHex.keys()].sort().map((k) => byHex.get(k)!);
}

function voteText(v: Vote): string {
  const kind = v.kind === 'prevote' ? 'Prevote' : 'Precommit';
  const block = v.block === null ? 'None' : `Some(${toHex(v.block)})`;
  return `certificate is a ${kind} for ${block} at height ${v.height} on ${JSON.stringify(v.chainId)}, not a precommit for the claimed block`;
}

/**
 * Checks that `proof`, for a chain running `engine`, finalizes `block` at `height` on `chainId`
 * under `set` (§8.5); returns the power that signed. `light` verifies signatures only until
 * they make the quorum. Refusals: `finality` (wrong engine or family, unsupported engine) and
 * `commit` (the vote or the certificate).
 */
export function verifyFinalityProof(
  proof: FinalityProof,
  engine: Engine,
  chainId: string,
  height: bigint,
  block: Uint8Array,
  set: ValidatorSet,
  light: boolean,
): bigint {
  if (proof.engine !== engine) fail('finality', `a ${proof.engine} finality proof, but the chain runs ${engine}`);
  if (engine === 'pow') {
    fail('finality', 'Proof-of-Work finality proofs are verified by the pyralog CLI, not this verifier', 'unsupported');
  }
  if (engine === 'cometbft' || proof.family !== 'quorum') {
    fail('finality', `a ${proof.family} proof cannot show finality under ${engine}'s rule`);
  }
  const vote = proof.certificate.message;
  if (vote.chainId !== chainId || vote.height !== height || vote.kind !== 'precommit' || vote.block === null || !equal(vote.block, block)) {
    fail('commit', voteText(vote));
  }
  return verifyShares(
    proof.certificate.signatures,
    voteSigningBytes(vote),
    set.members,
    QUORUM,
    light,
    'commit',
    'commit certificate: ',
  );
}
