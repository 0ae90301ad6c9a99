//! `cargo run --example demo`: what bbb-pod-live does, start to finish, on this machine
//! alone. The real binary (built by this command when cargo runs it, or `--bin PATH`)
//! runs its cron ticks, `status` and the others against the integration tests' fakes
//! on loopback — Pod, BigBlueButton, a `docker` that writes a small mkv with ffmpeg, a
//! mail sink — in a temporary directory removed at the end (`--keep` keeps it). The
//! story is `scenario.rs`; this file finds the binary and makes sure that nothing the
//! demo started outlives it, however it ends (its end, an error, a panic, Ctrl-C,
//! SIGTERM, SIGHUP).
//!
//! Test code stays out of the shipped binary: an example is built only for itself, with
//! the dev-dependencies, and the harness is included from tests/it/support by path.

// A panic is a failure report here as in the tests the harness comes from.
#![allow(clippy::unwrap_used)]

#[allow(unused_imports)]
#[path = "../../tests/it/support/mod.rs"]
mod support;

mod scenario;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Runs bbb-pod-live's main job start to finish against local stand-ins (no network,
/// no root, no Pod, BBB or docker needed; ffmpeg is used for the recording).
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Args {
    /// Keep the temporary directory (configuration, slots, logs, recordings) and say
    /// where it is.
    #[arg(long)]
    keep: bool,
    /// The bbb-pod-live binary to run (default: the one beside this example, built
    /// first when cargo runs the demo).
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Processes orphaned by the ones the demo runs (a fake docker's children, say) are
    // re-parented here rather than to init, so that the cleanup still finds them.
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("demo: becoming a child subreaper: {e}");
    }
    let dir: Arc<Mutex<Option<PathBuf>>> = Arc::default();
    if let Err(e) = watch_signals(Arc::clone(&dir), args.keep) {
        eprintln!("demo: {e:#}");
        return ExitCode::FAILURE;
    }
    // A harness call failing because the watcher stopped its process is no news: that
    // thread waits for the watcher to end the process.
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if INTERRUPTED.load(Ordering::SeqCst) {
            park_forever();
        }
        report_panic(info);
    }));
    // Dropped last, on every way out of main including a panic's unwinding.
    let _reaper = Reaper;

    let result = find_binary(args.bin.as_deref()).and_then(|bin| {
        support::use_binary(&bin);
        let mut stdout = std::io::stdout().lock();
        scenario::run(&mut stdout, args.keep, |root| {
            *dir.lock().unwrap() = Some(root.to_path_buf());
        })
    });
    let result = result.and_then(|()| {
        let left = stop_descendants();
        ensure!(left.is_empty(), "processes left running (killed): {left:?}");
        Ok(())
    });
    if INTERRUPTED.load(Ordering::SeqCst) {
        // The watcher is cleaning up and ends the process with the signal's status; a
        // child that failed because of the same signal is not the demo's failure.
        park_forever();
    }
    match result {
        Ok(()) => {
            println!("\n{}", scenario::DONE);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("demo: failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for the signal watcher to end the process.
fn park_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Set by the signal watcher before it cleans up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// On SIGINT, SIGTERM or SIGHUP: stop every process the demo started, remove its
/// directory (unless kept) and exit 128 + the signal. The fakes are threads of this
/// process and end with it. Handlers, not a blocked mask and sigwait: a child inherits
/// a blocked mask (`serve` would never see its SIGTERM), while exec resets handlers.
fn watch_signals(dir: Arc<Mutex<Option<PathBuf>>>, keep: bool) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal watcher")?;
    // Registered before the demo starts anything.
    let mut streams = runtime
        .block_on(async {
            [
                (SignalKind::interrupt(), Signal::SIGINT),
                (SignalKind::terminate(), Signal::SIGTERM),
                (SignalKind::hangup(), Signal::SIGHUP),
            ]
            .into_iter()
            .map(|(kind, name)| signal(kind).map(|s| (s, name)))
            .collect::<std::io::Result<Vec<_>>>()
        })
        .context("handling SIGINT, SIGTERM and SIGHUP")?;
    std::thread::spawn(move || {
        let signal = runtime.block_on(async {
            let waits = streams.iter_mut().map(|(s, name)| {
                let name = *name;
                Box::pin(async move {
                    s.recv().await;
                    name
                })
            });
            futures_util::future::select_all(waits).await.0
        });
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\ndemo: {signal}: stopping what the demo started");
        stop_descendants();
        let dir = dir.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(dir) = dir {
            if keep {
                eprintln!("demo: kept {}", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        // Below main, on purpose: the main thread may be blocked waiting on a child
        // that is gone now, and the process must end with the signal's status.
        std::process::exit(128 + signal as i32);
    });
    Ok(())
}

/// Stops every process the demo left, on any way out (see [`stop_descendants`]).
struct Reaper;

impl Drop for Reaper {
    fn drop(&mut self) {
        stop_descendants();
    }
}

/// Sends SIGTERM to every descendant of this process still running, SIGKILL to those
/// still there 3 s later; returns the ones it found (pid, command line).
fn stop_descendants() -> Vec<(i32, String)> {
    let found = descendants();
    if found.is_empty() {
        return found;
    }
    for (pid, _) in &found {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && !descendants().is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (pid, _) in descendants() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    found
}

/// Running (not zombie) descendants of this process, from /proc.
fn descendants() -> Vec<(i32, String)> {
    let me = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let mut alive: HashMap<i32, String> = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in rd.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let Some(ppid) = fields.next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        children.entry(ppid).or_default().push(pid);
        if state != "Z" {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            alive.insert(pid, cmdline.trim_end().to_owned());
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![me];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).map(Vec::as_slice).unwrap_or_default() {
            todo.push(c);
            if let Some(cmd) = alive.get(&c) {
                out.push((c, cmd.clone()));
            }
        }
    }
    out.sort();
    out
}

/// The binary the demo runs: `given`, else `bbb-pod-live` in this example's profile
/// directory (`target/<profile>/examples/demo` → `target/<profile>/bbb-pod-live`),
/// which cargo is asked to build first when it runs the demo (`cargo run --example`
/// builds the example only).
fn find_binary(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        ensure!(path.is_file(), "{}: no such file", path.display());
        return path
            .canonicalize()
            .with_context(|| format!("resolving {}", path.display()));
    }
    let exe = std::env::current_exe().context("finding the demo's own path")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("{} is not in target/<profile>/examples", exe.display()))?;
    let bin = profile_dir.join("bbb-pod-live");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let status = Command::new(cargo)
            .args(["build", "--bin", "bbb-pod-live", "--profile", profile])
            .arg("--manifest-path")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
            .status()
            .context("running cargo build for the binary")?;
        if !status.success() {
            bail!("cargo build --bin bbb-pod-live failed ({status})");
        }
    }
    ensure!(
        bin.is_file(),
        "{} not found: build it (cargo build) or name one with --bin",
        bin.display()
    );
    Ok(bin)
}
