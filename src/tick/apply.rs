//! Apply: the plan's actions, those of different slots concurrently (one task per
//! slot), then the lives given up, with the failure counts and stale sightings
//! kept in the server state.
//!
//! It dispatches each action to its stage (`start`, `stop`); it does not decide
//! (`plan.rs`) nor know how a start or a stop is done.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::anyhow;
use chrono::Utc;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use super::broadcaster::InUse;
use super::report::{ADVICE_POD, ADVICE_START, TickReport, problem};
use super::start::{
    ClaimLost, adopt, finish_start, give_up, pod_unavailable, revert, start, undo_start,
};
use super::stop::{close_stale, note_ended_seen, stop_into};
use super::{Ctx, MAX_START_ATTEMPTS, send};
use crate::model::{Live, LiveId, PodMeeting, Problem};
use crate::plan::{self, Action};
use crate::slots::{SlotState, StopReason};

/// Result of the work in one slot.
#[derive(Default)]
pub(super) struct SlotOutcome {
    pub(super) problems: Vec<Problem>,
    pub(super) started: Option<LiveId>,
    pub(super) stopped: Option<LiveId>,
    /// (live, start succeeded?) for the failure counts.
    pub(super) attempt: Option<(LiveId, bool)>,
}

impl SlotOutcome {
    pub(super) fn start_failed(&mut self, live: LiveId, e: &anyhow::Error) {
        self.problems.push(problem(
            format!("start:{live}"),
            Some(live),
            e,
            ADVICE_START,
        ));
    }
}

/// What the concurrent slot actions of one tick share.
pub(super) struct Shared {
    lives: HashMap<LiveId, Live>,
    in_use: InUse,
    /// Waiting lives the plan found no slot for, oldest first: with `[cluster]`, a slot
    /// whose planned live was claimed by another server takes the next of these.
    standby: std::sync::Mutex<std::collections::VecDeque<LiveId>>,
    /// Meetings of waiting lives read before planning (the start path reuses them).
    prefetched: HashMap<LiveId, PodMeeting>,
}

impl Shared {
    pub(super) fn next_standby(&self) -> Option<LiveId> {
        self.standby
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }
}

pub(super) async fn apply(
    ctx: &Arc<Ctx>,
    decided: plan::Plan,
    prefetched: HashMap<LiveId, PodMeeting>,
    lives: &[Live],
    mut states: BTreeMap<u32, SlotState>,
    server_state: &mut crate::slots::ServerState,
    report: &mut TickReport,
) {
    let lives: HashMap<LiveId, Live> = lives.iter().map(|l| (l.id, l.clone())).collect();
    let shared = Arc::new(Shared {
        in_use: InUse::new(lives.values()),
        lives,
        standby: std::sync::Mutex::new(decided.standby.into()),
        prefetched,
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
                    Err(e) => report.problem(format!("stale:{live}"), Some(live), &e, ADVICE_POD),
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
                    "internal:task",
                    None,
                    &e,
                    "This is a bug; the slot's state file is intact.",
                );
                continue;
            }
        };
        report.problems.extend(outcome.problems);
        report.started.extend(outcome.started);
        report.stopped.extend(outcome.stopped);
        match outcome.attempt {
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
    server_state.stale_seen = stale_seen;
    for (live, attempts) in give_ups {
        let meeting_url = lives.get(&live).and_then(|l| l.meeting_url.as_deref());
        match give_up(ctx, live, attempts, meeting_url).await {
            Ok(p) => {
                server_state.start_failures.remove(&live);
                report.problems.extend(p);
            }
            Err(e) => report.problem(format!("giveup:{live}"), Some(live), &e, ADVICE_POD),
        }
    }
}

pub(super) async fn apply_slot(
    ctx: Arc<Ctx>,
    action: Action,
    state: Option<SlotState>,
    shared: Arc<Shared>,
) -> SlotOutcome {
    let (ctx, lives, running) = (&*ctx, &shared.lives, &shared.in_use);
    let mut out = SlotOutcome::default();
    let mut state = state;
    match action {
        Action::Start { slot, mut live } | Action::ResumeStart { slot, mut live } => {
            // A resumed start renews its claim too: if it ran out while the start was
            // interrupted, another server may be starting the live now.
            while let Some(claimer) = &ctx.claimer {
                match send(claimer.claim(live)).await {
                    Ok(true) => break,
                    Ok(false) => {
                        debug!(live, "claimed by another server");
                        if let Some(mut s) = state.take() {
                            warn!(
                                live,
                                slot,
                                "another server claimed this live while its start here was interrupted; undoing ours"
                            );
                            // Same live, same broadcaster name: the other server reuses it.
                            s.broadcaster = None;
                            if let Err(e) = send(undo_start(ctx, slot, s, false)).await {
                                out.start_failed(live, &e);
                            }
                            return out;
                        }
                        // The slot is free: the next waiting live nobody planned here.
                        match shared.next_standby() {
                            Some(next) => live = next,
                            None => return out,
                        }
                    }
                    Err(e) => {
                        out.problems.push(problem(
                            "cluster:claim",
                            Some(live),
                            &e,
                            "No live is started while the cluster Redis is unreachable; check cluster.redis_url.",
                        ));
                        return out;
                    }
                }
            }
            let Some(l) = lives.get(&live) else {
                return out;
            };
            let state = state.unwrap_or_else(|| SlotState::new(live, Utc::now()));
            let prefetched = shared.prefetched.get(&live);
            match send(start(ctx, slot, l, state, running, prefetched)).await {
                Ok(mail_problem) => {
                    out.started = Some(live);
                    out.attempt = Some((live, true));
                    out.problems.extend(mail_problem);
                }
                Err(e) if e.chain().any(|c| c.is::<ClaimLost>()) => {
                    warn!(live, slot, "{e:#}");
                }
                Err(e) => {
                    error!(live, slot, "start failed: {e:#}");
                    // Pod down or restarting is not this live's fault: such an attempt is
                    // not counted towards closing the live (it is retried, mailed hourly).
                    out.attempt = if pod_unavailable(&e) {
                        warn!(live, "Pod was unavailable: not counted as a failed attempt");
                        None
                    } else {
                        Some((live, false))
                    };
                    out.start_failed(live, &e);
                }
            }
        }
        Action::FinishStart { slot, .. } => {
            if let Some(s) = state {
                finish_start(ctx, slot, s, &mut out);
            }
        }
        Action::AbandonStart { slot, live } => {
            if let Some(mut s) = state {
                // Missing from the list: ask Pod for that one live before undoing, as a
                // stop does. If the interrupted start did tell Pod, it is running here.
                let confirmed;
                let listed = match lives.get(&live) {
                    Some(l) => Some(l),
                    None => match send(ctx.pod.livestream(live)).await {
                        Ok(l) => {
                            confirmed = l;
                            confirmed.as_ref()
                        }
                        Err(e) => {
                            let e = anyhow!(e).context(format!(
                                "live {live} is missing from Pod's list; its interrupted start is undone once Pod confirms"
                            ));
                            out.start_failed(live, &e);
                            return out;
                        }
                    },
                };
                if let Some(l) = listed
                    && l.runs_in(ctx.cfg.server.number, slot)
                {
                    finish_start(ctx, slot, s, &mut out);
                    return out;
                }
                // Started elsewhere (another server) with the broadcaster this attempt
                // made or reused: it is that live's now, not ours to delete.
                let theirs = listed.and_then(|l| l.broadcaster_id);
                if theirs.is_some() && s.broadcaster.as_ref().map(|b| b.id) == theirs {
                    s.broadcaster = None;
                }
                if let Err(e) = send(undo_start(ctx, slot, s, false)).await {
                    out.start_failed(live, &e);
                }
            }
        }
        Action::Revert { slot, live } => {
            if let Some(s) = state
                && let Err(e) = send(revert(ctx, slot, s, lives.get(&live))).await
            {
                out.problems.push(problem(
                    format!("revert:{live}"),
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
                    .push(problem(format!("adopt:{live}"), Some(live), &e, ADVICE_POD));
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
        Action::Stop { slot, live, reason } => {
            // A row can be missed by a paginated read when rows shift between pages
            // (pod.rs): confirm a vanished live directly before stopping it.
            if reason == StopReason::RemovedFromPod {
                match send(ctx.pod.livestream(live)).await {
                    Ok(None) => {}
                    Ok(Some(l)) if l.runs_in(ctx.cfg.server.number, slot) => {
                        warn!(
                            live,
                            slot,
                            "live missing from Pod's list but still running there; not stopped"
                        );
                        return out;
                    }
                    Ok(Some(_)) => {}
                    Err(e) => {
                        let e = anyhow!(e).context("confirming that the live was deleted from Pod");
                        out.problems.push(problem(
                            format!("stop:{live}"),
                            Some(live),
                            &e,
                            ADVICE_POD,
                        ));
                        return out;
                    }
                }
            }
            if let Some(s) = state {
                send(stop_into(
                    ctx,
                    slot,
                    s,
                    Some(reason),
                    lives.get(&live),
                    &mut out,
                ))
                .await;
            }
        }
        Action::ResumeStop { slot, live } => {
            if let Some(s) = state {
                send(stop_into(ctx, slot, s, None, lives.get(&live), &mut out)).await;
            }
        }
        Action::GiveUp { .. } | Action::SeenStale { .. } | Action::CloseStale { .. } => {}
    }
    out
}
