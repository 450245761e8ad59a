// API keys (docs/API.md section 8, docs/PERMISSIONS.md; the keys
// permission): the list (prefix, role, description, created, last used,
// revoked), a new key with its role (its secret shown once, with a copy
// button), revoke with a confirmation.
import { useState } from 'preact/hooks';
import { del, get, post, setToken, when } from '../api.js';
import { ActionButton, ErrorBox, Field, Loaded, Page, Pager, Status, Table, useLoad } from '../ui.jsx';
import './keys.css';

const ROLES = [
	['owner', 'everything, the account included'],
	['admin', 'everything but the account; keys of every role but owner'],
	['developer', 'numbers, routing, porting, webhooks (read and operate)'],
	['billing', 'invoices and payments (read and billing)'],
	['viewer', 'read only'],
];

// A secret the API answers once (a new API key, a webhook signing
// secret): shown with a copy button and the warning that it is not shown
// again.
export function ShownOnce({ title, value, id, children }) {
	const [copied, setCopied] = useState(null);
	const copy = async () => {
		try {
			await navigator.clipboard.writeText(value);
			setCopied('Copied to the clipboard.');
		} catch {
			const el = document.getElementById(id);
			if (el) {
				const r = document.createRange();
				r.selectNodeContents(el);
				const sel = window.getSelection();
				sel.removeAllRanges();
				sel.addRange(r);
			}
			setCopied('Selected: press Ctrl+C (⌘C) to copy it.');
		}
	};
	return (
		<div class="notice shown-once" role="status">
			<strong>{title}</strong>
			<p class="secret-line">
				<code id={id} class="secret">{value}</code>
				<button type="button" class="secondary" onClick={copy}>Copy</button>
			</p>
			<p class="warn-once">Copy it now and keep it somewhere safe: it is shown only this once and cannot be read again.</p>
			{copied && <p class="copied">{copied}</p>}
			{children}
		</div>
	);
}

export function KeysPage({ session }) {
	const [cursor, setCursor] = useState(null);
	const [tick, setTick] = useState(0);
	const list = useLoad(() => get('/v1/api-keys', { cursor, limit: 50 }), [cursor, tick]);
	const [role, setRole] = useState('developer');
	const [description, setDescription] = useState('');
	const [busy, setBusy] = useState(false);
	const [error, setError] = useState(null);
	const [created, setCreated] = useState(null);
	const roles = ROLES.filter(([r]) => r !== 'owner' || session.role === 'owner');

	const create = async (e) => {
		e.preventDefault();
		setBusy(true);
		setError(null);
		setCreated(null);
		try {
			const body = { role };
			if (description.trim()) body.description = description.trim();
			const k = await post('/v1/api-keys', body);
			setCreated(k);
			setDescription('');
			setCursor(null);
			setTick((t) => t + 1);
		} catch (err) {
			setError(err);
		} finally {
			setBusy(false);
		}
	};
	const mine = session.credential && session.credential.key_id;
	const revoke = async (k) => {
		await del(`/v1/api-keys/${k.id}`);
		if (k.id === mine) {
			// this session's own key: it answers 401 from now on
			setToken(null);
			location.hash = '#/signin';
			location.reload();
			return;
		}
		setCreated((c) => (c && c.id === k.id ? null : c));
		setTick((t) => t + 1);
	};

	return (
		<Page title="API keys">
			<p class="lead">Keys let programs (and this dashboard) use the API. Each has a role that decides what it may do.
				A revoked key answers <code>401</code> from then on.</p>
			<form class="new-key" onSubmit={create} aria-labelledby="new-key-title">
				<h2 id="new-key-title">New key</h2>
				<div class="row">
					<Field label="Role" hint={(ROLES.find(([r]) => r === role) || [])[1]}>
						{(id, hint) => (
							<select id={id} name="role" value={role} aria-describedby={hint} onChange={(e) => setRole(e.currentTarget.value)}>
								{roles.map(([r]) => <option value={r}>{r}</option>)}
							</select>
						)}
					</Field>
					<Field label="Description" hint="what uses it (optional, at most 500 characters)" class="grow">
						{(id, hint) => (
							<input id={id} name="description" aria-describedby={hint} value={description}
								onInput={(e) => setDescription(e.currentTarget.value)} />
						)}
					</Field>
					<div class="field">
						<button type="submit" disabled={busy} aria-busy={busy}>{busy ? 'Creating…' : 'Create the key'}</button>
					</div>
				</div>
				<ErrorBox error={error} title="The key was not created" />
			</form>
			{created && (
				<ShownOnce title={`Your new ${created.role} key (${created.prefix}…)`} value={created.key} id="new-key" />
			)}
			<Loaded state={list} what="the API keys">
				{(page) => (
					<>
						<Table
							caption="The account's API keys, newest first"
							empty="No keys yet."
							rows={page.data}
							rowKey={(k) => k.id}
							columns={[
								{ label: 'Prefix', render: (k) => <><code>{k.prefix}…</code>{k.id === mine && <span class="this-key"> (this session)</span>}</> },
								{ label: 'Role', render: (k) => k.role },
								{ label: 'Description', render: (k) => k.description || '—' },
								{ label: 'Created', render: (k) => when(k.created_at) },
								{ label: 'Last used', render: (k) => (k.last_used_at ? when(k.last_used_at) : 'never') },
								{ label: 'State', render: (k) => (k.revoked_at ? <><Status value="revoked" /> {when(k.revoked_at)}</> : <Status value="active" />) },
								{
									label: 'Actions',
									render: (k) =>
										k.revoked_at ? '—' : (
											<ActionButton class="danger" onClick={() => revoke(k)} label={`Revoke ${k.prefix}`}
												confirm={`Revoke the ${k.role} key ${k.prefix}…? Programs using it get 401 from now on.${k.id === mine ? ' It is the key of this session: you will be signed out.' : ''}`}>
												Revoke
											</ActionButton>
										),
								},
							]}
						/>
						<Pager cursor={page.next_cursor} onPage={setCursor} hasPrev={cursor !== null} onFirst={() => setCursor(null)} />
					</>
				)}
			</Loaded>
		</Page>
	);
}
