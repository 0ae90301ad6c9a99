//! The webinar gateway: the HTTP service `serve` runs for Pod 3.8.2 and later
//! (docs/webinar-api.md). It owns HTTP — routes under any path prefix, the bearer token,
//! bounds on sizes, times and rates, the JSON Pod reads, TLS, the request metrics —
//! and nothing of webinars: every decision is the engine's ([`Webinars`]).

mod answer;
mod auth;
mod counters;
mod engine;
mod limits;
mod params;
mod routes;
mod server;
mod tls;

#[cfg(test)]
mod double;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tracing::{info, warn};

pub use answer::{Answer, Reason};
pub use auth::Token;
pub use engine::{ChatPanel, Refusal, StartRequest, Started, Stopped, Webinars};
pub use routes::{App, router};
pub use tls::acceptor as tls_acceptor;

use crate::config::{Secret, TlsFiles};

/// How often the metrics file is rewritten while serving.
const METRICS_EVERY: Duration = Duration::from_secs(15);

/// What `serve` runs with besides the engine.
pub struct Service {
    pub token: Secret,
    pub tls: Option<TlsFiles>,
    /// The `[metrics] textfile` of the tick; the gateway writes its own file beside it.
    pub metrics_textfile: Option<PathBuf>,
}

/// The listening socket of `gateway.listen`.
pub async fn bind(listen: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (gateway.listen)"))
}

/// Serves Pod's calls on `listener` until `stop` resolves; then lets the requests in
/// flight finish (bounded), shuts the engine down and writes the metrics a last time.
pub async fn serve<W: Webinars>(
    service: Service,
    listener: TcpListener,
    engine: Arc<W>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let tls = service.tls.as_ref().map(tls::acceptor).transpose()?;
    let local = listener
        .local_addr()
        .context("reading the listening address")?;
    let app = Arc::new(App::new(engine.clone(), Token::new(&service.token)));
    let metrics = Metrics {
        file: service
            .metrics_textfile
            .as_deref()
            .map(counters::textfile_beside),
        warned: false,
    };
    info!(listen = %local, https = tls.is_some(), "gateway: serving Pod's webinar calls");
    let result = serve_until(listener, tls, app, metrics, stop).await;
    engine.shutdown().await;
    info!("gateway: stopped");
    result
}

async fn serve_until<W: Webinars>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Arc<App<W>>,
    mut metrics: Metrics,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let server = server::run(listener, tls, router(app.clone()), stop);
    tokio::pin!(server);
    let mut every = tokio::time::interval(METRICS_EVERY);
    let result = loop {
        tokio::select! {
            result = &mut server => break result,
            _ = every.tick() => metrics.write(&app),
        }
    };
    metrics.write(&app);
    result
}

/// The gateway's metrics file, if `[metrics]` is configured.
struct Metrics {
    file: Option<PathBuf>,
    /// A failure to write is said once, not every 15 s.
    warned: bool,
}

impl Metrics {
    fn write<W: Webinars>(&mut self, app: &App<W>) {
        let Some(file) = &self.file else { return };
        let text = app.requests.render(app.engine.running());
        match counters::write(file, &text) {
            Ok(()) => self.warned = false,
            Err(e) if !self.warned => {
                warn!(
                    "gateway: writing the metrics file {}: {e:#}",
                    file.display()
                );
                self.warned = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::gateway::double::Double;

    const STOP: &str = "gw/1/stop?room=3319bf5aed";

    struct Running {
        url: String,
        engine: Arc<Double>,
        stop: tokio::sync::oneshot::Sender<()>,
        done: tokio::task::JoinHandle<Result<()>>,
    }

    async fn start(tls: Option<TlsFiles>, metrics: Option<PathBuf>) -> Running {
        let listener = bind("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let engine = Arc::new(Double::with_slots(1));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let service = Service {
            token: Secret::new("t"),
            tls,
            metrics_textfile: metrics,
        };
        let done = tokio::spawn(serve(service, listener, engine.clone(), async move {
            let _ = stopped.await;
        }));
        Running {
            url: format!("{scheme}://127.0.0.1:{port}/"),
            engine,
            stop,
            done,
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .expect("client")
    }

    async fn stop_of(client: &reqwest::Client, url: &str) -> serde_json::Value {
        client
            .get(format!("{url}{STOP}"))
            .bearer_auth("t")
            .send()
            .await
            .expect("answered")
            .json()
            .await
            .expect("JSON")
    }

    #[tokio::test]
    async fn http_then_a_clean_stop_with_the_last_metrics_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tick_file = dir.path().join("bbb_pod_live.prom");
        let running = start(None, Some(tick_file.clone())).await;
        let v = stop_of(&client(), &running.url).await;
        assert_eq!(v["status"], "success");
        running.stop.send(()).expect("serving");
        running.done.await.expect("joined").expect("a clean stop");
        assert!(*running.engine.shut_down.lock().expect("lock"));
        let text = std::fs::read_to_string(dir.path().join("bbb_pod_live_gateway.prom"))
            .expect("the metrics file");
        assert!(
            text.contains("route=\"stop\",answer=\"success\"} 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn https_with_the_configured_certificate() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
        let tls = TlsFiles {
            cert: fixtures.join("gateway.pem"),
            key: fixtures.join("gateway.key"),
        };
        let running = start(Some(tls), None).await;
        let v = stop_of(&client(), &running.url).await;
        assert_eq!(v["status"], "success");
        // Plain HTTP on the HTTPS port gets no answer, not a hang.
        let plain = running.url.replace("https", "http");
        assert!(client().get(format!("{plain}{STOP}")).send().await.is_err());
        running.stop.send(()).expect("serving");
        running.done.await.expect("joined").expect("a clean stop");
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_request_is_cut_off() {
        let running = start(None, None).await;
        let addr = running
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET /gw/1/stop?room=a HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let t0 = Instant::now();
        let mut buf = Vec::new();
        // The server closes (with or without a 408) after HEADER_TIMEOUT; the bound
        // here only keeps a broken server from hanging the test.
        let read =
            tokio::time::timeout(limits::HEADER_TIMEOUT * 3, slow.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "still open after {:?}", t0.elapsed());
        // Meanwhile and after, others are served.
        let v = stop_of(&client(), &running.url).await;
        assert_eq!(v["status"], "success");
        running.stop.send(()).expect("serving");
        running.done.await.expect("joined").expect("a clean stop");
    }
}
