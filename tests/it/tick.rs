//! The cron tick driven end to end — the real binary, one `run` per simulated minute,
//! against the fake Pod, BBB, docker and SMTP. Each test names the behaviour it holds
//! (README, "What one tick does") or the defect of bbb-pod-live.php it must not repeat
//! (numbered as in docs/php-script.md).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// The streamer's environment in a slot's compose file, as (key, value) strings.
fn streamer_env(env: &TestEnv, slot: u32) -> Vec<(String, String)> {
    let doc = env.compose(slot);
    let environment = &doc["services"]["bbb-streamer"]["environment"];
    match environment {
        serde_yaml::Value::Mapping(m) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_yaml::Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other).unwrap().trim().to_string(),
                };
                (k.as_str().unwrap().to_string(), v)
            })
            .collect(),
        serde_yaml::Value::Sequence(s) => s
            .iter()
            .map(|e| {
                let e = e.as_str().unwrap();
                let (k, v) = e.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect(),
        other => panic!("unexpected environment shape: {other:?}"),
    }
}

fn streamer_var(env: &TestEnv, slot: u32, key: &str) -> String {
    streamer_env(env, slot)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key} in the compose file of slot {slot}"))
}

/// The broadcaster a running live points at (by `broadcaster_id`).
fn broadcaster_of(env: &TestEnv, live: u64) -> Value {
    let id = env.pod.live(live)["broadcaster_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("live {live} has no broadcaster_id"));
    env.pod
        .broadcasters()
        .into_iter()
        .find(|b| b["id"].as_u64() == Some(id))
        .unwrap_or_else(|| panic!("broadcaster {id} of live {live} does not exist"))
}

/// The stream URL of a broadcaster on either Pod version.
fn hls_url(b: &Value) -> String {
    b.get("broadcaster_url")
        .and_then(Value::as_str)
        .or_else(|| b["url"].as_str())
        .unwrap()
        .to_string()
}

/// Asserts the live runs ([`TestEnv::assert_running`]) with its broadcaster pointing at
/// the stream the compose file pushes to. Returns its slot.
#[track_caller]
fn assert_streaming(env: &TestEnv, live: u64) -> u32 {
    let slot = env.assert_running(live);
    let b = broadcaster_of(env, live);
    let rtmp = streamer_var(env, slot, "BBB_STREAM_URL");
    let key = rtmp.strip_prefix("rtmp://rtmp.example/live/").unwrap();
    assert_eq!(hls_url(&b), format!("{}{key}.m3u8", env.hls_url()));
    slot
}

/// Asserts recordings_dir holds exactly `<internal_meeting_id>.mkv`, the whole
/// recording of `r`'s meeting (finalized by SIGINT before `down`).
#[track_caller]
fn assert_delivered(env: &TestEnv, r: &Requested) {
    let expected = env.delivered_path(r);
    assert_eq!(env.recordings(), vec![expected.clone()]);
    let mkv = read_mkv(&expected);
    assert!(mkv.finalized, "the recording was finalized by SIGINT");
    assert_eq!(mkv.meeting_id, r.meeting_id);
}

/// Requests a live for a new running meeting, runs one tick and checks it started.
#[track_caller]
fn start_one(env: &TestEnv, meeting_name: &str) -> (Requested, u32) {
    let r = env.request_live(meeting_name);
    env.tick_ok();
    let slot = assert_streaming(env, r.live);
    (r, slot)
}

// ---------------------------------------------------------------------------
// Start and stop
// ---------------------------------------------------------------------------

#[test]
fn a_requested_live_starts_in_a_slot_with_its_broadcaster_container_and_mail() {
    let env = TestEnv::new();
    let r = env.request_live_with("Amphi A — Cours d'économie", |s| {
        s.enable_chat = true;
        s.is_restricted = true;
        s.show_chat = false;
    });
    let out = env.tick_ok();
    assert_eq!(out.stdout, "", "a cron tick prints nothing on stdout");

    let slot = assert_streaming(&env, r.live);
    let live = env.pod.live(r.live);
    assert_eq!(live["redis_channel"], json!(format!("chat{slot}")));
    assert_eq!(live["redis_port"], json!(6378 + slot));
    assert_eq!(live["redis_hostname"], json!("live-test.example"));
    let b = broadcaster_of(&env, r.live);
    assert_eq!(b["is_restricted"], json!(true), "the teacher's restriction");
    assert!(
        b["name"]
            .as_str()
            .unwrap()
            .starts_with("[BBB] Amphi A — Cours d'économie"),
        "{b}"
    );

    // The compose file: 0600, the meeting, the chat on, Redis published on the bind.
    let file = env.slot_dir(slot).join("docker-compose.yml");
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the compose file holds the BBB secret");
    assert_eq!(streamer_var(&env, slot, "BBB_MEETING_ID"), r.meeting_id);
    // Defect 6: the teacher's options are JSON booleans on Pod 3.7+, and they count.
    assert_eq!(streamer_var(&env, slot, "BBB_ENABLE_CHAT"), "true");
    assert_eq!(streamer_var(&env, slot, "BBB_SHOW_CHAT"), "false");
    assert_eq!(streamer_var(&env, slot, "BBB_DOWNLOAD_MEETING"), "false");
    assert_eq!(
        streamer_var(&env, slot, "BBB_REDIS_CHANNEL"),
        format!("chat{slot}")
    );
    let doc = env.compose(slot);
    let ports = serde_yaml::to_string(&doc["services"]["redis"]["ports"]).unwrap();
    assert!(
        ports.contains(&format!("127.0.0.1:{}:6379", 6378 + slot)),
        "{ports}"
    );

    // One mail says the live started.
    let mails = env.smtp.wait_for(1, Duration::from_secs(5));
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].body.contains("Amphi A"), "{}", mails[0].body);
    env.assert_no_secret_anywhere();

    // The next minute changes nothing: no second container, broadcaster or mail.
    env.pod.clear_requests();
    env.tick_ok();
    assert_eq!(env.pod.writes().len(), 0, "{:?}", env.pod.writes());
    assert_eq!(env.docker.count("up"), 1);
    assert_eq!(env.pod.broadcasters().len(), 1);
    assert_eq!(env.smtp.messages().len(), 1);
}

#[test]
fn an_ended_meeting_is_stopped_and_its_recording_handed_over_whole() {
    let env = TestEnv::new();
    let r = env.request_live_with("Cours enregistré", |s| s.download_meeting = true);
    env.tick_ok();
    let slot = assert_streaming(&env, r.live);
    let slug = broadcaster_of(&env, r.live)["slug"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(FakeDocker::mkv_files(&env.slot_dir(slot)).len(), 1);

    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();

    // Stopped in Pod, with an end_date carrying an offset.
    let live = env.pod.live(r.live);
    assert_eq!(live["status"], json!(2));
    let end = live["end_date"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(end)
        .unwrap_or_else(|e| panic!("end_date {end:?} is not ISO 8601 with offset: {e}"));
    // Container down after ffmpeg was asked to finish; broadcaster deleted.
    assert!(!env.docker.running(&env.slot_dir(slot)));
    let subs = env.docker.subcommands_in(&env.slot_dir(slot));
    let exec = subs
        .iter()
        .position(|s| s == "exec")
        .expect("SIGINT via exec");
    let down = subs.iter().rposition(|s| s == "down").expect("down");
    assert!(exec < down, "ffmpeg is stopped before down: {subs:?}");
    assert!(
        env.pod
            .broadcasters()
            .iter()
            .all(|b| b["slug"] != json!(slug)),
        "broadcaster {slug} still in Pod"
    );
    // The meeting marked for encoding by the teacher, the recording under its name.
    let meeting = env.pod.meeting(r.meeting);
    assert_eq!(meeting["encoding_step"], json!(3));
    assert!(
        meeting["encoded_by"]
            .as_str()
            .unwrap()
            .ends_with("/rest/users/1/")
    );
    assert_delivered(&env, &r);
    assert!(
        FakeDocker::mkv_files(&env.slot_dir(slot)).is_empty(),
        "the source is deleted once handed over"
    );

    // The slot is free again: a new live takes it.
    let r2 = env.request_live("Cours suivant");
    env.tick_ok();
    assert_streaming(&env, r2.live);
    env.assert_no_secret_anywhere();
}

#[test]
fn a_live_without_recording_leaves_nothing_in_recordings_dir() {
    let env = TestEnv::new();
    let (r, slot) = start_one(&env, "Sans enregistrement");
    assert!(FakeDocker::mkv_files(&env.slot_dir(slot)).is_empty());
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2);
    assert!(env.recordings().is_empty());
    assert_eq!(env.pod.meeting(r.meeting)["encoding_step"], json!(0));
}

#[test]
fn a_live_closed_by_hand_in_pod_is_cleaned_up_keeping_the_admins_end_date() {
    let env = TestEnv::new();
    let (r, slot) = start_one(&env, "Fermé à la main");
    let end = "2026-11-24T09:30:00+01:00";
    env.pod
        .set_live(r.live, json!({"status": 2, "end_date": end}));
    env.tick_ok();
    assert!(!env.docker.running(&env.slot_dir(slot)));
    assert!(env.pod.broadcasters().is_empty());
    let live = env.pod.live(r.live);
    let kept = chrono::DateTime::parse_from_rfc3339(live["end_date"].as_str().unwrap()).unwrap();
    assert_eq!(kept, chrono::DateTime::parse_from_rfc3339(end).unwrap());
    // Defect 16: the next ticks leave that closed live alone.
    let calls = env.docker.calls().len();
    env.pod.clear_requests();
    env.tick_ok();
    assert_eq!(env.docker.calls().len(), calls);
    assert!(env.pod.writes().is_empty(), "{:?}", env.pod.writes());
}

#[test]
fn end_confirmations_wait_for_consecutive_ticks() {
    let env = TestEnv::builder().end_confirmations(3).build();
    let (r, slot) = start_one(&env, "Trois confirmations");
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1, "two sightings are not enough");
    // A meeting seen running again resets the count.
    env.bbb.add_meeting(
        &r.meeting_id,
        &r.internal_meeting_id,
        "Trois confirmations",
        true,
    );
    env.tick_ok();
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1, "the count restarted");
    assert!(env.docker.running(&env.slot_dir(slot)));
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2);
}

// ---------------------------------------------------------------------------
// BBB outages stop nothing (defects 1 and 17)
// ---------------------------------------------------------------------------

#[test]
fn no_bbb_outage_of_any_kind_stops_a_live() {
    let env = TestEnv::new();
    let (r, slot) = start_one(&env, "Pendant la panne");
    for mode in [
        BbbMode::Down,
        BbbMode::ChecksumError,
        BbbMode::ScaleliteInternalError,
        BbbMode::Garbage,
        BbbMode::Http(500),
        BbbMode::Http(404),
        BbbMode::Hang,
        BbbMode::Truncated,
        BbbMode::EmptyBody,
    ] {
        env.bbb.set_mode(mode.clone());
        let out = env.tick();
        assert_eq!(
            out.code,
            Some(1),
            "{mode:?}: a failed getMeetings fails the tick\nstdout:\n{}\nstderr:\n{}\nlog:\n{}",
            out.stdout,
            out.stderr,
            env.log_text()
        );
        assert_eq!(env.live_status(r.live), 1, "{mode:?} stopped the live");
        assert!(env.docker.running(&env.slot_dir(slot)), "{mode:?}");
        assert!(
            !env.docker
                .subcommands_in(&env.slot_dir(slot))
                .iter()
                .any(|s| s == "down" || s == "exec"),
            "{mode:?}: the streamer was touched"
        );
        assert!(
            out.stderr.contains("getMeetings") || out.stderr.contains("BigBlueButton"),
            "{mode:?}: stderr does not say BBB failed:\n{}",
            out.stderr
        );
    }
    // The failure is mailed once, not every minute.
    let digests = env.mails_with_subject("rror");
    assert!(
        !digests.is_empty() && digests.len() <= 3,
        "expected one error digest, got {}: {:?}",
        digests.len(),
        digests.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    // Back to normal: still running; once the meeting ends it stops.
    env.bbb.set_mode(BbbMode::Normal);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1);
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2);
    env.assert_no_secret_anywhere();
}

#[test]
fn a_created_but_not_running_meeting_has_not_ended() {
    let env = TestEnv::new();
    let (r, slot) = start_one(&env, "Pas encore commencé");
    // running=false, endTime=0: everyone left for a minute, the room still exists.
    env.bbb.set_running(&r.meeting_id, false);
    env.tick_ok();
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1);
    assert!(env.docker.running(&env.slot_dir(slot)));
}

#[test]
fn each_live_is_compared_with_its_own_meeting() {
    // Defect 14: the first meeting ending must not stop the other lives.
    let env = TestEnv::new();
    let a = env.request_live("Premier");
    let b = env.request_live("Second");
    env.tick_ok();
    assert_streaming(&env, a.live);
    let slot_b = assert_streaming(&env, b.live);
    env.bbb.end_meeting(&a.meeting_id);
    env.tick_ok();
    assert_eq!(env.live_status(a.live), 2);
    assert_eq!(env.live_status(b.live), 1);
    assert!(env.docker.running(&env.slot_dir(slot_b)));
}

// ---------------------------------------------------------------------------
// Pod lists: pages, servers, slots
// ---------------------------------------------------------------------------

#[test]
fn a_pending_live_after_40_old_ones_is_found_across_pages() {
    for version in [PodVersion::V2_8, PodVersion::V3_8] {
        let env = TestEnv::builder().pod_version(version).build();
        env.add_history(40);
        let r = env.request_live("Après quarante");
        env.tick_ok();
        assert_streaming(&env, r.live);
        let pages = env
            .pod
            .requests()
            .iter()
            .filter(|q| q.method == "GET" && q.path == "/rest/bbb_livestream/")
            .count();
        if version == PodVersion::V3_8 {
            assert!(pages >= 4, "41 rows are 4 pages of 12, read {pages}");
        }
        // No old live was touched.
        env.assert_only_live_written(r.live);
    }
}

#[test]
fn a_failed_page_decides_nothing() {
    let env = TestEnv::new();
    env.add_history(30);
    let (r, slot) = start_one(&env, "Page manquante");
    env.bbb.end_meeting(&r.meeting_id);
    let w = env.request_live("Attend");
    // Page 2 of 3 of a whole read fails: nothing may be stopped nor started (defect
    // 2's other half).
    crate::pace::forget_pod_list(&env);
    env.pod.clear_requests();
    env.pod
        .fail_next("GET", "/rest/bbb_livestream/?page=2", Fault::Html500, 1);
    let out = env.tick();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(env.live_status(r.live), 1);
    assert!(env.docker.running(&env.slot_dir(slot)));
    assert_eq!(env.live_status(w.live), 0);
    assert_eq!(env.docker.count("up"), 1);
    let pages: Vec<String> = env
        .pod
        .requests()
        .iter()
        .filter(|q| q.path == "/rest/bbb_livestream/")
        .map(|q| q.query.clone())
        .collect();
    assert!(pages.iter().any(|q| q.starts_with("page=2")), "{pages:?}");
    assert!(env.pod.writes().is_empty(), "{:?}", env.pod.writes());
    // The next minute reads every page again and acts.
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2);
    assert_streaming(&env, w.live);
}

#[test]
fn server_11_is_not_server_1() {
    // Defect 3: "11/1" must not be read as this server's slot 1.
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Sur le serveur 11");
    env.pod
        .set_live(r.live, json!({"status": 1, "server": "11/1"}));
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    assert_eq!(env.docker.count("down"), 0);
    assert_eq!(env.live_status(r.live), 1);
    assert_eq!(env.pod.live(r.live)["server"], "11/1");
    // And our own "1/1" is ours: a waiting live cannot take that busy slot.
    let mine = env.request_live("Sur le serveur 1");
    env.tick_ok();
    assert_streaming(&env, mine.live);
    let waiting = env.request_live("En attente");
    env.tick_ok();
    assert_eq!(env.live_status(waiting.live), 0, "slot 1 is busy");
    assert_eq!(env.docker.count("up"), 1);
}

#[test]
fn more_requests_than_slots_start_in_order_as_slots_free_up() {
    let env = TestEnv::builder().slots(2).build();
    let lives: Vec<Requested> = (0..4)
        .map(|i| env.request_live(&format!("Cours {i}")))
        .collect();
    env.tick_ok();
    assert_eq!(env.live_status(lives[0].live), 1);
    assert_eq!(env.live_status(lives[1].live), 1);
    assert_eq!(env.live_status(lives[2].live), 0);
    assert_eq!(env.live_status(lives[3].live), 0);
    let s0 = env.slot_of(lives[0].live);
    let s1 = env.slot_of(lives[1].live);
    assert_ne!(s0, s1);
    assert_eq!(env.docker.count("up"), 2);
    // Waiting lives are not an error: nothing on stderr (cron would mail it every
    // minute), nobody mailed about them.
    let mails = env.smtp.messages().len();
    let out = env.tick_ok();
    assert_eq!(out.stderr, "");
    assert_eq!(env.docker.count("up"), 2);
    assert_eq!(env.smtp.messages().len(), mails);
    // The first ends: its slot goes to the next waiting live.
    env.bbb.end_meeting(&lives[0].meeting_id);
    env.tick_ok();
    assert_eq!(env.live_status(lives[0].live), 2);
    env.tick_ok();
    assert_eq!(env.live_status(lives[2].live), 1);
    assert_eq!(env.slot_of(lives[2].live), s0);
    assert_eq!(env.live_status(lives[3].live), 0);
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

#[test]
fn hostile_meeting_names_give_valid_files_distinct_keys_and_broadcasters() {
    let long = "Cours ".repeat(35); // 210 characters
    let names = [
        "L'amphi \"Darwin\" & co",
        "Maths/Physique 1/2 \\ $HOME ${BBB_SECRET}",
        "Ligne 1\nLigne 2\r\tfin",
        "Cours 🎓 de chimie 🧪",
        long.as_str(),
        "Même nom",
        "Même nom",
    ];
    let env = TestEnv::builder().slots(7).build();
    let reqs: Vec<Requested> = names.iter().map(|n| env.request_live(n)).collect();
    env.tick_ok();

    let mut keys = Vec::new();
    let mut broadcaster_names = Vec::new();
    for (r, name) in reqs.iter().zip(names) {
        let slot = assert_streaming(&env, r.live);
        // The compose file parses and carries the name back exactly (newlines become
        // spaces: the streamer shows it on one line).
        // `$$` is how compose spells a literal `$` (no interpolation).
        let title = streamer_var(&env, slot, "BBB_MEETING_TITLE").replace("$$", "$");
        let expect: String = name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        assert_eq!(title, expect, "title of {name:?}");
        let rtmp = streamer_var(&env, slot, "BBB_STREAM_URL");
        let key = rtmp.rsplit('/').next().unwrap().to_string();
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "stream key {key:?} is not URL-safe"
        );
        keys.push(key);
        let b = broadcaster_of(&env, r.live);
        let bname = b["name"].as_str().unwrap().to_string();
        assert!(bname.chars().count() <= 200, "{bname:?}");
        broadcaster_names.push(bname);
    }
    let mut k = keys.clone();
    k.sort();
    k.dedup();
    assert_eq!(k.len(), keys.len(), "stream keys collide: {keys:?}");
    let mut n = broadcaster_names.clone();
    n.sort();
    n.dedup();
    assert_eq!(
        n.len(),
        names.len(),
        "broadcaster names collide: {broadcaster_names:?}"
    );
    assert_eq!(env.pod.broadcasters().len(), names.len());

    // And they all stop cleanly, each broadcaster deleted by its own slug.
    for r in &reqs {
        env.bbb.end_meeting(&r.meeting_id);
    }
    env.tick_ok();
    for r in &reqs {
        assert_eq!(env.live_status(r.live), 2);
    }
    assert!(
        env.pod.broadcasters().is_empty(),
        "{:?}",
        env.pod.broadcasters()
    );
}

#[test]
fn a_broadcaster_left_by_an_earlier_attempt_is_reused() {
    let env = TestEnv::new();
    let r = env.request_live("Cours repris");
    // An earlier attempt created the broadcaster, then crashed before docker.
    env.tick_ok();
    let slot = assert_streaming(&env, r.live);
    let before = broadcaster_of(&env, r.live);
    let key = streamer_var(&env, slot, "BBB_STREAM_URL");
    // Back to the state after a crash: live waiting, container gone, broadcaster kept,
    // no state in the slot.
    env.docker.set_running(&env.slot_dir(slot), false);
    fs::remove_dir_all(env.slot_dir(slot)).unwrap();
    env.pod.set_live(
        r.live,
        json!({"status": 0, "server": null, "broadcaster_id": null}),
    );
    env.tick_ok();
    let slot = assert_streaming(&env, r.live);
    assert_eq!(
        env.pod.broadcasters().len(),
        1,
        "{:?}",
        env.pod.broadcasters()
    );
    let after = broadcaster_of(&env, r.live);
    assert_eq!(after["id"], before["id"], "the leftover was reused");
    assert_eq!(streamer_var(&env, slot, "BBB_STREAM_URL"), key);
}

#[test]
fn a_leftover_broadcaster_pointing_elsewhere_is_reused_and_repointed() {
    for version in [PodVersion::V2_8, PodVersion::V3_8] {
        let env = TestEnv::builder().pod_version(version).build();
        // Created by hand or by a crashed attempt, with a stale stream URL.
        env.pod
            .add_broadcaster("[BBB] Cours d'hier", "https://hls.example/hls/stale.m3u8");
        let r = env.request_live("Cours d'hier");
        env.tick_ok();
        assert_streaming(&env, r.live);
        assert_eq!(
            env.pod.broadcasters().len(),
            1,
            "{version:?}: {:?}",
            env.pod.broadcasters()
        );
    }
}

#[test]
fn a_broadcaster_of_a_running_live_is_never_taken() {
    let env = TestEnv::builder().slots(2).build();
    let a = env.request_live("Même cours");
    env.tick_ok();
    let b_a = broadcaster_of(&env, a.live);
    let b = env.request_live("Même cours");
    env.tick_ok();
    assert_streaming(&env, a.live);
    assert_streaming(&env, b.live);
    let b_b = broadcaster_of(&env, b.live);
    assert_ne!(b_a["id"], b_b["id"]);
    assert_ne!(hls_url(&b_a), hls_url(&b_b));
    assert_eq!(broadcaster_of(&env, a.live)["id"], b_a["id"]);
}

// ---------------------------------------------------------------------------
// Failures of a start
// ---------------------------------------------------------------------------

#[test]
fn a_meeting_without_a_bbb_id_is_not_started_and_does_not_block_the_others() {
    // Defect 15: an empty meeting id started a container; a NUL crashed the run.
    let env = TestEnv::builder().slots(2).build();
    let empty = env.request_live("Sans identifiant");
    // Pod refuses a blank id through its API; a control character gets through.
    env.pod
        .set_meeting(empty.meeting, json!({"meeting_id": "abc\u{7}def"}));
    let nul = env.request_live("Nom avec \u{0} NUL");
    let out = env.tick();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(env.live_status(empty.live), 0);
    assert!(
        out.stderr.contains("meeting id"),
        "the error says what is wrong: {}",
        out.stderr
    );
    let slot = assert_streaming(&env, nul.live);
    assert_eq!(
        streamer_var(&env, slot, "BBB_MEETING_TITLE"),
        "Nom avec   NUL"
    );
    assert_eq!(env.docker.count("up"), 1, "no container for the empty id");
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn docker_up_failing_three_times_closes_the_live_with_one_mail() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Conteneur en panne");
    env.docker.fail_up(100);
    for attempt in 1..=2 {
        let out = env.tick();
        assert_eq!(out.code, Some(1), "attempt {attempt}");
        // Undone: no container, no broadcaster, live still waiting.
        assert_eq!(env.live_status(r.live), 0, "attempt {attempt}");
        assert!(env.pod.broadcasters().is_empty(), "attempt {attempt}");
        assert!(!env.docker.running(&env.slot_dir(1)));
    }
    let out = env.tick();
    assert_eq!(out.code, Some(1));
    assert_eq!(env.docker.count("up"), 3);
    let live = env.pod.live(r.live);
    assert_eq!(live["status"], json!(2), "closed after 3 failed attempts");
    assert!(live["end_date"].is_string());
    assert!(env.pod.broadcasters().is_empty());
    // The mail says why; no more attempts after that.
    let gave_up: Vec<Mail> = env
        .smtp
        .messages()
        .into_iter()
        .filter(|m| m.body.contains("Conteneur en panne"))
        .collect();
    assert!(!gave_up.is_empty(), "{:?}", env.smtp.messages());
    let mails = env.smtp.messages().len();
    env.tick_ok();
    env.tick_ok();
    assert_eq!(env.docker.count("up"), 3);
    assert_eq!(env.smtp.messages().len(), mails, "mailed again");
}

#[test]
fn a_live_started_by_another_server_meanwhile_is_not_closed_by_the_give_up() {
    // Without [cluster], server 2 may start the live while our third attempt fails.
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Pris ailleurs");
    env.docker.fail_up(100);
    for _ in 0..2 {
        assert_eq!(env.tick().code, Some(1));
    }
    env.docker.delay("up", Duration::from_secs(1));
    let third = env.spawn(&["run"]);
    wait_until("the third up", Duration::from_secs(20), || {
        env.docker.count("up") == 3
    });
    env.pod
        .set_live(r.live, json!({"status": 1, "server": "2/1"}));
    let out = env.wait(third);
    assert_eq!(out.code, Some(1), "the failed up is still an error");
    let live = env.pod.live(r.live);
    assert_eq!(
        live["status"],
        json!(1),
        "a running live was closed: {live}"
    );
    assert_eq!(live["server"], json!("2/1"));
    assert!(live["end_date"].is_null(), "{live}");
}

#[test]
fn a_start_failing_then_succeeding_leaves_one_container_and_one_broadcaster() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Deuxième essai");
    env.docker.fail_up(1);
    assert_eq!(env.tick().code, Some(1));
    assert_eq!(env.live_status(r.live), 0);
    env.tick_ok();
    assert_streaming(&env, r.live);
    assert_eq!(env.pod.broadcasters().len(), 1);
}

#[test]
fn a_pod_refusal_of_the_start_patch_is_undone() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Refus de Pod");
    env.pod.fail_next(
        "PATCH",
        &format!("/rest/bbb_livestream/{}/", r.live),
        Fault::Status(
            400,
            r#"{"redis_port":["Un nombre entier valide est requis."]}"#.into(),
        ),
        1,
    );
    let out = env.tick();
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("redis_port") || env.log_text().contains("redis_port"),
        "the DRF error is reported: {}",
        out.stderr
    );
    assert_eq!(env.live_status(r.live), 0);
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert!(env.pod.broadcasters().is_empty());
    env.tick_ok();
    assert_streaming(&env, r.live);
}

// ---------------------------------------------------------------------------
// Recordings
// ---------------------------------------------------------------------------

fn make_unavailable(dir: &Path) {
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_recording_waits_while_recordings_dir_is_down_then_is_handed_over_once() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live_with("Partage NFS", |s| s.download_meeting = true);
    env.tick_ok();
    assert_streaming(&env, r.live);
    make_unavailable(&env.recordings_dir());
    env.bbb.end_meeting(&r.meeting_id);
    let out = env.tick();
    assert_eq!(out.code, Some(1), "an undelivered recording is an error");
    // The live is stopped and the slot freed; the recording is kept outside the slot.
    assert_eq!(env.live_status(r.live), 2);
    assert!(FakeDocker::mkv_files(&env.slot_dir(1)).is_empty());
    let kept: Vec<_> = files_under(&env.base_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    // A new live can take the slot meanwhile.
    let next = env.request_live("Suivant");
    let _ = env.tick();
    assert_streaming(&env, next.live);
    let mails_before = env.smtp.messages().len();
    let _ = env.tick();
    let _ = env.tick();
    assert!(
        env.smtp.messages().len() <= mails_before + 1,
        "the share being down is not mailed every minute"
    );
    // The share comes back: delivered once, source deleted.
    fs::create_dir_all(env.recordings_dir()).unwrap();
    env.tick_ok();
    assert_delivered(&env, &r);
    assert!(
        files_under(&env.base_dir())
            .iter()
            .all(|p| p.extension().is_none_or(|e| e != "mkv") || p.starts_with(env.slot_dir(1))),
        "the kept copy is deleted after delivery"
    );
    env.tick_ok();
    assert_eq!(env.recordings().len(), 1);
}

#[test]
fn an_internal_meeting_id_that_is_not_a_file_name_is_refused_and_the_recording_kept() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live_with("Traversée", |s| s.download_meeting = true);
    env.tick_ok();
    assert_streaming(&env, r.live);
    env.pod.set_meeting(
        r.meeting,
        json!({"internal_meeting_id": "../../../../tmp/evil"}),
    );
    env.bbb.end_meeting(&r.meeting_id);
    let out = env.tick();
    assert_eq!(out.code, Some(1));
    assert_eq!(env.live_status(r.live), 2, "the live itself stops");
    assert!(env.recordings().is_empty());
    assert!(!env.root().join("tmp/evil.mkv").exists());
    assert!(!Path::new("/tmp/evil.mkv").exists());
    let kept = files_under(&env.base_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .count();
    assert_eq!(kept, 1, "the recording is kept on local disk");
    let said = format!("{}{}", out.stderr, env.log_text());
    assert!(said.contains("internal_meeting_id"), "{}", out.stderr);
}

#[test]
fn an_existing_file_in_recordings_dir_is_never_overwritten() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live_with("Déjà là", |s| s.download_meeting = true);
    env.tick_ok();
    let target = env.delivered_path(&r);
    fs::write(&target, "an older file with the same name").unwrap();
    env.bbb.end_meeting(&r.meeting_id);
    let out = env.tick();
    assert_eq!(out.code, Some(1));
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "an older file with the same name"
    );
    let kept = files_under(&env.base_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .count();
    assert_eq!(kept, 1, "the new recording is kept");
}

// ---------------------------------------------------------------------------
// Lock, exit codes, secrets
// ---------------------------------------------------------------------------

#[test]
fn two_ticks_at_once_start_a_live_once_and_the_second_exits_0() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Deux ticks");
    // The first tick holds the lock while its `up` takes 2 s.
    env.docker.delay("up", Duration::from_secs(2));
    let first = env.spawn(&["run"]);
    wait_until("the first tick's up", Duration::from_secs(20), || {
        env.docker.calls().iter().any(|c| c.is("up"))
    });
    let second = env.tick();
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let first = env.wait(first);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(env.docker.count("up"), 1);
    assert_eq!(env.pod.broadcasters().len(), 1);
    assert_streaming(&env, r.live);
    assert!(
        env.log_text().to_lowercase().contains("lock"),
        "the second tick says why it did nothing"
    );
}

#[test]
fn a_configuration_error_exits_2_and_touches_nothing() {
    let env = TestEnv::new();
    env.request_live("Config cassée");
    env.rewrite_config(|t| t.replace("slots = 2", "slots = \"deux\""));
    let out = env.tick();
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("server.slots"), "{}", out.stderr);
    assert!(env.pod.requests().is_empty());
    assert!(env.docker.calls().is_empty());
}

#[test]
fn secrets_from_the_environment_override_the_file_and_never_leak() {
    let env = TestEnv::builder()
        .smtp_auth("relay", "smtp-pass-123")
        .build();
    let token = env.pod.token();
    // The file carries wrong secrets; the environment the right ones.
    env.rewrite_config(|t| {
        t.replace(&token, "wrong-token-in-file")
            .replace(BBB_SECRET, "wrong-secret-in-file")
            .replace("smtp-pass-123", "wrong-pass-in-file")
    });
    let r = env.request_live("Secrets");
    let out = env.run_env(
        &["-vv", "run"],
        &[
            ("BBB_POD_LIVE_POD_TOKEN", &token),
            ("BBB_POD_LIVE_BBB_SECRET", BBB_SECRET),
            ("BBB_POD_LIVE_SMTP_PASSWORD", "smtp-pass-123"),
        ],
    );
    out.assert_success();
    assert_streaming(&env, r.live);
    assert_eq!(env.smtp.failed_auths(), 0);
    env.smtp.wait_for(1, Duration::from_secs(5));
    env.assert_no_secret_anywhere();
}

#[test]
fn every_checksum_algorithm_bbb_accepts_works() {
    for algorithm in ["sha1", "sha256", "sha512"] {
        let env = TestEnv::builder().checksum(algorithm).build();
        env.bbb.set_algorithms(&[match algorithm {
            "sha1" => "sha1",
            "sha256" => "sha256",
            _ => "sha512",
        }]);
        let r = env.request_live("Somme de contrôle");
        env.tick_ok();
        assert_streaming(&env, r.live);
        env.bbb.end_meeting(&r.meeting_id);
        env.tick_ok();
        assert_eq!(env.live_status(r.live), 2, "{algorithm}");
        assert_eq!(env.bbb.bad_checksums(), 0, "{algorithm}");
        assert!(
            env.bbb
                .queries()
                .iter()
                .all(|q| q.contains("checksum=") && !q.contains(BBB_SECRET)),
            "{algorithm}: {:?}",
            env.bbb.queries()
        );
    }
}

#[test]
fn configuration_errors_name_the_file_and_the_key_and_exit_2() {
    let env = TestEnv::new();
    env.request_live("Config cassée");
    let original = env.config_text();
    type Edit = Box<dyn Fn(&str) -> String>;
    let cases: [(&str, Edit, &str); 4] = [
        (
            "unknown key",
            Box::new(|t: &str| t.replace("slots = 2", "slots = 2\nslotz = 3")),
            "server.slotz",
        ),
        (
            "missing required key",
            Box::new(|t: &str| {
                t.lines()
                    .filter(|l| !l.starts_with("token ="))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            "pod.token",
        ),
        (
            "bad value",
            Box::new(|t: &str| t.replace("checksum = \"sha1\"", "checksum = \"md5\"")),
            "bbb.checksum",
        ),
        (
            "number out of range",
            Box::new(|t: &str| t.replace("number = 1", "number = 0")),
            "server.number",
        ),
    ];
    for (what, edit, key) in cases {
        let text = edit(&original);
        assert_ne!(text, original, "{what}: the edit changed nothing");
        env.rewrite_config(|_| text);
        let out = env.tick();
        assert_eq!(out.code, Some(2), "{what}: {}", out.stderr);
        assert!(
            out.stderr.contains(key),
            "{what}: {key} not named:\n{}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains(&env.config_path().display().to_string()),
            "{what}: the file is not named:\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{what}");
    }
    assert!(env.pod.requests().is_empty(), "nothing touched");
    assert!(env.docker.calls().is_empty());
    assert!(!env.slot_dir(1).exists());
}

#[test]
fn the_day_log_is_named_by_utc_date_and_debug_shows_requests_without_secrets() {
    let env = TestEnv::new();
    let r = env.request_live("Journal");
    let out = env.tick_ok();
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "", "a quiet tick writes nothing to cron's mail");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    // The PHP script's name for its day logs, which admins' tools expect.
    let file = env.log_dir().join(format!("{today}_bbb-pod-live.log"));
    let log =
        fs::read_to_string(&file).unwrap_or_else(|e| panic!("no day log {}: {e}", file.display()));
    // Debug (server.debug = true) shows each request and the decisions.
    assert!(log.contains("/rest/bbb_livestream/"), "{log}");
    assert!(log.contains("getMeetings") || log.contains("BBB"), "{log}");
    assert!(
        log.contains(&format!("live {}", r.live)) || log.contains(&format!("live={}", r.live)),
        "{log}"
    );
    assert!(log.contains("DEBUG"), "{log}");
    env.assert_no_secret_anywhere();
}

#[test]
fn broadcasters_are_created_and_deleted_by_pods_own_slug_on_both_pod_versions() {
    for version in [PodVersion::V2_8, PodVersion::V3_8] {
        let env = TestEnv::builder().pod_version(version).build();
        let r = env.request_live("Cours d'économie — été 2026");
        env.tick_ok();
        assert_streaming(&env, r.live);
        // Defect 4: one POST carrying both the 2.8 field and the 2.9.3+ one.
        let posts: Vec<PodRequest> = env
            .pod
            .writes()
            .into_iter()
            .filter(|w| w.method == "POST" && w.path == "/rest/broadcasters/")
            .collect();
        assert_eq!(posts.len(), 1, "{version:?}");
        let form = posts[0].form();
        for field in ["url", "broadcaster_url", "name", "building", "status"] {
            assert!(
                form.iter().any(|(k, _)| k == field),
                "{version:?}: no {field} in {form:?}"
            );
        }
        assert!(
            posts[0]
                .authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Token ")),
            "{version:?}"
        );
        env.bbb.end_meeting(&r.meeting_id);
        env.tick_ok();
        assert!(
            env.pod.broadcasters().is_empty(),
            "{version:?}: the broadcaster was not deleted: {:?}",
            env.pod.broadcasters()
        );
    }
}

#[test]
fn a_pod_error_echoing_the_token_does_not_put_it_in_the_log_or_mail() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Écho du jeton");
    let body = json!({"detail": format!("Token {} non valide", env.pod.token())}).to_string();
    env.pod.fail_next(
        "PATCH",
        &format!("/rest/bbb_livestream/{}/", r.live),
        Fault::Status(400, body),
        1,
    );
    let out = env.run(&["-vv", "run"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("[redacted]"),
        "the error is still shown: {}",
        out.stderr
    );
    env.smtp.wait_for(1, Duration::from_secs(5));
    env.assert_no_secret_anywhere();
}

#[test]
fn day_logs_older_than_log_retention_days_are_removed() {
    let env = TestEnv::builder()
        .extra_toml("[server]\nlog_retention_days = 3\n")
        .build();
    // The PHP's day logs (`_`) and this tool's earlier ones (`.`) alike: an upgraded
    // server's old logs are pruned too.
    let day = |back: u64| {
        let d = chrono::Utc::now().date_naive() - chrono::Days::new(back);
        let sep = if back.is_multiple_of(2) { '_' } else { '.' };
        format!("{}{sep}bbb-pod-live.log", d.format("%Y-%m-%d"))
    };
    // Written newest first: the creation order must not matter, only the dates.
    for back in 1..=6 {
        fs::write(env.log_dir().join(day(back)), "old\n").unwrap();
    }
    fs::write(env.log_dir().join("notes.txt"), "the admin's own file\n").unwrap();
    env.tick_ok();
    let mut left: Vec<String> = fs::read_dir(env.log_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut expected = vec![day(2), day(1), day(0), "notes.txt".to_string()];
    expected.sort();
    assert_eq!(left, expected);
}

#[test]
fn pod_unavailable_during_starts_does_not_use_up_the_three_attempts() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Pod redémarre");
    let meeting = format!("/rest/bbb_meeting/{}/", r.meeting);
    // Five minutes of a Pod restarting behind its proxy, or gone from the network,
    // each time the meeting is read: the live is not closed for that.
    let faults = [
        Fault::Status(503, "<html>Service Unavailable</html>".into()),
        Fault::Status(502, "<html>Bad Gateway</html>".into()),
        Fault::Drop,
        Fault::Status(504, "<html>Gateway Timeout</html>".into()),
        Fault::Drop,
    ];
    for fault in faults {
        // Twice a tick: the read before planning, and the start's own read.
        env.pod.fail_next("GET", &meeting, fault, 2);
        assert_eq!(env.tick().code, Some(1));
        assert_eq!(env.live_status(r.live), 0);
        assert!(env.pod.broadcasters().is_empty());
    }
    env.tick_ok();
    assert_streaming(&env, r.live);
    // A Pod answering 500 (its own code failing on this data) does count.
    let other = env.request_live("Pod en erreur");
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    let meeting = format!("/rest/bbb_meeting/{}/", other.meeting);
    env.pod.fail_next("GET", &meeting, Fault::Html500, 6);
    for _ in 0..3 {
        assert_eq!(env.tick().code, Some(1));
    }
    assert_eq!(
        env.live_status(other.live),
        2,
        "closed after 3 failed attempts"
    );
}

#[test]
fn a_run_stuck_holding_the_lock_is_reported_by_the_next_runs() {
    let env = TestEnv::new();
    let r = env.request_live("Verrou");
    fs::create_dir_all(env.base_dir()).unwrap();
    let hold = |since: chrono::DateTime<chrono::Utc>| {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(env.base_dir().join(".bbb-pod-live.lock"))
            .unwrap();
        // The lock of the previous `hold`, dropped just before, may still be held for
        // a moment: a child another test thread forks at that instant shares the open
        // file (and its flock) until its exec closes it (O_CLOEXEC).
        wait_until("the test's own lock", Duration::from_secs(30), || {
            f.try_lock().is_ok()
        });
        std::io::Write::write_all(&mut &f, format!("4242 {}\n", since.to_rfc3339()).as_bytes())
            .unwrap();
        f
    };
    // A run that started a minute ago: a normal overlap, quietly skipped.
    let lock = hold(chrono::Utc::now() - chrono::Duration::minutes(1));
    let out = env.tick();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stderr, "");
    drop(lock);
    // A run holding it for two hours is stuck: every later run says so, exit 1.
    let lock = hold(chrono::Utc::now() - chrono::Duration::hours(2));
    let out = env.tick();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("looks stuck"), "{}", out.stderr);
    assert!(out.stderr.contains("4242"), "{}", out.stderr);
    assert_eq!(
        env.live_status(r.live),
        0,
        "nothing acted beside the stuck run"
    );
    assert_eq!(env.docker.count("up"), 0);
    drop(lock);
    env.tick_ok();
    assert_streaming(&env, r.live);
}

#[test]
fn a_live_taken_over_after_a_failed_meeting_read_still_stops_when_its_meeting_ends() {
    // Pod shows a live running in our slot 1 without a state file (migrated from the
    // PHP script, or the state was lost): the tick takes it over.
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Repris du PHP");
    // Its container, started from the PHP's compose file in the same slot directory.
    env.php_live_in_slot(r.live, 1);
    env.pod.fail_next(
        "GET",
        &format!("/rest/bbb_meeting/{}/", r.meeting),
        Fault::Status(502, "<html>Bad Gateway</html>".into()),
        1,
    );
    assert_eq!(env.tick().code, Some(1), "the failed read is reported");
    env.tick_ok();
    let waiting = env.request_live("En attente");
    env.tick_ok();
    assert_eq!(
        env.live_status(waiting.live),
        0,
        "slot 1 stays busy with the taken-over live"
    );
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    assert_eq!(
        env.live_status(r.live),
        2,
        "the taken-over live stopped with its meeting"
    );
    assert!(
        !env.docker.running(&env.slot_dir(1)),
        "{:?}\n{}",
        env.docker.calls(),
        env.log_text()
    );
    env.tick_ok();
    assert_streaming(&env, waiting.live);
}

#[test]
fn an_interrupted_start_missing_from_the_list_is_confirmed_with_pod_before_it_is_undone() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Ligne manquante");
    // Killed after Pod applied the status-1 PATCH, before its answer arrived.
    env.pod.fail_next(
        "PATCH",
        &format!("/rest/bbb_livestream/{}/", r.live),
        Fault::ApplyThenHang,
        1,
    );
    let mut child = env.spawn(&["run"]);
    wait_until("the applied PATCH", Duration::from_secs(20), || {
        env.pod.applied_then_hung() == 1
    });
    child.kill().unwrap();
    env.wait(child);
    // The next list misses that row; Pod still has it, running in our slot 1.
    env.pod.hide_from_list(r.live, true);
    env.tick_ok();
    assert!(
        env.docker.running(&env.slot_dir(1)),
        "the running live was undone"
    );
    assert_eq!(env.pod.broadcasters().len(), 1);
    env.pod.hide_from_list(r.live, false);
    env.tick_ok();
    assert_streaming(&env, r.live);
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2);
}

#[test]
fn without_cluster_servers_stagger_their_ticks_over_the_minute() {
    // (number - 1) * 60 / count seconds: server 2 of 60 waits 1 s, server 1 not at all.
    // The wait is read from the debug log, not from a clock a loaded machine stretches;
    // only the lower bound (it did sleep) is timed.
    let first = TestEnv::builder().server_number(1).count(60).build();
    first.tick_ok();
    assert!(
        first.log_text().contains("staggered tick: waiting 0 s"),
        "server 1 waited\n{}",
        first.log_text()
    );
    let second = TestEnv::builder().server_number(2).count(60).build();
    let r = second.request_live("Décalé");
    let t = std::time::Instant::now();
    second.tick_ok();
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(1),
        "server 2 did not wait: {waited:?}"
    );
    assert!(
        second.log_text().contains("staggered tick: waiting 1 s"),
        "{}",
        second.log_text()
    );
    assert_eq!(second.pod.live(r.live)["server"], "2/1");
    // A dry run never waits (its debug log goes to stderr).
    let out = second.run(&["-vv", "--dry-run", "run"]);
    out.assert_success();
    assert!(out.stderr.contains("DEBUG"), "{}", out.stderr);
    assert!(!out.stderr.contains("staggered tick"), "{}", out.stderr);
}

#[test]
fn a_recording_of_a_live_without_owner_is_kept_not_handed_over() {
    // Pod's bbb cron would fail on a file it cannot give to anyone, at every run.
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live_with("Sans propriétaire", |s| {
        s.download_meeting = true;
        s.user = None;
    });
    env.tick_ok();
    assert_streaming(&env, r.live);
    env.bbb.end_meeting(&r.meeting_id);
    let out = env.tick();
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no owner"), "{}", out.stderr);
    assert_eq!(env.live_status(r.live), 2);
    assert!(env.recordings().is_empty());
    assert_eq!(env.pod.meeting(r.meeting)["encoding_step"], json!(0));
    let kept = files_under(&env.base_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .count();
    assert_eq!(kept, 1);
}

#[test]
fn waiting_lives_whose_meeting_does_not_run_are_never_started_and_then_closed() {
    // The PHP script left lives at status 0 on Pod >= 2.9.3 (its broadcaster POST
    // failed), and Pod 3.1+ lists every live ever made: old requests must not be
    // started ahead of today's, nor at all. (They are judged while a slot is free.)
    let env = TestEnv::builder().slots(2).end_confirmations(2).build();
    let ended = env.request_live("Cours de l'an dernier");
    env.bbb.end_meeting(&ended.meeting_id);
    let gone = env.request_live("Cours disparu");
    env.bbb.remove_meeting(&gone.meeting_id);
    let today = env.request_live("Cours du jour");
    let out = env.tick_ok();
    assert_eq!(out.stderr, "", "old requests are not an error");
    assert_streaming(&env, today.live);
    assert_eq!(env.docker.count("up"), 1);
    for old in [&ended, &gone] {
        assert_eq!(
            env.live_status(old.live),
            0,
            "closed after one sighting only"
        );
    }
    // Seen again: closed in Pod, never started, nobody mailed about them.
    env.tick_ok();
    for old in [&ended, &gone] {
        let live = env.pod.live(old.live);
        assert_eq!(live["status"], json!(2), "{live}");
        assert!(live["end_date"].is_string(), "{live}");
    }
    assert_eq!(env.docker.count("up"), 1);
    assert_eq!(env.pod.broadcasters().len(), 1);
    assert_eq!(env.smtp.messages().len(), 1, "only today's live was mailed");
    assert!(env.log_text().contains("its meeting is not running in BBB"));
}

#[test]
fn a_waiting_live_whose_meeting_is_missing_once_is_started_when_it_is_back() {
    // A Scalelite node offline for a minute: its meetings vanish from getMeetings.
    let env = TestEnv::builder().slots(1).end_confirmations(2).build();
    let r = env.request_live("Nœud absent");
    env.bbb.remove_meeting(&r.meeting_id);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 0);
    env.bbb
        .add_meeting(&r.meeting_id, &r.internal_meeting_id, "Nœud absent", true);
    env.tick_ok();
    assert_streaming(&env, r.live);
}

#[test]
fn a_streamer_that_died_while_its_meeting_goes_on_is_reported_once() {
    // With health checks off (with them on, the streamer is repaired: tests/it/health.rs).
    let env = TestEnv::builder()
        .extra_toml("[health]\nenabled = false")
        .build();
    let (r, slot) = start_one(&env, "Flux coupé");
    // The container exited (Docker gave up restarting it); the meeting goes on.
    env.docker.set_running(&env.slot_dir(slot), false);
    let mails = env.smtp.messages().len();
    let out = env.tick();
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains(&format!("the streamer of live {}", r.live)),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.live_status(r.live),
        1,
        "nothing is stopped or restarted by itself"
    );
    assert_eq!(env.docker.count("up"), 1);
    assert_eq!(env.smtp.messages().len(), mails + 1, "mailed");
    assert_eq!(env.tick().code, Some(1));
    assert_eq!(
        env.smtp.messages().len(),
        mails + 1,
        "not mailed again within the hour"
    );
    // Back up (restarted by hand): quiet again.
    env.docker.set_running(&env.slot_dir(slot), true);
    let out = env.tick_ok();
    assert_eq!(out.stderr, "");
}

#[test]
fn a_meeting_missing_from_get_meetings_is_asked_for_before_its_live_is_stopped() {
    // Scalelite leaves out of getMeetings the meetings of a node it finds offline,
    // while isMeetingRunning still reaches the node that holds the meeting.
    let env = TestEnv::new();
    let (r, slot) = start_one(&env, "Nœud hors liste");
    env.bbb.hide_from_list(&r.meeting_id, true);
    for _ in 0..3 {
        env.tick_ok();
        assert_eq!(env.live_status(r.live), 1, "stopped while its meeting runs");
        assert!(env.docker.running(&env.slot_dir(slot)));
    }
    assert!(
        env.bbb.queries().iter().any(|q| q.contains("meetingID=")),
        "isMeetingRunning was asked: {:?}",
        env.bbb.queries()
    );
    // The meeting really ends (still missing from the list): stopped.
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2);
}

/// An idle tick asks docker whether it works when nobody did for an hour (the first
/// idle tick ever does): a dead daemon is a problem (exit 1, one mail) before a
/// teacher's live needs it, asked again at each tick until it works.
#[test]
fn an_idle_tick_finds_a_dead_docker_daemon_before_a_live_needs_it() {
    let env = TestEnv::new();
    let probes = |env: &TestEnv| {
        env.docker
            .calls()
            .iter()
            .filter(|c| c.args.first().is_some_and(|a| a == "info"))
            .count()
    };
    env.docker.daemon_down(true);
    for tick in 0..3 {
        let out = env.run_env(&["run"], &[("BBB_POD_LIVE_NOW", "2026-03-02T09:00:00Z")]);
        out.assert_code(1);
        assert!(
            out.stderr.contains("docker does not work")
                && out.stderr.contains("Cannot connect to the Docker daemon"),
            "tick {tick}: {}",
            out.stderr
        );
        // Plain words for people: the problem's key is the tool's memory.
        assert!(!out.stderr.contains("key="), "{}", out.stderr);
    }
    assert_eq!(probes(&env), 3, "asked at each tick while broken");
    let mails = env.smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(
        mails[0].data.contains("Docker daemon is not running")
            && mails[0].data.contains("systemctl start docker"),
        "{}",
        mails[0].data
    );
    assert!(
        mails[0].data.contains("1. Docker\r\n") && !mails[0].data.contains("no live in particular"),
        "{}",
        mails[0].data
    );
    env.docker.daemon_down(false);
    env.tick_ok_at(1800);
    assert_eq!(probes(&env), 4, "asked again once broken");
    env.tick_ok_at(1860);
    env.tick_ok_at(1800 + 3599);
    assert_eq!(probes(&env), 4, "not asked again within the hour");
    env.tick_ok_at(1800 + 3600);
    assert_eq!(probes(&env), 5, "asked again after an hour");
}

/// A tick whose lives used docker counts as asking it: no probe on top.
#[test]
fn a_tick_that_used_docker_needs_no_probe() {
    let env = TestEnv::new();
    let r = env.request_live("Amphi Sonde");
    env.tick_ok();
    env.assert_running(r.live);
    env.pod.set_live(r.live, json!({"status": 2}));
    env.tick_ok();
    env.tick_ok();
    assert!(
        env.docker
            .calls()
            .iter()
            .all(|c| c.args.first().is_none_or(|a| a != "info")),
        "{:?}",
        env.docker.calls()
    );
}

/// After a tick that could not read Pod, `status` does not say "none" waits: it says
/// it does not know, and why; a tick with problems names the log to read.
#[test]
fn status_after_pod_was_unreadable_says_who_waits_is_unknown_and_where_the_log_is() {
    let env = TestEnv::new();
    env.request_live("Amphi Inconnu");
    env.pod
        .fail_next("GET", "/rest/bbb_livestream/", Fault::Html500, 10);
    env.tick().assert_code(1);
    let out = env.run(&["status"]);
    out.assert_success();
    assert!(
        out.stdout
            .contains("lives waiting, as of the last tick: unknown, it could not read them: reading the livestreams from Pod"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("waiting, as of the last tick: none"),
        "{}",
        out.stdout
    );
    let log = chrono::Utc::now()
        .format("%Y-%m-%d_bbb-pod-live.log")
        .to_string();
    assert!(
        out.stdout.contains(&format!(
            "see the log {}",
            env.log_dir().join(&log).display()
        )),
        "{}",
        out.stdout
    );
    let doc = env.status_json();
    assert!(
        doc["waiting_unknown"]
            .as_str()
            .is_some_and(|w| w.contains("Pod")),
        "{doc:#}"
    );
    env.pod.clear_faults();
    env.tick_ok();
    let doc = env.status_json();
    assert!(doc["waiting_unknown"].is_null(), "{doc:#}");
}
