/**
 * A small synthetic chain for the client tests: headers signed with the vectors' deterministic
 * keys (RFC 8032 signatures from their seeds), validator sets that change, and a fake node
 * answering the JSON-RPC methods `pyralog light` calls, from these headers and the vectors'
 * record evidence.
 */

import { ed25519 } from '@noble/curves/ed25519.js';

import {
  PostcardWriter,
  blockId,
  emptyRoot,
  encodeHeader,
  encodeVote,
  keyText,
  sortCanonical,
  toHex,
  toHex0x,
  validatorsHash,
  voteSigningBytes,
  type Header,
  type Validator,
} from '../src/light/index.ts';
import { BASE_MS, V, hex, type Json } from './vectors.ts';

/** A validator whose secret seed is `seed` repeated. */
export function validator(seed: number, power: number): Validator & { seed: number } {
  return { key: ed25519.getPublicKey(new Uint8Array(32).fill(seed)), power: BigInt(power), seed };
}

/** The vectors' validators (seeds 1-4, powers 10-40), canonical order. */
export const SET_A = sortCanonical([validator(1, 10), validator(2, 20), validator(3, 30), validator(4, 40)]) as (Validator & { seed: number })[];
/** Another set (seeds 5-8, power 10 each), canonical order. */
export const SET_B = sortCanonical([validator(5, 10), validator(6, 10), validator(7, 10), validator(8, 10)]) as (Validator & { seed: number })[];

/** A header and the postcard of its finality proof. */
export interface Block {
  readonly header: Header;
  readonly proof: Uint8Array;
}

/** The postcard `FinalityProof::Quorum { tendermint, precommits of `signers` for `header` }`. */
export function finalityProof(header: Header, signers: readonly { key: Uint8Array; seed: number }[], round = 0): Uint8Array {
  const vote = { chainId: header.chainId, height: header.height, round, kind: 'precommit' as const, block: blockId(header) };
  const w = new PostcardWriter().byte(0).byte(0).fixed(encodeVote(vote)).varint(signers.length);
  for (const s of signers) w.fixed(s.key).fixed(ed25519.sign(voteSigningBytes(vote), new Uint8Array(32).fill(s.seed)));
  return w.finish();
}

/**
 * Headers 1..n: `sets[h - 1]` decides height h (all of it signs), the state root of every header
 * is the vectors' state (which holds the anchored record).
 */
export function buildChain(sets: readonly (readonly (Validator & { seed: number })[])[]): Block[] {
  const blocks: Block[] = [];
  let parent: Uint8Array = new Uint8Array(32);
  sets.forEach((set, i) => {
    const next = sets[i + 1] ?? set;
    const header: Header = {
      chainId: 'pyralog-spec',
      height: BigInt(i + 1),
      timeMs: BigInt(BASE_MS + 1000 * (i + 1)),
      parent,
      txCount: 0n,
      txRoot: emptyRoot(),
      stateRoot: hex(V.state.root),
      validatorsHash: validatorsHash(set),
      nextValidatorsHash: validatorsHash(next),
      proposer: set[0]!.key,
      engine: 'tendermint',
    };
    blocks.push({ header, proof: finalityProof(header, set) });
    parent = blockId(header);
  });
  return blocks;
}

/** The genesis file of a chain whose first set is `set`. */
export function genesisFile(set: readonly Validator[], extra: Record<string, unknown> = {}): Json {
  return {
    chainId: 'pyralog-spec',
    validators: set.map((v) => ({ publicKey: keyText(v.key), power: Number(v.power) })),
    consensus: { engine: 'tendermint' },
    ...extra,
  };
}

/** The vectors' record 3 as the node serves it (`record_json`). */
export function servedRecord(): Json {
  const r = V.records[3];
  return {
    offset: r.offset,
    epoch: r.epoch,
    key: '0x' + r.key,
    value: '0x' + r.value,
    headers: r.headers.map((x: Json) => ({ name: x.name, value: '0x' + x.value })),
    timestampMs: r.timestamp_ms,
    scarabId: String(r.scarab_id),
    producer: { id: r.producer.id, seq: r.producer.sequence },
  };
}

/** The vectors' finality evidence with its header and proof replaced by `block`'s. */
export function evidenceFor(block: Block): Uint8Array {
  const evidence = hex(V.finality.evidence);
  const rest = evidence.slice(hex(V.block.encoded).length + hex(V.finality_proof.postcard).length);
  return new Uint8Array([...encodeHeader(block.header), ...block.proof, ...rest]);
}

/** What a fake node serves: its blocks (by height), the sets by height, and the record answer. */
export interface FakeNode {
  readonly blocks: ReadonlyMap<bigint, Block>;
  readonly setAt: (height: bigint) => readonly Validator[];
  readonly head: bigint;
  readonly evidence: Uint8Array;
  readonly record?: Json;
}

/** A JSON-RPC `call` answering from `node`, recording the methods called. */
export function fakeCall(node: FakeNode, calls: string[] = []) {
  return async (method: string, params: Json): Promise<unknown> => {
    calls.push(`${method}${params.height === undefined ? '' : ` ${params.height}`}`);
    const block = () => {
      const b = node.blocks.get(BigInt(params.height));
      if (b === undefined) throw new Error(`no block ${params.height}`);
      return b;
    };
    switch (method) {
      case 'chain_getFinalizedHead':
        return { height: Number(node.head) };
      case 'chain_getHeader':
        return { height: params.height, encoded: toHex0x(encodeHeader(block().header)), blockId: toHex0x(blockId(block().header)) };
      case 'chain_getFinality':
        return { engine: 'tendermint', family: 'quorum', encoded: '0x' + toHex(block().proof) };
      case 'chain_getValidators':
        return { validators: node.setAt(BigInt(params.height)).map((v) => ({ publicKey: keyText(v.key), power: Number(v.power) })) };
      case 'system_status':
        return { cluster: 'alpha' };
      case 'log_getProof':
        return { record: node.record ?? servedRecord(), finality: { evidence: toHex0x(node.evidence) }, consistency: null };
      default:
        throw new Error(`unexpected ${method}`);
    }
  };
}
