//! Typed configuration read from environment variables (and an optional `.env` file).
//!
//! Secrets are held in [`SecretString`]/[`EncryptionKey`] so they cannot be printed by
//! accident; a missing or malformed required value is reported as one line naming it.

use std::{fmt, net::SocketAddr, path::PathBuf};

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use url::Url;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/remit";
const DEFAULT_PUBLIC_BASE_URL: &str = "http://127.0.0.1:3000";
const DEFAULT_BIND_ADDR: &str = "127.0.0.1:3000";
const DEFAULT_SANDBOX_ADDR: &str = "127.0.0.1:12111";
const DEFAULT_MAIL_FROM: &str = "Remit <no-reply@remit.localhost>";
const DEFAULT_PLATFORM_FEE_BPS: u32 = 500;
const DEFAULT_JOB_WORKERS: usize = 4;
const DEFAULT_JOB_RECOVERY_SECONDS: u64 = 60;
/// Stripe keeps events 30 days and a resync may bring any of them back: Remit keeps them longer,
/// so a month is never dropped while Stripe could still send one of its events.
const DEFAULT_STRIPE_EVENT_RETENTION_DAYS: u64 = 90;
const MIN_STRIPE_EVENT_RETENTION_DAYS: u64 = 35;
const DEFAULT_STRIPE_RESYNC_MINUTES: u32 = 15;
const DEFAULT_RECEIPT_FONT_DIR: &str = "/usr/share/fonts/truetype/dejavu";
const DEFAULT_HEADER_TIMEOUT_SECONDS: u64 = 10;
const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 30;
const DEFAULT_INVITATIONS_PER_TENANT_HOUR: u32 = 50;
const DEFAULT_WINNINGS_PER_TENANT_HOUR: u32 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Demo data is seeded and its credentials printed; tenant webhooks may target loopback
    /// and private addresses; the outbox shows one-time links in full.
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What demo data a development server seeds on start (`DEMO_DATA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoData {
    /// The demo tenant and one user per role, and a month of activity made through Remit's own
    /// flows against the Stripe sandbox (the default).
    Full,
    /// The demo tenant and its users only (the end-to-end tests, which make their own data).
    Accounts,
}

/// Everything Remit needs to know about its surroundings.
#[derive(Debug)]
pub struct Settings {
    pub environment: Environment,
    pub database_url: SecretString,
    /// The address people reach Remit at; every link Remit hands out is built from it.
    pub public_base_url: Url,
    pub bind_addr: SocketAddr,
    /// Where cargo-leptos put the compiled site (wasm, js, css, assets).
    pub site_root: PathBuf,
    pub stripe: StripeSettings,
    /// `smtp://user:pass@host:port` (or `smtps://`); `None` sends mail to the local outbox.
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    /// Encrypts secrets Remit stores (tenant webhook secrets, Stripe tokens).
    pub encryption_key: EncryptionKey,
    pub log_format: LogFormat,
    /// Remit's fee on buyers' payments, in basis points of the amount (500 = 5 %).
    pub platform_fee_bps: u32,
    /// Jobs this process runs at once; 0 makes it a web-only process (others run the jobs).
    pub job_workers: usize,
    /// How long a process may go silent before another takes over the jobs it was running.
    pub job_recovery: std::time::Duration,
    /// How long Stripe's events are kept (whole months are dropped once older than this).
    pub stripe_event_retention: std::time::Duration,
    /// Minutes between resyncs of Stripe's events (also run when a worker starts); 0: none.
    pub stripe_resync_minutes: u32,
    /// The bearer token `/metrics` asks for; `None`: no metrics are served.
    pub metrics_token: Option<SecretString>,
    /// The request header that carries the client's address when Remit runs behind a proxy
    /// (its last value is used); `None` uses the connection's peer address.
    pub client_ip_header: Option<String>,
    /// Where the receipt fonts (DejaVuSans.ttf and DejaVuSans-Bold.ttf) are.
    pub receipt_font_dir: PathBuf,
    /// How long a client may take to send a request's headers, and how long a keep-alive
    /// connection may sit idle between requests.
    pub http_header_timeout: std::time::Duration,
    /// How long a request may take before it is answered with 503.
    pub http_request_timeout: std::time::Duration,
    /// Limits on mail Remit sends on a tenant's behalf, per tenant and hour.
    pub mail_limits: MailLimits,
    /// The demo data a development server seeds (nothing is seeded in production).
    pub demo: DemoData,
}

/// How many emails to other people a tenant may cause per hour (each answer beyond is a 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailLimits {
    /// Invitations sent by the tenant's staff and consultants.
    pub invitations_per_hour: u32,
    /// Won lots registered through the API (each emails its buyer a payment link).
    pub winnings_per_hour: u32,
}

#[derive(Debug)]
pub enum StripeSettings {
    /// Stripe itself (or a Stripe-compatible API at `api_base`), with the keys of each mode Remit
    /// serves: live data is paid through the live keys only, test data through the test keys only.
    Keys {
        live: Option<Box<StripeKeys>>,
        test: Option<Box<StripeKeys>>,
        /// Overrides `https://api.stripe.com`, e.g. to use a separately started sandbox.
        api_base: Option<Url>,
    },
    /// No Stripe key at all: the Stripe sandbox is started in-process on `addr` (test mode only).
    Sandbox { addr: SocketAddr },
}

/// The keys of one Stripe mode (live or test).
#[derive(Debug)]
pub struct StripeKeys {
    pub secret_key: SecretString,
    pub publishable_key: String,
    /// One or more endpoint secrets (platform and Connect endpoints), comma-separated.
    pub webhook_secret: SecretString,
    pub connect_client_id: String,
}

impl StripeSettings {
    /// Whether `key` is a live-mode secret or restricted key.
    pub fn is_live_key(key: &str) -> bool {
        key.starts_with("sk_live_") || key.starts_with("rk_live_")
    }
}

/// A 256-bit key for AES-GCM, never printed.
pub struct EncryptionKey {
    current: SecretBox<[u8; 32]>,
    /// The key before the current one, while values sealed with it are re-encrypted
    /// (`REMIT_ENCRYPTION_KEY_PREVIOUS`): it opens them, never seals.
    previous: Option<SecretBox<[u8; 32]>>,
}

impl EncryptionKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { current: SecretBox::new(Box::new(bytes)), previous: None }
    }

    /// The same current key, with `previous` accepted for opening what it sealed.
    pub fn with_previous(self, previous: [u8; 32]) -> Self {
        Self { previous: Some(SecretBox::new(Box::new(previous))), ..self }
    }

    /// The key that seals.
    pub fn expose(&self) -> &[u8; 32] {
        self.current.expose_secret()
    }

    /// The key accepted beside it, if any.
    pub fn previous(&self) -> Option<&[u8; 32]> {
        self.previous.as_ref().map(|k| k.expose_secret())
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

/// A configuration problem, displayed as a single line that names the variable.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {} {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Reads the process environment, after loading `.env` from the working directory if present.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env file is normal; a malformed one is not.
        if let Err(err) = dotenvy::dotenv()
            && !err.not_found()
        {
            return Err(ConfigError { variable: ".env", problem: format!("could not be read: {err}") });
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can supply their own values.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let environment = match get("APP_ENV").as_deref() {
            None | Some("production") => Environment::Production,
            Some("development") => Environment::Development,
            Some(other) => {
                return Err(invalid("APP_ENV", format!("must be development or production, not {other:?}")));
            }
        };

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let parsed_db =
            Url::parse(&database_url).map_err(|_| invalid("DATABASE_URL", "must be a postgres:// URL".into()))?;
        if !matches!(parsed_db.scheme(), "postgres" | "postgresql") || parsed_db.path().len() < 2 {
            return Err(invalid("DATABASE_URL", "must be a postgres:// URL that names a database".into()));
        }

        let public_base_url =
            parse_base_url(&get("PUBLIC_BASE_URL").unwrap_or_else(|| DEFAULT_PUBLIC_BASE_URL.into()))?;

        let bind_addr =
            get("BIND_ADDR").or_else(|| get("LEPTOS_SITE_ADDR")).unwrap_or_else(|| DEFAULT_BIND_ADDR.into());
        let bind_addr = bind_addr
            .parse()
            .map_err(|_| invalid("BIND_ADDR", format!("must be host:port, e.g. {DEFAULT_BIND_ADDR}")))?;

        let site_root = PathBuf::from(get("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()));

        let stripe = stripe_settings(&get)?;

        let smtp_url = match get("SMTP_URL") {
            None => None,
            Some(url) => {
                let parsed =
                    Url::parse(&url).map_err(|_| invalid("SMTP_URL", "must be an smtp:// or smtps:// URL".into()))?;
                if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host_str().is_none() {
                    return Err(invalid("SMTP_URL", "must be an smtp:// or smtps:// URL with a host".into()));
                }
                Some(SecretString::from(url))
            }
        };

        let mail_from = get("MAIL_FROM").unwrap_or_else(|| DEFAULT_MAIL_FROM.into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid("MAIL_FROM", "must be an address such as \"Remit <no-reply@example.com>\"".into()));
        }

        let encryption_key = match get("REMIT_ENCRYPTION_KEY") {
            None => {
                return Err(ConfigError {
                    variable: "REMIT_ENCRYPTION_KEY",
                    problem: "is missing: set it to 32 random bytes in base64 (openssl rand -base64 32)".into(),
                });
            }
            Some(value) => decode_key("REMIT_ENCRYPTION_KEY", &value)?,
        };
        let encryption_key = match get("REMIT_ENCRYPTION_KEY_PREVIOUS").filter(|v| !v.trim().is_empty()) {
            None => encryption_key,
            Some(value) => {
                let previous = decode_key("REMIT_ENCRYPTION_KEY_PREVIOUS", &value)?;
                if previous.expose() == encryption_key.expose() {
                    return Err(invalid(
                        "REMIT_ENCRYPTION_KEY_PREVIOUS",
                        "is the same as REMIT_ENCRYPTION_KEY: set it to the key being replaced".into(),
                    ));
                }
                encryption_key.with_previous(*previous.expose())
            }
        };

        let platform_fee_bps = match get("PLATFORM_FEE_BPS") {
            None => DEFAULT_PLATFORM_FEE_BPS,
            Some(v) => v.trim().parse::<u32>().ok().filter(|bps| *bps <= 5_000).ok_or_else(|| {
                invalid("PLATFORM_FEE_BPS", "must be a whole number of basis points from 0 to 5000".into())
            })?,
        };

        let job_workers = match get("JOB_WORKERS") {
            None => DEFAULT_JOB_WORKERS,
            Some(v) => v.parse::<usize>().ok().filter(|n| *n <= 64).ok_or_else(|| {
                invalid("JOB_WORKERS", "must be a whole number from 0 (no jobs in this process) to 64".into())
            })?,
        };
        let job_recovery = match get("JOB_RECOVERY_SECONDS") {
            None => DEFAULT_JOB_RECOVERY_SECONDS,
            Some(v) => v.parse::<u64>().ok().filter(|s| (4..=3600).contains(s)).ok_or_else(|| {
                invalid("JOB_RECOVERY_SECONDS", "must be a whole number of seconds from 4 to 3600".into())
            })?,
        };
        let retention_days = match get("STRIPE_EVENT_RETENTION_DAYS") {
            None => DEFAULT_STRIPE_EVENT_RETENTION_DAYS,
            Some(v) => {
                v.parse::<u64>().ok().filter(|d| (MIN_STRIPE_EVENT_RETENTION_DAYS..=3650).contains(d)).ok_or_else(
                    || {
                        invalid(
                            "STRIPE_EVENT_RETENTION_DAYS",
                            format!(
                                "must be a whole number of days from {MIN_STRIPE_EVENT_RETENTION_DAYS} (longer than \
                             Stripe keeps events) to 3650"
                            ),
                        )
                    },
                )?
            }
        };
        let stripe_resync_minutes = match get("STRIPE_RESYNC_MINUTES") {
            None => DEFAULT_STRIPE_RESYNC_MINUTES,
            Some(v) => v.parse::<u32>().ok().filter(|m| *m == 0 || (*m <= 60 && 60 % *m == 0)).ok_or_else(|| {
                invalid(
                    "STRIPE_RESYNC_MINUTES",
                    "must divide an hour (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60), or be 0 for no resync".into(),
                )
            })?,
        };
        let metrics_token = match get("METRICS_TOKEN") {
            None => None,
            Some(token) if token.len() >= 24 && token.chars().all(|c| c.is_ascii_graphic()) => {
                Some(SecretString::from(token))
            }
            Some(_) => {
                return Err(invalid(
                    "METRICS_TOKEN",
                    "must be at least 24 printable characters without spaces (e.g. `openssl rand -hex 24`)".into(),
                ));
            }
        };
        let client_ip_header =
            match get("CLIENT_IP_HEADER") {
                None => None,
                Some(name) => Some(http_header_name(&name).ok_or_else(|| {
                    invalid("CLIENT_IP_HEADER", "must be a header name such as X-Forwarded-For".into())
                })?),
            };
        let receipt_font_dir =
            PathBuf::from(get("RECEIPT_FONT_DIR").unwrap_or_else(|| DEFAULT_RECEIPT_FONT_DIR.into()));

        let seconds = |name: &'static str, default: u64, max: u64| -> Result<std::time::Duration, ConfigError> {
            match get(name) {
                None => Ok(std::time::Duration::from_secs(default)),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (1..=max).contains(s))
                    .map(std::time::Duration::from_secs)
                    .ok_or_else(|| invalid(name, format!("must be a whole number of seconds from 1 to {max}"))),
            }
        };
        let http_header_timeout = seconds("HTTP_HEADER_TIMEOUT_SECONDS", DEFAULT_HEADER_TIMEOUT_SECONDS, 300)?;
        let http_request_timeout = seconds("HTTP_REQUEST_TIMEOUT_SECONDS", DEFAULT_REQUEST_TIMEOUT_SECONDS, 600)?;
        let per_hour = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| invalid(name, "must be a whole number from 1 to 1000000".into())),
            }
        };
        let mail_limits = MailLimits {
            invitations_per_hour: per_hour("INVITATIONS_PER_TENANT_HOUR", DEFAULT_INVITATIONS_PER_TENANT_HOUR)?,
            winnings_per_hour: per_hour("WINNINGS_PER_TENANT_HOUR", DEFAULT_WINNINGS_PER_TENANT_HOUR)?,
        };

        let demo = match get("DEMO_DATA").as_deref() {
            None | Some("full") => DemoData::Full,
            Some("accounts") => DemoData::Accounts,
            Some(other) => return Err(invalid("DEMO_DATA", format!("must be full or accounts, not {other:?}"))),
        };

        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(invalid("LOG_FORMAT", format!("must be text or json, not {other:?}"))),
        };

        Ok(Self {
            environment,
            database_url: SecretString::from(database_url),
            public_base_url,
            bind_addr,
            site_root,
            stripe,
            smtp_url,
            mail_from,
            encryption_key,
            log_format,
            platform_fee_bps,
            job_workers,
            job_recovery: std::time::Duration::from_secs(job_recovery),
            stripe_event_retention: std::time::Duration::from_secs(retention_days * 86_400),
            stripe_resync_minutes,
            metrics_token,
            client_ip_header,
            receipt_font_dir,
            http_header_timeout,
            http_request_timeout,
            mail_limits,
            demo,
        })
    }

    /// Builds an absolute URL on Remit's public address. `path` starts with `/`.
    pub fn public_url(&self, path: &str) -> String {
        let base = self.public_base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    pub fn is_https(&self) -> bool {
        self.public_base_url.scheme() == "https"
    }

    pub fn is_development(&self) -> bool {
        self.environment == Environment::Development
    }

    /// The database URL, for connecting. Kept behind a method so it is never formatted by accident.
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

/// A header name in lower case, if `name` is one (letters, digits and dashes).
fn http_header_name(name: &str) -> Option<String> {
    (name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !name.is_empty())
        .then(|| name.to_ascii_lowercase())
}

fn invalid(variable: &'static str, problem: String) -> ConfigError {
    ConfigError { variable, problem: format!("is malformed: {problem}") }
}

fn parse_base_url(value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|_| invalid("PUBLIC_BASE_URL", "must be an absolute http(s) URL".into()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("PUBLIC_BASE_URL", "must be an absolute http(s) URL".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("PUBLIC_BASE_URL", "must not have a query or fragment".into()));
    }
    Ok(url)
}

fn decode_key(variable: &'static str, value: &str) -> Result<EncryptionKey, ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| invalid(variable, "must be base64 (openssl rand -base64 32)".into()))?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| invalid(variable, "must decode to exactly 32 bytes".into()))?;
    Ok(EncryptionKey::from_bytes(key))
}

fn stripe_settings(get: &impl Fn(&str) -> Option<String>) -> Result<StripeSettings, ConfigError> {
    let primary = get("STRIPE_SECRET_KEY");
    let test_key = get("STRIPE_TEST_SECRET_KEY");
    if primary.is_none() && test_key.is_none() {
        let addr = get("STRIPE_SANDBOX_ADDR").unwrap_or_else(|| DEFAULT_SANDBOX_ADDR.into());
        let addr = addr
            .parse()
            .map_err(|_| invalid("STRIPE_SANDBOX_ADDR", format!("must be host:port, e.g. {DEFAULT_SANDBOX_ADDR}")))?;
        return Ok(StripeSettings::Sandbox { addr });
    }
    let required = |name: &'static str, prefix: &str, needed_by: &str| -> Result<String, ConfigError> {
        let value = get(name).ok_or_else(|| ConfigError {
            variable: name,
            problem: format!("is missing: it is required when {needed_by} is set"),
        })?;
        if !value.starts_with(prefix) {
            return Err(invalid(name, format!("must start with {prefix}")));
        }
        Ok(value)
    };
    let mut live = None;
    let mut test = None;
    if let Some(key) = primary {
        if !(key.starts_with("sk_") || key.starts_with("rk_")) {
            return Err(invalid("STRIPE_SECRET_KEY", "must start with sk_ or rk_".into()));
        }
        let is_live = StripeSettings::is_live_key(&key);
        if !is_live && test_key.is_some() {
            return Err(invalid(
                "STRIPE_SECRET_KEY",
                "is a test key, but STRIPE_TEST_SECRET_KEY is set too: give the live key here".into(),
            ));
        }
        let pk_prefix = if is_live { "pk_live_" } else { "pk_test_" };
        let keys = StripeKeys {
            secret_key: SecretString::from(key),
            publishable_key: required("STRIPE_PUBLISHABLE_KEY", pk_prefix, "STRIPE_SECRET_KEY")?,
            webhook_secret: SecretString::from(required("STRIPE_WEBHOOK_SECRET", "whsec_", "STRIPE_SECRET_KEY")?),
            connect_client_id: required("STRIPE_CONNECT_CLIENT_ID", "ca_", "STRIPE_SECRET_KEY")?,
        };
        if is_live { live = Some(Box::new(keys)) } else { test = Some(Box::new(keys)) }
    }
    if let Some(key) = test_key {
        if !(key.starts_with("sk_test_") || key.starts_with("rk_test_")) {
            return Err(invalid("STRIPE_TEST_SECRET_KEY", "must start with sk_test_ or rk_test_".into()));
        }
        let connect_client_id = match get("STRIPE_TEST_CONNECT_CLIENT_ID") {
            Some(_) => required("STRIPE_TEST_CONNECT_CLIENT_ID", "ca_", "STRIPE_TEST_SECRET_KEY")?,
            None => required("STRIPE_CONNECT_CLIENT_ID", "ca_", "STRIPE_TEST_SECRET_KEY")?,
        };
        test = Some(Box::new(StripeKeys {
            secret_key: SecretString::from(key),
            publishable_key: required("STRIPE_TEST_PUBLISHABLE_KEY", "pk_test_", "STRIPE_TEST_SECRET_KEY")?,
            webhook_secret: SecretString::from(required(
                "STRIPE_TEST_WEBHOOK_SECRET",
                "whsec_",
                "STRIPE_TEST_SECRET_KEY",
            )?),
            connect_client_id,
        }));
    }
    let api_base = match get("STRIPE_API_BASE") {
        None => None,
        Some(v) => Some(Url::parse(&v).map_err(|_| invalid("STRIPE_API_BASE", "must be an absolute URL".into()))?),
    };
    Ok(StripeSettings::Keys { live, test, api_base })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_need_only_the_encryption_key() {
        let s = settings(&[("REMIT_ENCRYPTION_KEY", KEY)]).unwrap();
        assert_eq!(s.environment, Environment::Production);
        assert_eq!(s.public_url("/pay/x"), "http://127.0.0.1:3000/pay/x");
        assert!(matches!(s.stripe, StripeSettings::Sandbox { .. }));
        assert!(s.smtp_url.is_none());
        assert_eq!(s.encryption_key.expose()[31], 31);
        assert!(s.encryption_key.previous().is_none());
    }

    #[test]
    fn a_previous_encryption_key_is_accepted_beside_a_different_current_one() {
        let other = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
        let s = settings(&[("REMIT_ENCRYPTION_KEY", other), ("REMIT_ENCRYPTION_KEY_PREVIOUS", KEY)]).unwrap();
        assert_eq!(s.encryption_key.expose(), &[9; 32]);
        assert_eq!(s.encryption_key.previous().map(|k| k[31]), Some(31));
        let err = settings(&[("REMIT_ENCRYPTION_KEY", KEY), ("REMIT_ENCRYPTION_KEY_PREVIOUS", KEY)]).unwrap_err();
        assert_eq!(err.variable, "REMIT_ENCRYPTION_KEY_PREVIOUS");
        let err =
            settings(&[("REMIT_ENCRYPTION_KEY", KEY), ("REMIT_ENCRYPTION_KEY_PREVIOUS", "c2hvcnQ=")]).unwrap_err();
        assert_eq!(err.variable, "REMIT_ENCRYPTION_KEY_PREVIOUS");
    }

    #[test]
    fn missing_key_names_the_variable() {
        let err = settings(&[]).unwrap_err();
        assert_eq!(err.variable, "REMIT_ENCRYPTION_KEY");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (var, value) in [
            ("REMIT_ENCRYPTION_KEY", "c2hvcnQ="),
            ("PUBLIC_BASE_URL", "not a url"),
            ("DATABASE_URL", "mysql://x/y"),
            ("SMTP_URL", "http://mail"),
            ("MAIL_FROM", "no at sign"),
            ("APP_ENV", "staging"),
            ("LOG_FORMAT", "xml"),
            ("STRIPE_SECRET_KEY", "pk_test_123"),
            ("JOB_WORKERS", "many"),
            ("JOB_RECOVERY_SECONDS", "1"),
            ("CLIENT_IP_HEADER", "X Forwarded"),
            ("HTTP_HEADER_TIMEOUT_SECONDS", "0"),
            ("HTTP_REQUEST_TIMEOUT_SECONDS", "soon"),
            ("INVITATIONS_PER_TENANT_HOUR", "-1"),
            ("STRIPE_TEST_SECRET_KEY", "sk_live_123"),
        ] {
            let mut vars = vec![("REMIT_ENCRYPTION_KEY", KEY)];
            vars.retain(|(k, _)| *k != var);
            vars.push((var, value));
            let err = settings(&vars).unwrap_err();
            assert_eq!(err.variable, var, "{err}");
        }
    }

    #[test]
    fn real_stripe_requires_every_key() {
        let err = settings(&[("REMIT_ENCRYPTION_KEY", KEY), ("STRIPE_SECRET_KEY", "sk_test_abc")]).unwrap_err();
        assert_eq!(err.variable, "STRIPE_PUBLISHABLE_KEY");
        let s = settings(&[
            ("REMIT_ENCRYPTION_KEY", KEY),
            ("STRIPE_SECRET_KEY", "sk_test_abc"),
            ("STRIPE_PUBLISHABLE_KEY", "pk_test_abc"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_abc"),
            ("STRIPE_CONNECT_CLIENT_ID", "ca_abc"),
        ])
        .unwrap();
        assert!(matches!(s.stripe, StripeSettings::Keys { live: None, test: Some(_), .. }));
    }

    #[test]
    fn live_and_test_keys_serve_their_own_mode() {
        let both = [
            ("REMIT_ENCRYPTION_KEY", KEY),
            ("STRIPE_SECRET_KEY", "sk_live_abc"),
            ("STRIPE_PUBLISHABLE_KEY", "pk_live_abc"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_live"),
            ("STRIPE_CONNECT_CLIENT_ID", "ca_abc"),
            ("STRIPE_TEST_SECRET_KEY", "sk_test_abc"),
            ("STRIPE_TEST_PUBLISHABLE_KEY", "pk_test_abc"),
            ("STRIPE_TEST_WEBHOOK_SECRET", "whsec_test"),
        ];
        let s = settings(&both).unwrap();
        let StripeSettings::Keys { live: Some(live), test: Some(test), .. } = &s.stripe else { panic!("both modes") };
        assert_eq!((live.publishable_key.as_str(), test.publishable_key.as_str()), ("pk_live_abc", "pk_test_abc"));
        assert_eq!(test.connect_client_id, "ca_abc", "the test mode borrows the Connect client id when it has none");
        // A live key with a test publishable key, or a test key where the live one belongs, is refused.
        let mut wrong = both.to_vec();
        wrong[2] = ("STRIPE_PUBLISHABLE_KEY", "pk_test_abc");
        assert_eq!(settings(&wrong).unwrap_err().variable, "STRIPE_PUBLISHABLE_KEY");
        let mut wrong = both.to_vec();
        wrong[1] = ("STRIPE_SECRET_KEY", "sk_test_other");
        wrong[2] = ("STRIPE_PUBLISHABLE_KEY", "pk_test_other");
        assert_eq!(settings(&wrong).unwrap_err().variable, "STRIPE_SECRET_KEY");
        let only_test = settings(&[
            ("REMIT_ENCRYPTION_KEY", KEY),
            ("STRIPE_TEST_SECRET_KEY", "sk_test_abc"),
            ("STRIPE_TEST_PUBLISHABLE_KEY", "pk_test_abc"),
            ("STRIPE_TEST_WEBHOOK_SECRET", "whsec_test"),
            ("STRIPE_CONNECT_CLIENT_ID", "ca_abc"),
        ])
        .unwrap();
        assert!(matches!(only_test.stripe, StripeSettings::Keys { live: None, test: Some(_), .. }));
    }

    #[test]
    fn secrets_are_not_printed_by_debug() {
        let s = settings(&[
            ("REMIT_ENCRYPTION_KEY", KEY),
            ("DATABASE_URL", "postgres://remit:db-password-42@localhost/remit"),
            ("SMTP_URL", "smtp://user:smtp-password-42@mail:25"),
            ("STRIPE_SECRET_KEY", "sk_test_secret42"),
            ("STRIPE_PUBLISHABLE_KEY", "pk_test_abc"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_secret42"),
            ("STRIPE_CONNECT_CLIENT_ID", "ca_abc"),
        ])
        .unwrap();
        let printed = format!("{s:?}");
        for secret in ["db-password-42", "smtp-password-42", "sk_test_secret42", "whsec_secret42", KEY] {
            assert!(!printed.contains(secret), "{secret} leaked in {printed}");
        }
    }
}
