// Porting through the dashboard (docs/PORTING.md): the owner checks two
// numbers (one the carrier sandbox ports, Beta Telecom: last digit 5-8, no
// PIN; one it does not: last digit 9), creates the draft with the end
// user's details, is refused on submit while documents and FOC date are
// missing (422 porting_rule_violated, its message shown), uploads a text
// file (415, shown), then the LOA and the invoice (PDFs), picks the first
// allowed FOC date and submits. The carrier sandbox's porting webhooks are
// pointed at this ingress (as ops/run porting_webhooks does), so the order
// moves on by itself: the timeline grows to ported and the number becomes
// the account's.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { assert, env } from './lib.mjs';

const DOCS = new URL('../data/documents/', import.meta.url).pathname;

// A number of the carrier sandbox's +1 628 range ending in last (the
// sandbox decides portability by the last digit), random enough not to
// collide with its inventory or earlier runs.
function number(last) {
	const r = Math.floor(Math.random() * 8 * 100000);
	return `+1628${2 + (r % 8)}${String(Math.floor(r / 8)).padStart(5, '0')}${last}`;
}

// The carrier credential whose webhooks the porting worker applies: the
// one the harness made if it is of that carrier (VOX_PORTING_CARRIER,
// default "sandbox"), else one made here with voxctl.
function carrierCredential() {
	const want = process.env.VOX_PORTING_CARRIER || 'sandbox';
	const given = JSON.parse(readFileSync(env('VOX_DASH_CARRIER_JSON'), 'utf8'));
	if (given.carrier === want) return given;
	const out = execFileSync(join(env('VOX_BIN_DIR'), 'voxctl'), ['carrier', 'create', '--name', want, '--json']);
	return JSON.parse(out.toString());
}

async function sandbox(method, path, body) {
	const base = process.env.VOX_CARRIER_URL || `http://127.0.0.1:${env('VOX_CARRIER_PORT', '27080')}`;
	const res = await fetch(base + path, {
		method,
		headers: body ? { 'Content-Type': 'application/json' } : {},
		body: body ? JSON.stringify(body) : undefined,
	});
	const text = await res.text();
	assert(res.ok, `${method} ${base}${path}: ${res.status} ${text.slice(0, 300)}`);
	return text ? JSON.parse(text) : null;
}

// A document uploaded through the API (multipart), for the orders the
// test sets up without the UI.
async function apiDocument(ctx, kind, file) {
	const form = new FormData();
	form.append('file', new Blob([readFileSync(file)], { type: 'application/pdf' }), basename(file));
	form.append('kind', kind);
	const res = await fetch(`${ctx.base}/v1/documents`, {
		method: 'POST',
		headers: { Authorization: `Bearer ${ctx.ownerKey}`, 'Idempotency-Key': crypto.randomUUID() },
		body: form,
	});
	const text = await res.text();
	assert(res.status === 201, `POST /v1/documents: ${res.status} ${text.slice(0, 300)}`);
	return JSON.parse(text);
}

async function waitStatus(ctx, id, want, ms = 90000) {
	let o = null;
	for (const end = Date.now() + ms; Date.now() < end;) {
		o = await ctx.api(ctx.ownerKey, 'GET', `/v1/porting-orders/${id}`);
		if (o.status === want) return o;
		await new Promise((r) => setTimeout(r, 250));
	}
	throw new Error(`porting order ${id}: ${o && o.status} after ${ms / 1000} s, want ${want}`);
}

async function setField(page, name, value) {
	await page.$eval(`#order-form [name="${name}"]`, (el) => { el.value = ''; });
	await page.type(`#order-form [name="${name}"]`, value);
}

async function upload(ctx, page, slot, file) {
	const input = await page.$(`input[name="doc-${slot}"]`);
	assert(input, `no file input for the ${slot}`);
	await input.uploadFile(file);
	await page.click(`#upload-${slot}`);
}

export default async function (ctx) {
	const ok = number(5 + Math.floor(Math.random() * 4));
	const no = number(9);
	const ref = `dash-${Date.now()}`;
	const tmp = mkdtempSync(join(tmpdir(), 'porting-docs-'));
	copyFileSync(join(DOCS, 'loa.pdf'), join(tmp, 'loa.pdf'));
	copyFileSync(join(DOCS, 'loa.pdf'), join(tmp, 'invoice-2026-11.pdf'));
	copyFileSync(join(DOCS, 'notes.txt'), join(tmp, 'notes.txt'));
	const before = await sandbox('GET', '/admin/porting');
	const page = await ctx.newPage();
	try {
		await ctx.signIn(page, ctx.ownerKey);
		await ctx.go(page, '#/porting');
		await page.waitForSelector('#new-porting-order');
		await ctx.checkPage(page, 'porting list');

		// 1. the check: one answer per number
		await page.click('#new-porting-order');
		await page.waitForSelector('textarea[name="phone_numbers"]');
		await page.type('textarea[name="phone_numbers"]', `${ok}\n${no}`);
		await page.click('#portability-form button[type="submit"]');
		await ctx.waitText(page, '1 of 2 numbers are portable');
		await ctx.waitText(page, 'carrier_not_supported');
		await ctx.waitText(page, 'Beta Telecom (SPID 2222)');
		const rows = await page.$$eval('.check-results tbody tr', (trs) => trs.map((tr) => tr.innerText));
		assert(rows.length === 2, `${rows.length} check results, want 2`);
		assert(rows.some((r) => r.includes(ok) && r.includes('portable') && !r.includes('not portable')), `${ok} not shown portable: ${rows}`);
		assert(rows.some((r) => r.includes(no) && r.includes('not portable')), `${no} not shown refused: ${rows}`);
		const boxes = await page.$$('#order-form input[type="checkbox"]');
		assert(boxes.length === 1, `${boxes.length} numbers offered for the order, want the portable one`);

		// 2. the draft
		await setField(page, 'authorized_name', 'Ada Lovelace');
		await setField(page, 'business_name', 'Analytical Engines Ltd');
		await setField(page, 'street', '1 Main St');
		await setField(page, 'locality', 'San Francisco');
		await setField(page, 'administrative_area', 'CA');
		await setField(page, 'postal_code', '94105');
		await setField(page, 'account_number', 'ACC-445566');
		await setField(page, 'customer_reference', ref);
		await ctx.checkPage(page, 'new porting order with the check results');
		await ctx.shot(page, '41-porting-new-check');
		await page.click('#order-form button[type="submit"]');
		await page.waitForFunction(() => /^#\/porting\/[0-9a-f-]{36}$/.test(location.hash));
		const id = await page.evaluate(() => location.hash.split('/')[2]);
		await ctx.waitText(page, 'A draft: add the documents');
		await ctx.waitText(page, 'Ada Lovelace');
		await ctx.waitText(page, '••66');
		await ctx.checkPage(page, 'draft porting order');

		// 3. submit too early: the rule refused, with its message
		ctx.allow(page, 422);
		await page.click('button[aria-label="Submit the order"]');
		await ctx.waitText(page, 'porting_rule_violated');
		await ctx.waitText(page, /Rule missing_field/);
		await ctx.shot(page, '42-porting-submit-refused');
		await ctx.checkPage(page, 'submit refused');

		// 4. documents: a text file is refused (the content decides), then the PDFs
		ctx.allow(page, 415);
		await upload(ctx, page, 'loa', join(tmp, 'notes.txt'));
		await ctx.waitText(page, 'unsupported_document_type');
		await upload(ctx, page, 'loa', join(tmp, 'loa.pdf'));
		await page.waitForFunction(() => (document.querySelector('.doc-loa .doc-name') || {}).textContent === 'loa.pdf');
		await upload(ctx, page, 'invoice', join(tmp, 'invoice-2026-11.pdf'));
		await page.waitForFunction(() => (document.querySelector('.doc-invoice .doc-name') || {}).textContent === 'invoice-2026-11.pdf');
		let order = await ctx.api(ctx.ownerKey, 'GET', `/v1/porting-orders/${id}`);
		assert(order.documents.loa && order.documents.invoice, `the documents are not attached: ${JSON.stringify(order.documents)}`);
		const loa = await ctx.api(ctx.ownerKey, 'GET', `/v1/documents/${order.documents.loa}`);
		assert(loa.kind === 'loa' && loa.content_type === 'application/pdf', `the LOA: ${JSON.stringify(loa)}`);

		// 5. the FOC date: the first allowed window
		await page.waitForSelector('#set-foc');
		const firstDay = await page.$eval('select[name="requested_foc_date"]', (s) => s.value);
		await page.click('#set-foc');
		for (let i = 0; i < 50 && !order.requested_foc_date; i++) {
			await new Promise((r) => setTimeout(r, 200));
			order = await ctx.api(ctx.ownerKey, 'GET', `/v1/porting-orders/${id}`);
		}
		assert(order.requested_foc_date === firstDay, `requested_foc_date ${order.requested_foc_date}, want ${firstDay}`);

		// 6. the carrier's porting webhooks to this ingress, then submit
		const cred = carrierCredential();
		await sandbox('POST', '/admin/porting', {
			webhook_url: `${ctx.base}/v1/carrier/porting-events`, api_key: cred.key, signing_secret: cred.signing_secret,
			time_scale: 500000,
		});
		await page.click('button[aria-label="Submit the order"]');
		await ctx.waitText(page, /Following the carrier|ported/);
		const count = () => page.$$eval('ul.timeline li', (l) => l.length);
		const first = await count();
		await page.waitForFunction(() => document.querySelector('.order-head .badge').textContent === 'ported', { timeout: 90000 })
			.catch(async () => {
				const body = await page.evaluate(() => document.body.innerText);
				throw new Error(`the order did not reach ported in 90 s; the page shows:\n${body.slice(0, 2000)}`);
			});
		await page.waitForFunction(() => !document.querySelector('.loading'));
		const last = await count();
		assert(last > first, `the timeline did not grow (${first} -> ${last})`);
		const steps = await page.$$eval('ul.timeline li .badge', (b) => b.map((x) => x.textContent));
		for (const s of ['submitted', 'foc-date-confirmed', 'ported'])
			assert(steps.includes(s), `the timeline lacks ${s}: ${steps}`);
		await ctx.waitText(page, 'loa.pdf');
		await ctx.checkPage(page, 'ported porting order');
		await ctx.shot(page, '43-porting-detail-timeline');

		// the number is the account's now, linked from the order
		await page.waitForSelector(`a[href^="#/numbers/"]`);
		const numbers = await ctx.api(ctx.ownerKey, 'GET', '/v1/numbers?limit=100');
		assert(numbers.data.some((n) => n.phone_number === ok && n.status === 'active'), `${ok} is not an active number of the account`);

		// an exception (a wrong PIN for Acme Wireless) fixed from the order's page
		const acme = number(Math.floor(Math.random() * 5));
		const exc = await ctx.api(ctx.ownerKey, 'POST', '/v1/porting-orders', {
			phone_numbers: [acme], customer_reference: `${ref}-exception`, requested_foc_date: firstDay,
			end_user: {
				authorized_name: 'Alan Turing', business_name: 'Bletchley Ltd', account_number: 'ACC-778899', pin: '0000',
				service_address: { street: '2 Park Rd', locality: 'Oakland', administrative_area: 'CA', postal_code: '94607', country: 'US' },
			},
			documents: {
				loa: (await apiDocument(ctx, 'loa', join(tmp, 'loa.pdf'))).id,
				invoice: (await apiDocument(ctx, 'invoice', join(tmp, 'invoice-2026-11.pdf'))).id,
			},
		});
		await ctx.api(ctx.ownerKey, 'POST', `/v1/porting-orders/${exc.id}/actions/submit`);
		await waitStatus(ctx, exc.id, 'exception');
		await ctx.go(page, `#/porting/${exc.id}`);
		await ctx.waitText(page, 'The losing carrier refused the order');
		await ctx.waitText(page, 'wrong_pin');
		await page.waitForSelector('details.edit[open] input[name="pin"]');
		await ctx.checkPage(page, 'porting order in exception');
		await ctx.shot(page, '44-porting-exception');
		await page.type('details.edit input[name="pin"]', acme.slice(-4));
		await page.click('details.edit button[type="submit"]');
		await ctx.waitText(page, 'Saved.');
		await page.waitForFunction((p) => document.body.innerText.includes(`••${p}`), {}, acme.slice(-2));
		await page.click('button[aria-label="Submit again"]');
		await page.waitForFunction(() => document.querySelector('.order-head .badge').textContent === 'ported', { timeout: 90000 });
		const excSteps = await page.$$eval('ul.timeline li .badge', (b) => b.map((x) => x.textContent));
		assert(excSteps.filter((x) => x === 'exception').length >= 2 && excSteps.includes('ported'), `the exception's timeline: ${excSteps}`);
		await ctx.checkPage(page, 'exception fixed and ported');

		// a draft cancelled from its page (confirmed): cancelled at once, in the timeline
		page.on('dialog', (d) => d.accept());
		const other = number(Math.floor(Math.random() * 5));
		const draft = await ctx.api(ctx.ownerKey, 'POST', '/v1/porting-orders', {
			phone_numbers: [other], customer_reference: `${ref}-cancelled`,
			end_user: { authorized_name: 'Grace Hopper', business_name: 'Compilers Inc' },
		});
		await ctx.go(page, `#/porting/${draft.id}`);
		await ctx.waitText(page, 'Grace Hopper');
		await page.click('button[aria-label="Cancel the order"]');
		await page.waitForFunction(() => document.querySelector('.order-head .badge').textContent === 'cancelled');
		await page.waitForFunction(() => [...document.querySelectorAll('ul.timeline li')].some((li) => /draft\s*→\s*to?\s*cancelled/.test(li.textContent)));
		assert(!(await page.$('button[aria-label="Submit the order"]')), 'a cancelled order still offers submit');
		await ctx.checkPage(page, 'cancelled draft');
		// and one left as a draft, for the list
		await ctx.api(ctx.ownerKey, 'POST', '/v1/porting-orders', {
			phone_numbers: [number(Math.floor(Math.random() * 5))], customer_reference: `${ref}-draft`,
		});

		// the list, filtered on ported
		await ctx.go(page, '#/porting');
		await ctx.waitText(page, ref);
		await page.select('select[name="status"]', 'ported');
		await ctx.waitText(page, ref);
		await page.select('select[name="status"]', 'exception');
		await ctx.waitText(page, 'No exception porting orders.');
		await page.select('select[name="status"]', '');
		await ctx.waitText(page, `${ref}-draft`);
		const statuses = await page.$$eval('tbody tr .badge', (b) => b.map((x) => x.textContent));
		for (const st of ['draft', 'cancelled', 'ported']) assert(statuses.includes(st), `the list lacks a ${st} order: ${statuses}`);
		await ctx.checkPage(page, 'porting list with the order');
		await ctx.shot(page, '40-porting-list');
		ctx.state.portedNumber = ok;

		// a viewer reads the orders but has none of the actions
		const viewer = await ctx.newKey(ctx.ownerKey, 'viewer');
		const vpage = await ctx.newPage();
		try {
			await ctx.signIn(vpage, viewer.key);
			await ctx.go(vpage, '#/porting');
			await ctx.waitText(vpage, `${ref}-draft`);
			assert(!(await vpage.$('#new-porting-order')), 'a viewer sees the new order button');
			await ctx.go(vpage, `#/porting/${draft.id}`);
			await ctx.waitText(vpage, 'Grace Hopper');
			const bad = await vpage.$$eval('button, input[type="file"]', (els) => els.map((e) => e.textContent || e.name).filter((t) => /Submit|Cancel the|Upload|doc-/.test(t)));
			assert(bad.length === 0, `a viewer is offered: ${bad}`);
			await ctx.checkPage(vpage, 'porting order as a viewer');
		} finally {
			await vpage.close();
		}
	} catch (e) {
		await ctx.shot(page, '40-porting-failed').catch(() => {});
		const body = await page.evaluate(() => document.body.innerText).catch(() => '');
		e.message += `\nthe page shows:\n${body.slice(0, 3000)}`;
		throw e;
	} finally {
		await page.close();
		rmSync(tmp, { recursive: true, force: true });
		// leave the sandbox's porting settings as found (the secrets are not readable: a URL
		// set by someone else stays ours)
		const back = { time_scale: before.time_scale };
		if (before.webhook_url === null) back.webhook_url = null;
		await sandbox('POST', '/admin/porting', back).catch(() => {});
	}
}
