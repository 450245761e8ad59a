// Builds the dashboard into build/web (or the directory given as the first
// argument): one script and one stylesheet, minified, named by a hash of
// their content so the ingress may let browsers cache them for a year, and
// index.html naming them. `make` runs it (docs/DASHBOARD.md).
import * as esbuild from 'esbuild';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, '..', 'build', 'web'));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await esbuild.build({
	entryPoints: [join(here, 'src', 'main.jsx')],
	bundle: true,
	minify: true,
	format: 'esm',
	target: ['chrome110', 'firefox110', 'safari16'],
	jsx: 'automatic',
	jsxImportSource: 'preact',
	entryNames: 'app-[hash]',
	outdir: out,
	metafile: true,
	legalComments: 'linked',
	logLevel: 'warning',
});
const files = Object.keys(result.metafile.outputs).map((f) => basename(f));
const js = files.find((f) => f.endsWith('.js'));
const css = files.find((f) => f.endsWith('.css'));
if (!js || !css) throw new Error(`build: expected one .js and one .css, got ${files}`);
writeFileSync(join(out, 'index.html'), `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>VoxLink dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/${css}">
<script type="module" src="/dashboard/${js}"></script>
</head>
<body>
<noscript>The VoxLink dashboard needs JavaScript.</noscript>
<div id="app"></div>
</body>
</html>
`);
console.log(`dashboard built in ${out}: ${readdirSync(out).join(' ')}`);
