//! The webinar engine behind `serve` (Pod 3.8.2+, webinar-api.md), driven through its
//! Rust API (`bbb_pod_live::webinar::Engine`, what `serve`'s handlers call) against the
//! fake BBB and docker, and the real binary's ticks: a start answered while a tick
//! holds the tick lock, the streamer's held `up` with Pod's toggle applied, the meeting
//! ending without `stop`, `serve` or the tick dying between start and `up`, a full
//! server, two servers sharing the cluster Redis, a webinar-only server.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bbb_pod_live::config::{Config, ProcessEnv};
use bbb_pod_live::webinar::{Engine, Refusal, StartRequest};

use crate::support::redis::RedisServer;
use crate::support::{TestEnv, wait_until};

const MEETING: &str = "0002-webinaire-demo";
const INTERNAL: &str = "5f1e7a9c0d2b4e6f8a1c3e5b7d9f0a2c4e6b8d0f-1765000000000";
const RTMP: &str = "rtmp://127.0.0.1:1935/live/webinaire-1";
const LONG: Duration = Duration::from_secs(30);

fn engine(env: &TestEnv) -> Engine {
    let cfg = Config::load(env.config_path(), &ProcessEnv).expect("config");
    Engine::new(Arc::new(cfg)).expect("engine")
}

fn request(room: &str, path: &str) -> StartRequest {
    StartRequest {
        gateway_path: path.into(),
        room: room.into(),
        meeting_id: MEETING.into(),
        pod_host: "pod.test:8410".into(),
        rtmp_dst: RTMP.into(),
    }
}

/// An environment whose webinars are held `hold` seconds before their `up`.
fn webinar_env(slots: u32, hold: u32, extra: &str) -> TestEnv {
    let env = TestEnv::builder()
        .slots(slots)
        .extra_toml(&format!("[webinar]\nhold_secs = {hold}\n{extra}"))
        .build();
    env.bbb
        .add_meeting(MEETING, INTERNAL, "Webinaire démo", false);
    env
}

/// `request` as the Pod of `[pod] url` sends it (its `domain` is that Pod's host).
fn request_from_pod(env: &TestEnv, room: &str, path: &str) -> StartRequest {
    let mut req = request(room, path);
    req.pod_host = env.pod.url().trim_start_matches("http://").into();
    req
}

/// Pod's webinar Livestreams: meeting 2's (`MEETING`) in progress, an earlier one of
/// it already stopped, and meeting 3's (`OTHER_MEETING`) in progress.
struct PodRows {
    ours: u64,
    earlier: u64,
    other: u64,
}

const OTHER_MEETING: &str = "0003-autre-webinaire";

fn pod_rows(env: &TestEnv) -> PodRows {
    assert_eq!(env.pod.add_webinar_meeting(2, "webinaire-demo"), MEETING);
    assert_eq!(
        env.pod.add_webinar_meeting(3, "autre-webinaire"),
        OTHER_MEETING
    );
    PodRows {
        earlier: env.pod.add_webinar_live(2, 2),
        ours: env.pod.add_webinar_live(2, 1),
        other: env.pod.add_webinar_live(3, 1),
    }
}

/// The writes to Pod's webinar Livestreams: `(method, path, body)`.
fn livestream_writes(env: &TestEnv) -> Vec<(String, String, String)> {
    env.pod
        .writes()
        .into_iter()
        .filter(|r| r.path.starts_with("/rest/meeting_livestream/"))
        .map(|r| (r.method, r.path, r.body))
        .collect()
}

/// Only meeting 2's running Livestream set to 2, by one PATCH.
fn assert_only_ours_closed(env: &TestEnv, rows: &PodRows) {
    assert_eq!(
        env.pod.webinar_live_status(rows.ours),
        2,
        "{}",
        env.log_text()
    );
    assert_eq!(env.pod.webinar_live_status(rows.earlier), 2);
    assert_eq!(
        env.pod.webinar_live_status(rows.other),
        1,
        "another meeting's"
    );
    let writes = livestream_writes(env);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].0, "PATCH");
    assert_eq!(
        writes[0].1,
        format!("/rest/meeting_livestream/{}/", rows.ours)
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&writes[0].2).expect("json"),
        serde_json::json!({ "status": 2 })
    );
}

/// `serve` answers `req` and is gone before its up: the ticks do the rest.
fn started_then_serve_gone(env: &TestEnv, req: StartRequest) {
    let rt = runtime();
    let engine = engine(env);
    rt.block_on(engine.start(req)).expect("started");
    rt.shutdown_background();
}

fn state(env: &TestEnv, slot: u32) -> Option<serde_json::Value> {
    let text = std::fs::read(env.slot_dir(slot).join("live-state.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

fn env_value(compose: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(compose).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    doc["services"]["bbb-streamer"]["environment"][key]
        .as_str()
        .map(str::to_owned)
}

fn ups_in(env: &TestEnv, slot: u32) -> usize {
    env.docker
        .subcommands_in(&env.slot_dir(slot))
        .iter()
        .filter(|s| *s == "up")
        .count()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn start_answers_while_a_tick_holds_the_lock_and_the_up_starts_with_the_toggled_panel() {
    let env = webinar_env(2, 1, "");
    let rt = runtime();
    let engine = engine(&env);
    // A tick stuck in a slow `docker compose up` holds the tick lock.
    let tick_lock = match bbb_pod_live::lock::try_lock(&env.base_dir()).expect("lock") {
        bbb_pod_live::lock::TryLock::Acquired(l) => l,
        other => panic!("{other:?}"),
    };
    let started = rt
        .block_on(async {
            tokio::time::timeout(LONG, engine.start(request("3319bf5aed", "/gw/1"))).await
        })
        .expect("start answered while the tick lock is held")
        .expect("started");
    assert!(!started.already);
    assert_eq!(started.slot, Some(1));
    assert!(!started.meeting_running, "created, nobody in it yet");
    let s = state(&env, 1).expect("recorded before the answer");
    assert_eq!(s["webinar"]["room"], "3319bf5aed");
    assert_eq!(s["phase"], "starting");
    assert_eq!(ups_in(&env, 1), 0, "the up is held");
    // Pod's toggle right after start: the streamer starts with the panel hidden.
    let panel = rt
        .block_on(engine.toggle_chat("3319bf5aed"))
        .expect("toggled");
    assert!(!panel.shown);
    rt.block_on(async {
        tokio::time::timeout(LONG, async {
            while state(&env, 1).is_none_or(|s| s["phase"] != "running") {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the held up ran");
    });
    let compose = env.slot_dir(1).join("docker-compose.yml");
    assert_eq!(
        env_value(&compose, "BBB_SHOW_CHAT").as_deref(),
        Some("false")
    );
    assert_eq!(env_value(&compose, "BBB_STREAM_URL").as_deref(), Some(RTMP));
    assert_eq!(
        env_value(&compose, "BBB_MEETING_ID").as_deref(),
        Some(MEETING)
    );
    assert_eq!(
        env_value(&compose, "BBB_ATTENDEE_PASSWORD").as_deref(),
        Some("ap&<\"w'"),
        "the meeting's own attendee password, from getMeetingInfo"
    );
    assert_eq!(ups_in(&env, 1), 1, "one up, no restart for the toggle");
    drop(tick_lock);

    // A repeated start starts nothing; another room on the same path is refused.
    let again = rt
        .block_on(engine.start(request("3319bf5aed", "/gw/1")))
        .expect("again");
    assert!(again.already && again.slot == Some(1));
    match rt.block_on(engine.start(request("aaaaaaaaaa", "/gw/1"))) {
        Err(Refusal::GatewayBusy { room }) => assert_eq!(room, "3319bf5aed"),
        other => panic!("{other:?}"),
    }
    assert!(
        state(&env, 2).is_none(),
        "nothing started for the refused room"
    );

    // A toggle on the running streamer recreates it with the panel flipped.
    let panel = rt
        .block_on(engine.toggle_chat("3319bf5aed"))
        .expect("toggle");
    assert!(panel.shown);
    wait_until("the streamer recreated", LONG, || {
        env_value(&compose, "BBB_SHOW_CHAT").as_deref() == Some("true") && ups_in(&env, 1) == 2
    });
    assert!(engine.is_live_here("3319bf5aed"));
    assert_eq!(engine.running(), 1);

    // Pod's stop: recorded, answered, done in the background; a late stop succeeds.
    let stopped = rt.block_on(engine.stop("3319bf5aed")).expect("stop");
    assert!(stopped.was_live);
    rt.block_on(async {
        tokio::time::timeout(LONG, async {
            while state(&env, 1).is_some() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("stopped in the background");
    });
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert!(env.log_dir().join("webinar-3319bf5aed.log").exists());
    assert!(!engine.is_live_here("3319bf5aed"));
    let late = rt.block_on(engine.stop("3319bf5aed")).expect("late stop");
    assert!(!late.was_live);
    rt.block_on(engine.shutdown());
}

#[test]
fn a_full_server_an_unknown_meeting_and_a_down_bbb_are_refused_and_start_nothing() {
    let env = webinar_env(1, 60, "");
    let rt = runtime();
    let engine = engine(&env);
    let mut unknown = request("bbbbbbbbbb", "/gw/1");
    unknown.meeting_id = "0009-absent".into();
    assert!(matches!(
        rt.block_on(engine.start(unknown)),
        Err(Refusal::MeetingUnknown)
    ));
    env.bbb.end_meeting(MEETING);
    assert!(matches!(
        rt.block_on(engine.start(request("bbbbbbbbbb", "/gw/1"))),
        Err(Refusal::MeetingUnknown)
    ));
    env.bbb
        .add_meeting(MEETING, INTERNAL, "Webinaire démo", true);
    env.bbb.set_mode(crate::support::BbbMode::Http(502));
    assert!(matches!(
        rt.block_on(engine.start(request("bbbbbbbbbb", "/gw/1"))),
        Err(Refusal::BbbUnreachable)
    ));
    env.bbb.set_mode(crate::support::BbbMode::Normal);
    assert!(
        state(&env, 1).is_none(),
        "nothing recorded for the refusals"
    );
    let first = rt
        .block_on(engine.start(request("cccccccccc", "/gw/1")))
        .expect("first");
    assert!(first.meeting_running);
    assert!(matches!(
        rt.block_on(engine.start(request("dddddddddd", "/gw/2"))),
        Err(Refusal::Full)
    ));
    assert!(matches!(
        rt.block_on(engine.toggle_chat("dddddddddd")),
        Err(Refusal::NotLiveHere)
    ));
    assert!(matches!(
        rt.block_on(engine.chat("dddddddddd", "hi")),
        Err(Refusal::NotLiveHere)
    ));
    let mut bad = request("eeeeeeeeee", "/gw/3");
    bad.rtmp_dst = "http://x/".into();
    assert!(matches!(
        rt.block_on(engine.start(bad)),
        Err(Refusal::BadParameter(_))
    ));
}

#[test]
fn serve_dying_before_the_up_is_converged_by_the_tick_and_the_meeting_end_stops_it() {
    let env = webinar_env(2, 1, "");
    {
        // `serve` answers start, then dies before its held up (its runtime dropped).
        let rt = runtime();
        let engine = engine(&env);
        rt.block_on(engine.start(request("3319bf5aed", "/gw/1")))
            .expect("started");
        rt.shutdown_background();
    }
    let up_after = state(&env, 1).expect("recorded")["webinar"]["up_after"]
        .as_str()
        .expect("up_after")
        .to_owned();
    let up_after = chrono::DateTime::parse_from_rfc3339(&up_after).expect("date");
    wait_until("the hold is over", LONG, || chrono::Utc::now() > up_after);
    assert_eq!(ups_in(&env, 1), 0);
    let dry = env.run(&["--dry-run", "run"]);
    assert!(
        dry.stdout
            .contains("bring up the streamer of webinar 3319bf5aed in slot 1"),
        "{}",
        dry.stdout
    );
    env.tick_ok();
    assert_eq!(ups_in(&env, 1), 1, "the tick brought the streamer up");
    assert_eq!(state(&env, 1).expect("state")["phase"], "running");
    env.tick_ok();
    assert_eq!(ups_in(&env, 1), 1, "not twice");
    let status = env.run(&["status", "--json"]);
    assert!(status.stdout.contains("3319bf5aed"), "{}", status.stdout);
    // The meeting ends; Pod's stop never comes (its thread died): the tick stops it.
    env.bbb.end_meeting(MEETING);
    env.tick_ok();
    assert!(state(&env, 1).is_none(), "{}", env.log_text());
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert!(env.log_text().contains("webinar stopped"));
}

#[test]
fn a_tick_killed_in_the_webinars_up_is_resumed_by_the_next() {
    let env = webinar_env(1, 1, "");
    {
        let rt = runtime();
        let engine = engine(&env);
        // `serve` gone before its held up.
        rt.block_on(engine.start(request("3319bf5aed", "/gw/1")))
            .expect("started");
        rt.shutdown_background();
    }
    let up_after = state(&env, 1).expect("recorded")["webinar"]["up_after"]
        .as_str()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).expect("date"))
        .expect("up_after");
    wait_until("the hold is over", LONG, || chrono::Utc::now() > up_after);
    // The tick brings it up, hangs in `up` and is killed there.
    env.docker.hang("up", true);
    let mut tick = env.spawn(&["run"]);
    wait_until("the tick's up to hang", LONG, || env.docker.hung("up") >= 1);
    tick.kill().expect("kill");
    let _ = env.wait(tick);
    env.docker.hang("up", false);
    assert_eq!(state(&env, 1).expect("kept")["phase"], "starting");
    env.tick_ok();
    assert_eq!(state(&env, 1).expect("state")["phase"], "running");
    assert!(env.docker.running(&env.slot_dir(1)));
}

#[test]
fn two_servers_never_stream_one_room_twice() {
    let redis = RedisServer::start();
    let toml = format!(
        "[cluster]\nredis_url = \"{}\"\nclaim_ttl_secs = 300\n[webinar]\nhold_secs = 60",
        redis.url()
    );
    let a = TestEnv::builder()
        .server_number(1)
        .count(2)
        .extra_toml(&toml)
        .build();
    let b = TestEnv::builder()
        .server_number(2)
        .count(2)
        .extra_toml(&toml)
        .build_beside(&a);
    a.bbb
        .add_meeting(MEETING, INTERNAL, "Webinaire démo", false);
    let rt = runtime();
    let (ea, eb) = (engine(&a), engine(&b));
    let first = rt
        .block_on(ea.start(request("3319bf5aed", "/gw/1")))
        .expect("a");
    assert_eq!((first.already, first.slot), (false, Some(1)));
    assert_eq!(
        redis.get("bbb-pod-live:webinar:3319bf5aed").as_deref(),
        Some("1")
    );
    let second = rt
        .block_on(eb.start(request("3319bf5aed", "/gw/1")))
        .expect("b");
    assert_eq!((second.already, second.slot), (true, None));
    assert!(state(&b, 1).is_none(), "server 2 started nothing");
    rt.block_on(ea.stop("3319bf5aed")).expect("stop");
    wait_until("the claim released", LONG, || {
        redis.get("bbb-pod-live:webinar:3319bf5aed").is_none()
    });
    let moved = rt
        .block_on(eb.start(request("3319bf5aed", "/gw/1")))
        .expect("b again");
    assert_eq!((moved.already, moved.slot), (false, Some(1)));
}

#[test]
fn a_webinar_only_server_reads_no_pod_lives() {
    let env = webinar_env(1, 0, "[pod]\nlivestreams = false");
    env.rewrite_config(|text| {
        text.lines()
            .filter(|l| {
                !l.starts_with("hls_url")
                    && !l.starts_with("building_id")
                    && !l.starts_with("recordings_dir")
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    env.tick_ok();
    assert!(
        env.pod
            .requests()
            .iter()
            .all(|r| !r.path.contains("bbb_livestream")),
        "{:?}",
        env.pod.requests()
    );
    // `check` checks what such a server uses: no HLS, building or recordings_dir line.
    let check = env.run(&["check"]);
    assert!(
        check.stdout.contains("OK   pod.livestreams = false"),
        "{}",
        check.stdout
    );
    for unused in ["broadcaster API", "building 1", "recordings_dir /", ".m3u8"] {
        assert!(
            !check.stdout.contains(unused),
            "{unused}:\n{}",
            check.stdout
        );
    }
    {
        let rt = runtime();
        let engine = engine(&env);
        rt.block_on(engine.start(request("3319bf5aed", "/gw/1")))
            .expect("started");
        rt.shutdown_background();
    }
    env.tick_ok();
    assert_eq!(state(&env, 1).expect("state")["phase"], "running");
    assert!(
        env.pod
            .requests()
            .iter()
            .all(|r| !r.path.contains("bbb_livestream"))
    );
}

#[test]
fn a_webinar_whose_room_stays_empty_is_stopped_after_alone_ticks_with_one_mail() {
    let env = webinar_env(2, 0, "[bbb]\nalone_ticks = 2");
    let rows = pod_rows(&env);
    env.bbb.set_running(MEETING, true);
    // `serve` answers start and is gone before its up: the ticks do the rest.
    started_then_serve_gone(&env, request_from_pod(&env, "3319bf5aed", "/gw/1"));
    env.tick_ok();
    assert_eq!(state(&env, 1).expect("state")["phase"], "running");
    // The teacher is seen: the session has begun.
    env.tick_ok();
    assert_eq!(state(&env, 1).expect("state")["alone"]["begun"], true);
    env.bbb.everyone_leaves(MEETING);
    env.tick_ok();
    assert_eq!(state(&env, 1).expect("state")["alone"]["ticks"], 1);
    let dry = env.run(&["--dry-run", "run"]);
    assert!(
        dry.stdout
            .contains("stop webinar 3319bf5aed in slot 1: its room stayed empty"),
        "{}",
        dry.stdout
    );
    env.tick_ok();
    assert!(state(&env, 1).is_none(), "{}", env.log_text());
    assert!(!env.docker.running(&env.slot_dir(1)));
    let mails = env.mails_with_subject("webinar 3319bf5aed stopped, its room stayed empty");
    assert_eq!(mails.len(), 1, "{}", env.log_text());
    assert!(env.log_text().contains("the room stayed empty"));
    assert_only_ours_closed(&env, &rows);
    env.tick_ok();
    assert_eq!(
        env.mails_with_subject("room stayed empty").len(),
        1,
        "said once"
    );
}

#[test]
fn the_meeting_ending_without_pods_stop_sets_only_its_running_livestream_to_stopped() {
    let env = webinar_env(2, 0, "");
    let rows = pod_rows(&env);
    started_then_serve_gone(&env, request_from_pod(&env, "3319bf5aed", "/gw/1"));
    env.tick_ok();
    assert_eq!(state(&env, 1).expect("state")["phase"], "running");
    assert!(livestream_writes(&env).is_empty());
    // The start's mail: the room, its meeting, Pod, gateway path and slot; not the
    // RTMP URL (it holds the LiveGateway's stream key), no internal live id.
    let mails = env.mails_with_subject("webinar 3319bf5aed started: 0002-webinaire-demo");
    assert_eq!(mails.len(), 1, "{}", env.log_text());
    let body = &mails[0].body;
    for needle in [
        "Gateway:      /gw/1",
        "slot 1",
        "stop --slot 1",
        &env.pod.url()[7..],
    ] {
        assert!(body.contains(needle), "{needle}: {body}");
    }
    let id = state(&env, 1).expect("state")["live"].to_string();
    assert!(!body.contains(RTMP) && !body.contains(&id), "{body}");
    env.bbb.end_meeting(MEETING);
    env.tick_ok();
    assert!(state(&env, 1).is_none(), "{}", env.log_text());
    assert_only_ours_closed(&env, &rows);
    assert!(
        env.log_text()
            .contains("webinar's Livestream set to stopped in Pod")
    );
}

#[test]
fn a_streamer_that_never_comes_up_sets_its_livestream_to_stopped() {
    let env = webinar_env(2, 0, "");
    let rows = pod_rows(&env);
    env.docker.fail_up(100);
    started_then_serve_gone(&env, request_from_pod(&env, "3319bf5aed", "/gw/1"));
    for _ in 0..6 {
        if state(&env, 1).is_none() {
            break;
        }
        env.tick();
    }
    assert!(state(&env, 1).is_none(), "{}", env.log_text());
    assert!(env.log_text().contains("its streamer could not be started"));
    assert_only_ours_closed(&env, &rows);
}

#[test]
fn pods_own_stop_and_a_webinar_of_another_pod_set_no_livestream() {
    let env = webinar_env(2, 0, "");
    let rows = pod_rows(&env);
    env.bbb
        .add_meeting(OTHER_MEETING, "other-internal-1", "Autre", true);
    let rt = runtime();
    let engine = engine(&env);
    rt.block_on(engine.start(request_from_pod(&env, "3319bf5aed", "/gw/1")))
        .expect("ours");
    // Another Pod's webinar on a meeting whose pk this Pod also has.
    let mut theirs = request("aaaaaaaaaa", "/gw/2");
    theirs.meeting_id = OTHER_MEETING.into();
    rt.block_on(engine.start(theirs)).expect("theirs");
    wait_until("both streamers up", LONG, || {
        [1, 2]
            .iter()
            .all(|&s| state(&env, s).is_some_and(|s| s["phase"] == "running"))
    });
    // Pod's own stop: its Livestream is Pod's to set (it already did).
    rt.block_on(engine.stop("3319bf5aed")).expect("stop");
    wait_until("stopped", LONG, || state(&env, 1).is_none());
    rt.block_on(engine.shutdown());
    drop(rt);
    // The other Pod's meeting ends: not ours to write to.
    env.bbb.end_meeting(OTHER_MEETING);
    env.tick_ok();
    assert!(state(&env, 2).is_none(), "{}", env.log_text());
    assert!(
        livestream_writes(&env).is_empty(),
        "{:?}",
        livestream_writes(&env)
    );
    assert_eq!(env.pod.webinar_live_status(rows.ours), 1);
    assert_eq!(env.pod.webinar_live_status(rows.other), 1);
}

#[test]
fn pod_refusing_the_livestreams_patch_still_stops_the_webinar_with_one_problem() {
    use crate::support::pod::Fault;
    let env = webinar_env(1, 0, "");
    assert_eq!(env.pod.add_webinar_meeting(2, "webinaire-demo"), MEETING);
    let faults = [
        Fault::Status(401, r#"{"detail":"Token non valide."}"#.into()),
        Fault::Html500,
        Fault::Garbage(r#"{"id":1,"meeting":"http://"#.into()),
    ];
    for (i, fault) in faults.into_iter().enumerate() {
        let live = env.pod.add_webinar_live(2, 1);
        let internal = format!("{INTERNAL}{i}");
        env.bbb
            .add_meeting(MEETING, &internal, "Webinaire démo", true);
        let room = format!("room{i:06}");
        started_then_serve_gone(&env, request_from_pod(&env, &room, "/gw/1"));
        env.tick_ok();
        assert_eq!(state(&env, 1).expect("state")["phase"], "running");
        env.pod
            .fail_next("PATCH", "/rest/meeting_livestream/", fault.clone(), 1);
        env.bbb.end_meeting(MEETING);
        let out = env.tick();
        assert_eq!(out.code, Some(1), "{fault:?}: {}", env.log_text());
        assert!(state(&env, 1).is_none(), "{fault:?}: the stop completed");
        assert!(!env.docker.running(&env.slot_dir(1)));
        // Told by its room: the problem's key is not in the ERROR line nor the mail.
        let key = format!("webinar {room}");
        let log = env.log_text();
        assert_eq!(
            log.lines()
                .filter(|l| l.contains("ERROR") && l.contains(&key))
                .count(),
            1,
            "{fault:?}: one problem\n{log}"
        );
        let mail = env
            .mails_with_subject("1 error")
            .into_iter()
            .find(|m| m.body.contains(&key))
            .unwrap_or_else(|| panic!("{fault:?}: no mail about {key}\n{log}"));
        assert!(
            mail.body
                .contains("set its Livestream to \"Live stopped\" in Pod's admin"),
            "{}",
            mail.body
        );
        assert_eq!(env.pod.webinar_live_status(live), 1, "{fault:?}");
    }
    env.assert_no_secret_anywhere();
}

#[test]
fn status_knows_at_once_that_the_meeting_runs_when_serve_brings_the_streamer_up() {
    let env = webinar_env(2, 1, "");
    let rt = runtime();
    let engine = engine(&env);
    let started = rt
        .block_on(engine.start(request("3319bf5aed", "/gw/1")))
        .expect("started");
    assert!(!started.meeting_running);
    let before = env.run(&["status"]);
    assert!(
        before
            .stdout
            .contains("waits: its streamer starts after the hold"),
        "{}",
        before.stdout
    );
    // The teacher opens the meeting during the hold; no tick runs.
    env.bbb.set_running(MEETING, true);
    wait_until("serve's up", LONG, || {
        state(&env, 1).is_some_and(|s| s["phase"] == "running")
    });
    let doc = env.status_json();
    let slot = &doc["slots"][0];
    assert_eq!(slot["webinar"]["meeting_running"], true, "{doc}");
    assert!(slot["webinar"]["waiting"].is_null(), "{doc}");
    assert!(
        slot["live"].as_u64().is_some(),
        "--json keeps the number: {doc}"
    );
    let text = env.run(&["status"]).stdout;
    let row = text
        .lines()
        .find(|l| l.starts_with("1 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(row.split_whitespace().nth(2), Some("webinar"), "{text}");
    assert!(
        !row.split_whitespace()
            .any(|w| w.len() >= 12 && w.bytes().all(|b| b.is_ascii_digit())),
        "no internal number in the table: {text}"
    );
    assert!(
        text.contains(
            "slot 1 webinar room 3319bf5aed (gateway /gw/1, meeting 0002-webinaire-demo): streams"
        ),
        "{text}"
    );
    rt.block_on(engine.shutdown());
}
