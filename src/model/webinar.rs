//! Pod 3.8.2+'s webinars as `serve` records them in a slot (webinar-api.md).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::LiveId;

/// A Pod 3.8.2+ webinar streamed here through the gateway API (`serve`): Pod's
/// meeting module created the BBB meeting itself and asked for it by its `room`. It
/// occupies a slot like one of Pod's livestreams, but Pod holds no livestream row
/// for it here: no broadcaster, no status PATCH, the RTMP target is Pod's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webinar {
    /// Pod's `room` (the end of the meeting's hashkey): the webinar's identity.
    pub room: String,
    /// The gateway URL's path (`/gw/1`): one live room per path at a time.
    pub gateway_path: String,
    /// `host[:port]` of the Pod that asked (the first segment of its `domain`).
    pub pod_host: String,
    /// The LiveGateway's RTMP URL, where the streamer pushes.
    pub rtmp_dst: String,
    /// Whether the running streamer shows the chat panel (`None` before its `up`).
    #[serde(default)]
    pub chat_shown: Option<bool>,
    /// How viewers' messages reach the meeting, chosen at the `up`.
    #[serde(default)]
    pub chat: Option<ChatRoute>,
    /// The `up` waits until then: Pod's `chat?toggle` right after `start` sets the
    /// panel the streamer starts with instead of costing a restart.
    pub up_after: DateTime<Utc>,
    /// Failed `up`s so far; the webinar is stopped at [`WEBINAR_MAX_UPS`].
    #[serde(default)]
    pub up_failures: u32,
    /// BBB showed the meeting running, at the start or at the last tick.
    #[serde(default)]
    pub meeting_running: bool,
}

/// Failed `up`s of a webinar after which it is stopped and the admins told.
pub const WEBINAR_MAX_UPS: u32 = 3;

/// How a viewer's message reaches the meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRoute {
    /// BBB 3.0's `sendChatMessage` API call.
    Api,
    /// An older BBB: published on the slot's chat Redis, posted by the streamer's chat relay.
    Redis,
}

/// The id under which a webinar appears where a live id is needed (failure counts,
/// problems, mails): the room's SHA-256 folded into 62 bits with bit 62 set, so it
/// never equals a Pod livestream id (a database's auto-increment).
pub fn webinar_live_id(room: &str) -> LiveId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(room.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) & ((1 << 62) - 1)) | (1 << 62)
}

/// Whether `live` is a webinar's id ([`webinar_live_id`]).
pub fn is_webinar_id(live: LiveId) -> bool {
    live >> 62 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webinar_id_is_stable_and_never_a_pod_id() {
        let a = webinar_live_id("3319bf5aed");
        assert_eq!(a, webinar_live_id("3319bf5aed"));
        assert_ne!(a, webinar_live_id("3319bf5aee"));
        assert!(is_webinar_id(a));
        assert!(!is_webinar_id(42));
        assert!(!is_webinar_id(u32::MAX as u64));
    }
}
