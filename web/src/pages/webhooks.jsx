// Webhook endpoints (docs/API.md section 13, docs/NOTIFICATIONS.md): the
// account's endpoints (url, events, enabled) and a new one (its signing
// secret shown once); an endpoint: its fields, its recent delivery
// attempts (outcome, status code, duration, error, times), send a test,
// resend a message, enable/disable, rotate the secret, delete.
import { useEffect, useState } from 'preact/hooks';
import { can, del, get, patch, post, when } from '../api.js';
import { ActionButton, ErrorBox, Field, Loaded, Page, Pager, Status, Table, useLoad } from '../ui.jsx';
import { ShownOnce } from './keys.jsx';
import './webhooks.css';

// docs/NOTIFICATIONS.md "What is notified" (schemas/openapi.yaml WebhookEventType)
const EVENT_GROUPS = [
	['Numbers', ['number.purchased', 'number.activated', 'number.deactivated', 'number.released', 'number.configured', 'reservation.expired']],
	['Usage', ['usage.trigger.fired']],
	['Porting', ['porting_order.submitted', 'porting_order.in_process', 'porting_order.exception', 'porting_order.foc_date_confirmed',
		'porting_order.ported', 'porting_order.cancel_pending', 'porting_order.cancelled', 'porting_order.expired']],
	['Billing', ['invoice.finalized', 'invoice.paid', 'invoice.payment_failed', 'invoice.payment_reminder', 'account.billing_suspended',
		'account.billing_reinstated']],
	['Webhooks', ['endpoint.disabled', 'webhook.test']],
];

function events(list) {
	if (!list || list.length === 0) return '—';
	if (list.length === 1 && list[0] === '*') return 'every event';
	return list.join(', ');
}

// An attempt's time to the second ("7 Dec, 20:49:05"), UTC as elsewhere.
function stamp(iso) {
	if (!iso) return '—';
	const d = new Date(iso);
	if (Number.isNaN(d.getTime())) return iso;
	const date = d.toLocaleDateString('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'short' });
	return `${date}, ${d.toISOString().slice(11, 19)}`;
}

function EnabledBadge({ ep }) {
	return ep.enabled ? <span class="badge badge-active">enabled</span> : <span class="badge badge-suspended">disabled</span>;
}

function NewEndpoint({ onCreated }) {
	const [url, setUrl] = useState('');
	const [description, setDescription] = useState('');
	const [all, setAll] = useState(true);
	const [chosen, setChosen] = useState({});
	const [busy, setBusy] = useState(false);
	const [error, setError] = useState(null);
	const submit = async (e) => {
		e.preventDefault();
		const body = { url: url.trim() };
		if (description.trim()) body.description = description.trim();
		if (!all) {
			body.events = Object.keys(chosen).filter((k) => chosen[k]);
			if (body.events.length === 0) {
				setError({ message: 'choose at least one event type, or every event', code: 'missing_events' });
				return;
			}
		}
		setBusy(true);
		setError(null);
		try {
			const ep = await post('/v1/webhook-endpoints', body);
			setUrl('');
			setDescription('');
			onCreated(ep);
		} catch (err) {
			setError(err);
		} finally {
			setBusy(false);
		}
	};
	return (
		<form class="new-endpoint" onSubmit={submit} aria-labelledby="new-endpoint-title">
			<h2 id="new-endpoint-title">New endpoint</h2>
			<div class="row">
				<Field label="URL" hint="http:// or https://, a public address; we POST the events there, signed (Standard Webhooks)" class="grow">
					{(id, hint) => (
						<input id={id} name="url" type="url" inputMode="url" aria-describedby={hint} value={url} placeholder="https://hooks.example.com/voxlink"
							onInput={(e) => setUrl(e.currentTarget.value)} />
					)}
				</Field>
				<Field label="Description" hint="optional" class="grow">
					{(id, hint) => (
						<input id={id} name="description" aria-describedby={hint} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
					)}
				</Field>
			</div>
			<fieldset>
				<legend>Events</legend>
				<div class="field field-inline">
					<input type="checkbox" id="ev-all" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} />
					<label for="ev-all">Every event type (also those added later)</label>
				</div>
				{!all && (
					<div class="event-groups">
						{EVENT_GROUPS.map(([group, types]) => (
							<fieldset class="event-group">
								<legend>{group}</legend>
								{types.map((t) => (
									<div class="field field-inline">
										<input type="checkbox" id={`ev-${t}`} checked={!!chosen[t]} onChange={(e) => setChosen((c) => ({ ...c, [t]: e.currentTarget.checked }))} />
										<label for={`ev-${t}`}><code>{t}</code></label>
									</div>
								))}
							</fieldset>
						))}
					</div>
				)}
			</fieldset>
			<button type="submit" disabled={busy} aria-busy={busy}>{busy ? 'Creating…' : 'Create the endpoint'}</button>
			<ErrorBox error={error} title="The endpoint was not created" />
			{error && error.details && error.details.reason && <p class="reason">Reason: {error.details.reason}</p>}
		</form>
	);
}

export function WebhooksPage({ session }) {
	const [cursor, setCursor] = useState(null);
	const [tick, setTick] = useState(0);
	const list = useLoad(() => get('/v1/webhook-endpoints', { cursor, limit: 50 }), [cursor, tick]);
	const [created, setCreated] = useState(null);
	const operate = can(session.role, 'operate');
	return (
		<Page title="Webhooks">
			<p class="lead">VoxLink POSTs your account's events (numbers activated, porting steps, invoices…) to your endpoints,
				signed with the endpoint's secret, retried for up to about a day and a half when they fail.</p>
			{created && (
				<ShownOnce title={`The signing secret of ${created.url}`} value={created.secret} id="new-secret">
					<p>
						Verify every delivery with it (headers <code>webhook-id</code>, <code>webhook-timestamp</code>,{' '}
						<code>webhook-signature</code>). <a href={`#/webhooks/${created.id}`}>Open the endpoint</a> to send a test.
					</p>
				</ShownOnce>
			)}
			<Loaded state={list} what="your webhook endpoints">
				{(page) => (
					<>
						<Table
							caption="Your webhook endpoints, newest first (at most 20)"
							empty="You have no webhook endpoints yet."
							rows={page.data}
							rowKey={(ep) => ep.id}
							columns={[
								{ label: 'URL', render: (ep) => <a href={`#/webhooks/${ep.id}`} class="url">{ep.url}</a> },
								{ label: 'Events', render: (ep) => events(ep.events) },
								{ label: 'State', render: (ep) => <><EnabledBadge ep={ep} />{ep.disabled_reason && <span class="muted"> {ep.disabled_reason}</span>}</> },
								{ label: 'Description', render: (ep) => ep.description || '—' },
								{ label: 'Created', render: (ep) => when(ep.created_at) },
							]}
						/>
						<Pager cursor={page.next_cursor} onPage={setCursor} hasPrev={cursor !== null} onFirst={() => setCursor(null)} />
					</>
				)}
			</Loaded>
			{operate && <NewEndpoint onCreated={(ep) => { setCreated(ep); setCursor(null); setTick((t) => t + 1); }} />}
		</Page>
	);
}

const OUTCOMES = ['sending', 'succeeded', 'failed', 'abandoned'];

function Attempts({ ep, tick, operate, onQueued }) {
	const [outcome, setOutcome] = useState('');
	const [cursor, setCursor] = useState(null);
	const list = useLoad(() => get(`/v1/webhook-endpoints/${ep.id}/attempts`, { status: outcome, cursor, limit: 50 }), [ep.id, outcome, cursor, tick]);
	const resend = async (a) => {
		const r = await post(`/v1/webhook-endpoints/${ep.id}/messages/${encodeURIComponent(a.message_id)}/resend`);
		onQueued(`Message ${r.message_id} queued again.`);
	};
	return (
		<section aria-labelledby="attempts-title">
			<h2 id="attempts-title">Recent attempts</h2>
			<form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
				<Field label="Outcome">
					{(id) => (
						<select id={id} name="outcome" value={outcome} onChange={(e) => { setCursor(null); setOutcome(e.currentTarget.value); }}>
							<option value="">any</option>
							{OUTCOMES.map((o) => <option value={o}>{o}</option>)}
						</select>
					)}
				</Field>
			</form>
			<Loaded state={list} what="the attempts">
				{(page) => (
					<>
						<Table
							caption="Every delivery attempt to this endpoint, newest first (response bodies are never stored)"
							empty={outcome ? `No ${outcome} attempts.` : 'No attempts yet: send a test.'}
							rows={page.data}
							rowKey={(a) => a.id}
							columns={[
								{ label: 'Started (UTC)', render: (a) => <time dateTime={a.started_at}>{stamp(a.started_at)}</time> },
								{ label: 'Event', render: (a) => (a.event_type ? <code>{a.event_type}</code> : '—') },
								{ label: 'Message', render: (a) => (a.message_id ? <code class="msg-id">{a.message_id}</code> : '—') },
								{ label: 'Try', render: (a) => a.attempt },
								{ label: 'Outcome', render: (a) => <Status value={a.outcome} /> },
								{ label: 'HTTP status', render: (a) => (a.status_code === null ? '—' : a.status_code) },
								{ label: 'Duration', render: (a) => (a.duration_ms === null ? '—' : `${a.duration_ms} ms`) },
								{ label: 'Error', render: (a) => a.error || '—' },
								{ label: 'Finished (UTC)', render: (a) => (a.finished_at ? <time dateTime={a.finished_at}>{stamp(a.finished_at)}</time> : '—') },
								{ label: 'Next try (UTC)', render: (a) => (a.next_attempt_at ? stamp(a.next_attempt_at) : '—') },
								...(operate
									? [{
										label: 'Actions',
										render: (a) =>
											a.message_id ? (
												<ActionButton class="secondary" onClick={() => resend(a)} label={`Resend ${a.message_id}`}>Resend</ActionButton>
											) : '—',
									}]
									: []),
							]}
						/>
						<Pager cursor={page.next_cursor} onPage={setCursor} hasPrev={cursor !== null} onFirst={() => setCursor(null)} />
					</>
				)}
			</Loaded>
		</section>
	);
}

export function WebhookPage({ params, session }) {
	const id = params.id;
	const [tick, setTick] = useState(0);
	const ep = useLoad(() => get(`/v1/webhook-endpoints/${id}`), [id, tick]);
	const [attemptsTick, setAttemptsTick] = useState(0);
	const [followUntil, setFollowUntil] = useState(0);
	const [note, setNote] = useState(null);
	const [secret, setSecret] = useState(null);
	const operate = can(session.role, 'operate');

	// after a test or a resend, the attempts are refreshed for two minutes
	// (a delivery waits its turn behind the queue's due ones)
	useEffect(() => {
		if (Date.now() >= followUntil) return undefined;
		const t = setTimeout(() => setAttemptsTick((n) => n + 1), 1500);
		return () => clearTimeout(t);
	}, [followUntil, attemptsTick]);
	const queued = (text) => {
		setNote(text);
		setAttemptsTick((n) => n + 1);
		setFollowUntil(Date.now() + 120000);
	};

	const test = async () => {
		const r = await post(`/v1/webhook-endpoints/${id}/test`);
		queued(`A webhook.test message (${r.message_id}) is queued to this endpoint.`);
	};
	const toggle = async (enabled) => {
		await patch(`/v1/webhook-endpoints/${id}`, { enabled });
		setNote(enabled ? 'Enabled: deliveries resume.' : 'Disabled: nothing is sent to it until you enable it again.');
		setTick((t) => t + 1);
	};
	const rotate = async () => {
		const r = await post(`/v1/webhook-endpoints/${id}/rotate-secret`);
		setSecret(r);
	};
	const remove = async () => {
		await del(`/v1/webhook-endpoints/${id}`);
		location.hash = '#/webhooks';
	};

	return (
		<Page title="Webhook endpoint" actions={<a class="button secondary" href="#/webhooks">All endpoints</a>}>
			<Loaded state={ep} what="the endpoint">
				{(e) => (
					<>
						<dl class="props">
							<dt>URL</dt><dd><code class="url">{e.url}</code></dd>
							<dt>Events</dt><dd>{events(e.events)}</dd>
							<dt>State</dt><dd><EnabledBadge ep={e} />{e.disabled_reason && <> ({e.disabled_reason})</>}</dd>
							<dt>Description</dt><dd>{e.description || '—'}</dd>
							<dt>Created</dt><dd>{when(e.created_at)}</dd>
							<dt>Updated</dt><dd>{when(e.updated_at)}</dd>
						</dl>
						{operate && (
							<div class="endpoint-actions">
								<ActionButton onClick={test} label="Send a test">Send a test</ActionButton>
								{e.enabled
									? <ActionButton class="secondary" onClick={() => toggle(false)} label="Disable">Disable</ActionButton>
									: <ActionButton class="secondary" onClick={() => toggle(true)} label="Enable">Enable</ActionButton>}
								<ActionButton class="secondary" onClick={rotate} label="Rotate the secret"
									confirm="Make a new signing secret? The old one stays valid for 24 hours.">Rotate the secret</ActionButton>
								<ActionButton class="danger" onClick={remove} label="Delete the endpoint"
									confirm={`Delete the endpoint ${e.url}? Its queued deliveries are cancelled.`}>Delete</ActionButton>
							</div>
						)}
						{note && <p class="notice" role="status">{note}</p>}
						{secret && (
							<ShownOnce title="The new signing secret" value={secret.secret} id="rotated-secret">
								<p>The previous secret stays valid until {when(secret.previous_secret_expires_at)}; deliveries carry both signatures meanwhile.</p>
							</ShownOnce>
						)}
						<Attempts ep={e} tick={attemptsTick} operate={operate} onQueued={queued} />
					</>
				)}
			</Loaded>
		</Page>
	);
}
