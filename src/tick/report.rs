//! What a tick did: [`TickReport`], the problems with their advice for the admin,
//! the exit code ([`TickReport::ok`]) and the digest mail of the problems.
//!
//! It owns the wording of the advice; it does not decide what is a problem (the
//! stage that failed does) nor when a mail is due (`mail::select`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::error;

use super::Ctx;
use crate::mail;
use crate::model::{LiveId, MailMemory, Problem, ServerState, TickRecord};
use crate::text::error_chain;

/// What a tick did, for the exit code, the log and `status`.
#[derive(Debug, Default)]
pub struct TickReport {
    pub problems: Vec<Problem>,
    pub started: Vec<LiveId>,
    pub stopped: Vec<LiveId>,
    pub delivered: usize,
    /// The plan, one line per action (printed by `--dry-run`).
    pub plan_lines: Vec<String>,
    /// Streamers restarted (or started again) by the health check.
    pub streamer_restarts: u64,
    /// Warnings due a mail this tick (already throttled, e.g. a skipped row of Pod's
    /// list): mailed with the problems, not counted as failures.
    pub notices: Vec<Problem>,
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

    /// A problem of this tick: what failed (the cause chain) and what the admin can do.
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
        what: describe(err),
        advice: advice.to_owned(),
        gave_up: false,
    }
}

/// The tick's one INFO line in the day log, so that a quiet night shows the cron ran:
/// lives running and waiting, started and stopped, problems, duration. Never on stdout
/// (stderr shows it only with `-v`).
pub(super) fn summary(ctx: &Ctx, report: &TickReport, waiting: usize, started: Instant) {
    let running = ctx
        .slots
        .load_all()
        .map(|(states, broken)| states.len() + broken.len())
        .unwrap_or(0);
    tracing::info!(
        running,
        waiting,
        started = report.started.len(),
        stopped = report.stopped.len(),
        problems = report.problems.len(),
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "tick done"
    );
}

/// An error as the admin reads it, on one line: the cause first, each text once. A
/// start whose undo failed too reads `<why the start failed>; undoing the start
/// failed too: <why>`, not the other way round.
pub(super) fn describe(err: &anyhow::Error) -> String {
    match err.downcast_ref::<super::start::UndoFailed>() {
        Some(undo) => {
            let cause = err.chain().nth(1).map(error_chain).unwrap_or_default();
            format!("{cause}; {undo}")
        }
        None => error_chain(err.as_ref()),
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
        server_state.counters.streamer_restarts += self.streamer_restarts;
        server_state.last_tick = Some(TickRecord {
            at,
            duration_ms: took.as_millis() as u64,
            ok: self.ok(),
            problems: self.problems.len(),
        });
    }
}

/// The digest mail (subject, body) of the problems due a mail now, `memory` updated,
/// with the `notices` (already throttled by their own memory); `None` when nothing is
/// due.
fn digest(
    problems: &[Problem],
    notices: &[Problem],
    memory: &mut MailMemory,
    now: DateTime<Utc>,
    hostname: &str,
    number: u32,
) -> Option<(String, String)> {
    let mut to_mail = mail::select(memory, problems, now);
    to_mail.extend(notices.iter().cloned());
    if to_mail.is_empty() {
        return None;
    }
    Some(mail::error_digest(hostname, number, &to_mail))
}

/// Logs the problems and mails the admins those not mailed within the hour.
async fn report_problems(
    ctx: &Ctx,
    report: &mut TickReport,
    server_state: &mut crate::model::ServerState,
) {
    report.log_problems();
    let before = server_state.mail.clone();
    let cfg = &ctx.cfg.server;
    let due = digest(
        &report.problems,
        &report.notices,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Outcome;
    use anyhow::anyhow;

    fn failed(report: &mut TickReport, key: &str, live: Option<LiveId>) {
        report.problem(
            key,
            live,
            &anyhow!("it broke").context("doing it"),
            ADVICE_POD,
        );
    }

    #[test]
    fn a_report_without_problems_exits_0_and_any_problem_exits_1() {
        let mut report = TickReport {
            started: vec![1],
            stopped: vec![2],
            delivered: 1,
            ..TickReport::default()
        };
        assert!(report.ok());
        assert!(matches!(Outcome::from_ok(report.ok()), Outcome::Done));
        failed(&mut report, "stop:2", Some(2));
        assert!(!report.ok());
        assert!(matches!(Outcome::from_ok(report.ok()), Outcome::Failed));
    }

    #[test]
    fn a_problem_carries_its_key_live_cause_chain_and_advice() {
        let mut report = TickReport::default();
        failed(&mut report, "start:9", Some(9));
        let p = &report.problems[0];
        assert_eq!(p.key, "start:9");
        assert_eq!(p.live, Some(9));
        assert_eq!(p.what, "doing it: it broke");
        assert_eq!(p.advice, ADVICE_POD);
        assert!(!p.gave_up);
    }

    #[test]
    fn the_tick_is_added_to_the_counters_and_recorded_as_the_last_tick() {
        let mut server = ServerState::default();
        server.counters.lives_started = 10;
        server.counters.errors = 3;
        let mut report = TickReport {
            started: vec![1, 2],
            stopped: vec![3],
            delivered: 2,
            ..TickReport::default()
        };
        failed(&mut report, "pod:livestreams", None);
        let at = Utc::now();
        report.record_into(&mut server, at, Duration::from_millis(1234));
        assert_eq!(server.counters.lives_started, 12);
        assert_eq!(server.counters.lives_stopped, 1);
        assert_eq!(server.counters.recordings_delivered, 2);
        assert_eq!(server.counters.errors, 4);
        let last = server.last_tick.expect("recorded");
        assert_eq!(last.at, at);
        assert_eq!(last.duration_ms, 1234);
        assert!(!last.ok);
        assert_eq!(last.problems, 1);
    }

    #[test]
    fn the_digest_lists_new_problems_then_waits_an_hour_for_the_same_ones() {
        let mut report = TickReport::default();
        failed(&mut report, "pod:livestreams", None);
        failed(&mut report, "start:7", Some(7));
        let mut memory = MailMemory::default();
        let now = Utc::now();
        let (subject, body) =
            digest(&report.problems, &[], &mut memory, now, "live1.univ.fr", 2).expect("mailed");
        assert!(
            subject.contains("live1.univ.fr (server 2): 2 errors"),
            "{subject}"
        );
        assert!(body.contains("live 7"), "{body}");
        assert!(body.contains("doing it: it broke"), "{body}");
        assert!(body.contains(ADVICE_POD), "{body}");

        // The same problems a minute later: not mailed again.
        let later = now + chrono::TimeDelta::minutes(1);
        assert_eq!(
            digest(
                &report.problems,
                &[],
                &mut memory,
                later,
                "live1.univ.fr",
                2
            ),
            None
        );
        // A new one is, alone.
        failed(&mut report, "stop:8", Some(8));
        let (subject, body) = digest(
            &report.problems,
            &[],
            &mut memory,
            later,
            "live1.univ.fr",
            2,
        )
        .expect("mailed");
        assert!(subject.ends_with("1 error"), "{subject}");
        assert!(
            body.contains("stop:8") && !body.contains("start:7"),
            "{body}"
        );
        // An hour after the first mail, its two problems again; the third waits its hour.
        let hour = now + mail::RESEND_AFTER;
        let (subject, body) =
            digest(&report.problems, &[], &mut memory, hour, "live1.univ.fr", 2).expect("mailed");
        assert!(subject.ends_with("2 errors"), "{subject}");
        assert!(
            body.contains("start:7") && !body.contains("stop:8"),
            "{body}"
        );
    }

    #[test]
    fn a_report_without_problems_mails_nothing() {
        let mut memory = MailMemory::default();
        assert_eq!(
            digest(&[], &[], &mut memory, Utc::now(), "live1.univ.fr", 1),
            None
        );
    }
}

#[cfg(test)]
mod describe_tests {
    use super::*;
    use anyhow::anyhow;

    #[test]
    fn a_failed_undo_comes_after_the_cause_and_nothing_is_said_twice() {
        let e = anyhow!("connection refused")
            .context("`docker compose up -d` in /x failed")
            .context(super::super::start::UndoFailed(
                "`docker compose down` in /x failed".into(),
            ));
        assert_eq!(
            describe(&e),
            "`docker compose up -d` in /x failed: connection refused; undoing the start \
             failed too: `docker compose down` in /x failed"
        );
        let e = anyhow!("Permission denied (os error 13)")
            .context("writing /x: Permission denied (os error 13)");
        assert_eq!(describe(&e), "writing /x: Permission denied (os error 13)");
        assert_eq!(describe(&anyhow!("plain")), "plain");
    }
}
