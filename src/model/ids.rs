//! Ids and numbers that are written alike but name different things, each its own
//! type so that one cannot be passed for the other: BBB's `meetingID` (a room) and
//! `internalMeetingID` (one session of it); a server's number in a cluster and a slot's
//! number on a server. Each is kept in the state files as the bare text or number it
//! wraps (`#[serde(transparent)]`), so those files read and write as before.

use std::fmt;

use serde::{Deserialize, Serialize};

/// BBB's external `meetingID`: the room, as Pod's meeting row, getMeetings and the
/// streamer's join name it. Moodle and Greenlight reuse one for every session of a room;
/// a session is an [`InternalMeetingId`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MeetingId(String);

/// BBB's `internalMeetingID`: one session of a room (`<sha1>-<creation time in ms>`),
/// Pod's meeting row's `internal_meeting_id`, and the stem of the recording file Pod's
/// cron looks for in `recordings_dir`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InternalMeetingId(String);

macro_rules! text_id {
    ($name:ident) => {
        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        /// As the text it wraps: `{:?}` in a message reads as it did with a `String`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_id!(MeetingId);
text_id!(InternalMeetingId);

impl InternalMeetingId {
    /// The creation time BBB puts at the end of an `internalMeetingID` (`<sha1>-<ms>`).
    pub fn created_ms(&self) -> Option<u64> {
        self.0.rsplit_once('-')?.1.parse().ok()
    }
}

/// A server's number in a cluster (`server.number`, 1 to `server.count`): the part
/// before the slash of Pod's `server` field, `"<server>/<slot>"`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServerNumber(pub u32);

impl fmt::Debug for ServerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq<u32> for ServerNumber {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for ServerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_as_the_bare_text_and_number_they_wrap() {
        let id = MeetingId::new("room-1");
        assert_eq!(serde_json::to_string(&id).expect("json"), r#""room-1""#);
        let back: InternalMeetingId = serde_json::from_str(r#""abc-1700""#).expect("json");
        assert_eq!(back, InternalMeetingId::new("abc-1700"));
        assert_eq!(serde_json::to_string(&ServerNumber(2)).expect("json"), "2");
        assert_eq!(id.to_string(), "room-1");
        assert_eq!(format!("{id:?}"), r#""room-1""#);
        assert_eq!(format!("{:?}", ServerNumber(2)), "2");
    }

    #[test]
    fn a_session_knows_when_bbb_created_it() {
        assert_eq!(
            InternalMeetingId::new("5f9a-1700000000000").created_ms(),
            Some(1_700_000_000_000)
        );
        assert_eq!(InternalMeetingId::new("no-time-x").created_ms(), None);
        assert_eq!(InternalMeetingId::new("plain").created_ms(), None);
    }
}
