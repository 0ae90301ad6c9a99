//! Logging with tracing: one file per day in `log_dir`, named as bbb-pod-live.php
//! named its own (`<YYYY-MM-DD>_bbb-pod-live.log`, UTC date; mode 0640), lines starting
//! with a UTC timestamp marked `Z` and the level; warnings and errors also on stderr.
//! `-v`/`-vv` print the log on stderr as it is written; `-q` keeps only errors there.
//! The file gets info lines, or debug lines with `server.debug = true`, whatever the flags.
//! Retention deletes old day logs of both names (the PHP's and this tool's earlier
//! `<YYYY-MM-DD>.bbb-pod-live.log`), never other files.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::NaiveDate;
use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Suffix of the daily log files: `<YYYY-MM-DD>_bbb-pod-live.log`.
pub const LOG_SUFFIX: &str = "_bbb-pod-live.log";
/// The suffix this tool used before it took the PHP's name; still pruned.
const OLD_LOG_SUFFIX: &str = ".bbb-pod-live.log";
/// Mode of the log files: the admins' group may read them, nobody else.
const LOG_MODE: u32 = 0o640;

/// How much goes to stderr.
pub fn stderr_level(verbose: u8, quiet: bool) -> LevelFilter {
    match (quiet, verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, _) => LevelFilter::DEBUG,
    }
}

/// Where the log goes to.
pub struct LogFile<'a> {
    pub dir: &'a Path,
    pub debug: bool,
    /// Days of files kept; 0 keeps every file.
    pub retention_days: u32,
}

/// The day log's path for `date`.
pub fn day_log(dir: &Path, date: NaiveDate) -> PathBuf {
    dir.join(format!("{}{LOG_SUFFIX}", date.format("%Y-%m-%d")))
}

/// A time as a person reads it (`status`, messages on the terminal): local time with
/// its UTC offset. Log lines stay in UTC, marked `Z`.
pub fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M %:z")
        .to_string()
}

/// What [`init`] set up.
pub struct Started {
    /// Keep until the end of `main`: it flushes the file writer.
    pub guard: Option<WorkerGuard>,
    /// This run opened today's file first (the first run of the UTC day).
    pub first_of_the_day: bool,
}

/// Installs the global subscriber.
pub fn init(stderr: LevelFilter, file: Option<LogFile<'_>>) -> Result<Started> {
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .with_filter(stderr);
    let Some(file) = file else {
        tracing_subscriber::registry()
            .with(stderr_layer)
            .try_init()
            .ok();
        return Ok(Started {
            guard: None,
            first_of_the_day: false,
        });
    };
    if !file.dir.is_dir() {
        crate::fsutil::create_private_dir(file.dir).context("creating the log directory")?;
    }
    let today = chrono::Utc::now().date_naive();
    if file.retention_days > 0 {
        prune(file.dir, file.retention_days, today);
    }
    let first_of_the_day = !day_log(file.dir, today).exists();
    let daily = DailyFile::open(file.dir.to_owned(), today)?;
    let (writer, guard) = tracing_appender::non_blocking(daily);
    let file_level = if file.debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(false)
        .with_filter(file_level);
    tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init()
        .ok();
    Ok(Started {
        guard: Some(guard),
        first_of_the_day,
    })
}

/// The day log, reopened under the new date when a run goes past midnight (UTC).
struct DailyFile {
    dir: PathBuf,
    date: NaiveDate,
    file: File,
}

impl DailyFile {
    fn open(dir: PathBuf, date: NaiveDate) -> Result<DailyFile> {
        let file = open_day_log(&dir, date)?;
        Ok(DailyFile { dir, date, file })
    }
}

/// Opens (appends to) a day log, mode 0640 even if it was made with another mode.
fn open_day_log(dir: &Path, date: NaiveDate) -> Result<File> {
    let path = day_log(dir, date);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(&path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    let mode = file
        .metadata()
        .with_context(|| format!("reading the mode of {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o7777 != LOG_MODE {
        file.set_permissions(std::fs::Permissions::from_mode(LOG_MODE))
            .with_context(|| format!("setting mode 0640 on {}", path.display()))?;
    }
    Ok(file)
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let today = chrono::Utc::now().date_naive();
        if today != self.date {
            // On failure keep writing to the old file: a line late is better than lost.
            if let Ok(f) = open_day_log(&self.dir, today) {
                self.file = f;
                self.date = today;
            }
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The date of a day log's name, either suffix; `None` for any other file.
fn log_date(name: &str) -> Option<NaiveDate> {
    let date = name
        .strip_suffix(LOG_SUFFIX)
        .or_else(|| name.strip_suffix(OLD_LOG_SUFFIX))?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

/// Deletes the day logs dated more than `retention_days - 1` days before `today`:
/// today's file and the `retention_days - 1` days before it are kept. The streamers'
/// logs kept at stop (`live-<id>.log`) follow the same rule by the day they were last
/// written. Other files are left alone; failures are only reported on stderr (logging
/// is not set up yet, and an old file left is no reason to stop).
fn prune(dir: &Path, retention_days: u32, today: NaiveDate) {
    let Some(oldest) = today.checked_sub_days(chrono::Days::new(u64::from(retention_days) - 1))
    else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(date) = name
            .to_str()
            .and_then(log_date)
            .or_else(|| streamer_log_date(&entry))
        else {
            continue;
        };
        if date < oldest
            && entry.file_type().is_ok_and(|t| t.is_file())
            && let Err(e) = std::fs::remove_file(entry.path())
        {
            eprintln!(
                "bbb-pod-live: cannot remove the old log {}: {e}",
                entry.path().display()
            );
        }
    }
}

/// The day a streamer's log (`live-<id>.log`) was last written, UTC.
fn streamer_log_date(entry: &std::fs::DirEntry) -> Option<chrono::NaiveDate> {
    let name = entry.file_name();
    let id = name.to_str()?.strip_prefix("live-")?.strip_suffix(".log")?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let modified = entry.metadata().ok()?.modified().ok()?;
    Some(chrono::DateTime::<chrono::Utc>::from(modified).date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_removes_old_streamer_logs_by_their_last_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        for n in ["live-7.log", "live-8.log", "live-x.log"] {
            std::fs::write(dir.path().join(n), "x").expect("write");
        }
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400);
        for n in ["live-7.log", "live-x.log"] {
            std::fs::File::options()
                .write(true)
                .open(dir.path().join(n))
                .and_then(|f| f.set_modified(old))
                .expect("set mtime");
        }
        prune(dir.path(), 3, chrono::Utc::now().date_naive());
        assert!(!dir.path().join("live-7.log").exists());
        assert!(dir.path().join("live-8.log").exists());
        assert!(dir.path().join("live-x.log").exists(), "not ours");
    }

    #[test]
    fn prune_keeps_the_last_days_by_the_date_in_the_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The PHP's names and this tool's earlier ones alike.
        let names = [
            "2026-11-20_bbb-pod-live.log",
            "2026-11-21.bbb-pod-live.log",
            "2026-11-22_bbb-pod-live.log",
            "2026-11-24_bbb-pod-live.log",
            "2025-01-01.other.log",
            "notes.txt",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), "x").expect("write");
        }
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        prune(dir.path(), 3, today);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "2025-01-01.other.log",
                "2026-11-22_bbb-pod-live.log",
                "2026-11-24_bbb-pod-live.log",
                "notes.txt"
            ]
        );
        prune(dir.path(), 1, today);
        assert!(!dir.path().join("2026-11-22_bbb-pod-live.log").exists());
        assert!(dir.path().join("2026-11-24_bbb-pod-live.log").exists());
    }

    #[test]
    fn the_day_log_is_named_as_the_php_named_it_and_mode_0640() {
        let dir = tempfile::tempdir().expect("tempdir");
        let date = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
        let path = day_log(dir.path(), date);
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("2026-11-24_bbb-pod-live.log")
        );
        std::fs::write(&path, "old\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let mut f = DailyFile::open(dir.path().to_owned(), date).expect("open");
        f.write_all(b"line\n").expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o7777, 0o640);
        // Written to today's file (the date moved on since `date`), never lost.
        let today = day_log(dir.path(), chrono::Utc::now().date_naive());
        assert_eq!(std::fs::read_to_string(&today).expect("today"), "line\n");
    }

    #[test]
    fn verbosity_maps_to_levels() {
        assert_eq!(stderr_level(0, false), LevelFilter::WARN);
        assert_eq!(stderr_level(1, false), LevelFilter::INFO);
        assert_eq!(stderr_level(2, false), LevelFilter::DEBUG);
        assert_eq!(stderr_level(0, true), LevelFilter::ERROR);
    }
}
