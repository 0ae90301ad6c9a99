//! What a tick did: [`TickReport`], the problems with their advice for the admin,
//! the exit code ([`TickReport::ok`]) and the digest mail of the problems.
//!
//! It owns the wording of the advice; it does not decide what is a problem (the
//! stage that failed does) nor when a mail is due (`mail::select`).

use chrono::Utc;
use tracing::error;

use super::Ctx;
use crate::mail;
use crate::model::{LiveId, Problem};

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

pub(super) async fn report_problems(
    ctx: &Ctx,
    report: &mut TickReport,
    server_state: &mut crate::slots::ServerState,
) {
    report.log_problems();
    let before = server_state.mail.clone();
    let to_mail = mail::select(&mut server_state.mail, &report.problems, Utc::now());
    if to_mail.is_empty() || !ctx.mailer.enabled() {
        return;
    }
    let (subject, body) =
        mail::error_digest(&ctx.cfg.server.hostname, ctx.cfg.server.number, &to_mail);
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
