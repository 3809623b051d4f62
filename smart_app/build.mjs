// Builds the trend app into the Python package: cds_service/static/trend/.
// `node build.mjs` (or `npm run build`, or scripts/build-trend-app.sh) writes
// index.html, launch.html, app.css, app.js and launch.js; `--out DIR` writes them
// elsewhere (the tests build into a temporary folder and compare with the committed files).
// The output depends only on the sources and the locked package versions.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const outDir = outIndex >= 0 ? resolve(args[outIndex + 1]) : join(here, '..', 'cds_service', 'static', 'trend');
mkdirSync(outDir, { recursive: true });

await build({
  entryPoints: { app: join(here, 'src', 'app.js'), launch: join(here, 'src', 'launch.js') },
  outdir: outDir,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  legalComments: 'eof',
  charset: 'utf8',
  // fhirclient's "pure" build: browsers with fetch and AbortController need no polyfills.
  define: { FHIRCLIENT_PURE: 'true', 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});
for (const name of ['index.html', 'launch.html', 'app.css']) {
  copyFileSync(join(here, 'src', name), join(outDir, name));
}
process.stdout.write(`built the trend app into ${outDir}\n`);
