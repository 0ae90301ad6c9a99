//! A live's health (README, "A live's health"), decided without I/O: the
//! `[health]` section, the updates of the per-slot [`Health`] (data in `model`, kept in
//! the slot's state file), the judgement of one tick's [`Observation`] (counted in
//! ticks, never on a clock), the label `status` shows and the mails to the admins.
//!
//! It does not look at anything: `tick/streamer.rs` asks docker, reads getMeetings'
//! attendees and the HLS playlist, then acts on the [`Verdict`].

use chrono::{DateTime, TimeDelta, Utc};

use crate::config::HealthConfig;
use crate::hls::Media;
use crate::mail::{RESEND_AFTER, SUBJECT_PREFIX};
use crate::model::{Fails, Health, LiveId, Phase, PlaylistSeen, Signal, SlotState, is_webinar_id};

/// What one tick saw of a live whose session runs. `None`: not known this tick (the
/// question failed, or was not asked): it neither fails nor clears a signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observation {
    pub container: Option<bool>,
    pub in_meeting: Option<bool>,
    pub hls: Option<bool>,
    /// The playlist moved since the last tick far enough back to judge it
    /// ([`Health::playlist_moved`]).
    pub moving: Option<bool>,
}

/// What to do about a live after one tick's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy, in its grace period, or nothing known: leave it alone.
    Fine,
    /// (a) failed: `up -d` again at once.
    Up,
    /// Unhealthy by (b) or (c): restart the streamer.
    Restart(Signal),
    /// Unhealthy and out of restarts: tell the admins once; the live keeps running.
    BeyondRepair(Signal),
}

impl Health {
    /// Counts one checked tick and says what to do. The caller records a done (or
    /// tried) repair with [`Health::repaired`].
    pub fn judge(&mut self, seen: Observation, cfg: &HealthConfig) -> Verdict {
        if seen.container.is_none() {
            // docker could not say: nothing counted, nothing done.
            return Verdict::Fine;
        }
        self.ticks = self.ticks.saturating_add(1);
        if seen.container == Some(false) {
            self.failing = Some(Signal::Container);
            return self.unhealthy(Signal::Container, cfg);
        }
        if self.ticks <= cfg.grace_ticks {
            self.fails = Fails::default();
            self.failing = None;
            return Verdict::Fine;
        }
        let count = |n: &mut u32, ok: Option<bool>| match ok {
            Some(false) => *n = n.saturating_add(1),
            Some(true) => *n = 0,
            None => {}
        };
        count(&mut self.fails.meeting, seen.in_meeting);
        count(&mut self.fails.hls, seen.hls);
        count(&mut self.fails.frozen, seen.moving);
        self.failing = if seen.in_meeting == Some(false) {
            Some(Signal::Meeting)
        } else if seen.hls == Some(false) {
            Some(Signal::Hls)
        } else if seen.moving == Some(false) {
            Some(Signal::Frozen)
        } else {
            None
        };
        if self.fails.meeting >= cfg.fail_ticks {
            self.unhealthy(Signal::Meeting, cfg)
        } else if self.fails.hls >= cfg.fail_ticks {
            self.unhealthy(Signal::Hls, cfg)
        } else if self.fails.frozen >= cfg.fail_ticks {
            self.unhealthy(Signal::Frozen, cfg)
        } else {
            Verdict::Fine
        }
    }

    fn unhealthy(&mut self, signal: Signal, cfg: &HealthConfig) -> Verdict {
        if self.beyond_repair {
            Verdict::Fine
        } else if self.restarts >= cfg.max_restarts {
            self.beyond_repair = true;
            Verdict::BeyondRepair(signal)
        } else if signal == Signal::Container {
            Verdict::Up
        } else {
            Verdict::Restart(signal)
        }
    }

    /// A restart or an `up` was tried: counted against `max_restarts`; when it worked,
    /// a new grace period starts.
    pub fn repaired(&mut self, worked: bool) {
        self.restarts = self.restarts.saturating_add(1);
        if worked {
            self.ticks = 0;
            self.fails = Fails::default();
            self.failing = None;
            // A new stream: its playlist is judged afresh.
            self.playlist = None;
        }
    }

    /// Signal (d): whether the media playlist `seen` at `now` moved — a new media
    /// sequence or a new newest segment — since the tick that last judged it. Judged
    /// only across ticks at least three target durations apart: a closer tick (a run by
    /// hand just after cron's) answers `None` and keeps the earlier reading, so it
    /// neither fails nor clears the signal. The first reading, and one after the clock
    /// went back, are only remembered.
    pub fn playlist_moved(&mut self, seen: &Media, now: DateTime<Utc>) -> Option<bool> {
        let here = PlaylistSeen {
            position: seen.position(),
            newest: seen.newest.clone(),
            at: now,
        };
        let Some(last) = &self.playlist else {
            self.playlist = Some(here);
            return None;
        };
        let apart = now - last.at;
        if apart < TimeDelta::zero() {
            self.playlist = Some(here);
            return None;
        }
        if apart < TimeDelta::seconds(3 * i64::from(seen.target_secs)) {
            return None;
        }
        let moved = last.position != here.position || last.newest != here.newest;
        self.playlist = Some(here);
        Some(moved)
    }

    /// Whether a "restarted" mail may go out now (none in the last hour); records it.
    pub fn mail_due(&mut self, now: DateTime<Utc>) -> bool {
        let due = match self.mailed_at {
            // A clock gone back counts as "just mailed".
            Some(at) => now > at && now - at >= RESEND_AFTER,
            None => true,
        };
        if due {
            self.mailed_at = Some(now);
        }
        due
    }

    /// What `status` shows: ok, starting, no container, not in the meeting, no HLS,
    /// stream frozen, restarted n/max, beyond repair.
    pub fn label(&self, cfg: &HealthConfig) -> String {
        if self.beyond_repair {
            return "beyond repair".into();
        }
        if let Some(signal) = self.failing {
            return signal.label().into();
        }
        if self.restarts > 0 {
            format!("restarted {}/{}", self.restarts, cfg.max_restarts)
        } else if self.ticks <= cfg.grace_ticks {
            "starting".into()
        } else {
            "ok".into()
        }
    }

    /// For the metrics: not failing a signal now, and not beyond repair.
    pub fn healthy(&self) -> bool {
        !self.beyond_repair && self.failing.is_none()
    }
}

/// The fields `status --json` adds to a busy slot: `health` (the label; `"off"` when
/// health checks are off), `restarts`, `max_restarts`, and `streamer_log`: where the
/// streamer's own log is (`docker compose logs` in the slot while it runs, the kept
/// `<log_dir>/live-<id>.log` once stopped).
pub fn status_fields(
    state: &SlotState,
    cfg: &crate::config::Config,
    slot_dir: &std::path::Path,
) -> serde_json::Map<String, serde_json::Value> {
    let h = &state.health;
    let label = match (cfg.health.enabled, state.phase) {
        (false, _) => Some("off".to_owned()),
        (true, Phase::Running) => Some(h.label(&cfg.health)),
        (true, Phase::Starting) => Some("starting".to_owned()),
        _ => None,
    };
    let kept = cfg.server.log_dir.join(format!("live-{}.log", state.live));
    let log = match state.phase {
        Phase::Running | Phase::Starting => Some(format!(
            "cd {} && {} logs {}",
            slot_dir.display(),
            cfg.docker.command.join(" "),
            crate::compose::STREAMER_SERVICE
        )),
        _ if kept.exists() => Some(kept.display().to_string()),
        _ => None,
    };
    let mut m = serde_json::Map::new();
    m.insert("health".into(), label.into());
    m.insert("restarts".into(), h.restarts.into());
    m.insert("max_restarts".into(), cfg.health.max_restarts.into());
    m.insert("streamer_log".into(), log.into());
    m
}

/// How the health mails name what runs in `slot`: a live by its Pod id, a webinar by
/// its slot (its live id is an internal number).
fn named(live: LiveId, slot: u32) -> String {
    if is_webinar_id(live) {
        format!("the webinar in slot {slot}")
    } else {
        format!("live {live}")
    }
}

/// `(subject, body)` of the mail sent when a live's streamer was restarted.
pub fn restarted_mail(
    host: &str,
    live: LiveId,
    slot: u32,
    why: Signal,
    restarts: u32,
    cfg: &HealthConfig,
) -> (String, String) {
    let name = named(live, slot);
    let subject = format!(
        "{SUBJECT_PREFIX} {host}: {name} streamer restarted ({})",
        why.label()
    );
    let body = format!(
        "The streamer of {name} (slot {slot}) was repaired: {why}.\n\
         It was restarted with the same stream key; Pod was not touched.\n\
         Restarts so far: {restarts} of {max}. After that it is left alone and you get one\n\
         \"beyond repair\" mail. No other mail about this live for an hour.\n",
        max = cfg.max_restarts,
    );
    (subject, body)
}

/// `(subject, body)` of the one mail sent when a live's streamer is beyond repair.
pub fn beyond_repair_mail(
    host: &str,
    live: LiveId,
    slot: u32,
    why: Signal,
    restarts: u32,
    slot_dir: &str,
) -> (String, String) {
    let name = named(live, slot);
    let stop = if is_webinar_id(live) {
        format!("--slot {slot}")
    } else {
        format!("--live {live}")
    };
    let subject = format!("{SUBJECT_PREFIX} {host}: {name} streamer beyond repair");
    let body = format!(
        "The streamer of {name} (slot {slot}) is beyond repair: {why} ({label}),\n\
         after {restarts} restart(s). It is no longer restarted; the live keeps running in Pod\n\
         while its meeting goes on, but viewers may see nothing.\n\n\
         Look at `docker compose logs` in {slot_dir}; `bbb-pod-live stop {stop}` ends it.\n",
        label = why.label(),
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn cfg() -> HealthConfig {
        HealthConfig {
            enabled: true,
            hls: true,
            grace_ticks: 1,
            fail_ticks: 2,
            max_restarts: 2,
        }
    }

    fn seen(container: bool, meeting: bool, hls: bool) -> Observation {
        Observation {
            container: Some(container),
            in_meeting: Some(meeting),
            hls: Some(hls),
            moving: None,
        }
    }

    const OK: Observation = Observation {
        container: Some(true),
        in_meeting: Some(true),
        hls: Some(true),
        moving: Some(true),
    };

    const FROZEN: Observation = Observation {
        moving: Some(false),
        ..OK
    };

    fn playlist(target_secs: u32, sequence: u64) -> Media {
        Media {
            target_secs,
            sequence,
            segments: 3,
            newest: Some(format!("{}.ts", sequence + 2)),
        }
    }

    #[test]
    fn a_healthy_live_is_fine_forever() {
        let mut h = Health::default();
        assert_eq!(h.label(&cfg()), "starting");
        for _ in 0..100 {
            assert_eq!(h.judge(OK, &cfg()), Verdict::Fine);
        }
        assert_eq!(h.label(&cfg()), "ok");
        assert!(h.healthy());
    }

    #[test]
    fn grace_ticks_do_not_count_b_and_c() {
        let c = HealthConfig {
            grace_ticks: 3,
            ..cfg()
        };
        let mut h = Health::default();
        for _ in 0..3 {
            assert_eq!(h.judge(seen(true, false, false), &c), Verdict::Fine);
            assert_eq!(h.label(&c), "starting");
        }
        assert_eq!(h.judge(seen(true, false, true), &c), Verdict::Fine);
        assert_eq!(h.label(&c), "not in the meeting");
        assert_eq!(
            h.judge(seen(true, false, true), &c),
            Verdict::Restart(Signal::Meeting)
        );
    }

    #[test]
    fn a_dead_container_is_brought_up_at_once_even_in_grace() {
        let mut h = Health::default();
        assert_eq!(h.judge(seen(false, false, false), &cfg()), Verdict::Up);
        assert_eq!(h.label(&cfg()), "no container");
        h.repaired(true);
        assert_eq!(h.label(&cfg()), "restarted 1/2");
    }

    #[test]
    fn each_signal_counts_its_own_consecutive_failures() {
        let mut h = Health::default();
        h.judge(OK, &cfg());
        for _ in 0..10 {
            assert_eq!(h.judge(seen(true, false, true), &cfg()), Verdict::Fine);
            assert_eq!(h.judge(seen(true, true, false), &cfg()), Verdict::Fine);
            assert_eq!(h.judge(OK, &cfg()), Verdict::Fine);
        }
        assert_eq!(h.restarts, 0);
    }

    #[test]
    fn unknown_answers_neither_fail_nor_clear() {
        let mut h = Health::default();
        h.judge(OK, &cfg());
        h.judge(seen(true, true, false), &cfg());
        let unknown_hls = Observation { hls: None, ..OK };
        assert_eq!(h.judge(unknown_hls, &cfg()), Verdict::Fine);
        assert_eq!(
            h.judge(seen(true, true, false), &cfg()),
            Verdict::Restart(Signal::Hls)
        );
        let before = h.clone();
        let no_docker = Observation {
            container: None,
            ..OK
        };
        assert_eq!(h.judge(no_docker, &cfg()), Verdict::Fine);
        assert_eq!(h, before, "a failed ps changes nothing");
    }

    #[test]
    fn restarts_are_bounded_then_beyond_repair_once() {
        let mut h = Health::default();
        let bad = seen(true, false, true);
        let mut verdicts = Vec::new();
        for _ in 0..14 {
            let v = h.judge(bad, &cfg());
            if matches!(v, Verdict::Restart(_) | Verdict::Up) {
                h.repaired(true);
            }
            verdicts.push(v);
        }
        let restarts = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Restart(_)))
            .count();
        let beyond = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::BeyondRepair(_)))
            .count();
        assert_eq!((restarts, beyond), (2, 1), "{verdicts:?}");
        assert_eq!(verdicts[2], Verdict::Restart(Signal::Meeting));
        assert_eq!(verdicts[8], Verdict::BeyondRepair(Signal::Meeting));
        assert_eq!(h.label(&cfg()), "beyond repair");
        assert!(!h.healthy());
    }

    #[test]
    fn a_failed_repair_counts_and_keeps_the_failure() {
        let mut h = Health::default();
        assert_eq!(h.judge(seen(false, false, false), &cfg()), Verdict::Up);
        h.repaired(false);
        assert_eq!(h.label(&cfg()), "no container");
        assert_eq!(h.judge(seen(false, false, false), &cfg()), Verdict::Up);
        h.repaired(false);
        assert_eq!(
            h.judge(seen(false, false, false), &cfg()),
            Verdict::BeyondRepair(Signal::Container)
        );
    }

    #[test]
    fn max_restarts_zero_goes_straight_to_beyond_repair() {
        let c = HealthConfig {
            max_restarts: 0,
            ..cfg()
        };
        let mut h = Health::default();
        assert_eq!(
            h.judge(seen(false, true, true), &c),
            Verdict::BeyondRepair(Signal::Container)
        );
        assert_eq!(h.judge(seen(false, true, true), &c), Verdict::Fine);
    }

    #[test]
    fn restarted_mails_at_most_once_an_hour() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let mut h = Health::default();
        assert!(h.mail_due(t0));
        assert!(!h.mail_due(t0 + TimeDelta::minutes(59)));
        assert!(!h.mail_due(t0 - TimeDelta::minutes(5)), "clock went back");
        assert!(h.mail_due(t0 + TimeDelta::minutes(61)));
    }

    #[test]
    fn a_playlist_is_judged_across_ticks_three_target_durations_apart() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let at = |secs: i64| t0 + TimeDelta::seconds(secs);
        let mut h = Health::default();
        assert_eq!(
            h.playlist_moved(&playlist(3, 10), at(0)),
            None,
            "first sight"
        );
        assert_eq!(h.playlist_moved(&playlist(3, 10), at(60)), Some(false));
        assert_eq!(h.playlist_moved(&playlist(3, 10), at(120)), Some(false));
        assert_eq!(h.playlist_moved(&playlist(3, 30), at(180)), Some(true));
        // Closer than 3 × 3 s to the last judged tick: neither frozen nor moving, and
        // the reading it is judged against stays the one of 180 s.
        assert_eq!(h.playlist_moved(&playlist(3, 30), at(188)), None);
        assert_eq!(h.playlist_moved(&playlist(3, 31), at(185)), None);
        assert_eq!(h.playlist_moved(&playlist(3, 30), at(189)), Some(false));
        // 9 s is enough for 3 s segments, not for 4 s ones.
        assert_eq!(h.playlist_moved(&playlist(4, 30), at(198)), None);
        assert_eq!(h.playlist_moved(&playlist(4, 30), at(201)), Some(false));
        // The clock went back: remembered, not judged.
        assert_eq!(h.playlist_moved(&playlist(3, 30), at(100)), None);
        assert_eq!(h.playlist_moved(&playlist(3, 30), at(160)), Some(false));
    }

    #[test]
    fn a_new_newest_segment_is_a_move_even_under_the_same_sequence() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        let mut h = Health::default();
        let mut event = playlist(2, 0);
        h.playlist_moved(&event, t0);
        event.segments += 1;
        assert_eq!(
            h.playlist_moved(&event, t0 + TimeDelta::seconds(60)),
            Some(true)
        );
        let renamed = Media {
            newest: Some("other.ts".into()),
            ..event.clone()
        };
        assert_eq!(
            h.playlist_moved(&renamed, t0 + TimeDelta::seconds(120)),
            Some(true)
        );
    }

    #[test]
    fn a_frozen_stream_is_restarted_after_fail_ticks_and_shown() {
        let mut h = Health::default();
        h.judge(OK, &cfg());
        assert_eq!(h.judge(FROZEN, &cfg()), Verdict::Fine);
        assert_eq!(h.label(&cfg()), "stream frozen");
        assert!(!h.healthy());
        // A closer tick neither fails nor clears.
        let closer = Observation { moving: None, ..OK };
        assert_eq!(h.judge(closer, &cfg()), Verdict::Fine);
        assert_eq!(h.judge(FROZEN, &cfg()), Verdict::Restart(Signal::Frozen));
        h.playlist = Some(PlaylistSeen {
            position: 1,
            newest: None,
            at: Utc::now(),
        });
        h.repaired(true);
        assert_eq!(h.playlist, None, "the new stream is judged afresh");
        assert_eq!(h.label(&cfg()), "restarted 1/2");
    }

    #[test]
    fn a_stream_frozen_for_one_tick_then_moving_again_is_fine() {
        let mut h = Health::default();
        h.judge(OK, &cfg());
        for _ in 0..5 {
            assert_eq!(h.judge(FROZEN, &cfg()), Verdict::Fine);
            assert_eq!(h.judge(OK, &cfg()), Verdict::Fine);
        }
        assert_eq!(h.label(&cfg()), "ok");
    }

    #[test]
    fn old_state_files_read_as_a_fresh_health() {
        let h: Health = serde_json::from_str("{}").unwrap();
        assert_eq!(h, Health::default());
    }

    #[test]
    fn mails_say_which_live_what_failed_and_what_to_do() {
        let (s, b) = restarted_mail("live1", 42, 2, Signal::Hls, 1, &cfg());
        assert!(s.starts_with(SUBJECT_PREFIX) && s.contains("live 42") && s.contains("restarted"));
        assert!(b.contains("1 of 2"), "{b}");
        let (s, _) = restarted_mail("live1", 42, 2, Signal::Frozen, 1, &cfg());
        assert!(s.contains("stream frozen"), "{s}");
        let (s, b) = beyond_repair_mail("live1", 42, 2, Signal::Meeting, 2, "/srv/slot2");
        assert!(s.contains("beyond repair") && s.contains("live 42"), "{s}");
        assert!(
            b.contains("not in the meeting") && b.contains("/srv/slot2"),
            "{b}"
        );
        assert!(b.contains("stop --live 42"), "{b}");
    }

    #[test]
    fn mails_name_a_webinar_by_its_slot_not_its_internal_id() {
        let id = crate::model::webinar_live_id("3319bf5aed");
        let (s, b) = restarted_mail("live1", id, 2, Signal::Hls, 1, &cfg());
        assert!(
            s.contains("the webinar in slot 2 streamer restarted"),
            "{s}"
        );
        assert!(!format!("{s}{b}").contains(&id.to_string()), "{s}\n{b}");
        let (s, b) = beyond_repair_mail("live1", id, 2, Signal::Meeting, 2, "/srv/slot2");
        assert!(!format!("{s}{b}").contains(&id.to_string()), "{s}\n{b}");
        assert!(b.contains("`bbb-pod-live stop --slot 2`"), "{b}");
    }
}
