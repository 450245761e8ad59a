// Usage: a new user's number gets calls and messages (signed CDRs pushed
// as its carrier does) while the usage page is open; the page refreshes by
// itself and shows them, by day and by number, in charts and in tables
// whose figures are the API's (GET /v1/usage) and add up to what was
// pushed. A range ending before it starts, and one over 366 days, show the
// API's error. Screenshots 30-33.
import { join } from 'node:path';
import { assert } from './lib.mjs';
import { minutes, money, pushCdrs, rowCells, setValue, sleep, usageNumber } from './usage_lib.mjs';

const pad = (n) => String(n).padStart(2, '0');
const ymd = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;

export default async function (ctx) {
	const num = await usageNumber(ctx);
	const phone = num.phone_number;
	const usageOf = async () => {
		const q = `/v1/usage?group_by=number&number=${encodeURIComponent(phone)}`;
		const u = await ctx.api(ctx.ownerKey, 'GET', q);
		return u.items[0] || { records: 0, duration_s: 0, billable_s: 0, units: 0, cost_micros: 0 };
	};
	const before = await usageOf();

	const page = await ctx.newPage();
	await ctx.signIn(page, ctx.ownerKey);
	await ctx.go(page, '#/usage');
	await page.waitForSelector('#usage-summary');
	const now = new Date();
	assert((await page.$eval('input[name="start_date"]', (e) => e.value)) === `${ymd(now).slice(0, 8)}01`, 'the range does not start on the first of this month');
	assert((await page.$eval('input[name="end_date"]', (e) => e.value)) === ymd(now), 'the range does not end today');
	await ctx.checkPage(page, 'usage page before the calls');

	// The carrier reports calls and messages of today while the page is open
	const at = new Date(Date.now() - 10000).toISOString().replace(/\.\d+Z$/, 'Z');
	const tag = `dash-usage-${Date.now()}`;
	const records = [
		{ id: `${tag}-1`, type: 'inbound_call', from: '+14155550100', to: phone, started_at: at, duration_s: 125 },
		{ id: `${tag}-2`, type: 'outbound_call', from: phone, to: '+14155550111', started_at: at, duration_s: 61 },
		{ id: `${tag}-3`, type: 'sms_sent', from: phone, to: '+14155550111', started_at: at, segments: 2 },
		{ id: `${tag}-4`, type: 'sms_received', from: '+14155550112', to: phone, started_at: at },
	];
	// and a call of yesterday (when yesterday is in this month, the default range)
	const y = new Date(Date.now() - 86400000);
	if (y.getUTCMonth() === new Date().getUTCMonth())
		records.push({ id: `${tag}-5`, type: 'inbound_call', from: '+14155550113', to: phone, started_at: y.toISOString().replace(/\.\d+Z$/, 'Z'), duration_s: 300 });
	const wantSeconds = records.reduce((s, r) => s + (r.duration_s || 0), 0);
	const pushedAt = Date.now();
	await pushCdrs(ctx, records);

	// metering rates them: the API's figures grow by exactly what was pushed
	let after = before;
	for (let i = 0; i < 240 && after.records < before.records + records.length; i++) {
		await sleep(250);
		after = await usageOf();
	}
	assert(after.records - before.records === records.length, `usage records grew by ${after.records - before.records}, want ${records.length}`);
	assert(after.duration_s - before.duration_s === wantSeconds, `call seconds grew by ${after.duration_s - before.duration_s}, want ${wantSeconds}`);
	assert(after.cost_micros > before.cost_micros, 'the calls and messages cost nothing (no rate applied?)');

	// ...and the open page shows them without a click (it refreshes every 10 s)
	const want = [String(after.records), minutes(after.duration_s), minutes(after.billable_s), String(after.units), money(after.cost_micros, 'USD')];
	try {
		await page.waitForFunction(
			(p, w) => {
				const tr = document.querySelector(`#usage-number-table tr[data-key="${p}"]`);
				return tr && JSON.stringify([...tr.cells].slice(1).map((c) => c.textContent.trim())) === JSON.stringify(w);
			},
			{ timeout: 40000 },
			phone,
			want,
		);
	} catch {
		throw new Error(`the usage page did not show ${phone} with ${want} within 40 s: ${JSON.stringify(await rowCells(page, '#usage-number-table', phone))}`);
	}
	console.log(`  usage appeared on the open page ${((Date.now() - pushedAt) / 1000).toFixed(1)} s after the push: ${want.join(' | ')}`);

	// the by-day table: today's row and the totals are the API's
	const byDay = await ctx.api(ctx.ownerKey, 'GET', `/v1/usage?group_by=day`);
	const today = byDay.items.find((i) => i.day === ymd(new Date(at)));
	assert(today, `GET /v1/usage has no item for ${ymd(new Date(at))}`);
	await page.click('#usage-refresh');
	await page.waitForFunction(() => !document.querySelector('#usage-refresh').disabled);
	const fig = (r) => [String(r.records), minutes(r.duration_s), minutes(r.billable_s), String(r.units), money(r.cost_micros, byDay.currency)];
	for (const d of byDay.items) {
		const dayRow = await rowCells(page, '#usage-day-table', d.day);
		assert(JSON.stringify(dayRow) === JSON.stringify([d.day, ...fig(d)]), `the row of ${d.day} ${dayRow} is not the API's ${fig(d)}`);
	}
	const totalRow = await rowCells(page, '#usage-day-table', 'total');
	assert(JSON.stringify(totalRow) === JSON.stringify(['Total', ...fig(byDay.totals)]), `the total row ${totalRow} is not the API's ${fig(byDay.totals)}`);
	const byKind = await ctx.api(ctx.ownerKey, 'GET', `/v1/usage?group_by=event_type`);
	for (const k of byKind.items) {
		const r = await rowCells(page, '#usage-kind-table', k.event_type);
		assert(r && JSON.stringify(r.slice(1)) === JSON.stringify(fig(k)), `the ${k.event_type} row ${r} is not the API's ${fig(k)}`);
	}
	assert(byKind.items.some((k) => k.event_type === 'sms_sent' && k.units >= 2), 'no sms_sent of 2 segments by kind');
	const summary = await page.$eval('#usage-summary', (e) => e.textContent);
	assert(summary.includes(money(byDay.totals.cost_micros, byDay.currency)), `the summary lacks the total cost: ${summary}`);
	assert((await page.$$('.usage-chart canvas')).length === 2, 'the page does not draw two charts');
	await ctx.checkPage(page, 'usage page with usage');
	await ctx.shot(page, '30-usage');
	const charts = await page.$$('.usage-chart');
	await charts[0].screenshot({ path: join(ctx.shots, '31-usage-chart-by-day.png') });
	await charts[1].screenshot({ path: join(ctx.shots, '32-usage-chart-by-number.png') });

	// only one kind: SMS sent
	await page.select('select[name="event_type"]', 'sms_sent');
	await page.click('form.usage-range button[type="submit"]');
	await page.waitForFunction(() => document.querySelectorAll('#usage-kind-table tbody tr').length === 1);
	const sms = await ctx.api(ctx.ownerKey, 'GET', `/v1/usage?group_by=number&event_type=sms_sent&number=${encodeURIComponent(phone)}`);
	const smsRow = await rowCells(page, '#usage-number-table', phone);
	assert(JSON.stringify(smsRow.slice(1)) === JSON.stringify(fig(sms.items[0])), `SMS sent only: ${smsRow} vs ${fig(sms.items[0])}`);
	await page.select('select[name="event_type"]', '');

	// bad ranges: the API's error, with its parameter
	ctx.allow(page, 400);
	await setValue(page, 'input[name="start_date"]', ymd(now));
	await setValue(page, 'input[name="end_date"]', '2020-01-01');
	await page.click('form.usage-range button[type="submit"]');
	await ctx.waitText(page, 'Could not load the usage');
	await ctx.waitText(page, 'invalid_parameter');
	const e1 = await page.$eval('.error', (e) => e.textContent);
	await ctx.shot(page, '33-usage-bad-range');
	await ctx.checkPage(page, 'usage page, range ending before it starts');
	await setValue(page, 'input[name="start_date"]', '2024-01-01');
	await setValue(page, 'input[name="end_date"]', ymd(now));
	await page.click('form.usage-range button[type="submit"]');
	await page.waitForFunction((old) => document.querySelector('.error') && document.querySelector('.error').textContent !== old, {}, e1);
	const e2 = await page.$eval('.error', (e) => e.textContent);
	assert(/366/.test(e2) && e2.includes('invalid_parameter'), `a range over 366 days: ${e2}`);
	console.log(`  bad ranges: "${e1.replace(/\s+/g, ' ')}" / "${e2.replace(/\s+/g, ' ')}"`);
	await ctx.checkPage(page, 'usage page, range over 366 days');

	// back to a good range: the figures again
	await setValue(page, 'input[name="start_date"]', `${ymd(now).slice(0, 8)}01`);
	await page.click('form.usage-range button[type="submit"]');
	await page.waitForSelector('#usage-number-table');
	assert(!(await page.$('.error')), 'the error stayed after a good range');
	// the range is in the address: a reload keeps it
	assert(page.url().includes(`start_date=${ymd(now).slice(0, 8)}01`), `the address does not hold the range: ${page.url()}`);
	await setValue(page, 'input[name="start_date"]', ymd(new Date(at)));
	await page.click('form.usage-range button[type="submit"]');
	await page.waitForFunction((d) => location.hash.includes(`start_date=${d}`), {}, ymd(new Date(at)));
	await page.reload({ waitUntil: 'networkidle0' });
	await page.waitForSelector('#usage-summary');
	assert((await page.$eval('input[name="start_date"]', (e) => e.value)) === ymd(new Date(at)), 'a reload lost the range');
	await ctx.checkPage(page, 'usage page after a reload');
	await page.close();
	ctx.state.usage = { phone, cost_micros: after.cost_micros };
}
