//! The getMeetingInfo answer, reduced to the session BBB holds for an external
//! `meetingID` now (bbb-and-streamer.md §2.4): asked when a session vanished from
//! getMeetings, because isMeetingRunning cannot tell one session of a room from the next.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::BbbError;
use crate::model::{BbbMeeting, RoomInfo};

/// Reads a getMeetingInfo answer: `SUCCESS` with the meeting's fields directly under
/// `<response>`, or `FAILED` (`notFound`: BBB holds no meeting with that id).
pub(super) fn parse_meeting_info(body: &[u8]) -> Result<RoomInfo, BbbError> {
    let mut reader = Reader::from_reader(body);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let field = |name: &[u8]| -> Option<usize> {
        [
            b"returncode".as_slice(),
            b"messageKey",
            b"message",
            b"meetingID",
            b"internalMeetingID",
            b"running",
            b"endTime",
        ]
        .iter()
        .position(|f| *f == name)
    };
    let mut values: [String; 7] = Default::default();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => path.push(e.local_name().as_ref().to_vec()),
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                if path.len() == 2
                    && path[0] == b"response"
                    && let Some(i) = field(&path[1])
                {
                    let text = t
                        .unescape()
                        .map(|c| c.trim().to_owned())
                        .unwrap_or_default();
                    values[i].push_str(&text);
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(BbbError::Garbage(format!("getMeetingInfo: {e}"))),
        }
        buf.clear();
    }
    let [
        returncode,
        key,
        message,
        meeting_id,
        internal,
        running,
        end_time,
    ] = values;
    match returncode.as_str() {
        "SUCCESS" if !internal.is_empty() => Ok(RoomInfo::Session(BbbMeeting {
            meeting_id,
            internal_meeting_id: internal,
            running: running == "true",
            end_time: end_time.parse().unwrap_or(0),
        })),
        "SUCCESS" => Err(BbbError::Garbage(
            "getMeetingInfo: SUCCESS without an internalMeetingID".into(),
        )),
        "FAILED" if key == "notFound" => Ok(RoomInfo::NotFound),
        "FAILED" => Err(BbbError::Failed {
            message_key: key,
            message,
        }),
        _ => Err(BbbError::Garbage(
            "getMeetingInfo: no SUCCESS or FAILED returncode".into(),
        )),
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
