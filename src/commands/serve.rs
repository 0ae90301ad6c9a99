//! `serve`: the webinar gateway for Pod 3.8.2 and later, until SIGTERM or SIGINT. It
//! checks `[gateway]` (a missing section or token is a configuration error: exit 2,
//! naming the key), binds the address, builds the webinar engine and hands both to the
//! HTTP layer (`gateway`). A stop signal drains the requests in flight and lets the
//! engine's background work reach a recorded state; the tick resumes the rest.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

use super::outcome::{Fatal, Outcome};
use crate::config::Config;
use crate::gateway::{self, Service};
use crate::webinar::Engine;

pub async fn serve(cfg: Arc<Config>, dry_run: bool) -> Result<Outcome, Fatal> {
    if dry_run {
        return Err(Fatal::Config(anyhow!(
            "--dry-run does not apply to serve (it answers Pod's calls); `run --dry-run` shows \
             what the tick would do with the webinars"
        )));
    }
    let g = cfg.gateway.as_ref().ok_or_else(|| {
        Fatal::Config(anyhow!(
            "configuration file {}: serve needs a [gateway] section (gateway.listen and \
             gateway.token, see config.example.toml)",
            cfg.path.display()
        ))
    })?;
    let token = g.token().map_err(Fatal::Config)?.clone();
    if let Some(tls) = &g.tls {
        gateway::tls_acceptor(tls).map_err(Fatal::Config)?;
    }
    let mut term = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let listener = gateway::bind(g.listen).await?;
    let engine = Arc::new(Engine::new(cfg.clone()).context("starting the webinar engine")?);
    let service = Service {
        token,
        tls: g.tls.clone(),
        metrics_textfile: cfg.metrics.as_ref().map(|m| m.textfile.clone()),
    };
    let stop = async move {
        let sig = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!(signal = sig, "gateway: stopping");
    };
    gateway::serve(service, listener, engine, stop).await?;
    Ok(Outcome::Done)
}
