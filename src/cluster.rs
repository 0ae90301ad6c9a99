//! Several servers sharing one Pod (`[cluster] redis_url`): before starting a
//! waiting live, a server claims it in the shared Redis with an atomic, expiring
//! key. Exactly one server gets each live; a crashed server's claim runs out after
//! `claim_ttl_secs`. The claimant may renew its own claim (a retry after a failed
//! start), nobody else may take it while it lasts.

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

    /// True when this server holds the claim on `live` (newly or still).
    pub async fn claim(&self, live: LiveId) -> Result<bool> {
        let work = async {
            let mut conn = self
                .client
                .get_multiplexed_async_connection()
                .await
                .context("connecting to the cluster Redis")?;
            let won: i64 = redis::Script::new(CLAIM_SCRIPT)
                .key(Self::key(live))
                .arg(self.number)
                .arg(self.ttl.as_secs())
                .invoke_async(&mut conn)
                .await
                .context("claiming the live in the cluster Redis")?;
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
