//! Below every subcommand: how a command ends ([`Outcome`], or a [`Fatal`] error
//! before it acted), how it prints its lines on stdout, and how `stop` and `init` wait
//! for a running tick's lock. `main` maps the outcome to the exit code. This file
//! imports no subcommand.

use std::io::Write;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::lock::TryLock;

/// How a command ended, short of a fatal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it had to do was done (or another run held the lock).
    Done,
    /// It ran, but at least one action failed (exit code 1).
    Failed,
    /// Ended by this signal (SIGTERM, SIGINT) before it was done: exit code 128 + it.
    Interrupted(i32),
}

impl Outcome {
    /// `Done` when everything succeeded, else `Failed`.
    pub fn from_ok(ok: bool) -> Outcome {
        if ok { Outcome::Done } else { Outcome::Failed }
    }
}

/// Errors that end a command before it acted.
#[derive(Debug)]
pub enum Fatal {
    /// Configuration or usage error: nothing was touched (exit code 2).
    Config(anyhow::Error),
    /// Anything else (exit code 1).
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Fatal {
    fn from(e: anyhow::Error) -> Self {
        Fatal::Other(e)
    }
}

/// Prints `lines` on stdout, one each.
pub fn print_lines(lines: &[String]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{l}").context("writing to stdout")?;
    }
    Ok(())
}

/// The tick lock for `stop` and `init`, saying on stderr when it waits for a run.
pub fn lock_waiting(cfg: &Config) -> Result<crate::lock::Lock> {
    match crate::lock::try_lock(&cfg.server.base_dir)? {
        TryLock::Acquired(lock) => Ok(lock),
        TryLock::Busy(holder) => {
            let who = holder
                .map(|h| format!(" (pid {})", h.pid))
                .unwrap_or_default();
            eprintln!(
                "waiting for the running tick{who} to end (at most {} minutes)…",
                crate::lock::COMMAND_WAIT.as_secs() / 60
            );
            crate::lock::lock_within(&cfg.server.base_dir, crate::lock::COMMAND_WAIT)
        }
    }
}
