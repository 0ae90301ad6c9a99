//! What the tests of the BBB room share: the fixtures of `tests/fixtures/bbb-xml/`, the
//! secret of the checksum vectors in docs/bbb.md, and readers of the error an answer gave.

use super::BbbError;
use crate::config::Secret;
use crate::model::BbbMeeting;

/// The bytes of a file of `tests/fixtures/bbb-xml/`, built into the test binary.
macro_rules! fixture {
    ($file:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/bbb-xml/",
            $file
        ))
        .as_slice()
    };
}
pub(super) use fixture;

pub(super) const SECRET: &str = "639259d4-9dd8-4b25-bf01-95f9567eaf4b";

pub(super) fn secret() -> Secret {
    Secret::new(SECRET)
}

pub(super) fn meeting(id: &str, internal: &str, running: bool, end_time: u64) -> BbbMeeting {
    BbbMeeting {
        meeting_id: id.into(),
        internal_meeting_id: internal.into(),
        running,
        end_time,
    }
}

/// The reason of a Garbage answer; panics on anything else.
pub(super) fn garbage_reason(result: Result<Vec<BbbMeeting>, BbbError>) -> String {
    match result {
        Err(BbbError::Garbage(reason)) => reason,
        other => panic!("expected Garbage, got {other:?}"),
    }
}

/// The messageKey and message of a Failed answer; panics on anything else.
pub(super) fn failed(result: Result<Vec<BbbMeeting>, BbbError>) -> (String, String) {
    match result {
        Err(BbbError::Failed {
            message_key,
            message,
        }) => (message_key, message),
        other => panic!("expected Failed, got {other:?}"),
    }
}
