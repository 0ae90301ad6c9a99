//! The field readers every row parser shares: each says which field of which row was
//! wrong and what it held, and reads Pod's nulls and integer booleans as Pod's own
//! defaults. Not here: the rows themselves (`livestreams.rs`, `meetings.rs`,
//! `broadcasters.rs`).

use serde_json::{Map, Value};

use super::errors::one_line;

pub(super) fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {:?}", one_line(s, 40)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A Pod object (`what`: livestream, meeting, broadcaster) with a usable `id`; `fields`
/// reads the rest. Every error names the object, and its id once known.
pub(super) fn object_with_id<T>(
    value: &Value,
    what: &str,
    fields: impl FnOnce(&Map<String, Value>, u64) -> Result<T, String>,
) -> Result<T, String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("expected a {what} object, found {}", kind(value)))?;
    let id = required_id(map, "id").map_err(|e| format!("{what} without a usable id: {e}"))?;
    fields(map, id).map_err(|e| format!("{what} {id}: {e}"))
}

pub(super) fn expected(key: &str, what: &str, found: &Value) -> String {
    format!("field \"{key}\": expected {what}, found {}", kind(found))
}

pub(super) fn required_id(map: &Map<String, Value>, key: &str) -> Result<u64, String> {
    match map.get(key) {
        None => Err(format!("field \"{key}\" is missing")),
        Some(value) => value
            .as_u64()
            .ok_or_else(|| expected(key, "a non-negative integer", value)),
    }
}

pub(super) fn optional_id(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| expected(key, "a non-negative integer or null", value)),
    }
}

pub(super) fn required_int(map: &Map<String, Value>, key: &str) -> Result<i64, String> {
    match map.get(key) {
        None => Err(format!("field \"{key}\" is missing")),
        Some(value) => value
            .as_i64()
            .ok_or_else(|| expected(key, "an integer", value)),
    }
}

pub(super) fn optional_string(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(value) => Err(expected(key, "a string or null", value)),
    }
}

pub(super) fn required_string(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match map.get(key) {
        None => Err(format!("field \"{key}\" is missing")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(value) => Err(expected(key, "a string", value)),
    }
}

/// JSON boolean, or 0/1; null or absent → `default`.
pub(super) fn flag(map: &Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
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
    use super::*;
    use crate::model::{Broadcaster, Live, LiveId, LiveStatus, SkippedRow};
    use crate::pod::Answer;
    use crate::pod::broadcasters::parse_broadcaster;
    use crate::pod::errors::{html_title, redirect_error, status_error};
    use crate::pod::livestreams::parse_live;
    use crate::pod::meetings::parse_meeting;
    use crate::pod::pages::parse_page;
    use crate::pod::test_support::*;
    use reqwest::{Method, StatusCode, Url};
    use serde_json::json;

    async fn list_error(page: Value) -> String {
        let (base, _fake) = serve(move |_, _| Reply::json(200, page.clone())).await;
        let e = client(&base).livestreams().await.unwrap_err();
        garbage_reason(&e).to_owned()
    }

    fn page_of(rows: Vec<Value>) -> Value {
        json!({"count": rows.len(), "next": null, "previous": null, "results": rows})
    }

    /// The rows skipped from a one-page list, and the ids of those kept.
    async fn skipped_rows(page: Value) -> (Vec<SkippedRow>, Vec<LiveId>) {
        let (base, _fake) = serve(move |_, _| Reply::json(200, page.clone())).await;
        let read = client(&base).livestreams().await.unwrap();
        (read.skipped, read.lives.iter().map(|l| l.id).collect())
    }

    /// Issue 10 (one bad row costs one row): a row that does not parse is skipped and
    /// reported with its id and field, the others are kept. (Before, it failed the read.)
    #[tokio::test]
    async fn bad_rows_are_skipped_naming_the_row_and_the_field() {
        let mut wrong_status = live_row(42, "http://p");
        wrong_status["status"] = json!("1");
        let (skipped, kept) =
            skipped_rows(page_of(vec![live_row(1, "http://p"), wrong_status])).await;
        assert_eq!(kept, vec![1]);
        assert_eq!(
            skipped,
            vec![SkippedRow {
                id: Some(42),
                reason:
                    "livestream 42: field \"status\": expected an integer, found the string \"1\""
                        .into()
            }]
        );

        let mut no_id = live_row(7, "http://p");
        no_id.as_object_mut().unwrap().remove("id");
        let mut null_id = live_row(7, "http://p");
        null_id["id"] = Value::Null;
        let (skipped, kept) =
            skipped_rows(page_of(vec![no_id, null_id, json!("a string row")])).await;
        assert!(kept.is_empty());
        assert_eq!(skipped.len(), 3, "three distinct id-less rows: {skipped:?}");
        assert!(skipped.iter().all(|s| s.id.is_none()));
        for reason in [
            "livestream without a usable id: field \"id\" is missing",
            "field \"id\": expected a non-negative integer, found null",
            "expected a livestream object, found the string",
        ] {
            assert!(
                skipped.iter().any(|s| s.reason.contains(reason)),
                "{reason}: {skipped:?}"
            );
        }

        let mut rows = Vec::new();
        for (id, field, value) in [
            (8, "enable_chat", json!("yes")),
            (9, "meeting", json!(12)),
            (10, "broadcaster_id", json!(-1)),
            (11, "server", json!(11)),
            (12, "status", json!(7)),
        ] {
            let mut row = live_row(id, "http://p");
            row[field] = value;
            rows.push(row);
        }
        let mut waiting_without_meeting = live_row(13, "http://p");
        waiting_without_meeting["status"] = json!(0);
        waiting_without_meeting["meeting"] = Value::Null;
        rows.push(waiting_without_meeting);
        let mut stopped_without_meeting = live_row(14, "http://p");
        stopped_without_meeting["status"] = json!(2);
        stopped_without_meeting["meeting"] = Value::Null;
        rows.push(stopped_without_meeting);
        let (skipped, kept) = skipped_rows(page_of(rows)).await;
        assert_eq!(kept, vec![14], "a closed live without meeting is harmless");
        let reasons: Vec<(Option<LiveId>, &str)> =
            skipped.iter().map(|s| (s.id, s.reason.as_str())).collect();
        for (id, field) in [
            (8, "enable_chat"),
            (9, "meeting"),
            (10, "broadcaster_id"),
            (11, "server"),
            (12, "status"),
            (13, "meeting"),
        ] {
            assert!(
                reasons.iter().any(|(i, r)| *i == Some(id)
                    && r.contains(&format!("livestream {id}: field \"{field}\""))),
                "{id} {field}: {reasons:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_page_that_is_not_a_drf_page_fails_the_read() {
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
        let read = client(&base).livestreams().await.unwrap();
        let lives = read.lives;
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
        // Issue 10: a status Pod does not define makes the row skipped (it was kept as
        // `Other(7)` and never acted on; now it is also reported).
        assert_eq!(lives.len(), 1);
        assert_eq!(read.skipped.len(), 1);
        assert_eq!(read.skipped[0].id, Some(6));
        assert!(read.skipped[0].reason.contains("unknown value 7"));
    }

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
    use crate::model::{Broadcaster, Live, LiveStatus, PodMeeting};
    use crate::pod::broadcasters::parse_broadcaster;
    use crate::pod::livestreams::parse_live;
    use crate::pod::meetings::parse_meeting;
    use crate::pod::pages::parse_page;
    use serde_json::json;
    use std::fmt;

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
