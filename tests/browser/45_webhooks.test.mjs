// Webhook endpoints through the dashboard (docs/API.md section 13): a
// private address refused by the destination filter (400, its message
// shown), an endpoint at the test's receiver (VOX_DASH_RECEIVER + /hooks)
// whose secret is shown once, a test sent from its page and seen as a
// succeeded attempt (200) that the receiver verified with that secret,
// the message resent and a second attempt seen, disable/enable, delete;
// a second endpoint for two event types only.
import { assert, env } from './lib.mjs';

async function receiver(method, path, body) {
	const res = await fetch(env('VOX_DASH_RECEIVER') + path, {
		method,
		headers: body ? { 'Content-Type': 'application/json' } : {},
		body: body ? JSON.stringify(body) : undefined,
	});
	const text = await res.text();
	assert(res.ok, `${method} receiver ${path}: ${res.status} ${text.slice(0, 300)}`);
	return JSON.parse(text);
}

const rowsOf = (page) => page.$$eval('section[aria-labelledby="attempts-title"] tbody tr', (trs) => trs.map((tr) => tr.innerText));

export default async function (ctx) {
	const url = `${env('VOX_DASH_RECEIVER')}/hooks`;
	const page = await ctx.newPage();
	page.on('dialog', (d) => d.accept());
	try {
		await ctx.signIn(page, ctx.ownerKey);
		await ctx.go(page, '#/webhooks');
		await page.waitForSelector('form.new-endpoint input[name="url"]');
		await ctx.checkPage(page, 'webhooks list');

		// a private address: refused by the destination filter
		ctx.allow(page, 400);
		await page.type('form.new-endpoint input[name="url"]', 'http://10.11.12.13/hooks');
		await page.click('form.new-endpoint button[type="submit"]');
		await ctx.waitText(page, 'The endpoint was not created');
		await ctx.waitText(page, 'invalid_body');
		await ctx.waitText(page, /field url/);
		await ctx.checkPage(page, 'endpoint refused');

		// the receiver's endpoint: the secret shown once
		await page.$eval('form.new-endpoint input[name="url"]', (el) => { el.value = ''; });
		await page.type('form.new-endpoint input[name="url"]', url);
		await page.type('form.new-endpoint input[name="description"]', 'the test receiver');
		await page.click('form.new-endpoint button[type="submit"]');
		await page.waitForSelector('#new-secret');
		const secret = await page.$eval('#new-secret', (e) => e.textContent);
		assert(/^whsec_/.test(secret), `the secret shown: ${secret}`);
		await ctx.waitText(page, 'shown only this once');
		await ctx.waitText(page, 'every event');
		const list = await ctx.api(ctx.ownerKey, 'GET', '/v1/webhook-endpoints');
		const ep = list.data.find((x) => x.url === url);
		assert(ep && !('secret' in ep), `the endpoint is not listed (or its secret is): ${JSON.stringify(list.data)}`);
		await ctx.checkPage(page, 'endpoint created');
		await receiver('POST', '/_admin/secrets', { path: '/hooks', secrets: [secret] });

		// a second one for two event types only
		const other = `${env('VOX_DASH_RECEIVER')}/other`;
		await page.type('form.new-endpoint input[name="url"]', other);
		await page.click('#ev-all');
		await page.waitForSelector('[id="ev-number.activated"]');
		await page.click('[id="ev-number.activated"]');
		await page.click('[id="ev-porting_order.ported"]');
		await page.click('form.new-endpoint button[type="submit"]');
		await ctx.waitText(page, `The signing secret of ${other}`);
		await ctx.waitText(page, 'number.activated, porting_order.ported');
		const two = await ctx.api(ctx.ownerKey, 'GET', '/v1/webhook-endpoints');
		const ep2 = two.data.find((x) => x.url === other);
		assert(ep2 && ep2.events.join() === 'number.activated,porting_order.ported', `the second endpoint: ${JSON.stringify(ep2)}`);
		await ctx.checkPage(page, 'second endpoint created');
		await ctx.shot(page, '45-webhooks-list-created');

		// its page: send a test, see it succeed
		await page.click(`a[href="#/webhooks/${ep.id}"]`);
		await page.waitForSelector('button[aria-label="Send a test"]');
		await ctx.waitText(page, 'No attempts yet');
		await page.click('button[aria-label="Send a test"]');
		await ctx.waitText(page, 'A webhook.test message');
		await page.waitForFunction(
			() => [...document.querySelectorAll('section[aria-labelledby="attempts-title"] tbody tr')].some((tr) => /succeeded/.test(tr.innerText)),
			{ timeout: 90000 },
		);
		let rows = await rowsOf(page);
		assert(rows.length === 1 && /webhook\.test/.test(rows[0]) && /\b200\b/.test(rows[0]), `the attempts: ${rows}`);
		const got = await receiver('GET', '/_admin/received?path=/hooks&min=1');
		assert(got.length === 1 && got[0].verified === true, `the receiver's view: ${JSON.stringify(got).slice(0, 500)}`);
		const msgId = got[0].headers['webhook-id'];
		assert(rows[0].includes(msgId), `the attempt does not show the message ${msgId}: ${rows[0]}`);
		await ctx.checkPage(page, 'endpoint with one attempt');

		// resend it: a second attempt of the same message
		await page.click(`button[aria-label="Resend ${msgId}"]`);
		await ctx.waitText(page, `Message ${msgId} queued again`);
		await page.waitForFunction(
			() => [...document.querySelectorAll('section[aria-labelledby="attempts-title"] tbody tr')].filter((tr) => /succeeded/.test(tr.innerText)).length === 2,
			{ timeout: 90000 },
		);
		rows = await rowsOf(page);
		assert(rows.length === 2 && rows.every((r) => r.includes(msgId) && /\b200\b/.test(r)), `the attempts after the resend: ${rows}`);
		const again = await receiver('GET', '/_admin/received?path=/hooks&min=2');
		assert(again.length === 2 && again[1].headers['webhook-id'] === msgId && again[1].verified === true, 'the receiver did not get the resend');
		await ctx.checkPage(page, 'endpoint with two attempts');
		await ctx.shot(page, '46-webhook-attempts');

		// the outcome filter
		await page.select('select[name="outcome"]', 'failed');
		await ctx.waitText(page, 'No failed attempts.');
		await page.select('select[name="outcome"]', '');
		await page.waitForFunction(() => document.querySelectorAll('section[aria-labelledby="attempts-title"] tbody tr').length === 2);

		// a viewer sees the attempts, not the actions
		const viewer = await ctx.newKey(ctx.ownerKey, 'viewer');
		const vpage = await ctx.newPage();
		try {
			await ctx.signIn(vpage, viewer.key);
			await ctx.go(vpage, '#/webhooks');
			await ctx.waitText(vpage, url);
			assert(!(await vpage.$('form.new-endpoint')), 'a viewer sees the new endpoint form');
			await ctx.go(vpage, `#/webhooks/${ep.id}`);
			await ctx.waitText(vpage, 'webhook.test');
			assert((await vpage.$$('button')).length === 1, 'a viewer is offered more buttons than sign-out');
			await ctx.checkPage(vpage, 'endpoint as a viewer');
		} finally {
			await vpage.close();
		}

		// disable, enable
		await page.click('button[aria-label="Disable"]');
		await ctx.waitText(page, 'Disabled: nothing is sent');
		await page.waitForSelector('button[aria-label="Enable"]');
		assert((await ctx.api(ctx.ownerKey, 'GET', `/v1/webhook-endpoints/${ep.id}`)).enabled === false, 'the endpoint is still enabled');
		await page.click('button[aria-label="Enable"]');
		await page.waitForSelector('button[aria-label="Disable"]');
		assert((await ctx.api(ctx.ownerKey, 'GET', `/v1/webhook-endpoints/${ep.id}`)).enabled === true, 'the endpoint is not enabled again');
		await ctx.checkPage(page, 'endpoint enabled again');

		// delete (confirmed): gone from the list
		await page.click('button[aria-label="Delete the endpoint"]');
		await page.waitForFunction(() => location.hash === '#/webhooks');
		await ctx.waitText(page, other);
		assert(!(await page.$(`a[href="#/webhooks/${ep.id}"]`)), 'the deleted endpoint is still listed');
		const left = await ctx.api(ctx.ownerKey, 'GET', '/v1/webhook-endpoints');
		assert(left.data.length === 1 && left.data[0].id === ep2.id, `after the delete: ${JSON.stringify(left.data)}`);
		await ctx.checkPage(page, 'endpoint deleted');
	} finally {
		await page.close();
	}
}
