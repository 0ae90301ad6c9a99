//! A day of chaos, seeded: random lives and random faults, the real binary ticking
//! through them, invariants checked after every tick and convergence once the faults
//! stop.
//!
//! The world: a few recurring BBB rooms (Moodle reuses one `meetingID` for every
//! session; Pod makes one meeting row per session) whose sessions are created late, run
//! and end; teachers asking for lives (more than the slots, some twice for one session,
//! some before BBB has the session); admins closing or deleting rows. The faults, each
//! for 1–3 ticks: Pod answering 500, garbage or nothing, Pod writes whose answer is cut,
//! lost or reset, BBB down or answering garbage, `up` failing or hanging, streamers
//! dying, the binary killed (SIGKILL) in the middle of a tick, the recordings share
//! gone, SMTP down.
//!
//! After every tick: exit 0 or 1 and no panic; the tick bounded; one streamer per BBB
//! session and none in a session other than its live's (after a tick that could read
//! Pod and BBB); no `down` of a live whose own session runs unless an admin asked; one
//! broadcaster per live; every delivered recording whole, once, and holding only the
//! session it is named after. Once the faults stop and the sessions end: every live
//! closed in Pod, no container, no slot state, no broadcaster, every recording
//! delivered or kept and listed by `recordings list`, no secret anywhere.
//!
//! A failure prints its seed, its tick and the command that replays it:
//! `SOAK_SEED=<seed> cargo test --test it soak::replay -- --nocapture`.
//! `SOAK_SEEDS=<n> cargo test --release --test it soak::random -- --nocapture` runs `n`
//! random seeds (README, Development).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::redis::RedisServer;
use crate::support::*;

/// Ticks with faults, then at most this many calm ticks to converge.
const CHAOS_TICKS: usize = 36;
const CALM_TICKS: usize = 8;
/// No tick may take longer (timeouts are 1–2 s here; a tick waits on a few of them).
const TICK_BOUND: Duration = Duration::from_secs(45);

#[test]
fn seed_1_one_server() {
    soak(1);
}

/// Found a broadcaster left in Pod for good: its DELETE answered 200 with a cut body.
#[test]
fn seed_2_one_slot() {
    soak(2);
}

#[test]
fn seed_3_two_servers() {
    soak(3);
}

#[test]
fn seed_4_one_slot() {
    soak(4);
}

/// `SOAK_SEED=<n>`: replays one seed (nothing to do without it).
#[test]
fn replay() {
    if let Some(seed) = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        soak(seed);
    }
}

/// `SOAK_SEEDS=<n>`: `n` random seeds, one after the other (nothing to do without it).
#[test]
fn random() {
    let n: usize = std::env::var("SOAK_SEEDS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    for _ in 0..n {
        let seed = fastrand::u64(..);
        eprintln!("soak: seed {seed}");
        soak(seed);
    }
}

thread_local! {
    /// The tick being run, for the failure message.
    static TICK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs one seed; on failure, says how to replay it.
fn soak(seed: u64) {
    let result = std::panic::catch_unwind(|| Soak::new(seed).run());
    if let Err(panic) = result {
        let tick = TICK.with(std::cell::Cell::get);
        eprintln!(
            "\nsoak failed: seed {seed}, tick {tick}\nreplay: SOAK_SEED={seed} cargo test --test it soak::replay -- --nocapture\n"
        );
        std::panic::resume_unwind(panic);
    }
}

/// Where a session is in BBB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bbb {
    /// Pod has its meeting row; BBB does not know it yet (a class that begins late).
    NotYet,
    /// Created, nobody joined.
    Created,
    Running,
    /// Ended, still listed.
    Ended,
    /// Ended and forgotten by BBB.
    Forgotten,
    /// Never created (its room opened another session first).
    Never,
}

impl Bbb {
    /// Created or running: a streamer waiting on its room is in it.
    fn open(self) -> bool {
        matches!(self, Bbb::Created | Bbb::Running)
    }
}

struct Room {
    meeting_id: String,
    stem: String,
    name: String,
}

struct Session {
    room: usize,
    internal: String,
    /// Its meeting row in Pod.
    pk: u64,
    bbb: Bbb,
}

/// What is failing, and for how many more ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Pod500,
    PodGarbageList,
    BbbDown(u8),
    UpHangs,
    ShareDown,
    SmtpDown,
}

/// A fault that makes a tick unable to judge (Pod or BBB unreadable, docker failing):
/// the per-tick session checks wait for a clean tick.
fn disturbing(f: Fault) -> bool {
    !matches!(f, Fault::ShareDown | Fault::SmtpDown)
}

/// The state of a slot before a tick, for the "no `down` of a running session" check.
struct SlotBefore {
    live: u64,
    session: Option<String>,
    downs: usize,
}

struct Soak {
    seed: u64,
    rng: fastrand::Rng,
    envs: Vec<TestEnv>,
    slots: u32,
    _redis: Option<RedisServer>,
    rooms: Vec<Room>,
    sessions: Vec<Session>,
    /// Live → its session.
    lives: BTreeMap<u64, usize>,
    /// Lives an admin closed or deleted (a stop they asked for).
    admin: BTreeSet<u64>,
    /// Session ids count up (BBB's internal ids end with their creation time in ms).
    clock_ms: u64,
    faults: Vec<(Fault, usize)>,
    /// This tick met a one-shot fault (a cut write, a kill, a dying streamer...).
    disturbed: bool,
    /// Each mkv part (its unique id) → the sessions its streamer was in.
    parts: HashMap<String, BTreeSet<String>>,
    /// Delivered files and their sizes: never changed, never removed.
    delivered: HashMap<PathBuf, u64>,
    tick: usize,
}

impl Soak {
    fn new(seed: u64) -> Soak {
        let mut rng = fastrand::Rng::with_seed(seed);
        let two = seed.is_multiple_of(3) && RedisServer::available();
        let slots = rng.u32(1..=2);
        let confirmations = rng.u32(1..=3);
        let redis = two.then(RedisServer::start);
        let extra = |number: u32| {
            let mut t = String::from(
                "[pod]\ntimeout_secs = 1\n[docker]\ntimeout_secs = 2\n[mail]\ntimeout_secs = 1\n",
            );
            if let Some(r) = &redis {
                t.push_str(&format!(
                    "[cluster]\nredis_url = \"{}\"\nclaim_ttl_secs = 30\n",
                    r.url()
                ));
            }
            let _ = number;
            t
        };
        let count = if two { 2 } else { 1 };
        let first = TestEnv::builder()
            .slots(slots)
            .count(count)
            .server_number(1)
            .end_confirmations(confirmations)
            .extra_toml(&extra(1))
            .build();
        let mut envs = vec![first];
        if two {
            let second = TestEnv::builder()
                .slots(slots)
                .count(count)
                .server_number(2)
                .end_confirmations(confirmations)
                .extra_toml(&extra(2))
                .build_beside(&envs[0]);
            envs.push(second);
        }
        let rooms = (0..4)
            .map(|i| {
                let stem = format!("{:040x}", seed.wrapping_mul(7919).wrapping_add(i));
                Room {
                    meeting_id: format!("moodle-room-{seed}-{i}"),
                    stem,
                    name: format!("Amphi {i} – cours récurrent"),
                }
            })
            .collect();
        eprintln!(
            "soak seed {seed}: {count} server(s), {slots} slot(s) each, end_confirmations {confirmations}"
        );
        Soak {
            seed,
            rng,
            envs,
            slots,
            _redis: redis,
            rooms,
            sessions: Vec::new(),
            lives: BTreeMap::new(),
            admin: BTreeSet::new(),
            clock_ms: 1_772_000_000_000,
            faults: Vec::new(),
            disturbed: false,
            parts: HashMap::new(),
            delivered: HashMap::new(),
            tick: 0,
        }
    }

    fn pod(&self) -> &FakePod {
        &self.envs[0].pod
    }

    fn bbb(&self) -> &FakeBbb {
        &self.envs[0].bbb
    }

    fn run(mut self) {
        for _ in 0..CHAOS_TICKS {
            self.tick += 1;
            TICK.with(|t| t.set(self.tick));
            self.disturbed = false;
            self.life();
            self.start_faults();
            self.observe();
            self.tick_all();
            self.end_faults();
        }
        self.calm();
    }

    // -----------------------------------------------------------------------
    // The world between two ticks
    // -----------------------------------------------------------------------

    /// Classes begin (some late), run and end; teachers ask for lives; admins act.
    fn life(&mut self) {
        for room in 0..self.rooms.len() {
            let current = self.current(room);
            match current.map(|s| self.sessions[s].bbb) {
                None if self.rng.u8(..100) < 35 => self.open_session(room),
                Some(Bbb::NotYet) if self.rng.bool() => self.set_bbb(current, Bbb::Created),
                Some(Bbb::Created) if self.rng.u8(..100) < 60 => {
                    self.set_bbb(current, Bbb::Running)
                }
                Some(Bbb::Running) if self.rng.u8(..100) < 20 => self.set_bbb(current, Bbb::Ended),
                Some(Bbb::Ended) if self.rng.u8(..100) < 30 => {
                    self.set_bbb(current, Bbb::Forgotten)
                }
                _ => {}
            }
        }
        // A room reused right away: its ended session's next one begins at once.
        if self.rng.u8(..100) < 15
            && let Some(room) = (0..self.rooms.len()).find(|&r| {
                self.current(r)
                    .is_some_and(|s| matches!(self.sessions[s].bbb, Bbb::Ended))
            })
        {
            self.open_session(room);
        }
        // A teacher asks late for the live of a running class (maybe twice).
        if self.rng.u8(..100) < 15
            && let Some(s) = (0..self.sessions.len()).find(|&s| self.sessions[s].bbb.open())
        {
            self.request(s);
        }
        // Admins close or delete a live that runs.
        let running: Vec<u64> = self
            .lives
            .keys()
            .copied()
            .filter(|&l| !self.admin.contains(&l) && self.status(l) == Some(1))
            .collect();
        for l in running {
            match self.rng.u8(..100) {
                0..=2 => {
                    self.admin.insert(l);
                    self.pod().set_live(
                        l,
                        json!({"status": 2, "end_date": "2026-03-02T10:00:00+01:00"}),
                    );
                }
                3 => {
                    self.admin.insert(l);
                    self.pod().delete_live(l);
                }
                _ => {}
            }
        }
    }

    /// The newest session of a room that is not over for good.
    fn current(&self, room: usize) -> Option<usize> {
        (0..self.sessions.len())
            .rev()
            .find(|&s| self.sessions[s].room == room)
            .filter(|&s| !matches!(self.sessions[s].bbb, Bbb::Forgotten | Bbb::Never))
    }

    fn open_session(&mut self, room: usize) {
        if let Some(old) = self.current(room)
            && self.sessions[old].bbb == Bbb::NotYet
        {
            self.sessions[old].bbb = Bbb::Never;
        }
        self.clock_ms += 60_000 + self.rng.u64(..1000);
        let r = &self.rooms[room];
        let internal = format!("{}-{}", r.stem, self.clock_ms);
        let (meeting_id, name) = (r.meeting_id.clone(), r.name.clone());
        let s = self.sessions.len();
        let pk = self.pod().add_meeting(&meeting_id, &internal, &name);
        self.sessions.push(Session {
            room,
            internal,
            pk,
            bbb: Bbb::NotYet,
        });
        match self.rng.u8(..10) {
            0..=3 => {}
            4..=6 => self.set_bbb(Some(s), Bbb::Created),
            _ => self.set_bbb(Some(s), Bbb::Running),
        }
        if self.rng.u8(..100) < 85 {
            self.request_for(s, pk);
            if self.rng.u8(..100) < 12 {
                self.request_for(s, pk);
            }
        }
    }

    fn request(&mut self, s: usize) {
        let pk = self.sessions[s].pk;
        self.request_for(s, pk);
    }

    fn request_for(&mut self, s: usize, pk: u64) {
        let mut spec = LiveSpec::waiting(pk);
        spec.download_meeting = self.rng.u8(..100) < 70;
        spec.enable_chat = self.rng.bool();
        let live = self.pod().add_live(spec);
        self.lives.insert(live, s);
    }

    fn set_bbb(&mut self, s: Option<usize>, to: Bbb) {
        let Some(s) = s else { return };
        let from = self.sessions[s].bbb;
        let room = &self.rooms[self.sessions[s].room];
        let (meeting_id, name) = (room.meeting_id.clone(), room.name.clone());
        let internal = self.sessions[s].internal.clone();
        let bbb = self.bbb();
        match (from, to) {
            (Bbb::NotYet, Bbb::Created) => bbb.add_session(&meeting_id, &internal, &name, false),
            (Bbb::NotYet, Bbb::Running) => bbb.add_session(&meeting_id, &internal, &name, true),
            (Bbb::Created, Bbb::Running) => bbb.start_session(&internal),
            (Bbb::Created | Bbb::Running, Bbb::Ended) => bbb.end_session(&internal),
            (Bbb::Ended, Bbb::Forgotten) => bbb.remove_session(&internal),
            other => panic!("session {internal}: no move {other:?}"),
        }
        self.sessions[s].bbb = to;
    }

    fn status(&self, live: u64) -> Option<i64> {
        self.pod()
            .live_ids()
            .contains(&live)
            .then(|| self.pod().live(live)["status"].as_i64())
            .flatten()
    }

    // -----------------------------------------------------------------------
    // Faults
    // -----------------------------------------------------------------------

    fn start_faults(&mut self) {
        let roll = self.rng.u8(..100);
        let lasting = self.rng.usize(1..=3);
        let fault = match roll {
            0..=5 => Some(Fault::Pod500),
            6..=8 => Some(Fault::PodGarbageList),
            9..=16 => Some(Fault::BbbDown(self.rng.u8(..5))),
            17..=19 => Some(Fault::UpHangs),
            20..=24 => Some(Fault::ShareDown),
            25..=28 => Some(Fault::SmtpDown),
            _ => None,
        };
        if let Some(f) = fault
            && !self
                .faults
                .iter()
                .any(|(g, _)| std::mem::discriminant(g) == std::mem::discriminant(&f))
        {
            self.apply_fault(f, true);
            self.faults.push((f, lasting));
        }
        // One-shot faults: a Pod write answered in a way that cannot be read, `up`
        // failing, a streamer dying.
        let roll = self.rng.u8(..100);
        let pod = self.pod();
        match roll {
            0..=5 => pod.fail_next(
                "DELETE",
                "/rest/broadcasters/",
                crate::support::Fault::Garbage("{\"detail\": \"Supprim".into()),
                1,
            ),
            6..=9 => pod.fail_next(
                "PATCH",
                "/rest/bbb_livestream/",
                crate::support::Fault::ApplyThenCut,
                1,
            ),
            10..=12 => pod.fail_next(
                "POST",
                "/rest/broadcasters/",
                crate::support::Fault::ApplyThenDrop,
                1,
            ),
            13..=15 => pod.fail_next(
                "PATCH",
                "/rest/bbb_meeting/",
                crate::support::Fault::ApplyThenCut,
                1,
            ),
            16..=17 => pod.fail_next("*", "/rest/", crate::support::Fault::Hang, 1),
            _ => {}
        }
        if self.rng.u8(..100) < 8 {
            let env = self.rng.usize(..self.envs.len());
            self.envs[env].docker.fail_up(self.rng.usize(1..=2));
            self.disturbed = true;
        }
        if self.rng.u8(..100) < 8 {
            let env = self.rng.usize(..self.envs.len());
            let dir = self.envs[env].slot_dir(self.rng.u32(1..=self.slots));
            if self.envs[env].docker.running(&dir) {
                self.envs[env].docker.kill_container(&dir);
            }
        }
    }

    fn apply_fault(&self, f: Fault, on: bool) {
        let env = &self.envs[0];
        match f {
            Fault::Pod500 if on => {
                env.pod
                    .fail_next("*", "/rest/", crate::support::Fault::Html500, 100_000)
            }
            Fault::PodGarbageList if on => env.pod.fail_next(
                "GET",
                "/rest/bbb_livestream/?",
                crate::support::Fault::Garbage("{\"count\": 3, \"next\": null, \"resu".into()),
                100_000,
            ),
            Fault::Pod500 | Fault::PodGarbageList => env.pod.clear_faults(),
            Fault::BbbDown(kind) if on => env.bbb.set_mode(match kind {
                0 => BbbMode::Http(500),
                1 => BbbMode::Garbage,
                2 => BbbMode::Truncated,
                3 => BbbMode::ScaleliteInternalError,
                _ => BbbMode::Down,
            }),
            Fault::BbbDown(_) => env.bbb.set_mode(BbbMode::Normal),
            Fault::UpHangs => {
                for e in &self.envs {
                    e.docker.hang("up", on);
                }
            }
            Fault::ShareDown => {
                for e in &self.envs {
                    let away = e.root().join("recordings.away");
                    if on {
                        fs::rename(e.recordings_dir(), &away).unwrap();
                    } else {
                        fs::rename(&away, e.recordings_dir()).unwrap();
                    }
                }
            }
            Fault::SmtpDown if on => env.smtp.set_down(),
            Fault::SmtpDown => env.smtp.set_up(),
        }
    }

    fn end_faults(&mut self) {
        let mut still = Vec::new();
        for (f, left) in std::mem::take(&mut self.faults) {
            if left <= 1 {
                self.apply_fault(f, false);
            } else {
                still.push((f, left - 1));
            }
        }
        self.faults = still;
    }

    fn clear_all_faults(&mut self) {
        for (f, _) in std::mem::take(&mut self.faults) {
            self.apply_fault(f, false);
        }
        self.pod().clear_faults();
        for e in &self.envs {
            e.docker.fail_up(0);
        }
    }

    // -----------------------------------------------------------------------
    // Ticks
    // -----------------------------------------------------------------------

    /// One tick of each server (one after the other, as two crons a few seconds apart),
    /// then the checks.
    fn tick_all(&mut self) {
        let before: Vec<BTreeMap<u32, SlotBefore>> =
            (0..self.envs.len()).map(|e| self.slots_before(e)).collect();
        let statuses: BTreeMap<u64, Option<i64>> =
            self.lives.keys().map(|&l| (l, self.status(l))).collect();
        let open_before: BTreeSet<String> = self.open_sessions();
        let kill = self.rng.u8(..100) < 7;
        let victim = self.rng.usize(..self.envs.len());
        let skip = self.rng.usize(..12);
        let mut clean = !self.disturbed
            && self.pod().pending_faults() == 0
            && self.faults.iter().all(|(f, _)| !disturbing(*f));
        for e in 0..self.envs.len() {
            let killed = kill && e == victim && self.tick_killed(e, skip);
            clean &= !killed;
            if !killed {
                self.tick_one(e);
            }
        }
        self.pod().drop_holds();
        self.observe();
        for (e, before) in before.iter().enumerate() {
            self.check_downs(e, before, &statuses, &open_before);
        }
        self.check_streamers(clean);
        self.check_broadcasters(false);
        self.check_recordings();
    }

    fn now_env(&self) -> String {
        chrono::DateTime::from_timestamp(1_772_442_000 + 60 * self.tick as i64, 0)
            .expect("a valid time")
            .to_rfc3339()
    }

    fn tick_one(&self, e: usize) {
        let now = self.now_env();
        let started = Instant::now();
        let out = self.envs[e].run_env(&["run"], &[("BBB_POD_LIVE_NOW", &now)]);
        self.check_run(e, &out, started.elapsed());
    }

    /// A tick killed with SIGKILL when it sends its `skip + 1`-th Pod request (if it
    /// gets that far). Returns whether it was killed.
    fn tick_killed(&self, e: usize, skip: usize) -> bool {
        let gate = self.pod().hold_after(skip);
        let now = self.now_env();
        let env = &self.envs[e];
        let mut child = env
            .command(&["run"])
            .env("BBB_POD_LIVE_NOW", &now)
            .spawn()
            .expect("spawning bbb-pod-live");
        let started = Instant::now();
        loop {
            if gate.arrived() > 0 {
                child.kill().expect("SIGKILL the tick");
                let _ = env.wait(child);
                gate.release();
                eprintln!("tick {}: server {} killed mid-tick", self.tick, e + 1);
                return true;
            }
            if child.try_wait().expect("polling the tick").is_some() {
                gate.release();
                let out = env.wait(child);
                self.check_run(e, &out, started.elapsed());
                return false;
            }
            assert!(
                started.elapsed() < TICK_BOUND,
                "a tick took longer than {TICK_BOUND:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn check_run(&self, e: usize, out: &RunOutput, took: Duration) {
        assert!(
            matches!(out.code, Some(0 | 1)),
            "server {} exited {:?}\n--- stderr ---\n{}\n--- log ---\n{}",
            e + 1,
            out.code,
            out.stderr,
            brief(&self.envs[e])
        );
        assert!(
            !out.stderr.contains("panicked"),
            "server {} panicked:\n{}",
            e + 1,
            out.stderr
        );
        assert!(
            took < TICK_BOUND,
            "server {} took {took:?} for one tick",
            e + 1
        );
    }

    // -----------------------------------------------------------------------
    // Invariants
    // -----------------------------------------------------------------------

    fn open_sessions(&self) -> BTreeSet<String> {
        self.sessions
            .iter()
            .filter(|s| s.bbb.open())
            .map(|s| s.internal.clone())
            .collect()
    }

    /// The session a streamer waiting on `meeting_id` is in: its room's open session.
    fn session_of_room(&self, meeting_id: &str) -> Option<String> {
        self.sessions
            .iter()
            .filter(|s| s.bbb.open() && self.rooms[s.room].meeting_id == meeting_id)
            .map(|s| s.internal.clone())
            .next_back()
    }

    /// Notes, for each mkv part being written, the session its streamer is in now.
    fn observe(&mut self) {
        let mut seen = Vec::new();
        for env in &self.envs {
            for s in env.docker.streamers() {
                let Some(mkv) = s.mkv.filter(|p| p.exists()) else {
                    continue;
                };
                let part = read_mkv(&mkv);
                seen.push((part.part, self.session_of_room(&s.meeting_id)));
            }
        }
        for (key, session) in seen {
            let sessions = self.parts.entry(key).or_default();
            sessions.extend(session);
        }
    }

    fn slots_before(&self, e: usize) -> BTreeMap<u32, SlotBefore> {
        let env = &self.envs[e];
        let mut out = BTreeMap::new();
        for slot in 1..=self.slots {
            let dir = env.slot_dir(slot);
            let Some(state) = slot_state(&dir) else {
                continue;
            };
            if state["phase"] != json!("running") || !env.docker.running(&dir) {
                continue;
            }
            out.insert(
                slot,
                SlotBefore {
                    live: state["live"].as_u64().unwrap_or(0),
                    session: state["session"].as_str().map(str::to_owned),
                    downs: downs(env, &dir),
                },
            );
        }
        out
    }

    /// No `down` of a live at status 1 whose own session runs (before and after the
    /// tick, and its room runs no other), unless an admin closed or deleted it.
    fn check_downs(
        &self,
        e: usize,
        before: &BTreeMap<u32, SlotBefore>,
        statuses: &BTreeMap<u64, Option<i64>>,
        open_before: &BTreeSet<String>,
    ) {
        let env = &self.envs[e];
        let open_now = self.open_sessions();
        for (slot, b) in before {
            if downs(env, &env.slot_dir(*slot)) == b.downs {
                continue;
            }
            let Some(&s) = self.lives.get(&b.live) else {
                continue;
            };
            let ours = &self.sessions[s].internal;
            let runs = open_before.contains(ours) && open_now.contains(ours);
            let asked = self.admin.contains(&b.live);
            let status_one =
                statuses.get(&b.live) == Some(&Some(1)) && self.status(b.live) != Some(0);
            let own = b.session.as_deref().is_none_or(|x| x == ours);
            assert!(
                !(runs && !asked && status_one && own),
                "server {} brought live {} down in slot {slot} while its session {ours} runs \
                 and nobody asked\n--- log ---\n{}",
                e + 1,
                b.live,
                brief(env)
            );
        }
    }

    /// One streamer per session; after a tick that could read Pod and BBB, none in a
    /// session other than its live's.
    fn check_streamers(&self, clean: bool) {
        let mut by_session: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        for env in &self.envs {
            for s in env.docker.streamers() {
                let Some(now_in) = self.session_of_room(&s.meeting_id) else {
                    continue;
                };
                by_session
                    .entry(now_in.clone())
                    .or_default()
                    .push(s.dir.clone());
                if !clean {
                    continue;
                }
                let Some(state) = slot_state(&s.dir) else {
                    continue;
                };
                if let Some(ours) = state["session"].as_str() {
                    assert_eq!(
                        ours,
                        now_in,
                        "the streamer of live {} ({}) shows session {now_in}, not its live's {ours}\n--- log ---\n{}",
                        state["live"],
                        s.dir.display(),
                        brief(env)
                    );
                }
            }
        }
        if clean {
            for (session, dirs) in by_session {
                assert!(
                    dirs.len() <= 1,
                    "{} streamers in session {session}: {dirs:?}",
                    dirs.len()
                );
            }
        }
    }

    /// Lives running in Pod use distinct broadcasters; once everything ended, none is
    /// left.
    fn check_broadcasters(&self, converged: bool) {
        let mut used: BTreeMap<u64, u64> = BTreeMap::new();
        for &l in self.lives.keys() {
            if self.status(l) != Some(1) {
                continue;
            }
            if let Some(b) = self.pod().live(l)["broadcaster_id"].as_u64()
                && let Some(other) = used.insert(b, l)
            {
                panic!("lives {other} and {l} share broadcaster {b}");
            }
        }
        if converged {
            let left = self.pod().broadcasters();
            assert!(left.is_empty(), "broadcasters left behind: {left:#?}");
        }
    }

    /// Delivered files: whole, once, each holding only the session it is named after,
    /// never changed afterwards.
    fn check_recordings(&mut self) {
        let mut parts_delivered: HashMap<String, PathBuf> = HashMap::new();
        for env in &self.envs {
            for f in env.recordings() {
                if f.extension().is_none_or(|e| e != "mkv") {
                    continue;
                }
                let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
                let m = read_mkv(&f);
                assert!(m.len >= 102_400, "{} is not whole: {m:?}", f.display());
                let key = m.part.clone();
                if let Some(other) = parts_delivered.insert(key.clone(), f.clone()) {
                    panic!(
                        "one recording delivered twice: {} and {}",
                        other.display(),
                        f.display()
                    );
                }
                let sessions = self.parts.get(&key).cloned().unwrap_or_default();
                assert!(
                    sessions.iter().all(|s| *s == stem),
                    "{} holds sessions {sessions:?}, delivered as {stem}\n--- log ---\n{}",
                    f.display(),
                    brief(env)
                );
                match self.delivered.get(&f) {
                    Some(&len) => assert_eq!(len, m.len, "{} changed", f.display()),
                    None => {
                        self.delivered.insert(f.clone(), m.len);
                    }
                }
            }
        }
        if self.faults.iter().all(|(f, _)| *f != Fault::ShareDown) {
            for f in self.delivered.keys() {
                assert!(f.exists(), "{} vanished", f.display());
            }
        }
    }

    // -----------------------------------------------------------------------
    // Convergence
    // -----------------------------------------------------------------------

    /// Faults stop, every class ends: the world must come to rest.
    fn calm(mut self) {
        self.clear_all_faults();
        for s in 0..self.sessions.len() {
            match self.sessions[s].bbb {
                Bbb::Created | Bbb::Running => self.set_bbb(Some(s), Bbb::Ended),
                Bbb::NotYet => self.sessions[s].bbb = Bbb::Never,
                _ => {}
            }
        }
        let mut last_codes = Vec::new();
        for _ in 0..CALM_TICKS {
            self.tick += 1;
            TICK.with(|t| t.set(self.tick));
            last_codes.clear();
            for e in 0..self.envs.len() {
                let now = self.now_env();
                let started = Instant::now();
                let out = self.envs[e].run_env(&["run"], &[("BBB_POD_LIVE_NOW", &now)]);
                self.check_run(e, &out, started.elapsed());
                last_codes.push(out.code);
            }
            self.check_recordings();
            if self.at_rest() {
                break;
            }
        }
        let log = || self.envs.iter().map(brief).collect::<Vec<_>>().join("\n");
        for &l in self.lives.keys() {
            let s = self.status(l);
            assert!(
                matches!(s, None | Some(2)),
                "live {l} not closed once everything ended (status {s:?}): {}\n--- log ---\n{}",
                self.pod().live(l),
                log()
            );
        }
        for env in &self.envs {
            assert!(
                env.docker.streamers().is_empty(),
                "streamers left: {:?}",
                env.docker.streamers()
            );
            for slot in 1..=self.slots {
                assert!(
                    slot_state(&env.slot_dir(slot)).is_none(),
                    "slot {slot} still busy\n--- log ---\n{}",
                    brief(env)
                );
            }
        }
        self.check_broadcasters(true);
        self.check_kept();
        assert_eq!(
            last_codes,
            vec![Some(0); self.envs.len()],
            "the last calm tick did not exit 0\n--- log ---\n{}",
            log()
        );
        for env in &self.envs {
            env.assert_no_secret_anywhere();
        }
        eprintln!(
            "soak seed {}: {} lives, {} sessions, {} recordings delivered",
            self.seed,
            self.lives.len(),
            self.sessions.len(),
            self.delivered.len()
        );
    }

    fn at_rest(&self) -> bool {
        self.lives
            .keys()
            .all(|&l| matches!(self.status(l), None | Some(2)))
            && self.envs.iter().all(|e| {
                e.docker.streamers().is_empty()
                    && (1..=self.slots).all(|s| slot_state(&e.slot_dir(s)).is_none())
                    && no_pending(e)
            })
            && self.pod().broadcasters().is_empty()
    }

    /// Every part recorded is delivered, or kept on local disk and listed by
    /// `recordings list`.
    fn check_kept(&self) {
        let delivered: BTreeSet<String> = self
            .delivered
            .keys()
            .map(|f| {
                let m = read_mkv(f);
                m.part
            })
            .collect();
        for env in &self.envs {
            let listed = env.run(&["recordings", "list"]);
            listed.assert_success();
            for f in kept_mkvs(env) {
                let m = read_mkv(&f);
                assert!(
                    !delivered.contains(&m.part),
                    "{} is delivered and still kept",
                    f.display()
                );
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                let dir = f
                    .parent()
                    .and_then(Path::file_name)
                    .map(|d| d.to_string_lossy().into_owned())
                    .unwrap_or_default();
                assert!(
                    listed.stdout.contains(&name) || listed.stdout.contains(&dir),
                    "kept recording {} is not listed by `recordings list`:\n{}",
                    f.display(),
                    listed.stdout
                );
            }
        }
        let kept: BTreeSet<String> = self
            .envs
            .iter()
            .flat_map(kept_mkvs)
            .map(|f| {
                let m = read_mkv(&f);
                m.part
            })
            .collect();
        for key in self.parts.keys() {
            assert!(
                delivered.contains(key) || kept.contains(key),
                "recording {key:?} was neither delivered nor kept"
            );
        }
    }
}

/// The log without its DEBUG lines: what a failure message shows.
fn brief(env: &TestEnv) -> String {
    env.log_text()
        .lines()
        .filter(|l| !l.contains(" DEBUG "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A slot's `live-state.json`, if any.
fn slot_state(dir: &Path) -> Option<Value> {
    let text = fs::read(dir.join("live-state.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

fn downs(env: &TestEnv, dir: &Path) -> usize {
    env.docker
        .calls_in(dir)
        .iter()
        .filter(|c| c.is("down"))
        .count()
}

/// The mkv files under base_dir outside the slot directories (parked or kept).
fn kept_mkvs(env: &TestEnv) -> Vec<PathBuf> {
    files_under(&env.base_dir())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mkv"))
        .filter(|p| {
            !p.components().any(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .starts_with("bbb-live-streaming")
            })
        })
        .collect()
}

/// No recording waits for its hand-over (parked with a `handover.json` still to do).
fn no_pending(env: &TestEnv) -> bool {
    files_under(&env.base_dir().join("recordings"))
        .iter()
        .all(|p| p.file_name().is_none_or(|n| n != "handover.json"))
}
