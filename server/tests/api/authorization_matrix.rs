//! Every page, server function and route that exists × every role (and no session) → the
//! expected status. A new page or server function without a row here fails the test.

use std::collections::BTreeSet;

use domain::{
    auth::{
        Role,
        account_tokens::{self, Purpose},
    },
    mail,
};
use reqwest::header;

use crate::helpers::{TestApp, spawn_app};

#[derive(Clone, Copy, Debug)]
enum Access {
    /// Public: everyone, signed in or not, gets the success status.
    Everyone,
    /// Only these roles; no session is 401, another role is 403.
    Roles(&'static [Role]),
}

use domain::auth::policy::{CONSULTANT, CONSULTANT_HOUSEHOLD, PLATFORM_ADMIN, TENANT_OWNER, TENANT_STAFF};

#[derive(Clone, Copy)]
enum Kind {
    Page,
    Rpc,
    Route,
}

struct Case {
    kind: Kind,
    /// The path as registered (with `{param}` placeholders).
    pattern: &'static str,
    access: Access,
    /// Status when allowed.
    success: u16,
}

const fn page(pattern: &'static str, access: Access) -> Case {
    Case { kind: Kind::Page, pattern, access, success: 200 }
}

const fn rpc(pattern: &'static str, access: Access) -> Case {
    Case { kind: Kind::Rpc, pattern, access, success: 200 }
}

const CASES: &[Case] = &[
    Case { kind: Kind::Page, pattern: "/", access: Access::Everyone, success: 302 },
    page("/sign-in", Access::Everyone),
    page("/forgot-password", Access::Everyone),
    page("/reset-password", Access::Everyone),
    page("/dashboard", Access::Roles(CONSULTANT_HOUSEHOLD)),
    page("/settings", Access::Roles(TENANT_STAFF)),
    page("/admin", Access::Roles(PLATFORM_ADMIN)),
    page("/admin/outbox", Access::Roles(PLATFORM_ADMIN)),
    page("/admin/outbox/{id}", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/current_user", Access::Everyone),
    rpc("/rpc/sign_in", Access::Everyone),
    rpc("/rpc/sign_out", Access::Everyone),
    rpc("/rpc/request_password_reset", Access::Everyone),
    rpc("/rpc/inspect_link", Access::Everyone),
    rpc("/rpc/choose_password", Access::Everyone),
    rpc("/rpc/consultant_dashboard", Access::Roles(CONSULTANT_HOUSEHOLD)),
    rpc("/rpc/invite_family_member", Access::Roles(CONSULTANT)),
    rpc("/rpc/tenant_settings", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/rename_tenant", Access::Roles(TENANT_OWNER)),
    rpc("/rpc/invite_member", Access::Roles(TENANT_STAFF)),
    rpc("/rpc/admin_overview", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/create_tenant", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/outbox", Access::Roles(PLATFORM_ADMIN)),
    rpc("/rpc/outbox_email", Access::Roles(PLATFORM_ADMIN)),
    Case { kind: Kind::Route, pattern: "/healthz", access: Access::Everyone, success: 200 },
    Case { kind: Kind::Route, pattern: "/readyz", access: Access::Everyone, success: 200 },
    Case {
        kind: Kind::Route,
        pattern: "/admin/outbox/{email_id}/attachments/{attachment_id}",
        access: Access::Roles(PLATFORM_ADMIN),
        success: 200,
    },
];

struct Fixtures {
    email_id: String,
    attachment_id: String,
    link_token: String,
    throwaway_user: uuid::Uuid,
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let mut tx = app.services.pool.begin().await.unwrap();
    let email_id = mail::enqueue(
        &mut tx,
        mail::OutgoingEmail {
            tenant_id: None,
            to: "someone@example.com".into(),
            subject: "Fixture".into(),
            text_body: "x".into(),
            attachments: vec![mail::Attachment {
                filename: "a.txt".into(),
                content_type: "text/plain".into(),
                content: b"a".to_vec(),
            }],
        },
    )
    .await
    .unwrap();
    let throwaway_user = uuid::Uuid::new_v4();
    let tenant: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants").fetch_one(&mut *tx).await.unwrap();
    sqlx::query("INSERT INTO users (id, tenant_id, email, display_name, role) VALUES ($1, $2, 'throwaway@example.com', 'Throwaway', 'consultant')")
        .bind(throwaway_user)
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    let link_token = account_tokens::issue(&mut tx, throwaway_user, Purpose::Invitation).await.unwrap();
    tx.commit().await.unwrap();
    let attachment_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM email_attachments").fetch_one(&app.services.pool).await.unwrap();
    Fixtures { email_id: email_id.to_string(), attachment_id: attachment_id.to_string(), link_token, throwaway_user }
}

/// The form a server function is called with: valid input, fresh where the call changes state.
async fn form_for(app: &TestApp, f: &Fixtures, path: &str, who: Option<Role>, n: usize) -> Vec<(String, String)> {
    let pairs = |p: &[(&str, String)]| p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<Vec<_>>();
    match path {
        "/rpc/sign_in" => {
            let user = app.user(who.unwrap_or(Role::Consultant));
            pairs(&[("email", user.email.clone()), ("password", user.password.clone())])
        }
        "/rpc/request_password_reset" => pairs(&[("email", "nobody@example.com".into())]),
        "/rpc/inspect_link" => pairs(&[("token", f.link_token.clone())]),
        "/rpc/choose_password" => {
            let mut conn = app.services.pool.acquire().await.unwrap();
            let token = account_tokens::issue(&mut conn, f.throwaway_user, Purpose::PasswordReset).await.unwrap();
            pairs(&[
                ("token", token),
                ("password", "a long enough password".into()),
                ("confirmation", "a long enough password".into()),
            ])
        }
        "/rpc/invite_family_member" => {
            pairs(&[("email", format!("family{n}@example.com")), ("display_name", format!("Family {n}"))])
        }
        "/rpc/rename_tenant" => pairs(&[("name", format!("Northwind Auctions {n}"))]),
        "/rpc/invite_member" => pairs(&[
            ("email", format!("member{n}@example.com")),
            ("display_name", format!("Member {n}")),
            ("role", "consultant".into()),
        ]),
        "/rpc/create_tenant" => pairs(&[
            ("name", format!("Tenant {n}")),
            ("owner_email", format!("owner{n}@example.com")),
            ("owner_name", format!("Owner {n}")),
        ]),
        "/rpc/outbox_email" => pairs(&[("id", f.email_id.clone())]),
        _ => vec![],
    }
}

fn concrete(pattern: &str, f: &Fixtures) -> String {
    let path = pattern
        .replace("{email_id}", &f.email_id)
        .replace("{attachment_id}", &f.attachment_id)
        .replace("{id}", &f.email_id);
    if path == "/reset-password" { format!("{path}?token={}", f.link_token) } else { path }
}

#[tokio::test]
async fn every_route_and_server_function_answers_each_role_as_expected() {
    let app = spawn_app().await;
    let f = fixtures(&app).await;

    // Everything that exists has a row here.
    let listed: BTreeSet<&str> = CASES.iter().map(|c| c.pattern).collect();
    let pages: BTreeSet<String> =
        leptos_axum::generate_route_list(app::App).iter().map(|r| r.path().to_owned()).collect();
    let rpcs: BTreeSet<String> = server_fn::axum::server_fn_paths().map(|(p, _)| p.to_owned()).collect();
    let missing: Vec<_> = pages.iter().chain(rpcs.iter()).filter(|p| !listed.contains(p.as_str())).collect();
    assert!(missing.is_empty(), "no expectation for {missing:?}");

    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut failures = Vec::new();
    let mut n = 0;
    for case in CASES {
        for who in [
            None,
            Some(Role::PlatformAdmin),
            Some(Role::TenantOwner),
            Some(Role::TenantAdmin),
            Some(Role::Consultant),
            Some(Role::FamilyMember),
        ] {
            n += 1;
            let expected = match (case.access, who) {
                (Access::Everyone, _) => case.success,
                (Access::Roles(_), None) => 401,
                (Access::Roles(roles), Some(role)) if roles.contains(&role) => case.success,
                (Access::Roles(_), Some(_)) => 403,
            };
            let url = app.url(&concrete(case.pattern, &f));
            let mut request = match case.kind {
                Kind::Rpc => client
                    .post(&url)
                    .header(header::ACCEPT, "application/json")
                    .form(&form_for(&app, &f, case.pattern, who, n).await),
                Kind::Page | Kind::Route => client.get(&url).header(header::ACCEPT, "text/html"),
            }
            .header(header::ORIGIN, &app.address);
            if let Some(role) = who {
                request = request.header(header::COOKIE, app.session_cookie(role).await);
            }
            let status = request.send().await.unwrap().status().as_u16();
            if status != expected {
                failures.push(format!("{} as {who:?}: expected {expected}, got {status}", case.pattern));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}
