//! The sandbox's stand-ins for Stripe's hosted pages: Checkout (with 3D Secure), Connect
//! onboarding (hosted through account links, embedded through account sessions, and the update
//! form of the embedded account management), the Express dashboard, OAuth, and hosted invoices.

use std::sync::Arc;

use axum::{
    Form, Router,
    extract::{Path, Query, State as AxumState},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    api::{billing, connect},
    flows::{self, Attempt},
    shared::{Shared, authenticate, error_response},
    state::{CardBehaviour, State},
    wire::{AUTHENTICATION_FAILED, GENERIC_DECLINE, Params, new_id, parse_form},
};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/checkout/{id}", get(checkout_page).post(checkout_pay))
        .route("/checkout/{id}/authenticate", get(challenge_for_session).post(authenticate_session))
        .route("/3ds/{pi}", get(challenge_for_intent).post(authenticate_intent))
        .route("/connect/onboarding/{token}", get(onboarding_link))
        .route("/connect/onboarding/form/{form}", axum::routing::post(onboarding_submit))
        .route("/connect/embedded", get(embedded_onboarding).post(embedded_submit))
        .route("/connect.js", get(connect_js))
        .route("/express/{token}", get(express_dashboard))
        .route("/oauth/authorize", get(oauth_page).post(oauth_decide))
        .route("/invoices/{id}", get(invoice_page))
        .route("/invoices/{id}/pdf", get(invoice_pdf))
        .route("/receipts/{id}", get(receipt_page))
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

/// `1234` in `usd` → `$12.34`.
pub fn money(amount: i64, currency: &str) -> String {
    let zero_decimal = matches!(currency, "jpy" | "krw" | "vnd" | "clp");
    let symbol = match currency {
        "usd" | "cad" | "aud" => "$",
        "eur" => "€",
        "gbp" => "£",
        "jpy" => "¥",
        _ => "",
    };
    let number =
        if zero_decimal { amount.to_string() } else { format!("{}.{:02}", amount / 100, (amount % 100).abs()) };
    if symbol.is_empty() { format!("{number} {}", currency.to_uppercase()) } else { format!("{symbol}{number}") }
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0}
.banner{background:#ffde92;color:#5a3d00;text-align:center;font-size:13px;padding:6px}
main{max-width:440px;margin:32px auto;background:#fff;border-radius:8px;box-shadow:0 2px 8px rgba(0,0,0,.08);padding:28px}
h1{font-size:20px;margin:0 0 4px} .muted{color:#697386;font-size:14px} .amount{font-size:32px;font-weight:600;margin:8px 0 20px}
label{display:block;font-size:14px;font-weight:500;margin:12px 0 4px} input,select{width:100%;box-sizing:border-box;padding:9px 10px;border:1px solid #cfd7df;border-radius:6px;font-size:15px}
.row{display:flex;gap:12px} .row>div{flex:1}
button{width:100%;margin-top:20px;padding:11px;border:0;border-radius:6px;background:#635bff;color:#fff;font-size:16px;font-weight:600;cursor:pointer}
button.secondary{background:#fff;color:#1a1f36;border:1px solid #cfd7df}
.error{background:#fdecea;color:#a41c1c;border-radius:6px;padding:10px;margin:12px 0;font-size:14px}
.ok{background:#e6f6ec;color:#1b5e20;border-radius:6px;padding:10px;margin:12px 0;font-size:14px}
table{width:100%;border-collapse:collapse;font-size:14px} td{padding:6px 0;border-bottom:1px solid #eef1f4} td.r{text-align:right}
.hint{font-size:12px;color:#697386;margin-top:16px;line-height:1.5} a{color:#635bff}
"#;

pub(crate) fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><div class=\"banner\">Stripe sandbox · test mode · nothing here moves real money</div><main>{body}</main></body></html>",
        esc(title)
    ))
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        page("Not found", &format!("<h1>{}</h1><p class=\"muted\">This link is not valid.</p>", esc(what))),
    )
        .into_response()
}

const TEST_CARDS_HINT: &str = "<p class=\"hint\">Test cards: 4242 4242 4242 4242 succeeds · 4000 0000 0000 0002 is declined · 4000 0000 0000 9995 has insufficient funds · 4000 0027 6000 3184 asks for 3D Secure · 4000 0000 0000 9235 succeeds at elevated risk · 4000 0000 0000 4954 is blocked by Radar. Any future expiry, any CVC.</p>";

// ---------------------------------------------------------------------------------- Checkout

fn checkout_form(session: &Value, error: Option<&str>) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    let currency = session["currency"].as_str().unwrap_or("usd");
    let mode = session["mode"].as_str().unwrap_or("payment");
    let items: String = session["_line_items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let interval =
                i["price"]["recurring"]["interval"].as_str().map(|iv| format!(" / {iv}")).unwrap_or_default();
            format!(
                "<tr><td>{} × {}</td><td class=\"r\">{}{}</td></tr>",
                esc(i["description"].as_str().unwrap_or("Item")),
                i["quantity"],
                money(i["amount_total"].as_i64().unwrap_or(0), currency),
                interval
            )
        })
        .collect();
    let trial = session["_subscription_data"]["trial_period_days"]
        .as_i64()
        .map(|d| format!("<p class=\"ok\">{d}-day free trial; you are charged when it ends.</p>"))
        .unwrap_or_default();
    let heading = match mode {
        "setup" => "Save a card for future payments".to_owned(),
        "subscription" => "Subscribe".to_owned(),
        _ => "Pay".to_owned(),
    };
    let amount = if mode == "setup" {
        String::new()
    } else {
        format!(
            "<div class=\"amount\" data-testid=\"amount\">{}</div>",
            money(session["amount_total"].as_i64().unwrap_or(0), currency)
        )
    };
    let email = session["customer_email"].as_str().unwrap_or_default();
    let email_field = if session["customer"].is_null() {
        format!(
            "<label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" value=\"{}\" required>",
            esc(email)
        )
    } else {
        String::new()
    };
    let cancel = session["cancel_url"]
        .as_str()
        .map(|u| format!("<p class=\"hint\"><a href=\"{}\">← Back</a></p>", esc(u)))
        .unwrap_or_default();
    let error = error.map(|e| format!("<div class=\"error\" role=\"alert\">{}</div>", esc(e))).unwrap_or_default();
    let button = match mode {
        "setup" => "Save card".to_owned(),
        "subscription" => "Subscribe".to_owned(),
        _ => format!("Pay {}", money(session["amount_total"].as_i64().unwrap_or(0), currency)),
    };
    format!(
        "<h1>{heading}</h1><p class=\"muted\">Remit · Stripe sandbox Checkout</p>{amount}<table>{items}</table>{trial}{error}\
         <form method=\"post\" action=\"/checkout/{id}\">{email_field}\
         <label for=\"card_number\">Card number</label><input id=\"card_number\" name=\"card_number\" inputmode=\"numeric\" autocomplete=\"cc-number\" placeholder=\"4242 4242 4242 4242\" required>\
         <div class=\"row\"><div><label for=\"expiry\">Expiry</label><input id=\"expiry\" name=\"expiry\" placeholder=\"MM / YY\" required></div>\
         <div><label for=\"cvc\">CVC</label><input id=\"cvc\" name=\"cvc\" placeholder=\"123\" required></div></div>\
         <label for=\"name\">Name on card</label><input id=\"name\" name=\"name\" autocomplete=\"cc-name\">\
         <button type=\"submit\">{button}</button></form>{cancel}{TEST_CARDS_HINT}"
    )
}

fn closed_session(session: &Value) -> Response {
    if session["status"] == "complete"
        && let Some(url) = session["success_url"].as_str()
    {
        return Redirect::to(&url.replace("{CHECKOUT_SESSION_ID}", session["id"].as_str().unwrap_or_default()))
            .into_response();
    }
    (
        StatusCode::GONE,
        page("Session expired", "<h1>This checkout session has expired</h1><p class=\"muted\">Return to the merchant's site to start again.</p>"),
    )
        .into_response()
}

async fn checkout_page(AxumState(shared): AxumState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    let Some(session) = state.get("checkout.session", &id, None).or_else(|| {
        // Sessions of connected accounts are reachable by id too.
        state.any(&id).filter(|s| s["object"] == "checkout.session")
    }) else {
        return not_found("No such checkout session");
    };
    if session["status"] != "open" {
        return closed_session(session);
    }
    page("Checkout", &checkout_form(session, None)).into_response()
}

#[derive(Deserialize)]
struct PayForm {
    email: Option<String>,
    card_number: String,
    expiry: String,
    #[serde(rename = "cvc")]
    _cvc: String,
    name: Option<String>,
}

fn success_redirect(session: &Value) -> Response {
    let url = session["success_url"].as_str().unwrap_or("/");
    Redirect::to(&url.replace("{CHECKOUT_SESSION_ID}", session["id"].as_str().unwrap_or_default())).into_response()
}

fn checkout_error(session: &Value, message: &str) -> Response {
    (StatusCode::PAYMENT_REQUIRED, page("Checkout", &checkout_form(session, Some(message)))).into_response()
}

/// Finishes a subscription-mode session with an accepted card (after 3DS if it needed it).
fn finish_subscription_checkout(
    state: &mut State,
    session_id: &str,
    pm_id: &str,
    email: Option<String>,
    name: Option<String>,
) -> Result<(), String> {
    let session = state.any(session_id).cloned().unwrap_or_default();
    let owner = state.owner(session_id);
    let customer_id = match session["customer"].as_str() {
        Some(c) => c.to_owned(),
        None => {
            let id = new_id("cus_");
            let customer = crate::objects::customer(&id, email.clone(), name.clone(), Default::default(), state.now());
            state.insert(owner.as_deref(), customer.clone());
            state.emit("customer.created", &customer, None, owner.as_deref());
            id
        }
    };
    flows::attach_payment_method(state, pm_id, &customer_id, true).map_err(|e| e.message)?;
    let item = session["_line_items"][0].clone();
    let price = state.any(item["price"]["id"].as_str().unwrap_or_default()).cloned().unwrap_or(item["price"].clone());
    let data = &session["_subscription_data"];
    let subscription = billing::start_subscription(
        state,
        owner.as_deref(),
        billing::NewSubscription {
            customer: &customer_id,
            price: &price,
            quantity: item["quantity"].as_i64().unwrap_or(1),
            trial_days: data["trial_period_days"].as_i64(),
            default_payment_method: Some(pm_id.to_owned()),
            metadata: data["metadata"].as_object().cloned().unwrap_or_default(),
        },
    );
    let invoice = subscription["latest_invoice"].as_str().map(str::to_owned);
    state.update(session_id, |s| {
        s["customer"] = json!(customer_id);
        s["subscription"] = subscription["id"].clone();
        s["invoice"] = json!(invoice);
    });
    flows::complete_session(state, session_id, json!({ "email": email, "name": name }));
    Ok(())
}

/// Finishes a setup-mode session: the card is saved on the customer.
fn finish_setup_checkout(
    state: &mut State,
    session_id: &str,
    pm_id: &str,
    email: Option<String>,
    name: Option<String>,
) -> Result<(), String> {
    let session = state.any(session_id).cloned().unwrap_or_default();
    let owner = state.owner(session_id);
    let customer = session["customer"].as_str().map(str::to_owned);
    let intent_id = new_id("seti_");
    let mut intent = crate::objects::setup_intent(&intent_id, customer.clone(), state.now());
    intent["payment_method"] = json!(pm_id);
    intent["status"] = json!("succeeded");
    state.insert(owner.as_deref(), intent.clone());
    if let Some(c) = &customer {
        flows::attach_payment_method(state, pm_id, c, false).map_err(|e| e.message)?;
    }
    state.emit("setup_intent.succeeded", &intent, None, owner.as_deref());
    state.update(session_id, |s| s["setup_intent"] = json!(intent_id));
    flows::complete_session(state, session_id, json!({ "email": email, "name": name }));
    Ok(())
}

async fn checkout_pay(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(id): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    shared.with_state(|state| {
        let Some(session) = state.any(&id).filter(|s| s["object"] == "checkout.session").cloned() else {
            return not_found("No such checkout session");
        };
        if session["status"] != "open" {
            return closed_session(&session);
        }
        let email = form
            .email
            .filter(|e| !e.trim().is_empty())
            .or_else(|| session["customer_email"].as_str().map(str::to_owned));
        if session["customer"].is_null() && email.is_none() {
            return checkout_error(&session, "Enter your email address.");
        }
        let pm = match flows::card_payment_method(
            state,
            &form.card_number,
            &form.expiry,
            form.name.clone(),
            email.clone(),
        ) {
            Ok(pm) => pm,
            Err(decline) => return checkout_error(&session, decline.message),
        };
        let pm_id = pm["id"].as_str().unwrap_or_default().to_owned();
        let details = json!({ "email": email, "name": form.name });
        match session["mode"].as_str() {
            Some("payment") => {
                let pi = match flows::session_payment_intent(state, &id) {
                    Ok(pi) => pi,
                    Err(err) => return checkout_error(&session, &err.message),
                };
                state.update(&id, |s| s["_pending_details"] = details.clone());
                match flows::attempt_payment(state, &pi, &pm_id, false) {
                    Ok(Attempt::Succeeded) => {
                        flows::complete_session(state, &id, details);
                        success_redirect(&session)
                    }
                    Ok(Attempt::RequiresAction) => Redirect::to(&format!("/3ds/{pi}")).into_response(),
                    Ok(Attempt::Failed(d)) => checkout_error(&session, d.message),
                    Err(err) => checkout_error(&session, &err.message),
                }
            }
            Some("subscription") => {
                let behaviour = state.cards.get(&pm_id).copied();
                let charges_now = session["_subscription_data"]["trial_period_days"].is_null();
                match behaviour {
                    Some(CardBehaviour::Declines(d)) => checkout_error(&session, d.message),
                    Some(CardBehaviour::FailsAfterAttach) if charges_now => {
                        checkout_error(&session, GENERIC_DECLINE.message)
                    }
                    Some(CardBehaviour::RequiresAuthentication) => {
                        state.update(&id, |s| {
                            s["_pending_payment_method"] = json!(pm_id);
                            s["_pending_details"] = details;
                        });
                        Redirect::to(&format!("/checkout/{id}/authenticate")).into_response()
                    }
                    _ => match finish_subscription_checkout(state, &id, &pm_id, email, form.name) {
                        Ok(()) => success_redirect(&session),
                        Err(message) => checkout_error(&session, &message),
                    },
                }
            }
            _ => {
                if let Some(CardBehaviour::Declines(d)) = state.cards.get(&pm_id).copied() {
                    return checkout_error(&session, d.message);
                }
                match finish_setup_checkout(state, &id, &pm_id, email, form.name) {
                    Ok(()) => success_redirect(&session),
                    Err(message) => checkout_error(&session, &message),
                }
            }
        }
    })
}

fn challenge_page(action: &str, amount: &str) -> Html<String> {
    page(
        "Authenticate payment",
        &format!(
            "<h1>3D Secure authentication</h1><p class=\"muted\">Your bank asks you to confirm this payment of {}.</p>\
             <form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"decision\" value=\"approve\"><button type=\"submit\">Complete authentication</button></form>\
             <form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"decision\" value=\"fail\"><button class=\"secondary\" type=\"submit\">Fail authentication</button></form>",
            esc(amount)
        ),
    )
}

#[derive(Deserialize)]
struct Decision {
    decision: String,
}

fn session_of_intent(state: &State, pi: &str) -> Option<Value> {
    state.all("checkout.session", state.owner(pi).as_deref()).into_iter().find(|s| s["payment_intent"] == pi)
}

async fn challenge_for_intent(AxumState(shared): AxumState<Arc<Shared>>, Path(pi): Path<String>) -> Response {
    let state = shared.lock();
    match state.any(&pi).filter(|p| p["status"] == "requires_action") {
        Some(intent) => challenge_page(
            &format!("/3ds/{pi}"),
            &money(intent["amount"].as_i64().unwrap_or(0), intent["currency"].as_str().unwrap_or("usd")),
        )
        .into_response(),
        None => not_found("No payment is waiting for authentication"),
    }
}

async fn authenticate_intent(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(pi): Path<String>,
    Form(d): Form<Decision>,
) -> Response {
    shared.with_state(|state| {
        let Some(intent) = state.any(&pi).filter(|p| p["status"] == "requires_action").cloned() else {
            return not_found("No payment is waiting for authentication");
        };
        let pm = intent["payment_method"].as_str().unwrap_or_default().to_owned();
        let session = session_of_intent(state, &pi);
        if d.decision != "approve" {
            flows::fail_payment(state, &pi, &pm, AUTHENTICATION_FAILED, None);
            return match session {
                Some(s) => checkout_error(&s, AUTHENTICATION_FAILED.message),
                None => page("Authentication failed", "<h1>Authentication failed</h1>").into_response(),
            };
        }
        match flows::attempt_payment(state, &pi, &pm, true) {
            Ok(Attempt::Succeeded) => match session {
                Some(s) => {
                    let id = s["id"].as_str().unwrap_or_default().to_owned();
                    flows::complete_session(state, &id, s["_pending_details"].clone());
                    success_redirect(&s)
                }
                None => page("Payment complete", "<h1>Payment complete</h1>").into_response(),
            },
            Ok(Attempt::Failed(decline)) => match session {
                Some(s) => checkout_error(&s, decline.message),
                None => page("Payment failed", &format!("<h1>{}</h1>", esc(decline.message))).into_response(),
            },
            Ok(Attempt::RequiresAction) => Redirect::to(&format!("/3ds/{pi}")).into_response(),
            Err(err) => page("Payment failed", &format!("<h1>{}</h1>", esc(&err.message))).into_response(),
        }
    })
}

async fn challenge_for_session(AxumState(shared): AxumState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    match state.any(&id).filter(|s| s["_pending_payment_method"].is_string() && s["status"] == "open") {
        Some(s) => challenge_page(
            &format!("/checkout/{id}/authenticate"),
            &money(s["amount_total"].as_i64().unwrap_or(0), s["currency"].as_str().unwrap_or("usd")),
        )
        .into_response(),
        None => not_found("No payment is waiting for authentication"),
    }
}

async fn authenticate_session(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(id): Path<String>,
    Form(d): Form<Decision>,
) -> Response {
    shared.with_state(|state| {
        let Some(session) =
            state.any(&id).filter(|s| s["_pending_payment_method"].is_string() && s["status"] == "open").cloned()
        else {
            return not_found("No payment is waiting for authentication");
        };
        state.update(&id, |s| {
            if let Some(m) = s.as_object_mut() {
                m.remove("_pending_payment_method");
            }
        });
        if d.decision != "approve" {
            return checkout_error(&session, AUTHENTICATION_FAILED.message);
        }
        let pm = session["_pending_payment_method"].as_str().unwrap_or_default();
        let details = &session["_pending_details"];
        let email = details["email"].as_str().map(str::to_owned);
        let name = details["name"].as_str().map(str::to_owned);
        match finish_subscription_checkout(state, &id, pm, email, name) {
            Ok(()) => success_redirect(&session),
            Err(message) => checkout_error(&session, &message),
        }
    })
}

// ---------------------------------------------------------------------------------- Connect

fn onboarding_fields(account: &Value, action: &str, hidden: &str, error: Option<&str>) -> String {
    let error = error.map(|e| format!("<div class=\"error\" role=\"alert\">{}</div>", esc(e))).unwrap_or_default();
    let due = account["requirements"]["currently_due"].as_array().map(|a| a.len()).unwrap_or(0);
    format!(
        "<h1>Set up payouts</h1><p class=\"muted\">Account {} · {} item(s) to provide</p>{error}\
         <form method=\"post\" action=\"{action}\">{hidden}\
         <label for=\"business_type\">Business type</label><select id=\"business_type\" name=\"business_type\"><option value=\"individual\">Individual</option><option value=\"company\">Company</option></select>\
         <div class=\"row\"><div><label for=\"first_name\">First name</label><input id=\"first_name\" name=\"first_name\" required></div>\
         <div><label for=\"last_name\">Last name</label><input id=\"last_name\" name=\"last_name\" required></div></div>\
         <label for=\"dob\">Date of birth</label><input id=\"dob\" name=\"dob\" placeholder=\"DD/MM/YYYY\" value=\"01/01/1990\" required>\
         <label for=\"address_line1\">Address</label><input id=\"address_line1\" name=\"address_line1\" value=\"address_full_match\" required>\
         <div class=\"row\"><div><label for=\"city\">City</label><input id=\"city\" name=\"city\" value=\"San Francisco\" required></div>\
         <div><label for=\"postal_code\">Postal code</label><input id=\"postal_code\" name=\"postal_code\" value=\"94103\" required></div></div>\
         <div class=\"row\"><div><label for=\"routing_number\">Routing number</label><input id=\"routing_number\" name=\"routing_number\" value=\"110000000\"></div>\
         <div><label for=\"account_number\">Account number</label><input id=\"account_number\" name=\"account_number\" value=\"000123456789\"></div></div>\
         <label><input type=\"checkbox\" name=\"accept_tos\" value=\"yes\" checked style=\"width:auto\"> I agree to the Stripe Services Agreement</label>\
         <button type=\"submit\">Submit</button></form>\
         <p class=\"hint\">Leave the bank account empty to finish without payouts; untick the agreement to leave requirements open.</p>",
        esc(account["id"].as_str().unwrap_or_default()),
        due
    )
}

fn onboarding_details(mut form: Params) -> Result<flows::OnboardingDetails, String> {
    let mut text = |k: &str| form.str(k).ok().flatten().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let first_name = text("first_name").ok_or("Enter your first name.")?;
    let last_name = text("last_name").ok_or("Enter your last name.")?;
    let dob = text("dob").ok_or("Enter your date of birth.")?;
    let parts: Vec<i64> = dob.split('/').filter_map(|p| p.trim().parse().ok()).collect();
    let [day, month, year] = parts[..] else { return Err("Enter the date of birth as DD/MM/YYYY.".into()) };
    if !(1..=31).contains(&day) || !(1..=12).contains(&month) || !(1900..=2015).contains(&year) {
        return Err("Enter a valid date of birth (you must be at least 13).".into());
    }
    let routing = text("routing_number");
    let number = text("account_number");
    let bank_account = match (routing, number) {
        (Some(r), Some(n)) if r.len() == 9 && r.chars().all(|c| c.is_ascii_digit()) && n.len() >= 4 => Some((r, n)),
        (None, None) => None,
        _ => return Err("Enter a 9-digit routing number and an account number, or leave both empty.".into()),
    };
    Ok(flows::OnboardingDetails {
        business_type: text("business_type").unwrap_or_else(|| "individual".into()),
        first_name,
        last_name,
        dob: (day, month, year),
        address_line1: text("address_line1").ok_or("Enter your address.")?,
        city: text("city").ok_or("Enter your city.")?,
        postal_code: text("postal_code").ok_or("Enter your postal code.")?,
        bank_account,
        accept_tos: text("accept_tos").is_some(),
    })
}

async fn onboarding_link(AxumState(shared): AxumState<Arc<Shared>>, Path(token): Path<String>) -> Response {
    shared.with_state(|state| match connect::take_account_link(state, &token) {
        Ok(link) => {
            let form_token = new_id("");
            state.onboarding_forms.insert(form_token.clone(), (link.account.clone(), link.return_url.clone()));
            let account = state.any(&link.account).cloned().unwrap_or_default();
            page(
                "Set up payouts",
                &onboarding_fields(&account, &format!("/connect/onboarding/form/{form_token}"), "", None),
            )
            .into_response()
        }
        // Used or expired links send the person to the platform's refresh URL, as Stripe does.
        Err(Some(refresh_url)) => Redirect::to(&refresh_url).into_response(),
        Err(None) => not_found("No such account link"),
    })
}

async fn onboarding_submit(
    AxumState(shared): AxumState<Arc<Shared>>,
    Path(form_token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let params = Params::new(parse_form(&body).unwrap_or_default());
    shared.with_state(|state| {
        let Some((account, return_url)) = state.onboarding_forms.get(&form_token).cloned() else {
            return not_found("This onboarding form has expired");
        };
        match onboarding_details(params) {
            Err(message) => {
                let a = state.any(&account).cloned().unwrap_or_default();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    page(
                        "Set up payouts",
                        &onboarding_fields(&a, &format!("/connect/onboarding/form/{form_token}"), "", Some(&message)),
                    ),
                )
                    .into_response()
            }
            Ok(details) => match connect::submit(state, &account, details) {
                Ok(_) => {
                    state.onboarding_forms.remove(&form_token);
                    Redirect::to(&return_url).into_response()
                }
                Err(err) => {
                    page("Set up payouts", &format!("<div class=\"error\">{}</div>", esc(&err.message))).into_response()
                }
            },
        }
    })
}

#[derive(Deserialize)]
struct SecretQuery {
    client_secret: Option<String>,
    /// Set by the account-management component: the form to update a finished account.
    manage: Option<String>,
}

pub(crate) fn embedded_error(message: &str) -> Response {
    // Tells the embedding page (connect.js) that the session is no longer usable.
    let script = "<script>parent.postMessage({source:'stripe-sandbox',type:'session_invalid'},'*')</script>";
    (
        StatusCode::UNAUTHORIZED,
        page("Onboarding", &format!("<div class=\"error\" role=\"alert\">{}</div>{script}", esc(message))),
    )
        .into_response()
}

async fn embedded_onboarding(AxumState(shared): AxumState<Arc<Shared>>, Query(q): Query<SecretQuery>) -> Response {
    let state = shared.lock();
    let Some(secret) = q.client_secret else { return embedded_error("Missing client secret.") };
    match connect::session_account(&state, &secret) {
        Err(message) => embedded_error(message),
        Ok(session) => {
            let account = state.any(&session.account).cloned().unwrap_or_default();
            let managing = q.manage.is_some() && session.allows("account_management");
            if !managing
                && account["details_submitted"] == true
                && account["requirements"]["currently_due"].as_array().is_some_and(Vec::is_empty)
            {
                let script = "<script>parent.postMessage({source:'stripe-sandbox',type:'complete'},'*')</script>";
                return page(
                    "Onboarding",
                    &format!(
                        "<h1>You're all set</h1><p class=\"ok\">Payouts are enabled for this account.</p>{script}"
                    ),
                )
                .into_response();
            }
            let hidden = format!("<input type=\"hidden\" name=\"client_secret\" value=\"{}\">", esc(&secret));
            page("Onboarding", &onboarding_fields(&account, "/connect/embedded", &hidden, None)).into_response()
        }
    }
}

async fn embedded_submit(AxumState(shared): AxumState<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let mut params = Params::new(parse_form(&body).unwrap_or_default());
    let secret = params.str("client_secret").ok().flatten().unwrap_or_default();
    shared.with_state(|state| {
        let session = match connect::session_account(state, &secret) {
            Ok(s) => s,
            Err(message) => return embedded_error(message),
        };
        match onboarding_details(params) {
            Err(message) => {
                let a = state.any(&session.account).cloned().unwrap_or_default();
                let hidden = format!("<input type=\"hidden\" name=\"client_secret\" value=\"{}\">", esc(&secret));
                (StatusCode::UNPROCESSABLE_ENTITY, page("Onboarding", &onboarding_fields(&a, "/connect/embedded", &hidden, Some(&message)))).into_response()
            }
            Ok(mut details) => {
                if !session.external_account_collection {
                    details.bank_account = None;
                }
                match connect::submit(state, &session.account, details) {
                    Ok(_) => {
                        let script = "<script>parent.postMessage({source:'stripe-sandbox',type:'exit'},'*')</script>";
                        page("Onboarding", &format!("<h1>Details submitted</h1><p class=\"ok\">Thank you. You can close this step.</p>{script}")).into_response()
                    }
                    Err(err) => embedded_error(&err.message),
                }
            }
        }
    })
}

/// The sandbox's Connect.js: the same `StripeConnect.init({ publishableKey, fetchClientSecret })`
/// API as Stripe's, rendering each component (onboarding, account management, payouts, payments,
/// notification banner) as the sandbox's page for it in an iframe.
async fn connect_js(AxumState(shared): AxumState<Arc<Shared>>) -> Response {
    let base = shared.lock().config.public_url.trim_end_matches('/').to_owned();
    let js = include_str!("connect.js").replace("__SANDBOX_BASE__", &base);
    ([(header::CONTENT_TYPE, "application/javascript; charset=utf-8")], js).into_response()
}

async fn express_dashboard(AxumState(shared): AxumState<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let state = shared.lock();
    let Some(account_id) = state.login_links.get(&token) else { return not_found("No such login link") };
    let account = state.any(account_id).cloned().unwrap_or_default();
    let payouts: String = state
        .all("payout", Some(account_id))
        .iter()
        .map(|p| {
            format!(
                "<tr><td>{}</td><td class=\"r\">{}</td></tr>",
                esc(p["status"].as_str().unwrap_or("")),
                money(p["amount"].as_i64().unwrap_or(0), p["currency"].as_str().unwrap_or("usd"))
            )
        })
        .collect();
    page(
        "Express dashboard",
        &format!(
            "<h1>Express dashboard</h1><p class=\"muted\">{}</p><table><tr><td>Charges</td><td class=\"r\">{}</td></tr><tr><td>Payouts</td><td class=\"r\">{}</td></tr></table><h1 style=\"margin-top:20px\">Payouts</h1><table>{payouts}</table>",
            esc(account_id),
            if account["charges_enabled"] == true { "enabled" } else { "disabled" },
            if account["payouts_enabled"] == true { "enabled" } else { "disabled" },
        ),
    )
    .into_response()
}

// ---------------------------------------------------------------------------------- OAuth

#[derive(Deserialize)]
struct Authorize {
    client_id: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    redirect_uri: Option<String>,
}

async fn oauth_page(AxumState(shared): AxumState<Arc<Shared>>, Query(q): Query<Authorize>) -> Response {
    let state = shared.lock();
    if q.client_id.as_deref() != Some(state.config.connect_client_id.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            page("Connect", "<h1>Invalid client_id</h1><p class=\"muted\">No such application.</p>"),
        )
            .into_response();
    }
    if q.response_type.as_deref() != Some("code") {
        return (
            StatusCode::BAD_REQUEST,
            page(
                "Connect",
                "<h1>Invalid response_type</h1><p class=\"muted\">Only response_type=code is supported.</p>",
            ),
        )
            .into_response();
    }
    let hidden = |name: &str, value: &Option<String>| {
        value
            .as_ref()
            .map(|v| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", esc(v)))
            .unwrap_or_default()
    };
    let fields = format!(
        "{}{}{}",
        hidden("state", &q.state),
        hidden("redirect_uri", &q.redirect_uri),
        hidden("scope", &q.scope)
    );
    page(
        "Connect with Stripe",
        &format!(
            "<h1>Connect your Stripe account</h1><p class=\"muted\">Remit is asking for read and write access ({}) to your Stripe account.</p>\
             <form method=\"post\" action=\"/oauth/authorize\">{fields}<input type=\"hidden\" name=\"decision\" value=\"allow\">\
             <label for=\"email\">Your Stripe account email</label><input id=\"email\" name=\"email\" type=\"email\" value=\"owner@example.com\">\
             <button type=\"submit\">Connect my Stripe account</button></form>\
             <form method=\"post\" action=\"/oauth/authorize\">{fields}<input type=\"hidden\" name=\"decision\" value=\"deny\"><button class=\"secondary\" type=\"submit\">Deny access</button></form>",
            esc(q.scope.as_deref().unwrap_or("read_write"))
        ),
    )
    .into_response()
}

#[derive(Deserialize)]
struct OAuthDecision {
    decision: String,
    state: Option<String>,
    redirect_uri: Option<String>,
    email: Option<String>,
}

async fn oauth_decide(AxumState(shared): AxumState<Arc<Shared>>, Form(d): Form<OAuthDecision>) -> Response {
    let Some(redirect) = d.redirect_uri.filter(|u| u.starts_with("http://") || u.starts_with("https://")) else {
        return (StatusCode::BAD_REQUEST, page("Connect", "<h1>Missing redirect_uri</h1>")).into_response();
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    if d.decision == "allow" {
        let code = shared.with_state(|s| connect::oauth_grant(s, d.email));
        query.append_pair("code", &code).append_pair("scope", "read_write");
    } else {
        query.append_pair("error", "access_denied").append_pair("error_description", "The user denied your request");
    }
    if let Some(state) = d.state {
        query.append_pair("state", &state);
    }
    let separator = if redirect.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{redirect}{separator}{}", query.finish())).into_response()
}

fn oauth_response(result: Result<Value, Value>) -> Response {
    match result {
        Ok(body) => axum::Json(body).into_response(),
        Err(body) => (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
    }
}

pub async fn oauth_token(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(err) = authenticate(&shared.lock(), &headers) {
        return error_response(&err);
    }
    if let Some(rule) = shared.faults.take("POST", "/oauth/token") {
        return crate::shared::fault(&rule).await;
    }
    let params = Params::new(parse_form(&body).unwrap_or_default());
    oauth_response(shared.with_state(|s| connect::oauth_token(s, params)))
}

pub async fn oauth_deauthorize(
    AxumState(shared): AxumState<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(err) = authenticate(&shared.lock(), &headers) {
        return error_response(&err);
    }
    if let Some(rule) = shared.faults.take("POST", "/oauth/deauthorize") {
        return crate::shared::fault(&rule).await;
    }
    let params = Params::new(parse_form(&body).unwrap_or_default());
    oauth_response(shared.with_state(|s| connect::oauth_deauthorize(s, params)))
}

// ---------------------------------------------------------------------------------- Invoices

async fn invoice_page(AxumState(shared): AxumState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    let Some(invoice) = state.any(&id).filter(|i| i["object"] == "invoice") else {
        return not_found("No such invoice");
    };
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    let lines: String = invoice["lines"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                "<tr><td>{}</td><td class=\"r\">{}</td></tr>",
                esc(l["description"].as_str().unwrap_or("")),
                money(l["amount"].as_i64().unwrap_or(0), currency)
            )
        })
        .collect();
    page(
        "Invoice",
        &format!(
            "<h1>Invoice {}</h1><p class=\"muted\">Status: {}</p><table>{lines}<tr><td><b>Total</b></td><td class=\"r\"><b>{}</b></td></tr></table><p><a href=\"/invoices/{}/pdf\">Download PDF</a></p>",
            esc(invoice["number"].as_str().unwrap_or("")),
            esc(invoice["status"].as_str().unwrap_or("")),
            money(invoice["total"].as_i64().unwrap_or(0), currency),
            esc(&id)
        ),
    )
    .into_response()
}

/// A one-page PDF of the invoice, written by hand (the format needs little for plain text).
pub fn invoice_pdf_bytes(invoice: &Value) -> Vec<u8> {
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    let mut lines = vec![
        format!("Invoice {}", invoice["number"].as_str().unwrap_or("")),
        format!("Status: {}", invoice["status"].as_str().unwrap_or("")),
        String::new(),
    ];
    for l in invoice["lines"]["data"].as_array().into_iter().flatten() {
        lines.push(format!(
            "{}  {}",
            l["description"].as_str().unwrap_or(""),
            money(l["amount"].as_i64().unwrap_or(0), currency)
        ));
    }
    lines.push(String::new());
    lines.push(format!("Total  {}", money(invoice["total"].as_i64().unwrap_or(0), currency)));
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let safe: String = l
                .chars()
                .filter(|c| c.is_ascii() && !c.is_ascii_control())
                .collect::<String>()
                .replace('\\', "\\\\")
                .replace('(', "\\(")
                .replace(')', "\\)");
            format!("BT /F1 12 Tf 72 {} Td ({safe}) Tj ET\n", 760 - i * 18)
        })
        .collect();
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{text}endstream", text.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        pdf.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    pdf
}

async fn invoice_pdf(AxumState(shared): AxumState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    let Some(invoice) = state.any(&id).filter(|i| i["object"] == "invoice") else {
        return not_found("No such invoice");
    };
    let bytes = invoice_pdf_bytes(invoice);
    ([(header::CONTENT_TYPE, "application/pdf")], bytes).into_response()
}

async fn receipt_page(AxumState(shared): AxumState<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    let Some(charge) = state.any(&id).filter(|c| c["object"] == "charge") else { return not_found("No such receipt") };
    page(
        "Receipt",
        &format!(
            "<h1>Receipt</h1><p class=\"amount\">{}</p><p class=\"muted\">Paid with {} ending {}</p>",
            money(charge["amount"].as_i64().unwrap_or(0), charge["currency"].as_str().unwrap_or("usd")),
            esc(charge["payment_method_details"]["card"]["brand"].as_str().unwrap_or("card")),
            esc(charge["payment_method_details"]["card"]["last4"].as_str().unwrap_or("")),
        ),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_in_minor_units() {
        assert_eq!(money(123_456, "usd"), "$1234.56");
        assert_eq!(money(5, "eur"), "€0.05");
        assert_eq!(money(500, "jpy"), "¥500");
        assert_eq!(money(1000, "chf"), "10.00 CHF");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(esc("<b>\"Lot\" & 'co'</b>"), "&lt;b&gt;&quot;Lot&quot; &amp; &#x27;co&#x27;&lt;/b&gt;");
    }

    #[test]
    fn invoice_pdfs_are_well_formed() {
        let pdf = invoice_pdf_bytes(
            &json!({ "number": "ABC-0001", "status": "paid", "currency": "usd", "total": 1500, "lines": { "data": [{ "description": "Pro (monthly)", "amount": 1500 }] } }),
        );
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4") && text.ends_with("%%EOF\n"));
        assert!(text.contains("(Invoice ABC-0001)") && text.contains("$15.00"));
        let xref: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert!(text[xref..].starts_with("xref"));
    }
}
