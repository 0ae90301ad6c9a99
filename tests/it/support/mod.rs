//! The harness: fakes of every service bbb-pod-live talks to, and `TestEnv`, which starts
//! them, writes a configuration pointing at them in a temporary directory and runs the
//! real binary with a scrubbed environment (ripgrep's `tests/util.rs`, just's
//! `tests/test.rs`). Each fake stops when dropped; so does the whole environment.
//!
//! - `pod::FakePod`     — Pod's REST API (Django REST Framework behaviour, both versions)
//! - `bbb::FakeBbb`     — BigBlueButton / Scalelite API (checksums, getMeetings XML, failures)
//! - `smtp::SmtpSink`   — an SMTP relay that stores and decodes what it receives
//! - `docker::FakeDocker` — a bash `docker` that logs calls and plays the streamer (it
//!   joins its meeting in the fake BBB and its playlist is served by the fake BBB's HLS
//!   route, `pod.hls_url`)

// Helpers are shared by every test module; not all of them use everything.
#![allow(dead_code)]

pub mod bbb;
pub mod docker;
pub mod gateway;
mod net;
pub mod pod;
pub mod redis;
pub mod smtp;
pub mod text;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

// Re-exported for the test modules; not every one is used by every module.
#[allow(unused_imports)]
pub use bbb::{BbbMode, FakeBbb};
#[allow(unused_imports)]
pub use docker::{DockerCall, FakeDocker, FakeMkv, FakeStreamer, read_mkv};
#[allow(unused_imports)]
pub use pod::{FakePod, Fault, LiveSpec, PodOptions, PodRequest, PodVersion};
#[allow(unused_imports)]
pub use smtp::{Mail, SmtpMode, SmtpOptions, SmtpSink};

/// The binary under test: cargo names it to tests and benches. A program that is neither
/// (the demo, `examples/demo/`) has no such variable and names it with [`use_binary`].
pub const BIN: &str = match option_env!("CARGO_BIN_EXE_bbb-pod-live") {
    Some(path) => path,
    None => "",
};

static BINARY: OnceLock<PathBuf> = OnceLock::new();

/// Makes every [`TestEnv`] of this process run `path` instead of [`BIN`] (first call wins).
pub fn use_binary(path: &Path) {
    let _ = BINARY.set(path.to_path_buf());
}

/// The binary [`TestEnv`] runs: [`use_binary`]'s, else [`BIN`].
pub fn binary() -> &'static Path {
    BINARY.get().map_or(Path::new(BIN), PathBuf::as_path)
}
/// The BBB shared secret of every `TestEnv`.
pub const BBB_SECRET: &str = "bbb-secret-for-tests";
/// Longest a single run of the binary may take before the harness kills it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Exit status and output of one run of the binary.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl RunOutput {
    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A live requested in Pod for a meeting that exists in BBB (see [`TestEnv::request_live`]).
#[derive(Clone, Debug)]
pub struct Requested {
    /// Pod livestream id.
    pub live: u64,
    /// Pod meeting pk.
    pub meeting: u64,
    /// BBB external meeting id.
    pub meeting_id: String,
    /// BBB internal meeting id (`<sha1>-<ms>`), the recording's file stem.
    pub internal_meeting_id: String,
}

/// Builder of a [`TestEnv`].
#[derive(Clone, Debug)]
pub struct TestEnvBuilder {
    slots: u32,
    server_number: u32,
    server_count: u32,
    end_confirmations: u32,
    pod: PodOptions,
    recordings: bool,
    admins: Vec<String>,
    extra_toml: String,
    smtp: SmtpOptions,
    checksum: String,
}

impl Default for TestEnvBuilder {
    fn default() -> Self {
        TestEnvBuilder {
            slots: 2,
            server_number: 1,
            server_count: 1,
            end_confirmations: 1,
            pod: PodOptions::default(),
            recordings: true,
            admins: vec!["admin@univ.example".into()],
            extra_toml: String::new(),
            smtp: SmtpOptions::default(),
            checksum: "sha1".into(),
        }
    }
}

impl TestEnvBuilder {
    /// `server.slots` (default 2).
    pub fn slots(mut self, n: u32) -> Self {
        self.slots = n;
        self
    }
    /// `server.number` (default 1).
    pub fn server_number(mut self, n: u32) -> Self {
        self.server_number = n;
        self
    }
    /// `server.count` (default 1).
    pub fn count(mut self, n: u32) -> Self {
        self.server_count = n;
        self
    }
    /// `bbb.end_confirmations` (default 1 here, to keep tests short).
    pub fn end_confirmations(mut self, n: u32) -> Self {
        self.end_confirmations = n;
        self
    }
    /// Version of the fake Pod (default `V3_8`).
    pub fn pod_version(mut self, v: PodVersion) -> Self {
        self.pod.version = v;
        self
    }
    /// Page size of the fake Pod (default 12).
    pub fn page_size(mut self, n: usize) -> Self {
        self.pod.page_size = n;
        self
    }
    /// `pod.recordings_dir`: `<tmp>/recordings` when on (default), `""` when off.
    pub fn recordings_dir(mut self, on: bool) -> Self {
        self.recordings = on;
        self
    }
    /// `mail.admins` (default one address; empty = no mail).
    pub fn admins(mut self, admins: &[&str]) -> Self {
        self.admins = admins.iter().map(|s| s.to_string()).collect();
        self
    }
    /// `bbb.checksum` (default `sha1`).
    pub fn checksum(mut self, algorithm: &str) -> Self {
        self.checksum = algorithm.into();
        self
    }
    /// SMTP AUTH: the sink requires these credentials and the config carries them.
    pub fn smtp_auth(mut self, user: &str, password: &str) -> Self {
        self.smtp.auth = Some((user.into(), password.into()));
        self
    }
    /// TOML merged into the generated configuration (tables merged key by key, so
    /// `"[server]\nlog_retention_days = 3"` adds one key to `[server]`).
    pub fn extra_toml(mut self, toml: &str) -> Self {
        self.extra_toml.push('\n');
        self.extra_toml.push_str(toml);
        self
    }

    pub fn build(self) -> TestEnv {
        let pod = Arc::new(FakePod::start(self.pod.clone()));
        let bbb = Arc::new(FakeBbb::start(BBB_SECRET));
        let smtp = Arc::new(SmtpSink::start_with(self.smtp.clone()));
        self.build_with(pod, bbb, smtp)
    }

    /// Another server beside `other`: its own directory, configuration and docker, the
    /// same Pod, BBB and SMTP sink (several-servers tests). The Pod options of this
    /// builder are ignored (Pod is `other`'s); give it `other`'s `smtp_auth` if any.
    pub fn build_beside(self, other: &TestEnv) -> TestEnv {
        self.build_with(
            Arc::clone(&other.pod),
            Arc::clone(&other.bbb),
            Arc::clone(&other.smtp),
        )
    }

    fn build_with(self, pod: Arc<FakePod>, bbb: Arc<FakeBbb>, smtp: Arc<SmtpSink>) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("bbb-pod-live-it-")
            .tempdir()
            .expect("creating the test directory");
        let root = dir.path().canonicalize().expect("canonical test directory");
        for sub in ["base", "logs", "recordings", "home"] {
            fs::create_dir_all(root.join(sub)).expect("creating the test directories");
        }
        let docker = FakeDocker::install(&root);
        bbb.add_streamer_source(docker.streamer_source());
        let smtp_password = self.smtp.auth.as_ref().map(|(_, p)| p.clone());
        let env = TestEnv {
            root,
            _dir: dir,
            config_path: PathBuf::new(),
            pod,
            bbb,
            smtp,
            docker,
            outputs: Mutex::new(Vec::new()),
            smtp_password,
            number: self.server_number,
        };
        let config_path = env.root.join("config.toml");
        let text = env.render_config(&self);
        let env = TestEnv { config_path, ..env };
        env.write_config(&text);
        env
    }
}

/// One test's world: the fakes, a temporary directory with `base/`, `logs/`,
/// `recordings/`, `home/`, and `config.toml` (mode 0600) pointing at them.
pub struct TestEnv {
    /// Shared with the servers built beside this one ([`TestEnvBuilder::build_beside`]).
    pub pod: Arc<FakePod>,
    pub bbb: Arc<FakeBbb>,
    pub smtp: Arc<SmtpSink>,
    pub docker: FakeDocker,
    root: PathBuf,
    config_path: PathBuf,
    outputs: Mutex<Vec<String>>,
    smtp_password: Option<String>,
    /// `server.number`: Pod shows this server's lives at `"<number>/<slot>"`.
    number: u32,
    // Last: removed after the fakes stopped.
    _dir: tempfile::TempDir,
}

impl TestEnv {
    /// The default environment (see [`TestEnvBuilder`]).
    pub fn new() -> TestEnv {
        TestEnvBuilder::default().build()
    }

    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder::default()
    }

    fn render_config(&self, b: &TestEnvBuilder) -> String {
        let s = |p: &Path| toml::Value::String(p.display().to_string());
        let recordings = if b.recordings {
            s(&self.recordings_dir())
        } else {
            toml::Value::String(String::new())
        };
        let mut smtp_user = String::new();
        let mut smtp_password = String::new();
        if let Some((u, p)) = &b.smtp.auth {
            smtp_user.clone_from(u);
            smtp_password.clone_from(p);
        }
        let base = format!(
            r#"
[server]
hostname = "live-test.example"
number = {number}
count = {count}
slots = {slots}
base_dir = {base_dir}
log_dir = {log_dir}
debug = true
timezone = "Europe/Paris"
redis_bind = "127.0.0.1"

[bbb]
url = {bbb_url}
secret = {secret}
checksum = {checksum}
stream_url = "rtmp://rtmp.example/live/"
end_confirmations = {end_confirmations}

[pod]
url = {pod_url}
token = {token}
hls_url = {hls_url}
building_id = 1
recordings_dir = {recordings}
timeout_secs = 3

[mail]
admins = {admins}
from = "bbb-pod-live@live-test.example"
transport = "smtp"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_user = {smtp_user}
smtp_password = {smtp_password}

[docker]
command = {docker}
timeout_secs = 5
stop_grace_secs = 0
"#,
            number = b.server_number,
            count = b.server_count,
            slots = b.slots,
            base_dir = s(&self.base_dir()),
            log_dir = s(&self.log_dir()),
            bbb_url = toml::Value::String(self.bbb.url()),
            secret = toml::Value::String(BBB_SECRET.into()),
            checksum = toml::Value::String(b.checksum.clone()),
            end_confirmations = b.end_confirmations,
            pod_url = toml::Value::String(self.pod.url()),
            hls_url = toml::Value::String(self.bbb.hls_url()),
            token = toml::Value::String(self.pod.token()),
            admins =
                toml::Value::Array(b.admins.iter().cloned().map(toml::Value::String).collect()),
            smtp_port = self.smtp.port(),
            smtp_user = toml::Value::String(smtp_user),
            smtp_password = toml::Value::String(smtp_password),
            docker = toml::Value::Array(
                self.docker
                    .command()
                    .into_iter()
                    .map(toml::Value::String)
                    .collect()
            ),
        );
        if b.extra_toml.trim().is_empty() {
            return base;
        }
        let mut table: toml::Table = base.parse().expect("the generated config is TOML");
        let extra: toml::Table = b
            .extra_toml
            .parse()
            .unwrap_or_else(|e| panic!("extra_toml is not TOML: {e}"));
        merge_toml(&mut table, extra);
        toml::to_string(&table).expect("serializing the config")
    }

    fn write_config(&self, text: &str) {
        fs::write(&self.config_path, text).expect("writing config.toml");
        fs::set_permissions(&self.config_path, fs::Permissions::from_mode(0o600))
            .expect("chmod 0600 config.toml");
    }

    /// Leaves the temporary directory in place when the environment is dropped.
    pub fn keep_directory(&mut self) {
        self._dir.disable_cleanup(true);
    }

    /// The temporary directory holding everything.
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }
    pub fn base_dir(&self) -> PathBuf {
        self.root.join("base")
    }
    pub fn log_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn recordings_dir(&self) -> PathBuf {
        self.root.join("recordings")
    }
    /// Where the recording of `r` is handed to Pod: `<internal meeting id>.mkv` in
    /// `pod.recordings_dir` (its own session's id, never the room's next one).
    pub fn delivered_path(&self, r: &Requested) -> PathBuf {
        self.recordings_dir()
            .join(format!("{}.mkv", r.internal_meeting_id))
    }
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    /// `pod.hls_url`: the fake HLS server (served by the fake BBB), ending in `/`.
    pub fn hls_url(&self) -> String {
        self.bbb.hls_url()
    }
    /// `<base_dir>/bbb-live-streaming<n>`.
    pub fn slot_dir(&self, n: u32) -> PathBuf {
        self.base_dir().join(format!("bbb-live-streaming{n}"))
    }

    /// The current text of config.toml.
    pub fn config_text(&self) -> String {
        fs::read_to_string(&self.config_path).expect("reading config.toml")
    }

    /// Rewrites config.toml through `edit` (mode stays 0600).
    pub fn rewrite_config(&self, edit: impl FnOnce(String) -> String) {
        let text = edit(self.config_text());
        self.write_config(&text);
    }

    /// Sets `docker.command` to the fake run as Debian 12's `docker-compose` 1.29
    /// ([`FakeDocker::compose_v1`]).
    pub fn use_compose_v1(&self) {
        let v2 = toml::Value::Array(
            self.docker
                .command()
                .into_iter()
                .map(toml::Value::String)
                .collect(),
        )
        .to_string();
        let v1 = toml::Value::Array(
            self.docker
                .compose_v1()
                .into_iter()
                .map(toml::Value::String)
                .collect(),
        )
        .to_string();
        self.rewrite_config(|t| {
            assert!(t.contains(&v2), "docker.command {v2} not in the config");
            t.replace(&v2, &v1)
        });
    }

    /// A command for the binary: `--config <path>` then `args`, cwd = the test dir,
    /// environment cleared except PATH, HOME (the test's `home/`) and TZ=UTC.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binary());
        c.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("HOME", self.home())
            .env("TZ", "UTC")
            .current_dir(&self.root)
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs the binary to completion (killed and reported after [`RUN_TIMEOUT`]).
    pub fn run(&self, args: &[&str]) -> RunOutput {
        self.run_env(args, &[])
    }

    /// [`TestEnv::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], envs: &[(&str, &str)]) -> RunOutput {
        let mut cmd = self.command(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawning bbb-pod-live");
        let out = wait_output(child, RUN_TIMEOUT)
            .unwrap_or_else(|partial| {
                panic!(
                    "bbb-pod-live {args:?} did not finish cleanly within {RUN_TIMEOUT:?} (killed, or left a process holding its output)\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- log ---\n{}",
                    partial.stdout,
                    partial.stderr,
                    self.log_text()
                )
            });
        self.record_output(&out);
        out
    }

    /// One cron tick: `run`.
    pub fn tick(&self) -> RunOutput {
        self.run(&["run"])
    }

    /// One tick that must exit 0.
    #[track_caller]
    pub fn tick_ok(&self) -> RunOutput {
        let out = self.tick();
        if out.code != Some(0) {
            panic!(
                "tick exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- log ---\n{}",
                out.code,
                out.stdout,
                out.stderr,
                self.log_text()
            );
        }
        out
    }

    /// One tick at `secs` seconds after a fixed instant, as the tick judges time
    /// between ticks (`BBB_POD_LIVE_NOW`): a test of "n minutes apart" runs at any
    /// speed.
    pub fn tick_at(&self, secs: i64) -> RunOutput {
        let at = chrono::DateTime::from_timestamp(1_772_442_000 + secs, 0)
            .expect("a valid time")
            .to_rfc3339();
        self.run_env(&["run"], &[("BBB_POD_LIVE_NOW", &at)])
    }

    /// [`TestEnv::tick_at`] that must exit 0.
    #[track_caller]
    pub fn tick_ok_at(&self, secs: i64) -> RunOutput {
        let out = self.tick_at(secs);
        if out.code != Some(0) {
            panic!(
                "tick at {secs} s exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- log ---\n{}",
                out.code,
                out.stdout,
                out.stderr,
                self.log_text()
            );
        }
        out
    }

    /// Starts the binary without waiting (concurrency and signal tests). stdout/stderr
    /// are piped; use [`TestEnv::wait`] to collect them (and have them secret-checked).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().expect("spawning bbb-pod-live")
    }

    /// Waits for a spawned child (killed after [`RUN_TIMEOUT`]) and records its output.
    pub fn wait(&self, child: Child) -> RunOutput {
        let out = wait_output(child, RUN_TIMEOUT).unwrap_or_else(|p| p);
        self.record_output(&out);
        out
    }

    fn record_output(&self, out: &RunOutput) {
        let mut o = self.outputs.lock().expect("outputs");
        o.push(out.stdout.clone());
        o.push(out.stderr.clone());
    }

    /// Every file under log_dir, concatenated (sorted by path).
    pub fn log_text(&self) -> String {
        let mut files = Vec::new();
        collect_files(&self.log_dir(), &mut files);
        files.sort();
        files
            .iter()
            .map(|f| String::from_utf8_lossy(&fs::read(f).unwrap_or_default()).into_owned())
            .collect::<Vec<_>>()
            .join("")
    }

    /// Files directly in recordings_dir (sorted).
    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(self.recordings_dir())
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// `n` old lives in Pod, closed (status 2) long ago on servers 1 and 2.
    pub fn add_history(&self, n: usize) {
        let m = self
            .pod
            .add_meeting("old-meeting", "0123abcd-1600000000000", "Ancien cours");
        for i in 0..n {
            let mut spec = LiveSpec::waiting(m);
            spec.status = 2;
            spec.server = Some(format!("{}/{}", 1 + i % 2, 1 + i % 2));
            self.pod.add_live(spec);
        }
    }

    /// Live `live` as the PHP script left it in `slot` (no state file of ours): Pod
    /// shows it running there, its compose file and its container are in the slot.
    pub fn php_live_in_slot(&self, live: u64, slot: u32) {
        self.pod.set_live(
            live,
            serde_json::json!({"status": 1, "server": format!("1/{slot}")}),
        );
        fs::create_dir_all(self.slot_dir(slot)).unwrap();
        fs::write(
            self.slot_dir(slot).join("docker-compose.yml"),
            "services:\n  bbb-streamer:\n    image: aauzid/bigbluebutton-livestreaming\n",
        )
        .unwrap();
        self.docker.set_running(&self.slot_dir(slot), true);
    }

    /// Panics if Pod saw a write to any livestream but `live` (old lives untouched).
    #[track_caller]
    pub fn assert_only_live_written(&self, live: u64) {
        let ours = format!("/rest/bbb_livestream/{live}/");
        let writes = self.pod.writes();
        assert!(
            writes
                .iter()
                .all(|w| !w.path.starts_with("/rest/bbb_livestream/") || w.path == ours),
            "{:?}",
            writes
        );
    }

    /// The livestream's `status` in the fake Pod (0 waiting, 1 running, 2 closed).
    #[track_caller]
    pub fn live_status(&self, live: u64) -> i64 {
        let l = self.pod.live(live);
        l["status"]
            .as_i64()
            .unwrap_or_else(|| panic!("live {live} has no integer status: {l}"))
    }

    /// The slot of this server Pod shows the live in (`server` = `"<number>/<slot>"`),
    /// whatever its status; `None` when Pod shows it on no slot of this server.
    pub fn slot_in_pod(&self, live: u64) -> Option<u32> {
        self.pod.live(live)["server"]
            .as_str()
            .and_then(|s| s.strip_prefix(&format!("{}/", self.number)))
            .and_then(|n| n.parse().ok())
    }

    /// Like [`TestEnv::slot_in_pod`], panicking when the live is on no slot of this server.
    #[track_caller]
    pub fn slot_of(&self, live: u64) -> u32 {
        self.slot_in_pod(live).unwrap_or_else(|| {
            panic!(
                "live {live} is not running on server {}: {}",
                self.number,
                self.pod.live(live)
            )
        })
    }

    /// Asserts the live runs here: status 1 in Pod, a slot of this server, its container
    /// up. Returns its slot.
    #[track_caller]
    pub fn assert_running(&self, live: u64) -> u32 {
        let l = self.pod.live(live);
        assert_eq!(
            l["status"],
            serde_json::json!(1),
            "live {live} should be running: {l}"
        );
        let slot = self.slot_of(live);
        assert!(
            self.docker.running(&self.slot_dir(slot)),
            "live {live} is at status 1 in slot {slot} but its container is not up\n{}",
            self.log_text()
        );
        slot
    }

    /// The compose file rendered in a slot, parsed.
    #[track_caller]
    pub fn compose(&self, slot: u32) -> serde_yaml::Value {
        let path = self.slot_dir(slot).join("docker-compose.yml");
        let text =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The mails the SMTP sink received whose subject contains `needle`.
    pub fn mails_with_subject(&self, needle: &str) -> Vec<Mail> {
        self.smtp
            .messages()
            .into_iter()
            .filter(|m| m.subject.contains(needle))
            .collect()
    }

    /// `status --json`, run and parsed (the run must succeed).
    #[track_caller]
    pub fn status_json(&self) -> serde_json::Value {
        let out = self.run(&["status", "--json"]);
        out.assert_success();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{}", out.stdout))
    }

    /// A meeting running in BBB, recorded by Pod, and a live requested for it (status 0,
    /// default options). The meeting name is used as given; ids are derived from it.
    pub fn request_live(&self, meeting_name: &str) -> Requested {
        self.request_live_with(meeting_name, |_| {})
    }

    /// [`TestEnv::request_live`] with the live's options adjusted by `edit`.
    pub fn request_live_with(
        &self,
        meeting_name: &str,
        edit: impl FnOnce(&mut LiveSpec),
    ) -> Requested {
        let n = self.pod.live_ids().len() + self.bbb.meeting_ids().len();
        let digest = hex::encode(Sha1::digest(format!(
            "{meeting_name}/{n}/{}",
            text::random_hex(8)
        )));
        let meeting_id = format!("{}-{}", &digest[..8], &digest[8..20]);
        let internal_meeting_id = format!(
            "{digest}-{}",
            chrono::Utc::now().timestamp_millis() - 60_000
        );
        self.bbb
            .add_meeting(&meeting_id, &internal_meeting_id, meeting_name, true);
        let meeting = self
            .pod
            .add_meeting(&meeting_id, &internal_meeting_id, meeting_name);
        let mut spec = LiveSpec::waiting(meeting);
        edit(&mut spec);
        let live = self.pod.add_live(spec);
        Requested {
            live,
            meeting,
            meeting_id,
            internal_meeting_id,
        }
    }

    /// The secrets of this environment: Pod token, BBB secret, SMTP password if any.
    pub fn secrets(&self) -> Vec<String> {
        let mut v = vec![self.pod.token(), BBB_SECRET.to_string()];
        if let Some(p) = &self.smtp_password {
            v.push(p.clone());
        }
        v
    }

    /// Panics if a secret appears in a log file, a docker call's arguments or working
    /// directory, a mail received by the SMTP sink (headers and body as transmitted, and
    /// decoded), or any stdout/stderr captured so far by this harness.
    #[track_caller]
    pub fn assert_no_secret_anywhere(&self) {
        let mut places: Vec<(String, String)> = Vec::new();
        let mut files = Vec::new();
        collect_files(&self.log_dir(), &mut files);
        for f in files {
            places.push((
                format!("log file {}", f.display()),
                String::from_utf8_lossy(&fs::read(&f).unwrap_or_default()).into_owned(),
            ));
        }
        for (i, call) in self.docker.calls().iter().enumerate() {
            places.push((
                format!("docker call #{i} {:?}", call.args),
                format!("{}\n{}", call.cwd.display(), call.args.join("\n")),
            ));
        }
        for (i, m) in self.smtp.messages().iter().enumerate() {
            places.push((
                format!("mail #{i} {:?}", m.subject),
                format!(
                    "{}\n{}\n{}\n{}\n{}",
                    m.from,
                    m.to.join("\n"),
                    m.data,
                    m.subject,
                    m.body
                ),
            ));
        }
        for (i, o) in self.outputs.lock().expect("outputs").iter().enumerate() {
            places.push((format!("captured output #{i}"), o.clone()));
        }
        for secret in self.secrets() {
            for (place, text) in &places {
                assert!(
                    !text.contains(&secret),
                    "secret {}… found in {place}",
                    &secret[..secret.len().min(4)]
                );
            }
        }
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

/// Merges `extra` into `into`, tables key by key (as [`TestEnvBuilder::extra_toml`]).
pub fn merge_toml(into: &mut toml::Table, extra: toml::Table) {
    for (k, v) in extra {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge_toml(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// The permission bits of `path` (`0o600`...), setuid, setgid and sticky included.
#[track_caller]
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every file under `dir`, recursively (none if it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect_files(dir, &mut out);
    out
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Collects stdout/stderr on threads (no pipe deadlock) and waits with a deadline.
/// `Err` carries what was captured when the child had to be killed, or when a process it
/// started still held its stdout/stderr 5 s after it exited (a leftover child: the note
/// is appended to `stderr`).
fn wait_output(mut child: Child, timeout: Duration) -> Result<RunOutput, RunOutput> {
    fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::sync::mpsc::Receiver<String> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
        rx
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut failed = false;
    let status = loop {
        match child.try_wait().expect("waiting for bbb-pod-live") {
            Some(s) => break s,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                failed = true;
                break child.wait().expect("reaping bbb-pod-live");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    const HELD: &str = "\n[harness: a process started by bbb-pod-live still holds this pipe]";
    let grace = Duration::from_secs(5);
    let stdout = out.recv_timeout(grace).unwrap_or_else(|_| {
        failed = true;
        HELD.to_string()
    });
    let stderr = err.recv_timeout(grace).unwrap_or_else(|_| {
        failed = true;
        HELD.to_string()
    });
    let output = RunOutput {
        code: status.code(),
        stdout,
        stderr,
    };
    if failed { Err(output) } else { Ok(output) }
}
