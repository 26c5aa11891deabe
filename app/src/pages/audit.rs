use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_query_map};

use crate::{
    api::overview::{AuditRow, load_audit_log},
    components::{status::Loaded, ui},
};

const ACTIONS: [(&str, &str); 5] = [
    ("", "Everything"),
    ("api_key.", "API keys"),
    ("stripe.", "Stripe connection"),
    ("webhook.", "Webhooks"),
    ("payment.", "Payments"),
];

/// The audit log with filters, at `/admin/audit` (every tenant) and `/audit` (one's own).
/// The filters are a plain GET form, so they work without JavaScript.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let param = move |k: &str| query.read().get(k).filter(|v| !v.is_empty());
    let admin = move || location.pathname.get().starts_with("/admin");
    let data = Resource::new(
        move || (admin(), param("tenant"), param("action"), param("actor"), param("since"), param("until")),
        |(platform, tenant, action, actor, since, until)| load_audit_log(platform, tenant, action, actor, since, until),
    );
    view! {
        <Title text="Audit log"/>
        <div class="flex flex-col gap-6">
            <h1 class=ui::HEADING>"Audit log"</h1>
            <form method="get" class="grid grid-cols-1 gap-4 md:grid-cols-3" data-testid="audit-filters">
                {move || admin().then(|| view! {
                    <div>
                        <label for="f-tenant" class=ui::LABEL>"Tenant"</label>
                        <input id="f-tenant" name="tenant" value=param("tenant").unwrap_or_default() class=ui::INPUT/>
                    </div>
                })}
                <div>
                    <label for="f-action" class=ui::LABEL>"About"</label>
                    <select id="f-action" name="action" class=ui::INPUT>
                        {move || ACTIONS.iter().map(|(value, label)| {
                            let selected = param("action").unwrap_or_default() == *value;
                            view! { <option value=*value selected=selected>{*label}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="f-actor" class=ui::LABEL>"Who"</label>
                    <input id="f-actor" name="actor" value=move || param("actor").unwrap_or_default() class=ui::INPUT/>
                </div>
                <div>
                    <label for="f-since" class=ui::LABEL>"From"</label>
                    <input id="f-since" name="since" type="date" value=move || param("since").unwrap_or_default() class=ui::INPUT/>
                </div>
                <div>
                    <label for="f-until" class=ui::LABEL>"To"</label>
                    <input id="f-until" name="until" type="date" value=move || param("until").unwrap_or_default() class=ui::INPUT/>
                </div>
                <div class="flex items-end"><button type="submit" class=ui::BUTTON>"Filter"</button></div>
            </form>
            <Loaded data view=|rows| view! { <Entries rows/> }/>
        </div>
    }
}

#[component]
fn Entries(rows: Vec<AuditRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class=ui::MUTED>"No entries match."</p> }.into_any();
    }
    view! {
        <section class=ui::CARD>
            <div class="overflow-x-auto">
                <table class=ui::TABLE data-testid="audit-log">
                    <thead>
                        <tr>
                            <th class=ui::TH>"When"</th>
                            <th class=ui::TH>"Tenant"</th>
                            <th class=ui::TH>"Who"</th>
                            <th class=ui::TH>"What"</th>
                            <th class=ui::TH>"On"</th>
                            <th class=ui::TH>"Why"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows.into_iter().map(|r| view! {
                            <tr>
                                <td class=ui::TD>{r.at}</td>
                                <td class=ui::TD>{r.tenant.unwrap_or_default()}</td>
                                <td class=ui::TD>{r.actor}</td>
                                <td class=ui::TD><code class="font-mono">{r.action}</code></td>
                                <td class=ui::TD>{r.target.unwrap_or_default()}</td>
                                <td class=ui::TD>{r.reason.unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}
