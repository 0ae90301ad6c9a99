//! Several servers sharing one Pod (`[cluster] redis_url`): before starting a
//! waiting live, a server claims it in the shared Redis with an atomic, expiring
//! key. Exactly one server gets each live; a crashed server's claim runs out after
//! `claim_ttl_secs`. The claimant may renew its own claim (a retry after a failed
//! start), nobody else may take it while it lasts. Sessions are claimed the same way
//! (one streamer per BBB session): two requests for one room never start twice.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::ClusterConfig;
use crate::model::{LiveId, ServerNumber};

/// Bound on one Redis exchange: a dead coordinator must not hold the tick.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Takes or renews the claim `KEYS[1]` for `ARGV[1]`; answers the holder (ours when
/// taken or renewed), so a lost claim says who holds it.
const CLAIM_SCRIPT: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return ARGV[1] end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return holder or ''";

/// Deletes `KEYS[1]` only while `ARGV[1]` holds it: a released claim is never another's.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// What claiming answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours, newly or still.
    Won,
    /// Held by someone else: for a live, the number of the server that holds it; for a
    /// session, `live N`.
    Held(String),
}

impl Claim {
    /// `holder` holds the claim: won when that is `ours`.
    fn of(holder: String, ours: &str) -> Claim {
        if holder == ours {
            Claim::Won
        } else {
            Claim::Held(holder)
        }
    }

    pub fn won(&self) -> bool {
        matches!(self, Claim::Won)
    }

    /// The server number holding a live's claim (`None`: not a number we wrote).
    pub fn server(&self) -> Option<ServerNumber> {
        match self {
            Claim::Won => None,
            Claim::Held(h) => h.parse().ok().map(ServerNumber),
        }
    }

    /// The live holding a session's claim.
    pub fn live(&self) -> Option<LiveId> {
        match self {
            Claim::Won => None,
            Claim::Held(h) => h.strip_prefix("live ")?.parse().ok(),
        }
    }
}

#[derive(Clone)]
pub struct Claimer {
    client: redis::Client,
    ttl: Duration,
    number: ServerNumber,
}

impl Claimer {
    pub fn new(cfg: &ClusterConfig, number: ServerNumber) -> Result<Claimer> {
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
        bounded(async {
            let mut conn = self.connect("connecting").await?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .context("sending PING")?;
            anyhow::ensure!(pong == "PONG", "answered {pong:?} to PING");
            Ok(())
        })
        .await
    }

    async fn connect(&self, what: &'static str) -> Result<redis::aio::MultiplexedConnection> {
        self.client
            .get_multiplexed_async_connection()
            .await
            .context(what)
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

    /// Won when this server holds the claim on `live` (newly or still).
    pub async fn claim(&self, live: LiveId) -> Result<Claim> {
        self.claim_key(Self::key(live), self.number.to_string(), "the live")
            .await
    }

    /// Who holds the claim on `live`, without taking it (`--dry-run`): `None` when
    /// nobody does, `Won` when this server does.
    pub async fn holder(&self, live: LiveId) -> Result<Option<Claim>> {
        bounded(async {
            let mut conn = self.connect("connecting to the cluster Redis").await?;
            let holder: Option<String> = redis::cmd("GET")
                .arg(Self::key(live))
                .query_async(&mut conn)
                .await
                .context("reading a claim in the cluster Redis")?;
            let ours = self.number.to_string();
            Ok(holder.map(|h| Claim::of(h, &ours)))
        })
        .await
    }

    /// Won when `live` holds the claim on its session (newly or still): another live,
    /// on any server, starting a streamer for the same session holds it instead. Held
    /// by the live, not the server: which server starts the live is the live's own claim.
    pub async fn claim_session(&self, meeting_url: &str, live: LiveId) -> Result<Claim> {
        self.claim_key(
            Self::session_key(meeting_url),
            format!("live {live}"),
            "the session",
        )
        .await
    }

    /// The Redis key of a webinar's claim: one server streams a room.
    pub fn webinar_key(room: &str) -> String {
        format!("bbb-pod-live:webinar:{room}")
    }

    /// Won when this server holds the claim on the webinar `room` (newly or still): the
    /// start takes it, every tick renews it while the webinar runs, the stop releases it.
    pub async fn claim_webinar(&self, room: &str) -> Result<Claim> {
        self.claim_key(
            Self::webinar_key(room),
            self.number.to_string(),
            "the webinar",
        )
        .await
    }

    /// Gives up this server's claim on the webinar `room` (another's is left alone).
    pub async fn release_webinar(&self, room: &str) -> Result<()> {
        bounded(async {
            let mut conn = self.connect("connecting to the cluster Redis").await?;
            let _: i64 = redis::Script::new(RELEASE_SCRIPT)
                .key(Self::webinar_key(room))
                .arg(self.number.to_string())
                .invoke_async(&mut conn)
                .await
                .context("releasing the webinar's claim in the cluster Redis")?;
            Ok(())
        })
        .await
    }

    async fn claim_key(&self, key: String, holder: String, what: &str) -> Result<Claim> {
        bounded(async {
            let mut conn = self.connect("connecting to the cluster Redis").await?;
            let held: String = redis::Script::new(CLAIM_SCRIPT)
                .key(key)
                .arg(&holder)
                .arg(self.ttl.as_secs())
                .invoke_async(&mut conn)
                .await
                .with_context(|| format!("claiming {what} in the cluster Redis"))?;
            Ok(Claim::of(held, &holder))
        })
        .await
    }
}

/// One Redis exchange, bounded: a dead coordinator must not hold the tick.
async fn bounded<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(REDIS_TIMEOUT, work)
        .await
        .context("the cluster Redis did not answer within 5s")?
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

    #[test]
    fn a_held_claim_names_its_server_or_its_live() {
        assert!(Claim::Won.won());
        assert_eq!(Claim::Won.server(), None);
        assert_eq!(Claim::Held("2".into()).server(), Some(ServerNumber(2)));
        assert_eq!(Claim::Held("by hand".into()).server(), None);
        assert_eq!(Claim::Held("live 42".into()).live(), Some(42));
        assert_eq!(Claim::Held("2".into()).live(), None);
        assert!(!Claim::Held(String::new()).won());
    }
}
