//! What a tick reports besides its actions: problems (log, exit code, error mail) and
//! the reasons a waiting live is not started.

use serde::{Deserialize, Serialize};

use super::LiveId;

/// A failure found during a tick, reported in the log, the exit code and the error mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable identity of the failure across ticks, for mail throttling:
    /// e.g. `"bbb:getMeetings"`, `"start:42"`, `"stop:42"`, `"recording:42"`.
    pub key: String,
    pub live: Option<LiveId>,
    /// What failed, with the cause chain (`{:#}` of the error).
    pub what: String,
    /// What the admin can do about it.
    pub advice: String,
    /// The tool gave up on this (e.g. a live closed after 3 failed starts): mailed even
    /// when the same key was mailed less than an hour ago.
    pub gave_up: bool,
}

/// A waiting live this server does not start this tick, and why: what `status` and
/// `--dry-run run` answer to "why doesn't my live start?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub live: LiveId,
    pub reason: WaitReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitReason {
    /// Every slot of this server is busy; its start already failed `failed` of `max` times.
    NoFreeSlot { failed: u32, max: u32 },
    /// BBB does not run its meeting: seen `seen` ticks in a row; closed in Pod at `needed`.
    MeetingNotRunning { seen: u32, needed: u32 },
    /// With `[cluster]`: another server claimed it and starts it (`None`: the claim's
    /// holder is not a server number, e.g. written by hand).
    ClaimedByServer { server: Option<u32> },
    /// With `[cluster]`: live `by` holds the claim on the same BBB session and streams
    /// it (one streamer per session).
    SessionStreamedBy { by: LiveId },
}

impl std::fmt::Display for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "live {} waits: ", self.live)?;
        match self.reason {
            WaitReason::NoFreeSlot { failed: 0, .. } => {
                write!(f, "every slot of this server is busy")
            }
            WaitReason::NoFreeSlot { failed, max } => write!(
                f,
                "every slot of this server is busy (its start failed {failed}/{max} times)"
            ),
            WaitReason::MeetingNotRunning { seen, needed } => write!(
                f,
                "its BBB meeting is not running (seen {seen}/{needed} ticks; closed in Pod at {needed})"
            ),
            WaitReason::ClaimedByServer { server: Some(n) } => write!(
                f,
                "claimed by server {n}, which starts it (a claim of a server that is down \
                 runs out after cluster.claim_ttl_secs)"
            ),
            WaitReason::ClaimedByServer { server: None } => write!(
                f,
                "claimed by another server in the cluster Redis (a claim runs out after \
                 cluster.claim_ttl_secs)"
            ),
            WaitReason::SessionStreamedBy { by } => write!(
                f,
                "live {by} streams the same BBB session (it holds the session's claim in the \
                 cluster Redis: one streamer per session)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wait_reason_reads_as_a_sentence_an_admin_can_act_on() {
        let says = |reason| Waiting { live: 7, reason }.to_string();
        assert_eq!(
            says(WaitReason::NoFreeSlot { failed: 0, max: 3 }),
            "live 7 waits: every slot of this server is busy"
        );
        assert!(says(WaitReason::NoFreeSlot { failed: 2, max: 3 }).ends_with("failed 2/3 times)"));
        assert!(
            says(WaitReason::ClaimedByServer { server: Some(2) })
                .starts_with("live 7 waits: claimed by server 2, which starts it")
        );
        assert!(
            says(WaitReason::ClaimedByServer { server: None })
                .contains("claimed by another server")
        );
        assert!(
            says(WaitReason::SessionStreamedBy { by: 3 })
                .starts_with("live 7 waits: live 3 streams the same BBB session")
        );
    }
}
