//! A live's stop, step by step (container down, recordings parked, Pod closed,
//! broadcaster deleted; each recorded before the next, so an interrupted stop
//! resumes where it was), and the sightings of an ended meeting that lead to it.
//!
//! It does not confirm a meeting absent from getMeetings (`gather`), close waiting
//! lives (`close`) nor hand recordings over to Pod (`handover`, after the actions).

use anyhow::{Context, Result, anyhow};
use chrono::Utc;
use tracing::{error, info, warn};

use super::ctx::{Ctx, send};
use super::outcome::{ADVICE_POD, ADVICE_STOP, SlotOutcome, problem};
use crate::model::{
    Live, LiveId, LiveStatus, Phase, PodWrite, Problem, ProblemKey, SlotState, StopProgress,
    StopReason,
};
use crate::slots::keep_mkv_files;

/// Stops the live of `slot` (or resumes its stop when `reason` is None). Each step
/// is recorded before the next; the slot is freed only at the end.
pub async fn stop(
    ctx: &Ctx,
    slot: u32,
    mut state: SlotState,
    reason: Option<StopReason>,
    live: Option<&Live>,
) -> Result<Vec<Problem>> {
    if state.webinar.is_some() {
        // A webinar of `serve`: its own stop (no Pod livestream, no broadcaster).
        return ctx
            .webinars
            .stop_slot(slot, reason.unwrap_or(StopReason::ByHand))
            .await;
    }
    let mut problems = Vec::new();
    let id = state.live;
    if state.stop.is_none() {
        let reason = reason.unwrap_or(StopReason::ByHand);
        state.phase = Phase::Stopping;
        state.stop = Some(StopProgress {
            reason,
            since: Utc::now(),
            container_down: false,
            recordings_parked: false,
            pod_closed: false,
            broadcaster_deleted: false,
        });
        ctx.slots.save(slot, &state)?;
        info!(live = id, slot, reason = reason.describe(), "stopping live");
    }
    let mut progress = state.stop.clone().context("stop progress set above")?;
    if !progress.container_down {
        container_down(ctx, slot, id).await?;
        progress.container_down = true;
        record(ctx, slot, &mut state, &progress)?;
    }
    if !progress.recordings_parked {
        problems.extend(park_recordings(ctx, slot, &state)?);
        progress.recordings_parked = true;
        record(ctx, slot, &mut state, &progress)?;
    }
    if !progress.pod_closed {
        close_in_pod(ctx, slot, id, progress.reason, live).await?;
        progress.pod_closed = true;
        record(ctx, slot, &mut state, &progress)?;
    }
    if !progress.broadcaster_deleted {
        delete_broadcaster(ctx, &state, progress.reason, live).await?;
        progress.broadcaster_deleted = true;
        record(ctx, slot, &mut state, &progress)?;
    }
    ctx.slots.clear(slot)?;
    info!(
        live = id,
        slot,
        reason = progress.reason.describe(),
        "live stopped"
    );
    Ok(problems)
}

/// Records a step of the stop in the slot's state.
fn record(ctx: &Ctx, slot: u32, state: &mut SlotState, progress: &StopProgress) -> Result<()> {
    state.stop = Some(progress.clone());
    ctx.slots.save(slot, state)
}

/// Step 1: ffmpeg asked to finish the recording, then the container down.
async fn container_down(ctx: &Ctx, slot: u32, id: LiveId) -> Result<()> {
    if !ctx.slots.compose_file(slot).exists() {
        return Ok(());
    }
    let dir = ctx.slots.dir(slot);
    if let Err(e) = ctx.docker.finish_recording(&dir).await {
        // The container may already be gone; `down` below is what matters.
        // Usual when the container ends with ffmpeg (its exec shell is killed):
        // not worth a cron mail.
        info!(live = id, slot, "asking ffmpeg to finish: {e:#}");
    }
    super::streamer::save_log(ctx, slot, id).await;
    ctx.docker.down(&dir).await
}

/// Step 2: the recording parked for its hand-over (or, not asked for, kept aside).
/// A problem when a recording was asked for and none was written.
fn park_recordings(ctx: &Ctx, slot: u32, state: &SlotState) -> Result<Option<Problem>> {
    let id = state.live;
    let videodata = ctx.slots.videodata(slot);
    if !state.download {
        keep_mkv_files(&videodata, &ctx.kept_dir(&format!("live-{id}")))?;
        return Ok(None);
    }
    let parked = ctx.pending.park(
        id,
        state.meeting_url.as_deref().unwrap_or(""),
        state.user_url.as_deref().unwrap_or(""),
        &videodata,
    )?;
    let other_session = state
        .stop
        .as_ref()
        .is_some_and(|p| p.reason == StopReason::OtherSession);
    if let (Some(pending), true) = (&parked, other_session) {
        return hold_other_session(ctx, state, pending).map(Some);
    }
    if parked.is_some() {
        return Ok(None);
    }
    let e = anyhow!(
        "live {id} asked for a recording but the streamer wrote no mkv file in {}",
        videodata.display()
    );
    warn!("{e:#}");
    Ok(Some(problem(
        ProblemKey::Recording(id),
        Some(id),
        &e,
        "Look at the container's output (server.debug = true); check that videodata is writable by uid 1001.",
    )))
}

/// The recording of a streamer seen in its room's next session holds (some of) that
/// class: never handed over under the live's session. Kept for the admin (`recordings
/// list`, `deliver --as`, `discard`) and reported.
fn hold_other_session(
    ctx: &Ctx,
    state: &SlotState,
    pending: &crate::recording::Pending,
) -> Result<Problem> {
    let id = state.live;
    ctx.pending.hold(pending, HELD_OTHER_SESSION)?;
    let e = anyhow!(
        "live {id}: its session {} ended and its room {} runs another one; its streamer, \
         which waits on the room, was seen there, so its recording may hold that class: \
         kept, not handed over",
        state.session.as_ref().map_or("?", |s| s.as_str()),
        state.meeting_id.as_ref().map_or("?", |m| m.as_str()),
    );
    warn!(live = id, "{e:#}");
    Ok(problem(
        ProblemKey::Recording(id),
        Some(id),
        &e,
        ADVICE_OTHER_SESSION,
    ))
}

/// Why such a recording is held (shown by `recordings list` and `status`).
const HELD_OTHER_SESSION: &str =
    "its streamer was seen in another session of its room (the next class)";

const ADVICE_OTHER_SESSION: &str = "Watch it before it goes anywhere: `bbb-pod-live recordings \
list` shows it; `bbb-pod-live recordings deliver <file> --as <internal_meeting_id>` hands it \
over under the session it really holds, `bbb-pod-live recordings discard <file> --yes` deletes it.";

/// Step 3: the live closed in Pod when it is still ours there (an end date set on a
/// live closed by hand without one).
async fn close_in_pod(
    ctx: &Ctx,
    slot: u32,
    id: LiveId,
    reason: StopReason,
    live: Option<&Live>,
) -> Result<()> {
    let ours = live.is_some_and(|l| l.runs_in(ctx.cfg.server.number, slot));
    match (reason, live) {
        (StopReason::RemovedFromPod | StopReason::NoLongerOurs, _) => {}
        // A stop by hand whose live could not be read (Pod down): close it anyway.
        // If Pod is still down, the stop waits here and the next tick finishes it;
        // a live deleted meanwhile (404) has nothing left to close.
        (StopReason::ByHand, None) => {
            let answer = ctx
                .pod
                .mark_live_stopped(id, Some(Utc::now().fixed_offset()))
                .await;
            match ctx.settled(PodWrite::CloseLive { live: id }, answer) {
                Ok(()) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(anyhow!(e).context("closing the live in Pod")),
            }
        }
        (_, None) => {}
        // Closed by hand: keep the end date the admin wrote, set it only if empty.
        (_, Some(l)) if l.status == LiveStatus::Stopped && l.end_date.is_none() => {
            let answer = ctx
                .pod
                .mark_live_stopped(id, Some(Utc::now().fixed_offset()))
                .await;
            ctx.settled(PodWrite::CloseLive { live: id }, answer)?;
        }
        (_, Some(l)) if l.status == LiveStatus::Stopped => {}
        (_, Some(_)) if ours => {
            let answer = ctx
                .pod
                .mark_live_stopped(id, Some(Utc::now().fixed_offset()))
                .await;
            ctx.settled(PodWrite::CloseLive { live: id }, answer)
                .context("closing the live in Pod")?;
        }
        _ => {}
    }
    Ok(())
}

/// Step 4: the live's broadcaster deleted, unless the live now runs elsewhere with it.
async fn delete_broadcaster(
    ctx: &Ctx,
    state: &SlotState,
    reason: StopReason,
    live: Option<&Live>,
) -> Result<()> {
    let in_use_elsewhere = reason == StopReason::NoLongerOurs
        && live.and_then(|l| l.broadcaster_id).is_some_and(|b| {
            state
                .broadcaster
                .as_ref()
                .map(|o| o.id)
                .or(state.broadcaster_id)
                == Some(b)
        });
    if in_use_elsewhere {
        return Ok(());
    }
    let slug = match (&state.broadcaster, state.broadcaster_id) {
        (Some(b), _) => Some(b.slug.clone()),
        (None, Some(bid)) => ctx
            .pod
            .broadcasters()
            .await?
            .into_iter()
            .find(|b| b.id == bid)
            .map(|b| b.slug),
        (None, None) => None,
    };
    if let Some(slug) = slug {
        let answer = ctx.pod.delete_broadcaster(&slug).await;
        ctx.settled(PodWrite::DeleteBroadcaster { slug }, answer)
            .context("deleting the broadcaster")?;
    }
    Ok(())
}

/// A stop the plan decided. A live missing from Pod's list is first asked for by
/// itself: a paginated read can miss a row when rows shift between pages (pod.rs).
pub(super) async fn stop_planned(
    ctx: &Ctx,
    slot: u32,
    live: LiveId,
    state: Option<SlotState>,
    reason: StopReason,
    listed: Option<&Live>,
    out: &mut SlotOutcome,
) {
    if reason == StopReason::RemovedFromPod {
        match send(ctx.pod.livestream(live)).await {
            Ok(None) => {}
            Ok(Some(l)) if l.runs_in(ctx.cfg.server.number, slot) => {
                warn!(
                    live,
                    slot, "live missing from Pod's list but still running there; not stopped"
                );
                return;
            }
            Ok(Some(_)) => {}
            Err(e) => {
                let e = anyhow!(e).context("confirming that the live was deleted from Pod");
                out.problems
                    .push(problem(ProblemKey::Stop(live), Some(live), &e, ADVICE_POD));
                return;
            }
        }
    }
    let Some(s) = state else { return };
    let empty_room = (reason == StopReason::RoomEmpty).then(|| {
        let (ticks, since, minutes) = s.alone.at_stop(ctx.now());
        info!(
            live,
            slot,
            ticks,
            since = %crate::logging::local_time(since),
            "nobody in the meeting but bbb-pod-live's own users: the room stayed empty"
        );
        crate::mail::room_empty(
            &ctx.cfg.server.hostname,
            &crate::mail::EmptyRoom::Live(live),
            slot,
            s.meeting_name.as_deref().unwrap_or(""),
            ticks,
            minutes,
        )
    });
    send(stop_into(ctx, slot, s, Some(reason), listed, out)).await;
    // Said once: a stop that could not finish is resumed as such, not planned again.
    if let Some((subject, body)) = empty_room
        && let Err(e) = ctx.mailer.send(&subject, &body).await
    {
        warn!(live, slot, "mailing the admins about an empty room: {e:#}");
    }
}

pub(super) async fn stop_into(
    ctx: &Ctx,
    slot: u32,
    state: SlotState,
    reason: Option<StopReason>,
    live: Option<&Live>,
    out: &mut SlotOutcome,
) {
    let id = state.live;
    match stop(ctx, slot, state, reason, live).await {
        Ok(problems) => {
            out.stopped = Some(id);
            out.problems.extend(problems);
        }
        Err(e) => {
            error!(live = id, slot, "stop failed: {e:#}");
            out.problems
                .push(problem(ProblemKey::Stop(id), Some(id), &e, ADVICE_STOP));
        }
    }
}

/// Records how many ticks in a row the slot's meeting was seen ended.
pub(super) fn note_ended_seen(
    ctx: &Ctx,
    slot: u32,
    state: Option<SlotState>,
    seen: u32,
    out: &mut SlotOutcome,
) {
    let Some(mut s) = state else { return };
    s.ended_seen = seen;
    if let Err(e) = ctx.slots.save(slot, &s) {
        out.problems.push(problem(
            ProblemKey::SlotState(slot),
            Some(s.live),
            &e,
            ADVICE_STOP,
        ));
    }
}

/// Records who this tick found in the slot's room: `Some(n)`, the n-th tick in a row
/// with nobody but our own users (the first one dated); `None`, someone else (the
/// count restarts, the session has begun).
pub(super) fn note_alone(
    ctx: &Ctx,
    slot: u32,
    state: Option<SlotState>,
    alone: Option<u32>,
    out: &mut SlotOutcome,
) {
    let Some(mut s) = state else { return };
    match alone {
        Some(seen) => s.alone.seen_alone(seen, ctx.now()),
        None => s.alone.seen_company(),
    }
    if let Err(e) = ctx.slots.save(slot, &s) {
        out.problems.push(problem(
            ProblemKey::SlotState(slot),
            Some(s.live),
            &e,
            ADVICE_STOP,
        ));
    }
}
