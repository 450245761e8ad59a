// PLACEHOLDER: being built (issue 19).
import { Page } from '../ui.jsx';
export function KeysPage() { return <Page title="KeysPage"><p>Not built yet.</p></Page>; }
