//! Step two of a hand-over: [`PendingStore::deliver`] publishes a parked recording in
//! Pod's drop folder under the name Pod gave, in steps that survive a kill between any
//! two, and [`check_recordings_dir`] probes that folder for `check`. Not here: choosing
//! the `internal_meeting_id` (the tick asks Pod), the pending directory's format
//! (`pending.rs`).

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use nix::errno::Errno;
use serde::Serialize;
use tracing::{debug, info, warn};

use crate::fsutil::sync_dir;
use crate::model::LiveId;

use super::pending::{
    Handover, Pending, PendingStore, RecordingFile, load, mkv_files, read_handover, save_handover,
};
use super::{
    DELIVERED_MODE, HANDOVER_FILE, HandoverError, PART_EXTENSION, human_size, rename_noreplace,
    valid_stem,
};

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

impl PendingStore {
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
        let source = choose_source(dir, live, &mut h, faults)?;

        // An earlier attempt may have been interrupted: find out how far it went.
        let dev = recordings_dir_dev(recordings_dir)?;
        if already_published(live, &h, &target, dev)? {
            return self.complete(dir, h, &source, &target, true, faults);
        }
        if h.renaming_dev.is_some() {
            // The temporary copy is still there: the rename did not happen.
            h.renaming_dev = None;
            save_handover(dir, &h)?;
        }

        // Refuse before copying gigabytes when the name is taken.
        if exists(&target.published)? {
            remove_if_exists(&target.part)?;
            return Err(not_overwritten(recordings_dir, &id).into());
        }
        // (1), (2)
        copy_or_clean_up(live, &source, &target.part)?;
        faults.kill(Step::Copied)?;
        // (3)
        publish(live, dir, &mut h, &target, &id, dev, faults)?;
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
        // The parts a joined recording holds go before it: while it is left, the
        // delivery is unfinished and this step is done again.
        let mut parts_removed = false;
        for name in &h.joined {
            parts_removed |= remove_if_exists(&dir.join(name))?;
        }
        if parts_removed {
            sync_dir(dir)?;
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
            sync_dir(self.root())?;
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
}

/// Checks that `recordings_dir` can take a delivery now: a writable directory (a probe
/// file is created and removed). For `check`.
pub fn check_recordings_dir(recordings_dir: &Path) -> Result<()> {
    recordings_dir_dev(recordings_dir)?;
    let probe = recordings_dir.join(format!(".probe.{}.{PART_EXTENSION}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .with_context(|| format!("creating a file in {}", recordings_dir.display()))?;
    fs::remove_file(&probe).with_context(|| format!("removing {}", probe.display()))
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
// The steps of a delivery, in their order
// ---------------------------------------------------------------------------

/// The source: the one an earlier attempt chose if still there, else the largest,
/// recorded as `delivering` before anything is copied.
fn choose_source(
    dir: &Path,
    live: LiveId,
    h: &mut Handover,
    faults: Faults,
) -> Result<RecordingFile> {
    let files = mkv_files(dir).with_context(|| format!("listing {}", dir.display()))?;
    let chosen = h
        .delivering
        .as_deref()
        .and_then(|n| files.iter().find(|f| f.name == n));
    if let Some(f) = chosen {
        return Ok(f.clone());
    }
    let f = files
        .first()
        .cloned()
        .ok_or_else(|| HandoverError::NoRecording {
            live,
            dir: dir.to_owned(),
        })?;
    h.delivering = Some(f.name.clone());
    // A part, not a joined recording: it holds no other part.
    h.joined.clear();
    h.renaming_dev = None;
    save_handover(dir, h)?;
    faults.kill(Step::Chosen)?;
    Ok(f)
}

/// The device `recordings_dir` is on; an error unless it is a directory.
fn recordings_dir_dev(recordings_dir: &Path) -> Result<u64> {
    let dir_meta = fs::metadata(recordings_dir)
        .with_context(|| format!("recordings_dir {} unavailable", recordings_dir.display()))?;
    if !dir_meta.is_dir() {
        bail!(
            "recordings_dir {} is not a directory",
            recordings_dir.display()
        );
    }
    Ok(dir_meta.dev())
}

/// Whether an interrupted attempt already published the file: the temporary copy has a
/// second link, or it is gone after a rename begun on this same file system (`dev`).
/// A rename begun on another device (the share not mounted) is an error.
fn already_published(live: LiveId, h: &Handover, target: &Target, dev: u64) -> Result<bool> {
    let part = &target.part;
    match fs::symlink_metadata(part) {
        Ok(m) if is_our_part(&m) && m.nlink() >= 2 => {
            info!(live, part = %part.display(), "resuming a delivery: already published");
            Ok(true)
        }
        Ok(m) => {
            debug!(live, part = %part.display(), nlink = m.nlink(),
                "leftover temporary copy: redone");
            Ok(false)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => match h.renaming_dev {
            Some(renaming) if renaming != dev => bail!(
                "recordings_dir {} is not on the file system it was on when the \
                 delivery began (share not mounted?)",
                target.recordings_dir.display()
            ),
            Some(_) => {
                info!(live, "resuming a delivery: already published by rename");
                Ok(true)
            }
            None => Ok(false),
        },
        Err(e) => Err(e).with_context(|| format!("reading {}", part.display())),
    }
}

/// (1) and (2) by [`copy_to_part`]; a partial copy is removed when it fails.
fn copy_or_clean_up(live: LiveId, source: &RecordingFile, part: &Path) -> Result<()> {
    let copied = copy_to_part(source, part);
    if copied.is_err()
        && let Err(cleanup) = remove_if_exists(part)
    {
        warn!(live, part = %part.display(), error = %format!("{cleanup:#}"),
            "could not remove a partial copy");
    }
    copied
}

/// (3): publishes the temporary copy as `<id>.mkv` with `link(2)`, which never replaces
/// a file, or where hard links are unsupported with a rename that does not either,
/// marked in `handover.json` first (`renaming_dev`).
fn publish(
    live: LiveId,
    dir: &Path,
    h: &mut Handover,
    target: &Target,
    id: &str,
    dev: u64,
    faults: Faults,
) -> Result<()> {
    let (published, part) = (&target.published, &target.part);
    let linked = if faults.no_hard_links {
        Err(io::Error::from_raw_os_error(Errno::EPERM as i32))
    } else {
        fs::hard_link(part, published)
    };
    match linked {
        Ok(()) => Ok(()),
        // An NFS client may replay a LINK that succeeded and get EEXIST back: the
        // published name is then our own inode.
        Err(e) if e.kind() == ErrorKind::AlreadyExists && same_file(part, published)? => {
            debug!(live, error = %e, "link reported EEXIST but the file is ours");
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            remove_if_exists(part)?;
            Err(not_overwritten(&target.recordings_dir, id).into())
        }
        Err(e) if links_unsupported(&e) => {
            debug!(live, error = %e, "hard links unsupported in recordings_dir: rename");
            h.renaming_dev = Some(dev);
            save_handover(dir, h)?;
            faults.kill(Step::Renaming)?;
            match rename_noreplace(part, published) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    // Certainly not renamed: forget the mark before removing the copy.
                    h.renaming_dev = None;
                    save_handover(dir, h)?;
                    remove_if_exists(part)?;
                    Err(not_overwritten(&target.recordings_dir, id).into())
                }
                // Whether the rename happened is unknown (a network file system may
                // fail after doing it): everything stays as is, and the next call
                // tells by whether the temporary copy still exists.
                Err(e) => Err(e).with_context(|| {
                    format!("renaming {} to {}", part.display(), published.display())
                }),
            }
        }
        // Whether the link was made is unknown: the temporary copy stays, and its link
        // count tells the next call.
        Err(e) => {
            Err(e).with_context(|| format!("linking {} to {}", part.display(), published.display()))
        }
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

pub(super) fn part_path(recordings_dir: &Path, id: &str, live: LiveId) -> PathBuf {
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
pub(super) fn remove_if_exists(path: &Path) -> Result<bool> {
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
    use crate::recording::test_support::*;
    use crate::recording::{PendingState, advice};

    const NO_LINKS: Faults = Faults {
        no_hard_links: true,
        kill_at: None,
    };

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
    fn check_recordings_dir_probes() {
        let f = fixture();
        check_recordings_dir(&f.recordings).expect("ok");
        assert!(names(&f.recordings).is_empty());
        assert!(check_recordings_dir(&f.recordings.join("missing")).is_err());
    }

    #[test]
    fn recordings_dir_must_be_a_directory_for_the_check_and_the_delivery() {
        let f = fixture();
        let file = f.recordings.join("a-file");
        write(&file, b"x");
        for err in [
            check_recordings_dir(&file).expect_err("a file"),
            recordings_dir_dev(&file).expect_err("a file"),
        ] {
            assert!(
                format!("{err:#}").ends_with("a-file is not a directory"),
                "{err:#}"
            );
        }
        let missing = f.recordings.join("missing");
        let err = recordings_dir_dev(&missing).expect_err("missing");
        assert!(
            format!("{err:#}").contains("missing unavailable"),
            "{err:#}"
        );
        let dev = recordings_dir_dev(&f.recordings).expect("a directory");
        assert_eq!(dev, fs::metadata(&f.recordings).expect("metadata").dev());
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
