//! The hand-over of parked recordings to Pod's `recordings_dir` (published in Pod
//! first, then copied durably), after the tick's actions.
//!
//! It does not park recordings (the stop does) nor know how files are copied
//! (`recording.rs`).

use anyhow::{Context, Result, anyhow, bail};
use tracing::{error, info, warn};

use super::ctx::Ctx;
use super::outcome::{ADVICE_RECORDING, TickReport};
use crate::model::ProblemKey;
use crate::recording::{Joiner, Pending};

/// Hands the parked recordings over to `pod.recordings_dir` (with `dry_run`, only
/// lists them in the plan); each failure is a problem of its live, kept for a later
/// tick.
pub async fn hand_over_recordings(ctx: &Ctx, dry_run: bool, report: &mut TickReport) {
    let scan = match ctx.pending.list() {
        Ok(l) => l,
        Err(e) => {
            report.problem(ProblemKey::RecordingList, None, &e, ADVICE_RECORDING);
            return;
        }
    };
    for u in &scan.unreadable {
        let e = anyhow!(
            "recording directory {} is unreadable: {}",
            u.dir.display(),
            u.error
        );
        report.problem(
            ProblemKey::Recording(u.live.unwrap_or(0)),
            u.live,
            &e,
            "Nothing in it is touched; repair its handover.json or move the files by hand.",
        );
    }
    if scan.pending.is_empty() {
        return;
    }
    let Some(dir) = ctx.cfg.pod.recordings_dir.clone() else {
        warn!(
            waiting = scan.pending.len(),
            "recordings wait for hand-over but pod.recordings_dir is empty"
        );
        return;
    };
    for pending in scan.pending {
        let id = pending.live;
        if crate::signals::interrupted() {
            // Stopping (SIGTERM): no new copy starts; the next tick hands it over.
            break;
        }
        if dry_run {
            report.plan_lines.push(format!(
                "hand over the recording of live {id} to {}",
                dir.display()
            ));
            continue;
        }
        let result: Result<bool> = async {
            let mut pending = pending;
            // Pod's `bbb` cron turns the file into a video of `encoded_by`; without an
            // owner it fails on that file at every run (docs/pod-api.md, "Meetings"):
            // keep it here.
            if pending.handover.user_url.trim().is_empty() {
                bail!(
                    "live {id} has no owner (user) in Pod: its recording is kept in {} for the admin to hand over by hand",
                    ctx.pending.live_dir(id).display()
                );
            }
            if pending.handover.internal_meeting_id.is_none() {
                match publish(ctx, &pending).await? {
                    Some(p) => pending = p,
                    None => return Ok(false),
                }
            }
            join_parts(ctx, &pending, report).await;
            // A multi-gigabyte copy to a network share: off the async workers, so the
            // other slots' actions and timeouts keep running meanwhile.
            let (store, target) = (ctx.pending.clone(), dir.clone());
            let delivery = tokio::task::spawn_blocking(move || store.deliver(&pending, &target))
                .await
                .context("the hand-over task failed")??;
            info!(
                live = id,
                file = %delivery.published.display(),
                bytes = delivery.size.unwrap_or(0),
                kept = delivery.kept.len(),
                "recording handed over to Pod"
            );
            Ok(true)
        }
        .await;
        match result {
            Ok(true) => report.delivered += 1,
            Ok(false) => {
                // Reported once, here; the tick no longer retries it (it is held).
                let e = anyhow!(
                    "the recording of live {id} cannot be handed over: its meeting was deleted in Pod"
                );
                report.problem(
                    ProblemKey::Recording(id),
                    Some(id),
                    &e,
                    ADVICE_MEETING_DELETED,
                );
            }
            Err(e) => {
                error!(live = id, "recording hand-over failed: {e:#}");
                let advice = crate::recording::advice(&e);
                report.problem(ProblemKey::Recording(id), Some(id), &e, &advice);
            }
        }
    }
}

const ADVICE_MEETING_DELETED: &str = "The meeting was deleted in Pod (Pod's purge of old meetings deletes them with their \
livestreams, or an admin did), so Pod has no name to take the file under. It is kept on local \
disk and no longer retried: `bbb-pod-live recordings list` shows it; `bbb-pod-live recordings \
deliver <file> --as <internal_meeting_id>` hands it over under another meeting, `bbb-pod-live \
recordings discard <file> --yes` deletes it.";

/// Marks the meeting published in Pod and records the `internal_meeting_id` Pod
/// answers; `None` when the meeting row is gone: the recording is then held (kept,
/// never retried) for the admin.
async fn publish(ctx: &Ctx, pending: &Pending) -> Result<Option<Pending>> {
    let id = pending.live;
    let published = ctx
        .pod
        .publish_recording(&pending.handover.meeting_url, &pending.handover.user_url)
        .await
        .context("marking the meeting as published in Pod")?;
    let Some(meeting) = published else {
        warn!(live = id, meeting = %pending.handover.meeting_url,
            "the meeting of this recording was deleted in Pod: the recording is kept for the admin");
        ctx.pending
            .hold(pending, "the meeting was deleted in Pod")?;
        return Ok(None);
    };
    ctx.pending
        .set_internal_id(pending, &meeting.internal_meeting_id)?;
    let pending = ctx
        .pending
        .find(id)?
        .context("the pending recording vanished")?;
    Ok(Some(pending))
}

/// Joins the live's parts into one recording before its delivery; a failure is a
/// problem of its own (the largest part is then delivered alone, the others kept).
async fn join_parts(ctx: &Ctx, pending: &Pending, report: &mut TickReport) {
    let id = pending.live;
    let joiner = Joiner {
        cfg: ctx.cfg.recording.clone(),
        docker: ctx.cfg.docker.command.first().cloned().unwrap_or_default(),
        image: crate::compose::streamer_image(&ctx.cfg.server.template),
    };
    if let Err(e) = ctx.pending.join_parts(pending, &joiner).await {
        let parts: Vec<String> = pending
            .files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect();
        let e = e.context(format!(
            "live {id}: its {} recording parts could not be joined ({}); the largest is \
             delivered alone, the others are kept",
            parts.len(),
            parts.join(", ")
        ));
        error!(live = id, "joining the recording parts failed: {e:#}");
        report.problem(ProblemKey::RecordingJoin(id), Some(id), &e, ADVICE_JOIN);
    }
}

const ADVICE_JOIN: &str = "Check that ffmpeg and ffprobe run on this host (keys recording.ffmpeg \
    and recording.ffprobe) or that docker can run the streamer image; the kept parts can be \
    joined by hand (ffmpeg -f concat -safe 0 -i list.txt -c copy out.mkv) and given to Pod.";
