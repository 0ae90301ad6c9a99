//! `FakePod`: a stateful stand-in for Esup-Pod's REST API as Django REST Framework serves
//! it (docs/pod-api.md): token auth and staff permission, DRF pagination with
//! absolute links built from the Host header, the livestream, meeting, broadcaster,
//! building and user endpoints with DRF's validation and French error bodies, the
//! version differences of the broadcaster serializer (Pod 2.8–2.9.2 vs 2.9.3–3.8.1), the
//! 301 on a missing trailing slash and the HTML 500 pages Pod answers when a
//! broadcaster's slug or stream URL collides, and Pod 3.6+'s meeting module as Pod 4.1
//! serves it (`/rest/meeting_session/`, `/rest/meeting_livestream/` with its working
//! `?status=` filter). Tests read its state, record every request
//! and inject faults. It does not implement: Basic auth success, `Accept-Language`
//! (always French), creating meetings/buildings/users over HTTP, the browsable API.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, FixedOffset, NaiveDate, SubsecRound, TimeZone, Utc};
use serde_json::{Map, Value, json};
use unicode_normalization::UnicodeNormalization;

use super::net::{Background, ConnHandle, serve_http};
use super::text::{base64_decode, parse_query, quote_plus, random_hex};

/// Which broadcaster serializer (and list filtering) the fake Pod has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodVersion {
    /// Pod 2.8–2.9.2: broadcaster `url` is the stream URL (required, unique → 400);
    /// `?status=` / `?server=` filters on bbb_livestream work; Django 1.11 slugify.
    V2_8,
    /// Pod 2.9.3–3.8.1: broadcaster `url` is the read-only identity hyperlink, the stream
    /// URL is `broadcaster_url` (required); list filters are ignored (django-filter 22.1).
    V3_8,
}

#[derive(Clone, Debug)]
pub struct PodOptions {
    pub version: PodVersion,
    /// DRF `PAGE_SIZE` (Pod: 12).
    pub page_size: usize,
}

impl Default for PodOptions {
    fn default() -> Self {
        PodOptions {
            version: PodVersion::V3_8,
            page_size: 12,
        }
    }
}

/// A fault injected in front of the normal answer.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status with this body (JSON content type if it starts with `{`/`[`).
    Status(u16, String),
    /// A 500 with Pod's ~13 KB French HTML error page.
    Html500,
    /// Wait, then answer normally.
    Delay(Duration),
    /// Never answer (the connection stays open until the client gives up).
    Hang,
    /// Apply the request as usual (a write reaches Pod's database), then never answer:
    /// the client cannot tell whether its write happened ("applied, connection lost").
    ApplyThenHang,
    /// Apply the request, then answer 200 with the first half of the JSON body (a
    /// proxy cutting the answer; `{"detail":` when the answer had no body).
    ApplyThenCut,
    /// Apply the request, then reset the connection without a byte of answer.
    ApplyThenDrop,
    /// 200 with this body and a JSON content type.
    Garbage(String),
    /// Close the connection without a byte of answer.
    Drop,
    /// Wait until the gate is released, then answer normally ([`FakePod::hold_next`]).
    Held(Gate),
}

/// Holds the requests given [`Fault::Held`] until [`Gate::release`].
#[derive(Clone, Debug, Default)]
pub struct Gate {
    open: Arc<AtomicBool>,
    arrived: Arc<std::sync::atomic::AtomicUsize>,
}

impl Gate {
    /// Lets the held requests (and later ones) through.
    pub fn release(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// How many requests reached the gate so far.
    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        self.arrived.fetch_add(1, Ordering::SeqCst);
        while !self.open.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct PodRequest {
    pub method: String,
    /// Path as sent (percent-encoded), e.g. `/rest/bbb_livestream/3/`.
    pub path: String,
    /// Raw query string without `?` (empty if none).
    pub query: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
    /// The round trip it belonged to (1, 2, ...), while [`FakePod::count_round_trips`]
    /// is on.
    pub wave: Option<usize>,
}

impl PodRequest {
    /// The body parsed as JSON (panics if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "body of {} {} is not JSON ({e}): {}",
                self.method, self.path, self.body
            )
        })
    }

    /// The body as form fields (multipart or urlencoded), in order.
    pub fn form(&self) -> Vec<(String, String)> {
        let ct = self.content_type.clone().unwrap_or_default();
        if ct.starts_with("multipart/form-data") {
            boundary(&ct)
                .and_then(|b| parse_multipart(self.body.as_bytes(), &b))
                .unwrap_or_default()
        } else {
            parse_query(&self.body)
        }
    }
}

/// What a teacher asked for when publishing a live (the Livestream row Pod's UI creates).
#[derive(Clone, Debug)]
pub struct LiveSpec {
    /// Pod pk of the meeting (from [`FakePod::add_meeting`]).
    pub meeting: u64,
    /// Pod user id of the teacher (a staff user); `None` leaves `user` null.
    pub user: Option<u64>,
    pub status: u8,
    pub server: Option<String>,
    pub download_meeting: bool,
    pub enable_chat: bool,
    pub show_chat: bool,
    pub is_restricted: bool,
}

impl LiveSpec {
    /// A live waiting to start (status 0, no server), owned by the default staff user
    /// (id 1), Pod's model defaults for the options (show_chat true, others false).
    pub fn waiting(meeting: u64) -> LiveSpec {
        LiveSpec {
            meeting,
            user: Some(1),
            status: 0,
            server: None,
            download_meeting: false,
            enable_chat: false,
            show_chat: true,
            is_restricted: false,
        }
    }
}

/// The fake Pod server. Dropping it stops the server.
pub struct FakePod {
    server: Background,
    state: Arc<Mutex<PodState>>,
    token: String,
}

impl FakePod {
    pub fn start(options: PodOptions) -> FakePod {
        let token = random_hex(40);
        let mut users = BTreeMap::new();
        users.insert(
            1,
            User {
                id: 1,
                username: "pod-admin".into(),
                staff: true,
                token: token.clone(),
            },
        );
        let mut buildings = BTreeMap::new();
        buildings.insert(1, "Bâtiment principal".to_string());
        let state = Arc::new(Mutex::new(PodState {
            version: options.version,
            page_size: options.page_size.max(1),
            host: String::new(),
            users,
            buildings,
            meetings: BTreeMap::new(),
            lives: BTreeMap::new(),
            broadcasters: BTreeMap::new(),
            next_id: Ids {
                user: 2,
                building: 2,
                meeting: 1,
                live: 1,
                broadcaster: 1,
            },
            requests: Vec::new(),
            faults: Vec::new(),
            latency: Duration::ZERO,
            applied_then_hung: 0,
            hidden: Default::default(),
            waves: None,
            in_flight: 0,
            max_in_flight: 0,
            corrupt: BTreeMap::new(),
            last_created: DateTime::<Utc>::MIN_UTC,
            sessions: BTreeMap::new(),
            webinar_lives: BTreeMap::new(),
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = Background::start("pod", serve_http(router));
        state.lock().expect("pod state").host = server.addr().to_string();
        FakePod {
            server,
            state,
            token,
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The token of the staff user that exists from the start (user id 1).
    pub fn token(&self) -> String {
        self.token.clone()
    }

    fn st(&self) -> MutexGuard<'_, PodState> {
        self.state.lock().expect("pod state")
    }

    /// Adds a user with a token; returns `(user id, token)`.
    pub fn add_user(&self, staff: bool) -> (u64, String) {
        let mut st = self.st();
        let id = st.next_id.user;
        st.next_id.user += 1;
        let token = random_hex(40);
        st.users.insert(
            id,
            User {
                id,
                username: format!("user{id}"),
                staff,
                token: token.clone(),
            },
        );
        (id, token)
    }

    /// Adds a building; returns its id (building 1 exists from the start).
    pub fn add_building(&self, name: &str) -> u64 {
        let mut st = self.st();
        let id = st.next_id.building;
        st.next_id.building += 1;
        st.buildings.insert(id, name.to_string());
        id
    }

    /// Adds a BBB meeting as Pod's `bbb` command records it; returns its Pod pk.
    pub fn add_meeting(&self, meeting_id: &str, internal_meeting_id: &str, name: &str) -> u64 {
        let mut st = self.st();
        let id = st.next_id.meeting;
        st.next_id.meeting += 1;
        let now = now_micros();
        st.meetings.insert(
            id,
            Meeting {
                id,
                meeting_id: meeting_id.to_string(),
                internal_meeting_id: internal_meeting_id.to_string(),
                meeting_name: name.to_string(),
                encoding_step: 0,
                recorded: false,
                recording_available: false,
                recording_url: String::new(),
                thumbnail_url: String::new(),
                encoded_by: None,
                session_date: now.trunc_subsecs(0),
                last_date_in_progress: now,
            },
        );
        id
    }

    /// Adds a meeting of Pod's meeting module with primary key `pk`, its BBB
    /// meetingID `"%04d-<slug>"` as Pod names it; returns that meetingID.
    pub fn add_webinar_meeting(&self, pk: u64, slug: &str) -> String {
        let meeting_id = format!("{pk:04}-{slug}");
        self.st().sessions.insert(
            pk,
            Session {
                id: pk,
                name: slug.to_string(),
                meeting_id: meeting_id.clone(),
                created_at: now_micros(),
            },
        );
        meeting_id
    }

    /// Adds a webinar Livestream (`/rest/meeting_livestream/`) of meeting `pk` with
    /// `status`, on live gateway 1; returns its id.
    pub fn add_webinar_live(&self, meeting: u64, status: i64) -> u64 {
        let mut st = self.st();
        assert!(
            st.sessions.contains_key(&meeting),
            "add_webinar_live: no meeting session {meeting}"
        );
        let id = st.webinar_lives.keys().last().map_or(1, |k| k + 1);
        st.webinar_lives.insert(
            id,
            WebinarLive {
                id,
                meeting,
                status,
                event: id,
                live_gateway: 1,
            },
        );
        id
    }

    /// The status of webinar Livestream `id`.
    pub fn webinar_live_status(&self, id: u64) -> i64 {
        self.st().webinar_lives[&id].status
    }

    /// Adds a Livestream row; returns its id.
    pub fn add_live(&self, spec: LiveSpec) -> u64 {
        let mut st = self.st();
        assert!(
            st.meetings.contains_key(&spec.meeting),
            "add_live: no meeting with pk {}",
            spec.meeting
        );
        if let Some(u) = spec.user {
            assert!(st.users.contains_key(&u), "add_live: no user {u}");
        }
        let id = st.next_id.live;
        st.next_id.live += 1;
        let start_date = st.creation_time();
        st.lives.insert(
            id,
            Live {
                id,
                meeting: spec.meeting,
                start_date,
                end_date: None,
                show_chat: spec.show_chat,
                download_meeting: spec.download_meeting,
                enable_chat: spec.enable_chat,
                is_restricted: spec.is_restricted,
                broadcaster_id: None,
                redis_hostname: None,
                redis_port: None,
                redis_channel: None,
                status: i64::from(spec.status),
                server: spec.server,
                user: spec.user,
            },
        );
        id
    }

    /// Creates a broadcaster directly (as an admin would in Django's admin), in building 1.
    /// Returns it as the API renders it for this version.
    pub fn add_broadcaster(&self, name: &str, stream_url: &str) -> Value {
        let mut st = self.st();
        let id = st.next_id.broadcaster;
        st.next_id.broadcaster += 1;
        let slug = st.slugify(name);
        let b = Broadcaster {
            id,
            name: name.to_string(),
            slug,
            building: 1,
            description: String::new(),
            poster: None,
            stream_url: stream_url.to_string(),
            status: true,
            is_restricted: false,
            manage_groups: Vec::new(),
            piloting_implementation: None,
            piloting_conf: None,
        };
        let host = st.host.clone();
        let v = parse(&st.render_broadcaster(&b, &host));
        st.broadcasters.insert(id, b);
        v
    }

    /// The livestream as `GET /rest/bbb_livestream/<id>/` renders it.
    pub fn live(&self, id: u64) -> Value {
        let st = self.st();
        let live = st
            .lives
            .get(&id)
            .unwrap_or_else(|| panic!("no live {id} in the fake Pod"));
        parse(&st.render_live(live, &st.host))
    }

    /// Ids of every livestream, ascending.
    pub fn live_ids(&self) -> Vec<u64> {
        self.st().lives.keys().copied().collect()
    }

    /// The meeting as `GET /rest/bbb_meeting/<pk>/` renders it.
    pub fn meeting(&self, pk: u64) -> Value {
        let st = self.st();
        let m = st
            .meetings
            .get(&pk)
            .unwrap_or_else(|| panic!("no meeting {pk} in the fake Pod"));
        parse(&st.render_meeting(m))
    }

    /// Every broadcaster, as the API renders them, in Pod's order (building, name).
    pub fn broadcasters(&self) -> Vec<Value> {
        let st = self.st();
        st.sorted_broadcasters()
            .into_iter()
            .map(|b| parse(&st.render_broadcaster(b, &st.host)))
            .collect()
    }

    /// An admin editing the livestream by hand (Django admin): same field parsing as a
    /// PATCH, no authentication. Panics if the patch is invalid.
    pub fn set_live(&self, id: u64, patch: Value) {
        let mut st = self.st();
        let Value::Object(input) = patch else {
            panic!("set_live: the patch must be a JSON object");
        };
        let live = st
            .lives
            .get(&id)
            .unwrap_or_else(|| panic!("no live {id} in the fake Pod"))
            .clone();
        match st.validate(LIVE_FIELDS, &input, true, live) {
            Ok(live) => {
                st.lives.insert(id, live);
            }
            Err(errs) => panic!("set_live({id}): invalid patch: {}", render_errors(&errs)),
        }
    }

    /// Same as [`FakePod::set_live`] for a meeting.
    pub fn set_meeting(&self, pk: u64, patch: Value) {
        let mut st = self.st();
        let Value::Object(input) = patch else {
            panic!("set_meeting: the patch must be a JSON object");
        };
        let m = st
            .meetings
            .get(&pk)
            .unwrap_or_else(|| panic!("no meeting {pk} in the fake Pod"))
            .clone();
        match st.validate(MEETING_FIELDS, &input, true, m) {
            Ok(m) => {
                st.meetings.insert(pk, m);
            }
            Err(errs) => panic!("set_meeting({pk}): invalid patch: {}", render_errors(&errs)),
        }
    }

    /// Deletes a livestream row (as an admin would).
    pub fn delete_live(&self, id: u64) {
        self.st().lives.remove(&id);
    }

    /// Deletes a meeting row and, as Django's `on_delete=CASCADE` does, its livestreams
    /// (Pod's `bbb` purge, or an admin deleting the meeting).
    pub fn delete_meeting(&self, pk: u64) {
        let mut st = self.st();
        st.meetings.remove(&pk);
        st.lives.retain(|_, l| l.meeting != pk);
    }

    /// Makes livestream `id` render `field` as `value` (`None`: the key is left out) in
    /// list and detail answers, whatever the row holds: a row Pod's serializer would
    /// never produce, but a database edited by hand, another version or a plugin can
    /// (`server: 11` as a number, `enable_chat: "yes"`, a null `meeting`, status 7).
    pub fn corrupt_live(&self, id: u64, field: &str, value: Option<Value>) {
        self.st()
            .corrupt
            .entry(id)
            .or_default()
            .push((field.to_string(), value));
    }

    /// A backup of Pod's database: its rows and its id sequences.
    pub fn backup(&self) -> PodBackup {
        let st = self.st();
        PodBackup {
            meetings: st.meetings.clone(),
            lives: st.lives.clone(),
            broadcasters: st.broadcasters.clone(),
            next_id: st.next_id.clone(),
        }
    }

    /// Pod's database restored from `backup`: the rows made since are gone and, the
    /// sequences being restored too, their ids are given again to the next rows.
    pub fn restore(&self, backup: &PodBackup) {
        let mut st = self.st();
        st.meetings = backup.meetings.clone();
        st.lives = backup.lives.clone();
        st.broadcasters = backup.broadcasters.clone();
        st.next_id = backup.next_id.clone();
    }

    /// Deletes a broadcaster row by slug (as an admin would).
    pub fn delete_broadcaster(&self, slug: &str) {
        self.st().broadcasters.retain(|_, b| b.slug != slug);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<PodRequest> {
        self.st().requests.clone()
    }

    /// The requests whose method is not GET (POST, PATCH, PUT, DELETE...).
    pub fn writes(&self) -> Vec<PodRequest> {
        self.st()
            .requests
            .iter()
            .filter(|r| r.method != "GET" && r.method != "HEAD")
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.st().requests.clear();
    }

    /// The next `times` requests whose method is `method` (`"*"` for any) and whose path
    /// starts with `path_prefix` (path and query when `path_prefix` holds a `?`) get `fault` instead of (or, for `Delay`, before) the
    /// normal answer. Faulted requests are still recorded.
    pub fn fail_next(&self, method: &str, path_prefix: &str, fault: Fault, times: usize) {
        if times == 0 {
            return;
        }
        self.st().faults.push(FaultRule {
            method: method.to_ascii_uppercase(),
            prefix: path_prefix.to_string(),
            fault,
            remaining: times,
            skip: 0,
        });
    }

    /// Holds the request that comes after the next `skip` requests (any method and
    /// path) until the returned gate is released: how a test stops the binary at the
    /// n-th step of a tick it cannot name in advance (the soak's SIGKILL).
    pub fn hold_after(&self, skip: usize) -> Gate {
        let gate = Gate::default();
        self.st().faults.push(FaultRule {
            method: "*".into(),
            prefix: String::new(),
            fault: Fault::Held(gate.clone()),
            remaining: 1,
            skip,
        });
        gate
    }

    /// How many requests got `Fault::ApplyThenHang` and were applied so far (the
    /// write is in the fake's state; the answer will never come).
    pub fn applied_then_hung(&self) -> usize {
        self.st().applied_then_hung
    }

    /// Leaves livestream `id` out of list answers (`true`) or not: a list that misses
    /// a row, while `GET /rest/bbb_livestream/<id>/` still finds it.
    pub fn hide_from_list(&self, id: u64, hidden: bool) {
        let mut st = self.st();
        if hidden {
            st.hidden.insert(id);
        } else {
            st.hidden.remove(&id);
        }
    }

    /// How many fault rules wait for their requests (holds left out).
    pub fn pending_faults(&self) -> usize {
        self.st()
            .faults
            .iter()
            .filter(|f| !matches!(f.fault, Fault::Held(_)))
            .count()
    }

    /// Removes the holds still waiting for their request ([`FakePod::hold_after`]).
    pub fn drop_holds(&self) {
        self.st()
            .faults
            .retain(|f| !matches!(f.fault, Fault::Held(_)));
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.st().faults.clear();
    }

    /// Added before every answer (benchmarks).
    pub fn set_latency(&self, latency: Duration) {
        self.st().latency = latency;
    }

    /// Turns the fake into the other version (an upgrade between two ticks).
    pub fn set_version(&self, version: PodVersion) {
        self.st().version = version;
    }

    /// Holds the next `times` requests matching `method` and `path_prefix` (as
    /// [`FakePod::fail_next`]) until the returned gate is released; they are then
    /// answered normally.
    pub fn hold_next(&self, method: &str, path_prefix: &str, times: usize) -> Gate {
        let gate = Gate::default();
        self.fail_next(method, path_prefix, Fault::Held(gate.clone()), times);
        gate
    }

    /// From now on, counts round trips: each request is held until no new request has
    /// arrived for `quiet`, then the whole wave is answered together and numbered
    /// ([`PodRequest::wave`]). A request sent only after another's answer can never be
    /// in that other's wave, so a sequential chain is always counted as such; requests
    /// sent together are one wave unless the client takes more than `quiet` to send
    /// them (pick it generous). Also resets [`FakePod::max_in_flight`].
    pub fn count_round_trips(&self, quiet: Duration) {
        let mut st = self.st();
        st.waves = Some(Waves {
            quiet,
            open: 1,
            last_arrival: tokio::time::Instant::now(),
        });
        st.max_in_flight = st.in_flight;
    }

    /// How many distinct round trips the recorded requests matching `pred` took.
    pub fn round_trips(&self, pred: impl Fn(&PodRequest) -> bool) -> usize {
        let waves: std::collections::BTreeSet<usize> = self
            .st()
            .requests
            .iter()
            .filter(|r| pred(r))
            .filter_map(|r| r.wave)
            .collect();
        waves.len()
    }

    /// The most requests the fake was answering at once (received, not yet answered)
    /// since it started or since [`FakePod::count_round_trips`].
    pub fn max_in_flight(&self) -> usize {
        self.st().max_in_flight
    }

    /// Takes Pod off the network (`false`: connections refused) or back (`true`).
    pub fn set_reachable(&self, up: bool) {
        self.server.set_up(up);
    }
}

// ---------------------------------------------------------------------------
// State and models
// ---------------------------------------------------------------------------

/// What [`FakePod::backup`] saved.
pub struct PodBackup {
    meetings: BTreeMap<u64, Meeting>,
    lives: BTreeMap<u64, Live>,
    broadcasters: BTreeMap<u64, Broadcaster>,
    next_id: Ids,
}

#[derive(Clone)]
struct Ids {
    user: u64,
    building: u64,
    meeting: u64,
    live: u64,
    broadcaster: u64,
}

struct FaultRule {
    method: String,
    prefix: String,
    fault: Fault,
    remaining: usize,
    /// Matching requests let through before the fault applies.
    skip: usize,
}

#[derive(Clone)]
struct User {
    id: u64,
    username: String,
    staff: bool,
    token: String,
}

#[derive(Clone)]
struct Meeting {
    id: u64,
    meeting_id: String,
    internal_meeting_id: String,
    meeting_name: String,
    encoding_step: i64,
    recorded: bool,
    recording_available: bool,
    recording_url: String,
    thumbnail_url: String,
    encoded_by: Option<u64>,
    session_date: DateTime<Utc>,
    last_date_in_progress: DateTime<Utc>,
}

#[derive(Clone)]
struct Live {
    id: u64,
    meeting: u64,
    start_date: DateTime<Utc>,
    end_date: Option<DateTime<Utc>>,
    show_chat: bool,
    download_meeting: bool,
    enable_chat: bool,
    is_restricted: bool,
    broadcaster_id: Option<i64>,
    redis_hostname: Option<String>,
    redis_port: Option<i64>,
    redis_channel: Option<String>,
    status: i64,
    server: Option<String>,
    user: Option<u64>,
}

#[derive(Clone)]
struct Broadcaster {
    id: u64,
    name: String,
    slug: String,
    building: u64,
    description: String,
    poster: Option<u64>,
    stream_url: String,
    status: bool,
    is_restricted: bool,
    manage_groups: Vec<String>,
    piloting_implementation: Option<String>,
    piloting_conf: Option<String>,
}

struct PodState {
    version: PodVersion,
    page_size: usize,
    /// `127.0.0.1:PORT`, for hyperlinks rendered outside a request.
    host: String,
    users: BTreeMap<u64, User>,
    buildings: BTreeMap<u64, String>,
    meetings: BTreeMap<u64, Meeting>,
    lives: BTreeMap<u64, Live>,
    broadcasters: BTreeMap<u64, Broadcaster>,
    next_id: Ids,
    requests: Vec<PodRequest>,
    faults: Vec<FaultRule>,
    latency: Duration,
    /// Requests answered with `Fault::ApplyThenHang` whose write was applied.
    applied_then_hung: usize,
    /// Livestreams left out of list answers (detail GETs still find them).
    hidden: std::collections::BTreeSet<u64>,
    /// Round-trip counting, when on.
    waves: Option<Waves>,
    /// Requests received and not yet answered, and the most seen at once.
    in_flight: usize,
    max_in_flight: usize,
    /// Fields rendered in place of a livestream's own ([`FakePod::corrupt_live`]).
    corrupt: BTreeMap<u64, Vec<(String, Option<Value>)>>,
    /// The `start_date` of the last livestream made.
    last_created: DateTime<Utc>,
    /// Pod 3.6+'s meeting module: `/rest/meeting_session/` and its webinar
    /// livestreams, `/rest/meeting_livestream/`.
    sessions: BTreeMap<u64, Session>,
    webinar_lives: BTreeMap<u64, WebinarLive>,
}

/// A meeting of Pod's meeting module (`pod/meeting/models.py` `Meeting`); its BBB
/// meetingID is `"%04d-<slug>"` of its pk.
#[derive(Clone)]
struct Session {
    id: u64,
    name: String,
    meeting_id: String,
    created_at: DateTime<Utc>,
}

/// A webinar's `meeting.Livestream` (status 0 not started, 1 in progress, 2 stopped).
#[derive(Clone)]
struct WebinarLive {
    id: u64,
    meeting: u64,
    status: i64,
    event: u64,
    live_gateway: u64,
}

/// The open wave of [`FakePod::count_round_trips`].
struct Waves {
    quiet: Duration,
    /// Number of the wave new requests join.
    open: usize,
    last_arrival: tokio::time::Instant,
}

/// Counts one request in flight until it is answered (or its connection dropped).
struct InFlight(Shared);

impl InFlight {
    fn enter(state: &Shared) -> InFlight {
        let mut st = state.lock().expect("pod state");
        st.in_flight += 1;
        st.max_in_flight = st.max_in_flight.max(st.in_flight);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = self.0.lock().unwrap_or_else(|p| p.into_inner());
        st.in_flight -= 1;
    }
}

/// Holds a request of wave `mine` until no request has arrived for the quiet period,
/// then closes that wave (later requests join the next one).
async fn hold_for_wave(state: &Shared, mine: usize) {
    loop {
        let deadline = {
            let mut st = state.lock().expect("pod state");
            let Some(w) = st.waves.as_mut() else { return };
            if w.open != mine {
                return;
            }
            let deadline = w.last_arrival + w.quiet;
            if tokio::time::Instant::now() >= deadline {
                w.open += 1;
                return;
            }
            deadline
        };
        tokio::time::sleep_until(deadline).await;
    }
}

fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn parse(json: &str) -> Value {
    serde_json::from_str(json).expect("the fake Pod renders valid JSON")
}

// ---------------------------------------------------------------------------
// HTTP entry point
// ---------------------------------------------------------------------------

type Shared = Arc<Mutex<PodState>>;

struct Incoming {
    method: String,
    path: String,
    query: String,
    host: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

struct Reply {
    status: u16,
    content_type: Option<&'static str>,
    body: String,
    headers: Vec<(&'static str, String)>,
}

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

impl Reply {
    fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: Some(JSON),
            body,
            headers: vec![("vary", "Accept".into())],
        }
    }
    fn detail(status: u16, msg: &str) -> Reply {
        Reply::json(status, json!({ "detail": msg }).to_string())
    }
    fn not_found() -> Reply {
        Reply::detail(404, "Pas trouvé.")
    }
    fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: Some(HTML),
            body,
            headers: Vec::new(),
        }
    }
    fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
    fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(self.body));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = resp.headers_mut();
        if let Some(ct) = self.content_type {
            h.insert("content-type", HeaderValue::from_static(ct));
        }
        h.insert("content-language", HeaderValue::from_static("fr"));
        h.insert("x-frame-options", HeaderValue::from_static("DENY"));
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.append(name, v);
            }
        }
        resp
    }
}

async fn handle(State(state): State<Shared>, req: Request) -> Response {
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|c| c.0.clone());
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 256 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let _in_flight = InFlight::enter(&state);
    let (fault, latency, self_host, wave) = {
        let mut st = state.lock().expect("pod state");
        let wave = st.waves.as_mut().map(|w| {
            w.last_arrival = tokio::time::Instant::now();
            w.open
        });
        let incoming = PodRequest {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            authorization: header("authorization"),
            content_type: header("content-type"),
            body: String::from_utf8_lossy(&body).into_owned(),
            wave,
        };
        let fault = st.take_fault(&incoming.method, &incoming.path, &incoming.query);
        st.requests.push(incoming);
        (fault, st.latency, st.host.clone(), wave)
    };
    if let Some(mine) = wave {
        hold_for_wave(&state, mine).await;
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let apply_then_hang = matches!(fault, Some(Fault::ApplyThenHang));
    let apply_then_cut = matches!(fault, Some(Fault::ApplyThenCut));
    let apply_then_drop = matches!(fault, Some(Fault::ApplyThenDrop));
    match fault {
        None => {}
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::ApplyThenHang | Fault::ApplyThenCut | Fault::ApplyThenDrop) => {}
        Some(Fault::Held(gate)) => gate.wait().await,
        Some(Fault::Drop) => {
            if let Some(c) = conn {
                c.cut();
            }
            return Reply::html(500, String::new()).into_response();
        }
        Some(Fault::Html500) => return Reply::html(500, server_error_page()).into_response(),
        Some(Fault::Garbage(body)) => return Reply::json(200, body).into_response(),
        Some(Fault::Status(status, body)) => {
            let t = body.trim_start();
            let reply = if t.starts_with('{') || t.starts_with('[') {
                Reply::json(status, body)
            } else {
                Reply::html(status, body)
            };
            return reply.into_response();
        }
    }
    let incoming = Incoming {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        host: header("host").unwrap_or(self_host),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body,
    };
    let reply = {
        let mut st = state.lock().expect("pod state");
        let reply = st.dispatch(&incoming);
        if apply_then_hang {
            st.applied_then_hung += 1;
        }
        reply
    };
    if apply_then_hang {
        drop(reply);
        return std::future::pending::<Response>().await;
    }
    if apply_then_drop {
        if let Some(c) = conn {
            c.cut();
        }
        return Reply::html(500, String::new()).into_response();
    }
    if apply_then_cut {
        let mut body = if reply.body.is_empty() {
            "{\"detail\":".to_string()
        } else {
            reply.body.clone()
        };
        let mut half = body.len() / 2;
        while !body.is_char_boundary(half) {
            half -= 1;
        }
        body.truncate(half.max(1));
        return Reply::json(200, body).into_response();
    }
    reply.into_response()
}

// ---------------------------------------------------------------------------
// Routing (Django URL resolution, then DRF)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Livestream,
    Meeting,
    Attendee,
    Broadcaster,
    Building,
    User,
    /// Pod 3.6+'s meeting module.
    Session,
    WebinarLivestream,
}

impl Kind {
    fn from_prefix(p: &str) -> Option<Kind> {
        Some(match p {
            "bbb_livestream" => Kind::Livestream,
            "bbb_meeting" => Kind::Meeting,
            "bbb_attendee" => Kind::Attendee,
            "broadcasters" => Kind::Broadcaster,
            "buildings" => Kind::Building,
            "users" => Kind::User,
            "meeting_session" => Kind::Session,
            "meeting_livestream" => Kind::WebinarLivestream,
            _ => return None,
        })
    }
    fn prefix(self) -> &'static str {
        match self {
            Kind::Livestream => "bbb_livestream",
            Kind::Meeting => "bbb_meeting",
            Kind::Attendee => "bbb_attendee",
            Kind::Broadcaster => "broadcasters",
            Kind::Building => "buildings",
            Kind::User => "users",
            Kind::Session => "meeting_session",
            Kind::WebinarLivestream => "meeting_livestream",
        }
    }
}

#[derive(Debug)]
enum Route {
    Root,
    List(Kind),
    Detail(Kind, String),
}

/// Django URL resolution of Pod's REST router: trailing slash required, `.json` suffix
/// accepted, lookup values match `[^/.]+`.
fn resolve(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/rest/")?;
    if rest.is_empty() {
        return Some(Route::Root);
    }
    let trimmed = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(base) = trimmed.strip_suffix(".json") {
        return match base.split_once('/') {
            None => Kind::from_prefix(base).map(Route::List),
            Some((p, key)) if !key.is_empty() && !key.contains(['/', '.']) => {
                Kind::from_prefix(p).map(|k| Route::Detail(k, key.to_string()))
            }
            _ => None,
        };
    }
    let segs: Vec<&str> = rest.split('/').collect();
    match segs.as_slice() {
        [p, ""] => Kind::from_prefix(p).map(Route::List),
        [p, key, ""] if !key.is_empty() && !key.contains('.') => {
            Kind::from_prefix(p).map(|k| Route::Detail(k, key.to_string()))
        }
        _ => None,
    }
}

const REQUIRED: &str = "Ce champ est obligatoire.";
const NULL: &str = "Ce champ ne peut être nul.";
const BLANK: &str = "Ce champ ne peut être vide.";
const NOT_PROVIDED: &str = "Informations d'authentification non fournies.";

impl PodState {
    /// The `start_date` of a livestream made now: Pod's `timezone.now`, a microsecond
    /// after the last one made at the latest (two requests of a teacher are never made
    /// in the same microsecond; rows made in a loop here could be, and their order
    /// would then rest on the tie-break).
    fn creation_time(&mut self) -> DateTime<Utc> {
        let t = now_micros().max(self.last_created + chrono::TimeDelta::microseconds(1));
        self.last_created = t;
        t
    }

    fn take_fault(&mut self, method: &str, path: &str, query: &str) -> Option<Fault> {
        let with_query = format!("{path}?{query}");
        let i = self.faults.iter().position(|f| {
            // A prefix with a `?` is matched against the path and its query.
            let target = if f.prefix.contains('?') {
                &with_query
            } else {
                path
            };
            (f.method == "*" || f.method.eq_ignore_ascii_case(method))
                && target.starts_with(&f.prefix)
        })?;
        let rule = &mut self.faults[i];
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        rule.remaining -= 1;
        let fault = rule.fault.clone();
        if rule.remaining == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }

    fn dispatch(&mut self, r: &Incoming) -> Reply {
        let Some(route) = resolve(&r.path) else {
            // Django's CommonMiddleware (APPEND_SLASH): 301 to the slashed URL, whatever
            // the method (DEBUG off), before any authentication.
            let slashed = format!("{}/", r.path);
            if !r.path.ends_with('/') && resolve(&slashed).is_some() {
                let location = if r.query.is_empty() {
                    slashed
                } else {
                    format!("{slashed}?{}", r.query)
                };
                return Reply::html(301, String::new()).header("location", location);
            }
            return Reply::html(404, not_found_page());
        };
        let allow = match route {
            Route::Root => "GET, HEAD, OPTIONS",
            Route::List(_) => "GET, POST, HEAD, OPTIONS",
            Route::Detail(..) => "GET, PUT, PATCH, DELETE, HEAD, OPTIONS",
        };
        let reply = match self.authenticate(r) {
            Err(reply) => reply,
            Ok(()) => self.view(r, &route),
        };
        if reply.content_type == Some(JSON) {
            reply.header("allow", allow.to_string())
        } else {
            reply
        }
    }

    /// DRF `BasicAuthentication` then `TokenAuthentication`, then `IsAdminUser`.
    fn authenticate(&self, r: &Incoming) -> Result<(), Reply> {
        let unauthorized = |msg: &str| {
            Reply::detail(401, msg).header("www-authenticate", "Basic realm=\"api\"".into())
        };
        let Some(header) = &r.authorization else {
            return Err(unauthorized(NOT_PROVIDED));
        };
        let parts: Vec<&str> = header.split_ascii_whitespace().collect();
        let Some(keyword) = parts.first() else {
            return Err(unauthorized(NOT_PROVIDED));
        };
        let user = match keyword.to_ascii_lowercase().as_str() {
            "basic" => {
                return Err(match parts.len() {
                    1 => unauthorized(
                        "En-tête « basic » non valide. Pas d'information d'identification fournie.",
                    ),
                    2 => match base64_decode(parts[1]) {
                        Some(d) if String::from_utf8_lossy(&d).contains(':') => {
                            unauthorized("Nom d'utilisateur et/ou mot de passe non valide(s).")
                        }
                        _ => unauthorized(
                            "En-tête « basic » non valide. Identifiants incorrectement encodés en base64.",
                        ),
                    },
                    _ => unauthorized(
                        "En-tête « basic » non valide. Les identifiants ne doivent pas contenir d'espaces.",
                    ),
                });
            }
            "token" => match parts.len() {
                1 => {
                    return Err(unauthorized(
                        "En-tête « token » non valide. Pas d'information d'identification fournie.",
                    ));
                }
                2 => match self.users.values().find(|u| u.token == parts[1]) {
                    Some(u) => u,
                    None => return Err(unauthorized("Token non valide.")),
                },
                _ => {
                    return Err(unauthorized(
                        "En-tête « token » non valide. Un token ne doit pas contenir d'espaces.",
                    ));
                }
            },
            _ => return Err(unauthorized(NOT_PROVIDED)),
        };
        if !user.staff {
            return Err(Reply::detail(
                403,
                "Vous n'avez pas la permission d'effectuer cette action.",
            ));
        }
        Ok(())
    }

    fn view(&mut self, r: &Incoming, route: &Route) -> Reply {
        let method = r.method.as_str();
        let not_allowed = || Reply::detail(405, &format!("Méthode « {method} » non autorisée."));
        match (route, method) {
            (_, "OPTIONS") => Reply::json(
                200,
                json!({
                    "name": "Pod REST",
                    "description": "",
                    "renders": ["application/json", "text/html"],
                    "parses": ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
                })
                .to_string(),
            ),
            (Route::Root, "GET" | "HEAD") => {
                let base = format!("http://{}", r.host);
                let mut fields = Vec::new();
                for k in [
                    Kind::Meeting,
                    Kind::Attendee,
                    Kind::Livestream,
                    Kind::Building,
                    Kind::Broadcaster,
                    Kind::User,
                    Kind::Session,
                    Kind::WebinarLivestream,
                ] {
                    fields.push((k.prefix(), json!(format!("{base}/rest/{}/", k.prefix()))));
                }
                Reply::json(200, obj(&fields))
            }
            (Route::List(kind), "GET" | "HEAD") => self.list(r, *kind),
            (Route::List(Kind::Livestream), "POST") => self.create_live(r),
            (Route::List(Kind::Broadcaster), "POST") => self.create_broadcaster(r),
            (Route::Detail(kind, key), "GET" | "HEAD") => self.retrieve(r, *kind, key),
            (Route::Detail(kind, key), "PATCH" | "PUT") => {
                self.update(r, *kind, key, method == "PATCH")
            }
            (Route::Detail(kind, key), "DELETE") => self.destroy(*kind, key),
            _ => not_allowed(),
        }
    }

    // -- lists -----------------------------------------------------------------

    fn list(&self, r: &Incoming, kind: Kind) -> Reply {
        let base = format!("http://{}", r.host);
        let items: Vec<String> = match kind {
            Kind::Livestream => {
                // `Livestream.Meta.ordering = ["start_date"]` (pod/bbb/models.py, 2.8 to
                // 3.8.1). Postgres leaves ties in any order; the fake breaks them by id.
                let mut lives: Vec<&Live> = self
                    .lives
                    .values()
                    .filter(|l| !self.hidden.contains(&l.id))
                    .collect();
                lives.sort_by_key(|l| (l.start_date, l.id));
                if self.version == PodVersion::V2_8 {
                    // django-filter 1.1 honours `filter_fields = ("status", "server")`.
                    let params = parse_query(&r.query);
                    let last = |k: &str| {
                        params
                            .iter()
                            .rev()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v.clone())
                    };
                    if let Some(s) = last("status").filter(|s| !s.is_empty()) {
                        match s.as_str() {
                            "0" | "1" | "2" => {
                                let want: i64 = s.parse().unwrap_or_default();
                                lives.retain(|l| l.status == want);
                            }
                            _ => {
                                return Reply::json(
                                    400,
                                    json!({ "status": [format!("Sélectionnez un choix valide. {s} n’en fait pas partie.")] })
                                        .to_string(),
                                );
                            }
                        }
                    }
                    if let Some(s) = last("server").filter(|s| !s.is_empty()) {
                        lives.retain(|l| l.server.as_deref() == Some(s.as_str()));
                    }
                }
                lives.iter().map(|l| self.render_live(l, &r.host)).collect()
            }
            Kind::Meeting => self
                .meetings
                .values()
                .map(|m| self.render_meeting_at(m, &base))
                .collect(),
            Kind::Attendee => Vec::new(),
            Kind::Broadcaster => self
                .sorted_broadcasters()
                .into_iter()
                .map(|b| self.render_broadcaster(b, &r.host))
                .collect(),
            Kind::Building => {
                let mut b: Vec<(&u64, &String)> = self.buildings.iter().collect();
                b.sort_by(|x, y| x.1.cmp(y.1));
                b.into_iter()
                    .map(|(id, name)| self.render_building(*id, name, &base))
                    .collect()
            }
            Kind::User => self.users.values().map(|u| render_user(u, &base)).collect(),
            Kind::Session => self.sessions.values().map(render_session).collect(),
            Kind::WebinarLivestream => {
                // `Livestream.Meta.ordering = ["id"]`; `filterset_fields = ["status"]`
                // works (Pod 3.8.2+, django-filter 24.3).
                let params = parse_query(&r.query);
                let status = params
                    .iter()
                    .rev()
                    .find(|(n, _)| n == "status")
                    .map(|(_, v)| v.clone())
                    .filter(|s| !s.is_empty());
                let want = match status.as_deref() {
                    None => None,
                    Some(s @ ("0" | "1" | "2")) => s.parse::<i64>().ok(),
                    Some(s) => {
                        return Reply::json(
                            400,
                            json!({ "status": [format!("Sélectionnez un choix valide. {s} n’en fait pas partie.")] })
                                .to_string(),
                        );
                    }
                };
                self.webinar_lives
                    .values()
                    .filter(|l| want.is_none_or(|w| l.status == w))
                    .map(|l| render_webinar_live(l, &base))
                    .collect()
            }
        };
        self.paginate(r, items)
    }

    /// DRF `PageNumberPagination`.
    fn paginate(&self, r: &Incoming, items: Vec<String>) -> Reply {
        let params = parse_query(&r.query);
        let num_pages = items.len().div_ceil(self.page_size).max(1);
        let page = match params.iter().rev().find(|(k, _)| k == "page") {
            None => 1,
            Some((_, v)) if v == "last" => num_pages,
            Some((_, v)) => match v.trim().parse::<i64>() {
                Ok(n) if n >= 1 && (n as usize) <= num_pages => n as usize,
                // DRF's `invalid_page_message`, in Pod's French: DRF 3.11 (Pod 2.8)
                // and 3.14 (Pod 3.1+) translate it differently.
                _ => {
                    return Reply::detail(
                        404,
                        match self.version {
                            PodVersion::V2_8 => "Page invalide.",
                            PodVersion::V3_8 => "Page non valide.",
                        },
                    );
                }
            },
        };
        let start = (page - 1) * self.page_size;
        let results: Vec<String> = items
            .iter()
            .skip(start)
            .take(self.page_size)
            .cloned()
            .collect();
        let link = |page: Option<usize>| -> Value {
            let mut q: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (k, v) in &params {
                q.entry(k.clone()).or_default().push(v.clone());
            }
            q.remove("page");
            if let Some(p) = page {
                q.insert("page".into(), vec![p.to_string()]);
            }
            let query: Vec<String> = q
                .iter()
                .flat_map(|(k, vs)| {
                    vs.iter()
                        .map(move |v| format!("{}={}", quote_plus(k), quote_plus(v)))
                })
                .collect();
            let mut url = format!("http://{}{}", r.host, r.path);
            if !query.is_empty() {
                url.push('?');
                url.push_str(&query.join("&"));
            }
            Value::String(url)
        };
        let next = if page < num_pages {
            link(Some(page + 1))
        } else {
            Value::Null
        };
        let previous = match page {
            1 => Value::Null,
            2 => link(None),
            p => link(Some(p - 1)),
        };
        Reply::json(
            200,
            format!(
                "{{\"count\":{},\"next\":{},\"previous\":{},\"results\":[{}]}}",
                items.len(),
                next,
                previous,
                results.join(",")
            ),
        )
    }

    // -- retrieve / update / destroy --------------------------------------------

    fn retrieve(&self, r: &Incoming, kind: Kind, key: &str) -> Reply {
        let base = format!("http://{}", r.host);
        let pk = key.parse::<u64>().ok();
        let body = match kind {
            Kind::Livestream => pk
                .and_then(|pk| self.lives.get(&pk))
                .map(|l| self.render_live(l, &r.host)),
            Kind::Meeting => pk
                .and_then(|pk| self.meetings.get(&pk))
                .map(|m| self.render_meeting_at(m, &base)),
            Kind::Attendee => None,
            Kind::Broadcaster => self
                .broadcasters
                .values()
                .find(|b| b.slug == key)
                .map(|b| self.render_broadcaster(b, &r.host)),
            Kind::Building => pk
                .and_then(|pk| self.buildings.get_key_value(&pk))
                .map(|(id, name)| self.render_building(*id, name, &base)),
            Kind::User => pk
                .and_then(|pk| self.users.get(&pk))
                .map(|u| render_user(u, &base)),
            Kind::Session => pk.and_then(|pk| self.sessions.get(&pk)).map(render_session),
            Kind::WebinarLivestream => pk
                .and_then(|pk| self.webinar_lives.get(&pk))
                .map(|l| render_webinar_live(l, &base)),
        };
        match body {
            Some(b) => Reply::json(200, b),
            None => Reply::not_found(),
        }
    }

    fn update(&mut self, r: &Incoming, kind: Kind, key: &str, partial: bool) -> Reply {
        let pk = key.parse::<u64>().ok();
        let method = r.method.as_str();
        match kind {
            Kind::Livestream => {
                let Some(live) = pk.and_then(|pk| self.lives.get(&pk)).cloned() else {
                    return Reply::not_found();
                };
                let input = match parse_body(r) {
                    Ok(i) => i,
                    Err(reply) => return reply,
                };
                match self.validate(LIVE_FIELDS, &input, partial, live) {
                    Ok(live) => {
                        let body = self.render_live(&live, &r.host);
                        self.lives.insert(live.id, live);
                        Reply::json(200, body)
                    }
                    Err(errs) => Reply::json(400, render_errors(&errs)),
                }
            }
            Kind::Meeting => {
                let Some(m) = pk.and_then(|pk| self.meetings.get(&pk)).cloned() else {
                    return Reply::not_found();
                };
                let input = match parse_body(r) {
                    Ok(i) => i,
                    Err(reply) => return reply,
                };
                match self.validate(MEETING_FIELDS, &input, partial, m) {
                    Ok(m) => {
                        let body = self.render_meeting_at(&m, &format!("http://{}", r.host));
                        self.meetings.insert(m.id, m);
                        Reply::json(200, body)
                    }
                    Err(errs) => Reply::json(400, render_errors(&errs)),
                }
            }
            Kind::Broadcaster => {
                let Some(b) = self.broadcasters.values().find(|b| b.slug == key).cloned() else {
                    return Reply::not_found();
                };
                let input = match parse_body(r) {
                    Ok(i) => i,
                    Err(reply) => return reply,
                };
                self.save_broadcaster(r, &input, partial, b, 200)
            }
            Kind::WebinarLivestream => {
                let Some(mut live) = pk.and_then(|pk| self.webinar_lives.get(&pk)).cloned() else {
                    return Reply::not_found();
                };
                let input = match parse_body(r) {
                    Ok(i) => i,
                    Err(reply) => return reply,
                };
                // `id` and `live_gateway_id` are read-only; `meeting` and `event` are
                // required hyperlinks, `status` a choice with a default.
                let mut errs: Errors = Vec::new();
                match input.get("meeting") {
                    Some(v) => match to_link(v, "meeting_session", false, |id| {
                        self.sessions.contains_key(&id)
                    }) {
                        Ok(Some(id)) => live.meeting = id,
                        Ok(None) => {}
                        Err(e) => errs.push(("meeting".into(), vec![e])),
                    },
                    None if !partial => errs.push(("meeting".into(), vec![REQUIRED.into()])),
                    None => {}
                }
                if let Some(v) = input.get("status") {
                    match to_choice(v, &[0, 1, 2]) {
                        Ok(s) => live.status = s,
                        Err(e) => errs.push(("status".into(), vec![e])),
                    }
                }
                if input.get("event").is_none() && !partial {
                    errs.push(("event".into(), vec![REQUIRED.into()]));
                }
                if !errs.is_empty() {
                    return Reply::json(400, render_errors(&errs));
                }
                let body = render_webinar_live(&live, &format!("http://{}", r.host));
                self.webinar_lives.insert(live.id, live);
                Reply::json(200, body)
            }
            _ => Reply::detail(405, &format!("Méthode « {method} » non autorisée.")),
        }
    }

    fn destroy(&mut self, kind: Kind, key: &str) -> Reply {
        let pk = key.parse::<u64>().ok();
        let removed = match kind {
            Kind::Livestream => pk.and_then(|pk| self.lives.remove(&pk)).is_some(),
            Kind::Meeting => {
                let found = pk.and_then(|pk| self.meetings.remove(&pk)).is_some();
                if let (true, Some(pk)) = (found, pk) {
                    // on_delete=CASCADE
                    self.lives.retain(|_, l| l.meeting != pk);
                }
                found
            }
            Kind::Broadcaster => {
                let id = self
                    .broadcasters
                    .values()
                    .find(|b| b.slug == key)
                    .map(|b| b.id);
                id.and_then(|id| self.broadcasters.remove(&id)).is_some()
            }
            _ => return Reply::detail(405, "Méthode « DELETE » non autorisée."),
        };
        if removed {
            Reply {
                status: 204,
                content_type: None,
                body: String::new(),
                headers: vec![("vary", "Accept".into())],
            }
        } else {
            Reply::not_found()
        }
    }

    fn create_live(&mut self, r: &Incoming) -> Reply {
        let input = match parse_body(r) {
            Ok(i) => i,
            Err(reply) => return reply,
        };
        let live = Live {
            id: self.next_id.live,
            meeting: 0,
            start_date: self.creation_time(),
            end_date: None,
            show_chat: true,
            download_meeting: false,
            enable_chat: false,
            is_restricted: false,
            broadcaster_id: None,
            redis_hostname: None,
            redis_port: None,
            redis_channel: None,
            status: 0,
            server: None,
            user: None,
        };
        match self.validate(LIVE_FIELDS, &input, false, live) {
            Ok(live) => {
                self.next_id.live += 1;
                let body = self.render_live(&live, &r.host);
                self.lives.insert(live.id, live);
                Reply::json(201, body)
            }
            Err(errs) => Reply::json(400, render_errors(&errs)),
        }
    }

    fn create_broadcaster(&mut self, r: &Incoming) -> Reply {
        let input = match parse_body(r) {
            Ok(i) => i,
            Err(reply) => return reply,
        };
        let b = Broadcaster {
            id: 0,
            name: String::new(),
            slug: String::new(),
            building: 0,
            description: String::new(),
            poster: None,
            stream_url: String::new(),
            status: false,
            is_restricted: false,
            manage_groups: Vec::new(),
            piloting_implementation: None,
            piloting_conf: None,
        };
        self.save_broadcaster(r, &input, false, b, 201)
    }

    /// Validates like the version's `BroadcasterSerializer`, then saves like the model
    /// (slug recomputed on every save; database and file-system failures → HTML 500).
    fn save_broadcaster(
        &mut self,
        r: &Incoming,
        input: &Map<String, Value>,
        partial: bool,
        current: Broadcaster,
        ok_status: u16,
    ) -> Reply {
        let fields = match self.version {
            PodVersion::V2_8 => BROADCASTER_FIELDS_2_8,
            PodVersion::V3_8 => BROADCASTER_FIELDS_3_8,
        };
        let mut b = match self.validate(fields, input, partial, current) {
            Ok(b) => b,
            Err(errs) => return Reply::json(400, render_errors(&errs)),
        };
        // Model save: slug = slugify(name) on every save; unique slug and stream URL are
        // enforced by the database only (IntegrityError → 500), and Pod 3.x writes
        // MEDIA_ROOT/live_transcripts/<slug>.vtt_empty.vtt (ENAMETOOLONG → 500).
        b.slug = self.slugify(&b.name);
        let clash_slug = self
            .broadcasters
            .values()
            .any(|o| o.id != b.id && o.slug == b.slug);
        let clash_url = self
            .broadcasters
            .values()
            .any(|o| o.id != b.id && o.stream_url == b.stream_url);
        let too_long = self.version == PodVersion::V3_8
            && (b.slug.chars().count() > 200 || format!("{}.vtt_empty.vtt", b.slug).len() > 255);
        if clash_slug || clash_url || too_long {
            return Reply::html(500, server_error_page());
        }
        if b.id == 0 {
            b.id = self.next_id.broadcaster;
            self.next_id.broadcaster += 1;
        }
        let body = self.render_broadcaster(&b, &r.host);
        let location = match self.version {
            // DRF's Location is the `url` field: the stream URL on Pod 2.x.
            PodVersion::V2_8 => b.stream_url.clone(),
            PodVersion::V3_8 => format!("http://{}/rest/broadcasters/{}/", r.host, b.slug),
        };
        self.broadcasters.insert(b.id, b);
        let reply = Reply::json(ok_status, body);
        if ok_status == 201 {
            reply.header("location", location)
        } else {
            reply
        }
    }

    /// Validates `input` like a DRF serializer with these `fields` (their order is the
    /// order of the error keys) and returns `row` updated, or every field's errors.
    fn validate<T>(
        &self,
        fields: &[Field<T>],
        input: &Map<String, Value>,
        partial: bool,
        mut row: T,
    ) -> Result<T, Errors> {
        let mut errs: Errors = Vec::new();
        for field in fields {
            match input.get(field.name) {
                Some(v) => {
                    if let Err(e) = self.read(&field.read, v, &mut row) {
                        errs.push((field.name.to_string(), e));
                    }
                }
                None if field.required && !partial => {
                    errs.push((field.name.to_string(), vec![REQUIRED.into()]))
                }
                None => {}
            }
        }
        if errs.is_empty() { Ok(row) } else { Err(errs) }
    }

    /// One field's input read into `row`, or its error messages.
    fn read<T>(&self, read: &Read<T>, v: &Value, row: &mut T) -> Result<(), Vec<String>> {
        let one = |e: String| vec![e];
        let null = || vec![NULL.to_string()];
        match *read {
            Read::Bool(to) => *to(row) = to_bool(v).map_err(one)?,
            Read::Int(to) => *to(row) = to_int(v).map_err(one)?,
            Read::Choice(choices, to) => *to(row) = to_choice(v, choices).map_err(one)?,
            Read::Text { max, blank, to } => {
                *to(row) = to_char(v, max, false, blank)?.ok_or_else(null)?
            }
            Read::OptText { max, to } => *to(row) = to_char(v, max, true, true)?,
            Read::Date(to) => *to(row) = to_datetime(v).map_err(one)?.ok_or_else(null)?,
            Read::OptDate(to) => *to(row) = to_datetime(v).map_err(one)?,
            Read::Link(target, to) => {
                *to(row) = self
                    .to_link(v, target, false)
                    .map_err(one)?
                    .ok_or_else(null)?
            }
            Read::OptLink(target, to) => *to(row) = self.to_link(v, target, true).map_err(one)?,
            Read::Custom(f) => f(self, v, row)?,
        }
        Ok(())
    }

    /// `HyperlinkedRelatedField` to `target`: only the path counts, the row must exist.
    fn to_link(&self, v: &Value, target: Target, nullable: bool) -> Result<Option<u64>, String> {
        let exists = |id: u64| match target {
            Target::Meeting => self.meetings.contains_key(&id),
            // Pod's `limit_choices_to`: staff users only.
            Target::StaffUser => self.users.get(&id).is_some_and(|u| u.staff),
            Target::Building => self.buildings.contains_key(&id),
            // No image is ever uploaded to the fake.
            Target::Image => false,
        };
        to_link(v, target.prefix(), nullable, exists)
    }

    // -- rendering ----------------------------------------------------------------

    fn slugify(&self, name: &str) -> String {
        match self.version {
            PodVersion::V2_8 => slugify_django111(name),
            PodVersion::V3_8 => slugify_django32(name),
        }
    }

    fn sorted_broadcasters(&self) -> Vec<&Broadcaster> {
        let mut v: Vec<&Broadcaster> = self.broadcasters.values().collect();
        v.sort_by(|a, b| {
            let ba = self.buildings.get(&a.building);
            let bb = self.buildings.get(&b.building);
            ba.cmp(&bb).then_with(|| a.name.cmp(&b.name))
        });
        v
    }

    fn render_live(&self, l: &Live, host: &str) -> String {
        let base = format!("http://{host}");
        let mut fields: Vec<(String, Value)> = vec![
            ("id", json!(l.id)),
            (
                "meeting",
                json!(format!("{base}/rest/bbb_meeting/{}/", l.meeting)),
            ),
            ("start_date", json!(fmt_dt(&l.start_date))),
            (
                "end_date",
                l.end_date
                    .as_ref()
                    .map(fmt_dt)
                    .map_or(Value::Null, Value::String),
            ),
            ("show_chat", json!(l.show_chat)),
            ("download_meeting", json!(l.download_meeting)),
            ("enable_chat", json!(l.enable_chat)),
            ("is_restricted", json!(l.is_restricted)),
            ("broadcaster_id", json!(l.broadcaster_id)),
            ("redis_hostname", json!(l.redis_hostname)),
            ("redis_port", json!(l.redis_port)),
            ("redis_channel", json!(l.redis_channel)),
            ("status", json!(l.status)),
            ("server", json!(l.server)),
            (
                "user",
                l.user
                    .map_or(Value::Null, |u| json!(format!("{base}/rest/users/{u}/"))),
            ),
        ]
        .into_iter()
        .map(|(k, v): (&str, Value)| (k.to_string(), v))
        .collect();
        for (field, value) in self.corrupt.get(&l.id).into_iter().flatten() {
            let at = fields.iter().position(|(k, _)| k == field);
            match (at, value) {
                (Some(i), Some(v)) => fields[i].1 = v.clone(),
                (None, Some(v)) => fields.push((field.clone(), v.clone())),
                (Some(i), None) => {
                    fields.remove(i);
                }
                (None, None) => {}
            }
        }
        let fields: Vec<(&str, Value)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        obj(&fields)
    }

    fn render_meeting(&self, m: &Meeting) -> String {
        self.render_meeting_at(m, &format!("http://{}", self.host))
    }

    fn render_meeting_at(&self, m: &Meeting, base: &str) -> String {
        obj(&[
            ("id", json!(m.id)),
            ("meeting_id", json!(m.meeting_id)),
            ("internal_meeting_id", json!(m.internal_meeting_id)),
            ("meeting_name", json!(m.meeting_name)),
            ("encoding_step", json!(m.encoding_step)),
            ("recorded", json!(m.recorded)),
            ("recording_available", json!(m.recording_available)),
            ("recording_url", json!(m.recording_url)),
            ("thumbnail_url", json!(m.thumbnail_url)),
            (
                "encoded_by",
                m.encoded_by
                    .map_or(Value::Null, |u| json!(format!("{base}/rest/users/{u}/"))),
            ),
            ("session_date", json!(fmt_dt(&m.session_date))),
            (
                "last_date_in_progress",
                json!(fmt_dt(&m.last_date_in_progress)),
            ),
        ])
    }

    fn render_broadcaster(&self, b: &Broadcaster, host: &str) -> String {
        let base = format!("http://{host}");
        let building = json!(format!("{base}/rest/buildings/{}/", b.building));
        match self.version {
            PodVersion::V2_8 => obj(&[
                ("id", json!(b.id)),
                ("url", json!(b.stream_url)),
                ("name", json!(b.name)),
                ("slug", json!(b.slug)),
                ("building", building),
                ("description", json!(b.description)),
                ("poster", json!(b.poster)),
                ("status", json!(b.status)),
                ("is_restricted", json!(b.is_restricted)),
            ]),
            PodVersion::V3_8 => obj(&[
                ("id", json!(b.id)),
                (
                    "url",
                    json!(format!("{base}/rest/broadcasters/{}/", b.slug)),
                ),
                ("name", json!(b.name)),
                ("slug", json!(b.slug)),
                ("building", building),
                ("description", json!(b.description)),
                ("poster", json!(b.poster)),
                ("broadcaster_url", json!(b.stream_url)),
                ("status", json!(b.status)),
                ("is_restricted", json!(b.is_restricted)),
                ("manage_groups", json!(b.manage_groups)),
                ("piloting_implementation", json!(b.piloting_implementation)),
                (
                    "piloting_conf",
                    json!(b.piloting_conf.clone().unwrap_or_default()),
                ),
            ]),
        }
    }

    fn render_building(&self, id: u64, name: &str, base: &str) -> String {
        let mut fields = vec![
            ("id", json!(id)),
            ("url", json!(format!("{base}/rest/buildings/{id}/"))),
            ("name", json!(name)),
            ("headband", Value::Null),
            ("gmapurl", Value::Null),
        ];
        if self.version == PodVersion::V3_8 {
            fields.push(("sites", json!([format!("{base}/rest/sites/1/")])));
        }
        obj(&fields)
    }
}

fn render_user(u: &User, base: &str) -> String {
    obj(&[
        ("id", json!(u.id)),
        ("url", json!(format!("{base}/rest/users/{}/", u.id))),
        ("username", json!(u.username)),
        ("first_name", json!("Prénom")),
        ("last_name", json!(format!("Nom{}", u.id))),
        ("email", json!(format!("{}@univ.example", u.username))),
        ("groups", json!([])),
    ])
}

/// `pod/meeting/rest_views.py` `MeetingModelSerializer` (only the fields it lists).
fn render_session(m: &Session) -> String {
    obj(&[
        ("id", json!(m.id)),
        ("name", json!(m.name)),
        ("meeting_id", json!(m.meeting_id)),
        ("start_at", json!(fmt_dt(&m.created_at))),
        ("created_at", json!(fmt_dt(&m.created_at))),
        ("owner_id", json!(1)),
        ("is_personal", json!(false)),
        ("is_webinar", json!(true)),
        ("site_id", json!(1)),
    ])
}

/// `pod/meeting/rest_views.py` `LivestreamModelSerializer`: `meeting` and `event`
/// are hyperlinks, `live_gateway_id` the bare key.
fn render_webinar_live(l: &WebinarLive, base: &str) -> String {
    obj(&[
        ("id", json!(l.id)),
        (
            "meeting",
            json!(format!("{base}/rest/meeting_session/{}/", l.meeting)),
        ),
        ("status", json!(l.status)),
        ("event", json!(format!("{base}/rest/events/{}/", l.event))),
        ("live_gateway_id", json!(l.live_gateway)),
    ])
}

/// A JSON object with its keys in the given (serializer) order, compact, UTF-8 unescaped.
fn obj(fields: &[(&str, Value)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String((*k).to_string()).to_string());
        out.push(':');
        out.push_str(&v.to_string());
    }
    out.push('}');
    out
}

type Errors = Vec<(String, Vec<String>)>;

fn render_errors(errs: &Errors) -> String {
    let fields: Vec<(&str, Value)> = errs.iter().map(|(k, v)| (k.as_str(), json!(v))).collect();
    obj(&fields)
}

/// DRF datetime rendering: UTC as `Z`, microseconds only when non-zero.
fn fmt_dt(d: &DateTime<Utc>) -> String {
    if d.timestamp_subsec_micros() == 0 {
        d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

// ---------------------------------------------------------------------------
// Request bodies (DRF parsers)
// ---------------------------------------------------------------------------

fn parse_body(r: &Incoming) -> Result<Map<String, Value>, Reply> {
    if r.body.is_empty() {
        return Ok(Map::new());
    }
    let Some(ct) = r.content_type.as_deref() else {
        return Ok(Map::new());
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => match serde_json::from_slice::<Value>(&r.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => Err(Reply::json(
                400,
                json!({ "non_field_errors": [format!("Donnée invalide. Un dictionnaire était attendu, mais on a reçu {}.", py_type(&other))] })
                    .to_string(),
            )),
            Err(e) => Err(Reply::detail(400, &format!("JSON parse error - {}", python_json_error(&e, &r.body)))),
        },
        "application/x-www-form-urlencoded" => {
            Ok(form_to_map(parse_query(&String::from_utf8_lossy(&r.body))))
        }
        "multipart/form-data" => {
            let parsed = boundary(ct).and_then(|b| parse_multipart(&r.body, &b));
            match parsed {
                Some(fields) => Ok(form_to_map(fields)),
                None => Err(Reply::detail(400, "Multipart form parse error - Invalid boundary in multipart: None")),
            }
        }
        _ => Err(Reply::detail(415, &format!("Type de média « {ct} » non supporté."))),
    }
}

/// A Django `QueryDict` read as DRF does: the last value of a key, lists for list fields.
fn form_to_map(fields: Vec<(String, String)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in fields {
        if k == "manage_groups" {
            let entry = map.entry(k).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entry
                && !v.is_empty()
            {
                a.push(Value::String(v));
            }
        } else {
            map.insert(k, Value::String(v));
        }
    }
    map
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case("boundary")).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Form fields of a `multipart/form-data` body (file parts give their file name).
fn parse_multipart(body: &[u8], boundary: &str) -> Option<Vec<(String, String)>> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut pos = find(body, d, 0)? + d.len();
    let mut out = Vec::new();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some(out);
        }
        if body.get(pos..pos + 2) == Some(b"\r\n") {
            pos += 2;
        }
        let header_end = find(body, b"\r\n\r\n", pos)?;
        let headers = String::from_utf8_lossy(&body[pos..header_end]).into_owned();
        let content_start = header_end + 4;
        let next = find(body, format!("\r\n{delim}").as_bytes(), content_start)?;
        let content = &body[content_start..next];
        let disposition = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
        let param = |key: &str| {
            disposition.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        let name = param("name")?;
        let value = match param("filename") {
            Some(f) => f,
            None => String::from_utf8_lossy(content).into_owned(),
        };
        out.push((name, value));
        pos = next + 2 + d.len();
    }
}

/// Python's name of a JSON value's type, as DRF messages show it.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's `str()` of a JSON value (what DRF interpolates in `« {input} »`).
fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The message Python's `json` module gives for a syntax error, approximately.
fn python_json_error(e: &serde_json::Error, body: &[u8]) -> String {
    let text = e.to_string();
    let what = if text.contains("trailing characters") {
        "Extra data"
    } else if text.contains("key must be a string") {
        "Expecting property name enclosed in double quotes"
    } else if text.contains("expected `,` or `}`") || text.contains("expected `,` or `]`") {
        "Expecting ',' delimiter"
    } else if text.contains("expected `:`") {
        "Expecting ':' delimiter"
    } else if text.contains("EOF while parsing a string") || text.contains("control character") {
        "Unterminated string starting at"
    } else {
        "Expecting value"
    };
    let (line, col) = (e.line(), e.column().max(1));
    let offset: usize = String::from_utf8_lossy(body)
        .split('\n')
        .take(line.saturating_sub(1))
        .map(|l| l.chars().count() + 1)
        .sum::<usize>()
        + col
        - 1;
    format!("{what}: line {line} column {col} (char {offset})")
}

// ---------------------------------------------------------------------------
// The serializers' fields
// ---------------------------------------------------------------------------

/// A serializer field: its name, whether a full write (POST, PUT) must send it, and how
/// DRF reads it into the row.
struct Field<T> {
    name: &'static str,
    required: bool,
    read: Read<T>,
}

/// How DRF reads a field, and the row's attribute it sets.
enum Read<T> {
    /// `BooleanField`.
    Bool(fn(&mut T) -> &mut bool),
    /// `IntegerField` of a nullable column.
    Int(fn(&mut T) -> &mut Option<i64>),
    /// `ChoiceField` over integers.
    Choice(&'static [i64], fn(&mut T) -> &mut i64),
    /// `CharField` of a non-null column: at most `max` characters, blank or not.
    Text {
        max: Option<usize>,
        blank: bool,
        to: fn(&mut T) -> &mut String,
    },
    /// `CharField` of a nullable column (null and blank accepted).
    OptText {
        max: Option<usize>,
        to: fn(&mut T) -> &mut Option<String>,
    },
    /// `DateTimeField` of a non-null column.
    Date(fn(&mut T) -> &mut DateTime<Utc>),
    /// `DateTimeField` of a nullable column.
    OptDate(fn(&mut T) -> &mut Option<DateTime<Utc>>),
    /// `HyperlinkedRelatedField`, not null.
    Link(Target, fn(&mut T) -> &mut u64),
    /// `HyperlinkedRelatedField`, null (or `""`) accepted.
    OptLink(Target, fn(&mut T) -> &mut Option<u64>),
    /// A field with rules of its own (checked against the other rows).
    Custom(fn(&PodState, &Value, &mut T) -> Result<(), Vec<String>>),
}

/// What a hyperlink may point at.
#[derive(Clone, Copy)]
enum Target {
    Meeting,
    StaffUser,
    Building,
    Image,
}

impl Target {
    /// The router prefix of the rows it points at.
    fn prefix(self) -> &'static str {
        match self {
            Target::Meeting => "bbb_meeting",
            Target::StaffUser => "users",
            Target::Building => "buildings",
            Target::Image => "images",
        }
    }
}

const fn field<T>(name: &'static str, required: bool, read: Read<T>) -> Field<T> {
    Field {
        name,
        required,
        read,
    }
}

/// `LivestreamModelSerializer` (Pod 2.8 to 3.8.1), in its field order.
#[rustfmt::skip]
const LIVE_FIELDS: &[Field<Live>] = &[
    field("meeting",          true,  Read::Link(Target::Meeting, |l| &mut l.meeting)),
    field("start_date",       false, Read::Date(|l| &mut l.start_date)),
    field("end_date",         false, Read::OptDate(|l| &mut l.end_date)),
    field("show_chat",        false, Read::Bool(|l| &mut l.show_chat)),
    field("download_meeting", false, Read::Bool(|l| &mut l.download_meeting)),
    field("enable_chat",      false, Read::Bool(|l| &mut l.enable_chat)),
    field("is_restricted",    false, Read::Bool(|l| &mut l.is_restricted)),
    field("broadcaster_id",   false, Read::Int(|l| &mut l.broadcaster_id)),
    field("redis_hostname",   false, Read::OptText { max: Some(200), to: |l| &mut l.redis_hostname }),
    field("redis_port",       false, Read::Int(|l| &mut l.redis_port)),
    field("redis_channel",    false, Read::OptText { max: Some(200), to: |l| &mut l.redis_channel }),
    field("status",           false, Read::Choice(&[0, 1, 2], |l| &mut l.status)),
    field("server",           false, Read::OptText { max: Some(20), to: |l| &mut l.server }),
    field("user",             false, Read::OptLink(Target::StaffUser, |l| &mut l.user)),
];

/// `MeetingModelSerializer` (Pod 2.8 to 3.8.1), in its field order.
#[rustfmt::skip]
const MEETING_FIELDS: &[Field<Meeting>] = &[
    field("meeting_id",            true,  Read::Text { max: Some(200), blank: false, to: |m| &mut m.meeting_id }),
    field("internal_meeting_id",   true,  Read::Text { max: Some(200), blank: false, to: |m| &mut m.internal_meeting_id }),
    field("meeting_name",          true,  Read::Text { max: Some(200), blank: false, to: |m| &mut m.meeting_name }),
    field("encoding_step",         false, Read::Choice(&[0, 1, 2, 3], |m| &mut m.encoding_step)),
    field("recorded",              false, Read::Bool(|m| &mut m.recorded)),
    field("recording_available",   false, Read::Bool(|m| &mut m.recording_available)),
    field("recording_url",         true,  Read::Text { max: None, blank: false, to: |m| &mut m.recording_url }),
    field("thumbnail_url",         true,  Read::Text { max: None, blank: false, to: |m| &mut m.thumbnail_url }),
    field("encoded_by",            false, Read::OptLink(Target::StaffUser, |m| &mut m.encoded_by)),
    field("session_date",          false, Read::Date(|m| &mut m.session_date)),
    field("last_date_in_progress", false, Read::Date(|m| &mut m.last_date_in_progress)),
];

/// `BroadcasterSerializer` of Pod 2.8 to 2.9.2: `url` is the stream URL.
#[rustfmt::skip]
const BROADCASTER_FIELDS_2_8: &[Field<Broadcaster>] = &[
    field("url",           true,  Read::Custom(unique_stream_url)),
    field("name",          true,  Read::Custom(unique_name)),
    field("building",      true,  Read::Link(Target::Building, |b| &mut b.building)),
    field("description",   false, Read::Text { max: None, blank: true, to: |b| &mut b.description }),
    field("poster",        false, Read::OptLink(Target::Image, |b| &mut b.poster)),
    field("status",        false, Read::Bool(|b| &mut b.status)),
    field("is_restricted", false, Read::Bool(|b| &mut b.is_restricted)),
];

/// `BroadcasterSerializer` of Pod 2.9.3 to 3.8.1: `url` is the (read-only) identity
/// link, the stream URL is `broadcaster_url`.
#[rustfmt::skip]
const BROADCASTER_FIELDS_3_8: &[Field<Broadcaster>] = &[
    field("name",                    true,  Read::Custom(unique_name)),
    field("building",                true,  Read::Link(Target::Building, |b| &mut b.building)),
    field("description",             false, Read::Text { max: None, blank: true, to: |b| &mut b.description }),
    field("poster",                  false, Read::OptLink(Target::Image, |b| &mut b.poster)),
    field("broadcaster_url",         true,  Read::Custom(stream_url)),
    field("status",                  false, Read::Bool(|b| &mut b.status)),
    field("is_restricted",           false, Read::Bool(|b| &mut b.is_restricted)),
    field("manage_groups",           false, Read::Custom(manage_groups)),
    field("piloting_implementation", false, Read::OptText { max: Some(100), to: |b| &mut b.piloting_implementation }),
    field("piloting_conf",           false, Read::OptText { max: None, to: |b| &mut b.piloting_conf }),
];

/// The stream URL (`broadcaster_url`, Pod ≥ 2.9.3): unique in the database only.
fn stream_url(_: &PodState, v: &Value, b: &mut Broadcaster) -> Result<(), Vec<String>> {
    b.stream_url = to_url(v)?;
    Ok(())
}

/// The stream URL as `url` (Pod ≤ 2.9.2): the model field's `unique=True` gives the
/// serializer a `UniqueValidator`.
fn unique_stream_url(pod: &PodState, v: &Value, b: &mut Broadcaster) -> Result<(), Vec<String>> {
    let u = to_url(v)?;
    if pod
        .broadcasters
        .values()
        .any(|o| o.id != b.id && o.stream_url == u)
    {
        return Err(vec![
            "Un objet Diffuseur avec ce champ URL existe déjà.".into(),
        ]);
    }
    b.stream_url = u;
    Ok(())
}

/// The broadcaster's `name`: at most 200 characters, unique (`UniqueValidator`).
fn unique_name(pod: &PodState, v: &Value, b: &mut Broadcaster) -> Result<(), Vec<String>> {
    let Some(name) = to_char(v, Some(200), false, false)? else {
        return Err(vec![NULL.into()]);
    };
    let mut msgs = Vec::new();
    if name.chars().count() > 200 {
        msgs.push("Assurez-vous que ce champ comporte au plus 200 caractères.".to_string());
    }
    if pod
        .broadcasters
        .values()
        .any(|o| o.id != b.id && o.name == name)
    {
        msgs.push("Un objet Diffuseur avec ce champ nom existe déjà.".to_string());
    }
    if !msgs.is_empty() {
        return Err(msgs);
    }
    b.name = name;
    Ok(())
}

/// `manage_groups`: a list of group links; the fake has no group, so only an empty one.
fn manage_groups(_: &PodState, v: &Value, b: &mut Broadcaster) -> Result<(), Vec<String>> {
    match v {
        Value::Array(items) if items.is_empty() => b.manage_groups.clear(),
        Value::String(s) if s.is_empty() => b.manage_groups.clear(),
        Value::Array(_) | Value::String(_) => {
            return Err(vec!["Lien non valide : l'objet n'existe pas.".into()]);
        }
        other => {
            return Err(vec![format!(
                "Attendait une liste d'éléments mais a reçu \"{}\".",
                py_type(other)
            )]);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// DRF field parsing
// ---------------------------------------------------------------------------

/// `BooleanField` (not nullable).
fn to_bool(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Err(NULL.into()),
        Value::Number(n) if n.as_f64() == Some(1.0) => Ok(true),
        Value::Number(n) if n.as_f64() == Some(0.0) => Ok(false),
        Value::String(s) => match s.as_str() {
            "t" | "T" | "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on"
            | "On" | "ON" | "1" => Ok(true),
            "f" | "F" | "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off"
            | "Off" | "OFF" | "0" => Ok(false),
            _ => Err("Doit être un booléen valide.".into()),
        },
        _ => Err("Doit être un booléen valide.".into()),
    }
}

/// `IntegerField` on a nullable model `IntegerField`.
fn to_int(v: &Value) -> Result<Option<i64>, String> {
    const INVALID: &str = "Un nombre entier valide est requis.";
    let n: i64 = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
            _ => return Err(INVALID.into()),
        },
        Value::String(s) => {
            // Python: int(re.sub(r"\.0*\s*$", "", str(data))); int() trims whitespace.
            let mut t = s.trim_end();
            if let Some(dot) = t.rfind('.')
                && t[dot + 1..].bytes().all(|b| b == b'0')
            {
                t = &t[..dot];
            }
            t.trim().parse::<i64>().map_err(|_| INVALID.to_string())?
        }
        _ => return Err(INVALID.into()),
    };
    if n > 2_147_483_647 {
        return Err("Assurez-vous que cette valeur est inférieure ou égale à 2147483647.".into());
    }
    if n < -2_147_483_648 {
        return Err("Assurez-vous que cette valeur est supérieure ou égale à -2147483648.".into());
    }
    Ok(Some(n))
}

/// `CharField` (whitespace trimmed). `Ok(None)` only for an accepted null.
fn to_char(
    v: &Value,
    max: Option<usize>,
    nullable: bool,
    blank: bool,
) -> Result<Option<String>, Vec<String>> {
    let s = match v {
        Value::Null if nullable => return Ok(None),
        Value::Null => return Err(vec![NULL.into()]),
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return Err(vec!["Chaîne de caractères non valide.".into()]),
    };
    if s.is_empty() {
        return if blank {
            Ok(Some(s))
        } else {
            Err(vec![BLANK.into()])
        };
    }
    if let Some(max) = max
        && s.chars().count() > max
    {
        return Err(vec![format!(
            "Assurez-vous que ce champ comporte au plus {max} caractères."
        )]);
    }
    Ok(Some(s))
}

/// `ChoiceField` over integer choices: matches `str(input)` against `str(choice)`.
fn to_choice(v: &Value, choices: &[i64]) -> Result<i64, String> {
    if v.is_null() {
        return Err(NULL.into());
    }
    let s = py_str(v);
    choices
        .iter()
        .find(|c| c.to_string() == s)
        .copied()
        .ok_or_else(|| format!("« {s} » n'est pas un choix valide."))
}

/// `HyperlinkedRelatedField`: only the path counts (host ignored); `""` is null.
fn to_link(
    v: &Value,
    prefix: &str,
    nullable: bool,
    exists: impl Fn(u64) -> bool,
) -> Result<Option<u64>, String> {
    let s = match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.as_str()),
        other => {
            return Err(format!(
                "Type incorrect. Une URL était attendue, un {} a été reçu.",
                py_type(other)
            ));
        }
    };
    let Some(s) = s else {
        return if nullable { Ok(None) } else { Err(NULL.into()) };
    };
    let path = if s.starts_with("http:") || s.starts_with("https:") {
        let after = s.split_once("//").map_or(s, |(_, rest)| rest);
        let path_start = after.find('/').unwrap_or(after.len());
        let path = &after[path_start..];
        path.split(['?', '#']).next().unwrap_or("")
    } else {
        s
    };
    let Some(Route::Detail(kind, key)) = resolve(path) else {
        return Err("Lien non valide : pas d'URL correspondante.".into());
    };
    if kind.prefix() != prefix {
        return Err("Lien non valide : URL correspondante incorrecte.".into());
    }
    match key.parse::<u64>() {
        Ok(id) if exists(id) => Ok(Some(id)),
        _ => Err("Lien non valide : l'objet n'existe pas.".into()),
    }
}

/// `URLField` (Django's `URLValidator`, simplified) limited to 200 characters.
fn to_url(v: &Value) -> Result<String, Vec<String>> {
    let s = match to_char(v, None, false, false)? {
        Some(s) => s,
        None => return Err(vec![NULL.into()]),
    };
    let mut errs = Vec::new();
    if !valid_url(&s) {
        errs.push("Saisissez une URL valide.".to_string());
    }
    if s.chars().count() > 200 {
        errs.push("Assurez-vous que ce champ comporte au plus 200 caractères.".into());
    }
    if errs.is_empty() { Ok(s) } else { Err(errs) }
}

fn valid_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    if !["http", "https", "ftp", "ftps"].contains(&scheme.to_ascii_lowercase().as_str()) {
        return false;
    }
    if s.chars().any(char::is_whitespace) {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.starts_with('[') {
        return hostport.contains(']');
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    };
    if let Some(p) = port
        && (p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.len() > 5)
    {
        return false;
    }
    let host = host.to_ascii_lowercase();
    if host == "localhost" {
        return true;
    }
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    if labels.len() == 4 && labels.iter().all(|l| l.parse::<u8>().is_ok()) {
        return true;
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_alphabetic() || c == '-'))
}

/// `DateTimeField` input: Django's `parse_datetime` (ISO 8601, space or `T`, optional
/// seconds/fraction/offset); a naive value is in `TIME_ZONE` (UTC); stored as UTC.
fn to_datetime(v: &Value) -> Result<Option<DateTime<Utc>>, String> {
    const INVALID: &str = "La date + heure n'a pas le bon format. Utilisez un des formats suivants : YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_django_datetime(s.trim())
            .map(Some)
            .ok_or_else(|| INVALID.to_string()),
        _ => Err(INVALID.into()),
    }
}

pub(crate) fn parse_django_datetime(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize, min: usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i - start < min {
            return None;
        }
        s[start..*i].parse().ok()
    };
    let expect = |i: &mut usize, c: &[u8]| -> Option<()> {
        if *i < b.len() && c.contains(&b[*i]) {
            *i += 1;
            Some(())
        } else {
            None
        }
    };
    let year = digits(&mut i, 4, 4)?;
    expect(&mut i, b"-")?;
    let month = digits(&mut i, 1, 2)?;
    expect(&mut i, b"-")?;
    let day = digits(&mut i, 1, 2)?;
    expect(&mut i, b"T ")?;
    let hour = digits(&mut i, 1, 2)?;
    expect(&mut i, b":")?;
    let minute = digits(&mut i, 1, 2)?;
    let (mut second, mut micro) = (0, 0);
    if i < b.len() && b[i] == b':' {
        i += 1;
        second = digits(&mut i, 1, 2)?;
        if i < b.len() && (b[i] == b'.' || b[i] == b',') {
            i += 1;
            let start = i;
            let frac = digits(&mut i, 1, 6)?;
            let n = i - start;
            micro = frac * 10u32.pow(6 - n as u32);
            while i < b.len() && b[i].is_ascii_digit() && i - start < 12 {
                i += 1;
            }
        }
    }
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let mut offset_secs: i32 = 0;
    if i < b.len() {
        match b[i] {
            b'Z' => i += 1,
            b'+' | b'-' => {
                let sign = if b[i] == b'-' { -1 } else { 1 };
                i += 1;
                let hh = digits(&mut i, 2, 2)?;
                let mut mm = 0;
                if i < b.len() {
                    if b[i] == b':' {
                        i += 1;
                    }
                    mm = digits(&mut i, 2, 2)?;
                }
                offset_secs = sign * (hh * 3600 + mm * 60) as i32;
            }
            _ => return None,
        }
    }
    if i != b.len() {
        return None;
    }
    let naive = NaiveDate::from_ymd_opt(year as i32, month, day)?
        .and_hms_micro_opt(hour, minute, second, micro)?;
    let offset = FixedOffset::east_opt(offset_secs)?;
    let local = offset.from_local_datetime(&naive).single()?;
    Some(local.with_timezone(&Utc))
}

// ---------------------------------------------------------------------------
// Django's slugify
// ---------------------------------------------------------------------------

/// Python's `str.isspace()` over ASCII (what `\s` and `strip()` match after the ASCII
/// filter): includes the information separators 0x1C–0x1F.
fn py_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c' | '\x1c'..='\x1f'
    )
}

fn ascii_fold(value: &str) -> String {
    value.nfkd().filter(char::is_ascii).collect()
}

fn collapse_dashes(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut in_run = false;
    for c in value.chars() {
        if c == '-' || py_space(c) {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

fn keep_slug_chars(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || py_space(*c))
        .collect()
}

/// `django.utils.text.slugify` of Django 3.2 (Pod 3.x).
pub fn slugify_django32(value: &str) -> String {
    let v = keep_slug_chars(&ascii_fold(value).to_lowercase());
    collapse_dashes(&v)
        .trim_matches(|c| c == '-' || c == '_')
        .to_string()
}

/// `django.utils.text.slugify` of Django 1.11 (Pod 2.x): strips whitespace only.
pub fn slugify_django111(value: &str) -> String {
    let v = keep_slug_chars(&ascii_fold(value));
    let v = v.trim_matches(py_space).to_lowercase();
    collapse_dashes(&v)
}

// ---------------------------------------------------------------------------
// HTML pages (Pod with DEBUG off)
// ---------------------------------------------------------------------------

fn pod_page(title: &str, message: &str, target_len: usize) -> String {
    let mut nav = String::new();
    let entries = [
        "Vidéos",
        "Chaînes",
        "Thèmes",
        "Types",
        "Disciplines",
        "Directs",
        "Événements",
        "Réunions",
        "Playlists",
        "Mes vidéos",
        "Mes abonnements",
        "Statistiques",
    ];
    let head = format!(
        "<!DOCTYPE html>\n<html lang=\"fr\" data-bs-theme=\"light\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1, shrink-to-fit=no\">\n  \
         <title>Pod - {title}</title>\n  <link rel=\"stylesheet\" href=\"/static/bootstrap/dist/css/bootstrap.min.css\">\n  \
         <link rel=\"stylesheet\" href=\"/static/css/pod.css\">\n  <link rel=\"icon\" href=\"/static/img/favicon.png\">\n</head>\n\
         <body>\n<a class=\"visually-hidden-focusable\" href=\"#content\">Aller au contenu principal</a>\n\
         <nav class=\"navbar navbar-expand-lg\" aria-label=\"Menu principal\">\n<ul class=\"navbar-nav\">\n"
    );
    let body = format!(
        "</ul>\n</nav>\n<main id=\"content\" class=\"container-fluid\">\n  <h1 class=\"page_title\">{title}</h1>\n  \
         <div class=\"alert alert-danger\" role=\"alert\">{message}</div>\n  \
         <p>Si le problème persiste, contactez l'équipe technique de votre établissement.</p>\n</main>\n\
         <footer class=\"footer_links\"><p>Esup-Pod, plateforme de gestion de fichiers vidéo — \
         <a href=\"/accessibility/\">Accessibilité : partiellement conforme</a> — \
         <a href=\"/mentions-legales/\">Mentions légales</a></p></footer>\n\
         <script src=\"/static/bootstrap/dist/js/bootstrap.bundle.min.js\"></script>\n</body>\n</html>\n"
    );
    let mut i = 0;
    while head.len() + nav.len() + body.len() < target_len {
        let e = entries[i % entries.len()];
        nav.push_str(&format!(
            "  <li class=\"nav-item\"><a class=\"nav-link\" href=\"/{}/?page={}\" title=\"{e}\">{e}</a></li>\n",
            e.to_lowercase().replace(' ', "-"),
            i / entries.len() + 1
        ));
        i += 1;
    }
    format!("{head}{nav}{body}")
}

/// Pod's French 500 page (~13 KB).
pub fn server_error_page() -> String {
    pod_page(
        "Erreur serveur (500)",
        "Une erreur est survenue sur le serveur. Les administrateurs du site ont été prévenus.",
        13 * 1024,
    )
}

fn not_found_page() -> String {
    pod_page(
        "Page non trouvée (404)",
        "La page que vous avez demandée n'existe pas ou a été déplacée.",
        9 * 1024,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_matches_django_examples() {
        assert_eq!(slugify_django32("[BBB] Cours d-amphi"), "bbb-cours-d-amphi");
        assert_eq!(slugify_django32("[BBB] OEuvre ete"), "bbb-oeuvre-ete");
        assert_eq!(slugify_django32("[BBB] Œuvre été"), "bbb-uvre-ete");
        assert_eq!(
            slugify_django32("[BBB] Reunion: L1 &amp; L2 (TD)"),
            "bbb-reunion-l1-amp-l2-td"
        );
        assert_eq!(slugify_django32("[BBB] Test_ "), "bbb-test");
        assert_eq!(slugify_django111("[BBB] Test_ "), "bbb-test_");
        assert_eq!(slugify_django32("[BBB] 会议"), "bbb");
        assert_eq!(
            slugify_django32("[bbb] test slug"),
            slugify_django32("[BBB] Test Slug")
        );
        assert_eq!(slugify_django32("ﬃ"), "ffi");
        assert_eq!(slugify_django32(" -_Hello  World_- "), "hello-world");
    }

    #[test]
    fn integers_parse_like_drf() {
        assert_eq!(to_int(&json!(" 6380 ")), Ok(Some(6380)));
        assert_eq!(to_int(&json!("6380.0")), Ok(Some(6380)));
        assert_eq!(to_int(&json!(6380.0)), Ok(Some(6380)));
        assert_eq!(to_int(&Value::Null), Ok(None));
        for bad in [
            json!("abc"),
            json!(""),
            json!(true),
            json!(1.5),
            json!("1.5"),
            json!([1]),
        ] {
            assert!(to_int(&bad).is_err(), "{bad}");
        }
        assert!(to_int(&json!(2_147_483_648_i64)).is_err());
    }

    #[test]
    fn datetimes_parse_like_django() {
        let d = parse_django_datetime("2024-05-02T10:15:30+02:00").unwrap();
        assert_eq!(fmt_dt(&d), "2024-05-02T08:15:30Z");
        let d = parse_django_datetime("2024-05-02 08:15").unwrap();
        assert_eq!(fmt_dt(&d), "2024-05-02T08:15:00Z");
        let d = parse_django_datetime("2024-05-02T08:15:30.5Z").unwrap();
        assert_eq!(fmt_dt(&d), "2024-05-02T08:15:30.500000Z");
        assert!(parse_django_datetime("2024-05-02").is_none());
        assert!(parse_django_datetime("02/05/2024 08:15").is_none());
        assert!(parse_django_datetime("2024-13-02T08:15").is_none());
    }

    #[test]
    fn routes_resolve_like_the_drf_router() {
        assert!(matches!(
            resolve("/rest/bbb_livestream/"),
            Some(Route::List(Kind::Livestream))
        ));
        assert!(matches!(
            resolve("/rest/bbb_livestream/3/"),
            Some(Route::Detail(Kind::Livestream, _))
        ));
        assert!(resolve("/rest/bbb_livestream").is_none());
        assert!(resolve("/rest/bbb_livestream/3").is_none());
        assert!(matches!(
            resolve("/rest/broadcasters/bbb-x.json"),
            Some(Route::Detail(Kind::Broadcaster, _))
        ));
        assert!(resolve("/rest/nothing/").is_none());
    }

    #[test]
    fn server_error_page_is_about_13_kb() {
        let p = server_error_page();
        assert!((12_000..15_000).contains(&p.len()), "{}", p.len());
    }
}
