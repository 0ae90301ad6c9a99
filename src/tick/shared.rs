//! What the slot tasks of one tick share, below every stage: Pod's lives as this tick
//! read them, what other lives use ([`InUse`]: a broadcaster of theirs is never taken
//! over), the waiting lives a slot may take instead of one claimed elsewhere, and the
//! meetings read before planning. Read-only but for the standby queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use crate::config::PodConfig;
use crate::model::{Broadcaster, Live, LiveId, LiveStatus, PodMeeting};
use crate::names;

/// What the concurrent slot actions of one tick share.
pub(super) struct Shared {
    pub(super) lives: HashMap<LiveId, Live>,
    pub(super) in_use: InUse,
    /// Waiting lives the plan found no slot for, oldest first: with `[cluster]`, a slot
    /// whose planned live was claimed by another server takes the next of these.
    pub(super) standby: Mutex<VecDeque<LiveId>>,
    /// Meetings of waiting lives read before planning (the start path reuses them).
    pub(super) prefetched: HashMap<LiveId, PodMeeting>,
    /// BBB's meetings this tick: a start whose meeting it had to read itself checks
    /// there that BBB shows the live's session.
    pub(super) meetings: crate::plan::MeetingsView,
}

impl Shared {
    pub(super) fn next_standby(&self) -> Option<LiveId> {
        self.standby
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

/// What other lives use, as this tick read Pod: a broadcaster of theirs is never
/// taken over as a leftover.
pub(crate) struct InUse {
    /// Broadcasters of the lives Pod shows running.
    broadcasters: HashSet<u64>,
    /// Lives waiting or running (one may be starting on another server right now).
    lives: HashSet<LiveId>,
}

impl InUse {
    pub(super) fn new<'a>(lives: impl Iterator<Item = &'a Live>) -> InUse {
        let mut in_use = InUse {
            broadcasters: HashSet::new(),
            lives: HashSet::new(),
        };
        for l in lives {
            if matches!(l.status, LiveStatus::Waiting | LiveStatus::Running) {
                in_use.lives.insert(l.id);
            }
            if l.status == LiveStatus::Running
                && let Some(b) = l.broadcaster_id
            {
                in_use.broadcasters.insert(b);
            }
        }
        in_use
    }

    /// Whether `b` belongs to a live other than `me`: a live Pod shows running with it,
    /// or the waiting or running live its stream URL was made for (the stream key ends
    /// with the live id) — another server may be starting that live now, before Pod
    /// knows its broadcaster.
    pub(super) fn by_other(&self, b: &Broadcaster, me: LiveId, pod: &PodConfig) -> bool {
        let streamed_for = b
            .stream_url
            .as_deref()
            .and_then(|u| pod.stream_key_in(u))
            .and_then(names::live_of_stream_key);
        self.broadcasters.contains(&b.id)
            || streamed_for.is_some_and(|other| other != me && self.lives.contains(&other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tick::fixtures::{config, live, waiting};

    const HLS: &str = "https://live.univ.fr/hls/";

    /// The `[pod]` of the test configuration, whose `hls_url` is [`HLS`].
    fn pod() -> PodConfig {
        let pod = config(1, 1).pod;
        assert_eq!(pod.hls_url, HLS);
        pod
    }

    fn broadcaster(id: u64, key: Option<&str>) -> Broadcaster {
        Broadcaster {
            id,
            slug: format!("b{id}"),
            name: format!("B {id}"),
            stream_url: key.map(|k| format!("{HLS}{k}.m3u8")),
        }
    }

    #[test]
    fn a_broadcaster_belongs_to_another_live_when_pod_runs_that_live_with_it() {
        let mut other = live(2, LiveStatus::Running, Some("2/1"));
        other.broadcaster_id = Some(20);
        let mut closed = live(3, LiveStatus::Stopped, None);
        closed.broadcaster_id = Some(30);
        let lives = [waiting(1), other, closed];
        let in_use = InUse::new(lives.iter());
        assert!(in_use.by_other(&broadcaster(20, None), 1, &pod()));
        // The broadcaster of a closed live is a leftover anyone may take.
        assert!(!in_use.by_other(&broadcaster(30, None), 1, &pod()));
        assert!(!in_use.by_other(&broadcaster(40, None), 1, &pod()));
    }

    #[test]
    fn a_broadcaster_streamed_for_another_live_still_asked_for_is_that_lives() {
        let key = |id: LiveId| crate::names::stream_key("Cours", id);
        let lives = [waiting(1), waiting(2), live(3, LiveStatus::Stopped, None)];
        let in_use = InUse::new(lives.iter());
        // Made for live 2, which waits (maybe starting on another server now).
        assert!(in_use.by_other(&broadcaster(9, Some(&key(2))), 1, &pod()));
        // Made for live 1 itself, or for a closed live: reusable.
        assert!(!in_use.by_other(&broadcaster(9, Some(&key(1))), 1, &pod()));
        assert!(!in_use.by_other(&broadcaster(9, Some(&key(3))), 1, &pod()));
        // Another HLS server's URL says nothing about our lives.
        let elsewhere = Broadcaster {
            stream_url: Some(format!("https://other/hls/{}.m3u8", key(2))),
            ..broadcaster(9, None)
        };
        assert!(!in_use.by_other(&elsewhere, 1, &pod()));
    }
}
