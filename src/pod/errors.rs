//! Pod's error answers, made readable for the admin: the DRF `detail` or field errors,
//! Django's HTML pages named by their title, a hint at the likely cause (token, staff
//! flag, `USE_BBB`, pod.url), redirects refused with where they pointed; and the token
//! blanked out of every answer before anything reads it. Not here: deciding what an
//! error means for a live (the tick).

use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value};

use super::{Answer, PodError, shown};

/// A DRF "not found" for an object (JSON or empty body). An HTML 404 is Django's own
/// page for a route that does not exist (USE_BBB off, "live" not installed, wrong
/// pod.url): that must not read as "this live/broadcaster is gone".
pub(super) fn is_object_not_found(answer: &Answer) -> bool {
    answer.status == StatusCode::NOT_FOUND
        && (answer.body.iter().all(u8::is_ascii_whitespace)
            || serde_json::from_slice::<Value>(&answer.body).is_ok())
}

/// Replaces every occurrence of `secret` in `body` by `[redacted]`.
pub(super) fn redact(body: &mut Vec<u8>, secret: &[u8]) {
    if secret.is_empty() || !body.windows(secret.len()).any(|w| w == secret) {
        return;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut rest = &body[..];
    while let Some(i) = rest.windows(secret.len()).position(|w| w == secret) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(b"[redacted]");
        rest = &rest[i + secret.len()..];
    }
    out.extend_from_slice(rest);
    *body = out;
}

pub(super) fn status_error(method: &Method, url: &Url, answer: &Answer) -> PodError {
    let mut detail = error_detail(answer);
    if let Some(hint) = hint(answer, url) {
        detail = format!("{detail} ({hint})");
    }
    PodError::Status {
        method: method.to_string(),
        url: shown(url),
        status: answer.status.as_u16(),
        detail,
    }
}

pub(super) fn redirect_error(method: &Method, url: &Url, answer: &Answer) -> PodError {
    let target = match &answer.location {
        Some(location) => match url.join(location) {
            Ok(target) => format!("redirected to {}", shown(&target)),
            Err(_) => format!("redirected to {location:?}"),
        },
        None => "redirected without a Location header".into(),
    };
    PodError::Status {
        method: method.to_string(),
        url: shown(url),
        status: answer.status.as_u16(),
        detail: format!(
            "Pod {target}; redirects are not followed (the token must not go elsewhere): \
             check pod.url (http or https, host name, path ending with /) and any proxy \
             or single sign-on in front of /rest/"
        ),
    }
}

/// The readable part of an error answer.
pub(super) fn error_detail(answer: &Answer) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(&answer.body) {
        return match &value {
            Value::Object(map) => match map.get("detail") {
                Some(Value::String(detail)) => detail.clone(),
                _ => field_errors(map),
            },
            other => messages(other).join(" "),
        };
    }
    if looks_like_html(answer) {
        let what = if answer.status.is_server_error() {
            "server error page (HTML); see Pod's logs"
        } else {
            "HTML page instead of a JSON answer"
        };
        return match html_title(&answer.body) {
            Some(title) => format!("{what}; title: {title:?}"),
            None => what.into(),
        };
    }
    let text = words(&String::from_utf8_lossy(&answer.body), 300);
    if text.is_empty() {
        match answer.status.canonical_reason() {
            Some(reason) => format!("{reason} (empty body)"),
            None => "empty body".into(),
        }
    } else {
        text
    }
}

/// DRF validation errors `{"name": ["msg"], "url": ["msg"]}` → `name: msg; url: msg`.
pub(super) fn field_errors(map: &Map<String, Value>) -> String {
    let parts: Vec<String> = map
        .iter()
        .map(|(field, value)| {
            let text = messages(value).join(" ");
            if field == "non_field_errors" {
                text
            } else {
                format!("{field}: {text}")
            }
        })
        .collect();
    if parts.is_empty() {
        "{}".into()
    } else {
        parts.join("; ")
    }
}

pub(super) fn messages(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![words(text, 300)],
        Value::Array(items) => items.iter().flat_map(messages).collect(),
        Value::Object(map) => vec![format!("{{{}}}", field_errors(map))],
        other => vec![other.to_string()],
    }
}

/// Hints for the admin, by status and route (never by the localised text).
pub(super) fn hint(answer: &Answer, url: &Url) -> Option<String> {
    let path = url.path();
    match answer.status {
        StatusCode::UNAUTHORIZED => Some(
            "check pod.token: a key from Pod's admin (Auth Token → Tokens), \
             sent as `Authorization: Token <key>`"
                .into(),
        ),
        StatusCode::FORBIDDEN => {
            Some("the token's user must be staff (is_staff) in Pod's admin".into())
        }
        StatusCode::NOT_FOUND => {
            let (collection, needs) = if path.contains("/rest/broadcasters/")
                || path.contains("/rest/buildings/")
            {
                (
                    if path.contains("/rest/buildings/") {
                        "buildings"
                    } else {
                        "broadcasters"
                    },
                    "Pod serves /rest/broadcasters/ and /rest/buildings/ only with \
                     \"live\" in THIRD_PARTY_APPS",
                )
            } else if path.contains("/rest/bbb_livestream/") || path.contains("/rest/bbb_meeting/")
            {
                (
                    if path.contains("/rest/bbb_meeting/") {
                        "bbb_meeting"
                    } else {
                        "bbb_livestream"
                    },
                    "Pod serves /rest/bbb_livestream/ and /rest/bbb_meeting/ only with USE_BBB \
                     (Pod 2.8 to 3.8.1)",
                )
            } else {
                return None;
            };
            // DRF never answers 404 on a list's first page (page 1 exists even when
            // empty): the route is missing. Nor does it answer HTML: that is Django's
            // page for an unknown URL.
            let root = path.ends_with(&format!("/rest/{collection}/"))
                && url
                    .query_pairs()
                    .all(|(name, value)| name != "page" || value == "1");
            (root || !is_object_not_found(answer)).then(|| needs.into())
        }
        _ => None,
    }
}

pub(super) fn looks_like_html(answer: &Answer) -> bool {
    if answer.content_type.to_ascii_lowercase().contains("html") {
        return true;
    }
    let start: Vec<u8> = answer
        .body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(15)
        .map(u8::to_ascii_lowercase)
        .collect();
    start.starts_with(b"<!doctype html") || start.starts_with(b"<html")
}

/// The `<title>` of an HTML page, on one line.
pub(super) fn html_title(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(head);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title = words(text.get(start..end)?, 200);
    (!title.is_empty()).then_some(title)
}

/// A text from Pod shown in a message: its words, each run of whitespace (newlines
/// too) one space, cut after `max` characters (then marked with `…`).
pub(super) fn words(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::text::truncate(&joined, max + 1)
}

pub(super) fn json_body(url: &Url, answer: &Answer) -> Result<Value, PodError> {
    serde_json::from_slice(&answer.body).map_err(|e| PodError::Garbage {
        url: shown(url),
        reason: if looks_like_html(answer) {
            match html_title(&answer.body) {
                Some(title) => format!("an HTML page instead of JSON (title: {title:?})"),
                None => "an HTML page instead of JSON".into(),
            }
        } else {
            format!("invalid JSON ({e})")
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::pod::test_support::*;
    use serde_json::json;
    use std::sync::atomic::Ordering;

    #[test]
    fn the_token_is_blanked_out_of_every_answer() {
        let mut body = b"{\"detail\": \"Token abc123 invalid; abc123abc123\"}".to_vec();
        redact(&mut body, b"abc123");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "{\"detail\": \"Token [redacted] invalid; [redacted][redacted]\"}"
        );
        let mut clean = b"nothing here".to_vec();
        redact(&mut clean, b"abc123");
        assert_eq!(clean, b"nothing here");
        redact(&mut clean, b"");
        assert_eq!(clean, b"nothing here");
    }

    #[tokio::test]
    async fn error_answers_give_readable_details_and_hints() {
        let (base, _fake) = serve(|seen, _| match seen.path.as_str() {
            "/rest/bbb_livestream/" => Reply::json(401, json!({"detail": "Invalid token."}))
                .header("www-authenticate", "Basic realm=\"api\""),
            "/rest/bbb_livestream/1/" => Reply::json(
                403,
                json!({"detail": "You do not have permission to perform this action."}),
            ),
            "/rest/broadcasters/" => Reply::html(
                404,
                "<!doctype html><html><head><title>Page not found</title></head></html>",
            ),
            "/rest/bbb_livestream/2/" => Reply::json(
                400,
                json!({"status": ["\"5\" is not a valid choice."], "server": ["Too long."],
                       "non_field_errors": ["Nope."]}),
            ),
            "/rest/bbb_livestream/3/" => Reply::html(
                500,
                "<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">\n<title>\n  Erreur   serveur\n</title></head><body>…</body></html>",
            ),
            "/rest/bbb_livestream/4/" => Reply::raw(502, "text/plain", b"upstream\n down".to_vec()),
            "/rest/bbb_livestream/5/" => Reply::json(404, json!({"detail": "Not found."})),
            _ => Reply::html(404, "<h1>Not Found</h1>"),
        })
        .await;
        let pod = client(&base);

        let e = pod.livestreams().await.unwrap_err();
        assert_eq!(e.status(), Some(401));
        assert!(
            status_detail(&e).starts_with("Invalid token. (check pod.token"),
            "{e}"
        );

        let e = pod.mark_live_waiting(1).await.unwrap_err();
        assert_eq!(e.status(), Some(403));
        let d = status_detail(&e);
        assert!(
            d.contains("You do not have permission") && d.contains("is_staff"),
            "{d}"
        );

        let e = pod.broadcasters().await.unwrap_err();
        assert_eq!(e.status(), Some(404));
        let d = status_detail(&e);
        assert!(
            d.contains("title: \"Page not found\"") && d.contains("\"live\" in THIRD_PARTY_APPS"),
            "{d}"
        );
        // An HTML 404 is a missing route, not a missing broadcaster.
        let e = pod.broadcaster("bbb-x").await.unwrap_err();
        assert!(status_detail(&e).contains("THIRD_PARTY_APPS"), "{e}");

        let e = pod.mark_live_waiting(2).await.unwrap_err();
        assert_eq!(
            status_detail(&e),
            "Nope.; server: Too long.; status: \"5\" is not a valid choice."
        );

        let e = pod.mark_live_waiting(3).await.unwrap_err();
        assert_eq!(e.status(), Some(500));
        assert_eq!(
            status_detail(&e),
            "server error page (HTML); see Pod's logs; title: \"Erreur serveur\""
        );

        let e = pod.mark_live_waiting(4).await.unwrap_err();
        assert_eq!(status_detail(&e), "upstream down");

        // A DRF 404 on an object: no hint about USE_BBB, the route exists.
        let e = pod.mark_live_waiting(5).await.unwrap_err();
        assert_eq!(status_detail(&e), "Not found.");
        assert_eq!(pod.livestream(5).await.unwrap(), None);

        // An HTML 404 on a bbb_livestream object: the route is missing.
        let e = pod.livestream(6).await.unwrap_err();
        assert!(status_detail(&e).contains("USE_BBB"), "{e}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "Pod answered HTTP 404 to GET {base}rest/bbb_livestream/6/: "
            )),
            "{text}"
        );
    }

    #[tokio::test]
    async fn bbb_livestream_list_404_hints_use_bbb() {
        let (base, _fake) = serve(|_, _| Reply::json(404, json!({"detail": "Not found."}))).await;
        let e = client(&base).livestreams().await.unwrap_err();
        assert!(status_detail(&e).contains("USE_BBB"), "{e}");
        let e = client(&base).check_access().await.unwrap_err();
        assert!(status_detail(&e).contains("USE_BBB"), "{e}");
    }

    #[tokio::test]
    async fn a_redirect_is_an_error_naming_where_pod_redirected() {
        let (base, fake) = serve(|_, _| {
            Reply::empty(301).header("location", "https://pod.example/rest/bbb_livestream/")
        })
        .await;
        let e = client(&base).livestreams().await.unwrap_err();
        assert_eq!(e.status(), Some(301));
        let d = status_detail(&e);
        assert!(
            d.contains("redirected to https://pod.example/rest/bbb_livestream/"),
            "{d}"
        );
        assert!(d.contains("check pod.url"), "{d}");
        assert_eq!(
            fake.hits.load(Ordering::SeqCst),
            1,
            "the redirect was not followed"
        );

        let (base, _fake) =
            serve(|_, _| Reply::empty(302).header("location", "/accounts/login/?next=/rest/"))
                .await;
        let e = client(&base).livestream(1).await.unwrap_err();
        assert!(
            status_detail(&e).contains(&format!("redirected to {base}accounts/login/?next=/rest/")),
            "{e}"
        );
    }
}
