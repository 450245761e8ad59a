// The account's numbers: status filter (the API's ?status=), a filter on
// the number's digits within the page, pages of 50, each linking to its
// detail. The buy button only for roles that may buy (operate).
import { useState } from 'preact/hooks';
import { can, get } from '../api.js';
import { Field, Loaded, Page, Pager, Status, Table, useLoad } from '../ui.jsx';

const STATUSES = ['', 'purchased', 'active', 'suspended', 'porting'];

export function NumbersPage({ session }) {
	const [status, setStatus] = useState('');
	const [cursor, setCursor] = useState(null);
	const [text, setText] = useState('');
	const state = useLoad(() => get('/v1/numbers', { status, cursor, limit: 50 }), [status, cursor]);
	const digits = text.replace(/[^0-9]/g, '');
	return (
		<Page
			title="Numbers"
			actions={can(session.role, 'operate') && <a class="button" href="#/buy" id="buy-numbers">Buy numbers</a>}
		>
			<form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
				<Field label="Status">
					{(id) => (
						<select id={id} value={status} onChange={(e) => { setCursor(null); setStatus(e.currentTarget.value); }}>
							{STATUSES.map((s) => <option value={s}>{s || 'any'}</option>)}
						</select>
					)}
				</Field>
				<Field label="Number contains" hint="digits, on this page">
					{(id, hint) => (
						<input id={id} aria-describedby={hint} inputMode="numeric" value={text} onInput={(e) => setText(e.currentTarget.value)} />
					)}
				</Field>
			</form>
			<Loaded state={state} what="your numbers">
				{(page) => (
					<>
						<Table
							caption="Your numbers"
							empty={status ? `No ${status} numbers.` : 'You have no numbers yet.'}
							rows={page.data.filter((n) => !digits || n.phone_number.replace(/[^0-9]/g, '').includes(digits))}
							rowKey={(n) => n.id}
							columns={[
								{ label: 'Number', render: (n) => <a href={`#/numbers/${n.id}`}>{n.phone_number}</a> },
								{ label: 'Status', render: (n) => <Status value={n.status} /> },
								{ label: 'Location', render: (n) => [n.city, n.region, n.country].filter(Boolean).join(', ') || '—' },
								{ label: 'Type', render: (n) => n.type || '—' },
								{ label: 'Features', render: (n) => (n.features || []).join(', ') },
							]}
						/>
						<Pager cursor={page.next_cursor} onPage={setCursor} hasPrev={cursor !== null} onFirst={() => setCursor(null)} />
					</>
				)}
			</Loaded>
		</Page>
	);
}
