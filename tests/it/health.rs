//! A live's health (README, "A live's health") and the whole recording (README,
//! "Recordings"). The fake docker's streamer joins its meeting in the
//! fake BBB (an attendee named after `BBB_USER_NAME`) and its playlist is served by the
//! fake HLS server; knobs make it die, never join, or never reach the HLS server. Every
//! count here is in ticks: nothing depends on how long a tick takes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::*;

/// grace 1 tick, 2 failing ticks make a live unhealthy, 2 restarts at most.
const SHORT: &str = "[health]\ngrace_ticks = 1\nfail_ticks = 2\nmax_restarts = 2";

fn env_with(toml: &str) -> TestEnv {
    TestEnv::builder().slots(2).extra_toml(toml).build()
}

/// Requests a live, runs the tick that starts it (tick 0) and returns it with its slot.
#[track_caller]
fn start(env: &TestEnv, name: &str) -> (Requested, u32) {
    let r = env.request_live(name);
    env.tick_ok();
    let slot = env.assert_running(r.live);
    (r, slot)
}

fn restarts_in(env: &TestEnv, slot: u32) -> usize {
    env.docker
        .subcommands_in(&env.slot_dir(slot))
        .iter()
        .filter(|s| *s == "restart")
        .count()
}

fn ups_in(env: &TestEnv, slot: u32) -> usize {
    env.docker
        .subcommands_in(&env.slot_dir(slot))
        .iter()
        .filter(|s| *s == "up")
        .count()
}

fn stream_url(env: &TestEnv, slot: u32) -> String {
    env.compose(slot)["services"]["bbb-streamer"]["environment"]["BBB_STREAM_URL"]
        .as_str()
        .unwrap()
        .to_string()
}

fn slot_json(env: &TestEnv, slot: u32) -> Value {
    env.status_json()["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == slot)
        .cloned()
        .unwrap()
}

fn health_of(env: &TestEnv, slot: u32) -> String {
    slot_json(env, slot)["health"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn http_get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::get(url).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

#[test]
fn the_fakes_put_the_streamer_in_its_meeting_and_serve_its_playlist() {
    let env = TestEnv::new();
    let (r, slot) = start(&env, "Amphi Fakes");
    let streamers = env.docker.streamers();
    assert_eq!(streamers.len(), 1, "{streamers:?}");
    let s = &streamers[0];
    assert_eq!(s.meeting_id, r.meeting_id);
    assert_eq!(s.user_name, "Live");
    assert!(stream_url(&env, slot).ends_with(&format!("/{}", s.stream_key)));
    let url = format!("{}{}.m3u8", env.hls_url(), s.stream_key);
    let (code, body) = http_get(&url);
    assert_eq!(code, 200);
    assert!(body.starts_with("#EXTM3U"), "{body}");
    env.docker.hls_404(true);
    assert_eq!(http_get(&url).0, 404);
    env.docker.hls_404(false);
    assert_eq!(http_get(&format!("{}nope.m3u8", env.hls_url())).0, 404);
    env.docker.never_join(true);
    assert!(!env.docker.streamers()[0].in_meeting);
    env.docker.kill_container(&env.slot_dir(slot));
    assert!(env.docker.streamers().is_empty());
    assert_eq!(http_get(&url).0, 404);
}

#[test]
fn a_healthy_live_over_many_ticks_is_never_restarted_nor_mailed_about() {
    let env = TestEnv::builder().slots(2).build();
    let (r, slot) = start(&env, "Amphi Sain");
    let mails_after_start = env.smtp.messages().len();
    let key = stream_url(&env, slot);
    for tick in 1..=12 {
        let before = env.bbb.requests();
        env.tick_ok();
        // No extra BBB request: getMeetings alone says who is in the meeting.
        assert_eq!(env.bbb.requests() - before, 1, "tick {tick}");
    }
    assert_eq!(ups_in(&env, slot), 1);
    assert_eq!(restarts_in(&env, slot), 0);
    assert_eq!(env.docker.starts_in(&env.slot_dir(slot)), 1);
    assert_eq!(
        env.smtp.messages().len(),
        mails_after_start,
        "{:?}",
        env.smtp.messages()
    );
    assert_eq!(stream_url(&env, slot), key);
    assert_eq!(env.live_status(r.live), 1);
    // The playlist was asked for every tick, never with a token.
    assert!(
        env.bbb.hls_requests().len() >= 12,
        "{:?}",
        env.bbb.hls_requests()
    );
    assert_eq!(env.bbb.hls_requests_with_credentials(), 0);
    assert_eq!(health_of(&env, slot), "ok");
    env.assert_no_secret_anywhere();
}

/// Debian 12's docker-compose 1.29 lacks `ps --status` and answers it with its usage
/// and exit 0: asked in its own dialect, a healthy streamer stays untouched, and a
/// dead one is still seen dead (its `--services` alone would list every service).
#[test]
fn with_compose_1_29_a_healthy_live_is_left_alone_and_a_dead_one_seen() {
    let env = env_with(SHORT);
    env.use_compose_v1();
    let (r, slot) = start(&env, "Amphi Compose Un");
    for _ in 0..6 {
        env.tick_ok();
    }
    assert_eq!(restarts_in(&env, slot), 0);
    assert_eq!(ups_in(&env, slot), 1);
    assert_eq!(health_of(&env, slot), "ok");
    let ps: Vec<_> = env
        .docker
        .calls()
        .into_iter()
        .filter(|c| c.is("ps"))
        .collect();
    assert!(!ps.is_empty());
    assert!(
        ps.iter()
            .all(|c| c.args.contains(&"status=running".to_owned())
                && !c.args.contains(&"--status".to_owned())),
        "{ps:?}"
    );
    env.docker.kill_container(&env.slot_dir(slot));
    env.tick_ok();
    assert_eq!(ups_in(&env, slot), 2, "seen dead, started again");
    assert_eq!(env.live_status(r.live), 1);
}

#[test]
fn a_container_gone_is_started_again_once_with_the_same_key() {
    let env = env_with(SHORT);
    let (r, slot) = start(&env, "Amphi Reboot");
    env.tick_ok();
    env.tick_ok();
    let key = stream_url(&env, slot);
    let broadcaster = env.pod.broadcasters();
    let dir = env.slot_dir(slot);
    env.docker.kill_container(&dir);
    env.tick_ok();
    assert!(env.docker.running(&dir), "started again at once");
    assert_eq!(ups_in(&env, slot), 2);
    assert_eq!(env.docker.starts_in(&dir), 2);
    for _ in 0..6 {
        env.tick_ok();
    }
    assert_eq!(ups_in(&env, slot), 2, "once");
    assert_eq!(restarts_in(&env, slot), 0);
    assert_eq!(stream_url(&env, slot), key, "same stream key");
    assert_eq!(env.pod.broadcasters(), broadcaster, "Pod untouched");
    assert_eq!(env.live_status(r.live), 1);
    assert!(env.mails_with_subject("beyond repair").is_empty());
    assert!(env.mails_with_subject("restarted").len() <= 1);
    let j = slot_json(&env, slot);
    assert_eq!(j["health"], "restarted 1/2", "{j}");
    assert_eq!(j["restarts"], 1);
}

/// Runs `ticks` ticks after the start with `fault` on, returning the restarts seen after
/// each tick.
fn restarts_over(env: &TestEnv, slot: u32, ticks: usize) -> Vec<usize> {
    (0..ticks)
        .map(|_| {
            env.tick_ok();
            restarts_in(env, slot)
        })
        .collect()
}

#[track_caller]
fn assert_restarted_up_to_max_then_beyond_repair(env: &TestEnv, r: &Requested, slot: u32) {
    // Tick 1 is grace; ticks 2 and 3 fail: restart; tick 4 grace; 5 and 6 fail: restart;
    // 7 grace; 8 and 9 fail: beyond repair (2 restarts at most).
    let seen = restarts_over(env, slot, 14);
    assert_eq!(
        seen,
        vec![0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2],
        "restarts after each tick"
    );
    let beyond = env.mails_with_subject("beyond repair");
    assert_eq!(beyond.len(), 1, "{:?}", env.smtp.messages());
    assert!(
        beyond[0].subject.contains(&r.live.to_string()),
        "{}",
        beyond[0].subject
    );
    assert!(
        env.mails_with_subject("restarted").len() <= 1,
        "at most one an hour"
    );
    // The meeting goes on: the live keeps running.
    assert_eq!(env.live_status(r.live), 1);
    assert!(env.docker.running(&env.slot_dir(slot)));
    assert_eq!(health_of(env, slot), "beyond repair");
    assert_eq!(ups_in(env, slot), 1, "the container ran all along");
}

#[test]
fn a_streamer_that_never_joins_is_restarted_up_to_max_restarts_then_one_mail() {
    let env = env_with(SHORT);
    env.docker.never_join(true);
    let (r, slot) = start(&env, "Amphi Muet");
    assert_restarted_up_to_max_then_beyond_repair(&env, &r, slot);
    let body = &env.mails_with_subject("beyond repair")[0].body;
    assert!(body.contains("not in the meeting"), "{body}");
}

#[test]
fn a_stream_missing_from_hls_is_restarted_up_to_max_restarts_then_one_mail() {
    let env = env_with(SHORT);
    env.docker.hls_404(true);
    let (r, slot) = start(&env, "Amphi Noir");
    assert_restarted_up_to_max_then_beyond_repair(&env, &r, slot);
    let body = &env.mails_with_subject("beyond repair")[0].body;
    assert!(body.contains("HLS"), "{body}");
}

#[test]
fn a_restart_that_heals_gives_a_new_grace_and_keeps_the_key() {
    let env = env_with(SHORT);
    env.docker.never_join(true);
    let (r, slot) = start(&env, "Amphi Guéri");
    let key = stream_url(&env, slot);
    assert_eq!(restarts_over(&env, slot, 3), vec![0, 0, 1]);
    env.docker.never_join(false);
    assert_eq!(restarts_over(&env, slot, 8), vec![1; 8]);
    assert_eq!(stream_url(&env, slot), key);
    assert_eq!(env.live_status(r.live), 1);
    assert!(env.mails_with_subject("beyond repair").is_empty());
    assert_eq!(health_of(&env, slot), "restarted 1/2");
}

#[test]
fn a_short_blip_under_fail_ticks_is_ignored() {
    let env = env_with(SHORT);
    let (_, slot) = start(&env, "Amphi Blip");
    env.tick_ok(); // grace
    for _ in 0..3 {
        env.docker.never_join(true);
        env.tick_ok();
        env.docker.never_join(false);
        env.tick_ok();
    }
    // One tick out of the meeting, then one without HLS: each signal counts its own.
    env.docker.never_join(true);
    env.tick_ok();
    env.docker.never_join(false);
    env.docker.hls_404(true);
    env.tick_ok();
    env.docker.hls_404(false);
    env.tick_ok();
    assert_eq!(restarts_in(&env, slot), 0);
    assert_eq!(ups_in(&env, slot), 1);
    assert!(env.mails_with_subject("restarted").is_empty());
    assert_eq!(health_of(&env, slot), "ok");
}

#[test]
fn nothing_is_restarted_while_get_meetings_fails() {
    let env = env_with(SHORT);
    let (r, slot) = start(&env, "Amphi Panne");
    env.tick_ok();
    env.bbb.set_mode(BbbMode::Http(502));
    env.docker.never_join(true);
    env.docker.hls_404(true);
    env.docker.kill_container(&env.slot_dir(slot));
    for _ in 0..6 {
        env.tick(); // exits 1: getMeetings failed
    }
    assert_eq!(ups_in(&env, slot), 1);
    assert_eq!(restarts_in(&env, slot), 0);
    assert_eq!(env.live_status(r.live), 1);
    assert!(env.mails_with_subject("beyond repair").is_empty());
}

#[test]
fn nothing_is_restarted_when_the_session_ended_or_has_not_started() {
    // The session ended: the stop waits for 5 sightings; meanwhile nothing is repaired.
    let env = TestEnv::builder()
        .end_confirmations(5)
        .extra_toml(SHORT)
        .build();
    let (r, slot) = start(&env, "Amphi Fini");
    env.tick_ok();
    env.bbb.end_meeting(&r.meeting_id);
    env.docker.kill_container(&env.slot_dir(slot));
    for _ in 0..3 {
        env.tick_ok();
    }
    assert_eq!(ups_in(&env, slot), 1);
    assert_eq!(restarts_in(&env, slot), 0);

    // Created but not running (everybody left, endTime 0): the streamer waits for it.
    let env = env_with(SHORT);
    let (r, slot) = start(&env, "Amphi Vide");
    env.tick_ok();
    env.bbb.set_running(&r.meeting_id, false);
    env.docker.never_join(true);
    env.docker.hls_404(true);
    for _ in 0..6 {
        env.tick_ok();
    }
    assert_eq!(restarts_in(&env, slot), 0);
    assert_eq!(env.live_status(r.live), 1);
    assert!(env.mails_with_subject("beyond repair").is_empty());
}

#[test]
fn health_disabled_is_the_old_behaviour() {
    let env = env_with("[health]\nenabled = false");
    let (_, slot) = start(&env, "Amphi Ancien");
    env.docker.never_join(true);
    env.docker.hls_404(true);
    for _ in 0..8 {
        env.tick_ok();
    }
    assert_eq!(restarts_in(&env, slot), 0);
    assert!(env.bbb.hls_requests().is_empty());
    env.docker.kill_container(&env.slot_dir(slot));
    let out = env.tick();
    assert_eq!(ups_in(&env, slot), 1, "not started again");
    assert!(out.stderr.contains("is not running"), "{}", out.stderr);
}

#[test]
fn hls_false_skips_the_playlist() {
    let env = env_with(&format!("{SHORT}\nhls = false"));
    let (_, slot) = start(&env, "Amphi Sans HLS");
    env.docker.hls_404(true);
    for _ in 0..8 {
        env.tick_ok();
    }
    assert_eq!(restarts_in(&env, slot), 0);
    assert!(env.bbb.hls_requests().is_empty());
}

#[test]
fn the_streamer_name_comes_from_the_compose_file() {
    let env = env_with(SHORT);
    let template = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/docker-compose.yml"),
    )
    .unwrap()
    .replace(
        "BBB_USER_NAME: Live ",
        "BBB_USER_NAME: \"Diffusion & Cie\" ",
    );
    let path = env.root().join("template.yml");
    fs::write(&path, template).unwrap();
    env.rewrite_config(|t| {
        let mut table: toml::Table = t.parse().unwrap();
        merge_toml(
            &mut table,
            format!("[server]\ntemplate = {:?}", path.display().to_string())
                .parse()
                .unwrap(),
        );
        toml::to_string(&table).unwrap()
    });
    let (_, slot) = start(&env, "Amphi Nom");
    assert_eq!(env.docker.streamers()[0].user_name, "Diffusion & Cie");
    assert_eq!(restarts_over(&env, slot, 6), vec![0; 6]);
    assert_eq!(health_of(&env, slot), "ok");
}

#[test]
fn status_shows_each_slot_health() {
    let env = env_with(SHORT);
    env.docker.never_join(true);
    let (r, slot) = start(&env, "Amphi Statut");
    let j = slot_json(&env, slot);
    assert_eq!(j["health"], "starting", "{j}");
    assert_eq!(j["max_restarts"], 2);
    env.tick_ok();
    env.tick_ok();
    assert_eq!(health_of(&env, slot), "not in the meeting");
    env.tick_ok(); // restart
    assert_eq!(health_of(&env, slot), "restarted 1/2");
    let out = env.run(&["status"]);
    out.assert_success();
    assert!(out.stdout.contains("HEALTH"), "{}", out.stdout);
    assert!(out.stdout.contains("restarted 1/2"), "{}", out.stdout);
    // The streamer's own log, for a running live.
    assert!(out.stdout.contains("docker compose logs"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&env.slot_dir(slot).display().to_string()),
        "{}",
        out.stdout
    );
    env.docker.never_join(false);
    env.docker.kill_container(&env.slot_dir(slot));
    env.docker.fail_up(1);
    let _ = env.tick();
    assert_eq!(health_of(&env, slot), "no container");
    assert_eq!(env.live_status(r.live), 1);
}

#[test]
fn metrics_show_the_healthy_gauge_and_the_restart_counter() {
    let prom = tempfile::NamedTempFile::new().unwrap();
    let env = env_with(&format!(
        "{SHORT}\n[metrics]\ntextfile = {:?}",
        prom.path().display().to_string()
    ));
    env.docker.hls_404(true);
    let (_, slot) = start(&env, "Amphi Mesures");
    let line = |name: &str| {
        let text = fs::read_to_string(prom.path()).unwrap();
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .to_string()
    };
    let healthy = format!("bbb_pod_live_streamer_healthy{{slot=\"{slot}\"}}");
    env.tick_ok(); // grace
    assert_eq!(line(&healthy), format!("{healthy} 1"));
    env.tick_ok(); // no HLS, once
    assert_eq!(line(&healthy), format!("{healthy} 0"));
    assert_eq!(
        line("bbb_pod_live_streamer_restarts_total"),
        "bbb_pod_live_streamer_restarts_total 0"
    );
    env.tick_ok(); // no HLS twice: restarted
    assert_eq!(
        line("bbb_pod_live_streamer_restarts_total"),
        "bbb_pod_live_streamer_restarts_total 1"
    );
    let text = fs::read_to_string(prom.path()).unwrap();
    assert!(text.contains("# TYPE bbb_pod_live_streamer_healthy gauge"));
    assert!(text.contains("# TYPE bbb_pod_live_streamer_restarts_total counter"));
}

#[test]
fn check_warns_when_the_streamer_image_is_not_pulled() {
    let env = TestEnv::new();
    env.run(&["init"]).assert_success();
    let out = env.run(&["check"]);
    let image_line = |out: &RunOutput| {
        out.stdout
            .lines()
            .find(|l| l.contains("aauzid/bigbluebutton-livestreaming"))
            .map(str::to_string)
    };
    let line = image_line(&out).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(line.starts_with("OK"), "{line}");
    env.docker.no_images(true);
    let out = env.run(&["check"]);
    let line = image_line(&out).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(line.starts_with("WARN"), "{line}");
    assert!(line.contains("pull"), "{line}");
}

// ---------------------------------------------------------------------------
// The streamer's log and the whole recording
// ---------------------------------------------------------------------------

#[test]
fn the_streamer_log_is_kept_at_stop() {
    let env = TestEnv::new();
    let (r, slot) = start(&env, "Amphi Journal");
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2);
    let log = env.log_dir().join(format!("live-{}.log", r.live));
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(text.contains("fake streamer log line"), "{text}");
    assert!(text.contains(&r.meeting_id), "{text}");
    assert_eq!(
        fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let subs = env.docker.subcommands_in(&env.slot_dir(slot));
    let logs = subs.iter().position(|s| s == "logs").expect("logs saved");
    let down = subs.iter().rposition(|s| s == "down").expect("down");
    assert!(logs < down, "{subs:?}");
    let call = env
        .docker
        .calls_in(&env.slot_dir(slot))
        .into_iter()
        .find(|c| c.is("logs"))
        .unwrap();
    assert!(call.args.iter().any(|a| a == "--timestamps"), "{call:?}");
}

/// [`start`] of a live that records (`download_meeting`): each streamer start writes
/// a part.
fn start_recorded(env: &TestEnv, name: &str) -> (Requested, u32) {
    let r = env.request_live_with(name, |l| l.download_meeting = true);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1, "live {} started", r.live);
    let slot = env.slot_of(r.live);
    (r, slot)
}

fn ffprobe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("running ffprobe (install ffmpeg)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn mkv_parts(env: &TestEnv, slot: u32) -> Vec<PathBuf> {
    FakeDocker::mkv_files(&env.slot_dir(slot))
}

#[test]
fn two_parts_of_a_restarted_streamer_become_one_recording() {
    let env = env_with(SHORT);
    env.docker.real_mkv(Some(1));
    let (r, slot) = start_recorded(&env, "Amphi Deux Parts");
    env.tick_ok();
    env.docker.kill_container(&env.slot_dir(slot));
    env.docker.real_mkv(Some(2));
    env.tick_ok();
    assert_eq!(mkv_parts(&env, slot).len(), 2, "a second part");
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    let expected = env.delivered_path(&r);
    assert_eq!(env.recordings(), vec![expected.clone()]);
    let d = ffprobe_duration(&expected);
    assert!(
        (d - 3.0).abs() < 0.5,
        "joined duration {d}, parts 1 s + 2 s"
    );
    // Nothing left anywhere: both parts are in the delivered file.
    let left: Vec<PathBuf> = files_under(&env.base_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        env.mails_with_subject("error").is_empty(),
        "{:?}",
        env.smtp.messages()
    );
}

#[test]
fn a_join_that_fails_delivers_the_largest_part_and_keeps_the_others() {
    let env = env_with(SHORT);
    let (r, slot) = start_recorded(&env, "Amphi Joint Raté");
    env.tick_ok();
    env.docker.kill_container(&env.slot_dir(slot));
    env.tick_ok();
    let parts = mkv_parts(&env, slot);
    assert_eq!(parts.len(), 2);
    // Fake parts are not mkv: ffmpeg cannot join them. The second is the larger.
    fs::OpenOptions::new()
        .append(true)
        .open(&parts[1])
        .and_then(|mut f| std::io::Write::write_all(&mut f, &[b'M'; 4096]))
        .unwrap();
    let smaller = read_mkv(&parts[0]).len;
    env.bbb.end_meeting(&r.meeting_id);
    let out = env.tick();
    let expected = env.delivered_path(&r);
    assert_eq!(env.recordings(), vec![expected.clone()]);
    let delivered = read_mkv(&expected);
    assert_eq!(delivered.meeting_id, r.meeting_id);
    assert!(delivered.len > smaller, "the larger part is delivered");
    // The other part is kept, and reported with its path.
    let kept: Vec<PathBuf> = files_under(&env.base_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let name = kept[0].file_name().unwrap().to_string_lossy().into_owned();
    let reported = format!(
        "{}{}{}",
        out.stderr,
        env.log_text(),
        env.smtp
            .messages()
            .iter()
            .map(|m| m.body.clone())
            .collect::<String>()
    );
    assert!(reported.contains(&name), "{name} not reported");
    assert_eq!(env.live_status(r.live), 2);
}

// ---------------------------------------------------------------------------
// (d) A frozen stream: the playlist answers but stops moving
// ---------------------------------------------------------------------------

/// Ticks a minute apart from `first` (minutes), returning the restarts after each.
fn restarts_at(env: &TestEnv, slot: u32, minutes: std::ops::Range<i64>) -> Vec<usize> {
    minutes
        .map(|m| {
            env.tick_ok_at(m * 60);
            restarts_in(env, slot)
        })
        .collect()
}

#[test]
fn a_playlist_whose_sequence_stops_is_restarted_after_fail_ticks() {
    let env = env_with(SHORT);
    let (r, slot) = start(&env, "Amphi Figé");
    env.tick_ok_at(60); // grace: the playlist's position is remembered
    env.docker.hls_frozen(true);
    env.tick_ok_at(120);
    assert_eq!(health_of(&env, slot), "stream frozen");
    assert_eq!(restarts_in(&env, slot), 0);
    let out = env.run(&["status"]);
    assert!(out.stdout.contains("stream frozen"), "{}", out.stdout);
    env.tick_ok_at(180);
    assert_eq!(restarts_in(&env, slot), 1, "restarted after 2 frozen ticks");
    let restarted = env.mails_with_subject("restarted");
    assert_eq!(restarted.len(), 1, "{:?}", env.smtp.messages());
    assert!(
        restarted[0].subject.contains("stream frozen"),
        "{}",
        restarted[0].subject
    );
    assert!(
        restarted[0].body.contains("still picture"),
        "{}",
        restarted[0].body
    );
    assert!(
        env.log_text().contains("stopped moving"),
        "{}",
        env.log_text()
    );
    // Still frozen after the restart: repaired up to max_restarts, then one mail.
    let seen = restarts_at(&env, slot, 4..14);
    assert_eq!(
        seen,
        vec![1, 1, 2, 2, 2, 2, 2, 2, 2, 2],
        "restarts after each tick"
    );
    let beyond = env.mails_with_subject("beyond repair");
    assert_eq!(beyond.len(), 1, "{:?}", env.smtp.messages());
    assert!(
        beyond[0].body.contains("stream frozen"),
        "{}",
        beyond[0].body
    );
    assert_eq!(env.live_status(r.live), 1, "the live goes on");
}

#[test]
fn a_playlist_that_keeps_moving_is_left_alone() {
    let env = env_with(SHORT);
    let (_, slot) = start(&env, "Amphi Fluide");
    assert_eq!(restarts_at(&env, slot, 1..13), vec![0; 12]);
    assert_eq!(health_of(&env, slot), "ok");
    assert!(env.mails_with_subject("restarted").is_empty());
}

#[test]
fn a_playlist_that_stops_for_one_tick_and_moves_again_is_left_alone() {
    let env = env_with(SHORT);
    let (_, slot) = start(&env, "Amphi Hoquet");
    env.tick_ok_at(60);
    for m in 2..10 {
        env.docker.hls_frozen(m % 2 == 0);
        env.tick_ok_at(m * 60);
        let expected = if m % 2 == 0 { "stream frozen" } else { "ok" };
        assert_eq!(health_of(&env, slot), expected, "minute {m}");
    }
    assert_eq!(restarts_in(&env, slot), 0);
    assert!(env.mails_with_subject("restarted").is_empty());
}

#[test]
fn a_tick_closer_than_three_target_durations_neither_fails_nor_resets() {
    // The fake's segments last 4 s: ticks 12 s apart or more are judged.
    let env = env_with(SHORT);
    let (_, slot) = start(&env, "Amphi Rapproché");
    env.tick_ok_at(60);
    env.docker.hls_frozen(true);
    env.tick_ok_at(120); // frozen, once
    env.tick_ok_at(131); // 11 s later: not judged, so not a second failure
    assert_eq!(restarts_in(&env, slot), 0);
    assert_eq!(
        health_of(&env, slot),
        "ok",
        "nothing failed at the last tick"
    );
    env.tick_ok_at(132); // 12 s after 120, unchanged since: the second failure in a row
    assert_eq!(restarts_in(&env, slot), 1);
}
