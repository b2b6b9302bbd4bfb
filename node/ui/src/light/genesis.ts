/**
 * Trust from a genesis file, as `pyralog light sync` builds it (node/src/cli/light/chain.rs
 * `sync`, node/chain/src/genesis.rs): the chain id, the engine deciding blocks, the first
 * validator set in canonical order, the genesis time, and a trusting period (by default two
 * thirds of the unbonding period on a Proof-of-Stake chain, none otherwise).
 */

import { utf8 } from './bytes.ts';
import { fail, guard } from './errors.ts';
import type { TrustedHead } from './chain.ts';
import { isEngine, type Engine } from './consensus.ts';
import { parseKeyText } from './keys.ts';
import { validatorSet, type Validator } from './validators.ts';

/** Options of {@link trustFromGenesis}. */
export interface GenesisOptions {
  /** How long a verified header stays trusted, ms (`--trusting-period-ms`). */
  readonly trustingPeriodMs?: number | bigint;
}

/** The unbonding period of Proof-of-Stake chains without a staking section: 21 days. */
const DEFAULT_UNBONDING_TIME_MS = 21n * 24n * 3600n * 1000n;

const GENESIS_FIELDS = ['chainId', 'validators', 'accounts', 'clusters', 'consensus', 'genesisTimeMs', 'staking'];
const CONSENSUS_FIELDS = ['engine', 'baseEngine', 'viewTimeoutMs', 'pow'];

function object(value: unknown, what: string, fields?: string[]): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('genesis', `${what}: not an object`);
  const record = value as Record<string, unknown>;
  // The genesis file refuses unknown fields (serde `deny_unknown_fields`): a typo is an error.
  const unknown = fields === undefined ? undefined : Object.keys(record).find((k) => !fields.includes(k));
  if (unknown !== undefined) fail('genesis', `${what}: unknown field \`${unknown}\``);
  return record;
}

function u64(value: unknown, what: string): bigint {
  if (typeof value === 'bigint' && value >= 0n && value < 1n << 64n) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  return fail('genesis', `${what}: not a u64`);
}

/** The engine choice of a genesis (`consensus.engine`): an engine, or Proof-of-Stake. */
type EngineChoice = Engine | 'pos';

function consensusOf(genesis: Record<string, unknown>): { choice: EngineChoice; engine: Engine } {
  const consensus = genesis.consensus === undefined ? {} : object(genesis.consensus, 'consensus', CONSENSUS_FIELDS);
  const choice = consensus.engine ?? 'tendermint';
  if (choice !== 'pos' && !isEngine(choice)) {
    fail('genesis', `unknown consensus engine ${JSON.stringify(choice)} (known: tendermint, pbft, pos, pow, cometbft)`);
  }
  if (consensus.baseEngine !== undefined && !isEngine(consensus.baseEngine)) {
    fail('genesis', `consensus.baseEngine: unknown consensus engine ${JSON.stringify(consensus.baseEngine)}`);
  }
  if (consensus.baseEngine !== undefined && choice !== 'pos') {
    fail('genesis', 'consensus.baseEngine is only for "engine": "pos"');
  }
  const engine: Engine = choice === 'pos' ? ((consensus.baseEngine as Engine | undefined) ?? 'tendermint') : choice;
  if (consensus.pow !== undefined && choice !== 'pow') {
    fail('genesis', `consensus.pow is a setting of another engine; the chain runs ${engine}`);
  }
  if (consensus.viewTimeoutMs !== undefined) {
    const ms = u64(consensus.viewTimeoutMs, 'consensus.viewTimeoutMs');
    if (engine !== 'pbft') fail('genesis', `consensus.viewTimeoutMs is a setting of another engine; the chain runs ${engine}`);
    if (ms < 100n || ms > 600_000n) fail('genesis', `consensus.viewTimeoutMs is ${ms}; it must be 100 to 600000`);
  }
  return { choice, engine };
}

function validatorsOf(genesis: Record<string, unknown>): Validator[] {
  if (!Array.isArray(genesis.validators)) fail('genesis', 'validators: not an array');
  return genesis.validators.map((v: unknown, i: number) => {
    const entry = object(v, `validators[${i}]`, ['publicKey', 'power']);
    return { key: parseKeyText(entry.publicKey, `validators[${i}].publicKey`, 'genesis'), power: u64(entry.power, `validators[${i}].power`) };
  });
}

/**
 * The trusted head a light client starts from with `genesis` (the parsed genesis JSON):
 * `TrustedHead::genesis(...).with_trusting_period(genesisTimeMs or 0, period)`. Refused
 * (step `genesis`): an invalid genesis, a Proof-of-Stake genesis without `genesisTimeMs` (its
 * trust could not be timed), a trusting period not shorter than the unbonding period, and
 * Proof-of-Work or CometBFT chains (`unsupported`: the pyralog CLI verifies those).
 */
export function trustFromGenesis(genesis: unknown, opts: GenesisOptions = {}): TrustedHead {
  return guard('genesis', () => {
    const g = object(genesis, 'genesis', GENESIS_FIELDS);
    if (typeof g.chainId !== 'string') fail('genesis', 'chainId: not a string');
    const chainLength = utf8(g.chainId).length;
    if (chainLength === 0) fail('genesis', 'the chain id is empty');
    if (chainLength > 128) fail('genesis', `the chain id has ${chainLength} bytes; at most 128 are allowed`);
    const set = validatorSet(validatorsOf(g), 'genesis');
    const { choice, engine } = consensusOf(g);
    if (choice === 'pow' || engine === 'pow') {
      fail('genesis', 'Proof-of-Work chains are verified by the pyralog CLI, not this verifier', 'unsupported');
    }
    if (engine === 'cometbft') {
      fail('genesis', 'chains run behind CometBFT are verified by the pyralog CLI, not this verifier', 'unsupported');
    }
    const genesisTimeMs = g.genesisTimeMs === undefined ? null : u64(g.genesisTimeMs, 'genesisTimeMs');
    let unbondingMs: bigint | null = null;
    if (g.staking !== undefined) {
      if (choice !== 'pos') fail('genesis', 'staking: a staking section needs "engine": "pos"');
      unbondingMs = u64(object(g.staking, 'staking').unbondingTimeMs, 'staking.unbondingTimeMs');
    } else if (choice === 'pos') {
      unbondingMs = DEFAULT_UNBONDING_TIME_MS;
    }
    const given = opts.trustingPeriodMs === undefined ? null : u64(opts.trustingPeriodMs, 'trustingPeriodMs');
    // GenesisFile::default_trusting_period_ms: two thirds, rounded as the Rust code does.
    const period = given ?? (unbondingMs === null ? null : (unbondingMs / 3n) * 2n);
    if (period !== null && unbondingMs !== null && period >= unbondingMs) {
      fail(
        'genesis',
        `a trusting period of ${period} ms is not shorter than the unbonding period (${unbondingMs} ms): validators could unbond and sign anything while still trusted`,
      );
    }
    if (choice === 'pos' && genesisTimeMs === null) {
      fail(
        'genesis',
        'the genesis has no genesisTimeMs, so trust in it cannot be timed: start from a header trusted out of band (the pyralog CLI, --trusted-height and --trusted-hash)',
      );
    }
    return {
      chainId: g.chainId,
      height: 0n,
      blockId: new Uint8Array(32),
      timeMs: genesisTimeMs ?? 0n,
      nextValidators: [...set.validators],
      engine,
      trustingPeriodMs: period,
    };
  });
}
