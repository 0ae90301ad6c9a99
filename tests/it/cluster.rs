//! Several servers: two bbb-pod-live processes, each with its own
//! base_dir and docker, share one fake Pod and BBB and a real `redis-server` started
//! by the test (`[cluster] redis_url`). Each waiting live must be started exactly once:
//! one `compose up` across both servers, one broadcaster, Pod's `server` naming the
//! server whose slot runs it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::redis::RedisServer;
use crate::support::{Fault, Requested, TestEnv, wait_until};

const TTL: u64 = 30;

fn cluster_toml(redis: &RedisServer) -> String {
    format!(
        "[cluster]\nredis_url = \"{}\"\nclaim_ttl_secs = {TTL}",
        redis.url()
    )
}

/// Servers 1 and 2 of 2, `slots` each, sharing Pod and BBB; `extra` is merged into both.
fn two_servers(redis: &RedisServer, slots: u32, extra: &str) -> (TestEnv, TestEnv) {
    let toml = format!("{}\n{extra}", cluster_toml(redis));
    let a = TestEnv::builder()
        .slots(slots)
        .server_number(1)
        .count(2)
        .extra_toml(&toml)
        .build();
    let b = TestEnv::builder()
        .slots(slots)
        .server_number(2)
        .count(2)
        .extra_toml(&toml)
        .build_beside(&a);
    (a, b)
}

/// Runs one tick of each server at the same moment.
fn tick_both(a: &TestEnv, b: &TestEnv) {
    let (ca, cb) = (a.spawn(&["run"]), b.spawn(&["run"]));
    let (oa, ob) = (a.wait(ca), b.wait(cb));
    for (name, o) in [("server 1", &oa), ("server 2", &ob)] {
        assert!(
            matches!(o.code, Some(0 | 1)),
            "{name} exited {:?}\n{}",
            o.code,
            o.stderr
        );
    }
}

/// Which server and slot run each live, checked against Pod, the containers, the
/// state files and the claims; panics on any double start.
fn placement(
    a: &TestEnv,
    b: &TestEnv,
    redis: &RedisServer,
    lives: &[Requested],
    slots: u32,
) -> BTreeMap<u64, (u32, u32)> {
    let mut seen = BTreeMap::new();
    for (number, env) in [(1u32, a), (2u32, b)] {
        for slot in 1..=slots {
            let dir = env.slot_dir(slot);
            let state = std::fs::read(dir.join("live-state.json"))
                .ok()
                .map(|t| serde_json::from_slice::<serde_json::Value>(&t).expect("state JSON"));
            let running = env.docker.running(&dir);
            match state {
                Some(s) => {
                    let live = s["live"].as_u64().expect("live id");
                    assert!(
                        running,
                        "server {number} slot {slot} holds {s} without a container"
                    );
                    assert_eq!(s["phase"], "running", "server {number} slot {slot}: {s}");
                    if let Some(prev) = seen.insert(live, (number, slot)) {
                        panic!("live {live} runs twice: {prev:?} and {:?}", (number, slot));
                    }
                }
                None => assert!(
                    !running,
                    "server {number} slot {slot}: container without a live"
                ),
            }
        }
    }
    for r in lives {
        let Some(&(number, slot)) = seen.get(&r.live) else {
            continue;
        };
        let live = a.pod.live(r.live);
        assert_eq!(live["status"], 1, "live {}: {live}", r.live);
        assert_eq!(
            live["server"],
            format!("{number}/{slot}"),
            "live {}",
            r.live
        );
        assert_eq!(
            redis.get(&format!("bbb-pod-live:claim:{}", r.live)),
            Some(number.to_string()),
            "claim of live {}",
            r.live
        );
    }
    seen
}

#[test]
fn two_servers_racing_start_each_live_exactly_once() {
    let redis = RedisServer::start();
    let (a, b) = two_servers(&redis, 3, "");
    let mut lives: Vec<Requested> = (0..4)
        .map(|i| a.request_live(&format!("Cours {i}")))
        .collect();
    for _ in 0..4 {
        tick_both(&a, &b);
        if placement(&a, &b, &redis, &lives, 3).len() == lives.len() {
            break;
        }
    }
    // More lives while both race again.
    lives.extend((4..6).map(|i| a.request_live(&format!("Cours {i}"))));
    for _ in 0..4 {
        tick_both(&a, &b);
        if placement(&a, &b, &redis, &lives, 3).len() == lives.len() {
            break;
        }
    }
    let placed = placement(&a, &b, &redis, &lives, 3);
    assert_eq!(placed.len(), 6, "not every live started: {placed:?}");
    assert_eq!(
        a.docker.count("up") + b.docker.count("up"),
        6,
        "one `up` per live across both servers"
    );
    let broadcasters = a.pod.broadcasters();
    assert_eq!(broadcasters.len(), 6, "{broadcasters:?}");
    let posts = a
        .pod
        .writes()
        .iter()
        .filter(|w| w.method == "POST" && w.path.starts_with("/rest/broadcasters/"))
        .count();
    assert_eq!(posts, 6, "one broadcaster created per live");
    // Stable: another round changes nothing.
    tick_both(&a, &b);
    assert_eq!(a.docker.count("up") + b.docker.count("up"), 6);
    assert_eq!(placement(&a, &b, &redis, &lives, 3), placed);
}

/// Server 1 is killed in the middle of a start; its claim keeps server 2 off the live
/// until it runs out, then server 2 takes it, and server 1's next tick undoes its part.
#[test]
fn a_crashed_servers_claim_runs_out_and_the_other_server_takes_the_live() {
    let redis = RedisServer::start();
    let (a, b) = two_servers(&redis, 1, "[docker]\ntimeout_secs = 300");
    let r = a.request_live("Amphi B");
    let key = format!("bbb-pod-live:claim:{}", r.live);
    // Server 1 claims, starts the container, and is killed before telling Pod.
    a.docker.hang_after("up", true);
    let child = a.spawn(&["run"]);
    wait_until("server 1's compose up", Duration::from_secs(30), || {
        a.docker.hung_after("up") == 1
    });
    let mut child = child;
    child.kill().expect("SIGKILL server 1");
    a.wait(child);
    a.docker.hang_after("up", false);
    assert_eq!(redis.get(&key).as_deref(), Some("1"));
    let ttl = redis.ttl(&key);
    assert!(ttl > 0 && ttl <= TTL as i64, "the claim expires: TTL {ttl}");

    // While the claim lasts, server 2 leaves the live alone.
    b.tick_ok();
    assert_eq!(
        b.docker.count("up"),
        0,
        "server 2 started a live claimed by server 1"
    );
    assert_eq!(a.pod.live(r.live)["status"], 0);

    let deadline = Instant::now() + Duration::from_secs(TTL + 10);
    while redis.get(&key).is_some() {
        assert!(Instant::now() < deadline, "the claim never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    b.tick_ok();
    assert_eq!(
        a.pod.live(r.live)["server"],
        "2/1",
        "server 2 took the live"
    );
    assert!(b.docker.running(&b.slot_dir(1)));

    // Server 1 comes back: its interrupted start is undone, server 2's live untouched.
    a.tick_ok();
    assert!(
        !a.docker.running(&a.slot_dir(1)),
        "server 1 kept its container"
    );
    assert!(!a.slot_dir(1).join("live-state.json").exists());
    let placed = placement(&a, &b, &redis, std::slice::from_ref(&r), 1);
    assert_eq!(placed.get(&r.live), Some(&(2, 1)));
    assert_eq!(a.pod.broadcasters().len(), 1, "{:?}", a.pod.broadcasters());
}

/// The dangerous interleaving: server 1's claim ran out while its start was
/// interrupted, server 2 claimed the live and is starting it, then server 1 resumes.
/// Server 1 must renew its claim before going on, and yield.
#[test]
fn a_resumed_start_yields_to_the_server_that_claimed_the_live_meanwhile() {
    let redis = RedisServer::start();
    let (a, b) = two_servers(
        &redis,
        1,
        "[docker]\ntimeout_secs = 300\n[pod]\ntimeout_secs = 300",
    );
    let r = a.request_live("Amphi C");
    let key = format!("bbb-pod-live:claim:{}", r.live);
    a.docker.hang_after("up", true);
    let mut child = a.spawn(&["run"]);
    wait_until("server 1's compose up", Duration::from_secs(30), || {
        a.docker.hung_after("up") == 1
    });
    child.kill().expect("SIGKILL server 1");
    a.wait(child);
    a.docker.hang_after("up", false);
    // The claim runs out (simulated: Redis deletes it as expiry would).
    assert_eq!(redis.command(&["DEL", &key]).as_deref(), Some(":1"));

    // Server 2 claims and gets as far as telling Pod, where it hangs.
    a.pod
        .fail_next("PATCH", "/rest/bbb_livestream/", Fault::Hang, 1);
    let mut child_b = b.spawn(&["run"]);
    wait_until("server 2's PATCH", Duration::from_secs(30), || {
        a.pod
            .requests()
            .iter()
            .any(|q| q.method == "PATCH" && q.path.starts_with("/rest/bbb_livestream/"))
    });
    assert_eq!(redis.get(&key).as_deref(), Some("2"));

    // Server 1 resumes its start meanwhile: it must not tell Pod the live is its own.
    a.tick();
    let live = a.pod.live(r.live);
    assert_ne!(
        live["server"], "1/1",
        "server 1 started a live claimed by server 2"
    );
    assert!(
        !a.docker.running(&a.slot_dir(1)),
        "server 1 kept its container"
    );

    // Server 2's PATCH is lost (killed); its next tick finishes the start.
    child_b.kill().expect("SIGKILL server 2");
    b.wait(child_b);
    b.tick();
    b.tick_ok();
    a.tick_ok();
    let placed = placement(&a, &b, &redis, std::slice::from_ref(&r), 1);
    assert_eq!(placed.get(&r.live), Some(&(2, 1)), "{}", a.pod.live(r.live));
}

/// Redis down: no server starts anything (a claim cannot be proved), each says why,
/// and once Redis is back each live is started exactly once.
#[test]
fn with_redis_down_nothing_starts_and_the_lives_start_once_when_it_is_back() {
    let mut redis = RedisServer::start();
    let (a, b) = two_servers(&redis, 2, "");
    redis.stop();
    let lives: Vec<Requested> = (0..2).map(|i| a.request_live(&format!("TD {i}"))).collect();
    for env in [&a, &b] {
        let out = env.tick();
        assert_eq!(out.code, Some(1), "Redis down is an error\n{}", out.stderr);
        assert!(
            env.log_text().contains("cluster Redis"),
            "the log names the cluster Redis\n{}",
            env.log_text()
        );
    }
    assert_eq!(
        a.docker.count("up") + b.docker.count("up"),
        0,
        "a live started without a claim"
    );
    assert!(a.pod.broadcasters().is_empty());
    for r in &lives {
        assert_eq!(a.pod.live(r.live)["status"], 0);
    }
    redis.restart();
    for _ in 0..3 {
        tick_both(&a, &b);
    }
    let placed = placement(&a, &b, &redis, &lives, 2);
    assert_eq!(placed.len(), 2, "{placed:?}");
    assert_eq!(a.docker.count("up") + b.docker.count("up"), 2);
}

/// The claim is renewed just before Pod is told: a claim lost during a long `up` undoes
/// the start here without counting it as a failed attempt (three of those would close
/// a live that runs on the other server) and without an error mail.
#[test]
fn a_claim_lost_during_up_is_undone_quietly_and_not_counted() {
    let redis = RedisServer::start();
    let (a, _b) = two_servers(&redis, 2, "");
    let r = a.request_live("Amphi D");
    let key = format!("bbb-pod-live:claim:{}", r.live);
    a.docker.delay("up", Duration::from_secs(2));
    let child = a.spawn(&["run"]);
    wait_until("server 1's compose up", Duration::from_secs(30), || {
        a.docker.count("up") == 1
    });
    // Server 2 holds the claim now (server 1's ran out during the up).
    assert_eq!(
        redis
            .command(&["SET", &key, "2", "EX", &TTL.to_string()])
            .as_deref(),
        Some("+OK")
    );
    let out = a.wait(child);
    assert_eq!(out.code, Some(0), "not an error here\n{}", out.stderr);
    assert!(
        a.log_text().contains("another server claimed"),
        "{}",
        a.log_text()
    );
    assert_eq!(a.pod.live(r.live)["status"], 0, "server 1 did not tell Pod");
    assert!(!a.docker.running(&a.slot_dir(1)));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.base_dir().join("state.json")).unwrap())
            .unwrap();
    assert!(
        state["start_failures"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "counted as a failed attempt: {state}"
    );
    assert!(
        a.smtp
            .messages()
            .iter()
            .all(|m| !m.subject.contains("error")),
        "{:?}",
        a.smtp.messages()
    );
}

/// Two lives with the same meeting name started at once on two servers: the second
/// server finds the first one's broadcaster (same name, not yet known to Pod as
/// running) and must not take it over — each live keeps its own stream.
#[test]
fn two_lives_with_one_name_on_two_servers_get_two_broadcasters() {
    let redis = RedisServer::start();
    let (a, b) = two_servers(&redis, 1, "");
    let r1 = a.request_live("Cours");
    let r2 = a.request_live("Cours");
    a.docker.delay("up", Duration::from_secs(2));
    let first = a.spawn(&["run"]);
    wait_until("server 1's compose up", Duration::from_secs(30), || {
        a.docker.count("up") == 1
    });
    // Server 1 is inside `up` for live 1 (its broadcaster exists, Pod still shows the
    // live waiting); server 2 starts live 2 meanwhile.
    b.tick_ok();
    let out = a.wait(first);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let broadcasters = a.pod.broadcasters();
    assert_eq!(broadcasters.len(), 2, "{broadcasters:?}\n{}", b.log_text());
    for r in [&r1, &r2] {
        let live = a.pod.live(r.live);
        assert_eq!(live["status"], 1, "{live}");
        let id = live["broadcaster_id"].as_u64().unwrap();
        let bc = broadcasters
            .iter()
            .find(|x| x["id"].as_u64() == Some(id))
            .unwrap();
        let url = bc
            .get("broadcaster_url")
            .and_then(|u| u.as_str())
            .or_else(|| bc["url"].as_str())
            .unwrap();
        assert!(
            url.ends_with(&format!("-{}.m3u8", r.live)),
            "live {} streams to {url}",
            r.live
        );
    }
    let ids: Vec<_> = [&r1, &r2]
        .iter()
        .map(|r| a.pod.live(r.live)["broadcaster_id"].clone())
        .collect();
    assert_ne!(ids[0], ids[1], "two lives share one broadcaster");
}

/// "Why doesn't my live start?" with several servers: a live another
/// server claimed waits for it, and `--dry-run run`, `status` and `status --json` say
/// which server; once the claim runs out, this server starts it. With the cluster
/// Redis down, the dry run says the start would not happen, and why.
#[test]
fn a_live_claimed_by_another_server_waits_and_status_says_which() {
    let mut redis = RedisServer::start();
    let (a, _b) = two_servers(&redis, 2, "");
    let r = a.request_live("Amphi D");
    let key = format!("bbb-pod-live:claim:{}", r.live);
    // Server 2 claimed the live: it is starting it.
    assert_eq!(
        redis.command(&["SET", &key, "2", "EX", "300"]).as_deref(),
        Some("+OK")
    );
    let why = format!("live {} waits: claimed by server 2", r.live);

    let out = a.run(&["--dry-run", "run"]);
    out.assert_success();
    assert!(out.stdout.contains(&why), "{}", out.stdout);
    assert!(
        !out.stdout.contains(&format!("start live {}", r.live)),
        "{}",
        out.stdout
    );

    a.tick_ok();
    assert_eq!(a.docker.count("up"), 0, "server 1 started server 2's live");
    assert_eq!(
        redis.get(&key).as_deref(),
        Some("2"),
        "server 1 took or dropped server 2's claim"
    );
    let out = a.run(&["status"]);
    out.assert_success();
    assert!(out.stdout.contains(&why), "{}", out.stdout);
    let json = a.run(&["status", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["waiting"][0]["live"], r.live);
    assert_eq!(
        doc["waiting"][0]["reason"],
        serde_json::json!({"kind": "claimed_by_server", "server": 2})
    );

    // Server 2 went down and its claim ran out (simulated: deleted as expiry would).
    redis.command(&["DEL", &key]);
    a.tick_ok();
    assert_eq!(a.docker.count("up"), 1);
    assert_eq!(a.pod.live(r.live)["server"], "1/1");
    let out = a.run(&["status"]);
    assert!(
        out.stdout
            .contains("lives waiting, as of the last tick: none"),
        "{}",
        out.stdout
    );

    // The Redis down: the dry run does not promise a start it could not claim.
    let other = a.request_live("Amphi E");
    redis.stop();
    let out = a.run(&["--dry-run", "run"]);
    let line = format!("live {} would not start: the cluster Redis", other.live);
    assert!(out.stdout.contains(&line), "{}", out.stdout);
    assert!(
        !out.stdout.contains(&format!("start live {}", other.live)),
        "{}",
        out.stdout
    );
}
