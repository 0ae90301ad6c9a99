//! Plain data the tick reasons about and the state files hold: lives as Pod stores
//! them, meetings as BBB reports them (a room's and a session's ids apart), broadcasters, the actions a plan decides, the
//! problems a tick reports, a slot's state (with the streamer's health) and the
//! server's state (with the mail memory). No I/O and no clients here: `plan.rs` decides
//! over these types only, so everything that decides can be tested without a network.
//!
//! The bottom floor of the crate: `model` imports nothing of the crate but itself
//! (`.ci/layers` checks it). What only describes a value (a label, a sentence) sits with
//! its type; behaviour that needs configuration, files or a client stays in the room that
//! owns it (`impl Health` in `health.rs`, the mail throttling in `mail.rs`, the files in
//! `slots.rs`).

mod action;
mod bbb;
mod health;
mod ids;
mod pod;
mod problem;
mod room;
mod server;
mod slot;
mod webinar;
mod write;

pub use action::Action;
pub use bbb::{BbbMeeting, RoomInfo, Sessions};
pub use health::{Fails, Health, PlaylistSeen, Signal};
pub use ids::{InternalMeetingId, MeetingId, ServerNumber};
pub use pod::{Broadcaster, Live, LiveId, LiveStatus, Livestreams, PodMeeting, SkippedRow};
pub use problem::{Problem, ProblemKey, WaitReason, Waiting};
pub use room::{Alone, Company};
pub use server::{Counters, DockerSeen, MailMemory, Remembered, ServerState, TickRecord};
pub use slot::{Phase, SlotState, StopProgress, StopReason};
pub use webinar::{ChatRoute, WEBINAR_MAX_UPS, Webinar, is_webinar_id, webinar_live_id};
pub use write::{PodWrite, Unconfirmed};
