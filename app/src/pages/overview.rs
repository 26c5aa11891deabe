use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::overview::{AlertView, Overview, RateView, TenantHealthView, load_admin_dashboard, load_tenant_overview},
    components::{chart::OutcomeChart, status::Loaded, ui},
};

fn rate_cell(rate: RateView) -> impl IntoView {
    let class = if rate.alarming { ui::BADGE_WAIT } else { ui::BADGE };
    view! {
        <span class=class title=format!("{} payments, {} failed", rate.total, rate.failed)>
            {rate.success_label()}
        </span>
        <span class=ui::MUTED>{format!(" of {}", rate.total)}</span>
    }
}

fn yes_no(on: bool, yes: &'static str, no: &'static str) -> impl IntoView {
    if on {
        view! { <span class=ui::BADGE_OK>{yes}</span> }
    } else {
        view! { <span class=ui::BADGE_WAIT>{no}</span> }
    }
}

fn stripe_cell(t: &TenantHealthView) -> AnyView {
    match &t.stripe_account {
        None => view! { <span class=ui::BADGE>"Not connected"</span> }.into_any(),
        Some(account) => view! {
            <span class="block font-mono text-xs">{account.clone()}</span>
            {yes_no(t.charges_enabled, "Charges", "No charges")}
            " "
            {yes_no(t.payouts_enabled, "Payouts", "No payouts")}
            {(t.open_requirements > 0).then(|| view! { <span class="block text-xs text-red-700">{format!("{} requirement(s) open", t.open_requirements)}</span> })}
        }
        .into_any(),
    }
}

fn subscription_cell(t: &TenantHealthView) -> AnyView {
    let paying = format!("{} paying", t.subscriptions_paying);
    if t.subscriptions_past_due > 0 {
        view! {
            <span class="flex flex-wrap gap-2">
                <span>{paying}</span>
                <span class=ui::BADGE_WAIT>{format!("{} past due", t.subscriptions_past_due)}</span>
            </span>
        }
        .into_any()
    } else {
        view! { <span>{paying}</span> }.into_any()
    }
}

fn webhook_cell(t: &TenantHealthView) -> AnyView {
    match t.webhook_endpoint {
        None => view! { <span class=ui::MUTED>"No endpoint"</span> }.into_any(),
        Some(false) => view! { <span class=ui::BADGE_WAIT>"Disabled"</span> }.into_any(),
        Some(true) => rate_cell(t.webhooks_24h).into_any(),
    }
}

#[component]
fn Alerts(alerts: Vec<AlertView>) -> impl IntoView {
    view! {
        <section class=ui::CARD>
            <h2 class="mb-4 text-lg font-semibold text-gray-900">"Alerts"</h2>
            {if alerts.is_empty() {
                view! { <p class=ui::MUTED>"No alerts."</p> }.into_any()
            } else {
                view! {
                    <ul class="flex flex-col gap-2 text-sm" data-testid="alerts">
                        {alerts.into_iter().map(|a| view! {
                            <li class="rounded-md border border-red-200 bg-red-50 px-3 py-2">
                                <span class="font-semibold">{a.kind}</span>
                                {a.tenant.map(|t| format!(" · {t}"))}
                                <span class=ui::MUTED>{format!(" · {}", a.at)}</span>
                                <span class="block">{a.message}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn Chart(title: &'static str, days: Vec<crate::api::overview::DayView>) -> impl IntoView {
    view! {
        <section class=ui::CARD>
            <h2 class="mb-4 text-lg font-semibold text-gray-900">{title}</h2>
            <OutcomeChart days/>
        </section>
    }
}

/// "Live data · Show test data": payment figures are of one mode at a time.
#[component]
fn ModeSwitch(livemode: bool, other: (&'static str, &'static str)) -> impl IntoView {
    view! {
        <p class="text-sm" data-testid="mode">
            <span class=if livemode { ui::BADGE_OK } else { ui::BADGE_WAIT }>{if livemode { "Live data" } else { "Test data" }}</span>
            " "
            <a class=ui::LINK href=format!("?mode={}", other.0)>{other.1}</a>
        </p>
    }
}

#[component]
pub fn AdminDashboardPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(move || query.read().get("mode"), load_admin_dashboard);
    view! {
        <Title text="Dashboard"/>
        <Loaded data view=|o| view! { <AdminDashboard o/> }/>
    }
}

#[component]
fn AdminDashboard(o: Overview) -> impl IntoView {
    let other = o.other_mode();
    view! {
        <div class="flex flex-col gap-6">
            <h1 class=ui::HEADING>"Platform health"</h1>
            <ModeSwitch livemode=o.livemode other/>
            <section class=ui::CARD>
                <h2 class="mb-4 text-lg font-semibold text-gray-900">"Tenants"</h2>
                <div class="overflow-x-auto">
                    <table class=ui::TABLE data-testid="tenant-health">
                        <thead>
                            <tr>
                                <th class=ui::TH>"Tenant"</th>
                                <th class=ui::TH>"Stripe"</th>
                                <th class=ui::TH>"Payments 24 h"</th>
                                <th class=ui::TH>"Payments 30 days"</th>
                                <th class=ui::TH>"Subscriptions"</th>
                                <th class=ui::TH>"Webhooks 24 h"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {o.tenants.into_iter().map(|t| view! {
                                <tr>
                                    <td class=ui::TD>
                                        <span class="font-medium">{t.name.clone()}</span>
                                        <span class="block text-xs text-gray-500">{t.status.clone()}</span>
                                    </td>
                                    <td class=ui::TD>{stripe_cell(&t)}</td>
                                    <td class=ui::TD>{rate_cell(t.payments_24h)}</td>
                                    <td class=ui::TD>{rate_cell(t.payments_30d)}</td>
                                    <td class=ui::TD>{subscription_cell(&t)}</td>
                                    <td class=ui::TD>{webhook_cell(&t)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            </section>
            <Chart title="Payment outcomes, last 30 days" days=o.days/>
            <Alerts alerts=o.alerts/>
        </div>
    }
}

#[component]
pub fn TenantOverviewPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(move || query.read().get("mode"), load_tenant_overview);
    view! {
        <Title text="Overview"/>
        <Loaded data view=|o| view! { <TenantOverview o/> }/>
    }
}

#[component]
fn TenantOverview(o: Overview) -> impl IntoView {
    let (livemode, other) = (o.livemode, o.other_mode());
    let Some(t) = o.tenants.into_iter().next() else {
        return view! { <p class=ui::MUTED>"No tenant."</p> }.into_any();
    };
    view! {
        <div class="flex flex-col gap-6">
            <section>
                <h1 class=ui::HEADING data-testid="tenant-name">{t.name.clone()}</h1>
                <p class=ui::MUTED>{format!("Status: {}", t.status)}</p>
                <ModeSwitch livemode other/>
            </section>
            <div class="grid grid-cols-1 gap-4 md:grid-cols-3">
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"Stripe"</h2>
                    <div class="mt-2 text-sm">{stripe_cell(&t)}</div>
                    <p class="mt-2 text-sm"><a class=ui::LINK href="/settings/stripe">"Stripe settings"</a></p>
                </section>
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"Payments"</h2>
                    <p class="mt-2 text-sm">"Last 24 hours: " {rate_cell(t.payments_24h)}</p>
                    <p class="text-sm">"Last 30 days: " {rate_cell(t.payments_30d)}</p>
                    <p class="mt-2 text-sm">"Consultants' subscriptions: " {subscription_cell(&t)}</p>
                </section>
                <section class=ui::CARD>
                    <h2 class=ui::SUBHEADING>"Webhooks"</h2>
                    <p class="mt-2 text-sm">"Last 24 hours: " {webhook_cell(&t)}</p>
                    <p class="mt-2 text-sm"><a class=ui::LINK href="/settings/webhooks">"Webhook settings"</a></p>
                </section>
            </div>
            <Chart title="Payment outcomes, last 30 days" days=o.days/>
            <Alerts alerts=o.alerts/>
        </div>
    }
    .into_any()
}
