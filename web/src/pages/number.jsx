// One number (#/numbers/:id): its properties and status, the actions its
// state and the user's role allow (activate with a forwarding destination,
// deactivate, release), each followed live as an operation; and its
// configuration in keyboard-usable tabs (docs/API.md "Configuration",
// docs/ROUTING.md): routing, business hours (a week view with a table
// giving the same hours, and the next transitions from the preview),
// voicemail (the PIN is write-only: the API says only whether one is set)
// and the versions every change made. A configuration PUT is a command:
// its progress, then the section as stored; a refused input (400) shows
// the API's message and marks the field it names.
import { useRef, useState } from 'preact/hooks';
import { can, del, follow, get, money, post, put, when } from '../api.js';
import { hashQuery } from '../routes.js';
import { ActionButton, ErrorBox, Field, Loaded, Page, Progress, Status, Table, useCommand, useLoad } from '../ui.jsx';
import './number.css';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAY_NAMES = { mon: 'Monday', tue: 'Tuesday', wed: 'Wednesday', thu: 'Thursday', fri: 'Friday', sat: 'Saturday', sun: 'Sunday' };
const WEEKDAYS_JS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// aria-invalid for the control the API's error names (details.field).
function bad(error, ...fields) {
	const f = error && error.details && error.details.field;
	return f && fields.some((x) => f === x || f.startsWith(`${x}.`) || f.startsWith(`${x}[`)) ? 'true' : undefined;
}

function Check({ label, checked, onChange, name, disabled }) {
	const id = useRef(`c${Math.random().toString(36).slice(2, 9)}`).current;
	return (
		<div class="field field-inline">
			<input type="checkbox" id={id} name={name} checked={checked} disabled={disabled} onChange={(e) => onChange(e.currentTarget.checked)} />
			<label for={id}>{label}</label>
		</div>
	);
}

const orNone = (v) => (v === null || v === undefined || v === '' ? '—' : v);

/* ---------- the number and its actions ---------- */

function Properties({ num }) {
	const cf = num.call_forwarding;
	return (
		<dl class="props">
			<dt>Number</dt>
			<dd>{num.phone_number}</dd>
			<dt>Status</dt>
			<dd><Status value={num.status} /></dd>
			<dt>Forwards to</dt>
			<dd id="forwards-to">
				{cf && cf.enabled && cf.primary_destination
					? num.status === 'active'
						? cf.primary_destination
						: `nowhere while ${num.status} (${cf.primary_destination} once active again)`
					: 'nowhere (calls are not routed)'}
			</dd>
			<dt>Location</dt>
			<dd>{[num.city, num.region, num.country].filter(Boolean).join(', ') || '—'}{num.area_code ? ` (area code ${num.area_code})` : ''}</dd>
			<dt>Type</dt>
			<dd>{(num.type || '—').replace('_', ' ')}</dd>
			<dt>Features</dt>
			<dd>{(num.features || []).join(', ') || '—'}</dd>
			<dt>Price</dt>
			<dd>{num.price ? `${money(num.price.setup_micros, num.price.currency)} setup, ${money(num.price.monthly_micros, num.price.currency)} a month` : '—'}</dd>
			<dt>Bought</dt>
			<dd>{when(num.purchased_at)}</dd>
			<dt>Activated</dt>
			<dd>{when(num.activated_at)}</dd>
			<dt>Id</dt>
			<dd><code>{num.id}</code></dd>
		</dl>
	);
}

function Actions({ num, reload }) {
	const activate = useCommand();
	const [op, setOp] = useState(null);
	const [opLabel, setOpLabel] = useState('');
	const cf = num.call_forwarding;
	const [to, setTo] = useState((cf && cf.primary_destination) || '');
	const [done, setDone] = useState(null);
	const canActivate = ['purchased', 'suspended', 'active'].includes(num.status);
	const canRelease = ['purchased', 'suspended', 'active'].includes(num.status);
	if (!canActivate && !canRelease) return <p class="empty">This number is {num.status}: there is nothing to do with it now.</p>;

	const submit = async (e) => {
		e.preventDefault();
		setDone(null);
		setOp(null);
		const fin = await activate.run(() => post(`/v1/numbers/${num.id}/activate`, { forward_to: to.trim() }));
		if (fin) {
			setDone(`Calls to ${num.phone_number} are forwarded now (to the destination under "Forwards to").`);
			reload();
		}
	};
	const simple = (label, start, after) => async () => {
		setDone(null);
		setOp(null);
		setOpLabel(label);
		const first = await start();
		setOp(first);
		const fin = await follow(first, setOp);
		if (fin.status === 'completed') after(fin);
	};
	return (
		<section class="number-actions" aria-labelledby="actions-h">
			<h2 id="actions-h">Actions</h2>
			{canActivate && (
				<form class="row activate" onSubmit={submit} noValidate>
					<Field label={num.status === 'active' ? 'Forward calls to (change)' : 'Forward calls to'} hint="a phone number in international form, e.g. +442079460000">
						{(id, hint) => (
							<input id={id} name="forward_to" type="tel" autoComplete="off" aria-describedby={hint} aria-invalid={bad(activate.error, 'forward_to')} value={to} onInput={(e) => setTo(e.currentTarget.value)} />
						)}
					</Field>
					<div class="field">
						<button type="submit" id="activate-number" disabled={activate.busy}>
							{num.status === 'active' ? 'Change forwarding' : num.status === 'suspended' ? 'Activate again' : 'Activate'}
						</button>
					</div>
				</form>
			)}
			<ErrorBox error={activate.error} title="Activation refused" />
			<Progress op={activate.op} label="Activation" />
			<div class="row">
				{num.status === 'active' && (
					<ActionButton class="secondary" onClick={simple('Deactivation', () => post(`/v1/numbers/${num.id}/deactivate`), () => { setDone(`${num.phone_number} is suspended: it stays yours and routes no calls.`); reload(); })}>
						Deactivate
					</ActionButton>
				)}
				{canRelease && (
					<ActionButton
						class="danger"
						confirm={`Release ${num.phone_number}? It goes back to the carrier and is no longer yours.`}
						onClick={simple('Release', () => del(`/v1/numbers/${num.id}`), () => { location.hash = '#/numbers'; })}
					>
						Release
					</ActionButton>
				)}
			</div>
			<Progress op={op} label={opLabel} />
			{done && <p class="notice" role="status">{done}</p>}
		</section>
	);
}

/* ---------- tabs ---------- */

function Tabs({ tabs, current, onSelect, label }) {
	const refs = useRef({});
	const key = (e, i) => {
		const n = tabs.length;
		let j = null;
		if (e.key === 'ArrowRight') j = (i + 1) % n;
		else if (e.key === 'ArrowLeft') j = (i + n - 1) % n;
		else if (e.key === 'Home') j = 0;
		else if (e.key === 'End') j = n - 1;
		if (j === null) return;
		e.preventDefault();
		onSelect(tabs[j].id);
		refs.current[tabs[j].id].focus();
	};
	return (
		<div class="tabs" role="tablist" aria-label={label}>
			{tabs.map((t, i) => (
				<button
					type="button"
					role="tab"
					id={`tab-${t.id}`}
					aria-selected={t.id === current ? 'true' : 'false'}
					aria-controls={`panel-${t.id}`}
					tabIndex={t.id === current ? 0 : -1}
					ref={(el) => { refs.current[t.id] = el; }}
					onClick={() => onSelect(t.id)}
					onKeyDown={(e) => key(e, i)}
				>
					{t.label}
				</button>
			))}
		</div>
	);
}

function Saved({ cmd, what }) {
	return (
		<>
			<ErrorBox error={cmd.error} title={`${what} not saved`} />
			<Progress op={cmd.op} label={`Saving the ${what.toLowerCase()}`} />
			{cmd.op && cmd.op.status === 'completed' && cmd.op.result && (
				<p class="notice" role="status">Saved as version {cmd.op.result.version}.</p>
			)}
		</>
	);
}

/* ---------- routing ---------- */

const DESTS = [
	['primary_destination', 'Primary destination', 'where calls go (a number or sip:user@host[:port])'],
	['failover_destination', 'Failover destination', 'if the primary does not answer in time'],
	['business_hours_destination', 'Business-hours destination', 'while open (else the primary)'],
	['after_hours_destination', 'After-hours destination', 'while closed or on a holiday (else voicemail if enabled)'],
];

function RoutingForm({ data, numberId, onSaved, cmd }) {
	const [f, setF] = useState(() => {
		const o = { timeout_s: String(data.timeout_s ?? 30), enabled: data.configured ? data.enabled : true };
		for (const [k] of DESTS) o[k] = data[k] || '';
		return o;
	});
	const submit = async (e) => {
		e.preventDefault();
		const body = { enabled: f.enabled };
		for (const [k] of DESTS) body[k] = f[k].trim() || null;
		const t = f.timeout_s.trim();
		if (t !== '') body.timeout_s = /^-?\d+$/.test(t) ? Number(t) : t;
		if (await cmd.run(() => put(`/v1/numbers/${numberId}/routing`, body))) onSaved();
	};
	return (
		<form class="config-form" onSubmit={submit} noValidate aria-label="Routing">
			<Check label="Route calls (enabled)" name="enabled" checked={f.enabled} onChange={(v) => setF({ ...f, enabled: v })} />
			{DESTS.map(([k, label, hint]) => (
				<Field label={label} hint={hint}>
					{(id, h) => <input id={id} name={k} class="wide" aria-describedby={h} aria-invalid={bad(cmd.error, k)} value={f[k]} onInput={(e) => setF({ ...f, [k]: e.currentTarget.value })} />}
				</Field>
			))}
			<Field label="Ring timeout (seconds)" hint="5 to 120: how long a destination rings before the failover">
				{(id, h) => <input id={id} name="timeout_s" type="number" min="5" max="120" size="5" aria-describedby={h} aria-invalid={bad(cmd.error, 'timeout_s')} value={f.timeout_s} onInput={(e) => setF({ ...f, timeout_s: e.currentTarget.value })} />}
			</Field>
			<button type="submit" id="save-routing" disabled={cmd.busy}>Save routing</button>
		</form>
	);
}

function RoutingPanel({ num, editable, rev, onSaved }) {
	const state = useLoad(() => get(`/v1/numbers/${num.id}/routing`), [num.id, rev]);
	const cmd = useCommand();
	return (
		<Loaded state={state} what="the routing">
			{(r) => (
				<>
					<dl class="props">
						<dt>Routing</dt>
						<dd>{r.configured ? (r.enabled ? 'enabled' : 'disabled: calls are rejected') : 'not configured: calls are rejected'}</dd>
						{DESTS.map(([k, label]) => (
							<>
								<dt>{label}</dt>
								<dd>{orNone(r[k])}</dd>
							</>
						))}
						<dt>Ring timeout</dt>
						<dd>{r.timeout_s} s</dd>
						<dt>Carrier</dt>
						<dd>{r.carrier_status === 'pending_carrier' ? 'waiting for the carrier to confirm' : r.carrier_status || '—'}</dd>
						<dt>Configuration version</dt>
						<dd>{r.version}</dd>
					</dl>
					{editable && <RoutingForm key={r.version} cmd={cmd} data={r} numberId={num.id} onSaved={onSaved} />}
					{editable && <Saved cmd={cmd} what="Routing" />}
				</>
			)}
		</Loaded>
	);
}

/* ---------- business hours ---------- */

function mins(t) {
	const m = /^(\d\d):(\d\d)$/.exec(t || '');
	if (!m) return null;
	const v = Number(m[1]) * 60 + Number(m[2]);
	return Number(m[2]) < 60 && v <= 1440 ? v : null;
}

// Minutes open in each hour of each weekday (7 x 24); an interval whose
// close is at or before its open runs into the next day.
function coverage(weekly) {
	const cov = DAYS.map(() => new Array(24).fill(0));
	const add = (d, a, b) => {
		for (let h = Math.floor(a / 60); h < Math.ceil(b / 60) && h < 24; h++) {
			const o = Math.min(b, (h + 1) * 60) - Math.max(a, h * 60);
			if (o > 0) cov[d][h] += o;
		}
	};
	DAYS.forEach((day, i) => {
		for (const iv of (weekly && weekly[day]) || []) {
			const o = mins(iv.open);
			const c = mins(iv.close);
			if (o === null || c === null || o === c) continue;
			if (c > o) add(i, o, c);
			else {
				add(i, o, 1440);
				add((i + 1) % 7, 0, c);
			}
		}
	});
	return cov;
}

function hoursText(list) {
	if (!list || list.length === 0) return 'closed';
	return list.map((iv) => `${iv.open}–${iv.close}${mins(iv.close) !== null && mins(iv.close) <= mins(iv.open) ? ' (next day)' : ''}`).join(', ');
}

// The week as a grid (7 days x 24 hours, open hours marked), hidden from
// screen readers, which get the table under it with the same hours.
function WeekView({ weekly, zone }) {
	const cov = coverage(weekly);
	const hh = (h) => `${String(h).padStart(2, '0')}:00`;
	return (
		<div class="week-view">
			<div class="week" aria-hidden="true" id="week-grid">
				<div class="head" />
				{DAYS.map((d) => <div class="head">{DAY_NAMES[d].slice(0, 3)}</div>)}
				{cov[0].map((_, h) => (
					<>
						<div class="hour">{h % 3 === 0 ? hh(h) : ''}</div>
						{DAYS.map((d, i) => (
							<div class={cov[i][h] >= 60 ? 'cell open' : cov[i][h] > 0 ? 'cell open partial' : 'cell'} title={`${DAY_NAMES[d]} ${hh(h)}–${hh(h + 1)}: ${cov[i][h] >= 60 ? 'open' : cov[i][h] > 0 ? `open ${cov[i][h]} min` : 'closed'}`} />
						))}
					</>
				))}
			</div>
			<p class="legend" aria-hidden="true"><span class="swatch open" /> open <span class="swatch partial" /> open part of the hour <span class="swatch" /> closed</p>
			<table class="week-table">
				<caption>Weekly hours{zone ? ` (${zone})` : ''}</caption>
				<thead>
					<tr><th scope="col">Day</th><th scope="col">Open</th></tr>
				</thead>
				<tbody>
					{DAYS.map((d) => (
						<tr>
							<th scope="row">{DAY_NAMES[d]}</th>
							<td>{hoursText(weekly && weekly[d])}</td>
						</tr>
					))}
				</tbody>
			</table>
		</div>
	);
}

function describeOverride(o) {
	let days = '—';
	if (o.date) days = o.date;
	else if (o.from) days = `${o.from} to ${o.to}`;
	else if (o.recurring) {
		const r = o.recurring;
		if (r.weekday) days = `${r.n === -1 ? 'last' : ['', '1st', '2nd', '3rd', '4th', '5th'][r.n] || r.n} ${DAY_NAMES[r.weekday] || r.weekday} of ${MONTHS[r.month - 1] || r.month}, every year`;
		else days = `${r.day} ${MONTHS[r.month - 1] || r.month}, every year`;
	}
	return days;
}

function Overrides({ list }) {
	return (
		<Table
			caption="Overrides (the first that matches a day wins)"
			empty="No overrides: the weekly hours apply every week."
			rows={list || []}
			columns={[
				{ label: 'Name', render: (o) => o.name || '—' },
				{ label: 'Days', render: describeOverride },
				{ label: 'Hours', render: (o) => (o.hours && o.hours.length ? hoursText(o.hours) : 'closed all day') },
				{ label: 'Holiday', render: (o) => (o.holiday ? 'yes' : 'no') },
			]}
		/>
	);
}

// "2026-12-07T17:00:00-05:00" -> "Mon 7 Dec 17:00 (UTC-05:00)"
function localTime(s) {
	const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.exec(s || '');
	if (!m) return s || '—';
	const wd = WEEKDAYS_JS[new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))).getUTCDay()];
	return `${DAY_NAMES[wd].slice(0, 3)} ${Number(m[3])} ${MONTHS[Number(m[2]) - 1]} ${m[4]} (UTC${m[5] === 'Z' ? '' : m[5]})`;
}

function Transitions({ numberId, rev }) {
	const state = useLoad(() => get(`/v1/numbers/${numberId}/business-hours/preview`, { days: 7 }), [numberId, rev]);
	return (
		<section class="transitions" aria-labelledby="transitions-h">
			<h3 id="transitions-h">Next transitions (7 days)</h3>
			<Loaded state={state} what="the next transitions">
				{(p) => (
					<>
						<p id="hours-now">
							Now <Status value={p.state} /> ({p.rule}) in {p.time_zone}
							{p.configured ? '' : ': no business hours, so always open'}.
						</p>
						<Table
							caption={`When the number opens and closes, from ${when(p.from)}`}
							empty={p.configured ? 'No change in the next 7 days.' : 'No business hours: the number is always open.'}
							rows={p.transitions}
							rowKey={(t) => t.at}
							columns={[
								{ label: 'Local time', render: (t) => localTime(t.local) },
								{ label: 'UTC', render: (t) => when(t.at) },
								{ label: 'Becomes', render: (t) => <Status value={t.state} /> },
								{ label: 'Rule', render: (t) => <code>{t.rule}</code> },
							]}
						/>
					</>
				)}
			</Loaded>
		</section>
	);
}

function HoursForm({ data, numberId, zone, onSaved, onDraft, cmd }) {
	const [tz, setTz] = useState(data.time_zone || '');
	const [weekly, setWeekly] = useState(() => {
		const w = {};
		for (const d of DAYS) w[d] = ((data.weekly && data.weekly[d]) || []).map((iv) => ({ ...iv }));
		return w;
	});
	const [overrides, setOverrides] = useState(data.overrides && data.overrides.length ? JSON.stringify(data.overrides, null, 2) : '[]');
	const [parseError, setParseError] = useState(null);
	const change = (w) => {
		setWeekly(w);
		onDraft(w);
	};
	const setIv = (d, i, k, v) => change({ ...weekly, [d]: weekly[d].map((iv, j) => (j === i ? { ...iv, [k]: v } : iv)) });
	const submit = async (e) => {
		e.preventDefault();
		setParseError(null);
		let ov;
		try {
			ov = JSON.parse(overrides || '[]');
		} catch (err) {
			setParseError({ message: `overrides: not JSON (${err.message})`, code: 'invalid_json', details: { field: 'overrides' } });
			return;
		}
		const body = { weekly: {}, overrides: ov };
		if (tz.trim()) body.time_zone = tz.trim();
		for (const d of DAYS) if (weekly[d].length) body.weekly[d] = weekly[d].map((iv) => ({ open: iv.open.trim(), close: iv.close.trim() }));
		if (await cmd.run(() => put(`/v1/numbers/${numberId}/business-hours`, body))) onSaved();
	};
	const field = cmd.error && cmd.error.details && cmd.error.details.field;
	return (
		<form class="config-form hours-form" onSubmit={submit} noValidate aria-label="Business hours">
			<h3>Change the hours</h3>
			<Field label="Time zone" hint={`an IANA zone such as America/New_York; empty: the account's (${zone || 'UTC'})`}>
				{(id, h) => <input id={id} name="time_zone" aria-describedby={h} aria-invalid={bad(cmd.error, 'time_zone')} value={tz} onInput={(e) => setTz(e.currentTarget.value)} />}
			</Field>
			<p class="hint">Times are HH:MM (00:00 to 24:00). A close at or before the open runs past midnight into the next day.</p>
			<div class="days">
				{DAYS.map((d) => (
					<fieldset class="day">
						<legend>{DAY_NAMES[d]}</legend>
						{weekly[d].length === 0 && <span class="closed">closed</span>}
						{weekly[d].map((iv, i) => {
							const path = `weekly.${d}[${i}]`;
							const inv = field && (field === path || field.startsWith(`${path}.`)) ? 'true' : undefined;
							return (
								<div class="interval">
									<Field label={<><span class="sr-only">{DAY_NAMES[d]} </span>opens</>}>
										{(id) => <input id={id} name={`${d}-${i}-open`} size="5" placeholder="09:00" aria-invalid={inv} value={iv.open} onInput={(e) => setIv(d, i, 'open', e.currentTarget.value)} />}
									</Field>
									<Field label={<><span class="sr-only">{DAY_NAMES[d]} </span>closes</>}>
										{(id) => <input id={id} name={`${d}-${i}-close`} size="5" placeholder="17:00" aria-invalid={inv} value={iv.close} onInput={(e) => setIv(d, i, 'close', e.currentTarget.value)} />}
									</Field>
									<button type="button" class="secondary small" aria-label={`Remove ${DAY_NAMES[d]} ${iv.open || ''}–${iv.close || ''}`} onClick={() => change({ ...weekly, [d]: weekly[d].filter((_, j) => j !== i) })}>
										Remove
									</button>
								</div>
							);
						})}
						<button type="button" class="secondary small" aria-label={`Add hours on ${DAY_NAMES[d]}`} onClick={() => change({ ...weekly, [d]: [...weekly[d], { open: '09:00', close: '17:00' }] })}>
							Add hours
						</button>
					</fieldset>
				))}
			</div>
			<Field label="Overrides (JSON list)" hint={'holidays and special days, as in docs/ROUTING.md, e.g. [{"name":"Christmas","recurring":{"month":12,"day":25},"holiday":true}]'}>
				{(id, h) => <textarea id={id} name="overrides" rows="5" aria-describedby={h} aria-invalid={parseError || bad(cmd.error, 'overrides') ? 'true' : undefined} value={overrides} onInput={(e) => setOverrides(e.currentTarget.value)} />}
			</Field>
			<button type="submit" id="save-hours" disabled={cmd.busy}>Save business hours</button>
			<ErrorBox error={parseError} title="Business hours not saved" />
		</form>
	);
}

function HoursPanel({ num, editable, rev, onSaved, zone }) {
	const state = useLoad(() => get(`/v1/numbers/${num.id}/business-hours`), [num.id, rev]);
	const cmd = useCommand();
	const [edit, setEdit] = useState(null); // {version, weekly}: the editor's hours, not saved yet
	return (
		<Loaded state={state} what="the business hours">
			{(b) => {
				const draft = edit && edit.version === b.version ? edit.weekly : null;
				return (
					<div class="hours">
						<div class="hours-top">
							<div>
								<h3>Week{draft ? ' (as edited, not saved yet)' : ''}</h3>
								<p>
									{b.configured ? <>Version {b.version}, in <strong>{b.time_zone}</strong>.</> : 'No business hours: the number is always open.'}
								</p>
								<WeekView weekly={draft || b.weekly || {}} zone={b.time_zone} />
							</div>
							<Transitions numberId={num.id} rev={rev} />
						</div>
						{b.configured && <Overrides list={b.overrides} />}
						{editable && (
							<HoursForm
								key={b.version}
								data={b}
								numberId={num.id}
								zone={zone}
								onDraft={(w) => setEdit({ version: b.version, weekly: w })}
								cmd={cmd}
								onSaved={onSaved}
							/>
						)}
						{editable && <Saved cmd={cmd} what="Business hours" />}
					</div>
				);
			}}
		</Loaded>
	);
}

/* ---------- voicemail ---------- */

function VoicemailForm({ data, numberId, onSaved, cmd }) {
	const g = data.greeting || null;
	const [f, setF] = useState({
		enabled: !!data.enabled,
		greeting: g && g.text ? g.text : '',
		max_message_s: String(data.max_message_s ?? 120),
		transcription: !!data.transcription,
		emails: (data.emails || []).join(', '),
	});
	const [pin, setPin] = useState('');
	const [removePin, setRemovePin] = useState(false);
	const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
	const submit = async (e) => {
		e.preventDefault();
		const body = { enabled: f.enabled, transcription: f.transcription };
		if (f.greeting.trim()) body.greeting = { text: f.greeting.trim() };
		else body.greeting = g && g.audio_id ? { audio_id: g.audio_id } : null;
		const m = f.max_message_s.trim();
		if (m !== '') body.max_message_s = /^-?\d+$/.test(m) ? Number(m) : m;
		body.emails = f.emails.split(/[,\s]+/).filter(Boolean);
		if (removePin) body.pin = null;
		else if (pin !== '') body.pin = pin;
		if (await cmd.run(() => put(`/v1/numbers/${numberId}/voicemail`, body))) {
			setPin('');
			onSaved();
		}
	};
	return (
		<form class="config-form" onSubmit={submit} noValidate aria-label="Voicemail">
			<Check label="Voicemail enabled" name="enabled" checked={f.enabled} onChange={(v) => setF({ ...f, enabled: v })} />
			<Field label="Greeting" hint={g && g.audio_id ? `now an uploaded audio file (${g.audio_id}); a text replaces it` : 'read to callers before the tone'}>
				{(id, h) => <textarea id={id} name="greeting" rows="2" aria-describedby={h} aria-invalid={bad(cmd.error, 'greeting')} value={f.greeting} onInput={set('greeting')} />}
			</Field>
			<Field label="New PIN" hint={data.pin_set ? '4 to 10 digits; leave empty to keep the current PIN' : '4 to 10 digits; none is set'}>
				{(id, h) => <input id={id} name="pin" type="password" inputMode="numeric" autoComplete="new-password" size="12" aria-describedby={h} aria-invalid={bad(cmd.error, 'pin')} value={pin} disabled={removePin} onInput={(e) => setPin(e.currentTarget.value)} />}
			</Field>
			{data.pin_set && <Check label="Remove the PIN" name="remove_pin" checked={removePin} onChange={setRemovePin} />}
			<Field label="Longest message (seconds)" hint="10 to 600">
				{(id, h) => <input id={id} name="max_message_s" type="number" min="10" max="600" size="5" aria-describedby={h} aria-invalid={bad(cmd.error, 'max_message_s')} value={f.max_message_s} onInput={set('max_message_s')} />}
			</Field>
			<Check label="Transcribe messages" name="transcription" checked={f.transcription} onChange={(v) => setF({ ...f, transcription: v })} />
			<Field label="Send new messages to" hint="email addresses, separated by commas (at most 10)">
				{(id, h) => <input id={id} name="emails" class="wide" type="text" aria-describedby={h} aria-invalid={bad(cmd.error, 'emails')} value={f.emails} onInput={set('emails')} />}
			</Field>
			<button type="submit" id="save-voicemail" disabled={cmd.busy}>Save voicemail</button>
		</form>
	);
}

function VoicemailPanel({ num, editable, rev, onSaved }) {
	const state = useLoad(() => get(`/v1/numbers/${num.id}/voicemail`), [num.id, rev]);
	const cmd = useCommand();
	return (
		<Loaded state={state} what="the voicemail">
			{(v) => (
				<>
					<dl class="props" id="voicemail-props">
						<dt>Voicemail</dt>
						<dd>{v.configured ? (v.enabled ? 'enabled' : 'disabled') : 'not configured (disabled)'}</dd>
						<dt>Greeting</dt>
						<dd>{v.greeting ? v.greeting.text || `audio file ${v.greeting.audio_id}` : '—'}</dd>
						<dt>PIN</dt>
						<dd>{v.pin_set ? 'set (never shown)' : 'not set'}</dd>
						<dt>Longest message</dt>
						<dd>{v.max_message_s ? `${v.max_message_s} s` : '—'}</dd>
						<dt>Transcription</dt>
						<dd>{v.transcription ? 'on' : 'off'}</dd>
						<dt>Emails</dt>
						<dd>{(v.emails || []).join(', ') || '—'}</dd>
						<dt>Configuration version</dt>
						<dd>{v.version}</dd>
					</dl>
					{editable && <VoicemailForm key={v.version} cmd={cmd} data={v} numberId={num.id} onSaved={onSaved} />}
					{editable && <Saved cmd={cmd} what="Voicemail" />}
				</>
			)}
		</Loaded>
	);
}

/* ---------- versions ---------- */

function VersionsPanel({ num, rev }) {
	const [cursor, setCursor] = useState(null);
	const state = useLoad(() => get(`/v1/numbers/${num.id}/configuration/versions`, { limit: 20, cursor }), [num.id, rev, cursor]);
	return (
		<Loaded state={state} what="the configuration versions">
			{(page) => (
				<>
					<Table
						caption="Configuration versions, newest first"
						empty="No configuration change yet."
						rows={page.data}
						rowKey={(v) => v.version}
						columns={[
							{ label: 'Version', render: (v) => v.version },
							{ label: 'Section', render: (v) => v.section.replace('_', ' ') },
							{ label: 'Changed', render: (v) => when(v.created_at) },
							{ label: 'Operation', render: (v) => (v.operation_id ? <code>{v.operation_id}</code> : '—') },
							{
								label: 'Configuration',
								render: (v) => (
									<details>
										<summary>Show version {v.version}</summary>
										<pre>{JSON.stringify(v.config, null, 2)}</pre>
									</details>
								),
							},
						]}
					/>
					<nav class="pager" aria-label="Version pages">
						{cursor !== null && <button type="button" class="secondary" onClick={() => setCursor(null)}>Newest</button>}
						{page.next_cursor !== null && page.next_cursor !== undefined && (
							<button type="button" class="secondary" onClick={() => setCursor(page.next_cursor)}>Older versions</button>
						)}
					</nav>
				</>
			)}
		</Loaded>
	);
}

/* ---------- the page ---------- */

const TABS = [
	{ id: 'routing', label: 'Routing' },
	{ id: 'hours', label: 'Business hours' },
	{ id: 'voicemail', label: 'Voicemail' },
	{ id: 'versions', label: 'Versions' },
];

function NumberView({ num, session, reload }) {
	const [tab, setTab] = useState(() => (TABS.some((t) => t.id === hashQuery().tab) ? hashQuery().tab : 'routing'));
	const [rev, setRev] = useState(0);
	const operate = can(session.role, 'operate');
	const editable = operate && num.status === 'active';
	const saved = () => {
		setRev((r) => r + 1);
		reload();
	};
	const panelProps = { num, editable, rev, onSaved: saved, zone: session.account.timezone };
	return (
		<>
			<Properties num={num} />
			{operate && <Actions num={num} reload={saved} />}
			<section class="config" aria-labelledby="config-h">
				<h2 id="config-h">Configuration</h2>
				{!operate && <p class="notice">Your role ({session.role}) may look at this configuration but not change it.</p>}
				{operate && !editable && <p class="notice">Activate the number to change its configuration: only an active number's configuration can be changed.</p>}
				<Tabs tabs={TABS} current={tab} onSelect={setTab} label="Configuration sections" />
				{TABS.map((t) => (
					<div role="tabpanel" id={`panel-${t.id}`} aria-labelledby={`tab-${t.id}`} tabIndex={0} hidden={t.id !== tab} class="panel">
						{t.id === 'routing' && <RoutingPanel {...panelProps} />}
						{t.id === 'hours' && <HoursPanel {...panelProps} />}
						{t.id === 'voicemail' && <VoicemailPanel {...panelProps} />}
						{t.id === 'versions' && <VersionsPanel {...panelProps} />}
					</div>
				))}
			</section>
		</>
	);
}

export function NumberPage({ params, session }) {
	const state = useLoad(() => get(`/v1/numbers/${params.id}`), [params.id]);
	const num = state.data;
	return (
		<Page title={num ? num.phone_number : 'Number'} actions={<a class="button secondary" href="#/numbers">All numbers</a>}>
			<Loaded state={state} what="this number">
				{(n) => <NumberView num={n} session={session} reload={state.reload} />}
			</Loaded>
		</Page>
	);
}
