//! What is done to a webinar's slot, always under the slot's own lock (its caller
//! holds it): the streamer's `up`, its recreation with the chat panel flipped, the
//! stop; and the tick's pass over the webinars ([`Engine::tend`]). Each step is
//! recorded in the slot's state before the next, as for Pod's lives.

use anyhow::{Context, Result, bail};
use chrono::Utc;
use tracing::{debug, error, info, warn};

use super::{Engine, chat};
use crate::compose::{self, ComposeParams};
use crate::config::Config;
use crate::fsutil::write_atomic;
use std::collections::BTreeMap;

use crate::model::{ChatRoute, Company, LiveId, MeetingId, Problem, ProblemKey, Webinar};
use crate::model::{Phase, SlotState, StopProgress, StopReason};
use crate::plan::{self, MeetingsView, RoomStep, WebinarRules, WebinarStep};
use crate::slots::keep_mkv_files;

/// What a tick's pass over the webinars did.
#[derive(Debug, Default)]
pub struct Tended {
    pub problems: Vec<Problem>,
    /// The `--dry-run` lines, or the steps done.
    pub lines: Vec<String>,
    pub started: Vec<LiveId>,
    pub stopped: Vec<LiveId>,
}

impl Engine {
    /// The tick's pass: for each webinar's slot that `serve` is not acting on, the
    /// step `plan::webinar_step` decides (a held `up` `serve` left undone, a stop Pod
    /// asked for, the meeting's end), then the meeting's running flag for `status` and
    /// the cluster claim renewed. With `dry_run`, only the lines.
    pub async fn tend(
        &self,
        meetings: &MeetingsView,
        company: &BTreeMap<u32, Company>,
        dry_run: bool,
    ) -> Tended {
        let mut out = Tended::default();
        let inner = &self.inner;
        let states = match inner.slots.load_all() {
            Ok((states, _)) => states,
            Err(e) => {
                out.problems
                    .push(problem(ProblemKey::WebinarSlots, None, &e));
                return out;
            }
        };
        let rules = self.rules();
        for (slot, state) in states {
            let Some(room) = state.webinar.as_ref().map(|w| w.room.clone()) else {
                continue;
            };
            if dry_run {
                let asked = inner.slots.stop_requested(slot);
                let seen = company.get(&slot).copied();
                if let Some(step) =
                    plan::webinar_step(&state, asked, meetings, Utc::now(), rules, seen)
                {
                    out.lines.push(step.line(&room, slot));
                }
                continue;
            }
            let _acting = match inner.slots.try_lock_slot(slot) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    debug!(slot, room, "serve acts on the webinar's slot; left to it");
                    continue;
                }
                Err(e) => {
                    out.problems
                        .push(problem(ProblemKey::Webinar(room.clone()), None, &e));
                    continue;
                }
            };
            let seen = company.get(&slot).copied();
            if let Err(e) = self.tend_slot(slot, meetings, seen, &mut out).await {
                let live = state.live;
                error!(slot, room, "webinar: {e:#}");
                out.problems
                    .push(problem(ProblemKey::Webinar(room.clone()), Some(live), &e));
            }
        }
        out
    }

    /// One webinar's slot, its lock held: reread, decide, act.
    async fn tend_slot(
        &self,
        slot: u32,
        meetings: &MeetingsView,
        company: Option<Company>,
        out: &mut Tended,
    ) -> Result<()> {
        let inner = &self.inner;
        let Some(mut state) = inner.slots.load(slot)? else {
            return Ok(());
        };
        let Some(room) = state.webinar.as_ref().map(|w| w.room.clone()) else {
            return Ok(());
        };
        let asked = inner.slots.stop_requested(slot);
        let step = plan::webinar_step(&state, asked, meetings, Utc::now(), self.rules(), company);
        if let Some(step) = step {
            out.lines.push(step.line(&room, slot));
        }
        match step {
            Some(WebinarStep::Up) => {
                self.bring_up(slot).await?;
                out.started.push(state.live);
                return Ok(());
            }
            Some(WebinarStep::Stop(reason)) => {
                if reason == StopReason::RoomEmpty {
                    self.mail_room_empty(slot, &state, &room).await;
                }
                out.problems.extend(self.stop_in(slot, reason).await?);
                out.stopped.push(state.live);
                return Ok(());
            }
            Some(WebinarStep::ResumeStop) => {
                out.problems
                    .extend(self.stop_in(slot, StopReason::ByHand).await?);
                out.stopped.push(state.live);
                return Ok(());
            }
            Some(WebinarStep::SeenEnded { seen, .. }) => {
                info!(slot, room, seen, "webinar's meeting seen ended");
                state.ended_seen = seen;
            }
            Some(WebinarStep::SeenRunning) => {
                info!(slot, room, "webinar's meeting running again");
                state.ended_seen = 0;
            }
            Some(WebinarStep::Room(RoomStep::Alone { seen, needed })) => {
                debug!(
                    slot,
                    room,
                    seen,
                    needed,
                    "nobody in the webinar's meeting but bbb-pod-live's own users"
                );
                state.alone.seen_alone(seen, Utc::now());
            }
            Some(WebinarStep::Room(_)) => {
                debug!(slot, room, "someone is in the webinar's meeting: not empty");
                state.alone.seen_company();
            }
            None => {}
        }
        if let (MeetingsView::Listed(listed), Some(meeting_id), Some(w)) =
            (meetings, &state.meeting_id, state.webinar.as_mut())
        {
            w.meeting_running = listed.of_room(meeting_id).iter().any(|m| {
                m.running
                    && state
                        .session
                        .as_ref()
                        .is_none_or(|s| *s == m.internal_meeting_id)
            });
        }
        inner.slots.save(slot, &state)?;
        if let Some(claimer) = &inner.claimer {
            match claimer.claim_webinar(&room).await {
                Ok(c) if c.won() => {}
                Ok(held) => {
                    warn!(slot, room, holder = ?held, "another server holds this webinar's claim")
                }
                Err(e) => warn!(slot, room, "renewing the webinar's claim: {e:#}"),
            }
        }
        Ok(())
    }

    /// Brings the held streamer of `slot` up (its lock held): the chat route chosen,
    /// the compose file written with the chat panel Pod asked for, `up`, recorded as
    /// running. A stop Pod asked for meanwhile is done instead.
    pub(super) async fn bring_up(&self, slot: u32) -> Result<()> {
        let inner = &self.inner;
        let Some(mut state) = inner.slots.load(slot)? else {
            return Ok(());
        };
        let Some(mut w) = state.webinar.clone() else {
            return Ok(());
        };
        if inner.slots.stop_requested(slot) {
            self.stop_in(slot, StopReason::PodAsked).await?;
            return Ok(());
        }
        match state.phase {
            Phase::Starting => {}
            Phase::Running => return self.apply_panel(slot).await,
            Phase::Stopping | Phase::Reverting => return Ok(()),
        }
        if w.chat.is_none() {
            w.chat = Some(chat::route(&inner.bbb).await);
            state.webinar = Some(w.clone());
            inner.slots.save(slot, &state)?;
        }
        let shown = inner.slots.chat_panel_request(slot)?.unwrap_or(true);
        // What getMeetingInfo says now is recorded with the `up`: `status` is right
        // at once, not after the next tick.
        if let Some(running) = self.write_compose(slot, &state, &w, shown).await? {
            w.meeting_running = running;
        }
        if let Err(e) = inner.docker.up(&inner.slots.dir(slot)).await {
            w.up_failures += 1;
            state.webinar = Some(w);
            inner.slots.save(slot, &state)?;
            return Err(e.context("bringing the webinar's streamer up"));
        }
        w.chat_shown = Some(shown);
        state.phase = Phase::Running;
        state.webinar = Some(w.clone());
        inner.slots.save(slot, &state)?;
        info!(
            room = %w.room,
            slot,
            gateway = %w.gateway_path,
            meeting = state.meeting_id.as_ref().map_or("", MeetingId::as_str),
            chat_panel = shown,
            chat = ?w.chat,
            "webinar started"
        );
        self.mail_started(slot, &state, &w).await;
        // A toggle that came during the `up`.
        self.apply_panel(slot).await
    }

    /// Recreates the running streamer of `slot` (its lock held) when Pod asked for
    /// the other chat panel: a short cut in the stream, said in the log.
    pub(super) async fn apply_panel(&self, slot: u32) -> Result<()> {
        let inner = &self.inner;
        let Some(mut state) = inner.slots.load(slot)? else {
            return Ok(());
        };
        let Some(mut w) = state.webinar.clone() else {
            return Ok(());
        };
        let Some(wanted) = inner.slots.chat_panel_request(slot)? else {
            return Ok(());
        };
        if state.phase != Phase::Running || w.chat_shown == Some(wanted) {
            return Ok(());
        }
        warn!(
            room = %w.room,
            slot,
            chat_panel = wanted,
            "recreating the webinar's streamer with the chat panel {} (a short cut in the stream)",
            if wanted { "shown" } else { "hidden" }
        );
        if let Some(running) = self.write_compose(slot, &state, &w, wanted).await? {
            w.meeting_running = running;
        }
        inner
            .docker
            .up(&inner.slots.dir(slot))
            .await
            .context("recreating the webinar's streamer")?;
        w.chat_shown = Some(wanted);
        state.webinar = Some(w);
        inner.slots.save(slot, &state)
    }

    /// The slot's compose file for the webinar, with the attendee password BBB gives
    /// for Pod's meeting (Pod's meetings have their own passwords). Answers whether
    /// that getMeetingInfo found the meeting's session running (`None`: BBB did not
    /// answer).
    async fn write_compose(
        &self,
        slot: u32,
        state: &SlotState,
        w: &Webinar,
        show_chat: bool,
    ) -> Result<Option<bool>> {
        let cfg = &self.inner.cfg;
        let meeting_id = state
            .meeting_id
            .clone()
            .context("the webinar's state has no meeting id")?;
        let (attendee_password, running) = match self.inner.bbb.meeting_details(&meeting_id).await {
            Ok(Some(d)) => {
                let running = d.session.running
                    && state
                        .session
                        .as_ref()
                        .is_none_or(|s| *s == d.session.internal_meeting_id);
                (d.attendee_password, Some(running))
            }
            Ok(None) => (String::new(), Some(false)),
            Err(e) => {
                // The streamer reads it from getMeetingInfo itself when it joins.
                debug!(slot, "getMeetingInfo for the attendee password: {e}");
                (String::new(), None)
            }
        };
        let params = ComposeParams {
            bbb_url: cfg.bbb.url.as_str().trim_end_matches('/').to_owned(),
            bbb_secret: cfg.bbb.secret.expose().to_owned(),
            meeting_id: meeting_id.into_string(),
            attendee_password,
            moderator_password: String::new(),
            title: state.meeting_name.clone().unwrap_or_default(),
            resolution: cfg.bbb.resolution.clone(),
            video_bitrate: cfg.bbb.video_bitrate,
            threads: cfg.bbb.threads,
            stream_url: w.rtmp_dst.clone(),
            // The streamer's chat relay, for a BBB without sendChatMessage.
            enable_chat: w.chat == Some(ChatRoute::Redis),
            show_chat,
            download: state.download,
            timezone: cfg.server.timezone.clone(),
            redis_channel: Config::redis_channel(slot),
            redis_bind: cfg.server.redis_bind,
            redis_port: Config::redis_port(slot),
            debug: cfg.server.debug,
        };
        let yaml =
            compose::render(&cfg.server.template, &params).context("rendering the compose file")?;
        write_atomic(&self.inner.slots.compose_file(slot), yaml.as_bytes(), 0o600)?;
        Ok(running)
    }

    /// Stops the webinar of `slot` (its lock held), or goes on with its stop: the
    /// container down (its log kept), its files kept aside, Pod's Livestream set to 2
    /// when Pod did not ask, the claim released, the slot freed.
    pub(super) async fn stop_in(&self, slot: u32, reason: StopReason) -> Result<Vec<Problem>> {
        let inner = &self.inner;
        let Some(mut state) = inner.slots.load(slot)? else {
            return Ok(Vec::new());
        };
        let Some(w) = state.webinar.clone() else {
            bail!("slot {slot} holds no webinar");
        };
        let mut problems = Vec::new();
        if state.stop.is_none() {
            state.phase = Phase::Stopping;
            state.stop = Some(StopProgress {
                reason,
                since: Utc::now(),
                container_down: false,
                recordings_parked: false,
                pod_closed: false,
                broadcaster_deleted: true,
            });
            inner.slots.save(slot, &state)?;
            info!(room = %w.room, slot, reason = reason.describe(), "stopping webinar");
        }
        let mut progress = state.stop.clone().context("stop progress set above")?;
        if !progress.container_down {
            self.container_down(slot, &w).await?;
            progress.container_down = true;
            state.stop = Some(progress.clone());
            inner.slots.save(slot, &state)?;
        }
        if !progress.recordings_parked {
            let kept = inner
                .cfg
                .server
                .base_dir
                .join("recordings")
                .join("kept")
                .join(format!("webinar-{}", w.room));
            let files = keep_mkv_files(&inner.slots.videodata(slot), &kept)?;
            if !files.is_empty() {
                info!(room = %w.room, files = files.len(), dir = %kept.display(), "webinar recording kept");
            }
            progress.recordings_parked = true;
            state.stop = Some(progress.clone());
            inner.slots.save(slot, &state)?;
        }
        if !progress.pod_closed {
            // Best effort: the slot is not held for Pod's page; a failure is reported.
            if let Some(p) = self.close_in_pod(&state, &w, progress.reason).await {
                problems.push(p);
            }
            progress.pod_closed = true;
            state.stop = Some(progress.clone());
            inner.slots.save(slot, &state)?;
        }
        if let Some(claimer) = &inner.claimer
            && let Err(e) = claimer.release_webinar(&w.room).await
        {
            // It runs out after cluster.claim_ttl_secs.
            warn!(room = %w.room, "releasing the webinar's claim: {e:#}");
        }
        inner.slots.clear_requests(slot)?;
        inner.slots.clear(slot)?;
        info!(room = %w.room, slot, reason = progress.reason.describe(), "webinar stopped");
        Ok(problems)
    }

    /// The streamer's log kept as `<log_dir>/webinar-<room>.log`, then `down`.
    async fn container_down(&self, slot: u32, w: &Webinar) -> Result<()> {
        let inner = &self.inner;
        if !inner.slots.compose_file(slot).exists() {
            return Ok(());
        }
        let dir = inner.slots.dir(slot);
        if let Err(e) = inner.docker.finish_recording(&dir).await {
            info!(room = %w.room, slot, "asking ffmpeg to finish: {e:#}");
        }
        let path = inner
            .cfg
            .server
            .log_dir
            .join(format!("webinar-{}.log", w.room));
        match inner.docker.logs(&dir).await {
            Ok(text) if text.is_empty() && path.exists() => {}
            Ok(text) => match write_atomic(&path, text.as_bytes(), 0o600) {
                Ok(()) => info!(room = %w.room, slot, log = %path.display(), "streamer log kept"),
                Err(e) => warn!(room = %w.room, slot, "keeping the streamer's log: {e:#}"),
            },
            Err(e) => warn!(room = %w.room, slot, "keeping the streamer's log: {e:#}"),
        }
        inner.docker.down(&dir).await
    }

    /// Pod's Livestream set to 2 for a webinar Pod did not ask to stop, when `[pod]`
    /// holds the token of the Pod that asked for it. A failure is a problem, not a
    /// reason to keep the slot.
    async fn close_in_pod(
        &self,
        state: &SlotState,
        w: &Webinar,
        reason: StopReason,
    ) -> Option<Problem> {
        let cfg = &self.inner.cfg;
        if reason == StopReason::PodAsked || !same_pod(&cfg.pod.url, &w.pod_host) {
            return None;
        }
        let meeting_id = state.meeting_id.as_ref()?;
        match self.inner.pod.close_webinar_livestreams(meeting_id).await {
            Ok(n) => {
                info!(room = %w.room, meeting = %meeting_id, closed = n, "webinar's Livestream set to stopped in Pod");
                None
            }
            Err(e) => {
                let e = anyhow::anyhow!(e).context(format!(
                    "setting the Livestream of webinar {} (meeting {meeting_id}) to stopped in Pod",
                    w.room
                ));
                warn!("{e:#}");
                Some(Problem {
                    key: ProblemKey::WebinarPod(w.room.clone()),
                    live: Some(state.live),
                    what: format!("{e:#}"),
                    advice: "Pod's page may still say the webinar is in progress: set its \
                             Livestream to \"Live stopped\" in Pod's admin."
                        .into(),
                    gave_up: false,
                })
            }
        }
    }

    /// The `[bbb]` rules webinars are judged by.
    fn rules(&self) -> WebinarRules {
        let bbb = &self.inner.cfg.bbb;
        WebinarRules {
            end_confirmations: bbb.end_confirmations,
            alone_ticks: bbb.alone_ticks,
        }
    }

    /// The one mail and INFO line of a webinar stopped because its room stayed empty.
    async fn mail_room_empty(&self, slot: u32, state: &SlotState, room: &str) {
        let (ticks, since, minutes) = state.alone.at_stop(Utc::now());
        info!(
            slot,
            room,
            ticks,
            since = %crate::logging::local_time(since),
            "nobody in the webinar's meeting but bbb-pod-live's own users: the room stayed empty"
        );
        let mailer = &self.inner.mailer;
        if !mailer.enabled() {
            return;
        }
        let (subject, body) = crate::mail::room_empty(
            &self.inner.cfg.server.hostname,
            &crate::mail::EmptyRoom::Webinar(room.to_owned()),
            slot,
            state.meeting_id.as_ref().map_or("", MeetingId::as_str),
            ticks,
            minutes,
        );
        if let Err(e) = mailer.send(&subject, &body).await {
            warn!(room, "mailing the admins about an empty room: {e:#}");
        }
    }

    async fn mail_started(&self, slot: u32, state: &SlotState, w: &Webinar) {
        let mailer = &self.inner.mailer;
        if !mailer.enabled() {
            return;
        }
        let cfg = &self.inner.cfg;
        let (subject, body) = crate::mail::webinar_started(&crate::mail::WebinarStarted {
            room: w.room.clone(),
            gateway_path: w.gateway_path.clone(),
            meeting_id: state
                .meeting_id
                .as_ref()
                .map(MeetingId::to_string)
                .unwrap_or_default(),
            pod_host: w.pod_host.clone(),
            slot,
            hostname: cfg.server.hostname.clone(),
            server_number: cfg.server.number,
            chat_panel: w.chat_shown.unwrap_or(true),
            recording: state.download,
        });
        if let Err(e) = mailer.send(&subject, &body).await {
            warn!(room = %w.room, "mailing the webinar's start failed: {e:#}");
        }
    }
}

/// Whether `pod_host` (`host[:port]` from Pod's `domain`) is the Pod of `[pod] url`.
fn same_pod(url: &reqwest::Url, pod_host: &str) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let ours = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let default = match url.scheme() {
        "https" => ":443",
        _ => ":80",
    };
    let theirs = pod_host.strip_suffix(default).unwrap_or(pod_host);
    ours.eq_ignore_ascii_case(theirs)
}

fn problem(key: ProblemKey, live: Option<LiveId>, e: &anyhow::Error) -> Problem {
    Problem {
        key,
        live,
        what: format!("{e:#}"),
        advice: "See the day's log for the webinar; the next tick tries again.".into(),
        gave_up: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_that_asked_is_recognised_by_host_and_port() {
        let url = reqwest::Url::parse("https://pod.univ.fr/").expect("url");
        assert!(same_pod(&url, "pod.univ.fr"));
        assert!(same_pod(&url, "POD.univ.fr:443"));
        assert!(!same_pod(&url, "pod.univ.fr:8443"));
        assert!(!same_pod(&url, "other.univ.fr"));
        let test = reqwest::Url::parse("http://pod.test:8410/").expect("url");
        assert!(same_pod(&test, "pod.test:8410"));
        assert!(!same_pod(&test, "pod.test"));
    }
}
