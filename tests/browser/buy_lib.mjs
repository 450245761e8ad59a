// Helpers of the buy, number-configuration and viewer browser tests
// (20_buy, 25_number_config, 50_viewer).
import { assert } from './lib.mjs';

// Replaces the value of a (Preact-controlled) input or textarea as a user
// would: select all, then type.
export async function fill(page, sel, text) {
	await page.waitForSelector(sel, { visible: true });
	await page.focus(sel);
	await page.keyboard.down('Control');
	await page.keyboard.press('a');
	await page.keyboard.up('Control');
	await page.keyboard.press('Backspace');
	if (text) await page.keyboard.type(text);
}

// Records every step a <Progress> labelled label marks done, as the page
// shows them (a MutationObserver), so a test sees the progress live.
export async function watchProgress(page, label) {
	await page.evaluate((l) => {
		window.__steps = window.__steps || {};
		const seen = (window.__steps[l] = []);
		const look = () => {
			for (const p of document.querySelectorAll('.progress')) {
				if (!p.querySelector('.progress-label').textContent.startsWith(l)) continue;
				const done = [...p.querySelectorAll('.step.done, .step.failed')].map((s) => s.textContent);
				const last = done[done.length - 1];
				if (last && seen[seen.length - 1] !== last) seen.push(last);
			}
		};
		new MutationObserver(look).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
	}, label);
}

// Waits until the progress labelled label is completed; answers the steps
// seen on the way (accepted, running, completed).
export async function progressDone(page, label, timeout = 30000) {
	await page.waitForFunction(
		(l) => [...document.querySelectorAll('.progress')].some((p) => p.querySelector('.progress-label').textContent.startsWith(l) && [...p.querySelectorAll('.step')].some((s) => /completed|failed/.test(s.textContent) && /done|failed/.test(s.className))),
		{ timeout },
		label,
	);
	const steps = await page.evaluate((l) => (window.__steps && window.__steps[l]) || [], label);
	const failed = await page.evaluate((l) => [...document.querySelectorAll('.progress')].filter((p) => p.querySelector('.progress-label').textContent.startsWith(l)).map((p) => p.textContent).join(' | '), label);
	assert(!/failed/.test(failed), `${label}: the operation failed: ${failed}`);
	return steps;
}

// The text of the element sel (trimmed), or null.
export async function text(page, sel) {
	const el = await page.$(sel);
	return el ? (await el.evaluate((e) => e.textContent)).trim() : null;
}

// Buys one number through the API (ctx.buyNumbers: search, reserve,
// order), activated with forwarding unless forwardTo is null; answers
// {id, phone}.
export async function buyOne(ctx, areaCode, forwardTo = '+442079460000') {
	const [num] = await ctx.buyNumbers(ctx.ownerKey, { n: 1, areaCode, forwardTo: forwardTo || undefined });
	return { id: num.id, phone: num.phone_number };
}

// The active number 20_buy left in ctx.state.number (bought through the API
// when 20_buy did not run).
export async function ensureNumber(ctx) {
	if (!ctx.state.number) ctx.state.number = await buyOne(ctx, '212');
	return ctx.state.number;
}
