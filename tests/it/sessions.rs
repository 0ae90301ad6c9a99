//! A live is one BBB session, and one bad row costs one row. Recurring rooms
//! (Moodle and Greenlight reuse one `meetingID` for every session; Pod makes one meeting
//! row per `internalMeetingID`), double requests, malformed and deleted livestream rows,
//! the `recordings` command for what can no longer be handed over, and SIGTERM/SIGINT.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::redis::RedisServer;
use crate::support::*;

/// The live was closed in Pod (status 2 with an end date).
#[track_caller]
fn assert_closed(env: &TestEnv, live: u64) {
    let l = env.pod.live(live);
    assert_eq!(l["status"], json!(2), "live {live} should be closed: {l}");
    assert!(
        l["end_date"].is_string(),
        "live {live} has no end_date: {l}"
    );
}

/// A new session of `r`'s room: same `meetingID`, a new `internalMeetingID`, listed by
/// BBB beside the sessions already there, and a new meeting row in Pod (as Pod's `bbb`
/// cron makes one per session). Returns (Pod meeting pk, internal id).
fn next_session(env: &TestEnv, r: &Requested, name: &str, running: bool) -> (u64, String) {
    let stem = r.internal_meeting_id.rsplit_once('-').unwrap().0;
    let internal = format!("{stem}-{}", chrono::Utc::now().timestamp_millis());
    assert_ne!(internal, r.internal_meeting_id);
    env.bbb.add_session(&r.meeting_id, &internal, name, running);
    let pk = env.pod.add_meeting(&r.meeting_id, &internal, name);
    (pk, internal)
}

/// A live requested in Pod for the new session of `r`'s room.
fn request_next_session(env: &TestEnv, r: &Requested, name: &str) -> Requested {
    let (meeting, internal) = next_session(env, r, name, true);
    let mut spec = LiveSpec::waiting(meeting);
    spec.download_meeting = true;
    let live = env.pod.add_live(spec);
    Requested {
        live,
        meeting,
        meeting_id: r.meeting_id.clone(),
        internal_meeting_id: internal,
    }
}

/// The tick that stops a recorded live whose room runs its next session: the live is
/// stopped at once and its recording kept for the admin (it may hold the next class),
/// which is reported (exit 1, once).
#[track_caller]
fn tick_keeping_the_recording(env: &TestEnv, r: &Requested) {
    let out = env.tick();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("kept, not handed over"),
        "{}",
        out.stderr
    );
    assert!(
        !env.delivered_path(r).exists(),
        "never delivered under its session"
    );
}

fn recorded(env: &TestEnv, name: &str) -> Requested {
    env.request_live_with(name, |s| s.download_meeting = true)
}

/// The mkv files under base_dir outside the slot directories (parked or kept).
fn kept_mkvs(env: &TestEnv) -> Vec<PathBuf> {
    files_under(&env.base_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .filter(|p| {
            !p.components().any(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .starts_with("bbb-live-streaming")
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Session identity
// ---------------------------------------------------------------------------

#[test]
fn a_live_stops_when_its_session_ended_though_a_new_session_of_the_room_runs_beside_it() {
    // The teacher ended the lecture and opened the room again at once: BBB lists the
    // ended session and the new one under the same meetingID.
    let env = TestEnv::builder().slots(1).build();
    let r = recorded(&env, "Amphi récurrent");
    env.tick_ok();
    let slot = env.assert_running(r.live);
    env.bbb.end_session(&r.internal_meeting_id);
    next_session(&env, &r, "Amphi récurrent", true);
    tick_keeping_the_recording(&env, &r);
    assert_closed(&env, r.live);
    assert!(!env.docker.running(&env.slot_dir(slot)));
    // Its streamer waited on the room and joined the next class: never handed over
    // under its own session's id (nor the new one's), kept for the admin.
    assert_eq!(env.recordings(), Vec::<PathBuf>::new());
    assert_eq!(kept_mkvs(&env).len(), 1);
}

#[test]
fn a_live_stops_when_another_session_of_its_room_is_listed_alone() {
    let env = TestEnv::builder().slots(1).build();
    let r = recorded(&env, "Salle Moodle");
    env.tick_ok();
    env.assert_running(r.live);
    env.bbb.remove_session(&r.internal_meeting_id);
    next_session(&env, &r, "Salle Moodle", true);
    tick_keeping_the_recording(&env, &r);
    assert_closed(&env, r.live);
    assert_eq!(env.recordings(), Vec::<PathBuf>::new());
    assert_eq!(kept_mkvs(&env).len(), 1);
}

#[test]
fn the_next_sessions_live_takes_the_slot_of_the_ended_one_on_a_one_slot_server() {
    let env = TestEnv::builder().slots(1).build();
    let r = recorded(&env, "Cours du lundi");
    env.tick_ok();
    env.assert_running(r.live);
    env.bbb.end_session(&r.internal_meeting_id);
    let next = request_next_session(&env, &r, "Cours du lundi");
    // The old live stops (its slot frees), the new one is started, at most a tick later.
    tick_keeping_the_recording(&env, &r);
    assert_closed(&env, r.live);
    if env.live_status(next.live) == 0 {
        env.tick_ok();
    }
    let slot = env.assert_running(next.live);
    let state: Value =
        serde_json::from_slice(&fs::read(env.slot_dir(slot).join("live-state.json")).unwrap())
            .unwrap();
    assert_eq!(
        state["session"],
        json!(next.internal_meeting_id),
        "the slot records the session it streams: {state}"
    );
    assert_eq!(env.docker.count("up"), 2);
}

#[test]
fn a_waiting_live_of_an_ended_session_is_never_started_while_its_room_runs_another() {
    let env = TestEnv::builder().slots(2).end_confirmations(2).build();
    let old = env.request_live("Salle rouverte");
    env.bbb.end_session(&old.internal_meeting_id);
    next_session(&env, &old, "Salle rouverte", true);
    for _ in 0..2 {
        let out = env.tick_ok();
        assert_eq!(out.stderr, "", "an old request is not an error");
    }
    assert_eq!(env.docker.count("up"), 0, "{}", env.log_text());
    assert_closed(&env, old.live);
    assert!(env.pod.broadcasters().is_empty());
}

#[test]
fn an_absence_is_confirmed_against_the_session_not_the_room() {
    // Scalelite leaves the ended session out of getMeetings (its node is offline);
    // isMeetingRunning would say the room runs (another session). getMeetingInfo
    // names the session BBB runs now: not ours, so the live is stopped.
    let env = TestEnv::builder().slots(1).build();
    let r = recorded(&env, "Nœud perdu");
    env.tick_ok();
    env.assert_running(r.live);
    env.bbb.end_session(&r.internal_meeting_id);
    next_session(&env, &r, "Nœud perdu", true);
    env.bbb.hide_from_list(&r.meeting_id, true);
    tick_keeping_the_recording(&env, &r);
    assert_closed(&env, r.live);
    assert!(
        env.bbb
            .queries()
            .iter()
            .any(|q| q.contains(&format!("meetingID={}", r.meeting_id))),
        "the absence was asked about: {:?}",
        env.bbb.queries()
    );
}

#[test]
fn an_absent_session_that_getmeetinginfo_still_runs_keeps_its_live() {
    let env = TestEnv::builder().slots(1).build();
    let r = recorded(&env, "Nœud hors liste");
    env.tick_ok();
    let slot = env.assert_running(r.live);
    env.bbb.hide_from_list(&r.meeting_id, true);
    for _ in 0..2 {
        env.tick_ok();
        assert_eq!(env.live_status(r.live), 1);
        assert!(env.docker.running(&env.slot_dir(slot)));
    }
}

#[test]
fn a_live_taken_over_from_the_php_learns_its_session_from_pod() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Repris du PHP");
    // Its container, started from the PHP's compose file in the same slot directory.
    env.php_live_in_slot(r.live, 1);
    env.tick_ok();
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1);
    // The room's next session starts while the old one is still listed as ended.
    env.bbb.end_session(&r.internal_meeting_id);
    next_session(&env, &r, "Repris du PHP", true);
    env.tick_ok();
    assert_closed(&env, r.live);
    assert!(!env.docker.running(&env.slot_dir(1)));
}

#[test]
fn a_state_file_written_before_sessions_existed_still_loads_and_learns_its_session() {
    // An upgrade from a version whose live-state.json had no `session`.
    let env = TestEnv::builder().slots(1).build();
    let r = recorded(&env, "Mise à jour");
    env.tick_ok();
    let path = env.slot_dir(1).join("live-state.json");
    let mut state: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    state.as_object_mut().unwrap().remove("session");
    fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1);
    env.bbb.end_session(&r.internal_meeting_id);
    next_session(&env, &r, "Mise à jour", true);
    tick_keeping_the_recording(&env, &r);
    assert_closed(&env, r.live);
}

// ---------------------------------------------------------------------------
// 2. One streamer per session
// ---------------------------------------------------------------------------

#[test]
fn of_two_waiting_rows_for_one_meeting_the_oldest_starts_and_the_other_is_closed() {
    let env = TestEnv::builder().slots(2).build();
    let first = recorded(&env, "Double clic");
    let second = env.pod.add_live(LiveSpec::waiting(first.meeting));
    let out = env.tick_ok();
    assert_eq!(out.stderr, "", "a double request is not an error");
    env.assert_running(first.live);
    assert_closed(&env, second);
    assert_eq!(env.docker.count("up"), 1);
    assert_eq!(
        env.pod.broadcasters().len(),
        1,
        "no broadcaster for the duplicate"
    );
    let log = env.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("INFO") && l.contains(&format!("live={second}")))
        .unwrap_or_else(|| panic!("no INFO line about live {second}:\n{log}"));
    assert!(
        line.contains(&format!("{}", first.live)),
        "the line names the live kept: {line}"
    );
    // At the end, one recording handed over; no exit 1 for a second one.
    env.bbb.end_session(&first.internal_meeting_id);
    env.tick_ok();
    env.tick_ok();
    assert_eq!(env.recordings().len(), 1);
}

#[test]
fn a_waiting_row_for_a_session_already_streamed_here_is_closed() {
    let env = TestEnv::builder().slots(2).build();
    let r = env.request_live("Deuxième modérateur");
    env.tick_ok();
    let slot = env.assert_running(r.live);
    let late = env.pod.add_live(LiveSpec::waiting(r.meeting));
    env.tick_ok();
    assert_closed(&env, late);
    assert_eq!(env.docker.count("up"), 1);
    assert_eq!(env.pod.broadcasters().len(), 1);
    assert_eq!(env.live_status(r.live), 1);
    assert_eq!(env.slot_of(r.live), slot);
}

#[test]
fn with_cluster_two_requests_for_one_session_start_one_streamer_across_servers() {
    let redis = RedisServer::start();
    let toml = format!(
        "[cluster]\nredis_url = \"{}\"\nclaim_ttl_secs = 30",
        redis.url()
    );
    let a = TestEnv::builder()
        .slots(2)
        .server_number(1)
        .count(2)
        .extra_toml(&toml)
        .build();
    let b = TestEnv::builder()
        .slots(2)
        .server_number(2)
        .count(2)
        .extra_toml(&toml)
        .build_beside(&a);
    let first = a.request_live("Deux serveurs, une salle");
    // The second request, for the same session, through another meeting row is not
    // possible in Pod: one row per session. Two rows for the meeting it is.
    let second = a.pod.add_live(LiveSpec::waiting(first.meeting));
    for _ in 0..2 {
        let (ca, cb) = (a.spawn(&["run"]), b.spawn(&["run"]));
        let (oa, ob) = (a.wait(ca), b.wait(cb));
        assert_eq!(oa.code, Some(0), "{}", oa.stderr);
        assert_eq!(ob.code, Some(0), "{}", ob.stderr);
    }
    assert_eq!(
        a.docker.count("up") + b.docker.count("up"),
        1,
        "one streamer for the session"
    );
    assert_eq!(a.pod.broadcasters().len(), 1);
    let statuses = [a.live_status(first.live), a.live_status(second)];
    assert!(
        statuses.contains(&1) && statuses.contains(&2),
        "{statuses:?}"
    );
}

// ---------------------------------------------------------------------------
// 3. One bad row costs one row
// ---------------------------------------------------------------------------

#[test]
fn malformed_rows_are_skipped_and_reported_and_the_rest_is_acted_on() {
    let env = TestEnv::builder().slots(3).build();
    let bad: Vec<(&str, Option<Value>)> = vec![
        ("server", Some(json!(11))),
        ("enable_chat", Some(json!("yes"))),
        ("meeting", Some(Value::Null)),
        ("status", None),
        ("status", Some(json!(7))),
        ("id", Some(json!("douze"))),
    ];
    let mut bad_lives = Vec::new();
    for (i, (field, value)) in bad.iter().enumerate() {
        let r = env.request_live(&format!("Ligne abîmée {i}"));
        env.pod.corrupt_live(r.live, field, value.clone());
        bad_lives.push((r.live, *field));
    }
    let good = env.request_live("Ligne saine");
    let out = env.tick_ok();
    env.assert_running(good.live);
    assert_eq!(env.docker.count("up"), 1, "only the good row was started");
    for (live, field) in &bad_lives {
        if *field == "id" {
            continue;
        }
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(&format!("live={live}")) && l.contains(field)),
            "skipped live {live} ({field}) reported on stderr:\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("douze") || out.stderr.contains("\"id\""),
        "{}",
        out.stderr
    );
    // Not reported again on every tick (cron would mail every minute).
    let out = env.tick_ok();
    assert_eq!(out.stderr, "", "reported at most once an hour");
    assert!(env.log_text().contains("DEBUG"));
}

#[test]
fn a_malformed_row_of_a_live_running_here_leaves_it_and_its_slot_alone() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Abîmée en route");
    env.tick_ok();
    env.assert_running(r.live);
    env.pod
        .corrupt_live(r.live, "enable_chat", Some(json!("yes")));
    let waiting = env.request_live("En attente de place");
    let calls = env.docker.calls().len();
    env.pod.clear_requests();
    env.tick_ok();
    env.tick_ok();
    assert!(env.docker.running(&env.slot_dir(1)), "container left alone");
    assert_eq!(
        env.docker
            .calls()
            .iter()
            .skip(calls)
            .filter(|c| c.is("down") || c.is("up"))
            .count(),
        0
    );
    assert_eq!(env.live_status(waiting.live), 0, "the slot stays busy");
    let touched: Vec<String> = env
        .pod
        .writes()
        .iter()
        .filter(|w| w.path.contains(&format!("/bbb_livestream/{}/", r.live)))
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
}

// ---------------------------------------------------------------------------
// 4. Rows that vanish
// ---------------------------------------------------------------------------

#[test]
fn a_running_live_deleted_from_pod_is_stopped_without_recreating_its_row() {
    let env = TestEnv::builder().slots(1).build();
    let r = recorded(&env, "Ligne supprimée");
    env.tick_ok();
    env.assert_running(r.live);
    env.pod.delete_live(r.live);
    env.pod.clear_requests();
    env.tick_ok();
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert!(env.pod.broadcasters().is_empty(), "broadcaster deleted");
    for w in env.pod.writes() {
        assert!(
            !w.path.starts_with("/rest/bbb_livestream/"),
            "no write to the vanished row: {} {}",
            w.method,
            w.path
        );
    }
    // Its meeting row is still there: the recording goes to Pod as usual.
    assert_eq!(env.recordings(), vec![env.delivered_path(&r)]);
}

/// A recorded live whose meeting (and so its livestream) was deleted in Pod while
/// it ran: stopped, its recording kept. Returns the request.
fn live_with_deleted_meeting(env: &TestEnv) -> Requested {
    let r = recorded(env, "Réunion purgée");
    env.tick_ok();
    env.assert_running(r.live);
    env.pod.delete_meeting(r.meeting);
    let out = env.tick();
    assert!(
        out.stderr.contains("deleted in Pod"),
        "the advice names the cause:\n{}",
        out.stderr
    );
    assert!(!env.docker.running(&env.slot_dir(1)));
    r
}

#[test]
fn a_recording_whose_meeting_was_deleted_is_kept_reported_once_and_listed() {
    let env = TestEnv::builder().slots(1).build();
    let r = live_with_deleted_meeting(&env);
    assert!(env.recordings().is_empty());
    assert_eq!(kept_mkvs(&env).len(), 1, "kept under base_dir");
    let mails = env.smtp.messages().len();
    for _ in 0..3 {
        let out = env.tick_ok();
        assert_eq!(out.stderr, "", "not reported every tick");
    }
    assert_eq!(env.smtp.messages().len(), mails);
    let out = env.run(&["status"]);
    out.assert_success();
    assert!(out.stdout.contains(&r.live.to_string()), "{}", out.stdout);
    assert!(out.stdout.contains("deleted"), "{}", out.stdout);
    let out = env.run(&["recordings", "list"]);
    out.assert_success();
    assert!(
        out.stdout.contains(&format!("{}", r.live)),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("deleted in Pod"), "{}", out.stdout);
    assert!(
        out.stdout.contains("bytes") || out.stdout.contains("B"),
        "{}",
        out.stdout
    );
}

/// The one file `recordings list` shows (the first column of its one data line).
fn listed_file(env: &TestEnv) -> String {
    let out = env.run(&["recordings", "list"]);
    out.assert_success();
    let path = kept_mkvs(env).pop().expect("a kept recording");
    assert!(
        out.stdout.contains(&*path.to_string_lossy())
            || out
                .stdout
                .contains(&*path.file_name().unwrap().to_string_lossy()),
        "{}",
        out.stdout
    );
    path.to_string_lossy().into_owned()
}

#[test]
fn recordings_deliver_hands_a_kept_recording_over_under_the_given_id() {
    let env = TestEnv::builder().slots(1).build();
    let r = live_with_deleted_meeting(&env);
    let file = listed_file(&env);
    let target = "0123456789abcdef0123456789abcdef01234567-1700000000000";
    // Refused: not a plain name.
    let out = env.run(&["recordings", "deliver", &file, "--as", "../escape"]);
    out.assert_code(2);
    // Dry run: nothing moves.
    let out = env.run(&["--dry-run", "recordings", "deliver", &file, "--as", target]);
    out.assert_success();
    assert!(env.recordings().is_empty());
    assert!(Path::new(&file).exists());
    // Never overwrite.
    let taken = env.recordings_dir().join(format!("{target}.mkv"));
    fs::write(&taken, b"someone else's").unwrap();
    let out = env.run(&["recordings", "deliver", &file, "--as", target]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(fs::read(&taken).unwrap(), b"someone else's");
    fs::remove_file(&taken).unwrap();
    let out = env.run(&["recordings", "deliver", &file, "--as", target]);
    out.assert_success();
    assert_eq!(env.recordings(), vec![taken.clone()]);
    assert_eq!(read_mkv(&taken).meeting_id, r.meeting_id);
    assert!(
        kept_mkvs(&env).is_empty(),
        "the kept copy is gone once delivered"
    );
    let out = env.run(&["recordings", "list"]);
    out.assert_success();
    assert!(!out.stdout.contains(&r.live.to_string()), "{}", out.stdout);
}

#[test]
fn recordings_discard_needs_yes_and_honours_dry_run() {
    let env = TestEnv::builder().slots(1).build();
    live_with_deleted_meeting(&env);
    let file = listed_file(&env);
    let out = env.run(&["recordings", "discard", &file]);
    assert_eq!(out.code, Some(2), "refused without --yes: {}", out.stderr);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert!(Path::new(&file).exists());
    env.run(&["--dry-run", "recordings", "discard", &file, "--yes"])
        .assert_success();
    assert!(Path::new(&file).exists());
    env.run(&["recordings", "discard", &file, "--yes"])
        .assert_success();
    assert!(!Path::new(&file).exists());
    assert!(kept_mkvs(&env).is_empty());
    // A file that is not a kept recording is refused.
    let elsewhere = env.root().join("other.mkv");
    fs::write(&elsewhere, b"x").unwrap();
    let out = env.run(&[
        "recordings",
        "discard",
        &elsewhere.to_string_lossy(),
        "--yes",
    ]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(elsewhere.exists());
}

/// A file that is not a kept recording is said to be so at once, without first asking
/// for `--yes` (which would suggest that it could be deleted).
#[test]
fn recordings_discard_of_a_foreign_file_says_so_before_asking_to_confirm() {
    let env = TestEnv::builder().slots(1).build();
    let out = env.run(&["recordings", "discard", "/etc/passwd"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is not a recording kept by bbb-pod-live"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("--yes"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// 5. Signals
// ---------------------------------------------------------------------------

fn signal(child: &std::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

fn interrupted_during_up(sig: nix::sys::signal::Signal, code: i32) {
    // A docker timeout far above the grace: the hung `up` is ended by the signal
    // handling (its process group killed), not by the timeout.
    let env = TestEnv::builder()
        .slots(1)
        .extra_toml("[docker]\ntimeout_secs = 120")
        .build();
    let r = env.request_live("Interrompu");
    env.docker.hang("up", true);
    let child = env.spawn(&["run"]);
    wait_until("docker compose up to run", Duration::from_secs(60), || {
        env.docker.count("up") == 1
    });
    let sent = Instant::now();
    signal(&child, sig);
    let out = env.wait(child);
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "exits within 10 s of the signal"
    );
    assert_eq!(out.code, Some(code), "{}", out.stderr);
    assert!(env.log_text().contains("interrupted"), "{}", env.log_text());
    assert!(
        env.docker.live_processes().is_empty(),
        "the hung docker compose was ended: {:?}",
        env.docker.live_processes()
    );
    // The lock is released; the next tick goes on as after a crash.
    env.docker.hang("up", false);
    env.tick_ok();
    if env.live_status(r.live) != 1 {
        env.tick_ok();
    }
    env.assert_running(r.live);
    assert_eq!(env.pod.broadcasters().len(), 1);
}

#[test]
fn sigterm_during_up_exits_143_and_the_next_tick_resumes() {
    interrupted_during_up(nix::sys::signal::Signal::SIGTERM, 143);
}

#[test]
fn sigint_during_up_exits_130() {
    interrupted_during_up(nix::sys::signal::Signal::SIGINT, 130);
}

#[test]
fn sigterm_during_a_recording_hand_over_loses_nothing() {
    // The hand-over is in flight (Pod has not answered the PATCH of the meeting yet)
    // when systemd stops the service.
    let env = TestEnv::builder().slots(1).build();
    let r = recorded(&env, "Remise interrompue");
    env.tick_ok();
    env.assert_running(r.live);
    env.pod.fail_next(
        "PATCH",
        &format!("/rest/bbb_meeting/{}/", r.meeting),
        Fault::Hang,
        1,
    );
    env.bbb.end_session(&r.internal_meeting_id);
    let child = env.spawn(&["run"]);
    wait_until("the hand-over to ask Pod", Duration::from_secs(60), || {
        env.pod
            .requests()
            .iter()
            .any(|q| q.method == "PATCH" && q.path.starts_with("/rest/bbb_meeting/"))
    });
    let sent = Instant::now();
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let out = env.wait(child);
    assert!(sent.elapsed() < Duration::from_secs(10));
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    assert!(env.log_text().contains("interrupted"));
    // Stopped and parked before the signal; nothing published, nothing lost.
    assert_eq!(env.live_status(r.live), 2);
    assert!(env.recordings().is_empty(), "{:?}", env.recordings());
    assert_eq!(kept_mkvs(&env).len(), 1);
    // The next tick goes on: handed over whole, once.
    env.tick_ok();
    assert_eq!(env.recordings(), vec![env.delivered_path(&r)]);
    assert!(read_mkv(&env.recordings()[0]).finalized);
    assert!(kept_mkvs(&env).is_empty());
}

// ---------------------------------------------------------------------------
// 5. A live shows its own session, never the room's next class
// ---------------------------------------------------------------------------

#[test]
fn a_waiting_live_waits_while_bbb_cannot_be_read_and_says_why() {
    // The tick that frees a slot cannot read BBB: the request may be stale (its
    // session over), and its streamer would wait on the room for the next class.
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Amphi sans BBB");
    env.bbb.set_mode(BbbMode::Http(500));
    let out = env.tick();
    assert_eq!(out.code, Some(1), "getMeetings failing is reported");
    assert_eq!(env.live_status(r.live), 0);
    assert_eq!(env.docker.count("up"), 0, "nothing started blind");
    let status = env.status_json();
    assert_eq!(
        status["waiting"][0]["reason"]["kind"],
        json!("bbb_unreadable"),
        "{status:#}"
    );
    let out = env.run(&["status"]);
    assert!(
        out.stdout
            .contains("BBB's meeting list could not be read this tick"),
        "{}",
        out.stdout
    );
    let out = env.run(&["--dry-run", "run"]);
    assert!(
        out.stdout
            .contains(&format!("live {} waits: BBB's meeting list", r.live)),
        "{}",
        out.stdout
    );
    env.bbb.set_mode(BbbMode::Normal);
    env.tick_ok();
    env.assert_running(r.live);
}

#[test]
fn a_stale_request_started_nowhere_while_bbb_is_down_never_shows_the_next_class() {
    // The story: a live waits for the one slot; its session ends; the slot
    // frees in a tick where getMeetings answers 500; the room's next session begins.
    let env = TestEnv::builder().slots(1).end_confirmations(2).build();
    let busy = recorded(&env, "Cours qui occupe le slot");
    env.tick_ok();
    env.assert_running(busy.live);
    let stale = recorded(&env, "Salle Moodle du mardi");
    env.tick_ok();
    env.bbb.end_session(&stale.internal_meeting_id);
    // The slot frees without BBB: an admin closes the live that holds it.
    env.pod.set_live(
        busy.live,
        json!({"status": 2, "end_date": "2026-03-02T10:00:00+01:00"}),
    );
    env.bbb.set_mode(BbbMode::Http(500));
    env.tick();
    assert!(!env.docker.running(&env.slot_dir(1)), "the slot freed");
    assert_eq!(env.live_status(stale.live), 0, "not started blind");
    env.bbb.set_mode(BbbMode::Normal);
    next_session(&env, &stale, "Salle Moodle du mardi", true);
    for _ in 0..3 {
        env.tick();
        assert!(
            env.docker
                .streamers()
                .iter()
                .all(|s| s.meeting_id != stale.meeting_id),
            "the stale request streams the next class\n{}",
            env.log_text()
        );
    }
    assert_closed(&env, stale.live);
}

#[test]
fn a_streamer_seen_in_its_rooms_next_session_is_stopped_at_once_and_its_recording_kept() {
    let env = TestEnv::builder().slots(1).end_confirmations(3).build();
    let r = recorded(&env, "Amphi du lundi");
    env.tick_ok();
    let slot = env.assert_running(r.live);
    // The class ended, the room opened again for the next one before the next tick.
    env.bbb.end_session(&r.internal_meeting_id);
    next_session(&env, &r, "Amphi du lundi", true);
    let out = env.tick();
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.stderr);
    assert!(!env.docker.running(&env.slot_dir(slot)), "stopped at once");
    assert_closed(&env, r.live);
    assert!(
        env.recordings().is_empty(),
        "never delivered under the live's session"
    );
    assert_eq!(kept_mkvs(&env).len(), 1, "kept on local disk");
    assert!(
        env.smtp
            .messages()
            .iter()
            .any(|m| m.body.contains(&format!("live {}", r.live)) && m.body.contains("kept")),
        "the admin is told"
    );
    let out = env.run(&["recordings", "list"]);
    out.assert_success();
    assert!(
        out.stdout.contains("another session of its room"),
        "{}",
        out.stdout
    );
    // Not retried every tick.
    let mails = env.smtp.messages().len();
    env.tick_ok();
    assert!(env.recordings().is_empty());
    assert_eq!(env.smtp.messages().len(), mails);
}
