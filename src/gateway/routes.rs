//! The four calls Pod makes, under any path prefix: `GET …/start`, `GET …/stop`,
//! `GET …/chat?toggle=True` (with the bearer token) and `POST …/chat` (without). One
//! handler reads the route from the path, checks what it must, asks the engine within
//! a bound, and turns the result into an [`Answer`]. A panic anywhere below becomes
//! the same JSON as any other failure (`CatchPanicLayer`), never a closed connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::{debug, error, info, warn};

use super::answer::{Answer, Reason};
use super::auth::Token;
use super::counters::Requests;
use super::engine::{Refusal, StartRequest, Webinars};
use super::limits::{self, ChatRate};
use super::params::{self, Action, Bad, Route};

/// What the handlers share.
pub struct App<W> {
    pub engine: Arc<W>,
    token: Token,
    chat_rate: ChatRate,
    pub requests: Arc<Requests>,
}

impl<W: Webinars> App<W> {
    pub fn new(engine: Arc<W>, token: Token) -> App<W> {
        App {
            engine,
            token,
            chat_rate: ChatRate::new(Instant::now()),
            requests: Arc::new(Requests::default()),
        }
    }
}

/// The router: every path goes to [`handle`]; a panic is answered as [`Reason::Internal`].
pub fn router<W: Webinars>(app: Arc<App<W>>) -> Router {
    let requests = app.requests.clone();
    let on_panic = move |_: Box<dyn std::any::Any + Send>| {
        error!("a request handler panicked; answered as an internal error");
        requests.count("unknown", Reason::Internal.label());
        Answer::refused(Reason::Internal).into_response()
    };
    Router::new()
        .fallback(handle::<W>)
        .with_state(app)
        .layer(CatchPanicLayer::custom(on_panic))
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Start,
    Stop,
    Toggle,
    /// `GET …/chat` without `toggle`: Pod never sends it.
    ChatWithoutToggle,
    Chat,
    Unknown,
}

impl Call {
    fn of(route: Option<&Route>, method: &Method, toggle: bool) -> Call {
        match (route.map(|r| r.action), method) {
            (Some(Action::Start), &Method::GET) => Call::Start,
            (Some(Action::Stop), &Method::GET) => Call::Stop,
            (Some(Action::Chat), &Method::GET) if toggle => Call::Toggle,
            (Some(Action::Chat), &Method::GET) => Call::ChatWithoutToggle,
            (Some(Action::Chat), &Method::POST) => Call::Chat,
            _ => Call::Unknown,
        }
    }

    /// Its name in the metrics and the log.
    fn label(self) -> &'static str {
        match self {
            Call::Start => "start",
            Call::Stop => "stop",
            Call::Toggle => "toggle",
            Call::ChatWithoutToggle => "chat_get",
            Call::Chat => "chat",
            Call::Unknown => "unknown",
        }
    }
}

async fn handle<W: Webinars>(State(app): State<Arc<App<W>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let route = params::route(parts.uri.path());
    let query = params::query(parts.uri.query());
    let toggle = query.as_ref().is_ok_and(|q| q.contains_key("toggle"));
    let call = Call::of(route.as_ref(), &parts.method, toggle);
    let answer = match (call, route) {
        (Call::Unknown, _) | (_, None) => Answer::refused(Reason::UnknownRoute),
        (Call::Chat, _) => app.post_chat(&parts.headers, body).await,
        _ if !app.token.admits(&parts.headers) => {
            info!(route = call.label(), "refused: no or wrong gateway token");
            Answer::refused(Reason::Unauthorized)
        }
        (_, Some(route)) => match query {
            Err(bad) => bad_request(call.label(), bad),
            Ok(q) => app.authorized(call, &route, &q).await,
        },
    };
    debug!(
        route = call.label(),
        method = %parts.method,
        code = answer.code().as_u16(),
        answer = answer.label(),
        "gateway request"
    );
    app.requests.count(call.label(), answer.label());
    answer.into_response()
}

fn bad_request(route: &'static str, bad: Bad) -> Answer {
    info!(route, problem = %bad.0, "refused: bad parameters");
    Answer::refused_with(Reason::BadRequest, bad.0)
}

impl<W: Webinars> App<W> {
    /// A call that carried the right token, with its query.
    async fn authorized(&self, call: Call, route: &Route, q: &HashMap<String, String>) -> Answer {
        let result = match call {
            Call::Start => match params::start(&route.gateway_path, q) {
                Ok(req) => Ok(self.start(req).await),
                Err(bad) => Err(bad),
            },
            Call::Stop => match params::room_of(q) {
                Ok(room) => Ok(self.stop(&room).await),
                Err(bad) => Err(bad),
            },
            Call::Toggle => match params::room_of(q).and_then(|r| params::toggle(q).map(|()| r)) {
                Ok(room) => Ok(self.toggle(&room).await),
                Err(bad) => Err(bad),
            },
            Call::ChatWithoutToggle => Err(Bad("the toggle parameter is missing".into())),
            Call::Chat | Call::Unknown => Ok(Answer::refused(Reason::UnknownRoute)),
        };
        result.unwrap_or_else(|bad| bad_request(call.label(), bad))
    }

    async fn start(&self, req: StartRequest) -> Answer {
        let (room, path, meeting) = (
            req.room.clone(),
            req.gateway_path.clone(),
            req.meeting_id.clone(),
        );
        match tokio::time::timeout(limits::ENGINE_TIMEOUT, self.engine.start(req)).await {
            Ok(Ok(started)) => {
                info!(
                    room = %room, gateway = %path, meeting = %meeting, slot = ?started.slot,
                    already = started.already, meeting_running = started.meeting_running,
                    "webinar start accepted"
                );
                Answer::Done(if started.already {
                    "The webinar is already being streamed."
                } else if started.meeting_running {
                    "The webinar is starting: it appears on the live page within a minute."
                } else {
                    "The webinar starts as soon as the meeting begins: it then appears on the \
                     live page within a minute."
                })
            }
            Ok(Err(refusal)) => refused("start", &room, refusal),
            Err(_) => too_slow("start", &room),
        }
    }

    async fn stop(&self, room: &str) -> Answer {
        match tokio::time::timeout(limits::ENGINE_TIMEOUT, self.engine.stop(room)).await {
            Ok(Ok(stopped)) => {
                info!(room, was_live = stopped.was_live, "webinar stop accepted");
                Answer::Done(if stopped.was_live {
                    "The webinar stream is stopping."
                } else {
                    "The webinar was not being streamed."
                })
            }
            Ok(Err(refusal)) => refused("stop", room, refusal),
            Err(_) => too_slow("stop", room),
        }
    }

    async fn toggle(&self, room: &str) -> Answer {
        match tokio::time::timeout(limits::ENGINE_TIMEOUT, self.engine.toggle_chat(room)).await {
            Ok(Ok(panel)) => {
                info!(room, chat_shown = panel.shown, "webinar chat panel toggled");
                Answer::Done(if panel.shown {
                    "The chat is now shown in the webinar."
                } else {
                    "The chat is now hidden from the webinar."
                })
            }
            Ok(Err(refusal)) => refused("toggle", room, refusal),
            Err(_) => too_slow("toggle", room),
        }
    }

    /// `POST chat`: no token, so everything is bounded before the engine is asked:
    /// the rate of all rooms, the size and time of the body, the room being live
    /// here, then that room's rate.
    async fn post_chat(&self, headers: &axum::http::HeaderMap, body: Body) -> Answer {
        if !self.chat_rate.admit_any(Instant::now()) {
            return Answer::refused(Reason::RateLimited);
        }
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits::MAX_BODY as u64) {
            return Answer::refused(Reason::TooLarge);
        }
        let bytes = match tokio::time::timeout(limits::BODY_TIMEOUT, read_bounded(body)).await {
            Err(_) => return Answer::refused(Reason::SlowClient),
            Ok(Err(answer)) => return answer,
            Ok(Ok(bytes)) => bytes,
        };
        let (room, msg) = match params::chat(&bytes) {
            Ok(parsed) => parsed,
            Err(bad) => return bad_request("chat", bad),
        };
        if !self.engine.is_live_here(&room) {
            return Answer::refused(Reason::NotLiveHere);
        }
        if !self.chat_rate.admit_room(&room, Instant::now()) {
            return Answer::refused(Reason::RateLimited);
        }
        match tokio::time::timeout(limits::CHAT_TIMEOUT, self.engine.chat(&room, &msg)).await {
            Ok(Ok(())) => {
                debug!(room = %room, chars = msg.chars().count(), "chat message sent");
                Answer::Done("Message sent.")
            }
            Ok(Err(refusal)) => refused("chat", &room, refusal),
            Err(_) => too_slow("chat", &room),
        }
    }
}

/// The body, refused past [`limits::MAX_BODY`] whatever Content-Length said.
async fn read_bounded(body: Body) -> Result<Vec<u8>, Answer> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Answer::refused(Reason::BadRequest))?;
        if bytes.len() + chunk.len() > limits::MAX_BODY {
            return Err(Answer::refused(Reason::TooLarge));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The engine's refusal as an answer, logged.
fn refused(route: &'static str, room: &str, refusal: Refusal) -> Answer {
    let answer = match refusal {
        Refusal::GatewayBusy { room: other } => {
            info!(route, room, streaming = %other, "refused: the gateway path streams another room");
            return Answer::refused(Reason::GatewayBusy);
        }
        Refusal::Full => Answer::refused(Reason::Full),
        Refusal::MeetingUnknown => Answer::refused(Reason::MeetingUnknown),
        Refusal::BbbUnreachable => Answer::refused(Reason::BbbUnreachable),
        Refusal::NotLiveHere => Answer::refused(Reason::NotLiveHere),
        Refusal::BadParameter(why) => Answer::refused_with(Reason::BadRequest, why),
        Refusal::Unavailable(why) => {
            warn!(route, room, why = %why, "refused: the engine is busy");
            return Answer::refused_with(Reason::Unavailable, why);
        }
        Refusal::ChatFailed => Answer::refused(Reason::ChatFailed),
        Refusal::Internal(e) => {
            error!(route, room, "webinar {route} failed: {e:#}");
            return Answer::refused(Reason::Internal);
        }
    };
    info!(route, room, answer = answer.label(), "refused");
    answer
}

fn too_slow(route: &'static str, room: &str) -> Answer {
    warn!(
        route,
        room,
        bound_ms = limits::ENGINE_TIMEOUT.as_millis() as u64,
        "the webinar engine did not answer in time; Pod was told to try again"
    );
    Answer::refused(Reason::Unavailable)
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::config::Secret;
    use crate::gateway::double::{Double, Mode};

    const TOKEN: &str = "pod-gateway-token";
    /// Pod 4.1's start, byte for byte (docs/webinar-api.md).
    const START: &str = "/gw/1/start?room=3319bf5aed&domain=pod.test%3A8410%2Fmeeting%2F0002-webinaire-demo%2F99ff0c1e0a4e1b7d2a33c9d8e5f60718293a4b5c6d7e8f90a1b2c3d4e51&rtmpDst=rtmp%3A%2F%2F127.0.0.1%3A1935%2Flive%2Fwebinaire-1";
    const TOGGLE: &str = "/gw/1/chat?room=3319bf5aed&toggle=True";
    const STOP: &str = "/gw/1/stop?room=3319bf5aed";

    fn app(double: Double) -> Arc<App<Double>> {
        Arc::new(App::new(Arc::new(double), Token::new(&Secret::new(TOKEN))))
    }

    struct Reply {
        code: StatusCode,
        json: serde_json::Value,
    }

    async fn send(app: &Arc<App<Double>>, req: Request<Body>) -> Reply {
        let response = router(app.clone()).oneshot(req).await.expect("infallible");
        let code = response.status();
        let ct = response.headers()[header::CONTENT_TYPE].clone();
        assert_eq!(ct, "application/json; charset=utf-8");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON, always");
        for key in ["status", "details", "res"] {
            assert!(json[key].is_string(), "{key} missing in {json}");
        }
        if json["status"] != "success" {
            let res = json["res"].as_str().expect("res");
            assert!(!res.to_lowercase().contains("ok"), "ok trap: {res}");
        }
        Reply { code, json }
    }

    async fn get(app: &Arc<App<Double>>, uri: &str) -> Reply {
        let req = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .expect("request");
        send(app, req).await
    }

    async fn post_chat(app: &Arc<App<Double>>, body: &str) -> Reply {
        let req = Request::post("/gw/1/chat")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .expect("request");
        send(app, req).await
    }

    #[tokio::test]
    async fn pods_calls_in_order_succeed() {
        let app = app(Double::with_slots(2));
        let r = get(&app, START).await;
        assert_eq!(
            (r.code, r.json["status"].as_str()),
            (StatusCode::OK, Some("success"))
        );
        assert_eq!(r.json["res"], "ok");
        {
            let rooms = app.engine.rooms.lock().expect("lock");
            assert_eq!(rooms["3319bf5aed"], ("/gw/1".to_owned(), true));
        }
        let r = get(&app, TOGGLE).await;
        assert_eq!(r.json["res"], "ok", "Pod checks res == ok for the toggle");
        assert!(!app.engine.rooms.lock().expect("lock")["3319bf5aed"].1);
        let r = post_chat(
            &app,
            "{\"room\": \"3319bf5aed\", \"msg\": \"Bonjour l’équipe\"}",
        )
        .await;
        assert!(r.json["res"].as_str().expect("res").contains("ok"));
        assert_eq!(
            app.engine.messages.lock().expect("lock").as_slice(),
            [("3319bf5aed".to_owned(), "Bonjour l’équipe".to_owned())]
        );
        let r = get(&app, START).await;
        assert_eq!(r.json["status"], "success", "a repeated start is a success");
        let r = get(&app, STOP).await;
        assert_eq!(r.json["status"], "success");
        let r = get(&app, STOP).await;
        assert_eq!(r.json["status"], "success", "a late stop is a success");
        let text = app.requests.render(0);
        assert!(
            text.contains("route=\"start\",answer=\"success\"} 2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn any_prefix_and_trailing_slashes_route_alike() {
        let app = app(Double::with_slots(3));
        for prefix in ["", "/a", "/gw/2/", "//x//y"] {
            let uri = START.replacen("/gw/1", prefix, 1);
            let r = get(&app, &uri).await;
            assert_eq!(r.code, StatusCode::OK, "{uri}: {}", r.json);
            app.engine.rooms.lock().expect("lock").clear();
        }
    }

    #[tokio::test]
    async fn a_wrong_or_missing_token_is_401_in_json() {
        let app = app(Double::with_slots(1));
        for auth in [None, Some("Bearer nope"), Some(TOKEN)] {
            let mut req = Request::get(START);
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            let r = send(&app, req.body(Body::empty()).expect("request")).await;
            assert_eq!(r.code, StatusCode::UNAUTHORIZED, "{auth:?}");
            assert_eq!(r.json["status"], "error");
        }
        assert!(app.engine.rooms.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn refusals_have_their_code_and_start_nothing() {
        let app = app(Double::with_slots(1));
        get(&app, START).await;
        // Same gateway path, another room.
        let r = get(&app, &START.replace("3319bf5aed", "aaaaaaaaaa")).await;
        assert_eq!(r.code, StatusCode::CONFLICT);
        assert!(
            r.json["details"]
                .as_str()
                .expect("details")
                .contains("another webinar")
        );
        // Another path, no slot left.
        let r = get(
            &app,
            &START
                .replace("3319bf5aed", "aaaaaaaaaa")
                .replace("/gw/1", "/gw/2"),
        )
        .await;
        assert_eq!(r.code, StatusCode::CONFLICT);
        assert!(
            r.json["details"]
                .as_str()
                .expect("details")
                .contains("Every streaming place")
        );
        assert_eq!(app.engine.running(), 1);
        app.engine.set(Mode::NoMeeting);
        let r = get(&app, &START.replace("/gw/1", "/gw/3")).await;
        assert_eq!(r.code, StatusCode::CONFLICT);
        assert!(
            r.json["details"]
                .as_str()
                .expect("details")
                .contains("join it first")
        );
        app.engine.set(Mode::BbbDown);
        assert_eq!(get(&app, STOP).await.code, StatusCode::SERVICE_UNAVAILABLE);
        app.engine.set(Mode::Broken);
        let r = get(&app, STOP).await;
        assert_eq!(r.code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !r.json.to_string().contains("hunter2"),
            "the chain stays in the log"
        );
    }

    #[tokio::test]
    async fn bad_parameters_and_routes() {
        let app = app(Double::with_slots(1));
        let r = get(&app, "/gw/1/start?room=3319bf5aed").await;
        assert_eq!(r.code, StatusCode::BAD_REQUEST);
        assert!(
            r.json["details"]
                .as_str()
                .expect("details")
                .contains("domain")
        );
        let r = get(&app, "/gw/1/chat?room=3319bf5aed").await;
        assert_eq!(r.code, StatusCode::BAD_REQUEST);
        let r = get(&app, "/gw/1/stop?room=%3Cscript%3E").await;
        assert_eq!(r.code, StatusCode::BAD_REQUEST);
        assert!(
            !r.json.to_string().contains("script"),
            "input is never echoed"
        );
        assert_eq!(get(&app, "/gw/1/launch").await.code, StatusCode::NOT_FOUND);
        assert_eq!(get(&app, "/").await.code, StatusCode::NOT_FOUND);
        let req = Request::delete("/gw/1/stop")
            .body(Body::empty())
            .expect("request");
        assert_eq!(send(&app, req).await.code, StatusCode::NOT_FOUND);
        let long = format!("/gw/1/stop?room={}", "a".repeat(params::MAX_QUERY));
        assert_eq!(get(&app, &long).await.code, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn post_chat_only_for_a_room_live_here_bounded_in_size_and_rate() {
        let app = app(Double::with_slots(1));
        let r = post_chat(&app, r#"{"room":"3319bf5aed","msg":"hi"}"#).await;
        assert_eq!(r.code, StatusCode::NOT_FOUND);
        assert!(r.json["res"].as_str().expect("res").starts_with("error: "));
        get(&app, START).await;
        let big = format!(
            r#"{{"room":"3319bf5aed","msg":"{}"}}"#,
            "x".repeat(limits::MAX_BODY)
        );
        assert_eq!(
            post_chat(&app, &big).await.code,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            post_chat(&app, "not json").await.code,
            StatusCode::BAD_REQUEST
        );
        let mut codes = Vec::new();
        for _ in 0..40 {
            codes.push(
                post_chat(&app, r#"{"room":"3319bf5aed","msg":"spam"}"#)
                    .await
                    .code,
            );
        }
        assert!(codes.contains(&StatusCode::OK));
        assert!(codes.contains(&StatusCode::TOO_MANY_REQUESTS), "{codes:?}");
        // A streamed body without Content-Length is bounded too.
        let chunks =
            futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
        let req = Request::post("/gw/1/chat")
            .body(Body::from_stream(chunks))
            .expect("request");
        assert_eq!(send(&app, req).await.code, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_panic_is_an_internal_error_in_json() {
        let app = app(Double::with_slots(1));
        app.engine.set(Mode::Panic);
        let r = get(&app, START).await;
        assert_eq!(r.code, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.json["status"], "error");
    }

    #[tokio::test]
    async fn an_engine_that_hangs_gets_an_answer_within_two_seconds() {
        let app = app(Double::with_slots(1));
        app.engine.set(Mode::Hang);
        let t0 = std::time::Instant::now();
        let r = get(&app, START).await;
        assert_eq!(r.code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t0.elapsed()
        );
    }
}
