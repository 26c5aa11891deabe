use domain::auth::Role;
use reqwest::header;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_cross_site_sign_in_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let user = app.user(Role::Consultant);
    let response = reqwest::Client::new()
        .post(app.url("/rpc/sign_in"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("email", user.email.as_str()), ("password", user.password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("Cross-site request refused"));
    assert_eq!(app.count("sessions").await, 0);
}

#[tokio::test]
async fn a_post_without_origin_or_referer_is_refused() {
    let app = spawn_app().await;
    let response = reqwest::Client::new().post(app.url("/rpc/current_user")).send().await.unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_same_site_referer_is_enough_when_origin_is_missing() {
    let app = spawn_app().await;
    let response = reqwest::Client::new()
        .post(app.url("/rpc/current_user"))
        .header(header::REFERER, app.url("/sign-in"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_cross_site_post_carrying_the_session_is_refused_on_any_path() {
    let app = spawn_app().await;
    let cookie = app.session_cookie(Role::TenantOwner).await;
    for path in ["/rpc/rename_tenant", "/settings", "/anything"] {
        let response = reqwest::Client::new()
            .post(app.url(path))
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, "https://evil.example")
            .form(&[("name", "Hijacked")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    let name: String = sqlx::query_scalar("SELECT name FROM tenants").fetch_one(&app.services.pool).await.unwrap();
    assert_eq!(name, "Northwind Auctions");
}
