//! A live whose room stays empty (`bbb.alone_ticks`): the teacher closed the tab without
//! ending the meeting, and our streamer — a BBB user — keeps the session running. The
//! fake BBB lists a teacher and a viewer in a running meeting; `everyone_leaves` takes
//! them out, leaving the fake streamer (and its chat relay when chat is on). Ticks are
//! a minute apart by `BBB_POD_LIVE_NOW`, counted, never timed.

use serde_json::Value;

use crate::support::*;

fn env_alone(ticks: u32) -> TestEnv {
    TestEnv::builder()
        .slots(2)
        .extra_toml(&format!("[bbb]\nalone_ticks = {ticks}"))
        .build()
}

fn slot_json(env: &TestEnv, live: u64) -> Value {
    let doc = env.status_json();
    doc["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["live"] == live)
        .cloned()
        .unwrap_or_else(|| panic!("live {live} in no slot: {doc}"))
}

fn alone_seen(env: &TestEnv, live: u64) -> u64 {
    slot_json(env, live)["alone_seen"].as_u64().unwrap()
}

/// Requests a live (with chat and a recording), starts it at minute 0 and lets minute 1
/// see the teacher in the room.
#[track_caller]
fn started(env: &TestEnv, name: &str) -> Requested {
    let r = env.request_live_with(name, |l| {
        l.enable_chat = true;
        l.download_meeting = true;
    });
    env.tick_ok_at(0);
    assert_eq!(env.live_status(r.live), 1, "live {} started", r.live);
    env.tick_ok_at(60);
    r
}

#[test]
fn a_room_left_to_our_streamer_stops_its_live_after_exactly_alone_ticks() {
    let env = env_alone(4);
    let r = started(&env, "Amphi Déserté");
    let names: Vec<String> = env.docker.streamers()[0]
        .chat_name
        .iter()
        .cloned()
        .collect();
    assert_eq!(names, ["Chat"], "the chat relay is in the meeting too");
    env.bbb.everyone_leaves(&r.meeting_id);
    for (minute, seen) in [(2, 1), (3, 2), (4, 3)] {
        env.tick_ok_at(minute * 60);
        assert_eq!(env.live_status(r.live), 1, "still live at minute {minute}");
        assert_eq!(alone_seen(&env, r.live), seen);
    }
    let out = env.run(&["status"]);
    assert!(
        out.stdout.contains("alone for 3 of 4 ticks"),
        "{}",
        out.stdout
    );
    assert_eq!(slot_json(&env, r.live)["alone_ticks"], 4);
    assert!(env.mails_with_subject("room stayed empty").is_empty());

    env.tick_ok_at(5 * 60);
    // Stopped as an ended meeting is: closed in Pod, broadcaster deleted, recording
    // handed over, streamer log kept.
    assert_eq!(env.live_status(r.live), 2);
    assert!(env.pod.live(r.live)["end_date"].is_string());
    assert!(
        env.pod.broadcasters().is_empty(),
        "{:?}",
        env.pod.broadcasters()
    );
    assert!(env.docker.streamers().is_empty());
    assert_eq!(env.recordings(), vec![env.delivered_path(&r)]);
    assert!(env.log_dir().join(format!("live-{}.log", r.live)).exists());
    let mail = env.mails_with_subject("room stayed empty");
    assert_eq!(mail.len(), 1, "{:?}", env.smtp.messages());
    assert!(mail[0].subject.contains(&format!("live {}", r.live)));
    assert!(mail[0].body.contains("3 minute(s)"), "{}", mail[0].body);
    assert!(mail[0].body.contains("4 tick(s)"), "{}", mail[0].body);
    // The BBB meeting is not ended by us: BBB does it once our streamer has left.
    assert!(
        !env.bbb.calls().iter().any(|c| c == "end"),
        "{:?}",
        env.bbb.calls()
    );
    let log = env.log_text();
    let counted = log
        .lines()
        .filter(|l| l.contains("DEBUG") && l.contains("nobody in the meeting but"))
        .count();
    assert_eq!(counted, 3, "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("INFO") && l.contains("its room stayed empty")),
        "{log}"
    );
    // Nothing more afterwards: one mail.
    env.tick_ok_at(6 * 60);
    assert_eq!(env.mails_with_subject("room stayed empty").len(), 1);
}

#[test]
fn a_teacher_back_before_the_limit_keeps_the_live() {
    let env = env_alone(3);
    let r = started(&env, "Amphi Retour");
    env.bbb.everyone_leaves(&r.meeting_id);
    env.tick_ok_at(120);
    env.tick_ok_at(180);
    assert_eq!(alone_seen(&env, r.live), 2);
    env.bbb.someone_joins(&r.meeting_id);
    env.tick_ok_at(240);
    assert_eq!(alone_seen(&env, r.live), 0, "the count restarts");
    let out = env.run(&["status"]);
    assert!(!out.stdout.contains("alone for"), "{}", out.stdout);
    env.bbb.everyone_leaves(&r.meeting_id);
    env.tick_ok_at(300);
    env.tick_ok_at(360);
    assert_eq!(
        env.live_status(r.live),
        1,
        "2 of 3 since the teacher came back"
    );
    assert!(env.mails_with_subject("room stayed empty").is_empty());
}

#[test]
fn a_tick_that_could_not_read_bbb_neither_counts_nor_resets() {
    let env = env_alone(3);
    let r = started(&env, "Amphi Panne");
    env.bbb.everyone_leaves(&r.meeting_id);
    env.tick_ok_at(120);
    env.tick_ok_at(180);
    env.bbb.set_mode(BbbMode::Http(502));
    for minute in 4..7 {
        let out = env.tick_at(minute * 60);
        assert_eq!(out.code, Some(1), "getMeetings failed: {}", out.stderr);
        assert_eq!(alone_seen(&env, r.live), 2, "not counted, not reset");
    }
    env.bbb.set_mode(BbbMode::Normal);
    assert_eq!(env.live_status(r.live), 1);
    env.tick_ok_at(7 * 60);
    assert_eq!(env.live_status(r.live), 2, "the third empty tick in a row");
    assert_eq!(env.mails_with_subject("room stayed empty").len(), 1);
}

#[test]
fn a_session_not_begun_is_never_empty() {
    let env = env_alone(2);
    // Created, nobody joined yet: BBB lists it not running; the streamer waits.
    let waiting = env.request_live("Amphi Pas Commencé");
    env.bbb.set_running(&waiting.meeting_id, false);
    // Running, but nobody but our streamer ever seen in it (the teacher not there yet).
    let early = env.request_live("Amphi Trop Tôt");
    env.bbb.everyone_leaves(&early.meeting_id);
    for minute in 0..8 {
        env.tick_ok_at(minute * 60);
    }
    for r in [&waiting, &early] {
        assert_eq!(env.live_status(r.live), 1, "live {} kept", r.live);
        assert_eq!(alone_seen(&env, r.live), 0);
    }
    // The teacher arrives, then leaves: now it counts.
    env.bbb.someone_joins(&early.meeting_id);
    env.tick_ok_at(8 * 60);
    env.bbb.everyone_leaves(&early.meeting_id);
    env.tick_ok_at(9 * 60);
    env.tick_ok_at(10 * 60);
    assert_eq!(env.live_status(early.live), 2);
    assert_eq!(env.live_status(waiting.live), 1);
}

#[test]
fn alone_ticks_zero_never_stops_a_live_for_its_room() {
    let env = env_alone(0);
    let r = started(&env, "Amphi Toujours");
    env.bbb.everyone_leaves(&r.meeting_id);
    for minute in 2..14 {
        env.tick_ok_at(minute * 60);
    }
    assert_eq!(env.live_status(r.live), 1);
    assert_eq!(alone_seen(&env, r.live), 0);
    assert!(env.mails_with_subject("room stayed empty").is_empty());
}

#[test]
fn the_default_is_ten_ticks() {
    let env = TestEnv::builder().build();
    let r = started(&env, "Amphi Défaut");
    env.bbb.everyone_leaves(&r.meeting_id);
    for minute in 2..11 {
        env.tick_ok_at(minute * 60);
    }
    assert_eq!(env.live_status(r.live), 1, "9 empty ticks");
    env.tick_ok_at(11 * 60);
    assert_eq!(env.live_status(r.live), 2, "the 10th");
}
