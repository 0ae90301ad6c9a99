//! Logging with tracing: one file per day in `log_dir` (UTC date in the name, lines
//! starting with a UTC timestamp and the level), warnings and errors also on stderr.
//! `-v`/`-vv` print the log on stderr as it is written; `-q` keeps only errors there.
//! The file gets info lines, or debug lines with `server.debug = true`, whatever the flags.

use std::path::Path;

use anyhow::{Context, Result};
use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Suffix of the daily log files: `<YYYY-MM-DD>.bbb-pod-live.log`.
pub const LOG_SUFFIX: &str = "bbb-pod-live.log";

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

/// Installs the global subscriber. Keep the guard until the end of `main`: it
/// flushes the file writer.
pub fn init(stderr: LevelFilter, file: Option<LogFile<'_>>) -> Result<Option<WorkerGuard>> {
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
        return Ok(None);
    };
    std::fs::create_dir_all(file.dir)
        .with_context(|| format!("creating log directory {}", file.dir.display()))?;
    // tracing-appender's own `max_log_files` keeps the N most recently *created* files,
    // whatever their dates; retention here is by the date in the name.
    if file.retention_days > 0 {
        prune(
            file.dir,
            file.retention_days,
            chrono::Utc::now().date_naive(),
        );
    }
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_suffix(LOG_SUFFIX)
        .build(file.dir)
        .with_context(|| format!("opening a log file in {}", file.dir.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
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
    Ok(Some(guard))
}

/// Deletes the day logs (`<YYYY-MM-DD>.bbb-pod-live.log`) dated more than
/// `retention_days - 1` days before `today`: today's file and the `retention_days - 1`
/// days before it are kept. Other files are left alone; failures are only reported on
/// stderr (logging is not set up yet, and an old file left is no reason to stop).
fn prune(dir: &Path, retention_days: u32, today: chrono::NaiveDate) {
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
            .and_then(|n| n.strip_suffix(LOG_SUFFIX))
            .and_then(|d| d.strip_suffix('.'))
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_last_days_by_the_date_in_the_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = [
            "2026-11-20.bbb-pod-live.log",
            "2026-11-21.bbb-pod-live.log",
            "2026-11-22.bbb-pod-live.log",
            "2026-11-24.bbb-pod-live.log",
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
                "2026-11-22.bbb-pod-live.log",
                "2026-11-24.bbb-pod-live.log",
                "notes.txt"
            ]
        );
        prune(dir.path(), 1, today);
        assert!(!dir.path().join("2026-11-22.bbb-pod-live.log").exists());
        assert!(dir.path().join("2026-11-24.bbb-pod-live.log").exists());
    }

    #[test]
    fn verbosity_maps_to_levels() {
        assert_eq!(stderr_level(0, false), LevelFilter::WARN);
        assert_eq!(stderr_level(1, false), LevelFilter::INFO);
        assert_eq!(stderr_level(2, false), LevelFilter::DEBUG);
        assert_eq!(stderr_level(0, true), LevelFilter::ERROR);
    }
}
