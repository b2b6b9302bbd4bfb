/**
 * Block headers and block ids (spec §11). A header's encoding is its postcard encoding; a block
 * id hashes the element count, the header as a Merkle leaf and the root of the other elements,
 * so a header and its commit certificate stand alone.
 */

import { U64_MAX, concat, equal, u64be } from './bytes.ts';
import { fail } from './errors.ts';
import { hashIn } from './hash.ts';
import { leafHash } from './merkle.ts';
import { PostcardReader, PostcardWriter } from './postcard.ts';

/** A block header, fields in their encoding order (§11.1). */
export interface Header {
  /** The chain. */
  readonly chainId: string;
  /** The height. */
  readonly height: bigint;
  /** The proposer's time, ms since the Unix epoch. */
  readonly timeMs: bigint;
  /** The parent's block id (zeros at height 1). */
  readonly parent: Uint8Array;
  /** Elements after the header (consensus info and transactions). */
  readonly txCount: bigint;
  /** Their Merkle root. */
  readonly txRoot: Uint8Array;
  /** The state root of version `height - 1`. */
  readonly stateRoot: Uint8Array;
  /** The hash of the set deciding this block. */
  readonly validatorsHash: Uint8Array;
  /** The hash of the set deciding the next one. */
  readonly nextValidatorsHash: Uint8Array;
  /** The proposer's key. */
  readonly proposer: Uint8Array;
  /** The engine's name. */
  readonly engine: string;
}

/** A header in postcard. */
export function readHeader(r: PostcardReader): Header {
  return {
    chainId: r.string(),
    height: r.u64(),
    timeMs: r.u64(),
    parent: r.digest(),
    txCount: r.u64(),
    txRoot: r.digest(),
    stateRoot: r.digest(),
    validatorsHash: r.digest(),
    nextValidatorsHash: r.digest(),
    proposer: r.publicKey('proposer'),
    engine: r.string(),
  };
}

/** The header's canonical (postcard) encoding. */
export function encodeHeader(h: Header): Uint8Array {
  const w = new PostcardWriter().string(h.chainId).varint(h.height).varint(h.timeMs).fixed(h.parent);
  w.varint(h.txCount).fixed(h.txRoot).fixed(h.stateRoot).fixed(h.validatorsHash);
  return w.fixed(h.nextValidatorsHash).fixed(h.proposer).string(h.engine).finish();
}

/**
 * The header of `bytes` (`Header::decode`): only its canonical encoding, and never one that
 * announces 2^64 - 1 transactions (the block id's count would not fit). Refusals: `header`.
 */
export function decodeHeader(bytes: Uint8Array): Header {
  const r = new PostcardReader(bytes, 'header', 'header');
  const header = readHeader(r);
  r.done();
  if (!equal(encodeHeader(header), bytes)) fail('header', 'non-canonical header encoding');
  if (header.txCount === U64_MAX) fail('header', 'a header cannot announce 2^64 - 1 transactions');
  return header;
}

/** `H_consensus_value(u64be(count) || leaf_hash(first) || rest_root)` (§11.2). */
export function payloadId(count: bigint, first: Uint8Array, restRoot: Uint8Array): Uint8Array {
  return hashIn('consensus_value', concat(u64be(count), leafHash(first), restRoot));
}

/**
 * The block id the validators sign: the payload id of the re-encoded header and its
 * `tx_count` elements (the count saturates at u64::MAX as the Rust code's does).
 */
export function blockId(h: Header): Uint8Array {
  const count = h.txCount === U64_MAX ? U64_MAX : h.txCount + 1n;
  return payloadId(count, encodeHeader(h), h.txRoot);
}
