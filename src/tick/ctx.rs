//! What a tick acts with, below every stage: [`Ctx`] (the configuration, the clients
//! and stores, built once per process, and the broadcaster names claimed this tick),
//! the tick's "now", and the bound on failed starts. Every stage imports it; it
//! imports none of them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use crate::bbb::BbbClient;
use crate::cluster::Claimer;
use crate::compose;
use crate::config::Config;
use crate::docker::Docker;
use crate::mail::Mailer;
use crate::model::{PodWrite, SlotState};
use crate::names;
use crate::pod::{PodClient, PodError};
use crate::recording::PendingStore;
use crate::slots::SlotStore;

/// Failed start attempts after which a live is closed in Pod and the admins told why:
/// never retried forever (docs/php-script.md, defect 10).
pub const MAX_START_ATTEMPTS: u32 = 3;

/// The time the tick takes as "now" where it judges time between ticks (how long a room
/// stayed empty, how long a playlist stood still), RFC 3339. For the tests, which cannot
/// wait minutes between ticks; unset, the clock.
pub const ENV_NOW: &str = "BBB_POD_LIVE_NOW";

/// Everything a tick acts with. Built once per process.
pub struct Ctx {
    pub cfg: Arc<Config>,
    pub pod: PodClient,
    pub bbb: BbbClient,
    pub docker: Docker,
    pub mailer: Mailer,
    pub slots: SlotStore,
    pub pending: PendingStore,
    pub claimer: Option<Claimer>,
    /// [`ENV_NOW`], when set.
    now: Option<DateTime<Utc>>,
    /// The webinars of `serve` in this server's slots (`webinar/`): the tick brings
    /// up a held streamer `serve` left, stops ended ones, renews their claims.
    pub webinars: crate::webinar::Engine,
    /// Broadcaster slugs in use by this server's slots or claimed by a start of this
    /// tick, with the slot that holds them: two starts never pick the same name.
    claimed_slugs: Mutex<HashMap<String, u32>>,
    /// Pod writes of this tick whose answer could not be read (`confirm.rs`).
    unconfirmed: Mutex<Vec<PodWrite>>,
}

impl Ctx {
    pub fn new(cfg: Arc<Config>) -> Result<Ctx> {
        let pod = PodClient::new(&cfg.pod.url, &cfg.pod.token, cfg.pod.timeout)?
            .with_max_concurrency(cfg.pod.max_concurrency)
            .with_token_source(cfg.sources.pod_token.to_string());
        let bbb = BbbClient::new(
            &cfg.bbb.url,
            &cfg.bbb.secret,
            cfg.bbb.checksum,
            cfg.pod.timeout,
        )?;
        let mailer = Mailer::new(&cfg.mail)?;
        let slots = SlotStore::new(&cfg.server.base_dir, cfg.server.slots);
        let pending = PendingStore::new(&cfg.server.base_dir);
        let claimer = match &cfg.cluster {
            Some(c) if cfg.server.count > 1 => Some(Claimer::new(c, cfg.server.number)?),
            _ => None,
        };
        let now = match std::env::var(ENV_NOW) {
            Ok(t) => Some(
                DateTime::parse_from_rfc3339(&t)
                    .with_context(|| format!("{ENV_NOW}={t:?} is not an RFC 3339 time"))?
                    .with_timezone(&Utc),
            ),
            Err(_) => None,
        };
        Ok(Ctx {
            webinars: crate::webinar::Engine::new(Arc::clone(&cfg))?,
            docker: Docker::new(&cfg.docker)
                .with_registry(cfg.server.base_dir.join(".docker-running")),
            cfg,
            pod,
            bbb,
            mailer,
            slots,
            pending,
            claimer,
            now,
            claimed_slugs: Mutex::new(HashMap::new()),
            unconfirmed: Mutex::new(Vec::new()),
        })
    }

    /// What a Pod write's answer means for the step that sent it: done, or unconfirmed
    /// and recorded for the next ticks to read back (`confirm.rs`), the step going on
    /// as if it were done; any other error stays the step's.
    pub(super) fn settled<T>(
        &self,
        write: PodWrite,
        answer: Result<T, PodError>,
    ) -> Result<(), PodError> {
        match answer {
            Ok(_) => Ok(()),
            Err(e) if e.unconfirmed() => {
                warn!(write = %write, "{e}; checked again at the next tick");
                self.unconfirmed(write);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Records a write whose answer could not be read, for the next ticks to confirm.
    pub(super) fn unconfirmed(&self, write: PodWrite) {
        self.unconfirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(write);
    }

    /// The writes recorded by [`Ctx::unconfirmed`] so far.
    pub(super) fn take_unconfirmed(&self) -> Vec<PodWrite> {
        std::mem::take(&mut *self.unconfirmed.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Now, as the tick judges time between ticks ([`ENV_NOW`]).
    pub fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }

    /// Where recordings nobody asked to hand over are kept (never deleted).
    pub(super) fn kept_dir(&self, what: &str) -> PathBuf {
        self.cfg
            .server
            .base_dir
            .join("recordings")
            .join("kept")
            .join(what)
    }

    /// Starts the tick's slug claims afresh from the slots' states: the broadcasters
    /// they hold or are creating.
    pub(super) fn reclaim_slugs(&self, states: &BTreeMap<u32, SlotState>) {
        let mut claimed = self.claimed_slugs.lock().unwrap_or_else(|p| p.into_inner());
        claimed.clear();
        for (&slot, s) in states {
            if let Some(b) = &s.broadcaster {
                claimed.insert(b.slug.clone(), slot);
            } else if let Some(n) = &s.broadcaster_name {
                claimed.insert(names::django_slugify(n), slot);
            }
        }
    }

    /// The `fullName`s of our own users in `slot`'s meeting: its streamer, then its chat
    /// relay (the image's defaults when the compose file is unreadable).
    pub(super) fn own_users(&self, slot: u32) -> [String; 2] {
        let path = self.slots.compose_file(slot);
        std::fs::read_to_string(&path)
            .map_err(anyhow::Error::from)
            .and_then(|text| compose::own_users(&text))
            .unwrap_or_else(|e| {
                debug!(
                    slot,
                    "reading BBB_USER_NAME and BBB_CHAT_NAME from {}: {e:#}",
                    path.display()
                );
                [
                    compose::DEFAULT_STREAMER_NAME.to_owned(),
                    compose::DEFAULT_CHAT_NAME.to_owned(),
                ]
            })
    }

    /// The streamer's attendee name in `slot` (the image's default when unreadable).
    pub(super) fn streamer_name(&self, slot: u32) -> String {
        let [streamer, _] = self.own_users(slot);
        streamer
    }

    /// Claims a broadcaster slug for `slot`; false if another slot holds it.
    pub(super) fn claim_slug(&self, slug: &str, slot: u32) -> bool {
        let mut claimed = self.claimed_slugs.lock().unwrap_or_else(|p| p.into_inner());
        match claimed.get(slug) {
            Some(&holder) => holder == slot,
            None => {
                claimed.insert(slug.to_owned(), slot);
                true
            }
        }
    }
}

/// Boxes a future as `Send`: checking `Send` here, at a concrete lifetime, avoids
/// rustc's "implementation of `Send` is not general enough" on spawned async fns
/// that borrow (rust-lang/rust#102211).
pub(super) fn send<'a, T>(
    f: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    Box::pin(f)
}
