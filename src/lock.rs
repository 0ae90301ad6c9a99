//! The tick lock: two ticks started together never both act. It is an advisory
//! `flock` on `<base_dir>/.bbb-pod-live.lock`; the kernel releases it when the
//! holder exits, even by SIGKILL, so a lock left by a killed run never blocks.
//!
//! The holder writes its pid and since when it holds the lock into the file, so that a
//! run finding the lock taken can tell a normal overlap (a slow tick) from a run stuck
//! for much longer than any tick takes (a hard-mounted NFS share gone, a kernel-level
//! hang that no timeout interrupts) — which must be reported, not skipped silently
//! minute after minute.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};

/// How long an operator command that changes slots or recordings (`stop`, `init`,
/// `recordings deliver|discard`) waits for a running tick to release the lock: longer
/// than a tick takes, short enough for an admin at the terminal.
pub const COMMAND_WAIT: Duration = Duration::from_secs(300);

/// Held while a tick or a stop acts; released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Who holds the lock, as it wrote itself in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub since: DateTime<Utc>,
}

impl Holder {
    fn parse(text: &str) -> Option<Holder> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let since = DateTime::parse_from_rfc3339(words.next()?).ok()?.to_utc();
        Some(Holder { pid, since })
    }

    /// How long it has held the lock at `now` (zero if its clock was ahead).
    pub fn held_for(&self, now: DateTime<Utc>) -> Duration {
        (now - self.since).to_std().unwrap_or_default()
    }
}

/// The outcome of [`try_lock`].
#[derive(Debug)]
pub enum TryLock {
    Acquired(Lock),
    /// Another run holds it; who, if it could be read.
    Busy(Option<Holder>),
}

fn open(base_dir: &Path) -> Result<File> {
    open_file(&base_dir.join(".bbb-pod-live.lock"))
}

fn open_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))
}

/// Takes the lock without waiting.
pub fn try_lock(base_dir: &Path) -> Result<TryLock> {
    let mut file = open(base_dir)?;
    match file.try_lock() {
        Ok(()) => {
            // Informational only: a failure to write it must not stop the tick.
            let me = format!("{} {}\n", std::process::id(), Utc::now().to_rfc3339());
            let _ = file
                .set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(me.as_bytes()));
            Ok(TryLock::Acquired(Lock { _file: file }))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let holder = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| Holder::parse(&text));
            Ok(TryLock::Busy(holder))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the lock file"),
    }
}

/// Waits up to `limit` for the lock (used by `stop`, which must not be skipped).
pub fn lock_within(base_dir: &Path, limit: Duration) -> Result<Lock> {
    let deadline = Instant::now() + limit;
    loop {
        let holder = match try_lock(base_dir)? {
            TryLock::Acquired(lock) => return Ok(lock),
            TryLock::Busy(holder) => holder,
        };
        if Instant::now() >= deadline {
            let who = holder.map_or_else(String::new, |h| {
                format!(
                    " (pid {}, since {})",
                    h.pid,
                    crate::logging::local_time(h.since)
                )
            });
            bail!(
                "another bbb-pod-live run{who} held the lock for more than {}s",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A short lock, held for milliseconds, never across a docker command or a network
/// call: the slot reservation (`<base_dir>/.slots.lock`: who takes a free slot) and a
/// slot's own lock (`<slot dir>/.slot.lock`: who acts on the live in it). The tick
/// lock above may be held for minutes by a slow `docker compose up`; `serve` must
/// answer Pod within 2 s, so the moments where `serve` and the tick meet are guarded
/// by these instead. A plain `flock`, released on drop and by the kernel when its
/// holder dies.
#[derive(Debug)]
pub struct ShortLock {
    _file: File,
}

/// `<base_dir>/.slots.lock`: held while a free slot is chosen and its state written.
pub fn slots_lock_path(base_dir: &Path) -> std::path::PathBuf {
    base_dir.join(".slots.lock")
}

/// `<slot dir>/.slot.lock`: held while a live's slot is acted on (up, stop, restart).
pub fn slot_lock_path(slot_dir: &Path) -> std::path::PathBuf {
    slot_dir.join(".slot.lock")
}

/// Takes the lock at `path` without waiting; `None` when another holder has it.
pub fn try_short(path: &Path) -> Result<Option<ShortLock>> {
    let file = open_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(ShortLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Waits up to `limit` for the lock at `path` (polled every 10 ms, without blocking
/// the async runtime); an error naming the file when it stays taken.
pub async fn short_within(path: &Path, limit: Duration) -> Result<ShortLock> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(lock) = try_short(path)? {
            return Ok(lock);
        }
        if Instant::now() >= deadline {
            bail!(
                "{} stayed locked for more than {} ms",
                path.display(),
                limit.as_millis()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquired(t: TryLock) -> Lock {
        match t {
            TryLock::Acquired(l) => l,
            TryLock::Busy(h) => panic!("busy: {h:?}"),
        }
    }

    #[test]
    fn second_holder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = acquired(try_lock(dir.path()).expect("lock"));
        match try_lock(dir.path()).expect("lock") {
            TryLock::Busy(Some(h)) => {
                assert_eq!(h.pid, std::process::id());
                assert!(h.held_for(Utc::now()) < Duration::from_secs(60));
            }
            other => panic!("expected busy with a holder, got {other:?}"),
        }
        drop(first);
        let again = acquired(try_lock(dir.path()).expect("lock"));
        drop(again);
    }

    #[tokio::test]
    async fn a_short_lock_is_exclusive_and_independent_of_the_tick_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _tick = acquired(try_lock(dir.path()).expect("tick lock"));
        let path = slots_lock_path(dir.path());
        let first = short_within(&path, Duration::from_secs(1))
            .await
            .expect("free while the tick lock is held");
        assert!(try_short(&path).expect("try").is_none());
        let e = short_within(&path, Duration::ZERO).await.expect_err("busy");
        assert!(e.to_string().contains(".slots.lock"), "{e}");
        drop(first);
        assert!(try_short(&path).expect("try").is_some());
    }

    #[test]
    fn a_holder_line_that_does_not_parse_is_unknown_not_an_error() {
        assert_eq!(Holder::parse(""), None);
        assert_eq!(Holder::parse("12 yesterday"), None);
        let h = Holder::parse("12 2026-11-24T08:00:00+00:00\n").expect("parses");
        assert_eq!(h.pid, 12);
        let now = DateTime::parse_from_rfc3339("2026-11-24T08:45:00Z")
            .expect("date")
            .to_utc();
        assert_eq!(h.held_for(now), Duration::from_secs(45 * 60));
    }

    #[test]
    fn waiting_too_long_names_the_holder_and_its_local_start_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = acquired(try_lock(dir.path()).expect("lock"));
        let e = lock_within(dir.path(), Duration::ZERO).expect_err("busy");
        let text = e.to_string();
        let since = crate::logging::local_time(Utc::now());
        assert!(
            text.contains(&format!("(pid {}, since ", std::process::id())),
            "{text}"
        );
        // Local time with its offset, as `status` shows it (not RFC 3339 UTC); the
        // minute may have turned since, so compare what follows the date.
        let offset = &since[since.len() - 6..];
        assert!(text.contains(offset) && !text.contains('T'), "{text}");
        assert!(text.ends_with("held the lock for more than 0s"), "{text}");
    }
}
