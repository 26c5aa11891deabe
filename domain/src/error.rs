//! The one error type of Remit's domain and its mapping to HTTP.
//!
//! Every layer above (server functions, REST handlers, webhooks) turns a [`Error`] into a
//! response through [`Error::status`] and [`Error::public_message`]; internal details are
//! logged by [`Error::log`] and never shown.

use std::time::Duration;

/// A domain failure, phrased for the person who caused it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid session or API key.
    #[error("sign in to continue")]
    Unauthenticated,
    /// A REST call without a usable API key; the message says what to do.
    #[error("{0}")]
    ApiKey(&'static str),
    /// A sign-in with an unknown email or a wrong password (never told apart).
    #[error("wrong email or password")]
    WrongCredentials,
    /// Signed in, but this role or this owner may not do it.
    #[error("you do not have access to this")]
    Forbidden,
    /// The account (or its whole tenant) is closed for now; the message says why and what to do.
    #[error("{0}")]
    AccountClosed(&'static str),
    /// Missing, or belongs to someone else (the two are not told apart).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A request that is malformed as a whole (a bad signature, a payload that is not JSON).
    #[error("{0}")]
    BadRequest(String),
    /// A request body larger than the call takes.
    #[error("the request is too large")]
    TooLarge,
    /// Input that cannot be accepted; `field` names the form field when there is one.
    #[error("{message}")]
    Invalid { field: Option<&'static str>, message: String },
    /// The request conflicts with the current state (a duplicate, a state already moved on).
    #[error("{0}")]
    Conflict(String),
    /// Stripe declined to move money for lack of funds (a connected account's balance too low
    /// for a refund, a card declined): 402, with Stripe's reason in words.
    #[error("{0}")]
    Declined(String),
    /// Too many attempts; `retry_after` says when the next one is allowed.
    #[error("{message}")]
    RateLimited { message: String, retry_after: Duration },
    /// A service Remit depends on (Stripe, a tenant's endpoint) failed; the message is safe to show.
    #[error("{0}")]
    Upstream(String),
    /// Anything else: a bug or an outage. Shown only as a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid { field: Some(field), message: message.into() }
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    /// The HTTP status this error is answered with, everywhere.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthenticated | Self::WrongCredentials | Self::ApiKey(_) => 401,
            Self::Forbidden | Self::AccountClosed(_) => 403,
            Self::BadRequest(_) => 400,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::Declined(_) => 402,
            Self::TooLarge => 413,
            Self::Invalid { .. } => 422,
            Self::RateLimited { .. } => 429,
            Self::Upstream(_) => 502,
            Self::Internal(_) => 500,
        }
    }

    /// What the person on the other end is told. Never contains internal details.
    pub fn public_message(&self) -> String {
        match self {
            Self::Unauthenticated => "Please sign in to continue.".into(),
            Self::WrongCredentials => "The email or password is incorrect.".into(),
            Self::ApiKey(message) | Self::AccountClosed(message) => (*message).into(),
            Self::Forbidden => "You do not have access to this.".into(),
            Self::NotFound(what) => format!("{} not found.", capitalise(what)),
            Self::Invalid { message, .. }
            | Self::BadRequest(message)
            | Self::Conflict(message)
            | Self::Declined(message)
            | Self::RateLimited { message, .. }
            | Self::Upstream(message) => message.clone(),
            Self::TooLarge => "The request is too large for this call.".into(),
            Self::Internal(_) => "Something went wrong on our side. Please try again.".into(),
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { field, .. } => *field,
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Logs the error at a level that matches its cause: internal failures with their whole
    /// chain, refusals briefly.
    pub fn log(&self) {
        match self {
            Self::Internal(err) => tracing::error!(error = format!("{err:#}"), "internal error"),
            Self::Upstream(message) => tracing::warn!(%message, "upstream failure"),
            other => tracing::info!(status = other.status(), error = %other, "request refused"),
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What people are told when text they sent holds a NUL character, which PostgreSQL cannot
/// store. Inputs are checked for it first; this is the net for any that slipped through.
pub const NUL_IN_TEXT: &str = "Text cannot contain the NUL character (\\0). Remove it and try again.";

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        // 22021: invalid byte sequence (a NUL in text); 22P05: a \u0000 escape in JSON text.
        if let sqlx::Error::Database(db) = &err
            && matches!(db.code().as_deref(), Some("22021" | "22P05"))
        {
            tracing::info!(error = %db, "text with a NUL character refused by the database");
            return Self::BadRequest(NUL_IN_TEXT.into());
        }
        Self::Internal(anyhow::Error::new(err).context("database query failed"))
    }
}

/// Formats a wait as people say it ("2 minutes", "45 seconds").
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs().max(1);
    if secs >= 120 {
        format!("{} minutes", secs.div_ceil(60))
    } else if secs >= 60 {
        "1 minute".into()
    } else if secs == 1 {
        "1 second".into()
    } else {
        format!("{secs} seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_details() {
        let err = Error::Internal(anyhow::anyhow!("password=hunter2 connection refused"));
        assert_eq!(err.status(), 500);
        assert!(!err.public_message().contains("hunter2"));
    }

    #[test]
    fn statuses_follow_http_semantics() {
        assert_eq!(Error::Unauthenticated.status(), 401);
        assert_eq!(Error::Forbidden.status(), 403);
        assert_eq!(Error::NotFound("tenant").status(), 404);
        assert_eq!(Error::NotFound("tenant").public_message(), "Tenant not found.");
        assert_eq!(Error::invalid("email", "x").status(), 422);
        assert_eq!(Error::conflict("x").status(), 409);
        assert_eq!(Error::Upstream("x".into()).status(), 502);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(45)), "45 seconds");
        assert_eq!(human_duration(Duration::from_secs(61)), "1 minute");
        assert_eq!(human_duration(Duration::from_secs(14 * 60 + 1)), "15 minutes");
    }
}
