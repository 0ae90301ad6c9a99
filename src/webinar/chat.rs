//! A viewer's message into the webinar's meeting: BBB 3.0's `sendChatMessage` (signed
//! like every call), or, for an older BBB, the slot's chat Redis, whose messages the
//! streamer's chat relay posts. Which one is chosen once, before the streamer's `up`
//! (the relay must then be in the container): BBB's own version from the API root.

use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};

use super::{Inner, Refusal};
use crate::bbb::BbbClient;
use crate::config::Config;
use crate::model::ChatRoute;
use crate::model::SlotState;

/// The name viewers' messages appear under in the meeting (the relay's `BBB_CHAT_NAME`).
const CHAT_NAME: &str = "Chat";
/// sendChatMessage takes at most 500 characters.
const MAX_CHARS: usize = 500;
/// Longest wait for the slot's chat Redis.
const REDIS_LIMIT: Duration = Duration::from_secs(2);

/// The route for a BBB: the API from 3.0 on; the Redis relay for an older one, or
/// when BBB does not say its version (Scalelite, BBB before 2.6) or cannot be asked.
pub(super) async fn route(bbb: &BbbClient) -> ChatRoute {
    match bbb.version().await {
        Ok(Some(v)) => route_for(&v),
        Ok(None) => ChatRoute::Redis,
        Err(e) => {
            warn!("asking BBB its version for the webinar's chat (the relay is used): {e}");
            ChatRoute::Redis
        }
    }
}

fn route_for(version: &str) -> ChatRoute {
    let major = version
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 3 => ChatRoute::Api,
        _ => ChatRoute::Redis,
    }
}

/// Sends `msg` into the meeting of the webinar in `slot`.
pub(super) async fn send(
    inner: &Inner,
    slot: u32,
    state: &SlotState,
    msg: &str,
) -> Result<(), Refusal> {
    let w = state.webinar.as_ref().ok_or(Refusal::NotLiveHere)?;
    let meeting_id = state.meeting_id.as_ref().ok_or(Refusal::NotLiveHere)?;
    let text: String = msg.chars().take(MAX_CHARS).collect();
    match w.chat {
        Some(ChatRoute::Redis) => publish(inner, slot, &text).await.map_err(|e| {
            warn!(room = %w.room, slot, "webinar chat through the slot's Redis: {e:#}");
            Refusal::ChatFailed
        }),
        // Not up yet: the API is tried (BBB 3.0 takes messages before the streamer joins).
        Some(ChatRoute::Api) | None => {
            match inner
                .bbb
                .send_chat_message(meeting_id, CHAT_NAME, &text)
                .await
            {
                Ok(true) => {
                    info!(room = %w.room, slot, chars = text.chars().count(), "viewer's message sent to the meeting");
                    Ok(())
                }
                Ok(false) => {
                    warn!(room = %w.room, slot, "BBB does not know sendChatMessage");
                    Err(Refusal::ChatFailed)
                }
                Err(e) => {
                    warn!(room = %w.room, slot, "webinar chat: sendChatMessage: {e}");
                    Err(Refusal::ChatFailed)
                }
            }
        }
    }
}

/// PUBLISH on the slot's chat Redis (`<redis_bind>:<6378+N>`, channel `chat<N>`).
async fn publish(inner: &Inner, slot: u32, text: &str) -> anyhow::Result<()> {
    let bind = inner.cfg.server.redis_bind;
    let host = if bind.is_unspecified() {
        "127.0.0.1".to_owned()
    } else if bind.is_ipv6() {
        format!("[{bind}]")
    } else {
        bind.to_string()
    };
    let url = format!("redis://{host}:{}/", Config::redis_port(slot));
    let work = async {
        let client = redis::Client::open(url.as_str()).context("the slot's Redis address")?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .context("connecting to the slot's chat Redis")?;
        let _: i64 = redis::cmd("PUBLISH")
            .arg(Config::redis_channel(slot))
            .arg(text)
            .query_async(&mut conn)
            .await
            .context("publishing on the slot's chat Redis")?;
        anyhow::Ok(())
    };
    tokio::time::timeout(REDIS_LIMIT, work)
        .await
        .context("the slot's chat Redis did not answer within 2 s")??;
    info!(slot, "viewer's message published on the slot's chat Redis");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bbb_3_takes_the_api_and_older_or_unknown_the_relay() {
        assert_eq!(route_for("3.0.4"), ChatRoute::Api);
        assert_eq!(route_for("3.1"), ChatRoute::Api);
        assert_eq!(route_for("2.7.12"), ChatRoute::Redis);
        assert_eq!(route_for("x"), ChatRoute::Redis);
    }
}
