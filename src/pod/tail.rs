//! The tick's read of Pod's livestreams, at a cost that does not grow with Pod's
//! history: [`PodClient::tick_lives`].
//!
//! Where Pod's `?status=` filter works (2.8–3.0) the two filtered lists are short and
//! read every tick (`livestreams.rs`). Where it is ignored (3.1–3.8.1) the whole list
//! is read, remembered ([`ListMemory`]), and the next ticks read only its end: the
//! last page (`?page=last`, which DRF's `PageNumberPagination` answers), the pages a
//! higher `count` adds, and by id the lives that matter and may sit on older pages
//! (this server's, those remembered running here, the waiting ones when a slot is
//! free). That end stands for the whole list only when it proves that nothing before
//! it changed membership: `count` never went down (a row deleted, Pod restored from a
//! backup), the rows last seen at the end are still there, at the same positions,
//! with the same `start_date` (a row deleted before them and one added would shift
//! them; a restored Pod gives lost ids again to later rows). Otherwise, or when the
//! memory is older than its bound (`memory.rs`), the whole list is read in the same
//! tick. Not here: paging (`pages.rs`), rows (`livestreams.rs`), the file (`memory.rs`).

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use tokio::sync::Semaphore;

use crate::model::{LiveId, LiveStatus, Livestreams, ServerNumber};

use super::livestreams::{Dated, ListedLive};
use super::memory::{ListMemory, last_page_len, page_of};
use super::pages::{Page, Row, with_page};
use super::{PodClient, PodError, shown};

/// What a tick knows before it reads Pod's lives.
#[derive(Debug, Clone)]
pub struct TickRead<'a> {
    /// The lives in this server's slots.
    pub ours: &'a [LiveId],
    /// `server.number`.
    pub number: ServerNumber,
    pub now: DateTime<Utc>,
    /// Whether a slot is free: only then can a waiting live start, so only then are
    /// the waiting lives remembered on older pages read again.
    pub slot_free: bool,
}

/// How the lives were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListRead {
    /// The two filtered lists (Pod 2.8–3.0).
    Filtered,
    /// Every page (Pod 3.1–3.8.1: no memory, due, or the end could not be trusted).
    Whole,
    /// The end of the list and the lives that matter, by id.
    End,
}

/// What [`PodClient::tick_lives`] read.
#[derive(Debug)]
pub struct TickLives {
    /// The lives to decide on, read this tick; rows that do not parse apart.
    pub livestreams: Livestreams,
    /// What to remember for the next tick (`None`: nothing, the filter works).
    pub memory: Option<ListMemory>,
    /// Waiting lives remembered on older pages and not read this tick (no slot free):
    /// still waiting as far as we know, nothing is decided on them.
    pub unread_waiting: BTreeSet<LiveId>,
    pub how: ListRead,
}

impl PodClient {
    /// The livestreams one tick decides on (see the module's comment): every row it
    /// returns was read now. `memory` is what the last tick left; the answer says what
    /// to keep. Any failure fails the whole read, as [`PodClient::current_livestreams`].
    pub async fn tick_lives(
        &self,
        read: &TickRead<'_>,
        memory: Option<ListMemory>,
    ) -> Result<TickLives, PodError> {
        let pod = shown(&self.base);
        if let Some(m) = memory.filter(|m| m.trusted(&pod, read.now, read.number))
            && let Some(done) = self.end_of_list(read, m).await?
        {
            return Ok(done);
        }
        let current = self.current_rows(read.ours).await?;
        let (memory, how) = match &current.whole {
            Some((rows, size)) => (
                Some(ListMemory::of_whole_list(&pod, read.now, rows, *size)),
                ListRead::Whole,
            ),
            None => (None, ListRead::Filtered),
        };
        Ok(TickLives {
            livestreams: ListedLive::split(current.rows),
            memory,
            unread_waiting: BTreeSet::new(),
            how,
        })
    }

    /// The end of the list, checked against `m`; `None` when it cannot stand for the
    /// whole list (said at debug level).
    async fn end_of_list(
        &self,
        read: &TickRead<'_>,
        m: ListMemory,
    ) -> Result<Option<TickLives>, PodError> {
        let permits = Semaphore::new(self.max_concurrency);
        let on_tail: HashSet<LiveId> = m.tail.iter().map(|t| t.id).collect();
        let mut wanted: BTreeSet<LiveId> = read.ours.iter().copied().collect();
        wanted.extend(
            m.running
                .values()
                .filter(|l| l.slot_on(read.number).is_some())
                .map(|l| l.id),
        );
        if read.slot_free {
            wanted.extend(&m.waiting);
        }
        // The rows last seen at the end are read with it.
        let by_id: Vec<LiveId> = wanted
            .into_iter()
            .filter(|id| !on_tail.contains(id))
            .collect();
        let mut last_url = self.endpoint(&["rest", "bbb_livestream"]);
        last_url.set_query(Some("page=last"));
        let (last, read_by_id) = tokio::try_join!(
            self.page_within::<Dated<ListedLive>>(&last_url, &permits),
            self.lives_by_id(&by_id, &permits),
        )?;
        let Some(to_end) = self.rows_to_end(&m, last, &permits).await? else {
            return Ok(None);
        };
        let count = m.count + (to_end.len() - m.tail.len()) as u64;
        let mut memory = m;
        let mut rows: Vec<ListedLive> = to_end.iter().map(|r| r.row.clone()).collect();
        for (id, row) in by_id.iter().zip(read_by_id) {
            match row {
                Some(row) => rows.push(row),
                None => memory.forget(*id),
            }
        }
        // One streamer per session: a waiting live whose meeting a live remembered
        // running elsewhere streams is decided on that live as it is now.
        let meetings: HashSet<&str> = rows
            .iter()
            .filter_map(|r| match r {
                ListedLive::Live(l) if l.status == LiveStatus::Waiting => l.meeting_url.as_deref(),
                _ => None,
            })
            .collect();
        let fresh: HashSet<LiveId> = rows.iter().map(Row::id).collect();
        let holders: Vec<LiveId> = memory
            .running
            .values()
            .filter(|l| !fresh.contains(&l.id))
            .filter(|l| {
                l.meeting_url
                    .as_deref()
                    .is_some_and(|u| meetings.contains(u))
            })
            .map(|l| l.id)
            .collect();
        for (id, row) in holders
            .iter()
            .zip(self.lives_by_id(&holders, &permits).await?)
        {
            match row {
                Some(row) => rows.push(row),
                None => memory.forget(*id),
            }
        }
        let mut seen = HashSet::new();
        rows.retain(|r| seen.insert(r.id()));
        rows.sort_by_key(Row::id);
        memory.set_end(count, &to_end);
        memory.learn(rows.iter());
        let read_now: HashSet<LiveId> = rows.iter().map(Row::id).collect();
        let unread_waiting = memory
            .waiting
            .iter()
            .filter(|id| !read_now.contains(id))
            .copied()
            .collect();
        Ok(Some(TickLives {
            livestreams: ListedLive::split(rows),
            memory: Some(memory),
            unread_waiting,
            how: ListRead::End,
        }))
    }

    /// The rows from the page that held the end remembered in `m` to the end of the
    /// list, `last` being its last page; `None` when they do not prove that only rows
    /// were added after that end.
    async fn rows_to_end(
        &self,
        m: &ListMemory,
        last: Page<Dated<ListedLive>>,
        permits: &Semaphore,
    ) -> Result<Option<Vec<Dated<ListedLive>>>, PodError> {
        let count = last.count;
        let untrusted = |why: String| {
            tracing::debug!(
                "the end of Pod's list cannot stand for the whole ({why}); reading it all"
            );
            Ok(None)
        };
        if count < m.count {
            return untrusted(format!(
                "it had {} rows, now {count}: a row deleted, or Pod restored from a backup",
                m.count
            ));
        }
        let size = match m.page_size {
            Some(size) => Some(size),
            None if last.rows.len() as u64 == count => None,
            None => return untrusted("the list no longer fits on one page".into()),
        };
        if last.rows.len() as u64 != last_page_len(count, size) {
            return untrusted(format!(
                "its last page holds {} rows of {count}",
                last.rows.len()
            ));
        }
        let (from, to) = match size {
            Some(size) => (page_of(m.count, size), page_of(count, size)),
            None => (1, 1),
        };
        let mut to_end = Vec::new();
        if from < to {
            let base = self.endpoint(&["rest", "bbb_livestream"]);
            let pages = try_join_all((from..to).map(|k| with_page(&base, k)).map(
                |url| async move {
                    match self.page_within::<Dated<ListedLive>>(&url, permits).await {
                        Ok(page) => Ok(Some(page)),
                        // The list shrank meanwhile.
                        Err(e) if e.status() == Some(404) => Ok(None),
                        Err(e) => Err(e),
                    }
                },
            ))
            .await?;
            for page in pages {
                match page {
                    Some(p) if p.count == count && Some(p.rows.len() as u64) == size => {
                        to_end.extend(p.rows)
                    }
                    _ => return untrusted("its pages changed while being read".into()),
                }
            }
        }
        to_end.extend(last.rows);
        let same = to_end.len() >= m.tail.len()
            && m.tail
                .iter()
                .zip(&to_end)
                .all(|(t, r)| t.id == r.row.id() && t.start_date == r.start_date);
        if !same {
            return untrusted(format!(
                "rows {} to {} are not the rows last seen there",
                m.count + 1 - m.tail.len() as u64,
                m.count
            ));
        }
        Ok(Some(to_end))
    }
}
