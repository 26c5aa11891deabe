//! Reports of the money buyers moved: what a payment and a refund add up to (the platform's fee
//! and the part of it the refund gave back, as Stripe moved them), for the tenant and the
//! platform, as a page and as CSV, each tenant seeing only its own.

use domain::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    billing::flush,
    helpers::{TestApp, spawn_app},
    refunds::{paid_lot, refund},
};

/// The report's CSV lines (header first) as `cookie`'s holder gets them.
async fn csv(app: &TestApp, cookie: &str, path: &str) -> (u16, Vec<Vec<String>>) {
    let (status, body) = app.json_with_cookie(Method::GET, path, cookie, None).await;
    let text = match body {
        Value::String(text) => text,
        other => other.to_string(),
    };
    (status, text.lines().map(|l| l.split(',').map(str::to_owned).collect()).collect())
}

/// Every line's amounts added up (a payment and its refund may fall on either side of midnight).
fn summed(lines: &[Vec<String>]) -> (i64, [String; 5]) {
    let cents = |s: &str| -> i64 { s.replace('.', "").parse().unwrap() };
    let mut payments = 0;
    let mut sums = [0_i64; 5];
    for line in &lines[1..] {
        payments += line[3].parse::<i64>().unwrap();
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum += cents(&line[4 + i]);
        }
    }
    (payments, sums.map(|c| format!("{}.{:02}", c / 100, c % 100)))
}

#[tokio::test]
async fn a_payment_and_a_refund_add_up_in_the_tenants_and_the_platforms_report() {
    let app = spawn_app().await;
    let (key, winning) = paid_lot(&app).await;
    let (status, body) = refund(&app, &key, winning, json!({ "amount": 6_250, "reason": "Frame damaged" }), None).await;
    assert_eq!(status, 201, "{body}");
    flush(&app).await;

    // What Remit holds of the money is what Stripe moved: the fee on the charge, and the part
    // of it the refund gave back.
    let (fee, fee_id, charge): (i64, String, String) =
        sqlx::query_as("SELECT application_fee, stripe_application_fee_id, stripe_charge_id FROM orders")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    let (_, stripe_fee) = app.stripe(Method::GET, &format!("/v1/application_fees/{fee_id}"), &[]).await;
    assert_eq!(stripe_fee["amount"].as_i64(), Some(fee), "5 % of $125.00");
    assert_eq!(stripe_fee["originating_transaction"], charge.as_str());
    let (given_back, stripe_created): (i64, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT application_fee_refunded, stripe_created_at FROM refunds")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(Some(given_back), stripe_fee["amount_refunded"].as_i64(), "Remit expects what Stripe gave back");
    assert!(stripe_created.is_some(), "the refund is dated by Stripe");

    let owner = app.session_cookie(Role::TenantOwner).await;
    let today = chrono::Utc::now().date_naive();
    let range = format!("from={}&to={today}", today - chrono::Duration::days(1));
    let (status, lines) = csv(&app, &owner, &format!("/reports/export.csv?{range}&mode=test")).await;
    assert_eq!(status, 200);
    assert_eq!(lines[0].join(","), "period,mode,currency,payments,gross,refunds,disputes,platform_fees,net");
    assert!(lines[1..].iter().all(|l| l[1] == "test" && l[2] == "usd"), "{lines:?}");
    let fees = fee - given_back;
    let expected = [
        "125.00".to_owned(),
        "62.50".to_owned(),
        "0.00".to_owned(),
        format!("{}.{:02}", fees / 100, fees % 100),
        format!("{}.{:02}", (6_250 - fees) / 100, (6_250 - fees) % 100),
    ];
    assert_eq!(summed(&lines), (1, expected.clone()), "gross less refunds, disputes and fees is net");

    // The page shows the same, with a chart; the platform admin sees it too, for all tenants
    // and for this one.
    let (status, html) = app.page(Some(Role::TenantOwner), &format!("/reports?{range}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("$125.00") && html.contains("$62.50") && html.contains("data-testid=\"report-chart\""));
    let admin = app.session_cookie(Role::PlatformAdmin).await;
    let tenant = app.tenant_id().await;
    for path in
        [format!("/admin/reports/export.csv?{range}"), format!("/admin/reports/export.csv?{range}&tenant={tenant}")]
    {
        let (status, lines) = csv(&app, &admin, &path).await;
        assert_eq!(status, 200);
        assert_eq!(summed(&lines), (1, expected.clone()), "{path}");
    }
    let (status, html) = app.page(Some(Role::PlatformAdmin), &format!("/admin/reports?{range}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("All tenants") && html.contains("$125.00"));

    // Another tenant's owner sees none of it; live mode holds nothing; a month report holds it all.
    let other = app.other_tenant_owner_cookie().await;
    let (status, lines) = csv(&app, &other, &format!("/reports/export.csv?{range}")).await;
    assert_eq!((status, lines.len()), (200, 1), "{lines:?}");
    let (_, lines) = csv(&app, &owner, &format!("/reports/export.csv?{range}&mode=live")).await;
    assert_eq!(lines.len(), 1);
    let (_, lines) = csv(&app, &owner, "/reports/export.csv?period=month").await;
    assert_eq!(summed(&lines), (1, expected));
}

#[tokio::test]
async fn a_bad_report_filter_is_refused_in_words() {
    let app = spawn_app().await;
    let owner = app.session_cookie(Role::TenantOwner).await;
    for (query, words) in [
        ("period=week", "by day or by month"),
        ("from=yesterday", "YYYY-MM-DD"),
        ("from=2026-12-07&to=2026-12-01", "comes after"),
        ("from=2020-01-01&to=2026-12-01", "report by month"),
        ("mode=both", "live or test"),
    ] {
        let (status, body) =
            app.json_with_cookie(Method::GET, &format!("/reports/export.csv?{query}"), &owner, None).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert!(body.to_string().contains(words), "{query}: {body}");
    }
    let (status, html) = app.page(Some(Role::TenantOwner), "/reports?period=week").await;
    assert_eq!(status, 422);
    assert!(html.contains("by day or by month"));
}
