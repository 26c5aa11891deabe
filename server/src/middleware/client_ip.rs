//! The client's address, for the velocity checks and security events: the connection's peer,
//! or behind a proxy the last address in the header named by `CLIENT_IP_HEADER` (the one the
//! proxy itself added; earlier ones could be made up by the client).

use std::net::{IpAddr, SocketAddr};

use app::server::ClientIp;
use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::Response,
};

/// Which header to trust, if any (lower case).
#[derive(Clone)]
pub struct ClientIpSource(pub Option<String>);

fn from_header(request: &Request, name: &str) -> Option<IpAddr> {
    let value = request.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()).next_back()?;
    value.rsplit(',').map(str::trim).find(|s| !s.is_empty())?.parse().ok()
}

pub async fn resolve(State(source): State<ClientIpSource>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = match &source.0 {
        Some(header) => from_header(&request, header).or(peer),
        None => peer,
    };
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}
