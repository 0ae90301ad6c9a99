//! `init`: create the slot directories and compose files, and repair their modes,
//! under the tick lock; print what it did (or, dry, what it would do).

use anyhow::Result;
use tracing::info;

use super::outcome::{Fatal, Outcome, lock_waiting, print_lines};
use crate::config::Config;
use crate::slots::SlotStore;

/// Prepares this server's slots (`dry_run`: says what it would change).
pub fn init(cfg: &Config, dry_run: bool) -> Result<Outcome, Fatal> {
    let store = SlotStore::new(&cfg.server.base_dir, cfg.server.slots);
    let mut lines = store.init(dry_run)?;
    // Under the tick lock: a start writes its compose file between these checks.
    let _lock = if dry_run {
        None
    } else {
        Some(lock_waiting(cfg)?)
    };
    for slot in 1..=cfg.server.slots {
        let compose = store.compose_file(slot);
        if compose.exists() {
            // It holds the BBB secret (a PHP server left it 0644): mode and owner only,
            // a busy slot's content belongs to its live.
            lines.extend(crate::slots::repair(&compose, 0o600, None, dry_run)?);
            continue;
        }
        if store.load(slot).ok().flatten().is_some() {
            continue;
        }
        lines.push(format!(
            "write {} from the template (mode 0600)",
            compose.display()
        ));
        if !dry_run {
            crate::fsutil::write_atomic(&compose, cfg.server.template.as_bytes(), 0o600)?;
        }
    }
    if !dry_run {
        for l in &lines {
            info!("init: {l}");
        }
    }
    if lines.is_empty() {
        lines.push("nothing to change: every slot directory, videodata and compose file is as it should be".into());
    }
    print_lines(&lines)?;
    Ok(Outcome::Done)
}
