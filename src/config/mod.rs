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

use crate::model::ServerNumber;

mod base_url;
mod gateway;
mod health;
mod placeholders;
mod raw;
mod recording;
pub mod template;
mod validate;

pub use base_url::BaseUrl;
pub use gateway::{ENV_GATEWAY_TOKEN, GatewayConfig, TOKEN_MAX_CHARS, TlsFiles};
pub use health::HealthConfig;
pub use raw::DEFAULT_SENDMAIL;
pub use recording::RecordingConfig;
pub use template::BUILTIN_TEMPLATE;

use raw::RawConfig;
use validate::{Validator, toml_words};

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
    /// `[gateway]`: the webinar gateway of `serve` (see `config/gateway.rs`).
    pub gateway: Option<GatewayConfig>,
    /// `[health]`: the streamer checks and repairs (see `health.rs`).
    pub health: HealthConfig,
    /// `[recording]`: the programs that join a live's parts (see `recording/join.rs`).
    pub recording: RecordingConfig,
    pub webinar: WebinarConfig,
    /// Where each secret came from, for messages that tell the admin what to fix.
    pub sources: SecretSources,
    /// What loading adjusted without refusing (a trailing `/` added): logged at debug
    /// once logging runs, since the configuration is read before it.
    pub notes: Vec<String>,
}

/// Where a secret was read: the file's key, or the environment variable overriding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The key of the configuration file (or its default when absent).
    File { key: &'static str, file: PathBuf },
    /// The environment variable, which wins over the key.
    Env {
        var: &'static str,
        key: &'static str,
    },
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File { key, file } => {
                write!(f, "{key} in {}", file.display())
            }
            SecretSource::Env { var, key } => {
                write!(f, "the environment variable {var} (it overrides {key})")
            }
        }
    }
}

/// The source of each secret (see [`SecretSource`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSources {
    pub bbb_secret: SecretSource,
    pub pod_token: SecretSource,
    pub smtp_password: SecretSource,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub hostname: String,
    pub number: ServerNumber,
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
    /// Where streamers push; [`BbbConfig::stream_url_of`] appends a stream key.
    pub stream_url: BaseUrl,
    pub end_confirmations: u32,
    /// The N-th tick in a row finding nobody in a live's session but our own users
    /// stops it as ended; 0 never does.
    pub alone_ticks: u32,
}

#[derive(Debug, Clone)]
pub struct PodConfig {
    /// Pod's base URL, ending with `/`.
    pub url: Url,
    pub token: Secret,
    /// Where viewers watch; [`PodConfig::hls_url_of`] builds a stream key's playlist URL.
    pub hls_url: BaseUrl,
    pub building_id: u64,
    /// `None` when `recordings_dir = ""`: recording disabled.
    pub recordings_dir: Option<PathBuf>,
    pub timeout: Duration,
    /// Most list pages asked of Pod at once.
    pub max_concurrency: usize,
    /// `pod.livestreams`: false on a server that only streams webinars (Pod 3.8.2+
    /// has no `/rest/bbb_livestream/`): its ticks read no Pod lives, and `hls_url`,
    /// `building_id` and `recordings_dir` are neither required nor used.
    pub livestreams: bool,
}

/// `[webinar]`: the webinars Pod 3.8.2+ asks `serve` for.
#[derive(Debug, Clone, Copy)]
pub struct WebinarConfig {
    /// `webinar.record`: the streamer also records the webinar (kept under
    /// `<base_dir>/recordings/kept/`; Pod 3.8.2+ takes no recording from us).
    pub record: bool,
    /// `webinar.hold_secs`: how long the streamer's `up` waits after `start` was
    /// answered, so that Pod's `chat?toggle` right after it sets the panel it starts with.
    pub hold: Duration,
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
    /// The sendmail program (`mail.sendmail`), absolute: cron's `PATH` lacks `/usr/sbin`.
    pub sendmail: PathBuf,
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
        if text.trim().is_empty() {
            // TOML's own word for it would be "missing field `server`".
            return Err(anyhow!(
                "configuration file {file} is empty: start from the example \
                 (config.example.toml, installed as /etc/bbb-pod-live/config.toml by the package)"
            ));
        }
        // serde_path_to_error names the key whose value did not fit (`server.slots`),
        // which toml's own message only shows as a line of the file.
        let raw: RawConfig = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let path = e.path().to_string();
                let msg = toml_words(&e.into_inner().to_string());
                if path.is_empty() || path == "." {
                    anyhow!("{}", msg.trim_end())
                } else {
                    anyhow!("key `{path}`: {}", msg.trim_end())
                }
            })
            .with_context(|| format!("configuration file {file}"))?;
        let v = Validator {
            file,
            path: path.to_owned(),
            notes: Default::default(),
        };
        v.convert(raw, path, env)
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

/// What to tell the admin when other users may read the configuration file at `path`
/// (it holds the Pod token, the BBB secret and maybe the SMTP password): `check` says
/// it, and the first tick of each day logs it. `None` when only its owner may.
pub fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "configuration {} has mode {mode:04o}: other users can read the secrets in it; \
             chmod 600 {}",
            path.display(),
            path.display()
        )
    })
}

/// Why the configuration file at `path` cannot be trusted, if it cannot: it names
/// commands this tool runs, as root under cron (`docker.command`, `mail.sendmail`,
/// `recording.ffmpeg`), so whoever may write it may run anything as root. Only root or
/// the user running the tool may own it, and neither its group nor others may write it
/// (whatever the group is). `check` FAILs with this and every command that acts refuses
/// to run. `None` when the file cannot be read here (loading it says why).
pub fn untrusted(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let me = nix::unistd::geteuid().as_raw();
    let runs = "it names commands run as root (docker.command, mail.sendmail, recording.ffmpeg)";
    if meta.uid() != 0 && meta.uid() != me {
        let owner = nix::unistd::User::from_uid(meta.uid().into())
            .ok()
            .flatten()
            .map_or_else(
                || format!("uid {}", meta.uid()),
                |u| format!("{} (uid {})", u.name, meta.uid()),
            );
        return Some(format!(
            "configuration {} is owned by {owner}, neither root nor the user running \
             bbb-pod-live (uid {me}), and {runs}; chown root: {} if its content is yours",
            path.display(),
            path.display()
        ));
    }
    let mode = meta.mode() & 0o7777;
    (mode & 0o022 != 0).then(|| {
        format!(
            "configuration {} has mode {mode:04o}: its group or other users can write it, and \
             {runs}; chmod 600 {}",
            path.display(),
            path.display()
        )
    })
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

    pub(super) const MINIMAL: &str = r#"
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

    pub(super) fn parse(text: &str) -> Result<Config> {
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
        assert_eq!(c.bbb.alone_ticks, 10);
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
        let text = include_str!("../../config.example.toml");
        let c = parse(text).expect("config.example.toml must load");
        assert_eq!(c.server.slots, 2);
    }

    #[test]
    fn a_webinar_only_server_needs_no_key_only_pod_lives_use() {
        let text = MINIMAL.replace("hls_url = \"https://live.univ.fr/hls/\"", "");
        assert!(err(&text).contains("`pod.hls_url`"));
        let c = parse(&text.replace("[pod]", "[pod]\nlivestreams = false")).expect("webinar-only");
        assert!(!c.pod.livestreams);
        assert_eq!(c.pod.recordings_dir, None);
        assert!(!c.webinar.record);
        assert_eq!(c.webinar.hold, Duration::from_secs(5));
        let c = parse(&format!(
            "{MINIMAL}\n[webinar]\nrecord = true\nhold_secs = 0\n"
        ))
        .expect("webinar keys");
        assert!(c.webinar.record && c.webinar.hold.is_zero());
        let e = err(&format!("{MINIMAL}\n[webinar]\nhold_secs = 61\n"));
        assert!(e.contains("`webinar.hold_secs`"), "{e}");
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
            ("[bbb]", "[bbb]\nalone_ticks = -1", "bbb.alone_ticks"),
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
        // A local name works with mail(1), not over SMTP: the full address is asked for.
        let e = err(&format!("{MINIMAL}\n[mail]\nadmins = [\"root\"]\n"));
        assert!(e.contains("`mail.admins`"), "{e}");
        assert!(e.contains("\"root@localhost\""), "{e}");
        let e = err(&format!("{MINIMAL}\n[docker]\ncommand = []\n"));
        assert!(e.contains("`docker.command`"), "{e}");
        // A wrong type is reported by the TOML layer with the line and the key.
        let e = err(&MINIMAL.replace("[server]", "[server]\nslots = \"two\""));
        assert!(e.contains("slots"), "{e}");
    }

    #[test]
    fn base_urls_without_their_trailing_slash_get_it_and_a_note() {
        let c = parse(
            &MINIMAL
                .replace("rtmp://live.univ.fr/live/", "rtmp://live.univ.fr/live")
                .replace("https://live.univ.fr/hls/", "https://live.univ.fr/hls"),
        )
        .expect("both forms are accepted");
        assert_eq!(c.bbb.stream_url, "rtmp://live.univ.fr/live/");
        assert_eq!(c.pod.hls_url, "https://live.univ.fr/hls/");
        assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
        assert!(c.notes.iter().any(|n| n.contains("bbb.stream_url")));
        let c = parse(MINIMAL).expect("valid");
        assert!(c.notes.is_empty(), "{:?}", c.notes);
    }

    #[test]
    fn pod_url_pointing_at_the_api_is_refused_with_the_root_asked_for() {
        let e = err(&MINIMAL.replace("https://pod.univ.fr\"", "https://pod.univ.fr/rest/\""));
        assert!(e.contains("`pod.url`") && e.contains("root"), "{e}");
    }

    #[test]
    fn stream_url_must_be_rtmp_and_timezone_known() {
        let e = err(&MINIMAL.replace("rtmp://live.univ.fr/live/", "https://live.univ.fr/live/"));
        assert!(e.contains("`bbb.stream_url`") && e.contains("rtmp"), "{e}");
        assert!(parse(&MINIMAL.replace("rtmp://", "rtmps://")).is_ok());
        if Path::new("/usr/share/zoneinfo/Europe/Paris").is_file() {
            let e = err(&MINIMAL.replace("[server]", "[server]\ntimezone = \"Europe/Pariss\""));
            assert!(
                e.contains("`server.timezone`") && e.contains("Pariss"),
                "{e}"
            );
        }
    }

    #[test]
    fn smtp_user_without_a_password_is_refused_unless_the_environment_gives_it() {
        let text = format!("{MINIMAL}\n[mail]\nsmtp_user = \"relay\"\n");
        let e = err(&text);
        assert!(
            e.contains("`mail.smtp_user`") && e.contains(ENV_SMTP_PASSWORD),
            "{e}"
        );
        let env = MapEnv(HashMap::from([(
            ENV_SMTP_PASSWORD.to_owned(),
            "pw".to_owned(),
        )]));
        assert!(Config::parse(Path::new("/x.toml"), &text, &env).is_ok());
    }

    #[test]
    fn an_empty_file_is_said_to_be_empty() {
        for text in ["", "\n  \n"] {
            let e = err(text);
            assert!(e.contains("is empty"), "{e}");
            assert!(!e.contains("missing field"), "{e}");
        }
    }

    #[test]
    fn type_and_url_errors_are_in_an_admins_words() {
        let e = err(&MINIMAL.replace("[server]", "[server]\nslots = \"two\""));
        assert!(e.contains("whole number") && !e.contains("i64"), "{e}");
        let e = err(&format!("{MINIMAL}\n[mail]\nadmins = \"a@b.fr\"\n"));
        assert!(e.contains("a list") && !e.contains("sequence"), "{e}");
        let e = err(&MINIMAL.replace("https://pod.univ.fr\"", "pod.univ.fr\""));
        assert!(e.contains("https://") && !e.contains("relative URL"), "{e}");
    }

    #[test]
    fn a_bad_secret_from_the_environment_names_the_variable_not_the_file_key() {
        let env = |v: &str| MapEnv(HashMap::from([(ENV_POD_TOKEN.to_owned(), v.to_owned())]));
        for bad in ["tok\n", "", "  "] {
            let e = format!(
                "{:#}",
                Config::parse(Path::new("/x.toml"), MINIMAL, &env(bad)).expect_err("refused")
            );
            assert!(e.contains(ENV_POD_TOKEN), "{bad:?}: {e}");
            assert!(!e.contains("key `pod.token`"), "{bad:?}: {e}");
        }
        let e = err(&MINIMAL.replace("token = \"tok\"", ""));
        assert!(
            e.contains("`pod.token`") && e.contains(ENV_POD_TOKEN),
            "{e}"
        );
        let c = Config::parse(Path::new("/x.toml"), MINIMAL, &env("t")).expect("valid");
        assert!(c.sources.pod_token.to_string().contains(ENV_POD_TOKEN));
        assert!(
            c.sources
                .bbb_secret
                .to_string()
                .contains("bbb.secret in /x.toml")
        );
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
