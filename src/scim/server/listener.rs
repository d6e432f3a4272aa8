//! The SCIM listener's accept loop, written out (rather than `axum::serve`) for what
//! slow or hostile clients need: a deadline for a request's headers (hyper's
//! `header_read_timeout`), a cap on open connections, and a health handle saying whether
//! the listener can take a new connection now (for `/readyz`).
//!
//! At the cap the loop stops accepting: newcomers wait in the kernel's listen backlog
//! until a connection ends (slow ones end at the header deadline), rather than being
//! accepted and closed unanswered. `/readyz` answers 503 meanwhile, so a load balancer
//! can send them elsewhere. An accept error (such as running out of file descriptors)
//! is logged, marks the listener unhealthy until an accept succeeds again, and is retried
//! after a short pause.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use tracing::{debug, warn};

/// The address a connection came in on (the listener's own), for URLs when no public base
/// URL is configured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalAddr(pub SocketAddr);

/// Pause after a failed accept before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(250);

/// Whether the SCIM listener can take a connection now. Cheap to clone.
#[derive(Clone)]
pub struct ScimHealth(Arc<HealthState>);

struct HealthState {
    max_connections: usize,
    open: Arc<Semaphore>,
    accept_error: Mutex<Option<String>>,
    serving: AtomicBool,
}

impl ScimHealth {
    pub(super) fn new(max_connections: usize) -> ScimHealth {
        let max_connections = max_connections.max(1);
        ScimHealth(Arc::new(HealthState {
            max_connections,
            open: Arc::new(Semaphore::new(max_connections)),
            accept_error: Mutex::new(None),
            serving: AtomicBool::new(false),
        }))
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.0.max_connections - self.0.open.available_permits()
    }

    /// Why the listener cannot take a connection now, or None when it can.
    pub fn problem(&self) -> Option<String> {
        if !self.0.serving.load(Ordering::Acquire) {
            return Some("the SCIM listener is not accepting connections".into());
        }
        if let Some(error) = self
            .0
            .accept_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Some(format!("the SCIM listener cannot accept: {error}"));
        }
        if self.0.open.available_permits() == 0 {
            return Some(format!(
                "the SCIM listener is at its limit of {} open connections (max_connections)",
                self.0.max_connections
            ));
        }
        None
    }

    fn set_accept_error(&self, error: Option<String>) {
        *self
            .0
            .accept_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = error;
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections
/// finish their requests in flight.
pub(super) async fn run(
    listener: TcpListener,
    router: Router,
    health: ScimHealth,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let own_addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let open = health.0.open.clone();
    health.0.serving.store(true, Ordering::Release);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                health.set_accept_error(None);
                accepted
            }
            Err(error) => {
                warn!(%error, "the SCIM listener could not accept a connection");
                health.set_accept_error(Some(error.to_string()));
                drop(permit);
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_RETRY) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let local = stream.local_addr().unwrap_or(own_addr);
        let router = router.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, local, router, header_read_timeout, stop).await;
            drop(permit);
        });
    }
    health.0.serving.store(false, Ordering::Release);
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it ends.
    let _ = open.acquire_many(health.0.max_connections as u32).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(LocalAddr(local));
        let router = router.clone();
        async move { router.oneshot(request).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // Slow or vanished clients end here; not worth more than a debug line.
        debug!(%error, %peer, "SCIM connection ended with an error");
    }
}
