/**
 * A record against a checkpoint certificate (spec §12.7, crypto/src/light.rs): the checkpoint
 * names the partition asked about, a majority of its signers certified it, the record is at the
 * offset asked in its tree, and it extends the checkpoint the client trusted before.
 */

import { equal, toHex } from './bytes.ts';
import { fail, type Step } from './errors.ts';
import { checkpointSigningBytes, partitionName, type Checkpoint } from './checkpoint.ts';
import { consistencyProblem, inclusionProblem, leafHash, type ConsistencyProof, type InclusionProof } from './merkle.ts';
import { MAJORITY, verifyShares, type MemberSet, type QuorumCertificate } from './quorum.ts';

/** Called as each step of a verification passes, with what it established (for a progress view). */
export type Progress = (step: Step, detail: string) => void;

/** One record position a client asks about. */
export interface RecordQuery {
  /** The cluster. */
  readonly cluster: string;
  /** The log. */
  readonly log: string;
  /** The partition (u32). */
  readonly partition: number;
  /** The offset. */
  readonly offset: bigint;
}

/** What proves a record under a checkpoint certificate. */
export interface RecordEvidence {
  /** The record's canonical encoding. */
  readonly record: Uint8Array;
  /** Its inclusion proof. */
  readonly proof: InclusionProof;
  /** The certified checkpoint. */
  readonly certificate: QuorumCertificate<Checkpoint>;
}

/**
 * Checks `evidence` for `query` against `signers` (light: signatures up to the majority) and,
 * when the client trusted an earlier checkpoint of the partition, that the new one extends it.
 * Returns the certified checkpoint; `progress` hears of each step passed.
 */
export function verifyRecord(
  query: RecordQuery,
  signers: MemberSet,
  evidence: RecordEvidence,
  trusted?: Checkpoint | null,
  consistency?: ConsistencyProof | null,
  progress?: Progress,
): Checkpoint {
  const checkpoint = evidence.certificate.message;
  if (checkpoint.cluster !== query.cluster || checkpoint.log !== query.log || checkpoint.partition !== query.partition) {
    const asked = partitionName(query.cluster, query.log, query.partition);
    const got = partitionName(checkpoint.cluster, checkpoint.log, checkpoint.partition);
    fail('checkpoint', `checkpoint is for ${got}, asked about ${asked}`);
  }
  if (evidence.proof.index !== query.offset) {
    fail('inclusion', `proof is for offset ${evidence.proof.index}, asked about offset ${query.offset}`);
  }
  const signed = verifyShares(
    evidence.certificate.signatures,
    checkpointSigningBytes(checkpoint),
    signers,
    MAJORITY,
    true,
    'certificate',
    'checkpoint certificate: ',
  );
  progress?.('certificate', `checkpoint of size ${checkpoint.size} certified by ${signed} of ${signers.total} members`);
  if (evidence.proof.size !== checkpoint.size) {
    fail(
      'inclusion',
      `inclusion proof: proof is for tree size ${evidence.proof.size}, the signed checkpoint has size ${checkpoint.size}`,
    );
  }
  const problem = inclusionProblem(
    evidence.proof.index,
    evidence.proof.size,
    leafHash(evidence.record),
    evidence.proof.path,
    checkpoint.root,
  );
  if (problem !== undefined) fail('inclusion', `inclusion proof: ${problem}`);
  progress?.('inclusion', `record ${query.offset} is in the certified tree of ${checkpoint.size} records`);
  if (trusted !== undefined && trusted !== null) {
    checkExtends(trusted, checkpoint, consistency ?? null);
    progress?.('consistency', `the tree of ${checkpoint.size} records extends the trusted one of ${trusted.size}`);
  }
  return checkpoint;
}

/**
 * Checks that `newer` extends `trusted` (same partition assumed, §6.5): not smaller, the same
 * root at the same size, and a consistency proof between them when it grew.
 */
export function checkExtends(trusted: Checkpoint, newer: Checkpoint, consistency: ConsistencyProof | null): void {
  const fork = (reason: string): never =>
    fail('consistency', `certified state does not extend the trusted checkpoint (fork): ${reason}`);
  if (newer.size < trusted.size) {
    fail('consistency', `checkpoint of size ${newer.size} is older than the trusted size ${trusted.size} (rollback)`);
  }
  if (newer.size === trusted.size) {
    // The Rust code reports this fork with its inclusion-root wording; kept for parity.
    if (!equal(newer.root, trusted.root)) {
      fork(`inclusion proof leads to root ${toHex(newer.root)}, expected ${toHex(trusted.root)}`);
    }
    return;
  }
  if (consistency === null) fail('consistency', `no consistency proof from the trusted checkpoint of size ${trusted.size}`);
  if (consistency.newSize !== newer.size) {
    fork(`proof is for tree size ${consistency.newSize}, the signed checkpoint has size ${newer.size}`);
  }
  if (consistency.oldSize !== trusted.size) {
    fork(`proof is for tree size ${consistency.oldSize}, the signed checkpoint has size ${trusted.size}`);
  }
  const problem = consistencyProblem(trusted.size, newer.size, trusted.root, newer.root, consistency.path);
  if (problem !== undefined) fork(problem);
}
