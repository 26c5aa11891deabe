//! The JSON shapes of Stripe's objects, as the API reference (version 2026-09-30) has them:
//! every field a client library requires is present, the rest are `null` or absent as on Stripe.

use serde_json::{Map, Value, json};

use crate::wire::new_id;

/// What a new connected account still has to provide before it can take payments.
pub const ONBOARDING_REQUIREMENTS: [&str; 8] = [
    "business_type",
    "external_account",
    "individual.address.city",
    "individual.address.line1",
    "individual.dob.day",
    "individual.first_name",
    "individual.last_name",
    "tos_acceptance.date",
];

pub fn requirements(
    currently_due: &[String],
    past_due: &[String],
    disabled_reason: Option<&str>,
    deadline: Option<i64>,
) -> Value {
    json!({
        "alternatives": [],
        "current_deadline": deadline,
        "currently_due": currently_due,
        "disabled_reason": disabled_reason,
        "errors": [],
        "eventually_due": currently_due,
        "past_due": past_due,
        "pending_verification": [],
    })
}

pub struct NewAccount<'a> {
    pub id: String,
    pub kind: &'a str,
    pub country: &'a str,
    pub email: Option<String>,
    pub business_type: Option<String>,
    pub metadata: Map<String, Value>,
    pub created: i64,
}

pub fn account(a: NewAccount<'_>) -> Value {
    let due: Vec<String> = ONBOARDING_REQUIREMENTS.iter().map(|s| s.to_string()).collect();
    json!({
        "id": a.id,
        "object": "account",
        "business_profile": { "mcc": null, "name": null, "url": null, "support_email": null },
        "business_type": a.business_type,
        "capabilities": { "card_payments": "inactive", "transfers": "inactive" },
        "charges_enabled": false,
        "controller": { "type": "application", "is_controller": true },
        "country": a.country,
        "created": a.created,
        "default_currency": default_currency(a.country),
        "details_submitted": false,
        "email": a.email,
        "external_accounts": { "object": "list", "data": [], "has_more": false, "url": format!("/v1/accounts/{}/external_accounts", a.id) },
        "future_requirements": requirements(&[], &[], None, None),
        "metadata": a.metadata,
        "payouts_enabled": false,
        "requirements": requirements(&due, &[], Some("requirements.past_due"), None),
        "settings": {
            "branding": { "icon": null, "logo": null, "primary_color": null, "secondary_color": null },
            "card_payments": { "decline_on": { "avs_failure": false, "cvc_failure": false }, "statement_descriptor_prefix": null },
            "dashboard": { "display_name": null, "timezone": "Etc/UTC" },
            "payments": { "statement_descriptor": null },
            "payouts": { "debit_negative_balances": true, "schedule": { "delay_days": 2, "interval": "daily" }, "statement_descriptor": null },
        },
        "tos_acceptance": { "date": null },
        "type": a.kind,
    })
}

pub fn default_currency(country: &str) -> &'static str {
    match country {
        "GB" => "gbp",
        "DE" | "FR" | "NL" | "IE" | "ES" | "IT" | "BE" | "AT" | "FI" | "PT" => "eur",
        "CA" => "cad",
        "AU" => "aud",
        _ => "usd",
    }
}

fn claim(enabled: bool, features: Value) -> Value {
    json!({ "enabled": enabled, "features": features })
}

/// `components` of an account session: every component of the API version, none enabled, each
/// with the features it takes (all off).
pub fn session_components() -> Value {
    let account_features = json!({ "disable_stripe_user_authentication": false, "external_account_collection": false });
    let payouts = json!({ "disable_stripe_user_authentication": false, "edit_payout_schedule": false, "external_account_collection": false, "instant_payouts": false, "standard_payouts": false });
    let payments = json!({ "capture_payments": false, "destination_on_behalf_of_charge_management": false, "dispute_management": false, "refund_management": false, "smart_disputes_management": false });
    json!({
        "account_management": claim(false, account_features.clone()),
        "account_onboarding": claim(false, account_features.clone()),
        "balance_report": claim(false, json!({})),
        "balances": claim(false, payouts.clone()),
        "disputes_list": claim(false, payments.clone()),
        "documents": claim(false, json!({})),
        "financial_account": claim(false, json!({ "disable_stripe_user_authentication": false, "external_account_collection": false, "send_money": false, "transfer_balance": false })),
        "financial_account_transactions": claim(false, json!({ "card_spend_dispute_management": false })),
        "instant_payouts_promotion": claim(false, json!({ "disable_stripe_user_authentication": false, "external_account_collection": false, "instant_payouts": false })),
        "issuing_card": claim(false, json!({ "card_management": false, "card_spend_dispute_management": false, "cardholder_management": false, "spend_control_management": false })),
        "issuing_cards_list": claim(false, json!({ "card_management": false, "card_spend_dispute_management": false, "cardholder_management": false, "disable_stripe_user_authentication": false, "spend_control_management": false })),
        "notification_banner": claim(false, account_features),
        "payment_details": claim(false, payments.clone()),
        "payment_disputes": claim(false, json!({ "destination_on_behalf_of_charge_management": false, "dispute_management": false, "refund_management": false, "smart_disputes_management": false })),
        "payment_method_settings": claim(false, json!({ "disable_stripe_user_authentication": false })),
        "payments": claim(false, payments),
        "payout_details": claim(false, json!({})),
        "payout_reconciliation_report": claim(false, json!({})),
        "payouts": claim(false, payouts),
        "payouts_list": claim(false, json!({})),
        "tax_registrations": claim(false, json!({})),
        "tax_settings": claim(false, json!({})),
    })
}

pub fn customer(
    id: &str,
    email: Option<String>,
    name: Option<String>,
    metadata: Map<String, Value>,
    created: i64,
) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": created,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "email": email,
        "invoice_prefix": id[4..12].to_uppercase(),
        "invoice_settings": { "custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null },
        "livemode": false,
        "metadata": metadata,
        "name": name,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    })
}

/// A test clock (`test_helpers.test_clock`): the time its customers' billing lives at.
pub fn test_clock(id: &str, name: Option<String>, frozen_time: i64, created: i64) -> Value {
    json!({
        "id": id,
        "object": "test_helpers.test_clock",
        "created": created,
        // Stripe deletes a test clock 30 days after it was made.
        "deletes_after": created + 30 * 86_400,
        "frozen_time": frozen_time,
        "livemode": false,
        "name": name,
        "status": "ready",
        "status_details": {},
    })
}

pub fn product(id: &str, name: &str, description: Option<String>, metadata: Map<String, Value>, created: i64) -> Value {
    json!({
        "id": id,
        "object": "product",
        "active": true,
        "created": created,
        "default_price": null,
        "description": description,
        "images": [],
        "livemode": false,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": null,
        "tax_code": null,
        "type": "service",
        "unit_label": null,
        "updated": created,
        "url": null,
    })
}

pub struct NewPrice {
    pub id: String,
    pub product: String,
    pub currency: String,
    pub unit_amount: i64,
    /// `(interval, interval_count, trial_period_days)` for a recurring price.
    pub recurring: Option<(String, i64, Option<i64>)>,
    pub nickname: Option<String>,
    pub metadata: Map<String, Value>,
    pub created: i64,
}

pub fn price(p: NewPrice) -> Value {
    let recurring = p.recurring.as_ref().map(|(interval, count, trial)| {
        json!({ "interval": interval, "interval_count": count, "trial_period_days": trial, "usage_type": "licensed", "meter": null })
    });
    json!({
        "id": p.id,
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": null,
        "metadata": p.metadata,
        "nickname": p.nickname,
        "product": p.product,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": if p.recurring.is_some() { "recurring" } else { "one_time" },
        "unit_amount": p.unit_amount,
        "unit_amount_decimal": p.unit_amount.to_string(),
    })
}

/// The legacy `plan` Stripe still puts on subscription items, made from a recurring price.
pub fn plan_from_price(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": true,
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"],
        "livemode": false,
        "metadata": {},
        "nickname": price["nickname"],
        "product": price["product"],
        "trial_period_days": price["recurring"]["trial_period_days"],
        "usage_type": "licensed",
    })
}

pub fn payment_method_card(
    id: &str,
    card: &TestCard,
    name: Option<String>,
    email: Option<String>,
    created: i64,
) -> Value {
    json!({
        "id": id,
        "object": "payment_method",
        "billing_details": { "address": null, "email": email, "name": name, "phone": null },
        "card": {
            "brand": card.brand,
            "checks": { "address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass" },
            "country": "US",
            "display_brand": card.brand,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": format!("fp{}", &card.number[card.number.len() - 8..]),
            "funding": "credit",
            "last4": &card.number[card.number.len() - 4..],
            "networks": { "available": [card.brand], "preferred": null },
            "three_d_secure_usage": { "supported": true },
            "wallet": null,
        },
        "created": created,
        "customer": null,
        "livemode": false,
        "metadata": {},
        "type": "card",
    })
}

/// A card typed into the sandbox's hosted pages.
pub struct TestCard {
    pub number: String,
    pub brand: &'static str,
    pub exp_month: i64,
    pub exp_year: i64,
}

pub struct NewPaymentIntent<'a> {
    pub id: String,
    pub amount: i64,
    pub currency: &'a str,
    pub customer: Option<String>,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub transfer_destination: Option<String>,
    pub application_fee_amount: Option<i64>,
    pub on_behalf_of: Option<String>,
    pub request_three_d_secure: Option<String>,
    pub created: i64,
}

pub fn payment_intent(p: NewPaymentIntent<'_>) -> Value {
    json!({
        "id": p.id,
        "object": "payment_intent",
        "amount": p.amount,
        "amount_capturable": 0,
        "amount_details": { "tip": {} },
        "amount_received": 0,
        "application": null,
        "application_fee_amount": p.application_fee_amount,
        "automatic_payment_methods": null,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic",
        "client_secret": format!("{}_secret_{}", p.id, &new_id("")[..24]),
        "confirmation_method": "automatic",
        "created": p.created,
        "currency": p.currency,
        "customer": p.customer,
        "description": p.description,
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "metadata": p.metadata,
        "next_action": null,
        "on_behalf_of": p.on_behalf_of,
        "payment_method": null,
        "payment_method_options": { "card": { "request_three_d_secure": p.request_three_d_secure.unwrap_or_else(|| "automatic".into()) } },
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "setup_future_usage": null,
        "status": "requires_payment_method",
        "transfer_data": p.transfer_destination.map(|d| json!({ "destination": d })),
        "transfer_group": null,
    })
}

pub fn charge(id: &str, pi: &Value, payment_method: &Value, created: i64) -> Value {
    // A charge's card details are the card's as charged: its network, no wallet or 3DS details
    // of the saved card (display brand, networks, 3DS support are the payment method's own).
    let mut card = payment_method["card"].clone();
    if let Some(fields) = card.as_object_mut() {
        for saved_only in ["display_brand", "networks", "three_d_secure_usage", "generated_from"] {
            fields.remove(saved_only);
        }
        fields.insert("network".into(), payment_method["card"]["brand"].clone());
        fields.insert("three_d_secure".into(), Value::Null);
    }
    // `transfer` appears only once a destination charge has transferred (see flows).
    json!({
        "id": id,
        "object": "charge",
        "amount": pi["amount"],
        "amount_captured": 0,
        "amount_refunded": 0,
        "application_fee": null,
        "application_fee_amount": pi["application_fee_amount"],
        "balance_transaction": null,
        "billing_details": payment_method["billing_details"],
        "captured": false,
        "created": created,
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": false,
        "failure_code": null,
        "failure_message": null,
        "livemode": false,
        "metadata": pi["metadata"],
        "on_behalf_of": pi["on_behalf_of"],
        "outcome": null,
        "paid": false,
        "payment_intent": pi["id"],
        "payment_method": payment_method["id"],
        "payment_method_details": { "type": "card", "card": card },
        "receipt_email": null,
        "receipt_url": null,
        "refunded": false,
        "refunds": { "object": "list", "data": [], "has_more": false, "url": format!("/v1/charges/{id}/refunds") },
        "source_transfer": null,
        "status": "pending",
        "transfer_data": pi["transfer_data"],
        "transfer_group": null,
    })
}

pub fn balance_transaction(id: &str, amount: i64, currency: &str, kind: &str, source: &str, created: i64) -> Value {
    // Stripe's US card pricing: 2.9 % + 30 ¢ on charges; refunds return no fee.
    let fee = if kind == "charge" { (amount * 29 + 999) / 1000 + 30 } else { 0 };
    // Card payments become available two days later; everything else moves the balance at once.
    let settles = matches!(kind, "charge" | "payment");
    json!({
        "id": id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": if settles { created + 2 * 86_400 } else { created },
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": null,
        "exchange_rate": null,
        "fee": fee,
        "fee_details": if fee > 0 { json!([{ "amount": fee, "application": null, "currency": currency, "description": "Stripe processing fees", "type": "stripe_fee" }]) } else { json!([]) },
        "net": amount - fee,
        "reporting_category": kind,
        "source": source,
        "status": if settles { "pending" } else { "available" },
        "type": kind,
    })
}

pub fn setup_intent(id: &str, customer: Option<String>, created: i64) -> Value {
    json!({
        "id": id,
        "object": "setup_intent",
        "application": null,
        "cancellation_reason": null,
        "client_secret": format!("{id}_secret_{}", &new_id("")[..24]),
        "created": created,
        "customer": customer,
        "description": null,
        "last_setup_error": null,
        "latest_attempt": null,
        "livemode": false,
        "metadata": {},
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": null,
        "payment_method_types": ["card"],
        "status": "requires_payment_method",
        "usage": "off_session",
    })
}

pub fn subscription_item(
    id: &str,
    subscription: &str,
    price: &Value,
    quantity: i64,
    period: (i64, i64),
    created: i64,
) -> Value {
    json!({
        "id": id,
        "object": "subscription_item",
        "created": created,
        "current_period_end": period.1,
        "current_period_start": period.0,
        "discounts": [],
        "metadata": {},
        "plan": plan_from_price(price),
        "price": price,
        "quantity": quantity,
        "subscription": subscription,
        "tax_rates": [],
    })
}

/// `subscription` is `(subscription id, subscription item id)` for subscription lines.
pub fn invoice_line(
    id: &str,
    price: &Value,
    quantity: i64,
    period: (i64, i64),
    subscription: Option<(&str, &str)>,
    description: String,
) -> Value {
    let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
    json!({
        "id": id,
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": true,
        "discounts": [],
        "livemode": false,
        "metadata": {},
        "parent": subscription.map(|(s, item)| json!({ "type": "subscription_item_details", "subscription_item_details": { "subscription": s, "subscription_item": item, "proration": false, "proration_details": null, "invoice_item": null } })),
        "period": { "start": period.0, "end": period.1 },
        "pricing": { "type": "price_details", "price_details": { "price": price["id"], "product": price["product"] }, "unit_amount_decimal": price["unit_amount_decimal"] },
        "quantity": quantity,
        "subtotal": amount,
        "taxes": [],
    })
}

pub struct NewInvoice<'a> {
    pub id: String,
    pub customer: &'a Value,
    pub subscription: Option<&'a str>,
    pub lines: Vec<Value>,
    pub currency: String,
    pub period: (i64, i64),
    pub billing_reason: &'a str,
    pub created: i64,
    pub public_url: &'a str,
}

pub fn invoice(i: NewInvoice<'_>) -> Value {
    let total: i64 = i.lines.iter().map(|l| l["amount"].as_i64().unwrap_or(0)).sum();
    let number = format!("{}-{:04}", i.customer["invoice_prefix"].as_str().unwrap_or("INV"), i.created % 10_000);
    json!({
        "id": i.id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Remit Sandbox",
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": true,
        "automatically_finalizes_at": null,
        "automatic_tax": { "enabled": false, "liability": null, "status": null },
        "billing_reason": i.billing_reason,
        "collection_method": "charge_automatically",
        "created": i.created,
        "currency": i.currency,
        "customer": i.customer["id"],
        "customer_email": i.customer["email"],
        "customer_name": i.customer["name"],
        "default_payment_method": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "due_date": null,
        "ending_balance": null,
        "hosted_invoice_url": format!("{}/invoices/{}", i.public_url, i.id),
        "invoice_pdf": format!("{}/invoices/{}/pdf", i.public_url, i.id),
        "issuer": { "type": "self" },
        "last_finalization_error": null,
        "lines": { "object": "list", "data": i.lines, "has_more": false, "url": format!("/v1/invoices/{}/lines", i.id) },
        "livemode": false,
        "metadata": {},
        "next_payment_attempt": null,
        "number": number,
        "parent": i.subscription.map(|s| json!({ "type": "subscription_details", "subscription_details": { "subscription": s, "metadata": {} }, "quote_details": null })),
        "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
        "period_end": i.period.1,
        "period_start": i.period.0,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": null,
        "starting_balance": 0,
        "status": "draft",
        "status_transitions": { "finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null },
        "subtotal": total,
        "test_clock": i.customer["test_clock"],
        "total": total,
        "webhooks_delivered_at": null,
    })
}

pub struct NewCheckoutSession {
    pub id: String,
    pub mode: String,
    pub amount_total: i64,
    pub currency: Option<String>,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub client_reference_id: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub expires_at: i64,
    pub metadata: Map<String, Value>,
    pub url: String,
    pub created: i64,
}

pub fn checkout_session(s: NewCheckoutSession) -> Value {
    json!({
        "id": s.id,
        "object": "checkout.session",
        "after_expiration": null,
        "allow_promotion_codes": null,
        "amount_subtotal": s.amount_total,
        "amount_total": s.amount_total,
        "automatic_tax": { "enabled": false, "liability": null, "status": null },
        "billing_address_collection": null,
        "cancel_url": s.cancel_url,
        "client_reference_id": s.client_reference_id,
        "client_secret": null,
        "created": s.created,
        "currency": s.currency,
        "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
        "customer": s.customer,
        "customer_creation": if s.mode == "payment" { json!("if_required") } else { json!("always") },
        "customer_details": null,
        "customer_email": s.customer_email,
        "expires_at": s.expires_at,
        "invoice": null,
        "livemode": false,
        "locale": null,
        "metadata": s.metadata,
        "mode": s.mode,
        "payment_intent": null,
        "payment_method_collection": "always",
        "payment_method_types": ["card"],
        "payment_status": if s.mode == "setup" { "no_payment_required" } else { "unpaid" },
        "recovered_from": null,
        "setup_intent": null,
        "shipping_options": [],
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": s.success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted_page",
        "url": s.url,
    })
}

pub fn checkout_line_item(price: &Value, product: &Value, quantity: i64) -> Value {
    let amount = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
    json!({
        "id": new_id("li_"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": price["currency"],
        "description": product["name"],
        "price": price,
        "quantity": quantity,
    })
}

pub fn refund(
    id: &str,
    charge: &Value,
    amount: i64,
    reason: Option<String>,
    metadata: Map<String, Value>,
    created: i64,
) -> Value {
    json!({
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": null,
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "destination_details": null,
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null,
    })
}

pub fn dispute(id: &str, charge: &Value, created: i64) -> Value {
    json!({
        "id": id,
        "object": "dispute",
        "amount": charge["amount"],
        "balance_transactions": [],
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "enhanced_eligibility_types": [],
        "evidence": { "enhanced_evidence": {} },
        "evidence_details": { "due_by": created + 7 * 86_400, "enhanced_eligibility": {}, "has_evidence": false, "past_due": false, "submission_count": 0 },
        "is_charge_refundable": false,
        "livemode": false,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": "fraudulent",
        "status": "needs_response",
    })
}

/// A transfer from the platform's balance to a connected account (a destination charge's, or
/// one the platform makes).
pub struct NewTransfer<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub destination: &'a str,
    /// The payment (`py_…`) it made on the connected account.
    pub destination_payment: &'a str,
    pub balance_transaction: &'a str,
    pub source_transaction: Option<&'a str>,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub transfer_group: Option<String>,
    pub created: i64,
}

pub fn transfer(t: NewTransfer<'_>) -> Value {
    json!({
        "id": t.id,
        "object": "transfer",
        "amount": t.amount,
        "amount_reversed": 0,
        "balance_transaction": t.balance_transaction,
        "created": t.created,
        "currency": t.currency,
        "description": t.description,
        "destination": t.destination,
        "destination_payment": t.destination_payment,
        "livemode": false,
        "metadata": t.metadata,
        "reversals": { "object": "list", "data": [], "has_more": false, "url": format!("/v1/transfers/{}/reversals", t.id) },
        "reversed": false,
        "source_transaction": t.source_transaction,
        "source_type": "card",
        "transfer_group": t.transfer_group,
    })
}

pub fn transfer_reversal(
    id: &str,
    transfer: &Value,
    amount: i64,
    balance_transaction: &str,
    source_refund: Option<&str>,
    metadata: Map<String, Value>,
    created: i64,
) -> Value {
    json!({
        "id": id,
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": balance_transaction,
        "created": created,
        "currency": transfer["currency"],
        "destination_payment_refund": null,
        "metadata": metadata,
        "source_refund": source_refund,
        "transfer": transfer["id"],
    })
}

/// The platform's fee on a connected account's payment.
pub struct NewApplicationFee<'a> {
    pub id: &'a str,
    pub account: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub application: &'a str,
    pub balance_transaction: &'a str,
    /// The payment on the connected account (`py_…`) the fee was taken from.
    pub charge: &'a str,
    /// The platform's charge that caused it (a destination charge).
    pub originating_transaction: Option<&'a str>,
    pub created: i64,
}

pub fn application_fee(f: NewApplicationFee<'_>) -> Value {
    json!({
        "id": f.id,
        "object": "application_fee",
        "account": f.account,
        "amount": f.amount,
        "amount_refunded": 0,
        "application": f.application,
        "balance_transaction": f.balance_transaction,
        "charge": f.charge,
        "created": f.created,
        "currency": f.currency,
        "fee_source": { "charge": f.charge, "type": "charge" },
        "livemode": false,
        "originating_transaction": f.originating_transaction,
        "refunded": false,
        "refunds": { "object": "list", "data": [], "has_more": false, "url": format!("/v1/application_fees/{}/refunds", f.id) },
    })
}

pub fn fee_refund(id: &str, fee: &Value, amount: i64, balance_transaction: &str, created: i64) -> Value {
    json!({
        "id": id,
        "object": "fee_refund",
        "amount": amount,
        "balance_transaction": balance_transaction,
        "created": created,
        "currency": fee["currency"],
        "fee": fee["id"],
        "metadata": {},
    })
}

pub fn payout(id: &str, amount: i64, currency: &str, created: i64) -> Value {
    json!({
        "id": id,
        "object": "payout",
        "amount": amount,
        "arrival_date": created + 2 * 86_400,
        "automatic": true,
        "balance_transaction": null,
        "created": created,
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": null,
        "failure_code": null,
        "failure_message": null,
        "livemode": false,
        "metadata": {},
        "method": "standard",
        "reconciliation_status": "completed",
        "source_type": "card",
        "statement_descriptor": null,
        "status": "paid",
        "type": "bank_account",
    })
}

pub struct NewWebhookEndpoint {
    pub id: String,
    pub url: String,
    pub enabled_events: Vec<String>,
    pub connect: bool,
    pub api_version: Option<String>,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub created: i64,
}

pub fn webhook_endpoint(w: NewWebhookEndpoint) -> Value {
    json!({
        "id": w.id,
        "object": "webhook_endpoint",
        "api_version": w.api_version,
        "application": if w.connect { json!("ca_sandbox") } else { Value::Null },
        "created": w.created,
        "description": w.description,
        "enabled_events": w.enabled_events,
        "livemode": false,
        "metadata": w.metadata,
        "status": "enabled",
        "url": w.url,
    })
}
