//! Gather: what the tick reads before deciding — the meetings of the waiting lives
//! a free slot could take, read from Pod beside getMeetings.
//!
//! It reads only; it decides nothing and changes nothing.

use std::collections::HashMap;

use tracing::debug;

use super::Ctx;
use crate::compose;
use crate::model::{Live, LiveId, PodMeeting};

/// Reads the meetings of `lives` from Pod, 8 at a time. A meeting that cannot be
/// read, or whose BBB id is unusable, is left out: such a live is judged by its start.
pub(super) async fn prefetch_meetings(ctx: &Ctx, lives: &[&Live]) -> HashMap<LiveId, PodMeeting> {
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
            Ok(m) if compose::usable_meeting_id(m.meeting_id.trim()) => Some((id, m)),
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
