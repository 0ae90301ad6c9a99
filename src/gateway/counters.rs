//! The gateway's metrics: requests by route and answer, webinars running. `serve`
//! writes them for node_exporter's textfile collector beside the tick's file
//! (`[metrics] textfile` `bbb_pod_live.prom` → `bbb_pod_live_gateway.prom`, the same
//! directory), so the two processes never write one file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Result;

use crate::metrics::PREFIX;

/// Requests answered since `serve` started, by (route, answer label).
#[derive(Default)]
pub struct Requests {
    counts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Requests {
    pub fn count(&self, route: &'static str, answer: &'static str) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry((route, answer)).or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The text exposition format, `webinars` being the engine's count.
    pub fn render(&self, webinars: usize) -> String {
        let mut out = String::new();
        let name = format!("{PREFIX}gateway_requests_total");
        let _ = writeln!(
            out,
            "# HELP {name} Requests answered by the webinar gateway (serve), by route and answer."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for ((route, answer), n) in self.snapshot() {
            let _ = writeln!(out, "{name}{{route=\"{route}\",answer=\"{answer}\"}} {n}");
        }
        let name = format!("{PREFIX}gateway_webinars_running");
        let _ = writeln!(
            out,
            "# HELP {name} Webinars live on this server, as the gateway sees them."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {webinars}");
        out
    }
}

/// The gateway's file beside the tick's: `<stem>_gateway.prom` in the same directory.
pub fn textfile_beside(tick_file: &Path) -> PathBuf {
    let stem = tick_file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bbb_pod_live".to_owned());
    tick_file.with_file_name(format!("{stem}_gateway.prom"))
}

/// Writes the file atomically, mode 0644 (node_exporter runs as another user).
pub fn write(path: &Path, text: &str) -> Result<()> {
    crate::fsutil::write_atomic(path, text.as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_answer() {
        let r = Requests::default();
        r.count("start", "success");
        r.count("start", "success");
        r.count("chat", "not_live_here");
        let text = r.render(1);
        assert!(
            text.contains(
                "bbb_pod_live_gateway_requests_total{route=\"start\",answer=\"success\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "bbb_pod_live_gateway_requests_total{route=\"chat\",answer=\"not_live_here\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("bbb_pod_live_gateway_webinars_running 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE bbb_pod_live_gateway_requests_total counter"));
    }

    #[test]
    fn the_file_sits_beside_the_ticks() {
        assert_eq!(
            textfile_beside(Path::new("/var/lib/node/bbb_pod_live.prom")),
            PathBuf::from("/var/lib/node/bbb_pod_live_gateway.prom")
        );
    }
}
