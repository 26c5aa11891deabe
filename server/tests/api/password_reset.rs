use domain::auth::Role;

use crate::helpers::{ErrorBody, TestApp, spawn_app};

/// The one-time link in the newest email to `to`, as received.
async fn link_in_latest_email(app: &TestApp, to: &str) -> String {
    app.latest_link(to, &app.url("/reset-password?token=")).await
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn forgot_password_emails_a_single_use_link_that_sets_a_new_password() {
    let app = spawn_app().await;
    let client = app.client();
    let user = app.user(Role::Consultant);
    let old_session = app.session_cookie(Role::Consultant).await;

    let response = app.rpc(&client, "request_password_reset", &[("email", &user.email.to_uppercase())]).await;
    assert_eq!(response.status(), 200);
    app.wait_for_jobs().await;
    let status: String = sqlx::query_scalar("SELECT status FROM emails WHERE to_address = $1")
        .bind(&user.email)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(status, "sent", "the job delivered the email");

    let link = link_in_latest_email(&app, &user.email).await;
    assert!(link.starts_with(&app.url("/reset-password?token=")), "{link}");
    let page = client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(&user.email));

    let token = token_of(&link);
    let new_password = "a brand new password";
    let set = app
        .rpc(
            &client,
            "choose_password",
            &[("token", &token), ("password", new_password), ("confirmation", new_password)],
        )
        .await;
    assert_eq!(set.status(), 200);
    assert_eq!(app.count("sessions").await, 0, "sessions opened with the old password must end: {old_session}");

    let reuse = app
        .rpc(
            &client,
            "choose_password",
            &[("token", &token), ("password", "another password!"), ("confirmation", "another password!")],
        )
        .await;
    assert_eq!(reuse.status(), 422);
    let body: ErrorBody = reuse.json().await.unwrap();
    assert!(body.message.contains("expired or was already used"));

    let old = app.rpc(&client, "sign_in", &[("email", &user.email), ("password", &user.password)]).await;
    assert_eq!(old.status(), 401);
    let new = app.rpc(&client, "sign_in", &[("email", &user.email), ("password", new_password)]).await;
    assert_eq!(new.status(), 200);
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_answer_and_no_mail() {
    let app = spawn_app().await;
    let response = app.rpc(&app.client(), "request_password_reset", &[("email", "nobody@example.com")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.count("emails").await, 0);
    assert_eq!(app.count("account_tokens").await, 0);
}

#[tokio::test]
async fn reset_requests_are_capped_per_hour() {
    let app = spawn_app().await;
    let email = app.user(Role::TenantAdmin).email.clone();
    for _ in 0..5 {
        let response = app.rpc(&app.client(), "request_password_reset", &[("email", &email)]).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.count("emails").await, 3);
}

#[tokio::test]
async fn a_weak_or_mismatched_password_is_refused_and_the_link_stays_usable() {
    let app = spawn_app().await;
    let client = app.client();
    let user = app.user(Role::TenantOwner);
    app.rpc(&client, "request_password_reset", &[("email", &user.email)]).await;
    let token = token_of(&link_in_latest_email(&app, &user.email).await);

    let short = app
        .rpc(&client, "choose_password", &[("token", &token), ("password", "short"), ("confirmation", "short")])
        .await;
    assert_eq!(short.status(), 422);
    assert_eq!(short.json::<ErrorBody>().await.unwrap().field.as_deref(), Some("password"));
    let mismatch = app
        .rpc(
            &client,
            "choose_password",
            &[("token", &token), ("password", "long enough one"), ("confirmation", "long enough two")],
        )
        .await;
    assert_eq!(mismatch.status(), 422);
    assert_eq!(mismatch.json::<ErrorBody>().await.unwrap().field.as_deref(), Some("confirmation"));
    let used: i64 = sqlx::query_scalar("SELECT count(*) FROM account_tokens WHERE used_at IS NOT NULL")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(used, 0);
    let ok = app
        .rpc(
            &client,
            "choose_password",
            &[("token", &token), ("password", "long enough one"), ("confirmation", "long enough one")],
        )
        .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_bogus_link_shows_a_clear_page() {
    let app = spawn_app().await;
    let page = app.client().get(app.url("/reset-password?token=not-a-real-token")).send().await.unwrap();
    assert_eq!(page.status(), 422);
    assert!(page.text().await.unwrap().contains("expired or was already used"));
}

#[tokio::test]
async fn an_invited_consultant_chooses_a_password_and_signs_in() {
    let app = spawn_app().await;
    let owner = app.client();
    app.sign_in(&owner, Role::TenantOwner).await;
    let invite = app
        .rpc(
            &owner,
            "invite_member",
            &[("email", "new.consultant@northwind.example"), ("display_name", "Nia New"), ("role", "consultant")],
        )
        .await;
    assert_eq!(invite.status(), 200);
    let again = app
        .rpc(
            &owner,
            "invite_member",
            &[("email", "NEW.consultant@northwind.example"), ("display_name", "Nia Again"), ("role", "consultant")],
        )
        .await;
    // One account per email address, and the answer does not tell that it exists already.
    assert_eq!(again.status(), 200);
    let accounts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE lower(email) = 'new.consultant@northwind.example'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(accounts, 1);

    let invitation = app.mailbox.wait_for_subject("new.consultant@northwind.example", "invited you to Remit").await;
    assert_eq!(invitation.subject(), "Olivia Owner invited you to Remit");
    let link = invitation.link(&app.url("/reset-password?token=")).unwrap();
    let newcomer = app.client();
    let password = "consulting since today, gladly";
    let set = app
        .rpc(
            &newcomer,
            "choose_password",
            &[("token", &token_of(&link)), ("password", password), ("confirmation", password)],
        )
        .await;
    assert_eq!(set.status(), 200);
    let signed_in =
        app.rpc(&newcomer, "sign_in", &[("email", "new.consultant@northwind.example"), ("password", password)]).await;
    assert_eq!(signed_in.status(), 200);
    assert_eq!(signed_in.headers()["location"], "/dashboard");
}
