//! Gather: everything the tick reads before deciding, into one [`Snapshot`] that
//! the plan and the actions take — the server state, the slots' state files, Pod's
//! lives, BBB's meetings (only when a live runs here or a free slot could start
//! one) with the absences confirmed and the running streamers looked for among the
//! attendees, and the meetings of the waiting lives a free slot could take (read
//! from Pod beside getMeetings, reused by their start).
//!
//! It reads and reports what it could not read; it decides nothing and changes
//! nothing in Pod, BBB or docker. Deciding is `plan.rs`; acting is `apply`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use anyhow::{Result, anyhow};
use chrono::Utc;
use tracing::{debug, warn};

use super::ctx::{Ctx, MAX_START_ATTEMPTS};
use super::outcome::{ADVICE_BBB, ADVICE_POD, TickReport};
use crate::bbb::{BbbError, Presence, Watch};
use crate::compose;
use crate::config::Config;
use crate::mail;
use crate::model::{
    BbbMeeting, Company, InternalMeetingId, Live, LiveId, LiveStatus, Livestreams, MeetingId,
    Phase, PodMeeting, Problem, ProblemKey, RoomInfo, ServerState, SkippedRow, SlotState,
    WaitReason, Waiting,
};
use crate::plan::{self, MeetingsView, PlanInput};
use crate::pod::{ListMemory, TickRead};

/// What Pod, BBB and the slots said at the start of a tick (Pod's list was read).
#[derive(Debug)]
pub(super) struct Snapshot {
    /// Occupied slots (state file present), configured or left over.
    pub states: BTreeMap<u32, SlotState>,
    /// Slots whose state file is unreadable: busy, never touched.
    pub broken: BTreeSet<u32>,
    /// Pod's livestreams (the rows that parse).
    pub lives: Vec<Live>,
    /// The rows of Pod's list that do not parse: skipped, reported.
    pub skipped: Vec<SkippedRow>,
    /// Their ids, as the plan takes them.
    pub skipped_ids: BTreeSet<LiveId>,
    /// BBB's meetings, absences confirmed.
    pub meetings: MeetingsView,
    /// Meetings of the waiting lives a free slot could take, read from Pod.
    pub prefetched: HashMap<LiveId, PodMeeting>,
    /// The streamers among the attendees of the lives' meetings (health signal b).
    pub presence: Vec<Presence>,
    /// Who is in each running live's session besides our own users, where BBB said.
    pub company: BTreeMap<u32, Company>,
    /// Lives remembered waiting on older pages of Pod's list and not read this tick
    /// (no slot was free): nothing is decided on them, they are only listed waiting.
    pub unread_waiting: BTreeSet<LiveId>,
}

impl Snapshot {
    /// The plan's input: this snapshot, the configuration and the counts the server
    /// state keeps between ticks.
    pub fn plan_input<'a>(&'a self, cfg: &Config, server: &'a ServerState) -> PlanInput<'a> {
        PlanInput {
            number: cfg.server.number,
            slots: cfg.server.slots,
            end_confirmations: cfg.bbb.end_confirmations,
            max_attempts: MAX_START_ATTEMPTS,
            lives: &self.lives,
            meetings: &self.meetings,
            states: &self.states,
            broken: &self.broken,
            start_failures: &server.start_failures,
            waiting_meetings: &self.prefetched,
            skipped: &self.skipped_ids,
            stale_seen: &server.stale_seen,
            alone_ticks: cfg.bbb.alone_ticks,
            company: &self.company,
        }
    }

    /// The lives Pod shows waiting (or showed, for those not read this tick).
    pub fn waiting(&self) -> HashSet<LiveId> {
        self.lives
            .iter()
            .filter(|l| l.status == LiveStatus::Waiting)
            .map(|l| l.id)
            .chain(self.unread_waiting.iter().copied())
            .collect()
    }

    /// The lives not read this tick that wait for a slot, as the plan lists the others.
    pub fn unread_waiting(&self, server: &ServerState) -> impl Iterator<Item = Waiting> + '_ {
        let failures = server.start_failures.clone();
        self.unread_waiting.iter().map(move |&live| Waiting {
            live,
            reason: WaitReason::NoFreeSlot {
                failed: failures.get(&live).copied().unwrap_or(0),
                max: MAX_START_ATTEMPTS,
            },
        })
    }
}

/// The server state (failure counts, mail memory, counters); afresh if unreadable.
pub(super) fn server_state(ctx: &Ctx, report: &mut TickReport) -> ServerState {
    match ctx.slots.load_server_state() {
        Ok(s) => s,
        Err(e) => {
            report.problem(
                ProblemKey::ServerState,
                None,
                &e,
                "The failure counts and mail memory start afresh.",
            );
            Default::default()
        }
    }
}

/// Reads the slots, Pod and BBB. `None` when Pod's list could not be read (nothing
/// is started or stopped this tick); an error only when the slots cannot be listed.
pub(super) async fn gather(ctx: &Ctx, report: &mut TickReport) -> Result<Option<Snapshot>> {
    let (mut states, broken) = slot_states(ctx, report)?;
    ctx.reclaim_slugs(&states);
    let Some((Livestreams { lives, skipped }, unread_waiting)) =
        pod_lives(ctx, &states, report).await
    else {
        return Ok(None);
    };
    learn_sessions(ctx, &mut states).await;
    // Waiting lives that a free slot could take: their meetings are read now (8 at
    // a time, beside getMeetings), so that a request whose meeting BBB does not
    // run is never started, and the start path reuses what was read.
    let candidates = start_candidates(&lives, &states, ctx.cfg.server.slots);
    // A start interrupted by a crash is resumed only if BBB shows its session too.
    let resuming = states
        .values()
        .any(|s| s.phase == Phase::Starting && s.webinar.is_none());
    let ask_bbb = plan::needs_meetings(&states) || !candidates.is_empty() || resuming;
    let watch = watch(ctx, &states);
    let (meetings, prefetched) = tokio::join!(
        async {
            if ask_bbb {
                Some(ctx.bbb.meetings_watching(watch).await)
            } else {
                None
            }
        },
        prefetch_meetings(ctx, &candidates),
    );
    let (mut meetings, presence) = meetings_view(meetings, report);
    confirm_absences(ctx, &states, &mut meetings, report).await;
    let company = if ctx.cfg.bbb.alone_ticks > 0 {
        companies(ctx, &states, &presence)
    } else {
        BTreeMap::new()
    };
    let mut skipped_ids: BTreeSet<LiveId> = skipped.iter().filter_map(|s| s.id).collect();
    if skipped.iter().any(|s| s.id.is_none()) {
        // A row without a usable id may be any live: none of our slots' lives missing
        // from the list is taken as gone this tick.
        let listed: HashSet<LiveId> = lives.iter().map(|l| l.id).collect();
        skipped_ids.extend(
            states
                .values()
                .map(|s| s.live)
                .filter(|id| !listed.contains(id)),
        );
    }
    Ok(Some(Snapshot {
        states,
        broken,
        lives,
        skipped,
        skipped_ids,
        meetings,
        prefetched,
        presence,
        company,
        unread_waiting,
    }))
}

/// Who is in the running session of each running live besides our own users (as its
/// compose file names them). A live whose session is not listed running, or holds
/// none of our users and nobody else, is left out: nothing to judge this tick.
fn companies(
    ctx: &Ctx,
    states: &BTreeMap<u32, SlotState>,
    presence: &[Presence],
) -> BTreeMap<u32, Company> {
    states
        .iter()
        .filter(|(_, s)| s.phase == Phase::Running)
        .filter_map(|(&slot, s)| {
            let meeting = s.meeting_id.as_ref()?;
            let own = ctx.own_users(slot);
            let company = company_in(presence, meeting, s.session.as_ref(), &own)?;
            Some((slot, company))
        })
        .collect()
}

/// Who is in `meeting`'s running session (with `session` unknown: its running
/// sessions) besides `own`: someone else, or our own users only. `None` when it is not
/// listed running (created and not joined yet, or ended), or when nobody is in it —
/// not even our streamer yet.
fn company_in(
    presence: &[Presence],
    meeting: &MeetingId,
    session: Option<&InternalMeetingId>,
    own: &[String],
) -> Option<Company> {
    let mut running = presence
        .iter()
        .filter(|p| p.meeting_id == *meeting && p.running)
        .filter(|p| session.is_none_or(|s| p.internal_meeting_id == *s))
        .peekable();
    running.peek()?;
    let (mut others, mut ours) = (0u32, false);
    for p in running {
        others = others.saturating_add(p.others);
        for name in &p.names {
            if own.contains(name) {
                ours = true;
            } else {
                // Another slot's streamer: not one of this live's users.
                others = others.saturating_add(1);
            }
        }
    }
    if others > 0 {
        Some(Company::Others)
    } else if ours {
        Some(Company::OnlyUs)
    } else {
        None
    }
}

/// What getMeetings should look for: the meetings of the lives running here and
/// our own users' names in them (the slots' `BBB_USER_NAME` and `BBB_CHAT_NAME`).
/// Empty when neither the health checks nor the empty-room rule need them.
fn watch(ctx: &Ctx, states: &BTreeMap<u32, SlotState>) -> Watch {
    let mut watch = Watch::default();
    if !ctx.cfg.health.enabled && ctx.cfg.bbb.alone_ticks == 0 {
        return watch;
    }
    for (&slot, s) in states.iter().filter(|(_, s)| s.phase == Phase::Running) {
        if let Some(m) = &s.meeting_id {
            watch.meetings.insert(m.clone());
            watch.names.extend(ctx.own_users(slot));
        }
    }
    watch
}

/// A session absent from getMeetings is asked for by itself (`getMeetingInfo`) before
/// the sighting that would stop its live: Scalelite silently leaves out the meetings
/// of a node it finds offline. The answer names the session BBB holds for the room now:
/// ours and running → counted as listed and running; another session, or unknown to
/// BBB → stays absent (ended); any error → counted as running this tick (nothing is
/// stopped on a doubt) and reported.
async fn confirm_absences(
    ctx: &Ctx,
    states: &BTreeMap<u32, SlotState>,
    meetings: &mut MeetingsView,
    report: &mut TickReport,
) {
    let MeetingsView::Listed(listed) = meetings else {
        return;
    };
    let needed = ctx.cfg.bbb.end_confirmations.max(1);
    let doubtful: Vec<(LiveId, MeetingId, Option<InternalMeetingId>)> = states
        .values()
        .filter(|s| s.phase == Phase::Running && s.ended_seen + 1 >= needed)
        .filter_map(|s| Some((s.live, s.meeting_id.clone()?, s.session.clone())))
        .filter(|(_, m, session)| !listed.lists(m, session.as_ref()))
        .collect();
    let asks = doubtful
        .iter()
        .map(|(live, meeting_id, session)| async move {
            let answer = ctx.bbb.meeting_info(meeting_id).await;
            (*live, meeting_id, session, answer)
        });
    for (live, meeting_id, session, answer) in futures_util::future::join_all(asks).await {
        let session = session.as_ref();
        let entry = match answer {
            Ok(info) if info.runs(session) => {
                warn!(
                    live,
                    meeting_id = %meeting_id,
                    "session missing from getMeetings but running: not stopped"
                );
                running_entry(meeting_id, session)
            }
            Ok(RoomInfo::Session(other)) => {
                debug!(live, meeting_id = %meeting_id, now = %other.internal_meeting_id,
                    "session missing from getMeetings; BBB holds another (or ended) session for its room");
                other
            }
            Ok(RoomInfo::NotFound) => continue,
            Err(e) => {
                let e = anyhow!(e).context(format!(
                    "meeting {meeting_id:?} of live {live} is missing from getMeetings and getMeetingInfo failed (not stopped this tick)"
                ));
                report.problem(ProblemKey::MeetingInfo(live), Some(live), &e, ADVICE_BBB);
                running_entry(meeting_id, session)
            }
        };
        listed.add(entry);
    }
}

/// A listed, running entry for a live's session (or, unknown, its room).
fn running_entry(meeting_id: &MeetingId, session: Option<&InternalMeetingId>) -> BbbMeeting {
    BbbMeeting {
        meeting_id: meeting_id.clone(),
        internal_meeting_id: session.cloned().unwrap_or_default(),
        running: true,
        end_time: 0,
    }
}

/// The slots' state files; an unreadable one is reported and its slot kept busy.
fn slot_states(
    ctx: &Ctx,
    report: &mut TickReport,
) -> Result<(BTreeMap<u32, SlotState>, BTreeSet<u32>)> {
    let (states, broken_list) = ctx.slots.load_all()?;
    let mut broken = BTreeSet::new();
    for (slot, e) in broken_list {
        broken.insert(slot);
        report.problem(
            ProblemKey::SlotState(slot),
            None,
            &e,
            "Repair or remove the file; the slot stays busy meanwhile.",
        );
    }
    Ok((states, broken))
}

/// Running lives whose state does not name their BBB session (state files of older
/// versions, lives taken over from bbb-pod-live.php before this version) learn it from
/// their Pod meeting row, saved for the next ticks. A failed read leaves it unknown
/// this tick: the live is then judged by its room alone.
async fn learn_sessions(ctx: &Ctx, states: &mut BTreeMap<u32, SlotState>) {
    for (&slot, state) in states.iter_mut() {
        let Some(url) = state.meeting_url.clone() else {
            continue;
        };
        if state.phase != Phase::Running || state.session.is_some() {
            continue;
        }
        match ctx.pod.meeting(&url).await {
            Ok(m) if !m.internal_meeting_id.is_empty() => {
                state.session = Some(m.internal_meeting_id);
                if let Err(e) = ctx.slots.save(slot, state) {
                    warn!(
                        live = state.live,
                        slot, "saving the session of the live: {e:#}"
                    );
                }
                debug!(live = state.live, slot, session = ?state.session, "session learnt from Pod");
            }
            Ok(_) => {}
            Err(e) => debug!(
                live = state.live,
                slot, "reading the meeting of a live to learn its session: {e}"
            ),
        }
    }
}

/// Reports the rows of Pod's list that do not parse: as a WARN line (stderr, so cron
/// mails it) and in the error mail when first seen, then at most once an hour per row
/// (DEBUG in between). A warning, not a failed action: the exit code is not affected.
pub(super) fn report_skipped(
    skipped: &[SkippedRow],
    server_state: &mut ServerState,
    report: &mut TickReport,
) {
    let rows: Vec<Problem> = skipped
        .iter()
        .map(|s| Problem {
            key: match s.id {
                Some(id) => ProblemKey::Row(id),
                None => ProblemKey::RowWithoutId(s.reason.clone()),
            },
            live: s.id,
            what: format!(
                "a livestream row in Pod does not parse and is skipped: {}",
                s.reason
            ),
            advice: "Fix the row in Pod's admin (Livestreams); the other lives are started and \
                     stopped meanwhile, and a live this row runs here is left as it is."
                .to_owned(),
            gave_up: false,
        })
        .collect();
    let due = mail::select(&mut server_state.skipped_rows, &rows, Utc::now());
    for row in &rows {
        if due.iter().any(|d| d.key == row.key) {
            match row.live {
                Some(live) => warn!(live, "{}", row.what),
                None => warn!("{}", row.what),
            }
        } else {
            debug!(live = ?row.live, "{} (reported within the hour)", row.what);
        }
    }
    report.notices.extend(due);
}

/// The livestreams this tick decides on (`PodClient::tick_lives`: Pod's waiting and
/// running lives, and those of our slots whatever their status), and the waiting ones
/// remembered but not read; `None` (reported) when they cannot be read. What Pod's
/// list leaves for the next tick is kept in `base_dir`.
async fn pod_lives(
    ctx: &Ctx,
    states: &BTreeMap<u32, SlotState>,
    report: &mut TickReport,
) -> Option<(Livestreams, BTreeSet<LiveId>)> {
    if !ctx.cfg.pod.livestreams {
        return Some((without_pod_lives(states), BTreeSet::new()));
    }
    let ours: Vec<LiveId> = states.values().map(|s| s.live).collect();
    let base_dir = &ctx.cfg.server.base_dir;
    let read = TickRead {
        ours: &ours,
        number: ctx.cfg.server.number,
        now: ctx.now(),
        slot_free: (1..=ctx.cfg.server.slots).any(|s| !states.contains_key(&s)),
    };
    match ctx.pod.tick_lives(&read, ListMemory::load(base_dir)).await {
        Ok(read) => {
            debug!(
                how = ?read.how,
                lives = read.livestreams.lives.len(),
                unread_waiting = read.unread_waiting.len(),
                "Pod's livestreams read"
            );
            match &read.memory {
                Some(memory) => {
                    if let Err(e) = memory.save(base_dir) {
                        // Only costs a whole read next tick.
                        warn!("saving what Pod's list showed: {e:#}");
                    }
                }
                None => ListMemory::remove(base_dir),
            }
            Some((read.livestreams, read.unread_waiting))
        }
        Err(e) => {
            let e = anyhow!(e)
                .context("reading the livestreams from Pod (nothing started or stopped this tick)");
            report.problem(ProblemKey::Livestreams, None, &e, ADVICE_POD);
            None
        }
    }
}

/// `pod.livestreams = false` (a webinar-only server, Pod 3.8.2+): no Pod live is read.
/// A slot still holding one of Pod's lives (the key was changed under it) is left as it
/// is, as for a row that does not parse: never stopped for missing from a list not read.
fn without_pod_lives(states: &BTreeMap<u32, SlotState>) -> Livestreams {
    let skipped = states
        .iter()
        .filter(|(_, s)| s.webinar.is_none())
        .map(|(slot, s)| SkippedRow {
            id: Some(s.live),
            reason: format!(
                "live {} runs in slot {slot} while pod.livestreams = false: left as it is \
                 (stop it with `bbb-pod-live stop --slot {slot}`)",
                s.live
            ),
        })
        .collect();
    Livestreams {
        lives: Vec::new(),
        skipped,
    }
}

/// The waiting lives a free slot could take (none when every slot is busy), not
/// counting those a slot is already starting.
fn start_candidates<'a>(
    lives: &'a [Live],
    states: &BTreeMap<u32, SlotState>,
    slots: u32,
) -> Vec<&'a Live> {
    let free_slot = (1..=slots).any(|s| !states.contains_key(&s));
    if !free_slot {
        return Vec::new();
    }
    let starting: HashSet<LiveId> = states.values().map(|s| s.live).collect();
    lives
        .iter()
        .filter(|l| l.status == LiveStatus::Waiting && !starting.contains(&l.id))
        .collect()
}

/// getMeetings' answer: the meetings and the streamers watched among their attendees.
type Listing = Result<(Vec<BbbMeeting>, Vec<Presence>), BbbError>;

/// BBB's answer as the plan sees it, and the streamers it lists; a failed
/// getMeetings is reported.
fn meetings_view(
    answer: Option<Listing>,
    report: &mut TickReport,
) -> (MeetingsView, Vec<Presence>) {
    let view = match answer {
        Some(Ok((m, presence))) => {
            debug!(meetings = m.len(), "getMeetings answered");
            return (MeetingsView::listed(m), presence);
        }
        Some(Err(e)) => {
            let e = anyhow!(e)
                .context("asking BBB for its meetings (getMeetings; no live stopped this tick)");
            report.problem(ProblemKey::Meetings, None, &e, ADVICE_BBB);
            MeetingsView::Failed
        }
        None => MeetingsView::NotAsked,
    };
    (view, Vec::new())
}

/// Reads the meetings of `lives` from Pod, 8 at a time. A meeting that cannot be
/// read, or whose BBB id is unusable, is left out: such a live is judged by its start.
async fn prefetch_meetings(ctx: &Ctx, lives: &[&Live]) -> HashMap<LiveId, PodMeeting> {
    use futures_util::StreamExt;
    futures_util::stream::iter(
        lives
            .iter()
            .filter_map(|l| Some((l.id, l.meeting_url.clone()?))),
    )
    .map(|(id, url)| async move { (id, ctx.pod.meeting(&url).await) })
    .buffer_unordered(8)
    .filter_map(|(id, read)| async move {
        match read {
            Ok(m) if compose::usable_meeting_id(m.meeting_id.as_str().trim()) => Some((id, m)),
            Ok(_) => None,
            Err(e) => {
                debug!(live = id, "reading the meeting of a waiting live: {e}");
                None
            }
        }
    })
    .collect()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::fixtures::{
        config, live, meeting, pod_meeting, running_state, snapshot, waiting,
    };

    #[test]
    fn the_plan_input_is_the_snapshot_with_the_config_and_the_counts_kept_between_ticks() {
        let cfg = config(2, 3);
        let mut states = BTreeMap::new();
        states.insert(1, running_state(7, "m7"));
        let mut snap = snapshot(
            vec![waiting(8), live(7, LiveStatus::Running, Some("2/1"))],
            states,
            MeetingsView::listed(vec![meeting("m7", true, 0)]),
        );
        snap.broken.insert(3);
        snap.prefetched.insert(8, pod_meeting(8, "m8"));
        let mut server = ServerState::default();
        server.start_failures.insert(8, 2);
        server.stale_seen.insert(8, 1);

        let input = snap.plan_input(&cfg, &server);
        assert_eq!(input.number, 2);
        assert_eq!(input.slots, 3);
        assert_eq!(input.end_confirmations, cfg.bbb.end_confirmations);
        assert_eq!(input.max_attempts, MAX_START_ATTEMPTS);
        assert_eq!(input.lives, &snap.lives[..]);
        assert!(matches!(input.meetings, MeetingsView::Listed(m) if m.runs(&"m7".into(), None)));
        assert_eq!(input.states.keys().collect::<Vec<_>>(), [&1]);
        assert_eq!(input.broken, &BTreeSet::from([3]));
        assert_eq!(input.start_failures, &BTreeMap::from([(8, 2)]));
        assert_eq!(input.stale_seen, &BTreeMap::from([(8, 1)]));
        assert_eq!(
            input
                .waiting_meetings
                .get(&8)
                .map(|m| m.meeting_id.as_str()),
            Some("m8")
        );
    }

    #[test]
    fn the_plan_of_a_snapshot_starts_a_waiting_live_whose_meeting_runs() {
        let cfg = config(1, 1);
        let mut snap = snapshot(
            vec![waiting(5)],
            BTreeMap::new(),
            MeetingsView::listed(vec![meeting("m5", true, 0)]),
        );
        snap.prefetched.insert(5, pod_meeting(5, "m5"));
        let decided = plan::plan(snap.plan_input(&cfg, &ServerState::default()));
        assert_eq!(decided.actions, [plan::Action::Start { slot: 1, live: 5 }]);
        // The same live, its meeting ended in BBB: never started.
        snap.meetings = MeetingsView::listed(vec![meeting("m5", false, 1_700_000_000_000)]);
        let decided = plan::plan(snap.plan_input(&cfg, &ServerState::default()));
        assert_eq!(
            decided.actions,
            [plan::Action::SeenStale { live: 5, seen: 1 }]
        );
    }

    fn seen(meeting: &str, internal: &str, running: bool, names: &[&str], others: u32) -> Presence {
        Presence {
            meeting_id: meeting.into(),
            internal_meeting_id: internal.into(),
            running,
            names: names.iter().map(|n| n.to_string()).collect(),
            others,
        }
    }

    #[test]
    fn a_room_is_empty_when_only_our_own_users_are_in_its_running_session() {
        let own = ["Live".to_owned(), "Chat".to_owned()];
        let company = |p: &[Presence], session: Option<&str>| {
            let session = session.map(InternalMeetingId::new);
            company_in(p, &MeetingId::new("m"), session.as_ref(), &own)
        };
        assert_eq!(
            company(&[seen("m", "m-1", true, &["Live"], 0)], None),
            Some(Company::OnlyUs)
        );
        assert_eq!(
            company(&[seen("m", "m-1", true, &["Live", "Chat"], 0)], Some("m-1")),
            Some(Company::OnlyUs)
        );
        assert_eq!(
            company(&[seen("m", "m-1", true, &["Chat"], 0)], None),
            Some(Company::OnlyUs),
            "the chat relay alone keeps the session running too"
        );
        assert_eq!(
            company(&[seen("m", "m-1", true, &["Live"], 1)], None),
            Some(Company::Others)
        );
        assert_eq!(
            company(&[seen("m", "m-1", true, &["Live", "Live 2"], 0)], None),
            Some(Company::Others),
            "another slot's streamer is not this live's"
        );
        // Nobody at all (our streamer not in yet), not running, another session, absent.
        assert_eq!(company(&[seen("m", "m-1", true, &[], 0)], None), None);
        assert_eq!(
            company(&[seen("m", "m-1", false, &["Live"], 0)], None),
            None
        );
        assert_eq!(
            company(&[seen("m", "m-2", true, &["Live"], 0)], Some("m-1")),
            None
        );
        assert_eq!(company(&[seen("x", "x-1", true, &["Live"], 0)], None), None);
        assert_eq!(company(&[], None), None);
        // The session's own entry decides, not another session of the room.
        let both = [
            seen("m", "m-1", true, &["Live"], 0),
            seen("m", "m-2", true, &[], 3),
        ];
        assert_eq!(company(&both, Some("m-1")), Some(Company::OnlyUs));
    }

    #[test]
    fn only_the_waiting_lives_are_waiting() {
        let snap = snapshot(
            vec![
                waiting(1),
                live(2, LiveStatus::Running, Some("1/1")),
                live(3, LiveStatus::Stopped, None),
                waiting(4),
            ],
            BTreeMap::new(),
            MeetingsView::NotAsked,
        );
        assert_eq!(snap.waiting(), HashSet::from([1, 4]));
    }

    #[test]
    fn start_candidates_are_waiting_lives_not_in_a_slot_and_only_with_a_free_slot() {
        let lives = vec![
            waiting(1),
            waiting(2),
            live(3, LiveStatus::Running, Some("1/2")),
            live(4, LiveStatus::Stopped, None),
        ];
        let mut states = BTreeMap::new();
        // Live 2's start was interrupted in slot 1: it is not a candidate.
        states.insert(1, SlotState::new(2, chrono::Utc::now()));
        let ids = |c: Vec<&Live>| c.iter().map(|l| l.id).collect::<Vec<_>>();
        assert_eq!(ids(start_candidates(&lives, &states, 2)), [1]);
        // Every configured slot busy: nothing is read ahead.
        assert!(start_candidates(&lives, &states, 1).is_empty());
        // A leftover slot beyond the configured ones does not make one busy.
        let mut leftover = BTreeMap::new();
        leftover.insert(5, running_state(3, "m3"));
        assert_eq!(ids(start_candidates(&lives, &leftover, 1)), [1, 2]);
    }

    #[test]
    fn bbb_answers_become_the_view_the_plan_takes_and_a_failure_is_reported() {
        let mut report = TickReport::default();
        assert!(matches!(
            meetings_view(None, &mut report),
            (MeetingsView::NotAsked, _)
        ));
        let seen = Presence {
            meeting_id: "a".into(),
            internal_meeting_id: "a-i".into(),
            running: true,
            names: vec!["Live".into()],
            others: 2,
        };
        let (listed, presence) = meetings_view(
            Some(Ok((vec![meeting("a", true, 0)], vec![seen.clone()]))),
            &mut report,
        );
        assert!(matches!(listed, MeetingsView::Listed(m) if m.len() == 1));
        assert_eq!(presence, [seen]);
        assert!(report.problems.is_empty());

        let (failed, presence) =
            meetings_view(Some(Err(BbbError::Http { status: 502 })), &mut report);
        assert!(matches!(failed, MeetingsView::Failed));
        assert!(presence.is_empty());
        assert_eq!(report.problems.len(), 1);
        let p = &report.problems[0];
        assert_eq!(p.key, "bbb:getMeetings");
        assert_eq!(p.live, None);
        assert!(p.what.contains("no live stopped this tick"), "{}", p.what);
        assert!(p.what.contains("HTTP 502"), "{}", p.what);
        assert_eq!(p.advice, ADVICE_BBB);
    }
}
