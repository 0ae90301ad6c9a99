//! Typed client of Pod's REST API (Django REST Framework): token header, every page
//! of a list, status codes checked, DRF error bodies turned into readable messages.
//! OWNER: helper "pod". Stub to be replaced.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use reqwest::Url;

use crate::config::Secret;
use crate::model::{Broadcaster, Live, LiveId, PodMeeting};

/// What went wrong talking to Pod.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("cannot reach Pod at {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("Pod did not answer {url} within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// HTTP error status; `detail` is the DRF message or field errors, made readable.
    #[error("Pod answered HTTP {status} to {method} {url}: {detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("Pod's answer to {url} does not parse: {reason}")]
    Garbage { url: String, reason: String },
}

impl PodError {
    pub fn status(&self) -> Option<u16> {
        match self {
            PodError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A broadcaster to create (`POST /rest/broadcasters/`).
#[derive(Debug, Clone)]
pub struct NewBroadcaster {
    pub name: String,
    /// `<hls_url><key>.m3u8`, sent as both `url` and `broadcaster_url`.
    pub stream_url: String,
    pub building_id: u64,
    pub is_restricted: bool,
}

/// Outcome of a broadcaster POST.
#[derive(Debug)]
pub enum CreateBroadcaster {
    Created(Broadcaster),
    /// 400 with a uniqueness error on `name` (or `url`/`broadcaster_url`): a broadcaster
    /// already has this name. Recognised by status + field, not by the message text.
    NameTaken,
}

/// The PATCH sent when a live starts.
#[derive(Debug, Clone)]
pub struct StartFields {
    pub server: String,
    pub broadcaster_id: u64,
    pub redis_hostname: String,
    pub redis_port: u16,
    pub redis_channel: String,
}

#[derive(Clone)]
pub struct PodClient {
    _base: Url,
}

impl PodClient {
    pub fn new(base: &Url, token: &Secret, timeout: Duration) -> anyhow::Result<Self> {
        let _ = (token, timeout);
        Ok(PodClient {
            _base: base.clone(),
        })
    }

    /// Every livestream, all pages (Pod 3.1+ ignores `?status=`: the caller filters).
    pub async fn livestreams(&self) -> Result<Vec<Live>, PodError> {
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// One livestream by id; `Ok(None)` on 404.
    pub async fn livestream(&self, id: LiveId) -> Result<Option<Live>, PodError> {
        let _ = id;
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// GET the meeting hyperlink of a livestream.
    pub async fn meeting(&self, url: &str) -> Result<PodMeeting, PodError> {
        let _ = url;
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// PATCH the livestream to status 1 with its server/slot, broadcaster and chat Redis.
    pub async fn mark_live_started(
        &self,
        id: LiveId,
        fields: &StartFields,
    ) -> Result<Live, PodError> {
        let _ = (id, fields);
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// PATCH the livestream to status 2; `end_date` is sent only when given.
    pub async fn mark_live_stopped(
        &self,
        id: LiveId,
        end_date: Option<DateTime<FixedOffset>>,
    ) -> Result<Live, PodError> {
        let _ = (id, end_date);
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// PATCH the livestream back to status 0 (server cleared): undo of an uncertain start.
    pub async fn mark_live_waiting(&self, id: LiveId) -> Result<Live, PodError> {
        let _ = id;
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    pub async fn create_broadcaster(
        &self,
        new: &NewBroadcaster,
    ) -> Result<CreateBroadcaster, PodError> {
        let _ = new;
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// `GET /rest/broadcasters/<slug>/`; `Ok(None)` on 404.
    pub async fn broadcaster(&self, slug: &str) -> Result<Option<Broadcaster>, PodError> {
        let _ = slug;
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// Every broadcaster, all pages.
    pub async fn broadcasters(&self) -> Result<Vec<Broadcaster>, PodError> {
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// PATCH a broadcaster's stream URL (both field names) and restriction.
    pub async fn repoint_broadcaster(
        &self,
        slug: &str,
        stream_url: &str,
        is_restricted: bool,
    ) -> Result<Broadcaster, PodError> {
        let _ = (slug, stream_url, is_restricted);
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// `DELETE /rest/broadcasters/<slug>/`; a 404 is success (already gone).
    pub async fn delete_broadcaster(&self, slug: &str) -> Result<(), PodError> {
        let _ = slug;
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }

    /// PATCH the meeting `{"encoded_by": user_url, "encoding_step": 3}`; returns the meeting.
    pub async fn publish_recording(
        &self,
        meeting_url: &str,
        user_url: &str,
    ) -> Result<PodMeeting, PodError> {
        let _ = (meeting_url, user_url);
        Err(PodError::Garbage {
            url: String::new(),
            reason: "not implemented".into(),
        })
    }
}
