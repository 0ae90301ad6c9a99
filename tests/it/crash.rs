//! Crash safety (docs/architecture.md): the binary is killed with SIGKILL at every step of
//! a start and of a stop, then normal ticks run, and the world must converge: one
//! container and one broadcaster for the live, no live at status 1 without its
//! container, no container without its live, the recording in recordings_dir exactly
//! once and finalized.
//!
//! A step is reached by making the fake that serves it block: the request hangs, the
//! test sees it arrive, and kills the binary there. Every Pod write is tried twice:
//! "lost" (Pod never applied it) and "applied" (Pod applied it, the answer never came),
//! and every docker step too ("before": nothing happened; "done": the daemon did it,
//! the client never returned). The file steps of the recording hand-over (copy, fsync,
//! link, verify, delete) are killed at each step by recording.rs's own unit test
//! (`a_kill_at_any_step_converges_to_exactly_one_delivery`); here the hand-over is killed at its Pod
//! step and between parking and delivery.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{BbbMode, Fault, Requested, SmtpMode, TestEnv, read_mkv};

/// Which part of the live's life the step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Start,
    Stop,
}

/// Where the binary is stopped.
#[derive(Clone, Copy, Debug)]
enum Hook {
    /// A Pod request (`method`, path prefix); `applied`: Pod applies it, then hangs.
    Pod {
        method: &'static str,
        prefix: &'static str,
        applied: bool,
    },
    /// A docker compose subcommand; `applied`: it does its work, then hangs.
    Docker { cmd: &'static str, applied: bool },
    /// BBB's getMeetings.
    Bbb,
    /// The SMTP relay (the mail after a start).
    Smtp,
}

struct Step {
    name: &'static str,
    part: Part,
    hook: Hook,
}

const fn pod(
    name: &'static str,
    part: Part,
    method: &'static str,
    prefix: &'static str,
    applied: bool,
) -> Step {
    Step {
        name,
        part,
        hook: Hook::Pod {
            method,
            prefix,
            applied,
        },
    }
}

const fn docker(name: &'static str, part: Part, cmd: &'static str, applied: bool) -> Step {
    Step {
        name,
        part,
        hook: Hook::Docker { cmd, applied },
    }
}

const LIVES: &str = "/rest/bbb_livestream/";
const MEETINGS: &str = "/rest/bbb_meeting/";
const BROADCASTERS: &str = "/rest/broadcasters/";

/// Every step of a start and of a stop, in the order the binary takes them.
const STEPS: &[Step] = &[
    pod("start: GET livestreams", Part::Start, "GET", LIVES, false),
    pod("start: GET meeting", Part::Start, "GET", MEETINGS, false),
    pod(
        "start: POST broadcaster, lost",
        Part::Start,
        "POST",
        BROADCASTERS,
        false,
    ),
    pod(
        "start: POST broadcaster, applied",
        Part::Start,
        "POST",
        BROADCASTERS,
        true,
    ),
    docker("start: compose up, before", Part::Start, "up", false),
    docker("start: compose up, done", Part::Start, "up", true),
    pod(
        "start: PATCH status 1, lost",
        Part::Start,
        "PATCH",
        LIVES,
        false,
    ),
    pod(
        "start: PATCH status 1, applied",
        Part::Start,
        "PATCH",
        LIVES,
        true,
    ),
    Step {
        name: "start: mail to the admins",
        part: Part::Start,
        hook: Hook::Smtp,
    },
    Step {
        name: "stop: getMeetings",
        part: Part::Stop,
        hook: Hook::Bbb,
    },
    docker(
        "stop: exec SIGINT ffmpeg, before",
        Part::Stop,
        "exec",
        false,
    ),
    docker("stop: exec SIGINT ffmpeg, done", Part::Stop, "exec", true),
    docker("stop: compose down, before", Part::Stop, "down", false),
    docker("stop: compose down, done", Part::Stop, "down", true),
    pod(
        "stop: PATCH status 2, lost",
        Part::Stop,
        "PATCH",
        LIVES,
        false,
    ),
    pod(
        "stop: PATCH status 2, applied",
        Part::Stop,
        "PATCH",
        LIVES,
        true,
    ),
    pod(
        "stop: DELETE broadcaster, lost",
        Part::Stop,
        "DELETE",
        BROADCASTERS,
        false,
    ),
    pod(
        "stop: DELETE broadcaster, applied",
        Part::Stop,
        "DELETE",
        BROADCASTERS,
        true,
    ),
    // After parking, before delivery: the recording waits in the pending store.
    pod(
        "hand-over: PATCH meeting published, lost",
        Part::Stop,
        "PATCH",
        MEETINGS,
        false,
    ),
    pod(
        "hand-over: PATCH meeting published, applied",
        Part::Stop,
        "PATCH",
        MEETINGS,
        true,
    ),
];

/// Ticks allowed after the crash before the world must have converged.
const MAX_TICKS: usize = 4;

fn crash_env() -> TestEnv {
    // Timeouts far above the test's wait, so the binary is killed at the hung step
    // rather than giving up on it by itself.
    TestEnv::builder()
        .slots(2)
        .extra_toml(
            "[pod]\ntimeout_secs = 300\n[docker]\ntimeout_secs = 300\n[mail]\ntimeout_secs = 300",
        )
        .build()
}

/// What the fakes had seen before the run, to recognise the step's own request.
struct Before {
    pod_matching: usize,
    pod_applied: usize,
    docker_hung: usize,
    docker_hung_after: usize,
    bbb: usize,
    smtp: usize,
}

fn count_pod(env: &TestEnv, method: &str, prefix: &str) -> usize {
    env.pod
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix))
        .count()
}

fn arm(env: &TestEnv, hook: Hook) -> Before {
    let mut before = Before {
        pod_matching: 0,
        pod_applied: env.pod.applied_then_hung(),
        docker_hung: 0,
        docker_hung_after: 0,
        bbb: env.bbb.requests(),
        smtp: env.smtp.connections(),
    };
    match hook {
        Hook::Pod {
            method,
            prefix,
            applied,
        } => {
            before.pod_matching = count_pod(env, method, prefix);
            let fault = if applied {
                Fault::ApplyThenHang
            } else {
                Fault::Hang
            };
            env.pod.fail_next(method, prefix, fault, 1);
        }
        Hook::Docker { cmd, applied } => {
            before.docker_hung = env.docker.hung(cmd);
            before.docker_hung_after = env.docker.hung_after(cmd);
            if applied {
                env.docker.hang_after(cmd, true);
            } else {
                env.docker.hang(cmd, true);
            }
        }
        Hook::Bbb => env.bbb.set_mode(BbbMode::Hang),
        Hook::Smtp => env.smtp.set_mode(SmtpMode::Hang),
    }
    before
}

fn reached(env: &TestEnv, hook: Hook, before: &Before) -> bool {
    match hook {
        Hook::Pod { applied: true, .. } => env.pod.applied_then_hung() > before.pod_applied,
        Hook::Pod { method, prefix, .. } => count_pod(env, method, prefix) > before.pod_matching,
        Hook::Docker { cmd, applied: true } => {
            env.docker.hung_after(cmd) > before.docker_hung_after
        }
        // Hung, not merely called: a call killed before it reaches the hang would
        // slip through once the hang is lifted and do its work behind the test's back.
        Hook::Docker { cmd, .. } => env.docker.hung(cmd) > before.docker_hung,
        Hook::Bbb => env.bbb.requests() > before.bbb,
        Hook::Smtp => env.smtp.connections() > before.smtp,
    }
}

fn disarm(env: &TestEnv, hook: Hook) {
    env.pod.clear_faults();
    match hook {
        Hook::Docker { cmd, .. } => {
            env.docker.hang(cmd, false);
            env.docker.hang_after(cmd, false);
        }
        Hook::Bbb => env.bbb.set_mode(BbbMode::Normal),
        Hook::Smtp => env.smtp.set_mode(SmtpMode::Normal),
        Hook::Pod { .. } => {}
    }
}

/// Runs one tick and SIGKILLs it once it reached the armed step.
fn tick_killed_at(env: &TestEnv, step: &Step) {
    let before = arm(env, step.hook);
    let mut child: Child = env.spawn(&["run"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if reached(env, step.hook, &before) {
            break;
        }
        if let Some(status) = child.try_wait().expect("polling the child") {
            let out = env.wait(child);
            panic!(
                "[{}] the tick ended ({status}) before reaching the step\n--- stderr ---\n{}\n--- log ---\n{}",
                step.name,
                out.stderr,
                env.log_text()
            );
        }
        assert!(
            Instant::now() < deadline,
            "[{}] the tick never reached the step\n--- log ---\n{}",
            step.name,
            env.log_text()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL the tick");
    let out = env.wait(child);
    assert_eq!(out.code, None, "[{}] the tick was not killed", step.name);
    disarm(env, step.hook);
}

fn read_json(path: &Path) -> Option<Value> {
    let text = fs::read(path).ok()?;
    Some(serde_json::from_slice(&text).unwrap_or_else(|e| {
        panic!(
            "{} is not JSON ({e}): {}",
            path.display(),
            String::from_utf8_lossy(&text)
        )
    }))
}

fn slot_state(env: &TestEnv, slot: u32) -> Option<Value> {
    read_json(&env.slot_dir(slot).join("live-state.json"))
}

fn files_named(dir: &Path, pred: &dyn Fn(&str) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            files_named(&p, pred, out);
        } else if p.file_name().and_then(|n| n.to_str()).is_some_and(pred) {
            out.push(p);
        }
    }
}

/// Everything observable, for failure messages.
fn world(env: &TestEnv, r: &Requested) -> String {
    let mut mkvs = Vec::new();
    files_named(env.root(), &|n| n.ends_with(".mkv"), &mut mkvs);
    format!(
        "live in Pod: {}\nbroadcasters: {}\nslot 1: running={} state={:?}\nslot 2: running={} state={:?}\nmkv files: {mkvs:#?}\ndocker calls: {:?}\nPod writes: {:?}\n--- log ---\n{}",
        env.pod.live(r.live),
        Value::Array(env.pod.broadcasters()),
        env.docker.running(&env.slot_dir(1)),
        slot_state(env, 1),
        env.docker.running(&env.slot_dir(2)),
        slot_state(env, 2),
        env.docker
            .calls()
            .iter()
            .filter_map(|c| c.subcommand().map(str::to_owned))
            .collect::<Vec<_>>(),
        env.pod
            .writes()
            .iter()
            .map(|w| format!("{} {}", w.method, w.path))
            .collect::<Vec<_>>(),
        env.log_text()
    )
}

/// The live runs in exactly one slot: Pod, container, broadcaster and state agree.
fn started(env: &TestEnv, r: &Requested) -> Result<u32, String> {
    let live = env.pod.live(r.live);
    if live["status"] != 1 {
        return Err(format!("live status is {} in Pod", live["status"]));
    }
    let server = live["server"].as_str().unwrap_or("");
    let slot: u32 = server
        .strip_prefix("1/")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("live server is {server:?}"))?;
    let running: Vec<u32> = (1..=2)
        .filter(|&s| env.docker.running(&env.slot_dir(s)))
        .collect();
    if running != [slot] {
        return Err(format!(
            "containers running in slots {running:?}, Pod says {slot}"
        ));
    }
    let state = slot_state(env, slot).ok_or("no state file in the live's slot")?;
    if state["phase"] != "running" || state["live"] != r.live {
        return Err(format!("slot state is {state}"));
    }
    let other = 3 - slot;
    if let Some(s) = slot_state(env, other) {
        return Err(format!("slot {other} is busy too: {s}"));
    }
    let broadcasters = env.pod.broadcasters();
    if broadcasters.len() != 1 {
        return Err(format!("{} broadcasters in Pod", broadcasters.len()));
    }
    if live["broadcaster_id"] != broadcasters[0]["id"] {
        return Err(format!(
            "the live points at broadcaster {}, Pod has {}",
            live["broadcaster_id"], broadcasters[0]["id"]
        ));
    }
    let mkvs = crate::support::FakeDocker::mkv_files(&env.slot_dir(slot));
    if mkvs.len() != 1 {
        return Err(format!("{} mkv files are being written", mkvs.len()));
    }
    Ok(slot)
}

/// The live is over: closed in Pod, nothing left running, the recording delivered
/// once, finalized, and nothing of it left anywhere else.
fn stopped(env: &TestEnv, r: &Requested) -> Result<(), String> {
    let live = env.pod.live(r.live);
    if live["status"] != 2 {
        return Err(format!("live status is {} in Pod", live["status"]));
    }
    for s in 1..=2 {
        if env.docker.running(&env.slot_dir(s)) {
            return Err(format!("a container still runs in slot {s}"));
        }
        if let Some(state) = slot_state(env, s) {
            return Err(format!("slot {s} is still busy: {state}"));
        }
    }
    if !env.pod.broadcasters().is_empty() {
        return Err("a broadcaster is left in Pod".into());
    }
    let delivered = env.recordings();
    if delivered.len() != 1 {
        return Err(format!("recordings_dir holds {delivered:?}"));
    }
    let name = delivered[0]
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if name != format!("{}.mkv", r.internal_meeting_id) {
        return Err(format!("the recording was delivered as {name}"));
    }
    let mkv = read_mkv(&delivered[0]);
    if !mkv.finalized || mkv.meeting_id != r.meeting_id {
        return Err(format!("the delivered recording is {mkv:?}"));
    }
    let mut elsewhere = Vec::new();
    files_named(
        &env.base_dir(),
        &|n| n.ends_with(".mkv") || n == "handover.json",
        &mut elsewhere,
    );
    if !elsewhere.is_empty() {
        return Err(format!("left behind: {elsewhere:?}"));
    }
    if env.pod.meeting(r.meeting)["encoding_step"] != 3 {
        return Err("the meeting is not marked published in Pod".into());
    }
    Ok(())
}

/// Ticks until `done` holds (at most [`MAX_TICKS`]), then one more tick that must exit
/// 0 and change nothing: converged means stable.
fn converge<T>(
    env: &TestEnv,
    r: &Requested,
    step: &str,
    what: &str,
    done: impl Fn(&TestEnv, &Requested) -> Result<T, String>,
) -> T {
    let mut last = String::new();
    for _ in 0..MAX_TICKS {
        env.tick();
        match done(env, r) {
            Ok(v) => {
                let writes = env.pod.writes().len();
                let docker = env.docker.calls().len();
                let out = env.tick();
                assert_eq!(
                    out.code,
                    Some(0),
                    "[{step}] the tick after convergence failed\n{}\n{}",
                    out.stderr,
                    world(env, r)
                );
                let changed: Vec<String> = env.pod.writes()[writes..]
                    .iter()
                    .map(|w| format!("{} {}", w.method, w.path))
                    .chain(
                        env.docker.calls()[docker..]
                            .iter()
                            // Questions, not changes: the running services, the
                            // compose's version, the daemon's state.
                            .filter(|c| {
                                !c.is("ps")
                                    && !c.is("version")
                                    && c.args.first().is_none_or(|a| a != "info")
                            })
                            .map(|c| c.args.join(" ")),
                    )
                    .collect();
                assert!(
                    changed.is_empty(),
                    "[{step}] not stable once {what}: the next tick did {changed:?}\n{}",
                    world(env, r)
                );
                done(env, r).unwrap_or_else(|e| panic!("[{step}] undone by a quiet tick: {e}"));
                return v;
            }
            Err(e) => last = e,
        }
    }
    panic!(
        "[{step}] not {what} after {MAX_TICKS} ticks: {last}\n{}",
        world(env, r)
    );
}

fn crash_case(step: &Step) {
    let env = crash_env();
    let r = env.request_live_with("Amphi A: examen", |l| l.download_meeting = true);
    if step.part == Part::Stop {
        env.tick_ok();
        started(&env, &r)
            .unwrap_or_else(|e| panic!("[{}] setup: {e}\n{}", step.name, world(&env, &r)));
        env.bbb.end_meeting(&r.meeting_id);
    }
    tick_killed_at(&env, step);
    if step.part == Part::Start {
        converge(&env, &r, step.name, "started", started);
        env.bbb.end_meeting(&r.meeting_id);
    }
    converge(&env, &r, step.name, "stopped", stopped);
    // A compose call orphaned by the kill (it runs in its own process group) is
    // killed by the next run's first docker command (docker.rs, "registry").
    let left = env.docker.live_processes();
    assert!(
        left.is_empty(),
        "[{}] docker processes left running: {left:?}",
        step.name
    );
    env.assert_no_secret_anywhere();
}

/// One test per part so a failure names the part; each case names its step.
#[test]
fn killed_at_every_step_of_a_start_the_next_ticks_converge() {
    for step in STEPS.iter().filter(|s| s.part == Part::Start) {
        crash_case(step);
    }
}

#[test]
fn killed_at_every_step_of_a_stop_the_next_ticks_converge() {
    for step in STEPS.iter().filter(|s| s.part == Part::Stop) {
        crash_case(step);
    }
}

/// Killed between parking and delivery while the share is away: the recording waits
/// in the pending store across ticks and is delivered once when the share is back.
#[test]
fn a_recording_waiting_for_its_share_survives_a_kill_and_is_delivered_once() {
    let env = crash_env();
    let r = env.request_live_with("Cours du soir", |l| l.download_meeting = true);
    env.tick_ok();
    started(&env, &r).unwrap_or_else(|e| panic!("{e}\n{}", world(&env, &r)));
    env.bbb.end_meeting(&r.meeting_id);
    let share = env.recordings_dir();
    let away = env.root().join("share-unmounted");
    fs::rename(&share, &away).expect("unmounting the share");
    let step = pod("hand-over, share away", Part::Stop, "PATCH", MEETINGS, true);
    tick_killed_at(&env, &step);
    let out = env.tick();
    assert_eq!(
        out.code,
        Some(1),
        "the missing share is an error\n{}",
        out.stderr
    );
    let mut parked = Vec::new();
    files_named(&env.base_dir(), &|n| n.ends_with(".mkv"), &mut parked);
    assert_eq!(parked.len(), 1, "parked: {parked:?}\n{}", world(&env, &r));
    assert_eq!(env.pod.live(r.live)["status"], 2);
    fs::rename(&away, &share).expect("mounting the share back");
    converge(&env, &r, step.name, "stopped", stopped);
}
