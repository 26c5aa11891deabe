//! A real SMTP server for one test app: Remit delivers to it over TCP with lettre, as it would to
//! any mail server, and the test reads what each person received, links included. It speaks the
//! plain SMTP that lettre uses without TLS (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::TcpListener,
};

/// A message as the mail server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub raw: Vec<u8>,
}

impl Received {
    fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.raw).expect("the message parses as MIME")
    }

    pub fn subject(&self) -> String {
        use mailparse::MailHeaderMap as _;
        self.parsed().headers.get_first_value("Subject").unwrap_or_default()
    }

    /// The `Message-ID`, which Remit makes from the stored email's id.
    pub fn message_id(&self) -> String {
        use mailparse::MailHeaderMap as _;
        self.parsed().headers.get_first_value("Message-ID").unwrap_or_default()
    }

    /// The decoded text/plain body.
    pub fn text(&self) -> String {
        let parsed = self.parsed();
        let part = std::iter::once(&parsed)
            .chain(parsed.subparts.iter())
            .find(|p| p.ctype.mimetype == "text/plain")
            .expect("the message has a text part");
        part.get_body().expect("the text part decodes")
    }

    /// The first link in the text that starts with `prefix` (e.g. `http://…/reset-password?token=`).
    pub fn link(&self, prefix: &str) -> Option<String> {
        let text = self.text();
        let start = text.find(prefix)?;
        Some(text[start..].split_whitespace().next()?.to_owned())
    }
}

/// The SMTP server and everything it received.
#[derive(Clone)]
pub struct Mailbox {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Mailbox {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port for the mail server");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(stream, store).await;
                });
            }
        });
        Self { port, received }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far.
    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The messages received for `to`.
    pub fn to(&self, to: &str) -> Vec<Received> {
        self.all().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to))).collect()
    }

    /// The message Remit sent for the stored email `email_id`, waiting for it (up to 30 s).
    pub async fn wait_for_email(&self, email_id: uuid::Uuid) -> Received {
        let wanted = format!("<{email_id}@remit>");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self.all().into_iter().find(|m| m.message_id() == wanted) {
                return m;
            }
            assert!(tokio::time::Instant::now() < deadline, "email {email_id} was not delivered within 30 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The newest message to `to` whose subject contains `subject`, waiting for it (up to 30 s).
    pub async fn wait_for_subject(&self, to: &str, subject: &str) -> Received {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self.to(to).into_iter().rev().find(|m| m.subject().contains(subject)) {
                return m;
            }
            assert!(tokio::time::Instant::now() < deadline, "no message to {to} about {subject:?} after 30 s");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn session(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 remit-tests ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            write.write_all(b"250-remit-tests\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n").await?;
        } else if command.starts_with("HELO") || command.starts_with("MAIL FROM") || command == "NOOP" {
            write.write_all(b"250 OK\r\n").await?;
        } else if command.starts_with("RSET") {
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if command.starts_with("RCPT TO") {
            let address = line.trim_end()[8..].trim().trim_start_matches('<').trim_end_matches('>');
            to.push(address.split_whitespace().next().unwrap_or_default().trim_end_matches('>').to_owned());
            write.write_all(b"250 OK\r\n").await?;
        } else if command == "DATA" {
            write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut raw = Vec::new();
            loop {
                let mut data = Vec::new();
                if lines.read_until(b'\n', &mut data).await? == 0 {
                    return Ok(());
                }
                if data == b".\r\n" || data == b".\n" {
                    break;
                }
                // Dot-stuffing: a line that starts with "." was sent with one more.
                let data = if data.starts_with(b"..") { &data[1..] } else { &data[..] };
                raw.extend_from_slice(data);
            }
            store.lock().unwrap().push(Received { to: std::mem::take(&mut to), raw });
            write.write_all(b"250 OK: queued\r\n").await?;
        } else if command == "QUIT" {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 Command not implemented\r\n").await?;
        }
    }
}
