//! The decision of one tick, as a pure function: (Pod's lives, BBB's meetings, the
//! slots' states, failed attempts) → actions. It knows no HTTP, docker or file
//! system, so every rule about *what* to do (README, "What one tick does") is tested
//! here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{
    Alone, BbbMeeting, Company, InternalMeetingId, Live, LiveId, LiveStatus, Phase, PodMeeting,
    ServerNumber, Sessions, SlotState, StopReason, WaitReason, Waiting,
};

/// What BBB told us this tick.
#[derive(Debug, Clone)]
pub enum MeetingsView {
    /// Not asked (this server runs no live).
    NotAsked,
    /// getMeetings failed in some way: nothing may be stopped on its account.
    Failed,
    /// A successful answer, by session (one room may be listed under several).
    Listed(Sessions),
}

impl MeetingsView {
    pub fn listed(meetings: Vec<BbbMeeting>) -> MeetingsView {
        MeetingsView::Listed(Sessions::new(meetings))
    }
}

/// Inputs of [`plan`].
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// `server.number`.
    pub number: ServerNumber,
    /// `server.slots`: new lives only go to slots 1..=slots.
    pub slots: u32,
    pub end_confirmations: u32,
    /// Failed start attempts after which a live is closed in Pod.
    pub max_attempts: u32,
    pub lives: &'a [Live],
    pub meetings: &'a MeetingsView,
    /// Occupied slots (state file present), configured or left over.
    pub states: &'a BTreeMap<u32, SlotState>,
    /// Slots whose state file is unreadable: busy, never touched.
    pub broken: &'a BTreeSet<u32>,
    pub start_failures: &'a BTreeMap<LiveId, u32>,
    /// The Pod meeting (BBB room and session) of each waiting live whose meeting Pod
    /// gave this tick.
    pub waiting_meetings: &'a HashMap<LiveId, PodMeeting>,
    /// Lives whose row in Pod's list does not parse: neither started nor stopped, and a
    /// slot running one is left alone.
    pub skipped: &'a BTreeSet<LiveId>,
    /// Consecutive earlier ticks that saw a waiting live's meeting absent or ended.
    pub stale_seen: &'a BTreeMap<LiveId, u32>,
    /// `bbb.alone_ticks`: 0 never stops a live for an empty room.
    pub alone_ticks: u32,
    /// Who this tick found in the running session of each running slot's live, when
    /// BBB said (absent: not read, not running, or our streamer not in it yet).
    pub company: &'a BTreeMap<u32, Company>,
}

/// What a plan holds: the actions of [`crate::model::Action`], named here too since
/// deciding them is this module's work.
pub use crate::model::Action;

/// The tick's decisions, plus remarks for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Odd situations that need no action but deserve a warning.
    pub warnings: Vec<String>,
    /// Normal situations worth a line in the log (a live waiting for a free slot).
    pub notes: Vec<String>,
    /// Waiting lives left without a slot, oldest first (taken by a slot whose planned
    /// live another server claimed first).
    pub standby: Vec<LiveId>,
    /// Waiting lives not started this tick, with the reason (oldest first).
    pub waiting: Vec<Waiting>,
}

/// Decides one tick: first the slots with a state, then the slots Pod shows busy
/// without one, then the waiting lives in the slots left free.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let mut out = Plan::default();
    let mut sorted: Vec<&Live> = input.lives.iter().collect();
    sorted.sort_by_key(|l| l.id);
    // Lives Pod shows running on this server, by slot (lowest id first on conflicts).
    let mut pod_running: BTreeMap<u32, Vec<&Live>> = BTreeMap::new();
    for l in &sorted {
        if l.status == LiveStatus::Running
            && let Some(slot) = l.slot_on(input.number)
        {
            pod_running.entry(slot).or_default().push(l);
        }
    }
    let mut taken = Taken {
        slots: input.broken.clone(),
        lives: BTreeSet::new(),
    };
    plan_slots(&input, &pod_running, &mut taken, &mut out);
    plan_adoptions(&pod_running, &mut taken, &mut out);
    plan_waiting(&input, &sorted, &taken, &mut out);
    out
}

/// What the earlier stages of [`plan`] took.
struct Taken {
    /// Busy slots: with a state, unreadable, or adopted.
    slots: BTreeSet<u32>,
    /// Lives a slot already handles.
    lives: BTreeSet<LiveId>,
}

/// Stage 1, slots with a state: finish, stop or watch their live.
fn plan_slots(
    input: &PlanInput<'_>,
    pod_running: &BTreeMap<u32, Vec<&Live>>,
    taken: &mut Taken,
    out: &mut Plan,
) {
    let lives: HashMap<LiveId, &Live> = input.lives.iter().map(|l| (l.id, l)).collect();
    let in_our_slot = |l: &Live, slot: u32| l.runs_in(input.number, slot);
    for (&slot, state) in input.states {
        taken.slots.insert(slot);
        taken.lives.insert(state.live);
        if state.webinar.is_some() {
            // A webinar of `serve`: Pod lists no livestream for it (webinar_step).
            continue;
        }
        let live = lives.get(&state.live).copied();
        let id = state.live;
        if live.is_none() && input.skipped.contains(&id) {
            // Its row does not parse: we cannot tell what Pod says, so nothing changes
            // (the slot stays busy, the container runs on).
            out.notes.push(format!(
                "live {id} (slot {slot}): its row in Pod does not parse; left as it is"
            ));
            continue;
        }
        match state.phase {
            Phase::Stopping => out.actions.push(Action::ResumeStop { slot, live: id }),
            Phase::Reverting => out.actions.push(Action::Revert { slot, live: id }),
            Phase::Starting => match live {
                Some(l) if l.status == LiveStatus::Waiting => {
                    out.actions.push(Action::ResumeStart { slot, live: id })
                }
                Some(l) if in_our_slot(l, slot) => {
                    out.actions.push(Action::FinishStart { slot, live: id })
                }
                _ => out.actions.push(Action::AbandonStart { slot, live: id }),
            },
            Phase::Running => {
                let reason = match live {
                    None => Some(StopReason::RemovedFromPod),
                    Some(l) if in_our_slot(l, slot) => None,
                    Some(l) if l.status == LiveStatus::Stopped => Some(StopReason::ClosedInPod),
                    Some(_) => Some(StopReason::NoLongerOurs),
                };
                // Closed or deleted in Pod while its streamer showed the room's next
                // class (seen only now: Pod or BBB could not be read meanwhile).
                let reason = match reason {
                    Some(StopReason::ClosedInPod | StopReason::RemovedFromPod)
                        if in_other_session(input.meetings, state) =>
                    {
                        Some(StopReason::OtherSession)
                    }
                    other => other,
                };
                if let Some(reason) = reason {
                    out.actions.push(Action::Stop {
                        slot,
                        live: id,
                        reason,
                    });
                    continue;
                }
                watch_meeting(input, slot, state, out);
            }
        }
        // Another live claiming this slot in Pod is a conflict we do not resolve.
        for other in pod_running.get(&slot).into_iter().flatten() {
            if other.id != state.live {
                out.warnings.push(format!(
                    "live {} claims slot {slot} in Pod, which runs live {}: left alone",
                    other.id, state.live
                ));
            }
        }
    }
}

/// Stage 2, slots Pod says are busy but for which we have no state: adopt.
fn plan_adoptions(pod_running: &BTreeMap<u32, Vec<&Live>>, taken: &mut Taken, out: &mut Plan) {
    for (&slot, claimants) in pod_running {
        if taken.slots.contains(&slot) {
            continue;
        }
        let Some(first) = claimants.first() else {
            continue;
        };
        if slot == 0 {
            out.warnings.push(format!(
                "live {} runs on slot 0 of this server in Pod: left alone",
                first.id
            ));
            continue;
        }
        taken.slots.insert(slot);
        taken.lives.insert(first.id);
        out.actions.push(Action::Adopt {
            slot,
            live: first.id,
        });
        for other in &claimants[1..] {
            out.warnings.push(format!(
                "live {} also claims slot {slot} in Pod, taken over for live {}: left alone",
                other.id, first.id
            ));
        }
    }
}

/// Stage 3, waiting lives, oldest first: close the duplicates and the stale ones, give
/// up on those that failed too often, start the others in the free slots.
fn plan_waiting(input: &PlanInput<'_>, sorted: &[&Live], taken: &Taken, out: &mut Plan) {
    let mut free = (1..=input.slots)
        .filter(|s| !taken.slots.contains(s))
        .peekable();
    let mut streamed = Streamed::new(input, sorted);
    for l in sorted.iter().filter(|l| l.status == LiveStatus::Waiting) {
        if taken.lives.contains(&l.id) {
            continue;
        }
        let meeting = input.waiting_meetings.get(&l.id);
        // One streamer per session: the oldest request is kept.
        if let Some(kept) = streamed.holder(l, meeting) {
            out.actions
                .push(Action::CloseDuplicate { live: l.id, kept });
            continue;
        }
        streamed.add(l, meeting);
        // A request whose session BBB does not run (ended, never ran here, or its room
        // now runs another session) is never started: Pod 3.1+ lists every live ever
        // made, and the PHP script left lives at status 0 on Pod >= 2.9.3. Only on a
        // successful getMeetings.
        if let (MeetingsView::Listed(meetings), Some(m)) = (input.meetings, meeting)
            && meetings.session_over(&m.meeting_id, Some(&m.internal_meeting_id))
        {
            let seen = input.stale_seen.get(&l.id).copied().unwrap_or(0) + 1;
            if seen >= input.end_confirmations.max(1) {
                out.actions.push(Action::CloseStale { live: l.id, seen });
            } else {
                out.actions.push(Action::SeenStale { live: l.id, seen });
                out.waiting.push(Waiting {
                    live: l.id,
                    reason: WaitReason::MeetingNotRunning {
                        seen,
                        needed: input.end_confirmations.max(1),
                    },
                });
            }
            continue;
        }
        let attempts = input.start_failures.get(&l.id).copied().unwrap_or(0);
        if attempts >= input.max_attempts {
            out.actions.push(Action::GiveUp {
                live: l.id,
                attempts,
            });
            continue;
        }
        let shown = session_shown(input.meetings, l, meeting);
        let reason = match (shown, free.peek()) {
            (Ok(()), Some(&slot)) => {
                free.next();
                out.actions.push(Action::Start { slot, live: l.id });
                continue;
            }
            (Err(reason), Some(_)) => reason,
            (judged, None) => {
                if judged.is_ok() {
                    // Started instead of a planned live another server claimed first.
                    out.standby.push(l.id);
                }
                WaitReason::NoFreeSlot {
                    failed: attempts,
                    max: input.max_attempts,
                }
            }
        };
        let waiting = Waiting { live: l.id, reason };
        out.notes.push(waiting.to_string());
        out.waiting.push(waiting);
    }
}

/// Whether BBB, read this tick, shows the waiting live's own session (its Pod meeting's
/// `internal_meeting_id`) created or running: only then may a streamer be started. It
/// waits on the room's meeting id, so a streamer started for a session that is over
/// would show the room's next class under this live's name. A live whose meeting was
/// not read before planning is judged by its start, once the start has read it (an
/// unreadable meeting is the start's error, reported and counted as such); one without
/// a meeting link is left to its start too, which fails (it can never run).
pub fn session_shown(
    meetings: &MeetingsView,
    live: &Live,
    meeting: Option<&PodMeeting>,
) -> Result<(), WaitReason> {
    if live.meeting_url.is_none() {
        return Ok(());
    }
    let MeetingsView::Listed(listed) = meetings else {
        return Err(WaitReason::BbbUnreadable);
    };
    let Some(m) = meeting else {
        return Ok(());
    };
    // A meeting row without its session id (never written by Pod's `bbb` module) is
    // judged by its room.
    let session = Some(&m.internal_meeting_id).filter(|s| !s.is_empty());
    if listed.runs(&m.meeting_id, session) {
        Ok(())
    } else {
        Err(WaitReason::SessionNotShown)
    }
}

/// Which live streams (or was kept to stream) each session, by its Pod meeting URL
/// and, when known, its `internal_meeting_id`: the lives of this server's slots, the
/// lives Pod shows running on any server, and the waiting lives kept this tick.
struct Streamed {
    by_meeting: HashMap<String, LiveId>,
    by_session: HashMap<InternalMeetingId, LiveId>,
}

impl Streamed {
    fn new(input: &PlanInput<'_>, sorted: &[&Live]) -> Streamed {
        let mut s = Streamed {
            by_meeting: HashMap::new(),
            by_session: HashMap::new(),
        };
        for state in input.states.values() {
            if matches!(state.phase, Phase::Starting | Phase::Running) {
                if let Some(url) = &state.meeting_url {
                    s.by_meeting.entry(url.clone()).or_insert(state.live);
                }
                if let Some(session) = &state.session {
                    s.by_session.entry(session.clone()).or_insert(state.live);
                }
            }
        }
        for l in sorted.iter().filter(|l| l.status == LiveStatus::Running) {
            if let Some(url) = &l.meeting_url {
                s.by_meeting.entry(url.clone()).or_insert(l.id);
            }
        }
        s
    }

    /// The live already holding the session of `l`, if another one does.
    fn holder(&self, l: &Live, meeting: Option<&PodMeeting>) -> Option<LiveId> {
        let by_url = l.meeting_url.as_ref().and_then(|u| self.by_meeting.get(u));
        let by_session = meeting
            .filter(|m| !m.internal_meeting_id.is_empty())
            .and_then(|m| self.by_session.get(&m.internal_meeting_id));
        by_url.or(by_session).copied().filter(|&kept| kept != l.id)
    }

    fn add(&mut self, l: &Live, meeting: Option<&PodMeeting>) {
        if let Some(url) = &l.meeting_url {
            self.by_meeting.entry(url.clone()).or_insert(l.id);
        }
        if let Some(m) = meeting.filter(|m| !m.internal_meeting_id.is_empty()) {
            self.by_session
                .entry(m.internal_meeting_id.clone())
                .or_insert(l.id);
        }
    }
}

/// Stop rule for a running live: only on a successful getMeetings, only after
/// `end_confirmations` consecutive ticks saw the meeting absent or ended.
fn watch_meeting(input: &PlanInput<'_>, slot: u32, state: &SlotState, out: &mut Plan) {
    let MeetingsView::Listed(meetings) = input.meetings else {
        return;
    };
    let Some(meeting_id) = &state.meeting_id else {
        out.warnings.push(format!(
            "live {} (slot {slot}): its BBB meeting id is unknown, so its end cannot be seen; stop it by hand",
            state.live
        ));
        return;
    };
    // Its own session over while its room runs another (the next class): the streamer
    // waits on the room's meeting id, so it shows that class now. Stopped at once, not
    // after the end confirmations.
    if in_other_session(input.meetings, state) {
        out.actions.push(Action::Stop {
            slot,
            live: state.live,
            reason: StopReason::OtherSession,
        });
        return;
    }
    // Its own session: another session of the same room (the next lecture, listed
    // alone or beside the ended one) does not keep it running.
    let ended = meetings.session_over(meeting_id, state.session.as_ref());
    if ended {
        let seen = state.ended_seen + 1;
        let needed = input.end_confirmations.max(1);
        if seen >= needed {
            out.actions.push(Action::Stop {
                slot,
                live: state.live,
                reason: StopReason::MeetingEnded,
            });
        } else {
            out.actions.push(Action::SeenEnded {
                slot,
                live: state.live,
                seen,
                needed,
            });
        }
    } else if state.ended_seen > 0 {
        // One action per slot and tick: the empty-room count waits for the next tick.
        out.actions.push(Action::SeenRunning {
            slot,
            live: state.live,
        });
    } else {
        watch_room(input, slot, state, out);
    }
}

/// Stop rule for a running live whose meeting goes on: the `alone_ticks`-th tick in a
/// row that found nobody in its session but our own users (streamer, chat relay) stops
/// it as if the meeting had ended. Once our streamer is the last one in, BBB never ends
/// the session by itself. Someone else in the room restarts the count; a tick that
/// could not tell (BBB not read, the session not running, our streamer not in it yet)
/// neither counts nor restarts it; a session nobody else was seen in since the start
/// (the teacher has not arrived) is never counted empty.
fn watch_room(input: &PlanInput<'_>, slot: u32, state: &SlotState, out: &mut Plan) {
    let live = state.live;
    let company = input.company.get(&slot).copied();
    match room_step(input.alone_ticks, company, &state.alone) {
        Some(RoomStep::Company { was }) => {
            out.actions.push(Action::SeenCompany { slot, live, was })
        }
        Some(RoomStep::Alone { seen, needed }) => out.actions.push(Action::SeenAlone {
            slot,
            live,
            seen,
            needed,
        }),
        Some(RoomStep::Empty) => out.actions.push(Action::Stop {
            slot,
            live,
            reason: StopReason::RoomEmpty,
        }),
        None => {}
    }
}

/// What one tick's look at a running session's company means for the empty-room
/// rule (the same for Pod's lives and `serve`'s webinars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomStep {
    /// Someone else is in: the count restarts (`was` the count), the session has begun.
    Company { was: u32 },
    /// Our own users only, the `seen`-th tick in a row of `needed`.
    Alone { seen: u32, needed: u32 },
    /// The `alone_ticks`-th such tick: stop as if the meeting had ended.
    Empty,
}

/// The empty-room rule: `None` when nothing changes (rule off, nothing seen, or the
/// same as remembered).
pub fn room_step(alone_ticks: u32, company: Option<Company>, alone: &Alone) -> Option<RoomStep> {
    if alone_ticks == 0 {
        return None;
    }
    match company? {
        Company::Others if alone.ticks > 0 || !alone.begun => {
            Some(RoomStep::Company { was: alone.ticks })
        }
        Company::OnlyUs if alone.begun => {
            let seen = alone.ticks.saturating_add(1);
            Some(if seen >= alone_ticks {
                RoomStep::Empty
            } else {
                RoomStep::Alone {
                    seen,
                    needed: alone_ticks,
                }
            })
        }
        _ => None,
    }
}

/// Whether BBB, read this tick, shows that the slot's streamer (waiting on its room's
/// meeting id) may have shown another session than its live's: its recording then
/// holds another class and is kept for the admin, whatever the stop's reason.
fn in_other_session(meetings: &MeetingsView, state: &SlotState) -> bool {
    let (MeetingsView::Listed(listed), Some(room), Some(session)) =
        (meetings, state.meeting_id.as_ref(), state.session.as_ref())
    else {
        return false;
    };
    listed.other_session_shown(room, session)
}

/// Whether this tick needs BBB's meeting list: only when a live runs here (a webinar
/// counts from its reservation: its end is watched before its streamer is up).
pub fn needs_meetings(states: &BTreeMap<u32, SlotState>) -> bool {
    states
        .values()
        .any(|s| s.phase == Phase::Running || s.webinar.is_some())
}

/// What a tick does to a webinar's slot (`serve`'s webinars, see `webinar/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebinarStep {
    /// Bring its held streamer up: `serve` did not (it crashed or was stopped).
    Up,
    Stop(StopReason),
    /// Go on with a stop that could not finish.
    ResumeStop,
    /// Its meeting was seen ended; not yet enough times in a row to stop.
    SeenEnded {
        seen: u32,
        needed: u32,
    },
    /// Its meeting runs again after having been seen ended.
    SeenRunning,
    /// The empty-room rule's count moved (see [`room_step`]).
    Room(RoomStep),
}

impl WebinarStep {
    /// The `--dry-run` line for the webinar of `room` in `slot`.
    pub fn line(&self, room: &str, slot: u32) -> String {
        match self {
            WebinarStep::Up => format!("bring up the streamer of webinar {room} in slot {slot}"),
            WebinarStep::Stop(reason) => {
                format!("stop webinar {room} in slot {slot}: {}", reason.describe())
            }
            WebinarStep::ResumeStop => format!("finish stopping webinar {room} in slot {slot}"),
            WebinarStep::SeenEnded { seen, needed } => {
                format!("note webinar {room} (slot {slot}): meeting seen ended ({seen}/{needed})")
            }
            WebinarStep::SeenRunning => {
                format!("note webinar {room} (slot {slot}): meeting running again")
            }
            WebinarStep::Room(RoomStep::Alone { seen, needed }) => format!(
                "note webinar {room} (slot {slot}): nobody in the meeting but our streamer \
                 ({seen}/{needed})"
            ),
            WebinarStep::Room(_) => {
                format!("note webinar {room} (slot {slot}): someone is in the meeting")
            }
        }
    }
}

/// The tick's step for a webinar's slot: a stop Pod asked for first, then the held
/// `up` once due (`now` past its `up_after`; three failed `up`s stop it), then the
/// meeting's end, seen `end_confirmations` ticks in a row in a successful getMeetings
/// (created and not yet joined is not ended), then the empty-room rule over `company`
/// (who the tick saw in its running session). `None`: nothing to do.
pub fn webinar_step(
    state: &SlotState,
    stop_requested: bool,
    meetings: &MeetingsView,
    now: chrono::DateTime<chrono::Utc>,
    rules: WebinarRules,
    company: Option<Company>,
) -> Option<WebinarStep> {
    let end_confirmations = rules.end_confirmations;
    let w = state.webinar.as_ref()?;
    match state.phase {
        Phase::Stopping => return Some(WebinarStep::ResumeStop),
        Phase::Reverting => return None,
        Phase::Starting | Phase::Running => {}
    }
    if stop_requested {
        return Some(WebinarStep::Stop(StopReason::PodAsked));
    }
    if state.phase == Phase::Starting {
        if w.up_failures >= crate::model::WEBINAR_MAX_UPS {
            return Some(WebinarStep::Stop(StopReason::UpFailed));
        }
        if now >= w.up_after {
            return Some(WebinarStep::Up);
        }
    }
    let (MeetingsView::Listed(listed), Some(meeting_id)) = (meetings, &state.meeting_id) else {
        return None;
    };
    if listed.session_over(meeting_id, state.session.as_ref()) {
        let seen = state.ended_seen + 1;
        let needed = end_confirmations.max(1);
        return Some(if seen >= needed {
            WebinarStep::Stop(StopReason::MeetingEnded)
        } else {
            WebinarStep::SeenEnded { seen, needed }
        });
    }
    if state.ended_seen > 0 {
        return Some(WebinarStep::SeenRunning);
    }
    if state.phase != Phase::Running {
        return None;
    }
    match room_step(rules.alone_ticks, company, &state.alone)? {
        RoomStep::Empty => Some(WebinarStep::Stop(StopReason::RoomEmpty)),
        step => Some(WebinarStep::Room(step)),
    }
}

/// The `[bbb]` rules a webinar's slot is judged by.
#[derive(Debug, Clone, Copy)]
pub struct WebinarRules {
    pub end_confirmations: u32,
    pub alone_ticks: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::fixtures::{self, live, meeting, pod_meeting, session, waiting};
    use chrono::Utc;

    fn running_state(id: LiveId, meeting: &str, ended_seen: u32) -> SlotState {
        let mut s = fixtures::running_state(id, meeting);
        s.ended_seen = ended_seen;
        s
    }

    struct World {
        number: u32,
        slots: u32,
        end_confirmations: u32,
        lives: Vec<Live>,
        meetings: MeetingsView,
        states: BTreeMap<u32, SlotState>,
        broken: BTreeSet<u32>,
        failures: BTreeMap<LiveId, u32>,
        waiting_meetings: HashMap<LiveId, PodMeeting>,
        skipped: BTreeSet<LiveId>,
        stale_seen: BTreeMap<LiveId, u32>,
        alone_ticks: u32,
        company: BTreeMap<u32, Company>,
    }

    impl World {
        fn new() -> World {
            World {
                number: 1,
                slots: 2,
                end_confirmations: 2,
                lives: vec![],
                meetings: MeetingsView::NotAsked,
                states: BTreeMap::new(),
                broken: BTreeSet::new(),
                failures: BTreeMap::new(),
                waiting_meetings: HashMap::new(),
                skipped: BTreeSet::new(),
                stale_seen: BTreeMap::new(),
                alone_ticks: 10,
                company: BTreeMap::new(),
            }
        }
        /// The plan of this world. A waiting live the test gave no Pod meeting gets one
        /// (room `room-<id>`) that BBB shows running, unless BBB could not be read: a
        /// live only starts when BBB shows its session, and most tests are about
        /// something else.
        fn plan(&self) -> Plan {
            let mut waiting_meetings = self.waiting_meetings.clone();
            let mut shown = Vec::new();
            for l in self
                .lives
                .iter()
                .filter(|l| l.status == LiveStatus::Waiting)
            {
                if let std::collections::hash_map::Entry::Vacant(e) = waiting_meetings.entry(l.id) {
                    let room = format!("room-{}", l.id);
                    e.insert(pod_meeting(l.id, &room));
                    shown.push(meeting(&room, true, 0));
                }
            }
            let meetings = match &self.meetings {
                MeetingsView::NotAsked if shown.is_empty() => MeetingsView::NotAsked,
                MeetingsView::Failed => MeetingsView::Failed,
                // Asked because a slot is free: the running lives' sessions run.
                MeetingsView::NotAsked => MeetingsView::listed(
                    self.states
                        .values()
                        .filter_map(|st| {
                            let room = st.meeting_id.as_ref()?.as_str();
                            let internal = st
                                .session
                                .as_ref()
                                .map_or_else(|| format!("{room}-internal"), ToString::to_string);
                            Some(session(room, &internal, true, 0))
                        })
                        .chain(shown)
                        .collect(),
                ),
                MeetingsView::Listed(listed) => {
                    let mut listed = listed.clone();
                    for m in shown {
                        listed.add(m);
                    }
                    MeetingsView::Listed(listed)
                }
            };
            plan(PlanInput {
                number: ServerNumber(self.number),
                slots: self.slots,
                end_confirmations: self.end_confirmations,
                max_attempts: 3,
                lives: &self.lives,
                meetings: &meetings,
                states: &self.states,
                broken: &self.broken,
                start_failures: &self.failures,
                waiting_meetings: &waiting_meetings,
                skipped: &self.skipped,
                stale_seen: &self.stale_seen,
                alone_ticks: self.alone_ticks,
                company: &self.company,
            })
        }

        /// A world with live 1 running in slot 1, its meeting running, alone for
        /// `ticks` ticks in a row after someone was seen (`begun`).
        fn room(alone_ticks: u32, ticks: u32, begun: bool) -> World {
            let mut w = World::new();
            w.alone_ticks = alone_ticks;
            w.lives = vec![live(1, LiveStatus::Running, Some("1/1"))];
            let mut state = running_state(1, "m-1", 0);
            state.alone.ticks = ticks;
            state.alone.begun = begun;
            w.states.insert(1, state);
            w.meetings = MeetingsView::listed(vec![meeting("m-1", true, 0)]);
            w
        }
    }

    #[test]
    fn the_alone_ticks_th_empty_tick_in_a_row_stops_the_live_as_ended() {
        let mut w = World::room(3, 0, true);
        w.company.insert(1, Company::OnlyUs);
        let seen = |n| Action::SeenAlone {
            slot: 1,
            live: 1,
            seen: n,
            needed: 3,
        };
        assert_eq!(w.plan().actions, [seen(1)]);
        w.states.get_mut(&1).unwrap().alone.ticks = 1;
        assert_eq!(w.plan().actions, [seen(2)]);
        w.states.get_mut(&1).unwrap().alone.ticks = 2;
        let stop = Action::Stop {
            slot: 1,
            live: 1,
            reason: StopReason::RoomEmpty,
        };
        assert_eq!(w.plan().actions, std::slice::from_ref(&stop));
        assert_eq!(
            stop.to_string(),
            "stop live 1 in slot 1: its room stayed empty"
        );
        assert_eq!(
            seen(2).to_string(),
            "note live 1 (slot 1): nobody in the meeting but bbb-pod-live's own users (2/3)"
        );
        // alone_ticks = 1: the first empty tick stops it.
        let mut w = World::room(1, 0, true);
        w.company.insert(1, Company::OnlyUs);
        assert_eq!(w.plan().actions, [stop]);
    }

    #[test]
    fn someone_in_the_room_restarts_the_count_and_begins_the_session() {
        let mut w = World::room(10, 4, true);
        w.company.insert(1, Company::Others);
        let back = Action::SeenCompany {
            slot: 1,
            live: 1,
            was: 4,
        };
        assert_eq!(w.plan().actions, std::slice::from_ref(&back));
        assert_eq!(
            back.to_string(),
            "note live 1 (slot 1): someone is in the meeting again (empty for 4 tick(s))"
        );
        // Nothing to note while the count is 0 and the session has begun.
        w.states.get_mut(&1).unwrap().alone.ticks = 0;
        assert!(w.plan().actions.is_empty());
        // The first time someone else is seen, the session begins.
        let mut w = World::room(10, 0, false);
        w.company.insert(1, Company::Others);
        assert_eq!(
            w.plan().actions,
            [Action::SeenCompany {
                slot: 1,
                live: 1,
                was: 0
            }]
        );
    }

    #[test]
    fn a_room_nobody_else_was_in_yet_or_unread_is_never_counted() {
        // Our streamer alone since the start: the teacher has not arrived.
        let mut w = World::room(2, 0, false);
        w.company.insert(1, Company::OnlyUs);
        assert!(w.plan().actions.is_empty());
        // Not running, streamer not in yet, nothing known: neither counted nor reset.
        let mut w = World::room(2, 1, true);
        assert!(w.plan().actions.is_empty());
        for failed in [MeetingsView::Failed, MeetingsView::NotAsked] {
            w.meetings = failed;
            w.company.insert(1, Company::OnlyUs);
            assert!(w.plan().actions.is_empty());
        }
    }

    #[test]
    fn alone_ticks_zero_never_stops_nor_counts() {
        let mut w = World::room(0, 500, true);
        w.company.insert(1, Company::OnlyUs);
        assert!(w.plan().actions.is_empty());
        w.company.insert(1, Company::Others);
        assert!(w.plan().actions.is_empty());
    }

    #[test]
    fn an_ended_meeting_is_judged_before_its_room() {
        let mut w = World::room(1, 0, true);
        w.company.insert(1, Company::OnlyUs);
        w.meetings = MeetingsView::listed(vec![meeting("m-1", false, 1_700_000_000_000)]);
        assert!(matches!(w.plan().actions[..], [Action::SeenEnded { .. }]));
        // Running again after a sighting: the ended count restarts first.
        w.meetings = MeetingsView::listed(vec![meeting("m-1", true, 0)]);
        w.states.get_mut(&1).unwrap().ended_seen = 1;
        assert_eq!(w.plan().actions, [Action::SeenRunning { slot: 1, live: 1 }]);
    }

    #[test]
    fn a_webinar_comes_up_after_its_hold_and_stops_when_asked_or_when_its_meeting_ended() {
        use crate::model::{Webinar, webinar_live_id};
        let now = Utc::now();
        let secs = chrono::Duration::seconds;
        let mut s = fixtures::running_state(webinar_live_id("r"), "room");
        s.phase = Phase::Starting;
        s.session = Some("room-internal".into());
        s.webinar = Some(Webinar {
            room: "r".into(),
            gateway_path: "/gw/1".into(),
            pod_host: "pod.test".into(),
            rtmp_dst: "rtmp://gw/live/1".into(),
            chat_shown: None,
            chat: None,
            up_after: now + secs(5),
            up_failures: 0,
            meeting_running: false,
        });
        let created = MeetingsView::listed(vec![meeting("room", false, 0)]);
        let rules = WebinarRules {
            end_confirmations: 2,
            alone_ticks: 3,
        };
        let step = |s: &SlotState, asked, view: &MeetingsView, at| {
            webinar_step(s, asked, view, at, rules, None)
        };
        assert_eq!(step(&s, false, &created, now), None, "held");
        assert_eq!(
            step(&s, true, &created, now),
            Some(WebinarStep::Stop(StopReason::PodAsked))
        );
        assert_eq!(
            step(&s, false, &created, now + secs(6)),
            Some(WebinarStep::Up)
        );
        assert_eq!(
            step(&s, false, &MeetingsView::Failed, now + secs(6)),
            Some(WebinarStep::Up),
            "the up does not need BBB's list"
        );
        if let Some(w) = s.webinar.as_mut() {
            w.up_failures = crate::model::WEBINAR_MAX_UPS;
        }
        assert_eq!(
            step(&s, false, &created, now + secs(6)),
            Some(WebinarStep::Stop(StopReason::UpFailed))
        );
        s.phase = Phase::Running;
        assert_eq!(step(&s, false, &created, now), None, "created, not ended");
        let ended = MeetingsView::listed(vec![meeting("room", false, 1_700_000_000_000)]);
        assert_eq!(
            step(&s, false, &ended, now),
            Some(WebinarStep::SeenEnded { seen: 1, needed: 2 })
        );
        assert_eq!(step(&s, false, &MeetingsView::Failed, now), None);
        s.ended_seen = 1;
        let gone = MeetingsView::listed(vec![]);
        assert_eq!(
            step(&s, false, &gone, now),
            Some(WebinarStep::Stop(StopReason::MeetingEnded))
        );
        assert_eq!(
            step(&s, false, &created, now),
            Some(WebinarStep::SeenRunning)
        );
        s.phase = Phase::Stopping;
        assert_eq!(
            step(&s, false, &created, now),
            Some(WebinarStep::ResumeStop)
        );
        // One of Pod's lives is not a webinar.
        let pod_live = fixtures::running_state(7, "room");
        assert_eq!(step(&pod_live, true, &gone, now), None);
        // A webinar's slot is busy for Pod's lives, and none of their actions.
        let mut w = World::new();
        w.slots = 1;
        w.states.insert(1, s.clone());
        w.lives = vec![waiting(9)];
        w.meetings = gone;
        let p = w.plan();
        assert!(
            p.actions.iter().all(|a| a.slot().is_none()),
            "{:?}",
            p.actions
        );
        assert_eq!(p.standby, vec![9]);
    }

    #[test]
    fn a_running_webinar_follows_the_empty_room_rule() {
        let now = Utc::now();
        let mut s = fixtures::running_state(1, "room");
        s.webinar = Some(crate::model::Webinar {
            room: "r".into(),
            gateway_path: "/gw/1".into(),
            pod_host: "pod.test".into(),
            rtmp_dst: "rtmp://gw/live/1".into(),
            chat_shown: Some(true),
            chat: None,
            up_after: now,
            up_failures: 0,
            meeting_running: true,
        });
        let running = MeetingsView::listed(vec![meeting("room", true, 0)]);
        let rules = WebinarRules {
            end_confirmations: 2,
            alone_ticks: 2,
        };
        let step = |s: &SlotState, company| webinar_step(s, false, &running, now, rules, company);
        // Nobody else seen yet: not begun, never empty.
        assert_eq!(step(&s, Some(Company::OnlyUs)), None);
        assert_eq!(
            step(&s, Some(Company::Others)),
            Some(WebinarStep::Room(RoomStep::Company { was: 0 }))
        );
        s.alone.seen_company();
        assert_eq!(step(&s, Some(Company::Others)), None);
        assert_eq!(
            step(&s, Some(Company::OnlyUs)),
            Some(WebinarStep::Room(RoomStep::Alone { seen: 1, needed: 2 }))
        );
        s.alone.seen_alone(1, now);
        assert_eq!(
            step(&s, None),
            None,
            "BBB not read: neither counts nor resets"
        );
        assert_eq!(
            step(&s, Some(Company::OnlyUs)),
            Some(WebinarStep::Stop(StopReason::RoomEmpty))
        );
        assert_eq!(
            step(&s, Some(Company::Others)),
            Some(WebinarStep::Room(RoomStep::Company { was: 1 }))
        );
        let off = WebinarRules {
            alone_ticks: 0,
            ..rules
        };
        assert_eq!(
            webinar_step(&s, false, &running, now, off, Some(Company::OnlyUs)),
            None
        );
    }

    #[test]
    fn a_live_stops_when_its_session_ended_though_its_room_runs_another() {
        let mut w = World::new();
        // At once, whatever end_confirmations says: its streamer, waiting on the room's
        // meeting id, shows the next class.
        w.end_confirmations = 3;
        w.lives = vec![live(1, LiveStatus::Running, Some("1/1"))];
        let mut state = running_state(1, "room", 0);
        state.session = Some("room-100".into());
        w.states.insert(1, state);
        let stop = Action::Stop {
            slot: 1,
            live: 1,
            reason: StopReason::OtherSession,
        };
        // The ended session beside the new one, and the new one alone.
        for listed in [
            vec![
                session("room", "room-100", false, 5),
                session("room", "room-200", true, 0),
            ],
            vec![session("room", "room-200", true, 0)],
        ] {
            w.meetings = MeetingsView::listed(listed);
            assert_eq!(w.plan().actions, vec![stop.clone()]);
        }
        // Its own session running: nothing to do.
        w.meetings = MeetingsView::listed(vec![
            session("room", "room-50", false, 5),
            session("room", "room-100", true, 0),
        ]);
        assert!(w.plan().actions.is_empty());
        // A session unknown (older state file): judged by its room alone.
        w.states.get_mut(&1).unwrap().session = None;
        w.meetings = MeetingsView::listed(vec![session("room", "room-200", true, 0)]);
        assert!(w.plan().actions.is_empty());
    }

    #[test]
    fn a_live_closed_in_pod_while_its_room_ran_the_next_class_stops_as_such() {
        let mut w = World::new();
        w.lives = vec![live(1, LiveStatus::Stopped, Some("1/1"))];
        let mut state = running_state(1, "room", 0);
        state.session = Some("room-100".into());
        w.states.insert(1, state);
        let stop = |reason| Action::Stop {
            slot: 1,
            live: 1,
            reason,
        };
        // The next class ran (ended since) while Pod could not be read.
        w.meetings = MeetingsView::listed(vec![
            session("room", "room-100", false, 5),
            session("room", "room-200", false, 6),
        ]);
        assert_eq!(w.plan().actions, vec![stop(StopReason::OtherSession)]);
        // Its own session still runs: closed by hand, as usual.
        w.meetings = MeetingsView::listed(vec![session("room", "room-100", true, 0)]);
        assert_eq!(w.plan().actions, vec![stop(StopReason::ClosedInPod)]);
        w.meetings = MeetingsView::Failed;
        assert_eq!(w.plan().actions, vec![stop(StopReason::ClosedInPod)]);
    }

    #[test]
    fn a_waiting_live_starts_only_when_bbb_shows_its_own_session() {
        let mut w = World::new();
        w.slots = 3;
        w.lives = vec![waiting(1), waiting(2), waiting(3)];
        w.waiting_meetings.insert(1, pod_meeting(1, "created"));
        // Live 2's room runs a session of unknown age, not its own.
        let mut other = pod_meeting(2, "busy");
        other.internal_meeting_id = "busy-..".into();
        w.waiting_meetings.insert(2, other);
        // Live 3's Pod meeting could not be read before planning: its start reads it
        // and judges it then (planned directly, since `World::plan` gives a meeting to
        // every live left without).
        w.meetings = MeetingsView::listed(vec![
            meeting("created", false, 0),
            session("busy", "busy-x", true, 0),
        ]);
        let input_meetings = w.waiting_meetings.clone();
        let p = plan(PlanInput {
            number: ServerNumber(1),
            slots: 3,
            end_confirmations: 2,
            max_attempts: 3,
            lives: &w.lives,
            meetings: &w.meetings,
            states: &w.states,
            broken: &w.broken,
            start_failures: &w.failures,
            waiting_meetings: &input_meetings,
            skipped: &w.skipped,
            stale_seen: &w.stale_seen,
            alone_ticks: w.alone_ticks,
            company: &w.company,
        });
        assert_eq!(
            p.actions,
            vec![
                Action::Start { slot: 1, live: 1 },
                Action::Start { slot: 2, live: 3 }
            ]
        );
        assert_eq!(
            p.waiting
                .iter()
                .map(|x| (x.live, x.reason))
                .collect::<Vec<_>>(),
            vec![(2, WaitReason::SessionNotShown)]
        );
        let judged = |m: &PodMeeting| session_shown(&w.meetings, &w.lives[2], Some(m));
        assert_eq!(judged(&pod_meeting(3, "created")), Ok(()));
        assert_eq!(
            judged(&pod_meeting(3, "elsewhere")),
            Err(WaitReason::SessionNotShown)
        );
    }

    #[test]
    fn a_waiting_live_whose_room_runs_another_session_is_stale() {
        let mut w = World::new();
        w.end_confirmations = 1;
        w.lives = vec![waiting(1)];
        w.waiting_meetings.insert(1, pod_meeting(1, "room"));
        w.meetings = MeetingsView::listed(vec![
            session("room", "room-internal", false, 5),
            session("room", "next", true, 0),
        ]);
        assert_eq!(
            w.plan().actions,
            vec![Action::CloseStale { live: 1, seen: 1 }]
        );
    }

    #[test]
    fn one_streamer_per_session_the_oldest_request_is_kept() {
        let mut w = World::new();
        let same = |mut l: Live| {
            l.meeting_url = Some("https://pod/rest/bbb_meeting/7/".into());
            l
        };
        w.lives = vec![same(waiting(3)), same(waiting(5)), waiting(6)];
        let started = w.plan();
        assert_eq!(
            started.actions,
            vec![
                Action::Start { slot: 1, live: 3 },
                Action::CloseDuplicate { live: 5, kept: 3 },
                Action::Start { slot: 2, live: 6 },
            ]
        );
        assert!(
            started.actions[1]
                .to_string()
                .contains("live 3 streams the same BBB session")
        );
        // Pod shows the session running (here or on another server): a late request
        // for it is closed too, even with every slot busy.
        w.lives = vec![
            same(live(3, LiveStatus::Running, Some("2/1"))),
            same(waiting(8)),
        ];
        assert_eq!(
            w.plan().actions,
            vec![Action::CloseDuplicate { live: 8, kept: 3 }]
        );
        // A slot of this server streams the session (by its Pod meeting or its session).
        w.lives = vec![
            live(4, LiveStatus::Running, Some("1/1")),
            waiting(9),
            waiting(10),
        ];
        let mut state = running_state(4, "room", 0);
        state.meeting_url = Some("https://pod/rest/bbb_meeting/9/".into());
        state.session = Some("room-internal".into());
        w.states.insert(1, state);
        w.waiting_meetings.insert(10, pod_meeting(10, "room"));
        assert_eq!(
            w.plan().actions,
            vec![
                Action::CloseDuplicate { live: 9, kept: 4 },
                Action::CloseDuplicate { live: 10, kept: 4 },
            ]
        );
    }

    #[test]
    fn a_slot_whose_row_does_not_parse_is_left_alone_and_stays_busy() {
        let mut w = World::new();
        w.slots = 1;
        w.end_confirmations = 1;
        w.states.insert(1, running_state(1, "room", 0));
        w.meetings = MeetingsView::listed(vec![]);
        w.lives = vec![waiting(2)];
        w.skipped.insert(1);
        let p = w.plan();
        assert!(
            p.actions.iter().all(|a| a.slot().is_none()),
            "nothing done in slot 1: {:?}",
            p.actions
        );
        assert_eq!(p.standby, vec![2], "live 2 waits: slot 1 is busy");
        // Without the skipped row, a vanished live is stopped.
        w.skipped.clear();
        assert_eq!(
            w.plan().actions[0],
            Action::Stop {
                slot: 1,
                live: 1,
                reason: StopReason::RemovedFromPod
            }
        );
    }

    #[test]
    fn waiting_lives_whose_meeting_does_not_run_are_skipped_then_closed() {
        let mut w = World::new();
        w.slots = 1;
        // Lives 1 and 2 are old requests (meeting ended / gone), 3 is today's.
        w.lives = vec![waiting(1), waiting(2), waiting(3)];
        for (live, m) in [(1, "old-1"), (2, "old-2"), (3, "now")] {
            w.waiting_meetings.insert(live, pod_meeting(live, m));
        }
        w.meetings = MeetingsView::listed(vec![
            meeting("old-1", false, 1_600_000_000_000),
            meeting("now", true, 0),
        ]);
        assert_eq!(
            w.plan().actions,
            vec![
                Action::SeenStale { live: 1, seen: 1 },
                Action::SeenStale { live: 2, seen: 1 },
                Action::Start { slot: 1, live: 3 },
            ]
        );
        w.stale_seen.insert(1, 1);
        w.stale_seen.insert(2, 1);
        w.lives.pop();
        assert_eq!(
            w.plan().actions,
            vec![
                Action::CloseStale { live: 1, seen: 2 },
                Action::CloseStale { live: 2, seen: 2 },
            ]
        );
        // Without a successful getMeetings nothing shows a session runs: none starts
        // (a streamer started blind could show the room's next class), each says why.
        w.meetings = MeetingsView::Failed;
        let p = w.plan();
        assert_eq!(p.actions, vec![]);
        assert_eq!(
            p.waiting
                .iter()
                .map(|x| (x.live, x.reason))
                .collect::<Vec<_>>(),
            vec![
                (1, WaitReason::BbbUnreadable),
                (2, WaitReason::BbbUnreadable)
            ]
        );
        assert!(
            p.standby.is_empty(),
            "never started in a claimed slot either"
        );
        // A meeting created but not yet joined is running enough to start.
        w.meetings = MeetingsView::listed(vec![meeting("old-1", false, 0)]);
        assert_eq!(w.plan().actions[0], Action::Start { slot: 1, live: 1 });
    }

    #[test]
    fn waiting_lives_fill_free_slots_oldest_first() {
        let mut w = World::new();
        w.lives = vec![waiting(9), waiting(3), waiting(5)];
        let p = w.plan();
        assert_eq!(
            p.actions,
            vec![
                Action::Start { slot: 1, live: 3 },
                Action::Start { slot: 2, live: 5 }
            ]
        );
        assert_eq!(
            p.notes,
            vec!["live 9 waits: every slot of this server is busy".to_string()]
        );
        assert!(p.warnings.is_empty(), "a busy server is normal: {p:?}");
        assert_eq!(p.standby, vec![9]);
    }

    #[test]
    fn each_waiting_live_not_started_gets_its_reason() {
        let mut w = World::new();
        w.slots = 1;
        w.lives = vec![waiting(1), waiting(2), waiting(3)];
        w.failures.insert(3, 2);
        w.waiting_meetings.insert(1, pod_meeting(1, "gone"));
        w.meetings = MeetingsView::listed(vec![]);
        let p = w.plan();
        assert_eq!(p.actions[1], Action::Start { slot: 1, live: 2 });
        assert_eq!(
            p.waiting,
            vec![
                Waiting {
                    live: 1,
                    reason: WaitReason::MeetingNotRunning { seen: 1, needed: 2 }
                },
                Waiting {
                    live: 3,
                    reason: WaitReason::NoFreeSlot { failed: 2, max: 3 }
                },
            ]
        );
        assert_eq!(
            p.waiting[1].to_string(),
            "live 3 waits: every slot of this server is busy (its start failed 2/3 times)"
        );
        assert!(p.waiting[0].to_string().contains("meeting is not running"));
    }

    #[test]
    fn a_meeting_listed_twice_has_ended_only_if_both_instances_have() {
        // An ended instance beside a new running one (Scalelite, two nodes), in either
        // order: the live keeps running.
        for order in [false, true] {
            let mut w = World::new();
            w.lives = vec![live(1, LiveStatus::Running, Some("1/1"))];
            w.states.insert(1, running_state(1, "m-1", 0));
            let mut both = vec![
                meeting("m-1", false, 1_700_000_000_000),
                meeting("m-1", true, 0),
            ];
            if order {
                both.reverse();
            }
            w.meetings = MeetingsView::listed(both);
            let p = w.plan();
            assert!(
                !p.actions
                    .iter()
                    .any(|a| matches!(a, Action::Stop { .. } | Action::SeenEnded { .. })),
                "order {order}: {p:?}"
            );
        }
        // Both ended: ended.
        let mut w = World::new();
        w.lives = vec![live(1, LiveStatus::Running, Some("1/1"))];
        w.states.insert(1, running_state(1, "m-1", 0));
        w.meetings = MeetingsView::listed(vec![
            meeting("m-1", false, 1_700_000_000_000),
            meeting("m-1", false, 1_700_000_100_000),
        ]);
        let p = w.plan();
        assert!(
            matches!(
                p.actions[..],
                [Action::Stop { .. }] | [Action::SeenEnded { .. }]
            ),
            "{p:?}"
        );
    }

    #[test]
    fn stopped_and_foreign_lives_are_never_started() {
        // Pod 3.1+ ignores ?status=: the list holds every live ever made.
        let mut w = World::new();
        w.lives = (1..=40)
            .map(|i| live(i, LiveStatus::Stopped, Some("1/1")))
            .collect();
        w.lives.push(live(41, LiveStatus::Running, Some("2/1")));
        w.lives.push(live(42, LiveStatus::Other(7), None));
        w.lives.push(waiting(43));
        assert_eq!(w.plan().actions, vec![Action::Start { slot: 1, live: 43 }]);
    }

    #[test]
    fn server_eleven_does_not_occupy_server_one() {
        let mut w = World::new();
        w.slots = 1;
        w.lives = vec![live(1, LiveStatus::Running, Some("11/1")), waiting(2)];
        assert_eq!(w.plan().actions, vec![Action::Start { slot: 1, live: 2 }]);
        w.number = 11;
        w.end_confirmations = 1;
        let p = w.plan();
        assert_eq!(p.actions, vec![Action::Adopt { slot: 1, live: 1 }], "{p:?}");
    }

    #[test]
    fn a_running_slot_is_never_given_to_a_new_live() {
        let mut w = World::new();
        w.slots = 1;
        w.lives = vec![live(1, LiveStatus::Running, Some("1/1")), waiting(2)];
        w.states.insert(1, running_state(1, "m1", 0));
        w.meetings = MeetingsView::listed(vec![meeting("m1", true, 0)]);
        let p = w.plan();
        assert!(p.actions.is_empty(), "{p:?}");
    }

    #[test]
    fn stop_only_after_consecutive_confirmations() {
        let mut w = World::new();
        w.lives = vec![live(1, LiveStatus::Running, Some("1/1"))];
        w.states.insert(1, running_state(1, "m1", 0));
        w.meetings = MeetingsView::listed(vec![]);
        assert_eq!(
            w.plan().actions,
            vec![Action::SeenEnded {
                slot: 1,
                live: 1,
                seen: 1,
                needed: 2
            }]
        );
        w.states.insert(1, running_state(1, "m1", 1));
        assert_eq!(
            w.plan().actions,
            vec![Action::Stop {
                slot: 1,
                live: 1,
                reason: StopReason::MeetingEnded
            }]
        );
        // Seen running again: the count restarts.
        w.meetings = MeetingsView::listed(vec![meeting("m1", true, 0)]);
        assert_eq!(
            w.plan().actions,
            vec![Action::SeenRunning { slot: 1, live: 1 }]
        );
    }

    #[test]
    fn ended_but_listed_counts_as_ended_and_created_does_not() {
        let mut w = World::new();
        w.end_confirmations = 1;
        w.lives = vec![
            live(1, LiveStatus::Running, Some("1/1")),
            live(2, LiveStatus::Running, Some("1/2")),
        ];
        w.states.insert(1, running_state(1, "ended", 0));
        w.states.insert(2, running_state(2, "created", 0));
        w.meetings = MeetingsView::listed(vec![
            meeting("ended", false, 1590147528510),
            meeting("created", false, 0),
        ]);
        assert_eq!(
            w.plan().actions,
            vec![Action::Stop {
                slot: 1,
                live: 1,
                reason: StopReason::MeetingEnded
            }]
        );
    }

    #[test]
    fn a_failed_or_missing_meeting_list_stops_nothing() {
        for view in [MeetingsView::Failed, MeetingsView::NotAsked] {
            let mut w = World::new();
            w.end_confirmations = 1;
            w.lives = vec![live(1, LiveStatus::Running, Some("1/1"))];
            w.states.insert(1, running_state(1, "m1", 5));
            w.meetings = view;
            assert!(w.plan().actions.is_empty());
        }
    }

    #[test]
    fn each_live_is_compared_with_its_own_meeting() {
        // PHP defect 14: every live was compared with the first live's meeting.
        let mut w = World::new();
        w.end_confirmations = 1;
        w.lives = vec![
            live(1, LiveStatus::Running, Some("1/1")),
            live(2, LiveStatus::Running, Some("1/2")),
        ];
        w.states.insert(1, running_state(1, "first", 0));
        w.states.insert(2, running_state(2, "second", 0));
        w.meetings = MeetingsView::listed(vec![meeting("second", true, 0)]);
        assert_eq!(
            w.plan().actions,
            vec![Action::Stop {
                slot: 1,
                live: 1,
                reason: StopReason::MeetingEnded
            }]
        );
    }

    #[test]
    fn lives_closed_or_moved_in_pod_are_stopped_with_the_right_reason() {
        let mut w = World::new();
        w.slots = 3;
        w.lives = vec![
            live(1, LiveStatus::Stopped, Some("1/1")),
            live(3, LiveStatus::Waiting, None),
        ];
        w.states.insert(1, running_state(1, "m1", 0));
        w.states.insert(2, running_state(2, "m2", 0));
        w.states.insert(3, running_state(3, "m3", 0));
        w.meetings = MeetingsView::listed(vec![
            meeting("m1", true, 0),
            meeting("m2", true, 0),
            meeting("m3", true, 0),
        ]);
        assert_eq!(
            w.plan().actions,
            vec![
                Action::Stop {
                    slot: 1,
                    live: 1,
                    reason: StopReason::ClosedInPod
                },
                Action::Stop {
                    slot: 2,
                    live: 2,
                    reason: StopReason::RemovedFromPod
                },
                Action::Stop {
                    slot: 3,
                    live: 3,
                    reason: StopReason::NoLongerOurs
                },
            ]
        );
    }

    #[test]
    fn interrupted_starts_are_resumed_finished_or_undone() {
        let mut w = World::new();
        w.slots = 3;
        w.lives = vec![
            waiting(1),
            live(2, LiveStatus::Running, Some("1/2")),
            live(3, LiveStatus::Stopped, None),
        ];
        for (slot, id) in [(1, 1), (2, 2), (3, 3)] {
            w.states.insert(slot, SlotState::new(id, Utc::now()));
        }
        assert_eq!(
            w.plan().actions,
            vec![
                Action::ResumeStart { slot: 1, live: 1 },
                Action::FinishStart { slot: 2, live: 2 },
                Action::AbandonStart { slot: 3, live: 3 },
            ]
        );
    }

    #[test]
    fn stopping_and_reverting_slots_are_resumed_and_stay_busy() {
        let mut w = World::new();
        w.slots = 2;
        let mut s1 = running_state(1, "m", 0);
        s1.phase = Phase::Stopping;
        let mut s2 = SlotState::new(2, Utc::now());
        s2.phase = Phase::Reverting;
        w.states.insert(1, s1);
        w.states.insert(2, s2);
        w.lives = vec![waiting(5), live(2, LiveStatus::Running, Some("1/2"))];
        assert_eq!(
            w.plan().actions,
            vec![
                Action::ResumeStop { slot: 1, live: 1 },
                Action::Revert { slot: 2, live: 2 }
            ]
        );
    }

    #[test]
    fn lives_failing_too_often_are_given_up_and_free_no_slot() {
        let mut w = World::new();
        w.slots = 1;
        w.lives = vec![waiting(1), waiting(2)];
        w.failures.insert(1, 3);
        w.failures.insert(2, 2);
        assert_eq!(
            w.plan().actions,
            vec![
                Action::GiveUp {
                    live: 1,
                    attempts: 3
                },
                Action::Start { slot: 1, live: 2 }
            ]
        );
    }

    #[test]
    fn a_broken_state_file_keeps_its_slot_busy() {
        let mut w = World::new();
        w.slots = 1;
        w.broken.insert(1);
        w.lives = vec![waiting(1)];
        assert!(
            w.plan()
                .actions
                .iter()
                .all(|a| !matches!(a, Action::Start { .. }))
        );
    }

    #[test]
    fn pod_running_without_state_is_adopted_once() {
        let mut w = World::new();
        w.lives = vec![
            live(4, LiveStatus::Running, Some("1/2")),
            live(6, LiveStatus::Running, Some("1/2")),
            waiting(7),
        ];
        let p = w.plan();
        assert_eq!(
            p.actions,
            vec![
                Action::Adopt { slot: 2, live: 4 },
                Action::Start { slot: 1, live: 7 }
            ]
        );
        assert_eq!(p.warnings.len(), 1, "{p:?}");
    }

    #[test]
    fn meetings_are_needed_only_when_a_live_runs() {
        let mut states = BTreeMap::new();
        assert!(!needs_meetings(&states));
        states.insert(1, SlotState::new(1, Utc::now()));
        assert!(!needs_meetings(&states));
        states.insert(2, running_state(2, "m", 0));
        assert!(needs_meetings(&states));
    }

    #[test]
    fn every_action_prints_one_line() {
        let all = [
            Action::Start { slot: 1, live: 2 },
            Action::ResumeStart { slot: 1, live: 2 },
            Action::FinishStart { slot: 1, live: 2 },
            Action::AbandonStart { slot: 1, live: 2 },
            Action::Revert { slot: 1, live: 2 },
            Action::Adopt { slot: 1, live: 2 },
            Action::SeenEnded {
                slot: 1,
                live: 2,
                seen: 1,
                needed: 2,
            },
            Action::SeenRunning { slot: 1, live: 2 },
            Action::Stop {
                slot: 1,
                live: 2,
                reason: StopReason::ByHand,
            },
            Action::ResumeStop { slot: 1, live: 2 },
            Action::GiveUp {
                live: 2,
                attempts: 3,
            },
        ];
        for a in all {
            let line = a.to_string();
            assert!(!line.contains('\n') && line.contains("live 2"), "{line}");
        }
    }
}
