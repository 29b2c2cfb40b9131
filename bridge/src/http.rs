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

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Instant;

    use super::*;

    /// Far above every timeout below, so a slow machine cannot fail the tests; a connection the
    /// server never closes still fails them.
    const GENEROUS: Duration = Duration::from_secs(15);

    const LIMITS: Limits = Limits {
        max_connections: 4,
        header_read_timeout: Duration::from_millis(300),
        // Beyond GENEROUS: only the header timeout can close a connection in these tests.
        max_connection_lifetime: Duration::from_secs(600),
    };

    /// The server on its own thread and runtime, so the tests can use blocking sockets.
    fn start(limits: Limits) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().expect("address");
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("listener");
                serve(listener, Arc::new(Shared::new(16)), limits).await;
            });
        });
        address
    }

    fn connect(address: SocketAddr) -> TcpStream {
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        stream
    }

    /// Reads until the server closes the connection; the time that took, or None if it did not
    /// within [`GENEROUS`].
    fn time_until_closed(stream: &mut TcpStream) -> Option<Duration> {
        let started = Instant::now();
        let mut buffer = [0; 1024];
        while started.elapsed() < GENEROUS {
            match stream.read(&mut buffer) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => {}
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return Some(started.elapsed()),
            }
        }
        None
    }

    /// A whole request on a fresh connection; the status line of the answer.
    fn get(address: SocketAddr, path: &str) -> Option<String> {
        let mut stream = connect(address);
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = Vec::new();
        let started = Instant::now();
        let mut buffer = [0; 1024];
        while started.elapsed() < GENEROUS {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        let answer = String::from_utf8_lossy(&answer).into_owned();
        answer
            .lines()
            .next()
            .map(str::to_owned)
            .filter(|line| line.starts_with("HTTP/1.1 "))
    }

    fn answers_within(address: SocketAddr, bound: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < bound {
            if get(address, METRICS_PATH).is_some_and(|status| status.contains(" 200 ")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    #[test]
    fn idle_connections_beyond_the_limit_are_closed_and_the_endpoint_recovers() {
        let address = start(LIMITS);
        assert!(answers_within(address, GENEROUS), "endpoint never answered");
        // Twice the limit, all silent.
        let mut idle: Vec<TcpStream> = (0..LIMITS.max_connections * 2)
            .map(|_| connect(address))
            .collect();
        // Each is closed: the excess at once, the rest by the header timeout.
        for stream in &mut idle {
            let closed = time_until_closed(stream);
            assert!(closed.is_some(), "an idle connection stayed open");
        }
        assert!(
            answers_within(address, GENEROUS),
            "endpoint stayed unavailable"
        );
    }

    #[test]
    fn a_slow_loris_is_closed_within_the_header_timeout() {
        let address = start(LIMITS);
        let mut slow = connect(address);
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
            .expect("first bytes");
        let started = Instant::now();
        let mut closed = false;
        // One header byte at a time, never finishing the headers.
        while started.elapsed() < GENEROUS {
            if slow.write_all(b"X").is_err() {
                closed = true;
                break;
            }
            let mut buffer = [0; 256];
            match slow.read(&mut buffer) {
                Ok(_) => {
                    closed = true;
                    break;
                }
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
            // Meanwhile the endpoint answers others.
            assert!(get(address, METRICS_PATH).is_some(), "endpoint stalled");
        }
        assert!(closed, "slow connection still open after {GENEROUS:?}");
    }

    #[test]
    fn an_idle_keep_alive_connection_is_closed() {
        let address = start(LIMITS);
        let mut stream = connect(address);
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .expect("request");
        let mut buffer = [0; 1024];
        let started = Instant::now();
        let read = loop {
            match stream.read(&mut buffer) {
                Ok(n) => break n,
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
                        && started.elapsed() < GENEROUS => {}
                Err(error) => panic!("no answer: {error}"),
            }
        };
        assert!(buffer[..read].starts_with(b"HTTP/1.1 "), "no answer");
        assert!(
            time_until_closed(&mut stream).is_some(),
            "kept alive forever"
        );
    }

    #[test]
    fn a_connection_is_closed_after_its_lifetime_however_busy() {
        let address = start(Limits {
            header_read_timeout: Duration::from_secs(600),
            max_connection_lifetime: Duration::from_millis(300),
            ..LIMITS
        });
        let mut stream = connect(address);
        let started = Instant::now();
        let mut buffer = [0; 1024];
        let mut closed = false;
        // A request every few milliseconds on one keep-alive connection: never idle, never slow.
        while !closed && started.elapsed() < GENEROUS {
            if stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
                .is_err()
            {
                closed = true;
            }
            match stream.read(&mut buffer) {
                Ok(0) => closed = true,
                Ok(_) => {}
                Err(error)
                    if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => closed = true,
            }
        }
        assert!(closed, "lived past its lifetime");
    }

    #[test]
    fn defaults_match_the_documented_limits() {
        let limits = Limits::default();
        assert_eq!(limits.max_connections, 64);
        assert_eq!(limits.header_read_timeout, Duration::from_secs(5));
        assert!(limits.max_connection_lifetime > limits.header_read_timeout);
    }
}
