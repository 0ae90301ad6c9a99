//! Pod writes whose answer could not be read (`model::write`): a stage that gets such
//! an answer records the write (`Ctx::settled`) and goes on as if it were done; the write
//! is kept in the server state, and every following tick, before reading anything
//! else, reads the object back ([`confirm_writes`]): Pod shows the write's effect, and
//! it is forgotten; it does not, and the write is redone (counted in
//! `pod_write_retries`), until Pod shows it. A DELETE answered 404 is done.
//!
//! Not here: writes a slot's own steps redo (see `model::write`).

use anyhow::{Result, anyhow};
use chrono::Utc;
use tracing::{debug, info, warn};

use super::ctx::Ctx;
use crate::model::{LiveStatus, PodWrite, ServerState, Unconfirmed};
use crate::pod::PodError;

/// Where a recorded write stands after this tick's look at Pod.
#[derive(Debug, PartialEq, Eq)]
enum Look {
    /// Pod shows its effect (or there is nothing left to do it to).
    Done,
    /// Redone, and the answer of the redo could be read.
    Redone,
    /// Redone, and the answer could not be read again (or replaced by another write).
    RedoUnconfirmed(PodWrite),
}

/// Reads back every write recorded by earlier ticks, and redoes those Pod does not
/// show. Pod failing keeps them for the next tick.
pub(super) async fn confirm_writes(ctx: &Ctx, server: &mut ServerState) {
    let mut still = Vec::new();
    for mut u in std::mem::take(&mut server.unconfirmed) {
        match look(ctx, &u.write).await {
            Ok(Look::Done) => info!(write = %u.write, "Pod shows an unconfirmed write done"),
            Ok(Look::Redone) => {
                server.counters.pod_write_retries += 1;
                info!(write = %u.write, retries = u.retries + 1, "Pod did not show an unconfirmed write: redone");
            }
            Ok(Look::RedoUnconfirmed(write)) => {
                server.counters.pod_write_retries += 1;
                warn!(write = %u.write, retries = u.retries + 1, "redone; its answer could not be read again");
                u.write = write;
                u.retries += 1;
                still.push(u);
            }
            Err(e) => {
                debug!(write = %u.write, "checking an unconfirmed write: {e:#}");
                still.push(u);
            }
        }
    }
    // Those recorded while this tick ran are added by `record_new`.
    server.unconfirmed = still;
}

/// Adds the writes this tick could not confirm to the server state (each once).
pub(super) fn record_new(ctx: &Ctx, server: &mut ServerState) {
    for write in ctx.take_unconfirmed() {
        if !server.unconfirmed.iter().any(|u| u.write == write) {
            server.unconfirmed.push(Unconfirmed {
                write,
                since: Utc::now(),
                retries: 0,
            });
        }
    }
}

async fn look(ctx: &Ctx, write: &PodWrite) -> Result<Look> {
    match write {
        PodWrite::DeleteBroadcaster { slug } => {
            if ctx.pod.broadcaster(slug).await?.is_none() {
                return Ok(Look::Done);
            }
            redo(ctx.pod.delete_broadcaster(slug).await, write)
        }
        PodWrite::CloseLive { live } => {
            let Some(l) = ctx.pod.livestream(*live).await? else {
                return Ok(Look::Done);
            };
            let ours = l.status == LiveStatus::Waiting
                || (l.status == LiveStatus::Running
                    && (1..=ctx.cfg.server.slots).any(|s| l.runs_in(ctx.cfg.server.number, s)));
            if l.status == LiveStatus::Stopped || !ours {
                // Closed, or started by another server since: not ours to close.
                return Ok(Look::Done);
            }
            redo(
                ctx.pod
                    .mark_live_stopped(*live, Some(Utc::now().fixed_offset()))
                    .await,
                write,
            )
        }
        PodWrite::CreateBroadcaster { name } => {
            let Some(b) = ctx
                .pod
                .broadcasters()
                .await?
                .into_iter()
                .find(|b| &b.name == name)
            else {
                return Ok(Look::Done);
            };
            if broadcaster_in_use(ctx, b.id).await? {
                return Ok(Look::Done);
            }
            let delete = PodWrite::DeleteBroadcaster {
                slug: b.slug.clone(),
            };
            // An unreadable answer again: the DELETE is what is left to confirm.
            redo(ctx.pod.delete_broadcaster(&b.slug).await, &delete)
        }
    }
}

fn redo<T>(answer: Result<T, PodError>, write: &PodWrite) -> Result<Look> {
    match answer {
        Ok(_) => Ok(Look::Redone),
        Err(e) if e.unconfirmed() => Ok(Look::RedoUnconfirmed(write.clone())),
        Err(e) if e.status() == Some(404) => Ok(Look::Done),
        Err(e) => Err(anyhow!(e)),
    }
}

/// Whether a slot of this server or a live in Pod holds broadcaster `id`: a broadcaster
/// made by a lost POST may have been found and reused by a later attempt.
async fn broadcaster_in_use(ctx: &Ctx, id: u64) -> Result<bool> {
    let (states, broken) = ctx.slots.load_all()?;
    if !broken.is_empty() {
        // A slot we cannot read may hold it.
        return Ok(true);
    }
    if states
        .values()
        .any(|s| s.broadcaster.as_ref().map(|b| b.id).or(s.broadcaster_id) == Some(id))
    {
        return Ok(true);
    }
    let lives = ctx.pod.current_livestreams(&[]).await?;
    Ok(lives.lives.iter().any(|l| l.broadcaster_id == Some(id)))
}
