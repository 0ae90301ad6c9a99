//! The demo's story, told on `out`: a teacher's live from request to recording, each step
//! done by the real binary (`support::binary()`) against the integration tests' fakes on
//! loopback (Pod, BBB, a `docker` that writes a real mkv with ffmpeg, an SMTP sink), in
//! a `TestEnv`'s temporary directory. Shared by `examples/demo/main.rs` (`cargo run
//! --example demo`) and the test that runs it (`tests/it/demo.rs`); both have the
//! harness as `crate::support`.
//!
//! Nothing here waits on the clock: each tick is run to its end, what it did is read
//! back from the fakes and the files.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use crate::support::gateway::{Gateway, Reply, TOKEN};
use crate::support::{BBB_SECRET, Requested, RunOutput, TestEnv, binary};

/// The last line of a demo that ended well, printed by its `main` once nothing it
/// started is left (CI looks for it).
pub const DONE: &str = "demo: done, every step above went as it should";

/// Seconds of the recording the fake streamer writes (a real mkv, by ffmpeg).
const RECORDING_SECS: u32 = 2;
/// The webinar as Pod 4.1 names it: the BBB meetingID Pod's meeting app created
/// (`<id>-<slug>`), the room (the end of the meeting's hashkey), the rest of the
/// hashkey in `domain`, and the LiveGateway's RTMP destination.
const WEBINAR_MEETING: &str = "0002-webinaire-demo";
const WEBINAR_INTERNAL: &str = "5f1e7a9c0d2b4e6f8a1c3e5b7d9f0a2c4e6b8d0f-1765000000000";
const ROOM: &str = "3319bf5aed";
const HASH: &str = "99ff0c1e0a4e1b7d2a33c9d8e5f60718293a4b5c6d7e8f90a1b2c3d4e5";
/// The LiveGateway's URL path in Pod (one per webinar at a time).
const GATEWAY_PATH: &str = "/gw/1";
/// The state file of a slot in use (`slots.rs`).
const SLOT_STATE: &str = "live-state.json";
/// Longest wait for what `serve` does in the background (the streamer's up, its stop).
const LONG: Duration = Duration::from_secs(60);

/// What the reader has seen already: new log lines, mails and Pod writes are shown once.
pub struct Demo<'a> {
    env: TestEnv,
    out: &'a mut dyn Write,
    /// Bytes of each day log file already shown.
    log_seen: HashMap<PathBuf, usize>,
    mails_seen: usize,
    pod_seen: usize,
}

/// Builds the environment, tells `on_dir` where it lives (to remove it on a signal),
/// then runs the story. The directory goes with the environment unless `keep`.
pub fn run(out: &mut dyn Write, keep: bool, on_dir: impl FnOnce(&Path)) -> Result<()> {
    // debug = false: the day log as an admin reads it (info and above).
    // hold_secs = 1: the webinar's up waits 1 s for Pod's chat toggle (5 by default).
    let mut env = TestEnv::builder()
        .slots(2)
        .extra_toml("[server]\ndebug = false\n[webinar]\nhold_secs = 1")
        .build();
    if keep {
        env.keep_directory();
    }
    on_dir(env.root());
    env.docker.real_mkv(Some(RECORDING_SECS));
    let mut demo = Demo {
        env,
        out,
        log_seen: HashMap::new(),
        mails_seen: 0,
        pod_seen: 0,
    };
    demo.intro(keep)?;
    demo.pod_live()?;
    demo.webinar()?;
    Ok(())
}

impl Demo<'_> {
    fn intro(&mut self, keep: bool) -> Result<()> {
        let env = &self.env;
        let root = env.root().display().to_string();
        writeln!(
            self.out,
            "bbb-pod-live demo: the real binary, one cron tick at a time, against stand-ins on loopback\n"
        )?;
        let rows = [
            ("binary", binary().display().to_string()),
            ("Pod", format!("{} (fake Esup-Pod REST API)", env.pod.url())),
            ("BigBlueButton", format!("{} (fake BBB API)", env.bbb.url())),
            (
                "mail",
                format!("smtp://127.0.0.1:{} (sink)", env.smtp.port()),
            ),
            (
                "docker",
                format!(
                    "{} (fake: plays the streamer, records {RECORDING_SECS} s with ffmpeg)",
                    env.docker.program().display()
                ),
            ),
            (
                "directory",
                if keep {
                    format!("{root} (kept: --keep)")
                } else {
                    format!("{root} (removed at the end; --keep keeps it)")
                },
            ),
            ("config", env.config_path().display().to_string()),
        ];
        for (what, value) in rows {
            writeln!(self.out, "  {what:<14} {value}")?;
        }
        Ok(())
    }

    /// A live from Pod: requested, started in a slot, its meeting ending, stopped and
    /// closed, its recording handed over.
    fn pod_live(&mut self) -> Result<()> {
        self.step("A teacher asks Pod to broadcast a running BigBlueButton room")?;
        let r = self.env.request_live_with("Amphi A — Introduction", |s| {
            s.download_meeting = true;
            s.enable_chat = true;
        });
        writeln!(
            self.out,
            "  BBB: meeting {:?} running; Pod: livestream {} waiting (status 0), chat on, recording asked",
            r.meeting_id, r.live
        )?;
        self.status()?;

        self.step("Cron's next minute: the tick starts the streamer in a free slot")?;
        self.tick()?;
        let slot = self
            .env
            .slot_in_pod(r.live)
            .context("the live did not start")?;
        ensure!(
            self.env.live_status(r.live) == 1,
            "Pod does not show live {} running",
            r.live
        );
        ensure!(
            self.env.docker.running(&self.env.slot_dir(slot)),
            "no container up in slot {slot}"
        );
        self.compose(slot)?;
        self.broadcasters()?;
        self.mails(1)?;
        self.status()?;

        self.step("The teacher ends the meeting in BigBlueButton")?;
        self.env.bbb.end_meeting(&r.meeting_id);
        writeln!(
            self.out,
            "  BBB: meeting {:?} ended (running=false, nobody left)",
            r.meeting_id
        )?;

        self.step("Cron's next minute: the tick stops the streamer, closes the live in Pod and hands the recording over")?;
        self.tick()?;
        ensure!(
            self.env.live_status(r.live) == 2,
            "Pod does not show live {} stopped",
            r.live
        );
        ensure!(
            !self.env.docker.running(&self.env.slot_dir(slot)),
            "the container of slot {slot} is still up"
        );
        self.broadcasters()?;
        self.recording(&r)?;
        self.mails(0)?;
        self.status()?;
        Ok(())
    }

    /// A webinar of Pod 3.8.2 and later (Pod's own meeting app), through the gateway
    /// `serve` answers: started, its chat panel hidden, a viewer's message, stopped, with
    /// exactly the requests Pod 4.1 sends.
    fn webinar(&mut self) -> Result<()> {
        self.step("Pod 4.1: a teacher's webinar, through the gateway (`bbb-pod-live serve`)")?;
        self.env
            .bbb
            .add_meeting(WEBINAR_MEETING, WEBINAR_INTERNAL, "Webinaire démo", false);
        // BBB 3.0 takes viewers' messages through sendChatMessage.
        self.env.bbb.set_version("3.0");
        writeln!(
            self.out,
            "  BBB: meeting {WEBINAR_MEETING:?} created by Pod's meeting app, nobody in it yet"
        )?;
        let gateway = Gateway::spawn(&self.env);
        writeln!(
            self.out,
            "\n$ bbb-pod-live serve    (in the background: [gateway] listen = \"127.0.0.1:{port}\")\n  \
             Pod's LiveGateway: URL http://127.0.0.1:{port}{GATEWAY_PATH}, token {TOKEN:?}, \
             RTMP destination rtmp://rtmp.example/live/webinaire-1",
            port = gateway.port
        )?;

        self.step("The teacher starts the webinar in Pod; Pod calls the gateway")?;
        let start = format!(
            "{GATEWAY_PATH}/start?room={ROOM}&domain=pod.example%3A443%2Fmeeting%2F\
             {WEBINAR_MEETING}%2F{HASH}&rtmpDst=rtmp%3A%2F%2Frtmp.example%2Flive%2Fwebinaire-1"
        );
        let reply = gateway.get_ok(&start);
        self.exchange(&format!("GET {start}"), &reply)?;
        ensure!(reply.status() == "success", "start refused: {reply:?}");
        // The meeting's chat is off in Pod (enable_chat False, its default): Pod hides
        // the panel right after start.
        let toggle = format!("{GATEWAY_PATH}/chat?room={ROOM}&toggle=True");
        let reply = gateway.get_ok(&toggle);
        self.exchange(&format!("GET {toggle}"), &reply)?;
        ensure!(reply.res() == "ok", "toggle refused: {reply:?}");
        self.env.bbb.set_running(WEBINAR_MEETING, true);
        writeln!(
            self.out,
            "\n  BBB: Pod sends the teacher into the meeting; it runs"
        )?;
        let slot = self.wait_for("the webinar's streamer up", |env| {
            (1..=2).find(|&n| env.docker.running(&env.slot_dir(n)))
        })?;
        writeln!(
            self.out,
            "\n  the streamer is up in slot {slot}, its panel hidden, pushing to Pod's RTMP destination:"
        )?;
        let compose = fs::read_to_string(self.env.slot_dir(slot).join("docker-compose.yml"))?;
        let lines: Vec<&str> = compose
            .lines()
            .filter(|l| {
                ["BBB_MEETING_ID:", "BBB_STREAM_URL:", "BBB_SHOW_CHAT:"]
                    .iter()
                    .any(|k| l.trim_start().starts_with(k))
            })
            .collect();
        self.indented(&indent(&lines.join("\n")))?;
        self.log_lines()?;
        self.mails(1)?;

        self.step("Cron's next minute: the tick tends the webinar beside serve")?;
        self.tick()?;
        self.status()?;

        self.step("A viewer writes in Pod's chat; Pod posts it to the gateway")?;
        let message = "Bonjour l’équipe";
        let reply = gateway.post_chat(&format!("{GATEWAY_PATH}/chat"), ROOM, message);
        self.exchange(
            &format!("POST {GATEWAY_PATH}/chat {{\"room\": \"{ROOM}\", \"msg\": \"{message}\"}}"),
            &reply,
        )?;
        ensure!(reply.res().contains("ok"), "message refused: {reply:?}");
        for (meeting, from, msg) in self.env.bbb.chat_messages() {
            writeln!(
                self.out,
                "  BBB: sendChatMessage in {meeting:?} from {from:?}: {msg:?}"
            )?;
        }

        self.step("The teacher stops the webinar in Pod; Pod calls the gateway")?;
        let stop = format!("{GATEWAY_PATH}/stop?room={ROOM}");
        let reply = gateway.get_ok(&stop);
        self.exchange(&format!("GET {stop}"), &reply)?;
        ensure!(reply.status() == "success", "stop refused: {reply:?}");
        // Answered at once, done behind: the slot is free once its state file is gone.
        let dir = self.env.slot_dir(slot);
        self.wait_for("the webinar's slot free", |env| {
            (!env.docker.running(&dir) && !dir.join(SLOT_STATE).exists()).then_some(())
        })?;
        writeln!(
            self.out,
            "\n  the streamer of slot {slot} is down, the slot free"
        )?;
        self.log_lines()?;
        self.status()?;

        self.step("serve stops on SIGTERM (systemd's stop)")?;
        let out = gateway.terminate(&self.env);
        ensure!(
            out.code == Some(0),
            "serve exited {:?} on SIGTERM\n{}",
            out.code,
            out.stderr
        );
        writeln!(self.out, "  serve exited 0")?;
        self.log_lines()
    }

    /// A request as Pod sends it and the gateway's answer, as Pod reads it (JSON).
    fn exchange(&mut self, request: &str, reply: &Reply) -> Result<()> {
        writeln!(self.out, "\n  Pod → {request}")?;
        writeln!(
            self.out,
            "  gateway ← {} {}",
            reply.code,
            serde_json::to_string(&reply.json)?
        )?;
        Ok(())
    }

    /// Polls `what` every 50 ms until it gives a value; an error after [`LONG`].
    fn wait_for<T>(&self, what: &str, mut found: impl FnMut(&TestEnv) -> Option<T>) -> Result<T> {
        let deadline = std::time::Instant::now() + LONG;
        loop {
            if let Some(v) = found(&self.env) {
                return Ok(v);
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "no {what} after {LONG:?}\n--- log ---\n{}",
                self.env.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn step(&mut self, title: &str) -> Result<()> {
        writeln!(self.out, "\n=== {title}")?;
        Ok(())
    }

    /// `run --dry-run` (the plan), then `run` (the tick), then what it logged and sent
    /// to Pod.
    fn tick(&mut self) -> Result<()> {
        let plan = self.command(&["run", "--dry-run"])?;
        self.shell("bbb-pod-live run --dry-run", &plan.stdout)?;
        let out = self.command(&["run"])?;
        self.shell("bbb-pod-live run", &out.stdout)?;
        self.log_lines()?;
        self.pod_writes()?;
        Ok(())
    }

    fn status(&mut self) -> Result<()> {
        let out = self.command(&["status"])?;
        self.shell("bbb-pod-live status", &out.stdout)
    }

    /// Runs the binary; a failing run ends the demo with its output and the log.
    fn command(&mut self, args: &[&str]) -> Result<RunOutput> {
        let out = self.env.run(args);
        ensure!(
            out.code == Some(0),
            "bbb-pod-live {} exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- log ---\n{}",
            args.join(" "),
            out.code,
            out.stdout,
            out.stderr,
            self.env.log_text()
        );
        Ok(out)
    }

    fn shell(&mut self, command: &str, stdout: &str) -> Result<()> {
        writeln!(self.out, "\n$ {command}")?;
        if stdout.trim().is_empty() {
            writeln!(self.out, "  (prints nothing)")?;
        }
        self.indented(stdout)
    }

    fn indented(&mut self, text: &str) -> Result<()> {
        for line in text.lines() {
            writeln!(self.out, "  {}", masked(line))?;
        }
        Ok(())
    }

    /// The lines the day log got since last shown (a tick's own lines; a streamer's
    /// log kept beside it at its stop is another file).
    fn log_lines(&mut self) -> Result<()> {
        let mut files: Vec<PathBuf> = fs::read_dir(self.env.log_dir())
            .context("reading the log directory")?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(DAY_LOG_SUFFIX))
            .collect();
        files.sort();
        for file in files {
            let text =
                fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let seen = self.log_seen.insert(file.clone(), text.len()).unwrap_or(0);
            let new = text.get(seen..).unwrap_or("");
            if new.is_empty() {
                continue;
            }
            writeln!(self.out, "\n  the day log ({}):", self.relative(&file))?;
            self.indented(&indent(new))?;
        }
        Ok(())
    }

    /// Pod's writes since last shown: what the tick changed there.
    fn pod_writes(&mut self) -> Result<()> {
        let writes = self.env.pod.writes();
        let new: Vec<String> = writes
            .iter()
            .skip(self.pod_seen)
            .map(|w| {
                let multipart = w
                    .content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("multipart/"));
                let body = if w.body.is_empty() {
                    String::new()
                } else if multipart {
                    let fields: Vec<String> =
                        w.form().iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                    format!(" (form) {}", one_line(&fields.join(" "), 200))
                } else {
                    format!(" {}", one_line(&w.body, 200))
                };
                format!("  {} {}{body}", w.method, w.path)
            })
            .collect();
        self.pod_seen = writes.len();
        writeln!(self.out, "\n  what Pod received (writes):")?;
        if new.is_empty() {
            writeln!(self.out, "    none")?;
        }
        self.indented(&new.join("\n"))
    }

    fn compose(&mut self, slot: u32) -> Result<()> {
        let path = self.env.slot_dir(slot).join("docker-compose.yml");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        writeln!(
            self.out,
            "\n  the compose file of slot {slot} ({}, secret masked):",
            self.relative(&path)
        )?;
        self.indented(&indent(&text))
    }

    fn broadcasters(&mut self) -> Result<()> {
        let list = self.env.pod.broadcasters();
        writeln!(self.out, "\n  broadcasters in Pod: {}", list.len())?;
        for b in list {
            let url = b
                .get("url")
                .or_else(|| b.get("broadcaster_url"))
                .and_then(|u| u.as_str())
                .unwrap_or("");
            writeln!(self.out, "    {} → {url}", b["name"].as_str().unwrap_or(""))?;
        }
        Ok(())
    }

    /// Waits for at least `at_least` new mails (the tick sends them before it ends; the
    /// wait is only the sink's delivery), then shows every new one.
    fn mails(&mut self, at_least: usize) -> Result<()> {
        let want = self.mails_seen + at_least;
        let all = self.env.smtp.wait_for(want, Duration::from_secs(30));
        ensure!(
            all.len() >= want,
            "expected {want} mails, got {}",
            all.len()
        );
        let new: Vec<_> = all.into_iter().skip(self.mails_seen).collect();
        self.mails_seen += new.len();
        if new.is_empty() {
            writeln!(self.out, "\n  no new mail")?;
        }
        for m in new {
            writeln!(
                self.out,
                "\n  mail from {} to {}: {}",
                m.from,
                m.to.join(", "),
                m.subject
            )?;
            self.indented(&indent(&m.body))?;
        }
        Ok(())
    }

    /// The recordings directory: the meeting's file, probed with ffprobe.
    fn recording(&mut self, r: &Requested) -> Result<()> {
        let files = self.env.recordings();
        let want = self.env.delivered_path(r);
        ensure!(
            files == vec![want.clone()],
            "recordings_dir holds {files:?}, not {}",
            want.display()
        );
        let size = fs::metadata(&want)?.len();
        writeln!(
            self.out,
            "\n  recordings_dir ({}), where Pod picks recordings up:",
            self.relative(&self.env.recordings_dir())
        )?;
        writeln!(
            self.out,
            "    {}  {size} bytes, {}",
            want.file_name().unwrap_or_default().to_string_lossy(),
            probe(&want)
        )?;
        Ok(())
    }

    /// `path` under the demo's directory, as `<dir>/...`.
    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.env.root()).map_or_else(
            |_| path.display().to_string(),
            |p| format!("<dir>/{}", p.display()),
        )
    }
}

/// How the day log files end (`<YYYY-MM-DD>_bbb-pod-live.log`).
const DAY_LOG_SUFFIX: &str = "_bbb-pod-live.log";

/// What ffprobe says of the file (format and duration), or why it could not.
fn probe(path: &Path) -> String {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=format_name,duration",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .collect::<Vec<_>>()
            .join(", "),
        Ok(o) => format!(
            "ffprobe failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => format!("no ffprobe ({e})"),
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` on one line, cut after `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    format!("{cut}…")
}

/// The BBB secret is a test value, but a compose file is shown the way it should be.
fn masked(line: &str) -> String {
    line.replace(BBB_SECRET, "********")
}
