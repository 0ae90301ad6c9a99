//! The one place that starts a child process (`docker compose`, the join's ffmpeg and
//! ffprobe or their `docker run`, sendmail): the program from the configuration,
//! stdin null (or the bytes given), stdout and stderr captured and bounded, a
//! timeout, and the command with the end of its stderr in the error. Each command is
//! logged at debug before it runs; callers never put a secret on a command line (the
//! compose file and the mail's input hold them).
//!
//! A child runs in its own process group, and the whole group is killed (SIGKILL)
//! when the timeout expires or when the run is dropped before it finished (the tick
//! interrupted by SIGTERM, `signals.rs`): a hung `docker compose` or a shell and the
//! children it spawned never outlive the call.
//!
//! A run killed by SIGKILL cannot kill its children. A caller whose children must not
//! outlive it then (`docker compose`, which could bring a container up after the next
//! tick undid the start) registers them in a directory ([`Cmd::registered_in`]): one
//! file per child (our pid and start time, the child's start time) while it runs, and
//! [`reap`] in a later run kills the process group of every registered child whose
//! owner is gone (the start times guard against recycled PIDs).
//!
//! Not here: what a program's output means, and whether a failure is fatal.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::text::{one_line, tail};

/// The gate a registered child passes before it runs the program (see [`Cmd::run`]):
/// one line on stdin opens it; then stdin is `/dev/null`, as for an unregistered call.
const GATE: &str = "read -r _ || exit 125; exec \"$@\" </dev/null";
/// The gate of a registered child that is given input: the rest of stdin is its input.
const GATE_WITH_INPUT: &str = "read -r _ || exit 125; exec \"$@\"";

/// At most this much of a command's stderr goes into an error message.
const STDERR_TAIL: usize = 2000;
/// At most this much of stdout is kept (its end): a streamer's log of a long live.
const STDOUT_MAX: usize = 64 << 20;
/// At most this much of stderr is kept (its end).
const STDERR_MAX: usize = 1 << 20;

/// One run of a program, built, then [`Cmd::run`].
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    input: Option<Vec<u8>>,
    timeout: Duration,
    registry: Option<PathBuf>,
    shown: Option<String>,
}

/// What a finished command printed (each at most its bound, the end kept).
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Why a command did not succeed. Its text names the command (and the directory it
/// ran in) and, for a failure, the end of its stderr on one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting `{what}`{within}: {source}")]
    Start {
        what: String,
        within: Within,
        source: std::io::Error,
    },
    #[error("`{what}`{within}: {context}: {source}")]
    Io {
        what: String,
        within: Within,
        context: &'static str,
        source: std::io::Error,
    },
    #[error("`{what}`{within} did not finish within {}s and was killed", timeout.as_secs())]
    TimedOut {
        what: String,
        within: Within,
        timeout: Duration,
    },
    #[error("`{what}`{within} failed ({status}): {stderr}")]
    Failed {
        what: String,
        within: Within,
        status: ExitStatus,
        /// The end of its stderr, on one line.
        stderr: String,
    },
}

/// ` in <dir>` when the command ran in a given directory, else nothing.
#[derive(Debug, Clone)]
pub struct Within(Option<PathBuf>);

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(dir) => write!(f, " in {}", dir.display()),
            None => Ok(()),
        }
    }
}

impl Cmd {
    /// `program` (a name looked up in PATH, or a path), no arguments, a 60 s timeout.
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            dir: None,
            input: None,
            timeout: Duration::from_secs(60),
            registry: None,
            shown: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Cmd {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// The working directory (named in errors).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    /// Bytes written to the program's stdin (then closed), instead of `/dev/null`.
    pub fn input(mut self, bytes: Vec<u8>) -> Cmd {
        self.input = Some(bytes);
        self
    }

    /// After this, the process group is killed and the run fails.
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// Registers the child in `dir` while it runs (see the module documentation).
    pub fn registered_in(mut self, dir: Option<&Path>) -> Cmd {
        self.registry = dir.map(Path::to_owned);
        self
    }

    /// What logs and errors call the command, when the whole command line would be too
    /// long (a script): by default the program and all its arguments.
    pub fn shown_as(mut self, text: String) -> Cmd {
        self.shown = Some(text);
        self
    }

    fn describe(&self) -> String {
        if let Some(s) = &self.shown {
            return s.clone();
        }
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|w| w.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the program to its end: its output if it exited with status 0.
    pub async fn run(self) -> Result<Output, Error> {
        let what = self.describe();
        let within = Within(self.dir.clone());
        let dir_shown = self
            .dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        tracing::debug!(command = %what, dir = %dir_shown, timeout_secs = self.timeout.as_secs(), "running");
        let started = Instant::now();
        let mut child = self.command().spawn().map_err(|source| Error::Start {
            what: what.clone(),
            within: within.clone(),
            source,
        })?;
        // Dropped unfinished (the tick interrupted by SIGTERM): the whole group is
        // killed, as on a timeout; `kill_on_drop` alone would leave its children running.
        let mut group = GroupKill(child.id().map(|id| Pid::from_raw(id as i32)));
        let _registered = match (&self.registry, child.id()) {
            (Some(dir), Some(pid)) => Registered::new(dir, pid),
            _ => None,
        };
        let finished = tokio::time::timeout(self.timeout, self.collect(&mut child)).await;
        let Ok(finished) = finished else {
            drop(group);
            return Err(Error::TimedOut {
                what,
                within,
                timeout: self.timeout,
            });
        };
        // Waited for: the group leader's id may be reused from now on.
        group.0 = None;
        let io = |context: &'static str| {
            let (what, within) = (what.clone(), within.clone());
            move |source| Error::Io {
                what,
                within,
                context,
                source,
            }
        };
        let Finished {
            status,
            fed,
            stdout,
            stderr,
        } = finished.map_err(|(context, e)| io(context)(e))?;
        tracing::debug!(
            command = %what,
            dir = %dir_shown,
            status = %status,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "finished"
        );
        if !status.success() {
            return Err(Error::Failed {
                what,
                within,
                status,
                stderr: one_line(tail(stderr.trim(), STDERR_TAIL)),
            });
        }
        // A program that succeeded without reading all its input did not get it.
        fed.map_err(io("writing its input"))?;
        Ok(Output { stdout, stderr })
    }

    /// The process to spawn, in its own process group. With a registry, the child
    /// waits at a gate (a shell reading one line) until its entry is written, then
    /// execs the program: a run killed between the spawn and the registration leaves
    /// no unregistered child (the gate reads EOF and exits).
    fn command(&self) -> Command {
        let mut command = match &self.registry {
            Some(_) => {
                let gate = if self.input.is_some() {
                    GATE_WITH_INPUT
                } else {
                    GATE
                };
                let mut c = Command::new("/bin/sh");
                c.args(["-c", gate, "bbb-pod-live-gate"])
                    .arg(&self.program)
                    .stdin(Stdio::piped());
                c
            }
            None => {
                let mut c = Command::new(&self.program);
                c.stdin(if self.input.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                });
                c
            }
        };
        command
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a kill reaches everything it started.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    /// Opens the gate, feeds the input, reads both outputs and waits for the exit, all
    /// at once (a program may fill a pipe before it reads its input).
    async fn collect(&self, child: &mut Child) -> Result<Finished, (&'static str, std::io::Error)> {
        let mut stdin = child.stdin.take();
        if self.registry.is_some()
            && let Some(gate) = stdin.as_mut()
        {
            // A child already gone shows in its exit status.
            let _ = gate.write_all(b"go\n").await;
        }
        let feed = async {
            let (Some(mut pipe), Some(bytes)) = (stdin, self.input.as_deref()) else {
                return Ok(());
            };
            let written = pipe.write_all(bytes).await;
            // Closed, so that the program sees the end of its input.
            drop(pipe);
            written
        };
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (fed, out, err, status) = tokio::join!(
            feed,
            bounded(stdout, STDOUT_MAX),
            bounded(stderr, STDERR_MAX),
            child.wait()
        );
        Ok(Finished {
            status: status.map_err(|e| ("waiting for it", e))?,
            fed,
            stdout: String::from_utf8_lossy(&out.map_err(|e| ("reading its output", e))?)
                .into_owned(),
            stderr: String::from_utf8_lossy(&err.map_err(|e| ("reading its errors", e))?)
                .into_owned(),
        })
    }
}

/// A child that exited: its status, whether its input was written, its output.
struct Finished {
    status: ExitStatus,
    fed: std::io::Result<()>,
    stdout: String,
    stderr: String,
}

/// Reads `pipe` to its end, keeping its last `max` bytes at most.
async fn bounded(pipe: Option<impl AsyncRead + Unpin>, max: usize) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return Ok(kept);
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        // Drained in large steps, not at every read.
        if kept.len() > max.saturating_mul(2) {
            kept.drain(..kept.len() - max);
        }
    }
    if kept.len() > max {
        kept.drain(..kept.len() - max);
    }
    Ok(kept)
}

/// The process group of a running child, killed when dropped before it was disarmed
/// (the group leader is ours and not yet waited for, so the id cannot have been reused).
struct GroupKill(Option<Pid>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // The group may already be gone; nothing else to do then.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// A child's entry in the registry, removed when the run ends (any way but SIGKILL).
struct Registered(PathBuf);

impl Registered {
    fn new(dir: &Path, child: u32) -> Option<Registered> {
        let me = std::process::id();
        let (Some(my_start), Some(child_start)) = (start_time(me), start_time(child)) else {
            return None;
        };
        let path = dir.join(child.to_string());
        let written = fs::create_dir_all(dir)
            .and_then(|()| fs::write(&path, format!("{me} {my_start} {child_start}\n")));
        match written {
            Ok(()) => Some(Registered(path)),
            Err(e) => {
                tracing::debug!("registering child {child} in {}: {e}", dir.display());
                None
            }
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Start time of a process (`/proc/<pid>/stat` field 22, clock ticks since boot);
/// `None` if it does not exist (or is a zombie: it no longer runs anything).
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may itself contain spaces or ')'.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Kills the process groups of the children registered in `dir` whose owner died, and
/// forgets every stale entry. Returns the killed PIDs.
pub fn reap(dir: &Path) -> Vec<u32> {
    let mut killed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return killed;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let text = fs::read_to_string(&path).unwrap_or_default();
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        if let [owner, owner_start, child_start] = v[..] {
            let owner_alive = u32::try_from(owner)
                .ok()
                .and_then(start_time)
                .is_some_and(|t| t == owner_start);
            if owner_alive {
                // A child of a run still going (e.g. `check` beside a tick).
                continue;
            }
            if start_time(child) == Some(child_start)
                && let Ok(pid) = i32::try_from(child)
            {
                tracing::warn!(
                    pid = child,
                    "killing a docker compose call left running by a killed bbb-pod-live run"
                );
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                killed.push(child);
            }
        }
        let _ = fs::remove_file(&path);
    }
    killed
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// An executable shell script `name` in `dir`.
    pub(crate) fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// The script run by the shell, not exec'd itself: a script written a moment ago
    /// cannot be exec'd (ETXTBSY) while another test thread's fork still holds its
    /// write descriptor.
    fn sh(script: &Path) -> Cmd {
        Cmd::new("/bin/sh").arg(script)
    }

    /// Whether `pid` runs (a zombie does not: it only waits to be reaped).
    fn alive(pid: i32) -> bool {
        start_time(pid as u32).is_some()
    }

    /// The live (not zombie) processes of process group `pgid`.
    fn group_members(pgid: i32) -> Vec<i32> {
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| {
                fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|stat| {
                        let mut f = stat.rsplit_once(')')?.1.split_whitespace();
                        let state = f.next()?;
                        // Fields after the state: ppid, pgrp.
                        let pgrp: i32 = f.nth(1)?.parse().ok()?;
                        Some(state != "Z" && pgrp == pgid)
                    })
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Waits (up to 10 s, checked every 20 ms) until nothing of the run whose leader
    /// wrote its pid and its background child's pid into `pids` is left.
    pub(crate) fn assert_nothing_left(pids: &Path) {
        let text = fs::read_to_string(pids).expect("the script wrote its pids");
        let pids: Vec<i32> = text
            .split_whitespace()
            .map(|w| w.parse().expect("pid"))
            .collect();
        let [leader, background] = pids[..] else {
            panic!("two pids expected: {text:?}");
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left: Vec<i32> = group_members(leader)
                .into_iter()
                .chain([leader, background].into_iter().filter(|&p| alive(p)))
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "processes of the run left: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn output_status_and_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prog = script(dir.path(), "prog", "pwd; echo \"$*\"; echo note >&2");
        let out = sh(&prog)
            .args(["a", "b c"])
            .dir(dir.path())
            .run()
            .await
            .expect("runs");
        let cwd = fs::canonicalize(dir.path()).expect("canon");
        assert_eq!(out.stdout, format!("{}\na b c\n", cwd.display()));
        assert_eq!(out.stderr, "note\n");
    }

    #[tokio::test]
    async fn stdin_is_null_unless_input_is_given() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prog = script(dir.path(), "prog", "cat");
        let out = sh(&prog).run().await.expect("runs");
        assert_eq!(out.stdout, "");
        let out = sh(&prog)
            .input(b"the message\n".to_vec())
            .run()
            .await
            .expect("runs");
        assert_eq!(out.stdout, "the message\n");
        // Through the gate of a registered child too.
        let reg = dir.path().join("reg");
        let out = sh(&prog)
            .input(b"gated\n".to_vec())
            .registered_in(Some(&reg))
            .run()
            .await
            .expect("runs");
        assert_eq!(out.stdout, "gated\n");
    }

    #[tokio::test]
    async fn a_failure_names_the_command_its_directory_and_its_stderr_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prog = script(
            dir.path(),
            "prog",
            "i=0; while [ $i -lt 500 ]; do echo \"noise $i\" >&2; i=$((i+1)); done; \
             echo 'no such image' >&2; echo 'second line' >&2; exit 3",
        );
        let e = sh(&prog)
            .arg("pull")
            .dir(dir.path())
            .run()
            .await
            .expect_err("fails");
        let text = e.to_string();
        assert!(matches!(e, Error::Failed { .. }), "{e:?}");
        assert!(
            text.starts_with(&format!(
                "`/bin/sh {} pull` in {} failed (",
                prog.display(),
                dir.path().display()
            )),
            "{text}"
        );
        assert!(
            text.ends_with("no such image | second line") && text.contains("status: 3"),
            "{text}"
        );
        assert!(!text.contains("noise 0 "), "the stderr was not cut: {text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_that_names_it() {
        let e = Cmd::new("/nonexistent/prog")
            .run()
            .await
            .expect_err("missing");
        assert!(matches!(e, Error::Start { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("starting `/nonexistent/prog`"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn stdout_is_bounded_to_its_end() {
        let mut kept = bounded(Some(&b"0123456789"[..]), 4).await.expect("read");
        assert_eq!(kept, b"6789");
        kept = bounded(Some(&b"01"[..]), 4).await.expect("read");
        assert_eq!(kept, b"01");
        kept = bounded(None::<&[u8]>, 4).await.expect("read");
        assert!(kept.is_empty());
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The grandchild keeps stdout open: waiting for the output alone would hang.
        let prog = script(
            dir.path(),
            "prog",
            "sleep 300 & echo \"$$ $!\" > pids.tmp; mv pids.tmp pids; wait",
        );
        let e = sh(&prog)
            .dir(dir.path())
            .timeout(Duration::from_millis(500))
            .run()
            .await
            .expect_err("times out");
        assert!(matches!(e, Error::TimedOut { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("did not finish within") && text.ends_with("and was killed"),
            "{text}"
        );
        assert_nothing_left(&dir.path().join("pids"));
    }

    #[tokio::test]
    async fn a_dropped_run_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prog = script(
            dir.path(),
            "prog",
            "sleep 300 & echo \"$$ $!\" > pids.tmp; mv pids.tmp pids; wait",
        );
        let pids = dir.path().join("pids");
        let run = sh(&prog)
            .dir(dir.path())
            .timeout(Duration::from_secs(300))
            .run();
        // Dropped (as the tick is on SIGTERM) once the script started its child.
        tokio::select! {
            r = run => panic!("finished: {r:?}"),
            () = async {
                while !pids.exists() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            } => {}
        }
        assert_nothing_left(&pids);
    }

    #[test]
    fn orphans_of_a_dead_run_are_killed_and_calls_of_a_live_run_kept() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let dir = tempfile::tempdir().expect("tempdir");
        let spawn = || {
            std::process::Command::new("sleep")
                .arg("300")
                .process_group(0)
                .spawn()
                .expect("sleep")
        };
        let (mut orphan, mut ours) = (spawn(), spawn());
        let mut gone = std::process::Command::new("true").spawn().expect("true");
        let dead_owner = gone.id();
        gone.wait().expect("wait");
        let entry = |child: &std::process::Child, owner: u32, owner_start: u64| {
            let start = start_time(child.id()).expect("child start time");
            fs::write(
                dir.path().join(child.id().to_string()),
                format!("{owner} {owner_start} {start}\n"),
            )
            .expect("entry");
        };
        entry(&orphan, dead_owner, 1);
        let me = std::process::id();
        entry(&ours, me, start_time(me).expect("own start time"));
        fs::write(dir.path().join("4194999"), "garbage").expect("entry");

        assert_eq!(reap(dir.path()), vec![orphan.id()]);
        assert_eq!(orphan.wait().expect("wait").signal(), Some(9));
        assert!(
            ours.try_wait().expect("try_wait").is_none(),
            "a live run's call was killed"
        );
        assert!(dir.path().join(ours.id().to_string()).exists());
        assert!(!dir.path().join(orphan.id().to_string()).exists());
        assert!(!dir.path().join("4194999").exists());
        ours.kill().expect("kill");
        ours.wait().expect("wait");
    }

    #[tokio::test]
    async fn a_child_is_registered_while_it_runs_only() {
        // The child is registered just after it was spawned: the script waits for that
        // (up to 5 s) instead of racing it.
        let dir = tempfile::tempdir().expect("tempdir");
        let prog = script(
            dir.path(),
            "prog",
            "for i in $(seq 100); do [ -n \"$(ls reg 2>/dev/null)\" ] && break; sleep 0.05; done; ls reg > seen",
        );
        let reg = dir.path().join("reg");
        sh(&prog)
            .dir(dir.path())
            .registered_in(Some(&reg))
            .run()
            .await
            .expect("runs");
        let seen = fs::read_to_string(dir.path().join("seen")).expect("seen");
        assert_eq!(
            seen.lines().count(),
            1,
            "registered while running: {seen:?}"
        );
        assert_eq!(
            fs::read_dir(&reg).expect("reg").count(),
            0,
            "left registered"
        );
    }

    #[test]
    fn the_gate_runs_nothing_when_its_run_died_before_opening_it() {
        // A run killed before it registered its child closes the gate's stdin unopened.
        let dir = tempfile::tempdir().expect("tempdir");
        for gate in [GATE, GATE_WITH_INPUT] {
            let status = std::process::Command::new("/bin/sh")
                .args(["-c", gate, "bbb-pod-live-gate", "touch", "ran"])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .status()
                .expect("gate");
            assert_eq!(status.code(), Some(125));
            assert!(!dir.path().join("ran").exists(), "the program ran");
        }
    }

    #[tokio::test]
    async fn a_registered_child_gets_its_arguments_and_no_stdin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let prog = script(dir.path(), "prog", "echo \"$# $*\" > args; cat > stdin");
        sh(&prog)
            .args(["compose", "up", "-d"])
            .dir(dir.path())
            .registered_in(Some(&dir.path().join("reg")))
            .run()
            .await
            .expect("runs");
        let args = fs::read_to_string(dir.path().join("args")).expect("args");
        assert_eq!(args, "3 compose up -d\n");
        let stdin = fs::read_to_string(dir.path().join("stdin")).expect("stdin");
        assert_eq!(stdin, "", "the gate's line reached the program");
    }
}
