use std::process::ExitCode;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use domain::config::Settings;
use server::{Application, telemetry};

// Requests allocate and free many small buffers across threads; mimalloc does that with less CPU
// than glibc's allocator (a fifth of the webhook intake's samples were malloc and free).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long the runtime waits, once `main` is done, for blocking tasks still running (a PDF being
/// drawn, a DNS lookup). Without a bound a stuck one would keep a stopped process alive until the
/// orchestrator's SIGKILL.
const RUNTIME_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("remit: the async runtime could not start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve_or_run_command());
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_GRACE);
    code
}

async fn serve_or_run_command() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("remit: {err}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(settings.log_format, None, std::io::stdout);
    let command = std::env::args().nth(1);
    let outcome = match command.as_deref() {
        None | Some("serve") => run(settings).await,
        Some("rotate-encryption-key") => rotate_encryption_key(settings).await,
        Some(other) => {
            eprintln!(
                "remit: unknown command {other:?}; the commands are serve (the default) and rotate-encryption-key"
            );
            return ExitCode::FAILURE;
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "remit stopped");
            eprintln!("remit: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    // Installed before the server listens: a SIGTERM that comes as soon as the port accepts
    // connections (an orchestrator's quick restart) is a graceful stop, never the default exit.
    let shutdown = shutdown_signal().context("the shutdown signal handlers could not be installed")?;
    let app = Application::build(settings).await?;
    if app.services().settings.is_development() {
        app.print_demo_credentials();
    }
    app.run_until(shutdown).await
}

/// Re-seals every stored secret under `REMIT_ENCRYPTION_KEY` (opening old ones with
/// `REMIT_ENCRYPTION_KEY_PREVIOUS`), then exits; see `domain::key_rotation` for the steps.
async fn rotate_encryption_key(settings: Settings) -> anyhow::Result<()> {
    use secrecy::ExposeSecret as _;
    let pool = domain::db::connect_and_migrate(settings.database_url.expose_secret()).await?;
    let done = domain::key_rotation::reencrypt_all(&pool, &settings.encryption_key)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("re-encrypting the stored secrets")?;
    println!(
        "re-encrypted {} stored secrets under the current key ({} webhook secrets, {} email links, {} flashes, \
         {} payment links)",
        done.total(),
        done.webhook_secrets,
        done.email_links,
        done.flashes,
        done.payment_links
    );
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed by this call, not when the
/// future is first polled, and a signal received before then is not lost.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::info!("shutdown requested; finishing requests in flight");
    })
}
