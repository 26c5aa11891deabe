//! The HTTP server loop: HTTP/1.1 connections with a header read timeout (which hyper also
//! applies while a keep-alive connection waits for its next request, so idle connections close
//! after it too), and a graceful shutdown that stops accepting, lets requests in flight finish,
//! and gives up on connections still open after the drain period.
//!
//! `axum::serve` offers none of these timeouts, so a client sending its headers one byte a
//! minute (or opening connections and sending nothing) could hold connections indefinitely.

use std::{future::Future, io, net::SocketAddr, pin::pin, time::Duration};

use axum::{Extension, Router, extract::ConnectInfo};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::watch};
use tower::Layer as _;

/// How the server treats slow and idle clients.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From accepting a connection (or finishing a response on it) to the end of the next
    /// request's headers.
    pub header_read: Duration,
    /// How long a stopping server waits for connections to finish their requests.
    pub drain: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(listener: TcpListener, router: Router, timeouts: Timeouts, shutdown: impl Future<Output = ()>) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeouts.header_read).keep_alive(true);
    // `stop` tells every connection to finish; each connection holds a `live` receiver, so the
    // sender sees when the last one has gone.
    let (stop_tx, stop_rx) = watch::channel(());
    let (live_tx, live_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (tcp, remote): (_, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(err) => {
                    // Per-connection errors (the peer went away) are normal; anything else (out
                    // of file descriptors) gets a pause so the loop does not spin.
                    if !matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) {
                        tracing::error!(error = %err, "could not accept a connection");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(Extension(ConnectInfo(remote)).layer(router.clone()));
        let (http, mut stop_rx, live_rx) = (http.clone(), stop_rx.clone(), live_rx.clone());
        tokio::spawn(async move {
            let mut connection = pin!(http.serve_connection(TokioIo::new(tcp), service));
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(err) = result {
                            tracing::debug!(%remote, error = %err, "connection closed");
                        }
                        break;
                    }
                    _ = stop_rx.changed(), if !stopping => {
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(live_rx);
        });
    }
    drop(listener);
    let _ = stop_tx.send(());
    drop(live_rx);
    if tokio::time::timeout(timeouts.drain, live_tx.closed()).await.is_err() {
        tracing::warn!(open = live_tx.receiver_count(), "connections still open after the drain period were dropped");
    }
}
