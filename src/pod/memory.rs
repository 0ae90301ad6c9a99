//! What the last read of Pod's whole livestream list leaves for the next ticks
//! ([`ListMemory`], `<base_dir>/pod-list.json`), and when a whole read is due again.
//!
//! Pod 3.1–3.8.1 ignores `?status=` (pod-api.md §1.1), so knowing every waiting and
//! running live means reading every live ever requested. But the list is ordered by
//! `start_date` (`Livestream.Meta.ordering`, 2.8 to 3.8.1), which Pod sets when the
//! request is made, so new requests arrive at its end: a tick that remembers the end
//! of the list it last read (`count`, the rows of the last page) reads only the last
//! page, and the pages a higher `count` adds (`tail.rs`). This file owns that memory
//! and the rule that bounds its age; it does no HTTP. A missing, unreadable or
//! foreign file only means a whole read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Live, LiveId, LiveStatus, ServerNumber};

use super::livestreams::{Dated, ListedLive};
use super::pages::Row;

/// The file, in `base_dir`.
pub const LIST_MEMORY_FILE: &str = "pod-list.json";

/// A whole read at least this often, whatever the cheaper reads saw.
pub const FULL_READ_EVERY: TimeDelta = TimeDelta::minutes(10);

/// What a read of the livestream list (whole, or its end) left to check the next one
/// against. Rows are named by id and `start_date`: after Pod is restored from a
/// backup its sequence gives the lost ids again, to rows made later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMemory {
    /// Pod's base URL: the memory of another Pod is no memory.
    pub pod: String,
    /// When the whole list was last read.
    pub full_read_at: DateTime<Utc>,
    /// Rows in the list at the last read (whole or not).
    pub count: u64,
    /// Rows per page (Pod's `PAGE_SIZE`, 12), once the list was longer than a page.
    pub page_size: Option<u64>,
    /// The rows of the last page at the last read, in Pod's order.
    pub tail: Vec<TailRow>,
    /// Lives before that page that were waiting when last read (they may start).
    pub waiting: BTreeSet<LiveId>,
    /// Lives before that page that were running when last read, on any server, as
    /// they were then.
    pub running: BTreeMap<LiveId, Live>,
}

/// A row of the last page: its id and its `start_date` as Pod wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailRow {
    pub id: LiveId,
    pub start_date: Option<String>,
}

impl ListMemory {
    /// The memory of a whole list read at `now`: `rows` in Pod's order, `page_size`
    /// as its pages showed it.
    pub(super) fn of_whole_list(
        pod: &str,
        now: DateTime<Utc>,
        rows: &[Dated<ListedLive>],
        page_size: Option<u64>,
    ) -> ListMemory {
        let mut memory = ListMemory {
            pod: pod.to_owned(),
            full_read_at: now,
            count: 0,
            page_size,
            tail: Vec::new(),
            waiting: BTreeSet::new(),
            running: BTreeMap::new(),
        };
        memory.set_end(rows.len() as u64, rows);
        memory.learn(rows.iter().map(|r| &r.row));
        memory
    }

    /// Where the list ends now: `count` rows, `last_page` being its last page (also
    /// forgotten from the lives remembered before it: it is read every time).
    pub(super) fn set_end(&mut self, count: u64, rows_to_end: &[Dated<ListedLive>]) {
        self.count = count;
        let on_last = last_page_len(count, self.page_size) as usize;
        let last_page = &rows_to_end[rows_to_end.len().saturating_sub(on_last)..];
        self.tail = last_page
            .iter()
            .map(|r| TailRow {
                id: r.row.id(),
                start_date: r.start_date.clone(),
            })
            .collect();
    }

    /// Takes what `rows` (read now) say: a waiting or running live not on the last
    /// page is remembered as such, any other is forgotten.
    pub(super) fn learn<'a>(&mut self, rows: impl Iterator<Item = &'a ListedLive>) {
        let on_tail: BTreeSet<LiveId> = self.tail.iter().map(|t| t.id).collect();
        for row in rows {
            let id = row.id();
            self.waiting.remove(&id);
            self.running.remove(&id);
            let ListedLive::Live(live) = row else {
                continue;
            };
            if on_tail.contains(&id) {
                continue;
            }
            match live.status {
                LiveStatus::Waiting => {
                    self.waiting.insert(id);
                }
                LiveStatus::Running => {
                    self.running.insert(id, live.clone());
                }
                _ => {}
            }
        }
    }

    /// Forgets lives Pod no longer has.
    pub(super) fn forget(&mut self, id: LiveId) {
        self.waiting.remove(&id);
        self.running.remove(&id);
    }

    /// Whether this memory may stand in for a whole read at `now` on server `number`
    /// of the Pod at `pod`: same Pod, and a whole read is not due. One is due
    /// [`FULL_READ_EVERY`] after the last, and each server also reads the whole list in
    /// its own minute of every ten (minute ≡ number − 1 mod 10), so that servers
    /// spread their whole reads instead of making them together.
    pub fn trusted(&self, pod: &str, now: DateTime<Utc>, number: ServerNumber) -> bool {
        let age = now.signed_duration_since(self.full_read_at);
        if self.pod != pod || age < TimeDelta::zero() || age >= FULL_READ_EVERY {
            return false;
        }
        let every = FULL_READ_EVERY.num_minutes() as u32;
        let own_minute = now.minute() % every == number.0.saturating_sub(1) % every;
        !(own_minute && age >= TimeDelta::minutes(1))
    }

    /// The memory kept in `base_dir`; `None` if there is none or it does not read
    /// (either only means a whole read), with why at debug level.
    pub fn load(base_dir: &Path) -> Option<ListMemory> {
        let path = path(base_dir);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::debug!("reading {}: {e}; the whole list is read", path.display());
                return None;
            }
        };
        serde_json::from_slice(&text)
            .map_err(|e| {
                tracing::debug!(
                    "{} does not parse: {e}; the whole list is read",
                    path.display()
                )
            })
            .ok()
    }

    /// Saves it in `base_dir` (temporary file, flush, rename: never half-written).
    pub fn save(&self, base_dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec(self)?;
        crate::fsutil::write_atomic(&path(base_dir), &json, 0o600)
    }

    /// Removes the memory from `base_dir` (Pod's filter works: nothing to remember).
    pub fn remove(base_dir: &Path) {
        let path = path(base_dir);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("removing {}: {e}", path.display());
        }
    }
}

fn path(base_dir: &Path) -> PathBuf {
    base_dir.join(LIST_MEMORY_FILE)
}

/// Rows on the last page of a list of `count` rows, `page_size` per page (`None`: all
/// on one page).
pub(super) fn last_page_len(count: u64, page_size: Option<u64>) -> u64 {
    match page_size {
        Some(size) if size > 0 && count > 0 => count - (count - 1) / size * size,
        _ => count,
    }
}

/// The page holding row `position` (1-based; page 1 for 0).
pub(super) fn page_of(position: u64, page_size: u64) -> u64 {
    position.max(1).div_ceil(page_size.max(1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, h, m, s).unwrap()
    }

    fn memory(full_read_at: DateTime<Utc>) -> ListMemory {
        ListMemory {
            pod: "https://pod/".into(),
            full_read_at,
            count: 0,
            page_size: Some(12),
            tail: Vec::new(),
            waiting: BTreeSet::new(),
            running: BTreeMap::new(),
        }
    }

    #[test]
    fn a_whole_read_is_due_ten_minutes_after_the_last_and_in_each_servers_own_minute() {
        // Read at 10:00:05 by server 1 (its minutes: :00, :10, :20...).
        let m = memory(at(10, 0, 5));
        let trusted = |h, min, s, n| m.trusted("https://pod/", at(h, min, s), ServerNumber(n));
        assert!(trusted(10, 1, 5, 1));
        assert!(trusted(10, 9, 59, 1));
        assert!(!trusted(10, 10, 5, 1), "its own minute");
        // Server 2's own minutes are :01, :11...: it re-reads at :01 once a minute old.
        assert!(!trusted(10, 1, 5, 2));
        assert!(
            trusted(10, 0, 50, 1),
            "its own minute, read less than a minute ago"
        );
        // Server 11 shares server 1's minute; server 10 has :09.
        assert!(!trusted(10, 9, 5, 10));
        // A tick missed: the bound still holds.
        assert!(!trusted(10, 10, 6, 3));
        // Another Pod, or a clock gone back.
        assert!(!m.trusted("https://other/", at(10, 1, 5), ServerNumber(1)));
        assert!(!trusted(9, 59, 0, 1));
    }

    #[test]
    fn pages_and_last_page_lengths() {
        assert_eq!(last_page_len(0, Some(12)), 0);
        assert_eq!(last_page_len(12, Some(12)), 12);
        assert_eq!(last_page_len(13, Some(12)), 1);
        assert_eq!(last_page_len(5000, Some(12)), 8);
        assert_eq!(last_page_len(7, None), 7);
        assert_eq!(page_of(0, 12), 1);
        assert_eq!(page_of(12, 12), 1);
        assert_eq!(page_of(13, 12), 2);
    }

    #[test]
    fn a_missing_or_corrupt_file_is_no_memory_and_a_saved_one_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ListMemory::load(dir.path()), None);
        std::fs::write(dir.path().join(LIST_MEMORY_FILE), b"{\"pod\": 3").unwrap();
        assert_eq!(ListMemory::load(dir.path()), None);
        let mut m = memory(at(10, 0, 0));
        m.count = 25;
        m.tail.push(TailRow {
            id: 25,
            start_date: Some("2026-12-07T09:59:00.123456Z".into()),
        });
        m.waiting.insert(3);
        m.running.insert(
            7,
            Live {
                id: 7,
                meeting_url: Some("https://pod/rest/bbb_meeting/7/".into()),
                user_url: None,
                status: LiveStatus::Running,
                server: Some("2/1".into()),
                end_date: None,
                broadcaster_id: Some(3),
                is_restricted: false,
                enable_chat: false,
                show_chat: true,
                download_meeting: false,
            },
        );
        m.save(dir.path()).unwrap();
        assert_eq!(ListMemory::load(dir.path()), Some(m));
        ListMemory::remove(dir.path());
        assert_eq!(ListMemory::load(dir.path()), None);
        ListMemory::remove(dir.path());
    }
}
