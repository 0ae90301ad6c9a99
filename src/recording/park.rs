//! Step one of a hand-over: [`PendingStore::park`] moves a stopped live's mkv files out
//! of its slot into the live's pending directory, so that the slot is free at once.
//! Not here: the pending directory's format (`pending.rs`), the delivery (`deliver.rs`).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tracing::{debug, info};

use crate::fsutil::sync_dir;
use crate::model::LiveId;

use super::pending::{Handover, Pending, PendingStore, mkv_files, read_handover, save_handover};
use super::{HANDOVER_FILE, rename_noreplace};

/// Bound on the `-N` suffixes tried when parking a file whose name is taken.
const MAX_SUFFIX: u32 = 10_000;

impl PendingStore {
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
            None => save_handover(&dir, &Handover::new(live, meeting_url, user_url))?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::PendingState;
    use crate::recording::test_support::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

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
            internal_meeting_id: Some(ID.into()),
            ..Handover::new(42, "m", "u")
        };
        save_handover(&dir, &h).expect("save");
        let p = f.park(42);
        assert_eq!(p.handover, h);
        assert_eq!(p.files.len(), 1);
        assert!(names(&f.videodata).is_empty());
    }
}
