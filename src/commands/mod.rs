//! The command line, one file per subcommand: `run` (the cron tick), `check`,
//! `status`, `stop`, `init`, `recordings` and `serve`; [`outcome`] below them holds how a
//! command ends. This file loads the configuration, starts logging (to the day's file
//! when the command changes something) and dispatches; `main` maps the [`Outcome`]
//! to the exit code.

pub mod check;
pub mod init;
pub mod outcome;
pub mod recordings;
pub mod run;
pub mod serve;
pub mod status;
pub mod stop;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tracing::warn;
use tracing_appender::non_blocking::WorkerGuard;

use crate::cli::{Cli, Command};
use crate::config::{Config, ProcessEnv};
use crate::logging::{self, LogFile};

pub use outcome::{Fatal, Outcome};

/// Runs the command line. The returned guard (if any) must live until the end of main.
pub fn run(cli: &Cli) -> (Result<Outcome, Fatal>, Option<WorkerGuard>) {
    if cli.dry_run && !cli.command.changes() {
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
    if cli.command.changes()
        && let Some(why) = crate::config::untrusted(&cfg.path).or_else(|| cfg.unfinished())
    {
        let _ = logging::init(logging::stderr_level(cli.verbose, cli.quiet), None);
        return (Err(Fatal::Config(anyhow!("{why}; nothing was done"))), None);
    }
    // Commands that change things log to the daily file; a dry run writes no file.
    let writes = !cli.dry_run() && cli.command.changes();
    let stderr = logging::stderr_level(cli.verbose, cli.quiet);
    let file = writes.then(|| LogFile {
        dir: &cfg.server.log_dir,
        debug: cfg.server.debug,
        retention_days: cfg.server.log_retention_days,
    });
    let guard = match logging::init(stderr, file) {
        Ok(started) => {
            if matches!(cli.command, Command::Run(_)) && first_tick_of_the_day(&cfg) {
                warn_readable_config(&cfg);
            }
            started.guard
        }
        Err(e) if matches!(cli.command, Command::Run(_) | Command::Init(_)) => {
            // A tick nobody can read afterwards is worse than no tick: cron mails this,
            // and `status` shows the failed run. `init` prepares what a tick needs.
            let _ = logging::init(stderr, None);
            let advice = log_dir_advice(&e);
            let e = e.context(format!(
                "{} without its log is refused; {}",
                if matches!(cli.command, Command::Run(_)) {
                    "a tick"
                } else {
                    "init"
                },
                advice
            ));
            if matches!(cli.command, Command::Run(_)) {
                let store = crate::slots::SlotStore::new(&cfg.server.base_dir, cfg.server.slots);
                run::record_failed_tick(&store, Duration::ZERO, &e);
            }
            return (Err(Fatal::Other(e)), None);
        }
        Err(e) => {
            // `stop` goes on: stopping a live matters more than its log, and the admin
            // at the terminal sees its output.
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

/// What to do when the day's log cannot be written.
fn log_dir_advice(e: &anyhow::Error) -> &'static str {
    let read_only = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ReadOnlyFilesystem)
    });
    if read_only {
        "server.log_dir is on a read-only file system: remount it read-write (see `dmesg` \
         for why it went read-only) or set server.log_dir to a directory on a writable one"
    } else {
        "make server.log_dir a directory writable by the user running bbb-pod-live"
    }
}

/// Whether no tick was recorded yet today (UTC): the day's log may already exist,
/// made by `init` or `stop`, so it cannot tell.
fn first_tick_of_the_day(cfg: &Config) -> bool {
    let store = crate::slots::SlotStore::new(&cfg.server.base_dir, cfg.server.slots);
    let today = chrono::Utc::now().date_naive();
    store
        .load_server_state()
        .ok()
        .and_then(|s| s.last_tick)
        .is_none_or(|t| t.at.date_naive() != today)
}

/// The first tick of each (UTC) day warns when other users can read the secrets.
fn warn_readable_config(cfg: &Config) {
    if let Some(text) = crate::config::readable_by_others(&cfg.path) {
        warn!("the {text} (said once a day)");
    }
}

async fn dispatch(cli: &Cli, cfg: Arc<Config>) -> Result<Outcome, Fatal> {
    match &cli.command {
        Command::Run(_) => run::run(cfg, cli.dry_run()).await,
        Command::Init(_) => init::init(&cfg, cli.dry_run()),
        Command::Stop(args) => stop::stop(cfg, args, cli.dry_run()).await,
        Command::Status(args) => status::status(&cfg, args.json),
        Command::Check(args) => check::command(cfg, args.send_test_mail).await,
        Command::Recordings(args) => recordings::run(&cfg, &args.action, cli.dry_run()),
        Command::Serve => serve::serve(cfg, cli.dry_run()).await,
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
