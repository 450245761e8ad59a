// The dashboard's only way to the VoxLink API (same origin, /v1): the
// credential the user signed in with (an API key or a JWT, kept in
// sessionStorage so it is gone when the tab closes), JSON both ways, an
// Idempotency-Key on every command so a retried click never runs twice,
// and every non-2xx answer turned into an ApiError carrying the API's
// error body (code, message, details, requestId), which the pages show.

const TOKEN = 'voxlink.token';

export class ApiError extends Error {
	constructor(status, body) {
		const e = (body && body.error) || {};
		super(e.message || `HTTP ${status}`);
		this.status = status;
		this.code = e.code || (status === 0 ? 'network_error' : 'http_error');
		this.details = e.details || {};
		this.requestId = e.requestId || null;
	}
}

export function token() {
	return sessionStorage.getItem(TOKEN);
}

export function setToken(t) {
	if (t) sessionStorage.setItem(TOKEN, t);
	else sessionStorage.removeItem(TOKEN);
}

function uuid() {
	return crypto.randomUUID();
}

// A query string from an object, leaving out empty values.
export function qs(params) {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params || {}))
		if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
	const s = q.toString();
	return s ? `?${s}` : '';
}

// fetch with the credential; answers the parsed JSON (null for 204), or
// throws ApiError. opts: {method, body (JSON-encoded unless FormData),
// headers, raw (answer the Response itself, for downloads)}.
export async function api(path, opts = {}) {
	const method = opts.method || 'GET';
	const headers = { Accept: 'application/json', ...(opts.headers || {}) };
	const t = opts.token !== undefined ? opts.token : token();
	if (t) headers.Authorization = `Bearer ${t}`;
	let body;
	if (opts.body instanceof FormData) body = opts.body;
	else if (opts.body !== undefined) {
		headers['Content-Type'] = 'application/json';
		body = JSON.stringify(opts.body);
	}
	if (method !== 'GET' && !headers['Idempotency-Key']) headers['Idempotency-Key'] = uuid();
	let res;
	try {
		res = await fetch(path, { method, headers, body });
	} catch (e) {
		throw new ApiError(0, { error: { message: `the API did not answer (${e.message})` } });
	}
	if (!res.ok) {
		let err = null;
		try {
			err = await res.json();
		} catch {
			err = null;
		}
		throw new ApiError(res.status, err);
	}
	if (opts.raw) return res;
	if (res.status === 204) return null;
	const type = res.headers.get('Content-Type') || '';
	return type.includes('json') ? res.json() : res.text();
}

export const get = (path, params, t) => api(path + qs(params), { token: t });
export const post = (path, body, headers) => api(path, { method: 'POST', body, headers });
export const put = (path, body) => api(path, { method: 'PUT', body });
export const patch = (path, body) => api(path, { method: 'PATCH', body });
export const del = (path) => api(path, { method: 'DELETE' });

const FINAL = new Set(['completed', 'failed']);

// Follows an operation until it is completed or failed: onUpdate sees each
// new state (accepted, running, ...). Answers the final operation.
export async function follow(op, onUpdate, { interval = 400, timeoutMs = 120000 } = {}) {
	const start = Date.now();
	let cur = op;
	let last = null;
	for (;;) {
		if (cur.status !== last) {
			last = cur.status;
			if (onUpdate) onUpdate(cur);
		}
		if (FINAL.has(cur.status)) return cur;
		if (Date.now() - start > timeoutMs)
			throw new ApiError(0, { error: { message: `operation ${cur.id} still ${cur.status} after ${timeoutMs / 1000} s` } });
		await new Promise((r) => setTimeout(r, interval));
		cur = await get(`/v1/operations/${cur.id}`);
	}
}

// What each role may do (docs/PERMISSIONS.md); the server checks again.
const PERMS = {
	owner: ['read', 'operate', 'billing', 'keys', 'account'],
	admin: ['read', 'operate', 'billing', 'keys'],
	developer: ['read', 'operate'],
	billing: ['read', 'billing'],
	viewer: ['read'],
};

export function can(role, perm) {
	return (PERMS[role] || []).includes(perm);
}

// Money: micro-units (1/1,000,000 of the currency) as the API sends them.
export function money(micros, currency) {
	if (micros === null || micros === undefined) return '—';
	const n = Number(micros) / 1e6;
	try {
		return new Intl.NumberFormat('en-US', { style: 'currency', currency: currency || 'USD', maximumFractionDigits: 6, minimumFractionDigits: 2 }).format(n);
	} catch {
		return `${n.toFixed(6)} ${currency || ''}`;
	}
}

export function when(iso) {
	if (!iso) return '—';
	const d = new Date(iso);
	return Number.isNaN(d.getTime()) ? iso : d.toLocaleString('en-GB', { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'short' }) + ' UTC';
}
