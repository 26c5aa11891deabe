//! A test delivery made step by step, so that each phase is timed as a developer debugging a
//! receiver wants it: name lookup, TCP connect, TLS handshake, first byte of the answer, total.
//! The same address rules hold as for every delivery (checked after the lookup, before the
//! connect); HTTP/1.1, one request per connection, no redirects.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Instant,
};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use url::Url;

use super::{
    address,
    delivery::{Attempt, Failure, TIMEOUT},
};

/// How long each phase of a test delivery took, in milliseconds; `None` for a phase that did not
/// happen (no lookup for an address in the URL, no TLS for http://, no answer).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Timings {
    pub dns_ms: Option<u64>,
    pub connect_ms: Option<u64>,
    pub tls_ms: Option<u64>,
    pub first_byte_ms: Option<u64>,
    pub total_ms: u64,
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Any stream hyper can speak HTTP/1.1 over: plain TCP or TLS over it.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Stream for T {}

fn tls() -> tokio_rustls::TlsConnector {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Posts `body` with `headers` to `url`, timing each phase; gives up after a delivery's
/// [`TIMEOUT`] in all.
pub(super) async fn post(
    url: &Url,
    development: bool,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (Attempt, Timings) {
    let started = Instant::now();
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
    let mut timings = Timings::default();
    let outcome = tokio::time::timeout(TIMEOUT, exchange(url, &host, development, headers, body, &mut timings)).await;
    timings.total_ms = ms(started);
    let attempt = match outcome {
        Err(_) => Attempt::failed(Failure::Timeout.describe(&host)),
        Ok(Err(failure)) => Attempt::failed(failure.describe(&host)),
        Ok(Ok(answer)) => answer,
    };
    (Attempt { response_time_ms: timings.total_ms, ..attempt }, timings)
}

async fn exchange(
    url: &Url,
    host: &str,
    development: bool,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timings: &mut Timings,
) -> Result<Attempt, Failure> {
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let lookup = Instant::now();
            let found = tokio::net::lookup_host((host, port)).await.map_err(|_| Failure::NotFound)?.collect();
            timings.dns_ms = Some(ms(lookup));
            found
        }
    };
    if addrs.is_empty() {
        return Err(Failure::NotFound);
    }
    if !addrs.iter().all(|a| address::allowed(a.ip(), development)) {
        return Err(Failure::Forbidden);
    }
    let connecting = Instant::now();
    let tcp = TcpStream::connect(&addrs[..]).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Failure::Refused,
        _ => Failure::Other(Some(e.to_string())),
    })?;
    timings.connect_ms = Some(ms(connecting));
    let stream: Box<dyn Stream> = if url.scheme() == "https" {
        let handshake = Instant::now();
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| Failure::Tls)?;
        let tls = tls().connect(name, tcp).await.map_err(|_| Failure::Tls)?;
        timings.tls_ms = Some(ms(handshake));
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let sent = Instant::now();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Other(Some(e.to_string())))?;
    tokio::spawn(connection);
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let target = &url[url::Position::BeforePath..];
    let mut request = hyper::Request::post(if target.is_empty() { "/" } else { target }).header("host", authority);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(Full::new(Bytes::from(body))).map_err(|e| Failure::Other(Some(e.to_string())))?;
    let response = sender.send_request(request).await.map_err(|e| Failure::Other(Some(e.to_string())))?;
    // Measured from the moment the connection was ready to send.
    timings.first_byte_ms = Some(ms(sent));
    let status = response.status().as_u16();
    let response_headers = super::delivery::kept_headers(response.headers());
    let mut body = response.into_body();
    let mut kept = Vec::new();
    while kept.len() < super::delivery::MAX_RESPONSE_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    kept.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    kept.truncate(super::delivery::MAX_RESPONSE_BODY);
    Ok(Attempt {
        status_code: Some(status),
        response_time_ms: 0,
        error: (!(200..300).contains(&status)).then(|| format!("{host} answered {status}.")),
        response_body: Some(String::from_utf8_lossy(&kept).into_owned()),
        response_headers: Some(response_headers),
    })
}
