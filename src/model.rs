//! Plain data the tick reasons about: lives as Pod stores them, meetings as BBB
//! reports them, broadcasters. No I/O and no clients here: `plan.rs` decides over
//! these types only, so everything that decides can be tested without a network.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Pod's livestream id (`/rest/bbb_livestream/<id>/`).
pub type LiveId = u64;

/// `Livestream.status` in Pod: 0 "Live not started", 1 "Live in progress", 2 "Live stopped".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LiveStatus {
    Waiting,
    Running,
    Stopped,
    /// A value Pod does not define; such a live is never started nor stopped by us.
    Other(i64),
}

impl LiveStatus {
    pub fn from_code(code: i64) -> Self {
        match code {
            0 => LiveStatus::Waiting,
            1 => LiveStatus::Running,
            2 => LiveStatus::Stopped,
            other => LiveStatus::Other(other),
        }
    }
}

/// One row of `/rest/bbb_livestream/`, with the fields the tool uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub id: LiveId,
    /// Hyperlink to the BBB meeting in Pod (`…/rest/bbb_meeting/<id>/`), used verbatim.
    pub meeting_url: Option<String>,
    /// Hyperlink to the teacher (`…/rest/users/<id>/`), copied into the meeting's `encoded_by`.
    pub user_url: Option<String>,
    pub status: LiveStatus,
    /// `"<server number>/<slot>"` once a server took the live.
    pub server: Option<String>,
    pub end_date: Option<String>,
    pub broadcaster_id: Option<u64>,
    pub is_restricted: bool,
    pub enable_chat: bool,
    pub show_chat: bool,
    pub download_meeting: bool,
}

impl Live {
    /// The slot this live runs in on server `number`, if Pod says it runs there.
    /// Exact match on `"<number>/<slot>"`: `"11/1"` is not server 1 (PHP defect 3).
    pub fn slot_on(&self, number: u32) -> Option<u32> {
        let server = self.server.as_deref()?;
        let (n, slot) = server.split_once('/')?;
        if n.parse::<u32>().ok()? != number || n.starts_with('+') || n.starts_with('0') {
            return None;
        }
        if slot.starts_with('+') || slot.starts_with('0') {
            return None;
        }
        slot.parse::<u32>().ok()
    }

    /// Whether Pod shows this live running in `slot` of server `number`.
    pub fn runs_in(&self, number: u32, slot: u32) -> bool {
        self.status == LiveStatus::Running && self.slot_on(number) == Some(slot)
    }
}

/// A livestream row of Pod's list that does not parse (a wrong type, a null or missing
/// required field, an unknown status): skipped and reported, the rest of the list is
/// acted on. Its live is neither started nor stopped, and the slot it may run in stays
/// busy (the slot's state file says so).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRow {
    /// The row's id when it has a usable one.
    pub id: Option<LiveId>,
    /// What is wrong, naming the field (`livestream 12: field "server": …`).
    pub reason: String,
}

/// Pod's livestream list: the rows that parse, and those skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Livestreams {
    /// Sorted by id.
    pub lives: Vec<Live>,
    pub skipped: Vec<SkippedRow>,
}

/// `/rest/bbb_meeting/<id>/` as Pod returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodMeeting {
    pub id: u64,
    /// BBB's external `meetingID`: what getMeetings lists and the streamer joins.
    pub meeting_id: String,
    /// BBB's `internalMeetingID`: the file stem Pod's cron looks for in recordings_dir.
    pub internal_meeting_id: String,
    pub meeting_name: String,
}

/// A broadcaster as Pod answers it. The slug is Pod's, never guessed (PHP defect 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadcaster {
    pub id: u64,
    pub slug: String,
    pub name: String,
    /// The stream URL (`url` on Pod ≤ 2.9.2, `broadcaster_url` from 2.9.3), if present.
    pub stream_url: Option<String>,
}

/// One meeting of a getMeetings answer, reduced to what the tick needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BbbMeeting {
    /// External `meetingID`.
    pub meeting_id: String,
    pub internal_meeting_id: String,
    pub running: bool,
    /// `endTime` in ms since the epoch, 0 while the meeting has not ended.
    pub end_time: u64,
}

impl BbbMeeting {
    /// Listed with `running=false` and a non-zero `endTime`: ended but still listed.
    /// `running=false` with `endTime` 0 is a created meeting nobody joined yet: not ended.
    pub fn has_ended(&self) -> bool {
        !self.running && self.end_time != 0
    }
}

/// A successful getMeetings answer, keyed by session. Moodle and Greenlight reuse one
/// external `meetingID` for every session of a room; each session has its own
/// `internalMeetingID` (and its own meeting row in Pod). BBB lists an ended session
/// beside the new one for a while, and Scalelite may list one per node: a live belongs
/// to one session, and another session of its room says nothing about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sessions {
    by_room: HashMap<String, Vec<BbbMeeting>>,
}

impl Sessions {
    pub fn new(meetings: Vec<BbbMeeting>) -> Sessions {
        let mut by_room: HashMap<String, Vec<BbbMeeting>> = HashMap::with_capacity(meetings.len());
        for m in meetings {
            by_room.entry(m.meeting_id.clone()).or_default().push(m);
        }
        Sessions { by_room }
    }

    /// Every listed entry of the room `meeting_id` (any session).
    pub fn of_room(&self, meeting_id: &str) -> &[BbbMeeting] {
        self.by_room.get(meeting_id).map_or(&[], Vec::as_slice)
    }

    /// Whether the session runs: listed under `meeting_id` with `session` as its
    /// `internalMeetingID`, and not ended (a created, not yet joined session runs).
    /// With the session unknown (`None`: a live adopted before it learned it), any
    /// entry of the room that has not ended counts.
    pub fn runs(&self, meeting_id: &str, session: Option<&str>) -> bool {
        self.of_room(meeting_id)
            .iter()
            .filter(|m| session.is_none_or(|s| m.internal_meeting_id == s))
            .any(|m| !m.has_ended())
    }

    /// Whether the session (with `session` unknown: the room) is listed at all, ended
    /// or not.
    pub fn lists(&self, meeting_id: &str, session: Option<&str>) -> bool {
        self.of_room(meeting_id)
            .iter()
            .any(|m| session.is_none_or(|s| m.internal_meeting_id == s))
    }

    /// Adds an entry learnt otherwise (getMeetingInfo, for a session getMeetings left out).
    pub fn add(&mut self, m: BbbMeeting) {
        self.by_room
            .entry(m.meeting_id.clone())
            .or_default()
            .push(m);
    }

    /// Whether the session is over: listed and ended, or not listed while its room runs
    /// nothing, or not listed while its room runs a newer session (the next lecture:
    /// BBB's `internalMeetingID` ends with the session's creation time in ms). A room
    /// running a session of unknown age keeps an unlisted one running (Pod's and BBB's
    /// ids may not compare; nothing is stopped on a doubt). With `session` unknown, the
    /// room decides.
    pub fn session_over(&self, meeting_id: &str, session: Option<&str>) -> bool {
        let Some(session) = session else {
            return !self.runs(meeting_id, None);
        };
        if self.runs(meeting_id, Some(session)) {
            return false;
        }
        if self.lists(meeting_id, Some(session)) || !self.runs(meeting_id, None) {
            return true;
        }
        let Some(ours) = created_ms(session) else {
            return false;
        };
        self.of_room(meeting_id)
            .iter()
            .filter(|m| !m.has_ended())
            .any(|m| created_ms(&m.internal_meeting_id).is_some_and(|t| t > ours))
    }

    /// Number of listed entries (all rooms, all sessions).
    pub fn len(&self) -> usize {
        self.by_room.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_room.is_empty()
    }
}

/// The creation time BBB puts at the end of an `internalMeetingID` (`<sha1>-<ms>`).
fn created_ms(internal_meeting_id: &str) -> Option<u64> {
    internal_meeting_id.rsplit_once('-')?.1.parse().ok()
}

/// What BBB's getMeetingInfo says about a room, asked when a session vanished from
/// getMeetings (Scalelite leaves out the meetings of nodes it finds offline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomInfo {
    /// BBB knows no meeting with that id (`notFound`).
    NotFound,
    /// The session BBB holds for that id now.
    Session(BbbMeeting),
}

impl RoomInfo {
    /// Whether this answer shows `session` (or, unknown, the room) still running.
    pub fn runs(&self, session: Option<&str>) -> bool {
        match self {
            RoomInfo::NotFound => false,
            RoomInfo::Session(m) => {
                session.is_none_or(|s| m.internal_meeting_id == s) && !m.has_ended()
            }
        }
    }
}

/// A failure found during a tick, reported in the log, the exit code and the error mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable identity of the failure across ticks, for mail throttling:
    /// e.g. `"bbb:getMeetings"`, `"start:42"`, `"stop:42"`, `"recording:42"`.
    pub key: String,
    pub live: Option<LiveId>,
    /// What failed, with the cause chain (`{:#}` of the error).
    pub what: String,
    /// What the admin can do about it.
    pub advice: String,
    /// The tool gave up on this (e.g. a live closed after 3 failed starts): mailed even
    /// when the same key was mailed less than an hour ago.
    pub gave_up: bool,
}

/// A waiting live this server does not start this tick, and why: what `status` and
/// `--dry-run run` answer to "why doesn't my live start?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub live: LiveId,
    pub reason: WaitReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitReason {
    /// Every slot of this server is busy; its start already failed `failed` of `max` times.
    NoFreeSlot { failed: u32, max: u32 },
    /// BBB does not run its meeting: seen `seen` ticks in a row; closed in Pod at `needed`.
    MeetingNotRunning { seen: u32, needed: u32 },
    /// With `[cluster]`: another server claimed it and starts it (`None`: the claim's
    /// holder is not a server number, e.g. written by hand).
    ClaimedByServer { server: Option<u32> },
    /// With `[cluster]`: live `by` holds the claim on the same BBB session and streams
    /// it (one streamer per session).
    SessionStreamedBy { by: LiveId },
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "live {} waits: ", self.live)?;
        match self.reason {
            WaitReason::NoFreeSlot { failed: 0, .. } => {
                write!(f, "every slot of this server is busy")
            }
            WaitReason::NoFreeSlot { failed, max } => write!(
                f,
                "every slot of this server is busy (its start failed {failed}/{max} times)"
            ),
            WaitReason::MeetingNotRunning { seen, needed } => write!(
                f,
                "its BBB meeting is not running (seen {seen}/{needed} ticks; closed in Pod at {needed})"
            ),
            WaitReason::ClaimedByServer { server: Some(n) } => write!(
                f,
                "claimed by server {n}, which starts it (a claim of a server that is down \
                 runs out after cluster.claim_ttl_secs)"
            ),
            WaitReason::ClaimedByServer { server: None } => write!(
                f,
                "claimed by another server in the cluster Redis (a claim runs out after \
                 cluster.claim_ttl_secs)"
            ),
            WaitReason::SessionStreamedBy { by } => write!(
                f,
                "live {by} streams the same BBB session (it holds the session's claim in the \
                 cluster Redis: one streamer per session)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::fixtures::session;

    fn live(server: Option<&str>) -> Live {
        Live {
            id: 1,
            meeting_url: None,
            user_url: None,
            status: LiveStatus::Running,
            server: server.map(str::to_owned),
            end_date: None,
            broadcaster_id: None,
            is_restricted: false,
            enable_chat: false,
            show_chat: false,
            download_meeting: false,
        }
    }

    #[test]
    fn server_field_is_matched_exactly() {
        assert_eq!(live(Some("1/1")).slot_on(1), Some(1));
        assert_eq!(live(Some("1/2")).slot_on(1), Some(2));
        assert_eq!(live(Some("11/1")).slot_on(1), None);
        assert_eq!(live(Some("11/1")).slot_on(11), Some(1));
        assert_eq!(live(Some("1/1")).slot_on(11), None);
        assert_eq!(live(Some("01/1")).slot_on(1), None);
        assert_eq!(live(Some("1/01")).slot_on(1), None);
        assert_eq!(live(Some("1/")).slot_on(1), None);
        assert_eq!(live(Some("1")).slot_on(1), None);
        assert_eq!(live(Some("1/x")).slot_on(1), None);
        assert_eq!(live(Some(" 1/1")).slot_on(1), None);
        assert_eq!(live(None).slot_on(1), None);
    }

    #[test]
    fn a_session_is_judged_apart_from_the_other_sessions_of_its_room() {
        // The lecture ended (still listed) and the room was opened again.
        let s = Sessions::new(vec![
            session("room", "s1", false, 1_700_000_000_000),
            session("room", "s2", true, 0),
            session("other", "o1", false, 0),
        ]);
        assert!(!s.runs("room", Some("s1")));
        assert!(s.runs("room", Some("s2")));
        assert!(s.session_over("room", Some("s1")), "listed, ended");
        assert!(!s.session_over("room", Some("s2")));
        assert!(!s.session_over("room", None));
        // Not listed: over when the room runs nothing, or a newer session.
        let next = Sessions::new(vec![session("room", "abc-2000", true, 0)]);
        assert!(next.session_over("room", Some("abc-1000")));
        assert!(
            !next.session_over("room", Some("abc-3000")),
            "older than ours"
        );
        assert!(
            !next.session_over("room", Some("..")),
            "of unknown age: kept"
        );
        assert!(next.session_over("gone", Some("abc-1000")));
        assert!(next.session_over("gone", None));
        // Unknown session: the room runs.
        assert!(s.runs("room", None));
        // Created, nobody joined yet: runs.
        assert!(s.runs("other", Some("o1")));
        // Another session listed alone does not keep s1 running.
        let alone = Sessions::new(vec![session("room", "s2", true, 0)]);
        assert!(!alone.runs("room", Some("s1")));
        assert!(!alone.runs("absent", None));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn get_meeting_info_is_compared_by_session() {
        let now = RoomInfo::Session(session("room", "s2", true, 0));
        assert!(!now.runs(Some("s1")));
        assert!(now.runs(Some("s2")));
        assert!(now.runs(None));
        assert!(!RoomInfo::NotFound.runs(None));
        let ended = RoomInfo::Session(session("room", "s1", false, 5));
        assert!(!ended.runs(Some("s1")));
    }

    #[test]
    fn created_meeting_is_not_ended() {
        let m = |running, end_time| BbbMeeting {
            meeting_id: "m".into(),
            internal_meeting_id: "i".into(),
            running,
            end_time,
        };
        assert!(!m(false, 0).has_ended());
        assert!(!m(true, 0).has_ended());
        assert!(m(false, 1590147528510).has_ended());
        // A running meeting with an endTime (seen in getMeetingInfo samples) is running.
        assert!(!m(true, 1453206325002).has_ended());
    }

    #[test]
    fn each_wait_reason_reads_as_a_sentence_an_admin_can_act_on() {
        let says = |reason| Waiting { live: 7, reason }.to_string();
        assert_eq!(
            says(WaitReason::NoFreeSlot { failed: 0, max: 3 }),
            "live 7 waits: every slot of this server is busy"
        );
        assert!(says(WaitReason::NoFreeSlot { failed: 2, max: 3 }).ends_with("failed 2/3 times)"));
        assert!(
            says(WaitReason::ClaimedByServer { server: Some(2) })
                .starts_with("live 7 waits: claimed by server 2, which starts it")
        );
        assert!(
            says(WaitReason::ClaimedByServer { server: None })
                .contains("claimed by another server")
        );
        assert!(
            says(WaitReason::SessionStreamedBy { by: 3 })
                .starts_with("live 7 waits: live 3 streams the same BBB session")
        );
    }
}
