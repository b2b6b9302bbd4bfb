// Drives the node's page in headless Chromium (Debian's, through playwright-core) against a
// running testnet: the page loads, its finalized height advances, "Verify" on an honest record
// turns green, and the same check through each lying proxy fails, saying at which step and why.
//
//   node test/browser.mjs --page URL --genesis FILE --log L --partition P --offset N
//        [--liar URL ...] [--screenshot FILE] [--chromium PATH]
//
// Prints one JSON line: {honest: {...}, liars: [{url, step, reason}]}; exits non-zero, saying
// what did not happen, on any failure. node/tests/node/browser.rs runs it (make test).
import { chromium } from 'playwright-core';

const DEADLINE_MS = 120_000;

function args() {
  const out = { liar: [] };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    if (name === 'liar') out.liar.push(argv[i + 1]);
    else out[name] = argv[i + 1];
  }
  for (const required of ['page', 'genesis', 'log', 'partition', 'offset']) {
    if (!out[required]) throw new Error(`--${required} is required`);
  }
  return out;
}

/** Loads the page at `url`, gives it the genesis and verifies the record; returns the outcome. */
async function verifyAt(browser, url, a, { waitForAdvance, screenshot }) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  const errors = [];
  page.on('pageerror', (err) => errors.push(String(err)));
  try {
    await page.goto(url, { timeout: DEADLINE_MS });
    const height = async () => Number(await page.textContent('#head-height'));
    await page.waitForFunction(() => Number(document.querySelector('#head-height')?.textContent) > 0, null, { timeout: DEADLINE_MS });
    const first = await height();
    if (waitForAdvance) {
      await page.waitForFunction((h) => Number(document.querySelector('#head-height')?.textContent) > h, first, { timeout: DEADLINE_MS });
    }
    const advanced = await height();
    await page.setInputFiles('#genesis-file', a.genesis);
    await page.waitForFunction(() => document.querySelector('#genesis-status')?.textContent?.startsWith('trusting chain'), null, { timeout: DEADLINE_MS });
    await page.selectOption('#log-select', a.log);
    await page.selectOption('#partition-select', String(a.partition));
    const button = page.locator(`#records button.verify[data-offset="${a.offset}"]`);
    await button.waitFor({ timeout: DEADLINE_MS });
    await button.click();
    await page.waitForFunction(
      () => ['verified', 'failed'].includes(document.querySelector('#verify-result')?.dataset.outcome ?? ''),
      null,
      { timeout: DEADLINE_MS },
    );
    const outcome = await page.getAttribute('#verify-result', 'data-outcome');
    const title = await page.textContent('#verify-result strong');
    const detail = await page.textContent('#verify-result span');
    const steps = await page.locator('#verify-steps li').allTextContents();
    const mode = await page.textContent('#live-mode');
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    return { outcome, title, detail, steps: steps.length, firstHeight: first, height: advanced, mode, errors };
  } finally {
    await page.close();
  }
}

async function main() {
  const a = args();
  const browser = await chromium.launch({
    executablePath: a.chromium ?? '/usr/bin/chromium',
    headless: true,
    // As root (CI) Chromium's sandbox cannot start; the page is our own.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  try {
    const honest = await verifyAt(browser, a.page, a, { waitForAdvance: true, screenshot: a.screenshot });
    if (honest.errors.length) throw new Error(`the page threw: ${honest.errors.join('; ')}`);
    if (!(honest.height > honest.firstHeight)) throw new Error(`the finalized height did not advance: ${JSON.stringify(honest)}`);
    if (honest.outcome !== 'verified') throw new Error(`the honest record did not verify: ${JSON.stringify(honest)}`);
    if (honest.mode !== 'live (WebSocket)') throw new Error(`the page did not follow the node over WebSocket: ${honest.mode}`);
    const liars = [];
    for (const url of a.liar) {
      const lied = await verifyAt(browser, url, a, { waitForAdvance: false });
      if (lied.outcome !== 'failed') throw new Error(`a lie through ${url} was not caught: ${JSON.stringify(lied)}`);
      liars.push({ url, title: lied.title, reason: lied.detail, mode: lied.mode });
    }
    console.log(JSON.stringify({ honest, liars }));
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(`browser test: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
