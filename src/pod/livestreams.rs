//! Pod's livestreams (`/rest/bbb_livestream/`): the lists the tick starts from (the
//! filtered ones, and the whole list for Pods that ignore the filter), one live by id,
//! the PATCHes that mark a live started, stopped or waiting again, the cheap read
//! `check` uses, and the parsing of a livestream row. Not here: deciding which lives
//! to start or stop (`plan`), paging (`pages.rs`).

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, SecondsFormat};
use futures_util::future::try_join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::model::{Live, LiveId, LiveStatus, Livestreams, SkippedRow};

use super::errors::is_object_not_found;
use super::pages::Row;
use super::rows::{flag, object_with_id, optional_id, optional_string, required_int};
use super::{Payload, PodClient, PodError};

/// The PATCH sent when a live starts.
#[derive(Debug, Clone)]
pub struct StartFields {
    pub server: String,
    pub broadcaster_id: u64,
    pub redis_hostname: String,
    pub redis_port: u16,
    pub redis_channel: String,
}

impl PodClient {
    /// Every livestream, all pages, sorted by id (Pod 3.1+ ignores `?status=`: the
    /// caller filters). A row that does not parse is skipped and returned apart, with
    /// its id and field: one bad row costs one row. A page that is not a DRF page (not
    /// JSON, no `results`, a missing page, an inconsistent list) fails the whole read.
    pub async fn livestreams(&self) -> Result<Livestreams, PodError> {
        let rows: Vec<ListedLive> = self
            .list(self.endpoint(&["rest", "bbb_livestream"]))
            .await?;
        Ok(ListedLive::split(rows))
    }

    /// The livestreams a tick decides on: the waiting (status 0) and running (1) ones,
    /// asked with `?status=0` and `?status=1` together, plus each live of `ours` (the
    /// lives in our slots) those lists do not show, read by id: a live closed by hand
    /// (status 2) is still seen. Pod 3.1–3.8.1 ignores the filter (docs/pod-api.md,
    /// "Versions"): an answer holding a row of another status is then page 1 of the
    /// whole list, whose other pages are read, and every row is returned, as
    /// [`PodClient::livestreams`] does. Each call finds out anew: Pod may be upgraded
    /// between two ticks. After the first pages, every other page is asked at once, at
    /// most [`PodClient::with_max_concurrency`] in flight. Sorted by id; rows that do not
    /// parse are returned apart (as [`PodClient::livestreams`]); any other failure fails
    /// the whole read.
    pub async fn current_livestreams(&self, ours: &[LiveId]) -> Result<Livestreams, PodError> {
        Ok(ListedLive::split(self.current_rows(ours).await?.rows))
    }

    /// [`PodClient::current_livestreams`]'s rows, and the whole list in Pod's order
    /// when that is what was read (Pod ignores the filter).
    pub(super) async fn current_rows(&self, ours: &[LiveId]) -> Result<Current, PodError> {
        let permits = Semaphore::new(self.max_concurrency);
        let filtered = |status: &str| {
            let mut url = self.endpoint(&["rest", "bbb_livestream"]);
            url.query_pairs_mut().append_pair("status", status);
            url
        };
        let (waiting, running) = (filtered("0"), filtered("1"));
        let (first_waiting, first_running) = tokio::try_join!(
            self.page_within::<Dated<ListedLive>>(&waiting, &permits),
            self.page_within::<Dated<ListedLive>>(&running, &permits),
        )?;
        // A skipped row (its status unknown) proves nothing about the filter.
        let other = |rows: &[Dated<ListedLive>], status| {
            rows.iter()
                .any(|r| matches!(&r.row, ListedLive::Live(l) if l.status != status))
        };
        if other(&first_waiting.rows, LiveStatus::Waiting)
            || other(&first_running.rows, LiveStatus::Running)
        {
            tracing::debug!("Pod ignores ?status= (Pod 3.1 to 3.8.1): reading the whole list");
            let page_size = page_size(&first_waiting);
            let rows = self.list_from(&waiting, first_waiting, &permits).await?;
            return Ok(Current::whole(rows, page_size));
        }
        let (waiting_size, running_size) = (page_size(&first_waiting), page_size(&first_running));
        let (waiting_rows, running_rows) = tokio::try_join!(
            self.list_from(&waiting, first_waiting, &permits),
            self.list_from(&running, first_running, &permits),
        )?;
        // Later pages showing other statuses (Pod upgraded during the read): that list
        // was read whole and consistent, so it is every live.
        if other(&waiting_rows, LiveStatus::Waiting) {
            return Ok(Current::whole(waiting_rows, waiting_size));
        }
        if other(&running_rows, LiveStatus::Running) {
            return Ok(Current::whole(running_rows, running_size));
        }
        let mut lives: Vec<ListedLive> = waiting_rows.into_iter().map(|r| r.row).collect();
        // A live whose status changed between the two answers may be in both lists
        // (read it again) or in neither (read it if it is ours).
        let waiting_ids: HashSet<LiveId> = lives.iter().map(Row::id).collect();
        let mut by_id = Vec::new();
        for Dated { row, .. } in running_rows {
            match &row {
                ListedLive::Live(l) if waiting_ids.contains(&l.id) => by_id.push(l.id),
                // The same bad row in both lists: skipped once, not read again.
                ListedLive::Skipped(..) if waiting_ids.contains(&row.id()) => {}
                _ => lives.push(row),
            }
        }
        lives.retain(|l| !by_id.contains(&l.id()));
        let listed: HashSet<LiveId> = lives.iter().map(Row::id).collect();
        by_id.extend(ours.iter().filter(|id| !listed.contains(id)));
        by_id.sort_unstable();
        by_id.dedup();
        let read = self.lives_by_id(&by_id, &permits).await?;
        lives.extend(read.into_iter().flatten());
        lives.sort_by_key(Row::id);
        Ok(Current {
            rows: lives,
            whole: None,
        })
    }

    /// Lives read by id, together (at most `permits` in flight), in `ids`' order:
    /// `None` for a live Pod no longer has; a row that does not parse is skipped as a
    /// bad row of the list is.
    pub(super) async fn lives_by_id(
        &self,
        ids: &[LiveId],
        permits: &Semaphore,
    ) -> Result<Vec<Option<ListedLive>>, PodError> {
        try_join_all(ids.iter().map(|&id| async move {
            // Never closed, so a permit always comes.
            let _permit = permits.acquire().await.ok();
            tracing::debug!(live = id, "reading it by id");
            match self.livestream(id).await {
                Ok(live) => Ok(live.map(ListedLive::Live)),
                // The row does not parse: skipped like a bad row of the list.
                Err(PodError::Garbage { reason, .. }) => Ok(Some(ListedLive::Skipped(
                    SkippedRow {
                        id: Some(id),
                        reason: format!("livestream {id}: {reason}"),
                    },
                    id,
                ))),
                Err(e) => Err(e),
            }
        }))
        .await
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

    /// One cheap authenticated read (`GET /rest/bbb_livestream/?page=1`) that proves
    /// the URL, the token, the staff flag and `USE_BBB`, with the usual hints if not.
    pub async fn check_access(&self) -> Result<(), PodError> {
        let mut url = self.endpoint(&["rest", "bbb_livestream"]);
        url.set_query(Some("page=1"));
        self.page::<Live>(&url).await.map(|_| ())
    }

    async fn patch_live(&self, id: LiveId, body: Value) -> Result<Live, PodError> {
        let url = self.endpoint(&["rest", "bbb_livestream", &id.to_string()]);
        let answer = self.call(Method::PATCH, &url, Payload::Json(body)).await?;
        self.object(Method::PATCH, &url, &answer, StatusCode::OK, parse_live)
    }
}

/// What [`PodClient::current_rows`] read.
pub(super) struct Current {
    /// Sorted by id.
    pub(super) rows: Vec<ListedLive>,
    /// The whole list in Pod's order, and its page size (`None`: one page), when the
    /// filter was ignored.
    pub(super) whole: Option<(Vec<Dated<ListedLive>>, Option<u64>)>,
}

impl Current {
    fn whole(rows: Vec<Dated<ListedLive>>, page_size: Option<u64>) -> Current {
        let mut sorted: Vec<ListedLive> = rows.iter().map(|r| r.row.clone()).collect();
        sorted.sort_by_key(Row::id);
        Current {
            rows: sorted,
            whole: Some((rows, page_size)),
        }
    }
}

/// The page size a list's first page shows: its length when more pages follow.
fn page_size<T>(first: &super::pages::Page<T>) -> Option<u64> {
    let len = first.rows.len() as u64;
    (first.count > len && len > 0).then_some(len)
}

/// A row of the livestream list: a live, or a row skipped with why (and a stand-in id
/// for the list's consistency check when it has no usable id of its own).
#[derive(Debug, Clone)]
pub(super) enum ListedLive {
    Live(Live),
    Skipped(SkippedRow, u64),
}

/// A row with its `start_date` as Pod wrote it (absent if it has none): with the id,
/// what names a row of a list ordered by it.
#[derive(Debug, Clone)]
pub(super) struct Dated<T> {
    pub(super) row: T,
    pub(super) start_date: Option<String>,
}

impl<T: Row> Row for Dated<T> {
    fn parse(value: &Value) -> Result<Self, String> {
        Ok(Dated {
            row: T::parse(value)?,
            start_date: value
                .get("start_date")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
    fn id(&self) -> u64 {
        self.row.id()
    }
}

impl ListedLive {
    /// The lives and the skipped rows, each in the rows' order.
    pub(super) fn split(rows: Vec<ListedLive>) -> Livestreams {
        let mut out = Livestreams::default();
        for row in rows {
            match row {
                ListedLive::Live(l) => out.lives.push(l),
                ListedLive::Skipped(s, _) => out.skipped.push(s),
            }
        }
        out
    }
}

impl Row for ListedLive {
    fn parse(value: &Value) -> Result<Self, String> {
        let id = value.get("id").and_then(Value::as_u64);
        let skipped = |reason: String| {
            // Two id-less rows must stay distinct for `consistent`: ids from the top of
            // the range, derived from the row itself (stable across pages and re-reads).
            let mut h = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&value.to_string(), &mut h);
            let stand_in = id.unwrap_or(u64::MAX - (std::hash::Hasher::finish(&h) >> 32));
            Ok(ListedLive::Skipped(SkippedRow { id, reason }, stand_in))
        };
        let live = match parse_live(value) {
            Ok(l) => l,
            Err(reason) => return skipped(reason),
        };
        match live.status {
            LiveStatus::Other(code) => skipped(format!(
                "livestream {}: field \"status\": unknown value {code} (0, 1 or 2 expected)",
                live.id
            )),
            // A request without its meeting cannot be started (a running live without
            // one is kept: its slot knows its meeting).
            LiveStatus::Waiting if live.meeting_url.is_none() => skipped(format!(
                "livestream {}: field \"meeting\" is null or missing (a live needs its meeting)",
                live.id
            )),
            _ => Ok(ListedLive::Live(live)),
        }
    }
    fn id(&self) -> u64 {
        match self {
            ListedLive::Live(l) => l.id,
            ListedLive::Skipped(_, id) => *id,
        }
    }
}

impl Row for Live {
    fn parse(value: &Value) -> Result<Self, String> {
        parse_live(value)
    }
    fn id(&self) -> u64 {
        self.id
    }
}

/// A `bbb_livestream` object. Optional fields may be null or absent (absent = null).
pub(super) fn parse_live(value: &Value) -> Result<Live, String> {
    object_with_id(value, "livestream", |map, id| {
        Ok(Live {
            id,
            meeting_url: optional_string(map, "meeting")?,
            user_url: optional_string(map, "user")?,
            status: LiveStatus::from_code(required_int(map, "status")?),
            server: optional_string(map, "server")?,
            end_date: optional_string(map, "end_date")?,
            broadcaster_id: optional_id(map, "broadcaster_id")?,
            // Null → Pod's model defaults (docs/pod-api.md, "Livestreams").
            is_restricted: flag(map, "is_restricted", false)?,
            enable_chat: flag(map, "enable_chat", false)?,
            show_chat: flag(map, "show_chat", true)?,
            download_meeting: flag(map, "download_meeting", false)?,
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::model::{LiveStatus, SkippedRow};
    use crate::pod::test_support::hostile::*;
    use crate::pod::test_support::*;
    use proptest::prelude::*;

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
            .unwrap()
            .expect("the meeting exists");
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

    // -- current_livestreams: the filtered lists and what they may miss ---------------

    fn row(id: u64, status: u64, origin: &str) -> Value {
        let mut row = live_row(id, origin);
        row["status"] = json!(status);
        row
    }

    fn asks_status(seen: &Seen, status: &str) -> bool {
        seen.query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .any(|p| p == format!("status={status}"))
    }

    #[tokio::test]
    async fn a_live_in_both_filtered_lists_is_read_again_by_id() {
        // Live 5 was started between the two answers: listed waiting and running.
        let (base, fake) = serve(|seen, _| {
            let o = seen.origin();
            match seen.path.as_str() {
                "/rest/bbb_livestream/5/" => Reply::json(200, row(5, 1, &o)),
                _ if asks_status(seen, "0") => {
                    drf_page(&[row(5, 0, &o), row(6, 0, &o)], seen, &seen.origin())
                }
                _ => drf_page(&[row(5, 1, &o)], seen, &seen.origin()),
            }
        })
        .await;
        let lives = client(&base).current_livestreams(&[]).await.unwrap().lives;
        let got: Vec<(u64, LiveStatus)> = lives.iter().map(|l| (l.id, l.status)).collect();
        assert_eq!(
            got,
            [(5, LiveStatus::Running), (6, LiveStatus::Waiting)],
            "{lives:?}"
        );
        assert_eq!(
            fake.seen()
                .iter()
                .filter(|s| s.path == "/rest/bbb_livestream/5/")
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn ours_missing_from_the_filtered_lists_are_read_by_id_and_a_404_drops_them() {
        let (base, fake) = serve(|seen, _| {
            let o = seen.origin();
            match seen.path.as_str() {
                // Closed by hand: status 2, in neither filtered list.
                "/rest/bbb_livestream/7/" => Reply::json(200, row(7, 2, &o)),
                // Deleted from Pod.
                "/rest/bbb_livestream/8/" => Reply::json(404, json!({"detail": "Pas trouvé."})),
                _ if asks_status(seen, "0") => drf_page(&[row(1, 0, &o)], seen, &seen.origin()),
                _ => drf_page(&[row(3, 1, &o)], seen, &seen.origin()),
            }
        })
        .await;
        let lives = client(&base)
            .current_livestreams(&[3, 7, 8])
            .await
            .unwrap()
            .lives;
        let got: Vec<(u64, LiveStatus)> = lives.iter().map(|l| (l.id, l.status)).collect();
        assert_eq!(
            got,
            [
                (1, LiveStatus::Waiting),
                (3, LiveStatus::Running),
                (7, LiveStatus::Stopped)
            ]
        );
        // Listed ones are not read again.
        let by_id: Vec<String> = fake
            .seen()
            .iter()
            .filter(|s| s.path != "/rest/bbb_livestream/")
            .map(|s| s.path.clone())
            .collect();
        let mut by_id = by_id;
        by_id.sort();
        assert_eq!(
            by_id,
            ["/rest/bbb_livestream/7/", "/rest/bbb_livestream/8/"]
        );
    }

    #[tokio::test]
    async fn a_later_page_showing_other_statuses_makes_that_list_the_whole_one() {
        // Page 1 of ?status=0 looks filtered; page 2 holds a closed live (the filter
        // stopped working during the read): that list is every live.
        let (base, fake) = serve(|seen, _| {
            let o = seen.origin();
            if asks_status(seen, "0") {
                let rows: Vec<Value> = (1..=14)
                    .map(|id| row(id, if id == 14 { 2 } else { 0 }, &o))
                    .collect();
                drf_page(&rows, seen, &seen.origin())
            } else {
                drf_page(&[], seen, &seen.origin())
            }
        })
        .await;
        let lives = client(&base)
            .current_livestreams(&[20])
            .await
            .unwrap()
            .lives;
        assert_eq!(lives.len(), 14, "{lives:?}");
        assert_eq!(lives[13].status, LiveStatus::Stopped);
        // The whole list: ours (20) is simply absent, not read by id.
        assert!(
            fake.seen()
                .iter()
                .all(|s| s.path == "/rest/bbb_livestream/"),
            "{:?}",
            fake.seen().iter().map(|s| &s.path).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn the_first_pages_showing_the_filter_ignored_reuse_page_one_of_everything() {
        // Pod 3.x: both answers are page 1 of every live; pages 2.. read once.
        let (base, fake) = serve(|seen, _| {
            let o = seen.origin();
            let rows: Vec<Value> = (1..=30).map(|id| row(id, id % 3, &o)).collect();
            drf_page(&rows, seen, &seen.origin())
        })
        .await;
        let lives = client(&base).current_livestreams(&[2]).await.unwrap().lives;
        assert_eq!(lives.len(), 30);
        let pages: Vec<usize> = fake.seen().iter().map(|s| s.page()).collect();
        let mut pages = pages;
        pages.sort();
        assert_eq!(
            pages,
            [1, 1, 2, 3],
            "two first pages, then pages 2 and 3 once"
        );
    }

    /// The rows skipped from a one-page list, and the ids of those kept.
    async fn skipped_rows(page: Value) -> (Vec<SkippedRow>, Vec<LiveId>) {
        let (base, _fake) = serve(move |_, _| Reply::json(200, page.clone())).await;
        let read = client(&base).livestreams().await.unwrap();
        (read.skipped, read.lives.iter().map(|l| l.id).collect())
    }

    /// One bad row costs one row: a row that does not parse is skipped and reported with
    /// its id and field, the others are kept.
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
        // A status Pod does not define makes the row skipped and reported, not kept and
        // never acted on.
        assert_eq!(lives.len(), 1);
        assert_eq!(read.skipped.len(), 1);
        assert_eq!(read.skipped[0].id, Some(6));
        assert!(read.skipped[0].reason.contains("unknown value 7"));
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
    }
}
