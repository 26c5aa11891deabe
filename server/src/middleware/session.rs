//! Resolves the session cookie to the signed-in principal once per request, for server
//! functions, pages and routes alike (as the `CurrentUser` request extension).

use app::server::CurrentUser;
use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::Response,
};
use domain::{Services, auth::session};

pub async fn resolve(State(services): State<Services>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::token_from_cookie_header)
        .map(str::to_owned);
    let principal = match token {
        None => None,
        Some(token) => match session::resolve(&services.pool, &token).await {
            Ok(principal) => principal,
            Err(err) => {
                err.log();
                None
            }
        },
    };
    if let Some(p) = &principal {
        tracing::Span::current().record("user_id", tracing::field::display(p.user_id));
    }
    request.extensions_mut().insert(CurrentUser(principal));
    next.run(request).await
}
