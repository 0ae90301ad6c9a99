//! What the tests of the Pod room share: a fake Pod (an axum server recording every
//! request it sees and answering what the test says), DRF-shaped rows and pages, and
//! readers of the error a call gave.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::response::Response;
use reqwest::Url;
use serde_json::{Value, json};

use super::{PodClient, PodError};
use crate::config::Secret;

pub(super) const TOKEN: &str = "s3cr3t-t0ken-4242";

/// One request as the fake Pod saw it.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) headers: axum::http::HeaderMap,
    pub(super) body: Vec<u8>,
    pub(super) form: Vec<(String, String)>,
}

impl Seen {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Like DRF: absolute links from the Host header.
    pub(super) fn origin(&self) -> String {
        format!("http://{}", self.header("host").unwrap_or("missing-host"))
    }
    pub(super) fn page(&self) -> usize {
        self.query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .find_map(|pair| pair.strip_prefix("page="))
            .map_or(1, |n| n.parse().unwrap_or(0))
    }
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) content_type: &'static str,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Vec<u8>,
    pub(super) delay: Duration,
    pub(super) chunked: bool,
}

impl Reply {
    pub(super) fn json(status: u16, value: Value) -> Reply {
        Reply::raw(status, "application/json", value.to_string().into_bytes())
    }
    pub(super) fn html(status: u16, text: &str) -> Reply {
        Reply::raw(status, "text/html; charset=utf-8", text.as_bytes().to_vec())
    }
    pub(super) fn raw(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
            chunked: false,
        }
    }
    pub(super) fn empty(status: u16) -> Reply {
        Reply::raw(status, "application/json", Vec::new())
    }
    pub(super) fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
    pub(super) fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

pub(super) type Handler = Box<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

pub(super) struct Fake {
    pub(super) handler: Handler,
    pub(super) seen: Mutex<Vec<Seen>>,
    pub(super) in_flight: AtomicUsize,
    pub(super) max_in_flight: AtomicUsize,
    pub(super) hits: AtomicUsize,
}

impl Fake {
    pub(super) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

pub(super) async fn handle(State(fake): State<Arc<Fake>>, request: Request) -> Response {
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
pub(super) async fn serve(
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

pub(super) fn client(base: &Url) -> PodClient {
    PodClient::new(base, &Secret::new(TOKEN), Duration::from_secs(5)).unwrap()
}

pub(super) fn live_row(id: u64, origin: &str) -> Value {
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

/// DRF's PageNumberPagination, 12 per page, links built from `origin` (the query's
/// other parameters kept).
pub(super) fn drf_page(rows: &[Value], seen: &Seen, origin: &str) -> Reply {
    let page = seen.page();
    let pages = rows.len().div_ceil(12).max(1);
    if page == 0 || page > pages {
        return Reply::json(404, json!({"detail": "Invalid page."}));
    }
    // As DRF's replace_query_param: the other parameters (a `status=` filter) kept,
    // sorted; no `page` for page 1.
    let others: Vec<&str> = seen
        .query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page="))
        .collect();
    let link = |k: usize| {
        let mut query: Vec<String> = others.iter().map(|p| (*p).to_owned()).collect();
        if k > 1 {
            query.push(format!("page={k}"));
        }
        query.sort();
        if query.is_empty() {
            json!(format!("{origin}{}", seen.path))
        } else {
            json!(format!("{origin}{}?{}", seen.path, query.join("&")))
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
pub(super) fn shuffled_ids(n: u64) -> Vec<u64> {
    (0..n).map(|i| (i * 17) % n + 1).collect()
}

pub(super) fn status_detail(error: &PodError) -> &str {
    match error {
        PodError::Status { detail, .. } => detail,
        other => panic!("expected a Status error, got {other:?}"),
    }
}

pub(super) fn garbage_reason(error: &PodError) -> &str {
    match error {
        PodError::Garbage { reason, .. } => reason,
        other => panic!("expected a Garbage error, got {other:?}"),
    }
}

pub(super) fn broadcaster_2_8(origin: &str) -> Value {
    json!({"id": 3, "url": "https://hls.example/live/bbb-cours.m3u8", "name": "[BBB] Cours",
           "slug": "bbb-cours", "building": format!("{origin}/rest/buildings/1/"),
           "description": "", "poster": null, "status": true, "is_restricted": false})
}

pub(super) fn broadcaster_3_x(origin: &str) -> Value {
    json!({"id": 4, "url": format!("{origin}/rest/broadcasters/bbb-td/"), "name": "[BBB] TD",
           "slug": "bbb-td", "building": format!("{origin}/rest/buildings/1/"),
           "description": "", "poster": null,
           "broadcaster_url": "https://hls.example/live/bbb-td.m3u8", "status": true,
           "is_restricted": true, "manage_groups": [], "piloting_implementation": null,
           "piloting_conf": ""})
}
