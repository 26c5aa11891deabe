//! A consultant's subscription, invoices and saved cards.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::billing::{
        AddCard, Billing, CancelSubscription, CardView, ChangePlan, PaymentMethods, RemoveCard, ResumeSubscription,
        SetDefaultCard, Subscribe, SubscriptionView, load_billing, load_payment_methods,
    },
    components::{
        forms::{FormError, Notice, Problem, action_error},
        status::Loaded,
        ui,
    },
};

#[component]
pub fn BillingPage() -> impl IntoView {
    let subscribe = ServerAction::<Subscribe>::new();
    let cancel = ServerAction::<CancelSubscription>::new();
    let resume = ServerAction::<ResumeSubscription>::new();
    let change = ServerAction::<ChangePlan>::new();
    let query = use_query_map();
    let data = Resource::new(
        move || (query.read().get("checkout"), cancel.version().get(), resume.version().get(), change.version().get()),
        |(checkout, ..)| load_billing(checkout),
    );
    view! {
        <Title text="Billing"/>
        <div class="flex flex-col gap-6">
            <h1 class=ui::HEADING>"Billing"</h1>
            <Loaded data view=move |b| view! { <BillingView b subscribe cancel resume change/> }/>
        </div>
    }
}

fn status_badge(status: &str) -> &'static str {
    match status {
        "active" | "trialing" => ui::BADGE_OK,
        "past_due" | "unpaid" | "incomplete" => ui::BADGE_WAIT,
        _ => ui::BADGE,
    }
}

#[component]
fn BillingView(
    b: Billing,
    subscribe: ServerAction<Subscribe>,
    cancel: ServerAction<CancelSubscription>,
    resume: ServerAction<ResumeSubscription>,
    change: ServerAction<ChangePlan>,
) -> impl IntoView {
    let subscribe_error = action_error(subscribe);
    let live = b.subscription.as_ref().is_some_and(|s| s.live);
    let can_manage = b.can_manage;
    view! {
        {b.notice.map(|n| view! { <Notice>{n}</Notice> })}
        {b.problem.map(|p| view! { <Problem>{p}</Problem> })}
        {b.subscription.clone().map(|s| view! { <CurrentSubscription s can_manage plans=b.plans.clone() cancel resume change/> })}
        {(!live).then(|| view! {
            <section class=ui::CARD>
                <h2 class=ui::SUBHEADING>"Choose a plan"</h2>
                <p class="mt-1 mb-4 text-sm text-gray-600">
                    "A subscription lets you set up payouts. You pay on Stripe's secure page; Remit never sees your card."
                </p>
                <FormError error=subscribe_error/>
                {if b.plans.is_empty() {
                    view! { <p class=ui::MUTED>"No plans are offered yet."</p> }.into_any()
                } else {
                    view! {
                        <div class="grid grid-cols-1 gap-4 md:grid-cols-3" data-testid="plans">
                            {b.plans.into_iter().map(|p| view! {
                                <div class="rounded-lg border border-gray-200 p-4">
                                    <h3 class="font-semibold text-gray-900">{p.name.clone()}</h3>
                                    <p class="text-lg">{p.price.clone()}</p>
                                    {(p.trial_days > 0).then(|| view! { <p class="text-sm text-green-700">{format!("{} days free", p.trial_days)}</p> })}
                                    <p class="mt-1 text-sm text-gray-600">{p.description.clone()}</p>
                                    {can_manage.then(|| view! {
                                        <ActionForm action=subscribe attr:class="mt-3">
                                            <input type="hidden" name="plan_id" value=p.id.clone()/>
                                            <button type="submit" class=ui::BUTTON>{format!("Subscribe to {}", p.name)}</button>
                                        </ActionForm>
                                    })}
                                </div>
                            }).collect_view()}
                        </div>
                    }.into_any()
                }}
            </section>
        })}
        <section class=ui::CARD>
            <h2 class="mb-4 text-lg font-semibold text-gray-900">"Invoices"</h2>
            {if b.invoices.is_empty() {
                view! { <p class=ui::MUTED>"No invoices yet."</p> }.into_any()
            } else {
                view! {
                    <div class="overflow-x-auto">
                        <table class=ui::TABLE data-testid="invoices">
                            <thead>
                                <tr>
                                    <th class=ui::TH>"Number"</th>
                                    <th class=ui::TH>"Date"</th>
                                    <th class=ui::TH>"Amount"</th>
                                    <th class=ui::TH>"Status"</th>
                                    <th class=ui::TH>"Documents"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {b.invoices.into_iter().map(|i| view! {
                                    <tr>
                                        <td class=ui::TD>{i.number}</td>
                                        <td class=ui::TD>{i.date}</td>
                                        <td class=ui::TD>{i.amount}</td>
                                        <td class=ui::TD><span class=status_badge(&i.status)>{i.status.clone()}</span></td>
                                        <td class=ui::TD>
                                            <span class="flex gap-3">
                                                {i.hosted_url.map(|u| view! { <a class=ui::LINK href=u target="_blank" rel="noopener">"View"</a> })}
                                                {i.pdf_url.map(|u| view! { <a class=ui::LINK href=u target="_blank" rel="noopener">"PDF"</a> })}
                                            </span>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn CurrentSubscription(
    s: SubscriptionView,
    can_manage: bool,
    plans: Vec<crate::api::billing::PlanView>,
    cancel: ServerAction<CancelSubscription>,
    resume: ServerAction<ResumeSubscription>,
    change: ServerAction<ChangePlan>,
) -> impl IntoView {
    let cancel_error = action_error(cancel);
    let resume_error = action_error(resume);
    let change_error = action_error(change);
    let others: Vec<_> = plans.into_iter().filter(|p| Some(&p.id) != s.plan_id.as_ref()).collect();
    let past_due = s.status == "past_due" || s.status == "unpaid";
    view! {
        <section class=ui::CARD data-testid="subscription">
            <div class="flex flex-wrap items-center gap-3">
                <h2 class=ui::SUBHEADING>{s.plan_name.clone()}</h2>
                <span class=status_badge(&s.status) data-testid="subscription-status">{s.status_label.clone()}</span>
            </div>
            <p class="mt-1 text-sm text-gray-700">{s.price.clone()}</p>
            <dl class="mt-4 grid grid-cols-1 gap-2 text-sm md:grid-cols-3">
                {s.trial_end.clone().map(|t| view! { <div><dt class=ui::MUTED>"Trial ends"</dt><dd>{t}</dd></div> })}
                {s.next_invoice.clone().map(|n| view! { <div><dt class=ui::MUTED>"Next invoice"</dt><dd data-testid="next-invoice">{n}</dd></div> })}
                {(s.cancel_at_period_end && s.live).then(|| view! {
                    <div><dt class=ui::MUTED>"Ends"</dt><dd data-testid="ends">{s.period_end.clone().unwrap_or_default()}</dd></div>
                })}
                {s.ended.clone().map(|e| view! { <div><dt class=ui::MUTED>"Ended"</dt><dd>{e}</dd></div> })}
            </dl>
            {past_due.then(|| view! {
                <p class="mt-4 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800" role="alert">
                    "Your last payment failed. "
                    <a class=ui::LINK href="/billing/payment-methods">"Update your card"</a>
                    " and the unpaid invoice is paid at once."
                </p>
            })}
            {(can_manage && s.live).then(|| view! {
                <div class="mt-6 flex flex-wrap items-end gap-6">
                    <FormError error=cancel_error/>
                    <FormError error=resume_error/>
                    {if s.cancel_at_period_end {
                        view! {
                            <ActionForm action=resume>
                                <button type="submit" class=ui::BUTTON>"Resume subscription"</button>
                            </ActionForm>
                        }.into_any()
                    } else {
                        view! {
                            <ActionForm action=cancel>
                                <button type="submit" class=ui::BUTTON_QUIET>"Cancel at period end"</button>
                            </ActionForm>
                        }.into_any()
                    }}
                    {(!others.is_empty()).then(|| view! {
                        <ActionForm action=change attr:class="flex flex-wrap items-end gap-2">
                            <div>
                                <label for="change-plan" class=ui::LABEL>"Change plan"</label>
                                <select id="change-plan" name="plan_id" class=ui::INPUT>
                                    {others.iter().map(|p| view! { <option value=p.id.clone()>{format!("{} — {}", p.name, p.price)}</option> }).collect_view()}
                                </select>
                            </div>
                            <button type="submit" class=ui::BUTTON_QUIET>"Change"</button>
                        </ActionForm>
                    })}
                    <a class=ui::LINK href="/billing/payment-methods">"Payment methods"</a>
                </div>
                <FormError error=change_error/>
            })}
        </section>
    }
}

#[component]
pub fn PaymentMethodsPage() -> impl IntoView {
    let add = ServerAction::<AddCard>::new();
    let set_default = ServerAction::<SetDefaultCard>::new();
    let remove = ServerAction::<RemoveCard>::new();
    let query = use_query_map();
    let data = Resource::new(
        move || (query.read().get("setup"), set_default.version().get(), remove.version().get()),
        |(setup, ..)| load_payment_methods(setup),
    );
    view! {
        <Title text="Payment methods"/>
        <div class="flex flex-col gap-6">
            <div>
                <h1 class=ui::HEADING>"Payment methods"</h1>
                <p class=ui::MUTED><a class=ui::LINK href="/billing">"Back to billing"</a></p>
            </div>
            <Loaded data view=move |m| view! { <Cards m add set_default remove/> }/>
        </div>
    }
}

#[component]
fn Cards(
    m: PaymentMethods,
    add: ServerAction<AddCard>,
    set_default: ServerAction<SetDefaultCard>,
    remove: ServerAction<RemoveCard>,
) -> impl IntoView {
    let add_error = action_error(add);
    let default_error = action_error(set_default);
    let remove_error = action_error(remove);
    let can_manage = m.can_manage;
    view! {
        {m.notice.map(|n| view! { <Notice>{n}</Notice> })}
        {m.problem.map(|p| view! { <Problem>{p}</Problem> })}
        <section class=ui::CARD>
            <FormError error=default_error/>
            <FormError error=remove_error/>
            {if m.cards.is_empty() {
                view! { <p class=ui::MUTED>"No saved cards."</p> }.into_any()
            } else {
                view! {
                    <ul class="flex flex-col gap-3" data-testid="cards">
                        {m.cards.into_iter().map(|c| view! { <CardLine c can_manage set_default remove/> }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {can_manage.then(|| view! {
                <div class="mt-6">
                    <FormError error=add_error/>
                    <ActionForm action=add>
                        <button type="submit" class=ui::BUTTON>"Add a card"</button>
                    </ActionForm>
                    <p class="mt-2 text-xs text-gray-500">"You enter the card on Stripe's secure page."</p>
                </div>
            })}
        </section>
    }
}

#[component]
fn CardLine(
    c: CardView,
    can_manage: bool,
    set_default: ServerAction<SetDefaultCard>,
    remove: ServerAction<RemoveCard>,
) -> impl IntoView {
    let id = c.id.clone();
    view! {
        <li class="flex flex-wrap items-center gap-4 border-b border-gray-100 pb-3">
            <span class="font-mono">{c.label.clone()}</span>
            <span class=ui::MUTED>{format!("expires {}", c.expires)}</span>
            {c.is_default.then(|| view! { <span class=ui::BADGE_OK>"Default"</span> })}
            {(can_manage && !c.is_default).then(|| view! {
                <ActionForm action=set_default>
                    <input type="hidden" name="card_id" value=c.id.clone()/>
                    <button type="submit" class=ui::BUTTON_QUIET>"Make default"</button>
                </ActionForm>
            })}
            {can_manage.then(|| view! {
                <ActionForm action=remove>
                    <input type="hidden" name="card_id" value=id.clone()/>
                    <button type="submit" class=ui::BUTTON_QUIET>"Remove"</button>
                </ActionForm>
            })}
        </li>
    }
}
