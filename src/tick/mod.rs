//! One cron tick: gather (Pod's lives, slot states, BBB's meetings if a live runs
//! here) → plan (pure, `plan.rs`) → apply (actions of different slots run
//! concurrently; each step of a start or stop is recorded in the slot's state
//! before the next) → hand recordings over → report (log, mail, exit code).
//!
//! One live failing never stops the tick: per-slot work returns its problems, the
//! tick collects them, and [`TickReport::ok`] maps them to the exit code.
//!
//! This room owns the order of the phases; each phase has its own room:
//! `gather` (what Pod, BBB and the slots say, absences confirmed, streamers watched),
//! `apply` (one task per slot), `start` and `broadcaster` (a live's start), `stop`
//! (a live's stop), `close` (waiting lives closed in Pod), `streamer` (the running
//! streamers' health), `handover` (recordings to Pod) and `report` (the end: log,
//! digest mail, the server state's record). Below them all, imported by each and
//! importing none: `ctx` ([`Ctx`], what a tick acts with), `outcome` (the report, a
//! slot's outcome, problems and their advice) and `shared` (what the slot tasks
//! share). Deciding is not here: `plan.rs`.

mod apply;
mod broadcaster;
mod close;
mod confirm;
mod ctx;
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

pub use ctx::{Ctx, ENV_NOW, MAX_START_ATTEMPTS};
pub use handover::hand_over_recordings;
pub use outcome::TickReport;
pub use stop::stop;

/// Saves the Pod writes of a run outside a tick (`stop`) whose answer could not be
/// read, for the next ticks to confirm (`confirm.rs`). The stop holds the tick lock.
pub fn keep_unconfirmed(ctx: &Ctx) {
    let mut server = match ctx.slots.load_server_state() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("reading the server state to keep unconfirmed Pod writes: {e:#}");
            return;
        }
    };
    confirm::record_new(ctx, &mut server);
    if let Err(e) = ctx.slots.save_server_state(&server) {
        tracing::warn!("saving the unconfirmed Pod writes: {e:#}");
    }
}

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use chrono::TimeDelta;
use tracing::{info, warn};

use crate::docker::{DaemonTrouble, Used};
use crate::model::{DockerSeen, ProblemKey, ServerState, WaitReason, Waiting};
use crate::plan::{self, Plan};

use gather::Snapshot;

/// One `run`: everything but creating the slot directories, the lock and the
/// stagger, which the caller does first (the lock file lives in `base_dir`).
pub async fn tick(ctx: Arc<Ctx>, dry_run: bool) -> Result<TickReport> {
    let started = Instant::now();
    let mut report = TickReport::default();
    if dry_run {
        report.plan_lines.extend(ctx.slots.init(true)?);
    }
    let mut server_state = gather::server_state(&ctx, &mut report);
    if !dry_run {
        // Before Pod's lists are read: a redone write is then seen by this tick.
        confirm::confirm_writes(&ctx, &mut server_state).await;
    }
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
        server_state.waiting_unknown = None;
    } else {
        // Without Pod's list, who waits is unknown, not "nobody".
        server_state.waiting.clear();
        server_state.waiting_unknown = Some(
            report
                .problems
                .iter()
                .rev()
                .find(|p| p.key == ProblemKey::Livestreams)
                .map_or_else(
                    || "Pod's list of lives was not read".to_owned(),
                    |p| p.what.clone(),
                ),
        );
    }
    tend_webinars(&ctx, &meetings, &company, dry_run, &mut report).await;
    hand_over_recordings(&ctx, dry_run, &mut report).await;
    if dry_run {
        return Ok(report);
    }
    watch_docker(&ctx, &mut server_state, &mut report).await;
    confirm::record_new(&ctx, &mut server_state);
    report::finish(&ctx, &mut report, &mut server_state, started).await;
    report::summary(&ctx, &report, waiting_lives, started);
    Ok(report)
}

/// How long docker may go unasked: an idle tick probes it when it was last seen
/// working longer ago than this, so that a dead daemon is found before a teacher's
/// live needs it.
const DOCKER_PROBE_EVERY: TimeDelta = TimeDelta::hours(1);

/// Docker as this tick found it. Its calls say whether it works (a failed action
/// reports its own problem); an idle tick, which made none, probes it when it was
/// never seen, seen broken, or seen working more than an hour ago. A broken docker
/// found so is a problem (exit 1, mailed as problems are).
async fn watch_docker(ctx: &Ctx, state: &mut ServerState, report: &mut TickReport) {
    let now = ctx.now();
    let ok = match ctx.docker.usage() {
        Used::Working => true,
        Used::Broken => false,
        Used::Not => {
            let due = state
                .docker_seen
                .is_none_or(|s| !s.ok || s.at > now || now - s.at >= DOCKER_PROBE_EVERY);
            if !due {
                return;
            }
            let probed = ctx.docker.probe(&ctx.cfg.server.base_dir).await;
            if let Err(e) = &probed {
                let advice = crate::docker::daemon_trouble(e).map_or(
                    "run `bbb-pod-live check`, which says what docker lacks: no live can \
                     start until it works",
                    DaemonTrouble::advice,
                );
                let e = anyhow::anyhow!("docker does not work (asked while no live runs): {e:#}");
                report.problem(ProblemKey::Docker, None, &e, advice);
            }
            probed.is_ok()
        }
    };
    state.docker_seen = Some(DockerSeen { at: now, ok });
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
    // A live waiting for a slot or for BBB has no action line: say why it waits (one
    // whose meeting is not running already has its "leave live N waiting" line).
    report.plan_lines.extend(
        decided
            .waiting
            .iter()
            .filter(|w| !matches!(w.reason, WaitReason::MeetingNotRunning { .. }))
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
