//! Recordings the tick cannot hand over by itself (their meeting was deleted in Pod):
//! held for the admin ([`PendingStore::hold`]), then delivered under a name the admin
//! gives ([`PendingStore::bind`], then the usual [`PendingStore::deliver`]) or deleted
//! ([`PendingStore::discard`]). The `recordings` command (`src/commands/recordings.rs`) drives it.

use std::fs;

use anyhow::{Context, Result, bail};

use super::deliver::remove_if_exists;
use super::pending::{Pending, PendingStore, load, read_handover, save_handover};
use super::{HANDOVER_FILE, HandoverError, valid_stem};
use crate::fsutil::sync_dir;

impl PendingStore {
    /// Stops the tick from retrying this recording: it is kept for the admin, with
    /// `why` (listed by `status` and `recordings list`).
    pub fn hold(&self, pending: &Pending, why: &str) -> Result<()> {
        let mut h = read_handover(&pending.dir)?
            .with_context(|| format!("{} has no {HANDOVER_FILE}", pending.dir.display()))?;
        h.held = Some(why.to_owned());
        save_handover(&pending.dir, &h)
    }

    /// The admin's `recordings deliver <file> --as <id>`: `file` (a name in the pending
    /// directory) is the one to hand over, as `<id>.mkv`; the hold, if any, is lifted.
    /// Refused once delivered, or when another id is already bound (a delivery under
    /// that name may be under way).
    pub fn bind(&self, pending: &Pending, file: &str, id: &str) -> Result<()> {
        let live = pending.live;
        valid_stem(id).map_err(|reason| HandoverError::BadInternalId {
            live,
            id: id.to_owned(),
            reason,
        })?;
        let mut h = read_handover(&pending.dir)?
            .with_context(|| format!("{} has no {HANDOVER_FILE}", pending.dir.display()))?;
        if h.delivered.is_some() {
            bail!("live {live}: its recording was already delivered");
        }
        if let Some(old) = h.internal_meeting_id.as_deref()
            && old != id
        {
            return Err(HandoverError::InternalIdChanged {
                live,
                old: old.to_owned(),
                new: id.to_owned(),
            }
            .into());
        }
        if h.delivering.as_deref().is_some_and(|d| d != file) {
            // A delivery of another file may have copied a part under this id: it is
            // redone from the chosen file (the part is replaced, never published).
            h.renaming_dev = None;
        }
        h.internal_meeting_id = Some(id.to_owned());
        h.delivering = Some(file.to_owned());
        h.held = None;
        save_handover(&pending.dir, &h)
    }

    /// The admin's `recordings discard <file> --yes`: deletes `file` (a name in the
    /// pending directory); the directory goes too once nothing is left in it.
    pub fn discard(&self, pending: &Pending, file: &str) -> Result<()> {
        let path = pending.dir.join(file);
        if !remove_if_exists(&path)? {
            bail!("{} does not exist", path.display());
        }
        sync_dir(&pending.dir)?;
        let left = load(pending.live, &pending.dir)?;
        if left.files.is_empty() && left.others.is_empty() {
            remove_if_exists(&pending.dir.join(HANDOVER_FILE))?;
            remove_if_exists(&pending.dir.join(format!(".{HANDOVER_FILE}.tmp")))?;
            fs::remove_dir(&pending.dir)
                .with_context(|| format!("removing {}", pending.dir.display()))?;
            sync_dir(self.root())?;
        } else if left.files.is_empty() && left.handover.delivered.is_none() {
            // Nothing left to hand over: the tick must not look for it.
            let mut h = left.handover;
            h.held = Some("its files were discarded by the admin".into());
            save_handover(&pending.dir, &h)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::PendingState;
    use super::super::test_support::{ID, fixture, write};

    #[test]
    fn a_held_recording_waits_for_the_admin_then_is_delivered_under_the_given_id() {
        let f = fixture();
        write(&f.videodata.join("meeting-1.mkv"), b"the lecture");
        let p = f.park(42);
        f.store
            .hold(&p, "the meeting was deleted in Pod")
            .expect("hold");
        let p = f.store.find(42).expect("find").expect("pending");
        assert_eq!(p.state(), PendingState::Held);
        assert!(!p.needs_work(), "the tick leaves it alone");
        assert!(f.store.list().expect("list").pending.is_empty());
        assert!(p.summary().contains("deleted in Pod"), "{}", p.summary());
        f.store.bind(&p, "meeting-1.mkv", ID).expect("bind");
        let p = f.store.find(42).expect("find").expect("pending");
        assert_eq!(p.state(), PendingState::ToDeliver);
        assert!(
            f.store.bind(&p, "meeting-1.mkv", "other-id").is_err(),
            "id fixed once bound"
        );
        f.store.deliver(&p, &f.recordings).expect("deliver");
        assert_eq!(fs::read(f.published()).expect("published"), b"the lecture");
        assert!(f.store.find(42).expect("find").is_none());
    }

    #[test]
    fn a_discarded_recording_takes_its_directory_with_it() {
        let f = fixture();
        write(&f.videodata.join("meeting-1.mkv"), b"one");
        write(&f.videodata.join("meeting-2.mkv"), b"two!");
        let p = f.park(7);
        f.store.discard(&p, "meeting-1.mkv").expect("discard");
        let p = f.store.find(7).expect("find").expect("still there");
        assert_eq!(p.files.len(), 1);
        assert!(
            f.store.discard(&p, "meeting-1.mkv").is_err(),
            "already gone"
        );
        f.store.discard(&p, "meeting-2.mkv").expect("discard");
        assert!(f.store.find(7).expect("find").is_none());
    }
}
