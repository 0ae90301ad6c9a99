//! The store of recordings waiting on local disk: `<base_dir>/recordings/live-<id>/`,
//! its `handover.json` ([`Handover`]), what is in it ([`Pending`]), and the listing of
//! them all for the tick and `status` ([`Scan`]). Not here: filling it (`park.rs`) and
//! emptying it into `recordings_dir` (`deliver.rs`).

use std::ffi::OsStr;
use std::fs::{self, DirBuilder};
use std::io::{self, ErrorKind};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::fsutil::{sync_dir, write_atomic};
use crate::model::{InternalMeetingId, LiveId};

use super::{
    HANDOVER_FILE, HANDOVER_MODE, HandoverError, PENDING_DIR_MODE, human_size, valid_stem,
};

/// `handover.json`: what is known about one live's recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub live_id: LiveId,
    /// The livestream's meeting URL in Pod, to PATCH (`encoded_by`, `encoding_step`).
    pub meeting_url: String,
    /// The livestream's user URL, written as the meeting's `encoded_by`.
    pub user_url: String,
    pub parked_at: DateTime<Utc>,
    /// What Pod answered; the stem of the delivered file.
    #[serde(default)]
    pub internal_meeting_id: Option<String>,
    /// The file (name in the pending directory) chosen for delivery: kept once chosen, so
    /// that a resumed delivery finishes with the file it started with.
    #[serde(default)]
    pub delivering: Option<String>,
    /// Set while publishing by `rename` (file systems without hard links), with the
    /// device of `recordings_dir`: if the temporary copy is gone after a crash, the
    /// rename happened (same device) or the share is not mounted (another device).
    #[serde(default)]
    pub renaming_dev: Option<u64>,
    /// The parts held by `delivering` when it is the joined recording (`join.rs`): removed
    /// once it is delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined: Vec<String>,
    /// The published path, once delivered and checked.
    #[serde(default)]
    pub delivered: Option<String>,
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why the tick no longer tries to hand it over (e.g. the meeting was deleted in
    /// Pod): kept for the admin (`bbb-pod-live recordings`).
    #[serde(default)]
    pub held: Option<String>,
}

impl Handover {
    /// What is known when a live's recording is parked: nothing delivered yet.
    pub fn new(live_id: LiveId, meeting_url: &str, user_url: &str) -> Handover {
        Handover {
            live_id,
            meeting_url: meeting_url.to_owned(),
            user_url: user_url.to_owned(),
            parked_at: Utc::now(),
            internal_meeting_id: None,
            delivering: None,
            renaming_dev: None,
            joined: Vec::new(),
            delivered: None,
            delivered_at: None,
            held: None,
        }
    }
}

/// One mkv file of a slot or a pending directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// A live's pending directory as read from disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub live: LiveId,
    pub dir: PathBuf,
    pub handover: Handover,
    /// Its mkv files, largest first.
    pub files: Vec<RecordingFile>,
    /// Other entries of the directory (neither mkv nor ours), reported, never touched.
    pub others: Vec<String>,
}

/// Where a pending recording stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingState {
    /// Pod has not answered `internal_meeting_id` yet.
    WaitingForPod,
    /// Ready to be (or being) delivered.
    ToDeliver,
    /// Delivered; the delivered source or the directory itself remains to be removed.
    Finishing,
    /// Delivered; only the other mkv files (never delivered, never deleted) remain:
    /// for the admin to look at.
    Leftovers,
    /// Not delivered and not retried: it cannot be handed over by itself (see
    /// [`Handover::held`]); the admin delivers or discards it (`recordings` command).
    Held,
}

impl Pending {
    pub fn state(&self) -> PendingState {
        let h = &self.handover;
        if h.delivered.is_none() && h.held.is_some() {
            PendingState::Held
        } else if h.delivered.is_none() {
            if h.internal_meeting_id.is_none() {
                PendingState::WaitingForPod
            } else {
                PendingState::ToDeliver
            }
        } else {
            let source_left = h
                .delivering
                .as_deref()
                .is_some_and(|n| self.files.iter().any(|f| f.name == n));
            if source_left || (self.files.is_empty() && self.others.is_empty()) {
                PendingState::Finishing
            } else {
                PendingState::Leftovers
            }
        }
    }

    /// The tick has something to do with it (every state but [`PendingState::Leftovers`]
    /// and [`PendingState::Held`]).
    pub fn needs_work(&self) -> bool {
        !matches!(self.state(), PendingState::Leftovers | PendingState::Held)
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// One line for `status`: `live 42: 2 files, 1.3 GiB (…); to deliver as <id>.mkv`.
    pub fn summary(&self) -> String {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|f| format!("{} {}", f.name, human_size(f.size)))
            .collect();
        let what = match self.state() {
            PendingState::WaitingForPod => "waiting for Pod's internal_meeting_id".to_owned(),
            PendingState::ToDeliver => format!(
                "to deliver as {}.mkv",
                self.handover.internal_meeting_id.as_deref().unwrap_or("?")
            ),
            PendingState::Finishing => "delivered, cleaning up".to_owned(),
            PendingState::Leftovers => format!(
                "delivered as {}; other files kept for the admin",
                self.handover.delivered.as_deref().unwrap_or("?")
            ),
            PendingState::Held => format!(
                "kept: {}; see `bbb-pod-live recordings list`",
                self.handover.held.as_deref().unwrap_or("?")
            ),
        };
        format!(
            "live {}: {} file(s), {} [{}]; {what}",
            self.live,
            self.files.len(),
            human_size(self.total_size()),
            files.join(", ")
        )
    }
}

/// A pending directory that could not be read (e.g. a corrupt `handover.json`):
/// reported with its live id, never touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub live: Option<LiveId>,
    pub dir: PathBuf,
    pub error: String,
}

/// The pending directories, readable or not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Scan {
    pub pending: Vec<Pending>,
    pub unreadable: Vec<Unreadable>,
}

/// Recordings parked on local disk until they are handed to Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingStore {
    root: PathBuf,
}

impl PendingStore {
    /// The store of a server: `<base_dir>/recordings` (same file system as the slots, so
    /// that parking is a rename).
    pub fn new(base_dir: &Path) -> Self {
        PendingStore {
            root: base_dir.join("recordings"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/live-<id>`.
    pub fn live_dir(&self, live: LiveId) -> PathBuf {
        self.root.join(format!("live-{live}"))
    }

    /// The live's pending directory, if any.
    pub fn find(&self, live: LiveId) -> Result<Option<Pending>> {
        let dir = self.live_dir(live);
        match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
            Ok(_) => load(live, &dir).map(Some),
        }
    }

    /// Every pending directory (for `status`), the unreadable ones apart.
    pub fn scan(&self) -> Result<Scan> {
        let mut scan = Scan::default();
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(scan),
            Err(e) => return Err(e).with_context(|| format!("listing {}", self.root.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", self.root.display()))?;
            let name = entry.file_name();
            let Some(live) = name
                .to_str()
                .and_then(|n| n.strip_prefix("live-"))
                .and_then(|n| n.parse::<LiveId>().ok())
            else {
                continue;
            };
            let dir = entry.path();
            match load(live, &dir) {
                Ok(p) => scan.pending.push(p),
                Err(e) => scan.unreadable.push(Unreadable {
                    live: Some(live),
                    dir,
                    error: format!("{e:#}"),
                }),
            }
        }
        scan.pending.sort_by_key(|p| p.live);
        scan.unreadable.sort_by_key(|u| u.live);
        Ok(scan)
    }

    /// The pending recordings the tick must work on (not yet delivered, or delivered and
    /// not yet cleaned up), and the unreadable ones for the report.
    pub fn list(&self) -> Result<Scan> {
        let mut scan = self.scan()?;
        scan.pending.retain(Pending::needs_work);
        Ok(scan)
    }

    /// Persists the `internal_meeting_id` Pod answered. Refuses an invalid one, and a
    /// different one once set (a delivery may already be under way under the old name).
    /// It is kept in `handover.json` as the text, the file stem it becomes.
    pub fn set_internal_id(&self, pending: &Pending, id: &InternalMeetingId) -> Result<()> {
        let live = pending.live;
        let id = id.as_str();
        valid_stem(id).map_err(|reason| HandoverError::BadInternalId {
            live,
            id: id.to_owned(),
            reason,
        })?;
        let mut h = read_handover(&pending.dir)?
            .with_context(|| format!("{} has no {HANDOVER_FILE}", pending.dir.display()))?;
        match h.internal_meeting_id.as_deref() {
            Some(old) if old == id => Ok(()),
            Some(old) => Err(HandoverError::InternalIdChanged {
                live,
                old: old.to_owned(),
                new: id.to_owned(),
            }
            .into()),
            None => {
                h.internal_meeting_id = Some(id.to_owned());
                save_handover(&pending.dir, &h)
            }
        }
    }

    pub(super) fn create_dir(&self, dir: &Path) -> Result<()> {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(PENDING_DIR_MODE);
        builder
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        if let Some(parent) = self.root.parent() {
            sync_dir(parent)?;
        }
        sync_dir(&self.root)
    }
}

fn is_mkv(name: &OsStr) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mkv"))
}

/// The regular `*.mkv` files of `dir` (symbolic links are not followed), largest first,
/// then by name. Names that are not UTF-8 are read lossily (the path stays exact).
pub fn mkv_files(dir: &Path) -> io::Result<Vec<RecordingFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !is_mkv(&name) || !entry.file_type()?.is_file() {
            continue;
        }
        files.push(RecordingFile {
            name: name.to_string_lossy().into_owned(),
            path: entry.path(),
            size: entry.metadata()?.len(),
        });
    }
    files.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
    Ok(files)
}

pub(super) fn read_handover(dir: &Path) -> Result<Option<Handover>> {
    let path = dir.join(HANDOVER_FILE);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .with_context(|| format!("{} is corrupt", path.display()))
}

pub(super) fn save_handover(dir: &Path, h: &Handover) -> Result<()> {
    let text = serde_json::to_vec_pretty(h).context("serializing handover.json")?;
    write_atomic(&dir.join(HANDOVER_FILE), &text, HANDOVER_MODE)
}

pub(super) fn load(live: LiveId, dir: &Path) -> Result<Pending> {
    let handover =
        read_handover(dir)?.ok_or_else(|| anyhow!("{} has no {HANDOVER_FILE}", dir.display()))?;
    if handover.live_id != live {
        bail!(
            "{} says live {}, in the directory of live {live}",
            dir.join(HANDOVER_FILE).display(),
            handover.live_id
        );
    }
    let files = mkv_files(dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut others = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let name = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .file_name();
        let name = name.to_string_lossy();
        let ours = name == HANDOVER_FILE || name == format!(".{HANDOVER_FILE}.tmp");
        if !ours && !files.iter().any(|f| f.name == name) {
            others.push(name.into_owned());
        }
    }
    others.sort();
    Ok(Pending {
        live,
        dir: dir.to_owned(),
        handover,
        files,
        others,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::test_support::*;

    #[test]
    fn internal_id_is_validated_and_not_changed_once_set() {
        let f = fixture();
        write(&f.videodata.join("meeting-1.mkv"), b"x");
        let p = f.park(42);
        let e = f
            .store
            .set_internal_id(&p, &"../etc/passwd".into())
            .expect_err("bad");
        assert!(format!("{e}").contains("refused"), "{e}");
        f.store.set_internal_id(&p, &ID.into()).expect("set");
        f.store.set_internal_id(&p, &ID.into()).expect("same again");
        let e = f
            .store
            .set_internal_id(&p, &"other-id".into())
            .expect_err("changed");
        assert!(matches!(
            e.downcast_ref::<HandoverError>(),
            Some(HandoverError::InternalIdChanged { .. })
        ));
        let h = read_handover(&p.dir).expect("read").expect("some");
        assert_eq!(h.internal_meeting_id.as_deref(), Some(ID));
    }

    #[test]
    fn a_corrupt_handover_is_reported_not_fatal() {
        let f = fixture();
        write(&f.videodata.join("meeting-1.mkv"), b"x");
        f.park(1);
        write(&f.videodata.join("meeting-2.mkv"), b"y");
        f.park(2);
        write(&f.store.live_dir(1).join(HANDOVER_FILE), b"{ not json");
        fs::create_dir(f.store.root().join("not-a-live")).expect("mkdir");
        let scan = f.store.list().expect("list");
        assert_eq!(scan.pending.len(), 1);
        assert_eq!(scan.pending[0].live, 2);
        assert_eq!(scan.unreadable.len(), 1);
        assert_eq!(scan.unreadable[0].live, Some(1));
        assert!(
            scan.unreadable[0].error.contains("corrupt"),
            "{:?}",
            scan.unreadable
        );
        // Park refuses to overwrite it, and nothing is moved.
        write(&f.videodata.join("meeting-3.mkv"), b"z");
        assert!(f.store.park(1, "m", "u", &f.videodata).is_err());
        assert!(f.videodata.join("meeting-3.mkv").exists());
    }

    #[test]
    fn status_lists_files_and_sizes() {
        let f = fixture();
        write(&f.videodata.join("meeting-1.mkv"), &vec![0u8; 2048]);
        f.park(7);
        let scan = f.store.scan().expect("scan");
        let line = scan.pending[0].summary();
        assert!(line.contains("live 7"), "{line}");
        assert!(line.contains("meeting-1.mkv 2.0 KiB"), "{line}");
        assert!(line.contains("waiting for Pod"), "{line}");
        let json = serde_json::to_value(&scan).expect("json");
        assert_eq!(json["pending"][0]["files"][0]["size"], 2048);
        assert_eq!(json["pending"][0]["live"], 7);
        assert_eq!(human_size(5), "5 B");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }
}
