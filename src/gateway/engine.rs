//! What the HTTP layer asks of the webinar engine: the [`Webinars`] trait, so that the
//! handlers are tested against a double, and the agreed request, answer and refusal
//! types (/work/coord/webinar-interface*.md).

use std::future::Future;

/// A `start` as the HTTP layer parsed it (every field already checked, see `params.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    /// The URL path before `/start`, normalised: `/gw/1` (`/` for none).
    pub gateway_path: String,
    /// Pod's room: the webinar's identity.
    pub room: String,
    /// The BBB meetingID (third segment of `domain`).
    pub meeting_id: String,
    /// `host[:port]` of the Pod that called (first segment of `domain`).
    pub pod_host: String,
    /// The RTMP URL to push to.
    pub rtmp_dst: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The room was already live on this gateway path: nothing new started.
    pub already: bool,
    pub slot: u32,
    /// BBB said the meeting runs (else the live waits for it).
    pub meeting_running: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub was_live: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatPanel {
    /// Whether the video shows the chat panel after the flip.
    pub shown: bool,
}

/// Every reason the engine refuses; the HTTP layer maps each to a code and a sentence.
#[derive(Debug)]
pub enum Refusal {
    /// This gateway path streams another room now.
    GatewayBusy { room: String },
    /// No free slot on this server (or in the cluster).
    Full,
    /// BBB answered notFound for the meeting, or it ended.
    MeetingUnknown,
    /// BBB did not answer, or answered garbage.
    BbbUnreachable,
    /// The room is not live on this server (toggle, chat).
    NotLiveHere,
    /// A parameter the engine rejects, with a short plain reason.
    BadParameter(String),
    /// Busy now (a lock held past a bounded wait, the cluster Redis down…).
    Unavailable(String),
    /// BBB or the slot's chat Redis did not take the message.
    ChatFailed,
    /// Anything else, with its chain.
    Internal(anyhow::Error),
}

/// The webinar engine as the handlers use it. Futures are `Send`: axum runs handlers
/// on the multi-threaded runtime.
pub trait Webinars: Send + Sync + 'static {
    fn start(&self, req: StartRequest) -> impl Future<Output = Result<Started, Refusal>> + Send;
    fn stop(&self, room: &str) -> impl Future<Output = Result<Stopped, Refusal>> + Send;
    fn toggle_chat(&self, room: &str) -> impl Future<Output = Result<ChatPanel, Refusal>> + Send;
    fn chat(&self, room: &str, msg: &str) -> impl Future<Output = Result<(), Refusal>> + Send;
    /// Cheap and local: whether the room is live on this server.
    fn is_live_here(&self, room: &str) -> bool;
    /// Webinars recorded on this server now.
    fn running(&self) -> usize;
    /// Finish or park in-flight work (bounded) once the server stopped taking requests.
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}
