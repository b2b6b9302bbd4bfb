/**
 * The whole client (`syncAndVerify`) against fake nodes: the vectors' chain (skipping from the
 * genesis straight to header 42), a synthetic chain whose validator set changes (bisection), and
 * servers that lie. Also trust from genesis files and the RPC answer parsers on bad input.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  VerifyError,
  parseConsistency,
  parseFinality,
  parseFinalityEvidence,
  parseHeader,
  parseValidators,
  provenRecord,
  checkServedRecord,
  decodeRecord,
  syncAndVerify,
  toHex,
  trustFromGenesis,
  type Step,
} from '../src/light/index.ts';
import { SET_A, SET_B, buildChain, evidenceFor, fakeCall, genesisFile, servedRecord, type FakeNode } from './chain.ts';
import { BASE_MS, NOW, V, hex } from './vectors.ts';

const QUERY = { log: 'orders', partition: 0, offset: 3 };

/** Asserts that `promise` rejects with a VerifyError of `step` whose reason contains `text`. */
async function refused(promise: Promise<unknown>, step: Step, text: string): Promise<VerifyError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof VerifyError, `not a VerifyError: ${String(err)}`);
    assert.equal(err.step, step, err.message);
    assert.ok(err.reason.includes(text), err.message);
    return err;
  }
  return assert.fail('accepted');
}

function refusedNow(body: () => unknown, step: Step, text: string): void {
  assert.throws(body, (err: unknown) => err instanceof VerifyError && err.step === step && err.reason.includes(text));
}

/** The vectors' node: header 42 (decided by the genesis set) and its record evidence. */
function vectorNode(extra: Partial<FakeNode> = {}): FakeNode {
  const header = { header: parseHeader({ encoded: '0x' + V.block.encoded }), proof: hex(V.finality_proof.postcard) };
  return { blocks: new Map([[42n, header]]), setAt: () => SET_A, head: 42n, evidence: hex(V.finality.evidence), ...extra };
}

/** A chain where SET_A decides heights 1-2 and SET_B heights 3-4 (header 2 announces it). */
function changingNode(): FakeNode {
  const blocks = buildChain([SET_A, SET_A, SET_B, SET_B]);
  const last = blocks[3]!;
  return {
    blocks: new Map(blocks.map((b) => [b.header.height, b])),
    setAt: (h) => (h <= 2n ? SET_A : SET_B),
    head: 4n,
    evidence: evidenceFor(last),
  };
}

describe('syncAndVerify', () => {
  it('verifies the vectors’ record from the genesis, skipping to header 42', async () => {
    const calls: string[] = [];
    const steps: string[] = [];
    const report = await syncAndVerify(fakeCall(vectorNode(), calls), genesisFile(SET_A), QUERY, {
      nowMs: NOW,
      onStep: (s) => steps.push(`${s.step}: ${s.detail}`),
    });
    assert.deepEqual(calls, ['chain_getFinalizedHead', 'chain_getHeader 42', 'chain_getFinality 42', 'system_status', 'log_getProof']);
    assert.equal(report.finality.height, 42);
    assert.equal(report.finality.blockId, '0x' + V.block.block_id);
    assert.equal(report.finality.stateRoot, '0x' + V.state.root);
    assert.equal(report.finality.engine, 'tendermint');
    assert.equal(report.finality.signatures, 2);
    assert.equal(report.finality.anchoredSize, 7);
    assert.equal(report.finality.anchoredRoot, '0x' + V.checkpoints.anchored.root);
    assert.deepEqual(report.record.record, servedRecord());
    assert.equal(report.record.value, '0x' + V.records[3].value);
    assert.equal(report.cluster, 'alpha');
    assert.deepEqual(
      steps.map((s) => s.split(':')[0]),
      ['genesis', 'header', 'commit', 'cluster state', 'anchor state', 'certificate', 'inclusion', 'record'],
    );
    assert.ok(steps[1]!.includes('header 42 verified by skipping (2 of 4 validators signed)'), steps[1]);
    assert.doesNotThrow(() => JSON.stringify(report));
  });

  it('bisects when the trusted set signed too little of the target header', async () => {
    const calls: string[] = [];
    const steps: string[] = [];
    const report = await syncAndVerify(fakeCall(changingNode(), calls), genesisFile(SET_A), { ...QUERY, cluster: 'alpha' }, {
      nowMs: NOW,
      onStep: (s) => steps.push(s.detail),
    });
    assert.deepEqual(calls.slice(0, 10), [
      'chain_getFinalizedHead',
      'chain_getHeader 4',
      'chain_getFinality 4',
      'chain_getValidators 4',
      'chain_getHeader 2',
      'chain_getFinality 2',
      'chain_getValidators 3',
      'chain_getHeader 4',
      'chain_getFinality 4',
      'log_getProof',
    ]);
    assert.ok(steps.includes('header 4: too few trusted signers, verifying header 2 first'), steps.join('\n'));
    assert.equal(report.sync.steps, 3);
    assert.equal(report.finality.height, 4);
    assert.equal(report.finality.signatures, 4);
  });

  it('refuses a record whose served JSON says something else than its proven bytes', async () => {
    const record = { ...servedRecord(), value: '0x00' };
    await refused(syncAndVerify(fakeCall(vectorNode({ record }), []), genesisFile(SET_A), QUERY, { nowMs: NOW }), 'record', 'differ from its proven bytes: value');
  });

  it('refuses a header decided by a set the genesis never committed to', async () => {
    const blocks = buildChain([SET_B]);
    const node = { blocks: new Map([[1n, blocks[0]!]]), setAt: () => SET_B, head: 1n, evidence: evidenceFor(blocks[0]!) };
    const err = await refused(syncAndVerify(fakeCall(node), genesisFile(SET_A), QUERY, { nowMs: NOW }), 'validators', 'without the previous set committing it');
    assert.ok(err.reason.startsWith('header 1: '), err.reason);
  });

  it('refuses trust past its trusting period', async () => {
    const genesis = genesisFile(SET_A, { consensus: { engine: 'pos' }, genesisTimeMs: BASE_MS, staking: { unbondingTimeMs: 3000 } });
    await refused(syncAndVerify(fakeCall(vectorNode()), genesis, QUERY, { nowMs: NOW }), 'header', 'trust in height 0 expired');
  });

  it('refuses a header from the future and evidence of another partition', async () => {
    await refused(syncAndVerify(fakeCall(vectorNode()), genesisFile(SET_A), QUERY, { nowMs: BASE_MS }), 'header', 'ahead of this clock');
    await refused(
      syncAndVerify(fakeCall(vectorNode()), genesisFile(SET_A), { ...QUERY, partition: 1 }, { nowMs: NOW }),
      'anchor state',
      'state proof rejected',
    );
    await refused(syncAndVerify(fakeCall(vectorNode()), genesisFile(SET_A), { ...QUERY, offset: 2 }, { nowMs: NOW }), 'inclusion', 'asked about offset 2');
  });
});

describe('trustFromGenesis', () => {
  it('trusts the genesis set in canonical order, with no period on a fixed-set chain', () => {
    const head = trustFromGenesis(genesisFile([...SET_A].reverse()));
    assert.deepEqual(head.nextValidators.map((v) => toHex(v.key)), SET_A.map((v) => toHex(v.key)));
    assert.equal(head.trustingPeriodMs, null);
    assert.equal(head.engine, 'tendermint');
    assert.equal(head.height, 0n);
  });

  it('times Proof-of-Stake trust: two thirds of the unbonding period by default', () => {
    const pos = { consensus: { engine: 'pos', baseEngine: 'pbft' }, genesisTimeMs: BASE_MS };
    const head = trustFromGenesis(genesisFile(SET_A, pos));
    assert.equal(head.engine, 'pbft');
    assert.equal(head.timeMs, BigInt(BASE_MS));
    assert.equal(head.trustingPeriodMs, (1_814_400_000n / 3n) * 2n);
    assert.equal(trustFromGenesis(genesisFile(SET_A, pos), { trustingPeriodMs: 5 }).trustingPeriodMs, 5n);
    refusedNow(() => trustFromGenesis(genesisFile(SET_A, pos), { trustingPeriodMs: 1_814_400_000 }), 'genesis', 'not shorter than the unbonding period');
    refusedNow(() => trustFromGenesis(genesisFile(SET_A, { consensus: { engine: 'pos' } })), 'genesis', 'has no genesisTimeMs');
  });

  it('leaves Proof-of-Work and CometBFT chains to the CLI', () => {
    for (const engine of ['pow', 'cometbft']) {
      assert.throws(
        () => trustFromGenesis(genesisFile(SET_A, { consensus: { engine }, genesisTimeMs: BASE_MS })),
        (err: unknown) => err instanceof VerifyError && err.code === 'unsupported' && err.reason.includes('verified by the pyralog CLI'),
      );
    }
  });

  it('refuses invalid genesis files', () => {
    const good = genesisFile(SET_A);
    const bad: [unknown, string][] = [
      [7, 'not an object'],
      [{ ...good, extra: 1 }, 'unknown field `extra`'],
      [{ ...good, chainId: '' }, 'the chain id is empty'],
      [{ ...good, validators: [] }, 'at least one validator'],
      [{ ...good, validators: [good.validators[0], good.validators[0]] }, 'appears more than once'],
      [{ ...good, validators: [{ publicKey: 'pyrpub1xyz', power: 1 }] }, 'not a Bech32m public key'],
      [{ ...good, validators: [{ ...good.validators[0], power: 0 }] }, 'zero voting power'],
      [{ ...good, consensus: { engine: 'tendermint', baseEngine: 'pbft' } }, 'only for "engine": "pos"'],
      [{ ...good, staking: { unbondingTimeMs: 10 } }, 'needs "engine": "pos"'],
      [{ ...good, consensus: { engine: 'raft' } }, 'unknown consensus engine'],
    ];
    for (const [genesis, text] of bad) refusedNow(() => trustFromGenesis(genesis), 'genesis', text);
  });
});

describe('RPC answers', () => {
  it('refuses malformed answers with a VerifyError', () => {
    const cases: [() => unknown, string][] = [
      [() => parseHeader({}), 'not a string'],
      [() => parseHeader({ encoded: V.block.encoded }), '0x-prefixed'],
      [() => parseHeader({ encoded: '0x' + V.block.encoded + '00' }), 'after the value'],
      [() => parseHeader(null), 'not an object'],
      [() => parseFinality({ encoded: '0x0004' }), 'unknown engine variant'],
      [() => parseValidators({ validators: [{ publicKey: 'pyrpub1', power: 1 }] }), 'not a Bech32m public key'],
      [() => parseValidators({ validators: 3 }), 'not an array'],
      [() => parseConsistency({ oldSize: -1, newSize: 2, path: [] }), 'not a number'],
      [() => parseConsistency({ oldSize: 1, newSize: 2, path: ['0x00'] }), 'not 32 bytes'],
      [() => parseFinalityEvidence({ finality: { evidence: 5 } }), 'not a string'],
      [() => parseFinalityEvidence({ finality: { evidence: '0xzz' } }), 'invalid hex digit'],
      [() => provenRecord(3, hex(V.records[3].encoded), { ...servedRecord(), extra: 1 }), 'extra'],
      // Names of Object.prototype's methods are extra fields too, whatever their value.
      [() => provenRecord(3, hex(V.records[3].encoded), { ...servedRecord(), constructor: 1 }), 'constructor'],
      [() => provenRecord(3, hex(V.records[3].encoded), { ...servedRecord(), toString: 'key' }), 'toString'],
      [() => checkServedRecord({ ...servedRecord(), ['__proto__']: { a: 1 } }, decodeRecord(3n, hex(V.records[3].encoded))), 'differ'],
      [() => provenRecord(3, hex(V.records[3].encoded + '00')), 'unexpected bytes after the record'],
    ];
    for (const [body, text] of cases) {
      assert.throws(body, (err: unknown) => err instanceof VerifyError && err.reason.includes(text), text);
    }
  });

  it('reads the validators a node serves, in the order served', () => {
    const served = { validators: SET_B.map((v) => ({ publicKey: V.keys[0].text, power: Number(v.power) })).slice(0, 1) };
    assert.deepEqual(parseValidators(served).map((v) => [toHex(v.key), v.power]), [[V.keys[0].public, 10n]]);
  });
});
