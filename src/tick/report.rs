//! The end of a tick that acted: its problems logged and mailed to the admins (the
//! digest), its counters and record added to the server state, its one summary line.
//!
//! The report itself and the wording of the advice are `outcome`'s; it does not
//! decide what is a problem (the stage that failed does) nor when a mail is due
//! (`mail::select`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tracing::error;

use super::ctx::Ctx;
use super::outcome::TickReport;
use crate::mail;
use crate::model::{MailMemory, Problem, ProblemKey, ServerNumber, ServerState, TickRecord};

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
            ProblemKey::ServerStateSave,
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
    number: ServerNumber,
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
            ProblemKey::DigestMail,
            None,
            &e,
            "Check the [mail] settings with `bbb-pod-live check`.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::outcome::ADVICE_POD;
    use crate::tick::outcome::tests::failed;

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
        let (subject, body) = digest(
            &report.problems,
            &[],
            &mut memory,
            now,
            "live1.univ.fr",
            ServerNumber(2),
        )
        .expect("mailed");
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
                ServerNumber(2)
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
            ServerNumber(2),
        )
        .expect("mailed");
        assert!(subject.ends_with("1 error"), "{subject}");
        // Told by their lives: the keys are not in the mail.
        assert!(
            body.contains("live 8") && !body.contains("live 7") && !body.contains("stop:8"),
            "{body}"
        );
        // An hour after the first mail, its two problems again; the third waits its hour.
        let hour = now + mail::RESEND_AFTER;
        let (subject, body) = digest(
            &report.problems,
            &[],
            &mut memory,
            hour,
            "live1.univ.fr",
            ServerNumber(2),
        )
        .expect("mailed");
        assert!(subject.ends_with("2 errors"), "{subject}");
        assert!(
            body.contains("live 7") && !body.contains("live 8"),
            "{body}"
        );
    }

    #[test]
    fn a_report_without_problems_mails_nothing() {
        let mut memory = MailMemory::default();
        assert_eq!(
            digest(
                &[],
                &[],
                &mut memory,
                Utc::now(),
                "live1.univ.fr",
                ServerNumber(1)
            ),
            None
        );
    }
}
