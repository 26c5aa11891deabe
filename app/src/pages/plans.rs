//! Platform admins: the plans consultants subscribe to, and billing metrics.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::billing::{ArchivePlan, CreatePlan, MetricsView, Plans, load_billing_metrics, load_plans},
    components::{
        chart::{AmountChart, OutcomeChart},
        forms::{FieldError, FormError, TextField, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn PlansPage() -> impl IntoView {
    let create = ServerAction::<CreatePlan>::new();
    let archive = ServerAction::<ArchivePlan>::new();
    let data = Resource::new(move || (create.version().get(), archive.version().get()), |_| load_plans());
    view! {
        <Title text="Plans"/>
        <div class="flex flex-col gap-6">
            <div>
                <h1 class=ui::HEADING>"Plans"</h1>
                <p class=ui::MUTED>"What consultants subscribe to. Each plan is a product with a recurring price in Stripe."</p>
            </div>
            <Loaded data view=move |p| view! { <PlanList p create archive/> }/>
        </div>
    }
}

#[component]
fn PlanList(p: Plans, create: ServerAction<CreatePlan>, archive: ServerAction<ArchivePlan>) -> impl IntoView {
    let create_error = action_error(create);
    let archive_error = action_error(archive);
    view! {
        <section class=ui::CARD>
            <FormError error=archive_error/>
            {if p.plans.is_empty() {
                view! { <p class=ui::MUTED>"No plans yet."</p> }.into_any()
            } else {
                view! {
                    <table class=ui::TABLE data-testid="plan-list">
                        <thead>
                            <tr>
                                <th class=ui::TH>"Plan"</th>
                                <th class=ui::TH>"Price"</th>
                                <th class=ui::TH>"Trial"</th>
                                <th class=ui::TH>"Status"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {p.plans.into_iter().map(|plan| view! {
                                <tr>
                                    <td class=ui::TD>{plan.name.clone()}</td>
                                    <td class=ui::TD>{plan.price.clone()}</td>
                                    <td class=ui::TD>{if plan.trial_days > 0 { format!("{} days", plan.trial_days) } else { "none".into() }}</td>
                                    <td class=ui::TD>
                                        {if plan.active {
                                            view! {
                                                <span class=ui::BADGE_OK>"Offered"</span>
                                                <ActionForm action=archive attr:class="mt-2">
                                                    <input type="hidden" name="plan_id" value=plan.id.clone()/>
                                                    <button type="submit" class=ui::BUTTON_QUIET>"Stop offering"</button>
                                                </ActionForm>
                                            }.into_any()
                                        } else {
                                            view! { <span class=ui::BADGE>"Archived"</span> }.into_any()
                                        }}
                                    </td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"New plan"</h2>
            <FormError error=create_error/>
            <ActionForm action=create attr:class="mt-4 grid grid-cols-1 gap-4 md:grid-cols-3">
                <TextField id="plan-name" name="name" label="Name" error=create_error maxlength=80/>
                <TextField id="plan-price" name="price" label="Price (e.g. 49.00)" error=create_error/>
                <div>
                    <label for="plan-currency" class=ui::LABEL>"Currency"</label>
                    <select id="plan-currency" name="currency" class=ui::INPUT>
                        {p.currencies.into_iter().map(|c| view! { <option value=c.clone()>{c.to_uppercase()}</option> }).collect_view()}
                    </select>
                    <FieldError error=create_error field="currency"/>
                </div>
                <div>
                    <label for="plan-interval" class=ui::LABEL>"Billed"</label>
                    <select id="plan-interval" name="interval" class=ui::INPUT>
                        <option value="month">"Monthly"</option>
                        <option value="year">"Yearly"</option>
                    </select>
                    <FieldError error=create_error field="interval"/>
                </div>
                <TextField id="plan-trial" name="trial_days" label="Free trial (days)" error=create_error value="0"/>
                <TextField id="plan-description" name="description" label="Description" error=create_error maxlength=500/>
                <div><button type="submit" class=ui::BUTTON>"Create plan"</button></div>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn BillingMetricsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_billing_metrics());
    view! {
        <Title text="Billing metrics"/>
        <div class="flex flex-col gap-6">
            <h1 class=ui::HEADING>"Billing"</h1>
            <Loaded data view=move |m| view! { <Metrics m/> }/>
        </div>
    }
}

#[component]
fn Figure(label: &'static str, value: String, testid: &'static str) -> impl IntoView {
    view! {
        <div class=ui::CARD>
            <p class=ui::MUTED>{label}</p>
            <p class="text-2xl font-semibold text-gray-900" data-testid=testid>{value}</p>
        </div>
    }
}

#[component]
fn Metrics(m: MetricsView) -> impl IntoView {
    let mrr = if m.mrr.is_empty() { "—".to_owned() } else { m.mrr.join(" + ") };
    let caption = format!("Monthly recurring revenue in {} at the end of each of the last 30 days.", m.mrr_currency);
    view! {
        <div class="grid grid-cols-1 gap-4 md:grid-cols-3">
            <Figure label="MRR" value=mrr testid="mrr"/>
            <Figure label="Active" value=m.active.to_string() testid="active-count"/>
            <Figure label="Trialing" value=m.trialing.to_string() testid="trialing-count"/>
            <Figure label="Past due" value=m.past_due.to_string() testid="past-due-count"/>
            <Figure label="Payment success (30 days)" value=format!("{} of {}", m.payment_success, m.payments_30d) testid="payment-success"/>
            <Figure label="Churn (30 days)" value=format!("{} ({} canceled)", m.churn, m.canceled_30d) testid="churn"/>
        </div>
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"MRR"</h2>
            <AmountChart days=m.mrr_history caption/>
        </section>
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>"Subscription payments"</h2>
            <OutcomeChart days=m.outcomes/>
        </section>
    }
}
