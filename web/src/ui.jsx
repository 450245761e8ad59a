// Shared pieces of every page: data loading with its error shown (never a
// blank page), labelled form fields, tables with captions, status badges,
// a pager and the live progress of an operation.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { follow } from './api.js';

// Runs load() now and whenever deps change: {data, error, loading, reload}.
export function useLoad(load, deps) {
	const [state, setState] = useState({ data: null, error: null, loading: true });
	const seq = useRef(0);
	const run = useCallback(() => {
		const n = ++seq.current;
		setState((s) => ({ ...s, loading: true, error: null }));
		load().then(
			(data) => n === seq.current && setState({ data, error: null, loading: false }),
			(error) => n === seq.current && setState({ data: null, error, loading: false }),
		);
		// eslint-disable-next-line react-hooks/exhaustive-deps
	}, deps);
	useEffect(run, [run]);
	return { ...state, reload: run };
}

// The API's error as its message, code and request id: what a user needs
// to fix the input or to report the problem.
export function ErrorBox({ error, title }) {
	if (!error) return null;
	return (
		<div class="error" role="alert">
			<strong>{title || 'The request failed'}:</strong> {error.message}
			<div class="error-meta">
				{error.code && <span>code <code>{error.code}</code></span>}
				{error.status ? <span> · HTTP {error.status}</span> : null}
				{error.details && error.details.field && <span> · field <code>{error.details.field}</code></span>}
				{error.details && error.details.parameter && <span> · parameter <code>{error.details.parameter}</code></span>}
				{error.requestId && <span> · request id <code>{error.requestId}</code></span>}
			</div>
		</div>
	);
}

export function Loading({ what }) {
	return <p class="loading" role="status" aria-live="polite">Loading {what || ''}…</p>;
}

// Loading, error or the content.
export function Loaded({ state, what, children }) {
	if (state.error) return <ErrorBox error={state.error} title={`Could not load ${what || 'this page'}`} />;
	if (state.loading && !state.data) return <Loading what={what} />;
	return children(state.data);
}

let fieldSeq = 0;
// A form control with its visible label (and an optional hint tied to it
// by aria-describedby). children is a function of the control's id.
export function Field({ label, hint, children, class: cls }) {
	const id = useRef(`f${++fieldSeq}`).current;
	return (
		<div class={`field ${cls || ''}`}>
			<label for={id}>{label}</label>
			{children(id, hint ? `${id}-hint` : undefined)}
			{hint && <small id={`${id}-hint`} class="hint">{hint}</small>}
		</div>
	);
}

export function Status({ value }) {
	return <span class={`badge badge-${value}`}>{value || '—'}</span>;
}

// columns: [{label, render(row)}]; caption is read by screen readers.
export function Table({ caption, columns, rows, empty, rowKey }) {
	if (!rows || rows.length === 0) return <p class="empty">{empty || 'Nothing yet.'}</p>;
	return (
		<table>
			<caption>{caption}</caption>
			<thead>
				<tr>{columns.map((c) => <th scope="col">{c.label}</th>)}</tr>
			</thead>
			<tbody>
				{rows.map((r, i) => (
					<tr key={rowKey ? rowKey(r) : i}>{columns.map((c) => <td>{c.render(r)}</td>)}</tr>
				))}
			</tbody>
		</table>
	);
}

// "Next page" for the API's {data, next_cursor} lists.
export function Pager({ cursor, onPage, hasPrev, onFirst }) {
	if (!cursor && !hasPrev) return null;
	return (
		<nav class="pager" aria-label="Pages">
			{hasPrev && <button type="button" onClick={onFirst}>First page</button>}
			{cursor && <button type="button" onClick={() => onPage(cursor)}>Next page</button>}
		</nav>
	);
}

const STEPS = ['accepted', 'running', 'completed'];
// An operation's progress, announced as it changes.
export function Progress({ op, label }) {
	if (!op) return null;
	const failed = op.status === 'failed';
	const at = STEPS.indexOf(op.status);
	return (
		<div class="progress" role="status" aria-live="polite">
			<span class="progress-label">{label || op.kind}:</span>
			<ol>
				{STEPS.map((s, i) => (
					<li class={failed && i === 2 ? 'step failed' : i <= at ? 'step done' : 'step'}>
						{failed && i === 2 ? 'failed' : s}
					</li>
				))}
			</ol>
			{failed && op.error && (
				<p class="error">
					{op.error.message} (<code>{op.error.code}</code>)
				</p>
			)}
		</div>
	);
}

// A page's heading; sets the document title and takes the focus when the
// user moves to another page, so a screen reader announces where the user
// is (not on the first page of a load: the first Tab then reaches the
// skip link, as on any page).
let firstPage = true;
export function Page({ title, actions, children }) {
	const h = useRef(null);
	useEffect(() => {
		document.title = `${title} · VoxLink`;
		if (h.current && !firstPage) h.current.focus();
		firstPage = false;
	}, [title]);
	return (
		<section class="page" aria-labelledby="page-title">
			<header class="page-head">
				<h1 id="page-title" tabIndex={-1} ref={h}>{title}</h1>
				{actions && <div class="actions">{actions}</div>}
			</header>
			{children}
		</section>
	);
}

// A button that runs an async action, disabled while it runs, its error
// shown under it.
export function ActionButton({ onClick, children, class: cls, confirm: ask, label }) {
	const [busy, setBusy] = useState(false);
	const [error, setError] = useState(null);
	const click = async () => {
		if (ask && !window.confirm(ask)) return;
		setBusy(true);
		setError(null);
		try {
			await onClick();
		} catch (e) {
			setError(e);
		} finally {
			setBusy(false);
		}
	};
	return (
		<div class="action">
			<button type="button" class={cls} onClick={click} disabled={busy} aria-busy={busy} aria-label={label}>
				{children}
			</button>
			<ErrorBox error={error} />
		</div>
	);
}

// Runs a command (start: a function answering its 202 operation) and
// follows the operation: op is its latest state (or show(op) sees each
// state when given), error what the API refused, busy while it runs. run
// answers the completed operation, or null when it failed or was refused.
export function useCommand() {
	const [op, setOp] = useState(null);
	const [error, setError] = useState(null);
	const [busy, setBusy] = useState(false);
	const run = async (start, show) => {
		setBusy(true);
		setError(null);
		if (!show) setOp(null);
		const see = show || setOp;
		try {
			const first = await start();
			see(first);
			const done = await follow(first, see);
			return done.status === 'completed' ? done : null;
		} catch (e) {
			setError(e);
			return null;
		} finally {
			setBusy(false);
		}
	};
	return { op, error, busy, run, setError };
}
