//! `bbb-pod-live recordings list|deliver|discard`: the admin's hands on the recordings
//! kept on this server that the tick does not hand over by itself — above all those
//! whose Pod meeting was deleted while the live ran, which can never be delivered under
//! their own name (README, "Recordings").
//!
//! This module owns the command only: the files, their `handover.json` and the durable
//! delivery belong to [`crate::recording`]; `deliver` goes through the same
//! [`PendingStore::deliver`] as the tick (copy under a name Pod ignores, flush, publish
//! without ever overwriting, check, then delete the local copy). `deliver` and
//! `discard` take the tick's lock, so they never act beside a running tick.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use tracing::info;

use super::outcome::{Fatal, Outcome, print_lines};
use crate::cli::RecordingsAction;
use crate::config::Config;
use crate::model::LiveId;
use crate::recording::{Pending, PendingState, PendingStore, human_size, mkv_files, valid_stem};

/// One kept mkv file, as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptFile {
    pub path: PathBuf,
    pub size: u64,
    pub live: Option<LiveId>,
    /// The session (`internal_meeting_id`) or, unknown, the Pod meeting URL.
    pub meeting: Option<String>,
    pub why: String,
}

/// Runs one `recordings` subcommand.
pub fn run(cfg: &Config, action: &RecordingsAction, dry_run: bool) -> Result<Outcome, Fatal> {
    let store = PendingStore::new(&cfg.server.base_dir);
    match action {
        RecordingsAction::List => {
            let kept = list(&store)?;
            let mut out = Vec::new();
            if kept.is_empty() {
                out.push("no recording kept on this server".to_owned());
            }
            for k in &kept {
                out.push(format!(
                    "{}  {} bytes ({})  live {}  meeting {}  {}",
                    k.path.display(),
                    k.size,
                    human_size(k.size),
                    k.live.map_or_else(|| "-".to_owned(), |l| l.to_string()),
                    k.meeting.as_deref().unwrap_or("-"),
                    k.why
                ));
            }
            print_lines(&out)?;
            Ok(Outcome::Done)
        }
        RecordingsAction::Deliver { file, as_id, .. } => deliver(cfg, &store, file, as_id, dry_run),
        RecordingsAction::Discard { file, yes, .. } => discard(cfg, &store, file, *yes, dry_run),
    }
}

/// Every mkv file under `<base_dir>/recordings/`, with why it is there.
pub fn list(store: &PendingStore) -> Result<Vec<KeptFile>> {
    let scan = store.scan()?;
    let mut out = Vec::new();
    for p in &scan.pending {
        for f in &p.files {
            out.push(KeptFile {
                path: f.path.clone(),
                size: f.size,
                live: Some(p.live),
                meeting: Some(
                    p.handover
                        .internal_meeting_id
                        .clone()
                        .unwrap_or_else(|| p.handover.meeting_url.clone()),
                ),
                why: why(p, &f.name),
            });
        }
    }
    // Recordings nobody asked to hand over (the teacher did not ask, or recording is off).
    let kept_root = store.root().join("kept");
    let mut dirs = vec![kept_root.clone()];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(entry.path());
            }
        }
        for f in mkv_files(&dir).with_context(|| format!("listing {}", dir.display()))? {
            out.push(KeptFile {
                path: f.path,
                size: f.size,
                live: None,
                meeting: None,
                why: "nobody asked to hand it over (recording not requested)".to_owned(),
            });
        }
    }
    for u in &scan.unreadable {
        tracing::warn!(dir = %u.dir.display(), "unreadable recording directory: {}", u.error);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn why(p: &Pending, name: &str) -> String {
    if let Some(reason) = &p.handover.held {
        return format!("kept: {reason}");
    }
    match p.state() {
        PendingState::WaitingForPod => {
            "waiting for Pod's internal_meeting_id; the tick hands it over".to_owned()
        }
        PendingState::ToDeliver => format!(
            "waiting to be handed over as {}.mkv by the tick",
            p.handover.internal_meeting_id.as_deref().unwrap_or("?")
        ),
        PendingState::Held => "kept".to_owned(),
        PendingState::Finishing | PendingState::Leftovers
            if p.handover.delivering.as_deref() == Some(name) =>
        {
            "delivered, being cleaned up by the tick".to_owned()
        }
        PendingState::Finishing | PendingState::Leftovers => format!(
            "another file of a live delivered as {} (the streamer restarted)",
            p.handover.delivered.as_deref().unwrap_or("?")
        ),
    }
}

/// The pending recording `file` belongs to, and its name there; a usage error (exit 2)
/// for anything that is not an mkv of a kept live.
fn resolve(store: &PendingStore, file: &Path) -> Result<(Pending, String), Fatal> {
    let not_kept = || {
        Fatal::Config(anyhow!(
            "{} is not a recording kept by bbb-pod-live (see `bbb-pod-live recordings list`)",
            file.display()
        ))
    };
    let path = fs::canonicalize(file).map_err(|_| not_kept())?;
    let root = fs::canonicalize(store.root()).map_err(|_| not_kept())?;
    let dir = path.parent().ok_or_else(not_kept)?;
    if dir.parent() != Some(root.as_path()) {
        return Err(not_kept());
    }
    let live = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("live-"))
        .and_then(|n| n.parse::<LiveId>().ok())
        .ok_or_else(not_kept)?;
    let pending = store.find(live)?.ok_or_else(not_kept)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(not_kept)?
        .to_owned();
    if !pending.files.iter().any(|f| f.name == name) {
        return Err(not_kept());
    }
    Ok((pending, name))
}

fn deliver(
    cfg: &Config,
    store: &PendingStore,
    file: &Path,
    id: &str,
    dry_run: bool,
) -> Result<Outcome, Fatal> {
    valid_stem(id).map_err(|reason| {
        Fatal::Config(anyhow!(
            "--as {id:?} is not a usable internal_meeting_id: {reason}"
        ))
    })?;
    let Some(recordings_dir) = cfg.pod.recordings_dir.clone() else {
        return Err(Fatal::Config(anyhow!(
            "pod.recordings_dir is empty: there is nowhere to hand recordings over to"
        )));
    };
    let _lock = (!dry_run)
        .then(|| crate::lock::lock_within(&cfg.server.base_dir, crate::lock::COMMAND_WAIT))
        .transpose()?;
    let (pending, name) = resolve(store, file)?;
    if pending.handover.delivered.is_some() {
        return Err(Fatal::Config(anyhow!(
            "live {} was already handed over as {}; {} is another file of it: copy it by hand if Pod needs it",
            pending.live,
            pending.handover.delivered.as_deref().unwrap_or("?"),
            file.display()
        )));
    }
    let published = recordings_dir.join(format!("{id}.mkv"));
    if dry_run {
        print_lines(&[format!(
            "would hand {} over as {}",
            file.display(),
            published.display()
        )])?;
        return Ok(Outcome::Done);
    }
    if fs::symlink_metadata(&published).is_ok() {
        return Err(Fatal::Other(anyhow!(
            "{} already exists; not overwritten (nothing was changed)",
            published.display()
        )));
    }
    store
        .bind(&pending, &name, id)
        .with_context(|| format!("preparing the hand-over of {}", file.display()))?;
    let pending = store
        .find(pending.live)?
        .context("the kept recording vanished")?;
    let delivery = store
        .deliver(&pending, &recordings_dir)
        .with_context(|| format!("handing {} over", file.display()))?;
    info!(live = pending.live, file = %delivery.published.display(),
        "kept recording handed over to Pod by the admin");
    print_lines(&[format!("handed over as {}", delivery.published.display())])?;
    Ok(Outcome::Done)
}

fn discard(
    cfg: &Config,
    store: &PendingStore,
    file: &Path,
    yes: bool,
    dry_run: bool,
) -> Result<Outcome, Fatal> {
    // What is not a kept recording is said first: asking to confirm the deletion of
    // /etc/passwd would suggest that it could happen.
    resolve(store, file)?;
    if !yes && !dry_run {
        return Err(Fatal::Config(anyhow!(
            "discarding deletes {} for good: add --yes to confirm",
            file.display()
        )));
    }
    let _lock = (!dry_run)
        .then(|| crate::lock::lock_within(&cfg.server.base_dir, crate::lock::COMMAND_WAIT))
        .transpose()?;
    let (pending, name) = resolve(store, file)?;
    if dry_run {
        print_lines(&[format!("would delete {}", file.display())])?;
        return Ok(Outcome::Done);
    }
    store
        .discard(&pending, &name)
        .with_context(|| format!("discarding {}", file.display()))?;
    info!(live = pending.live, file = %file.display(), "kept recording discarded by the admin");
    print_lines(&[format!("deleted {}", file.display())])?;
    Ok(Outcome::Done)
}
