//! What the stages of a tick hand back, below all of them: the tick's
//! [`TickReport`], one slot's [`SlotOutcome`], the [`Problem`]s with the cause chain
//! as the admin reads it ([`describe`]) and the advice that goes with them.
//!
//! Every stage imports this file; it imports none of them. The end of the tick
//! (logging, mailing and recording the report) is `report`.

use tracing::error;

use crate::model::{LiveId, Problem, ProblemKey, WaitReason, Waiting};
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

    /// One ERROR line per problem, with its live; its key (the tool's memory, not
    /// words for the admin) only on a debug line.
    pub fn log_problems(&self) {
        for p in &self.problems {
            match p.live {
                Some(live) => error!(live, "{}", p.what),
                None => error!("{}", p.what),
            }
            tracing::debug!(key = %p.key, "the problem's key, for the mail's throttling");
        }
    }

    /// A problem of this tick: what failed (the cause chain) and what the admin can do.
    pub(super) fn problem(
        &mut self,
        key: ProblemKey,
        live: Option<LiveId>,
        err: &anyhow::Error,
        advice: &str,
    ) {
        self.problems.push(problem(key, live, err, advice));
    }
}

/// A problem: what failed (the cause chain of `err`) and what the admin can do.
pub(super) fn problem(
    key: ProblemKey,
    live: Option<LiveId>,
    err: &anyhow::Error,
    advice: &str,
) -> Problem {
    problem_saying(key, live, describe(err), advice)
}

/// A problem whose text is already written (see [`problem`]).
pub(super) fn problem_saying(
    key: ProblemKey,
    live: Option<LiveId>,
    what: String,
    advice: &str,
) -> Problem {
    Problem {
        key,
        live,
        what,
        advice: advice.to_owned(),
        gave_up: false,
    }
}

/// An error as the admin reads it, on one line: the cause chain, each text once.
pub(super) fn describe(err: &anyhow::Error) -> String {
    error_chain(err.as_ref())
}

pub(super) const ADVICE_POD: &str = "Check that Pod answers at pod.url and that pod.token belongs to a staff user; the next tick retries.";
pub(super) const ADVICE_BBB: &str = "Nothing was stopped. Check BBB/Scalelite at bbb.url and bbb.secret/bbb.checksum; the next tick retries.";
pub(super) const ADVICE_START: &str = "The start was undone and is retried at the next tick; after 3 failures the live is closed in Pod.";
pub(super) const ADVICE_STOP: &str =
    "The stop resumes at the next tick from the step it reached; the slot stays busy until then.";
pub(super) const ADVICE_RECORDING: &str = "The recording is kept on local disk and handed over at a later tick; check pod.recordings_dir (mounted, writable, space).";

/// Result of the work in one slot.
#[derive(Default)]
pub(super) struct SlotOutcome {
    pub(super) problems: Vec<Problem>,
    pub(super) started: Option<LiveId>,
    pub(super) stopped: Option<LiveId>,
    /// (live, start succeeded?) for the failure counts.
    pub(super) attempt: Option<(LiveId, bool)>,
    /// Lives this slot did not start after all, and why (claimed elsewhere).
    pub(super) waiting: Vec<Waiting>,
}

impl SlotOutcome {
    pub(super) fn waits(&mut self, live: LiveId, reason: WaitReason) {
        self.waiting.push(Waiting { live, reason });
    }

    pub(super) fn start_failed(&mut self, live: LiveId, e: &anyhow::Error) {
        self.start_failed_saying(live, describe(e));
    }

    /// A failed start whose text is already written (its undo failed too).
    pub(super) fn start_failed_saying(&mut self, live: LiveId, what: String) {
        self.problems.push(problem_saying(
            ProblemKey::Start(live),
            Some(live),
            what,
            ADVICE_START,
        ));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::commands::Outcome;
    use anyhow::anyhow;

    /// A problem `key` (of `live`) in `report`, as a failed stage reports it.
    pub(in crate::tick) fn failed(report: &mut TickReport, key: &str, live: Option<LiveId>) {
        report.problem(
            key.parse().expect("any text is a key"),
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
    fn the_cause_chain_is_one_line_and_nothing_is_said_twice() {
        let e = anyhow!("Permission denied (os error 13)")
            .context("writing /x: Permission denied (os error 13)");
        assert_eq!(describe(&e), "writing /x: Permission denied (os error 13)");
        assert_eq!(describe(&anyhow!("plain")), "plain");
    }
}
