//! Connect's embedded components as the sandbox renders them from its state: `payouts` (the
//! balance, the payout schedule and the payouts), `payments` (what the account received) and
//! `notification-banner` (what Stripe still needs). Each is a page that Connect.js frames,
//! authorised only by an account session's client secret that enabled the component. Onboarding
//! and account management are the onboarding form (`pages`).

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, Query, State as AxumState},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::Value;

use crate::{
    api::connect,
    flows::civil_date,
    pages::{embedded_error, esc, money, page},
    shared::Shared,
    state::State,
};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/connect/embedded/{component}", get(component))
}

#[derive(Deserialize)]
struct SecretQuery {
    client_secret: Option<String>,
}

/// Tells the embedding page how tall the component is, as Connect.js sizes its frames.
const RESIZE: &str = "<script>parent.postMessage({source:'stripe-sandbox',type:'resize',height:document.documentElement.scrollHeight},'*')</script>";

async fn component(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(component): Path<String>,
    Query(q): Query<SecretQuery>,
) -> Response {
    let state = shared.lock();
    let Some(secret) = q.client_secret else { return embedded_error("Missing client secret.") };
    let name = component.replace('-', "_");
    let (title, render): (&str, fn(&State, &Value) -> String) = match name.as_str() {
        "payouts" => ("Payouts", payouts),
        "payments" => ("Payments", payments),
        "notification_banner" => ("Notifications", notifications),
        _ => return embedded_error("The sandbox does not offer this component."),
    };
    match connect::session_for(&state, &secret, &name) {
        Err(message) => embedded_error(message),
        Ok(session) => {
            let account = state.any(&session.account).cloned().unwrap_or_default();
            page(title, &format!("{}{RESIZE}", render(&state, &account))).into_response()
        }
    }
}

fn date(unix: i64) -> String {
    let (year, month, day) = civil_date(unix);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The balance per currency, the schedule, and the account's payouts, newest first.
fn payouts(state: &State, account: &Value) -> String {
    let id = account["id"].as_str().unwrap_or_default();
    let (available, pending) = state.balance_of(Some(id));
    let mut currencies: Vec<&String> = available.keys().chain(pending.keys()).collect();
    currencies.sort();
    currencies.dedup();
    let balances: String = if currencies.is_empty() {
        "<tr><td>Available</td><td class=\"r\" data-testid=\"available\">$0.00</td></tr>".to_owned()
    } else {
        currencies
            .into_iter()
            .map(|c| {
                let amount =
                    |m: &std::collections::BTreeMap<String, i64>| esc(&money(m.get(c).copied().unwrap_or(0), c));
                format!(
                    "<tr><td>Available</td><td class=\"r\" data-testid=\"available\">{}</td></tr>\
                     <tr><td>Pending</td><td class=\"r\" data-testid=\"pending\">{}</td></tr>",
                    amount(&available),
                    amount(&pending)
                )
            })
            .collect()
    };
    let schedule = &account["settings"]["payouts"]["schedule"];
    let schedule = match (schedule["interval"].as_str(), schedule["delay_days"].as_i64()) {
        (Some("manual"), _) => "Manual: payouts are made on request.".to_owned(),
        (Some(interval), Some(delay)) => {
            format!("Automatic, {interval}: payments are paid out {delay} days after they are made.")
        }
        _ => "Automatic.".to_owned(),
    };
    let rows: String = state
        .all("payout", Some(id))
        .iter()
        .map(|p| {
            format!(
                "<tr><td>{}</td><td>{}</td><td class=\"r\">{}</td></tr>",
                date(p["arrival_date"].as_i64().unwrap_or(0)),
                esc(&p["status"].as_str().unwrap_or_default().replace('_', " ")),
                esc(&money(p["amount"].as_i64().unwrap_or(0), p["currency"].as_str().unwrap_or("usd")))
            )
        })
        .collect();
    let list = if rows.is_empty() {
        "<p class=\"muted\">No payouts yet.</p>".to_owned()
    } else {
        format!(
            "<table data-testid=\"payout-list\"><tr><td>Arrives</td><td>Status</td><td class=\"r\">Amount</td></tr>{rows}</table>"
        )
    };
    format!(
        "<h1>Balance</h1><table data-testid=\"balance\">{balances}</table>\
         <p class=\"muted\">{schedule}</p>\
         <p class=\"muted\">Instant payouts are not available: the account has no debit card to receive them.</p>\
         <h1 style=\"margin-top:20px\">Payouts</h1>{list}",
        schedule = esc(&schedule)
    )
}

/// The payments the account received (destination charges arrive as `py_…` payments), newest
/// first, with the platform's fee and the net.
fn payments(state: &State, account: &Value) -> String {
    let id = account["id"].as_str().unwrap_or_default();
    let rows: String = state
        .all("charge", Some(id))
        .iter()
        .map(|c| {
            let currency = c["currency"].as_str().unwrap_or("usd");
            let amount = c["amount"].as_i64().unwrap_or(0);
            let refunded = c["amount_refunded"].as_i64().unwrap_or(0);
            let fee = c["application_fee"]
                .as_str()
                .and_then(|f| state.any(f))
                .and_then(|f| f["amount"].as_i64())
                .unwrap_or(0);
            let status = match (refunded, c["disputed"] == true) {
                (_, true) => "Disputed",
                (0, _) => "Succeeded",
                (r, _) if r >= amount => "Refunded",
                _ => "Partially refunded",
            };
            format!(
                "<tr><td>{}</td><td>{status}</td><td class=\"r\">{}</td><td class=\"r\">{}</td></tr>",
                date(c["created"].as_i64().unwrap_or(0)),
                esc(&money(amount, currency)),
                esc(&money(amount - fee, currency))
            )
        })
        .collect();
    if rows.is_empty() {
        return "<h1>Payments</h1><p class=\"muted\">No payments yet.</p>".to_owned();
    }
    format!(
        "<h1>Payments</h1><table data-testid=\"payment-list\"><tr><td>Date</td><td>Status</td><td class=\"r\">Amount</td><td class=\"r\">Net</td></tr>{rows}</table>"
    )
}

/// What Stripe needs from the account holder; nothing when nothing is due.
fn notifications(_state: &State, account: &Value) -> String {
    let requirements = &account["requirements"];
    let due: Vec<&str> = ["past_due", "currently_due"]
        .iter()
        .flat_map(|k| requirements[*k].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    if due.is_empty() && requirements["disabled_reason"].is_null() {
        return String::new();
    }
    let items: String = due.iter().map(|d| format!("<li>{}</li>", esc(&d.replace(['.', '_'], " ")))).collect();
    format!(
        "<div class=\"error\" role=\"alert\" data-testid=\"notification\"><strong>Stripe needs more information to keep \
         payments and payouts going.</strong><ul>{items}</ul></div>"
    )
}
