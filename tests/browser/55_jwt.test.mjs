// Sign-in with a JWT from the account's identity provider (HS256 here,
// the ingress configured with its secret by tests/shell/dashboard.sh): a
// billing user sees invoices and may draft one, but cannot buy numbers
// or manage keys; an expired token is refused with the API's message.
import { createHmac } from 'node:crypto';
import { assert, env } from './lib.mjs';

function b64url(buf) {
	return Buffer.from(buf).toString('base64url');
}

// A compact JWS (RFC 7515) signed with HMAC-SHA256.
function jwt(claims) {
	const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
	const body = b64url(JSON.stringify(claims));
	const sig = createHmac('sha256', env('VOX_DASH_JWT_SECRET')).update(`${head}.${body}`).digest();
	return `${head}.${body}.${b64url(sig)}`;
}

export default async function (ctx) {
	const now = Math.floor(Date.now() / 1000);
	const claims = { sub: 'ada@example.com', aud: 'voxlink', vox_account: env('VOX_DASH_ACCOUNT_ID'), vox_role: 'billing', iat: now };
	const page = await ctx.newPage();

	ctx.allow(page, 401);
	await page.goto(`${ctx.base}/dashboard`, { waitUntil: 'networkidle0' });
	await page.waitForSelector('input[name="token"]');
	await page.type('input[name="token"]', jwt({ ...claims, exp: now - 3600 }));
	await page.click('form button[type="submit"]');
	await ctx.waitText(page, 'token expired');
	await ctx.checkPage(page, 'expired JWT refused');

	await page.evaluate(() => { document.querySelector('input[name="token"]').value = ''; });
	await page.type('input[name="token"]', jwt({ ...claims, exp: now + 600 }));
	await page.click('form button[type="submit"]');
	await page.waitForSelector('nav.nav');
	assert((await page.$eval('.role', (e) => e.textContent)) === 'billing', 'the header does not show the billing role');
	const nav = await page.$$eval('nav.nav a', (as) => as.map((a) => a.textContent));
	for (const no of ['Search and buy', 'API keys']) assert(!nav.includes(no), `a billing user sees ${no}`);
	for (const yes of ['Numbers', 'Usage', 'Invoices']) assert(nav.includes(yes), `a billing user does not see ${yes}`);
	assert(!(await page.$('#buy-numbers')), 'a billing user sees the buy button');
	await ctx.checkPage(page, 'numbers as a billing user (JWT)');

	await ctx.go(page, '#/invoices');
	await ctx.waitText(page, 'Invoices');
	await ctx.checkPage(page, 'invoices as a billing user (JWT)');
	await ctx.shot(page, '55-jwt-billing-invoices');
	await page.close();
}
