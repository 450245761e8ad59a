// A number's configuration through the dashboard (issue 19): routing,
// business hours (the week view and the next transitions) and voicemail
// saved through the forms, each checked back through the API; one bad
// input per section refused with the API's message and the field marked;
// the tabs work from the keyboard; the versions list every change.
import { assert } from './lib.mjs';
import { buyOne, ensureNumber, fill, progressDone, text, watchProgress } from './buy_lib.mjs';

// The panel of a tab (its controls are looked up inside it).
const P = (tab, sel) => `#panel-${tab} ${sel}`;

async function errorShown(page, tab, message, field) {
	await page.waitForFunction(
		(sel, m) => [...document.querySelectorAll(sel)].some((e) => e.textContent.includes(m)),
		{ timeout: 20000 },
		P(tab, '.error'),
		message,
	);
	const err = await text(page, P(tab, '.error'));
	assert(err.includes(`field ${field}`), `the ${tab} error does not name the field ${field}: ${err}`);
	assert(await page.$(P(tab, '[aria-invalid="true"]')), `the ${tab} field refused is not marked`);
}

export default async function (ctx) {
	const { id } = await ensureNumber(ctx);
	const page = await ctx.newPage();
	try {
		await steps(ctx, page, id);
	} catch (e) {
		await ctx.shot(page, '25-failed');
		throw e;
	}
}

async function steps(ctx, page, id) {
	await ctx.signIn(page, ctx.ownerKey);
	await ctx.go(page, `#/numbers/${id}`);
	await page.waitForSelector('dl.props .badge-active');
	await page.waitForSelector(P('routing', '#save-routing'));

	// routing: a timeout out of range is refused, then saved
	ctx.allow(page, 400);
	await fill(page, P('routing', 'input[name="failover_destination"]'), 'sip:desk@pbx.example.com:5060');
	await fill(page, P('routing', 'input[name="after_hours_destination"]'), '+14155550100');
	await fill(page, P('routing', 'input[name="timeout_s"]'), '3');
	await page.click(P('routing', '#save-routing'));
	await errorShown(page, 'routing', 'timeout_s: must be an integer 5..120', 'timeout_s');
	await ctx.shot(page, '26-number-routing-refused');
	await ctx.checkPage(page, 'routing refused');
	await fill(page, P('routing', 'input[name="timeout_s"]'), '25');
	await watchProgress(page, 'Saving the routing');
	await page.click(P('routing', '#save-routing'));
	await progressDone(page, 'Saving the routing');
	await ctx.waitText(page, 'sip:desk@pbx.example.com:5060');
	await page.waitForFunction(() => document.querySelector('#panel-routing dl.props').innerText.includes('25 s'));
	const routing = await ctx.api(ctx.ownerKey, 'GET', `/v1/numbers/${id}/routing`);
	assert(routing.failover_destination === 'sip:desk@pbx.example.com:5060' && routing.after_hours_destination === '+14155550100' && routing.timeout_s === 25 && routing.primary_destination === '+442079460000',
		`the routing saved is ${JSON.stringify(routing)}`);
	await ctx.shot(page, '26-number-routing');
	await ctx.checkPage(page, 'routing saved');

	// the tabs from the keyboard: ArrowRight moves to business hours
	await page.focus('#tab-routing');
	await page.keyboard.press('ArrowRight');
	const focused = await page.evaluate(() => document.activeElement.id);
	assert(focused === 'tab-hours', `ArrowRight on the routing tab focused ${focused}`);
	assert((await page.$eval('#tab-hours', (e) => e.getAttribute('aria-selected'))) === 'true', 'ArrowRight did not select business hours');
	assert(await page.$eval('#panel-routing', (e) => e.hidden), 'the routing panel is still shown');
	await page.waitForSelector(P('hours', '#save-hours'), { visible: true });

	// business hours: Monday to Friday 09:00-17:00 in New York, Friday late
	// too, a holiday the day after tomorrow; 25:00 refused first
	await fill(page, P('hours', 'input[name="time_zone"]'), 'America/New_York');
	for (const d of ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday']) await page.click(`button[aria-label="Add hours on ${d}"]`);
	await page.click('button[aria-label="Add hours on Friday"]');
	await fill(page, P('hours', 'input[name="fri-1-open"]'), '22:00');
	await fill(page, P('hours', 'input[name="fri-1-close"]'), '02:00');
	const day = new Date(Date.now() + 2 * 86400000).toISOString().slice(0, 10);
	await fill(page, P('hours', 'textarea[name="overrides"]'), JSON.stringify([{ name: 'Team day', date: day, holiday: true }]));
	await fill(page, P('hours', 'input[name="mon-0-close"]'), '25:00');
	await page.click(P('hours', '#save-hours'));
	await errorShown(page, 'hours', 'weekly.mon[0].close: "25:00" is not a time of day', 'weekly.mon[0].close');
	await ctx.shot(page, '27-number-hours-refused');
	await ctx.checkPage(page, 'business hours refused');
	await fill(page, P('hours', 'input[name="mon-0-close"]'), '17:00');
	await watchProgress(page, 'Saving the business hours');
	await page.click(P('hours', '#save-hours'));
	await progressDone(page, 'Saving the business hours');
	await page.waitForFunction(() => /^Version \d+, in America\/New_York/.test(document.querySelector('#panel-hours .hours-top p').textContent) && !document.querySelector('#panel-hours h3').textContent.includes('not saved'));
	// the week view: 5 x 8 whole open hours plus Friday night (22-24, 00-02)
	const open = await page.$$eval('#week-grid .cell.open', (c) => c.length);
	assert(open === 44, `the week view marks ${open} open hours, want 44`);
	const table = await page.$$eval('#panel-hours .week-table tbody tr', (trs) => trs.map((tr) => tr.innerText.replace(/\s+/g, ' ')));
	assert(table[0] === 'Monday 09:00–17:00' && table[4].includes('22:00–02:00 (next day)') && table[6] === 'Sunday closed', `the weekly table reads ${table}`);
	// the next transitions
	await page.waitForFunction(() => document.querySelectorAll('.transitions tbody tr').length > 0);
	const trans = await page.$$eval('.transitions tbody tr', (trs) => trs.map((tr) => tr.innerText.replace(/\s+/g, ' ')));
	assert(trans.some((t) => t.includes('holiday') && t.includes('override:0')), `no holiday among the next transitions: ${trans.join(' | ')}`);
	assert(trans.some((t) => t.includes('open') && t.includes('weekly:')), `no opening among the next transitions: ${trans.join(' | ')}`);
	const preview = await ctx.api(ctx.ownerKey, 'GET', `/v1/numbers/${id}/business-hours/preview?days=7`);
	// (a moment later: one transition may have left the 7 days and another come in)
	assert(Math.abs(preview.transitions.length - trans.length) <= 1, `the page lists ${trans.length} transitions, the API ${preview.transitions.length}`);
	const hours = await ctx.api(ctx.ownerKey, 'GET', `/v1/numbers/${id}/business-hours`);
	assert(hours.time_zone === 'America/New_York' && hours.weekly.mon[0].close === '17:00' && hours.weekly.fri.length === 2 && hours.overrides[0].date === day,
		`the business hours saved are ${JSON.stringify(hours)}`);
	await ctx.checkPage(page, 'business hours saved');
	await ctx.shot(page, '27-number-hours');

	// voicemail: a 2-digit PIN refused, then saved; the PIN never shown
	await page.click('#tab-voicemail');
	await page.waitForSelector(P('voicemail', '#save-voicemail'), { visible: true });
	await page.click(P('voicemail', 'input[name="enabled"]'));
	await fill(page, P('voicemail', 'textarea[name="greeting"]'), 'You reached Acme. Leave a message.');
	await fill(page, P('voicemail', 'input[name="emails"]'), 'ops@example.com, desk@example.com');
	await page.click(P('voicemail', 'input[name="transcription"]'));
	await fill(page, P('voicemail', 'input[name="pin"]'), '12');
	await page.click(P('voicemail', '#save-voicemail'));
	await errorShown(page, 'voicemail', 'pin: must be 4 to 10 digits', 'pin');
	await ctx.checkPage(page, 'voicemail refused');
	await fill(page, P('voicemail', 'input[name="pin"]'), '482913');
	await watchProgress(page, 'Saving the voicemail');
	await page.click(P('voicemail', '#save-voicemail'));
	await progressDone(page, 'Saving the voicemail');
	await page.waitForFunction(() => document.querySelector('#voicemail-props').innerText.includes('set (never shown)'));
	const vmText = await page.evaluate(() => document.body.innerText);
	assert(!vmText.includes('482913'), 'the PIN is shown on the page');
	assert((await page.$eval(P('voicemail', 'input[name="pin"]'), (e) => e.value)) === '', 'the PIN field kept the PIN');
	const vm = await ctx.api(ctx.ownerKey, 'GET', `/v1/numbers/${id}/voicemail`);
	assert(vm.enabled === true && vm.pin_set === true && vm.transcription === true && vm.greeting.text === 'You reached Acme. Leave a message.' &&
		vm.emails.join() === 'ops@example.com,desk@example.com' && !JSON.stringify(vm).includes('482913'), `the voicemail saved is ${JSON.stringify(vm)}`);
	await ctx.shot(page, '28-number-voicemail');
	await ctx.checkPage(page, 'voicemail saved');

	// the versions: every change saved, newest first, one of them opened
	await page.click('#tab-voicemail');
	await page.keyboard.press('End');
	assert((await page.evaluate(() => document.activeElement.id)) === 'tab-versions', 'End did not move to the last tab');
	await page.waitForSelector(P('versions', 'table tbody tr'), { visible: true });
	const versions = await page.$$eval(P('versions', 'tbody tr'), (trs) => trs.map((tr) => tr.cells[1].innerText));
	const api = await ctx.api(ctx.ownerKey, 'GET', `/v1/numbers/${id}/configuration/versions?limit=20`);
	assert(versions.length === api.data.length && versions.slice(0, 3).join() === 'voicemail,business hours,routing', `the versions shown: ${versions}`);
	await page.click(P('versions', 'details summary'));
	await ctx.waitText(page, '"pin_set": true');
	await ctx.shot(page, '29-number-versions');
	await ctx.checkPage(page, 'versions');

	// another number: deactivated, then released (after a confirmation)
	const other = await buyOne(ctx, '646');
	await ctx.go(page, `#/numbers/${other.id}`);
	await page.waitForSelector('dl.props .badge-active');
	await watchProgress(page, 'Deactivation');
	await page.click('.number-actions button.secondary');
	await progressDone(page, 'Deactivation');
	await page.waitForSelector('dl.props .badge-suspended');
	await ctx.waitText(page, 'is suspended: it stays yours');
	await ctx.waitText(page, 'Activate the number to change its configuration');
	assert((await text(page, '#activate-number')) === 'Activate again', 'a suspended number is not offered activation again');
	assert(!(await page.$('#save-routing')), 'a suspended number offers to save its routing');
	await ctx.shot(page, '29-number-suspended');
	await ctx.checkPage(page, 'suspended number');
	let asked = null;
	page.once('dialog', (d) => {
		asked = d.message();
		d.accept();
	});
	await page.click('.number-actions button.danger');
	await page.waitForFunction(() => location.hash === '#/numbers');
	assert(asked && asked.includes(`Release ${other.phone}?`), `the release was not confirmed first: ${asked}`);
	const gone = await fetch(`${ctx.base}/v1/numbers/${other.id}`, { headers: { Authorization: `Bearer ${ctx.ownerKey}` } });
	assert(gone.status === 404, `the released number answers ${gone.status}`);
	await ctx.checkPage(page, 'after the release');
	await page.close();
}
