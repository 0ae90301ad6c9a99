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
//!
//! The room, one file a concern:
//! - `mod.rs`: the names and modes on disk, [`HandoverError`] and its [`advice`], the
//!   rule for an `internal_meeting_id` ([`valid_stem`]), and the no-replace rename both
//!   steps move files with;
//! - `pending.rs`: the store itself ([`PendingStore`]): a live's pending directory, its
//!   `handover.json`, finding and listing them, recording the `internal_meeting_id`;
//! - `park.rs`: step one, [`PendingStore::park`];
//! - `join.rs`: the parts of a restarted streamer joined into one recording before step
//!   two ([`PendingStore::join_parts`]);
//! - `deliver.rs`: step two, [`PendingStore::deliver`] and its crash-safe steps, and the
//!   probe of `recordings_dir` for `check`;
//! - `admin.rs`: what cannot be handed over by itself — held for the admin, then bound
//!   to a name of the admin's choosing, or discarded (the `recordings` command).

mod admin;
mod deliver;
mod join;
mod park;
mod pending;
#[cfg(test)]
mod test_support;

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use anyhow::Result;
use nix::errno::Errno;

use crate::model::LiveId;

pub use deliver::{Delivery, check_recordings_dir};
pub use join::{JOINED_NAME, Joined, Joiner};
pub use pending::{
    Handover, Pending, PendingState, PendingStore, RecordingFile, Scan, Unreadable, mkv_files,
};

/// The metadata file of a pending directory.
pub const HANDOVER_FILE: &str = "handover.json";
/// Extension of the temporary copy in `recordings_dir`: not a video extension, so Pod's
/// cron (docs/pod-api.md, "Pod's drop folder") leaves it alone.
pub const PART_EXTENSION: &str = "bbb-pod-live-part";
/// Longest `internal_meeting_id` accepted as a file stem (file systems allow 255 bytes;
/// we add `.mkv` and, for the temporary copy, a dot, the live id and [`PART_EXTENSION`]).
pub const MAX_STEM_BYTES: usize = 200;

const PENDING_DIR_MODE: u32 = 0o700;
const HANDOVER_MODE: u32 = 0o600;
/// Pod's cron runs as another user (www-data) and must read the file.
const DELIVERED_MODE: u32 = 0o644;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::test_support::*;

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
}
