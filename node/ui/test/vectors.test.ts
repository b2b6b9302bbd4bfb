/**
 * Every section of docs/verifier-vectors.json the TypeScript verifier covers, checked the way
 * node/tests/node/spec_vectors/ checks the Rust code: encodings rebuilt, hashes recomputed,
 * signatures and proofs verified, and the whole finality path accepted.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ed25519 } from '@noble/curves/ed25519.js';

import {
  CHECKPOINT_CONTEXT,
  DOMAINS,
  MAJORITY,
  PostcardReader,
  QUORUM,
  VOTE_CONTEXT,
  VerifyError,
  accountKey,
  anchorKey,
  blockId,
  checkpointId,
  checkpointSigningBytes,
  clusterKey,
  codeHash,
  codeKey,
  consistencyProblem,
  contractId,
  contractKey,
  contractStorageKey,
  decodeAccount,
  decodeAll,
  decodeAnchor,
  decodeCheckpoint,
  decodeClusterRecord,
  decodeCometEvidence,
  decodeContractRecord,
  decodeFinalityEvidence,
  decodeFinalityProof,
  decodeHeader,
  decodeRecord,
  decodeStateProof,
  decodeStorageValue,
  decodeValidators,
  domainKey,
  emptyRoot,
  encodeCheckpoint,
  encodeCheckpointPostcard,
  encodeHeader,
  encodeRecord,
  encodeSeal,
  encodeValidators,
  encodeVote,
  hashIn,
  inclusionProblem,
  isMet,
  keyText,
  leafHash,
  memberSet,
  moreThan,
  parseKeyText,
  readCheckpoint,
  readCheckpointCertificate,
  readCommitCertificate,
  readFinalityProof,
  readVote,
  rootOf,
  sealHash,
  stateProofProblem,
  toHex,
  validatorSet,
  validatorsHash,
  varint,
  verifyAdjacent,
  verifyFinality,
  verifyFinalityProof,
  verifyShares,
  verifySkipping,
  verifyUnderStateRoot,
  voteSigningBytes,
  type Checkpoint,
} from '../src/light/index.ts';
import { NOW, V, genesisHead, hex, query, trustedHead, validators, type Json } from './vectors.ts';

const h = toHex;

describe('primitives (§3)', () => {
  it('derives every domain key from its context string', () => {
    for (const d of V.domains) {
      assert.equal(DOMAINS[d.name as keyof typeof DOMAINS], d.context);
      assert.equal(h(domainKey(d.name)), d.key, d.name);
    }
  });

  it('has the signing contexts', () => {
    assert.equal(h(CHECKPOINT_CONTEXT), V.signing_contexts[0].bytes);
    assert.equal(h(VOTE_CONTEXT), V.signing_contexts[1].bytes);
  });

  it('parses and prints every key in Bech32m, and derives it from its seed', () => {
    for (const k of V.keys.concat([V.contracts.creator])) {
      assert.equal(h(parseKeyText(k.text, k.name)), k.public);
      assert.equal(keyText(hex(k.public)), k.text);
      assert.equal(h(ed25519.getPublicKey(hex(k.secret))), k.public);
    }
  });

  it('decodes and encodes the postcard examples', () => {
    const [zero, small, two, three, max, ab, vec, none, some, digest] = V.postcard;
    const u64 = (x: Json) => decodeAll(hex(x.bytes), 'u64', (r) => r.u64());
    assert.deepEqual([zero, small, two, three, max].map(u64), [0n, 127n, 128n, 300n, (1n << 64n) - 1n]);
    for (const [x, n] of [[zero, 0n], [small, 127n], [two, 128n], [three, 300n], [max, (1n << 64n) - 1n]] as const) {
      assert.equal(h(varint(n)), x.bytes);
    }
    assert.equal(decodeAll(hex(ab.bytes), 'string', (r) => r.string()), 'ab');
    assert.deepEqual([...decodeAll(hex(vec.bytes), 'bytes', (r) => r.byteVec())], [1, 2, 3]);
    assert.equal(decodeAll(hex(none.bytes), 'option', (r) => r.option((x) => x.u64())), null);
    assert.equal(decodeAll(hex(some.bytes), 'option', (r) => r.option((x) => x.u64())), 5n);
    assert.equal(h(decodeAll(hex(digest.bytes), 'digest', (r) => r.digest())), 'ab'.repeat(32));
  });

  it('refuses overlong, out-of-range and trailing postcard', () => {
    for (const bad of ['8000', 'ffffffffffffffffff02', 'ffffffffffffffffffff01', '0000', '80']) {
      assert.throws(() => decodeAll(hex(bad), 'u64', (r) => r.u64()), VerifyError, bad);
    }
    assert.throws(() => decodeAll(hex('ffff04'), 'u16', (r) => r.u16()), VerifyError);
    assert.equal(decodeAll(hex('ffff03'), 'u16', (r) => r.u16()), 0xffff);
  });

  it('meets thresholds exactly', () => {
    const rules: Record<string, [number, number]> = { '> 2/3': [2, 3], '> 1/2': [1, 2], '> 1/3': [1, 3] };
    for (const t of V.thresholds) {
      const [n, d] = rules[t.rule]!;
      assert.equal(isMet(moreThan(n, d), BigInt(t.signed), BigInt(t.total)), t.met, JSON.stringify(t));
    }
  });
});

describe('records and Merkle trees (§4, §5)', () => {
  it('decodes every record from its encoding, and re-encodes it', () => {
    for (const r of V.records) {
      const d = decodeRecord(BigInt(r.offset), hex(r.encoded));
      assert.equal(d.epoch, BigInt(r.epoch));
      assert.equal(d.timestampMs, BigInt(r.timestamp_ms));
      assert.equal(d.scarabId, BigInt(r.scarab_id));
      assert.equal(d.key === null ? null : h(d.key), r.key);
      assert.equal(h(d.value), r.value);
      assert.deepEqual(d.headers.map((x) => ({ name: x.name, value: h(x.value) })), r.headers);
      assert.deepEqual(d.producer, r.producer === null ? null : { id: BigInt(r.producer.id), sequence: BigInt(r.producer.sequence) });
      assert.equal(h(encodeRecord(d)), r.encoded);
      assert.equal(h(leafHash(hex(r.encoded))), r.leaf_hash);
    }
  });

  it('computes the empty root and the roots of 1..7 records', () => {
    const leaves = V.records.map((r: Json) => hex(r.leaf_hash));
    assert.equal(h(emptyRoot()), V.merkle.empty_root);
    for (const root of V.merkle.roots) assert.equal(h(rootOf(leaves.slice(0, root.size))), root.root);
  });

  it('accepts the inclusion proof and refuses another leaf or a short path', () => {
    const inc = V.merkle.inclusion;
    const path = inc.path.map(hex);
    const args = [BigInt(inc.index), BigInt(inc.size)] as const;
    assert.equal(inclusionProblem(...args, hex(inc.leaf_hash), path, hex(inc.root)), undefined);
    assert.notEqual(inclusionProblem(...args, hex(V.records[2].leaf_hash), path, hex(inc.root)), undefined);
    assert.notEqual(inclusionProblem(...args, hex(inc.leaf_hash), path.slice(0, 2), hex(inc.root)), undefined);
  });

  it('accepts both consistency proofs and refuses a forged old root', () => {
    for (const c of V.merkle.consistency) {
      const args = [BigInt(c.old_size), BigInt(c.new_size)] as const;
      const path = c.path.map(hex);
      assert.equal(consistencyProblem(...args, hex(c.old_root), hex(c.new_root), path), undefined);
      assert.notEqual(consistencyProblem(...args, hex(c.new_root), hex(c.new_root), path), undefined);
      assert.equal(path.length, c.old_size === 3 ? 4 : 1);
    }
  });
});

describe('checkpoints and certificates (§6, §7)', () => {
  it('decodes, encodes, identifies and signs every checkpoint in both forms', () => {
    for (const [name, c] of Object.entries<Json>(V.checkpoints)) {
      const d = decodeCheckpoint(hex(c.encoded));
      assert.deepEqual(
        [d.cluster, d.log, d.partition, d.epoch, d.size, h(d.root), d.timeMs],
        [c.cluster, c.log, c.partition, BigInt(c.epoch), BigInt(c.size), c.root, BigInt(c.time_ms)],
        name,
      );
      assert.deepEqual(Object.fromEntries(Object.entries(d.zkRoots).map(([k, v]) => [k, h(v)])), c.zk_roots);
      assert.equal(h(encodeCheckpoint(d)), c.encoded);
      assert.equal(h(checkpointId(d)), c.id);
      assert.equal(h(checkpointSigningBytes(d)), c.signing_bytes);
      const post = decodeAll(hex(c.postcard), 'checkpoint', readCheckpoint);
      assert.equal(h(encodeCheckpoint(post)), c.encoded);
      assert.equal(h(encodeCheckpointPostcard(d)), c.postcard);
    }
  });

  it('verifies the checkpoint certificate with a majority of the members', () => {
    const cert = decodeAll(hex(V.checkpoint_certificate.postcard), 'certificate', readCheckpointCertificate);
    assert.equal(h(encodeCheckpoint(cert.message)), V.checkpoints.anchored.encoded);
    assert.deepEqual(
      cert.signatures.map((s) => ({ signature: h(s.signature), signer: h(s.signer) })),
      V.checkpoint_certificate.signatures,
    );
    const members = memberSet(V.checkpoint_certificate.members.map((m: string) => [hex(m), 1n] as const), 'certificate', '');
    for (const light of [true, false]) {
      const signed = verifyShares(cert.signatures, checkpointSigningBytes(cert.message), members, MAJORITY, light, 'certificate', '');
      assert.equal(signed, 2n);
    }
  });
});

describe('validators, headers, votes and finality proofs (§8, §9, §11)', () => {
  it('orders, encodes and hashes the validator set', () => {
    const set = validatorSet([...validators()].reverse());
    assert.deepEqual(set.validators.map((v) => h(v.key)), V.validators.set.map((v: Json) => v.public));
    assert.equal(set.total, BigInt(V.validators.total_power));
    assert.equal(h(encodeValidators(set.validators)), V.validators.postcard);
    assert.equal(h(validatorsHash(set.validators)), V.validators.hash);
  });

  it('decodes the header, re-encodes it and computes its block id', () => {
    const b = V.block;
    const header = decodeHeader(hex(b.encoded));
    const f = b.header;
    assert.deepEqual(
      [header.chainId, header.height, header.timeMs, h(header.parent), header.txCount, h(header.txRoot)],
      [f.chain_id, BigInt(f.height), BigInt(f.time_ms), f.parent, BigInt(f.tx_count), f.tx_root],
    );
    assert.deepEqual(
      [h(header.stateRoot), h(header.validatorsHash), h(header.nextValidatorsHash), h(header.proposer), header.engine],
      [f.state_root, f.validators_hash, f.next_validators_hash, f.proposer, f.engine],
    );
    assert.equal(h(encodeHeader(header)), b.encoded);
    assert.equal(h(rootOf(b.transactions.map((t: string) => leafHash(hex(t))))), f.tx_root);
    assert.equal(h(blockId(header)), b.block_id);
    assert.throws(() => decodeHeader(hex(b.encoded + '00')), VerifyError, 'headers are canonical');
  });

  it('decodes the votes and builds their signing bytes and postcard', () => {
    for (const name of ['vote', 'nil_prevote']) {
      const v = V[name];
      const vote = decodeAll(hex(v.postcard), 'vote', readVote);
      assert.deepEqual(
        [vote.chainId, vote.height, vote.round, vote.kind, vote.block === null ? null : h(vote.block)],
        [v.chain_id, BigInt(v.height), v.round, v.kind, v.block],
      );
      assert.equal(h(voteSigningBytes(vote)), v.signing_bytes);
      assert.equal(h(encodeVote(vote)), v.postcard);
    }
  });

  it('verifies the commit certificate with 70 of 100', () => {
    const cert = decodeAll(hex(V.commit_certificate.postcard), 'commit certificate', readCommitCertificate);
    assert.deepEqual(cert.signatures.map((s) => ({ signature: h(s.signature), signer: h(s.signer) })), V.commit_certificate.signatures);
    const set = validatorSet(validators());
    const signed = verifyShares(cert.signatures, voteSigningBytes(cert.message), set.members, QUORUM, false, 'commit', '');
    assert.equal(signed, BigInt(V.commit_certificate.signed_power));
  });

  it('verifies the Tendermint and PBFT finality proofs, each only for its engine', () => {
    const set = validatorSet(validators());
    const block = hex(V.block.block_id);
    for (const [name, engine, other] of [['finality_proof', 'tendermint', 'pbft'], ['finality_proof_pbft', 'pbft', 'tendermint']] as const) {
      const proof = decodeFinalityProof(hex(V[name].postcard));
      assert.equal(proof.engine, V[name].engine);
      assert.equal(verifyFinalityProof(proof, engine, 'pyralog-spec', 42n, block, set, false), 70n);
      assert.throws(() => verifyFinalityProof(proof, other, 'pyralog-spec', 42n, block, set, false), VerifyError);
    }
  });

  it('decodes the consensus info and checks the double sign it carries', () => {
    const info = V.consensus_info;
    const decoded = decodeAll(hex(info.postcard), 'consensus info', (r: PostcardReader) => ({
      lastCommit: r.option(readFinalityProof),
      evidence: r.seq((x) => {
        assert.equal(x.variant(2, 'evidence'), 0);
        return { accused: x.publicKey('validator'), first: readVote(x), firstSig: x.fixed(64), second: readVote(x), secondSig: x.fixed(64) };
      }),
    }));
    assert.equal(decoded.lastCommit?.family, 'quorum');
    const e = decoded.evidence[0]!;
    assert.equal(h(e.accused), info.accused);
    assert.equal(h(voteSigningBytes(e.first)), info.first.signing_bytes);
    assert.equal(h(e.firstSig), info.first_signature);
    assert.equal(h(e.secondSig), info.second_signature);
    assert.ok(ed25519.verify(e.firstSig, voteSigningBytes(e.first), e.accused));
    assert.ok(ed25519.verify(e.secondSig, voteSigningBytes(e.second), e.accused));
  });
});

describe('state proofs (§10)', () => {
  it('verifies every state proof and refuses a forged value or the opposite presence', () => {
    const root = hex(V.state.root);
    for (const p of V.state.proofs) {
      const key = hex(p.key);
      const value = p.value === null ? null : hex(p.value);
      const proof = decodeStateProof(hex(p.proof));
      assert.equal(h(hashIn('chain_state', key)), p.key_hash);
      if (value !== null) assert.equal(h(hashIn('chain_state', value)), p.value_hash);
      assert.equal(stateProofProblem(root, key, value, proof), undefined, p.name);
      assert.notEqual(stateProofProblem(root, key, new TextEncoder().encode('forged'), proof), undefined);
      if (value !== null) assert.notEqual(stateProofProblem(root, key, null, proof), undefined);
    }
  });

  it('builds the state keys and decodes the state values', () => {
    const byName = Object.fromEntries(V.state.proofs.map((p: Json) => [p.name, p]));
    assert.equal(h(clusterKey('alpha')), byName.cluster.key);
    assert.equal(h(clusterKey('beta')), byName.absent.key);
    assert.equal(h(anchorKey('alpha', 'orders', 0)), byName.anchor.key);
    assert.equal(h(accountKey(hex(V.validators.set[3].public))), byName.account.key);
    assert.deepEqual(decodeAccount(hex(byName.account.value)), { balance: 1000n, nonce: 3n });
    assert.equal(h(encodeValidators(decodeValidators(hex(byName.validators.value)))), V.validators.postcard);
    const cluster = decodeClusterRecord(hex(byName.cluster.value));
    assert.equal(h(cluster.owner), V.keys[4].public);
    assert.deepEqual(cluster.members.map(h), V.checkpoint_certificate.members);
    assert.deepEqual(cluster.peers, ['/ip4/127.0.0.1/tcp/40333']);
    const anchor = decodeAnchor(hex(byName.anchor.value));
    assert.equal(h(encodeCheckpoint(anchor.certificate.message)), V.checkpoints.anchored.encoded);
    assert.equal(anchor.height, 41n);
  });

  it('verifies the contracts section (§10.6)', () => {
    const c = V.contracts;
    const code = codeHash(hex(c.wasm));
    assert.equal(h(code), c.code_hash);
    assert.equal(h(codeKey(code)), c.code_key);
    const id = contractId(hex(c.creator.public), BigInt(c.nonce));
    assert.equal(h(id), c.contract_id);
    const [record, storage, absent] = c.proofs;
    assert.equal(h(contractKey(id)), record.key);
    assert.equal(h(contractStorageKey(id, hex(c.storage.key))), storage.key);
    assert.equal(h(contractStorageKey(id, new Uint8Array([...hex(c.storage.key).slice(0, -1), 2]))), absent.key);
    for (const p of c.proofs) {
      const value = p.value === null ? null : hex(p.value);
      assert.equal(stateProofProblem(hex(c.root), hex(p.key), value, decodeStateProof(hex(p.proof))), undefined, p.name);
    }
    const decoded = decodeContractRecord(hex(record.value));
    assert.deepEqual(
      [h(decoded.code), h(decoded.creator), decoded.createdAt, decoded.balance],
      [c.record.code, c.creator.public, BigInt(c.record.created_at), BigInt(c.record.balance)],
    );
    assert.equal(h(decodeStorageValue(hex(storage.value))), c.storage.value);
  });
});

describe('the light client (§12)', () => {
  const evidence = () => decodeFinalityEvidence(hex(V.finality.evidence));
  const trustedAnchor = (): Checkpoint => decodeCheckpoint(hex(V.finality.trusted_anchor));
  const consistency = () => ({
    oldSize: BigInt(V.finality.consistency.old_size),
    newSize: BigInt(V.finality.consistency.new_size),
    path: V.finality.consistency.path.map(hex),
  });

  it('accepts the whole finality path', () => {
    const anchored = verifyFinality(trustedHead(), query(), evidence(), trustedAnchor(), consistency(), NOW);
    assert.equal(h(encodeCheckpoint(anchored)), V.checkpoints.anchored.encoded);
    const steps: string[] = [];
    verifyFinality(trustedHead(), query(), evidence(), trustedAnchor(), consistency(), NOW, (s) => steps.push(s));
    assert.deepEqual(steps, ['commit', 'cluster state', 'anchor state', 'certificate', 'inclusion', 'consistency']);
  });

  it('follows the header sequentially and by skipping to the same head', () => {
    const e = evidence();
    const after = verifyAdjacent(trustedHead(), e.header, e.finality, null, NOW);
    assert.equal(after.height, 42n);
    assert.equal(h(after.blockId), V.block.block_id);
    const skipped = verifySkipping(genesisHead(), e.header, e.finality, validators(), null, NOW);
    assert.deepEqual(skipped, after);
  });

  it('accepts the same record path under the CometBFT app hash', () => {
    const comet = decodeCometEvidence(hex(V.finality.comet_evidence));
    assert.equal(comet.height, 42n);
    const anchored = verifyUnderStateRoot(hex(V.finality.comet_app_hash), query(), comet, trustedAnchor(), consistency());
    assert.equal(h(checkpointId(anchored)), V.checkpoints.anchored.id);
  });
});

describe('Proof-of-Work (§8.7): decoded, left to the CLI', () => {
  it('encodes and hashes the seals, decodes the work proof and refuses to verify it here', () => {
    const p = V.pow;
    const proof = decodeFinalityProof(hex(p.finality_proof));
    assert.equal(proof.family, 'work');
    assert.ok(proof.family === 'work');
    proof.seals.forEach((seal, i) => {
      assert.equal(h(encodeSeal(seal)), p.seals[i].encoding);
      assert.equal(h(sealHash(seal)), p.seals[i].hash);
    });
    const set = validatorSet(validators());
    assert.throws(
      () => verifyFinalityProof(proof, 'pow', 'pyralog-spec', 1n, proof.seals[0]!.block, set, true),
      (err: unknown) => err instanceof VerifyError && err.code === 'unsupported',
    );
  });
});
