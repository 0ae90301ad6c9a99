//! Hostile input end to end. The real binary meets a Pod answering
//! 100 MB, truncated or wrongly typed JSON and nulls; meetings whose ids and names hold
//! control characters or path separators; internal meeting ids that are not file
//! names; a BBB answering huge or cut XML; and bad configuration values. Each time:
//! no panic, nothing lost (no live cut, no recording gone), and an error that names
//! what was wrong.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::*;

/// Everything the run said: stderr, stdout and the log files.
fn said(env: &TestEnv, out: &RunOutput) -> String {
    format!("{}\n{}\n{}", out.stderr, out.stdout, env.log_text())
}

/// No panic, and the tick reported a failure (exit 1) whose text holds every `needle`.
#[track_caller]
fn assert_clear_error(env: &TestEnv, out: &RunOutput, needles: &[&str]) {
    let text = said(env, out);
    assert!(!text.contains("panicked"), "a panic:\n{text}");
    assert_eq!(out.code, Some(1), "expected exit 1:\n{text}");
    for needle in needles {
        assert!(
            text.contains(needle),
            "the error does not say {needle:?}:\n--- stderr ---\n{}\n--- log ---\n{}",
            out.stderr,
            env.log_text()
        );
    }
}

fn mkvs(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .collect()
}

/// A DRF page of livestreams as Pod renders it, from the fake's own rendering of
/// `live`, with `edit` applied to that row.
fn page_with(env: &TestEnv, live: u64, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut row = env.pod.live(live);
    edit(&mut row);
    json!({"count": 1, "next": null, "previous": null, "results": [row]}).to_string()
}

// ---------------------------------------------------------------------------
// Pod
// ---------------------------------------------------------------------------

#[test]
fn a_100_mb_pod_answer_is_refused_at_16_mib_and_nothing_stops() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Réponse énorme");
    env.tick_ok();
    env.assert_running(r.live);

    // 100 MB of a JSON page that never ends (a proxy looping, a runaway serializer).
    let mut body = String::with_capacity(100 << 20);
    body.push_str("{\"count\": 1, \"next\": null, \"results\": [");
    let row = page_with(&env, r.live, |_| {});
    while body.len() < 100 << 20 {
        body.push_str(&row);
        body.push(',');
    }
    env.pod
        .fail_next("GET", "/rest/bbb_livestream/", Fault::Garbage(body), 1);
    env.bbb.end_meeting(&r.meeting_id);
    // "16 MiB" in the error proves the reading stopped at the cap (no speed bound).
    let out = env.tick();
    assert_clear_error(&env, &out, &["16 MiB", "livestream"]);
    // Nothing was decided on it: the meeting's end waits for a readable list.
    assert_eq!(env.docker.count("down"), 0);
    env.assert_running(r.live);
    // Next minute Pod answers normally: the live is stopped as it should be.
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2);
}

#[test]
fn unreadable_pod_json_of_every_kind_decides_nothing_and_names_the_fault() {
    let env = TestEnv::builder().slots(2).build();
    let running = env.request_live("En cours");
    env.tick_ok();
    let slot = env.assert_running(running.live);
    // The meeting ends, and a second live waits: a readable list would stop the first
    // and start the second. None of these answers is readable.
    env.bbb.end_meeting(&running.meeting_id);
    let waiting = env.request_live("En attente");
    let id = running.live;

    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "truncated JSON",
            page_with(&env, id, |_| {})[..60].to_string(),
            vec!["invalid JSON"],
        ),
        ("an empty body", String::new(), vec!["invalid JSON"]),
        (
            "status as a string",
            page_with(&env, id, |r| r["status"] = json!("1")),
            vec!["\"status\"", &"livestream"],
        ),
        (
            "status null",
            page_with(&env, id, |r| r["status"] = json!(null)),
            vec!["\"status\""],
        ),
        (
            "id null",
            page_with(&env, id, |r| r["id"] = json!(null)),
            vec!["\"id\""],
        ),
        (
            "id negative",
            page_with(&env, id, |r| r["id"] = json!(-3)),
            vec!["\"id\""],
        ),
        (
            "id a huge number",
            page_with(&env, id, |r| r["id"] = json!(1e300)),
            vec!["\"id\""],
        ),
        (
            "server a number",
            page_with(&env, id, |r| r["server"] = json!(1.5)),
            vec!["\"server\""],
        ),
        (
            "a flag that is a string",
            page_with(&env, id, |r| r["download_meeting"] = json!("yes")),
            vec!["\"download_meeting\""],
        ),
        (
            "results null",
            json!({"count": 1, "next": null, "previous": null, "results": null}).to_string(),
            vec!["\"results\""],
        ),
        (
            "results missing",
            json!({"count": 1, "next": null}).to_string(),
            vec!["\"results\""],
        ),
        (
            "count a string",
            json!({"count": "1", "next": null, "results": []}).to_string(),
            vec!["\"count\""],
        ),
        (
            "a row that is not an object",
            json!({"count": 2, "next": null, "results": [null, 3]}).to_string(),
            vec!["expected a livestream object"],
        ),
        (
            "a list instead of a page",
            json!([{"id": id}]).to_string(),
            vec!["page"],
        ),
        ("JSON null", "null".to_string(), vec!["page"]),
    ];
    // One bad row costs one row: a page whose rows do not parse is still a
    // page. Those rows are skipped and reported (WARN on stderr when first seen, then
    // DEBUG within the hour: the log has it), not failures: exit 0. A live whose row
    // is skipped is neither stopped nor started, so the assertions after the exit code
    // hold for them too. (Before, each of these failed the whole read with exit 1.)
    let row_level = [
        "status as a string",
        "status null",
        "id null",
        "id negative",
        "id a huge number",
        "server a number",
        "a flag that is a string",
        "a row that is not an object",
    ];
    let pod_writes = env.pod.writes().len();
    for (what, body, needles) in &cases {
        // A bad row is in every answer Pod gives (both filtered lists, and a live of
        // ours read by id); one unreadable page is enough to fail the read.
        let answers = if row_level.contains(what) { 3 } else { 1 };
        env.pod.fail_next(
            "GET",
            "/rest/bbb_livestream/",
            Fault::Garbage(body.clone()),
            answers,
        );
        let log_before = env.log_text().len();
        // Each answer is the one a whole read gets (the end of the list is
        // history::an_unreadable_end_of_the_list_decides_nothing).
        crate::pace::forget_pod_list(&env);
        let out = env.tick();
        env.pod.clear_faults();
        let text = said(&env, &out);
        assert!(!text.contains("panicked"), "{what}: a panic:\n{text}");
        if row_level.contains(what) {
            assert_eq!(out.code, Some(0), "{what}: exit code\n{text}");
            let log = env.log_text();
            for needle in needles {
                assert!(
                    log[log_before..].contains(needle),
                    "{what}: the skipped row's report does not say {needle:?}:\n{}",
                    &log[log_before..]
                );
            }
            assert!(log[log_before..].contains("is skipped"), "{what}");
        } else {
            assert_eq!(out.code, Some(1), "{what}: exit code\n{text}");
        }
        for needle in needles.iter().filter(|_| !row_level.contains(what)) {
            assert!(
                out.stderr.contains(needle),
                "{what}: the error does not say {needle:?}:\n{}",
                out.stderr
            );
        }
        assert_eq!(env.docker.count("down"), 0, "{what}: a live was stopped");
        assert_eq!(env.docker.count("up"), 1, "{what}: a live was started");
        assert!(env.docker.running(&env.slot_dir(slot)), "{what}");
        assert_eq!(
            env.pod.writes().len(),
            pod_writes,
            "{what}: Pod was written to"
        );
        assert_eq!(env.live_status(waiting.live), 0, "{what}");
    }
    // Pod readable again: the ended live stops, the waiting one starts.
    env.tick_ok();
    assert_eq!(env.live_status(id), 2);
    env.assert_running(waiting.live);
    env.assert_no_secret_anywhere();
}

#[test]
fn unreadable_meeting_answers_during_a_start_start_nothing() {
    type Body = fn(u64) -> String;
    let cases: [(&str, Body, &str); 5] = [
        (
            "a meeting whose ids are null",
            |pk| {
                json!({"id": pk, "meeting_id": null, "internal_meeting_id": null,
                       "meeting_name": null})
                .to_string()
            },
            "no usable BBB meeting id",
        ),
        (
            "a meeting that is a list",
            |_| "[1, 2]".to_string(),
            "expected a meeting object, found an array",
        ),
        (
            "a meeting answer cut short",
            |_| "{\"id\": 1, \"meeting_id\": \"ab".to_string(),
            "invalid JSON",
        ),
        (
            "a meeting whose meeting_id is a number",
            |pk| json!({"id": pk, "meeting_id": 42}).to_string(),
            "\"meeting_id\"",
        ),
        (
            "a meeting whose id is a string",
            |_| json!({"id": "1", "meeting_id": "x"}).to_string(),
            "\"id\"",
        ),
    ];
    for (what, body, needle) in cases {
        let env = TestEnv::builder().slots(1).build();
        let r = env.request_live("Démarrage");
        // Twice: the tick reads a waiting live's meeting before planning, and its
        // start reads it again when that first read failed.
        env.pod.fail_next(
            "GET",
            "/rest/bbb_meeting/",
            Fault::Garbage(body(r.meeting)),
            2,
        );
        let out = env.tick();
        assert_clear_error(&env, &out, &[needle, &format!("live {}", r.live)]);
        assert_eq!(env.docker.count("up"), 0, "{what}: a container was started");
        assert!(
            env.pod.broadcasters().is_empty(),
            "{what}: a broadcaster was left"
        );
        assert_eq!(env.live_status(r.live), 0, "{what}");
        // Pod readable again: the live starts, once.
        env.tick_ok();
        env.assert_running(r.live);
        assert_eq!(env.docker.count("up"), 1, "{what}");
        assert_eq!(env.pod.broadcasters().len(), 1, "{what}");
    }
}

// ---------------------------------------------------------------------------
// Names and ids
// ---------------------------------------------------------------------------

#[test]
fn path_separators_in_meeting_ids_stay_values_and_write_nothing_outside_base_dir() {
    let env = TestEnv::builder().slots(2).build();
    let before: BTreeSet<PathBuf> = files_under(env.root())
        .into_iter()
        .filter(|p| !p.starts_with(env.base_dir()) && !p.starts_with(env.log_dir()))
        .collect();
    // The ids are set on both sides, BBB and Pod, as a front end could choose them.
    let ids = ["../../../etc/passwd", "a/b\\c/../../d"];
    let mut lives = Vec::new();
    for (i, meeting_id) in ids.iter().enumerate() {
        let internal = format!("{:040x}-1700000000000", i + 1);
        let name = format!("../{meeting_id}/\\ {i}");
        env.bbb.add_meeting(meeting_id, &internal, &name, true);
        let meeting = env.pod.add_meeting(meeting_id, &internal, &name);
        lives.push(env.pod.add_live(LiveSpec::waiting(meeting)));
    }
    env.tick_ok();
    for (live, meeting_id) in lives.iter().zip(ids) {
        let slot = env.assert_running(*live);
        let doc = env.compose(slot);
        assert_eq!(
            doc["services"]["bbb-streamer"]["environment"]["BBB_MEETING_ID"].as_str(),
            Some(meeting_id)
        );
    }
    for id in ids {
        env.bbb.end_meeting(id);
    }
    env.tick_ok();
    for live in &lives {
        assert_eq!(env.live_status(*live), 2);
    }
    let after: BTreeSet<PathBuf> = files_under(env.root())
        .into_iter()
        .filter(|p| !p.starts_with(env.base_dir()) && !p.starts_with(env.log_dir()))
        .filter(|p| !p.starts_with(env.root().join("fake-docker")))
        .collect();
    let before: BTreeSet<PathBuf> = before
        .into_iter()
        .filter(|p| !p.starts_with(env.root().join("fake-docker")))
        .collect();
    assert_eq!(after, before, "files appeared outside base_dir and log_dir");
    assert!(!Path::new("/etc/passwd.mkv").exists());
}

#[test]
fn a_meeting_id_with_control_characters_is_refused_before_anything_is_created() {
    let env = TestEnv::builder().slots(2).build();
    let meeting_id = "cours\u{1b}[31m\u{7}rouge";
    let internal = format!("{:040x}-1700000000000", 7);
    env.bbb
        .add_meeting(meeting_id, &internal, "Nom\0avec\u{1}NUL", true);
    let meeting = env
        .pod
        .add_meeting(meeting_id, &internal, "Nom\0avec\u{1}NUL");
    let live = env.pod.add_live(LiveSpec::waiting(meeting));
    let out = env.tick();
    assert_clear_error(
        &env,
        &out,
        &[
            "no usable BBB meeting id",
            "cours\\u{1b}[31m",
            &format!("live {live}"),
        ],
    );
    assert_eq!(
        env.docker.count("up"),
        0,
        "no container for an id the streamer cannot use"
    );
    assert!(env.pod.broadcasters().is_empty(), "the start was undone");
    assert_eq!(
        env.live_status(live),
        0,
        "retried, then closed after the attempts"
    );
    // A normal live next to it still starts.
    let ok = env.request_live("Voisin sain");
    let out = env.tick();
    assert!(!said(&env, &out).contains("panicked"));
    env.assert_running(ok.live);
}

#[test]
fn a_livestream_server_field_with_path_separators_is_not_taken_for_a_slot_here() {
    let env = TestEnv::builder().slots(2).build();
    let r = env.request_live("Serveur bizarre");
    // Another server (or a hand edit) wrote a server value that only looks like ours.
    for server in [
        "1/../1", "1/1/..", "../1", "1/1\u{0}", "1/+1", "01/1", " 1/1",
    ] {
        env.pod
            .set_live(r.live, json!({"status": 1, "server": server}));
        let out = env.tick();
        let text = said(&env, &out);
        assert!(!text.contains("panicked"), "{server:?}:\n{text}");
        assert_eq!(env.docker.count("up"), 0, "{server:?}: started");
        assert_eq!(env.docker.count("down"), 0, "{server:?}: stopped");
        assert!(
            env.pod.writes().is_empty(),
            "{server:?}: a live of another server was written: {:?}",
            env.pod.writes()
        );
    }
}

#[test]
fn internal_meeting_ids_that_are_not_file_names_keep_the_recording_with_a_clear_error() {
    // The lead's tick test covers "../../../../tmp/evil"; these are the other shapes.
    let cases = [
        ("..", "directory name"),
        ("sub/dir", "'/'"),
        ("/etc/cron.d/evil", "'/'"),
        ("back\\slash", "'\\'"),
        ("nul\0byte", "control character"),
        ("new\nline", "control character"),
        (".hidden", "hidden"),
        ("--help", "'-'"),
    ];
    let env = TestEnv::builder().slots(cases.len() as u32).build();
    let mut reqs = Vec::new();
    for (id, _) in &cases {
        let r = env.request_live_with(&format!("Enregistrement {id:?}"), |s| {
            s.download_meeting = true
        });
        reqs.push(r);
    }
    env.tick_ok();
    // Pod answers the hand-over's PATCH with these ids (a live starts only when BBB
    // shows the session its meeting names, so they are written once it runs).
    for ((id, _), r) in cases.iter().zip(&reqs) {
        env.assert_running(r.live);
        env.pod
            .set_meeting(r.meeting, json!({"internal_meeting_id": id}));
        env.bbb.end_meeting(&r.meeting_id);
    }
    let out = env.tick();
    let reasons: Vec<&str> = cases.iter().map(|(_, reason)| *reason).collect();
    let mut needles = vec!["internal_meeting_id"];
    needles.extend(reasons);
    assert_clear_error(&env, &out, &needles);
    for r in &reqs {
        assert_eq!(env.live_status(r.live), 2, "the live itself stops");
    }
    assert!(env.recordings().is_empty(), "{:?}", env.recordings());
    assert!(!Path::new("/etc/cron.d/evil.mkv").exists());
    assert_eq!(
        mkvs(&env.base_dir()).len(),
        cases.len(),
        "every recording is kept on local disk"
    );
    // Nothing outside recordings_dir and base_dir got an mkv.
    let strays: Vec<PathBuf> = mkvs(env.root())
        .into_iter()
        .filter(|p| !p.starts_with(env.base_dir()))
        .collect();
    assert!(strays.is_empty(), "{strays:?}");
    // Still kept, still refused, a tick later (never deleted on the way).
    let out = env.tick();
    assert_clear_error(&env, &out, &["internal_meeting_id"]);
    assert_eq!(mkvs(&env.base_dir()).len(), cases.len());
}

// ---------------------------------------------------------------------------
// BBB
// ---------------------------------------------------------------------------

#[test]
fn a_huge_getmeetings_answer_is_read_and_a_huge_token_refused_without_stopping() {
    // Reading 20 MB must not race the 3 s call timeout: a debug build on a loaded
    // machine parses a few hundred ms a MB (no assertion here is about speed).
    let env = TestEnv::builder()
        .slots(2)
        .extra_toml("[pod]\ntimeout_secs = 300")
        .build();
    let ends = env.request_live("Se termine");
    let stays = env.request_live("Continue \u{1}\u{1b} <&> \"nom\"");
    env.tick_ok();
    env.assert_running(ends.live);
    let slot = env.assert_running(stays.live);
    // ~20 MB of other meetings around ours: read whole, the ended one found.
    env.bbb.add_many(5000);
    env.bbb.end_meeting(&ends.meeting_id);
    let out = env.tick();
    assert!(!said(&env, &out).contains("panicked"));
    out.assert_success();
    assert_eq!(env.live_status(ends.live), 2);
    assert!(env.docker.running(&env.slot_dir(slot)));

    // A 2 MB meeting name is one XML token over the parser's 1 MiB bound: the answer
    // is refused as a whole and the live next to it keeps running.
    let big = env.request_live(&"Nom interminable ".repeat(120_000));
    let out = env.tick();
    assert!(!said(&env, &out).contains("panicked"));
    // The answer is refused: nothing shows that its session runs, so it waits.
    assert_eq!(env.live_status(big.live), 0);
    assert!(
        said(&env, &out).contains("longer than 1048576 bytes"),
        "{}",
        said(&env, &out)
    );
    // Now BBB lists that name: the stop the ended meeting asks for must not follow.
    env.bbb.end_meeting(&stays.meeting_id);
    let out = env.tick();
    assert_clear_error(&env, &out, &["getMeetings", "longer than 1048576 bytes"]);
    assert!(
        env.docker.running(&env.slot_dir(slot)),
        "stopped on a refused answer"
    );
    assert_eq!(env.live_status(stays.live), 1);
    assert_eq!(
        env.docker.count("down"),
        1,
        "only the first ended live was stopped"
    );
}

#[test]
fn truncated_or_empty_bbb_answers_with_hostile_names_stop_nothing() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Nom\0avec <![CDATA[ ]]> & \u{7} et ../../");
    env.tick_ok();
    let slot = env.assert_running(r.live);
    env.bbb.end_meeting(&r.meeting_id);
    for (mode, needle) in [
        (BbbMode::Truncated, "malformed XML at byte"),
        (BbbMode::EmptyBody, "empty body"),
        (BbbMode::Garbage, "not a getMeetings answer"),
    ] {
        env.bbb.set_mode(mode.clone());
        let out = env.tick();
        assert_clear_error(&env, &out, &["getMeetings", needle]);
        assert!(env.docker.running(&env.slot_dir(slot)), "{mode:?}");
        assert_eq!(env.docker.count("down"), 0, "{mode:?}");
        assert_eq!(env.live_status(r.live), 1, "{mode:?}");
    }
    env.bbb.set_mode(BbbMode::Normal);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2);
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[test]
fn bad_configuration_values_exit_2_naming_the_key_and_touch_nothing() {
    let env = TestEnv::new();
    env.request_live("Config cassée");
    let original = env.config_text();
    // (what, TOML merged over the generated configuration, what the error must name:
    // `table.key` for a refused value; for a wrong TOML type, the TOML layer's excerpt
    // of the offending line, which shows the key, with its line number)
    let cases: &[(&str, &str, &str)] = &[
        ("no slot", "[server]\nslots = 0", "server.slots"),
        ("negative slots", "[server]\nslots = -1", "server.slots"),
        ("slots a float", "[server]\nslots = 1.5", "slots = 1.5"),
        ("count 0", "[server]\ncount = 0", "server.count"),
        (
            "number over count",
            "[server]\nnumber = 3\ncount = 2",
            "server.number",
        ),
        (
            "redis_bind not an address",
            "[server]\nredis_bind = \"0.0.0.0; rm -rf /\"",
            "server.redis_bind",
        ),
        (
            "relative base_dir",
            "[server]\nbase_dir = \"relative/dir\"",
            "server.base_dir",
        ),
        (
            "empty hostname",
            "[server]\nhostname = \"\"",
            "server.hostname",
        ),
        (
            "hostname with a slash",
            "[server]\nhostname = \"a/b\"",
            "server.hostname",
        ),
        (
            "debug a string",
            "[server]\ndebug = \"yes\"",
            "debug = \"yes\"",
        ),
        ("bbb.url not a URL", "[bbb]\nurl = \"not a url\"", "bbb.url"),
        (
            "bbb.url ftp",
            "[bbb]\nurl = \"ftp://bbb.example/api/\"",
            "bbb.url",
        ),
        ("empty BBB secret", "[bbb]\nsecret = \"\"", "bbb.secret"),
        (
            "end_confirmations 0",
            "[bbb]\nend_confirmations = 0",
            "bbb.end_confirmations",
        ),
        (
            "negative bitrate",
            "[bbb]\nvideo_bitrate = -5",
            "bbb.video_bitrate",
        ),
        (
            "resolution garbage",
            "[bbb]\nresolution = \"big\"",
            "bbb.resolution",
        ),
        (
            "stream_url not rtmp",
            "[bbb]\nstream_url = \"a b c\"",
            "bbb.stream_url",
        ),
        (
            "pod.url without scheme",
            "[pod]\nurl = \"pod.univ.example\"",
            "pod.url",
        ),
        ("empty token", "[pod]\ntoken = \"\"", "pod.token"),
        ("timeout 0", "[pod]\ntimeout_secs = 0", "pod.timeout_secs"),
        (
            "huge timeout",
            "[pod]\ntimeout_secs = 99999999999999",
            "pod.timeout_secs",
        ),
        (
            "building_id a string",
            "[pod]\nbuilding_id = \"un\"",
            "building_id = \"un\"",
        ),
        (
            "hls_url not a URL",
            "[pod]\nhls_url = \"::\"",
            "pod.hls_url",
        ),
        (
            "relative recordings_dir",
            "[pod]\nrecordings_dir = \"rec\"",
            "pod.recordings_dir",
        ),
        (
            "admins a string",
            "[mail]\nadmins = \"admin@univ.example\"",
            "admins = \"admin@univ.example\"",
        ),
        (
            "admin not an address",
            "[mail]\nadmins = [\"pas une adresse\"]",
            "mail.admins",
        ),
        (
            "smtp_port out of range",
            "[mail]\nsmtp_port = 70000",
            "mail.smtp_port",
        ),
        (
            "unknown transport",
            "[mail]\ntransport = \"pigeon\"",
            "mail.transport",
        ),
        (
            "unknown smtp_tls",
            "[mail]\nsmtp_tls = \"maybe\"",
            "mail.smtp_tls",
        ),
        (
            "from not an address",
            "[mail]\nfrom = \"nobody\"",
            "mail.from",
        ),
        (
            "empty docker command",
            "[docker]\ncommand = []",
            "docker.command",
        ),
        (
            "docker timeout negative",
            "[docker]\ntimeout_secs = -1",
            "docker.timeout_secs",
        ),
        (
            "cluster URL garbage",
            "[server]\ncount = 2\n[cluster]\nredis_url = \"nope\"",
            "cluster.redis_url",
        ),
        (
            "claim_ttl 0",
            "[server]\ncount = 2\n[cluster]\nredis_url = \"redis://127.0.0.1:1/0\"\nclaim_ttl_secs = 0",
            "cluster.claim_ttl_secs",
        ),
        ("unknown table", "[servr]\nslots = 1", "servr"),
    ];
    let mut missed = Vec::new();
    for (what, extra, key) in cases {
        let mut table: toml::Table = original.parse().unwrap();
        let extra: toml::Table = extra.parse().unwrap();
        merge_toml(&mut table, extra);
        env.rewrite_config(|_| toml::to_string(&table).unwrap());
        let out = env.tick();
        assert!(!out.stderr.contains("panicked"), "{what}: {}", out.stderr);
        let named = out.stderr.contains(key)
            && (key.contains('.') || out.stderr.contains("line "))
            && out
                .stderr
                .contains(&env.config_path().display().to_string());
        if out.code != Some(2) || !named {
            missed.push(format!(
                "{what} ({key}): exit {:?}: {}",
                out.code,
                out.stderr.trim()
            ));
        }
    }
    env.rewrite_config(|_| original.clone());
    assert!(
        missed.is_empty(),
        "bad values not refused with their key named:\n{}",
        missed.join("\n")
    );
    assert!(env.pod.requests().is_empty(), "nothing touched");
    assert!(env.docker.calls().is_empty());
    assert!(env.smtp.messages().is_empty());
    assert!(!env.slot_dir(1).exists());
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

/// The `ports` of the chat Redis in a slot's compose file.
fn redis_ports(env: &TestEnv, slot: u32) -> serde_yaml::Value {
    env.compose(slot)["services"]["redis"]["ports"].clone()
}

#[test]
fn secret_files_are_0600_and_no_secret_reaches_a_log_mail_argv_or_output() {
    let env = TestEnv::builder()
        .slots(2)
        .smtp_auth("relay-user", "smtp-pass-7f3e91")
        .build();
    let a = env.request_live_with("Secrets A", |s| s.download_meeting = true);
    let b = env.request_live("Secrets B");
    // Every run with the most verbose logging there is (server.debug is on too), and
    // failures on the way, so that error texts and the error mail are exercised.
    env.docker.fail_up(1);
    let out = env.run(&["-vv", "run"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    env.run(&["-vv", "run"]).assert_success();
    let slot_a = env.assert_running(a.live);
    let slot_b = env.assert_running(b.live);

    // Files holding a secret (the compose file has the BBB secret) or a live's state.
    for slot in [slot_a, slot_b] {
        let dir = env.slot_dir(slot);
        assert_eq!(mode(&dir.join("docker-compose.yml")), 0o600, "slot {slot}");
        assert_eq!(mode(&dir.join("live-state.json")), 0o600, "slot {slot}");
        // The chat Redis is published on redis_bind only, at 6378 + slot.
        assert_eq!(
            redis_ports(&env, slot),
            serde_yaml::Value::Sequence(vec![serde_yaml::Value::String(format!(
                "127.0.0.1:{}:6379",
                6378 + slot
            ))]),
            "slot {slot}"
        );
    }
    assert_eq!(mode(&env.base_dir().join("state.json")), 0o600);

    // A stop while recordings_dir is away: the recording waits in a pending directory
    // whose handover.json is 0600 too.
    fs::remove_dir_all(env.recordings_dir()).unwrap();
    env.bbb.end_meeting(&a.meeting_id);
    env.pod
        .fail_next("DELETE", "/rest/broadcasters/", Fault::Html500, 1);
    let out = env.run(&["-vv", "run"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let handovers: Vec<PathBuf> = files_under(&env.base_dir())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "handover.json"))
        .collect();
    assert_eq!(handovers.len(), 1, "{handovers:?}");
    assert_eq!(mode(&handovers[0]), 0o600);
    fs::create_dir_all(env.recordings_dir()).unwrap();
    let _ = env.run(&["-vv", "run"]);
    let _ = env.run(&["-vv", "status"]);
    let _ = env.run(&["-vv", "status", "--json"]);
    let _ = env.run(&["-vv", "check"]);
    assert_eq!(
        env.recordings().len(),
        1,
        "delivered once the share is back"
    );

    // The mails went through SMTP AUTH, and there were some: a start mail and an
    // error digest at least.
    let mails = env.smtp.wait_for(2, std::time::Duration::from_secs(5));
    assert!(
        mails
            .iter()
            .all(|m| m.auth_user.as_deref() == Some("relay-user"))
    );
    assert!(
        mails.iter().any(|m| m.subject.contains("error")),
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(env.secrets().contains(&"smtp-pass-7f3e91".to_string()));
    assert!(!env.docker.calls().is_empty());
    env.assert_no_secret_anywhere();
}

#[test]
fn the_chat_redis_is_published_on_an_ipv6_redis_bind_only() {
    let env = TestEnv::builder()
        .slots(3)
        .extra_toml("[server]\nredis_bind = \"::1\"")
        .build();
    let lives: Vec<Requested> = (0..3)
        .map(|i| env.request_live(&format!("Chat {i}")))
        .collect();
    env.tick_ok();
    for r in &lives {
        let slot = env.assert_running(r.live);
        assert_eq!(
            redis_ports(&env, slot),
            serde_yaml::Value::Sequence(vec![serde_yaml::Value::String(format!(
                "[::1]:{}:6379",
                6378 + slot
            ))])
        );
        assert_eq!(env.pod.live(r.live)["redis_port"], json!(6378 + slot));
    }
}
