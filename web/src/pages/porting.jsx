// Porting orders (docs/PORTING.md, docs/API.md "Porting" and "Documents"):
// the list with its status filter; a new order: the portability check of
// the numbers typed (one answer per number), then the draft with the end
// user's details; an order: its fields, numbers, status timeline (its
// events, oldest first), the LOA and invoice uploaded and attached, the
// FOC date from the allowed windows, submit (the operation's progress) and
// cancel. While the carrier works on an order the page follows it.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, can, follow, get, patch, post, when } from '../api.js';
import { ActionButton, ErrorBox, Field, Loaded, Page, Pager, Progress, Status, Table, useLoad } from '../ui.jsx';
import './porting.css';

const STATUSES = ['draft', 'submitted', 'in-process', 'exception', 'foc-date-confirmed', 'ported', 'cancel-pending', 'cancelled'];
const FINAL = new Set(['ported', 'cancelled']);
// the statuses in which the carrier moves the order: the page follows it
const MOVING = new Set(['submitted', 'in-process', 'foc-date-confirmed', 'cancel-pending']);
const EDITABLE = new Set(['draft', 'exception']);

// A porting rule refused (422 porting_rule_violated): the rule and what it
// names, under the API's message.
function RuleError({ error, title }) {
	if (!error) return null;
	const d = error.details || {};
	return (
		<>
			<ErrorBox error={error} title={title} />
			{d.rule && (
				<p class="rule-detail">
					Rule <code>{d.rule}</code>
					{d.phone_number && <> for <code>{d.phone_number}</code></>}
					{d.reason && <> ({d.reason})</>}
					{d.limit !== undefined && <> (limit {d.limit})</>}
				</p>
			)}
		</>
	);
}

function numbersOf(order) {
	const nums = (order.phone_numbers || []).map((n) => n.phone_number);
	if (nums.length <= 3) return nums.join(', ') || '—';
	return `${nums.slice(0, 3).join(', ')} and ${nums.length - 3} more`;
}

function day(date) {
	if (!date) return '—';
	const d = new Date(`${date}T12:00:00Z`);
	if (Number.isNaN(d.getTime())) return date;
	return d.toLocaleDateString('en-GB', { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
}

export function PortingPage({ session }) {
	const [status, setStatus] = useState('');
	const [cursor, setCursor] = useState(null);
	const state = useLoad(() => get('/v1/porting-orders', { status, cursor, limit: 50 }), [status, cursor]);
	return (
		<Page
			title="Porting"
			actions={can(session.role, 'operate') && <a class="button" href="#/porting/new" id="new-porting-order">New porting order</a>}
		>
			<p class="lead">Bring the numbers you have with another carrier: check that they can come, fill in the order,
				upload the letter of authorization and a recent invoice, then submit. The carrier confirms a date (FOC) and the
				numbers become yours, active.</p>
			<form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
				<Field label="Status">
					{(id) => (
						<select id={id} name="status" value={status} onChange={(e) => { setCursor(null); setStatus(e.currentTarget.value); }}>
							<option value="">any</option>
							{STATUSES.map((s) => <option value={s}>{s}</option>)}
						</select>
					)}
				</Field>
			</form>
			<Loaded state={state} what="your porting orders">
				{(page) => (
					<>
						<Table
							caption="Your porting orders, newest first"
							empty={status ? `No ${status} porting orders.` : 'You have no porting orders yet.'}
							rows={page.data}
							rowKey={(o) => o.id}
							columns={[
								{ label: 'Order', render: (o) => <a href={`#/porting/${o.id}`}><code>{o.id.slice(-12)}</code></a> },
								{ label: 'Status', render: (o) => <Status value={o.status} /> },
								{ label: 'Numbers', render: numbersOf },
								{ label: 'Losing carrier', render: (o) => o.losing_carrier || (o.children.length ? 'several (split)' : '—') },
								{ label: 'FOC date', render: (o) => (o.foc_date ? when(o.foc_date) : o.requested_foc_date ? `${day(o.requested_foc_date)} (asked)` : '—') },
								{ label: 'Reference', render: (o) => o.customer_reference || '—' },
								{ label: 'Created', render: (o) => when(o.created_at) },
							]}
						/>
						<Pager cursor={page.next_cursor} onPage={setCursor} hasPrev={cursor !== null} onFirst={() => setCursor(null)} />
					</>
				)}
			</Loaded>
		</Page>
	);
}

// "+1 415 555 0100, +14155550101\n..." -> distinct numbers as typed.
function parseNumbers(text) {
	const seen = new Set();
	for (const part of text.split(/[\n,;]+/)) {
		const t = part.trim();
		if (t) seen.add(t);
	}
	return [...seen];
}

function CheckResults({ results }) {
	return (
		<Table
			caption="Portability of each number"
			rows={results}
			rowKey={(r) => r.phone_number}
			columns={[
				{ label: 'Number', render: (r) => r.phone_number },
				{ label: 'Portable', render: (r) => <span class={`badge ${r.portable ? 'badge-active' : 'badge-failed'}`}>{r.portable ? 'portable' : 'not portable'}</span> },
				{ label: 'Why not', render: (r) => (r.not_portable_reason ? <code>{r.not_portable_reason}</code> : '—') },
				{ label: 'Losing carrier', render: (r) => (r.losing_carrier ? `${r.losing_carrier.name} (SPID ${r.losing_carrier.spid})` : '—') },
				{ label: 'Type', render: (r) => r.phone_number_type || '—' },
				{ label: 'Needs', render: (r) => needs(r) },
				{ label: 'Fast port', render: (r) => (r.portable ? (r.fast_portable ? 'yes' : 'no') : '—') },
			]}
		/>
	);
}

function needs(r) {
	if (!r.portable || !r.requirements) return '—';
	const n = [];
	if (r.requirements.account_number_required) n.push('account number');
	if (r.requirements.pin_required) n.push('PIN');
	return n.join(', ') || 'nothing more';
}

// The end user's fields as the API takes them: only what was typed (a
// draft may be completed later).
function endUserBody(f) {
	const u = {};
	if (f.authorized_name.trim()) u.authorized_name = f.authorized_name.trim();
	if (f.business_name.trim()) u.business_name = f.business_name.trim();
	const addr = {};
	for (const k of ['street', 'locality', 'administrative_area', 'postal_code', 'country'])
		if (f[k].trim()) addr[k] = f[k].trim();
	if (Object.keys(addr).length) u.service_address = addr;
	if (f.account_number) u.account_number = f.account_number;
	if (f.pin) u.pin = f.pin;
	return u;
}

const BLANK = {
	authorized_name: '', business_name: '', street: '', locality: '', administrative_area: '', postal_code: '',
	country: 'US', account_number: '', pin: '', customer_reference: '',
};

// The end user's details (new order, and the fix of an exception).
function EndUserFields({ form, set, pinNeeded, secretsHint }) {
	const input = (name, label, extra = {}) => (
		<Field label={label} hint={extra.hint}>
			{(id, hint) => (
				<input id={id} name={name} aria-describedby={hint} value={form[name]} autocomplete={extra.autocomplete || 'off'}
					type={extra.type || 'text'} onInput={(e) => set(name, e.currentTarget.value)} class={extra.cls} />
			)}
		</Field>
	);
	return (
		<>
			<fieldset>
				<legend>Who authorizes the port</legend>
				<div class="row">
					{input('authorized_name', 'Authorized person', { hint: 'as the losing carrier knows them', autocomplete: 'name' })}
					{input('business_name', 'Business name', { autocomplete: 'organization' })}
				</div>
			</fieldset>
			<fieldset>
				<legend>Service address</legend>
				<div class="row">
					{input('street', 'Street', { autocomplete: 'street-address' })}
					{input('locality', 'City', { autocomplete: 'address-level2' })}
					{input('administrative_area', 'State or province', { autocomplete: 'address-level1', cls: 'short' })}
					{input('postal_code', 'Postal code', { autocomplete: 'postal-code', cls: 'short' })}
					{input('country', 'Country', { hint: 'two letters: US, CA', cls: 'short' })}
				</div>
			</fieldset>
			<fieldset>
				<legend>The account at the losing carrier</legend>
				<p class="hint-text">Stored encrypted; only their last two characters are ever shown. {secretsHint}</p>
				<div class="row">
					{input('account_number', 'Account number', { type: 'password', hint: '4 to 64 characters' })}
					{input('pin', pinNeeded ? 'PIN (required by the losing carrier)' : 'PIN', { type: 'password', hint: '4 to 16 characters' })}
				</div>
			</fieldset>
		</>
	);
}

export function PortingNewPage() {
	const [text, setText] = useState('');
	const [checking, setChecking] = useState(false);
	const [checkError, setCheckError] = useState(null);
	const [results, setResults] = useState(null);
	const [chosen, setChosen] = useState({});
	const [form, setForm] = useState(BLANK);
	const [creating, setCreating] = useState(false);
	const [createError, setCreateError] = useState(null);
	const set = (k, v) => setForm((f) => ({ ...f, [k]: v }));

	const check = async (e) => {
		e.preventDefault();
		const numbers = parseNumbers(text);
		if (numbers.length === 0) {
			setCheckError({ message: 'type at least one phone number, in international form (+1…)', code: 'missing_numbers' });
			return;
		}
		setChecking(true);
		setCheckError(null);
		try {
			const r = await post('/v1/porting/portability-checks', { phone_numbers: numbers });
			setResults(r.data);
			setChosen(Object.fromEntries(r.data.filter((x) => x.portable).map((x) => [x.phone_number, true])));
		} catch (err) {
			setCheckError(err);
			setResults(null);
		} finally {
			setChecking(false);
		}
	};

	const create = async (e) => {
		e.preventDefault();
		const numbers = Object.keys(chosen).filter((k) => chosen[k]);
		if (numbers.length === 0) {
			setCreateError({ message: 'choose at least one portable number', code: 'missing_numbers' });
			return;
		}
		const body = { phone_numbers: numbers };
		const u = endUserBody(form);
		if (Object.keys(u).length) body.end_user = u;
		if (form.customer_reference.trim()) body.customer_reference = form.customer_reference.trim();
		setCreating(true);
		setCreateError(null);
		try {
			const order = await post('/v1/porting-orders', body);
			location.hash = `#/porting/${order.id}`;
		} catch (err) {
			setCreateError(err);
		} finally {
			setCreating(false);
		}
	};

	const portable = (results || []).filter((r) => r.portable);
	const pinNeeded = portable.some((r) => chosen[r.phone_number] && r.requirements && r.requirements.pin_required);
	return (
		<Page title="New porting order" actions={<a class="button secondary" href="#/porting">All porting orders</a>}>
			<ol class="steps" aria-label="Steps">
				<li class={results ? 'done' : 'current'}>Check the numbers</li>
				<li class={results ? 'current' : ''}>The order's details</li>
				<li>Documents, FOC date and submit (on the order's page)</li>
			</ol>
			<form id="portability-form" onSubmit={check}>
				<h2>1. Can they come?</h2>
				<Field label="Phone numbers" hint="international form (+1 415 555 0100), one per line or separated by commas; up to 250">
					{(id, hint) => (
						<textarea id={id} name="phone_numbers" rows={4} aria-describedby={hint} value={text}
							onInput={(e) => setText(e.currentTarget.value)} />
					)}
				</Field>
				<button type="submit" disabled={checking} aria-busy={checking}>{checking ? 'Checking…' : 'Check portability'}</button>
				<ErrorBox error={checkError} title="The check failed" />
			</form>
			{results && (
				<section aria-labelledby="check-results" class="check-results">
					<h2 id="check-results">Results</h2>
					<p role="status">
						{portable.length} of {results.length} {results.length === 1 ? 'number is' : 'numbers are'} portable.
					</p>
					<CheckResults results={results} />
				</section>
			)}
			{results && portable.length > 0 && (
				<form id="order-form" onSubmit={create}>
					<h2>2. The order</h2>
					<fieldset>
						<legend>Numbers to port</legend>
						{portable.map((r) => (
							<div class="field field-inline">
								<input type="checkbox" id={`n-${r.phone_number}`} checked={!!chosen[r.phone_number]}
									onChange={(e) => setChosen((c) => ({ ...c, [r.phone_number]: e.currentTarget.checked }))} />
								<label for={`n-${r.phone_number}`}>{r.phone_number} <span class="muted">({r.losing_carrier ? r.losing_carrier.name : '?'})</span></label>
							</div>
						))}
						{new Set(portable.filter((r) => chosen[r.phone_number]).map((r) => r.losing_carrier && r.losing_carrier.name)).size > 1 && (
							<p class="hint-text">These numbers have several losing carriers: the order is split into one child order per carrier when you submit it.</p>
						)}
					</fieldset>
					<EndUserFields form={form} set={set} pinNeeded={pinNeeded} secretsHint="Everything here may also be filled in later, before you submit." />
					<Field label="Your reference" hint="optional, at most 200 characters (a ticket number…)">
						{(id, hint) => (
							<input id={id} name="customer_reference" aria-describedby={hint} value={form.customer_reference}
								onInput={(e) => set('customer_reference', e.currentTarget.value)} />
						)}
					</Field>
					<button type="submit" disabled={creating} aria-busy={creating}>{creating ? 'Creating…' : 'Create the draft order'}</button>
					<RuleError error={createError} title="The order was not created" />
				</form>
			)}
		</Page>
	);
}

// One document slot of an order (LOA or invoice): what is attached, and an
// upload (POST /v1/documents, then PATCH the order's documents) while the
// order may change.
function DocumentSlot({ order, slot, label, editable, onChanged }) {
	const id = order.documents[slot];
	const doc = useLoad(() => (id ? get(`/v1/documents/${id}`) : Promise.resolve(null)), [id]);
	const [file, setFile] = useState(null);
	const [busy, setBusy] = useState(false);
	const [error, setError] = useState(null);
	const inputId = `doc-${slot}`;
	const formRef = useRef(null);

	const upload = async (e) => {
		e.preventDefault();
		if (!file) {
			setError({ message: 'choose a file first (PDF, PNG or JPEG)', code: 'missing_file' });
			return;
		}
		setBusy(true);
		setError(null);
		try {
			const form = new FormData();
			form.append('file', file, file.name);
			form.append('kind', slot);
			const d = await api('/v1/documents', { method: 'POST', body: form });
			await patch(`/v1/porting-orders/${order.id}`, { documents: { [slot]: d.id } });
			setFile(null);
			if (formRef.current) formRef.current.reset();
			onChanged();
		} catch (err) {
			setError(err);
		} finally {
			setBusy(false);
		}
	};

	const download = async () => {
		const res = await api(`/v1/documents/${id}/content`, { raw: true });
		const url = URL.createObjectURL(await res.blob());
		const a = document.createElement('a');
		a.href = url;
		a.download = doc.data ? doc.data.filename : 'document';
		document.body.appendChild(a);
		a.click();
		a.remove();
		setTimeout(() => URL.revokeObjectURL(url), 10000);
	};

	return (
		<div class={`doc-slot doc-${slot}`}>
			<h3>{label}</h3>
			{!id && <p class="empty">None attached yet.</p>}
			{id && (
				<Loaded state={doc} what="the document">
					{(d) => d && (
						<div class="doc-attached">
							<p>
								<span class="doc-name">{d.filename}</span> <span class="muted">{d.content_type}, {size(d.size_bytes)}, uploaded {when(d.created_at)}</span>
							</p>
							<ActionButton class="secondary" onClick={download} label={`Download ${d.filename}`}>Download</ActionButton>
						</div>
					)}
				</Loaded>
			)}
			{editable && (
				<form class="upload" onSubmit={upload} ref={formRef}>
					<Field label={`${id ? 'Replace' : 'Upload'} the ${slot === 'loa' ? 'letter of authorization' : 'invoice'}`} hint="PDF, PNG or JPEG, at most 10 MiB">
						{(fid, hint) => (
							<input id={fid} name={inputId} type="file" accept=".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg"
								aria-describedby={hint} onChange={(e) => setFile(e.currentTarget.files[0] || null)} />
						)}
					</Field>
					<button type="submit" disabled={busy} aria-busy={busy} id={`upload-${slot}`}>{busy ? 'Uploading…' : `Upload ${slot === 'loa' ? 'LOA' : 'invoice'}`}</button>
					<ErrorBox error={error} title="The upload failed" />
				</form>
			)}
		</div>
	);
}

function size(n) {
	if (n === null || n === undefined) return '?';
	if (n < 1024) return `${n} bytes`;
	if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
	return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// The FOC date: one of the allowed windows.
function FocChoice({ order, onChanged }) {
	const windows = useLoad(() => get(`/v1/porting-orders/${order.id}/allowed-foc-windows`), [order.id]);
	const [date, setDate] = useState('');
	const [error, setError] = useState(null);
	const [busy, setBusy] = useState(false);
	const pick = () => date || order.requested_foc_date || (windows.data && windows.data.data[0] && windows.data.data[0].date) || '';
	const save = async (e) => {
		e.preventDefault();
		setBusy(true);
		setError(null);
		try {
			await patch(`/v1/porting-orders/${order.id}`, { requested_foc_date: pick() || null });
			onChanged();
		} catch (err) {
			setError(err);
		} finally {
			setBusy(false);
		}
	};
	return (
		<Loaded state={windows} what="the allowed FOC dates">
			{(w) => {
				const current = pick();
				const hours = (x) => `${x.started_at.slice(11, 16)}–${x.ended_at.slice(11, 16)} UTC`;
				return (
					<form class="foc row" onSubmit={save}>
						<Field label="Requested FOC date" hint="business days from the 3rd after today to 30 days ahead; the port happens in that day's window">
							{(id, hint) => (
								<select id={id} name="requested_foc_date" aria-describedby={hint} value={current} onChange={(e) => setDate(e.currentTarget.value)}>
									{order.requested_foc_date && !w.data.some((x) => x.date === order.requested_foc_date) && (
										<option value={order.requested_foc_date}>{day(order.requested_foc_date)} (no longer allowed)</option>
									)}
									{w.data.map((x) => <option value={x.date}>{day(x.date)}, {hours(x)}</option>)}
								</select>
							)}
						</Field>
						<button type="submit" disabled={busy} aria-busy={busy} id="set-foc">Set the FOC date</button>
						<RuleError error={error} title="The date was refused" />
					</form>
				);
			}}
		</Loaded>
	);
}

// The end user's details, changed while the order is a draft or in
// exception (the fix of what the losing carrier refused).
function EditDetails({ order, onChanged }) {
	const u = order.end_user || {};
	const a = u.service_address || {};
	const [form, setForm] = useState({
		...BLANK,
		authorized_name: u.authorized_name || '', business_name: u.business_name || '', street: a.street || '',
		locality: a.locality || '', administrative_area: a.administrative_area || '', postal_code: a.postal_code || '',
		country: a.country || 'US', customer_reference: order.customer_reference || '',
	});
	const [error, setError] = useState(null);
	const [busy, setBusy] = useState(false);
	const [saved, setSaved] = useState(false);
	const set = (k, v) => { setSaved(false); setForm((f) => ({ ...f, [k]: v })); };
	const save = async (e) => {
		e.preventDefault();
		setBusy(true);
		setError(null);
		try {
			const body = { end_user: endUserBody(form) };
			body.customer_reference = form.customer_reference.trim() || null;
			await patch(`/v1/porting-orders/${order.id}`, body);
			setForm((f) => ({ ...f, account_number: '', pin: '' }));
			setSaved(true);
			onChanged();
		} catch (err) {
			setError(err);
		} finally {
			setBusy(false);
		}
	};
	return (
		<details class="edit" open={order.status === 'exception'}>
			<summary>Change the order's details</summary>
			<form onSubmit={save}>
				<EndUserFields form={form} set={set} pinNeeded={false}
					secretsHint={`Leave them empty to keep the stored ones (account number ••${u.account_number_last2 || '—'}, PIN ••${u.pin_last2 || '—'}).`} />
				<Field label="Your reference">
					{(id) => <input id={id} name="customer_reference" value={form.customer_reference} onInput={(e) => set('customer_reference', e.currentTarget.value)} />}
				</Field>
				<button type="submit" disabled={busy} aria-busy={busy}>Save the details</button>
				{saved && <p class="notice" role="status">Saved.</p>}
				<RuleError error={error} title="The details were refused" />
			</form>
		</details>
	);
}

function eventDetail(ev) {
	const d = ev.detail;
	const bits = [];
	if (d && typeof d === 'object') {
		if (d.foc_date) bits.push(`FOC ${when(d.foc_date)}`);
		if (Array.isArray(d.exceptions) && d.exceptions.length)
			bits.push(`exceptions: ${d.exceptions.map((x) => (typeof x === 'object' ? x.code : String(x))).join(', ')}`);
	}
	return bits.join('; ');
}

function Timeline({ order, events }) {
	return (
		<ul class="timeline" aria-label="Status timeline, oldest first">
			<li class="created">
				<div class="tl-head">
					<Status value="draft" />
					<span class="muted"> · {when(order.created_at)} · created</span>
				</div>
			</li>
			{events.map((ev) => (
				<li key={ev.id} class={ev.applied ? 'applied' : 'not-applied'}>
					<div class="tl-head">
						{ev.from_status ? <><Status value={ev.from_status} /> <span aria-hidden="true">→</span><span class="sr-only">to</span> </> : null}
						<Status value={ev.to_status} />
						<span class="muted"> · {when(ev.at)} · by {ev.source === 'api' ? 'you (API)' : ev.source}</span>
					</div>
					{!ev.applied && <div class="tl-note">Not applied: {ev.reason || 'refused'}</div>}
					{ev.applied && ev.reason && <div class="tl-note">{ev.reason}</div>}
					{eventDetail(ev) && <div class="tl-note">{eventDetail(ev)}</div>}
				</li>
			))}
		</ul>
	);
}

function address(a) {
	if (!a) return '—';
	return [a.street, a.locality, [a.administrative_area, a.postal_code].filter(Boolean).join(' '), a.country].filter(Boolean).join(', ');
}

export function PortingOrderPage({ params, session }) {
	const id = params.id;
	const [tick, setTick] = useState(0);
	// the order, then its history: a move is written with its event in one
	// transaction, so the history read after holds the order's status
	const order = useLoad(async () => {
		const o = await get(`/v1/porting-orders/${id}`);
		const ev = await get(`/v1/porting-orders/${id}/events`);
		return { ...o, history: ev.data };
	}, [id, tick]);
	const [op, setOp] = useState(null);
	const [actionError, setActionError] = useState(null);
	const reload = () => setTick((t) => t + 1);
	const status = order.data && order.data.status;

	// follow the order while the carrier moves it
	useEffect(() => {
		if (!status || !MOVING.has(status)) return undefined;
		const t = setTimeout(reload, 2000);
		return () => clearTimeout(t);
	}, [status, tick]);

	const submit = async () => {
		setActionError(null);
		setOp(null);
		try {
			const first = await post(`/v1/porting-orders/${id}/actions/submit`);
			await follow(first, setOp);
		} catch (err) {
			setActionError(err);
		}
		reload();
	};
	const cancel = async () => {
		setActionError(null);
		setOp(null);
		try {
			const r = await post(`/v1/porting-orders/${id}/actions/cancel`);
			if (r && r.kind) await follow(r, setOp);
		} catch (err) {
			setActionError(err);
		}
		reload();
	};

	const operate = can(session.role, 'operate');
	return (
		<Page title="Porting order"
			actions={<a class="button secondary" href="#/porting">All porting orders</a>}>
			<Loaded state={order} what="the porting order">
				{(o) => (
					<>
						<p class="order-head">
							<Status value={o.status} /> <code>{o.id}</code>
							{o.parent_id && <> · part of <a href={`#/porting/${o.parent_id}`}>order {o.parent_id.slice(-12)}</a></>}
						</p>
						{operate && (
							<div class="order-actions">
								{EDITABLE.has(o.status) && (
									<ActionButton onClick={submit} label={o.status === 'exception' ? 'Submit again' : 'Submit the order'}>
										{o.status === 'exception' ? 'Submit again' : 'Submit the order'}
									</ActionButton>
								)}
								{!FINAL.has(o.status) && o.status !== 'cancel-pending' && (
									<ActionButton class="danger" onClick={cancel} confirm="Cancel this porting order? The numbers stay with their carrier."
										label="Cancel the order">Cancel the order</ActionButton>
								)}
							</div>
						)}
						<Progress op={op} label={op && op.kind === 'porting.cancel' ? 'Cancelling' : 'Submitting'} />
						<RuleError error={actionError} title="The order could not be sent" />
						{o.status === 'draft' && (
							<p class="hint-text">A draft: add the documents and the FOC date, then submit. Drafts expire on {when(o.expires_at)}.</p>
						)}
						{o.exceptions && o.exceptions.length > 0 && (
							<div class="error" role="alert">
								<strong>The losing carrier refused the order:</strong>
								<ul>
									{o.exceptions.map((x) => (
										<li>{x.message || x.code} (<code>{x.code}</code>{x.field && <> on <code>{x.field}</code></>})</li>
									))}
								</ul>
								{EDITABLE.has(o.status) && 'Change the details below, then submit again.'}
							</div>
						)}
						<div class="order-grid">
							<section aria-labelledby="order-fields">
								<h2 id="order-fields">The order</h2>
								<dl class="props">
									<dt>Status</dt><dd><Status value={o.status} />{o.cancel_reason && <> ({o.cancel_reason})</>}</dd>
									<dt>Losing carrier</dt><dd>{o.losing_carrier || (o.children.length ? 'several: split by carrier' : '—')}</dd>
									<dt>Requested FOC</dt><dd>{day(o.requested_foc_date)}</dd>
									<dt>Confirmed FOC</dt><dd>{o.foc_date ? when(o.foc_date) : '—'}</dd>
									<dt>Authorized person</dt><dd>{o.end_user.authorized_name || '—'}</dd>
									<dt>Business</dt><dd>{o.end_user.business_name || '—'}</dd>
									<dt>Service address</dt><dd>{address(o.end_user.service_address)}</dd>
									<dt>Account number</dt><dd>{o.end_user.account_number_last2 ? `••${o.end_user.account_number_last2}` : '—'}</dd>
									<dt>PIN</dt><dd>{o.end_user.pin_last2 ? `••${o.end_user.pin_last2}` : '—'}</dd>
									<dt>Reference</dt><dd>{o.customer_reference || '—'}</dd>
									<dt>Created</dt><dd>{when(o.created_at)}</dd>
									<dt>Submitted</dt><dd>{when(o.submitted_at)}</dd>
									<dt>Ported</dt><dd>{when(o.ported_at)}</dd>
								</dl>
							</section>
							<section aria-labelledby="order-timeline">
								<h2 id="order-timeline">Status timeline</h2>
								<Timeline order={o} events={o.history} />
								{MOVING.has(o.status) && <p class="muted live" role="status">Following the carrier: this page refreshes by itself.</p>}
							</section>
						</div>
						<h2>Numbers</h2>
						<Table
							caption="The numbers of this order"
							rows={o.phone_numbers}
							rowKey={(n) => n.phone_number}
							columns={[
								{ label: 'Number', render: (n) => (n.number_id ? <a href={`#/numbers/${n.number_id}`}>{n.phone_number}</a> : n.phone_number) },
								{ label: 'Status', render: (n) => <Status value={n.status} /> },
								{ label: 'Losing carrier', render: (n) => n.losing_carrier || '—' },
							]}
						/>
						{o.children.length > 0 && (
							<>
								<h2>Child orders (one per losing carrier)</h2>
								<Table
									caption="The orders this one was split into"
									rows={o.children}
									rowKey={(c) => c.id}
									columns={[
										{ label: 'Order', render: (c) => <a href={`#/porting/${c.id}`}><code>{c.id.slice(-12)}</code></a> },
										{ label: 'Status', render: (c) => <Status value={c.status} /> },
										{ label: 'Losing carrier', render: (c) => c.losing_carrier || '—' },
										{ label: 'FOC', render: (c) => (c.foc_date ? when(c.foc_date) : '—') },
										{ label: 'Numbers', render: (c) => c.phone_numbers.join(', ') },
									]}
								/>
							</>
						)}
						<section aria-labelledby="order-documents">
							<h2 id="order-documents">Documents</h2>
							<div class="docs">
								<DocumentSlot order={o} slot="loa" label="Letter of authorization (LOA)" editable={operate && EDITABLE.has(o.status)} onChanged={reload} />
								<DocumentSlot order={o} slot="invoice" label="Recent invoice" editable={operate && EDITABLE.has(o.status)} onChanged={reload} />
							</div>
						</section>
						{operate && EDITABLE.has(o.status) && (
							<section aria-labelledby="order-foc">
								<h2 id="order-foc">FOC date</h2>
								<FocChoice order={o} onChanged={reload} />
								<EditDetails order={o} onChanged={reload} />
							</section>
						)}
					</>
				)}
			</Loaded>
		</Page>
	);
}
