// Builds the two files a host page loads: dist/clinic-widget.js (one IIFE
// with socket.io-client bundled in, so no CDN is needed) and
// dist/clinic-widget.css, which the script loads from its own directory.
import { rmSync, statSync } from 'node:fs';
import { build } from 'esbuild';

const outdir = 'dist';
rmSync(outdir, { recursive: true, force: true });

const common = { bundle: true, minify: true, sourcemap: false, logLevel: 'warning' };

await build({
  ...common,
  entryPoints: ['src/widget.js'],
  outfile: `${outdir}/clinic-widget.js`,
  format: 'iife',
  platform: 'browser',
  target: 'es2018',
});

await build({
  ...common,
  entryPoints: ['src/widget.css'],
  outfile: `${outdir}/clinic-widget.css`,
  // The browsers that es2018 JavaScript runs in: keeps the minifier from
  // writing newer shorthands (such as inset) that they do not know.
  target: ['chrome64', 'edge79', 'firefox62', 'safari12', 'ios12'],
});

for (const file of ['clinic-widget.js', 'clinic-widget.css']) {
  const kib = (statSync(`${outdir}/${file}`).size / 1024).toFixed(1);
  console.log(`${outdir}/${file}  ${kib} KiB`);
}
