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
