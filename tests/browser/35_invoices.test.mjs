// Invoices: the owner drafts the invoice of the current period from the
// page (a day that does not start a period first: the API's 422 shown),
// sees it in the list and its detail (lines and totals as the API gives
// them), and downloads its PDF (the browser's download, bytes checked:
// %PDF). A viewer reads but is offered no billing action. On a second,
// new account an owner finalizes its (empty) draft from the page: a total
// of zero is paid at once and the invoice gets its number.
// Screenshots 34-38.
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert } from './lib.mjs';
import { money, setValue, sleep, usageNumber } from './usage_lib.mjs';

const localDay = (iso, timeZone) =>
	new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(iso));
const nextDay = (d) => new Date(Date.parse(`${d}T00:00:00Z`) + 86400000).toISOString().slice(0, 10);

async function clickButton(page, text) {
	const b = await page.waitForSelector(`::-p-xpath(//button[normalize-space(.)="${text}"])`);
	await b.click();
}

// Drafts the current period's invoice from the open invoices page; answers
// the invoice's id.
async function draftFromPage(ctx, page, key) {
	const settings = await ctx.api(key, 'GET', '/v1/billing/settings');
	const start = localDay(settings.current_period.start, settings.timezone);
	await page.waitForFunction((s) => document.querySelector('input[name="period_start"]')?.value === s, {}, start);
	await clickButton(page, 'Draft invoice');
	await ctx.waitText(page, 'Drafted:');
	const id = await page.$eval('.invoice-draft .notice a', (a) => a.getAttribute('href').replace('#/invoices/', ''));
	await page.waitForSelector(`table a[href="#/invoices/${id}"]`);
	return { id, start, settings };
}

// The PDF as the browser downloads it (Browser.setDownloadBehavior into a
// temporary directory of this page's browser context).
async function downloadPdf(page) {
	const dir = mkdtempSync(join(tmpdir(), 'vox-dash-dl-'));
	const cdp = await page.browser().target().createCDPSession();
	await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dir, browserContextId: page.browserContext().id });
	await clickButton(page, 'Download PDF');
	for (let i = 0; i < 100; i++) {
		const done = readdirSync(dir).filter((f) => f.endsWith('.pdf'));
		if (done.length && statSync(join(dir, done[0])).size > 0) {
			await cdp.detach();
			return { name: done[0], bytes: readFileSync(join(dir, done[0])) };
		}
		await sleep(100);
	}
	throw new Error(`no PDF was downloaded into ${dir}: ${readdirSync(dir)}`);
}

export default async function (ctx) {
	await usageNumber(ctx); // a number owned in the period: a line of the invoice
	const page = await ctx.newPage();
	await ctx.signIn(page, ctx.ownerKey);
	await ctx.go(page, '#/invoices');
	await page.waitForSelector('input[name="period_start"]');

	// a day that does not start a billing period: the API's 422
	const settings = await ctx.api(ctx.ownerKey, 'GET', '/v1/billing/settings');
	const start = localDay(settings.current_period.start, settings.timezone);
	await page.waitForFunction((s) => document.querySelector('input[name="period_start"]').value === s, {}, start);
	ctx.allow(page, 422);
	await setValue(page, 'input[name="period_start"]', nextDay(start));
	await clickButton(page, 'Draft invoice');
	await ctx.waitText(page, 'Could not draft the invoice');
	await ctx.waitText(page, 'invalid_period');
	await ctx.waitText(page, `is not the first day of a billing period`);
	await ctx.shot(page, '34-invoice-bad-period');
	await ctx.checkPage(page, 'invoices page, a bad period');

	// the current period: drafted, in the list
	await setValue(page, 'input[name="period_start"]', start);
	const { id } = await draftFromPage(ctx, page, ctx.ownerKey);
	const inv = await ctx.api(ctx.ownerKey, 'GET', `/v1/invoices/${id}`);
	assert(inv.status === 'draft' && inv.lines.length > 0, `the draft: ${inv.status}, ${inv.lines.length} lines`);
	const row = await page.$eval(`table a[href="#/invoices/${id}"]`, (a) => [...a.closest('tr').cells].map((c) => c.textContent.trim()));
	assert(row[1] === 'draft', `the list shows status ${row[1]}`);
	assert(row[2].startsWith(start), `the list shows period ${row[2]}, want from ${start}`);
	assert(row[3] === money(inv.total_micros, inv.currency), `the list shows total ${row[3]}, the API ${inv.total_micros}`);
	await ctx.checkPage(page, 'invoices list');
	await ctx.shot(page, '35-invoices-list');

	// its detail: every line and the totals
	await page.click(`table a[href="#/invoices/${id}"]`);
	await page.waitForSelector('table.invoice-lines');
	const lines = await page.$$eval('table.invoice-lines tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
	assert(lines.length === inv.lines.length, `the page shows ${lines.length} lines, the API ${inv.lines.length}`);
	inv.lines.forEach((l, k) => {
		assert(lines[k][1] === l.description, `line ${k + 1}: ${lines[k][1]} vs ${l.description}`);
		assert(lines[k][5] === money(l.amount_micros, inv.currency), `line ${k + 1} amount ${lines[k][5]} vs ${l.amount_micros}`);
	});
	const foot = await page.$$eval('table.invoice-lines tfoot tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
	const total = foot.find((r) => r[0] === 'Total');
	assert(total && total[1] === money(inv.total_micros, inv.currency), `the total row ${total}`);
	if (ctx.state.usage) assert(inv.lines.some((l) => l.kind === 'usage'), 'the usage pushed by 30_usage is not on the invoice');
	console.log(`  draft ${id}: ${inv.lines.length} lines (${inv.lines.map((l) => l.kind).join(', ')}), total ${inv.total_micros} micros`);
	await ctx.checkPage(page, 'invoice detail');
	await ctx.shot(page, '36-invoice-detail');

	// the PDF, downloaded with the credential
	const pdf = await downloadPdf(page);
	assert(pdf.bytes.subarray(0, 5).toString('latin1') === '%PDF-', `the download is not a PDF: ${pdf.bytes.subarray(0, 16)}`);
	assert(pdf.name === `invoice-draft-${start}.pdf`, `the PDF is named ${pdf.name}`);
	console.log(`  PDF downloaded: ${pdf.name}, ${pdf.bytes.length} bytes`);
	await ctx.checkPage(page, 'invoice detail after the download');

	// an invoice that is not the account's: the API's 404, not a blank page
	ctx.allow(page, 404);
	await ctx.go(page, '#/invoices/01a25246-0000-7000-8000-000000000000');
	await ctx.waitText(page, 'Could not load the invoice');
	await ctx.waitText(page, 'invoice_not_found');
	await ctx.checkPage(page, 'an unknown invoice');
	await page.close();

	// a viewer reads, and is offered no billing action
	const viewer = await ctx.newKey(ctx.ownerKey, 'viewer');
	const vpage = await ctx.newPage();
	await ctx.signIn(vpage, viewer.key);
	await ctx.go(vpage, '#/invoices');
	await vpage.waitForSelector(`table a[href="#/invoices/${id}"]`);
	assert(!(await vpage.$('.invoice-draft')), 'a viewer is offered to draft an invoice');
	await vpage.click(`table a[href="#/invoices/${id}"]`);
	await vpage.waitForSelector('table.invoice-lines');
	assert(!(await vpage.$('.invoice-actions')), 'a viewer is offered invoice actions');
	await vpage.waitForSelector('::-p-xpath(//button[normalize-space(.)="Download PDF"])');
	await ctx.checkPage(vpage, 'invoice detail (viewer)');
	await vpage.close();

	// another new account: its owner finalizes the empty draft: paid at once
	const other = await ctx.newAccount(`dash-invoices-${Date.now()}`);
	const opage = await ctx.newPage();
	opage.on('dialog', (d) => d.accept());
	await ctx.signIn(opage, other.api_key);
	await ctx.go(opage, '#/invoices');
	const d2 = await draftFromPage(ctx, opage, other.api_key);
	await opage.click(`table a[href="#/invoices/${d2.id}"]`);
	await opage.waitForSelector('table.invoice-lines');
	await clickButton(opage, 'Finalize now');
	await ctx.waitText(opage, /Status\s*paid/);
	const fin = await ctx.api(other.api_key, 'GET', `/v1/invoices/${d2.id}`);
	assert(fin.status === 'paid' && fin.number, `after finalize: ${fin.status} ${fin.number}`);
	await ctx.waitText(opage, `Invoice ${fin.number}`);
	assert(!(await opage.$('::-p-xpath(//button[normalize-space(.)="Finalize now"])')), 'a paid invoice still offers Finalize');
	console.log(`  finalized from the page: ${fin.number} ${fin.status}`);
	await ctx.checkPage(opage, 'finalized invoice');
	await ctx.shot(opage, '37-invoice-finalized');
	await opage.close();
}
