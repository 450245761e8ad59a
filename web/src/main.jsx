// The dashboard: sign-in, then the page of the hash route inside the
// layout (skip link, navigation of the pages the role may use, the
// account and role, sign out). docs/DASHBOARD.md.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { ApiError, can, get, setToken, token } from './api.js';
import { ROUTES, match } from './routes.js';
import { ErrorBox, Loading, Page } from './ui.jsx';
import { SignIn } from './pages/signin.jsx';

function useHash() {
	const [hash, setHash] = useState(location.hash);
	useEffect(() => {
		const on = () => setHash(location.hash);
		window.addEventListener('hashchange', on);
		return () => window.removeEventListener('hashchange', on);
	}, []);
	return hash;
}

function Nav({ session, current }) {
	return (
		<nav class="nav" aria-label="Pages">
			<ul>
				{ROUTES.filter((r) => r.nav && can(session.role, r.perm)).map((r) => (
					<li>
						<a href={`#${r.path}`} aria-current={current && current.path.split('/')[1] === r.path.split('/')[1] ? 'page' : undefined}>
							{r.title}
						</a>
					</li>
				))}
			</ul>
		</nav>
	);
}

function App() {
	const hash = useHash();
	const [session, setSession] = useState(null);
	const [state, setState] = useState(token() ? 'checking' : 'signed-out');
	const [error, setError] = useState(null);

	const signIn = async (t) => {
		const account = await get('/v1/account', undefined, t);
		setToken(t);
		setSession({ account, role: account.credential.role, credential: account.credential });
		setState('signed-in');
		if (!location.hash || location.hash === '#/signin') location.hash = '#/numbers';
	};
	const signOut = () => {
		setToken(null);
		setSession(null);
		setState('signed-out');
		location.hash = '#/signin';
	};

	useEffect(() => {
		if (state !== 'checking') return;
		get('/v1/account').then(
			(account) => {
				setSession({ account, role: account.credential.role, credential: account.credential });
				setState('signed-in');
			},
			(e) => {
				if (e instanceof ApiError && e.status === 401) setToken(null);
				setError(e);
				setState('signed-out');
			},
		);
	}, [state]);

	if (state === 'checking') return <Loading what="your account" />;
	if (state !== 'signed-in') return <SignIn onSignIn={signIn} error={error} />;

	const m = match(hash);
	let body;
	if (!m) body = <Page title="Not found"><p>There is no such page. <a href="#/numbers">Go to your numbers</a>.</p></Page>;
	else if (!can(session.role, m.route.perm))
		body = (
			<Page title={m.route.title}>
				<ErrorBox error={{ message: `your role (${session.role}) may not use this page`, code: 'permission_denied' }} />
			</Page>
		);
	else {
		const C = m.route.component;
		body = <C key={hash.split('?')[0]} params={m.params} session={session} />;
	}
	return (
		<div class="layout">
			<a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>
				Skip to the content
			</a>
			<header class="top">
				<span class="brand">VoxLink</span>
				<span class="who">
					{session.account.name} · <span class="role" data-role={session.role}>{session.role}</span>
				</span>
				<button type="button" class="link" onClick={signOut}>Sign out</button>
			</header>
			<Nav session={session} current={m && m.route} />
			<main id="main" tabIndex={-1}>{body}</main>
		</div>
	);
}

render(<App />, document.getElementById('app'));
