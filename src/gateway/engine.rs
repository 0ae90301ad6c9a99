//! What the HTTP layer asks of the webinar engine: the [`Webinars`] trait, so that the
//! handlers are tested against a double, implemented here for the real
//! [`crate::webinar::Engine`] (the API agreed with it: start, stop, toggle, chat, and
//! its refusals, which the gateway maps to codes and sentences).

use std::future::Future;

pub use crate::webinar::{ChatPanel, Refusal, StartRequest, Started, Stopped};

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

/// The real engine: each method is its inherent one.
impl Webinars for crate::webinar::Engine {
    async fn start(&self, req: StartRequest) -> Result<Started, Refusal> {
        crate::webinar::Engine::start(self, req).await
    }
    async fn stop(&self, room: &str) -> Result<Stopped, Refusal> {
        crate::webinar::Engine::stop(self, room).await
    }
    async fn toggle_chat(&self, room: &str) -> Result<ChatPanel, Refusal> {
        crate::webinar::Engine::toggle_chat(self, room).await
    }
    async fn chat(&self, room: &str, msg: &str) -> Result<(), Refusal> {
        crate::webinar::Engine::chat(self, room, msg).await
    }
    fn is_live_here(&self, room: &str) -> bool {
        crate::webinar::Engine::is_live_here(self, room)
    }
    fn running(&self) -> usize {
        crate::webinar::Engine::running(self)
    }
    async fn shutdown(&self) {
        crate::webinar::Engine::shutdown(self).await
    }
}
