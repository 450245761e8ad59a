// What the dashboard's browser tests share (tests/shell/dashboard.sh runs
// them through run.mjs): Debian's chromium driven by puppeteer-core (from
// web/'s lockfile), a page that records console errors, failed requests
// and uncaught exceptions, the checks every page must pass (no console
// error, every form control labelled, one h1), screenshots, and the API
// calls a test makes to set the scene (the same API the pages use).
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(new URL('../../web/package.json', import.meta.url));
const puppeteer = require('puppeteer-core');

export class TestFailure extends Error {}

export function assert(cond, msg) {
	if (!cond) throw new TestFailure(msg);
}

export function env(name, fallback) {
	const v = process.env[name];
	if (v === undefined || v === '') {
		if (fallback !== undefined) return fallback;
		throw new TestFailure(`${name} is not set (tests/shell/dashboard.sh sets it)`);
	}
	return v;
}

export async function launch() {
	return puppeteer.launch({
		executablePath: env('VOX_CHROMIUM', '/usr/bin/chromium'),
		headless: true,
		args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--window-size=1280,900'],
		defaultViewport: { width: 1280, height: 900 },
	});
}

export class Ctx {
	constructor(browser) {
		this.browser = browser;
		this.base = env('VOX_DASH_BASE');
		this.ownerKey = env('VOX_DASH_OWNER_KEY');
		this.shots = env('VOX_DASH_SHOTS');
		this.state = {}; // what one test leaves for the next (run in file order)
		mkdirSync(this.shots, { recursive: true });
	}

	// A new tab whose console errors, page errors and failed requests are
	// kept in page.problems (checkPage asserts there are none).
	async newPage() {
		const ctx = await this.browser.createBrowserContext();
		const page = await ctx.newPage();
		page.problems = [];
		page.allowed = [];
		page.on('console', (m) => {
			if (m.type() === 'error') page.problems.push(`console: ${m.text()}`);
		});
		page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
		page.on('requestfailed', (r) => {
			const why = r.failure() ? r.failure().errorText : '';
			if (why !== 'net::ERR_ABORTED') page.problems.push(`request failed: ${r.url()} ${why}`);
		});
		page.setDefaultTimeout(20000);
		return page;
	}

	// The API answering with a status a test provokes on purpose (a bad
	// input) logs "Failed to load resource: ... status of 4xx" in the
	// console: allow(page, 400) lets exactly those through checkPage.
	allow(page, status) {
		page.allowed.push(new RegExp(`status of ${status}\\b`));
	}

	async signIn(page, key) {
		await page.goto(`${this.base}/dashboard`, { waitUntil: 'networkidle0' });
		await page.waitForSelector('input[name="token"]');
		await page.type('input[name="token"]', key);
		await Promise.all([page.waitForSelector('nav.nav'), page.click('form button[type="submit"]')]);
	}

	async go(page, hash) {
		await page.evaluate((h) => { location.hash = h; }, hash);
		await page.waitForFunction(() => !document.querySelector('.loading'), { timeout: 20000 });
	}

	// Waits until the page's text contains text (a string or a RegExp).
	async waitText(page, text, timeout = 30000) {
		const src = text instanceof RegExp ? { re: text.source, flags: text.flags } : { s: text };
		try {
			await page.waitForFunction(
				(q) => {
					const t = document.body.innerText;
					return q.re ? new RegExp(q.re, q.flags).test(t) : t.includes(q.s);
				},
				{ timeout },
				src,
			);
		} catch {
			const body = await page.evaluate(() => document.body.innerText);
			throw new TestFailure(`"${text}" did not appear within ${timeout} ms; the page shows:\n${body.slice(0, 1500)}`);
		}
	}

	async shot(page, name) {
		await page.screenshot({ path: join(this.shots, `${name}.png`), fullPage: true });
	}

	// What every page must pass: no console error (but those allowed), no
	// uncaught exception, no failed request; every input, select and
	// textarea with a label (or aria-label), every button with a name, one
	// h1, images with alt text.
	async checkPage(page, where) {
		const problems = page.problems.filter((p) => !page.allowed.some((re) => re.test(p)));
		const a11y = await page.evaluate(() => {
			const bad = [];
			const named = (el) =>
				(el.labels && el.labels.length > 0 && [...el.labels].some((l) => l.textContent.trim())) ||
				(el.getAttribute('aria-label') || '').trim() ||
				(el.getAttribute('aria-labelledby') && document.getElementById(el.getAttribute('aria-labelledby')));
			for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea'))
				if (!named(el)) bad.push(`unlabelled ${el.tagName.toLowerCase()} ${el.name || el.id || el.outerHTML.slice(0, 80)}`);
			for (const el of document.querySelectorAll('button, a[href]'))
				if (!(el.textContent.trim() || (el.getAttribute('aria-label') || '').trim())) bad.push(`unnamed ${el.tagName.toLowerCase()} ${el.outerHTML.slice(0, 80)}`);
			for (const el of document.querySelectorAll('img')) if (!el.hasAttribute('alt')) bad.push(`img without alt ${el.src}`);
			const h1 = document.querySelectorAll('h1').length;
			if (h1 !== 1) bad.push(`${h1} h1 elements`);
			if (!document.documentElement.lang) bad.push('no lang on <html>');
			return bad;
		});
		const all = [...problems, ...a11y];
		assert(all.length === 0, `${where}: ${all.join('; ')}`);
		page.problems = [];
	}

	// The API as a test calls it to set the scene. Commands wait for their
	// operation (Prefer: wait) and answer it.
	async api(key, method, path, body) {
		const headers = { Authorization: `Bearer ${key}`, Accept: 'application/json' };
		if (body !== undefined) headers['Content-Type'] = 'application/json';
		if (method !== 'GET') {
			headers['Idempotency-Key'] = crypto.randomUUID();
			headers.Prefer = 'wait=20';
		}
		const res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
		const text = await res.text();
		let json = null;
		try {
			json = text ? JSON.parse(text) : null;
		} catch {
			json = text;
		}
		if (!res.ok) throw new TestFailure(`${method} ${path}: ${res.status} ${text.slice(0, 400)}`);
		return json;
	}

	// Waits for an operation to be final; answers it.
	async operation(key, op) {
		for (let i = 0; i < 200 && !['completed', 'failed'].includes(op.status); i++) {
			await new Promise((r) => setTimeout(r, 250));
			op = await this.api(key, 'GET', `/v1/operations/${op.id}`);
		}
		assert(op.status === 'completed', `operation ${op.kind} ${op.id}: ${op.status} ${JSON.stringify(op.error)}`);
		return op;
	}

	// Buys n numbers through the API (search, reserve, order), activates
	// them when forwardTo is given; answers the numbers.
	async buyNumbers(key, { n = 1, areaCode = '415', forwardTo } = {}) {
		const found = await this.api(key, 'GET', `/v1/available-numbers?country=US&area_code=${areaCode}&limit=${n}`);
		const phones = found.data.map((x) => x.phone_number);
		assert(phones.length === n, `the search found ${phones.length} numbers, want ${n}`);
		const res = await this.operation(key, await this.api(key, 'POST', '/v1/reservations', { phone_numbers: phones }));
		await this.operation(key, await this.api(key, 'POST', '/v1/orders', { reservation_id: res.result.reservation_id }));
		const list = await this.api(key, 'GET', '/v1/numbers?limit=100');
		const mine = [];
		for (const p of phones) {
			const num = list.data.find((x) => x.phone_number === p);
			assert(num, `${p} is not among the account's numbers after the order`);
			if (forwardTo) await this.operation(key, await this.api(key, 'POST', `/v1/numbers/${num.id}/activate`, { forward_to: forwardTo }));
			mine.push(num);
		}
		return mine;
	}

	// A new account with its owner key (voxctl, as a new user gets one).
	async newAccount(name) {
		const { execFileSync } = await import('node:child_process');
		const out = execFileSync(join(env('VOX_BIN_DIR'), 'voxctl'), ['account', 'create', '--name', name, '--json']);
		return JSON.parse(out.toString());
	}

	// Another key of the account with a given role.
	async newKey(ownerKey, role, description) {
		return this.api(ownerKey, 'POST', '/v1/api-keys', { role, description: description || `${role} key (browser test)` });
	}
}
