//! The check of the running streamers: a live whose meeting goes on but whose
//! streamer container is gone is reported (Pod shows it, viewers see nothing).
//!
//! It restarts nothing and stops nothing; it only reads `docker compose ps`.

use std::collections::HashSet;

use anyhow::anyhow;
use tracing::debug;

use super::Ctx;
use super::gather::Snapshot;
use super::report::TickReport;
use crate::compose;
use crate::model::LiveId;
use crate::plan::{Action, MeetingsView, Plan};
use crate::slots::Phase;

/// Lives running here whose meeting BBB still runs, left alone by this tick's
/// actions: their streamer is checked after the actions. None when getMeetings was
/// not asked or failed.
pub(super) fn watched(snapshot: &Snapshot, decided: &Plan) -> Vec<(u32, LiveId)> {
    let MeetingsView::Listed(listed) = &snapshot.meetings else {
        return Vec::new();
    };
    let acted: HashSet<u32> = decided.actions.iter().filter_map(Action::slot).collect();
    snapshot
        .states
        .iter()
        .filter(|(slot, s)| s.phase == Phase::Running && !acted.contains(slot))
        .filter(|(_, s)| {
            s.meeting_id
                .as_deref()
                .and_then(|m| listed.get(m))
                .is_some_and(|m| !m.has_ended())
        })
        .map(|(&slot, s)| (slot, s.live))
        .collect()
}

/// Reports each watched live whose streamer container is not running (it died, and
/// Docker gave up restarting it): Pod shows the live, viewers see nothing. Nothing is
/// restarted automatically (a streamer failing at start-up would loop); the admin
/// decides. A failing `docker compose ps` is only logged.
pub(super) async fn check_streamers(ctx: &Ctx, watched: &[(u32, LiveId)], report: &mut TickReport) {
    let checks = watched.iter().map(|&(slot, live)| async move {
        let dir = ctx.slots.dir(slot);
        (slot, live, ctx.docker.running_services(&dir).await)
    });
    for (slot, live, result) in futures_util::future::join_all(checks).await {
        match result {
            Ok(services) if services.iter().any(|s| s == compose::STREAMER_SERVICE) => {}
            // Not a list of service names: docker's output cannot be trusted, so it
            // proves nothing either way.
            Ok(services)
                if services.iter().any(|s| {
                    !s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                }) =>
            {
                debug!(live, slot, "docker compose ps gave an unreadable answer");
            }
            Ok(_) => {
                let e = anyhow!(
                    "the streamer of live {live} (slot {slot}) is not running while its meeting goes on: viewers see nothing"
                );
                report.problem(
                    format!("streamer:{live}"),
                    Some(live),
                    &e,
                    &format!(
                        "See `docker compose logs {}` in {}; `bbb-pod-live stop --live {live}`, then the teacher asks Pod again.",
                        compose::STREAMER_SERVICE,
                        ctx.slots.dir(slot).display()
                    ),
                );
            }
            Err(e) => debug!(live, slot, "docker compose ps: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::slots::SlotState;
    use crate::tick::fixtures::{meeting, running_state, snapshot};

    fn plan_of(actions: Vec<Action>) -> Plan {
        Plan {
            actions,
            ..Plan::default()
        }
    }

    #[test]
    fn running_lives_whose_meeting_goes_on_and_no_action_touches_are_watched() {
        let mut states = BTreeMap::new();
        states.insert(1, running_state(11, "goes-on"));
        states.insert(2, running_state(12, "ended"));
        states.insert(3, running_state(13, "absent"));
        states.insert(4, running_state(14, "created-not-joined"));
        states.insert(5, running_state(15, "acted-on"));
        states.insert(6, SlotState::new(16, chrono::Utc::now()));
        let mut unknown = running_state(17, "x");
        unknown.meeting_id = None;
        states.insert(7, unknown);
        let snap = snapshot(
            Vec::new(),
            states,
            MeetingsView::listed(vec![
                meeting("goes-on", true, 0),
                meeting("ended", false, 1_700_000_000_000),
                meeting("created-not-joined", false, 0),
                meeting("acted-on", true, 0),
            ]),
        );
        let decided = plan_of(vec![Action::SeenRunning { slot: 5, live: 15 }]);
        assert_eq!(watched(&snap, &decided), [(1, 11), (4, 14)]);
    }

    #[test]
    fn nothing_is_watched_without_a_successful_getmeetings() {
        let mut states = BTreeMap::new();
        states.insert(1, running_state(11, "m"));
        for meetings in [MeetingsView::Failed, MeetingsView::NotAsked] {
            let snap = snapshot(Vec::new(), states.clone(), meetings);
            assert!(watched(&snap, &Plan::default()).is_empty());
        }
    }
}
