//! Pod 3.8.2+'s webinar livestreams (`/rest/meeting_livestream/`: `id`, `meeting`
//! hyperlink to `/rest/meeting_session/<pk>/`, `status`, `event`, `live_gateway_id`;
//! the same fields from 3.8.2 to 4.1, whose `?status=` filter works). Pod sets such a
//! row to 1 before asking `serve` to start and back to 2 only from its own stop thread
//! or page: when we stop a webinar Pod never told to stop (its meeting ended, the room
//! stayed empty), the row is set to 2 here so that Pod's page stops saying "in progress".

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::pages::Row;
use super::rows::{object_with_id, required_int, required_string};
use super::{Payload, PodClient, PodError};
use crate::model::MeetingId;

/// A row of `/rest/meeting_livestream/`, with what closing it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WebinarLivestream {
    id: u64,
    /// The meeting hyperlink (`…/rest/meeting_session/<pk>/`).
    meeting: String,
    status: i64,
}

impl Row for WebinarLivestream {
    fn parse(value: &Value) -> Result<Self, String> {
        object_with_id(value, "meeting livestream", |map, id| {
            Ok(WebinarLivestream {
                id,
                meeting: required_string(map, "meeting")?,
                status: required_int(map, "status")?,
            })
        })
    }
    fn id(&self) -> u64 {
        self.id
    }
}

/// The primary key of a Pod meeting from its BBB meetingID: Pod names its meetings
/// `"%04d-<slug>"` of their id (`pod/meeting/models.py`, `Meeting.save`).
pub fn meeting_pk(meeting_id: &str) -> Option<u64> {
    let (digits, _) = meeting_id.split_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl PodClient {
    /// One cheap authenticated read of the webinar livestreams (`GET
    /// /rest/meeting_livestream/?page=1`): `check` on a webinar-only server.
    pub async fn check_webinar_access(&self) -> Result<(), PodError> {
        let mut url = self.endpoint(&["rest", "meeting_livestream"]);
        url.set_query(Some("page=1"));
        self.page::<WebinarLivestream>(&url).await.map(|_| ())
    }

    /// Sets to 2 ("Live stopped") every webinar livestream Pod shows in progress for
    /// the meeting whose BBB meetingID is `meeting_id`; answers how many were set.
    pub async fn close_webinar_livestreams(
        &self,
        meeting_id: &MeetingId,
    ) -> Result<usize, PodError> {
        let Some(pk) = meeting_pk(meeting_id.as_str()) else {
            return Ok(0);
        };
        let mut url = self.endpoint(&["rest", "meeting_livestream"]);
        url.set_query(Some("status=1"));
        let rows: Vec<WebinarLivestream> = self.list(url).await?;
        let suffix = format!("/meeting_session/{pk}/");
        let mut closed = 0;
        for row in rows
            .iter()
            .filter(|r| r.status == 1 && r.meeting.ends_with(&suffix))
        {
            let url = self.endpoint(&["rest", "meeting_livestream", &row.id.to_string()]);
            let answer = self
                .call(Method::PATCH, &url, Payload::Json(json!({ "status": 2 })))
                .await?;
            self.object(
                Method::PATCH,
                &url,
                &answer,
                StatusCode::OK,
                WebinarLivestream::parse,
            )?;
            closed += 1;
        }
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meeting_pk_is_read_from_pods_meeting_id() {
        assert_eq!(meeting_pk("0002-webinaire-demo"), Some(2));
        assert_eq!(meeting_pk("12345-cours"), Some(12345));
        assert_eq!(meeting_pk("0002"), None);
        assert_eq!(meeting_pk("abc-def"), None);
        assert_eq!(meeting_pk("-x"), None);
    }
}
