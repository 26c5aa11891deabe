//! A bar chart of payment outcomes per day, drawn as SVG on the server (no JavaScript needed).

use leptos::prelude::*;

use crate::api::overview::DayView;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 150.0;
/// Tailwind's green-600 and red-600, as the legend's classes show them.
const SUCCEEDED: &str = "#16a34a";
const FAILED: &str = "#dc2626";

/// The drawing area every chart here shares: bars standing on a baseline, named for screen
/// readers by `label`.
#[component]
fn Plot(label: String, children: Children) -> impl IntoView {
    view! {
        <svg viewBox=format!("0 0 {WIDTH} {}", HEIGHT + 20.0) class="w-full" role="img" aria-label=label>
            <line x1="0" y1=HEIGHT x2=WIDTH y2=HEIGHT stroke="#d1d5db"></line>
            {children()}
        </svg>
    }
}

/// The label under a bar at `x`, for every `every`-th bar (so labels never crowd).
fn tick(i: usize, every: usize, x: f64, label: &str) -> Option<impl IntoView + use<>> {
    let label = label.to_owned();
    i.is_multiple_of(every).then(|| view! { <text x=x y=HEIGHT + 16.0 font-size="10" fill="#6b7280">{label}</text> })
}

#[component]
pub fn OutcomeChart(days: Vec<DayView>) -> impl IntoView {
    let max = days.iter().map(|d| d.succeeded + d.failed).max().unwrap_or(0).max(1) as f64;
    let slot = WIDTH / days.len().max(1) as f64;
    let total_ok: i64 = days.iter().map(|d| d.succeeded).sum();
    let total_failed: i64 = days.iter().map(|d| d.failed).sum();
    let summary =
        format!("Payment outcomes over the last {} days: {total_ok} succeeded, {total_failed} failed.", days.len());
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = i as f64 * slot + slot * 0.15;
            let w = slot * 0.7;
            let ok_h = d.succeeded as f64 / max * HEIGHT;
            let failed_h = d.failed as f64 / max * HEIGHT;
            let label = format!("{}: {} succeeded, {} failed", d.day, d.succeeded, d.failed);
            let tick = tick(i, 5, x, &d.day);
            view! {
                <g>
                    <title>{label}</title>
                    <rect x=x y=HEIGHT - ok_h width=w height=ok_h fill=SUCCEEDED></rect>
                    <rect x=x y=HEIGHT - ok_h - failed_h width=w height=failed_h fill=FAILED></rect>
                    {tick}
                </g>
            }
        })
        .collect_view();
    view! {
        <figure>
            <Plot label=summary.clone()>{bars}</Plot>
            <figcaption class="mt-2 flex flex-wrap gap-4 text-xs text-gray-600">
                // Classes, not style attributes: the Content-Security-Policy allows no inline styles.
                <span><span class="text-green-600">"■"</span>" succeeded"</span>
                <span><span class="text-red-600">"■"</span>" failed"</span>
                <span data-testid="chart-summary">{summary}</span>
            </figcaption>
        </figure>
    }
}

/// Bars of an amount per day (e.g. MRR), labelled with the formatted amounts.
#[component]
pub fn AmountChart(
    /// (day, amount in minor units, formatted amount)
    days: Vec<(String, i64, String)>,
    caption: String,
) -> impl IntoView {
    let max = days.iter().map(|d| d.1).max().unwrap_or(0).max(1) as f64;
    let slot = WIDTH / days.len().max(1) as f64;
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, (day, amount, label))| {
            let x = i as f64 * slot + slot * 0.15;
            let h = *amount as f64 / max * HEIGHT;
            let tick = tick(i, 5, x, day);
            view! {
                <g>
                    <title>{format!("{day}: {label}")}</title>
                    <rect x=x y=HEIGHT - h width=slot * 0.7 height=h fill="#2563eb"></rect>
                    {tick}
                </g>
            }
        })
        .collect_view();
    view! {
        <figure>
            <Plot label=caption.clone()>{bars}</Plot>
            <figcaption class="mt-2 text-xs text-gray-600">{caption}</figcaption>
        </figure>
    }
}

/// Tailwind's blue-200 and blue-700, as the legend's classes show them.
const GROSS: &str = "#bfdbfe";
const NET: &str = "#1d4ed8";

/// Gross and net side by side per period (money reports), from bars already scaled to 0–100
/// of the tallest gross; each bar's title names its amounts for a pointer or a screen reader.
#[component]
pub fn GrossNetChart(bars: Vec<crate::api::reports::ChartBar>, caption: String) -> impl IntoView {
    let slot = WIDTH / bars.len().max(1) as f64;
    let every = bars.len().div_ceil(8).max(1);
    let drawn = bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let x = i as f64 * slot + slot * 0.1;
            let w = slot * 0.4;
            let gross_h = f64::from(b.gross_percent) / 100.0 * HEIGHT;
            let net_h = f64::from(b.net_percent) / 100.0 * HEIGHT;
            let tick = tick(i, every, x, &b.label);
            view! {
                <g>
                    <title>{format!("{}: gross {}, net {}", b.label, b.gross, b.net)}</title>
                    <rect x=x y=HEIGHT - gross_h width=w height=gross_h fill=GROSS></rect>
                    <rect x=x + w y=HEIGHT - net_h width=w height=net_h fill=NET></rect>
                    {tick}
                </g>
            }
        })
        .collect_view();
    view! {
        <figure>
            <Plot label=caption.clone()>{drawn}</Plot>
            <figcaption class="mt-2 flex flex-wrap gap-4 text-xs text-gray-600">
                <span><span class="text-blue-200">"■"</span>" gross"</span>
                <span><span class="text-blue-700">"■"</span>" net"</span>
                <span>{caption}</span>
            </figcaption>
        </figure>
    }
}
