//! `cargo bench --bench tick`: whole cron ticks of the release binary, against the fakes
//! of the integration tests (tests/it/support) with injected latency, and a table of what
//! each scenario cost.
//!
//! Each run of the binary goes through a small wrapper (this same executable, re-run with
//! `--measure-child`): a fresh process whose only child is the tick, so its
//! `getrusage(RUSAGE_CHILDREN)` after the wait is exactly the tick's CPU time and peak
//! RSS (plus the fake `docker` scripts the tick ran and reaped). The fakes run on threads
//! of this process and are not counted. Wall times are the median of several runs; each
//! run of the start scenarios gets a fresh environment (a tick that started lives cannot
//! start them again).
//!
//! The critical path of a scenario is the sum of the round trips it cannot avoid: for
//! a start, the Pod round trips one live needs one after the other (counted by the fake
//! Pod in a tick that starts one live alone) times the latency, plus its one `docker
//! compose up`, beside which the broadcaster POST runs (so that round trip is not
//! added). Round trips are counted in one more tick of each scenario, not timed: the
//! fake Pod holds each wave of requests until none has arrived for a while
//! (`FakePod::count_round_trips`), which would distort the wall time.
//!
//! Pod comes in two flavours: 2.8 (its `?status=` filter works: the tick reads two short
//! lists) and 3.8 (the filter is ignored: the first tick reads every page of the whole
//! history, the next ones its end, and every page again every 10 minutes). Before each
//! measured tick the memory of the last whole read is dated now, so that no run meets
//! the whole read due in its server's own minute of every ten: that whole read is its
//! own scenario ("whole read").
//!
//! `cargo bench --bench tick -- idle busy` runs only the scenarios whose name contains
//! one of the words (idle, single, busy, history, 5000, meetings, startup, parse).
//! `BENCH_BEFORE=1` skips the request-count assertions, which check today's behaviour:
//! to measure an older commit with today's scenarios.

// A panic is the failure report, as in the tests.
#![allow(clippy::unwrap_used)]

// The fakes' own self-tests are compiled out here; their `use super::*` stays.
#[allow(unused_imports)]
#[path = "../it/support/mod.rs"]
mod support;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};
use sha1::{Digest, Sha1};

use support::{BBB_SECRET, LiveSpec, PodVersion, TestEnv};

/// First argument of the wrapper mode.
const MEASURE: &str = "--measure-child";
/// Added by the fakes before every HTTP answer (Pod and BBB).
const LATENCY: Duration = Duration::from_millis(50);
/// What one `docker compose up` takes in the busy scenarios.
const UP: Duration = Duration::from_secs(1);
/// Lives the busy tick starts.
const BUSY_LIVES: usize = 5;
/// Livestreams of history in Pod for the idle tick, for the busy tick, and Pod's page
/// size.
const HISTORY: usize = 1000;
const BUSY_HISTORY: usize = 300;
/// Livestreams of a Pod that served for years (a few lives a day).
const LONG_HISTORY: usize = 5000;
const PAGE_SIZE: usize = 12;
/// `pod.max_concurrency`'s default: list pages in flight at once.
const MAX_CONCURRENCY: usize = 16;
/// Quiet period that closes a round trip when the fake Pod counts them.
const QUIET: Duration = Duration::from_millis(200);
/// Meetings in the big getMeetings answers (10 attendees each): the count, and
/// the count that makes the size (the fake writes ~6.7 KB per meeting, so 5,000
/// meetings are ~34 MB, not 20).
const MANY_MEETINGS: [usize; 2] = [5000, 3000];
/// Longest a measured run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == MEASURE) {
        return measure_child(&args[1..]);
    }
    // cargo bench passes `--bench`; other words select scenarios.
    let filters: Vec<String> = args
        .iter()
        .filter_map(|a| a.to_str())
        .filter(|a| !a.starts_with("--"))
        .map(str::to_owned)
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));

    println!("{}", machine());
    println!(
        "latency {} ms per HTTP answer (Pod and BBB), docker compose up {} ms in the start scenarios",
        LATENCY.as_millis(),
        UP.as_millis()
    );
    println!();

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    if wanted("startup") {
        rows.push(startup());
    }
    if wanted("idle") {
        rows.push(idle());
    }
    let single =
        (wanted("single") || wanted("busy") || wanted("5000")).then(|| single_live(&mut notes));
    if let Some(single) = &single {
        rows.push(single.row.clone());
    }
    if wanted("busy") {
        let critical = single.as_ref().map(|s| s.critical);
        rows.push(busy(critical, None, &mut notes));
        for version in [PodVersion::V2_8, PodVersion::V3_8] {
            rows.push(busy(critical, Some(version), &mut notes));
        }
    }
    if wanted("5000") {
        let critical = single.as_ref().map(|s| s.critical);
        for version in [PodVersion::V2_8, PodVersion::V3_8] {
            rows.push(long_idle(version, false, &mut notes));
        }
        rows.push(long_idle(PodVersion::V3_8, true, &mut notes));
        for version in [PodVersion::V2_8, PodVersion::V3_8] {
            rows.push(long_busy(critical, version, &mut notes));
        }
    }
    if wanted("history") {
        for version in [PodVersion::V2_8, PodVersion::V3_8] {
            rows.push(history(version, LATENCY, &mut notes));
        }
        // The same tick without latency: what the fake Pod and the binary cost by
        // themselves (the fake renders every row for each page it serves).
        rows.push(history(PodVersion::V3_8, Duration::ZERO, &mut notes));
    }
    if wanted("meetings") || wanted("parse") {
        for n in MANY_MEETINGS {
            rows.push(meetings(n, &mut notes, wanted("parse")));
        }
    }

    print_table(&rows);
    println!();
    let floor = rows
        .iter()
        .flat_map(|r| &r.samples)
        .map(|s| s.floor_kib)
        .max()
        .unwrap_or(0);
    println!(
        "peak RSS is ru_maxrss of the child; it cannot read below the measuring wrapper's own {:.1} MiB",
        floor as f64 / 1024.0
    );
    for n in &notes {
        println!("{n}");
    }
    println!();
    println!("load after: {}", loadavg());
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------
// Measuring one run
// ---------------------------------------------------------------------------

/// What one run of the binary cost.
#[derive(Clone, Copy, Debug)]
struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: u64,
    /// The wrapper's own peak RSS when it started the child: the lowest `max_rss_kib`
    /// can read.
    floor_kib: u64,
}

/// The wrapper: `--measure-child <report> <program> <args…>`. Runs the program with this
/// process's environment, directory and standard streams, waits, and writes
/// `<wall ns> <user µs> <sys µs> <maxrss KiB> <exit code or -1> <own maxrss KiB>` to
/// `<report>`.
fn measure_child(args: &[OsString]) -> ExitCode {
    let [report, program, rest @ ..] = args else {
        eprintln!("usage: {MEASURE} <report> <program> [args…]");
        return ExitCode::from(2);
    };
    // Linux carries the high-water mark of the address space a process leaves at exec
    // into its ru_maxrss: the child's can read no lower than this process's VmHWM
    // (tiny, which is why the child is not spawned by the bench process itself, whose
    // fakes hold tens of MB). Reported as a floor. (Not RUSAGE_SELF: that one already
    // carries the bench process's mark.)
    let floor = fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    let t0 = Instant::now();
    let status = Command::new(program).args(rest).status();
    let wall = t0.elapsed();
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            eprintln!("running {program:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() * 1_000_000 + t.tv_usec();
    let line = format!(
        "{} {} {} {} {} {floor}\n",
        wall.as_nanos(),
        micros(usage.user_time()),
        micros(usage.system_time()),
        usage.max_rss(),
        status.code().unwrap_or(-1)
    );
    fs::write(report, line).expect("writing the measure report");
    ExitCode::SUCCESS
}

/// Runs the binary as `env.command(args)` would, through the wrapper. Panics (with the
/// output and the log) unless it exits 0.
fn measured(env: &TestEnv, args: &[&str]) -> Sample {
    let inner = env.command(args);
    let dir = env.root().join("bench");
    fs::create_dir_all(&dir).unwrap();
    let (report, out, err) = (dir.join("report"), dir.join("stdout"), dir.join("stderr"));
    let _ = fs::remove_file(&report);
    let mut outer = Command::new(std::env::current_exe().unwrap());
    // env.command clears the environment and sets these.
    outer.env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            outer.env(k, v);
        }
    }
    if let Some(cwd) = inner.get_current_dir() {
        outer.current_dir(cwd);
    }
    outer
        .arg(MEASURE)
        .arg(&report)
        .arg(inner.get_program())
        .args(inner.get_args())
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap());
    let mut child = outer.spawn().expect("spawning the measuring wrapper");
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bbb-pod-live {args:?} ran longer than {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let fields: Vec<i128> = fs::read_to_string(&report)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [wall_ns, user_us, sys_us, rss, code, floor] = fields[..] else {
        panic!(
            "the wrapper failed ({status})\n--- stderr ---\n{}",
            fs::read_to_string(&err).unwrap_or_default()
        );
    };
    if code != 0 {
        panic!(
            "bbb-pod-live {args:?} exited {code}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- log ---\n{}",
            fs::read_to_string(&out).unwrap_or_default(),
            fs::read_to_string(&err).unwrap_or_default(),
            env.log_text()
        );
    }
    Sample {
        wall: Duration::from_nanos(wall_ns as u64),
        cpu: Duration::from_micros((user_us + sys_us) as u64),
        max_rss_kib: rss as u64,
        floor_kib: floor as u64,
    }
}

/// What the fakes saw during one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    pod: usize,
    bbb: usize,
    docker: usize,
    mails: usize,
}

/// Clears the Pod request log and returns the other counters, for [`seen_since`].
fn seen_before(env: &TestEnv) -> Seen {
    env.pod.clear_requests();
    Seen {
        pod: 0,
        bbb: env.bbb.requests(),
        docker: env.docker.calls().len(),
        mails: env.smtp.messages().len(),
    }
}

fn seen_since(env: &TestEnv, before: Seen) -> Seen {
    Seen {
        pod: env.pod.requests().len(),
        bbb: env.bbb.requests() - before.bbb,
        docker: env.docker.calls().len() - before.docker,
        mails: env.smtp.messages().len() - before.mails,
    }
}

/// Whether the request counts are left unchecked (`BENCH_BEFORE=1`).
fn before() -> bool {
    std::env::var_os("BENCH_BEFORE").is_some_and(|v| v == "1")
}

/// Dates the memory of the last whole read of Pod's list now (if there is one).
fn fresh_memory(env: &TestEnv) {
    let path = env.base_dir().join("pod-list.json");
    if let Ok(text) = fs::read(&path) {
        let mut memory: serde_json::Value = serde_json::from_slice(&text).unwrap();
        memory["full_read_at"] = serde_json::json!(chrono::Utc::now().to_rfc3339());
        fs::write(&path, memory.to_string()).unwrap();
    }
}

/// One measured tick; what the fakes saw.
fn tick(env: &TestEnv) -> (Sample, Seen) {
    fresh_memory(env);
    let before = seen_before(env);
    let sample = measured(env, &["run"]);
    (sample, seen_since(env, before))
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// One line of the table.
#[derive(Clone, Debug)]
struct Row {
    name: String,
    samples: Vec<Sample>,
    seen: Option<Seen>,
    /// Pod round trips of one more (untimed) run, counted by the fake.
    round_trips: Option<usize>,
    /// The unavoidable round trips, with how they were counted.
    critical: Option<(Duration, String)>,
}

/// Every run of a scenario must have seen the same requests: the median describes one
/// kind of tick, not a mix.
fn same_seen(name: &str, seen: &[Seen]) -> Seen {
    let first = seen[0];
    assert!(
        seen.iter().all(|s| *s == first),
        "{name}: the runs did not send the same requests: {seen:?}"
    );
    first
}

/// The environment every tick scenario starts from: production's log level.
fn builder() -> support::TestEnvBuilder {
    TestEnv::builder().extra_toml("[server]\ndebug = false")
}

fn with_latency(env: &TestEnv) {
    env.pod.set_latency(LATENCY);
    env.bbb.set_latency(LATENCY);
}

fn startup() -> Row {
    let env = builder().build();
    let samples: Vec<Sample> = (0..21).map(|_| measured(&env, &["--version"])).collect();
    Row {
        name: "start-up (--version)".into(),
        samples,
        seen: None,
        round_trips: None,
        critical: None,
    }
}

fn idle() -> Row {
    let env = builder().build();
    with_latency(&env);
    // The first tick of a fresh base_dir is not the one cron repeats all day.
    env.tick_ok();
    let (samples, seen): (Vec<_>, Vec<_>) = (0..11).map(|_| tick(&env)).unzip();
    let seen = same_seen("idle", &seen);
    assert_eq!(seen.bbb, 0, "an idle tick asked BBB");
    if !before() {
        assert_eq!(seen.pod, 1, "idle: the last page of the list");
    }
    let round_trips = round_trips(&env);
    assert_eq!(round_trips, 1, "idle: one round trip");
    Row {
        name: "idle tick".into(),
        samples,
        seen: Some(seen),
        round_trips: Some(round_trips),
        critical: Some((LATENCY, "1 round trip: the last (only) page".into())),
    }
}

/// `n` old lives, closed long ago, on this server and another.
fn add_history(env: &TestEnv, n: usize) {
    for i in 0..n {
        let digest = hex::encode(Sha1::digest(format!("history-{i}")));
        let meeting = env.pod.add_meeting(
            &format!("{}-{}", &digest[..8], &digest[8..20]),
            &format!("{digest}-1700000000000"),
            &format!("Cours n°{i}"),
        );
        env.pod.add_live(LiveSpec {
            status: 2,
            server: Some(format!("{}/1", 1 + i % 2)),
            ..LiveSpec::waiting(meeting)
        });
    }
}

/// An environment with `n` lives waiting to start, one slot each, after `history` old
/// lives in a Pod of `version`.
fn start_env(n: usize, version: PodVersion, history: usize) -> TestEnv {
    let env = builder()
        .slots(n as u32)
        .pod_version(version)
        .page_size(PAGE_SIZE)
        .build();
    add_history(&env, history);
    for i in 0..n {
        env.request_live(&format!("Amphi {i} — cours magistral"));
    }
    env.docker.delay("up", UP);
    with_latency(&env);
    env
}

/// The Pod round trips of one more tick of `env`, counted by the fake (not timed).
fn round_trips(env: &TestEnv) -> usize {
    fresh_memory(env);
    env.pod.clear_requests();
    env.pod.count_round_trips(QUIET);
    env.tick_ok();
    env.pod.round_trips(|_| true)
}

/// Checks that the tick started every live of `env` that was waiting.
fn assert_all_started(env: &TestEnv, what: &str, lives: &[u64]) {
    for &id in lives {
        let status = env.pod.live(id)["status"].clone();
        assert_eq!(status, 1, "{what}: live {id} is not running after the tick");
    }
}

/// The waiting lives of `env`.
fn waiting(env: &TestEnv) -> Vec<u64> {
    env.pod
        .live_ids()
        .into_iter()
        .filter(|&id| env.pod.live(id)["status"] == 0)
        .collect()
}

/// Result of the single-live scenario: its row and the critical path it gives.
struct Single {
    row: Row,
    critical: Duration,
}

/// One live to start, alone: its Pod round trips (counted by the fake) are the ones
/// any start needs one after the other; the broadcaster POST rides beside the `up`, so
/// the critical path is (round trips − 1) × latency + the `up`. getMeetings goes beside
/// the meeting's read and adds no round trip.
fn single_live(notes: &mut Vec<String>) -> Single {
    let mut samples = Vec::new();
    let mut seen = Vec::new();
    let mut chain = Vec::new();
    for _ in 0..5 {
        let env = start_env(1, PodVersion::V3_8, 0);
        let lives = waiting(&env);
        let (s, n) = tick(&env);
        assert_all_started(&env, "single live", &lives);
        chain = env
            .pod
            .requests()
            .iter()
            .map(|r| format!("Pod {} {}?{}", r.method, r.path, r.query))
            .collect();
        chain.extend(env.bbb.queries().iter().map(|q| {
            let call = q.split('?').next().unwrap_or(q);
            format!("BBB {call}")
        }));
        samples.push(s);
        seen.push(n);
    }
    let seen = same_seen("single live", &seen);
    let env = start_env(1, PodVersion::V3_8, 0);
    let round_trips = round_trips(&env);
    let critical = LATENCY * (round_trips as u32 - 1) + UP;
    notes.push(format!(
        "one live's requests ({round_trips} Pod round trips, the POST beside docker compose up): {}",
        chain.join(", ")
    ));
    Single {
        row: Row {
            name: "start 1 live".into(),
            samples,
            seen: Some(seen),
            round_trips: Some(round_trips),
            critical: Some((
                critical,
                format!(
                    "{} × {} ms + 1 up (the POST beside it)",
                    round_trips - 1,
                    LATENCY.as_millis()
                ),
            )),
        },
        critical,
    }
}

fn flavour(version: PodVersion) -> &'static str {
    match version {
        PodVersion::V2_8 => "Pod 2.8, filter works",
        PodVersion::V3_8 => "Pod 3.8, filter ignored",
    }
}

/// `BUSY_LIVES` lives to start; with `history`, behind `BUSY_HISTORY` old lives in a Pod
/// of that flavour. On 3.8 the unavoidable path gains the waves of the other pages of
/// the list, asked all at once after the first, `MAX_CONCURRENCY` at a time.
fn busy(critical: Option<Duration>, history: Option<PodVersion>, notes: &mut Vec<String>) -> Row {
    let (version, old) = match history {
        Some(v) => (v, BUSY_HISTORY),
        None => (PodVersion::V3_8, 0),
    };
    let name = match history {
        Some(v) => format!(
            "busy tick ({BUSY_LIVES} starts), {old} old lives, {}",
            flavour(v)
        ),
        None => format!("busy tick ({BUSY_LIVES} starts)"),
    };
    let mut samples = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let env = start_env(BUSY_LIVES, version, old);
        let lives = waiting(&env);
        let (s, n) = tick(&env);
        assert_all_started(&env, &name, &lives);
        samples.push(s);
        seen.push(n);
    }
    let seen = same_seen(&name, &seen);
    let rows = old + BUSY_LIVES;
    let expected_lists = match (version, rows.div_ceil(PAGE_SIZE)) {
        (PodVersion::V3_8, pages) if pages > 1 => pages + 1,
        _ => 2,
    };
    let env = start_env(BUSY_LIVES, version, old);
    let round_trips = round_trips(&env);
    let lists = env
        .pod
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/rest/bbb_livestream/")
        .count();
    assert_eq!(lists, expected_lists, "{name}: list requests");
    let waves = (expected_lists - 2).div_ceil(MAX_CONCURRENCY);
    let extra = LATENCY * waves as u32;
    if history.is_none() {
        let sequential = LATENCY * (seen.pod + seen.bbb) as u32 + UP * BUSY_LIVES as u32;
        notes.push(format!(
            "busy tick one call after another (the PHP's way): {} requests × {} ms + {BUSY_LIVES} ups = {} ms",
            seen.pod + seen.bbb,
            LATENCY.as_millis(),
            sequential.as_millis()
        ));
    }
    Row {
        name,
        samples,
        seen: Some(seen),
        round_trips: Some(round_trips),
        critical: critical.map(|c| {
            if extra.is_zero() {
                (c, "the slowest live's chain (start 1 live)".into())
            } else {
                (
                    c + extra,
                    format!(
                        "the slowest live's chain + {waves} round trips: the other {} pages, {MAX_CONCURRENCY} at a time",
                        expected_lists - 2
                    ),
                )
            }
        }),
    }
}

/// An idle tick behind `LONG_HISTORY` old lives, after a first tick read them all; with
/// `whole`, the whole read a server makes every 10 minutes (the memory of the last one
/// removed before each run).
fn long_idle(version: PodVersion, whole: bool, notes: &mut Vec<String>) -> Row {
    let env = builder().pod_version(version).page_size(PAGE_SIZE).build();
    add_history(&env, LONG_HISTORY);
    env.tick_ok();
    with_latency(&env);
    let memory = env.base_dir().join("pod-list.json");
    let name = if whole {
        format!(
            "whole read (every 10 min), {LONG_HISTORY} old lives, {}",
            flavour(version)
        )
    } else {
        format!("idle, {LONG_HISTORY} old lives, {}", flavour(version))
    };
    let (samples, seen): (Vec<_>, Vec<_>) = (0..5)
        .map(|_| {
            if whole {
                let _ = fs::remove_file(&memory);
            }
            tick(&env)
        })
        .unzip();
    let seen = same_seen(&name, &seen);
    assert_eq!(seen.bbb, 0, "{name}: BBB asked");
    let pages = LONG_HISTORY.div_ceil(PAGE_SIZE);
    let (requests, rounds, how) = match (version, whole) {
        (PodVersion::V2_8, _) => (2, 1, "the first page of the two filtered lists".into()),
        (PodVersion::V3_8, false) => (1, 1, "the last page".into()),
        (PodVersion::V3_8, true) => (
            pages + 1,
            1 + (pages - 1).div_ceil(MAX_CONCURRENCY),
            format!(
                "the first pages, then {} pages {MAX_CONCURRENCY} at a time",
                pages - 1
            ),
        ),
    };
    if whole {
        let _ = fs::remove_file(&memory);
    }
    let round_trips = round_trips(&env);
    if !before() {
        assert_eq!(seen.pod, requests, "{name}: requests");
        assert_eq!(round_trips, rounds, "{name}: round trips");
    }
    if whole {
        notes.push(format!(
            "{name}: once every 10 minutes per server; the other 9 ticks are the idle one"
        ));
    }
    Row {
        name,
        samples,
        seen: Some(seen),
        round_trips: Some(round_trips),
        critical: Some((LATENCY * rounds as u32, how)),
    }
}

/// `BUSY_LIVES` lives requested behind `LONG_HISTORY` old lives, after a tick that read
/// those (the minute before, as cron runs it).
fn long_busy(critical: Option<Duration>, version: PodVersion, notes: &mut Vec<String>) -> Row {
    let name = format!(
        "busy tick ({BUSY_LIVES} starts), {LONG_HISTORY} old lives, {}",
        flavour(version)
    );
    let env_for_run = || {
        let env = builder()
            .slots(BUSY_LIVES as u32)
            .pod_version(version)
            .page_size(PAGE_SIZE)
            .build();
        add_history(&env, LONG_HISTORY);
        env.tick_ok();
        for i in 0..BUSY_LIVES {
            env.request_live(&format!("Amphi {i} — cours magistral"));
        }
        env.docker.delay("up", UP);
        with_latency(&env);
        env
    };
    let mut samples = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let env = env_for_run();
        let lives = waiting(&env);
        let (s, n) = tick(&env);
        assert_all_started(&env, &name, &lives);
        samples.push(s);
        seen.push(n);
    }
    let seen = same_seen(&name, &seen);
    let env = env_for_run();
    let round_trips = round_trips(&env);
    let lists = env
        .pod
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/rest/bbb_livestream/")
        .count();
    // 5,000 rows end on page 417 (8 rows); 5,005 on page 418: that page and page 417.
    let (expected, waves) = match version {
        PodVersion::V2_8 => (2, 0),
        PodVersion::V3_8 => (2, 1),
    };
    if !before() {
        assert_eq!(lists, expected, "{name}: list requests");
    }
    notes.push(format!("{name}: {lists} list requests"));
    Row {
        name,
        samples,
        seen: Some(seen),
        round_trips: Some(round_trips),
        critical: critical.map(|c| {
            if waves == 0 {
                (c, "the slowest live's chain (start 1 live)".into())
            } else {
                (
                    c + LATENCY * waves,
                    "the slowest live's chain + 1 round trip: the page the new rows crossed to"
                        .into(),
                )
            }
        }),
    }
}

fn history(version: PodVersion, latency: Duration, notes: &mut Vec<String>) -> Row {
    let env = builder().pod_version(version).page_size(PAGE_SIZE).build();
    add_history(&env, HISTORY);
    env.pod.set_latency(latency);
    env.tick_ok();
    let name = format!(
        "idle, {HISTORY} lives of history, {}, {} ms",
        flavour(version),
        latency.as_millis()
    );
    let (samples, seen): (Vec<_>, Vec<_>) = (0..5).map(|_| tick(&env)).unzip();
    let seen = same_seen(&name, &seen);
    assert_eq!(
        seen.bbb, 0,
        "history: no live runs here, BBB must not be asked"
    );
    let pages = HISTORY.div_ceil(PAGE_SIZE);
    let (requests, rounds, how) = match version {
        PodVersion::V2_8 => (
            2,
            1,
            "the first page of the two filtered lists, together".to_string(),
        ),
        PodVersion::V3_8 => (1, 1, "the last page".to_string()),
    };
    if !before() {
        assert_eq!(seen.pod, requests, "{name}: requests");
    }
    let round_trips = round_trips(&env);
    if !before() {
        assert_eq!(round_trips, rounds, "{name}: round trips");
    }
    if !latency.is_zero() && version == PodVersion::V3_8 {
        notes.push(format!(
            "history: reading its {pages} pages one after another would take {} ms of latency alone",
            (latency * pages as u32).as_millis()
        ));
    }
    Row {
        name,
        samples,
        seen: Some(seen),
        round_trips: Some(round_trips),
        critical: Some((latency * rounds as u32, how)),
    }
}

/// A live running here (so the tick asks getMeetings) among `n` other meetings.
fn meetings(n: usize, notes: &mut Vec<String>, parse: bool) -> Row {
    let env = builder().build();
    env.bbb.add_many(n);
    let live = env.request_live("Amphi — le live qui tourne").live;
    env.tick_ok();
    assert_all_started(&env, "getMeetings scenario", &[live]);

    let (doc, fetch) = fetch_meetings(&env.bbb.url());
    let mb = doc.len() as f64 / 1e6;
    notes.push(format!(
        "getMeetings answer of the fake: {} bytes ({mb:.1} MB) for {n} meetings with 10 attendees each (+1 for the live); the fake takes {} ms to build and send it",
        doc.len(),
        fetch.as_millis()
    ));
    assert!(mb > 15.0, "the getMeetings answer is only {mb:.1} MB");
    if parse {
        notes.push(parse_speed(&doc, n + 1));
    }

    with_latency(&env);
    let (samples, seen): (Vec<_>, Vec<_>) = (0..5).map(|_| tick(&env)).unzip();
    let seen = same_seen("getMeetings", &seen);
    assert_eq!(seen.bbb, 1, "getMeetings: the tick must ask BBB once");
    Row {
        name: format!("getMeetings of {n} ({mb:.1} MB)"),
        samples,
        seen: Some(seen),
        round_trips: None,
        critical: Some((
            LATENCY * 2 + fetch,
            "2 round trips + the fake's median time to build and send the answer".into(),
        )),
    }
}

/// The fake's getMeetings answer, and the median time of 5 plain fetches of it (no
/// latency set): what any client waits for the fake to build and send it.
fn fetch_meetings(api: &str) -> (Vec<u8>, Duration) {
    let checksum = hex::encode(Sha1::digest(format!("getMeetings{BBB_SECRET}")));
    let url = format!("{api}/getMeetings?checksum={checksum}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut times = Vec::new();
    let mut doc = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        doc = rt.block_on(async {
            let r = reqwest::get(&url).await.unwrap();
            assert!(r.status().is_success(), "getMeetings: HTTP {}", r.status());
            r.bytes().await.unwrap().to_vec()
        });
        times.push(t0.elapsed());
    }
    assert!(
        doc.windows(b"<returncode>SUCCESS".len())
            .any(|w| w == b"<returncode>SUCCESS"),
        "getMeetings did not succeed: {}",
        String::from_utf8_lossy(&doc[..doc.len().min(300)])
    );
    (doc, median(times))
}

/// ms per MB of `bbb_pod_live::bbb::parse_meetings` on `doc` (median of 7, in this
/// process: a release build, as `cargo bench` builds the library).
fn parse_speed(doc: &[u8], expected: usize) -> String {
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..7 {
        let t0 = Instant::now();
        let meetings = bbb_pod_live::bbb::parse_meetings(doc).expect("parsing getMeetings");
        times.push(t0.elapsed());
        count = meetings.len();
    }
    assert_eq!(count, expected, "parsed meetings");
    times.sort();
    let median = times[times.len() / 2];
    let mb = doc.len() as f64 / 1e6;
    format!(
        "parse: bbb::parse_meetings on the {mb:.1} MB answer: median {:.1} ms over 7 runs (min {:.1}, max {:.1}) = {:.2} ms/MB, {count} meetings",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
        ms(median) / mb
    )
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn print_table(rows: &[Row]) {
    let header = [
        "scenario",
        "runs",
        "wall median (min-max) ms",
        "critical path ms",
        "ratio",
        "CPU ms (median)",
        "peak RSS MiB (max)",
        "Pod req",
        "Pod round trips",
        "BBB req",
        "docker",
        "mails",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let walls: Vec<Duration> = r.samples.iter().map(|s| s.wall).collect();
        let wall = median(walls.clone());
        let (lo, hi) = (
            walls.iter().min().copied().unwrap_or_default(),
            walls.iter().max().copied().unwrap_or_default(),
        );
        let cpu = median(r.samples.iter().map(|s| s.cpu).collect());
        let rss = r.samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0);
        let count =
            |f: fn(&Seen) -> usize| r.seen.as_ref().map_or("-".into(), |s| f(s).to_string());
        lines.push(vec![
            r.name.clone(),
            r.samples.len().to_string(),
            format!("{:.1} ({:.1}-{:.1})", ms(wall), ms(lo), ms(hi)),
            r.critical
                .as_ref()
                .map_or("-".into(), |(c, _)| format!("{:.0}", ms(*c))),
            r.critical
                .as_ref()
                .filter(|(c, _)| !c.is_zero())
                .map_or("-".into(), |(c, _)| format!("{:.2}", ms(wall) / ms(*c))),
            format!("{:.1}", ms(cpu)),
            format!("{:.1}", rss as f64 / 1024.0),
            count(|s| s.pod),
            r.round_trips.map_or("-".into(), |n| n.to_string()),
            count(|s| s.bbb),
            count(|s| s.docker),
            count(|s| s.mails),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (n, l) in lines.iter().enumerate() {
        let mut out = String::from("|");
        for (cell, w) in l.iter().zip(&widths) {
            let pad = w - cell.chars().count();
            let _ = write!(out, " {cell}{} |", " ".repeat(pad));
        }
        println!("{out}");
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
            println!("|{}|", rule.join("|"));
        }
    }
    println!();
    for r in rows {
        if let Some((_, how)) = &r.critical {
            println!("critical path of {}: {how}", r.name);
        }
    }
}

/// Cores, CPU model and load, from /proc.
fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".into(), |(_, m)| m.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "machine: {cores} cores, {model}; load before: {}",
        loadavg()
    )
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
