//! `FakeDocker`: an executable bash script standing in for `docker` (run as
//! `["<script>", "compose", ...]` with the slot directory as cwd). It logs every call,
//! keeps the "container running" state of each project directory, and behaves like the
//! aau-zid streamer on `up -d`: when the compose file sets `BBB_DOWNLOAD_MEETING` to true
//! it writes `videodata/meeting-<YYYYMMDDHHMMSS>.mkv` (container time zone from `TZ`),
//! which an `exec` on the streamer (the SIGINT to ffmpeg) finalizes and a bare `down`
//! does not. Faults (failing, hanging, slow subcommands) are driven through files in its
//! control directory. Only bash builtins and coreutils are used.
//!
//! The running state lives in the control directory, not in the slot directory: real
//! docker leaves nothing in the project directory, and the binary must not see a file it
//! did not write there.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One invocation of the fake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerCall {
    /// Physical working directory of the call (`pwd -P`).
    pub cwd: PathBuf,
    /// Arguments after the program, e.g. `["compose", "up", "-d"]`.
    pub args: Vec<String>,
}

impl DockerCall {
    /// The compose subcommand (`up`, `down`, `exec`, `ps`, `version`...), skipping
    /// `compose` and its global options.
    pub fn subcommand(&self) -> Option<&str> {
        let mut it = self.args.iter().map(String::as_str);
        if it.next()? != "compose" {
            return None;
        }
        while let Some(a) = it.next() {
            match a {
                "-f"
                | "--file"
                | "-p"
                | "--project-name"
                | "--project-directory"
                | "--env-file"
                | "--ansi"
                | "--progress"
                | "--profile"
                | "--parallel" => {
                    it.next();
                }
                a if a.starts_with('-') => {}
                a => return Some(a),
            }
        }
        None
    }

    /// Whether this is `compose <sub> ...`.
    pub fn is(&self, sub: &str) -> bool {
        self.subcommand() == Some(sub)
    }
}

/// What the fake streamer wrote, read back from an mkv file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeMkv {
    pub meeting_id: String,
    pub cwd: PathBuf,
    /// Whether ffmpeg was stopped with SIGINT (an `exec` on the streamer) before `down`.
    pub finalized: bool,
    pub len: u64,
    /// When the streamer began this part (`YYYYMMDDHHMMSS`, its file name's stamp).
    pub started: String,
    /// Unique to this part (the streamer's pid and start in ns): which part a
    /// delivered file is.
    pub part: String,
}

/// Header line of every fake mkv.
pub const MKV_MAGIC: &str = "FAKE-MKV";
/// Trailer appended when the streamer's ffmpeg gets SIGINT.
pub const MKV_TRAILER: &str = "FAKE-MKV finalized by SIGINT";

/// Reads the header and trailer of an mkv written by the fake streamer.
pub fn read_mkv(path: &Path) -> FakeMkv {
    let data = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let text = String::from_utf8_lossy(&data);
    let first = text.lines().next().unwrap_or("");
    assert!(
        first.starts_with(MKV_MAGIC),
        "{} is not a fake mkv: {first:?}",
        path.display()
    );
    let field = |key: &str| {
        first
            .split('\x1f')
            .find_map(|f| f.strip_prefix(key))
            .unwrap_or("")
            .to_string()
    };
    FakeMkv {
        meeting_id: field("meeting_id="),
        cwd: PathBuf::from(field("cwd=")),
        finalized: text.trim_end().ends_with(MKV_TRAILER),
        len: data.len() as u64,
        started: field("started="),
        part: field("part="),
    }
}

/// The fake docker program and its control directory.
pub struct FakeDocker {
    ctl: PathBuf,
    program: PathBuf,
}

impl FakeDocker {
    /// Writes the script as `<dir>/fake-docker/docker` (mode 0755) with its control
    /// directory `<dir>/fake-docker/ctl` baked in.
    pub fn install(dir: &Path) -> FakeDocker {
        let root = dir.join("fake-docker");
        let ctl = root.join("ctl");
        fs::create_dir_all(ctl.join("running")).expect("creating the fake docker directories");
        fs::create_dir_all(ctl.join("pids")).expect("creating the fake docker directories");
        fs::write(ctl.join("calls.log"), "").expect("creating the calls log");
        let ctl = ctl.canonicalize().expect("canonical control directory");
        let program = root.join("docker");
        let ctl_quoted = format!("'{}'", ctl.display().to_string().replace('\'', r"'\''"));
        fs::write(&program, SCRIPT.replace("@CTL@", &ctl_quoted)).expect("writing the fake docker");
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the fake docker");
        FakeDocker { ctl, program }
    }

    /// The script's path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// A `docker.command` value running this fake as Debian 12's `docker-compose`
    /// 1.29 (the Python compose v1): `[<dir>/docker-compose]`, a wrapper calling the
    /// script as `compose`, so its calls read as the others do ([`DockerCall`]). As
    /// 1.29, it answers `version --short` with `1.29.2`; `ps --services` lists every
    /// service of the file unless `--filter status=running`; and an option a command
    /// lacks (`ps --status`, `--format`...) prints that command's usage on stderr and
    /// exits 0 doing nothing. Its `docker image inspect` is the `docker` beside it.
    pub fn compose_v1(&self) -> Vec<String> {
        let wrapper = self.program.with_file_name("docker-compose");
        let program = format!(
            "'{}'",
            self.program.display().to_string().replace('\'', r"'\''")
        );
        fs::write(
            &wrapper,
            format!("#!/usr/bin/env bash\nFAKE_COMPOSE_V1=1 exec {program} compose \"$@\"\n"),
        )
        .expect("writing the fake docker-compose");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))
            .expect("chmod 0755 the fake docker-compose");
        vec![wrapper.display().to_string()]
    }

    /// The `docker.command` value: `[<script>, "compose"]`.
    pub fn command(&self) -> Vec<String> {
        vec![self.program.display().to_string(), "compose".into()]
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<DockerCall> {
        let text = fs::read_to_string(self.ctl.join("calls.log")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|line| {
                let mut fields = line.split('\x1f').map(unescape);
                DockerCall {
                    cwd: PathBuf::from(fields.next().unwrap_or_default()),
                    args: fields.collect(),
                }
            })
            .collect()
    }

    /// The calls made in `dir` (compared after canonicalization).
    pub fn calls_in(&self, dir: &Path) -> Vec<DockerCall> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        self.calls().into_iter().filter(|c| c.cwd == dir).collect()
    }

    /// The subcommands called in `dir`, in order (e.g. `["up", "exec", "down"]`).
    pub fn subcommands_in(&self, dir: &Path) -> Vec<String> {
        self.calls_in(dir)
            .iter()
            .filter_map(|c| c.subcommand().map(str::to_string))
            .collect()
    }

    fn set_counter(&self, name: &str, n: usize) {
        fs::write(self.ctl.join(name), format!("{n}\n")).expect("writing a fake docker counter");
    }

    /// The next `n` `up` calls exit 1 with `Error response from daemon: fake failure`.
    pub fn fail_up(&self, n: usize) {
        self.set_counter("fail_up", n);
    }

    /// The next `n` `down` calls fail.
    pub fn fail_down(&self, n: usize) {
        self.set_counter("fail_down", n);
    }

    /// The next `n` `exec` calls fail.
    pub fn fail_exec(&self, n: usize) {
        self.set_counter("fail_exec", n);
    }

    /// While on, that subcommand (`up`, `down`, `exec`, `ps`...) sleeps for an hour
    /// (the binary must time it out and kill it).
    pub fn hang(&self, cmd: &str, on: bool) {
        let f = self.ctl.join(format!("hang_{cmd}"));
        if on {
            fs::write(f, "").expect("writing a fake docker switch");
        } else {
            let _ = fs::remove_file(f);
        }
    }

    /// While on, that subcommand (`up`, `down`, `exec`) does its work, then sleeps for an
    /// hour before exiting: the effect happened but the caller never hears of it (the
    /// daemon applied the request, the client hung or was killed).
    pub fn hang_after(&self, cmd: &str, on: bool) {
        let f = self.ctl.join(format!("hang_after_{cmd}"));
        if on {
            fs::write(f, "").expect("writing a fake docker switch");
        } else {
            let _ = fs::remove_file(f);
        }
    }

    /// How many `cmd` calls hung before doing anything (see [`FakeDocker::hang`]). A
    /// call is logged before it reaches the hang: wait for this, not for the call's
    /// count, before lifting the hang, or the call may slip through and do its work.
    pub fn hung(&self, cmd: &str) -> usize {
        fs::read_to_string(self.ctl.join("hung.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == cmd)
            .count()
    }

    /// How many `cmd` calls did their work and then hung (see [`FakeDocker::hang_after`]).
    pub fn hung_after(&self, cmd: &str) -> usize {
        fs::read_to_string(self.ctl.join("hung_after.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == cmd)
            .count()
    }

    /// While on, that subcommand (`up`, `down`, `exec`...) is logged, then waits until
    /// the hold is lifted (`on = false`) and acts normally: a test sees the call in
    /// flight and decides when it ends.
    pub fn hold(&self, cmd: &str, on: bool) {
        let f = self.ctl.join(format!("hold_{cmd}"));
        if on {
            fs::write(f, "").expect("writing a fake docker switch");
        } else {
            let _ = fs::remove_file(f);
        }
    }

    /// That subcommand waits `d` then acts normally (`Duration::ZERO` removes the delay).
    pub fn delay(&self, cmd: &str, d: Duration) {
        let f = self.ctl.join(format!("delay_{cmd}"));
        if d.is_zero() {
            let _ = fs::remove_file(f);
        } else {
            fs::write(f, format!("{:.3}\n", d.as_secs_f64())).expect("writing a fake docker delay");
        }
    }

    fn marker(&self, dir: &Path) -> PathBuf {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let key = dir
            .display()
            .to_string()
            .replace('%', "%25")
            .replace('/', "%2F");
        self.ctl.join("running").join(key)
    }

    /// How many `compose <sub>` calls were made, in any directory.
    pub fn count(&self, sub: &str) -> usize {
        self.calls().iter().filter(|c| c.is(sub)).count()
    }

    /// Whether the project in `dir` has its containers up.
    pub fn running(&self, dir: &Path) -> bool {
        self.marker(dir).exists()
    }

    /// Marks the project in `dir` as up without a call (a container left over by a
    /// previous run or started by hand).
    pub fn set_running(&self, dir: &Path, running: bool) {
        let m = self.marker(dir);
        if running {
            fs::write(m, "mkv=\n").expect("writing a running marker");
        } else {
            let _ = fs::remove_file(m);
        }
    }

    /// The mkv files in `<dir>/videodata`, sorted by name (oldest first).
    pub fn mkv_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir.join("videodata"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// A streamer container the fake runs, as the fake BBB and the fake HLS server see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeStreamer {
    /// The slot directory (the compose project).
    pub dir: PathBuf,
    /// `BBB_MEETING_ID` of the compose file: the meeting it joins.
    pub meeting_id: String,
    /// `BBB_USER_NAME` of the compose file (`Live` when unset): its `fullName` there.
    pub user_name: String,
    /// The last path segment of `BBB_STREAM_URL`: its HLS playlist is `<key>.m3u8`.
    pub stream_key: String,
    /// In the meeting's attendee list (off while [`FakeDocker::never_join`] is on).
    pub in_meeting: bool,
    /// Its playlist is served (off while [`FakeDocker::hls_404`] is on).
    pub hls: bool,
    /// Its playlist stands still (while [`FakeDocker::hls_frozen`] is on); otherwise each
    /// request finds one more segment.
    pub hls_frozen: bool,
    /// `BBB_CHAT_NAME` (`Chat` when unset) when `BBB_ENABLE_CHAT` is `true`: its chat
    /// relay is a second attendee of the meeting.
    pub chat_name: Option<String>,
    /// The mkv part it writes (a recording streamer), in the slot's `videodata`.
    pub mkv: Option<PathBuf>,
}

/// What the fake BBB asks the fake dockers (of all servers) for: the streamers running now.
pub type StreamerSource = std::sync::Arc<dyn Fn() -> Vec<FakeStreamer> + Send + Sync>;

impl FakeDocker {
    fn switch(&self, name: &str, on: bool) {
        let f = self.ctl.join(name);
        if on {
            fs::write(f, "").expect("writing a fake docker switch");
        } else {
            let _ = fs::remove_file(f);
        }
    }

    /// While on, no streamer is in its meeting (a BBB release changed its page, a wrong
    /// password): the container runs, the attendee list lacks it.
    pub fn never_join(&self, on: bool) {
        self.switch("never_join", on);
    }

    /// While on, no streamer's playlist is served (the RTMP push never reaches the HLS
    /// server): `GET <key>.m3u8` answers 404.
    pub fn hls_404(&self, on: bool) {
        self.switch("hls_404", on);
    }

    /// While on, every streamer's playlist is served but stands still (the publisher
    /// hung): the same media sequence and segments at every request.
    pub fn hls_frozen(&self, on: bool) {
        self.switch("hls_frozen", on);
    }

    /// While on, `docker image inspect` finds no image (nothing pulled yet).
    pub fn no_images(&self, on: bool) {
        self.switch("no_images", on);
    }

    /// While on, the Docker daemon is down: the client still answers `version` and
    /// `compose version`, every other call fails as docker's does ("Cannot connect to
    /// the Docker daemon …", exit 1).
    pub fn daemon_down(&self, on: bool) {
        self.switch("daemon_down", on);
    }

    /// While `Some(secs)`, a recording streamer writes a real mkv of `secs` seconds
    /// (host `ffmpeg`: mpeg4 video, PCM audio) instead of a fake one; SIGINT leaves it as is.
    pub fn real_mkv(&self, secs: Option<u32>) {
        match secs {
            Some(n) => fs::write(self.ctl.join("real_mkv"), format!("{n}\n"))
                .expect("writing a fake docker switch"),
            None => self.switch("real_mkv", false),
        }
    }

    /// The next `n` `restart` calls fail.
    pub fn fail_restart(&self, n: usize) {
        self.set_counter("fail_restart", n);
    }

    /// The streamer container of the project in `dir` dies (Docker gave up restarting
    /// it, the host rebooted): `ps` lists nothing, it leaves its meeting and its stream.
    pub fn kill_container(&self, dir: &Path) {
        self.set_running(dir, false);
    }

    /// How many times a streamer container started in `dir` (`up` of a project that was
    /// down, or `restart` of one that was up).
    pub fn starts_in(&self, dir: &Path) -> usize {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        fs::read_to_string(self.ctl.join("starts.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| Path::new(l) == dir)
            .count()
    }

    /// The streamers running now, read from the control directory.
    pub fn streamers(&self) -> Vec<FakeStreamer> {
        read_streamers(&self.ctl)
    }

    /// [`FakeDocker::streamers`] as a closure for the fake BBB, which outlives nothing:
    /// once the test directory is gone it sees no streamer.
    pub fn streamer_source(&self) -> StreamerSource {
        let ctl = self.ctl.clone();
        std::sync::Arc::new(move || read_streamers(&ctl))
    }
}

fn read_streamers(ctl: &Path) -> Vec<FakeStreamer> {
    let never_join = ctl.join("never_join").exists();
    let hls_404 = ctl.join("hls_404").exists();
    let hls_frozen = ctl.join("hls_frozen").exists();
    let Ok(rd) = fs::read_dir(ctl.join("running")) else {
        return Vec::new();
    };
    let mut out: Vec<FakeStreamer> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let text = fs::read_to_string(e.path()).ok()?;
            let field = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(unescape)
                    .unwrap_or_default()
            };
            let name = e.file_name().to_string_lossy().into_owned();
            Some(FakeStreamer {
                dir: PathBuf::from(name.replace("%2F", "/").replace("%25", "%")),
                meeting_id: field("meeting_id="),
                user_name: field("user_name="),
                stream_key: field("stream_key="),
                in_meeting: !never_join,
                hls: !hls_404,
                hls_frozen,
                chat_name: Some(field("chat_name=")).filter(|n| !n.is_empty()),
                mkv: Some(field("mkv="))
                    .filter(|m| !m.is_empty())
                    .map(PathBuf::from),
            })
        })
        .filter(|s| !s.meeting_id.is_empty())
        .collect();
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    out
}

impl FakeDocker {
    /// PIDs of fake docker processes still running (e.g. a hung `up` the binary did not
    /// kill), with their arguments. Checked against /proc so a stale entry (a process
    /// killed with SIGKILL) is never reported.
    pub fn live_processes(&self) -> Vec<(u32, String)> {
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(self.ctl.join("pids")) else {
            return out;
        };
        for e in rd.filter_map(Result::ok) {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if self.is_ours(pid) {
                let args = fs::read_to_string(e.path()).unwrap_or_default();
                out.push((pid, args.trim_end().to_string()));
            } else {
                let _ = fs::remove_file(e.path());
            }
        }
        out.sort();
        out
    }

    /// Whether `pid` is a live process running this fake's script (not a recycled PID).
    fn is_ours(&self, pid: u32) -> bool {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let program = self.program.display().to_string();
        cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == program.as_bytes())
    }
}

impl Drop for FakeDocker {
    /// Kills, by PID, the fake docker processes this test left running (hung ones).
    fn drop(&mut self) {
        for (pid, _) in self.live_processes() {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn unescape(field: &str) -> String {
    field
        .replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%1F", "\x1f")
        .replace("%25", "%")
}

const SCRIPT: &str = r#"#!/usr/bin/env bash
# Fake `docker` for the bbb-pod-live integration tests (tests/it/support/docker.rs).
set -u
CTL=@CTL@
LOG="$CTL/calls.log"
LOCK="$CTL/lock"

lock() {
  local i=0
  until mkdir "$LOCK" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 2000 ]; then rmdir "$LOCK" 2>/dev/null; i=0; fi
    sleep 0.005
  done
}
unlock() { rmdir "$LOCK" 2>/dev/null; }

esc() {
  local s=$1
  s=${s//%/%25}; s=${s//$'\n'/%0A}; s=${s//$'\r'/%0D}; s=${s//$'\x1f'/%1F}
  REPLY=$s
}

# Sleep without a child process, so killing this process leaves nothing behind.
pause() { read -r -t "$1" _ <> <(:) || true; }

# Registered while alive, so the harness can find (and, at the end, kill) leftovers.
printf '%s\n' "$*" > "$CTL/pids/$$" 2>/dev/null
trap 'rm -f "$CTL/pids/$$"' EXIT

cwd=$(pwd -P)
esc "$cwd"; line=$REPLY
for a in "$@"; do esc "$a"; line+=$'\x1f'"$REPLY"; done
lock; printf '%s\n' "$line" >> "$LOG"; unlock

# take NAME: consume one unit of the fault counter NAME; success if there was one.
take() {
  local f="$CTL/$1" n=0
  lock
  if [ -f "$f" ]; then read -r n < "$f" || n=0; fi
  if [ "${n:-0}" -gt 0 ] 2>/dev/null; then
    printf '%s\n' "$((n - 1))" > "$f"; unlock; return 0
  fi
  unlock; return 1
}

slow() {
  while [ -f "$CTL/hold_$1" ]; do pause 0.02; done
  if [ -f "$CTL/hang_$1" ]; then
    lock; printf '%s\n' "$1" >> "$CTL/hung.log"; unlock
    pause 3600
  fi
  if [ -f "$CTL/delay_$1" ]; then local d; read -r d < "$CTL/delay_$1"; pause "$d"; fi
}

# after CMD: the work of CMD is done; hang here if asked to.
after() {
  if [ -f "$CTL/hang_after_$1" ]; then
    lock; printf '%s\n' "$1" >> "$CTL/hung_after.log"; unlock
    pause 3600
  fi
}

key=${cwd//%/%25}; key=${key//\//%2F}
RUN="$CTL/running/$key"

# Run as `docker-compose` (FakeDocker::compose_v1): the Python compose 1.29.
V1=${FAKE_COMPOSE_V1:-}

if [ -f "$CTL/daemon_down" ]; then
  case "$*" in
    version|--version|-v|"compose version"*|"compose --version"*) ;;
    *)
      if [ -n "$V1" ]; then
        printf "Couldn't connect to Docker daemon at http+docker://localhost - is it running?\n\nIf it's at a non-standard location, specify the URL with the DOCKER_HOST environment variable.\n" >&2
      else
        echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
      fi
      exit 1 ;;
  esac
fi

if [ "${1:-}" != compose ]; then
  case "${1:-}" in
    version|--version|-v) echo "Docker version 99.0.0-fake, build fake"; exit 0 ;;
    # `docker info --format {{.ServerVersion}}`: the daemon answers (see daemon_down).
    info) echo "99.0.0-fake"; exit 0 ;;
    image)
      # `docker image inspect NAME...`: present unless the test removed the images.
      if [ "${2:-}" = inspect ]; then
        shift 2
        while [ $# -gt 0 ] && [[ $1 == -* ]]; do
          case "$1" in -f|--format) shift 2 ;; *) shift ;; esac
        done
        if [ -f "$CTL/no_images" ]; then
          echo "Error response from daemon: No such image: ${1:-}" >&2
          exit 1
        fi
        printf '[{"Id":"sha256:%s","RepoTags":["%s"]}]\n' "$(printf '%s' "${1:-}" | sha256sum | cut -c1-64)" "${1:-}"
        exit 0
      fi ;;
  esac
  echo "docker: '${1:-}' is not a docker command." >&2
  echo "See 'docker --help'" >&2
  exit 1
fi
shift

files=()
project=""
while [ $# -gt 0 ]; do
  case "$1" in
    -f|--file) files+=("${2:-}"); shift 2 ;;
    --file=*) files+=("${1#*=}"); shift ;;
    -p|--project-name) project=${2:-}; shift 2 ;;
    --project-name=*) project=${1#*=}; shift ;;
    --project-directory|--env-file|--ansi|--progress|--profile|--parallel) shift 2 ;;
    --*=*|--dry-run|--compatibility) shift ;;
    -*) echo "unknown flag: $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
cmd=${1:-}
[ $# -gt 0 ] && shift

if [ -z "$project" ]; then
  project=${cwd##*/}; project=${project,,}; project=${project//[^a-z0-9_-]/}
fi

# v1_usage CMD ARGS...: compose 1.29 given an option its CMD lacks prints that
# command's usage on stderr and exits 0 having done nothing (its main.py turns docopt's
# exit into status 0). Only the options of the commands bbb-pod-live calls are known.
v1_usage() {
  local c=$1 a known; shift
  case "$c" in
    version) known=" --short " ;;
    up) known=" -d --detach --no-color --quiet-pull --no-deps --force-recreate --no-recreate --no-build --no-start --build --remove-orphans -t --timeout " ;;
    down) known=" --rmi -v --volumes --remove-orphans -t --timeout " ;;
    exec) known=" -d --detach --privileged -u --user -T --index -e --env -w --workdir " ;;
    ps) known=" -q --quiet --services --filter -a --all " ;;
    logs) known=" --no-color -f --follow -t --timestamps --tail --no-log-prefix " ;;
    restart|stop) known=" -t --timeout " ;;
    *) return 1 ;;
  esac
  for a in "$@"; do
    case "$a" in
      -*) [[ $known == *" ${a%%=*} "* ]] || { v1_print_usage "$c"; return 0; } ;;
      *) [ "$c" = exec ] && break ;;
    esac
  done
  return 1
}
v1_print_usage() {
  if [ "$1" = ps ]; then
    printf '%s\n' "List containers." "" "Usage: ps [options] [--] [SERVICE...]" "" "Options:" \
      "    -q, --quiet          Only display IDs" "    --services           Display services" \
      "    --filter KEY=VAL     Filter services by a property" \
      "    -a, --all            Show all stopped containers (including those created by the run command)" >&2
  else
    printf '%s\n' "Usage: $1 [options] [--] [SERVICE...]" >&2
  fi
}
if [ -n "$V1" ] && v1_usage "$cmd" "$@"; then exit 0; fi

compose_file() {
  if [ ${#files[@]} -gt 0 ]; then REPLY=${files[0]}; [ -f "$REPLY" ] && return 0
    echo "open $cwd/$REPLY: no such file or directory" >&2; return 1; fi
  local f
  for f in compose.yaml compose.yml docker-compose.yaml docker-compose.yml; do
    if [ -f "$f" ]; then REPLY=$f; return 0; fi
  done
  echo "no configuration file provided: not found" >&2
  return 1
}

# env_value NAME FILE: the value of NAME in the compose file (mapping or list form).
env_value() {
  local name=$1 file=$2 l v q="[\"']?"
  local re="^[[:space:]]*-?[[:space:]]*${q}${name}${q}[[:space:]]*[:=][[:space:]]*(.*)$"
  REPLY=""
  while IFS= read -r l || [ -n "$l" ]; do
    if [[ $l =~ $re ]]; then
      v=${BASH_REMATCH[1]}
      v=${v%$'\r'}
      if [[ $v == \"* ]]; then v=${v#\"}; v=${v%%\"*}
      elif [[ $v == \'* ]]; then v=${v#\'}; v=${v%%\'*}
      else v=${v%%[[:space:]]#*}; v=${v%\"}; v=${v%\'}; v=${v%"${v##*[![:space:]]}"}
      fi
      REPLY=$v
      return 0
    fi
  done < "$file"
  return 1
}

container_id() {
  local s
  s=$(printf '%s/%s' "$cwd" "$1" | sha256sum)
  REPLY=${s%% *}
}

# start_streamer FILE: the streamer container starts from the compose file FILE: a new
# mkv part when it records, and the running marker with what the fake BBB (attendee
# fullName in its meeting) and the fake HLS server (the stream key's playlist) read.
start_streamer() {
  local file=$1 mkv="" meeting_id user_name=Live chat_name="" stream_url tz=UTC download=false epoch stamp
  env_value BBB_MEETING_ID "$file"; meeting_id=$REPLY
  if env_value BBB_USER_NAME "$file" && [ -n "$REPLY" ]; then user_name=$REPLY; fi
  if env_value BBB_ENABLE_CHAT "$file" && [ "$REPLY" = true ]; then
    chat_name=Chat
    if env_value BBB_CHAT_NAME "$file" && [ -n "$REPLY" ]; then chat_name=$REPLY; fi
  fi
  env_value BBB_STREAM_URL "$file"; stream_url=$REPLY
  if env_value TZ "$file" && [ -n "$REPLY" ]; then tz=$REPLY; fi
  if env_value BBB_DOWNLOAD_MEETING "$file" && [ "$REPLY" = true ]; then download=true; fi
  mkdir -p videodata
  if [ "$download" = true ]; then
    epoch=$(date +%s)
    while :; do
      stamp=$(TZ=$tz date -d "@$epoch" +%Y%m%d%H%M%S)
      [ -e "videodata/meeting-$stamp.mkv" ] || break
      epoch=$((epoch + 1))
    done
    mkv="$cwd/videodata/meeting-$stamp.mkv"
    if [ -f "$CTL/real_mkv" ]; then
      # A real recording (the join tests): N seconds of test picture and tone.
      local secs; read -r secs < "$CTL/real_mkv"
      ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc=duration=$secs:size=160x120:rate=10" \
        -f lavfi -i "sine=duration=$secs" -c:v mpeg4 -c:a pcm_s16le "$mkv" || exit 1
    else
      {
        printf 'FAKE-MKV\x1fmeeting_id=%s\x1fcwd=%s\x1fstarted=%s\x1fpart=%s\n' "$meeting_id" "$cwd" "$stamp" "$$-$(date +%s%N)"
        head -c 102400 /dev/zero | tr '\0' 'M'
        printf '\n'
      } > "$mkv"
    fi
  fi
  esc "$meeting_id"; meeting_id=$REPLY
  esc "$user_name"; user_name=$REPLY
  esc "$chat_name"; chat_name=$REPLY
  esc "${stream_url##*/}"
  printf 'mkv=%s\nmeeting_id=%s\nuser_name=%s\nchat_name=%s\nstream_key=%s\n' "$mkv" "$meeting_id" "$user_name" "$chat_name" "$REPLY" > "$RUN"
  lock; printf '%s\n' "$cwd" >> "$CTL/starts.log"; unlock
}

case "$cmd" in
  version)
    if [ -n "$V1" ]; then
      if [ "${1:-}" = --short ]; then echo "1.29.2"; else
        printf '%s\n' "docker-compose version 1.29.2, build unknown" "docker-py version: 5.0.3" \
          "CPython version: 3.11.2" "OpenSSL version: OpenSSL 3.0.11 19 Sep 2023"
      fi
      exit 0
    fi
    case "${1:-}" in
      --short) echo "2.99.0-fake" ;;
      --format|-f) echo '{"version":"v2.99.0-fake"}' ;;
      *) echo "Docker Compose version v2.99.0-fake" ;;
    esac
    exit 0 ;;

  up)
    detach=0
    for a in "$@"; do case "$a" in -d|--detach) detach=1 ;; esac; done
    slow up
    compose_file || exit 1
    file=$REPLY
    if take fail_up; then
      echo "Error response from daemon: fake failure" >&2
      exit 1
    fi
    if [ -f "$RUN" ]; then
      printf ' Container %s-redis-1  Running\n Container %s-bbb-streamer-1  Running\n' "$project" "$project" >&2
    else
      start_streamer "$file"
      printf ' Network %s_default  Created\n Container %s-redis-1  Started\n Container %s-bbb-streamer-1  Started\n' "$project" "$project" "$project" >&2
    fi
    after up
    if [ "$detach" = 0 ]; then
      # Attached: compose streams the logs until the containers stop.
      echo "Attaching to $project-bbb-streamer-1, $project-redis-1"
      pause 3600
    fi
    exit 0 ;;

  exec)
    while [ $# -gt 0 ]; do
      case "$1" in
        -T|--no-TTY|-d|--detach|--privileged|-i|--interactive|-t|--tty) shift ;;
        -u|--user|-w|--workdir|-e|--env|--index) shift 2 ;;
        --*=*) shift ;;
        *) break ;;
      esac
    done
    service=${1:-}
    slow exec
    if take fail_exec; then
      echo "Error response from daemon: fake failure" >&2
      exit 1
    fi
    case "$service" in
      bbb-streamer|redis) ;;
      *) echo "service \"$service\" is not running" >&2; exit 1 ;;
    esac
    if [ ! -f "$RUN" ]; then
      echo "service \"$service\" is not running" >&2
      exit 1
    fi
    if [ "$service" = bbb-streamer ]; then
      mkv=""
      while IFS= read -r l; do case "$l" in mkv=*) mkv=${l#mkv=} ;; esac; done < "$RUN"
      if [ -n "$mkv" ] && [ -f "$mkv" ] && [ "$(head -c 8 "$mkv")" = FAKE-MKV ]; then
        tail_text=$(tail -c 64 "$mkv")
        if [[ $tail_text != *"FAKE-MKV finalized by SIGINT"* ]]; then
          printf 'FAKE-MKV finalized by SIGINT\n' >> "$mkv"
        fi
      fi
    fi
    after exec
    exit 0 ;;

  down|stop|kill|rm)
    slow "$cmd"
    if [ "$cmd" = down ] && take fail_down; then
      echo "Error response from daemon: fake failure" >&2
      exit 1
    fi
    if [ -f "$RUN" ]; then
      rm -f "$RUN"
      printf ' Container %s-bbb-streamer-1  Stopped\n Container %s-bbb-streamer-1  Removed\n Container %s-redis-1  Removed\n Network %s_default  Removed\n' "$project" "$project" "$project" "$project" >&2
    fi
    after "$cmd"
    exit 0 ;;

  ps)
    slow ps
    services=0; quiet=0; format=table; running_only=0
    while [ $# -gt 0 ]; do
      case "$1" in
        --services) services=1; shift ;;
        -q|--quiet) quiet=1; shift ;;
        --format) format=${2:-table}; shift 2 ;;
        --format=*) format=${1#*=}; shift ;;
        --status) shift 2 ;;
        --filter) [ "${2:-}" = status=running ] && running_only=1; shift 2 ;;
        --filter=status=running) running_only=1; shift ;;
        *) shift ;;
      esac
    done
    if [ -n "$V1" ] && [ "$services" = 1 ] && [ "${running_only:-0}" = 0 ]; then
      # 1.29's `--services` lists the services of the file, running or not.
      printf 'bbb-streamer\nredis\n'
    elif [ -f "$RUN" ]; then
      if [ "$services" = 1 ]; then
        printf 'bbb-streamer\nredis\n'
      elif [ "$quiet" = 1 ]; then
        container_id bbb-streamer; echo "$REPLY"; container_id redis; echo "$REPLY"
      elif [ "$format" = json ]; then
        for s in bbb-streamer redis; do
          container_id "$s"
          printf '{"Command":"\\"sh docker-entrypoint.sh\\"","ExitCode":0,"Health":"","ID":"%s","Image":"fake","Name":"%s-%s-1","Project":"%s","Publishers":[],"Service":"%s","State":"running","Status":"Up 2 minutes"}\n' "$REPLY" "$project" "$s" "$project" "$s"
        done
      else
        printf '%-40s %-45s %-26s %-14s %-16s %-14s %s\n' NAME IMAGE COMMAND SERVICE CREATED STATUS PORTS
        printf '%-40s %-45s %-26s %-14s %-16s %-14s %s\n' "$project-bbb-streamer-1" "aauzid/bigbluebutton-livestreaming:latest" '"sh docker-entrypoint…"' bbb-streamer "2 minutes ago" "Up 2 minutes" ""
        printf '%-40s %-45s %-26s %-14s %-16s %-14s %s\n' "$project-redis-1" "redis:7" '"docker-entrypoint.s…"' redis "2 minutes ago" "Up 2 minutes" "6379/tcp"
      fi
    elif [ "$services" = 0 ] && [ "$quiet" = 0 ] && [ "$format" = table ]; then
      printf '%-40s %-45s %-26s %-14s %-16s %-14s %s\n' NAME IMAGE COMMAND SERVICE CREATED STATUS PORTS
    fi
    exit 0 ;;

  logs)
    stamps=0
    for a in "$@"; do case "$a" in -t|--timestamps) stamps=1 ;; esac; done
    if [ -f "$RUN" ]; then
      meeting_id=""
      while IFS= read -r l; do case "$l" in meeting_id=*) meeting_id=${l#meeting_id=} ;; esac; done < "$RUN"
      for line in "fake streamer log line" "joining meeting $meeting_id" "ffmpeg: frame=  100 fps=25"; do
        if [ "$stamps" = 1 ]; then
          echo "$project-bbb-streamer-1  | $(date -u +%Y-%m-%dT%H:%M:%S.000000000Z) $line"
        else
          echo "$project-bbb-streamer-1  | $line"
        fi
      done
    fi
    exit 0 ;;

  restart)
    # The services restart in place: the streamer runs again from the start (a new
    # mkv part, a new join, a new RTMP push); a project that is down stays down.
    slow restart
    if take fail_restart; then
      echo "Error response from daemon: fake failure" >&2
      exit 1
    fi
    if [ -f "$RUN" ]; then
      compose_file || exit 1
      start_streamer "$REPLY"
      printf ' Container %s-bbb-streamer-1  Restarting\n Container %s-bbb-streamer-1  Started\n' "$project" "$project" >&2
    fi
    after restart
    exit 0 ;;

  pull|create|start|pause|unpause|top|images|port|events)
    exit 0 ;;

  config)
    compose_file || exit 1
    cat "$REPLY"
    exit 0 ;;

  *)
    echo "unknown docker command: \"compose $cmd\"" >&2
    exit 1 ;;
esac
"#;
