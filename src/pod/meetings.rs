//! Pod's BBB meetings (`/rest/bbb_meeting/<id>/`, reached by a livestream's
//! hyperlink): reading one, and the PATCH that hands a recording over to Pod's
//! encoding, which answers the `internal_meeting_id` the file must be named after.
//! Not here: the recording files (`recording`).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::model::PodMeeting;

use super::errors::is_object_not_found;
use super::rows::{object_with_id, optional_string};
use super::{Payload, PodClient, PodError};

impl PodClient {
    /// GET the meeting hyperlink of a livestream (rebased onto the configured base URL).
    pub async fn meeting(&self, url: &str) -> Result<PodMeeting, PodError> {
        let url = self.rebase_link(url)?;
        let answer = self.call(Method::GET, &url, Payload::Empty).await?;
        self.object(Method::GET, &url, &answer, StatusCode::OK, parse_meeting)
    }

    /// PATCH the meeting `{"encoded_by": user_url, "encoding_step": 3}`; returns the meeting
    /// (the caller reads `internal_meeting_id`), `None` when Pod no longer has it. The meeting URL is rebased; `user_url`
    /// is sent as Pod gave it (DRF ignores a hyperlink's host on input).
    pub async fn publish_recording(
        &self,
        meeting_url: &str,
        user_url: &str,
    ) -> Result<Option<PodMeeting>, PodError> {
        let url = self.rebase_link(meeting_url)?;
        let body = json!({ "encoded_by": user_url, "encoding_step": 3 });
        let answer = self.call(Method::PATCH, &url, Payload::Json(body)).await?;
        // DRF's JSON 404: the meeting row was deleted (Pod's purge, an admin); an HTML
        // 404 (a missing route) stays an error.
        if is_object_not_found(&answer) {
            return Ok(None);
        }
        self.object(Method::PATCH, &url, &answer, StatusCode::OK, parse_meeting)
            .map(Some)
    }
}

/// A `bbb_meeting` object; null (or absent) strings read as empty.
pub(super) fn parse_meeting(value: &Value) -> Result<PodMeeting, String> {
    object_with_id(value, "meeting", |map, id| {
        let text = |key| optional_string(map, key).map(Option::unwrap_or_default);
        Ok(PodMeeting {
            id,
            meeting_id: text("meeting_id")?.into(),
            internal_meeting_id: text("internal_meeting_id")?.into(),
            meeting_name: text("meeting_name")?,
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::pod::test_support::hostile::*;
    use crate::pod::test_support::*;
    use proptest::prelude::*;

    #[tokio::test]
    async fn meetings_read_null_strings_as_empty() {
        let (base, _fake) = serve(|seen, _| match seen.path.as_str() {
            "/rest/bbb_meeting/1/" => Reply::json(200, json!({"id": 1, "meeting_id": "m", "internal_meeting_id": null, "meeting_name": "Cours d'amphi"})),
            _ => Reply::json(200, json!({"id": 2, "meeting_id": 5})),
        })
        .await;
        let pod = client(&base);
        let m = pod.meeting("/rest/bbb_meeting/1/").await.unwrap();
        assert_eq!(
            m,
            PodMeeting {
                id: 1,
                meeting_id: "m".into(),
                internal_meeting_id: "".into(),
                meeting_name: "Cours d'amphi".into(),
            }
        );
        let e = pod.meeting("/rest/bbb_meeting/2/").await.unwrap_err();
        assert_eq!(
            garbage_reason(&e),
            "meeting 2: field \"meeting_id\": expected a string or null, found 5"
        );
        let e = pod.meeting("").await.unwrap_err();
        assert!(matches!(e, PodError::Garbage { .. }));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_meeting_field_of_any_wrong_kind_is_refused_by_name(
            row in arb_meeting_row(),
            field in 0..MEETING_FIELDS.len(),
            value in proptest::option::weighted(0.9, wrong_value()),
        ) {
            check(parse_meeting, "meeting", &row, MEETING_FIELDS[field], value.as_ref())?;
        }
    }
}
