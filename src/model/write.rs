//! Pod writes whose answer could not be read (a cut or garbled body, a timeout after
//! the request was sent, a connection reset): Pod may or may not have done them. Each
//! is kept in the server state until a later tick reads the object back and sees the
//! write's effect, redoing the write until it does. `tick/confirm.rs` does that.
//!
//! Writes a slot's own steps redo are not kept here: a start's "status 1" is read back
//! by the next plan (Pod showing the live running here finishes the start, waiting
//! resumes it), a revert's "status 0" likewise, and a recording's hand-over PATCH is
//! redone by the hand-over until an answer names the file.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::LiveId;

/// What a write asked Pod for, in terms a read can check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PodWrite {
    /// `DELETE /rest/broadcasters/<slug>/`: done once Pod answers 404 for it.
    DeleteBroadcaster { slug: String },
    /// `PATCH /rest/bbb_livestream/<id>/` to status 2: done once Pod shows it closed
    /// (or the row is gone).
    CloseLive { live: LiveId },
    /// `POST /rest/broadcasters/` of a start that failed: if Pod made it, nothing uses
    /// it (the start was undone without knowing its slug); done once no broadcaster of
    /// that name is left unused.
    CreateBroadcaster { name: String },
}

impl std::fmt::Display for PodWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodWrite::DeleteBroadcaster { slug } => write!(f, "deleting broadcaster {slug}"),
            PodWrite::CloseLive { live } => write!(f, "closing live {live}"),
            PodWrite::CreateBroadcaster { name } => {
                write!(f, "creating broadcaster {name:?} (of a failed start)")
            }
        }
    }
}

/// A write not yet seen done in Pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unconfirmed {
    pub write: PodWrite,
    /// When its answer could not be read.
    pub since: DateTime<Utc>,
    /// How many times it was redone since.
    #[serde(default)]
    pub retries: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_reads_as_what_it_asked_for() {
        assert_eq!(
            PodWrite::DeleteBroadcaster { slug: "b".into() }.to_string(),
            "deleting broadcaster b"
        );
        assert_eq!(
            PodWrite::CloseLive { live: 4 }.to_string(),
            "closing live 4"
        );
        let json = serde_json::to_value(PodWrite::CloseLive { live: 4 }).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "close_live", "live": 4}));
    }
}
