//! A live's health as its slot's state file keeps it between ticks: the signals, their
//! counts and the playlist last seen. `health.rs` judges a tick's observation and
//! updates it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One of the three signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// (a) the streamer's container runs.
    Container,
    /// (b) the streamer is among the meeting's attendees.
    Meeting,
    /// (c) its HLS playlist answers.
    Hls,
    /// (d) its HLS playlist moves: a new segment between two ticks far enough apart.
    Frozen,
}

impl Signal {
    /// The `status` label of a live failing this signal.
    pub fn label(self) -> &'static str {
        match self {
            Signal::Container => "no container",
            Signal::Meeting => "not in the meeting",
            Signal::Hls => "no HLS",
            Signal::Frozen => "stream frozen",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Container => "the streamer's container is not running",
            Signal::Meeting => "the streamer is not in the meeting",
            Signal::Hls => "the HLS playlist does not answer (viewers see nothing)",
            Signal::Frozen => {
                "the HLS playlist stopped moving: no new segment (viewers see a still picture)"
            }
        })
    }
}

/// Consecutive failing ticks, per signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fails {
    #[serde(default)]
    pub meeting: u32,
    #[serde(default)]
    pub hls: u32,
    #[serde(default)]
    pub frozen: u32,
}

/// A live's health, kept in its slot's state file between ticks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Checked ticks since the start or the last restart (the start is tick 0).
    #[serde(default)]
    pub ticks: u32,
    /// Restarts (and `up`s of a vanished container) tried for this live.
    #[serde(default)]
    pub restarts: u32,
    #[serde(default)]
    pub fails: Fails,
    /// The signal that failed at the last check, if one did (outside the grace period).
    #[serde(default)]
    pub failing: Option<Signal>,
    /// No more restarts: the admins were told once.
    #[serde(default)]
    pub beyond_repair: bool,
    /// When the last "restarted" mail about this live went out (one an hour at most).
    #[serde(default)]
    pub mailed_at: Option<DateTime<Utc>>,
    /// Where its HLS playlist stood at the last tick that judged it (signal d).
    #[serde(default)]
    pub playlist: Option<PlaylistSeen>,
}

/// A media playlist as a tick saw it, kept to judge the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaylistSeen {
    /// The sequence number just past its newest segment (`Media::position` in `hls.rs`).
    pub position: u64,
    /// Its newest segment's URI.
    #[serde(default)]
    pub newest: Option<String>,
    pub at: DateTime<Utc>,
}
