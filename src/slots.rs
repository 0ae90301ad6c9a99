//! Slot directories and the state files that make a tick crash-safe.
//!
//! Each slot `<base_dir>/bbb-live-streaming<N>/` holds, while a live occupies it, a
//! `live-state.json` saying which live it is and how far its start or stop got. Every
//! step of a start or a stop is idempotent and its progress is written here (atomic
//! write, mode 0600) before the next step, so a tick killed at any point is resumed by
//! the next one. A slot is free exactly when it has no state file. The server-wide
//! `state.json` in `base_dir` holds what outlives a live: failed start attempts per
//! live, the mail throttling memory and the last tick's summary. What the files hold
//! is `model`'s [`SlotState`] and [`ServerState`]; this room reads and writes them.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::fsutil::write_atomic;
use crate::model::{ServerState, SlotState};

/// Name of a slot's state file.
pub const STATE_FILE: &str = "live-state.json";
/// `serve`'s record of Pod's `stop` for a slot's webinar (written by `serve` only).
const STOP_REQUEST: &str = "webinar-stop";
/// `serve`'s record of the chat panel Pod asked for (written by `serve` only).
const PANEL_REQUEST: &str = "webinar-chat-panel";
/// Longest wait for the slot reservation lock: its holders keep it for milliseconds.
const SHORT_LOCK_WAIT: Duration = Duration::from_secs(1);
/// Uid the streamer runs as (aauzid/bigbluebutton-livestreaming `USER 1001`).
pub const STREAMER_UID: u32 = 1001;

/// Slots whose state file could not be read, with the reason.
pub type BrokenSlots = Vec<(u32, anyhow::Error)>;

/// What `status`, `check` and `stop --slot` say about a slot whose state file cannot
/// be read: the file, the reason, what to do (the README's troubleshooting tells the same).
pub fn corrupt_story(slot: u32, err: &anyhow::Error, base_dir: &Path) -> String {
    let file = base_dir
        .join(format!("bbb-live-streaming{slot}"))
        .join(STATE_FILE);
    format!(
        "slot {slot}: its state file {} cannot be read ({err:#}); the slot stays busy so \
         that nothing is started over a live that may run there. Look at `docker compose ps` \
         in {}, then move the file aside (mv {} {}.corrupt): the next tick takes over the live \
         Pod shows running in that slot, or frees the slot",
        file.display(),
        file.parent().unwrap_or(base_dir).display(),
        file.display(),
        file.display(),
    )
}

/// The slot directories of this server and their state files.
#[derive(Debug, Clone)]
pub struct SlotStore {
    base_dir: PathBuf,
    slots: u32,
}

impl SlotStore {
    pub fn new(base_dir: &Path, slots: u32) -> SlotStore {
        SlotStore {
            base_dir: base_dir.to_owned(),
            slots,
        }
    }

    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    pub fn dir(&self, slot: u32) -> PathBuf {
        self.base_dir.join(format!("bbb-live-streaming{slot}"))
    }

    pub fn videodata(&self, slot: u32) -> PathBuf {
        self.dir(slot).join("videodata")
    }

    pub fn compose_file(&self, slot: u32) -> PathBuf {
        self.dir(slot).join("docker-compose.yml")
    }

    fn state_path(&self, slot: u32) -> PathBuf {
        self.dir(slot).join(STATE_FILE)
    }

    fn server_state_path(&self) -> PathBuf {
        self.base_dir.join("state.json")
    }

    /// Slots that exist on disk, configured or not (a slot left over after
    /// `server.slots` was lowered still holds a live that must be stopped).
    pub fn known_slots(&self) -> Result<Vec<u32>> {
        let mut slots: Vec<u32> = (1..=self.slots).collect();
        let entries = match fs::read_dir(&self.base_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(slots),
            Err(e) => {
                return Err(e).with_context(|| format!("listing {}", self.base_dir.display()));
            }
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", self.base_dir.display()))?;
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_prefix("bbb-live-streaming"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if n > self.slots && n > 0 && entry.path().join(STATE_FILE).exists() {
                slots.push(n);
            }
        }
        slots.sort_unstable();
        slots.dedup();
        Ok(slots)
    }

    /// The state of a slot; `None` when the slot is free.
    pub fn load(&self, slot: u32) -> Result<Option<SlotState>> {
        let path = self.state_path(slot);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let state = serde_json::from_slice(&text).with_context(|| {
            format!(
                "{} is corrupt; the slot is kept busy until an admin repairs or removes it",
                path.display()
            )
        })?;
        Ok(Some(state))
    }

    /// Every occupied slot. A corrupt state file is an error for that slot only.
    pub fn load_all(&self) -> Result<(BTreeMap<u32, SlotState>, BrokenSlots)> {
        let mut states = BTreeMap::new();
        let mut broken = Vec::new();
        for slot in self.known_slots()? {
            match self.load(slot) {
                Ok(Some(s)) => {
                    states.insert(slot, s);
                }
                Ok(None) => {}
                Err(e) => broken.push((slot, e)),
            }
        }
        Ok((states, broken))
    }

    pub fn save(&self, slot: u32, state: &SlotState) -> Result<()> {
        let text = serde_json::to_vec_pretty(state).context("encoding slot state")?;
        write_atomic(&self.state_path(slot), &text, 0o600)
    }

    /// Frees the slot.
    pub fn clear(&self, slot: u32) -> Result<()> {
        let path = self.state_path(slot);
        match fs::remove_file(&path) {
            Ok(()) => crate::fsutil::sync_dir(&self.dir(slot)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }

    pub fn load_server_state(&self) -> Result<ServerState> {
        let path = self.server_state_path();
        match fs::read(&path) {
            Ok(text) => serde_json::from_slice(&text).with_context(|| {
                format!("{} is corrupt (remove it to start afresh)", path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ServerState::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save_server_state(&self, state: &ServerState) -> Result<()> {
        let text = serde_json::to_vec_pretty(state).context("encoding server state")?;
        write_atomic(&self.server_state_path(), &text, 0o600)
    }

    /// The slot reservation lock (see [`crate::lock::ShortLock`]): whoever takes a
    /// free slot (a tick's start, `serve`'s webinar start) holds it while it checks
    /// that the slot is free and writes its state there. Held for milliseconds.
    pub async fn lock_slots(&self) -> Result<crate::lock::ShortLock> {
        crate::lock::short_within(
            &crate::lock::slots_lock_path(&self.base_dir),
            SHORT_LOCK_WAIT,
        )
        .await
    }

    /// The slot's own lock, if free: who acts on the live in it (an `up`, a stop, a
    /// restart) holds it, so that the tick and `serve` never act on one slot at once.
    pub fn try_lock_slot(&self, slot: u32) -> Result<Option<crate::lock::ShortLock>> {
        crate::lock::try_short(&crate::lock::slot_lock_path(&self.dir(slot)))
    }

    /// The slot's own lock, waiting up to `limit` for it.
    pub async fn lock_slot(&self, slot: u32, limit: Duration) -> Result<crate::lock::ShortLock> {
        crate::lock::short_within(&crate::lock::slot_lock_path(&self.dir(slot)), limit).await
    }

    /// Whether `serve` recorded Pod's `stop` for the webinar in `slot`.
    pub fn stop_requested(&self, slot: u32) -> bool {
        self.dir(slot).join(STOP_REQUEST).exists()
    }

    /// Records Pod's `stop` for the webinar in `slot` (durably); whoever acts on the
    /// slot next (`serve` at once, or the next tick) stops it.
    pub fn request_stop(&self, slot: u32) -> Result<()> {
        write_atomic(&self.dir(slot).join(STOP_REQUEST), b"stop\n", 0o600)
    }

    /// The chat panel Pod last asked for the webinar in `slot` (`None`: never toggled).
    pub fn chat_panel_request(&self, slot: u32) -> Result<Option<bool>> {
        let path = self.dir(slot).join(PANEL_REQUEST);
        match fs::read_to_string(&path) {
            Ok(t) => Ok(Some(t.trim() == "shown")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Records the chat panel Pod asks for (durably), read by the streamer's `up`.
    pub fn request_chat_panel(&self, slot: u32, shown: bool) -> Result<()> {
        let text: &[u8] = if shown { b"shown\n" } else { b"hidden\n" };
        write_atomic(&self.dir(slot).join(PANEL_REQUEST), text, 0o600)
    }

    /// Forgets Pod's requests about a slot's webinar (at its reservation and at its
    /// stop): a request of an earlier webinar must never act on the next one.
    pub fn clear_requests(&self, slot: u32) -> Result<()> {
        for name in [STOP_REQUEST, PANEL_REQUEST] {
            let path = self.dir(slot).join(name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
            }
        }
        Ok(())
    }

    /// Creates `base_dir` and the configured slot directories with their `videodata`
    /// (idempotent). Slot directories are 0700; `videodata` belongs to the streamer's
    /// uid 1001 when we run as root, else it is made writable for it (0777).
    /// Returns what it created or changed, one line each.
    pub fn init(&self, dry_run: bool) -> Result<Vec<String>> {
        let mut done = Vec::new();
        if !self.base_dir.is_dir() {
            done.push(format!("create directory {}", self.base_dir.display()));
            if !dry_run {
                crate::fsutil::create_private_dir(&self.base_dir)?;
            }
        }
        for slot in 1..=self.slots {
            let dir = self.dir(slot);
            let existed = dir.is_dir();
            if !existed {
                done.push(format!("create slot directory {}", dir.display()));
                if !dry_run {
                    fs::create_dir_all(&dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
            }
            if existed {
                done.extend(repair(&dir, 0o700, None, dry_run)?);
            } else if !dry_run {
                set_mode_if_needed(&dir, 0o700)?;
            }
            let video = self.videodata(slot);
            if !video.is_dir() {
                done.push(format!(
                    "create {} writable by uid {STREAMER_UID}",
                    video.display()
                ));
                if !dry_run {
                    fs::create_dir_all(&video)
                        .with_context(|| format!("creating {}", video.display()))?;
                    make_writable_for_streamer(&video)?;
                }
            } else if nix::unistd::geteuid().is_root() {
                // A PHP server's videodata: the streamer (uid 1001) must write there.
                done.extend(repair(&video, 0o750, Some(STREAMER_UID), dry_run)?);
            } else {
                done.extend(repair(&video, 0o777, None, dry_run)?);
            }
        }
        Ok(done)
    }
}

/// Gives an existing file or directory its mode and, as root, its owner (`owner`, or
/// root when `None`); one line per change made (or, in a dry run, to make).
pub fn repair(path: &Path, mode: u32, owner: Option<u32>, dry_run: bool) -> Result<Vec<String>> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mut done = Vec::new();
    if nix::unistd::geteuid().is_root() {
        let uid = owner.unwrap_or(0);
        if meta.uid() != uid || meta.gid() != uid {
            done.push(format!(
                "give {} to {uid}:{uid} (was {}:{})",
                path.display(),
                meta.uid(),
                meta.gid()
            ));
            if !dry_run {
                let id = nix::unistd::Uid::from_raw(uid);
                nix::unistd::chown(path, Some(id), Some(nix::unistd::Gid::from_raw(uid)))
                    .with_context(|| format!("giving {} to uid {uid}", path.display()))?;
            }
        }
    }
    let was = meta.permissions().mode() & 0o7777;
    if was != mode {
        done.push(format!(
            "set mode {mode:04o} on {} (was {was:04o})",
            path.display()
        ));
        if !dry_run {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting the mode of {}", path.display()))?;
        }
    }
    Ok(done)
}

fn set_mode_if_needed(path: &Path, mode: u32) -> Result<()> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    Ok(())
}

/// The streamer writes the mkv as uid 1001 into the bind-mounted `videodata`.
fn make_writable_for_streamer(dir: &Path) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        let uid = nix::unistd::Uid::from_raw(STREAMER_UID);
        let gid = nix::unistd::Gid::from_raw(STREAMER_UID);
        nix::unistd::chown(dir, Some(uid), Some(gid))
            .with_context(|| format!("giving {} to uid {STREAMER_UID}", dir.display()))?;
        set_mode_if_needed(dir, 0o750)
    } else {
        // Without root we cannot give the directory away; the slot directory (0700)
        // still keeps other users out of it.
        set_mode_if_needed(dir, 0o777)
    }
}

/// Moves every `*.mkv` of `from` into `to` (created), never overwriting: used for
/// files no live asked to hand over, which are kept for the admin, never deleted.
pub fn keep_mkv_files(from: &Path, to: &Path) -> Result<Vec<PathBuf>> {
    let mut moved = Vec::new();
    let files = match crate::recording::mkv_files(from) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(moved),
        Err(e) => return Err(e).with_context(|| format!("listing {}", from.display())),
    };
    for file in files {
        let (path, name) = (file.path, file.name);
        fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
        let mut target = to.join(&name);
        let mut n = 1;
        while target.exists() {
            target = to.join(format!("{n}-{name}"));
            n += 1;
            if n > 10_000 {
                bail!("too many files named {name} in {}", to.display());
            }
        }
        fs::rename(&path, &target)
            .with_context(|| format!("moving {} to {}", path.display(), target.display()))?;
        moved.push(target);
    }
    if !moved.is_empty() {
        crate::fsutil::sync_dir(to)?;
        crate::fsutil::sync_dir(from)?;
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Phase, StopProgress, StopReason};
    use chrono::Utc;

    #[test]
    fn state_round_trips_and_is_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SlotStore::new(dir.path(), 2);
        store.init(false).expect("init");
        assert_eq!(store.load(1).expect("load"), None);
        let mut s = SlotState::new(42, Utc::now());
        s.stream_key = Some("bbb-x-42".into());
        store.save(1, &s).expect("save");
        assert_eq!(store.load(1).expect("load"), Some(s.clone()));
        let mode = fs::metadata(store.state_path(1))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let slot_mode = fs::metadata(store.dir(1))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(slot_mode & 0o777, 0o700);
        store.clear(1).expect("clear");
        assert_eq!(store.load(1).expect("load"), None);
        store.clear(1).expect("clearing twice is fine");
    }

    /// State files of this version with every field set, read and written again, come
    /// out byte for byte: the files are the contract between versions (an upgrade or a
    /// downgrade in the middle of a live), whatever the types behind them become.
    #[test]
    fn state_files_read_and_written_again_are_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SlotStore::new(dir.path(), 1);
        store.init(false).expect("init");

        let slot = include_str!("../tests/fixtures/state/live-state.json");
        fs::write(store.state_path(1), slot).expect("write");
        let state = store.load(1).expect("load").expect("busy");
        assert_eq!((state.live, state.phase), (42, Phase::Stopping));
        assert_eq!(state.health.fails.hls, 2);
        assert_eq!((state.alone.ticks, state.alone.begun), (3, true));
        assert_eq!(
            state.stop.as_ref().map(|s| s.reason),
            Some(StopReason::MeetingEnded)
        );
        store.save(1, &state).expect("save");
        assert_eq!(fs::read_to_string(store.state_path(1)).expect("read"), slot);

        let server = include_str!("../tests/fixtures/state/state.json");
        fs::write(store.server_state_path(), server).expect("write");
        let state = store.load_server_state().expect("load");
        assert_eq!(state.start_failures.get(&42), Some(&2));
        assert_eq!(state.mail.0.len(), 2);
        assert_eq!(state.waiting.len(), 7);
        assert_eq!(state.unconfirmed.len(), 3);
        assert_eq!(state.counters.pod_write_retries, 2);
        store.save_server_state(&state).expect("save");
        assert_eq!(
            fs::read_to_string(store.server_state_path()).expect("read"),
            server
        );
    }

    /// A slot state file of an older version (no session, health, stop progress…) and an
    /// empty server state read with those fields at their defaults.
    #[test]
    fn state_files_of_older_versions_are_read_with_defaults() {
        let old = r#"{
  "live": 7,
  "phase": "running",
  "since": "2025-11-02T08:00:00Z",
  "meeting_url": null,
  "user_url": null,
  "meeting_id": "room-b",
  "meeting_name": "Cours",
  "stream_key": "bbb-y-7",
  "broadcaster_name": null,
  "broadcaster": null,
  "download": false
}"#;
        let state: SlotState = serde_json::from_str(old).expect("parse");
        let mut expected = SlotState::new(7, "2025-11-02T08:00:00Z".parse().expect("time"));
        expected.phase = Phase::Running;
        expected.meeting_id = Some("room-b".into());
        expected.meeting_name = Some("Cours".into());
        expected.stream_key = Some("bbb-y-7".into());
        assert_eq!(state, expected);

        let server: ServerState = serde_json::from_str("{}").expect("parse");
        assert_eq!(
            serde_json::to_string(&server).expect("encode"),
            serde_json::to_string(&ServerState::default()).expect("encode")
        );
    }

    #[test]
    fn a_state_file_of_an_earlier_version_loads_with_fresh_room_and_playlist_memories() {
        let old = r#"{"live":7,"phase":"running","since":"2026-03-02T09:00:00Z",
            "meeting_url":null,"user_url":null,"meeting_id":"m","meeting_name":"x",
            "stream_key":"k","broadcaster_name":null,"broadcaster":null,"download":false,
            "ended_seen":1,"health":{"ticks":4,"fails":{"meeting":0,"hls":1}}}"#;
        let s: SlotState = serde_json::from_str(old).expect("an old state file loads");
        assert_eq!(s.alone, crate::model::Alone::default());
        assert_eq!(s.health.playlist, None);
        assert_eq!(s.health.fails.frozen, 0);
        let mut s = s;
        s.alone.ticks = 3;
        s.alone.begun = true;
        s.alone.since = Some(s.since);
        s.stop = Some(StopProgress {
            reason: StopReason::RoomEmpty,
            since: s.since,
            container_down: false,
            recordings_parked: false,
            pod_closed: false,
            broadcaster_deleted: false,
        });
        let text = serde_json::to_string(&s).expect("json");
        assert!(text.contains(r#""reason":"room_empty""#), "{text}");
        assert_eq!(
            serde_json::from_str::<SlotState>(&text).expect("reads back"),
            s
        );
    }

    #[test]
    fn init_is_idempotent_and_dry_run_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("base");
        let store = SlotStore::new(&base, 2);
        let planned = store.init(true).expect("dry run");
        assert!(!base.exists(), "dry run created {}", base.display());
        assert_eq!(planned.len(), 5, "{planned:?}");
        assert_eq!(store.init(false).expect("init").len(), 5);
        assert!(store.init(false).expect("again").is_empty());
    }

    #[test]
    fn init_repairs_the_modes_and_owners_a_php_server_left_and_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("base");
        let store = SlotStore::new(&base, 1);
        fs::create_dir_all(store.videodata(1)).expect("mkdir");
        for d in [store.dir(1), store.videodata(1)] {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let planned = store.init(true).expect("dry run");
        let slot_dir = store.dir(1).display().to_string();
        assert!(
            planned.iter().any(|l| l.contains("set mode 0700")
                && l.contains(&slot_dir)
                && l.contains("was 0755")),
            "{planned:?}"
        );
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode(&store.dir(1)), 0o755, "a dry run changed the mode");
        let done = store.init(false).expect("init");
        assert_eq!(done, planned);
        assert_eq!(mode(&store.dir(1)), 0o700);
        if nix::unistd::geteuid().is_root() {
            use std::os::unix::fs::MetadataExt;
            let meta = fs::metadata(store.videodata(1)).expect("meta");
            assert_eq!((meta.uid(), meta.gid()), (STREAMER_UID, STREAMER_UID));
            assert_eq!(mode(&store.videodata(1)), 0o750);
            assert!(
                done.iter()
                    .any(|l| l.contains("give") && l.contains("1001:1001")),
                "{done:?}"
            );
        }
        assert!(store.init(false).expect("again").is_empty());
    }

    #[test]
    fn corrupt_state_keeps_the_slot_busy_and_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SlotStore::new(dir.path(), 2);
        store.init(false).expect("init");
        fs::write(store.state_path(2), b"{not json").expect("write");
        let (states, broken) = store.load_all().expect("load_all");
        assert!(states.is_empty());
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].0, 2);
        assert!(format!("{:#}", broken[0].1).contains("live-state.json"));
    }

    #[test]
    fn slots_beyond_the_configuration_are_still_seen_when_busy() {
        let dir = tempfile::tempdir().expect("tempdir");
        SlotStore::new(dir.path(), 3).init(false).expect("init");
        let store3 = SlotStore::new(dir.path(), 3);
        store3
            .save(3, &SlotState::new(7, Utc::now()))
            .expect("save");
        let store1 = SlotStore::new(dir.path(), 1);
        assert_eq!(store1.known_slots().expect("slots"), vec![1, 3]);
    }

    #[test]
    fn kept_files_are_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("videodata");
        let to = dir.path().join("kept");
        fs::create_dir_all(&from).expect("mkdir");
        fs::create_dir_all(&to).expect("mkdir");
        fs::write(to.join("meeting-1.mkv"), b"old").expect("write");
        fs::write(from.join("meeting-1.mkv"), b"new").expect("write");
        fs::write(from.join("notes.txt"), b"x").expect("write");
        let moved = keep_mkv_files(&from, &to).expect("keep");
        assert_eq!(moved.len(), 1);
        assert_eq!(fs::read(to.join("meeting-1.mkv")).expect("read"), b"old");
        assert_eq!(fs::read(&moved[0]).expect("read"), b"new");
        assert!(from.join("notes.txt").exists());
    }
}
