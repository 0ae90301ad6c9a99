//! Typed client of Pod's REST API (Django REST Framework): token header, every page
//! of a list, status codes checked, DRF error bodies turned into readable messages.
//!
//! This module owns the HTTP conversation with Pod and the translation of its JSON
//! into `model` types. It decides nothing: a list that cannot be read completely is an
//! error for the whole read, never a shorter list, so the tick never mistakes a
//! missing row for a live closed by hand. Which lives to start or stop is `plan.rs`'s
//! business; the Pod API facts this code answers are in `shared/spec/pod-api.md`.
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

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, SecondsFormat};
use futures_util::future::try_join_all;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url, redirect};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::config::Secret;
use crate::error_chain::error_chain;
use crate::model::{Broadcaster, Live, LiveId, LiveStatus, PodMeeting};

/// Largest answer we read. Pod's pages are a few KB; its HTML error pages ~13 KB.
const MAX_BODY: usize = 16 << 20;
/// List pages in flight at once unless configured (`pod.max_concurrency`).
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;
/// More pages than this is not a Pod list (12 rows per page: 120 000 rows).
const MAX_PAGES: u64 = 10_000;

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
}

impl PodError {
    pub fn status(&self) -> Option<u16> {
        match self {
            PodError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A broadcaster to create (`POST /rest/broadcasters/`).
#[derive(Debug, Clone)]
pub struct NewBroadcaster {
    pub name: String,
    /// `<hls_url><key>.m3u8`, sent as both `url` and `broadcaster_url`.
    pub stream_url: String,
    pub building_id: u64,
    pub is_restricted: bool,
}

/// Outcome of a broadcaster POST.
#[derive(Debug)]
pub enum CreateBroadcaster {
    Created(Broadcaster),
    /// 400 with an error on `name` (with or without one on `url`/`broadcaster_url`): a
    /// broadcaster already has this name. Recognised by status + field, not by the
    /// message text (French by default).
    NameTaken,
    /// 400 with an error on `url` or `broadcaster_url` but none on `name`: on Pod ≤ 2.9.2
    /// another broadcaster already streams from this URL (Pod 3.x answers a 500 HTML
    /// page instead, §7 of the spec). `detail` is the readable field errors, so an
    /// "Enter a valid URL." is not mistaken for a duplicate by whoever reports it.
    UrlTaken {
        detail: String,
    },
}

/// The PATCH sent when a live starts.
#[derive(Debug, Clone)]
pub struct StartFields {
    pub server: String,
    pub broadcaster_id: u64,
    pub redis_hostname: String,
    pub redis_port: u16,
    pub redis_channel: String,
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

/// One page of a DRF list.
struct Page<T> {
    count: u64,
    /// Already rebased.
    next: Option<Url>,
    rows: Vec<T>,
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
        })
    }

    /// At most `n` (at least 1) requests of one list read in flight at once.
    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n.max(1);
        self
    }

    /// Every livestream, all pages, sorted by id (Pod 3.1+ ignores `?status=`: the
    /// caller filters). Any failure fails the whole read.
    pub async fn livestreams(&self) -> Result<Vec<Live>, PodError> {
        self.list(self.endpoint(&["rest", "bbb_livestream"])).await
    }

    /// The livestreams a tick decides on: the waiting (status 0) and running (1) ones,
    /// asked with `?status=0` and `?status=1` together, plus each live of `ours` (the
    /// lives in our slots) those lists do not show, read by id: a live closed by hand
    /// (status 2) is still seen. Pod 3.1–3.8.1 ignores the filter (pod-api.md §1.1): an
    /// answer holding a row of another status is then page 1 of the whole list, whose
    /// other pages are read, and every row is returned, as [`PodClient::livestreams`]
    /// does. Each call finds out anew: Pod may be upgraded between two ticks. After
    /// the first pages, every other page is asked at once, at most
    /// [`PodClient::with_max_concurrency`] in flight. Sorted by id; any failure fails
    /// the whole read.
    pub async fn current_livestreams(&self, ours: &[LiveId]) -> Result<Vec<Live>, PodError> {
        let permits = Semaphore::new(self.max_concurrency);
        let filtered = |status: &str| {
            let mut url = self.endpoint(&["rest", "bbb_livestream"]);
            url.query_pairs_mut().append_pair("status", status);
            url
        };
        let (waiting, running) = (filtered("0"), filtered("1"));
        let (first_waiting, first_running) = tokio::try_join!(
            self.page_within::<Live>(&waiting, &permits),
            self.page_within::<Live>(&running, &permits),
        )?;
        let other = |rows: &[Live], status| rows.iter().any(|l| l.status != status);
        if other(&first_waiting.rows, LiveStatus::Waiting)
            || other(&first_running.rows, LiveStatus::Running)
        {
            tracing::debug!("Pod ignores ?status= (Pod 3.1 to 3.8.1): reading the whole list");
            return self.list_from(&waiting, first_waiting, &permits).await;
        }
        let (mut lives, running_rows) = tokio::try_join!(
            self.list_from(&waiting, first_waiting, &permits),
            self.list_from(&running, first_running, &permits),
        )?;
        // Later pages showing other statuses (Pod upgraded during the read): that list
        // was read whole and consistent, so it is every live.
        if other(&lives, LiveStatus::Waiting) {
            return Ok(lives);
        }
        if other(&running_rows, LiveStatus::Running) {
            return Ok(running_rows);
        }
        // A live whose status changed between the two answers may be in both lists
        // (read it again) or in neither (read it if it is ours).
        let waiting_ids: HashSet<LiveId> = lives.iter().map(|l| l.id).collect();
        let mut by_id = Vec::new();
        for live in running_rows {
            if waiting_ids.contains(&live.id) {
                by_id.push(live.id);
            } else {
                lives.push(live);
            }
        }
        lives.retain(|l| !by_id.contains(&l.id));
        let listed: HashSet<LiveId> = lives.iter().map(|l| l.id).collect();
        by_id.extend(ours.iter().filter(|id| !listed.contains(id)));
        by_id.sort_unstable();
        by_id.dedup();
        let read = try_join_all(by_id.iter().map(|&id| {
            let permits = &permits;
            async move {
                // Never closed, so a permit always comes.
                let _permit = permits.acquire().await.ok();
                tracing::debug!(live = id, "not in Pod's filtered lists; reading it by id");
                self.livestream(id).await
            }
        }))
        .await?;
        lives.extend(read.into_iter().flatten());
        lives.sort_by_key(|l| l.id);
        Ok(lives)
    }

    /// One livestream by id; `Ok(None)` on Pod's 404 (a DRF JSON 404, not an HTML page:
    /// that would mean the route itself is missing and is an error).
    pub async fn livestream(&self, id: LiveId) -> Result<Option<Live>, PodError> {
        let url = self.endpoint(&["rest", "bbb_livestream", &id.to_string()]);
        let answer = self.call(Method::GET, &url, Payload::Empty).await?;
        if is_object_not_found(&answer) {
            return Ok(None);
        }
        self.object(Method::GET, &url, &answer, StatusCode::OK, parse_live)
            .map(Some)
    }

    /// GET the meeting hyperlink of a livestream (rebased onto the configured base URL).
    pub async fn meeting(&self, url: &str) -> Result<PodMeeting, PodError> {
        let url = self.rebase_link(url)?;
        let answer = self.call(Method::GET, &url, Payload::Empty).await?;
        self.object(Method::GET, &url, &answer, StatusCode::OK, parse_meeting)
    }

    /// PATCH the livestream to status 1 with its server/slot, broadcaster and chat Redis.
    pub async fn mark_live_started(
        &self,
        id: LiveId,
        fields: &StartFields,
    ) -> Result<Live, PodError> {
        self.patch_live(
            id,
            json!({
                "server": fields.server,
                "status": 1,
                "broadcaster_id": fields.broadcaster_id,
                "redis_hostname": fields.redis_hostname,
                "redis_port": fields.redis_port,
                "redis_channel": fields.redis_channel,
            }),
        )
        .await
    }

    /// PATCH the livestream to status 2; `end_date` is sent only when given, in RFC 3339
    /// with its offset (a naive value would be read in Pod's `TIME_ZONE`).
    pub async fn mark_live_stopped(
        &self,
        id: LiveId,
        end_date: Option<DateTime<FixedOffset>>,
    ) -> Result<Live, PodError> {
        let mut body = json!({ "status": 2 });
        if let (Some(end), Some(map)) = (end_date, body.as_object_mut()) {
            map.insert(
                "end_date".into(),
                Value::String(end.to_rfc3339_opts(SecondsFormat::Secs, false)),
            );
        }
        self.patch_live(id, body).await
    }

    /// PATCH the livestream back to status 0 (server cleared): undo of an uncertain start.
    pub async fn mark_live_waiting(&self, id: LiveId) -> Result<Live, PodError> {
        self.patch_live(id, json!({ "status": 0, "server": null }))
            .await
    }

    /// POST a broadcaster (multipart, like Pod's own forms). Sends the stream URL as
    /// both `url` (Pod ≤ 2.9.2) and `broadcaster_url` (Pod ≥ 2.9.3): each version
    /// ignores the other name (spec §6.3).
    pub async fn create_broadcaster(
        &self,
        new: &NewBroadcaster,
    ) -> Result<CreateBroadcaster, PodError> {
        let url = self.endpoint(&["rest", "broadcasters"]);
        let building = self.endpoint(&["rest", "buildings", &new.building_id.to_string()]);
        let form = reqwest::multipart::Form::new()
            .text("name", new.name.clone())
            .text("url", new.stream_url.clone())
            .text("broadcaster_url", new.stream_url.clone())
            .text("building", building.to_string())
            .text("status", "true")
            .text("is_restricted", new.is_restricted.to_string());
        let answer = self.call(Method::POST, &url, Payload::Form(form)).await?;
        if answer.status == StatusCode::BAD_REQUEST
            && let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&answer.body)
        {
            let detail = field_errors(&fields);
            if fields.contains_key("name") {
                tracing::debug!(name = %new.name, %detail, "pod refused the broadcaster name");
                return Ok(CreateBroadcaster::NameTaken);
            }
            if fields.contains_key("url") || fields.contains_key("broadcaster_url") {
                return Ok(CreateBroadcaster::UrlTaken { detail });
            }
        }
        self.object(
            Method::POST,
            &url,
            &answer,
            StatusCode::CREATED,
            parse_broadcaster,
        )
        .map(CreateBroadcaster::Created)
    }

    /// `GET /rest/broadcasters/<slug>/`; `Ok(None)` on Pod's (JSON) 404.
    pub async fn broadcaster(&self, slug: &str) -> Result<Option<Broadcaster>, PodError> {
        let url = self.broadcaster_url(slug)?;
        let answer = self.call(Method::GET, &url, Payload::Empty).await?;
        if is_object_not_found(&answer) {
            return Ok(None);
        }
        self.object(
            Method::GET,
            &url,
            &answer,
            StatusCode::OK,
            parse_broadcaster,
        )
        .map(Some)
    }

    /// `GET /rest/buildings/<id>/`: the building's name; `Ok(None)` on Pod's (JSON) 404.
    /// For `check`: broadcasters are created in `pod.building_id`.
    pub async fn building(&self, id: u64) -> Result<Option<String>, PodError> {
        let url = self.endpoint(&["rest", "buildings", &id.to_string()]);
        let answer = self.call(Method::GET, &url, Payload::Empty).await?;
        if is_object_not_found(&answer) {
            return Ok(None);
        }
        self.object(Method::GET, &url, &answer, StatusCode::OK, |value| {
            value
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("expected a building with a name, found {}", kind(value)))
        })
        .map(Some)
    }

    /// Every broadcaster, all pages, sorted by id.
    pub async fn broadcasters(&self) -> Result<Vec<Broadcaster>, PodError> {
        self.list(self.endpoint(&["rest", "broadcasters"])).await
    }

    /// PATCH a broadcaster's stream URL (both field names) and restriction.
    pub async fn repoint_broadcaster(
        &self,
        slug: &str,
        stream_url: &str,
        is_restricted: bool,
    ) -> Result<Broadcaster, PodError> {
        let url = self.broadcaster_url(slug)?;
        let body = json!({
            "url": stream_url,
            "broadcaster_url": stream_url,
            "is_restricted": is_restricted,
        });
        let answer = self.call(Method::PATCH, &url, Payload::Json(body)).await?;
        self.object(
            Method::PATCH,
            &url,
            &answer,
            StatusCode::OK,
            parse_broadcaster,
        )
    }

    /// `DELETE /rest/broadcasters/<slug>/`; a (JSON) 404 is success (already gone).
    pub async fn delete_broadcaster(&self, slug: &str) -> Result<(), PodError> {
        let url = self.broadcaster_url(slug)?;
        let answer = self.call(Method::DELETE, &url, Payload::Empty).await?;
        if answer.status.is_success() || is_object_not_found(&answer) {
            return Ok(());
        }
        Err(status_error(&Method::DELETE, &url, &answer))
    }

    /// PATCH the meeting `{"encoded_by": user_url, "encoding_step": 3}`; returns the meeting
    /// (the caller reads `internal_meeting_id`). The meeting URL is rebased; `user_url`
    /// is sent as Pod gave it (DRF ignores a hyperlink's host on input).
    pub async fn publish_recording(
        &self,
        meeting_url: &str,
        user_url: &str,
    ) -> Result<PodMeeting, PodError> {
        let url = self.rebase_link(meeting_url)?;
        let body = json!({ "encoded_by": user_url, "encoding_step": 3 });
        let answer = self.call(Method::PATCH, &url, Payload::Json(body)).await?;
        self.object(Method::PATCH, &url, &answer, StatusCode::OK, parse_meeting)
    }

    /// One cheap authenticated read (`GET /rest/bbb_livestream/?page=1`) that proves
    /// the URL, the token, the staff flag and `USE_BBB`, with the usual hints if not.
    pub async fn check_access(&self) -> Result<(), PodError> {
        let mut url = self.endpoint(&["rest", "bbb_livestream"]);
        url.set_query(Some("page=1"));
        self.page::<Live>(&url).await.map(|_| ())
    }

    // ---------------------------------------------------------------------------
    // URLs
    // ---------------------------------------------------------------------------

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

    fn broadcaster_url(&self, slug: &str) -> Result<Url, PodError> {
        // `url` drops "." and ".." segments: they would address the collection itself.
        if slug.is_empty() || slug == "." || slug == ".." {
            return Err(PodError::Garbage {
                url: shown(&self.endpoint(&["rest", "broadcasters"])),
                reason: format!("{slug:?} is not a broadcaster slug"),
            });
        }
        Ok(self.endpoint(&["rest", "broadcasters", slug]))
    }

    /// Keep a hyperlink's path and query, take scheme, host and port from the base URL:
    /// Pod writes its links from the request's Host header (spec §1.0, §6.6).
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

    // ---------------------------------------------------------------------------
    // Requests
    // ---------------------------------------------------------------------------

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

    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<Answer, PodError> {
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(url, e))?;
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
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(url, e))?
        {
            if body.len() + chunk.len() > self.body_limit {
                return Err(too_big());
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
            return Err(status_error(&method, url, answer));
        }
        let value = json_body(url, answer)?;
        parse(&value).map_err(|reason| PodError::Garbage {
            url: shown(url),
            reason,
        })
    }

    async fn patch_live(&self, id: LiveId, body: Value) -> Result<Live, PodError> {
        let url = self.endpoint(&["rest", "bbb_livestream", &id.to_string()]);
        let answer = self.call(Method::PATCH, &url, Payload::Json(body)).await?;
        self.object(Method::PATCH, &url, &answer, StatusCode::OK, parse_live)
    }

    // ---------------------------------------------------------------------------
    // Lists
    // ---------------------------------------------------------------------------

    /// Every row of a DRF list, sorted by id. Page 1 gives `count` and the page size;
    /// the other pages are then fetched concurrently. If the pages disagree (rows
    /// added or removed meanwhile), the list is read once more, page after page.
    async fn list<T: Row>(&self, first: Url) -> Result<Vec<T>, PodError> {
        let permits = Semaphore::new(self.max_concurrency);
        let page1 = self.page_within::<T>(&first, &permits).await?;
        self.list_from(&first, page1, &permits).await
    }

    /// The list whose first page, read from `first`, is `page1`: the other pages at
    /// once, each holding one of `permits` while in flight.
    async fn list_from<T: Row>(
        &self,
        first: &Url,
        page1: Page<T>,
        permits: &Semaphore,
    ) -> Result<Vec<T>, PodError> {
        let mut rows = match self.rest_of_list(page1, permits).await? {
            Some(rows) => rows,
            None => {
                tracing::debug!(
                    url = %shown(first),
                    "pod list changed while being read; reading it again page by page"
                );
                self.sequential_list(first).await?
            }
        };
        rows.sort_by_key(T::id);
        Ok(rows)
    }

    /// Pages 2.. of a list, concurrently; `None` if the pages are not consistent.
    async fn rest_of_list<T: Row>(
        &self,
        page1: Page<T>,
        permits: &Semaphore,
    ) -> Result<Option<Vec<T>>, PodError> {
        let count = page1.count;
        let Some(next) = page1.next else {
            return Ok(consistent(count, page1.rows));
        };
        let per_page = page1.rows.len() as u64;
        if per_page == 0 || count <= per_page {
            return Ok(None);
        }
        let pages = count.div_ceil(per_page);
        if pages > MAX_PAGES {
            return Err(PodError::Garbage {
                url: shown(&next),
                reason: format!("implausible count {count} ({pages} pages of {per_page})"),
            });
        }
        // Owned URLs: a closure over `&Url` makes the future not provably `Send` for
        // every lifetime, which breaks `tokio::spawn` of the tick's slot tasks.
        let rest: Vec<Page<T>> = try_join_all(
            (2..=pages)
                .map(|k| with_page(&next, k))
                .map(|url| async move { self.page_within::<T>(&url, permits).await }),
        )
        .await?;
        if rest.iter().any(|page| page.count != count) {
            return Ok(None);
        }
        let mut rows = page1.rows;
        for page in rest {
            rows.extend(page.rows);
        }
        Ok(consistent(count, rows))
    }

    /// The list read by following `next`; an inconsistency now is an error.
    async fn sequential_list<T: Row>(&self, first: &Url) -> Result<Vec<T>, PodError> {
        let changed = |what: String| PodError::Garbage {
            url: shown(first),
            reason: format!(
                "the list changed while it was being read, twice ({what}); \
                 nothing is decided on a partial list, the next run reads it again"
            ),
        };
        let mut url = first.clone();
        let mut visited = HashSet::new();
        let mut count = None;
        let mut rows = Vec::new();
        loop {
            if !visited.insert(url.to_string()) || visited.len() as u64 > MAX_PAGES {
                return Err(PodError::Garbage {
                    url: shown(&url),
                    reason: "the `next` links go round in circles".into(),
                });
            }
            let page = self.page::<T>(&url).await?;
            match count {
                None => count = Some(page.count),
                Some(c) if c != page.count => {
                    return Err(changed(format!("count {c} then {}", page.count)));
                }
                Some(_) => {}
            }
            rows.extend(page.rows);
            match page.next {
                Some(next) => url = next,
                None => break,
            }
        }
        let count = count.unwrap_or(0);
        let got = rows.len();
        consistent(count, rows).ok_or_else(|| {
            changed(format!(
                "count {count}, {got} rows read, possibly with duplicates"
            ))
        })
    }

    /// [`PodClient::page`] holding one of `permits` while in flight.
    async fn page_within<T: Row>(
        &self,
        url: &Url,
        permits: &Semaphore,
    ) -> Result<Page<T>, PodError> {
        // Never closed, so a permit always comes.
        let _permit = permits.acquire().await.ok();
        self.page::<T>(url).await
    }

    async fn page<T: Row>(&self, url: &Url) -> Result<Page<T>, PodError> {
        let answer = self.call(Method::GET, url, Payload::Empty).await?;
        if answer.status != StatusCode::OK {
            return Err(status_error(&Method::GET, url, &answer));
        }
        let value = json_body(url, &answer)?;
        let garbage = |reason| PodError::Garbage {
            url: shown(url),
            reason,
        };
        let (count, next, rows) = parse_page::<T>(&value).map_err(garbage)?;
        let next = match next {
            Some(link) => Some(self.rebase(&link).map_err(garbage)?),
            None => None,
        };
        Ok(Page { count, next, rows })
    }
}

/// `rows` if they are exactly `count` rows with distinct ids.
fn consistent<T: Row>(count: u64, rows: Vec<T>) -> Option<Vec<T>> {
    let mut ids = HashSet::new();
    (rows.len() as u64 == count && rows.iter().all(|row| ids.insert(row.id()))).then_some(rows)
}

/// `url` with its `page` query parameter set to `k` (other parameters kept in place).
fn with_page(url: &Url, k: u64) -> Url {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    match pairs.iter_mut().find(|(name, _)| name == "page") {
        Some(pair) => pair.1 = k.to_string(),
        None => pairs.push(("page".into(), k.to_string())),
    }
    let mut url = url.clone();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url
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

// -------------------------------------------------------------------------------
// Error bodies
// -------------------------------------------------------------------------------

/// A DRF "not found" for an object (JSON or empty body). An HTML 404 is Django's own
/// page for a route that does not exist (USE_BBB off, "live" not installed, wrong
/// pod.url): that must not read as "this live/broadcaster is gone".
fn is_object_not_found(answer: &Answer) -> bool {
    answer.status == StatusCode::NOT_FOUND
        && (answer.body.iter().all(u8::is_ascii_whitespace)
            || serde_json::from_slice::<Value>(&answer.body).is_ok())
}

/// Replaces every occurrence of `secret` in `body` by `[redacted]`.
fn redact(body: &mut Vec<u8>, secret: &[u8]) {
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

fn status_error(method: &Method, url: &Url, answer: &Answer) -> PodError {
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

fn redirect_error(method: &Method, url: &Url, answer: &Answer) -> PodError {
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
fn error_detail(answer: &Answer) -> String {
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
    let text = one_line(&String::from_utf8_lossy(&answer.body), 300);
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
fn field_errors(map: &Map<String, Value>) -> String {
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

fn messages(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![one_line(text, 300)],
        Value::Array(items) => items.iter().flat_map(messages).collect(),
        Value::Object(map) => vec![format!("{{{}}}", field_errors(map))],
        other => vec![other.to_string()],
    }
}

/// Hints for the admin, by status and route (never by the localised text).
fn hint(answer: &Answer, url: &Url) -> Option<String> {
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

fn looks_like_html(answer: &Answer) -> bool {
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
fn html_title(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(head);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title = one_line(text.get(start..end)?, 200);
    (!title.is_empty()).then_some(title)
}

/// Whitespace collapsed, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() > max {
        let mut cut: String = joined.chars().take(max).collect();
        cut.push('…');
        cut
    } else {
        joined
    }
}

fn json_body(url: &Url, answer: &Answer) -> Result<Value, PodError> {
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

// -------------------------------------------------------------------------------
// Rows
// -------------------------------------------------------------------------------

/// A row type of a DRF list.
trait Row: Sized {
    fn parse(value: &Value) -> Result<Self, String>;
    fn id(&self) -> u64;
}

impl Row for Live {
    fn parse(value: &Value) -> Result<Self, String> {
        parse_live(value)
    }
    fn id(&self) -> u64 {
        self.id
    }
}

impl Row for Broadcaster {
    fn parse(value: &Value) -> Result<Self, String> {
        parse_broadcaster(value)
    }
    fn id(&self) -> u64 {
        self.id
    }
}

/// `{count, next, previous, results}` → (count, next link, parsed rows). A row that
/// does not parse fails the page: skipping it could make a running live look closed.
fn parse_page<T: Row>(value: &Value) -> Result<(u64, Option<String>, Vec<T>), String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("expected a DRF page object, found {}", kind(value)))?;
    let envelope = |e| format!("not a DRF page: {e}");
    let count = required_id(map, "count").map_err(envelope)?;
    let next = optional_string(map, "next").map_err(envelope)?;
    let results = match map.get("results") {
        Some(Value::Array(results)) => results,
        Some(other) => {
            return Err(envelope(format!(
                "field \"results\": expected an array, found {}",
                kind(other)
            )));
        }
        None => return Err(envelope("field \"results\" is missing".into())),
    };
    let rows = results
        .iter()
        .enumerate()
        .map(|(i, row)| T::parse(row).map_err(|e| format!("results[{i}]: {e}")))
        .collect::<Result<Vec<T>, String>>()?;
    Ok((count, next, rows))
}

/// A `bbb_livestream` object. Optional fields may be null or absent (absent = null).
fn parse_live(value: &Value) -> Result<Live, String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("expected a livestream object, found {}", kind(value)))?;
    let id = required_id(map, "id").map_err(|e| format!("livestream without a usable id: {e}"))?;
    let fields = || -> Result<Live, String> {
        Ok(Live {
            id,
            meeting_url: optional_string(map, "meeting")?,
            user_url: optional_string(map, "user")?,
            status: LiveStatus::from_code(required_int(map, "status")?),
            server: optional_string(map, "server")?,
            end_date: optional_string(map, "end_date")?,
            broadcaster_id: optional_id(map, "broadcaster_id")?,
            // Null → Pod's model defaults (spec §2.1).
            is_restricted: flag(map, "is_restricted", false)?,
            enable_chat: flag(map, "enable_chat", false)?,
            show_chat: flag(map, "show_chat", true)?,
            download_meeting: flag(map, "download_meeting", false)?,
        })
    };
    fields().map_err(|e| format!("livestream {id}: {e}"))
}

/// A `bbb_meeting` object; null (or absent) strings read as empty.
fn parse_meeting(value: &Value) -> Result<PodMeeting, String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("expected a meeting object, found {}", kind(value)))?;
    let id = required_id(map, "id").map_err(|e| format!("meeting without a usable id: {e}"))?;
    let text = |key| optional_string(map, key).map(Option::unwrap_or_default);
    let fields = || -> Result<PodMeeting, String> {
        Ok(PodMeeting {
            id,
            meeting_id: text("meeting_id")?,
            internal_meeting_id: text("internal_meeting_id")?,
            meeting_name: text("meeting_name")?,
        })
    };
    fields().map_err(|e| format!("meeting {id}: {e}"))
}

/// A broadcaster of either shape: Pod 2.8–2.9.2 `url` = stream URL; Pod 2.9.3+
/// `url` = the API identity link and `broadcaster_url` = stream URL (PR #639).
fn parse_broadcaster(value: &Value) -> Result<Broadcaster, String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("expected a broadcaster object, found {}", kind(value)))?;
    let id = required_id(map, "id").map_err(|e| format!("broadcaster without a usable id: {e}"))?;
    let fields = || -> Result<Broadcaster, String> {
        let stream_url = if map.contains_key("broadcaster_url") {
            optional_string(map, "broadcaster_url")?
        } else {
            optional_string(map, "url")?
        };
        Ok(Broadcaster {
            id,
            slug: required_string(map, "slug")?,
            name: required_string(map, "name")?,
            stream_url,
        })
    };
    fields().map_err(|e| format!("broadcaster {id}: {e}"))
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {:?}", one_line(s, 40)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn expected(key: &str, what: &str, found: &Value) -> String {
    format!("field \"{key}\": expected {what}, found {}", kind(found))
}

fn required_id(map: &Map<String, Value>, key: &str) -> Result<u64, String> {
    match map.get(key) {
        None => Err(format!("field \"{key}\" is missing")),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| expected(key, "a non-negative integer", value)),
    }
}

fn optional_id(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| expected(key, "a non-negative integer or null", value)),
    }
}

fn required_int(map: &Map<String, Value>, key: &str) -> Result<i64, String> {
    match map.get(key) {
        None => Err(format!("field \"{key}\" is missing")),
        Some(value) => value
            .as_i64()
            .ok_or_else(|| expected(key, "an integer", value)),
    }
}

fn optional_string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(value) => Err(expected(key, "a string or null", value)),
    }
}

fn required_string(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match map.get(key) {
        None => Err(format!("field \"{key}\" is missing")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(value) => Err(expected(key, "a string", value)),
    }
}

/// JSON boolean, or 0/1; null or absent → `default`.
fn flag(map: &Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(value) => match value.as_u64() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(expected(key, "a boolean", value)),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {

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
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::body::{Body, Bytes};
    use axum::extract::{FromRequest, Multipart, Request, State};
    use axum::response::Response;

    const TOKEN: &str = "s3cr3t-t0ken-4242";

    /// One request as the fake Pod saw it.
    #[derive(Clone, Debug)]
    struct Seen {
        method: String,
        path: String,
        query: Option<String>,
        headers: axum::http::HeaderMap,
        body: Vec<u8>,
        form: Vec<(String, String)>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }
        /// Like DRF: absolute links from the Host header.
        fn origin(&self) -> String {
            format!("http://{}", self.header("host").unwrap_or("missing-host"))
        }
        fn page(&self) -> usize {
            self.query
                .as_deref()
                .unwrap_or("")
                .split('&')
                .find_map(|pair| pair.strip_prefix("page="))
                .map_or(1, |n| n.parse().unwrap_or(0))
        }
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap()
        }
    }

    struct Reply {
        status: u16,
        content_type: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        delay: Duration,
        chunked: bool,
    }

    impl Reply {
        fn json(status: u16, value: Value) -> Reply {
            Reply::raw(status, "application/json", value.to_string().into_bytes())
        }
        fn html(status: u16, text: &str) -> Reply {
            Reply::raw(status, "text/html; charset=utf-8", text.as_bytes().to_vec())
        }
        fn raw(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
            Reply {
                status,
                content_type,
                headers: Vec::new(),
                body,
                delay: Duration::ZERO,
                chunked: false,
            }
        }
        fn empty(status: u16) -> Reply {
            Reply::raw(status, "application/json", Vec::new())
        }
        fn delayed(mut self, delay: Duration) -> Reply {
            self.delay = delay;
            self
        }
        fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
            self.headers.push((name, value.into()));
            self
        }
    }

    type Handler = Box<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

    struct Fake {
        handler: Handler,
        seen: Mutex<Vec<Seen>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        hits: AtomicUsize,
    }

    impl Fake {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn handle(State(fake): State<Arc<Fake>>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let mut form = Vec::new();
        let is_multipart = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("multipart/form-data"));
        if is_multipart {
            let again = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
            let mut multipart = Multipart::from_request(again, &()).await.unwrap();
            while let Some(field) = multipart.next_field().await.unwrap() {
                let name = field.name().unwrap().to_owned();
                form.push((name, field.text().await.unwrap()));
            }
        }
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            body: bytes.to_vec(),
            form,
        };
        fake.seen.lock().unwrap().push(seen.clone());
        let n = fake.hits.fetch_add(1, Ordering::SeqCst);
        let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        fake.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let reply = (fake.handler)(&seen, n);
        tokio::time::sleep(reply.delay).await;
        fake.in_flight.fetch_sub(1, Ordering::SeqCst);
        let body = if reply.chunked {
            let chunks: Vec<Result<Bytes, std::io::Error>> = reply
                .body
                .chunks(1 << 20)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            Body::from_stream(futures_util::stream::iter(chunks))
        } else {
            Body::from(reply.body)
        };
        let mut response = Response::builder()
            .status(reply.status)
            .header("content-type", reply.content_type);
        for (name, value) in reply.headers {
            response = response.header(name, value);
        }
        response.body(body).unwrap()
    }

    /// A fake Pod on 127.0.0.1; `handler(request, request number)` answers.
    async fn serve(
        handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> (Url, Arc<Fake>) {
        let fake = Arc::new(Fake {
            handler: Box::new(handler),
            seen: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            hits: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Url::parse(&format!("http://{addr}/")).unwrap(), fake)
    }

    fn client(base: &Url) -> PodClient {
        PodClient::new(base, &Secret::new(TOKEN), Duration::from_secs(5)).unwrap()
    }

    fn live_row(id: u64, origin: &str) -> Value {
        json!({
            "id": id,
            "meeting": format!("{origin}/rest/bbb_meeting/{id}/"),
            "start_date": "2024-05-02T08:58:10.123456Z",
            "end_date": null,
            "show_chat": true,
            "download_meeting": false,
            "enable_chat": false,
            "is_restricted": false,
            "broadcaster_id": null,
            "redis_hostname": null,
            "redis_port": null,
            "redis_channel": null,
            "status": id % 3,
            "server": null,
            "user": format!("{origin}/rest/users/3/"),
        })
    }

    /// DRF's PageNumberPagination, 12 per page, links built from `origin`.
    fn drf_page(rows: &[Value], seen: &Seen, origin: &str) -> Reply {
        let page = seen.page();
        let pages = rows.len().div_ceil(12).max(1);
        if page == 0 || page > pages {
            return Reply::json(404, json!({"detail": "Invalid page."}));
        }
        let link = |k: usize| {
            if k == 1 {
                json!(format!("{origin}{}", seen.path))
            } else {
                json!(format!("{origin}{}?page={k}", seen.path))
            }
        };
        let results: Vec<Value> = rows
            .iter()
            .skip((page - 1) * 12)
            .take(12)
            .cloned()
            .collect();
        Reply::json(
            200,
            json!({
                "count": rows.len(),
                "next": if page < pages { link(page + 1) } else { Value::Null },
                "previous": if page > 1 { link(page - 1) } else { Value::Null },
                "results": results,
            }),
        )
    }

    /// Ids 1..=n, not in id order (Pod orders by start_date).
    fn shuffled_ids(n: u64) -> Vec<u64> {
        (0..n).map(|i| (i * 17) % n + 1).collect()
    }

    fn status_detail(error: &PodError) -> &str {
        match error {
            PodError::Status { detail, .. } => detail,
            other => panic!("expected a Status error, got {other:?}"),
        }
    }

    fn garbage_reason(error: &PodError) -> &str {
        match error {
            PodError::Garbage { reason, .. } => reason,
            other => panic!("expected a Garbage error, got {other:?}"),
        }
    }

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

    // ---------------------------------------------------------------------------
    // Lists
    // ---------------------------------------------------------------------------

    #[tokio::test]
    async fn every_row_of_four_pages_comes_back_once_in_id_order() {
        let ids = shuffled_ids(41);
        assert_ne!(ids, (1..=41).collect::<Vec<_>>());
        let (base, fake) = serve(move |seen, _| {
            let origin = seen.origin();
            let rows: Vec<Value> = ids.iter().map(|&id| live_row(id, &origin)).collect();
            drf_page(&rows, seen, &origin)
        })
        .await;
        let lives = client(&base).livestreams().await.unwrap();
        assert_eq!(
            lives.iter().map(|l| l.id).collect::<Vec<_>>(),
            (1..=41).collect::<Vec<_>>()
        );
        let seen = fake.seen();
        assert_eq!(seen.len(), 4, "one request per page");
        assert!(seen.iter().all(|s| s.path == "/rest/bbb_livestream/"));
        // No ?status= (ignored by Pod 3.1+): page 1 is asked without a query.
        assert_eq!(seen[0].query, None);
        let mut pages: Vec<_> = seen[1..].iter().map(Seen::page).collect();
        pages.sort();
        assert_eq!(pages, vec![2, 3, 4]);
        let third = lives.iter().find(|l| l.id == 3).unwrap();
        assert_eq!(third.status, LiveStatus::Waiting);
        assert_eq!(
            third.meeting_url.as_deref(),
            Some(&*format!("{}rest/bbb_meeting/3/", base))
        );
    }

    #[tokio::test]
    async fn pages_are_fetched_concurrently_at_most_eight_at_a_time() {
        let (base, fake) = serve(|seen, _| {
            let origin = seen.origin();
            let rows: Vec<Value> = (1..=150).map(|id| live_row(id, &origin)).collect();
            drf_page(&rows, seen, &origin).delayed(Duration::from_millis(80))
        })
        .await;
        let lives = client(&base).livestreams().await.unwrap();
        assert_eq!(lives.len(), 150);
        assert_eq!(fake.hits.load(Ordering::SeqCst), 13);
        let max = fake.max_in_flight.load(Ordering::SeqCst);
        assert!(max > 1, "pages were fetched one by one");
        assert!(max <= DEFAULT_MAX_CONCURRENCY, "{max} pages in flight");
    }

    #[tokio::test]
    async fn a_page_answering_500_or_404_fails_the_whole_read() {
        for (bad_page, reply) in [
            (
                3,
                Reply::html(500, "<html><title>Server Error (500)</title></html>"),
            ),
            (2, Reply::json(404, json!({"detail": "Invalid page."}))),
            (
                4,
                Reply::raw(200, "application/json", b"{\"count\": 41, \"resu".to_vec()),
            ),
        ] {
            let reply = Mutex::new(Some(reply));
            let (base, _fake) = serve(move |seen, _| {
                let origin = seen.origin();
                if seen.page() == bad_page
                    && let Some(reply) = reply.lock().unwrap().take()
                {
                    return reply;
                }
                let rows: Vec<Value> = (1..=41).map(|id| live_row(id, &origin)).collect();
                drf_page(&rows, seen, &origin)
            })
            .await;
            let error = client(&base).livestreams().await.unwrap_err();
            let text = error.to_string();
            assert!(text.contains(&format!("page={bad_page}")), "{text}");
        }
    }

    #[tokio::test]
    async fn a_count_change_between_pages_triggers_one_sequential_reread() {
        // The first two requests see 30 rows, then a live is added (31 rows).
        let (base, fake) = serve(|seen, n| {
            let origin = seen.origin();
            let total = if n < 2 { 30 } else { 31 };
            let rows: Vec<Value> = (1..=total).map(|id| live_row(id, &origin)).collect();
            drf_page(&rows, seen, &origin)
        })
        .await;
        let lives = client(&base).livestreams().await.unwrap();
        assert_eq!(
            lives.iter().map(|l| l.id).collect::<Vec<_>>(),
            (1..=31).collect::<Vec<_>>()
        );
        let pages: Vec<usize> = fake.seen().iter().map(Seen::page).collect();
        // Concurrent read: 1, 2, 3 (3 in any order with 2); then 1, 2, 3 in order.
        assert_eq!(pages.len(), 6, "{pages:?}");
        assert_eq!(pages[0], 1);
        assert_eq!(&pages[3..], &[1, 2, 3]);
    }

    #[tokio::test]
    async fn a_duplicate_row_across_pages_triggers_the_reread() {
        // Same count on every page, yet page 2 repeats a row of page 1 (rows moved
        // between the two reads): the read is redone, and fails again here.
        let (base, fake) = serve(|seen, n| {
            let origin = seen.origin();
            let rows: Vec<Value> = if n == 0 {
                (1..=13).map(|id| live_row(id, &origin)).collect()
            } else {
                (2..=13)
                    .chain([12])
                    .map(|id| live_row(id, &origin))
                    .collect()
            };
            drf_page(&rows, seen, &origin)
        })
        .await;
        let error = client(&base).livestreams().await.unwrap_err();
        assert!(
            garbage_reason(&error).contains("changed while it was being read"),
            "{error}"
        );
        assert_eq!(fake.hits.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_list_that_keeps_changing_is_an_error_not_a_partial_list() {
        let (base, _fake) = serve(|seen, n| {
            let origin = seen.origin();
            let rows: Vec<Value> = (1..=(20 + n as u64))
                .map(|id| live_row(id, &origin))
                .collect();
            drf_page(&rows, seen, &origin)
        })
        .await;
        let error = client(&base).livestreams().await.unwrap_err();
        assert!(matches!(error, PodError::Garbage { .. }), "{error:?}");
        assert!(error.to_string().contains("count 22 then 23"), "{error}");
    }

    #[tokio::test]
    async fn empty_and_single_page_lists() {
        let (base, fake) = serve(|seen, _| {
            let origin = seen.origin();
            let rows: Vec<Value> = if seen.path.contains("broadcasters") {
                Vec::new()
            } else {
                (1..=12).map(|id| live_row(id, &origin)).collect()
            };
            drf_page(&rows, seen, &origin)
        })
        .await;
        let pod = client(&base);
        assert!(pod.broadcasters().await.unwrap().is_empty());
        assert_eq!(pod.livestreams().await.unwrap().len(), 12);
        assert_eq!(fake.hits.load(Ordering::SeqCst), 2);
    }

    // ---------------------------------------------------------------------------
    // Hyperlinks
    // ---------------------------------------------------------------------------

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
        let lives = pod.livestreams().await.unwrap();
        assert_eq!(lives.len(), 30);
        let meeting_url = lives[6].meeting_url.clone().unwrap();
        assert_eq!(meeting_url, "http://pod.localhost/rest/bbb_meeting/7/");
        let meeting = pod.meeting(&meeting_url).await.unwrap();
        assert_eq!(meeting.internal_meeting_id, "int-7");
        let published = pod
            .publish_recording(&meeting_url, "http://pod.localhost/rest/users/3/")
            .await
            .unwrap();
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

    #[test]
    fn page_numbers_are_set_in_the_next_link() {
        let next = Url::parse("https://p/rest/bbb_livestream/?page=2&status=0").unwrap();
        assert_eq!(
            with_page(&next, 7).as_str(),
            "https://p/rest/bbb_livestream/?page=7&status=0"
        );
        let next = Url::parse("https://p/rest/bbb_livestream/?status=0").unwrap();
        assert_eq!(
            with_page(&next, 3).as_str(),
            "https://p/rest/bbb_livestream/?status=0&page=3"
        );
    }

    // ---------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------

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

    #[tokio::test]
    async fn a_slow_pod_is_a_timeout() {
        let (base, _fake) =
            serve(|_, _| Reply::json(200, json!({})).delayed(Duration::from_secs(5))).await;
        let pod = PodClient::new(&base, &Secret::new(TOKEN), Duration::from_millis(200)).unwrap();
        let started = Instant::now();
        let e = pod.livestream(1).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
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

    // ---------------------------------------------------------------------------
    // Parsing
    // ---------------------------------------------------------------------------

    async fn list_error(page: Value) -> String {
        let (base, _fake) = serve(move |_, _| Reply::json(200, page.clone())).await;
        let e = client(&base).livestreams().await.unwrap_err();
        garbage_reason(&e).to_owned()
    }

    fn page_of(rows: Vec<Value>) -> Value {
        json!({"count": rows.len(), "next": null, "previous": null, "results": rows})
    }

    #[tokio::test]
    async fn bad_rows_are_errors_naming_the_row_and_the_field() {
        let mut wrong_status = live_row(42, "http://p");
        wrong_status["status"] = json!("1");
        let reason = list_error(page_of(vec![live_row(1, "http://p"), wrong_status])).await;
        assert_eq!(
            reason,
            "results[1]: livestream 42: field \"status\": expected an integer, found the string \"1\""
        );

        let mut no_id = live_row(7, "http://p");
        no_id.as_object_mut().unwrap().remove("id");
        let reason = list_error(page_of(vec![no_id])).await;
        assert_eq!(
            reason,
            "results[0]: livestream without a usable id: field \"id\" is missing"
        );

        let mut null_id = live_row(7, "http://p");
        null_id["id"] = Value::Null;
        let reason = list_error(page_of(vec![null_id])).await;
        assert!(
            reason.contains("field \"id\": expected a non-negative integer, found null"),
            "{reason}"
        );

        let mut bad_flag = live_row(8, "http://p");
        bad_flag["enable_chat"] = json!("yes");
        let reason = list_error(page_of(vec![bad_flag])).await;
        assert!(
            reason.contains("livestream 8: field \"enable_chat\": expected a boolean"),
            "{reason}"
        );

        let mut bad_meeting = live_row(9, "http://p");
        bad_meeting["meeting"] = json!(12);
        let reason = list_error(page_of(vec![bad_meeting])).await;
        assert!(
            reason.contains("livestream 9: field \"meeting\": expected a string or null, found 12"),
            "{reason}"
        );

        let mut negative = live_row(10, "http://p");
        negative["broadcaster_id"] = json!(-1);
        let reason = list_error(page_of(vec![negative])).await;
        assert!(
            reason.contains("livestream 10: field \"broadcaster_id\""),
            "{reason}"
        );

        let reason = list_error(page_of(vec![json!("a string row")])).await;
        assert!(
            reason.contains("results[0]: expected a livestream object, found the string"),
            "{reason}"
        );

        let reason = list_error(json!({"count": 1, "next": null})).await;
        assert!(reason.contains("field \"results\" is missing"), "{reason}");
        let reason = list_error(json!([1, 2])).await;
        assert!(
            reason.contains("expected a DRF page object, found an array"),
            "{reason}"
        );
        let reason = list_error(json!({"count": "many", "next": null, "results": []})).await;
        assert!(reason.contains("field \"count\""), "{reason}");
    }

    #[tokio::test]
    async fn garbage_bodies_are_errors_not_panics() {
        let (base, _fake) = serve(|seen, _| match seen.path.as_str() {
            "/rest/bbb_livestream/" => {
                Reply::raw(200, "application/json", b"\xff\xfe{not json".to_vec())
            }
            "/rest/bbb_livestream/1/" => {
                Reply::html(200, "<html><title>Welcome to nginx!</title></html>")
            }
            "/rest/bbb_livestream/2/" => Reply::raw(200, "application/json", Vec::new()),
            _ => Reply::json(200, json!(null)),
        })
        .await;
        let pod = client(&base);
        let e = pod.livestreams().await.unwrap_err();
        assert!(garbage_reason(&e).starts_with("invalid JSON"), "{e}");
        let e = pod.livestream(1).await.unwrap_err();
        assert_eq!(
            garbage_reason(&e),
            "an HTML page instead of JSON (title: \"Welcome to nginx!\")"
        );
        let e = pod.livestream(2).await.unwrap_err();
        assert!(garbage_reason(&e).starts_with("invalid JSON"), "{e}");
        let e = pod.livestream(3).await.unwrap_err();
        assert_eq!(
            garbage_reason(&e),
            "expected a livestream object, found null"
        );
    }

    #[tokio::test]
    async fn nulls_and_integer_booleans_read_as_pod_defaults() {
        let row = json!({
            "id": 5, "status": 1, "server": "1/2", "meeting": null, "user": null,
            "end_date": "2024-05-02T08:15:30Z", "broadcaster_id": 9,
            "is_restricted": 1, "enable_chat": null, "show_chat": null, "download_meeting": 0,
        });
        let (base, _fake) = serve(move |_, _| {
            Reply::json(
                200,
                page_of(vec![row.clone(), json!({"id": 6, "status": 7})]),
            )
        })
        .await;
        let lives = client(&base).livestreams().await.unwrap();
        assert_eq!(
            lives[0],
            Live {
                id: 5,
                meeting_url: None,
                user_url: None,
                status: LiveStatus::Running,
                server: Some("1/2".into()),
                end_date: Some("2024-05-02T08:15:30Z".into()),
                broadcaster_id: Some(9),
                is_restricted: true,
                enable_chat: false,
                show_chat: true,
                download_meeting: false,
            }
        );
        assert_eq!(lives[1].status, LiveStatus::Other(7));
        assert!(lives[1].show_chat && !lives[1].is_restricted);
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

    #[tokio::test]
    async fn meetings_read_null_strings_as_empty() {
        let (base, _fake) = serve(|seen, _| match seen.path.as_str() {
            "/rest/bbb_meeting/1/" => Reply::json(200, json!({"id": 1, "meeting_id": "m", "internal_meeting_id": null, "meeting_name": "Cours d'amphi"})),
            _ => Reply::json(200, json!({"id": 2, "meeting_id": 5})),
        })
        .await;
        let pod = client(&base);
        let m = pod.meeting("/rest/bbb_meeting/1/").await.unwrap();
        assert_eq!(
            m,
            PodMeeting {
                id: 1,
                meeting_id: "m".into(),
                internal_meeting_id: String::new(),
                meeting_name: "Cours d'amphi".into(),
            }
        );
        let e = pod.meeting("/rest/bbb_meeting/2/").await.unwrap_err();
        assert_eq!(
            garbage_reason(&e),
            "meeting 2: field \"meeting_id\": expected a string or null, found 5"
        );
        let e = pod.meeting("").await.unwrap_err();
        assert!(matches!(e, PodError::Garbage { .. }));
    }

    // ---------------------------------------------------------------------------
    // Broadcasters
    // ---------------------------------------------------------------------------

    fn broadcaster_2_8(origin: &str) -> Value {
        json!({"id": 3, "url": "https://hls.example/live/bbb-cours.m3u8", "name": "[BBB] Cours",
               "slug": "bbb-cours", "building": format!("{origin}/rest/buildings/1/"),
               "description": "", "poster": null, "status": true, "is_restricted": false})
    }

    fn broadcaster_3_x(origin: &str) -> Value {
        json!({"id": 4, "url": format!("{origin}/rest/broadcasters/bbb-td/"), "name": "[BBB] TD",
               "slug": "bbb-td", "building": format!("{origin}/rest/buildings/1/"),
               "description": "", "poster": null,
               "broadcaster_url": "https://hls.example/live/bbb-td.m3u8", "status": true,
               "is_restricted": true, "manage_groups": [], "piloting_implementation": null,
               "piloting_conf": ""})
    }

    #[tokio::test]
    async fn both_broadcaster_shapes_give_the_stream_url() {
        let (base, _fake) = serve(|seen, _| {
            let origin = seen.origin();
            match seen.path.as_str() {
                "/rest/broadcasters/bbb-cours/" => Reply::json(200, broadcaster_2_8(&origin)),
                "/rest/broadcasters/bbb-td/" => Reply::json(200, broadcaster_3_x(&origin)),
                "/rest/broadcasters/" => {
                    let mut rows: Vec<Value> = (10..=30)
                        .map(|id| {
                            let mut b = broadcaster_3_x(&origin);
                            b["id"] = json!(id);
                            b["slug"] = json!(format!("bbb-{id}"));
                            b
                        })
                        .collect();
                    rows.push(broadcaster_2_8(&origin));
                    drf_page(&rows, seen, &origin)
                }
                _ => Reply::json(404, json!({"detail": "Not found."})),
            }
        })
        .await;
        let pod = client(&base);
        let old = pod.broadcaster("bbb-cours").await.unwrap().unwrap();
        assert_eq!(
            old,
            Broadcaster {
                id: 3,
                slug: "bbb-cours".into(),
                name: "[BBB] Cours".into(),
                stream_url: Some("https://hls.example/live/bbb-cours.m3u8".into()),
            }
        );
        let new = pod.broadcaster("bbb-td").await.unwrap().unwrap();
        assert_eq!(
            new.stream_url.as_deref(),
            Some("https://hls.example/live/bbb-td.m3u8")
        );
        assert_eq!((new.id, new.slug.as_str()), (4, "bbb-td"));
        assert_eq!(pod.broadcaster("bbb-gone").await.unwrap(), None);
        let all = pod.broadcasters().await.unwrap();
        assert_eq!(all.len(), 22);
        assert_eq!(all[0].id, 3);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[tokio::test]
    async fn create_broadcaster_posts_both_url_fields_and_reads_the_outcome() {
        let (base, fake) = serve(|seen, n| {
            let origin = seen.origin();
            match n {
                0 => Reply::json(201, broadcaster_3_x(&origin)),
                1 => Reply::json(201, broadcaster_2_8(&origin)),
                2 => Reply::json(
                    400,
                    json!({"url": ["Un objet Diffuseur avec ce champ URL existe déjà."],
                           "name": ["Un objet Diffuseur avec ce champ nom existe déjà."]}),
                ),
                3 => Reply::json(
                    400,
                    json!({"name": ["Broadcaster with this name already exists."]}),
                ),
                4 => Reply::json(
                    400,
                    json!({"url": ["Broadcaster with this URL already exists."]}),
                ),
                5 => Reply::json(
                    400,
                    json!({"building": ["Invalid hyperlink - Object does not exist."]}),
                ),
                _ => Reply::html(
                    500,
                    "<html><head><title>IntegrityError</title></head></html>",
                ),
            }
        })
        .await;
        let pod = client(&base);
        let new = NewBroadcaster {
            name: "[BBB] TD".into(),
            stream_url: "https://hls.example/live/bbb-td.m3u8".into(),
            building_id: 7,
            is_restricted: true,
        };
        match pod.create_broadcaster(&new).await.unwrap() {
            CreateBroadcaster::Created(b) => {
                assert_eq!(
                    (b.id, b.slug.as_str(), b.name.as_str()),
                    (4, "bbb-td", "[BBB] TD")
                );
                assert_eq!(
                    b.stream_url.as_deref(),
                    Some("https://hls.example/live/bbb-td.m3u8")
                );
            }
            other => panic!("{other:?}"),
        }
        match pod.create_broadcaster(&new).await.unwrap() {
            CreateBroadcaster::Created(b) => assert_eq!((b.id, b.slug.as_str()), (3, "bbb-cours")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            pod.create_broadcaster(&new).await.unwrap(),
            CreateBroadcaster::NameTaken
        ));
        assert!(matches!(
            pod.create_broadcaster(&new).await.unwrap(),
            CreateBroadcaster::NameTaken
        ));
        match pod.create_broadcaster(&new).await.unwrap() {
            CreateBroadcaster::UrlTaken { detail } => {
                assert_eq!(detail, "url: Broadcaster with this URL already exists.")
            }
            other => panic!("{other:?}"),
        }
        let e = pod.create_broadcaster(&new).await.unwrap_err();
        assert_eq!(e.status(), Some(400));
        assert_eq!(
            status_detail(&e),
            "building: Invalid hyperlink - Object does not exist."
        );
        let e = pod.create_broadcaster(&new).await.unwrap_err();
        assert_eq!(e.status(), Some(500));
        assert!(
            status_detail(&e).contains("see Pod's logs; title: \"IntegrityError\""),
            "{e}"
        );

        let seen = fake.seen();
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, "/rest/broadcasters/");
        let mut form = seen[0].form.clone();
        form.sort();
        let expected: Vec<(String, String)> = [
            (
                "broadcaster_url",
                "https://hls.example/live/bbb-td.m3u8".to_owned(),
            ),
            ("building", format!("{base}rest/buildings/7/")),
            ("is_restricted", "true".to_owned()),
            ("name", "[BBB] TD".to_owned()),
            ("status", "true".to_owned()),
            ("url", "https://hls.example/live/bbb-td.m3u8".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(form, expected);
    }

    #[tokio::test]
    async fn delete_broadcaster_accepts_204_and_404_and_encodes_the_slug() {
        let (base, fake) = serve(|seen, _| match seen.path.as_str() {
            "/rest/broadcasters/bbb-td/" => Reply::empty(204),
            "/rest/broadcasters/bbb-gone/" => Reply::json(404, json!({"detail": "Not found."})),
            "/rest/broadcasters/locked/" => Reply::json(403, json!({"detail": "Forbidden."})),
            _ => Reply::empty(404),
        })
        .await;
        let pod = client(&base);
        pod.delete_broadcaster("bbb-td").await.unwrap();
        pod.delete_broadcaster("bbb-gone").await.unwrap();
        pod.delete_broadcaster("a/b?c#d%e f").await.unwrap();
        let e = pod.delete_broadcaster("locked").await.unwrap_err();
        assert_eq!(e.status(), Some(403));
        for slug in ["", ".", ".."] {
            assert!(matches!(
                pod.delete_broadcaster(slug).await,
                Err(PodError::Garbage { .. })
            ));
        }
        let seen = fake.seen();
        assert_eq!(seen.len(), 4);
        assert!(seen.iter().all(|s| s.method == "DELETE"));
        assert_eq!(seen[2].path, "/rest/broadcasters/a%2Fb%3Fc%23d%25e%20f/");
        assert_eq!(seen[2].query, None);
    }

    // ---------------------------------------------------------------------------
    // Writes
    // ---------------------------------------------------------------------------

    #[tokio::test]
    async fn patch_bodies_are_exactly_as_specified() {
        let (base, fake) = serve(|seen, _| {
            let origin = seen.origin();
            if seen.path.starts_with("/rest/broadcasters/") {
                return Reply::json(200, broadcaster_3_x(&origin));
            }
            if seen.path.starts_with("/rest/bbb_meeting/") {
                return Reply::json(200, json!({"id": 12, "meeting_id": "abc", "internal_meeting_id": "8f-1714", "meeting_name": "x"}));
            }
            let mut row = live_row(42, &origin);
            if let Value::Object(patch) = seen.json() {
                for (k, v) in patch {
                    row[k] = v;
                }
            }
            Reply::json(200, row)
        })
        .await;
        let pod = client(&base);
        let started = pod
            .mark_live_started(
                42,
                &StartFields {
                    server: "1/2".into(),
                    broadcaster_id: 9,
                    redis_hostname: "bbb-live.example".into(),
                    redis_port: 6380,
                    redis_channel: "chat2".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (
                started.status,
                started.server.as_deref(),
                started.broadcaster_id
            ),
            (LiveStatus::Running, Some("1/2"), Some(9))
        );
        let end = DateTime::parse_from_rfc3339("2026-11-24T08:15:30Z").unwrap();
        let stopped = pod.mark_live_stopped(42, Some(end)).await.unwrap();
        assert_eq!(stopped.status, LiveStatus::Stopped);
        pod.mark_live_stopped(42, None).await.unwrap();
        let paris = DateTime::parse_from_rfc3339("2026-11-24T09:15:30.75+01:00").unwrap();
        pod.mark_live_stopped(42, Some(paris)).await.unwrap();
        let waiting = pod.mark_live_waiting(42).await.unwrap();
        assert_eq!(
            (waiting.status, waiting.server),
            (LiveStatus::Waiting, None)
        );
        let b = pod
            .repoint_broadcaster("bbb-td", "https://hls/new.m3u8", true)
            .await
            .unwrap();
        assert_eq!(b.slug, "bbb-td");
        let m = pod
            .publish_recording(
                "http://pod.localhost/rest/bbb_meeting/12/",
                "http://pod.localhost/rest/users/3/",
            )
            .await
            .unwrap();
        assert_eq!(m.internal_meeting_id, "8f-1714");

        let seen = fake.seen();
        let bodies: Vec<(String, String, Value)> = seen
            .iter()
            .map(|s| (s.method.clone(), s.path.clone(), s.json()))
            .collect();
        let live = "/rest/bbb_livestream/42/".to_owned();
        let patch = "PATCH".to_owned();
        assert_eq!(
            bodies,
            vec![
                (
                    patch.clone(),
                    live.clone(),
                    json!({"server": "1/2", "status": 1, "broadcaster_id": 9,
                    "redis_hostname": "bbb-live.example", "redis_port": 6380, "redis_channel": "chat2"})
                ),
                (
                    patch.clone(),
                    live.clone(),
                    json!({"status": 2, "end_date": "2026-11-24T08:15:30+00:00"})
                ),
                (patch.clone(), live.clone(), json!({"status": 2})),
                (
                    patch.clone(),
                    live.clone(),
                    json!({"status": 2, "end_date": "2026-11-24T09:15:30+01:00"})
                ),
                (
                    patch.clone(),
                    live.clone(),
                    json!({"status": 0, "server": null})
                ),
                (
                    patch.clone(),
                    "/rest/broadcasters/bbb-td/".to_owned(),
                    json!({"url": "https://hls/new.m3u8",
                    "broadcaster_url": "https://hls/new.m3u8", "is_restricted": true})
                ),
                (
                    patch.clone(),
                    "/rest/bbb_meeting/12/".to_owned(),
                    json!({"encoded_by": "http://pod.localhost/rest/users/3/", "encoding_step": 3})
                ),
            ]
        );
        assert!(
            seen.iter()
                .all(|s| s.header("content-type") == Some("application/json"))
        );
    }

    #[tokio::test]
    async fn livestream_by_id_and_check_access() {
        let (base, fake) = serve(|seen, _| {
            let origin = seen.origin();
            match seen.path.as_str() {
                "/rest/bbb_livestream/7/" => Reply::json(200, live_row(7, &origin)),
                "/rest/bbb_livestream/" => drf_page(&[live_row(1, &origin)], seen, &origin),
                _ => Reply::json(404, json!({"detail": "Not found."})),
            }
        })
        .await;
        let pod = client(&base);
        assert_eq!(pod.livestream(7).await.unwrap().map(|l| l.id), Some(7));
        assert_eq!(pod.livestream(8).await.unwrap(), None);
        pod.check_access().await.unwrap();
        assert_eq!(fake.seen()[2].query.as_deref(), Some("page=1"));
    }

    // ---------------------------------------------------------------------------
    // No panic on any input
    // ---------------------------------------------------------------------------

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            prop_oneof![Just("id".to_owned()), Just("status".to_owned()), ".*"]
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        prop_oneof![
                            Just("id".to_owned()),
                            Just("status".to_owned()),
                            Just("count".to_owned()),
                            Just("next".to_owned()),
                            Just("results".to_owned()),
                            Just("detail".to_owned()),
                            Just("slug".to_owned()),
                            Just("name".to_owned()),
                            Just("url".to_owned()),
                            Just("show_chat".to_owned()),
                            "[a-z_]{1,8}"
                        ],
                        inner,
                    ),
                    0..8
                )
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
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
}

/// Issue 3 point 4, hostile Pod JSON: every field of every row Pod sends replaced by
/// every kind of wrong value (null, wrong type, negative, huge or fractional numbers,
/// strings that look like numbers, arrays, objects) or removed. The rule checked: a
/// value the field accepts parses, anything else is an error that names the field and
/// the row; no input panics. Well-typed rows with hostile strings parse back exactly.
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod hostile_props {
    use super::*;

    use proptest::prelude::*;

    /// What a field of a Pod row accepts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kind {
        /// Required non-negative integer.
        Id,
        /// Non-negative integer or null/absent.
        OptId,
        /// Required integer.
        Int,
        /// String or null/absent.
        OptStr,
        /// Required string.
        Str,
        /// Boolean, 0 or 1, or null/absent (the model's default).
        Flag,
    }

    const LIVE_FIELDS: [(&str, Kind); 11] = [
        ("id", Kind::Id),
        ("meeting", Kind::OptStr),
        ("user", Kind::OptStr),
        ("status", Kind::Int),
        ("server", Kind::OptStr),
        ("end_date", Kind::OptStr),
        ("broadcaster_id", Kind::OptId),
        ("is_restricted", Kind::Flag),
        ("enable_chat", Kind::Flag),
        ("show_chat", Kind::Flag),
        ("download_meeting", Kind::Flag),
    ];

    const MEETING_FIELDS: [(&str, Kind); 4] = [
        ("id", Kind::Id),
        ("meeting_id", Kind::OptStr),
        ("internal_meeting_id", Kind::OptStr),
        ("meeting_name", Kind::OptStr),
    ];

    /// Pod ≥ 2.9.3 shape (`broadcaster_url` present: `url` is only the identity link).
    const BROADCASTER_FIELDS: [(&str, Kind); 4] = [
        ("id", Kind::Id),
        ("slug", Kind::Str),
        ("name", Kind::Str),
        ("broadcaster_url", Kind::OptStr),
    ];

    /// Pod ≤ 2.9.2 shape (`url` is the stream URL).
    const OLD_BROADCASTER_FIELDS: [(&str, Kind); 4] = [
        ("id", Kind::Id),
        ("slug", Kind::Str),
        ("name", Kind::Str),
        ("url", Kind::OptStr),
    ];

    fn accepts(kind: Kind, value: Option<&Value>) -> bool {
        match (kind, value) {
            (Kind::Id | Kind::Int | Kind::Str, None) => false,
            (_, None) => true,
            (Kind::Id, Some(v)) => v.as_u64().is_some(),
            (Kind::OptId, Some(v)) => v.is_null() || v.as_u64().is_some(),
            (Kind::Int, Some(v)) => v.as_i64().is_some(),
            (Kind::OptStr, Some(v)) => v.is_null() || v.is_string(),
            (Kind::Str, Some(v)) => v.is_string(),
            (Kind::Flag, Some(v)) => {
                v.is_null() || v.is_boolean() || matches!(v.as_u64(), Some(0 | 1))
            }
        }
    }

    /// Strings Pod could hold: any Unicode, control characters, very long.
    fn hostile_string() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\\x00-\\x1f\\u{7f}\\u{85}\\u{2028}/\\\\.\"']{0,20}",
            "\\PC{200,400}",
            Just(String::new()),
        ]
    }

    /// A value of any JSON type, with the awkward ones over-represented.
    fn wrong_value() -> impl Strategy<Value = Value> {
        let huge: Value = serde_json::from_str("18446744073709551616").unwrap();
        let tiny: Value = serde_json::from_str("-9223372036854775809").unwrap();
        let exp: Value = serde_json::from_str("1e308").unwrap();
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            prop::sample::select(vec![
                json!(0),
                json!(1),
                json!(2),
                json!(-1),
                json!(u64::MAX),
                json!(i64::MIN),
                json!(1.5),
                json!(-0.0),
                json!(1.0),
                huge,
                tiny,
                exp,
                json!(""),
                json!("1"),
                json!("true"),
                json!("null"),
                json!([]),
                json!([1]),
                json!({}),
                json!({"id": 1}),
            ]),
            hostile_string().prop_map(Value::String),
        ]
    }

    fn live_row(
        id: u64,
        texts: &[String; 4],
        status: i64,
        broadcaster: Option<u64>,
        flags: [bool; 4],
    ) -> Value {
        json!({
            "id": id,
            "meeting": texts[0],
            "user": texts[1],
            "status": status,
            "server": texts[2],
            "end_date": texts[3],
            "broadcaster_id": broadcaster,
            "is_restricted": flags[0],
            "enable_chat": flags[1],
            "show_chat": flags[2],
            "download_meeting": flags[3],
            "start_date": "2024-05-13T10:00:00+02:00",
            "redis_hostname": null,
        })
    }

    fn arb_live_row() -> impl Strategy<Value = Value> {
        (
            any::<u64>(),
            [
                hostile_string(),
                hostile_string(),
                hostile_string(),
                hostile_string(),
            ],
            any::<i64>(),
            any::<Option<u64>>(),
            any::<[bool; 4]>(),
        )
            .prop_map(|(id, texts, status, b, flags)| live_row(id, &texts, status, b, flags))
    }

    fn arb_meeting_row() -> impl Strategy<Value = Value> {
        (
            any::<u64>(),
            hostile_string(),
            hostile_string(),
            hostile_string(),
        )
            .prop_map(|(id, m, i, n)| {
                json!({"id": id, "meeting_id": m, "internal_meeting_id": i, "meeting_name": n,
                       "encoding_step": 0, "recorded": false})
            })
    }

    fn arb_broadcaster_row() -> impl Strategy<Value = (Value, bool)> {
        (
            any::<u64>(),
            hostile_string(),
            hostile_string(),
            hostile_string(),
            any::<bool>(),
        )
            .prop_map(|(id, slug, name, url, new_shape)| {
                let row = if new_shape {
                    json!({"id": id, "slug": slug, "name": name, "broadcaster_url": url,
                           "url": format!("http://pod.localhost/rest/broadcasters/{id}/"),
                           "building": "http://pod.localhost/rest/buildings/1/"})
                } else {
                    json!({"id": id, "slug": slug, "name": name, "url": url,
                           "building": "http://pod.localhost/rest/buildings/1/"})
                };
                (row, new_shape)
            })
    }

    /// `row` with `field` set to `value` (`None`: removed).
    fn with(row: &Value, field: &str, value: Option<&Value>) -> Value {
        let mut row = row.clone();
        let map = row.as_object_mut().unwrap();
        match value {
            Some(v) => map.insert(field.to_owned(), v.clone()),
            None => map.remove(field),
        };
        row
    }

    /// Checks one parser on `row` with `field` replaced: accepted iff the kind accepts
    /// the value; refused with the field named, and the row's id unless it is the id.
    fn check<T: fmt::Debug>(
        parse: fn(&Value) -> Result<T, String>,
        what: &str,
        row: &Value,
        (field, kind): (&str, Kind),
        value: Option<&Value>,
    ) -> Result<(), TestCaseError> {
        let bad = with(row, field, value);
        let result = parse(&bad);
        let ok = accepts(kind, value);
        match &result {
            Ok(_) => prop_assert!(ok, "{what} field {field} = {value:?} was accepted"),
            Err(e) => {
                prop_assert!(!ok, "{what} field {field} = {value:?} refused: {e}");
                prop_assert!(
                    e.contains(&format!("\"{field}\"")),
                    "{e:?} does not name {field}"
                );
                if field != "id" {
                    let id = row["id"].as_u64().unwrap();
                    prop_assert!(
                        e.contains(&format!("{what} {id}")),
                        "{e:?} does not name the {what}"
                    );
                }
                prop_assert!(e.len() < 400, "error of {} bytes: {e:?}", e.len());
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_livestream_field_of_any_wrong_kind_is_refused_by_name(
            row in arb_live_row(),
            field in 0..LIVE_FIELDS.len(),
            value in proptest::option::weighted(0.9, wrong_value()),
        ) {
            check(parse_live, "livestream", &row, LIVE_FIELDS[field], value.as_ref())?;
        }

        #[test]
        fn a_meeting_field_of_any_wrong_kind_is_refused_by_name(
            row in arb_meeting_row(),
            field in 0..MEETING_FIELDS.len(),
            value in proptest::option::weighted(0.9, wrong_value()),
        ) {
            check(parse_meeting, "meeting", &row, MEETING_FIELDS[field], value.as_ref())?;
        }

        #[test]
        fn a_broadcaster_field_of_any_wrong_kind_is_refused_by_name(
            (row, new_shape) in arb_broadcaster_row(),
            field in 0usize..4,
            value in proptest::option::weighted(0.9, wrong_value()),
        ) {
            let fields = if new_shape { BROADCASTER_FIELDS } else { OLD_BROADCASTER_FIELDS };
            check(parse_broadcaster, "broadcaster", &row, fields[field], value.as_ref())?;
        }

        /// One bad row spoils the whole page (a shorter list could make a running live
        /// look closed), and the error says which row and which field.
        #[test]
        fn a_page_with_one_bad_row_is_refused_naming_the_row_and_field(
            rows in prop::collection::vec(arb_live_row(), 1..6),
            bad in any::<prop::sample::Index>(),
            field in 0..LIVE_FIELDS.len(),
            value in wrong_value(),
        ) {
            let (name, kind) = LIVE_FIELDS[field];
            prop_assume!(!accepts(kind, Some(&value)));
            let i = bad.index(rows.len());
            let mut results = rows.clone();
            results[i] = with(&rows[i], name, Some(&value));
            let page = json!({"count": rows.len(), "next": null, "previous": null, "results": results});
            match parse_page::<Live>(&page) {
                Ok(_) => prop_assert!(false, "a page with a bad {} was read", name),
                Err(e) => {
                    prop_assert!(e.contains(&format!("results[{i}]")), "{:?}", e);
                    prop_assert!(e.contains(&format!("\"{name}\"")), "{:?}", e);
                }
            }
        }

        /// The page envelope: `count`, `next` and `results` of any wrong kind.
        #[test]
        fn a_page_envelope_of_any_wrong_kind_is_refused_by_name(
            rows in prop::collection::vec(arb_live_row(), 0..3),
            field in prop::sample::select(vec![("count", Kind::Id), ("next", Kind::OptStr), ("results", Kind::Str)]),
            value in proptest::option::weighted(0.9, wrong_value()),
        ) {
            let page = json!({"count": rows.len(), "next": null, "previous": null, "results": rows});
            let bad = with(&page, field.0, value.as_ref());
            let result = parse_page::<Live>(&bad);
            // `results` must be an array of rows: of the generated values only `[]` is.
            let empty_list = value.as_ref().and_then(Value::as_array).map(Vec::is_empty);
            let ok = match field.0 {
                "results" => empty_list == Some(true),
                _ => accepts(field.1, value.as_ref()),
            };
            // `[1]` names the row (`results[0]`), anything else the field.
            let named = match (field.0, empty_list) {
                ("results", Some(false)) => "results[0]".to_owned(),
                (name, _) => format!("\"{name}\""),
            };
            match result {
                Ok(_) => prop_assert!(ok, "{} = {:?} accepted", field.0, value),
                Err(e) => {
                    prop_assert!(!ok, "{} = {:?} refused: {}", field.0, value, e);
                    prop_assert!(e.contains(&named), "{:?} does not name {}", e, named);
                }
            }
        }

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
            let live = parse_live(&live_row(id, &texts, status, broadcaster, flags)).unwrap();
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
                meeting_id: texts[0].clone(),
                internal_meeting_id: texts[1].clone(),
                meeting_name: texts[2].clone(),
            });
        }
    }
}
