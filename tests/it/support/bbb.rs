//! `FakeBbb`: a BigBlueButton (or Scalelite) API endpoint as bbb-pod-live sees it
//! (docs/bbb.md): checksums verified like BBB ≥ 2.5 (raw query
//! string minus the checksum, algorithm chosen by length), getMeetings answered with the
//! full BBB XML of its meetings (attendees, metadata, escaped names), the noMeetings
//! forms of BBB and Scalelite, and the ways such an endpoint fails: checksumError,
//! Scalelite's internalError, HTML pages, HTTP errors, hangs, truncated or empty bodies,
//! refused connections. isMeetingRunning and getMeetingInfo are answered too (the
//! streamer uses them), for the session of the external id that has not ended (one
//! `meetingID` may be listed under several sessions, see [`FakeBbb::add_session`]);
//! other calls get BBB's unsupportedRequest error.
//!
//! The streamers the fake dockers run ([`FakeBbb::add_streamer_source`]) are attendees of
//! their running meeting (`fullName` = their `BBB_USER_NAME`), and the same server plays
//! the HLS server viewers read: `GET /hls/<key>.m3u8` answers a playlist while a streamer
//! pushes that key ([`FakeBbb::hls_url`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{TimeZone, Utc};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::docker::{FakeStreamer, StreamerSource};
use super::net::{Background, serve_http};
use super::text::{parse_query, xml_escape};

/// How the fake answers API calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BbbMode {
    /// Verify the checksum and answer from the state.
    Normal,
    /// Every call answers checksumError (e.g. the secret was changed on the server).
    ChecksumError,
    /// Scalelite's answer when one of its BBB servers fails (the DERIVED fixture).
    ScaleliteInternalError,
    /// A 200 HTML page (a captive portal, a proxy's maintenance page).
    Garbage,
    /// This HTTP status with an nginx-like HTML body.
    Http(u16),
    /// Accept the request and never answer.
    Hang,
    /// The start of a valid answer, cut in the middle (complete HTTP response).
    Truncated,
    /// 200 with an empty body.
    EmptyBody,
    /// Connections refused.
    Down,
}

/// The fake BBB server. Dropping it stops the server.
pub struct FakeBbb {
    server: Background,
    state: Arc<Mutex<BbbState>>,
}

struct BbbState {
    secret: String,
    algorithms: Vec<&'static str>,
    meetings: Vec<Meeting>,
    mode: BbbMode,
    latency: Duration,
    requests: usize,
    bad_checksums: usize,
    scalelite_order: bool,
    queries: Vec<String>,
    /// Meetings left out of getMeetings (a Scalelite node found offline), still
    /// answered by isMeetingRunning / getMeetingInfo.
    hidden: std::collections::HashSet<String>,
    /// The fake dockers whose streamers join meetings and feed the HLS server.
    streamer_sources: Vec<StreamerSource>,
    /// HLS requests: the path and the `Authorization` header if one was sent.
    hls_requests: Vec<(String, Option<String>)>,
    /// Per stream key, the media sequence its playlist is at: one more segment at each
    /// request unless the streamer's playlist is frozen.
    hls_sequence: HashMap<String, u64>,
    /// `bbbVersion` of the API root; from "3" on, sendChatMessage is known.
    version: String,
    /// The sendChatMessage calls BBB 3.0 took: (meetingID, userName, message).
    chat_messages: Vec<(String, String, String)>,
    /// The API calls asked for (`getMeetings`, `isMeetingRunning`…), in order.
    calls: Vec<String>,
}

#[derive(Clone)]
struct Attendee {
    user_id: String,
    full_name: String,
    role: &'static str,
    presenter: bool,
    listen_only: bool,
    voice: bool,
    video: bool,
}

#[derive(Clone)]
struct Meeting {
    name: String,
    meeting_id: String,
    internal_id: String,
    create_time: i64,
    voice_bridge: u32,
    running: bool,
    has_user_joined: bool,
    recording: bool,
    start_time: i64,
    end_time: i64,
    attendees: Vec<Attendee>,
    metadata: Vec<(String, String)>,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn sample_attendees(seed: usize, n: usize) -> Vec<Attendee> {
    (0..n)
        .map(|i| Attendee {
            user_id: format!("w_{seed:04x}{i:04x}"),
            full_name: match i {
                0 => "Prof. Ada & <Lovelace> \"Amphi\"".to_string(),
                1 => "Élève Zoé O'Brien".to_string(),
                _ => format!("Étudiant n°{i}"),
            },
            role: if i == 0 { "MODERATOR" } else { "VIEWER" },
            presenter: i == 0,
            listen_only: i > 1,
            voice: i <= 1,
            video: i == 0,
        })
        .collect()
}

impl Meeting {
    /// The streamers of `joined` in this meeting: only a running session has them.
    fn joined_in<'a>(&self, joined: &'a HashMap<String, Vec<Attendee>>) -> &'a [Attendee] {
        match joined.get(&self.meeting_id) {
            Some(list) if self.running => list,
            _ => &[],
        }
    }

    fn new(meeting_id: &str, internal_id: &str, name: &str, running: bool, seq: usize) -> Meeting {
        let create_time = internal_id
            .rsplit_once('-')
            .and_then(|(_, t)| t.parse().ok())
            .unwrap_or_else(now_ms);
        Meeting {
            name: name.to_string(),
            meeting_id: meeting_id.to_string(),
            internal_id: internal_id.to_string(),
            create_time,
            voice_bridge: 70000 + (seq as u32 % 29999),
            running,
            has_user_joined: running,
            recording: false,
            start_time: create_time + 12,
            end_time: 0,
            attendees: if running {
                sample_attendees(seq, 2)
            } else {
                Vec::new()
            },
            metadata: vec![
                ("bbb-origin".into(), "Pod".into()),
                ("bbb-origin-server-name".into(), "pod.univ.example".into()),
                ("bbb-context".into(), format!("Cours & TD <{seq}>")),
            ],
        }
    }

    /// The `<meeting>` element, with `joined` (streamers) after its own attendees.
    fn xml(&self, out: &mut String, indent: &str, joined: &[Attendee]) {
        let attendees = || self.attendees.iter().chain(joined);
        let participants = attendees().count();
        let moderators = attendees().filter(|a| a.role == "MODERATOR").count();
        let listeners = attendees().filter(|a| a.listen_only).count();
        let voice = attendees().filter(|a| a.voice).count();
        let video = attendees().filter(|a| a.video).count();
        let create_date = Utc
            .timestamp_millis_opt(self.create_time)
            .single()
            .map(|d| d.format("%a %b %d %H:%M:%S UTC %Y").to_string())
            .unwrap_or_default();
        let i1 = format!("{indent}    ");
        let i2 = format!("{indent}        ");
        let i3 = format!("{indent}            ");
        let field = |out: &mut String, name: &str, value: &str| {
            out.push_str(&format!("{i1}<{name}>{}</{name}>\n", xml_escape(value)));
        };
        out.push_str(&format!("{indent}<meeting>\n"));
        field(out, "meetingName", &self.name);
        field(out, "meetingID", &self.meeting_id);
        field(out, "internalMeetingID", &self.internal_id);
        field(out, "createTime", &self.create_time.to_string());
        field(out, "createDate", &create_date);
        field(out, "voiceBridge", &self.voice_bridge.to_string());
        field(out, "dialNumber", "613-555-1234");
        field(out, "attendeePW", "ap&<\"w'");
        field(out, "moderatorPW", "mp&<\"w'");
        field(out, "running", &self.running.to_string());
        field(out, "duration", "0");
        field(out, "hasUserJoined", &self.has_user_joined.to_string());
        field(out, "recording", &self.recording.to_string());
        field(out, "hasBeenForciblyEnded", "false");
        field(out, "startTime", &self.start_time.to_string());
        field(out, "endTime", &self.end_time.to_string());
        field(out, "participantCount", &participants.to_string());
        field(out, "listenerCount", &listeners.to_string());
        field(out, "voiceParticipantCount", &voice.to_string());
        field(out, "videoCount", &video.to_string());
        field(out, "maxUsers", "0");
        field(out, "moderatorCount", &moderators.to_string());
        out.push_str(&format!("{i1}<attendees>\n"));
        for a in attendees() {
            out.push_str(&format!("{i2}<attendee>\n"));
            for (name, value) in [
                ("userID", a.user_id.clone()),
                ("fullName", a.full_name.clone()),
                ("role", a.role.to_string()),
                ("isPresenter", a.presenter.to_string()),
                ("isListeningOnly", a.listen_only.to_string()),
                ("hasJoinedVoice", a.voice.to_string()),
                ("hasVideo", a.video.to_string()),
                ("clientType", "HTML5".to_string()),
            ] {
                out.push_str(&format!("{i3}<{name}>{}</{name}>\n", xml_escape(&value)));
            }
            out.push_str(&format!("{i3}<customdata></customdata>\n"));
            out.push_str(&format!("{i2}</attendee>\n"));
        }
        out.push_str(&format!("{i1}</attendees>\n"));
        out.push_str(&format!("{i1}<metadata>\n"));
        for (k, v) in &self.metadata {
            out.push_str(&format!("{i2}<{k}>{}</{k}>\n", xml_escape(v)));
        }
        out.push_str(&format!("{i1}</metadata>\n"));
        field(out, "isBreakout", "false");
        out.push_str(&format!("{indent}</meeting>\n"));
    }
}

const CHECKSUM_ERROR: &str = "<response>\n<returncode>FAILED</returncode>\n<messageKey>checksumError</messageKey>\n<message>Checksums do not match</message>\n</response>";
const SCALELITE_INTERNAL_ERROR: &str = "<?xml version=\"1.0\"?>\n<response>\n  <returncode>FAILED</returncode>\n  <messageKey>internalError</messageKey>\n  <message>Unable to access server.</message>\n</response>\n";
const NO_MEETINGS_BBB: &str = "<response>\n    <returncode>SUCCESS</returncode>\n    <meetings/>\n    <messageKey>noMeetings</messageKey>\n    <message>no meetings were found on this server</message>\n</response>";
const NO_MEETINGS_SCALELITE: &str = "<?xml version=\"1.0\"?>\n<response>\n  <returncode>SUCCESS</returncode>\n  <messageKey>noMeetings</messageKey>\n  <message>no meetings were found on this server</message>\n  <meetings/>\n</response>\n";

impl FakeBbb {
    /// Starts a fake BBB whose shared secret is `secret` (all four algorithms accepted).
    pub fn start(secret: &str) -> FakeBbb {
        let state = Arc::new(Mutex::new(BbbState {
            secret: secret.to_string(),
            algorithms: vec!["sha1", "sha256", "sha384", "sha512"],
            meetings: Vec::new(),
            mode: BbbMode::Normal,
            latency: Duration::ZERO,
            requests: 0,
            bad_checksums: 0,
            scalelite_order: false,
            hidden: Default::default(),
            queries: Vec::new(),
            streamer_sources: Vec::new(),
            hls_requests: Vec::new(),
            hls_sequence: HashMap::new(),
            version: "2.7.3".into(),
            chat_messages: Vec::new(),
            calls: Vec::new(),
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let server = Background::start("bbb", serve_http(router));
        FakeBbb { server, state }
    }

    fn st(&self) -> MutexGuard<'_, BbbState> {
        self.state.lock().expect("bbb state")
    }

    /// The BBB version the API root answers (default `2.7.3`: no sendChatMessage).
    /// `3.0.x` is BBB 3.0, which takes sendChatMessage.
    pub fn set_version(&self, version: &str) {
        self.st().version = version.into();
    }

    /// The chat messages sendChatMessage posted: (meetingID, userName, message).
    pub fn chat_messages(&self) -> Vec<(String, String, String)> {
        self.st().chat_messages.clone()
    }

    /// `http://127.0.0.1:PORT/bigbluebutton/api` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}/bigbluebutton/api", self.server.addr())
    }

    pub fn secret(&self) -> String {
        self.st().secret.clone()
    }

    /// A meeting as Pod created it. `running: false` = created, nobody joined yet
    /// (`running=false`, `endTime=0`); `true` = running with a moderator and a viewer.
    pub fn add_meeting(&self, meeting_id: &str, internal_id: &str, name: &str, running: bool) {
        let mut st = self.st();
        let seq = st.meetings.len();
        st.meetings.retain(|m| m.meeting_id != meeting_id);
        st.meetings
            .push(Meeting::new(meeting_id, internal_id, name, running, seq));
    }

    /// Another session of a room: `meeting_id` listed once more, with its own
    /// `internal_id`, beside the sessions already listed under it (Moodle and Greenlight
    /// reuse one external id for every session of a room; BBB lists an ended session
    /// beside the new one until it forgets it, Scalelite one per node).
    pub fn add_session(&self, meeting_id: &str, internal_id: &str, name: &str, running: bool) {
        let mut st = self.st();
        let seq = st.meetings.len();
        st.meetings
            .push(Meeting::new(meeting_id, internal_id, name, running, seq));
    }

    /// The session `internal_id` ended but is still listed (as [`FakeBbb::end_meeting`]).
    pub fn end_session(&self, internal_id: &str) {
        let mut st = self.st();
        let m = find_session(&mut st.meetings, internal_id);
        m.running = false;
        m.has_user_joined = true;
        m.end_time = now_ms().max(m.start_time + 1);
        m.attendees.clear();
    }

    /// Someone joined the created session `internal_id`: it runs (by session, where
    /// [`FakeBbb::set_running`] takes a room).
    pub fn start_session(&self, internal_id: &str) {
        let mut st = self.st();
        let m = find_session(&mut st.meetings, internal_id);
        m.running = true;
        m.has_user_joined = true;
        m.end_time = 0;
        if m.attendees.is_empty() {
            m.attendees = sample_attendees(7, 2);
        }
    }

    /// BBB forgot the session `internal_id` (other sessions of its room stay listed).
    pub fn remove_session(&self, internal_id: &str) {
        self.st().meetings.retain(|m| m.internal_id != internal_id);
    }

    /// `(meetingID, internalMeetingID)` of every listed session, in listing order.
    pub fn sessions(&self) -> Vec<(String, String)> {
        self.st()
            .meetings
            .iter()
            .map(|m| (m.meeting_id.clone(), m.internal_id.clone()))
            .collect()
    }

    /// Someone joined (or everybody left without ending: `false`, `endTime` stays 0).
    pub fn set_running(&self, meeting_id: &str, running: bool) {
        let mut st = self.st();
        let m = find(&mut st.meetings, meeting_id);
        m.running = running;
        if running {
            m.has_user_joined = true;
            m.end_time = 0;
            if m.attendees.is_empty() {
                m.attendees = sample_attendees(7, 2);
            }
        } else {
            m.attendees.clear();
        }
    }

    /// Everybody but the streamers leaves the running session of `meeting_id` (the
    /// teacher closed the tab without ending it): it keeps running while a streamer is
    /// in it. Also how a session our streamer is the first in looks.
    pub fn everyone_leaves(&self, meeting_id: &str) {
        let mut st = self.st();
        find(&mut st.meetings, meeting_id).attendees.clear();
    }

    /// A teacher (and a viewer) join the session of `meeting_id` again.
    pub fn someone_joins(&self, meeting_id: &str) {
        let mut st = self.st();
        let m = find(&mut st.meetings, meeting_id);
        if m.attendees.is_empty() {
            m.attendees = sample_attendees(9, 2);
        }
    }

    /// The meeting ended but BBB still lists it: `running=false`, `endTime=now`,
    /// `hasUserJoined=true`, nobody left.
    pub fn end_meeting(&self, meeting_id: &str) {
        let mut st = self.st();
        let m = find(&mut st.meetings, meeting_id);
        m.running = false;
        m.has_user_joined = true;
        m.end_time = now_ms().max(m.start_time + 1);
        m.attendees.clear();
    }

    /// BBB forgot the meeting: it is no longer listed.
    pub fn remove_meeting(&self, meeting_id: &str) {
        self.st().meetings.retain(|m| m.meeting_id != meeting_id);
    }

    /// Meeting ids currently listed.
    pub fn meeting_ids(&self) -> Vec<String> {
        self.st()
            .meetings
            .iter()
            .map(|m| m.meeting_id.clone())
            .collect()
    }

    /// Adds `n` running meetings with 10 attendees each (~4 KB of XML per meeting:
    /// 5000 meetings make a 20 MB getMeetings answer).
    pub fn add_many(&self, n: usize) {
        let mut st = self.st();
        let base = st.meetings.len();
        let t0 = now_ms();
        for i in 0..n {
            let seq = base + i;
            let mut m = Meeting::new(
                &format!("bulk-{seq:06}-3f2a9c1e"),
                &format!(
                    "{:040x}-{}",
                    seq as u128 * 0x9e37_79b9_7f4a_7c15,
                    t0 + seq as i64
                ),
                &format!("Salle de cours n°{seq} — groupe <{}> & co", seq % 17),
                true,
                seq,
            );
            m.attendees = sample_attendees(seq, 10);
            st.meetings.push(m);
        }
    }

    /// Leaves `meeting_id` out of getMeetings (`true`) or not, as Scalelite does with
    /// the meetings of a node it finds offline; isMeetingRunning still answers for it.
    pub fn hide_from_list(&self, meeting_id: &str, hidden: bool) {
        let mut st = self.st();
        if hidden {
            st.hidden.insert(meeting_id.to_string());
        } else {
            st.hidden.remove(meeting_id);
        }
    }

    pub fn set_mode(&self, mode: BbbMode) {
        let down = mode == BbbMode::Down;
        self.st().mode = mode;
        self.server.set_up(!down);
    }

    /// Added before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.st().latency = latency;
    }

    /// Answer noMeetings in Scalelite's element order (`<meetings/>` last).
    pub fn set_scalelite_order(&self, on: bool) {
        self.st().scalelite_order = on;
    }

    /// Restricts the accepted checksum algorithms (BBB's `supportedChecksumAlgorithms`,
    /// Scalelite's `LOADBALANCER_CHECKSUM_ALGORITHM`), e.g. `&["sha1", "sha256", "sha512"]`.
    pub fn set_algorithms(&self, algorithms: &[&'static str]) {
        self.st().algorithms = algorithms.to_vec();
    }

    /// Number of API requests received (any call, any outcome).
    pub fn requests(&self) -> usize {
        self.st().requests
    }

    /// Raw query strings of the API requests received, in order.
    pub fn queries(&self) -> Vec<String> {
        self.st().queries.clone()
    }

    /// The API calls received (the path after `/bigbluebutton/api/`), in order.
    pub fn calls(&self) -> Vec<String> {
        self.st().calls.clone()
    }

    /// The streamers of a fake docker join their meetings and push their HLS streams
    /// here (every server of a cluster test adds its own).
    pub fn add_streamer_source(&self, source: StreamerSource) {
        self.st().streamer_sources.push(source);
    }

    /// `http://127.0.0.1:PORT/hls/`: the `pod.hls_url` of the tests (viewers' side).
    pub fn hls_url(&self) -> String {
        format!("http://{}/hls/", self.server.addr())
    }

    /// Paths of the HLS requests received, in order.
    pub fn hls_requests(&self) -> Vec<String> {
        self.st()
            .hls_requests
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// HLS requests that carried an `Authorization` header (none should: a token never
    /// leaves for the HLS server).
    pub fn hls_requests_with_credentials(&self) -> usize {
        self.st()
            .hls_requests
            .iter()
            .filter(|(_, a)| a.is_some())
            .count()
    }

    /// Number of requests refused for a wrong or missing checksum.
    pub fn bad_checksums(&self) -> usize {
        self.st().bad_checksums
    }
}

fn find<'a>(meetings: &'a mut [Meeting], meeting_id: &str) -> &'a mut Meeting {
    meetings
        .iter_mut()
        .find(|m| m.meeting_id == meeting_id)
        .unwrap_or_else(|| panic!("no meeting {meeting_id:?} in the fake BBB"))
}

fn find_session<'a>(meetings: &'a mut [Meeting], internal_id: &str) -> &'a mut Meeting {
    meetings
        .iter_mut()
        .find(|m| m.internal_id == internal_id)
        .unwrap_or_else(|| panic!("no session {internal_id:?} in the fake BBB"))
}

/// The session BBB answers isMeetingRunning and getMeetingInfo with for an external id:
/// the one that has not ended (BBB's `getNotEndedMeetingWithId`), else the newest.
fn current_session<'a>(meetings: &'a [Meeting], meeting_id: &str) -> Option<&'a Meeting> {
    let all: Vec<&Meeting> = meetings
        .iter()
        .filter(|m| m.meeting_id == meeting_id)
        .collect();
    all.iter()
        .rev()
        .find(|m| m.end_time == 0)
        .or(all.last())
        .copied()
}

/// BBB's checksum check (GetChecksumValidator): cut `checksum=<v>` out of the raw query
/// string, hash `call + rest + secret` with the algorithm the length designates.
pub fn checksum_ok(call: &str, raw_query: &str, secret: &str, algorithms: &[&str]) -> bool {
    let Some(checksum) = raw_query
        .split('&')
        .find_map(|p| p.strip_prefix("checksum="))
    else {
        return false;
    };
    let rest = raw_query
        .replace(&format!("&checksum={checksum}"), "")
        .replace(&format!("checksum={checksum}&"), "")
        .replace(&format!("checksum={checksum}"), "");
    let data = format!("{call}{rest}{secret}");
    let (name, expected) = match checksum.len() {
        40 => ("sha1", hex::encode(Sha1::digest(data.as_bytes()))),
        64 => ("sha256", hex::encode(Sha256::digest(data.as_bytes()))),
        96 => ("sha384", hex::encode(Sha384::digest(data.as_bytes()))),
        128 => ("sha512", hex::encode(Sha512::digest(data.as_bytes()))),
        _ => return false,
    };
    algorithms.contains(&name) && expected == checksum
}

fn xml_response(status: u16, content_type: &'static str, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert("server", HeaderValue::from_static("nginx"));
    resp
}

const XML: &str = "text/xml;charset=utf-8";
const HTML: &str = "text/html";

fn nginx_page(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )
}

async fn handle(State(state): State<Arc<Mutex<BbbState>>>, req: Request) -> Response {
    // nginx merges slashes (`merge_slashes on`).
    let mut path = req.uri().path().to_string();
    while path.contains("//") {
        path = path.replace("//", "/");
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().as_str().to_string();
    if let Some(file) = path.strip_prefix("/hls/") {
        return hls(&state, file, &req);
    }
    let Some(call) = path
        .strip_prefix("/bigbluebutton/api")
        .map(|c| c.trim_start_matches('/').to_string())
    else {
        return xml_response(404, HTML, nginx_page(404));
    };
    if method != "GET" && method != "POST" && method != "HEAD" {
        return xml_response(405, HTML, nginx_page(405));
    }
    let (mode, latency) = {
        let mut st = state.lock().expect("bbb state");
        st.requests += 1;
        st.queries.push(query.clone());
        st.calls.push(call.clone());
        (st.mode.clone(), st.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match mode {
        BbbMode::Normal | BbbMode::Truncated | BbbMode::Down => {}
        BbbMode::ChecksumError => return xml_response(200, XML, CHECKSUM_ERROR.into()),
        BbbMode::ScaleliteInternalError => {
            return xml_response(200, XML, SCALELITE_INTERNAL_ERROR.into());
        }
        BbbMode::Garbage => {
            return xml_response(
                200,
                HTML,
                "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body><h1>Service en maintenance</h1><p>Le service de visioconférence revient bientôt.</p></body></html>\n".into(),
            );
        }
        BbbMode::Http(status) => return xml_response(status, HTML, nginx_page(status)),
        BbbMode::Hang => std::future::pending::<()>().await,
        BbbMode::EmptyBody => return xml_response(200, XML, String::new()),
    }
    let body = {
        let mut st = state.lock().expect("bbb state");
        st.answer(&call, &query)
    };
    let body = if mode == BbbMode::Truncated {
        let mut cut = body.len() / 2;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body[..cut].to_string()
    } else {
        body
    };
    xml_response(200, XML, body)
}

/// The HLS server: a playlist while a streamer pushes the key, nginx's 404 otherwise.
fn hls(state: &Mutex<BbbState>, file: &str, req: &Request) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut st = state.lock().expect("bbb state");
    st.hls_requests.push((format!("/hls/{file}"), auth));
    let Some(streamer) = file.strip_suffix(".m3u8").and_then(|key| {
        st.streamers()
            .into_iter()
            .find(|s| s.hls && s.stream_key == key)
    }) else {
        return xml_response(404, HTML, nginx_page(404));
    };
    let sequence = st
        .hls_sequence
        .entry(streamer.stream_key.clone())
        .or_insert(12);
    if !streamer.hls_frozen {
        *sequence += 1;
    }
    let n = *sequence;
    let mut resp = xml_response(
        200,
        "application/vnd.apple.mpegurl",
        format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{n}\n#EXTINF:4.000,\n{n}.ts\n#EXTINF:4.000,\n{}.ts\n",
            n + 1
        ),
    );
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    resp
}

impl BbbState {
    fn streamers(&self) -> Vec<FakeStreamer> {
        self.streamer_sources.iter().flat_map(|s| s()).collect()
    }

    /// The streamers in each meeting (by external id): attendees of its running session.
    fn joined(&self) -> HashMap<String, Vec<Attendee>> {
        let mut out: HashMap<String, Vec<Attendee>> = HashMap::new();
        for s in self.streamers().into_iter().filter(|s| s.in_meeting) {
            let list = out.entry(s.meeting_id).or_default();
            for full_name in std::iter::once(s.user_name).chain(s.chat_name) {
                list.push(Attendee {
                    user_id: format!("w_live{:04}", list.len()),
                    full_name,
                    role: "VIEWER",
                    presenter: false,
                    listen_only: true,
                    voice: false,
                    video: false,
                });
            }
        }
        out
    }

    fn answer(&mut self, call: &str, query: &str) -> String {
        if call.is_empty() {
            return format!(
                "<response>\n<returncode>SUCCESS</returncode>\n<version>2.0</version>\n<apiVersion>2.0</apiVersion>\n<bbbVersion>{}</bbbVersion>\n</response>",
                xml_escape(&self.version)
            );
        }
        if !checksum_ok(call, query, &self.secret, &self.algorithms) {
            self.bad_checksums += 1;
            return CHECKSUM_ERROR.into();
        }
        let params = parse_query(query);
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match call {
            "getMeetings" => {
                let listed: Vec<&Meeting> = self
                    .meetings
                    .iter()
                    .filter(|m| !self.hidden.contains(&m.meeting_id))
                    .collect();
                if listed.is_empty() {
                    return if self.scalelite_order {
                        NO_MEETINGS_SCALELITE.into()
                    } else {
                        NO_MEETINGS_BBB.into()
                    };
                }
                let mut out = String::with_capacity(listed.len() * 4200 + 100);
                out.push_str("<response>\n    <returncode>SUCCESS</returncode>\n    <meetings>\n");
                let joined = self.joined();
                for m in listed {
                    m.xml(&mut out, "        ", m.joined_in(&joined));
                }
                out.push_str("    </meetings>\n</response>");
                out
            }
            "isMeetingRunning" => {
                let running = param("meetingID")
                    .and_then(|id| current_session(&self.meetings, &id))
                    .is_some_and(|m| m.running);
                format!("<response>\n    <returncode>SUCCESS</returncode>\n    <running>{running}</running>\n</response>")
            }
            "getMeetingInfo" => {
                let Some(id) = param("meetingID") else {
                    return "<response>\n<returncode>FAILED</returncode>\n<messageKey>missingParamMeetingID</messageKey>\n<message>You must specify a meeting ID for the meeting.</message>\n</response>".into();
                };
                match current_session(&self.meetings, &id) {
                    Some(m) => {
                        let mut inner = String::new();
                        m.xml(&mut inner, "", m.joined_in(&self.joined()));
                        let inner = inner
                            .trim_start_matches("<meeting>\n")
                            .trim_end_matches("</meeting>\n");
                        format!("<response>\n    <returncode>SUCCESS</returncode>\n{inner}</response>")
                    }
                    None => "<response>\n<returncode>FAILED</returncode>\n<messageKey>notFound</messageKey>\n<message>We could not find a meeting with that meeting ID - perhaps the meeting is not yet running?</message>\n</response>".into(),
                }
            }
            "sendChatMessage" if !self.version.starts_with(['0', '1', '2']) => {
                let (Some(id), Some(message)) = (param("meetingID"), param("message")) else {
                    return "<response>\n<returncode>FAILED</returncode>\n<messageKey>missingParam</messageKey>\n<message>meetingID and message are required</message>\n</response>".into();
                };
                if current_session(&self.meetings, &id).is_none() {
                    return "<response>\n<returncode>FAILED</returncode>\n<messageKey>notFound</messageKey>\n<message>We could not find a meeting with that meeting ID</message>\n</response>".into();
                }
                if message.chars().count() > 500 {
                    return "<response>\n<returncode>FAILED</returncode>\n<messageKey>validationError</messageKey>\n<message>Message must be at most 500 characters</message>\n</response>".into();
                }
                let user = param("userName").unwrap_or_else(|| "System".into());
                self.chat_messages.push((id, user, message));
                "<response>\n<returncode>SUCCESS</returncode>\n<messageKey>chatMessageSent</messageKey>\n<message>The chat message was sent</message>\n</response>".into()
            }
            _ => "<response>\n<returncode>FAILED</returncode>\n<messageKey>unsupportedRequest</messageKey>\n<message>This request is not supported.</message>\n</response>".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_vectors_from_the_spec() {
        let secret = "639259d4-9dd8-4b25-bf01-95f9567eaf4b";
        let all = ["sha1", "sha256", "sha384", "sha512"];
        assert!(checksum_ok(
            "getMeetings",
            "checksum=2027baa7771026e9e93392f55031535d1444c41f",
            secret,
            &all
        ));
        assert!(checksum_ok(
            "getMeetings",
            "checksum=a5370c5f3d97d56d53b435684cdbc429c2898a3bf9f435518b4279e1e0dbfc8c",
            secret,
            &all
        ));
        assert!(checksum_ok(
            "isMeetingRunning",
            "meetingID=abc123&checksum=8478733ccb8695b8aaaff48b3c1e281a75a6f046",
            secret,
            &all
        ));
        assert!(!checksum_ok(
            "getMeetings",
            "checksum=2027baa7771026e9e93392f55031535d1444c41f",
            "other",
            &all
        ));
        assert!(!checksum_ok("getMeetings", "", secret, &all));
    }
}
