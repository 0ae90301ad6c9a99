//! What the tests of the recording room share: a server's base directory with one
//! slot's `videodata/` and a `recordings_dir`, in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::deliver::part_path;
use super::{Pending, PendingStore};
use crate::model::LiveId;

pub(super) struct Fixture {
    _tmp: TempDir,
    pub(super) store: PendingStore,
    pub(super) videodata: PathBuf,
    pub(super) recordings: PathBuf,
}

pub(super) fn fixture() -> Fixture {
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

pub(super) fn write(path: &Path, content: &[u8]) {
    fs::write(path, content).expect("write");
}

pub(super) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub(super) const ID: &str = "8f2a5b0c1d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a-1714639090123";

impl Fixture {
    pub(super) fn park(&self, live: LiveId) -> Pending {
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
    pub(super) fn ready(&self, files: &[(&str, &[u8])]) -> Pending {
        for (name, content) in files {
            write(&self.videodata.join(name), content);
        }
        let p = self.park(42);
        self.store.set_internal_id(&p, &ID.into()).expect("set id");
        self.store.find(42).expect("find").expect("pending")
    }

    pub(super) fn published(&self) -> PathBuf {
        self.recordings.join(format!("{ID}.mkv"))
    }

    pub(super) fn part(&self) -> PathBuf {
        part_path(&self.recordings, ID, 42)
    }
}
