//! Several servers sharing one Pod (`[cluster] redis_url`): before starting a
//! waiting live, a server claims it in the shared Redis with an atomic, expiring
//! key. Exactly one server gets each live; a crashed server's claim runs out after
//! `claim_ttl_secs`. The claimant may renew its own claim (a retry after a failed
//! start), nobody else may take it while it lasts. Sessions are claimed the same way
//! (one streamer per BBB session): two requests for one room never start twice.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::ClusterConfig;
use crate::model::LiveId;

/// Bound on one Redis exchange: a dead coordinator must not hold the tick.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

const CLAIM_SCRIPT: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0";

pub struct Claimer {
    client: redis::Client,
    ttl: Duration,
    number: u32,
}

impl Claimer {
    pub fn new(cfg: &ClusterConfig, number: u32) -> Result<Claimer> {
        let client =
            redis::Client::open(cfg.redis_url.expose()).context("opening cluster.redis_url")?;
        Ok(Claimer {
            client,
            ttl: cfg.claim_ttl,
            number,
        })
    }

    /// PING, for `check`: the Redis answers within the same bound as a claim.
    pub async fn ping(&self) -> Result<()> {
        let work = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection()
                .await
                .context("connecting")?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .context("sending PING")?;
            anyhow::ensure!(pong == "PONG", "answered {pong:?} to PING");
            anyhow::Ok(())
        };
        tokio::time::timeout(REDIS_TIMEOUT, work)
            .await
            .context("no answer within 5s")?
    }

    /// The Redis key of a live's claim.
    pub fn key(live: LiveId) -> String {
        format!("bbb-pod-live:claim:{live}")
    }

    /// The Redis key of a session's claim: one streamer per BBB session. Keyed by the
    /// Pod meeting the lives point at (Pod makes one meeting row per session).
    pub fn session_key(meeting_url: &str) -> String {
        format!("bbb-pod-live:session:{}", meeting_url.trim_end_matches('/'))
    }

    /// True when this server holds the claim on `live` (newly or still).
    pub async fn claim(&self, live: LiveId) -> Result<bool> {
        self.claim_key(Self::key(live), self.number.to_string(), "the live")
            .await
    }

    /// True when `live` holds the claim on its session (newly or still): another live,
    /// on any server, starting a streamer for the same session makes it false. Held by
    /// the live, not the server: which server starts the live is the live's own claim.
    pub async fn claim_session(&self, meeting_url: &str, live: LiveId) -> Result<bool> {
        self.claim_key(
            Self::session_key(meeting_url),
            format!("live {live}"),
            "the session",
        )
        .await
    }

    async fn claim_key(&self, key: String, holder: String, what: &str) -> Result<bool> {
        let work = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection()
                .await
                .context("connecting to the cluster Redis")?;
            let won: i64 = redis::Script::new(CLAIM_SCRIPT)
                .key(key)
                .arg(holder)
                .arg(self.ttl.as_secs())
                .invoke_async(&mut conn)
                .await
                .with_context(|| format!("claiming {what} in the cluster Redis"))?;
            anyhow::Ok(won == 1)
        };
        tokio::time::timeout(REDIS_TIMEOUT, work)
            .await
            .context("the cluster Redis did not answer within 5s")?
    }
}

/// `redis_url` as it may be shown: without its password.
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(cluster.redis_url)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_hides_the_password() {
        assert_eq!(
            shown_url("redis://:s3cret@coord.univ.fr:6379/0"),
            "redis://:***@coord.univ.fr:6379/0"
        );
        assert_eq!(
            shown_url("redis://coord.univ.fr/0"),
            "redis://coord.univ.fr/0"
        );
        assert!(!shown_url("redis://user:pw@h/0").contains("pw"));
    }
}
