//! The operator commands against the fakes (issue 4): the metrics file written by `run`,
//! `--version`, completions and man page, `check`, `status`, `stop`, the dry runs and
//! `init`, each with its failure output.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use std::process::Command;

use crate::support::{BIN, TestEnv};

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// The samples of a textfile-collector file, by name; checks every sample has its
/// HELP and TYPE lines.
fn read_metrics(path: &Path) -> BTreeMap<String, f64> {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the metrics file {}: {e}", path.display()));
    let mut values = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once(' ').unwrap();
        assert!(
            text.contains(&format!("# HELP {name} ")) && text.contains(&format!("# TYPE {name} ")),
            "{name} without HELP/TYPE:\n{text}"
        );
        values.insert(name.to_owned(), value.parse().unwrap());
    }
    values
}

fn metrics_env() -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::builder().slots(2).build();
    let prom = env.root().join("textfile").join("bbb_pod_live.prom");
    fs::create_dir_all(prom.parent().unwrap()).unwrap();
    let toml = format!("[metrics]\ntextfile = {:?}\n", prom.display().to_string());
    env.rewrite_config(|t| format!("{t}\n{toml}"));
    (env, prom)
}

#[test]
fn run_writes_the_metrics_file_and_it_follows_the_lives() {
    let (env, prom) = metrics_env();
    let before = chrono::Utc::now().timestamp() as f64;
    env.tick_ok();
    let m = read_metrics(&prom);
    assert_eq!(m["bbb_pod_live_slots"], 2.0);
    assert_eq!(m["bbb_pod_live_slots_busy"], 0.0);
    assert_eq!(m["bbb_pod_live_lives_started_total"], 0.0);
    assert_eq!(m["bbb_pod_live_lives_stopped_total"], 0.0);
    assert_eq!(m["bbb_pod_live_errors_total"], 0.0);
    assert_eq!(m["bbb_pod_live_recordings_waiting"], 0.0);
    assert_eq!(m["bbb_pod_live_last_tick_success"], 1.0);
    assert!(m["bbb_pod_live_last_tick_timestamp_seconds"] >= before);
    assert!(m["bbb_pod_live_last_tick_duration_seconds"] >= 0.0);
    let mode = fs::metadata(&prom).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "node_exporter must be able to read it");

    let req = env.request_live("Amphi métriques");
    env.tick_ok();
    assert_eq!(env.pod.live(req.live)["status"], 1, "the live started");
    let m = read_metrics(&prom);
    assert_eq!(m["bbb_pod_live_slots_busy"], 1.0);
    assert_eq!(m["bbb_pod_live_lives_started_total"], 1.0);
    assert_eq!(m["bbb_pod_live_lives_stopped_total"], 0.0);

    env.bbb.end_meeting(&req.meeting_id);
    env.tick_ok();
    let m = read_metrics(&prom);
    assert_eq!(m["bbb_pod_live_slots_busy"], 0.0);
    assert_eq!(m["bbb_pod_live_lives_started_total"], 1.0);
    assert_eq!(m["bbb_pod_live_lives_stopped_total"], 1.0);
    // Only the metrics file and nothing else in the textfile directory.
    let names: Vec<_> = fs::read_dir(prom.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn a_failed_tick_still_writes_the_metrics_with_success_0() {
    let (env, prom) = metrics_env();
    env.tick_ok();
    assert_eq!(read_metrics(&prom)["bbb_pod_live_last_tick_success"], 1.0);
    env.pod.set_reachable(false);
    let out = env.tick();
    out.assert_code(1);
    let m = read_metrics(&prom);
    assert_eq!(m["bbb_pod_live_last_tick_success"], 0.0);
    assert!(m["bbb_pod_live_errors_total"] >= 1.0, "{m:?}");
    let errors = m["bbb_pod_live_errors_total"];
    env.pod.set_reachable(true);
    env.tick_ok();
    let m = read_metrics(&prom);
    assert_eq!(m["bbb_pod_live_last_tick_success"], 1.0);
    assert_eq!(
        m["bbb_pod_live_errors_total"], errors,
        "a counter never resets"
    );
}

#[test]
fn a_metrics_file_that_cannot_be_written_is_a_warning_not_a_failed_tick() {
    let env = TestEnv::new();
    let prom = env.root().join("no-such-dir").join("bbb_pod_live.prom");
    let toml = format!("[metrics]\ntextfile = {:?}\n", prom.display().to_string());
    env.rewrite_config(|t| format!("{t}\n{toml}"));
    let out = env.tick_ok();
    assert!(
        out.stderr.contains("metrics") && out.stderr.contains("no-such-dir"),
        "the warning names the file:\n{}",
        out.stderr
    );
    assert!(!prom.exists());
    assert!(env.log_text().contains("WARN"), "{}", env.log_text());
}

#[test]
fn dry_run_writes_no_metrics() {
    let (env, prom) = metrics_env();
    env.run(&["--dry-run", "run"]).assert_success();
    assert!(!prom.exists());
}

// ---------------------------------------------------------------------------
// --version, completions, man page
// ---------------------------------------------------------------------------

/// The binary with a configuration file that does not exist: these commands must not
/// read one.
fn run_without_config(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .env_clear()
        .env(
            "BBB_POD_LIVE_CONFIG",
            "/nonexistent/bbb-pod-live/config.toml",
        )
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_prints_the_package_version() {
    let (code, stdout, stderr) = run_without_config(&["--version"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!("bbb-pod-live {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn completions_are_printed_without_a_configuration() {
    let (code, stdout, stderr) = run_without_config(&["completions", "bash"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(stdout.contains("complete -F"), "a bash script:\n{stdout}");
    for word in [
        "run",
        "check",
        "status",
        "stop",
        "init",
        "--dry-run",
        "--send-test-mail",
    ] {
        assert!(
            stdout.contains(word),
            "{word} missing from the bash completion"
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (code, stdout, stderr) = run_without_config(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {stderr}");
        assert!(stdout.contains("status"), "{shell}");
    }
    let (code, _, stderr) = run_without_config(&["completions", "tcsh"]);
    assert_eq!(code, Some(2), "an unknown shell is a usage error");
    assert!(stderr.contains("bash"), "lists the shells: {stderr}");
}

#[test]
fn the_man_page_is_roff_without_a_configuration() {
    let (code, stdout, stderr) = run_without_config(&["man"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(".TH bbb-pod-live 1"), "{stdout}");
    assert!(stdout.contains(".SH SYNOPSIS"), "{stdout}");
    // One page: every subcommand with its usage and options, no pointer to
    // bbb-pod-live-run(1) pages that nobody installs.
    assert!(!stdout.contains("(1)\n"), "{stdout}");
    for sub in [
        "run",
        "check",
        "status",
        "stop",
        "init",
        "completions",
        "man",
    ] {
        assert!(
            stdout.contains(&format!(".SS {sub}\n")),
            "{sub} missing:\n{stdout}"
        );
    }
    for text in [
        "\\-\\-send\\-test\\-mail",
        "<\\-\\-live <ID>|\\-\\-slot <N>>",
        "possible values: bash",
        ".SH \"EXIT STATUS\"",
        "BBB_POD_LIVE_CONFIG",
    ] {
        assert!(stdout.contains(text), "{text} missing:\n{stdout}");
    }
    // Other commands still need the file.
    let (code, _, stderr) = run_without_config(&["status"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("/nonexistent/bbb-pod-live/config.toml"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------

/// `check` in a world that was `init`ed; returns the output.
fn check(env: &TestEnv, args: &[&str]) -> crate::support::RunOutput {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    env.run(&all)
}

/// The lines of a check report, each asserted to start with its level.
fn report_lines(stdout: &str) -> Vec<&str> {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty(), "empty report");
    for l in &lines {
        assert!(
            l.starts_with("OK   ") || l.starts_with("WARN ") || l.starts_with("FAIL "),
            "a line without its level: {l:?}\n{stdout}"
        );
    }
    lines
}

/// The one line with this level containing `needle`.
#[track_caller]
fn line_with<'a>(lines: &[&'a str], level: &str, needle: &str) -> &'a str {
    let found: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with(level) && l.contains(needle))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {level} line with {needle:?}:\n{}",
        lines.join("\n")
    );
    found[0]
}

fn inited() -> TestEnv {
    let env = TestEnv::new();
    env.run(&["init"]).assert_success();
    env
}

#[test]
fn check_passes_when_everything_answers_and_changes_nothing() {
    let env = inited();
    env.pod.clear_requests();
    let out = check(&env, &[]);
    out.assert_success();
    let lines = report_lines(&out.stdout);
    assert!(lines.iter().all(|l| l.starts_with("OK ")), "{}", out.stdout);
    line_with(&lines, "OK", "configuration");
    line_with(&lines, "OK", "accepts the token of a staff user");
    line_with(&lines, "OK", "/rest/broadcasters/");
    line_with(&lines, "OK", "building 1 (\"Bâtiment principal\") exists");
    line_with(&lines, "OK", "BBB answers");
    line_with(&lines, "OK", "docker command runs");
    line_with(&lines, "OK", "server.base_dir");
    line_with(&lines, "OK", "server.log_dir");
    line_with(&lines, "OK", "pod.recordings_dir");
    line_with(&lines, "OK", "writable by uid 1001");
    line_with(&lines, "OK", "SMTP server");
    line_with(&lines, "OK", "chat Redis: no live running");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    // Read only: no Pod write, docker asked for its version only, no mail, no file left.
    assert!(env.pod.writes().is_empty(), "{:?}", env.pod.writes());
    assert!(
        env.pod
            .requests()
            .iter()
            .any(|r| r.path == "/rest/buildings/1/"),
        "the building is read"
    );
    let calls = env.docker.calls();
    assert!(calls.iter().all(|c| c.is("version")), "{calls:?}");
    assert!(env.smtp.connections() >= 1, "SMTP was reached");
    assert!(
        env.smtp.messages().is_empty(),
        "no mail without --send-test-mail"
    );
    for dir in [env.base_dir(), env.log_dir(), env.recordings_dir()] {
        let probes: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("check"))
            .collect();
        assert!(probes.is_empty(), "probe left in {}", dir.display());
    }
    env.assert_no_secret_anywhere();
}

#[test]
fn check_fails_when_pod_refuses_the_token() {
    let env = inited();
    let token = env.pod.token();
    env.rewrite_config(|t| t.replace(&token, &"0123456789abcdef".repeat(2)));
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "Pod");
    assert!(l.contains("401") && l.contains("pod.token"), "{l}");
    line_with(&lines, "WARN", "not checked until Pod accepts the token");
    // The rest is still checked.
    line_with(&lines, "OK", "BBB answers");
    line_with(&lines, "OK", "docker command runs");
    env.assert_no_secret_anywhere();
}

#[test]
fn check_fails_when_the_token_user_is_not_staff() {
    let env = inited();
    let (_, token) = env.pod.add_user(false);
    let staff = env.pod.token();
    env.rewrite_config(|t| t.replace(&staff, &token));
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "Pod");
    assert!(l.contains("403") && l.contains("staff"), "{l}");
}

#[test]
fn check_fails_when_the_building_is_missing() {
    let env = inited();
    env.rewrite_config(|t| t.replace("building_id = 1", "building_id = 99"));
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "pod.building_id = 99");
    assert!(l.contains("no such building"), "{l}");
    line_with(&lines, "OK", "accepts the token");
    // Exactly one failure.
    assert_eq!(lines.iter().filter(|l| l.starts_with("FAIL")).count(), 1);
}

#[test]
fn check_fails_without_the_live_app_in_pod() {
    let env = inited();
    let page = "<!DOCTYPE html><html><head><title>Page not found</title></head><body><h1>Not Found</h1></body></html>";
    env.pod.fail_next(
        "GET",
        "/rest/broadcasters/",
        crate::support::Fault::Status(404, page.into()),
        5,
    );
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "broadcaster API");
    assert!(l.contains("THIRD_PARTY_APPS"), "{l}");
}

#[test]
fn check_fails_when_bbb_refuses_the_checksum() {
    let env = inited();
    env.rewrite_config(|t| t.replace(crate::support::BBB_SECRET, "not-the-secret"));
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "BBB");
    assert!(
        l.contains("checksumError") && l.contains("bbb.secret"),
        "{l}"
    );
    assert!(env.bbb.bad_checksums() >= 1);
}

#[test]
fn check_warns_about_a_configuration_readable_by_others() {
    let env = inited();
    fs::set_permissions(env.config_path(), fs::Permissions::from_mode(0o644)).unwrap();
    let out = check(&env, &[]);
    out.assert_success();
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "WARN", "configuration");
    assert!(l.contains("0644") && l.contains("chmod 600"), "{l}");
}

#[test]
fn check_fails_when_smtp_is_down_and_sends_a_test_mail_on_request() {
    let env = inited();
    let out = check(&env, &["--send-test-mail"]);
    out.assert_success();
    let lines = report_lines(&out.stdout);
    line_with(&lines, "OK", "test mail sent to admin@univ.example");
    let mails = env.smtp.wait_for(1, std::time::Duration::from_secs(10));
    assert!(
        mails[0].subject.contains("Test mail"),
        "{:?}",
        mails[0].subject
    );

    env.smtp.set_down();
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "SMTP server");
    assert!(l.contains("mail.smtp_host"), "{l}");
}

#[test]
fn check_fails_when_docker_does_not_run() {
    let env = inited();
    let program = env.docker.program().display().to_string();
    env.rewrite_config(|t| t.replace(&program, "/nonexistent/docker"));
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "docker");
    assert!(l.contains("docker.command"), "{l}");
}

#[test]
fn check_fails_when_videodata_is_not_writable_by_the_streamer() {
    let env = inited();
    if nix_uid() == 1001 {
        return; // the streamer's uid owns everything here: nothing to test
    }
    let video = env.slot_dir(2).join("videodata");
    std::os::unix::fs::chown(&video, Some(nix_uid()), None).unwrap();
    fs::set_permissions(&video, fs::Permissions::from_mode(0o755)).unwrap();
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "not writable by uid 1001");
    assert!(
        l.contains(&video.display().to_string()) && l.contains("0755"),
        "{l}"
    );
    // `init` as the owner would not repair another's mode, but the message says how.
    assert!(l.contains("chown 1001:1001"), "{l}");

    fs::remove_dir(&video).unwrap();
    let out = check(&env, &[]);
    out.assert_success();
    line_with(&report_lines(&out.stdout), "WARN", "slot(s) 2 missing");
}

fn nix_uid() -> u32 {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap()
}

/// A slot state file written by hand: a running live in slot `slot`.
fn running_slot(env: &TestEnv, slot: u32, live: u64) {
    let dir = env.slot_dir(slot);
    fs::create_dir_all(&dir).unwrap();
    let state = serde_json::json!({
        "live": live,
        "phase": "running",
        "since": "2024-05-01T08:00:00Z",
        "download": false,
    });
    fs::write(dir.join("live-state.json"), state.to_string()).unwrap();
}

#[test]
fn check_pings_the_chat_redis_of_running_slots() {
    let env = inited();
    // Slots above server.slots still count when they hold a live; their Redis ports
    // (6378+N) are far from a system Redis on 6379.
    let (listener, answering) = (60..=100)
        .rev()
        .find_map(|n| {
            std::net::TcpListener::bind(("127.0.0.1", 6378 + n as u16))
                .ok()
                .map(|l| (l, n))
        })
        .expect("a free port for the fake Redis");
    let silent = (60..answering)
        .rev()
        .find(|n| std::net::TcpListener::bind(("127.0.0.1", 6378 + *n as u16)).is_ok())
        .expect("a free port nobody answers on");
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut line = String::new();
            if std::io::BufReader::new(&s).read_line(&mut line).is_ok() && line == "PING\r\n" {
                let _ = s.write_all(b"+PONG\r\n");
            }
        }
    });
    running_slot(&env, answering, 41);
    running_slot(&env, silent, 42);
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    line_with(
        &lines,
        "OK",
        &format!(
            "chat Redis of slot {answering} (127.0.0.1:{}) answers PING",
            6378 + answering
        ),
    );
    let l = line_with(&lines, "FAIL", &format!("chat Redis of slot {silent} "));
    assert!(
        l.contains("live 42") && l.contains("server.redis_bind"),
        "{l}"
    );
}

#[test]
fn check_fails_when_pod_and_bbb_are_unreachable() {
    let env = inited();
    env.pod.set_reachable(false);
    env.bbb.set_mode(crate::support::BbbMode::Down);
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "Pod");
    assert!(
        l.contains("cannot reach Pod") && l.contains("pod.url"),
        "{l}"
    );
    let l = line_with(&lines, "FAIL", "BBB");
    assert!(l.contains("bbb.url"), "{l}");
}
