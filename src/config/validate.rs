//! Checking and converting the raw file into a [`Config`]: one function per section,
//! each error naming the file and the key — or, for a secret, the environment
//! variable it came from. Adjustments that refuse nothing (a trailing `/` added) are
//! kept as notes for the log.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow};
use reqwest::Url;

use super::raw::*;
use super::*;

pub(super) struct Validator {
    pub(super) file: String,
    pub(super) path: PathBuf,
    pub(super) notes: std::cell::RefCell<Vec<String>>,
}

impl Validator {
    pub(super) fn err(&self, key: &str, msg: impl fmt::Display) -> anyhow::Error {
        anyhow!("configuration file {}: key `{key}`: {msg}", self.file)
    }

    /// A secret: the environment variable `var` first, else the file's `key`. Errors
    /// name the one the value came from; a missing one names both.
    fn secret(
        &self,
        key: &'static str,
        var: &'static str,
        env: &dyn Env,
        file_value: Option<String>,
    ) -> Result<(String, SecretSource)> {
        match env.var(var) {
            Some(v) => {
                let source = SecretSource::Env { var, key };
                if v.trim().is_empty() {
                    return Err(self.env_err(&source, "is set but empty"));
                }
                Ok((v, source))
            }
            None => {
                let source = SecretSource::File {
                    key,
                    file: self.path.clone(),
                };
                match file_value {
                    None => Err(self.err(
                        key,
                        format!("is required but missing (or set the environment variable {var})"),
                    )),
                    v => Ok((self.required(key, v)?, source)),
                }
            }
        }
    }

    /// An error about a secret's value, naming where it came from.
    pub(super) fn secret_err(
        &self,
        source: &SecretSource,
        msg: impl fmt::Display,
    ) -> anyhow::Error {
        match source {
            SecretSource::File { key, .. } => self.err(key, msg),
            SecretSource::Env { .. } => self.env_err(source, msg),
        }
    }

    fn env_err(&self, source: &SecretSource, msg: impl fmt::Display) -> anyhow::Error {
        anyhow!("{source}, with configuration file {}: {msg}", self.file)
    }

    fn note(&self, text: String) {
        self.notes.borrow_mut().push(text);
    }

    /// A base URL to which a key is appended: a missing trailing `/` is added (the PHP
    /// added it; without it every live's URL would be wrong without an error).
    fn base_with_slash(&self, key: &str, value: String) -> String {
        if value.ends_with('/') {
            return value;
        }
        self.note(format!("{key}: added the missing trailing / to {value:?}"));
        format!("{value}/")
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
            .map_err(|e| self.err(key, format!("{value:?} is not a URL: {}", url_words(e))))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(self.err(key, format!("{value:?} must be an http:// or https:// URL")));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    pub(super) fn absolute_dir(&self, key: &str, value: &str) -> Result<PathBuf> {
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
        // A local name such as "root" is what mail(1) takes; SMTP needs the domain.
        if !value.is_empty() && !value.contains('@') {
            return Err(self.err(
                key,
                format!(
                    "{value:?} is not a full mail address: write it with its domain, e.g. \"{value}@localhost\""
                ),
            ));
        }
        value
            .parse()
            .map_err(|e| self.err(key, format!("{value:?} is not a mail address: {e}")))
    }

    pub(super) fn convert(&self, raw: RawConfig, path: &Path, env: &dyn Env) -> Result<Config> {
        let server = self.server(raw.server)?;
        let (bbb, bbb_secret) = self.bbb(raw.bbb, env)?;
        let (pod, pod_token) = self.pod(raw.pod, env)?;
        let (mail, smtp_password) = self.mail(raw.mail, &server.hostname, env)?;
        let docker = self.docker(raw.docker)?;
        let cluster = raw.cluster.map(|c| self.cluster(c)).transpose()?;
        let metrics = match raw.metrics {
            None => None,
            Some(m) => Some(MetricsConfig {
                textfile: self.absolute_dir("metrics.textfile", &m.textfile)?,
            }),
        };
        let gateway = raw.gateway.map(|g| self.gateway(g, env)).transpose()?;
        Ok(Config {
            path: path.to_owned(),
            server,
            bbb,
            pod,
            mail,
            docker,
            cluster,
            metrics,
            gateway,
            health: raw.health.validate(&self.file)?,
            recording: raw.recording.into(),
            webinar: WebinarConfig {
                record: raw.webinar.record,
                hold: self.secs("webinar.hold_secs", raw.webinar.hold_secs, 0, 60)?,
            },
            sources: SecretSources {
                bbb_secret,
                pod_token,
                smtp_password,
            },
            notes: self.notes.take(),
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
        let number = ServerNumber(number);
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
        // The containers get the host's zone database; where the host has one, a name
        // missing from it is a typo the streamer would silently turn into UTC.
        let zoneinfo = Path::new("/usr/share/zoneinfo");
        if zoneinfo.is_dir() && !zoneinfo.join(&timezone).is_file() {
            return Err(self.err(
                "server.timezone",
                format!(
                    "{timezone:?} is not a known time zone (none in /usr/share/zoneinfo); \
                     e.g. \"Europe/Paris\""
                ),
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
                template::check_template(&text)
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
    fn bbb(&self, b: RawBbb, env: &dyn Env) -> Result<(BbbConfig, SecretSource)> {
        let bbb_url = self.http_url("bbb.url", &self.required("bbb.url", b.url)?)?;
        let (bbb_secret, source) = self.secret("bbb.secret", ENV_BBB_SECRET, env, b.secret)?;
        // The streamer passes these to a shell unquoted; white space would split them.
        const WHITE: &str = "must not contain white space or control characters";
        if bbb_secret
            .chars()
            .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(self.secret_err(&source, WHITE));
        }
        for (key, value) in [
            ("bbb.attendee_password", &b.attendee_password),
            ("bbb.moderator_password", &b.moderator_password),
        ] {
            if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(self.err(key, WHITE));
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
            Ok(u)
                if matches!(u.scheme(), "rtmp" | "rtmps")
                    && u.host_str().is_some()
                    && !u.cannot_be_a_base() => {}
            _ => {
                return Err(self.err(
                    "bbb.stream_url",
                    format!(
                        "{stream_url:?} is not an rtmp:// or rtmps:// URL such as \
                         rtmp://live.univ.fr/live/"
                    ),
                ));
            }
        }
        let stream_url = BaseUrl::checked(self.base_with_slash("bbb.stream_url", stream_url));
        let end_confirmations =
            self.range("bbb.end_confirmations", b.end_confirmations, 1, 60)? as u32;
        let alone_ticks = self.range("bbb.alone_ticks", b.alone_ticks, 0, 10_000)? as u32;
        let bbb = BbbConfig {
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
            alone_ticks,
        };
        Ok((bbb, source))
    }

    /// `[pod]`; the token from the environment first.
    fn pod(&self, p: RawPod, env: &dyn Env) -> Result<(PodConfig, SecretSource)> {
        let pod_url = self.http_url("pod.url", &self.required("pod.url", p.url)?)?;
        if pod_url.path().trim_end_matches('/').ends_with("/rest") {
            return Err(self.err(
                "pod.url",
                format!(
                    "{:?} is Pod's REST API; give Pod's root address instead (without /rest/)",
                    pod_url.as_str()
                ),
            ));
        }
        let (token, source) = self.secret("pod.token", ENV_POD_TOKEN, env, p.token)?;
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(self.secret_err(
                &source,
                "contains white space or a line break (copy the token key alone)",
            ));
        }
        // A webinar-only server (Pod 3.8.2+) reads no livestream: what only Pod's lives
        // use is neither required nor used there.
        let (hls_url, building_id, recordings_dir) = if p.livestreams {
            let hls_url = self.required("pod.hls_url", p.hls_url)?.trim().to_owned();
            self.http_url("pod.hls_url", &hls_url)?;
            let hls_url = BaseUrl::checked(self.base_with_slash("pod.hls_url", hls_url));
            let building_id = self.range("pod.building_id", p.building_id, 1, i64::MAX)? as u64;
            let recordings_dir = match p.recordings_dir.trim() {
                "" => None,
                d => Some(self.absolute_dir("pod.recordings_dir", d)?),
            };
            (hls_url, building_id, recordings_dir)
        } else {
            // Never read on such a server (no Pod live, no broadcaster, no HLS check).
            (BaseUrl::checked("/".to_owned()), 1, None)
        };
        let timeout = self.secs("pod.timeout_secs", p.timeout_secs, 1, 3600)?;
        let max_concurrency =
            self.range("pod.max_concurrency", p.max_concurrency, 1, 256)? as usize;
        let pod = PodConfig {
            url: pod_url,
            token: Secret::new(token),
            hls_url,
            building_id,
            recordings_dir,
            timeout,
            max_concurrency,
            livestreams: p.livestreams,
        };
        Ok((pod, source))
    }

    /// `[mail]`; the SMTP password from the environment first.
    fn mail(
        &self,
        m: RawMail,
        hostname: &str,
        env: &dyn Env,
    ) -> Result<(MailConfig, SecretSource)> {
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
        let (smtp_password, source) = match env.var(ENV_SMTP_PASSWORD) {
            Some(v) => (
                v,
                SecretSource::Env {
                    var: ENV_SMTP_PASSWORD,
                    key: "mail.smtp_password",
                },
            ),
            None => (
                m.smtp_password,
                SecretSource::File {
                    key: "mail.smtp_password",
                    file: self.path.clone(),
                },
            ),
        };
        if smtp_password.chars().any(|c| c == '\n' || c == '\r') {
            return Err(self.secret_err(&source, "contains a line break"));
        }
        let smtp_user = m.smtp_user.trim().to_owned();
        if transport == MailTransport::Smtp && !smtp_user.is_empty() && smtp_password.is_empty() {
            return Err(self.err(
                "mail.smtp_user",
                format!(
                    "is set but mail.smtp_password is empty (set it, or {ENV_SMTP_PASSWORD}, \
                     or leave smtp_user empty for a relay without authentication)"
                ),
            ));
        }
        let smtp_password = Secret::new(smtp_password);
        if transport == MailTransport::Smtp && m.smtp_host.trim().is_empty() {
            return Err(self.err(
                "mail.smtp_host",
                "must not be empty with transport \"smtp\"",
            ));
        }
        let timeout = self.secs("mail.timeout_secs", m.timeout_secs, 1, 3600)?;
        let sendmail = self.absolute_dir("mail.sendmail", m.sendmail.trim())?;
        let mail = MailConfig {
            admins,
            from,
            transport,
            smtp_host: m.smtp_host.trim().to_owned(),
            smtp_port,
            smtp_user,
            smtp_password,
            smtp_tls,
            timeout,
            sendmail,
        };
        Ok((mail, source))
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

/// A URL parse error in an admin's words, not the parser's.
pub(super) fn url_words(e: impl fmt::Display) -> String {
    let text = e.to_string();
    match text.as_str() {
        "relative URL without a base" => "it does not start with a scheme such as https://".into(),
        "empty host" => "it has no host name".into(),
        "invalid port number" => "its port is not a number up to 65535".into(),
        "invalid domain character" => "its host name has a character not allowed there".into(),
        _ => text,
    }
}

/// A TOML type error in an admin's words (`invalid type: string "two", expected i64`
/// becomes `wrong type: string "two", expected a whole number`).
pub(super) fn toml_words(msg: &str) -> String {
    let mut text = msg.replace("invalid type: ", "wrong type: ");
    for (jargon, words) in [
        ("expected i64", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        (
            "expected a sequence",
            "expected a list such as [\"a\", \"b\"]",
        ),
        ("expected a boolean", "expected true or false"),
        ("expected a string", "expected a text in quotes"),
        ("expected struct", "expected a table (a [section])"),
        ("expected a map", "expected a table (a [section])"),
        ("integer `", "number `"),
    ] {
        text = text.replace(jargon, words);
    }
    text
}
