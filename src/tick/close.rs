//! Closing in Pod lives that wait and that this server will not start: a second
//! request for a session already streamed, a live whose meeting never runs, a live
//! whose start failed too often. Each is closed only if Pod still shows it waiting
//! ([`close_if_waiting`]): another server may have started it meanwhile.
//!
//! It decides nothing (`plan.rs` does) and never touches a slot.

use anyhow::{Context, Result};
use chrono::Utc;
use tracing::{error, info};

use super::ctx::Ctx;
use crate::model::{Live, LiveId, LiveStatus, PodWrite, Problem, ProblemKey};

/// Closes a waiting live for a session `kept` already streams (a double request), if
/// Pod still shows it waiting. No broadcaster was made for it; nothing else to undo.
pub(super) async fn close_duplicate(ctx: &Ctx, live: LiveId, kept: LiveId) -> Result<()> {
    let closing = close_if_waiting(ctx, live)
        .await
        .context("closing in Pod a second request for a session already streamed")?;
    if let Closing::Closed = closing {
        info!(
            live,
            kept,
            "live closed in Pod without being started: live {kept} streams the same BBB session"
        );
    }
    Ok(())
}

/// Closes a waiting live whose meeting has not been running in BBB for `seen` ticks,
/// if Pod still shows it waiting.
pub(super) async fn close_stale(ctx: &Ctx, live: LiveId, seen: u32) -> Result<()> {
    let closing = close_if_waiting(ctx, live)
        .await
        .context("closing in Pod a live whose meeting is not running")?;
    if let Closing::Closed = closing {
        info!(
            live,
            seen, "live closed in Pod without being started: its meeting is not running in BBB"
        );
    }
    Ok(())
}

/// What [`close_if_waiting`] did.
pub(super) enum Closing {
    Closed,
    /// Pod shows it no longer waiting (started, maybe by another server): left alone.
    NotWaiting(Live),
    /// Deleted from Pod: nothing to close.
    Gone,
}

/// Closes `live` in Pod (status 2, end date now) only if Pod still shows it waiting:
/// without `[cluster]`, another server may have started it meanwhile, and closing it
/// would cut a running live.
pub(super) async fn close_if_waiting(ctx: &Ctx, live: LiveId) -> Result<Closing> {
    match ctx
        .pod
        .livestream(live)
        .await
        .context("reading the live before closing it")?
    {
        Some(l) if l.status == LiveStatus::Waiting => {}
        Some(l) => return Ok(Closing::NotWaiting(l)),
        None => return Ok(Closing::Gone),
    }
    let answer = ctx
        .pod
        .mark_live_stopped(live, Some(Utc::now().fixed_offset()))
        .await;
    ctx.settled(PodWrite::CloseLive { live }, answer)
        .context("closing the live in Pod")?;
    Ok(Closing::Closed)
}

/// Closes a live whose start failed too often.
pub(super) async fn give_up(
    ctx: &Ctx,
    live: LiveId,
    attempts: u32,
    meeting_url: Option<&str>,
) -> Result<Option<Problem>> {
    match close_if_waiting(ctx, live).await? {
        Closing::Closed => {}
        Closing::NotWaiting(l) => {
            info!(live, status = ?l.status, server = l.server.as_deref().unwrap_or(""),
                "the live failed to start here {attempts} times but is no longer waiting; left as it is");
            return Ok(None);
        }
        Closing::Gone => return Ok(None),
    }
    // The admin reading the mail knows the course, not the live id: name it if Pod
    // still answers (best effort, the live is closed either way).
    let name = match meeting_url {
        Some(url) => ctx.pod.meeting(url).await.ok().map(|m| m.meeting_name),
        None => None,
    };
    let label = match &name {
        Some(n) => format!("live {live} ({:?})", n),
        None => format!("live {live}"),
    };
    error!(
        live,
        attempts,
        meeting = name.as_deref().unwrap_or(""),
        "start failed too often; live closed in Pod"
    );
    Ok(Some(Problem {
        key: ProblemKey::Start(live),
        live: Some(live),
        what: format!(
            "{label} could not be started ({attempts} attempts); it was closed in Pod (status 2)"
        ),
        advice: format!(
            "See the earlier errors of this live in the log ({}). The teacher can ask for a \
             new live in Pod once the cause is fixed.",
            crate::logging::day_log(&ctx.cfg.server.log_dir, chrono::Utc::now().date_naive())
                .display()
        ),
        gave_up: true,
    }))
}
