//! What BBB reports: meetings of a getMeetings answer, grouped by session, and the
//! getMeetingInfo answer about one room.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{InternalMeetingId, MeetingId};

/// One meeting of a getMeetings answer, reduced to what the tick needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BbbMeeting {
    /// External `meetingID`: the room.
    pub meeting_id: MeetingId,
    /// `internalMeetingID`: this session of the room.
    pub internal_meeting_id: InternalMeetingId,
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
    by_room: HashMap<MeetingId, Vec<BbbMeeting>>,
}

impl Sessions {
    pub fn new(meetings: Vec<BbbMeeting>) -> Sessions {
        let mut by_room: HashMap<MeetingId, Vec<BbbMeeting>> =
            HashMap::with_capacity(meetings.len());
        for m in meetings {
            by_room.entry(m.meeting_id.clone()).or_default().push(m);
        }
        Sessions { by_room }
    }

    /// Every listed entry of the room `meeting_id` (any session).
    pub fn of_room(&self, meeting_id: &MeetingId) -> &[BbbMeeting] {
        self.by_room.get(meeting_id).map_or(&[], Vec::as_slice)
    }

    /// Whether the session runs: listed under `meeting_id` with `session` as its
    /// `internalMeetingID`, and not ended (a created, not yet joined session runs).
    /// With the session unknown (`None`: a live adopted before it learned it), any
    /// entry of the room that has not ended counts.
    pub fn runs(&self, meeting_id: &MeetingId, session: Option<&InternalMeetingId>) -> bool {
        self.of_room(meeting_id)
            .iter()
            .filter(|m| session.is_none_or(|s| m.internal_meeting_id == *s))
            .any(|m| !m.has_ended())
    }

    /// Whether the session (with `session` unknown: the room) is listed at all, ended
    /// or not.
    pub fn lists(&self, meeting_id: &MeetingId, session: Option<&InternalMeetingId>) -> bool {
        self.of_room(meeting_id)
            .iter()
            .any(|m| session.is_none_or(|s| m.internal_meeting_id == *s))
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
    pub fn session_over(
        &self,
        meeting_id: &MeetingId,
        session: Option<&InternalMeetingId>,
    ) -> bool {
        let Some(session) = session else {
            return !self.runs(meeting_id, None);
        };
        if self.runs(meeting_id, Some(session)) {
            return false;
        }
        if self.lists(meeting_id, Some(session)) || !self.runs(meeting_id, None) {
            return true;
        }
        let Some(ours) = session.created_ms() else {
            return false;
        };
        self.of_room(meeting_id)
            .iter()
            .filter(|m| !m.has_ended())
            .any(|m| m.internal_meeting_id.created_ms().is_some_and(|t| t > ours))
    }

    /// Whether a streamer waiting on the room `meeting_id` for `session` may have shown
    /// another session: its own does not run, and the room lists another one that has
    /// not ended, or a newer one (the next class, ended since).
    pub fn other_session_shown(&self, meeting_id: &MeetingId, session: &InternalMeetingId) -> bool {
        if self.runs(meeting_id, Some(session)) {
            return false;
        }
        let ours = session.created_ms();
        self.of_room(meeting_id).iter().any(|m| {
            m.internal_meeting_id != *session
                && (!m.has_ended()
                    || ours
                        .zip(m.internal_meeting_id.created_ms())
                        .is_some_and(|(o, t)| t > o))
        })
    }

    /// Number of listed entries (all rooms, all sessions).
    pub fn len(&self) -> usize {
        self.by_room.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_room.is_empty()
    }
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
    pub fn runs(&self, session: Option<&InternalMeetingId>) -> bool {
        match self {
            RoomInfo::NotFound => false,
            RoomInfo::Session(m) => {
                session.is_none_or(|s| m.internal_meeting_id == *s) && !m.has_ended()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::fixtures::session;

    fn m(id: &str) -> MeetingId {
        MeetingId::new(id)
    }

    fn i(id: &str) -> InternalMeetingId {
        InternalMeetingId::new(id)
    }

    #[test]
    fn a_session_is_judged_apart_from_the_other_sessions_of_its_room() {
        // The lecture ended (still listed) and the room was opened again.
        let s = Sessions::new(vec![
            session("room", "s1", false, 1_700_000_000_000),
            session("room", "s2", true, 0),
            session("other", "o1", false, 0),
        ]);
        assert!(!s.runs(&m("room"), Some(&i("s1"))));
        assert!(s.runs(&m("room"), Some(&i("s2"))));
        assert!(s.session_over(&m("room"), Some(&i("s1"))), "listed, ended");
        assert!(!s.session_over(&m("room"), Some(&i("s2"))));
        assert!(!s.session_over(&m("room"), None));
        // Not listed: over when the room runs nothing, or a newer session.
        let next = Sessions::new(vec![session("room", "abc-2000", true, 0)]);
        assert!(next.session_over(&m("room"), Some(&i("abc-1000"))));
        assert!(
            !next.session_over(&m("room"), Some(&i("abc-3000"))),
            "older than ours"
        );
        assert!(
            !next.session_over(&m("room"), Some(&i(".."))),
            "of unknown age: kept"
        );
        assert!(next.session_over(&m("gone"), Some(&i("abc-1000"))));
        assert!(next.session_over(&m("gone"), None));
        // Unknown session: the room runs.
        assert!(s.runs(&m("room"), None));
        // Created, nobody joined yet: runs.
        assert!(s.runs(&m("other"), Some(&i("o1"))));
        // A streamer of s1 (ended) may have shown s2 (running); s2's own runs.
        assert!(s.other_session_shown(&m("room"), &i("s1")));
        assert!(!s.other_session_shown(&m("room"), &i("s2")));
        // The next class ended too, still listed: newer than ours, so it was shown.
        let both_ended = Sessions::new(vec![
            session("room", "abc-1000", false, 5),
            session("room", "abc-2000", false, 6),
        ]);
        assert!(both_ended.other_session_shown(&m("room"), &i("abc-1000")));
        assert!(
            !both_ended.other_session_shown(&m("room"), &i("abc-2000")),
            "older"
        );
        assert!(!next.other_session_shown(&m("gone"), &i("abc-1000")));
        // Another session listed alone does not keep s1 running.
        let alone = Sessions::new(vec![session("room", "s2", true, 0)]);
        assert!(!alone.runs(&m("room"), Some(&i("s1"))));
        assert!(!alone.runs(&m("absent"), None));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn get_meeting_info_is_compared_by_session() {
        let now = RoomInfo::Session(session("room", "s2", true, 0));
        assert!(!now.runs(Some(&i("s1"))));
        assert!(now.runs(Some(&i("s2"))));
        assert!(now.runs(None));
        assert!(!RoomInfo::NotFound.runs(None));
        let ended = RoomInfo::Session(session("room", "s1", false, 5));
        assert!(!ended.runs(Some(&i("s1"))));
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
}
