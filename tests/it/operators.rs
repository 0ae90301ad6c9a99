//! The operator commands against the fakes: the metrics file written by `run`,
//! `--version`, completions and man page, `check`, `status`, `stop`, the dry runs and
//! `init`, each with its failure output.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use std::process::Command;

use serde_json::Value;

use crate::support::{BIN, Fault, TestEnv, mode};

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
        // A labelled sample (`name{slot="1"}`) is described under its bare name.
        let bare = name.split('{').next().unwrap();
        assert!(
            text.contains(&format!("# HELP {bare} ")) && text.contains(&format!("# TYPE {bare} ")),
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
    let out = env.run(&["check"]);
    assert!(
        out.stdout.contains("OK   metrics.textfile directory"),
        "{}",
        out.stdout
    );
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
    // `check` says so.
    let out = env.run(&["check"]);
    out.assert_code(1);
    let l = out
        .stdout
        .lines()
        .find(|l| l.contains("metrics.textfile"))
        .unwrap_or_else(|| panic!("no metrics line:\n{}", out.stdout));
    assert!(l.starts_with("FAIL") && l.contains("no-such-dir"), "{l}");
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
    // Docker: its version and whether the streamer image is pulled, nothing else.
    let calls = env.docker.calls();
    assert!(
        calls
            .iter()
            .all(|c| c.is("version") || c.args.starts_with(&["image".into(), "inspect".into()])),
        "{calls:?}"
    );
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
    assert!(
        !env.base_dir().join(".docker-running").exists(),
        "check created the docker registry"
    );
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
    assert_eq!(l.matches("the token is").count(), 1, "said once: {l}");
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
    // Buildings come with the live app: whether building 1 exists is not known, and
    // the report says only that.
    line_with(&lines, "WARN", "pod.building_id = 1: not checked");
    assert!(
        !lines.iter().any(|l| l.contains("no such building")),
        "{lines:#?}"
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("FAIL")).count(), 1);
}

#[test]
fn check_without_the_live_app_says_nothing_about_the_building() {
    let env = inited();
    // The live app missing: its routes answer Django's 404, buildings too, here
    // as a JSON 404 that a building lookup would read as "no such building".
    env.pod.fail_next(
        "GET",
        "/rest/broadcasters/",
        crate::support::Fault::Status(404, r#"{"detail":"Not found."}"#.into()),
        5,
    );
    env.pod.fail_next(
        "GET",
        "/rest/buildings/",
        crate::support::Fault::Status(404, r#"{"detail":"Not found."}"#.into()),
        5,
    );
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    line_with(&lines, "FAIL", "broadcaster API");
    line_with(&lines, "WARN", "pod.building_id = 1: not checked");
    assert!(
        !lines.iter().any(|l| l.contains("no such building")),
        "{lines:#?}"
    );
}

/// `docker compose version` answers without the daemon; `check` must not say docker
/// is fine then, nor drop the image line silently.
#[test]
fn check_fails_naming_the_daemon_when_docker_is_down() {
    let env = inited();
    env.docker.daemon_down(true);
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "Docker daemon is not running");
    assert!(l.contains("systemctl start docker"), "{l}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("FAIL")).count(),
        1,
        "{lines:#?}"
    );
    env.docker.daemon_down(false);
    let out = check(&env, &[]);
    out.assert_success();
    line_with(&report_lines(&out.stdout), "OK", "streamer image");
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

/// Debian 12's docker-compose 1.29 is named and accepted; its daemon down is said in
/// its own words.
#[test]
fn check_names_compose_1_29_and_its_dead_daemon() {
    let env = inited();
    env.use_compose_v1();
    let out = check(&env, &[]);
    out.assert_success();
    let lines = report_lines(&out.stdout);
    line_with(
        &lines,
        "OK",
        "docker command runs: docker-compose 1.29.2 (compose v1)",
    );
    line_with(&lines, "OK", "is present locally");
    env.docker.daemon_down(true);
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    line_with(&lines, "FAIL", "Docker daemon is not running");
}

/// A compose older than 1.29 FAILs, naming what it found.
#[test]
fn check_fails_below_compose_1_29() {
    let env = inited();
    let old = env.root().join("docker-compose-1.25");
    fs::write(&old, "#!/bin/sh\necho 1.25.0\n").unwrap();
    fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
    let v2 = format!("{:?}", env.docker.program().display().to_string());
    env.rewrite_config(|t| {
        t.replace(
            &format!("[{v2}, \"compose\"]"),
            &format!("[{:?}]", old.display().to_string()),
        )
    });
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "docker-compose 1.25.0 (compose v1)");
    assert!(l.contains("1.29") && l.contains("docker.command"), "{l}");
}

/// The advice names the other compose, not the one that was just found missing.
#[test]
fn check_suggests_the_other_compose_when_docker_compose_is_missing() {
    let env = inited();
    let program = env.docker.program().display().to_string();
    let configured = env.config_text();
    let start = configured
        .find("command = [")
        .expect("docker.command in the test config");
    let end = start + configured[start..].find(']').expect("its end") + 1;
    let line = configured[start..end].to_owned();
    assert!(line.contains(&program), "{line}");
    env.rewrite_config(|t| t.replace(&line, "command = [\"/nonexistent/docker-compose\"]"));
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "docker");
    assert!(l.contains("[\"docker\", \"compose\"]"), "{l}");
    assert!(!l.contains("e.g. [\"docker-compose\"]"), "{l}");
}

#[test]
fn check_fails_when_videodata_is_not_writable_by_the_streamer() {
    let env = inited();
    if own_uid() == 1001 {
        return; // the streamer's uid owns everything here: nothing to test
    }
    let video = env.slot_dir(2).join("videodata");
    std::os::unix::fs::chown(&video, Some(own_uid()), None).unwrap();
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

fn own_uid() -> u32 {
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
    // A Redis as far as check needs one: RESP commands (`*<n>`, then n `$<len>` lines
    // each followed by the argument), PING answered +PONG, the client library's
    // CLIENT SETINFO on connecting +OK.
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let Ok(read) = s.try_clone() else { return };
            let mut lines = std::io::BufReader::new(read).lines();
            while let Some(Ok(head)) = lines.next() {
                let n: usize = head.trim_start_matches('*').parse().unwrap_or(0);
                let args: Vec<String> = (0..n)
                    .filter_map(|_| lines.nth(1).and_then(Result::ok))
                    .collect();
                let answer: &[u8] = if args.first().is_some_and(|a| a == "PING") {
                    b"+PONG\r\n"
                } else {
                    b"+OK\r\n"
                };
                if s.write_all(answer).is_err() {
                    break;
                }
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

// ---------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------

/// A live asking for its recording, started by one tick.
fn started_with_recording(env: &TestEnv, name: &str) -> crate::support::Requested {
    let req = env.request_live_with(name, |s| s.download_meeting = true);
    env.tick_ok();
    assert_eq!(env.pod.live(req.live)["status"], 1, "the live started");
    req
}

#[test]
fn status_shows_free_slots_before_any_tick() {
    let env = inited();
    let out = env.run(&["status"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("SLOT") && lines[0].contains("HLS URL"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].starts_with("1 ") && lines[1].contains("free"),
        "{}",
        out.stdout
    );
    assert!(
        lines[2].starts_with("2 ") && lines[2].contains("free"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("recordings waiting: none"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("last tick: never"), "{}", out.stdout);

    let doc = env.status_json();
    assert_eq!(doc["server"]["slots"], 2);
    assert_eq!(doc["server"]["hostname"], "live-test.example");
    let slots = doc["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    assert!(slots.iter().all(|s| s["state"] == "free"), "{doc:#}");
    assert_eq!(doc["recordings"], serde_json::json!([]));
    assert!(doc["last_tick"].is_null());
}

#[test]
fn status_shows_the_live_a_tick_started() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Status");
    let doc = env.status_json();
    let slot = &doc["slots"][0];
    assert_eq!(slot["slot"], 1);
    assert_eq!(slot["state"], "running");
    assert_eq!(slot["live"], req.live);
    assert_eq!(slot["meeting_name"], "Amphi Status");
    assert_eq!(slot["meeting_id"], req.meeting_id.as_str());
    assert_eq!(slot["recording"], true);
    assert!(
        slot["recording_bytes"].as_u64().unwrap() > 0,
        "the streamer writes: {slot}"
    );
    let hls = slot["hls_url"].as_str().unwrap();
    let stream = slot["stream_url"].as_str().unwrap();
    assert!(
        hls.starts_with(&env.hls_url()) && hls.ends_with(".m3u8"),
        "{hls}"
    );
    assert!(stream.starts_with("rtmp://rtmp.example/live/"), "{stream}");
    assert_eq!(doc["slots"][1]["state"], "free");
    assert_eq!(doc["last_tick"]["ok"], true);

    let out = env.run(&["status"]);
    out.assert_success();
    let row = out.stdout.lines().nth(1).unwrap();
    for part in ["1", "running", &req.live.to_string(), "Amphi Status", hls] {
        assert!(row.contains(part), "{part} missing from {row:?}");
    }
    assert!(
        out.stdout.contains("last tick: ") && out.stdout.contains(", ok"),
        "{}",
        out.stdout
    );
}

#[test]
fn status_lists_recordings_waiting_to_be_handed_over() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Attente");
    // The share is gone: the recording waits on local disk.
    fs::remove_dir(env.recordings_dir()).unwrap();
    env.bbb.end_meeting(&req.meeting_id);
    let out = env.tick();
    out.assert_code(1);
    assert_eq!(
        env.pod.live(req.live)["status"],
        2,
        "the live stopped anyway"
    );

    let out = env.run(&["status"]);
    out.assert_success();
    assert!(
        out.stdout.contains("recordings waiting:\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("live {}: 1 file(s)", req.live)),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("problem(s), see the log"),
        "{}",
        out.stdout
    );
    let doc = env.status_json();
    let recs = doc["recordings"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{doc:#}");
    assert_eq!(recs[0]["live"], req.live);
    assert_eq!(
        recs[0]["internal_meeting_id"],
        req.internal_meeting_id.as_str()
    );
    assert!(
        doc["slots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "free")
    );
    assert_eq!(doc["last_tick"]["ok"], false);

    // The share is back: the next tick hands it over and status says so.
    fs::create_dir(env.recordings_dir()).unwrap();
    env.tick_ok();
    assert_eq!(
        env.recordings(),
        vec![
            env.recordings_dir()
                .join(format!("{}.mkv", req.internal_meeting_id))
        ]
    );
    let out = env.run(&["status"]);
    assert!(
        out.stdout.contains("recordings waiting: none"),
        "{}",
        out.stdout
    );
}

#[test]
fn status_needs_a_valid_configuration() {
    let env = TestEnv::new();
    env.rewrite_config(|t| t.replace("[server]", "[server]\nslotz = 3"));
    let out = env.run(&["status"]);
    out.assert_code(2);
    assert!(out.stderr.contains("slotz"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

// ---------------------------------------------------------------------------
// stop
// ---------------------------------------------------------------------------

/// Asserts the automatic stop's effects: Pod status 2 with an end date, container
/// down, broadcaster deleted, slot free, recording parked then handed over.
#[track_caller]
fn assert_stopped_by_hand(env: &TestEnv, req: &crate::support::Requested) {
    let live = env.pod.live(req.live);
    assert_eq!(live["status"], 2, "{live}");
    assert!(!live["end_date"].is_null(), "{live}");
    assert!(!env.docker.running(&env.slot_dir(1)), "container down");
    let subs = env.docker.subcommands_in(&env.slot_dir(1));
    assert!(subs.iter().any(|s| s == "down"), "{subs:?}");
    assert!(
        env.pod.broadcasters().is_empty(),
        "{:?}",
        env.pod.broadcasters()
    );
    assert_eq!(env.status_json()["slots"][0]["state"], "free");
    assert!(
        env.log_text().contains("stopped by hand"),
        "{}",
        env.log_text()
    );
    // The recording is handed over by the stop itself, not a minute later.
    let doc = env.status_json();
    assert_eq!(doc["recordings"], serde_json::json!([]), "{doc:#}");
    let file = env
        .recordings_dir()
        .join(format!("{}.mkv", req.internal_meeting_id));
    assert_eq!(env.recordings(), vec![file.clone()]);
    assert!(
        crate::support::read_mkv(&file).finalized,
        "ffmpeg got SIGINT before down"
    );
    // The meeting still runs in BBB: the stopped live is not started again.
    env.tick_ok();
    assert_eq!(env.pod.live(req.live)["status"], 2);
    assert_eq!(env.recordings(), vec![file.clone()]);
    assert_eq!(env.status_json()["slots"][0]["state"], "free");
}

#[test]
fn stop_live_stops_through_the_automatic_path() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Stop");
    let out = env.run(&["stop", "--live", &req.live.to_string()]);
    out.assert_success();
    assert_stopped_by_hand(&env, &req);
    env.assert_no_secret_anywhere();
}

#[test]
fn stop_slot_stops_the_live_in_it() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Slot");
    let out = env.run(&["stop", "--slot", "1"]);
    out.assert_success();
    assert_stopped_by_hand(&env, &req);
}

#[test]
fn stop_with_recordings_dir_down_keeps_the_recording_and_exits_1() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Partage");
    std::fs::remove_dir_all(env.recordings_dir()).unwrap();
    let out = env.run(&["stop", "--live", &req.live.to_string()]);
    out.assert_code(1);
    assert!(out.stderr.contains("recording"), "{}", out.stderr);
    assert_eq!(
        env.pod.live(req.live)["status"],
        2,
        "the live itself is stopped"
    );
    let doc = env.status_json();
    assert_eq!(doc["recordings"][0]["live"], req.live, "{doc:#}");
    // The share is back: the next tick delivers it.
    std::fs::create_dir_all(env.recordings_dir()).unwrap();
    env.tick_ok();
    assert_eq!(env.recordings().len(), 1);
}

#[test]
fn stop_when_pod_cannot_be_read_still_closes_the_live_in_pod() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Panne");
    let path = format!("/rest/bbb_livestream/{}/", req.live);
    // One failed read: the live is still closed in this run.
    env.pod.fail_next(
        "GET",
        &path,
        crate::support::Fault::Status(503, "<html>busy</html>".into()),
        1,
    );
    let out = env.run(&["stop", "--live", &req.live.to_string()]);
    out.assert_success();
    assert_stopped_by_hand(&env, &req);
}

#[test]
fn stop_with_pod_down_stops_the_container_and_the_next_tick_closes_the_live() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Hors Ligne");
    env.pod.set_reachable(false);
    let out = env.run(&["stop", "--live", &req.live.to_string()]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("closing the live in Pod"),
        "{}",
        out.stderr
    );
    assert!(
        !env.docker.running(&env.slot_dir(1)),
        "the stream is cut as asked"
    );
    env.pod.set_reachable(true);
    assert_eq!(env.pod.live(req.live)["status"], 1, "Pod was not told yet");
    // The next tick finishes the stop: closed in Pod, not adopted as a running live.
    env.tick_ok();
    let live = env.pod.live(req.live);
    assert_eq!(live["status"], 2, "{live}");
    assert!(env.pod.broadcasters().is_empty());
    assert_eq!(env.status_json()["slots"][0]["state"], "free");
    assert_eq!(env.recordings().len(), 1);
}

#[test]
fn stop_of_an_unknown_live_or_a_free_slot_is_a_clear_error() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Reste");
    env.pod.clear_requests();
    let calls = env.docker.calls().len();

    let out = env.run(&["stop", "--live", "999"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("live 999 runs in no slot of this server"),
        "{}",
        out.stderr
    );
    let out = env.run(&["stop", "--slot", "2"]);
    out.assert_code(2);
    assert!(out.stderr.contains("slot 2 is free"), "{}", out.stderr);
    let out = env.run(&["stop", "--slot", "3"]);
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("there is no slot 3 on this server (server.slots = 2)"),
        "{}",
        out.stderr
    );
    let out = env.run(&["stop"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("--live") && out.stderr.contains("--slot"),
        "{}",
        out.stderr
    );

    assert!(env.pod.writes().is_empty());
    assert_eq!(env.docker.calls().len(), calls, "no docker call");
    assert_eq!(
        env.pod.live(req.live)["status"],
        1,
        "the running live is untouched"
    );
}

#[test]
fn stop_dry_run_prints_the_plan_and_changes_nothing() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Essai");
    env.pod.clear_requests();
    let calls = env.docker.calls().len();
    let out = env.run(&["--dry-run", "stop", "--live", &req.live.to_string()]);
    out.assert_success();
    assert_eq!(
        out.stdout.trim(),
        format!("stop live {} in slot 1: stopped by hand", req.live)
    );
    assert!(env.pod.writes().is_empty(), "{:?}", env.pod.writes());
    assert_eq!(env.docker.calls().len(), calls, "no docker call");
    assert!(env.docker.running(&env.slot_dir(1)));
    assert_eq!(env.pod.live(req.live)["status"], 1);
    assert_eq!(env.status_json()["slots"][0]["state"], "running");
}

// ---------------------------------------------------------------------------
// run --dry-run
// ---------------------------------------------------------------------------

#[test]
fn run_dry_run_prints_the_plan_and_changes_nothing() {
    let env = TestEnv::new();
    let req = env.request_live("Amphi Plan");
    let out = env.run(&["--dry-run", "run"]);
    out.assert_success();
    let plan: Vec<&str> = out.stdout.lines().collect();
    assert!(
        plan.contains(&format!("start live {} in slot 1", req.live).as_str()),
        "{}",
        out.stdout
    );
    assert!(
        plan.iter().any(|l| l.contains("bbb-live-streaming1")),
        "the slot directories it would create: {}",
        out.stdout
    );
    assert!(env.pod.writes().is_empty(), "{:?}", env.pod.writes());
    assert!(env.docker.calls().is_empty(), "{:?}", env.docker.calls());
    assert!(!env.slot_dir(1).exists(), "no directory created");
    assert_eq!(env.pod.live(req.live)["status"], 0);
    assert!(env.log_text().is_empty(), "no log file: {}", env.log_text());
    assert!(!env.base_dir().join("state.json").exists());
    assert!(env.smtp.messages().is_empty());

    // Once started, the dry run of a tick whose meeting ended plans the stop.
    env.tick_ok();
    env.bbb.end_meeting(&req.meeting_id);
    env.pod.clear_requests();
    let calls = env.docker.calls().len();
    let out = env.run(&["--dry-run", "run"]);
    out.assert_success();
    assert!(
        out.stdout
            .contains(&format!("stop live {} in slot 1", req.live)),
        "{}",
        out.stdout
    );
    assert!(env.pod.writes().is_empty());
    assert_eq!(env.docker.calls().len(), calls);
    assert_eq!(env.pod.live(req.live)["status"], 1);
}

#[test]
fn run_dry_run_with_nothing_to_do_says_so() {
    let env = inited();
    let out = env.run(&["--dry-run", "run"]);
    out.assert_success();
    assert_eq!(out.stdout.trim(), "nothing to do");
}

#[test]
fn run_dry_run_says_what_it_could_not_read_instead_of_nothing_to_do() {
    let env = inited();
    env.request_live("Amphi Aveugle");
    env.pod.set_reachable(false);
    let out = env.run(&["--dry-run", "run"]);
    out.assert_code(1);
    assert!(!out.stdout.contains("nothing to do"), "{}", out.stdout);
    assert!(out.stderr.contains("cannot reach Pod"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------

#[test]
fn init_creates_the_slots_with_their_modes_and_is_idempotent() {
    let env = TestEnv::builder().slots(3).build();
    let out = env.run(&["--dry-run", "init"]);
    out.assert_success();
    assert!(out.stdout.contains("bbb-live-streaming3"), "{}", out.stdout);
    assert!(!env.slot_dir(1).exists(), "the dry run created nothing");

    env.run(&["init"]).assert_success();
    let root = own_uid() == 0;
    for n in 1..=3 {
        let dir = env.slot_dir(n);
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        let compose = dir.join("docker-compose.yml");
        assert_eq!(mode(&compose), 0o600);
        assert!(fs::read_to_string(&compose).unwrap().contains("services"));
        let video = dir.join("videodata");
        let meta = fs::metadata(&video).unwrap();
        if root {
            assert_eq!(meta.uid(), 1001, "videodata belongs to the streamer");
            assert_eq!(mode(&video), 0o750);
        } else {
            assert_eq!(mode(&video), 0o777);
        }
    }
    assert!(env.log_text().contains("init: "), "{}", env.log_text());

    // Idempotent: a second init changes nothing and plans nothing.
    let compose = env.slot_dir(2).join("docker-compose.yml");
    fs::write(&compose, "# edited by the admin\n").unwrap();
    fs::set_permissions(env.slot_dir(3), fs::Permissions::from_mode(0o755)).unwrap();
    env.run(&["init"]).assert_success();
    assert_eq!(
        fs::read_to_string(&compose).unwrap(),
        "# edited by the admin\n"
    );
    assert_eq!(mode(&env.slot_dir(3)), 0o700, "the mode is repaired");
    let out = env.run(&["--dry-run", "init"]);
    out.assert_success();
    // Nothing to do is said, not left silent.
    assert!(
        out.stdout.starts_with("nothing to change") && out.stdout.lines().count() == 1,
        "nothing left to do: {}",
        out.stdout
    );
}

#[test]
fn init_never_touches_a_busy_slot() {
    let env = TestEnv::new();
    let req = started_with_recording(&env, "Amphi Occupé");
    let compose = env.slot_dir(1).join("docker-compose.yml");
    let written = fs::read_to_string(&compose).unwrap();
    assert!(
        written.contains(&req.live.to_string()) || written.contains("BBB_"),
        "{written}"
    );
    env.run(&["init"]).assert_success();
    assert_eq!(fs::read_to_string(&compose).unwrap(), written);
    // Even with its compose file gone, a busy slot does not get the template.
    fs::remove_file(&compose).unwrap();
    env.run(&["init"]).assert_success();
    assert!(!compose.exists());
    assert_eq!(env.pod.live(req.live)["status"], 1);
}

/// The configuration names commands run as root: a file its group or others may write,
/// or owned by someone else than root or this user, is a FAIL in `check` and a refusal
/// (exit 2, nothing done) of every command that acts.
#[test]
fn a_config_file_others_may_change_is_refused_by_every_command_that_acts() {
    let env = inited();
    env.request_live("Amphi Confiance");
    let acting: [&[&str]; 4] = [
        &["run"],
        &["stop", "--slot", "1"],
        &["init"],
        &["run", "--dry-run"],
    ];
    let config = env.config_path().to_path_buf();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o664)).unwrap();
    for args in acting {
        let out = env.run(args);
        out.assert_code(2);
        assert!(
            out.stderr.contains("0664") && out.stderr.contains("can write it"),
            "{args:?}: {}",
            out.stderr
        );
    }
    let l = line_with(&report_lines(&check(&env, &[]).stdout), "FAIL", "0664").to_owned();
    assert!(l.contains("chmod 600"), "{l}");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    if own_uid() == 0 {
        std::os::unix::fs::chown(&config, Some(4321), None).unwrap();
        for args in acting {
            let out = env.run(args);
            out.assert_code(2);
            assert!(
                out.stderr.contains("owned by uid 4321"),
                "{args:?}: {}",
                out.stderr
            );
        }
        let out = check(&env, &[]);
        out.assert_code(1);
        line_with(&report_lines(&out.stdout), "FAIL", "owned by uid 4321");
        std::os::unix::fs::chown(&config, Some(0), None).unwrap();
    }
    // Nothing was sent nor started while refused.
    assert!(env.pod.writes().is_empty(), "{:?}", env.pod.writes());
    assert_eq!(env.docker.count("up"), 0);
    env.tick_ok();
    assert_eq!(env.docker.count("up"), 1);
}

/// The example's placeholders left in the file (`change-me`, its `univ.fr` hosts): a
/// FAIL in `check` naming each key, and `run` refuses (exit 2) before sending anything.
#[test]
fn the_example_s_placeholders_are_refused_naming_each_key() {
    let env = inited();
    env.request_live("Amphi Exemple");
    let token = env.pod.token();
    env.rewrite_config(|t| {
        t.replace(&token, "change-me").replace(
            "hostname = \"live-test.example\"",
            "hostname = \"live1.univ.fr\"",
        )
    });
    env.pod.clear_requests();
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    line_with(
        &lines,
        "FAIL",
        "pod.token = \"change-me\" is the example's placeholder",
    );
    line_with(
        &lines,
        "FAIL",
        "server.hostname = \"live1.univ.fr\" is the example's placeholder",
    );
    for args in [&["run"][..], &["--dry-run", "run"], &["init"]] {
        let out = env.run(args);
        out.assert_code(2);
        assert!(
            out.stderr.contains("pod.token") && out.stderr.contains("server.hostname"),
            "{args:?}: {}",
            out.stderr
        );
    }
    env.pod.clear_requests();
    let out = env.run(&["run"]);
    out.assert_code(2);
    assert!(env.pod.requests().is_empty(), "{:?}", env.pod.requests());
    assert_eq!(env.docker.count("up"), 0);
    assert!(env.smtp.messages().is_empty());
}

/// A base_dir under a file cannot be created: one FAIL, naming server.base_dir, not a
/// warning that `init` creates it (nor the slots' lines repeating it without the key).
#[test]
fn check_fails_once_naming_base_dir_when_it_is_under_a_file() {
    let env = TestEnv::new();
    let file = env.root().join("a-file");
    fs::write(&file, "not a directory\n").unwrap();
    let base = env.base_dir().display().to_string();
    let under = file.join("base").display().to_string();
    env.rewrite_config(|t| {
        t.replace(
            &format!("base_dir = {base:?}"),
            &format!("base_dir = {under:?}"),
        )
    });
    let out = check(&env, &[]);
    out.assert_code(1);
    let lines = report_lines(&out.stdout);
    let l = line_with(&lines, "FAIL", "server.base_dir");
    assert!(
        l.contains("is a file, not a directory") && l.contains(&file.display().to_string()),
        "{l}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("Not a directory") || l.contains("not a directory"))
            .count(),
        1,
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("init creates it"), "{}", out.stdout);
}

/// A read-only file system mounted on `dir` for the test's life (root only; `None`
/// when it cannot be mounted here).
struct ReadOnlyMount(std::path::PathBuf);

impl ReadOnlyMount {
    fn on(dir: &Path) -> Option<ReadOnlyMount> {
        if own_uid() != 0 {
            return None;
        }
        fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "ro,size=64k", "bbb-pod-live-test"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| ReadOnlyMount(dir.to_path_buf()))
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A read-only log_dir: check says read-only (not "create it"), init and run fail, and
/// `status` shows the failed run.
#[test]
fn a_read_only_log_dir_is_said_read_only_and_fails_init_and_run() {
    let env = TestEnv::new();
    let Some(_ro) = ReadOnlyMount::on(&env.log_dir()) else {
        eprintln!("skipped: no read-only mount here (needs root and mount)");
        return;
    };
    let out = check(&env, &[]);
    out.assert_code(1);
    let l = line_with(&report_lines(&out.stdout), "FAIL", "server.log_dir").to_owned();
    assert!(
        l.contains("read-only file system") && !l.contains("create it"),
        "{l}"
    );
    let out = env.run(&["init"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("read-only file system"),
        "{}",
        out.stderr
    );
    let out = env.run(&["run"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("read-only file system"),
        "{}",
        out.stderr
    );
    let out = env.run(&["status"]);
    assert!(!out.stdout.contains("last tick: never"), "{}", out.stdout);
    assert_eq!(env.status_json()["last_tick"]["ok"], false);
}

/// The warning that others may read the configuration is not used up by `init` or
/// `stop` making the day's log first: the day's first tick still says it on stderr
/// (cron mails it), later ticks of the day do not, and `check` always does.
#[test]
fn the_readable_config_warning_reaches_the_first_tick_of_the_day_whoever_made_the_log() {
    let env = TestEnv::new();
    fs::set_permissions(env.config_path(), fs::Permissions::from_mode(0o640)).unwrap();
    env.run(&["init"]).assert_success();
    assert!(!env.log_text().is_empty(), "init made the day's log");
    let out = env.tick_ok();
    assert!(
        out.stderr.contains("other users can read the secrets"),
        "{}",
        out.stderr
    );
    let out = env.tick_ok();
    assert!(
        !out.stderr.contains("other users can read"),
        "{}",
        out.stderr
    );
    for _ in 0..2 {
        let out = check(&env, &[]);
        line_with(&report_lines(&out.stdout), "WARN", "0640");
    }
}

/// base_dir and log_dir get one mode, 0700 as the package makes them, whoever creates
/// them (`run` here).
#[test]
fn base_dir_and_log_dir_made_by_a_run_are_0700_as_the_package_makes_them() {
    let env = TestEnv::new();
    let (base, logs) = (env.root().join("new/base"), env.root().join("new/logs"));
    let (old_base, old_logs) = (
        env.base_dir().display().to_string(),
        env.log_dir().display().to_string(),
    );
    env.rewrite_config(|t| {
        t.replace(
            &format!("base_dir = {old_base:?}"),
            &format!("base_dir = {:?}", base.display().to_string()),
        )
        .replace(
            &format!("log_dir = {old_logs:?}"),
            &format!("log_dir = {:?}", logs.display().to_string()),
        )
    });
    env.tick_ok();
    assert_eq!(mode(&base), 0o700, "{}", base.display());
    assert_eq!(mode(&logs), 0o700, "{}", logs.display());
}

/// README's description of `status --json` names every top-level field it prints, and
/// the fields of a waiting live.
#[test]
fn the_readme_names_every_field_of_status_json() {
    let env = TestEnv::builder().slots(1).build();
    env.request_live("Amphi Un");
    env.request_live("Amphi Deux");
    env.tick_ok();
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("`status --json` prints")
        .expect("the README describes status --json");
    let described = &readme[start..start + readme[start..].find("\n\n").unwrap_or(0)];
    let doc = env.status_json();
    let waiting = doc["waiting"][0]
        .as_object()
        .expect("a live waits for the one slot");
    let fields = doc.as_object().unwrap().keys().chain(waiting.keys());
    for field in fields {
        assert!(
            described.contains(&format!("\"{field}\"")),
            "README lacks {field:?}:\n{described}"
        );
    }
}

/// `packaging/build-deb` with CARGO_TARGET_DIR elsewhere leaves no empty `target/`
/// behind (cargo and cargo-deb are stand-ins here: only the script is under test).
#[test]
fn build_deb_with_cargo_target_dir_leaves_no_empty_target() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("packaging")).unwrap();
    let script = tree.join("packaging/build-deb");
    fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/build-deb"),
        &script,
    )
    .unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    let cargo = "#!/bin/sh\nset -e\ncase \"$1\" in\n  build) mkdir -p \"$CARGO_TARGET_DIR/release\"\n    printf '#!/bin/sh\\necho generated\\n' >\"$CARGO_TARGET_DIR/release/bbb-pod-live\"\n    chmod 755 \"$CARGO_TARGET_DIR/release/bbb-pod-live\" ;;\n  deb) [ -s target/deb-assets/bbb-pod-live.1 ] || { echo 'no assets' >&2; exit 1; }\n    mkdir -p \"$CARGO_TARGET_DIR/debian\"; : >\"$CARGO_TARGET_DIR/debian/bbb-pod-live.deb\" ;;\nesac\n";
    for (name, text) in [("cargo", cargo), ("cargo-deb", "#!/bin/sh\nexit 0\n")] {
        fs::write(bin.join(name), text).unwrap();
        fs::set_permissions(bin.join(name), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let elsewhere = dir.path().join("elsewhere");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(&script)
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", &elsewhere)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elsewhere.join("debian/bbb-pod-live.deb").exists());
    assert!(!tree.join("target").exists(), "an empty target/ was left");
    // A target/ that was there before stays.
    fs::create_dir(tree.join("target")).unwrap();
    let out = Command::new("bash")
        .arg(&script)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("CARGO_TARGET_DIR", &elsewhere)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree.join("target").is_dir() && !tree.join("target/deb-assets").exists());
}

// ---------------------------------------------------------------------------
// Pod writes whose answer cannot be read
// ---------------------------------------------------------------------------

#[test]
fn a_pod_write_whose_answer_cannot_be_read_is_read_back_and_redone_until_pod_shows_it() {
    let (env, prom) = metrics_env();
    let r = env.request_live("Réponse coupée");
    env.tick_ok();
    env.assert_running(r.live);
    // Pod (or a proxy before it) answers the broadcaster's DELETE 200 with a cut JSON
    // body, twice, without deleting it; the close PATCH is done, its answer cut.
    let garbage = || Fault::Garbage("{\"detail\": \"Supprim".into());
    env.pod
        .fail_next("DELETE", "/rest/broadcasters/", garbage(), 2);
    env.pod
        .fail_next("PATCH", "/rest/bbb_livestream/", Fault::ApplyThenCut, 1);
    env.bbb.end_meeting(&r.meeting_id);
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 2, "the close was done");
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert_eq!(env.pod.broadcasters().len(), 1, "the DELETE was not");
    assert_eq!(
        read_metrics(&prom)["bbb_pod_live_pod_write_retries_total"],
        0.0
    );
    // Read back: the live shows closed (nothing redone), the broadcaster is still
    // there (deleted again, the answer cut again).
    env.tick_ok();
    assert_eq!(env.pod.broadcasters().len(), 1);
    assert_eq!(
        read_metrics(&prom)["bbb_pod_live_pod_write_retries_total"],
        1.0
    );
    env.tick_ok();
    assert!(env.pod.broadcasters().is_empty(), "deleted at last");
    assert_eq!(
        read_metrics(&prom)["bbb_pod_live_pod_write_retries_total"],
        2.0
    );
    // Pod shows it gone: nothing is sent again.
    let writes = env.pod.writes().len();
    env.tick_ok();
    env.tick_ok();
    assert_eq!(env.pod.writes().len(), writes);
    let state: Value =
        serde_json::from_slice(&fs::read(env.base_dir().join("state.json")).unwrap()).unwrap();
    assert!(state.get("unconfirmed").is_none(), "{state:#}");
}
