//! What Pod stores: lives (livestreams), their BBB meeting rows and broadcasters.

use serde::{Deserialize, Serialize};

use super::{InternalMeetingId, MeetingId, ServerNumber};

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
    /// Exact match on `"<number>/<slot>"`: `"11/1"` is not server 1 (PHP defect 3,
    /// docs/php-script.md).
    pub fn slot_on(&self, number: ServerNumber) -> Option<u32> {
        let server = self.server.as_deref()?;
        let (n, slot) = server.split_once('/')?;
        if ServerNumber(n.parse().ok()?) != number || n.starts_with('+') || n.starts_with('0') {
            return None;
        }
        if slot.starts_with('+') || slot.starts_with('0') {
            return None;
        }
        slot.parse::<u32>().ok()
    }

    /// Whether Pod shows this live running in `slot` of server `number`.
    pub fn runs_in(&self, number: ServerNumber, slot: u32) -> bool {
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
    pub meeting_id: MeetingId,
    /// BBB's `internalMeetingID`: the file stem Pod's cron looks for in recordings_dir.
    pub internal_meeting_id: InternalMeetingId,
    pub meeting_name: String,
}

/// A broadcaster as Pod answers it. The slug is Pod's, never guessed (PHP defect 4,
/// docs/php-script.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broadcaster {
    pub id: u64,
    pub slug: String,
    pub name: String,
    /// The stream URL (`url` on Pod ≤ 2.9.2, `broadcaster_url` from 2.9.3), if present.
    pub stream_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(live(Some("1/1")).slot_on(ServerNumber(1)), Some(1));
        assert_eq!(live(Some("1/2")).slot_on(ServerNumber(1)), Some(2));
        assert_eq!(live(Some("11/1")).slot_on(ServerNumber(1)), None);
        assert_eq!(live(Some("11/1")).slot_on(ServerNumber(11)), Some(1));
        assert_eq!(live(Some("1/1")).slot_on(ServerNumber(11)), None);
        assert_eq!(live(Some("01/1")).slot_on(ServerNumber(1)), None);
        assert_eq!(live(Some("1/01")).slot_on(ServerNumber(1)), None);
        assert_eq!(live(Some("1/")).slot_on(ServerNumber(1)), None);
        assert_eq!(live(Some("1")).slot_on(ServerNumber(1)), None);
        assert_eq!(live(Some("1/x")).slot_on(ServerNumber(1)), None);
        assert_eq!(live(Some(" 1/1")).slot_on(ServerNumber(1)), None);
        assert_eq!(live(None).slot_on(ServerNumber(1)), None);
    }
}
