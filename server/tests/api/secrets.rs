//! Secrets never reach the logs: passwords, session ids, one-time tokens, the encryption key.

use domain::auth::Role;
use reqwest::header;

use crate::helpers::{TEST_KEY, captured_logs, spawn_app};

#[tokio::test]
async fn passwords_session_ids_and_tokens_never_appear_in_the_logs() {
    let app = spawn_app().await;
    let client = app.client();
    let user = app.user(Role::Consultant);

    let wrong = app.rpc(&client, "sign_in", &[("email", &user.email), ("password", "wrong-password-xyzzy")]).await;
    assert_eq!(wrong.status(), 401);
    let signed_in = app.sign_in(&client, Role::Consultant).await;
    let cookie = signed_in.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    let session_id = cookie.split(';').next().unwrap().trim_start_matches("remit_session=").to_owned();
    assert_eq!(client.get(app.url("/dashboard")).send().await.unwrap().status(), 200);

    app.rpc(&client, "request_password_reset", &[("email", &user.email)]).await;
    app.wait_for_jobs().await;
    let link = app.latest_link(&user.email, &app.url("/reset-password?token=")).await;
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let page = client.get(app.url(&format!("/reset-password?token={token}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let new_password = "my-new-password-plugh";
    let chosen = app
        .rpc(
            &client,
            "choose_password",
            &[("token", &token), ("password", new_password), ("confirmation", new_password)],
        )
        .await;
    assert_eq!(chosen.status(), 200);

    let logs = captured_logs();
    assert!(logs.contains("signed in"), "the flow was logged at all");
    for (what, secret) in [
        ("password", user.password.as_str()),
        ("wrong password", "wrong-password-xyzzy"),
        ("new password", new_password),
        ("session id", session_id.as_str()),
        ("reset token", token.as_str()),
        ("encryption key", TEST_KEY),
    ] {
        let leak = logs.lines().find(|l| l.contains(secret));
        assert!(leak.is_none(), "the {what} appears in the logs: {}", leak.unwrap_or_default());
    }
}
