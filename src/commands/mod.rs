//! The subcommands: load the configuration, start logging, take the lock where
//! the command acts, and call the tick or the stop path. Maps results to an
//! [`Outcome`]; `main` maps that to the exit code.

pub mod check;
pub mod recordings;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use chrono::Utc;
use tokio::time::Instant;
use tracing::{info, warn};
use tracing_appender::non_blocking::WorkerGuard;

use crate::cli::{Cli, Command, StopArgs};
use crate::config::{Config, ProcessEnv};
use crate::lock::{Holder, TryLock};
use crate::logging::{self, LogFile};
use crate::metrics::{LastTick, Snapshot};
use crate::slots::{SlotStore, StopReason, TickRecord};
use crate::tick::{self, Ctx};

/// How a command ended, short of a fatal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it had to do was done (or another run held the lock).
    Done,
    /// It ran, but at least one action failed (exit code 1).
    Failed,
    /// Ended by this signal (SIGTERM, SIGINT) before it was done: exit code 128 + it.
    Interrupted(i32),
}

impl Outcome {
    /// `Done` when everything succeeded, else `Failed`.
    pub fn from_ok(ok: bool) -> Outcome {
        if ok { Outcome::Done } else { Outcome::Failed }
    }
}

/// Errors that end a command before it acted.
#[derive(Debug)]
pub enum Fatal {
    /// Configuration or usage error: nothing was touched (exit code 2).
    Config(anyhow::Error),
    /// Anything else (exit code 1).
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Fatal {
    fn from(e: anyhow::Error) -> Self {
        Fatal::Other(e)
    }
}

/// Runs the command line. The returned guard (if any) must live until the end of main.
pub fn run(cli: &Cli) -> (Result<Outcome, Fatal>, Option<WorkerGuard>) {
    let changes = matches!(cli.command, Command::Run | Command::Stop(_) | Command::Init)
        || recordings::writes(&cli.command);
    if cli.dry_run && !changes {
        let _ = logging::init(logging::stderr_level(cli.verbose, cli.quiet), None);
        return (
            Err(Fatal::Config(anyhow!(
                "--dry-run only applies to run, stop, init and recordings deliver/discard; `{}` changes nothing anyway",
                cli.command.name()
            ))),
            None,
        );
    }
    if !cli.command.needs_config() {
        // stderr only, so that a failure is reported (there is no log file).
        let _ = logging::init(logging::stderr_level(cli.verbose, cli.quiet), None);
        return (print_generated(&cli.command).map_err(Fatal::Other), None);
    }
    let cfg = match Config::load(&cli.config, &ProcessEnv) {
        Ok(c) => Arc::new(c),
        Err(e) => return (Err(Fatal::Config(e)), None),
    };
    // Commands that change things log to the daily file; a dry run writes no file.
    let writes = !cli.dry_run
        && (matches!(cli.command, Command::Run | Command::Stop(_) | Command::Init)
            || recordings::writes(&cli.command));
    let stderr = logging::stderr_level(cli.verbose, cli.quiet);
    let file = writes.then(|| LogFile {
        dir: &cfg.server.log_dir,
        debug: cfg.server.debug,
        retention_days: cfg.server.log_retention_days,
    });
    let guard = match logging::init(stderr, file) {
        Ok(started) => {
            if matches!(cli.command, Command::Run) && started.first_of_the_day {
                warn_readable_config(&cfg);
            }
            started.guard
        }
        Err(e) if matches!(cli.command, Command::Run) => {
            // A tick nobody can read afterwards is worse than no tick: cron mails this.
            let _ = logging::init(stderr, None);
            return (
                Err(Fatal::Other(e.context(
                    "a tick without its log is refused; make server.log_dir writable",
                ))),
                None,
            );
        }
        Err(e) => {
            // `stop` and `init` go on: the admin at the terminal sees their output.
            let _ = logging::init(stderr, None);
            eprintln!("bbb-pod-live: cannot write the log file: {e:#}");
            None
        }
    };
    for note in &cfg.notes {
        tracing::debug!("configuration: {note}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return (
                Err(Fatal::Other(
                    anyhow!(e).context("starting the async runtime"),
                )),
                guard,
            );
        }
    };
    let result = runtime.block_on(dispatch(cli, cfg));
    // An interrupted run may leave a blocking file copy behind (a hung NFS share): the
    // process ends without waiting for it; the next tick redoes the copy.
    runtime.shutdown_timeout(Duration::from_secs(1));
    (result, guard)
}

/// The first tick of each (UTC) day warns when other users can read the secrets.
fn warn_readable_config(cfg: &Config) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(&cfg.path) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        warn!(
            "the configuration {} has mode {mode:04o}: other users can read the secrets in \
             it; chmod 600 {} (said once a day)",
            cfg.path.display(),
            cfg.path.display()
        );
    }
}

async fn dispatch(cli: &Cli, cfg: Arc<Config>) -> Result<Outcome, Fatal> {
    match &cli.command {
        Command::Run => run_tick(cfg, cli.dry_run).await,
        Command::Init => init(&cfg, cli.dry_run),
        Command::Stop(args) => stop(cfg, args, cli.dry_run).await,
        Command::Status(args) => crate::commands::status(&cfg, args.json),
        Command::Check(args) => check(cfg, args.send_test_mail).await,
        Command::Recordings(args) => recordings::run(&cfg, &args.action, cli.dry_run),
        Command::Completions(_) | Command::Man => {
            print_generated(&cli.command).map_err(Fatal::Other)
        }
    }
}

/// `completions` and `man`: text generated from the clap definition, on stdout.
fn print_generated(command: &Command) -> Result<Outcome> {
    let text = match command {
        Command::Completions(args) => crate::cli::completions(args.shell),
        Command::Man => crate::cli::man_page(),
        _ => Vec::new(),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&text)
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(Outcome::Done)
}

fn print_lines(lines: &[String]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{l}").context("writing to stdout")?;
    }
    Ok(())
}

async fn run_tick(cfg: Arc<Config>, dry_run: bool) -> Result<Outcome, Fatal> {
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
        let delay = u64::from(cfg.server.number - 1) * 60 / u64::from(cfg.server.count);
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
fn record_failed_tick(store: &SlotStore, duration: Duration, err: &anyhow::Error) {
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

fn init(cfg: &Config, dry_run: bool) -> Result<Outcome, Fatal> {
    let store = SlotStore::new(&cfg.server.base_dir, cfg.server.slots);
    let mut lines = store.init(dry_run)?;
    // Under the tick lock: a start writes its compose file between these checks.
    let _lock = if dry_run {
        None
    } else {
        Some(lock_waiting(cfg)?)
    };
    for slot in 1..=cfg.server.slots {
        let compose = store.compose_file(slot);
        if compose.exists() {
            // It holds the BBB secret (a PHP server left it 0644): mode and owner only,
            // a busy slot's content belongs to its live.
            lines.extend(crate::slots::repair(&compose, 0o600, None, dry_run)?);
            continue;
        }
        if store.load(slot).ok().flatten().is_some() {
            continue;
        }
        lines.push(format!(
            "write {} from the template (mode 0600)",
            compose.display()
        ));
        if !dry_run {
            crate::fsutil::write_atomic(&compose, cfg.server.template.as_bytes(), 0o600)?;
        }
    }
    if !dry_run {
        for l in &lines {
            info!("init: {l}");
        }
    }
    if lines.is_empty() {
        lines.push("nothing to change: every slot directory, videodata and compose file is as it should be".into());
    }
    print_lines(&lines)?;
    Ok(Outcome::Done)
}

async fn stop(cfg: Arc<Config>, args: &StopArgs, dry_run: bool) -> Result<Outcome, Fatal> {
    let ctx = Ctx::new(Arc::clone(&cfg)).map_err(Fatal::Config)?;
    let (states, broken) = ctx.slots.load_all()?;
    let found = match (args.live, args.slot) {
        (Some(live), _) => states.iter().find(|(_, s)| s.live == live),
        (None, Some(slot)) => states.iter().find(|(n, _)| **n == slot),
        (None, None) => None,
    };
    let Some((&slot, state)) = found else {
        return Err(Fatal::Config(anyhow!(nothing_to_stop(&cfg, args, &broken))));
    };
    if dry_run {
        print_lines(&[format!(
            "stop live {} in slot {slot}: {}",
            state.live,
            StopReason::ByHand.describe()
        )])?;
        return Ok(Outcome::Done);
    }
    let wanted = state.live;
    let _lock = lock_waiting(&cfg)?;
    // A tick may have stopped that live, and started another in its slot, while this
    // waited for the lock: stop only the live that was asked for.
    let state = match ctx.slots.load(slot)? {
        Some(s) if s.live == wanted => s,
        Some(s) => {
            return Err(Fatal::Other(anyhow!(
                "live {wanted} was stopped meanwhile and slot {slot} now runs live {}: nothing done",
                s.live
            )));
        }
        None => {
            return Err(Fatal::Other(anyhow!(
                "live {wanted} was stopped meanwhile (slot {slot} is free): nothing done"
            )));
        }
    };
    // Pod's view decides how the live is closed; if Pod cannot be read, the container
    // still stops now and the live is closed in Pod as soon as Pod answers (this run,
    // or else the next tick).
    let live = match ctx.pod.livestream(state.live).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("reading live {} from Pod: {e}", state.live);
            None
        }
    };
    let mut report = tick::TickReport {
        problems: tick::stop(&ctx, slot, state, Some(StopReason::ByHand), live.as_ref()).await?,
        ..Default::default()
    };
    // The admin waiting at the terminal wants the recording in Pod now, not a minute
    // later: hand it over in this run (what cannot be is retried by the next tick).
    tick::hand_over_recordings(&ctx, false, &mut report).await;
    report.log_problems();
    if report.ok() {
        print_lines(&[format!(
            "live {wanted} stopped (slot {slot} is free, the live closed in Pod)"
        )])?;
    } else {
        print_lines(&[format!(
            "live {wanted}: the stop is not complete (see the errors above); slot {slot} \
             stays \"stopping\" and the next tick finishes it"
        )])?;
    }
    Ok(Outcome::from_ok(report.ok()))
}

/// Why `stop` found nothing to stop, one story per case (a corrupt slot's included).
fn nothing_to_stop(cfg: &Config, args: &StopArgs, broken: &crate::slots::BrokenSlots) -> String {
    match (args.live, args.slot) {
        (Some(l), _) if !broken.is_empty() => format!(
            "live {l} runs in no readable slot of this server; slot(s) {} have a state \
             file that cannot be read: see `bbb-pod-live check`",
            broken
                .iter()
                .map(|b| b.0.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Some(l), _) => format!("live {l} runs in no slot of this server"),
        (None, Some(s)) => match broken.iter().find(|b| b.0 == s) {
            Some((_, e)) => crate::slots::corrupt_story(s, e, &cfg.server.base_dir),
            None if s == 0 || s > cfg.server.slots => format!(
                "there is no slot {s} on this server (server.slots = {})",
                cfg.server.slots
            ),
            None => format!("slot {s} is free"),
        },
        (None, None) => "nothing to stop".into(),
    }
}

/// The tick lock for `stop` and `init`, saying on stderr when it waits for a run.
fn lock_waiting(cfg: &Config) -> Result<crate::lock::Lock> {
    match crate::lock::try_lock(&cfg.server.base_dir)? {
        TryLock::Acquired(lock) => Ok(lock),
        TryLock::Busy(holder) => {
            let who = holder
                .map(|h| format!(" (pid {})", h.pid))
                .unwrap_or_default();
            eprintln!("waiting for the running tick{who} to end (at most 5 minutes)…");
            crate::lock::lock_within(&cfg.server.base_dir, Duration::from_secs(300))
        }
    }
}

/// `status`: the slots of this server, recordings waiting, the last tick.
pub fn status(cfg: &Config, json: bool) -> Result<Outcome, Fatal> {
    let store = SlotStore::new(&cfg.server.base_dir, cfg.server.slots);
    let (states, broken) = store.load_all()?;
    let server_state = store.load_server_state().unwrap_or_default();
    let scan = crate::recording::PendingStore::new(&cfg.server.base_dir).scan()?;
    let mut all: Vec<u32> = (1..=cfg.server.slots)
        .chain(states.keys().copied())
        .chain(broken.iter().map(|b| b.0))
        .collect();
    all.sort_unstable();
    all.dedup();
    let slots: Vec<_> = all
        .into_iter()
        .map(|slot| {
            let recording_bytes: u64 = crate::recording::mkv_files(&store.videodata(slot))
                .map(|files| files.iter().map(|f| f.size).sum())
                .unwrap_or(0);
            match states.get(&slot) {
                Some(s) => slot_entry(cfg, slot, s, recording_bytes),
                None => match broken.iter().find(|b| b.0 == slot) {
                    Some((_, e)) => serde_json::json!({
                        "slot": slot,
                        "state": "unreadable",
                        "error": format!("{e:#}"),
                    }),
                    None => serde_json::json!({"slot": slot, "state": "free"}),
                },
            }
        })
        .collect();
    let doc = serde_json::json!({
        "server": {"hostname": cfg.server.hostname, "number": cfg.server.number, "slots": cfg.server.slots},
        "slots": slots,
        "recordings": scan.pending.iter().map(|p| serde_json::json!({
            "live": p.live,
            "state": p.state(),
            "files": p.files,
            "internal_meeting_id": p.handover.internal_meeting_id,
            "summary": p.summary(),
        })).collect::<Vec<_>>(),
        "unreadable_recordings": scan.unreadable,
        "last_tick": server_state.last_tick,
        "waiting": server_state.waiting.iter().map(|w| serde_json::json!({
            "live": w.live,
            "reason": w.reason,
            "summary": w.to_string(),
        })).collect::<Vec<_>>(),
    });
    if json {
        let text = serde_json::to_string_pretty(&doc).context("encoding the status")?;
        print_lines(&[text])?;
        return Ok(Outcome::Done);
    }
    let summaries: Vec<String> = scan.pending.iter().map(|p| p.summary()).collect();
    let mut lines = status_text(&doc, &summaries, server_state.last_tick.as_ref());
    // Before the "last tick" line, which dates it.
    let at = lines.len() - 1;
    if server_state.waiting.is_empty() {
        lines.insert(at, "lives waiting, as of the last tick: none".into());
    } else {
        let mut waiting = vec!["lives waiting, as of the last tick:".to_owned()];
        waiting.extend(server_state.waiting.iter().map(|w| format!("  {w}")));
        lines.splice(at..at, waiting);
    }
    if !cfg.server.base_dir.exists() {
        lines.insert(
            0,
            format!(
                "server.base_dir {} does not exist: nothing ran on this server yet \
                 (`bbb-pod-live init` or the first tick creates it)",
                cfg.server.base_dir.display()
            ),
        );
    }
    lines.extend(
        broken
            .iter()
            .map(|(slot, e)| crate::slots::corrupt_story(*slot, e, &cfg.server.base_dir)),
    );
    print_lines(&lines)?;
    Ok(Outcome::Done)
}

/// One busy slot of `status --json`.
fn slot_entry(
    cfg: &Config,
    slot: u32,
    s: &crate::slots::SlotState,
    recording_bytes: u64,
) -> serde_json::Value {
    let key = s.stream_key.clone().unwrap_or_default();
    let mut entry = serde_json::json!({
        "slot": slot,
        "state": s.phase,
        "live": s.live,
        "meeting_name": s.meeting_name,
        "meeting_id": s.meeting_id,
        "since": s.since,
        "stream_url": (!key.is_empty()).then(|| format!("{}{key}", cfg.bbb.stream_url)),
        "hls_url": (!key.is_empty()).then(|| format!("{}{key}.m3u8", cfg.pod.hls_url)),
        "recording": s.download,
        "recording_bytes": recording_bytes,
        "ended_seen": s.ended_seen,
        "adopted": s.adopted,
        "stop_reason": s.stop.as_ref().map(|p| p.reason),
    });
    let dir = SlotStore::new(&cfg.server.base_dir, cfg.server.slots).dir(slot);
    if let Some(e) = entry.as_object_mut() {
        e.extend(crate::health::status_fields(s, cfg, &dir));
    }
    entry
}

/// The table a person reads, from the `--json` document.
fn status_text(
    doc: &serde_json::Value,
    recordings: &[String],
    last_tick: Option<&TickRecord>,
) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<5} {:<10} {:<6} {:<30} {:<22} {:<19} {}",
        "SLOT", "STATE", "LIVE", "MEETING", "SINCE (local time)", "HEALTH", "HLS URL"
    )];
    for s in doc["slots"].as_array().into_iter().flatten() {
        let text = |k: &str| {
            s[k].as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| s[k].to_string().replace("null", "-"))
        };
        let mut name: String = text("meeting_name").chars().take(30).collect();
        name = name.replace(char::is_control, " ");
        let since = s["since"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(
                || "-".to_owned(),
                |t| crate::logging::local_time(t.with_timezone(&Utc)),
            );
        lines.push(format!(
            "{:<5} {:<10} {:<6} {:<30} {:<22} {:<19} {}",
            text("slot"),
            text("state"),
            text("live"),
            name,
            since,
            text("health"),
            text("hls_url"),
        ));
    }
    // Where each live's streamer log is (issue 11).
    lines.extend(
        doc["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let log = s["streamer_log"].as_str()?;
                Some(format!("slot {} streamer log: {log}", s["slot"]))
            }),
    );
    if recordings.is_empty() {
        lines.push("recordings waiting: none".into());
    } else {
        lines.push("recordings waiting:".into());
        lines.extend(recordings.iter().map(|r| format!("  {r}")));
    }
    lines.push(match last_tick {
        Some(t) => format!(
            "last tick: {} ({} ms), {}",
            crate::logging::local_time(t.at),
            t.duration_ms,
            if t.ok {
                "ok".to_owned()
            } else {
                format!("{} problem(s), see the log", t.problems)
            }
        ),
        None => "last tick: never".into(),
    });
    lines
}

/// `check`: one line per check, OK/WARN/FAIL and what to do; exit 1 on any FAIL.
async fn check(cfg: Arc<Config>, send_test_mail: bool) -> Result<Outcome, Fatal> {
    let lines = check::run(cfg, send_test_mail)
        .await
        .map_err(Fatal::Config)?;
    print_lines(&lines.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    Ok(Outcome::from_ok(
        lines.iter().all(|l| l.level != check::Level::Fail),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_tick_is_counted_and_recorded_in_the_server_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SlotStore::new(dir.path(), 1);
        let mut state = crate::slots::ServerState::default();
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
