//! The tick lock: two ticks started together never both act. It is an advisory
//! `flock` on `<base_dir>/.bbb-pod-live.lock`; the kernel releases it when the
//! holder exits, even by SIGKILL, so a lock left by a killed run never blocks.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Held while a tick or a stop acts; released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

fn open(base_dir: &Path) -> Result<File> {
    let path = base_dir.join(".bbb-pod-live.lock");
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))
}

/// `Ok(None)` when another run holds the lock.
pub fn try_lock(base_dir: &Path) -> Result<Option<Lock>> {
    let file = open(base_dir)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Lock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the lock file"),
    }
}

/// Waits up to `limit` for the lock (used by `stop`, which must not be skipped).
pub fn lock_within(base_dir: &Path, limit: Duration) -> Result<Lock> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(lock) = try_lock(base_dir)? {
            return Ok(lock);
        }
        if Instant::now() >= deadline {
            bail!(
                "another bbb-pod-live run held the lock for more than {}s",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = try_lock(dir.path()).expect("lock").expect("free");
        assert!(try_lock(dir.path()).expect("lock").is_none());
        drop(first);
        assert!(try_lock(dir.path()).expect("lock").is_some());
    }
}
