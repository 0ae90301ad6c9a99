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
//!
//! Two composes answer `docker.command`: the Python `docker-compose` 1.x (Debian 12's
//! own package, which servers of bbb-pod-live.php run) and the Go plugin 2.x. They take
//! the same commands but not all the same options, and 1.x given an option it lacks
//! prints that command's usage on stderr and **exits 0 having done nothing**
//! (compose/cli/main.py at 1.29.2 turns docopt's exit into status 0). So the flavour is
//! asked once (`version --short`, [`Docker::compose`]), each call is written in its
//! dialect, and an answer that is a usage text is an error, never an empty list.
//! What docker's errors say about its daemon is read here too ([`daemon_trouble`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use tokio::sync::OnceCell;

use crate::compose::STREAMER_SERVICE;
use crate::config::DockerConfig;
use crate::process::{Cmd, Output};
use crate::text::one_line;

/// The two composes (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The Python `docker-compose` 1.x.
    V1,
    /// The Go plugin (`docker compose`) or its standalone binary, 2.x and later.
    V2,
}

/// The compose that answers `docker.command`, from its `version --short`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compose {
    pub flavour: Flavour,
    /// The version as it answered, without a leading `v` (`1.29.2`, `2.24.6`).
    pub version: String,
    major: u32,
    minor: u32,
}

impl Compose {
    /// Reads `version --short`'s answer (`1.29.2`, `v2.24.6`, `2.24.6-desktop.1`).
    pub fn parse(short: &str) -> Option<Compose> {
        let version = short.lines().next()?.trim().trim_start_matches('v');
        let mut numbers = version.split(|c: char| !c.is_ascii_digit());
        let major: u32 = numbers.next()?.parse().ok()?;
        let minor: u32 = numbers.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        Some(Compose {
            flavour: if major < 2 { Flavour::V1 } else { Flavour::V2 },
            version: version.to_owned(),
            major,
            minor,
        })
    }

    /// 1.29 (the last 1.x, Debian 12's) or any 2.x: older 1.x releases lack options
    /// this tool uses and were never tried.
    pub fn supported(&self) -> bool {
        match self.flavour {
            Flavour::V1 => (self.major, self.minor) >= (1, 29),
            Flavour::V2 => true,
        }
    }
}

impl fmt::Display for Compose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.flavour {
            Flavour::V1 => write!(f, "docker-compose {} (compose v1)", self.version),
            Flavour::V2 => write!(f, "Docker Compose {}", self.version),
        }
    }
}

/// The `docker.command` values of the two composes, the plugin first.
const KNOWN_COMMANDS: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];

/// The composes this server has (found on the PATH, answering a supported version)
/// other than `configured`: what `check` suggests when `docker.command` does not run.
pub async fn other_composes(configured: &[String], dir: &Path) -> Vec<(Vec<String>, Compose)> {
    let mut found = Vec::new();
    for candidate in KNOWN_COMMANDS {
        let command: Vec<String> = candidate.iter().map(|w| (*w).to_owned()).collect();
        if command == configured {
            continue;
        }
        let docker = Docker::new(&DockerConfig {
            command: command.clone(),
            timeout: Duration::from_secs(10),
            stop_grace: Duration::ZERO,
        });
        if let Ok(compose) = docker.compose(dir).await
            && compose.supported()
        {
            found.push((command, compose));
        }
    }
    found
}

/// What an error of docker says about its daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonTrouble {
    /// Not running, or its socket is gone.
    Down,
    /// Its socket refuses this user.
    Refused,
}

impl DaemonTrouble {
    /// The admin's words: what is wrong and what to do.
    pub fn advice(self) -> &'static str {
        match self {
            DaemonTrouble::Refused => {
                "the Docker daemon refuses this user (permission denied on its socket); \
                 run bbb-pod-live as root, as cron and the package's timer do"
            }
            DaemonTrouble::Down => {
                "the Docker daemon is not running (the docker command answers, but \
                 \"Cannot connect to the Docker daemon\"): no streamer can start; start it \
                 (systemctl start docker) and enable it at boot (systemctl enable docker)"
            }
        }
    }
}

/// Whether docker's error says that its daemon cannot be reached.
pub fn daemon_trouble(err: &anyhow::Error) -> Option<DaemonTrouble> {
    let text = format!("{err:#}");
    if text.contains("permission denied while trying to connect to the Docker daemon") {
        Some(DaemonTrouble::Refused)
    } else if text.contains("Cannot connect to the Docker daemon")
        // compose v1 (compose/cli/errors.py), whatever the cause.
        || text.contains("Couldn't connect to Docker daemon")
        || text.contains("Is the docker daemon running")
    {
        Some(DaemonTrouble::Down)
    } else {
        None
    }
}

#[derive(Debug, Clone)]
pub struct Docker {
    command: Vec<String>,
    timeout: Duration,
    grace: Duration,
    /// Where running children are registered (see the module comment).
    registry: Option<PathBuf>,
    /// Set once the orphans of earlier runs were reaped by this process.
    reaped: Arc<AtomicBool>,
    /// The flavour, asked once (shared by the clones).
    compose: Arc<OnceCell<Compose>>,
    /// The calls made through this value and its clones (see [`Docker::usage`]).
    usage: Arc<Usage>,
}

/// How the calls of a process went: whether docker was used, and whether it worked.
#[derive(Debug, Default)]
struct Usage {
    calls: AtomicUsize,
    /// A call found the daemon unreachable.
    daemon_trouble: AtomicBool,
}

/// What the calls made so far say of docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    /// No call yet.
    Not,
    /// Calls were made and none found the daemon unreachable.
    Working,
    /// A call found the daemon unreachable.
    Broken,
}

impl Docker {
    pub fn new(cfg: &DockerConfig) -> Docker {
        Docker {
            command: cfg.command.clone(),
            timeout: cfg.timeout,
            grace: cfg.stop_grace,
            registry: None,
            reaped: Arc::new(AtomicBool::new(false)),
            compose: Arc::new(OnceCell::new()),
            usage: Arc::new(Usage::default()),
        }
    }

    /// What the calls made so far (by this value and its clones) say of docker.
    pub fn usage(&self) -> Used {
        if self.usage.daemon_trouble.load(Ordering::SeqCst) {
            Used::Broken
        } else if self.usage.calls.load(Ordering::SeqCst) == 0 {
            Used::Not
        } else {
            Used::Working
        }
    }

    /// Whether docker could start a streamer now, asked without touching a project:
    /// the compose answers a supported version and the daemon answers (`docker info`).
    pub async fn probe(&self, dir: &Path) -> Result<()> {
        let compose = self.compose(dir).await?;
        if !compose.supported() {
            bail!("{compose} answers docker.command, and compose is needed at 1.29 (v1) or 2.x");
        }
        self.engine()
            .run(
                dir,
                &["info", "--format", "{{.ServerVersion}}"],
                Duration::from_secs(60),
            )
            .await
            .map(drop)
    }

    /// The docker engine's own command (image, info), which compose v1 lacks: the
    /// program of `docker.command` when it is `[<docker>, "compose"]`; beside a
    /// `docker-compose`, the `docker` in the same directory, else the one on the PATH.
    fn engine(&self) -> Docker {
        let engine = match self.command.as_slice() {
            [program, sub, ..] if sub == "compose" => program.clone(),
            [program, ..] => Path::new(program)
                .parent()
                .map(|d| d.join("docker"))
                .filter(|d| d.is_file())
                .map_or_else(|| "docker".to_owned(), |d| d.display().to_string()),
            [] => "docker".to_owned(),
        };
        Docker {
            command: vec![engine],
            ..self.clone()
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

    /// Whether docker has `image` locally (`docker image inspect`, by the engine: see
    /// [`Docker::engine`]), for `check`.
    pub async fn image_present(&self, dir: &Path, image: &str) -> Result<bool> {
        match self
            .engine()
            .run(dir, &["image", "inspect", image], Duration::from_secs(60))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if format!("{e:#}").contains("No such image") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The compose that answers `docker.command` (`version --short`), asked once.
    pub async fn compose(&self, dir: &Path) -> Result<Compose> {
        self.compose
            .get_or_try_init(|| async {
                let args = ["version", "--short"];
                let out = self.run(dir, &args, Duration::from_secs(30)).await?;
                Compose::parse(&out.stdout).ok_or_else(|| {
                    anyhow!(
                        "`{}` answered no compose version: {:?}",
                        self.describe(&args),
                        one_line(&out.stdout)
                    )
                })
            })
            .await
            .cloned()
    }

    /// Names of the running services of the slot's project, in the flavour's dialect
    /// (1.x: `ps --services --filter status=running`, where `--services` alone lists
    /// every service of the file; 2.x: `ps --services --status running`).
    pub async fn running_services(&self, dir: &Path) -> Result<Vec<String>> {
        let args: &[&str] = match self.compose(dir).await?.flavour {
            Flavour::V1 => &["ps", "--services", "--filter", "status=running"],
            Flavour::V2 => &["ps", "--services", "--status", "running"],
        };
        let out = self.run(dir, args, Duration::from_secs(60)).await?;
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
        self.usage.calls.fetch_add(1, Ordering::SeqCst);
        let out = Cmd::new(program)
            .args(leading)
            .args(args)
            .dir(dir)
            .timeout(timeout)
            .registered_in(self.registry.as_deref())
            .shown_as(self.describe(args))
            .run()
            .await
            .map_err(anyhow::Error::from)
            .inspect_err(|e| {
                if daemon_trouble(e).is_some() {
                    self.usage.daemon_trouble.store(true, Ordering::SeqCst);
                }
            })?;
        if printed_usage(&out) {
            bail!(
                "`{}` did not understand its options: it printed its usage and did nothing \
                 (is docker.command the compose `bbb-pod-live check` names?)",
                self.describe(args)
            );
        }
        Ok(out)
    }
}

/// Compose 1.x's answer to an option it lacks: the command's usage on stderr, nothing
/// on stdout, exit 0.
fn printed_usage(out: &Output) -> bool {
    out.stdout.trim().is_empty()
        && out
            .stderr
            .lines()
            .any(|l| l.trim_start().starts_with("Usage:"))
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
    #[test]
    fn the_flavour_and_version_are_read_from_version_short() {
        let v1 = Compose::parse("1.29.2\n").expect("1.29.2");
        assert_eq!((v1.flavour, v1.version.as_str()), (Flavour::V1, "1.29.2"));
        assert!(v1.supported());
        assert_eq!(v1.to_string(), "docker-compose 1.29.2 (compose v1)");
        let old = Compose::parse("1.25.0").expect("1.25.0");
        assert!(!old.supported());
        let v2 = Compose::parse("v2.24.6-desktop.1").expect("v2");
        assert_eq!(
            (v2.flavour, v2.version.as_str()),
            (Flavour::V2, "2.24.6-desktop.1")
        );
        assert!(v2.supported());
        assert_eq!(
            Compose::parse("2.0.0").map(|c| c.flavour),
            Some(Flavour::V2)
        );
        assert_eq!(Compose::parse(""), None);
        assert_eq!(Compose::parse("Usage: version [--short]"), None);
    }

    /// A `docker-compose` 1.29 as far as `ps` goes: `--status` is unknown to it (usage,
    /// exit 0), `--services` alone lists every service, `--filter status=running` the
    /// running ones (none here but redis).
    const COMPOSE_1_29: &str = r#"
case "$1" in
  version) echo 1.29.2 ;;
  ps)
    case "$*" in
      *--status*) printf 'List containers.\n\nUsage: ps [options] [--] [SERVICE...]\n' >&2 ;;
      *--filter*status=running*) echo redis ;;
      *) printf 'bbb-streamer\nredis\n' ;;
    esac ;;
esac
exit 0"#;

    #[tokio::test]
    async fn compose_1_29_is_asked_in_its_own_dialect() {
        let (dir, d) = docker_with(COMPOSE_1_29, Duration::from_secs(10));
        let d = Docker {
            command: vec![d.command[0].clone()],
            ..d
        };
        assert_eq!(
            d.running_services(dir.path()).await.expect("ps"),
            vec!["redis".to_owned()]
        );
        assert_eq!(
            d.compose(dir.path()).await.expect("compose").flavour,
            Flavour::V1
        );
    }

    #[tokio::test]
    async fn a_usage_text_with_exit_0_is_an_error_not_an_empty_answer() {
        let (dir, d) = docker_with(
            "printf 'List containers.\n\nUsage: ps [options] [--] [SERVICE...]\n' >&2; exit 0",
            Duration::from_secs(10),
        );
        let e = format!(
            "{:#}",
            d.run(
                dir.path(),
                &["ps", "--status", "running"],
                Duration::from_secs(10)
            )
            .await
            .expect_err("usage")
        );
        assert!(e.contains("did not understand its options"), "{e}");
    }

    #[test]
    fn the_daemon_s_troubles_are_read_from_docker_s_errors() {
        let down = anyhow!(
            "`docker image inspect x` failed (exit status: 1): Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
        );
        assert_eq!(daemon_trouble(&down), Some(DaemonTrouble::Down));
        let refused = anyhow!(
            "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock"
        );
        assert_eq!(daemon_trouble(&refused), Some(DaemonTrouble::Refused));
        assert_eq!(daemon_trouble(&anyhow!("No such image: x")), None);
    }
}
