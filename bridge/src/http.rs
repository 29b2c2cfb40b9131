//! Probes and metrics over HTTP/1.1.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use ehs_contract::http::{HEALTHZ_PATH, METRICS_PATH, READYZ_PATH};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::state::Shared;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What one client may hold of the endpoint. Probes and scrapes need a handful of short
/// connections; without bounds, idle or slow connections pile up until the process runs out of
/// file descriptors or memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; a connection beyond them is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, counted from when the connection opens or
    /// its previous response was sent, so it bounds idle keep-alive connections too.
    pub header_read_timeout: Duration,
    /// Longest a connection may live at all, whatever it does (a request body trickled in byte
    /// by byte, a response read slowly). Scrapers reconnect.
    pub max_connection_lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(5),
            max_connection_lifetime: Duration::from_secs(60),
        }
    }
}

/// Serves until the process ends; a failed connection only ends that connection.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Accepting and closing at once, rather than leaving the rest in the listen backlog,
        // tells the client immediately and keeps the backlog free for when a slot opens.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "http connection limit reached; closing");
            drop(stream);
            continue;
        };
        let shared = Arc::clone(&shared);
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(respond(&request, &shared)) }
            }),
        );
        tokio::spawn(async move {
            match tokio::time::timeout(limits.max_connection_lifetime, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "http connection ended with an error"),
                Err(_) => tracing::debug!(%peer, "http connection lived too long; closed"),
            }
            drop(slot);
        });
    }
}

fn respond(request: &Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match request.uri().path() {
        HEALTHZ_PATH => probe(shared.liveness()),
        READYZ_PATH => probe(shared.readiness()),
        METRICS_PATH => {
            let mut response = Response::new(Full::new(Bytes::from(shared.metrics.encode())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(OPENMETRICS),
            );
            response
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn probe(result: Result<(), &'static str>) -> Response<Full<Bytes>> {
    match result {
        Ok(()) => text(StatusCode::OK, "ok\n".into()),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
