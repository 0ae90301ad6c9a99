//! One cron tick: gather (Pod's lives, slot states, BBB's meetings if a live runs
//! here) → plan (pure, `plan.rs`) → apply (actions of different slots run
//! concurrently; each step of a start or stop is recorded in the slot's state
//! before the next) → hand recordings over → report (log, mail, exit code).
//!
//! One live failing never stops the tick: per-slot work returns its problems, the
//! tick collects them, and [`TickReport::ok`] maps them to the exit code.
//!
//! This room owns [`Ctx`] and the order of the phases; each phase has its own room:
//! `gather` (what Pod, BBB and the slots say, absences confirmed, streamers watched),
//! `apply` (one task per slot), `start` and `broadcaster` (a live's start), `stop`
//! (a live's stop), `close` (waiting lives closed in Pod), `streamer` (the running
//! streamers' health), `handover` (recordings to Pod) and `report` (the end: log,
//! digest mail, the server state's record). Below them all, imported by each and
//! importing none: `outcome` (the report, a slot's outcome, problems and their
//! advice) and `shared` (what the slot tasks share). Deciding is not here: `plan.rs`.

mod apply;
mod broadcaster;
mod close;
#[cfg(test)]
pub(crate) mod fixtures;
mod gather;
mod handover;
mod outcome;
mod report;
mod shared;
mod start;
mod stop;
mod streamer;

pub use handover::hand_over_recordings;
pub use outcome::TickReport;
pub use stop::stop;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

use crate::bbb::BbbClient;
use crate::cluster::Claimer;
use crate::compose;
use crate::config::Config;
use crate::docker::Docker;
use crate::mail::Mailer;
use crate::model::{ServerState, SlotState, WaitReason, Waiting};
use crate::names;
use crate::plan::{self, Plan};
use crate::pod::PodClient;
use crate::recording::PendingStore;
use crate::slots::SlotStore;

use gather::Snapshot;

/// Failed start attempts after which a live is closed in Pod and the admins told why:
/// never retried forever (docs/php-script.md, defect 10).
pub const MAX_START_ATTEMPTS: u32 = 3;

/// The time the tick takes as "now" where it judges time between ticks (how long a room
/// stayed empty, how long a playlist stood still), RFC 3339. For the tests, which cannot
/// wait minutes between ticks; unset, the clock.
pub const ENV_NOW: &str = "BBB_POD_LIVE_NOW";

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
    /// [`ENV_NOW`], when set.
    now: Option<DateTime<Utc>>,
    /// The webinars of `serve` in this server's slots (`webinar/`): the tick brings
    /// up a held streamer `serve` left, stops ended ones, renews their claims.
    pub webinars: crate::webinar::Engine,
    /// Broadcaster slugs in use by this server's slots or claimed by a start of this
    /// tick, with the slot that holds them: two starts never pick the same name.
    claimed_slugs: Mutex<HashMap<String, u32>>,
}

impl Ctx {
    pub fn new(cfg: Arc<Config>) -> Result<Ctx> {
        let pod = PodClient::new(&cfg.pod.url, &cfg.pod.token, cfg.pod.timeout)?
            .with_max_concurrency(cfg.pod.max_concurrency)
            .with_token_source(cfg.sources.pod_token.to_string());
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
        let now = match std::env::var(ENV_NOW) {
            Ok(t) => Some(
                DateTime::parse_from_rfc3339(&t)
                    .with_context(|| format!("{ENV_NOW}={t:?} is not an RFC 3339 time"))?
                    .with_timezone(&Utc),
            ),
            Err(_) => None,
        };
        Ok(Ctx {
            webinars: crate::webinar::Engine::new(Arc::clone(&cfg))?,
            docker: Docker::new(&cfg.docker)
                .with_registry(cfg.server.base_dir.join(".docker-running")),
            cfg,
            pod,
            bbb,
            mailer,
            slots,
            pending,
            claimer,
            now,
            claimed_slugs: Mutex::new(HashMap::new()),
        })
    }

    /// Now, as the tick judges time between ticks ([`ENV_NOW`]).
    pub fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
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

    /// Starts the tick's slug claims afresh from the slots' states: the broadcasters
    /// they hold or are creating.
    fn reclaim_slugs(&self, states: &BTreeMap<u32, SlotState>) {
        let mut claimed = self.claimed_slugs.lock().unwrap_or_else(|p| p.into_inner());
        claimed.clear();
        for (&slot, s) in states {
            if let Some(b) = &s.broadcaster {
                claimed.insert(b.slug.clone(), slot);
            } else if let Some(n) = &s.broadcaster_name {
                claimed.insert(names::django_slugify(n), slot);
            }
        }
    }

    /// The `fullName`s of our own users in `slot`'s meeting: its streamer, then its chat
    /// relay (the image's defaults when the compose file is unreadable).
    fn own_users(&self, slot: u32) -> [String; 2] {
        let path = self.slots.compose_file(slot);
        std::fs::read_to_string(&path)
            .map_err(anyhow::Error::from)
            .and_then(|text| compose::own_users(&text))
            .unwrap_or_else(|e| {
                debug!(
                    slot,
                    "reading BBB_USER_NAME and BBB_CHAT_NAME from {}: {e:#}",
                    path.display()
                );
                [
                    compose::DEFAULT_STREAMER_NAME.to_owned(),
                    compose::DEFAULT_CHAT_NAME.to_owned(),
                ]
            })
    }

    /// The streamer's attendee name in `slot` (the image's default when unreadable).
    fn streamer_name(&self, slot: u32) -> String {
        let [streamer, _] = self.own_users(slot);
        streamer
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
    let mut server_state = gather::server_state(&ctx, &mut report);
    let mut waiting_lives = 0;
    // Without Pod's list, the webinars (which do not depend on Pod) are still tended.
    let mut meetings = plan::MeetingsView::NotAsked;
    let mut company = BTreeMap::new();
    if let Some(snapshot) = gather::gather(&ctx, &mut report).await? {
        meetings = snapshot.meetings.clone();
        company.clone_from(&snapshot.company);
        gather::report_skipped(&snapshot.skipped, &mut server_state, &mut report);
        let decided = decide(&ctx, &snapshot, &server_state, &mut report);
        if dry_run {
            dry_run_claims(&ctx, &decided, &mut report).await;
        }
        server_state.waiting.clone_from(&decided.waiting);
        let waiting = snapshot.waiting();
        waiting_lives = waiting.len();
        if !dry_run {
            let watched = streamer::watched(&snapshot, &decided);
            apply::apply(&ctx, decided, snapshot, &mut server_state, &mut report).await;
            streamer::check_streamers(&ctx, &watched, &mut report).await;
        }
        // Forget failure counts of lives that no longer wait.
        server_state
            .start_failures
            .retain(|id, _| waiting.contains(id));
    }
    tend_webinars(&ctx, &meetings, &company, dry_run, &mut report).await;
    hand_over_recordings(&ctx, dry_run, &mut report).await;
    if dry_run {
        return Ok(report);
    }
    report::finish(&ctx, &mut report, &mut server_state, started).await;
    report::summary(&ctx, &report, waiting_lives, started);
    Ok(report)
}

/// The webinars of `serve` (`webinar::Engine::tend`): their steps in the plan's lines,
/// their problems and starts/stops in the report.
async fn tend_webinars(
    ctx: &Ctx,
    meetings: &plan::MeetingsView,
    company: &BTreeMap<u32, crate::model::Company>,
    dry_run: bool,
    report: &mut TickReport,
) {
    let tended = ctx.webinars.tend(meetings, company, dry_run).await;
    if dry_run {
        report.plan_lines.extend(tended.lines);
        return;
    }
    report.problems.extend(tended.problems);
    report.started.extend(tended.started);
    report.stopped.extend(tended.stopped);
}

/// The plan of this tick, its notes and warnings logged, its lines in the report.
fn decide(ctx: &Ctx, snapshot: &Snapshot, server: &ServerState, report: &mut TickReport) -> Plan {
    let mut decided = plan::plan(snapshot.plan_input(&ctx.cfg, server));
    // Waiting lives not read this tick wait for a slot, as far as we know.
    decided.waiting.extend(snapshot.unread_waiting(server));
    decided.waiting.sort_by_key(|w| w.live);
    for n in &decided.notes {
        info!("{n}");
    }
    for w in &decided.warnings {
        warn!("{w}");
    }
    // A session's first sighting of its audience is bookkeeping, not news.
    report.plan_lines.extend(
        decided
            .actions
            .iter()
            .filter(|a| !matches!(a, plan::Action::SeenCompany { was: 0, .. }))
            .map(ToString::to_string),
    );
    // A live waiting for a slot has no action line: say why it waits (one whose
    // meeting is not running already has its "leave live N waiting" line).
    report.plan_lines.extend(
        decided
            .waiting
            .iter()
            .filter(|w| matches!(w.reason, WaitReason::NoFreeSlot { .. }))
            .map(ToString::to_string),
    );
    decided
}

/// With `[cluster]`, what `--dry-run` can tell of a planned start without claiming:
/// a live another server claimed waits for it, and no live starts while the cluster
/// Redis is unreachable. The start's line says so instead.
async fn dry_run_claims(ctx: &Ctx, decided: &Plan, report: &mut TickReport) {
    let (Some(claimer), Some(cluster)) = (&ctx.claimer, &ctx.cfg.cluster) else {
        return;
    };
    let starts = decided.actions.iter().filter_map(|a| match *a {
        plan::Action::Start { live, .. } => Some((a.to_string(), live)),
        _ => None,
    });
    // Asked together: with the Redis unreachable, each waits out the same bound.
    let holders = futures_util::future::join_all(
        starts.map(|(line, live)| async move { (line, live, claimer.holder(live).await) }),
    )
    .await;
    let shown = crate::cluster::shown_url(cluster.redis_url.expose());
    for (planned, live, holder) in holders {
        let instead = match holder {
            Ok(None | Some(crate::cluster::Claim::Won)) => continue,
            Ok(Some(held)) => Waiting {
                live,
                reason: WaitReason::ClaimedByServer {
                    server: held.server(),
                },
            }
            .to_string(),
            Err(e) => format!(
                "live {live} would not start: the cluster Redis {shown} is unreachable ({})",
                crate::text::error_chain(e.as_ref())
            ),
        };
        if let Some(line) = report.plan_lines.iter_mut().find(|l| **l == planned) {
            *line = instead;
        }
    }
}

/// Boxes a future as `Send`: checking `Send` here, at a concrete lifetime, avoids
/// rustc's "implementation of `Send` is not general enough" on spawned async fns
/// that borrow (rust-lang/rust#102211).
fn send<'a, T>(
    f: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(f)
}
