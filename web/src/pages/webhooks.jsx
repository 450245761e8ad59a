// PLACEHOLDER: being built (issue 19).
import { Page } from '../ui.jsx';
export function WebhooksPage() { return <Page title="WebhooksPage"><p>Not built yet.</p></Page>; }
export function WebhookPage() { return <Page title="WebhookPage"><p>Not built yet.</p></Page>; }
