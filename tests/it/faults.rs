//! The fault-injection suite. Each dependency (Pod, BBB, docker,
//! recordings_dir, SMTP, the `[cluster]` Redis) is made down, slow, erroring or
//! answering garbage, during a start and during a stop, one table row per case. Every
//! case runs in its own world: a bystander live that must never be cut, and the
//! subject live being started or stopped (with a recording). The fault is on for one
//! tick, then healed; the world must converge within three ticks. The suite counts the
//! faults tried, the lives cut by mistake, the recordings lost and the double starts,
//! prints the table (`cargo test --test it faults -- --nocapture`) and fails unless the
//! three counts are 0 and every case converged as its row expects.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::redis::{RedisServer, free_port};
use crate::support::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dep {
    Pod,
    Bbb,
    Docker,
    RecordingsDir,
    Smtp,
    Redis,
}

impl Dep {
    fn name(self) -> &'static str {
        match self {
            Dep::Pod => "Pod",
            Dep::Bbb => "BBB",
            Dep::Docker => "docker",
            Dep::RecordingsDir => "recordings_dir",
            Dep::Smtp => "SMTP",
            Dep::Redis => "Redis",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Down,
    Slow,
    Erroring,
    Garbage,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Down => "down",
            Kind::Slow => "slow",
            Kind::Erroring => "erroring",
            Kind::Garbage => "garbage",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Start,
    Stop,
}

/// What the subject's start or stop does in the tick the fault is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum During {
    /// Done in that tick anyway (the dependency is not needed for it, or only after).
    Acts,
    /// Put off: nothing is done that the fault could make wrong; done once healed.
    Waits,
    /// Either, depending on where the fault hits (an uncertain answer).
    Either,
}

struct Row {
    dep: Dep,
    kind: Kind,
    phase: Phase,
    /// What is injected, for the table.
    injected: &'static str,
    during: During,
    /// The expected outcome, for the table.
    expected: &'static str,
}

const fn row(
    dep: Dep,
    kind: Kind,
    phase: Phase,
    injected: &'static str,
    during: During,
    expected: &'static str,
) -> Row {
    Row {
        dep,
        kind,
        phase,
        injected,
        during,
        expected,
    }
}

use Dep::*;
use During::*;
use Kind::*;
use Phase::*;

/// The table. Timeouts of the world: Pod and BBB 3 s, docker 5 s, SMTP 2 s, Redis 5 s.
const ROWS: &[Row] = &[
    // Pod
    row(
        Pod,
        Down,
        Start,
        "connections refused",
        Waits,
        "nothing started; started once Pod is back",
    ),
    row(
        Pod,
        Down,
        Stop,
        "connections refused",
        Waits,
        "live keeps running, nothing cut; stopped next tick",
    ),
    row(
        Pod,
        Slow,
        Start,
        "start PATCH answered after 5 s (applied late)",
        Either,
        "uncertain PATCH reverted or kept; one container, one broadcaster",
    ),
    row(
        Pod,
        Slow,
        Stop,
        "closing PATCH answered after 5 s",
        Either,
        "container down, recording kept; Pod closed next tick",
    ),
    row(
        Pod,
        Erroring,
        Start,
        "broadcaster POST answers Pod's HTML 500",
        Acts,
        "a 500 is how Pod reports a slug collision: retried at once under a distinct name; one broadcaster",
    ),
    row(
        Pod,
        Erroring,
        Stop,
        "broadcaster DELETE answers Pod's HTML 500",
        Acts,
        "stop progress kept; DELETE retried next tick",
    ),
    row(
        Pod,
        Garbage,
        Start,
        "start PATCH answers 200 with non-JSON",
        Either,
        "start undone or kept, never twice",
    ),
    row(
        Pod,
        Garbage,
        Stop,
        "livestream list is cut JSON",
        Waits,
        "nothing decided; stopped next tick",
    ),
    // BBB (a bystander live runs, so getMeetings is asked in both phases)
    row(
        Bbb,
        Down,
        Start,
        "connections refused",
        Waits,
        "not started blind (BBB must show its session); started once BBB answers; bystander kept",
    ),
    row(
        Bbb,
        Down,
        Stop,
        "connections refused",
        Waits,
        "nothing stopped; stopped once BBB answers",
    ),
    row(
        Bbb,
        Slow,
        Start,
        "every answer after 5 s",
        Waits,
        "not started blind (BBB must show its session); started once BBB answers; bystander kept",
    ),
    row(
        Bbb,
        Slow,
        Stop,
        "every answer after 5 s",
        Waits,
        "nothing stopped",
    ),
    row(
        Bbb,
        Erroring,
        Start,
        "checksumError",
        Waits,
        "not started blind (BBB must show its session); started once BBB answers; bystander kept",
    ),
    row(
        Bbb,
        Erroring,
        Stop,
        "Scalelite internalError",
        Waits,
        "nothing stopped",
    ),
    row(
        Bbb,
        Garbage,
        Start,
        "HTML page",
        Waits,
        "not started blind (BBB must show its session); started once BBB answers; bystander kept",
    ),
    row(
        Bbb,
        Garbage,
        Stop,
        "XML cut mid-answer",
        Waits,
        "nothing stopped",
    ),
    // docker
    row(
        Docker,
        Down,
        Start,
        "every command fails",
        Waits,
        "start undone; retried",
    ),
    row(
        Docker,
        Down,
        Stop,
        "every command fails",
        Waits,
        "live kept at status 1; stop retried",
    ),
    row(
        Docker,
        Slow,
        Start,
        "`up` hangs",
        Waits,
        "`up` killed at 5 s, start undone; retried",
    ),
    row(
        Docker,
        Slow,
        Stop,
        "`down` hangs",
        Waits,
        "`down` killed at 5 s; stop retried",
    ),
    row(
        Docker,
        Erroring,
        Start,
        "`up` exits 1 once",
        Waits,
        "start undone; retried",
    ),
    row(
        Docker,
        Erroring,
        Stop,
        "`down` exits 1 once",
        Waits,
        "stop retried next tick",
    ),
    row(
        Docker,
        Garbage,
        Start,
        "5 MB of binary junk on stdout, 200 KB on stderr",
        Acts,
        "output ignored; started",
    ),
    row(
        Docker,
        Garbage,
        Stop,
        "5 MB of binary junk on stdout, 200 KB on stderr",
        Acts,
        "output ignored; stopped",
    ),
    // recordings_dir
    row(
        RecordingsDir,
        Down,
        Start,
        "directory gone (share unmounted)",
        Acts,
        "start unaffected",
    ),
    row(
        RecordingsDir,
        Down,
        Stop,
        "directory gone (share unmounted)",
        Acts,
        "live stops; recording kept locally, delivered once back",
    ),
    row(
        RecordingsDir,
        Erroring,
        Start,
        "a file instead of the directory",
        Acts,
        "start unaffected",
    ),
    row(
        RecordingsDir,
        Erroring,
        Stop,
        "a file instead of the directory",
        Acts,
        "recording kept, delivered once repaired",
    ),
    row(
        RecordingsDir,
        Garbage,
        Start,
        "a dangling symlink",
        Acts,
        "start unaffected",
    ),
    row(
        RecordingsDir,
        Garbage,
        Stop,
        "a dangling symlink",
        Acts,
        "recording kept, delivered once repaired",
    ),
    // SMTP
    row(
        Smtp,
        Down,
        Start,
        "connections refused",
        Acts,
        "tick still acts; the failure logged",
    ),
    row(
        Smtp,
        Down,
        Stop,
        "connections refused",
        Acts,
        "tick still acts",
    ),
    row(
        Smtp,
        Slow,
        Start,
        "greeting after 4 s",
        Acts,
        "mail times out at 2 s; tick still acts",
    ),
    row(
        Smtp,
        Slow,
        Stop,
        "greeting after 4 s",
        Acts,
        "tick still acts",
    ),
    row(
        Smtp,
        Erroring,
        Start,
        "421 at the greeting",
        Acts,
        "tick still acts",
    ),
    row(
        Smtp,
        Erroring,
        Stop,
        "550 to every recipient",
        Acts,
        "tick still acts",
    ),
    row(
        Smtp,
        Garbage,
        Start,
        "an HTTP page instead of SMTP",
        Acts,
        "tick still acts",
    ),
    row(
        Smtp,
        Garbage,
        Stop,
        "an HTTP page instead of SMTP",
        Acts,
        "tick still acts",
    ),
    // the [cluster] Redis (server 1 of 2)
    row(
        Redis,
        Down,
        Start,
        "connections refused",
        Waits,
        "not claimed, not started; started once back",
    ),
    row(
        Redis,
        Down,
        Stop,
        "connections refused",
        Acts,
        "stops need no claim: stopped",
    ),
    row(
        Redis,
        Slow,
        Start,
        "process stopped (SIGSTOP)",
        Waits,
        "claim times out at 5 s; started once back",
    ),
    row(
        Redis,
        Slow,
        Stop,
        "process stopped (SIGSTOP)",
        Acts,
        "stopped",
    ),
    row(
        Redis,
        Erroring,
        Start,
        "read-only replica (READONLY errors)",
        Waits,
        "not started; started once writable",
    ),
    row(
        Redis,
        Erroring,
        Stop,
        "read-only replica (READONLY errors)",
        Acts,
        "stopped",
    ),
    row(
        Redis,
        Garbage,
        Start,
        "an SMTP server instead of Redis",
        Waits,
        "not started; started once back",
    ),
    row(
        Redis,
        Garbage,
        Stop,
        "an SMTP server instead of Redis",
        Acts,
        "stopped",
    ),
];

/// Rows the suite cannot simulate, for the README (not counted as tried).
const NOT_RUN: &[&str] = &[
    "recordings_dir slow (a slow NFS share): not simulated (no slow file system in the test environment)",
];

// ---------------------------------------------------------------------------
// A Redis of our own
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// One case
// ---------------------------------------------------------------------------

struct World {
    env: TestEnv,
    redis: Option<RedisServer>,
    bystander: Requested,
    bystander_slot: u32,
    subject: Option<Requested>,
    /// `docker.command` as configured, and the wrapper that adds junk output.
    docker_junk: PathBuf,
}

/// What one case observed.
#[derive(Default, Debug)]
struct Observed {
    exit_during: Option<i32>,
    acted_during: bool,
    ticks_to_converge: usize,
    cut_by_mistake: usize,
    recordings_lost: usize,
    double_starts: usize,
    /// Why the case failed its row, if it did.
    failure: Option<String>,
    seconds: f64,
}

const SUBJECT_NAME: &str = "Sujet — injection de fautes";

/// Slots whose container is up with this meeting's id in their compose file.
fn containers_of(w: &World, meeting_id: &str) -> usize {
    (1..=2)
        .filter(|&slot| {
            let dir = w.env.slot_dir(slot);
            w.env.docker.running(&dir)
                && fs::read_to_string(dir.join("docker-compose.yml"))
                    .is_ok_and(|t| t.contains(meeting_id))
        })
        .count()
}

fn broadcasters_named(env: &TestEnv, needle: &str) -> usize {
    env.pod
        .broadcasters()
        .iter()
        .filter(|b| b["name"].as_str().is_some_and(|n| n.contains(needle)))
        .count()
}

/// Whether the bystander still runs, untouched.
fn bystander_ok(w: &World) -> bool {
    let dir = w.env.slot_dir(w.bystander_slot);
    w.env.docker.running(&dir)
        && w.env.live_status(w.bystander.live) == 1
        && !w.env.docker.calls_in(&dir).iter().any(|c| c.is("down"))
}

fn mkvs_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return out;
    };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() && !p.is_symlink() {
            out.extend(mkvs_under(&p));
        } else if p.extension().is_some_and(|e| e == "mkv") {
            out.push(p);
        }
    }
    out
}

/// The subject's recording: delivered (in recordings_dir, finalized), kept (somewhere
/// under base_dir), or neither (lost).
fn recording_state(w: &World, r: &Requested) -> (bool, bool) {
    let delivered = w.env.delivered_path(r);
    let delivered = delivered.is_file() && read_mkv(&delivered).finalized;
    let kept = mkvs_under(&w.env.base_dir())
        .iter()
        .any(|p| read_mkv(p).meeting_id == r.meeting_id);
    (delivered, kept)
}

fn set_docker_command(w: &World, program: &Path) {
    let current = w.env.docker.program().display().to_string();
    let wanted = program.display().to_string();
    w.env.rewrite_config(|t| {
        let t = t.replace(&format!("\"{current}\""), &format!("\"{wanted}\""));
        t.replace(
            &format!("\"{}\"", w.docker_junk.display()),
            &format!("\"{wanted}\""),
        )
    });
}

fn set_redis_url(w: &World, url: &str) {
    w.env.rewrite_config(|t| {
        t.lines()
            .map(|l| {
                if l.starts_with("redis_url") {
                    format!("redis_url = \"{url}\"")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
}

fn recordings_dir_replace(w: &World, with: &str) {
    let dir = w.env.recordings_dir();
    let _ = fs::remove_dir_all(&dir);
    let _ = fs::remove_file(&dir);
    match with {
        "gone" => {}
        "file" => fs::write(&dir, "not a directory").unwrap(),
        "dangling" => std::os::unix::fs::symlink(w.env.root().join("nowhere"), &dir).unwrap(),
        "dir" => fs::create_dir_all(&dir).unwrap(),
        other => panic!("{other}"),
    }
}

fn inject(w: &World, row: &Row) {
    let env = &w.env;
    let start = row.phase == Start;
    match (row.dep, row.kind) {
        (Pod, Down) => env.pod.set_reachable(false),
        (Pod, Slow) => env.pod.fail_next(
            "PATCH",
            "/rest/bbb_livestream/",
            Fault::Delay(Duration::from_secs(5)),
            1,
        ),
        (Pod, Erroring) if start => {
            env.pod
                .fail_next("POST", "/rest/broadcasters/", Fault::Html500, 1)
        }
        (Pod, Erroring) => env
            .pod
            .fail_next("DELETE", "/rest/broadcasters/", Fault::Html500, 1),
        (Pod, Garbage) if start => env.pod.fail_next(
            "PATCH",
            "/rest/bbb_livestream/",
            Fault::Garbage("<html><body>Bad gateway</body></html>".into()),
            1,
        ),
        (Pod, Garbage) => env.pod.fail_next(
            "GET",
            "/rest/bbb_livestream/",
            Fault::Garbage("{\"count\": 2, \"next\": null, \"results\": [{\"id\": 1, \"sta".into()),
            1,
        ),
        (Bbb, Down) => env.bbb.set_mode(BbbMode::Down),
        (Bbb, Slow) => env.bbb.set_latency(Duration::from_secs(5)),
        (Bbb, Erroring) if start => env.bbb.set_mode(BbbMode::ChecksumError),
        (Bbb, Erroring) => env.bbb.set_mode(BbbMode::ScaleliteInternalError),
        (Bbb, Garbage) if start => env.bbb.set_mode(BbbMode::Garbage),
        (Bbb, Garbage) => env.bbb.set_mode(BbbMode::Truncated),
        (Docker, Down) => {
            env.docker.fail_up(1000);
            env.docker.fail_down(1000);
            env.docker.fail_exec(1000);
        }
        (Docker, Slow) => env.docker.hang(if start { "up" } else { "down" }, true),
        (Docker, Erroring) if start => env.docker.fail_up(1),
        (Docker, Erroring) => env.docker.fail_down(1),
        (Docker, Garbage) => set_docker_command(w, &w.docker_junk),
        (RecordingsDir, Down) => recordings_dir_replace(w, "gone"),
        (RecordingsDir, Erroring) => recordings_dir_replace(w, "file"),
        (RecordingsDir, Garbage) => recordings_dir_replace(w, "dangling"),
        (RecordingsDir, Slow) => unreachable!("not simulated"),
        (Smtp, Down) => env.smtp.set_mode(SmtpMode::Down),
        (Smtp, Slow) => env.smtp.set_latency(Duration::from_secs(4)),
        (Smtp, Erroring) if start => env.smtp.set_mode(SmtpMode::TempFail),
        (Smtp, Erroring) => env.smtp.set_mode(SmtpMode::RejectRecipients),
        (Smtp, Garbage) => env.smtp.set_mode(SmtpMode::Garbage),
        (Redis, Down) => set_redis_url(w, &format!("redis://127.0.0.1:{}/0", free_port())),
        (Redis, Slow) => w
            .redis
            .as_ref()
            .unwrap()
            .signal(nix::sys::signal::Signal::SIGSTOP),
        (Redis, Erroring) => {
            let r = w.redis.as_ref().unwrap();
            let answer = r.command(&["REPLICAOF", "127.0.0.1", "1"]).unwrap();
            assert!(answer.starts_with("+OK"), "{answer}");
        }
        (Redis, Garbage) => set_redis_url(w, &format!("redis://127.0.0.1:{}/0", env.smtp.port())),
    }
}

fn heal(w: &World, row: &Row) {
    let env = &w.env;
    env.pod.clear_faults();
    env.pod.set_reachable(true);
    env.bbb.set_mode(BbbMode::Normal);
    env.bbb.set_latency(Duration::ZERO);
    env.docker.fail_up(0);
    env.docker.fail_down(0);
    env.docker.fail_exec(0);
    env.docker.hang("up", false);
    env.docker.hang("down", false);
    env.smtp.set_mode(SmtpMode::Normal);
    env.smtp.set_latency(Duration::ZERO);
    match row.dep {
        Docker => set_docker_command(w, env.docker.program()),
        RecordingsDir => recordings_dir_replace(w, "dir"),
        Redis => {
            let r = w.redis.as_ref().unwrap();
            r.signal(nix::sys::signal::Signal::SIGCONT);
            let answer = r.command(&["REPLICAOF", "NO", "ONE"]).unwrap();
            assert!(answer.starts_with("+OK"), "{answer}");
            set_redis_url(w, &r.url());
        }
        _ => {}
    }
}

/// A `docker` that floods its output with junk before doing its job.
fn junk_wrapper(root: &Path, docker: &Path) -> PathBuf {
    let path = root.join("junk-docker");
    let script = format!(
        "#!/bin/bash\nhead -c 5000000 /dev/urandom\nhead -c 200000 /dev/urandom >&2\nexec '{}' \"$@\"\n",
        docker.display()
    );
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Runs one row; never panics on a broken expectation (it is reported in `failure`).
fn run_case(row: &Row) -> Observed {
    let started = Instant::now();
    let mut obs = Observed::default();
    let redis = (row.dep == Redis).then(RedisServer::start);
    let mut builder = TestEnv::builder()
        .slots(2)
        .extra_toml("[mail]\ntimeout_secs = 2");
    if let Some(r) = &redis {
        builder = builder
            .count(2)
            .extra_toml(&format!("[cluster]\nredis_url = \"{}\"", r.url()));
    }
    let env = builder.build();
    let docker_junk = junk_wrapper(env.root(), env.docker.program());
    let bystander = env.request_live("Témoin — ne doit pas être coupé");
    let subject = (row.phase == Stop)
        .then(|| env.request_live_with(SUBJECT_NAME, |s| s.download_meeting = true));
    let out = env.tick();
    assert_eq!(
        out.code,
        Some(0),
        "healthy first tick of {}:\n{}",
        label(row),
        out.stderr
    );
    let bystander_slot = env.slot_in_pod(bystander.live).expect("the bystander runs");
    let mut w = World {
        env,
        redis,
        bystander,
        bystander_slot,
        subject,
        docker_junk,
    };
    let subject = match row.phase {
        Stop => {
            let s = w.subject.clone().unwrap();
            w.env.bbb.end_meeting(&s.meeting_id);
            s
        }
        Start => {
            let s = w
                .env
                .request_live_with(SUBJECT_NAME, |s| s.download_meeting = true);
            w.subject = Some(s.clone());
            s
        }
    };
    let fail = |obs: &mut Observed, why: String| {
        if obs.failure.is_none() {
            obs.failure = Some(why);
        }
    };
    let check_tick = |w: &World, obs: &mut Observed, out: &RunOutput, when: &str| {
        if out.stderr.contains("panicked") || out.code.is_none() {
            fail(obs, format!("{when}: panic or killed: {}", out.stderr));
        }
        if !bystander_ok(w) && obs.cut_by_mistake == 0 {
            obs.cut_by_mistake = 1;
            fail(obs, format!("{when}: the bystander live was cut"));
        }
        if containers_of(w, &subject.meeting_id) > 1 || broadcasters_named(&w.env, SUBJECT_NAME) > 1
        {
            if obs.double_starts == 0 {
                obs.double_starts = 1;
            }
            fail(obs, format!("{when}: the subject runs twice"));
        }
    };

    // The tick with the fault on.
    inject(&w, row);
    let out = w.env.tick();
    obs.exit_during = out.code;
    check_tick(&w, &mut obs, &out, "during the fault");
    obs.acted_during = match row.phase {
        Start => containers_of(&w, &subject.meeting_id) == 1,
        Stop => containers_of(&w, &subject.meeting_id) == 0,
    };
    let expected_act = match row.during {
        Acts => Some(true),
        Waits => Some(false),
        Either => None,
    };
    let acted = obs.acted_during;
    if let Some(e) = expected_act
        && e != acted
    {
        fail(
            &mut obs,
            format!(
                "during the fault: expected {}, got {} (exit {:?})\n{}",
                if e { "it to act" } else { "it to wait" },
                if acted { "acted" } else { "waited" },
                out.code,
                out.stderr
            ),
        );
    }
    if row.phase == Stop && !obs.acted_during && w.env.live_status(subject.live) != 1 {
        fail(
            &mut obs,
            "a live at status 2 whose container still runs".into(),
        );
    }
    if row.phase == Stop {
        let (delivered, kept) = recording_state(&w, &subject);
        if !delivered && !kept && obs.acted_during {
            obs.recordings_lost = 1;
            fail(&mut obs, "during the fault: the recording is gone".into());
        }
    }

    // Healed: converged within three ticks.
    heal(&w, row);
    let mut converged = false;
    for n in 1..=3 {
        let out = w.env.tick();
        check_tick(&w, &mut obs, &out, &format!("healed tick {n}"));
        converged = match row.phase {
            Start => {
                w.env.live_status(subject.live) == 1
                    && containers_of(&w, &subject.meeting_id) == 1
                    && broadcasters_named(&w.env, SUBJECT_NAME) == 1
            }
            Stop => {
                let (delivered, _) = recording_state(&w, &subject);
                w.env.live_status(subject.live) == 2
                    && containers_of(&w, &subject.meeting_id) == 0
                    && broadcasters_named(&w.env, SUBJECT_NAME) == 0
                    && delivered
                    && w.env.recordings().len() == 1
            }
        };
        if converged && out.code == Some(0) {
            obs.ticks_to_converge = n;
            break;
        }
        converged = false;
    }
    if !converged {
        fail(
            &mut obs,
            format!(
                "not converged 3 ticks after healing: status {}, containers {}, broadcasters {}, recordings {:?}\n{}",
                w.env.live_status(subject.live),
                containers_of(&w, &subject.meeting_id),
                broadcasters_named(&w.env, SUBJECT_NAME),
                w.env.recordings(),
                w.env.log_text()
            ),
        );
    }
    if row.phase == Stop {
        let (delivered, kept) = recording_state(&w, &subject);
        if !delivered && !kept {
            obs.recordings_lost = 1;
        }
    }
    if !w.env.docker.live_processes().is_empty() {
        fail(
            &mut obs,
            format!("docker processes left: {:?}", w.env.docker.live_processes()),
        );
    }
    w.env.assert_no_secret_anywhere();
    obs.seconds = started.elapsed().as_secs_f64();
    obs
}

fn label(row: &Row) -> String {
    format!(
        "{} {} during {}",
        row.dep.name(),
        row.kind.name(),
        match row.phase {
            Start => "start",
            Stop => "stop",
        }
    )
}

#[test]
fn fault_injection_table() {
    let suite = Instant::now();
    let redis = RedisServer::available();
    let rows: Vec<(usize, &Row)> = ROWS
        .iter()
        .enumerate()
        .filter(|(_, r)| redis || r.dep != Redis)
        .collect();
    let results: Mutex<Vec<(usize, Observed)>> = Mutex::new(Vec::new());
    let next = Mutex::new(rows.iter());
    // Three cases at a time: most of a case is waiting on timeouts.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let Some((i, row)) = next.lock().unwrap().next().copied() else {
                        break;
                    };
                    let obs = run_case(row);
                    results.lock().unwrap().push((i, obs));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);

    let mut table = String::new();
    table.push_str("| # | dependency | fault | during | injected | expected | observed |\n");
    table.push_str("|---|---|---|---|---|---|---|\n");
    let (mut cut, mut lost, mut doubles) = (0, 0, 0);
    let mut failures = Vec::new();
    for (i, obs) in &results {
        let row = &ROWS[*i];
        cut += obs.cut_by_mistake;
        lost += obs.recordings_lost;
        doubles += obs.double_starts;
        let acted = match (row.phase, obs.acted_during) {
            (Start, true) => "started",
            (Start, false) => "not started",
            (Stop, true) => "stopped",
            (Stop, false) => "kept running",
        };
        let observed = match &obs.failure {
            None => format!(
                "exit {} with the fault; {acted}; converged {} tick{} after",
                obs.exit_during.map_or("killed".into(), |c| c.to_string()),
                obs.ticks_to_converge,
                if obs.ticks_to_converge == 1 { "" } else { "s" }
            ),
            Some(_) => "**FAILED**".into(),
        };
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            i + 1,
            row.dep.name(),
            row.kind.name(),
            match row.phase {
                Start => "start",
                Stop => "stop",
            },
            row.injected,
            row.expected,
            observed
        ));
        if let Some(f) = &obs.failure {
            failures.push(format!("{} ({:.1} s): {f}", label(row), obs.seconds));
        }
    }
    let counts = format!(
        "faults tried {}, lives cut by mistake {cut}, recordings lost {lost}, double starts {doubles}",
        results.len()
    );
    println!("\n{table}\n{counts}\n");
    for n in NOT_RUN {
        println!("not run: {n}");
    }
    if !redis {
        println!("not run: the Redis rows (no redis-server on this machine)");
    }
    println!("suite time: {:.1} s", suite.elapsed().as_secs_f64());
    let slowest = results
        .iter()
        .map(|(i, o)| (o.seconds, label(&ROWS[*i])))
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
    println!("slowest case: {} ({:.1} s)", slowest.1, slowest.0);
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}\n\n{table}\n{counts}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!((cut, lost, doubles), (0, 0, 0), "{counts}");
}
