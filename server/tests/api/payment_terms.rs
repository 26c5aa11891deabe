//! A tenant's payment terms: the fee and 3D Secure thresholds a platform admin sets (audited,
//! shown to the tenant) are what the next Checkout attempt asks Stripe for.

use domain::auth::Role;
use reqwest::Method;
use serde_json::json;

use crate::{
    billing::pay,
    checkout::{api_key, start, won_lot},
    helpers::{TestApp, spawn_app},
};

async fn admin_posts(app: &TestApp, name: &str, form: &[(&str, &str)]) -> u16 {
    let admin = app.client();
    app.sign_in(&admin, Role::PlatformAdmin).await;
    app.rpc(&admin, name, form).await.status().as_u16()
}

/// The buyer's payment link token for lot `lot`, from the email that sent it.
async fn token_for(app: &TestApp, lot: &str) -> String {
    let link = app.latest_link_about("buyer@example.com", &format!("Pay for lot {lot} "), &app.url("/pay/")).await;
    link.rsplit('/').next().unwrap().to_owned()
}

/// Pays the Checkout Session behind `url` with 4242 and returns the application fee of the
/// payment it made.
async fn fee_asked(app: &TestApp, url: &str) -> i64 {
    assert_eq!(pay(url, "4242424242424242").await.0, 303);
    let session = url.rsplit('/').next().unwrap();
    let (_, body) =
        app.stripe(Method::GET, &format!("/v1/checkout/sessions/{session}?expand[]=payment_intent"), &[]).await;
    body["payment_intent"]["application_fee_amount"].as_i64().unwrap_or_else(|| panic!("{body}"))
}

#[tokio::test]
async fn the_fee_a_platform_admin_sets_applies_from_the_next_attempt_and_the_tenant_sees_it() {
    let app = spawn_app().await;
    let tenant = app.tenant_id().await.to_string();
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    assert_eq!(fee_asked(&app, body["url"].as_str().unwrap()).await, 625, "Remit's default, 5 %");

    let form = [("tenant_id", tenant.as_str()), ("fee", "2.5")];
    assert_eq!(admin_posts(&app, "set_tenant_fee", &form).await, 200);
    let (status, page) = app.page(Some(Role::TenantOwner), "/settings").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Remit keeps 2.50 % of each buyer payment") && page.contains("does not give that fee back"),
        "{page}"
    );
    let audited: serde_json::Value = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'tenant.fee_changed' AND tenant_id = $1::uuid",
    )
    .bind(&tenant)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(audited["fee_bps"], json!({ "from": null, "to": 250 }));
    assert_eq!(audited["refund_application_fee"], json!({ "from": true, "to": false }), "the box was not ticked");

    // The next win's attempt is asked with the new fee.
    let key = api_key(&app).await;
    let win = json!({ "reference": "AUC-2", "auction": "Spring sale", "lot": "7", "buyer_email": "buyer@example.com",
                      "amount": 12_500, "currency": "usd" });
    assert_eq!(app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(win)).await.0, 201);
    let (_, body) = start(&app, &token_for(&app, "7").await).await;
    assert_eq!(fee_asked(&app, body["url"].as_str().unwrap()).await, 312, "2.5 % of $125.00, rounded down");

    // Out of range, and other people, are refused.
    let form = [("tenant_id", tenant.as_str()), ("fee", "75")];
    assert_eq!(admin_posts(&app, "set_tenant_fee", &form).await, 422);
    let owner = app.client();
    app.sign_in(&owner, Role::TenantOwner).await;
    let form = [("tenant_id", tenant.as_str()), ("fee", "0")];
    assert_eq!(app.rpc(&owner, "set_tenant_fee", &form).await.status(), 403);
}

#[tokio::test]
async fn three_d_secure_follows_the_table_per_currency_and_a_tenants_own_threshold() {
    let app = spawn_app().await;
    let tenant = app.tenant_id().await.to_string();
    // $125 is under Remit's $500: no challenge.
    let token = won_lot(&app, 12_500).await;
    let (_, body) = start(&app, &token).await;
    let (status, next) = pay(body["url"].as_str().unwrap(), "4242424242424242").await;
    assert_eq!(status, 303);
    assert!(!next.unwrap().starts_with("/3ds/"), "not challenged under the threshold");

    // Euros have their own threshold (€460): €470 is challenged.
    let key = api_key(&app).await;
    let win = json!({ "reference": "AUC-EUR", "auction": "Spring sale", "lot": "8", "buyer_email": "buyer@example.com",
                      "amount": 47_000, "currency": "eur" });
    assert_eq!(app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(win)).await.0, 201);
    let (_, body) = start(&app, &token_for(&app, "8").await).await;
    let (_, next) = pay(body["url"].as_str().unwrap(), "4242424242424242").await;
    assert!(next.unwrap().starts_with("/3ds/"), "€470 is above the euro threshold");

    // A platform admin lowers this tenant's dollar threshold to $100: $125 is challenged now.
    let form = [("tenant_id", tenant.as_str()), ("currency", "usd"), ("above", "100")];
    assert_eq!(admin_posts(&app, "set_three_d_secure", &form).await, 200);
    let page = app.page(Some(Role::PlatformAdmin), &format!("/admin/tenants/{tenant}/terms")).await.1;
    assert!(page.contains("$100.00") && page.contains("(this tenant's)"), "{page}");
    let win = json!({ "reference": "AUC-USD-2", "auction": "Spring sale", "lot": "9", "buyer_email": "buyer@example.com",
                      "amount": 12_500, "currency": "usd" });
    assert_eq!(app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(win)).await.0, 201);
    let (_, body) = start(&app, &token_for(&app, "9").await).await;
    let (_, next) = pay(body["url"].as_str().unwrap(), "4242424242424242").await;
    assert!(next.unwrap().starts_with("/3ds/"), "the tenant's own threshold applies");
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'tenant.three_d_secure_changed'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(audited, 1);

    // Empty restores Remit's table.
    let form = [("tenant_id", tenant.as_str()), ("currency", "usd"), ("above", "")];
    assert_eq!(admin_posts(&app, "set_three_d_secure", &form).await, 200);
    let page = app.page(Some(Role::TenantOwner), "/settings").await.1;
    assert!(page.contains("$500.00") && page.contains("€460.00"), "{page}");
}
