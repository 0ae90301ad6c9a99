//! A tick's cost on Pod does not grow with Pod's history (issue 23), on the Pod 3.8
//! flavour (`?status=` ignored, the list ordered by `start_date`, 12 per page): after a
//! whole read, an idle tick asks the last page and each live running here on an older
//! page, whatever the history; a busy one adds the pages a higher `count` brings. And
//! nothing is seen later than with a whole read every tick: a live deleted, a row
//! closed by hand, a waiting live on an old page, two servers, Pod restored from a
//! backup, a row moved, a memory too old or unreadable.
//!
//! Requests are counted by the fake Pod, never timed.

use serde_json::{Value, json};

use crate::pace::{LAST, counted_tick, forget_pod_list, is_list, list_requests};
use crate::support::*;

/// The lives read by id in the last counted tick, sorted.
fn by_id(env: &TestEnv) -> Vec<u64> {
    let mut ids: Vec<u64> = env
        .pod
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .filter_map(|r| r.path.strip_prefix("/rest/bbb_livestream/"))
        .filter_map(|rest| rest.strip_suffix('/'))
        .filter_map(|id| id.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

/// Whether the last counted tick read the whole list (which starts with the first page
/// of `?status=0`).
fn read_whole(env: &TestEnv) -> bool {
    list_requests(env).contains(&("0".to_string(), 1))
}

/// Whether the last counted tick read only the end of the list: `?page=last`, and
/// the pages before it it needed, no first page.
fn read_end(env: &TestEnv) -> bool {
    let lists = list_requests(env);
    lists.contains(&(String::new(), LAST)) && lists.iter().all(|(filter, _)| filter.is_empty())
}

fn memory_file(env: &TestEnv) -> std::path::PathBuf {
    env.base_dir().join("pod-list.json")
}

/// One counted tick ([`counted_tick`]) with the last whole read made just now: a
/// whole read is also due in this server's own minute of every ten (`memory.rs`, unit
/// tested there), which a slow run could otherwise reach.
fn counted(env: &TestEnv) -> RunOutput {
    let path = memory_file(env);
    if let Ok(text) = std::fs::read(&path) {
        let mut memory: Value = serde_json::from_slice(&text).unwrap();
        memory["full_read_at"] = json!(chrono::Utc::now().to_rfc3339());
        std::fs::write(&path, memory.to_string()).unwrap();
    }
    counted_tick(env)
}

fn pod_requests(env: &TestEnv) -> Vec<String> {
    env.pod
        .requests()
        .iter()
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect()
}

// ---------------------------------------------------------------------------
// What a tick costs
// ---------------------------------------------------------------------------

#[test]
fn an_idle_tick_asks_the_last_page_and_each_live_running_here_whatever_the_history() {
    for history in [30, 300] {
        let env = TestEnv::builder().slots(1).build();
        let ours = env.request_live("Amphi qui tourne");
        env.tick_ok();
        assert_eq!(env.live_status(ours.live), 1);
        // A second request waits for the slot; then the history buries both.
        let waits = env.request_live("En attente d'un créneau");
        env.tick_ok();
        env.add_history(history);
        env.tick_ok();
        for _ in 0..3 {
            counted(&env);
            assert_eq!(
                list_requests(&env),
                [(String::new(), LAST)],
                "history {history}: {:?}",
                pod_requests(&env)
            );
            // At most 2 + one per live running here: the last page, and ours.
            assert_eq!(by_id(&env), [ours.live], "{:?}", pod_requests(&env));
            assert_eq!(env.pod.requests().len(), 2, "{:?}", pod_requests(&env));
            assert_eq!(env.pod.round_trips(|_| true), 1, "history {history}");
        }
        assert_eq!(env.live_status(ours.live), 1);
        assert_eq!(env.live_status(waits.live), 0);
        // Not read (no slot could take it), still listed waiting.
        let out = env.run(&["status"]);
        let why = format!(
            "live {} waits: every slot of this server is busy",
            waits.live
        );
        assert!(out.stdout.contains(&why), "{}", out.stdout);
    }
}

#[test]
fn a_busy_tick_reads_the_end_and_the_pages_a_higher_count_adds_not_the_history() {
    let env = TestEnv::builder().slots(5).build();
    // 298 rows: the last page (25) holds 10.
    env.add_history(298);
    env.tick_ok();
    let lives: Vec<u64> = (0..5)
        .map(|i| env.request_live(&format!("Amphi {i}")).live)
        .collect();
    counted(&env);
    for &live in &lives {
        assert_eq!(env.live_status(live), 1, "live {live}");
    }
    // 303 rows: page 25 (where the remembered end was) and the last, 26.
    assert_eq!(
        list_requests(&env),
        [(String::new(), 25), (String::new(), LAST)],
        "{:?}",
        pod_requests(&env)
    );
    assert_eq!(env.pod.round_trips(is_list), 2);
    // Idle again: the last page (lives 3 to 5) and, by id, the two on page 25.
    counted(&env);
    assert_eq!(list_requests(&env), [(String::new(), LAST)]);
    assert_eq!(by_id(&env), lives[..2]);
    assert!(env.pod.requests().len() <= 2 + lives.len());
    assert!(env.pod.writes().is_empty(), "{:?}", env.pod.writes());
}

// ---------------------------------------------------------------------------
// Nothing seen later than with a whole read every tick
// ---------------------------------------------------------------------------

#[test]
fn a_deleted_row_makes_the_next_tick_read_the_whole_list_and_a_deleted_live_stops() {
    let env = TestEnv::builder().slots(2).build();
    let ours = env.request_live("Supprimé ensuite");
    env.tick_ok();
    env.add_history(40);
    env.tick_ok();
    // An old closed row deleted: `count` went down, nothing is trusted.
    let old = env.pod.live_ids()[5];
    env.pod.delete_live(old);
    counted(&env);
    assert!(read_whole(&env), "{:?}", pod_requests(&env));
    assert_eq!(env.docker.count("down"), 0, "nothing stopped");
    counted(&env);
    assert!(read_end(&env), "{:?}", pod_requests(&env));
    // Ours deleted: stopped on the next tick, as a whole read would.
    env.pod.delete_live(ours.live);
    counted(&env);
    assert!(!env.docker.running(&env.slot_dir(1)));
    let log = env.log_text();
    assert!(log.contains("the live was deleted from Pod"), "{log}");
}

#[test]
fn a_live_of_ours_closed_by_hand_on_an_old_page_stops_on_the_next_tick() {
    let env = TestEnv::builder().build();
    let ours = env.request_live("Fermé à la main");
    env.tick_ok();
    env.add_history(40);
    env.tick_ok();
    env.pod.set_live(ours.live, json!({"status": 2}));
    counted(&env);
    // Read by id beside the last page: no whole read needed.
    assert!(read_end(&env), "{:?}", pod_requests(&env));
    assert!(by_id(&env).contains(&ours.live));
    let log = env.log_text();
    assert!(log.contains("the live was closed in Pod"), "{log}");
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert_eq!(env.live_status(ours.live), 2);
    assert!(!env.pod.live(ours.live)["end_date"].is_null());
}

#[test]
fn a_waiting_live_on_an_old_page_starts_on_the_tick_after_its_slot_frees() {
    let env = TestEnv::builder().slots(1).build();
    let first = env.request_live("Premier");
    env.tick_ok();
    let second = env.request_live("Second");
    env.tick_ok();
    env.add_history(30);
    env.tick_ok();
    counted(&env);
    assert!(read_end(&env));
    assert!(!by_id(&env).contains(&second.live), "no slot could take it");
    // The first closed by hand: stopped this tick; its slot is free for the next,
    // which reads the second by id and starts it.
    env.pod.set_live(first.live, json!({"status": 2}));
    counted(&env);
    assert!(!env.docker.running(&env.slot_dir(1)));
    assert_eq!(env.live_status(second.live), 0);
    counted(&env);
    assert!(read_end(&env), "{:?}", pod_requests(&env));
    assert!(by_id(&env).contains(&second.live));
    assert_eq!(env.live_status(second.live), 1);
    assert!(env.docker.running(&env.slot_dir(1)));
}

#[test]
fn two_servers_a_second_request_for_a_session_streamed_elsewhere_is_closed_at_once() {
    // Servers 1 and 2 of 60 without [cluster]: server 2's tick waits 1 s, not 30.
    let a = TestEnv::builder()
        .slots(1)
        .server_number(1)
        .count(60)
        .build();
    let b = TestEnv::builder()
        .slots(1)
        .server_number(2)
        .count(60)
        .build_beside(&a);
    let first = a.request_live("Amphi partagé");
    a.tick_ok();
    b.tick_ok();
    assert_eq!(a.pod.live(first.live)["server"], "1/1");
    a.add_history(30);
    a.tick_ok();
    b.tick_ok();
    // A second request for the session server 1 streams, on the last page.
    let again = a.pod.add_live(LiveSpec::waiting(first.meeting));
    counted(&b);
    assert!(read_end(&b), "{:?}", pod_requests(&b));
    // Server 2 reads the live it remembers streaming that session, as it is now.
    assert!(by_id(&b).contains(&first.live), "{:?}", pod_requests(&b));
    assert_eq!(b.live_status(again), 2, "closed as a duplicate");
    assert_eq!(a.live_status(first.live), 1);
    assert!(!b.docker.running(&b.slot_dir(1)));
    assert!(a.docker.running(&a.slot_dir(1)));
}

#[test]
fn pod_restored_from_a_backup_is_seen_on_the_next_tick_even_when_its_ids_come_back() {
    let env = TestEnv::builder().slots(2).build();
    env.add_history(30);
    let kept = env.request_live("Avant la sauvegarde");
    env.tick_ok();
    let backup = env.pod.backup();
    let lost = env.request_live("Après la sauvegarde");
    env.tick_ok();
    assert_eq!(env.live_status(lost.live), 1);

    // Restored: `count` went down; the lost live's streamer stops as a deleted one's.
    env.pod.restore(&backup);
    counted(&env);
    assert!(read_whole(&env), "{:?}", pod_requests(&env));
    assert_eq!(env.docker.count("down"), 1);
    assert_eq!(env.live_status(kept.live), 1);

    // Again, and a request made after the restore before the next tick: the restored
    // sequence gives it the lost live's id, at the same place, with another start_date.
    let lost = env.request_live("Après la sauvegarde, encore");
    env.tick_ok();
    assert_eq!(env.live_status(lost.live), 1);
    env.pod.restore(&backup);
    let later = env.request_live("Après la restauration");
    assert_eq!(later.live, lost.live, "the id comes back");
    counted(&env);
    assert!(read_whole(&env), "{:?}", pod_requests(&env));
    let log = env.log_text();
    assert!(
        log.contains("Pod no longer shows the live on this slot"),
        "{log}"
    );
    counted(&env);
    assert_eq!(env.live_status(later.live), 1, "the new request starts");
    assert_eq!(env.live_status(kept.live), 1);
}

#[test]
fn rows_moved_before_the_remembered_end_make_the_tick_read_the_whole_list() {
    let env = TestEnv::builder().build();
    env.add_history(30);
    env.tick_ok();
    // An admin moves the last row's start_date back: same count, another end.
    let ids = env.pod.live_ids();
    let early = env.pod.live(ids[2])["start_date"].clone();
    env.pod.set_live(ids[29], json!({ "start_date": early }));
    counted(&env);
    assert!(read_whole(&env), "{:?}", pod_requests(&env));
    counted(&env);
    assert!(read_end(&env), "{:?}", pod_requests(&env));
}

#[test]
fn a_memory_too_old_missing_or_unreadable_means_a_whole_read() {
    let env = TestEnv::builder().build();
    env.add_history(30);
    env.tick_ok();
    counted(&env);
    assert!(read_end(&env));
    // Eleven minutes old.
    let path = memory_file(&env);
    let mut memory: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let old = chrono::Utc::now() - chrono::TimeDelta::minutes(11);
    memory["full_read_at"] = json!(old.to_rfc3339());
    std::fs::write(&path, memory.to_string()).unwrap();
    counted_tick(&env);
    assert!(read_whole(&env), "{:?}", pod_requests(&env));
    // Unreadable.
    std::fs::write(&path, b"{\"pod\": ").unwrap();
    counted_tick(&env);
    assert!(read_whole(&env), "{:?}", pod_requests(&env));
    // Missing.
    forget_pod_list(&env);
    counted_tick(&env);
    assert!(read_whole(&env), "{:?}", pod_requests(&env));
    counted(&env);
    assert!(read_end(&env));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn on_pod_2_8_the_filtered_lists_are_read_and_nothing_is_remembered() {
    let env = TestEnv::builder().pod_version(PodVersion::V2_8).build();
    env.add_history(300);
    let ours = env.request_live("Sur Pod 2.8");
    env.tick_ok();
    env.add_history(30);
    counted(&env);
    // Two requests, whatever the history: the bound already holds.
    assert_eq!(
        list_requests(&env),
        [("0".to_string(), 1), ("1".to_string(), 1)]
    );
    assert_eq!(env.pod.requests().len(), 2);
    assert_eq!(env.live_status(ours.live), 1);
    assert!(!memory_file(&env).exists());
}

#[test]
fn an_unreadable_end_of_the_list_decides_nothing() {
    let env = TestEnv::builder().slots(2).build();
    let running = env.request_live("En cours");
    env.tick_ok();
    env.add_history(30);
    env.tick_ok();
    // The meeting ends and a live waits: a readable list would stop one, start the other.
    env.bbb.end_meeting(&running.meeting_id);
    let waiting = env.request_live("En attente");
    for fault in [
        Fault::Html500,
        Fault::Garbage("{\"count\": 32, \"resu".into()),
        Fault::Status(404, json!({"detail": "Page non valide."}).to_string()),
    ] {
        env.pod
            .fail_next("GET", "/rest/bbb_livestream/?page=last", fault, 1);
        let out = env.tick();
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(out.stderr.contains("page=last"), "{}", out.stderr);
        assert_eq!(env.docker.count("down"), 0, "a live was stopped");
        assert_eq!(env.live_status(running.live), 1);
        assert_eq!(env.live_status(waiting.live), 0);
    }
    // Readable again: stopped and started as they should be.
    env.tick_ok();
    assert_eq!(env.live_status(running.live), 2);
    assert_eq!(env.live_status(waiting.live), 1);
}
