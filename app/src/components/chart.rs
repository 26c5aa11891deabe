//! A bar chart of payment outcomes per day, drawn as SVG on the server (no JavaScript needed).

use leptos::prelude::*;

use crate::api::overview::DayView;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 150.0;
/// Tailwind's green-600 and red-600, as the legend's classes show them.
const SUCCEEDED: &str = "#16a34a";
const FAILED: &str = "#dc2626";

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
            let tick = (i % 5 == 0).then(|| {
                view! { <text x=x y=HEIGHT + 16.0 font-size="10" fill="#6b7280">{d.day.clone()}</text> }
            });
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
            <svg viewBox=format!("0 0 {WIDTH} {}", HEIGHT + 20.0) class="w-full" role="img" aria-label=summary.clone()>
                <line x1="0" y1=HEIGHT x2=WIDTH y2=HEIGHT stroke="#d1d5db"></line>
                {bars}
            </svg>
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
            let tick = (i % 5 == 0).then(|| {
                view! { <text x=x y=HEIGHT + 16.0 font-size="10" fill="#6b7280">{day.clone()}</text> }
            });
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
            <svg viewBox=format!("0 0 {WIDTH} {}", HEIGHT + 20.0) class="w-full" role="img" aria-label=caption.clone()>
                <line x1="0" y1=HEIGHT x2=WIDTH y2=HEIGHT stroke="#d1d5db"></line>
                {bars}
            </svg>
            <figcaption class="mt-2 text-xs text-gray-600">{caption}</figcaption>
        </figure>
    }
}
