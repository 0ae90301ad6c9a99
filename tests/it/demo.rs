//! The demo (`cargo run --example demo`, the README's first command) tells its story to
//! the end: its scenario, run here in-process on the binary under test. The example's
//! own `main` (finding the binary, signals, leftover processes) is run by CI.

#[path = "../../examples/demo/scenario.rs"]
mod scenario;

#[test]
fn the_demo_shows_a_live_from_request_to_recording_and_a_webinar_through_serve() {
    let mut out = Vec::new();
    let mut dir = None;
    let result = scenario::run(&mut out, false, |root| dir = Some(root.to_path_buf()));
    let text = String::from_utf8_lossy(&out);
    if let Err(e) = result {
        panic!("the demo failed: {e:#}\n--- its output ---\n{text}");
    }
    for shown in [
        "$ bbb-pod-live run --dry-run",
        "start live 1 in slot 1",
        "INFO live started live=1 slot=1",
        "the compose file of slot 1",
        "BBB_MEETING_ID:",
        "POST /rest/broadcasters/",
        "live 1 started",
        "stop live 1 in slot 1: the meeting ended",
        "INFO recording handed over to Pod live=1",
        "format_name=matroska",
        "$ bbb-pod-live status",
        "Pod → GET /gw/1/start?room=3319bf5aed&domain=",
        "Pod → GET /gw/1/chat?room=3319bf5aed&toggle=True",
        "BBB_STREAM_URL: \"rtmp://rtmp.example/live/webinaire-1\"",
        "BBB_SHOW_CHAT: \"false\"",
        "webinar 3319bf5aed started",
        "BBB: sendChatMessage in \"0002-webinaire-demo\"",
        "Pod → GET /gw/1/stop?room=3319bf5aed",
        "serve exited 0",
    ] {
        assert!(
            text.contains(shown),
            "the demo did not show {shown:?}:\n{text}"
        );
    }
    assert!(
        !text.contains(crate::support::BBB_SECRET),
        "the demo shows the BBB secret:\n{text}"
    );
    // .ci/run knows a demo that ended well by this start of its last line.
    assert!(scenario::DONE.starts_with("demo: done"));
    let dir = dir.expect("the demo says where its directory is");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}
