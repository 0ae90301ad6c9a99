//! A live's stop, step by step (container down, recordings parked, Pod closed,
//! broadcaster deleted; each recorded before the next, so an interrupted stop
//! resumes where it was). Also what leads to a stop: the sightings of an ended
//! meeting, the confirmation of a meeting absent from getMeetings, and the closing
//! of waiting lives whose meeting never ran.
//!
//! It does not hand recordings over to Pod (`handover`, after the actions).

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use chrono::Utc;
use tracing::{debug, error, info, warn};

use super::apply::SlotOutcome;
use super::report::{ADVICE_BBB, ADVICE_POD, ADVICE_STOP, TickReport, problem};
use super::{Ctx, send};
use crate::model::{
    BbbMeeting, Live, LiveId, LiveStatus, Phase, Problem, RoomInfo, SlotState, StopProgress,
    StopReason,
};
use crate::plan::MeetingsView;
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
    if parked.is_some() {
        return Ok(None);
    }
    let e = anyhow!(
        "live {id} asked for a recording but the streamer wrote no mkv file in {}",
        videodata.display()
    );
    warn!("{e:#}");
    Ok(Some(problem(
        format!("recording:{id}"),
        Some(id),
        &e,
        "Look at the container's output (server.debug = true); check that videodata is writable by uid 1001.",
    )))
}

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
            match ctx
                .pod
                .mark_live_stopped(id, Some(Utc::now().fixed_offset()))
                .await
            {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(anyhow!(e).context("closing the live in Pod")),
            }
        }
        (_, None) => {}
        // Closed by hand: keep the end date the admin wrote, set it only if empty.
        (_, Some(l)) if l.status == LiveStatus::Stopped && l.end_date.is_none() => {
            ctx.pod
                .mark_live_stopped(id, Some(Utc::now().fixed_offset()))
                .await?;
        }
        (_, Some(l)) if l.status == LiveStatus::Stopped => {}
        (_, Some(_)) if ours => {
            ctx.pod
                .mark_live_stopped(id, Some(Utc::now().fixed_offset()))
                .await
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
        ctx.pod
            .delete_broadcaster(&slug)
            .await
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
                    .push(problem(format!("stop:{live}"), Some(live), &e, ADVICE_POD));
                return;
            }
        }
    }
    let Some(s) = state else { return };
    let empty_room = (reason == StopReason::RoomEmpty).then(|| {
        let now = ctx.now();
        let since = s.alone.since.unwrap_or(now);
        let ticks = s.alone.ticks.saturating_add(1);
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
            (now - since).num_minutes().max(0),
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
                .push(problem(format!("stop:{id}"), Some(id), &e, ADVICE_STOP));
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
            format!("state:slot{slot}"),
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
            format!("state:slot{slot}"),
            Some(s.live),
            &e,
            ADVICE_STOP,
        ));
    }
}

/// A session absent from getMeetings is asked for by itself (`getMeetingInfo`) before
/// the sighting that would stop its live: Scalelite silently leaves out the meetings
/// of a node it finds offline. The answer names the session BBB holds for the room now:
/// ours and running → counted as listed and running; another session, or unknown to
/// BBB → stays absent (ended); any error → counted as running this tick (nothing is
/// stopped on a doubt) and reported.
pub(super) async fn confirm_absences(
    ctx: &Ctx,
    states: &BTreeMap<u32, SlotState>,
    meetings: &mut MeetingsView,
    report: &mut TickReport,
) {
    let MeetingsView::Listed(listed) = meetings else {
        return;
    };
    let needed = ctx.cfg.bbb.end_confirmations.max(1);
    let doubtful: Vec<(LiveId, String, Option<String>)> = states
        .values()
        .filter(|s| s.phase == Phase::Running && s.ended_seen + 1 >= needed)
        .filter_map(|s| Some((s.live, s.meeting_id.clone()?, s.session.clone())))
        .filter(|(_, m, session)| !listed.lists(m, session.as_deref()))
        .collect();
    let asks = doubtful
        .iter()
        .map(|(live, meeting_id, session)| async move {
            let answer = ctx.bbb.meeting_info(meeting_id).await;
            (*live, meeting_id, session, answer)
        });
    for (live, meeting_id, session, answer) in futures_util::future::join_all(asks).await {
        let session = session.as_deref();
        let entry = match answer {
            Ok(info) if info.runs(session) => {
                warn!(
                    live,
                    meeting_id, "session missing from getMeetings but running: not stopped"
                );
                running_entry(meeting_id, session)
            }
            Ok(RoomInfo::Session(other)) => {
                debug!(live, meeting_id, now = %other.internal_meeting_id,
                    "session missing from getMeetings; BBB holds another (or ended) session for its room");
                other
            }
            Ok(RoomInfo::NotFound) => continue,
            Err(e) => {
                let e = anyhow!(e).context(format!(
                    "meeting {meeting_id:?} of live {live} is missing from getMeetings and getMeetingInfo failed (not stopped this tick)"
                ));
                report.problem(
                    format!("bbb:getMeetingInfo:{live}"),
                    Some(live),
                    &e,
                    ADVICE_BBB,
                );
                running_entry(meeting_id, session)
            }
        };
        listed.add(entry);
    }
}

/// A listed, running entry for a live's session (or, unknown, its room).
fn running_entry(meeting_id: &str, session: Option<&str>) -> BbbMeeting {
    BbbMeeting {
        meeting_id: meeting_id.to_owned(),
        internal_meeting_id: session.unwrap_or_default().to_owned(),
        running: true,
        end_time: 0,
    }
}

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
    ctx.pod
        .mark_live_stopped(live, Some(Utc::now().fixed_offset()))
        .await
        .context("closing the live in Pod")?;
    Ok(Closing::Closed)
}
