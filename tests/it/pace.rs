//! A tick at the network's pace, with a light touch on Pod: which list
//! requests a tick sends and in how many round trips, on the Pod 2.8 flavour (the
//! `?status=` filter works) and on the 3.8 flavour (it is ignored, every row is
//! listed); a live of ours the filtered lists no longer show; Pod upgraded and
//! downgraded between ticks; pages at most `pod.max_concurrency` in flight; and a start whose
//! broadcaster POST and `docker compose up` run together, undone together.
//!
//! Round trips are counted by the fake Pod ([`FakePod::count_round_trips`]): it holds
//! every request until none has arrived for [`QUIET`], then answers the whole wave. A
//! request sent only after another's answer always lands in a later wave, so the counts
//! cannot be flattered by a fast machine; a slow one could only split a wave, never
//! merge two.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// Quiet period that closes a round trip (generous: a client sending requests together
/// takes microseconds between them).
pub(crate) const QUIET: Duration = Duration::from_millis(300);
/// Rows per page of the fake Pod (Pod's `PAGE_SIZE`).
pub(crate) const PAGE: usize = 12;

/// Whether `r` is a GET of the livestream list (any page, any filter).
pub(crate) fn is_list(r: &PodRequest) -> bool {
    r.method == "GET" && r.path == "/rest/bbb_livestream/"
}

/// `page=last` in [`list_requests`].
pub(crate) const LAST: u64 = u64::MAX;

/// The list requests of the last tick, as `(status filter, page)` sorted: `("", 3)` for
/// an unfiltered page 3, `("", LAST)` for `?page=last`.
pub(crate) fn list_requests(env: &TestEnv) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = env
        .pod
        .requests()
        .iter()
        .filter(|r| is_list(r))
        .map(|r| {
            let params = text::parse_query(&r.query);
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let page = get("page").map_or(1, |p| match p.as_str() {
                "last" => LAST,
                p => p.parse().unwrap(),
            });
            (get("status").unwrap_or_default(), page)
        })
        .collect();
    v.sort();
    v
}

/// Round trips taken by the list requests of the last counted tick.
pub(crate) fn list_round_trips(env: &TestEnv) -> usize {
    env.pod.round_trips(is_list)
}

/// One tick with round trips counted from scratch; must exit 0.
pub(crate) fn counted_tick(env: &TestEnv) -> RunOutput {
    env.pod.clear_requests();
    env.pod.count_round_trips(QUIET);
    env.tick_ok()
}

/// Makes the next tick read Pod's whole list: what the last one remembered is gone.
pub(crate) fn forget_pod_list(env: &TestEnv) {
    let _ = std::fs::remove_file(env.base_dir().join("pod-list.json"));
}

pub(crate) fn pages(rows: usize) -> u64 {
    rows.div_ceil(PAGE).max(1) as u64
}

fn filtered_first_pages() -> Vec<(String, u64)> {
    vec![("0".into(), 1), ("1".into(), 1)]
}

// ---------------------------------------------------------------------------
// The fake's counting, checked directly
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_fake_counts_requests_sent_together_as_one_round_trip_and_a_chain_as_several() {
    let pod = FakePod::start(PodOptions::default());
    pod.count_round_trips(QUIET);
    let client = reqwest::Client::new();
    let get = |path: &str| {
        client
            .get(format!("{}{path}", pod.url()))
            .header("Authorization", format!("Token {}", pod.token()))
            .send()
    };
    // Three together, then two one after the other.
    let (a, b, c) = tokio::join!(
        get("/rest/bbb_livestream/?status=0"),
        get("/rest/bbb_livestream/?status=1"),
        get("/rest/broadcasters/"),
    );
    for r in [a, b, c] {
        assert_eq!(r.unwrap().status(), 200);
    }
    assert_eq!(get("/rest/buildings/").await.unwrap().status(), 200);
    assert_eq!(get("/rest/users/").await.unwrap().status(), 200);
    let waves: Vec<Option<usize>> = pod.requests().iter().map(|r| r.wave).collect();
    assert_eq!(
        waves,
        [Some(1), Some(1), Some(1), Some(2), Some(3)],
        "{:?}",
        pod.requests()
    );
    assert_eq!(pod.round_trips(|_| true), 3);
    assert_eq!(pod.round_trips(|r| r.path == "/rest/bbb_livestream/"), 1);
    assert_eq!(pod.max_in_flight(), 3);
}

// ---------------------------------------------------------------------------
// Point 1: the filter where it works, every page where it does not
// ---------------------------------------------------------------------------

#[test]
fn pod_2_8_answers_waiting_and_running_lives_in_one_round_trip_whatever_the_history() {
    for history in [0, 300] {
        let env = TestEnv::builder().pod_version(PodVersion::V2_8).build();
        env.add_history(history);
        // The first tick of a fresh base_dir is not the one cron repeats all day.
        env.tick_ok();
        counted_tick(&env);
        assert_eq!(
            list_requests(&env),
            filtered_first_pages(),
            "history {history}: {:?}",
            env.pod.requests()
        );
        assert_eq!(env.pod.requests().len(), 2, "history {history}: idle tick");
        assert_eq!(list_round_trips(&env), 1, "history {history}");
        assert_eq!(env.pod.max_in_flight(), 2, "history {history}");
        assert_eq!(env.bbb.requests(), 0, "history {history}: BBB asked");
    }
}

#[test]
fn pod_2_8_filtered_lists_longer_than_a_page_take_one_more_round_trip() {
    // 30 lives running on server 2 (3 pages of status 1) among 300 old ones.
    let env = TestEnv::builder()
        .pod_version(PodVersion::V2_8)
        .count(2)
        .build();
    env.add_history(150);
    let m = env
        .pod
        .add_meeting("m-other", "feedbeef-1700000000000", "Ailleurs");
    for i in 0..30 {
        let mut spec = LiveSpec::waiting(m);
        spec.status = 1;
        spec.server = Some(format!("2/{}", 1 + i % 4));
        env.pod.add_live(spec);
    }
    env.add_history(150);
    env.tick_ok();
    counted_tick(&env);
    assert_eq!(
        list_requests(&env),
        [
            ("0".to_string(), 1),
            ("1".to_string(), 1),
            ("1".to_string(), 2),
            ("1".to_string(), 3)
        ],
        "{:?}",
        env.pod.requests()
    );
    assert_eq!(list_round_trips(&env), 2);
    assert!(env.pod.writes().is_empty(), "{:?}", env.pod.writes());
}

#[test]
fn pod_3_8_ignores_the_filter_every_page_is_read_with_no_extra_round_trip() {
    let env = TestEnv::builder().pod_version(PodVersion::V3_8).build();
    env.add_history(100);
    // Waiting behind 100 old lives: on the last page of the whole list.
    let r = env.request_live("Après cent");
    counted_tick(&env);
    assert_eq!(env.live_status(r.live), 1, "the live on the last page");
    let all = pages(101);
    let mut expected = filtered_first_pages();
    let rest: Vec<(String, u64)> = env
        .pod
        .requests()
        .iter()
        .filter(|q| is_list(q))
        .filter_map(|q| {
            let params = text::parse_query(&q.query);
            let page = params.iter().find(|(n, _)| n == "page")?.1.parse().ok()?;
            let filter = params
                .iter()
                .find(|(n, _)| n == "status")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            Some((filter, page))
        })
        .filter(|(_, page)| *page > 1)
        .collect();
    // Pages 2.. of one list only (whichever filter it kept), each once.
    assert_eq!(rest.len() as u64, all - 1, "{rest:?}");
    let mut seen: Vec<u64> = rest.iter().map(|(_, p)| *p).collect();
    seen.sort();
    assert_eq!(seen, (2..=all).collect::<Vec<_>>(), "{rest:?}");
    expected.extend(rest);
    expected.sort();
    assert_eq!(list_requests(&env), expected);
    // The first page of either list was page 1 of everything: reused, not read again.
    assert_eq!(list_round_trips(&env), 2, "{:?}", env.pod.requests());
    // No old live was touched.
    env.assert_only_live_written(r.live);
}

#[test]
fn a_live_of_ours_closed_by_hand_is_read_by_its_id_when_the_filter_hides_it() {
    let env = TestEnv::builder().pod_version(PodVersion::V2_8).build();
    env.add_history(40);
    let r = env.request_live("Fermé à la main");
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1);
    let by_id = format!("/rest/bbb_livestream/{}/", r.live);
    // Listed at status 1: no read by id.
    counted_tick(&env);
    assert_eq!(list_requests(&env), filtered_first_pages());
    assert!(
        env.pod.requests().iter().all(|q| q.path != by_id),
        "{:?}",
        env.pod.requests()
    );
    // Closed by hand (status 2, no end date): in neither filtered list.
    env.pod.set_live(r.live, json!({"status": 2}));
    assert!(env.pod.live(r.live)["end_date"].is_null());
    counted_tick(&env);
    let requests = env.pod.requests();
    let first = requests
        .iter()
        .position(|q| q.method == "GET" && q.path == by_id)
        .unwrap_or_else(|| panic!("live {} never read by its id: {requests:?}", r.live));
    assert!(
        requests[first].wave > requests.iter().filter(|q| is_list(q)).find_map(|q| q.wave),
        "read by id before the lists were answered: {requests:?}"
    );
    // Seen as closed in Pod (not as deleted): stopped, and its end date set.
    let log = env.log_text();
    assert!(log.contains("the live was closed in Pod"), "{log}");
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert_eq!(env.live_status(r.live), 2);
    assert!(
        !env.pod.live(r.live)["end_date"].is_null(),
        "{}",
        env.pod.live(r.live)
    );
    // Free again: the next tick reads the two lists only.
    counted_tick(&env);
    assert_eq!(list_requests(&env), filtered_first_pages());
    assert_eq!(env.pod.requests().len(), 2, "{:?}", env.pod.requests());
}

#[test]
fn pod_upgraded_then_downgraded_nothing_stops_and_the_filter_is_used_again() {
    let env = TestEnv::builder().pod_version(PodVersion::V2_8).build();
    env.add_history(100);
    let running = env.request_live("Déjà en cours");
    env.tick_ok();
    assert_eq!(env.live_status(running.live), 1);
    counted_tick(&env);
    assert_eq!(list_requests(&env), filtered_first_pages());

    // Upgraded to 3.x between two ticks: the filter is now ignored.
    env.pod.set_version(PodVersion::V3_8);
    let waiting = env.request_live("Après la mise à jour");
    counted_tick(&env);
    let all = pages(102);
    assert_eq!(
        list_requests(&env).len() as u64,
        all + 1,
        "{:?}",
        list_requests(&env)
    );
    assert_eq!(list_round_trips(&env), 2);
    assert_eq!(
        env.live_status(waiting.live),
        1,
        "the live on the last page"
    );
    assert_eq!(env.live_status(running.live), 1);
    assert_eq!(env.docker.count("down"), 0, "nothing stopped");

    // And back (a restored backup). Until the next whole read the tick reads the end
    // of the unfiltered list, which 2.8 answers as 3.8 does (no filter asked)...
    env.pod.set_version(PodVersion::V2_8);
    counted_tick(&env);
    assert_eq!(list_requests(&env), [("".to_string(), LAST)]);
    assert_eq!(env.docker.count("down"), 0, "nothing stopped");
    // ...then the whole read finds the filter working: two requests again, nothing
    // stopped.
    forget_pod_list(&env);
    counted_tick(&env);
    assert_eq!(list_requests(&env), filtered_first_pages());
    assert_eq!(list_round_trips(&env), 1);
    assert_eq!(env.docker.count("down"), 0, "nothing stopped");
    assert_eq!(env.live_status(running.live), 1);
    assert_eq!(env.live_status(waiting.live), 1);
}

// ---------------------------------------------------------------------------
// Point 2: every page in one wave, at most pod.max_concurrency in flight
// ---------------------------------------------------------------------------

#[test]
fn pages_after_the_first_go_together_at_most_max_concurrency_in_flight() {
    let rows = 115; // 10 pages
    let all = pages(rows);
    // Default (16): pages 2..10 in one wave.
    let env = TestEnv::builder().build();
    env.add_history(rows);
    env.tick_ok();
    forget_pod_list(&env);
    counted_tick(&env);
    assert_eq!(list_requests(&env).len() as u64, all + 1);
    assert_eq!(list_round_trips(&env), 2);
    assert_eq!(env.pod.max_in_flight(), (all - 1) as usize);

    // pod.max_concurrency = 4: 9 pages in waves of 4, 4 and 1.
    let env = TestEnv::builder()
        .extra_toml("[pod]\nmax_concurrency = 4")
        .build();
    env.add_history(rows);
    env.tick_ok();
    forget_pod_list(&env);
    counted_tick(&env);
    assert_eq!(list_requests(&env).len() as u64, all + 1);
    assert_eq!(env.pod.max_in_flight(), 4);
    assert_eq!(list_round_trips(&env), 1 + (all as usize - 1).div_ceil(4));
}

#[test]
fn max_concurrency_one_reads_page_after_page_and_zero_is_refused() {
    let env = TestEnv::builder()
        .extra_toml("[pod]\nmax_concurrency = 1")
        .build();
    env.add_history(40);
    env.tick_ok();
    forget_pod_list(&env);
    counted_tick(&env);
    assert_eq!(env.pod.max_in_flight(), 1);
    assert_eq!(list_requests(&env).len() as u64, pages(40) + 1);
    assert_eq!(list_round_trips(&env) as u64, pages(40) + 1);

    env.pod.clear_requests();
    env.rewrite_config(|t| t.replace("max_concurrency = 1", "max_concurrency = 0"));
    let out = env.tick();
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("max_concurrency"), "{}", out.stderr);
    assert!(env.pod.requests().is_empty());
}

// ---------------------------------------------------------------------------
// Point 3: the start chain
// ---------------------------------------------------------------------------

/// Timeouts far above the tests' waits: a held step is released by the test.
fn patient() -> TestEnvBuilder {
    TestEnv::builder()
        .slots(1)
        .extra_toml("[pod]\ntimeout_secs = 120\n[docker]\ntimeout_secs = 120")
}

#[test]
fn broadcaster_post_and_compose_up_are_in_flight_together() {
    let env = patient().build();
    let r = env.request_live("Les deux à la fois");
    let gate = env.pod.hold_next("POST", "/rest/broadcasters/", 1);
    env.docker.hold("up", true);
    let child = env.spawn(&["run"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let both = loop {
        let posted = env
            .pod
            .requests()
            .iter()
            .any(|q| q.method == "POST" && q.path == "/rest/broadcasters/");
        let up = env.docker.count("up") > 0;
        if posted && up {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let the tick finish either way, then judge.
    gate.release();
    env.docker.hold("up", false);
    let out = env.wait(child);
    assert!(
        both,
        "the POST and the up were never in flight together: Pod saw {:?}, docker {:?}\n{}",
        env.pod.requests(),
        env.docker.calls(),
        env.log_text()
    );
    out.assert_success();
    assert_eq!(env.live_status(r.live), 1);
    assert_eq!(env.pod.broadcasters().len(), 1);
    assert!(env.docker.running(&env.slot_dir(1)));
    // Pod is told last, once both exist.
    let writes: Vec<String> = env
        .pod
        .writes()
        .iter()
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    assert_eq!(
        writes,
        [
            "POST /rest/broadcasters/".to_string(),
            format!("PATCH /rest/bbb_livestream/{}/", r.live)
        ]
    );
}

#[test]
fn a_refused_broadcaster_takes_the_container_down_too() {
    let env = patient().build();
    let r = env.request_live("Diffuseur refusé");
    env.pod.fail_next(
        "POST",
        "/rest/broadcasters/",
        Fault::Status(
            400,
            json!({"building": ["Lien non valide : l'objet n'existe pas."]}).to_string(),
        ),
        1,
    );
    let out = env.tick();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    // The up ran beside the POST, so the undo takes it down.
    assert_eq!(env.docker.subcommands_in(&env.slot_dir(1)), ["up", "down"]);
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert!(env.pod.broadcasters().is_empty());
    assert_eq!(env.live_status(r.live), 0);
    assert!(env.pod.live(r.live)["server"].is_null());
    // Retried next tick, once.
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1);
    assert_eq!(env.pod.broadcasters().len(), 1);
    assert!(env.docker.running(&env.slot_dir(1)));
}

#[test]
fn a_failed_up_deletes_the_broadcaster_too() {
    let env = patient().build();
    let r = env.request_live("Conteneur refusé");
    env.docker.fail_up(1);
    let out = env.tick();
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        env.pod.broadcasters().is_empty(),
        "{:?}",
        env.pod.broadcasters()
    );
    assert!(
        env.pod
            .writes()
            .iter()
            .any(|w| w.method == "DELETE" && w.path.starts_with("/rest/broadcasters/")),
        "{:?}",
        env.pod.writes()
    );
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert_eq!(env.live_status(r.live), 0);
    // Retried next tick, once.
    env.tick_ok();
    assert_eq!(env.live_status(r.live), 1);
    assert_eq!(env.pod.broadcasters().len(), 1);
    assert!(env.docker.running(&env.slot_dir(1)));
}
