//! Reports of the money buyers moved, per day or month, currency and mode: the tenant's for its
//! owner and admins (`/reports`), the platform's for platform admins (`/admin/reports`). The
//! filter is a plain GET form and the chart is SVG drawn by the server, so both work without
//! JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use super::fees::FeeReports;
use crate::{
    api::{
        fees::load_consultant_fee_reports,
        reports::{ChartView, ReportLine, ReportView, load_platform_report, load_report},
    },
    components::{chart::GrossNetChart, status::Loaded, ui},
};

/// The query string's value of `key`, empty as none.
fn param(query: &leptos_router::params::ParamsMap, key: &str) -> Option<String> {
    query.get(key).filter(|v| !v.is_empty())
}

#[component]
pub fn ReportsPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(
        move || {
            let q = query.read();
            (param(&q, "period"), param(&q, "from"), param(&q, "to"), param(&q, "mode"))
        },
        |(period, from, to, mode)| load_report(period, from, to, mode),
    );
    let fees = Resource::new(|| (), |_| load_consultant_fee_reports());
    view! {
        <Title text="Reports"/>
        <Loaded data view=move |r| view! { <Report r action="/reports" tenant=None/> }/>
        <section class="mt-8 flex flex-col gap-4">
            <div>
                <h2 class=ui::SUBHEADING>"Consultants' fees"</h2>
                <p class=ui::MUTED>"What each consultant billed their clients, per month over the last twelve months (UTC)."</p>
            </div>
            <Loaded data=fees view=move |reports| view! { <FeeReports reports titled=true/> }/>
        </section>
    }
}

#[component]
pub fn PlatformReportsPage() -> impl IntoView {
    let query = use_query_map();
    let data = Resource::new(
        move || {
            let q = query.read();
            (param(&q, "period"), param(&q, "from"), param(&q, "to"), param(&q, "mode"), param(&q, "tenant"))
        },
        |(period, from, to, mode, tenant)| load_platform_report(period, from, to, mode, tenant),
    );
    view! {
        <Title text="Platform reports"/>
        <Loaded data view=move |r| {
            let tenant = use_query_map().read_untracked().get("tenant");
            view! { <Report r action="/admin/reports" tenant/> }
        }/>
    }
}

#[component]
fn Report(r: ReportView, action: &'static str, tenant: Option<String>) -> impl IntoView {
    let ReportView { whose, period, from, to, mode, lines, totals, charts, export_url } = r;
    view! {
        <div class="flex flex-col gap-6">
            <div>
                <h1 class=ui::HEADING>{format!("Reports: {whose}")}</h1>
                <p class=ui::MUTED>"Payments by the day they were paid, refunds by the day Stripe made them, disputes by the day they opened (UTC). Net is what is left to the tenant after refunds, disputes and the platform's fees."</p>
            </div>
            <form method="get" action=action class="grid grid-cols-1 gap-4 md:grid-cols-5" data-testid="report-filter">
                {tenant.map(|t| view! { <input type="hidden" name="tenant" value=t/> })}
                <div>
                    <label for="report-period" class=ui::LABEL>"By"</label>
                    <select id="report-period" name="period" class=ui::INPUT>
                        <option value="day" selected=period == "day">"Day"</option>
                        <option value="month" selected=period == "month">"Month"</option>
                    </select>
                </div>
                <div>
                    <label for="report-from" class=ui::LABEL>"From"</label>
                    <input id="report-from" type="date" name="from" value=from class=ui::INPUT/>
                </div>
                <div>
                    <label for="report-to" class=ui::LABEL>"Until"</label>
                    <input id="report-to" type="date" name="to" value=to class=ui::INPUT/>
                </div>
                <div>
                    <label for="report-mode" class=ui::LABEL>"Mode"</label>
                    <select id="report-mode" name="mode" class=ui::INPUT>
                        {["", "live", "test"].into_iter().map(|m| view! {
                            <option value=m selected=mode == m>{if m.is_empty() { "Both" } else { m }}</option>
                        }).collect_view()}
                    </select>
                </div>
                <div class="flex items-end gap-3">
                    <button type="submit" class=ui::BUTTON_QUIET>"Show"</button>
                    <a class=ui::LINK href=export_url download rel="external">"Export CSV"</a>
                </div>
            </form>
            {if lines.is_empty() {
                view! { <section class=ui::CARD><p class=ui::MUTED>"No money moved in these days."</p></section> }.into_any()
            } else {
                view! {
                    {charts.into_iter().map(|chart| view! { <Chart chart/> }).collect_view()}
                    <section class=ui::CARD>
                        <table class=ui::TABLE data-testid="report">
                            <thead><tr>
                                <th class=ui::TH>"Period"</th><th class=ui::TH>"Mode"</th><th class=ui::TH>"Currency"</th>
                                <th class=ui::TH>"Payments"</th><th class=ui::TH>"Gross"</th><th class=ui::TH>"Refunds"</th>
                                <th class=ui::TH>"Disputes"</th><th class=ui::TH>"Platform fees"</th><th class=ui::TH>"Net"</th>
                            </tr></thead>
                            <tbody>
                                {lines.into_iter().map(|l| view! { <Line l bold=false/> }).collect_view()}
                                {totals.into_iter().map(|l| view! { <Line l bold=true/> }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                }.into_any()
            }}
        </div>
    }
}

#[component]
fn Line(l: ReportLine, bold: bool) -> impl IntoView {
    view! {
        <tr class=if bold { "font-semibold" } else { "" }>
            <td class=ui::TD>{l.period}</td><td class=ui::TD>{l.mode}</td><td class=ui::TD>{l.currency}</td>
            <td class=ui::TD>{l.payments}</td><td class=ui::TD>{l.gross}</td><td class=ui::TD>{l.refunds}</td>
            <td class=ui::TD>{l.disputes}</td><td class=ui::TD>{l.fees}</td><td class=ui::TD>{l.net}</td>
        </tr>
    }
}

#[component]
fn Chart(chart: ChartView) -> impl IntoView {
    let caption = format!("Gross and net per period, {}", chart.title);
    view! {
        <section class=ui::CARD data-testid="report-chart">
            <h2 class=ui::SUBHEADING>{chart.title}</h2>
            <GrossNetChart bars=chart.bars caption/>
        </section>
    }
}
