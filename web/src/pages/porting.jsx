// PLACEHOLDER: being built (issue 19).
import { Page } from '../ui.jsx';
export function PortingPage() { return <Page title="PortingPage"><p>Not built yet.</p></Page>; }
export function PortingOrderPage() { return <Page title="PortingOrderPage"><p>Not built yet.</p></Page>; }
export function PortingNewPage() { return <Page title="PortingNewPage"><p>Not built yet.</p></Page>; }
