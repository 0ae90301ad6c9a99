//! The small BBB answers. isMeetingRunning: whether a room runs. getMeetingInfo,
//! reduced to the session BBB holds for an external `meetingID` now: asked before the
//! sighting that would stop a live whose session vanished from getMeetings (Scalelite
//! leaves out the nodes it finds offline), because isMeetingRunning cannot tell one
//! session of a room from the next (docs/bbb.md, "When has a meeting ended?").

use serde::Deserialize;

use super::BbbError;
use crate::model::{BbbMeeting, RoomInfo};

/// What `<response>` holds directly in a small BBB answer (isMeetingRunning,
/// getMeetingInfo); deeper elements (attendees, metadata) are skipped, a missing one
/// is empty. Small answers (a few KB), read whole by quick-xml's serde support; only
/// getMeetings, which can be tens of MB, needs the streaming parser.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Answer {
    returncode: String,
    #[serde(rename = "messageKey")]
    message_key: String,
    message: String,
    #[serde(rename = "meetingID")]
    meeting_id: String,
    #[serde(rename = "internalMeetingID")]
    internal_meeting_id: String,
    running: Option<String>,
    #[serde(rename = "endTime")]
    end_time: String,
    #[serde(rename = "attendeePW")]
    attendee_pw: String,
    /// The API root's answer: BBB's own version (2.6 and later).
    #[serde(rename = "bbbVersion")]
    bbb_version: String,
}

impl Answer {
    fn read(api: &str, body: &[u8]) -> Result<Answer, BbbError> {
        let answer: Answer = quick_xml::de::from_reader(body)
            .map_err(|e| BbbError::Garbage(format!("{api}: {e}")))?;
        match answer.returncode.as_str() {
            "SUCCESS" | "FAILED" => Ok(answer),
            _ => Err(BbbError::Garbage(format!(
                "{api}: no SUCCESS or FAILED returncode"
            ))),
        }
    }

    /// A `FAILED` answer as an error, but `notFound` (BBB holds no such meeting): `None`.
    fn failure(self) -> Option<BbbError> {
        (self.message_key != "notFound").then_some(BbbError::Failed {
            message_key: self.message_key,
            message: self.message,
        })
    }
}

/// Reads an isMeetingRunning answer: `SUCCESS` with `<running>`, or `FAILED` with its
/// messageKey (`notFound` is "not running": the meeting is gone).
pub(super) fn parse_is_meeting_running(body: &[u8]) -> Result<bool, BbbError> {
    let answer = Answer::read("isMeetingRunning", body)?;
    if answer.returncode == "FAILED" {
        return answer.failure().map_or(Ok(false), Err);
    }
    match answer.running.as_deref() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(BbbError::Garbage(
            "isMeetingRunning: no returncode SUCCESS with running true/false".into(),
        )),
    }
}

/// Reads a getMeetingInfo answer: `SUCCESS` with the meeting's fields directly under
/// `<response>`, or `FAILED` (`notFound`: BBB holds no meeting with that id).
pub(super) fn parse_meeting_info(body: &[u8]) -> Result<RoomInfo, BbbError> {
    parse_answer_info(Answer::read("getMeetingInfo", body)?)
}

fn parse_answer_info(answer: Answer) -> Result<RoomInfo, BbbError> {
    if answer.returncode == "FAILED" {
        return answer.failure().map_or(Ok(RoomInfo::NotFound), Err);
    }
    if answer.internal_meeting_id.is_empty() {
        return Err(BbbError::Garbage(
            "getMeetingInfo: SUCCESS without an internalMeetingID".into(),
        ));
    }
    Ok(RoomInfo::Session(BbbMeeting {
        meeting_id: answer.meeting_id.into(),
        internal_meeting_id: answer.internal_meeting_id.into(),
        running: answer.running.as_deref() == Some("true"),
        end_time: answer.end_time.parse().unwrap_or(0),
    }))
}

/// What a webinar's start and `up` need of getMeetingInfo: the session BBB holds for
/// the room and the attendee password the streamer joins with (Pod gives each of its
/// meetings its own passwords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingDetails {
    pub session: BbbMeeting,
    /// Empty when BBB 3.0 created the meeting without passwords.
    pub attendee_password: String,
}

/// Reads a getMeetingInfo answer with the attendee password; `None` for `notFound`.
pub(super) fn parse_meeting_details(body: &[u8]) -> Result<Option<MeetingDetails>, BbbError> {
    let answer = Answer::read("getMeetingInfo", body)?;
    let password = answer.attendee_pw.clone();
    match parse_answer_info(answer)? {
        RoomInfo::NotFound => Ok(None),
        RoomInfo::Session(session) => Ok(Some(MeetingDetails {
            session,
            attendee_password: password,
        })),
    }
}

/// Reads the API root's answer: BBB's version when it says (`bbbVersion`, BBB 2.6+),
/// `None` when it does not (older BBB, Scalelite).
pub(super) fn parse_version(body: &[u8]) -> Result<Option<String>, BbbError> {
    let answer = Answer::read("the API root", body)?;
    if answer.returncode == "FAILED" {
        return Err(BbbError::Failed {
            message_key: answer.message_key,
            message: answer.message,
        });
    }
    Ok(Some(answer.bbb_version).filter(|v| !v.is_empty()))
}

/// Reads a sendChatMessage answer: `Ok(true)` sent, `Ok(false)` when BBB does not know
/// the call (`unsupportedRequest`, or an HTML 404: BBB older than 3.0).
pub(super) fn parse_chat_sent(body: &[u8]) -> Result<bool, BbbError> {
    let answer = Answer::read("sendChatMessage", body)?;
    match (answer.returncode.as_str(), answer.message_key.as_str()) {
        ("SUCCESS", _) => Ok(true),
        (_, "unsupportedRequest") => Ok(false),
        _ => Err(BbbError::Failed {
            message_key: answer.message_key,
            message: answer.message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_read_from_the_fixture() {
        let xml = include_bytes!("../../tests/fixtures/bbb-xml/getMeetingInfo.xml");
        let RoomInfo::Session(m) = parse_meeting_info(xml).expect("parses") else {
            panic!("a session");
        };
        assert_eq!(m.meeting_id, "117b12ae2656972d330b6bad58878541-28-15");
        assert_eq!(
            m.internal_meeting_id,
            "178757fcedd9449054536162cdfe861ddebc70ba-1453206317376"
        );
        assert!(m.running);
        // Attendees' and metadata's own fields are deeper: not mistaken for the meeting's.
        assert_eq!(m.end_time, 1453206325002);
    }

    #[test]
    fn an_indented_answer_reads_the_same() {
        let running = b"<?xml version=\"1.0\"?>\n<response>\n  <returncode>\n    SUCCESS\n  </returncode>\n  <running> true </running>\n</response>\n";
        assert!(matches!(parse_is_meeting_running(running), Ok(true)));
        let info = b"<response>\n  <returncode>SUCCESS</returncode>\n  <meetingID> room </meetingID>\n  <internalMeetingID>\n    abc-1\n  </internalMeetingID>\n  <running>false</running>\n  <metadata><running>true</running></metadata>\n  <endTime> 12 </endTime>\n</response>";
        let RoomInfo::Session(m) = parse_meeting_info(info).expect("parses") else {
            panic!("a session");
        };
        assert_eq!(
            (m.meeting_id.as_str(), m.internal_meeting_id.as_str()),
            ("room", "abc-1")
        );
        assert!(!m.running, "the metadata's <running> is not the meeting's");
        assert_eq!(m.end_time, 12);
    }

    #[test]
    fn a_webinar_reads_the_attendee_password_and_the_version() {
        let xml = include_bytes!("../../tests/fixtures/bbb-xml/getMeetingInfo.xml");
        let d = parse_meeting_details(xml).expect("parses").expect("found");
        assert_eq!(d.attendee_password, "dbfc7207321527bbb870c82028");
        let gone = b"<response><returncode>FAILED</returncode><messageKey>notFound</messageKey><message>x</message></response>";
        assert_eq!(parse_meeting_details(gone).expect("parses"), None);
        let root = b"<response><returncode>SUCCESS</returncode><version>2.0</version><apiVersion>2.0</apiVersion><bbbVersion>3.0.4</bbbVersion></response>";
        assert_eq!(
            parse_version(root).expect("parses").as_deref(),
            Some("3.0.4")
        );
        let old = b"<response><returncode>SUCCESS</returncode><version>2.0</version></response>";
        assert_eq!(parse_version(old).expect("parses"), None);
        let sent = b"<response><returncode>SUCCESS</returncode><messageKey>chatMessageSent</messageKey></response>";
        assert!(parse_chat_sent(sent).expect("parses"));
        let unknown = b"<response><returncode>FAILED</returncode><messageKey>unsupportedRequest</messageKey><message>This request is not supported.</message></response>";
        assert!(!parse_chat_sent(unknown).expect("parses"));
    }

    #[test]
    fn not_found_failures_and_garbage() {
        let gone = b"<response><returncode>FAILED</returncode><messageKey>notFound</messageKey><message>We could not find a meeting with that meeting ID</message></response>";
        assert_eq!(parse_meeting_info(gone).ok(), Some(RoomInfo::NotFound));
        let checksum = b"<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey><message>Checksums do not match</message></response>";
        assert!(matches!(
            parse_meeting_info(checksum),
            Err(BbbError::Failed { ref message_key, .. }) if message_key == "checksumError"
        ));
        for garbage in [
            &b"<html><body>Maintenance</body></html>"[..],
            b"",
            b"<response><returncode>SUCCESS</returncode></response>",
            b"<response><returncode>SUCC",
        ] {
            assert!(parse_meeting_info(garbage).is_err(), "{garbage:?}");
        }
    }
}
