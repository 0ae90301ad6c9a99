//! `[recording]`, checked: the programs that join a live's parts and how long one run
//! may take. `recording/join.rs` runs them.

use std::time::Duration;

use super::raw::RawRecording;

/// `[recording]`: the programs that join the parts of a live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingConfig {
    /// ffmpeg: a name looked up in PATH, or a path. When absent, `docker run --rm` of
    /// the streamer image (which has ffmpeg) is used instead.
    pub ffmpeg: String,
    /// ffprobe, the same way.
    pub ffprobe: String,
    /// Limit for one ffmpeg or ffprobe run (`join_timeout_secs`); 0 in the file gives
    /// one second, not "no time at all".
    pub join_timeout: Duration,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RawRecording::default().into()
    }
}

impl From<RawRecording> for RecordingConfig {
    fn from(raw: RawRecording) -> Self {
        RecordingConfig {
            ffmpeg: raw.ffmpeg,
            ffprobe: raw.ffprobe,
            join_timeout: Duration::from_secs(raw.join_timeout_secs.max(1)),
        }
    }
}
