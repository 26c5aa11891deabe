//! Health dashboards, payment failure alerts and the audit log.

use domain::auth::Role;

use crate::helpers::{TestApp, spawn_app};

async fn record_outcomes(app: &TestApp, tenant: uuid::Uuid, succeeded: usize, failed: usize) {
    for i in 0..succeeded + failed {
        sqlx::query(
            "INSERT INTO payment_outcomes (id, tenant_id, livemode, source, succeeded, amount, currency, reference, occurred_at)
             VALUES ($1, $2, false, 'checkout', $3, 5000, 'usd', $4, now() - interval '1 hour')",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(tenant)
        .bind(i < succeeded)
        .bind(format!("ch_{}", uuid::Uuid::new_v4().simple()))
        .execute(&app.services.pool)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_failure_rate_over_five_percent_raises_one_alert_and_emails_admins() {
    let app = spawn_app().await;
    let tenant = app.tenant_id().await;
    record_outcomes(&app, tenant, 19, 1).await;
    assert_eq!(domain::alerts::check_payment_health(&app.services).await.unwrap(), 0, "5 % exactly is not over 5 %");
    record_outcomes(&app, tenant, 0, 1).await;
    assert_eq!(domain::alerts::check_payment_health(&app.services).await.unwrap(), 1);
    assert_eq!(domain::alerts::check_payment_health(&app.services).await.unwrap(), 0, "once a day");
    let subject: String = sqlx::query_scalar("SELECT subject FROM emails WHERE to_address = 'admin@remit.localhost'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(subject, "Remit alert: payment failure rate");

    let (status, html) = app.page(Some(Role::PlatformAdmin), "/admin").await;
    assert_eq!(status, 200);
    assert!(html.contains("2 of 21 test payments failed in the last 24 hours (9.5 %)"), "the alert is shown");
    assert!(html.contains("90.5 %"), "the success rate is shown");
    assert!(html.contains("19 succeeded, 2 failed"), "the chart covers the day");
}

#[tokio::test]
async fn tenant_staff_see_only_their_own_tenant() {
    let app = spawn_app().await;
    let admin = app.client();
    app.sign_in(&admin, Role::PlatformAdmin).await;
    app.rpc(
        &admin,
        "create_tenant",
        &[("name", "Fjord Advisory"), ("owner_email", "owner@fjord.example"), ("owner_name", "Freya Fjord")],
    )
    .await;
    let fjord: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'Fjord Advisory'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    record_outcomes(&app, fjord, 3, 7).await;
    record_outcomes(&app, app.tenant_id().await, 4, 0).await;

    let (status, html) = app.page(Some(Role::TenantAdmin), "/tenant").await;
    assert_eq!(status, 200);
    assert!(html.contains("Northwind Auctions") && !html.contains("Fjord Advisory"));
    assert!(html.contains("100.0 %"));
    let (status, html) = app.page(Some(Role::PlatformAdmin), "/admin").await;
    assert_eq!(status, 200);
    assert!(html.contains("Northwind Auctions") && html.contains("Fjord Advisory") && html.contains("30.0 %"));
    assert_eq!(app.page(Some(Role::TenantOwner), "/admin").await.0, 403);
}

#[tokio::test]
async fn the_audit_log_filters_and_scopes_to_the_tenant() {
    let app = spawn_app().await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (_, key) = app
        .json_with_cookie(
            reqwest::Method::POST,
            "/api/v1/auth/tenants/api-keys/",
            &owner,
            Some(serde_json::json!({ "mode": "test" })),
        )
        .await;
    app.json_with_cookie(
        reqwest::Method::POST,
        "/api/v1/auth/tenants/api-keys/revoke/",
        &owner,
        Some(serde_json::json!({ "key_id": key["key"]["id"], "reason": "rotating after an audit" })),
    )
    .await;
    let (status, html) = app.page(Some(Role::TenantAdmin), "/audit?action=api_key.").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("api_key.created")
            && html.contains("api_key.revoked")
            && html.contains("rotating after an audit")
    );
    let (_, html) = app.page(Some(Role::TenantAdmin), "/audit?action=webhook.").await;
    assert!(html.contains("No entries match."));
    let (_, html) = app.page(Some(Role::PlatformAdmin), "/admin/audit?tenant=Northwind%20Auctions&actor=olivia").await;
    assert!(html.contains("api_key.revoked"));
    let (status, html) = app.page(Some(Role::PlatformAdmin), "/admin/audit?since=yesterday").await;
    assert_eq!(status, 422);
    assert!(html.contains("Use a date like"));
    assert_eq!(app.page(Some(Role::Consultant), "/audit").await.0, 403);
}
