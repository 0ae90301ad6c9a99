//! What the server's state file (`<base_dir>/state.json`) holds: what outlives a live
//! (failed starts, the mail throttling memory, counters, the last tick). `slots.rs`
//! reads and writes the file; `mail.rs` decides over the memory.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{LiveId, Unconfirmed, Waiting};

/// Summary of the last `run`, for `status` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickRecord {
    pub at: DateTime<Utc>,
    pub duration_ms: u64,
    pub ok: bool,
    pub problems: usize,
}

/// Running totals since the state file was created (Prometheus counters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub lives_started: u64,
    pub lives_stopped: u64,
    pub recordings_delivered: u64,
    pub errors: u64,
    /// Streamer restarts and `up`s of a vanished container (README, "A live's health").
    #[serde(default)]
    pub streamer_restarts: u64,
    /// Pod writes redone because Pod did not show their effect after an answer that
    /// could not be read.
    #[serde(default)]
    pub pod_write_retries: u64,
}

/// `<base_dir>/state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerState {
    /// Failed start attempts per waiting live (counted per tick, not on a clock).
    #[serde(default)]
    pub start_failures: BTreeMap<LiveId, u32>,
    /// Consecutive ticks that saw a waiting live's meeting not running in BBB.
    #[serde(default)]
    pub stale_seen: BTreeMap<LiveId, u32>,
    #[serde(default)]
    pub mail: MailMemory,
    /// When each skipped row of Pod's list was last reported (once an hour per row).
    #[serde(default)]
    pub skipped_rows: MailMemory,
    #[serde(default)]
    pub last_tick: Option<TickRecord>,
    #[serde(default)]
    pub counters: Counters,
    /// Waiting lives the last tick did not start, and why (shown by `status`).
    #[serde(default)]
    pub waiting: Vec<Waiting>,
    /// Why the last tick could not tell which lives wait (Pod's list was not read):
    /// `status` says so instead of "none".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_unknown: Option<String>,
    /// The last time docker was seen working or not (a tick's calls, or the probe of an
    /// idle tick). Absent in files written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_seen: Option<DockerSeen>,
    /// Pod writes whose answer could not be read, until Pod shows their effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<Unconfirmed>,
}

/// What the last tick that used docker, or probed it, found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerSeen {
    pub at: DateTime<Utc>,
    /// Whether docker worked then (its daemon answered, its compose is usable).
    pub ok: bool,
}

/// When a problem key was first seen and last mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub first_seen: DateTime<Utc>,
    pub last_mailed: DateTime<Utc>,
}

/// The problems mailed recently, by [`Problem::key`]; persisted by the caller as JSON
/// (an object keyed by problem key) between ticks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MailMemory(pub BTreeMap<String, Remembered>);
