// The dashboard's pages: hash routes (#/numbers/ID), the permission a page
// needs (docs/PERMISSIONS.md; pages a role may not use are not shown), and
// whether the page is in the navigation.
import { NumbersPage } from './pages/numbers.jsx';
import { NumberPage } from './pages/number.jsx';
import { BuyPage } from './pages/buy.jsx';
import { UsagePage } from './pages/usage.jsx';
import { InvoicesPage, InvoicePage } from './pages/invoices.jsx';
import { PortingPage, PortingOrderPage, PortingNewPage } from './pages/porting.jsx';
import { WebhooksPage, WebhookPage } from './pages/webhooks.jsx';
import { KeysPage } from './pages/keys.jsx';

export const ROUTES = [
	{ path: '/numbers', title: 'Numbers', perm: 'read', nav: true, component: NumbersPage },
	{ path: '/numbers/:id', title: 'Number', perm: 'read', component: NumberPage },
	{ path: '/buy', title: 'Search and buy', perm: 'operate', nav: true, component: BuyPage },
	{ path: '/usage', title: 'Usage', perm: 'read', nav: true, component: UsagePage },
	{ path: '/invoices', title: 'Invoices', perm: 'read', nav: true, component: InvoicesPage },
	{ path: '/invoices/:id', title: 'Invoice', perm: 'read', component: InvoicePage },
	{ path: '/porting', title: 'Porting', perm: 'read', nav: true, component: PortingPage },
	{ path: '/porting/new', title: 'New porting order', perm: 'operate', component: PortingNewPage },
	{ path: '/porting/:id', title: 'Porting order', perm: 'read', component: PortingOrderPage },
	{ path: '/webhooks', title: 'Webhooks', perm: 'read', nav: true, component: WebhooksPage },
	{ path: '/webhooks/:id', title: 'Webhook endpoint', perm: 'read', component: WebhookPage },
	{ path: '/keys', title: 'API keys', perm: 'keys', nav: true, component: KeysPage },
];

// The route of a hash ("#/numbers/abc" -> numbers/:id with {id: "abc"}).
export function match(hash) {
	const path = (hash || '').replace(/^#/, '').split('?')[0] || '/numbers';
	const parts = path.split('/').filter(Boolean);
	for (const r of ROUTES) {
		const want = r.path.split('/').filter(Boolean);
		if (want.length !== parts.length) continue;
		const params = {};
		let ok = true;
		want.forEach((w, i) => {
			if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(parts[i]);
			else if (w !== parts[i]) ok = false;
		});
		if (ok) return { route: r, params };
	}
	return null;
}

// The query of a hash (#/numbers?status=active).
export function hashQuery() {
	const q = location.hash.split('?')[1] || '';
	return Object.fromEntries(new URLSearchParams(q));
}
