//! Small file-system helpers shared by the state, compose and metrics writers:
//! atomic, private (0600) writes that survive a crash as either the old or the new file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `contents` to `path` atomically: a temporary file beside it (mode `mode`),
/// fsync, rename over `path`, fsync of the directory.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    // `mode` only applies on creation: a leftover temporary file keeps its mode otherwise.
    fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    sync_dir(dir)
}

/// Mode of `base_dir` and `log_dir` when this tool creates them, as the package
/// creates `/var/lib/bbb-pod-live` and `/var/log/bbb-pod-live`: the same whoever makes
/// them. Nobody but their owner needs to enter them (the streamers' `videodata` is
/// bind-mounted by the Docker daemon, as root).
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents with mode [`PRIVATE_DIR_MODE`], whatever the
/// umask (a directory that exists keeps its mode).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let existed = dir.is_dir();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    if !existed {
        fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))
            .with_context(|| format!("setting the mode of {}", dir.display()))?;
    }
    Ok(())
}

/// fsync a directory, so that a rename or a new file in it is on disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one", 0o600).expect("first write");
        write_atomic(&p, b"two", 0o600).expect("second write");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
