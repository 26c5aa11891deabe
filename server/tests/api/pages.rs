use domain::auth::Role;
use reqwest::header;

use crate::helpers::{Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_consultant_dashboard_shows_the_real_household() {
    let app = spawn_app().await;
    let (status, html) = app.page(Some(Role::Consultant), "/dashboard").await;
    assert_eq!(status, 200);
    for text in ["Welcome, <!>Casey Consultant", "Northwind Auctions", "Frankie Family", "Invite a family member"] {
        assert!(html.contains(text), "{text} missing");
    }
    let (status, html) = app.page(Some(Role::FamilyMember), "/dashboard").await;
    assert_eq!(status, 200);
    assert!(html.contains("Casey Consultant&#x27;s household") || html.contains("Casey Consultant's household"));
    assert!(!html.contains("Invite a family member"), "family members cannot invite");
}

#[tokio::test]
async fn tenant_settings_list_the_tenants_people() {
    let app = spawn_app().await;
    let (status, html) = app.page(Some(Role::TenantAdmin), "/settings").await;
    assert_eq!(status, 200);
    for text in ["Northwind Auctions", "Olivia Owner", "Adam Admin", "Casey Consultant", "Frankie Family"] {
        assert!(html.contains(text), "{text} missing");
    }
    assert!(!html.contains("Pat Platform"), "platform admins are not tenant members");
    assert!(!html.contains(">Rename<"), "only the owner renames the tenant");
    let (_, owner_html) = app.page(Some(Role::TenantOwner), "/settings").await;
    assert!(owner_html.contains(">Rename<"));
}

#[tokio::test]
async fn the_admin_page_lists_every_tenant_and_user() {
    let app = spawn_app().await;
    let admin = app.client();
    app.sign_in(&admin, Role::PlatformAdmin).await;
    let created = app
        .rpc(
            &admin,
            "create_tenant",
            &[("name", "Fjord Advisory"), ("owner_email", "owner@fjord.example"), ("owner_name", "Freya Fjord")],
        )
        .await;
    assert_eq!(created.status(), 200);
    let (status, html) = app.page(Some(Role::PlatformAdmin), "/admin/people").await;
    assert_eq!(status, 200);
    for text in ["Northwind Auctions", "Fjord Advisory", "Freya Fjord", "Pat Platform", "Invited"] {
        assert!(html.contains(text), "{text} missing");
    }
}

#[tokio::test]
async fn a_visitor_without_a_session_gets_401_and_a_way_to_sign_in() {
    let app = spawn_app().await;
    let (status, html) = app.page(None, "/settings").await;
    assert_eq!(status, 401);
    assert!(html.contains("/sign-in?next=/settings"));
    let (status, html) = app.page(Some(Role::Consultant), "/settings").await;
    assert_eq!(status, 403);
    assert!(html.contains("Your role does not give you access"));
    let (status, _) = app.page(None, "/no/such/page").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_buyer_pages_and_sign_in_come_without_the_wasm_app() {
    let app = spawn_app().await;
    for path in ["/sign-in", "/sign-in?signed_out=1", "/pay/no-such-token", "/pay/complete?session=cs_unknown"] {
        let (_, html) = app.page(None, path).await;
        assert!(!html.contains("/pkg/remit.js") && !html.contains(".wasm"), "{path} loads the wasm app");
        assert!(html.contains(r#"<script src="/plain.js" defer"#), "{path} lacks its script");
        assert!(html.contains("/pkg/remit.css"), "{path} lacks the stylesheet");
    }
    for (role, path) in [(None, "/forgot-password"), (Some(Role::Consultant), "/dashboard"), (None, "/payment")] {
        let (_, html) = app.page(role, path).await;
        assert!(html.contains("/pkg/remit.js"), "{path} lacks the wasm app");
        assert!(!html.contains("/plain.js"), "{path} has the plain pages' script");
    }
}

#[tokio::test]
async fn the_home_page_sends_each_role_home() {
    let app = spawn_app().await;
    for (role, home) in [
        (None, "/sign-in"),
        (Some(Role::PlatformAdmin), "/admin"),
        (Some(Role::TenantAdmin), "/tenant"),
        (Some(Role::FamilyMember), "/dashboard"),
    ] {
        let mut request = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/"))
            .header(header::ACCEPT, "text/html");
        if let Some(role) = role {
            request = request.header(header::COOKIE, app.session_cookie(role).await);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 302, "{role:?}");
        assert_eq!(response.headers()[header::LOCATION], home, "{role:?}");
    }
}

#[tokio::test]
async fn the_outbox_shows_mail_and_serves_attachments_to_platform_admins() {
    // Mail goes to the local outbox (no SMTP).
    let app = spawn_app_with(Options { smtp_url: Some(String::new()), ..Options::default() }).await;
    let mut tx = app.services.pool.begin().await.unwrap();
    let email_id = domain::mail::enqueue(
        &mut tx,
        domain::mail::OutgoingEmail {
            tenant_id: None,
            to: "buyer@example.com".into(),
            subject: "Your receipt".into(),
            text_body: "Thank you.".into(),
            attachments: vec![domain::mail::Attachment {
                filename: "receipt.pdf".into(),
                content_type: "application/pdf".into(),
                content: b"%PDF-1.7 test".to_vec(),
            }],
            links: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.wait_for_jobs().await;

    let (status, html) = app.page(Some(Role::PlatformAdmin), "/admin/outbox").await;
    assert_eq!(status, 200);
    assert!(html.contains("Your receipt") && html.contains("In outbox"));
    let (status, html) = app.page(Some(Role::PlatformAdmin), &format!("/admin/outbox/{email_id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Thank you.") && html.contains("receipt.pdf"));

    let attachment_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM email_attachments").fetch_one(&app.services.pool).await.unwrap();
    let url = app.url(&format!("/admin/outbox/{email_id}/attachments/{attachment_id}"));
    let download = reqwest::Client::new()
        .get(&url)
        .header(header::COOKIE, app.session_cookie(Role::PlatformAdmin).await)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"%PDF-1.7 test");
    let (status, _) = app.page(Some(Role::TenantOwner), &format!("/admin/outbox/{email_id}")).await;
    assert_eq!(status, 403);
}
