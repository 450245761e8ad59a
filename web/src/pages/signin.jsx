// Sign in with an API key (vox_…) or a JWT from the account's identity
// provider; it is checked against GET /v1/account and kept in
// sessionStorage (gone when the tab closes).
import { useState } from 'preact/hooks';
import { ErrorBox, Field } from '../ui.jsx';

export function SignIn({ onSignIn, error: first }) {
	const [value, setValue] = useState('');
	const [error, setError] = useState(first);
	const [busy, setBusy] = useState(false);
	const submit = async (e) => {
		e.preventDefault();
		const t = value.trim();
		if (!t) {
			setError({ message: 'enter an API key or a JWT', code: 'missing_credentials' });
			return;
		}
		setBusy(true);
		setError(null);
		try {
			await onSignIn(t);
		} catch (err) {
			setError(err);
		} finally {
			setBusy(false);
		}
	};
	return (
		<main id="main" class="signin">
			<h1>Sign in to VoxLink</h1>
			<form onSubmit={submit} aria-describedby="signin-help">
				<p id="signin-help">
					Use an API key (<code>vox_…</code>, from <code>voxctl account create</code> or the API keys page) or a JWT from
					your identity provider. It is kept for this tab only.
				</p>
				<Field label="API key or JWT">
					{(id) => (
						<input id={id} name="token" type="password" autocomplete="off" spellcheck={false} value={value}
							onInput={(e) => setValue(e.currentTarget.value)} required />
					)}
				</Field>
				<ErrorBox error={error} title="Sign-in failed" />
				<button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
			</form>
		</main>
	);
}
