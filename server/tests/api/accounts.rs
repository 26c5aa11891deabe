//! Accounts people can manage: their own password and sessions; tenant staff deactivating,
//! reactivating and re-roling users and handling invitations; platform admins suspending
//! tenants. Every action is audited.

use domain::auth::Role;
use reqwest::{Method, header};

use crate::{
    billing::signed_in,
    checkout::{api_key, start, winning},
    helpers::{TestApp, spawn_app},
    tenant_stripe::connected,
};

async fn audited(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1")
        .bind(action)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

async fn sign_in_status(app: &TestApp, email: &str, password: &str) -> (u16, String) {
    app.attempt_sign_in(email, password, None).await
}

#[tokio::test]
async fn a_person_changes_their_password_with_the_current_one() {
    let app = spawn_app().await;
    let user = app.user(Role::Consultant);
    let client = signed_in(&app, Role::Consultant).await;
    let other_session = app.session_cookie(Role::Consultant).await;
    let new = "quartz-lantern-orchard-55";
    let wrong = app
        .rpc(
            &client,
            "change_password",
            &[("current_password", "not it at all"), ("new_password", new), ("confirmation", new)],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["field"], "current_password");
    let weak = app
        .rpc(
            &client,
            "change_password",
            &[("current_password", &user.password), ("new_password", "password1234"), ("confirmation", "password1234")],
        )
        .await;
    assert_eq!(weak.status(), 422);
    let ok = app
        .rpc(
            &client,
            "change_password",
            &[("current_password", &user.password), ("new_password", new), ("confirmation", new)],
        )
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(client.get(app.url("/account")).send().await.unwrap().status(), 200, "this session stays");
    let other =
        reqwest::Client::new().get(app.url("/account")).header(header::COOKIE, other_session).send().await.unwrap();
    assert_eq!(other.status(), 401, "every other session ended");
    assert_eq!(sign_in_status(&app, &user.email, &user.password).await.0, 401);
    assert_eq!(sign_in_status(&app, &user.email, new).await.0, 200);
    app.mailbox.wait_for_subject(&user.email, "password was changed").await;
    assert_eq!(audited(&app, "user.password_changed").await, 1);
}

#[tokio::test]
async fn a_person_sees_their_sessions_and_signs_them_out() {
    let app = spawn_app().await;
    let user = app.user(Role::TenantAdmin);
    let phone = reqwest::Client::builder()
        .cookie_store(true)
        .user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Safari/604.1")
        .build()
        .unwrap();
    let response = phone
        .post(app.url("/rpc/sign_in"))
        .header(header::ORIGIN, &app.address)
        .header(header::ACCEPT, "application/json")
        .form(&[("email", user.email.as_str()), ("password", user.password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let laptop = signed_in(&app, Role::TenantAdmin).await;
    let page = laptop.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Safari on iPhone") && page.contains("This session") && page.contains("127.0.0.1"), "{page}");
    let id: uuid::Uuid = sqlx::query_scalar("SELECT public_id FROM sessions WHERE user_agent LIKE '%iPhone%'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    // Someone else cannot end it.
    let stranger = signed_in(&app, Role::Consultant).await;
    assert_eq!(app.rpc(&stranger, "sign_out_session", &[("id", &id.to_string())]).await.status(), 404);
    assert_eq!(phone.get(app.url("/account")).header(header::ACCEPT, "text/html").send().await.unwrap().status(), 200);
    assert_eq!(app.rpc(&laptop, "sign_out_session", &[("id", &id.to_string())]).await.status(), 200);
    assert_eq!(phone.get(app.url("/account")).send().await.unwrap().status(), 401, "the phone is signed out");
    // And everywhere else at once.
    let third = app.session_cookie(Role::TenantAdmin).await;
    assert_eq!(app.rpc(&laptop, "sign_out_other_sessions", &[]).await.status(), 200);
    let status =
        reqwest::Client::new().get(app.url("/account")).header(header::COOKIE, third).send().await.unwrap().status();
    assert_eq!(status, 401);
    assert_eq!(laptop.get(app.url("/account")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_deactivated_user_is_signed_out_and_refused_with_a_plain_message() {
    let app = spawn_app().await;
    let consultant = app.user(Role::Consultant);
    let session = app.session_cookie(Role::Consultant).await;
    let admin = signed_in(&app, Role::TenantAdmin).await;
    let id = consultant.id.to_string();
    assert_eq!(app.rpc(&admin, "set_user_active", &[("user_id", &id), ("active", "false")]).await.status(), 200);
    let (status, _) = app.json_with_cookie(Method::GET, "/account", &session, None).await;
    assert_eq!(status, 401, "sessions end at once");
    let (status, body) = sign_in_status(&app, &consultant.email, &consultant.password).await;
    assert_eq!(status, 403);
    assert!(body.contains("deactivated"), "{body}");
    let (status, body) = sign_in_status(&app, &consultant.email, "a wrong password here").await;
    assert_eq!(status, 401, "a wrong password learns nothing about the account: {body}");
    let page = admin.get(app.url("/settings")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Deactivated") && page.contains("Reactivate"), "{page}");
    assert_eq!(app.rpc(&admin, "set_user_active", &[("user_id", &id), ("active", "true")]).await.status(), 200);
    assert_eq!(sign_in_status(&app, &consultant.email, &consultant.password).await.0, 200);
    assert_eq!((audited(&app, "user.deactivated").await, audited(&app, "user.reactivated").await), (1, 1));
    // An admin manages consultants and families, not other admins or the owner.
    let owner_id = app.user(Role::TenantOwner).id.to_string();
    assert_eq!(app.rpc(&admin, "set_user_active", &[("user_id", &owner_id), ("active", "false")]).await.status(), 403);
    // Another tenant's user is not found.
    app.other_tenant_owner_cookie().await;
    let boss: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'boss@elsewhere.example'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(
        app.rpc(&admin, "set_user_active", &[("user_id", &boss.to_string()), ("active", "false")]).await.status(),
        404
    );
}

#[tokio::test]
async fn only_the_owner_changes_roles() {
    let app = spawn_app().await;
    let owner = signed_in(&app, Role::TenantOwner).await;
    let admin = signed_in(&app, Role::TenantAdmin).await;
    let admin_id = app.user(Role::TenantAdmin).id.to_string();
    assert_eq!(
        app.rpc(&admin, "change_user_role", &[("user_id", &admin_id), ("role", "consultant")]).await.status(),
        403
    );
    assert_eq!(
        app.rpc(&owner, "change_user_role", &[("user_id", &admin_id), ("role", "consultant")]).await.status(),
        200
    );
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
        .bind(app.user(Role::TenantAdmin).id)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(role, "consultant");
    let (status, _) = app.page(Some(Role::TenantAdmin), "/settings").await;
    assert_eq!(status, 403, "the new role applies at once");
    // A consultant with a household stays a consultant.
    let consultant_id = app.user(Role::Consultant).id.to_string();
    let response = app.rpc(&owner, "change_user_role", &[("user_id", &consultant_id), ("role", "tenant_admin")]).await;
    assert_eq!(response.status(), 409);
    assert_eq!(audited(&app, "user.role_changed").await, 1);
}

#[tokio::test]
async fn pending_invitations_can_be_resent_and_revoked() {
    let app = spawn_app().await;
    let owner = signed_in(&app, Role::TenantOwner).await;
    let invite = |email: &'static str| {
        let (app, owner) = (&app, &owner);
        async move {
            app.rpc(owner, "invite_member", &[("email", email), ("display_name", "Invitee"), ("role", "consultant")])
                .await
        }
    };
    assert_eq!(invite("pending@example.com").await.status(), 200);
    let first = app.latest_link("pending@example.com", &app.url("/reset-password?token=")).await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'pending@example.com'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    let admin = signed_in(&app, Role::TenantAdmin).await;
    assert_eq!(app.rpc(&admin, "resend_invitation", &[("user_id", &id.to_string())]).await.status(), 200);
    let second = app.latest_link("pending@example.com", &app.url("/reset-password?token=")).await;
    assert_ne!(first, second);
    let token = |link: &str| link.split("token=").nth(1).unwrap().to_owned();
    let inspect = |t: String| {
        let app = &app;
        async move { app.rpc(&app.client(), "inspect_link", &[("token", &t)]).await.status().as_u16() }
    };
    assert_eq!(inspect(token(&first)).await, 422, "the old link stops working");
    assert_eq!(inspect(token(&second)).await, 200);
    assert_eq!(app.rpc(&owner, "revoke_invitation", &[("user_id", &id.to_string())]).await.status(), 200);
    assert_eq!(inspect(token(&second)).await, 422, "a revoked invitation's link stops working");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'pending@example.com'")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!((audited(&app, "invitation.resent").await, audited(&app, "invitation.revoked").await), (1, 1));
    // An accepted invitation is not "pending".
    let joined = app.user(Role::Consultant).id.to_string();
    assert_eq!(app.rpc(&owner, "revoke_invitation", &[("user_id", &joined)]).await.status(), 409);
}

#[tokio::test]
async fn a_suspended_tenant_cannot_sign_in_use_keys_or_take_payments() {
    let app = spawn_app().await;
    connected(&app).await;
    let key = api_key(&app).await;
    let (status, _) = app.json_with_key(Method::POST, "/api/v1/winnings", &key, Some(winning("SUSP-1", 5_000))).await;
    assert_eq!(status, 201);
    let token = crate::checkout::payment_token(&app).await;
    let owner_session = app.session_cookie(Role::TenantOwner).await;
    let tenant = app.tenant_id().await.to_string();
    let admin = signed_in(&app, Role::PlatformAdmin).await;
    let refused = app.rpc(&admin, "suspend_tenant", &[("tenant_id", &tenant), ("reason", "")]).await;
    assert_eq!(refused.status(), 422, "a reason is required");
    let response = app.rpc(&admin, "suspend_tenant", &[("tenant_id", &tenant), ("reason", "Unpaid invoices")]).await;
    assert_eq!(response.status(), 200);
    let (status, _) = app.json_with_cookie(Method::GET, "/account", &owner_session, None).await;
    assert_eq!(status, 401, "its sessions ended");
    let owner = app.user(Role::TenantOwner);
    let (status, body) = sign_in_status(&app, &owner.email, &owner.password).await;
    assert_eq!(status, 403);
    assert!(body.contains("suspended"), "{body}");
    let (status, body) = app.json_with_key(Method::GET, "/api/v1/tenant", &key, None).await;
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().contains("suspended"), "{body}");
    let page = reqwest::get(app.url(&format!("/pay/{token}"))).await.unwrap().text().await.unwrap();
    assert!(page.contains("Payments are paused"), "{page}");
    let (status, _) = start(&app, &token).await;
    assert_eq!(status, 409);
    app.mailbox.wait_for_subject(&owner.email, "suspended").await;
    let (_, people) = app.page(Some(Role::PlatformAdmin), "/admin/people").await;
    assert!(people.contains("Unpaid invoices") && people.contains("Reactivate"), "{people}");
    // Nothing was deleted: reactivated, everything works again.
    assert_eq!(app.rpc(&admin, "reactivate_tenant", &[("tenant_id", &tenant)]).await.status(), 200);
    assert_eq!(sign_in_status(&app, &owner.email, &owner.password).await.0, 200);
    assert_eq!(app.json_with_key(Method::GET, "/api/v1/tenant", &key, None).await.0, 200);
    let (status, body) = start(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    let status: String = sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1::uuid")
        .bind(&tenant)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(status, "active", "back to where it was");
    assert_eq!((audited(&app, "tenant.suspended").await, audited(&app, "tenant.reactivated").await), (1, 1));
}
