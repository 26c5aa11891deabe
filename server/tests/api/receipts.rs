//! PDF receipts: made once per order, stored with their SHA-256, emailed exactly once (even when
//! the process dies between commit and send), downloadable by the buyer's token and the tenant
//! only, and checkable by their verification code.

use std::{process::Stdio, time::Duration};

use base64::Engine as _;
use domain::auth::Role;
use reqwest::{Method, header};
use sha2::{Digest as _, Sha256};
use stripe_sandbox::DeliveryMode;

use crate::{
    billing::{flush, pay},
    checkout::{api_key, start, won_lot},
    helpers::{Options, SecondProcess, TestApp, spawn_app, spawn_app_with},
    mail::SmtpServer,
};

/// Runs a poppler tool (or qpdf) on `pdf` and returns what it prints.
pub(crate) fn pdf_tool(tool: &str, args: &[&str], pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("remit-receipt-{}.pdf", uuid::Uuid::new_v4()));
    std::fs::write(&path, pdf).unwrap();
    let output = std::process::Command::new(tool)
        .args(args)
        .arg(&path)
        .args(if tool == "pdftotext" { &["-"][..] } else { &[][..] })
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool} is needed for this test (poppler-utils, qpdf; `make test` installs them): {e}")
        });
    std::fs::remove_file(&path).ok();
    assert!(output.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Asserts that a strict reader accepts `pdf`'s structure as it is (poppler would quietly rebuild
/// a wrong cross-reference table).
pub(crate) fn assert_well_formed(pdf: &[u8]) {
    let check = pdf_tool("qpdf", &["--check"], pdf);
    assert!(check.contains("No syntax or stream encoding errors found") && !check.contains("WARNING"), "{check}");
}

/// Pays the registered lot behind `token` with 4242 and applies Stripe's events.
pub(crate) async fn paid(app: &TestApp, token: &str) {
    let (status, body) = start(app, token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(pay(body["url"].as_str().unwrap(), "4242424242424242").await.0, 303);
    flush(app).await;
}

async fn receipt_row(app: &TestApp) -> (String, String, Vec<u8>, Vec<u8>) {
    sqlx::query_as("SELECT number, verification_code, sha256, pdf FROM receipts")
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_paid_lot_gets_one_receipt_with_its_hash_emailed_as_a_pdf_with_embedded_subset_fonts() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Duplicate);
    let token = won_lot(&app, 12_500).await;
    paid(&app, &token).await;

    assert_eq!(app.count("receipts").await, 1, "one receipt, however often the events arrive");
    let (number, code, sha256, pdf) = receipt_row(&app).await;
    assert_eq!(sha256, Sha256::digest(&pdf).to_vec(), "the stored hash is the PDF's");
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    assert!(pdf.len() <= 60 * 1024, "at most 60 KB, not {} bytes", pdf.len());
    assert!(number.ends_with("-000001"), "{number}");

    let emails: Vec<(uuid::Uuid, String, String)> = sqlx::query_as(
        "SELECT id, to_address, text_body FROM emails WHERE subject LIKE 'Your receipt for lot 42%' ORDER BY created_at",
    )
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(emails.len(), 1, "one receipt email");
    assert_eq!(emails[0].1, "buyer@example.com");
    assert!(emails[0].2.contains(&code) && emails[0].2.contains("$125.00"), "{}", emails[0].2);
    let attachment: (String, String, Vec<u8>) =
        sqlx::query_as("SELECT filename, content_type, content FROM email_attachments WHERE email_id = $1")
            .bind(emails[0].0)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(attachment, (format!("receipt-{number}.pdf"), "application/pdf".to_owned(), pdf.clone()));

    // A well-formed file in which a reader sees every detail, in fonts that are embedded and
    // subset.
    assert_well_formed(&pdf);
    let text = pdf_tool("pdftotext", &["-layout"], &pdf);
    let intent: String =
        sqlx::query_scalar("SELECT stripe_payment_intent_id FROM orders").fetch_one(&app.services.pool).await.unwrap();
    for expected in [
        "Receipt",
        "Northwind Auctions",
        "Spring sale",
        "42",
        "Victorian clock",
        "buyer@example.com",
        "$125.00",
        intent.as_str(),
        code.as_str(),
        number.as_str(),
        "TEST PAYMENT",
    ] {
        assert!(text.contains(expected), "{expected:?} is missing from the receipt:\n{text}");
    }
    let fonts = pdf_tool("pdffonts", &[], &pdf);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "two faces:\n{fonts}");
    for row in rows {
        let columns: Vec<&str> = row.split_whitespace().collect();
        assert!(columns[0].contains("+DejaVuSans"), "a subset name: {row}");
        // name, type (two words), encoding, emb, sub, uni, object, generation
        let n = columns.len();
        assert_eq!((columns[n - 5], columns[n - 4]), ("yes", "yes"), "embedded and subset: {row}");
    }
}

#[tokio::test]
async fn the_receipt_downloads_with_the_buyers_link_or_by_the_tenant_and_no_one_else() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let token = won_lot(&app, 12_500).await;
    let buyer_url = app.url(&format!("/pay/{token}/receipt.pdf"));
    assert_eq!(reqwest::get(&buyer_url).await.unwrap().status(), 404, "nothing before payment");
    paid(&app, &token).await;
    let (_, _, sha256, pdf) = receipt_row(&app).await;

    let response = reqwest::get(&buyer_url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/pdf");
    assert!(
        response.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"receipt-")
    );
    let digest = base64::engine::general_purpose::STANDARD.encode(&sha256);
    assert_eq!(response.headers()["repr-digest"], format!("sha-256=:{digest}:").as_str());
    assert_eq!(response.bytes().await.unwrap().as_ref(), pdf.as_slice());
    let page = reqwest::get(app.url(&format!("/pay/{token}"))).await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("/pay/{token}/receipt.pdf")), "the paid page links the receipt");
    let wrong = reqwest::get(app.url("/pay/not-the-token/receipt.pdf")).await.unwrap();
    assert_eq!(wrong.status(), 404);

    let bid: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM winning_bids").fetch_one(&app.services.pool).await.unwrap();
    let staff_url = format!("/winnings/{bid}/receipt.pdf");
    let get = |cookie: Option<String>| {
        let url = app.url(&staff_url);
        async move {
            let mut request = reqwest::Client::new().get(url);
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, cookie);
            }
            request.send().await.unwrap()
        }
    };
    for role in [Role::TenantOwner, Role::TenantAdmin] {
        let response = get(Some(app.session_cookie(role).await)).await;
        assert_eq!(response.status(), 200, "{role:?}");
        assert_eq!(response.bytes().await.unwrap().as_ref(), pdf.as_slice());
    }
    for role in [Role::Consultant, Role::FamilyMember, Role::PlatformAdmin] {
        assert_eq!(get(Some(app.session_cookie(role).await)).await.status(), 403, "{role:?}");
    }
    assert_eq!(get(None).await.status(), 401);
    let elsewhere = get(Some(app.other_tenant_owner_cookie().await)).await;
    assert_eq!(elsewhere.status(), 404, "another tenant's bid is not found");
    assert!(!elsewhere.text().await.unwrap().contains("Northwind"), "nothing is revealed");

    // The tenant's system, with its API key (of the bid's mode only).
    let key = api_key(&app).await;
    let (status, winning) = app.json_with_key(Method::GET, &format!("/api/v1/winnings/{bid}"), &key, None).await;
    assert_eq!((status, winning["order"]["status"].as_str()), (200, Some("paid")), "{winning}");
    let receipt_path = winning["order"]["receipt_url"].as_str().unwrap();
    let response = reqwest::Client::new().get(app.url(receipt_path)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), pdf.as_slice());
    let owner = app.session_cookie(Role::TenantOwner).await;
    let (_, live) = app
        .json_with_cookie(
            Method::POST,
            "/api/v1/auth/tenants/api-keys/",
            &owner,
            Some(serde_json::json!({ "mode": "live" })),
        )
        .await;
    let live_key = live["key"]["secret"].as_str().unwrap();
    let response = reqwest::Client::new().get(app.url(receipt_path)).bearer_auth(live_key).send().await.unwrap();
    assert_eq!(response.status(), 404, "a live key does not see test receipts");
}

#[tokio::test]
async fn a_verification_code_confirms_a_receipt_and_an_unknown_one_does_not() {
    let app = spawn_app().await;
    app.sandbox.set_delivery_mode(DeliveryMode::Reverse);
    let token = won_lot(&app, 12_500).await;
    paid(&app, &token).await;
    let (number, code, _, _) = receipt_row(&app).await;

    let page = |code: String| {
        let url = app.url(&format!("/receipts/verify?code={code}"));
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    let genuine = page(code.to_lowercase().replace('-', "")).await;
    assert!(genuine.contains(&format!("Genuine: receipt {number} issued by Northwind Auctions")), "{genuine}");
    assert!(genuine.contains("$125.00"));
    assert!(!genuine.contains("buyer@example.com"), "the buyer is not shown to whoever holds a code");
    let unknown = page("0000-0000-0000".into()).await;
    assert!(unknown.contains("No receipt has this code"), "{unknown}");
    let malformed = page("abc".into()).await;
    assert!(malformed.contains("A verification code has 12 letters and digits"), "{malformed}");
}

/// An SMTP server that accepts connections and then never answers: a send to it hangs.
async fn silent_smtp() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (port, task)
}

async fn receipt_email(app: &TestApp) -> Option<(uuid::Uuid, String)> {
    sqlx::query_as("SELECT id, status FROM emails WHERE subject LIKE 'Your receipt%'")
        .fetch_optional(&app.services.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_receipt_email_is_sent_exactly_once_when_the_process_dies_between_commit_and_send() {
    // This server only takes requests and Stripe's webhooks; the jobs run in real remit
    // processes that can be killed.
    let app = spawn_app_with(Options { job_workers: Some(0), ..Options::default() }).await;
    // A process that delivers the buyer's payment link, then goes away.
    let courier = SecondProcess::start(&app).await;
    let token = won_lot(&app, 12_500).await;
    courier.kill().await;
    let (silent_port, silent) = silent_smtp().await;
    let silent_url = format!("smtp://127.0.0.1:{silent_port}");
    let doomed = SecondProcess::start_with(
        &app,
        &[("SMTP_URL", silent_url.as_str()), ("JOB_WORKERS", "4"), ("JOB_RECOVERY_SECONDS", "4")],
    )
    .await;
    let (status, body) = start(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(pay(body["url"].as_str().unwrap(), "4242424242424242").await.0, 303);

    // The doomed process applies the payment, commits the order, the receipt and its email,
    // and starts sending, to a server that never answers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
                            WHERE t.identifier = 'deliver_email' AND j.locked_by IS NOT NULL
                              AND j.payload ->> 'email_id' = (SELECT id::text FROM emails WHERE subject LIKE 'Your receipt%'))",
        )
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
        if sending {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the receipt email never started sending");
        tokio::task::yield_now().await;
    }
    doomed.kill().await;
    silent.abort();
    let (email_id, status) = receipt_email(&app).await.unwrap();
    assert_eq!(status, "queued", "the process died before the email was sent");
    assert_eq!(app.count("orders").await, 1);

    // A new process, with a working mail server, takes over the dead one's jobs.
    let smtp = SmtpServer::start();
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let _restarted = SecondProcess::start_with(
        &app,
        &[("SMTP_URL", smtp_url.as_str()), ("JOB_WORKERS", "4"), ("JOB_RECOVERY_SECONDS", "4")],
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while receipt_email(&app).await.unwrap().1 != "sent" {
        assert!(tokio::time::Instant::now() < deadline, "the receipt email was not sent after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.wait_for_jobs().await;
    let messages = smtp.messages();
    let receipts: Vec<&String> = messages.iter().filter(|m| m.contains("Subject: Your receipt for lot 42")).collect();
    assert_eq!(receipts.len(), 1, "exactly one receipt email reached the mail server");
    assert!(receipts[0].contains(&format!("Message-ID: <{email_id}@remit>")));
    assert!(receipts[0].contains("Content-Type: application/pdf"));
    assert_eq!(app.count("receipts").await, 1);
    assert_eq!(app.count("orders").await, 1);
}
