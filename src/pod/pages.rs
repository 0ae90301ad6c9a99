//! Reading a whole DRF list: page 1 gives `count` and the page size, the other pages
//! are fetched at once (at most `pod.max_concurrency` in flight), and a list whose
//! pages disagree (rows added or removed meanwhile) is read once more page after page,
//! then refused: never a shorter list. Not here: which list to read (`livestreams.rs`,
//! `broadcasters.rs`) and what a row holds (`rows.rs`).

use std::collections::HashSet;

use futures_util::future::try_join_all;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::errors::json_body;
use super::rows::{kind, optional_string, required_id};
use super::{Payload, PodClient, PodError, shown};

/// List pages in flight at once unless configured (`pod.max_concurrency`).
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;

/// More pages than this is not a Pod list (12 rows per page: 120 000 rows).
const MAX_PAGES: u64 = 10_000;

/// One page of a DRF list.
pub(super) struct Page<T> {
    pub(super) count: u64,
    /// Already rebased.
    pub(super) next: Option<Url>,
    pub(super) rows: Vec<T>,
}

impl PodClient {
    /// Every row of a DRF list, sorted by id. Page 1 gives `count` and the page size;
    /// the other pages are then fetched concurrently. If the pages disagree (rows
    /// added or removed meanwhile), the list is read once more, page after page.
    pub(super) async fn list<T: Row>(&self, first: Url) -> Result<Vec<T>, PodError> {
        let permits = Semaphore::new(self.max_concurrency);
        let page1 = self.page_within::<T>(&first, &permits).await?;
        let mut rows = self.list_from(&first, page1, &permits).await?;
        rows.sort_by_key(T::id);
        Ok(rows)
    }

    /// The list whose first page, read from `first`, is `page1`, in the list's order:
    /// the other pages at once, each holding one of `permits` while in flight.
    pub(super) async fn list_from<T: Row>(
        &self,
        first: &Url,
        page1: Page<T>,
        permits: &Semaphore,
    ) -> Result<Vec<T>, PodError> {
        match self.rest_of_list(page1, permits).await? {
            Some(rows) => Ok(rows),
            None => {
                tracing::debug!(
                    url = %shown(first),
                    "pod list changed while being read; reading it again page by page"
                );
                self.sequential_list(first).await
            }
        }
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
    pub(super) async fn page_within<T: Row>(
        &self,
        url: &Url,
        permits: &Semaphore,
    ) -> Result<Page<T>, PodError> {
        // Never closed, so a permit always comes.
        let _permit = permits.acquire().await.ok();
        self.page::<T>(url).await
    }

    pub(super) async fn page<T: Row>(&self, url: &Url) -> Result<Page<T>, PodError> {
        let answer = self.call(Method::GET, url, Payload::Empty).await?;
        if answer.status != StatusCode::OK {
            return Err(self.status_error(&Method::GET, url, &answer));
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
pub(super) fn consistent<T: Row>(count: u64, rows: Vec<T>) -> Option<Vec<T>> {
    let mut ids = HashSet::new();
    (rows.len() as u64 == count && rows.iter().all(|row| ids.insert(row.id()))).then_some(rows)
}

/// `url` with its `page` query parameter set to `k` (other parameters kept in place).
pub(super) fn with_page(url: &Url, k: u64) -> Url {
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

/// A row type of a DRF list.
pub(super) trait Row: Sized {
    fn parse(value: &Value) -> Result<Self, String>;
    fn id(&self) -> u64;
}

/// `{count, next, previous, results}` → (count, next link, parsed rows). A row that
/// does not parse fails the page: skipping it could make a running live look closed.
pub(super) fn parse_page<T: Row>(value: &Value) -> Result<(u64, Option<String>, Vec<T>), String> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use crate::model::Live;
    use crate::model::LiveStatus;
    use crate::pod::test_support::hostile::*;
    use crate::pod::test_support::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

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
        let lives = client(&base).livestreams().await.unwrap().lives;
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
        let lives = client(&base).livestreams().await.unwrap().lives;
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
        let lives = client(&base).livestreams().await.unwrap().lives;
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
        assert_eq!(pod.livestreams().await.unwrap().lives.len(), 12);
        assert_eq!(fake.hits.load(Ordering::SeqCst), 2);
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

    /// A row that is only its id.
    #[derive(Debug, PartialEq)]
    struct Id(u64);

    impl Row for Id {
        fn parse(value: &Value) -> Result<Self, String> {
            value.as_u64().map(Id).ok_or_else(|| "not an id".into())
        }
        fn id(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn a_list_is_consistent_only_with_count_rows_of_distinct_ids() {
        let rows = |ids: &[u64]| ids.iter().map(|&id| Id(id)).collect::<Vec<_>>();
        assert_eq!(consistent(3, rows(&[3, 1, 2])), Some(rows(&[3, 1, 2])));
        assert_eq!(consistent(0, rows(&[])), Some(rows(&[])));
        assert_eq!(consistent(4, rows(&[1, 2, 3])), None, "a row missing");
        assert_eq!(consistent(2, rows(&[1, 2, 3])), None, "a row too many");
        assert_eq!(consistent(3, rows(&[1, 2, 2])), None, "a row twice");
    }

    async fn list_error(page: Value) -> String {
        let (base, _fake) = serve(move |_, _| Reply::json(200, page.clone())).await;
        let e = client(&base).livestreams().await.unwrap_err();
        garbage_reason(&e).to_owned()
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

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
    }
}
