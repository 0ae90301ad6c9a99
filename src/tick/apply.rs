//! Apply: the plan's actions, those of different slots concurrently (one task per
//! slot), then the lives given up, with the failure counts and stale sightings
//! kept in the server state.
//!
//! It dispatches each action to its stage (`start`, `stop`); it does not decide
//! (`plan.rs`) nor know how a start or a stop is done.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::anyhow;
use tokio::task::JoinSet;
use tracing::{debug, info};

use super::close::{close_duplicate, close_stale, give_up};
use super::ctx::{Ctx, MAX_START_ATTEMPTS, send};
use super::gather::Snapshot;
use super::outcome::{ADVICE_POD, SlotOutcome, TickReport, problem};
use super::shared::{InUse, Shared};
use super::start::{abandon_start, adopt, finish_start, revert, start_in_slot};
use super::stop::{note_alone, note_ended_seen, stop_into, stop_planned};
use crate::model::{Live, LiveId, ProblemKey, ServerState, SlotState};
use crate::plan::{self, Action};

/// Runs the plan: the actions without a slot in order, those of each slot as a task
/// of its own; then closes the lives given up (planned, or whose last allowed
/// attempt failed just now).
pub(super) async fn apply(
    ctx: &Arc<Ctx>,
    decided: plan::Plan,
    snapshot: Snapshot,
    server_state: &mut ServerState,
    report: &mut TickReport,
) {
    let Snapshot {
        lives,
        mut states,
        prefetched,
        meetings,
        ..
    } = snapshot;
    let lives: HashMap<LiveId, Live> = lives.into_iter().map(|l| (l.id, l)).collect();
    let shared = Arc::new(Shared {
        in_use: InUse::new(lives.values()),
        lives,
        standby: std::sync::Mutex::new(decided.standby.into()),
        prefetched,
        meetings,
    });
    let lives = &shared.lives;
    let mut tasks = JoinSet::new();
    let mut give_ups = Vec::new();
    // Counted again from what this tick saw: the sightings must be consecutive.
    let mut stale_seen = BTreeMap::new();
    for action in decided.actions {
        match action {
            Action::GiveUp { live, attempts } => {
                give_ups.push((live, attempts));
                continue;
            }
            Action::SeenStale { live, seen } => {
                info!(
                    live,
                    seen, "waiting live not started: its meeting is not running in BBB"
                );
                stale_seen.insert(live, seen);
                continue;
            }
            Action::CloseStale { live, seen } => {
                match close_stale(ctx, live, seen).await {
                    Ok(()) => {}
                    Err(e) => report.problem(ProblemKey::Stale(live), Some(live), &e, ADVICE_POD),
                }
                continue;
            }
            Action::CloseDuplicate { live, kept } => {
                if let Err(e) = close_duplicate(ctx, live, kept).await {
                    report.problem(ProblemKey::Duplicate(live), Some(live), &e, ADVICE_POD);
                }
                continue;
            }
            _ => {}
        }
        let Some(slot) = action.slot() else { continue };
        let state = states.remove(&slot);
        tasks.spawn(apply_slot(
            Arc::clone(ctx),
            action,
            state,
            Arc::clone(&shared),
        ));
    }
    while let Some(joined) = tasks.join_next().await {
        let outcome = match joined {
            Ok(o) => o,
            Err(e) => {
                let e = anyhow!("a slot task failed: {e}");
                report.problem(
                    ProblemKey::Task,
                    None,
                    &e,
                    "This is a bug; the slot's state file is intact.",
                );
                continue;
            }
        };
        outcome.count(server_state, report, &mut give_ups);
    }
    server_state.stale_seen = stale_seen;
    for (live, attempts) in give_ups {
        let meeting_url = lives.get(&live).and_then(|l| l.meeting_url.as_deref());
        match give_up(ctx, live, attempts, meeting_url).await {
            Ok(p) => {
                server_state.start_failures.remove(&live);
                report.problems.extend(p);
            }
            Err(e) => report.problem(ProblemKey::GiveUp(live), Some(live), &e, ADVICE_POD),
        }
    }
}

impl SlotOutcome {
    /// Adds the outcome to the report and the failure counts; a live whose last
    /// allowed attempt just failed joins `give_ups`.
    fn count(
        self,
        server_state: &mut ServerState,
        report: &mut TickReport,
        give_ups: &mut Vec<(LiveId, u32)>,
    ) {
        report.problems.extend(self.problems);
        report.started.extend(self.started);
        // Why a live waits, as `status` shows it: a claim seen just now says more
        // than the plan's guess; a standby live a slot took does not wait.
        for w in self.waiting {
            server_state.waiting.retain(|known| known.live != w.live);
            server_state.waiting.push(w);
        }
        if let Some(live) = self.started {
            server_state.waiting.retain(|w| w.live != live);
        }
        report.stopped.extend(self.stopped);
        match self.attempt {
            Some((live, true)) => {
                server_state.start_failures.remove(&live);
            }
            Some((live, false)) => {
                let attempts = server_state.start_failures.entry(live).or_insert(0);
                *attempts += 1;
                // The last allowed attempt just failed: close the live now, not a
                // minute later (a closing that fails is retried through the plan).
                if *attempts >= MAX_START_ATTEMPTS {
                    give_ups.push((live, *attempts));
                }
            }
            None => {}
        }
    }
}

/// The action of one slot, run as its own task.
pub(super) async fn apply_slot(
    ctx: Arc<Ctx>,
    action: Action,
    state: Option<SlotState>,
    shared: Arc<Shared>,
) -> SlotOutcome {
    let (ctx, lives) = (&*ctx, &shared.lives);
    let mut out = SlotOutcome::default();
    match action {
        Action::Start { slot, live } | Action::ResumeStart { slot, live } => {
            send(start_in_slot(ctx, slot, live, state, &shared, &mut out)).await;
        }
        Action::FinishStart { slot, .. } => {
            if let Some(s) = state {
                finish_start(ctx, slot, s, &mut out);
            }
        }
        Action::AbandonStart { slot, live } => {
            if let Some(s) = state {
                send(abandon_start(ctx, slot, s, lives.get(&live), &mut out)).await;
            }
        }
        Action::Revert { slot, live } => {
            if let Some(s) = state
                && let Err(e) = send(revert(ctx, slot, s, lives.get(&live))).await
            {
                out.problems.push(problem(
                    ProblemKey::Revert(live),
                    Some(live),
                    &e,
                    ADVICE_POD,
                ));
            }
        }
        Action::Adopt { slot, live } => {
            if let Some(l) = lives.get(&live)
                && let Err(e) = send(adopt(ctx, slot, l)).await
            {
                out.problems
                    .push(problem(ProblemKey::Adopt(live), Some(live), &e, ADVICE_POD));
            }
        }
        Action::SeenEnded {
            slot,
            live,
            seen,
            needed,
        } => {
            info!(live, slot, seen, needed, "meeting seen ended");
            note_ended_seen(ctx, slot, state, seen, &mut out);
        }
        Action::SeenRunning { slot, live } => {
            info!(live, slot, "meeting running again");
            note_ended_seen(ctx, slot, state, 0, &mut out);
        }
        Action::SeenAlone {
            slot,
            live,
            seen,
            needed,
        } => {
            debug!(
                live,
                slot, seen, needed, "nobody in the meeting but bbb-pod-live's own users"
            );
            note_alone(ctx, slot, state, Some(seen), &mut out);
        }
        Action::SeenCompany { slot, live, was } => {
            debug!(live, slot, was, "someone is in the meeting: not empty");
            note_alone(ctx, slot, state, None, &mut out);
        }
        Action::Stop { slot, live, reason } => {
            let listed = lives.get(&live);
            send(stop_planned(
                ctx, slot, live, state, reason, listed, &mut out,
            ))
            .await;
        }
        Action::ResumeStop { slot, live } => {
            if let Some(s) = state {
                send(stop_into(ctx, slot, s, None, lives.get(&live), &mut out)).await;
            }
        }
        Action::GiveUp { .. }
        | Action::SeenStale { .. }
        | Action::CloseStale { .. }
        | Action::CloseDuplicate { .. } => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::outcome::ADVICE_START;

    fn failed_start(live: LiveId) -> SlotOutcome {
        let mut out = SlotOutcome::default();
        out.start_failed(live, &anyhow!("up failed"));
        out.attempt = Some((live, false));
        out
    }

    #[test]
    fn failed_starts_are_counted_and_the_last_allowed_one_gives_up_at_once() {
        let (mut server, mut report, mut give_ups) =
            (ServerState::default(), TickReport::default(), Vec::new());
        for _ in 1..MAX_START_ATTEMPTS {
            failed_start(4).count(&mut server, &mut report, &mut give_ups);
        }
        assert_eq!(
            server.start_failures.get(&4),
            Some(&(MAX_START_ATTEMPTS - 1))
        );
        assert!(give_ups.is_empty());
        assert_eq!(report.problems.len(), (MAX_START_ATTEMPTS - 1) as usize);
        assert_eq!(report.problems[0].key, "start:4");
        assert_eq!(report.problems[0].advice, ADVICE_START);
        failed_start(4).count(&mut server, &mut report, &mut give_ups);
        assert_eq!(give_ups, [(4, MAX_START_ATTEMPTS)]);
    }

    #[test]
    fn a_start_forgets_its_failures_and_an_uncounted_failure_changes_nothing() {
        let (mut server, mut report, mut give_ups) =
            (ServerState::default(), TickReport::default(), Vec::new());
        server.start_failures.insert(4, 2);
        server.start_failures.insert(5, 1);
        // Pod unavailable: reported, not counted.
        let mut out = failed_start(5);
        out.attempt = None;
        out.count(&mut server, &mut report, &mut give_ups);
        assert_eq!(server.start_failures.get(&5), Some(&1));
        assert_eq!(report.problems.len(), 1);
        let started = SlotOutcome {
            started: Some(4),
            attempt: Some((4, true)),
            ..SlotOutcome::default()
        };
        started.count(&mut server, &mut report, &mut give_ups);
        assert_eq!(server.start_failures.get(&4), None);
        assert_eq!(report.started, [4]);
        let stopped = SlotOutcome {
            stopped: Some(6),
            ..SlotOutcome::default()
        };
        stopped.count(&mut server, &mut report, &mut give_ups);
        assert_eq!(report.stopped, [6]);
        assert!(give_ups.is_empty());
    }
}
