//! The daily reconciliation of Stripe's balance with Remit's books, for platform admins: each
//! reconciled day and mode with every difference found, and a form to reconcile a day again.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::reconciliation::{ReconcileDay, RunView, load_reconciliation},
    components::{
        forms::{FormError, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn ReconciliationPage() -> impl IntoView {
    let again = ServerAction::<ReconcileDay>::new();
    let data = Resource::new(move || again.version().get(), |_| load_reconciliation());
    let error = action_error(again);
    view! {
        <Title text="Reconciliation"/>
        <div class="flex flex-col gap-6">
            <div>
                <h1 class=ui::HEADING>"Reconciliation"</h1>
                <p class=ui::MUTED>"Every night Remit compares the previous day's Stripe balance transactions (charges, refunds, application fees and their refunds, transfers and their reversals, disputes) with its orders, refunds and disputes. A difference raises an alert."</p>
            </div>
            <Loaded data view=move |r| {
                let runs = r.runs;
                let modes = r.modes;
                let yesterday = r.yesterday;
                view! {
                    <section class=ui::CARD>
                        <h2 class=ui::SUBHEADING>"Reconcile a day again"</h2>
                        <p class="mt-1 text-sm text-gray-600">"After a fix, or for today so far. The worker runs it within moments; this page shows the result."</p>
                        <FormError error/>
                        <ActionForm action=again attr:class="mt-4 flex flex-wrap items-end gap-4">
                            <div>
                                <label for="reconcile-day" class=ui::LABEL>"Day (UTC)"</label>
                                <input id="reconcile-day" type="date" name="day" value=yesterday class=ui::INPUT/>
                            </div>
                            <div>
                                <label for="reconcile-mode" class=ui::LABEL>"Mode"</label>
                                <select id="reconcile-mode" name="mode" class=ui::INPUT>
                                    {modes.into_iter().map(|m| view! { <option value=m.clone()>{m.clone()}</option> }).collect_view()}
                                </select>
                            </div>
                            <button type="submit" class=ui::BUTTON_QUIET>"Reconcile"</button>
                        </ActionForm>
                        {move || again.value().get().and_then(Result::ok).map(|()| view! {
                            <p class="mt-2 text-sm text-green-700" role="status">"Queued. Reload in a moment for the result."</p>
                        })}
                    </section>
                    {if runs.is_empty() {
                        view! { <section class=ui::CARD><p class=ui::MUTED>"No day reconciled yet: the first runs tonight at 04:20 UTC."</p></section> }.into_any()
                    } else {
                        runs.into_iter().map(|run| view! { <Run run/> }).collect_view().into_any()
                    }}
                }
            }/>
        </div>
    }
}

#[component]
fn Run(run: RunView) -> impl IntoView {
    let agreed = run.differences.is_empty();
    let badge = if agreed { ui::BADGE_OK } else { ui::BADGE_HIGH };
    let verdict = if agreed { "Agrees".to_owned() } else { format!("{} difference(s)", run.differences.len()) };
    view! {
        <section class=ui::CARD data-testid="reconciliation">
            <h2 class=ui::SUBHEADING>
                {format!("{} · {} ", run.day, run.mode)}
                <span class=badge>{verdict}</span>
            </h2>
            <p class=ui::MUTED>{format!("{} balance transactions checked; run {}.", run.lines, run.ran_at)}</p>
            {(!agreed).then(|| view! {
                <table class=ui::TABLE>
                    <thead><tr>
                        <th class=ui::TH>"Difference"</th><th class=ui::TH>"Line"</th><th class=ui::TH>"Stripe object"</th>
                        <th class=ui::TH>"Tenant"</th><th class=ui::TH>"Stripe"</th><th class=ui::TH>"Remit"</th>
                    </tr></thead>
                    <tbody>
                        {run.differences.into_iter().map(|d| view! {
                            <tr>
                                <td class=ui::TD>{d.kind}</td><td class=ui::TD>{d.line}</td>
                                <td class=ui::TD><code>{d.subject}</code></td><td class=ui::TD>{d.tenant}</td>
                                <td class=ui::TD>{d.stripe_amount}</td><td class=ui::TD>{d.remit_amount}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}
