//! One cron tick: gather (Pod's lives, slot states, BBB's meetings if a live runs
//! here) → plan (pure, `plan.rs`) → apply (actions of different slots run
//! concurrently; each step of a start or stop is recorded in the slot's state
//! before the next) → hand recordings over → report (log, mail, exit code).
//!
//! One live failing never stops the tick: per-slot work returns its problems, the
//! tick collects them, and [`TickReport::ok`] maps them to the exit code.
//!
//! This room owns [`Ctx`] and the order of the phases; each phase has its own room:
//! `gather` (what Pod, BBB and the slots say), `apply` (one task per slot),
//! `start` and `broadcaster` (a live's start), `stop` (a live's stop),
//! `streamer` (the running streamers), `handover` (recordings to Pod) and
//! `report` (problems, exit code, digest mail). Deciding is not here: `plan.rs`.

mod apply;
mod broadcaster;
mod gather;
mod handover;
mod report;
mod start;
mod stop;
mod streamer;

pub use handover::hand_over_recordings;
pub use report::TickReport;
pub use stop::stop;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Result, anyhow};
use chrono::Utc;
use tracing::{debug, error, info, warn};

use crate::bbb::BbbClient;
use crate::cluster::Claimer;
use crate::config::Config;
use crate::docker::Docker;
use crate::mail::Mailer;
use crate::model::{Live, LiveId, LiveStatus};
use crate::names;
use crate::plan::{self, Action, MeetingsView, PlanInput};
use crate::pod::PodClient;
use crate::recording::PendingStore;
use crate::slots::{Phase, SlotStore, TickRecord};

use apply::apply;
use gather::prefetch_meetings;
use report::{ADVICE_BBB, ADVICE_POD, report_problems};
use stop::confirm_absences;
use streamer::check_streamers;

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
