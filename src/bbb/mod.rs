//! The BigBlueButton / Scalelite API: signing calls ([`checksum()`]), asking getMeetings
//! ([`BbbClient`]), parsing its XML as a stream by element name ([`MeetingsParser`]) and
//! classifying the answer ([`BbbError`]). A failed answer of any kind is an error, never
//! "no meetings" (PHP defect 1, docs/php-script.md): only a `SUCCESS` answer that lists
//! meetings, or says `noMeetings`, gives a list.
//!
//! The room, one file a concern:
//! - `mod.rs`: [`BbbError`], what every call's failure is classified as;
//! - `checksum.rs`: signing a call (the checksum and the query encoding it signs);
//! - `client.rs`: [`BbbClient`], the HTTP calls (getMeetings, isMeetingRunning,
//!   getMeetingInfo), their timeouts and the transport's errors;
//! - `info.rs`: the small answers, read whole with quick-xml's serde support:
//!   isMeetingRunning, and getMeetingInfo (the session BBB holds for a room now);
//! - `meetings.rs`: the getMeetings parser, a state machine fed quick-xml events, and
//!   its two drivers (a byte slice, the HTTP body stream) with the limits they enforce.
//!
//! Not here: deciding what a meeting list means for the lives (`plan`), retries, and the
//! other BBB calls (the streamer container joins the meeting itself).

mod checksum;
mod client;
mod info;
mod meetings;
#[cfg(test)]
mod test_support;

use std::time::Duration;

pub use checksum::checksum;
pub use client::BbbClient;
pub use info::MeetingDetails;
pub use meetings::{
    MAX_DEPTH, MAX_MEETINGS, MAX_TOKEN_BYTES, MAX_VALUE_BYTES, MeetingsParser, Presence, Watch,
    parse_meetings,
};

/// Why getMeetings gave no usable list. Every variant means "decide nothing".
#[derive(Debug, thiserror::Error)]
pub enum BbbError {
    #[error("cannot reach BBB at {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("BBB did not answer within {0:?}")]
    Timeout(Duration),
    #[error("BBB answered HTTP {status}")]
    Http { status: u16 },
    #[error("BBB answered FAILED ({message_key}): {message}")]
    Failed {
        message_key: String,
        message: String,
    },
    #[error("BBB answered something that is not a getMeetings answer: {0}")]
    Garbage(String),
}
