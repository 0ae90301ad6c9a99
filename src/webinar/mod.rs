//! The webinar engine behind `serve` (Pod 3.8.2 to 4.1, webinar-api.md): what Pod's
//! `start`, `stop`, `chat?toggle` and `POST chat` do to this server's slots. A webinar
//! takes a slot like one of Pod's livestreams (the same state file, crash safety,
//! health and cluster claims), recorded durably before `start` is answered.
//!
//! Pod waits on `start` with no timeout while a tick may hold the tick lock for
//! minutes, so nothing here waits on the tick: a slot is taken under the short slot
//! reservation lock (`lock.rs`), which the tick also takes when it fills a free slot,
//! and the streamer's `up` runs later, `webinar.hold_secs` after the answer, under the
//! slot's own lock. Whatever `serve` leaves undone (it crashed, it was stopped) the
//! next tick finishes: [`Engine::tend`] brings a held streamer up, stops a webinar
//! Pod asked to stop or whose meeting ended, and renews the cluster claims.
//!
//! Not here: HTTP, the token, the parameters' syntax (`gateway`); the decision of
//! what a tick does to a webinar's slot (`plan::webinar_step`, pure).

mod chat;
mod slot;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::bbb::BbbClient;
use crate::cluster::{Claim, Claimer};
use crate::config::Config;
use crate::docker::Docker;
use crate::mail::Mailer;
use crate::model::{MeetingId, Phase, SlotState, StopReason};
use crate::model::{Webinar, webinar_live_id};
use crate::pod::PodClient;
use crate::slots::SlotStore;

pub use slot::Tended;

/// Longest wait for BBB's getMeetingInfo inside `start` (Pod's page waits on it).
const START_BBB_LIMIT: Duration = Duration::from_millis(1500);
/// Longest wait of a background `up`, stop or restart for the slot's own lock (a tick
/// restarting the streamer holds it); past it, the next tick does the work.
const BACKGROUND_LOCK_WAIT: Duration = Duration::from_secs(120);
/// How long `shutdown` waits for the background work.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// What Pod's `start` asks, as the gateway parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    /// The gateway URL's path, normalised (`/gw/1`).
    pub gateway_path: String,
    pub room: String,
    /// BBB's meetingID: the third `/`-segment of Pod's `domain`.
    pub meeting_id: MeetingId,
    /// `host[:port]` of the Pod: the first segment of `domain`.
    pub pod_host: String,
    pub rtmp_dst: String,
}

/// A `start` answered with success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// The room was already live (here, or on the server `slot: None` names none of).
    pub already: bool,
    /// The slot it streams in here; `None` when another server of the cluster streams it.
    pub slot: Option<u32>,
    /// BBB already runs the meeting (else the streamer waits for it to run).
    pub meeting_running: bool,
}

/// A `stop` answered with success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// The room was live here (its stop is recorded and under way).
    pub was_live: bool,
}

/// The chat panel after a toggle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatPanel {
    pub shown: bool,
}

/// Why a request is refused; the gateway maps each to a code and a sentence.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the gateway path streams room {room} now")]
    GatewayBusy { room: String },
    #[error("every slot of this server is busy")]
    Full,
    #[error("BBB does not hold the meeting (or it has ended)")]
    MeetingUnknown,
    #[error("BBB did not answer")]
    BbbUnreachable,
    #[error("the room is not live here")]
    NotLiveHere,
    #[error("bad parameter: {0}")]
    BadParameter(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("the chat message could not be sent")]
    ChatFailed,
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// The engine, shared by `serve`'s handlers and used by the tick. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Arc<Config>,
    slots: SlotStore,
    bbb: BbbClient,
    docker: Docker,
    pod: PodClient,
    mailer: Mailer,
    claimer: Option<Claimer>,
    /// Background work of `serve` (held ups, stops, restarts), for `shutdown`.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// One toggle at a time: each reads the panel the previous one wrote.
    toggling: tokio::sync::Mutex<()>,
}

impl Engine {
    pub fn new(cfg: Arc<Config>) -> Result<Engine> {
        let bbb = BbbClient::new(
            &cfg.bbb.url,
            &cfg.bbb.secret,
            cfg.bbb.checksum,
            cfg.pod.timeout,
        )?;
        let pod = PodClient::new(&cfg.pod.url, &cfg.pod.token, cfg.pod.timeout)?
            .with_token_source(cfg.sources.pod_token.to_string());
        let claimer = match &cfg.cluster {
            Some(c) if cfg.server.count > 1 => Some(Claimer::new(c, cfg.server.number)?),
            _ => None,
        };
        Ok(Engine {
            inner: Arc::new(Inner {
                slots: SlotStore::new(&cfg.server.base_dir, cfg.server.slots),
                docker: Docker::new(&cfg.docker)
                    .with_registry(cfg.server.base_dir.join(".docker-running")),
                mailer: Mailer::new(&cfg.mail)?,
                bbb,
                pod,
                claimer,
                cfg,
                tasks: Mutex::new(Vec::new()),
                toggling: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Pod's `start`: the room's live recorded in a free slot before the answer; the
    /// streamer's `up` follows `webinar.hold_secs` later in the background (or from the
    /// next tick). Cancel-safe: the reservation runs as its own task, so a caller that
    /// stops waiting leaves it whole or never begun.
    pub async fn start(&self, req: StartRequest) -> Result<Started, Refusal> {
        check_start(&req)?;
        if let Some((slot, state)) = self.find(&req.room).map_err(Refusal::Internal)? {
            return already(slot, &state);
        }
        let details = match tokio::time::timeout(
            START_BBB_LIMIT,
            self.inner.bbb.meeting_details(&req.meeting_id),
        )
        .await
        {
            Ok(Ok(Some(d))) if !d.session.has_ended() => d,
            Ok(Ok(_)) => return Err(Refusal::MeetingUnknown),
            Ok(Err(e)) => {
                warn!(room = %req.room, meeting = %req.meeting_id, "webinar not started: getMeetingInfo: {e}");
                return Err(Refusal::BbbUnreachable);
            }
            Err(_) => {
                warn!(room = %req.room, meeting = %req.meeting_id, "webinar not started: getMeetingInfo took more than 1.5 s");
                return Err(Refusal::BbbUnreachable);
            }
        };
        let engine = self.clone();
        let reserving = tokio::spawn(async move { engine.reserve(req, details.session).await });
        reserving
            .await
            .map_err(|e| Refusal::Internal(anyhow::anyhow!("the reservation task failed: {e}")))?
    }

    /// Takes the cluster claim and a free slot for the room, writes its state, and
    /// schedules the held `up`.
    async fn reserve(
        &self,
        req: StartRequest,
        session: crate::model::BbbMeeting,
    ) -> Result<Started, Refusal> {
        let inner = &self.inner;
        if let Some(claimer) = &inner.claimer {
            match claimer.claim_webinar(&req.room).await {
                Ok(Claim::Won) => {}
                Ok(held) => {
                    info!(room = %req.room, holder = ?held, "webinar already streamed by another server");
                    return Ok(Started {
                        already: true,
                        slot: None,
                        meeting_running: session.running,
                    });
                }
                Err(e) => {
                    warn!(room = %req.room, "webinar not started: {e:#}");
                    return Err(Refusal::Unavailable(
                        "the cluster Redis is unreachable".into(),
                    ));
                }
            }
        }
        let taken = self.take_slot(&req, &session).await;
        if let (Err(_), Some(claimer)) = (&taken, &inner.claimer)
            && let Err(e) = claimer.release_webinar(&req.room).await
        {
            warn!(room = %req.room, "releasing the webinar's claim: {e:#}");
        }
        let started = taken?;
        if let (false, Some(slot)) = (started.already, started.slot) {
            let engine = self.clone();
            self.spawn(async move { engine.held_up(slot).await });
        }
        Ok(started)
    }

    /// Under the slot reservation lock: the room's slot if it already has one, else
    /// the first free slot, its state written (fsync) before the lock is released.
    async fn take_slot(
        &self,
        req: &StartRequest,
        session: &crate::model::BbbMeeting,
    ) -> Result<Started, Refusal> {
        let inner = &self.inner;
        let _reserving = inner
            .slots
            .lock_slots()
            .await
            .map_err(|e| Refusal::Unavailable(format!("{e:#}")))?;
        let (states, broken) = inner.slots.load_all().map_err(Refusal::Internal)?;
        for (&slot, state) in &states {
            let Some(w) = &state.webinar else { continue };
            if w.room == req.room {
                return already(slot, state);
            }
            if w.gateway_path == req.gateway_path && state.phase != Phase::Stopping {
                return Err(Refusal::GatewayBusy {
                    room: w.room.clone(),
                });
            }
        }
        let busy = |s: &u32| states.contains_key(s) || broken.iter().any(|(b, _)| b == s);
        let Some(slot) = (1..=inner.cfg.server.slots).find(|s| !busy(s)) else {
            info!(room = %req.room, "webinar not started: every slot is busy");
            return Err(Refusal::Full);
        };
        let now = Utc::now();
        let mut state = SlotState::new(webinar_live_id(&req.room), now);
        state.meeting_id = Some(req.meeting_id.clone());
        state.session = Some(session.internal_meeting_id.clone()).filter(|s| !s.is_empty());
        state.meeting_name = Some(format!("webinar {}", req.meeting_id));
        state.download = inner.cfg.webinar.record;
        state.webinar = Some(Webinar {
            room: req.room.clone(),
            gateway_path: req.gateway_path.clone(),
            pod_host: req.pod_host.clone(),
            rtmp_dst: req.rtmp_dst.clone(),
            chat_shown: None,
            chat: None,
            up_after: now + chrono::Duration::from_std(inner.cfg.webinar.hold).unwrap_or_default(),
            up_failures: 0,
            meeting_running: session.running,
        });
        let write = || -> Result<()> {
            std::fs::create_dir_all(inner.slots.dir(slot))
                .with_context(|| format!("creating {}", inner.slots.dir(slot).display()))?;
            inner.slots.clear_requests(slot)?;
            inner.slots.save(slot, &state)
        };
        write().map_err(Refusal::Internal)?;
        info!(
            room = %req.room,
            slot,
            gateway = %req.gateway_path,
            meeting = %req.meeting_id,
            running = session.running,
            "webinar recorded; its streamer starts in {} s",
            inner.cfg.webinar.hold.as_secs()
        );
        Ok(Started {
            already: false,
            slot: Some(slot),
            meeting_running: session.running,
        })
    }

    /// Pod's `stop`: recorded durably, then done in the background (or by the next
    /// tick). A room not live here is a success.
    pub async fn stop(&self, room: &str) -> Result<Stopped, Refusal> {
        let Some((slot, _)) = self.find(room).map_err(Refusal::Internal)? else {
            return Ok(Stopped { was_live: false });
        };
        self.inner
            .slots
            .request_stop(slot)
            .map_err(Refusal::Internal)?;
        info!(room, slot, "Pod asked to stop the webinar");
        let engine = self.clone();
        self.spawn(async move {
            match engine.lock_slot(slot).await {
                Some(_acting) => {
                    if let Err(e) = engine.stop_in(slot, StopReason::PodAsked).await {
                        warn!(
                            slot,
                            "stopping the webinar (the next tick tries again): {e:#}"
                        );
                    }
                }
                None => info!(slot, "the webinar's slot is busy; the next tick stops it"),
            }
        });
        Ok(Stopped { was_live: true })
    }

    /// Stops the webinar of `slot` now (`bbb-pod-live stop --slot`, or a tick's stop of
    /// it), waiting for `serve` if it acts on the slot.
    pub async fn stop_slot(
        &self,
        slot: u32,
        reason: StopReason,
    ) -> Result<Vec<crate::model::Problem>> {
        let _acting = self
            .inner
            .slots
            .lock_slot(slot, BACKGROUND_LOCK_WAIT)
            .await?;
        self.stop_in(slot, reason).await
    }

    /// Pod's `chat?toggle`: flips the chat panel. Before the streamer's `up`, the value
    /// it starts with; after, the streamer is recreated with the panel flipped.
    pub async fn toggle_chat(&self, room: &str) -> Result<ChatPanel, Refusal> {
        let _one = self.inner.toggling.lock().await;
        let Some((slot, state)) = self.find(room).map_err(Refusal::Internal)? else {
            return Err(Refusal::NotLiveHere);
        };
        let slots = &self.inner.slots;
        let now = slots
            .chat_panel_request(slot)
            .map_err(Refusal::Internal)?
            .or(state.webinar.as_ref().and_then(|w| w.chat_shown))
            .unwrap_or(true);
        let shown = !now;
        slots
            .request_chat_panel(slot, shown)
            .map_err(Refusal::Internal)?;
        info!(room, slot, shown, "Pod toggled the chat panel");
        if state.phase == Phase::Running {
            let engine = self.clone();
            self.spawn(async move {
                if let Some(_acting) = engine.lock_slot(slot).await
                    && let Err(e) = engine.apply_panel(slot).await
                {
                    warn!(
                        slot,
                        "recreating the streamer with the chat panel flipped: {e:#}"
                    );
                }
            });
        }
        Ok(ChatPanel { shown })
    }

    /// Pod's `POST chat`: a viewer's message into the meeting.
    pub async fn chat(&self, room: &str, msg: &str) -> Result<(), Refusal> {
        let Some((slot, state)) = self.find(room).map_err(Refusal::Internal)? else {
            return Err(Refusal::NotLiveHere);
        };
        chat::send(&self.inner, slot, &state, msg).await
    }

    /// Whether `room` is live (recorded, not stopping) on this server. No network.
    pub fn is_live_here(&self, room: &str) -> bool {
        matches!(self.find(room), Ok(Some(_)))
    }

    /// Webinars whose streamer runs on this server now.
    pub fn running(&self) -> usize {
        match self.inner.slots.load_all() {
            Ok((states, _)) => states
                .values()
                .filter(|s| s.webinar.is_some() && s.phase == Phase::Running)
                .count(),
            Err(_) => 0,
        }
    }

    /// Waits up to 10 s for the background work; what is left the next tick finishes
    /// (every step is recorded before the next).
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(SHUTDOWN_LIMIT, all).await.is_err() {
            warn!("webinar work still under way at shutdown; the next tick finishes it");
        }
    }

    /// The slot streaming `room` and its state (a stopping one is no longer live).
    fn find(&self, room: &str) -> Result<Option<(u32, SlotState)>> {
        let (states, _) = self.inner.slots.load_all()?;
        Ok(states.into_iter().find(|(_, s)| {
            s.phase != Phase::Stopping && s.webinar.as_ref().is_some_and(|w| w.room == room)
        }))
    }

    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(tokio::spawn(work));
    }

    /// The slot's own lock for background work, waiting for a tick that holds it.
    async fn lock_slot(&self, slot: u32) -> Option<crate::lock::ShortLock> {
        match self.inner.slots.lock_slot(slot, BACKGROUND_LOCK_WAIT).await {
            Ok(l) => Some(l),
            Err(e) => {
                warn!(slot, "{e:#}");
                None
            }
        }
    }

    /// `serve`'s held `up`: waits until the webinar's `up_after`, then brings the
    /// streamer up unless the tick did first.
    async fn held_up(&self, slot: u32) {
        let wait = match self.inner.slots.load(slot) {
            Ok(Some(SlotState {
                webinar: Some(w), ..
            })) => (w.up_after - Utc::now()).to_std().unwrap_or_default(),
            _ => return,
        };
        tokio::time::sleep(wait).await;
        let Some(_acting) = self.lock_slot(slot).await else {
            return;
        };
        if let Err(e) = self.bring_up(slot).await {
            warn!(
                slot,
                "bringing the webinar's streamer up (the next tick tries again): {e:#}"
            );
        }
    }
}

/// The answer to a start of a room already live in `slot`.
fn already(slot: u32, state: &SlotState) -> Result<Started, Refusal> {
    Ok(Started {
        already: true,
        slot: Some(slot),
        meeting_running: state.webinar.as_ref().is_some_and(|w| w.meeting_running),
    })
}

/// What the gateway's parsing cannot know: values the streamer could not use.
fn check_start(req: &StartRequest) -> Result<(), Refusal> {
    if !crate::compose::usable_meeting_id(req.meeting_id.as_str()) {
        return Err(Refusal::BadParameter("the meeting id is empty".into()));
    }
    if req.room.is_empty() {
        return Err(Refusal::BadParameter("the room is empty".into()));
    }
    let rtmp = req.rtmp_dst.to_ascii_lowercase();
    if !(rtmp.starts_with("rtmp://") || rtmp.starts_with("rtmps://"))
        || req
            .rtmp_dst
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Refusal::BadParameter(
            "rtmpDst is not an rtmp:// address".into(),
        ));
    }
    Ok(())
}
