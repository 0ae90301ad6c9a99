//! The running streamers' health (README, "A live's health"): for each
//! live running here whose session runs (getMeetings answered and lists it with
//! `running=true`), (a) its container runs (`docker compose ps`), (b) its streamer is
//! among the session's attendees (read from the same getMeetings answer, which
//! `gather` asks to watch for it), (c) its HLS playlist answers (`GET <hls_url><key>.m3u8`,
//! all lives at once, short timeout, no token), (d) that playlist moves between ticks.
//! [`crate::health`] counts the ticks and decides;
//! this room asks, repairs (`up -d`, or a restart of the streamer service), mails the
//! admins and saves the health in the slot's state file. Also the streamer's own log,
//! kept before `down` ([`save_log`]).
//!
//! With `health.enabled = false` it only reports a dead container.
//! It never stops a live, never touches Pod, never acts when getMeetings failed.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tracing::{debug, error, info, warn};

use super::ctx::Ctx;
use super::gather::Snapshot;
use super::outcome::{TickReport, problem};
use crate::bbb::Presence;
use crate::compose;
use crate::health::{self, Observation, Verdict};
use crate::hls::{self, Playlist};
use crate::model::{LiveId, MeetingId, Phase, Problem, ProblemKey, Signal, SlotState};
use crate::plan::{Action, MeetingsView, Plan};

/// Longest wait for an HLS playlist.
const HLS_TIMEOUT: Duration = Duration::from_secs(5);

/// A live whose streamer is checked this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Watched {
    pub slot: u32,
    pub live: LiveId,
    /// The watched names among the attendees of its running session; `None` when its
    /// session is listed but not running (created, nobody in it yet): not checked.
    pub present: Option<Vec<String>>,
}

/// Lives running here whose meeting BBB still lists as not ended, left alone by this
/// tick's actions: their streamer is checked after the actions. None when getMeetings
/// was not asked or failed.
pub(super) fn watched(snapshot: &Snapshot, decided: &Plan) -> Vec<Watched> {
    let MeetingsView::Listed(listed) = &snapshot.meetings else {
        return Vec::new();
    };
    // Noting who is in the room changes nothing the streamer's check looks at.
    let acted: HashSet<u32> = decided
        .actions
        .iter()
        .filter(|a| !matches!(a, Action::SeenAlone { .. } | Action::SeenCompany { .. }))
        .filter_map(Action::slot)
        .collect();
    snapshot
        .states
        .iter()
        .filter(|(slot, s)| s.phase == Phase::Running && !acted.contains(slot))
        .filter_map(|(&slot, s)| {
            let meeting = s.meeting_id.as_ref()?;
            if !listed.runs(meeting, s.session.as_ref()) {
                return None;
            }
            Some(Watched {
                slot,
                live: s.live,
                present: present_in(&snapshot.presence, meeting),
            })
        })
        .collect()
}

/// The watched names in the running sessions of `meeting`; `None` if none runs.
fn present_in(presence: &[Presence], meeting: &MeetingId) -> Option<Vec<String>> {
    let mut running = presence
        .iter()
        .filter(|p| p.meeting_id == *meeting && p.running)
        .peekable();
    running.peek()?;
    Some(running.flat_map(|p| p.names.iter().cloned()).collect())
}

/// Checks and repairs the watched streamers, all at once; adds the restarts to the
/// report.
pub(super) async fn check_streamers(ctx: &Ctx, watched: &[Watched], report: &mut TickReport) {
    if !ctx.cfg.health.enabled {
        return report_dead(ctx, watched, report).await;
    }
    let client = match reqwest::Client::builder()
        .user_agent(concat!("bbb-pod-live/", env!("CARGO_PKG_VERSION")))
        .timeout(HLS_TIMEOUT.min(ctx.cfg.pod.timeout))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            let e = anyhow!("building the HTTP client for the HLS check: {e}");
            report.problem(ProblemKey::HlsClient, None, &e, "Report this as a bug.");
            return;
        }
    };
    let checks = watched
        .iter()
        .filter(|w| w.present.is_some())
        .map(|w| check_one(ctx, &client, w));
    for outcome in futures_util::future::join_all(checks).await {
        report.streamer_restarts += outcome.restarts;
        report.problems.extend(outcome.problems);
    }
}

#[derive(Default)]
struct Outcome {
    restarts: u64,
    problems: Vec<Problem>,
}

/// One live: observe, judge, repair, mail, save. Its failures are its own.
async fn check_one(ctx: &Ctx, client: &reqwest::Client, w: &Watched) -> Outcome {
    let mut out = Outcome::default();
    let (slot, live) = (w.slot, w.live);
    // `serve` may be acting on a webinar's slot (a restart with the chat panel flipped):
    // checked at the next tick.
    let _acting = match ctx.slots.try_lock_slot(slot) {
        Ok(Some(l)) => l,
        Ok(None) => return out,
        Err(e) => {
            debug!(live, slot, "locking the slot for the health check: {e:#}");
            return out;
        }
    };
    let mut state = match ctx.slots.load(slot) {
        Ok(Some(s)) if s.live == live && s.phase == Phase::Running => s,
        Ok(_) => return out,
        Err(e) => {
            debug!(
                live,
                slot, "reading the slot state for the health check: {e:#}"
            );
            return out;
        }
    };
    let seen = observe(ctx, client, w, &mut state).await;
    let cfg = ctx.cfg.health;
    let verdict = state.health.judge(seen, &cfg);
    debug!(live, slot, ?seen, ?verdict, health = %state.health.label(&cfg), "streamer checked");
    match verdict {
        Verdict::Fine => {}
        Verdict::Up | Verdict::Restart(_) => {
            let why = match verdict {
                Verdict::Restart(signal) => signal,
                _ => Signal::Container,
            };
            out.restarts = 1;
            match repair(ctx, slot, why).await {
                Ok(()) => {
                    state.health.repaired(true);
                    warn!(
                        live,
                        slot,
                        restarts = state.health.restarts,
                        "streamer repaired: {why}"
                    );
                    if state.health.mail_due(ctx.now()) {
                        let (subject, body) = health::restarted_mail(
                            &ctx.cfg.server.hostname,
                            live,
                            slot,
                            why,
                            state.health.restarts,
                            &cfg,
                        );
                        mail(ctx, &subject, &body).await;
                    }
                }
                Err(e) => {
                    state.health.repaired(false);
                    out.problems.push(problem(
                        ProblemKey::Health(live),
                        Some(live),
                        &e.context(format!("repairing the streamer of live {live} ({why})")),
                        "The next tick tries again, up to health.max_restarts times.",
                    ));
                }
            }
        }
        Verdict::BeyondRepair(why) => {
            error!(
                live,
                slot,
                restarts = state.health.restarts,
                "streamer beyond repair: {why}; no more restarts"
            );
            let (subject, body) = health::beyond_repair_mail(
                &ctx.cfg.server.hostname,
                live,
                slot,
                why,
                state.health.restarts,
                &ctx.slots.dir(slot).display().to_string(),
            );
            mail(ctx, &subject, &body).await;
        }
    }
    if let Err(e) = ctx.slots.save(slot, &state) {
        out.problems.push(problem(
            ProblemKey::SlotState(slot),
            Some(live),
            &e.context("saving the streamer's health"),
            "Check that base_dir is writable.",
        ));
    }
    out
}

/// The signals of one live, asked at once. The playlist's progress is judged against
/// the reading kept in `state` (updated here).
async fn observe(
    ctx: &Ctx,
    client: &reqwest::Client,
    w: &Watched,
    state: &mut SlotState,
) -> Observation {
    let dir = ctx.slots.dir(w.slot);
    let hls_url = match (&state.stream_key, ctx.cfg.health.hls) {
        (Some(key), true) if !key.is_empty() => Some(ctx.cfg.pod.hls_url_of(key)),
        _ => None,
    };
    let (services, playlist) = tokio::join!(ctx.docker.running_services(&dir), async {
        match &hls_url {
            Some(url) => Some(playlist(client, url).await),
            None => None,
        }
    });
    let container = match services {
        Ok(s) if s.iter().any(|s| s == compose::STREAMER_SERVICE) => Some(true),
        Ok(s) if !readable(&s) => {
            debug!(
                live = w.live,
                slot = w.slot,
                "docker compose ps gave an unreadable answer"
            );
            None
        }
        Ok(_) => Some(false),
        Err(e) => {
            debug!(live = w.live, slot = w.slot, "docker compose ps: {e:#}");
            None
        }
    };
    let (hls, moving) = match playlist {
        None => (None, None),
        Some(Playlist::NotHls) => (Some(false), None),
        // Its progress is in its variants, which viewers' players pick: not judged.
        Some(Playlist::Master) => (Some(true), None),
        Some(Playlist::Media(media)) => {
            (Some(true), state.health.playlist_moved(&media, ctx.now()))
        }
    };
    let name = ctx.streamer_name(w.slot);
    Observation {
        container,
        in_meeting: w.present.as_ref().map(|names| names.contains(&name)),
        hls,
        moving,
    }
}

/// Longest playlist body read: a live playlist is a few hundred bytes.
const MAX_PLAYLIST: usize = 256 * 1024;

/// `GET` the playlist (no token: viewers send none) and read it; no answer, an HTTP
/// error or a body too long is not HLS.
async fn playlist(client: &reqwest::Client, url: &str) -> Playlist {
    let answer = async {
        let mut resp = client.get(url).send().await?.error_for_status()?;
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > MAX_PLAYLIST {
                return Ok(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, reqwest::Error>(Some(body))
    };
    match answer.await {
        Ok(Some(body)) => hls::parse(&body),
        Ok(None) => {
            debug!(%url, "HLS playlist longer than {MAX_PLAYLIST} bytes");
            Playlist::NotHls
        }
        Err(e) => {
            debug!(%url, "HLS playlist: {}", crate::text::error_chain(&e));
            Playlist::NotHls
        }
    }
}

/// A list of service names (anything else proves nothing either way).
fn readable(services: &[String]) -> bool {
    services.iter().all(|s| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    })
}

/// (a) `up -d` again; (b)/(c) finish the recording part, then restart the streamer
/// service (redis, the viewers' chat relay, stays up; see the README).
async fn repair(ctx: &Ctx, slot: u32, why: Signal) -> Result<()> {
    let dir = ctx.slots.dir(slot);
    if why == Signal::Container {
        return ctx.docker.up(&dir).await;
    }
    if let Err(e) = ctx.docker.finish_recording(&dir).await {
        debug!(slot, "asking ffmpeg to finish before the restart: {e:#}");
    }
    ctx.docker.restart_streamer(&dir).await
}

async fn mail(ctx: &Ctx, subject: &str, body: &str) {
    if let Err(e) = ctx.mailer.send(subject, body).await {
        warn!("mailing the admins about a streamer: {e:#}");
    }
}

/// Before `down`: the streamer's log (`docker compose logs --timestamps`) kept as
/// `<log_dir>/live-<id>.log`, mode 0600. A failure is only a warning: the stop goes on.
pub(super) async fn save_log(ctx: &Ctx, slot: u32, live: LiveId) {
    let path = ctx.cfg.server.log_dir.join(format!("live-{live}.log"));
    let saved = async {
        let text = ctx.docker.logs(&ctx.slots.dir(slot)).await?;
        if text.is_empty() && path.exists() {
            // A resumed stop whose container is already gone: keep what was saved.
            return Ok(());
        }
        crate::fsutil::write_atomic(&path, text.as_bytes(), 0o600)
            .with_context(|| format!("writing {}", path.display()))
    };
    match saved.await {
        Ok(()) => info!(live, slot, log = %path.display(), "streamer log kept"),
        Err(e) => warn!(live, slot, "keeping the streamer's log: {e:#}"),
    }
}

/// `health.enabled = false`: each watched live whose container is not running is
/// reported (Pod shows it, viewers see nothing); nothing is repaired.
async fn report_dead(ctx: &Ctx, watched: &[Watched], report: &mut TickReport) {
    let checks = watched.iter().map(|w| async move {
        let dir = ctx.slots.dir(w.slot);
        (w.slot, w.live, ctx.docker.running_services(&dir).await)
    });
    for (slot, live, result) in futures_util::future::join_all(checks).await {
        match result {
            Ok(services) if services.iter().any(|s| s == compose::STREAMER_SERVICE) => {}
            Ok(services) if !readable(&services) => {
                debug!(live, slot, "docker compose ps gave an unreadable answer");
            }
            Ok(_) => {
                let e = anyhow!(
                    "the streamer of live {live} (slot {slot}) is not running while its meeting goes on: viewers see nothing"
                );
                report.problem(
                    ProblemKey::Streamer(live),
                    Some(live),
                    &e,
                    &format!(
                        "See `docker compose logs {}` in {}; `bbb-pod-live stop --live {live}`, then the teacher asks Pod again (or set health.enabled = true).",
                        compose::STREAMER_SERVICE,
                        ctx.slots.dir(slot).display()
                    ),
                );
            }
            Err(e) => debug!(live, slot, "docker compose ps: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::SlotState;
    use crate::tick::fixtures::{meeting, running_state, snapshot};

    fn plan_of(actions: Vec<Action>) -> Plan {
        Plan {
            actions,
            ..Plan::default()
        }
    }

    fn slots_and_lives(w: Vec<Watched>) -> Vec<(u32, LiveId)> {
        w.iter().map(|w| (w.slot, w.live)).collect()
    }

    #[test]
    fn running_lives_whose_meeting_goes_on_and_no_action_touches_are_watched() {
        let mut states = BTreeMap::new();
        states.insert(1, running_state(11, "goes-on"));
        states.insert(2, running_state(12, "ended"));
        states.insert(3, running_state(13, "absent"));
        states.insert(4, running_state(14, "created-not-joined"));
        states.insert(5, running_state(15, "acted-on"));
        states.insert(6, SlotState::new(16, chrono::Utc::now()));
        let mut unknown = running_state(17, "x");
        unknown.meeting_id = None;
        states.insert(7, unknown);
        let snap = snapshot(
            Vec::new(),
            states,
            MeetingsView::listed(vec![
                meeting("goes-on", true, 0),
                meeting("ended", false, 1_700_000_000_000),
                meeting("created-not-joined", false, 0),
                meeting("acted-on", true, 0),
            ]),
        );
        let decided = plan_of(vec![Action::SeenRunning { slot: 5, live: 15 }]);
        assert_eq!(
            slots_and_lives(watched(&snap, &decided)),
            [(1, 11), (4, 14)]
        );
    }

    #[test]
    fn nothing_is_watched_without_a_successful_getmeetings() {
        let mut states = BTreeMap::new();
        states.insert(1, running_state(11, "m"));
        for meetings in [MeetingsView::Failed, MeetingsView::NotAsked] {
            let snap = snapshot(Vec::new(), states.clone(), meetings);
            assert!(watched(&snap, &Plan::default()).is_empty());
        }
    }

    fn presence(meeting: &str, running: bool, names: &[&str]) -> Presence {
        Presence {
            meeting_id: meeting.into(),
            internal_meeting_id: format!("{meeting}-i").into(),
            running,
            names: names.iter().map(|s| s.to_string()).collect(),
            others: 0,
        }
    }

    #[test]
    fn only_a_running_session_is_checked() {
        let p = vec![
            presence("a", true, &["Live"]),
            presence("b", false, &[]),
            presence("c", false, &[]),
            presence("c", true, &[]),
        ];
        assert_eq!(present_in(&p, &"a".into()), Some(vec!["Live".to_owned()]));
        assert_eq!(
            present_in(&p, &"b".into()),
            None,
            "created, not running: the streamer waits"
        );
        assert_eq!(present_in(&p, &"c".into()), Some(vec![]));
        assert_eq!(present_in(&p, &"absent".into()), None);
    }

    #[test]
    fn service_lists_are_read_or_distrusted() {
        assert!(readable(&["bbb-streamer".into(), "redis".into()]));
        assert!(!readable(&["time=\"x\" level=warning".into()]));
    }
}
