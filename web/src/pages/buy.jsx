// PLACEHOLDER: being built (issue 19).
import { Page } from '../ui.jsx';
export function BuyPage() { return <Page title="BuyPage"><p>Not built yet.</p></Page>; }
