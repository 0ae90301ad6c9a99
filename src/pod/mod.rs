//! Typed client of Pod's REST API (Django REST Framework): token header, every page
//! of a list, status codes checked, DRF error bodies turned into readable messages.
//!
//! This module owns the HTTP conversation with Pod and the translation of its JSON
//! into `model` types. It decides nothing: a list that cannot be read completely is an
//! error for the whole read, never a shorter list, so the tick never mistakes a
//! missing row for a live closed by hand. Which lives to start or stop is `plan.rs`'s
//! business; the Pod API facts this code answers are in `docs/pod-api.md`.
//!
//! Three Pod behaviours shape it:
//! * Pod builds absolute hyperlinks from the request's `Host` header (`http://` behind
//!   a TLS proxy, `pod.localhost` by default), and DRF only reads the path of a
//!   hyperlink. Every hyperlink we follow is therefore *rebased* onto the configured
//!   base URL, which also guarantees the token is only ever sent to that host.
//! * Redirects are not followed: Pod answers 301 for a missing trailing slash, and a
//!   redirect to another scheme or host would carry the token elsewhere.
//! * Error texts are localised (French by default); we ask for English with
//!   `Accept-Language: en` for the admin, but recognise outcomes by status and field
//!   names only.
//!
//! The room, one file a concern:
//! - `mod.rs`: [`PodClient`] itself, its [`PodError`], URLs (endpoints, rebasing) and
//!   the one request path every call takes (`call`: token, timeout, size cap, no
//!   redirect);
//! - `errors.rs`: Pod's error answers made readable (DRF details, field errors, HTML
//!   pages, hints for the admin), and the token blanked out of every answer;
//! - `pages.rs`: reading a whole DRF list, all pages, consistently;
//! - `tail.rs`: the tick's read, whose cost does not grow with Pod's history (the end
//!   of the list when the filter is ignored), and `memory.rs`, what it remembers;
//! - `rows.rs`: the field readers every row parser shares;
//! - `livestreams.rs`, `meetings.rs`, `broadcasters.rs`: the calls on each resource and
//!   the parsing of its rows.

mod broadcasters;
mod errors;
mod livestreams;
mod meetings;
mod memory;
mod pages;
mod rows;
mod tail;
#[cfg(test)]
mod test_support;
mod webinars;

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url, redirect};
use serde_json::Value;

use crate::config::Secret;
use crate::text::error_chain;

use errors::{json_body, redact, redirect_error, status_error};
pub use webinars::meeting_pk;

pub use broadcasters::{CreateBroadcaster, NewBroadcaster};
pub use livestreams::StartFields;
pub use memory::{FULL_READ_EVERY, LIST_MEMORY_FILE, ListMemory};
pub use pages::DEFAULT_MAX_CONCURRENCY;
pub use tail::{ListRead, TickLives, TickRead};

/// Largest answer we read. Pod's pages are a few KB; its HTML error pages ~13 KB.
const MAX_BODY: usize = 16 << 20;

/// What went wrong talking to Pod.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error("cannot reach Pod at {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("Pod did not answer {url} within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// HTTP error status; `detail` is the DRF message or field errors, made readable.
    #[error("Pod answered HTTP {status} to {method} {url}: {detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("Pod's answer to {url} does not parse: {reason}")]
    Garbage { url: String, reason: String },
    /// A write whose answer could not be read (cut or garbled body, timeout after the
    /// request was sent, connection reset): Pod may or may not have done it.
    #[error(
        "Pod's answer to {method} {url} could not be read ({reason}): the write is unconfirmed"
    )]
    Unconfirmed {
        method: String,
        url: String,
        reason: String,
    },
}

impl PodError {
    pub fn status(&self) -> Option<u16> {
        match self {
            PodError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A write Pod may have done: its effect must be read back before it is redone
    /// or taken as done.
    pub fn unconfirmed(&self) -> bool {
        matches!(self, PodError::Unconfirmed { .. })
    }

    /// What went wrong in a write's answer: an error that leaves the write in doubt
    /// (a timeout, a transport failure after connecting, an unreadable body) becomes
    /// [`PodError::Unconfirmed`]; one that proves nothing was sent (connection refused)
    /// or a readable refusal stays as it is.
    fn of_write(self, method: &Method, connected: bool) -> PodError {
        match self {
            PodError::Timeout { url, timeout } => PodError::Unconfirmed {
                method: method.to_string(),
                url,
                reason: format!("no answer within {timeout:?}"),
            },
            PodError::Network { url, reason } if connected => PodError::Unconfirmed {
                method: method.to_string(),
                url,
                reason,
            },
            PodError::Garbage { url, reason } => PodError::Unconfirmed {
                method: method.to_string(),
                url,
                reason,
            },
            other => other,
        }
    }
}

/// Client of one Pod. Cheap to clone (the HTTP connection pool is shared).
#[derive(Clone)]
pub struct PodClient {
    http: reqwest::Client,
    /// Pod's base URL, path ending with `/`, no query, no fragment.
    base: Url,
    timeout: Duration,
    body_limit: usize,
    /// Only to blank it out of answers: a Pod (or a proxy before it) that echoes the
    /// token in an error body must not put it in our log and mails.
    token: Secret,
    /// Most requests of one list read in flight at once.
    max_concurrency: usize,
    /// Where the token came from (`pod.token in <file>`, or the environment variable),
    /// named when Pod refuses it.
    token_source: Option<String>,
}

/// Never shows the token (it lives in the reqwest client's default headers).
impl fmt::Debug for PodClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodClient")
            .field("base", &shown(&self.base))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What a request carries.
enum Payload {
    Empty,
    Json(Value),
    Form(reqwest::multipart::Form),
}

/// A complete (status, body) answer, read within the size cap.
struct Answer {
    status: StatusCode,
    content_type: String,
    location: Option<String>,
    body: Vec<u8>,
}

impl PodClient {
    pub fn new(base: &Url, token: &Secret, timeout: Duration) -> anyhow::Result<Self> {
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            anyhow::bail!("pod.url {} must be an http:// or https:// URL", shown(base));
        }
        let mut base = base.clone();
        base.set_query(None);
        base.set_fragment(None);
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }

        let mut authorization = HeaderValue::from_str(&format!("Token {}", token.expose()))
            // The error would not contain the token, but say which setting to fix.
            .map_err(|_| {
                anyhow::anyhow!("pod.token contains characters not allowed in an HTTP header")
            })?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, authorization);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en"));

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("bbb-pod-live/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| {
                anyhow::anyhow!("building the HTTP client for Pod: {}", error_chain(&e))
            })?;
        Ok(PodClient {
            http,
            base,
            timeout,
            body_limit: MAX_BODY,
            token: token.clone(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            token_source: None,
        })
    }

    /// Names where the token came from in the error of a refused token (401), so
    /// that the admin fixes the right place: the file or the environment.
    pub fn with_token_source(mut self, source: impl Into<String>) -> Self {
        self.token_source = Some(source.into());
        self
    }

    /// The error of an unexpected status; a refused token names its source.
    fn status_error(&self, method: &Method, url: &Url, answer: &Answer) -> PodError {
        let mut e = status_error(method, url, answer);
        if let (
            PodError::Status {
                status: 401,
                detail,
                ..
            },
            Some(source),
        ) = (&mut e, &self.token_source)
        {
            detail.push_str(&format!(" (the token is {source})"));
        }
        e
    }

    /// At most `n` (at least 1) requests of one list read in flight at once.
    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// `<base>seg/seg/…/`, each segment percent-encoded, with the trailing slash DRF
    /// requires (without it Pod answers 301).
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // `new` refused cannot-be-a-base URLs, so this `Err` branch cannot happen.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments).push("");
        }
        url
    }

    /// Keep a hyperlink's path and query, take scheme, host and port from the base URL:
    /// Pod writes its links from the request's Host header (docs/pod-api.md,
    /// "Hyperlinks").
    fn rebase(&self, link: &str) -> Result<Url, String> {
        if link.trim().is_empty() {
            return Err("empty hyperlink".into());
        }
        // An absolute link replaces the base; a relative one is resolved against it.
        let parsed = self
            .base
            .join(link)
            .map_err(|e| format!("hyperlink {link:?} is not a URL: {e}"))?;
        let mut url = self.base.clone();
        url.set_path(parsed.path());
        url.set_query(parsed.query());
        url.set_fragment(None);
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    fn rebase_link(&self, link: &str) -> Result<Url, PodError> {
        self.rebase(link).map_err(|reason| PodError::Garbage {
            url: link.to_owned(),
            reason,
        })
    }

    /// Send one request and read the whole answer. Transport failures, timeouts, an
    /// oversized body and any redirect are errors; other statuses are the caller's.
    async fn call(&self, method: Method, url: &Url, payload: Payload) -> Result<Answer, PodError> {
        let started = Instant::now();
        let request = self.http.request(method.clone(), url.clone());
        let request = match payload {
            Payload::Empty => request,
            Payload::Json(body) => request.json(&body),
            Payload::Form(form) => request.multipart(form),
        };
        let result = self.exchange(request, url).await;
        let result = match result {
            // A write whose request may have reached Pod: unconfirmed.
            Err((e, connected)) if method != Method::GET => Err(e.of_write(&method, connected)),
            other => other.map_err(|(e, _)| e),
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(answer) => tracing::debug!(
                %method,
                url = %shown(url),
                status = answer.status.as_u16(),
                elapsed_ms,
                "pod request"
            ),
            Err(error) => tracing::debug!(
                %method,
                url = %shown(url),
                elapsed_ms,
                %error,
                "pod request failed"
            ),
        }
        let answer = result?;
        if answer.status.is_redirection() {
            return Err(redirect_error(&method, url, &answer));
        }
        Ok(answer)
    }

    /// Sends the request and reads the answer; an error says whether the connection was
    /// made (a write may then have reached Pod).
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<Answer, (PodError, bool)> {
        let mut response = request.send().await.map_err(|e| {
            let connected = !e.is_connect();
            (self.transport_error(url, e), connected)
        })?;
        let status = response.status();
        let text_header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = text_header(header::CONTENT_TYPE).unwrap_or_default();
        let location = text_header(header::LOCATION);
        let too_big = || PodError::Garbage {
            url: shown(url),
            reason: format!(
                "the answer is larger than {}; refusing to read it",
                size(self.body_limit)
            ),
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.body_limit as u64)
        {
            return Err((too_big(), true));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| (self.transport_error(url, e), true))?
        {
            if body.len() + chunk.len() > self.body_limit {
                return Err((too_big(), true));
            }
            body.extend_from_slice(&chunk);
        }
        redact(&mut body, self.token.expose().as_bytes());
        Ok(Answer {
            status,
            content_type,
            location,
            body,
        })
    }

    fn transport_error(&self, url: &Url, error: reqwest::Error) -> PodError {
        if error.is_timeout() {
            PodError::Timeout {
                url: shown(url),
                timeout: self.timeout,
            }
        } else {
            PodError::Network {
                url: shown(url),
                reason: error_chain(&error.without_url()),
            }
        }
    }

    /// The answer must have status `expected` and a body `parse` accepts.
    fn object<T>(
        &self,
        method: Method,
        url: &Url,
        answer: &Answer,
        expected: StatusCode,
        parse: fn(&Value) -> Result<T, String>,
    ) -> Result<T, PodError> {
        if answer.status != expected {
            return Err(self.status_error(&method, url, answer));
        }
        let parsed = json_body(url, answer).and_then(|value| {
            parse(&value).map_err(|reason| PodError::Garbage {
                url: shown(url),
                reason,
            })
        });
        // The write was accepted, but its answer says nothing we can read.
        if method != Method::GET {
            return parsed.map_err(|e| e.of_write(&method, true));
        }
        parsed
    }
}

/// A URL as shown in errors and logs: without user name or password.
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    // Both fail only for URLs that cannot have credentials; nothing to hide then.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::model::Broadcaster;
    use crate::model::{Live, LiveStatus, PodMeeting};
    use crate::pod::broadcasters::parse_broadcaster;
    use crate::pod::errors::{html_title, redirect_error, status_error};
    use crate::pod::livestreams::parse_live;
    use crate::pod::meetings::parse_meeting;
    use crate::pod::pages::parse_page;
    use crate::pod::test_support::hostile::{
        arb_json, hostile_string, typed_live_row, wrong_value,
    };
    use crate::pod::test_support::*;
    use proptest::prelude::*;
    use reqwest::{Method, StatusCode};
    use serde_json::json;

    /// Boxes the future as `dyn Future + Send` inside an async block holding references,
    /// the way tick.rs runs its per-slot work: this is where rustc checks `Send` for every
    /// lifetime, which a closure over `&Url` in the page stream once failed.
    fn boxed_send<'a, T>(
        f: impl Future<Output = T> + Send + 'a,
    ) -> std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>> {
        Box::pin(f)
    }

    #[tokio::test]
    async fn every_public_future_is_send() {
        let (base, _fake) = serve(|_, _| Reply::empty(500)).await;
        let pod = client(&base);
        let pod = &pod;
        let new = NewBroadcaster {
            name: "n".into(),
            stream_url: "u".into(),
            building_id: 1,
            is_restricted: false,
        };
        let start = StartFields {
            server: "1/1".into(),
            broadcaster_id: 1,
            redis_hostname: "h".into(),
            redis_port: 6379,
            redis_channel: "c".into(),
        };
        let (new, start) = (&new, &start);
        let all = boxed_send(async move {
            let _ = boxed_send(pod.livestreams()).await;
            let _ = boxed_send(pod.broadcasters()).await;
            let _ = boxed_send(pod.livestream(1)).await;
            let _ = boxed_send(pod.meeting("/rest/bbb_meeting/1/")).await;
            let _ = boxed_send(pod.mark_live_started(1, start)).await;
            let _ = boxed_send(pod.mark_live_stopped(1, None)).await;
            let _ = boxed_send(pod.mark_live_waiting(1)).await;
            let _ = boxed_send(pod.create_broadcaster(new)).await;
            let _ = boxed_send(pod.broadcaster("s")).await;
            let _ = boxed_send(pod.repoint_broadcaster("s", "u", true)).await;
            let _ = boxed_send(pod.delete_broadcaster("s")).await;
            let _ = boxed_send(pod.publish_recording("/rest/bbb_meeting/1/", "u")).await;
            let _ = boxed_send(pod.check_access()).await;
        });
        all.await;
        // Called from an `async fn` over references, itself boxed as Send (tick.rs).
        async fn find(pod: &PodClient, name: &str) -> Option<Broadcaster> {
            let all = pod.broadcasters().await.ok()?;
            all.into_iter().find(|b| b.name == name)
        }
        async fn outer(pod: &PodClient, name: &str) -> Option<Broadcaster> {
            boxed_send(find(pod, name)).await
        }
        assert_eq!(boxed_send(outer(pod, "x")).await, None);
        // And from a spawned task (needs 'static + Send).
        let owned = pod.clone();
        tokio::spawn(async move { owned.livestreams().await })
            .await
            .unwrap()
            .unwrap_err();
    }

    #[tokio::test]
    async fn hyperlinks_from_pod_localhost_are_rebased_onto_pod_url() {
        // Pod behind a proxy builds links from its own Host: http://pod.localhost.
        let (base, fake) = serve(|seen, _| {
            let origin = "http://pod.localhost";
            if seen.path.starts_with("/rest/bbb_meeting/") {
                return Reply::json(
                    200,
                    json!({"id": 7, "meeting_id": "abc", "internal_meeting_id": "int-7",
                           "meeting_name": "Cours", "encoding_step": 3, "encoded_by": null}),
                );
            }
            let rows: Vec<Value> = (1..=30).map(|id| live_row(id, origin)).collect();
            drf_page(&rows, seen, origin)
        })
        .await;
        let pod = client(&base);
        let lives = pod.livestreams().await.unwrap().lives;
        assert_eq!(lives.len(), 30);
        let meeting_url = lives[6].meeting_url.clone().unwrap();
        assert_eq!(meeting_url, "http://pod.localhost/rest/bbb_meeting/7/");
        let meeting = pod.meeting(&meeting_url).await.unwrap();
        assert_eq!(meeting.internal_meeting_id, "int-7");
        let published = pod
            .publish_recording(&meeting_url, "http://pod.localhost/rest/users/3/")
            .await
            .unwrap()
            .expect("the meeting exists");
        assert_eq!(published.id, 7);
        let seen = fake.seen();
        // Every request reached the fake (the only host it could), with our Host.
        assert_eq!(seen.len(), 5);
        let host = base.host_str().unwrap();
        assert!(
            seen.iter()
                .all(|s| s.header("host").unwrap().starts_with(host))
        );
        assert_eq!(seen[3].path, "/rest/bbb_meeting/7/");
        assert_eq!(seen[4].method, "PATCH");
        // The user hyperlink is sent as Pod gave it (DRF reads only its path).
        assert_eq!(
            seen[4].json(),
            json!({"encoded_by": "http://pod.localhost/rest/users/3/", "encoding_step": 3})
        );
    }

    #[test]
    fn rebase_keeps_path_and_query_and_takes_scheme_host_port_from_base() {
        let base = Url::parse("https://pod.example.org:8443/").unwrap();
        let pod = PodClient::new(&base, &Secret::new(TOKEN), Duration::from_secs(1)).unwrap();
        let cases = [
            (
                "http://pod.localhost/rest/bbb_meeting/12/",
                "https://pod.example.org:8443/rest/bbb_meeting/12/",
            ),
            (
                "http://127.0.0.1:8000/rest/bbb_livestream/?page=2&status=0",
                "https://pod.example.org:8443/rest/bbb_livestream/?page=2&status=0",
            ),
            (
                "/rest/bbb_meeting/3/",
                "https://pod.example.org:8443/rest/bbb_meeting/3/",
            ),
            (
                "https://evil.example/rest/bbb_meeting/4",
                "https://pod.example.org:8443/rest/bbb_meeting/4/",
            ),
            (
                "http://user:pw@pod.localhost/rest/users/3/#x",
                "https://pod.example.org:8443/rest/users/3/",
            ),
        ];
        for (link, expected) in cases {
            assert_eq!(pod.rebase(link).unwrap().as_str(), expected, "{link}");
        }
        assert!(pod.rebase("").is_err());
        assert!(pod.rebase("http://[::1").is_err());
        // A Pod under a path prefix writes the prefix in its links (SCRIPT_NAME).
        let prefixed = Url::parse("https://host.example/pod").unwrap();
        let pod = PodClient::new(&prefixed, &Secret::new(TOKEN), Duration::from_secs(1)).unwrap();
        assert_eq!(
            pod.endpoint(&["rest", "bbb_livestream"]).as_str(),
            "https://host.example/pod/rest/bbb_livestream/"
        );
        assert_eq!(
            pod.rebase("http://pod.localhost/pod/rest/bbb_meeting/1/")
                .unwrap()
                .as_str(),
            "https://host.example/pod/rest/bbb_meeting/1/"
        );
    }

    #[tokio::test]
    async fn token_is_sent_on_every_request_and_never_shown() {
        let (base, fake) = serve(|seen, _| match seen.method.as_str() {
            "GET" if seen.path == "/rest/bbb_livestream/" => {
                let origin = seen.origin();
                let rows: Vec<Value> = (1..=25).map(|id| live_row(id, &origin)).collect();
                drf_page(&rows, seen, &origin)
            }
            "DELETE" => Reply::empty(204),
            "POST" => Reply::json(401, json!({"detail": "Invalid token."})),
            _ => Reply::html(500, "<html><title>Boom</title></html>"),
        })
        .await;
        let pod = client(&base);
        pod.livestreams().await.unwrap();
        pod.delete_broadcaster("bbb-x").await.unwrap();
        let new = NewBroadcaster {
            name: "[BBB] x".into(),
            stream_url: "https://hls/x.m3u8".into(),
            building_id: 1,
            is_restricted: false,
        };
        let errors = [
            pod.create_broadcaster(&new).await.unwrap_err(),
            pod.mark_live_stopped(1, None).await.unwrap_err(),
            pod.meeting("http://pod.localhost/rest/bbb_meeting/1/")
                .await
                .unwrap_err(),
        ];
        let seen = fake.seen();
        assert_eq!(seen.len(), 7);
        for s in &seen {
            assert_eq!(
                s.header("authorization"),
                Some(&*format!("Token {TOKEN}")),
                "{} {}",
                s.method,
                s.path
            );
            assert_eq!(s.header("accept"), Some("application/json"));
            assert_eq!(s.header("accept-language"), Some("en"));
            assert_eq!(
                s.header("user-agent"),
                Some(&*format!("bbb-pod-live/{}", env!("CARGO_PKG_VERSION")))
            );
            assert!(s.path.ends_with('/'), "{}", s.path);
        }
        for e in &errors {
            assert!(!e.to_string().contains(TOKEN));
            assert!(!format!("{e:?}").contains(TOKEN));
        }
        assert!(!format!("{pod:?}").contains(TOKEN));
        assert!(!format!("{:?}", pod.clone()).contains("s3cr3t"));
    }

    #[tokio::test]
    async fn a_token_unfit_for_a_header_is_refused_without_showing_it() {
        let base = Url::parse("https://pod.example/").unwrap();
        let e =
            PodClient::new(&base, &Secret::new("abc\ndef"), Duration::from_secs(1)).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("pod.token") && !text.contains("abc"),
            "{text}"
        );
        let ftp = Url::parse("ftp://pod.example/").unwrap();
        assert!(PodClient::new(&ftp, &Secret::new(TOKEN), Duration::from_secs(1)).is_err());
    }

    #[tokio::test]
    async fn a_slow_pod_is_a_timeout() {
        let (base, _fake) =
            serve(|_, _| Reply::json(200, json!({})).delayed(Duration::from_secs(5))).await;
        let pod = PodClient::new(&base, &Secret::new(TOKEN), Duration::from_millis(200)).unwrap();
        // Only the client's own timeout gives `Timeout`: no wall-clock bound needed.
        let e = pod.livestream(1).await.unwrap_err();
        match e {
            PodError::Timeout { url, timeout } => {
                assert_eq!(url, format!("{base}rest/bbb_livestream/1/"));
                assert_eq!(timeout, Duration::from_millis(200));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_unreachable_pod_is_a_network_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let base = Url::parse(&format!("http://{addr}/")).unwrap();
        let e = client(&base).livestreams().await.unwrap_err();
        match &e {
            PodError::Network { url, reason } => {
                assert_eq!(url, &format!("{base}rest/bbb_livestream/"));
                assert!(!reason.is_empty());
            }
            other => panic!("expected a network error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused_with_or_without_content_length() {
        let (base, _fake) = serve(|seen, _| {
            let mut reply = Reply::raw(200, "application/json", vec![b' '; MAX_BODY + 1]);
            reply.chunked = seen.path.ends_with("/2/");
            reply
        })
        .await;
        let pod = client(&base);
        for id in [1, 2] {
            let e = pod.livestream(id).await.unwrap_err();
            assert_eq!(
                garbage_reason(&e),
                "the answer is larger than 16 MiB; refusing to read it"
            );
        }
        // Exactly at the limit is read (and then fails as JSON, not as size).
        let mut small = client(&base);
        small.body_limit = MAX_BODY + 1;
        let e = small.livestream(2).await.unwrap_err();
        assert!(garbage_reason(&e).starts_with("invalid JSON"), "{e}");
    }

    #[test]
    fn urls_are_shown_without_credentials_and_limits_in_mib() {
        let url = Url::parse("https://admin:hunter2@pod.example/rest/?page=2").unwrap();
        assert_eq!(shown(&url), "https://pod.example/rest/?page=2");
        assert_eq!(size(16 << 20), "16 MiB");
        assert_eq!(size((1 << 20) + 1), "1048577 bytes");
        assert_eq!(size(1000), "1000 bytes");
    }

    proptest::proptest! {
        #[test]
        fn parsers_and_error_readers_never_panic(value in arb_json(), bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), status in 100u16..600) {
            let _ = parse_page::<Live>(&value);
            let _ = parse_page::<Broadcaster>(&value);
            let _ = parse_live(&value);
            let _ = parse_meeting(&value);
            let _ = parse_broadcaster(&value);
            let url = Url::parse("https://pod.example/rest/broadcasters/").unwrap();
            for body in [value.to_string().into_bytes(), bytes.clone()] {
                let answer = Answer {
                    status: StatusCode::from_u16(status).unwrap(),
                    content_type: "text/html".into(),
                    location: Some(String::from_utf8_lossy(&bytes).into_owned()),
                    body,
                };
                let _ = status_error(&Method::GET, &url, &answer);
                let _ = redirect_error(&Method::GET, &url, &answer);
                let _ = html_title(&answer.body);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any JSON at all where a page or a row is expected: an error or a value, never
        /// a panic, and an error message of bounded size.
        #[test]
        fn any_json_anywhere_never_panics(value in wrong_value(), nested in wrong_value()) {
            let wrapped = json!({"count": 1, "next": null, "results": [value.clone()]});
            let deep = json!({"count": 1, "next": null, "results": [{"id": 1, "status": nested}]});
            for v in [&value, &wrapped, &deep] {
                for e in [
                    parse_page::<Live>(v).err(),
                    parse_page::<Broadcaster>(v).err(),
                    parse_live(v).err(),
                    parse_meeting(v).err(),
                    parse_broadcaster(v).err(),
                ]
                .into_iter()
                .flatten()
                {
                    prop_assert!(!e.is_empty() && e.len() < 400, "{:?}", e);
                }
            }
        }

        /// Well-typed rows whose strings are hostile read back exactly.
        #[test]
        fn hostile_strings_in_well_typed_rows_read_back_exactly(
            id in any::<u64>(),
            texts in [hostile_string(), hostile_string(), hostile_string(), hostile_string()],
            status in any::<i64>(),
            broadcaster in any::<Option<u64>>(),
            flags in any::<[bool; 4]>(),
        ) {
            let live = parse_live(&typed_live_row(id, &texts, status, broadcaster, flags)).unwrap();
            prop_assert_eq!(live, Live {
                id,
                meeting_url: Some(texts[0].clone()),
                user_url: Some(texts[1].clone()),
                status: LiveStatus::from_code(status),
                server: Some(texts[2].clone()),
                end_date: Some(texts[3].clone()),
                broadcaster_id: broadcaster,
                is_restricted: flags[0],
                enable_chat: flags[1],
                show_chat: flags[2],
                download_meeting: flags[3],
            });
            let meeting = parse_meeting(&json!({
                "id": id, "meeting_id": texts[0], "internal_meeting_id": texts[1], "meeting_name": texts[2],
            })).unwrap();
            prop_assert_eq!(meeting, PodMeeting {
                id,
                meeting_id: texts[0].clone().into(),
                internal_meeting_id: texts[1].clone().into(),
                meeting_name: texts[2].clone(),
            });
        }
    }
}
