//! What the gateway answers: one JSON body Pod can read whatever the HTTP code, with
//! one plain sentence for the teacher (docs/webinar-api.md, "How Pod reads the answers").
//!
//! Pod reads `status` (and shows `details` when it is not `"success"`) for start and
//! stop, `res == "ok"` for the chat toggle, and `"ok" in res` for a chat message. So
//! every body carries all three keys; a refusal's `res` is a fixed sentence of this
//! file, free of the letters `ok` in a row (tested: "token", "look", "broken" would
//! all pass Pod's check); nothing a caller sent is ever echoed (Pod inserts the
//! sentence into its page as HTML, unescaped).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why a request was refused: each has its HTTP code, its sentence and its metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No or wrong bearer token.
    Unauthorized,
    /// A parameter missing, malformed or too long.
    BadRequest,
    /// Neither `…/start`, `…/stop` nor `…/chat` with the method Pod uses.
    UnknownRoute,
    /// The body is larger than [`super::limits::MAX_BODY`].
    TooLarge,
    /// The client sent its request too slowly.
    SlowClient,
    /// This gateway path streams another room.
    GatewayBusy,
    /// No free slot.
    Full,
    /// BBB does not know the meeting (or it ended).
    MeetingUnknown,
    /// BBB did not answer.
    BbbUnreachable,
    /// The room is not live on this server (toggle, chat).
    NotLiveHere,
    /// Too many chat messages.
    RateLimited,
    /// The engine is busy (a lock, the cluster Redis) or did not answer in time.
    Unavailable,
    /// BBB (or the slot's chat Redis) did not take the message.
    ChatFailed,
    /// A bug or an unexpected failure, logged with its chain.
    Internal,
}

impl Reason {
    /// The HTTP code (for logs and people: Pod reads only the body).
    pub fn code(self) -> StatusCode {
        match self {
            Reason::Unauthorized => StatusCode::UNAUTHORIZED,
            Reason::BadRequest => StatusCode::BAD_REQUEST,
            Reason::UnknownRoute | Reason::NotLiveHere => StatusCode::NOT_FOUND,
            Reason::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::SlowClient => StatusCode::REQUEST_TIMEOUT,
            Reason::GatewayBusy | Reason::Full | Reason::MeetingUnknown => StatusCode::CONFLICT,
            Reason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Reason::BbbUnreachable | Reason::Unavailable | Reason::ChatFailed => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Reason::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The sentence the teacher (or the viewer, for chat) reads. Fixed text: no "ok" in
    /// a row, no markup, nothing from the request.
    pub fn sentence(self) -> &'static str {
        match self {
            Reason::Unauthorized => {
                "The streaming server refused the request: the secret set on this live gateway \
                 in Pod is wrong. Ask the site's administrators to check it."
            }
            Reason::BadRequest => {
                "The streaming server could not read the request from Pod. Ask the site's \
                 administrators to check the live gateway."
            }
            Reason::UnknownRoute => {
                "The streaming server does not know this address. Ask the site's administrators \
                 to check the address of the live gateway in Pod."
            }
            Reason::TooLarge => "The message is too long: shorten it and send it again.",
            Reason::SlowClient => "The request arrived too slowly. Try again.",
            Reason::GatewayBusy => {
                "This live gateway is already streaming another webinar. Stop that webinar \
                 first, or use another live gateway."
            }
            Reason::Full => {
                "Every streaming place of the server is in use. Try again when a webinar or a \
                 live ends, or ask the site's administrators for more places."
            }
            Reason::MeetingUnknown => {
                "The meeting is not open in BigBlueButton: join it first, then start the webinar."
            }
            Reason::BbbUnreachable => {
                "BigBlueButton did not answer the streaming server. Try again in a minute."
            }
            Reason::NotLiveHere => "This webinar is not being streamed now.",
            Reason::RateLimited => "Too many messages at once: wait a moment, then send it again.",
            Reason::Unavailable => "The streaming server is busy. Try again in a minute.",
            Reason::ChatFailed => {
                "The message could not be delivered to the meeting. Try again in a moment."
            }
            Reason::Internal => {
                "The streaming server failed to handle the request. Try again; if it fails \
                 again, tell the site's administrators."
            }
        }
    }

    /// The label of this answer in the metrics and the log.
    pub fn label(self) -> &'static str {
        match self {
            Reason::Unauthorized => "unauthorized",
            Reason::BadRequest => "bad_request",
            Reason::UnknownRoute => "unknown_route",
            Reason::TooLarge => "too_large",
            Reason::SlowClient => "slow_client",
            Reason::GatewayBusy => "gateway_busy",
            Reason::Full => "full",
            Reason::MeetingUnknown => "meeting_unknown",
            Reason::BbbUnreachable => "bbb_unreachable",
            Reason::NotLiveHere => "not_live_here",
            Reason::RateLimited => "rate_limited",
            Reason::Unavailable => "unavailable",
            Reason::ChatFailed => "chat_failed",
            Reason::Internal => "internal",
        }
    }
}

/// One answer: success with its sentence, or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Done(&'static str),
    Refused {
        reason: Reason,
        /// What to add after the sentence in `details` (start and stop only show it):
        /// which parameter, for instance. Our own words, never the caller's.
        more: Option<String>,
    },
}

/// The body, in the key order Pod's developers would recognise from SIPMediaGW.
#[derive(Debug, Serialize)]
struct Body<'a> {
    status: &'a str,
    details: &'a str,
    res: &'a str,
}

impl Answer {
    pub fn refused(reason: Reason) -> Answer {
        Answer::Refused { reason, more: None }
    }

    pub fn refused_with(reason: Reason, more: impl Into<String>) -> Answer {
        Answer::Refused {
            reason,
            more: Some(more.into()),
        }
    }

    /// The metrics label: `success`, or the reason's.
    pub fn label(&self) -> &'static str {
        match self {
            Answer::Done(_) => "success",
            Answer::Refused { reason, .. } => reason.label(),
        }
    }

    pub fn code(&self) -> StatusCode {
        match self {
            Answer::Done(_) => StatusCode::OK,
            Answer::Refused { reason, .. } => reason.code(),
        }
    }

    /// The JSON text of the body.
    pub fn json(&self) -> String {
        let (status, details, res) = match self {
            Answer::Done(sentence) => ("success", (*sentence).to_owned(), "ok".to_owned()),
            Answer::Refused { reason, more } => {
                let sentence = reason.sentence();
                let details = match more {
                    Some(more) => format!("{sentence} ({})", plain(more)),
                    None => sentence.to_owned(),
                };
                ("error", details, format!("error: {sentence}"))
            }
        };
        let body = Body {
            status,
            details: &details,
            res: &res,
        };
        // Serialising three strings cannot fail; the fallback keeps the promise anyway.
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"status":"error","details":"internal error","res":"error"}"#.to_owned()
        })
    }
}

/// Text made safe to insert as HTML: markup characters dropped, one line.
fn plain(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '<' | '>' | '&' | '"' | '\''))
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (
            self.code(),
            [(
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )],
            self.json(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason.
    const REASONS: [Reason; 14] = [
        Reason::Unauthorized,
        Reason::BadRequest,
        Reason::UnknownRoute,
        Reason::TooLarge,
        Reason::SlowClient,
        Reason::GatewayBusy,
        Reason::Full,
        Reason::MeetingUnknown,
        Reason::BbbUnreachable,
        Reason::NotLiveHere,
        Reason::RateLimited,
        Reason::Unavailable,
        Reason::ChatFailed,
        Reason::Internal,
    ];

    fn body(a: &Answer) -> serde_json::Value {
        serde_json::from_str(&a.json()).expect("JSON")
    }

    #[test]
    fn success_carries_every_key_pod_reads() {
        let v = body(&Answer::Done("The webinar is starting."));
        assert_eq!(v["status"], "success");
        assert_eq!(v["res"], "ok");
        assert_eq!(v["details"], "The webinar is starting.");
    }

    #[test]
    fn no_refusal_falls_into_the_ok_trap_or_carries_markup() {
        for reason in REASONS {
            for answer in [
                Answer::refused(reason),
                Answer::refused_with(reason, "room is missing"),
            ] {
                let v = body(&answer);
                assert_eq!(v["status"], "error", "{reason:?}");
                let res = v["res"].as_str().expect("res");
                assert!(
                    !res.to_ascii_lowercase().contains("ok"),
                    "{reason:?}: Pod would read {res:?} as a success"
                );
                assert!(res.starts_with("error: "), "{res}");
                let details = v["details"].as_str().expect("details");
                for text in [res, details] {
                    assert!(!text.contains(['<', '>', '&']), "{reason:?}: {text}");
                    assert!(!text.contains('\n'), "{reason:?}: {text}");
                }
                assert_ne!(answer.code(), StatusCode::OK, "{reason:?}");
            }
        }
    }

    #[test]
    fn codes_follow_the_spec() {
        assert_eq!(Reason::Unauthorized.code().as_u16(), 401);
        assert_eq!(Reason::BadRequest.code().as_u16(), 400);
        assert_eq!(Reason::UnknownRoute.code().as_u16(), 404);
        assert_eq!(Reason::GatewayBusy.code().as_u16(), 409);
        assert_eq!(Reason::Full.code().as_u16(), 409);
        assert_eq!(Reason::TooLarge.code().as_u16(), 413);
        assert_eq!(Reason::BbbUnreachable.code().as_u16(), 503);
    }

    #[test]
    fn extra_details_lose_their_markup_and_stay_out_of_res() {
        let a = Answer::refused_with(Reason::BadRequest, "<b>x</b> & \"y\"\nz");
        let v = body(&a);
        assert_eq!(
            v["details"],
            format!("{} (bx/b  y z)", Reason::BadRequest.sentence())
        );
        assert_eq!(
            v["res"],
            format!("error: {}", Reason::BadRequest.sentence())
        );
    }
}
