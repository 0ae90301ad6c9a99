//! The live's broadcaster in Pod: choosing its name, creating it, or reusing one
//! an earlier attempt of the same live left behind — never one another live uses.
//!
//! It does not delete broadcasters (the undo in `start`, the stop in `stop`).

use anyhow::{Result, anyhow, bail};
use tracing::{debug, info, warn};

use super::ctx::Ctx;
use super::shared::InUse;
use crate::model::{Broadcaster, Live, PodWrite, SlotState};
use crate::names;
use crate::pod::{CreateBroadcaster, NewBroadcaster};

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
            Err(e) if e.unconfirmed() => {
                // Pod may have made it: if this live does not reuse it (its next
                // attempt finds it by name), a later tick deletes it (`confirm.rs`).
                ctx.unconfirmed(PodWrite::CreateBroadcaster { name });
                return Err(e.into());
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
