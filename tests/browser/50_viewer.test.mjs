// A viewer (issue 19): a key of the account with the viewer role sees the
// numbers, the bought one among them, but no buy button, no "Search and
// buy" in the navigation, a permission message at #/buy, and on the
// number's page its configuration without any control that changes it.
import { assert } from './lib.mjs';
import { ensureNumber, text } from './buy_lib.mjs';

export default async function (ctx) {
	const { id, phone } = await ensureNumber(ctx);
	const viewer = await ctx.newKey(ctx.ownerKey, 'viewer');
	const page = await ctx.newPage();
	await ctx.signIn(page, viewer.key);
	await page.waitForSelector('table tbody tr');
	assert((await text(page, '.role')) === 'viewer', 'the header does not show the viewer role');
	const nav = await page.$$eval('nav.nav a', (as) => as.map((a) => a.textContent));
	assert(!nav.includes('Search and buy'), `the viewer's navigation offers buying: ${nav}`);
	assert(nav.includes('Numbers'), `the viewer's navigation lacks Numbers: ${nav}`);
	assert(!(await page.$('#buy-numbers')), 'the viewer sees the buy button');
	await ctx.waitText(page, phone);
	await ctx.shot(page, '50-viewer-numbers');
	await ctx.checkPage(page, 'viewer numbers');

	// the buy page by its address: a permission message, no search form
	await ctx.go(page, '#/buy');
	await ctx.waitText(page, 'your role (viewer) may not use this page');
	assert(!(await page.$('form.buy-search')), 'the viewer gets the search form');
	await ctx.shot(page, '51-viewer-buy-refused');
	await ctx.checkPage(page, 'viewer at #/buy');

	// the number: its properties and configuration, nothing to change them
	await ctx.go(page, `#/numbers/${id}`);
	await page.waitForSelector('dl.props .badge-active');
	await ctx.waitText(page, 'may look at this configuration but not change it');
	await page.waitForSelector('#panel-routing dl.props');
	for (const sel of ['#activate-number', 'input[name="forward_to"]', '#save-routing', '#save-hours', '#save-voicemail', '.number-actions'])
		assert(!(await page.$(sel)), `the viewer's number page has ${sel}`);
	const buttons = await page.$$eval('main button', (bs) => bs.map((b) => b.textContent.trim()));
	for (const b of buttons) assert(!/Activate|Deactivate|Release|Save|Change/.test(b), `the viewer's number page has a button ${b}`);
	const inputs = await page.$$eval('main input, main textarea, main select', (els) => els.map((e) => e.name || e.id));
	assert(inputs.length === 0, `the viewer's number page has form controls: ${inputs}`);
	await ctx.shot(page, '52-viewer-number');
	await ctx.checkPage(page, 'viewer number');

	// the business hours read: the week view and the next transitions
	await page.click('#tab-hours');
	await page.waitForSelector('#panel-hours .week-table', { visible: true });
	await page.waitForSelector('.transitions table, .transitions .empty');
	await ctx.shot(page, '53-viewer-number-hours');
	await ctx.checkPage(page, 'viewer business hours');

	// the API refuses the viewer too (the page hides what the server forbids)
	const res = await fetch(`${ctx.base}/v1/numbers/${id}/deactivate`, {
		method: 'POST',
		headers: { Authorization: `Bearer ${viewer.key}`, 'Idempotency-Key': crypto.randomUUID() },
	});
	assert(res.status === 403, `the API let the viewer deactivate: ${res.status}`);
	await page.close();
}
