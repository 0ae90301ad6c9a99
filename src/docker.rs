//! `docker compose` for a slot: the program from the configuration, the slot
//! directory as working directory, the calls the tick makes (up, down, logs, ps,
//! restart, finishing a recording). Each call goes through [`crate::process`]: stdin
//! closed, output captured, the whole process group killed after the timeout (a hung
//! compose and the children it spawned never hold a tick), and the command with its
//! stderr in the error. No secret is ever on a command line: they are in the compose
//! file.
//!
//! A run killed by SIGKILL cannot kill its children: a compose call it had started
//! lives on in its own process group, and could bring a container up after the next
//! tick undid the start. With a registry ([`Docker::with_registry`]) each call is
//! registered while it runs, and the first command of a later run kills those whose
//! run is gone ([`crate::process::reap`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::compose::STREAMER_SERVICE;
use crate::config::DockerConfig;
use crate::process::{Cmd, Output};

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
        crate::process::reap(dir)
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
        let (program, leading) = self
            .command
            .split_first()
            .ok_or_else(|| anyhow!("docker.command is empty"))?;
        self.reap_orphans();
        let out = Cmd::new(program)
            .args(leading)
            .args(args)
            .dir(dir)
            .timeout(timeout)
            .registered_in(self.registry.as_deref())
            .shown_as(self.describe(args))
            .run()
            .await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

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
}
