// PLACEHOLDER: being built (issue 19).
import { Page } from '../ui.jsx';
export function UsagePage() { return <Page title="UsagePage"><p>Not built yet.</p></Page>; }
