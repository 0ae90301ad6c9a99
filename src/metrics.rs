//! Metrics for Prometheus' node_exporter textfile collector (`[metrics] textfile`).
//!
//! After every `run` tick (also a failed one) the file is rewritten atomically, mode
//! 0644 so that node_exporter, running as another user, can read it. Values come from
//! what outlives the tick: the slot state files (busy slots), the pending recordings and
//! the counters of `<base_dir>/state.json`; the last tick's time, duration and result
//! come from the caller. This module renders and writes; it decides nothing, and a
//! failure to write the file is the caller's warning, never a failed tick.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use chrono::{DateTime, Utc};

use crate::model::{Counters, Phase};
use crate::recording::PendingStore;
use crate::slots::SlotStore;

/// Every metric name starts with this.
pub const PREFIX: &str = "bbb_pod_live_";

/// The last tick as the metrics show it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastTick {
    pub at: DateTime<Utc>,
    pub duration_secs: f64,
    pub success: bool,
}

/// What the metrics file says.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// `server.slots`.
    pub slots: u32,
    /// Slots holding a live (any phase), or a state file that cannot be read.
    pub slots_busy: u32,
    /// Parked recordings not handed over to Pod yet (unreadable ones included).
    pub recordings_waiting: u64,
    pub counters: Counters,
    pub last_tick: LastTick,
    /// Per running live's slot: its streamer is healthy (`health.rs`), in slot order.
    pub streamers_healthy: Vec<(u32, bool)>,
    /// Per running live's slot failing a health signal at its last check: the signal's
    /// `status` label (`stream frozen`…), in slot order.
    pub streamers_failing: Vec<(u32, &'static str)>,
    /// Webinars of `serve` whose streamer runs (Pod 3.8.2+).
    pub webinars_running: u32,
    /// Webinars of `serve` in a slot, in any phase (held, running, stopping).
    pub webinars: u32,
}

impl Snapshot {
    /// Reads the busy slots, the waiting recordings and the counters from `base_dir`.
    /// Parts that cannot be read count as zero: the metrics are written anyway, and
    /// the tick has already reported the reason.
    pub fn gather(
        store: &SlotStore,
        pending: &PendingStore,
        slots: u32,
        last_tick: LastTick,
    ) -> Snapshot {
        let (webinars, webinars_running) = store
            .load_all()
            .map(|(states, _)| {
                let all = states.values().filter(|s| s.webinar.is_some());
                let running = all.clone().filter(|s| s.phase == Phase::Running).count();
                (all.count() as u32, running as u32)
            })
            .unwrap_or_default();
        let (slots_busy, streamers_healthy, streamers_failing) = store
            .load_all()
            .map(|(states, broken)| {
                let running = || states.iter().filter(|(_, s)| s.phase == Phase::Running);
                let healthy = running()
                    .map(|(&slot, s)| (slot, s.health.healthy()))
                    .collect();
                let failing = running()
                    .filter_map(|(&slot, s)| Some((slot, s.health.failing?.label())))
                    .collect();
                ((states.len() + broken.len()) as u32, healthy, failing)
            })
            .unwrap_or_default();
        let recordings_waiting = pending
            .scan()
            .map(|scan| {
                let waiting = scan
                    .pending
                    .iter()
                    .filter(|p| p.handover.delivered.is_none())
                    .count();
                (waiting + scan.unreadable.len()) as u64
            })
            .unwrap_or(0);
        let counters = store
            .load_server_state()
            .map(|s| s.counters)
            .unwrap_or_default();
        Snapshot {
            slots,
            slots_busy,
            recordings_waiting,
            counters,
            last_tick,
            streamers_healthy,
            streamers_failing,
            webinars_running,
            webinars,
        }
    }
}

/// One metric: name without the prefix, type, help text, value.
struct Metric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: String,
}

/// The text exposition format node_exporter's textfile collector reads: for each
/// metric a `# HELP` line, a `# TYPE` line and one sample without labels (node_exporter
/// adds the instance).
pub fn render(s: &Snapshot) -> String {
    let gauge = |name, help, value: String| Metric {
        name,
        kind: "gauge",
        help,
        value,
    };
    let counter = |name, help, value: u64| Metric {
        name,
        kind: "counter",
        help,
        value: value.to_string(),
    };
    let metrics = [
        gauge(
            "slots",
            "Streaming slots configured on this server (server.slots).",
            s.slots.to_string(),
        ),
        gauge(
            "slots_busy",
            "Slots holding a live (starting, running, stopping, reverting) or an unreadable state file.",
            s.slots_busy.to_string(),
        ),
        counter(
            "lives_started_total",
            "Lives started on this server.",
            s.counters.lives_started,
        ),
        counter(
            "lives_stopped_total",
            "Lives stopped on this server.",
            s.counters.lives_stopped,
        ),
        counter(
            "recordings_delivered_total",
            "Recordings handed over to Pod's recordings_dir.",
            s.counters.recordings_delivered,
        ),
        gauge(
            "recordings_waiting",
            "Recordings parked on local disk, not handed over to Pod yet.",
            s.recordings_waiting.to_string(),
        ),
        counter(
            "streamer_restarts_total",
            "Streamers restarted, or started again after their container vanished (health).",
            s.counters.streamer_restarts,
        ),
        counter(
            "pod_write_retries_total",
            "Pod writes redone because Pod did not show their effect after an answer that could not be read.",
            s.counters.pod_write_retries,
        ),
        counter(
            "errors_total",
            "Problems reported by ticks (failed actions, unreachable services).",
            s.counters.errors,
        ),
        gauge(
            "webinars",
            "Webinars of serve (Pod 3.8.2+) in a slot: held before their up, running or stopping.",
            s.webinars.to_string(),
        ),
        gauge(
            "webinars_running",
            "Webinars of serve (Pod 3.8.2+) whose streamer runs.",
            s.webinars_running.to_string(),
        ),
        gauge(
            "last_tick_timestamp_seconds",
            "Unix time the last run tick ended.",
            s.last_tick.at.timestamp().to_string(),
        ),
        gauge(
            "last_tick_duration_seconds",
            "Duration of the last run tick.",
            format!("{:.3}", s.last_tick.duration_secs),
        ),
        gauge(
            "last_tick_success",
            "1 if the last run tick did everything it had to, else 0.",
            u8::from(s.last_tick.success).to_string(),
        ),
    ];
    let mut out = String::new();
    for m in metrics {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "# HELP {PREFIX}{name} {help}\n# TYPE {PREFIX}{name} {kind}\n{PREFIX}{name} {value}\n",
            name = m.name,
            help = m.help,
            kind = m.kind,
            value = m.value,
        );
    }
    per_slot(&mut out, s);
    out
}

/// The gauges with a `slot` label, present only while a live runs.
fn per_slot(out: &mut String, s: &Snapshot) {
    if !s.streamers_failing.is_empty() {
        let _ = write!(
            out,
            "# HELP {PREFIX}streamer_failing 1 per running live whose streamer failed this health signal at its last check (the label status shows).\n# TYPE {PREFIX}streamer_failing gauge\n"
        );
        for (slot, signal) in &s.streamers_failing {
            let _ = writeln!(
                out,
                "{PREFIX}streamer_failing{{slot=\"{slot}\",signal=\"{signal}\"}} 1"
            );
        }
    }
    if !s.streamers_healthy.is_empty() {
        let _ = write!(
            out,
            "# HELP {PREFIX}streamer_healthy 1 if the streamer of the live in this slot is healthy (container, in the meeting, HLS), else 0.\n# TYPE {PREFIX}streamer_healthy gauge\n"
        );
        for (slot, healthy) in &s.streamers_healthy {
            let _ = writeln!(
                out,
                "{PREFIX}streamer_healthy{{slot=\"{slot}\"}} {}",
                u8::from(*healthy)
            );
        }
    }
}

/// Writes the file atomically (a hidden temporary file beside it, which the collector's
/// `*.prom` pattern ignores), mode 0644.
pub fn write(path: &Path, snapshot: &Snapshot) -> Result<()> {
    crate::fsutil::write_atomic(path, render(snapshot).as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn snapshot() -> Snapshot {
        Snapshot {
            slots: 3,
            slots_busy: 2,
            recordings_waiting: 1,
            counters: Counters {
                lives_started: 7,
                lives_stopped: 5,
                recordings_delivered: 4,
                errors: 9,
                streamer_restarts: 2,
                pod_write_retries: 3,
            },
            last_tick: LastTick {
                at: DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
                duration_secs: 1.2345,
                success: false,
            },
            streamers_healthy: Vec::new(),
            streamers_failing: Vec::new(),
            webinars_running: 1,
            webinars: 2,
        }
    }

    /// Name → (type, help, value), checking the structure on the way: every sample is
    /// preceded by its HELP and TYPE lines, names are valid and unique.
    fn parse(text: &str) -> BTreeMap<String, (String, String, String)> {
        let mut out = BTreeMap::new();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() % 3, 0, "HELP, TYPE, sample per metric:\n{text}");
        assert!(text.ends_with('\n'), "the collector wants a final newline");
        for chunk in lines.chunks(3) {
            let help = chunk[0].strip_prefix("# HELP ").expect("HELP line");
            let (name, help) = help.split_once(' ').expect("HELP name text");
            let ty = chunk[1].strip_prefix("# TYPE ").expect("TYPE line");
            let (ty_name, kind) = ty.split_once(' ').expect("TYPE name kind");
            let (sample, value) = chunk[2].split_once(' ').expect("sample");
            assert_eq!(name, ty_name);
            assert_eq!(name, sample);
            assert!(name.starts_with(PREFIX), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert!(matches!(kind, "gauge" | "counter"), "{kind}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
            value.parse::<f64>().expect("numeric value");
            let old = out.insert(
                name.to_owned(),
                (kind.to_owned(), help.to_owned(), value.to_owned()),
            );
            assert!(old.is_none(), "{name} twice");
        }
        out
    }

    #[test]
    fn the_healthy_gauge_has_one_sample_per_running_slot() {
        let mut s = snapshot();
        s.streamers_healthy = vec![(1, true), (3, false)];
        let text = render(&s);
        let tail: Vec<&str> = text.lines().rev().take(4).collect();
        assert_eq!(
            tail,
            vec![
                "bbb_pod_live_streamer_healthy{slot=\"3\"} 0",
                "bbb_pod_live_streamer_healthy{slot=\"1\"} 1",
                "# TYPE bbb_pod_live_streamer_healthy gauge",
                "# HELP bbb_pod_live_streamer_healthy 1 if the streamer of the live in this slot is healthy (container, in the meeting, HLS), else 0.",
            ]
        );
        // Without a running live the rest keeps its HELP, TYPE, sample shape.
        parse(&render(&snapshot()));
    }

    #[test]
    fn a_failing_signal_is_one_sample_named_as_status_shows_it() {
        let mut s = snapshot();
        s.streamers_healthy = vec![(1, true), (3, false)];
        s.streamers_failing = vec![(3, "stream frozen")];
        let text = render(&s);
        assert!(
            text.contains(
                "# TYPE bbb_pod_live_streamer_failing gauge\nbbb_pod_live_streamer_failing{slot=\"3\",signal=\"stream frozen\"} 1\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn renders_every_metric_with_help_and_type() {
        let m = parse(&render(&snapshot()));
        let value = |n: &str| m[&format!("{PREFIX}{n}")].2.clone();
        assert_eq!(value("slots"), "3");
        assert_eq!(value("slots_busy"), "2");
        assert_eq!(value("lives_started_total"), "7");
        assert_eq!(value("lives_stopped_total"), "5");
        assert_eq!(value("recordings_delivered_total"), "4");
        assert_eq!(value("recordings_waiting"), "1");
        assert_eq!(value("errors_total"), "9");
        assert_eq!(value("streamer_restarts_total"), "2");
        assert_eq!(value("pod_write_retries_total"), "3");
        assert_eq!(value("last_tick_timestamp_seconds"), "1700000000");
        assert_eq!(value("last_tick_duration_seconds"), "1.234");
        assert_eq!(value("last_tick_success"), "0");
        assert_eq!(value("webinars"), "2");
        assert_eq!(value("webinars_running"), "1");
        assert_eq!(m.len(), 14);
    }

    #[test]
    fn success_is_one_after_a_good_tick() {
        let mut s = snapshot();
        s.last_tick.success = true;
        let m = parse(&render(&s));
        assert_eq!(m[&format!("{PREFIX}last_tick_success")].2, "1");
    }

    #[test]
    fn gathers_from_an_empty_base_dir_and_writes_0644() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SlotStore::new(&dir.path().join("missing"), 2);
        let pending = PendingStore::new(&dir.path().join("missing"));
        let tick = snapshot().last_tick;
        let s = Snapshot::gather(&store, &pending, 2, tick.clone());
        assert_eq!(
            s,
            Snapshot {
                slots: 2,
                slots_busy: 0,
                recordings_waiting: 0,
                counters: Counters::default(),
                last_tick: tick,
                streamers_healthy: Vec::new(),
                streamers_failing: Vec::new(),
                webinars_running: 0,
                webinars: 0,
            }
        );
        let path = dir.path().join("bbb_pod_live.prom");
        write(&path, &s).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, render(&s));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope").join("bbb_pod_live.prom");
        let err = write(&path, &snapshot()).expect_err("no directory");
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }
}
