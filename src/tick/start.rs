//! A live's start, step by step (each step recorded in the slot's state before the
//! next): leftovers kept aside, the meeting read, the compose file, then the
//! broadcaster and `docker compose up` together, the cluster claim renewed, Pod told.
//! Also what undoes or finishes a start: undo, revert, adopt, finish an interrupted
//! start. How a start failed is a [`StartError`], which the slot's outcome matches.
//!
//! It does not choose the broadcaster's name (`broadcaster`), which live starts where
//! (`plan.rs`), nor close a live given up (`close`).

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use tracing::{debug, info, warn};

use super::broadcaster::ensure_broadcaster;
use super::ctx::{Ctx, send};
use super::outcome::{SlotOutcome, describe, problem};
use super::shared::{InUse, Shared};
use crate::cluster::{Claim, Claimer};
use crate::compose::{self, ComposeParams};
use crate::config::Config;
use crate::fsutil::write_atomic;
use crate::mail;
use crate::model::{
    Live, LiveId, Phase, PodMeeting, PodWrite, Problem, ProblemKey, SlotState, WaitReason, Waiting,
};
use crate::names;
use crate::plan;
use crate::pod::StartFields;
use crate::slots::keep_mkv_files;

/// Claims `live` (with `[cluster]`) and starts it in `slot`. When another server
/// claimed it first, the slot takes the next waiting live nobody planned here; an
/// interrupted start of a live claimed elsewhere is undone.
pub(super) async fn start_in_slot(
    ctx: &Ctx,
    slot: u32,
    mut live: LiveId,
    mut state: Option<SlotState>,
    shared: &Shared,
    out: &mut SlotOutcome,
) {
    if crate::signals::interrupted() {
        // Stopping (SIGTERM): nothing new starts; an interrupted start resumes next tick.
        return;
    }
    // A resumed start renews its claim too: if it ran out while the start was
    // interrupted, another server may be starting the live now.
    while let Some(claimer) = &ctx.claimer {
        let lost = match send(claim_start(claimer, shared, live, state.is_some())).await {
            Ok(None) => break,
            Ok(Some(lost)) => lost,
            Err(e) => {
                out.problems.push(problem(
                    ProblemKey::ClusterClaim,
                    Some(live),
                    &e,
                    "No live is started while the cluster Redis is unreachable; check cluster.redis_url.",
                ));
                return;
            }
        };
        match lost {
            Lost::Session(held) => {
                if let Some(by) = held.live() {
                    out.waits(live, WaitReason::SessionStreamedBy { by });
                }
            }
            Lost::Live(held) => {
                debug!(live, holder = ?held, "claimed by another server");
                out.waits(
                    live,
                    WaitReason::ClaimedByServer {
                        server: held.server(),
                    },
                );
                if let Some(mut s) = state.take() {
                    warn!(
                        live,
                        slot,
                        "another server claimed this live while its start here was interrupted; undoing ours"
                    );
                    // Same live, same broadcaster name: the other server reuses it.
                    s.broadcaster = None;
                    if let Err(e) = send(undo_start(ctx, slot, s, false)).await {
                        out.start_failed(live, &e);
                    }
                    return;
                }
            }
        }
        // The slot is free: the next waiting live nobody planned here.
        match shared.next_standby() {
            Some(next) => live = next,
            None => return,
        }
    }
    let Some(l) = shared.lives.get(&live) else {
        return;
    };
    if state.is_some() && !matches!(shared.meetings, plan::MeetingsView::Listed(_)) {
        // An interrupted start, BBB unreadable: left as it is (its container may be
        // up) until a tick can tell whether its session runs.
        out.waits(live, WaitReason::BbbUnreadable);
        return;
    }
    let state = state.unwrap_or_else(|| SlotState::new(live, Utc::now()));
    let known = Known {
        prefetched: shared.prefetched.get(&live),
        meetings: &shared.meetings,
    };
    let result = send(start(ctx, slot, l, state, &shared.in_use, known)).await;
    record_start(live, slot, result, out);
}

/// What a start's result means for the slot's outcome: started, lost to another
/// server, waiting for a slot taken meanwhile, or failed (counted unless Pod was down).
fn record_start(
    live: LiveId,
    slot: u32,
    result: Result<Option<Problem>, FailedStart>,
    out: &mut SlotOutcome,
) {
    let failed = match result {
        Ok(mail_problem) => {
            out.started = Some(live);
            out.attempt = Some((live, true));
            out.problems.extend(mail_problem);
            return;
        }
        Err(failed) => failed,
    };
    // Logged once, with the tick's other problems (report::log_problems).
    match &failed.error {
        StartError::ClaimLost(lost) => {
            warn!(live, slot, "{}", failed.undo_before(lost));
            return;
        }
        StartError::NotShown(not_shown) => {
            info!(live, slot, "{not_shown}");
            out.waits(live, not_shown.reason);
            return;
        }
        StartError::SlotTaken(taken) => {
            info!(live, slot, "{taken}");
            out.waits(
                live,
                WaitReason::NoFreeSlot {
                    failed: 0,
                    max: super::MAX_START_ATTEMPTS,
                },
            );
            return;
        }
        // Pod down or restarting is not this live's fault: such an attempt is not
        // counted towards closing the live (it is retried, mailed hourly).
        StartError::PodUnavailable(_) => {
            warn!(live, "Pod was unavailable: not counted as a failed attempt");
            out.attempt = None;
        }
        StartError::Failed(_) => out.attempt = Some((live, false)),
    }
    out.start_failed_saying(live, failed.what());
}

/// A claim another holds: the live's (another server starts it) or its session's
/// (another live streams that session).
enum Lost {
    Live(Claim),
    Session(Claim),
}

/// The claims of a start: the live's (this server starts it), then, for a new start,
/// its session's (one streamer per session). `None`: both are ours.
async fn claim_start(
    claimer: &Claimer,
    shared: &Shared,
    live: LiveId,
    resumed: bool,
) -> Result<Option<Lost>> {
    match claimer.claim(live).await? {
        Claim::Won if resumed => Ok(None),
        Claim::Won => Ok(match claim_session(claimer, shared, live).await? {
            Claim::Won => None,
            held => Some(Lost::Session(held)),
        }),
        held => Ok(Some(Lost::Live(held))),
    }
}

/// Claims the BBB session of `live` (by its Pod meeting) for it; false when another
/// live, here or on another server, holds it: that live streams the session, and this
/// request is closed as a duplicate once Pod shows the other running.
async fn claim_session(claimer: &Claimer, shared: &Shared, live: LiveId) -> Result<Claim> {
    let Some(url) = shared
        .lives
        .get(&live)
        .and_then(|l| l.meeting_url.as_deref())
    else {
        return Ok(Claim::Won);
    };
    let won = claimer.claim_session(url, live).await?;
    if !won.won() {
        info!(
            live,
            "not started: another live holds its BBB session's claim"
        );
    }
    Ok(won)
}

/// A start interrupted while its live stopped waiting: finished if Pod shows the
/// live running here (the start told Pod before it was interrupted), else undone.
/// `listed` is the live as Pod's list showed it, if it did.
pub(super) async fn abandon_start(
    ctx: &Ctx,
    slot: u32,
    mut s: SlotState,
    listed: Option<&Live>,
    out: &mut SlotOutcome,
) {
    let live = s.live;
    // Missing from the list: ask Pod for that one live before undoing, as a
    // stop does. If the interrupted start did tell Pod, it is running here.
    let confirmed;
    let listed = match listed {
        Some(l) => Some(l),
        None => match send(ctx.pod.livestream(live)).await {
            Ok(l) => {
                confirmed = l;
                confirmed.as_ref()
            }
            Err(e) => {
                let e = anyhow!(e).context(format!(
                    "live {live} is missing from Pod's list; its interrupted start is undone once Pod confirms"
                ));
                out.start_failed(live, &e);
                return;
            }
        },
    };
    if let Some(l) = listed
        && l.runs_in(ctx.cfg.server.number, slot)
    {
        finish_start(ctx, slot, s, out);
        return;
    }
    // Started elsewhere (another server) with the broadcaster this attempt
    // made or reused: it is that live's now, not ours to delete.
    let theirs = listed.and_then(|l| l.broadcaster_id);
    if theirs.is_some() && s.broadcaster.as_ref().map(|b| b.id) == theirs {
        s.broadcaster = None;
    }
    if let Err(e) = send(undo_start(ctx, slot, s, false)).await {
        out.start_failed(live, &e);
    }
}

/// Starts `live` in `slot`; on failure undoes what this attempt created. Returns a
/// problem if only the start mail failed.
pub(super) async fn start(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    mut state: SlotState,
    running: &InUse,
    known: Known<'_>,
) -> Result<Option<Problem>, FailedStart> {
    let mut told_pod = false;
    if let Err(error) =
        start_steps(ctx, slot, live, &mut state, running, &mut told_pod, known).await
    {
        // Nothing of this attempt exists when the slot was another live's.
        let undo = if matches!(error, StartError::SlotTaken(_)) {
            None
        } else {
            undo_start(ctx, slot, state, told_pod)
                .await
                .err()
                .map(|undo| UndoFailed(format!("{undo:#}")))
        };
        return Err(FailedStart { error, undo });
    }
    info!(
        live = live.id,
        slot,
        meeting = state.meeting_name.as_deref().unwrap_or(""),
        stream_key = state.stream_key.as_deref().unwrap_or(""),
        "live started"
    );
    if !ctx.mailer.enabled() {
        return Ok(None);
    }
    let key = state.stream_key.clone().unwrap_or_default();
    let info = mail::LiveStarted {
        live: live.id,
        meeting_name: state.meeting_name.clone().unwrap_or_default(),
        slot,
        hostname: ctx.cfg.server.hostname.clone(),
        server_number: ctx.cfg.server.number,
        stream_url: ctx.cfg.bbb.stream_url_of(&key),
        hls_url: ctx.cfg.pod.hls_url_of(&key),
        broadcaster_name: state
            .broadcaster
            .as_ref()
            .map(|b| b.name.clone())
            .unwrap_or_default(),
        recording: state.download,
        chat: live.enable_chat,
    };
    let (subject, body) = mail::live_started(&info);
    match ctx.mailer.send(&subject, &body).await {
        Ok(()) => Ok(None),
        Err(e) => {
            warn!(live = live.id, "mailing the start failed: {e:#}");
            Ok(Some(problem(
                ProblemKey::StartMail,
                Some(live.id),
                &e,
                "Check the [mail] settings with `bbb-pod-live check`.",
            )))
        }
    }
}

/// The steps of a start, each recorded in the slot's state before the next.
/// `told_pod` is set once Pod may have been told the live runs (the undo then sets
/// it back to waiting).
pub(super) async fn start_steps(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    state: &mut SlotState,
    running: &InUse,
    told_pod: &mut bool,
    known: Known<'_>,
) -> Result<(), StartError> {
    prepare_slot(ctx, slot, live, state).await?;
    let (meeting, key) = read_meeting(ctx, slot, live, state, known).await?;
    write_compose(ctx, slot, live, state, &meeting, &key)?;
    broadcaster_beside_up(ctx, slot, live, state, &key, running).await?;
    let broadcaster_id = state
        .broadcaster
        .as_ref()
        .map(|b| b.id)
        .context("broadcaster set above")?;
    tell_pod(ctx, slot, live, state, broadcaster_id, told_pod).await
}

/// Step 1: the slot is the live's (state saved), its leftovers kept aside. The slot
/// is taken under the reservation lock: `serve` may have given it to a webinar since
/// the tick read the slots ([`SlotTaken`]: nothing is undone, the live waits).
async fn prepare_slot(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    state: &mut SlotState,
) -> Result<(), StartError> {
    state.phase = Phase::Starting;
    state.meeting_url = live.meeting_url.clone();
    state.user_url = live.user_url.clone();
    state.download = live.download_meeting && ctx.cfg.recording_enabled();
    let _reserving = ctx.slots.lock_slots().await?;
    let now = ctx.slots.load(slot)?;
    if let Some(other) = now.as_ref().filter(|s| s.live != live.id) {
        return Err(StartError::SlotTaken(SlotTaken {
            slot,
            by: other.live,
        }));
    }
    // Files left by an earlier live (e.g. a crash before its stop) are not this live's.
    // Only before this live's state file exists: a resumed start may already have
    // run `up`, and the mkv in the slot is then this live's own recording.
    if now.is_none() {
        let leftovers = keep_mkv_files(
            &ctx.slots.videodata(slot),
            &ctx.kept_dir(&format!("slot{slot}-before-live-{}", live.id)),
        )?;
        if !leftovers.is_empty() {
            warn!(
                slot,
                files = leftovers.len(),
                "recordings of an earlier live were in the slot; kept aside"
            );
        }
    }
    Ok(ctx.slots.save(slot, state)?)
}

/// What the tick knows of a live's meeting before its start: the meeting read before
/// planning, if it was, and BBB's meetings.
#[derive(Clone, Copy)]
pub(super) struct Known<'a> {
    pub prefetched: Option<&'a PodMeeting>,
    pub meetings: &'a plan::MeetingsView,
}

/// A start whose meeting, read by the start itself, names a session BBB does not show:
/// nothing is started, the live waits (not a failed attempt).
#[derive(Debug, thiserror::Error)]
#[error("{}", Waiting { live: *.live, reason: *.reason })]
pub(super) struct NotShown {
    live: LiveId,
    reason: WaitReason,
}

/// Step 2: the live's meeting (read before planning, or now) with a usable BBB id,
/// and the stream key, both recorded. Returns the meeting and the key.
async fn read_meeting(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    state: &mut SlotState,
    known: Known<'_>,
) -> Result<(PodMeeting, String)> {
    let meeting_url = live
        .meeting_url
        .as_deref()
        .with_context(|| format!("live {} has no meeting in Pod", live.id))?;
    let meeting = match known.prefetched {
        Some(m) => m.clone(),
        None => ctx
            .pod
            .meeting(meeting_url)
            .await
            .with_context(|| format!("reading the meeting of live {}", live.id))?,
    };
    if !compose::usable_meeting_id(meeting.meeting_id.as_str().trim()) {
        bail!(
            "the meeting of live {} ({meeting_url}) has no usable BBB meeting id ({:?}); no container started",
            live.id,
            meeting.meeting_id
        );
    }
    // Read now (not before planning): only now can BBB's list tell whether it shows
    // this live's session.
    if let Err(reason) = plan::session_shown(known.meetings, live, Some(&meeting)) {
        return Err(NotShown {
            live: live.id,
            reason,
        }
        .into());
    }
    state.meeting_id = Some(meeting.meeting_id.clone());
    state.session = Some(meeting.internal_meeting_id.clone()).filter(|s| !s.is_empty());
    state.meeting_name = Some(meeting.meeting_name.clone());
    let key = state
        .stream_key
        .get_or_insert_with(|| names::stream_key(&meeting.meeting_name, live.id))
        .clone();
    ctx.slots.save(slot, state)?;
    Ok((meeting, key))
}

/// Step 3: the slot's compose file written (it needs the stream key, not the
/// broadcaster). Its presence tells an undo that `up` may have run.
fn write_compose(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    state: &SlotState,
    meeting: &PodMeeting,
    key: &str,
) -> Result<()> {
    let cfg = &ctx.cfg;
    let params = ComposeParams {
        bbb_url: cfg.bbb.url.as_str().trim_end_matches('/').to_owned(),
        bbb_secret: cfg.bbb.secret.expose().to_owned(),
        meeting_id: meeting.meeting_id.to_string(),
        attendee_password: cfg.bbb.attendee_password.expose().to_owned(),
        moderator_password: cfg.bbb.moderator_password.expose().to_owned(),
        title: meeting.meeting_name.clone(),
        resolution: cfg.bbb.resolution.clone(),
        video_bitrate: cfg.bbb.video_bitrate,
        threads: cfg.bbb.threads,
        stream_url: cfg.bbb.stream_url_of(key),
        enable_chat: live.enable_chat,
        show_chat: live.show_chat,
        download: state.download,
        timezone: cfg.server.timezone.clone(),
        redis_channel: Config::redis_channel(slot),
        redis_bind: cfg.server.redis_bind,
        redis_port: Config::redis_port(slot),
        debug: cfg.server.debug,
    };
    let yaml =
        compose::render(&cfg.server.template, &params).context("rendering the compose file")?;
    write_atomic(&ctx.slots.compose_file(slot), yaml.as_bytes(), 0o600)
}

/// Step 4: the broadcaster POST and `docker compose up`, together: neither needs the
/// other. Each is on record before it is tried — the broadcaster name in the state,
/// the compose file in the slot — and the broadcaster is recorded as soon as it is
/// made, even while `up` still runs, so `undo_start` or a resumed start knows what
/// may exist. Both are awaited to the end: cancelling a POST in flight would leave a
/// broadcaster nobody knows of. A failure of either fails the start (undone whole).
async fn broadcaster_beside_up(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    state: &mut SlotState,
    key: &str,
    running: &InUse,
) -> Result<()> {
    let dir = ctx.slots.dir(slot);
    let (made, up) = tokio::join!(
        async {
            if state.broadcaster.is_none() {
                let b = ensure_broadcaster(ctx, slot, live, state, key, running).await?;
                state.broadcaster = Some(b);
                ctx.slots.save(slot, state)?;
            }
            anyhow::Ok(())
        },
        ctx.docker.up(&dir),
    );
    match (made, up) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(e), Err(up)) => Err(e.context(format!(
            "the broadcaster and the container both failed; the container: {up:#}"
        ))),
    }
}

/// Step 5: the cluster claim renewed, then Pod told the live runs here; recorded
/// as running.
async fn tell_pod(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    state: &mut SlotState,
    broadcaster_id: u64,
    told_pod: &mut bool,
) -> Result<(), StartError> {
    let cfg = &ctx.cfg;
    // The point of no return: the claim must still be ours (it may have run out
    // during a long `up`, and another server claimed the live).
    if let Some(claimer) = &ctx.claimer
        && !claimer
            .claim(live.id)
            .await
            .context("renewing the cluster claim before telling Pod")?
            .won()
    {
        // Same live, same broadcaster name: the other server reuses it.
        state.broadcaster = None;
        ctx.slots.save(slot, state)?;
        return Err(StartError::ClaimLost(ClaimLost(live.id)));
    }
    *told_pod = true;
    ctx.pod
        .mark_live_started(
            live.id,
            &StartFields {
                server: cfg.server_field(slot),
                broadcaster_id,
                redis_hostname: cfg.server.hostname.clone(),
                redis_port: Config::redis_port(slot),
                redis_channel: Config::redis_channel(slot),
            },
        )
        .await
        .context("telling Pod the live runs")?;
    state.phase = Phase::Running;
    ctx.slots.save(slot, state)?;
    Ok(())
}

/// Records as running a start that was interrupted after Pod was told.
pub(super) fn finish_start(ctx: &Ctx, slot: u32, mut state: SlotState, out: &mut SlotOutcome) {
    let live = state.live;
    state.phase = Phase::Running;
    match ctx.slots.save(slot, &state) {
        Ok(()) => {
            info!(
                live,
                slot, "live started (its start had been interrupted after Pod was told)"
            );
            out.started = Some(live);
            out.attempt = Some((live, true));
        }
        Err(e) => out.start_failed(live, &e),
    }
}

/// Undoes an attempt: container down, broadcaster deleted, live back to waiting if
/// Pod may have been told it runs, slot freed. If Pod cannot be told, the slot
/// keeps a `Reverting` state and the next tick finishes the undo.
pub(super) async fn undo_start(
    ctx: &Ctx,
    slot: u32,
    mut state: SlotState,
    told_pod: bool,
) -> Result<()> {
    let dir = ctx.slots.dir(slot);
    if ctx.slots.compose_file(slot).exists() {
        ctx.docker
            .down(&dir)
            .await
            .context("stopping the container of the failed start")?;
    }
    keep_mkv_files(
        &ctx.slots.videodata(slot),
        &ctx.kept_dir(&format!("live-{}-failed-start", state.live)),
    )?;
    if let Some(b) = state.broadcaster.take() {
        let answer = ctx.pod.delete_broadcaster(&b.slug).await;
        ctx.settled(
            PodWrite::DeleteBroadcaster {
                slug: b.slug.clone(),
            },
            answer,
        )
        .with_context(|| format!("deleting broadcaster {} of the failed start", b.slug))?;
        ctx.slots.save(slot, &state)?;
    }
    if told_pod {
        state.phase = Phase::Reverting;
        ctx.slots.save(slot, &state)?;
        ctx.pod
            .mark_live_waiting(state.live)
            .await
            .context("setting the live back to waiting in Pod")?;
    }
    ctx.slots.clear(slot)
}

/// Finishes an undo that could not tell Pod: the live back to waiting if Pod still
/// shows it running here, then the slot freed.
pub(super) async fn revert(
    ctx: &Ctx,
    slot: u32,
    state: SlotState,
    live: Option<&Live>,
) -> Result<()> {
    if let Some(l) = live
        && l.runs_in(ctx.cfg.server.number, slot)
    {
        ctx.pod.mark_live_waiting(state.live).await?;
    }
    ctx.slots.clear(slot)
}

/// Takes over a live Pod shows running here without a state file.
pub(super) async fn adopt(ctx: &Ctx, slot: u32, live: &Live) -> Result<()> {
    let mut state = SlotState::new(live.id, Utc::now());
    state.phase = Phase::Running;
    state.adopted = true;
    state.meeting_url = live.meeting_url.clone();
    state.user_url = live.user_url.clone();
    state.broadcaster_id = live.broadcaster_id;
    state.download = live.download_meeting && ctx.cfg.recording_enabled();
    // The meeting first: a state saved without its meeting id could never see the
    // meeting end. If Pod fails here, nothing is saved and the next tick adopts again.
    if let Some(url) = &live.meeting_url {
        let m = ctx
            .pod
            .meeting(url)
            .await
            .context("reading the meeting of the adopted live")?;
        state.meeting_id = Some(m.meeting_id);
        // The session too: a live started by bbb-pod-live.php streams its meeting row's.
        state.session = Some(m.internal_meeting_id).filter(|s| !s.is_empty());
        state.meeting_name = Some(m.meeting_name);
    }
    ctx.slots.save(slot, &state)?;
    warn!(
        live = live.id,
        slot, "Pod shows this live running here without a state file; taken over"
    );
    Ok(())
}

/// Why a start did not run: each way is handled on its own by [`start_in_slot`].
#[derive(Debug)]
pub(super) enum StartError {
    /// Another server claimed the live meanwhile: undone, neither counted nor reported.
    ClaimLost(ClaimLost),
    /// `serve` gave the slot to a webinar since the tick read the slots: nothing of the
    /// attempt exists, nothing is undone; the live waits for a free slot.
    SlotTaken(SlotTaken),
    /// BBB does not show the session the live's meeting (read by the start) names:
    /// undone, the live waits; neither counted nor reported.
    NotShown(NotShown),
    /// Pod was unreachable, too slow or behind a failing gateway: reported, not counted
    /// towards closing the live.
    PodUnavailable(anyhow::Error),
    /// Anything else: reported and counted.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for StartError {
    /// A failed step, sorted by its cause: Pod's own outage or anything else.
    fn from(e: anyhow::Error) -> Self {
        let e = match e.downcast::<NotShown>() {
            Ok(not_shown) => return StartError::NotShown(not_shown),
            Err(e) => e,
        };
        if pod_unavailable(&e) {
            StartError::PodUnavailable(e)
        } else {
            StartError::Failed(e)
        }
    }
}

/// A start that failed, and, if the undo of what it had made failed too, why.
#[derive(Debug)]
pub(super) struct FailedStart {
    pub error: StartError,
    pub undo: Option<UndoFailed>,
}

impl FailedStart {
    /// The problem's text: the start's cause first, then the undo's, each text once.
    pub(super) fn what(&self) -> String {
        let mut line = match &self.error {
            StartError::ClaimLost(lost) => lost.to_string(),
            StartError::SlotTaken(taken) => taken.to_string(),
            StartError::NotShown(not_shown) => not_shown.to_string(),
            StartError::PodUnavailable(e) | StartError::Failed(e) => describe(e),
        };
        if let Some(undo) = &self.undo {
            line.push_str("; ");
            line.push_str(&undo.to_string());
        }
        line
    }

    /// `cause` as the log says it: after the failed undo, if any.
    fn undo_before(&self, cause: &impl std::fmt::Display) -> String {
        match &self.undo {
            Some(undo) => format!("{undo}: {cause}"),
            None => cause.to_string(),
        }
    }
}

/// A start given up because another server holds the live's cluster claim: not a
/// failure of the live (it is being started there), so not counted nor reported.
#[derive(Debug, thiserror::Error)]
#[error("another server claimed live {0} while this one started it; this start is undone")]
pub(super) struct ClaimLost(LiveId);

/// A start that found its slot taken by another live when it came to take it (a
/// webinar `serve` reserved since the tick read the slots): not a failure, the live
/// waits for a free slot.
#[derive(Debug, thiserror::Error)]
#[error("slot {slot} was taken by live {by} meanwhile; this live waits for a free slot")]
pub(super) struct SlotTaken {
    slot: u32,
    by: LiveId,
}

/// Whether `e` comes from Pod being unreachable, too slow, or answered by a gateway
/// in front of it (502/503/504): a passing outage, not something wrong with a live.
pub(super) fn pod_unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<crate::pod::PodError>(),
            Some(
                crate::pod::PodError::Network { .. }
                    | crate::pod::PodError::Timeout { .. }
                    | crate::pod::PodError::Unconfirmed { .. }
                    | crate::pod::PodError::Status {
                        status: 502..=504,
                        ..
                    }
            )
        )
    })
}

/// Why the undo of a failed start failed too; its text goes after the start's own
/// cause ([`FailedStart::what`]).
#[derive(Debug)]
pub(super) struct UndoFailed(pub String);

impl std::fmt::Display for UndoFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "undoing the start failed too: {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::pod::PodError;

    fn status(status: u16) -> anyhow::Error {
        anyhow::Error::new(PodError::Status {
            method: "PATCH".into(),
            url: "https://pod/rest/livestreams/1/".into(),
            status,
            detail: String::new(),
        })
    }

    #[test]
    fn pod_down_slow_or_behind_a_failing_gateway_is_unavailable_not_the_lives_fault() {
        let network = anyhow::Error::new(PodError::Network {
            url: "https://pod/".into(),
            reason: "refused".into(),
        });
        let timeout = anyhow::Error::new(PodError::Timeout {
            url: "https://pod/".into(),
            timeout: Duration::from_secs(20),
        });
        for e in [network, timeout, status(502), status(503), status(504)] {
            // Wrapped as the start wraps it: the cause is found down the chain.
            let e = e.context("telling Pod the live runs");
            assert!(pod_unavailable(&e), "{e:#}");
        }
        for e in [
            status(500),
            status(400),
            status(404),
            anyhow::Error::new(PodError::Garbage {
                url: "https://pod/".into(),
                reason: "not json".into(),
            }),
            anyhow!("docker compose up failed"),
        ] {
            assert!(!pod_unavailable(&e), "{e:#}");
        }
    }

    #[test]
    fn a_failed_undo_comes_after_the_cause_and_nothing_is_said_twice() {
        let failed = FailedStart {
            error: StartError::from(
                anyhow!("connection refused").context("`docker compose up -d` in /x failed"),
            ),
            undo: Some(UndoFailed("`docker compose down` in /x failed".into())),
        };
        assert_eq!(
            failed.what(),
            "`docker compose up -d` in /x failed: connection refused; undoing the start \
             failed too: `docker compose down` in /x failed"
        );
    }

    #[test]
    fn a_lost_claim_whose_undo_failed_is_logged_as_its_error_chain_was() {
        let failed = FailedStart {
            error: StartError::ClaimLost(ClaimLost(3)),
            undo: Some(UndoFailed("`docker compose down` in /x failed".into())),
        };
        let StartError::ClaimLost(lost) = &failed.error else {
            unreachable!()
        };
        let chain = anyhow::Error::new(ClaimLost(3))
            .context(UndoFailed("`docker compose down` in /x failed".into()));
        assert_eq!(failed.undo_before(lost), format!("{chain:#}"));
    }

    #[test]
    fn a_lost_claim_is_recognised_through_its_context() {
        let e = anyhow::Error::new(ClaimLost(3)).context("starting live 3");
        assert!(e.chain().any(|c| c.is::<ClaimLost>()));
        assert!(format!("{e:#}").contains("another server claimed live 3"));
    }
}
