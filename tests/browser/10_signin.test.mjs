// Sign-in: a wrong key is refused with the API's message (no blank page),
// the owner's key shows the account, its role and every page; the empty
// numbers list of a new account. Sign-out forgets the key.
import { assert } from './lib.mjs';

export default async function (ctx) {
	const page = await ctx.newPage();
	await page.goto(`${ctx.base}/dashboard`, { waitUntil: 'networkidle0' });
	await page.waitForSelector('input[name="token"]');
	await ctx.shot(page, '01-signin');
	await ctx.checkPage(page, 'sign-in page');

	ctx.allow(page, 401);
	await page.type('input[name="token"]', 'vox_' + 'A'.repeat(43));
	await page.click('form button[type="submit"]');
	await ctx.waitText(page, 'Sign-in failed');
	await ctx.waitText(page, 'invalid_credentials');
	await ctx.shot(page, '02-signin-refused');
	await ctx.checkPage(page, 'refused sign-in');

	await page.evaluate(() => { document.querySelector('input[name="token"]').value = ''; });
	await page.type('input[name="token"]', ctx.ownerKey);
	await page.click('form button[type="submit"]');
	await page.waitForSelector('nav.nav');
	await ctx.waitText(page, 'You have no numbers yet.');
	const nav = await page.$$eval('nav.nav a', (as) => as.map((a) => a.textContent));
	for (const want of ['Numbers', 'Search and buy', 'Usage', 'Invoices', 'Porting', 'Webhooks', 'API keys'])
		assert(nav.includes(want), `the owner's navigation lacks ${want}: ${nav}`);
	assert((await page.$eval('.role', (e) => e.textContent)) === 'owner', 'the header does not show the owner role');
	assert(await page.$('#buy-numbers'), 'the owner sees no buy button');
	const stored = await page.evaluate(() => sessionStorage.getItem('voxlink.token'));
	assert(stored === ctx.ownerKey, 'the key is not kept in sessionStorage');
	await ctx.checkPage(page, 'numbers page (empty)');
	await ctx.shot(page, '03-numbers-empty');

	// a reload keeps the session of the tab
	await page.reload({ waitUntil: 'networkidle0' });
	await page.waitForSelector('nav.nav');

	await page.click('.top button');
	await page.waitForSelector('input[name="token"]');
	assert((await page.evaluate(() => sessionStorage.getItem('voxlink.token'))) === null, 'sign-out kept the key');
	await page.close();
}
