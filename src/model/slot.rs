//! What a slot's state file (`live-state.json`) holds: which live occupies the slot
//! and how far its start or stop got. `slots.rs` reads and writes the file.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Alone, Broadcaster, Health, InternalMeetingId, LiveId, MeetingId, Webinar};

/// Where a live is in its life in this slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A start is under way; resumed or undone by the next tick if it was interrupted.
    Starting,
    /// Container up and Pod says status 1.
    Running,
    /// A stop is under way; resumed by the next tick until complete.
    Stopping,
    /// A failed start whose "status 1" PATCH may have reached Pod: put the live back
    /// to status 0 before the slot is free again.
    Reverting,
}

/// Why a live is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// BBB reported the meeting ended `end_confirmations` ticks in a row.
    MeetingEnded,
    /// Someone set the live to status 2 in Pod: keep the end date they wrote.
    ClosedInPod,
    /// The livestream no longer exists in Pod.
    RemovedFromPod,
    /// Pod shows the live waiting again or on another server/slot: stop our
    /// container, leave the livestream as it is.
    NoLongerOurs,
    /// An admin ran `bbb-pod-live stop`.
    ByHand,
    /// Pod sent the webinar's `stop` (its Livestream is already at status 2).
    PodAsked,
    /// The webinar's streamer could not be brought up (`WEBINAR_MAX_UPS` failures).
    UpFailed,
    /// Nobody but our own streamer and chat relay was in the meeting for
    /// `alone_ticks` ticks in a row: stopped as if the meeting had ended.
    RoomEmpty,
    /// Its own session is over and its room runs another one (the next class): the
    /// streamer, which waits on the room's meeting id, shows that class. Stopped at
    /// once; its recording is kept for the admin, never delivered under the live's
    /// session.
    OtherSession,
}

impl StopReason {
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::MeetingEnded => "the meeting ended",
            StopReason::ClosedInPod => "the live was closed in Pod",
            StopReason::RemovedFromPod => "the live was deleted from Pod",
            StopReason::NoLongerOurs => "Pod no longer shows the live on this slot",
            StopReason::ByHand => "stopped by hand",
            StopReason::PodAsked => "Pod asked to stop the webinar",
            StopReason::UpFailed => "its streamer could not be started",
            StopReason::RoomEmpty => "its room stayed empty",
            StopReason::OtherSession => "its session ended and its room runs another one",
        }
    }
}

/// Progress of a stop; each flag is set once its step is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopProgress {
    pub reason: StopReason,
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub container_down: bool,
    #[serde(default)]
    pub recordings_parked: bool,
    #[serde(default)]
    pub pod_closed: bool,
    #[serde(default)]
    pub broadcaster_deleted: bool,
}

/// Everything needed to finish or stop the live in a slot, even after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotState {
    pub live: LiveId,
    pub phase: Phase,
    pub since: DateTime<Utc>,
    pub meeting_url: Option<String>,
    pub user_url: Option<String>,
    /// BBB's external meeting id, once read from Pod.
    pub meeting_id: Option<MeetingId>,
    /// The BBB session the live streams: its Pod meeting's `internal_meeting_id`. Absent
    /// in state files of older versions and of lives adopted from bbb-pod-live.php:
    /// learnt from Pod's meeting row at the next tick.
    #[serde(default)]
    pub session: Option<InternalMeetingId>,
    pub meeting_name: Option<String>,
    pub stream_key: Option<String>,
    /// The broadcaster name chosen before the POST, so a retry uses the same one.
    pub broadcaster_name: Option<String>,
    /// The broadcaster Pod created (or we reused), with Pod's id and slug.
    pub broadcaster: Option<Broadcaster>,
    /// Pod's `broadcaster_id` of an adopted live whose slug we never learned.
    #[serde(default)]
    pub broadcaster_id: Option<u64>,
    /// The teacher asked for the recording and recording is enabled.
    pub download: bool,
    /// Consecutive ticks the meeting was seen ended.
    #[serde(default)]
    pub ended_seen: u32,
    /// Who was in the meeting besides our own users, as the last ticks saw it.
    #[serde(default)]
    pub alone: Alone,
    /// Found running in Pod without a state file (e.g. started by bbb-pod-live.php).
    #[serde(default)]
    pub adopted: bool,
    #[serde(default)]
    pub stop: Option<StopProgress>,
    /// The streamer's health, counted in ticks (`health.rs`); fresh in old files.
    #[serde(default)]
    pub health: Health,
    /// Set when the slot streams a webinar of Pod 3.8.2+ (`serve`), not a Pod livestream:
    /// `live` is then [`super::webinar_live_id`] of its room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webinar: Option<Webinar>,
}

impl SlotState {
    pub fn new(live: LiveId, now: DateTime<Utc>) -> SlotState {
        SlotState {
            live,
            phase: Phase::Starting,
            since: now,
            meeting_url: None,
            user_url: None,
            meeting_id: None,
            session: None,
            meeting_name: None,
            stream_key: None,
            broadcaster_name: None,
            broadcaster: None,
            broadcaster_id: None,
            download: false,
            ended_seen: 0,
            alone: Alone::default(),
            adopted: false,
            stop: None,
            health: Default::default(),
            webinar: None,
        }
    }
}
