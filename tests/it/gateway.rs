//! `serve`, the webinar gateway of Pod 3.8.2+, driven over HTTP with exactly the
//! requests Pod 4.1 sends (webinar-api.md) against the fake BBB and docker: a webinar
//! started, its chat panel toggled right after, a viewer's message, stopped; every
//! refusal Pod can meet, as the JSON it reads; the configuration `serve` refuses; a
//! SIGTERM; a crash of `serve` before the streamer's `up`. The engine's own lifecycle
//! (end detection, two servers, a tick killed in the `up`) is `webinar.rs`'s.

use std::time::Duration;

use crate::support::gateway::{Gateway, TOKEN, configure, free_port};
use crate::support::redis::RedisServer;
use crate::support::{TestEnv, wait_until};

const MEETING: &str = "0002-webinaire-demo";
const INTERNAL: &str = "5f1e7a9c0d2b4e6f8a1c3e5b7d9f0a2c4e6b8d0f-1765000000000";
const ROOM: &str = "3319bf5aed";
/// The 54 hex characters of the hashkey Pod puts after the meetingID in `domain`.
const HASH: &str = "99ff0c1e0a4e1b7d2a33c9d8e5f60718293a4b5c6d7e8f90a1b2c3d4e5";
const LONG: Duration = Duration::from_secs(30);

/// Pod 4.1's `start` query for `room` on gateway `path`, percent-encoded as `requests` does.
fn start_path(path: &str, room: &str) -> String {
    format!(
        "{path}/start?room={room}&domain=pod.test%3A8410%2Fmeeting%2F{MEETING}%2F{HASH}\
         &rtmpDst=rtmp%3A%2F%2F127.0.0.1%3A1935%2Flive%2Fwebinaire-1"
    )
}

fn webinar_env(slots: u32, hold_secs: u32) -> TestEnv {
    let env = TestEnv::builder()
        .slots(slots)
        .extra_toml(&format!("[webinar]\nhold_secs = {hold_secs}\n"))
        .build();
    env.bbb
        .add_meeting(MEETING, INTERNAL, "Webinaire démo", false);
    env
}

fn phase(env: &TestEnv, slot: u32) -> Option<String> {
    let text = std::fs::read(env.slot_dir(slot).join("live-state.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v["phase"].as_str().map(str::to_owned)
}

fn compose_value(env: &TestEnv, slot: u32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(env.slot_dir(slot).join("docker-compose.yml")).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    doc["services"]["bbb-streamer"]["environment"][key]
        .as_str()
        .map(str::to_owned)
}

#[track_caller]
fn assert_refusal(reply: &crate::support::gateway::Reply, code: u16, words: &str) {
    assert_eq!(reply.code, code, "{reply:?}");
    assert_eq!(reply.status(), "error", "{reply:?}");
    assert!(
        reply.details().contains(words),
        "{words:?} not in {reply:?}"
    );
    assert!(
        !reply.res().to_lowercase().contains("ok"),
        "Pod would read this refusal as a sent message: {reply:?}"
    );
    assert!(!reply.details().contains(['<', '>']), "{reply:?}");
}

#[test]
fn pods_own_requests_start_toggle_chat_and_stop_a_webinar() {
    let env = webinar_env(2, 1);
    env.bbb.set_version("3.0");
    let gw = Gateway::spawn(&env);

    let r = gw.get_ok(&start_path("/gw/1", ROOM));
    assert_eq!(
        (r.code, r.status(), r.res()),
        (200, "success", "ok"),
        "{r:?}"
    );
    // Pod's toggle right after start (enable_chat False): the streamer starts without
    // the panel, with one `up`.
    let r = gw.get_ok(&format!("/gw/1/chat?room={ROOM}&toggle=True"));
    assert_eq!(r.res(), "ok", "Pod checks res == \"ok\": {r:?}");
    wait_until("the webinar's streamer up", LONG, || {
        phase(&env, 1).as_deref() == Some("running")
    });
    assert_eq!(
        compose_value(&env, 1, "BBB_SHOW_CHAT").as_deref(),
        Some("false")
    );
    assert_eq!(
        compose_value(&env, 1, "BBB_STREAM_URL").as_deref(),
        Some("rtmp://127.0.0.1:1935/live/webinaire-1")
    );

    // A viewer's message, as Pod posts it (no token; `’` as Pod rewrites quotes).
    let r = gw.post_chat("/gw/1/chat", ROOM, "Bonjour l’équipe");
    assert_eq!(r.code, 200, "{r:?}");
    assert!(r.res().contains("ok"), "{r:?}");
    assert!(
        env.bbb
            .chat_messages()
            .iter()
            .any(|(meeting, _, msg)| meeting == MEETING && msg == "Bonjour l’équipe"),
        "{:?}",
        env.bbb.chat_messages()
    );

    // A repeated start starts nothing; the stop is answered at once, done behind.
    let r = gw.get_ok(&start_path("/gw/1", ROOM));
    assert_eq!(r.status(), "success", "{r:?}");
    let r = gw.get_ok(&format!("/gw/1/stop?room={ROOM}"));
    assert_eq!((r.code, r.status()), (200, "success"), "{r:?}");
    wait_until("the webinar stopped", LONG, || phase(&env, 1).is_none());
    assert!(!env.docker.running(&env.slot_dir(1)));
    // Pod's own stop thread arriving after ours.
    let r = gw.get_ok(&format!("/gw/1/stop?room={ROOM}"));
    assert_eq!(r.status(), "success", "{r:?}");

    let out = gw.terminate(&env);
    assert_eq!(out.code, Some(0), "a clean stop on SIGTERM: {out:?}");
    let log = env.log_text();
    assert!(log.contains("webinar start accepted"), "{log}");
    assert!(log.contains("gateway: stopped"), "{log}");
    for secret in [TOKEN, HASH] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    env.assert_no_secret_anywhere();
}

#[test]
fn refusals_reach_the_teacher_as_json_and_start_nothing() {
    let env = webinar_env(1, 60);
    let gw = Gateway::spawn(&env);
    let r = gw.get_ok(&start_path("/gw/1", ROOM));
    assert_eq!(r.status(), "success", "{r:?}");

    let other = "aaaaaaaaaa";
    assert_refusal(
        &gw.get_ok(&start_path("/gw/1", other)),
        409,
        "already streaming",
    );
    assert_refusal(&gw.get_ok(&start_path("/gw/2", other)), 409, "in use");
    assert_refusal(
        &gw.get(&start_path("/gw/2", other), Some("wrong")),
        401,
        "secret",
    );
    assert_refusal(&gw.get(&start_path("/gw/2", other), None), 401, "secret");
    assert_refusal(&gw.get_ok("/gw/2/launch?room=a"), 404, "address");
    assert_refusal(&gw.get_ok("/gw/2/start?room=aaaaaaaaaa"), 400, "domain");
    assert_refusal(
        &gw.post_chat("/gw/2/chat", other, "hello"),
        404,
        "not being streamed",
    );
    let big = format!(
        "{{\"room\": \"{ROOM}\", \"msg\": \"{}\"}}",
        "x".repeat(20_000)
    );
    assert_refusal(&gw.post_raw("/gw/1/chat", big.as_bytes()), 413, "too long");
    let stopped = gw.get_ok(&format!("/gw/1/stop?room={ROOM}"));
    assert_eq!(stopped.status(), "success");
    wait_until("the slot freed", LONG, || phase(&env, 1).is_none());
    let absent = start_path("/gw/1", other).replace(MEETING, "0009-absent");
    assert_refusal(&gw.get_ok(&absent), 409, "join it first");
    assert!(phase(&env, 1).is_none(), "nothing started for a refusal");
    drop(gw);
}

#[test]
fn serve_refuses_to_start_without_its_gateway_settings_naming_the_key() {
    let env = webinar_env(1, 1);
    let out = env.run(&["serve"]);
    out.assert_code(2);
    assert!(out.stderr.contains("[gateway]"), "{out:?}");
    let port = free_port();
    for (token, key) in [
        ("", "gateway.token"),
        ("abcdefghijklmnopqrstuvwxyz", "gateway.token"),
    ] {
        let text = env.config_text();
        let base = text.split("\n[gateway]").next().expect("text").to_owned();
        env.rewrite_config(|_| {
            format!("{base}\n[gateway]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{token}\"\n")
        });
        let out = env.run(&["serve"]);
        out.assert_code(2);
        assert!(out.stderr.contains(key), "{token:?}: {out:?}");
    }
    let out = env.run_env(
        &["serve"],
        &[("BBB_POD_LIVE_GATEWAY_TOKEN", "abcdefghijklmnopqrstuvwxyz")],
    );
    out.assert_code(2);
    assert!(out.stderr.contains("BBB_POD_LIVE_GATEWAY_TOKEN"), "{out:?}");
    assert!(
        !out.stderr.contains("abcdefghijklmnopqrstuvwxyz"),
        "{out:?}"
    );
}

#[test]
fn check_sees_serve_answering_on_its_address() {
    let env = webinar_env(1, 1);
    let port = free_port();
    configure(&env, port);
    let before = env.run(&["check"]);
    assert!(
        before
            .stdout
            .contains(&format!("OK   gateway.listen 127.0.0.1:{port} is free")),
        "{}",
        before.stdout
    );
    assert!(
        before.stdout.contains("OK   gateway.token is set"),
        "{}",
        before.stdout
    );
    let gw = Gateway::start(&env, port);
    let during = env.run(&["check"]);
    assert!(
        during.stdout.contains("serve answers there"),
        "{}",
        during.stdout
    );
    drop(gw);
}

#[test]
fn a_crash_of_serve_before_the_streamers_up_is_finished_by_the_tick() {
    let env = webinar_env(1, 2);
    let gw = Gateway::spawn(&env);
    let port = gw.port;
    let r = gw.get_ok(&start_path("/gw/1", ROOM));
    assert_eq!(r.status(), "success", "{r:?}");
    // Killed within the hold, most likely before its own `up` (after it, the tick has
    // nothing left to do: the same end state, one `up`).
    gw.crash(&env);
    let text = std::fs::read(env.slot_dir(1).join("live-state.json")).expect("recorded");
    let state: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    let up_after = state["webinar"]["up_after"].as_str().expect("up_after");
    let up_after = chrono::DateTime::parse_from_rfc3339(up_after).expect("a date");
    wait_until("the hold is over", LONG, || chrono::Utc::now() > up_after);
    env.tick_ok();
    assert_eq!(
        phase(&env, 1).as_deref(),
        Some("running"),
        "{}",
        env.log_text()
    );
    assert!(env.docker.running(&env.slot_dir(1)));
    // A new serve finds the webinar live: Pod's stop reaches it.
    let gw = Gateway::start(&env, port);
    let r = gw.get_ok(&format!("/gw/1/stop?room={ROOM}"));
    assert_eq!(
        (r.status(), r.details()),
        ("success", "The webinar stream is stopping.")
    );
    wait_until("the webinar stopped", LONG, || phase(&env, 1).is_none());
}

#[test]
fn before_bbb_3_a_viewers_message_goes_through_the_slots_chat_redis() {
    // Slot 1's chat Redis listens on <redis_bind>:6379; a loopback address of this
    // test's own keeps the fixed port clear of any other Redis.
    let host = "127.0.0.93";
    let redis = RedisServer::start_at(host, 6379);
    let env = TestEnv::builder()
        .slots(1)
        .extra_toml(&format!(
            "[server]\nredis_bind = \"{host}\"\n[webinar]\nhold_secs = 1\n"
        ))
        .build();
    assert!(
        env.config_text()
            .contains(&format!("redis_bind = \"{host}\""))
    );
    env.bbb
        .add_meeting(MEETING, INTERNAL, "Webinaire démo", false);
    env.bbb.set_version("2.7.12");
    let gw = Gateway::spawn(&env);
    assert_eq!(gw.get_ok(&start_path("/gw/1", ROOM)).status(), "success");
    wait_until("the webinar's streamer up", LONG, || {
        phase(&env, 1).as_deref() == Some("running")
    });
    let mut sub = redis.subscribe("chat1");
    let r = gw.post_chat("/gw/1/chat", ROOM, "Question : où est le support ?");
    assert_eq!(r.code, 200, "{r:?}");
    assert!(r.res().contains("ok"), "{r:?}");
    assert_eq!(
        RedisServer::next_message(&mut sub),
        "Question : où est le support ?"
    );
    assert!(env.bbb.chat_messages().is_empty(), "not through BBB's API");
}

#[test]
fn two_servers_answer_pod_for_one_room_and_only_one_streams_it() {
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
    let (ga, gb) = (Gateway::spawn(&a), Gateway::spawn(&b));
    let r = ga.get_ok(&start_path("/gw/1", ROOM));
    assert_eq!(
        (r.status(), r.details().contains("starts as soon as")),
        ("success", true),
        "{r:?}"
    );
    // The same webinar asked of the other server (two LiveGateways on one meeting):
    // a success that starts nothing there.
    let r = gb.get_ok(&start_path("/gw/1", ROOM));
    assert_eq!(
        (r.status(), r.details()),
        ("success", "The webinar is already being streamed.")
    );
    assert!(phase(&b, 1).is_none(), "server 2 started nothing");
    assert_eq!(phase(&a, 1).as_deref(), Some("starting"));
}
