//! The configuration file: raw TOML structs (unknown keys refused), then one
//! [`Config::load`] that applies the environment overrides for secrets, checks every
//! value and converts it to its type. Nothing downstream sees a raw string where a
//! URL, a path or a duration is meant. Every error names the file and the key.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Url;
use serde::Deserialize;

/// Environment variables that override the secrets of the file.
pub const ENV_BBB_SECRET: &str = "BBB_POD_LIVE_BBB_SECRET";
pub const ENV_POD_TOKEN: &str = "BBB_POD_LIVE_POD_TOKEN";
pub const ENV_SMTP_PASSWORD: &str = "BBB_POD_LIVE_SMTP_PASSWORD";

/// A secret string: never printed by `Debug` or `Display`, so it cannot slip into a log.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The clear value, for the one place that must send it (HTTP header, compose file, SMTP).
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// ---------------------------------------------------------------------------
// Raw file format
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    bbb: RawBbb,
    pod: RawPod,
    #[serde(default)]
    mail: RawMail,
    #[serde(default)]
    docker: RawDocker,
    cluster: Option<RawCluster>,
    metrics: Option<RawMetrics>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    hostname: Option<String>,
    #[serde(default = "one")]
    number: i64,
    #[serde(default = "one")]
    count: i64,
    #[serde(default = "one")]
    slots: i64,
    #[serde(default = "default_base_dir")]
    base_dir: String,
    #[serde(default = "default_log_dir")]
    log_dir: String,
    #[serde(default)]
    debug: bool,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default = "default_redis_bind")]
    redis_bind: String,
    template: Option<String>,
    #[serde(default = "default_log_retention_days")]
    log_retention_days: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBbb {
    url: Option<String>,
    secret: Option<String>,
    #[serde(default = "default_checksum")]
    checksum: String,
    #[serde(default)]
    attendee_password: String,
    #[serde(default)]
    moderator_password: String,
    #[serde(default = "default_resolution")]
    resolution: String,
    #[serde(default = "default_bitrate")]
    video_bitrate: i64,
    #[serde(default)]
    threads: i64,
    stream_url: Option<String>,
    #[serde(default = "default_end_confirmations")]
    end_confirmations: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPod {
    url: Option<String>,
    token: Option<String>,
    hls_url: Option<String>,
    #[serde(default = "one")]
    building_id: i64,
    #[serde(default)]
    recordings_dir: String,
    #[serde(default = "default_timeout")]
    timeout_secs: i64,
    #[serde(default = "default_pod_max_concurrency")]
    max_concurrency: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    #[serde(default)]
    admins: Vec<String>,
    from: Option<String>,
    #[serde(default = "default_transport")]
    transport: String,
    #[serde(default = "default_smtp_host")]
    smtp_host: String,
    #[serde(default = "default_smtp_port")]
    smtp_port: i64,
    #[serde(default)]
    smtp_user: String,
    #[serde(default)]
    smtp_password: String,
    #[serde(default = "default_smtp_tls")]
    smtp_tls: String,
    #[serde(default = "default_timeout")]
    timeout_secs: i64,
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
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocker {
    #[serde(default = "default_docker_command")]
    command: Vec<String>,
    #[serde(default = "default_docker_timeout")]
    timeout_secs: i64,
    #[serde(default = "default_stop_grace")]
    stop_grace_secs: i64,
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
struct RawCluster {
    redis_url: String,
    #[serde(default = "default_claim_ttl")]
    claim_ttl_secs: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    textfile: String,
}

fn one() -> i64 {
    1
}
fn default_base_dir() -> String {
    "/var/lib/bbb-pod-live".into()
}
fn default_log_dir() -> String {
    "/var/log/bbb-pod-live".into()
}
fn default_timezone() -> String {
    "Europe/Paris".into()
}
fn default_redis_bind() -> String {
    "0.0.0.0".into()
}
fn default_log_retention_days() -> i64 {
    30
}
fn default_checksum() -> String {
    "sha1".into()
}
fn default_resolution() -> String {
    "1280x720".into()
}
fn default_bitrate() -> i64 {
    3000
}
fn default_end_confirmations() -> i64 {
    2
}
fn default_timeout() -> i64 {
    20
}
/// Pod's list pages in flight at once (a few gunicorn/uwsgi workers serve Pod).
fn default_pod_max_concurrency() -> i64 {
    16
}
fn default_transport() -> String {
    "smtp".into()
}
fn default_smtp_host() -> String {
    "localhost".into()
}
fn default_smtp_port() -> i64 {
    25
}
fn default_smtp_tls() -> String {
    "none".into()
}
fn default_docker_command() -> Vec<String> {
    vec!["docker".into(), "compose".into()]
}
fn default_docker_timeout() -> i64 {
    600
}
fn default_stop_grace() -> i64 {
    15
}
fn default_claim_ttl() -> i64 {
    300
}

// ---------------------------------------------------------------------------
// Validated configuration
// ---------------------------------------------------------------------------

/// How BBB checksums are computed (`bbb.checksum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTransport {
    Smtp,
    Sendmail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from, for messages.
    pub path: PathBuf,
    pub server: ServerConfig,
    pub bbb: BbbConfig,
    pub pod: PodConfig,
    pub mail: MailConfig,
    pub docker: DockerConfig,
    pub cluster: Option<ClusterConfig>,
    pub metrics: Option<MetricsConfig>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub hostname: String,
    pub number: u32,
    pub count: u32,
    pub slots: u32,
    pub base_dir: PathBuf,
    pub log_dir: PathBuf,
    pub debug: bool,
    pub timezone: String,
    pub redis_bind: IpAddr,
    /// The compose template's text: the built-in one, or `server.template` read at load.
    pub template: String,
    pub template_path: Option<PathBuf>,
    pub log_retention_days: u32,
}

#[derive(Debug, Clone)]
pub struct BbbConfig {
    /// API base, always ending with `/` so that `join("getMeetings")` works.
    pub url: Url,
    pub secret: Secret,
    pub checksum: ChecksumAlgorithm,
    pub attendee_password: Secret,
    pub moderator_password: Secret,
    pub resolution: String,
    pub video_bitrate: u32,
    pub threads: u32,
    pub stream_url: String,
    pub end_confirmations: u32,
}

#[derive(Debug, Clone)]
pub struct PodConfig {
    /// Pod's base URL, ending with `/`.
    pub url: Url,
    pub token: Secret,
    pub hls_url: String,
    pub building_id: u64,
    /// `None` when `recordings_dir = ""`: recording disabled.
    pub recordings_dir: Option<PathBuf>,
    pub timeout: Duration,
    /// Most list pages asked of Pod at once.
    pub max_concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub admins: Vec<lettre::message::Mailbox>,
    pub from: lettre::message::Mailbox,
    pub transport: MailTransport,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_user: String,
    pub smtp_password: Secret,
    pub smtp_tls: SmtpTls,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Program and leading arguments, e.g. `["docker", "compose"]`.
    pub command: Vec<String>,
    pub timeout: Duration,
    pub stop_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis_url: Secret,
    pub claim_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub textfile: PathBuf,
}

/// The compose template compiled into the binary (`templates/docker-compose.yml`).
pub const BUILTIN_TEMPLATE: &str = include_str!("../templates/docker-compose.yml");

/// Where the environment is read from; tests pass their own.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Config {
    /// Reads, checks and converts the configuration file at `path`.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading configuration file {}", path.display()))?;
        Self::parse(path, &text, env)
    }

    /// Like [`Config::load`] on text already read; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str, env: &dyn Env) -> Result<Config> {
        let file = path.display().to_string();
        // serde_path_to_error names the key whose value did not fit (`server.slots`),
        // which toml's own message only shows as a line of the file.
        let raw: RawConfig = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = e.into_inner().to_string();
                if path.is_empty() || path == "." {
                    anyhow!("{}", msg.trim_end())
                } else {
                    anyhow!("key `{path}`: {}", msg.trim_end())
                }
            })
            .with_context(|| format!("configuration file {file}"))?;
        let v = Validator { file };
        v.convert(raw, path, env)
    }
}

struct Validator {
    file: String,
}

impl Validator {
    fn err(&self, key: &str, msg: impl fmt::Display) -> anyhow::Error {
        anyhow!("configuration file {}: key `{key}`: {msg}", self.file)
    }

    fn required(&self, key: &str, value: Option<String>) -> Result<String> {
        match value {
            Some(v) if !v.trim().is_empty() => Ok(v),
            Some(_) => Err(self.err(key, "must not be empty")),
            None => Err(self.err(key, "is required but missing")),
        }
    }

    fn range(&self, key: &str, value: i64, min: i64, max: i64) -> Result<i64> {
        if value < min || value > max {
            return Err(self.err(key, format!("{value} is out of range {min}..={max}")));
        }
        Ok(value)
    }

    fn http_url(&self, key: &str, value: &str) -> Result<Url> {
        let mut url = Url::parse(value.trim())
            .map_err(|e| self.err(key, format!("{value:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(self.err(key, format!("{value:?} must be an http:// or https:// URL")));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    fn absolute_dir(&self, key: &str, value: &str) -> Result<PathBuf> {
        let p = PathBuf::from(value);
        if !p.is_absolute() {
            return Err(self.err(key, format!("{value:?} must be an absolute path")));
        }
        Ok(p)
    }

    fn secs(&self, key: &str, value: i64, min: i64, max: i64) -> Result<Duration> {
        Ok(Duration::from_secs(self.range(key, value, min, max)? as u64))
    }

    fn mailbox(&self, key: &str, value: &str) -> Result<lettre::message::Mailbox> {
        value
            .parse()
            .map_err(|e| self.err(key, format!("{value:?} is not a mail address: {e}")))
    }

    fn convert(&self, raw: RawConfig, path: &Path, env: &dyn Env) -> Result<Config> {
        let server = self.server(raw.server)?;
        let bbb = self.bbb(raw.bbb, env)?;
        let pod = self.pod(raw.pod, env)?;
        let mail = self.mail(raw.mail, &server.hostname, env)?;
        let docker = self.docker(raw.docker)?;
        let cluster = raw.cluster.map(|c| self.cluster(c)).transpose()?;
        let metrics = match raw.metrics {
            None => None,
            Some(m) => Some(MetricsConfig {
                textfile: self.absolute_dir("metrics.textfile", &m.textfile)?,
            }),
        };
        Ok(Config {
            path: path.to_owned(),
            server,
            bbb,
            pod,
            mail,
            docker,
            cluster,
            metrics,
        })
    }

    /// `[server]`.
    fn server(&self, s: RawServer) -> Result<ServerConfig> {
        let hostname = self.required("server.hostname", s.hostname)?;
        if hostname
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        {
            return Err(self.err(
                "server.hostname",
                format!("{hostname:?} is not a host name"),
            ));
        }
        if hostname.len() > 200 {
            return Err(self.err("server.hostname", "is longer than Pod's 200 characters"));
        }
        let count = self.range("server.count", s.count, 1, 60)? as u32;
        let number = self
            .range("server.number", s.number, 1, count as i64)
            .map_err(|_| {
                self.err(
                    "server.number",
                    format!("{} must be between 1 and server.count ({count})", s.number),
                )
            })? as u32;
        // 6378 + slot must stay a port; 100 lives on one host is already far beyond a streamer's CPU.
        let slots = self.range("server.slots", s.slots, 1, 100)? as u32;
        let base_dir = self.absolute_dir("server.base_dir", &s.base_dir)?;
        let log_dir = self.absolute_dir("server.log_dir", &s.log_dir)?;
        let timezone = s.timezone.trim().to_owned();
        if timezone.is_empty()
            || !timezone
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        {
            return Err(self.err(
                "server.timezone",
                format!("{timezone:?} is not a time zone name such as \"Europe/Paris\""),
            ));
        }
        let redis_bind: IpAddr = s.redis_bind.trim().parse().map_err(|_| {
            self.err(
                "server.redis_bind",
                format!("{:?} is not an IP address", s.redis_bind),
            )
        })?;
        let (template, template_path) = match s.template {
            None => (BUILTIN_TEMPLATE.to_owned(), None),
            Some(t) => {
                let p = self.absolute_dir("server.template", &t)?;
                let text = std::fs::read_to_string(&p).map_err(|e| {
                    self.err(
                        "server.template",
                        format!("cannot read {}: {e}", p.display()),
                    )
                })?;
                crate::compose::check_template(&text)
                    .map_err(|e| self.err("server.template", format!("{}: {e:#}", p.display())))?;
                (text, Some(p))
            }
        };
        let log_retention_days =
            self.range("server.log_retention_days", s.log_retention_days, 0, 3650)? as u32;
        Ok(ServerConfig {
            hostname,
            number,
            count,
            slots,
            base_dir,
            log_dir,
            debug: s.debug,
            timezone,
            redis_bind,
            template,
            template_path,
            log_retention_days,
        })
    }

    /// `[bbb]`; the secret from the environment first.
    fn bbb(&self, b: RawBbb, env: &dyn Env) -> Result<BbbConfig> {
        let bbb_url = self.http_url("bbb.url", &self.required("bbb.url", b.url)?)?;
        let bbb_secret = self.required("bbb.secret", env.var(ENV_BBB_SECRET).or(b.secret))?;
        // The streamer passes these to a shell unquoted; white space would split them.
        for (key, value) in [
            ("bbb.secret", &bbb_secret),
            ("bbb.attendee_password", &b.attendee_password),
            ("bbb.moderator_password", &b.moderator_password),
        ] {
            if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(self.err(key, "must not contain white space or control characters"));
            }
        }
        let checksum = match b.checksum.trim().to_ascii_lowercase().as_str() {
            "sha1" => ChecksumAlgorithm::Sha1,
            "sha256" => ChecksumAlgorithm::Sha256,
            "sha384" => ChecksumAlgorithm::Sha384,
            "sha512" => ChecksumAlgorithm::Sha512,
            other => {
                return Err(self.err(
                    "bbb.checksum",
                    format!("{other:?} is not one of sha1, sha256, sha384, sha512"),
                ));
            }
        };
        let resolution = b.resolution.trim().to_owned();
        let valid_resolution = resolution.split_once('x').is_some_and(|(w, h)| {
            [w, h]
                .iter()
                .all(|n| !n.is_empty() && n.len() <= 5 && n.bytes().all(|c| c.is_ascii_digit()))
        });
        if !valid_resolution {
            return Err(self.err(
                "bbb.resolution",
                format!("{resolution:?} must look like 1280x720"),
            ));
        }
        let video_bitrate = self.range("bbb.video_bitrate", b.video_bitrate, 1, 1_000_000)? as u32;
        let threads = self.range("bbb.threads", b.threads, 0, 1024)? as u32;
        let stream_url = self
            .required("bbb.stream_url", b.stream_url)?
            .trim()
            .to_owned();
        match Url::parse(&stream_url) {
            Ok(u) if u.host_str().is_some() && !u.cannot_be_a_base() => {}
            _ => {
                return Err(self.err(
                    "bbb.stream_url",
                    format!("{stream_url:?} is not a URL such as rtmp://live.univ.fr/live/"),
                ));
            }
        }
        let end_confirmations =
            self.range("bbb.end_confirmations", b.end_confirmations, 1, 60)? as u32;
        Ok(BbbConfig {
            url: bbb_url,
            secret: Secret::new(bbb_secret),
            checksum,
            attendee_password: Secret::new(b.attendee_password),
            moderator_password: Secret::new(b.moderator_password),
            resolution,
            video_bitrate,
            threads,
            stream_url,
            end_confirmations,
        })
    }

    /// `[pod]`; the token from the environment first.
    fn pod(&self, p: RawPod, env: &dyn Env) -> Result<PodConfig> {
        let pod_url = self.http_url("pod.url", &self.required("pod.url", p.url)?)?;
        let token = self.required("pod.token", env.var(ENV_POD_TOKEN).or(p.token))?;
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(self.err(
                "pod.token",
                "contains white space (copy the token key alone)",
            ));
        }
        let hls_url = self.required("pod.hls_url", p.hls_url)?.trim().to_owned();
        self.http_url("pod.hls_url", &hls_url)?;
        let building_id = self.range("pod.building_id", p.building_id, 1, i64::MAX)? as u64;
        let recordings_dir = match p.recordings_dir.trim() {
            "" => None,
            d => Some(self.absolute_dir("pod.recordings_dir", d)?),
        };
        let timeout = self.secs("pod.timeout_secs", p.timeout_secs, 1, 3600)?;
        let max_concurrency =
            self.range("pod.max_concurrency", p.max_concurrency, 1, 256)? as usize;
        Ok(PodConfig {
            url: pod_url,
            token: Secret::new(token),
            hls_url,
            building_id,
            recordings_dir,
            timeout,
            max_concurrency,
        })
    }

    /// `[mail]`; the SMTP password from the environment first.
    fn mail(&self, m: RawMail, hostname: &str, env: &dyn Env) -> Result<MailConfig> {
        let admins = m
            .admins
            .iter()
            .map(|a| self.mailbox("mail.admins", a))
            .collect::<Result<Vec<_>>>()?;
        let from = match m.from {
            Some(f) => self.mailbox("mail.from", &f)?,
            None => self.mailbox("mail.from", &format!("bbb-pod-live@{hostname}"))?,
        };
        let transport = match m.transport.trim() {
            "smtp" => MailTransport::Smtp,
            "sendmail" => MailTransport::Sendmail,
            other => {
                return Err(self.err(
                    "mail.transport",
                    format!("{other:?} is not one of smtp, sendmail"),
                ));
            }
        };
        let smtp_port = self.range("mail.smtp_port", m.smtp_port, 1, 65535)? as u16;
        let smtp_tls = match m.smtp_tls.trim() {
            "none" => SmtpTls::None,
            "starttls" => SmtpTls::StartTls,
            "tls" => SmtpTls::Tls,
            other => {
                return Err(self.err(
                    "mail.smtp_tls",
                    format!("{other:?} is not one of none, starttls, tls"),
                ));
            }
        };
        let smtp_password = Secret::new(env.var(ENV_SMTP_PASSWORD).unwrap_or(m.smtp_password));
        if transport == MailTransport::Smtp && m.smtp_host.trim().is_empty() {
            return Err(self.err(
                "mail.smtp_host",
                "must not be empty with transport \"smtp\"",
            ));
        }
        let timeout = self.secs("mail.timeout_secs", m.timeout_secs, 1, 3600)?;
        Ok(MailConfig {
            admins,
            from,
            transport,
            smtp_host: m.smtp_host.trim().to_owned(),
            smtp_port,
            smtp_user: m.smtp_user,
            smtp_password,
            smtp_tls,
            timeout,
        })
    }

    /// `[docker]`.
    fn docker(&self, d: RawDocker) -> Result<DockerConfig> {
        if d.command.is_empty() || d.command[0].trim().is_empty() {
            return Err(self.err(
                "docker.command",
                "must name a program, e.g. [\"docker\", \"compose\"]",
            ));
        }
        let timeout = self.secs("docker.timeout_secs", d.timeout_secs, 1, 24 * 3600)?;
        let stop_grace = self.secs("docker.stop_grace_secs", d.stop_grace_secs, 0, 3600)?;
        Ok(DockerConfig {
            command: d.command,
            timeout,
            stop_grace,
        })
    }

    /// `[cluster]`.
    fn cluster(&self, c: RawCluster) -> Result<ClusterConfig> {
        let url = c.redis_url.trim();
        redis::parse_redis_url(url)
            .ok_or_else(|| self.err("cluster.redis_url", "is not a redis:// URL"))?;
        Ok(ClusterConfig {
            redis_url: Secret::new(url),
            claim_ttl: self.secs("cluster.claim_ttl_secs", c.claim_ttl_secs, 30, 24 * 3600)?,
        })
    }
}

impl Config {
    /// `<base_dir>/bbb-live-streaming<N>`.
    pub fn slot_dir(&self, slot: u32) -> PathBuf {
        self.server
            .base_dir
            .join(format!("bbb-live-streaming{slot}"))
    }

    /// `"<number>/<slot>"`, the livestream's `server` field.
    pub fn server_field(&self, slot: u32) -> String {
        format!("{}/{}", self.server.number, slot)
    }

    /// Host port of slot N's chat Redis: 6378 + N.
    pub fn redis_port(slot: u32) -> u16 {
        // slots ≤ 100 is enforced at load, so this cannot overflow.
        6378 + slot as u16
    }

    /// Redis channel of slot N.
    pub fn redis_channel(slot: u32) -> String {
        format!("chat{slot}")
    }

    /// Recording hand-over is on (`pod.recordings_dir` not empty).
    pub fn recording_enabled(&self) -> bool {
        self.pod.recordings_dir.is_some()
    }
}

/// Fails when a path is neither present nor creatable; used by `check` and `init`.
pub fn ensure_absolute(p: &Path) -> Result<()> {
    if !p.is_absolute() {
        bail!("{} is not an absolute path", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) struct MapEnv(pub HashMap<String, String>);
    impl Env for MapEnv {
        fn var(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
    }

    fn no_env() -> MapEnv {
        MapEnv(HashMap::new())
    }

    const MINIMAL: &str = r#"
[server]
hostname = "live1.univ.fr"
[bbb]
url = "https://bbb.univ.fr/bigbluebutton/api"
secret = "s3cr3t"
stream_url = "rtmp://live.univ.fr/live/"
[pod]
url = "https://pod.univ.fr"
token = "tok"
hls_url = "https://live.univ.fr/hls/"
"#;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("/etc/bbb-pod-live/config.toml"), text, &no_env())
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).expect_err("config should be refused"))
    }

    #[test]
    fn minimal_file_gets_the_documented_defaults() {
        let c = parse(MINIMAL).expect("valid");
        assert_eq!(c.server.number, 1);
        assert_eq!(c.server.count, 1);
        assert_eq!(c.server.slots, 1);
        assert_eq!(c.server.base_dir, PathBuf::from("/var/lib/bbb-pod-live"));
        assert_eq!(c.bbb.checksum, ChecksumAlgorithm::Sha1);
        assert_eq!(c.bbb.end_confirmations, 2);
        assert_eq!(c.bbb.url.as_str(), "https://bbb.univ.fr/bigbluebutton/api/");
        assert_eq!(c.pod.url.as_str(), "https://pod.univ.fr/");
        assert_eq!(c.pod.timeout, Duration::from_secs(20));
        assert_eq!(c.pod.recordings_dir, None);
        assert_eq!(c.docker.command, vec!["docker", "compose"]);
        assert_eq!(c.docker.stop_grace, Duration::from_secs(15));
        assert!(c.mail.admins.is_empty());
        assert_eq!(c.mail.from.email.to_string(), "bbb-pod-live@live1.univ.fr");
        assert!(c.cluster.is_none());
    }

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../config.example.toml");
        let c = parse(text).expect("config.example.toml must load");
        assert_eq!(c.server.slots, 2);
    }

    #[test]
    fn unknown_keys_are_refused_with_file_and_key() {
        let e = err(&MINIMAL.replace("[pod]", "[pod]\ntokken = \"x\""));
        assert!(e.contains("/etc/bbb-pod-live/config.toml"), "{e}");
        assert!(e.contains("tokken"), "{e}");
        let e = err(&format!("{MINIMAL}\n[extra]\nx = 1\n"));
        assert!(e.contains("extra"), "{e}");
    }

    #[test]
    fn missing_required_keys_are_named() {
        let e = err(&MINIMAL.replace("secret = \"s3cr3t\"", ""));
        assert!(e.contains("`bbb.secret`") && e.contains("missing"), "{e}");
        let e = err(&MINIMAL.replace("hostname = \"live1.univ.fr\"", ""));
        assert!(e.contains("`server.hostname`"), "{e}");
        let e = err(&MINIMAL.replace("[pod]", "[podd]"));
        assert!(e.contains("pod"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            (
                "[server]",
                "[server]\nnumber = 3\ncount = 2",
                "server.number",
            ),
            ("[server]", "[server]\nslots = 0", "server.slots"),
            (
                "[server]",
                "[server]\nbase_dir = \"relative/dir\"",
                "server.base_dir",
            ),
            (
                "[server]",
                "[server]\nredis_bind = \"everywhere\"",
                "server.redis_bind",
            ),
            (
                "[server]",
                "[server]\ntimezone = \"Europe/Paris; rm -rf\"",
                "server.timezone",
            ),
            ("[bbb]", "[bbb]\nchecksum = \"md5\"", "bbb.checksum"),
            ("[bbb]", "[bbb]\nresolution = \"big\"", "bbb.resolution"),
            (
                "[bbb]",
                "[bbb]\nend_confirmations = 0",
                "bbb.end_confirmations",
            ),
            ("[pod]", "[pod]\ntimeout_secs = 0", "pod.timeout_secs"),
            ("[pod]", "[pod]\nmax_concurrency = 0", "pod.max_concurrency"),
            (
                "[pod]",
                "[pod]\nrecordings_dir = \"data\"",
                "pod.recordings_dir",
            ),
            (
                "url = \"https://pod.univ.fr\"",
                "url = \"ftp://pod.univ.fr\"",
                "pod.url",
            ),
        ];
        for (from, to, key) in cases {
            let e = err(&MINIMAL.replacen(from, to, 1));
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
        }
        let e = err(&format!(
            "{MINIMAL}\n[mail]\nadmins = [\"not an address\"]\n"
        ));
        assert!(e.contains("`mail.admins`"), "{e}");
        let e = err(&format!("{MINIMAL}\n[docker]\ncommand = []\n"));
        assert!(e.contains("`docker.command`"), "{e}");
        // A wrong type is reported by the TOML layer with the line and the key.
        let e = err(&MINIMAL.replace("[server]", "[server]\nslots = \"two\""));
        assert!(e.contains("slots"), "{e}");
    }

    #[test]
    fn secrets_come_from_the_environment_first_and_never_print() {
        let env = MapEnv(HashMap::from([
            (ENV_BBB_SECRET.to_owned(), "from-env".to_owned()),
            (ENV_POD_TOKEN.to_owned(), "tok-env".to_owned()),
            (ENV_SMTP_PASSWORD.to_owned(), "pw-env".to_owned()),
        ]));
        let text = MINIMAL
            .replace("secret = \"s3cr3t\"", "")
            .replace("token = \"tok\"", "");
        let c = Config::parse(Path::new("/x.toml"), &text, &env).expect("env gives the secrets");
        assert_eq!(c.bbb.secret.expose(), "from-env");
        assert_eq!(c.pod.token.expose(), "tok-env");
        assert_eq!(c.mail.smtp_password.expose(), "pw-env");
        let debug = format!("{c:?}");
        for s in ["from-env", "tok-env", "pw-env"] {
            assert!(!debug.contains(s), "secret {s} in Debug output");
        }
    }
}
