//! The actions a tick's plan decides (`plan.rs`) and `tick/` carries out, and the line
//! each one is in a `--dry-run` plan.

use std::fmt;

use super::{LiveId, StopReason};

/// One thing the tick will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start a waiting live in a free slot.
    Start { slot: u32, live: LiveId },
    /// Go on with a start that a crash interrupted (the live still waits in Pod).
    ResumeStart { slot: u32, live: LiveId },
    /// Pod already shows the live running in this slot: the start completed.
    FinishStart { slot: u32, live: LiveId },
    /// The live stopped waiting while its start was interrupted: undo the start.
    AbandonStart { slot: u32, live: LiveId },
    /// Put a live whose start failed back to status 0 in Pod.
    Revert { slot: u32, live: LiveId },
    /// Pod shows a live running in this slot but we have no state for it (a live
    /// started by bbb-pod-live.php, or a lost state file): take it over.
    Adopt { slot: u32, live: LiveId },
    /// The meeting was seen ended; not yet enough times in a row to stop.
    SeenEnded {
        slot: u32,
        live: LiveId,
        seen: u32,
        needed: u32,
    },
    /// The meeting runs again after having been seen ended: the count restarts.
    SeenRunning { slot: u32, live: LiveId },
    /// Nobody but our own users in the room; not yet enough ticks in a row to stop.
    SeenAlone {
        slot: u32,
        live: LiveId,
        seen: u32,
        needed: u32,
    },
    /// Someone else is in the room: the count of empty ticks (`was`) restarts, and the
    /// session has begun (`was` 0: only that).
    SeenCompany { slot: u32, live: LiveId, was: u32 },
    Stop {
        slot: u32,
        live: LiveId,
        reason: StopReason,
    },
    /// Go on with a stop that could not finish.
    ResumeStop { slot: u32, live: LiveId },
    /// Too many failed starts: close the live in Pod and tell the admins.
    GiveUp { live: LiveId, attempts: u32 },
    /// A waiting live whose meeting is not running in BBB (seen `seen` ticks in a row,
    /// fewer than needed): not started, counted.
    SeenStale { live: LiveId, seen: u32 },
    /// A waiting live whose meeting has not been running for `seen` ticks in a row: a
    /// request nobody can serve any more (e.g. left at status 0 by the PHP script):
    /// closed in Pod, never started.
    CloseStale { live: LiveId, seen: u32 },
    /// A waiting live for a session that `kept` streams or will stream (a double
    /// request: two moderators, a double click): closed in Pod, never started.
    CloseDuplicate { live: LiveId, kept: LiveId },
}

impl Action {
    /// The slot the action works in, if any: actions on different slots are independent.
    pub fn slot(&self) -> Option<u32> {
        match *self {
            Action::Start { slot, .. }
            | Action::ResumeStart { slot, .. }
            | Action::FinishStart { slot, .. }
            | Action::AbandonStart { slot, .. }
            | Action::Revert { slot, .. }
            | Action::Adopt { slot, .. }
            | Action::SeenEnded { slot, .. }
            | Action::SeenRunning { slot, .. }
            | Action::SeenAlone { slot, .. }
            | Action::SeenCompany { slot, .. }
            | Action::Stop { slot, .. }
            | Action::ResumeStop { slot, .. } => Some(slot),
            Action::GiveUp { .. }
            | Action::SeenStale { .. }
            | Action::CloseStale { .. }
            | Action::CloseDuplicate { .. } => None,
        }
    }
}

impl fmt::Display for Action {
    /// One line of the `--dry-run` plan.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Start { slot, live } => write!(f, "start live {live} in slot {slot}"),
            Action::ResumeStart { slot, live } => {
                write!(
                    f,
                    "resume the interrupted start of live {live} in slot {slot}"
                )
            }
            Action::FinishStart { slot, live } => {
                write!(
                    f,
                    "record live {live} as running in slot {slot} (Pod already says so)"
                )
            }
            Action::AbandonStart { slot, live } => {
                write!(
                    f,
                    "undo the interrupted start of live {live} in slot {slot} (it no longer waits in Pod)"
                )
            }
            Action::Revert { slot, live } => {
                write!(
                    f,
                    "set live {live} back to waiting in Pod and free slot {slot}"
                )
            }
            Action::Adopt { slot, live } => {
                write!(
                    f,
                    "take over live {live}, running in slot {slot} without a state file"
                )
            }
            Action::SeenEnded {
                slot,
                live,
                seen,
                needed,
            } => {
                write!(
                    f,
                    "note live {live} (slot {slot}): meeting seen ended ({seen}/{needed})"
                )
            }
            Action::SeenRunning { slot, live } => {
                write!(f, "note live {live} (slot {slot}): meeting running again")
            }
            Action::SeenAlone {
                slot,
                live,
                seen,
                needed,
            } => write!(
                f,
                "note live {live} (slot {slot}): nobody in the meeting but bbb-pod-live's own users ({seen}/{needed})"
            ),
            Action::SeenCompany { slot, live, was } => write!(
                f,
                "note live {live} (slot {slot}): someone is in the meeting again (empty for {was} tick(s))"
            ),
            Action::Stop { slot, live, reason } => {
                write!(f, "stop live {live} in slot {slot}: {}", reason.describe())
            }
            Action::ResumeStop { slot, live } => {
                write!(f, "finish stopping live {live} in slot {slot}")
            }
            Action::GiveUp { live, attempts } => {
                write!(
                    f,
                    "close live {live} in Pod: its start failed {attempts} times"
                )
            }
            Action::SeenStale { live, seen } => write!(
                f,
                "leave live {live} waiting: its meeting is not running in BBB ({seen} tick(s) in a row)"
            ),
            Action::CloseStale { live, seen } => write!(
                f,
                "close live {live} in Pod without starting it: its meeting has not been running in BBB for {seen} ticks"
            ),
            Action::CloseDuplicate { live, kept } => write!(
                f,
                "close live {live} in Pod without starting it: live {kept} streams the same BBB session"
            ),
        }
    }
}
