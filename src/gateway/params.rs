//! The parameters Pod sends, parsed and bounded before the engine sees them
//! (docs/webinar-api.md, "What Pod sends"). A refusal names the parameter in our own
//! words; the value itself is never echoed.

use std::collections::HashMap;

use serde::Deserialize;

use super::engine::StartRequest;

/// Longest query string read (Pod's longest, `start`, is about 250 bytes).
pub const MAX_QUERY: usize = 2048;
/// Longest gateway path (Pod's `sipmediagw_server_url` holds ≤ 200 characters).
pub const MAX_GATEWAY_PATH: usize = 200;
/// Longest room name (Pod's is 10 hex characters).
const MAX_ROOM: usize = 64;
/// Longest `domain` (host, `meeting`, the meetingID and 54 hex characters).
const MAX_DOMAIN: usize = 512;
/// BBB's meetingID limit is 256 characters.
const MAX_MEETING_ID: usize = 256;
/// Pod's `rtmp_stream_url` holds ≤ 200 characters.
const MAX_RTMP: usize = 200;
/// Longest chat message, in characters, once trimmed.
pub const MAX_MESSAGE_CHARS: usize = 1000;

/// A parameter problem, in words that may follow the teacher's sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad(pub String);

fn bad(what: impl Into<String>) -> Bad {
    Bad(what.into())
}

/// The route a request asks for, and its gateway path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The path before the action, normalised: `/gw/1`, or `/`.
    pub gateway_path: String,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Chat,
}

/// `/gw/1/start` → (`/gw/1`, start). Pod joins its URL's parts with `/` after
/// stripping theirs, so a trailing `/` is tolerated and doubled ones collapse.
pub fn route(path: &str) -> Option<Route> {
    if path.len() > MAX_GATEWAY_PATH + 16 {
        return None;
    }
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let action = match parts.pop()? {
        "start" => Action::Start,
        "stop" => Action::Stop,
        "chat" => Action::Chat,
        _ => return None,
    };
    let gateway_path = format!("/{}", parts.join("/"));
    if gateway_path.len() > MAX_GATEWAY_PATH || gateway_path.chars().any(char::is_control) {
        return None;
    }
    Some(Route {
        gateway_path,
        action,
    })
}

/// The query's pairs, percent-decoded; bounded in size.
pub fn query(raw: Option<&str>) -> Result<HashMap<String, String>, Bad> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_QUERY {
        return Err(bad("the query is too long"));
    }
    let uri: axum::http::Uri = format!("/?{raw}")
        .parse()
        .map_err(|_| bad("the query is malformed"))?;
    axum::extract::Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| bad("the query is malformed"))
}

fn required<'a>(q: &'a HashMap<String, String>, key: &str) -> Result<&'a str, Bad> {
    match q.get(key).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(bad(format!("the {key} parameter is missing"))),
    }
}

/// Pod's room: 10 hex characters; letters, digits, `-` and `_` accepted.
pub fn room(value: &str) -> Result<String, Bad> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ROOM
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err(bad("the room parameter is malformed"))
    }
}

/// The room of a stop or toggle query.
pub fn room_of(q: &HashMap<String, String>) -> Result<String, Bad> {
    room(required(q, "room")?)
}

/// `toggle=True` (Python's `str(True)`); `true` and `1` too.
pub fn toggle(q: &HashMap<String, String>) -> Result<(), Bad> {
    match required(q, "toggle")?.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(()),
        _ => Err(bad("the toggle parameter must be True")),
    }
}

/// A `start` query: `room`, `domain` (`<host[:port]>/meeting/<meetingID>/<54 hex>`)
/// and `rtmpDst`.
pub fn start(gateway_path: &str, q: &HashMap<String, String>) -> Result<StartRequest, Bad> {
    let room = room_of(q)?;
    let domain = required(q, "domain")?;
    if domain.len() > MAX_DOMAIN {
        return Err(bad("the domain parameter is too long"));
    }
    let (pod_host, meeting_id) =
        meeting_of(domain).ok_or_else(|| bad("the domain parameter names no meeting"))?;
    let rtmp_dst = required(q, "rtmpDst")?;
    rtmp(rtmp_dst)?;
    Ok(StartRequest {
        gateway_path: gateway_path.to_owned(),
        room,
        meeting_id: meeting_id.into(),
        pod_host: pod_host.to_owned(),
        rtmp_dst: rtmp_dst.to_owned(),
    })
}

/// (`host[:port]`, meetingID) of a `domain`: Pod builds it with
/// `slash_join(pod_host, "meeting", meeting.meeting_id, hashkey)[:-10]`.
fn meeting_of(domain: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = domain.split('/').collect();
    let n = parts.len();
    if n < 4 || parts[n - 3] != "meeting" {
        return None;
    }
    let (host, meeting_id) = (parts[0], parts[n - 2]);
    let fits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && !s.chars().any(|c| c.is_control() || c.is_whitespace())
    };
    (fits(host, 255) && fits(meeting_id, MAX_MEETING_ID)).then_some((host, meeting_id))
}

/// An RTMP URL the streamer can push to.
fn rtmp(value: &str) -> Result<(), Bad> {
    let lower = value.to_ascii_lowercase();
    let scheme = lower.starts_with("rtmp://") || lower.starts_with("rtmps://");
    let host = value.split("://").nth(1).and_then(|r| r.split('/').next());
    if !scheme || host.is_none_or(str::is_empty) {
        return Err(bad("the rtmpDst parameter is not an rtmp:// address"));
    }
    if value.len() > MAX_RTMP || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("the rtmpDst parameter is malformed"));
    }
    Ok(())
}

/// A viewer's message (`POST chat`).
#[derive(Debug, Deserialize)]
struct ChatBody {
    room: String,
    msg: String,
}

/// (room, message) of a `POST chat` body: JSON `{"room", "msg"}`; the message trimmed,
/// its line breaks and control characters made spaces, 1..=1000 characters.
pub fn chat(body: &[u8]) -> Result<(String, String), Bad> {
    let parsed: ChatBody =
        serde_json::from_slice(body).map_err(|_| bad("the body is not the JSON Pod sends"))?;
    let room = room(parsed.room.trim())?;
    let msg: String = parsed
        .msg
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if msg.is_empty() {
        return Err(bad("the message is empty"));
    }
    if msg.chars().count() > MAX_MESSAGE_CHARS {
        return Err(bad("the message is too long"));
    }
    Ok((room, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query of Pod 4.1's start, byte for byte (docs/webinar-api.md).
    const POD_START: &str = "room=3319bf5aed&domain=pod.test%3A8410%2Fmeeting%2F0002-webinaire-demo%2F99ff0c1e0a4e1b7d2a33c9d8e5f60718293a4b5c6d7e8f90a1b2c3d4e51&rtmpDst=rtmp%3A%2F%2F127.0.0.1%3A1935%2Flive%2Fwebinaire-1";

    #[test]
    fn routes_under_any_prefix() {
        let r = route("/gw/1/start").expect("a route");
        assert_eq!(
            (r.gateway_path.as_str(), r.action),
            ("/gw/1", Action::Start)
        );
        let r = route("/stop").expect("a route");
        assert_eq!((r.gateway_path.as_str(), r.action), ("/", Action::Stop));
        let r = route("//a//b/chat/").expect("a route");
        assert_eq!((r.gateway_path.as_str(), r.action), ("/a/b", Action::Chat));
        assert_eq!(route("/gw/1/starts"), None);
        assert_eq!(route("/"), None);
        assert_eq!(route(&format!("/{}/start", "x".repeat(300))), None);
    }

    #[test]
    fn pods_start_query_gives_the_meeting_and_its_pod() {
        let q = query(Some(POD_START)).expect("parses");
        let s = start("/gw/1", &q).expect("valid");
        assert_eq!(s.room, "3319bf5aed");
        assert_eq!(s.meeting_id, "0002-webinaire-demo");
        assert_eq!(s.pod_host, "pod.test:8410");
        assert_eq!(s.rtmp_dst, "rtmp://127.0.0.1:1935/live/webinaire-1");
        assert_eq!(s.gateway_path, "/gw/1");
    }

    #[test]
    fn a_start_missing_or_mangling_a_parameter_is_refused_naming_it() {
        let cases = [
            (
                "domain=a%2Fmeeting%2Fm%2Fh&rtmpDst=rtmp%3A%2F%2Fh%2Fk",
                "room",
            ),
            ("room=r1&rtmpDst=rtmp%3A%2F%2Fh%2Fk", "domain"),
            ("room=r1&domain=a%2Fmeeting%2Fm%2Fh", "rtmpDst"),
            (
                "room=r%3Cb%3E&domain=a%2Fmeeting%2Fm%2Fh&rtmpDst=rtmp%3A%2F%2Fh%2Fk",
                "room",
            ),
            (
                "room=r1&domain=a%2Fm%2Fh&rtmpDst=rtmp%3A%2F%2Fh%2Fk",
                "domain",
            ),
            (
                "room=r1&domain=a%2Fmeeting%2F%2Fh&rtmpDst=rtmp%3A%2F%2Fh%2Fk",
                "domain",
            ),
            (
                "room=r1&domain=a%2Fmeeting%2Fm%2Fh&rtmpDst=http%3A%2F%2Fh%2Fk",
                "rtmpDst",
            ),
            (
                "room=r1&domain=a%2Fmeeting%2Fm%2Fh&rtmpDst=rtmp%3A%2F%2F",
                "rtmpDst",
            ),
            (
                "room=r1&domain=a%2Fmeeting%2Fm%2Fh&rtmpDst=rtmp%3A%2F%2Fh%2Fk+k",
                "rtmpDst",
            ),
        ];
        for (raw, key) in cases {
            let q = query(Some(raw)).expect("parses");
            let e = start("/", &q).expect_err(raw);
            assert!(e.0.contains(key), "{raw}: {e:?}");
        }
    }

    #[test]
    fn a_pod_under_a_prefix_still_names_its_meeting() {
        assert_eq!(
            meeting_of("univ.fr/pod/meeting/0007-cours/abc"),
            Some(("univ.fr", "0007-cours"))
        );
    }

    #[test]
    fn queries_are_bounded() {
        let e = query(Some(&"a".repeat(MAX_QUERY + 1))).expect_err("too long");
        assert!(e.0.contains("too long"));
        assert!(query(None).expect("empty").is_empty());
    }

    #[test]
    fn toggle_is_pythons_true() {
        let t = |raw: &str| toggle(&query(Some(raw)).expect("parses"));
        assert!(t("room=r&toggle=True").is_ok());
        assert!(t("room=r&toggle=true").is_ok());
        assert!(t("room=r&toggle=False").is_err());
        assert!(t("room=r").is_err());
    }

    #[test]
    fn pods_chat_body_is_read_and_bounded() {
        let (room, msg) =
            chat("{\"room\": \"3319bf5aed\", \"msg\": \"Bonjour l’équipe\"}".as_bytes())
                .expect("valid");
        assert_eq!(
            (room.as_str(), msg.as_str()),
            ("3319bf5aed", "Bonjour l’équipe")
        );
        let (_, msg) = chat(br#"{"room":"r","msg":" a\nb\u0000 "}"#).expect("valid");
        assert_eq!(msg, "a b ");
        assert!(chat(br#"{"room":"r","msg":"  "}"#).is_err());
        assert!(chat(br#"{"room":"r"}"#).is_err());
        assert!(chat(b"room=r&msg=x").is_err());
        let long = format!(
            r#"{{"room":"r","msg":"{}"}}"#,
            "é".repeat(MAX_MESSAGE_CHARS + 1)
        );
        assert!(
            chat(long.as_bytes())
                .expect_err("long")
                .0
                .contains("too long")
        );
        let fits = format!(
            r#"{{"room":"r","msg":"{}"}}"#,
            "é".repeat(MAX_MESSAGE_CHARS)
        );
        assert!(chat(fits.as_bytes()).is_ok());
    }
}
