// Search and buy (docs/API.md "Numbers", docs/NUMBERS.md): the search
// API's filters, the numbers for sale with a checkbox each, "Reserve
// selected" (held 15 minutes: the expiry counts down, "Hold 15 more
// minutes" extends it), then "Buy" (the order's operation followed live),
// then links to the bought numbers. Every API error is shown with its
// message (a bad area code names its parameter). Only roles that may
// operate reach this page (routes.js).
import { useEffect, useState } from 'preact/hooks';
import { follow, get, money, post, when } from '../api.js';
import { ErrorBox, Field, Page, Progress, Status, Table, useCommand } from '../ui.jsx';
import './buy.css';

const COUNTRIES = ['US', 'CA', 'GB', 'DE', 'FR', 'AU'];
const TYPES = ['', 'local', 'mobile', 'toll_free'];
const FEATURES = ['voice', 'sms', 'mms'];
const MAX_RESERVE = 10; // numbers per reservation (docs/API.md "Reserve")

const EMPTY = { country: 'US', area_code: '', contains: '', starts_with: '', ends_with: '', city: '', region: '', type: '', limit: '20' };

function place(n) {
	return [n.city, n.region, n.country].filter(Boolean).join(', ') || '—';
}

// "14:05" left until iso, ticking every second; "expired" after it.
function useCountdown(iso) {
	const [now, setNow] = useState(Date.now());
	useEffect(() => {
		if (!iso) return undefined;
		const t = setInterval(() => setNow(Date.now()), 1000);
		return () => clearInterval(t);
	}, [iso]);
	if (!iso) return null;
	const left = Math.max(0, Math.floor((new Date(iso).getTime() - now) / 1000));
	if (left === 0) return 'expired';
	return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
}

function SearchForm({ onSearch, busy }) {
	const [f, setF] = useState(EMPTY);
	const [features, setFeatures] = useState([]);
	const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
	const text = (k, label, hint, extra = {}) => (
		<Field label={label} hint={hint}>
			{(id, h) => <input id={id} name={k} aria-describedby={h} value={f[k]} onInput={set(k)} {...extra} />}
		</Field>
	);
	const submit = (e) => {
		e.preventDefault();
		onSearch({ ...f, features: features.join(',') });
	};
	return (
		<form class="buy-search" role="search" aria-label="Numbers for sale" onSubmit={submit}>
			<div class="row">
				<Field label="Country">
					{(id) => (
						<select id={id} name="country" value={f.country} onChange={set('country')}>
							{COUNTRIES.map((c) => <option value={c}>{c}</option>)}
						</select>
					)}
				</Field>
				{text('area_code', 'Area code', 'exactly, e.g. 415', { inputMode: 'numeric', size: 8 })}
				{text('contains', 'Contains', 'digits or letters (CALL); * is any digit', { size: 12 })}
				{text('starts_with', 'Starts with', 'national number', { inputMode: 'numeric', size: 10 })}
				{text('ends_with', 'Ends with', null, { inputMode: 'numeric', size: 8 })}
			</div>
			<div class="row">
				{text('city', 'City', null, { size: 14 })}
				{text('region', 'Region', 'state or province, e.g. CA', { size: 6 })}
				<Field label="Type">
					{(id) => (
						<select id={id} name="type" value={f.type} onChange={set('type')}>
							{TYPES.map((t) => <option value={t}>{t ? t.replace('_', ' ') : 'any'}</option>)}
						</select>
					)}
				</Field>
				<fieldset class="features">
					<legend>Features (all of)</legend>
					{FEATURES.map((x) => (
						<label class="check">
							<input
								type="checkbox"
								name={`feature-${x}`}
								checked={features.includes(x)}
								onChange={(e) => setFeatures(e.currentTarget.checked ? [...features, x] : features.filter((y) => y !== x))}
							/>{' '}
							{x}
						</label>
					))}
				</fieldset>
				<Field label="Results per page">
					{(id) => (
						<select id={id} name="limit" value={f.limit} onChange={set('limit')}>
							{['10', '20', '50', '100'].map((n) => <option value={n}>{n}</option>)}
						</select>
					)}
				</Field>
				<div class="field">
					<button type="submit" id="search-numbers" disabled={busy}>Search</button>
				</div>
			</div>
		</form>
	);
}

function Results({ page, selected, held, toggle, onPage, onFirst, hasPrev }) {
	if (page.data.length === 0) return <p class="empty" role="status">No numbers for sale match these filters. Try fewer filters or another area code.</p>;
	return (
		<>
			<Table
				caption={`Numbers for sale (${page.data.length} on this page)`}
				rows={page.data}
				rowKey={(n) => n.phone_number}
				columns={[
					{
						label: 'Select',
						render: (n) => (
							<input
								type="checkbox"
								class="pick"
								value={n.phone_number}
								aria-label={`Select ${n.phone_number}`}
								checked={selected.has(n.phone_number) || held.has(n.phone_number)}
								disabled={held.has(n.phone_number) || (!selected.has(n.phone_number) && selected.size >= MAX_RESERVE)}
								onChange={() => toggle(n)}
							/>
						),
					},
					{ label: 'Number', render: (n) => <><strong>{n.phone_number}</strong>{held.has(n.phone_number) && <span class="held"> reserved for you</span>}</> },
					{ label: 'Location', render: place },
					{ label: 'Type', render: (n) => (n.type || '—').replace('_', ' ') },
					{ label: 'Features', render: (n) => (n.features || []).join(', ') },
					{ label: 'Setup', render: (n) => money(n.price.setup_micros, n.price.currency) },
					{ label: 'Monthly', render: (n) => money(n.price.monthly_micros, n.price.currency) },
				]}
			/>
			<nav class="pager" aria-label="Result pages">
				{hasPrev && <button type="button" class="secondary" onClick={onFirst}>First page</button>}
				{page.next_cursor && <button type="button" class="secondary" onClick={() => onPage(page.next_cursor)}>Next page</button>}
			</nav>
		</>
	);
}

// The reservation: its numbers (held or not, and why), the expiry counting
// down, a button to hold them longer and the one to buy them.
function Reservation({ res, onExtend, onBuy, buying, bought }) {
	const left = useCountdown(res.expires_at);
	const held = res.phone_numbers.filter((p) => p.status === 'reserved' || p.status === 'active');
	const prices = held.map((p) => res.numbers.get(p.phone_number)).filter(Boolean);
	const cur = prices.length ? prices[0].price.currency : 'USD';
	const setup = prices.reduce((s, n) => s + n.price.setup_micros, 0);
	const monthly = prices.reduce((s, n) => s + n.price.monthly_micros, 0);
	return (
		<section class="reservation" aria-labelledby="reservation-h">
			<h2 id="reservation-h">{res.ordered ? 'Reservation (ordered)' : 'Reservation'}</h2>
			<dl class="props">
				<dt>Reservation</dt>
				<dd><code>{res.reservation_id}</code></dd>
				<dt>{res.ordered ? 'Was held until' : 'Held until'}</dt>
				<dd>
					{when(res.expires_at)}{' '}
					{left && !bought && <span class={left === 'expired' ? 'badge badge-failed' : 'badge badge-open'} id="reservation-left">{left === 'expired' ? 'expired' : `${left} left`}</span>}
				</dd>
				{res.extended && !res.ordered && (
					<>
						<dt>Extended</dt>
						<dd id="reservation-extended">held 15 more minutes from the extension</dd>
					</>
				)}
				{prices.length > 0 && (
					<>
						<dt>Price</dt>
						<dd>
							{money(setup, cur)} setup, then {money(monthly, cur)} a month
						</dd>
					</>
				)}
			</dl>
			<Table
				caption="Reserved numbers"
				rows={res.phone_numbers}
				rowKey={(p) => p.phone_number}
				columns={[
					{ label: 'Number', render: (p) => p.phone_number },
					{ label: 'Status', render: (p) => <Status value={p.status} /> },
					{ label: 'Note', render: (p) => p.reason || (p.status === 'reserved' && !res.ordered ? `held until ${when(res.expires_at)}` : '—') },
				]}
			/>
			{!bought && held.length > 0 && (
				<div class="row">
					<button type="button" id="buy-reserved" onClick={onBuy} disabled={buying || left === 'expired'}>
						Buy {held.length} {held.length === 1 ? 'number' : 'numbers'}
					</button>
					<button type="button" class="secondary" id="extend-reservation" onClick={onExtend} disabled={buying || left === 'expired'}>
						Hold 15 more minutes
					</button>
				</div>
			)}
		</section>
	);
}

export function BuyPage({ session }) {
	const [query, setQuery] = useState(null);
	const [cursor, setCursor] = useState(null);
	const [page, setPage] = useState(null);
	const [searching, setSearching] = useState(false);
	const [searchError, setSearchError] = useState(null);
	const [picked, setPicked] = useState(new Map()); // phone -> the number as the search showed it
	const [resOp, setResOp] = useState(null);
	const [res, setRes] = useState(null);
	const [orderOp, setOrderOp] = useState(null);
	const [bought, setBought] = useState(null);
	const { error, setError, busy, run: command } = useCommand();

	const search = async (q, c) => {
		setSearching(true);
		setBought(null);
		setOrderOp(null);
		if (res && res.ordered) {
			setRes(null);
			setResOp(null);
		}
		setSearchError(null);
		try {
			setPage(await get('/v1/available-numbers', { ...q, cursor: c }));
			setQuery(q);
			setCursor(c);
		} catch (e) {
			setPage(null);
			setSearchError(e);
		} finally {
			setSearching(false);
		}
	};
	const toggle = (n) => {
		const m = new Map(picked);
		if (m.has(n.phone_number)) m.delete(n.phone_number);
		else m.set(n.phone_number, n);
		setPicked(m);
	};
	const reserve = async () => {
		setRes(null);
		setOrderOp(null);
		setBought(null);
		const done = await command(() => post('/v1/reservations', { phone_numbers: [...picked.keys()] }), setResOp);
		if (!done) return;
		const held = done.result.phone_numbers.filter((p) => p.status === 'reserved');
		const expires = held.map((p) => p.expires_at).sort()[0] || null;
		setRes({ reservation_id: done.result.reservation_id, expires_at: expires, phone_numbers: done.result.phone_numbers, numbers: new Map(picked) });
		setPicked(new Map());
	};
	const extend = async () => {
		setResOp(null);
		const done = await command(() => post(`/v1/reservations/${res.reservation_id}/extend`), setResOp);
		if (!done) return;
		try {
			const r = await get(`/v1/reservations/${res.reservation_id}`);
			setRes({ ...res, expires_at: r.expires_at, extended: true });
		} catch (e) {
			setError(e);
		}
	};
	const buy = async () => {
		const done = await command(() => post('/v1/orders', { reservation_id: res.reservation_id }), setOrderOp);
		if (!done) return;
		// A number keeps its id from the pool to the account (one row of
		// numbers, docs/NUMBERS.md): the search's id is the number's.
		const got = done.result.phone_numbers.filter((p) => p.status === 'purchased');
		const rows = [];
		for (const p of got) {
			const seen = res.numbers.get(p.phone_number);
			let num = null;
			if (seen) num = await get(`/v1/numbers/${seen.id}`).catch(() => null);
			rows.push({ phone_number: p.phone_number, number: num && num.phone_number === p.phone_number ? num : null });
		}
		const status = new Map(done.result.phone_numbers.map((p) => [p.phone_number, p]));
		setRes({
			...res,
			ordered: true,
			phone_numbers: res.phone_numbers.map((p) => (status.has(p.phone_number) ? { ...p, ...status.get(p.phone_number), expires_at: null } : p)),
		});
		setBought({ result: done.result, rows, failed: done.result.phone_numbers.filter((p) => p.status !== 'purchased') });
	};

	const n = picked.size;
	return (
		<Page title="Search and buy">
			<p class="lead">
				Search the numbers for sale, select up to {MAX_RESERVE}, reserve them (they are held for you for 15 minutes), then buy them.
				Prices are in {session.account.currency || 'USD'} unless shown otherwise.
			</p>
			<SearchForm onSearch={(q) => search(q, null)} busy={searching} />
			<ErrorBox error={searchError} title="The search failed" />
			{searching && <p class="loading" role="status">Searching…</p>}
			{n > 0 && (
				<section class="selection" aria-labelledby="selection-h">
					<h2 id="selection-h">Selected</h2>
					<p>
						{[...picked.keys()].join(', ')}{' '}
						<button type="button" id="reserve-selected" onClick={reserve} disabled={busy}>
							Reserve selected ({n})
						</button>
					</p>
				</section>
			)}
			<Progress op={resOp} label="Reservation" />
			<ErrorBox error={error} />
			{res && <Reservation res={res} onExtend={extend} onBuy={buy} buying={busy} bought={!!bought} />}
			<Progress op={orderOp} label="Order" />
			{bought && (
				<section class="bought" aria-labelledby="bought-h">
					<h2 id="bought-h">Bought</h2>
					<p class="notice" role="status">
						Order <code>{bought.result.order_id}</code>: {bought.result.status}. {bought.rows.length} {bought.rows.length === 1 ? 'number is' : 'numbers are'} yours;
						activate {bought.rows.length === 1 ? 'it' : 'them'} with a forwarding destination to route calls.
					</p>
					<ul class="bought-list">
						{bought.rows.map((r) => (
							<li>
								{r.number ? (
									<>
										<a href={`#/numbers/${r.number.id}`} class="bought-number">{r.phone_number}</a> <Status value={r.number.status} />
									</>
								) : (
									<>
										{r.phone_number} (<a href="#/numbers?status=purchased">find it in your numbers</a>)
									</>
								)}
							</li>
						))}
					</ul>
					{bought.failed.length > 0 && (
						<Table
							caption="Numbers the carrier would not sell"
							rows={bought.failed}
							columns={[
								{ label: 'Number', render: (p) => p.phone_number },
								{ label: 'Status', render: (p) => <Status value={p.status} /> },
								{ label: 'Reason', render: (p) => p.reason || '—' },
							]}
						/>
					)}
				</section>
			)}
			<div aria-live="polite">
				{page && !searching && !bought && (
					<Results
						page={page}
						selected={picked}
						held={new Set(res && !res.ordered ? res.phone_numbers.filter((p) => p.status === 'reserved').map((p) => p.phone_number) : [])}
						toggle={toggle}
						hasPrev={cursor !== null}
						onFirst={() => search(query, null)}
						onPage={(c) => search(query, c)}
					/>
				)}
			</div>
		</Page>
	);
}
