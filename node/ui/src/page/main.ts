/**
 * The node's status and explorer page. Everything shown comes from the node that served the
 * page and is shown as the node says it, except what "Verify" checks: that runs the TypeScript
 * light client (../light) in this browser, trusting only the genesis file the user gives.
 */
import { VerifyError, decodeAnchor, fromHex0x, syncAndVerify, trustFromGenesis, type Report } from '../light/index.ts';
import { byId, bytesText, el, fill, row, short, time } from './dom.ts';
import { RpcError, Subscriptions, call, type LiveMode } from './rpc.ts';

/** How many recent blocks and records the page keeps on screen. */
const RECENT_BLOCKS = 10;
const PAGE_RECORDS = 20;
/** How often the page polls when it has no WebSocket, and refreshes the status when it has. */
const POLL_MS = 2000;

interface Partition {
  log: string;
  partition: number;
  role: string;
  leader: number | null;
  epoch: number;
  size: number;
  certifiedSize: number;
}

interface Status {
  nodeId: number;
  cluster: string;
  globalLeader: number | null;
  members: { id: number; publicKey: string; raftAddr: string }[];
  partitions: Partition[];
}

interface HeaderJson {
  height: number;
  blockId?: string;
  txCount?: number;
  proposer?: string;
  timeMs?: number;
  engine: string;
  validatorsHash?: string;
}

interface RecordJson {
  offset: number;
  key: string | null;
  value: string;
  timestampMs: number;
}

const page = {
  status: null as Status | null,
  logs: [] as { name: string; partitions: number }[],
  head: 0,
  blocks: [] as HeaderJson[],
  validatorsHash: '',
  mode: 'polling' as LiveMode,
  subs: null as Subscriptions | null,
  recordsSub: null as string | null,
  nextOffset: 0,
  genesis: null as unknown,
  /** The newest anchor seen per `cluster/log/partition`, from the blocks that carried them. */
  anchored: new Map<string, { cluster: string; log: string; partition: number; size: number; height: number }>(),
  verifying: false,
};

function setMode(mode: LiveMode): void {
  page.mode = mode;
  const badge = byId('live-mode');
  badge.textContent = mode === 'live' ? 'live (WebSocket)' : 'polling';
  badge.className = `badge ${mode}`;
}

// ---- node and cluster ----

async function refreshStatus(): Promise<void> {
  const status = (await call('system_status')) as Status;
  page.status = status;
  byId('node-title').textContent = `node ${status.nodeId} · cluster ${status.cluster}`;
  let links = 'unknown';
  try {
    const tunnel = (await call('system_tunnel')) as { links: string; rosenpass?: boolean; counters?: Record<string, number> };
    links =
      tunnel.links === 'wireguard'
        ? `WireGuard${tunnel.rosenpass ? ' + Rosenpass' : ''}: ${tunnel.counters?.handshakes ?? 0} handshakes, ${tunnel.counters?.psk_rotations ?? 0} key rotations`
        : 'plain TCP';
  } catch {
    // an older node without system_tunnel: the links stay unknown
  }
  const facts: [string, string][] = [
    ['node', String(status.nodeId)],
    ['cluster', status.cluster],
    ['global leader', status.globalLeader === null ? 'none yet' : `node ${status.globalLeader}`],
    ['cluster links', links],
  ];
  byId('node-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', k), el('dd', v)]));
  fill(
    'members',
    status.members.map((m) =>
      row([String(m.id), short(m.publicKey, 12), m.raftAddr, m.id === status.globalLeader ? 'global leader' : ''], [1, 2]),
    ),
  );
  const anchored = await anchors(status);
  fill(
    'partitions',
    status.partitions.map((p, i) =>
      row([`${p.log}/${p.partition}`, p.role, p.leader === null ? '—' : `node ${p.leader}`, String(p.epoch), String(p.size), String(p.certifiedSize), anchored[i] ?? '—']),
    ),
  );
}

/** Each partition's anchor in the chain state (its size and height), as the node says. */
async function anchors(status: Status): Promise<string[]> {
  return Promise.all(
    status.partitions.map(async (p) => {
      try {
        const answer = (await call('state_get', { keyText: `anchor/${status.cluster}/${p.log}/${p.partition}` })) as { value: string | null };
        if (!answer.value) return 'not yet';
        const anchor = decodeAnchor(fromHex0x(answer.value, 'anchor'));
        return `${anchor.certificate.message.size} at #${anchor.height}`;
      } catch {
        return '—';
      }
    }),
  );
}

async function refreshLogs(): Promise<void> {
  const logs = (await call('log_list')) as { name: string; partitions: number }[];
  const names = logs.map((l) => l.name).join();
  if (names === page.logs.map((l) => l.name).join()) return;
  page.logs = logs;
  const select = byId<HTMLSelectElement>('log-select');
  const chosen = select.value;
  select.replaceChildren(...logs.map((l) => el('option', l.name)));
  if (logs.some((l) => l.name === chosen)) select.value = chosen;
  fillPartitions();
}

function fillPartitions(): void {
  const log = page.logs.find((l) => l.name === byId<HTMLSelectElement>('log-select').value);
  const select = byId<HTMLSelectElement>('partition-select');
  select.replaceChildren(...Array.from({ length: log?.partitions ?? 0 }, (_, p) => el('option', String(p))));
}

// ---- chain ----

/** Adds `header` to the recent blocks (any order: pushed and fetched ones meet here). */
function addBlock(header: HeaderJson): void {
  if (!header.blockId || page.blocks.some((b) => b.height === header.height)) return;
  page.blocks = [...page.blocks, header].sort((a, b) => b.height - a.height).slice(0, RECENT_BLOCKS);
  fill(
    'blocks',
    page.blocks.map((b) =>
      row([String(b.height), short(b.blockId ?? '—'), String(b.txCount ?? '—'), short(b.proposer ?? '—', 8), time(b.timeMs, true)], [1, 3]),
    ),
  );
  if (page.blocks[0]?.height === header.height) byId('blocks').querySelector('tbody tr')?.classList.add('new');
}

/** Notes the anchors block `height` carried (its anchoring transactions, as the node decodes them). */
async function scanAnchors(height: number): Promise<void> {
  const block = (await call('chain_getBlock', { height })) as {
    txs: { decoded: { anchor?: { cluster: string; log: string; partition: number; size: number } | null } | null }[];
  };
  for (const tx of block.txs) {
    const anchor = tx.decoded?.anchor;
    if (!anchor) continue;
    const slot = `${anchor.cluster}/${anchor.log}/${anchor.partition}`;
    if ((page.anchored.get(slot)?.height ?? 0) < height) page.anchored.set(slot, { ...anchor, height });
  }
  const rows = [...page.anchored.values()].sort((a, b) => `${a.cluster}/${a.log}/${a.partition}`.localeCompare(`${b.cluster}/${b.log}/${b.partition}`));
  fill('anchors', rows.map((a) => row([a.cluster, `${a.log}/${a.partition}`, String(a.size), `#${a.height}`])));
}

/** A finalized header, pushed or polled: the head when it is the highest seen. */
function showHead(header: HeaderJson): void {
  const fresh = header.blockId !== undefined && !page.blocks.some((b) => b.height === header.height);
  addBlock(header);
  if (fresh && (header.txCount ?? 0) > 0) void scanAnchors(header.height).catch((err) => console.warn(err));
  if (header.height <= page.head) return;
  page.head = header.height;
  byId('head-height').textContent = String(header.height);
  byId('head-block').textContent = header.blockId ?? '— (CometBFT keeps the headers)';
  byId('head-engine').textContent = header.engine;
  byId('head-time').textContent = time(header.timeMs);
  if (header.validatorsHash && header.validatorsHash !== page.validatorsHash) {
    page.validatorsHash = header.validatorsHash;
    void refreshValidators();
  }
}

async function refreshValidators(): Promise<void> {
  const answer = (await call('chain_getValidators', {})) as { validators: { publicKey: string; power: number }[] };
  fill('validators', answer.validators.map((v) => row([v.publicKey, String(v.power)], [0])));
}

/** The finalized head and the blocks below it (first load, and each poll without WebSocket). */
async function pollHead(): Promise<void> {
  const head = (await call('chain_getFinalizedHead')) as { height: number; header?: HeaderJson; engine?: string };
  if (!head.header) {
    showHead({ height: head.height, engine: head.engine ?? 'cometbft' });
    return;
  }
  showHead(head.header);
  for (let height = head.height - 1; height > Math.max(0, head.height - RECENT_BLOCKS); height--) {
    if (!page.blocks.some((b) => b.height === height)) showHead((await call('chain_getHeader', { height })) as HeaderJson);
  }
}

// ---- logs ----

function recordRow(record: RecordJson): HTMLTableRowElement {
  const button = el('button', 'Verify', 'verify');
  button.dataset.offset = String(record.offset);
  button.addEventListener('click', () => void verify(record.offset));
  const tr = row([String(record.offset), bytesText(record.key), bytesText(record.value), time(record.timestampMs), button]);
  tr.children[2]!.classList.add('value');
  return tr;
}

function selected(): { log: string; partition: number } | null {
  const log = byId<HTMLSelectElement>('log-select').value;
  const partition = Number(byId<HTMLSelectElement>('partition-select').value);
  return log ? { log, partition } : null;
}

async function readRecords(): Promise<void> {
  const target = selected();
  if (!target) return;
  if (page.recordsSub && page.subs) page.subs.unsubscribe('log_unsubscribeRecords', page.recordsSub);
  page.recordsSub = null;
  const from = Math.max(0, Number(byId<HTMLInputElement>('offset-input').value) || 0);
  const records = (await call('log_read', { ...target, from, max: PAGE_RECORDS })) as RecordJson[];
  fill('records', records.map(recordRow));
  page.nextOffset = from + records.length;
  if (byId<HTMLInputElement>('follow').checked && page.subs && page.mode === 'live') {
    page.recordsSub = await page.subs.subscribe('log_subscribeRecords', { ...target, from: page.nextOffset }, (value) => addRecord(value as RecordJson));
  }
}

function addRecord(record: RecordJson): void {
  if (record.offset < page.nextOffset) return;
  page.nextOffset = record.offset + 1;
  const body = byId('records').querySelector('tbody')!;
  const tr = recordRow(record);
  tr.classList.add('new');
  body.append(tr);
  while (body.children.length > 200) body.firstElementChild?.remove();
}

async function pollRecords(): Promise<void> {
  const target = selected();
  if (!target || !byId<HTMLInputElement>('follow').checked || page.mode === 'live') return;
  const records = (await call('log_read', { ...target, from: page.nextOffset, max: PAGE_RECORDS })) as RecordJson[];
  records.forEach(addRecord);
}

// ---- verify ----

async function loadGenesis(file: File): Promise<void> {
  const status = byId('genesis-status');
  try {
    const genesis: unknown = JSON.parse(await file.text());
    const trust = trustFromGenesis(genesis);
    page.genesis = genesis;
    status.textContent = `trusting chain ${trust.chainId} (${trust.engine}, ${trust.nextValidators.length} genesis validators) from ${file.name}`;
    status.className = '';
  } catch (err) {
    page.genesis = null;
    status.textContent = `not a usable genesis: ${err instanceof Error ? err.message : String(err)}`;
    status.className = 'bad';
  }
}

function showResult(outcome: 'running' | 'verified' | 'failed', title: string, detail = ''): void {
  const box = byId('verify-result');
  box.dataset.outcome = outcome;
  box.replaceChildren(el('strong', title), ...(detail ? [el('span', detail)] : []));
}

async function verify(offset: number): Promise<void> {
  const target = selected();
  if (!target || page.verifying) return;
  const what = `${page.status?.cluster ?? ''} ${target.log}/${target.partition} offset ${offset}`;
  byId('verify-target').textContent = `Record ${what}`;
  const steps = byId('verify-steps');
  steps.replaceChildren();
  if (!page.genesis) {
    showResult('failed', 'No genesis file', 'Give the chain’s genesis file: it is all the check trusts.');
    return;
  }
  page.verifying = true;
  showResult('running', 'Verifying…');
  try {
    // The cluster shown is the cluster verified: named, not left to the node to pick again.
    const cluster = page.status?.cluster;
    const report: Report = await syncAndVerify((method, params) => call(method, params), page.genesis, { ...target, offset, cluster }, {
      onStep: ({ step, detail }) => steps.append(el('li', `${step}: ${detail}`, 'ok')),
    });
    const f = report.finality;
    showResult(
      'verified',
      `Verified: ${report.cluster} ${report.log}/${report.partition} offset ${report.offset}, final at height ${f.height} of ${report.chainId}`,
      `key ${bytesText(report.record.key)}, value ${bytesText(report.record.value)}; block ${short(f.blockId)} signed by ${f.signatures} validators; anchored checkpoint of ${f.anchoredSize} records.`,
    );
  } catch (err) {
    if (err instanceof VerifyError) showResult('failed', `Failed at step “${err.step}”`, err.reason);
    else if (err instanceof RpcError) showResult('failed', 'Failed: the node did not answer as asked', err.message);
    else showResult('failed', 'Failed', err instanceof Error ? err.message : String(err));
  } finally {
    page.verifying = false;
  }
}

// ---- start ----

async function goLive(): Promise<void> {
  try {
    const subs = await Subscriptions.open(() => {
      page.subs = null;
      setMode('polling');
    });
    await subs.subscribe('chain_subscribeFinalizedHeads', {}, (value) => showHead(value as HeaderJson));
    page.subs = subs;
    setMode('live');
  } catch {
    setMode('polling');
  }
}

/** Runs `task` now and every `ms`, reporting failures in the console only (the next run retries). */
function every(ms: number, task: () => Promise<void>): void {
  const run = () => task().catch((err) => console.warn(err));
  void run();
  setInterval(run, ms);
}

async function start(): Promise<void> {
  byId<HTMLInputElement>('genesis-file').addEventListener('change', (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file) void loadGenesis(file);
  });
  byId('log-select').addEventListener('change', () => {
    fillPartitions();
    void readRecords();
  });
  byId('partition-select').addEventListener('change', () => void readRecords());
  byId('browse').addEventListener('submit', (event) => {
    event.preventDefault();
    void readRecords();
  });
  await goLive();
  await pollHead().catch((err) => console.warn(err));
  await refreshLogs().catch((err) => console.warn(err));
  await readRecords().catch((err) => console.warn(err));
  every(POLL_MS, refreshStatus);
  every(POLL_MS, async () => {
    await refreshLogs();
    if (page.mode === 'polling') {
      await pollHead();
      await pollRecords();
    }
  });
}

void start();
