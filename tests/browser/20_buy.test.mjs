// Search and buy, then activate (issue 19): the new user (the owner key of
// a fresh account) signs in, a bad area code is refused with the API's
// message, searches US 415 numbers, selects one, reserves it (the expiry
// shown), buys it with the order's progress shown live up to completed,
// opens the bought number, is refused a bad forwarding number, activates
// it with forwarding (progress, then the status active). Leaves the number
// in ctx.state.number for 25_number_config and 50_viewer.
import { assert } from './lib.mjs';
import { fill, progressDone, text, watchProgress } from './buy_lib.mjs';

export default async function (ctx) {
	const page = await ctx.newPage();
	await ctx.signIn(page, ctx.ownerKey);
	await page.waitForSelector('#buy-numbers');
	await page.click('#buy-numbers');
	await page.waitForSelector('form.buy-search');
	assert((await text(page, 'h1')) === 'Search and buy', 'the buy button does not open the search page');
	await ctx.checkPage(page, 'search page');

	// a bad area code: the API's message and the parameter it names
	ctx.allow(page, 400);
	await fill(page, 'input[name="area_code"]', '4a5');
	await page.click('#search-numbers');
	await ctx.waitText(page, 'The search failed');
	await ctx.waitText(page, 'area_code: 1 to 6 digits');
	await ctx.waitText(page, 'invalid_parameter');
	await ctx.shot(page, '20-buy-search-error');
	await ctx.checkPage(page, 'search refused');

	// US, area code 415, with voice
	await fill(page, 'input[name="area_code"]', '415');
	await page.click('input[name="feature-voice"]');
	await page.click('#search-numbers');
	await page.waitForSelector('input.pick');
	assert(!(await page.$('.error')), 'the error of the bad search is still shown');
	const rows = await page.$$eval('table tbody tr', (trs) => trs.map((tr) => tr.innerText));
	assert(rows.length > 0 && rows.every((r) => r.includes('+1415')), `the results are not 415 numbers: ${rows}`);
	assert(rows.every((r) => /\$\d+\.\d\d/.test(r)), `the results show no prices: ${rows}`);
	await ctx.shot(page, '21-buy-search-results');
	await ctx.checkPage(page, 'search results');

	// select the first number, reserve it
	const phone = await page.$eval('input.pick', (el) => el.value);
	await page.click(`input.pick[aria-label="Select ${phone}"]`);
	await page.waitForSelector('#reserve-selected');
	assert((await text(page, '#reserve-selected')) === 'Reserve selected (1)', 'the reserve button does not count the selection');
	await page.click('#reserve-selected');
	await page.waitForSelector('#buy-reserved');
	await ctx.waitText(page, 'Held until');
	await ctx.waitText(page, /\d+:\d\d left/);
	const reserved = await page.$$eval('.reservation tbody tr', (trs) => trs.map((tr) => tr.innerText));
	assert(reserved.length === 1 && reserved[0].includes(phone) && reserved[0].includes('reserved'), `the reservation does not hold ${phone}: ${reserved}`);
	assert(await page.$eval(`input.pick[value="${phone}"]`, (e) => e.disabled && e.checked), 'the reserved number can still be selected in the results');
	const before = await page.$eval('#reservation-left', (e) => e.textContent);
	await page.click('#extend-reservation');
	await page.waitForSelector('#reservation-extended');
	await progressDone(page, 'Reservation');
	await ctx.shot(page, '22-buy-reserved');
	await ctx.checkPage(page, 'reservation');
	const r = await ctx.api(ctx.ownerKey, 'GET', '/v1/reservations/' + (await page.$eval('.reservation dd code', (e) => e.textContent)));
	assert(r.status === 'active' && r.phone_numbers[0].phone_number === phone, `the API's reservation: ${JSON.stringify(r)}`);
	console.log(`  reservation: ${before} before the extension, held until ${r.expires_at}`);

	// buy it: the order's progress live, up to completed
	await watchProgress(page, 'Order');
	await page.click('#buy-reserved');
	const steps = await progressDone(page, 'Order');
	assert(steps.includes('completed'), `the order's progress did not reach completed: ${steps}`);
	assert(steps[0] !== 'completed', `the order's progress was not shown before it completed: ${steps}`);
	await page.waitForSelector('a.bought-number');
	await ctx.waitText(page, 'complete');
	await ctx.shot(page, '23-buy-bought');
	await ctx.checkPage(page, 'bought');
	console.log(`  order progress seen: ${steps.join(' -> ')}`);

	// the bought number
	assert((await text(page, 'a.bought-number')) === phone, 'the link does not name the bought number');
	await page.click('a.bought-number');
	await page.waitForSelector('dl.props');
	await page.waitForFunction((p) => document.querySelector('h1').textContent === p, {}, phone);
	await page.waitForSelector('dl.props .badge-purchased');
	const id = decodeURIComponent(await page.evaluate(() => location.hash.split('/')[2]));
	ctx.state.number = { id, phone };
	await page.waitForSelector('#activate-number');
	await ctx.waitText(page, 'Activate the number to change its configuration');
	await ctx.shot(page, '24-number-bought');
	await ctx.checkPage(page, 'bought number');

	// a bad forwarding number, then activation with forwarding
	ctx.allow(page, 400);
	await fill(page, 'input[name="forward_to"]', '+1555');
	await page.click('#activate-number');
	await ctx.waitText(page, 'Activation refused');
	await ctx.waitText(page, 'invalid_phone_number');
	assert(await page.$('input[name="forward_to"][aria-invalid="true"]'), 'the refused field is not marked');
	await fill(page, 'input[name="forward_to"]', '+44 20 7946 0000');
	await watchProgress(page, 'Activation');
	await page.click('#activate-number');
	const act = await progressDone(page, 'Activation');
	await page.waitForSelector('dl.props .badge-active');
	await ctx.waitText(page, 'Calls to');
	assert(!(await page.$('.error')), 'an error is still shown after the activation');
	const fwd = await text(page, '#forwards-to');
	assert(fwd === '+442079460000', `the page shows forwarding to ${fwd}`);
	await page.waitForSelector('#save-routing');
	await page.waitForFunction(() => document.querySelector('#panel-routing dl.props').innerText.includes('+442079460000'));
	await ctx.shot(page, '25-number-active');
	await ctx.checkPage(page, 'active number');
	console.log(`  activation progress seen: ${act.join(' -> ')}`);

	const num = await ctx.api(ctx.ownerKey, 'GET', `/v1/numbers/${id}`);
	assert(num.status === 'active' && num.phone_number === phone, `the API says ${num.phone_number} is ${num.status}`);
	assert(num.call_forwarding && num.call_forwarding.primary_destination === '+442079460000', `the API forwards to ${JSON.stringify(num.call_forwarding)}`);
	await page.close();
}
