//! The admin's first hour: each trap a new admin fell into — a base URL
//! without its `/`, sendmail under cron, the cluster Redis unchecked, secrets from the
//! environment blamed on the file, a PHP server's modes, a corrupt slot state, silent
//! commands — through the real binary against the fakes.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::{RunOutput, TestEnv, mode};

/// The lines of a check report with this level containing `needle`.
fn lines_with<'a>(out: &'a RunOutput, level: &str, needle: &str) -> Vec<&'a str> {
    out.stdout
        .lines()
        .filter(|l| l.starts_with(level) && l.contains(needle))
        .collect()
}

#[track_caller]
fn one_line_with<'a>(out: &'a RunOutput, level: &str, needle: &str) -> &'a str {
    let found = lines_with(out, level, needle);
    assert_eq!(
        found.len(),
        1,
        "one {level} line with {needle:?}:\n{}",
        out.stdout
    );
    found[0]
}

#[test]
fn base_urls_without_their_trailing_slash_still_give_every_live_its_urls() {
    let env = TestEnv::new();
    let hls = env.hls_url();
    let bare = hls.trim_end_matches('/').to_owned();
    env.rewrite_config(|t| {
        t.replace("rtmp://rtmp.example/live/", "rtmp://rtmp.example/live")
            .replace(&format!("\"{hls}\""), &format!("\"{bare}\""))
    });
    assert!(env.config_text().contains(&format!("\"{bare}\"")));
    // `check` shows the URLs a live will get, with the `/` added.
    let out = env.run(&["check"]);
    let l = one_line_with(&out, "OK", "streams to");
    assert!(
        l.contains("rtmp://rtmp.example/live/bbb-cours-damphi-42"),
        "{l}"
    );
    assert!(l.contains(&format!("{hls}bbb-cours-damphi-42.m3u8")), "{l}");

    let r = env.request_live("Cours d'amphi");
    env.tick_ok();
    let compose = fs::read_to_string(env.slot_dir(1).join("docker-compose.yml")).unwrap();
    assert!(
        compose.contains("rtmp://rtmp.example/live/bbb-"),
        "{compose}"
    );
    assert!(
        !compose.contains("rtmp://rtmp.example/livebbb"),
        "{compose}"
    );
    let b = env.pod.broadcasters();
    // Pod ≥ 3.x answers the stream address as `broadcaster_url` (`url` is the row's API link).
    let url = b[0]
        .get("broadcaster_url")
        .and_then(|v| v.as_str())
        .or_else(|| b[0]["url"].as_str())
        .unwrap();
    assert!(url.starts_with(&format!("{hls}bbb-")), "{url}");
    assert_eq!(env.pod.live(r.live)["status"], 1);
    // Said at debug level (server.debug = true in the test world), never on stderr.
    assert!(
        env.log_text().contains("added the missing trailing /"),
        "{}",
        env.log_text()
    );
}

#[test]
fn sendmail_is_run_by_its_absolute_path_and_check_finds_a_missing_one() {
    let env = TestEnv::new();
    let fake = env.root().join("sendmail");
    env.rewrite_config(|t| {
        t.replace(
            "transport = \"smtp\"",
            &format!(
                "transport = \"sendmail\"\nsendmail = \"{}\"",
                fake.display()
            ),
        )
    });
    let out = env.run(&["check"]);
    out.assert_code(1);
    let l = one_line_with(&out, "FAIL", "mail.sendmail");
    assert!(
        l.contains(&fake.display().to_string()) && l.contains("missing"),
        "{l}"
    );
    fs::write(&fake, "#!/bin/sh\ncat > /dev/null\n").unwrap();
    let out = env.run(&["check"]);
    let l = one_line_with(&out, "FAIL", "mail.sendmail");
    assert!(l.contains("not an executable"), "{l}");
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.run(&["check"]);
    let l = one_line_with(&out, "OK", "sendmail program");
    assert!(l.contains(&fake.display().to_string()), "{l}");
    // A test mail the program refuses: sendmail's advice, not SMTP's.
    fs::write(
        &fake,
        "#!/bin/sh\ncat > /dev/null\necho 'no route' >&2\nexit 1\n",
    )
    .unwrap();
    let out = env.run(&["check", "--send-test-mail"]);
    out.assert_code(1);
    let l = one_line_with(&out, "FAIL", "mail:");
    assert!(
        l.contains("mail.sendmail") && !l.contains("smtp_host"),
        "{l}"
    );
    assert_eq!(l.matches("no route").count(), 1, "{l}");
    // A relative program would depend on cron's PATH: refused.
    env.rewrite_config(|t| t.replace(&format!("\"{}\"", fake.display()), "\"sendmail\""));
    let out = env.run(&["check"]);
    out.assert_code(2);
    assert!(out.stderr.contains("`mail.sendmail`"), "{}", out.stderr);
}

#[test]
fn check_pings_the_cluster_redis_without_showing_its_password() {
    // A port nobody listens on: bind, note the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = TestEnv::builder()
        .count(2)
        .extra_toml(&format!(
            "[cluster]\nredis_url = \"redis://:hunter2pw@127.0.0.1:{port}/0\""
        ))
        .build();
    let out = env.run(&["check"]);
    out.assert_code(1);
    let l = one_line_with(&out, "FAIL", "cluster Redis");
    assert!(l.contains(&format!("127.0.0.1:{port}")), "{l}");
    assert!(!out.stdout.contains("hunter2pw"), "{}", out.stdout);

    // With one server, [cluster] is ignored: said, not silent.
    let env = TestEnv::builder()
        .extra_toml(&format!(
            "[cluster]\nredis_url = \"redis://127.0.0.1:{port}/0\""
        ))
        .build();
    let out = env.run(&["check"]);
    let l = one_line_with(&out, "WARN", "[cluster]");
    assert!(l.contains("server.count = 1"), "{l}");
}

#[test]
fn a_secret_from_the_environment_is_named_as_such() {
    let env = TestEnv::new();
    let var = "BBB_POD_LIVE_POD_TOKEN";
    // A newline pasted with the token: the variable is blamed, not the file's key.
    let out = env.run_env(&["status"], &[(var, "abc\n")]);
    out.assert_code(2);
    assert!(out.stderr.contains(var), "{}", out.stderr);
    assert!(!out.stderr.contains("key `pod.token`"), "{}", out.stderr);
    let out = env.run_env(&["status"], &[(var, "")]);
    out.assert_code(2);
    assert!(
        out.stderr.contains(var) && out.stderr.contains("empty"),
        "{}",
        out.stderr
    );
    // Missing everywhere: both places are named.
    let token = env.pod.token();
    env.rewrite_config(|t| t.replace(&format!("token = \"{token}\""), ""));
    let out = env.run(&["status"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("`pod.token`") && out.stderr.contains(var),
        "{}",
        out.stderr
    );
    // A token Pod refuses: check says it came from the environment.
    let out = env.run_env(&["check"], &[(var, &"0123456789abcdef".repeat(2))]);
    out.assert_code(1);
    let l = one_line_with(&out, "FAIL", "Pod");
    assert!(l.contains("401") && l.contains(var), "{l}");
    let l = one_line_with(&out, "OK", "secrets:");
    assert!(
        l.contains(&format!("pod.token from the environment variable {var}")),
        "{l}"
    );
    // And so does the tick's error (stderr, as in the log and the mail).
    let out = env.run_env(&["run"], &[(var, &"0123456789abcdef".repeat(2))]);
    out.assert_code(1);
    let said = format!("the token is the environment variable {var}");
    assert!(
        out.stderr.contains("401") && out.stderr.contains(&said),
        "{}",
        out.stderr
    );
}

#[test]
fn pod_url_ending_in_rest_is_refused_as_the_api_not_the_root() {
    let env = TestEnv::new();
    let url = env.pod.url();
    let root = url.trim_end_matches('/').to_owned();
    env.rewrite_config(|t| t.replace(&format!("\"{url}\""), &format!("\"{root}/rest/\"")));
    assert!(
        env.config_text().contains("/rest/\""),
        "{}",
        env.config_text()
    );
    let out = env.run(&["check"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("`pod.url`") && out.stderr.contains("root"),
        "{}",
        out.stderr
    );
}

#[test]
fn init_repairs_a_php_servers_slot_and_says_each_change() {
    let env = TestEnv::builder().slots(1).build();
    let slot = env.slot_dir(1);
    let video = slot.join("videodata");
    fs::create_dir_all(&video).unwrap();
    fs::set_permissions(&slot, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&video, fs::Permissions::from_mode(0o755)).unwrap();
    let compose = slot.join("docker-compose.yml");
    fs::write(&compose, "services: {}\n").unwrap();
    fs::set_permissions(&compose, fs::Permissions::from_mode(0o644)).unwrap();

    let out = env.run(&["--dry-run", "init"]);
    out.assert_success();
    assert_eq!(mode(&compose), 0o644, "a dry run changed a mode");
    let planned = out.stdout.clone();

    let out = env.run(&["init"]);
    out.assert_success();
    assert_eq!(out.stdout, planned, "the dry run told what init did");
    let said = |needle: &str, path: &std::path::Path| {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.contains(needle) && l.contains(&path.display().to_string())),
            "{needle} {}:\n{}",
            path.display(),
            out.stdout
        );
    };
    said("set mode 0700", &slot);
    said("set mode 0600", &compose);
    assert_eq!(mode(&slot), 0o700);
    assert_eq!(mode(&compose), 0o600);
    if running_as_root() {
        said("1001:1001", &video);
        assert_eq!(fs::metadata(&video).unwrap().uid(), 1001);
    }
    // The compose file's content is the PHP's: init changes modes, not contents.
    assert_eq!(fs::read_to_string(&compose).unwrap(), "services: {}\n");

    let out = env.run(&["init"]);
    out.assert_success();
    assert!(
        out.stdout.starts_with("nothing to change"),
        "{}",
        out.stdout
    );
}

/// `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn day_logs_take_the_php_name_mode_0640_and_an_unwritable_log_dir_fails_the_tick() {
    let env = TestEnv::new();
    env.tick_ok();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let file = env.log_dir().join(format!("{today}_bbb-pod-live.log"));
    assert_eq!(mode(&file), 0o640);
    let log = fs::read_to_string(&file).unwrap();
    let first = log.lines().next().unwrap();
    // UTC, marked Z.
    assert!(
        first.starts_with(&today) && first[..30].contains('Z'),
        "{first}"
    );

    // A log_dir that cannot be a directory: the tick refuses to run unlogged.
    let bad = env.root().join("not-a-dir");
    fs::write(&bad, "").unwrap();
    let dir = env.log_dir().display().to_string();
    env.rewrite_config(|t| t.replace(&dir, &bad.display().to_string()));
    let r = env.request_live("Sans journal");
    let out = env.tick();
    out.assert_code(1);
    assert!(out.stderr.contains("server.log_dir"), "{}", out.stderr);
    assert_eq!(env.pod.live(r.live)["status"], 0, "ticked unlogged");
}

#[test]
fn the_first_tick_of_the_day_warns_about_a_readable_configuration() {
    let env = TestEnv::new();
    fs::set_permissions(env.config_path(), fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.tick();
    out.assert_success();
    assert!(
        out.stderr.contains("mode 0644") && out.stderr.contains("chmod 600"),
        "{}",
        out.stderr
    );
    // Once a day, not every minute.
    let out = env.tick();
    assert_eq!(out.stderr, "", "warned twice the same day");
}

#[test]
fn dry_run_is_refused_where_it_means_nothing() {
    let env = TestEnv::new();
    for cmd in ["status", "check"] {
        let out = env.run(&["--dry-run", cmd]);
        out.assert_code(2);
        assert!(out.stderr.contains("--dry-run"), "{cmd}: {}", out.stderr);
    }
    env.run(&["--dry-run", "run"]).assert_success();
}

#[test]
fn status_and_check_say_when_base_dir_is_missing() {
    let env = TestEnv::new();
    let _ = fs::remove_dir_all(env.base_dir());
    let out = env.run(&["status"]);
    out.assert_success();
    assert!(
        out.stdout.contains("does not exist") && out.stdout.contains("server.base_dir"),
        "{}",
        out.stdout
    );
    let out = env.run(&["check"]);
    let l = one_line_with(&out, "WARN", "server.base_dir");
    assert!(l.contains("does not exist"), "{l}");
}

#[test]
fn a_corrupt_slot_state_tells_one_story_in_status_check_and_stop() {
    let env = TestEnv::builder().slots(1).build();
    env.run(&["init"]).assert_success();
    let state = env.slot_dir(1).join("live-state.json");
    fs::write(&state, "{ not json").unwrap();
    let file = state.display().to_string();

    let out = env.run(&["status"]);
    out.assert_success();
    assert!(out.stdout.contains("unreadable"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&file) && out.stdout.contains(".corrupt"),
        "{}",
        out.stdout
    );
    let json = env.run(&["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["slots"][0]["state"], "unreadable");
    assert!(doc["slots"][0]["error"].as_str().unwrap().contains(&file));

    let out = env.run(&["check"]);
    let l = one_line_with(&out, "FAIL", "slot 1");
    assert!(l.contains(&file) && l.contains(".corrupt"), "{l}");

    let out = env.run(&["stop", "--slot", "1"]);
    out.assert_code(2);
    assert!(out.stderr.contains(&file), "{}", out.stderr);
    assert!(!out.stderr.contains("is free"), "{}", out.stderr);
}

#[test]
fn stop_says_what_it_did_and_that_it_waits_for_a_running_tick() {
    let env = TestEnv::new();
    let r = env.request_live("Arrêt à la main");
    env.tick_ok();
    // A tick holding the lock: a hung `docker compose up` keeps it until the docker
    // timeout (5 s) kills it.
    let r2 = env.request_live("Attend");
    env.docker.hang("up", true);
    let tick = env.spawn(&["run"]);
    crate::support::wait_until(
        "the tick holds the lock",
        std::time::Duration::from_secs(60),
        // The first tick's `up` started live r; the second is the hung one.
        || env.docker.count("up") >= 2,
    );
    let stop = env.spawn(&["stop", "--live", &r.live.to_string()]);
    let out = env.wait(stop);
    let _ = env.wait(tick);
    env.docker.hang("up", false);
    assert!(
        out.stderr.contains("waiting for the running tick (pid"),
        "{}",
        out.stderr
    );
    out.assert_success();
    assert!(
        out.stdout.contains(&format!("live {} stopped", r.live)),
        "{}",
        out.stdout
    );
    assert_eq!(env.pod.live(r.live)["status"], 2);
    let _ = r2;
}

#[test]
fn status_shows_local_time_with_its_offset() {
    let env = TestEnv::new();
    env.request_live("Heure locale");
    env.tick_ok();
    let out = env.run_env(&["status"], &[("TZ", "Asia/Kolkata")]);
    out.assert_success();
    assert!(out.stdout.contains("+05:30"), "{}", out.stdout);
    assert!(!out.stdout.contains(" UTC"), "{}", out.stdout);
}

#[test]
fn a_failed_start_whose_undo_failed_too_reads_cause_first_and_once() {
    let env = TestEnv::builder().slots(1).build();
    let r = env.request_live("Double échec");
    env.docker.fail_up(1);
    env.docker.fail_down(1);
    let out = env.tick();
    out.assert_code(1);
    let log = env.log_text();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains(&format!("live={}", r.live)))
        .collect();
    assert_eq!(errors.len(), 1, "one ERROR line per failure:\n{log}");
    let line = errors[0];
    let up = line.find("up -d").expect("the cause is named");
    let undo = line
        .find("undoing the start failed too")
        .expect("the undo is named");
    assert!(up < undo, "cause first: {line}");
    assert!(!line.contains("and undoing"), "{line}");
    // The mail's "What failed" reads the same way.
    let mails = env.smtp.messages();
    let digest = mails
        .iter()
        .find(|m| m.body.contains("undoing the start failed too"))
        .unwrap_or_else(|| panic!("no digest naming the undo: {mails:?}"));
    let (a, b) = (
        digest.body.find("up -d").expect("cause in the mail"),
        digest
            .body
            .find("undoing the start failed too")
            .expect("undo in the mail"),
    );
    assert!(a < b, "mail, cause first: {}", digest.body);
}

#[test]
fn status_and_the_dry_run_say_why_a_live_waits() {
    let env = TestEnv::builder().slots(1).build();
    let first = env.request_live("Premier");
    env.tick_ok();
    let second = env.request_live("Second");
    let out = env.run(&["--dry-run", "run"]);
    out.assert_success();
    let why = format!(
        "live {} waits: every slot of this server is busy",
        second.live
    );
    assert!(out.stdout.contains(&why), "{}", out.stdout);
    assert!(!out.stdout.contains("nothing to do"), "{}", out.stdout);
    env.tick_ok();
    let out = env.run(&["status"]);
    assert!(out.stdout.contains(&why), "{}", out.stdout);
    let json = env.run(&["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["waiting"][0]["live"], second.live);
    assert_eq!(doc["waiting"][0]["reason"]["kind"], "no_free_slot");
    let _ = first;
}

#[test]
fn every_tick_writes_one_summary_line_to_the_day_log_only() {
    let env = TestEnv::new();
    let out = env.tick_ok();
    assert_eq!(out.stdout, "");
    env.request_live("Résumé");
    env.tick_ok();
    let log = env.log_text();
    let summaries: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" INFO ") && l.contains("tick done"))
        .collect();
    assert_eq!(summaries.len(), 2, "{log}");
    assert!(summaries[0].contains("running=0") && summaries[0].contains("started=0"));
    assert!(
        summaries[1].contains("running=1") && summaries[1].contains("started=1"),
        "{}",
        summaries[1]
    );
    assert!(summaries[1].contains("duration_ms="), "{}", summaries[1]);
}
