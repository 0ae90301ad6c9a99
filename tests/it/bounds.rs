//! Bounded everything: a dependency that hangs costs the tick at
//! most its timeout, a hung `docker compose` is killed with its process group, and a
//! lock left by a killed run never blocks the next tick. The default `TestEnv` has
//! `pod.timeout_secs = 3` (Pod and BBB) and `docker.timeout_secs = 5`.

use std::time::{Duration, Instant};

use crate::support::{BbbMode, Fault, RunOutput, SmtpMode, TestEnv, wait_until};

const LIVES: &str = "/rest/bbb_livestream/";

/// Runs a tick and returns it with its duration.
fn timed_tick(env: &TestEnv) -> (RunOutput, Duration) {
    let t = Instant::now();
    let out = env.tick();
    (out, t.elapsed())
}

/// A run that ends before this was cut: the hangs here never end by themselves (the
/// harness kills a run at `RUN_TIMEOUT`, 120 s). Far above the timeouts under test
/// (1 to 5 s), so that a loaded machine never fails a test by being slow: the error
/// message each test checks says which timeout cut the hang.
const CUT: Duration = Duration::from_secs(60);

/// The tick waited at least the timeout under test, and was cut (see [`CUT`]).
#[track_caller]
fn assert_cut_after(what: &str, elapsed: Duration, at_least: Duration) {
    assert!(
        elapsed >= at_least && elapsed < CUT,
        "{what}: took {elapsed:?}, expected at least {at_least:?} and a cut before {CUT:?}"
    );
}

#[test]
fn a_hung_compose_up_is_killed_with_its_group_at_the_docker_timeout() {
    let env = TestEnv::new();
    let r = env.request_live("Amphi hung");
    env.docker.hang("up", true);
    let (out, took) = timed_tick(&env);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_cut_after("tick with a hung up", took, Duration::from_secs(5));
    assert!(
        env.docker.live_processes().is_empty(),
        "left running: {:?}",
        env.docker.live_processes()
    );
    let log = env.log_text();
    assert!(
        log.contains("did not finish within 5s and was killed"),
        "{log}"
    );
    // The start was undone: live waiting, no container, no broadcaster.
    assert_eq!(env.pod.live(r.live)["status"], 0);
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert!(env.pod.broadcasters().is_empty());
    env.docker.hang("up", false);
    env.tick_ok();
    assert_eq!(
        env.pod.live(r.live)["status"],
        1,
        "retried at the next tick"
    );
}

#[test]
fn a_hung_pod_request_ends_at_the_pod_timeout() {
    let env = TestEnv::new();
    let r = env.request_live("Pod hung");
    env.pod.fail_next("GET", LIVES, Fault::Hang, 1);
    let (out, took) = timed_tick(&env);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_cut_after("tick with a hung Pod", took, Duration::from_secs(3));
    assert!(
        env.log_text().contains("did not answer"),
        "{}",
        env.log_text()
    );
    assert_eq!(env.pod.live(r.live)["status"], 0);
    assert!(env.docker.calls().iter().all(|c| !c.is("up")));
}

#[test]
fn a_hung_bbb_ends_at_its_timeout_and_stops_nothing() {
    let env = TestEnv::new();
    let r = env.request_live("BBB hung");
    env.tick_ok();
    env.bbb.end_meeting(&r.meeting_id);
    env.bbb.set_mode(BbbMode::Hang);
    let (out, took) = timed_tick(&env);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_cut_after("tick with a hung BBB", took, Duration::from_secs(3));
    assert_eq!(
        env.pod.live(r.live)["status"],
        1,
        "stopped on a failed read"
    );
    assert!(env.docker.running(&env.slot_dir(1)));
}

#[test]
fn a_hung_smtp_relay_does_not_hold_the_tick() {
    // mail.timeout_secs bounds each SMTP command; the whole send gets 4× that.
    let env = TestEnv::builder()
        .extra_toml("[mail]\ntimeout_secs = 1")
        .build();
    let r = env.request_live("SMTP hung");
    env.smtp.set_mode(SmtpMode::Hang);
    let (out, took) = timed_tick(&env);
    // The start mail and then the error digest each wait at most 4 s.
    assert_cut_after("tick with a hung SMTP relay", took, Duration::from_secs(1));
    assert!(env.smtp.connections() >= 1, "the mail was never tried");
    assert_eq!(
        out.code,
        Some(1),
        "the lost mail is reported\n{}",
        out.stderr
    );
    assert_eq!(
        env.pod.live(r.live)["status"],
        1,
        "a mail never undoes a start"
    );
    assert!(env.docker.running(&env.slot_dir(1)));
}

#[test]
fn a_lock_left_by_a_killed_run_does_not_block_the_next_tick() {
    let env = TestEnv::builder()
        .extra_toml("[pod]\ntimeout_secs = 300")
        .build();
    let r = env.request_live("Verrou");
    env.pod.fail_next("GET", LIVES, Fault::Hang, 1);
    let mut first = env.spawn(&["run"]);
    let lists = || {
        env.pod
            .requests()
            .iter()
            .filter(|q| q.method == "GET" && q.path == LIVES)
            .count()
    };
    // The first run asks for its two filtered lists together; one of them hangs.
    wait_until("the first run's requests", Duration::from_secs(30), || {
        lists() == 2
    });
    // While it holds the lock, another tick does nothing, at once.
    let (out, took) = timed_tick(&env);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(lists(), 2, "a second tick acted beside the first");
    assert!(
        env.log_text().contains("holds the lock"),
        "{}",
        env.log_text()
    );
    first.kill().expect("SIGKILL the first run");
    env.wait(first);
    // The kernel released the flock with the process: the next tick acts.
    env.tick_ok();
    assert_eq!(lists(), 4);
    assert_eq!(env.pod.live(r.live)["status"], 1);
}

/// Several dependencies hang in the same tick (a start and a stop under way): the
/// tick still ends within the sum of the timeouts on its path, leaves no process, and
/// the next ticks converge once the world is well again.
#[test]
fn a_tick_with_everything_hung_is_bounded_and_the_next_one_recovers() {
    let env = TestEnv::builder()
        .slots(2)
        .extra_toml("[mail]\ntimeout_secs = 1\n[pod]\ntimeout_secs = 2\n[docker]\ntimeout_secs = 2")
        .build();
    let ending = env.request_live_with("Fin", |l| l.download_meeting = true);
    env.tick_ok();
    env.bbb.end_meeting(&ending.meeting_id);
    let waiting = env.request_live("Début");
    env.docker.hang("down", true);
    env.pod
        .fail_next("GET", "/rest/bbb_meeting/", Fault::Hang, 1);
    env.smtp.set_mode(SmtpMode::Hang);
    let (out, took) = timed_tick(&env);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    // Slots run concurrently: down (2 s) beside GET meeting (2 s), then the digest
    // mail (4 s); far below the sum of every bound.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(
        env.docker.calls().iter().any(|c| c.is("down")),
        "down never tried"
    );
    assert!(env.smtp.connections() >= 1, "the mail was never tried");
    assert!(
        env.pod
            .requests()
            .iter()
            .any(|q| q.method == "GET" && q.path.starts_with("/rest/bbb_meeting/")),
        "the meeting was never read"
    );
    assert!(
        env.docker.live_processes().is_empty(),
        "left running: {:?}",
        env.docker.live_processes()
    );
    env.docker.hang("down", false);
    env.smtp.set_mode(SmtpMode::Normal);
    env.tick();
    env.tick_ok();
    assert_eq!(env.pod.live(ending.live)["status"], 2);
    assert_eq!(env.pod.live(waiting.live)["status"], 1);
    assert_eq!(env.recordings().len(), 1, "{:?}", env.recordings());
}

/// A cluster Redis that accepts connections and never answers (a wedged coordinator)
/// costs a claim at most its 5 s bound, and nothing is started without the claim.
#[test]
fn a_hung_cluster_redis_ends_at_the_claim_timeout() {
    // The kernel completes connections to a listening socket nobody accepts from.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = silent.local_addr().expect("addr").port();
    let env = TestEnv::builder()
        .count(2)
        .extra_toml(&format!(
            "[cluster]\nredis_url = \"redis://127.0.0.1:{port}/0\"\nclaim_ttl_secs = 30"
        ))
        .build();
    let r = env.request_live("Redis muet");
    let (out, took) = timed_tick(&env);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_cut_after(
        "tick with a hung cluster Redis",
        took,
        Duration::from_secs(5),
    );
    assert!(
        env.log_text().contains("did not answer within 5s"),
        "{}",
        env.log_text()
    );
    assert_eq!(env.pod.live(r.live)["status"], 0);
    assert!(env.docker.calls().iter().all(|c| !c.is("up")));
    drop(silent);
}
