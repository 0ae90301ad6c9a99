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

/// Hostile Pod JSON: what each field of each row Pod sends accepts, and values of every
/// wrong kind (null, wrong type, negative, huge or fractional numbers, strings that look
/// like numbers, arrays, objects). The rule the parsers' property tests check with it: a
/// value the field accepts parses, anything else is an error naming the field and the row,
/// and no input panics.
pub(in crate::pod) mod hostile {
    use std::fmt;

    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// A one-page DRF list holding `rows`.
    pub(in crate::pod) fn page_of(rows: Vec<Value>) -> Value {
        json!({"count": rows.len(), "next": null, "previous": null, "results": rows})
    }

    pub(in crate::pod) fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
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

    /// What a field of a Pod row accepts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(in crate::pod) enum Kind {
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

    pub(in crate::pod) const LIVE_FIELDS: [(&str, Kind); 11] = [
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

    pub(in crate::pod) const MEETING_FIELDS: [(&str, Kind); 4] = [
        ("id", Kind::Id),
        ("meeting_id", Kind::OptStr),
        ("internal_meeting_id", Kind::OptStr),
        ("meeting_name", Kind::OptStr),
    ];

    /// Pod ≥ 2.9.3 shape (`broadcaster_url` present: `url` is only the identity link).
    pub(in crate::pod) const BROADCASTER_FIELDS: [(&str, Kind); 4] = [
        ("id", Kind::Id),
        ("slug", Kind::Str),
        ("name", Kind::Str),
        ("broadcaster_url", Kind::OptStr),
    ];

    /// Pod ≤ 2.9.2 shape (`url` is the stream URL).
    pub(in crate::pod) const OLD_BROADCASTER_FIELDS: [(&str, Kind); 4] = [
        ("id", Kind::Id),
        ("slug", Kind::Str),
        ("name", Kind::Str),
        ("url", Kind::OptStr),
    ];

    pub(in crate::pod) fn accepts(kind: Kind, value: Option<&Value>) -> bool {
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
    pub(in crate::pod) fn hostile_string() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\\x00-\\x1f\\u{7f}\\u{85}\\u{2028}/\\\\.\"']{0,20}",
            "\\PC{200,400}",
            Just(String::new()),
        ]
    }

    /// A value of any JSON type, with the awkward ones over-represented.
    pub(in crate::pod) fn wrong_value() -> impl Strategy<Value = Value> {
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

    pub(in crate::pod) fn typed_live_row(
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

    pub(in crate::pod) fn arb_live_row() -> impl Strategy<Value = Value> {
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
            .prop_map(|(id, texts, status, b, flags)| typed_live_row(id, &texts, status, b, flags))
    }

    pub(in crate::pod) fn arb_meeting_row() -> impl Strategy<Value = Value> {
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

    pub(in crate::pod) fn arb_broadcaster_row() -> impl Strategy<Value = (Value, bool)> {
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
    pub(in crate::pod) fn with(row: &Value, field: &str, value: Option<&Value>) -> Value {
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
    pub(in crate::pod) fn check<T: fmt::Debug>(
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
}
