// Runs the dashboard's browser tests (tests/browser/NN_*.test.mjs, in
// name order, each `export default async function (ctx)`) in one headless
// chromium; prints PASS/FAIL per test and exits 1 if any failed.
// tests/shell/dashboard.sh starts the pipeline and sets the environment.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ctx, launch } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
	.filter((f) => /^\d+_.*\.test\.mjs$/.test(f))
	.filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
	.sort();
const browser = await launch();
console.log(`browser: ${await browser.version()}`);
const ctx = new Ctx(browser);
let failed = 0;
for (const f of files) {
	const start = Date.now();
	try {
		const mod = await import(pathToFileURL(`${here}/${f}`).href);
		await mod.default(ctx);
		console.log(`[PASS] ${f} (${((Date.now() - start) / 1000).toFixed(1)} s)`);
	} catch (e) {
		failed++;
		console.log(`[FAIL] ${f} (${((Date.now() - start) / 1000).toFixed(1)} s): ${e.stack || e}`);
	}
}
await browser.close();
console.log(`browser tests: ${files.length - failed} passed, ${failed} failed; screenshots in ${ctx.shots}`);
process.exit(failed ? 1 : 0);
