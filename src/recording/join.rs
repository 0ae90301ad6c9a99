//! The whole recording: a live whose streamer was restarted left several mkv parts;
//! before the hand-over they are joined, in the order they were written, into one
//! [`JOINED_NAME`] without re-encoding (ffmpeg's concat demuxer, `-c copy`), checked
//! with ffprobe, and only then chosen for delivery (`delivering` in `handover.json`,
//! with the parts it holds in `joined`). The parts are deleted by the delivery's last
//! step, once a delivered file holds them (`deliver.rs`). Not here: the delivery itself.
//!
//! Crash-safe: ffmpeg writes under a name that is no part ([`JOINING_NAME`]), removed
//! at the next attempt; `handover.json` is written before the joined file takes its
//! name, and a recorded join whose file is missing is done again.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tracing::{info, warn};

use crate::config::RecordingConfig;
use crate::fsutil::sync_dir;
use crate::process::{self, Cmd};

use super::pending::{Pending, PendingStore, mkv_files, read_handover, save_handover};

/// The joined recording in a live's pending directory.
pub const JOINED_NAME: &str = "joined.mkv";
/// ffmpeg's output while it runs: not an mkv name, never taken for a part.
pub const JOINING_NAME: &str = ".joining.bbb-pod-live-part";
const LIST_NAME: &str = ".join-list.txt";

/// How the tick runs ffmpeg and ffprobe.
#[derive(Debug, Clone)]
pub struct Joiner {
    pub cfg: RecordingConfig,
    /// The docker program (first word of `docker.command`), for the fallback.
    pub docker: String,
    /// The streamer image of the compose template, for the fallback.
    pub image: Option<String>,
}

impl Joiner {
    /// The command line that runs `program` (`ffmpeg` or `ffprobe`) in `dir`.
    fn command(&self, program: &str, tool: &str, dir: &Path) -> Result<Vec<String>> {
        if present(program) {
            return Ok(vec![program.to_owned()]);
        }
        let image = self.image.as_deref().ok_or_else(|| {
            anyhow!("{program} is not installed and the compose template names no streamer image")
        })?;
        let mount = format!("{0}:{0}", dir.display());
        Ok([
            &self.docker,
            "run",
            "--rm",
            "-v",
            &mount,
            "--entrypoint",
            tool,
            image,
        ]
        .map(str::to_owned)
        .to_vec())
    }

    /// Runs a tool to its end within the timeout (see [`crate::process`]: stdin null,
    /// its whole process group killed on timeout); its stdout, or an error with the
    /// end of its stderr.
    async fn run(&self, program: &str, tool: &str, dir: &Path, args: &[String]) -> Result<String> {
        let cmd = self.command(program, tool, dir)?;
        let ran = Cmd::new(&cmd[0])
            .args(&cmd[1..])
            .args(args)
            .dir(dir)
            .timeout(self.cfg.join_timeout)
            .run()
            .await;
        match ran {
            Ok(out) => Ok(out.stdout),
            Err(e) => {
                if matches!(e, process::Error::TimedOut { .. }) && !present(program) {
                    self.remove_containers(dir).await;
                }
                Err(e.into())
            }
        }
    }

    /// Killing a `docker run` client does not stop its container: the fallback's
    /// containers still running over `dir` (a run that timed out, or one of a tick
    /// killed meanwhile) are removed, found by their image and the directory they
    /// mount (a streamer mounts its own `videodata`, never a pending directory).
    async fn remove_containers(&self, dir: &Path) {
        let Some(image) = &self.image else {
            return;
        };
        let listed = Cmd::new(&self.docker)
            .args(["ps", "--quiet", "--filter"])
            .arg(format!("ancestor={image}"))
            .arg("--filter")
            .arg(format!("volume={}", dir.display()))
            .timeout(Duration::from_secs(60))
            .run()
            .await;
        let ids: Vec<&str> = match &listed {
            Ok(out) => out.stdout.split_whitespace().collect(),
            Err(e) => {
                warn!(dir = %dir.display(), "listing the containers of a join: {e}");
                return;
            }
        };
        if ids.is_empty() {
            return;
        }
        let removed = Cmd::new(&self.docker)
            .args(["rm", "--force"])
            .args(&ids)
            .timeout(Duration::from_secs(60))
            .run()
            .await;
        match removed {
            Ok(_) => {
                info!(dir = %dir.display(), containers = %ids.join(" "), "containers of a join removed")
            }
            Err(e) => warn!(dir = %dir.display(), "removing the containers of a join: {e}"),
        }
    }

    /// The duration of a media file, in seconds.
    async fn duration(&self, dir: &Path, file: &Path) -> Result<f64> {
        let args = [
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([file.display().to_string()])
        .collect::<Vec<_>>();
        let out = self.run(&self.cfg.ffprobe, "ffprobe", dir, &args).await?;
        out.trim()
            .parse()
            .with_context(|| format!("ffprobe gave no duration for {}: {out:?}", file.display()))
    }
}

/// A program name found in PATH, or an existing path.
fn present(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// What [`PendingStore::join_parts`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Joined {
    /// Nothing to join (one part, or a delivery already under way).
    Nothing,
    /// The parts (names, in order) are now in [`JOINED_NAME`], chosen for delivery.
    Parts(Vec<String>),
}

impl PendingStore {
    /// Joins the live's mkv parts into [`JOINED_NAME`] and chooses it for delivery (see
    /// the module documentation). On error nothing is chosen or deleted: the caller
    /// delivers the largest part as usual.
    pub async fn join_parts(&self, pending: &Pending, joiner: &Joiner) -> Result<Joined> {
        let dir = pending.dir.as_path();
        let Some(mut h) = read_handover(dir)? else {
            return Ok(Joined::Nothing);
        };
        let chosen_exists = h
            .delivering
            .as_deref()
            .is_some_and(|n| dir.join(n).exists());
        if h.delivered.is_some()
            || (h.delivering.is_some() && (h.joined.is_empty() || chosen_exists))
        {
            return Ok(Joined::Nothing);
        }
        let parts = ordered_parts(dir)?;
        if parts.len() < 2 {
            if !h.joined.is_empty() {
                // A recorded join whose parts are gone: start over with what is there.
                h.joined.clear();
                h.delivering = None;
                save_handover(dir, &h)?;
            }
            return Ok(Joined::Nothing);
        }
        let result = join_checked(dir, &parts, joiner).await;
        let _ = fs::remove_file(dir.join(LIST_NAME));
        if let Err(e) = result {
            let _ = fs::remove_file(dir.join(JOINING_NAME));
            return Err(e);
        }
        let names: Vec<String> = parts.iter().map(|p| name_of(p)).collect();
        h.joined = names.clone();
        h.delivering = Some(JOINED_NAME.to_owned());
        h.renaming_dev = None;
        save_handover(dir, &h)?;
        fs::rename(dir.join(JOINING_NAME), dir.join(JOINED_NAME))
            .with_context(|| format!("naming the joined recording in {}", dir.display()))?;
        sync_dir(dir)?;
        info!(
            live = pending.live,
            parts = names.len(),
            "recording parts joined"
        );
        Ok(Joined::Parts(names))
    }
}

/// The mkv parts (not a joined file) in the order they were written: by the name the
/// streamer gives (`meeting-<YYYYMMDDHHMMSS>.mkv`), then by modification time.
fn ordered_parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let files = mkv_files(dir).with_context(|| format!("listing {}", dir.display()))?;
    let mut parts = Vec::new();
    for f in files.into_iter().filter(|f| f.name != JOINED_NAME) {
        let mtime = fs::metadata(&f.path)
            .and_then(|m| m.modified())
            .with_context(|| format!("reading {}", f.path.display()))?;
        parts.push((f.name, mtime, f.path));
    }
    parts.sort();
    Ok(parts.into_iter().map(|(_, _, p)| p).collect())
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// ffmpeg's concat list: absolute paths, quoted.
fn concat_list(parts: &[PathBuf]) -> String {
    parts
        .iter()
        .map(|p| {
            format!(
                "file '{}'\n",
                p.display().to_string().replace('\'', r"'\''")
            )
        })
        .collect()
}

/// Writes [`JOINING_NAME`] and checks it: its duration is the sum of the parts' within
/// a second per part (and 2 %), and it is not smaller than the largest part; synced.
async fn join_checked(dir: &Path, parts: &[PathBuf], joiner: &Joiner) -> Result<()> {
    let out = dir.join(JOINING_NAME);
    let _ = fs::remove_file(&out);
    let list = dir.join(LIST_NAME);
    fs::write(&list, concat_list(parts)).with_context(|| format!("writing {}", list.display()))?;
    let args: Vec<String> = [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "concat",
    ]
    .into_iter()
    .chain(["-safe", "0", "-i"])
    .map(str::to_owned)
    .chain([list.display().to_string()])
    .chain(["-map", "0", "-c", "copy", "-f", "matroska", "-y"].map(str::to_owned))
    .chain([out.display().to_string()])
    .collect();
    if !present(&joiner.cfg.ffmpeg) {
        // A join of a killed tick may still run in its container, writing the file.
        joiner.remove_containers(dir).await;
    }
    joiner.run(&joiner.cfg.ffmpeg, "ffmpeg", dir, &args).await?;
    let mut sum = 0.0;
    let mut largest = 0;
    for p in parts {
        sum += joiner.duration(dir, p).await?;
        largest = largest.max(
            fs::metadata(p)
                .with_context(|| format!("reading {}", p.display()))?
                .len(),
        );
    }
    let joined = joiner.duration(dir, &out).await?;
    let size = fs::metadata(&out)
        .with_context(|| format!("reading {}", out.display()))?
        .len();
    let tolerance = (parts.len() as f64).max(sum * 0.02);
    if (joined - sum).abs() > tolerance || size < largest {
        bail!(
            "the joined recording lasts {joined:.1} s ({size} bytes), the parts {sum:.1} s \
             (largest {largest} bytes): not used"
        );
    }
    File::open(&out)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::process::Command as StdCommand;

    use super::*;
    use crate::recording::HANDOVER_FILE;
    use crate::recording::test_support::*;

    fn joiner() -> Joiner {
        Joiner {
            cfg: RecordingConfig::default(),
            docker: "docker".into(),
            image: None,
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    /// A real mkv of `secs` seconds (ffv1, fast), as the streamer writes one.
    fn real_mkv(path: &Path, secs: u32) {
        let out = StdCommand::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc=duration={secs}:size=160x120:rate=10"))
            .args(["-c:v", "ffv1"])
            .arg(path)
            .output()
            .expect("running ffmpeg (install ffmpeg)");
        assert!(out.status.success(), "{out:?}");
    }

    fn two_real_parts(f: &Fixture) -> Pending {
        real_mkv(&f.videodata.join("meeting-20250101100000.mkv"), 1);
        real_mkv(&f.videodata.join("meeting-20250101100500.mkv"), 2);
        let p = f.park(42);
        f.store.set_internal_id(&p, &ID.into()).expect("set id");
        f.store.find(42).expect("find").expect("pending")
    }

    #[test]
    fn concat_list_quotes_the_paths() {
        let list = concat_list(&[PathBuf::from("/a/b.mkv"), PathBuf::from("/a/l'x.mkv")]);
        assert_eq!(list, "file '/a/b.mkv'\nfile '/a/l'\\''x.mkv'\n");
    }

    #[test]
    fn parts_join_in_order_into_one_checked_file_and_stay_until_delivered() {
        let f = fixture();
        let p = two_real_parts(&f);
        // A half-written join of a killed run is replaced.
        write(&p.dir.join(JOINING_NAME), b"half");
        let joined = block_on(f.store.join_parts(&p, &joiner())).expect("joined");
        let parts = vec![
            "meeting-20250101100000.mkv".to_owned(),
            "meeting-20250101100500.mkv".to_owned(),
        ];
        assert_eq!(joined, Joined::Parts(parts.clone()));
        let h = read_handover(&p.dir).expect("read").expect("handover");
        assert_eq!(h.delivering.as_deref(), Some(JOINED_NAME));
        assert_eq!(h.joined, parts);
        let d = block_on(joiner().duration(&p.dir, &p.dir.join(JOINED_NAME))).expect("probe");
        assert!((d - 3.0).abs() < 0.5, "{d}");
        // Nothing deleted yet; a second call does nothing.
        let mut expected = parts.clone();
        expected.extend([HANDOVER_FILE.to_owned(), JOINED_NAME.to_owned()]);
        expected.sort();
        assert_eq!(names(&p.dir), expected);
        let p = f.store.find(42).expect("find").expect("pending");
        assert_eq!(
            block_on(f.store.join_parts(&p, &joiner())).expect("again"),
            Joined::Nothing
        );
        // Delivered: the joined file is published, then the parts and it are removed.
        let delivery = f.store.deliver(&p, &f.recordings).expect("deliver");
        assert!(delivery.dir_removed, "{delivery:?}");
        assert_eq!(names(&f.recordings), vec![format!("{ID}.mkv")]);
    }

    #[test]
    fn a_recorded_join_whose_file_is_missing_is_done_again() {
        let f = fixture();
        let p = two_real_parts(&f);
        block_on(f.store.join_parts(&p, &joiner())).expect("joined");
        // Killed after handover.json and before the rename.
        fs::remove_file(p.dir.join(JOINED_NAME)).expect("rm");
        let p = f.store.find(42).expect("find").expect("pending");
        let again = block_on(f.store.join_parts(&p, &joiner())).expect("joined again");
        assert!(
            matches!(again, Joined::Parts(ref v) if v.len() == 2),
            "{again:?}"
        );
        assert!(p.dir.join(JOINED_NAME).is_file());
    }

    #[test]
    fn a_failed_join_chooses_nothing_and_deletes_nothing() {
        let f = fixture();
        let p = f.ready(&[("a.mkv", b"not a video"), ("b.mkv", b"nor this one")]);
        let e = block_on(f.store.join_parts(&p, &joiner())).expect_err("fails");
        assert!(format!("{e:#}").contains("ffmpeg"), "{e:#}");
        assert_eq!(names(&p.dir), vec!["a.mkv", "b.mkv", HANDOVER_FILE]);
        let h = read_handover(&p.dir).expect("read").expect("handover");
        assert_eq!((h.delivering, h.joined.len()), (None, 0));
        // The delivery falls back to the largest part and keeps the other.
        let d = f.store.deliver(&p, &f.recordings).expect("deliver");
        assert_eq!(d.source.as_deref(), Some("b.mkv"));
        assert_eq!(names(&p.dir), vec!["a.mkv", HANDOVER_FILE]);
    }

    #[test]
    fn without_ffmpeg_the_streamer_image_runs_it() {
        let j = Joiner {
            cfg: RecordingConfig {
                ffmpeg: "/nonexistent/ffmpeg".into(),
                ..RecordingConfig::default()
            },
            docker: "docker".into(),
            image: Some("aauzid/bbb-livestreaming:v2".into()),
        };
        let cmd = j
            .command("/nonexistent/ffmpeg", "ffmpeg", Path::new("/p/live-1"))
            .expect("cmd");
        assert_eq!(
            cmd,
            [
                "docker",
                "run",
                "--rm",
                "-v",
                "/p/live-1:/p/live-1",
                "--entrypoint",
                "ffmpeg",
                "aauzid/bbb-livestreaming:v2"
            ]
        );
        let none = Joiner { image: None, ..j };
        assert!(
            none.command("/nonexistent/ffmpeg", "ffmpeg", Path::new("/p"))
                .is_err()
        );
        assert_eq!(
            none.command("ffmpeg", "ffmpeg", Path::new("/p"))
                .expect("host"),
            ["ffmpeg"]
        );
    }

    #[test]
    fn a_timed_out_docker_run_leaves_no_process_nor_container_behind() {
        // The fake docker starts a grandchild and waits for it, as `docker run` waits
        // for its container: after the timeout, nothing of the run may be left.
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let docker = crate::process::tests::script(
            dir.path(),
            "fake-docker",
            &format!(
                "case \"$1\" in\n\
                 ps) echo \"$@\" > '{d}/listed'; echo c0ffee ;;\n\
                 rm) echo \"$@\" > '{d}/removed' ;;\n\
                 *) sleep 300 & echo \"$$ $!\" > pids.tmp; mv pids.tmp pids; wait ;;\n\
                 esac"
            ),
        );
        let j = Joiner {
            cfg: RecordingConfig {
                ffmpeg: "/nonexistent/ffmpeg".into(),
                join_timeout: std::time::Duration::from_secs(1),
                ..RecordingConfig::default()
            },
            docker: docker.display().to_string(),
            image: Some("aauzid/bbb-livestreaming:v2".into()),
        };
        // A script written a moment ago can fail to exec (ETXTBSY) while another test
        // thread forks with its write descriptor still open: retry that race only.
        let mut e = None;
        for _ in 0..20 {
            let err = block_on(j.run("/nonexistent/ffmpeg", "ffmpeg", dir.path(), &[]))
                .expect_err("times out");
            let busy = format!("{err:#}").contains("busy");
            e = Some(err);
            if !busy {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let e = format!("{:#}", e.expect("ran"));
        assert!(e.contains("did not finish within 1s"), "{e}");
        crate::process::tests::assert_nothing_left(&dir.path().join("pids"));
        // And its container, which the docker client's death does not stop, is removed.
        let listed = fs::read_to_string(dir.path().join("listed")).expect("containers listed");
        assert_eq!(
            listed,
            format!(
                "ps --quiet --filter ancestor=aauzid/bbb-livestreaming:v2 --filter volume={d}\n"
            )
        );
        let removed = fs::read_to_string(dir.path().join("removed")).expect("container removed");
        assert_eq!(removed, "rm --force c0ffee\n");
    }
}
