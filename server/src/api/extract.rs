//! Who is calling the REST API, and a JSON body extractor whose refusals read like the rest.

use app::server::CurrentUser;
use axum::{
    extract::{FromRef, FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
};
use domain::{Services, api_keys, auth::Principal};

use crate::routes::error::ApiError;

/// A signed-in person (session cookie); 401 without one.
pub struct SessionUser(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<CurrentUser>().and_then(|c| c.0.clone()) {
            Some(p) => Ok(Self(p)),
            None => Err(ApiError(domain::Error::Unauthenticated)),
        }
    }
}

/// A tenant's system, authenticated by an API key; 401 for a missing, unknown or revoked key.
pub struct KeyClient(pub api_keys::ApiClient);

impl<S> FromRequestParts<S> for KeyClient
where
    S: Send + Sync,
    Services: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let services = Services::from_ref(state);
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError(domain::Error::ApiKey("Send your API key as `Authorization: Bearer rmt_…`.")))?;
        api_keys::authenticate(&services.pool, key.trim()).await.map(KeyClient).map_err(|err| match err {
            domain::Error::Unauthenticated => {
                ApiError(domain::Error::ApiKey("This API key is not valid: it may have been revoked or regenerated."))
            }
            other => ApiError(other),
        })
    }
}

/// JSON bodies; a malformed one is a 400 that says what is wrong.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError(domain::Error::TooLarge))
            }
            Err(rejection) => Err(ApiError(domain::Error::BadRequest(format!(
                "The request body is not what this call takes: {}",
                rejection.body_text()
            )))),
        }
    }
}
