// Helpers of the usage and invoices browser tests (30_usage, 35_invoices):
// the account's number with usage, CDRs pushed as a carrier does
// (docs/CARRIER_CDRS.md: Bearer voxc_ key, Vox-Signature over "<t>.<body>"),
// money as the dashboard shows it, form values set as a user's input.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { assert, env } from './lib.mjs';

// The number the tests before left in ctx.state ({id, phone}, 20_buy's),
// else one bought and activated now.
export async function usageNumber(ctx) {
	const n = ctx.state.number;
	if (n) return ctx.api(ctx.ownerKey, 'GET', `/v1/numbers/${n.id}`);
	const [bought] = await ctx.buyNumbers(ctx.ownerKey, { n: 1, areaCode: '415', forwardTo: '+14155550100' });
	ctx.state.number = { id: bought.id, phone: bought.phone_number }; // 20_buy's shape
	return bought;
}

// POST /v1/carrier/cdrs with the test carrier's credential; answers the
// ingress's answer after checking every record was accepted.
export async function pushCdrs(ctx, records) {
	const cred = JSON.parse(readFileSync(env('VOX_DASH_CARRIER_JSON'), 'utf8'));
	const body = JSON.stringify(records);
	const t = Math.floor(Date.now() / 1000);
	const sig = createHmac('sha256', cred.signing_secret).update(`${t}.${body}`).digest('hex');
	const res = await fetch(`${ctx.base}/v1/carrier/cdrs`, {
		method: 'POST',
		headers: { Authorization: `Bearer ${cred.key}`, 'Vox-Signature': `t=${t},v1=${sig}`, 'Content-Type': 'application/json' },
		body,
	});
	const text = await res.text();
	assert(res.status === 202, `POST /v1/carrier/cdrs: ${res.status} ${text}`);
	const ans = JSON.parse(text);
	assert(ans.accepted === records.length && ans.rejected === 0, `CDRs not all accepted: ${text}`);
	return ans;
}

// money() of web/src/api.js.
export function money(micros, currency) {
	return new Intl.NumberFormat('en-US', { style: 'currency', currency, maximumFractionDigits: 6, minimumFractionDigits: 2 }).format(Number(micros) / 1e6);
}

export function minutes(s) {
	const m = Number(s || 0) / 60;
	return Number.isInteger(m) ? String(m) : m.toFixed(2);
}

// Sets an input's value as typing would (an input event Preact sees).
export async function setValue(page, selector, value) {
	await page.$eval(
		selector,
		(el, v) => {
			el.value = v;
			el.dispatchEvent(new Event('input', { bubbles: true }));
		},
		value,
	);
}

// The cells of a table row (by data-key, or by its first cell's text).
export async function rowCells(page, tableSel, key) {
	return page.evaluate(
		(sel, k) => {
			const t = document.querySelector(sel);
			if (!t) return null;
			const tr = [...t.querySelectorAll('tr')].find((r) => r.dataset.key === k || (r.cells[0] && r.cells[0].textContent.trim() === k));
			return tr ? [...tr.cells].map((c) => c.textContent.trim()) : null;
		},
		tableSel,
		key,
	);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
