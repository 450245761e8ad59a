// Every page of the navigation as the owner sees it at the end of the run
// (with the numbers, usage, invoices, porting orders, endpoints and keys
// the tests before made): the page checks on each, a screenshot each,
// the keyboard path (skip link first, then the navigation), an unknown
// number and an unknown page answered with a message, never a blank page.
import { assert } from './lib.mjs';

export default async function (ctx) {
	const page = await ctx.newPage();
	await ctx.signIn(page, ctx.ownerKey);

	const nav = await page.$$eval('nav.nav a', (as) => as.map((a) => [a.textContent, a.getAttribute('href')]));
	assert(nav.length === 7, `the owner's navigation has ${nav.length} pages, want 7`);
	for (const [title, href] of nav) {
		await ctx.go(page, href);
		await page.waitForFunction((t) => document.querySelector('h1') && document.querySelector('h1').textContent.length > 0, {}, title);
		// lists have rows or say they are empty; nothing is still loading
		await page.waitForFunction(() => !document.querySelector('.loading[role=status]'), { timeout: 20000 });
		const text = await page.evaluate(() => document.querySelector('main').innerText);
		assert(text.trim().length > 40, `${title}: the page is nearly empty: ${text}`);
		const current = await page.$eval('nav.nav a[aria-current="page"]', (a) => a.textContent);
		assert(current === title, `${title}: the navigation marks ${current} as the current page`);
		await ctx.checkPage(page, `tour: ${title}`);
		await ctx.shot(page, `90-tour-${href.replace(/[^a-z]/g, '')}`);
	}
	// the owner's numbers, with what the tests bought
	await ctx.go(page, '#/numbers');
	const rows = await page.$$eval('main table tbody tr', (r) => r.length);
	assert(rows >= 1, 'the owner has no numbers listed at the end of the run');

	// keyboard: the first Tab reaches the skip link, Enter moves to the content
	await page.reload({ waitUntil: 'networkidle0' });
	await page.waitForSelector('nav.nav');
	await page.keyboard.press('Tab');
	assert((await page.evaluate(() => document.activeElement.className)) === 'skip', 'the first Tab does not reach "Skip to the content"');
	await page.keyboard.press('Enter');
	assert((await page.evaluate(() => document.activeElement.id)) === 'main', 'the skip link does not move the focus to the content');

	// a phone's width: the navigation above the content, the page usable
	await page.setViewport({ width: 390, height: 844 });
	await ctx.go(page, '#/numbers');
	const navBox = await page.$eval('nav.nav', (n) => { const r = n.getBoundingClientRect(); return { w: r.width, bottom: r.bottom }; });
	const mainTop = await page.$eval('main', (m) => m.getBoundingClientRect().top);
	assert(navBox.w > 300 && mainTop >= navBox.bottom - 1, `on a narrow screen the navigation is not above the content: ${JSON.stringify(navBox)} main at ${mainTop}`);
	const scrollW = await page.evaluate(() => document.documentElement.scrollWidth);
	assert(scrollW <= 390, `on a phone the page is ${scrollW} px wide: it scrolls sideways`);
	await ctx.checkPage(page, 'numbers on a phone');
	await ctx.shot(page, '91-tour-phone-numbers');
	await page.setViewport({ width: 1280, height: 900 });

	// an unknown number: the API's 404 shown, not a blank page
	ctx.allow(page, 404);
	await ctx.go(page, '#/numbers/00000000-0000-7000-8000-000000000000');
	await ctx.waitText(page, 'number_not_found');
	await ctx.checkPage(page, 'unknown number');
	await ctx.go(page, '#/no-such-page');
	await ctx.waitText(page, 'There is no such page.');
	await ctx.checkPage(page, 'unknown page');
	await ctx.shot(page, '99-unknown-page');
	await page.close();
}
