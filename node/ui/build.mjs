// Bundles the page's script (src/page/main.ts and the light client it imports, with
// @noble/hashes and @noble/curves) into dist/app.js, which the node embeds and serves at
// /ui/app.js. `node build.mjs --check` rebuilds in memory and fails when the committed bundle
// differs (make test runs it, so the served page is the reviewed source).
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';

const out = new URL('./dist/app.js', import.meta.url);
const result = await build({
  entryPoints: [new URL('./src/page/main.ts', import.meta.url).pathname],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  write: false,
  logLevel: 'warning',
});
const bundle = result.outputFiles[0].text;
if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(out, 'utf8');
  } catch {
    // no bundle committed
  }
  if (committed !== bundle) {
    console.error('node/ui/dist/app.js is not the bundle of node/ui/src: run `make ui` and commit it');
    process.exit(1);
  }
  console.log(`node/ui/dist/app.js is up to date (${bundle.length} bytes)`);
} else {
  writeFileSync(out, bundle);
  console.log(`node/ui/dist/app.js: ${bundle.length} bytes`);
}
