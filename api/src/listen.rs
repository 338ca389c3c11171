//! Accepting connections, with the limits that keep a slow or hostile
//! client from holding the server: a cap on open connections, a deadline
//! for a request's headers, and a cap on how many headers a request may
//! carry.
//!
//! - **Connections.** At most `max_connections` are served at once. One
//!   more is answered `503` with `Retry-After: 1` and closed, without
//!   reading from it.
//! - **Headers.** A request's head (request line and headers) must arrive
//!   within `header_timeout`; the same deadline bounds how long an idle
//!   keep-alive connection waits for its next request. Past it the
//!   connection is closed. More than `max_headers` headers: `431`.
//! - **Body.** The whole request, body included, is bounded by the
//!   router's request timeout (`503`), and the body by its size limit
//!   (`413`), both in [`crate::server`].
//!
//! - **TLS.** With an acceptor ([`crate::tls`]), every connection is TLS;
//!   the handshake must end within `header_timeout`. A connection over
//!   the cap is closed without an answer (a plain-text 503 means nothing
//!   to a TLS client). With client certificates asked for, the names in
//!   the one presented ([`crate::peer`]) go with every request of the
//!   connection, for tokens bound to a certificate.
//!
//! HTTP/1.1 only, as `axum::serve` serves it by default.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::util::MapRequest;

use crate::peer::PeerNames;

/// Limits on connections and request heads (see the module docs).
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Deadline for a request's head, and for an idle connection's next
    /// request.
    pub header_timeout: Duration,
    /// Headers a request may carry (431 beyond).
    pub max_headers: usize,
    /// At a stop, how long the requests in flight get to finish (a
    /// response streamed to a slow reader, as an export's, could take
    /// hours); the connections still open then are closed.
    pub stop_grace: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            max_headers: 100,
            stop_grace: Duration::from_secs(30),
        }
    }
}

/// Connections refused because `max_connections` were open (for
/// `/metrics`).
pub static REFUSED_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// TLS handshakes that failed or were not done in time (for `/metrics`):
/// clients that do not trust the certificate, or speak plain HTTP to the
/// TLS port.
pub static FAILED_HANDSHAKES: AtomicU64 = AtomicU64::new(0);

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown`
/// completes, then lets the open connections finish their requests, for
/// [`ConnLimits::stop_grace`] at most: then it closes those still open.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // Set once the stop's grace is over: every connection still open ends.
    let (close, closing) = tokio::sync::watch::channel(false);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            REFUSED_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            if tls.is_none() {
                tokio::spawn(refuse(stream));
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let Some(acceptor) = tls.clone() else {
            let service = TowerToHyperService::new(app.clone());
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            let closing = closing.clone();
            tokio::spawn(async move {
                until_closed(conn, closing).await;
                drop(permit);
            });
            continue;
        };
        let (watcher, builder, deadline, app, closing) = (
            graceful.watcher(),
            builder.clone(),
            limits.header_timeout,
            app.clone(),
            closing.clone(),
        );
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    FAILED_HANDSHAKES.fetch_add(1, Ordering::Relaxed);
                    return tracing::debug!("TLS handshake failed: {e}");
                }
                Err(_) => {
                    FAILED_HANDSHAKES.fetch_add(1, Ordering::Relaxed);
                    return tracing::debug!("TLS handshake not done within {deadline:?}");
                }
            };
            let service = TowerToHyperService::new(with_peer(app, &stream));
            let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
            until_closed(conn, closing).await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.stop_grace, graceful.shutdown())
        .await
        .is_err()
    {
        let open = limits.max_connections.max(1) - permits.available_permits();
        tracing::warn!(
            "{open} connections still busy {} s after the stop (a stream to a slow reader?); closing them",
            limits.stop_grace.as_secs()
        );
        let _ = close.send(true);
        // Each closes as its task next runs; their permits say when.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while permits.available_permits() < limits.max_connections.max(1) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

/// Serves the connection `conn` until it ends, or until `closing` turns
/// true (the stop's grace is over): then it is dropped, which closes it.
async fn until_closed<E: std::fmt::Display>(
    conn: impl std::future::Future<Output = Result<(), E>>,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    tokio::select! {
        ended = conn => {
            if let Err(e) = ended {
                tracing::debug!("connection ended: {e}");
            }
        }
        _ = closing.wait_for(|closed| *closed) => {}
    }
}

/// The router, with the names of the connection's client certificate (if
/// it presented one) put in every request's extensions.
fn with_peer<S>(
    app: Router,
    stream: &tokio_rustls::server::TlsStream<S>,
) -> MapRequest<Router, impl FnMut(Request<Incoming>) -> Request<Incoming> + Clone> {
    let peer = stream.get_ref().1.peer_certificates().map(|chain| {
        let names = PeerNames::of_chain(Some(chain));
        tracing::debug!("client certificate names {:?}", names.names);
        Arc::new(names)
    });
    MapRequest::new(app, move |mut req: Request<Incoming>| {
        if let Some(peer) = &peer {
            req.extensions_mut().insert(peer.clone());
        }
        req
    })
}

/// Answers a connection over the cap, without reading its request.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "{\"error\":\"too many open connections; retry shortly\"}";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A failed accept: a connection reset before it was taken is nothing;
/// anything else (out of file descriptors) is logged and waited out.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!("accepting a connection: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
