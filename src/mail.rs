//! Mails to the admins: the message texts (pure functions), their throttling (pure,
//! over a [`MailMemory`] the caller persists between ticks), and sending (lettre,
//! `smtp` or `sendmail`, as `[mail]` says).
//!
//! This module decides what a mail says and whether a problem is worth mailing again;
//! it does not decide what a problem is (the tick builds [`Problem`]s), does not read
//! or write the memory file and does not retry a failed send (the next tick will, since
//! the caller keeps the old memory when sending fails).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, TimeDelta, Utc};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tracing::{debug, info};

use crate::config::{MailConfig, MailTransport, SmtpTls};
use crate::model::{
    LiveId, MailMemory, Problem, ProblemKey, Remembered, ServerNumber, is_webinar_id,
};
use crate::process::Cmd;
use crate::text::{error_chain, one_line, truncate};

/// Every subject starts with this.
pub const SUBJECT_PREFIX: &str = "[BBB-POD-LIVE]";
/// A problem that lasts is mailed again at most this often.
pub const RESEND_AFTER: TimeDelta = TimeDelta::hours(1);
/// Longest meeting name put in a subject, in characters.
const SUBJECT_NAME_MAX: usize = 120;

// ---------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------

enum Transport {
    /// No admin configured: nothing is built, nothing is sent.
    Disabled,
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        /// `smtp host:port (tls)`, for messages.
        label: String,
    },
    /// lettre formats the message; the program runs through [`crate::process`] like
    /// every child (lettre's own sendmail transport has no timeout and would leave the
    /// program running when the send is dropped).
    Sendmail { program: OsString },
}

/// Sends plain-text UTF-8 mails to the admins of `[mail]`.
pub struct Mailer {
    from: Mailbox,
    admins: Vec<Mailbox>,
    transport: Transport,
    /// Whole-send deadline (lettre's SMTP timeout applies to each command; sendmail has none).
    deadline: Duration,
}

impl fmt::Debug for Mailer {
    // By hand: the transports' own Debug output says little, and this never shows secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("admins", &self.admins.len())
            .field("transport", &self.describe())
            .finish()
    }
}

impl Mailer {
    /// The mailer of `[mail]` (sendmail: the program of `mail.sendmail`).
    /// Nothing is contacted here.
    pub fn new(config: &MailConfig) -> Result<Mailer> {
        Self::build(config, config.sendmail.clone().into_os_string())
    }

    /// As [`Mailer::new`], with another sendmail program (e.g. `/usr/sbin/sendmail`, or a
    /// fake in tests). Ignored with `transport = "smtp"`.
    pub fn with_sendmail_program(
        config: &MailConfig,
        program: impl Into<OsString>,
    ) -> Result<Mailer> {
        Self::build(config, program.into())
    }

    fn build(config: &MailConfig, program: OsString) -> Result<Mailer> {
        let transport = if config.admins.is_empty() {
            Transport::Disabled
        } else {
            match config.transport {
                MailTransport::Smtp => smtp_transport(config)?,
                MailTransport::Sendmail => Transport::Sendmail { program },
            }
        };
        let deadline = match config.transport {
            // Connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA: each bounded by lettre; the
            // whole is bounded too, so that a crawling server cannot hold the tick.
            MailTransport::Smtp => config.timeout.saturating_mul(4),
            MailTransport::Sendmail => config.timeout,
        };
        Ok(Mailer {
            from: config.from.clone(),
            admins: config.admins.clone(),
            transport,
            deadline,
        })
    }

    /// Mails are sent only when `mail.admins` names someone.
    pub fn enabled(&self) -> bool {
        !matches!(self.transport, Transport::Disabled)
    }

    pub fn admins(&self) -> &[Mailbox] {
        &self.admins
    }

    /// `smtp mail.univ.fr:587 (starttls)`, `sendmail /usr/sbin/sendmail` or `disabled`.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Disabled => "disabled (no mail.admins)".to_owned(),
            Transport::Smtp { label, .. } => label.clone(),
            Transport::Sendmail { program, .. } => {
                format!("the sendmail program {}", program.to_string_lossy())
            }
        }
    }

    /// Opens an SMTP session as a send would (TLS as `mail.smtp_tls` says, EHLO, the
    /// login when configured), asks NOOP and ends it: nothing is sent. For `check`,
    /// with an SMTP transport (an error otherwise).
    pub async fn test_smtp(&self) -> Result<()> {
        let Transport::Smtp { transport, .. } = &self.transport else {
            return Err(anyhow!(
                "mail is not sent by SMTP here ({})",
                self.describe()
            ));
        };
        let answered = tokio::time::timeout(self.deadline, transport.test_connection())
            .await
            .map_err(|_| anyhow!("no answer within {} s", self.deadline.as_secs()))?
            .map_err(|e| anyhow!(one_line(&error_chain(&e))))?;
        if !answered {
            return Err(anyhow!("the session ended before NOOP was answered"));
        }
        Ok(())
    }

    /// Sends one plain-text mail to each admin (one message each, so that an address the
    /// relay refuses does not keep the others from theirs). Fails when any could not be
    /// sent, naming the transport and the addresses (never a password).
    pub async fn send(&self, subject: &str, body: &str) -> Result<()> {
        if !self.enabled() {
            debug!(subject, "no mail.admins: mail not sent");
            return Ok(());
        }
        let mut failures = Vec::new();
        for admin in &self.admins {
            if let Err(e) = self.send_one(admin, subject, body).await {
                failures.push(format!("to {}: {e:#}", admin.email));
            }
        }
        if failures.is_empty() {
            info!(subject, admins = self.admins.len(), "mail sent");
            Ok(())
        } else {
            Err(anyhow!(
                "sending mail via {}: {}",
                self.describe(),
                failures.join("; ")
            ))
        }
    }

    async fn send_one(&self, to: &Mailbox, subject: &str, body: &str) -> Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject(printable(subject))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .context("building the message")?;
        let expired = || anyhow!("no answer within {} s", self.deadline.as_secs());
        match &self.transport {
            Transport::Disabled => Ok(()),
            Transport::Smtp { transport, .. } => {
                let sent = tokio::time::timeout(self.deadline, transport.send(message)).await;
                sent.map_err(|_| expired())?
                    .map(drop)
                    .map_err(|e| anyhow!(one_line(&error_chain(&e))))
            }
            Transport::Sendmail { program } => {
                // As lettre's sendmail transport: `-i` (a line of one dot is no end),
                // the envelope sender, then the recipients after `--`.
                let envelope = message.envelope();
                let mut cmd = Cmd::new(program).arg("-i");
                if let Some(from) = envelope.from() {
                    cmd = cmd.arg("-f").arg(from);
                }
                cmd.arg("--")
                    .args(envelope.to())
                    .input(message.formatted())
                    .timeout(self.deadline)
                    .run()
                    .await
                    .map(drop)
                    .map_err(|e| anyhow!(one_line(&e.to_string())))
            }
        }
    }
}

fn smtp_transport(config: &MailConfig) -> Result<Transport> {
    let host = config.smtp_host.as_str();
    let (builder, tls) = match config.smtp_tls {
        SmtpTls::None => (
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            "no tls",
        ),
        SmtpTls::StartTls => (
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .with_context(|| format!("smtp {host}: setting up STARTTLS"))?,
            "starttls",
        ),
        SmtpTls::Tls => (
            AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .with_context(|| format!("smtp {host}: setting up TLS"))?,
            "tls",
        ),
    };
    let mut builder = builder.port(config.smtp_port).timeout(Some(config.timeout));
    if !config.smtp_user.is_empty() {
        builder = builder.credentials(Credentials::new(
            config.smtp_user.clone(),
            config.smtp_password.expose().to_owned(),
        ));
    }
    let auth = if config.smtp_user.is_empty() {
        String::new()
    } else {
        format!(", user {}", config.smtp_user)
    };
    Ok(Transport::Smtp {
        transport: builder.build(),
        label: format!("smtp {host}:{} ({tls}{auth})", config.smtp_port),
    })
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// What the "live started" mail tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStarted {
    pub live: LiveId,
    pub meeting_name: String,
    pub slot: u32,
    /// This server (`server.hostname`).
    pub hostname: String,
    pub server_number: ServerNumber,
    /// The RTMP URL the streamer publishes to.
    pub stream_url: String,
    /// Where viewers watch (`<hls_url><key>.m3u8`).
    pub hls_url: String,
    pub broadcaster_name: String,
    pub recording: bool,
    pub chat: bool,
}

/// `(subject, body)` of the mail sent when a live starts.
pub fn live_started(info: &LiveStarted) -> (String, String) {
    let name = printable(&info.meeting_name);
    let subject = format!(
        "{SUBJECT_PREFIX} live {} started: {} (server {}, slot {})",
        info.live,
        truncate(&name, SUBJECT_NAME_MAX),
        info.server_number,
        info.slot
    );
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut body = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(body, "Live {} has started.", info.live);
    let _ = writeln!(body);
    let _ = writeln!(body, "Meeting:      {name}");
    let _ = writeln!(
        body,
        "Server:       {} (server {}), slot {}",
        printable(&info.hostname),
        info.server_number,
        info.slot
    );
    let _ = writeln!(body, "Stream:       {}", printable(&info.stream_url));
    let _ = writeln!(body, "Viewers:      {}", printable(&info.hls_url));
    let _ = writeln!(body, "Broadcaster:  {}", printable(&info.broadcaster_name));
    let _ = writeln!(
        body,
        "Recording:    {}",
        if info.recording {
            "yes, handed over to Pod when the live stops"
        } else {
            "no"
        }
    );
    let _ = writeln!(body, "Chat:         {}", yes_no(info.chat));
    let _ = writeln!(body);
    let _ = writeln!(
        body,
        "To stop it before the meeting ends: bbb-pod-live stop --live {}",
        info.live
    );
    (subject, body)
}

/// What the "webinar started" mail tells (a webinar of `serve`, Pod 3.8.2+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebinarStarted {
    pub room: String,
    pub gateway_path: String,
    pub meeting_id: String,
    pub pod_host: String,
    pub slot: u32,
    pub hostname: String,
    pub server_number: ServerNumber,
    pub chat_panel: bool,
    pub recording: bool,
}

/// `(subject, body)` of the mail sent when a webinar's streamer is up. The RTMP
/// target is not shown: it is Pod's LiveGateway's, with its stream key.
pub fn webinar_started(info: &WebinarStarted) -> (String, String) {
    let meeting = one_line(&info.meeting_id);
    let subject = format!(
        "{SUBJECT_PREFIX} webinar {} started: {} (server {}, slot {})",
        one_line(&info.room),
        truncate(&meeting, SUBJECT_NAME_MAX),
        info.server_number,
        info.slot
    );
    let mut body = String::new();
    let _ = writeln!(body, "Webinar {} has started.", one_line(&info.room));
    let _ = writeln!(body);
    let _ = writeln!(body, "Meeting:      {meeting}");
    let _ = writeln!(body, "Pod:          {}", one_line(&info.pod_host));
    let _ = writeln!(body, "Gateway:      {}", one_line(&info.gateway_path));
    let _ = writeln!(
        body,
        "Server:       {} (server {}), slot {}",
        one_line(&info.hostname),
        info.server_number,
        info.slot
    );
    let _ = writeln!(
        body,
        "Chat panel:   {}",
        if info.chat_panel { "shown" } else { "hidden" }
    );
    let _ = writeln!(
        body,
        "Recording:    {}",
        if info.recording {
            "yes, kept on this server when it stops"
        } else {
            "no"
        }
    );
    let _ = writeln!(body);
    let _ = writeln!(
        body,
        "It stops when Pod says so, when its meeting ends, or: bbb-pod-live stop --slot {}",
        info.slot
    );
    (subject, body)
}

/// What was stopped because its room stayed empty.
#[derive(Debug, Clone)]
pub enum EmptyRoom {
    /// A live Pod asked for (`/rest/bbb_livestream/`).
    Live(LiveId),
    /// A webinar of `serve`, by its BBB room.
    Webinar(String),
}

/// `(subject, body)` of the one mail about a live or webinar stopped because nobody
/// but our own users was in its meeting for `ticks` ticks in a row, `minutes` from
/// the first.
pub fn room_empty(
    host: &str,
    what: &EmptyRoom,
    slot: u32,
    meeting: &str,
    ticks: u32,
    minutes: i64,
) -> (String, String) {
    let (name, stopped_as) = match what {
        EmptyRoom::Live(live) => (
            format!("live {live}"),
            "the live is closed in Pod, its broadcaster deleted, its recording (if asked \
             for) handed over to Pod.",
        ),
        EmptyRoom::Webinar(room) => (
            format!("webinar {room}"),
            "its streamer is stopped, its Livestream set to \"Live stopped\" in Pod \
             (when [pod] is the Pod that asked for it), its recording (if [webinar] record \
             is on) kept as for any webinar.",
        ),
    };
    let subject = format!("{SUBJECT_PREFIX} {host}: {name} stopped, its room stayed empty");
    let mut title = name.clone();
    title[..1].make_ascii_uppercase();
    let body = format!(
        "{title} (slot {slot}, meeting {meeting:?}) was stopped because its room stayed \
         empty: for {minutes} minute(s), {ticks} tick(s) in a row (bbb.alone_ticks), nobody was \
         in its BBB meeting but bbb-pod-live's own streamer and chat relay. The teacher most \
         likely left without ending the meeting, which our streamer alone kept running.\n\n\
         It was stopped as if the meeting had ended: {stopped_as} The BBB \
         meeting itself was not ended: BBB ends it once our streamer has left.\n\n\
         bbb.alone_ticks = 0 turns this rule off.\n"
    );
    (subject, body)
}

/// What a problem that concerns no live is about, in the admin's words: its key is
/// for the tool's memory (and `--json`, debug lines), not for people.
fn about(key: &ProblemKey) -> &'static str {
    match key {
        ProblemKey::Meetings | ProblemKey::MeetingInfo(_) => "BBB",
        ProblemKey::Livestreams | ProblemKey::Row(_) | ProblemKey::RowWithoutId(_) => "Pod",
        ProblemKey::Docker => "Docker",
        ProblemKey::ClusterClaim => "the cluster Redis",
        ProblemKey::Recording(_) | ProblemKey::RecordingJoin(_) => "a recording",
        ProblemKey::RecordingList => "the recordings waiting",
        ProblemKey::Webinar(_) | ProblemKey::WebinarPod(_) | ProblemKey::WebinarSlots => {
            "a webinar"
        }
        ProblemKey::SlotState(_) | ProblemKey::ServerState | ProblemKey::ServerStateSave => {
            "this server's state files"
        }
        ProblemKey::DigestMail | ProblemKey::StartMail => "the mail",
        _ => "this server",
    }
}

/// `(subject, body)` of the mail listing this tick's problems worth mailing (see
/// [`select`]), each with what failed, its live and what to do.
pub fn error_digest(
    hostname: &str,
    server_number: ServerNumber,
    problems: &[Problem],
) -> (String, String) {
    let host = printable(hostname);
    let gave_up = problems.iter().filter(|p| p.gave_up).count();
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let mut subject = format!(
        "{SUBJECT_PREFIX} {host} (server {server_number}): {}",
        plural(problems.len(), "error")
    );
    if gave_up > 0 {
        let _ = write!(subject, ", gave up on {gave_up}");
    }
    let mut body = String::new();
    let _ = writeln!(
        body,
        "bbb-pod-live on {host} (server {server_number}) met {}:",
        plural(problems.len(), "problem")
    );
    for (i, p) in problems.iter().enumerate() {
        let _ = writeln!(body);
        // A webinar is named by its room: its live id is an internal number.
        let about = match (&p.key, p.live) {
            (ProblemKey::Webinar(room) | ProblemKey::WebinarPod(room), _) => {
                format!("webinar {room}")
            }
            (_, Some(id)) if is_webinar_id(id) => "a webinar".to_owned(),
            (_, Some(id)) => format!("live {id}"),
            (_, None) => about(&p.key).to_owned(),
        };
        let mark = if p.gave_up { " [GAVE UP]" } else { "" };
        let _ = writeln!(body, "{}. {about}{mark}", i + 1);
        let _ = writeln!(body, "   What failed: {}", block(&p.what, 16));
        let _ = writeln!(body, "   What to do:  {}", block(&p.advice, 16));
        if p.gave_up {
            let _ = writeln!(
                body,
                "   The tool gave up on this: it will not try again by itself."
            );
        }
    }
    let _ = writeln!(body);
    let _ = writeln!(
        body,
        "A problem is mailed when it first appears, then at most once an hour while it \
         lasts. Details are in the day's log on {host}."
    );
    (subject, body)
}

/// Control characters (newlines included) become spaces: nothing a meeting name holds
/// can break a header or a line of the body. lettre encodes what is not ASCII.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Multi-line text, other control characters as spaces, continuation lines indented.
fn block(s: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    s.trim()
        .lines()
        .map(printable)
        .collect::<Vec<_>>()
        .join(&format!("\n{pad}"))
}

// ---------------------------------------------------------------------------
// Throttling
// ---------------------------------------------------------------------------

/// The problems of this tick to mail, updating `memory`:
/// - a key not in memory (new, or back after being resolved) is mailed;
/// - a key still present is mailed again once [`RESEND_AFTER`] has passed since it was
///   last mailed;
/// - a problem the tool gave up on is always mailed;
/// - keys absent from `problems` are forgotten (resolved).
///
/// Problems sharing a key are mailed together or not at all. Persist the updated memory
/// only once the mail is sent, so that a failed send is retried at the next tick.
pub fn select(memory: &mut MailMemory, problems: &[Problem], now: DateTime<Utc>) -> Vec<Problem> {
    // The memory keeps each key as its text, as the state file holds it.
    let keys: Vec<String> = problems.iter().map(|p| p.key.to_string()).collect();
    let present: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    memory.0.retain(|key, _| present.contains(key.as_str()));
    let mut due: BTreeSet<&str> = BTreeSet::new();
    for (p, key) in problems.iter().zip(&keys) {
        let mail = match memory.0.get_mut(key) {
            None => true,
            Some(r) => {
                if r.last_mailed > now {
                    // The clock went back: start the hour again rather than mail early.
                    r.last_mailed = now;
                }
                p.gave_up || now - r.last_mailed >= RESEND_AFTER
            }
        };
        if mail {
            due.insert(key);
        }
    }
    for key in &due {
        memory
            .0
            .entry((*key).to_owned())
            .and_modify(|r| r.last_mailed = now)
            .or_insert(Remembered {
                first_seen: now,
                last_mailed: now,
            });
    }
    problems
        .iter()
        .zip(&keys)
        .filter(|(_, key)| due.contains(key.as_str()))
        .map(|(p, _)| p.clone())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::model::ProblemKey;
    use chrono::TimeZone;

    fn problem(key: &str, gave_up: bool) -> Problem {
        Problem {
            key: key.parse().expect("any text is a key"),
            live: Some(42),
            what: format!("{key} failed"),
            advice: "look".to_owned(),
            gave_up,
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 2, 8, 0, 0)
            .single()
            .expect("valid date")
    }

    fn minutes(n: i64) -> TimeDelta {
        TimeDelta::minutes(n)
    }

    fn config(transport: MailTransport, tls: SmtpTls, user: &str) -> MailConfig {
        MailConfig {
            admins: vec!["Admin <admin@univ.fr>".parse().expect("mailbox")],
            from: "bbb-pod-live@live1.univ.fr".parse().expect("mailbox"),
            transport,
            smtp_host: "smtp.univ.fr".to_owned(),
            smtp_port: 587,
            smtp_user: user.to_owned(),
            smtp_password: Secret::new("hunter2"),
            smtp_tls: tls,
            timeout: Duration::from_secs(5),
            sendmail: std::path::PathBuf::from(crate::config::DEFAULT_SENDMAIL),
        }
    }

    // --- throttling

    #[test]
    fn the_empty_room_mail_says_which_live_or_webinar_why_and_how_long() {
        let (subject, body) = room_empty("live1", &EmptyRoom::Live(42), 2, "Cours d'amphi", 10, 9);
        assert!(
            subject.starts_with(SUBJECT_PREFIX)
                && subject.contains("live 42")
                && subject.contains("room stayed empty"),
            "{subject}"
        );
        for needle in [
            "Live 42 (slot 2",
            "Cours d'amphi",
            "9 minute(s)",
            "10 tick(s)",
            "alone_ticks = 0",
            "its broadcaster deleted",
        ] {
            assert!(body.contains(needle), "{needle} not in {body}");
        }
        let (subject, body) =
            room_empty("live1", &EmptyRoom::Webinar("amphi-a".into()), 3, "m", 4, 3);
        assert!(subject.contains("webinar amphi-a stopped"), "{subject}");
        assert!(body.starts_with("Webinar amphi-a (slot 3"), "{body}");
        assert!(!body.contains("broadcaster"), "{body}");
    }

    #[test]
    fn a_lasting_problem_is_mailed_once_an_hour() {
        let mut memory = MailMemory::default();
        let problems = [problem("bbb:getMeetings", false)];
        let mut mailed = Vec::new();
        for m in 0..=120 {
            let now = t0() + minutes(m);
            if !select(&mut memory, &problems, now).is_empty() {
                mailed.push(m);
            }
        }
        assert_eq!(mailed, vec![0, 60, 120]);
        let r = memory.0["bbb:getMeetings"];
        assert_eq!(r.first_seen, t0());
        assert_eq!(r.last_mailed, t0() + minutes(120));
    }

    #[test]
    fn a_resolved_problem_is_forgotten_and_new_when_it_comes_back() {
        let mut memory = MailMemory::default();
        let p = [problem("start:42", false)];
        assert_eq!(select(&mut memory, &p, t0()).len(), 1);
        assert!(select(&mut memory, &p, t0() + minutes(1)).is_empty());
        // Resolved at minute 2.
        assert!(select(&mut memory, &[], t0() + minutes(2)).is_empty());
        assert!(memory.0.is_empty());
        // Back at minute 3: new again.
        assert_eq!(select(&mut memory, &p, t0() + minutes(3)).len(), 1);
        assert_eq!(memory.0["start:42"].first_seen, t0() + minutes(3));
    }

    #[test]
    fn giving_up_is_always_mailed() {
        let mut memory = MailMemory::default();
        assert_eq!(
            select(&mut memory, &[problem("start:42", false)], t0()).len(),
            1
        );
        let got = select(&mut memory, &[problem("start:42", true)], t0() + minutes(1));
        assert_eq!(got.len(), 1);
        assert!(got[0].gave_up);
        // A new key that is given up at once is mailed too.
        let got = select(&mut memory, &[problem("start:7", true)], t0() + minutes(2));
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn keys_are_throttled_independently() {
        let mut memory = MailMemory::default();
        let a = problem("stop:1", false);
        let b = problem("stop:2", false);
        assert_eq!(
            select(&mut memory, std::slice::from_ref(&a), t0()),
            vec![a.clone()]
        );
        let got = select(&mut memory, &[a.clone(), b.clone()], t0() + minutes(30));
        assert_eq!(got, vec![b.clone()]);
        let got = select(&mut memory, &[a.clone(), b.clone()], t0() + minutes(60));
        assert_eq!(got, vec![a.clone()]);
        let got = select(&mut memory, &[a.clone(), b.clone()], t0() + minutes(90));
        assert_eq!(got, vec![b]);
    }

    #[test]
    fn problems_sharing_a_key_go_together() {
        let mut memory = MailMemory::default();
        let mut second = problem("recording:42", false);
        second.what = "another cause".into();
        let both = [problem("recording:42", false), second];
        assert_eq!(select(&mut memory, &both, t0()).len(), 2);
        assert!(select(&mut memory, &both, t0() + minutes(1)).is_empty());
    }

    #[test]
    fn a_clock_going_back_does_not_mail_early() {
        let mut memory = MailMemory::default();
        let p = [problem("pod:list", false)];
        assert_eq!(select(&mut memory, &p, t0()).len(), 1);
        assert!(select(&mut memory, &p, t0() - minutes(30)).is_empty());
        assert!(select(&mut memory, &p, t0() + minutes(20)).is_empty());
        assert_eq!(select(&mut memory, &p, t0() + minutes(30)).len(), 1);
    }

    #[test]
    fn memory_round_trips_as_json() {
        let mut memory = MailMemory::default();
        select(&mut memory, &[problem("bbb:getMeetings", false)], t0());
        let text = serde_json::to_string(&memory).expect("serialize");
        assert!(text.starts_with("{\"bbb:getMeetings\":{"), "{text}");
        let back: MailMemory = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, memory);
        let empty: MailMemory = serde_json::from_str("{}").expect("parse");
        assert_eq!(empty, MailMemory::default());
    }

    // --- messages

    fn started() -> LiveStarted {
        LiveStarted {
            live: 42,
            meeting_name: "Cours d'amphi\nL1 \u{0}droit\r\t".to_owned(),
            slot: 2,
            hostname: "live1.univ.fr".to_owned(),
            server_number: ServerNumber(1),
            stream_url: "rtmp://live.univ.fr/live/cours-d-amphi".to_owned(),
            hls_url: "https://live.univ.fr/hls/cours-d-amphi.m3u8".to_owned(),
            broadcaster_name: "[BBB] Cours d'amphi L1 droit".to_owned(),
            recording: true,
            chat: false,
        }
    }

    #[test]
    fn live_started_says_which_live_where() {
        let (subject, body) = live_started(&started());
        assert!(subject.starts_with("[BBB-POD-LIVE] "), "{subject}");
        assert!(subject.contains("live 42"), "{subject}");
        assert!(subject.contains("slot 2"), "{subject}");
        assert!(subject.contains("Cours d'amphi L1  droit"), "{subject}");
        assert!(!subject.chars().any(char::is_control), "{subject:?}");
        for needle in [
            "Live 42",
            "slot 2",
            "live1.univ.fr (server 1)",
            "rtmp://live.univ.fr/live/cours-d-amphi",
            "https://live.univ.fr/hls/cours-d-amphi.m3u8",
            "[BBB] Cours d'amphi L1 droit",
            "Recording:    yes",
            "Chat:         no",
            "stop --live 42",
        ] {
            assert!(body.contains(needle), "{needle:?} not in {body}");
        }
        // The keys are the tool's memory, not words for people.
        for key in ["bbb:getMeetings", "start:42", "no live in particular"] {
            assert!(!body.contains(key), "{key:?} in {body}");
        }
        assert!(!body.contains('\0') && !body.contains('\r') && !body.contains('\t'));
    }

    #[test]
    fn a_long_meeting_name_is_cut_in_the_subject() {
        let mut info = started();
        info.meeting_name = "é".repeat(500);
        let (subject, body) = live_started(&info);
        assert!(subject.chars().count() < 200, "{subject}");
        assert!(subject.contains('…'));
        assert!(body.contains(&"é".repeat(500)));
    }

    #[test]
    fn error_digest_lists_each_problem_with_advice() {
        let problems = [
            Problem {
                key: ProblemKey::Meetings,
                live: None,
                what: "getMeetings failed: checksumError\ncaused by: bad secret".into(),
                advice: "check bbb.secret".into(),
                gave_up: false,
            },
            Problem {
                key: ProblemKey::Start(42),
                live: Some(42),
                what: "starting live 42: docker compose up failed".into(),
                advice: "look at `docker compose logs` in the slot directory".into(),
                gave_up: true,
            },
        ];
        let (subject, body) = error_digest("live1.univ.fr\n", ServerNumber(1), &problems);
        assert_eq!(
            subject,
            "[BBB-POD-LIVE] live1.univ.fr (server 1): 2 errors, gave up on 1"
        );
        for needle in [
            "1. BBB\n",
            "checksumError\n                caused by: bad secret",
            "What to do:  check bbb.secret",
            "2. live 42 [GAVE UP]\n",
            "docker compose up failed",
            "gave up on this",
        ] {
            assert!(body.contains(needle), "{needle:?} not in {body}");
        }
        let (subject, _) = error_digest("live1", ServerNumber(3), &problems[..1]);
        assert_eq!(subject, "[BBB-POD-LIVE] live1 (server 3): 1 error");
    }

    #[test]
    fn error_digest_names_a_webinar_by_its_room_not_its_internal_id() {
        let id = crate::model::webinar_live_id("3319bf5aed");
        let problem = |key| Problem {
            key,
            live: Some(id),
            what: "x".into(),
            advice: "y".into(),
            gave_up: false,
        };
        let problems = [
            problem(ProblemKey::WebinarPod("3319bf5aed".into())),
            problem(ProblemKey::Other("streamer:x".into())),
        ];
        let (_, body) = error_digest("live1", ServerNumber(1), &problems);
        assert!(body.contains("1. webinar 3319bf5aed\n"), "{body}");
        assert!(body.contains("2. a webinar\n"), "{body}");
        assert!(!body.contains(&id.to_string()), "{body}");
    }

    #[test]
    fn printable_removes_control_characters() {
        assert_eq!(
            printable("a\nb\rc\td\0e\u{7f}f\u{85}g\u{2028}h"),
            "a b c d e f g h"
        );
        assert_eq!(printable("  padded\n"), "padded");
        assert_eq!(printable("réunion 会议"), "réunion 会议");
    }

    // --- transport construction

    #[test]
    fn mailer_builds_for_every_transport() {
        for tls in [SmtpTls::None, SmtpTls::StartTls, SmtpTls::Tls] {
            for user in ["", "mailer"] {
                let m = Mailer::new(&config(MailTransport::Smtp, tls, user)).expect("smtp");
                assert!(m.enabled());
                let d = m.describe();
                assert!(d.starts_with("smtp smtp.univ.fr:587"), "{d}");
                assert_eq!(d.contains("user mailer"), !user.is_empty(), "{d}");
                let debug = format!("{m:?}");
                assert!(!debug.contains("hunter2"), "{debug}");
            }
        }
        let describe = |tls| {
            Mailer::new(&config(MailTransport::Smtp, tls, ""))
                .expect("smtp")
                .describe()
        };
        assert!(describe(SmtpTls::None).contains("(no tls"));
        assert!(describe(SmtpTls::StartTls).contains("(starttls"));
        assert!(describe(SmtpTls::Tls).contains("(tls"));
        let m = Mailer::new(&config(MailTransport::Sendmail, SmtpTls::None, "")).expect("sendmail");
        // By its absolute path: cron's PATH lacks /usr/sbin.
        assert_eq!(m.describe(), "the sendmail program /usr/sbin/sendmail");
        let m = Mailer::with_sendmail_program(
            &config(MailTransport::Sendmail, SmtpTls::None, ""),
            "/opt/bin/sendmail",
        )
        .expect("sendmail");
        assert_eq!(m.describe(), "the sendmail program /opt/bin/sendmail");
    }

    #[tokio::test]
    async fn no_admins_no_mail() {
        let mut c = config(MailTransport::Smtp, SmtpTls::Tls, "");
        c.admins.clear();
        let m = Mailer::new(&c).expect("builds");
        assert!(!m.enabled());
        // Nothing to reach: sending is a no-op, not an error.
        m.send("s", "b").await.expect("no-op");
    }

    /// The tick sends from spawned tasks: the future of `send` must be `Send`.
    #[tokio::test]
    async fn send_can_run_in_a_spawned_task() {
        let mut c = config(MailTransport::Smtp, SmtpTls::None, "");
        c.admins.clear();
        let m = std::sync::Arc::new(Mailer::new(&c).expect("builds"));
        let task = tokio::spawn(async move {
            let m = &*m;
            m.send("s", "b").await
        });
        task.await.expect("joined").expect("sent");
    }

    // --- sending, against a tiny SMTP responder and a fake sendmail

    /// Accepts one SMTP session and returns the DATA it received.
    async fn smtp_sink(listener: tokio::net::TcpListener) -> String {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink ESMTP\r\n").await.expect("greet");
        let mut data = String::new();
        let mut in_data = false;
        while let Some(line) = lines.next_line().await.expect("read") {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 queued\r\n").await.expect("write");
                } else {
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250 sink\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go on\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await.expect("write");
                    break;
                }
                _ => b"250 ok\r\n",
            };
            write.write_all(reply).await.expect("write");
        }
        data
    }

    #[tokio::test]
    async fn sends_over_smtp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let sink = tokio::spawn(smtp_sink(listener));
        let mut c = config(MailTransport::Smtp, SmtpTls::None, "");
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = port;
        let m = Mailer::new(&c).expect("smtp");
        let (subject, body) = live_started(&started());
        m.send(&subject, &body).await.expect("sent");
        let data = sink.await.expect("sink");
        assert!(
            data.contains("Subject: [BBB-POD-LIVE] live 42 started"),
            "{data}"
        );
        assert!(
            data.contains("To: \"Admin\" <admin@univ.fr>")
                || data.contains("To: Admin <admin@univ.fr>"),
            "{data}"
        );
        assert!(data.contains("text/plain; charset=utf-8"), "{data}");
        assert!(
            data.contains("rtmp://live.univ.fr/live/cours-d-amphi"),
            "{data}"
        );
    }

    #[tokio::test]
    async fn a_failed_send_names_the_transport_not_the_password() {
        // A port nobody listens on: bind then drop.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let mut c = config(MailTransport::Smtp, SmtpTls::None, "mailer");
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = port;
        let e = Mailer::new(&c)
            .expect("smtp")
            .send("s", "b")
            .await
            .expect_err("nobody listens");
        let msg = format!("{e:#}");
        assert!(msg.contains(&format!("smtp 127.0.0.1:{port}")), "{msg}");
        assert!(msg.contains("admin@univ.fr"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[tokio::test]
    async fn sends_through_sendmail() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("mail.txt");
        let program = dir.path().join("sendmail");
        std::fs::write(
            &program,
            format!(
                "#!/bin/sh\necho \"$@\" > '{0}.args'\ncat > '{0}'\n",
                out.display()
            ),
        )
        .expect("script");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let c = config(MailTransport::Sendmail, SmtpTls::None, "");
        let m = Mailer::with_sendmail_program(&c, &program).expect("sendmail");
        let (subject, body) = error_digest(
            "live1.univ.fr",
            ServerNumber(1),
            &[problem("stop:9", false)],
        );
        // A script written a moment ago can fail to exec (ETXTBSY) while another test
        // thread forks with its write descriptor still open: retry that race only.
        let mut sent = m.send(&subject, &body).await;
        for _ in 0..20 {
            if sent.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            sent = m.send(&subject, &body).await;
        }
        sent.expect("sent");
        let mail = std::fs::read_to_string(&out).expect("mail");
        assert!(
            mail.contains("Subject: [BBB-POD-LIVE] live1.univ.fr (server 1): 1 error"),
            "{mail}"
        );
        assert!(mail.contains("stop:9 failed"), "{mail}");
        let args = std::fs::read_to_string(format!("{}.args", out.display())).expect("args");
        assert!(args.contains("admin@univ.fr"), "{args}");

        // A sendmail that fails: the error names the program. It reads the message
        // first: exiting unread would make the write fail with EPIPE instead, whenever
        // the script wins the race (seen under load).
        std::fs::write(
            &program,
            "#!/bin/sh\ncat >/dev/null\necho 'no route' >&2\nexit 1\n",
        )
        .expect("script");
        // Same exec race as above: retry while the error is the kernel's, not the script's.
        let mut msg = String::new();
        for _ in 0..20 {
            msg = format!("{:#}", m.send("s", "b").await.expect_err("fails"));
            if !msg.contains("busy") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            msg.contains(&format!("sendmail program {}", program.display())),
            "{msg}"
        );
        assert!(msg.contains("no route"), "{msg}");
        assert_eq!(msg.matches("no route").count(), 1, "said twice: {msg}");
    }

    /// A one-connection server: `greeting` first, then each read answered with the
    /// next of `answers`; the connection stays open for one more read.
    pub(crate) async fn line_server(
        answers: Vec<&'static str>,
        greeting: Option<&'static str>,
    ) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            if let Some(g) = greeting {
                s.write_all(g.as_bytes()).await.expect("greet");
            }
            let mut buf = [0u8; 512];
            for a in answers {
                if s.read(&mut buf).await.unwrap_or(0) == 0 {
                    return;
                }
                s.write_all(a.as_bytes()).await.expect("answer");
            }
            // Keep the connection open a moment for the client's last write.
            let _ = s.read(&mut buf).await;
        });
        addr
    }

    fn smtp_at(addr: std::net::SocketAddr, timeout: Duration) -> Mailer {
        let mut c = config(MailTransport::Smtp, SmtpTls::None, "");
        c.smtp_host = addr.ip().to_string();
        c.smtp_port = addr.port();
        c.timeout = timeout;
        Mailer::new(&c).expect("mailer")
    }

    #[tokio::test]
    async fn test_smtp_reads_multiline_replies() {
        let addr = line_server(
            vec![
                "250-mx.example\r\n250-SIZE 1000\r\n250 HELP\r\n",
                "250 2.0.0 Ok\r\n",
                "221 2.0.0 Bye\r\n",
            ],
            Some("220 mx.example ESMTP\r\n"),
        )
        .await;
        smtp_at(addr, Duration::from_secs(5))
            .test_smtp()
            .await
            .expect("EHLO accepted");
    }

    #[tokio::test]
    async fn test_smtp_reports_a_refusal() {
        let addr = line_server(vec![], Some("554 go away\r\n")).await;
        let err = smtp_at(addr, Duration::from_secs(5))
            .test_smtp()
            .await
            .expect_err("refused");
        let text = format!("{err:#}");
        assert!(text.contains("554") && text.contains("go away"), "{text}");
    }

    #[tokio::test]
    async fn test_smtp_times_out_on_a_silent_server() {
        let addr = line_server(vec![], None).await;
        let err = smtp_at(addr, Duration::from_millis(300))
            .test_smtp()
            .await
            .expect_err("silent");
        let text = format!("{err:#}");
        assert!(
            text.contains("timed out") || text.contains("no answer"),
            "{text}"
        );
    }
}
