use domain::auth::Role;
use reqwest::header;

use crate::helpers::{ErrorBody, Options, spawn_app, spawn_app_with};

#[tokio::test]
async fn signing_in_sets_a_protective_session_cookie() {
    let app = spawn_app().await;
    let client = app.client();
    let response = app.sign_in(&client, Role::Consultant).await;
    assert_eq!(response.status(), 200);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("remit_session="));
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain-http deployments cannot use Secure cookies");
    assert_eq!(response.headers()[header::LOCATION], "/dashboard");

    let dashboard = client.get(app.url("/dashboard")).send().await.unwrap();
    assert_eq!(dashboard.status(), 200);
    assert!(dashboard.text().await.unwrap().contains("Casey Consultant"));
}

#[tokio::test]
async fn the_cookie_is_secure_when_remit_is_served_over_https() {
    let app = spawn_app_with(Options { public_base_url_scheme: "https", ..Options::default() }).await;
    let client = reqwest::Client::new();
    let user = app.user(Role::Consultant);
    let response = client
        .post(app.url("/rpc/sign_in"))
        .header(header::ORIGIN, app.address.replace("http://", "https://"))
        .header(header::ACCEPT, "application/json")
        .form(&[("email", user.email.as_str()), ("password", user.password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()[header::SET_COOKIE].to_str().unwrap().contains("; Secure"));
}

#[tokio::test]
async fn the_session_id_is_stored_only_as_a_hash() {
    let app = spawn_app().await;
    let client = app.client();
    let response = app.sign_in(&client, Role::Consultant).await;
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    let token = cookie.split(';').next().unwrap().trim_start_matches("remit_session=").to_owned();
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT id_hash FROM sessions").fetch_all(&app.services.pool).await.unwrap();
    assert!(!stored.is_empty());
    assert!(stored.iter().all(|h| h.as_slice() != token.as_bytes()));
    assert!(stored.contains(&domain::crypto::token_hash(&token)));
}

async fn error_of(response: reqwest::Response) -> (u16, ErrorBody) {
    let status = response.status().as_u16();
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.status, status, "the body repeats the HTTP status");
    (status, body)
}

#[tokio::test]
async fn a_wrong_password_or_unknown_email_gets_the_same_401() {
    let app = spawn_app().await;
    let client = app.client();
    let email = app.user(Role::Consultant).email.clone();
    let (status, wrong) =
        error_of(app.rpc(&client, "sign_in", &[("email", &email), ("password", "not the password")]).await).await;
    assert_eq!(status, 401);
    assert_eq!(wrong.message, "The email or password is incorrect.");
    let (status, unknown) =
        error_of(app.rpc(&client, "sign_in", &[("email", "nobody@example.com"), ("password", "whatever")]).await).await;
    assert_eq!(status, 401);
    assert_eq!(unknown.message, wrong.message);
    assert_eq!(app.count("sessions").await, 0, "a failed sign-in opened a session");
}

#[tokio::test]
async fn empty_and_over_long_fields_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    let client = app.client();
    let long_email = format!("{}@example.com", "a".repeat(300));
    let long_password = "p".repeat(1025);
    let cases: [(&str, &str, &str, &str); 4] = [
        ("", "password", "email", "Enter your email address."),
        ("consultant@northwind.example", "", "password", "Enter your password."),
        (&long_email, "password", "email", "Email addresses can be at most 254 characters."),
        ("consultant@northwind.example", &long_password, "password", "Passwords can be at most 1024 characters."),
    ];
    for (email, password, field, message) in cases {
        let (status, body) =
            error_of(app.rpc(&client, "sign_in", &[("email", email), ("password", password)]).await).await;
        assert_eq!(status, 422, "{field}");
        assert_eq!(body.field.as_deref(), Some(field));
        assert_eq!(body.message, message);
    }
    let (status, body) = error_of(app.rpc(&client, "sign_in", &[("email", "a@b.example")]).await).await;
    assert_eq!(status, 400, "a missing field is a malformed request");
    assert!(body.message.contains("incomplete"));
    assert_eq!(app.count("sessions").await, 0);
    assert_eq!(app.count("sign_in_failures").await, 0, "refused input must not count as a failure");
}

#[tokio::test]
async fn the_sixth_failure_within_15_minutes_is_throttled_even_with_the_right_password() {
    let app = spawn_app().await;
    let client = app.client();
    let user = app.user(Role::Consultant);
    for _ in 0..5 {
        let response = app.rpc(&client, "sign_in", &[("email", &user.email), ("password", "wrong password")]).await;
        assert_eq!(response.status(), 401);
    }
    let response = app.rpc(&client, "sign_in", &[("email", &user.email), ("password", &user.password)]).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "Retry-After {retry_after}");
    let body: ErrorBody = response.json().await.unwrap();
    assert!(body.message.starts_with("Too many failed sign-in attempts"), "{}", body.message);
    // Another address is not affected.
    assert_eq!(app.sign_in(&client, Role::TenantOwner).await.status(), 200);
}

#[tokio::test]
async fn the_limit_holds_under_concurrent_attempts() {
    let app = spawn_app().await;
    let email = app.user(Role::Consultant).email.clone();
    let attempts = (0..10).map(|_| {
        let client = app.client();
        let url = app.url("/rpc/sign_in");
        let email = email.clone();
        async move {
            client
                .post(url)
                .form(&[("email", email.as_str()), ("password", "wrong password")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5, "{statuses:?}");
}

async fn futures_join_all<F: std::future::Future<Output = u16> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn signing_in_again_rotates_the_session_id() {
    let app = spawn_app().await;
    let client = app.client();
    let first = app.sign_in(&client, Role::Consultant).await.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    let second =
        app.sign_in(&client, Role::Consultant).await.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    let id = |c: &str| c.split(';').next().unwrap().to_owned();
    assert_ne!(id(&first), id(&second));
    assert_eq!(app.count("sessions").await, 1, "the old session must end at sign-in");
    let old = reqwest::Client::new()
        .post(app.url("/rpc/consultant_dashboard"))
        .header(header::COOKIE, id(&first))
        .header(header::ORIGIN, &app.address)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
}

#[tokio::test]
async fn signing_out_destroys_the_session() {
    let app = spawn_app().await;
    let cookie = app.session_cookie(Role::Consultant).await;
    let client = reqwest::Client::new();
    let call = |path: &'static str| {
        client
            .post(app.url(path))
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, &app.address)
            .header(header::ACCEPT, "application/json")
            .send()
    };
    assert_eq!(call("/rpc/consultant_dashboard").await.unwrap().status(), 200);
    let out = call("/rpc/sign_out").await.unwrap();
    assert_eq!(out.status(), 200);
    assert!(out.headers()[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(app.count("sessions").await, 0);
    assert_eq!(call("/rpc/consultant_dashboard").await.unwrap().status(), 401, "the old id still works");
}

#[tokio::test]
async fn a_plain_form_post_redirects_like_a_browser_expects() {
    let app = spawn_app().await;
    let client = app.client();
    let user = app.user(Role::Consultant);
    let form = |password: &str| {
        client
            .post(app.url("/rpc/sign_in"))
            .header(header::ACCEPT, "text/html")
            .header(header::REFERER, app.url("/sign-in"))
            .form(&[("email", user.email.as_str()), ("password", password), ("next", "")])
    };
    let failed = form("wrong password").send().await.unwrap();
    assert_eq!(failed.status(), 302);
    let back = failed.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(back.starts_with(&app.url("/sign-in?")) && back.contains("__err="), "{back}");
    // The page the browser lands on shows the error.
    let page = client.get(&back).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("The email or password is incorrect."));

    let ok = form(&user.password).send().await.unwrap();
    assert_eq!(ok.status(), 302);
    assert_eq!(ok.headers()[header::LOCATION], "/dashboard");
}

#[tokio::test]
async fn sign_in_follows_a_local_next_but_not_a_foreign_one() {
    let app = spawn_app().await;
    let user = app.user(Role::TenantOwner);
    for (next, expected) in [("/settings?tab=people", "/settings?tab=people"), ("//evil.example/x", "/tenant")] {
        let client = app.client();
        let response =
            app.rpc(&client, "sign_in", &[("email", &user.email), ("password", &user.password), ("next", next)]).await;
        assert_eq!(response.headers()[header::LOCATION], expected);
    }
}
