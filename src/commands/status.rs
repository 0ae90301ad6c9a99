//! `status`: what this server holds now (its slots, the recordings waiting, the
//! lives waiting and the last tick), as a table or as JSON. It reads files only.

use anyhow::{Context, Result};
use chrono::Utc;

use super::outcome::{Fatal, Outcome, print_lines};
use crate::config::Config;
use crate::model::TickRecord;
use crate::slots::SlotStore;

/// `status`: the slots of this server, recordings waiting, the last tick.
pub fn status(cfg: &Config, json: bool) -> Result<Outcome, Fatal> {
    let store = SlotStore::new(&cfg.server.base_dir, cfg.server.slots);
    let (states, broken) = store.load_all()?;
    let server_state = store.load_server_state().unwrap_or_default();
    let scan = crate::recording::PendingStore::new(&cfg.server.base_dir).scan()?;
    let mut all: Vec<u32> = (1..=cfg.server.slots)
        .chain(states.keys().copied())
        .chain(broken.iter().map(|b| b.0))
        .collect();
    all.sort_unstable();
    all.dedup();
    let slots: Vec<_> = all
        .into_iter()
        .map(|slot| {
            let recording_bytes: u64 = crate::recording::mkv_files(&store.videodata(slot))
                .map(|files| files.iter().map(|f| f.size).sum())
                .unwrap_or(0);
            match states.get(&slot) {
                Some(s) => slot_entry(cfg, slot, s, recording_bytes),
                None => match broken.iter().find(|b| b.0 == slot) {
                    Some((_, e)) => serde_json::json!({
                        "slot": slot,
                        "state": "unreadable",
                        "error": format!("{e:#}"),
                    }),
                    None => serde_json::json!({"slot": slot, "state": "free"}),
                },
            }
        })
        .collect();
    let doc = serde_json::json!({
        "server": {"hostname": cfg.server.hostname, "number": cfg.server.number, "slots": cfg.server.slots},
        "slots": slots,
        "recordings": scan.pending.iter().map(|p| serde_json::json!({
            "live": p.live,
            "state": p.state(),
            "files": p.files,
            "internal_meeting_id": p.handover.internal_meeting_id,
            "summary": p.summary(),
        })).collect::<Vec<_>>(),
        "unreadable_recordings": scan.unreadable,
        "last_tick": server_state.last_tick,
        "waiting_unknown": server_state.waiting_unknown,
        "waiting": server_state.waiting.iter().map(|w| serde_json::json!({
            "live": w.live,
            "reason": w.reason,
            "summary": w.to_string(),
        })).collect::<Vec<_>>(),
    });
    if json {
        let text = serde_json::to_string_pretty(&doc).context("encoding the status")?;
        print_lines(&[text])?;
        return Ok(Outcome::Done);
    }
    let summaries: Vec<String> = scan.pending.iter().map(|p| p.summary()).collect();
    let mut lines = status_text(
        &doc,
        &summaries,
        server_state.last_tick.as_ref(),
        &cfg.server.log_dir,
    );
    // Before the "last tick" line, which dates it.
    let at = lines.len() - 1;
    if let Some(why) = &server_state.waiting_unknown {
        lines.insert(
            at,
            format!("lives waiting, as of the last tick: unknown, it could not read them: {why}"),
        );
    } else if server_state.waiting.is_empty() {
        lines.insert(at, "lives waiting, as of the last tick: none".into());
    } else {
        let mut waiting = vec!["lives waiting, as of the last tick:".to_owned()];
        waiting.extend(server_state.waiting.iter().map(|w| format!("  {w}")));
        lines.splice(at..at, waiting);
    }
    if !cfg.server.base_dir.exists() {
        lines.insert(
            0,
            format!(
                "server.base_dir {} does not exist: nothing ran on this server yet \
                 (`bbb-pod-live init` or the first tick creates it)",
                cfg.server.base_dir.display()
            ),
        );
    }
    lines.extend(
        broken
            .iter()
            .map(|(slot, e)| crate::slots::corrupt_story(*slot, e, &cfg.server.base_dir)),
    );
    print_lines(&lines)?;
    Ok(Outcome::Done)
}

/// One busy slot of `status --json`.
fn slot_entry(
    cfg: &Config,
    slot: u32,
    s: &crate::model::SlotState,
    recording_bytes: u64,
) -> serde_json::Value {
    let key = s.stream_key.clone().unwrap_or_default();
    let mut entry = serde_json::json!({
        "slot": slot,
        "state": s.phase,
        "live": s.live,
        "meeting_name": s.meeting_name,
        "meeting_id": s.meeting_id,
        "since": s.since,
        "stream_url": (!key.is_empty()).then(|| cfg.bbb.stream_url_of(&key)),
        "hls_url": (!key.is_empty()).then(|| cfg.pod.hls_url_of(&key)),
        "recording": s.download,
        "recording_bytes": recording_bytes,
        "ended_seen": s.ended_seen,
        "alone_seen": s.alone.ticks,
        "alone_ticks": cfg.bbb.alone_ticks,
        "adopted": s.adopted,
        "stop_reason": s.stop.as_ref().map(|p| p.reason),
    });
    let dir = SlotStore::new(&cfg.server.base_dir, cfg.server.slots).dir(slot);
    if let Some(e) = entry.as_object_mut() {
        e.extend(crate::health::status_fields(s, cfg, &dir));
        if let Some(w) = &s.webinar {
            e.insert("webinar".into(), webinar_entry(s, w));
        }
    }
    entry
}

/// A webinar of `serve` in `status --json`: its room, gateway path and meeting, and
/// whether it waits (for its held `up`, or for its meeting to run).
fn webinar_entry(s: &crate::model::SlotState, w: &crate::model::Webinar) -> serde_json::Value {
    let waiting = match s.phase {
        crate::model::Phase::Starting => Some("its streamer starts after the hold"),
        crate::model::Phase::Running if !w.meeting_running => {
            Some("its meeting is not running yet: the streamer joins when it runs")
        }
        _ => None,
    };
    serde_json::json!({
        "room": w.room,
        "gateway_path": w.gateway_path,
        "meeting_id": s.meeting_id,
        "pod": w.pod_host,
        "meeting_running": w.meeting_running,
        "chat_panel": w.chat_shown.map(|shown| if shown { "shown" } else { "hidden" }),
        "chat": w.chat,
        "waiting": waiting,
    })
}

/// The table a person reads, from the `--json` document.
fn status_text(
    doc: &serde_json::Value,
    recordings: &[String],
    last_tick: Option<&TickRecord>,
    log_dir: &std::path::Path,
) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<5} {:<10} {:<6} {:<30} {:<22} {:<19} {}",
        "SLOT", "STATE", "LIVE", "MEETING", "SINCE (local time)", "HEALTH", "HLS URL"
    )];
    for s in doc["slots"].as_array().into_iter().flatten() {
        let text = |k: &str| {
            s[k].as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| s[k].to_string().replace("null", "-"))
        };
        let mut name: String = text("meeting_name").chars().take(30).collect();
        name = name.replace(char::is_control, " ");
        let since = s["since"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(
                || "-".to_owned(),
                |t| crate::logging::local_time(t.with_timezone(&Utc)),
            );
        // A webinar's `live` is an internal number (`--json` keeps it): its room is
        // in the notes under the table.
        let live = if s["webinar"].is_object() {
            "webinar".to_owned()
        } else {
            text("live")
        };
        lines.push(format!(
            "{:<5} {:<10} {:<6} {:<30} {:<22} {:<19} {}",
            text("slot"),
            text("state"),
            live,
            name,
            since,
            text("health"),
            text("hls_url"),
        ));
    }
    lines.extend(slot_notes(doc));
    if recordings.is_empty() {
        lines.push("recordings waiting: none".into());
    } else {
        lines.push("recordings waiting:".into());
        lines.extend(recordings.iter().map(|r| format!("  {r}")));
    }
    lines.push(last_tick_line(last_tick, log_dir));
    lines
}

/// When the last tick ran, how long it took and how it went; with problems, the day's
/// log that tells them.
fn last_tick_line(last_tick: Option<&TickRecord>, log_dir: &std::path::Path) -> String {
    match last_tick {
        Some(t) => format!(
            "last tick: {} ({} ms), {}",
            crate::logging::local_time(t.at),
            t.duration_ms,
            if t.ok {
                "ok".to_owned()
            } else {
                format!(
                    "{} problem(s), see the log {}",
                    t.problems,
                    crate::logging::day_log(log_dir, t.at.date_naive()).display()
                )
            }
        ),
        None => "last tick: never".into(),
    }
}

/// The lines under the table about some slots: the webinars of `serve` (room, gateway
/// path, meeting, what they wait for), the rooms counted empty, the streamers' logs.
fn slot_notes(doc: &serde_json::Value) -> Vec<String> {
    let mut notes = Vec::new();
    // The webinars of `serve`: room, gateway path, meeting, and what they wait for.
    notes.extend(
        doc["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let w = s["webinar"].as_object()?;
                let text = |k: &str| w.get(k).and_then(|v| v.as_str()).unwrap_or("-");
                let doing = match w.get("waiting").and_then(|v| v.as_str()) {
                    Some(why) => format!("waits: {why}"),
                    None => "streams".to_owned(),
                };
                Some(format!(
                    "slot {} webinar room {} (gateway {}, meeting {}): {doing}",
                    s["slot"],
                    text("room"),
                    text("gateway_path"),
                    text("meeting_id"),
                ))
            }),
    );
    // A room counted empty, on its way to being stopped.
    notes.extend(
        doc["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let seen = s["alone_seen"].as_u64().filter(|&n| n > 0)?;
                let needed = s["alone_ticks"].as_u64().filter(|&n| n > 0)?;
                Some(format!(
                    "slot {}: alone for {seen} of {needed} ticks (nobody in the meeting but \
                     bbb-pod-live's own users; stopped as ended at {needed})",
                    s["slot"]
                ))
            }),
    );
    // Where each live's streamer log is.
    notes.extend(
        doc["slots"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let log = s["streamer_log"].as_str()?;
                Some(format!("slot {} streamer log: {log}", s["slot"]))
            }),
    );
    notes
}
