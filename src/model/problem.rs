//! What a tick reports besides its actions: problems (log, exit code, error mail) and
//! the reasons a waiting live is not started.

use serde::{Deserialize, Serialize};

use super::{LiveId, ServerNumber};

/// A failure found during a tick, reported in the log, the exit code and the error mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable identity of the failure across ticks, for mail throttling.
    pub key: ProblemKey,
    pub live: Option<LiveId>,
    /// What failed, with the cause chain (`{:#}` of the error).
    pub what: String,
    /// What the admin can do about it.
    pub advice: String,
    /// The tool gave up on this (e.g. a live closed after 3 failed starts): mailed even
    /// when the same key was mailed less than an hour ago.
    pub gave_up: bool,
}

/// Which failure a [`Problem`] is, stable across ticks: the error mail is throttled by
/// it, and the server state's mail memory keeps it as its text (`start:42`,
/// `bbb:getMeetings`, `row:7`), which the log's `key` field shows too. That text is
/// fixed by the state files already written; [`Display`](std::fmt::Display) writes it
/// and [`FromStr`] reads it back, a text this version does not make included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProblemKey {
    /// A live's start failed, or it was given up after too many (`start:42`).
    Start(LiveId),
    /// A live's stop failed (`stop:42`).
    Stop(LiveId),
    /// Taking over a live Pod shows running here failed (`adopt:42`).
    Adopt(LiveId),
    /// Finishing the undo of a start failed (`revert:42`).
    Revert(LiveId),
    /// Closing a live given up failed (`giveup:42`).
    GiveUp(LiveId),
    /// Closing a waiting live whose meeting does not run failed (`stale:42`).
    Stale(LiveId),
    /// Closing a second request for a session already streamed failed (`duplicate:42`).
    Duplicate(LiveId),
    /// A live's recording was not written, parked or handed over (`recording:42`; 0
    /// when the live is unknown).
    Recording(LiveId),
    /// Joining the parts of a live's recording failed (`recording-join:42`).
    RecordingJoin(LiveId),
    /// A live's streamer is unhealthy (`health:42`).
    Health(LiveId),
    /// A live's streamer container is not running (`streamer:42`).
    Streamer(LiveId),
    /// getMeetingInfo failed for a live missing from getMeetings
    /// (`bbb:getMeetingInfo:42`).
    MeetingInfo(LiveId),
    /// A row of Pod's list that does not parse, by its id (`row:42`).
    Row(LiveId),
    /// A row of Pod's list without a usable id, by why it does not parse (`row:<why>`).
    RowWithoutId(String),
    /// A slot's state file could not be read or written (`state:slot1`).
    SlotState(u32),
    /// The server state could not be read (`state:server`).
    ServerState,
    /// The server state could not be saved (`state:server-save`).
    ServerStateSave,
    /// getMeetings failed (`bbb:getMeetings`).
    Meetings,
    /// Pod's list of lives could not be read (`pod:livestreams`).
    Livestreams,
    /// The cluster Redis could not be asked for a claim (`cluster:claim`).
    ClusterClaim,
    /// The HTTP client of the health checks could not be built (`health:hls-client`).
    HlsClient,
    /// The digest mail could not be sent (`mail:digest`).
    DigestMail,
    /// A start's mail could not be sent (`mail:start`).
    StartMail,
    /// The recordings waiting could not be listed (`recording:list`).
    RecordingList,
    /// A slot's task failed (`internal:task`).
    Task,
    /// The slots of the webinars could not be read (`webinar:slots`).
    WebinarSlots,
    /// Docker does not work, found by an idle tick's probe (`docker`).
    Docker,
    /// A webinar of `serve` could not be tended, by its Pod room (`webinar:<room>`; a
    /// room is a hash's end, never `slots`).
    Webinar(String),
    /// Pod could not be told a webinar stopped, by its Pod room (`webinar-pod:<room>`).
    WebinarPod(String),
    /// A text this version does not make (an older state file's), kept as it was read.
    Other(String),
}

impl ProblemKey {
    /// The keys without an id; their text is [`Display`](std::fmt::Display)'s.
    const FIXED: [ProblemKey; 12] = [
        ProblemKey::ServerState,
        ProblemKey::ServerStateSave,
        ProblemKey::Meetings,
        ProblemKey::Livestreams,
        ProblemKey::ClusterClaim,
        ProblemKey::HlsClient,
        ProblemKey::DigestMail,
        ProblemKey::StartMail,
        ProblemKey::RecordingList,
        ProblemKey::Task,
        ProblemKey::WebinarSlots,
        ProblemKey::Docker,
    ];

    /// The keys of a live; their text is a prefix and the live id.
    const OF_LIVE: [fn(LiveId) -> ProblemKey; 13] = [
        ProblemKey::Start,
        ProblemKey::Stop,
        ProblemKey::Adopt,
        ProblemKey::Revert,
        ProblemKey::GiveUp,
        ProblemKey::Stale,
        ProblemKey::Duplicate,
        ProblemKey::Recording,
        ProblemKey::RecordingJoin,
        ProblemKey::Health,
        ProblemKey::Streamer,
        ProblemKey::MeetingInfo,
        ProblemKey::Row,
    ];
}

impl std::fmt::Display for ProblemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProblemKey::Start(live) => write!(f, "start:{live}"),
            ProblemKey::Stop(live) => write!(f, "stop:{live}"),
            ProblemKey::Adopt(live) => write!(f, "adopt:{live}"),
            ProblemKey::Revert(live) => write!(f, "revert:{live}"),
            ProblemKey::GiveUp(live) => write!(f, "giveup:{live}"),
            ProblemKey::Stale(live) => write!(f, "stale:{live}"),
            ProblemKey::Duplicate(live) => write!(f, "duplicate:{live}"),
            ProblemKey::Recording(live) => write!(f, "recording:{live}"),
            ProblemKey::RecordingJoin(live) => write!(f, "recording-join:{live}"),
            ProblemKey::Health(live) => write!(f, "health:{live}"),
            ProblemKey::Streamer(live) => write!(f, "streamer:{live}"),
            ProblemKey::MeetingInfo(live) => write!(f, "bbb:getMeetingInfo:{live}"),
            ProblemKey::Row(live) => write!(f, "row:{live}"),
            ProblemKey::RowWithoutId(why) => write!(f, "row:{why}"),
            ProblemKey::SlotState(slot) => write!(f, "state:slot{slot}"),
            ProblemKey::ServerState => f.write_str("state:server"),
            ProblemKey::ServerStateSave => f.write_str("state:server-save"),
            ProblemKey::Meetings => f.write_str("bbb:getMeetings"),
            ProblemKey::Livestreams => f.write_str("pod:livestreams"),
            ProblemKey::ClusterClaim => f.write_str("cluster:claim"),
            ProblemKey::HlsClient => f.write_str("health:hls-client"),
            ProblemKey::DigestMail => f.write_str("mail:digest"),
            ProblemKey::StartMail => f.write_str("mail:start"),
            ProblemKey::RecordingList => f.write_str("recording:list"),
            ProblemKey::Task => f.write_str("internal:task"),
            ProblemKey::WebinarSlots => f.write_str("webinar:slots"),
            ProblemKey::Docker => f.write_str("docker"),
            ProblemKey::Webinar(room) => write!(f, "webinar:{room}"),
            ProblemKey::WebinarPod(room) => write!(f, "webinar-pod:{room}"),
            ProblemKey::Other(text) => f.write_str(text),
        }
    }
}

impl std::str::FromStr for ProblemKey {
    type Err = std::convert::Infallible;

    /// Reads back what [`Display`](std::fmt::Display) wrote; any other text is
    /// [`ProblemKey::Other`], so that a memory written by another version still reads.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(fixed) = ProblemKey::FIXED.iter().find(|k| k.to_string() == text) {
            return Ok(fixed.clone());
        }
        // Only the id as Display writes it (no sign, no leading zero): the text reads
        // back as it was written.
        let id = |rest: &str| {
            rest.parse::<LiveId>()
                .ok()
                .filter(|id| id.to_string() == rest)
        };
        for of_live in ProblemKey::OF_LIVE {
            let prefix = of_live(0).to_string();
            if let Some(live) = text.strip_prefix(prefix.trim_end_matches('0')).and_then(id) {
                return Ok(of_live(live));
            }
        }
        let slot = |rest: &str| rest.parse::<u32>().ok().filter(|n| n.to_string() == rest);
        if let Some(slot) = text.strip_prefix("state:slot").and_then(slot) {
            return Ok(ProblemKey::SlotState(slot));
        }
        if let Some(why) = text.strip_prefix("row:") {
            return Ok(ProblemKey::RowWithoutId(why.to_owned()));
        }
        if let Some(room) = text.strip_prefix("webinar:") {
            return Ok(ProblemKey::Webinar(room.to_owned()));
        }
        if let Some(room) = text.strip_prefix("webinar-pod:") {
            return Ok(ProblemKey::WebinarPod(room.to_owned()));
        }
        Ok(ProblemKey::Other(text.to_owned()))
    }
}

impl Serialize for ProblemKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProblemKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let Ok(key) = text.parse();
        Ok(key)
    }
}

/// Compared with a key's text: `key == "start:42"`.
impl PartialEq<&str> for ProblemKey {
    fn eq(&self, other: &&str) -> bool {
        let Ok(other) = other.parse::<ProblemKey>();
        *self == other
    }
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
    ClaimedByServer { server: Option<ServerNumber> },
    /// With `[cluster]`: live `by` holds the claim on the same BBB session and streams
    /// it (one streamer per session).
    SessionStreamedBy { by: LiveId },
    /// BBB's meeting list could not be read this tick: nothing shows that its session
    /// runs, and a streamer started blind could show the room's next class.
    BbbUnreadable,
    /// BBB lists its room but not its session (created or running) yet.
    SessionNotShown,
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
            WaitReason::BbbUnreadable => write!(
                f,
                "BBB's meeting list could not be read this tick, so nothing shows that its \
                 session runs (it starts once BBB answers and shows it)"
            ),
            WaitReason::SessionNotShown => write!(
                f,
                "BBB does not show its session yet (its room runs another one)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of key with the text the state files and logs already hold.
    fn every_key() -> Vec<(ProblemKey, &'static str)> {
        vec![
            (ProblemKey::Start(42), "start:42"),
            (ProblemKey::Stop(42), "stop:42"),
            (ProblemKey::Adopt(42), "adopt:42"),
            (ProblemKey::Revert(42), "revert:42"),
            (ProblemKey::GiveUp(42), "giveup:42"),
            (ProblemKey::Stale(42), "stale:42"),
            (ProblemKey::Duplicate(42), "duplicate:42"),
            (ProblemKey::Recording(42), "recording:42"),
            (ProblemKey::Recording(0), "recording:0"),
            (ProblemKey::RecordingJoin(42), "recording-join:42"),
            (ProblemKey::Health(42), "health:42"),
            (ProblemKey::Streamer(42), "streamer:42"),
            (ProblemKey::MeetingInfo(42), "bbb:getMeetingInfo:42"),
            (ProblemKey::Row(7), "row:7"),
            (
                ProblemKey::RowWithoutId("missing field `id`".into()),
                "row:missing field `id`",
            ),
            (ProblemKey::SlotState(1), "state:slot1"),
            (ProblemKey::ServerState, "state:server"),
            (ProblemKey::ServerStateSave, "state:server-save"),
            (ProblemKey::Meetings, "bbb:getMeetings"),
            (ProblemKey::Livestreams, "pod:livestreams"),
            (ProblemKey::ClusterClaim, "cluster:claim"),
            (ProblemKey::HlsClient, "health:hls-client"),
            (ProblemKey::DigestMail, "mail:digest"),
            (ProblemKey::StartMail, "mail:start"),
            (ProblemKey::RecordingList, "recording:list"),
            (ProblemKey::Task, "internal:task"),
            (ProblemKey::WebinarSlots, "webinar:slots"),
            (ProblemKey::Webinar("abc123".into()), "webinar:abc123"),
            (
                ProblemKey::WebinarPod("abc123".into()),
                "webinar-pod:abc123",
            ),
            (ProblemKey::Other("pod:list".into()), "pod:list"),
        ]
    }

    #[test]
    fn each_key_is_written_and_read_back_as_the_text_the_state_files_hold() {
        for (key, text) in every_key() {
            assert_eq!(key.to_string(), text);
            assert_eq!(text.parse::<ProblemKey>(), Ok(key.clone()), "{text}");
            let json = serde_json::to_string(&key).expect("serialize");
            assert_eq!(json, serde_json::to_string(text).expect("serialize"));
            let back: ProblemKey = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, key);
        }
    }

    #[test]
    fn a_text_this_version_does_not_make_is_kept_as_it_was_read() {
        for text in [
            "start:042",
            "start:-1",
            "state:slot",
            "start:",
            "",
            "bbb:other",
        ] {
            let key: ProblemKey = text.parse().expect("any text is a key");
            assert_eq!(key.to_string(), text);
        }
    }

    #[test]
    fn a_problem_is_stored_with_its_key_as_text() {
        let problem = Problem {
            key: ProblemKey::Start(42),
            live: Some(42),
            what: "it broke".into(),
            advice: "fix it".into(),
            gave_up: false,
        };
        let json = serde_json::to_value(&problem).expect("serialize");
        assert_eq!(json["key"], "start:42");
        let back: Problem = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, problem);
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
            says(WaitReason::ClaimedByServer {
                server: Some(ServerNumber(2))
            })
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
        assert!(
            says(WaitReason::BbbUnreadable)
                .starts_with("live 7 waits: BBB's meeting list could not be read this tick")
        );
        assert!(says(WaitReason::SessionNotShown).contains("does not show its session yet"));
    }
}
