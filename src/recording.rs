//! Durable hand-over of recordings to Pod's drop folder (`pod.recordings_dir`, Pod's
//! `DEFAULT_BBB_PATH`).
//!
//! This module owns `<base_dir>/recordings/`: one directory per stopped live,
//! `live-<id>/`, holding the mkv files moved out of the slot's `videodata/` and a
//! `handover.json` saying what is known about their hand-over (the Pod meeting, the
//! `internal_meeting_id` Pod answered, the file chosen, whether it was delivered).
//! Two steps, each idempotent and safe to interrupt at any point (SIGKILL, power loss):
//!
//! - [`PendingStore::park`] moves every mkv out of the slot (a `rename` on the same
//!   local file system), so that the slot can take a new live at once, whatever
//!   becomes of the hand-over;
//! - [`PendingStore::deliver`] publishes the largest mkv as
//!   `<recordings_dir>/<internal_meeting_id>.mkv`: copied under a name Pod ignores,
//!   flushed, published with a hard link (which never replaces a file), checked,
//!   recorded, and only then removed from local disk.
//!
//! Nothing here ever deletes a recording that was not handed over, nor overwrites a
//! file in `recordings_dir`. It does not talk to Pod (the caller PATCHes the meeting and
//! gives us `internal_meeting_id`), does not mail and does not decide when to retry: a
//! failed delivery leaves everything in place and the next tick calls again.
//! All functions block on file I/O (copies of several GB): call them from
//! `spawn_blocking`. They assume one caller at a time (the tick's lock).

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::fsutil::{sync_dir, write_atomic};
use crate::model::LiveId;

/// The metadata file of a pending directory.
pub const HANDOVER_FILE: &str = "handover.json";
/// Extension of the temporary copy in `recordings_dir`: not a video extension, so Pod's
/// cron (pod-api.md §3.1 point 4) leaves it alone.
pub const PART_EXTENSION: &str = "bbb-pod-live-part";
/// Longest `internal_meeting_id` accepted as a file stem (file systems allow 255 bytes;
/// we add `.mkv` and, for the temporary copy, a dot, the live id and [`PART_EXTENSION`]).
pub const MAX_STEM_BYTES: usize = 200;

const PENDING_DIR_MODE: u32 = 0o700;
const HANDOVER_MODE: u32 = 0o600;
/// Pod's cron runs as another user (www-data) and must read the file.
const DELIVERED_MODE: u32 = 0o644;
/// Bound on the `-N` suffixes tried when parking a file whose name is taken.
const MAX_SUFFIX: u32 = 10_000;

/// Why a hand-over was refused; the caller may downcast an [`anyhow::Error`] to this to
/// pick its advice (see [`advice`]). Other failures are I/O errors with their context.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("recordings_dir {} already has {name}; not overwritten", dir.display())]
    NotOverwritten { dir: PathBuf, name: String },
    #[error("live {live}: Pod has not answered the meeting's internal_meeting_id yet")]
    NoInternalId { live: LiveId },
    #[error("live {live}: internal_meeting_id {id:?} refused as a file name: {reason}")]
    BadInternalId {
        live: LiveId,
        id: String,
        reason: String,
    },
    #[error(
        "live {live}: internal_meeting_id is already {old:?}, Pod now answers {new:?}; not changed"
    )]
    InternalIdChanged {
        live: LiveId,
        old: String,
        new: String,
    },
    #[error("live {live}: no mkv file in {}", dir.display())]
    NoRecording { live: LiveId, dir: PathBuf },
}

/// What the admin can do about a failed [`PendingStore::deliver`] or
/// [`PendingStore::set_internal_id`], for the error mail.
pub fn advice(err: &anyhow::Error) -> String {
    match err.downcast_ref::<HandoverError>() {
        Some(HandoverError::NotOverwritten { .. }) => {
            "another file has this name in recordings_dir \
             (an earlier recording of the same meeting not yet taken by Pod's cron?); once Pod \
             has moved it or it has been removed, the next tick delivers this one; the \
             recording is kept meanwhile"
                .into()
        }
        Some(HandoverError::NoInternalId { .. }) => {
            "check that Pod answers the PATCH of the meeting; the next tick retries".into()
        }
        Some(HandoverError::BadInternalId { .. } | HandoverError::InternalIdChanged { .. }) => {
            "check the meeting in Pod's admin; the recording is kept in the pending \
             directory and can be copied by hand"
                .into()
        }
        Some(HandoverError::NoRecording { dir, .. }) => format!(
            "the recording may still be in the slot's videodata; remove {} if no recording \
             is expected",
            dir.display()
        ),
        None => "check that recordings_dir is mounted, writable and not full; the recording \
                 stays on local disk and the next tick retries"
            .into(),
    }
}

/// `internal_meeting_id` comes from Pod and becomes a file name in `recordings_dir`:
/// only a plain file name is accepted (no path, no hidden or option-like name, no
/// control character, at most [`MAX_STEM_BYTES`] bytes).
pub fn valid_stem(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("it is empty".into());
    }
    if id.len() > MAX_STEM_BYTES {
        return Err(format!(
            "it is {} bytes long (at most {MAX_STEM_BYTES})",
            id.len()
        ));
    }
    if id == "." || id == ".." {
        return Err("it is a directory name".into());
    }
    if id.contains('/') {
        return Err("it contains '/'".into());
    }
    // Not a separator on Linux, but one on the CIFS shares recordings_dir may live on.
    if id.contains('\\') {
        return Err("it contains '\\'".into());
    }
    if id.chars().any(char::is_control) {
        return Err("it contains a control character".into());
    }
    if id.starts_with('.') {
        return Err("it starts with '.' (hidden file)".into());
    }
    if id.starts_with('-') {
        return Err("it starts with '-'".into());
    }
    Ok(())
}

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
    /// The published path, once delivered and checked.
    #[serde(default)]
    pub delivered: Option<String>,
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
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
}

impl Pending {
    pub fn state(&self) -> PendingState {
        let h = &self.handover;
        if h.delivered.is_none() {
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

    /// The tick has something to do with it (every state but [`PendingState::Leftovers`]).
    pub fn needs_work(&self) -> bool {
        self.state() != PendingState::Leftovers
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

/// What [`PendingStore::deliver`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub live: LiveId,
    /// `<recordings_dir>/<internal_meeting_id>.mkv`.
    pub published: PathBuf,
    /// The delivered file's name in the pending directory, when known.
    pub source: Option<String>,
    pub size: Option<u64>,
    /// Other mkv files of the live, left in the pending directory (never deleted).
    pub kept: Vec<RecordingFile>,
    /// This call finished a delivery an earlier, interrupted call had published.
    pub resumed: bool,
    /// The pending directory was removed (nothing was left in it).
    pub dir_removed: bool,
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

    /// Moves every mkv of `videodata` into the live's pending directory (written first:
    /// its `handover.json`), never overwriting a file there (a taken name gets a `-N`
    /// suffix) and never deleting anything. Calling it again after a crash finishes the
    /// job; an existing pending directory is completed. `None` when neither the slot nor
    /// the store has a recording for this live.
    pub fn park(
        &self,
        live: LiveId,
        meeting_url: &str,
        user_url: &str,
        videodata: &Path,
    ) -> Result<Option<Pending>> {
        let found = match mkv_files(videodata) {
            Ok(found) => found,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("listing {}", videodata.display()));
            }
        };
        if found.is_empty() {
            return self.find(live);
        }
        let dir = self.live_dir(live);
        self.create_dir(&dir)?;
        match read_handover(&dir)? {
            Some(h) if h.live_id != live => {
                bail!(
                    "{} belongs to live {}, not {live}",
                    dir.join(HANDOVER_FILE).display(),
                    h.live_id
                );
            }
            Some(_) => debug!(live, "completing an earlier park"),
            None => save_handover(
                &dir,
                &Handover {
                    live_id: live,
                    meeting_url: meeting_url.to_owned(),
                    user_url: user_url.to_owned(),
                    parked_at: Utc::now(),
                    internal_meeting_id: None,
                    delivering: None,
                    renaming_dev: None,
                    delivered: None,
                    delivered_at: None,
                },
            )?,
        }
        for file in &found {
            let target = move_without_overwriting(&file.path, &dir, &file.name)?;
            info!(live, from = %file.path.display(), to = %target.display(), size = file.size,
                "recording parked");
        }
        sync_dir(&dir)?;
        sync_dir(videodata)?;
        self.find(live)
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
    pub fn set_internal_id(&self, pending: &Pending, id: &str) -> Result<()> {
        let live = pending.live;
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

    /// Hands the live's largest mkv over to Pod as `<recordings_dir>/<internal_meeting_id>.mkv`
    /// (see the module documentation); the other mkv files stay in the pending directory.
    ///
    /// Steps: (1) copy to `.<id>.mkv.live-<live>.bbb-pod-live-part` in `recordings_dir`,
    /// (2) fsync it, (3) publish with `link(2)`, which fails rather than replace a file
    /// (or, where hard links are unsupported, a rename that does not replace either),
    /// (4) fsync `recordings_dir`, (5) check the size, (6) record `delivered` in
    /// `handover.json`, (7) remove the temporary name and the source.
    ///
    /// Recording `delivered` (6) comes before removing the temporary name (7): as long
    /// as the temporary name exists, its link count tells whether step 3 happened, even
    /// after Pod's cron moved the published file away (a rename keeps the inode).
    /// The remaining window: a crash after `link` and before step 6, *and* Pod's cron
    /// taking the file in between by copy + unlink (a move across file systems) leaves
    /// the temporary name with one link: it is redone and Pod gets the recording twice.
    /// Twice, never zero times.
    pub fn deliver(&self, pending: &Pending, recordings_dir: &Path) -> Result<Delivery> {
        self.deliver_with(pending, recordings_dir, Faults::default())
    }

    fn deliver_with(
        &self,
        pending: &Pending,
        recordings_dir: &Path,
        faults: Faults,
    ) -> Result<Delivery> {
        let dir = &pending.dir;
        let live = pending.live;
        // The caller's copy may be stale: disk is the truth.
        let mut h = read_handover(dir)?
            .with_context(|| format!("{} has no {HANDOVER_FILE}", dir.display()))?;
        if h.delivered.is_some() {
            return self.finish(live, dir, &h, recordings_dir, true, faults);
        }
        let id = h
            .internal_meeting_id
            .clone()
            .ok_or(HandoverError::NoInternalId { live })?;
        valid_stem(&id).map_err(|reason| HandoverError::BadInternalId {
            live,
            id: id.clone(),
            reason,
        })?;
        let target = Target::new(recordings_dir, &id, live);
        let (published, part) = (&target.published, &target.part);
        let files = mkv_files(dir).with_context(|| format!("listing {}", dir.display()))?;

        // The source: the one an earlier attempt chose if still there, else the largest.
        let chosen = h
            .delivering
            .as_deref()
            .and_then(|n| files.iter().find(|f| f.name == n));
        let source = match chosen {
            Some(f) => f.clone(),
            None => {
                let f = files
                    .first()
                    .cloned()
                    .ok_or_else(|| HandoverError::NoRecording {
                        live,
                        dir: dir.clone(),
                    })?;
                h.delivering = Some(f.name.clone());
                h.renaming_dev = None;
                save_handover(dir, &h)?;
                faults.kill(Step::Chosen)?;
                f
            }
        };

        // An earlier attempt may have been interrupted: find out how far it went.
        let dir_meta = fs::metadata(recordings_dir)
            .with_context(|| format!("recordings_dir {} unavailable", recordings_dir.display()))?;
        if !dir_meta.is_dir() {
            bail!(
                "recordings_dir {} is not a directory",
                recordings_dir.display()
            );
        }
        match fs::symlink_metadata(part) {
            Ok(m) if is_our_part(&m) && m.nlink() >= 2 => {
                info!(live, part = %part.display(), "resuming a delivery: already published");
                return self.complete(dir, h, &source, &target, true, faults);
            }
            Ok(m) => {
                debug!(live, part = %part.display(), nlink = m.nlink(),
                    "leftover temporary copy: redone");
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if let Some(dev) = h.renaming_dev {
                    if dev != dir_meta.dev() {
                        bail!(
                            "recordings_dir {} is not on the file system it was on when the \
                             delivery began (share not mounted?)",
                            recordings_dir.display()
                        );
                    }
                    info!(live, "resuming a delivery: already published by rename");
                    return self.complete(dir, h, &source, &target, true, faults);
                }
            }
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", part.display()));
            }
        }
        if h.renaming_dev.is_some() {
            // The temporary copy is still there: the rename did not happen.
            h.renaming_dev = None;
            save_handover(dir, &h)?;
        }

        // Refuse before copying gigabytes when the name is taken.
        if exists(published)? {
            remove_if_exists(part)?;
            return Err(not_overwritten(recordings_dir, &id).into());
        }
        // (1), (2)
        if let Err(e) = copy_to_part(&source, part) {
            if let Err(cleanup) = remove_if_exists(part) {
                warn!(live, part = %part.display(), error = %format!("{cleanup:#}"),
                    "could not remove a partial copy");
            }
            return Err(e);
        }
        faults.kill(Step::Copied)?;
        // (3)
        let linked = if faults.no_hard_links {
            Err(io::Error::from_raw_os_error(Errno::EPERM as i32))
        } else {
            fs::hard_link(part, published)
        };
        match linked {
            Ok(()) => {}
            // An NFS client may replay a LINK that succeeded and get EEXIST back: the
            // published name is then our own inode.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && same_file(part, published)? => {
                debug!(live, error = %e, "link reported EEXIST but the file is ours");
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                remove_if_exists(part)?;
                return Err(not_overwritten(recordings_dir, &id).into());
            }
            Err(e) if links_unsupported(&e) => {
                debug!(live, error = %e, "hard links unsupported in recordings_dir: rename");
                h.renaming_dev = Some(dir_meta.dev());
                save_handover(dir, &h)?;
                faults.kill(Step::Renaming)?;
                match rename_noreplace(part, published) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        // Certainly not renamed: forget the mark before removing the copy.
                        h.renaming_dev = None;
                        save_handover(dir, &h)?;
                        remove_if_exists(part)?;
                        return Err(not_overwritten(recordings_dir, &id).into());
                    }
                    // Whether the rename happened is unknown (a network file system may
                    // fail after doing it): everything stays as is, and the next call
                    // tells by whether the temporary copy still exists.
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("renaming {} to {}", part.display(), published.display())
                        });
                    }
                }
            }
            // Whether the link was made is unknown: the temporary copy stays, and its link
            // count tells the next call.
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("linking {} to {}", part.display(), published.display())
                });
            }
        }
        faults.kill(Step::Published)?;
        // (4)
        sync_shared_dir(recordings_dir)?;
        faults.kill(Step::Synced)?;
        self.complete(dir, h, &source, &target, false, faults)
    }

    /// Steps 5 and 6 once the file is published, then [`Self::finish`].
    fn complete(
        &self,
        dir: &Path,
        mut h: Handover,
        source: &RecordingFile,
        target: &Target,
        resumed: bool,
        faults: Faults,
    ) -> Result<Delivery> {
        let live = h.live_id;
        let (published, part) = (&target.published, &target.part);
        // (5) The published name, or the temporary one (same inode) if Pod's cron already
        // moved the published file; if both are gone, Pod took it whole: it was checked
        // before publishing.
        let size = match fs::metadata(published) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == ErrorKind::NotFound => match fs::metadata(part) {
                Ok(m) => Some(m.len()),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("reading {}", part.display())),
            },
            Err(e) => return Err(e).with_context(|| format!("reading {}", published.display())),
        };
        let size_ok = size.is_none_or(|s| s == source.size);
        // (6) Published is published: recorded even when the size is wrong, so that it is
        // never delivered twice; the source is then kept (no longer `delivering`).
        h.delivered = Some(published.display().to_string());
        h.delivered_at = Some(Utc::now());
        h.renaming_dev = None;
        if !size_ok {
            h.delivering = None;
        }
        save_handover(dir, &h)?;
        faults.kill(Step::Recorded)?;
        if !size_ok {
            bail!(
                "live {live}: {} has {} bytes, the recording {} has {}; the recording is kept in {}",
                published.display(),
                size.unwrap_or(0),
                source.name,
                source.size,
                dir.display()
            );
        }
        debug!(live, file = %published.display(), size = source.size, "recording published");
        self.finish(live, dir, &h, &target.recordings_dir, resumed, faults)
    }

    /// Step 7 of a recorded delivery: removes the temporary name, the delivered source,
    /// and the pending directory when nothing else is left in it.
    fn finish(
        &self,
        live: LiveId,
        dir: &Path,
        h: &Handover,
        recordings_dir: &Path,
        resumed: bool,
        faults: Faults,
    ) -> Result<Delivery> {
        let published = h
            .delivered
            .as_deref()
            .map(PathBuf::from)
            .unwrap_or_default();
        if let Some(id) = h.internal_meeting_id.as_deref() {
            let part = part_path(recordings_dir, id, live);
            if remove_if_exists(&part)? {
                sync_shared_dir(recordings_dir)?;
            }
            faults.kill(Step::PartRemoved)?;
        }
        let mut size = None;
        if let Some(name) = h.delivering.as_deref() {
            let source = dir.join(name);
            if let Ok(m) = fs::symlink_metadata(&source) {
                size = Some(m.len());
            }
            if remove_if_exists(&source)? {
                sync_dir(dir)?;
            }
            faults.kill(Step::SourceRemoved)?;
        }
        let pending = load(live, dir)?;
        let dir_removed = pending.files.is_empty() && pending.others.is_empty();
        if dir_removed {
            remove_if_exists(&dir.join(HANDOVER_FILE))?;
            remove_if_exists(&dir.join(format!(".{HANDOVER_FILE}.tmp")))?;
            fs::remove_dir(dir).with_context(|| format!("removing {}", dir.display()))?;
            sync_dir(&self.root)?;
        } else if !pending.files.is_empty() {
            warn!(live, dir = %dir.display(), kept = pending.files.len(),
                "other recordings of this live kept for the admin");
        }
        Ok(Delivery {
            live,
            published,
            source: h.delivering.clone(),
            size,
            kept: pending.files,
            resumed,
            dir_removed,
        })
    }

    fn create_dir(&self, dir: &Path) -> Result<()> {
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

/// Checks that `recordings_dir` can take a delivery now: a writable directory (a probe
/// file is created and removed). For `check`.
pub fn check_recordings_dir(recordings_dir: &Path) -> Result<()> {
    let meta = fs::metadata(recordings_dir)
        .with_context(|| format!("recordings_dir {} unavailable", recordings_dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "recordings_dir {} is not a directory",
            recordings_dir.display()
        );
    }
    let probe = recordings_dir.join(format!(".probe.{}.{PART_EXTENSION}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .with_context(|| format!("creating a file in {}", recordings_dir.display()))?;
    fs::remove_file(&probe).with_context(|| format!("removing {}", probe.display()))
}

/// `1.3 GiB`, for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "live {}: {}", self.live, self.published.display())?;
        if let Some(size) = self.size {
            write!(f, " ({})", human_size(size))?;
        }
        if !self.kept.is_empty() {
            let names: Vec<&str> = self.kept.iter().map(|k| k.name.as_str()).collect();
            write!(f, "; kept: {}", names.join(", "))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// File-system steps
// ---------------------------------------------------------------------------

/// Test hooks of a delivery; `Faults::default()` (none) in production.
#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    /// Behave as on a share without hard links.
    no_hard_links: bool,
    /// Stop dead after this step, as a SIGKILL would: no clean-up runs.
    kill_at: Option<Step>,
}

/// The points between two steps of a delivery where a process can die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
enum Step {
    Chosen,
    Copied,
    Renaming,
    Published,
    Synced,
    Recorded,
    PartRemoved,
    SourceRemoved,
}

impl Step {
    #[cfg(test)]
    const ALL: [Step; 8] = [
        Step::Chosen,
        Step::Copied,
        Step::Renaming,
        Step::Published,
        Step::Synced,
        Step::Recorded,
        Step::PartRemoved,
        Step::SourceRemoved,
    ];
}

impl Faults {
    fn kill(&self, step: Step) -> Result<()> {
        if self.kill_at == Some(step) {
            bail!("simulated kill after step {step:?}");
        }
        Ok(())
    }
}

/// The names a delivery uses in `recordings_dir`.
struct Target {
    recordings_dir: PathBuf,
    /// `<id>.mkv`, what Pod's cron takes.
    published: PathBuf,
    /// The temporary copy, which Pod's cron ignores.
    part: PathBuf,
}

impl Target {
    fn new(recordings_dir: &Path, id: &str, live: LiveId) -> Self {
        Target {
            recordings_dir: recordings_dir.to_owned(),
            published: recordings_dir.join(format!("{id}.mkv")),
            part: part_path(recordings_dir, id, live),
        }
    }
}

fn part_path(recordings_dir: &Path, id: &str, live: LiveId) -> PathBuf {
    // The live id keeps two servers sharing recordings_dir apart even for one meeting.
    recordings_dir.join(format!(".{id}.mkv.live-{live}.{PART_EXTENSION}"))
}

fn not_overwritten(recordings_dir: &Path, id: &str) -> HandoverError {
    HandoverError::NotOverwritten {
        dir: recordings_dir.to_owned(),
        name: format!("{id}.mkv"),
    }
}

/// A temporary copy we made: a regular file of ours. Anything else under that name
/// (a symbolic link, someone else's file) is not trusted to prove a publication.
fn is_our_part(m: &fs::Metadata) -> bool {
    m.file_type().is_file() && m.uid() == nix::unistd::geteuid().as_raw()
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

fn read_handover(dir: &Path) -> Result<Option<Handover>> {
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

fn save_handover(dir: &Path, h: &Handover) -> Result<()> {
    let text = serde_json::to_vec_pretty(h).context("serializing handover.json")?;
    write_atomic(&dir.join(HANDOVER_FILE), &text, HANDOVER_MODE)
}

fn load(live: LiveId, dir: &Path) -> Result<Pending> {
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

/// Moves `from` into `dir` as `name`, or `<stem>-N.mkv` when taken; never replaces a file.
fn move_without_overwriting(from: &Path, dir: &Path, name: &str) -> Result<PathBuf> {
    let path = Path::new(name);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "mkv".to_owned());
    for n in 0..=MAX_SUFFIX {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}.{ext}"))
        };
        match rename_noreplace(from, &candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("moving {} to {}", from.display(), candidate.display())
                });
            }
        }
    }
    bail!(
        "moving {}: {MAX_SUFFIX} names taken in {}",
        from.display(),
        dir.display()
    )
}

/// `rename` that fails with `AlreadyExists` rather than replace `to`.
/// `renameat2(RENAME_NOREPLACE)` where the file system has it; elsewhere (CIFS, NFS,
/// old kernels) a check then a rename: the tick's lock makes us the only writer of the
/// pending directories, and in `recordings_dir` only Pod's cron, which never creates
/// files there.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{RenameFlags, renameat2};
        match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    match fs::symlink_metadata(to) {
        Ok(_) => Err(io::Error::from(ErrorKind::AlreadyExists)),
        Err(e) if e.kind() == ErrorKind::NotFound => fs::rename(from, to),
        Err(e) => Err(e),
    }
}

/// `link(2)` refused because the file system has no hard links (some CIFS shares, FAT).
fn links_unsupported(e: &io::Error) -> bool {
    e.raw_os_error().is_some_and(|code| {
        matches!(
            Errno::from_raw(code),
            Errno::EPERM | Errno::EOPNOTSUPP | Errno::EXDEV | Errno::ENOSYS | Errno::EMLINK
        )
    })
}

/// Both names lead to the same inode.
fn same_file(a: &Path, b: &Path) -> Result<bool> {
    let (ma, mb) = (
        fs::symlink_metadata(a).with_context(|| format!("reading {}", a.display()))?,
        fs::symlink_metadata(b).with_context(|| format!("reading {}", b.display()))?,
    );
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Removes a file (never follows a symbolic link); `false` when it was not there.
fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// (1) and (2): a fresh copy (any leftover removed first, and `create_new` so that a
/// symbolic link planted under that name is never written through), mode 0644, synced,
/// its size checked against the source.
fn copy_to_part(source: &RecordingFile, part: &Path) -> Result<()> {
    remove_if_exists(part)?;
    let mut input =
        File::open(&source.path).with_context(|| format!("opening {}", source.path.display()))?;
    let expected = input
        .metadata()
        .with_context(|| format!("reading {}", source.path.display()))?
        .len();
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(DELIVERED_MODE)
        .open(part)
        .with_context(|| format!("creating {}", part.display()))?;
    // The umask may have narrowed the mode; some shares refuse chmod (their mount
    // options decide), which is not a reason to keep the recording from Pod.
    if let Err(e) = output.set_permissions(fs::Permissions::from_mode(DELIVERED_MODE)) {
        warn!(file = %part.display(), error = %e, "could not set mode 0644");
    }
    let copied = io::copy(&mut input, &mut output)
        .with_context(|| format!("copying {} to {}", source.path.display(), part.display()))?;
    output
        .sync_all()
        .with_context(|| format!("flushing {}", part.display()))?;
    let written = output
        .metadata()
        .with_context(|| format!("reading {}", part.display()))?
        .len();
    if copied != expected || written != expected {
        bail!(
            "copying {} to {}: {written} bytes written, {expected} expected",
            source.path.display(),
            part.display()
        );
    }
    Ok(())
}

/// fsync of `recordings_dir`; some network file systems refuse fsync on a directory
/// (EINVAL), where the server commits the directory itself.
fn sync_shared_dir(dir: &Path) -> Result<()> {
    match sync_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) => {
            let refused = e
                .root_cause()
                .downcast_ref::<io::Error>()
                .and_then(io::Error::raw_os_error)
                .is_some_and(|c| matches!(Errno::from_raw(c), Errno::EINVAL | Errno::EOPNOTSUPP));
            if refused {
                debug!(dir = %dir.display(), "directory fsync not supported");
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    struct Fixture {
        _tmp: TempDir,
        store: PendingStore,
        videodata: PathBuf,
        recordings: PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().join("base");
        let videodata = base.join("bbb-live-streaming1/videodata");
        fs::create_dir_all(&videodata).expect("videodata");
        let recordings = tmp.path().join("pod");
        fs::create_dir_all(&recordings).expect("recordings_dir");
        Fixture {
            store: PendingStore::new(&base),
            videodata,
            recordings,
            _tmp: tmp,
        }
    }

    fn write(path: &Path, content: &[u8]) {
        fs::write(path, content).expect("write");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    const NO_LINKS: Faults = Faults {
        no_hard_links: true,
        kill_at: None,
    };

    const ID: &str = "8f2a5b0c1d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a-1714639090123";

    impl Fixture {
        fn park(&self, live: LiveId) -> Pending {
            self.store
                .park(
                    live,
                    "https://pod/rest/bbb_meeting/7/",
                    "https://pod/rest/users/3/",
                    &self.videodata,
                )
                .expect("park")
                .expect("something parked")
        }

        /// Parks `files` for live 42 and gives it ID.
        fn ready(&self, files: &[(&str, &[u8])]) -> Pending {
            for (name, content) in files {
                write(&self.videodata.join(name), content);
            }
            let p = self.park(42);
            self.store.set_internal_id(&p, ID).expect("set id");
            self.store.find(42).expect("find").expect("pending")
        }

        fn published(&self) -> PathBuf {
            self.recordings.join(format!("{ID}.mkv"))
        }

        fn part(&self) -> PathBuf {
            part_path(&self.recordings, ID, 42)
        }
    }

    #[test]
    fn park_moves_every_mkv_and_leaves_other_files() {
        let f = fixture();
        write(&f.videodata.join("meeting-20240502100000.mkv"), b"first");
        write(
            &f.videodata.join("meeting-20240502110000.mkv"),
            b"second, longer",
        );
        write(&f.videodata.join("notes.txt"), b"not a recording");
        let p = f.park(42);
        assert_eq!(names(&f.videodata), vec!["notes.txt"]);
        assert_eq!(p.live, 42);
        assert_eq!(p.files.len(), 2);
        assert_eq!(
            p.files[0].name, "meeting-20240502110000.mkv",
            "largest first"
        );
        assert_eq!(p.handover.meeting_url, "https://pod/rest/bbb_meeting/7/");
        assert_eq!(p.handover.user_url, "https://pod/rest/users/3/");
        assert_eq!(p.state(), PendingState::WaitingForPod);
        assert_eq!(
            fs::read(p.dir.join("meeting-20240502100000.mkv")).expect("read"),
            b"first"
        );
        let mode = |path: &Path| fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&p.dir), 0o700);
        assert_eq!(mode(&p.dir.join(HANDOVER_FILE)), 0o600);
    }

    #[test]
    fn park_without_mkv_is_none() {
        let f = fixture();
        write(&f.videodata.join("notes.txt"), b"x");
        let got = f.store.park(1, "m", "u", &f.videodata).expect("park");
        assert!(got.is_none());
        assert!(!f.store.root().exists(), "nothing written");
        let missing = f.videodata.join("nope");
        assert!(f.store.park(1, "m", "u", &missing).expect("park").is_none());
    }

    #[test]
    fn park_twice_completes_and_never_overwrites() {
        let f = fixture();
        write(&f.videodata.join("meeting-1.mkv"), b"one");
        let first = f.park(42);
        let parked_at = first.handover.parked_at;
        // A crash after the metadata: the same name in the slot again (container restarted).
        write(&f.videodata.join("meeting-1.mkv"), b"two!");
        write(&f.videodata.join("meeting-2.mkv"), b"three");
        let p = f.park(42);
        assert!(names(&f.videodata).is_empty());
        assert_eq!(
            p.handover.parked_at, parked_at,
            "metadata kept, not rewritten"
        );
        let mut got: Vec<(String, Vec<u8>)> = p
            .files
            .iter()
            .map(|x| (x.name.clone(), fs::read(&x.path).expect("read")))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("meeting-1-1.mkv".to_owned(), b"two!".to_vec()),
                ("meeting-1.mkv".to_owned(), b"one".to_vec()),
                ("meeting-2.mkv".to_owned(), b"three".to_vec()),
            ]
        );
        // Nothing left in the slot: park again returns the pending directory as is.
        let again = f.park(42);
        assert_eq!(again.files.len(), 3);
    }

    #[test]
    fn park_after_a_crash_before_any_move() {
        let f = fixture();
        write(&f.videodata.join("meeting-1.mkv"), b"one");
        // Simulate: the metadata was written, then the process died.
        let dir = f.store.live_dir(42);
        fs::create_dir_all(&dir).expect("dir");
        let h = Handover {
            live_id: 42,
            meeting_url: "m".into(),
            user_url: "u".into(),
            parked_at: Utc::now(),
            internal_meeting_id: Some(ID.into()),
            delivering: None,
            renaming_dev: None,
            delivered: None,
            delivered_at: None,
        };
        save_handover(&dir, &h).expect("save");
        let p = f.park(42);
        assert_eq!(p.handover, h);
        assert_eq!(p.files.len(), 1);
        assert!(names(&f.videodata).is_empty());
    }

    #[test]
    fn deliver_happy_path() {
        let f = fixture();
        let content = b"matroska bytes".repeat(1000);
        let p = f.ready(&[("meeting-1.mkv", &content)]);
        assert_eq!(p.state(), PendingState::ToDeliver);
        assert_eq!(f.store.list().expect("list").pending.len(), 1);
        let d = f.store.deliver(&p, &f.recordings).expect("deliver");
        assert_eq!(d.published, f.published());
        assert_eq!(d.source.as_deref(), Some("meeting-1.mkv"));
        assert!(d.kept.is_empty());
        assert!(!d.resumed);
        assert!(d.dir_removed);
        assert_eq!(fs::read(f.published()).expect("read"), content);
        assert_eq!(
            names(&f.recordings),
            vec![format!("{ID}.mkv")],
            "no tmp left"
        );
        let mode = fs::metadata(f.published())
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644);
        assert!(!p.dir.exists(), "pending directory removed");
        assert!(f.store.list().expect("list").pending.is_empty());
    }

    #[test]
    fn several_mkv_the_largest_is_delivered_the_others_kept() {
        let f = fixture();
        let p = f.ready(&[
            ("meeting-1.mkv", b"short"),
            ("meeting-2.mkv", b"the longest of all"),
            ("meeting-3.mkv", b"medium size"),
        ]);
        let d = f.store.deliver(&p, &f.recordings).expect("deliver");
        assert_eq!(d.source.as_deref(), Some("meeting-2.mkv"));
        assert_eq!(
            fs::read(f.published()).expect("read"),
            b"the longest of all"
        );
        let kept: Vec<&str> = d.kept.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(kept, vec!["meeting-3.mkv", "meeting-1.mkv"]);
        assert!(!d.dir_removed);
        assert_eq!(
            names(&p.dir),
            vec!["handover.json", "meeting-1.mkv", "meeting-3.mkv"]
        );
        // Delivered with leftovers: shown by status, not worked on by the tick.
        let scan = f.store.scan().expect("scan");
        assert_eq!(scan.pending.len(), 1);
        assert_eq!(scan.pending[0].state(), PendingState::Leftovers);
        assert!(scan.pending[0].summary().contains("other files kept"));
        assert!(f.store.list().expect("list").pending.is_empty());
        // Delivering again changes nothing and delivers nothing else.
        let again = f
            .store
            .deliver(&scan.pending[0], &f.recordings)
            .expect("again");
        assert_eq!(again.kept.len(), 2);
        assert_eq!(names(&f.recordings), vec![format!("{ID}.mkv")]);
    }

    #[test]
    fn an_existing_file_in_recordings_dir_is_never_overwritten() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"ours")]);
        write(&f.published(), b"someone else's");
        let e = f.store.deliver(&p, &f.recordings).expect_err("refused");
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&format!("already has {ID}.mkv; not overwritten")),
            "{msg}"
        );
        assert!(matches!(
            e.downcast_ref::<HandoverError>(),
            Some(HandoverError::NotOverwritten { .. })
        ));
        assert!(advice(&e).contains("kept"));
        assert_eq!(fs::read(f.published()).expect("read"), b"someone else's");
        assert_eq!(names(&f.recordings), vec![format!("{ID}.mkv")]);
        assert_eq!(
            fs::read(p.dir.join("meeting-1.mkv")).expect("read"),
            b"ours"
        );
        // Once Pod has taken the other file, the next tick delivers ours.
        fs::remove_file(f.published()).expect("rm");
        f.store.deliver(&p, &f.recordings).expect("deliver");
        assert_eq!(fs::read(f.published()).expect("read"), b"ours");
    }

    #[test]
    fn recordings_dir_missing_keeps_the_source_then_succeeds() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"precious")]);
        fs::remove_dir(&f.recordings).expect("rmdir");
        let e = f.store.deliver(&p, &f.recordings).expect_err("unavailable");
        assert!(format!("{e:#}").contains("unavailable"), "{e:#}");
        assert!(advice(&e).contains("mounted"));
        assert_eq!(
            fs::read(p.dir.join("meeting-1.mkv")).expect("read"),
            b"precious"
        );
        fs::create_dir(&f.recordings).expect("mkdir");
        f.store.deliver(&p, &f.recordings).expect("deliver");
        assert_eq!(fs::read(f.published()).expect("read"), b"precious");
    }

    #[test]
    fn no_internal_id_yet_is_refused() {
        let f = fixture();
        write(&f.videodata.join("meeting-1.mkv"), b"x");
        let p = f.park(42);
        let e = f.store.deliver(&p, &f.recordings).expect_err("no id");
        assert!(matches!(
            e.downcast_ref::<HandoverError>(),
            Some(HandoverError::NoInternalId { live: 42 })
        ));
        assert!(p.dir.join("meeting-1.mkv").exists());
    }

    #[test]
    fn internal_id_is_validated_and_not_changed_once_set() {
        let f = fixture();
        write(&f.videodata.join("meeting-1.mkv"), b"x");
        let p = f.park(42);
        let e = f
            .store
            .set_internal_id(&p, "../etc/passwd")
            .expect_err("bad");
        assert!(format!("{e}").contains("refused"), "{e}");
        f.store.set_internal_id(&p, ID).expect("set");
        f.store.set_internal_id(&p, ID).expect("same again");
        let e = f
            .store
            .set_internal_id(&p, "other-id")
            .expect_err("changed");
        assert!(matches!(
            e.downcast_ref::<HandoverError>(),
            Some(HandoverError::InternalIdChanged { .. })
        ));
        let h = read_handover(&p.dir).expect("read").expect("some");
        assert_eq!(h.internal_meeting_id.as_deref(), Some(ID));
    }

    #[test]
    fn crash_leftover_part_with_one_link_is_redone() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"the real recording")]);
        write(&f.part(), b"half-wri");
        let d = f.store.deliver(&p, &f.recordings).expect("deliver");
        assert!(!d.resumed);
        assert_eq!(
            fs::read(f.published()).expect("read"),
            b"the real recording"
        );
        assert!(!f.part().exists());
        assert!(!p.dir.exists());
    }

    #[test]
    fn crash_after_the_link_is_finished_without_copying_again() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"0123456789")]);
        // State after a kill between link(2) and recording the delivery: source chosen,
        // copy published. The copy holds other bytes of the same size, so that a second
        // copy would show.
        let mut h = read_handover(&p.dir).expect("read").expect("some");
        h.delivering = Some("meeting-1.mkv".into());
        save_handover(&p.dir, &h).expect("save");
        write(&f.part(), b"ABCDEFGHIJ");
        fs::hard_link(f.part(), f.published()).expect("link");
        let ino = fs::metadata(f.published()).expect("meta").ino();
        let d = f.store.deliver(&p, &f.recordings).expect("deliver");
        assert!(d.resumed);
        assert_eq!(fs::read(f.published()).expect("read"), b"ABCDEFGHIJ");
        assert_eq!(fs::metadata(f.published()).expect("meta").ino(), ino);
        assert_eq!(names(&f.recordings), vec![format!("{ID}.mkv")]);
        assert!(!p.dir.exists(), "source removed once recorded");
    }

    #[test]
    fn crash_after_the_link_and_pod_already_moved_the_file() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"0123456789")]);
        let mut h = read_handover(&p.dir).expect("read").expect("some");
        h.delivering = Some("meeting-1.mkv".into());
        save_handover(&p.dir, &h).expect("save");
        write(&f.part(), b"0123456789");
        // Pod's cron renamed the published file into its storage: the inode keeps 2 links.
        let pod_storage = f.recordings.join("pod-media");
        fs::create_dir(&pod_storage).expect("mkdir");
        fs::hard_link(f.part(), pod_storage.join("taken.mkv")).expect("link");
        let d = f.store.deliver(&p, &f.recordings).expect("deliver");
        assert!(d.resumed);
        assert!(!f.published().exists(), "not delivered a second time");
        assert!(!f.part().exists());
        assert!(!p.dir.exists());
    }

    #[test]
    fn crash_after_recording_the_delivery_finishes_the_cleanup() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"0123456789")]);
        let mut h = read_handover(&p.dir).expect("read").expect("some");
        h.delivering = Some("meeting-1.mkv".into());
        h.delivered = Some(f.published().display().to_string());
        save_handover(&p.dir, &h).expect("save");
        write(&f.part(), b"0123456789");
        fs::hard_link(f.part(), f.published()).expect("link");
        assert_eq!(
            f.store.list().expect("list").pending[0].state(),
            PendingState::Finishing
        );
        let d = f.store.deliver(&p, &f.recordings).expect("deliver");
        assert!(d.resumed && d.dir_removed);
        assert_eq!(names(&f.recordings), vec![format!("{ID}.mkv")]);
    }

    #[test]
    fn without_hard_links_publishes_by_rename() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"no links here")]);
        let d = f
            .store
            .deliver_with(&p, &f.recordings, NO_LINKS)
            .expect("deliver");
        assert!(!d.resumed);
        assert_eq!(fs::read(f.published()).expect("read"), b"no links here");
        assert_eq!(names(&f.recordings), vec![format!("{ID}.mkv")]);
        assert!(!p.dir.exists());
        // And the rename path never overwrites either.
        let p = f.ready(&[("meeting-2.mkv", b"second")]);
        let e = f
            .store
            .deliver_with(&p, &f.recordings, NO_LINKS)
            .expect_err("refused");
        assert!(format!("{e}").contains("not overwritten"));
        assert_eq!(fs::read(f.published()).expect("read"), b"no links here");
        assert_eq!(names(&f.recordings), vec![format!("{ID}.mkv")]);
        let h = read_handover(&p.dir).expect("read").expect("some");
        assert_eq!(h.renaming_dev, None);
        assert!(p.dir.join("meeting-2.mkv").exists());
    }

    #[test]
    fn crash_after_a_rename_is_finished() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"0123456789")]);
        let dev = fs::metadata(&f.recordings).expect("meta").dev();
        let mut h = read_handover(&p.dir).expect("read").expect("some");
        h.delivering = Some("meeting-1.mkv".into());
        h.renaming_dev = Some(dev);
        save_handover(&p.dir, &h).expect("save");
        write(&f.published(), b"ABCDEFGHIJ");
        let d = f.store.deliver(&p, &f.recordings).expect("deliver");
        assert!(d.resumed);
        assert_eq!(fs::read(f.published()).expect("read"), b"ABCDEFGHIJ");
        assert!(!p.dir.exists());
    }

    #[test]
    fn crash_during_a_rename_on_another_device_is_not_taken_for_a_delivery() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"0123456789")]);
        let dev = fs::metadata(&f.recordings).expect("meta").dev();
        let mut h = read_handover(&p.dir).expect("read").expect("some");
        h.delivering = Some("meeting-1.mkv".into());
        h.renaming_dev = Some(dev.wrapping_add(1));
        save_handover(&p.dir, &h).expect("save");
        let e = f.store.deliver(&p, &f.recordings).expect_err("unmounted?");
        assert!(format!("{e}").contains("not mounted"), "{e}");
        assert!(p.dir.join("meeting-1.mkv").exists());
    }

    #[test]
    fn a_symlink_under_the_temporary_name_is_not_written_through() {
        let f = fixture();
        let p = f.ready(&[("meeting-1.mkv", b"recording")]);
        let victim = f.recordings.join("victim");
        write(&victim, b"do not touch");
        std::os::unix::fs::symlink(&victim, f.part()).expect("symlink");
        f.store.deliver(&p, &f.recordings).expect("deliver");
        assert_eq!(fs::read(&victim).expect("read"), b"do not touch");
        assert_eq!(fs::read(f.published()).expect("read"), b"recording");
    }

    #[test]
    fn valid_stem_cases() {
        assert_eq!(valid_stem(ID), Ok(()));
        assert_eq!(valid_stem("abc_DEF-123.4"), Ok(()));
        assert_eq!(valid_stem("réunion"), Ok(()));
        assert_eq!(valid_stem(&"a".repeat(200)), Ok(()));
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/abs",
            ".hidden",
            "-rf",
            "a\0b",
            "a\nb",
            "a\rb",
            "tab\there",
            "a\u{7f}",
            "a\\b",
        ] {
            assert!(valid_stem(bad).is_err(), "{bad:?} accepted");
        }
        let long = "a".repeat(300);
        let e = valid_stem(&long).expect_err("too long");
        assert!(e.contains("300 bytes"), "{e}");
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

    #[test]
    fn check_recordings_dir_probes() {
        let f = fixture();
        check_recordings_dir(&f.recordings).expect("ok");
        assert!(names(&f.recordings).is_empty());
        assert!(check_recordings_dir(&f.recordings.join("missing")).is_err());
    }

    #[test]
    fn rename_noreplace_refuses_to_replace() {
        let f = fixture();
        let (a, b) = (f.recordings.join("a"), f.recordings.join("b"));
        write(&a, b"a");
        write(&b, b"b");
        let e = rename_noreplace(&a, &b).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&b).expect("read"), b"b");
        rename_noreplace(&a, &f.recordings.join("c")).expect("free name");
    }

    /// A kill after every step, with and without hard links, with and without Pod's
    /// cron taking the published file (by rename, as on one file system) before the
    /// next call: Pod ends up with the recording exactly once, whole, and nothing of
    /// ours is left behind.
    #[test]
    fn a_kill_at_any_step_converges_to_exactly_one_delivery() {
        let content = b"whole recording ".repeat(4096);
        for kill_at in Step::ALL {
            for no_hard_links in [false, true] {
                for pod_takes in [false, true] {
                    let case = format!(
                        "kill after {kill_at:?}, no links {no_hard_links}, pod takes {pod_takes}"
                    );
                    let f = fixture();
                    let p = f.ready(&[("meeting-1.mkv", &content), ("meeting-0.mkv", b"small")]);
                    let pod_storage = f.recordings.join("pod-media");
                    fs::create_dir(&pod_storage).expect("mkdir");
                    let pod_cron = |n: usize| {
                        if f.published().exists() {
                            fs::rename(f.published(), pod_storage.join(format!("{n}.mkv")))
                                .expect("pod takes");
                        }
                    };
                    let faults = Faults {
                        no_hard_links,
                        kill_at: Some(kill_at),
                    };
                    // The rename step only exists without hard links.
                    let killed = f.store.deliver_with(&p, &f.recordings, faults);
                    if kill_at != Step::Renaming || no_hard_links {
                        let e = killed.expect_err(&case);
                        assert!(format!("{e}").contains("simulated kill"), "{case}: {e:#}");
                    }
                    if pod_takes {
                        pod_cron(1);
                    }
                    let retry = Faults {
                        no_hard_links,
                        kill_at: None,
                    };
                    if let Some(p) = f.store.find(42).expect("find") {
                        let d = f.store.deliver_with(&p, &f.recordings, retry).expect(&case);
                        assert_eq!(d.kept.len(), 1, "{case}");
                    }
                    pod_cron(2);
                    let taken = names(&pod_storage);
                    assert_eq!(taken.len(), 1, "{case}: delivered {taken:?}");
                    let got = fs::read(pod_storage.join(&taken[0])).expect("read");
                    assert!(got == content, "{case}: content differs");
                    assert_eq!(names(&f.recordings), vec!["pod-media"], "{case}");
                    let left = f.store.find(42).expect("find").expect(&case);
                    assert_eq!(left.state(), PendingState::Leftovers, "{case}");
                    assert_eq!(
                        left.files
                            .iter()
                            .map(|x| x.name.as_str())
                            .collect::<Vec<_>>(),
                        vec!["meeting-0.mkv"],
                        "{case}"
                    );
                }
            }
        }
    }
}
