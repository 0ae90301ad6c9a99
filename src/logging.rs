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
    let mut builder = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_suffix(LOG_SUFFIX);
    if file.retention_days > 0 {
        builder = builder.max_log_files(file.retention_days as usize);
    }
    let appender = builder
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_levels() {
        assert_eq!(stderr_level(0, false), LevelFilter::WARN);
        assert_eq!(stderr_level(1, false), LevelFilter::INFO);
        assert_eq!(stderr_level(2, false), LevelFilter::DEBUG);
        assert_eq!(stderr_level(0, true), LevelFilter::ERROR);
    }
}
