//! The configuration file as written: TOML structs that refuse unknown keys, with
//! the documented defaults. Only [`super::validate`] reads them.

use serde::Deserialize;

/// The sendmail program by default (`mail.sendmail`): an absolute path, since cron's
/// `PATH` (`/usr/bin:/bin`) lacks `/usr/sbin`.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";
/// The address `serve` listens on by default: loopback, behind the site's proxy.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) server: RawServer,
    pub(super) bbb: RawBbb,
    pub(super) pod: RawPod,
    #[serde(default)]
    pub(super) mail: RawMail,
    #[serde(default)]
    pub(super) docker: RawDocker,
    pub(super) cluster: Option<RawCluster>,
    pub(super) metrics: Option<RawMetrics>,
    pub(super) gateway: Option<RawGateway>,
    #[serde(default)]
    pub(super) health: RawHealth,
    #[serde(default)]
    pub(super) recording: RawRecording,
    #[serde(default)]
    pub(super) webinar: RawWebinar,
}

/// `[webinar]`: how the webinars of `serve` are streamed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebinar {
    #[serde(default)]
    pub(super) record: bool,
    #[serde(default = "default_webinar_hold")]
    pub(super) hold_secs: i64,
}

impl Default for RawWebinar {
    fn default() -> Self {
        RawWebinar {
            record: false,
            hold_secs: default_webinar_hold(),
        }
    }
}

pub(super) fn default_webinar_hold() -> i64 {
    5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) hostname: Option<String>,
    #[serde(default = "one")]
    pub(super) number: i64,
    #[serde(default = "one")]
    pub(super) count: i64,
    #[serde(default = "one")]
    pub(super) slots: i64,
    #[serde(default = "default_base_dir")]
    pub(super) base_dir: String,
    #[serde(default = "default_log_dir")]
    pub(super) log_dir: String,
    #[serde(default)]
    pub(super) debug: bool,
    #[serde(default = "default_timezone")]
    pub(super) timezone: String,
    #[serde(default = "default_redis_bind")]
    pub(super) redis_bind: String,
    pub(super) template: Option<String>,
    #[serde(default = "default_log_retention_days")]
    pub(super) log_retention_days: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBbb {
    pub(super) url: Option<String>,
    pub(super) secret: Option<String>,
    #[serde(default = "default_checksum")]
    pub(super) checksum: String,
    #[serde(default)]
    pub(super) attendee_password: String,
    #[serde(default)]
    pub(super) moderator_password: String,
    #[serde(default = "default_resolution")]
    pub(super) resolution: String,
    #[serde(default = "default_bitrate")]
    pub(super) video_bitrate: i64,
    #[serde(default)]
    pub(super) threads: i64,
    pub(super) stream_url: Option<String>,
    #[serde(default = "default_end_confirmations")]
    pub(super) end_confirmations: i64,
    #[serde(default = "default_alone_ticks")]
    pub(super) alone_ticks: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPod {
    pub(super) url: Option<String>,
    pub(super) token: Option<String>,
    pub(super) hls_url: Option<String>,
    #[serde(default = "one")]
    pub(super) building_id: i64,
    #[serde(default)]
    pub(super) recordings_dir: String,
    #[serde(default = "default_timeout")]
    pub(super) timeout_secs: i64,
    #[serde(default = "default_pod_max_concurrency")]
    pub(super) max_concurrency: i64,
    #[serde(default = "default_true")]
    pub(super) livestreams: bool,
}

pub(super) fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMail {
    #[serde(default)]
    pub(super) admins: Vec<String>,
    pub(super) from: Option<String>,
    #[serde(default = "default_transport")]
    pub(super) transport: String,
    #[serde(default = "default_smtp_host")]
    pub(super) smtp_host: String,
    #[serde(default = "default_smtp_port")]
    pub(super) smtp_port: i64,
    #[serde(default)]
    pub(super) smtp_user: String,
    #[serde(default)]
    pub(super) smtp_password: String,
    #[serde(default = "default_smtp_tls")]
    pub(super) smtp_tls: String,
    #[serde(default = "default_timeout")]
    pub(super) timeout_secs: i64,
    #[serde(default = "default_sendmail")]
    pub(super) sendmail: String,
}

impl Default for RawMail {
    fn default() -> Self {
        RawMail {
            admins: Vec::new(),
            from: None,
            transport: default_transport(),
            smtp_host: default_smtp_host(),
            smtp_port: default_smtp_port(),
            smtp_user: String::new(),
            smtp_password: String::new(),
            smtp_tls: default_smtp_tls(),
            timeout_secs: default_timeout(),
            sendmail: default_sendmail(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocker {
    #[serde(default = "default_docker_command")]
    pub(super) command: Vec<String>,
    #[serde(default = "default_docker_timeout")]
    pub(super) timeout_secs: i64,
    #[serde(default = "default_stop_grace")]
    pub(super) stop_grace_secs: i64,
}

impl Default for RawDocker {
    fn default() -> Self {
        RawDocker {
            command: default_docker_command(),
            timeout_secs: default_docker_timeout(),
            stop_grace_secs: default_stop_grace(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub(super) redis_url: String,
    #[serde(default = "default_claim_ttl")]
    pub(super) claim_ttl_secs: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) textfile: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGateway {
    #[serde(default = "default_listen")]
    pub(super) listen: String,
    pub(super) token: Option<String>,
    pub(super) tls_cert: Option<String>,
    pub(super) tls_key: Option<String>,
}

pub(super) fn default_listen() -> String {
    DEFAULT_LISTEN.into()
}

/// `[health]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    #[serde(default = "yes")]
    pub(super) hls: bool,
    #[serde(default = "default_grace_ticks")]
    pub(super) grace_ticks: i64,
    #[serde(default = "default_fail_ticks")]
    pub(super) fail_ticks: i64,
    #[serde(default = "default_max_restarts")]
    pub(super) max_restarts: i64,
}

impl Default for RawHealth {
    fn default() -> Self {
        RawHealth {
            enabled: true,
            hls: true,
            grace_ticks: default_grace_ticks(),
            fail_ticks: default_fail_ticks(),
            max_restarts: default_max_restarts(),
        }
    }
}

pub(super) fn yes() -> bool {
    true
}
pub(super) fn default_grace_ticks() -> i64 {
    3
}
pub(super) fn default_fail_ticks() -> i64 {
    2
}
pub(super) fn default_max_restarts() -> i64 {
    3
}

/// `[recording]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRecording {
    pub(super) ffmpeg: String,
    pub(super) ffprobe: String,
    pub(super) join_timeout_secs: u64,
}

impl Default for RawRecording {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            join_timeout_secs: 1800,
        }
    }
}

pub(super) fn one() -> i64 {
    1
}
pub(super) fn default_base_dir() -> String {
    "/var/lib/bbb-pod-live".into()
}
pub(super) fn default_log_dir() -> String {
    "/var/log/bbb-pod-live".into()
}
pub(super) fn default_timezone() -> String {
    "Europe/Paris".into()
}
pub(super) fn default_redis_bind() -> String {
    "0.0.0.0".into()
}
pub(super) fn default_log_retention_days() -> i64 {
    30
}
pub(super) fn default_checksum() -> String {
    "sha1".into()
}
pub(super) fn default_resolution() -> String {
    "1280x720".into()
}
pub(super) fn default_bitrate() -> i64 {
    3000
}
pub(super) fn default_end_confirmations() -> i64 {
    2
}
pub(super) fn default_alone_ticks() -> i64 {
    10
}
pub(super) fn default_timeout() -> i64 {
    20
}
/// Pod's list pages in flight at once (a few gunicorn/uwsgi workers serve Pod).
pub(super) fn default_pod_max_concurrency() -> i64 {
    16
}
pub(super) fn default_transport() -> String {
    "smtp".into()
}
pub(super) fn default_smtp_host() -> String {
    "localhost".into()
}
pub(super) fn default_smtp_port() -> i64 {
    25
}
pub(super) fn default_sendmail() -> String {
    DEFAULT_SENDMAIL.into()
}
pub(super) fn default_smtp_tls() -> String {
    "none".into()
}
pub(super) fn default_docker_command() -> Vec<String> {
    vec!["docker".into(), "compose".into()]
}
pub(super) fn default_docker_timeout() -> i64 {
    600
}
pub(super) fn default_stop_grace() -> i64 {
    15
}
pub(super) fn default_claim_ttl() -> i64 {
    300
}
