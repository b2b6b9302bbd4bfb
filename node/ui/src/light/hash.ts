/**
 * BLAKE3 under Pyralog's domains (spec §3.1): `K_d = derive_key(C_d, "")`, then every hash of the
 * domain is BLAKE3 keyed with `K_d`. No domain uses plain BLAKE3.
 */

import { blake3 } from '@noble/hashes/blake3.js';

import { concat, u64be, utf8 } from './bytes.ts';
import { fail } from './errors.ts';

/** Each domain's context string, exactly as the spec's table writes it. */
export const DOMAINS = {
  merkle: 'pyralog 2026-11-23 merkle tree v1',
  checkpoint: 'pyralog 2026-11-23 checkpoint id v1',
  partition_key: 'pyralog 2026-11-23 partition key v1',
  consensus_value: 'pyralog 2026-11-23 consensus value v1',
  chain_state: 'pyralog 2026-11-23 chain state v1',
  chain_tx: 'pyralog 2026-11-23 chain transaction v1',
  contract_code: 'pyralog 2026-12-06 contract code v1',
  contract_id: 'pyralog 2026-12-06 contract id v1',
  client_request: 'pyralog 2026-12-06 client request v1',
  pow_seal: 'pyralog 2026-12-06 pow seal v1',
} as const;

/** A domain's name. */
export type Domain = keyof typeof DOMAINS;

const keys = new Map<Domain, Uint8Array>();

function cachedKey(domain: Domain): Uint8Array {
  let key = keys.get(domain);
  if (key === undefined) {
    key = blake3(new Uint8Array(0), { context: utf8(DOMAINS[domain]) });
    keys.set(domain, key);
  }
  return key;
}

/** `K_d`: BLAKE3 `derive_key` of the domain's context over empty key material (a copy). */
export function domainKey(domain: Domain): Uint8Array {
  return cachedKey(domain).slice();
}

/** `H_d(parts...)`: BLAKE3 keyed with `K_d` over the concatenation of `parts`. */
export function hashIn(domain: Domain, ...parts: Uint8Array[]): Uint8Array {
  const hasher = blake3.create({ key: cachedKey(domain) });
  for (const part of parts) hasher.update(part);
  return hasher.digest();
}

/** The first 8 bytes of `H_partition_key(key)` modulo `partitions` (spec §4.4, informative). */
export function partitionForKey(key: Uint8Array, partitions: number): number {
  if (!Number.isSafeInteger(partitions) || partitions < 1) fail('record', 'a log has at least one partition');
  const digest = hashIn('partition_key', key);
  let head = 0n;
  for (let i = 0; i < 8; i++) head = (head << 8n) | BigInt(digest[i]!);
  return Number(head % BigInt(partitions));
}

/** `H_contract_code(wasm)`: a contract code's hash (spec §10.6). */
export function codeHash(wasm: Uint8Array): Uint8Array {
  return hashIn('contract_code', wasm);
}

/** `H_contract_id(creator || u64be(nonce))`: a chain contract's id (spec §10.6). */
export function contractId(creator: Uint8Array, nonce: bigint): Uint8Array {
  return hashIn('contract_id', concat(creator, u64be(nonce)));
}
