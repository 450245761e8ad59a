// PLACEHOLDER: being built (issue 19).
import { Page } from '../ui.jsx';
export function NumberPage() { return <Page title="NumberPage"><p>Not built yet.</p></Page>; }
