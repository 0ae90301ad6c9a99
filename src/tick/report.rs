//! What a tick did: [`TickReport`], the problems with their advice for the admin,
//! the exit code ([`TickReport::ok`]) and the digest mail of the problems.
//!
//! It owns the wording of the advice; it does not decide what is a problem (the
//! stage that failed does) nor when a mail is due (`mail::select`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::error;

use super::Ctx;
use crate::mail::{self, MailMemory};
use crate::model::{LiveId, Problem};
use crate::slots::{ServerState, TickRecord};

/// What a tick did, for the exit code, the log and `status`.
#[derive(Debug, Default)]
pub struct TickReport {
    pub problems: Vec<Problem>,
    pub started: Vec<LiveId>,
    pub stopped: Vec<LiveId>,
    pub delivered: usize,
    /// The plan, one line per action (printed by `--dry-run`).
    pub plan_lines: Vec<String>,
}

impl TickReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One ERROR line per problem, with its key (and live).
    pub fn log_problems(&self) {
        for p in &self.problems {
            match p.live {
                Some(live) => error!(key = %p.key, live, "{}", p.what),
                None => error!(key = %p.key, "{}", p.what),
            }
        }
    }

    pub(super) fn problem(
        &mut self,
        key: impl Into<String>,
        live: Option<LiveId>,
        err: &anyhow::Error,
        advice: &str,
    ) {
        self.problems.push(problem(key, live, err, advice));
    }
}

pub(super) fn problem(
    key: impl Into<String>,
    live: Option<LiveId>,
    err: &anyhow::Error,
    advice: &str,
) -> Problem {
    Problem {
        key: key.into(),
        live,
        what: format!("{err:#}"),
        advice: advice.to_owned(),
        gave_up: false,
    }
}

pub(super) const ADVICE_POD: &str = "Check that Pod answers at pod.url and that pod.token belongs to a staff user; the next tick retries.";
pub(super) const ADVICE_BBB: &str = "Nothing was stopped. Check BBB/Scalelite at bbb.url and bbb.secret/bbb.checksum; the next tick retries.";
pub(super) const ADVICE_START: &str = "The start was undone and is retried at the next tick; after 3 failures the live is closed in Pod.";
pub(super) const ADVICE_STOP: &str =
    "The stop resumes at the next tick from the step it reached; the slot stays busy until then.";
pub(super) const ADVICE_RECORDING: &str = "The recording is kept on local disk and handed over at a later tick; check pod.recordings_dir (mounted, writable, space).";

/// The end of a tick that acted: problems logged and mailed, counters and the tick's
/// record added to the server state, which is saved.
pub(super) async fn finish(
    ctx: &Ctx,
    report: &mut TickReport,
    server_state: &mut ServerState,
    started: Instant,
) {
    report_problems(ctx, report, server_state).await;
    report.record_into(server_state, Utc::now(), started.elapsed());
    if let Err(e) = ctx.slots.save_server_state(server_state) {
        error!("saving the server state: {e:#}");
        report.problem(
            "state:server-save",
            None,
            &e,
            "Check that base_dir is writable.",
        );
    }
}

impl TickReport {
    /// Adds this tick to the server state's counters and records it as the last tick.
    fn record_into(&self, server_state: &mut ServerState, at: DateTime<Utc>, took: Duration) {
        server_state.counters.lives_started += self.started.len() as u64;
        server_state.counters.lives_stopped += self.stopped.len() as u64;
        server_state.counters.recordings_delivered += self.delivered as u64;
        server_state.counters.errors += self.problems.len() as u64;
        server_state.last_tick = Some(TickRecord {
            at,
            duration_ms: took.as_millis() as u64,
            ok: self.ok(),
            problems: self.problems.len(),
        });
    }
}

/// The digest mail (subject, body) of the problems due a mail now, `memory` updated;
/// `None` when every problem was mailed within the hour.
fn digest(
    problems: &[Problem],
    memory: &mut MailMemory,
    now: DateTime<Utc>,
    hostname: &str,
    number: u32,
) -> Option<(String, String)> {
    let to_mail = mail::select(memory, problems, now);
    if to_mail.is_empty() {
        return None;
    }
    Some(mail::error_digest(hostname, number, &to_mail))
}

/// Logs the problems and mails the admins those not mailed within the hour.
async fn report_problems(
    ctx: &Ctx,
    report: &mut TickReport,
    server_state: &mut crate::slots::ServerState,
) {
    report.log_problems();
    let before = server_state.mail.clone();
    let cfg = &ctx.cfg.server;
    let due = digest(
        &report.problems,
        &mut server_state.mail,
        Utc::now(),
        &cfg.hostname,
        cfg.number,
    );
    let Some((subject, body)) = due.filter(|_| ctx.mailer.enabled()) else {
        return;
    };
    if let Err(e) = ctx.mailer.send(&subject, &body).await {
        error!("mailing the errors to the admins failed: {e:#}");
        // Not mailed: the next tick tries again instead of waiting an hour.
        server_state.mail = before;
        report.problem(
            "mail:digest",
            None,
            &e,
            "Check the [mail] settings with `bbb-pod-live check`.",
        );
    }
}
