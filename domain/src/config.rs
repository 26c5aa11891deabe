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
const DEFAULT_RECEIPT_FONT_DIR: &str = "/usr/share/fonts/truetype/dejavu";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Demo credentials are printed, loopback webhook targets are allowed.
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
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
    /// The request header that carries the client's address when Remit runs behind a proxy
    /// (its last value is used); `None` uses the connection's peer address.
    pub client_ip_header: Option<String>,
    /// Where the receipt fonts (DejaVuSans.ttf and DejaVuSans-Bold.ttf) are.
    pub receipt_font_dir: PathBuf,
}

#[derive(Debug)]
pub enum StripeSettings {
    /// Real Stripe: every key is required.
    Live {
        secret_key: SecretString,
        publishable_key: String,
        webhook_secret: SecretString,
        connect_client_id: String,
        /// Overrides `https://api.stripe.com`, e.g. to use a separately started sandbox.
        api_base: Option<Url>,
    },
    /// No `STRIPE_SECRET_KEY`: the Stripe sandbox is started in-process on `addr`.
    Sandbox { addr: SocketAddr },
}

/// A 256-bit key for AES-GCM, never printed.
pub struct EncryptionKey(SecretBox<[u8; 32]>);

impl EncryptionKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose_secret()
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
            Some(value) => decode_key(&value)?,
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
        let client_ip_header =
            match get("CLIENT_IP_HEADER") {
                None => None,
                Some(name) => Some(http_header_name(&name).ok_or_else(|| {
                    invalid("CLIENT_IP_HEADER", "must be a header name such as X-Forwarded-For".into())
                })?),
            };
        let receipt_font_dir =
            PathBuf::from(get("RECEIPT_FONT_DIR").unwrap_or_else(|| DEFAULT_RECEIPT_FONT_DIR.into()));

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
            client_ip_header,
            receipt_font_dir,
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

fn decode_key(value: &str) -> Result<EncryptionKey, ConfigError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| invalid("REMIT_ENCRYPTION_KEY", "must be base64 (openssl rand -base64 32)".into()))?;
    let key: [u8; 32] =
        bytes.try_into().map_err(|_| invalid("REMIT_ENCRYPTION_KEY", "must decode to exactly 32 bytes".into()))?;
    Ok(EncryptionKey::from_bytes(key))
}

fn stripe_settings(get: &impl Fn(&str) -> Option<String>) -> Result<StripeSettings, ConfigError> {
    let Some(secret_key) = get("STRIPE_SECRET_KEY") else {
        let addr = get("STRIPE_SANDBOX_ADDR").unwrap_or_else(|| DEFAULT_SANDBOX_ADDR.into());
        let addr = addr
            .parse()
            .map_err(|_| invalid("STRIPE_SANDBOX_ADDR", format!("must be host:port, e.g. {DEFAULT_SANDBOX_ADDR}")))?;
        return Ok(StripeSettings::Sandbox { addr });
    };
    if !(secret_key.starts_with("sk_") || secret_key.starts_with("rk_")) {
        return Err(invalid("STRIPE_SECRET_KEY", "must start with sk_ or rk_".into()));
    }
    let required = |name: &'static str, prefix: &str| -> Result<String, ConfigError> {
        let value = get(name).ok_or_else(|| ConfigError {
            variable: name,
            problem: "is missing: it is required when STRIPE_SECRET_KEY is set".into(),
        })?;
        if !value.starts_with(prefix) {
            return Err(invalid(name, format!("must start with {prefix}")));
        }
        Ok(value)
    };
    let publishable_key = required("STRIPE_PUBLISHABLE_KEY", "pk_")?;
    let webhook_secret = required("STRIPE_WEBHOOK_SECRET", "whsec_")?;
    let connect_client_id = required("STRIPE_CONNECT_CLIENT_ID", "ca_")?;
    let api_base = match get("STRIPE_API_BASE") {
        None => None,
        Some(v) => Some(Url::parse(&v).map_err(|_| invalid("STRIPE_API_BASE", "must be an absolute URL".into()))?),
    };
    Ok(StripeSettings::Live {
        secret_key: SecretString::from(secret_key),
        publishable_key,
        webhook_secret: SecretString::from(webhook_secret),
        connect_client_id,
        api_base,
    })
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
        assert!(matches!(s.stripe, StripeSettings::Live { .. }));
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
