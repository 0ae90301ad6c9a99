//! `check`: reach every dependency the tick needs and say, one line each, what is
//! fine (`OK`), what may hurt (`WARN`) and what must be fixed (`FAIL`), with what to do.
//!
//! It uses the same clients as the tick (so it proves the same URLs, token, checksum
//! and docker command) but never changes anything: only GETs to Pod and BBB, a probe
//! file created and removed in each directory, an SMTP session opened as the mailer
//! opens it (TLS, EHLO, login: lettre's connection test) and ended before any mail (a
//! mail only with `--send-test-mail`), a Redis PING (the redis crate). The network
//! checks run at the same time, each bounded by its timeout, and are printed in a
//! fixed order.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::bbb::BbbError;
use crate::config::{Config, MailTransport, SmtpTls};
use crate::model::Phase;
use crate::pod::PodError;
use crate::slots::{STREAMER_UID, SlotStore};
use crate::text::one_line;
use crate::tick::Ctx;

use super::outcome::{Fatal, Outcome, print_lines};

mod gateway;

/// How bad a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub level: Level,
    pub text: String,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Ok => "OK  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        write!(f, "{level} {}", self.text)
    }
}

fn ok(text: impl Into<String>) -> Line {
    Line {
        level: Level::Ok,
        text: one_line(&text.into()),
    }
}

fn warn(text: impl Into<String>) -> Line {
    Line {
        level: Level::Warn,
        text: one_line(&text.into()),
    }
}

fn fail(text: impl Into<String>) -> Line {
    Line {
        level: Level::Fail,
        text: one_line(&text.into()),
    }
}

/// Longest wait for a chat Redis to answer PING.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs every check; the lines in a fixed order. An `Err` only when the clients cannot
/// even be built from the configuration.
pub async fn run(cfg: Arc<Config>, send_test_mail: bool) -> Result<Vec<Line>> {
    let mut lines = vec![ok(format!("configuration {} is valid", cfg.path.display()))];
    lines.extend(config_file_mode(&cfg.path));
    lines.extend(cfg.placeholders().into_iter().map(|p| {
        fail(format!(
            "{p} is the example's placeholder: put this server's value there (every command \
             that acts refuses to run until then)"
        ))
    }));
    lines.extend(settings(&cfg));
    let ctx = Ctx::new(Arc::clone(&cfg))?;
    let (pod, bbb, docker, mail, redis, cluster, gateway) = tokio::join!(
        pod(&ctx),
        bbb(&ctx),
        docker_lines(&ctx),
        mail(&ctx, send_test_mail),
        chat_redis(&ctx),
        cluster_redis(&cfg),
        gateway::lines(&cfg),
    );
    lines.extend(pod);
    lines.extend(bbb);
    lines.extend(docker);
    lines.extend(directories(&cfg));
    // Under an unusable base_dir, the slots' lines would repeat its FAIL without its key.
    let base_dir_usable = writable_or_creatable(&cfg.server.base_dir).is_ok();
    if base_dir_usable {
        lines.extend(slot_states(&ctx.slots, &cfg));
        lines.extend(videodata(&ctx.slots, cfg.server.slots));
    }
    lines.push(mail);
    if base_dir_usable {
        lines.extend(redis);
    }
    lines.extend(cluster);
    lines.extend(gateway);
    Ok(lines)
}

/// `check`: one line per check, OK/WARN/FAIL and what to do; exit 1 on any FAIL.
pub async fn command(cfg: Arc<Config>, send_test_mail: bool) -> Result<Outcome, Fatal> {
    let lines = run(cfg, send_test_mail).await.map_err(Fatal::Config)?;
    print_lines(&lines.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    Ok(Outcome::from_ok(
        lines.iter().all(|l| l.level != Level::Fail),
    ))
}

/// Someone else than root or this user may change the commands the file names (FAIL),
/// or other users may read the secrets in it (WARN).
fn config_file_mode(path: &Path) -> Option<Line> {
    crate::config::untrusted(path)
        .map(|why| {
            fail(format!(
                "{why}; every command that acts refuses to run until then"
            ))
        })
        .or_else(|| crate::config::readable_by_others(path).map(warn))
}

/// Where each secret came from, and the URLs a live gets from the base URLs (a missing
/// trailing `/` was added at load): what a typo there would silently break.
fn settings(cfg: &Config) -> Vec<Line> {
    let s = &cfg.sources;
    let mut secrets = format!(
        "secrets: bbb.secret from {}; pod.token from {}",
        s.bbb_secret, s.pod_token
    );
    if !cfg.mail.smtp_password.is_empty() {
        secrets.push_str(&format!("; mail.smtp_password from {}", s.smtp_password));
    }
    if !cfg.pod.livestreams {
        return vec![
            ok(secrets),
            ok(
                "pod.livestreams = false: this server streams only the webinars of `serve` \
                (Pod 3.8.2+); no Pod livestream is read, pod.hls_url, pod.building_id and \
                pod.recordings_dir are not used",
            ),
        ];
    }
    let key = crate::names::stream_key("Cours d'amphi", 42);
    vec![
        ok(secrets),
        ok(format!(
            "a live (e.g. live 42, meeting \"Cours d'amphi\") streams to {} and Pod \
             shows {} (bbb.stream_url, pod.hls_url)",
            cfg.bbb.stream_url_of(&key),
            cfg.pod.hls_url_of(&key)
        )),
    ]
}

/// Slot state files that cannot be read: the slot stays busy (nothing is started over
/// a live that may run there) until the admin looks.
fn slot_states(store: &SlotStore, cfg: &Config) -> Vec<Line> {
    match store.load_all() {
        Ok((_, broken)) => broken
            .iter()
            .map(|(slot, e)| fail(crate::slots::corrupt_story(*slot, e, &cfg.server.base_dir)))
            .collect(),
        Err(e) => vec![fail(format!("reading the slot states: {e:#}"))],
    }
}

/// The shared Redis of `[cluster]`: PING it (the URL shown without its password); a
/// section the configuration ignores gets a warning.
async fn cluster_redis(cfg: &Config) -> Vec<Line> {
    let Some(cluster) = &cfg.cluster else {
        return Vec::new();
    };
    if cfg.server.count == 1 {
        return vec![warn(
            "[cluster] is ignored with server.count = 1 (one server has nobody to share lives \
             with): set server.count on every server, or remove [cluster]",
        )];
    }
    let shown = crate::cluster::shown_url(cluster.redis_url.expose());
    match crate::cluster::Claimer::new(cluster, cfg.server.number) {
        Ok(c) => match c.ping().await {
            Ok(()) => vec![ok(format!("cluster Redis {shown} answers PING"))],
            Err(e) => vec![fail(format!(
                "cluster Redis {shown}: {e:#}; while it is unreachable no live starts on any \
                 server: check cluster.redis_url, the Redis and the firewall"
            ))],
        },
        Err(e) => vec![fail(format!("cluster Redis {shown}: {e:#}"))],
    }
}

/// `"{e}; what to do"`: the client's own hint covers 401, 403 and a missing route
/// (404), so only the other failures get advice here.
fn pod_failure(e: &PodError) -> String {
    let advice = match e {
        PodError::Network { .. } | PodError::Timeout { .. } | PodError::Unconfirmed { .. } => {
            "check pod.url and that this server reaches Pod (firewall, proxy, DNS)"
        }
        PodError::Status {
            status: 401 | 403 | 404,
            ..
        } => return e.to_string(),
        PodError::Status { .. } | PodError::Garbage { .. } => {
            "check that pod.url is Pod's base URL (the one serving /rest/)"
        }
    };
    format!("{e}; {advice}")
}

/// Pod: URL, token and staff flag; the broadcaster API; the building.
async fn pod(ctx: &Ctx) -> Vec<Line> {
    let cfg = &ctx.cfg;
    if !cfg.pod.livestreams {
        return vec![webinar_pod(ctx).await];
    }
    if let Err(e) = ctx.pod.check_access().await {
        // A refused token: say which setting gave it, file or environment.
        // The client names the token's source on a 401 itself.
        let source = match &e {
            PodError::Status { status: 403, .. } => {
                format!(" (the token is {})", cfg.sources.pod_token)
            }
            _ => String::new(),
        };
        return vec![
            fail(format!("Pod: {}{source}", pod_failure(&e))),
            warn(
                "Pod's broadcaster API and pod.building_id: not checked until Pod accepts the token",
            ),
        ];
    }
    let mut lines = vec![ok(format!(
        "Pod answers at {} and accepts the token of a staff user",
        cfg.pod.url
    ))];
    let id = cfg.pod.building_id;
    match ctx.pod.broadcasters().await {
        Ok(b) => lines.push(ok(format!(
            "Pod's broadcaster API /rest/broadcasters/ is there ({} broadcasters)",
            b.len()
        ))),
        Err(e) => {
            let missing = matches!(e, PodError::Status { status: 404, .. });
            lines.push(fail(format!("Pod's broadcaster API: {}", pod_failure(&e))));
            if missing {
                // Buildings come with the same app: a 404 for building {id} would say
                // nothing about whether it exists.
                lines.push(warn(format!(
                    "pod.building_id = {id}: not checked, Pod has no live API to ask"
                )));
                return lines;
            }
        }
    }
    match ctx.pod.building(id).await {
        Ok(Some(name)) => lines.push(ok(format!(
            "building {id} ({name:?}) exists in Pod (pod.building_id)"
        ))),
        Ok(None) => lines.push(fail(format!(
            "pod.building_id = {id}: Pod has no such building; create one in Pod's admin \
             (Live → Buildings) or set pod.building_id to the id of an existing one"
        ))),
        Err(e) => lines.push(fail(format!(
            "reading building {id} from Pod: {}",
            pod_failure(&e)
        ))),
    }
    lines
}

/// A webinar-only server uses Pod for one thing: setting a webinar's Livestream to
/// "stopped" when it stops one Pod did not (its meeting ended). A refusal is a warning:
/// the webinars work without it.
async fn webinar_pod(ctx: &Ctx) -> Line {
    match ctx.pod.check_webinar_access().await {
        Ok(()) => ok(format!(
            "Pod answers at {} and lets the token read its webinar livestreams \
             (/rest/meeting_livestream/)",
            ctx.cfg.pod.url
        )),
        Err(e) => warn(format!(
            "Pod's webinar livestreams (/rest/meeting_livestream/): {}; a webinar whose \
             meeting ended is still stopped, but Pod's page keeps saying \"in progress\"",
            pod_failure(&e)
        )),
    }
}

/// BBB (or Scalelite): URL, secret and checksum algorithm.
async fn bbb(ctx: &Ctx) -> Vec<Line> {
    let url = &ctx.cfg.bbb.url;
    let line = match ctx.bbb.meetings().await {
        Ok(m) => ok(format!(
            "BBB answers at {url} and accepts the checksum ({} meetings)",
            m.len()
        )),
        Err(e) => {
            let advice = match &e {
                BbbError::Failed { message_key, .. } if message_key == "checksumError" => {
                    "put in bbb.secret the output of `bbb-conf --secret` (or Scalelite's \
                     LOADBALANCER_SECRET) and check bbb.checksum (sha1, sha256...)"
                }
                BbbError::Network { .. } | BbbError::Timeout(_) => {
                    "check bbb.url and that this server reaches BBB"
                }
                _ => "check that bbb.url is the API URL, ending in /bigbluebutton/api",
            };
            fail(format!("BBB: {e}; {advice}"))
        }
    };
    vec![line]
}

/// The docker command, then (when it runs) its daemon and the streamer image.
async fn docker_lines(ctx: &Ctx) -> Vec<Line> {
    let command = docker(ctx).await;
    if command.level == Level::Fail {
        // The image question would go to another program, or say the same again.
        return vec![command];
    }
    let mut lines = vec![command];
    lines.extend(streamer_image(ctx).await);
    lines
}

/// The docker command runs, and which compose it is (`version --short`): FAIL below
/// 1.29 (compose v1) and when it does not run, naming the compose this server has.
async fn docker(ctx: &Ctx) -> Line {
    let cfg = &ctx.cfg;
    let probe_dir = if cfg.server.base_dir.is_dir() {
        cfg.server.base_dir.clone()
    } else {
        std::env::temp_dir()
    };
    // Without the orphan registry: `check` writes nothing under base_dir.
    let found = crate::docker::Docker::new(&cfg.docker)
        .compose(&probe_dir)
        .await;
    let err = match found {
        Ok(found) if found.supported() => return ok(format!("docker command runs: {found}")),
        Ok(found) => {
            anyhow!("{found} answers docker.command, and compose is needed at 1.29 (v1) or 2.x")
        }
        Err(e) => e,
    };
    let others = crate::docker::other_composes(&cfg.docker.command, &probe_dir).await;
    let advice = match others.first() {
        Some((command, compose)) => format!(
            "this server has {compose}: set docker.command = {}",
            toml_array(command)
        ),
        None => "install docker with its compose plugin (the docker-compose-plugin or \
                 docker-compose-v2 package) and set docker.command = [\"docker\", \"compose\"]"
            .to_owned(),
    };
    fail(format!("docker: {err:#}; {advice}"))
}

/// A command as a TOML array, as the admin writes it in the file.
fn toml_array(words: &[String]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The streamer image of the template is present locally (`docker image inspect`):
/// otherwise the first `up` pulls it during a teacher's start. Nothing when docker
/// itself cannot answer (the docker line says why).
async fn streamer_image(ctx: &Ctx) -> Option<Line> {
    let image = crate::compose::streamer_image(&ctx.cfg.server.template)?;
    let dir = if ctx.cfg.server.base_dir.is_dir() {
        ctx.cfg.server.base_dir.clone()
    } else {
        std::env::temp_dir()
    };
    match crate::docker::Docker::new(&ctx.cfg.docker)
        .image_present(&dir, &image)
        .await
    {
        Ok(true) => Some(ok(format!("streamer image {image} is present locally"))),
        Ok(false) => Some(warn(format!(
            "streamer image {image} is not present locally: the first start would pull it \
             while the teacher waits; run `docker pull {image}`"
        ))),
        // `docker compose version` answers without the daemon: this is the first
        // question only the daemon can answer.
        Err(e) => Some(daemon_failure(&e).unwrap_or_else(|| {
            warn(format!(
                "streamer image {image}: docker could not say whether it is present: {}",
                one_line(&format!("{e:#}"))
            ))
        })),
    }
}

/// A FAIL line when docker's answer says its daemon cannot be reached, with what to do.
fn daemon_failure(err: &anyhow::Error) -> Option<Line> {
    crate::docker::daemon_trouble(err).map(|t| fail(format!("docker: {}", t.advice())))
}

/// base_dir, log_dir, recordings_dir and the metrics file's directory.
fn directories(cfg: &Config) -> Vec<Line> {
    let mut lines = Vec::new();
    for (key, dir, created_by) in [
        (
            "server.base_dir",
            cfg.server.base_dir.as_path(),
            "`bbb-pod-live init`",
        ),
        ("server.log_dir", cfg.server.log_dir.as_path(), "every run"),
    ] {
        lines.push(match writable_or_creatable(dir) {
            Ok(true) => ok(format!("{key} {} is writable", dir.display())),
            // No base_dir: nothing ran here yet, which the admin should know; a
            // missing log_dir is made by every run.
            Ok(false) => {
                let text = format!(
                    "{key} {} does not exist yet; {created_by} creates it",
                    dir.display()
                );
                if key == "server.base_dir" {
                    warn(text)
                } else {
                    ok(text)
                }
            }
            Err(e) => fail(format!("{key}: {e:#}; {}", unusable_dir_advice(key, &e))),
        });
    }
    lines.push(match &cfg.pod.recordings_dir {
        None if !cfg.pod.livestreams => {
            ok("pod.recordings_dir: not used by a webinar-only server (pod.livestreams = false)")
        }
        None => warn("pod.recordings_dir is empty: recordings are not handed over to Pod"),
        Some(d) => match crate::recording::check_recordings_dir(d) {
            Ok(()) => ok(format!("pod.recordings_dir {} is writable", d.display())),
            Err(e) => fail(format!(
                "pod.recordings_dir: {e:#}; mount Pod's share there and make it writable \
                 (recordings wait on local disk meanwhile)"
            )),
        },
    });
    if let Some(m) = &cfg.metrics {
        let dir = m.textfile.parent().unwrap_or(Path::new("/"));
        lines.push(match probe_write(dir) {
            Ok(()) => ok(format!(
                "metrics.textfile directory {} is writable",
                dir.display()
            )),
            Err(e) => fail(format!(
                "metrics.textfile: {e:#}; point it into node_exporter's textfile directory"
            )),
        });
    }
    lines
}

/// What to do about a directory `writable_or_creatable` refused: a read-only file
/// system is not fixed by creating anything.
fn unusable_dir_advice(key: &str, e: &anyhow::Error) -> String {
    let read_only = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ReadOnlyFilesystem)
    });
    if read_only {
        format!(
            "it is on a read-only file system: remount it read-write (see `dmesg` for why it \
             went read-only) or set {key} to a directory on a writable one"
        )
    } else {
        format!(
            "make it a directory writable by the user running bbb-pod-live, or set {key} \
             to one"
        )
    }
}

/// `Ok(true)`: an existing writable directory; `Ok(false)`: missing, but its nearest
/// existing ancestor is writable, so it can be created.
fn writable_or_creatable(dir: &Path) -> Result<bool> {
    if dir.exists() {
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        probe_write(dir)?;
        return Ok(true);
    }
    // The nearest thing that exists on the way: a file there makes the directory
    // impossible, whatever is above it.
    let ancestor = dir
        .ancestors()
        .skip(1)
        .find(|a| a.symlink_metadata().is_ok())
        .ok_or_else(|| anyhow!("{} has no existing parent", dir.display()))?;
    if !ancestor.is_dir() {
        bail!(
            "{} cannot be created: {} is a file, not a directory",
            dir.display(),
            ancestor.display()
        );
    }
    probe_write(ancestor)
        .with_context(|| format!("{} is missing and cannot be created", dir.display()))?;
    Ok(false)
}

fn probe_write(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".bbb-pod-live-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::fs::remove_file(&probe).with_context(|| format!("removing {}", probe.display()))
}

/// The streamer (uid 1001 in its container) writes the mkv into the bind-mounted
/// `videodata` of its slot: the directory must be writable by that uid.
fn videodata(store: &SlotStore, slots: u32) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut missing = Vec::new();
    for slot in 1..=slots {
        let dir = store.videodata(slot);
        let meta = match std::fs::metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing.push(slot);
                continue;
            }
            Err(e) => {
                lines.push(fail(format!("reading {}: {e}", dir.display())));
                continue;
            }
        };
        if !writable_by(meta.uid(), meta.gid(), meta.mode(), STREAMER_UID) {
            lines.push(fail(format!(
                "{} (owner uid {}, gid {}, mode {:04o}) is not writable by uid \
                 {STREAMER_UID}, the streamer's user: recordings would be lost; \
                 chown {STREAMER_UID}:{STREAMER_UID} it (or run `bbb-pod-live init` as root)",
                dir.display(),
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777
            )));
        }
    }
    if !missing.is_empty() {
        lines.push(warn(format!(
            "videodata of slot(s) {} missing: run `bbb-pod-live init` (run does it too)",
            join(&missing)
        )));
    }
    if lines.is_empty() {
        lines.push(ok(format!(
            "videodata of the {slots} slot(s) writable by uid {STREAMER_UID} (the streamer)"
        )));
    }
    lines
}

/// Whether `uid` (with its primary group of the same number, as in the streamer's
/// image) may create files in a directory with this owner and mode.
fn writable_by(owner: u32, group: u32, mode: u32, uid: u32) -> bool {
    if uid == 0 {
        return true;
    }
    let wx = |bits: u32| bits & 0o3 == 0o3;
    if owner == uid {
        wx(mode >> 6)
    } else if group == uid {
        wx(mode >> 3)
    } else {
        wx(mode)
    }
}

fn join(slots: &[u32]) -> String {
    slots
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mail transport: a test mail on request, else an SMTP session up to EHLO.
async fn mail(ctx: &Ctx, send_test_mail: bool) -> Line {
    let cfg = &ctx.cfg;
    if !ctx.mailer.enabled() {
        return warn("mail.admins is empty: nobody is told of starts and failures");
    }
    if send_test_mail {
        return match ctx
            .mailer
            .send(
                "[BBB-POD-LIVE] Test mail",
                &format!(
                    "This is a test mail of `bbb-pod-live check --send-test-mail` on {}.\n",
                    cfg.server.hostname
                ),
            )
            .await
        {
            Ok(()) => ok(format!(
                "test mail sent to {} via {}",
                ctx.mailer
                    .admins()
                    .iter()
                    .map(|a| a.email.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                ctx.mailer.describe()
            )),
            Err(e) => fail(format!(
                "mail: {e:#}; {}",
                match cfg.mail.transport {
                    MailTransport::Smtp =>
                        "check [mail] (smtp_host, smtp_port, smtp_tls, credentials)",
                    MailTransport::Sendmail =>
                        "check mail.sendmail and the local mail server's log (mail.log)",
                }
            )),
        };
    }
    match cfg.mail.transport {
        MailTransport::Sendmail => match executable(&cfg.mail.sendmail) {
            Ok(()) => ok(format!(
                "mail via {} (not tried: --send-test-mail sends one)",
                ctx.mailer.describe()
            )),
            Err(e) => fail(format!(
                "mail.sendmail: {e:#}; install a mail server providing it (postfix, exim, \
                 msmtp-mta) or set mail.sendmail to its absolute path"
            )),
        },
        MailTransport::Smtp => {
            let (host, port) = (cfg.mail.smtp_host.as_str(), cfg.mail.smtp_port);
            let mut note = match cfg.mail.smtp_tls {
                SmtpTls::None => " to EHLO".to_owned(),
                SmtpTls::StartTls => " to EHLO and STARTTLS".to_owned(),
                SmtpTls::Tls => " over TLS to EHLO".to_owned(),
            };
            if !cfg.mail.smtp_user.is_empty() {
                note.push_str(&format!(", accepts the login of {}", cfg.mail.smtp_user));
            }
            match ctx.mailer.test_smtp().await {
                Ok(()) => ok(format!(
                    "SMTP server {host}:{port} answers{note} (no mail sent: \
                     --send-test-mail sends one)"
                )),
                Err(e) => fail(format!(
                    "SMTP server {host}:{port}: {e:#}; check mail.smtp_host, mail.smtp_port \
                     and the firewall"
                )),
            }
        }
    }
}

/// The file exists and is executable by someone (as cron will run it, by absolute path).
fn executable(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("{} is missing", path.display()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        bail!("{} is not an executable file", path.display());
    }
    Ok(())
}

/// PING the chat Redis of each slot whose live runs (port 6378+N on `redis_bind`).
async fn chat_redis(ctx: &Ctx) -> Vec<Line> {
    let cfg = &ctx.cfg;
    let states = match ctx.slots.load_all() {
        Ok((states, _)) => states,
        Err(e) => return vec![fail(format!("reading the slot states: {e:#}"))],
    };
    let running: Vec<(u32, crate::model::LiveId)> = states
        .iter()
        .filter(|(_, s)| s.phase == Phase::Running)
        .map(|(slot, s)| (*slot, s.live))
        .collect();
    if running.is_empty() {
        return vec![ok("chat Redis: no live running, none to check")];
    }
    let host = match cfg.server.redis_bind {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        a => a,
    };
    let pings = running.iter().map(|&(slot, live)| async move {
        let addr = SocketAddr::new(host, Config::redis_port(slot));
        match redis_ping(addr).await {
            Ok(()) => ok(format!("chat Redis of slot {slot} ({addr}) answers PING")),
            Err(e) => fail(format!(
                "chat Redis of slot {slot} ({addr}): {e:#}; the chat of live {} cannot \
                 reach Pod: look at `docker compose ps` in {} and at server.redis_bind",
                live,
                ctx.slots.dir(slot).display()
            )),
        }
    });
    futures_util::future::join_all(pings).await
}

/// PING with the redis crate, bounded by [`REDIS_TIMEOUT`]. A Redis that wants a
/// password refuses PING with `NOAUTH`: it answers, which is what is checked.
async fn redis_ping(addr: SocketAddr) -> Result<()> {
    let ping = async {
        let client = redis::Client::open(format!("redis://{addr}/"))
            .with_context(|| format!("redis://{addr}/ is no Redis URL"))?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| not_redis(&e, "connecting"))?;
        match redis::cmd("PING").query_async::<String>(&mut conn).await {
            Ok(pong) if pong == "PONG" => Ok(()),
            Ok(other) => bail!("answered {other:?}, not +PONG"),
            Err(e) if e.code() == Some("NOAUTH") => Ok(()),
            Err(e) => Err(not_redis(&e, "sending PING")),
        }
    };
    tokio::time::timeout(REDIS_TIMEOUT, ping)
        .await
        .map_err(|_| anyhow!("no answer within {} s", REDIS_TIMEOUT.as_secs()))?
}

/// A refused connection as such; any other failure once connected is an answer that
/// is no Redis reply (another service on the port: the crate only says its
/// connection ended) or a Redis error.
fn not_redis(e: &redis::RedisError, doing: &str) -> anyhow::Error {
    let text = crate::text::error_chain(e);
    if e.is_connection_refusal() {
        anyhow!("cannot connect: {text}")
    } else {
        anyhow!("{doing}: {text} (no Redis reply, not +PONG)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    #[test]
    fn lines_start_with_their_level() {
        assert_eq!(ok("a").to_string(), "OK   a");
        assert_eq!(warn("b").to_string(), "WARN b");
        assert_eq!(fail("c").to_string(), "FAIL c");
    }

    #[test]
    fn writable_by_follows_owner_group_other() {
        assert!(writable_by(1001, 1001, 0o750, 1001));
        assert!(!writable_by(1001, 1001, 0o550, 1001));
        assert!(writable_by(0, 0, 0o777, 1001));
        assert!(writable_by(0, 0, 0o1777, 1001));
        assert!(!writable_by(0, 0, 0o755, 1001));
        assert!(writable_by(0, 1001, 0o770, 1001));
        assert!(!writable_by(0, 1001, 0o750, 1001));
        // Write without search (x) is not enough to create a file.
        assert!(!writable_by(0, 0, 0o666, 1001));
        // The owner's bits decide for the owner, even if others may write.
        assert!(!writable_by(1001, 0, 0o577, 1001));
    }

    #[test]
    fn config_file_readable_by_others_is_a_warning() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(config_file_mode(&p), None);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let line = config_file_mode(&p).expect("a warning");
        assert_eq!(line.level, Level::Warn);
        assert!(line.text.contains("0644") && line.text.contains("chmod 600"));
    }

    #[test]
    fn a_config_file_others_may_write_is_a_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "").expect("write");
        for mode in [0o620, 0o602, 0o664] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let line = config_file_mode(&p).expect("a failure");
            assert_eq!(line.level, Level::Fail, "{mode:o}");
            assert!(
                line.text.contains(&format!("{mode:04o}"))
                    && line.text.contains("can write it")
                    && line.text.contains("docker.command"),
                "{}",
                line.text
            );
        }
    }

    #[test]
    fn missing_directories_are_fine_when_creatable() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(writable_or_creatable(dir.path()).expect("writable"));
        assert!(!writable_or_creatable(&dir.path().join("a/b")).expect("creatable"));
        let file = dir.path().join("file");
        std::fs::write(&file, "").expect("write");
        let err = writable_or_creatable(&file).expect_err("a file");
        assert!(format!("{err:#}").contains("not a directory"));
    }

    /// A one-connection Redis answering PING with `pong` and every other command (the
    /// crate's CLIENT SETINFO on connecting) with `+OK`, or with `pong` too when it is
    /// an error (a Redis wanting a password refuses everything).
    async fn redis(pong: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.expect("accept");
            let (read, mut write) = s.into_split();
            let mut lines = BufReader::new(read).lines();
            // RESP: `*<n>` then n times `$<len>` and the argument.
            while let Ok(Some(head)) = lines.next_line().await {
                let n: usize = head.trim_start_matches('*').parse().unwrap_or(0);
                let mut args = Vec::new();
                for _ in 0..n {
                    let _len = lines.next_line().await;
                    args.push(lines.next_line().await.ok().flatten().unwrap_or_default());
                }
                let answer = match args.first().map(String::as_str) {
                    Some("PING") => pong,
                    _ if pong.starts_with('-') => pong,
                    _ => "+OK\r\n",
                };
                if write.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn redis_ping_wants_pong() {
        let addr = redis("+PONG\r\n").await;
        redis_ping(addr).await.expect("pong");
        let addr = redis("-NOAUTH Authentication required.\r\n").await;
        redis_ping(addr)
            .await
            .expect("a Redis with a password answers too");
        let addr =
            crate::mail::tests::line_server(vec!["HTTP/1.1 400 Bad Request\r\n"], None).await;
        let err = redis_ping(addr).await.expect_err("not redis");
        assert!(format!("{err:#}").contains("not +PONG"), "{err:#}");
        // Nothing listens on a port just freed.
        let free = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = free.local_addr().expect("addr");
        drop(free);
        let err = redis_ping(addr).await.expect_err("refused");
        assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
    }
}
