// API keys through the dashboard (docs/API.md section 8): a description
// too long is refused (400, its message shown); a developer key created
// and shown once; it signs in on a page of its own and has no API keys
// page (not in its navigation, refused by route); the owner revokes it
// (confirmed) and its next API call answers 401.
import { assert } from './lib.mjs';

export default async function (ctx) {
	const page = await ctx.newPage();
	page.on('dialog', (d) => d.accept());
	let dev = null;
	try {
		await ctx.signIn(page, ctx.ownerKey);
		await ctx.go(page, '#/keys');
		await page.waitForSelector('form.new-key select[name="role"]');
		await ctx.waitText(page, '(this session)');
		await ctx.checkPage(page, 'keys page');

		// too long a description: the API's message
		ctx.allow(page, 400);
		await page.select('form.new-key select[name="role"]', 'developer');
		await page.$eval('form.new-key input[name="description"]', (el) => {
			el.value = 'x'.repeat(501);
			el.dispatchEvent(new Event('input', { bubbles: true }));
		});
		await page.click('form.new-key button[type="submit"]');
		await ctx.waitText(page, 'The key was not created');
		await ctx.waitText(page, 'invalid_body');
		await ctx.checkPage(page, 'key refused');

		// a developer key, shown once
		await page.$eval('form.new-key input[name="description"]', (el) => {
			el.value = '';
			el.dispatchEvent(new Event('input', { bubbles: true }));
		});
		await page.type('form.new-key input[name="description"]', 'CI deploys (browser test)');
		await page.click('form.new-key button[type="submit"]');
		await page.waitForSelector('#new-key');
		const key = await page.$eval('#new-key', (e) => e.textContent);
		assert(/^vox_/.test(key), `the key shown: ${key}`);
		await ctx.waitText(page, 'shown only this once');
		await ctx.waitText(page, 'CI deploys (browser test)');
		const prefix = key.slice(0, 12);
		const row = await page.$$eval('tbody tr', (trs, p) => (trs.find((tr) => tr.innerText.includes(p)) || {}).innerText, prefix);
		assert(row && /developer/.test(row) && /active/.test(row) && /never/.test(row), `the new key's row: ${row}`);
		// Copy: to the clipboard
		await page.browserContext().overridePermissions(ctx.base, ['clipboard-read', 'clipboard-write', 'clipboard-sanitized-write']);
		await page.click('.shown-once button');
		await ctx.waitText(page, 'Copied to the clipboard.');
		const copied = await page.evaluate(() => navigator.clipboard.readText());
		assert(copied === key, `Copy put "${copied}" in the clipboard`);
		await ctx.checkPage(page, 'key created');
		await ctx.shot(page, '48-keys-created');

		// it signs in elsewhere: a developer sees no API keys page
		dev = await ctx.newPage();
		await ctx.signIn(dev, key);
		assert((await dev.$eval('.role', (e) => e.textContent)) === 'developer', 'the new key is not a developer');
		const nav = await dev.$$eval('nav.nav a', (as) => as.map((a) => a.textContent));
		assert(!nav.includes('API keys'), `a developer's navigation shows API keys: ${nav}`);
		assert(nav.includes('Porting') && nav.includes('Webhooks'), `a developer's navigation: ${nav}`);
		await ctx.go(dev, '#/keys');
		await ctx.waitText(dev, 'your role (developer) may not use this page');
		await ctx.checkPage(dev, 'keys page refused to a developer');
		await ctx.shot(dev, '47-keys-developer-refused');

		// the owner revokes it; its next call is refused
		await ctx.go(page, '#/keys');
		await page.click(`button[aria-label="Revoke ${prefix}"]`);
		await page.waitForFunction(
			(p) => [...document.querySelectorAll('tbody tr')].some((tr) => tr.innerText.includes(p) && /revoked/.test(tr.innerText)),
			{},
			prefix,
		);
		const res = await fetch(`${ctx.base}/v1/account`, { headers: { Authorization: `Bearer ${key}` } });
		const body = await res.json();
		assert(res.status === 401 && body.error.code === 'invalid_credentials', `the revoked key answered ${res.status} ${JSON.stringify(body)}`);
		await ctx.checkPage(page, 'key revoked');
		await ctx.shot(page, '49-keys-revoked');
	} finally {
		if (dev) await dev.close();
		await page.close();
	}
}
