//! The accept loop: HTTP/1.1 over TCP, or over TLS when `[gateway]` has a certificate.
//! Our own loop rather than `axum::serve` for the bounds a service facing the network
//! needs: at most [`MAX_CONNECTIONS`] at once, the TLS handshake and the request head
//! within [`HEADER_TIMEOUT`] (done in the connection's task, never in the loop), a
//! connection's whole life within [`CONNECTION_TIMEOUT`], and a graceful stop that
//! lets the requests in flight finish within [`DRAIN_TIMEOUT`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::limits::{CONNECTION_TIMEOUT, DRAIN_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD};

/// Serves `router` on `listener` until `stop` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let graceful = GracefulShutdown::new();
    let free = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = free.clone().acquire_owned() => permit?,
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    warn!("gateway: accepting a connection failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let served = tokio::time::timeout(CONNECTION_TIMEOUT, async move {
                match tls {
                    None => connection(stream, router, watcher, peer).await,
                    Some(tls) => {
                        match tokio::time::timeout(HEADER_TIMEOUT, tls.accept(stream)).await {
                            Ok(Ok(stream)) => connection(stream, router, watcher, peer).await,
                            Ok(Err(e)) => debug!(%peer, "gateway: TLS handshake failed: {e}"),
                            Err(_) => debug!(%peer, "gateway: TLS handshake timed out"),
                        }
                    }
                }
            })
            .await;
            if served.is_err() {
                debug!(%peer, "gateway: connection closed after {CONNECTION_TIMEOUT:?}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            "gateway: requests still in flight after {DRAIN_TIMEOUT:?} were abandoned; \
             what the engine recorded stays"
        );
    }
    Ok(())
}

/// One connection: HTTP/1.1 (Pod's `requests` speaks nothing else), the head bounded in
/// size and time.
async fn connection<I>(io: I, router: Router, watcher: Watcher, peer: SocketAddr)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        debug!(%peer, "gateway: connection ended: {e}");
    }
}
