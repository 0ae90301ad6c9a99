//! Plain values for the tick's unit tests: a configuration, lives, slot states,
//! meetings and snapshots, built without any I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::Utc;

use super::gather::Snapshot;
use crate::config::{Config, Env};
use crate::model::{BbbMeeting, Live, LiveId, LiveStatus, Phase, PodMeeting, SlotState};
use crate::plan::MeetingsView;

struct NoEnv;

impl Env for NoEnv {
    fn var(&self, _key: &str) -> Option<String> {
        None
    }
}

/// A valid configuration: server `number`, `slots` slots, `end_confirmations` 2.
pub fn config(number: u32, slots: u32) -> Config {
    let text = format!(
        r#"
[server]
hostname = "live1.univ.fr"
number = {number}
count = {number}
slots = {slots}
[bbb]
url = "https://bbb.univ.fr/bigbluebutton/api"
secret = "s3cr3t"
stream_url = "rtmp://live.univ.fr/live/"
[pod]
url = "https://pod.univ.fr"
token = "tok"
hls_url = "https://live.univ.fr/hls/"
"#
    );
    Config::parse(Path::new("/etc/bbb-pod-live/config.toml"), &text, &NoEnv).expect("valid config")
}

pub fn live(id: LiveId, status: LiveStatus, server: Option<&str>) -> Live {
    Live {
        id,
        meeting_url: Some(format!("https://pod/rest/bbb_meeting/{id}/")),
        user_url: Some("https://pod/rest/users/1/".into()),
        status,
        server: server.map(str::to_owned),
        end_date: None,
        broadcaster_id: None,
        is_restricted: false,
        enable_chat: false,
        show_chat: true,
        download_meeting: false,
    }
}

pub fn waiting(id: LiveId) -> Live {
    live(id, LiveStatus::Waiting, None)
}

/// The state of a slot whose live runs, in BBB meeting `meeting`.
pub fn running_state(id: LiveId, meeting: &str) -> SlotState {
    let mut s = SlotState::new(id, Utc::now());
    s.phase = Phase::Running;
    s.meeting_id = Some(meeting.into());
    s
}

pub fn meeting(id: &str, running: bool, end_time: u64) -> BbbMeeting {
    BbbMeeting {
        meeting_id: id.into(),
        internal_meeting_id: format!("{id}-internal").into(),
        running,
        end_time,
    }
}

/// Session `internal` of BBB room `room` (one room may list several sessions).
pub fn session(room: &str, internal: &str, running: bool, end_time: u64) -> BbbMeeting {
    BbbMeeting {
        meeting_id: room.into(),
        internal_meeting_id: internal.into(),
        running,
        end_time,
    }
}

/// The Pod meeting row (pk `pk`) of the session [`meeting`] lists for room `room`.
pub fn pod_meeting(pk: u64, room: &str) -> PodMeeting {
    PodMeeting {
        id: pk,
        meeting_id: room.into(),
        internal_meeting_id: format!("{room}-internal").into(),
        meeting_name: room.into(),
    }
}

/// A snapshot of `lives` and `states`, with BBB's answer `meetings`.
pub(super) fn snapshot(
    lives: Vec<Live>,
    states: BTreeMap<u32, SlotState>,
    meetings: MeetingsView,
) -> Snapshot {
    Snapshot {
        states,
        broken: BTreeSet::new(),
        lives,
        meetings,
        skipped: Vec::new(),
        skipped_ids: BTreeSet::new(),
        prefetched: HashMap::new(),
        presence: Vec::new(),
        company: BTreeMap::new(),
        unread_waiting: BTreeSet::new(),
    }
}
