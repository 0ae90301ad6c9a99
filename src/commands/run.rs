//! `run`: one cron tick under the lock (or its dry run, printing the plan), then the
//! failed tick's record in the server state and the metrics file. The tick itself is
//! [`crate::tick`]'s.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use tokio::time::Instant;
use tracing::{info, warn};

use super::outcome::{Fatal, Outcome, print_lines};
use crate::config::Config;
use crate::lock::{Holder, TryLock};
use crate::metrics::{LastTick, Snapshot};
use crate::model::TickRecord;
use crate::slots::SlotStore;
use crate::tick::{self, Ctx};

/// Runs one tick (`dry_run`: plans and prints, changes nothing); a signal ends it.
pub async fn run(cfg: Arc<Config>, dry_run: bool) -> Result<Outcome, Fatal> {
    let mut stop = crate::signals::Stop::listen()?;
    match stop.guard(tick_under_lock(cfg, dry_run)).await {
        Ok(outcome) => outcome,
        // The lock and every slot task were dropped with the tick.
        Err(signal) => Ok(Outcome::Interrupted(signal)),
    }
}

async fn tick_under_lock(cfg: Arc<Config>, dry_run: bool) -> Result<Outcome, Fatal> {
    let ctx = Arc::new(Ctx::new(Arc::clone(&cfg)).map_err(Fatal::Config)?);
    if dry_run {
        let report = tick::tick(Arc::clone(&ctx), true).await?;
        print_lines(&report.plan_lines)?;
        // What could not be read limits the plan: say so, never "nothing to do".
        report.log_problems();
        if report.plan_lines.is_empty() && report.ok() {
            print_lines(&["nothing to do".to_owned()])?;
        }
        return Ok(Outcome::from_ok(report.ok()));
    }
    ctx.slots.init(false)?;
    // Without a shared Redis, servers spread their ticks over the minute as
    // bbb-pod-live.php did; two servers can still race for a live started between
    // their reads (see README, "Several servers"). Before the lock, as the PHP slept:
    // a long previous tick then delays this one instead of making it skip.
    if cfg.server.count > 1 && cfg.cluster.is_none() {
        let delay = u64::from(cfg.server.number.0 - 1) * 60 / u64::from(cfg.server.count);
        tracing::debug!(
            "staggered tick: waiting {delay} s (server {} of {}, no [cluster])",
            cfg.server.number,
            cfg.server.count
        );
        tokio::time::sleep(Duration::from_secs(delay)).await;
    }
    let _lock = match crate::lock::try_lock(&cfg.server.base_dir)? {
        TryLock::Acquired(lock) => lock,
        TryLock::Busy(holder) => return Ok(lock_busy(&cfg, holder)),
    };
    let clock = Instant::now();
    let result = tick::tick(Arc::clone(&ctx), false).await;
    let success = matches!(&result, Ok(report) if report.ok());
    if let Err(e) = &result {
        record_failed_tick(&ctx.slots, clock.elapsed(), e);
    }
    // Still under the lock: two runs never write the file at once.
    write_metrics(&ctx, clock.elapsed(), success);
    Ok(Outcome::from_ok(result?.ok()))
}

/// Another run holds the lock. A slow tick is normal (this run does nothing, exit 0);
/// one holding it far longer than any tick can take is stuck (a hard-mounted NFS share
/// gone, a process in the kernel's `D` state): every later run says so as an error.
fn lock_busy(cfg: &Config, holder: Option<Holder>) -> Outcome {
    let stuck_after = stuck_after(cfg);
    match holder {
        Some(h) if h.held_for(chrono::Utc::now()) > stuck_after => {
            tracing::error!(
                pid = h.pid,
                since = %h.since.to_rfc3339(),
                "another bbb-pod-live run has held the lock for {} minutes (more than {}): it \
                 looks stuck and no live is started or stopped until it ends. See what it waits \
                 for (`cat /proc/{}/stack`, a hung NFS mount of pod.recordings_dir?), then kill \
                 it: its work resumes at the next tick",
                h.held_for(chrono::Utc::now()).as_secs() / 60,
                stuck_after.as_secs() / 60,
                h.pid,
            );
            Outcome::Failed
        }
        _ => {
            info!("another bbb-pod-live run holds the lock; this one does nothing");
            Outcome::Done
        }
    }
}

/// How long a run may hold the lock before later runs report it stuck: 30 minutes,
/// or 3 docker timeouts if more (a first `up` may pull images for that long).
fn stuck_after(cfg: &Config) -> Duration {
    Duration::from_secs(30 * 60).max(cfg.docker.timeout * 3)
}

/// A tick that ended in an error did not update `state.json`: count the error and
/// record the tick there, so that `status` and the metrics show it.
pub(super) fn record_failed_tick(store: &SlotStore, duration: Duration, err: &anyhow::Error) {
    let saved = store.load_server_state().and_then(|mut state| {
        state.counters.errors += 1;
        state.last_tick = Some(TickRecord {
            at: Utc::now(),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            ok: false,
            problems: 1,
        });
        store.save_server_state(&state)
    });
    if let Err(e) = saved {
        warn!("recording the failed tick ({err:#}) in the server state: {e:#}");
    }
}

/// Rewrites `[metrics] textfile` if configured; a failure is a warning only.
fn write_metrics(ctx: &Ctx, duration: Duration, success: bool) {
    let Some(metrics) = &ctx.cfg.metrics else {
        return;
    };
    let last_tick = LastTick {
        at: Utc::now(),
        duration_secs: duration.as_secs_f64(),
        success,
    };
    let snapshot = Snapshot::gather(&ctx.slots, &ctx.pending, ctx.cfg.server.slots, last_tick);
    if let Err(e) = crate::metrics::write(&metrics.textfile, &snapshot) {
        warn!("writing the metrics file (metrics.textfile): {e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::anyhow;

    #[test]
    fn a_failed_tick_is_counted_and_recorded_in_the_server_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SlotStore::new(dir.path(), 1);
        let mut state = crate::model::ServerState::default();
        state.counters.errors = 4;
        state.counters.lives_started = 2;
        store.save_server_state(&state).expect("save");
        record_failed_tick(&store, Duration::from_millis(1500), &anyhow!("boom"));
        let state = store.load_server_state().expect("load");
        assert_eq!(state.counters.errors, 5);
        assert_eq!(state.counters.lives_started, 2);
        let tick = state.last_tick.expect("recorded");
        assert!(!tick.ok);
        assert_eq!(tick.duration_ms, 1500);
        assert_eq!(tick.problems, 1);
    }
}
