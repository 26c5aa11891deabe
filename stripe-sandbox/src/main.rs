//! `stripe-sandbox [--host 127.0.0.1] [--port 12111] [--secret-key sk_test_…] [--live-secret-key sk_live_…]
//! [--public-url URL] [--webhook URL=whsec_…] [--connect-webhook URL=whsec_…] [--database-url URL | --memory]`

use std::process::ExitCode;

use stripe_sandbox::{Options, Sandbox, Storage};

const USAGE: &str = "usage: stripe-sandbox [--host HOST] [--port PORT] [--secret-key sk_test_…] [--live-secret-key sk_live_…] [--publishable-key pk_test_…] \
[--connect-client-id ca_…] [--public-url URL] [--webhook URL=whsec_…]… [--connect-webhook URL=whsec_…]… \
[--database-url postgres://…/db | --memory]";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber_init();
    let mut host = "127.0.0.1".to_owned();
    let mut port = "12111".to_owned();
    let mut options = Options::default();
    let mut webhooks = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        if flag == "--memory" {
            options.storage = Storage::Memory;
            continue;
        }
        let Some(value) = args.next() else {
            eprintln!("stripe-sandbox: {flag} needs a value\n{USAGE}");
            return ExitCode::FAILURE;
        };
        match flag.as_str() {
            "--host" => host = value,
            "--port" => port = value,
            "--secret-key" => options.secret_key = value,
            "--live-secret-key" => options.live_secret_key = Some(value),
            "--publishable-key" => options.publishable_key = value,
            "--connect-client-id" => options.connect_client_id = value,
            "--public-url" => options.public_url = Some(value),
            "--database-url" => options.storage = Storage::Postgres(value),
            "--webhook" | "--connect-webhook" => match value.split_once('=') {
                Some((url, secret)) => webhooks.push((url.to_owned(), secret.to_owned(), flag == "--connect-webhook")),
                None => {
                    eprintln!("stripe-sandbox: {flag} takes URL=SECRET");
                    return ExitCode::FAILURE;
                }
            },
            other => {
                eprintln!("stripe-sandbox: unknown option {other}\n{USAGE}");
                return ExitCode::FAILURE;
            }
        }
    }
    let listener = match tokio::net::TcpListener::bind(format!("{host}:{port}")).await {
        Ok(l) => l,
        Err(err) => {
            eprintln!("stripe-sandbox: cannot listen on {host}:{port}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let secret = options.secret_key.clone();
    let sandbox = match Sandbox::start(listener, options).await {
        Ok(s) => s,
        Err(err) => {
            eprintln!("stripe-sandbox: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    for (url, secret, connect) in webhooks {
        let id = sandbox.register_webhook_endpoint(&url, &secret, connect);
        println!("webhook endpoint {id} → {url}{}", if connect { " (connect)" } else { "" });
    }
    println!("Stripe sandbox listening on {} (secret key {}…)", sandbox.url(), &secret[..secret.len().min(8)]);
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}

fn tracing_subscriber_init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
