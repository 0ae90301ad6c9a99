//! Names a live gets outside this tool: its stream key (RTMP and HLS URLs) and its
//! broadcaster name in Pod, and the slug Pod will derive from that name (Django's
//! `slugify`). Pure functions.
//! OWNER: helper "compose". Stub to be replaced.

use crate::model::LiveId;

/// Stream key for a live: `[A-Za-z0-9._~-]+`, from the meeting name, unique per live id.
pub fn stream_key(meeting_name: &str, live: LiveId) -> String {
    format!("bbb-live-{live}-{}", meeting_name.len())
}

/// Django 3.2's `slugify`, as Pod computes a broadcaster's slug.
pub fn django_slugify(s: &str) -> String {
    s.to_owned()
}

/// Broadcaster name `[BBB] <meeting name>`; with `distinct`, made unique with the live id.
/// At most 200 characters, slug not empty-ish and short enough for Pod.
pub fn broadcaster_name(meeting_name: &str, live: LiveId, distinct: bool) -> String {
    let _ = (live, distinct);
    format!("[BBB] {meeting_name}")
}
