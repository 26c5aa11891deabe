//! Mail against a real SMTP server process (aiosmtpd) over TCP.

use std::{path::PathBuf, process::Stdio, time::Duration};

use domain::mail::{self, Attachment, OutgoingEmail};

use crate::helpers::{Options, spawn_app_with};

/// An aiosmtpd server writing every message it receives into a Maildir.
pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    maildir: PathBuf,
    child: std::process::Child,
}

impl SmtpServer {
    pub(crate) fn start() -> Self {
        let python = std::env::var("REMIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let maildir = std::env::temp_dir().join(format!("remit-smtp-{}", uuid::Uuid::new_v4()));
        let child = std::process::Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start aiosmtpd with {python} ({e}); `make test` installs it"));
        let server = Self { port, maildir, child };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "aiosmtpd did not start (is it installed for {python}?)");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub(crate) fn messages(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.maildir.join("new")) else { return vec![] };
        dir.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

#[tokio::test]
async fn email_with_an_attachment_is_delivered_over_smtp() {
    let smtp = SmtpServer::start();
    let app =
        spawn_app_with(Options { smtp_url: Some(format!("smtp://127.0.0.1:{}", smtp.port)), ..Options::default() })
            .await;
    // Binary bytes, as in a real PDF, so the attachment travels base64-encoded.
    let pdf: Vec<u8> = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".iter().copied().chain(0..=255u8).collect();
    let mut tx = app.services.pool.begin().await.unwrap();
    let id = mail::enqueue(
        &mut tx,
        OutgoingEmail {
            tenant_id: None,
            to: "Buyer <buyer@example.com>".into(),
            subject: "Your Remit receipt".into(),
            text_body: "Thank you for your payment.".into(),
            attachments: vec![Attachment {
                filename: "receipt.pdf".into(),
                content_type: "application/pdf".into(),
                content: pdf.clone(),
            }],
            links: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.wait_for_jobs().await;

    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "exactly one message reaches the SMTP server");
    let message = &messages[0];
    assert!(message.contains("Subject: Your Remit receipt"));
    assert!(message.contains("To: Buyer <buyer@example.com>"));
    assert!(message.contains("From: \"Remit Tests\" <remit@tests.example>"));
    assert!(message.contains(&format!("Message-ID: <{id}@remit>")));
    assert!(message.contains("Thank you for your payment."));
    assert!(message.contains("filename=\"receipt.pdf\""));
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&pdf);
    assert!(message.replace("\r\n", "").replace('\n', "").contains(&encoded), "the PDF bytes are attached intact");

    let (status, transport): (String, String) = sqlx::query_as("SELECT status, transport FROM emails WHERE id = $1")
        .bind(id)
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!((status.as_str(), transport.as_str()), ("sent", "smtp"));
}

#[tokio::test]
async fn a_sent_email_is_not_sent_again_when_its_job_repeats() {
    let smtp = SmtpServer::start();
    let app =
        spawn_app_with(Options { smtp_url: Some(format!("smtp://127.0.0.1:{}", smtp.port)), ..Options::default() })
            .await;
    let mut tx = app.services.pool.begin().await.unwrap();
    let id = mail::enqueue(
        &mut tx,
        OutgoingEmail {
            tenant_id: None,
            to: "a@example.com".into(),
            subject: "Once".into(),
            text_body: "x".into(),
            attachments: vec![],
            links: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    app.wait_for_jobs().await;
    // As if the job ran again after a crash between sending and completing.
    app.services.mailer.deliver(&app.services.pool, &app.services.settings.encryption_key, id).await.unwrap();
    assert_eq!(smtp.messages().len(), 1);
}
