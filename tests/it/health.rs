//! Issue 11: a live's health (behaviour.md "A live's health") and the whole recording
//! ("Handing over a recording"). The fake docker's streamer joins its meeting in the
//! fake BBB (an attendee named after `BBB_USER_NAME`) and its playlist is served by the
//! fake HLS server; knobs make it die, never join, or never reach the HLS server. Every
//! count here is in ticks: nothing depends on how long a tick takes.

use std::fs;

use crate::support::*;

fn slot_of(env: &TestEnv, live: u64) -> u32 {
    let server = env.pod.live(live)["server"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    server
        .strip_prefix("1/")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("live {live} is not running here: server = {server:?}"))
}

fn status(env: &TestEnv, live: u64) -> i64 {
    env.pod.live(live)["status"].as_i64().unwrap()
}

/// Requests a live, runs the tick that starts it (tick 0) and returns it with its slot.
#[track_caller]
fn start(env: &TestEnv, name: &str) -> (Requested, u32) {
    let r = env.request_live(name);
    env.tick_ok();
    assert_eq!(status(env, r.live), 1, "live {} started", r.live);
    let slot = slot_of(env, r.live);
    assert!(env.docker.running(&env.slot_dir(slot)));
    (r, slot)
}

fn stream_url(env: &TestEnv, slot: u32) -> String {
    let text = fs::read_to_string(env.slot_dir(slot).join("docker-compose.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    doc["services"]["bbb-streamer"]["environment"]["BBB_STREAM_URL"]
        .as_str()
        .unwrap()
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
