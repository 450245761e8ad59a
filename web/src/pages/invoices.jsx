// Invoices (docs/BILLING.md, docs/API.md section 17): the list (status
// filter, cursor pages) with each invoice's period, total and amount due;
// an invoice's detail with its lines, totals, credit notes and payments;
// its PDF and CSV downloaded with the credential (fetch -> blob -> object
// URL -> <a download>). Billing roles (owner, admin, billing) may draft the
// invoice of a period and finalize, pay, void or mark an invoice
// uncollectible when its state allows it; the worker checks the state again
// and the operation says what happened.
import { useState } from 'preact/hooks';
import { api, can, follow, get, money, post, when } from '../api.js';
import { ActionButton, ErrorBox, Field, Loaded, Page, Pager, Progress, Status, Table, useLoad } from '../ui.jsx';
import './invoices.css';

const STATUSES = ['', 'draft', 'finalized', 'paid', 'void', 'uncollectible'];

// YYYY-MM-DD of an instant in a time zone.
export function localDay(iso, timeZone) {
	const d = iso instanceof Date ? iso : new Date(iso);
	if (Number.isNaN(d.getTime())) return iso || '—';
	try {
		return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
	} catch {
		return d.toISOString().slice(0, 10);
	}
}

// A half-open period [start, end) as its first and last local days.
export function period(inv) {
	const last = new Date(new Date(inv.period_end).getTime() - 1);
	return `${localDay(inv.period_start, inv.timezone)} to ${localDay(last, inv.timezone)}`;
}

const invoiceName = (inv) => inv.number || `Draft ${localDay(inv.period_start, inv.timezone)}`;

// Downloads path with the credential as filename: the answer's bytes as a
// blob behind an object URL, clicked through a temporary <a download>.
export async function download(path, filename) {
	const res = await api(path, { raw: true });
	const blob = await res.blob();
	const url = URL.createObjectURL(blob);
	const a = document.createElement('a');
	a.href = url;
	a.download = filename;
	a.hidden = true;
	document.body.appendChild(a);
	a.click();
	a.remove();
	setTimeout(() => URL.revokeObjectURL(url), 60000);
}

export function InvoicesPage({ session }) {
	const [status, setStatus] = useState('');
	const [cursor, setCursor] = useState(null);
	const state = useLoad(() => get('/v1/invoices', { status, cursor, limit: 25 }), [status, cursor]);
	return (
		<Page title="Invoices">
			{can(session.role, 'billing') && <DraftForm session={session} onDone={() => { setCursor(null); state.reload(); }} />}
			<form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
				<Field label="Status">
					{(id) => (
						<select id={id} name="status" value={status} onChange={(e) => { setCursor(null); setStatus(e.currentTarget.value); }}>
							{STATUSES.map((s) => <option value={s}>{s || 'any'}</option>)}
						</select>
					)}
				</Field>
			</form>
			<Loaded state={state} what="your invoices">
				{(page) => (
					<>
						<Table
							caption="Your invoices, newest period first"
							empty={status ? `No ${status} invoices.` : 'You have no invoices yet: one is made when a billing period closes.'}
							rows={page.data}
							rowKey={(i) => i.id}
							columns={[
								{ label: 'Invoice', render: (i) => <a href={`#/invoices/${i.id}`}>{invoiceName(i)}</a> },
								{ label: 'Status', render: (i) => <Status value={i.status} /> },
								{ label: 'Period', render: (i) => period(i) },
								{ label: 'Total', render: (i) => <span class="num">{money(i.total_micros, i.currency)}</span> },
								{ label: 'Amount due', render: (i) => <span class="num">{money(i.amount_due_micros, i.currency)}</span> },
								{ label: 'Issued', render: (i) => (i.issued_at ? when(i.issued_at) : 'not yet (draft)') },
								{ label: 'Due', render: (i) => when(i.due_at) },
							]}
						/>
						<Pager cursor={page.next_cursor} onPage={setCursor} hasPrev={cursor !== null} onFirst={() => setCursor(null)} />
					</>
				)}
			</Loaded>
		</Page>
	);
}

// Billing roles: draft (or recompute the draft of) a period's invoice. The
// default is the account's current period (GET /v1/billing/settings).
function DraftForm({ session, onDone }) {
	const settings = useLoad(() => get('/v1/billing/settings'), []);
	const [day, setDay] = useState(null);
	const [op, setOp] = useState(null);
	const [error, setError] = useState(null);
	const [busy, setBusy] = useState(false);
	const s = settings.data;
	const tz = (s && s.timezone) || session.account.timezone;
	const value = day !== null ? day : s && s.current_period ? localDay(s.current_period.start, tz) : '';
	const submit = async (e) => {
		e.preventDefault();
		setBusy(true);
		setError(null);
		setOp(null);
		try {
			const done = await follow(await post('/v1/invoices', { period_start: value }), setOp);
			if (done.status === 'completed') onDone(done.result);
		} catch (err) {
			setError(err);
		} finally {
			setBusy(false);
		}
	};
	return (
		<form class="invoice-draft" onSubmit={submit} aria-label="Draft an invoice">
			<fieldset>
				<legend>Draft the invoice of a period</legend>
				<div class="row">
					<Field label="Period start" hint={`the first day of a billing period, in ${tz}${s && s.current_period ? `; the current one starts on ${localDay(s.current_period.start, tz)}` : ''}`}>
						{(id, hint) => (
							<input id={id} name="period_start" type="date" required aria-describedby={hint} value={value} onInput={(e) => setDay(e.currentTarget.value)} />
						)}
					</Field>
					<div class="field">
						<button type="submit" disabled={busy} aria-busy={busy}>
							Draft invoice
						</button>
					</div>
				</div>
				<p class="hint">A draft is computed again each time it is asked for, until it is finalized.</p>
				<ErrorBox error={error} title="Could not draft the invoice" />
				<Progress op={op} label="Drafting the invoice" />
				{op && op.status === 'completed' && op.result && (
					<p class="notice">
						Drafted: <a href={`#/invoices/${op.result.invoice_id}`}>open the invoice</a> ({op.result.status}).
					</p>
				)}
			</fieldset>
		</form>
	);
}

export function InvoicePage({ params, session }) {
	const state = useLoad(() => get(`/v1/invoices/${encodeURIComponent(params.id)}`), [params.id]);
	const title = state.data ? `Invoice ${invoiceName(state.data)}` : 'Invoice';
	return (
		<Page title={title} actions={<a class="button secondary" href="#/invoices">All invoices</a>}>
			<Loaded state={state} what="the invoice">
				{(inv) => <InvoiceDetail inv={inv} session={session} reload={state.reload} />}
			</Loaded>
		</Page>
	);
}

function InvoiceDetail({ inv, session, reload }) {
	const cur = inv.currency;
	const m = (v) => money(v, cur);
	const base = `/v1/invoices/${encodeURIComponent(inv.id)}`;
	const file = `invoice-${inv.number || `draft-${localDay(inv.period_start, inv.timezone)}`}`;
	return (
		<>
			<div class="invoice-toolbar">
			<div class="invoice-downloads" role="group" aria-label="Downloads">
				<ActionButton onClick={() => download(`${base}/pdf`, `${file}.pdf`)}>Download PDF</ActionButton>
				<ActionButton class="secondary" onClick={() => download(`${base}/csv`, `${file}.csv`)}>Download CSV (lines)</ActionButton>
				<ActionButton class="secondary" onClick={() => download(`${base}/csv?detail=usage`, `${file}-usage.csv`)}>Download CSV (usage records)</ActionButton>
			</div>
			{can(session.role, 'billing') && <InvoiceActions inv={inv} reload={reload} />}
			</div>
			<dl class="props invoice-props">
				<dt>Status</dt>
				<dd><Status value={inv.status} /></dd>
				<dt>Number</dt>
				<dd>{inv.number || 'none yet: a draft gets its number when it is finalized'}</dd>
				<dt>Period</dt>
				<dd>{period(inv)} ({inv.timezone})</dd>
				<dt>Issued</dt>
				<dd>{when(inv.issued_at)}</dd>
				<dt>Due</dt>
				<dd>{when(inv.due_at)}</dd>
				{inv.status === 'draft' && (
					<>
						<dt>Grace until</dt>
						<dd>{when(inv.grace_until)} (the draft is recomputed until then, then finalized)</dd>
					</>
				)}
				{inv.paid_at && (<><dt>Paid</dt><dd>{when(inv.paid_at)}</dd></>)}
				{inv.voided_at && (<><dt>Voided</dt><dd>{when(inv.voided_at)}</dd></>)}
				{inv.marked_uncollectible_at && (<><dt>Marked uncollectible</dt><dd>{when(inv.marked_uncollectible_at)}</dd></>)}
			</dl>

			<h2>Lines</h2>
			<table class="invoice-lines">
				<caption>The invoice's lines, in {cur}</caption>
				<thead>
					<tr>
						<th scope="col">#</th>
						<th scope="col">Description</th>
						<th scope="col">Kind</th>
						<th scope="col" class="num">Quantity</th>
						<th scope="col" class="num">Unit price</th>
						<th scope="col" class="num">Amount</th>
					</tr>
				</thead>
				<tbody>
					{inv.lines.length === 0 && (
						<tr>
							<td colSpan={6} class="empty">No lines: nothing was owned or used in this period.</td>
						</tr>
					)}
					{inv.lines.map((l) => (
						<tr key={l.line_no}>
							<td>{l.line_no}</td>
							<td>{l.description}</td>
							<td>{l.kind}</td>
							<td class="num">{l.quantity} {plural(l.unit, l.quantity)}{l.days !== null && l.days !== undefined ? ` (${l.days} of ${l.period_days} days)` : ''}</td>
							<td class="num">{l.kind === 'usage' || l.kind === 'late_usage' ? '—' : m(l.unit_price_micros)}</td>
							<td class="num">{m(l.amount_micros)}</td>
						</tr>
					))}
				</tbody>
				<tfoot>
					<Total label="Subtotal" value={m(inv.subtotal_micros)} />
					<Total label={`Tax (${(inv.tax_rate_ppm / 10000).toLocaleString('en-US', { maximumFractionDigits: 4 })} %)`} value={m(inv.tax_micros)} />
					<Total label="Total" value={m(inv.total_micros)} strong />
					{inv.credited_micros > 0 && <Total label="Credit notes" value={m(-inv.credited_micros)} />}
					{inv.amount_paid_micros > 0 && <Total label="Paid" value={m(-inv.amount_paid_micros)} />}
					<Total label="Amount due (to the minor unit)" value={m(inv.amount_due_micros)} strong />
				</tfoot>
			</table>
			{inv.credit_applied_micros > 0 && <p>Account credit applied: {m(inv.credit_applied_micros)} (the credit line above).</p>}

			<h2>Payments</h2>
			<Table
				caption="Payments of this invoice"
				empty="No payments."
				rows={inv.payments}
				rowKey={(p) => p.id}
				columns={[
					{ label: 'Created', render: (p) => when(p.created_at) },
					{ label: 'Status', render: (p) => <Status value={p.status} /> },
					{ label: 'Amount', render: (p) => money(p.amount_micros, p.currency) },
					{ label: 'Attempts', render: (p) => p.attempts },
					{ label: 'Outcome', render: (p) => (p.succeeded_at ? `succeeded ${when(p.succeeded_at)}` : p.failure_code ? `${p.failure_code}: ${p.failure_reason || ''}` : p.next_attempt_at ? `next attempt ${when(p.next_attempt_at)}` : '—') },
				]}
			/>

			<h2>Credit notes</h2>
			<Table
				caption="Credit notes of this invoice"
				empty="No credit notes."
				rows={inv.credit_notes}
				rowKey={(c) => c.id}
				columns={[
					{ label: 'Number', render: (c) => c.number },
					{ label: 'Created', render: (c) => when(c.created_at) },
					{ label: 'Amount', render: (c) => m(c.amount_micros) },
					{ label: 'Applied to', render: (c) => c.applied_to },
					{ label: 'Reason', render: (c) => c.reason },
				]}
			/>
		</>
	);
}

const plural = (unit, n) => (n === 1 || !unit || unit.endsWith('s') ? unit : `${unit}s`);

function Total({ label, value, strong }) {
	return (
		<tr class={strong ? 'strong' : undefined}>
			<th scope="row" colSpan={5}>{label}</th>
			<td class="num">{value}</td>
		</tr>
	);
}

// The state changes a billing role may ask for, each only when the
// invoice's state allows it (docs/BILLING.md "States").
function InvoiceActions({ inv, reload }) {
	const [op, setOp] = useState(null);
	const [label, setLabel] = useState('');
	const run = (action, what) => async () => {
		setLabel(what);
		setOp(null);
		const done = await follow(await post(`/v1/invoices/${encodeURIComponent(inv.id)}/actions/${action}`), setOp);
		reload();
		return done;
	};
	const due = inv.amount_due_micros > 0;
	const acts = [];
	if (inv.status === 'draft')
		acts.push(<ActionButton onClick={run('finalize', 'Finalizing')} confirm="Finalize this invoice now? Its lines are frozen and it gets its number.">Finalize now</ActionButton>);
	if ((inv.status === 'finalized' || inv.status === 'uncollectible') && due)
		acts.push(<ActionButton onClick={run('pay', 'Paying')} confirm="Charge the default payment method now?">Pay now</ActionButton>);
	if (inv.status === 'finalized' && inv.amount_paid_micros === 0)
		acts.push(<ActionButton class="danger" onClick={run('void', 'Voiding')} confirm="Void this invoice? It is owed no more.">Void</ActionButton>);
	if (inv.status === 'finalized')
		acts.push(<ActionButton class="secondary" onClick={run('mark-uncollectible', 'Marking uncollectible')} confirm="Mark this invoice uncollectible?">Mark uncollectible</ActionButton>);
	if (acts.length === 0 && !op) return null;
	return (
		<div class="invoice-actions" role="group" aria-label="Invoice actions">
			{acts}
			<Progress op={op} label={label} />
		</div>
	);
}
