//! The error every server function returns: an HTTP status and a message meant for people.
//!
//! On the server it is made from a [`domain::Error`] (the one mapping to HTTP lives there);
//! the server's RPC handler turns `status` into the response status.

use serde::{Deserialize, Serialize};
use server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub status: u16,
    pub message: String,
    /// The form field the message is about, when there is one.
    pub field: Option<String>,
    /// For 429: seconds until another try is allowed.
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), field: None, retry_after: None }
    }

    pub fn is_unauthenticated(&self) -> bool {
        self.status == 401
    }

    /// The message when it is about `field`.
    pub fn for_field(&self, field: &str) -> Option<String> {
        (self.field.as_deref() == Some(field)).then(|| self.message.clone())
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                Self::new(400, "The form was incomplete or malformed. Please check it and try again.")
            }
            ServerFnErrorErr::Request(_) => {
                Self::new(503, "Could not reach Remit. Check your connection and try again.")
            }
            ServerFnErrorErr::Registration(_) | ServerFnErrorErr::UnsupportedRequestMethod(_) => {
                Self::new(404, "This action does not exist.")
            }
            ServerFnErrorErr::ServerError(_)
            | ServerFnErrorErr::MiddlewareError(_)
            | ServerFnErrorErr::Deserialization(_)
            | ServerFnErrorErr::Serialization(_)
            | ServerFnErrorErr::Response(_) => Self::new(500, "Something went wrong. Please try again."),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<domain::Error> for AppError {
    fn from(err: domain::Error) -> Self {
        err.log();
        Self {
            status: err.status(),
            message: err.public_message(),
            field: err.field().map(str::to_owned),
            retry_after: err.retry_after().map(|d| d.as_secs().max(1)),
        }
    }
}
