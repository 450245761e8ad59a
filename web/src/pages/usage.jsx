// Usage (GET /v1/usage, docs/API.md "Usage", docs/METERING.md): a UTC date
// range (default: the first of this month through today) and an optional
// event type; the same range summed by day and by number, each as a uPlot
// chart and as a table with the same figures (the table is what a screen
// reader reads). The figures refresh by themselves while the page is open
// (and on the Refresh button), since today's usage can still grow. A bad
// range is sent as it is and the API's error shown.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { get, money, qs } from '../api.js';
import { ErrorBox, Field, Loading, Page, useLoad } from '../ui.jsx';
import './usage.css';

const EVENT_TYPES = [
	['', 'all calls and messages'],
	['inbound_call', 'inbound calls'],
	['outbound_call', 'outbound calls'],
	['sms_received', 'SMS received'],
	['sms_sent', 'SMS sent'],
];
const POLL_MS = 10000;

const pad = (n) => String(n).padStart(2, '0');
const ymd = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;

// The API's default range: the first UTC day of this month through today.
export function thisMonth(now = new Date()) {
	return { start_date: `${now.getUTCFullYear()}-${pad(now.getUTCMonth() + 1)}-01`, end_date: ymd(now) };
}

// Seconds as minutes, to the hundredth (75 s: "1.25").
export function minutes(s) {
	const m = Number(s || 0) / 60;
	return Number.isInteger(m) ? String(m) : m.toFixed(2);
}

function loadUsage(q) {
	const base = { start_date: q.start_date, end_date: q.end_date, event_type: q.event_type };
	const by = (group_by) => get('/v1/usage', { ...base, group_by });
	return Promise.all([by('day'), by('number'), by('event_type')]).then(([byDay, byNumber, byKind]) => ({ byDay, byNumber, byKind, at: new Date() }));
}

// The range of the address (#/usage?start_date=...&end_date=...), else this
// month: a range can be bookmarked and survives a reload.
function initialQuery() {
	const h = Object.fromEntries(new URLSearchParams(location.hash.split('?')[1] || ''));
	const q = { ...thisMonth(), event_type: '' };
	for (const k of ['start_date', 'end_date', 'event_type']) if (h[k] !== undefined) q[k] = h[k];
	return q;
}

export function UsagePage({ session }) {
	const [form, setForm] = useState(initialQuery);
	const [query, setQuery] = useState(form);
	const [auto, setAuto] = useState(true);
	const state = useLoad(() => loadUsage(query), [query]);
	const currency = (state.data && state.data.byDay.currency) || session.account.currency;

	// Poll while the page is open and the last answer was not an error
	// (a bad range is not asked again and again).
	useEffect(() => {
		if (!auto || state.error) return undefined;
		const t = setInterval(() => state.reload(), POLL_MS);
		return () => clearInterval(t);
	}, [auto, state.reload, state.error]);

	const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
	const submit = (e) => {
		e.preventDefault();
		setQuery({ ...form });
		history.replaceState(null, '', `#/usage${qs(form)}`);
	};
	return (
		<Page
			title="Usage"
			actions={
				<button type="button" class="secondary" id="usage-refresh" onClick={() => state.reload()} disabled={state.loading} aria-busy={state.loading}>
					Refresh
				</button>
			}
		>
			<form class="filters usage-range" onSubmit={submit} aria-label="Usage range">
				<Field label="From (UTC day)">
					{(id) => <input id={id} name="start_date" type="date" value={form.start_date} onInput={set('start_date')} required />}
				</Field>
				<Field label="To (UTC day, included)">
					{(id) => <input id={id} name="end_date" type="date" value={form.end_date} onInput={set('end_date')} required />}
				</Field>
				<Field label="Calls and messages">
					{(id) => (
						<select id={id} name="event_type" value={form.event_type} onChange={set('event_type')}>
							{EVENT_TYPES.map(([v, l]) => <option value={v}>{l}</option>)}
						</select>
					)}
				</Field>
				<div class="field">
					<button type="submit">Show usage</button>
				</div>
				<div class="field field-inline usage-auto">
					<input id="usage-auto" type="checkbox" checked={auto} onChange={(e) => setAuto(e.currentTarget.checked)} />
					<label for="usage-auto">Refresh every {POLL_MS / 1000} s</label>
				</div>
			</form>
			{state.error ? (
				<ErrorBox error={state.error} title="Could not load the usage" />
			) : !state.data ? (
				<Loading what="the usage" />
			) : (
				<UsageReport data={state.data} currency={currency} loading={state.loading} />
			)}
		</Page>
	);
}

function UsageReport({ data, currency, loading }) {
	const { byDay, byNumber, byKind } = data;
	const t = byDay.totals;
	return (
		<div class="usage-report" aria-busy={loading}>
			<p class="usage-summary" role="status" id="usage-summary">
				{byDay.start_date} to {byDay.end_date} (UTC): <strong>{t.records}</strong> calls and messages,{' '}
				<strong>{minutes(t.billable_s)}</strong> minutes billed, <strong>{money(t.cost_micros, currency)}</strong>.
			</p>
			<p class="usage-updated">
				Updated {data.at.toLocaleTimeString('en-GB', { timeZone: 'UTC' })} UTC. Today's figures can still grow as carriers report calls.
			</p>

			<h2 id="usage-by-day">By day</h2>
			{byDay.items.length === 0 ? (
				<p class="empty">No usage in this range yet.</p>
			) : (
				<>
					<DayChart data={byDay} currency={currency} />
					<UsageTable
						id="usage-day-table"
						caption={`Usage by UTC day, ${byDay.start_date} to ${byDay.end_date} (days without usage left out)`}
						keyLabel="Day"
						keyOf={(i) => i.day}
						data={byDay}
						currency={currency}
					/>
				</>
			)}

			<h2 id="usage-by-number">By number</h2>
			{byNumber.items.length === 0 ? (
				<p class="empty">No number has usage in this range yet.</p>
			) : (
				<>
					<NumberChart data={byNumber} currency={currency} />
					<UsageTable
						id="usage-number-table"
						caption={`Usage by number, ${byNumber.start_date} to ${byNumber.end_date}`}
						keyLabel="Number"
						keyOf={(i) => i.number}
						data={byNumber}
						currency={currency}
					/>
				</>
			)}

			<h2 id="usage-by-kind">By kind</h2>
			{byKind.items.length === 0 ? (
				<p class="empty">No calls or messages in this range yet.</p>
			) : (
				<UsageTable
					id="usage-kind-table"
					caption={`Usage by kind of call or message, ${byKind.start_date} to ${byKind.end_date}`}
					keyLabel="Kind"
					keyOf={(i) => i.event_type}
					labelOf={(i) => KIND_LABELS[i.event_type] || i.event_type}
					data={byKind}
					currency={currency}
				/>
			)}
		</div>
	);
}

const KIND_LABELS = Object.fromEntries(EVENT_TYPES.filter(([v]) => v).map(([v, l]) => [v, l[0].toUpperCase() + l.slice(1)]));

function UsageTable({ id, caption, keyLabel, keyOf, labelOf, data, currency }) {
	const cells = (r) => [
		<td class="num">{r.records}</td>,
		<td class="num">{minutes(r.duration_s)}</td>,
		<td class="num">{minutes(r.billable_s)}</td>,
		<td class="num">{r.units}</td>,
		<td class="num">{money(r.cost_micros, currency)}</td>,
	];
	return (
		<table id={id} class="usage-table">
			<caption>{caption}</caption>
			<thead>
				<tr>
					<th scope="col">{keyLabel}</th>
					<th scope="col" class="num">Calls and messages</th>
					<th scope="col" class="num">Call minutes</th>
					<th scope="col" class="num">Minutes billed</th>
					<th scope="col" class="num">Message segments</th>
					<th scope="col" class="num">Cost</th>
				</tr>
			</thead>
			<tbody>
				{data.items.map((r) => (
					<tr key={keyOf(r)} data-key={keyOf(r)}>
						<th scope="row">{labelOf ? labelOf(r) : keyOf(r)}</th>
						{cells(r)}
					</tr>
				))}
			</tbody>
			<tfoot>
				<tr data-key="total">
					<th scope="row">Total</th>
					{cells(data.totals)}
				</tr>
			</tfoot>
		</table>
	);
}

// A uPlot chart in a div, made again when its options or data change and
// resized with the window. uPlot styles its elements through the CSSOM,
// which the CSP allows (no style="" in markup).
function Chart({ label, describedBy, make }) {
	const el = useRef(null);
	useEffect(() => {
		const box = el.current;
		const width = () => Math.max(320, box.clientWidth || 640);
		const { opts, data } = make();
		const plot = new uPlot({ ...opts, width: width(), height: 260 }, data, box);
		const onResize = () => plot.setSize({ width: width(), height: 260 });
		window.addEventListener('resize', onResize);
		return () => {
			window.removeEventListener('resize', onResize);
			plot.destroy();
		};
	}, [make]);
	return <div class="chart usage-chart" role="img" aria-label={label} aria-describedby={describedBy} ref={el} />;
}

const COLORS = { minutes: '#0969da', cost: '#bf3989', records: '#1a7f37' };
const moneyAxis = (currency) => (u, vals) => vals.map((v) => money(Math.round(v * 1e6), currency));
const bars = (opts) => uPlot.paths.bars(opts);

// The x axis of a chart of categories (days, numbers): one slot each,
// labelled, at most about 16 labels however many slots.
function categoryAxis(labels) {
	const n = labels.length;
	const every = Math.max(1, Math.ceil(n / 16));
	return {
		scale: { time: false, auto: false, range: () => [-0.5, n - 0.5] },
		axis: {
			splits: () => labels.map((_, k) => k).filter((k) => k % every === 0),
			values: (u, vals) => vals.map((v) => labels[v] || ''),
			grid: { show: false },
		},
	};
}

const monthDay = (d) => new Date(`${d}T00:00:00Z`).toLocaleDateString('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'short' });

// By day: every day of the range (days without usage are 0), minutes
// billed as bars, calls and messages and the cost as lines.
function DayChart({ data, currency }) {
	const key = JSON.stringify([data.items, data.start_date, data.end_date, currency]);
	const memo = useRef({ key: null, fn: null });
	if (memo.current.key !== key) {
		memo.current = {
			key,
			fn: () => {
				const byDay = new Map(data.items.map((i) => [i.day, i]));
				const days = [];
				const end = Date.parse(`${data.end_date}T00:00:00Z`);
				for (let t = Date.parse(`${data.start_date}T00:00:00Z`); t <= end; t += 86400000) days.push(ymd(new Date(t)));
				const at = (f) => days.map((d) => (byDay.has(d) ? f(byDay.get(d)) : 0));
				const x = categoryAxis(days.map(monthDay));
				return {
					data: [days.map((_, k) => k), at((i) => i.billable_s / 60), at((i) => i.records), at((i) => i.cost_micros / 1e6)],
					opts: {
						legend: { live: false },
						cursor: { show: false },
						scales: { x: x.scale, n: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] }, m: { range: (u, lo, hi) => [0, Math.max(0.01, hi * 1.1)] } },
						axes: [
							x.axis,
							{ scale: 'n', label: 'minutes, calls and messages' },
							{ scale: 'm', side: 1, label: `cost (${currency})`, values: moneyAxis(currency), size: 80, grid: { show: false } },
						],
						series: [
							{ label: 'Day (UTC)' },
							{ label: 'Minutes billed', scale: 'n', stroke: COLORS.minutes, fill: 'rgba(9,105,218,0.35)', paths: bars({ size: [0.7, 48] }), points: { show: false } },
							{ label: 'Calls and messages', scale: 'n', stroke: COLORS.records, width: 2 },
							{ label: 'Cost', scale: 'm', stroke: COLORS.cost, width: 2 },
						],
					},
				};
			},
		};
	}
	const t = data.totals;
	return (
		<Chart
			make={memo.current.fn}
			describedBy="usage-day-table"
			label={`Chart of usage by day: ${t.records} calls and messages, ${minutes(t.billable_s)} minutes billed, ${money(t.cost_micros, currency)} in all; the table below gives each day.`}
		/>
	);
}

// By number: one group of bars per number, minutes billed (left axis) and
// cost (right axis).
function NumberChart({ data, currency }) {
	const key = JSON.stringify([data.items, currency]);
	const memo = useRef({ key: null, fn: null });
	if (memo.current.key !== key) {
		memo.current = {
			key,
			fn: () => {
				const names = data.items.map((i) => i.number);
				const x = categoryAxis(names);
				return {
					data: [names.map((_, k) => k), data.items.map((i) => i.billable_s / 60), data.items.map((i) => i.cost_micros / 1e6)],
					opts: {
						legend: { live: false },
						cursor: { show: false },
						scales: {
							x: x.scale,
							n: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] },
							m: { range: (u, lo, hi) => [0, Math.max(0.01, hi * 1.1)] },
						},
						axes: [
							x.axis,
							{ scale: 'n', label: 'minutes billed' },
							{ scale: 'm', side: 1, label: `cost (${currency})`, values: moneyAxis(currency), size: 80, grid: { show: false } },
						],
						series: [
							{ label: 'Number' },
							{ label: 'Minutes billed', scale: 'n', stroke: COLORS.minutes, fill: 'rgba(9,105,218,0.6)', paths: bars({ size: [0.3, 60], align: -1 }), points: { show: false } },
							{ label: 'Cost', scale: 'm', stroke: COLORS.cost, fill: 'rgba(191,57,137,0.6)', paths: bars({ size: [0.3, 60], align: 1 }), points: { show: false } },
						],
					},
				};
			},
		};
	}
	const t = data.totals;
	return (
		<Chart
			make={memo.current.fn}
			describedBy="usage-number-table"
			label={`Chart of usage by number: ${data.items.length} numbers, ${money(t.cost_micros, currency)} in all; the table below gives each number.`}
		/>
	);
}
