//! The one place that runs `docker compose`: the program from the configuration,
//! the slot directory as working directory, stdin closed, output captured, a
//! timeout after which the whole process group is killed (a hung compose and the
//! children it spawned never hold a tick), and the command with its stderr in
//! the error. No secret is ever on a command line: they are in the compose file.
//!
//! A run killed by SIGKILL cannot kill its children: a compose call it had started
//! lives on in its own process group, and could bring a container up after the next
//! tick undid the start. Each child is therefore registered in a directory (one file
//! per child: our pid and start time, the child's start time) while it runs, and the
//! first command of a later run kills the process group of every registered child
//! whose owner is gone (the start times guard against recycled PIDs).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::compose::STREAMER_SERVICE;
use crate::config::DockerConfig;

/// The gate a registered child passes before it runs the program (see `Docker::run`):
/// one line on stdin opens it; then stdin is `/dev/null`, as for an unregistered call.
const GATE: &str = "read -r _ || exit 125; exec \"$@\" </dev/null";

/// At most this much of a command's stderr goes into an error message.
const STDERR_TAIL: usize = 2000;

#[derive(Debug, Clone)]
pub struct Docker {
    command: Vec<String>,
    timeout: Duration,
    grace: Duration,
    /// Where running children are registered (see the module comment).
    registry: Option<PathBuf>,
    /// Set once the orphans of earlier runs were reaped by this process.
    reaped: Arc<AtomicBool>,
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Docker {
    pub fn new(cfg: &DockerConfig) -> Docker {
        Docker {
            command: cfg.command.clone(),
            timeout: cfg.timeout,
            grace: cfg.stop_grace,
            registry: None,
            reaped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Registers running children in `dir` (created when needed) and reaps the
    /// orphans of killed runs found there before the first command.
    pub fn with_registry(mut self, dir: PathBuf) -> Docker {
        self.registry = Some(dir);
        self
    }

    /// Kills the process groups of compose calls whose bbb-pod-live run died (once
    /// per process; also done before the first command). Returns the killed PIDs.
    pub fn reap_orphans(&self) -> Vec<u32> {
        if self.reaped.swap(true, Ordering::SeqCst) {
            return Vec::new();
        }
        let Some(dir) = &self.registry else {
            return Vec::new();
        };
        reap(dir)
    }

    /// `docker compose up -d` in the slot directory.
    pub async fn up(&self, dir: &Path) -> Result<()> {
        self.run(dir, &["up", "-d"], self.timeout).await.map(drop)
    }

    /// `docker compose down` in the slot directory.
    pub async fn down(&self, dir: &Path) -> Result<()> {
        self.run(dir, &["down"], self.timeout).await.map(drop)
    }

    /// Asks ffmpeg in the streamer to finish its files (SIGINT) and waits up to the
    /// grace period for it to exit. `docker compose stop` would SIGTERM the
    /// container's PID 1, a shell that ignores it, and the mkv would be cut without
    /// its index. The script scans /proc because the image may lack pkill.
    pub async fn finish_recording(&self, dir: &Path) -> Result<()> {
        let grace = self.grace.as_secs();
        let script = format!(
            "ffmpeg_pids() {{ for p in /proc/[0-9]*; do \
               [ \"$(cat \"$p/comm\" 2>/dev/null)\" = ffmpeg ] && echo \"${{p#/proc/}}\"; done; }}; \
             for pid in $(ffmpeg_pids); do kill -INT \"$pid\"; done; \
             i=0; while [ \"$i\" -lt {grace} ] && [ -n \"$(ffmpeg_pids)\" ]; do sleep 1; i=$((i+1)); done"
        );
        let limit = self.grace + Duration::from_secs(30);
        self.run(
            dir,
            &["exec", "-T", STREAMER_SERVICE, "sh", "-c", &script],
            limit,
        )
        .await
        .map(drop)
    }

    /// `docker compose restart bbb-streamer`: the streamer runs again from the start
    /// in the same container (same compose file, same stream key); redis stays up.
    pub async fn restart_streamer(&self, dir: &Path) -> Result<()> {
        self.run(dir, &["restart", STREAMER_SERVICE], self.timeout)
            .await
            .map(drop)
    }

    /// The streamer's own log with timestamps (`docker compose logs`).
    pub async fn logs(&self, dir: &Path) -> Result<String> {
        let out = self
            .run(
                dir,
                &["logs", "--no-color", "--timestamps", STREAMER_SERVICE],
                Duration::from_secs(120),
            )
            .await?;
        Ok(out.stdout)
    }

    /// Whether docker has `image` locally (`docker image inspect`), for `check`: the
    /// engine is the program of `docker.command` when it is `[<docker>, "compose"]`,
    /// else `docker` (the old `docker-compose` has no image command).
    pub async fn image_present(&self, dir: &Path, image: &str) -> Result<bool> {
        let engine = match self.command.as_slice() {
            [program, sub, ..] if sub == "compose" => program.clone(),
            _ => "docker".to_owned(),
        };
        let inspect = Docker {
            command: vec![engine],
            ..self.clone()
        };
        match inspect
            .run(dir, &["image", "inspect", image], Duration::from_secs(60))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if format!("{e:#}").contains("No such image") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `docker compose version`, for `check`.
    pub async fn version(&self, dir: &Path) -> Result<String> {
        let out = self.run(dir, &["version"], Duration::from_secs(30)).await?;
        Ok(out.stdout.trim().to_owned())
    }

    /// Names of the running services of the slot's project (`ps --services --status running`).
    pub async fn running_services(&self, dir: &Path) -> Result<Vec<String>> {
        let out = self
            .run(
                dir,
                &["ps", "--services", "--status", "running"],
                Duration::from_secs(60),
            )
            .await?;
        Ok(out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// The command line as text, for logs and errors.
    fn describe(&self, args: &[&str]) -> String {
        let mut words: Vec<&str> = self.command.iter().map(String::as_str).collect();
        words.extend(args.iter().copied().take(4));
        let mut s = words.join(" ");
        if args.len() > 4 {
            s.push_str(" …");
        }
        s
    }

    async fn run(&self, dir: &Path, args: &[&str], timeout: Duration) -> Result<Output> {
        let what = self.describe(args);
        let (program, leading) = self
            .command
            .split_first()
            .ok_or_else(|| anyhow!("docker.command is empty"))?;
        tracing::debug!(command = %what, dir = %dir.display(), timeout_secs = timeout.as_secs(), "running");
        self.reap_orphans();
        let started = Instant::now();
        // With a registry, the child waits at a gate (a shell reading one line) until
        // its entry is written, then execs the program: a run killed between the spawn
        // and the registration leaves no unregistered call (the gate reads EOF and exits).
        let mut command = match &self.registry {
            Some(_) => {
                let mut c = Command::new("/bin/sh");
                c.args(["-c", GATE, "bbb-pod-live-gate", program])
                    .stdin(Stdio::piped());
                c
            }
            None => {
                let mut c = Command::new(program);
                c.stdin(Stdio::null());
                c
            }
        };
        let mut child = command
            .args(leading)
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so that a timeout kills compose and everything it started.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting `{what}` in {}", dir.display()))?;
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        // Dropped unfinished (the tick interrupted by SIGTERM): kill the whole group, as
        // on a timeout; `kill_on_drop` alone would leave compose's children running.
        let mut group = GroupKill(pgid);
        let _registered = match (&self.registry, child.id()) {
            (Some(dir), Some(pid)) => Registered::new(dir, pid),
            _ => None,
        };
        if let Some(mut gate) = child.stdin.take() {
            // A child already gone shows in its exit status below.
            let _ = gate.write_all(b"go\n").await;
        }
        let mut stdout = child.stdout.take().context("stdout was piped")?;
        let mut stderr = child.stderr.take().context("stderr was piped")?;
        let work = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (r1, r2, status) = tokio::join!(
                stdout.read_to_end(&mut out),
                stderr.read_to_end(&mut err),
                child.wait()
            );
            r1.and(r2).context("reading the command's output")?;
            let status = status.context("waiting for the command")?;
            anyhow::Ok((status, out, err))
        };
        let result = tokio::time::timeout(timeout, work).await;
        if result.is_ok() {
            group.0 = None;
        }
        let (status, out, err) = match result {
            Ok(r) => r.with_context(|| format!("`{what}` in {}", dir.display()))?,
            Err(_) => {
                if let Some(pgid) = pgid {
                    // The group may already be gone; nothing else to do then.
                    let _ = killpg(pgid, Signal::SIGKILL);
                }
                bail!(
                    "`{what}` in {} did not finish within {}s and was killed",
                    dir.display(),
                    timeout.as_secs()
                );
            }
        };
        let stdout = String::from_utf8_lossy(&out).into_owned();
        let stderr = String::from_utf8_lossy(&err).into_owned();
        tracing::debug!(
            command = %what,
            dir = %dir.display(),
            status = %status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "finished"
        );
        if !status.success() {
            bail!(
                "`{what}` in {} failed ({status}): {}",
                dir.display(),
                one_line(tail(stderr.trim(), STDERR_TAIL))
            );
        }
        Ok(Output { stdout, stderr })
    }
}

/// The process group of a `docker compose` call, killed if the call is dropped before
/// it finished (the group leader is ours, so the id cannot have been reused yet).
struct GroupKill(Option<Pid>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            // The group may already be gone; nothing else to do then.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// A child's entry in the registry, removed when the call ends (any way but SIGKILL).
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
                tracing::debug!("registering docker child {child} in {}: {e}", dir.display());
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

/// Kills the registered children whose owner died; forgets every stale entry.
fn reap(dir: &Path) -> Vec<u32> {
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
                // A call of a run still going (e.g. `check` beside a tick).
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

/// The last `max` bytes of `s`, on a character boundary.
/// The non-blank lines of `s` joined with ` | `: one log line, one line in `check`.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn docker_with(script: &str, timeout: Duration) -> (tempfile::TempDir, Docker) {
        let dir = tempfile::tempdir().expect("tempdir");
        let prog = dir.path().join("fake-docker");
        std::fs::write(&prog, format!("#!/bin/sh\n{script}\n")).expect("write");
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let d = Docker::new(&DockerConfig {
            command: vec![prog.display().to_string(), "compose".into()],
            timeout,
            stop_grace: Duration::from_secs(0),
        });
        (dir, d)
    }

    #[tokio::test]
    async fn runs_in_the_slot_directory_with_the_configured_program() {
        let (dir, d) = docker_with(
            "pwd > called; echo \"$@\" >> called",
            Duration::from_secs(10),
        );
        d.up(dir.path()).await.expect("up");
        let called = std::fs::read_to_string(dir.path().join("called")).expect("read");
        let cwd = std::fs::canonicalize(dir.path()).expect("canon");
        assert_eq!(called, format!("{}\ncompose up -d\n", cwd.display()));
    }

    #[tokio::test]
    async fn failure_carries_the_command_and_its_stderr() {
        let (dir, d) = docker_with("echo 'no such image' >&2; exit 3", Duration::from_secs(10));
        let e = format!("{:#}", d.down(dir.path()).await.expect_err("fails"));
        assert!(
            e.contains("compose down") && e.contains("no such image") && e.contains('3'),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_hung_command_is_killed_with_its_children() {
        let (dir, d) = docker_with(
            "sleep 300 & echo $! > child; wait",
            Duration::from_millis(500),
        );
        // Only the timeout path says "did not finish": no wall-clock bound needed.
        let e = format!("{:#}", d.up(dir.path()).await.expect_err("times out"));
        assert!(e.contains("did not finish") && e.contains("killed"), "{e}");
        let child: i32 = std::fs::read_to_string(dir.path().join("child"))
            .expect("child pid")
            .trim()
            .parse()
            .expect("pid");
        // The grandchild was in the killed process group.
        let deadline = Instant::now() + Duration::from_secs(5);
        let alive = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| {
                    !stat
                        .rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false)
        };
        while alive(child) {
            assert!(Instant::now() < deadline, "child {child} survived");
            std::thread::sleep(Duration::from_millis(50));
        }
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
            std::fs::write(
                dir.path().join(child.id().to_string()),
                format!("{owner} {owner_start} {start}\n"),
            )
            .expect("entry");
        };
        entry(&orphan, dead_owner, 1);
        let me = std::process::id();
        entry(&ours, me, start_time(me).expect("own start time"));
        std::fs::write(dir.path().join("4194999"), "garbage").expect("entry");

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
    async fn a_call_is_registered_while_it_runs_only() {
        // The working directory of the call is the slot directory: `reg` is under it.
        // The call is registered just after it was spawned: the script waits for that
        // (up to 5 s) instead of racing it.
        let (dir, d) = docker_with(
            "for i in $(seq 100); do [ -n \"$(ls reg 2>/dev/null)\" ] && break; sleep 0.05; done; ls reg > seen",
            Duration::from_secs(10),
        );
        let reg = dir.path().join("reg");
        let d = d.with_registry(reg.clone());
        d.up(dir.path()).await.expect("up");
        let seen = std::fs::read_to_string(dir.path().join("seen")).expect("seen");
        assert_eq!(
            seen.lines().count(),
            1,
            "registered while running: {seen:?}"
        );
        assert_eq!(
            std::fs::read_dir(&reg).expect("reg").count(),
            0,
            "left registered"
        );
    }

    #[test]
    fn the_gate_runs_nothing_when_its_run_died_before_opening_it() {
        // A run killed before it registered its child closes the gate's stdin unopened.
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", GATE, "bbb-pod-live-gate", "touch", "ran"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .status()
            .expect("gate");
        assert_eq!(status.code(), Some(125));
        assert!(!dir.path().join("ran").exists(), "the program ran");
    }

    #[tokio::test]
    async fn a_registered_call_gets_its_arguments_and_no_stdin() {
        let (dir, d) = docker_with(
            "echo \"$# $*\" > args; cat > stdin",
            Duration::from_secs(10),
        );
        let d = d.with_registry(dir.path().join("reg"));
        d.up(dir.path()).await.expect("up");
        let args = std::fs::read_to_string(dir.path().join("args")).expect("args");
        assert_eq!(args, "3 compose up -d\n");
        let stdin = std::fs::read_to_string(dir.path().join("stdin")).expect("stdin");
        assert_eq!(stdin, "", "the gate's line reached the program");
    }

    #[test]
    fn stderr_is_shown_on_one_line() {
        assert_eq!(
            one_line("docker: unknown command\n\nRun 'docker --help'\n"),
            "docker: unknown command | Run 'docker --help'"
        );
    }

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("ééé", 3), "é");
    }
}
