//! The live's broadcaster in Pod: choosing its name, creating it, or reusing one
//! an earlier attempt of the same live left behind — never one another live uses.
//!
//! It does not delete broadcasters (the undo in `start`, the stop in `stop`).

use std::collections::HashSet;

use anyhow::{Result, anyhow, bail};
use tracing::{debug, info, warn};

use super::Ctx;
use crate::config::PodConfig;
use crate::model::{Broadcaster, Live, LiveId, LiveStatus, SlotState};
use crate::names;
use crate::pod::{CreateBroadcaster, NewBroadcaster};

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
    fn by_other(&self, b: &Broadcaster, me: LiveId, pod: &PodConfig) -> bool {
        let streamed_for = b
            .stream_url
            .as_deref()
            .and_then(|u| pod.stream_key_in(u))
            .and_then(names::live_of_stream_key);
        self.broadcasters.contains(&b.id)
            || streamed_for.is_some_and(|other| other != me && self.lives.contains(&other))
    }
}

/// Creates the live's broadcaster, or reuses one left by an earlier attempt. Its
/// name is claimed for `slot` first (two starts of one tick never pick the same),
/// and recorded in `state` before Pod is asked.
pub(super) async fn ensure_broadcaster(
    ctx: &Ctx,
    slot: u32,
    live: &Live,
    state: &mut SlotState,
    key: &str,
    running: &InUse,
) -> Result<Broadcaster> {
    let hls = ctx.cfg.pod.hls_url_of(key);
    let meeting_name = state.meeting_name.clone().unwrap_or_default();
    let mut distinct = false;
    for _ in 0..3 {
        let name = match (&state.broadcaster_name, distinct) {
            (Some(n), false) => n.clone(),
            _ => names::broadcaster_name(&meeting_name, live.id, distinct),
        };
        let slug = names::django_slugify(&name);
        if !ctx.claim_slug(&slug, slot) {
            if distinct {
                bail!("broadcaster name {name:?} is already used by another slot");
            }
            distinct = true;
            continue;
        }
        state.broadcaster_name = Some(name.clone());
        ctx.slots.save(slot, state)?;
        debug!(live = live.id, name = %name, slug = %slug, "creating broadcaster");
        let created = ctx
            .pod
            .create_broadcaster(&NewBroadcaster {
                name: name.clone(),
                stream_url: hls.clone(),
                building_id: ctx.cfg.pod.building_id,
                is_restricted: live.is_restricted,
            })
            .await;
        match created {
            Ok(CreateBroadcaster::Created(b)) => {
                info!(live = live.id, broadcaster = b.id, slug = %b.slug, "broadcaster created");
                return Ok(b);
            }
            Ok(taken) => {
                let existing = match taken {
                    CreateBroadcaster::NameTaken => {
                        find_broadcaster_by_name(ctx, &name, &slug).await?
                    }
                    _ => find_broadcaster_by_url(ctx, &hls).await?,
                };
                match existing {
                    Some(b)
                        if b.stream_url.as_deref() == Some(hls.as_str())
                            || !running.by_other(&b, live.id, &ctx.cfg.pod) =>
                    {
                        info!(live = live.id, broadcaster = b.id, slug = %b.slug, "reusing a broadcaster left by an earlier attempt");
                        if b.stream_url.as_deref() != Some(hls.as_str()) {
                            return Ok(ctx
                                .pod
                                .repoint_broadcaster(&b.slug, &hls, live.is_restricted)
                                .await?);
                        }
                        return Ok(b);
                    }
                    Some(b) if !distinct => {
                        debug!(
                            live = live.id,
                            other = b.id,
                            "broadcaster name used by a running live; choosing another"
                        );
                        distinct = true;
                    }
                    _ => bail!("Pod says broadcaster {name:?} exists, but it cannot be reused"),
                }
            }
            Err(e) if e.status() == Some(500) && !distinct => {
                // Pod answers 500 when the slug or stream URL collides (docs/pod-api.md).
                // The stream URL carries this live's id: a broadcaster already on it is
                // a leftover of this live's own earlier attempt.
                if let Some(b) = find_broadcaster_by_url(ctx, &hls).await?
                    && !running.by_other(&b, live.id, &ctx.cfg.pod)
                {
                    info!(live = live.id, broadcaster = b.id, slug = %b.slug, "reusing the broadcaster already on this live's stream URL");
                    return Ok(b);
                }
                warn!(
                    live = live.id,
                    "Pod refused broadcaster {name:?} with a server error; trying a distinct name"
                );
                distinct = true;
            }
            Err(e) => return Err(anyhow!(e).context(format!("creating broadcaster {name:?}"))),
        }
    }
    bail!("could not create a broadcaster for live {}", live.id)
}

/// The broadcaster named `name` (by its slug, else in the whole list).
pub(super) async fn find_broadcaster_by_name(
    ctx: &Ctx,
    name: &str,
    slug: &str,
) -> Result<Option<Broadcaster>> {
    if let Some(b) = ctx.pod.broadcaster(slug).await?
        && b.name == name
    {
        return Ok(Some(b));
    }
    Ok(ctx
        .pod
        .broadcasters()
        .await?
        .into_iter()
        .find(|b| b.name == name))
}

/// The broadcaster whose stream URL is `url`.
pub(super) async fn find_broadcaster_by_url(ctx: &Ctx, url: &str) -> Result<Option<Broadcaster>> {
    Ok(ctx
        .pod
        .broadcasters()
        .await?
        .into_iter()
        .find(|b| b.stream_url.as_deref() == Some(url)))
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
