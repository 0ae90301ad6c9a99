//! One cron tick: gather (Pod's lives, slot states, BBB's meetings if a live runs
//! here) → plan (pure, `plan.rs`) → apply (actions of different slots run
//! concurrently; each step of a start or stop is recorded in the slot's state
//! before the next) → hand recordings over → report (log, mail, exit code).
//!
//! One live failing never stops the tick: per-slot work returns its problems, the
//! tick collects them, and [`TickReport::ok`] maps them to the exit code.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::bbb::BbbClient;
use crate::cluster::Claimer;
use crate::compose::{self, ComposeParams};
use crate::config::Config;
use crate::docker::Docker;
use crate::fsutil::write_atomic;
use crate::mail::{self, Mailer};
use crate::model::{BbbMeeting, Broadcaster, Live, LiveId, LiveStatus, PodMeeting, Problem};
use crate::names;
use crate::plan::{self, Action, MeetingsView, PlanInput};
use crate::pod::{CreateBroadcaster, NewBroadcaster, PodClient, StartFields};
use crate::recording::PendingStore;
use crate::slots::{
    Phase, SlotState, SlotStore, StopProgress, StopReason, TickRecord, keep_mkv_files,
};

/// Failed start attempts after which a live is closed in Pod (behaviour.md).
pub const MAX_START_ATTEMPTS: u32 = 3;

/// Everything a tick acts with. Built once per process.
pub struct Ctx {
    pub cfg: Arc<Config>,
    pub pod: PodClient,
    pub bbb: BbbClient,
    pub docker: Docker,
    pub mailer: Mailer,
    pub slots: SlotStore,
    pub pending: PendingStore,
    pub claimer: Option<Claimer>,
    /// Broadcaster slugs in use by this server's slots or claimed by a start of this
    /// tick, with the slot that holds them: two starts never pick the same name.
    claimed_slugs: Mutex<HashMap<String, u32>>,
}

impl Ctx {
    pub fn new(cfg: Arc<Config>) -> Result<Ctx> {
        let pod = PodClient::new(&cfg.pod.url, &cfg.pod.token, cfg.pod.timeout)?;
        let bbb = BbbClient::new(
            &cfg.bbb.url,
            &cfg.bbb.secret,
            cfg.bbb.checksum,
            cfg.pod.timeout,
        )?;
        let mailer = Mailer::new(&cfg.mail)?;
        let slots = SlotStore::new(&cfg.server.base_dir, cfg.server.slots);
        let pending = PendingStore::new(&cfg.server.base_dir);
        let claimer = match &cfg.cluster {
            Some(c) if cfg.server.count > 1 => Some(Claimer::new(c, cfg.server.number)?),
            _ => None,
        };
        Ok(Ctx {
            docker: Docker::new(&cfg.docker)
                .with_registry(cfg.server.base_dir.join(".docker-running")),
            cfg,
            pod,
            bbb,
            mailer,
            slots,
            pending,
            claimer,
            claimed_slugs: Mutex::new(HashMap::new()),
        })
    }

    /// Where recordings nobody asked to hand over are kept (never deleted).
    fn kept_dir(&self, what: &str) -> PathBuf {
        self.cfg
            .server
            .base_dir
            .join("recordings")
            .join("kept")
            .join(what)
    }

    /// Claims a broadcaster slug for `slot`; false if another slot holds it.
    fn claim_slug(&self, slug: &str, slot: u32) -> bool {
        let mut claimed = self.claimed_slugs.lock().unwrap_or_else(|p| p.into_inner());
        match claimed.get(slug) {
            Some(&holder) => holder == slot,
            None => {
                claimed.insert(slug.to_owned(), slot);
                true
            }
        }
    }
}

/// What a tick did, for the exit code, the log and `status`.
#[derive(Debug, Default)]
pub struct TickReport {
    pub problems: Vec<Problem>,
    pub started: Vec<LiveId>,
    pub stopped: Vec<LiveId>,
    pub delivered: usize,
    /// The plan, one line per action (printed by `--dry-run`).
    pub plan_lines: Vec<String>,
}

impl TickReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One ERROR line per problem, with its key (and live).
    pub fn log_problems(&self) {
        for p in &self.problems {
            match p.live {
                Some(live) => error!(key = %p.key, live, "{}", p.what),
                None => error!(key = %p.key, "{}", p.what),
            }
        }
    }

    fn problem(
        &mut self,
        key: impl Into<String>,
        live: Option<LiveId>,
        err: &anyhow::Error,
        advice: &str,
    ) {
        self.problems.push(problem(key, live, err, advice));
    }
}

fn problem(
    key: impl Into<String>,
    live: Option<LiveId>,
    err: &anyhow::Error,
    advice: &str,
) -> Problem {
    Problem {
        key: key.into(),
        live,
        what: format!("{err:#}"),
        advice: advice.to_owned(),
        gave_up: false,
    }
}

const ADVICE_POD: &str = "Check that Pod answers at pod.url and that pod.token belongs to a staff user; the next tick retries.";
const ADVICE_BBB: &str = "Nothing was stopped. Check BBB/Scalelite at bbb.url and bbb.secret/bbb.checksum; the next tick retries.";
const ADVICE_START: &str = "The start was undone and is retried at the next tick; after 3 failures the live is closed in Pod.";
const ADVICE_STOP: &str =
    "The stop resumes at the next tick from the step it reached; the slot stays busy until then.";
const ADVICE_RECORDING: &str = "The recording is kept on local disk and handed over at a later tick; check pod.recordings_dir (mounted, writable, space).";

/// One `run`: everything but creating the slot directories, the lock and the
/// stagger, which the caller does first (the lock file lives in `base_dir`).
pub async fn tick(ctx: Arc<Ctx>, dry_run: bool) -> Result<TickReport> {
    let started = Instant::now();
    let mut report = TickReport::default();
    if dry_run {
        report.plan_lines.extend(ctx.slots.init(true)?);
    }
    let mut server_state = match ctx.slots.load_server_state() {
        Ok(s) => s,
        Err(e) => {
            report.problem(
                "state:server",
                None,
                &e,
                "The failure counts and mail memory start afresh.",
            );
            Default::default()
        }
    };
    let (states, broken_list) = ctx.slots.load_all()?;
    let mut broken = BTreeSet::new();
    for (slot, e) in broken_list {
        broken.insert(slot);
        report.problem(
            format!("state:slot{slot}"),
            None,
            &e,
            "Repair or remove the file; the slot stays busy meanwhile.",
        );
    }
    {
        let mut claimed = ctx.claimed_slugs.lock().unwrap_or_else(|p| p.into_inner());
        claimed.clear();
        for (&slot, s) in &states {
            if let Some(b) = &s.broadcaster {
                claimed.insert(b.slug.clone(), slot);
            } else if let Some(n) = &s.broadcaster_name {
                claimed.insert(names::django_slugify(n), slot);
            }
        }
    }

    let lives = match ctx.pod.livestreams().await {
        Ok(l) => Some(l),
        Err(e) => {
            let e = anyhow!(e)
                .context("reading the livestreams from Pod (nothing started or stopped this tick)");
            report.problem("pod:livestreams", None, &e, ADVICE_POD);
            None
        }
    };

    if let Some(lives) = lives {
        // Waiting lives that a free slot could take: their meetings are read now (8 at
        // a time, beside getMeetings), so that a request whose meeting BBB does not
        // run is never started, and the start path reuses what was read.
        let starting: HashSet<LiveId> = states.values().map(|s| s.live).collect();
        let waiting: Vec<&Live> = lives
            .iter()
            .filter(|l| l.status == LiveStatus::Waiting && !starting.contains(&l.id))
            .collect();
        let free_slot = (1..=ctx.cfg.server.slots).any(|s| !states.contains_key(&s));
        let candidates: Vec<&Live> = if free_slot { waiting } else { Vec::new() };
        let ask_bbb = plan::needs_meetings(&states) || !candidates.is_empty();
        let (meetings, prefetched) = tokio::join!(
            async {
                if ask_bbb {
                    Some(ctx.bbb.meetings().await)
                } else {
                    None
                }
            },
            prefetch_meetings(&ctx, &candidates),
        );
        let mut meetings = match meetings {
            Some(answer) => match answer {
                Ok(m) => {
                    debug!(meetings = m.len(), "getMeetings answered");
                    MeetingsView::listed(m)
                }
                Err(e) => {
                    let e = anyhow!(e)
                        .context("asking BBB for its meetings (no live stopped this tick)");
                    report.problem("bbb:getMeetings", None, &e, ADVICE_BBB);
                    MeetingsView::Failed
                }
            },
            None => MeetingsView::NotAsked,
        };
        confirm_absences(&ctx, &states, &mut meetings, &mut report).await;
        let waiting_meetings: HashMap<LiveId, String> = prefetched
            .iter()
            .map(|(&live, m)| (live, m.meeting_id.clone()))
            .collect();
        let decided = plan::plan(PlanInput {
            number: ctx.cfg.server.number,
            slots: ctx.cfg.server.slots,
            end_confirmations: ctx.cfg.bbb.end_confirmations,
            max_attempts: MAX_START_ATTEMPTS,
            lives: &lives,
            meetings: &meetings,
            states: &states,
            broken: &broken,
            start_failures: &server_state.start_failures,
            waiting_meetings: &waiting_meetings,
            stale_seen: &server_state.stale_seen,
        });
        for n in &decided.notes {
            info!("{n}");
        }
        for w in &decided.warnings {
            warn!("{w}");
        }
        report
            .plan_lines
            .extend(decided.actions.iter().map(ToString::to_string));
        // Lives running here whose meeting BBB still runs, left alone by this tick's
        // actions: their streamer is checked after the actions.
        let acted: HashSet<u32> = decided.actions.iter().filter_map(Action::slot).collect();
        let watched: Vec<(u32, LiveId)> = match &meetings {
            MeetingsView::Listed(listed) => states
                .iter()
                .filter(|(slot, s)| s.phase == Phase::Running && !acted.contains(slot))
                .filter(|(_, s)| {
                    s.meeting_id
                        .as_deref()
                        .and_then(|m| listed.get(m))
                        .is_some_and(|m| !m.has_ended())
                })
                .map(|(&slot, s)| (slot, s.live))
                .collect(),
            _ => Vec::new(),
        };
        if !dry_run {
            apply(
                &ctx,
                decided,
                prefetched,
                &lives,
                states,
                &mut server_state,
                &mut report,
            )
            .await;
            check_streamers(&ctx, &watched, &mut report).await;
        }
        // Forget failure counts of lives that no longer wait.
        let waiting: HashSet<LiveId> = lives
            .iter()
            .filter(|l| l.status == LiveStatus::Waiting)
            .map(|l| l.id)
            .collect();
        server_state
            .start_failures
            .retain(|id, _| waiting.contains(id));
    }

    hand_over_recordings(&ctx, dry_run, &mut report).await;
    if dry_run {
        return Ok(report);
    }

    report_problems(&ctx, &mut report, &mut server_state).await;
    server_state.counters.lives_started += report.started.len() as u64;
    server_state.counters.lives_stopped += report.stopped.len() as u64;
    server_state.counters.recordings_delivered += report.delivered as u64;
    server_state.counters.errors += report.problems.len() as u64;
    server_state.last_tick = Some(TickRecord {
        at: Utc::now(),
        duration_ms: started.elapsed().as_millis() as u64,
        ok: report.ok(),
        problems: report.problems.len(),
    });
    if let Err(e) = ctx.slots.save_server_state(&server_state) {
        error!("saving the server state: {e:#}");
        report.problem(
            "state:server-save",
            None,
            &e,
            "Check that base_dir is writable.",
        );
    }
    Ok(report)
}

/// Boxes a future as `Send`: checking `Send` here, at a concrete lifetime, avoids
/// rustc's "implementation of `Send` is not general enough" on spawned async fns
/// that borrow (rust-lang/rust#102211).
fn send<'a, T>(
    f: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(f)
}

/// Result of the work in one slot.
#[derive(Default)]
struct SlotOutcome {
    problems: Vec<Problem>,
    started: Option<LiveId>,
    stopped: Option<LiveId>,
    /// (live, start succeeded?) for the failure counts.
    attempt: Option<(LiveId, bool)>,
}

impl SlotOutcome {
    fn start_failed(&mut self, live: LiveId, e: &anyhow::Error) {
        self.problems.push(problem(
            format!("start:{live}"),
            Some(live),
            e,
            ADVICE_START,
        ));
    }
}

/// What the concurrent slot actions of one tick share.
struct Shared {
    lives: HashMap<LiveId, Live>,
    in_use: InUse,
    /// Waiting lives the plan found no slot for, oldest first: with `[cluster]`, a slot
    /// whose planned live was claimed by another server takes the next of these.
    standby: std::sync::Mutex<std::collections::VecDeque<LiveId>>,
    /// Meetings of waiting lives read before planning (the start path reuses them).
    prefetched: HashMap<LiveId, PodMeeting>,
}

impl Shared {
    fn next_standby(&self) -> Option<LiveId> {
        self.standby
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }
}

async fn apply(
    ctx: &Arc<Ctx>,
    decided: plan::Plan,
    prefetched: HashMap<LiveId, PodMeeting>,
    lives: &[Live],
    mut states: BTreeMap<u32, SlotState>,
    server_state: &mut crate::slots::ServerState,
    report: &mut TickReport,
) {
    let lives: HashMap<LiveId, Live> = lives.iter().map(|l| (l.id, l.clone())).collect();
    let shared = Arc::new(Shared {
        in_use: InUse::new(lives.values()),
        lives,
        standby: std::sync::Mutex::new(decided.standby.into()),
        prefetched,
    });
    let lives = &shared.lives;
    let mut tasks = JoinSet::new();
    let mut give_ups = Vec::new();
    // Counted again from what this tick saw: the sightings must be consecutive.
    let mut stale_seen = BTreeMap::new();
    for action in decided.actions {
        match action {
            Action::GiveUp { live, attempts } => {
                give_ups.push((live, attempts));
                continue;
            }
            Action::SeenStale { live, seen } => {
                info!(
                    live,
                    seen, "waiting live not started: its meeting is not running in BBB"
                );
                stale_seen.insert(live, seen);
                continue;
            }
            Action::CloseStale { live, seen } => {
                match close_stale(ctx, live, seen).await {
                    Ok(()) => {}
                    Err(e) => report.problem(format!("stale:{live}"), Some(live), &e, ADVICE_POD),
                }
                continue;
            }
            _ => {}
        }
        let Some(slot) = action.slot() else { continue };
        let state = states.remove(&slot);
        tasks.spawn(apply_slot(
            Arc::clone(ctx),
            action,
            state,
            Arc::clone(&shared),
        ));
    }
    while let Some(joined) = tasks.join_next().await {
        let outcome = match joined {
            Ok(o) => o,
            Err(e) => {
                let e = anyhow!("a slot task failed: {e}");
                report.problem(
                    "internal:task",
                    None,
                    &e,
                    "This is a bug; the slot's state file is intact.",
                );
                continue;
            }
        };
        report.problems.extend(outcome.problems);
        report.started.extend(outcome.started);
        report.stopped.extend(outcome.stopped);
        match outcome.attempt {
            Some((live, true)) => {
                server_state.start_failures.remove(&live);
            }
            Some((live, false)) => {
                let attempts = server_state.start_failures.entry(live).or_insert(0);
                *attempts += 1;
                // The last allowed attempt just failed: close the live now, not a
                // minute later (a closing that fails is retried through the plan).
                if *attempts >= MAX_START_ATTEMPTS {
                    give_ups.push((live, *attempts));
                }
            }
            None => {}
        }
    }
    server_state.stale_seen = stale_seen;
    for (live, attempts) in give_ups {
        let meeting_url = lives.get(&live).and_then(|l| l.meeting_url.as_deref());
        match give_up(ctx, live, attempts, meeting_url).await {
            Ok(p) => {
                server_state.start_failures.remove(&live);
                report.problems.extend(p);
            }
            Err(e) => report.problem(format!("giveup:{live}"), Some(live), &e, ADVICE_POD),
        }
    }
}

async fn apply_slot(
    ctx: Arc<Ctx>,
    action: Action,
    state: Option<SlotState>,
    shared: Arc<Shared>,
) -> SlotOutcome {
    let (ctx, lives, running) = (&*ctx, &shared.lives, &shared.in_use);
    let mut out = SlotOutcome::default();
    let mut state = state;
    match action {
        Action::Start { slot, mut live } | Action::ResumeStart { slot, mut live } => {
            // A resumed start renews its claim too: if it ran out while the start was
            // interrupted, another server may be starting the live now.
            while let Some(claimer) = &ctx.claimer {
                match send(claimer.claim(live)).await {
                    Ok(true) => break,
                    Ok(false) => {
                        debug!(live, "claimed by another server");
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
                            return out;
                        }
                        // The slot is free: the next waiting live nobody planned here.
                        match shared.next_standby() {
                            Some(next) => live = next,
                            None => return out,
                        }
                    }
                    Err(e) => {
                        out.problems.push(problem(
                            "cluster:claim",
                            Some(live),
                            &e,
                            "No live is started while the cluster Redis is unreachable; check cluster.redis_url.",
                        ));
                        return out;
                    }
                }
            }
            let Some(l) = lives.get(&live) else {
                return out;
            };
            let state = state.unwrap_or_else(|| SlotState::new(live, Utc::now()));
            let prefetched = shared.prefetched.get(&live);
            match send(start(ctx, slot, l, state, running, prefetched)).await {
                Ok(mail_problem) => {
                    out.started = Some(live);
                    out.attempt = Some((live, true));
                    out.problems.extend(mail_problem);
                }
                Err(e) if e.chain().any(|c| c.is::<ClaimLost>()) => {
                    warn!(live, slot, "{e:#}");
                }
                Err(e) => {
                    error!(live, slot, "start failed: {e:#}");
                    // Pod down or restarting is not this live's fault: such an attempt is
                    // not counted towards closing the live (it is retried, mailed hourly).
                    out.attempt = if pod_unavailable(&e) {
                        warn!(live, "Pod was unavailable: not counted as a failed attempt");
                        None
                    } else {
                        Some((live, false))
                    };
                    out.start_failed(live, &e);
                }
            }
        }
        Action::FinishStart { slot, .. } => {
            if let Some(s) = state {
                finish_start(ctx, slot, s, &mut out);
            }
        }
        Action::AbandonStart { slot, live } => {
            if let Some(mut s) = state {
                // Missing from the list: ask Pod for that one live before undoing, as a
                // stop does. If the interrupted start did tell Pod, it is running here.
                let confirmed;
                let listed = match lives.get(&live) {
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
                            return out;
                        }
                    },
                };
                if let Some(l) = listed
                    && l.runs_in(ctx.cfg.server.number, slot)
                {
                    finish_start(ctx, slot, s, &mut out);
                    return out;
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
        }
        Action::Revert { slot, live } => {
            if let Some(s) = state
                && let Err(e) = send(revert(ctx, slot, s, lives.get(&live))).await
            {
                out.problems.push(problem(
                    format!("revert:{live}"),
                    Some(live),
                    &e,
                    ADVICE_POD,
                ));
            }
        }
        Action::Adopt { slot, live } => {
            if let Some(l) = lives.get(&live)
                && let Err(e) = send(adopt(ctx, slot, l)).await
            {
                out.problems
                    .push(problem(format!("adopt:{live}"), Some(live), &e, ADVICE_POD));
            }
        }
        Action::SeenEnded {
            slot,
            live,
            seen,
            needed,
        } => {
            info!(live, slot, seen, needed, "meeting seen ended");
            note_ended_seen(ctx, slot, state, seen, &mut out);
        }
        Action::SeenRunning { slot, live } => {
            info!(live, slot, "meeting running again");
            note_ended_seen(ctx, slot, state, 0, &mut out);
        }
        Action::Stop { slot, live, reason } => {
            // A row can be missed by a paginated read when rows shift between pages
            // (pod.rs): confirm a vanished live directly before stopping it.
            if reason == StopReason::RemovedFromPod {
                match send(ctx.pod.livestream(live)).await {
                    Ok(None) => {}
                    Ok(Some(l)) if l.runs_in(ctx.cfg.server.number, slot) => {
                        warn!(
                            live,
                            slot,
                            "live missing from Pod's list but still running there; not stopped"
                        );
                        return out;
                    }
                    Ok(Some(_)) => {}
                    Err(e) => {
                        let e = anyhow!(e).context("confirming that the live was deleted from Pod");
                        out.problems.push(problem(
                            format!("stop:{live}"),
                            Some(live),
                            &e,
                            ADVICE_POD,
                        ));
                        return out;
                    }
                }
            }
            if let Some(s) = state {
                send(stop_into(
                    ctx,
                    slot,
                    s,
                    Some(reason),
                    lives.get(&live),
                    &mut out,
                ))
                .await;
            }
        }
        Action::ResumeStop { slot, live } => {
            if let Some(s) = state {
                send(stop_into(ctx, slot, s, None, lives.get(&live), &mut out)).await;
            }
        }
        Action::GiveUp { .. } | Action::SeenStale { .. } | Action::CloseStale { .. } => {}
    }
    out
}

/// Records how many ticks in a row the slot's meeting was seen ended.
fn note_ended_seen(
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

/// Records as running a start that was interrupted after Pod was told.
fn finish_start(ctx: &Ctx, slot: u32, mut state: SlotState, out: &mut SlotOutcome) {
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

async fn stop_into(
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

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

/// Starts `live` in `slot`; on failure undoes what this attempt created. Returns a
/// problem if only the start mail failed.
async fn start(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    mut state: SlotState,
    running: &InUse,
    prefetched: Option<&PodMeeting>,
) -> Result<Option<Problem>> {
    let mut told_pod = false;
    match start_steps(
        ctx,
        slot,
        live,
        &mut state,
        running,
        &mut told_pod,
        prefetched,
    )
    .await
    {
        Ok(()) => {}
        Err(e) => {
            if let Err(undo) = undo_start(ctx, slot, state, told_pod).await {
                return Err(e.context(format!("and undoing the start failed too: {undo:#}")));
            }
            return Err(e);
        }
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
        stream_url: format!("{}{key}", ctx.cfg.bbb.stream_url),
        hls_url: format!("{}{key}.m3u8", ctx.cfg.pod.hls_url),
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
                "mail:start",
                Some(live.id),
                &e,
                "Check the [mail] settings with `bbb-pod-live check`.",
            )))
        }
    }
}

async fn start_steps(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    state: &mut SlotState,
    running: &InUse,
    told_pod: &mut bool,
    prefetched: Option<&PodMeeting>,
) -> Result<()> {
    let cfg = &ctx.cfg;
    state.phase = Phase::Starting;
    state.meeting_url = live.meeting_url.clone();
    state.user_url = live.user_url.clone();
    state.download = live.download_meeting && cfg.recording_enabled();
    // Files left by an earlier live (e.g. a crash before its stop) are not this live's.
    // Only before this live's state file exists: a resumed start may already have
    // run `up`, and the mkv in the slot is then this live's own recording.
    if ctx.slots.load(slot)?.is_none() {
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
    ctx.slots.save(slot, state)?;

    let meeting_url = live
        .meeting_url
        .as_deref()
        .with_context(|| format!("live {} has no meeting in Pod", live.id))?;
    let meeting = match prefetched {
        Some(m) => m.clone(),
        None => ctx
            .pod
            .meeting(meeting_url)
            .await
            .with_context(|| format!("reading the meeting of live {}", live.id))?,
    };
    let meeting_id = meeting.meeting_id.trim();
    if !compose::usable_meeting_id(meeting_id) {
        bail!(
            "the meeting of live {} ({meeting_url}) has no usable BBB meeting id ({:?}); no container started",
            live.id,
            meeting.meeting_id
        );
    }
    state.meeting_id = Some(meeting.meeting_id.clone());
    state.meeting_name = Some(meeting.meeting_name.clone());
    let key = state
        .stream_key
        .get_or_insert_with(|| names::stream_key(&meeting.meeting_name, live.id))
        .clone();
    ctx.slots.save(slot, state)?;

    if state.broadcaster.is_none() {
        let b = ensure_broadcaster(ctx, slot, live, state, &key, running).await?;
        state.broadcaster = Some(b);
        ctx.slots.save(slot, state)?;
    }
    let broadcaster_id = state
        .broadcaster
        .as_ref()
        .map(|b| b.id)
        .context("broadcaster set above")?;

    let params = ComposeParams {
        bbb_url: cfg.bbb.url.as_str().trim_end_matches('/').to_owned(),
        bbb_secret: cfg.bbb.secret.expose().to_owned(),
        meeting_id: meeting.meeting_id.clone(),
        attendee_password: cfg.bbb.attendee_password.expose().to_owned(),
        moderator_password: cfg.bbb.moderator_password.expose().to_owned(),
        title: meeting.meeting_name.clone(),
        resolution: cfg.bbb.resolution.clone(),
        video_bitrate: cfg.bbb.video_bitrate,
        threads: cfg.bbb.threads,
        stream_url: format!("{}{key}", cfg.bbb.stream_url),
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
    write_atomic(&ctx.slots.compose_file(slot), yaml.as_bytes(), 0o600)?;
    ctx.docker.up(&ctx.slots.dir(slot)).await?;

    // The point of no return: the claim must still be ours (it may have run out
    // during a long `up`, and another server claimed the live).
    if let Some(claimer) = &ctx.claimer
        && !claimer
            .claim(live.id)
            .await
            .context("renewing the cluster claim before telling Pod")?
    {
        // Same live, same broadcaster name: the other server reuses it.
        state.broadcaster = None;
        ctx.slots.save(slot, state)?;
        return Err(ClaimLost(live.id).into());
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

/// Creates the live's broadcaster, or reuses one left by an earlier attempt.
/// What other lives use, as this tick read Pod: a broadcaster of theirs is never
/// taken over as a leftover.
pub(crate) struct InUse {
    /// Broadcasters of the lives Pod shows running.
    broadcasters: HashSet<u64>,
    /// Lives waiting or running (one may be starting on another server right now).
    lives: HashSet<LiveId>,
}

impl InUse {
    fn new<'a>(lives: impl Iterator<Item = &'a Live>) -> InUse {
        let mut in_use = InUse {
            broadcasters: HashSet::new(),
            lives: HashSet::new(),
        };
        for l in lives {
            if matches!(l.status, LiveStatus::Waiting | LiveStatus::Running) {
                in_use.lives.insert(l.id);
            }
            if l.status == LiveStatus::Running
                && let Some(b) = l.broadcaster_id
            {
                in_use.broadcasters.insert(b);
            }
        }
        in_use
    }

    /// Whether `b` belongs to a live other than `me`: a live Pod shows running with it,
    /// or the waiting or running live its stream URL was made for (the stream key ends
    /// with the live id) — another server may be starting that live now, before Pod
    /// knows its broadcaster.
    fn by_other(&self, b: &Broadcaster, me: LiveId, hls_url: &str) -> bool {
        let streamed_for = b
            .stream_url
            .as_deref()
            .and_then(|u| u.strip_prefix(hls_url))
            .and_then(|k| k.strip_suffix(".m3u8"))
            .and_then(names::live_of_stream_key);
        self.broadcasters.contains(&b.id)
            || streamed_for.is_some_and(|other| other != me && self.lives.contains(&other))
    }
}

async fn ensure_broadcaster(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    state: &mut SlotState,
    key: &str,
    running: &InUse,
) -> Result<Broadcaster> {
    let hls = format!("{}{key}.m3u8", ctx.cfg.pod.hls_url);
    let meeting_name = state.meeting_name.clone().unwrap_or_default();
    let mut distinct = false;
    for _ in 0..3 {
        let name = match (&state.broadcaster_name, distinct) {
            (Some(n), false) => n.clone(),
            _ => names::broadcaster_name(&meeting_name, live.id, distinct),
        };
        let slug = names::django_slugify(&name);
        if !ctx.claim_slug(&slug, slot) {
            if distinct {
                bail!("broadcaster name {name:?} is already used by another slot");
            }
            distinct = true;
            continue;
        }
        state.broadcaster_name = Some(name.clone());
        ctx.slots.save(slot, state)?;
        debug!(live = live.id, name = %name, slug = %slug, "creating broadcaster");
        let created = ctx
            .pod
            .create_broadcaster(&NewBroadcaster {
                name: name.clone(),
                stream_url: hls.clone(),
                building_id: ctx.cfg.pod.building_id,
                is_restricted: live.is_restricted,
            })
            .await;
        match created {
            Ok(CreateBroadcaster::Created(b)) => {
                info!(live = live.id, broadcaster = b.id, slug = %b.slug, "broadcaster created");
                return Ok(b);
            }
            Ok(taken) => {
                let existing = match taken {
                    CreateBroadcaster::NameTaken => {
                        find_broadcaster_by_name(ctx, &name, &slug).await?
                    }
                    _ => find_broadcaster_by_url(ctx, &hls).await?,
                };
                match existing {
                    Some(b)
                        if b.stream_url.as_deref() == Some(hls.as_str())
                            || !running.by_other(&b, live.id, &ctx.cfg.pod.hls_url) =>
                    {
                        info!(live = live.id, broadcaster = b.id, slug = %b.slug, "reusing a broadcaster left by an earlier attempt");
                        if b.stream_url.as_deref() != Some(hls.as_str()) {
                            return Ok(ctx
                                .pod
                                .repoint_broadcaster(&b.slug, &hls, live.is_restricted)
                                .await?);
                        }
                        return Ok(b);
                    }
                    Some(b) if !distinct => {
                        debug!(
                            live = live.id,
                            other = b.id,
                            "broadcaster name used by a running live; choosing another"
                        );
                        distinct = true;
                    }
                    _ => bail!("Pod says broadcaster {name:?} exists, but it cannot be reused"),
                }
            }
            Err(e) if e.status() == Some(500) && !distinct => {
                // Pod answers 500 when the slug or stream URL collides (pod-api.md §7).
                // The stream URL carries this live's id: a broadcaster already on it is
                // a leftover of this live's own earlier attempt.
                if let Some(b) = find_broadcaster_by_url(ctx, &hls).await?
                    && !running.by_other(&b, live.id, &ctx.cfg.pod.hls_url)
                {
                    info!(live = live.id, broadcaster = b.id, slug = %b.slug, "reusing the broadcaster already on this live's stream URL");
                    return Ok(b);
                }
                warn!(
                    live = live.id,
                    "Pod refused broadcaster {name:?} with a server error; trying a distinct name"
                );
                distinct = true;
            }
            Err(e) => return Err(anyhow!(e).context(format!("creating broadcaster {name:?}"))),
        }
    }
    bail!("could not create a broadcaster for live {}", live.id)
}

async fn find_broadcaster_by_name(
    ctx: &Ctx,
    name: &str,
    slug: &str,
) -> Result<Option<Broadcaster>> {
    if let Some(b) = ctx.pod.broadcaster(slug).await?
        && b.name == name
    {
        return Ok(Some(b));
    }
    Ok(ctx
        .pod
        .broadcasters()
        .await?
        .into_iter()
        .find(|b| b.name == name))
}

async fn find_broadcaster_by_url(ctx: &Ctx, url: &str) -> Result<Option<Broadcaster>> {
    Ok(ctx
        .pod
        .broadcasters()
        .await?
        .into_iter()
        .find(|b| b.stream_url.as_deref() == Some(url)))
}

/// Undoes an attempt: container down, broadcaster deleted, live back to waiting if
/// Pod may have been told it runs, slot freed. If Pod cannot be told, the slot
/// keeps a `Reverting` state and the next tick finishes the undo.
async fn undo_start(ctx: &Ctx, slot: u32, mut state: SlotState, told_pod: bool) -> Result<()> {
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
        ctx.pod
            .delete_broadcaster(&b.slug)
            .await
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

async fn revert(ctx: &Ctx, slot: u32, state: SlotState, live: Option<&Live>) -> Result<()> {
    if let Some(l) = live
        && l.runs_in(ctx.cfg.server.number, slot)
    {
        ctx.pod.mark_live_waiting(state.live).await?;
    }
    ctx.slots.clear(slot)
}

/// Takes over a live Pod shows running here without a state file.
async fn adopt(ctx: &Ctx, slot: u32, live: &Live) -> Result<()> {
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
        state.meeting_name = Some(m.meeting_name);
    }
    ctx.slots.save(slot, &state)?;
    warn!(
        live = live.id,
        slot, "Pod shows this live running here without a state file; taken over"
    );
    Ok(())
}

/// A start given up because another server holds the live's cluster claim: not a
/// failure of the live (it is being started there), so not counted nor reported.
#[derive(Debug, thiserror::Error)]
#[error("another server claimed live {0} while this one started it; this start is undone")]
struct ClaimLost(LiveId);

/// Whether `e` comes from Pod being unreachable, too slow, or answered by a gateway
/// in front of it (502/503/504): a passing outage, not something wrong with a live.
fn pod_unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<crate::pod::PodError>(),
            Some(
                crate::pod::PodError::Network { .. }
                    | crate::pod::PodError::Timeout { .. }
                    | crate::pod::PodError::Status {
                        status: 502..=504,
                        ..
                    }
            )
        )
    })
}

/// A meeting absent from getMeetings is asked for by itself (`isMeetingRunning`) before
/// the sighting that would stop its live: Scalelite silently leaves out the meetings
/// of a node it finds offline. Running → counted as listed and running; unknown to BBB
/// → stays absent (ended); any error → counted as running this tick (nothing is
/// stopped on a doubt) and reported.
async fn confirm_absences(
    ctx: &Ctx,
    states: &BTreeMap<u32, SlotState>,
    meetings: &mut MeetingsView,
    report: &mut TickReport,
) {
    let MeetingsView::Listed(listed) = meetings else {
        return;
    };
    let needed = ctx.cfg.bbb.end_confirmations.max(1);
    let doubtful: Vec<(LiveId, String)> = states
        .values()
        .filter(|s| s.phase == Phase::Running && s.ended_seen + 1 >= needed)
        .filter_map(|s| Some((s.live, s.meeting_id.clone()?)))
        .filter(|(_, m)| !listed.contains_key(m))
        .collect();
    let asks = doubtful.iter().map(|(live, meeting_id)| async move {
        (
            *live,
            meeting_id,
            ctx.bbb.is_meeting_running(meeting_id).await,
        )
    });
    for (live, meeting_id, answer) in futures_util::future::join_all(asks).await {
        let running = match answer {
            Ok(false) => continue,
            Ok(true) => {
                warn!(
                    live,
                    meeting_id, "meeting missing from getMeetings but running: not stopped"
                );
                true
            }
            Err(e) => {
                let e = anyhow!(e).context(format!(
                    "meeting {meeting_id:?} of live {live} is missing from getMeetings and isMeetingRunning failed (not stopped this tick)"
                ));
                report.problem(
                    format!("bbb:isMeetingRunning:{live}"),
                    Some(live),
                    &e,
                    ADVICE_BBB,
                );
                true
            }
        };
        listed.insert(
            meeting_id.clone(),
            BbbMeeting {
                meeting_id: meeting_id.clone(),
                internal_meeting_id: String::new(),
                running,
                end_time: 0,
            },
        );
    }
}

/// Reports each watched live whose streamer container is not running (it died, and
/// Docker gave up restarting it): Pod shows the live, viewers see nothing. Nothing is
/// restarted automatically (a streamer failing at start-up would loop); the admin
/// decides. A failing `docker compose ps` is only logged.
async fn check_streamers(ctx: &Ctx, watched: &[(u32, LiveId)], report: &mut TickReport) {
    let checks = watched.iter().map(|&(slot, live)| async move {
        let dir = ctx.slots.dir(slot);
        (slot, live, ctx.docker.running_services(&dir).await)
    });
    for (slot, live, result) in futures_util::future::join_all(checks).await {
        match result {
            Ok(services) if services.iter().any(|s| s == compose::STREAMER_SERVICE) => {}
            // Not a list of service names: docker's output cannot be trusted, so it
            // proves nothing either way.
            Ok(services)
                if services.iter().any(|s| {
                    !s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                }) =>
            {
                debug!(live, slot, "docker compose ps gave an unreadable answer");
            }
            Ok(_) => {
                let e = anyhow!(
                    "the streamer of live {live} (slot {slot}) is not running while its meeting goes on: viewers see nothing"
                );
                report.problem(
                    format!("streamer:{live}"),
                    Some(live),
                    &e,
                    &format!(
                        "See `docker compose logs {}` in {}; `bbb-pod-live stop --live {live}`, then the teacher asks Pod again.",
                        compose::STREAMER_SERVICE,
                        ctx.slots.dir(slot).display()
                    ),
                );
            }
            Err(e) => debug!(live, slot, "docker compose ps: {e:#}"),
        }
    }
}

/// Reads the meetings of `lives` from Pod, 8 at a time. A meeting that cannot be
/// read, or whose BBB id is unusable, is left out: such a live is judged by its start.
async fn prefetch_meetings(ctx: &Ctx, lives: &[&Live]) -> HashMap<LiveId, PodMeeting> {
    use futures_util::StreamExt;
    futures_util::stream::iter(
        lives
            .iter()
            .filter_map(|l| Some((l.id, l.meeting_url.clone()?))),
    )
    .map(|(id, url)| async move { (id, ctx.pod.meeting(&url).await) })
    .buffer_unordered(8)
    .filter_map(|(id, read)| async move {
        match read {
            Ok(m) if compose::usable_meeting_id(m.meeting_id.trim()) => Some((id, m)),
            Ok(_) => None,
            Err(e) => {
                debug!(live = id, "reading the meeting of a waiting live: {e}");
                None
            }
        }
    })
    .collect()
    .await
}

/// Closes a waiting live whose meeting has not been running in BBB for `seen` ticks,
/// if Pod still shows it waiting.
async fn close_stale(ctx: &Ctx, live: LiveId, seen: u32) -> Result<()> {
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
enum Closing {
    Closed,
    /// Pod shows it no longer waiting (started, maybe by another server): left alone.
    NotWaiting(Live),
    /// Deleted from Pod: nothing to close.
    Gone,
}

/// Closes `live` in Pod (status 2, end date now) only if Pod still shows it waiting:
/// without [cluster], another server may have started it meanwhile, and closing it
/// would cut a running live.
async fn close_if_waiting(ctx: &Ctx, live: LiveId) -> Result<Closing> {
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

/// Closes a live whose start failed too often.
async fn give_up(
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
        key: format!("start:{live}"),
        live: Some(live),
        what: format!("{label} could not be started ({attempts} attempts); it was closed in Pod (status 2)"),
        advice: "See the earlier errors of this live in the log. The teacher can ask for a new live in Pod once the cause is fixed.".into(),
        gave_up: true,
    }))
}

// ---------------------------------------------------------------------------
// Stop
// ---------------------------------------------------------------------------

/// Stops the live of `slot` (or resumes its stop when `reason` is None). Each step
/// is recorded before the next; the slot is freed only at the end.
pub async fn stop(
    ctx: &Ctx,
    slot: u32,
    mut state: SlotState,
    reason: Option<StopReason>,
    live: Option<&Live>,
) -> Result<Vec<Problem>> {
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
    let dir = ctx.slots.dir(slot);

    if !progress.container_down {
        if ctx.slots.compose_file(slot).exists() {
            if let Err(e) = ctx.docker.finish_recording(&dir).await {
                // The container may already be gone; `down` below is what matters.
                // Usual when the container ends with ffmpeg (its exec shell is killed):
                // not worth a cron mail.
                info!(live = id, slot, "asking ffmpeg to finish: {e:#}");
            }
            ctx.docker.down(&dir).await?;
        }
        progress.container_down = true;
        state.stop = Some(progress.clone());
        ctx.slots.save(slot, &state)?;
    }

    if !progress.recordings_parked {
        let videodata = ctx.slots.videodata(slot);
        if state.download {
            let parked = ctx.pending.park(
                id,
                state.meeting_url.as_deref().unwrap_or(""),
                state.user_url.as_deref().unwrap_or(""),
                &videodata,
            )?;
            if parked.is_none() {
                let e = anyhow!(
                    "live {id} asked for a recording but the streamer wrote no mkv file in {}",
                    videodata.display()
                );
                warn!("{e:#}");
                problems.push(problem(
                    format!("recording:{id}"),
                    Some(id),
                    &e,
                    "Look at the container's output (server.debug = true); check that videodata is writable by uid 1001.",
                ));
            }
        } else {
            keep_mkv_files(&videodata, &ctx.kept_dir(&format!("live-{id}")))?;
        }
        progress.recordings_parked = true;
        state.stop = Some(progress.clone());
        ctx.slots.save(slot, &state)?;
    }

    if !progress.pod_closed {
        let ours = live.is_some_and(|l| l.runs_in(ctx.cfg.server.number, slot));
        match (progress.reason, live) {
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
        progress.pod_closed = true;
        state.stop = Some(progress.clone());
        ctx.slots.save(slot, &state)?;
    }

    if !progress.broadcaster_deleted {
        let in_use_elsewhere = progress.reason == StopReason::NoLongerOurs
            && live.and_then(|l| l.broadcaster_id).is_some_and(|b| {
                state
                    .broadcaster
                    .as_ref()
                    .map(|o| o.id)
                    .or(state.broadcaster_id)
                    == Some(b)
            });
        if !in_use_elsewhere {
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
        }
        progress.broadcaster_deleted = true;
        state.stop = Some(progress.clone());
        ctx.slots.save(slot, &state)?;
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

// ---------------------------------------------------------------------------
// Recordings
// ---------------------------------------------------------------------------

pub async fn hand_over_recordings(ctx: &Ctx, dry_run: bool, report: &mut TickReport) {
    let scan = match ctx.pending.list() {
        Ok(l) => l,
        Err(e) => {
            report.problem("recording:list", None, &e, ADVICE_RECORDING);
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
            format!("recording:{}", u.live.unwrap_or(0)),
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
        if dry_run {
            report.plan_lines.push(format!(
                "hand over the recording of live {id} to {}",
                dir.display()
            ));
            continue;
        }
        let result: Result<()> = async {
            let mut pending = pending;
            // Pod's `bbb` cron turns the file into a video of `encoded_by`; without an
            // owner it fails on that file at every run (pod-api.md §1.4): keep it here.
            if pending.handover.user_url.trim().is_empty() {
                bail!(
                    "live {id} has no owner (user) in Pod: its recording is kept in {} for the admin to hand over by hand",
                    ctx.pending.live_dir(id).display()
                );
            }
            if pending.handover.internal_meeting_id.is_none() {
                let meeting = ctx
                    .pod
                    .publish_recording(&pending.handover.meeting_url, &pending.handover.user_url)
                    .await
                    .context("marking the meeting as published in Pod")?;
                ctx.pending
                    .set_internal_id(&pending, &meeting.internal_meeting_id)?;
                pending = ctx
                    .pending
                    .find(id)?
                    .context("the pending recording vanished")?;
            }
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
            Ok(())
        }
        .await;
        match result {
            Ok(()) => report.delivered += 1,
            Err(e) => {
                error!(live = id, "recording hand-over failed: {e:#}");
                let advice = crate::recording::advice(&e);
                report.problem(format!("recording:{id}"), Some(id), &e, &advice);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

async fn report_problems(
    ctx: &Ctx,
    report: &mut TickReport,
    server_state: &mut crate::slots::ServerState,
) {
    report.log_problems();
    let before = server_state.mail.clone();
    let to_mail = mail::select(&mut server_state.mail, &report.problems, Utc::now());
    if to_mail.is_empty() || !ctx.mailer.enabled() {
        return;
    }
    let (subject, body) =
        mail::error_digest(&ctx.cfg.server.hostname, ctx.cfg.server.number, &to_mail);
    if let Err(e) = ctx.mailer.send(&subject, &body).await {
        error!("mailing the errors to the admins failed: {e:#}");
        // Not mailed: the next tick tries again instead of waiting an hour.
        server_state.mail = before;
        report.problem(
            "mail:digest",
            None,
            &e,
            "Check the [mail] settings with `bbb-pod-live check`.",
        );
    }
}
