// PLACEHOLDER: being built (issue 19).
import { Page } from '../ui.jsx';
export function InvoicesPage() { return <Page title="InvoicesPage"><p>Not built yet.</p></Page>; }
export function InvoicePage() { return <Page title="InvoicePage"><p>Not built yet.</p></Page>; }
