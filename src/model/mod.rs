//! Plain data the tick reasons about: lives as Pod stores them, meetings as BBB
//! reports them, broadcasters, the problems a tick reports. No I/O and no clients here:
//! `plan.rs` decides over these types only, so everything that decides can be tested
//! without a network.
//!
//! The bottom floor of the crate: `model` imports nothing of the crate but itself
//! (`.ci/layers` checks it). Behaviour that needs configuration, files or a client lives
//! in the room that owns it, as free functions over these types.

mod bbb;
mod pod;
mod problem;

pub use bbb::{BbbMeeting, RoomInfo, Sessions};
pub use pod::{Broadcaster, Live, LiveId, LiveStatus, Livestreams, PodMeeting, SkippedRow};
pub use problem::{Problem, WaitReason, Waiting};
