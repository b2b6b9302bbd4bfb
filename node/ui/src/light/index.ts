/**
 * Pyralog's light-client verifier in TypeScript: the checks of the Rust light client
 * (docs/verifier-spec.md), byte-compatible with it, for Node and browsers. Everything refuses
 * with a {@link VerifyError} naming the step that failed.
 *
 * - {@link syncAndVerify}: `pyralog light sync` + `verify-record --finality` over any JSON-RPC call.
 * - {@link trustFromGenesis}, {@link verifyAdjacent}, {@link verifySkipping},
 *   {@link verifyFinality}: the light-client rules (§12).
 * - `parse*`: the node's RPC answers; {@link provenRecord}: a record from its proven bytes.
 * - The primitives below them (§3-§11) for tools and tests.
 */

export { VerifyError, type ErrorCode, type Step } from './errors.ts';
export { U64_MAX, fromHex, fromHex0x, toHex, toHex0x } from './bytes.ts';
export { PostcardReader, PostcardWriter, decodeAll, varint } from './postcard.ts';
export { DOMAINS, codeHash, contractId, domainKey, hashIn, partitionForKey, type Domain } from './hash.ts';
export { PUBLIC_KEY_HRP, keyProblem, keyText, parseKeyText, verifySignature } from './keys.ts';
export {
  MAJORITY,
  ONE_THIRD,
  QUORUM,
  atLeast,
  isMet,
  memberSet,
  moreThan,
  thresholdText,
  verifyShares,
  type MemberSet,
  type QuorumCertificate,
  type SignatureShare,
  type Threshold,
} from './quorum.ts';
export {
  checkServedRecord,
  decodeRecord,
  encodeRecord,
  provenFields,
  provenRecord,
  recordJson,
  type ProducerSeq,
  type ProvenFields,
  type ProvenRecord,
  type RecordHeader,
  type RecordJson,
} from './record.ts';
export {
  consistencyProblem,
  emptyRoot,
  inclusionProblem,
  leafHash,
  nodeHash,
  rootOf,
  type ConsistencyProof,
  type InclusionProof,
} from './merkle.ts';
export {
  CHECKPOINT_CONTEXT,
  checkName,
  checkpointId,
  checkpointSigningBytes,
  decodeCheckpoint,
  encodeCheckpoint,
  encodeCheckpointPostcard,
  nameProblem,
  readCheckpoint,
  readCheckpointCertificate,
  type Checkpoint,
  type ZkTree,
} from './checkpoint.ts';
export {
  ENGINES,
  VOTE_CONTEXT,
  decodeFinalityProof,
  encodeSeal,
  encodeVote,
  proofSigners,
  readCommitCertificate,
  readFinalityProof,
  readVote,
  sealHash,
  verifyFinalityProof,
  voteSigningBytes,
  type CommitCertificate,
  type Engine,
  type FinalityProof,
  type Seal,
  type Vote,
  type VoteKind,
} from './consensus.ts';
export {
  MAX_TOTAL_POWER,
  decodeValidators,
  encodeValidators,
  sortCanonical,
  validatorSet,
  validatorsHash,
  type Validator,
  type ValidatorSet,
} from './validators.ts';
export {
  PLACEHOLDER,
  accountKey,
  anchorKey,
  clusterKey,
  codeKey,
  contractKey,
  contractStorageKey,
  decodeAccount,
  decodeAnchor,
  decodeClusterRecord,
  decodeContractRecord,
  decodeStateProof,
  decodeStorageValue,
  stateProofProblem,
  type Account,
  type Anchor,
  type ClusterRecord,
  type ContractRecord,
  type ProvenValue,
  type StateProof,
} from './state.ts';
export { blockId, decodeHeader, encodeHeader, payloadId, type Header } from './header.ts';
export { checkExtends, verifyRecord, type Progress, type RecordEvidence, type RecordQuery } from './light.ts';
export {
  MAX_CLOCK_DRIFT_MS,
  checkFresh,
  decodeCometEvidence,
  decodeFinalityEvidence,
  verifyAdjacent,
  verifyCommit,
  verifyFinality,
  verifySkipping,
  verifyUnderStateRoot,
  type AnchoredState,
  type CometEvidence,
  type FinalityEvidence,
  type TrustedHead,
} from './chain.ts';
export { trustFromGenesis, type GenesisOptions } from './genesis.ts';
export {
  parseCertificate,
  parseCometEvidence,
  parseConsistency,
  parseFinality,
  parseFinalityEvidence,
  parseHeader,
  parseRecordEvidence,
  parseValidators,
} from './wire.ts';
export { syncAndVerify, type RecordRequest, type Report, type RpcCall, type SyncOptions } from './client.ts';
