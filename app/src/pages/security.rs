use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_query_map};

use crate::{
    api::security::{SecurityView, load_security},
    components::{status::Loaded, ui},
};

const SEVERITIES: [(&str, &str); 4] =
    [("", "Every severity"), ("high", "High"), ("warning", "Warning"), ("info", "Info")];

fn severity_badge(severity: &str) -> &'static str {
    match severity {
        "high" => ui::BADGE_HIGH,
        "warning" => ui::BADGE_WAIT,
        _ => ui::BADGE,
    }
}

/// Payment security, at `/admin/security` (every tenant) and `/security` (one's own tenant).
/// The severity filter is a plain GET form, so it works without JavaScript.
#[component]
pub fn SecurityPage() -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let admin = move || location.pathname.get().starts_with("/admin");
    let severity = move || query.read().get("severity").filter(|v| !v.is_empty());
    let data = Resource::new(move || (admin(), severity()), |(platform, severity)| load_security(platform, severity));
    view! {
        <Title text="Payment security"/>
        <div class="flex flex-col gap-6">
            <div>
                <h1 class=ui::HEADING>"Payment security"</h1>
                <p class=ui::MUTED>"Suspicious activity around payments, and payments Stripe Radar rated above normal risk. High-severity events are also emailed to platform admins."</p>
            </div>
            <form method="get" class="flex flex-wrap items-end gap-4" data-testid="security-filters">
                <div>
                    <label for="f-severity" class=ui::LABEL>"Severity"</label>
                    <select id="f-severity" name="severity" class=ui::INPUT>
                        {move || SEVERITIES.iter().map(|(value, label)| {
                            let selected = severity().unwrap_or_default() == *value;
                            view! { <option value=*value selected=selected>{*label}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <button type="submit" class=ui::BUTTON>"Filter"</button>
            </form>
            <Loaded data view=move |v| view! { <Security v show_tenant=admin()/> }/>
        </div>
    }
}

#[component]
fn Security(v: SecurityView, show_tenant: bool) -> impl IntoView {
    view! {
        <section class="grid grid-cols-1 gap-4 md:grid-cols-3" data-testid="security-counts">
            <div class=ui::CARD><p class=ui::MUTED>"High, last 24 hours"</p><p class="text-3xl font-semibold text-red-700">{v.high_last_day}</p></div>
            <div class=ui::CARD><p class=ui::MUTED>"Warnings, last 24 hours"</p><p class="text-3xl font-semibold text-gray-900">{v.warning_last_day}</p></div>
            <div class=ui::CARD><p class=ui::MUTED>"Info, last 24 hours"</p><p class="text-3xl font-semibold text-gray-900">{v.info_last_day}</p></div>
        </section>
        <Listing title="High-risk payments" empty="No payment was rated above normal risk." is_empty=v.risky_payments.is_empty()>
            <table class=ui::TABLE data-testid="risky-payments">
                <thead><tr>
                    <th class=ui::TH>"Paid"</th>
                    {show_tenant.then(|| view! { <th class=ui::TH>"Tenant"</th> })}
                    <th class=ui::TH>"Lot"</th><th class=ui::TH>"Buyer"</th><th class=ui::TH>"Amount"</th>
                    <th class=ui::TH>"Radar risk"</th><th class=ui::TH>"Order"</th>
                </tr></thead>
                <tbody>
                    {v.risky_payments.into_iter().map(|p| view! {
                        <tr>
                            <td class=ui::TD>{p.paid_at}</td>
                            {show_tenant.then(|| view! { <td class=ui::TD>{p.tenant.clone()}</td> })}
                            <td class=ui::TD>{p.lot}</td><td class=ui::TD>{p.buyer}</td><td class=ui::TD>{p.amount}</td>
                            <td class=ui::TD><span class=ui::BADGE_HIGH>{p.risk}</span></td><td class=ui::TD>{p.status}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </Listing>
        <Listing title="Security events" empty="Nothing suspicious recorded." is_empty=v.events.is_empty()>
            <table class=ui::TABLE data-testid="security-events">
                <thead><tr>
                    <th class=ui::TH>"When"</th>
                    {show_tenant.then(|| view! { <th class=ui::TH>"Tenant"</th> })}
                    <th class=ui::TH>"Severity"</th><th class=ui::TH>"What"</th><th class=ui::TH>"Details"</th><th class=ui::TH>"From"</th>
                </tr></thead>
                <tbody>
                    {v.events.into_iter().map(|e| view! {
                        <tr>
                            <td class=ui::TD>{e.at}</td>
                            {show_tenant.then(|| view! { <td class=ui::TD>{e.tenant.clone().unwrap_or_default()}</td> })}
                            <td class=ui::TD><span class=severity_badge(&e.severity)>{e.severity.clone()}</span></td>
                            <td class=ui::TD><code class="font-mono">{e.kind}</code></td>
                            <td class=ui::TD>{e.message}</td>
                            <td class=ui::TD>{e.client_ip.unwrap_or_default()}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </Listing>
    }
}

/// A titled card holding a table, or a sentence when there is nothing to list.
#[component]
fn Listing(title: &'static str, empty: &'static str, is_empty: bool, children: Children) -> impl IntoView {
    view! {
        <section class=ui::CARD>
            <h2 class=ui::SUBHEADING>{title}</h2>
            {if is_empty {
                view! { <p class=ui::MUTED>{empty}</p> }.into_any()
            } else {
                view! { <div class="overflow-x-auto">{children()}</div> }.into_any()
            }}
        </section>
    }
}
