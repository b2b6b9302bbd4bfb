/**
 * `pyralog light sync` then `pyralog light verify-record --finality`, in one call and without
 * stored state: trust starts from the genesis every time (so no anchored checkpoint is trusted
 * before, and no consistency proof is needed), headers are followed by skipping with bisection
 * up to the server's finalized head, and the record's evidence is verified under the trust
 * reached. Only the genesis is trusted; every answer of `call` is checked.
 */

import { equal, toHex0x, u64Json } from './bytes.ts';
import { VerifyError, fail, type Step } from './errors.ts';
import { verifyAdjacent, verifyFinality, verifySkipping, type TrustedHead } from './chain.ts';
import { checkName } from './checkpoint.ts';
import { blockId } from './header.ts';
import { proofSigners, type Engine } from './consensus.ts';
import { trustFromGenesis } from './genesis.ts';
import type { RecordQuery } from './light.ts';
import { provenFields, provenRecord, type ProvenFields } from './record.ts';
import { validatorsHash, type Validator } from './validators.ts';
import { parseConsistency, parseFinality, parseFinalityEvidence, parseHeader, parseValidators, u64Field } from './wire.ts';

/** A JSON-RPC call to the (untrusted) node: resolves with the answer's `result`. */
export type RpcCall = (method: string, params: object) => Promise<unknown>;

/** What to verify: the record at `offset` of `log`'s `partition` (cluster: the node's own by default). */
export interface RecordRequest {
  /** The cluster holding the log (default: `system_status`'s). */
  readonly cluster?: string;
  /** The log. */
  readonly log: string;
  /** The partition. */
  readonly partition: number;
  /** The offset. */
  readonly offset: number;
}

/** Options of {@link syncAndVerify}. */
export interface SyncOptions {
  /** The client's clock, ms since the Unix epoch (default: `Date.now()`). */
  readonly nowMs?: number;
  /** Called as each step passes, with what it established. */
  readonly onStep?: (step: { step: string; detail: string }) => void;
  /** How long a verified header stays trusted, ms (default: as the genesis implies). */
  readonly trustingPeriodMs?: number;
}

/** What a verified record comes with: the trust reached, the finality path and the proven fields. */
export interface Report {
  /** Always true: anything else is a thrown {@link VerifyError}. */
  readonly verified: true;
  /** The chain. */
  readonly chainId: string;
  /** The cluster, log, partition and offset verified. */
  readonly cluster: string;
  /** The log. */
  readonly log: string;
  /** The partition. */
  readonly partition: number;
  /** The offset. */
  readonly offset: number;
  /** The headers followed: from the genesis to the server's finalized head. */
  readonly sync: {
    readonly from: number | string;
    readonly height: number | string;
    readonly blockId: string;
    readonly steps: number;
    readonly validators: number;
  };
  /** The finality path (`verify-record --finality`'s `finality`). */
  readonly finality: {
    readonly height: number | string;
    readonly blockId: string;
    readonly stateRoot: string;
    readonly engine: Engine;
    readonly signatures: number;
    readonly anchoredSize: number | string;
    readonly anchoredRoot: string;
    readonly trustedHeight: number | string;
  };
  /** The record's fields, every one from its proven bytes. */
  readonly record: ProvenFields;
}

/** Rethrows `err` with `context` before its reason (anyhow's `context`); anything else as is. */
function withContext(err: unknown, context: string): never {
  if (err instanceof VerifyError) throw new VerifyError(err.step, `${context}: ${err.reason}`, err.code);
  throw err;
}

/** A field of an RPC answer object (refused as `encoding` when the answer is no object). */
function fieldOf(answer: unknown, name: string, what: string): unknown {
  if (answer === null || typeof answer !== 'object') fail('encoding', `${what}: not an object`);
  return (answer as Record<string, unknown>)[name];
}

/** The server's node, seen through its answers, and the client's clock. */
class Server {
  constructor(
    private readonly call: RpcCall,
    private readonly clock: () => number,
  ) {}

  /** The client's clock at this step (read at each step, as the CLI does). */
  now(): number {
    return this.clock();
  }

  /** The header at `height` and its finality proof, as the server says. */
  async headerAt(height: bigint) {
    const header = parseHeader(await this.call('chain_getHeader', { height: u64Json(height) }));
    if (header.height !== height) fail('header', `asked for header ${height}, got header ${header.height}`);
    const proof = parseFinality(await this.call('chain_getFinality', { height: u64Json(height) }));
    return { header, proof };
  }

  /** The validators of `height`, as the server says (the caller checks them against hashes). */
  async validatorsAt(height: bigint): Promise<Validator[]> {
    return parseValidators(await this.call('chain_getValidators', { height: u64Json(height) }));
  }
}

/** One step from `trusted` to `height` (cli `step`): adjacent when next, else skipping. */
async function step(server: Server, trusted: TrustedHead, height: bigint) {
  const { header, proof } = await server.headerAt(height);
  const next = equal(header.nextValidatorsHash, header.validatorsHash) ? null : await server.validatorsAt(height + 1n);
  const signers = proofSigners(proof).length;
  if (height === trusted.height + 1n) {
    const head = verifyAdjacent(trusted, header, proof, next, server.now());
    return { head, mode: 'sequentially', signers, of: trusted.nextValidators.length };
  }
  const validators = equal(header.validatorsHash, validatorsHash(trusted.nextValidators))
    ? trusted.nextValidators
    : await server.validatorsAt(height);
  const head = verifySkipping(trusted, header, proof, validators, next, server.now());
  return { head, mode: 'by skipping', signers, of: validators.length };
}

/**
 * Follows the chain from `genesis` to the server's finalized head, then verifies the record
 * `query` up to a finalized header (see the module docs). Resolves with the {@link Report};
 * rejects with a {@link VerifyError} when anything does not verify (failures of `call` itself,
 * such as network errors, are passed through as they are).
 */
export async function syncAndVerify(
  call: RpcCall,
  genesis: unknown,
  query: RecordRequest,
  opts: SyncOptions = {},
): Promise<Report> {
  const emit = (step: Step, detail: string) => opts.onStep?.({ step, detail });
  const server = new Server(call, opts.nowMs === undefined ? Date.now : () => opts.nowMs!);
  const period = opts.trustingPeriodMs === undefined ? {} : { trustingPeriodMs: opts.trustingPeriodMs };
  const start = trustFromGenesis(genesis, period);
  emit('genesis', `trusting ${start.chainId} (${start.engine}) from its genesis: ${start.nextValidators.length} validators`);
  const partition = query.partition;
  const offset = query.offset;
  if (!Number.isSafeInteger(partition) || partition < 0 || partition > 0xffffffff) fail('checkpoint', 'partition: not a u32');
  if (!Number.isSafeInteger(offset) || offset < 0) fail('inclusion', 'offset: not a u64');

  // `pyralog light sync`: skip to the finalized head, bisecting where the trusted set's overlap
  // is too small (CometBFT's light client does the same).
  const finalized = await call('chain_getFinalizedHead', {});
  const target = u64Field(fieldOf(finalized, 'height', 'chain_getFinalizedHead'), 'height');
  let head = start;
  let goal = target;
  let steps = 0;
  while (head.height < target) {
    steps += 1;
    try {
      const next = await step(server, head, goal);
      head = next.head;
      emit('header', `header ${goal} verified ${next.mode} (${next.signers} of ${next.of} validators signed)`);
      goal = target;
    } catch (err) {
      if (err instanceof VerifyError && err.code === 'not-enough-trust' && goal > head.height + 1n) {
        const half = head.height + (goal - head.height) / 2n;
        emit('header', `header ${goal}: too few trusted signers, verifying header ${half} first`);
        goal = half;
      } else {
        withContext(err, `header ${goal}`);
      }
    }
  }

  // `pyralog light verify-record --finality`, with no anchored checkpoint trusted before.
  let cluster = query.cluster;
  if (cluster === undefined) {
    const status = await call('system_status', {});
    const named = fieldOf(status, 'cluster', 'system_status');
    if (typeof named !== 'string') fail('encoding', 'system_status.cluster: not a string');
    cluster = named;
  }
  const record: RecordQuery = {
    cluster: checkName(cluster, 'cluster id', 'checkpoint'),
    log: checkName(query.log, 'log name', 'checkpoint'),
    partition,
    offset: BigInt(offset),
  };
  const answer = await call('log_getProof', { log: query.log, partition, offset, cluster, finality: true });
  const served = fieldOf(answer, 'consistency', 'log_getProof');
  const consistency = served === null || served === undefined ? null : parseConsistency(served);
  const evidence = parseFinalityEvidence(answer);
  const anchored = verifyFinality(head, record, evidence, null, consistency, server.now(), emit);
  const proven = provenRecord(record.offset, evidence.record, fieldOf(answer, 'record', 'log_getProof') ?? null);
  emit('record', `record ${offset} decoded from its proven bytes; the served copy says the same`);
  const header = evidence.header;
  return {
    verified: true,
    chainId: head.chainId,
    cluster,
    log: query.log,
    partition,
    offset,
    sync: {
      from: 0,
      height: u64Json(head.height),
      blockId: toHex0x(head.blockId),
      steps,
      validators: head.nextValidators.length,
    },
    finality: {
      height: u64Json(header.height),
      blockId: toHex0x(blockId(header)),
      stateRoot: toHex0x(header.stateRoot),
      engine: evidence.finality.engine,
      signatures: proofSigners(evidence.finality).length,
      anchoredSize: u64Json(anchored.size),
      anchoredRoot: toHex0x(anchored.root),
      trustedHeight: u64Json(head.height),
    },
    record: provenFields(proven),
  };
}
